//! `reprove.lock`: Go versions pinned to toolchain images by digest.
//!
//! ```toml
//! # reprove.lock: written by `reprove toolchain lock`; Go versions -> toolchain images by digest.
//! [toolchains]
//! "go1.22.5" = "registry.example/toolchains/go:1.22.5@sha256:…"
//! ```
//!
//! [`lock_toolchain`] records an image that the caller pulled by digest (the
//! `oci` crate checks every byte), refusing it unless `$GOROOT/VERSION` inside
//! names exactly the Go version given, and rewrites the file atomically (a
//! temporary file in the same directory, synced, then renamed over it). This
//! crate never talks to a registry.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use confined::{bounded_message, excerpt, limits, ConfinedDir, ConfinedError};
use oci::{PinnedImage, ToolchainError};

/// The lock file's name at the root of the repository.
pub const LOCK_FILE_NAME: &str = "reprove.lock";

/// What went wrong with `reprove.lock` or locking a toolchain.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid TOML or not the lock file's shape.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A Go version that does not look like `go1.22.5`.
    #[error("\"{}\" is not a Go version like go1.22.5", excerpt(version))]
    BadVersion {
        /// As given.
        version: String,
    },
    /// An image reference in the file that does not parse or has no digest.
    #[error("{path}: {}: {}", excerpt(version), bounded_message(&source.to_string()))]
    BadImage {
        /// The file.
        path: String,
        /// The Go version it is for.
        version: String,
        /// Why.
        source: Box<ToolchainError>,
    },
    /// The lock file has no image for this Go version.
    #[error("{path} pins no toolchain for {version} (it has: {}); run `reprove toolchain lock {version} IMAGE`",
        if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    MissingVersion {
        /// The file.
        path: String,
        /// The version asked for.
        version: String,
        /// The versions it pins.
        known: Vec<String>,
    },
    /// The image holds another Go version than the one to lock.
    #[error("the image {image} contains {found}, not {wanted}")]
    VersionMismatch {
        /// The image, pinned.
        image: String,
        /// The version asked for.
        wanted: String,
        /// `$GOROOT/VERSION` in the image.
        found: String,
    },
    /// The image has no `$GOROOT/VERSION`.
    #[error("the image {image} has no Go installation ($GOROOT/VERSION not found)")]
    NoGo {
        /// The image, pinned.
        image: String,
    },
    /// The file cannot be read inside its directory: a symlink out, a
    /// device, FIFO or socket, too large.
    #[error("{0}")]
    Refused(ConfinedError),
}

impl LockError {
    /// Whether the error is the user's input (exit 2) rather than infrastructure (exit 3).
    pub fn is_input(&self) -> bool {
        match self {
            LockError::Io { .. } => false,
            LockError::Refused(e) => e.is_input(),
            _ => true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    #[serde(default)]
    toolchains: BTreeMap<String, String>,
}

/// The contents of `reprove.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockFile {
    /// The path used in messages.
    pub path: String,
    /// Go version → image pinned by digest.
    pub toolchains: BTreeMap<String, PinnedImage>,
}

/// Checks a Go release version: `go1.22.5`, `go1.21.0`, `go1.23rc1`.
pub fn check_go_version(version: &str) -> Result<(), LockError> {
    let ok = version.strip_prefix("go").is_some_and(|r| {
        r.starts_with(|c: char| c.is_ascii_digit()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
    });
    if ok {
        Ok(())
    } else {
        Err(LockError::BadVersion { version: version.to_string() })
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl LockFile {
    /// An empty lock file that will be written to `path`.
    pub fn new(path: &str) -> LockFile {
        LockFile { path: path.to_string(), toolchains: BTreeMap::new() }
    }

    /// Parses `text`; `path` is used in errors.
    pub fn parse(text: &str, path: &str) -> Result<LockFile, LockError> {
        let raw: RawLock = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| super::file::line_column(text, s.start));
            LockError::Syntax { path: path.to_string(), line, column, message: bounded_message(e.message().trim()) }
        })?;
        let mut toolchains = BTreeMap::new();
        for (version, image) in raw.toolchains {
            check_go_version(&version)?;
            let pinned: PinnedImage = image.parse().map_err(|source| LockError::BadImage {
                path: path.to_string(),
                version: version.clone(),
                source: Box::new(source),
            })?;
            toolchains.insert(version, pinned);
        }
        Ok(LockFile { path: path.to_string(), toolchains })
    }

    /// Reads `dir/reprove.lock`; `Ok(None)` when there is none. The file is
    /// read confined to `dir` ([`ConfinedDir`]): a symlink out of it, a
    /// device or FIFO is [`LockError::Refused`], never opened.
    pub fn load(dir: &Path) -> Result<Option<LockFile>, LockError> {
        let tree = ConfinedDir::open_followed(dir).map_err(LockError::Refused)?;
        let Some(data) = tree.read_optional(LOCK_FILE_NAME, limits::CONFIG).map_err(LockError::Refused)? else {
            return Ok(None);
        };
        let text = String::from_utf8(data).map_err(|_| LockError::Syntax {
            path: LOCK_FILE_NAME.to_string(),
            line: 1,
            column: 1,
            message: "not UTF-8 text".into(),
        })?;
        LockFile::parse(&text, LOCK_FILE_NAME).map(Some)
    }

    /// Whether `dir` has a `reprove.lock`; one that cannot be read confined
    /// (a link out, a device…) is an error, not a missing file.
    pub fn exists(dir: &Path) -> Result<bool, LockError> {
        let tree = ConfinedDir::open_followed(dir).map_err(LockError::Refused)?;
        tree.has_file(LOCK_FILE_NAME).map_err(LockError::Refused)
    }

    /// The image pinned for `go_version`, or an error naming it and what the file has.
    pub fn toolchain(&self, go_version: &str) -> Result<&PinnedImage, LockError> {
        self.toolchains.get(go_version).ok_or_else(|| LockError::MissingVersion {
            path: self.path.clone(),
            version: go_version.to_string(),
            known: self.toolchains.keys().cloned().collect(),
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut s = String::from(
            "# reprove.lock: written by `reprove toolchain lock`; Go versions -> toolchain images by digest.\n\
             [toolchains]\n",
        );
        for (version, image) in &self.toolchains {
            s.push_str(&format!("{} = {}\n", toml_string(version), toml_string(&image.to_string())));
        }
        s
    }

    /// Writes the file to `path` atomically: readers see the old or the new file, never a part.
    pub fn write_atomic(&self, path: &Path) -> Result<(), LockError> {
        stdx::fs::write_atomic(path, self.to_toml().as_bytes(), ".reprove.lock.", 0o644, stdx::fs::Existing::Replace)
            .map_err(|source| LockError::Io { path: path.display().to_string(), source })
    }
}

/// Checks that a toolchain image whose `$GOROOT/VERSION` says `found`
/// contains exactly `go_version`: a recipe's Go version is never silently switched.
pub fn check_image_go_version(image: &PinnedImage, found: Option<&str>, go_version: &str) -> Result<(), LockError> {
    match found {
        None => Err(LockError::NoGo { image: image.to_string() }),
        Some(found) if found != go_version => Err(LockError::VersionMismatch {
            image: image.to_string(),
            wanted: go_version.to_string(),
            found: found.to_string(),
        }),
        Some(_) => Ok(()),
    }
}

/// Checks that the pulled image `pinned`, whose `$GOROOT/VERSION` says
/// `image_go_version`, contains exactly `go_version`, and records it in
/// `dir/reprove.lock` (created or updated).
pub fn lock_toolchain(
    dir: &Path,
    go_version: &str,
    pinned: &PinnedImage,
    image_go_version: Option<&str>,
) -> Result<(), LockError> {
    check_go_version(go_version)?;
    check_image_go_version(pinned, image_go_version, go_version)?;
    let mut lock = LockFile::load(dir)?.unwrap_or_else(|| LockFile::new(LOCK_FILE_NAME));
    lock.toolchains.insert(go_version.to_string(), pinned.clone());
    lock.write_atomic(&dir.join(LOCK_FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_lookup() {
        let mut lock = LockFile::new("reprove.lock");
        let image: PinnedImage = format!("127.0.0.1:5000/toolchains/go:1.22.5@{DIGEST}").parse().unwrap();
        lock.toolchains.insert("go1.22.5".into(), image.clone());
        let text = lock.to_toml();
        let back = LockFile::parse(&text, "reprove.lock").unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.toolchain("go1.22.5").unwrap(), &image);
        let e = back.toolchain("go1.21.0").unwrap_err().to_string();
        assert!(e.contains("go1.21.0") && e.contains("go1.22.5"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        lock.write_atomic(&dir.path().join(LOCK_FILE_NAME)).unwrap();
        assert_eq!(LockFile::load(dir.path()).unwrap().unwrap(), back);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn bad_lock_files_are_errors_with_positions() {
        let e = LockFile::parse("[toolchains]\n\"go1.22.5\" = \"golang:1.22.5\"\n", "reprove.lock").unwrap_err();
        assert!(e.to_string().contains("digest") || e.to_string().contains("pin"), "{e}");
        let e = LockFile::parse("[toolchain]\n", "reprove.lock").unwrap_err().to_string();
        assert!(e.starts_with("reprove.lock:1:"), "{e}");
        let e = LockFile::parse(&format!("[toolchains]\n\"1.22\" = \"a/b@{DIGEST}\"\n"), "r").unwrap_err();
        assert!(matches!(e, LockError::BadVersion { .. }));
        assert!(LockFile::parse("[toolchains\n", "r").is_err());
    }
}
