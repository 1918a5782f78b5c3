//! What to run: a [`JobConfig`] as the caller states it, validated into a [`Job`].
//!
//! Validation happens once, here, so that every backend receives the same
//! facts: the rootfs is a directory (never the host's `/`), the command is not
//! empty, environment entries are `KEY=VALUE`, mount sources exist and mount
//! destinations are absolute, normalized, and either new top-level
//! directories, paths under `/tmp`, or directories that really exist in the
//! image (no symlink on the way: a destination is never resolved through the
//! image's symlinks). The environment is the image's, overridden by the
//! caller's, plus Docker's defaults for `PATH` and `HOME` when the image sets
//! neither, and `PWD` set to the working directory (as bwrap always does);
//! nothing comes from the host.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Error;

/// Docker's default `PATH`, used when neither the image nor the caller sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Top-level names the sandbox provides itself instead of taking them from the image.
const PROVIDED: [&str; 4] = ["proc", "dev", "tmp", "sys"];

/// Whether the sandbox can reach any network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A new network namespace with only a loopback interface (the default).
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

impl Network {
    /// `none` or `host`.
    pub fn name(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// A bind mount from the host into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    source: PathBuf,
    destination: String,
    read_only: bool,
}

impl Mount {
    /// A bind mount of `source` (which must exist; it is made absolute and
    /// canonical) at `destination` (absolute, without `.` or `..`, not `/`).
    pub fn new(source: impl AsRef<Path>, destination: &str, read_only: bool) -> Result<Mount, Error> {
        let source = source.as_ref();
        let shown = format!("{}:{destination}", source.display());
        let source = fs::canonicalize(source).map_err(|e| Error::Invalid {
            what: "mount",
            value: shown.clone(),
            reason: format!("source {}: {e}", source.display()),
        })?;
        let destination = normalize_absolute(destination).map_err(|reason| Error::Invalid {
            what: "mount",
            value: shown.clone(),
            reason: format!("destination: {reason}"),
        })?;
        if destination == "/" {
            return Err(Error::Invalid { what: "mount", value: shown, reason: "cannot mount over /".into() });
        }
        let first = destination[1..].split('/').next().unwrap_or_default();
        if matches!(first, "proc" | "dev" | "sys") {
            return Err(Error::Invalid {
                what: "mount",
                value: shown,
                reason: format!("/{first} belongs to the sandbox; choose another destination"),
            });
        }
        Ok(Mount { source, destination, read_only })
    }

    /// Parses `SRC:DST`, `SRC:DST:ro` or `SRC:DST:rw` (read-write is the default).
    pub fn parse(spec: &str) -> Result<Mount, Error> {
        let (rest, read_only) = if let Some(r) = spec.strip_suffix(":ro") {
            (r, true)
        } else if let Some(r) = spec.strip_suffix(":rw") {
            (r, false)
        } else {
            (spec, false)
        };
        let Some((source, destination)) = rest.rsplit_once(':') else {
            return Err(Error::Invalid {
                what: "mount",
                value: spec.to_string(),
                reason: "expected SRC:DST[:ro]".into(),
            });
        };
        if source.is_empty() || destination.is_empty() {
            return Err(Error::Invalid {
                what: "mount",
                value: spec.to_string(),
                reason: "expected SRC:DST[:ro]".into(),
            });
        }
        Mount::new(source, destination, read_only)
    }

    /// The canonical host path.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The absolute path inside the sandbox.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Whether the sandbox sees it read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the source is a directory (else a file).
    pub(crate) fn is_dir(&self) -> bool {
        self.source.is_dir()
    }
}

/// Limits on one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time after which the whole sandbox is killed.
    pub timeout: Duration,
    /// Memory limit in bytes: a cgroup limit for the whole sandbox where
    /// cgroups can be used, else `RLIMIT_DATA` on every process.
    pub memory: Option<u64>,
    /// At most this many processes, threads included: a cgroup `pids.max`
    /// (runc and bwrap as root, podman, docker), else `RLIMIT_NPROC`, which
    /// binds only a sandbox whose user is not the host's root (rootless).
    pub pids: Option<u64>,
    /// Bytes of stdout and of stderr kept each; the rest is counted and dropped.
    pub output_cap: usize,
    /// Time between SIGTERM and SIGKILL when the sandbox is stopped.
    pub kill_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(3600),
            memory: None,
            pids: Some(4096),
            output_cap: 16 << 20,
            kill_grace: Duration::from_secs(3),
        }
    }
}

/// A run as the caller states it; [`Job::new`] validates it.
#[derive(Debug, Clone, Default)]
pub struct JobConfig {
    /// The unpacked image: the sandbox's `/`, read-only.
    pub rootfs: PathBuf,
    /// The command and its arguments; the first is looked up on the sandbox's `PATH`.
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries from the image config.
    pub image_env: Vec<String>,
    /// `KEY=VALUE` entries that add to or replace the image's.
    pub env: Vec<String>,
    /// The working directory; `None`: `/`.
    pub workdir: Option<String>,
    /// Bind mounts, in any order (parents are mounted before their children).
    pub mounts: Vec<Mount>,
    /// Network access.
    pub network: Network,
    /// Time, memory and output limits.
    pub limits: Limits,
    /// Copy the command's output to this process's stdout and stderr as it
    /// arrives (it is captured either way).
    pub echo: bool,
    /// The user and group ids the command runs as inside the sandbox;
    /// `None`: 0:0 (the sandbox's root). A backend that cannot run as
    /// another id fails with [`Error::Unsupported`].
    pub user: Option<(u32, u32)>,
    /// The command's umask; `None`: the runtime's default (022). A backend
    /// that cannot set it fails with [`Error::Unsupported`].
    pub umask: Option<u32>,
}

/// One entry of the rootfs's top directory, as the backends recreate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopEntry {
    /// A directory, bind-mounted read-only.
    Dir(String),
    /// A regular file, bind-mounted read-only.
    File(String),
    /// A symlink, recreated with the same target (resolved inside the sandbox).
    Symlink(String, PathBuf),
}

/// A validated run: see [`JobConfig`] for the meaning of each part.
#[derive(Debug, Clone)]
pub struct Job {
    rootfs: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    mounts: Vec<Mount>,
    network: Network,
    limits: Limits,
    echo: bool,
    user: Option<(u32, u32)>,
    umask: Option<u32>,
    top: Vec<TopEntry>,
}

impl Job {
    /// Validates `config`.
    pub fn new(config: JobConfig) -> Result<Job, Error> {
        let rootfs_err = |reason: String| Error::Rootfs { path: config.rootfs.clone(), reason };
        let rootfs = fs::canonicalize(&config.rootfs).map_err(|e| rootfs_err(e.to_string()))?;
        if !rootfs.is_dir() {
            return Err(rootfs_err("not a directory".into()));
        }
        if rootfs == Path::new("/") {
            return Err(rootfs_err("the host's root cannot be a sandbox rootfs".into()));
        }
        let top = read_top(&rootfs).map_err(|e| rootfs_err(e.to_string()))?;

        if config.argv.is_empty() || config.argv[0].is_empty() {
            return Err(Error::Invalid { what: "command", value: String::new(), reason: "no command given".into() });
        }
        if let Some(a) = config.argv.iter().find(|a| a.contains('\0')) {
            return Err(Error::Invalid {
                what: "command argument",
                value: a.clone(),
                reason: "contains a NUL byte".into(),
            });
        }

        let mut env: Vec<(String, String)> = Vec::new();
        for (origin, entries) in [("image environment entry", &config.image_env), ("environment entry", &config.env)] {
            for entry in entries {
                let (k, v) =
                    parse_env(entry).map_err(|reason| Error::Invalid { what: origin, value: entry.clone(), reason })?;
                match env.iter_mut().find(|(key, _)| *key == k) {
                    Some(slot) => slot.1 = v.to_string(),
                    None => env.push((k.to_string(), v.to_string())),
                }
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".into(), root_home(&rootfs)));
        }

        let cwd = match config.workdir.as_deref().filter(|w| !w.is_empty()) {
            None => "/".to_string(),
            Some(w) => normalize_absolute(w).map_err(|reason| Error::Invalid {
                what: "working directory",
                value: w.to_string(),
                reason,
            })?,
        };
        // bwrap always sets PWD; set it everywhere so that every backend gives the same environment.
        match env.iter_mut().find(|(k, _)| k == "PWD") {
            Some(slot) => slot.1 = cwd.clone(),
            None => env.push(("PWD".into(), cwd.clone())),
        }

        let mut mounts = config.mounts.clone();
        mounts.sort_by_key(|m| m.destination.matches('/').count());
        for (i, m) in mounts.iter().enumerate() {
            if mounts[..i].iter().any(|o| o.destination == m.destination) {
                return Err(Error::Invalid {
                    what: "mount",
                    value: m.destination.clone(),
                    reason: "two mounts share this destination".into(),
                });
            }
            let under_other = mounts[..i].iter().any(|o| is_under(&m.destination, &o.destination));
            if !under_other {
                check_destination(&rootfs, &top, m)?;
            }
        }

        if let Some(m) = config.umask.filter(|m| *m > 0o777) {
            return Err(Error::Invalid { what: "umask", value: format!("{m:o}"), reason: "more than 0777".into() });
        }

        Ok(Job {
            rootfs,
            argv: config.argv,
            env,
            cwd,
            mounts,
            network: config.network,
            limits: config.limits,
            echo: config.echo,
            user: config.user,
            umask: config.umask,
            top,
        })
    }

    /// The canonical rootfs path.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The command and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The complete environment of the command, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The environment as `KEY=VALUE` strings.
    pub fn env_strings(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The working directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// The bind mounts, parents before children.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Network access.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether output is copied to this process's stdout and stderr as it arrives.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// The user and group ids inside the sandbox; `None`: 0:0.
    pub fn user(&self) -> Option<(u32, u32)> {
        self.user
    }

    /// The umask; `None`: the runtime's default.
    pub fn umask(&self) -> Option<u32> {
        self.umask
    }

    pub(crate) fn top_level(&self) -> &[TopEntry] {
        &self.top
    }

    /// A job that checks that a backend works: same rootfs, environment and
    /// network, no mounts, a short timeout, running `true` or else `go version`
    /// from the sandbox's `PATH`. `None` when the image has neither.
    pub(crate) fn probe(&self) -> Option<Job> {
        let path = self.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or(DEFAULT_PATH);
        let argv: Vec<String> = if let Some(t) = find_on_path(&self.rootfs, path, "true") {
            vec![t]
        } else if let Some(go) = find_on_path(&self.rootfs, path, "go") {
            vec![go, "version".into()]
        } else {
            return None;
        };
        let env =
            self.env.iter().map(|(k, v)| (k.clone(), if k == "PWD" { "/".to_string() } else { v.clone() })).collect();
        Some(Job {
            argv,
            env,
            cwd: "/".into(),
            mounts: Vec::new(),
            limits: Limits { timeout: Duration::from_secs(30), output_cap: 64 << 10, ..self.limits.clone() },
            echo: false,
            user: None,
            umask: None,
            ..self.clone()
        })
    }
}

fn parse_env(entry: &str) -> Result<(&str, &str), String> {
    let (k, v) = entry.split_once('=').ok_or("expected KEY=VALUE")?;
    if k.is_empty() {
        return Err("empty name".into());
    }
    if entry.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok((k, v))
}

/// `path` made canonical: absolute, single slashes, no `.`/`..`, no trailing slash.
fn normalize_absolute(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not absolute"));
    }
    if path.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("{path:?} contains {part:?}"));
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn is_under(path: &str, parent: &str) -> bool {
    path.strip_prefix(parent).is_some_and(|rest| rest.starts_with('/'))
}

fn read_top(rootfs: &Path) -> std::io::Result<Vec<TopEntry>> {
    let mut top = Vec::new();
    for entry in fs::read_dir(rootfs)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // A name that is not UTF-8 cannot be expressed in a runtime spec; no toolchain has one.
        };
        if PROVIDED.contains(&name.as_str()) {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            top.push(TopEntry::Dir(name));
        } else if ft.is_file() {
            top.push(TopEntry::File(name));
        } else if ft.is_symlink() {
            top.push(TopEntry::Symlink(name, fs::read_link(entry.path())?));
        }
        // Sockets, fifos and device nodes at the top of an image are left out.
    }
    top.sort_by(|a, b| top_name(a).cmp(top_name(b)));
    Ok(top)
}

fn top_name(e: &TopEntry) -> &str {
    match e {
        TopEntry::Dir(n) | TopEntry::File(n) | TopEntry::Symlink(n, _) => n,
    }
}

/// A destination must be creatable (a new top-level name, or under `/tmp`)
/// or exist in the image as real directories (files for a file mount), with
/// no symlink on the way.
fn check_destination(rootfs: &Path, top: &[TopEntry], m: &Mount) -> Result<(), Error> {
    let dst = &m.destination;
    let parts: Vec<&str> = dst[1..].split('/').collect();
    let bad = |reason: String| Error::Invalid { what: "mount", value: format!("{}:{dst}", m.source.display()), reason };
    if parts[0] == "tmp" {
        return Ok(());
    }
    match top.iter().find(|e| top_name(e) == parts[0]) {
        None => Ok(()),
        Some(TopEntry::Symlink(..)) => Err(bad(format!(
            "/{} is a symlink in the image; name the real path (destinations are not resolved through symlinks)",
            parts[0]
        ))),
        Some(TopEntry::File(_)) if parts.len() > 1 => Err(bad(format!("/{} is a file in the image", parts[0]))),
        Some(_) => {
            let mut host = rootfs.to_path_buf();
            for (i, part) in parts.iter().enumerate() {
                host.push(part);
                let last = i + 1 == parts.len();
                let meta = fs::symlink_metadata(&host).map_err(|_| {
                    bad(format!(
                        "{} does not exist in the image, which is read-only; mount at a new top-level directory (such as /out) or under /tmp",
                        parts[..=i].iter().fold(String::new(), |acc, p| acc + "/" + p)
                    ))
                })?;
                let ft = meta.file_type();
                let ok = if !last || m.is_dir() { ft.is_dir() } else { ft.is_file() };
                if !ok {
                    return Err(bad(format!(
                        "{} in the image is a {}, not a {}",
                        parts[..=i].iter().fold(String::new(), |acc, p| acc + "/" + p),
                        kind_name(&ft),
                        if !last || m.is_dir() { "directory" } else { "file" }
                    )));
                }
            }
            Ok(())
        }
    }
}

fn kind_name(ft: &fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "file"
    } else {
        "special file"
    }
}

/// Resolves `path` inside `root` as the sandbox would see it (symlinks are
/// followed relative to `root`, `..` stops at `root`), returning the host path.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = path.split('/').filter(|p| !p.is_empty()).rev().map(str::to_string).collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let host = current.iter().fold(root.to_path_buf(), |p, c| p.join(c)).join(&part);
        let meta = fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = fs::read_link(&host).ok()?;
            let target = target.to_str()?;
            if target.starts_with('/') {
                current.clear();
            }
            pending.extend(target.split('/').filter(|p| !p.is_empty()).rev().map(str::to_string));
        } else {
            current.push(part);
        }
    }
    Some(current.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// The sandbox path of an executable `name` on `path`, if the image has one.
fn find_on_path(rootfs: &Path, path: &str, name: &str) -> Option<String> {
    path.split(':').filter(|d| d.starts_with('/')).find_map(|dir| {
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        let host = resolve_in_root(rootfs, &candidate)?;
        let meta = fs::metadata(&host).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}

/// The home directory of uid 0 in the image's `/etc/passwd`, else `/` (Docker's rule).
fn root_home(rootfs: &Path) -> String {
    let read = || -> Option<String> {
        let host = resolve_in_root(rootfs, "/etc/passwd")?;
        let mut text = String::new();
        fs::File::open(host).ok()?.take(1 << 20).read_to_string(&mut text).ok()?;
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7 && fields[2] == "0" && fields[5].starts_with('/')).then(|| fields[5].to_string())
        })
    };
    read().unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let r = dir.path();
        for d in ["usr/bin", "usr/local/go/bin", "etc", "tmp", "proc", "opt/x"] {
            fs::create_dir_all(r.join(d)).unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
        }
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap_or_else(|e| panic!("symlink: {e}"));
        fs::write(r.join("usr/bin/true"), b"").unwrap_or_else(|e| panic!("write: {e}"));
        fs::set_permissions(r.join("usr/bin/true"), fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        fs::write(r.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n").unwrap_or_else(|e| panic!("write: {e}"));
        fs::write(r.join("etc/hosts"), b"").unwrap_or_else(|e| panic!("write: {e}"));
        dir
    }

    fn config(root: &Path) -> JobConfig {
        JobConfig { rootfs: root.to_path_buf(), argv: vec!["go".into(), "version".into()], ..Default::default() }
    }

    #[test]
    fn environment_is_the_image_then_the_caller_plus_defaults() {
        let r = rootfs();
        let job = Job::new(JobConfig {
            image_env: vec!["A=1".into(), "B=2".into()],
            env: vec!["B=3".into(), "C=x=y".into()],
            ..config(r.path())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(job.env_strings(), ["A=1", "B=3", "C=x=y", &format!("PATH={DEFAULT_PATH}"), "HOME=/root", "PWD=/"]);
        assert!(Job::new(JobConfig { env: vec!["NOEQUALS".into()], ..config(r.path()) }).is_err());
        assert!(Job::new(JobConfig { env: vec!["=v".into()], ..config(r.path()) }).is_err());
    }

    #[test]
    fn top_level_skips_what_the_sandbox_provides() {
        let r = rootfs();
        let job = Job::new(config(r.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            job.top_level(),
            [
                TopEntry::Symlink("bin".into(), PathBuf::from("usr/bin")),
                TopEntry::Dir("etc".into()),
                TopEntry::Dir("opt".into()),
                TopEntry::Dir("usr".into())
            ]
        );
    }

    #[test]
    fn mount_destinations() {
        let r = rootfs();
        let src = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let s = src.path().display().to_string();
        let ok = |dst: &str| {
            let m = Mount::parse(&format!("{s}:{dst}:ro")).unwrap_or_else(|e| panic!("{e}"));
            Job::new(JobConfig { mounts: vec![m], ..config(r.path()) })
        };
        assert!(ok("/out").is_ok());
        assert!(ok("/tmp/x/y").is_ok());
        assert!(ok("/opt/x").is_ok());
        assert!(ok("/new/deep/dir").is_ok());
        for bad in ["/opt/missing", "/bin/x", "/usr/bin/true"] {
            let err = ok(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(err.is_input(), "{err}");
        }
        for bad in [
            format!("{s}:relative"),
            format!("{s}:/proc/x"),
            format!("{s}:/"),
            format!("{s}:/a/../b"),
            "/nonexistent-src:/x".into(),
            "nocolon".into(),
        ] {
            assert!(Mount::parse(&bad).is_err(), "{bad} accepted");
        }
        let m = Mount::parse(&format!("{s}://a//b/:rw")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.destination(), m.read_only()), ("/a/b", false));
    }

    #[test]
    fn mounts_are_ordered_parents_first() {
        let r = rootfs();
        let src = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let m = |d: &str| Mount::new(src.path(), d, false).unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(JobConfig { mounts: vec![m("/w/out/deep"), m("/w")], ..config(r.path()) })
            .unwrap_or_else(|e| panic!("{e}"));
        let dsts: Vec<&str> = job.mounts().iter().map(Mount::destination).collect();
        assert_eq!(dsts, ["/w", "/w/out/deep"]);
        assert!(Job::new(JobConfig { mounts: vec![m("/w"), m("/w/")], ..config(r.path()) }).is_err());
    }

    #[test]
    fn probe_finds_true_through_symlinks() {
        let r = rootfs();
        let job = Job::new(JobConfig { image_env: vec!["PATH=/bin".into()], ..config(r.path()) })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(job.probe().map(|p| p.argv().to_vec()), Some(vec!["/bin/true".to_string()]));
        let job = Job::new(JobConfig { image_env: vec!["PATH=/usr/local/go/bin".into()], ..config(r.path()) })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(job.probe().is_none());
    }

    #[test]
    fn resolve_stays_in_root() {
        let r = rootfs();
        std::os::unix::fs::symlink("/../../etc", r.path().join("usr/escape"))
            .unwrap_or_else(|e| panic!("symlink: {e}"));
        assert_eq!(resolve_in_root(r.path(), "/usr/escape/passwd"), Some(r.path().join("etc/passwd")));
        assert_eq!(resolve_in_root(r.path(), "/bin/true"), Some(r.path().join("usr/bin/true")));
        assert_eq!(resolve_in_root(r.path(), "/../../../etc/hosts"), Some(r.path().join("etc/hosts")));
    }

    #[test]
    fn rootfs_must_be_a_directory_and_not_the_host_root() {
        assert!(Job::new(JobConfig { rootfs: "/".into(), argv: vec!["x".into()], ..Default::default() }).is_err());
        assert!(Job::new(JobConfig {
            rootfs: "/nonexistent-rootfs".into(),
            argv: vec!["x".into()],
            ..Default::default()
        })
        .is_err());
        let r = rootfs();
        assert!(Job::new(JobConfig { argv: vec![], ..config(r.path()) }).is_err());
    }
}
