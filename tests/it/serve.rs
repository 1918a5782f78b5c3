//! `reprove serve` as a process, with its real executor (the verify pipeline), its SQLite
//! queue in a data directory, and kill -9: one real verify job (the `verify_e2e`
//! fixture, this machine's Go as the toolchain image in a registry on 127.0.0.1, the
//! test GOPROXY) is submitted over HTTP; the server is killed with jobs queued (nothing
//! is lost), killed again while the job runs (after a restart its lease expires, it
//! runs once more and its result is stored once), and the report says `reproduced`.
//! A second job that cannot run (an unknown revision) fails with the class `input`.
//! SIGTERM stops the server cleanly; the JSON logs and the metrics parse.
//!
//! An audit job: an image holding a `go install`ed program (as `audit_e2e`'s), pushed to
//! the test registry, audited through `audit::audit` with the auditor's directory from
//! the config file; its verdict is then the latest one for the image's digest.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::server::{Behavior, Serve as Files, Server};
use crate::support::{goenv, reprove_bin};
use crate::verify_e2e::{shared, Project};

#[path = "../common/prometheus.rs"]
pub(super) mod prometheus;

#[path = "../common/postgres.rs"]
pub(crate) mod postgres;

pub(crate) const TOKEN: &str = "serve-test-token-5f1d";

/// A `reprove serve` process, killed when dropped (also used by `serve_dashboard` and `serve_workers`).
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) addr: String,
    log: PathBuf,
}

/// How a [`Serve`] runs beyond its directories: `--workers`, the log's number, more
/// arguments, the address, the lease, more environment (after the hermetic one).
#[derive(Clone, Copy)]
pub(crate) struct Options<'a> {
    pub(crate) workers: u32,
    pub(crate) run: u32,
    pub(crate) args: &'a [&'a str],
    pub(crate) listen: &'a str,
    pub(crate) lease_seconds: u32,
    pub(crate) env: &'a [(&'a str, String)],
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { workers: 1, run: 1, args: &[], listen: "127.0.0.1:0", lease_seconds: 3, env: &[] }
    }
}

impl Serve {
    pub(crate) fn start(
        dir: &Path,
        data: &Path,
        cache: &Path,
        proxy: &str,
        workers: u32,
        run: u32,
        args: &[&str],
    ) -> Serve {
        Serve::start_with(dir, data, cache, proxy, &Options { workers, run, args, ..Options::default() })
    }

    /// [`Serve::start`] with every [`Options`].
    pub(crate) fn start_with(dir: &Path, data: &Path, cache: &Path, proxy: &str, o: &Options<'_>) -> Serve {
        let Options { workers, run, args: extra, listen, lease_seconds, env } = *o;
        let log = dir.join(format!("serve-{run}.log"));
        let mut cmd = Command::new(reprove_bin());
        let mut vars = vec![("GOPROXY", proxy.to_string())];
        vars.extend(env.iter().cloned());
        goenv::base_env(&mut cmd, dir, &cache.join("unused-host-modcache"), &vars);
        cmd.env("REPROVE_API_TOKEN", TOKEN)
            .env("COSIGN_PASSWORD", crate::attest_registry::PASSWORD)
            .env("REPROVE_LEASE_SECONDS", lease_seconds.to_string())
            .args(["serve", "--listen", listen, "--log-format", "json", "--runtime", "runc"])
            .arg("--workers")
            .arg(workers.to_string())
            .arg("--data")
            .arg(data)
            .arg("--cache-dir")
            .arg(cache)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
        let mut s = Serve { child, addr: String::new(), log };
        s.wait_addr();
        s
    }

    /// Waits for the "serving" log line and takes the address from it.
    fn wait_addr(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.addr.is_empty() {
            assert!(Instant::now() < deadline, "reprove serve did not start:\n{}", self.log_text());
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("reprove serve exited ({status}):\n{}", self.log_text());
            }
            // A line being written may be cut: only whole lines count here.
            self.addr = self
                .log_text()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["message"] == "serving")
                .and_then(|l| l["addr"].as_str().map(str::to_string))
                .unwrap_or_default();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every log line is a JSON object (`--log-format json`).
    pub(crate) fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
            .collect()
    }

    /// `/metrics` as text.
    pub(crate) fn metrics(&self) -> String {
        let mut m = TcpStream::connect(&self.addr).unwrap_or_else(|e| panic!("{e}"));
        write!(m, "GET /metrics HTTP/1.0\r\n\r\n").unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::new();
        m.read_to_string(&mut text).unwrap_or_else(|e| panic!("{e}"));
        text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string())
    }

    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut s = TcpStream::connect(&self.addr).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap_or_else(|e| panic!("{e}"));
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap_or_else(|e| panic!("{e}"));
        let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string())))
    }

    pub(crate) fn job(&self, id: &str) -> Value {
        let (status, job) = self.request("GET", &format!("/v1/jobs/{id}"), None, "");
        assert_eq!(status, 200, "{job}");
        job
    }

    pub(crate) fn wait(&self, id: &str, done: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} is still {job:#}\nlog:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_verify_job_survives_kill_9_queued_and_mid_run_and_is_reproduced() {
    let s = shared();
    let p = Project::new();
    let reference = p.reference("verifyapp", "go", &[]);
    let data = p.path("serve-data");
    let proxy = s.proxy.url();
    let job = json!({
        "kind": "verify",
        "source": p.repo.display().to_string(),
        "rev": "main",
        "reference": reference.display().to_string(),
        "toolchain": s.toolchain,
        "recipe": {"ldflags": ""},
        "fromReference": true,
    });
    let mut unknown_rev = job.clone();
    unknown_rev["rev"] = json!("no-such-revision");
    // A job whose reference file changes after it is submitted (it was keyed by content).
    let changing = p.path("changing-reference");
    std::fs::write(&changing, b"not the binary yet").unwrap_or_else(|e| panic!("{e}"));
    let mut changed_reference = job.clone();
    changed_reference["reference"] = json!(changing.display().to_string());
    // The server signs a provenance and a VSA of each verdict with this key.
    crate::attest_registry::keygen(&p.path(""), "server").unwrap_or_else(|e| panic!("{e}"));
    let config = p.path("reprove-server.toml");
    std::fs::write(&config, format!("key = {:?}\n", p.path("server.key").display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = config.display().to_string();
    let signing = ["--config", config.as_str()];

    // No workers: submit, then kill -9 with both jobs queued.
    let serve = Serve::start(&p.path(""), &data, &s.cache, &proxy, 0, 1, &signing);
    let (status, e) = serve.request("POST", "/v1/jobs", None, &job.to_string());
    assert_eq!(status, 401, "{e}");
    let (status, a) = serve.request("POST", "/v1/jobs", Some(TOKEN), &job.to_string());
    assert_eq!(status, 201, "{a}");
    let (status, again) = serve.request("POST", "/v1/jobs", Some(TOKEN), &job.to_string());
    assert_eq!((status, &again["id"]), (200, &a["id"]));
    // The rev is pinned to the commit it names when submitted: main and its commit are one job.
    assert_eq!(a["commit"], p.commit.as_str(), "{a}");
    let mut by_commit = job.clone();
    by_commit["rev"] = json!(p.commit.as_str());
    let (status, same) = serve.request("POST", "/v1/jobs", Some(TOKEN), &by_commit.to_string());
    assert_eq!((status, &same["id"]), (200, &a["id"]), "{same}");
    let (status, e) = serve.request("POST", "/v1/jobs", Some(TOKEN), &unknown_rev.to_string());
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("unknown-revision")), "{e}");
    let (status, b) = serve.request("POST", "/v1/jobs", Some(TOKEN), &changed_reference.to_string());
    assert_eq!(status, 201, "{b}");
    std::fs::write(&changing, b"another file").unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (a["id"].as_str().unwrap_or_default().to_string(), b["id"].as_str().unwrap_or_default().to_string());
    serve.kill9();

    // Restarted: both are there, still queued.
    let serve = Serve::start(&p.path(""), &data, &s.cache, &proxy, 0, 2, &signing);
    assert_eq!(serve.job(&a)["state"], "queued");
    assert_eq!(serve.job(&b)["state"], "queued");
    let (_, list) = serve.request("GET", "/v1/jobs?state=queued", None, "");
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(2), "{list}");
    serve.kill9();

    // One worker: kill -9 while the verify job runs (it was queued first). With the
    // shared cache the job can finish within the pause below (CI saw it), so from here on
    // the server has a cache of its own and a GOPROXY that pauses before every answer:
    // the job is still fetching its module when it is killed.
    let cache = p.path("serve-cache");
    let slow =
        Server::start(Behavior::Serve(Files { delay: Duration::from_secs(2), ..Files::dir(&goenv::proxy_root()) }));
    let proxy = slow.url();
    let serve = Serve::start(&p.path(""), &data, &cache, &proxy, 1, 3, &signing);
    let running = serve.wait(&a, |j| j["state"] != "queued", Duration::from_secs(60));
    assert_eq!(running["state"], "running", "{running:#}");
    std::thread::sleep(Duration::from_millis(1500));
    let mid = serve.job(&a);
    assert_eq!(mid["state"], "running");
    // Heartbeats carry the pipeline's step.
    assert!(mid["progress"].is_string(), "{mid:#}");
    serve.kill9();

    // Restarted: the lost lease expires, the job runs again and is reproduced; its result
    // is stored once.
    let serve = Serve::start(&p.path(""), &data, &cache, &proxy, 1, 4, &signing);
    let done = serve.wait(&a, |j| j["state"] == "done" || j["state"] == "failed", Duration::from_secs(600));
    assert_eq!(done["state"], "done", "{done:#}\n{}", serve.log_text());
    assert_eq!(done["verdict"], "reproduced");
    assert_eq!(done["report"]["verdict"], "reproduced");
    assert_eq!(done["report"]["inputs"]["source"]["commit"], p.commit.as_str());
    assert_eq!(done["report"]["rebuilt"]["sha256"], done["report"]["inputs"]["reference"]["sha256"]);
    assert_eq!((done["attempts"].as_u64(), done["resultsStored"].as_u64()), (Some(2), Some(1)), "{done:#}");
    crate::support::schema::assert_valid("report.schema.json", &done["report"]);
    // The VSA of the verdict verifies with the server's key, for the reference's digest.
    let names: Vec<&str> =
        done["attestations"].as_array().into_iter().flatten().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["provenance", "vsa"], "{done:#}");
    let vsa = p.path("vsa.intoto.jsonl");
    std::fs::write(&vsa, format!("{}\n", done["attestations"][1]["content"])).unwrap_or_else(|e| panic!("{e}"));
    let reference_digest =
        format!("sha256:{}", done["report"]["inputs"]["reference"]["sha256"].as_str().unwrap_or_default());
    let mut check = Command::new(reprove_bin());
    check.current_dir(p.path("")).args(["attest", "verify", "--key", "server.pub", "--digest", &reference_digest]);
    check.args(["--predicate-type", "https://slsa.dev/verification_summary/v1"]).arg(&vsa);
    let out = crate::support::run(&mut check).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());
    let failed = serve.wait(&b, |j| j["state"] == "failed" || j["state"] == "done", Duration::from_secs(120));
    assert_eq!(failed["failure"]["class"], "input", "{failed:#}");
    assert!(failed["failure"]["message"].as_str().is_some_and(|m| m.contains("changed")), "{failed:#}");

    // The metrics parse and count the queue.
    let mut m = TcpStream::connect(&serve.addr).unwrap_or_else(|e| panic!("{e}"));
    write!(m, "GET /metrics HTTP/1.0\r\n\r\n").unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    m.read_to_string(&mut text).unwrap_or_else(|e| panic!("{e}"));
    let text = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let samples = prometheus::parse_exposition(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let jobs = |state: &str| {
        samples
            .iter()
            .find(|s| s.name == "reprove_serve_jobs" && s.labels == [("state".into(), state.into())])
            .map(|s| s.value)
    };
    assert_eq!((jobs("done"), jobs("failed"), jobs("queued")), (Some(1.0), Some(1.0), Some(0.0)), "{text}");

    // SIGTERM: a clean stop, and the logs were JSON throughout.
    let pid = rustix::process::Pid::from_child(&serve.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap_or_else(|e| panic!("{e}"));
    let mut serve = serve;
    let status = serve.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0), "{}", serve.log_text());
    let lines = serve.log_lines();
    assert!(lines.iter().any(|l| l["message"] == "job finished" && l["id"] == a.as_str()), "{}", serve.log_text());
}

/// An image holding a `go install`ed program, pushed to the test registry as
/// `REPOSITORY:v1`, and a server config whose auditor's directory can rebuild it.
pub(crate) struct AuditImage {
    pub(crate) scratch: crate::verify_module::Scratch,
    /// The GOPROXY the program's module comes from.
    pub(crate) goproxy: Server,
    /// `REGISTRY/REPOSITORY@sha256:…`.
    pub(crate) pinned: String,
    /// Its manifest digest.
    pub(crate) digest: String,
    /// `reprove-server.toml` with the auditor's directory and one worker.
    pub(crate) config: PathBuf,
}

pub(crate) fn audit_image(repository: &str) -> AuditImage {
    use crate::verify_module::{install, proxy, published, Scratch, MAIN_GO, VERSION};
    let s = shared();
    let goproxy = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let trimmed = install(&scratch, "trimmed", &goproxy.url(), &["-trimpath"]);
    let img = crate::audit_e2e::image(&[("/usr/local/bin/modtool", &trimmed)]);
    let tagged = format!("{}/{repository}:v1", s.registry.addr);
    let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    img.push_blocking(&io, &tagged.parse().unwrap_or_else(|e| panic!("{e}")), &s.registry.options())
        .unwrap_or_else(|e| panic!("{e}"));
    let digest = img.manifest_digest.to_string();
    let pinned = format!("{}/{repository}@{digest}", s.registry.addr);

    // The auditor's directory: the toolchain for the Go version, the ldflags the binary cannot record.
    let auditor = scratch.path("auditor");
    std::fs::create_dir_all(&auditor).unwrap_or_else(|e| panic!("{e}"));
    let version = s.toolchain.split('@').next().and_then(|t| t.rsplit(':').next()).unwrap_or_default();
    std::fs::write(
        auditor.join("reprove.toml"),
        format!(
            "[audit.toolchains]\n\"go{version}\" = \"{}\"\n\n[[audit.binary]]\npath = \"/usr/local/bin/modtool\"\nldflags = \"\"\n",
            s.toolchain
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = scratch.path("reprove-server.toml");
    std::fs::write(&config, format!("audit-dir = {:?}\nworkers = 1\n", auditor.display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    AuditImage { scratch, goproxy, pinned, digest, config }
}

#[test]
fn an_audit_job_audits_the_image_and_answers_for_its_digest() {
    let s = shared();
    let AuditImage { scratch, goproxy, pinned, digest, config } = audit_image("served/modtool");
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));
    let config_s = config.display().to_string();
    let serve = Serve::start(&here, &scratch.path("data"), &s.cache, &goproxy.url(), 1, 1, &["--config", &config_s]);
    let (status, job) =
        serve.request("POST", "/v1/jobs", Some(TOKEN), &json!({"kind": "audit", "image": pinned}).to_string());
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let done = serve.wait(&id, |j| j["state"] == "done" || j["state"] == "failed", Duration::from_secs(600));
    assert_eq!((done["state"].as_str(), done["verdict"].as_str()), (Some("done"), Some("reproduced")), "{done:#}");
    assert_eq!(done["report"]["image"]["digest"], digest.as_str());
    // Its one Go binary's main module is the job's module.
    assert_eq!(done["module"], crate::verify_module::MODULE, "{done:#}");
    crate::support::schema::assert_valid("audit-report.schema.json", &done["report"]);
    let (status, latest) = serve.request("GET", &format!("/v1/images/{digest}"), None, "");
    assert_eq!(
        (status, latest["id"].as_str(), latest["verdict"].as_str()),
        (200, Some(id.as_str()), Some("reproduced"))
    );
}

/// Flags over `REPROVE_*` over the config file; a server without a token, with another
/// database or with an unknown config key does not start (exit 2).
#[test]
fn configuration_precedence_and_refusals() {
    let dir = goenv::tmp();
    let d = dir.path();
    let refused = |env: &[(&str, &str)], args: &[&str], words: &[&str]| {
        let mut cmd = Command::new(reprove_bin());
        cmd.env_remove("REPROVE_API_TOKEN").envs(env.iter().copied()).arg("serve").args(["--data"]).arg(d.join("data"));
        let out =
            crate::support::run(cmd.args(args).arg("--listen").arg("127.0.0.1:0")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stderr_str());
        for w in words {
            assert!(out.stderr_str().contains(w), "{w:?} in {}", out.stderr_str());
        }
    };
    refused(&[], &[], &["REPROVE_API_TOKEN", "token"]);
    refused(
        &[("REPROVE_API_TOKEN", TOKEN)],
        &["--database", "mysql://u:hidden@db/reprove"],
        &["expected sqlite or postgres://"],
    );
    refused(&[("REPROVE_API_TOKEN", TOKEN), ("REPROVE_DATABASE", "sqlite3")], &[], &["expected sqlite or postgres://"]);
    let bad = d.join("bad.toml");
    std::fs::write(&bad, "tokn = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
    refused(&[("REPROVE_API_TOKEN", TOKEN)], &["--config", bad.to_str().unwrap_or_default()], &["tokn"]);
    refused(&[("REPROVE_API_TOKEN", TOKEN)], &["--log-format", "xml"], &["--log-format"]);
    // A bad [[watch]] stops the start, naming the watch.
    let bad_watch = d.join("bad-watch.toml");
    std::fs::write(&bad_watch, "[[watch]]\nname = \"nightly\"\nimage = \"127.0.0.1:1/app\"\ninterval = \"soon\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    refused(
        &[("REPROVE_API_TOKEN", TOKEN)],
        &["--config", bad_watch.to_str().unwrap_or_default()],
        &["\"nightly\"", "interval"],
    );
    std::fs::write(&bad_watch, "[[watch]]\nname = \"nightly\"\nimage = \"127.0.0.1:1/app\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    refused(&[("REPROVE_API_TOKEN", TOKEN)], &["--config", bad_watch.to_str().unwrap_or_default()], &["key"]);

    // The file's token and workers; the environment's token wins over the file's; the
    // flag's workers over the file's.
    let config = d.join("reprove-server.toml");
    std::fs::write(&config, "token = \"file-token-123\"\nworkers = 3\n").unwrap_or_else(|e| panic!("{e}"));
    let config_s = config.display().to_string();
    let cache = d.join("cache");
    let body = json!({"kind": "audit", "image": format!("127.0.0.1:1/x@sha256:{}", "5".repeat(64))}).to_string();
    let metrics = |serve: &Serve| {
        let mut m = TcpStream::connect(&serve.addr).unwrap_or_else(|e| panic!("{e}"));
        write!(m, "GET /metrics HTTP/1.0\r\n\r\n").unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::new();
        m.read_to_string(&mut text).unwrap_or_else(|e| panic!("{e}"));
        text
    };
    {
        // start sets REPROVE_API_TOKEN: it wins over the file's token.
        let serve = Serve::start(d, &d.join("data1"), &cache, "off", 0, 1, &["--config", &config_s]);
        let (status, _) = serve.request("POST", "/v1/jobs", Some("file-token-123"), &body);
        assert_eq!(status, 401);
        let (status, _) = serve.request("POST", "/v1/jobs", Some(TOKEN), &body);
        assert_eq!(status, 201);
        assert!(metrics(&serve).contains("reprove_serve_workers 0\n"), "the flag's workers win");
        let (status, ready) = serve.request("GET", "/readyz", None, "");
        assert_eq!(status, 200, "{ready}");
    }
    // Without the environment's token, the file's is the one.
    let mut cmd = Command::new(reprove_bin());
    let log = d.join("file-only.log");
    cmd.env_remove("REPROVE_API_TOKEN")
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--config", &config_s, "--data"])
        .arg(d.join("data2"))
        .arg("--cache-dir")
        .arg(&cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")));
    let mut serve = Serve { child: cmd.spawn().unwrap_or_else(|e| panic!("{e}")), addr: String::new(), log };
    serve.wait_addr();
    let (status, _) = serve.request("POST", "/v1/jobs", Some("file-token-123"), &body);
    assert_eq!(status, 201);
    assert!(metrics(&serve).contains("reprove_serve_workers 3\n"), "the file's workers");
}

/// `reprove serve --database postgres://…` on a real PostgreSQL (a throwaway cluster on
/// 127.0.0.1): kill -9 with jobs queued loses nothing (and the data directory plays no
/// part: the restarted server has another); two servers with a worker each share the
/// queue and run each job once; `/readyz` answers 503 while PostgreSQL is down and the
/// server works again once it is back. The jobs fail fast (an audit of an image in a
/// registry that is not there), which is all the queue needs.
#[test]
fn serve_on_postgres_survives_kill_9_and_two_servers_share_the_queue() {
    let dir = goenv::tmp();
    let d = dir.path();
    let mut pg = postgres::Cluster::start();
    let url = pg.database("serve");
    let cache = d.join("cache");
    let db = ["--database", url.as_str()];
    let jobs: Vec<String> = (1..=6)
        .map(|i| {
            json!({"kind": "audit", "image": format!("127.0.0.1:1/gone@sha256:{}", i.to_string().repeat(64))})
                .to_string()
        })
        .collect();

    let serve = Serve::start(d, &d.join("data1"), &cache, "off", 0, 1, &db);
    let mut ids = Vec::new();
    for body in &jobs {
        let (status, job) = serve.request("POST", "/v1/jobs", Some(TOKEN), body);
        assert_eq!(status, 201, "{job}");
        ids.push(job["id"].as_str().unwrap_or_default().to_string());
    }
    serve.kill9();

    // Restarted with another data directory: the jobs are in PostgreSQL, still queued.
    let serve = Serve::start(d, &d.join("data2"), &cache, "off", 0, 2, &db);
    let (_, list) = serve.request("GET", "/v1/jobs?state=queued", None, "");
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(6), "{list}");
    let (status, again) = serve.request("POST", "/v1/jobs", Some(TOKEN), &jobs[0]);
    assert_eq!((status, again["id"].as_str()), (200, Some(ids[0].as_str())));

    // PostgreSQL down: not ready, and the API says the queue is unavailable; back: ready.
    let (status, _) = serve.request("GET", "/readyz", None, "");
    assert_eq!(status, 200);
    pg.stop();
    let (status, body) = serve.request("GET", "/readyz", None, "");
    assert_eq!(status, 503, "{body}");
    let (status, body) = serve.request("GET", &format!("/v1/jobs/{}", ids[0]), None, "");
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("queue-unavailable")), "{body}");
    pg.start_again();
    let (status, body) = serve.request("GET", "/readyz", None, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serve.job(&ids[0])["state"], "queued");
    assert!(!serve.log_text().contains(postgres::PASSWORD), "the password is in the log:\n{}", serve.log_text());
    drop(serve);

    // Two servers, a worker each, on the one database: every job runs once.
    let a = Serve::start(d, &d.join("data3"), &cache, "off", 1, 3, &db);
    let b = Serve::start(d, &d.join("data4"), &cache, "off", 1, 4, &db);
    for id in &ids {
        let job = a.wait(id, |j| j["state"] == "failed" || j["state"] == "done", Duration::from_secs(120));
        assert_eq!((job["attempts"].as_u64(), job["resultsStored"].as_u64()), (Some(1), Some(1)), "{job:#}");
        assert_eq!(job["failure"]["class"], "infrastructure", "{job:#}");
        // The other server answers the same.
        assert_eq!(b.job(id)["failure"], job["failure"]);
    }
    let started = |s: &Serve| -> Vec<String> {
        s.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == "job started")
            .filter_map(|l| l["id"].as_str().map(str::to_string))
            .collect()
    };
    let mut all = [started(&a), started(&b)].concat();
    all.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(all, want, "each job started exactly once across both servers");
}

/// `reprove serve --database 'postgres://…?sslmode=verify-full&sslrootcert=CA'` against a
/// PostgreSQL that accepts TLS only (tests/common/postgres.rs): a job is done through it.
/// A CA that did not sign the server's certificate stops the start with a message naming
/// the check and the file (no plaintext fallback: the server refuses plaintext anyway),
/// and `sslmode=prefer` is refused as input.
#[test]
fn serve_on_postgres_over_verified_tls() {
    let dir = goenv::tmp();
    let d = dir.path();
    let pg = postgres::Cluster::start_tls();
    let url = pg.database("tls");
    assert!(url.contains("sslmode=verify-full&sslrootcert="), "{url}");
    let config = d.join("noop.toml");
    std::fs::write(&config, "noop-jobs = true\n").unwrap_or_else(|e| panic!("{e}"));
    let config_s = config.display().to_string();
    let cache = d.join("cache");
    {
        let serve =
            Serve::start(d, &d.join("data1"), &cache, "off", 1, 1, &["--database", &url, "--config", &config_s]);
        let (status, job) =
            serve.request("POST", "/v1/jobs", Some(TOKEN), &json!({"kind": "noop", "n": 1}).to_string());
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_str().unwrap_or_default().to_string();
        let job = serve.wait(&id, |j| j["state"] == "done" || j["state"] == "failed", Duration::from_secs(60));
        assert_eq!(job["state"], "done", "{job:#}");
        let ssl = pg.psql(
            "tls",
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'reprove serve' AND s.ssl",
        );
        assert_ne!(ssl.trim(), "0", "the server's connections are TLS");
        assert!(!serve.log_text().contains(postgres::PASSWORD), "{}", serve.log_text());
    }
    let start = |database: &str| {
        let mut cmd = Command::new(reprove_bin());
        cmd.env("REPROVE_API_TOKEN", TOKEN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database, "--data"])
            .arg(d.join("data2"));
        crate::support::run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
    };
    let other = pg.other_ca().display().to_string();
    let out = start(&url.replace(&pg.ca().display().to_string(), &other));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    for want in ["sslmode=verify-full", "not trusted", &other] {
        assert!(out.stderr_str().contains(want), "{want:?} in {}", out.stderr_str());
    }
    assert!(!out.stderr_str().contains(postgres::PASSWORD), "{}", out.stderr_str());
    let out = start(&url.replace("sslmode=verify-full", "sslmode=prefer"));
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("sslmode=prefer is refused"), "{}", out.stderr_str());
}
