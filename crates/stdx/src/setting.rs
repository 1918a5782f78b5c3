//! The settings a caller can change, as library messages name them.
//!
//! A library never spells a command-line flag: a message that tells the user
//! what to change names a [`Setting`], and the binary says once, at start, how
//! its users spell each one ([`install`]): the CLI as its flags, a service as
//! the fields of its API. Until then a setting is written as its id
//! ([`Setting::id`]), the key `reprove.toml` and the job API use.

use std::fmt;
use std::sync::OnceLock;

/// Declares the settings with their ids, written once here.
macro_rules! settings {
    ($($(#[$doc:meta])* $variant:ident => $id:literal,)*) => {
        /// A setting of a rebuild that a message can tell the user to change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Setting {
            $($(#[$doc])* $variant,)*
        }

        impl Setting {
            /// Every setting, in declaration order.
            pub const ALL: &'static [Setting] = &[$(Setting::$variant,)*];

            /// Its id: the name it has when no binary installed its own.
            pub fn id(self) -> &'static str {
                match self {
                    $(Setting::$variant => $id,)*
                }
            }
        }
    };
}

settings! {
    /// Rebuild the commit although the working tree has uncommitted changes.
    AllowDirty => "allow_dirty",
    /// The toolchain image, pinned by digest.
    Toolchain => "toolchain",
    /// The recipe's Go version.
    GoVersion => "go_version",
    /// An environment variable of the build (`KEY=VALUE`).
    Env => "env",
    /// The reference binary, as a file.
    Reference => "reference",
    /// goreleaser's `.Tag`.
    Tag => "tag",
    /// The named build of `reprove.toml` or `.goreleaser.yaml`.
    Build => "build",
    /// goreleaser's target (`OS_ARCH[_LEVEL]`).
    Target => "target",
    /// `go build -buildmode`.
    Buildmode => "buildmode",
    /// `go build -ldflags`.
    Ldflags => "ldflags",
    /// The main package.
    Package => "package",
    /// `go build -pgo`.
    Pgo => "pgo",
    /// The repository of a main module (`MODULE=URL|PATH`), for an audit.
    Source => "source",
    /// Whether the build stamps VCS information (`-buildvcs`).
    Buildvcs => "buildvcs",
    /// Where the exported source and the rebuilt binary are kept.
    Keep => "keep",
    /// The base image of a toolchain image that reprove builds.
    ToolchainBase => "toolchain_base",
    /// How many attestation referrers of one image are fetched at most.
    MaxReferrers => "max_referrers",
    /// How many bytes of attestations (manifests and blobs) are fetched at most.
    MaxAttestationBytes => "max_attestation_bytes",
    /// How long opening a connection to a registry may take.
    RegistryConnectTimeout => "registry_connect_timeout",
    /// How long a registry may send nothing while an answer is awaited or read.
    RegistryIdleTimeout => "registry_idle_timeout",
    /// How long the registry work of one command may take in all.
    RegistryTimeout => "registry_timeout",
}

/// How the binary spells each setting.
pub type Names = fn(Setting) -> &'static str;

static NAMES: OnceLock<Names> = OnceLock::new();

/// Installs how the binary's users spell each setting. The first call wins:
/// `false` when names were installed before.
pub fn install(names: Names) -> bool {
    NAMES.set(names).is_ok()
}

impl Setting {
    /// The setting as the binary's users spell it, else its id.
    pub fn name(self) -> &'static str {
        NAMES.get().map_or(self.id(), |names| names(self))
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before any binary installs names, a setting is its id; ids are distinct.
    #[test]
    fn ids_are_distinct_and_the_default() {
        let mut seen = std::collections::BTreeSet::new();
        for s in Setting::ALL {
            assert!(seen.insert(s.id()), "{} twice", s.id());
            assert_eq!(s.to_string(), s.id());
        }
    }
}
