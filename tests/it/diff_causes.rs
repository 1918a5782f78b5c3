//! `reprove diff` against pairs of binaries built by the real `go`, each pair
//! differing in exactly one way, and the cause code that way must produce.
//!
//! Builds go to a temporary directory; the Go build cache persists under
//! `${REPROVE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reprove-tests}/gocache-diff`
//! so reruns are quick. Only the real-module case reaches a module proxy, the one
//! `GOPROXY` in the environment names.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const MAIN_GO: &str = r#"package main

import "fmt"

var version = "dev"

func main() { fmt.Println("hello", version, extra()) }
"#;

const EXTRA_DEFAULT_GO: &str = r#"//go:build !foo

package main

func extra() string { return "plain" }
"#;

const EXTRA_FOO_GO: &str = r#"//go:build foo

package main

func extra() string { return "foo" }
"#;

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("REPROVE_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME or XDG_CACHE_HOME must be set")).join(".cache")
    });
    base.join("reprove-tests")
}

/// A `go` command with a clean, reproducible environment and no network.
fn go_command(go: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(go);
    cmd.current_dir(dir)
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", cache_root().join("gocache-diff"))
        .env("GOMODCACHE", cache_root().join("gomodcache-diff"))
        .env("GOPROXY", "off")
        .env("GOENV", "off")
        .env("GOWORK", "off")
        .env("CGO_ENABLED", "0")
        .env_remove("GOEXPERIMENT")
        .env_remove("GOAMD64")
        .env_remove("GOOS")
        .env_remove("GOARCH")
        .env_remove("GOROOT")
        .env_remove("GOPATH");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(super) fn go_on_path() -> PathBuf {
    PathBuf::from("go")
}

/// A Go module with the hello program in `dir`.
fn write_module(dir: &Path, module: &str) {
    std::fs::create_dir_all(dir).expect("creating the module directory");
    std::fs::write(dir.join("go.mod"), format!("module {module}\n\ngo 1.21\n")).expect("writing go.mod");
    std::fs::write(dir.join("main.go"), MAIN_GO).expect("writing main.go");
    std::fs::write(dir.join("extra_default.go"), EXTRA_DEFAULT_GO).expect("writing a source");
    std::fs::write(dir.join("extra_foo.go"), EXTRA_FOO_GO).expect("writing a source");
}

/// Builds the package in `dir` into `out` with `args` and extra environment.
pub(super) fn build(go: &Path, dir: &Path, out: &Path, args: &[&str], env: &[(&str, &str)]) {
    let mut cmd = go_command(go, dir);
    cmd.arg("build").args(args).arg("-o").arg(out).arg(".");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd);
}

pub(super) struct Diff {
    pub(super) code: i32,
    pub(super) stdout: String,
    pub(super) json: Value,
}

pub(super) fn reprove_diff(a: &Path, b: &Path) -> Diff {
    let bin = env!("CARGO_BIN_EXE_reprove");
    let json = Command::new(bin).args(["diff", "--json"]).arg(a).arg(b).output().expect("running reprove");
    let text = Command::new(bin).arg("diff").arg(a).arg(b).output().expect("running reprove");
    assert_eq!(json.status.code(), text.status.code(), "--json must not change the exit code");
    let stdout = String::from_utf8(text.stdout).expect("text output is UTF-8");
    let parsed: Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {}", String::from_utf8_lossy(&json.stdout)));
    check_schema_shape(&parsed);
    Diff { code: json.status.code().unwrap_or(-1), stdout, json: parsed }
}

/// The document carries what `schemas/diff.schema.json` requires at the top and in each cause.
fn check_schema_shape(doc: &Value) {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/diff.schema.json");
        serde_json::from_slice(&std::fs::read(path).expect("reading the schema")).expect("the schema is JSON")
    });
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    for key in schema["required"].as_array().expect("top-level required") {
        let key = key.as_str().expect("required keys are strings");
        assert!(doc.get(key).is_some(), "report lacks required key {key}: {doc:#}");
    }
    assert_eq!(doc["schemaVersion"], 1);
    let cause_required = schema["$defs"]["cause"]["required"].as_array().expect("cause required keys");
    let codes = schema["$defs"]["cause"]["properties"]["code"]["enum"].as_array().expect("code enum");
    for cause in doc["causes"].as_array().expect("causes is an array") {
        for key in cause_required {
            assert!(cause.get(key.as_str().unwrap_or_default()).is_some(), "cause lacks {key}: {cause:#}");
        }
        assert!(codes.contains(&cause["code"]), "code {} not in the schema's enum", cause["code"]);
    }
}

impl Diff {
    pub(super) fn codes(&self) -> Vec<(String, String)> {
        self.json["causes"]
            .as_array()
            .expect("causes")
            .iter()
            .map(|c| {
                (
                    c["code"].as_str().unwrap_or_default().to_string(),
                    c["confidence"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub(super) fn top(&self) -> String {
        self.codes().first().map(|c| c.0.clone()).unwrap_or_default()
    }

    /// The pair differs and `code` is the top cause.
    pub(super) fn assert_top(&self, code: &str) {
        assert_eq!(self.code, 1, "binaries should differ:\n{}", self.stdout);
        assert_eq!(self.top(), code, "top cause; all: {:?}\n{}", self.codes(), self.stdout);
        let first = self.stdout.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("differ: {code} — ")), "first line: {first}");
    }

    /// The pair differs and `code` is a certain cause.
    fn assert_certain(&self, code: &str) {
        assert_eq!(self.code, 1, "binaries should differ:\n{}", self.stdout);
        assert!(
            self.codes().iter().any(|(c, conf)| c == code && conf == "certain"),
            "no certain {code}; causes: {:?}\n{}",
            self.codes(),
            self.stdout
        );
    }

    pub(super) fn confidence_of(&self, code: &str) -> Option<String> {
        self.codes().into_iter().find(|(c, _)| c == code).map(|(_, conf)| conf)
    }
}

/// A temporary directory with the hello module in `src/`.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let src = tmp.path().join("src");
    write_module(&src, "example.com/hello");
    (tmp, src)
}

/// Builds the hello module twice, with `a` and `b` as (args, env), and diffs them.
fn pair(a: (&[&str], &[(&str, &str)]), b: (&[&str], &[(&str, &str)])) -> Diff {
    let (tmp, src) = workspace();
    let go = go_on_path();
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&go, &src, &out_a, a.0, a.1);
    build(&go, &src, &out_b, b.0, b.1);
    reprove_diff(&out_a, &out_b)
}

const TRIM: &[&str] = &["-trimpath"];

#[test]
fn go_version() {
    let old = ["/usr/lib/go-1.22/bin/go", "/usr/lib/go-1.21/bin/go"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("no older Go in /usr/lib/go-1.22 or /usr/lib/go-1.21: run ci/setup");
    let (tmp, src) = workspace();
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&old, &src, &out_a, TRIM, &[]);
    build(&go_on_path(), &src, &out_b, TRIM, &[]);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("go-version");
    let first = d.stdout.lines().next().unwrap_or_default();
    assert!(first.contains("built with go1.2"), "{first}");
}

#[test]
fn goexperiment() {
    // Experiments come and go with Go versions: use the first this toolchain accepts.
    let (tmp, src) = workspace();
    let go = go_on_path();
    let out_a = tmp.path().join("a");
    build(&go, &src, &out_a, TRIM, &[]);
    let out_b = tmp.path().join("b");
    let accepted = ["nogreenteagc", "jsonv2", "fieldtrack", "arenas", "loopvar"].into_iter().find(|exp| {
        let mut cmd = go_command(&go, &src);
        cmd.args(["build", "-trimpath", "-o"]).arg(&out_b).arg(".").env("GOEXPERIMENT", exp);
        cmd.output().is_ok_and(|o| o.status.success())
    });
    assert!(accepted.is_some(), "no GOEXPERIMENT candidate builds with this go");
    reprove_diff(&out_a, &out_b).assert_top("goexperiment");
}

#[test]
fn trimpath() {
    let d = pair((&[], &[]), (TRIM, &[]));
    d.assert_top("trimpath");
    assert_eq!(d.confidence_of("embedded-path").as_deref(), Some("likely"));
}

#[test]
fn ldflags_recorded_without_trimpath() {
    let d = pair((&["-ldflags=-X main.version=1.0.0"], &[]), (&["-ldflags=-X main.version=1.0.1"], &[]));
    d.assert_top("ldflags");
    d.assert_certain("ldflags");
}

#[test]
fn ldflags_inferred_under_trimpath() {
    let d = pair(
        (&["-trimpath", "-ldflags=-X main.version=1.0.0"], &[]),
        (&["-trimpath", "-ldflags=-X main.version=1.0.1-rc1"], &[]),
    );
    d.assert_top("ldflags");
    assert_eq!(d.confidence_of("ldflags").as_deref(), Some("likely"));
    let evidence = &d.json["causes"][0]["evidence"][0];
    assert_eq!(evidence["name"], "main.version");
    assert_eq!(evidence["a"], "1.0.0");
    assert_eq!(evidence["b"], "1.0.1-rc1");
}

#[test]
fn ldflags_inferred_from_strings_when_stripped() {
    let d = pair(
        (&["-trimpath", "-ldflags=-s -w -X main.version=1.0.0"], &[]),
        (&["-trimpath", "-ldflags=-s -w -X main.version=1.0.1"], &[]),
    );
    d.assert_top("ldflags");
    assert_eq!(d.confidence_of("ldflags").as_deref(), Some("possible"));
}

#[test]
fn gcflags() {
    // Recorded even under -trimpath.
    pair((TRIM, &[]), (&["-trimpath", "-gcflags=-N -l"], &[])).assert_top("gcflags");
}

#[test]
fn tags() {
    pair((TRIM, &[]), (&["-trimpath", "-tags=foo"], &[])).assert_top("tags");
}

#[test]
fn cgo() {
    pair((TRIM, &[("CGO_ENABLED", "0")]), (TRIM, &[("CGO_ENABLED", "1")])).assert_top("cgo");
}

#[test]
fn goos_goarch() {
    pair((TRIM, &[("GOARCH", "amd64")]), (TRIM, &[("GOARCH", "arm64")])).assert_top("goos-goarch");
}

#[test]
fn arch_level() {
    let d = pair((TRIM, &[("GOARCH", "amd64"), ("GOAMD64", "v1")]), (TRIM, &[("GOARCH", "amd64"), ("GOAMD64", "v3")]));
    d.assert_top("arch-level");
}

#[test]
fn buildmode() {
    pair((&["-trimpath", "-buildmode=exe"], &[]), (&["-trimpath", "-buildmode=pie"], &[])).assert_top("buildmode");
}

#[test]
fn stripped_inferred_under_trimpath() {
    let d = pair((TRIM, &[]), (&["-trimpath", "-ldflags=-s -w"], &[]));
    d.assert_top("stripped");
    assert_eq!(d.confidence_of("stripped").as_deref(), Some("likely"));
}

#[test]
fn stripped_recorded() {
    pair((&[], &[]), (&["-ldflags=-s -w"], &[])).assert_top("stripped");
}

#[test]
fn build_id_only() {
    let d = pair(
        (&["-trimpath", "-ldflags=-buildid=reprove-test-AAAA"], &[]),
        (&["-trimpath", "-ldflags=-buildid=reprove-test-BBBB"], &[]),
    );
    d.assert_top("build-id-only");
    assert_eq!(d.codes().len(), 1, "{:?}", d.codes());
}

#[test]
fn embedded_path_from_different_directories() {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let go = go_on_path();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("second"));
    write_module(&one, "example.com/hello");
    write_module(&two, "example.com/hello");
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&go, &one, &out_a, &[], &[]);
    build(&go, &two, &out_b, &[], &[]);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("embedded-path");
    let first = d.stdout.lines().next().unwrap_or_default();
    assert!(first.contains("/one/") && first.contains("/second/"), "{first}");
}

#[test]
fn trimpath_builds_in_different_directories_are_identical() {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let go = go_on_path();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("second"));
    write_module(&one, "example.com/hello");
    write_module(&two, "example.com/hello");
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&go, &one, &out_a, TRIM, &[]);
    build(&go, &two, &out_b, TRIM, &[]);
    let d = reprove_diff(&out_a, &out_b);
    assert_eq!(d.code, 0, "{}", d.stdout);
    assert_eq!(d.json["verdict"], "identical");
    assert!(d.json["causes"].as_array().is_some_and(Vec::is_empty));
    assert!(d.stdout.starts_with("identical: sha256 "), "{}", d.stdout);
}

// Version control stamping.

fn git(dir: &Path, args: &[&str], date: &str) {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "reprove")
        .env("GIT_AUTHOR_EMAIL", "reprove@example.com")
        .env("GIT_COMMITTER_NAME", "reprove")
        .env("GIT_COMMITTER_EMAIL", "reprove@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    run(&mut cmd);
}

const DATE_1: &str = "2024-01-02T03:04:05Z";
const DATE_2: &str = "2024-06-07T08:09:10Z";

/// A git repository holding the hello module with one commit.
fn repo() -> (tempfile::TempDir, PathBuf) {
    let (tmp, src) = workspace();
    std::fs::write(src.join("README"), "hello\n").expect("writing README");
    git(&src, &["init", "-q", "-b", "main"], DATE_1);
    git(&src, &["add", "."], DATE_1);
    git(&src, &["commit", "-q", "-m", "first"], DATE_1);
    (tmp, src)
}

const VCS: &[&str] = &["-trimpath", "-buildvcs=true"];

/// Builds a stamped binary. The module cache is the test's own: `go` caches what a
/// revision resolves to, and these tests make the same commits every run.
fn build_vcs(tmp: &Path, src: &Path, out: &Path) {
    let modcache = tmp.join("modcache");
    let modcache = modcache.to_str().expect("temporary paths are UTF-8");
    build(&go_on_path(), src, out, VCS, &[("GOMODCACHE", modcache), ("GOFLAGS", "-modcacherw")]);
}

#[test]
fn vcs_revision() {
    let (tmp, src) = repo();
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build_vcs(tmp.path(), &src, &out_a);
    // Same tree, same time, another commit.
    git(&src, &["commit", "-q", "--allow-empty", "-m", "second"], DATE_1);
    build_vcs(tmp.path(), &src, &out_b);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("vcs-revision");
    assert!(d.confidence_of("vcs-time").is_none(), "{:?}", d.codes());
}

#[test]
fn vcs_time() {
    let (tmp, src) = repo();
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build_vcs(tmp.path(), &src, &out_a);
    git(&src, &["commit", "-q", "--amend", "--no-edit", "--date", DATE_2], DATE_2);
    build_vcs(tmp.path(), &src, &out_b);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_certain("vcs-time");
    d.assert_certain("vcs-revision");
}

#[test]
fn vcs_modified() {
    let (tmp, src) = repo();
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build_vcs(tmp.path(), &src, &out_a);
    std::fs::write(src.join("README"), "hello, modified\n").expect("writing README");
    build_vcs(tmp.path(), &src, &out_b);
    reprove_diff(&out_a, &out_b).assert_top("vcs-modified");
}

#[test]
fn main_version_from_tags() {
    let (tmp, src) = repo();
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    git(&src, &["tag", "v1.0.0"], DATE_1);
    build_vcs(tmp.path(), &src, &out_a);
    git(&src, &["tag", "-d", "v1.0.0"], DATE_1);
    git(&src, &["tag", "v1.0.1"], DATE_1);
    build_vcs(tmp.path(), &src, &out_b);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("main-version");
    assert!(d.stdout.lines().next().unwrap_or_default().contains("v1.0.0 vs v1.0.1"), "{}", d.stdout);
}

// Dependencies.

#[test]
fn dependency_version_of_a_replaced_module() {
    let (tmp, src) = workspace();
    let go = go_on_path();
    let dep = src.join("dep");
    std::fs::create_dir_all(&dep).expect("creating dep");
    std::fs::write(dep.join("go.mod"), "module example.com/dep\n\ngo 1.21\n").expect("writing dep go.mod");
    std::fs::write(dep.join("dep.go"), "package dep\n\nfunc Name() string { return \"dep\" }\n")
        .expect("writing dep.go");
    std::fs::write(src.join("use_dep.go"), "package main\n\nimport \"example.com/dep\"\n\nvar _ = dep.Name()\n")
        .expect("writing use_dep.go");
    let go_mod = |version: &str| {
        format!(
            "module example.com/hello\n\ngo 1.21\n\nrequire example.com/dep {version}\n\nreplace example.com/dep => ./dep\n"
        )
    };
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::write(src.join("go.mod"), go_mod("v1.0.0")).expect("writing go.mod");
    build(&go, &src, &out_a, TRIM, &[]);
    std::fs::write(src.join("go.mod"), go_mod("v1.1.0")).expect("writing go.mod");
    build(&go, &src, &out_b, TRIM, &[]);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("dependency-version");
    assert!(d.stdout.lines().next().unwrap_or_default().contains("example.com/dep v1.0.0 vs v1.1.0"), "{}", d.stdout);
}

#[test]
fn dependency_sum_module_mode_vs_vendor() {
    // A real module through the proxy GOPROXY names; vendoring drops the sum.
    let (tmp, src) = workspace();
    let go = go_on_path();
    std::fs::write(
        src.join("use_uuid.go"),
        "package main\n\nimport \"github.com/google/uuid\"\n\nvar _ = uuid.NameSpaceURL\n",
    )
    .expect("writing use_uuid.go");
    let mut get = go_command(&go, &src);
    get.args(["get", "github.com/google/uuid@v1.6.0"]);
    match std::env::var_os("GOPROXY") {
        Some(proxy) => get.env("GOPROXY", proxy),
        None => get.env_remove("GOPROXY"),
    };
    run(&mut get);
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    build(&go, &src, &out_a, &["-trimpath", "-mod=mod"], &[]);
    run(go_command(&go, &src).args(["mod", "vendor"]));
    build(&go, &src, &out_b, &["-trimpath", "-mod=vendor"], &[]);
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("dependency-sum");
    assert!(d.stdout.lines().next().unwrap_or_default().contains("(no sum)"), "{}", d.stdout);
}

// Damaged and odd inputs.

/// File offset of the ELF64 little-endian section named `want`.
pub(super) fn elf_section_offset(data: &[u8], want: &str) -> usize {
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes")) as usize;
    assert_eq!(&data[..4], b"\x7fELF");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .find(|&i| {
            let name =
                strtab + u32::from_le_bytes(data[header(i)..header(i) + 4].try_into().expect("4 bytes")) as usize;
            data[name..].starts_with(want.as_bytes()) && data[name + want.len()] == 0
        })
        .map(|i| u64_at(header(i) + 0x18))
        .unwrap_or_else(|| panic!("no section {want}"))
}

#[test]
fn a_flipped_code_byte_is_a_change_after_the_link() {
    let (tmp, src) = workspace();
    let out_a = tmp.path().join("a");
    build(&go_on_path(), &src, &out_a, TRIM, &[]);
    let mut data = std::fs::read(&out_a).expect("reading the binary");
    let text_at = elf_section_offset(&data, ".text");
    data[text_at + 0x40] ^= 0xff;
    let out_b = tmp.path().join("b");
    std::fs::write(&out_b, &data).expect("writing the copy");
    let d = reprove_diff(&out_a, &out_b);
    // The build IDs are the same, content ID included, and b fails the self-check that a
    // passes: b was changed after its link, for certain.
    d.assert_top("modified-after-link");
    assert_eq!(d.confidence_of("modified-after-link").as_deref(), Some("certain"));
    let first = d.json["causes"][0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .find(|e| e["name"] == "first difference")
        .cloned();
    // Placed in its section, and in the function the symbol table says holds it.
    let first = first.expect("first difference");
    let place = first["a"].as_str().unwrap_or_default();
    assert!(place.starts_with(&format!("{:#x} (.text+0x40, in ", text_at + 0x40)), "{place}");
    let text = d.json["sections"].as_array().expect("sections").iter().find(|s| s["name"] == ".text").cloned();
    assert_eq!(text.expect(".text section")["firstDifference"], 0x40);
    let changed = d.json["functions"]["changed"].as_array().expect("changed functions");
    assert!(!changed.is_empty(), "the function holding the byte differs");
}

#[test]
fn truncated_copy_still_diffs() {
    let (tmp, src) = workspace();
    let out_a = tmp.path().join("a");
    build(&go_on_path(), &src, &out_a, TRIM, &[]);
    let data = std::fs::read(&out_a).expect("reading the binary");
    let out_b = tmp.path().join("b");
    std::fs::write(&out_b, &data[..data.len() / 3]).expect("writing the copy");
    let d = reprove_diff(&out_a, &out_b);
    d.assert_top("truncated");
    assert_eq!(d.json["b"]["size"], data.len() / 3);
}

#[test]
fn bad_input_exits_2() {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"not a binary").expect("writing a file");
    let bin = env!("CARGO_BIN_EXE_reprove");
    for (a, b) in [(file.clone(), tmp.path().join("missing")), (tmp.path().to_path_buf(), file.clone())] {
        let out = Command::new(bin).arg("diff").arg(&a).arg(&b).output().expect("running reprove");
        assert_eq!(out.status.code(), Some(2), "{a:?} {b:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("reprove: error: reading "));
    }
}

#[test]
fn non_go_files_still_diff() {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::write(&a, b"one\n").expect("writing a");
    std::fs::write(&b, b"two\n").expect("writing b");
    let d = reprove_diff(&a, &b);
    d.assert_top("unknown");
    assert!(d.json["a"]["buildInfoError"].is_string());
    assert!(d.json["a"]["objectError"].is_string());
}

#[test]
fn schema_lists_every_cause_code_in_order() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/diff.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(path).expect("reading the schema")).expect("JSON");
    let listed: Vec<&str> = schema["$defs"]["cause"]["properties"]["code"]["enum"]
        .as_array()
        .expect("code enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let codes: Vec<&str> = compare::CauseCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes);
}

#[test]
fn damaged_copies_compare_without_panicking() {
    let (tmp, src) = workspace();
    let out = tmp.path().join("a");
    build(&go_on_path(), &src, &out, TRIM, &[]);
    let full = std::fs::read(&out).expect("reading the binary");
    // Truncations at many points, including inside the headers.
    for cut in [0, 1, 4, 16, 63, 64, 100, 4096].into_iter().chain((1..16).map(|i| full.len() * i / 16)) {
        let c = compare::compare(&full, &full[..cut]);
        assert_eq!(c.causes.first().map(|c| c.code), Some(compare::CauseCode::Truncated), "cut {cut}");
    }
    // Scribbles over the ELF header, the program and section headers, and the build info.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let shoff = u64::from_le_bytes(full[0x28..0x30].try_into().expect("8 bytes")) as usize;
    let buildinfo = full.windows(14).position(|w| w == b"\xff Go buildinf:").expect("build info");
    for round in 0..60 {
        let mut copy = full.clone();
        let region = match round % 4 {
            0 => 0..64,
            1 => 64..0x300,
            2 => shoff..full.len(),
            _ => buildinfo..buildinfo + 64,
        };
        for _ in 0..1 + next() % 8 {
            let at = region.start + (next() as usize) % region.len();
            copy[at] = next() as u8;
        }
        let c = compare::compare(&full, &copy);
        assert!(c.identical || !c.causes.is_empty(), "round {round}: no cause");
        let doc = compare::report::v1::Report::new(&c, "a", "b");
        serde_json::to_string(&doc).expect("the report serializes");
        let _ = compare::report::render_text(&c, "a", "b");
    }
}
