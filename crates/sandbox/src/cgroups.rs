//! Which cgroup hierarchy this host has, and what reprove may do with it.
//!
//! Three layouts exist, told apart by the cgroup mounts of `/proc/self/mountinfo`:
//! - **v1**: one `cgroup` mount per controller (or group of controllers),
//!   no `cgroup2` mount;
//! - **hybrid** (systemd's default for years): the v1 controller mounts plus a
//!   `cgroup2` mount without controllers (usually `/sys/fs/cgroup/unified`);
//! - **v2**: one `cgroup2` mount holding every controller (a v1 mount that
//!   only names a hierarchy, `name=systemd`, holds no controller and does not
//!   make a host hybrid).
//!
//! A controller lives on its v1 mount under v1 and hybrid, and on the
//! unified mount under v2, where it must also be listed in the parent's
//! `cgroup.subtree_control`. We find out whether a cgroup can really be
//! created by creating and removing an empty one, not by guessing.
//!
//! runc (with its cgroupfs driver) creates a cgroup per container when it runs
//! as root, with the memory and pids limits; the bwrap backend, as root,
//! creates a pids cgroup of its own ([`PidsCgroup`]). Where cgroups cannot be
//! used (rootless, read-only cgroupfs, no controller, a sandboxed CI
//! machine), reprove falls back to rlimits and says so in the outcome's
//! notes: memory is limited per process by `RLIMIT_DATA`, and the process
//! count by `RLIMIT_NPROC` — which binds only a sandbox whose user is not the
//! host's root (the kernel exempts uid 0 from it), i.e. rootless runs; as
//! root without cgroups, the process count is not limited.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// v1 controllers plus a v2 hierarchy without controllers (systemd's hybrid mode).
    Hybrid,
    /// The v2 unified hierarchy only.
    V2,
    /// No cgroup filesystem with controllers is mounted.
    Missing,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::V1 => "cgroup v1",
            Mode::Hybrid => "cgroup hybrid (v1 controllers, v2 unified)",
            Mode::V2 => "cgroup v2",
            Mode::Missing => "no cgroup filesystem",
        }
    }
}

/// The controllers of cgroup v1 (a v1 mount option naming one of them makes it a controller mount).
const V1_CONTROLLERS: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The cgroup mounts of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) mode: Mode,
    /// v1 controller mounts: (controllers, mount point).
    v1: Vec<(Vec<String>, PathBuf)>,
    /// The `cgroup2` mount.
    v2: Option<PathBuf>,
}

impl Layout {
    /// Reads mountinfo-format text (`/proc/self/mountinfo`).
    pub(crate) fn parse(mountinfo: &str) -> Layout {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in mountinfo.lines() {
            // Fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let Some(mount_point) = left.split(' ').nth(4) else { continue };
            let mut r = right.split(' ');
            let fstype = r.next().unwrap_or_default();
            let super_opts = r.nth(1).unwrap_or_default();
            match fstype {
                "cgroup" => {
                    let controllers: Vec<String> =
                        super_opts.split(',').filter(|o| V1_CONTROLLERS.contains(o)).map(str::to_string).collect();
                    if !controllers.is_empty() {
                        v1.push((controllers, PathBuf::from(unescape(mount_point))));
                    }
                }
                // The first cgroup2 mount (a container may see the host's again below it).
                "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(unescape(mount_point))),
                _ => {}
            }
        }
        let mode = match (v1.is_empty(), &v2) {
            (false, Some(_)) => Mode::Hybrid,
            (false, None) => Mode::V1,
            (true, Some(_)) => Mode::V2,
            (true, None) => Mode::Missing,
        };
        Layout { mode, v1, v2 }
    }

    /// The directory under which a cgroup with `controller` would be created:
    /// its v1 mount (v1, hybrid), or the unified mount (v2).
    pub(crate) fn controller_dir(&self, controller: &str) -> Option<PathBuf> {
        match self.mode {
            Mode::V1 | Mode::Hybrid => {
                self.v1.iter().find(|(c, _)| c.iter().any(|c| c == controller)).map(|(_, p)| p.clone())
            }
            Mode::V2 => self.v2.clone(),
            Mode::Missing => None,
        }
    }

    /// The host's layout.
    pub(crate) fn host() -> Layout {
        Layout::parse(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
    }
}

/// What runc may do with cgroups here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Support {
    pub(crate) mode: Mode,
    /// `None` when usable; otherwise why not.
    pub(crate) unusable: Option<String>,
}

/// [`detect`], once per process.
pub(crate) fn detect_cached(rootless: bool) -> Support {
    static CACHE: std::sync::OnceLock<Support> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| detect(rootless)).clone()
}

/// Detects the layout and probes the memory controller (only when running as
/// root: rootless runc never creates cgroups with the cgroupfs driver).
pub(crate) fn detect(rootless: bool) -> Support {
    let layout = Layout::host();
    let unusable = if rootless {
        Some("rootless: runc cannot create cgroups without a delegated cgroup".to_string())
    } else {
        usable(&layout, "memory").err()
    };
    Support { mode: layout.mode, unusable }
}

/// The directory to create cgroups with `controller` in, after checking that one can be.
fn usable(layout: &Layout, controller: &str) -> Result<PathBuf, String> {
    match (layout.mode, layout.controller_dir(controller)) {
        (Mode::Missing, _) => Err("no cgroup filesystem is mounted".to_string()),
        (_, None) => Err(format!("no {controller} controller is mounted")),
        (mode, Some(dir)) => probe(mode, &dir, controller).map(|()| dir),
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

fn probe(mode: Mode, dir: &Path, controller: &str) -> Result<(), String> {
    if mode == Mode::V2 {
        let controls = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        if !controls.split_whitespace().any(|c| c == controller) {
            return Err(format!(
                "the {controller} controller is not enabled in {}/cgroup.subtree_control",
                dir.display()
            ));
        }
    }
    let probe = dir.join(format!("reprove-probe-{}-{controller}", std::process::id()));
    fs::create_dir(&probe).map_err(|e| format!("cannot create a cgroup (mkdir {}: {e})", probe.display()))?;
    fs::remove_dir(&probe).map_err(|e| format!("cannot remove a cgroup (rmdir {}: {e})", probe.display()))?;
    Ok(())
}

/// A pids cgroup of reprove's own (for the bwrap backend, as root): created
/// with `pids.max`, entered by the sandbox's first process before it execs
/// (see [`PidsCgroup::procs_file`]), emptied and removed by [`PidsCgroup::remove`].
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
    removed: bool,
}

impl PidsCgroup {
    /// Creates `<pids controller>/<name>` with `pids.max = max`.
    pub(crate) fn create(name: &str, max: u64) -> Result<PidsCgroup, String> {
        let parent = usable(&Layout::host(), "pids")?;
        let dir = parent.join(name);
        fs::create_dir(&dir).map_err(|e| format!("cannot create a cgroup (mkdir {}: {e})", dir.display()))?;
        let cg = PidsCgroup { dir, removed: false };
        let file = cg.dir.join("pids.max");
        fs::write(&file, max.to_string()).map_err(|e| format!("cannot set {}: {e}", file.display()))?;
        Ok(cg)
    }

    /// The file a process writes its pid to, to move itself into the cgroup.
    pub(crate) fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The processes in the cgroup.
    pub(crate) fn pids(&self) -> Vec<u32> {
        fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILLs whatever is still in the cgroup and removes it (retrying while
    /// the kernel lets the killed processes go). The error says what is left.
    pub(crate) fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for pid in self.pids() {
                super::process::signal(pid, rustix::process::Signal::KILL);
            }
            match fs::remove_dir(&self.dir) {
                Ok(()) => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "cannot remove cgroup {} ({e}); left in it: {:?}",
                        self.dir.display(),
                        self.pids()
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// Removes the pids cgroups of reprove's bwrap sandboxes (`reprove-<pid>-…`)
/// whose names `dead` accepts, killing what is left in them; returns how many.
pub(crate) fn collect_stale(dead: &dyn Fn(&str) -> bool) -> usize {
    let Some(parent) = Layout::host().controller_dir("pids") else { return 0 };
    let mut removed = 0;
    for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("reprove-") && dead(&name) && entry.path().join("pids.max").is_file() {
            let mut cg = PidsCgroup { dir: entry.path(), removed: false };
            if cg.remove().is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mountinfo samples of each layout, in `testdata/mountinfo/`: a legacy v1
    /// host (every controller on its own mount, `name=systemd`), systemd's
    /// hybrid mode, this CI kind's VM (hybrid, recorded from its
    /// `/proc/self/mountinfo`), a v2 host, a v2 host that also mounts the named
    /// v1 `systemd` hierarchy (no controllers: still v2), containers on v1 and
    /// v2 hosts, a machine without cgroups, and an escaped mount point.
    fn sample(name: &str) -> Layout {
        let text = match name {
            "v1-systemd-legacy" => include_str!("testdata/mountinfo/v1-systemd-legacy.txt"),
            "v1-container" => include_str!("testdata/mountinfo/v1-container.txt"),
            "hybrid-systemd" => include_str!("testdata/mountinfo/hybrid-systemd.txt"),
            "hybrid-vm" => include_str!("testdata/mountinfo/hybrid-vm.txt"),
            "v2-systemd" => include_str!("testdata/mountinfo/v2-systemd.txt"),
            "v2-container" => include_str!("testdata/mountinfo/v2-container.txt"),
            "v2-with-named-v1" => include_str!("testdata/mountinfo/v2-with-named-v1.txt"),
            "none" => include_str!("testdata/mountinfo/none.txt"),
            "escaped-mount-point" => include_str!("testdata/mountinfo/escaped-mount-point.txt"),
            other => panic!("no sample {other}"),
        };
        Layout::parse(text)
    }

    #[test]
    fn layouts_of_recorded_mountinfo() {
        let dir = |s: &str| Some(PathBuf::from(s));
        for (name, mode, memory, pids) in [
            ("v1-systemd-legacy", Mode::V1, dir("/sys/fs/cgroup/memory"), dir("/sys/fs/cgroup/pids")),
            ("v1-container", Mode::V1, dir("/sys/fs/cgroup/memory"), dir("/sys/fs/cgroup/pids")),
            ("hybrid-systemd", Mode::Hybrid, dir("/sys/fs/cgroup/memory"), dir("/sys/fs/cgroup/pids")),
            ("hybrid-vm", Mode::Hybrid, dir("/sys/fs/cgroup/memory"), dir("/sys/fs/cgroup/pids")),
            ("v2-systemd", Mode::V2, dir("/sys/fs/cgroup"), dir("/sys/fs/cgroup")),
            ("v2-container", Mode::V2, dir("/sys/fs/cgroup"), dir("/sys/fs/cgroup")),
            ("v2-with-named-v1", Mode::V2, dir("/sys/fs/cgroup"), dir("/sys/fs/cgroup")),
            ("none", Mode::Missing, None, None),
            ("escaped-mount-point", Mode::V2, dir("/mnt/cgroup v2"), dir("/mnt/cgroup v2")),
        ] {
            let l = sample(name);
            assert_eq!((l.mode, l.controller_dir("memory"), l.controller_dir("pids")), (mode, memory, pids), "{name}");
        }
        // Grouped v1 controllers are found on their shared mount; absent ones are not.
        let legacy = sample("v1-systemd-legacy");
        assert_eq!(legacy.controller_dir("cpuacct"), dir("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(legacy.controller_dir("net_prio"), dir("/sys/fs/cgroup/net_cls,net_prio"));
        assert_eq!(legacy.controller_dir("rdma"), None);
        // A hybrid host's controllers are the v1 ones, never the controller-less unified mount.
        assert_eq!(sample("hybrid-systemd").controller_dir("hugetlb"), None);
        // Garbage is no layout, and no panic.
        for text in ["", "-", " - ", "1 2 3 - cgroup2", "a b c d", "1 2 3 4 - cgroup cgroup", "\u{0} - cgroup2 x y"] {
            let l = Layout::parse(text);
            assert!(l.mode == Mode::Missing || l.mode == Mode::V2, "{text:?}: {l:?}");
        }
    }

    /// The layout read from this host's /proc/self/mountinfo agrees with what
    /// the kernel says about our own cgroups in /proc/self/cgroup (v2: a
    /// `0::` line; v1: lines naming controllers), and where reprove would
    /// create cgroups is a cgroup directory. Not a double: the host's layout.
    #[test]
    fn this_host_s_layout_matches_proc_self_cgroup() {
        let layout = Layout::host();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let has_v2 = own.lines().any(|l| l.starts_with("0::"));
        let has_v1 =
            own.lines().any(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| V1_CONTROLLERS.contains(&c))));
        let expected = match (has_v1, has_v2) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::V1,
            (false, true) => Mode::V2,
            (false, false) => Mode::Missing,
        };
        assert_eq!(layout.mode, expected, "/proc/self/cgroup:\n{own}");
        for controller in ["memory", "pids"] {
            if let Some(dir) = layout.controller_dir(controller) {
                assert!(dir.join("cgroup.procs").is_file(), "{controller}: {} is not a cgroup", dir.display());
            }
        }
    }

    /// As root where the pids controller can be used (CI), a pids cgroup is
    /// created with its limit and removed; elsewhere the error says why.
    #[test]
    fn pids_cgroups_are_created_and_removed() {
        let name = format!("reprove-unit-{}", std::process::id());
        let layout = Layout::host();
        let can = rustix::process::geteuid().is_root() && usable(&layout, "pids").is_ok();
        match PidsCgroup::create(&name, 7) {
            Ok(mut cg) => {
                assert!(can);
                let max = fs::read_to_string(cg.dir().join("pids.max")).unwrap_or_default();
                assert_eq!(max.trim(), "7");
                assert!(cg.pids().is_empty());
                let dir = cg.dir().to_path_buf();
                assert_eq!(cg.remove(), Ok(()));
                assert!(!dir.exists());
            }
            Err(why) => {
                assert!(!can, "{why}");
                assert!(!why.is_empty());
            }
        }
    }

    #[test]
    fn rootless_never_uses_cgroups() {
        assert!(detect(true).unusable.is_some());
    }
}
