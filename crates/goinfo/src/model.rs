//! The build info data model, mirroring Go's `runtime/debug.BuildInfo`.
//!
//! Go strings are byte strings, so every field is a [`BString`]: a binary whose
//! build info holds invalid UTF-8 still prints byte for byte as Go prints it.

use bstr::{BStr, BString, ByteSlice};

/// The build information embedded in a Go binary (`runtime/debug.BuildInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The Go toolchain version that built the binary, e.g. `go1.22.5`.
    pub go_version: BString,
    /// The package path of the main package.
    pub path: BString,
    /// The main module; all fields empty when the binary was built outside module mode.
    pub main: Module,
    /// Every dependency module that contributed packages, in the order Go recorded them.
    pub deps: Vec<Module>,
    /// Build settings (`-buildmode`, `-ldflags`, `GOOS`, `vcs.revision`, ...) in recorded order.
    pub settings: Vec<BuildSetting>,
}

/// A module in the build list (`runtime/debug.Module`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    /// Module path.
    pub path: BString,
    /// Module version; `(devel)` for a main module built from a working tree.
    pub version: BString,
    /// The `h1:` checksum, empty when unknown.
    pub sum: BString,
    /// What a `replace` directive substituted for this module.
    pub replace: Option<Box<Module>>,
}

/// One `build key=value` line (`runtime/debug.BuildSetting`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSetting {
    /// The setting's name, e.g. `-ldflags` or `vcs.revision`.
    pub key: BString,
    /// The setting's value.
    pub value: BString,
}

impl Module {
    /// Whether every field is empty, as Go's `bi.Main != (Module{})` test.
    pub fn is_empty(&self) -> bool {
        self.path.is_empty() && self.version.is_empty() && self.sum.is_empty() && self.replace.is_none()
    }
}

impl BuildInfo {
    /// The value of the first build setting named `key`.
    pub fn setting(&self, key: &str) -> Option<&BStr> {
        self.settings.iter().find(|s| s.key.as_bytes() == key.as_bytes()).map(|s| s.value.as_bstr())
    }
}
