//! Which cgroup hierarchy this host has, and whether runc may use it.
//!
//! runc (with its cgroupfs driver) creates a cgroup per container when it
//! runs as root; that needs a writable memory controller: under v1 and
//! hybrid hosts the `memory` hierarchy, under v2 the unified hierarchy with
//! `memory` in `cgroup.subtree_control`. We find out by creating and removing
//! an empty cgroup, not by guessing. Where cgroups cannot be used (rootless,
//! read-only cgroupfs, a sandboxed CI machine), the memory limit falls back to
//! `RLIMIT_DATA` per process and the process-count limit is dropped; the
//! outcome's notes say so.

use std::fs;
use std::path::{Path, PathBuf};

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// v1 controllers plus a v2 hierarchy without controllers (systemd's hybrid mode).
    Hybrid,
    /// The v2 unified hierarchy only.
    V2,
    /// No cgroup filesystem is mounted.
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

/// Detects the layout and probes it (only when running as root: rootless
/// runc never creates cgroups with the cgroupfs driver).
pub(crate) fn detect(rootless: bool) -> Support {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (mode, memory_dir) = layout(&mounts);
    let unusable = if rootless {
        Some("rootless: runc cannot create cgroups without a delegated cgroup".to_string())
    } else {
        match (mode, memory_dir) {
            (Mode::Missing, _) => Some("no cgroup filesystem is mounted".to_string()),
            (_, None) => Some("no memory controller is mounted".to_string()),
            (_, Some(dir)) => probe(mode, &dir).err(),
        }
    };
    Support { mode, unusable }
}

/// The mode and the directory where a container's memory cgroup would go.
fn layout(mountinfo: &str) -> (Mode, Option<PathBuf>) {
    let mut v1_memory = None;
    let mut v1_any = false;
    let mut v2 = None;
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mut l = left.split(' ');
        let mount_point = l.nth(4).unwrap_or_default();
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or_default();
        let super_opts = r.nth(1).unwrap_or_default();
        match fstype {
            "cgroup" => {
                v1_any = true;
                if super_opts.split(',').any(|o| o == "memory") {
                    v1_memory = Some(PathBuf::from(unescape(mount_point)));
                }
            }
            "cgroup2" => v2 = Some(PathBuf::from(unescape(mount_point))),
            _ => {}
        }
    }
    match (v1_any, v2) {
        (true, Some(_)) => (Mode::Hybrid, v1_memory),
        (true, None) => (Mode::V1, v1_memory),
        (false, Some(dir)) => (Mode::V2, Some(dir)),
        (false, None) => (Mode::Missing, None),
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

fn probe(mode: Mode, dir: &Path) -> Result<(), String> {
    if mode == Mode::V2 {
        let controls = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        if !controls.split_whitespace().any(|c| c == "memory") {
            return Err(format!("the memory controller is not enabled in {}/cgroup.subtree_control", dir.display()));
        }
    }
    let probe = dir.join(format!("reprove-probe-{}", std::process::id()));
    fs::create_dir(&probe).map_err(|e| format!("cannot create a cgroup (mkdir {}: {e})", probe.display()))?;
    fs::remove_dir(&probe).map_err(|e| format!("cannot remove a cgroup (rmdir {}: {e})", probe.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 27 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn layouts() {
        assert_eq!(layout(HYBRID), (Mode::Hybrid, Some(PathBuf::from("/sys/fs/cgroup/memory"))));
        let v1: String = HYBRID.lines().filter(|l| !l.contains("cgroup2")).map(|l| format!("{l}\n")).collect();
        assert_eq!(layout(&v1), (Mode::V1, Some(PathBuf::from("/sys/fs/cgroup/memory"))));
        let v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(layout(v2), (Mode::V2, Some(PathBuf::from("/sys/fs/cgroup"))));
        assert_eq!(layout("22 27 0:21 / /proc rw - proc proc rw\n"), (Mode::Missing, None));
    }

    #[test]
    fn rootless_never_uses_cgroups() {
        assert!(detect(true).unusable.is_some());
    }
}
