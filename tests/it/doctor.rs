//! `reprove doctor` against real failing servers on 127.0.0.1 and real
//! environments: unreachable proxies told apart (DNS via `.invalid`, a closed
//! port, a TLS-garbage server, an HTTP 500 server), private modules the proxy
//! does not have or whose host does not resolve, patterns that match nothing
//! or do not parse, a world-readable .netrc, inconsistent proxy variables,
//! a process limit (RLIMIT_NPROC) too low for go, go.mod go/toolchain lines
//! the local go does not satisfy, and the environment display itself
//! (values and where they came from), with and without a go command.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{self, goenv, harness, schema, server};

use goenv::{base_env, proxy_root, small_project, tmp};
use serde_json::Value;
use server::{Behavior, Serve, Server};
use support::{run, Outcome};

fn doctor(dir: &Path, vars: &[(&str, String)], extra: &[&str]) -> (Outcome, Value) {
    let mut cmd = Command::new(support::reprove_bin());
    base_env(&mut cmd, dir, &dir.join("modcache"), vars);
    cmd.args(["doctor", "--json", "--timeout", "3"]).args(extra);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("reprove doctor --json: {e}\n{}\n{}", out.stdout_str(), out.stderr_str()));
    schema::assert_valid("doctor.schema.json", &doc);
    (out, doc)
}

fn checks<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    doc["checks"].as_array().into_iter().flatten().filter(|c| c["id"] == id).collect()
}

fn find<'a>(doc: &'a Value, id: &str, subject_has: &str) -> &'a Value {
    checks(doc, id)
        .into_iter()
        .find(|c| c["subject"].as_str().is_some_and(|s| s.contains(subject_has)))
        .unwrap_or_else(|| panic!("no {id} check about {subject_has:?} in {:#}", doc["checks"]))
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    l.local_addr().map(|a| a.port()).unwrap_or(1)
}

#[test]
fn unreachable_proxies_are_told_apart() {
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let s500 = Server::start(Behavior::Status(500));
    let garbage = Server::start(Behavior::Garbage(b"\x15\x03\x03\x00\x02garbage".to_vec()));
    let closed = closed_port();
    let scratch = tmp();
    let project = small_project(scratch.path());
    let tls_garbage = garbage.url().replace("http://", "https://");
    let goproxy =
        format!("https://goproxy.invalid|{tls_garbage}|http://127.0.0.1:{closed}|{}|{}", s500.url(), good.url());
    let (out, doc) = doctor(&project, &[("GOPROXY", goproxy)], &[]);
    assert_eq!(out.status, Some(1), "errors found: exit 1\n{}", out.stderr_str());
    let want = [
        ("goproxy.invalid", "error", "dns"),
        (tls_garbage.as_str(), "error", "tls"),
        (&format!("127.0.0.1:{closed}"), "error", "connect"),
        (&s500.url(), "error", "http-status"),
    ];
    for (subject, severity, code) in want {
        let c = find(&doc, "proxy-reachable", subject);
        assert_eq!((c["severity"].as_str(), c["code"].as_str()), (Some(severity), Some(code)), "{c:#}");
        assert!(c["remediation"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let ok = find(&doc, "proxy-reachable", &good.url());
    assert_eq!(ok["severity"], "info", "{ok:#}");
    // --offline probes nothing.
    let before = (good.requests().len(), s500.requests().len());
    let (_, doc) = doctor(&project, &[("GOPROXY", format!("{},{}", s500.url(), good.url()))], &["--offline"]);
    assert!(checks(&doc, "proxy-reachable").is_empty());
    assert_eq!(before, (good.requests().len(), s500.requests().len()));
    harness::make_writable(scratch.path());
}

#[test]
fn private_modules_and_patterns() {
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let scratch = tmp();
    let project = small_project(scratch.path());
    let gomod = fs::read_to_string(project.join("go.mod")).unwrap_or_default();
    fs::write(
        project.join("go.mod"),
        gomod.replace(
            "require github.com/spf13/pflag v1.0.5\n",
            "require (\n\tgithub.com/spf13/pflag v1.0.5\n\tgit.corp.invalid/team/lib v1.2.0\n\t127.0.0.1/private/mod v0.1.0\n)\n",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, doc) = doctor(&project, &[("GOPROXY", good.url()), ("GOPRIVATE", "nomatch.example,bad[".into())], &[]);
    let dns = find(&doc, "private-module", "git.corp.invalid/team/lib");
    assert_eq!(dns["code"], "dns", "{dns:#}");
    let missing = find(&doc, "private-module", "127.0.0.1/private/mod");
    assert_eq!(missing["code"], "not-found", "{missing:#}");
    assert!(
        !checks(&doc, "private-module").iter().any(|c| c["subject"].as_str().is_some_and(|s| s.contains("pflag"))),
        "the proxy has pflag: {:#}",
        doc["checks"]
    );
    let unused = find(&doc, "pattern-unused", "GOPRIVATE");
    assert!(unused["message"].as_str().is_some_and(|m| m.contains("nomatch.example")), "{unused:#}");
    let bad = find(&doc, "pattern-malformed", "GOPRIVATE");
    assert_eq!(bad["severity"], "error");
    // GONOPROXY and GONOSUMDB default to GOPRIVATE: shown as derived, not reported twice.
    let env: Vec<&Value> = doc["environment"].as_array().into_iter().flatten().collect();
    let var = |n: &str| env.iter().find(|v| v["name"] == n).copied().unwrap_or(&Value::Null);
    assert_eq!(var("GOPRIVATE")["origin"], "environment");
    assert_eq!(var("GONOPROXY")["origin"], "derived", "{:#}", doc["environment"]);
    assert!(checks(&doc, "pattern-malformed").len() == 1, "{:#}", doc["checks"]);

    // Covered by GOPRIVATE: no warnings for those modules, and nothing asked of the proxy about them.
    let before = good.requests().len();
    let (_, doc) =
        doctor(&project, &[("GOPROXY", good.url()), ("GOPRIVATE", "*.corp.invalid,127.0.0.1/private".into())], &[]);
    assert!(checks(&doc, "private-module").is_empty(), "{:#}", doc["checks"]);
    assert!(checks(&doc, "pattern-unused").is_empty(), "{:#}", doc["checks"]);
    assert!(!good.paths()[before..].iter().any(|p| p.contains("private")), "{:?}", good.paths());
    harness::make_writable(scratch.path());
}

#[test]
fn netrc_proxy_variables_and_toolchain() {
    let scratch = tmp();
    let project = small_project(scratch.path());
    let netrc = scratch.path().join("netrc");
    fs::write(&netrc, "machine 127.0.0.1 login u password p\n").unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&netrc, fs::Permissions::from_mode(0o644)).unwrap_or_else(|e| panic!("{e}"));
    let mut vars = vec![
        ("GOPROXY", "https://goproxy.invalid,direct".to_string()),
        ("NETRC", netrc.display().to_string()),
        ("HTTP_PROXY", "http://127.0.0.1:3128".to_string()),
        ("http_proxy", "http://127.0.0.1:9999".to_string()),
        ("GOPRIVATE", "*.corp.invalid".to_string()),
    ];
    let (_, doc) = doctor(&project, &vars, &["--offline"]);
    let n = find(&doc, "netrc-permissions", "netrc");
    assert_eq!(
        (n["severity"].as_str(), n["message"].as_str().map(|m| m.contains("644"))),
        (Some("warning"), Some(true))
    );
    let msgs: Vec<String> =
        checks(&doc, "proxy-variables").iter().filter_map(|c| c["message"].as_str().map(String::from)).collect();
    assert!(msgs.iter().any(|m| m.contains("HTTPS_PROXY is not")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("http_proxy differ")), "{msgs:#?}");
    // The proxy URL shown has no password.
    vars.push(("HTTPS_PROXY", "http://user:secret@127.0.0.1:3128".to_string()));
    vars.retain(|(k, _)| *k != "http_proxy");
    let (out, doc) = doctor(&project, &vars, &["--offline"]);
    assert!(!out.stdout_str().contains("secret"), "a proxy password leaked:\n{}", out.stdout_str());
    let msgs: Vec<String> =
        checks(&doc, "proxy-variables").iter().filter_map(|c| c["message"].as_str().map(String::from)).collect();
    assert!(msgs.iter().any(|m| m.contains("any.corp.invalid") && m.contains("NO_PROXY")), "{msgs:#?}");
    vars.push(("NO_PROXY", ".corp.invalid".to_string()));
    fs::set_permissions(&netrc, fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
    let (_, doc) = doctor(&project, &vars, &["--offline"]);
    assert!(checks(&doc, "proxy-variables").is_empty(), "{:#}", doc["checks"]);
    assert_eq!(find(&doc, "netrc-permissions", "netrc")["severity"], "info");

    // go.mod lines the local go does not satisfy.
    let gomod = fs::read_to_string(project.join("go.mod")).unwrap_or_default();
    fs::write(project.join("go.mod"), gomod.replace("go 1.22\n", "go 1.99.0\n")).unwrap_or_else(|e| panic!("{e}"));
    let (out, doc) = doctor(&project, &[("GOPROXY", "off".into()), ("GOTOOLCHAIN", "local".into())], &["--offline"]);
    let t = find(&doc, "toolchain", "go line");
    assert_eq!((t["severity"].as_str(), t["code"].as_str()), (Some("error"), Some("toolchain-mismatch")), "{t:#}");
    assert_eq!(out.status, Some(1));
    fs::write(project.join("go.mod"), gomod.replace("go 1.22\n", "go 1.22\n\ntoolchain go1.99.0\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, doc) = doctor(&project, &[("GOPROXY", "off".into()), ("GOTOOLCHAIN", "local".into())], &["--offline"]);
    let t = find(&doc, "toolchain", "toolchain line");
    assert_eq!((t["severity"].as_str(), t["code"].as_str()), (Some("warning"), Some("toolchain-mismatch")), "{t:#}");
    harness::make_writable(scratch.path());
}

#[test]
fn process_limit_and_no_go_command() {
    // A low RLIMIT_NPROC binds only another user when running as root.
    let world = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = world.path();
    let bin = dir.join("reprove");
    fs::copy(support::reprove_bin(), &bin).unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap_or_else(|e| panic!("{e}"));
    let id = run(Command::new("id").arg("-u")).map(|o| o.stdout_str().trim().to_string()).unwrap_or_default();
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nproc=8");
    if id == "0" {
        cmd.args(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    cmd.arg("env")
        .arg(format!("HOME={}", dir.display()))
        .arg("GOENV=off")
        .arg(&bin)
        .args(["doctor", "--json", "--offline", "-C"])
        .arg(dir);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr_str()));
    schema::assert_valid("doctor.schema.json", &doc);
    let p = find(&doc, "process-limit", "RLIMIT_NPROC");
    assert_eq!((p["severity"].as_str(), p["code"].as_str()), (Some("warning"), Some("git-resources")), "{p:#}");
    // go may or may not manage to start its threads under that limit; when it does not, the reason is named.
    for c in checks(&doc, "go-command").iter().filter(|c| c["severity"] == "error") {
        assert_eq!(c["code"], "git-resources", "{c:#}");
    }

    // Without a go command: the environment alone, GOPROXY required.
    let scratch = tmp();
    let project = small_project(scratch.path());
    let mut cmd = Command::new(support::reprove_bin());
    base_env(&mut cmd, &project, &scratch.path().join("mc"), &[]);
    cmd.env("PATH", dir.join("no-bin")).args(["doctor", "--json", "--offline"]);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr_str()));
    assert_eq!(doc["goEnvSource"], "environment");
    assert_eq!(find(&doc, "go-command", "go")["severity"], "warning");
    assert_eq!(find(&doc, "goproxy", "GOPROXY")["severity"], "error", "{:#}", doc["checks"]);
    assert_eq!(out.status, Some(1));
    harness::make_writable(scratch.path());
}
