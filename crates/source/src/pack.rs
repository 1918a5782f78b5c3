//! Streaming blobs out of Git pack files.
//!
//! Why this exists: libgit2 streams only loose objects. Its pack backend has
//! no read stream (libgit2 1.9, `odb_pack.c` has no `readstream`), so a packed
//! blob read through libgit2 is held whole in memory, and clones are always
//! packed. This module finds a blob in the repository's packs itself and,
//! when the pack stores it whole, inflates it in fixed-size chunks straight
//! into the destination: memory does not grow with the blob's size.
//!
//! - The packs: every `*.idx` (version 2) with its `.pack` in the object
//!   directory's `pack/`, and in the object directories that
//!   `objects/info/alternates` lists (one level, unquoted lines, as git writes
//!   them). Version 1 indexes, quoted or nested alternates are not read.
//! - Only entries of type blob are streamed. A deltified entry (`OFS_DELTA`,
//!   `REF_DELTA`) is not: the caller reads it whole through libgit2, so a
//!   deltified blob's size stays bounded by the caller's limit for whole
//!   reads. Git stores big files whole (above `core.bigFileThreshold`, 512 MiB
//!   by default, it never deltifies them), and most blobs are whole anyway.
//!
//! The repository is hostile input. An index or pack is opened only when it is
//! a regular file (never a FIFO or a device); its size, header, fan-out table,
//! object count, trailer and offsets are checked before use, the index is read
//! by position (a binary search, never loaded whole) and nothing is allocated by
//! a size it declares. An index or pack that does not check out is skipped:
//! the caller falls back to libgit2, nothing having been written. What is
//! streamed counts only once its length equals the declared size and
//! `blob <size>\0` and the content hash (SHA-1) to the object id: otherwise
//! the object is corrupt ([`PackError::Corrupt`]), never content.

use std::io::{Read as _, Seek as _, SeekFrom, Write};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// The packs considered at most (git repacks into one past 50 by default).
const MAX_PACKS: usize = 1024;
/// The alternate object directories considered at most.
const MAX_ALTERNATES: usize = 16;
/// The largest `objects/info/alternates` read.
const MAX_ALTERNATES_FILE: u64 = 64 << 10;
/// The chunk a blob is inflated and written in.
const CHUNK: usize = 64 << 10;
/// Object ids: SHA-1.
const ID_LEN: u64 = 20;
/// An index's magic, version and fan-out table.
const IDX_HEAD: u64 = 8 + 256 * 4;
/// An index's or pack's trailer checksum.
const TRAILER: u64 = 20;
/// A pack's header: `PACK`, version, object count.
const PACK_HEAD: u64 = 12;

/// The pack entry types (Documentation/gitformat-pack.txt).
const OBJ_BLOB: u8 = 3;
const OBJ_OFS_DELTA: u8 = 6;
const OBJ_REF_DELTA: u8 = 7;

/// What [`Packs::stream_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The blob was written, its size and id checked.
    Streamed,
    /// A pack stores it as a delta: nothing was written.
    Deltified,
    /// No pack that checks out stores it whole: nothing was written.
    NotFound,
}

/// Why a blob could not be streamed once writing began.
#[derive(Debug, thiserror::Error)]
pub(super) enum PackError {
    /// The pack's data for the object does not inflate to the object.
    #[error("object {id} is corrupt in pack {pack}: {reason}")]
    Corrupt {
        /// The object id.
        id: git2::Oid,
        /// The pack file's name.
        pack: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing the destination failed.
    #[error("writing: {0}")]
    Write(#[source] std::io::Error),
}

/// The repository's packs: `(index, pack)` paths.
#[derive(Debug, Default)]
pub(super) struct Packs {
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl Packs {
    /// The packs of `repo`'s object directory and its alternates. Unreadable
    /// directories are skipped (their blobs fall back to libgit2).
    pub(super) fn scan(repo: &git2::Repository) -> Packs {
        let objects = repo.commondir().join("objects");
        let mut dirs = vec![objects.clone()];
        dirs.extend(alternates(&objects));
        let mut pairs = Vec::new();
        for dir in &dirs {
            let pack_dir = dir.join("pack");
            let Ok(entries) = std::fs::read_dir(&pack_dir) else { continue };
            let mut names: Vec<PathBuf> = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "idx") && path.with_extension("pack").is_file() {
                    names.push(path);
                    if pairs.len() + names.len() >= MAX_PACKS {
                        break;
                    }
                }
            }
            names.sort();
            pairs.extend(names.into_iter().map(|idx| {
                let pack = idx.with_extension("pack");
                (idx, pack)
            }));
            if pairs.len() >= MAX_PACKS {
                break;
            }
        }
        Packs { pairs }
    }

    /// Writes blob `id` of `size` bytes (its size from the object header)
    /// into `out` when a pack stores it whole. [`Outcome::Deltified`] and
    /// [`Outcome::NotFound`] write nothing.
    pub(super) fn stream_blob(&self, id: git2::Oid, size: u64, out: &mut impl Write) -> Result<Outcome, PackError> {
        let mut deltified = false;
        for (idx_path, pack_path) in &self.pairs {
            let Some(idx) = Index::open(idx_path) else { continue };
            let Some(offset) = idx.find(id) else { continue };
            let Some(pack) = Pack::open(pack_path, &idx) else { continue };
            let Some(entry) = pack.entry(offset) else { continue };
            match entry.kind {
                OBJ_BLOB if entry.size == size => return pack.inflate(id, &entry, out).map(|()| Outcome::Streamed),
                OBJ_OFS_DELTA | OBJ_REF_DELTA => deltified = true,
                // Another object at that offset (a bogus index): not this blob.
                _ => {}
            }
        }
        Ok(if deltified { Outcome::Deltified } else { Outcome::NotFound })
    }
}

/// The object directories `objects/info/alternates` lists: one level,
/// relative lines from `objects`, comments and quoted lines skipped.
fn alternates(objects: &Path) -> Vec<PathBuf> {
    let file = objects.join("info/alternates");
    let Ok(f) = confined::open_regular_file(&file) else { return Vec::new() };
    let Ok(data) = confined::read_bounded(f, "objects/info/alternates", MAX_ALTERNATES_FILE) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&data)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('"') && !l.contains('\0'))
        .take(MAX_ALTERNATES)
        .map(|l| objects.join(l))
        .collect()
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn be64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// A version 2 pack index whose size and fan-out table check out.
struct Index {
    file: std::fs::File,
    fanout: [u32; 256],
    /// Objects in the pack.
    count: u64,
    /// Entries of the 8-byte offset table.
    large: u64,
    /// The pack's trailer checksum, as the index records it.
    pack_sum: [u8; 20],
}

impl Index {
    fn open(path: &Path) -> Option<Index> {
        let file = confined::open_regular_file(path).ok()?;
        let len = file.metadata().ok()?.len();
        let mut head = [0u8; IDX_HEAD as usize];
        file.read_exact_at(&mut head, 0).ok()?;
        if head[..4] != *b"\xfftOc" || be32(&head[4..])? != 2 {
            return None;
        }
        let mut fanout = [0u32; 256];
        let mut prev = 0;
        for (i, slot) in fanout.iter_mut().enumerate() {
            let n = be32(head.get(8 + i * 4..)?)?;
            if n < prev {
                return None;
            }
            *slot = n;
            prev = n;
        }
        let count = u64::from(prev);
        // Ids, CRCs and 4-byte offsets; then 8-byte offsets; then two checksums.
        let fixed = IDX_HEAD + count * (ID_LEN + 4 + 4) + 2 * TRAILER;
        let extra = len.checked_sub(fixed)?;
        if extra % 8 != 0 || extra / 8 > count {
            return None;
        }
        let mut pack_sum = [0u8; 20];
        file.read_exact_at(&mut pack_sum, len - 2 * TRAILER).ok()?;
        Some(Index { file, fanout, count, large: extra / 8, pack_sum })
    }

    /// The pack offset of `id`: a binary search within its fan-out bucket.
    fn find(&self, id: git2::Oid) -> Option<u64> {
        let want = id.as_bytes();
        let first = usize::from(*want.first()?);
        let mut lo = if first == 0 { 0 } else { u64::from(*self.fanout.get(first - 1)?) };
        let mut hi = u64::from(*self.fanout.get(first)?);
        let mut name = [0u8; ID_LEN as usize];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            self.file.read_exact_at(&mut name, IDX_HEAD + mid * ID_LEN).ok()?;
            match name.as_slice().cmp(want) {
                std::cmp::Ordering::Equal => return self.offset(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// The pack offset of entry `i` (below `count`).
    fn offset(&self, i: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        let small_table = IDX_HEAD + self.count * (ID_LEN + 4);
        self.file.read_exact_at(&mut b[..4], small_table + i * 4).ok()?;
        let small = be32(&b)?;
        if small & 0x8000_0000 == 0 {
            return Some(u64::from(small));
        }
        let j = u64::from(small & 0x7fff_ffff);
        if j >= self.large {
            return None;
        }
        self.file.read_exact_at(&mut b, small_table + self.count * 4 + j * 8).ok()?;
        be64(&b)
    }
}

/// A pack whose header, object count and trailer agree with its index.
struct Pack {
    file: std::fs::File,
    name: String,
    /// Where the trailer begins: no entry's data goes past it.
    end: u64,
}

/// An entry's header.
struct Entry {
    kind: u8,
    size: u64,
    /// Where its zlib data begins.
    data: u64,
}

impl Pack {
    fn open(path: &Path, idx: &Index) -> Option<Pack> {
        let file = confined::open_regular_file(path).ok()?;
        let len = file.metadata().ok()?.len();
        let end = len.checked_sub(TRAILER).filter(|&e| e >= PACK_HEAD)?;
        let mut head = [0u8; PACK_HEAD as usize];
        file.read_exact_at(&mut head, 0).ok()?;
        let version = be32(&head[4..])?;
        if head[..4] != *b"PACK" || !(version == 2 || version == 3) || u64::from(be32(&head[8..])?) != idx.count {
            return None;
        }
        let mut sum = [0u8; TRAILER as usize];
        file.read_exact_at(&mut sum, end).ok()?;
        if sum != idx.pack_sum {
            return None;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Some(Pack { file, name, end })
    }

    /// The entry header at `offset`: type (3 bits) and size (4 bits, then 7
    /// bits per continuation byte, little-endian), within the pack's data.
    fn entry(&self, offset: u64) -> Option<Entry> {
        if offset < PACK_HEAD || offset >= self.end {
            return None;
        }
        let mut b = [0u8; 16];
        let avail = usize::try_from((self.end - offset).min(b.len() as u64)).ok()?;
        let b = b.get_mut(..avail)?;
        self.file.read_exact_at(b, offset).ok()?;
        let mut bytes = b.iter();
        let mut c = *bytes.next()?;
        let kind = (c >> 4) & 7;
        let mut size = u64::from(c & 0x0f);
        let mut shift = 4u32;
        let mut used = 1u64;
        while c & 0x80 != 0 {
            // 7 more bits must fit in 64.
            if shift > 57 {
                return None;
            }
            c = *bytes.next()?;
            size |= u64::from(c & 0x7f) << shift;
            shift += 7;
            used += 1;
        }
        let data = offset + used;
        (data < self.end).then_some(Entry { kind, size, data })
    }

    /// Inflates `entry` (a blob) into `out` in [`CHUNK`]s, then checks its
    /// length and id.
    fn inflate(&self, id: git2::Oid, entry: &Entry, out: &mut impl Write) -> Result<(), PackError> {
        use sha1::Digest as _;
        let corrupt = |reason: String| PackError::Corrupt { id, pack: self.name.clone(), reason };
        let mut src = &self.file;
        src.seek(SeekFrom::Start(entry.data)).map_err(|e| corrupt(format!("seeking to its data: {e}")))?;
        let mut z = flate2::read::ZlibDecoder::new(src.take(self.end - entry.data));
        let mut sha1 = sha1::Sha1::new();
        sha1.update(format!("blob {}\0", entry.size).as_bytes());
        let mut buf = vec![0u8; CHUNK];
        let mut written: u64 = 0;
        loop {
            let n = z.read(&mut buf).map_err(|e| corrupt(format!("its data does not inflate: {e}")))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
            if n as u64 > entry.size - written {
                return Err(corrupt(format!("its data inflates to more than its {} bytes", entry.size)));
            }
            sha1.update(chunk);
            out.write_all(chunk).map_err(PackError::Write)?;
            written += n as u64;
        }
        if written != entry.size {
            return Err(corrupt(format!("its data inflates to {written} bytes, not its {}", entry.size)));
        }
        if sha1.finalize().as_slice() != id.as_bytes() {
            return Err(corrupt("its content does not hash to its id".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `git --git-dir DIR ARGS`, hermetic; its stdout.
    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap_or_else(|e| panic!("git: {e}"));
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `n` bytes of noise (xorshift), which deflate cannot shrink.
    pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// A bare repository in which each of `blobs` is file `big` of the commit
    /// `refs/heads/bI`, everything packed into one pack (`git repack -a -d -f`,
    /// similar blobs deltified).
    pub(crate) struct Fixture {
        pub(crate) _tmp: tempfile::TempDir,
        pub(crate) dir: PathBuf,
        pub(crate) blobs: Vec<git2::Oid>,
        pub(crate) commits: Vec<String>,
    }

    /// One line of `git verify-pack -v`: an object of the pack.
    #[derive(Debug)]
    pub(crate) struct Packed {
        pub(crate) id: git2::Oid,
        pub(crate) offset: u64,
        /// The entry's bytes in the pack (header and data).
        pub(crate) len: u64,
        pub(crate) delta: bool,
    }

    impl Fixture {
        pub(crate) fn new(blobs: &[&[u8]], mode: i32) -> Fixture {
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let dir = tmp.path().join("r.git");
            let r = git2::Repository::init_bare(&dir).unwrap_or_else(|e| panic!("{e}"));
            let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0))
                .unwrap_or_else(|e| panic!("{e}"));
            let (mut ids, mut commits) = (Vec::new(), Vec::new());
            for (i, data) in blobs.iter().enumerate() {
                let id = r.blob(data).unwrap_or_else(|e| panic!("{e}"));
                let mut tb = r.treebuilder(None).unwrap_or_else(|e| panic!("{e}"));
                tb.insert("big", id, mode).unwrap_or_else(|e| panic!("{e}"));
                let tree = tb.write().and_then(|t| r.find_tree(t)).unwrap_or_else(|e| panic!("{e}"));
                let commit = r
                    .commit(Some(&format!("refs/heads/b{i}")), &sig, &sig, "m", &tree, &[])
                    .unwrap_or_else(|e| panic!("{e}"));
                ids.push(id);
                commits.push(commit.to_string());
            }
            git(&dir, &["repack", "-a", "-d", "-q", "-f", "--window=10", "--depth=10"]);
            git(&dir, &["prune-packed"]);
            Fixture { _tmp: tmp, dir, blobs: ids, commits }
        }

        pub(crate) fn repo(&self) -> git2::Repository {
            git2::Repository::open_bare(&self.dir).unwrap_or_else(|e| panic!("{e}"))
        }

        /// The one pack's `.idx` path.
        pub(crate) fn idx(&self) -> PathBuf {
            let packs: Vec<PathBuf> = std::fs::read_dir(self.dir.join("objects/pack"))
                .unwrap_or_else(|e| panic!("{e}"))
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "idx"))
                .collect();
            assert_eq!(packs.len(), 1, "{packs:?}");
            packs.into_iter().next().unwrap_or_default()
        }

        /// The pack's objects, by offset.
        pub(crate) fn objects(&self) -> Vec<Packed> {
            let idx = self.idx();
            let out = git(&self.dir, &["verify-pack", "-v", &idx.display().to_string()]);
            let mut objects: Vec<Packed> = out
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let id = git2::Oid::from_str(f.first()?).ok()?;
                    let len = f.get(3)?.parse().ok()?;
                    let offset = f.get(4)?.parse().ok()?;
                    Some(Packed { id, offset, len, delta: f.len() > 5 })
                })
                .collect();
            objects.sort_by_key(|o| o.offset);
            objects
        }

        pub(crate) fn object(&self, id: git2::Oid) -> Packed {
            self.objects().into_iter().find(|o| o.id == id).unwrap_or_else(|| panic!("{id} is not in the pack"))
        }
    }

    /// Makes `path` writable and replaces its content.
    pub(crate) fn rewrite(path: &Path, data: &[u8]) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path, data).unwrap_or_else(|e| panic!("{e}"));
    }

    fn stream(fx: &Fixture, id: git2::Oid, size: u64) -> (Result<Outcome, PackError>, Vec<u8>) {
        let mut out = Vec::new();
        let r = Packs::scan(&fx.repo()).stream_blob(id, size, &mut out);
        (r, out)
    }

    /// Only the blob itself, or nothing: never other content, never a panic.
    fn assert_sound(case: &str, got: &(Result<Outcome, PackError>, Vec<u8>), data: &[u8]) {
        match got {
            (Ok(Outcome::Streamed), out) => assert!(out == data, "{case}: streamed other content"),
            (Ok(_), out) => assert!(out.is_empty(), "{case}: wrote without streaming"),
            (Err(PackError::Corrupt { .. }), _) => {}
            (Err(e), _) => panic!("{case}: {e}"),
        }
    }

    #[test]
    fn a_whole_blob_streams_and_a_delta_does_not() {
        let a = noise(100_000, 7);
        let mut b = a.clone();
        b[50_000..50_100].fill(0);
        b.extend_from_slice(&noise(1000, 8));
        let fx = Fixture::new(&[&a, &b], 0o100644);
        let (deltas, wholes): (Vec<Packed>, Vec<Packed>) =
            fx.objects().into_iter().filter(|o| fx.blobs.contains(&o.id)).partition(|o| o.delta);
        assert_eq!((deltas.len(), wholes.len()), (1, 1), "one blob is a delta of the other");
        for (id, data) in fx.blobs.iter().zip([&a, &b]) {
            let got = stream(&fx, *id, data.len() as u64);
            if deltas[0].id == *id {
                assert!(matches!(got, (Ok(Outcome::Deltified), ref out) if out.is_empty()), "{:?}", got.0);
            } else {
                assert!(matches!(got, (Ok(Outcome::Streamed), ref out) if out == data), "{:?}", got.0);
            }
        }
        // Not in any pack, or another size than the header's: not streamed.
        assert!(matches!(stream(&fx, git2::Oid::zero(), 1), (Ok(Outcome::NotFound), _)));
        assert!(matches!(stream(&fx, wholes[0].id, 5), (Ok(Outcome::NotFound), _)));
    }

    #[test]
    fn truncated_or_bogus_indexes_are_not_used() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let fx = Fixture::new(&[&data], 0o100644);
        let (id, size) = (fx.blobs[0], data.len() as u64);
        let idx_path = fx.idx();
        let idx = std::fs::read(&idx_path).unwrap_or_default();
        let pack_len = std::fs::metadata(idx_path.with_extension("pack")).map(|m| m.len()).unwrap_or_default();
        let objects = fx.objects();
        let real = fx.object(id).offset;
        assert!(matches!(stream(&fx, id, size), (Ok(Outcome::Streamed), ref out) if *out == data));
        // Every truncation: the sizes no longer add up.
        for len in 0..idx.len() {
            rewrite(&idx_path, &idx[..len]);
            let got = stream(&fx, id, size);
            assert!(matches!(got, (Ok(Outcome::NotFound), ref out) if out.is_empty()), "cut at {len}: {:?}", got.0);
        }
        // Every byte flipped: whatever is found, only the blob is streamed.
        for i in 0..idx.len() {
            let mut bad = idx.clone();
            bad[i] ^= 0xff;
            rewrite(&idx_path, &bad);
            assert_sound(&format!("idx byte {i} flipped"), &stream(&fx, id, size), &data);
        }
        // Bogus offsets for the blob: nothing else is streamed.
        let count = objects.len();
        let mut sorted: Vec<git2::Oid> = objects.iter().map(|o| o.id).collect();
        sorted.sort();
        let slot = 8 + 1024 + count * 24 + sorted.iter().position(|o| *o == id).unwrap_or_default() * 4;
        let other = objects.iter().filter(|o| o.id != id).map(|o| o.offset as u32);
        let bogus = [0, 4, 11, 12, pack_len as u32 - 20, pack_len as u32 - 1, pack_len as u32, u32::MAX, 0x8000_0000];
        for offset in bogus.into_iter().chain(other) {
            let mut bad = idx.clone();
            bad[slot..slot + 4].copy_from_slice(&offset.to_be_bytes());
            rewrite(&idx_path, &bad);
            let got = stream(&fx, id, size);
            assert!(!matches!(got.0, Ok(Outcome::Streamed)), "offset {offset:#x}");
            assert_sound(&format!("offset {offset:#x}"), &got, &data);
        }
        // An 8-byte offset: the right one is followed, wrong ones are not.
        for (large, ok) in [(real, true), (pack_len, false), (u64::MAX, false), (real + 1, false)] {
            let mut bad = idx.clone();
            bad[slot..slot + 4].copy_from_slice(&0x8000_0000u32.to_be_bytes());
            let at = bad.len() - 40;
            bad.splice(at..at, large.to_be_bytes());
            rewrite(&idx_path, &bad);
            let got = stream(&fx, id, size);
            assert_eq!(matches!(got.0, Ok(Outcome::Streamed)), ok, "large offset {large:#x}: {:?}", got.0);
            assert_sound(&format!("large offset {large:#x}"), &got, &data);
        }
        // A fan-out table that decreases.
        let mut bad = idx.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        rewrite(&idx_path, &bad);
        assert!(matches!(stream(&fx, id, size), (Ok(Outcome::NotFound), _)));
        // An index that is not a regular file is not opened (a FIFO would block).
        std::fs::remove_file(&idx_path).unwrap_or_else(|e| panic!("{e}"));
        rustix::fs::mknodat(rustix::fs::CWD, &idx_path, rustix::fs::FileType::Fifo, 0o600.into(), 0)
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        assert!(matches!(stream(&fx, id, size), (Ok(Outcome::NotFound), _)));
    }

    #[test]
    fn corrupt_packs_are_errors_never_content() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let fx = Fixture::new(&[&data], 0o100644);
        let (id, size) = (fx.blobs[0], data.len() as u64);
        let pack_path = fx.idx().with_extension("pack");
        let pack = std::fs::read(&pack_path).unwrap_or_default();
        let entry = fx.object(id);
        let (start, end) = (entry.offset as usize, (entry.offset + entry.len) as usize);
        // The header (3 bytes for 200 000) is checked against the index and
        // the object's size; the zlib data after it must inflate to the blob.
        let header = 3;
        let mut errors = 0;
        for i in start..end {
            let mut bad = pack.clone();
            bad[i] ^= 0xff;
            rewrite(&pack_path, &bad);
            let got = stream(&fx, id, size);
            assert_sound(&format!("pack byte {} of the entry flipped", i - start), &got, &data);
            if i >= start + header {
                assert!(matches!(got.0, Err(PackError::Corrupt { .. })), "data byte {}: {:?}", i - start, got.0);
                errors += 1;
            }
        }
        assert!(errors > 100, "{errors}");
        // An entry header that never ends; the pack's header, count and trailer.
        for (at, bytes) in [(start, &[0xffu8; 16][..]), (0, b"KCAP"), (8, &[0, 0, 0, 9]), (pack.len() - 1, &[0])] {
            let mut bad = pack.clone();
            bad[at..at + bytes.len()].copy_from_slice(bytes);
            rewrite(&pack_path, &bad);
            let got = stream(&fx, id, size);
            assert!(matches!(got, (Ok(Outcome::NotFound), ref out) if out.is_empty()), "at {at}: {:?}", got.0);
        }
        // Cut inside the entry's data: the trailer no longer matches either.
        rewrite(&pack_path, &pack[..end - 10]);
        assert!(matches!(stream(&fx, id, size), (Ok(Outcome::NotFound), _)));
    }
}
