//! The service library over real HTTP on 127.0.0.1 with its real SQLite queue in a
//! temporary directory: auth, validation, hostile input, idempotent submission (also
//! concurrent), workers, leases, retry, filters, image verdicts, metrics, graceful
//! shutdown, and the OpenAPI document against the routes.
//!
//! The executor is a TEST DOUBLE ([`Double`]): it builds nothing; what it does is
//! chosen by the job's `source` (`noop`, `slow`, `fail`), and it counts its runs, so the
//! server's work around it (leases, hand-back, storing once) can be counted exactly.
//! The real executor (the verify pipeline) is exercised by `tests/it/serve.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/common/prometheus.rs"]
mod prometheus;

#[path = "../../../tests/common/postgres.rs"]
mod postgres;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use server::job::JobSpec;
use server::queue::sqlite::Sqlite;
use server::queue::{Queue as _, State};
use server::{Cancel, Config, ExecError, Executor, JobProgress, JobResult, Server};

const TOKEN: &str = "test-token-0123456789";
const TOOLCHAIN: &str =
    "127.0.0.1:5000/toolchains/go@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const IMAGE_DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// TEST DOUBLE of the executor: `source` `noop` reproduces at once, `slow` runs until
/// cancelled (or 30 s), `fail` fails with class `infrastructure`.
#[derive(Clone, Default)]
struct Double {
    runs: Arc<Mutex<HashMap<String, usize>>>,
    cancelled: Arc<AtomicUsize>,
}

impl Executor for Double {
    async fn run(&self, job: &JobSpec, progress: Arc<dyn JobProgress>, cancel: Cancel) -> Result<JobResult, ExecError> {
        let JobSpec::Verify(v) = job else {
            return Err(ExecError { class: "unsupported".into(), message: "the double runs verify jobs".into() });
        };
        *self.runs.lock().unwrap().entry(job.id()).or_default() += 1;
        progress.step("build");
        match v.source.as_str() {
            "fail" => Err(ExecError { class: "infrastructure".into(), message: "the registry is down".into() }),
            "slow" => {
                for _ in 0..300 {
                    if cancel.is_cancelled() {
                        self.cancelled.fetch_add(1, Ordering::SeqCst);
                        return Err(ExecError { class: "cancelled".into(), message: "cancelled".into() });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(ExecError { class: "timeout".into(), message: "never cancelled".into() })
            }
            _ => Ok(JobResult {
                verdict: "reproduced".into(),
                report: serde_json::to_vec(&json!({"verdict": "reproduced", "rev": v.rev})).unwrap(),
                failure: None,
                module: Some("example.com/app".into()),
                attestations: vec![(
                    "vsa".into(),
                    "application/vnd.dsse.envelope.v1+json".into(),
                    b"{\"payload\":\"x\"}".to_vec(),
                )],
            }),
        }
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), self.task).await.unwrap().unwrap();
    }
}

fn config(data: &Path, workers: usize) -> Config {
    let mut c = Config::new(data.to_path_buf(), TOKEN.into());
    c.workers = workers;
    c.poll = Duration::from_millis(20);
    c.lease = Duration::from_millis(900);
    c.max_body_bytes = 64 << 10;
    c
}

async fn start(config: Config, executor: Double) -> Running {
    start_resolving(config, executor, None).await
}

/// [`start`], with revisions pinned by `resolver`.
async fn start_resolving(config: Config, executor: Double, resolver: Option<Arc<dyn server::Resolver>>) -> Running {
    // Opening PostgreSQL blocks (and runs the driver's own runtime): off the async threads.
    let server = tokio::task::spawn_blocking(move || Server::open(config, executor)).await.unwrap().unwrap();
    if let Some(r) = resolver {
        server.resolve_with(r);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Running { addr, stop: Some(tx), task }
}

/// A full commit id made of `name` (its bytes in hex, padded): a server without a
/// resolver takes only full commit ids.
fn commit_id(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0<40}")
}

fn verify(source: &str, rev: &str) -> Value {
    json!({
        "kind": "verify", "source": source, "rev": rev,
        "reference": format!("oci://127.0.0.1:5000/app@{IMAGE_DIGEST}#/app"),
        "toolchain": TOOLCHAIN, "recipe": {"trimpath": true, "env": {"CGO_ENABLED": "0"}},
    })
}

async fn post(c: &reqwest::Client, url: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut r = c.post(url).header("content-type", "application/json").body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = c.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn wait_state(c: &reqwest::Client, r: &Running, id: &str, want: &str) -> Value {
    for _ in 0..300 {
        let (_, job) = get(c, &r.url(&format!("/v1/jobs/{id}"))).await;
        if job["state"] == want {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never became {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitting_needs_the_token_and_bad_input_is_refused_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(dir.path(), 0), Double::default()).await;
    let c = client();
    let jobs = r.url("/v1/jobs");
    let body = verify("noop", &commit_id("v1")).to_string();

    let (s, e) = post(&c, &jobs, None, body.clone()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthorized")), "{e}");
    let (s, _) = post(&c, &jobs, Some("wrong-token-0123456789"), body.clone()).await;
    assert_eq!(s, 401);

    let cases: Vec<(Value, u16, &str)> = vec![
        (json!("not an object"), 400, "malformed-json"),
        (json!({"kind": "rebuild"}), 422, "unknown-kind"),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["owner"] = json!("me");
                v
            },
            422,
            "invalid-fields",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["toolchain"] = json!("golang:1.22");
                v
            },
            422,
            "unpinned-toolchain",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["toolchain"] = json!("golang@sha256:abc");
                v
            },
            422,
            "unpinned-toolchain",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["reference"] = json!("oci://app:latest#/app");
                v
            },
            422,
            "invalid-reference",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["reference"] = json!("relative/app");
                v
            },
            422,
            "invalid-reference",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["recipe"] = json!({"ldflagz": "-s"});
                v
            },
            422,
            "invalid-recipe",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["recipe"] = json!({"buildvcs": "sometimes"});
                v
            },
            422,
            "invalid-recipe",
        ),
        (
            {
                let mut v = verify("noop", &commit_id("v1"));
                v["rev"] = json!("--upload-pack=x");
                v
            },
            422,
            "invalid-field",
        ),
        (json!({"kind": "audit", "image": "127.0.0.1:5000/app:latest"}), 422, "unpinned-image"),
    ];
    for (body, status, code) in cases {
        let (s, e) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
        assert_eq!((s, e["error"]["code"].as_str()), (status, Some(code)), "{body} → {e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let (s, _) = post(&c, &jobs, Some(TOKEN), "{\"kind\": \"verify\",").await;
    assert_eq!(s, 400);

    // A huge body: refused before it is read whole.
    let huge = format!("{{\"kind\":\"verify\",\"source\":\"{}\"}}", "a".repeat(1 << 20));
    let (s, e) = post(&c, &jobs, Some(TOKEN), huge.clone()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (413, Some("body-too-large")), "{e}");
    // The rest of that body is never read: the connection is closed, and the answer says
    // so, so that the client does not send its next request on it.
    let resp = c.post(&jobs).bearer_auth(TOKEN).body(huge).send().await.unwrap();
    assert_eq!(resp.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));

    // Ids and digests are checked before anything is looked up; a path never reaches the disk.
    for path in ["/v1/jobs/..%2F..%2Fqueue.sqlite3", "/v1/jobs/..%5Cqueue.sqlite3", "/v1/jobs/ABCDEF", "/v1/jobs/0123"]
    {
        let (s, e) = get(&c, &r.url(path)).await;
        assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad-id")), "{path}: {e}");
    }
    let (s, _) = post(&c, &r.url("/v1/jobs/..%2F..%2Fx/retry"), Some(TOKEN), "").await;
    assert_eq!(s, 400);
    // Dot segments are resolved by the client or refused by the router: never a job.
    let (s, e) = get(&c, &r.url("/v1/jobs/%2e%2e/%2e%2e/queue.sqlite3")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not-found")), "{e}");
    let (s, _) = get(&c, &r.url("/v1/jobs/0123456789abcdef0123456789abcdef")).await;
    assert_eq!(s, 404);
    let (s, e) = get(&c, &r.url("/v1/images/latest")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad-digest")));
    let (s, e) = get(&c, &r.url("/v1/jobs?owner=me")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad-filter")));
    let (s, e) = get(&c, &r.url("/nothing/here")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not-found")));

    let (s, e) = post(&c, &jobs, Some(TOKEN), body).await;
    assert_eq!(s, 201, "{e}");
    let check = json!({"kind": "check", "source": "noop", "rev": commit_id("v1"), "toolchain": TOOLCHAIN});
    let (s, e) = post(&c, &jobs, Some(TOKEN), check.to_string()).await;
    assert_eq!((s, e["kind"].as_str(), e["state"].as_str()), (201, Some("check"), Some("queued")), "{e}");
    let check =
        json!({"kind": "check", "source": "noop", "rev": commit_id("v1"), "toolchain": "go:1.22", "reference": "/x"});
    let (s, e) = post(&c, &jobs, Some(TOKEN), check.to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid-fields")), "{e}");
    // This server has no resolver: a rev that is not a full commit id is refused, never
    // keyed as written (a branch would be one job forever).
    for body in [
        verify("noop", "main"),
        verify("noop", &commit_id("v1")[..39]),
        json!({"kind": "check", "source": "noop", "rev": "v1", "toolchain": TOOLCHAIN}),
    ] {
        let (s, e) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("unresolved-revision")), "{body}: {e}");
        assert!(e["error"]["message"].as_str().unwrap_or_default().contains("not a full commit id"), "{e}");
    }
    r.shutdown().await;

    // No token configured: the server does not start.
    let no_token = Config::new(dir.path().to_path_buf(), String::new());
    assert!(matches!(Server::open(no_token, Double::default()), Err(server::ServerError::NoToken)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_can_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 0);
    cfg.read_needs_token = true;
    let r = start(cfg, Double::default()).await;
    let c = client();
    let (s, _) = get(&c, &r.url("/v1/jobs")).await;
    assert_eq!(s, 401);
    let resp = c.get(r.url("/v1/jobs")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (s, _) = get(&c, &r.url("/healthz")).await;
    assert_eq!(s, 200);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_work_submitted_twice_is_one_job_also_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(dir.path(), 0), Double::default()).await;
    let c = client();
    let jobs = r.url("/v1/jobs");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, jobs) = (c.clone(), jobs.clone());
        tasks.push(tokio::spawn(async move {
            post(&c, &jobs, Some(TOKEN), verify("noop", &commit_id("v1")).to_string()).await
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (s, job) = t.await.unwrap();
        assert!(s == 201 || s == 200, "{s} {job}");
        created += usize::from(s == 201);
        assert_eq!(job["state"], "queued");
        ids.insert(job["id"].as_str().unwrap().to_string());
    }
    assert_eq!((created, ids.len()), (1, 1), "{ids:?}");
    // Key order does not matter; another revision or recipe is other work.
    let reordered = r#"{"recipe": {"env": {"CGO_ENABLED": "0"}, "trimpath": true}, "toolchain": "TC", "rev": "REV",
        "reference": "oci://127.0.0.1:5000/app@DIGEST#/app", "source": "noop", "kind": "verify"}"#
        .replace("REV", &commit_id("v1"))
        .replace("TC", TOOLCHAIN)
        .replace("DIGEST", IMAGE_DIGEST);
    let (s, job) = post(&c, &jobs, Some(TOKEN), reordered).await;
    assert_eq!((s, job["id"].as_str()), (200, ids.first().map(String::as_str)));
    let (s, other) = post(&c, &jobs, Some(TOKEN), verify("noop", &commit_id("v2")).to_string()).await;
    assert_eq!(s, 201);
    assert_ne!(other["id"], job["id"]);
    let (_, list) = get(&c, &r.url("/v1/jobs?state=queued")).await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(2), "{list}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_jobs_results_are_kept_and_found_by_image_and_module() {
    let dir = tempfile::tempdir().unwrap();
    let double = Double::default();
    let r = start(config(dir.path(), 2), double.clone()).await;
    let c = client();
    let jobs = r.url("/v1/jobs");
    let (_, ok) = post(&c, &jobs, Some(TOKEN), verify("noop", &commit_id("v1")).to_string()).await;
    let (_, bad) = post(&c, &jobs, Some(TOKEN), verify("fail", &commit_id("v1")).to_string()).await;
    let (_, audit) = post(
        &c,
        &jobs,
        Some(TOKEN),
        json!({"kind": "audit", "image": format!("127.0.0.1:5000/other@sha256:{}", "3".repeat(64))}).to_string(),
    )
    .await;
    let id = ok["id"].as_str().unwrap();

    let done = wait_state(&c, &r, id, "done").await;
    assert_eq!(done["verdict"], "reproduced");
    assert_eq!(done["report"]["rev"], commit_id("v1"));
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["resultsStored"], 1);
    assert_eq!(done["module"], "example.com/app");
    assert_eq!(done["attestations"][0]["name"], "vsa");
    assert_eq!(done["attestations"][0]["content"]["payload"], "x");
    // The report is a content-addressed blob.
    let digest = done["reportDigest"].as_str().unwrap();
    let blob = dir.path().join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let bytes = std::fs::read(&blob).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), digest);

    let failed = wait_state(&c, &r, bad["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["failure"]["class"], "infrastructure");
    let failed = wait_state(&c, &r, audit["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["failure"]["class"], "unsupported");

    // The latest verdict for the image's digest.
    let (s, v) = get(&c, &r.url(&format!("/v1/images/{IMAGE_DIGEST}"))).await;
    assert_eq!((s, v["id"].as_str(), v["state"].as_str()), (200, Some(id), Some("done")), "{v}");
    assert_eq!((v["verdict"].as_str(), v["digest"].as_str()), (Some("reproduced"), Some(IMAGE_DIGEST)));
    let (s, _) = get(&c, &r.url(&format!("/v1/images/sha256:{}", "4".repeat(64)))).await;
    assert_eq!(s, 404);

    // Filters.
    let ids = |v: &Value| -> Vec<String> {
        v["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
    };
    let (_, l) = get(&c, &r.url("/v1/jobs?state=done")).await;
    assert_eq!(ids(&l), [id]);
    let (_, l) = get(&c, &r.url(&format!("/v1/jobs?image={}", IMAGE_DIGEST.replace(':', "%3A")))).await;
    assert_eq!(ids(&l).len(), 2, "{l}");
    let (_, l) = get(&c, &r.url("/v1/jobs?module=example.com%2Fapp")).await;
    assert_eq!(ids(&l), [id]);
    let (_, l) = get(&c, &r.url("/v1/jobs?state=failed&limit=1")).await;
    assert_eq!(ids(&l).len(), 1);
    let (_, l) = get(&c, &r.url("/v1/jobs")).await;
    assert_eq!(ids(&l).len(), 3);

    // Retry: a finished job runs again under the same id; a queued one cannot be retried.
    let (s, again) = post(&c, &r.url(&format!("/v1/jobs/{id}/retry")), Some(TOKEN), "").await;
    assert_eq!((s, again["id"].as_str()), (200, Some(id)), "{again}");
    let (s, _) = post(&c, &r.url(&format!("/v1/jobs/{id}/retry")), None, "").await;
    assert_eq!(s, 401);
    let done = wait_state(&c, &r, id, "done").await;
    assert_eq!(done["resultsStored"], 1);
    assert_eq!(double.runs.lock().unwrap().get(id), Some(&2));
    let (s, _) = post(&c, &r.url(&format!("/v1/jobs/{}/retry", "0".repeat(32))), Some(TOKEN), "").await;
    assert_eq!(s, 404);
    let (_, slow) = post(&c, &jobs, Some(TOKEN), verify("slow", &commit_id("v1")).to_string()).await;
    let slow_id = slow["id"].as_str().unwrap();
    wait_state(&c, &r, slow_id, "running").await;
    let (s, e) = post(&c, &r.url(&format!("/v1/jobs/{slow_id}/retry")), Some(TOKEN), "").await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("not-finished")));

    // The metrics parse strictly and count what happened.
    let text = c.get(r.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = prometheus::parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v)))
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{name} {labels:?} missing\n{text}"))
    };
    assert_eq!(value("reprove_serve_jobs", &[("state", "done")]), 1.0);
    assert_eq!(value("reprove_serve_jobs", &[("state", "failed")]), 2.0);
    assert_eq!(value("reprove_serve_jobs", &[("state", "running")]), 1.0);
    assert_eq!(value("reprove_serve_jobs_failed", &[("class", "unsupported")]), 1.0);
    assert_eq!(value("reprove_serve_failures_total", &[("class", "infrastructure")]), 1.0);
    assert_eq!(value("reprove_serve_workers", &[]), 2.0);
    assert_eq!(value("reprove_serve_workers_busy", &[]), 1.0);
    assert_eq!(value("reprove_serve_job_duration_seconds_count", &[("kind", "verify"), ("state", "done")]), 2.0);
    assert!(value("reprove_serve_rejected_total", &[("reason", "unauthorized")]) >= 1.0);
    assert!(value("reprove_serve_queue_oldest_seconds", &[]) >= 0.0);

    // Graceful shutdown hands the running job back.
    r.shutdown().await;
    assert_eq!(double.cancelled.load(Ordering::SeqCst), 1);
    let q = Sqlite::open(&dir.path().join("queue.sqlite3")).unwrap();
    let job = q.get(slow_id).unwrap().unwrap();
    assert_eq!((job.state, job.attempts, job.lease_owner), (State::Queued, 0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_workers_job_is_leased_again_once_and_its_result_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = JobSpec::parse(verify("noop", &commit_id("v1")).to_string().as_bytes()).unwrap();
    {
        // A worker of another process claims the job and is lost: its lease lapses.
        let q = Sqlite::open(&dir.path().join("queue.sqlite3")).unwrap();
        let (job, new) = q.submit(&spec, now_ms()).unwrap();
        assert!(new);
        let claimed = q.claim("lost-worker", now_ms(), 300, 3).unwrap().unwrap();
        assert_eq!((claimed.id.as_str(), claimed.attempts), (job.id.as_str(), 1));
        // Nobody else can claim it while the lease holds.
        assert_eq!(q.claim("other", now_ms(), 300, 3).unwrap(), None);
    }
    let double = Double::default();
    let r = start(config(dir.path(), 1), double.clone()).await;
    let c = client();
    let done = wait_state(&c, &r, &spec.id(), "done").await;
    assert_eq!((done["attempts"].as_u64(), done["resultsStored"].as_u64()), (Some(2), Some(1)), "{done}");
    assert_eq!(double.runs.lock().unwrap().get(&spec.id()), Some(&1));
    r.shutdown().await;

    // The lost worker coming back cannot overwrite the result, nor renew its lease.
    let q = Sqlite::open(&dir.path().join("queue.sqlite3")).unwrap();
    assert!(!q.heartbeat(&spec.id(), "lost-worker", now_ms(), 300, None).unwrap());
    let outcome = server::queue::Outcome {
        state: State::Failed,
        verdict: None,
        report: None,
        attestations: Vec::new(),
        module: None,
        failure_class: Some("late".into()),
        failure_message: None,
    };
    assert!(!q.finish(&spec.id(), "lost-worker", now_ms(), &outcome).unwrap());
    assert_eq!(q.get(&spec.id()).unwrap().unwrap().results_stored, 1);

    // A job whose workers keep getting lost fails after the attempt limit.
    let spec2 = JobSpec::parse(verify("noop", "v9").to_string().as_bytes()).unwrap();
    q.submit(&spec2, now_ms()).unwrap();
    for _ in 0..2 {
        assert!(q.claim("dies", now_ms(), -1, 2).unwrap().is_some());
    }
    assert_eq!(q.claim("dies", now_ms(), -1, 2).unwrap(), None);
    let j = q.get(&spec2.id()).unwrap().unwrap();
    assert_eq!((j.state, j.failure_class.as_deref()), (State::Failed, Some("lease-expired")));
}

/// Two servers on one PostgreSQL database (a real one, started by the test), each with its
/// own data directory: a job submitted to the one without workers is run by the other,
/// and its report and attestation, kept in PostgreSQL, are answered by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_share_jobs_and_results() {
    let pg = tokio::task::spawn_blocking(postgres::Cluster::start).await.unwrap();
    let url = pg.database("api");
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on_pg = |dir: &Path, workers| {
        let mut c = config(dir, workers);
        c.database = server::queue::Database::parse(&url).unwrap();
        c
    };
    let double = Double::default();
    let runner = start(on_pg(d1.path(), 1), double.clone()).await;
    let front = start(on_pg(d2.path(), 0), Double::default()).await;
    let c = client();
    let (s, job) =
        post(&c, &front.url("/v1/jobs"), Some(TOKEN), verify("noop", &commit_id("shared")).to_string()).await;
    assert_eq!(s, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    let done = wait_state(&c, &front, id, "done").await;
    assert_eq!(
        (done["report"]["rev"].as_str(), done["resultsStored"].as_u64()),
        (Some(commit_id("shared").as_str()), Some(1)),
        "{done}"
    );
    assert_eq!(done["attestations"][0]["content"]["payload"], "x", "{done}");
    assert_eq!(double.runs.lock().unwrap().get(id), Some(&1));
    let (s, v) = get(&c, &runner.url(&format!("/v1/images/{IMAGE_DIGEST}"))).await;
    assert_eq!(
        (s, v["id"].as_str(), v["report"]["rev"].as_str()),
        (200, Some(id), Some(commit_id("shared").as_str())),
        "{v}"
    );
    // Neither data directory holds a blob: they are in the database.
    for d in [d1.path(), d2.path()] {
        assert!(!d.join("blobs").exists(), "{}", d.display());
    }
    let digest = done["reportDigest"].as_str().unwrap().to_string();
    assert_eq!(pg.psql("api", &format!("SELECT count(*) FROM blobs WHERE digest = '{digest}'")), "1\n");
    runner.shutdown().await;
    front.shutdown().await;
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[test]
fn the_openapi_document_names_every_route_and_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    for (method, route) in server::ROUTES {
        assert!(doc["paths"][route][method].is_object(), "{method} {route} is not in {}", path.display());
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, server::ROUTES.len(), "the document has operations the server does not serve");
    for name in server::SCHEMAS {
        assert!(doc["components"]["schemas"][name].is_object(), "schema {name} is missing");
    }
    // Every reference in the document resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "$ref {name} does not resolve");
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn sha256_hex(b: &[u8]) -> String {
    stdx::sha256_hex(b)
}

/// An idle in-process worker is woken by a submission: with a poll of a minute, the job
/// still starts at once (it would wait for the poll without the wake), and so does one
/// retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_wakes_an_idle_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1);
    c.poll = Duration::from_secs(60);
    let r = start(c, Double::default()).await;
    let client = client();
    // The worker has found the queue empty and waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for rev in ["v1", "v2"] {
        let submitted = std::time::Instant::now();
        let (status, job) =
            post(&client, &r.url("/v1/jobs"), Some(TOKEN), verify("noop", &commit_id(rev)).to_string()).await;
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_str().unwrap().to_string();
        let done = wait_state(&client, &r, &id, "done").await;
        assert!(submitted.elapsed() < Duration::from_secs(5), "{:?}: {done}", submitted.elapsed());
        // The server's own measure of that wait.
        assert!(done["waitedMs"].as_i64().is_some_and(|w| (0..5_000).contains(&w)), "{done}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if rev == "v2" {
            let retried = std::time::Instant::now();
            let (status, again) = post(&client, &r.url(&format!("/v1/jobs/{id}/retry")), Some(TOKEN), "").await;
            assert_eq!(status, 200, "{again}");
            let done = wait_state(&client, &r, &id, "done").await;
            assert!(retried.elapsed() < Duration::from_secs(5), "{:?}: {done}", retried.elapsed());
        }
    }
    r.shutdown().await;
}

/// Revisions resolved in real repositories by the `source` crate, as `reprove serve`'s
/// resolver does (git2 for a path, an ls-remote for a URL).
struct Git;

impl server::Resolver for Git {
    fn resolve(&self, location: &str, rev: &str, timeout: Duration) -> Result<String, server::ResolveError> {
        let opts = source::CloneOptions { timeout, ..source::CloneOptions::from_env() };
        source::Source::resolve_commit(location, rev, &opts).map_err(|e| match e {
            source::SourceError::Revision { .. } => server::ResolveError::UnknownRevision(e.to_string()),
            e if e.is_input() || e.is_security() => server::ResolveError::BadSource(e.to_string()),
            e => server::ResolveError::Unreachable(e.to_string()),
        })
    }
}

/// A commit on `HEAD` of `repo` (an empty tree, a message of its own).
fn commit(repo: &git2::Repository, message: &str) -> String {
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    let mut builder = repo.treebuilder(None).unwrap();
    let blob = repo.blob(message.as_bytes()).unwrap();
    builder.insert("file.txt", blob, 0o100644).unwrap();
    let tree = repo.find_tree(builder.write().unwrap()).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap().to_string()
}

/// The key is what determines the result: a branch is pinned to the commit it names when
/// submitted (the same branch after a new commit is another job), a tag and its commit
/// are one job, in a local repository (git2) and at a file:// URL (an ls-remote) alike.
/// What was resolved is shown in the job; a rev that names nothing is a 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_is_keyed_by_the_commit_it_names_when_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo =
        git2::Repository::init_opts(repo_dir.path(), git2::RepositoryInitOptions::new().initial_head("main")).unwrap();
    let c1 = commit(&repo, "one");
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    let target = repo.find_object(git2::Oid::from_str(&c1).unwrap(), None).unwrap();
    repo.tag("v1.0.0", &target, &sig, "release", false).unwrap();

    let r = start_resolving(config(dir.path(), 0), Double::default(), Some(Arc::new(Git))).await;
    let c = client();
    let jobs = r.url("/v1/jobs");
    let path = repo_dir.path().display().to_string();
    let url = format!("file://{path}");
    for source in [&path, &url] {
        let (s, first) = post(&c, &jobs, Some(TOKEN), verify(source, "main").to_string()).await;
        assert_eq!((s, first["commit"].as_str()), (201, Some(c1.as_str())), "{first}");
        // The spec is kept as written, with the commit it named.
        assert_eq!(
            (first["spec"]["rev"].as_str(), first["spec"]["commit"].as_str()),
            (Some("main"), Some(c1.as_str()))
        );
        for same in ["v1.0.0", c1.as_str(), &c1.to_uppercase()] {
            let (s, again) = post(&c, &jobs, Some(TOKEN), verify(source, same).to_string()).await;
            assert_eq!((s, again["id"].as_str()), (200, first["id"].as_str()), "{same}: {again}");
        }
        let (s, e) = post(&c, &jobs, Some(TOKEN), verify(source, "no-such-branch").to_string()).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("unknown-revision")), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains("no-such-branch") && message.contains(&path), "{message}");
    }
    // main moves: the same submission is other work now.
    let c2 = commit(&repo, "two");
    let mut ids = std::collections::BTreeSet::new();
    for source in [&path, &url] {
        let (s, moved) = post(&c, &jobs, Some(TOKEN), verify(source, "main").to_string()).await;
        assert_eq!((s, moved["commit"].as_str()), (201, Some(c2.as_str())), "{moved}");
        ids.insert(moved["id"].as_str().unwrap().to_string());
        // A check job is pinned the same way.
        let check = json!({"kind": "check", "source": source, "rev": "main", "toolchain": TOOLCHAIN});
        let (s, job) = post(&c, &jobs, Some(TOKEN), check.to_string()).await;
        assert_eq!(
            (s, job["commit"].as_str(), job["spec"]["commit"].as_str()),
            (201, Some(c2.as_str()), Some(c2.as_str())),
            "{job}"
        );
    }
    let (_, list) = get(&c, &r.url("/v1/jobs?limit=1000")).await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(6), "{list}");

    // Not a repository: a 422 of its own; the commit is the server's to set.
    let missing = repo_dir.path().join("missing").display().to_string();
    let (s, e) = post(&c, &jobs, Some(TOKEN), verify(&missing, "main").to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid-source")), "{e}");
    let mut forged = verify(&path, "main");
    forged["commit"] = json!(c1);
    let (s, e) = post(&c, &jobs, Some(TOKEN), forged.to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid-fields")), "{e}");
    // A source that cannot be reached is not the submitter's error: a 502.
    let (s, e) = post(&c, &jobs, Some(TOKEN), verify("http://127.0.0.1:1/app.git", "main").to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (502, Some("source-unreachable")), "{e}");
    r.shutdown().await;
}

/// A reference given as a path is keyed by its content: the same file unchanged is one
/// job, changed it is another, changed back the first again; a missing file is a 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_file_is_keyed_by_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let reference = files.path().join("app");
    std::fs::write(&reference, b"first build").unwrap();
    let r = start(config(dir.path(), 0), Double::default()).await;
    let c = client();
    let jobs = r.url("/v1/jobs");
    let mut body = verify("noop", &"a".repeat(40));
    body["reference"] = json!(reference.display().to_string());
    let (s, first) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    let want = format!("sha256:{}", sha256_hex(b"first build"));
    assert_eq!((s, first["referenceDigest"].as_str()), (201, Some(want.as_str())), "{first}");
    assert_eq!(first["spec"]["referenceDigest"].as_str(), Some(want.as_str()));
    let (s, same) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    assert_eq!((s, same["id"].as_str()), (200, first["id"].as_str()), "{same}");
    std::fs::write(&reference, b"second build").unwrap();
    let (s, changed) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    assert_eq!(s, 201, "{changed}");
    assert_ne!(changed["id"], first["id"]);
    std::fs::write(&reference, b"first build").unwrap();
    let (s, back) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    assert_eq!((s, back["id"].as_str()), (200, first["id"].as_str()), "{back}");
    std::fs::remove_file(&reference).unwrap();
    let (s, e) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid-reference")), "{e}");
    // A FIFO in its place: refused at once, not waited on for a writer.
    let made = std::process::Command::new("mkfifo").arg(&reference).status().unwrap();
    assert!(made.success());
    let asked = std::time::Instant::now();
    let (s, e) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid-reference")), "{e}");
    assert!(e["error"]["message"].as_str().is_some_and(|m| m.contains("not a regular file")), "{e}");
    assert!(asked.elapsed() < Duration::from_secs(3), "{:?}", asked.elapsed());
    r.shutdown().await;
}

/// Downloaded references no queued or running job needs are removed once older than the
/// retention; a queued job's is kept however old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_references_no_job_needs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("references/sha256");
    std::fs::create_dir_all(&store).unwrap();
    let (needed, orphan) = (sha256_hex(b"needed"), sha256_hex(b"orphan"));
    let mut config = config(dir.path(), 0);
    config.reference_retention = Duration::from_secs(2);
    let r = start(config, Double::default()).await;
    let mut body = verify("noop", &"a".repeat(40));
    body["reference"] = json!("https://127.0.0.1:1/app");
    body["referenceDigest"] = json!(format!("sha256:{needed}"));
    let (s, job) = post(&client(), &r.url("/v1/jobs"), Some(TOKEN), body.to_string()).await;
    assert_eq!((s, job["state"].as_str()), (201, Some("queued")), "{job}");
    // Both written long ago, once the job is queued.
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(86400);
    for name in [&needed, &orphan] {
        std::fs::File::create(store.join(name)).unwrap().set_modified(long_ago).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.join(&orphan).exists() {
        assert!(std::time::Instant::now() < deadline, "the orphan was not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another pass, and the queued job's file is still there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(store.join(&needed).exists(), "a queued job's reference was removed");
    r.shutdown().await;
}

/// A reference URL given with its digest (a release's checksum) is not downloaded at
/// submission: the job is keyed by that digest at once, whatever the URL answers now
/// (here nothing listens), and the worker downloads and checks it. Whether the URL may
/// be downloaded is still checked; without the digest the server downloads it (and an
/// unreachable URL is refused); a path's digest is the server's to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_url_given_with_its_digest_is_keyed_without_downloading() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(dir.path(), 0), Double::default()).await;
    let c = client();
    let jobs = r.url("/v1/jobs");
    let digest = format!("sha256:{}", sha256_hex(b"the release"));
    let with = |reference: &str, digest: &str| {
        let mut body = verify("noop", &"a".repeat(40));
        body["reference"] = json!(reference);
        body["referenceDigest"] = json!(digest);
        body.to_string()
    };
    let url = "https://127.0.0.1:1/releases/app";
    let asked = std::time::Instant::now();
    let (s, first) = post(&c, &jobs, Some(TOKEN), with(url, &digest)).await;
    assert_eq!((s, first["referenceDigest"].as_str()), (201, Some(digest.as_str())), "{first}");
    assert!(asked.elapsed() < Duration::from_secs(3), "{:?}", asked.elapsed());
    assert_eq!(first["spec"]["reference"].as_str(), Some(url));
    // Keyed by the content: the same digest at another URL is the same job.
    let (s, same) = post(&c, &jobs, Some(TOKEN), with("https://127.0.0.1:1/mirror/app", &digest)).await;
    assert_eq!((s, same["id"].as_str()), (200, first["id"].as_str()), "{same}");
    assert!(!dir.path().join("references/sha256").join(&digest[7..]).exists(), "nothing is downloaded");
    // Without it, the server downloads it, and nothing answers there.
    let mut body = verify("noop", &"a".repeat(40));
    body["reference"] = json!(url);
    let (s, e) = post(&c, &jobs, Some(TOKEN), body.to_string()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (502, Some("reference-unreachable")), "{e}");
    // Refused however the digest is given.
    for (reference, digest, want) in [
        ("http://127.0.0.1:1/app", digest.as_str(), (422, "insecure-reference")),
        ("https://user:secret@127.0.0.1:1/app", digest.as_str(), (422, "invalid-reference")),
        (url, "sha256:ABC", (422, "invalid-field")),
        (url, &digest.to_uppercase().replace("SHA256", "sha256"), (422, "invalid-field")),
        ("/srv/releases/app", digest.as_str(), (422, "invalid-fields")),
    ] {
        let (s, e) = post(&c, &jobs, Some(TOKEN), with(reference, digest)).await;
        assert_eq!((s, e["error"]["code"].as_str().unwrap_or_default()), want, "{reference} {digest}: {e}");
    }
    let (_, list) = get(&c, &r.url("/v1/jobs?limit=100")).await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1), "{list}");
    r.shutdown().await;
}
