//! Results stored content-addressed, before any row names them: with SQLite in
//! `DIR/blobs/sha256/HEX`, written atomically (a synced temporary file renamed into
//! place); with PostgreSQL in its `blobs` table, so that every server sharing the
//! database reads them. Either way a blob is checked against its digest when read.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::job::valid_digest;
use crate::queue::postgres::Postgres;

/// The blob store: a data directory's, or a PostgreSQL database's.
#[derive(Debug, Clone)]
pub enum Blobs {
    /// Files under `DIR/blobs/sha256` (the SQLite queue's).
    Directory(DirBlobs),
    /// The `blobs` table of the PostgreSQL queue.
    Postgres(Arc<Postgres>),
}

impl Blobs {
    /// The directory store in `data/blobs/sha256`, created if missing.
    pub fn open(data: &Path) -> io::Result<Blobs> {
        DirBlobs::open(data).map(Blobs::Directory)
    }

    /// Stores `bytes`; its digest (`sha256:…`). Storing the same bytes twice writes once.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        match self {
            Blobs::Directory(d) => d.put(bytes),
            Blobs::Postgres(pg) => pg.put_blob(bytes).map_err(io::Error::other),
        }
    }

    /// The blob `digest`; `None` if the digest is malformed or absent.
    pub fn get(&self, digest: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            Blobs::Directory(d) => d.get(digest),
            Blobs::Postgres(pg) => pg.get_blob(digest).map_err(io::Error::other),
        }
    }
}

/// The blob store under a data directory.
#[derive(Debug, Clone)]
pub struct DirBlobs {
    dir: PathBuf,
}

/// The largest blob read back (a report with its findings, an attestation).
const MAX_BLOB: u64 = 64 << 20;

impl DirBlobs {
    /// The store in `data/blobs/sha256`, created if missing.
    pub fn open(data: &Path) -> io::Result<DirBlobs> {
        let dir = data.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir)?;
        Ok(DirBlobs { dir })
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
