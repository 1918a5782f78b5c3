//! Applies image layers (tar streams) to a rootfs directory without ever
//! leaving it.
//!
//! Every path is resolved component by component from a directory file
//! descriptor of the rootfs (`openat` with `O_NOFOLLOW`), the way a chroot
//! would: `..` stops at the root, a symlink met on the way is read and its
//! target resolved inside the rootfs (absolute targets from the rootfs root).
//! Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` after removing what was
//! there, so a write never goes through a symlink. Hardlink targets are
//! resolved the same way and must be existing non-directories. Whiteouts
//! (`.wh.NAME`) and opaque whiteouts (`.wh..wh..opq`) remove lower-layer
//! content. Device nodes are skipped with a warning; setuid/setgid bits are
//! stripped; ownership and xattrs are not applied. Directory modes are applied
//! at the end ([`Unpacker::finish`]) so that read-only directories of one layer
//! do not stop the next layer.
//!
//! In: a decompressed tar stream per layer. Out: the rootfs, warnings, or an
//! [`UnpackError`] naming the entry.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

/// Most symlinks followed while resolving one path (Linux's limit).
const MAX_SYMLINKS: u32 = 40;

/// Why a layer could not be applied.
#[derive(Debug)]
pub(crate) enum UnpackError {
    /// An entry could not be applied.
    Entry { entry: String, reason: String },
    /// The decompressed layers exceed the bound.
    TooLarge,
    /// Reading the stream failed (decompression, download).
    Read(io::Error),
}

fn entry_err(entry: &[u8], reason: impl Into<String>) -> UnpackError {
    UnpackError::Entry { entry: String::from_utf8_lossy(entry).into_owned(), reason: reason.into() }
}

fn errno_msg(what: &str, e: Errno) -> String {
    format!("{what}: {}", io::Error::from(e))
}

/// Lexically cleans a tar path: drops empty, `.` and leading `/`, applies `..`
/// (never above the root). Returns the components.
pub(crate) fn clean(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn path_key(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// A rootfs being unpacked.
pub(crate) struct Unpacker {
    root: OwnedFd,
    /// Bytes of decompressed tar left before the bound is hit.
    budget: u64,
    /// Final modes of directories, applied by [`Unpacker::finish`].
    dir_modes: HashMap<Vec<u8>, u32>,
    /// Paths created by the layer being applied (opaque whiteouts keep them).
    layer_paths: HashSet<Vec<u8>>,
    /// The last resolved parent directory, reused while nothing is removed.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    pub(crate) warnings: Vec<String>,
    stripped_setid: u64,
    skipped_devices: u64,
    buf: Vec<u8>,
}

/// A reader that counts the bytes read against a shared budget.
pub(crate) struct Bounded<'a, R> {
    inner: R,
    budget: &'a mut u64,
    exceeded: bool,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > *self.budget {
            self.exceeded = true;
            return Err(io::Error::other("unpacked size bound exceeded"));
        }
        *self.budget -= n as u64;
        Ok(n)
    }
}

impl Unpacker {
    /// Starts unpacking into `rootfs`, an existing empty directory.
    pub(crate) fn new(rootfs: &Path, max_unpacked_size: u64) -> io::Result<Unpacker> {
        let root = rustix::fs::open(rootfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Unpacker {
            root,
            budget: max_unpacked_size,
            dir_modes: HashMap::new(),
            layer_paths: HashSet::new(),
            parent_cache: None,
            warnings: Vec::new(),
            stripped_setid: 0,
            skipped_devices: 0,
            buf: vec![0; 1 << 18],
        })
    }

    /// Applies one decompressed layer. Reads `tar` to its end, so that the
    /// caller's digest checks see every byte.
    pub(crate) fn apply_layer(&mut self, tar: &mut dyn Read) -> Result<(), UnpackError> {
        self.layer_paths.clear();
        self.parent_cache = None;
        let mut budget = self.budget;
        let result = {
            let mut bounded = Bounded { inner: tar, budget: &mut budget, exceeded: false };
            let r = self.apply_entries(&mut bounded);
            // Drain what follows the end-of-archive marker: padding, or junk.
            let r = r.and_then(|()| io::copy(&mut bounded, &mut io::sink()).map(|_| ()).map_err(UnpackError::Read));
            if bounded.exceeded {
                Err(UnpackError::TooLarge)
            } else {
                r
            }
        };
        self.budget = budget;
        result
    }

    fn apply_entries(&mut self, reader: &mut dyn Read) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(UnpackError::Read)?;
        for entry in entries {
            let mut entry = entry.map_err(UnpackError::Read)?;
            let path = entry.path_bytes().into_owned();
            self.apply_entry(&path, &mut entry)?;
        }
        Ok(())
    }

    fn apply_entry(&mut self, raw_path: &[u8], entry: &mut tar::Entry<'_, &mut dyn Read>) -> Result<(), UnpackError> {
        let comps = clean(raw_path);
        let Some((name, parent)) = comps.split_last() else {
            // The root itself ("./"): its mode is the rootfs directory's; keep ours.
            return Ok(());
        };
        let key = path_key(&comps);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        let mtime = entry.header().mtime().unwrap_or(0);

        // Whiteouts.
        if let Some(target) = name.strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                let dir = self.resolve_dir(parent, true).map_err(|r| entry_err(raw_path, r))?;
                self.opaque(&dir, parent).map_err(|r| entry_err(raw_path, r))?;
            } else if !target.starts_with(b".wh.") && !target.is_empty() && target != b"." && target != b".." {
                // A missing parent: nothing there to white out.
                if let Ok(dir) = self.resolve_dir(parent, false) {
                    self.remove(&dir, target).map_err(|r| entry_err(raw_path, r))?;
                }
            }
            return Ok(());
        }

        let dir = self.resolve_dir(parent, true).map_err(|r| entry_err(raw_path, r))?;
        let existing = rustix::fs::statat(&dir, os(name), AtFlags::SYMLINK_NOFOLLOW).ok();
        let existing_type = existing.as_ref().map(|st| FileType::from_raw_mode(st.st_mode));
        let setid = mode & 0o6000 != 0;

        match kind {
            tar::EntryType::Directory => {
                if existing_type != Some(FileType::Directory) {
                    if existing.is_some() {
                        self.remove(&dir, name).map_err(|r| entry_err(raw_path, r))?;
                    }
                    rustix::fs::mkdirat(&dir, os(name), Mode::from_bits_truncate(0o755))
                        .map_err(|e| entry_err(raw_path, errno_msg("mkdir", e)))?;
                }
                if setid {
                    self.stripped_setid += 1;
                }
                self.dir_modes.insert(key.clone(), mode & 0o1777);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if existing.is_some() {
                    self.remove(&dir, name).map_err(|r| entry_err(raw_path, r))?;
                }
                let fd = rustix::fs::openat(
                    &dir,
                    os(name),
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| entry_err(raw_path, errno_msg("create", e)))?;
                let mut file = File::from(fd);
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(UnpackError::Read(e)),
                    };
                    file.write_all(&self.buf[..n]).map_err(|e| entry_err(raw_path, format!("write: {e}")))?;
                }
                if setid {
                    self.stripped_setid += 1;
                }
                rustix::fs::fchmod(&file, Mode::from_bits_truncate(mode & 0o777))
                    .map_err(|e| entry_err(raw_path, errno_msg("chmod", e)))?;
                let _ = rustix::fs::futimens(&file, &times(mtime));
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(raw_path, "symlink without a target"))?
                    .into_owned();
                if existing.is_some() {
                    self.remove(&dir, name).map_err(|r| entry_err(raw_path, r))?;
                }
                rustix::fs::symlinkat(os(&target), &dir, os(name))
                    .map_err(|e| entry_err(raw_path, errno_msg("symlink", e)))?;
                let _ = rustix::fs::utimensat(&dir, os(name), &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(raw_path, "hardlink without a target"))?
                    .into_owned();
                let tcomps = clean(&target);
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(entry_err(raw_path, "hardlink to the root directory"));
                };
                if tcomps == comps {
                    return Ok(()); // a link to itself: nothing to do
                }
                let tdir = self.resolve_dir(tparent, false).map_err(|r| {
                    entry_err(raw_path, format!("hardlink target {:?}: {r}", String::from_utf8_lossy(&target)))
                })?;
                let tstat = rustix::fs::statat(&tdir, os(tname), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
                    entry_err(
                        raw_path,
                        errno_msg(&format!("hardlink target {:?} in the rootfs", String::from_utf8_lossy(&target)), e),
                    )
                })?;
                if FileType::from_raw_mode(tstat.st_mode) == FileType::Directory {
                    return Err(entry_err(raw_path, "hardlink to a directory"));
                }
                if existing.is_some() {
                    self.remove(&dir, name).map_err(|r| entry_err(raw_path, r))?;
                }
                rustix::fs::linkat(&tdir, os(tname), &dir, os(name), AtFlags::empty())
                    .map_err(|e| entry_err(raw_path, errno_msg("link", e)))?;
            }
            tar::EntryType::Fifo => {
                if existing.is_some() {
                    self.remove(&dir, name).map_err(|r| entry_err(raw_path, r))?;
                }
                rustix::fs::mknodat(&dir, os(name), FileType::Fifo, Mode::from_bits_truncate(mode & 0o777), 0)
                    .map_err(|e| entry_err(raw_path, errno_msg("mkfifo", e)))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                self.skipped_devices += 1;
                self.warnings.push(format!(
                    "skipped device node {} (device nodes are not unpacked)",
                    String::from_utf8_lossy(raw_path)
                ));
                return Ok(());
            }
            other => {
                self.warnings.push(format!(
                    "skipped tar entry {} of unsupported type {:?}",
                    String::from_utf8_lossy(raw_path),
                    other
                ));
                return Ok(());
            }
        }
        self.layer_paths.insert(key);
        Ok(())
    }

    /// Resolves the directory `comps` inside the root, creating missing
    /// directories when `create`. Symlinks are followed inside the root.
    fn resolve_dir(&mut self, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd, String> {
        let key = path_key(comps);
        if let Some((k, fd)) = &self.parent_cache {
            if *k == key {
                return fd.try_clone().map_err(|e| e.to_string());
            }
        }
        let fd = resolve(&self.root, comps, create)?;
        if create {
            for i in 0..comps.len() {
                // Directories created implicitly get 0755, as in other unpackers.
                self.dir_modes.entry(path_key(&comps[..=i])).or_insert(0o755);
            }
        }
        self.parent_cache = Some((key, fd.try_clone().map_err(|e| e.to_string())?));
        Ok(fd)
    }

    /// Removes `name` (recursively when a directory) from `dir`. Missing is fine.
    fn remove(&mut self, dir: &OwnedFd, name: &[u8]) -> Result<(), String> {
        self.parent_cache = None;
        remove_all_at(dir, name).map_err(|e| format!("remove {:?}: {e}", String::from_utf8_lossy(name)))
    }

    /// An opaque whiteout: removes every child of `dir` that this layer did not create.
    fn opaque(&mut self, dir: &OwnedFd, comps: &[Vec<u8>]) -> Result<(), String> {
        let names = list_dir(dir).map_err(|e| format!("list directory: {e}"))?;
        for name in names {
            let mut child = comps.to_vec();
            child.push(name.clone());
            if !self.layer_paths.contains(&path_key(&child)) {
                self.remove(dir, &name)?;
            }
        }
        Ok(())
    }

    /// Applies directory modes and returns the warnings.
    pub(crate) fn finish(mut self) -> Result<Vec<String>, String> {
        let mut dirs: Vec<(Vec<u8>, u32)> = self.dir_modes.drain().collect();
        // Deepest first, so a read-only parent does not stop its children's chmod.
        dirs.sort_by(|a, b| {
            let depth = |p: &[u8]| p.iter().filter(|&&c| c == b'/').count();
            depth(&b.0).cmp(&depth(&a.0)).then(a.0.cmp(&b.0))
        });
        for (path, mode) in dirs {
            let comps = clean(&path);
            let Some((name, parent)) = comps.split_last() else { continue };
            let Ok(pdir) = resolve(&self.root, parent, false) else { continue };
            let Ok(fd) = rustix::fs::openat(
                &pdir,
                os(name),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue; // whited out, or replaced by a non-directory
            };
            rustix::fs::fchmod(&fd, Mode::from_bits_truncate(mode))
                .map_err(|e| errno_msg(&format!("chmod {}", String::from_utf8_lossy(&path)), e))?;
        }
        if self.stripped_setid > 0 {
            self.warnings.push(format!("stripped setuid/setgid bits from {} entries", self.stripped_setid));
        }
        Ok(self.warnings)
    }
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec { tv_sec: i64::try_from(mtime).unwrap_or(0), tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

/// Opens directory `comps` below `root`, resolving symlinks inside `root`.
pub(crate) fn resolve(root: &OwnedFd, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd, String> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut queue: VecDeque<Vec<u8>> = comps.iter().cloned().collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let cur: &OwnedFd = stack.last().unwrap_or(root);
        match rustix::fs::statat(cur, os(&c), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {}
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err("too many levels of symbolic links".to_string());
                    }
                    let target = rustix::fs::readlinkat(cur, os(&c), Vec::new())
                        .map_err(|e| errno_msg("readlink", e))?
                        .into_bytes();
                    if target.first() == Some(&b'/') {
                        stack.clear();
                    }
                    for t in target.split(|&b| b == b'/').rev() {
                        queue.push_front(t.to_vec());
                    }
                    continue;
                }
                _ => {
                    return Err(format!("{:?} is not a directory", String::from_utf8_lossy(&c)));
                }
            },
            Err(Errno::NOENT) if create => {
                rustix::fs::mkdirat(cur, os(&c), Mode::from_bits_truncate(0o755)).map_err(|e| errno_msg("mkdir", e))?;
            }
            Err(e) => return Err(errno_msg(&format!("{:?}", String::from_utf8_lossy(&c)), e)),
        }
        let fd = rustix::fs::openat(
            cur,
            os(&c),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_msg(&format!("open {:?}", String::from_utf8_lossy(&c)), e))?;
        stack.push(fd);
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => root.try_clone().map_err(|e| e.to_string()),
    }
}

fn list_dir(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let fd = rustix::fs::openat(dir, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Removes `name` in `dir`, recursively, without following symlinks. Makes
/// directories writable first (a read-only directory of an image must still go).
pub(crate) fn remove_all_at(dir: &impl AsFd, name: &[u8]) -> io::Result<()> {
    let st = match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rustix::fs::openat(
            dir,
            os(name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if st.st_mode & 0o700 != 0o700 {
            rustix::fs::fchmod(&sub, Mode::from_bits_truncate(0o700))?;
        }
        for child in list_dir(&sub)? {
            remove_all_at(&sub, &child)?;
        }
        rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, os(name), AtFlags::empty())?;
    }
    Ok(())
}

/// Removes a directory tree that may hold read-only directories.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("cannot remove a root path"));
    };
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    let dir = rustix::fs::open(parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    remove_all_at(&dir, name.as_bytes())
}

/// Reads up to `limit` bytes of the file at `path`, resolved inside `rootfs`.
pub(crate) fn read_file_in_root(rootfs: &Path, path: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let root = rustix::fs::open(rootfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let mut comps = clean(path);
    let mut links = 0;
    loop {
        let Some((name, parent)) = comps.split_last() else {
            return Err(io::Error::other("not a file"));
        };
        let dir = resolve(&root, parent, false).map_err(io::Error::other)?;
        let st = rustix::fs::statat(&dir, os(name), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::other("too many symlinks"));
            }
            let target = rustix::fs::readlinkat(&dir, os(name), Vec::new())?.into_bytes();
            comps = if target.first() == Some(&b'/') {
                clean(&target)
            } else {
                let mut p = parent.to_vec();
                p.extend(target.split(|&b| b == b'/').map(<[u8]>::to_vec));
                clean(&path_key(&p))
            };
            continue;
        }
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::other("not a regular file"));
        }
        let fd =
            rustix::fs::openat(&dir, os(name), OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
        let mut out = Vec::new();
        File::from(fd).take(limit).read_to_end(&mut out)?;
        return Ok(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_clamps_at_root() {
        let j = |p: &[u8]| String::from_utf8_lossy(&path_key(&clean(p))).into_owned();
        assert_eq!(j(b"../../etc/passwd"), "etc/passwd");
        assert_eq!(j(b"/abs/./x//y"), "abs/x/y");
        assert_eq!(j(b"a/../../b"), "b");
        assert_eq!(j(b"./"), "");
    }
}
