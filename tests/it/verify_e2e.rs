//! `reprove verify` end to end, with nothing faked: the real `go` builds the
//! references on the host; `reprove toolchain build` packages this machine's
//! Go as an image and pushes it to a real registry on 127.0.0.1; real modules
//! are served back from the test module cache on 127.0.0.1 as the GOPROXY; the
//! rebuild runs in runc and in bwrap.
//!
//! The fixture is `tests/fixtures/verify/app` (one real dependency,
//! github.com/spf13/pflag, which the module tests already download), committed
//! into a fresh Git repository per test; `tests/fixtures/verify/workspace` is
//! a go.work workspace of two modules.
//!
//! Cases: a faithful reference (reproduced, exit 0, with runc and bwrap, from
//! a path and from a `file://` URL, cold and warm caches giving the same
//! report); other ldflags (not reproduced, cause `ldflags`, exit 1, and with
//! `--attest` still exit 1 with a signed provenance and FAILED VSA; the same
//! flags given with `--ldflags` reproduce it); GOAMD64=v3 and -tags inferred
//! from the reference (reproduced; without inference, causes `arch-level` and
//! `tags`); another dependency version (cause `dependency-version`, module
//! findings); a second main package with `embed`; no -trimpath (cause `embedded-path`); a toolchain digest the
//! registry lacks (exit 3); `--reference oci://…` with whiteouts; `--keep`;
//! VCS stamping (with and without git in the image); `reprove check`;
//! `--reference-digest`; a
//! reference built by another Go version (error `go-version-mismatch`, exit
//! 2); a dirty working tree (refused, exit 2; `--allow-dirty` says so in the
//! report); a tampered module in the proxy (error `checksum-mismatch` naming
//! the module, exit 3); a go.work workspace (a library module requiring
//! pflag): the faithful reference reproduced, one built with another library
//! source not reproduced, a workspace go.sum gap the `missing-go-sum` error
//! (measured against the gap `go` itself fills into go.work.sum), a reference
//! built in the workspace against `--env GOWORK=off` or a commit without
//! go.work the error `go-workspace` (exit 2); `reprove check` with
//! runc as root also varies the umask and the user id; the source cloned from
//! an `ssh://` URL served by a real sshd (reproduced; refused with a security
//! error when known_hosts does not list the host); a hostile build (a
//! `-toolexec` wrapper built from `tests/fixtures/verify/evil` and committed)
//! that swaps its output for a symlink to the reference, a second hard link or
//! a FIFO (error `output-tampered`, exit 3, nothing attested; runc and bwrap),
//! that leaves a process running (killed with the sandbox, the verdict
//! unchanged), or that hangs while reprove is killed (nothing left running;
//! `toolchain gc` removes the leftovers); `--attest --push` with a reference in an
//! image index on Debian's registry (both statements found by the
//! index digest and by the platform digest, by `attest verify --image` and cosign v2),
//! by a manifest digest (legacy only), against a registry that
//! fails the push (exit 3, files kept), and refused without `--attest` or an `oci://`
//! reference. Every JSON report is checked against
//! `schemas/report.schema.json`; Markdown, `$GITHUB_STEP_SUMMARY` and JUnit
//! outputs are checked once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use oci::build::{Image, Layer, LayerCompression, ManifestFormat};
use serde_json::Value;

use crate::support::{self, goenv, harness, registry, sandbox, schema, server};

use registry::{Registry, TarBuilder};
use server::{Behavior, Serve, Server};
use support::ssh::{self, Agent, Sshd};
use support::{hermetic_go_env, reprove_bin, run, run_ok, Outcome};

/// Builds are heavy on a shared machine: one verify at a time in this binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PFLAG_ZIP: &str = "/github.com/spf13/pflag/@v/v1.0.5.zip";

pub(super) fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
        .args(["-c", "init.defaultBranch=main", "-c", "tag.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}")).stdout_str().trim().to_string()
}

/// A scratch directory with the fixture committed into a Git repository at `repo/`.
pub(super) struct Project {
    tmp: tempfile::TempDir,
    pub(super) repo: PathBuf,
    pub(super) commit: String,
}

impl Project {
    pub(super) fn new() -> Project {
        Project::from_fixture("app")
    }

    /// `tests/fixtures/verify/NAME`, committed and tagged v1.0.0.
    fn from_fixture(name: &str) -> Project {
        let tmp = goenv::tmp();
        let repo = tmp.path().join("repo");
        harness::copy_tree(&support::repo_root().join("tests/fixtures/verify").join(name), &repo);
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "release"]);
        git(&repo, &["tag", "v1.0.0"]);
        let commit = git(&repo, &["rev-parse", "HEAD"]);
        Project { tmp, repo, commit }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Builds a reference on the host the way a release pipeline would.
    pub(super) fn reference(&self, name: &str, go: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut cmd = Command::new(go);
        hermetic_go_env(&mut cmd)
            .current_dir(&self.repo)
            .env("GOPROXY", "off")
            .env("GOMODCACHE", harness::shared_cache())
            .env("CGO_ENABLED", "0")
            .env("GOWORK", "off")
            .args(["build", "-trimpath", "-buildvcs=false", "-o"])
            .arg(&out)
            .args(extra)
            .arg(".");
        run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        out
    }
}

impl Project {
    /// Builds a reference in the go.work workspace at the repository root, as a developer
    /// releasing from the workspace would.
    fn workspace_reference(&self, name: &str) -> PathBuf {
        let out = self.path(name);
        let mut cmd = Command::new("go");
        hermetic_go_env(&mut cmd)
            .current_dir(&self.repo)
            .env("GOPROXY", "off")
            .env("GOMODCACHE", harness::shared_cache())
            .env("CGO_ENABLED", "0")
            .env("GOWORK", self.repo.join("go.work"))
            .args(["build", "-trimpath", "-buildvcs=false", "-o"])
            .arg(&out)
            .arg(".");
        run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        harness::make_writable(self.tmp.path());
    }
}

/// `reprove verify ARGS --json` with GOPROXY at `proxy`; the report, checked against the schema.
pub(super) fn verify(proxy: &str, cache: &Path, args: &[&str]) -> (Outcome, Value) {
    verify_with_env(proxy, cache, args, &[])
}

/// [`verify`] with these environment variables too.
pub(super) fn verify_with_env(proxy: &str, cache: &Path, args: &[&str], env: &[(&str, &Path)]) -> (Outcome, Value) {
    verify_in(&std::env::temp_dir(), proxy, cache, args, env)
}

/// [`verify_with_env`] run from the directory `here`.
fn verify_in(here: &Path, proxy: &str, cache: &Path, args: &[&str], env: &[(&str, &Path)]) -> (Outcome, Value) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(reprove_bin());
    goenv::base_env(&mut cmd, here, &cache.join("unused-host-modcache"), &[("GOPROXY", proxy.to_string())]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("GITHUB_STEP_SUMMARY").arg("verify").args(args).arg("--cache-dir").arg(cache).arg("--json");
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("reprove verify --json: {e}\nstdout:\n{}\nstderr:\n{}", out.stdout_str(), out.stderr_str())
    });
    schema::assert_valid("report.schema.json", &doc);
    // `reprove attest provenance` reads reports through the same type.
    let typed: report::v1::Report =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("the report does not read back: {e}\n{doc:#}"));
    assert_eq!(serde_json::to_value(&typed).unwrap_or_default(), doc);
    (out, doc)
}

pub(super) fn status(out: &Outcome, doc: &Value, want: i32) {
    assert_eq!(out.status, Some(want), "exit status\nreport:\n{doc:#}\nstderr:\n{}", out.stderr_str());
}

/// The report without what legitimately changes from run to run.
fn stable(doc: &Value) -> Value {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        for k in ["invocationId", "startedOn", "finishedOn", "timings"] {
            o.remove(k);
        }
    }
    d
}

fn image(registry: &Registry) -> String {
    let mut go = Command::new("go");
    hermetic_go_env(&mut go).args(["env", "GOROOT", "GOVERSION"]);
    let out = run_ok(&mut go).unwrap_or_else(|e| panic!("{e}")).stdout_str();
    let mut lines = out.lines();
    let (goroot, version) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    let tag = format!("{}/toolchains/go:{}", registry.addr, version.trim_start_matches("go"));
    let built = run_ok(
        Command::new(reprove_bin())
            .args(["toolchain", "build", "--goroot", goroot, "--tag", &tag])
            .args(["--push", "--json"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&built.stdout).unwrap_or_else(|e| panic!("{e}"));
    let digest = doc["digest"].as_str().unwrap_or_default();
    assert!(digest.starts_with("sha256:"), "{doc:#}");
    format!("{tag}@{digest}")
}

/// What the scenarios below share, set up once per test process (the first test that
/// needs it pays): a registry on 127.0.0.1 with this machine's Go pushed as a toolchain
/// image by `reprove toolchain build --push`, the GOPROXY serving the test module
/// cache, and a reprove cache directory. They outlive every test (a `static` is never
/// dropped): the registry is stopped and the directories removed when the process exits.
pub(super) struct Shared {
    pub(super) registry: Registry,
    pub(super) toolchain: String,
    pub(super) proxy: Server,
    pub(super) cache: PathBuf,
}

pub(super) fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
        let toolchain = image(&registry);
        let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
        let dir = goenv::tmp().keep();
        support::reap_at_exit(registry.pid(), &[registry.dir(), dir.as_path()]);
        Shared { registry, toolchain, proxy, cache: dir.join("cache") }
    })
}

/// `--source REPO --rev REV --toolchain TOOLCHAIN --from-reference --ldflags=`: Go does
/// not record -ldflags under -trimpath, and these releases used none.
pub(super) fn base(repo: &str, rev: &str, toolchain: &str) -> Vec<String> {
    ["--source", repo, "--rev", rev, "--toolchain", toolchain, "--from-reference", "--ldflags="]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

pub(super) fn args(v: &[String], extra: &[&str]) -> Vec<String> {
    v.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect()
}

pub(super) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A reference built with `-ldflags=-X main.version=1.2.3`, which Go does not record under -trimpath.
fn stamped_reference(p: &Project) -> PathBuf {
    p.reference("verifyapp-stamped", "go", &["-ldflags=-X main.version=1.2.3"])
}

/// A faithful reference, cold caches (its own cache and GOPROXY): reproduced, exit 0;
/// then warm caches, then `--keep`.
#[test]
fn a_faithful_reference_is_reproduced_cold_and_warm_and_kept() {
    let s = shared();
    let toolchain = s.toolchain.as_str();
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let cache = p.path("cache");
    let reference = p.reference("verifyapp", "go", &[]);
    let reference_s = reference.display().to_string();
    let repo = p.repo.display().to_string();

    // A faithful reference, cold caches: reproduced, exit 0.
    let a = args(&base(&repo, "main", toolchain), &["--reference", &reference_s, "--runtime", "runc"]);
    let a = strs(&a);
    let (out, cold) = verify(&proxy.url(), &cache, &a);
    status(&out, &cold, 0);
    assert_eq!(cold["verdict"], "reproduced");
    assert_eq!(cold["inputs"]["source"]["commit"], p.commit.as_str());
    assert_eq!(cold["inputs"]["source"]["uri"], format!("file://{}", p.repo.display()).as_str());
    assert_eq!(cold["inputs"]["toolchain"]["image"], toolchain);
    assert_eq!(cold["rebuilt"]["sha256"], cold["inputs"]["reference"]["sha256"]);
    assert_eq!(cold["subject"]["name"], "verifyapp");
    assert_eq!(cold["tools"]["runtime"], "runc");
    assert_eq!(cold["recipe"]["trimpath"], true);
    assert_eq!(cold["recipe"]["env"]["CGO_ENABLED"], "0");
    assert_eq!(cold["recipe"]["origins"]["trimpath"], "reference:-trimpath");
    assert_eq!(cold["recipe"]["undetermined"], serde_json::json!([]));
    assert_eq!(cold["recipe"]["origins"]["ldflags"], "flag");
    assert_eq!(cold["recipe"]["buildEnv"]["GOPROXY"], "off");
    assert_eq!(cold["recipe"]["buildEnv"]["GOTOOLCHAIN"], "local");
    assert_eq!(cold["modules"][0]["path"], "github.com/spf13/pflag");
    assert!(cold["modules"][0]["h1"].as_str().is_some_and(|h| h.starts_with("h1:")), "{cold:#}");
    assert_eq!(cold["moduleFindings"], Value::Array(Vec::new()));
    let steps: Vec<&str> =
        cold["timings"].as_array().into_iter().flatten().filter_map(|t| t["step"].as_str()).collect();
    assert_eq!(steps, ["reference", "source", "recipe", "go-sum", "modules", "toolchain", "build", "compare"]);
    // The shared module cache and the toolchain were filled.
    assert!(cache.join("modcache/github.com/spf13/pflag@v1.0.5").is_dir());
    assert!(proxy.paths().iter().any(|r| r == PFLAG_ZIP), "{:?}", proxy.paths());
    // The Go build cache names its toolchain image, so `toolchain gc` can tell when it is orphaned.
    let markers: Vec<String> = fs::read_dir(cache.join("gocache"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".toolchain"))
        .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    let manifest = cold["inputs"]["toolchain"]["manifestDigest"].as_str().unwrap_or_default();
    assert_eq!(markers, [format!("{manifest}\n")], "{cold:#}");

    // Warm caches: the same report, minus timings and ids; nothing fetched again.
    let fetched = proxy.requests().len();
    let (out, warm) = verify(&proxy.url(), &cache, &a);
    status(&out, &warm, 0);
    assert_eq!(stable(&cold), stable(&warm));
    assert_eq!(proxy.requests().len(), fetched, "a warm run fetched modules again");

    // --keep: the exported tree (no .git) and the rebuilt binary stay, and run.
    let keep = p.path("kept");
    let k: Vec<&str> = a.iter().copied().chain(["--keep", keep.to_str().unwrap_or_default()]).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &k);
    status(&out, &doc, 0);
    assert!(keep.join("src/go.mod").is_file() && !keep.join("src/.git").exists());
    let kept_bin = keep.join("out/verifyapp");
    assert_eq!(doc["rebuilt"]["path"], kept_bin.display().to_string().as_str());
    let ran = run_ok(Command::new(&kept_bin).args(["--name", "kept"])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ran.stdout_str(), "hello kept from verifyapp dev\n");
    // A non-empty --keep directory is refused rather than written into.
    let (out, doc) = verify(&proxy.url(), &cache, &k);
    assert_eq!((out.status, doc["error"]["code"].as_str()), (Some(2), Some("keep-not-empty")), "{doc:#}");
}

/// bwrap, from a file:// URL and a tag: the same verdict.
#[test]
fn bwrap_from_a_file_url_and_a_tag_reproduces_the_reference() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let reference_s = p.reference("verifyapp", "go", &[]).display().to_string();
    let url = format!("file://{}", p.repo.display());
    let b = ["--source", &url, "--rev", "v1.0.0", "--toolchain", toolchain, "--from-reference", "--ldflags="];
    let b: Vec<&str> = b.iter().copied().chain(["--reference", &reference_s, "--runtime", "bwrap"]).collect();
    let (out, doc) = verify(&proxy, cache, &b);
    status(&out, &doc, 0);
    assert_eq!(
        (doc["tools"]["runtime"].as_str(), doc["inputs"]["source"]["uri"].as_str()),
        (Some("bwrap"), Some(url.as_str()))
    );
    assert_eq!(doc["inputs"]["source"]["tags"][0], "v1.0.0");
}

/// Other ldflags (not recorded under -trimpath): not reproduced, cause ldflags, exit 1;
/// with `--attest` a signed provenance and a FAILED VSA; the same flags given: reproduced.
#[test]
fn other_ldflags_are_not_reproduced_and_attested_as_failed() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();

    // Other ldflags (not recorded under -trimpath): not reproduced, cause ldflags, exit 1.
    let stamped = stamped_reference(&p);
    let stamped_s = stamped.display().to_string();
    // Nothing says which ldflags the release used: exit 2 before building, naming the field.
    let undetermined = ["--source", repo.as_str(), "--toolchain", toolchain, "--from-reference", "--reference"];
    let undetermined: Vec<&str> = undetermined.iter().copied().chain([stamped_s.as_str()]).collect();
    let (out, doc) = verify(&proxy, cache, &undetermined);
    status(&out, &doc, 2);
    assert_eq!((doc["error"]["code"].as_str(), doc["rebuilt"].as_null()), (Some("recipe-undetermined"), Some(())));
    assert_eq!(doc["recipe"]["undetermined"][0]["field"], "ldflags", "{doc:#}");
    assert!(out.stderr_str().contains("ldflags") && out.stderr_str().contains("reprove.toml"), "{}", out.stderr_str());
    let c = args(&base(&repo, "HEAD", toolchain), &["--reference", &stamped_s]);
    let c = strs(&c);
    let (out, doc) = verify(&proxy, cache, &c);
    status(&out, &doc, 1);
    assert_eq!(doc["verdict"], "not-reproduced");
    assert_eq!(doc["causes"][0]["code"], "ldflags", "{doc:#}");
    assert!(doc["summary"].as_str().is_some_and(|s| s.contains("ldflags")), "{doc:#}");
    // The same with --attest: the verdict's exit code stays 1, and the provenance and a
    // FAILED VSA with its causes are signed, verifiable with the public key.
    let keys = p.path("keys");
    fs::create_dir_all(&keys).unwrap_or_else(|e| panic!("{e}"));
    run_ok(Command::new(reprove_bin()).current_dir(&keys).env("COSIGN_PASSWORD", "pw").args([
        "keygen",
        "--output-key-prefix",
        "k",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let att = p.path("attestations");
    let (key, att_s) = (keys.join("k.key").display().to_string(), att.display().to_string());
    let attested = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = Command::new(reprove_bin());
        let vars = [("GOPROXY", proxy.clone()), ("COSIGN_PASSWORD", "pw".to_string())];
        goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused-host-modcache"), &vars);
        cmd.env_remove("GITHUB_STEP_SUMMARY").arg("verify").args(&c).arg("--cache-dir").arg(cache);
        cmd.args(["--attest", "--key", &key, "--out", &att_s]);
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(attested.status, Some(1), "{}", attested.stderr_str());
    assert!(attested.stdout_str().contains("ldflags"), "the verdict is printed first: {}", attested.stdout_str());
    let public = keys.join("k.pub").display().to_string();
    for (file, subject) in
        [("verifyapp.vsa.intoto.jsonl", stamped_s.as_str()), ("verifyapp.provenance.intoto.jsonl", "")]
    {
        let path = att.join(file).display().to_string();
        let mut cmd = Command::new(reprove_bin());
        cmd.args(["attest", "verify", "--key", &public, "--json", &path]);
        if !subject.is_empty() {
            cmd.args(["--subject", subject]);
        }
        let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.stdout_str().contains("\"valid\""), "{file}: {}", out.stdout_str());
    }
    let line = fs::read_to_string(att.join("verifyapp.vsa.intoto.jsonl")).unwrap_or_default();
    let envelope: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}"));
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let vsa: Value = serde_json::from_slice(&payload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vsa["predicate"]["verificationResult"], "FAILED");
    assert_eq!(vsa["predicate"]["reproveCauses"][0], "ldflags", "{vsa:#}");
    // The same flags given: reproduced.
    let d: Vec<String> = c.iter().filter(|a| **a != "--ldflags=").map(|s| s.to_string()).collect();
    let d = args(&d, &["--ldflags", "-X main.version=1.2.3"]);
    let d = strs(&d);
    let (out, doc) = verify(&proxy, cache, &d);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["origins"]["ldflags"], "flag");
}

/// The recipe is read from the reference: GOAMD64=v3 and -tags are recorded, so they are
/// reproduced; without the inference, not reproduced, and the diff says why.
#[test]
fn the_arch_level_and_tags_of_the_reference_are_reproduced() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();

    // The recipe is read from the reference: GOAMD64=v3 and -tags are recorded, so they are reproduced.
    let tuned = p.reference("verifyapp-v3", "go", &["-tags=netgo,osusergo"]);
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd)
        .current_dir(&p.repo)
        .env("GOPROXY", "off")
        .env("GOMODCACHE", harness::shared_cache())
        .env("CGO_ENABLED", "0")
        .env("GOAMD64", "v3")
        .args(["build", "-trimpath", "-buildvcs=false", "-tags=netgo,osusergo", "-o"])
        .arg(&tuned)
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let tuned_s = tuned.display().to_string();
    let t = args(&base(&repo, "HEAD", toolchain), &["--reference", &tuned_s]);
    let t = strs(&t);
    let (out, doc) = verify(&proxy, cache, &t);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["archLevel"], "GOAMD64=v3");
    assert_eq!(doc["recipe"]["tags"], serde_json::json!(["netgo", "osusergo"]));
    assert_eq!(doc["recipe"]["origins"]["env.GOAMD64"], "reference:GOAMD64");
    // The same recipe without the inference: not reproduced, and the diff says why.
    let u = ["--source", repo.as_str(), "--toolchain", toolchain, "--trimpath", "--env", "CGO_ENABLED=0"];
    let u: Vec<&str> = u.iter().copied().chain(["--reference", &tuned_s]).collect();
    let (out, doc) = verify(&proxy, cache, &u);
    status(&out, &doc, 1);
    let codes: Vec<&str> = doc["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(codes.contains(&"arch-level") && codes.contains(&"tags"), "{doc:#}");
}

/// A reference built without -trimpath in another directory: not reproduced (the paths are embedded).
#[test]
fn a_reference_built_without_trimpath_is_not_reproduced() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let mut cmd = Command::new("go");
    let untrimmed = p.path("verifyapp-untrimmed");
    hermetic_go_env(&mut cmd)
        .current_dir(&p.repo)
        .env("GOPROXY", "off")
        .env("GOMODCACHE", harness::shared_cache())
        .env("CGO_ENABLED", "0")
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&untrimmed)
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let w = args(&base(&repo, "HEAD", toolchain), &["--reference", untrimmed.to_str().unwrap_or_default()]);
    let w = strs(&w);
    let (out, doc) = verify(&proxy, cache, &w);
    status(&out, &doc, 1);
    assert_eq!(doc["recipe"]["trimpath"], false);
    let codes: Vec<&str> = doc["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(codes.contains(&"embedded-path"), "{doc:#}");
}

/// A toolchain digest the registry does not have: refused, nothing built.
#[test]
fn a_toolchain_digest_the_registry_lacks_is_refused() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let reference_s = p.reference("verifyapp", "go", &[]).display().to_string();
    let wrong = format!("{}@sha256:{}", toolchain.split('@').next().unwrap_or_default(), "f".repeat(64));
    let x = ["--source", repo.as_str(), "--toolchain", &wrong, "--from-reference", "--ldflags="];
    let x: Vec<&str> = x.iter().copied().chain(["--reference", &reference_s]).collect();
    let (out, doc) = verify(&proxy, cache, &x);
    status(&out, &doc, 3);
    assert_eq!((doc["error"]["step"].as_str(), doc["rebuilt"].as_null()), (Some("toolchain"), Some(())), "{doc:#}");
}

/// A reference built with another version of a dependency: not reproduced, cause
/// dependency-version, and the module sums disagree three ways.
#[test]
fn another_dependency_version_is_not_reproduced() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let other = p.path("other-dep");
    harness::copy_tree(&p.repo, &other);
    let mut tidy = Command::new("go");
    hermetic_go_env(&mut tidy)
        .current_dir(&other)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOMODCACHE", harness::shared_cache())
        .args(["get", "github.com/spf13/pflag@v1.0.3"]);
    // go.sum lacks v1.0.3: go checks it against the checksum database.
    harness::checksums(&["github.com/spf13/pflag@v1.0.3"]).apply(&mut tidy);
    run_ok(&mut tidy).unwrap_or_else(|e| panic!("{e}"));
    let older = p.path("verifyapp-pflag-1.0.3");
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd)
        .current_dir(&other)
        .env("GOPROXY", "off")
        .env("GOMODCACHE", harness::shared_cache())
        .env("CGO_ENABLED", "0")
        .args(["build", "-trimpath", "-buildvcs=false", "-o"])
        .arg(&older)
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let od = args(&base(&repo, "HEAD", toolchain), &["--reference", older.to_str().unwrap_or_default()]);
    let od = strs(&od);
    let (out, doc) = verify(&proxy, cache, &od);
    status(&out, &doc, 1);
    let codes: Vec<&str> = doc["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(codes.contains(&"dependency-version"), "{doc:#}");
    let findings: Vec<(&str, &str)> = doc["moduleFindings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["kind"].as_str().unwrap_or_default(), f["version"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(findings, [("missing-in-go-sum", "v1.0.3"), ("reference-vs-rebuilt", "v1.0.3")], "{doc:#}");
}

/// A second main package, with an embedded file: the package is inferred from the reference.
#[test]
fn a_second_main_package_with_an_embedded_file_is_inferred_from_the_reference() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let mut cmd = Command::new("go");
    let greeter = p.path("greeter");
    hermetic_go_env(&mut cmd)
        .current_dir(&p.repo)
        .env("GOPROXY", "off")
        .env("GOMODCACHE", harness::shared_cache())
        .env("CGO_ENABLED", "0")
        .args(["build", "-trimpath", "-buildvcs=false", "-o"])
        .arg(&greeter)
        .arg("./cmd/greeter");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let gr = args(&base(&repo, "HEAD", toolchain), &["--reference", greeter.to_str().unwrap_or_default()]);
    let gr = strs(&gr);
    let (out, doc) = verify(&proxy, cache, &gr);
    status(&out, &doc, 0);
    assert_eq!(
        (doc["recipe"]["package"].as_str(), doc["subject"]["name"].as_str()),
        (Some("./cmd/greeter"), Some("greeter"))
    );
    assert_eq!(doc["modules"], serde_json::json!([]), "greeter has no dependencies");
}

/// Only the published digest (`--reference-digest`): reproduced; a wrong digest: not reproduced.
#[test]
fn only_the_published_digest_is_enough_to_verify() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let reference = p.reference("verifyapp", "go", &[]);
    // The faithful reference's digest (what `verify --reference` reports as inputs.reference.sha256).
    let sha = stdx::sha256_hex(&fs::read(&reference).unwrap_or_else(|e| panic!("{e}")));
    for (digest, want) in [(sha.clone(), 0), ("0".repeat(64), 1)] {
        let dg = format!("sha256:{digest}");
        let e =
            ["--source", &repo, "--rev", &p.commit, "--toolchain", toolchain, "--trimpath", "--env", "CGO_ENABLED=0"];
        let e: Vec<&str> = e.iter().copied().chain(["--reference-digest", &dg, "--output-name", "verifyapp"]).collect();
        let (out, doc) = verify(&proxy, cache, &e);
        status(&out, &doc, want);
        assert_eq!(doc["inputs"]["reference"]["path"], Value::Null);
        assert_eq!(doc["subject"]["sha256"], digest.as_str());
        assert_eq!(doc["rebuilt"]["sha256"], sha.as_str(), "{doc:#}");
    }
}

/// A reference built by another Go version: an input error naming both, exit 2, no build.
#[test]
fn a_reference_built_by_another_go_version_is_an_input_error() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let old_go = "/usr/lib/go-1.22/bin/go";
    assert!(Path::new(old_go).exists(), "{old_go}: {}", support::RUN_SETUP);
    let old = p.reference("verifyapp-go122", old_go, &[]);
    let old_s = old.display().to_string();
    let f = args(&base(&repo, "HEAD", toolchain), &["--reference", &old_s]);
    let f = strs(&f);
    let (out, doc) = verify(&proxy, cache, &f);
    status(&out, &doc, 2);
    assert_eq!(doc["verdict"], "error");
    assert_eq!(
        (doc["error"]["code"].as_str(), doc["error"]["step"].as_str()),
        (Some("go-version-mismatch"), Some("toolchain"))
    );
    assert!(out.stderr_str().contains("go1.22"), "{}", out.stderr_str());
    assert_eq!(doc["rebuilt"], Value::Null);
}

/// A dirty working tree: refused (exit 2); allowed, the report says so and the commit is rebuilt.
#[test]
fn a_dirty_working_tree_is_refused_unless_allowed() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let reference_s = p.reference("verifyapp", "go", &[]).display().to_string();
    fs::write(p.repo.join("main.go"), "package main\n\nfunc main() {}\n").unwrap_or_else(|e| panic!("{e}"));
    let g = args(&base(&repo, "HEAD", toolchain), &["--reference", &reference_s]);
    let g = strs(&g);
    let (out, doc) = verify(&proxy, cache, &g);
    status(&out, &doc, 2);
    assert_eq!(doc["error"]["code"], "dirty-tree");
    assert!(out.stderr_str().contains("main.go") && out.stderr_str().contains("--allow-dirty"), "{}", out.stderr_str());
    let h: Vec<&str> = g.iter().copied().chain(["--allow-dirty"]).collect();
    let (out, doc) = verify(&proxy, cache, &h);
    status(&out, &doc, 0);
    assert_eq!(doc["inputs"]["source"]["dirty"], true);
    assert_eq!(doc["inputs"]["source"]["dirtyPaths"][0], "main.go");
    git(&p.repo, &["checkout", "--", "main.go"]);
}

/// Markdown on stdout and in $GITHUB_STEP_SUMMARY, and JUnit, for the not-reproduced case.
#[test]
fn markdown_step_summary_and_junit_report_a_not_reproduced_verdict() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let stamped_s = stamped_reference(&p).display().to_string();
    let c = args(&base(&repo, "HEAD", toolchain), &["--reference", &stamped_s]);
    let summary = p.path("summary.md");
    let junit = p.path("junit.xml");
    let mut cmd = Command::new(reprove_bin());
    goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", proxy.clone())]);
    cmd.env("GITHUB_STEP_SUMMARY", &summary).arg("verify").args(&c).arg("--cache-dir").arg(cache);
    cmd.arg("--markdown").arg("--junit").arg(&junit);
    let out = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    let md = out.stdout_str();
    assert!(md.contains("not-reproduced") && md.contains("`ldflags`"), "{md}");
    assert_eq!(fs::read_to_string(&summary).unwrap_or_default(), md);
    let xml = fs::read_to_string(&junit).unwrap_or_default();
    assert!(xml.contains(r#"failures="1""#) && xml.contains("<failure type=\"not-reproduced\""), "{xml}");
}

/// The reference inside an image (oci://…@sha256:…#/path): the layers are applied in
/// order and whiteouts honoured; a reference not pinned by digest is refused.
#[test]
fn a_reference_inside_an_image_is_read_from_its_layers() {
    let s = shared();
    let (registry, proxy, cache, toolchain) = (&s.registry, s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let reference = p.reference("verifyapp", "go", &[]);
    let stamped = stamped_reference(&p);
    // The faithful reference's digest (what `verify --reference` reports as inputs.reference.sha256).
    let sha = stdx::sha256_hex(&fs::read(&reference).unwrap_or_else(|e| panic!("{e}")));
    let good = fs::read(&reference).unwrap_or_else(|e| panic!("{e}"));
    let bad = fs::read(&stamped).unwrap_or_else(|e| panic!("{e}"));
    let lower =
        TarBuilder::new().dir("bin", 0o755).file("bin/app", 0o755, &bad).file("bin/gone", 0o755, &good).finish();
    let upper =
        TarBuilder::new().dir("bin", 0o755).file("bin/app", 0o755, &good).file("bin/.wh.gone", 0o644, b"").finish();
    let release = registry.reference("releases/verifyapp:1.0.0");
    let pushed = registry::push_tars(registry, &release, &[lower, upper]);
    let in_image = format!("oci://{release}@{}#/bin/app", pushed.manifest_digest);
    let o = args(&base(&repo, "HEAD", toolchain), &["--reference", &in_image]);
    let o = strs(&o);
    let (out, doc) = verify(&proxy, cache, &o);
    status(&out, &doc, 0);
    assert_eq!(doc["inputs"]["reference"]["path"], in_image.as_str());
    assert_eq!(doc["inputs"]["reference"]["sha256"], sha.as_str());
    // The image, by the manifest digest given: no index.
    let image = &doc["inputs"]["reference"]["image"];
    assert_eq!(image["name"], format!("{}/releases/verifyapp", registry.addr).as_str(), "{doc:#}");
    assert_eq!((image["tag"].as_str(), image["path"].as_str()), (Some("1.0.0"), Some("/bin/app")));
    assert_eq!(image["digest"], pushed.manifest_digest.to_string().as_str());
    assert_eq!(image["manifestDigest"], image["digest"]);
    assert_eq!(image["indexDigest"], Value::Null);
    let gone = in_image.replace("#/bin/app", "#/bin/gone");
    let o = args(&base(&repo, "HEAD", toolchain), &["--reference", &gone]);
    let o = strs(&o);
    let (out, doc) = verify(&proxy, cache, &o);
    status(&out, &doc, 2);
    assert_eq!(
        (doc["error"]["step"].as_str(), doc["error"]["code"].as_str()),
        (Some("reference"), Some("reference-unreadable"))
    );
    // Not pinned: refused before anything is pulled.
    let o = args(&base(&repo, "HEAD", toolchain), &["--reference", &format!("oci://{release}#/bin/app")]);
    let mut cmd = Command::new(reprove_bin());
    goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", proxy.clone())]);
    let out = run(cmd.arg("verify").args(&o).arg("--cache-dir").arg(cache)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("no digest"), "{}", out.stderr_str());
}

/// The recipe read from the commit being verified (reprove.toml, reprove.lock,
/// .goreleaser.yaml), and the CI templates gating on the verdict.
#[test]
fn the_recipe_is_read_from_the_commit_and_the_ci_templates_gate_on_the_verdict() {
    let s = shared();
    let p = Project::new();
    let stamped_s = stamped_reference(&p).display().to_string();
    recipe_inputs_of_the_commit(&p, &s.proxy.url(), &s.cache, &s.toolchain, &stamped_s);
}

/// The registry is gone: the cached toolchain still serves. This test has its own
/// registry (to stop) and cache (filled while the registry ran).
#[test]
fn the_cached_toolchain_serves_when_the_registry_is_gone() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = shared().proxy.url();
    let p = Project::new();
    let cache = p.path("cache");
    let repo = p.repo.display().to_string();
    let reference_s = p.reference("verifyapp", "go", &[]).display().to_string();
    let a = args(&base(&repo, "main", &toolchain), &["--reference", &reference_s, "--runtime", "runc"]);
    let a = strs(&a);
    let (out, doc) = verify(&proxy, &cache, &a);
    status(&out, &doc, 0);

    // The registry is gone: the cached toolchain still serves.
    drop(registry);
    let (out, doc) = verify(&proxy, &cache, &a);
    status(&out, &doc, 0);
}

/// The recipe read from the commit being verified: `reprove.toml` ldflags for
/// a -trimpath reference (and not the working tree's), `.goreleaser.yaml`
/// templates with `--tag`, the toolchain from `reprove.lock`, and a lock
/// without the recipe's Go version. On branches, so `main` stays as it was.
fn recipe_inputs_of_the_commit(p: &Project, proxy: &str, cache: &Path, toolchain: &str, stamped: &str) {
    let repo = p.repo.display().to_string();
    let go_version = {
        let mut go = Command::new("go");
        hermetic_go_env(&mut go).args(["env", "GOVERSION"]);
        run_ok(&mut go).unwrap_or_else(|e| panic!("{e}")).stdout_str().trim().to_string()
    };

    // reprove.toml supplies the ldflags Go did not record under -trimpath.
    git(&p.repo, &["checkout", "-q", "-b", "recipe-file", "main"]);
    fs::write(p.repo.join("reprove.toml"), "[build]\nldflags = \"-X main.version=1.2.3\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "reprove.toml"]);
    git(&p.repo, &["commit", "-q", "-m", "reprove.toml"]);
    let with_file = git(&p.repo, &["rev-parse", "HEAD"]);
    let a = ["--source", repo.as_str(), "--rev", &with_file, "--toolchain", toolchain, "--from-reference"];
    let a: Vec<&str> = a.iter().copied().chain(["--reference", stamped]).collect();
    let (out, doc) = verify(proxy, cache, &a);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["ldflags"], "-X main.version=1.2.3");
    assert_eq!(doc["recipe"]["origins"]["ldflags"], "recipe-file:reprove.toml", "{doc:#}");
    assert_eq!(doc["recipe"]["origins"]["trimpath"], "reference:-trimpath", "{doc:#}");
    // The working tree's reprove.toml is not the commit's: it is not read.
    fs::write(p.repo.join("reprove.toml"), "[build]\nldflags = \"-X main.version=9.9.9\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let dirty: Vec<&str> = a.iter().copied().chain(["--allow-dirty"]).collect();
    let (out, doc) = verify(proxy, cache, &dirty);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["ldflags"], "-X main.version=1.2.3");
    git(&p.repo, &["checkout", "--", "reprove.toml"]);

    // reprove.lock in the commit and no --toolchain: the lock's image for the recipe's Go version.
    git(&p.repo, &["checkout", "-q", "-b", "locked", "recipe-file"]);
    let lock = format!("[toolchains]\n\"{go_version}\" = \"{toolchain}\"\n");
    fs::write(p.repo.join("reprove.lock"), lock).unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "reprove.lock"]);
    git(&p.repo, &["commit", "-q", "-m", "reprove.lock"]);
    let a = ["--source", repo.as_str(), "--rev", "locked", "--from-reference", "--reference", stamped];
    let (out, doc) = verify(proxy, cache, &a);
    status(&out, &doc, 0);
    assert_eq!(doc["inputs"]["toolchain"]["image"], toolchain);
    assert_eq!(doc["inputs"]["toolchain"]["from"], "reprove.lock", "{doc:#}");
    ci_templates_gate_on_the_verdict(p, proxy, cache, stamped);
    // A lock without the recipe's Go version: exit 2 naming it and the command that adds it.
    fs::write(p.repo.join("reprove.lock"), format!("[toolchains]\n\"go1.21.0\" = \"{toolchain}\"\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["commit", "-q", "-am", "reprove.lock for go1.21.0 only"]);
    let (out, doc) = verify(proxy, cache, &a);
    status(&out, &doc, 2);
    assert_eq!(doc["error"]["code"], "lock-missing-version", "{doc:#}");
    let err = out.stderr_str();
    assert!(err.contains(&go_version) && err.contains("reprove toolchain lock"), "{err}");

    // .goreleaser.yaml: ldflags templates expanded from --tag and the commit.
    git(&p.repo, &["checkout", "-q", "-b", "goreleaser", "main"]);
    let yaml = "builds:\n  - id: verifyapp\n    main: .\n    binary: verifyapp\n    env: [CGO_ENABLED=0]\n    \
                flags: [-trimpath]\n    goos: [linux, darwin, windows]\n    goarch: [amd64, arm64]\n    \
                ldflags: ['-X main.version={{.Version}} -X main.commit={{.Commit}}']\n";
    fs::write(p.repo.join(".goreleaser.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    fs::write(
        p.repo.join("commit.go"),
        "package main\n\nvar commit = \"none\"\n\nfunc init() { version += \"+\" + commit }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "."]);
    git(&p.repo, &["commit", "-q", "-m", "goreleaser"]);
    let released = git(&p.repo, &["rev-parse", "HEAD"]);
    let ldflags = format!("-ldflags=-X main.version=1.3.0 -X main.commit={released}");
    let reference = p.reference("verifyapp-goreleaser", "go", &[&ldflags]);
    let r = reference.display().to_string();
    let a = ["--source", repo.as_str(), "--rev", "goreleaser", "--toolchain", toolchain, "--tag", "v1.3.0"];
    let a: Vec<&str> = a.iter().copied().chain(["--from-reference", "--reference", &r]).collect();
    let (out, doc) = verify(proxy, cache, &a);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["ldflags"], format!("-X main.version=1.3.0 -X main.commit={released}").as_str());
    assert_eq!(doc["recipe"]["origins"]["ldflags"], "goreleaser:.goreleaser.yaml#verifyapp", "{doc:#}");
    // Six targets, no --target: the reference's platform chose it, and the report says so.
    assert_eq!(doc["recipe"]["origins"]["goarch"], "reference-platform:.goreleaser.yaml#verifyapp", "{doc:#}");
    // Without --from-reference too (fzf's case): the target still comes from the reference's platform.
    let a = ["--source", repo.as_str(), "--rev", "goreleaser", "--toolchain", toolchain, "--tag", "v1.3.0"];
    let a: Vec<&str> = a.iter().copied().chain(["--reference", &r]).collect();
    let (out, doc) = verify(proxy, cache, &a);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["origins"]["goos"], "reference-platform:.goreleaser.yaml#verifyapp", "{doc:#}");
    assert_eq!(doc["recipe"]["origins"]["trimpath"], "goreleaser:.goreleaser.yaml#verifyapp", "{doc:#}");
    git(&p.repo, &["checkout", "-q", "main"]);
}

#[test]
fn verify_from_an_ssh_url_reaches_a_verdict() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let reference = p.reference("verifyapp", "go", &[]).display().to_string();
    // The repository behind a real sshd on 127.0.0.1, cloned as this user with the agent's key.
    let dir = p.path("ssh");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let client = dir.join("id_client");
    let authorized = dir.join("authorized_keys");
    fs::write(&authorized, format!("{}\n", ssh::keygen(&client))).unwrap_or_else(|e| panic!("{e}"));
    let sshd = Sshd::start(&dir, &authorized);
    let agent = Agent::start(&dir, &client);
    let known = dir.join("known_hosts");
    fs::write(&known, sshd.known_hosts_line()).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("ssh://{}@127.0.0.1:{}{}", ssh::user(), sshd.port, p.repo.display());
    let a = ["--source", &url, "--rev", "v1.0.0", "--toolchain", &toolchain, "--from-reference", "--ldflags="];
    let a: Vec<&str> = a.iter().copied().chain(["--reference", &reference, "--runtime", "runc"]).collect();
    let env = [("SSH_AUTH_SOCK", agent.sock.as_path()), ("REPROVE_SSH_KNOWN_HOSTS", known.as_path())];
    let (out, doc) = verify_with_env(&proxy.url(), &p.path("cache"), &a, &env);
    status(&out, &doc, 0);
    assert_eq!(doc["verdict"], "reproduced", "{doc:#}\nsshd:\n{}", sshd.log());
    assert_eq!(doc["inputs"]["source"]["uri"], url.as_str());
    assert_eq!(doc["inputs"]["source"]["commit"], p.commit.as_str());
    assert_eq!(doc["inputs"]["source"]["tags"][0], "v1.0.0");

    // The same server when known_hosts does not list it: a security error, before anything is fetched.
    let unknown = dir.join("known_hosts.empty");
    fs::write(&unknown, "").unwrap_or_else(|e| panic!("{e}"));
    let fetched = proxy.requests().len();
    let env = [("SSH_AUTH_SOCK", agent.sock.as_path()), ("REPROVE_SSH_KNOWN_HOSTS", unknown.as_path())];
    let (out, doc) = verify_with_env(&proxy.url(), &p.path("cache-2"), &a, &env);
    status(&out, &doc, 3);
    let err = &doc["error"];
    assert_eq!(
        (err["step"].as_str(), err["class"].as_str(), err["code"].as_str()),
        (Some("source"), Some("security"), Some("ssh-host-key-unknown")),
        "{doc:#}"
    );
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&sshd.fingerprint()) && message.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{message}"
    );
    assert_eq!(proxy.requests().len(), fetched, "modules were fetched for a refused source");
}

#[test]
fn a_tampered_module_in_the_proxy_is_an_error_naming_it() {
    let p = Project::new();
    let mut serve = Serve::dir(&goenv::proxy_root());
    let pfx = "github.com/spf13/pflag@v1.0.5/";
    let bad = harness::make_zip(&[
        harness::ZipEntry::new(&format!("{pfx}go.mod"), b"module github.com/spf13/pflag\n"),
        harness::ZipEntry::new(&format!("{pfx}flag.go"), b"package pflag\n\nfunc init() { panic(\"owned\") }\n"),
    ]);
    serve.overrides.insert(PFLAG_ZIP.into(), bad);
    let proxy = Server::start(Behavior::Serve(serve));
    let reference = p.reference("verifyapp", "go", &[]);
    let cache = p.path("cache");
    // The toolchain is never reached: nothing listens there.
    let toolchain = format!("127.0.0.1:9/go:1@sha256:{}", "a".repeat(64));
    let args = [
        "--source",
        &p.repo.display().to_string(),
        "--toolchain",
        &toolchain,
        "--from-reference",
        "--ldflags=",
        "--reference",
    ]
    .map(str::to_string);
    let mut args: Vec<String> = args.to_vec();
    args.push(reference.display().to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &a);
    status(&out, &doc, 3);
    assert_eq!(doc["verdict"], "error");
    let err = &doc["error"];
    assert_eq!((err["step"].as_str(), err["class"].as_str()), (Some("modules"), Some("security")), "{doc:#}");
    assert_eq!(err["code"], "checksum-mismatch");
    assert_eq!(err["modules"][0], "github.com/spf13/pflag@v1.0.5");
    assert!(out.stderr_str().contains("github.com/spf13/pflag@v1.0.5"), "{}", out.stderr_str());
    assert!(!cache.join("modcache/github.com/spf13/pflag@v1.0.5").exists(), "the tampered module was extracted");
}

#[test]
fn a_requirement_without_a_go_sum_line_is_an_input_error_naming_it() {
    let p = Project::new();
    fs::write(p.repo.join("go.sum"), "").unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["commit", "-q", "-am", "drop go.sum"]);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let toolchain = format!("127.0.0.1:9/go:1@sha256:{}", "a".repeat(64));
    let digest = format!("sha256:{}", "0".repeat(64));
    let repo = p.repo.display().to_string();
    let a = ["--source", repo.as_str(), "--toolchain", &toolchain, "--reference-digest", &digest];
    let (out, doc) = verify(&proxy.url(), &p.path("cache"), &a);
    status(&out, &doc, 2);
    let err = &doc["error"];
    assert_eq!((err["step"].as_str(), err["code"].as_str()), (Some("go-sum"), Some("missing-go-sum")), "{doc:#}");
    assert_eq!(err["modules"][0], "github.com/spf13/pflag@v1.0.5");
    assert!(out.stderr_str().contains("github.com/spf13/pflag@v1.0.5"), "{}", out.stderr_str());
    assert!(proxy.requests().is_empty(), "nothing may be fetched before go.sum is complete");
}

#[test]
fn bad_inputs_are_refused_before_anything_runs() {
    let p = Project::new();
    let cache = p.path("cache");
    let repo = p.repo.display().to_string();
    let pinned = format!("127.0.0.1:9/go:1@sha256:{}", "a".repeat(64));
    for (args, want) in [
        (vec!["--source", &repo, "--toolchain", "127.0.0.1:9/go:1", "--reference-digest", "sha256:00"], "no digest"),
        (vec!["--source", &repo, "--toolchain", &pinned, "--reference-digest", "md5:00"], "64 hexadecimal"),
        (
            vec![
                "--source",
                &repo,
                "--toolchain",
                &pinned,
                "--reference-digest",
                &format!("sha256:{}", "0".repeat(64)),
                "--rev",
                "nope",
            ],
            "nope",
        ),
    ] {
        let mut cmd = Command::new(reprove_bin());
        goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", "off".into())]);
        cmd.arg("verify").args(&args).arg("--cache-dir").arg(&cache);
        let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stderr_str());
        assert!(out.stderr_str().contains(want), "{args:?}: {}", out.stderr_str());
    }

    // A reference built in a go.work workspace records the other module as `(devel)`, with no
    // version or checksum: a rebuild told not to use the workspace (GOWORK=off) cannot
    // reproduce it, and says so before anything is fetched.
    let ws = Project::from_fixture("workspace");
    let reference = ws.workspace_reference("ws-reference");
    let (repo, reference) = (ws.repo.display().to_string(), reference.display().to_string());
    let a = ["--source", repo.as_str(), "--toolchain", &pinned, "--reference", &reference, "--env", "GOWORK=off"];
    let (out, doc) = verify("off", &ws.path("cache"), &a);
    status(&out, &doc, 2);
    let err = &doc["error"];
    assert_eq!((err["step"].as_str(), err["code"].as_str()), (Some("go-sum"), Some("go-workspace")), "{doc:#}");
    assert_eq!(err["modules"], serde_json::json!(["example.com/greet"]), "{doc:#}");
    assert!(out.stderr_str().contains("go.work workspace"), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("GOWORK=off"), "{}", out.stderr_str());
}

/// The modules `go` wrote into go.work.sum (path@version, `/go.mod` lines included).
fn go_work_sum_modules(repo: &Path) -> Vec<String> {
    let text = fs::read_to_string(repo.join("go.work.sum")).unwrap_or_default();
    let mut m: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(format!("{}@{}", f.next()?, f.next()?.trim_end_matches("/go.mod")))
        })
        .collect();
    m.dedup();
    m
}

#[test]
fn a_go_work_workspace_is_rebuilt_from_every_workspace_module() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::from_fixture("workspace");
    let cache = p.path("cache");
    let reference = p.workspace_reference("wsapp");
    let bi = goinfo::read_build_info_file(&reference).unwrap_or_else(|e| panic!("{e}"));
    let deps: Vec<(String, String)> = bi.deps.iter().map(|d| (d.path.to_string(), d.version.to_string())).collect();
    assert_eq!(
        deps,
        [("example.com/greet".into(), "(devel)".into()), ("github.com/spf13/pflag".into(), "v1.0.5".into())]
    );
    let (repo, reference_s) = (p.repo.display().to_string(), reference.display().to_string());
    let base = ["--source", repo.as_str(), "--toolchain", &toolchain, "--from-reference", "--ldflags="];

    // A faithful reference: reproduced in the workspace, the library's pflag fetched and verified.
    let a: Vec<&str> = base.iter().copied().chain(["--reference", &reference_s, "--runtime", "runc"]).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &a);
    status(&out, &doc, 0);
    assert_eq!(doc["verdict"], "reproduced", "{doc:#}");
    assert_eq!(doc["recipe"]["buildEnv"]["GOWORK"], "/src/go.work");
    assert_eq!(doc["recipe"]["buildEnv"]["GOPROXY"], "off");
    let ws = &doc["inputs"]["workspace"];
    assert_eq!(ws["goWork"]["path"], "go.work");
    assert_eq!(ws["goWorkSum"], Value::Null);
    let modules: Vec<(&str, &str)> = ws["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["path"].as_str().unwrap_or_default(), m["dir"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(modules, [("example.com/wsapp", "."), ("example.com/greet", "greet")]);
    assert_eq!(ws["modules"][1]["goSum"]["path"], "greet/go.sum");
    assert_eq!(doc["inputs"]["goSum"], Value::Null);
    assert_eq!(doc["modules"][0]["version"], "(devel)");
    assert_eq!(doc["modules"][1]["path"], "github.com/spf13/pflag");
    assert_eq!(doc["moduleFindings"], Value::Array(Vec::new()), "{doc:#}");
    assert!(proxy.paths().iter().any(|r| r == PFLAG_ZIP), "{:?}", proxy.paths());
    // A reference built with another version of the workspace library: not reproduced.
    fs::write(
        p.repo.join("greet/greet.go"),
        "// Package greet is the workspace's second module.\npackage greet\n\n// Hello greets.\nfunc Hello() string { return \"changed\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["commit", "-q", "-am", "another library"]);
    let changed = p.workspace_reference("wsapp-changed").display().to_string();
    let b: Vec<&str> = base.iter().copied().chain(["--rev", "v1.0.0", "--reference", &changed]).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &b);
    status(&out, &doc, 1);
    assert_eq!(doc["verdict"], "not-reproduced", "{doc:#}");
    assert!(doc["causes"].as_array().is_some_and(|c| !c.is_empty()), "{doc:#}");

    // A workspace go.sum without the library's requirement: the go-sum error, nothing fetched.
    // Parity with go: in workspace mode it fills exactly that gap into go.work.sum (from the
    // module cache), where reprove refuses it; with go's go.work.sum, reprove's check passes.
    git(&p.repo, &["checkout", "-q", "v1.0.0"]);
    fs::write(p.repo.join("greet/go.sum"), "").unwrap_or_else(|e| panic!("{e}"));
    let missing = match rebuild::steps::gosum::check_workspace(&p.repo) {
        Err(rebuild::RebuildError::MissingGoSum { modules }) => modules,
        other => panic!("{:?}", other.map(|c| c.requires)),
    };
    assert_eq!(missing, ["github.com/spf13/pflag@v1.0.5"]);
    let mut go = Command::new("go");
    hermetic_go_env(&mut go)
        .current_dir(&p.repo)
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("GOFLAGS", "-mod=readonly")
        .env("GOMODCACHE", harness::shared_cache())
        .env("GOWORK", p.repo.join("go.work"))
        .args(["list", "-deps", "./..."]);
    run_ok(&mut go).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(go_work_sum_modules(&p.repo), missing, "go filled another gap than the one reprove reports");
    if let Err(e) = rebuild::steps::gosum::check_workspace(&p.repo) {
        panic!("with go's go.work.sum: {e}");
    }
    fs::remove_file(p.repo.join("go.work.sum")).unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["commit", "-q", "-am", "drop the library's go.sum"]);
    let fetched = proxy.requests().len();
    let c: Vec<&str> = base.iter().copied().chain(["--rev", "HEAD", "--reference", &reference_s]).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &c);
    status(&out, &doc, 2);
    let err = &doc["error"];
    assert_eq!((err["step"].as_str(), err["code"].as_str()), (Some("go-sum"), Some("missing-go-sum")), "{doc:#}");
    assert_eq!(err["modules"], serde_json::json!(["github.com/spf13/pflag@v1.0.5"]), "{doc:#}");
    assert_eq!(proxy.requests().len(), fetched, "nothing may be fetched before the workspace's sums are complete");

    // A reference built in the workspace and a commit without go.work: a clear error, no other mode.
    fs::remove_file(p.repo.join("go.work")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(
        p.repo.join("greet/go.sum"),
        fs::read(support::repo_root().join("tests/fixtures/verify/app/go.sum")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["commit", "-q", "-am", "no workspace"]);
    let (out, doc) = verify(&proxy.url(), &cache, &c);
    status(&out, &doc, 2);
    assert_eq!(doc["error"]["code"], "go-workspace", "{doc:#}");
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("no go.work")), "{doc:#}");
}

/// A base image with this machine's `git` and the libraries it loads (from `ldd`), enough for
/// the builtins `go build -buildvcs=true` runs (status, log, tag, cat-file…).
pub(super) fn git_layer() -> Vec<u8> {
    let out = run_ok(Command::new("ldd").arg("/usr/bin/git")).unwrap_or_else(|e| panic!("{e}")).stdout_str();
    let mut files = vec!["/usr/bin/git".to_string()];
    for line in out.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(p.to_string());
        }
    }
    let mut tar = TarBuilder::new();
    let mut dirs = std::collections::BTreeSet::new();
    for f in &files {
        let rel = f.trim_start_matches('/');
        let mut acc = String::new();
        for comp in rel.split('/').collect::<Vec<_>>().split_last().map(|(_, d)| d.to_vec()).unwrap_or_default() {
            acc = if acc.is_empty() { comp.to_string() } else { format!("{acc}/{comp}") };
            if dirs.insert(acc.clone()) {
                tar.dir(&acc, 0o755);
            }
        }
        tar.file(rel, 0o755, &fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}")));
    }
    tar.finish()
}

/// A toolchain image of the host's Go on a base image of one layer (`layer`, a
/// tar), pushed to `registry`; the reference pinned by digest.
pub(super) fn toolchain_on_base(registry: &Registry, name: &str, layer: Vec<u8>) -> String {
    let base_ref = registry.reference(&format!("bases/{name}:1"));
    let layer = Layer::from_tar(&layer, LayerCompression::Gzip, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
    let config = registry::config(&["PATH=/usr/local/bin:/usr/bin:/bin"]);
    let base = Image::assemble(config, vec![layer], ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
    base.push_blocking(&registry::io(), &base_ref, &registry.options()).unwrap_or_else(|e| panic!("{e}"));
    let mut go = Command::new("go");
    hermetic_go_env(&mut go).args(["env", "GOROOT", "GOVERSION"]);
    let env = run_ok(&mut go).unwrap_or_else(|e| panic!("{e}")).stdout_str();
    let mut lines = env.lines();
    let (goroot, version) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    let tag = format!("{}/toolchains/go-{name}:{}", registry.addr, version.trim_start_matches("go"));
    let based = format!("{base_ref}@{}", base.manifest_digest);
    let built = run_ok(
        Command::new(reprove_bin())
            .args(["toolchain", "build", "--goroot", goroot, "--base", &based])
            .args(["--tag", &tag, "--push", "--json"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let digest: Value = serde_json::from_slice(&built.stdout).unwrap_or_else(|e| panic!("{e}"));
    format!("{tag}@{}", digest["digest"].as_str().unwrap_or_default())
}

/// A layer with `/usr/local/bin/stamp`, a static `-toolexec` wrapper that
/// links the time of the link into `main.version`: a build that depends on
/// the clock, as a C compiler expanding `__TIME__` would make one.
fn clock_stamping_layer(dir: &Path) -> Vec<u8> {
    let src = dir.join("stamp");
    fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
    fs::write(src.join("go.mod"), "module stamp\n\ngo 1.19\n").unwrap_or_else(|e| panic!("{e}"));
    let program = r#"package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(args[0]) == "link" && len(args) > 1 && args[1] != "-V=full" {
		stamp := "-X=main.version=" + strconv.FormatInt(time.Now().Unix(), 10)
		args = append([]string{args[0], stamp}, args[1:]...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if e, ok := err.(*exec.ExitError); ok {
			os.Exit(e.ExitCode())
		}
		os.Exit(1)
	}
}
"#;
    fs::write(src.join("main.go"), program).unwrap_or_else(|e| panic!("{e}"));
    let bin = dir.join("stamp-bin");
    let mut go = Command::new("go");
    hermetic_go_env(&mut go).current_dir(&src).env("CGO_ENABLED", "0").env("GOWORK", "off").env("GOPROXY", "off");
    run_ok(go.args(["build", "-trimpath", "-o"]).arg(&bin).arg(".")).unwrap_or_else(|e| panic!("{e}"));
    let mut tar = TarBuilder::new();
    for d in ["usr", "usr/local", "usr/local/bin"] {
        tar.dir(d, 0o755);
    }
    tar.file("usr/local/bin/stamp", 0o755, &fs::read(&bin).unwrap_or_else(|e| panic!("{e}")));
    tar.finish()
}

#[test]
fn vcs_stamping_is_reproduced_from_a_clean_checkout_with_git_in_the_image() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let cache = p.path("cache");
    // The release pipeline builds from its checkout with VCS stamping (Go's default).
    let reference = p.path("verifyapp-vcs");
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd)
        .current_dir(&p.repo)
        .env("GOPROXY", "off")
        .env("GOMODCACHE", harness::shared_cache())
        .env("CGO_ENABLED", "0")
        .env("GOWORK", "off")
        .args(["build", "-trimpath", "-buildvcs=true", "-o"])
        .arg(&reference)
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let bi = goinfo::read_build_info_file(&reference).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bi.setting("vcs.revision").map(|v| v.to_string()), Some(p.commit.clone()));
    let reference_s = reference.display().to_string();
    let repo = p.repo.display().to_string();

    // A toolchain image without git: an input error that says what to do.
    let plain = image(&registry);
    let a = [
        "--source",
        repo.as_str(),
        "--toolchain",
        &plain,
        "--from-reference",
        "--ldflags=",
        "--reference",
        &reference_s,
    ];
    let (out, doc) = verify(&proxy.url(), &cache, &a);
    status(&out, &doc, 2);
    assert_eq!(doc["error"]["code"], "vcs-needs-git", "{doc:#}");
    assert!(out.stderr_str().contains("--base"), "{}", out.stderr_str());

    // The same Go on a base image with git: reproduced, stamps and all.
    let with_git = toolchain_on_base(&registry, "git", git_layer());
    let a = ["--source", repo.as_str(), "--toolchain", &with_git, "--from-reference", "--ldflags="];
    let a: Vec<&str> = a.iter().copied().chain(["--reference", &reference_s]).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &a);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["buildvcs"], "true");
    assert_eq!(doc["recipe"]["buildEnv"]["GIT_CONFIG_NOSYSTEM"], "1");
}

#[test]
fn check_names_the_variation_that_changes_the_output() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let cache = p.path("cache");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(reprove_bin());
    goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", proxy.url())]);
    // Without -trimpath the build directory is embedded: only that variation changes the output.
    // runc as root applies the umask and the user id (bwrap and rootless runc record them as not varied).
    cmd.args(["check", "--source"]).arg(&p.repo).args(["--toolchain", &toolchain, "--env", "CGO_ENABLED=0", "--json"]);
    cmd.arg("--cache-dir").arg(&cache).args(["--runtime", "runc"]);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", out.stdout_str(), out.stderr_str()));
    schema::assert_valid("check.schema.json", &doc);
    status(&out, &doc, 1);
    assert_eq!(doc["verdict"], "not-reproducible");
    let outcomes: Vec<(&str, bool)> = doc["variations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or_default(), v["identical"].as_bool().unwrap_or(true)))
        .collect();
    if rustix::process::geteuid().is_root() {
        // Go's output does not depend on the umask or the user: both ran and changed nothing.
        assert_eq!(
            outcomes,
            [
                ("time", true),
                ("build-dir", false),
                ("environment", true),
                ("umask", true),
                ("user-id", true),
                ("warm-cache", true)
            ],
            "{doc:#}"
        );
        let not_varied: Vec<&str> =
            doc["notVaried"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert_eq!(not_varied.len(), 1, "{doc:#}");
        assert!(not_varied[0].starts_with("clock: "), "{doc:#}");
    } else {
        // Rootless runc maps only the caller: the user id is not varied, and the report says why.
        assert_eq!(
            outcomes,
            [("time", true), ("build-dir", false), ("environment", true), ("umask", true), ("warm-cache", true)],
            "{doc:#}"
        );
        let not_varied = doc["notVaried"].to_string();
        assert!(not_varied.contains("user-id: runc cannot run the build as another user"), "{doc:#}");
    }
    let codes: Vec<&str> =
        doc["variations"][1]["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(codes.contains(&"embedded-path"), "{doc:#}");
    assert_eq!(doc["inputs"]["source"]["commit"], p.commit.as_str());
    assert!(doc["summary"].as_str().is_some_and(|s| s.contains("build-dir")), "{doc:#}");

    // A build that links the clock in (a -toolexec wrapper in the image): the time
    // variation, the control, differs, and the summary says the other differences
    // cannot be put on their variations.
    let stamping = toolchain_on_base(&registry, "stamp", clock_stamping_layer(&p.path("")));
    let mut cmd = Command::new(reprove_bin());
    goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", proxy.url())]);
    cmd.args(["check", "--source"]).arg(&p.repo).args(["--toolchain", &stamping, "--env", "CGO_ENABLED=0"]);
    cmd.args(["--env", "GOFLAGS=-toolexec=/usr/local/bin/stamp", "--trimpath", "--ldflags=", "--json"]);
    cmd.arg("--cache-dir").arg(&cache).args(["--runtime", "runc"]);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", out.stdout_str(), out.stderr_str()));
    schema::assert_valid("check.schema.json", &doc);
    status(&out, &doc, 1);
    assert_eq!(
        (doc["variations"][0]["name"].as_str(), doc["variations"][0]["identical"].as_bool()),
        (Some("time"), Some(false)),
        "{doc:#}"
    );
    assert!(doc["summary"].as_str().is_some_and(|s| s.contains("depends on the time")), "{doc:#}");
    let timings: Vec<&str> =
        doc["timings"].as_array().into_iter().flatten().filter_map(|t| t["step"].as_str()).collect();
    assert!(timings.contains(&"build:time"), "{doc:#}");
}

/// The CI templates as their platforms run them: the GitHub composite action's
/// `run` script with its `env` mapped from the inputs (defaults applied), and
/// the GitLab hidden job's `script` with its variables; both without
/// `--toolchain`, so the image comes from the commit's `reprove.lock`. A
/// faithful reference passes the gate; one the commit does not reproduce fails it.
fn ci_templates_gate_on_the_verdict(p: &Project, proxy: &str, cache: &Path, stamped: &str) {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/templates");
    let yaml = |path: PathBuf| -> serde_yaml_ng::Value {
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let text = |v: &serde_yaml_ng::Value| v.as_str().map(str::to_string).unwrap_or_default();
    let unstamped = p.reference("verifyapp-ci-unstamped", "go", &[]).display().to_string();
    let repo = p.repo.display().to_string();
    let cache_arg = format!("--cache-dir={}", cache.display());
    let shell = |script: &str, vars: &[(String, String)]| -> Outcome {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = Command::new("bash");
        let env = [("GOPROXY", proxy.to_string())];
        goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused-host-modcache"), &env);
        // As the runners do: GitHub runs `bash --noprofile --norc -eo pipefail`, GitLab a bash script with -e.
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script]).current_dir(p.path(""));
        cmd.env_remove("GITHUB_STEP_SUMMARY");
        cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
    };
    let report = |path: &Path| -> Value {
        let doc: Value = serde_json::from_slice(&fs::read(path).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        schema::assert_valid("report.schema.json", &doc);
        doc
    };

    // GitHub: inputs → the step's env (`${{ inputs.NAME }}`), `${{ github.sha }}` → the commit.
    let action = yaml(templates.join("github/action.yml"));
    let step = &action["runs"]["steps"][0];
    let script = text(&step["run"]);
    assert!(!script.is_empty(), "no run script in action.yml");
    let github = |reference: &str, tag: &str| -> (Outcome, Value, String) {
        let (report_path, summary) = (p.path(&format!("gh-{tag}.json")), p.path(&format!("gh-{tag}-summary.md")));
        let given = [
            ("reference", reference.to_string()),
            ("source", repo.clone()),
            ("rev", "locked".to_string()),
            ("args", cache_arg.clone()),
            ("report", report_path.display().to_string()),
            ("junit", p.path(&format!("gh-{tag}.xml")).display().to_string()),
            ("reprove", reprove_bin().display().to_string()),
        ];
        let mut vars = vec![("GITHUB_STEP_SUMMARY".to_string(), summary.display().to_string())];
        for (name, value) in step["env"].as_mapping().into_iter().flatten() {
            let expr = text(value);
            let input = expr.trim_start_matches("${{ inputs.").trim_end_matches(" }}");
            assert!(input != expr, "env {name:?} is not an input: {expr}");
            let value = given.iter().find(|(k, _)| *k == input).map(|(_, v)| v.clone()).unwrap_or_else(|| {
                let default = text(&action["inputs"][input]["default"]);
                assert!(!default.contains("${{"), "input {input} needs a value in this test: {default}");
                default
            });
            vars.push((text(name), value));
        }
        assert!(vars.iter().any(|(k, v)| k == "TOOLCHAIN" && v.is_empty()), "{vars:?}");
        let out = shell(&script, &vars);
        let doc = report(&report_path);
        (out, doc, fs::read_to_string(&summary).unwrap_or_default())
    };
    let (out, doc, summary) = github(stamped, "pass");
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    assert_eq!(
        (doc["verdict"].as_str(), doc["inputs"]["toolchain"]["from"].as_str()),
        (Some("reproduced"), Some("reprove.lock"))
    );
    assert!(summary.contains("reproduced"), "job summary: {summary}");
    let (out, doc, summary) = github(&unstamped, "fail");
    assert_eq!((out.status, doc["verdict"].as_str()), (Some(1), Some("not-reproduced")), "{}", out.stderr_str());
    assert!(summary.contains("ldflags"), "job summary: {summary}");

    // GitLab: the hidden job's variables, then the job's own, then its script.
    let gitlab = yaml(templates.join("gitlab/reprove-verify.gitlab-ci.yml"));
    let job = &gitlab[".reprove-verify"];
    let script: Vec<String> = job["script"].as_sequence().into_iter().flatten().map(text).collect();
    assert!(!script.is_empty(), "no script in the GitLab template");
    let gitlab_job = |reference: &str, tag: &str| -> (Outcome, Value) {
        let dir = p.path(&format!("gl-{tag}"));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut vars: Vec<(String, String)> = Vec::new();
        for (name, value) in job["variables"].as_mapping().into_iter().flatten() {
            let value = text(value).replace("$CI_COMMIT_SHA", "locked");
            vars.push((text(name), value));
        }
        for (k, v) in [
            ("REPROVE", reprove_bin().display().to_string()),
            ("REPROVE_SOURCE", repo.clone()),
            ("REPROVE_REFERENCE", reference.to_string()),
            ("REPROVE_ARGS", cache_arg.clone()),
        ] {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v));
        }
        let script = format!("cd {}\n{}", dir.display(), script.join("\n"));
        let out = shell(&script, &vars);
        (out, report(&dir.join("reprove-report.json")))
    };
    let (out, doc) = gitlab_job(stamped, "pass");
    assert_eq!((out.status, doc["verdict"].as_str()), (Some(0), Some("reproduced")), "{}", out.stderr_str());
    assert_eq!(doc["inputs"]["toolchain"]["from"], "reprove.lock");
    let (out, doc) = gitlab_job(&unstamped, "fail");
    assert_eq!((out.status, doc["verdict"].as_str()), (Some(1), Some("not-reproduced")), "{}", out.stderr_str());
}

/// `reprove check` run by an unprivileged user (uid 65534, through `setpriv`)
/// when the suite runs as root, so the rootless path runs everywhere: rootless
/// runc maps only the caller, so the user id is listed as not varied, with the
/// reason, and every other variation still runs.
#[test]
fn check_as_an_unprivileged_user_says_what_it_could_not_vary() {
    if !rustix::process::geteuid().is_root() {
        // Then check_names_the_variation_that_changes_the_output runs this path itself.
        eprintln!("not root: the rootless path is covered by check_names_the_variation_that_changes_the_output");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    // Everything the user touches is its own, in a directory it can reach.
    let home = tempfile::Builder::new()
        .prefix("reprove-unprivileged-")
        .tempdir_in(std::env::temp_dir())
        .unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
    let repo = home.path().join("repo");
    run_ok(Command::new("cp").arg("-a").arg(&p.repo).arg(&repo)).unwrap_or_else(|e| panic!("{e}"));
    fs::create_dir_all(home.path().join("run")).unwrap_or_else(|e| panic!("{e}"));
    run_ok(Command::new("chown").args(["-R", "65534:65534"]).arg(home.path())).unwrap_or_else(|e| panic!("{e}"));

    let mut cmd = Command::new("setpriv");
    let vars = [
        ("GOPROXY", proxy.url()),
        ("HOME", home.path().display().to_string()),
        ("XDG_RUNTIME_DIR", home.path().join("run").display().to_string()),
    ];
    goenv::base_env(&mut cmd, home.path(), &home.path().join("unused"), &vars);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(reprove_bin());
    cmd.args(["check", "--source"]).arg(&repo).args(["--toolchain", &toolchain, "--env", "CGO_ENABLED=0", "--json"]);
    cmd.arg("--cache-dir").arg(home.path().join("cache")).args(["--runtime", "runc"]);
    let out = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
    };
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", out.stdout_str(), out.stderr_str()));
    schema::assert_valid("check.schema.json", &doc);
    status(&out, &doc, 1);
    let outcomes: Vec<(&str, bool)> = doc["variations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or_default(), v["identical"].as_bool().unwrap_or(true)))
        .collect();
    assert_eq!(
        outcomes,
        [("time", true), ("build-dir", false), ("environment", true), ("umask", true), ("warm-cache", true)],
        "{doc:#}"
    );
    let not_varied: Vec<&str> = doc["notVaried"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(not_varied.len(), 2, "{doc:#}");
    assert!(not_varied[1].starts_with("user-id: runc cannot run the build as another user"), "{doc:#}");
    assert_eq!(doc["inputs"]["source"]["commit"], p.commit.as_str());
    // The user's cache holds what the run fetched: nothing was written as root.
    let owner =
        |path: &Path| std::os::unix::fs::MetadataExt::uid(&fs::metadata(path).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(owner(&home.path().join("cache/modcache")), 65534);
}

/// A `-toolexec` wrapper built here from Go source (static, `CGO_ENABLED=0`), as bytes.
/// It runs the real tool with its arguments, so `-V=full` gives the tool's own
/// version line and go's action ids are those of a build without it. With
/// `poison`, after the tool ran it overwrites the content of every output file of
/// the build cache (`$GOCACHE/??/*-d`) that go would link, keeping its size and
/// the archive header go checks (up to the `build id` line), so go takes the
/// entries as valid.
fn toolexec_wrapper(dir: &Path, name: &str, poison: bool) -> Vec<u8> {
    let src = dir.join(name);
    fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
    fs::write(src.join("go.mod"), format!("module {name}\n\ngo 1.21\n")).unwrap_or_else(|e| panic!("{e}"));
    let garble = if poison {
        r#"
	if len(os.Args) > 2 && os.Args[2] == "-V=full" {
		return
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("GOCACHE"), "??", "*-d"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(data, []byte("!<arch>\n")) {
			continue
		}
		keep := 0
		for i := 0; i < 4 && keep < len(data); i++ {
			j := bytes.IndexByte(data[keep:], '\n')
			if j < 0 {
				keep = len(data)
				break
			}
			keep += j + 1
		}
		for i := keep; i < len(data); i++ {
			data[i] = 'Z'
		}
		os.WriteFile(f, data, 0o644)
	}"#
    } else {
        ""
    };
    let imports = if poison { "\t\"bytes\"\n\t\"path/filepath\"\n" } else { "" };
    let program = format!(
        r#"package main

import (
{imports}	"os"
	"os/exec"
)

func main() {{
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {{
		if e, ok := err.(*exec.ExitError); ok {{
			os.Exit(e.ExitCode())
		}}
		os.Exit(1)
	}}{garble}
}}
"#
    );
    fs::write(src.join("main.go"), program).unwrap_or_else(|e| panic!("{e}"));
    let bin = dir.join(format!("{name}-bin"));
    let mut go = Command::new("go");
    hermetic_go_env(&mut go).current_dir(&src).env("CGO_ENABLED", "0").env("GOWORK", "off").env("GOPROXY", "off");
    run_ok(go.args(["build", "-trimpath", "-o"]).arg(&bin).arg(".")).unwrap_or_else(|e| panic!("{e}"));
    fs::read(&bin).unwrap_or_else(|e| panic!("{e}"))
}

/// Commits `tools/wrap` (mode 0755) and `files` into the project; the new commit id.
fn commit_with_wrapper(p: &Project, wrap: &[u8], files: &[(&str, String)]) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let tools = p.repo.join("tools");
    fs::create_dir_all(&tools).unwrap_or_else(|e| panic!("{e}"));
    fs::write(tools.join("wrap"), wrap).unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(tools.join("wrap"), fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in files {
        fs::write(p.repo.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    git(&p.repo, &["add", "."]);
    git(&p.repo, &["commit", "-q", "-m", "tools/wrap"]);
    git(&p.repo, &["rev-parse", "HEAD"])
}

/// Cache poisoning across two sources: A and B, different sources with the same
/// recipe (`GOFLAGS=-toolexec=/src/tools/wrap`, given by the verifier), share
/// the cache directory. A's wrapper overwrites the build cache's objects after
/// each tool ran; go's action ids of the packages both build are the same. B
/// verified again after A must still be reproduced: A's build cannot reach B's
/// build cache.
#[test]
fn a_build_that_writes_into_the_build_cache_cannot_change_another_sources_verdict() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let b = Project::new();
    let a = Project::new();
    let wrappers = b.path("wrappers");
    let b_commit = commit_with_wrapper(&b, &toolexec_wrapper(&wrappers, "benign", false), &[]);
    let main_go = fs::read_to_string(a.repo.join("main.go")).unwrap_or_else(|e| panic!("{e}"));
    let other = main_go.replace("hello %s from", "hi %s from");
    assert_ne!(other, main_go);
    let a_commit = commit_with_wrapper(&a, &toolexec_wrapper(&wrappers, "poison", true), &[("main.go", other)]);
    let reference = b.reference("verifyapp", "go", &[]).display().to_string();
    let cache = b.path("cache");
    let args = |p: &Project, rev: &str| -> Vec<String> {
        let repo = p.repo.display().to_string();
        let a = ["--source", &repo, "--rev", rev, "--toolchain", &toolchain, "--from-reference", "--ldflags="];
        let b = ["--env", "GOFLAGS=-toolexec=/src/tools/wrap", "--reference", &reference, "--runtime", "runc"];
        a.iter().chain(b.iter()).map(|s| s.to_string()).collect()
    };
    let b_args = args(&b, &b_commit);
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();

    let (out, doc) = verify(&proxy.url(), &cache, &b_args);
    status(&out, &doc, 0);
    assert_eq!(
        doc["recipe"]["exec"],
        serde_json::json!([{"flag": "-toolexec", "value": "/src/tools/wrap", "origin": "flag"}]),
        "{doc:#}"
    );
    let a_args = args(&a, &a_commit);
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let (_, doc) = verify(&proxy.url(), &cache, &a_args);
    assert_ne!(doc["verdict"], "reproduced", "{doc:#}");
    let steps: Vec<&str> = doc["timings"].as_array().into_iter().flatten().filter_map(|t| t["step"].as_str()).collect();
    assert!(steps.contains(&"build"), "A's build did not run: {doc:#}");

    let (out, doc) = verify(&proxy.url(), &cache, &b_args);
    status(&out, &doc, 0);
    assert_eq!(doc["verdict"], "reproduced", "{doc:#}");
    // One build cache per source.
    let markers = fs::read_dir(cache.join("gocache"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".toolchain"))
        .count();
    assert_eq!(markers, 2);
}

/// `-toolexec` in the commit's own reprove.toml: refused (exit 2, code
/// `recipe-exec-refused`, naming the value and the file) unless
/// `--allow-recipe-exec`; allowed, the report, the provenance and the VSA
/// record it. `reprove recipe` shows it and says it needs the flag. And
/// `-modfile` given by the verifier: go.sum is checked against the file's own
/// .sum, and the report records the files go read.
#[test]
fn recipe_exec_from_the_commit_is_refused_unless_allowed_and_recorded() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let toml = "[build]\nenv = { GOFLAGS = \"-toolexec=/src/tools/wrap\", CGO_ENABLED = \"0\" }\n".to_string();
    let commit =
        commit_with_wrapper(&p, &toolexec_wrapper(&p.path("wrappers"), "benign", false), &[("reprove.toml", toml)]);
    let reference = p.reference("verifyapp", "go", &[]).display().to_string();
    let cache = p.path("cache");
    let repo = p.repo.display().to_string();
    let base = ["--source", &repo, "--rev", &commit, "--toolchain", &toolchain, "--from-reference", "--ldflags="];
    let base: Vec<&str> = base.iter().copied().chain(["--reference", &reference]).collect();

    // reprove recipe shows it, and says what it would need.
    let recipe =
        run_ok(Command::new(reprove_bin()).arg("recipe").arg("-C").arg(&p.repo)).unwrap_or_else(|e| panic!("{e}"));
    let text = recipe.stdout_str();
    assert!(text.contains("-toolexec=/src/tools/wrap") && text.contains("--allow-recipe-exec"), "{text}");
    let recipe = run_ok(Command::new(reprove_bin()).arg("recipe").arg("-C").arg(&p.repo).arg("--json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&recipe.stdout).unwrap_or_else(|e| panic!("{e}"));
    schema::assert_valid("recipe-output.schema.json", &doc);
    assert_eq!(doc["exec"][0]["needs_allow_recipe_exec"], true, "{doc:#}");
    assert_eq!(doc["exec"][0]["origin"]["detail"], "reprove.toml", "{doc:#}");

    // Not allowed: an input error naming the value and the file; nothing built.
    let (out, doc) = verify(&proxy.url(), &cache, &base);
    status(&out, &doc, 2);
    let err = &doc["error"];
    assert_eq!(
        (err["step"].as_str(), err["class"].as_str(), err["code"].as_str()),
        (Some("recipe"), Some("input"), Some("recipe-exec-refused")),
        "{doc:#}"
    );
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.contains("reprove.toml") && message.contains("-toolexec=/src/tools/wrap"), "{message}");
    assert!(out.stderr_str().contains("--allow-recipe-exec"), "{}", out.stderr_str());
    assert_eq!(doc["rebuilt"], Value::Null);
    assert!(!cache.join("gocache").exists(), "a refused recipe was built");

    // Allowed: reproduced, and recorded in the report, the provenance and the VSA.
    let keys = p.path("keys");
    fs::create_dir_all(&keys).unwrap_or_else(|e| panic!("{e}"));
    run_ok(Command::new(reprove_bin()).current_dir(&keys).env("COSIGN_PASSWORD", "pw").args([
        "keygen",
        "--output-key-prefix",
        "k",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let att = p.path("attestations");
    let key = keys.join("k.key");
    let allowed: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--allow-recipe-exec", "--attest", "--key", key.to_str().unwrap_or_default()])
        .chain(["--out", att.to_str().unwrap_or_default()])
        .collect();
    let (out, doc) = verify_with_env(&proxy.url(), &cache, &allowed, &[("COSIGN_PASSWORD", Path::new("pw"))]);
    status(&out, &doc, 0);
    let exec =
        serde_json::json!([{"flag": "-toolexec", "value": "/src/tools/wrap", "origin": "recipe-file:reprove.toml"}]);
    assert_eq!(doc["recipe"]["exec"], exec, "{doc:#}");
    let statement = |file: &str| -> Value {
        let line = fs::read_to_string(att.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let envelope: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}"));
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_slice(&payload).unwrap_or_else(|e| panic!("{e}"))
    };
    let provenance = statement("verifyapp.provenance.intoto.jsonl");
    let parameters = &provenance["predicate"]["buildDefinition"]["externalParameters"];
    schema::assert_valid("provenance-buildtype.schema.json", parameters);
    assert_eq!(parameters["exec"], exec, "{provenance:#}");
    let vsa = statement("verifyapp.vsa.intoto.jsonl");
    schema::assert_valid("vsa.schema.json", &vsa["predicate"]);
    assert_eq!(vsa["predicate"]["reproveRecipeExec"], exec, "{vsa:#}");

    // The text output warns.
    let mut cmd = Command::new(reprove_bin());
    goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", proxy.url())]);
    cmd.arg("verify").args(&base).arg("--allow-recipe-exec").arg("--cache-dir").arg(&cache);
    let out = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    assert!(
        out.stdout_str().contains("WARNING:    -toolexec=/src/tools/wrap (from recipe-file:reprove.toml)"),
        "{}",
        out.stdout_str()
    );

    // -modfile from the verifier: go reads alt.mod and alt.sum, and so does the check.
    git(&p.repo, &["checkout", "-q", "-b", "modfile", &p.commit]);
    let go_mod = fs::read_to_string(p.repo.join("go.mod")).unwrap_or_default();
    let go_sum = fs::read_to_string(p.repo.join("go.sum")).unwrap_or_default();
    fs::write(p.repo.join("alt.mod"), format!("{go_mod}// the alternative\n")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(p.repo.join("alt.sum"), "").unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "."]);
    git(&p.repo, &["commit", "-q", "-m", "alt.mod without sums"]);
    let m = ["--source", &repo, "--rev", "modfile", "--toolchain", &toolchain, "--from-reference", "--ldflags="];
    let m: Vec<&str> =
        m.iter().copied().chain(["--reference", &reference, "--env", "GOFLAGS=-modfile=/src/alt.mod"]).collect();
    let (out, doc) = verify(&proxy.url(), &cache, &m);
    status(&out, &doc, 2);
    assert_eq!(
        (doc["error"]["step"].as_str(), doc["error"]["code"].as_str()),
        (Some("go-sum"), Some("missing-go-sum")),
        "alt.sum lacks pflag, as go would find: {doc:#}"
    );
    fs::write(p.repo.join("alt.sum"), go_sum.lines().rev().map(|l| format!("{l}\n")).collect::<String>())
        .unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["commit", "-q", "-am", "alt.sum"]);
    let (out, doc) = verify(&proxy.url(), &cache, &m);
    status(&out, &doc, 0);
    assert_eq!(doc["inputs"]["goMod"]["path"], "alt.mod", "{doc:#}");
    assert_eq!(doc["inputs"]["goSum"]["path"], "alt.sum", "{doc:#}");
    let alt = fs::read(p.repo.join("alt.mod")).unwrap_or_default();
    let alt_sha = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&alt));
    assert_eq!(doc["inputs"]["goMod"]["sha256"], alt_sha.as_str());
    assert_eq!(doc["recipe"]["exec"][0]["flag"], "-modfile", "{doc:#}");
}

/// `tests/fixtures/verify/evil` (a `-toolexec` wrapper that attacks the build
/// output, see its source) built on the host from source, static, into `dir`.
fn build_evil(dir: &Path) -> PathBuf {
    let out = dir.join("evil");
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd)
        .current_dir(support::repo_root().join("tests/fixtures/verify/evil"))
        .env("CGO_ENABLED", "0")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOWORK", "off")
        .args(["build", "-trimpath", "-o"])
        .arg(&out)
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("building the attack tool: {e}"));
    out
}

/// Commits `tools/evil` and `tools/mode` ("MODE MARKER": what the wrapper does
/// once the linker runs) into the project; returns the commit.
fn commit_attack(p: &Project, evil: &Path, mode: &str, marker: &str) -> String {
    let tools = p.repo.join("tools");
    fs::create_dir_all(&tools).unwrap_or_else(|e| panic!("{e}"));
    if !tools.join("evil").exists() {
        fs::copy(evil, tools.join("evil")).unwrap_or_else(|e| panic!("{e}"));
    }
    fs::write(tools.join("mode"), format!("{mode} {marker}\n")).unwrap_or_else(|e| panic!("{e}"));
    git(&p.repo, &["add", "tools"]);
    git(&p.repo, &["commit", "-q", "-m", &format!("tools: {mode}")]);
    git(&p.repo, &["rev-parse", "HEAD"])
}

/// The pids of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        if cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

fn unique_marker(what: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("reprove-evil-{what}-{}-{nanos}", std::process::id())
}

/// The race of issue 12: a commit whose build runs `tools/evil` (through the
/// verifier's own `--env GOFLAGS=-toolexec=…`), which swaps the output for a
/// symlink to `/proc/self/cwd/dist/hello` once `go build` closed it. On the
/// host `/proc/self` is reprove, run from the directory of the reference: it
/// read the reference itself as the rebuilt binary, and a backdoored
/// `dist/hello` was "reproduced". Now the output is read only after the
/// sandbox is gone, without following a symlink, and must be a regular file
/// with one link: a symlink, a second hard link or a FIFO is verdict `error`,
/// class `security`, code `output-tampered`, exit 3, on runc and bwrap; with
/// `--attest` nothing is signed. No process of the attack outlives the run.
#[test]
fn a_build_that_swaps_its_output_gets_no_verdict_and_nothing_is_signed() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let evil = build_evil(p.tmp.path());
    fs::create_dir_all(p.path("dist")).unwrap_or_else(|e| panic!("{e}"));
    // A backdoored release: not what the commit builds.
    p.reference("dist/hello", "go", &["-ldflags=-X main.version=backdoored"]);
    let cache = p.path("cache");
    let repo = p.repo.display().to_string();
    let keys = p.path("keys");
    fs::create_dir_all(&keys).unwrap_or_else(|e| panic!("{e}"));
    run_ok(Command::new(reprove_bin()).current_dir(&keys).env("COSIGN_PASSWORD", "pw").args([
        "keygen",
        "--output-key-prefix",
        "k",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let key = keys.join("k.key").display().to_string();
    let cases = [
        ("runc", "symlink", true),
        ("bwrap", "symlink", true),
        ("runc", "hardlink", false),
        ("bwrap", "hardlink", false),
        ("runc", "fifo", false),
        ("bwrap", "fifo", false),
    ];
    for (runtime, mode, attest) in cases {
        let marker = unique_marker(mode);
        let commit = commit_attack(&p, &evil, mode, &marker);
        let att = p.path(&format!("attestations-{runtime}-{mode}"));
        let att_s = att.display().to_string();
        let mut args = vec![
            "--source",
            &repo,
            "--rev",
            &commit,
            "--toolchain",
            &toolchain,
            "--from-reference",
            "--ldflags=",
            "--env",
            "GOFLAGS=-toolexec=/src/tools/evil",
            "--reference",
            "dist/hello",
            "--runtime",
            runtime,
        ];
        if attest {
            args.extend(["--attest", "--key", &key, "--out", &att_s]);
        }
        let pw = PathBuf::from("pw");
        let (out, doc) = verify_in(p.tmp.path(), &proxy.url(), &cache, &args, &[("COSIGN_PASSWORD", &pw)]);
        let case = format!("{runtime} {mode}");
        assert_eq!(doc["verdict"], "error", "{case}: {doc:#}");
        let err = &doc["error"];
        assert_eq!(
            (err["step"].as_str(), err["class"].as_str(), err["code"].as_str()),
            (Some("build"), Some("security"), Some("output-tampered")),
            "{case}: {doc:#}"
        );
        status(&out, &doc, 3);
        assert!(doc["rebuilt"].is_null(), "{case}: {doc:#}");
        if attest {
            assert!(out.stderr_str().contains("nothing is attested"), "{case}: {}", out.stderr_str());
            let written: Vec<_> = fs::read_dir(&att).into_iter().flatten().flatten().map(|e| e.path()).collect();
            assert!(written.is_empty(), "{case}: attestations were written: {written:?}");
        }
        let left = processes_with(&marker);
        assert!(left.is_empty(), "{case}: processes of the build outlived the run: {left:?}");
    }
}

/// A commit whose build leaves a process behind when `go build` exits (the
/// wrapper starts a sleeper in a session of its own that would write into
/// `/out` 3 s later): the verdict is the same as without it, the late write
/// never lands, and no process of the build is left on the host, on runc and bwrap.
#[test]
fn a_process_left_running_by_the_build_dies_with_the_sandbox() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let evil = build_evil(p.tmp.path());
    fs::create_dir_all(p.path("dist")).unwrap_or_else(|e| panic!("{e}"));
    p.reference("dist/hello", "go", &[]);
    let cache = p.path("cache");
    let repo = p.repo.display().to_string();
    for runtime in ["runc", "bwrap"] {
        let mut verdicts = Vec::new();
        for mode in ["none", "linger"] {
            let marker = unique_marker(mode);
            let commit = commit_attack(&p, &evil, mode, &marker);
            let keep = p.path(&format!("kept-{runtime}-{mode}"));
            let keep_s = keep.display().to_string();
            let args = [
                "--source",
                &repo,
                "--rev",
                &commit,
                "--toolchain",
                &toolchain,
                "--from-reference",
                "--ldflags=",
                "--env",
                "GOFLAGS=-toolexec=/src/tools/evil",
                "--reference",
                "dist/hello",
                "--runtime",
                runtime,
                "--keep",
                &keep_s,
            ];
            let (out, doc) = verify_in(p.tmp.path(), &proxy.url(), &cache, &args, &[]);
            let case = format!("{runtime} {mode}");
            assert_eq!(out.status, Some(0), "{case}: {doc:#}\n{}", out.stderr_str());
            assert_eq!(doc["verdict"], "reproduced", "{case}: {doc:#}");
            verdicts.push((doc["verdict"].clone(), doc["rebuilt"]["sha256"].clone()));
            assert!(processes_with(&marker).is_empty(), "{case}: a process of the build outlived the run");
            // The kept binary is the one judged.
            let kept_path = doc["rebuilt"]["path"].as_str().unwrap_or_default();
            assert!(Path::new(kept_path).starts_with(&keep), "{case}: {doc:#}");
            let kept = fs::read(kept_path).unwrap_or_else(|e| panic!("{case}: {kept_path}: {e}"));
            assert_eq!(
                Value::from(format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&kept))),
                doc["rebuilt"]["sha256"],
                "{case}"
            );
            if mode == "linger" {
                std::thread::sleep(std::time::Duration::from_secs(4));
                assert!(!keep.join(format!("out/late-{marker}")).exists(), "{case}: the sleeper wrote into /out");
            }
        }
        assert_eq!(verdicts[0], verdicts[1], "{runtime}");
    }
}

/// reprove killed with SIGKILL in the middle of a build (the build hangs in
/// the linker): within a few seconds no process of the sandbox is left, on
/// runc and bwrap; the run's work directory, runc's state and bundle and
/// bwrap's cgroup stay behind, and `reprove toolchain gc` removes them.
#[test]
fn a_killed_verify_leaves_no_running_sandbox_and_gc_removes_what_it_left() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let toolchain = image(&registry);
    let proxy = Server::start(Behavior::Serve(Serve::dir(&goenv::proxy_root())));
    let p = Project::new();
    let evil = build_evil(p.tmp.path());
    fs::create_dir_all(p.path("dist")).unwrap_or_else(|e| panic!("{e}"));
    p.reference("dist/hello", "go", &[]);
    let cache = p.path("cache");
    let repo = p.repo.display().to_string();
    let work_dirs = || -> Vec<String> {
        fs::read_dir(cache.join("work"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let gc = || -> Value {
        let out = run_ok(Command::new(reprove_bin()).args(["toolchain", "gc", "--json", "--cache-dir"]).arg(&cache))
            .unwrap_or_else(|e| panic!("{e}"));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
        schema::assert_valid("toolchain-gc.schema.json", &doc);
        doc
    };
    // podman's container is deleted by reprove's guard; runc and bwrap die with it.
    for runtime in ["runc", "bwrap", "podman"] {
        let marker = unique_marker("hang");
        let commit = commit_attack(&p, &evil, "hang", &marker);
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = Command::new(reprove_bin());
        goenv::base_env(&mut cmd, p.tmp.path(), &cache.join("unused-host-modcache"), &[("GOPROXY", proxy.url())]);
        cmd.arg("verify")
            .args(["--source", &repo, "--rev", &commit, "--toolchain", &toolchain, "--from-reference", "--ldflags="])
            .args(["--env", "GOFLAGS=-toolexec=/src/tools/evil", "--reference", "dist/hello", "--runtime", runtime])
            .arg("--cache-dir")
            .arg(&cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(300);
        while processes_with(&marker).is_empty() {
            assert!(Instant::now() < deadline, "{runtime}: the build did not reach the linker");
            assert!(child.try_wait().ok().flatten().is_none(), "{runtime}: reprove ended before the build hung");
            std::thread::sleep(Duration::from_millis(100));
        }
        // (gc waits for a live run's store lock, so it cannot run now; that a live run's
        // work directory is kept is `rebuild::workdirs`' unit test.)
        assert_eq!(work_dirs().len(), 1, "{runtime}");
        child.kill().unwrap_or_else(|e| panic!("{e}"));
        let _ = child.wait();
        let killed = Instant::now();
        while !processes_with(&marker).is_empty() && killed.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = processes_with(&marker);
        assert!(left.is_empty(), "{runtime}: the sandbox outlived reprove by 5 s: {left:?}");
        assert_eq!(work_dirs().len(), 1, "{runtime}: a killed run leaves its work directory");
        let doc = gc();
        assert_eq!(doc["removed_work_dirs"], 1, "{runtime}: {doc:#}");
        assert!(doc["removed_sandboxes"].as_u64().is_some_and(|n| n >= 1), "{runtime}: {doc:#}");
        assert!(work_dirs().is_empty(), "{runtime}: {:?}", work_dirs());
        sandbox::assert_nothing_left(pid, &marker);
    }
}

// --- verify --attest --push ------------------------------------------------------------

/// The payload of the DSSE envelope in `file` (one `.intoto.jsonl` line, or a Sigstore bundle).
fn statement_in(file: &Path) -> Value {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let doc: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let envelope = if doc["dsseEnvelope"].is_object() { doc["dsseEnvelope"].clone() } else { doc };
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&payload).unwrap_or_else(|e| panic!("{e}"))
}

/// `schemas/attestation-subjects.schema.json`, with a full validator (it uses prefixItems).
fn assert_subjects_follow_the_schema(statement: &Value) {
    let path = support::repo_root().join("schemas/attestation-subjects.schema.json");
    let schema: Value = serde_json::from_str(&fs::read_to_string(path).unwrap_or_default()).unwrap_or_default();
    let validator = jsonschema::options().build(&schema).unwrap_or_else(|e| panic!("{e}"));
    let errors: Vec<String> =
        validator.iter_errors(&statement["subject"]).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{statement:#}");
}

/// `reprove attest verify --image IMAGE --key PUB [--predicate-type T] --json`: exit code and document.
fn attest_verify_image(image: &str, public: &str, predicate_type: Option<&str>) -> (Option<i32>, Value) {
    let mut cmd = Command::new(reprove_bin());
    cmd.args(["attest", "verify", "--key", public, "--image", image, "--json"]);
    if let Some(t) = predicate_type {
        cmd.args(["--predicate-type", t]);
    }
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("attest verify --image {image}: {e}\n{}", out.stderr_str()));
    (out.status, doc)
}

const PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
const VSA_V1: &str = "https://slsa.dev/verification_summary/v1";

/// `verify --reference oci://IMAGE@DIGEST#/bin/app --attest --key … --push`: the signed
/// provenance and VSA name the image (the index digest given, then the platform
/// manifest's), land next to both digests on Debian's registry (the tag schema), and a
/// deploy check holding either digest alone finds and verifies them (`attest verify
/// --image`), as cosign v2 does the legacy ones. Then by a platform manifest's digest,
/// legacy only; a registry that refuses the push after the verdict (exit 3, verdict
/// printed, files kept); and the refusals before any rebuild.
#[test]
fn verify_attest_push_attaches_the_attestations_to_the_reference_image() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let good = fs::read(p.reference("verifyapp", "go", &[])).unwrap_or_else(|e| panic!("{e}"));
    let keys = p.path("keys");
    fs::create_dir_all(&keys).unwrap_or_else(|e| panic!("{e}"));
    run_ok(Command::new(reprove_bin()).current_dir(&keys).env("COSIGN_PASSWORD", "pw").args([
        "keygen",
        "--output-key-prefix",
        "k",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let (key, public) = (keys.join("k.key").display().to_string(), keys.join("k.pub").display().to_string());
    let pw = [("COSIGN_PASSWORD", Path::new("pw"))];

    // An index of two platforms on Debian's registry (no referrers API: the tag schema):
    // this machine's with the release binary, another with other bytes. (The store's
    // pulls do not get along with go-containerregistry's registry, which refuses their
    // Range header: the referrers API path is covered by `attest push` in
    // attest_registry.rs.)
    let api = &s.registry;
    let host = oci::Platform::host().architecture;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let image_of = |arch: &str, bin: &[u8]| {
        let tar = TarBuilder::new().dir("bin", 0o755).file("bin/app", 0o755, bin).finish();
        let layer =
            Layer::from_tar(&tar, LayerCompression::Gzip, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
        let config = serde_json::json!({"architecture": arch, "os": "linux", "config": {"Env": ["PATH=/bin"]}});
        let image = Image::assemble(config, vec![layer], ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
        let tag = api.reference(&format!("releases/pushed:{arch}"));
        image.push_blocking(&registry::io(), &tag, &api.options()).unwrap_or_else(|e| panic!("{e}"));
        image
    };
    let (mine, theirs) = (image_of(&host, &good), image_of(other, b"not this platform"));
    let index = registry::io()
        .block_on(oci::build::push_index(&api.reference("releases/pushed:1.0.0"), &[&mine, &theirs], &api.options()))
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("{}/releases/pushed", api.addr);
    let (at_index, at_platform) = (format!("{name}@{index}"), format!("{name}@{}", mine.manifest_digest));
    let in_index = format!("oci://{name}:1.0.0@{index}#/bin/app");

    // Refused before anything is rebuilt or pulled: --push without --attest, --push-format
    // without --push, --push with a reference that is a file.
    let refused = |extra: &[&str], needle: &str| {
        let o = args(&base(&repo, "HEAD", toolchain), extra);
        let mut cmd = Command::new(reprove_bin());
        goenv::base_env(&mut cmd, &std::env::temp_dir(), &cache.join("unused"), &[("GOPROXY", proxy.clone())]);
        cmd.env("COSIGN_PASSWORD", "pw").arg("verify").args(&o).arg("--cache-dir").arg(p.path("refused-cache"));
        let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status, Some(2), "{extra:?}: {}", out.stderr_str());
        assert!(out.stderr_str().contains(needle), "{extra:?}: no {needle:?} in {}", out.stderr_str());
        assert!(out.stdout.is_empty(), "{extra:?}: a report was printed: {}", out.stdout_str());
    };
    let file = p.path("verifyapp").display().to_string();
    let out_refused = p.path("att-refused").display().to_string();
    refused(&["--reference", &in_index, "--push"], "--attest");
    refused(&["--reference", &in_index, "--attest", "--key", &key, "--push-format", "legacy"], "--push");
    refused(&["--reference", &file, "--attest", "--key", &key, "--out", &out_refused, "--push"], "oci://");
    assert!(!p.path("refused-cache").join("modcache").exists(), "a refused run started the rebuild");
    assert!(!Path::new(&out_refused).exists());

    // By the index digest, with bundles, both layouts (the default).
    let att = p.path("att-index");
    let att_s = att.display().to_string();
    let a = args(
        &base(&repo, "HEAD", toolchain),
        &["--reference", &in_index, "--attest", "--key", &key, "--out", &att_s, "--bundle", "--push"],
    );
    let (out, doc) = verify_with_env(&proxy, cache, &strs(&a), &pw);
    status(&out, &doc, 0);
    let image = &doc["inputs"]["reference"]["image"];
    assert_eq!(image["name"], name.as_str(), "{doc:#}");
    assert_eq!(image["tag"], "1.0.0");
    assert_eq!(image["digest"], index.to_string().as_str());
    assert_eq!(image["indexDigest"], index.to_string().as_str());
    assert_eq!(image["manifestDigest"], mine.manifest_digest.to_string().as_str());
    assert_eq!(image["platform"], format!("linux/{host}").as_str());
    assert_eq!(image["path"], "/bin/app");
    let stderr = out.stderr_str();
    assert!(stderr.contains(&format!("pushed to {at_index}")), "{stderr}");
    assert!(stderr.contains(&format!("pushed to {at_platform}")), "{stderr}");
    assert!(stderr.contains("listed by the referrers tag schema"), "{stderr}");
    // Both statements: the binary first, then the index, then the platform manifest.
    for kind in ["provenance", "vsa"] {
        for ext in ["intoto.jsonl", "sigstore.json"] {
            let statement = statement_in(&att.join(format!("verifyapp.{kind}.{ext}")));
            assert_subjects_follow_the_schema(&statement);
            let digests: Vec<&str> = statement["subject"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["digest"]["sha256"].as_str())
                .collect();
            let sha = doc["inputs"]["reference"]["sha256"].as_str().unwrap_or_default();
            assert_eq!(digests, [sha, index.hex(), mine.manifest_digest.hex()], "{kind}: {statement:#}");
        }
    }
    // A deploy check holding only the index digest, or only the platform digest, finds
    // and verifies them: the provenance and the VSA, each as referrer and legacy.
    for at in [&at_index, &at_platform] {
        let (code, v) = attest_verify_image(at, &public, None);
        assert_eq!(code, Some(0), "{at}: {v:#}");
        let tried = v["attestations"].as_array().cloned().unwrap_or_default();
        assert_eq!(tried.len(), 4, "{at}: two referrers, two legacy layers: {v:#}");
        assert!(tried.iter().all(|t| t["verdict"] == "valid"), "{at}: {v:#}");
        for t in [PROVENANCE_V1, VSA_V1] {
            let (code, v) = attest_verify_image(at, &public, Some(t));
            assert_eq!(code, Some(0), "{at} {t}: {v:#}");
        }
    }
    // cosign v2 finds the legacy ones by the image digest and accepts their claims.
    let cosign = support::signing::cosign().unwrap_or_else(|e| panic!("{e}"));
    for at in [&at_index, &at_platform] {
        for t in [PROVENANCE_V1, VSA_V1] {
            let out = support::run_signing_tool(
                &cosign,
                &keys,
                "pw",
                &["verify-attestation", "--key", "k.pub", "--insecure-ignore-tlog=true", "--type", t, at],
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(out.status.success(), "cosign v2 {at} {t}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    // The other platform's digest has none.
    let (code, _) = attest_verify_image(&format!("{name}@{}", theirs.manifest_digest), &public, None);
    assert_eq!(code, Some(1));

    // By a platform manifest's digest, legacy only, envelopes: one image subject; found
    // by that digest.
    let release = s.registry.reference("releases/pushapp:1.0.0");
    let tars = [TarBuilder::new().dir("bin", 0o755).file("bin/app", 0o755, &good).finish()];
    let pushed = registry::push_tars(&s.registry, &release, &tars);
    let at_manifest = format!("{}/releases/pushapp@{}", s.registry.addr, pushed.manifest_digest);
    let att = p.path("att-manifest");
    let att_s = att.display().to_string();
    let by_manifest = format!("oci://{at_manifest}#/bin/app");
    let b = args(
        &base(&repo, "HEAD", toolchain),
        &["--reference", &by_manifest, "--attest", "--key", &key, "--out", &att_s, "--push", "--push-format", "legacy"],
    );
    let (out, doc) = verify_with_env(&proxy, cache, &strs(&b), &pw);
    status(&out, &doc, 0);
    assert_eq!(doc["inputs"]["reference"]["image"]["indexDigest"], Value::Null, "{doc:#}");
    assert!(!out.stderr_str().contains("referrer"), "legacy only: {}", out.stderr_str());
    let statement = statement_in(&att.join("verifyapp.vsa.intoto.jsonl"));
    assert_subjects_follow_the_schema(&statement);
    assert_eq!(statement["subject"].as_array().map(Vec::len), Some(2), "{statement:#}");
    let (code, v) = attest_verify_image(&at_manifest, &public, Some(VSA_V1));
    assert_eq!(code, Some(0), "{v:#}");
    let sources: Vec<&str> =
        v["attestations"].as_array().into_iter().flatten().filter_map(|a| a["source"].as_str()).collect();
    assert_eq!(sources, ["legacy", "legacy"], "{v:#}");

    // A registry that answers 500 to the push: the verdict is printed and stands in the
    // report, the files stay, and the exit is 3.
    let faulty = registry::FaultProxy::start_for(
        &s.registry.addr,
        "PUT",
        "/manifests/",
        registry::Fault::ServerErrors { count: 100 },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let via = format!("oci://{}/releases/pushapp@{}#/bin/app", faulty.addr, pushed.manifest_digest);
    let att = p.path("att-failed");
    let att_s = att.display().to_string();
    let c = args(
        &base(&repo, "HEAD", toolchain),
        &["--reference", &via, "--attest", "--key", &key, "--out", &att_s, "--push", "--push-format", "legacy"],
    );
    let (out, doc) = verify_with_env(&proxy, cache, &strs(&c), &pw);
    status(&out, &doc, 3);
    assert_eq!(doc["verdict"], "reproduced");
    assert!(out.stderr_str().contains("the verdict stands"), "{}", out.stderr_str());
    assert!(
        att.join("verifyapp.provenance.intoto.jsonl").is_file() && att.join("verifyapp.vsa.intoto.jsonl").is_file()
    );
}
