//! The Go fixture matrix: the toolchains `ci/setup` installs, the programs in
//! `tests/fixtures/go/`, and the build cases, targets and flags to build them with.
//!
//! Built binaries live in `<cache>/fixtures/<go version>/<case>/<goos>-<goarch>-<key>/`
//! where `<key>` hashes the toolchain, the case and the fixture sources, so a
//! rerun rebuilds nothing and an edited source rebuilds only what it affects.
//! Each toolchain gets its own `GOCACHE` under `<cache>/gocache/`.
//!
//! [`fixtures`] builds everything once per test process (the first test that
//! needs a fixture pays for it) and keeps building after a failure: every
//! failed build is listed in [`Fixtures::errors`].

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{cache_dir, describe, hermetic_go_env, repo_root, run, run_ok, RUN_SETUP};

/// A Go toolchain the tests build fixtures with.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    /// `runtime.Version()` of the toolchain, e.g. `go1.22.12`.
    pub(crate) version: String,
    /// The minor version: 22 for go1.22.12.
    pub(crate) minor: u32,
    /// The `go` command.
    pub(crate) go: PathBuf,
    /// Its GOROOT.
    pub(crate) goroot: PathBuf,
    /// The newest Go, the `go` on PATH: it builds the full matrix and is the
    /// reference reader.
    pub(crate) default: bool,
}

/// The Debian toolchains `ci/setup` installs, besides the `go` on PATH.
const DEBIAN_TOOLCHAINS: &[&str] =
    &["/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.21/bin/go", "/usr/lib/go-1.22/bin/go", "/usr/lib/go-1.23/bin/go"];

/// Go 1.15 from bullseye, extracted (not installed) by `ci/setup` into the cache.
pub(crate) fn go115_path() -> PathBuf {
    cache_dir().join("go1.15/usr/lib/go-1.15/bin/go")
}

/// runc from bullseye (built with Go 1.15), extracted by `ci/setup` into the cache.
pub(crate) fn bullseye_runc_path() -> PathBuf {
    cache_dir().join("bullseye-runc/usr/sbin/runc")
}

/// Finds every toolchain. Errors name what is missing and say to run `ci/setup`.
pub(crate) fn toolchains() -> (Vec<Toolchain>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    match probe(Path::new("go"), true) {
        Ok(tc) => found.push(tc),
        Err(e) => errors.push(format!("the `go` on PATH: {e}")),
    }
    let go115 = go115_path();
    let others = DEBIAN_TOOLCHAINS.iter().map(PathBuf::from).chain(std::iter::once(go115));
    for go in others {
        if !go.exists() {
            errors.push(format!("missing Go toolchain {}: {RUN_SETUP}", go.display()));
            continue;
        }
        match probe(&go, false) {
            Ok(tc) => found.push(tc),
            Err(e) => errors.push(format!("Go toolchain {}: {e} ({RUN_SETUP})", go.display())),
        }
    }
    (found, errors)
}

fn probe(go: &Path, default: bool) -> Result<Toolchain, String> {
    let mut cmd = Command::new(go);
    hermetic_go_env(&mut cmd).arg("version");
    let out = run_ok(&mut cmd)?;
    // "go version go1.22.12 linux/amd64"
    let text = out.stdout_str();
    let version = text
        .split_whitespace()
        .nth(2)
        .filter(|v| v.starts_with("go1."))
        .ok_or_else(|| format!("unexpected `go version` output {text:?}"))?
        .to_string();
    let minor = version["go1.".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot parse the Go version {version:?}"))?;
    let mut cmd = Command::new(go);
    hermetic_go_env(&mut cmd).args(["env", "GOROOT"]);
    let goroot = PathBuf::from(run_ok(&mut cmd)?.stdout_str().trim());
    let go = goroot.join("bin/go");
    if !go.is_file() {
        return Err(format!("GOROOT {} has no bin/go", goroot.display()));
    }
    Ok(Toolchain { version, minor, go, goroot, default })
}

/// A GOOS/GOARCH pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) goos: &'static str,
    pub(crate) goarch: &'static str,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.goos, self.goarch)
    }
}

const fn t(goos: &'static str, goarch: &'static str) -> Target {
    Target { goos, goarch }
}

pub(crate) const LINUX_AMD64: Target = t("linux", "amd64");
pub(crate) const WINDOWS_AMD64: Target = t("windows", "amd64");
pub(crate) const DARWIN_AMD64: Target = t("darwin", "amd64");
pub(crate) const DARWIN_ARM64: Target = t("darwin", "arm64");

/// Every target the newest Go builds `hello` for: ELF 32/64-bit, little and big
/// endian; PE 32/64; Mach-O; wasm; XCOFF; Plan 9 a.out.
const ALL_TARGETS: &[Target] = &[
    t("linux", "amd64"),
    t("linux", "386"),
    t("linux", "arm64"),
    t("linux", "arm"),
    t("linux", "ppc64"),
    t("linux", "s390x"),
    t("linux", "mips"),
    t("windows", "amd64"),
    t("windows", "386"),
    t("darwin", "amd64"),
    t("darwin", "arm64"),
    t("wasip1", "wasm"),
    t("aix", "ppc64"),
    t("plan9", "amd64"),
    t("plan9", "386"),
];

/// The reduced set for older toolchains: 64/32-bit, little/big endian, PE, Mach-O.
const OLD_TARGETS: &[Target] =
    &[t("linux", "amd64"), t("linux", "386"), t("linux", "ppc64"), t("windows", "amd64"), t("darwin", "amd64")];

/// VCS state of the checkout a case is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vcs {
    /// No repository; `-buildvcs=false` where the toolchain knows the flag.
    None,
    /// A git checkout with one commit.
    Clean,
    /// The same, with an uncommitted change.
    Dirty,
    /// One commit, tagged `v1.2.3` (Go ≥ 1.24 derives the main module version from it).
    Tagged,
    /// Tagged, with an uncommitted change (`v1.2.3+dirty`).
    TaggedDirty,
}

/// What `go build` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Exe,
    CShared,
}

/// One way of building one program, for a list of targets.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    program: &'static str,
    targets: Vec<Target>,
    flags: Vec<OsString>,
    env: Vec<(&'static str, &'static str)>,
    package: &'static str,
    vcs: Vcs,
    network: bool,
    cgo: bool,
    output: Output,
}

impl Case {
    fn new(name: &'static str, program: &'static str) -> Self {
        Case {
            name,
            program,
            targets: vec![LINUX_AMD64],
            flags: Vec::new(),
            env: Vec::new(),
            package: ".",
            vcs: Vcs::None,
            network: false,
            cgo: false,
            output: Output::Exe,
        }
    }

    fn targets(mut self, targets: &[Target]) -> Self {
        self.targets = targets.to_vec();
        self
    }

    fn flag(mut self, flag: impl Into<OsString>) -> Self {
        self.flags.push(flag.into());
        self
    }

    fn env(mut self, key: &'static str, value: &'static str) -> Self {
        self.env.push((key, value));
        self
    }

    fn package(mut self, package: &'static str) -> Self {
        self.package = package;
        self
    }

    fn vcs(mut self, vcs: Vcs) -> Self {
        self.vcs = vcs;
        self
    }

    fn network(mut self) -> Self {
        self.network = true;
        self
    }

    fn cgo(mut self) -> Self {
        self.cgo = true;
        self
    }

    fn c_shared(mut self) -> Self {
        self.output = Output::CShared;
        self.flags.push("-buildmode=c-shared".into());
        self
    }

    fn binary_name(&self, target: Target) -> String {
        match (self.output, target.goos, target.goarch) {
            (Output::CShared, _, _) => format!("lib{}.so", self.program),
            (_, "windows", _) => format!("{}.exe", self.program),
            (_, _, "wasm") => format!("{}.wasm", self.program),
            _ => self.program.to_string(),
        }
    }
}

/// `-ldflags` with spaces, both quote kinds, HTML-special characters (JSON
/// escapes them), non-ASCII, a tab and a backquote (Go-quoted in the text form).
const LDFLAGS_QUOTED: &str = "-ldflags=-X 'main.msg=hello world' -X main.q=\"x\" -X 'main.html=<a&b>' \
                              -X main.u=h\u{e9}llo\u{2028} -X 'main.t=tab\tand`backquote'";

/// The cases a toolchain builds.
pub(crate) fn cases_for(tc: &Toolchain) -> Vec<Case> {
    let hello = |name| Case::new(name, "hello");
    if tc.default {
        let invalid_utf8 = OsString::from_vec(b"-ldflags=-X main.u=bad\xff\xfeutf8 -X main.t=\x01ctl".to_vec());
        return vec![
            hello("hello").targets(ALL_TARGETS),
            hello("trimpath").flag("-trimpath"),
            hello("ldflags").flag(LDFLAGS_QUOTED),
            hello("ldflags-trimpath").flag(LDFLAGS_QUOTED).flag("-trimpath"),
            hello("ldflags-invalid-utf8").flag(invalid_utf8),
            hello("buildid-custom")
                .flag("-ldflags=-buildid=reprove/custom-build-id")
                .targets(&[LINUX_AMD64, WINDOWS_AMD64]),
            hello("buildid-empty").flag("-ldflags=-buildid=").targets(&[LINUX_AMD64, WINDOWS_AMD64, DARWIN_ARM64]),
            hello("tags").flag("-tags=a,b"),
            hello("gcflags").flag("-gcflags=-N -l"),
            hello("goamd64-v3").env("GOAMD64", "v3"),
            hello("pie").flag("-buildmode=pie"),
            hello("stripped").flag("-ldflags=-s -w").targets(&[
                LINUX_AMD64,
                t("linux", "ppc64"),
                WINDOWS_AMD64,
                DARWIN_ARM64,
            ]),
            hello("files").package("main.go"),
            hello("gopath").env("GO111MODULE", "off"),
            hello("cgo-internal").cgo(),
            Case::new("cgo", "cgo").cgo(),
            Case::new("cgo-trimpath", "cgo").cgo().flag("-trimpath"),
            Case::new("c-shared", "cgo").cgo().c_shared(),
            Case::new("embed", "embed"),
            Case::new("localdep", "localdep"),
            Case::new("realdep", "realdep").network(),
            Case::new("realdep-replaced", "realdep-replaced").network(),
            hello("vcs-clean").vcs(Vcs::Clean),
            hello("vcs-dirty").vcs(Vcs::Dirty),
            hello("vcs-tagged").vcs(Vcs::Tagged),
            hello("vcs-tagged-dirty").vcs(Vcs::TaggedDirty),
        ];
    }
    // Older toolchains: the old pointer format (1.15) and the first releases with
    // build settings (1.19) on every reduced target; the ones in between on
    // linux/amd64 and one other target each, to keep a cold build short.
    let targets: Vec<Target> = match tc.minor {
        ..=17 => OLD_TARGETS.iter().copied().chain([t("linux", "mips")]).collect(),
        18..=19 => OLD_TARGETS.to_vec(),
        21 => vec![LINUX_AMD64, t("linux", "386")],
        22 => vec![LINUX_AMD64, WINDOWS_AMD64],
        _ => vec![LINUX_AMD64, DARWIN_AMD64],
    };
    let mut cases = vec![
        hello("hello").targets(&targets),
        hello("ldflags").flag(LDFLAGS_QUOTED),
        Case::new("localdep", "localdep"),
    ];
    if tc.minor <= 19 {
        cases.push(hello("trimpath").flag("-trimpath"));
    }
    if tc.minor >= 18 {
        cases.push(hello("vcs-dirty").vcs(Vcs::Dirty));
    }
    cases
}

/// One built binary.
#[derive(Debug, Clone)]
pub(crate) struct Fixture {
    pub(crate) toolchain: String,
    pub(crate) default_toolchain: bool,
    pub(crate) case: &'static str,
    pub(crate) target: Target,
    pub(crate) path: PathBuf,
}

impl fmt::Display for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{} ({})", self.toolchain, self.case, self.target, self.path.display())
    }
}

/// Everything [`fixtures`] built, and what it could not.
#[derive(Debug)]
pub(crate) struct Fixtures {
    pub(crate) toolchains: Vec<Toolchain>,
    pub(crate) built: Vec<Fixture>,
    pub(crate) errors: Vec<String>,
    /// How many were built now rather than found in the cache, and how long it all took.
    pub(crate) fresh: usize,
    pub(crate) elapsed: Duration,
}

impl Fixtures {
    /// The fixture of the default toolchain for `case` and `target`.
    pub(crate) fn newest(&self, case: &str, target: Target) -> Option<&Fixture> {
        self.built.iter().find(|f| f.default_toolchain && f.case == case && f.target == target)
    }

    /// The fixture built by the toolchain whose version starts with `version`.
    pub(crate) fn by(&self, version: &str, case: &str, target: Target) -> Option<&Fixture> {
        self.built.iter().find(|f| f.toolchain.starts_with(version) && f.case == case && f.target == target)
    }

    /// [`Fixtures::newest`], or a panic that says what is missing.
    pub(crate) fn require_newest(&self, case: &str, target: Target) -> &Fixture {
        self.newest(case, target).unwrap_or_else(|| {
            panic!("fixture {case} {target} of the newest Go was not built:\n{}", self.errors.join("\n"))
        })
    }
}

/// Builds (or finds in the cache) every fixture, once per test process.
pub(crate) fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(build_all)
}

fn build_all() -> Fixtures {
    let started = Instant::now();
    let (toolchains, mut errors) = toolchains();
    let cache = cache_dir();
    let sources = repo_root().join("tests/fixtures/go");
    let source_hash = match tree_hash(&sources) {
        Ok(h) => h,
        Err(e) => {
            errors.push(format!("cannot read {}: {e}", sources.display()));
            return Fixtures { toolchains, built: Vec::new(), errors, fresh: 0, elapsed: started.elapsed() };
        }
    };

    // Every fixture, in matrix order; the ones not in the cache become tasks.
    let mut slots: Vec<Option<Fixture>> = Vec::new();
    let mut tasks = Vec::new();
    for tc in &toolchains {
        for case in cases_for(tc) {
            for &target in &case.targets {
                let mut key = Fnv::new();
                key.write(tc.version.as_bytes());
                key.write(tc.go.as_os_str().as_encoded_bytes());
                key.write(
                    format!("{:?}{:?}{:?}{}{:?}", case.flags, case.env, case.package, case.cgo, case.vcs).as_bytes(),
                );
                key.write(target.to_string().as_bytes());
                key.write(&source_hash.to_le_bytes());
                let dir = cache.join("fixtures").join(&tc.version).join(case.name).join(format!(
                    "{}-{}-{:016x}",
                    target.goos,
                    target.goarch,
                    key.finish()
                ));
                let path = dir.join(case.binary_name(target));
                let fixture = Fixture {
                    toolchain: tc.version.clone(),
                    default_toolchain: tc.default,
                    case: case.name,
                    target,
                    path,
                };
                if fixture.path.is_file() {
                    slots.push(Some(fixture));
                } else {
                    tasks.push(Task { slot: slots.len(), tc, case: case.clone(), target, dir, fixture });
                    slots.push(None);
                }
            }
        }
    }

    let proxy = if tasks.iter().any(|t| t.case.network) { Some(user_proxy_env()) } else { None };
    // Plain builds first, one per toolchain and target: they compile the standard
    // library into each GOCACHE, without two workers compiling the same one.
    tasks.sort_by_key(|t| (t.case.name != "hello", t.slot));
    let fresh = tasks.len();
    let jobs = std::env::var("REPROVE_FIXTURE_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Fixture, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(task) = tasks.get(i) else { break };
                let one = Instant::now();
                let proxy = match (&proxy, task.case.network) {
                    (Some(Ok(vars)), true) => Ok(Some(vars.as_slice())),
                    (Some(Err(e)), true) => Err(e.clone()),
                    _ => Ok(None),
                };
                let result = proxy
                    .and_then(|proxy| build_one(task.tc, &task.case, task.target, &sources, &task.dir, proxy))
                    .map(|()| {
                        eprintln!("built fixture {} in {:.1?}", task.fixture, one.elapsed());
                        task.fixture.clone()
                    })
                    .map_err(|e| format!("building {}: {e}", task.fixture));
                if let Ok(mut r) = results.lock() {
                    r.push((task.slot, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(slot, _)| *slot);
    for (slot, result) in results {
        match result {
            Ok(f) => slots[slot] = Some(f),
            Err(e) => errors.push(e),
        }
    }
    let built: Vec<Fixture> = slots.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    eprintln!(
        "fixtures: {} ready ({fresh} to build now, {jobs} jobs), {} errors, {elapsed:.1?}",
        built.len(),
        errors.len()
    );
    Fixtures { toolchains, built, errors, fresh, elapsed }
}

/// A fixture to build.
struct Task<'a> {
    slot: usize,
    tc: &'a Toolchain,
    case: Case,
    target: Target,
    dir: PathBuf,
    fixture: Fixture,
}

/// GOPROXY and friends as the caller's `go` sees them (environment, then `go env -w`),
/// plus the HTTP proxy and CA variables, for the cases that download modules.
fn user_proxy_env() -> Result<Vec<(String, String)>, String> {
    const GO_VARS: &[&str] = &["GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOINSECURE"];
    let mut cmd = Command::new("go");
    cmd.arg("env").arg("-json").args(GO_VARS).env("GOTOOLCHAIN", "local");
    let out = run_ok(&mut cmd)?;
    let vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("`go env -json`: {e}"))?;
    let mut env = Vec::new();
    for name in GO_VARS {
        if let Some(v) = vars.get(*name).and_then(|v| v.as_str()) {
            env.push((name.to_string(), v.to_string()));
        }
    }
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        if let Ok(v) = std::env::var(name) {
            env.push((name.to_string(), v));
        }
    }
    Ok(env)
}

fn build_one(
    tc: &Toolchain,
    case: &Case,
    target: Target,
    sources: &Path,
    dir: &Path,
    proxy: Option<&[(String, String)]>,
) -> Result<(), String> {
    let cache = cache_dir();
    let work = tempfile::Builder::new()
        .prefix("reprove-fixture-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let src = work.path().join("src");
    copy_tree(sources, &src).map_err(|e| format!("cannot copy {}: {e}", sources.display()))?;
    let pkgdir = src.join(case.program);
    if case.vcs != Vcs::None {
        make_git_checkout(&pkgdir, case.vcs)?;
    }

    let stage = dir.with_file_name(format!(
        "{}.partial-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("fixture"),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage).map_err(|e| format!("cannot create {}: {e}", stage.display()))?;
    let out = stage.join(case.binary_name(target));

    let mut cmd = Command::new(&tc.go);
    cmd.env_clear();
    for name in ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"] {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    let modcache = work.path().join("gomodcache");
    cmd.env("GOENV", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .env("GOCACHE", cache.join("gocache").join(&tc.version))
        .env("GOPATH", work.path().join("gopath"))
        .env("GOMODCACHE", &modcache)
        .env("GOOS", target.goos)
        .env("GOARCH", target.goarch)
        .env("CGO_ENABLED", if case.cgo { "1" } else { "0" })
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    match proxy {
        Some(vars) => {
            // The real module proxy, into a fresh module cache that we must be able to delete.
            cmd.env("GOFLAGS", "-modcacherw");
            for (k, v) in vars {
                cmd.env(k, v);
            }
        }
        None => {
            cmd.env("GOPROXY", "off").env("GOSUMDB", "off");
        }
    }
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    cmd.current_dir(&pkgdir).arg("build");
    if tc.minor >= 18 {
        cmd.arg(if case.vcs == Vcs::None { "-buildvcs=false" } else { "-buildvcs=true" });
    }
    cmd.args(&case.flags).arg("-o").arg(&out).arg(case.package);
    let result = run(&mut cmd)?;
    if !result.success() {
        let _ = fs::remove_dir_all(&stage);
        return Err(format!("{}\nexit {:?}\n{}", describe(&cmd), result.status, result.stderr_str()));
    }
    if !out.is_file() {
        let _ = fs::remove_dir_all(&stage);
        return Err(format!("{} produced no {}", describe(&cmd), out.display()));
    }
    // Publish atomically; another test process may have won the race.
    if let Err(e) = fs::rename(&stage, dir) {
        let _ = fs::remove_dir_all(&stage);
        if !dir.join(case.binary_name(target)).is_file() {
            return Err(format!("cannot rename {} to {}: {e}", stage.display(), dir.display()));
        }
    }
    Ok(())
}

/// A git checkout with fixed identity and dates, so the revision is stable.
fn make_git_checkout(dir: &Path, vcs: Vcs) -> Result<(), String> {
    let git = |args: &[&str]| -> Result<(), String> {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "reprove tests")
            .env("GIT_AUTHOR_EMAIL", "tests@reprove.invalid")
            .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
            .env("GIT_COMMITTER_NAME", "reprove tests")
            .env("GIT_COMMITTER_EMAIL", "tests@reprove.invalid")
            .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
            .args(args);
        run_ok(&mut cmd).map(|_| ()).map_err(|e| format!("git (needed for VCS stamping; {RUN_SETUP}): {e}"))
    };
    git(&["-c", "init.defaultBranch=main", "init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["-c", "commit.gpgsign=false", "commit", "-q", "-m", "fixture"])?;
    if matches!(vcs, Vcs::Tagged | Vcs::TaggedDirty) {
        git(&["tag", "v1.2.3"])?;
    }
    if matches!(vcs, Vcs::Dirty | Vcs::TaggedDirty) {
        let main = dir.join("main.go");
        let mut text = fs::read_to_string(&main).map_err(|e| format!("{}: {e}", main.display()))?;
        text.push_str("\n// An uncommitted change.\n");
        fs::write(&main, text).map_err(|e| format!("{}: {e}", main.display()))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A hash of every file name and content under `root`, in sorted order.
fn tree_hash(root: &Path) -> io::Result<u64> {
    fn walk(dir: &Path, rel: &Path, h: &mut Fnv) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &name, h)?;
            } else {
                h.write(name.as_os_str().as_encoded_bytes());
                h.write(&[0]);
                let content = fs::read(entry.path())?;
                h.write(&(content.len() as u64).to_le_bytes());
                h.write(&content);
            }
        }
        Ok(())
    }
    let mut h = Fnv::new();
    walk(root, Path::new(""), &mut h)?;
    Ok(h.finish())
}

/// FNV-1a, 64 bits: stable across Rust releases, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Where Debian's containernetworking-plugins (installed by `ci/setup`) keeps its
/// Go binaries.
pub(crate) const CNI_DIR: &str = "/usr/lib/cni";

/// Go binaries that Debian packages installed by `ci/setup` carry, and the
/// toolchains' own commands. Missing ones are errors.
pub(crate) fn packaged_binaries(toolchains: &[Toolchain]) -> (Vec<PathBuf>, Vec<String>) {
    let mut paths: Vec<PathBuf> = ["/usr/sbin/runc", "/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/umoci"]
        .iter()
        .map(PathBuf::from)
        .collect();
    paths.push(bullseye_runc_path());
    for tc in toolchains {
        paths.push(tc.goroot.join("bin/go"));
        paths.push(tc.goroot.join("bin/gofmt"));
    }
    let mut errors = Vec::new();
    match fs::read_dir(CNI_DIR) {
        Ok(entries) => {
            let mut cni: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect();
            cni.sort();
            if cni.is_empty() {
                errors.push(format!("no binaries in {CNI_DIR}: {RUN_SETUP}"));
            }
            paths.extend(cni);
        }
        Err(e) => errors.push(format!("{CNI_DIR}: {e}: {RUN_SETUP}")),
    }
    paths.retain(|p| {
        let ok = p.is_file();
        if !ok {
            errors.push(format!("missing {}: {RUN_SETUP}", p.display()));
        }
        ok
    });
    (paths, errors)
}

/// Directories of real Go binaries, for `go version -m DIR` walks: each
/// toolchain's `pkg/tool` and the CNI plugins.
pub(crate) fn packaged_dirs(toolchains: &[Toolchain]) -> Vec<PathBuf> {
    toolchains.iter().map(|tc| tc.goroot.join("pkg/tool")).chain(std::iter::once(PathBuf::from(CNI_DIR))).collect()
}

/// A universal ("fat") Mach-O of the given thin files, as `lipo` makes them.
pub(crate) fn fat_macho(thin: &[Vec<u8>]) -> Vec<u8> {
    const ALIGN_LOG2: u32 = 14;
    let align = 1usize << ALIGN_LOG2;
    let mut out = Vec::new();
    out.extend_from_slice(&0xcafe_babe_u32.to_be_bytes());
    out.extend_from_slice(&(thin.len() as u32).to_be_bytes());
    let mut offset = align;
    let mut offsets = Vec::new();
    for t in thin {
        // cputype and cpusubtype from the thin (little-endian) header.
        let cputype = u32::from_le_bytes(t[4..8].try_into().unwrap_or_else(|_| panic!("a thin Mach-O header")));
        let subtype = u32::from_le_bytes(t[8..12].try_into().unwrap_or_else(|_| panic!("a thin Mach-O header")));
        for v in [cputype, subtype, offset as u32, t.len() as u32, ALIGN_LOG2] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        offsets.push(offset);
        offset = (offset + t.len()).div_ceil(align) * align;
    }
    for (t, off) in thin.iter().zip(offsets) {
        out.resize(off, 0);
        out.extend_from_slice(t);
    }
    out
}
