//! `reprove verify --module PATH@VERSION`: a binary installed with `go install
//! PATH/CMD@VERSION` rebuilt from the module zip fetched through GOPROXY, no
//! Git. A real module (`example.com/modtool`, a command using
//! github.com/spf13/pflag) is published in the test to a GOPROXY on
//! 127.0.0.1 that also serves the test module cache; the references are built
//! by the real `go install` from that proxy; the rebuild runs in the sandbox
//! with the toolchain image `verify_e2e::shared()` pushed.
//!
//! Cases: `-trimpath` (reproduced, exit 0; again with `--module auto`); no
//! `-trimpath` (the module cache mounted where the reference's file table
//! says it was: reproduced); a reference built from a proxy that served another zip
//! under the same version (`main-module-sum`, exit 1, nothing built); a
//! reference built with a changed dependency (`dependency-sum`, the module
//! named, exit 1); a version the proxy lacks (`not-found`, exit 3); a
//! reference whose main module is another version (exit 2); a hostile zip
//! (an entry outside the module's prefix: refused, exit 3, nothing written
//! outside the cache); a checksum database that knows the version (vouches,
//! names a claim it does not know, blames a proxy serving another zip); a
//! cross build (GOPATH/bin/GOOS_GOARCH).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::mod_sumdb;
use crate::support::harness::{self, make_zip, ZipEntry};
use crate::support::server::{Behavior, Serve, Server};
use crate::support::{goenv, run_ok};
use crate::verify_e2e::{self, shared, status, strs};

pub(crate) const MODULE: &str = "example.com/modtool";
pub(crate) const VERSION: &str = "v1.0.0";
pub(crate) const PKG: &str = "example.com/modtool/cmd/modtool";

pub(crate) const MAIN_GO: &str = "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/spf13/pflag\"\n)\n\n\
func main() {\n\tname := pflag.String(\"name\", \"world\", \"who to greet\")\n\tpflag.Parse()\n\tfmt.Println(\"hello\", *name)\n}\n";

/// The module's go.mod.
fn go_mod() -> String {
    format!("module {MODULE}\n\ngo 1.22\n\nrequire github.com/spf13/pflag v1.0.5\n")
}

/// go.sum lines for pflag v1.0.5 from the test module cache.
fn go_sum() -> String {
    let v = goenv::proxy_root().join("github.com/spf13/pflag/@v");
    let zip = fs::read_to_string(v.join("v1.0.5.ziphash")).unwrap_or_else(|e| panic!("{e}"));
    let modh = gomod::hash_go_mod(&fs::read(v.join("v1.0.5.mod")).unwrap_or_default());
    format!("github.com/spf13/pflag v1.0.5 {}\ngithub.com/spf13/pflag v1.0.5/go.mod {modh}\n", zip.trim())
}

/// The GOPROXY files of `example.com/modtool@VERSION` whose zip holds `files`
/// (relative to the module root) besides go.mod and go.sum.
pub(crate) fn published(version: &str, main_go: &str, extra: &[ZipEntry]) -> HashMap<String, Vec<u8>> {
    let prefix = format!("{MODULE}@{version}/");
    let mut entries = vec![
        ZipEntry::new(&format!("{prefix}go.mod"), go_mod().as_bytes()),
        ZipEntry::new(&format!("{prefix}go.sum"), go_sum().as_bytes()),
        ZipEntry::new(&format!("{prefix}cmd/modtool/main.go"), main_go.as_bytes()),
    ];
    for e in extra {
        entries.push(ZipEntry { name: e.name.clone(), data: e.data.clone(), ..Default::default() });
    }
    let base = format!("/{MODULE}/@v");
    HashMap::from([
        (format!("{base}/list"), format!("{version}\n").into_bytes()),
        (
            format!("{base}/{version}.info"),
            format!("{{\"Version\":\"{version}\",\"Time\":\"2024-05-01T00:00:00Z\"}}").into_bytes(),
        ),
        (format!("{base}/{version}.mod"), go_mod().into_bytes()),
        (format!("{base}/{version}.zip"), make_zip(&entries)),
    ])
}

/// A GOPROXY serving the test module cache plus `overrides`.
pub(crate) fn proxy(overrides: HashMap<String, Vec<u8>>) -> Server {
    Server::start(Behavior::Serve(Serve { root: goenv::proxy_root(), overrides, ..Default::default() }))
}

/// A scratch directory, made writable again (module caches are read-only) when dropped.
pub(crate) struct Scratch(tempfile::TempDir);

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch(goenv::tmp())
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        harness::make_writable(self.0.path());
    }
}

/// `go install [flags] PKG@VERSION` from `proxy` (GOSUMDB=off, as for a module the
/// database does not know) into `dir/bin`, with its own module cache; the binary.
pub(crate) fn install(s: &Scratch, name: &str, proxy: &str, flags: &[&str]) -> PathBuf {
    let bin = s.path(&format!("{name}-bin"));
    let modcache = s.path(&format!("{name}-modcache"));
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new("go");
    goenv::base_env(&mut cmd, s.0.path(), &modcache, &[("GOPROXY", proxy.to_string())]);
    cmd.env("GOBIN", &bin).env("CGO_ENABLED", "0").env("GOFLAGS", "").arg("install").args(flags);
    cmd.arg(format!("{PKG}@{VERSION}"));
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    bin.join("modtool")
}

/// `reprove verify --module MODULE --reference FILE --toolchain … --from-reference --ldflags=`.
fn verify(
    proxy: &str,
    cache: &Path,
    module: &str,
    reference: &Path,
    extra: &[&str],
) -> (crate::support::Outcome, Value) {
    verify_env(proxy, cache, module, reference, extra, &[])
}

/// [`verify`] with these environment variables too.
fn verify_env(
    proxy: &str,
    cache: &Path,
    module: &str,
    reference: &Path,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (crate::support::Outcome, Value) {
    let s = shared();
    let reference = reference.display().to_string();
    let mut args: Vec<String> = ["--module", module, "--reference", &reference, "--toolchain", &s.toolchain]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(["--from-reference", "--ldflags=", "--runtime", "runc"].iter().map(|a| a.to_string()));
    args.extend(extra.iter().map(|a| a.to_string()));
    verify_e2e::verify_with_env(proxy, cache, &strs(&args), env)
}

fn causes(doc: &Value) -> Vec<String> {
    doc["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).map(str::to_string).collect()
}

/// `go install -trimpath PKG@VERSION`: reproduced from the module zip, exit 0;
/// `--module auto` takes the module from the reference's build info.
#[test]
fn a_go_install_trimpath_binary_is_reproduced_from_the_module_zip() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let reference = install(&scratch, "ref", &server.url(), &["-trimpath"]);
    let module = format!("{MODULE}@{VERSION}");
    let (out, doc) = verify(&server.url(), &s.cache, &module, &reference, &[]);
    status(&out, &doc, 0);
    assert_eq!(doc["verdict"], "reproduced");
    let src = &doc["inputs"]["source"];
    assert_eq!(src["uri"], format!("pkg:golang/{module}").as_str(), "{doc:#}");
    assert_eq!(src["rev"], VERSION);
    assert_eq!(src["commit"], Value::Null);
    let m = &src["module"];
    assert_eq!((m["path"].as_str(), m["version"].as_str()), (Some(MODULE), Some(VERSION)), "{doc:#}");
    assert_eq!(m["sum"], m["recordedSum"], "{doc:#}");
    let zip = &server_zip();
    assert_eq!(m["zipSha256"], support_sha256(zip).as_str(), "{doc:#}");
    assert_eq!(m["checkedAgainst"][0], "reference build info", "{doc:#}");
    let go_args: Vec<&str> =
        doc["recipe"]["goArgs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(go_args.first(), Some(&"install"), "{doc:#}");
    assert_eq!(go_args.last(), Some(&format!("{PKG}@{VERSION}").as_str()), "{doc:#}");
    assert_eq!(doc["recipe"]["buildEnv"]["GOSUMDB"], "off");
    assert_eq!(doc["modules"][0]["path"], "github.com/spf13/pflag", "{doc:#}");
    let steps: Vec<&str> = doc["timings"].as_array().into_iter().flatten().filter_map(|t| t["step"].as_str()).collect();
    assert_eq!(steps, ["reference", "source", "recipe", "go-sum", "modules", "toolchain", "build", "compare"]);

    // `auto`: the module path and version from the reference's build info.
    let (out, auto) = verify(&server.url(), &s.cache, "auto", &reference, &[]);
    status(&out, &auto, 0);
    assert_eq!(auto["inputs"]["source"]["module"]["version"], VERSION);
}

fn server_zip() -> Vec<u8> {
    published(VERSION, MAIN_GO, &[]).remove(&format!("/{MODULE}/@v/{VERSION}.zip")).unwrap_or_default()
}

fn support_sha256(data: &[u8]) -> String {
    stdx::sha256_hex(data)
}

/// Without `-trimpath` the binary embeds the module cache path it was built
/// in: the rebuild reads it from the reference's file table and mounts the
/// verified cache there (GOMODCACHE, origin `reference`): reproduced (mounted
/// at reprove's own place, the paths differ: `embedded-path`).
#[test]
fn without_trimpath_the_module_cache_is_mounted_where_the_reference_had_it() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let reference = install(&scratch, "untrimmed", &server.url(), &[]);
    let module = format!("{MODULE}@{VERSION}");
    let (out, doc) = verify(&server.url(), &s.cache, &module, &reference, &[]);
    status(&out, &doc, 0);
    let modcache = scratch.path("untrimmed-modcache").display().to_string();
    assert_eq!(doc["recipe"]["env"]["GOMODCACHE"], modcache.as_str(), "{doc:#}");
    assert_eq!(doc["recipe"]["origins"]["env.GOMODCACHE"], "reference:file table", "{doc:#}");
    assert_eq!(doc["recipe"]["buildEnv"]["GOMODCACHE"], modcache.as_str(), "{doc:#}");
    assert_eq!(doc["recipe"]["buildEnv"]["GOPROXY"], format!("file://{modcache}/cache/download").as_str());
}

/// A reference built from a proxy that served another zip under the same
/// version (GOSUMDB=off let go accept it): it claims a source that was not
/// published. `main-module-sum`, exit 1, nothing built.
#[test]
fn a_binary_claiming_an_unpublished_zip_is_named_as_such() {
    let s = shared();
    let honest = proxy(published(VERSION, MAIN_GO, &[]));
    let evil_main = MAIN_GO.replace("\"hello\"", "\"pwned\"");
    let evil = proxy(published(VERSION, &evil_main, &[]));
    let scratch = Scratch::new();
    let reference = install(&scratch, "evil", &evil.url(), &["-trimpath"]);
    let (out, doc) = verify(&honest.url(), &s.cache, &format!("{MODULE}@{VERSION}"), &reference, &[]);
    status(&out, &doc, 1);
    assert_eq!(doc["verdict"], "not-reproduced");
    assert_eq!(causes(&doc), ["main-module-sum"], "{doc:#}");
    assert_eq!(doc["causes"][0]["confidence"], "certain");
    assert_eq!(doc["rebuilt"], Value::Null, "{doc:#}");
    assert_eq!(doc["error"], Value::Null, "{doc:#}");
    let steps: Vec<&str> = doc["timings"].as_array().into_iter().flatten().filter_map(|t| t["step"].as_str()).collect();
    assert!(!steps.contains(&"build"), "{steps:?}");
    assert!(doc["summary"].as_str().is_some_and(|t| t.contains("main-module-sum")), "{doc:#}");
}

/// A reference built with a changed dependency (the proxy served another
/// pflag v1.0.5 zip, and `go install PKG@VERSION` does not read the module's
/// go.sum): not reproduced, the dependency named.
#[test]
fn a_binary_with_a_changed_dependency_is_not_reproduced_and_the_module_named() {
    let s = shared();
    let honest = proxy(published(VERSION, MAIN_GO, &[]));
    let mut overrides = published(VERSION, MAIN_GO, &[]);
    overrides.insert("/github.com/spf13/pflag/@v/v1.0.5.zip".into(), changed_pflag_zip());
    let tampered = proxy(overrides);
    let scratch = Scratch::new();
    let reference = install(&scratch, "dep", &tampered.url(), &["-trimpath"]);
    let (out, doc) = verify(&honest.url(), &s.cache, &format!("{MODULE}@{VERSION}"), &reference, &[]);
    status(&out, &doc, 1);
    assert!(causes(&doc).iter().any(|c| c == "dependency-sum"), "{doc:#}");
    let findings = doc["moduleFindings"].to_string();
    assert!(findings.contains("github.com/spf13/pflag"), "{doc:#}");
}

/// pflag v1.0.5's zip with one line added to flag.go, packed from the test module cache.
pub(crate) fn changed_pflag_zip() -> Vec<u8> {
    let dir = harness::shared_cache().join("github.com/spf13/pflag@v1.0.5");
    let entries: Vec<ZipEntry> = harness::read_tree(&dir)
        .into_iter()
        .map(|(name, mut data)| {
            if name == "flag.go" {
                data.extend_from_slice(b"\n// changed\n");
            }
            ZipEntry::new(&format!("github.com/spf13/pflag@v1.0.5/{name}"), &data)
        })
        .collect();
    make_zip(&entries)
}

/// A version the proxy does not have: the source step fails with `not-found`
/// (the proxy's answer; exit 3). A reference whose main module is another
/// version: an input error (exit 2).
#[test]
fn a_version_the_proxy_lacks_and_a_mismatched_reference_are_errors() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let digest = format!("sha256:{}", "0".repeat(64));
    let args: Vec<String> = ["--module", &format!("{MODULE}@v1.0.1"), "--reference-digest", &digest]
        .iter()
        .chain(["--toolchain", s.toolchain.as_str(), "--from-reference", "--ldflags="].iter())
        .map(|a| a.to_string())
        .collect();
    let (out, doc) = verify_e2e::verify(&server.url(), &s.cache, &strs(&args));
    status(&out, &doc, 3);
    assert_eq!(
        (doc["error"]["step"].as_str(), doc["error"]["code"].as_str()),
        (Some("source"), Some("not-found")),
        "{doc:#}"
    );
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("v1.0.1")), "{doc:#}");

    let scratch = Scratch::new();
    let reference = install(&scratch, "ref", &server.url(), &["-trimpath"]);
    let (out, doc) = verify(&server.url(), &s.cache, &format!("{MODULE}@v1.0.1"), &reference, &[]);
    status(&out, &doc, 2);
    assert_eq!(doc["error"]["code"], "source", "{doc:#}");
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("v1.0.0")), "{doc:#}");
}

/// A zip with an entry that climbs out of the module's directory: refused by
/// the zip checks before anything is extracted (exit 3), nothing written
/// outside the module cache.
#[test]
fn a_hostile_module_zip_stays_contained() {
    let s = shared();
    let honest = published(VERSION, MAIN_GO, &[]);
    let scratch = Scratch::new();
    let reference = install(&scratch, "ref", &proxy(honest).url(), &["-trimpath"]);
    let escape = ZipEntry::new(&format!("{MODULE}@{VERSION}/../../../../escaped.txt"), b"out");
    let hostile = proxy(published(VERSION, MAIN_GO, &[escape]));
    let cache = scratch.path("cold-cache");
    let (out, doc) = verify(&hostile.url(), &cache, &format!("{MODULE}@{VERSION}"), &reference, &[]);
    assert_ne!(out.status, Some(0), "{doc:#}");
    assert_eq!(doc["error"]["step"], "source", "{doc:#}");
    assert_eq!((out.status, doc["error"]["code"].as_str()), (Some(3), Some("bad-response")), "{doc:#}");
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("unsafe zip entry name")), "{doc:#}");
    let _ = s;
    for dir in [scratch.0.path().to_path_buf(), cache.clone(), cache.join("modcache")] {
        assert!(!dir.join("escaped.txt").exists(), "{}", dir.display());
    }
    assert!(!cache.join("modcache").join(format!("{MODULE}@{VERSION}")).exists());
}

/// With a checksum database (golang.org/x/mod/sumdb's own server on
/// 127.0.0.1) that knows the version: the zip is checked against it and
/// against the recorded sum (reproduced, both named); a reference claiming
/// another zip is named against the database (`main-module-sum`); a proxy
/// serving another zip than the database's is a security error (exit 3),
/// the proxy's fault, not the binary's.
#[test]
fn the_checksum_database_vouches_for_the_module_zip() {
    let scratch = Scratch::new();
    let honest_files = published(VERSION, MAIN_GO, &[]);
    let zip_file = scratch.path("honest.zip");
    fs::write(&zip_file, &honest_files[&format!("/{MODULE}/@v/{VERSION}.zip")]).unwrap_or_else(|e| panic!("{e}"));
    let h1 = gomod::hash_zip(&zip_file, Some(&format!("{MODULE}@{VERSION}"))).unwrap_or_else(|e| panic!("{e}"));
    let line = format!("{MODULE} {VERSION} {h1} {}\n", gomod::hash_go_mod(go_mod().as_bytes()));
    let bin = mod_sumdb::sumdb_bin(scratch.0.path());
    let db = mod_sumdb::start_db(&bin, scratch.0.path(), "modtool", &line, &[]);
    let (gosumdb, gopath) = (PathBuf::from(&db.gosumdb), scratch.path("gopath"));
    let env: [(&str, &Path); 2] = [("GOSUMDB", &gosumdb), ("GOPATH", &gopath)];
    let honest = proxy(honest_files);
    let evil = proxy(published(VERSION, &MAIN_GO.replace("\"hello\"", "\"pwned\""), &[]));
    let module = format!("{MODULE}@{VERSION}");
    let database = format!("checksum database {}", mod_sumdb::DB_NAME);

    let reference = install(&scratch, "ref", &honest.url(), &["-trimpath"]);
    let cache = scratch.path("cache");
    let (out, doc) = verify_env(&honest.url(), &cache, &module, &reference, &[], &env);
    status(&out, &doc, 0);
    let checked = &doc["inputs"]["source"]["module"]["checkedAgainst"];
    assert_eq!(checked[0], database.as_str(), "{doc:#}");
    assert_eq!(checked[1], "reference build info", "{doc:#}");
    assert_eq!(doc["inputs"]["source"]["module"]["sum"], h1.to_string().as_str());

    let claimed = install(&scratch, "evil", &evil.url(), &["-trimpath"]);
    let (out, doc) = verify_env(&honest.url(), &cache, &module, &claimed, &[], &env);
    status(&out, &doc, 1);
    assert_eq!(causes(&doc), ["main-module-sum"], "{doc:#}");
    let evidence = doc["causes"][0]["evidence"][0]["rebuilt"].as_str().unwrap_or_default();
    assert!(evidence.contains(&h1.to_string()) && evidence.contains(&database), "{doc:#}");

    // The honest reference, a proxy serving another zip, a cold cache: the proxy is at fault.
    let (out, doc) = verify_env(&evil.url(), &scratch.path("cold"), &module, &reference, &[], &env);
    status(&out, &doc, 3);
    let error = (doc["error"]["class"].as_str(), doc["error"]["code"].as_str());
    assert_eq!(error, (Some("security"), Some("checksum-mismatch")), "{doc:#}");
    assert!(!scratch.path("cold/modcache").join(&module).exists());
}

/// A cross build (`GOARCH=arm64 go install …`): go refuses GOBIN for it and
/// writes GOPATH/bin/linux_arm64/; the rebuild finds it there: reproduced.
#[test]
fn a_cross_installed_binary_is_reproduced() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let gopath = scratch.path("gopath");
    let mut cmd = Command::new("go");
    goenv::base_env(&mut cmd, scratch.0.path(), &scratch.path("modcache"), &[("GOPROXY", server.url())]);
    cmd.env("GOPATH", &gopath).env("GOOS", "linux").env("GOARCH", "arm64").env("CGO_ENABLED", "0").env("GOFLAGS", "");
    cmd.args(["install", "-trimpath", &format!("{PKG}@{VERSION}")]);
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let reference = gopath.join("bin/linux_arm64/modtool");
    let (out, doc) = verify(&server.url(), &s.cache, &format!("{MODULE}@{VERSION}"), &reference, &[]);
    status(&out, &doc, 0);
    assert_eq!(doc["recipe"]["goarch"], "arm64", "{doc:#}");
}
