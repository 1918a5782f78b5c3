//! `reprove worker` processes against a `reprove serve --workers 0` process, over the
//! worker API only (the workers have no database, and the server's GOPROXY is `off`, so it
//! could not build anything itself):
//!
//! - a real verify job (the `verify_e2e` fixture, as `serve`'s test) runs on a worker that
//!   signs with its own key; SIGTERM hands it back; kill -9 of the next worker mid-build
//!   (held in its module fetch by a GOPROXY that pauses 2 s per answer, with a cache of the
//!   workers' own) leaves it to a third worker once the lease expires: attempts 2, results
//!   stored 1, and the server serves the report and the worker's VSA; on SQLite and on one
//!   PostgreSQL;
//! - 10 worker processes run 10,000 no-op jobs (`noop-jobs = true`): each job done once,
//!   none lost, none run twice, and the throughput printed, on SQLite and on one PostgreSQL;
//! - bad worker tokens, a result after the lease was lost, hostile ids and bodies; a worker
//!   started before its server waits and then runs jobs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::serve::{Options, Serve, TOKEN};
use crate::support::server::{Behavior, Serve as Files, Server};
use crate::support::{goenv, reprove_bin};
use crate::verify_e2e::{shared, Project};

/// A `reprove worker` process, killed when dropped (also used by `serve_url`).
pub(crate) struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    /// Starts `reprove worker --name NAME --jobs JOBS EXTRA…` against `server`, with `env`
    /// set after the hermetic environment.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        dir: &Path,
        server: &str,
        token: &str,
        cache: &Path,
        proxy: &str,
        name: &str,
        jobs: u32,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Worker {
        let log = dir.join(format!("worker-{name}.log"));
        let mut cmd = Command::new(reprove_bin());
        let mut vars = vec![("GOPROXY", proxy.to_string())];
        vars.extend(env.iter().cloned());
        goenv::base_env(&mut cmd, dir, &cache.join("unused-host-modcache"), &vars);
        cmd.env_remove("REPROVE_API_TOKEN")
            .env("REPROVE_WORKER_TOKEN", token)
            .env("COSIGN_PASSWORD", crate::attest_registry::PASSWORD)
            .args(["worker", "--server", server, "--name", name, "--jobs", &jobs.to_string()])
            .args(["--log-format", "json", "--runtime", "runc", "--cache-dir"])
            .arg(cache)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")));
        Worker { child: cmd.spawn().unwrap_or_else(|e| panic!("{e}")), log }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The whole log lines, parsed (a line being written may be cut).
    fn lines(&self) -> Vec<Value> {
        self.log_text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn wait_line(&self, what: &str, found: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.lines().into_iter().find(&found) {
                return l;
            }
            assert!(Instant::now() < deadline, "no {what} in the worker's log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM; the exit code.
    fn term(mut self) -> (Option<i32>, String) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap_or_else(|e| panic!("{e}"));
        let status = self.child.wait().unwrap_or_else(|e| panic!("{e}"));
        (status.code(), self.log_text())
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

#[test]
fn a_verify_job_runs_on_worker_processes_through_sigterm_and_kill_9_and_is_reproduced() {
    verify_on_workers(&[]);
}

/// The same with the queue and the results in one PostgreSQL (a throwaway cluster).
#[test]
fn a_verify_job_survives_a_killed_worker_on_postgres() {
    let pg = crate::serve::postgres::Cluster::start();
    let url = pg.database("workers");
    verify_on_workers(&["--database", &url]);
}

/// A real verify job on `reprove worker` processes of a server started with `server_args`.
fn verify_on_workers(server_args: &[&str]) {
    let s = shared();
    let p = Project::new();
    let reference = p.reference("verifyapp", "go", &[]);
    let job = json!({
        "kind": "verify",
        "source": p.repo.display().to_string(),
        "rev": "main",
        "reference": reference.display().to_string(),
        "toolchain": s.toolchain,
        "recipe": {"ldflags": ""},
        "fromReference": true,
    });
    // The workers sign with their own key; the server has none (and no GOPROXY).
    crate::attest_registry::keygen(&p.path(""), "worker").unwrap_or_else(|e| panic!("{e}"));
    let config = p.path("worker.toml");
    std::fs::write(&config, format!("key = {:?}\n", p.path("worker.key").display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = config.display().to_string();
    let signing = ["--config", config.as_str()];

    let serve = Serve::start(&p.path(""), &p.path("serve-data"), &s.cache, "off", 0, 1, server_args);
    let url = format!("http://{}", serve.addr);
    let (status, submitted) = serve.request("POST", "/v1/jobs", Some(TOKEN), &job.to_string());
    assert_eq!(status, 201, "{submitted}");
    let id = id_of(&submitted);

    // The workers' own cache and a GOPROXY that pauses before every answer: a job is still
    // fetching its module seconds after it started.
    let cache = p.path("worker-cache");
    let slow =
        Server::start(Behavior::Serve(Files { delay: Duration::from_secs(2), ..Files::dir(&goenv::proxy_root()) }));
    let here = p.path("");
    let worker = |name: &str| Worker::start(&here, &url, TOKEN, &cache, &slow.url(), name, 1, &signing, &[]);

    // SIGTERM hands the running job back, its attempt not counted.
    let a = worker("a");
    let running = serve.wait(&id, |j| j["state"] == "running", Duration::from_secs(60));
    assert_eq!(running["attempts"], 1, "{running:#}");
    std::thread::sleep(Duration::from_millis(1500));
    let (code, log) = a.term();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("\"job handed back\"") && log.contains("Ok(true)"), "{log}");
    let back = serve.job(&id);
    assert_eq!((back["state"].as_str(), back["attempts"].as_u64()), (Some("queued"), Some(0)), "{back:#}");

    // kill -9 mid-build: the lease lapses and another worker runs the job again.
    let b = worker("b");
    serve.wait(&id, |j| j["state"] == "running", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    let mid = serve.job(&id);
    assert_eq!(mid["state"], "running", "{mid:#}");
    // Heartbeats carry the pipeline's step from the worker to the server.
    assert!(mid["progress"].is_string(), "{mid:#}");
    b.kill9();
    let c = worker("c");
    let done = serve.wait(&id, |j| j["state"] == "done" || j["state"] == "failed", Duration::from_secs(600));
    assert_eq!(done["state"], "done", "{done:#}\n{}", c.log_text());
    assert_eq!(done["verdict"], "reproduced");
    assert_eq!(done["report"]["verdict"], "reproduced");
    assert_eq!(done["report"]["inputs"]["source"]["commit"], p.commit.as_str());
    assert_eq!(done["report"]["rebuilt"]["sha256"], done["report"]["inputs"]["reference"]["sha256"]);
    assert_eq!((done["attempts"].as_u64(), done["resultsStored"].as_u64()), (Some(2), Some(1)), "{done:#}");
    crate::support::schema::assert_valid("report.schema.json", &done["report"]);
    let started =
        c.wait_line("job started", |l| l["message"] == "job started" && l["id"] == id.as_str(), Duration::ZERO);
    assert_eq!(started["attempt"], "2", "{started}");
    assert!(serve.log_text().contains("job finished by a remote worker"), "{}", serve.log_text());

    // The server serves the worker's VSA, which verifies with the worker's key.
    let names: Vec<&str> =
        done["attestations"].as_array().into_iter().flatten().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["provenance", "vsa"], "{done:#}");
    let vsa = p.path("vsa.intoto.jsonl");
    std::fs::write(&vsa, format!("{}\n", done["attestations"][1]["content"])).unwrap_or_else(|e| panic!("{e}"));
    let digest = format!("sha256:{}", done["report"]["inputs"]["reference"]["sha256"].as_str().unwrap_or_default());
    let mut check = Command::new(reprove_bin());
    check.current_dir(p.path("")).args(["attest", "verify", "--key", "worker.pub", "--digest", &digest]);
    check.args(["--predicate-type", "https://slsa.dev/verification_summary/v1"]).arg(&vsa);
    let out = crate::support::run(&mut check).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());
}

/// The samples of `name` in the server's metrics, by their label text.
fn metric(serve: &Serve, name: &str, labels: &str) -> Option<f64> {
    let (_, text) = serve.request("GET", "/metrics", None, "");
    let want = format!("{name}{labels} ");
    text.as_str()?.lines().find_map(|l| l.strip_prefix(want.as_str())).and_then(|v| v.trim().parse().ok())
}

/// 10 worker processes (2 jobs at a time each) run 10,000 no-op jobs of one server started
/// with `server_args`: every job done once, none lost, none run twice; prints the throughput.
pub(crate) fn load(server_args: &[&str]) {
    const JOBS: u64 = 10_000;
    const WORKERS: usize = 10;
    let dir = goenv::tmp();
    let d = dir.path();
    let config = d.join("noop.toml");
    std::fs::write(&config, "noop-jobs = true\n").unwrap_or_else(|e| panic!("{e}"));
    let config = config.display().to_string();
    let mut args = vec!["--config", config.as_str()];
    args.extend_from_slice(server_args);
    // Leases long enough that only a lost worker, not a slow answer, frees a job.
    let serve = Serve::start_with(
        d,
        &d.join("data"),
        &d.join("cache"),
        "off",
        &Options { workers: 0, args: &args, lease_seconds: 60, ..Options::default() },
    );
    let url = format!("http://{}", serve.addr);

    let t = Instant::now();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..4u64)
            .map(|k| {
                let serve = &serve;
                scope.spawn(move || {
                    (k..JOBS)
                        .step_by(4)
                        .map(|n| {
                            let body = json!({"kind": "noop", "n": n}).to_string();
                            let (status, job) = serve.request("POST", "/v1/jobs", Some(TOKEN), &body);
                            assert_eq!(status, 201, "{job}");
                            id_of(&job)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        tasks.into_iter().flat_map(|t| t.join().unwrap_or_else(|_| panic!("a submitting thread panicked"))).collect()
    });
    let submitting = t.elapsed();
    assert_eq!(ids.iter().collect::<std::collections::BTreeSet<_>>().len(), JOBS as usize);

    let t = Instant::now();
    let workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker::start(d, &url, TOKEN, &d.join("cache"), "off", &format!("load{i}"), 2, &[], &[]))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while metric(&serve, "reprove_serve_jobs", "{state=\"done\"}") != Some(JOBS as f64) {
        assert!(
            Instant::now() < deadline,
            "not all done: {:?}",
            metric(&serve, "reprove_serve_jobs", "{state=\"queued\"}")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let running = t.elapsed();
    let rate = JOBS as f64 / running.as_secs_f64();
    let line = format!(
        "serve_workers::load {server_args:?}: {JOBS} no-op jobs submitted in {:.1} s ({:.0}/s); \
         {WORKERS} worker processes ran them in {:.1} s: {rate:.0} jobs/s\n",
        submitting.as_secs_f64(),
        JOBS as f64 / submitting.as_secs_f64(),
        running.as_secs_f64(),
    );
    // Straight to standard error, past the harness's capture: the figure is the point.
    let _ = std::io::stderr().write_all(line.as_bytes());

    // Every worker stops cleanly; together they finished each job exactly once.
    let mut finished = std::collections::BTreeMap::<String, usize>::new();
    for w in workers {
        let (code, log) = w.term();
        assert_eq!(code, Some(0), "{log}");
        assert!(!log.contains("\"error\""), "{log}");
        let lines = log.lines().map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")));
        for l in lines.filter(|l| l["message"] == "job finished") {
            *finished.entry(l["id"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
    }
    assert_eq!(finished.len(), JOBS as usize, "jobs finished by the workers");
    assert!(finished.values().all(|n| *n == 1), "a job ran twice: {:?}", finished.iter().find(|(_, n)| **n > 1));
    for state in ["queued", "running", "failed"] {
        assert_eq!(metric(&serve, "reprove_serve_jobs", &format!("{{state=\"{state}\"}}")), Some(0.0), "{state}");
    }
    // And the server says so for each: done, leased once, its result stored once.
    let t = Instant::now();
    std::thread::scope(|scope| {
        for chunk in ids.chunks(ids.len() / 4 + 1) {
            let serve = &serve;
            scope.spawn(move || {
                for id in chunk {
                    let j = serve.job(id);
                    assert_eq!(
                        (
                            j["state"].as_str(),
                            j["verdict"].as_str(),
                            j["attempts"].as_u64(),
                            j["resultsStored"].as_u64()
                        ),
                        (Some("done"), Some("noop"), Some(1), Some(1)),
                        "{j:#}"
                    );
                }
            });
        }
    });
    let _ = writeln!(
        std::io::stderr(),
        "serve_workers::load: the {JOBS} jobs checked in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn ten_worker_processes_run_ten_thousand_noop_jobs_once_each_on_sqlite() {
    load(&[]);
}

/// The same on one PostgreSQL (a throwaway cluster on 127.0.0.1): the claims are
/// `FOR UPDATE SKIP LOCKED`, the results in its `blobs` table.
#[test]
fn ten_worker_processes_run_ten_thousand_noop_jobs_once_each_on_postgres() {
    let pg = crate::serve::postgres::Cluster::start();
    let url = pg.database("load");
    load(&["--database", &url]);
}

#[test]
fn the_worker_api_refuses_bad_tokens_lost_leases_and_hostile_ids_and_a_worker_outlives_its_server() {
    const WORKER_TOKEN: &str = "worker-token-9b27e1";
    let dir = goenv::tmp();
    let d = dir.path();
    let config = d.join("server.toml");
    std::fs::write(&config, format!("noop-jobs = true\nworker-token = {WORKER_TOKEN:?}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = config.display().to_string();
    let cache = d.join("cache");

    // A worker started before its server: it says so, keeps trying, and runs jobs once the
    // server is up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let listen = format!("127.0.0.1:{port}");
    let early = Worker::start(d, &format!("http://{listen}"), WORKER_TOKEN, &cache, "off", "early", 1, &[], &[]);
    early.wait_line(
        "a failed claim",
        |l| l["message"] == "claiming a job" && l["level"] == "error",
        Duration::from_secs(30),
    );
    let mut early = early;
    assert!(early.child.try_wait().unwrap_or_else(|e| panic!("{e}")).is_none(), "{}", early.log_text());
    let serve = Serve::start_with(
        d,
        &d.join("data"),
        &cache,
        "off",
        &Options { workers: 0, args: &["--config", &config], listen: &listen, ..Options::default() },
    );
    let (status, first) = serve.request("POST", "/v1/jobs", Some(TOKEN), &json!({"kind": "noop", "n": 1}).to_string());
    assert_eq!(status, 201, "{first}");
    let done = serve.wait(&id_of(&first), |j| j["state"] == "done", Duration::from_secs(60));
    assert_eq!((done["verdict"].as_str(), done["resultsStored"].as_u64()), (Some("noop"), Some(1)), "{done:#}");
    let (code, log) = early.term();
    assert_eq!(code, Some(0), "{log}");

    let post = |path: &str, token: Option<&str>, body: &Value| serve.request("POST", path, token, &body.to_string());
    let x = json!({"worker": "x"});
    let y = json!({"worker": "y"});

    // Bad tokens: none, a wrong one, and the API token where the worker token is needed.
    let (_, second) = post("/v1/jobs", Some(TOKEN), &json!({"kind": "noop", "n": 2}));
    let id = id_of(&second);
    for path in [
        "/v1/worker/claim".to_string(),
        format!("/v1/worker/jobs/{id}/heartbeat"),
        format!("/v1/worker/jobs/{id}/finish"),
        format!("/v1/worker/jobs/{id}/release"),
    ] {
        for token in [None, Some("worker-token-9b27e2"), Some(TOKEN)] {
            let (status, e) = post(&path, token, &x);
            assert_eq!((status, e["error"]["code"].as_str()), (401, Some("unauthorized")), "{path} {token:?}: {e}");
        }
    }
    assert_eq!(serve.job(&id)["state"], "queued", "a refused claim leased nothing");

    // A finish after the lease was lost is refused and stores nothing.
    let (status, leased) = post("/v1/worker/claim", Some(WORKER_TOKEN), &x);
    assert_eq!(
        (status, leased["id"].as_str(), leased["attempt"].as_u64()),
        (200, Some(id.as_str()), Some(1)),
        "{leased}"
    );
    assert_eq!(leased["spec"], json!({"kind": "noop", "n": 2}));
    let (status, _) = post(
        &format!("/v1/worker/jobs/{id}/heartbeat"),
        Some(WORKER_TOKEN),
        &json!({"worker": "x", "progress": "build"}),
    );
    assert_eq!(status, 200);
    assert_eq!(serve.job(&id)["progress"], "build");
    let (status, e) = post(&format!("/v1/worker/jobs/{id}/heartbeat"), Some(WORKER_TOKEN), &y);
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("lease-lost")), "only the holder renews: {e}");
    let (status, none) = post("/v1/worker/claim", Some(WORKER_TOKEN), &y);
    assert_eq!(status, 204, "the job is leased and no other is queued: {none}");
    std::thread::sleep(Duration::from_millis(3500));
    let (status, again) = post("/v1/worker/claim", Some(WORKER_TOKEN), &y);
    assert_eq!((status, again["id"].as_str(), again["attempt"].as_u64()), (200, Some(id.as_str()), Some(2)), "{again}");
    let (status, _) = post(&format!("/v1/worker/jobs/{id}/heartbeat"), Some(WORKER_TOKEN), &x);
    assert_eq!(status, 409);
    let result = |by: &str| json!({"worker": by, "verdict": "noop", "report": {"by": by}, "attestations": [{"name": "vsa", "mediaType": "application/vnd.dsse.envelope.v1+json", "content": format!("{{\"by\":\"{by}\"}}")}]});
    let (status, e) = post(&format!("/v1/worker/jobs/{id}/finish"), Some(WORKER_TOKEN), &result("y"));
    assert_eq!(status, 200, "{e}");
    let (status, e) = post(&format!("/v1/worker/jobs/{id}/finish"), Some(WORKER_TOKEN), &result("x"));
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("lease-lost")), "{e}");
    let stored = serve.job(&id);
    assert_eq!((stored["attempts"].as_u64(), stored["resultsStored"].as_u64()), (Some(2), Some(1)), "{stored:#}");
    assert_eq!((&stored["report"], &stored["attestations"][0]["content"]), (&json!({"by": "y"}), &json!({"by": "y"})));
    let blob = |bytes: &str| d.join("data/blobs/sha256").join(stdx::sha256_hex(bytes.as_bytes()));
    assert!(blob("{\"by\":\"y\"}").is_file());
    assert!(!blob("{\"by\":\"x\"}").exists(), "the lost worker's result was stored");
    let (status, _) = post(&format!("/v1/worker/jobs/{id}/release"), Some(WORKER_TOKEN), &x);
    assert_eq!(status, 409);

    // Release hands a job back, its attempt not counted.
    let (_, third) = post("/v1/jobs", Some(TOKEN), &json!({"kind": "noop", "n": 3}));
    let (status, leased) = post("/v1/worker/claim", Some(WORKER_TOKEN), &x);
    assert_eq!((status, leased["id"].as_str()), (200, third["id"].as_str()), "{leased}");
    let (status, _) = post(&format!("/v1/worker/jobs/{}/release", id_of(&third)), Some(WORKER_TOKEN), &x);
    assert_eq!(status, 200);
    let back = serve.job(&id_of(&third));
    assert_eq!((back["state"].as_str(), back["attempts"].as_u64()), (Some("queued"), Some(0)), "{back:#}");

    // Hostile ids and bodies: refused before the queue or the disk sees them.
    for path in [
        "/v1/worker/jobs/..%2F..%2Fqueue.sqlite3/finish",
        "/v1/worker/jobs/..%5Cqueue.sqlite3/heartbeat",
        "/v1/worker/jobs/ABCDEF0123456789ABCDEF0123456789/release",
    ] {
        let (status, e) = post(path, Some(WORKER_TOKEN), &result("x"));
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("bad-id")), "{path}: {e}");
    }
    let (status, e) = post("/v1/worker/jobs/%2e%2e/%2e%2e/finish", Some(WORKER_TOKEN), &result("x"));
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not-found")), "{e}");
    let (status, e) = post(&format!("/v1/worker/jobs/{}/finish", "0".repeat(32)), Some(WORKER_TOKEN), &result("x"));
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("no-such-job")), "{e}");
    let bad: [(Value, u16, &str); 5] = [
        (json!({"worker": ""}), 422, "bad-worker"),
        (json!({"worker": "a\nb"}), 422, "bad-worker"),
        (json!({"worker": "x", "owner": "y"}), 422, "invalid-fields"),
        (json!("x"), 422, "invalid-fields"),
        (json!({"worker": "x".repeat(201)}), 422, "bad-worker"),
    ];
    for (body, want, code) in bad {
        let (status, e) = post("/v1/worker/claim", Some(WORKER_TOKEN), &body);
        assert_eq!((status, e["error"]["code"].as_str()), (want, Some(code)), "{body}: {e}");
    }
    let (status, e) = serve.request("POST", "/v1/worker/claim", Some(WORKER_TOKEN), "{\"worker\": ");
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("malformed-json")), "{e}");
    let (_, leased) = post("/v1/worker/claim", Some(WORKER_TOKEN), &x);
    let finish = format!("/v1/worker/jobs/{}/finish", id_of(&leased));
    for body in
        [json!({"worker": "x", "verdict": "noop"}), json!({"worker": "x", "report": {}}), json!({"worker": "x"})]
    {
        let (status, e) = post(&finish, Some(WORKER_TOKEN), &body);
        assert_eq!((status, e["error"]["code"].as_str()), (422, Some("invalid-result")), "{body}: {e}");
    }

    // A worker without a usable server URL, token or job count does not start (exit 2).
    for (args, token, words) in [
        (vec!["--server", "ftp://127.0.0.1:1", "--token", "t"], None, "http://"),
        (vec!["--server", "http://127.0.0.1:1"], None, "REPROVE_WORKER_TOKEN"),
        (vec!["--server", "http://127.0.0.1:1", "--jobs", "0"], Some(WORKER_TOKEN), "--jobs"),
    ] {
        let mut cmd = Command::new(reprove_bin());
        cmd.env_remove("REPROVE_WORKER_TOKEN").env_remove("REPROVE_SERVER").arg("worker").args(&args);
        cmd.arg("--cache-dir").arg(&cache);
        if let Some(t) = token {
            cmd.env("REPROVE_WORKER_TOKEN", t);
        }
        let out = crate::support::run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stderr_str());
        assert!(out.stderr_str().contains(words), "{words:?} in {}", out.stderr_str());
    }

    // Without noop-jobs in its config, a server refuses no-op jobs as an unknown kind.
    let plain = Serve::start(d, &d.join("data-plain"), &cache, "off", 0, 2, &[]);
    let (status, e) = plain.request("POST", "/v1/jobs", Some(TOKEN), &json!({"kind": "noop", "n": 1}).to_string());
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("unknown-kind")), "{e}");
}
