//! The checksum database client against a real one: golang.org/x/mod/sumdb's
//! own server (tests/fixtures/mod/sumdb), on 127.0.0.1, with trees of
//! several hundred records so that proofs span tile levels. go.sum lines
//! that are missing are looked up, verified (signed note, inclusion proof,
//! consistency with the tree head kept in $GOPATH/pkg/sumdb) and compared;
//! the go command, pointed at the same database, must agree.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, goenv, harness, schema, server};

use goenv::{base_env, go_cmd, proxy_root, small_project, tmp};
use serde_json::Value;
use server::{Behavior, Serve, Server};
use support::{run, Outcome};

pub(super) const DB_NAME: &str = "sum.reprove-test.invalid";

pub(super) fn sumdb_bin(dir: &Path) -> PathBuf {
    harness::build_fixture_program("sumdb", dir)
}

/// A running database: its GOSUMDB value and its process.
pub(super) struct Db {
    pub(super) gosumdb: String,
    key_file: PathBuf,
    child: std::process::Child,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_db(bin: &Path, dir: &Path, tag: &str, data: &str, args: &[&str]) -> Db {
    let data_file = dir.join(format!("{tag}.data"));
    fs::write(&data_file, data).unwrap_or_else(|e| panic!("{e}"));
    let (addr_file, key_file) = (dir.join(format!("{tag}.addr")), dir.join(format!("{tag}.key")));
    // Go's flag package wants the flags first.
    let child = Command::new(bin)
        .args(args)
        .arg(&data_file)
        .arg(&addr_file)
        .arg(&key_file)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..200 {
        if fs::read_to_string(&addr_file).is_ok_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let addr = fs::read_to_string(&addr_file).unwrap_or_else(|e| panic!("the sumdb fixture did not start: {e}"));
    let key = fs::read_to_string(&key_file).unwrap_or_default();
    Db { gosumdb: format!("{} http://{addr}", key.trim()), key_file, child }
}

/// `path version h1:zip h1:gomod` for pflag, as the shared cache has it.
fn pflag_line(zip_hash: Option<&str>) -> String {
    let v = proxy_root().join("github.com/spf13/pflag/@v");
    let ziphash = fs::read_to_string(v.join("v1.0.5.ziphash")).unwrap_or_default();
    let modhash = gomod::hash_go_mod(&fs::read(v.join("v1.0.5.mod")).unwrap_or_default());
    format!("github.com/spf13/pflag v1.0.5 {} {modhash}\n", zip_hash.unwrap_or(ziphash.trim()))
}

fn download(project: &Path, cache: &Path, vars: &[(&str, String)]) -> (Outcome, Value) {
    let mut cmd = Command::new(support::reprove_bin());
    base_env(&mut cmd, project, cache, vars);
    cmd.args(["mod", "download", "--json", "--retries", "0"]);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout: {}\nstderr: {}", out.stdout_str(), out.stderr_str()));
    schema::assert_valid("mod-download.schema.json", &doc);
    (out, doc)
}

fn pflag_files(doc: &Value) -> Vec<Value> {
    doc["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["path"] == "github.com/spf13/pflag")
        .flat_map(|m| m["files"].as_array().cloned().unwrap_or_default())
        .collect()
}

struct Setup {
    scratch: tempfile::TempDir,
    bin: PathBuf,
    project: PathBuf,
    proxy: Server,
}

impl Setup {
    fn new() -> Setup {
        let scratch = tmp();
        let bin = sumdb_bin(scratch.path());
        let project = small_project(scratch.path());
        // No go.sum: every hash must come from the checksum database.
        fs::write(project.join("go.sum"), "").unwrap_or_else(|e| panic!("{e}"));
        let proxy = Server::start(Behavior::Serve(Serve::dir(&proxy_root())));
        Setup { scratch, bin, project, proxy }
    }

    fn vars(&self, db: &Db) -> Vec<(&'static str, String)> {
        vec![
            ("GOPROXY", self.proxy.url()),
            ("GOSUMDB", db.gosumdb.clone()),
            ("GOPATH", self.scratch.path().join("gopath").display().to_string()),
        ]
    }

    fn cache(&self, tag: &str) -> PathBuf {
        self.scratch.path().join(format!("cache-{tag}"))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        harness::make_writable(self.scratch.path());
    }
}

#[test]
fn go_sum_gaps_are_verified_by_the_database() {
    let s = Setup::new();
    let db = start_db(&s.bin, s.scratch.path(), "a", &pflag_line(None), &[]);
    let vars = s.vars(&db);
    let (out, doc) = download(&s.project, &s.cache("ours"), &vars);
    assert!(out.success(), "{}\n{}", out.stdout_str(), out.stderr_str());
    let files = pflag_files(&doc);
    let checked: Vec<&Value> = files.iter().filter(|f| f["kind"] != "info").collect();
    assert_eq!(checked.len(), 2, "{doc:#}");
    for f in checked {
        assert_eq!(f["verifiedBy"], format!("checksum database {DB_NAME}").as_str(), "{f:#}");
    }
    let latest = s.scratch.path().join(format!("gopath/pkg/sumdb/{DB_NAME}/latest"));
    let note = fs::read_to_string(&latest).unwrap_or_else(|e| panic!("{}: {e}", latest.display()));
    assert!(note.starts_with("go.sum database tree\n301\n"), "{note}");
    // The go command trusts the same database (and reads the tree head we kept).
    let theirs = go_cmd(&s.project, &s.cache("go"), &vars, &["mod", "download"]);
    assert!(theirs.success(), "go: {}", theirs.stderr_str());
    // A database that grew (a consistent extension) is accepted and its head kept.
    drop(db);
    let signer = s.scratch.path().join("a.key.signer").display().to_string();
    let more = format!("{}{}", pflag_line(None), "github.com/spf13/cobra v1.8.1 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    let grown = start_db(&s.bin, s.scratch.path(), "a2", &more, &["-signer", &signer]);
    let (out, _) = download(&s.project, &s.cache("ours2"), &s.vars(&grown));
    assert!(out.success(), "{}\n{}", out.stdout_str(), out.stderr_str());
    let note = fs::read_to_string(&latest).unwrap_or_default();
    assert!(note.starts_with("go.sum database tree\n302\n"), "{note}");
}

#[test]
fn a_database_vouching_for_other_content_is_a_security_error() {
    let s = Setup::new();
    let bad = "h1:0000000000000000000000000000000000000000000=";
    let db = start_db(&s.bin, s.scratch.path(), "t", &pflag_line(Some(bad)), &[]);
    let vars = s.vars(&db);
    let cache = s.cache("ours");
    let (out, doc) = download(&s.project, &cache, &vars);
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    let sec = &doc["securityErrors"][0];
    assert_eq!(sec["expected"], bad, "{doc:#}");
    assert_eq!(sec["expectedFrom"], format!("checksum database {DB_NAME}").as_str());
    assert!(!cache.join("github.com/spf13/pflag@v1.0.5").exists());
    let theirs = go_cmd(&s.project, &s.cache("go"), &vars, &["mod", "download"]);
    assert!(theirs.stderr_str().contains("SECURITY ERROR"), "{}", theirs.stderr_str());
}

#[test]
fn wrong_keys_and_forked_trees_are_refused() {
    let s = Setup::new();
    let a = start_db(&s.bin, s.scratch.path(), "a", &pflag_line(None), &[]);
    let other = start_db(&s.bin, s.scratch.path(), "b", &pflag_line(None), &[]);
    // A's server with B's key: the note does not verify.
    let other_key = fs::read_to_string(&other.key_file).unwrap_or_default();
    let mut vars = s.vars(&a);
    let url = a.gosumdb.split_whitespace().nth(1).unwrap_or_default().to_string();
    vars[1].1 = format!("{} {url}", other_key.trim());
    let (out, doc) = download(&s.project, &s.cache("key"), &vars);
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    let f = &doc["failures"][0];
    assert_eq!(f["code"], "sumdb", "{doc:#}");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("no verifiable signature")), "{f:#}");

    // Trust A, then meet a tree of the same size signed with A's key but
    // built in another order (a fork): refused, by us and by go.
    let (out, _) = download(&s.project, &s.cache("a"), &s.vars(&a));
    assert!(out.success(), "{}", out.stderr_str());
    drop(a);
    let signer = s.scratch.path().join("a.key.signer").display().to_string();
    for (tag, extra) in [("fork-same-size", vec!["-seed", "2"]), ("fork-larger", vec!["-seed", "3", "-fake", "400"])] {
        let mut args = vec!["-signer", signer.as_str()];
        args.extend(extra);
        let fork = start_db(&s.bin, s.scratch.path(), tag, &pflag_line(None), &args);
        let (out, doc) = download(&s.project, &s.cache(tag), &s.vars(&fork));
        assert_eq!(out.status, Some(1), "{tag}: {}", out.stderr_str());
        let f = &doc["failures"][0];
        assert!(f["message"].as_str().is_some_and(|m| m.contains("inconsistent")), "{tag}: {f:#}");
        let theirs = go_cmd(&s.project, &s.cache(&format!("go-{tag}")), &s.vars(&fork), &["mod", "download"]);
        assert!(!theirs.success(), "{tag}: go accepted a forked database");
    }
}

#[test]
fn gonosumdb_decides_like_go_whether_the_database_is_asked() {
    let s = Setup::new();
    // A "database" that fails every request: asked or not is all this test sees.
    let db = Server::start(Behavior::Status(500));
    let key = {
        let real = start_db(&s.bin, s.scratch.path(), "k", &pflag_line(None), &[]);
        fs::read_to_string(&real.key_file).unwrap_or_default().trim().to_string()
    };
    let base = vec![
        ("GOPROXY", s.proxy.url()),
        ("GOSUMDB", format!("{key} {}", db.url())),
        ("GOPATH", s.scratch.path().join("gopath").display().to_string()),
    ];
    for (label, extra, asked) in [
        ("no GONOSUMDB", None, true),
        ("GONOSUMDB=github.com/spf13", Some(("GONOSUMDB", "github.com/spf13")), false),
        ("GONOSUMDB=*.com", Some(("GONOSUMDB", "*.com")), false),
        ("GONOSUMDB=github.com/spf13/pflagx", Some(("GONOSUMDB", "github.com/spf13/pflagx")), true),
    ] {
        let mut vars = base.clone();
        if let Some((k, v)) = extra {
            vars.push((k, v.to_string()));
        }
        let before = db.requests().len();
        let (out, doc) = download(&s.project, &s.cache(&format!("ours-{}", before)), &vars);
        let ours = db.requests().len() > before;
        let before = db.requests().len();
        let theirs = go_cmd(&s.project, &s.cache(&format!("go-{before}")), &vars, &["mod", "download"]);
        let go_asked = db.requests().len() > before;
        assert_eq!((ours, go_asked), (asked, asked), "{label}: database asked by reprove {ours}, by go {go_asked}");
        // Asked and failing: a failure; not asked: nothing vouches for the files (exit 2), where go trusts them.
        let want = if asked { Some(3) } else { Some(2) };
        assert_eq!(out.status, want, "{label}: {:#}", doc["failures"]);
        assert_eq!(theirs.success(), !asked, "{label}: go: {}", theirs.stderr_str());
    }
}

/// A Go distribution whose built-in keys (`knownGOSUMDB`) name `name`.
fn fake_goroot(dir: &Path, name: &str, key: &str) -> PathBuf {
    let goroot = dir.join(format!("goroot-{name}"));
    let file = goroot.join(modfetch::sumdb::KNOWN_KEYS_FILE);
    fs::create_dir_all(file.parent().unwrap_or(&goroot)).unwrap_or_else(|e| panic!("{e}"));
    let text = format!("package modfetch\n\nvar knownGOSUMDB = map[string]string{{\n\t\"{name}\": \"{key}\",\n}}\n");
    fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    goroot
}

#[test]
fn the_local_go_distribution_supplies_the_key_of_its_default_database() {
    // What the go command on this machine would use: its default GOSUMDB is a
    // bare name whose key is compiled in; we read the same key from its GOROOT.
    let go_env = |key: &str| {
        let out = Command::new("go").args(["env", key]).env("GOENV", "off").env_remove("GOSUMDB").output();
        let out = out.unwrap_or_else(|e| panic!("go env: {e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (goroot, name) = (go_env("GOROOT"), go_env("GOSUMDB"));
    assert!(!name.is_empty() && !name.contains('+'), "expected a bare default GOSUMDB, got {name:?}");
    let key = modfetch::sumdb::known_key(Path::new(&goroot), &name)
        .unwrap_or_else(|| panic!("no key for {name} in {goroot}"));
    assert!(key.starts_with(&format!("{name}+")), "{key}");
    let parsed = modfetch::sumdb::note::VerifierKey::parse(&key);
    assert!(parsed.is_ok(), "{key}: {parsed:?}");
}

#[test]
fn a_bare_gosumdb_name_uses_the_key_from_goroot_and_is_found_through_goproxy() {
    let s = Setup::new();
    let db = start_db(&s.bin, s.scratch.path(), "a", &pflag_line(None), &[]);
    let key = fs::read_to_string(&db.key_file).unwrap_or_default().trim().to_string();
    let db_url = db.gosumdb.split_whitespace().nth(1).unwrap_or_default().to_string();
    let goroot = fake_goroot(s.scratch.path(), DB_NAME, &key);
    // The database answers "<proxy>/sumdb/<name>/supported" and 404s modules,
    // so `,` falls through to the module proxy, exactly as with go.
    let vars = vec![
        ("GOPROXY", format!("{db_url},{}", s.proxy.url())),
        ("GOSUMDB", DB_NAME.to_string()),
        ("GOROOT", goroot.display().to_string()),
        ("GOPATH", s.scratch.path().join("gopath").display().to_string()),
    ];
    let (out, doc) = download(&s.project, &s.cache("bare"), &vars);
    assert!(out.success(), "{}\n{}", out.stdout_str(), out.stderr_str());
    for f in pflag_files(&doc).iter().filter(|f| f["kind"] != "info") {
        assert_eq!(f["verifiedBy"], format!("checksum database {DB_NAME}").as_str(), "{f:#}");
    }

    // A distribution without a key for the name: refused, naming the file.
    let other = fake_goroot(s.scratch.path(), "other.invalid", &key.replacen(DB_NAME, "other.invalid", 1));
    let mut vars = vars.clone();
    vars[2].1 = other.display().to_string();
    let (out, doc) = download(&s.project, &s.cache("nokey"), &vars);
    // Exit 2, as for any go.sum gap the database cannot close.
    assert_eq!(out.status, Some(2), "{doc:#}\n{}", out.stderr_str());
    let message = doc["failures"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(modfetch::sumdb::KNOWN_KEYS_FILE), "{doc:#}");
    assert!(!s.cache("nokey").join("github.com/spf13/pflag@v1.0.5").exists());
}
