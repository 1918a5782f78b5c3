//! Toolchain images: pull, verify, unpack, cache, build and push OCI images.
//!
//! What it is: the only part of `verifier` that talks to container registries.
//! It resolves an [`ImageRef`] (tag or digest, image index → one platform),
//! streams the manifest, config and every layer while checking each against its
//! digest (and each uncompressed layer against the config's `diff_ids`), and
//! unpacks the layers safely into a content-addressed [`Store`]: one directory
//! per manifest digest, built in a temporary directory and renamed into place
//! only when everything verified. [`build`] packages a Go installation as a
//! deterministic image and writes it as an OCI layout and/or pushes it.
//!
//! What it isn't: it does not run anything in the images (that is `sandbox`),
//! and it never follows a symlink of an unpacked rootfs on the host: every path
//! of a layer is resolved component by component inside the rootfs (see
//! `unpack`).
//!
//! In: an image reference, [`PullOptions`] (platform, credentials, insecure
//! registries, size bound). Out: a [`PulledImage`] (digests, image config,
//! rootfs path, Go version), or a [`ToolchainError`] naming the image, digest
//! or path with expected and actual values.
//!
//! Hostile layers: `..` and absolute paths are clamped to the rootfs; symlinks
//! (also absolute ones, also those a later layer puts where a directory was)
//! are resolved inside the rootfs, never on the host; files are created with
//! `O_EXCL|O_NOFOLLOW`, so nothing is written through a symlink; hardlink
//! targets must be existing non-directories inside the rootfs; device nodes are
//! skipped with a warning (an unprivileged unpack cannot create them and a
//! toolchain has no use for them); setuid and setgid bits are stripped; the
//! decompressed size of all layers together is bounded by
//! [`PullOptions::max_unpacked_size`]. Ownership and extended attributes are
//! not applied: the rootfs belongs to the user who pulled it.
//!
//! # Design notes
//!
//! OCI images. `reference.rs` (`ImageRef`, `PinnedImage` — only
//! constructible with a digest, `Digest`, `Platform`), `auth.rs` (flags, auth
//! files: basic credentials, `registrytoken`, `identitytoken`; Bearer challenge
//! parsing), `registry.rs` (oci-client plus retries, platform selection, blob
//! streaming that hashes every byte once, and Docker's OAuth2 refresh-token
//! exchange for `identitytoken`; a 401 or a token server's refusal is
//! `ToolchainError::Auth`, naming which credentials were used, never their value), `deadline.rs`
//! (connect, idle and overall deadlines of every request; an expiry is
//! `ToolchainError::Deadline`, not retried), `unpack.rs`, `store.rs` (the
//! content-addressed cache, its locks, the pull pipeline, gc of images and of
//! the `gocache/<key>` build caches by last use and toolchain), `build.rs`
//! (deterministic toolchain images, OCI layout, push), `tls.rs` (the TLS of the
//! crate's own HTTP clients: the platform's root certificates, loaded once per
//! process and only for a first HTTPS connection).
//!
//! **Invariant:** only this crate talks to registries (`referrers` for the artifacts
//! attached to an image, which the `attach` crate maps to attestations).
//!
//! **Invariant:** no layer entry is written outside the rootfs: every path is
//! resolved component by component from the rootfs directory and files are
//! created `O_EXCL|O_NOFOLLOW`.
//!
//! **Invariant:** an image enters the cache only after every digest and `diff_id`
//! matched, by renaming a complete temp directory.
#![deny(missing_docs)]

mod auth;
pub mod build;
pub mod deadline;
mod gunzip;
pub mod image_input;
mod reference;
pub mod referrers;
mod registry;
mod store;
mod tls;
mod unpack;
pub mod walk;

use std::path::PathBuf;
use std::sync::Arc;

pub use auth::Credentials;
pub use deadline::{Deadline, Deadlines, Expired, OverallClock};
pub use oci_spec::image::ImageConfiguration;
pub use reference::{Digest, ImageRef, PinnedImage, Platform};
pub use store::{build_cache_marker, GcOptions, GcReport, PulledImage, Store, StoreGuard};

/// How to reach registries: credentials and which hosts may use plain HTTP.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host` or `host:port`) reached over plain HTTP. Loopback
    /// registries (`localhost`, `127.0.0.0/8`, `::1`) always are.
    pub insecure_registries: Vec<String>,
    /// Credentials given on the command line; they win over auth files.
    pub credentials: Option<Credentials>,
    /// An auth file to read instead of `REGISTRY_AUTH_FILE`, the Podman auth
    /// file and `~/.docker/config.json`.
    pub auth_file: Option<PathBuf>,
    /// How many times a request is retried after a 5xx answer or a broken
    /// connection (with exponential backoff). `None`: 4. A request whose
    /// deadline expired is not retried.
    pub retries: Option<u32>,
    /// The connect, idle and overall deadlines of every request.
    pub deadlines: Deadlines,
    /// The account of [`Deadlines::overall`]: clones of these options share it, so
    /// that the registry operations of one command draw on one overall deadline.
    pub clock: OverallClock,
}

/// Receives pull progress; the CLI draws a progress bar with it.
pub trait Progress: Send + Sync {
    /// Layer `index` (from 0) of `count`, `size` compressed bytes, starts downloading.
    fn layer(&self, index: usize, count: usize, digest: &Digest, size: u64);
    /// `bytes` more bytes of the current layer arrived.
    fn advance(&self, bytes: u64);
}

/// Options of [`Store::pull`].
#[derive(Clone, Default)]
pub struct PullOptions {
    /// Registry access.
    pub registry: RegistryOptions,
    /// The platform to select from an image index; `None`: linux and this machine's architecture.
    pub platform: Option<Platform>,
    /// Upper bound of the decompressed size of all layers together, in bytes
    /// (tar headers included). `None`: [`DEFAULT_MAX_UNPACKED_SIZE`].
    pub max_unpacked_size: Option<u64>,
    /// Progress receiver.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("registry", &self.registry)
            .field("platform", &self.platform)
            .field("max_unpacked_size", &self.max_unpacked_size)
            .finish_non_exhaustive()
    }
}

/// The default bound of [`PullOptions::max_unpacked_size`]: 8 GiB.
pub const DEFAULT_MAX_UNPACKED_SIZE: u64 = 8 << 30;

/// Everything that can go wrong with toolchain images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolchainError {
    /// An image reference does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A reference without a digest where one is required.
    #[error("image reference {reference} has no digest; pin it as {reference}@sha256:… (`reprove toolchain pull {reference}` prints the digest)")]
    NotPinned {
        /// The reference as given.
        reference: String,
    },
    /// A digest does not parse.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The digest as given.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A platform does not parse.
    #[error("invalid platform {platform:?}: expected os/arch[/variant]")]
    InvalidPlatform {
        /// The platform as given.
        platform: String,
    },
    /// The registry refused or failed a request (after retries).
    #[error("registry error for {image} while {action}: {source}")]
    Registry {
        /// The image.
        image: String,
        /// What reprove was doing.
        action: String,
        /// The client's error.
        #[source]
        source: Box<oci_client::errors::OciDistributionError>,
    },
    /// A registry did not connect, answer or finish within a deadline.
    #[error(transparent)]
    Deadline(Box<deadline::Expired>),
    /// The registry or its token server refused the credentials (or their absence).
    #[error("authentication to {registry} failed with {origin}: {reason}")]
    Auth {
        /// The registry (`host[:port]`).
        registry: String,
        /// Which credentials were used: `anonymous`, a user name and where it came from, a token.
        origin: String,
        /// What the registry or token server said.
        reason: String,
    },
    /// Content does not match its digest.
    #[error("{what} of {image} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The image.
        image: String,
        /// `manifest`, `config`, `layer sha256:…`, `uncompressed layer sha256:…`.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A blob has a different size than its descriptor says.
    #[error("{what} of {image} has the wrong size: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The image.
        image: String,
        /// Which blob.
        what: String,
        /// The size in the descriptor.
        expected: u64,
        /// The size received (at least).
        actual: u64,
    },
    /// A manifest, index or config is malformed or unsupported.
    #[error("bad manifest for {image}: {reason}")]
    Manifest {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// No entry of an image index matches the platform.
    #[error("image {image} has no manifest for {platform}; it has: {available}")]
    NoMatchingPlatform {
        /// The image.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms in the index.
        available: String,
    },
    /// A layer could not be applied.
    #[error("layer {digest} of {image}: entry {entry:?}: {reason}")]
    Layer {
        /// The image.
        image: String,
        /// The layer digest.
        digest: String,
        /// The tar entry path.
        entry: String,
        /// What went wrong.
        reason: String,
    },
    /// The layers decompress to more than the bound.
    #[error("image {image} unpacks to more than {limit} bytes; refusing it")]
    TooLarge {
        /// The image.
        image: String,
        /// The bound.
        limit: u64,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What reprove was doing.
        action: String,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An auth file is malformed.
    #[error("auth file {path}: {reason}")]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A GOROOT cannot be packaged.
    #[error("GOROOT {path}: {reason}")]
    GoRoot {
        /// The GOROOT.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ToolchainError {
    /// Whether the error is the user's input (exit 2) rather than the
    /// infrastructure's (registry, network, filesystem: exit 3).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            ToolchainError::InvalidReference { .. }
                | ToolchainError::NotPinned { .. }
                | ToolchainError::InvalidDigest { .. }
                | ToolchainError::InvalidPlatform { .. }
                | ToolchainError::AuthFile { .. }
                | ToolchainError::GoRoot { .. }
        )
    }

    pub(crate) fn io(action: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ToolchainError::Io { action: action.into(), path: path.into(), source }
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/reprove`, else `$HOME/.cache/reprove`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| non_empty("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("reprove"))
}

/// Installs rustls's crypto provider once (the registry client uses rustls without a default provider).
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Reads a regular file of a pulled image's root filesystem (layers applied,
/// whiteouts honoured), resolving every path component and symlink inside the
/// rootfs, never on the host. A file larger than `limit` bytes is an error.
pub fn read_file_in_image(image: &PulledImage, path: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    let data = unpack::read_file_in_root(&image.rootfs, path.as_bytes(), limit.saturating_add(1))?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(data)
}

/// Reads the Go version (`go1.22.5`) from `$GOROOT/VERSION` inside `rootfs`,
/// resolving every path component inside the rootfs.
pub(crate) fn go_version_in(rootfs: &std::path::Path, goroot: &str) -> Option<String> {
    let path = format!("{}/VERSION", goroot.trim_end_matches('/'));
    let bytes = unpack::read_file_in_root(rootfs, path.as_bytes(), 4096).ok()?;
    let first = String::from_utf8_lossy(&bytes).lines().next()?.trim().to_string();
    first.starts_with("go").then_some(first)
}
