//! The webhook server over real HTTPS on 127.0.0.1, without Kubernetes: the review
//! protocol, the cache, the deadline, the certificate reload and the metrics.
//!
//! The policy engine is a test double ([`Table`]): a deterministic table from image
//! to answer, counting its calls, so that what the server does around it (caching,
//! single flight, deadlines) can be counted exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

#[path = "../../../tests/common/prometheus.rs"]
mod prometheus;
use prometheus::parse_exposition;
use tokio::time::Instant;
use webhook::{CacheConfig, Config, Decide, DecideError, Decision, ImageUse, Server};

// --- the test double ------------------------------------------------------------------

/// TEST DOUBLE of the policy engine: answers from a table, after an optional delay.
#[derive(Clone)]
enum Answer {
    Allow,
    /// Allowed, resting on a VSA that expires this long after the decision.
    AllowFor(Duration),
    Warn(&'static str),
    Deny(&'static str, &'static str),
    Fail,
    /// The engine panics (a bug): the review is denied and the next one decides again.
    Panic,
}

#[derive(Clone)]
struct Table {
    answers: Arc<HashMap<String, (Answer, Duration)>>,
    calls: Arc<AtomicUsize>,
}

impl Table {
    fn new(entries: &[(&str, Answer, u64)]) -> Table {
        Table {
            answers: Arc::new(
                entries.iter().map(|(i, a, ms)| (i.to_string(), (a.clone(), Duration::from_millis(*ms)))).collect(),
            ),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Decide for Table {
    async fn decide(&self, image: &ImageUse, _deadline: Instant) -> Result<Decision, DecideError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some((answer, delay)) = self.answers.get(&image.image).cloned() else {
            return Ok(decision(
                false,
                "no-vsa",
                "no VSA is attached to this image: run reprove verify --push",
                vec![],
            ));
        };
        tokio::time::sleep(delay).await;
        match answer {
            Answer::Allow => Ok(Decision {
                digest: Some(format!("sha256:{}", "ab".repeat(32))),
                ..decision(true, "passed", "", vec![])
            }),
            Answer::AllowFor(d) => {
                Ok(Decision { earliest_expiry: Some(SystemTime::now() + d), ..decision(true, "passed", "", vec![]) })
            }
            Answer::Warn(w) => Ok(decision(true, "no-vsa", "", vec![w.to_string()])),
            Answer::Deny(r, m) => Ok(decision(false, r, m, vec![])),
            Answer::Panic => panic!("a bug in the policy engine"),
            Answer::Fail => Err(DecideError {
                reason: "registry-unavailable".into(),
                message: "the registry did not answer".into(),
            }),
        }
    }
    fn policy_digest(&self) -> String {
        "sha256:policy".into()
    }
}

fn decision(allowed: bool, reason: &str, message: &str, warnings: Vec<String>) -> Decision {
    Decision {
        allowed,
        reason: reason.into(),
        message: message.into(),
        warnings,
        earliest_expiry: None,
        digest: None,
        from_error: false,
    }
}

// --- certificates, the server, the client -------------------------------------------------

/// A CA and a certificate for 127.0.0.1 signed by it, made by the openssl CLI in `dir`
/// under `name` (name.pem, name.key, name-ca.pem).
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out =
            std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (run ci/setup)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let (ca, cakey, key, csr, pem) = (
        format!("{name}-ca.pem"),
        format!("{name}-ca.key"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend(["-keyout", &cakey, "-out", &ca, "-days", "2", "-subj", "/CN=webhook test CA"]);
    run(&a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    run(&a);
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &cakey,
        "-CAcreateserial",
        "-out",
        &pem,
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (dir.join(pem), dir.join(key), dir.join(ca))
}

struct Running {
    url: String,
    ca: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    metrics: Arc<Server<Table>>,
    dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(table: Table, tune: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = make_cert(dir.path(), "serving");
    let mut config = Config::new(cert, key);
    config.tls_reload_interval = Duration::from_millis(50);
    tune(&mut config);
    let server = Arc::new(Server::new(config, table).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = server.clone();
    tokio::spawn(async move {
        s.serve(listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { url, ca, stop: Some(tx), metrics: server, dir }
}

fn client(ca: &Path) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(tls).pool_max_idle_per_host(0).build().unwrap()
}

fn review(uid: &str, kind: (&str, &str), namespace: &str, object: Value, dry_run: bool) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
            "resource": {"group": kind.0, "version": "v1", "resource": "x"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": object,
            "dryRun": dry_run,
        }
    })
}

fn pod(images: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()}})
}

async fn post(r: &Running, path: &str, body: &Value) -> Value {
    let resp = client(&r.ca).post(format!("{}{path}", r.url)).json(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["response"].clone()
}

// --- the tests ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_allowed_denied_warned_and_echoes_uid() {
    let t = Table::new(&[
        ("ok:1", Answer::Allow, 0),
        ("bad:1", Answer::Deny("failed", "the VSA says FAILED: rebuild and push again"), 0),
        ("warn:1", Answer::Warn("no VSA (warn mode)"), 0),
    ]);
    let r = start(t.clone(), |_| {}).await;
    let a = post(&r, "/validate", &review("uid-1", ("", "Pod"), "ns", pod(&["ok:1"]), false)).await;
    assert_eq!(a, json!({"uid": "uid-1", "allowed": true}));

    // Two containers of one image: one decision.
    let d = post(&r, "/validate", &review("uid-2", ("apps", "Deployment"), "ns",
        json!({"spec": {"template": {"spec": {"containers": [{"image": "bad:1"}, {"image": "bad:1"}], "initContainers": [{"image": "ok:1"}]}}}}), false)).await;
    assert_eq!(d["uid"], "uid-2");
    assert_eq!(d["allowed"], false);
    assert_eq!(d["status"]["code"], 403);
    let msg = d["status"]["message"].as_str().unwrap();
    assert!(msg.contains("image bad:1 (failed): the VSA says FAILED: rebuild and push again"), "{msg}");
    assert_eq!(t.calls(), 2, "ok:1 cached, bad:1 decided once");

    let w = post(
        &r,
        "/validate",
        &review(
            "uid-3",
            ("batch", "CronJob"),
            "ns",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "warn:1"}]}}}}}}),
            true,
        ),
    )
    .await;
    assert_eq!(w["allowed"], true);
    assert_eq!(w["warnings"], json!(["warn:1: no VSA (warn mode)"]));

    // An image the double does not know: denied with its message.
    let n = post(&r, "/validate", &review("uid-4", ("apps", "DaemonSet"), "ns",
        json!({"spec": {"template": {"spec": {"containers": [{"image": "unknown:1"}], "ephemeralContainers": [{"image": "ok:1"}]}}}}), false)).await;
    assert_eq!(n["allowed"], false);
    assert!(n["status"]["message"].as_str().unwrap().contains("unknown:1 (no-vsa)"));

    let m = r.metrics.metrics_text();
    assert!(
        m.contains("reprove_webhook_reviews_total{endpoint=\"validate\",allowed=\"true\",dry_run=\"true\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_wrong_version_and_oversized_reviews_are_400_and_413() {
    let r = start(Table::new(&[]), |c| c.max_body_bytes = 64 << 10).await;
    let c = client(&r.ca);
    let url = format!("{}/validate", r.url);
    let resp = c.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().starts_with("malformed AdmissionReview: "));

    let mut v1beta1 = review("u", ("", "Pod"), "ns", pod(&["a"]), false);
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let resp = c.post(&url).json(&v1beta1).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("unsupported AdmissionReview apiVersion \"admission.k8s.io/v1beta1\"")
            && text.contains("admissionReviewVersions"),
        "{text}"
    );

    let mut unknown = review("u", ("", "Pod"), "ns", pod(&["a"]), false);
    unknown["surprise"] = json!(true);
    assert_eq!(c.post(&url).json(&unknown).send().await.unwrap().status(), 400);

    let big = review("u", ("", "Pod"), "ns", json!({"spec": {"containers": [], "pad": "x".repeat(100 << 10)}}), false);
    let resp = c.post(&url).json(&big).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("larger than the webhook accepts (65536 bytes)"));

    // A well-formed review of a malformed object is a denial, not an allow.
    let bad_obj =
        review("u9", ("apps", "Deployment"), "ns", json!({"spec": {"template": {"spec": {"containers": "x"}}}}), false);
    let a = post(&r, "/validate", &bad_obj).await;
    assert_eq!(a["allowed"], false);
    assert!(a["status"]["message"].as_str().unwrap().contains("/spec/template/spec/containers: not a list"));
    let m = r.metrics.metrics_text();
    assert!(m.contains("reprove_webhook_bad_requests_total{cause=\"body-too-large\"} 1"), "{m}");
    assert!(m.contains("reprove_webhook_bad_requests_total{cause=\"api-version\"} 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reviews_of_one_image_share_one_decision() {
    let t = Table::new(&[("slow:1", Answer::Allow, 400)]);
    let r = Arc::new(start(t.clone(), |_| {}).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            post(&r, "/validate", &review(&format!("u{i}"), ("", "Pod"), "ns", pod(&["slow:1"]), false)).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap()["allowed"], true);
    }
    assert_eq!(t.calls(), 1, "20 concurrent reviews, one decision");
    let m = r.metrics.metrics_text();
    assert!(m.contains("reprove_webhook_fetches_total 1"), "{m}");
    assert!(m.contains("reprove_webhook_cache_lookups_total{result=\"miss\"} 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lifetimes_allowed_ttl_denials_brief_errors_never_expiry_caps() {
    let t = Table::new(&[
        ("ok:1", Answer::Allow, 0),
        ("bad:1", Answer::Deny("failed", "no"), 0),
        ("down:1", Answer::Fail, 0),
        ("panics:1", Answer::Panic, 0),
        ("expiring:1", Answer::AllowFor(Duration::from_millis(600)), 0),
    ]);
    let r = start(t.clone(), |c| {
        c.cache =
            CacheConfig { max_entries: 100, ttl: Duration::from_millis(1500), denial_ttl: Duration::from_millis(300) }
    })
    .await;
    let ask = |uid: &str, image: &str| review(uid, ("", "Pod"), "ns", pod(&[image]), false);
    let calls_after = |before: usize| t.calls() - before;

    // Allowed: a hit within the TTL, a new decision after it.
    let b = t.calls();
    post(&r, "/validate", &ask("a", "ok:1")).await;
    post(&r, "/validate", &ask("b", "ok:1")).await;
    assert_eq!(calls_after(b), 1);
    // Another namespace is another key (policies differ per namespace).
    post(&r, "/validate", &review("b2", ("", "Pod"), "other", pod(&["ok:1"]), false)).await;
    assert_eq!(calls_after(b), 2);

    // Denied: cached, but only briefly.
    let b = t.calls();
    post(&r, "/validate", &ask("c", "bad:1")).await;
    post(&r, "/validate", &ask("d", "bad:1")).await;
    assert_eq!(calls_after(b), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    post(&r, "/validate", &ask("e", "bad:1")).await;
    assert_eq!(calls_after(b), 2, "a denial lives for denial_ttl only");

    // A failure: denied, never cached.
    let b = t.calls();
    for uid in ["f", "g", "h"] {
        let a = post(&r, "/validate", &ask(uid, "down:1")).await;
        assert_eq!(a["allowed"], false);
        assert!(a["status"]["message"]
            .as_str()
            .unwrap()
            .contains("(registry-unavailable): the registry did not answer"));
    }
    assert_eq!(calls_after(b), 3, "errors are never cached as verdicts");

    // A decision that panicked: denied, and the next review decides again.
    let b = t.calls();
    for uid in ["p1", "p2"] {
        let a = post(&r, "/validate", &ask(uid, "panics:1")).await;
        assert_eq!(a["allowed"], false);
        assert!(a["status"]["message"].as_str().unwrap().contains("(internal-error)"), "{a}");
    }
    assert_eq!(calls_after(b), 2);

    // The VSA's expiry (0.6 s) caps the TTL (1.5 s).
    let b = t.calls();
    post(&r, "/validate", &ask("i", "expiring:1")).await;
    post(&r, "/validate", &ask("j", "expiring:1")).await;
    assert_eq!(calls_after(b), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    post(&r, "/validate", &ask("k", "expiring:1")).await;
    assert_eq!(calls_after(b), 2, "cached no longer than the earliest VSA expiry");

    // And the TTL ends an allowed decision too.
    let b = t.calls();
    tokio::time::sleep(Duration::from_millis(900)).await;
    post(&r, "/validate", &ask("l", "ok:1")).await;
    assert_eq!(calls_after(b), 1, "the TTL ended ok:1's decision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded() {
    let entries: Vec<(String, Answer, u64)> = (0..50).map(|i| (format!("img:{i}"), Answer::Allow, 0)).collect();
    let refs: Vec<(&str, Answer, u64)> = entries.iter().map(|(i, a, d)| (i.as_str(), a.clone(), *d)).collect();
    let t = Table::new(&refs);
    let r = start(t.clone(), |c| c.cache.max_entries = 8).await;
    for i in 0..50 {
        post(&r, "/validate", &review("u", ("", "Pod"), "ns", pod(&[&format!("img:{i}")]), false)).await;
    }
    let m = r.metrics.metrics_text();
    assert!(m.contains("reprove_webhook_cache_entries 8\n"), "{m}");
    // The most recent is still there, the first was evicted.
    let b = t.calls();
    post(&r, "/validate", &review("u", ("", "Pod"), "ns", pod(&["img:49"]), false)).await;
    assert_eq!(t.calls(), b);
    post(&r, "/validate", &review("u", ("", "Pod"), "ns", pod(&["img:0"]), false)).await;
    assert_eq!(t.calls(), b + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_the_answer_is_a_denial() {
    let t = Table::new(&[("slow:1", Answer::Allow, 3000), ("ok:1", Answer::Allow, 0)]);
    let r = start(t.clone(), |c| c.deadline = Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let a = post(&r, "/validate", &review("u", ("", "Pod"), "ns", pod(&["ok:1", "slow:1"]), false)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2000), "answered in {took:?}");
    assert_eq!(a["allowed"], false);
    let msg = a["status"]["message"].as_str().unwrap();
    assert!(msg.contains("image slow:1 (deadline-exceeded)") && !msg.contains("ok:1"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_pins_tags_with_a_json_patch() {
    let t = Table::new(&[("ok:1", Answer::Allow, 0)]);
    let r = start(t, |_| {}).await;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let obj = json!({"spec": {"template": {"spec": {"containers": [{"image": "ok:1"}, {"image": format!("ok@{digest}")}], "initContainers": [{"image": "unknown:2"}]}}}});
    let a = post(&r, "/mutate", &review("m1", ("apps", "StatefulSet"), "ns", obj, false)).await;
    assert_eq!(a["allowed"], true);
    assert_eq!(a["patchType"], "JSONPatch");
    use base64::Engine as _;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD.decode(a["patch"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        patch,
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("ok:1@{digest}")}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_reloaded_and_a_broken_pair_keeps_the_old() {
    let r = start(Table::new(&[]), |_| {}).await;
    let old_ca = r.ca.clone();
    let healthz = |ca: PathBuf| {
        let url = format!("{}/healthz", r.url);
        async move { client(&ca).get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(healthz(old_ca.clone()).await.unwrap(), 200);

    // A broken pair (a key of another certificate): the old one stays.
    let other = r.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (new_cert, new_key, new_ca) = make_cert(&other, "next");
    let serving_cert = r.dir.path().join("serving.pem");
    let serving_key = r.dir.path().join("serving.key");
    std::fs::copy(&new_cert, &serving_cert).unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !r.metrics.metrics_text().contains("reprove_webhook_tls_reloads_total{result=\"error\"} 1") {
        assert!(std::time::Instant::now() < until, "no reload error counted:\n{}", r.metrics.metrics_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(healthz(old_ca.clone()).await.unwrap(), 200, "the old certificate is still served");

    // The matching key arrives: the new certificate is served.
    std::fs::copy(&new_key, &serving_key).unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if healthz(new_ca.clone()).await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < until, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthz(old_ca).await.is_err(), "the old certificate is gone");
    assert!(r.metrics.metrics_text().contains("reprove_webhook_tls_reloads_total{result=\"ok\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_readyz_and_metrics_that_parse() {
    let t = Table::new(&[
        ("ok:1", Answer::Allow, 0),
        ("bad:1", Answer::Deny("failed", "x"), 0),
        ("down:1", Answer::Fail, 0),
    ]);
    let r = start(t, |_| {}).await;
    for image in ["ok:1", "bad:1", "down:1", "ok:1"] {
        post(&r, "/validate", &review("u", ("", "Pod"), "ns", pod(&[image]), false)).await;
    }
    let c = client(&r.ca);
    assert_eq!(c.get(format!("{}/healthz", r.url)).send().await.unwrap().status(), 200);
    assert_eq!(c.get(format!("{}/readyz", r.url)).send().await.unwrap().status(), 200);
    let resp = c.get(format!("{}/metrics", r.url)).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = resp.text().await.unwrap();
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let get = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    assert_eq!(get("reprove_webhook_decisions_total", &[("result", "allowed"), ("reason", "passed")]), 2.0);
    assert_eq!(get("reprove_webhook_decisions_total", &[("result", "denied"), ("reason", "failed")]), 1.0);
    assert_eq!(
        get("reprove_webhook_decisions_total", &[("result", "denied"), ("reason", "registry-unavailable")]),
        1.0
    );
    assert_eq!(get("reprove_webhook_cache_lookups_total", &[("result", "hit")]), 1.0);
    assert_eq!(get("reprove_webhook_cache_lookups_total", &[("result", "miss")]), 3.0);
    assert_eq!(get("reprove_webhook_fetches_total", &[]), 3.0);
    assert_eq!(get("reprove_webhook_fetch_errors_total", &[("reason", "registry-unavailable")]), 1.0);
    assert_eq!(get("reprove_webhook_review_duration_seconds_count", &[]), 4.0);
    assert_eq!(get("reprove_webhook_review_duration_seconds_bucket", &[("le", "+Inf")]), 4.0);
}
