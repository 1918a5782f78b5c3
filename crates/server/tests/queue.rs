//! The queue's behaviour through the [`Queue`] trait, the same checks on both backends:
//! SQLite in a temporary directory and a real PostgreSQL (Debian's, a throwaway cluster
//! on 127.0.0.1 started by `tests/common/postgres.rs`). Then what only PostgreSQL must
//! survive: concurrent duplicate submissions from several threads, several queues (as
//! several servers) claiming from one database, PostgreSQL restarted under load (no job
//! lost, none finished twice), results kept in its `blobs` table and checked on read,
//! the schema migrated once, and errors that never show the password.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/common/postgres.rs"]
mod postgres;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use server::blobs::Blobs;
use server::job::JobSpec;
use server::queue::postgres::Postgres;
use server::queue::sqlite::Sqlite;
use server::queue::{Attestation, Database, Filter, Outcome, PollClaim, Queue, QueueError, State};

const TOOLCHAIN: &str =
    "127.0.0.1:5000/toolchains/go@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn spec(source: &str, rev: &str, image: char) -> JobSpec {
    let body = serde_json::json!({
        "kind": "verify", "source": source, "rev": rev,
        "reference": format!("oci://127.0.0.1:5000/app@{}#/app", digest(image)),
        "toolchain": TOOLCHAIN,
    });
    JobSpec::parse(body.to_string().as_bytes()).unwrap()
}

fn done(module: &str, report: &str) -> Outcome {
    Outcome {
        state: State::Done,
        verdict: Some("reproduced".into()),
        report: Some(report.into()),
        attestations: vec![Attestation {
            name: "vsa".into(),
            media_type: "application/vnd.dsse.envelope.v1+json".into(),
            digest: digest('a'),
        }],
        module: Some(module.into()),
        failure_class: None,
        failure_message: None,
    }
}

/// Every behaviour of the trait, on a fresh queue.
fn behaves(q: &dyn Queue, name: &str) {
    let t0 = 1_000_000;
    // Submitting: new, then the same key again is the same job.
    let a = spec("src", "v1", '2');
    let (ja, new) = q.submit(&a, t0).unwrap();
    assert!(new, "{name}");
    assert_eq!((ja.id.as_str(), ja.state, ja.attempts, ja.queued_ms), (a.id().as_str(), State::Queued, 0, t0));
    assert_eq!(ja.image_digest, Some(digest('2')), "{name}");
    let (again, new) = q.submit(&a, t0 + 5).unwrap();
    assert!(!new, "{name}");
    assert_eq!(again, ja, "{name}");
    let b = spec("src", "v2", '3');
    q.submit(&b, t0 + 1).unwrap();
    let c = spec("src", "v3", '2');
    q.submit(&c, t0 + 2).unwrap();
    assert_eq!(q.get(&a.id()).unwrap(), Some(ja.clone()), "{name}");
    assert_eq!(q.get(&"0".repeat(32)).unwrap(), None, "{name}");

    // Claims: oldest first; a leased job is nobody else's.
    let ca = q.claim("w1", t0 + 10, 1000, 3).unwrap().unwrap();
    assert_eq!((ca.id.as_str(), ca.state, ca.attempts), (a.id().as_str(), State::Running, 1), "{name}");
    assert_eq!(
        (ca.lease_owner.as_deref(), ca.lease_expires_ms, ca.started_ms),
        (Some("w1"), Some(t0 + 1010), Some(t0 + 10))
    );
    let cb = q.claim("w2", t0 + 10, 1000, 3).unwrap().unwrap();
    assert_eq!(cb.id, b.id(), "{name}");
    let cc = q.claim("w3", t0 + 10, 1000, 3).unwrap().unwrap();
    assert_eq!(cc.id, c.id(), "{name}");
    assert_eq!(q.claim("w4", t0 + 10, 1000, 3).unwrap(), None, "{name}");

    // Heartbeats renew the owner's lease and carry progress; not another's.
    assert!(q.heartbeat(&a.id(), "w1", t0 + 900, 1000, Some("build")).unwrap(), "{name}");
    assert!(!q.heartbeat(&a.id(), "w2", t0 + 900, 1000, Some("x")).unwrap(), "{name}");
    let j = q.get(&a.id()).unwrap().unwrap();
    assert_eq!((j.lease_expires_ms, j.progress.as_deref()), (Some(t0 + 1900), Some("build")), "{name}");
    assert!(q.heartbeat(&a.id(), "w1", t0 + 950, 1000, None).unwrap());
    assert_eq!(q.get(&a.id()).unwrap().unwrap().progress.as_deref(), Some("build"), "{name}: progress kept");

    // Only the owner finishes; a finished job is no longer leased.
    assert!(!q.finish(&a.id(), "w2", t0 + 1000, &done("example.com/a", &digest('b'))).unwrap(), "{name}");
    assert!(q.finish(&a.id(), "w1", t0 + 1000, &done("example.com/a", &digest('b'))).unwrap(), "{name}");
    assert!(!q.finish(&a.id(), "w1", t0 + 1001, &done("example.com/a", &digest('b'))).unwrap(), "{name}: twice");
    let j = q.get(&a.id()).unwrap().unwrap();
    assert_eq!((j.state, j.results_stored, j.lease_owner.as_deref()), (State::Done, 1, None), "{name}");
    assert_eq!((j.verdict.as_deref(), j.module.as_deref()), (Some("reproduced"), Some("example.com/a")));
    assert_eq!((j.report, j.finished_ms), (Some(digest('b')), Some(t0 + 1000)), "{name}");
    assert_eq!(j.attestations[0].digest, digest('a'), "{name}");

    // Release: handed back, the attempt not counted; only by the owner.
    assert!(!q.release(&b.id(), "w1").unwrap(), "{name}");
    assert!(q.release(&b.id(), "w2").unwrap(), "{name}");
    let j = q.get(&b.id()).unwrap().unwrap();
    assert_eq!((j.state, j.attempts, j.lease_owner), (State::Queued, 0, None), "{name}");

    // A lost worker: its lease expires and the job is claimable again (oldest first).
    let again = q.claim("w5", t0 + 1020, 1000, 3).unwrap().unwrap();
    assert_eq!(again.id, b.id(), "{name}");
    let lost = q.claim("w6", t0 + 3000, 1000, 3).unwrap().unwrap();
    assert_eq!((lost.id.as_str(), lost.attempts), (b.id().as_str(), 2), "{name}: the expired lease of b");
    assert!(!q.heartbeat(&b.id(), "w5", t0 + 3001, 1000, None).unwrap(), "{name}: the lost worker's lease is gone");
    // c's lease expired too; at the attempt limit it fails instead of running again.
    assert_eq!(q.claim("w7", t0 + 3000, 1000, 1).unwrap(), None, "{name}");
    let j = q.get(&c.id()).unwrap().unwrap();
    assert_eq!(
        (j.state, j.failure_class.as_deref(), j.finished_ms),
        (State::Failed, Some("lease-expired"), Some(t0 + 3000))
    );
    let failed = Outcome {
        state: State::Failed,
        verdict: None,
        report: None,
        attestations: Vec::new(),
        module: None,
        failure_class: Some("infrastructure".into()),
        failure_message: Some("down".into()),
    };
    assert!(q.finish(&b.id(), "w6", t0 + 3100, &failed).unwrap(), "{name}");

    // Retry: only finished jobs; queued again with a clean slate.
    assert_eq!(q.retry(&"0".repeat(32), t0).unwrap(), None, "{name}");
    let d = spec("src", "v4", '4');
    q.submit(&d, t0 + 3200).unwrap();
    assert_eq!(q.retry(&d.id(), t0 + 3200).unwrap(), Some(Err(State::Queued)), "{name}");
    let r = q.retry(&b.id(), t0 + 4000).unwrap().unwrap().unwrap();
    assert_eq!((r.state, r.attempts, r.queued_ms, r.results_stored), (State::Queued, 0, t0 + 4000, 0), "{name}");
    assert_eq!((r.failure_class, r.verdict, r.finished_ms, r.report), (None, None, None, None), "{name}");
    assert!(r.attestations.is_empty());
    // d (queued at +3200) is older than the retried b (+4000).
    assert_eq!(q.claim("w8", t0 + 4001, 1000, 3).unwrap().unwrap().id, d.id(), "{name}");

    // The latest finished verdict for an image digest.
    assert_eq!(q.latest_for_image(&digest('2')).unwrap().map(|j| j.id), Some(a.id()), "{name}");
    assert_eq!(q.latest_for_image(&digest('3')).unwrap(), None, "{name}: b is queued again");
    assert_eq!(q.latest_for_image(&digest('9')).unwrap(), None, "{name}");

    // Filters, newest first.
    let ids = |f: Filter| -> Vec<String> { q.list(&f).unwrap().into_iter().map(|j| j.id).collect() };
    let all = Filter { limit: 100, ..Filter::default() };
    assert_eq!(ids(all.clone()), [d.id(), c.id(), b.id(), a.id()], "{name}");
    assert_eq!(ids(Filter { limit: 2, ..all.clone() }), [d.id(), c.id()], "{name}");
    assert_eq!(ids(Filter { state: Some(State::Done), ..all.clone() }), [a.id()], "{name}");
    assert_eq!(ids(Filter { image: Some(digest('2')), ..all.clone() }), [c.id(), a.id()], "{name}");
    let image = format!("127.0.0.1:5000/app@{}", digest('3'));
    assert_eq!(ids(Filter { image: Some(image), ..all.clone() }), [b.id()], "{name}");
    assert_eq!(ids(Filter { module: Some("example.com/a".into()), ..all.clone() }), [a.id()], "{name}");
    assert!(ids(Filter { module: Some("nothing".into()), state: Some(State::Done), ..all }).is_empty());

    // Stats.
    let s = q.stats(t0 + 6000).unwrap();
    let by: BTreeMap<State, u64> = s.by_state.iter().copied().collect();
    assert_eq!(by, BTreeMap::from([(State::Queued, 1), (State::Running, 1), (State::Done, 1), (State::Failed, 1)]));
    assert_eq!(s.failed_by_class, [("lease-expired".to_string(), 1)], "{name}");
    assert!((s.oldest_queued_secs - 2.0).abs() < 1e-9, "{name}: {}", s.oldest_queued_secs);
}

/// The watches' polls shared by servers: one holder at a time, once per interval, the
/// failures in a row shared, a lost holder's lease taken over; eight servers asking at
/// once get one claim.
fn polls(q: &dyn Queue, name: &str) {
    let claim = |w: &str, holder: &str, now: i64| q.claim_poll(w, holder, now, 60_000).unwrap();
    assert_eq!(claim("w", "a", 1_000), PollClaim::Claimed { failures: 0 }, "{name}");
    assert_eq!(claim("w", "b", 1_001), PollClaim::NotBefore(61_000), "{name}: a holds it");
    assert_eq!(claim("x", "b", 1_001), PollClaim::Claimed { failures: 0 }, "{name}: another watch is its own");
    assert!(q.finish_poll("w", "a", 6_000, 0).unwrap(), "{name}");
    assert!(!q.finish_poll("w", "b", 7_000, 0).unwrap(), "{name}: b does not hold it");
    assert_eq!(claim("w", "b", 5_999), PollClaim::NotBefore(6_000), "{name}: not due before the interval");
    assert_eq!(claim("w", "b", 6_000), PollClaim::Claimed { failures: 0 }, "{name}");
    assert!(q.finish_poll("w", "b", 8_000, 1).unwrap(), "{name}");
    assert_eq!(claim("w", "a", 8_000), PollClaim::Claimed { failures: 1 }, "{name}: b's failure is shared");
    // a is lost mid-poll: b takes over once its lease has run out, and a's late finish is void.
    assert_eq!(claim("w", "b", 67_999), PollClaim::NotBefore(68_000), "{name}");
    assert_eq!(claim("w", "b", 68_001), PollClaim::Claimed { failures: 1 }, "{name}");
    assert!(!q.finish_poll("w", "a", 70_000, 0).unwrap(), "{name}");
    let claimed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..8 {
            let claimed = &claimed;
            s.spawn(move || {
                if let PollClaim::Claimed { .. } = q.claim_poll("race", &format!("server-{t}"), 9_000, 60_000).unwrap()
                {
                    claimed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(claimed.load(Ordering::SeqCst), 1, "{name}: one of eight servers polls");
}

#[test]
fn the_queue_behaves_the_same_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Sqlite::open(&dir.path().join("queue.sqlite3")).unwrap();
    behaves(&sqlite, "sqlite");
    polls(&sqlite, "sqlite");
    let pg = postgres::Cluster::start();
    let url = pg.database("behaviour");
    let q = Postgres::open(&url).unwrap();
    behaves(&q, "postgres");
    polls(&q, "postgres");
    drop(q);
    // Opened again (and by a second server at once): the schema is migrated once, the jobs kept.
    let (q1, q2) = std::thread::scope(|s| {
        let h1 = s.spawn(|| Postgres::open(&url).unwrap());
        let h2 = s.spawn(|| Postgres::open(&url).unwrap());
        (h1.join().unwrap(), h2.join().unwrap())
    });
    assert_eq!(q1.list(&Filter { limit: 10, ..Filter::default() }).unwrap().len(), 4);
    assert_eq!(q2.stats(0).unwrap().by_state.iter().map(|(_, n)| n).sum::<u64>(), 4);
    assert_eq!(pg.psql("behaviour", "SELECT version FROM schema_version"), "3\n");
    // A newer schema than this build knows is refused, not written over.
    pg.psql("behaviour", "UPDATE schema_version SET version = 99");
    let e = Postgres::open(&url).unwrap_err().to_string();
    assert!(e.contains("newer") && !e.contains(postgres::PASSWORD), "{e}");
    // A database of the previous version (2, before the watches' polls) is migrated.
    pg.psql("behaviour", "UPDATE schema_version SET version = 2; DROP TABLE watch_polls");
    let q = Postgres::open(&url).unwrap();
    assert_eq!(q.claim_poll("w", "a", 0, 1).unwrap(), PollClaim::Claimed { failures: 0 });
    assert_eq!(pg.psql("behaviour", "SELECT version FROM schema_version"), "3\n");
}

/// 8 threads submit the same 50 specs at once: one job per key, on both backends.
fn duplicates(q: Arc<dyn Queue>, name: &str) {
    let specs: Vec<JobSpec> = (0..50).map(|i| spec("dup", &format!("v{i}"), '5')).collect();
    let created = AtomicUsize::new(0);
    let ids = Mutex::new(BTreeMap::<String, BTreeSet<String>>::new());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (q, specs, created, ids) = (&q, &specs, &created, &ids);
            s.spawn(move || {
                // Each thread in another order, so that they collide.
                for i in 0..specs.len() {
                    let sp = &specs[(i * 7 + t * 13) % specs.len()];
                    let (job, new) = q.submit(sp, 5_000).unwrap();
                    created.fetch_add(usize::from(new), Ordering::SeqCst);
                    ids.lock().unwrap().entry(sp.key()).or_default().insert(job.id);
                }
            });
        }
    });
    assert_eq!(created.load(Ordering::SeqCst), 50, "{name}: one submission per key is new");
    let ids = ids.into_inner().unwrap();
    assert_eq!(ids.len(), 50, "{name}");
    assert!(ids.values().all(|s| s.len() == 1), "{name}: {ids:?}");
    let jobs = q.list(&Filter { limit: 1000, ..Filter::default() }).unwrap();
    assert_eq!(jobs.len(), 50, "{name}");
}

#[test]
fn concurrent_duplicate_submissions_make_one_job_per_key() {
    let dir = tempfile::tempdir().unwrap();
    duplicates(Arc::new(Sqlite::open(&dir.path().join("queue.sqlite3")).unwrap()), "sqlite");
    let pg = postgres::Cluster::start();
    duplicates(Arc::new(Postgres::open(&pg.database("dups")).unwrap()), "postgres");
}

/// What the workers saw.
#[derive(Default)]
struct Seen {
    /// Successful finishes per job.
    finished: Mutex<BTreeMap<String, usize>>,
    /// Calls that failed (the database was away).
    errors: AtomicUsize,
    /// Finishes that failed and then found the lease gone: the first may have committed
    /// without its answer arriving.
    ambiguous: AtomicUsize,
}

/// Claims and finishes until the database says every job is done (or the deadline),
/// retrying when the database is away; records each successful finish.
fn work(q: &dyn Queue, worker: &str, total: usize, seen: &Seen) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let (finished, errors) = (&seen.finished, &seen.errors);
    while Instant::now() < deadline {
        let now = now_ms();
        match q.claim(worker, now, 5_000, 100) {
            Ok(Some(job)) => {
                let outcome = done("example.com/load", &digest('c'));
                // The database may go away between claim and finish: try until the lease is ours no more.
                let mut failed = false;
                loop {
                    match q.finish(&job.id, worker, now_ms(), &outcome) {
                        Ok(true) => {
                            *finished.lock().unwrap().entry(job.id.clone()).or_default() += 1;
                            break;
                        }
                        Ok(false) => {
                            seen.ambiguous.fetch_add(usize::from(failed), Ordering::SeqCst);
                            break;
                        }
                        Err(_) => {
                            failed = true;
                            errors.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
            Ok(None) => {
                let done = q
                    .stats(now)
                    .ok()
                    .and_then(|s| s.by_state.iter().find(|(st, _)| *st == State::Done).map(|(_, n)| *n));
                if done == Some(total as u64) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Three queues (as three servers) on one database, two workers each, while jobs keep
/// being submitted and PostgreSQL is stopped and started twice: every job is finished
/// exactly once, each result stored once.
#[test]
fn restarting_postgres_under_load_loses_no_job_and_finishes_none_twice() {
    let mut pg = postgres::Cluster::start();
    let url = pg.database("load");
    let queues: Vec<Arc<dyn Queue>> =
        (0..3).map(|_| Arc::new(Postgres::open(&url).unwrap()) as Arc<dyn Queue>).collect();
    const TOTAL: usize = 600;
    let seen = Seen::default();
    let submitted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        // Two submitters keep submitting (each spec twice: the second is a duplicate).
        for (t, q) in queues.iter().take(2).enumerate() {
            let (q, submitted, errors) = (q.clone(), &submitted, &seen.errors);
            s.spawn(move || {
                let mut i = t;
                let deadline = Instant::now() + Duration::from_secs(120);
                while i < TOTAL && Instant::now() < deadline {
                    let sp = spec("load", &format!("v{i}"), '6');
                    match q.submit(&sp, now_ms()).and_then(|_| q.submit(&sp, now_ms())) {
                        Ok(_) => {
                            submitted.fetch_add(1, Ordering::SeqCst);
                            i += 2;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            });
        }
        for (n, q) in queues.iter().enumerate() {
            for w in 0..2 {
                let (q, seen) = (q.clone(), &seen);
                s.spawn(move || work(&*q, &format!("server{n}/w{w}"), TOTAL, seen));
            }
        }
        // Restart PostgreSQL twice while the load runs: once a quarter of the jobs are
        // submitted, and again at two thirds (submitting waits while it is down).
        for mark in [TOTAL / 4, TOTAL * 2 / 3] {
            let deadline = Instant::now() + Duration::from_secs(60);
            while submitted.load(Ordering::SeqCst) < mark && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            pg.stop();
            std::thread::sleep(Duration::from_millis(500));
            pg.start_again();
        }
    });
    assert_eq!(submitted.load(Ordering::SeqCst), TOTAL);
    let finished = seen.finished.into_inner().unwrap();
    assert!(seen.errors.load(Ordering::SeqCst) > 0, "the restarts were not seen: the test did not test them");
    let ambiguous = seen.ambiguous.load(Ordering::SeqCst);
    assert!(
        finished.len() + ambiguous >= TOTAL && finished.len() <= TOTAL,
        "{} finished, {ambiguous} ambiguous",
        finished.len()
    );
    assert!(finished.values().all(|n| *n == 1), "a job finished twice: {finished:?}");
    let q = &queues[0];
    let jobs = q.list(&Filter { limit: 1000, ..Filter::default() }).unwrap();
    assert_eq!(jobs.len(), TOTAL);
    for j in &jobs {
        assert_eq!((j.state, j.results_stored), (State::Done, 1), "{j:?}");
    }
}

/// Results in PostgreSQL: content-addressed, written once, checked when read; and the
/// errors of an unreachable or refusing database never show the password; after a
/// restart, the first call reconnects.
#[test]
fn blobs_live_in_postgres_calls_reconnect_and_errors_hide_the_password() {
    let mut pg = postgres::Cluster::start();
    let url = pg.database("blobs");
    let (queue, blobs) =
        server::queue::open(&Database::parse(&url).unwrap(), std::path::Path::new("/nonexistent")).unwrap();
    assert!(matches!(blobs, Blobs::Postgres(_)));
    let d = blobs.put(b"{\"verdict\":\"reproduced\"}").unwrap();
    assert_eq!(d, format!("sha256:{}", stdx::sha256_hex(b"{\"verdict\":\"reproduced\"}")));
    assert_eq!(blobs.put(b"{\"verdict\":\"reproduced\"}").unwrap(), d);
    assert_eq!(pg.psql("blobs", "SELECT count(*) FROM blobs"), "1\n");
    assert_eq!(blobs.get(&d).unwrap().as_deref(), Some(&b"{\"verdict\":\"reproduced\"}"[..]));
    assert_eq!(blobs.get(&digest('e')).unwrap(), None);
    assert_eq!(blobs.get("sha256:../../etc/passwd").unwrap(), None);
    // A blob whose content was changed in the database is refused.
    pg.psql("blobs", &format!("UPDATE blobs SET data = 'tampered'::bytea WHERE digest = '{d}'"));
    let e = blobs.get(&d).unwrap_err().to_string();
    assert!(e.contains("does not match its digest"), "{e}");

    // The database away: errors name it without the password; back: calls work again.
    pg.stop();
    let e = queue.stats(0).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, QueueError::Database { .. }), "{e:?}");
    assert!(text.contains(&format!("postgres://{}@127.0.0.1:{}/blobs", postgres::USER, pg.port())), "{text}");
    assert!(!text.contains(postgres::PASSWORD), "{text}");
    let e = Postgres::open(&url).unwrap_err().to_string();
    assert!(!e.contains(postgres::PASSWORD) && e.contains("127.0.0.1"), "{e}");
    pg.start_again();
    assert!(queue.stats(0).is_ok());
    // Several pooled connections, all dead after a restart: the first call after it
    // drops them and succeeds on a fresh one.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    queue.stats(0).unwrap();
                }
            });
        }
    });
    pg.restart();
    queue.stats(0).unwrap();
    assert_eq!(blobs.get(&digest('e')).unwrap(), None);
    let wrong = url.replace(postgres::PASSWORD, "not-the-password");
    let e = Postgres::open(&wrong).unwrap_err().to_string();
    assert!(!e.contains("not-the-password") && e.contains("password"), "{e}");

    // Not a database URL.
    for bad in ["mysql://u:p@h/db", "postgres://", "sqlite3", "postgres://u:secret@h:notaport/db"] {
        let e = Database::parse(bad).unwrap_err().to_string();
        assert!(e.contains("expected sqlite or postgres://") && !e.contains("secret"), "{bad}: {e}");
    }
    assert_eq!(Database::parse("sqlite").unwrap(), Database::Sqlite);
    assert!(!format!("{:?}", Database::parse(&url).unwrap()).contains(postgres::PASSWORD));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// TLS to PostgreSQL, against a cluster that refuses plaintext (`hostssl` only): the
/// default and `verify-full` trust only the CA named by `sslrootcert` and check the host
/// name, `verify-ca` only the CA, `require` encrypts without checking; a wrong CA, a name
/// the certificate does not hold and a server without TLS are errors that name the
/// setting and the check, with no fallback to plaintext; `prefer` is refused.
#[test]
fn tls_to_postgres_is_checked_and_never_falls_back_to_plaintext() {
    let pg = postgres::Cluster::start_tls();
    let url = pg.database("tls");
    assert!(url.contains("sslmode=verify-full&sslrootcert="), "{url}");
    let q = Postgres::open(&url).unwrap();
    q.submit(&spec("tls", "v1", '1'), 1_000).unwrap();
    // The connection really is TLS: the server shows it so, and plaintext is refused.
    let ssl = pg.psql(
        "tls",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'reprove serve' AND s.ssl",
    );
    assert_ne!(ssl.trim(), "0", "no TLS connection of the queue in pg_stat_ssl");
    let base = format!("postgres://{}:{}@127.0.0.1:{}/tls", postgres::USER, postgres::PASSWORD, pg.port());
    let e = Postgres::open(&format!("{base}?sslmode=disable")).unwrap_err().to_string();
    assert!(e.contains("no encryption") || e.contains("pg_hba.conf"), "plaintext was not refused: {e}");

    let ca = pg.ca().display().to_string();
    let other = pg.other_ca().display().to_string();
    let refused = |url: String, words: &[&str]| {
        let e = Postgres::open(&url).unwrap_err().to_string();
        for w in words {
            assert!(e.contains(w), "{w:?} not in: {e}");
        }
        assert!(!e.contains(postgres::PASSWORD), "{e}");
    };
    // A CA that did not sign the server's certificate.
    for mode in ["verify-full", "verify-ca", "require"] {
        refused(
            format!("{base}?sslmode={mode}&sslrootcert={other}"),
            &[&format!("sslmode={mode}"), "not trusted", "sslrootcert", &other],
        );
    }
    // Without sslrootcert, the system's store: here SSL_CERT_FILE's, the other CA, then
    // the right one (in a process of its own, for its environment).
    let empty = tempfile::tempdir().unwrap();
    for (store, want) in [(&other, "not trusted"), (&ca, "ok")] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "system_store_probe", "--nocapture", "--include-ignored"])
            .env("REPROVE_TEST_PG_URL", &base)
            .env("SSL_CERT_FILE", store)
            .env("SSL_CERT_DIR", empty.path())
            .output()
            .unwrap();
        let probe = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(probe.contains(&format!("probe: {want}")) && probe.contains("1 passed"), "{store}: {probe}");
    }
    // A host name the certificate does not hold (the address is right).
    let named = format!(
        "postgres://{}:{}@db.invalid:{}/tls?hostaddr=127.0.0.1&sslrootcert={ca}",
        postgres::USER,
        postgres::PASSWORD,
        pg.port()
    );
    refused(named.clone(), &["sslmode=verify-full (the default)", "not valid for the host name", "db.invalid"]);
    refused(format!("{named}&sslmode=verify-full"), &["sslmode=verify-full", "db.invalid"]);
    // verify-ca checks the chain only; require encrypts without a CA; localhost is in the certificate.
    Postgres::open(&format!("{named}&sslmode=verify-ca")).unwrap().stats(0).unwrap();
    Postgres::open(&format!("{base}?sslmode=require")).unwrap().stats(0).unwrap();
    Postgres::open(&url.replace("127.0.0.1", "localhost")).unwrap().stats(0).unwrap();
    refused(format!("{base}?sslmode=prefer"), &["sslmode=prefer is refused", "plaintext"]);

    // A server without TLS: require (and the default) fail, never plaintext.
    let plain = postgres::Cluster::start();
    let plain_base =
        format!("postgres://{}:{}@127.0.0.1:{}/postgres", postgres::USER, postgres::PASSWORD, plain.port());
    refused(format!("{plain_base}?sslmode=require"), &["sslmode=require", "does not offer TLS"]);
    refused(
        format!("{plain_base}?sslrootcert={ca}"),
        &["sslmode=verify-full (the default)", "does not offer TLS", "sslmode=disable"],
    );
    Postgres::open(&plain.url("postgres")).unwrap().stats(0).unwrap();
}

/// Run by the test above in a process of its own with a system trust store of its own
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`): without `sslrootcert`, the server's CA is trusted
/// only if that store holds it.
#[test]
#[ignore = "run by tls_to_postgres_is_checked_and_never_falls_back_to_plaintext"]
fn system_store_probe() {
    let base = std::env::var("REPROVE_TEST_PG_URL").unwrap();
    match Postgres::open(&base) {
        Ok(q) => {
            q.stats(0).unwrap();
            println!("probe: ok");
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("sslmode=verify-full (the default)") && e.contains("system's trust store"), "{e}");
            println!("probe: {}", if e.contains("not trusted") { "not trusted" } else { "other" });
        }
    }
}
