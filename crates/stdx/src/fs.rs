//! Atomic file writes: a reader sees the old file or the new one, never a part.

use std::io::{self, Write as _};
use std::path::Path;

/// What to do when the destination exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it atomically.
    Replace,
    /// Fail with [`io::ErrorKind::AlreadyExists`] and leave it as it was.
    Keep,
}

/// Writes `contents` to `path` through a temporary file in the same directory
/// (named `prefix…`), synced before it is renamed into place; the directory is
/// synced after. The file gets `mode` (before the umask is not applied: it is set).
pub fn write_atomic(path: &Path, contents: &[u8], prefix: &str, mode: u32, existing: Existing) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?;
    tmp.write_all(contents)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    match existing {
        Existing::Replace => tmp.persist(path).map_err(|e| e.error)?,
        Existing::Keep => tmp.persist_noclobber(path).map_err(|e| e.error)?,
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_or_keeps() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f");
        write_atomic(&p, b"one", ".t.", 0o644, Existing::Keep)?;
        assert_eq!(std::fs::read(&p)?, b"one");
        let e = write_atomic(&p, b"two", ".t.", 0o644, Existing::Keep).err().map(|e| e.kind());
        assert_eq!(e, Some(io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&p)?, b"one");
        write_atomic(&p, b"three", ".t.", 0o600, Existing::Replace)?;
        assert_eq!(std::fs::read(&p)?, b"three");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1, "no temporary file is left");
        Ok(())
    }
}
