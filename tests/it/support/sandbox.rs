//! Helpers for the sandbox tests: a toolchain rootfs made from the machine's
//! Go installation, the probe program that looks at the sandbox from inside,
//! running `reprove toolchain run`, and checks that nothing was left behind.
//!
//! Nothing here skips: a missing runc, bwrap, podman or go is an error that
//! says to run `ci/setup`.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{self, hermetic_go_env, reprove_bin, run_ok, Outcome, RUN_SETUP};

/// The runtimes every behaviour is tested with (podman: daemonless, as root).
pub(crate) const RUNTIMES: [&str; 3] = ["runc", "bwrap", "podman"];

/// The runtimes the rootless cases (as `nobody`) are tested with. Rootless
/// podman needs subordinate id ranges (`/etc/subuid`, `newuidmap`) and a
/// storage directory of the user's own, which `nobody` has not.
pub(crate) const ROOTLESS_RUNTIMES: [&str; 2] = ["runc", "bwrap"];

/// The image environment of the test rootfs, as `reprove toolchain build` writes it.
pub(crate) const IMAGE_ENV: [&str; 3] = [
    "PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "GOROOT=/usr/local/go",
    "GOTOOLCHAIN=local",
];

/// A host variable that must never be seen inside a sandbox.
pub(crate) const SECRET: (&str, &str) = ("REPROVE_SECRET_TEST", "1");

pub(crate) struct Fixture {
    /// `rootfs/` with the host's GOROOT at /usr/local/go, `/etc/passwd`, `/tmp`.
    pub(crate) rootfs: PathBuf,
    /// An OCI image config with [`IMAGE_ENV`].
    pub(crate) image_config: PathBuf,
    /// A directory holding `sbxprobe`, built on the host (cached); mounted at /probe.
    pub(crate) probe_dir: PathBuf,
    /// The probe's source directory.
    pub(crate) probe_src: PathBuf,
    /// `go version` on the host.
    pub(crate) go_version: String,
}

fn require(program: &str, arg: &str) {
    let ok =
        Command::new(program).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
            || ["/usr/sbin", "/sbin"].iter().any(|d| {
                Command::new(Path::new(d).join(program))
                    .arg(arg)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
    assert!(ok, "`{program} {arg}` does not run: {RUN_SETUP} (it installs runc, bubblewrap and podman)");
}

fn go(args: &[&str]) -> String {
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd).args(args);
    let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}\n{RUN_SETUP}"));
    out.stdout_str().trim().to_string()
}

/// The shared fixture, made once per test binary (the rootfs once per machine and Go version).
pub(crate) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?");
        assert_eq!(
            uid, "0",
            "the sandbox tests run as root, as CI does (they switch to nobody for the rootless cases)"
        );
        require("runc", "--version");
        require("bwrap", "--version");
        require("podman", "--version");
        require("prlimit", "--version");
        let goroot = PathBuf::from(go(&["env", "GOROOT"]));
        let version = go(&["env", "GOVERSION"]);
        let go_version = go(&["version"]);
        let rootfs = toolchain_rootfs(&goroot, &version);
        let image_config = rootfs.parent().unwrap_or(&rootfs).join("config.json");

        let probe_src = support::repo_root().join("tests/fixtures/sandbox-probe");
        let probe_dir = probe(&probe_src, rootfs.parent().unwrap_or(&rootfs));
        Fixture { rootfs, image_config, probe_dir, probe_src, go_version }
    })
}

/// The probe, built on the host once per source version, in a directory of
/// its own below `cache` (world-readable, for the rootless tests).
fn probe(src: &Path, cache: &Path) -> PathBuf {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for name in ["go.mod", "main.go"] {
        h.update(fs::read(src.join(name)).unwrap_or_else(|e| panic!("{}: {e}", src.join(name).display())));
    }
    let hash: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = cache.join(format!("probe-{hash}"));
    if dir.join("sbxprobe").is_file() {
        return dir;
    }
    let tmp = cache.join(format!("probe-{hash}.tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
    world_readable(&tmp);
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd)
        .current_dir(src)
        .env("CGO_ENABLED", "0")
        .env("GOPROXY", "off")
        .args(["build", "-trimpath", "-o"])
        .arg(tmp.join("sbxprobe"))
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("building the probe: {e}"));
    if fs::rename(&tmp, &dir).is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    assert!(dir.join("sbxprobe").is_file(), "{} was not created", dir.display());
    dir
}

pub(crate) fn world_readable(p: &Path) {
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// `$REPROVE_TEST_CACHE/sandbox-rootfs/<go version>/rootfs`: the GOROOT copied to
/// /usr/local/go (symlinks followed, as Debian's GOROOTs link into /usr/share),
/// plus `/etc/passwd`, `/etc/group` and `/tmp`; built in a temporary directory and renamed.
fn toolchain_rootfs(goroot: &Path, version: &str) -> PathBuf {
    let dir = support::cache_dir().join("sandbox-rootfs").join(version);
    let rootfs = dir.join("rootfs");
    if dir.join("complete").is_file() {
        return rootfs;
    }
    fs::create_dir_all(dir.parent().unwrap_or(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let tmp = dir.with_extension(format!("tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let local = tmp.join("rootfs/usr/local");
    fs::create_dir_all(&local).unwrap_or_else(|e| panic!("{e}"));
    let out =
        Command::new("cp").arg("-RL").arg("--preserve=mode,timestamps").arg(goroot).arg(local.join("go")).output();
    let out = out.unwrap_or_else(|e| panic!("cp: {e}"));
    assert!(out.status.success(), "copying {} failed: {}", goroot.display(), String::from_utf8_lossy(&out.stderr));
    let r = tmp.join("rootfs");
    fs::create_dir_all(r.join("etc")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::write(r.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap_or_else(|e| panic!("{e}"));
    fs::create_dir_all(r.join("tmp")).unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap_or_else(|e| panic!("{e}"));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": IMAGE_ENV, "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [] }
    });
    fs::write(tmp.join("config.json"), format!("{config:#}\n")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(tmp.join("complete"), "").unwrap_or_else(|e| panic!("{e}"));
    if fs::rename(&tmp, &dir).is_err() {
        // Another test binary made it first.
        let _ = fs::remove_dir_all(&tmp);
    }
    assert!(dir.join("complete").is_file(), "{} was not created", dir.display());
    rootfs
}

/// `reprove toolchain run --rootfs … --image-config … --runtime RT --mount probe:/probe:ro EXTRA -- CMD`,
/// with [`SECRET`] in reprove's own environment.
pub(crate) fn toolchain_run(runtime: &str, extra: &[&str], cmd: &[&str]) -> Command {
    let f = fixture();
    let mut c = Command::new(reprove_bin());
    c.args(["toolchain", "run", "--rootfs"])
        .arg(&f.rootfs)
        .arg("--image-config")
        .arg(&f.image_config)
        .args(["--runtime", runtime, "--mount"])
        .arg(format!("{}:/probe:ro", f.probe_dir.display()))
        .args(extra)
        .arg("--")
        .args(cmd)
        .env(SECRET.0, SECRET.1)
        .stdin(Stdio::null());
    c
}

/// Runs `cmd`, returning reprove's pid with the outcome.
pub(crate) fn run_with_pid(cmd: &mut Command) -> (u32, Outcome) {
    let child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot run reprove: {e}"));
    let pid = child.id();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (pid, Outcome { status: out.status.code(), stdout: out.stdout, stderr: out.stderr })
}

pub(crate) fn json(out: &Outcome) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\nstdout: {}\nstderr: {}", out.stdout_str(), out.stderr_str()))
}

/// The document has every key the schema requires, and no other.
pub(crate) fn check_schema(doc: &serde_json::Value) {
    let path = support::repo_root().join("schemas/toolchain-run.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = doc.as_object().unwrap_or_else(|| panic!("not an object: {doc}"));
    for key in schema["required"].as_array().into_iter().flatten().filter_map(|k| k.as_str()) {
        assert!(obj.contains_key(key), "missing {key}: {doc}");
    }
    for key in obj.keys() {
        assert!(schema["properties"].get(key).is_some(), "{key} is not in the schema");
    }
}

/// The pids of probe processes (argv[0] ends in `sbxprobe`) whose arguments contain `marker`.
pub(crate) fn probe_processes(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"sbxprobe")) && args.contains(&marker.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits until `n` probe processes with `marker` run.
pub(crate) fn wait_for_probes(marker: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe_processes(marker).len() < n {
        assert!(Instant::now() < deadline, "the probe processes with {marker} did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A marker unique to this test and runtime.
pub(crate) fn marker(what: &str, runtime: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("reprove-test-{what}-{runtime}-{}-{nanos}", std::process::id())
}

/// Nothing of reprove process `pid` is left: no probe process with `marker`,
/// no runc container or state, no podman container, no bundle directory, no cgroup.
pub(crate) fn assert_nothing_left(pid: u32, marker: &str) {
    let left = probe_processes(marker);
    assert!(left.is_empty(), "processes of the sandbox are still running: {left:?}");
    let prefix = format!("reprove-{pid}-");
    let state_root = sandbox::runc_state_root();
    let mut runc_list = Command::new("runc");
    runc_list.arg("--root").arg(&state_root).args(["list", "--quiet"]);
    let listed = run_ok(&mut runc_list).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !listed.stdout_str().lines().any(|l| l.starts_with(&prefix)),
        "runc still lists a container: {}",
        listed.stdout_str()
    );
    let mut podman_list = Command::new("podman");
    podman_list.args(["ps", "--all", "--format", "{{.Names}}"]);
    let listed = run_ok(&mut podman_list).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !listed.stdout_str().lines().any(|l| l.starts_with(&prefix)),
        "podman still lists a container: {}",
        listed.stdout_str()
    );
    for (what, dir) in [
        ("runc state", state_root),
        ("bundle", std::env::temp_dir()),
        ("memory cgroup", PathBuf::from("/sys/fs/cgroup/memory")),
        ("pids cgroup", PathBuf::from("/sys/fs/cgroup/pids")),
        ("cgroup", PathBuf::from("/sys/fs/cgroup")),
    ] {
        let left: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "{what} left in {}: {left:?}", dir.display());
    }
}
