//! `reprove mod verify` against `go mod verify` on the same real module cache
//! (the fixture project's ~150-module graph, downloaded once per machine):
//! clean, with go.sum tampered with, and with the cache tampered with in every
//! way `go mod verify` can tell apart. For each, the modules Go names and the
//! kind of each failure must be ours too; what we report beyond Go (go.sum
//! checks) is checked against explicit expectations.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use gomod::{ModCache, ModuleVersion};
use serde_json::Value;

use crate::support::{self, harness};

use support::{run, Failures, Outcome};

use harness::{
    go, go_sum_lines, go_verify_findings, make_zip, read_tree, remove_file, replace_file, ScratchCache, ZipEntry,
};

type Finding = (String, String, String);

fn finding(path: &str, version: &str, kind: &str) -> Finding {
    (path.to_string(), version.to_string(), kind.to_string())
}

/// What `go mod verify` looks up in the checksum database (offline): the
/// module whose /go.mod line the tampered go.sum drops.
fn checksums() -> &'static harness::Checksums {
    harness::checksums(&["github.com/beorn7/perks@v1.0.1"])
}

/// Runs `reprove mod verify --json` then `go mod verify` in `project`.
fn run_both(project: &Path, modcache: &Path) -> (Outcome, Value, Outcome) {
    let ours = harness::reprove(project, modcache, &["mod", "verify", "--json"]);
    let doc: Value = serde_json::from_slice(&ours.stdout).unwrap_or_else(|e| {
        panic!("reprove mod verify --json: {e}\nstdout: {}\nstderr: {}", ours.stdout_str(), ours.stderr_str())
    });
    let mut cmd = go(project, modcache, false);
    checksums().apply(&mut cmd).args(["mod", "verify"]);
    let theirs = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    (ours, doc, theirs)
}

/// Problems of our report, split into the kinds `go mod verify` reports and the rest.
fn our_findings(doc: &Value) -> (BTreeSet<Finding>, BTreeSet<Finding>) {
    let mut go_kinds = BTreeSet::new();
    let mut extra = BTreeSet::new();
    for p in doc["problems"].as_array().into_iter().flatten() {
        let f = finding(
            p["path"].as_str().unwrap_or_default(),
            p["version"].as_str().unwrap_or_default(),
            p["kind"].as_str().unwrap_or_default(),
        );
        if p["reportedByGo"].as_bool() == Some(true) || f.2 == "gomod-mismatch" {
            go_kinds.insert(f);
        } else {
            extra.insert(f);
        }
    }
    (go_kinds, extra)
}

/// What `go mod verify` reported: its per-module lines, and a go.sum
/// mismatch of a go.mod (`verifying M@V/go.mod: checksum mismatch`), which stops it.
fn go_findings(out: &Outcome) -> BTreeSet<Finding> {
    let stderr = out.stderr_str();
    let mut set = go_verify_findings(&stderr);
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("verifying ").and_then(|r| r.strip_suffix(": checksum mismatch")) {
            if let Some((path, version)) = rest.strip_suffix("/go.mod").and_then(|m| m.split_once('@')) {
                set.insert(finding(path, version, "gomod-mismatch"));
            }
        }
    }
    set
}

struct Case<'a> {
    name: &'a str,
    project: PathBuf,
    /// What go mod verify must name (and so must we).
    go_expected: BTreeSet<Finding>,
    /// Our findings beyond Go's, on top of the clean baseline's warnings.
    extra_expected: BTreeSet<Finding>,
    /// Baseline findings the case removes (a dropped go.sum line's module no longer warns as downloaded, …).
    extra_removed: BTreeSet<Finding>,
    our_exit: i32,
}

fn check_case(failures: &mut Failures, case: &Case<'_>, modcache: &Path, baseline: &BTreeSet<Finding>) {
    failures.case();
    let (ours, doc, theirs) = run_both(&case.project, modcache);
    let mut report = String::new();
    let theirs_found = go_findings(&theirs);
    let (ours_go, ours_extra) = our_findings(&doc);
    if theirs_found != case.go_expected {
        report.push_str(&format!(
            "go mod verify did not report what the case expects (the oracle changed?)\n  expected {:?}\n  go       {:?}\n  go stderr: {}\n",
            case.go_expected,
            theirs_found,
            theirs.stderr_str()
        ));
    }
    if ours_go != theirs_found {
        report.push_str(&format!("modules named differ\n  go   {theirs_found:?}\n  ours {ours_go:?}\n"));
    }
    // Go's own lines for the kinds it words itself must be ours word for word.
    let our_messages: BTreeSet<&str> =
        doc["problems"].as_array().into_iter().flatten().filter_map(|p| p["message"].as_str()).collect();
    for line in theirs.stderr_str().lines() {
        let words_by_go = ["zip has been modified", "dir has been modified", "missing ziphash"];
        if words_by_go.iter().any(|w| line.contains(w)) && !our_messages.contains(line) {
            report.push_str(&format!("go's line is not one of ours: {line}\n"));
        }
    }
    let go_ok = theirs.success();
    if go_ok != theirs_found.is_empty() {
        report.push_str(&format!("go exit {:?} but findings {theirs_found:?}\n", theirs.status));
    }
    let mut want_extra: BTreeSet<Finding> = baseline.difference(&case.extra_removed).cloned().collect();
    want_extra.extend(case.extra_expected.iter().cloned());
    if ours_extra != want_extra {
        let missing: Vec<_> = want_extra.difference(&ours_extra).collect();
        let unexpected: Vec<_> = ours_extra.difference(&want_extra).collect();
        report.push_str(&format!("findings beyond go differ\n  missing    {missing:?}\n  unexpected {unexpected:?}\n"));
    }
    if ours.status != Some(case.our_exit) {
        report.push_str(&format!("reprove exit {:?}, want {}\n{}\n", ours.status, case.our_exit, ours.stderr_str()));
    }
    if let Err(e) = validate(&doc) {
        report.push_str(&format!("the JSON does not follow schemas/mod-verify.schema.json: {e}\n"));
    }
    if doc["verified"].as_bool() != Some(case.our_exit == 0) {
        report.push_str(&format!("JSON verified={} but exit {:?}\n", doc["verified"], ours.status));
    }
    // The text output: one line per failure, in the JSON's order, then the summary.
    let text = harness::reprove(&case.project, modcache, &["mod", "verify"]);
    let failing: Vec<&str> = doc["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["failure"].as_bool() == Some(true))
        .filter_map(|p| p["message"].as_str())
        .collect();
    let out = text.stdout_str();
    let lines: Vec<&str> = out.lines().collect();
    let summary_ok = lines.last().is_some_and(|l| {
        if failing.is_empty() {
            l.starts_with("all modules verified")
        } else {
            l.starts_with(&format!("verification failed: {} problem", failing.len()))
        }
    });
    if lines.get(..failing.len()) != Some(&failing[..]) || !summary_ok || text.status != ours.status {
        report.push_str(&format!("text output (exit {:?}):\n{out}\n", text.status));
    }
    if !report.is_empty() {
        failures.fail(case.name, report);
    }
}

/// Every cache path of a module.
struct Paths {
    zip: PathBuf,
    ziphash: PathBuf,
    dir: PathBuf,
    partial: PathBuf,
}

fn paths(modcache: &Path, path: &str, version: &str) -> Paths {
    let cache = ModCache::new(modcache);
    let m = ModuleVersion::new(path, version);
    let p = |s| cache.cache_path(&m, s).unwrap_or_else(|e| panic!("{m}: {e}"));
    Paths {
        zip: p("zip"),
        ziphash: p("ziphash"),
        dir: cache.extracted_dir(&m).unwrap_or_else(|e| panic!("{m}: {e}")),
        partial: p("partial"),
    }
}

fn edit_go_sum(project: &Path, edit: impl Fn(&str) -> Option<String>) {
    let path = project.join("go.sum");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out: String = text.lines().filter_map(|l| edit(l).map(|l| l + "\n")).collect();
    assert_ne!(out, text, "the go.sum edit changed nothing");
    fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Swaps the first character after `h1:` for another valid base64 character.
fn corrupt_hash(line: &str) -> String {
    let i = line.find("h1:").map(|i| i + 3).unwrap_or(0);
    let c = if line[i..].starts_with('A') { "B" } else { "A" };
    format!("{}{}{}", &line[..i], c, &line[i + 1..])
}

fn modify(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f(&mut data);
    replace_file(path, &data);
}

#[test]
fn verify_agrees_with_go_mod_verify() {
    checksums(); // before the copy, which must hold what it fetches
    let scratch = ScratchCache::new();
    let mc = scratch.modcache();
    let mut failures = Failures::new("mod verify vs go mod verify");

    // Clean: both verify everything; our baseline warnings are the downloaded
    // modules a tidy go.sum does not list.
    let clean = scratch.project("project");
    let (ours, doc, theirs) = run_both(&clean, &mc);
    assert!(theirs.success(), "go mod verify on the clean cache: {}", theirs.stderr_str());
    assert_eq!(theirs.stdout_str(), "all modules verified\n");
    assert_eq!(ours.status, Some(0), "reprove on the clean cache: {}{}", ours.stdout_str(), ours.stderr_str());
    if let Err(e) = validate(&doc) {
        panic!("clean cache: the JSON does not follow schemas/mod-verify.schema.json: {e}");
    }
    let (go_kinds, baseline) = our_findings(&doc);
    assert!(go_kinds.is_empty(), "clean cache: {go_kinds:?}");
    assert!(baseline.iter().all(|f| f.2 == "gosum-missing"), "clean cache: {baseline:?}");
    let downloaded = doc["summary"]["downloaded"].as_u64().unwrap_or(0);
    assert!(downloaded >= 100, "only {downloaded} modules in the cache");
    failures.case();

    // A go.mod line of go.sum that does not match the cached go.mod: go stops with a SECURITY ERROR.
    let p = scratch.root.path().join("gomod-mismatch");
    harness::copy_tree(&harness::fixtures_dir().join("project"), &p);
    edit_go_sum(&p, |l| {
        Some(if l.starts_with("github.com/spf13/cobra v1.8.1/go.mod ") { corrupt_hash(l) } else { l.to_string() })
    });
    check_case(
        &mut failures,
        &Case {
            name: "go.sum /go.mod line changed",
            project: p,
            go_expected: [finding("github.com/spf13/cobra", "v1.8.1", "gomod-mismatch")].into(),
            extra_expected: BTreeSet::new(),
            extra_removed: BTreeSet::new(),
            our_exit: 1,
        },
        &mc,
        &baseline,
    );

    // Every other kind of tampering at once, each on its own module.
    let p = scratch.root.path().join("tampered");
    harness::copy_tree(&harness::fixtures_dir().join("project"), &p);
    let mut go_expected = BTreeSet::new();
    let mut extra_expected = BTreeSet::new();
    let mut extra_removed = BTreeSet::new();

    // A file of the extracted directory changed (and a module path with upper case, escaped in the cache).
    for (m, v) in [("github.com/spf13/cobra", "v1.8.1"), ("github.com/BurntSushi/toml", "v1.4.0")] {
        let dir = paths(&mc, m, v).dir;
        modify(&dir.join("README.md"), |d| d.extend_from_slice(b"\ntampered\n"));
        go_expected.insert(finding(m, v, "dir-modified"));
    }
    // A file removed, a file added.
    let d = paths(&mc, "github.com/spf13/pflag", "v1.0.5").dir;
    remove_file(&d.join("README.md"));
    go_expected.insert(finding("github.com/spf13/pflag", "v1.0.5", "dir-modified"));
    let d = paths(&mc, "github.com/gin-contrib/sse", "v0.1.0").dir;
    replace_file(&d.join("extra.go"), b"package sse\n");
    go_expected.insert(finding("github.com/gin-contrib/sse", "v0.1.0", "dir-modified"));
    // The zip replaced by a valid zip with one file changed.
    let gin = paths(&mc, "github.com/gin-gonic/gin", "v1.10.0");
    let entries: Vec<ZipEntry> = read_tree(&gin.dir)
        .into_iter()
        .map(|(name, mut data)| {
            if name == "gin.go" {
                data.extend_from_slice(b"\n// tampered\n");
            }
            ZipEntry::new(&format!("github.com/gin-gonic/gin@v1.10.0/{name}"), &data)
        })
        .collect();
    replace_file(&gin.zip, &make_zip(&entries));
    go_expected.insert(finding("github.com/gin-gonic/gin", "v1.10.0", "zip-modified"));
    // The zip corrupted in the middle (a checksum or inflate error), and cut in half.
    modify(&paths(&mc, "github.com/json-iterator/go", "v1.1.12").zip, |d| {
        let i = d.len() / 2;
        d[i] ^= 0xff;
    });
    go_expected.insert(finding("github.com/json-iterator/go", "v1.1.12", "hash-error"));
    modify(&paths(&mc, "github.com/mattn/go-isatty", "v0.0.20").zip, |d| d.truncate(d.len() / 2));
    go_expected.insert(finding("github.com/mattn/go-isatty", "v0.0.20", "hash-error"));
    // Trailing bytes after the zip: Go's reader still finds the directory: verified.
    modify(&paths(&mc, "github.com/leodido/go-urn", "v1.4.0").zip, |d| d.extend_from_slice(&[0x55; 2000]));
    // The .ziphash deleted: missing ziphash.
    remove_file(&paths(&mc, "github.com/go-playground/locales", "v0.14.1").ziphash);
    go_expected.insert(finding("github.com/go-playground/locales", "v0.14.1", "missing-ziphash"));
    // .ziphash and zip deleted: the directory then counts as partial, nothing is checked: verified.
    // Without a .ziphash there is nothing to compare with go.sum either, so no warning.
    let json = paths(&mc, "github.com/goccy/go-json", "v0.10.2");
    remove_file(&json.ziphash);
    remove_file(&json.zip);
    // A .partial marker: the directory is not checked even though it is modified: verified.
    let toml = paths(&mc, "github.com/pelletier/go-toml/v2", "v2.2.2");
    replace_file(&toml.partial, b"");
    modify(&toml.dir.join("README.md"), |d| d.extend_from_slice(b"tampered"));
    // The zip deleted alone: only the directory is checked: verified.
    remove_file(&paths(&mc, "github.com/cespare/xxhash/v2", "v2.3.0").zip);
    // A wrong .ziphash: zip and directory both "modified"; and go.sum disagrees with it.
    let r2 = paths(&mc, "github.com/modern-go/reflect2", "v1.0.2");
    replace_file(&r2.ziphash, b"h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    go_expected.insert(finding("github.com/modern-go/reflect2", "v1.0.2", "zip-modified"));
    go_expected.insert(finding("github.com/modern-go/reflect2", "v1.0.2", "dir-modified"));
    extra_expected.insert(finding("github.com/modern-go/reflect2", "v1.0.2", "gosum-mismatch"));
    // go.sum: a zip line changed (go does not look), a zip line dropped (a
    // warning), a /go.mod line dropped (go does not mind, we do).
    edit_go_sum(&p, |l| {
        if l.starts_with("github.com/ugorji/go/codec v1.2.12 ") {
            Some(corrupt_hash(l))
        } else if l.starts_with("golang.org/x/arch v0.8.0 ") || l.starts_with("github.com/beorn7/perks v1.0.1/go.mod ")
        {
            None
        } else {
            Some(l.to_string())
        }
    });
    extra_expected.insert(finding("github.com/ugorji/go/codec", "v1.2.12", "gosum-mismatch"));
    extra_expected.insert(finding("golang.org/x/arch", "v0.8.0", "gosum-missing"));
    extra_expected.insert(finding("github.com/beorn7/perks", "v1.0.1", "gomod-missing"));
    extra_removed.insert(finding("github.com/goccy/go-json", "v0.10.2", "gosum-missing"));

    check_case(
        &mut failures,
        &Case {
            name: "tampered cache and go.sum",
            project: p,
            go_expected,
            extra_expected,
            extra_removed,
            our_exit: 1,
        },
        &mc,
        &baseline,
    );
    failures.assert_none();
}

/// Every go.sum line of every fixture equals our hash of the cached zip or
/// go.mod; every .ziphash Go wrote equals our zip hash; every extracted
/// directory hashes to its .ziphash.
#[test]
fn every_real_hash_matches() {
    let cache_root = harness::shared_cache();
    let cache = ModCache::new(cache_root);
    let mut failures = Failures::new("real hashes");
    let mut zips_checked = 0;
    for project in harness::PROJECTS.iter().chain(["gocheck"].iter()) {
        for (path, version, want) in go_sum_lines(&harness::fixtures_dir().join(project).join("go.sum")) {
            let (v, is_mod) = match version.strip_suffix("/go.mod") {
                Some(v) => (v.to_string(), true),
                None => (version.clone(), false),
            };
            let m = ModuleVersion::new(path.clone(), v);
            let Ok(file) = cache.cache_path(&m, if is_mod { "mod" } else { "zip" }) else {
                failures.fail(format!("{m}"), "no cache path");
                continue;
            };
            if !file.exists() {
                continue;
            }
            failures.case();
            let got = if is_mod {
                fs::read(&file).map(|d| gomod::hash_go_mod(&d).to_string()).map_err(|e| e.to_string())
            } else {
                zips_checked += 1;
                gomod::hash_zip(&file, Some(&format!("{}@{}", m.path, m.version)))
                    .map(|h| h.to_string())
                    .map_err(|e| e.to_string())
            };
            if got.as_deref() != Ok(want.as_str()) {
                failures.fail(format!("{project}: {path} {version}"), format!("go.sum {want}\nours   {got:?}"));
            }
        }
    }
    assert!(zips_checked >= 100, "only {zips_checked} go.sum zip lines had a zip in the cache");

    // Every .ziphash and extracted directory of the cache.
    let download = cache_root.join("cache/download");
    let mut ziphashes = Vec::new();
    find_ziphashes(&download, &mut ziphashes);
    for zh in ziphashes {
        failures.case();
        let want = fs::read_to_string(&zh).unwrap_or_default().trim().to_string();
        let zip = zh.with_extension("zip");
        if zip.exists() {
            let got = gomod::hash_zip(&zip, None).map(|h| h.to_string()).map_err(|e| e.to_string());
            if got.as_deref() != Ok(want.as_str()) {
                failures.fail(zip.display().to_string(), format!(".ziphash {want}\nours     {got:?}"));
            }
        }
        // <cache>/cache/download/<escaped path>/@v/<escaped version>.ziphash → <cache>/<escaped path>@<escaped version>
        let Ok(rel) = zh.strip_prefix(&download) else { continue };
        let rel = rel.to_string_lossy();
        let Some((epath, file)) = rel.split_once("/@v/") else { continue };
        let ever = file.trim_end_matches(".ziphash");
        let dir = cache_root.join(format!("{epath}@{ever}"));
        if dir.is_dir() {
            let prefix = format!(
                "{}@{}",
                gomod::module::unescape_path(epath).unwrap_or_default(),
                gomod::module::unescape_version(ever).unwrap_or_default()
            );
            let got = gomod::hash_dir(&dir, &prefix).map(|h| h.to_string()).map_err(|e| e.to_string());
            if got.as_deref() != Ok(want.as_str()) {
                failures.fail(dir.display().to_string(), format!(".ziphash {want}\nours     {got:?}"));
            }
        }
    }
    failures.assert_none();
}

fn find_ziphashes(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_ziphashes(&p, out);
        } else if p.extension().is_some_and(|x| x == "ziphash") {
            out.push(p);
        }
    }
}

/// Checks `doc` against schemas/mod-verify.schema.json with the subset of
/// JSON Schema the file uses (type, const, enum, required, properties,
/// additionalProperties: false, items, $ref, oneOf).
fn validate(doc: &Value) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/mod-verify.schema.json");
    let schema: Value =
        serde_json::from_slice(&fs::read(&path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    check(&schema, &schema, doc, "$")
}

fn check(root: &Value, s: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return check(root, &root["$defs"][name], v, at);
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let ok = alts.iter().filter(|a| check(root, a, v, at).is_ok()).count();
        return if ok == 1 { Ok(()) } else { Err(format!("{at}: {ok} of oneOf match {v}")) };
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{at}: want {c}, got {v}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in the enum"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_u64() || v.is_i64(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let (Some(obj), Some(props)) = (v.as_object(), s.get("properties").and_then(Value::as_object)) {
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = r.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                return Err(format!("{at}: missing {key}"));
            }
        }
        for (k, x) in obj {
            match props.get(k) {
                Some(ps) => check(root, ps, x, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: unexpected key {k}"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(root, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// A malformed go.sum stops both, with Go's message and line number.
#[test]
fn malformed_go_sum_is_an_input_error() {
    let cache = harness::shared_cache();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("project");
    harness::copy_tree(&harness::fixtures_dir().join("project"), &p);
    let sum = p.join("go.sum");
    let mut text = fs::read_to_string(&sum).unwrap_or_default();
    text.push_str("github.com/spf13/cobra v1.8.1\n");
    fs::write(&sum, &text).unwrap_or_else(|e| panic!("{e}"));
    let line = text.lines().count();
    let ours = harness::reprove(&p, cache, &["mod", "verify"]);
    let mut cmd = go(&p, cache, false);
    cmd.args(["mod", "verify"]);
    let theirs = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let want = format!("{}:{line}: wrong number of fields 2", sum.display());
    assert!(theirs.stderr_str().contains(&want), "go: {}", theirs.stderr_str());
    assert!(theirs.stderr_str().contains("malformed go.sum:"), "go: {}", theirs.stderr_str());
    assert_eq!(ours.status, Some(2), "reprove: {}{}", ours.stdout_str(), ours.stderr_str());
    assert!(ours.stderr_str().contains("malformed go.sum:"), "reprove: {}", ours.stderr_str());
    assert!(ours.stderr_str().contains(&want), "reprove: {}", ours.stderr_str());
}
