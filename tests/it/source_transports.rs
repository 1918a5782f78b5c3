//! `source` clones over the network transports, against real servers
//! on 127.0.0.1 only: OpenSSH's `sshd` with `ssh-agent` (tests/it/support/ssh.rs),
//! and `git http-backend` behind a TLS server (tests/it/support/server.rs)
//! with a CA made by the openssl CLI.
//!
//! ssh: a clone with the agent's key and a known host key resolves and exports
//! exactly what the local repository does (also with the key in a hashed
//! `~/.ssh/known_hosts`, the default file); an unknown host key, a changed one
//! and an agent key the server does not authorize are refused, each with its
//! typed error naming the host and the key's fingerprint or the user.
//! https: trusted through `SSL_CERT_FILE`, the same result; without it the
//! certificate is refused.
//!
//! The agent socket (`SSH_AUTH_SOCK`) and the CA (`SSL_CERT_FILE`) are process
//! environment that libssh2 and OpenSSL read themselves, so each clone runs in
//! a child process: this test binary again, running only `child_clone`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use source::Source;

use crate::support::{self, server};

use support::ssh::{self, Agent, Sshd};
use support::{git, listing, run_ok};

const CHILD_URL: &str = "REPROVE_TEST_CHILD_URL";
const CHILD_WORK: &str = "REPROVE_TEST_CHILD_WORK";

/// A repository (tag v1.0.0 on the first commit, branch `release` one commit
/// later) and a bare copy of it at `served/repo.git`.
struct Repo {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    served: PathBuf,
    first: String,
    second: String,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("repo");
        fs::create_dir_all(dir.join("cmd")).unwrap_or_else(|e| panic!("{e}"));
        git(&dir, &["init", "-q"]);
        fs::write(dir.join("go.mod"), "module example.com/x\n\ngo 1.21\n").unwrap_or_else(|e| panic!("{e}"));
        fs::write(dir.join("main.go"), "package main\n\nfunc main() {}\n").unwrap_or_else(|e| panic!("{e}"));
        git(&dir, &["add", "."]);
        git(&dir, &["commit", "-q", "-m", "first"]);
        git(&dir, &["tag", "-a", "v1.0.0", "-m", "v1"]);
        let first = git(&dir, &["rev-parse", "HEAD"]);
        fs::write(dir.join("cmd/run.sh"), "#!/bin/sh\n").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("../main.go", dir.join("cmd/link")).unwrap_or_else(|e| panic!("{e}"));
        git(&dir, &["add", "."]);
        git(&dir, &["update-index", "--chmod=+x", "cmd/run.sh"]);
        git(&dir, &["commit", "-q", "-m", "second"]);
        git(&dir, &["branch", "release"]);
        let second = git(&dir, &["rev-parse", "HEAD"]);
        let served = tmp.path().join("served");
        fs::create_dir(&served).unwrap_or_else(|e| panic!("{e}"));
        git(&served, &["clone", "-q", "--bare", &dir.display().to_string(), "repo.git"]);
        Repo { tmp, dir, served, first, second }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The local repository's export of `release`.
    fn local_export(&self) -> BTreeMap<String, String> {
        let work = self.path("local-work");
        let src = Source::open(&self.dir.display().to_string(), &work).unwrap_or_else(|e| panic!("{e}"));
        let c = src.resolve("release").unwrap_or_else(|e| panic!("{e}"));
        let dest = self.path("local-export");
        src.export(&c, &dest).unwrap_or_else(|e| panic!("{e}"));
        listing(&dest)
    }
}

/// What a clone in a child process gave.
#[derive(Debug)]
enum Cloned {
    /// The commits of `v1.0.0` and `release`, and the export of `release`.
    Ok { v1: String, release: String, export: BTreeMap<String, String> },
    /// The error's Debug and Display, and whether it is a security refusal.
    Err { debug: String, message: String, security: bool, input: bool },
}

/// Runs `Source::open(url)` in a child process with exactly these variables
/// of the ones that matter (SSH_AUTH_SOCK, SSL_CERT_FILE, SSL_CERT_DIR,
/// REPROVE_SSH_KNOWN_HOSTS; HOME is `home`).
fn clone_in_child(url: &str, work: &Path, home: &Path, vars: &[(&str, &Path)]) -> Cloned {
    fs::create_dir_all(work).unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    // The test's name in this binary: its module path without the crate's name.
    let child = format!("{}::child_clone", module_path!().split_once("::").map_or("", |(_, m)| m));
    let mut cmd = Command::new(exe);
    cmd.args([child.as_str(), "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_URL, url)
        .env(CHILD_WORK, work)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("REPROVE_SSH_KNOWN_HOSTS")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |name: &str| {
        stdout.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string).unwrap_or_else(|| {
            panic!(
                "the child printed no {name}\nstatus {:?}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    if field("CHILD-RESULT ") == "ok" {
        Cloned::Ok { v1: field("CHILD-V1 "), release: field("CHILD-RELEASE "), export: listing(&work.join("export")) }
    } else {
        assert_eq!(field("CHILD-LEFT "), "0", "a failed clone left its directory behind");
        Cloned::Err {
            debug: field("CHILD-DEBUG "),
            message: field("CHILD-MESSAGE "),
            security: field("CHILD-SECURITY ") == "true",
            input: field("CHILD-INPUT ") == "true",
        }
    }
}

/// The child side of [`clone_in_child`]; does nothing in an ordinary test run.
#[test]
fn child_clone() {
    let (Some(url), Some(work)) = (std::env::var_os(CHILD_URL), std::env::var_os(CHILD_WORK)) else { return };
    let (url, work) = (url.to_string_lossy().to_string(), PathBuf::from(work));
    match Source::open(&url, &work) {
        Ok(src) => {
            let v1 = src.resolve("v1.0.0").unwrap_or_else(|e| panic!("{e}"));
            let release = src.resolve("release").unwrap_or_else(|e| panic!("{e}"));
            src.export(&release, &work.join("export")).unwrap_or_else(|e| panic!("{e}"));
            println!("CHILD-RESULT ok\nCHILD-V1 {}\nCHILD-RELEASE {}", v1.id, release.id);
        }
        Err(e) => {
            println!("CHILD-RESULT err\nCHILD-DEBUG {e:?}\nCHILD-MESSAGE {e}");
            println!("CHILD-SECURITY {}\nCHILD-INPUT {}", e.is_security(), e.is_input());
            // Nothing of a failed clone stays behind.
            let left = fs::read_dir(&work)
                .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("clone-")).count())
                .unwrap_or(0);
            println!("CHILD-LEFT {left}");
        }
    }
}

/// sshd serving `r.served`, an agent holding `agent_key`, and the ssh URL of the bare repository.
struct SshSetup {
    sshd: Sshd,
    agent: Agent,
    url: String,
    dir: PathBuf,
}

fn ssh_setup(r: &Repo, authorize_agent_key: bool) -> SshSetup {
    let dir = r.path("ssh");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let client = dir.join("id_client");
    let client_pub = ssh::keygen(&client);
    let authorized = dir.join("authorized_keys");
    if authorize_agent_key {
        fs::write(&authorized, format!("{client_pub}\n")).unwrap_or_else(|e| panic!("{e}"));
    } else {
        let other = ssh::keygen(&dir.join("id_other"));
        fs::write(&authorized, format!("{other}\n")).unwrap_or_else(|e| panic!("{e}"));
    }
    let sshd = Sshd::start(&dir, &authorized);
    let agent = Agent::start(&dir, &client);
    let url = format!("ssh://{}@127.0.0.1:{}{}", ssh::user(), sshd.port, r.served.join("repo.git").display());
    SshSetup { sshd, agent, url, dir }
}

#[test]
fn ssh_clones_with_the_agent_and_a_known_host_key() {
    let r = Repo::new();
    let s = ssh_setup(&r, true);
    let known = s.dir.join("known_hosts");
    fs::write(&known, s.sshd.known_hosts_line()).unwrap_or_else(|e| panic!("{e}"));
    let vars = [("SSH_AUTH_SOCK", s.agent.sock.as_path()), ("REPROVE_SSH_KNOWN_HOSTS", known.as_path())];
    let got = clone_in_child(&s.url, &r.path("work-a"), &r.path("home-a"), &vars);
    let want = r.local_export();
    match got {
        Cloned::Ok { v1, release, export } => {
            assert_eq!((v1, release), (r.first.clone(), r.second.clone()));
            assert_eq!(export, want);
        }
        other => panic!("{other:?}\nsshd:\n{}", s.sshd.log()),
    }

    // The default file, ~/.ssh/known_hosts, with the host name hashed (ssh-keygen -H).
    let home = r.path("home-b");
    fs::create_dir_all(home.join(".ssh")).unwrap_or_else(|e| panic!("{e}"));
    let default = home.join(".ssh/known_hosts");
    fs::copy(&known, &default).unwrap_or_else(|e| panic!("{e}"));
    run_ok(Command::new("ssh-keygen").arg("-H").arg("-f").arg(&default)).unwrap_or_else(|e| panic!("{e}"));
    let hashed = fs::read_to_string(&default).unwrap_or_default();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let vars = [("SSH_AUTH_SOCK", s.agent.sock.as_path())];
    match clone_in_child(&s.url, &r.path("work-b"), &home, &vars) {
        Cloned::Ok { release, export, .. } => assert_eq!((release, export), (r.second.clone(), want)),
        other => panic!("{other:?}\nsshd:\n{}", s.sshd.log()),
    }
}

#[test]
fn an_unknown_ssh_host_key_is_refused_naming_the_host_and_fingerprint() {
    let r = Repo::new();
    let s = ssh_setup(&r, true);
    let known = s.dir.join("known_hosts");
    fs::write(&known, "# nothing for this host\n").unwrap_or_else(|e| panic!("{e}"));
    let vars = [("SSH_AUTH_SOCK", s.agent.sock.as_path()), ("REPROVE_SSH_KNOWN_HOSTS", known.as_path())];
    let got = clone_in_child(&s.url, &r.path("work"), &r.path("home"), &vars);
    let Cloned::Err { debug, message, security, input } = got else { panic!("cloned: {got:?}") };
    assert!(debug.starts_with("HostKey {") && debug.contains("problem: Unknown {"), "{debug}");
    assert!((security, input) == (true, false), "{debug}");
    let host = format!("[127.0.0.1]:{}", s.sshd.port);
    let fp = s.sshd.fingerprint();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    assert!(
        message.starts_with(&format!(
            "refusing to clone {}: the ssh host key of {host} (ssh-ed25519 {fp}) is not in known_hosts ({})",
            s.url,
            known.display()
        )),
        "{message}"
    );
    assert!(message.contains(&format!("(`ssh-keyscan -p {} 127.0.0.1`)", s.sshd.port)), "{message}");
    // The server never saw a login attempt.
    assert!(!s.sshd.log().contains("Accepted publickey"), "{}", s.sshd.log());
}

#[test]
fn a_changed_ssh_host_key_is_refused() {
    let r = Repo::new();
    let s = ssh_setup(&r, true);
    let impostor = s.dir.join("impostor");
    let impostor_line = ssh::keygen(&impostor);
    let known = s.dir.join("known_hosts");
    let key = impostor_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    fs::write(&known, format!("# first line\n[127.0.0.1]:{} {key}\n", s.sshd.port)).unwrap_or_else(|e| panic!("{e}"));
    let vars = [("SSH_AUTH_SOCK", s.agent.sock.as_path()), ("REPROVE_SSH_KNOWN_HOSTS", known.as_path())];
    let got = clone_in_child(&s.url, &r.path("work"), &r.path("home"), &vars);
    let Cloned::Err { debug, message, security, .. } = got else { panic!("cloned: {got:?}") };
    assert!(debug.contains("problem: Mismatch {") && security, "{debug}");
    let want = format!(
        "refusing to clone {}: the ssh host key of [127.0.0.1]:{} (ssh-ed25519 {}) does not match the key in {}:2 ({})",
        s.url,
        s.sshd.port,
        s.sshd.fingerprint(),
        known.display(),
        ssh::fingerprint(&impostor.with_extension("pub"))
    );
    assert!(message.starts_with(&want), "{message}\nwant: {want}");
    assert!(!s.sshd.log().contains("Accepted publickey"), "{}", s.sshd.log());
}

#[test]
fn an_agent_key_the_server_does_not_authorize_is_refused() {
    let r = Repo::new();
    let s = ssh_setup(&r, false);
    let known = s.dir.join("known_hosts");
    fs::write(&known, s.sshd.known_hosts_line()).unwrap_or_else(|e| panic!("{e}"));
    let vars = [("SSH_AUTH_SOCK", s.agent.sock.as_path()), ("REPROVE_SSH_KNOWN_HOSTS", known.as_path())];
    let got = clone_in_child(&s.url, &r.path("work"), &r.path("home"), &vars);
    let Cloned::Err { debug, message, security, input } = got else { panic!("cloned: {got:?}") };
    assert!(debug.starts_with("Auth {"), "{debug}");
    assert_eq!((security, input), (false, false), "{debug}");
    let want = format!(
        "cannot clone {}: authentication to [127.0.0.1]:{} as {} failed: the server accepted none of the ssh agent's keys",
        s.url,
        s.sshd.port,
        ssh::user()
    );
    assert_eq!(message, want);

    // No agent at all: said so.
    let vars = [("REPROVE_SSH_KNOWN_HOSTS", known.as_path())];
    let got = clone_in_child(&s.url, &r.path("work-b"), &r.path("home"), &vars);
    let Cloned::Err { debug, message, .. } = got else { panic!("cloned: {got:?}") };
    assert!(debug.starts_with("Auth {") && message.contains("SSH_AUTH_SOCK is not set"), "{message}");
}

#[test]
fn https_clones_trust_ssl_cert_file_and_refuse_an_unknown_ca() {
    let r = Repo::new();
    let pki = r.path("pki");
    fs::create_dir_all(&pki).unwrap_or_else(|e| panic!("{e}"));
    let (identity, ca) = server::make_identity(&pki);
    let srv = server::Server::start_tls(server::Behavior::GitHttpBackend(r.served.clone()), &identity);
    let url = format!("{}/repo.git", srv.url());
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    match clone_in_child(&url, &r.path("work-a"), &r.path("home"), &[("SSL_CERT_FILE", ca.as_path())]) {
        Cloned::Ok { v1, release, export } => {
            assert_eq!((v1, release), (r.first.clone(), r.second.clone()));
            assert_eq!(export, r.local_export());
        }
        other => panic!("{other:?}"),
    }
    // git's smart protocol, not files: libgit2 asked for the refs advertisement, then upload-pack.
    let paths = srv.paths();
    assert!(paths.iter().any(|p| p == "/repo.git/info/refs"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "/repo.git/git-upload-pack"), "{paths:?}");

    // The system store alone does not know the test CA.
    let got = clone_in_child(&url, &r.path("work-b"), &r.path("home"), &[]);
    let Cloned::Err { debug, message, security, input } = got else { panic!("cloned: {got:?}") };
    assert!(debug.starts_with("Certificate {"), "{debug}");
    assert_eq!((security, input), (true, false), "{debug}");
    let host = url.trim_start_matches("https://").split('/').next().unwrap_or_default().to_string();
    assert!(
        message.starts_with(&format!("refusing to clone {url}: the TLS certificate of {host} is not trusted: ")),
        "{message}"
    );
    assert!(message.contains("set SSL_CERT_FILE"), "{message}");
}

/// SIGTERM and SIGINT end `reprove verify` within a second even while it waits
/// on something that does not look at the cancel token: here a clone from a
/// server that accepts the connection and never answers (the clone's own
/// deadline is 15 minutes). A second signal is not needed.
#[test]
fn a_signal_ends_a_stalled_clone_within_a_second() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    // Accept and hold every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    for (signal, name) in [("TERM", "SIGTERM"), ("INT", "SIGINT")] {
        let zeros = "0".repeat(64);
        let mut child = Command::new(env!("CARGO_BIN_EXE_reprove"))
            .args(["verify", "--json", "--source", &format!("http://127.0.0.1:{port}/repo.git"), "--rev", "main"])
            .arg(format!("--reference-digest=sha256:{zeros}"))
            .arg(format!("--toolchain=127.0.0.1:1/go@sha256:{zeros}"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("reprove starts");
        // Let it reach the clone and block there.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(child.try_wait().expect("wait").is_none(), "{name}: reprove ended before the signal");
        run_ok(Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string())).expect("kill");
        let sent = std::time::Instant::now();
        let mut status = None;
        while sent.elapsed() < std::time::Duration::from_secs(10) {
            if let Some(s) = child.try_wait().expect("wait") {
                status = Some(s);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let took = sent.elapsed();
        if status.is_none() {
            let _ = child.kill();
        }
        let output = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(took < std::time::Duration::from_millis(1500), "{name}: reprove took {took:?} to stop: {stderr}");
        assert_eq!(output.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains("interrupted"), "{name}: {stderr}");
    }
}
