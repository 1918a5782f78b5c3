//! A real Kubernetes API server on 127.0.0.1 for the admission webhook tests: Debian's
//! etcd and the kube-apiserver and kubectl that `ci/setup-kube` builds, with generated
//! certificates, a static token, and no controller, scheduler or kubelet (Pods stay
//! Pending, Deployments create no Pods: a webhook must match the workload kinds).

use std::io::Write as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{cached_tool, run, Outcome, RUN_SETUP};

const TOKEN: &str = "reprove-test-token";

/// etcd and kube-apiserver, stopped (apiserver first) when dropped.
pub(crate) struct Kube {
    apiserver: Option<Child>,
    etcd: Option<Child>,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

/// A free loopback port (closed again: the caller binds it soon; start retries).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn spawn(program: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, killed whole.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {}: {e} ({RUN_SETUP})", program.display()))
}

fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let pid = rustix::process::Pid::from_child(&c);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = c.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A plain HTTP GET on 127.0.0.1 (etcd's /health): the body, if it answered.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("openssl: {e} ({RUN_SETUP})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Kube {
    /// Starts etcd, then kube-apiserver, waits until `/readyz` answers, writes a
    /// kubeconfig and creates the `default` ServiceAccount of `default`.
    pub(crate) fn start() -> Result<Kube, String> {
        let apiserver_bin = cached_tool("kube/bin/kube-apiserver", "ci/setup-kube (from ci/setup)")?;
        let kubectl = cached_tool("kube/bin/kubectl", "ci/setup-kube (from ci/setup)")?;
        let etcd_bin = PathBuf::from("/usr/bin/etcd");
        if !etcd_bin.is_file() {
            return Err(format!("etcd is missing: {RUN_SETUP} (Debian's etcd-server)"));
        }
        let dir = tempfile::Builder::new().prefix("reprove-kube-").tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        let (_, ca) = super::server::make_identity(d);
        openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key"])?;
        std::fs::write(d.join("tokens.csv"), format!("{TOKEN},admin,admin-uid,system:masters\n"))
            .map_err(|e| e.to_string())?;
        let mut kube = Kube { apiserver: None, etcd: None, kubectl, kubeconfig: d.join("kubeconfig"), dir };
        let d = kube.dir.path().to_path_buf();

        let mut last = String::new();
        for _attempt in 0..3 {
            let (client, peer) = (free_port(), free_port());
            let etcd_args: Vec<String> = vec![
                "--name=default".into(),
                format!("--data-dir={}", d.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer}"),
                "--log-level=warn".into(),
            ];
            let log = d.join("etcd.log");
            kube.etcd = Some(spawn(&etcd_bin, &etcd_args, &log)?);
            let until = Instant::now() + Duration::from_secs(20);
            let mut healthy = false;
            while Instant::now() < until {
                if http_get(client, "/health").is_some_and(|b| b.contains("\"health\":\"true\"")) {
                    healthy = true;
                    break;
                }
                if let Some(Ok(Some(_))) = kube.etcd.as_mut().map(Child::try_wait) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !healthy {
                last = format!("etcd did not become healthy:\n{}", log_tail(&log));
                stop(&mut kube.etcd);
                let _ = std::fs::remove_dir_all(d.join("etcd"));
                continue;
            }

            let port = free_port();
            let args: Vec<String> = vec![
                format!("--etcd-servers=http://127.0.0.1:{client}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={port}"),
                format!("--cert-dir={}", d.join("certs").display()),
                format!("--tls-cert-file={}", d.join("leaf.pem").display()),
                format!("--tls-private-key-file={}", d.join("leaf.key").display()),
                format!("--token-auth-file={}", d.join("tokens.csv").display()),
                "--authorization-mode=AlwaysAllow".into(),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                format!("--service-account-key-file={}", d.join("sa.key").display()),
                format!("--service-account-signing-key-file={}", d.join("sa.key").display()),
                "--service-cluster-ip-range=10.96.0.0/24".into(),
                "--endpoint-reconciler-type=none".into(),
            ];
            let log = d.join("apiserver.log");
            kube.apiserver = Some(spawn(&apiserver_bin, &args, &log)?);
            std::fs::write(
                &kube.kubeconfig,
                format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\ncurrent-context: test\n",
                    ca.display()
                ),
            )
            .map_err(|e| e.to_string())?;
            let until = Instant::now() + Duration::from_secs(90);
            let mut ready = false;
            while Instant::now() < until {
                if let Some(Ok(Some(status))) = kube.apiserver.as_mut().map(Child::try_wait) {
                    last = format!("kube-apiserver exited ({status}):\n{}", log_tail(&log));
                    break;
                }
                if kube
                    .kubectl()
                    .args(["get", "--raw", "/readyz"])
                    .output()
                    .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"ok"))
                {
                    ready = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            if !ready {
                if last.is_empty() {
                    last = format!("kube-apiserver not ready after 90 s:\n{}", log_tail(&log));
                }
                stop(&mut kube.apiserver);
                stop(&mut kube.etcd);
                let _ = std::fs::remove_dir_all(d.join("etcd"));
                continue;
            }
            kube.ensure_service_account("default")?;
            return Ok(kube);
        }
        Err(last)
    }

    /// kubectl with this server's kubeconfig (the `default` namespace).
    pub(crate) fn kubectl(&self) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.env("KUBECONFIG", &self.kubeconfig).env_remove("KUBERNETES_SERVICE_HOST").arg("--request-timeout=30s");
        c.stdin(Stdio::null());
        c
    }

    /// Runs kubectl with `args`, feeding `stdin` (YAML or JSON manifests) if given.
    pub(crate) fn kubectl_with(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let mut c = self.kubectl();
        c.args(args);
        let Some(input) = stdin else {
            return run(&mut c).unwrap_or_else(|e| panic!("{e}"));
        };
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("kubectl: {e}"));
        if let Some(mut s) = child.stdin.take() {
            s.write_all(input.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        Outcome { status: out.status.code(), stdout: out.stdout, stderr: out.stderr }
    }

    /// Creates a namespace with labels and its `default` ServiceAccount (no controller
    /// manager makes it, and without it every Pod is refused before the webhooks run).
    pub(crate) fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: String = labels.iter().map(|(k, v)| format!("    {k}: \"{v}\"\n")).collect();
        let ns = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n{labels}");
        let out = self.kubectl_with(&["apply", "-f", "-"], Some(&ns));
        assert!(out.success(), "creating namespace {name}: {}", out.stderr_str());
        self.ensure_service_account(name).unwrap_or_else(|e| panic!("{e}"));
    }

    fn ensure_service_account(&self, namespace: &str) -> Result<(), String> {
        let sa =
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: {namespace}\n");
        let out = self.kubectl_with(&["apply", "-f", "-"], Some(&sa));
        if out.success() {
            Ok(())
        } else {
            Err(format!("creating the default ServiceAccount of {namespace}: {}", out.stderr_str()))
        }
    }

    /// The temporary directory (logs: etcd.log, apiserver.log).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        stop(&mut self.apiserver);
        stop(&mut self.etcd);
    }
}

/// One API server for the whole test process (starting one takes seconds and a core),
/// stopped when the process exits (apiserver first, then etcd) however it exits.
pub(crate) fn shared() -> &'static Kube {
    static KUBE: OnceLock<Kube> = OnceLock::new();
    KUBE.get_or_init(|| {
        let kube = Kube::start().unwrap_or_else(|e| panic!("starting the test Kubernetes API server: {e}"));
        let pid = |c: &Option<Child>| c.as_ref().map_or(0, Child::id);
        reap_groups_at_exit(&[pid(&kube.apiserver), pid(&kube.etcd)], kube.dir.path());
        kube
    })
}

/// Kills the process groups `pgids` in order, then removes `dir`, when this test
/// process exits (a static is never dropped): a `sh` that waits for the end of a pipe
/// only this process holds. `env kill` is procps' (dash's builtin takes no group).
fn reap_groups_at_exit(pgids: &[u32], dir: &Path) {
    let script = r#"read -r _ || :
d="$1"; shift
for g in "$@"; do
  env kill -s TERM -- "-$g" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do env kill -0 -- "-$g" 2>/dev/null || break; sleep 0.25; done
  env kill -s KILL -- "-$g" 2>/dev/null
done
rm -rf -- "$d""#;
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).arg("reaper").arg(dir);
    for g in pgids {
        c.arg(g.to_string());
    }
    let child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    std::mem::forget(child);
}
