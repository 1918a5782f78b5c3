//! Claim throughput of the queue, SQLite against PostgreSQL, through the `Queue` trait:
//! N no-op verify specs are submitted, then W threads (as one server's W workers) claim
//! and finish them until none is left. Each backend with its production durability:
//! SQLite in WAL mode with `synchronous = FULL` in a temporary directory; a throwaway
//! PostgreSQL cluster (Debian's, `tests/common/postgres.rs`) with its defaults (fsync on,
//! synchronous commit). Afterwards every job must be done, claimed once and finished once.
//!
//!   cargo bench -p server --bench claim -- [JOBS [WORKERS]]     (default 10000 10)
//!
//! Prints one line per backend: jobs/s for the submissions, and for the claims with their
//! finishes (a claim and a finish are two transactions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/common/postgres.rs"]
mod postgres;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use server::job::JobSpec;
use server::queue::postgres::Postgres;
use server::queue::sqlite::Sqlite;
use server::queue::{Filter, Outcome, Queue, State};

fn spec(i: usize) -> JobSpec {
    let body = serde_json::json!({
        "kind": "verify", "source": "noop", "rev": format!("v{i}"),
        "reference": format!("oci://127.0.0.1:5000/app@sha256:{}#/app", "2".repeat(64)),
        "toolchain": format!("127.0.0.1:5000/go@sha256:{}", "1".repeat(64)),
    });
    JobSpec::parse(body.to_string().as_bytes()).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn run(name: &str, q: Arc<dyn Queue>, jobs: usize, workers: usize) {
    let specs: Vec<JobSpec> = (0..jobs).map(spec).collect();
    let t = Instant::now();
    for s in &specs {
        assert!(q.submit(s, now_ms()).unwrap().1);
    }
    let submit = t.elapsed().as_secs_f64();
    let claims = Mutex::new(HashMap::<String, usize>::new());
    let finished = AtomicUsize::new(0);
    let outcome = Outcome {
        state: State::Done,
        verdict: Some("reproduced".into()),
        report: None,
        attestations: Vec::new(),
        module: None,
        failure_class: None,
        failure_message: None,
    };
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..workers {
            let (q, claims, finished, outcome) = (&q, &claims, &finished, &outcome);
            s.spawn(move || {
                let name = format!("bench/w{w}");
                while let Some(job) = q.claim(&name, now_ms(), 60_000, 3).unwrap() {
                    *claims.lock().unwrap().entry(job.id.clone()).or_default() += 1;
                    assert!(q.finish(&job.id, &name, now_ms(), outcome).unwrap());
                    finished.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let claim = t.elapsed().as_secs_f64();
    let claims = claims.into_inner().unwrap();
    assert_eq!(claims.len(), jobs, "{name}: jobs lost");
    assert!(claims.values().all(|n| *n == 1), "{name}: a job claimed twice");
    assert_eq!(finished.load(Ordering::Relaxed), jobs);
    let done = q.list(&Filter { state: Some(State::Done), limit: 1000, ..Filter::default() }).unwrap();
    assert!(done.iter().all(|j| j.results_stored == 1 && j.attempts == 1), "{name}");
    let stats = q.stats(now_ms()).unwrap();
    assert!(stats.by_state.contains(&(State::Done, jobs as u64)), "{name}: {stats:?}");
    println!(
        "{name:<10} {jobs} jobs, {workers} workers: submit {:>7.0} jobs/s ({submit:.2} s); claim+finish {:>7.0} jobs/s ({claim:.2} s)",
        jobs as f64 / submit,
        jobs as f64 / claim,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are the positional arguments.
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let jobs = nums.first().copied().unwrap_or(10_000);
    let workers = nums.get(1).copied().unwrap_or(10);

    let dir = tempfile::tempdir().unwrap();
    run("sqlite", Arc::new(Sqlite::open(&dir.path().join("queue.sqlite3")).unwrap()), jobs, workers);

    let pg = postgres::Cluster::start_with(&["-c", "max_connections=200"]);
    let url = pg.database("bench");
    run("postgres", Arc::new(Postgres::open(&url).unwrap()), jobs, workers);
}
