//! `reprove webhook` behind a real Kubernetes API server (tests/it/support/kube.rs):
//! a ValidatingWebhookConfiguration with caBundle, `failurePolicy: Fail`,
//! `timeoutSeconds` and a namespaceSelector, and kubectl creating the workload kinds.
//!
//! The server is the real one over real HTTPS. The first tests run the `webhook` library
//! in this process with a TEST DOUBLE policy engine ([`Verdicts`]), to show what the
//! server and the API server do with its answers (every kind, /mutate, the deadline);
//! `the_binary_decides_every_case_from_the_registry_and_fails_closed` runs the real
//! `reprove webhook` binary deciding from signed VSAs in a real registry.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ::webhook::{Config, Decide, DecideError, Decision, ImageUse, Server};
use base64::Engine as _;

use crate::support::kube::{self, Kube};
use crate::support::registry::Registry;
use crate::support::{reprove_bin, Outcome};

// --- the test double and the in-process server ---------------------------------------------

/// The digest the test double resolves `passed` tags to (for `/mutate`).
const PASSED_DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";

/// TEST DOUBLE of the policy engine, by the image's repository name: `passed` is
/// allowed, `failed` denied (a FAILED VSA), `unsigned` allowed with a warn-mode
/// warning, `slow` takes 60 s, anything else has no VSA.
struct Verdicts;

impl Decide for Verdicts {
    async fn decide(&self, image: &ImageUse, _deadline: tokio::time::Instant) -> Result<Decision, DecideError> {
        let name = image.image.rsplit('/').next().unwrap_or("").split([':', '@']).next().unwrap_or("");
        let d = |allowed: bool, reason: &str, message: &str, warnings: Vec<String>| Decision {
            allowed,
            reason: reason.into(),
            message: message.into(),
            warnings,
            earliest_expiry: None,
            digest: None,
            from_error: false,
        };
        Ok(match name {
            "passed" => Decision { digest: Some(PASSED_DIGEST.into()), ..d(true, "passed", "", vec![]) },
            "failed" => d(
                false,
                "failed",
                "its VSA says FAILED: the rebuild differs; fix the build and run reprove verify --push again",
                vec![],
            ),
            "unsigned" => {
                d(true, "no-vsa", "", vec!["warn mode: no VSA is attached; enforce mode would deny it".into()])
            }
            "slow" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                d(true, "passed", "", vec![])
            }
            _ => d(false, "no-vsa", "no VSA is attached to this image: run reprove verify --push for it", vec![]),
        })
    }

    fn policy_digest(&self) -> String {
        "sha256:test-double".into()
    }
}

/// The webhook library serving HTTPS on 127.0.0.1 from a thread of its own.
struct InProcess {
    url: String,
    ca_pem: Vec<u8>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn start(deadline: Duration) -> InProcess {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (_, ca) = crate::support::server::make_identity(dir.path());
        let ca_pem = std::fs::read(&ca).unwrap_or_else(|e| panic!("{e}"));
        let mut config = Config::new(dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
        config.deadline = deadline;
        let server = Server::new(config, Verdicts).unwrap_or_else(|e| panic!("{e}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        let url = format!("https://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (metrics_tx, metrics) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
            rt.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap_or_else(|e| panic!("{e}"));
                server
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            });
            let _ = metrics_tx.send(server.metrics_text());
        });
        InProcess { url, ca_pem, stop: Some(stop), thread: Some(thread), metrics, _dir: dir }
    }

    /// Stops serving (the listener closes) and returns the final metrics.
    fn stop(&mut self) -> String {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.metrics.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

// --- manifests ------------------------------------------------------------------------------

/// A ValidatingWebhookConfiguration for `url` whose namespaceSelector matches the
/// namespaces labelled `reprove-test=<name>`.
fn webhook_configuration(name: &str, url: &str, ca_pem: &[u8], timeout_seconds: u32) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {name}
webhooks:
- name: {name}.webhook.reprove.test
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: {timeout_seconds}
  namespaceSelector:
    matchLabels:
      reprove-test: {name}
  clientConfig:
    url: {url}/validate
    caBundle: {ca}
  rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods", "pods/ephemeralcontainers"]
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["batch"]
    apiVersions: ["v1"]
    resources: ["jobs", "cronjobs"]
"#
    )
}

/// A MutatingWebhookConfiguration for `url`/mutate, for Pods and Deployments of the
/// namespaces labelled `reprove-test=<name>`.
fn mutating_configuration(name: &str, url: &str, ca_pem: &[u8]) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: {name}-pin
webhooks:
- name: {name}-pin.webhook.reprove.test
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  reinvocationPolicy: Never
  namespaceSelector:
    matchLabels:
      reprove-test: {name}
  clientConfig:
    url: {url}/mutate
    caBundle: {ca}
  rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["deployments"]
"#
    )
}

fn image(name: &str) -> String {
    format!("127.0.0.1:5000/{name}:1")
}

/// A pod spec at `indent` spaces: containers and init containers of these images.
fn pod_spec(containers: &[&str], init: &[&str], indent: usize, restart: &str) -> String {
    let pad = " ".repeat(indent);
    let mut s = format!("{pad}restartPolicy: {restart}\n{pad}containers:\n");
    for (i, n) in containers.iter().enumerate() {
        s.push_str(&format!("{pad}- name: c{i}\n{pad}  image: {}\n", image(n)));
    }
    if !init.is_empty() {
        s.push_str(&format!("{pad}initContainers:\n"));
        for (i, n) in init.iter().enumerate() {
            s.push_str(&format!("{pad}- name: i{i}\n{pad}  image: {}\n", image(n)));
        }
    }
    s
}

/// A workload of `kind` named `name` with these containers (and init containers).
fn workload(kind: &str, name: &str, containers: &[&str], init: &[&str]) -> String {
    let labels = |pad: &str| format!("{pad}metadata:\n{pad}  labels:\n{pad}    app: {name}\n");
    match kind {
        "Pod" => format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{}", pod_spec(containers, init, 2, "Always")),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            let extra = if kind == "StatefulSet" { format!("  serviceName: {name}\n") } else { String::new() };
            format!(
                "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{extra}  selector:\n    matchLabels:\n      app: {name}\n  template:\n{}    spec:\n{}",
                labels("    "),
                pod_spec(containers, init, 6, "Always")
            )
        }
        "Job" => format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n{}",
            pod_spec(containers, init, 6, "Never")
        ),
        "CronJob" => format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
            pod_spec(containers, init, 10, "Never")
        ),
        other => panic!("no manifest for {other}"),
    }
}

fn create(kube: &Kube, ns: &str, manifest: &str, dry_run: bool) -> Outcome {
    let mut args = vec!["create", "-n", ns, "-f", "-"];
    if dry_run {
        args.push("--dry-run=server");
    }
    kube.kubectl_with(&args, Some(manifest))
}

/// Registers the configuration and waits until the API server applies it (~0.5 s):
/// until a create of a `failed` image is refused by this webhook.
fn register(kube: &Kube, name: &str, configuration: &str, ns: &str) {
    let out = kube.kubectl_with(&["apply", "-f", "-"], Some(configuration));
    assert!(out.success(), "registering {name}: {}", out.stderr_str());
    let probe = workload("Deployment", "probe", &["failed"], &[]);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let out = create(kube, ns, &probe, true);
        if !out.success() && out.stderr_str().contains(&format!("admission webhook \"{name}.webhook.reprove.test\"")) {
            return;
        }
        assert!(Instant::now() < until, "the webhook {name} never took effect: {}", out.stderr_str());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn unregister(kube: &Kube, name: &str) {
    let _ = kube.kubectl_with(&["delete", "validatingwebhookconfiguration", name, "--ignore-not-found"], None);
}

// --- the tests ------------------------------------------------------------------------------

#[test]
fn allowed_denied_and_warned_reach_kubectl_for_every_workload_kind() {
    let kube = kube::shared();
    let server = InProcess::start(Duration::from_secs(8));
    let name = "kinds";
    kube.namespace("wh-kinds", &[("reprove-test", name)]);
    kube.namespace("wh-kinds-unwatched", &[]);
    register(kube, name, &webhook_configuration(name, &server.url, &server.ca_pem, 10), "wh-kinds");

    for kind in ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"] {
        let lower = kind.to_lowercase();
        let ok = create(kube, "wh-kinds", &workload(kind, &format!("{lower}-ok"), &["passed"], &["passed"]), true);
        assert!(ok.success(), "{kind} of a passed image: {}", ok.stderr_str());

        // The init container's image is judged too.
        let denied = create(kube, "wh-kinds", &workload(kind, &format!("{lower}-no"), &["passed"], &["failed"]), true);
        assert_eq!(denied.status, Some(1), "{kind}: {}", denied.stderr_str());
        let err = denied.stderr_str();
        assert!(
            err.contains(&format!(
                "admission webhook \"{name}.webhook.reprove.test\" denied the request: reprove denied this {kind} in namespace \"wh-kinds\": image {} (failed): its VSA says FAILED: the rebuild differs; fix the build and run reprove verify --push again",
                image("failed")
            )),
            "{kind}: {err}"
        );

        let warned = create(kube, "wh-kinds", &workload(kind, &format!("{lower}-warn"), &["unsigned"], &[]), true);
        assert!(warned.success(), "{kind}: {}", warned.stderr_str());
        assert!(
            warned.stderr_str().contains(&format!("Warning: {}: warn mode: no VSA is attached", image("unsigned"))),
            "{kind}: the warning reaches kubectl: {}",
            warned.stderr_str()
        );
    }
    // An image without any VSA, and the message telling what to do.
    let none = create(kube, "wh-kinds", &workload("Deployment", "none", &["other"], &[]), true);
    assert!(
        none.stderr_str().contains("(no-vsa): no VSA is attached to this image: run reprove verify --push for it"),
        "{}",
        none.stderr_str()
    );

    // A namespace the selector does not match is not judged.
    let elsewhere = create(kube, "wh-kinds-unwatched", &workload("Deployment", "elsewhere", &["failed"], &[]), true);
    assert!(elsewhere.success(), "{}", elsewhere.stderr_str());
    unregister(kube, name);
}

#[test]
fn dry_run_is_judged_alike_and_stores_nothing() {
    let kube = kube::shared();
    let mut server = InProcess::start(Duration::from_secs(8));
    let name = "dryrun";
    kube.namespace("wh-dryrun", &[("reprove-test", name)]);
    register(kube, name, &webhook_configuration(name, &server.url, &server.ca_pem, 10), "wh-dryrun");

    let dry = create(kube, "wh-dryrun", &workload("Deployment", "web", &["passed"], &[]), true);
    assert!(dry.success(), "{}", dry.stderr_str());
    let get = kube.kubectl_with(&["get", "deployment", "web", "-n", "wh-dryrun", "-o", "name"], None);
    assert!(!get.success(), "a dry run stores nothing: {}", get.stdout_str());

    let real = create(kube, "wh-dryrun", &workload("Deployment", "web", &["passed"], &[]), false);
    assert!(real.success(), "{}", real.stderr_str());
    let get = kube.kubectl_with(&["get", "deployment", "web", "-n", "wh-dryrun", "-o", "name"], None);
    assert_eq!(get.stdout_str().trim(), "deployment.apps/web");

    let denied_real = create(kube, "wh-dryrun", &workload("Pod", "bad", &["failed"], &[]), false);
    assert!(!denied_real.success());
    let get = kube.kubectl_with(&["get", "pod", "bad", "-n", "wh-dryrun", "-o", "name"], None);
    assert!(!get.success(), "a denied Pod is not stored");

    unregister(kube, name);
    let metrics = server.stop();
    // The probes and the dry run are counted apart from the real reviews.
    assert!(
        metrics.contains("reprove_webhook_reviews_total{endpoint=\"validate\",allowed=\"true\",dry_run=\"true\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reprove_webhook_reviews_total{endpoint=\"validate\",allowed=\"true\",dry_run=\"false\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("reprove_webhook_reviews_total{endpoint=\"validate\",allowed=\"false\",dry_run=\"false\"} 1\n"),
        "{metrics}"
    );
}

#[test]
fn mutate_pins_tags_to_digests_in_what_the_api_server_stores() {
    let kube = kube::shared();
    let server = InProcess::start(Duration::from_secs(8));
    let name = "pin";
    kube.namespace("wh-pin", &[("reprove-test", name)]);
    register(kube, name, &webhook_configuration(name, &server.url, &server.ca_pem, 10), "wh-pin");
    let out =
        kube.kubectl_with(&["apply", "-f", "-"], Some(&mutating_configuration(name, &server.url, &server.ca_pem)));
    assert!(out.success(), "{}", out.stderr_str());
    let pinned = format!("{}@{PASSED_DIGEST}", image("passed"));
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = kube.kubectl_with(&["delete", "deployment", "web", "-n", "wh-pin", "--ignore-not-found"], None);
        let out = create(kube, "wh-pin", &workload("Deployment", "web", &["passed"], &[]), false);
        assert!(out.success(), "{}", out.stderr_str());
        let got = kube.kubectl_with(
            &["get", "deployment", "web", "-n", "wh-pin", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
            None,
        );
        if got.stdout_str() == pinned {
            break;
        }
        assert!(Instant::now() < until, "never pinned: {}", got.stdout_str());
        std::thread::sleep(Duration::from_millis(100));
    }
    unregister(kube, name);
    let _ = kube
        .kubectl_with(&["delete", "mutatingwebhookconfiguration", &format!("{name}-pin"), "--ignore-not-found"], None);
}

#[test]
fn past_the_deadline_kubectl_gets_a_denial_not_an_allow() {
    let kube = kube::shared();
    let server = InProcess::start(Duration::from_millis(1500));
    let name = "deadline";
    kube.namespace("wh-deadline", &[("reprove-test", name)]);
    register(kube, name, &webhook_configuration(name, &server.url, &server.ca_pem, 10), "wh-deadline");
    let started = Instant::now();
    let out = create(kube, "wh-deadline", &workload("Deployment", "slow", &["slow"], &[]), true);
    let took = started.elapsed();
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("(deadline-exceeded): reprove could not decide before the webhook's deadline"),
        "{}",
        out.stderr_str()
    );
    assert!(
        took < Duration::from_secs(8),
        "answered by the webhook's deadline, not the API server's timeout: {took:?}"
    );
    unregister(kube, name);
}

/// `reprove webhook`, the binary, on a free port: it serves HTTPS with its certificate.
struct Binary {
    child: Child,
    url: String,
}

impl Binary {
    /// Starts it with the admission policy `policy` (written to `dir/policy.toml`);
    /// `registry_flags` are `reprove webhook`'s registry flags.
    fn start(dir: &Path, policy: &str, registry_flags: &[&str]) -> Binary {
        let (_, _) = crate::support::server::make_identity(dir);
        std::fs::write(dir.join("policy.toml"), policy).unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(dir.join("webhook.log")).unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(reprove_bin())
            .args(["webhook", "--listen", &format!("127.0.0.1:{port}"), "--deadline-ms", "3000"])
            .arg("--tls-cert")
            .arg(dir.join("leaf.pem"))
            .arg("--tls-key")
            .arg(dir.join("leaf.key"))
            .arg("--policy")
            .arg(dir.join("policy.toml"))
            .args(registry_flags)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let b = Binary { child, url: format!("https://127.0.0.1:{port}") };
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "reprove webhook did not listen: {}",
                std::fs::read_to_string(dir.join("webhook.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The binary decides with the admission engine from the VSAs in a real registry, each
/// case through `kubectl --dry-run=server` (and one real create): one `reprove webhook`,
/// one registry, a policy with per-namespace rules (`wh-binary` the default,
/// `wh-binary-strict` a threshold of 2, `wh-binary-warn` warn mode). Allowed: a trusted
/// PASSED image VSA. Denied with the reason and what to do: missing, FAILED, expired,
/// untrusted key, below threshold, tag-only (the digest to pin shown). Warn mode allows
/// with the warning in kubectl's output. Then, with the registry stopped, an image not
/// yet decided is denied (fail closed), and with the webhook gone the API server
/// refuses (failurePolicy: Fail).
#[test]
fn the_binary_decides_every_case_from_the_registry_and_fails_closed() {
    use crate::admit::{image_vsa, sign_and_push, time_ago};
    use crate::attest_registry::{keygen, push_image, Reg};
    let kube = kube::shared();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let mut reg = Reg::Distribution(Registry::start().unwrap_or_else(|e| panic!("{e}")));
    for key in ["a", "b", "c"] {
        keygen(d, key).unwrap_or_else(|e| panic!("{e}"));
    }
    let addr = reg.addr().to_owned();
    let push = |name: &str| {
        let image = push_image(&reg, name, "v1", "amd64").unwrap_or_else(|e| panic!("{e}"));
        (format!("{addr}/{name}"), format!("{addr}/{name}@{}", image.manifest_digest))
    };
    let digest_of = |r: &str| r.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
    // name, verifier keys, binary outcomes, seconds since verified
    let signed = |name: &str, keys: &[&str], outcomes: &[&str], age: i64| {
        let (full, pinned) = push(name);
        let vsa = image_vsa(&full, &digest_of(&pinned), outcomes, &time_ago(age)).unwrap_or_else(|e| panic!("{e}"));
        for key in keys {
            sign_and_push(d, key, &vsa, &pinned, &format!("{name}-{key}.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        }
        (full, pinned)
    };
    let (ok_name, ok_ref) = signed("ok", &["a"], &["reproduced"], 60);
    let (_, missing_ref) = push("missing");
    let (_, failed_ref) = signed("failed", &["a"], &["reproduced", "not-reproduced"], 60);
    let (_, old_ref) = signed("old", &["a"], &["reproduced"], 60 * 86_400);
    let (_, untrusted_ref) = signed("untrusted", &["c"], &["reproduced"], 60);
    let (_, both_ref) = signed("both", &["a", "b"], &["reproduced"], 60);
    let (_, later_ref) = signed("later", &["a"], &["reproduced"], 60);
    let policy = "version = 1\n\
                  [[verifiers]]\nname = \"a\"\nkey = \"a.pub\"\n\
                  [[verifiers]]\nname = \"b\"\nkey = \"b.pub\"\n\
                  [default]\nmax_age = \"30d\"\n\
                  [[rules]]\nnamespaces = [\"wh-binary-strict\"]\nthreshold = 2\n\
                  [[rules]]\nnamespaces = [\"wh-binary-warn\"]\nmode = \"warn\"\n";
    let mut binary = Binary::start(d, policy, &[]);
    let ca = std::fs::read(d.join("ca.pem")).unwrap_or_else(|e| panic!("{e}"));
    let name = "binary";
    for ns in ["wh-binary", "wh-binary-strict", "wh-binary-warn"] {
        kube.namespace(ns, &[("reprove-test", name)]);
    }
    register(kube, name, &webhook_configuration(name, &binary.url, &ca, 10), "wh-binary");

    let allowed = |ns: &str, pod: &str, image: &str| {
        let out = create(kube, ns, &pod_of(pod, image), true);
        assert_eq!(out.status, Some(0), "{ns}/{pod} {image}: {}{}", out.stdout_str(), out.stderr_str());
        out
    };
    let denied = |ns: &str, pod: &str, image: &str, reason: &str, says: &[&str]| {
        let out = create(kube, ns, &pod_of(pod, image), true);
        assert_eq!(out.status, Some(1), "{ns}/{pod} {image} is denied: {}", out.stdout_str());
        let err = out.stderr_str();
        let head = format!(
            "admission webhook \"{name}.webhook.reprove.test\" denied the request: reprove denied this Pod in namespace \"{ns}\": image {image} ({reason}): "
        );
        assert!(err.contains(&head), "{ns}/{pod}: want {head:?} in {err}");
        for s in says {
            assert!(err.contains(s), "{ns}/{pod}: want {s:?} in {err}");
        }
    };

    let out = allowed("wh-binary", "ok", &ok_ref);
    assert!(!out.stderr_str().contains("Warning"), "{}", out.stderr_str());
    denied("wh-binary", "missing", &missing_ref, "missing", &["reprove audit", "--attest --push"]);
    denied(
        "wh-binary",
        "failed",
        &failed_ref,
        "failed",
        &[&format!("a trusted verifier attests that {failed_ref} was not reproduced"), "fix the build"],
    );
    denied(
        "wh-binary",
        "old",
        &old_ref,
        "expired",
        &[&format!("the trusted PASSED VSAs of {old_ref} are older than 30d")],
    );
    denied(
        "wh-binary",
        "untrusted",
        &untrusted_ref,
        "untrusted",
        &["is signed by a verifier the policy trusts", "[[verifiers]]"],
    );
    denied(
        "wh-binary-strict",
        "below",
        &ok_ref,
        "below-threshold",
        &["fewer distinct trusted verifiers than the threshold 2"],
    );
    allowed("wh-binary-strict", "both", &both_ref);
    let tag = format!("{ok_name}:v1");
    let ok_digest = digest_of(&ok_ref);
    denied(
        "wh-binary",
        "tag",
        &tag,
        "tag-only",
        &[&format!("the tag names {ok_digest} now: pin it by digest"), &format!("image: {tag}@{ok_digest}")],
    );

    // Warn mode: the denial becomes a warning that kubectl prints, and the Pod is allowed.
    let out = allowed("wh-binary-warn", "warned", &missing_ref);
    let err = out.stderr_str();
    assert!(
        err.contains(&format!("Warning: {missing_ref}: would be denied (missing): no VSA")),
        "the warning reaches kubectl: {err}"
    );

    // A dry run is judged alike and stores nothing; the same Pod created for real is
    // stored, and a denied one is not.
    let get = |ns: &str, pod: &str| kube.kubectl_with(&["get", "pod", pod, "-n", ns, "-o", "name"], None);
    assert!(!get("wh-binary", "ok").success(), "the dry run stored nothing");
    let real = create(kube, "wh-binary", &pod_of("ok", &ok_ref), false);
    assert!(real.success(), "{}", real.stderr_str());
    assert_eq!(get("wh-binary", "ok").stdout_str().trim(), "pod/ok");
    let real = create(kube, "wh-binary", &pod_of("failed", &failed_ref), false);
    assert_eq!(real.status, Some(1), "{}", real.stdout_str());
    assert!(!get("wh-binary", "failed").success(), "a denied Pod is not stored");

    // The registry down: an image not decided before (nothing cached) is denied, not
    // allowed (on_error defaults to deny); one decided before is still allowed from
    // the cache, which never holds a fetch error.
    if let Reg::Distribution(r) = &mut reg {
        r.stop();
    }
    denied(
        "wh-binary",
        "later",
        &later_ref,
        "registry-error",
        &["fetching the attestations failed", "retry when the registry answers"],
    );
    allowed("wh-binary", "ok-cached", &ok_ref);

    // The webhook gone: the API server refuses (failurePolicy: Fail).
    binary.kill();
    let out = create(kube, "wh-binary", &pod_of("gone", &ok_ref), true);
    assert_eq!(out.status, Some(1), "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(
        err.contains("failed calling webhook \"binary.webhook.reprove.test\"") && err.contains("connection refused"),
        "{err}"
    );
    unregister(kube, name);
}

/// A keyless verifier through the binary: the policy trusts a certificate identity
/// (`admit_keyless`'s test CA), and `kubectl` is allowed a Pod whose image has a PASSED
/// VSA in a Sigstore bundle from that identity, and denied one signed by another
/// subject, with the reason.
#[test]
fn the_binary_admits_an_image_signed_by_a_trusted_identity() {
    use crate::admit::{image_vsa, time_ago};
    use crate::admit_keyless::{identity_verifier, Ca};
    use crate::attest_registry::{push_image, Reg};
    let kube = kube::shared();
    let ca = Ca::new().unwrap_or_else(|e| panic!("{e}"));
    let reg = Reg::Distribution(Registry::start().unwrap_or_else(|e| panic!("{e}")));
    let addr = reg.addr().to_owned();
    let signed = |name: &str, leaf: &str| {
        let image = push_image(&reg, name, "v1", "amd64").unwrap_or_else(|e| panic!("{e}"));
        let digest = image.manifest_digest.to_string();
        let pinned = format!("{addr}/{name}@{digest}");
        let vsa = image_vsa(&format!("{addr}/{name}"), &digest, &["reproduced"], &time_ago(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let at = crate::attest_certificate::now();
        ca.sign_and_push(leaf, &vsa, at, &pinned, &format!("{name}.sigstore.json")).unwrap_or_else(|e| panic!("{e}"));
        pinned
    };
    let ok_ref = signed("keyless-ok", "signer.pem");
    let other_ref = signed("keyless-other", "mallory.pem");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::copy(ca.path().join("trusted_root.json"), d.join("trusted_root.json")).unwrap_or_else(|e| panic!("{e}"));
    let policy = format!("version = 1\n[default]\nmax_age = \"30d\"\n{}", identity_verifier("release"));
    let binary = Binary::start(d, &policy, &[]);
    let ca_pem = std::fs::read(d.join("ca.pem")).unwrap_or_else(|e| panic!("{e}"));
    let (name, ns) = ("keyless", "wh-keyless");
    kube.namespace(ns, &[("reprove-test", name)]);
    register(kube, name, &webhook_configuration(name, &binary.url, &ca_pem, 10), ns);
    let out = create(kube, ns, &pod_of("ok", &ok_ref), true);
    assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());
    let out = create(kube, ns, &pod_of("other", &other_ref), true);
    assert_eq!(out.status, Some(1), "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(
        err.contains(&format!("image {other_ref} (untrusted): "))
            && err.contains("(release: identity: email:mallory@example.test (issuer https://issuer.example.test): no SAN matches subject")
            && err.contains("a key or certificate identity the policy trusts"),
        "{err}"
    );
    unregister(kube, name);
}

/// A Pod running `image`.
fn pod_of(name: &str, image: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n    - name: c\n      image: {image}\n")
}

#[test]
fn the_kubernetes_example_applies() {
    let kube = kube::shared();
    let dir = crate::support::repo_root().join("examples/kubernetes/admission");
    // The ConfigMap's policy is one `reprove webhook` loads (with a key where the
    // Deployment mounts one).
    let config: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("policy.yaml")).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    crate::attest_registry::keygen(keys.path(), "verifier").unwrap_or_else(|e| panic!("{e}"));
    let policy = config["data"]["policy.toml"].as_str().unwrap_or_default().replace("/etc/reprove/keys/", "");
    admission::Policy::from_toml(&policy, keys.path()).unwrap_or_else(|e| panic!("the example policy: {e}\n{policy}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let names: Vec<String> =
        files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        ["00-namespace.yaml", "deployment.yaml", "policy.yaml", "service.yaml", "validatingwebhookconfiguration.yaml"]
    );
    // The namespace for real (the rest is created in it), then every object as the
    // API server would store it, validated against its schemas, without storing it.
    let ns = kube.kubectl_with(&["apply", "-f", &files[0].to_string_lossy()], None);
    assert!(ns.success(), "{}", ns.stderr_str());
    let out =
        kube.kubectl_with(&["apply", "--dry-run=server", "--validate=strict", "-f", &dir.to_string_lossy()], None);
    assert!(out.success(), "{}{}", out.stdout_str(), out.stderr_str());
    let applied = out.stdout_str();
    // The Deployment runs flags that `reprove webhook` has.
    let help =
        crate::support::run(Command::new(reprove_bin()).args(["webhook", "--help"])).unwrap_or_else(|e| panic!("{e}"));
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let flags: Vec<&str> =
        deployment.lines().filter_map(|l| l.trim().strip_prefix("- --")).filter_map(|f| f.split('=').next()).collect();
    assert_eq!(flags, ["listen", "tls-cert", "tls-key", "policy", "deadline-ms"]);
    for flag in flags {
        assert!(help.stdout_str().contains(&format!("--{flag} <")), "--{flag} in {}", help.stdout_str());
    }
    for want in [
        "namespace/reprove-admission",
        "configmap/reprove-admission-policy",
        "deployment.apps/reprove-webhook",
        "service/reprove-webhook",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/reprove.reprove-admission.svc",
    ] {
        assert!(applied.contains(want), "{want} in {applied}");
    }
}

/// The policy-controller and Kyverno examples (for users of those controllers) fit the
/// CRD schemas of the versions they name (from the projects' modules, `ci/setup-crds`):
/// a server-side dry run with strict field validation accepts each; the same example
/// with a misspelt field is refused, so the check has teeth.
#[test]
fn the_policy_controller_and_kyverno_examples_fit_their_crds() {
    let kube = kube::shared();
    let examples = crate::support::repo_root().join("examples/kubernetes");
    let cases = [
        (
            "crds/policy-controller-v0.13.1/300-clusterimagepolicy.yaml",
            "clusterimagepolicies.policy.sigstore.dev",
            "policy-controller/clusterimagepolicy.yaml",
            "clusterimagepolicy.policy.sigstore.dev/reprove-reproduced",
            ("predicateType:", "predicateTyp:"),
        ),
        (
            "crds/kyverno-v1.19.1/kyverno.io_clusterpolicies.yaml",
            "clusterpolicies.kyverno.io",
            "kyverno/clusterpolicy.yaml",
            "clusterpolicy.kyverno.io/reprove-reproduced",
            ("conditions:", "condition:"),
        ),
    ];
    for (crd, crd_name, example, object, (field, misspelt)) in cases {
        install_crd(kube, crd, crd_name);
        let text = std::fs::read_to_string(examples.join(example)).unwrap_or_else(|e| panic!("{example}: {e}"));
        let dry_run = |manifest: &str| dry_run(kube, manifest);
        let out = dry_run(&text);
        assert!(out.success(), "{example}: {}{}", out.stdout_str(), out.stderr_str());
        assert!(out.stdout_str().contains(&format!("{object} created (server dry run)")), "{}", out.stdout_str());

        assert!(text.contains(field), "{example} has {field}");
        let out = dry_run(&text.replacen(field, misspelt, 1));
        assert!(!out.success(), "{example} with {misspelt} is refused: {}", out.stdout_str());
        let err = out.stderr_str();
        let unknown = misspelt.trim_end_matches(':');
        assert!(err.contains("unknown field") && err.contains(unknown), "{example}: {err}");
    }
}

/// Installs the CRD cached at `crd` (below the test cache, by `ci/setup-crds`) with a
/// server-side apply and waits until the API server says `name` is Established.
pub(crate) fn install_crd(kube: &Kube, crd: &str, name: &str) {
    let path = crate::support::cached_tool(crd, "ci/setup-crds (from ci/setup)").unwrap_or_else(|e| panic!("{e}"));
    let mut doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // policy-controller converts between its versions with its own webhook, which
    // this API server does not run: the schemas are what is checked here.
    if doc["spec"]["conversion"]["strategy"] == "Webhook" {
        doc["spec"]["conversion"] = serde_json::json!({"strategy": "None"});
    }
    // Server-side: Kyverno's CRD is larger than the annotation client-side apply keeps.
    let out = kube.kubectl_with(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&serde_json::to_string(&doc).unwrap_or_else(|e| panic!("{e}"))),
    );
    assert!(out.success(), "{crd}: {}", out.stderr_str());
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let jsonpath = r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#;
        let out = kube.kubectl_with(&["get", "crd", name, "-o", jsonpath], None);
        if out.stdout_str() == "True" {
            break;
        }
        assert!(Instant::now() < until, "{name} never Established: {}", out.stderr_str());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `kubectl apply --dry-run=server --validate=strict -f -` of `manifest`, retried for a
/// moment while the API server starts serving a new CRD's kind.
pub(crate) fn dry_run(kube: &Kube, manifest: &str) -> Outcome {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kube.kubectl_with(&["apply", "--dry-run=server", "--validate=strict", "-f", "-"], Some(manifest));
        if out.success() || !out.stderr_str().contains("ensure CRDs are installed") || Instant::now() > until {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The policy-controller example does what it says, judged by policy-controller's own
/// `policy-tester` (v0.13.1, `ci/setup-policy-tester`), which reads the registry as the
/// controller does: with the example's images glob and key set to a registry on
/// 127.0.0.1 and a `reprove keygen` key, an image whose PASSED image VSA reprove signed
/// and attached is admitted; FAILED, older than 30 days, and signed by another key are not.
#[test]
fn policy_controller_judges_reprove_vsas_with_the_example() {
    use crate::admit::{image_vsa, sign_and_push, time_ago};
    use crate::attest_registry::{keygen, push_image, Reg};
    let tester =
        crate::support::cached_tool("policy-controller/bin/policy-tester", "ci/setup-policy-tester (from ci/setup)")
            .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let reg = Reg::Distribution(Registry::start().unwrap_or_else(|e| panic!("{e}")));
    for key in ["a", "c"] {
        keygen(d, key).unwrap_or_else(|e| panic!("{e}"));
    }
    let addr = reg.addr().to_owned();
    let signed = |name: &str, key: &str, outcomes: &[&str], age: i64| {
        let image = push_image(&reg, name, "v1", "amd64").unwrap_or_else(|e| panic!("{e}"));
        let pinned = format!("{addr}/{name}@{}", image.manifest_digest);
        let vsa = image_vsa(&format!("{addr}/{name}"), &image.manifest_digest.to_string(), outcomes, &time_ago(age))
            .unwrap_or_else(|e| panic!("{e}"));
        sign_and_push(d, key, &vsa, &pinned, &format!("{name}.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        pinned
    };
    // The image, and None if admitted, else what the refusal says: the Rego check
    // (FAILED, too old), or the signature (another key).
    let not_compliant = Some("failed evaluating rego policy for type reprove-vsa-passed: policy is not compliant");
    let cases = [
        (signed("ok", "a", &["reproduced"], 60), None),
        (signed("failed", "a", &["reproduced", "not-reproduced"], 60), not_compliant),
        (signed("old", "a", &["reproduced"], 31 * 86_400), not_compliant),
        (
            signed("untrusted", "c", &["reproduced"], 60),
            Some("attestation key validation failed for authority reprove-verifier"),
        ),
    ];

    let example = crate::support::repo_root().join("examples/kubernetes/policy-controller/clusterimagepolicy.yaml");
    let text = std::fs::read_to_string(&example).unwrap_or_else(|e| panic!("{e}"));
    let key = std::fs::read_to_string(d.join("a.pub")).unwrap_or_else(|e| panic!("{e}"));
    let (begin, end) = ("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----");
    let (Some(from), Some(to)) = (text.find(begin), text.find(end)) else { panic!("no key in the example") };
    let indent = " ".repeat(text[..from].rsplit('\n').next().map_or(0, str::len));
    let pem: Vec<String> = key.trim().lines().map(str::to_owned).collect();
    let policy = format!("{}{}{}", &text[..from], pem.join(&format!("\n{indent}")), &text[to + end.len()..])
        .replace("registry.example/**", &format!("{addr}/**"));
    assert!(policy.contains(&format!("\"{addr}/**\"")), "{policy}");
    std::fs::write(d.join("cip.yaml"), &policy).unwrap_or_else(|e| panic!("{e}"));

    for (image, refused) in cases {
        let out = crate::support::run(
            Command::new(&tester)
                .args(["--policy", "cip.yaml", "--image", &image])
                .current_dir(d)
                .env("HOME", d)
                .env_remove("DOCKER_CONFIG"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let said = format!("{}{}", out.stdout_str(), out.stderr_str());
        match refused {
            None => assert!(out.success() && said.contains("Verification was successful"), "{image}: {said}"),
            Some(why) => {
                assert_eq!(out.status, Some(1), "{image} is refused: {said}");
                assert!(said.contains(why), "{image}: want {why:?} in {said}");
            }
        }
    }
}
