//! Failure classification on real failure output: git and the go command are
//! run against failing servers on 127.0.0.1 (HTTP 401/403/404/410/500, a
//! garbage answer, a closed port, a silent server, a real SSH server that
//! rejects every key), against names under `.invalid` (which never resolve),
//! a missing local repository, a process limit that makes git's fork fail,
//! a go.sum with a wrong hash or without the needed line, and go.mod files
//! that ask for Go 1.99. Each output must get its stable code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, goenv, harness, server};

use goenv::{go_cmd, proxy_root, small_project, tmp};
use modfetch::failure::{classify_output, Code, Tool};
use server::{Behavior, Serve, Server};
use support::{run, run_ok, Failures, Outcome};

fn git(args: &[&str], cwd: &Path, vars: &[(&str, String)]) -> Outcome {
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(cwd).env("GIT_TERMINAL_PROMPT", "0").env("HOME", cwd).env_remove("GIT_SSH_COMMAND");
    for k in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "GIT_CONFIG_GLOBAL"] {
        cmd.env_remove(k);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn check(failures: &mut Failures, case: &str, tool: Tool, out: &Outcome, want: Code) {
    failures.case();
    let text = format!("{}{}", out.stdout_str(), out.stderr_str());
    if out.success() {
        failures.fail(case, format!("the command succeeded; the test needs a failure\n{text}"));
        return;
    }
    let d = classify_output(tool, out.status, &text);
    if d.code != want {
        failures.fail(case, format!("want {want}, got {} (evidence {:?})\noutput:\n{text}", d.code, d.evidence));
    } else if d.remediation().is_empty() || d.evidence.is_empty() {
        failures.fail(case, "no remediation or evidence");
    }
}

/// The SSH server fixture, built from the shared module cache.
fn sshd(dir: &Path) -> PathBuf {
    harness::build_fixture_program("sshd", dir)
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn git_exit_128_split_by_cause() {
    let scratch = tmp();
    let dir = scratch.path();
    let mut failures = Failures::new("git exit status 128");
    let servers = [
        (401, Code::GitAuth),
        (403, Code::GitAuth),
        (404, Code::GitRepoNotFound),
        (410, Code::GitNetwork),
        (500, Code::GitNetwork),
    ];
    for (status, want) in servers {
        let s = Server::start(Behavior::Status(status));
        let out = git(&["clone", &format!("{}/x", s.url()), &format!("c{status}")], dir, &[]);
        check(&mut failures, &format!("git clone from an HTTP {status} server"), Tool::Git, &out, want);
    }
    let garbage = Server::start(Behavior::Garbage(b"\x16\x03garbage\r\n\r\n".to_vec()));
    let out = git(&["clone", &format!("{}/x", garbage.url()), "cg"], dir, &[]);
    check(&mut failures, "git clone from a garbage server", Tool::Git, &out, Code::GitNetwork);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = closed.local_addr().map(|a| a.port()).unwrap_or(1);
    drop(closed);
    let out = git(&["clone", &format!("http://127.0.0.1:{port}/x"), "cc"], dir, &[]);
    check(&mut failures, "git clone from a closed port", Tool::Git, &out, Code::GitNetwork);
    let out = git(&["clone", "http://no-such-host.invalid/x", "cd"], dir, &[]);
    check(&mut failures, "git clone from a name that does not resolve", Tool::Git, &out, Code::GitNetwork);
    let hang = Server::start(Behavior::Hang);
    let slow = [("GIT_HTTP_LOW_SPEED_LIMIT", "1000".to_string()), ("GIT_HTTP_LOW_SPEED_TIME", "1".to_string())];
    let out = git(&["clone", &format!("{}/x", hang.url()), "ch"], dir, &slow);
    check(&mut failures, "git clone from a server that never answers", Tool::Git, &out, Code::GitNetwork);
    let out = git(&["clone", &dir.join("does-not-exist").display().to_string(), "cn"], dir, &[]);
    check(&mut failures, "git clone of a missing local repository", Tool::Git, &out, Code::GitRepoNotFound);

    // A process limit git cannot fork under (as root, the limit only binds
    // another user, who needs a world-readable directory: one under /tmp).
    let world = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = world.path();
    let repo = dir.join("repo.git");
    run_ok(Command::new("git").args(["init", "-q", "--bare"]).arg(&repo)).unwrap_or_else(|e| panic!("{e}"));
    let target = dir.join("forkless");
    fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nproc=1");
    let uid = run_ok(Command::new("id").arg("-u")).map(|o| o.stdout_str().trim().to_string()).unwrap_or_default();
    if uid == "0" {
        run_ok(Command::new("chmod").args(["-R", "a+rwX"]).arg(dir)).unwrap_or_else(|e| panic!("{e}"));
        cmd.args(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    cmd.args(["env", &format!("HOME={}", target.display()), "git", "clone"]).arg(&repo).arg(target.join("c"));
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    check(&mut failures, "git clone with no processes left (RLIMIT_NPROC)", Tool::Git, &out, Code::GitResources);
    let dir = scratch.path();

    // A real SSH server: unknown host key, changed host key, rejected keys.
    let bin = sshd(dir);
    let (port_file, known) = (dir.join("sshd.port"), dir.join("known_hosts"));
    let _server = Child(Command::new(&bin).arg(&port_file).arg(&known).spawn().unwrap_or_else(|e| panic!("{e}")));
    for _ in 0..100 {
        if fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let port = fs::read_to_string(&port_file).unwrap_or_else(|e| panic!("sshd did not start: {e}"));
    let empty = dir.join("empty_known_hosts");
    fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
    // Another key for the same host and port: what ssh sees when the server's key changed.
    let other = dir.join("other_key");
    run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other))
        .unwrap_or_else(|e| panic!("{e}"));
    let other_pub = fs::read_to_string(other.with_extension("pub")).unwrap_or_default();
    let changed = dir.join("changed_known_hosts");
    fs::write(&changed, format!("[127.0.0.1]:{port} {other_pub}")).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("ssh://git@127.0.0.1:{port}/x.git");
    for (label, kh, want) in [
        ("an unknown host key", &empty, Code::GitHostKey),
        ("a changed host key", &changed, Code::GitHostKey),
        ("no accepted key", &known, Code::GitAuth),
    ] {
        let ssh = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o UserKnownHostsFile={} -p {port}",
            kh.display()
        );
        let out = git(&["clone", &url, &format!("ssh-{}", label.len())], dir, &[("GIT_SSH_COMMAND", ssh)]);
        check(&mut failures, &format!("git clone over SSH with {label}"), Tool::Git, &out, want);
    }
    harness::make_writable(dir);
    failures.assert_none();
}

#[test]
fn go_command_failures() {
    let scratch = tmp();
    let dir = scratch.path();
    let project = small_project(dir);
    let mut failures = Failures::new("go command failures");
    let mut n = 0;
    let mut go = |vars: &[(&str, String)], args: &[&str]| {
        n += 1;
        go_cmd(&project, &dir.join(format!("cache{n}")), vars, args)
    };
    for (status, want) in
        [(401, Code::Auth), (403, Code::Auth), (404, Code::NotFound), (410, Code::NotFound), (500, Code::HttpStatus)]
    {
        let s = Server::start(Behavior::Status(status));
        let out = go(&[("GOPROXY", s.url())], &["mod", "download"]);
        check(&mut failures, &format!("GOPROXY answering {status}"), Tool::Go, &out, want);
    }
    let garbage = Server::start(Behavior::Garbage(b"garbage\r\n\r\n".to_vec()));
    let out = go(&[("GOPROXY", garbage.url())], &["mod", "download"]);
    check(&mut failures, "GOPROXY answering garbage", Tool::Go, &out, Code::BadResponse);
    let http = Server::start(Behavior::Status(404));
    let out = go(&[("GOPROXY", http.url().replace("http://", "https://"))], &["mod", "download"]);
    check(&mut failures, "https:// to a plain HTTP server", Tool::Go, &out, Code::Tls);
    let hang = Server::start(Behavior::Hang);
    let out = go(&[("GOPROXY", hang.url().replace("http://", "https://"))], &["mod", "download"]);
    check(
        &mut failures,
        "https:// to a server that never answers (TLS handshake timeout)",
        Tool::Go,
        &out,
        Code::Timeout,
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = closed.local_addr().map(|a| a.port()).unwrap_or(1);
    drop(closed);
    let out = go(&[("GOPROXY", format!("http://127.0.0.1:{port}"))], &["mod", "download"]);
    check(&mut failures, "GOPROXY on a closed port", Tool::Go, &out, Code::Connect);
    let out = go(&[("GOPROXY", "https://goproxy.invalid".into())], &["mod", "download"]);
    check(&mut failures, "GOPROXY host that does not resolve", Tool::Go, &out, Code::Dns);
    let out = go(&[("GOPROXY", "off".into())], &["mod", "download"]);
    check(&mut failures, "GOPROXY=off with an empty cache", Tool::Go, &out, Code::LookupDisabled);

    // go.sum problems, from a good proxy.
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let sum = fs::read_to_string(project.join("go.sum")).unwrap_or_default();
    let mut lines: Vec<String> = sum.lines().map(String::from).collect();
    if let Some(l) = lines.first_mut() {
        let i = l.find("h1:").map_or(0, |i| i + 3);
        l.replace_range(i..i + 4, "AAAA");
    }
    let wrong = lines.join("\n") + "\n";
    fs::write(project.join("go.sum"), &wrong).unwrap_or_else(|e| panic!("{e}"));
    let out = go(&[("GOPROXY", good.url())], &["mod", "download"]);
    check(&mut failures, "a go.sum line with another hash", Tool::Go, &out, Code::ChecksumMismatch);
    let only_mod: String = sum.lines().filter(|l| l.contains("/go.mod")).map(|l| format!("{l}\n")).collect();
    fs::write(project.join("go.sum"), only_mod).unwrap_or_else(|e| panic!("{e}"));
    let out = go(&[("GOPROXY", good.url()), ("GOFLAGS", "-mod=readonly".into())], &["build", "./..."]);
    check(&mut failures, "a go.sum without the module's line", Tool::Go, &out, Code::MissingGoSum);
    fs::write(project.join("go.sum"), &sum).unwrap_or_else(|e| panic!("{e}"));

    // Toolchains: a go line the local go cannot satisfy with GOTOOLCHAIN=local,
    // and a toolchain line it cannot download.
    let gomod = fs::read_to_string(project.join("go.mod")).unwrap_or_default();
    fs::write(project.join("go.mod"), gomod.replace("go 1.22\n", "go 1.99.0\n\ntoolchain go1.99.0\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = go(&[("GOPROXY", good.url()), ("GOTOOLCHAIN", "local".into())], &["build", "./..."]);
    check(
        &mut failures,
        "go 1.99.0 and toolchain go1.99.0 with GOTOOLCHAIN=local",
        Tool::Go,
        &out,
        Code::ToolchainMismatch,
    );
    fs::write(project.join("go.mod"), gomod.replace("go 1.22\n", "go 1.22\n\ntoolchain go1.99.0\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = go(&[("GOPROXY", "off".into()), ("GOTOOLCHAIN", "go1.99.0".into())], &["build", "./..."]);
    check(&mut failures, "toolchain go1.99.0 that cannot be downloaded", Tool::Go, &out, Code::ToolchainMismatch);
    fs::write(project.join("go.mod"), &gomod).unwrap_or_else(|e| panic!("{e}"));

    // go fetching `direct`: through git (whose every protocol fails against a
    // server that wants credentials), and through go-get discovery (whose
    // host does not resolve).
    let auth = Server::start(Behavior::Status(401));
    let gitconfig = dir.join("gitconfig");
    fs::write(&gitconfig, format!("[url \"{}/\"]\n\tinsteadOf = https://private.invalid/\n", auth.url()))
        .unwrap_or_else(|e| panic!("{e}"));
    let vars = [
        ("GOPROXY", "direct".to_string()),
        ("GOPRIVATE", "private.invalid".to_string()),
        ("GIT_CONFIG_GLOBAL", gitconfig.display().to_string()),
        ("GIT_TERMINAL_PROMPT", "0".to_string()),
    ];
    let out = go(&vars, &["mod", "download", "private.invalid/lib.git@v1.0.0"]);
    check(&mut failures, "go direct through git, no protocol works", Tool::Go, &out, Code::GitNetwork);
    let out = go(&vars, &["mod", "download", "private.invalid/lib@v1.0.0"]);
    check(&mut failures, "go direct through go-get discovery, host not resolvable", Tool::Go, &out, Code::Dns);
    harness::make_writable(dir);
    failures.assert_none();
}
