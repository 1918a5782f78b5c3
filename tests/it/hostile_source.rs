//! `reprove verify` against a commit written by someone hostile, end to end
//! through the real binary, real Git repositories and real host files.
//!
//! The commit's files that reprove reads on the host (go.mod, go.sum, go.work,
//! reprove.toml, .goreleaser.yaml, reprove.lock) committed as symlinks to a
//! host file holding a secret marker, absolute and relative (`../../…`): exit
//! 2, verdict `error` naming the file as leading out of the tree (so it was
//! not read: reprove.toml, go.sum and reprove.lock never echoed their content,
//! but they were read), and the marker nowhere in stdout,
//! stderr or the JSON report. go.mod (and go.sum, reprove.toml) pointing at
//! `/dev/zero`, `/dev/stdin` (kept open by the test) or a FIFO the test
//! creates: exit 2 within a second of reprove's own step timings, with a
//! bounded peak RSS (`VmHWM`, polled; the child is killed past a cap so a
//! regression cannot take the machine's memory). `replace` to `/etc` and to
//! `../../outside` (where the test plants a go.mod holding the marker): exit 2
//! before anything reads them. A duplicate tree entry: exit 2,
//! `malformed-tree`. A large loose blob (256 MiB) and a large packed one
//! (300 MiB, more than the 256 MiB read whole): exported streaming (bounded RSS). A
//! `--keep` path that is a symlink to an empty directory: refused, nothing
//! written through it.
//!
//! Every case fails before the toolchain step (`--toolchain` names a registry
//! on 127.0.0.1 that nothing listens on), so no image or build is needed.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

use support::{git, hermetic_go_env, reprove_bin, Failures};

/// Never contacted: every case fails before the toolchain step.
const TOOLCHAIN: &str =
    "127.0.0.1:9/toolchains/go:1.22@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// The peak RSS above which the child is killed (a regression reading /dev/zero).
const KILL_ABOVE_KIB: u64 = 768 << 10;
/// The peak RSS a refused input may cost.
const BOUNDED_KIB: u64 = 160 << 10;

/// A scratch directory with a host secret, a FIFO and a repository.
struct Scene {
    tmp: tempfile::TempDir,
    marker: String,
}

enum Entry<'a> {
    Text(&'a str),
    Link(PathBuf),
}

impl Scene {
    fn new() -> Scene {
        let parent = support::cache_dir().join("tmp");
        std::fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("{e}"));
        let tmp = tempfile::tempdir_in(parent).unwrap_or_else(|e| panic!("{e}"));
        let marker = format!("TOPSECRET-{}-{}", std::process::id(), tmp.path().display().to_string().len());
        let host = tmp.path().join("host");
        std::fs::create_dir(&host).unwrap_or_else(|e| panic!("{e}"));
        let secret = format!("module {m}\n{m}: \"{m}\"\n[{m}]\n", m = marker);
        std::fs::write(host.join("secret"), secret).unwrap_or_else(|e| panic!("{e}"));
        rustix::fs::mknodat(rustix::fs::CWD, host.join("fifo"), rustix::fs::FileType::Fifo, 0o600.into(), 0)
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        Scene { tmp, marker }
    }

    fn secret(&self) -> PathBuf {
        self.tmp.path().join("host/secret")
    }

    fn fifo(&self) -> PathBuf {
        self.tmp.path().join("host/fifo")
    }

    /// `abs` as a relative link that climbs to `/` from wherever it is exported.
    fn relative(abs: &Path) -> PathBuf {
        PathBuf::from(format!("{}{}", "../".repeat(40), abs.display().to_string().trim_start_matches('/')))
    }

    /// A new repository `name` with a minimal module, `entries` over it, committed.
    fn repo(&self, name: &str, entries: &[(&str, Entry<'_>)]) -> PathBuf {
        let repo = self.tmp.path().join(name);
        std::fs::create_dir(&repo).unwrap_or_else(|e| panic!("{e}"));
        let base = [
            ("go.mod", Entry::Text("module example.com/hello\n\ngo 1.22\n")),
            ("main.go", Entry::Text("package main\n\nfunc main() {}\n")),
        ];
        for (file, entry) in base.iter().chain(entries) {
            let p = repo.join(file);
            let _ = std::fs::remove_file(&p);
            match entry {
                Entry::Text(t) => std::fs::write(&p, t).unwrap_or_else(|e| panic!("{e}")),
                Entry::Link(to) => std::os::unix::fs::symlink(to, &p).unwrap_or_else(|e| panic!("{e}")),
            }
        }
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "hostile"]);
        repo
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // The exported trees are read-only for the build; make them removable.
        let _ = Command::new("chmod").arg("-R").arg("u+w").arg(self.tmp.path()).status();
    }
}

/// How a watched `reprove verify` ended.
struct Watched {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    peak_kib: u64,
    wall: Duration,
    killed: Option<&'static str>,
    report: Value,
}

impl Watched {
    fn context(&self) -> String {
        format!(
            "status {:?}, killed {:?}, peak {} KiB, {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.killed, self.peak_kib, self.wall, self.stdout, self.stderr
        )
    }

    /// The milliseconds reprove's own steps took.
    fn steps_ms(&self) -> u64 {
        self.report["timings"].as_array().into_iter().flatten().filter_map(|t| t["ms"].as_u64()).sum()
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `reprove verify --source REPO --reference-digest … ARGS --json` (no digest when
/// ARGS give `--reference`), its stdin a
/// pipe held open and never written, its peak RSS polled; killed past
/// [`KILL_ABOVE_KIB`] or after 20 s.
fn verify(scene: &Scene, repo: &Path, args: &[&str]) -> Watched {
    let mut cmd = Command::new(reprove_bin());
    hermetic_go_env(&mut cmd)
        .current_dir(scene.tmp.path())
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("verify")
        .arg("--source")
        .arg(repo)
        .args(if args.contains(&"--reference") { &[][..] } else { &["--reference-digest", DIGEST][..] })
        .args(["--json", "--cache-dir"])
        .arg(scene.cache())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("reprove: {e}"));
    let _stdin = child.stdin.take();
    let pipe = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|r| Box::new(r) as Box<dyn std::io::Read + Send>));
    let err = pipe(child.stderr.take().map(|r| Box::new(r) as Box<dyn std::io::Read + Send>));
    let (mut peak_kib, mut killed) = (0, None);
    let status = loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => panic!("{e}"),
        }
        if killed.is_none() && (peak_kib > KILL_ABOVE_KIB || started.elapsed() > Duration::from_secs(20)) {
            killed = Some(if peak_kib > KILL_ABOVE_KIB { "memory" } else { "time" });
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Watched { status: status.code(), stdout, stderr, peak_kib, wall, killed, report }
}

/// Exit 2, verdict `error` of class input naming `names`, and the marker nowhere.
fn refused(scene: &Scene, w: &Watched, names: &str) -> Result<(), String> {
    let ctx = w.context();
    let message = w.report["error"]["message"].as_str().unwrap_or_default();
    if w.killed.is_some() || w.status != Some(2) {
        return Err(format!("not exit 2: {ctx}"));
    }
    if w.report["verdict"] != "error" || w.report["error"]["class"] != "input" {
        return Err(format!("not an input error: {ctx}"));
    }
    if !message.contains(names) {
        return Err(format!("the error does not name {names}: {ctx}"));
    }
    for (stream, text) in [("stdout", &w.stdout), ("stderr", &w.stderr)] {
        if text.contains(&scene.marker) {
            return Err(format!("host content in {stream}: {ctx}"));
        }
    }
    Ok(())
}

fn assert_refused(scene: &Scene, w: &Watched, names: &str, case: &str) {
    if let Err(e) = refused(scene, w, names) {
        panic!("{case}: {e}");
    }
}

#[test]
fn files_linked_out_of_the_commit_are_refused_and_never_echoed() {
    let scene = Scene::new();
    let mut failures = Failures::new("files linked out of the commit");
    let mut n = 0;
    for name in ["go.mod", "go.sum", "go.work", "reprove.toml", ".goreleaser.yaml", "reprove.lock"] {
        for target in [scene.secret(), Scene::relative(&scene.secret())] {
            n += 1;
            let repo = scene.repo(&format!("r{n}"), &[(name, Entry::Link(target.clone()))]);
            // reprove.lock is read only when no --toolchain is given.
            let args: &[&str] = if name == "reprove.lock" { &[] } else { &["--toolchain", TOOLCHAIN] };
            let w = verify(&scene, &repo, args);
            failures.case();
            // Named, and refused because it leads out: not read and then found wanting.
            if let Err(e) = refused(&scene, &w, &format!("{name}: leaves ")) {
                failures.fail(format!("{name} -> {}", target.display()), e);
            }
        }
    }
    failures.assert_none();
}

#[test]
fn devices_and_fifos_fail_at_once_with_bounded_memory() {
    let scene = Scene::new();
    let mut failures = Failures::new("devices and FIFOs");
    let mut n = 0;
    for (name, target) in [
        ("go.mod", PathBuf::from("/dev/zero")),
        ("go.mod", PathBuf::from("/dev/stdin")),
        ("go.mod", scene.fifo()),
        ("go.mod", Scene::relative(&scene.fifo())),
        ("go.sum", PathBuf::from("/dev/stdin")),
        ("reprove.toml", PathBuf::from("/dev/stdin")),
        ("reprove.toml", PathBuf::from("/dev/zero")),
    ] {
        n += 1;
        let repo = scene.repo(&format!("d{n}"), &[(name, Entry::Link(target.clone()))]);
        let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN]);
        let case = format!("{name} -> {}", target.display());
        failures.case();
        let bounded = refused(&scene, &w, &format!("{name}: leaves ")).and_then(|()| {
            if w.peak_kib >= BOUNDED_KIB {
                Err(format!("peak RSS {} KiB: {}", w.peak_kib, w.context()))
            } else if w.steps_ms() >= 1000 || w.wall >= Duration::from_secs(5) {
                Err(format!("the steps took {} ms: {}", w.steps_ms(), w.context()))
            } else {
                Ok(())
            }
        });
        if let Err(e) = bounded {
            failures.fail(case, e);
        }
    }
    failures.assert_none();
}

#[test]
fn replacements_outside_the_commit_are_refused_before_reading() {
    let scene = Scene::new();
    // ../../outside of the exported tree (cache/work/verify-*/src) is cache/work/outside:
    // a go.mod there holds the marker, which a read would bring into the report.
    let outside = scene.cache().join("work/outside");
    std::fs::create_dir_all(&outside).unwrap_or_else(|e| panic!("{e}"));
    let planted = format!("module example.com/x\n\nrequire {}.example/y v1.0.0\n", scene.marker.to_lowercase());
    std::fs::write(outside.join("go.mod"), planted).unwrap_or_else(|e| panic!("{e}"));
    let marker = scene.marker.to_lowercase();
    for (i, dir) in ["/etc", "../../outside", "./inside/../../../outside"].iter().enumerate() {
        let go_mod = format!(
            "module example.com/hello\n\ngo 1.22\n\nrequire example.com/x v1.0.0\n\nreplace example.com/x => {dir}\n"
        );
        let repo = scene.repo(&format!("p{i}"), &[("go.mod", Entry::Text(&go_mod))]);
        let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN]);
        let case = format!("replace => {dir}");
        assert_refused(&scene, &w, "outside the commit's tree", &case);
        assert!(w.report["error"]["message"].as_str().is_some_and(|m| m.contains(dir)), "{case}: {}", w.context());
        assert_eq!(w.report["error"]["step"], "go-sum", "{case}: {}", w.context());
        assert!(!w.stdout.contains(&marker) && !w.stderr.contains(&marker), "{case}: {}", w.context());
    }
}

#[test]
fn a_tree_with_two_entries_of_one_name_is_an_input_error() {
    let scene = Scene::new();
    let repo = scene.repo("dup", &[]);
    let blob = git(&repo, &["rev-parse", "HEAD:go.mod"]);
    let main_go = git(&repo, &["rev-parse", "HEAD:main.go"]);
    // git mktree refuses duplicates; hash-object --literally writes what it is given.
    let mut tree = Vec::new();
    for (name, id) in [("go.mod", &blob), ("go.mod", &blob), ("main.go", &main_go)] {
        tree.extend_from_slice(format!("100644 {name}\0").as_bytes());
        let raw: Vec<u8> = (0..id.len() / 2)
            .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap_or_else(|e| panic!("{id}: {e}")))
            .collect();
        tree.extend_from_slice(&raw);
    }
    let raw = scene.tmp.path().join("tree.raw");
    std::fs::write(&raw, tree).unwrap_or_else(|e| panic!("{e}"));
    let raw_s = raw.display().to_string();
    let tree_id = git(&repo, &["hash-object", "-t", "tree", "-w", "--literally", &raw_s]);
    let commit = git(&repo, &["commit-tree", &tree_id, "-m", "duplicate"]);
    let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN, "--rev", &commit]);
    assert_refused(&scene, &w, "go.mod", "duplicate names");
    assert_eq!(w.report["error"]["code"], "malformed-tree", "{}", w.context());
}

/// A repository whose one commit holds `big.bin`, `size` zero bytes: a loose
/// object, or (above `core.bigFileThreshold`, so `git add` streams it into a
/// pack) a packed one, stored whole as git stores big files.
fn big_blob_repo(scene: &Scene, size: u64, packed: bool) -> PathBuf {
    let repo = scene.tmp.path().join("big");
    std::fs::create_dir(&repo).unwrap_or_else(|e| panic!("{e}"));
    // No go.mod: the run ends at the go-sum step, after the export.
    let f = std::fs::File::create(repo.join("big.bin")).unwrap_or_else(|e| panic!("{e}"));
    f.set_len(size).unwrap_or_else(|e| panic!("{e}"));
    git(&repo, &["init", "-q"]);
    git(&repo, &["-c", if packed { "core.bigFileThreshold=1m" } else { "core.bigFileThreshold=2g" }, "add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "big"]);
    let id = git(&repo, &["rev-parse", "HEAD:big.bin"]);
    let loose = repo.join(".git/objects").join(&id[..2]).join(&id[2..]);
    assert_eq!(loose.exists(), !packed, "{id} loose");
    repo
}

#[test]
fn a_large_loose_blob_is_exported_streaming() {
    let scene = Scene::new();
    let repo = big_blob_repo(&scene, 256 << 20, false);
    let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN]);
    assert_refused(&scene, &w, "no go.mod", "a 256 MiB blob");
    assert!(w.peak_kib < BOUNDED_KIB, "peak RSS {} KiB for a 256 MiB blob: {}", w.peak_kib, w.context());
}

/// Clones are packed: a packed blob larger than `MAX_WHOLE_BLOB` (256 MiB) is
/// streamed from its pack too, not read whole (nor refused as too large).
#[test]
fn a_large_packed_blob_is_exported_streaming() {
    let scene = Scene::new();
    let repo = big_blob_repo(&scene, 300 << 20, true);
    let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN]);
    assert_refused(&scene, &w, "no go.mod", "a 300 MiB packed blob");
    assert!(w.peak_kib < BOUNDED_KIB, "peak RSS {} KiB for a 300 MiB packed blob: {}", w.peak_kib, w.context());
}

#[test]
fn a_keep_directory_that_is_a_symlink_is_refused() {
    let scene = Scene::new();
    let repo = scene.repo("k", &[]);
    let target = scene.tmp.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap_or_else(|e| panic!("{e}"));
    let link = scene.tmp.path().join("kept");
    std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
    let link_s = link.display().to_string();
    let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN, "--keep", &link_s]);
    assert_refused(&scene, &w, "--keep", "--keep through a symlink");
    assert_eq!(w.report["error"]["code"], "keep-not-directory", "{}", w.context());
    let written: Vec<_> =
        std::fs::read_dir(&target).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(written.is_empty(), "written through the link: {written:?}");
}

/// The reference is a file the user names, but it may come from anywhere: a
/// device or FIFO is refused at once, never opened or read without end.
#[test]
fn a_reference_that_is_a_device_or_fifo_is_refused_at_once() {
    let scene = Scene::new();
    let repo = scene.repo("r", &[]);
    let fifo = scene.fifo();
    for reference in [Path::new("/dev/zero"), Path::new("/dev/stdin"), fifo.as_path()] {
        let shown = reference.display().to_string();
        let w = verify(&scene, &repo, &["--toolchain", TOOLCHAIN, "--reference", &shown]);
        let case = format!("--reference {shown}");
        assert_refused(&scene, &w, "not a regular file", &case);
        assert_eq!(w.report["error"]["code"], "reference-unreadable", "{case}: {}", w.context());
        assert!(w.peak_kib < BOUNDED_KIB && w.wall < Duration::from_secs(5), "{case}: {}", w.context());
    }
}
