//! Reading files that a hostile party controls, without leaving the directory
//! they were put in.
//!
//! What it is: [`ConfinedDir`], a directory opened once (its own path without
//! following a final symlink), from which files are opened relative to its
//! descriptor:
//!
//! - [`ConfinedDir::read`] resolves a relative path *beneath* the directory
//!   (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`): a symlink is
//!   followed only while it stays inside; an absolute symlink, a `..` above the
//!   root or a `/proc` magic link is refused. On a kernel without `openat2`
//!   every component is opened with `O_NOFOLLOW`, so no symlink is followed at
//!   all. The path is first opened with `O_PATH`, which opens nothing: a
//!   device, FIFO or socket is refused by its type before it is ever opened
//!   for reading. A regular file is then read up to a size limit.
//! - [`ConfinedDir::open_single`] opens one name in the directory itself with
//!   `O_NOFOLLOW`, and accepts only a regular file with one link and at most a
//!   given size: the output of a sandboxed build, which the build could have
//!   replaced by a symlink or a hard link.
//!
//! What it is not: it does not make a directory safe to *write*; the export
//! (`source::export`) does that by creating every file with `O_EXCL` in
//! directories it made.
#![deny(missing_docs)]

use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// Why a confined read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfinedError {
    /// Nothing at that path.
    #[error("{}: no such file", escape(path))]
    NotFound {
        /// The path, relative to the directory.
        path: String,
    },
    /// The path leaves the directory: an absolute symlink, `..` above the
    /// root, or (on kernels without `openat2`) any symlink.
    #[error("{}: leaves {} through a symlink or '..'; only files inside it are read", escape(path), root.display())]
    Escapes {
        /// The path, relative to the directory.
        path: String,
        /// The directory.
        root: PathBuf,
    },
    /// Not a regular file: a directory, device, FIFO, socket or symlink.
    #[error("{}: is a {kind}, not a regular file; it was not opened", escape(path))]
    NotRegular {
        /// The path, relative to the directory.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A regular file with more than one link (a hard link to somewhere else).
    #[error("{}: has {links} hard links; a file that is also elsewhere is not accepted", escape(path))]
    Linked {
        /// The path, relative to the directory.
        path: String,
        /// How many links it has.
        links: u64,
    },
    /// Larger than the limit for its kind.
    #[error("{}: {size} bytes, more than the {limit} bytes accepted", escape(path))]
    TooLarge {
        /// The path, relative to the directory.
        path: String,
        /// Its size (at least; it may grow while read).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The path itself is not a relative path of normal components.
    #[error("\"{}\": not a relative path inside the directory", excerpt(path))]
    BadPath {
        /// The path as given.
        path: String,
    },
    /// Any other failure.
    #[error("{action} {}: {source}", escape(path))]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl ConfinedError {
    /// Whether the file simply does not exist (an optional file may be missing).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConfinedError::NotFound { .. })
    }

    /// Whether the input itself is at fault (a link out, a device, too large…),
    /// rather than the machine.
    pub fn is_input(&self) -> bool {
        !matches!(self, ConfinedError::Io { .. })
    }
}

/// A directory files are read from without leaving it.
#[derive(Debug)]
pub struct ConfinedDir {
    fd: OwnedFd,
    root: PathBuf,
}

/// The name of a file type, for messages.
pub fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "special file",
    }
}

impl ConfinedDir {
    /// Opens `root`, which must be a directory and not a symlink.
    pub fn open(root: &Path) -> Result<ConfinedDir, ConfinedError> {
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )
        .map_err(|e| {
            let path = root.display().to_string();
            if e == rustix::io::Errno::NOENT {
                ConfinedError::NotFound { path }
            } else if e == rustix::io::Errno::NOTDIR || e == rustix::io::Errno::LOOP {
                ConfinedError::NotRegular { path, kind: "symlink or non-directory" }
            } else {
                ConfinedError::Io { action: "opening the directory", path, source: io::Error::from(e) }
            }
        })?;
        Ok(ConfinedDir { fd, root: root.to_path_buf() })
    }

    /// Opens `root`, following symlinks in its own path: the caller chose the
    /// directory (`reprove recipe -C DIR`, the exported tree); only what is
    /// read *beneath* it is confined.
    pub fn open_followed(root: &Path) -> Result<ConfinedDir, ConfinedError> {
        let fd = rustix::fs::open(root, OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY, Mode::empty()).map_err(
            |e| {
                let path = root.display().to_string();
                if e == rustix::io::Errno::NOENT {
                    ConfinedError::NotFound { path }
                } else if e == rustix::io::Errno::NOTDIR {
                    ConfinedError::NotRegular { path, kind: "non-directory" }
                } else {
                    ConfinedError::Io { action: "opening the directory", path, source: io::Error::from(e) }
                }
            },
        )?;
        Ok(ConfinedDir { fd, root: root.to_path_buf() })
    }

    /// The directory's path, as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `rel` names a regular file beneath the directory (symlinks
    /// followed only inside); anything else, or an error, is `false`.
    pub fn is_file(&self, rel: &str) -> bool {
        self.open_path(rel)
            .ok()
            .and_then(|fd| rustix::fs::fstat(&fd).ok())
            .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
    }

    /// Whether a regular file is at `rel` (symlinks followed only inside):
    /// `Ok(false)` when nothing or a directory is there; an error when
    /// something is there that is not read (a link out, a device, a FIFO, a
    /// socket), so that a caller never takes a refused file for a missing one.
    pub fn has_file(&self, rel: &str) -> Result<bool, ConfinedError> {
        let fd = match self.open_path(rel) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err("inspecting", rel, e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Ok(true),
            // As go's `fsys.Stat(f); !fi.IsDir()`: a directory is no file, and harmless.
            FileType::Directory => Ok(false),
            kind => Err(ConfinedError::NotRegular { path: rel.to_string(), kind: file_type_name(kind) }),
        }
    }

    /// Reads the regular file at `rel` (relative; symlinks followed only while
    /// they stay beneath the directory), at most `limit` bytes.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>, ConfinedError> {
        let file = self.open_regular(rel)?;
        read_bounded(file, rel, limit)
    }

    /// Like [`ConfinedDir::read`], `None` when the file does not exist.
    pub fn read_optional(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, ConfinedError> {
        match self.read(rel, limit) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the regular file at `rel` for reading (see [`ConfinedDir::read`]).
    pub fn open_regular(&self, rel: &str) -> Result<File, ConfinedError> {
        let path_fd = self.open_path(rel)?;
        let st = rustix::fs::fstat(&path_fd).map_err(|e| io_err("inspecting", rel, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(ConfinedError::NotRegular { path: rel.to_string(), kind: file_type_name(kind) });
        }
        // Reopen for reading the same way; the O_PATH descriptor opened nothing.
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)?;
        let st2 = rustix::fs::fstat(&fd).map_err(|e| io_err("inspecting", rel, e))?;
        if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino {
            return Err(ConfinedError::NotRegular { path: rel.to_string(), kind: "file replaced while opened" });
        }
        Ok(File::from(fd))
    }

    /// Opens `name`, a single file name in the directory itself, without
    /// following a symlink; it must be a regular file with one link and at most
    /// `limit` bytes.
    pub fn open_single(&self, name: &str, limit: u64) -> Result<File, ConfinedError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
            return Err(ConfinedError::BadPath { path: name.to_string() });
        }
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) if e == rustix::io::Errno::NOENT => return Err(ConfinedError::NotFound { path: name.to_string() }),
            Err(e) if e == rustix::io::Errno::LOOP => {
                return Err(ConfinedError::NotRegular { path: name.to_string(), kind: "symlink" })
            }
            Err(e) => return Err(io_err("opening", name, e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err("inspecting", name, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(ConfinedError::NotRegular { path: name.to_string(), kind: file_type_name(kind) });
        }
        #[allow(clippy::useless_conversion)] // st_nlink is u32 on some targets
        let links = u64::from(st.st_nlink);
        if links != 1 {
            return Err(ConfinedError::Linked { path: name.to_string(), links });
        }
        let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(ConfinedError::TooLarge { path: name.to_string(), size, limit });
        }
        Ok(File::from(fd))
    }

    fn open_path(&self, rel: &str) -> Result<OwnedFd, ConfinedError> {
        self.resolve(rel, OFlags::PATH)
    }

    /// Opens `rel` beneath the directory with `flags` (plus `O_CLOEXEC`).
    fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, ConfinedError> {
        let clean = clean_relative(rel)?;
        let flags = flags | OFlags::CLOEXEC;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&self.fd, &clean, flags, Mode::empty(), resolve) {
            Ok(fd) => Ok(fd),
            Err(e) if e == rustix::io::Errno::NOSYS => self.resolve_nofollow(rel, &clean, flags),
            Err(e) => Err(self.map_open_error(rel, e)),
        }
    }

    /// Without `openat2`: component by component, no symlink followed.
    fn resolve_nofollow(&self, rel: &str, clean: &Path, flags: OFlags) -> Result<OwnedFd, ConfinedError> {
        let parts: Vec<_> = clean.components().collect();
        let mut dir: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let at = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
            let last = i + 1 == parts.len();
            let f = if last {
                flags | OFlags::NOFOLLOW
            } else {
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
            };
            let fd =
                rustix::fs::openat(at, part.as_os_str(), f, Mode::empty()).map_err(|e| self.map_open_error(rel, e))?;
            if !last {
                dir = Some(fd);
            } else {
                return Ok(fd);
            }
        }
        Err(ConfinedError::BadPath { path: rel.to_string() })
    }

    fn map_open_error(&self, rel: &str, e: rustix::io::Errno) -> ConfinedError {
        use rustix::io::Errno;
        let path = rel.to_string();
        if e == Errno::NOENT {
            ConfinedError::NotFound { path }
        } else if e == Errno::XDEV || e == Errno::LOOP {
            ConfinedError::Escapes { path, root: self.root.clone() }
        } else if e == Errno::NOTDIR {
            ConfinedError::NotFound { path }
        } else {
            io_err("opening", rel, e)
        }
    }
}

fn io_err(action: &'static str, path: &str, e: rustix::io::Errno) -> ConfinedError {
    ConfinedError::Io { action, path: path.to_string(), source: io::Error::from(e) }
}

/// `rel` as a relative path of normal components (`.` dropped); anything
/// absolute or with `..` is refused before the kernel sees it.
fn clean_relative(rel: &str) -> Result<PathBuf, ConfinedError> {
    let bad = || ConfinedError::BadPath { path: rel.to_string() };
    if rel.contains('\0') {
        return Err(bad());
    }
    let mut out = PathBuf::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(bad()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Opens `path`, a file the user named (symlinks followed, as for any path a
/// user gives), for reading only if it is a regular file: a device, FIFO or
/// socket is refused by its type before it is opened, so `/dev/zero` cannot fill
/// memory and a FIFO cannot block.
pub fn open_regular_file(path: &Path) -> Result<File, ConfinedError> {
    let shown = path.display().to_string();
    let kind_of = |st: &rustix::fs::Stat| FileType::from_raw_mode(st.st_mode);
    let st = rustix::fs::stat(path).map_err(|e| {
        if e == rustix::io::Errno::NOENT {
            ConfinedError::NotFound { path: shown.clone() }
        } else {
            io_err("inspecting", &shown, e)
        }
    })?;
    if kind_of(&st) != FileType::RegularFile {
        return Err(ConfinedError::NotRegular { path: shown, kind: file_type_name(kind_of(&st)) });
    }
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| io_err("opening", &shown, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err("inspecting", &shown, e))?;
    if kind_of(&st) != FileType::RegularFile {
        return Err(ConfinedError::NotRegular { path: shown, kind: file_type_name(kind_of(&st)) });
    }
    Ok(File::from(fd))
}

/// Reads `file` up to `limit` bytes; more is [`ConfinedError::TooLarge`].
pub fn read_bounded(file: File, rel: &str, limit: u64) -> Result<Vec<u8>, ConfinedError> {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(ConfinedError::TooLarge { path: rel.to_string(), size, limit });
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut data).map_err(|source| ConfinedError::Io {
        action: "reading",
        path: rel.to_string(),
        source,
    })?;
    if data.len() as u64 > limit {
        return Err(ConfinedError::TooLarge { path: rel.to_string(), size: data.len() as u64, limit });
    }
    Ok(data)
}

/// How many characters of content an [`excerpt`] keeps.
pub const EXCERPT_CHARS: usize = 60;

/// `text`, content from a file someone else wrote, made fit for an error
/// message: control characters, quotes, backslashes and characters that are
/// not printable (bidirectional overrides, zero-width and other format
/// characters) escaped as `\n`, `\"`, `\u{202e}`…; at most
/// [`EXCERPT_CHARS`] characters of the result, then `…`.
pub fn excerpt(text: &str) -> String {
    excerpt_max(text, EXCERPT_CHARS)
}

/// `text` (a path in a tree someone else wrote) with control, quote and
/// non-printable characters escaped as by [`excerpt`], but not cut: a path
/// names a file, and only the file system bounds its length.
pub fn escape(text: &str) -> String {
    text.chars().map(escape_char).collect()
}

/// [`excerpt`] of bytes that need not be UTF-8 (invalid sequences become U+FFFD).
pub fn excerpt_bytes(data: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(&data[..data.len().min(EXCERPT_CHARS * 4)]))
}

fn excerpt_max(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in text.chars() {
        let piece = escape_char(c);
        let n = piece.chars().count();
        if count + n > max {
            out.push('…');
            return out;
        }
        count += n;
        out.push_str(&piece);
    }
    out
}

fn escape_char(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        '\r' => "\\r".into(),
        '"' => "\\\"".into(),
        '\\' => "\\\\".into(),
        c if is_printable(c) => c.to_string(),
        c => format!("\\u{{{:x}}}", u32::from(c)),
    }
}

/// Whether `c` shows as itself: not a control character, not a format
/// character (bidirectional controls, zero-width characters, BOM), not a
/// line or paragraph separator, not a private-use or unassigned-looking one.
fn is_printable(c: char) -> bool {
    let u = u32::from(c);
    !(c.is_control()
        || (0x200b..=0x200f).contains(&u)
        || (0x2028..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || u == 0x00ad
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || (0xf0000..).contains(&u)
        || (0xe0000..=0xe007f).contains(&u))
}

/// How many characters a [`bounded_message`] keeps.
pub const MESSAGE_CHARS: usize = 240;

/// A parser's message about content (toml's, serde_yaml_ng's: `invalid type:
/// string "…", expected …`, ``unknown field `…` ``) made fit for an error:
/// every quoted part (`"…"`, `` `…` ``) is cut to [`EXCERPT_CHARS`]
/// characters, control and non-printable characters are escaped everywhere
/// (serde's own escapes inside `"…"` are kept as they are), and the whole is
/// at most [`MESSAGE_CHARS`] characters.
pub fn bounded_message(msg: &str) -> String {
    let mut out = String::new();
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        if c != '"' && c != '`' {
            out.push_str(&escape_plain(c));
            continue;
        }
        let mut inner = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == '\\' && c == '"' {
                inner.push(d);
                if let Some(e) = chars.next() {
                    inner.push(e);
                }
            } else if d == c {
                closed = true;
                break;
            } else {
                inner.push(d);
            }
        }
        let escaped: String = inner.chars().map(escape_plain).collect();
        let mut cut = cut_chars(&escaped, EXCERPT_CHARS);
        if cut.len() < escaped.len() {
            // Never leave a backslash that would escape the closing quote.
            let trailing = cut.chars().rev().take_while(|&b| b == '\\').count();
            if trailing % 2 == 1 {
                cut.pop();
            }
            cut.push('…');
        }
        out.push(c);
        out.push_str(&cut);
        if closed {
            out.push(c);
        }
    }
    let cut = cut_chars(&out, MESSAGE_CHARS);
    if cut.len() < out.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// The first `max` characters of `s`.
fn cut_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `c` as itself, or escaped when it is a control or non-printable character.
fn escape_plain(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        '\r' => "\\r".into(),
        c if is_printable(c) => c.to_string(),
        c => format!("\\u{{{:x}}}", u32::from(c)),
    }
}

/// Caps for the files of a commit that reprove reads on the host.
pub mod limits {
    /// go.mod, go.work, reprove.toml, reprove.lock, .goreleaser.yaml.
    pub const CONFIG: u64 = 4 << 20;
    /// go.sum and go.work.sum, which list every module of a large build.
    pub const SUMS: u64 = 64 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, ConfinedDir) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("root")).unwrap();
        std::fs::create_dir(t.path().join("root/sub")).unwrap();
        std::fs::write(t.path().join("root/a"), b"inside").unwrap();
        std::fs::write(t.path().join("secret"), b"TOPSECRET").unwrap();
        let d = ConfinedDir::open(&t.path().join("root")).unwrap();
        (t, d)
    }

    #[test]
    fn files_inside_are_read_and_links_inside_followed() {
        let (t, d) = tree();
        symlink("../a", t.path().join("root/sub/link")).unwrap();
        assert_eq!(d.read("a", 100).unwrap(), b"inside");
        assert_eq!(d.read("./sub/link", 100).unwrap(), b"inside");
        assert!(d.is_file("sub/link"));
        assert!(d.read_optional("missing", 100).unwrap().is_none());
    }

    #[test]
    fn links_out_are_refused_absolute_or_relative() {
        let (t, d) = tree();
        symlink(t.path().join("secret"), t.path().join("root/abs")).unwrap();
        symlink("../secret", t.path().join("root/rel")).unwrap();
        symlink("../../secret", t.path().join("root/sub/rel2")).unwrap();
        symlink("/proc/self/cwd", t.path().join("root/magic")).unwrap();
        for p in ["abs", "rel", "sub/rel2", "magic/x"] {
            let e = d.read(p, 100).unwrap_err();
            assert!(matches!(e, ConfinedError::Escapes { .. }), "{p}: {e}");
            assert!(!e.to_string().contains("TOPSECRET"));
            assert!(!d.is_file(p));
        }
        for p in ["/etc/passwd", "../secret", "sub/../../secret", ""] {
            assert!(matches!(d.read(p, 100).unwrap_err(), ConfinedError::BadPath { .. }), "{p}");
        }
    }

    #[test]
    fn special_files_are_refused_without_opening() {
        let (t, d) = tree();
        let fifo = t.path().join("root/fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(d.read("fifo", 100).unwrap_err(), ConfinedError::NotRegular { kind: "FIFO", .. }));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(matches!(d.read("sub", 100).unwrap_err(), ConfinedError::NotRegular { kind: "directory", .. }));
    }

    #[test]
    fn sizes_are_bounded() {
        let (_t, d) = tree();
        assert!(matches!(d.read("a", 3).unwrap_err(), ConfinedError::TooLarge { size: 6, limit: 3, .. }));
    }

    #[test]
    fn single_files_must_be_unlinked_regular_files() {
        let (t, d) = tree();
        symlink("a", t.path().join("root/sym")).unwrap();
        std::fs::hard_link(t.path().join("root/a"), t.path().join("root/hard")).unwrap();
        assert!(matches!(d.open_single("sym", 100).unwrap_err(), ConfinedError::NotRegular { kind: "symlink", .. }));
        assert!(matches!(d.open_single("hard", 100).unwrap_err(), ConfinedError::Linked { links: 2, .. }));
        std::fs::write(t.path().join("root/one"), b"12345").unwrap();
        assert!(d.open_single("one", 100).is_ok());
        assert!(matches!(d.open_single("one", 4).unwrap_err(), ConfinedError::TooLarge { .. }));
        assert!(matches!(d.open_single("../secret", 100).unwrap_err(), ConfinedError::BadPath { .. }));
    }

    #[test]
    fn files_a_user_names_must_be_regular() {
        let (t, _d) = tree();
        assert!(open_regular_file(&t.path().join("root/a")).is_ok());
        symlink(t.path().join("root/a"), t.path().join("link")).unwrap();
        assert!(open_regular_file(&t.path().join("link")).is_ok(), "a user's own symlink is followed");
        let started = std::time::Instant::now();
        let e = open_regular_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, ConfinedError::NotRegular { kind: "character device", .. }), "{e}");
        let fifo = t.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(matches!(open_regular_file(&fifo).unwrap_err(), ConfinedError::NotRegular { kind: "FIFO", .. }));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(open_regular_file(&t.path().join("missing")).unwrap_err().is_not_found());
    }

    #[test]
    fn has_file_tells_missing_from_refused() {
        let (t, d) = tree();
        symlink(t.path().join("secret"), t.path().join("root/out")).unwrap();
        symlink("/dev/zero", t.path().join("root/zero")).unwrap();
        assert!(d.has_file("a").unwrap());
        assert!(!d.has_file("missing").unwrap());
        assert!(!d.has_file("sub/missing").unwrap());
        assert!(matches!(d.has_file("out").unwrap_err(), ConfinedError::Escapes { .. }));
        assert!(matches!(d.has_file("zero").unwrap_err(), ConfinedError::Escapes { .. }));
        assert!(!d.has_file("sub").unwrap());
        let fifo = t.path().join("root/fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(matches!(d.has_file("fifo").unwrap_err(), ConfinedError::NotRegular { kind: "FIFO", .. }));
    }

    #[test]
    fn a_followed_root_may_be_a_symlink_but_nothing_below_leaves_it() {
        let (t, _d) = tree();
        symlink(t.path().join("root"), t.path().join("alias")).unwrap();
        symlink("../secret", t.path().join("root/rel")).unwrap();
        let d = ConfinedDir::open_followed(&t.path().join("alias")).unwrap();
        assert_eq!(d.read("a", 100).unwrap(), b"inside");
        assert!(matches!(d.read("rel", 100).unwrap_err(), ConfinedError::Escapes { .. }));
    }

    #[test]
    fn paths_in_errors_are_escaped() {
        let (t, d) = tree();
        let name = "evil\u{1b}]0;title\u{7}\n";
        symlink(t.path().join("secret"), t.path().join("root").join(name)).unwrap();
        let e = d.read(name, 100).unwrap_err().to_string();
        assert!(e.starts_with(r"evil\u{1b}]0;title\u{7}\n: leaves "), "{e}");
        assert!(!e.chars().any(char::is_control), "{e}");
    }

    #[test]
    fn excerpts_are_escaped_and_short() {
        let line = format!(
            "bad \"value\"\twith\\ a \u{1b}[31m bell\u{7} and \u{202e}rtl\u{200b} {} MARKER-END",
            "x".repeat(100)
        );
        let e = excerpt(&line);
        assert!(e.starts_with(r#"bad \"value\"\twith\\ a \u{1b}[31m bell\u{7} and \u{202e}rtl"#), "{e}");
        assert_eq!(excerpt("zero\u{200b}width\u{feff}"), r"zero\u{200b}width\u{feff}");
        assert!(e.ends_with('…'), "{e}");
        assert!(e.chars().count() <= EXCERPT_CHARS + 1, "{e}");
        assert!(!e.contains("MARKER"), "{e}");
        assert!(!e.chars().any(|c| c.is_control() || c == '\u{202e}' || c == '\u{200b}'), "{e}");
        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt_bytes(b"a\xffb\n"), "a\u{fffd}b\\n");
        assert!(!excerpt_bytes(format!("{} MARKER", "y".repeat(300)).as_bytes()).contains("MARKER"));
    }

    #[test]
    fn parser_messages_keep_their_words_and_cut_what_they_quote() {
        let secret = format!("{}MARKER", "s".repeat(80));
        let m = bounded_message(&format!("invalid type: string \"{secret}\\\"\\n\", expected struct Raw"));
        assert!(m.starts_with("invalid type: string \"sss"), "{m}");
        assert!(m.ends_with("…\", expected struct Raw"), "{m}");
        assert!(!m.contains("MARKER"), "{m}");
        let m = bounded_message(&format!("unknown field `{secret}`, expected one of `build`, `builds`"));
        assert!(m.ends_with("…`, expected one of `build`, `builds`") && !m.contains("MARKER"), "{m}");
        // A quoted part cut right after a backslash does not escape its closing quote.
        let m = bounded_message(&format!("string \"{}\\\\tail\"", "a".repeat(EXCERPT_CHARS - 1)));
        assert!(m.ends_with("a…\""), "{m}");
        // Unquoted control characters are escaped, and the whole is bounded.
        let m = bounded_message(&format!("line\nbreak \u{1b}]0;title\u{7} {}", "w".repeat(1000)));
        assert!(m.starts_with("line\\nbreak \\u{1b}]0;title\\u{7} w"), "{m}");
        assert!(m.chars().count() <= MESSAGE_CHARS + 1 && !m.chars().any(char::is_control), "{m}");
    }

    #[test]
    fn the_root_itself_may_not_be_a_symlink() {
        let (t, _d) = tree();
        symlink(t.path().join("root"), t.path().join("alias")).unwrap();
        assert!(ConfinedDir::open(&t.path().join("alias")).is_err());
    }
}
