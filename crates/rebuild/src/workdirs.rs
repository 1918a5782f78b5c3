//! The work directories of `reprove verify` below the cache (`work/verify-*`):
//! each holds a lock file (`.lock`) that its run keeps locked (`flock`,
//! exclusive) for as long as it lives, so that `reprove toolchain gc` removes
//! the directories of runs that are gone (killed), never one in progress.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustix::fs::FlockOperation;

/// The lock file inside a work directory.
const LOCK: &str = ".lock";

/// A directory without a lock file is a run's only in the instant between
/// its creation and its locking; older than this, it is a leftover (of a
/// version of reprove that did not lock).
const UNLOCKED_GRACE: Duration = Duration::from_secs(3600);

/// Creates and locks `dir/.lock`; the run holds the returned file.
pub(crate) fn lock(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK);
    let file = File::options().create_new(true).write(true).open(&path)?;
    rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)?;
    Ok(file)
}

/// Removes the work directories of `cache_dir/work/` whose run is gone;
/// returns how many.
pub fn collect(cache_dir: &Path) -> io::Result<usize> {
    let work = cache_dir.join("work");
    let entries = match std::fs::read_dir(&work) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("verify-") {
            continue;
        }
        let dir = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // Held while removing: a lock we could take belongs to no live run.
        let _held = match File::open(dir.join(LOCK)) {
            Ok(f) => match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => Some(f),
                Err(_) => continue, // a live run holds it
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > UNLOCKED_GRACE);
                if !old {
                    continue;
                }
                None
            }
            Err(_) => continue,
        };
        make_writable(&dir);
        std::fs::remove_dir_all(&dir)?;
        removed += 1;
    }
    Ok(removed)
}

/// Go's module cache and a build's output can be read-only: give the owner
/// write permission on every directory so that the tree can be removed.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700));
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        make_writable(&entry.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_of_runs_that_are_gone_are_removed() {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let work = cache.path().join("work");
        let live = work.join("verify-live");
        let dead = work.join("verify-dead");
        let fresh = work.join("verify-fresh");
        let other = work.join("not-a-run");
        for d in [&live, &dead, &fresh, &other] {
            std::fs::create_dir_all(d.join("out")).unwrap_or_else(|e| panic!("{e}"));
        }
        let _held = lock(&live).unwrap_or_else(|e| panic!("{e}"));
        drop(lock(&dead).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(collect(cache.path()).unwrap_or_else(|e| panic!("{e}")), 1);
        assert!(live.is_dir() && !dead.exists() && fresh.is_dir() && other.is_dir());
        assert_eq!(collect(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")).path()).ok(), Some(0));
    }
}
