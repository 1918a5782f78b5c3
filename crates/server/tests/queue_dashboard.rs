//! What the dashboard reads from the queue, on both backends (SQLite in a temporary
//! directory, a real throwaway PostgreSQL from `tests/common/postgres.rs`): the log each
//! job keeps (written by the queue's own transactions, bounded), jobs counted per day,
//! the image repository and watch filters and pages of the list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/common/postgres.rs"]
mod postgres;

use serde_json::json;
use server::job::JobSpec;
use server::queue::postgres::Postgres;
use server::queue::sqlite::Sqlite;
use server::queue::{repository_of, Day, Filter, Outcome, Queue, State, LOG_LINES, LOG_LINE_BYTES};

const DAY: i64 = 86_400_000;

fn audit(image: &str) -> JobSpec {
    JobSpec::parse(json!({"kind": "audit", "image": image}).to_string().as_bytes()).unwrap()
}

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn done(verdict: &str) -> Outcome {
    Outcome {
        state: State::Done,
        verdict: Some(verdict.into()),
        report: None,
        attestations: vec![],
        module: Some("example.com/app".into()),
        failure_class: None,
        failure_message: None,
    }
}

/// Runs `check` on a fresh SQLite queue and a fresh PostgreSQL database.
fn on_both(name: &str, check: fn(&dyn Queue, &str)) {
    let dir = tempfile::tempdir().unwrap();
    check(&Sqlite::open(&dir.path().join("q.sqlite3")).unwrap(), "sqlite");
    let pg = postgres::Cluster::start();
    check(&Postgres::open(&pg.database(name)).unwrap(), "postgres");
}

#[test]
fn each_job_keeps_a_bounded_log_of_what_happened_to_it() {
    on_both("log", keeps_a_bounded_log);
}

#[test]
fn jobs_are_counted_per_day_found_by_repository_and_paged() {
    on_both("daily", counts_finds_and_pages);
}

fn keeps_a_bounded_log(q: &dyn Queue, backend: &str) {
    let (job, _) = q.submit(&audit(&format!("r.test/app@{}", digest(1))), 1_000).unwrap();
    q.submit(&audit(&format!("r.test/app@{}", digest(1))), 1_500).unwrap();
    let claimed = q.claim("w1", 2_000, 10_000, 3).unwrap().unwrap();
    assert!(q.heartbeat(&job.id, "w1", 3_000, 10_000, Some("scan")).unwrap());
    assert!(q.heartbeat(&job.id, "w1", 3_500, 10_000, Some("scan")).unwrap());
    assert!(q.heartbeat(&job.id, "w1", 4_000, 10_000, Some("build")).unwrap());
    assert!(!q.heartbeat(&job.id, "w2", 4_000, 10_000, Some("stolen")).unwrap());
    assert!(q.release(&job.id, "w1").unwrap());
    // The lease of w2 expires; w3 takes the job over and finishes it.
    q.claim("w2", 5_000, 1_000, 3).unwrap().unwrap();
    q.claim("w3", 7_000, 10_000, 3).unwrap().unwrap();
    let failed = Outcome {
        state: State::Failed,
        verdict: Some("error".into()),
        failure_class: Some("input".into()),
        failure_message: Some("no such <b>revision</b>".into()),
        ..done("error")
    };
    assert!(!q.finish(&job.id, "w2", 8_000, &failed).unwrap());
    assert!(q.finish(&job.id, "w3", 8_000, &failed).unwrap());
    q.retry(&job.id, 9_000).unwrap().unwrap().unwrap();
    let log: Vec<(i64, String)> = q.job_log(&job.id).unwrap().into_iter().map(|l| (l.at_ms, l.line)).collect();
    let want = [
        (1_000, "submitted: audit job".to_string()),
        (2_000, "started: attempt 1 by worker w1".into()),
        (3_000, "step: scan".into()),
        (4_000, "step: build".into()),
        (-1, "handed back by worker w1: queued again".into()),
        (5_000, "started: attempt 1 by worker w2".into()),
        (7_000, "the lease of worker w2 expired: its worker was lost".into()),
        (7_000, "started: attempt 2 by worker w3".into()),
        (8_000, "finished: failed, verdict error, input: no such <b>revision</b>".into()),
        (9_000, "retried: queued again (it was failed)".into()),
    ];
    assert_eq!(log.len(), want.len(), "{log:#?}");
    for ((at, line), (want_at, want_line)) in log.iter().zip(&want) {
        assert_eq!(line, want_line, "{backend}");
        // The hand-back has the clock's time, not the test's.
        if *want_at >= 0 {
            assert_eq!(at, want_at, "{line}");
        }
    }
    assert_eq!(claimed.id, job.id, "{backend}");
    assert!(q.job_log("0".repeat(32).as_str()).unwrap().is_empty());

    // Bounded: the newest lines, each cut to its limit at a character boundary.
    // "step: " and this: the two-byte character straddles the limit.
    let long = format!("{}é", "x".repeat(LOG_LINE_BYTES - "step: ".len() - 1));
    let (other, _) = q.submit(&audit(&format!("r.test/app@{}", digest(2))), 10_000).unwrap();
    // The retried job was queued first.
    assert_eq!(q.claim("w4", 10_000, 1_000_000, 3).unwrap().unwrap().id, job.id);
    assert_eq!(q.claim("w4", 10_000, 1_000_000, 3).unwrap().unwrap().id, other.id);
    for n in 0..(LOG_LINES + 20) {
        let step = if n == LOG_LINES + 19 { long.clone() } else { format!("s{n}") };
        assert!(q.heartbeat(&other.id, "w4", 11_000 + i64::from(n), 1_000_000, Some(&step)).unwrap());
    }
    let log = q.job_log(&other.id).unwrap();
    assert_eq!(log.len(), LOG_LINES as usize, "{backend}");
    // Submitted, started, then 220 steps: the newest 200 start with the 21st step.
    assert_eq!(log[0].line, "step: s20");
    let last = &log[log.len() - 1].line;
    assert_eq!(last.len(), LOG_LINE_BYTES - 1, "cut before the two-byte character");
    assert!(last.starts_with("step: xxx"));
}

fn counts_finds_and_pages(q: &dyn Queue, backend: &str) {
    let images = [
        format!("r.test:5000/team/app@{}", digest(1)),
        format!("r.test:5000/team/app:v2@{}", digest(2)),
        format!("r.test:5000/team/app/sub@{}", digest(3)),
        format!("r.test:5000/team/application@{}", digest(4)),
    ];
    let verdicts = ["reproduced", "not-reproduced", "reproduced", "reproduced"];
    // Finished on days 20000, 20000, 20001 and 20003 (the last one failed).
    let finished = [20_000 * DAY + 5, 20_000 * DAY + 7, 20_001 * DAY, 20_003 * DAY + 1];
    for (i, image) in images.iter().enumerate() {
        let now = i64::try_from(i).unwrap() * 10 + 1;
        let (job, new) = q.submit(&audit(image), now).unwrap();
        assert!(new, "{backend}");
        let claimed = q.claim("w", now, DAY * 100_000, 3).unwrap().unwrap();
        assert_eq!(claimed.id, job.id, "{backend}");
        let mut outcome = done(verdicts[i]);
        if i == 3 {
            outcome.state = State::Failed;
            outcome.failure_class = Some("signing".into());
        }
        assert!(q.finish(&job.id, "w", finished[i], &outcome).unwrap());
    }
    assert_eq!(
        q.daily(20_000 * DAY).unwrap(),
        [
            Day { day: 20_000, finished: 2, reproduced: 1, failed: 0 },
            Day { day: 20_001, finished: 1, reproduced: 1, failed: 0 },
            Day { day: 20_003, finished: 1, reproduced: 1, failed: 1 },
        ]
    );
    assert_eq!(q.daily(20_001 * DAY).unwrap().len(), 2, "{backend}");
    assert!(q.daily(20_004 * DAY).unwrap().is_empty(), "{backend}");

    // The repository: with and without a tag; not a longer name, not a nested one.
    assert_eq!(repository_of(&images[1]), "r.test:5000/team/app");
    assert_eq!(repository_of("r.test:5000/team/app"), "r.test:5000/team/app");
    let by_repo = |r: &str| -> Vec<String> {
        let f = Filter { repository: Some(r.into()), limit: 10, ..Filter::default() };
        q.list(&f).unwrap().into_iter().filter_map(|j| j.image).collect()
    };
    assert_eq!(by_repo("r.test:5000/team/app"), [images[1].clone(), images[0].clone()]);
    assert_eq!(by_repo("r.test:5000/team/app/sub"), [images[2].clone()]);
    assert!(by_repo("r.test:5000/team").is_empty());
    assert!(by_repo("r.test").is_empty(), "a registry host is no repository");
    assert!(by_repo("r.test:5000/team/app%").is_empty());

    // Pages, newest first.
    let page = |offset: u32| -> Vec<String> {
        let f = Filter { limit: 3, offset, ..Filter::default() };
        q.list(&f).unwrap().into_iter().filter_map(|j| j.image).collect()
    };
    assert_eq!(page(0), [images[3].clone(), images[2].clone(), images[1].clone()], "{backend}");
    assert_eq!(page(3), [images[0].clone()], "{backend}");
    assert!(page(4).is_empty(), "{backend}");
}
