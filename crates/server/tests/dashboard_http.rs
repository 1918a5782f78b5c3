//! The dashboard over real HTTP on 127.0.0.1, with the real SQLite queue and blob store
//! in a temporary directory: reading needs the token when the server says so; a job's
//! page shows the steps its executor reported (each step wakes a heartbeat, and the
//! queue logs it), its verify report as `report` renders it, its attestation's blob;
//! hostile module paths are escaped in pages and links; bad ids, digests and filters
//! are refused with HTML pages; every page carries its security headers.
//!
//! The executor is a TEST DOUBLE ([`Stepper`]): it builds nothing, reports two steps
//! ten seconds of heartbeat apart and answers with the `not-reproduced` report fixture
//! (`tests/fixtures/report/`). The real executor is exercised by
//! `tests/it/serve_dashboard.rs`, in Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use server::job::JobSpec;
use server::{Cancel, Config, ExecError, Executor, JobProgress, JobResult, Server};

const TOKEN: &str = "dashboard-token-0123456789";
const IMAGE: &str = "127.0.0.1:5000/team/app@sha256:2222222222222222222222222222222222222222222222222222222222222222";
const MODULE: &str = "example.com/<i>x</i>\u{202e}";

/// TEST DOUBLE of the executor: steps `source` then `build`, then the fixture report.
struct Stepper;

impl Executor for Stepper {
    async fn run(&self, _: &JobSpec, progress: Arc<dyn JobProgress>, _: Cancel) -> Result<JobResult, ExecError> {
        progress.step("source");
        tokio::time::sleep(Duration::from_millis(400)).await;
        progress.step("build");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let report =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/report/not-reproduced.json"))
                .unwrap();
        Ok(JobResult {
            verdict: "not-reproduced".into(),
            report,
            failure: None,
            module: Some(MODULE.into()),
            attestations: vec![(
                "vsa".into(),
                "application/vnd.dsse.envelope.v1+json".into(),
                b"{\"payload\":\"e30=\"}".to_vec(),
            )],
        })
    }
}

async fn get(
    c: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    token: bool,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = c.get(format!("http://{addr}{path}"));
    if token {
        r = r.bearer_auth(TOKEN);
    }
    let resp = r.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_the_token_show_steps_reports_and_escape_what_jobs_carry() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf(), TOKEN.into());
    config.read_needs_token = true;
    config.poll = Duration::from_millis(20);
    // Heartbeats every ten seconds: only a new step makes one sooner.
    config.lease = Duration::from_secs(30);
    let server = Server::open(config, Stepper).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let c = reqwest::Client::new();
    let body = json!({
        "kind": "verify", "source": "https://git.test/app.git", "rev": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
        "reference": format!("oci://{IMAGE}#/app"),
        "toolchain": format!("127.0.0.1:5000/go@sha256:{}", "1".repeat(64)),
    });
    let resp = c.post(format!("http://{addr}/v1/jobs")).bearer_auth(TOKEN).body(body.to_string()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let job: Value = resp.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..200 {
        let (_, _, text) = get(&c, addr, &format!("/v1/jobs/{id}"), true).await;
        done = serde_json::from_str(&text).unwrap();
        if done["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["verdict"], "not-reproduced", "{done:#}");

    // Reading needs the token: an HTML page that says so.
    let (status, h, text) = get(&c, addr, "/", false).await;
    assert_eq!((status, header(&h, "www-authenticate")), (401, "Bearer"));
    assert!(header(&h, "content-type").starts_with("text/html") && text.contains("bearer token"), "{text}");
    let (status, _, _) = get(&c, addr, "/badge/x.svg", false).await;
    assert_eq!(status, 401);

    // The list: the job, its escaped module, the security headers; nothing queued, no reload.
    let (status, h, list) = get(&c, addr, "/", true).await;
    assert_eq!(status, 200);
    let csp = header(&h, "content-security-policy");
    assert!(csp.starts_with("default-src 'none'; style-src 'sha256-") && !csp.contains("script"), "{csp}");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert!(list.contains(&format!("id=\"job-{id}\" data-state=\"done\"")), "{list}");
    assert!(!list.contains("<i>") && list.contains("example.com/&lt;i&gt;x&lt;/i&gt;\\u{202e}"), "{list}");
    assert!(list.contains("href=\"/modules/example.com/%3Ci%3Ex%3C/i%3E%E2%80%AE\""), "{list}");
    assert!(!list.contains("http-equiv=\"refresh\""));

    // The job's page: both steps logged, the report's causes, the attestation's blob.
    let (status, _, page) = get(&c, addr, &format!("/jobs/{id}"), true).await;
    assert_eq!(status, 200);
    let log = page.split("<ol class=\"log\">").nth(1).and_then(|l| l.split("</ol>").next()).unwrap_or("");
    for line in [
        "submitted: verify job",
        "started: attempt 1",
        "step: source",
        "step: build",
        "finished: done, verdict not-reproduced",
    ] {
        assert!(log.contains(line), "{line:?} not in {log}");
    }
    for cause in ["the -ldflags differ", "the build ids differ"] {
        assert!(page.contains(cause), "{cause:?} not on the page");
    }
    let vsa = done["attestations"][0]["digest"].as_str().unwrap();
    assert!(page.contains(&format!("href=\"/blobs/{vsa}\"")), "{page}");
    let (status, h, blob) = get(&c, addr, &format!("/blobs/{vsa}"), true).await;
    assert_eq!(
        (status, header(&h, "content-type"), blob.as_str()),
        (200, "application/json", "{\"payload\":\"e30=\"}")
    );
    assert!(header(&h, "content-security-policy").contains("sandbox"));

    // The image's and the module's history; the badges of the repository and the module.
    let digest = IMAGE.split('@').nth(1).unwrap();
    let (status, _, image) = get(&c, addr, &format!("/images/{digest}"), true).await;
    assert!(status == 200 && image.contains(&format!("id=\"job-{id}\"")), "{image}");
    assert!(image.contains("href=\"/badge/127.0.0.1%3A5000%2Fteam%2Fapp.svg\""), "{image}");
    let (status, _, module) = get(&c, addr, "/modules/example.com/%3Ci%3Ex%3C/i%3E%E2%80%AE", true).await;
    assert!(status == 200 && module.contains(&format!("id=\"job-{id}\"")) && !module.contains("<i>"), "{module}");
    for badge in ["/badge/127.0.0.1%3A5000%2Fteam%2Fapp.svg", "/badge/example.com%2F%3Ci%3Ex%3C%2Fi%3E%E2%80%AE.svg"] {
        let (status, h, svg) = get(&c, addr, badge, true).await;
        assert_eq!((status, header(&h, "content-type")), (200, "image/svg+xml"), "{badge}");
        assert!(svg.contains(">not reproduced 0/1</text>"), "{badge}: {svg}");
    }
    let (_, _, svg) = get(&c, addr, "/badge/127.0.0.1%3A5000%2Fteam.svg", true).await;
    assert!(svg.contains(">unknown</text>"), "{svg}");

    // Refused before the queue: HTML pages, 4xx.
    for (path, want) in [
        ("/jobs/..%2F..%2Fetc%2Fpasswd", 400),
        (&format!("/jobs/{}", "f".repeat(32)), 404),
        ("/images/sha256:abc", 400),
        ("/blobs/sha256:%2E%2E", 400),
        ("/?state=sleeping", 400),
        ("/?limit=5000", 400),
        ("/?page=0", 400),
        ("/badge/x.png", 404),
        ("/modules/a%00b", 400),
    ] {
        let (status, h, text) = get(&c, addr, path, true).await;
        assert_eq!(status, want, "{path}: {text}");
        assert!(header(&h, "content-type").starts_with("text/html"), "{path}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
    }

    let _ = stop.send(());
    task.await.unwrap();
}
