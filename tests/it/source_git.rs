//! `source` against repositories made by the real `git`: revisions
//! (full and short commit ids, tags, branches, HEAD) resolve to the commit git
//! names; the export holds exactly the commit's tree (modes, symlinks kept as
//! symlinks, submodules reported, no `.git`, nothing from the working tree);
//! dirty working trees are detected; local paths, `file://` clones and
//! `http://` clones (libgit2, from `git http-backend` on 127.0.0.1) give the
//! same result; a server that asks for credentials is an `Auth` error (none
//! are sent) and one that stalls ends at the clone's deadline; hostile trees
//! (a `.git` entry) and helper transports are refused. ssh and https clones:
//! tests/it/source_transports.rs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use std::time::{Duration, Instant};

use crate::support::{self, server};

use support::{git, listing, run_ok};

use source::{CloneOptions, Source, SourceError};

struct Repo {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    work: std::path::PathBuf,
    first: String,
    second: String,
}

fn make_repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("repo");
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    git(&dir, &["init", "-q"]);
    fs::write(dir.join("go.mod"), "module example.com/x\n\ngo 1.21\n").unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.join("main.go"), "package main\n\nfunc main() {}\n").unwrap_or_else(|e| panic!("{e}"));
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    let first = git(&dir, &["rev-parse", "HEAD"]);
    git(&dir, &["tag", "-a", "v1.0.0", "-m", "v1"]);

    fs::create_dir(dir.join("cmd")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.join("cmd/run.sh"), "#!/bin/sh\n").unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(dir.join("cmd/run.sh"), fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("../main.go", dir.join("cmd/link.go")).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("/etc/passwd", dir.join("outside")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.join(".gitignore"), "ignored.txt\n").unwrap_or_else(|e| panic!("{e}"));
    git(&dir, &["add", "."]);
    // A submodule entry (gitlink) pinned at the first commit.
    git(&dir, &["update-index", "--add", "--cacheinfo", &format!("160000,{first},vendor/sub")]);
    git(&dir, &["commit", "-q", "-m", "second"]);
    let second = git(&dir, &["rev-parse", "HEAD"]);
    git(&dir, &["branch", "release"]);
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap_or_else(|e| panic!("{e}"));
    Repo { _tmp: tmp, dir, work, first, second }
}

#[test]
fn revisions_resolve_as_git_resolves_them() {
    let r = make_repo();
    let src = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(src.uri(), format!("file://{}", r.dir.display()));
    for (rev, want) in [
        ("HEAD", &r.second),
        ("main", &r.second),
        ("release", &r.second),
        ("v1.0.0", &r.first),
        (&r.first[..10], &r.first),
        (r.first.as_str(), &r.first),
    ] {
        let c = src.resolve(rev).unwrap_or_else(|e| panic!("{rev}: {e}"));
        assert_eq!(&c.id, want, "{rev}");
        assert_eq!(c.time_rfc3339, "2024-06-27T20:11:12Z");
        assert_eq!(c.is_worktree_head, want == &r.second, "{rev}");
    }
    assert_eq!(src.resolve("v1.0.0").unwrap_or_else(|e| panic!("{e}")).tags, ["v1.0.0"]);
    for bad in ["nope", "--upload-pack=x", ""] {
        let e = src.resolve(bad).err().unwrap_or_else(|| panic!("{bad} resolved"));
        assert!(matches!(e, SourceError::Revision { .. }) && e.is_input(), "{bad}: {e}");
    }
}

#[test]
fn the_export_is_exactly_the_commit_tree() {
    let r = make_repo();
    // Working-tree noise that must not reach the export.
    fs::write(r.dir.join("main.go"), "package main // edited\n").unwrap_or_else(|e| panic!("{e}"));
    fs::write(r.dir.join("untracked.go"), "package main\n").unwrap_or_else(|e| panic!("{e}"));
    let src = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    let c = src.resolve("HEAD").unwrap_or_else(|e| panic!("{e}"));
    let dest = r.work.join("export");
    let ex = src.export(&c, &dest).unwrap_or_else(|e| panic!("{e}"));
    let got = listing(&dest);
    let want: BTreeMap<String, String> = [
        (".gitignore", "f 644 ignored.txt\n"),
        ("cmd", "d"),
        ("cmd/link.go", "l ../main.go"),
        ("cmd/run.sh", "f 755 #!/bin/sh\n"),
        ("go.mod", "f 644 module example.com/x\n\ngo 1.21\n"),
        ("main.go", "f 644 package main\n\nfunc main() {}\n"),
        ("outside", "l /etc/passwd"),
        ("vendor", "d"),
        ("vendor/sub", "d"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(ex.files, 4);
    assert_eq!(ex.submodules.len(), 1);
    assert_eq!((ex.submodules[0].path.as_str(), ex.submodules[0].commit.as_str()), ("vendor/sub", r.first.as_str()));
    let escaping: Vec<_> = ex.symlinks.iter().filter(|s| s.escapes).map(|s| s.path.as_str()).collect();
    assert_eq!(escaping, ["outside"]);
    // The export directory must be new: nothing is written into an existing one.
    let again = src.export(&c, &dest).err().unwrap_or_else(|| panic!("exported twice into {}", dest.display()));
    assert!(matches!(again, SourceError::Io { .. }), "{again}");
}

#[test]
fn dirty_working_trees_are_detected() {
    let r = make_repo();
    let src = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(src.dirty_paths().unwrap_or_else(|e| panic!("{e}")), Vec::<String>::new());
    fs::write(r.dir.join("ignored.txt"), "x").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(src.dirty_paths().unwrap_or_else(|e| panic!("{e}")), Vec::<String>::new());
    fs::write(r.dir.join("main.go"), "package main // edited\n").unwrap_or_else(|e| panic!("{e}"));
    fs::write(r.dir.join("new.go"), "package main\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(src.dirty_paths().unwrap_or_else(|e| panic!("{e}")), ["main.go", "new.go"]);
}

#[test]
fn file_urls_are_cloned_and_give_the_same_export() {
    let r = make_repo();
    let url = format!("file://{}", r.dir.display());
    let local = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    let cloned = Source::open(&url, &r.work).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cloned.uri(), url);
    assert!(cloned.worktree().is_none());
    for rev in ["main", "release", "v1.0.0", &r.second[..12]] {
        let (a, b) = (local.resolve(rev), cloned.resolve(rev));
        let (a, b) = (a.unwrap_or_else(|e| panic!("{e}")), b.unwrap_or_else(|e| panic!("{rev}: {e}")));
        assert_eq!(a.id, b.id, "{rev}");
        assert!(!b.is_worktree_head);
    }
    let c = cloned.resolve("main").unwrap_or_else(|e| panic!("{e}"));
    let (da, db) = (r.work.join("a"), r.work.join("b"));
    local.export(&c, &da).unwrap_or_else(|e| panic!("{e}"));
    cloned.export(&c, &db).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing(&da), listing(&db));
    // A clone is never dirty, and its temporary directory goes away with it.
    assert!(cloned.dirty_paths().unwrap_or_else(|e| panic!("{e}")).is_empty());
    drop(cloned);
    let left: Vec<_> = fs::read_dir(&r.work)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("clone-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let missing = Source::open(&format!("file://{}/nope", r.dir.display()), &r.work).err();
    assert!(matches!(missing, Some(SourceError::Clone { .. })), "{missing:?}");
    let missing = Source::open(&r.dir.join("nope").display().to_string(), &r.work).err();
    assert!(matches!(missing, Some(SourceError::Location { .. })), "{missing:?}");
}

#[test]
fn a_tree_with_a_dot_git_entry_is_refused() {
    let r = make_repo();
    let blob = {
        let mut cmd = Command::new("git");
        cmd.current_dir(&r.dir).args(["hash-object", "-w", "main.go"]);
        run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}")).stdout_str().trim().to_string()
    };
    // git's porcelain refuses such trees; mktree writes them anyway, as an attacker would.
    let mut mk = Command::new("sh");
    mk.current_dir(&r.dir).arg("-c").arg(format!(
        "printf '100644 blob {blob}\\t.git\\n040000 tree {tree}\\tsub\\n' | git mktree",
        tree = git(&r.dir, &["rev-parse", "HEAD^{tree}"])
    ));
    let tree = run_ok(&mut mk).unwrap_or_else(|e| panic!("{e}")).stdout_str().trim().to_string();
    let commit = git(&r.dir, &["commit-tree", &tree, "-m", "hostile"]);
    let src = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    let c = src.resolve(&commit).unwrap_or_else(|e| panic!("{e}"));
    let e = src.export(&c, &r.work.join("hostile")).err();
    assert!(matches!(&e, Some(SourceError::UnsafeEntry { path, .. }) if path == ".git"), "{e:?}");
}

#[test]
fn a_checkout_for_vcs_stamping_is_clean_detached_and_has_the_tags() {
    let r = make_repo();
    let src = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    let c = src.resolve("v1.0.0").unwrap_or_else(|e| panic!("{e}"));
    let dest = r.work.join("checkout");
    src.checkout(&c, &dest).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), r.first);
    assert_eq!(git(&dest, &["status", "--porcelain"]), "");
    assert_eq!(git(&dest, &["tag", "--points-at", "HEAD"]), "v1.0.0");
    assert_eq!(git(&dest, &["remote"]), "", "the clone keeps no remote");
    // The same files as the export, plus .git.
    let exported = r.work.join("export");
    src.export(&c, &exported).unwrap_or_else(|e| panic!("{e}"));
    let mut with_git = listing(&dest);
    with_git.retain(|k, _| !k.starts_with(".git/") && k != ".git");
    assert_eq!(with_git, listing(&exported));
}

#[test]
fn only_ordinary_transports_are_cloned() {
    let r = make_repo();
    for url in ["ext::sh -c touch% /tmp/reprove-pwned", "fd::17", "foo://example.invalid/x"] {
        let e = Source::open(url, &r.work).err();
        assert!(matches!(e, Some(SourceError::Location { .. })), "{url}: {e:?}");
    }
    assert!(!Path::new("/tmp/reprove-pwned").exists());
}

#[test]
fn http_urls_are_cloned_and_give_the_same_export() {
    let r = make_repo();
    // A bare copy behind git's smart HTTP protocol (libgit2 does not speak the dumb one), on 127.0.0.1.
    let served = r.work.join("served");
    fs::create_dir(&served).unwrap_or_else(|e| panic!("{e}"));
    git(&served, &["clone", "-q", "--bare", &r.dir.display().to_string(), "repo.git"]);
    let srv = server::Server::start(server::Behavior::GitHttpBackend(served.clone()));
    let url = format!("{}/repo.git", srv.url().trim_end_matches('/'));
    let cloned = Source::open(&url, &r.work).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(cloned.uri(), url);
    let c = cloned.resolve("v1.0.0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.id, r.first);
    assert_eq!(cloned.resolve("release").unwrap_or_else(|e| panic!("{e}")).id, r.second);
    let local = Source::open(&r.dir.display().to_string(), &r.work).unwrap_or_else(|e| panic!("{e}"));
    let (da, db) = (r.work.join("a"), r.work.join("b"));
    local.export(&c, &da).unwrap_or_else(|e| panic!("{e}"));
    cloned.export(&c, &db).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing(&da), listing(&db));
    // A server that has no such repository: a clone error, not a panic.
    let missing = Source::open(&format!("{}/nope.git", srv.url().trim_end_matches('/')), &r.work).err();
    assert!(matches!(missing, Some(SourceError::Clone { .. })), "{missing:?}");

    // A server that asks for credentials: reprove sends none, and says so (infrastructure, not input).
    let mut private = server::Serve::dir(&served);
    private.auth = Some("Basic dTpw".into());
    let srv = server::Server::start(server::Behavior::Serve(private));
    let url = format!("{}/repo.git", srv.url());
    let e = Source::open(&url, &r.work).err();
    assert!(matches!(&e, Some(SourceError::Auth { message, .. }) if message.contains("asks for credentials")), "{e:?}");
    assert!(e.as_ref().is_some_and(|e| !e.is_input() && !e.is_security()), "{e:?}");
}

#[test]
fn a_clone_that_stalls_ends_at_its_deadline() {
    let r = make_repo();
    let srv = server::Server::start(server::Behavior::Hang);
    let url = format!("{}/repo.git", srv.url());
    let opts = CloneOptions { timeout: Duration::from_secs(1), known_hosts: Vec::new() };
    let started = Instant::now();
    let e = Source::open_with(&url, &r.work, &opts).err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(
        matches!(&e, Some(SourceError::Clone { message, .. }) if message == "the clone did not finish within 1s"),
        "{e:?}"
    );
}
