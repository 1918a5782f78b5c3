//! File locks that the go command honours: Go's `cmd/go/internal/lockedfile`.
//!
//! On Linux and the BSDs Go locks with `flock(2)` on the file itself: an
//! exclusive lock for writers (`lockedfile.Edit`, `Create`, `Write`, and the
//! `MutexAt` lock files such as `cache/download/<path>/@v/<version>.lock`), a
//! shared lock for readers (`lockedfile.Read`). Using the same calls on the
//! same files lets reprove and `go` share one module cache: while either holds
//! `<version>.lock`, the other waits before writing that module's zip,
//! .ziphash or extracted directory.
//!
//! What it is not: a lock on anything but whole files, or a timeout. Locks are
//! released when the [`Locked`] value is dropped (the file is closed). Calls
//! block; async callers run them on a blocking thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

/// An open file holding a `flock` lock until dropped.
#[derive(Debug)]
pub struct Locked {
    file: File,
}

impl Locked {
    /// The locked file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }
}

fn lock(file: &File, op: FlockOperation) -> io::Result<()> {
    loop {
        match flock(file, op) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// `lockedfile.MutexAt(path).Lock()` and `lockedfile.Edit(path)`: opens
/// (creating, mode 0666 before umask) and locks exclusively.
pub fn edit(path: &Path) -> io::Result<Locked> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o666).open(path)?;
    lock(&file, FlockOperation::LockExclusive)?;
    Ok(Locked { file })
}

/// `lockedfile.Create(path)`: like [`edit`], then truncated once the lock is held.
pub fn create(path: &Path) -> io::Result<Locked> {
    let mut l = edit(path)?;
    l.file.set_len(0)?;
    l.file.seek(SeekFrom::Start(0))?;
    Ok(l)
}

/// `lockedfile.Read(path)`: the content, read under a shared lock.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    lock(&file, FlockOperation::LockShared)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

/// `lockedfile.Write(path, data, 0666)`: truncates and writes under an exclusive lock.
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut l = create(path)?;
    l.file.write_all(data)?;
    l.file.sync_data()
}

/// Writes `data` as Go writes a .ziphash (`hashZip`): truncated to the final
/// length first, so that an interrupted write leaves NUL bytes that Go's
/// `isValidSum` rejects, then written and synced.
pub fn write_sized(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut l = create(path)?;
    l.file.set_len(data.len() as u64)?;
    l.file.write_all(data)?;
    l.file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_lock_blocks_a_second_locker() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("v1.0.0.lock");
        let held = edit(&path).unwrap_or_else(|e| panic!("{e}"));
        // A second open file description cannot take the lock while it is held.
        let other = File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(held);
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_ok());
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("x.ziphash");
        write_sized(&path, b"h1:abc").unwrap_or_else(|e| panic!("{e}"));
        write(&path, b"h1:z").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&path).unwrap_or_default(), b"h1:z");
    }
}
