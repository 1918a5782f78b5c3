//! What the auditor tells the audit: where sources are, which toolchain
//! builds which Go version, and what a binary cannot record about its build.
//!
//! Three places, highest first: the command line (`--source MODULE=URL|PATH`,
//! `--toolchain goX.Y.Z=IMAGE@sha256:…`, `--ldflags BINARY=FLAGS`), the
//! `[audit]` table of `reprove.toml` in the audit directory, and the
//! directory's `reprove.lock` for toolchains:
//!
//! ```toml
//! [audit.sources]
//! "example.com/tool" = "https://git.example/tool.git"   # or a local repository
//!
//! [audit.toolchains]
//! "go1.22.5" = "registry.example/go@sha256:…"
//!
//! [[audit.binary]]
//! path = "/usr/local/bin/tool"        # the binary's path in the image, or
//! # package = "example.com/tool/cmd/tool"
//! ldflags = "-s -w -X main.version=1.2.3"
//! ```
//!
//! The audit directory is the auditor's, not the audited party's: this file is
//! trusted like the command line (the sources and images it names are still
//! checked like any other).

use std::collections::BTreeMap;
use std::path::Path;

use oci::PinnedImage;
use serde::Deserialize;

/// The file, the same name as a repository's recipe file.
pub const FILE_NAME: &str = "reprove.toml";

/// A bad setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--source`, `--toolchain` or `--ldflags` without `=`.
    #[error("{what} {value:?}: expected {shape}")]
    Shape {
        /// The setting.
        what: &'static str,
        /// As given.
        value: String,
        /// What it should look like.
        shape: &'static str,
    },
    /// A Go version that is not `goX.Y.Z`.
    #[error("{0:?} is not a Go version like go1.22.5")]
    GoVersion(String),
    /// An image that is not pinned by digest.
    #[error("toolchain for {version}: {source}")]
    Image {
        /// The Go version.
        version: String,
        /// Why.
        source: Box<oci::ToolchainError>,
    },
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML of the `[audit]` shape.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `reprove.lock` is wrong.
    #[error(transparent)]
    Lock(#[from] recipe::lock::LockError),
}

/// One binary's recipe fields that build info cannot record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryEntry {
    /// The path in the image (`/usr/bin/tool`).
    pub path: Option<String>,
    /// Or the main package path.
    pub package: Option<String>,
    /// `-ldflags`, verbatim.
    pub ldflags: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditTable {
    #[serde(default)]
    sources: BTreeMap<String, String>,
    #[serde(default)]
    toolchains: BTreeMap<String, String>,
    #[serde(default)]
    binary: Vec<BinaryEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFile {
    #[serde(default)]
    audit: AuditTable,
}

/// Where the audit finds what binaries do not say, merged from every place.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Module path → repository (URL or local path).
    pub sources: BTreeMap<String, String>,
    /// Go version → toolchain image, with where it came from.
    pub toolchains: BTreeMap<String, (PinnedImage, String)>,
    /// Per-binary entries, command line first.
    pub binaries: Vec<BinaryEntry>,
}

/// Splits `KEY=VALUE` at the first `=`.
fn split<'a>(what: &'static str, value: &'a str, shape: &'static str) -> Result<(&'a str, &'a str), ConfigError> {
    value.split_once('=').filter(|(k, v)| !k.is_empty() && !v.is_empty()).ok_or_else(|| ConfigError::Shape {
        what,
        value: value.to_string(),
        shape,
    })
}

fn pin(version: &str, image: &str) -> Result<PinnedImage, ConfigError> {
    recipe::lock::check_go_version(version).map_err(|_| ConfigError::GoVersion(version.to_string()))?;
    image.parse().map_err(|source| ConfigError::Image { version: version.to_string(), source: Box::new(source) })
}

impl Settings {
    /// Adds `--source MODULE=URL|PATH`.
    pub fn add_source_flag(&mut self, value: &str) -> Result<(), ConfigError> {
        let (module, location) = split("source", value, "MODULE=URL|PATH")?;
        self.sources.insert(module.to_string(), location.to_string());
        Ok(())
    }

    /// Adds `--toolchain goX.Y.Z=IMAGE@sha256:…`.
    pub fn add_toolchain_flag(&mut self, value: &str) -> Result<(), ConfigError> {
        let (version, image) = split("toolchain", value, "goX.Y.Z=IMAGE@sha256:…")?;
        let image = pin(version, image)?;
        self.toolchains.insert(version.to_string(), (image, "flag".to_string()));
        Ok(())
    }

    /// Adds `--ldflags BINARY=FLAGS`, BINARY being the path in the image or the package path.
    pub fn add_ldflags_flag(&mut self, value: &str) -> Result<(), ConfigError> {
        let (binary, flags) = value
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| ConfigError::Shape { what: "ldflags", value: value.to_string(), shape: "BINARY=FLAGS" })?;
        let entry = if binary.starts_with('/') {
            BinaryEntry { path: Some(binary.to_string()), package: None, ldflags: Some(flags.to_string()) }
        } else {
            BinaryEntry { path: None, package: Some(binary.to_string()), ldflags: Some(flags.to_string()) }
        };
        self.binaries.push(entry);
        Ok(())
    }

    /// Adds what `dir`'s `reprove.toml` (`[audit]`) and `reprove.lock` say,
    /// below what is already there (the command line).
    pub fn add_directory(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join(FILE_NAME);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let raw: RawFile = toml::from_str(&text)
                    .map_err(|e| ConfigError::Syntax { path: shown.clone(), message: e.to_string() })?;
                for (module, location) in raw.audit.sources {
                    self.sources.entry(module).or_insert(location);
                }
                for (version, image) in raw.audit.toolchains {
                    let image = pin(&version, &image)?;
                    self.toolchains.entry(version).or_insert((image, shown.clone()));
                }
                for entry in raw.audit.binary {
                    if entry.path.is_none() == entry.package.is_none() {
                        return Err(ConfigError::Syntax {
                            path: shown,
                            message: "each [[audit.binary]] names exactly one of path or package".into(),
                        });
                    }
                    self.binaries.push(entry);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path: shown, source }),
        }
        if let Some(lock) = recipe::lock::LockFile::load(dir)? {
            let lock_path = dir.join(recipe::lock::LOCK_FILE_NAME).display().to_string();
            for (version, image) in &lock.toolchains {
                self.toolchains.entry(version.clone()).or_insert((image.clone(), lock_path.clone()));
            }
        }
        Ok(())
    }

    /// The repository for a main module: the longest configured module path
    /// that is the module itself or a parent of it (`example.com/a` serves
    /// `example.com/a/v2` only when named so: a major version is another module).
    pub fn source_for(&self, module: &str) -> Option<&str> {
        self.sources.get(module).map(String::as_str)
    }

    /// The `-ldflags` for a binary at `path` building `package`: an entry for
    /// the path wins over one for the package; the first of each wins.
    pub fn ldflags_for(&self, path: &str, package: &str) -> Option<&str> {
        let by_path = self.binaries.iter().find(|b| b.path.as_deref() == Some(path));
        let by_package = || self.binaries.iter().find(|b| b.package.as_deref() == Some(package));
        by_path.or_else(by_package).and_then(|b| b.ldflags.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn flags_win_over_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            format!(
                "[audit.sources]\n\"example.com/a\" = \"/repos/a\"\n\"example.com/b\" = \"/repos/b\"\n\
                 [audit.toolchains]\n\"go1.22.5\" = \"reg.test/go@{DIGEST}\"\n\
                 [[audit.binary]]\npath = \"/bin/a\"\nldflags = \"-X main.v=file\"\n"
            ),
        )
        .unwrap();
        let mut s = Settings::default();
        s.add_source_flag("example.com/a=https://git.test/a.git").unwrap();
        s.add_ldflags_flag("/bin/a=-X main.v=flag").unwrap();
        s.add_ldflags_flag("example.com/b/cmd/b=").unwrap();
        s.add_directory(dir.path()).unwrap();
        assert_eq!(s.source_for("example.com/a"), Some("https://git.test/a.git"));
        assert_eq!(s.source_for("example.com/b"), Some("/repos/b"));
        assert_eq!(s.source_for("example.com/b/v2"), None);
        assert_eq!(s.ldflags_for("/bin/a", "x"), Some("-X main.v=flag"));
        assert_eq!(s.ldflags_for("/bin/b", "example.com/b/cmd/b"), Some(""));
        assert_eq!(s.toolchains["go1.22.5"].1, dir.path().join(FILE_NAME).display().to_string());
    }

    /// `schemas/recipe.schema.json` describes the same `[audit]` keys the parser takes.
    #[test]
    fn the_schema_has_the_parsers_keys() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/recipe.schema.json")).unwrap();
        let audit = &schema["properties"]["audit"]["properties"];
        let keys: Vec<&String> = audit.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["binary", "sources", "toolchains"]);
        let binary: Vec<&String> = audit["binary"]["items"]["properties"].as_object().unwrap().keys().collect();
        assert_eq!(binary, ["ldflags", "package", "path"]);
        let text = "[audit]\nsources = {}\ntoolchains = {}\n[[audit.binary]]\npath = \"/a\"\npackage = \"p\"\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
        let e = Settings::default().add_directory(dir.path()).unwrap_err().to_string();
        assert!(e.contains("exactly one of path or package"), "{e}");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut s = Settings::default();
        assert!(matches!(s.add_source_flag("example.com/a"), Err(ConfigError::Shape { what: "source", .. })));
        assert!(matches!(s.add_toolchain_flag("1.22=reg.test/go@x"), Err(ConfigError::GoVersion(_))));
        assert!(matches!(s.add_toolchain_flag("go1.22.5=reg.test/go:1.22"), Err(ConfigError::Image { .. })));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "[audit]\nsource = 1\n").unwrap();
        assert!(matches!(s.add_directory(dir.path()), Err(ConfigError::Syntax { .. })));
    }
}
