//! The module cache layout (`$GOMODCACHE`), as the go command's `modfetch` lays it out.
//!
//! `cache/download/<escaped path>/@v/<escaped version>.{info,mod,zip,ziphash,lock,partial}`
//! holds what was downloaded; `<escaped path>@<escaped version>/` is the
//! extracted, read-only source tree. Paths and versions are escaped with
//! [`escape_path`]; versions must be canonical
//! semantic versions, as Go requires.

use std::path::{Path, PathBuf};

use super::module::{canonical_version, escape_path, escape_version, go_quote, ModuleError, ModuleVersion};
use super::semver;

/// A module cache rooted at a GOMODCACHE directory.
#[derive(Debug, Clone)]
pub struct ModCache {
    root: PathBuf,
}

/// Why a cache path could not be formed (Go's `CachePath` and `DownloadDir` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CachePathError {
    /// The path or version cannot be escaped.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// `non-semver module version "x"`.
    #[error("non-semver module version {}", go_quote(.0))]
    NonSemver(String),
    /// `non-canonical module version "v1.2"`.
    #[error("non-canonical module version {}", go_quote(.0))]
    NonCanonical(String),
}

impl ModCache {
    /// A cache at `root` (the value of GOMODCACHE).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModCache { root: root.into() }
    }

    /// The GOMODCACHE directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `cache/download/<escaped path>/@v`.
    pub fn version_dir(&self, path: &str) -> Result<PathBuf, CachePathError> {
        Ok(self.root.join("cache/download").join(escape_path(path)?).join("@v"))
    }

    fn checked_version(m: &ModuleVersion) -> Result<String, CachePathError> {
        if !semver::is_valid(&m.version) {
            return Err(CachePathError::NonSemver(m.version.clone()));
        }
        if canonical_version(&m.version) != m.version {
            return Err(CachePathError::NonCanonical(m.version.clone()));
        }
        Ok(escape_version(&m.version)?)
    }

    /// `cache/download/<path>/@v/<version>.<suffix>` (Go's `modfetch.CachePath`).
    pub fn cache_path(&self, m: &ModuleVersion, suffix: &str) -> Result<PathBuf, CachePathError> {
        let dir = self.version_dir(&m.path)?;
        let v = Self::checked_version(m)?;
        Ok(dir.join(format!("{v}.{suffix}")))
    }

    /// The extracted directory `<path>@<version>` (Go's `modfetch.DownloadDir`, without its checks).
    pub fn extracted_dir(&self, m: &ModuleVersion) -> Result<PathBuf, CachePathError> {
        let p = escape_path(&m.path)?;
        let v = Self::checked_version(m)?;
        Ok(self.root.join(format!("{p}@{v}")))
    }
}
