//! The content cache of attached artifacts: manifests and blobs by digest, and which
//! registries serve the referrers API.
//!
//! What it is: what a [`Repository`](super::Repository) need not ask a registry
//! twice. Content named by its digest cannot change, so an image manifest, a
//! referrer's manifest and an attestation blob, once fetched and checked, are kept
//! (in memory, bounded, and optionally in a directory) and served again without a
//! request. What can change is always asked: the referrers list (the API's answer or
//! the `sha256-<hex>` index) and cosign's legacy tags, so an attestation pushed or
//! removed is seen on the next fetch.
//!
//! **Checked on every read from disk.** A file of the directory is used only if its
//! sha256 is the digest it is filed under; one that is not is removed and the content
//! fetched again. Writes are atomic (a temporary file renamed into place), so a reader
//! never sees half a file; a cache that cannot be written or read is a miss, never an
//! error.
//!
//! **Referrers API.** A registry that answered the referrers API is remembered (by its
//! host), so that its next fetch asks only the API. One not known to have it is asked
//! the API and the referrers tag at once; if a registry remembered for the API answers
//! 404 after all, the tag is asked and the memory dropped. A registry *without* the API
//! is never remembered as such: each fetch still asks the API (at the same time as the
//! tag, so it costs no time), and so finds an API a registry gained since.
//!
//! Layout of the directory:
//!
//! ```text
//! sha256/<hex>        a manifest or blob whose sha256 is <hex>
//! api/<host>          the registry <host> (`:` as `_`) answered the referrers API
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::Digest;

/// The default memory bound of a [`Cache`]: 16 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 16 << 20;
/// Content larger than this is not cached (4 MiB, the manifest bound).
pub const MAX_ENTRY_BYTES: u64 = super::MAX_MANIFEST_BYTES;

/// Manifests and blobs by digest, and the registries known to serve the referrers API.
/// Shared by every [`Repository`](super::Repository) given it (`Arc`), across
/// registries: content is found by its digest alone.
#[derive(Debug)]
pub struct Cache {
    memory: Mutex<Memory>,
    memory_limit: u64,
    dir: Option<PathBuf>,
    api: Mutex<HashSet<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Memory {
    entries: HashMap<String, Bytes>,
    /// Insertion order, for eviction (oldest first).
    order: VecDeque<String>,
    bytes: u64,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::in_memory(DEFAULT_MEMORY_BYTES)
    }
}

impl Cache {
    /// A cache in memory only, of at most `memory_bytes` (the oldest entries go first).
    pub fn in_memory(memory_bytes: u64) -> Cache {
        Cache {
            memory: Mutex::new(Memory::default()),
            memory_limit: memory_bytes,
            dir: None,
            api: Mutex::new(HashSet::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache in memory (the default bound) and in `dir` (created when first written),
    /// which lives on between processes.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: Some(dir.into()), ..Cache::in_memory(DEFAULT_MEMORY_BYTES) }
    }

    /// The directory, if the cache has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// How many reads were served from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// How many reads were not.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn file(&self, digest: &Digest) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("sha256").join(digest.hex()))
    }

    /// The content whose digest is `digest`, if cached (from disk only if it matches).
    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        let found = self.memory_get(digest).or_else(|| {
            let path = self.file(digest)?;
            let Some(bytes) = read_bounded(&path) else {
                // Not a regular file (a link, a FIFO): not ours; the content is fetched again.
                if path.symlink_metadata().is_ok_and(|m| !m.is_file()) {
                    let _ = std::fs::remove_file(&path);
                }
                return None;
            };
            if Digest::of(&bytes) != *digest {
                // Changed on disk: not the content; fetched again.
                let _ = std::fs::remove_file(&path);
                return None;
            }
            let bytes = Bytes::from(bytes);
            self.memory_put(digest, &bytes);
            Some(bytes)
        });
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `bytes`, which the caller checked are the content of `digest` (ignored when
    /// they are not, or larger than [`MAX_ENTRY_BYTES`]).
    pub fn put(&self, digest: &Digest, bytes: &Bytes) {
        if bytes.len() as u64 > MAX_ENTRY_BYTES || Digest::of(bytes) != *digest {
            return;
        }
        self.memory_put(digest, bytes);
        if let Some(path) = self.file(digest) {
            if !path.exists() {
                let _ = write_new(&path, bytes);
            }
        }
    }

    fn memory_get(&self, digest: &Digest) -> Option<Bytes> {
        let memory = self.memory.lock().ok()?;
        memory.entries.get(digest.hex()).cloned()
    }

    fn memory_put(&self, digest: &Digest, bytes: &Bytes) {
        let size = bytes.len() as u64;
        if size > self.memory_limit {
            return;
        }
        let Ok(mut memory) = self.memory.lock() else { return };
        if memory.entries.contains_key(digest.hex()) {
            return;
        }
        while memory.bytes + size > self.memory_limit {
            let Some(oldest) = memory.order.pop_front() else { break };
            if let Some(evicted) = memory.entries.remove(&oldest) {
                memory.bytes -= evicted.len() as u64;
            }
        }
        memory.entries.insert(digest.hex().to_string(), bytes.clone());
        memory.order.push_back(digest.hex().to_string());
        memory.bytes += size;
    }

    fn api_file(&self, host: &str) -> Option<PathBuf> {
        let name: String =
            host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        self.dir.as_ref().map(|d| d.join("api").join(name))
    }

    /// Whether the registry `host` answered the referrers API before.
    pub fn has_api(&self, host: &str) -> bool {
        if self.api.lock().is_ok_and(|api| api.contains(host)) {
            return true;
        }
        let on_disk = self.api_file(host).is_some_and(|f| f.is_file());
        if on_disk {
            if let Ok(mut api) = self.api.lock() {
                api.insert(host.to_string());
            }
        }
        on_disk
    }

    /// Remembers whether the registry `host` serves the referrers API.
    pub fn set_api(&self, host: &str, has: bool) {
        let was = self.api.lock().map(|mut api| if has { !api.insert(host.to_string()) } else { api.remove(host) });
        let Some(path) = self.api_file(host) else { return };
        match (has, was) {
            (true, Ok(false)) => {
                let _ = write_new(&path, b"");
            }
            (false, _) => {
                let _ = std::fs::remove_file(path);
            }
            _ => {}
        }
    }
}

/// A file of the cache, if it is a regular file of at most [`MAX_ENTRY_BYTES`] (not
/// through a symbolic link; a FIFO does not block the open).
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_ENTRY_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Writes `bytes` to `path` through a temporary file in its directory (created if
/// missing), renamed into place. No fsync: a file lost or torn by a crash fails its
/// digest check and is fetched again.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn content_is_kept_by_digest_and_checked_on_disk() -> TestResult {
        let dir = tempfile::tempdir()?;
        let data = Bytes::from_static(b"{\"schemaVersion\":2}");
        let digest = Digest::of(&data);
        let cache = Cache::in_dir(dir.path());
        assert_eq!(cache.get(&digest), None);
        cache.put(&digest, &data);
        assert_eq!(cache.get(&digest), Some(data.clone()));
        // Another process: from disk.
        let other = Cache::in_dir(dir.path());
        assert_eq!(other.get(&digest), Some(data.clone()));
        assert_eq!((other.hits(), other.misses()), (1, 0));
        // A file changed on disk is not the content: removed, a miss.
        let file = dir.path().join("sha256").join(digest.hex());
        std::fs::write(&file, b"{\"schemaVersion\":3}")?;
        let third = Cache::in_dir(dir.path());
        assert_eq!(third.get(&digest), None);
        assert!(!file.exists());
        // Bytes that are not the digest's are not kept.
        third.put(&digest, &Bytes::from_static(b"other"));
        assert_eq!(third.get(&digest), None);
        // Neither a symbolic link nor a FIFO is read (the open does not block).
        let target = dir.path().join("target");
        std::fs::write(&target, &data)?;
        std::os::unix::fs::symlink(&target, &file)?;
        assert_eq!(Cache::in_dir(dir.path()).get(&digest), None);
        assert!(file.symlink_metadata().is_err(), "the link is left");
        rustix::fs::mknodat(rustix::fs::CWD, &file, rustix::fs::FileType::Fifo, rustix::fs::Mode::RUSR, 0)?;
        assert_eq!(Cache::in_dir(dir.path()).get(&digest), None);
        assert!(file.symlink_metadata().is_err(), "the FIFO is left");
        // And the content is kept again.
        let cache = Cache::in_dir(dir.path());
        cache.put(&digest, &data);
        assert_eq!(std::fs::read(&file)?, data);
        Ok(())
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let cache = Cache::in_memory(10);
        let (a, b) = (Bytes::from_static(b"aaaaaa"), Bytes::from_static(b"bbbbbb"));
        cache.put(&Digest::of(&a), &a);
        cache.put(&Digest::of(&b), &b);
        assert_eq!(cache.get(&Digest::of(&a)), None);
        assert_eq!(cache.get(&Digest::of(&b)), Some(b));
    }

    #[test]
    fn registries_with_the_api_are_remembered_and_forgotten() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = Cache::in_dir(dir.path());
        assert!(!cache.has_api("127.0.0.1:5000"));
        cache.set_api("127.0.0.1:5000", true);
        assert!(cache.has_api("127.0.0.1:5000"));
        assert!(dir.path().join("api/127.0.0.1_5000").is_file());
        assert!(Cache::in_dir(dir.path()).has_api("127.0.0.1:5000"));
        assert!(!Cache::in_dir(dir.path()).has_api("127.0.0.1:5001"));
        cache.set_api("127.0.0.1:5000", false);
        assert!(!cache.has_api("127.0.0.1:5000"));
        assert!(!Cache::in_dir(dir.path()).has_api("127.0.0.1:5000"));
        Ok(())
    }
}
