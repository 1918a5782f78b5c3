//! Results stored content-addressed: `DIR/blobs/sha256/HEX`, written atomically (a
//! synced temporary file renamed into place) before any row names them.

use std::io;
use std::path::{Path, PathBuf};

use crate::job::valid_digest;

/// The blob store under a data directory.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// The largest blob read back (a report with its findings, an attestation).
const MAX_BLOB: u64 = 64 << 20;

impl Blobs {
    /// The store in `data/blobs/sha256`, created if missing.
    pub fn open(data: &Path) -> io::Result<Blobs> {
        let dir = data.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir)?;
        Ok(Blobs { dir })
    }

    /// Stores `bytes`; its digest (`sha256:…`). Storing the same bytes twice writes once.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let hex = stdx::sha256_hex(bytes);
        let path = self.dir.join(&hex);
        if !path.is_file() {
            match stdx::fs::write_atomic(&path, bytes, ".blob-", 0o644, stdx::fs::Existing::Keep) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(format!("sha256:{hex}"))
    }

    /// The blob `digest`; `None` if the digest is malformed or absent.
    pub fn get(&self, digest: &str) -> io::Result<Option<Vec<u8>>> {
        if !valid_digest(digest) {
            return Ok(None);
        }
        let path = self.dir.join(&digest["sha256:".len()..]);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_BLOB => {}
            Ok(_) => {
                return Err(io::Error::other(format!("{}: not a regular file within the size limit", path.display())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        let bytes = std::fs::read(&path)?;
        if format!("sha256:{}", stdx::sha256_hex(&bytes)) != digest {
            return Err(io::Error::other(format!("{}: content does not match its digest", path.display())));
        }
        Ok(Some(bytes))
    }
}
