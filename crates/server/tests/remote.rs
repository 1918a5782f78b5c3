//! The worker loop over the worker API ([`server::remote::Remote`]) against a real server
//! on 127.0.0.1 with its real SQLite queue: remote loops run jobs each once and stop on
//! request; a result is offered again while the server is down and stored once it is
//! back; a worker whose lease was lost is told so and stores nothing.
//!
//! The executor is a TEST DOUBLE ([`Counting`]): it runs no-op jobs (the server's own
//! `noop_result`) and counts them. The real executor runs in `tests/it/serve_workers.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use server::job::JobSpec;
use server::remote::Remote;
use server::work::{self, Leases as _, LoopOptions};
use server::{Cancel, Config, ExecError, Executor, JobProgress, JobResult, Server};

const TOKEN: &str = "remote-test-token-0123";

/// TEST DOUBLE: runs no-op jobs and counts the runs per `n`.
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<HashMap<u64, usize>>>);

impl Executor for Counting {
    async fn run(&self, job: &JobSpec, _: Arc<dyn JobProgress>, _: Cancel) -> Result<JobResult, ExecError> {
        let JobSpec::Noop(n) = job else {
            return Err(ExecError { class: "unsupported".into(), message: "no-op jobs only".into() });
        };
        *self.0.lock().unwrap().entry(n.n).or_default() += 1;
        Ok(work::noop_result(n))
    }
}

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn config(data: &Path) -> Config {
    let mut c = Config::new(data.to_path_buf(), TOKEN.into());
    c.workers = 0;
    c.noop_jobs = true;
    c.lease = Duration::from_millis(1500);
    c
}

async fn start(config: Config, addr: &str) -> Running {
    let server = Server::open(config, Counting::default()).unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Running { addr, stop, task }
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await.unwrap().unwrap();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn submit(c: &reqwest::Client, addr: SocketAddr, n: u64) -> String {
    let r = c
        .post(format!("http://{addr}/v1/jobs"))
        .bearer_auth(TOKEN)
        .body(json!({"kind": "noop", "n": n}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn job(c: &reqwest::Client, addr: SocketAddr, id: &str) -> Value {
    c.get(format!("http://{addr}/v1/jobs/{id}")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_loops_run_each_job_once_and_stop_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(dir.path()), "127.0.0.1:0").await;
    let c = client();
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(submit(&c, r.addr, n).await);
    }
    let remote = Arc::new(Remote::new(&format!("http://{}/", r.addr), TOKEN).unwrap());
    let executor = Arc::new(Counting::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let options = LoopOptions {
        poll: Duration::from_millis(20),
        backoff: Duration::from_secs(1),
        shutdown_grace: Duration::ZERO,
    };
    let loops: Vec<_> = (0..4)
        .map(|i| work::spawn(remote.clone(), executor.clone(), format!("t/w{i}"), options.clone(), stop_rx.clone()))
        .collect();
    for id in &ids {
        for _ in 0..200 {
            if job(&c, r.addr, id).await["state"] == "done" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let j = job(&c, r.addr, id).await;
        assert_eq!(
            (j["state"].as_str(), j["attempts"].as_u64(), j["resultsStored"].as_u64()),
            (Some("done"), Some(1), Some(1)),
            "{j}"
        );
        assert_eq!(j["report"]["kind"], "noop");
    }
    // The server counts the remote worker loops it hears from.
    let metrics = c.get(format!("http://{}/metrics", r.addr)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\nreprove_serve_remote_workers 4\n"), "{metrics}");
    let _ = stop.send(true);
    for l in loops {
        tokio::time::timeout(Duration::from_secs(5), l).await.unwrap().unwrap();
    }
    let runs = executor.0.lock().unwrap().clone();
    assert_eq!(runs.len(), 40);
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_offered_again_until_the_server_is_back_and_a_lost_lease_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(dir.path()), "127.0.0.1:0").await;
    let addr = r.addr;
    let c = client();
    let id = submit(&c, addr, 7).await;
    // Claims answered at once: a held claim would outlast r1's lease and take the job over.
    let remote = Arc::new(Remote::new(&format!("http://{addr}"), TOKEN).unwrap().with_claim_wait(Duration::ZERO));
    let leased = remote.claim("r1").await.unwrap().unwrap();
    assert_eq!((leased.id.as_str(), leased.attempt, leased.lease), (id.as_str(), 1, Duration::from_millis(1500)));
    assert!(remote.heartbeat(&leased, "r1", Some("build".into())).await.unwrap());
    assert!(remote.claim("r2").await.unwrap().is_none());

    // The server goes away; the result waits for it. (A client of its own: the stopped
    // server's task still answers on the kept-alive connections of this process.)
    r.shutdown().await;
    let remote = Arc::new(Remote::new(&format!("http://{addr}"), TOKEN).unwrap());
    let result = work::noop_result(&server::job::NoopSpec { n: 7 });
    let finishing = {
        let (remote, leased, result) = (remote.clone(), leased.clone(), result.clone());
        tokio::spawn(async move { remote.finish(&leased, "r1", Ok(result), Duration::ZERO).await })
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!finishing.is_finished());
    let r = start(config(dir.path()), &addr.to_string()).await;
    let stored = tokio::time::timeout(Duration::from_secs(20), finishing).await.unwrap().unwrap().unwrap();
    assert!(stored);
    let j = job(&c, addr, &id).await;
    assert_eq!((j["state"].as_str(), j["resultsStored"].as_u64()), (Some("done"), Some(1)), "{j}");

    // A worker whose lease lapsed and went to another is told so; its result is dropped.
    let other = submit(&c, addr, 8).await;
    let first = remote.claim("r1").await.unwrap().unwrap();
    assert_eq!(first.id, other);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let second = remote.claim("r2").await.unwrap().unwrap();
    assert_eq!((second.id.as_str(), second.attempt), (other.as_str(), 2));
    assert!(!remote.heartbeat(&first, "r1", None).await.unwrap());
    assert!(remote.finish(&second, "r2", Ok(result.clone()), Duration::ZERO).await.unwrap());
    let mut late = result;
    late.report = b"{\"late\":true}".to_vec();
    assert!(!remote.finish(&first, "r1", Ok(late), Duration::ZERO).await.unwrap());
    assert!(!remote.release(&first, "r1").await.unwrap());
    let j = job(&c, addr, &other).await;
    assert_eq!(
        (j["attempts"].as_u64(), j["resultsStored"].as_u64(), &j["report"]["kind"]),
        (Some(2), Some(1), &json!("noop")),
        "{j}"
    );
    assert!(!dir.path().join("blobs/sha256").join(stdx::sha256_hex(b"{\"late\":true}")).exists());

    // A wrong token is an error the loop retries, not a crash.
    let wrong = Remote::new(&format!("http://{addr}"), "not-the-token").unwrap();
    let e = wrong.claim("r3").await.unwrap_err().to_string();
    assert!(e.contains("401") && !e.contains("not-the-token"), "{e}");
    r.shutdown().await;
}

/// A claim on an empty queue is held by the server (a long poll) and answered with the
/// job as soon as one is submitted, not after the worker's next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_waits_for_the_next_submission() {
    let dir = tempfile::tempdir().unwrap();
    // Leases that outlast the claims below (an expired one would be claimable again).
    let mut c = config(dir.path());
    c.lease = Duration::from_secs(30);
    let r = start(c, "127.0.0.1:0").await;
    let c = client();
    let remote = Arc::new(Remote::new(&format!("http://{}", r.addr), TOKEN).unwrap());
    let asked = std::time::Instant::now();
    let claim = tokio::spawn({
        let remote = remote.clone();
        async move { remote.claim("long").await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let id = submit(&c, r.addr, 11).await;
    let leased = claim.await.unwrap().unwrap().unwrap_or_else(|| panic!("the claim ended without the job"));
    assert_eq!(leased.id, id);
    // Answered on the submission, well inside the claim's two-second wait.
    assert!(asked.elapsed() < Duration::from_millis(1_500), "{:?}", asked.elapsed());
    // With nothing queued, the claim is held about as long as it asked, then empty.
    let asked = std::time::Instant::now();
    assert!(remote.claim("long").await.unwrap().is_none());
    assert!(asked.elapsed() >= Duration::from_millis(900), "{:?}", asked.elapsed());
    r.shutdown().await;
}
