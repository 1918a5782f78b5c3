//! h1 hashes, exactly as `golang.org/x/mod/sumdb/dirhash.Hash1`.
//!
//! The hash of a file tree: sort the file names bytewise; for each, the line
//! `"<hex sha256 of content>  <name>\n"`; SHA-256 over all the lines;
//! `"h1:"` + standard base64. For a module zip the names are the entry names
//! as stored (`module@version/…`); for a directory they are the relative paths
//! under a prefix; for go.sum's `/go.mod` lines, one file named `go.mod`.
//!
//! Where this refuses what dirhash accepts, it says so: a zip with two entries
//! of the same name (dirhash would hash the last one twice), entry names that
//! are absolute or climb out with `..` (no real module zip has them: Go's
//! `x/mod/zip` refuses to create them), a zip whose content exceeds
//! [`MAX_ZIP_UNCOMPRESSED`] (Go's module zip limit), and special files (FIFOs,
//! devices) in a directory, which Go would block on. Every other input gets
//! dirhash's hash or dirhash's error.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::zip::{ZipError, ZipReader};

/// The largest total uncompressed size of a module zip Go accepts (`x/mod/zip.MaxZipFile`).
pub const MAX_ZIP_UNCOMPRESSED: u64 = 500 << 20;

/// An `h1:` hash: `"h1:"` followed by the base64 of a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct H1Hash(String);

/// A string that is not a well-formed `h1:` hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed h1 hash {0:?}: want \"h1:\" and the base64 of 32 bytes")]
pub struct InvalidHash(pub String);

impl H1Hash {
    /// Validates `s` as `h1:` + base64 of exactly 32 bytes.
    pub fn parse(s: &str) -> Result<H1Hash, InvalidHash> {
        let ok = s
            .strip_prefix("h1:")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|d| d.len() == 32);
        if ok {
            Ok(H1Hash(s.to_string()))
        } else {
            Err(InvalidHash(s.to_string()))
        }
    }

    fn from_digest(d: &[u8]) -> H1Hash {
        H1Hash(format!("h1:{}", base64::engine::general_purpose::STANDARD.encode(d)))
    }

    /// The hash as go.sum writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for H1Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// A file system operation failed, printed as Go prints an `*fs.PathError`.
    #[error("{op} {}: {}", path.display(), errno_text(cause))]
    Io {
        /// `open`, `lstat`, `read`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// The zip as a whole is unreadable.
    #[error("{}: {cause}", path.display())]
    Zip {
        /// The zip file.
        path: PathBuf,
        /// Go's reason.
        cause: ZipError,
    },
    /// One entry of the zip is unreadable.
    #[error("{}: entry {entry:?}: {cause}", path.display())]
    ZipEntry {
        /// The zip file.
        path: PathBuf,
        /// The entry name.
        entry: String,
        /// Go's reason.
        cause: ZipError,
    },
    /// A file name with a newline, which the h1 summary cannot represent (dirhash's own error).
    #[error("{}: dirhash: filenames with newlines are not supported ({name:?})", path.display())]
    Newline {
        /// The zip or directory.
        path: PathBuf,
        /// The offending name.
        name: String,
    },
    /// Two zip entries with the same name.
    #[error("{}: duplicate zip entry {name:?}", path.display())]
    DuplicateEntry {
        /// The zip file.
        path: PathBuf,
        /// The repeated name.
        name: String,
    },
    /// An entry name that is empty, absolute, contains `\` or NUL, or climbs with `..`.
    #[error("{}: unsafe zip entry name {name:?}", path.display())]
    UnsafeName {
        /// The zip file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// An entry outside `module@version/` (the go command's own download check).
    #[error("zip for {prefix} has unexpected file {name}")]
    UnexpectedFile {
        /// `module@version`.
        prefix: String,
        /// The entry name.
        name: String,
    },
    /// `HashDir` on something that is not a directory (dirhash's own words).
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A FIFO, socket or device inside a module directory.
    #[error("{}: not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
}

/// Go's text for an OS error: `no such file or directory`, not Rust's
/// `No such file or directory (os error 2)`.
pub fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => s[..i].to_string(),
        _ => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) if e.raw_os_error().is_some() => f.to_lowercase().chain(c).collect(),
        _ => s,
    }
}

/// Hash1 over names and the SHA-256 of their contents.
fn summarize(mut files: Vec<(Vec<u8>, [u8; 32])>) -> H1Hash {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, digest) in &files {
        h.update(hex::encode(digest).as_bytes());
        h.update(b"  ");
        h.update(name);
        h.update(b"\n");
    }
    H1Hash::from_digest(&h.finalize())
}

/// Hash1 of in-memory files (`dirhash.Hash1` with an opener over byte slices).
pub fn hash_files(files: &[(&str, &[u8])]) -> Result<H1Hash, HashError> {
    let mut out = Vec::with_capacity(files.len());
    for (name, data) in files {
        if name.contains('\n') {
            return Err(HashError::Newline { path: PathBuf::new(), name: name.to_string() });
        }
        out.push((name.as_bytes().to_vec(), Sha256::digest(data).into()));
    }
    Ok(summarize(out))
}

/// The go.sum hash of a go.mod file's content (the `/go.mod` lines).
pub fn hash_go_mod(data: &[u8]) -> H1Hash {
    summarize(vec![(b"go.mod".to_vec(), Sha256::digest(data).into())])
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_unsafe_name(name: &[u8]) -> bool {
    name.is_empty()
        || name.starts_with(b"/")
        || name.contains(&b'\\')
        || name.contains(&0)
        || name.split(|&b| b == b'/').any(|e| e == b"..")
}

/// The h1 hash of a module zip (`dirhash.HashZip`), streaming every entry.
/// With `prefix` (`module@version`), every entry must lie under `prefix/`,
/// as the go command requires of a downloaded zip.
pub fn hash_zip(path: &Path, prefix: Option<&str>) -> Result<H1Hash, HashError> {
    let file = File::open(path).map_err(|cause| HashError::Io { op: "open", path: path.into(), cause })?;
    let zip = ZipReader::open(file, &path.display().to_string())
        .map_err(|cause| HashError::Zip { path: path.into(), cause })?;
    let mut order: Vec<usize> = (0..zip.entries.len()).collect();
    order.sort_by(|&a, &b| zip.entries[a].name.cmp(&zip.entries[b].name));
    for w in order.windows(2) {
        if zip.entries[w[0]].name == zip.entries[w[1]].name {
            return Err(HashError::DuplicateEntry { path: path.into(), name: lossy(&zip.entries[w[0]].name) });
        }
    }
    for &i in &order {
        let name = &zip.entries[i].name;
        if name.contains(&b'\n') {
            return Err(HashError::Newline { path: path.into(), name: lossy(name) });
        }
        if is_unsafe_name(name) {
            return Err(HashError::UnsafeName { path: path.into(), name: lossy(name) });
        }
        if let Some(p) = prefix {
            let ok = name.strip_prefix(p.as_bytes()).is_some_and(|rest| rest.starts_with(b"/"));
            if !ok {
                return Err(HashError::UnexpectedFile { prefix: p.to_string(), name: lossy(name) });
            }
        }
    }
    let mut budget = MAX_ZIP_UNCOMPRESSED;
    let mut files = Vec::with_capacity(order.len());
    for &i in &order {
        let e = &zip.entries[i];
        let mut h = Sha256::new();
        zip.read_entry(e, &mut budget, MAX_ZIP_UNCOMPRESSED, &mut |chunk| h.update(chunk))
            .map_err(|cause| HashError::ZipEntry { path: path.into(), entry: lossy(&e.name), cause })?;
        files.push((e.name.clone(), h.finalize().into()));
    }
    Ok(summarize(files))
}

/// Go's `path.Clean` for slash-separated paths.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for elem in p.split('/') {
        match elem {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            e => out.push(e),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Join(prefix, rel)`.
fn join_name(prefix: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(prefix.len() + rel.len() + 1);
    if !prefix.is_empty() {
        s.extend_from_slice(prefix);
        s.push(b'/');
    }
    s.extend_from_slice(rel);
    // Names that are not UTF-8 are kept as bytes; cleaning only looks at '/' and '.'.
    clean_bytes(&s)
}

fn clean_bytes(p: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(p) {
        Ok(s) => clean_path(s).into_bytes(),
        Err(_) => {
            let rooted = p.starts_with(b"/");
            let mut out: Vec<&[u8]> = Vec::new();
            for elem in p.split(|&b| b == b'/') {
                match elem {
                    b"" | b"." => {}
                    b".." => {
                        if out.last().is_some_and(|l| *l != b"..") {
                            out.pop();
                        } else if !rooted {
                            out.push(b"..");
                        }
                    }
                    e => out.push(e),
                }
            }
            let mut r = if rooted { b"/".to_vec() } else { Vec::new() };
            r.extend_from_slice(&out.join(&b'/'));
            r
        }
    }
}

/// The files of a directory tree as `dirhash.DirFiles` lists them: every
/// non-directory under `dir` (symlinks included, not followed), named
/// `prefix/relative/path`, with the path `HashDir` opens: Go's
/// `filepath.Join(dir, strings.TrimPrefix(name, prefix))`, which differs from
/// the file's own path only for prefixes that `filepath.Join` cleans.
pub fn dir_files(dir: &Path, prefix: &str) -> Result<Vec<(Vec<u8>, PathBuf)>, HashError> {
    let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&clean_bytes(dir.as_os_str().as_bytes())));
    let meta = fs::symlink_metadata(&dir).map_err(|cause| HashError::Io { op: "lstat", path: dir.clone(), cause })?;
    if !meta.is_dir() {
        return Err(HashError::NotADirectory { path: dir });
    }
    let mut files = Vec::new();
    let mut stack = vec![(dir.clone(), Vec::<u8>::new())];
    while let Some((d, rel)) = stack.pop() {
        let rd = fs::read_dir(&d).map_err(|cause| HashError::Io { op: "open", path: d.clone(), cause })?;
        for entry in rd {
            let entry = entry.map_err(|cause| HashError::Io { op: "readdirent", path: d.clone(), cause })?;
            let full = entry.path();
            // The type from the directory entry is lstat's, without another system call.
            let ft = entry.file_type().map_err(|cause| HashError::Io { op: "lstat", path: full.clone(), cause })?;
            let mut r = rel.clone();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(entry.file_name().as_bytes());
            if ft.is_dir() {
                stack.push((full, r));
            } else {
                let name = join_name(prefix.as_bytes(), &r);
                let rest = name.strip_prefix(prefix.as_bytes()).unwrap_or(&name);
                let mut open = dir.as_os_str().as_bytes().to_vec();
                open.push(b'/');
                open.extend_from_slice(rest);
                let open = PathBuf::from(std::ffi::OsStr::from_bytes(&clean_bytes(&open)));
                files.push((name, open));
            }
        }
    }
    Ok(files)
}

thread_local! {
    /// One read buffer per thread: module trees are thousands of small files.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 * 1024]);
}

fn hash_file(path: &Path) -> Result<[u8; 32], HashError> {
    let io_err = |op, cause| HashError::Io { op, path: path.into(), cause };
    let mut f = File::open(path).map_err(|e| io_err("open", e))?;
    let meta = f.metadata().map_err(|e| io_err("read", e))?;
    if meta.is_dir() {
        return Err(io_err("read", io::Error::from_raw_os_error(21)));
    }
    if !meta.is_file() {
        return Err(HashError::NotRegular { path: path.into() });
    }
    let mut h = Sha256::new();
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            match f.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("read", e)),
            }
        }
    })?;
    Ok(h.finalize().into())
}

/// The h1 hash of a directory tree under `prefix` (`dirhash.HashDir`):
/// `go mod verify` hashes an extracted module as `hash_dir(dir, "module@version")`.
pub fn hash_dir(dir: &Path, prefix: &str) -> Result<H1Hash, HashError> {
    let files = dir_files(dir, prefix)?;
    if let Some((name, _)) = files.iter().filter(|(n, _)| n.contains(&b'\n')).min_by(|a, b| a.0.cmp(&b.0)) {
        return Err(HashError::Newline { path: dir.into(), name: lossy(name) });
    }
    let mut files = files;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let hashed: Vec<Result<[u8; 32], HashError>> = files.par_iter().map(|(_, path)| hash_file(path)).collect();
    // Go opens the files in name order and stops at the first error: report that one.
    let mut out = Vec::with_capacity(files.len());
    for ((name, _), h) in files.into_iter().zip(hashed) {
        out.push((name, h?));
    }
    Ok(summarize(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mod_hash_of_empty_file_is_gos_constant() {
        assert_eq!(hash_go_mod(b"").as_str(), super::super::gosum::EMPTY_GO_MOD_HASH);
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("a@v1/./b//c/../d"), "a@v1/b/d");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path(""), ".");
    }

    #[test]
    fn parse_h1() {
        assert!(H1Hash::parse("h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=").is_ok());
        assert!(H1Hash::parse("h1:G7mA").is_err());
        assert!(H1Hash::parse("h2:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=").is_err());
    }
}
