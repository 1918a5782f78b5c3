//! `reprove mod download` against the real go command, on real modules
//! served back on 127.0.0.1 (the fixture projects' modules, downloaded once
//! per machine by the harness): the cache it writes must be byte- and
//! mode-identical to the one `go mod download` writes from the same proxy,
//! `go build` with GOPROXY=off must succeed from it, and `go mod verify` and
//! `reprove mod verify` must pass on it. Then GOPROXY list semantics, proxy
//! failures (404, 410, 500, hanging, truncated), tampered zips and go.mod
//! files, missing go.sum lines, `file://`, private modules that must go
//! `direct` (a real git repository behind `url.insteadOf`), HTTP_PROXY and
//! NO_PROXY, credentials (URL userinfo, .netrc over HTTPS), and a concurrent
//! run with `go` on the same cache.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::support::{self, goenv, harness, hex, schema, server};

use goenv::{base_env, go_cmd, proxy_root, small_project, tmp};
use serde_json::Value;
use server::{Behavior, Serve, Server};
use support::{run, run_ok, Outcome};

fn reprove_download(dir: &Path, modcache: &Path, vars: &[(&str, String)], extra: &[&str]) -> (Outcome, Value) {
    let mut cmd = Command::new(support::reprove_bin());
    base_env(&mut cmd, dir, modcache, vars);
    cmd.args(["mod", "download", "--json"]).args(extra);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("reprove mod download --json: {e}\nstdout: {}\nstderr: {}", out.stdout_str(), out.stderr_str())
    });
    schema::assert_valid("mod-download.schema.json", &doc);
    (out, doc)
}

fn assert_ok(what: &str, out: &Outcome) {
    assert!(
        out.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout_str(),
        out.stderr_str()
    );
}

/// Every file and directory under `root`: relative path, mode, and content hash for files.
fn tree(root: &Path) -> BTreeSet<(String, u32, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<(String, u32, String)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).map(|r| r.display().to_string()).unwrap_or_default();
            let Ok(meta) = fs::symlink_metadata(&p) else { continue };
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert((rel, mode, String::new()));
                walk(base, &p, out);
            } else {
                let data = fs::read(&p).unwrap_or_default();
                let h = {
                    use sha2::Digest as _;
                    hex(&sha2::Sha256::digest(&data))
                };
                out.insert((rel, mode, h));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn diff_trees(a: &BTreeSet<(String, u32, String)>, b: &BTreeSet<(String, u32, String)>) -> String {
    let only_a: Vec<_> = a.difference(b).take(10).collect();
    let only_b: Vec<_> = b.difference(a).take(10).collect();
    format!("only in reprove's cache: {only_a:#?}\nonly in go's cache: {only_b:#?}")
}

/// Leftovers a crash-safe writer must never leave.
fn leftovers(root: &Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| p.ends_with(".tmp") || p.ends_with(".partial") || p.contains(".tmp-") || p.contains(".reprove-"))
        .collect()
}

/// Cache path prefixes of the modules whose zips were skipped (their extracted
/// directory, and their `.info`, `.zip`, `.ziphash`, `.lock` files).
fn skipped_prefixes(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in doc["modules"].as_array().into_iter().flatten().filter(|m| m.get("skipped").is_some()) {
        let (p, v) = (m["path"].as_str().unwrap_or_default(), m["version"].as_str().unwrap_or_default());
        let ep = gomod::module::escape_path(p).unwrap_or_else(|e| panic!("{e}"));
        let ev = gomod::module::escape_version(v).unwrap_or_else(|e| panic!("{e}"));
        out.push(format!("{ep}@{ev}"));
        for suffix in ["info", "zip", "ziphash", "lock"] {
            out.push(format!("cache/download/{ep}/@v/{ev}.{suffix}"));
            out.push(format!("{ep}/@v/{ev}.{suffix}"));
        }
    }
    out
}

fn build_and_verify(project: &Path, modcache: &Path) {
    let vars = [("GOPROXY", "off".to_string()), ("GOFLAGS", "-mod=readonly".to_string())];
    assert_ok(
        "go build (GOPROXY=off, -mod=readonly)",
        &go_cmd(project, modcache, &vars, &["build", "-o", "/dev/null", "./..."]),
    );
    assert_ok("go mod verify", &go_cmd(project, modcache, &vars, &["mod", "verify"]));
    let ours = harness::reprove(project, modcache, &["mod", "verify"]);
    assert_ok("reprove mod verify", &ours);
}

#[test]
fn same_cache_as_go_from_the_same_proxy() {
    let srv = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    for name in harness::PROJECTS {
        let scratch = tmp();
        let project = scratch.path().join(name);
        harness::copy_tree(&harness::fixtures_dir().join(name), &project);
        let (ours_cache, go_cache) = (scratch.path().join("ours"), scratch.path().join("go"));
        let vars = [("GOPROXY", srv.url())];

        let before = srv.requests().len();
        let (out, doc) = reprove_download(&project, &ours_cache, &vars, &[]);
        assert_ok(&format!("{name}: reprove mod download"), &out);
        assert_eq!(doc["ok"], true, "{name}: {doc:#}");
        let ours_paths: BTreeSet<String> = srv.paths()[before..].iter().cloned().collect();

        let before = srv.requests().len();
        assert_ok(&format!("{name}: go mod download"), &go_cmd(&project, &go_cache, &vars, &["mod", "download"]));
        let go_paths: BTreeSet<String> = srv.paths()[before..].iter().cloned().collect();

        // Zips go.sum cannot vouch for are skipped (go takes them on trust
        // with GOSUMDB=off): everything else is identical.
        let skipped = skipped_prefixes(&doc);
        assert!(name != &"project" || skipped.is_empty(), "{name}: {skipped:?}");
        let keep = |p: &str| !skipped.iter().any(|s| p.starts_with(s.as_str()) || p.starts_with(&format!("/{s}")));
        let t_ours = tree(&ours_cache);
        let ours_dirs: BTreeSet<&str> = t_ours.iter().map(|(p, _, _)| p.as_str()).collect();
        // The parent directories go created only for a skipped module's extraction.
        let skipped_parent = |p: &str| {
            !ours_dirs.contains(p) && skipped.iter().any(|s| !s.contains("/@v/") && s.starts_with(&format!("{p}/")))
        };
        let t_go: BTreeSet<_> = tree(&go_cache).into_iter().filter(|(p, _, _)| keep(p) && !skipped_parent(p)).collect();
        assert!(t_ours == t_go, "{name}: the caches differ\n{}", diff_trees(&t_ours, &t_go));
        let go_paths: BTreeSet<String> =
            go_paths.into_iter().map(|p| p.replace("%21", "!")).filter(|p| keep(p)).collect();
        let ours_paths: BTreeSet<String> = ours_paths.into_iter().map(|p| p.replace("%21", "!")).collect();
        assert_eq!(ours_paths, go_paths, "{name}: reprove and go requested different files");
        assert!(leftovers(&ours_cache).is_empty(), "{name}: {:?}", leftovers(&ours_cache));
        build_and_verify(&project, &ours_cache);

        // A second run finds everything in the cache and asks for nothing.
        let before = srv.requests().len();
        let (out, doc) = reprove_download(&project, &ours_cache, &vars, &[]);
        assert_ok(&format!("{name}: second reprove mod download"), &out);
        assert_eq!(srv.requests().len(), before, "{name}: a warm cache must not cause requests");
        assert_eq!(doc["summary"]["downloaded"], 0, "{name}: {:#}", doc["summary"]);
        harness::make_writable(scratch.path());
    }
}

#[test]
fn file_proxy() {
    let scratch = tmp();
    let project = scratch.path().join("project");
    harness::copy_tree(&harness::fixtures_dir().join("project"), &project);
    let cache = scratch.path().join("cache");
    let url = format!("file://{}", proxy_root().display());
    let (out, doc) = reprove_download(&project, &cache, &[("GOPROXY", url)], &[]);
    assert_ok("reprove mod download (file://)", &out);
    assert_eq!(doc["modules"].as_array().map(Vec::len), Some(152), "{:#}", doc["summary"]);
    build_and_verify(&project, &cache);
    harness::make_writable(scratch.path());
}

const PFLAG_ZIP: &str = "/github.com/spf13/pflag/@v/v1.0.5.zip";
const PFLAG_MOD: &str = "/github.com/spf13/pflag/@v/v1.0.5.mod";

fn failure_codes(doc: &Value) -> BTreeSet<String> {
    doc["failures"].as_array().into_iter().flatten().filter_map(|f| f["code"].as_str().map(String::from)).collect()
}

#[test]
fn goproxy_list_semantics_match_go() {
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let s404 = Server::start(Behavior::Status(404));
    let s410 = Server::start(Behavior::Status(410));
    let s500 = Server::start(Behavior::Status(500));
    let servers = [("G", &good), ("N", &s404), ("X", &s410), ("F", &s500)];
    // GOPROXY, whether it succeeds, and the failure code when it does not.
    let cases: &[(&str, bool, &str)] = &[
        ("N,G", true, ""),
        ("X,G", true, ""),
        ("F,G", false, "http-status"),
        ("F|G", true, ""),
        ("N|G", true, ""),
        ("N", false, "not-found"),
        ("X,N", false, "not-found"),
        ("F|N", false, "http-status"),
        ("N,F", false, "http-status"),
        ("off", false, "lookup-disabled"),
    ];
    let mut failures = support::Failures::new("GOPROXY list semantics");
    for (spec, want_ok, want_code) in cases {
        failures.case();
        let goproxy: String = spec
            .chars()
            .map(|c| servers.iter().find(|(n, _)| n.starts_with(c)).map_or(c.to_string(), |(_, s)| s.url()))
            .collect();
        let goproxy = if *spec == "off" { "off".to_string() } else { goproxy };
        let scratch = tmp();
        let project = small_project(scratch.path());
        let vars = [("GOPROXY", goproxy.clone())];
        let counts = |_: ()| servers.iter().map(|(_, s)| s.requests().len()).collect::<Vec<_>>();

        let c0 = counts(());
        let (out, doc) = reprove_download(&project, &scratch.path().join("ours"), &vars, &["--retries", "0"]);
        let c1 = counts(());
        let theirs = go_cmd(&project, &scratch.path().join("go"), &vars, &["mod", "download"]);
        let c2 = counts(());
        let hit = |a: &[usize], b: &[usize]| -> Vec<bool> { a.iter().zip(b).map(|(x, y)| y > x).collect() };
        let mut report = String::new();
        if out.success() != *want_ok || theirs.success() != *want_ok {
            report += &format!(
                "want ok={want_ok}: reprove exit {:?}, go exit {:?}\nreprove: {}\ngo: {}\n",
                out.status,
                theirs.status,
                out.stderr_str(),
                theirs.stderr_str()
            );
        }
        if hit(&c0, &c1) != hit(&c1, &c2) {
            report += &format!("servers contacted: reprove {:?}, go {:?} (G, N, X, F)\n", hit(&c0, &c1), hit(&c1, &c2));
        }
        if !want_ok && !failure_codes(&doc).contains(*want_code) {
            report += &format!("want code {want_code}, got {:?}: {:#}\n", failure_codes(&doc), doc["failures"]);
        }
        if !want_ok && out.status != Some(3) {
            report += &format!("want exit 3 for a fetch failure, got {:?}\n", out.status);
        }
        if !report.is_empty() {
            failures.fail(format!("GOPROXY={spec}"), report);
        }
        harness::make_writable(scratch.path());
    }
    failures.assert_none();
}

#[test]
fn timeouts_fall_through_only_after_a_pipe() {
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let hang = Server::start(Behavior::Hang);
    let scratch = tmp();
    let project = small_project(scratch.path());
    let args = ["--timeout", "1", "--retries", "1"];
    let (out, doc) = reprove_download(
        &project,
        &scratch.path().join("a"),
        &[("GOPROXY", format!("{}|{}", hang.url(), good.url()))],
        &args,
    );
    assert_ok("GOPROXY=hang|good", &out);
    assert!(doc["summary"]["retries"].as_u64().unwrap_or(0) >= 1, "a timeout is retried: {:#}", doc["summary"]);
    let before = good.requests().len();
    let (out, doc) = reprove_download(
        &project,
        &scratch.path().join("b"),
        &[("GOPROXY", format!("{},{}", hang.url(), good.url()))],
        &args,
    );
    assert_eq!(out.status, Some(3), "GOPROXY=hang,good must fail: {}", out.stdout_str());
    assert!(failure_codes(&doc).contains("timeout"), "{:#}", doc["failures"]);
    assert_eq!(good.requests().len(), before, "after `,` a timeout must not fall through");
    harness::make_writable(scratch.path());
}

fn tampered_zip() -> Vec<u8> {
    let p = "github.com/spf13/pflag@v1.0.5/";
    harness::make_zip(&[
        harness::ZipEntry::new(&format!("{p}go.mod"), b"module github.com/spf13/pflag\n"),
        harness::ZipEntry::new(&format!("{p}flag.go"), b"package pflag\n\nfunc init() { panic(\"owned\") }\n"),
    ])
}

#[test]
fn tampered_zip_is_a_security_error_and_never_enters_the_cache() {
    let bad = tampered_zip();
    let mut serve = Serve::dir(&proxy_root());
    serve.overrides.insert(PFLAG_ZIP.into(), bad.clone());
    let srv = Server::start(Behavior::Serve(serve));
    let scratch = tmp();
    let project = small_project(scratch.path());
    let cache = scratch.path().join("cache");
    let (out, doc) = reprove_download(&project, &cache, &[("GOPROXY", srv.url())], &[]);
    assert_eq!(out.status, Some(1), "a checksum mismatch is a negative verdict (exit 1): {}", out.stderr_str());
    let bad_path = scratch.path().join("bad.zip");
    fs::write(&bad_path, &bad).unwrap_or_else(|e| panic!("{e}"));
    let actual = gomod::hash_zip(&bad_path, None).unwrap_or_else(|e| panic!("{e}")).to_string();
    let expected =
        fs::read_to_string(proxy_root().join("github.com/spf13/pflag/@v/v1.0.5.ziphash")).unwrap_or_default();
    let sec = &doc["securityErrors"][0];
    assert_eq!(sec["path"], "github.com/spf13/pflag", "{doc:#}");
    assert_eq!(sec["file"], "zip");
    assert_eq!(sec["actual"], actual.as_str());
    assert_eq!(sec["expected"], expected.trim());
    assert_eq!(sec["actualFrom"], format!("{}{PFLAG_ZIP}", srv.url()).as_str());
    assert!(sec["expectedFrom"].as_str().is_some_and(|s| s.ends_with("go.sum:1")), "{sec:#}");
    let stderr = out.stderr_str();
    for want in ["SECURITY ERROR", "github.com/spf13/pflag@v1.0.5", &actual, expected.trim()] {
        assert!(stderr.contains(want), "stderr lacks {want:?}:\n{stderr}");
    }
    let v = cache.join("cache/download/github.com/spf13/pflag/@v");
    for f in ["v1.0.5.zip", "v1.0.5.ziphash"] {
        assert!(!v.join(f).exists(), "{f} entered the cache");
    }
    assert!(!cache.join("github.com/spf13/pflag@v1.0.5").exists(), "the tampered module was extracted");
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    // go refuses the same bytes.
    let theirs = go_cmd(&project, &scratch.path().join("go"), &[("GOPROXY", srv.url())], &["mod", "download"]);
    assert!(!theirs.success() && theirs.stderr_str().contains("checksum mismatch"), "{}", theirs.stderr_str());
    harness::make_writable(scratch.path());
}

#[test]
fn a_lost_ziphash_is_recomputed_not_downloaded() {
    let srv = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let scratch = tmp();
    let project = small_project(scratch.path());
    let cache = scratch.path().join("cache");
    let vars = [("GOPROXY", srv.url())];
    let (out, _) = reprove_download(&project, &cache, &vars, &[]);
    assert_ok("first download", &out);
    let v = cache.join("cache/download/github.com/spf13/pflag/@v");
    let want = fs::read(v.join("v1.0.5.ziphash")).unwrap_or_default();
    fs::remove_file(v.join("v1.0.5.ziphash")).unwrap_or_else(|e| panic!("{e}"));
    let before = srv.requests().len();
    let (out, doc) = reprove_download(&project, &cache, &vars, &[]);
    assert_ok("second download", &out);
    assert_eq!(srv.requests().len(), before, "the zip was downloaded again");
    assert_eq!(fs::read(v.join("v1.0.5.ziphash")).unwrap_or_default(), want);
    assert_eq!(doc["summary"]["cached"], 3, "{:#}", doc["summary"]);
    harness::make_writable(scratch.path());
}

#[test]
fn tampered_go_mod_is_a_security_error() {
    let mut serve = Serve::dir(&proxy_root());
    serve
        .overrides
        .insert(PFLAG_MOD.into(), b"module github.com/spf13/pflag\n\nrequire evil.example/x v1.0.0\n".to_vec());
    let srv = Server::start(Behavior::Serve(serve));
    let scratch = tmp();
    let project = small_project(scratch.path());
    let cache = scratch.path().join("cache");
    let (out, doc) = reprove_download(&project, &cache, &[("GOPROXY", srv.url())], &[]);
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    assert_eq!(doc["securityErrors"][0]["file"], "mod", "{doc:#}");
    assert!(doc["securityErrors"][0]["expectedFrom"].as_str().is_some_and(|s| s.ends_with("go.sum:2")));
    assert!(!cache.join("cache/download/github.com/spf13/pflag/@v/v1.0.5.mod").exists());
    assert!(!srv.paths().iter().any(|p| p.ends_with(".zip")), "nothing more is fetched after a security error");
    harness::make_writable(scratch.path());
}

#[test]
fn truncated_and_missing_sums_leave_nothing_behind() {
    let mut serve = Serve::dir(&proxy_root());
    serve.truncate.push(PFLAG_ZIP.into());
    let srv = Server::start(Behavior::Serve(serve));
    let scratch = tmp();
    let project = small_project(scratch.path());
    let cache = scratch.path().join("cache");
    let (out, doc) = reprove_download(&project, &cache, &[("GOPROXY", srv.url())], &["--retries", "1"]);
    assert_eq!(out.status, Some(3), "{}", out.stdout_str());
    assert!(failure_codes(&doc).contains("bad-response"), "{:#}", doc["failures"]);
    assert_eq!(srv.paths().iter().filter(|p| *p == PFLAG_ZIP).count(), 2, "one retry of the broken body");
    assert!(!cache.join("cache/download/github.com/spf13/pflag/@v/v1.0.5.zip").exists());
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));

    // A go.sum without the zip's line: nothing unverified enters the cache (exit 2).
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let sum = fs::read_to_string(project.join("go.sum")).unwrap_or_default();
    let only_mod: String = sum.lines().filter(|l| l.contains("/go.mod")).map(|l| format!("{l}\n")).collect();
    fs::write(project.join("go.sum"), only_mod).unwrap_or_else(|e| panic!("{e}"));
    let cache2 = scratch.path().join("cache2");
    let (out, doc) = reprove_download(&project, &cache2, &[("GOPROXY", good.url())], &[]);
    assert_eq!(out.status, Some(2), "{}", out.stdout_str());
    assert_eq!(failure_codes(&doc), BTreeSet::from(["missing-go-sum".to_string()]), "{:#}", doc["failures"]);
    assert!(!cache2.join("cache/download/github.com/spf13/pflag/@v/v1.0.5.zip").exists());
    harness::make_writable(scratch.path());
}

/// A private module in a real git repository, reachable only through git's
/// `url.<base>.insteadOf` (a local bare repository), and a project using it.
fn private_setup(dir: &Path, good: &Server) -> (PathBuf, Vec<(&'static str, String)>) {
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
    fs::write(src.join("go.mod"), "module private.invalid/lib.git\n\ngo 1.22\n").unwrap_or_else(|e| panic!("{e}"));
    fs::write(src.join("lib.go"), "package lib\n\nfunc Hello() string { return \"hi\" }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let git = |args: &[&str], cwd: &Path| {
        let mut c = Command::new("git");
        c.args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"]).args(args).current_dir(cwd);
        run_ok(&mut c).unwrap_or_else(|e| panic!("{e}"));
    };
    git(&["init", "-q"], &src);
    git(&["add", "-A"], &src);
    git(&["commit", "-qm", "init"], &src);
    git(&["tag", "v1.0.0"], &src);
    let repos = dir.join("repos");
    fs::create_dir_all(&repos).unwrap_or_else(|e| panic!("{e}"));
    git(&["clone", "-q", "--bare", &src.display().to_string(), &repos.join("lib.git").display().to_string()], dir);
    let gitconfig = dir.join("gitconfig");
    fs::write(&gitconfig, format!("[url \"file://{}/\"]\n\tinsteadOf = https://private.invalid/\n", repos.display()))
        .unwrap_or_else(|e| panic!("{e}"));
    let project = dir.join("app");
    fs::create_dir_all(&project).unwrap_or_else(|e| panic!("{e}"));
    fs::write(
        project.join("go.mod"),
        "module example.com/app\n\ngo 1.22\n\nrequire (\n\tgithub.com/spf13/pflag v1.0.5\n\tprivate.invalid/lib.git v1.0.0\n)\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::write(
        project.join("main.go"),
        "package main\n\nimport (\n\t_ \"github.com/spf13/pflag\"\n\tlib \"private.invalid/lib.git\"\n)\n\nfunc main() { _ = lib.Hello() }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let vars = vec![
        ("GIT_CONFIG_GLOBAL", gitconfig.display().to_string()),
        ("GOPRIVATE", "private.invalid".to_string()),
        ("GOPROXY", good.url()),
    ];
    // go.sum, written by go itself.
    assert_ok("go mod tidy", &go_cmd(&project, &dir.join("tidy-cache"), &vars, &["mod", "tidy"]));
    (project, vars)
}

#[test]
fn private_modules_go_direct_and_never_to_the_proxy() {
    let good = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let scratch = tmp();
    let (project, base) = private_setup(scratch.path(), &good);
    let gitconfig = base[0].1.clone();
    for (label, private) in [
        ("GOPRIVATE", vec![("GOPRIVATE", "private.invalid".to_string())]),
        ("GONOPROXY+GONOSUMDB", vec![("GONOPROXY", "*.invalid".to_string()), ("GONOSUMDB", "private.invalid".into())]),
    ] {
        let mut vars = vec![("GIT_CONFIG_GLOBAL", gitconfig.clone()), ("GOPROXY", format!("{},direct", good.url()))];
        vars.extend(private);
        let cache = scratch.path().join(format!("cache-{label}"));
        let before = good.requests().len();
        let (out, doc) = reprove_download(&project, &cache, &vars, &[]);
        assert_ok(&format!("{label}: reprove mod download"), &out);
        let ours: BTreeSet<String> = good.paths()[before..].iter().cloned().collect();
        assert!(!ours.iter().any(|p| p.contains("private.invalid")), "{label}: the proxy was asked: {ours:?}");
        assert_eq!(doc["summary"]["directModules"], 1, "{label}: {:#}", doc["summary"]);
        let private = doc["modules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["path"] == "private.invalid/lib.git")
            .unwrap_or_else(|| panic!("{doc:#}"));
        assert!(private["files"].as_array().into_iter().flatten().all(|f| f["status"] == "direct"), "{private:#}");
        assert!(leftovers(&cache).is_empty(), "{label}: {:?}", leftovers(&cache));
        build_and_verify(&project, &cache);
        // go makes the same decisions: the same requests to the proxy.
        let before = good.requests().len();
        let go_cache = scratch.path().join(format!("go-{label}"));
        assert_ok(&format!("{label}: go mod download"), &go_cmd(&project, &go_cache, &vars, &["mod", "download"]));
        let theirs: BTreeSet<String> = good.paths()[before..].iter().cloned().collect();
        assert_eq!(ours, theirs, "{label}: reprove and go asked the proxy for different files");
    }
    harness::make_writable(scratch.path());
}

#[test]
fn http_proxy_and_no_proxy() {
    // The module proxy's host does not resolve: only the HTTP proxy can reach it.
    let via = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
    let scratch = tmp();
    let project = small_project(scratch.path());
    let vars = vec![("GOPROXY", "http://goproxy.invalid".to_string()), ("HTTP_PROXY", via.url())];
    let (out, _) = reprove_download(&project, &scratch.path().join("a"), &vars, &[]);
    assert_ok("through HTTP_PROXY", &out);
    let reqs = via.requests();
    assert!(!reqs.is_empty() && reqs.iter().all(|r| r.target.starts_with("http://goproxy.invalid/")), "{reqs:?}");
    let theirs = go_cmd(&project, &scratch.path().join("go"), &vars, &["mod", "download"]);
    assert_ok("go through HTTP_PROXY", &theirs);

    // NO_PROXY exempts the host: the name must then resolve, and does not.
    let mut vars = vars;
    vars.push(("NO_PROXY", "localhost,.invalid".to_string()));
    let before = via.requests().len();
    let (out, doc) = reprove_download(&project, &scratch.path().join("b"), &vars, &["--retries", "0"]);
    assert_eq!(out.status, Some(3), "{}", out.stdout_str());
    assert!(failure_codes(&doc).contains("dns"), "{:#}", doc["failures"]);
    assert_eq!(via.requests().len(), before, "NO_PROXY must bypass the proxy");
    let theirs = go_cmd(&project, &scratch.path().join("go2"), &vars, &["mod", "download"]);
    assert!(!theirs.success() && theirs.stderr_str().contains("no such host"), "{}", theirs.stderr_str());
    // HTTPS_PROXY does not apply to http:// URLs.
    let vars = vec![("GOPROXY", "http://goproxy.invalid".to_string()), ("HTTPS_PROXY", via.url())];
    let (out, _) = reprove_download(&project, &scratch.path().join("c"), &vars, &["--retries", "0"]);
    assert_eq!(out.status, Some(3));
    harness::make_writable(scratch.path());
}

#[test]
fn credentials_from_the_url_and_netrc() {
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:s3cret"));
    let mut serve = Serve::dir(&proxy_root());
    serve.auth = Some(basic.clone());
    let scratch = tmp();
    let project = small_project(scratch.path());

    // Like go, credentials in an http:// URL are refused, never sent.
    let plain = Server::start(Behavior::Serve(serve.clone()));
    let with_user = plain.url().replace("http://", "http://alice:s3cret@");
    let (out, doc) = reprove_download(&project, &scratch.path().join("a"), &[("GOPROXY", with_user.clone())], &[]);
    assert_eq!(out.status, Some(3));
    assert!(failure_codes(&doc).contains("auth"), "{:#}", doc["failures"]);
    let theirs = go_cmd(&project, &scratch.path().join("g"), &[("GOPROXY", with_user)], &["mod", "download"]);
    assert!(theirs.stderr_str().contains("refusing to pass credentials to insecure URL"), "{}", theirs.stderr_str());
    assert!(plain.requests().is_empty(), "credentials must not travel over plain HTTP");

    // Over HTTPS (a CA from SSL_CERT_FILE): URL userinfo, then .netrc.
    let tls_dir = scratch.path().join("tls");
    fs::create_dir_all(&tls_dir).unwrap_or_else(|e| panic!("{e}"));
    let (id, ca) = server::make_identity(&tls_dir);
    let tls = Server::start_tls(Behavior::Serve(serve), &id);
    let ca_var = ("SSL_CERT_FILE", ca.display().to_string());
    let with_user = tls.url().replace("https://", "https://alice:s3cret@");
    let vars = vec![("GOPROXY", with_user), ca_var.clone()];
    let (out, _) = reprove_download(&project, &scratch.path().join("b"), &vars, &[]);
    assert_ok("credentials in an https GOPROXY URL", &out);
    assert_ok("go, credentials in the URL", &go_cmd(&project, &scratch.path().join("g1"), &vars, &["mod", "download"]));

    let (out, doc) =
        reprove_download(&project, &scratch.path().join("c"), &[("GOPROXY", tls.url()), ca_var.clone()], &[]);
    assert_eq!(out.status, Some(3), "no credentials: 401");
    assert!(failure_codes(&doc).contains("auth"), "{:#}", doc["failures"]);

    let netrc = scratch.path().join("netrc");
    fs::write(&netrc, format!("machine 127.0.0.1:{} login alice password s3cret\n", tls.port()))
        .unwrap_or_else(|e| panic!("{e}"));
    let vars = vec![("GOPROXY", tls.url()), ("NETRC", netrc.display().to_string()), ca_var];
    let before = tls.requests().len();
    let (out, _) = reprove_download(&project, &scratch.path().join("d"), &vars, &[]);
    assert_ok(".netrc over https", &out);
    assert!(tls.requests()[before..].iter().all(|r| r.authorization.as_deref() == Some(basic.as_str())));
    assert_ok("go, .netrc over https", &go_cmd(&project, &scratch.path().join("g2"), &vars, &["mod", "download"]));
    // Without the CA the certificate is refused: a TLS failure.
    let (out, doc) = reprove_download(&project, &scratch.path().join("e"), &vars[..2], &["--retries", "0"]);
    assert_eq!(out.status, Some(3));
    assert!(failure_codes(&doc).contains("tls"), "{:#}", doc["failures"]);
    harness::make_writable(scratch.path());
}

#[test]
fn concurrent_with_go_on_one_cache() {
    let mut serve = Serve::dir(&proxy_root());
    serve.delay = Duration::from_millis(15);
    let srv = Server::start(Behavior::Serve(serve));
    let scratch = tmp();
    let project = scratch.path().join("project");
    harness::copy_tree(&harness::fixtures_dir().join("project"), &project);
    let cache = scratch.path().join("cache");
    let vars = [("GOPROXY", srv.url())];
    let mut go = Command::new("go");
    base_env(&mut go, &project, &cache, &vars);
    go.args(["mod", "download"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = go.spawn().unwrap_or_else(|e| panic!("{e}"));
    let (out, _) = reprove_download(&project, &cache, &vars, &[]);
    let theirs = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_ok("reprove mod download next to go", &out);
    assert!(theirs.status.success(), "go mod download next to reprove: {}", String::from_utf8_lossy(&theirs.stderr));
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    build_and_verify(&project, &cache);
    harness::make_writable(scratch.path());
}
