//! The rebuild: from a Git commit, a reference binary and a pinned toolchain
//! to a verdict.
//!
//! What goes in: a [`Request`] (source location and revision, the reference
//! as a file or a digest, the toolchain pinned by digest, recipe flags, caches,
//! the Go module environment). What comes out: always a [`report::v1::Report`]
//! whose verdict is `reproduced` (bit-identical), `not-reproduced` (with the
//! causes `compare` finds; a difference only in the build ID is
//! `build-id-only`, never "close enough") or `error` (with the failed step, a
//! class — input, infrastructure or security — and a stable code, from
//! `modfetch::failure` where one applies). [`exit_class`] says which exit code
//! the CLI gives it.
//!
//! The steps, one module each, each timed:
//!
//! 1. `reference` — read the reference (or take its digest).
//! 2. `source` ([`source`]) — resolve the revision, refuse a dirty
//!    working tree (unless allowed), export exactly the commit's tree; the
//!    recipe over it, refusing values from the commit's own files that run
//!    code ([`::recipe::exec`]) unless allowed.
//! 3. `go-sum` ([`gosum`]) — go.mod and go.sum at the commit: every
//!    requirement needs a go.sum line; digests of both files. In a go.work
//!    workspace (the reference's `(devel)` dependencies say so, or recipe
//!    `GOWORK`, or go's default without build info) the same over every
//!    workspace module's go.sum and go.work.sum, with their digests.
//! 4. `modules` — [`modfetch::download`] into one shared module cache
//!    under the cache directory; nothing unverified enters it.
//! 5. `toolchain` — [`oci::Store`] pull by digest; the image's Go
//!    version must equal the recipe's (no silent switch: `GOTOOLCHAIN=local`).
//! 6. `build` ([`build`]) — `go build` in the sandbox: source read-only, module
//!    cache read-only with `GOPROXY=off GOFLAGS=-mod=readonly` (and
//!    `GOWORK=/src/go.work` in a workspace, else `off`), a Go build
//!    cache keyed by toolchain digest, recipe and the source's Git tree (the
//!    build can write into it), no network, scrubbed environment, a deadline.
//! 7. `compare` ([`judge`]) — `compare::compare`, and the module sums three
//!    ways: go.sum, the reference's build info, the rebuilt binary's.
//!
//! What it is not: it parses no command line and prints nothing; progress
//! goes to a [`Progress`].
//!
//! # Design notes
//!
//! The `reprove verify` pipeline, one module per step, each timed:
//! reference → source export (dirty local trees refused unless allowed), then
//! the recipe resolved over the exported tree and the toolchain chosen →
//! `gosum` (every go.mod requirement has a go.sum line; digests of both. The
//! mode: a reference with `(devel)` dependencies was built in a go.work
//! workspace, none means `GOWORK=off`; without build info, go's default (the
//! root go.work if any); recipe `GOWORK=off|go.work` says it explicitly; a
//! `(devel)` reference without a usable go.work is the input error
//! `go-workspace`. In a workspace, `check_workspace`: the root go.work, every
//! `use`d module inside the tree with the root among them, the union of their
//! go.sum files and go.work.sum as go reads them, each requirement but those on
//! workspace modules needing a line after go.work's then the modules'
//! `replace`; `inputs.workspace` records every file's digest) →
//! modules (`modfetch::download` into one shared verified cache,
//! `<cache>/modcache`; for a workspace, from a stand-in main module in the work
//! directory whose go.mod has the union of the requirements and replacements,
//! local ones absolute, and whose go.sum is the union) → toolchain (pulled by
//! digest; its Go version must equal the recipe's) → `build` (the sandbox:
//! source and module cache read-only, `GOPROXY=off GOFLAGS=-mod=readonly
//! GOTOOLCHAIN=local`, `GOWORK=/src/go.work` or `off`, a Go build cache
//! `<cache>/gocache/<key>` keyed by toolchain digest and recipe, no network,
//! scrubbed environment, deadline; when the recipe makes the build run
//! programs it names (`recipe::exec`) the key includes the source's Git tree
//! id, since the cache is writable by the build and such a build could plant
//! entries another source would link; with VCS stamping the source is a clean
//! checkout with `.git` and the image must have `git`) → `judge`
//! (`compare::compare`, and module sums three ways: go.sum, the reference's
//! build info, the rebuilt binary's). `--reference oci://…` is read through
//! `oci::read_file_in_image` from an image pulled by digest.
//! `recipe.rs` calls `recipe::resolve` over the exported tree of the commit
//! (so `reprove.toml` and `.goreleaser.yaml` are the commit's, never a working
//! tree's), with the reference's build info as a layer only under
//! `--from-reference` (without it the reference gives only the Go version),
//! and goreleaser's template values from the commit (id, commit time, its only
//! tag; `.Date` only when given). An undetermined field stops the run before
//! anything is built (input error `recipe-undetermined`); so does a value of
//! `Recipe::exec` from the commit's own files without `--allow-recipe-exec`
//! (input error `recipe-exec-refused`); with `-modfile=F`, `gosum` checks F and
//! F's `.sum` and the modules are fetched for them. Without
//! `--toolchain` the image is `recipe::locked_toolchain` of the commit's
//! `reprove.lock` (`inputs.toolchain.from` says which). `report.rs` holds
//! the versioned document (`report::v1`, `schemas/report.schema.json`, serde both
//! ways so that attestations can be written from it) and its text, Markdown and
//! JUnit renderings. `check.rs` is `reprove check`: the same steps without a
//! reference, then a baseline build and one build per variation (time: the
//! same build again at least 2 s later, which is also the control; build
//! directory, environment, umask 077, user 1000:1000, warm cache), each from an
//! empty build cache except the warm one, compared with the baseline. When the
//! control differs, the summary says the other differences cannot be put on
//! their variations. A variation the runtime cannot apply
//! (`sandbox::Error::Unsupported`), or that the output shows was ignored (the
//! binary's mode or owner), is skipped and listed under `notVaried` with the
//! reason, next to the clock itself (no namespace moves `CLOCK_REALTIME`, so a
//! dependence on the date is not found).
//!
//! **Invariant:** `verify` always returns a report: a failure is verdict `error`
//! with the step, a class (input → exit 2; infrastructure or security → exit 3)
//! and a stable code (`modfetch::failure` codes where they apply). A difference is
//! never an error, and never "close enough": only equal SHA-256 is `reproduced`.
//!
//! **Invariant:** nothing reaches the build from the host environment: the job's
//! environment is the image's, the recipe's and the pipeline's, and the
//! pipeline's (`GOPROXY=off`, `GOTOOLCHAIN=local`, caches) always wins.
//!
//! **Invariant:** the toolchain's Go version is checked, never switched.
//!
//! **Invariant:** every host-side read of the commit's content (go.mod, go.sum,
//! go.work, go.work.sum, workspace modules' go.mod/go.sum, reprove.toml,
//! .goreleaser.yaml, reprove.lock, and in `modfetch::download` the main module's
//! files and local replacements' go.mod, `DownloadOptions::source_tree`) goes
//! through `confined::ConfinedDir` rooted at the exported tree: symlinks
//! followed only while inside, devices/FIFOs/sockets refused by type before
//! they are opened, sizes capped; a refusal is an input error naming the path.
//! A local `replace` directory that is absolute or leaves the tree is refused
//! by `gosum` before anything reads it. Commit content reaches an error message
//! only as `confined::excerpt` / `bounded_message` (escaped, about 60
//! characters per quoted value); `ModFileError::excerpted` does it for go.mod
//! and go.work while `Display` keeps Go's exact text for the parity tests.
#![deny(missing_docs)]

pub mod build;
pub mod check;
pub mod gosum;
pub mod judge;
pub mod recipe;
pub use report;
pub use report::v1::{Class, Code, Step, Verdict};
pub mod workdirs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ::recipe::{BuildVcs, Recipe};
use goinfo::BuildInfo;
use gomod::env::GoEnv;
use modfetch::download::{self, DownloadError, DownloadOptions, SecurityError};
use modfetch::failure::Code as FetchCode;
use modfetch::sumdb::ChecksumDb;
use oci::{PinnedImage, PullOptions, RegistryOptions, Store, ToolchainError};
use recipe::RecipeInputs;
use report::v1;
use sandbox::{self, CancelToken, RuntimeChoice};
use source::{HostKeyProblem, Source, SourceError};

/// The reference the rebuild is judged against.
#[derive(Debug, Clone)]
pub enum ReferenceInput {
    /// A file.
    File(PathBuf),
    /// Only its SHA-256 (hex, lowercase) is known.
    Digest(String),
    /// No reference (`reprove check`).
    None,
    /// A file inside an image pinned by digest (`oci://IMAGE@sha256:…#/path`),
    /// read from the unpacked layers with whiteouts applied.
    Image {
        /// The image.
        image: PinnedImage,
        /// The absolute path in the image.
        path: String,
    },
}

/// The largest reference read from an image.
const MAX_REFERENCE: u64 = 2 << 30;

/// Why an `oci://` reference does not parse.
#[derive(Debug, thiserror::Error)]
pub enum OciReferenceError {
    /// It does not start with `oci://`.
    #[error("{0:?}: expected oci://IMAGE@sha256:…#/path")]
    Scheme(String),
    /// No `#/path` names the file.
    #[error("{0:?}: name the file in the image after #, e.g. #/usr/bin/app")]
    NoPath(String),
    /// The path is not an absolute file path.
    #[error("{0:?}: the path after # must be an absolute file path in the image")]
    BadPath(String),
    /// The image is not a reference pinned by digest.
    #[error(transparent)]
    Image(#[from] ToolchainError),
}

/// Parses `oci://REGISTRY/NAME[:TAG]@sha256:…#/path/in/image`.
pub fn parse_oci_reference(s: &str) -> Result<(PinnedImage, String), OciReferenceError> {
    let rest = s.strip_prefix("oci://").ok_or_else(|| OciReferenceError::Scheme(s.to_owned()))?;
    let (image, path) = rest.split_once('#').ok_or_else(|| OciReferenceError::NoPath(s.to_owned()))?;
    if !path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
        return Err(OciReferenceError::BadPath(s.to_owned()));
    }
    let image: PinnedImage = image.parse()?;
    Ok((image, path.to_string()))
}

/// Parses `sha256:<64 hex>` into lowercase hex.
pub fn parse_sha256(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

/// Everything a rebuild needs.
#[derive(Clone)]
pub struct Request {
    /// A repository directory or a clone URL.
    pub source: String,
    /// The revision.
    pub rev: String,
    /// The reference.
    pub reference: ReferenceInput,
    /// The toolchain image; `None`: the one the commit's `reprove.lock` pins
    /// for the recipe's Go version.
    pub toolchain: Option<PinnedImage>,
    /// The recipe inputs besides the commit's files and the reference.
    pub recipe: RecipeInputs,
    /// Build even when the local working tree at the revision is dirty.
    pub allow_dirty: bool,
    /// The sandbox runtime.
    pub runtime: RuntimeChoice,
    /// The reprove cache directory: toolchain images, `modcache/`, `gocache/`, `work/`.
    pub cache_dir: PathBuf,
    /// Keep the exported source and the rebuilt binary here (a new or empty directory).
    pub keep: Option<PathBuf>,
    /// Registry access for the toolchain pull.
    pub registry: RegistryOptions,
    /// The Go module environment (GOPROXY…) for fetching modules; GOMODCACHE is replaced.
    pub go_env: GoEnv,
    /// Module download settings.
    pub download: DownloadOptions,
    /// The checksum database for go.sum gaps.
    pub sumdb: Arc<dyn ChecksumDb>,
    /// The build's time limit.
    pub build_timeout: Duration,
    /// reprove's version, for the report.
    pub tool_version: String,
    /// Copy the build's output to stderr as it arrives.
    pub echo_build: bool,
    /// The caller's async runtime, on which the registry and GOPROXY clients run.
    pub io: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("source", &self.source)
            .field("rev", &self.rev)
            .field("reference", &self.reference)
            .field("toolchain", &self.toolchain.as_ref().map(ToString::to_string))
            .finish_non_exhaustive()
    }
}

/// Receives step progress (a spinner in the CLI).
pub trait Progress: Send + Sync {
    /// `step` starts.
    fn start(&self, _step: Step) {}
    /// `step` ended after `elapsed`.
    fn finish(&self, _step: Step, _elapsed: Duration) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {}

/// Why the rebuild could not reach a verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// The reference file cannot be read.
    #[error("reading the reference {path}: {source}")]
    Reference {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reference file is not in the image.
    #[error("reading {path} in {image}: {reason}")]
    ReferenceInImage {
        /// The image.
        image: String,
        /// The path in the image.
        path: String,
        /// Why.
        reason: String,
    },
    /// The source stage failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The working tree at the revision has uncommitted changes.
    #[error("the working tree {worktree} has uncommitted changes ({}); commit them, or pass --allow-dirty to rebuild the commit anyway", paths.join(", "))]
    DirtyTree {
        /// The working tree.
        worktree: PathBuf,
        /// The changed paths.
        paths: Vec<String>,
    },
    /// go.mod or go.sum cannot be used.
    #[error("{0}")]
    GoMod(String),
    /// go.sum lacks lines for requirements of go.mod.
    #[error("go.sum has no line for {}: run `go mod tidy` and commit go.sum", modules.join(", "))]
    MissingGoSum {
        /// `path@version` of each.
        modules: Vec<String>,
    },
    /// The reference was built in a Go workspace (go.work): it records the
    /// workspace's other modules as `(devel)` dependencies, without a version
    /// or checksum, and the rebuild would not use a workspace.
    #[error(
        "the reference was built in a go.work workspace: {} {} recorded as (devel), without a version or checksum; \
         {reason}",
        modules.join(", "),
        if modules.len() == 1 { "is" } else { "are" },
    )]
    Workspace {
        /// The module paths recorded as `(devel)` dependencies.
        modules: Vec<String>,
        /// Why the rebuild would not use the workspace.
        reason: String,
    },
    /// The recipe's `GOWORK` names something other than `off` or the commit's go.work.
    #[error("GOWORK={0}: a rebuild takes GOWORK=off (no workspace) or GOWORK=go.work (the go.work at the root of the commit); leave it unset to follow the reference")]
    GoWorkValue(String),
    /// The module download could not start.
    #[error("fetching modules: {0}")]
    Download(#[from] DownloadError),
    /// Downloaded module content differs from go.sum.
    #[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Security {
        /// Each mismatch.
        errors: Vec<SecurityError>,
    },
    /// Modules could not be fetched and verified.
    #[error("{} module file(s) could not be fetched and verified: {}", failures.len(), failures.iter().map(|f| format!("{}@{}: [{}] {}", f.module.path, f.module.version, f.code, f.message)).collect::<Vec<_>>().join("; "))]
    Modules {
        /// Each failure.
        failures: Vec<download::Failure>,
    },
    /// The toolchain image could not be pulled or used.
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    /// The toolchain image has no Go installation.
    #[error("the toolchain image {image} contains no Go installation ($GOROOT/VERSION not found)")]
    NoGo {
        /// The image.
        image: String,
    },
    /// The image's Go version is not the recipe's.
    #[error("the toolchain image {image} contains {image_version}, but the recipe requires {recipe_version}: pin an image with {recipe_version} (reprove never switches toolchains)")]
    GoVersionMismatch {
        /// The image.
        image: String,
        /// What the image has.
        image_version: String,
        /// What the recipe requires.
        recipe_version: String,
    },
    /// The recipe inputs of the commit (`reprove.toml`, `.goreleaser.yaml`,
    /// `REPROVE_*`, flags) are invalid.
    #[error("recipe: {0}")]
    Recipe(#[from] ::recipe::ResolveError),
    /// The commit's own recipe files set values that make the build run or
    /// read what they name, and the verifier did not allow them.
    #[error("recipe: {0}")]
    RecipeExec(#[from] ::recipe::ExecRefused),
    /// Recipe fields nothing determined: nothing is built.
    #[error("the recipe is incomplete, nothing was built: {}", fields.iter().map(|u| format!("{}: {}", u.field, u.reason)).collect::<Vec<_>>().join("; "))]
    Undetermined {
        /// Each field, with how to supply it.
        fields: Vec<::recipe::Undetermined>,
    },
    /// No `--toolchain` and no `reprove.lock` in the commit.
    #[error("no toolchain: give --toolchain IMAGE@sha256:…, or commit a reprove.lock (reprove toolchain lock {} IMAGE)", go_version.as_deref().unwrap_or("GOVERSION"))]
    NoToolchain {
        /// The recipe's Go version, when known.
        go_version: Option<String>,
    },
    /// The commit's `reprove.lock` cannot give the toolchain.
    #[error("{0}")]
    Lock(#[from] ::recipe::LockError),
    /// The commit has a `reprove.lock` but the recipe's Go version is unknown.
    #[error("the commit has a reprove.lock, but the recipe's Go version is undetermined: give --go-version, go_version in reprove.toml, a reference with build info, or --toolchain")]
    LockNeedsGoVersion,
    /// VCS stamping needs git inside the toolchain image.
    #[error("the recipe stamps VCS information (-buildvcs=true, or vcs.* settings in the reference's build info), which needs git inside the toolchain image, and {image} has no git on its PATH: build the toolchain image on a base image with git (reprove toolchain build --base IMAGE@DIGEST), or pass --buildvcs false if the release was built without stamping")]
    VcsNeedsGit {
        /// The image.
        image: String,
    },
    /// The sandbox could not run the build.
    #[error("sandbox: {0}")]
    Sandbox(#[from] sandbox::Error),
    /// `go build` failed.
    #[error("go build {status}: {output}")]
    BuildFailed {
        /// How it ended.
        status: String,
        /// The end of its output.
        output: String,
        /// The classified failure.
        code: FetchCode,
        /// Whether it timed out or was killed rather than failing.
        infrastructure: bool,
    },
    /// The build succeeded but wrote no binary.
    #[error("go build wrote no binary at {0}")]
    NoOutput(PathBuf),
    /// The build's output is not a regular file of its own (a symlink, a hard
    /// link to another file, a FIFO, a device, a directory) or is too large:
    /// something in the sandbox replaced what `go build` wrote.
    #[error("the build output {path} was tampered with: {reason}; it was not read, and there is no verdict")]
    OutputTampered {
        /// The output file on the host.
        path: PathBuf,
        /// What it is instead of a regular single-linked file within the limit.
        reason: confined::ConfinedError,
    },
    /// The `--keep` directory has content: nothing is written into it.
    #[error("--keep {0}: the directory is not empty; name a new or empty directory")]
    KeepNotEmpty(PathBuf),
    /// The `--keep` path is a symlink (or not a directory): nothing is written through it.
    #[error("--keep {0}: is a symlink or not a directory; name a new or empty directory itself, not a link to one")]
    KeepNotDirectory(PathBuf),
    /// Interrupted.
    #[error("interrupted: the build was stopped and cleaned up")]
    Cancelled,
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What reprove was doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RebuildError {
    fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> RebuildError {
        RebuildError::Io { action, path: path.into(), source }
    }

    /// The class of the failure.
    pub fn class(&self) -> Class {
        match self {
            RebuildError::Reference { .. }
            | RebuildError::ReferenceInImage { .. }
            | RebuildError::DirtyTree { .. }
            | RebuildError::GoMod(_)
            | RebuildError::MissingGoSum { .. }
            | RebuildError::Workspace { .. }
            | RebuildError::GoWorkValue(_)
            | RebuildError::NoGo { .. }
            | RebuildError::GoVersionMismatch { .. }
            | RebuildError::VcsNeedsGit { .. }
            | RebuildError::Recipe(_)
            | RebuildError::RecipeExec(_)
            | RebuildError::Undetermined { .. }
            | RebuildError::NoToolchain { .. }
            | RebuildError::LockNeedsGoVersion
            | RebuildError::KeepNotEmpty(_)
            | RebuildError::KeepNotDirectory(_) => Class::Input,
            RebuildError::Lock(e) if e.is_input() => Class::Input,
            RebuildError::Source(e) if e.is_input() => Class::Input,
            RebuildError::Source(e) if e.is_security() => Class::Security,
            RebuildError::Toolchain(e) if e.is_input() => Class::Input,
            RebuildError::Sandbox(e) if e.is_input() => Class::Input,
            RebuildError::Download(DownloadError::Cache { .. } | DownloadError::Setup(_)) => Class::Infrastructure,
            RebuildError::Download(_) => Class::Input,
            RebuildError::Security { .. } | RebuildError::OutputTampered { .. } => Class::Security,
            RebuildError::Modules { failures } if failures.iter().any(|f| f.security) => Class::Security,
            RebuildError::Modules { failures } if failures.iter().all(|f| !f.code.is_infrastructure()) => Class::Input,
            RebuildError::BuildFailed { infrastructure: false, .. } => Class::Input,
            _ => Class::Infrastructure,
        }
    }

    /// A stable code for the report.
    pub fn code(&self) -> Code {
        match self {
            RebuildError::Reference { .. } | RebuildError::ReferenceInImage { .. } => Code::ReferenceUnreadable,
            RebuildError::Source(SourceError::Clone { .. }) => Code::CloneFailed,
            RebuildError::Source(SourceError::Auth { .. }) => Code::CloneAuthFailed,
            RebuildError::Source(SourceError::HostKey { problem, .. }) => match **problem {
                HostKeyProblem::Unknown { .. } => Code::SshHostKeyUnknown,
                _ => Code::SshHostKeyRefused,
            },
            RebuildError::Source(SourceError::Certificate { .. }) => Code::TlsCertificateUntrusted,
            RebuildError::Source(SourceError::Revision { .. }) => Code::UnknownRevision,
            RebuildError::Source(SourceError::UnsafeEntry { .. }) => Code::UnsafeTree,
            RebuildError::Source(SourceError::MalformedTree { .. }) => Code::MalformedTree,
            RebuildError::Source(SourceError::BlobTooLarge { .. }) => Code::BlobTooLarge,
            RebuildError::Source(_) => Code::Source,
            RebuildError::DirtyTree { .. } => Code::DirtyTree,
            RebuildError::GoMod(_) => Code::GoMod,
            RebuildError::MissingGoSum { .. } => fetch_code(FetchCode::MissingGoSum),
            RebuildError::Workspace { .. } => Code::GoWorkspace,
            RebuildError::GoWorkValue(_) => Code::Recipe,
            RebuildError::Download(_) => Code::ModuleDownload,
            RebuildError::Security { .. } => fetch_code(FetchCode::ChecksumMismatch),
            RebuildError::Modules { failures } => {
                failures.iter().find(|f| f.security).or(failures.first()).map_or(Code::Modules, |f| fetch_code(f.code))
            }
            RebuildError::Toolchain(ToolchainError::NotPinned { .. }) => Code::ToolchainNotPinned,
            RebuildError::Toolchain(ToolchainError::DigestMismatch { .. }) => Code::ToolchainDigestMismatch,
            RebuildError::Toolchain(_) => Code::Toolchain,
            RebuildError::NoGo { .. } => Code::ToolchainWithoutGo,
            RebuildError::GoVersionMismatch { .. } => Code::GoVersionMismatch,
            RebuildError::VcsNeedsGit { .. } => Code::VcsNeedsGit,
            RebuildError::Sandbox(_) => Code::Sandbox,
            RebuildError::BuildFailed { code: FetchCode::Unknown, .. } => Code::BuildFailed,
            RebuildError::BuildFailed { code, .. } => fetch_code(*code),
            RebuildError::NoOutput(_) => Code::BuildFailed,
            RebuildError::OutputTampered { .. } => Code::OutputTampered,
            RebuildError::KeepNotEmpty(_) => Code::KeepNotEmpty,
            RebuildError::KeepNotDirectory(_) => Code::KeepNotDirectory,
            RebuildError::Recipe(_) => Code::Recipe,
            RebuildError::RecipeExec(_) => Code::RecipeExecRefused,
            RebuildError::Undetermined { .. } => Code::RecipeUndetermined,
            RebuildError::NoToolchain { .. } => Code::NoToolchain,
            RebuildError::Lock(::recipe::LockError::MissingVersion { .. }) => Code::LockMissingVersion,
            RebuildError::Lock(_) | RebuildError::LockNeedsGoVersion => Code::Lock,
            RebuildError::Cancelled => Code::Interrupted,
            RebuildError::Io { .. } => Code::Io,
        }
    }

    fn remediation(&self) -> Option<String> {
        match self {
            RebuildError::MissingGoSum { .. } => Some(FetchCode::MissingGoSum.remediation().into()),
            RebuildError::Workspace { .. } => Some(
                "commit the go.work (and go.work.sum) the release was built with at the repository root, and do not \
                 set GOWORK=off; or verify a release built with GOWORK=off"
                    .into(),
            ),
            RebuildError::Security { .. } => Some(FetchCode::ChecksumMismatch.remediation().into()),
            RebuildError::Modules { failures } => {
                failures.iter().find(|f| f.security).or(failures.first()).map(|f| f.code.remediation().to_string())
            }
            RebuildError::BuildFailed { code, .. } if *code != FetchCode::Unknown => Some(code.remediation().into()),
            RebuildError::Lock(::recipe::LockError::MissingVersion { version, .. }) => {
                Some(format!("reprove toolchain lock {version} IMAGE, and commit reprove.lock; or give --toolchain"))
            }
            RebuildError::RecipeExec(e) => Some(format!(
                "remove {} from the commit's recipe files, or let the verifier allow recipe values that run code",
                e.values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )),
            RebuildError::Undetermined { fields } => Some(format!(
                "supply {} with a flag, in reprove.toml or in .goreleaser.yaml",
                fields.iter().map(|u| u.field.as_str()).collect::<Vec<_>>().join(", ")
            )),
            _ => None,
        }
    }

    fn modules(&self) -> Vec<String> {
        match self {
            RebuildError::MissingGoSum { modules } => modules.clone(),
            RebuildError::Workspace { modules, .. } => modules.clone(),
            RebuildError::Security { errors } => {
                errors.iter().map(|e| format!("{}@{}", e.module.path, e.module.version)).collect()
            }
            RebuildError::Modules { failures } => {
                let mut m: Vec<String> =
                    failures.iter().map(|f| format!("{}@{}", f.module.path, f.module.version)).collect();
                m.dedup();
                m
            }
            _ => Vec::new(),
        }
    }
}

/// The report's code for a `modfetch::failure` code: the same string (the
/// tests check every code).
pub fn fetch_code(code: FetchCode) -> Code {
    match code {
        FetchCode::GitAuth => Code::GitAuth,
        FetchCode::GitHostKey => Code::GitHostKey,
        FetchCode::GitRepoNotFound => Code::GitRepoNotFound,
        FetchCode::GitNetwork => Code::GitNetwork,
        FetchCode::GitResources => Code::GitResources,
        FetchCode::GitExit128 => Code::GitExit128,
        FetchCode::NotFound => Code::NotFound,
        FetchCode::Auth => Code::Auth,
        FetchCode::Tls => Code::Tls,
        FetchCode::Dns => Code::Dns,
        FetchCode::Timeout => Code::Timeout,
        FetchCode::Connect => Code::Connect,
        FetchCode::HttpStatus => Code::HttpStatus,
        FetchCode::BadResponse => Code::BadResponse,
        FetchCode::ChecksumMismatch => Code::ChecksumMismatch,
        FetchCode::MissingGoSum => Code::MissingGoSum,
        FetchCode::ToolchainMismatch => Code::ToolchainMismatch,
        FetchCode::SumDb => Code::SumDb,
        FetchCode::LookupDisabled => Code::LookupDisabled,
        // `modfetch::failure::Code` is non-exhaustive; a code added there
        // fails `every_fetch_code_has_its_report_code` until it is mapped.
        _ => Code::Unknown,
    }
}

/// The exit class of a report: `None` for a verdict (0 or 1), else the class
/// of its failure (2 for input, 3 otherwise).
pub fn exit_class(r: &v1::Report) -> Option<Class> {
    if r.verdict != Verdict::Error {
        return None;
    }
    Some(r.error.as_ref().map_or(Class::Infrastructure, |e| e.class))
}

fn now_rfc3339() -> String {
    stdx::time::format_rfc3339(stdx::time::now_unix())
}

fn invocation_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    hex::encode(b)
}

/// The work directory: `--keep DIR`, or a temporary directory below the cache.
enum WorkDir {
    Kept(PathBuf),
    /// Below the cache, with the lock that tells `toolchain gc` the run lives (`workdirs`).
    Temp {
        dir: tempfile::TempDir,
        _lock: std::fs::File,
    },
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(p) => p,
            WorkDir::Temp { dir, .. } => dir.path(),
        }
    }

    fn new(keep: Option<&Path>, cache_dir: &Path) -> Result<WorkDir, RebuildError> {
        if let Some(dir) = keep {
            // A symlink planted where the directory is expected (a CI checkout) is
            // refused, not followed: its final component is opened with O_NOFOLLOW.
            if std::fs::symlink_metadata(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                std::fs::create_dir_all(dir).map_err(|e| RebuildError::io("create", dir, e))?;
            }
            let opened = confined::ConfinedDir::open(dir).map_err(|e| match e {
                confined::ConfinedError::Io { source, .. } => RebuildError::io("open", dir, source),
                _ => RebuildError::KeepNotDirectory(dir.to_path_buf()),
            })?;
            drop(opened);
            let empty = std::fs::read_dir(dir).map_err(|e| RebuildError::io("read", dir, e))?.next().is_none();
            if !empty {
                return Err(RebuildError::KeepNotEmpty(dir.to_path_buf()));
            }
            let abs = std::path::absolute(dir).map_err(|e| RebuildError::io("resolve", dir, e))?;
            return Ok(WorkDir::Kept(abs));
        }
        let parent = cache_dir.join("work");
        std::fs::create_dir_all(&parent).map_err(|e| RebuildError::io("create", &parent, e))?;
        let t = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(&parent)
            .map_err(|e| RebuildError::io("create a directory in", &parent, e))?;
        let lock = workdirs::lock(t.path()).map_err(|e| RebuildError::io("lock", t.path(), e))?;
        Ok(WorkDir::Temp { dir: t, _lock: lock })
    }
}

/// The pipeline's state as it goes, turned into the report at the end.
struct Run<'a> {
    req: &'a Request,
    progress: &'a dyn Progress,
    report: v1::Report,
}

impl Run<'_> {
    fn step<T>(
        &mut self,
        step: Step,
        f: impl FnOnce(&mut Self) -> Result<T, RebuildError>,
    ) -> Result<T, (Step, RebuildError)> {
        self.progress.start(step);
        let t = Instant::now();
        let out = f(self);
        let elapsed = t.elapsed();
        self.progress.finish(step, elapsed);
        self.report.timings.push(v1::Timing { step, ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX) });
        out.map_err(|e| (step, e))
    }
}

/// The report before any step ran.
fn empty_report(req: &Request) -> v1::Report {
    v1::Report {
        schema_version: v1::SCHEMA_VERSION,
        invocation_id: invocation_id(),
        verdict: Verdict::Error,
        summary: String::new(),
        started_on: now_rfc3339(),
        finished_on: String::new(),
        subject: v1::Subject { name: String::new(), sha256: String::new() },
        inputs: v1::Inputs {
            source: v1::Source {
                uri: req.source.clone(),
                rev: req.rev.clone(),
                commit: None,
                commit_time: None,
                tags: Vec::new(),
                dirty: false,
                dirty_paths: Vec::new(),
                submodules: Vec::new(),
                escaping_symlinks: Vec::new(),
            },
            go_mod: None,
            go_sum: None,
            reference: v1::Reference { path: None, sha256: String::new(), size: None, go_version: None },
            toolchain: v1::Toolchain {
                image: req.toolchain.as_ref().map(ToString::to_string).unwrap_or_default(),
                digest: req.toolchain.as_ref().map(|t| t.digest().to_string()).unwrap_or_default(),
                manifest_digest: None,
                go_version: None,
                from: req.toolchain.as_ref().map(|_| "flag".to_string()),
            },
            workspace: None,
        },
        recipe: report_recipe(&Recipe::new(".", "", ""), &[], &Default::default()),
        rebuilt: None,
        causes: Vec::new(),
        modules: Vec::new(),
        module_findings: Vec::new(),
        timings: Vec::new(),
        error: None,
        warnings: Vec::new(),
        tools: v1::Tools { reprove: req.tool_version.clone(), go: None, runtime: None },
    }
}

/// Runs the whole pipeline. Never fails: a failure is a report with verdict `error`.
pub fn verify(req: &Request, progress: &dyn Progress, cancel: &CancelToken) -> v1::Report {
    let report = empty_report(req);
    let mut run = Run { req, progress, report };
    if let Err((step, e)) = pipeline(&mut run, cancel) {
        let r = &mut run.report;
        r.verdict = Verdict::Error;
        r.summary = format!("no verdict: the {step} step failed: {}", first_line(&e.to_string()));
        r.error = Some(v1::Failure {
            step,
            class: e.class(),
            code: e.code(),
            message: e.to_string(),
            remediation: e.remediation(),
            modules: e.modules(),
        });
    }
    run.report.finished_on = now_rfc3339();
    run.report
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// What steps 1 to 5 leave for the build.
struct Prepared {
    work: WorkDir,
    src_dir: PathBuf,
    modcache: PathBuf,
    pulled: oci::PulledImage,
    _guard: oci::StoreGuard,
    recipe: Recipe,
    toolchain: PinnedImage,
    mods: gosum::Checked,
    reference: Option<Vec<u8>>,
    reference_bi: Option<BuildInfo>,
    /// The workspace's go.work (relative to the source root) when the build uses one.
    go_work: Option<String>,
    /// The Git tree id of the source.
    tree: String,
}

/// Steps 1 to 5: reference, source, go.sum, modules, toolchain.
fn prepare(run: &mut Run<'_>) -> Result<Prepared, (Step, RebuildError)> {
    let req = run.req;
    // 1. The reference.
    let reference: Option<Vec<u8>> = run.step(Step::Reference, |run| match &req.reference {
        ReferenceInput::File(path) => {
            // A regular file only (a device or FIFO is refused before it is opened), bounded.
            let data = confined::open_regular_file(path)
                .and_then(|f| confined::read_bounded(f, &path.display().to_string(), MAX_REFERENCE))
                .map_err(|e| RebuildError::Reference { path: path.clone(), source: std::io::Error::other(e) })?;
            let r = &mut run.report.inputs.reference;
            r.path = Some(path.display().to_string());
            r.sha256 = stdx::sha256_hex(&data);
            r.size = Some(data.len() as u64);
            Ok(Some(data))
        }
        ReferenceInput::Digest(hex) => {
            run.report.inputs.reference.sha256 = hex.clone();
            Ok(None)
        }
        ReferenceInput::None => Ok(None),
        ReferenceInput::Image { image, path } => {
            let store = Store::open(&req.cache_dir)?;
            let _guard = store.hold()?;
            let pulled = match store.get(image.reference(), None)? {
                Some(p) => p,
                None => {
                    let options = PullOptions { registry: req.registry.clone(), ..PullOptions::default() };
                    store.pull_blocking(&req.io, image.reference(), &options)?
                }
            };
            let data = oci::read_file_in_image(&pulled, path, MAX_REFERENCE).map_err(|e| {
                RebuildError::ReferenceInImage { image: image.to_string(), path: path.clone(), reason: e.to_string() }
            })?;
            let r = &mut run.report.inputs.reference;
            r.path = Some(format!("oci://{image}#{path}"));
            r.sha256 = stdx::sha256_hex(&data);
            r.size = Some(data.len() as u64);
            Ok(Some(data))
        }
    })?;
    run.report.subject.sha256 = run.report.inputs.reference.sha256.clone();
    let reference_bi: Option<BuildInfo> = reference.as_deref().and_then(|d| goinfo::read_build_info(d).ok());
    if reference.is_some() && reference_bi.is_none() {
        run.report.warnings.push("the reference has no readable Go build info: the recipe comes from flags".into());
    }
    run.report.inputs.reference.go_version = reference_bi.as_ref().map(|b| b.go_version.to_string());

    let work = WorkDir::new(req.keep.as_deref(), &req.cache_dir).map_err(|e| (Step::Reference, e))?;
    let src_dir = work.path().join("src");

    // 2. The source.
    let source = run.step(Step::Source, |run| {
        let source = Source::open(&req.source, work.path())?;
        let commit = source.resolve(&req.rev)?;
        let s = &mut run.report.inputs.source;
        s.uri = source.uri().to_string();
        s.commit = Some(commit.id.clone());
        s.commit_time = Some(commit.time_rfc3339.clone());
        s.tags = commit.tags.clone();
        if commit.is_worktree_head {
            let dirty = source.dirty_paths()?;
            if !dirty.is_empty() {
                if !req.allow_dirty {
                    return Err(RebuildError::DirtyTree {
                        worktree: source.worktree().map(Path::to_path_buf).unwrap_or_default(),
                        paths: dirty,
                    });
                }
                s.dirty = true;
                s.dirty_paths = dirty;
                run.report.warnings.push(
                    "the working tree has uncommitted changes (--allow-dirty): the rebuild used the commit's tree, not the working tree".into(),
                );
            }
        }
        // The recipe comes from the commit's own files: export its tree first.
        let mut export = source.export(&commit, &src_dir)?;
        let resolved = recipe::resolve_for_commit(&src_dir, &req.recipe, reference_bi.as_ref(), &commit)?;
        let recipe = resolved.recipe;
        run.report.subject.name = recipe.output_name.clone();
        run.report.recipe = report_recipe(&recipe, &[], &Default::default());
        if !req.recipe.allow_exec {
            ::recipe::refuse_from_commit(&recipe)?;
        }
        let tree = source.tree_id(&commit)?;
        if !recipe.undetermined.is_empty() {
            return Err(RebuildError::Undetermined { fields: recipe.undetermined.clone() });
        }
        // VCS stamping needs a clean checkout with .git; otherwise the build sees no .git.
        if recipe.buildvcs == BuildVcs::True {
            std::fs::remove_dir_all(&src_dir).map_err(|e| RebuildError::io("remove", &src_dir, e))?;
            export = source.checkout(&commit, &src_dir)?;
        }
        // The toolchain: --toolchain, else the commit's reprove.lock for the recipe's Go version.
        let toolchain = match &req.toolchain {
            Some(t) => t.clone(),
            None => {
                let has_lock = ::recipe::LockFile::exists(&src_dir)?;
                if has_lock && recipe.go_version.is_none() {
                    return Err(RebuildError::LockNeedsGoVersion);
                }
                let t = ::recipe::locked_toolchain(&src_dir, &recipe)?
                    .ok_or_else(|| RebuildError::NoToolchain { go_version: recipe.go_version.clone() })?;
                let r = &mut run.report.inputs.toolchain;
                r.image = t.to_string();
                r.digest = t.digest().to_string();
                r.from = Some(::recipe::lock::LOCK_FILE_NAME.to_string());
                t
            }
        };
        let s = &mut run.report.inputs.source;
        s.submodules =
            export.submodules.iter().map(|m| v1::Submodule { path: m.path.clone(), commit: m.commit.clone() }).collect();
        s.escaping_symlinks = export.symlinks.iter().filter(|l| l.escapes).map(|l| l.path.clone()).collect();
        for m in &export.submodules {
            run.report.warnings.push(format!(
                "submodule {} (commit {}) is not part of the rebuild: the build sees an empty directory",
                m.path, m.commit
            ));
        }
        for l in export.symlinks.iter().filter(|l| l.escapes) {
            run.report.warnings.push(format!(
                "symlink {} points outside the source tree ({}); inside the sandbox it resolves in the toolchain image",
                l.path, l.target
            ));
        }
        Ok((recipe, toolchain, tree))
    })?;
    let (mut recipe, toolchain, tree) = source;

    // 3. go.mod and go.sum (of the workspace, when the build uses one).
    let mods = run.step(Step::GoSum, |run| {
        let has_go_work = gosum::has_file(&src_dir, "go.work")?;
        let devel = reference_bi.as_ref().map(gosum::workspace_deps).unwrap_or_default();
        let workspace = gosum::use_workspace(
            recipe.env.get("GOWORK").map(String::as_str),
            has_go_work,
            reference_bi.is_some(),
            &devel,
        )?;
        let checked = if workspace {
            let checked = gosum::check_workspace(&src_dir)?;
            if let Some(w) = &checked.workspace {
                let unknown: Vec<&String> =
                    devel.iter().filter(|d| !w.report.modules.iter().any(|m| &m.path == *d)).collect();
                if !unknown.is_empty() {
                    run.report.warnings.push(format!(
                        "the reference records {} as (devel), but the commit's go.work does not use {}",
                        unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                        if unknown.len() == 1 { "it" } else { "them" }
                    ));
                }
                run.report.warnings.push(format!(
                    "built in the commit's go.work workspace ({} modules: {}){}",
                    w.report.modules.len(),
                    w.report.modules.iter().map(|m| m.path.as_str()).collect::<Vec<_>>().join(", "),
                    if recipe.env.contains_key("GOWORK") {
                        " as the recipe's GOWORK says"
                    } else if reference_bi.is_some() {
                        " as the reference's (devel) dependencies show"
                    } else {
                        ", as go build at the repository root does; --env GOWORK=off builds the module alone"
                    }
                ));
                run.report.inputs.workspace = Some(w.report.clone());
            }
            checked
        } else {
            // With -modfile, go reads that file and its .sum instead of go.mod and go.sum.
            let checked = match recipe.exec.iter().find(|e| e.flag == "-modfile") {
                Some(m) => gosum::check_modfile(&src_dir, &gosum::modfile_in_tree(&m.value, build::SRC)?)?,
                None => gosum::check(&src_dir)?,
            };
            if has_go_work {
                run.report.warnings.push(
                    "the commit has a go.work file, but the rebuild ignores it (GOWORK=off): the reference records no \
                     workspace module as (devel), or the recipe sets GOWORK=off; --env GOWORK=go.work builds in the workspace"
                        .into(),
                );
            }
            checked
        };
        run.report.inputs.go_mod = Some(checked.go_mod_digest.clone());
        run.report.inputs.go_sum = checked.go_sum_digest.clone();
        run.report.warnings.extend(checked.warnings.iter().cloned());
        Ok(checked)
    })?;

    // 4. Modules: in a workspace, the build list of a stand-in main module
    // with the union of the workspace's requirements and go.sum files.
    let modcache = req.cache_dir.join("modcache");
    run.step(Step::Modules, |_run| {
        std::fs::create_dir_all(&modcache).map_err(|e| RebuildError::io("create", &modcache, e))?;
        if mods.requires == 0 {
            return Ok(());
        }
        let main_dir = match &mods.workspace {
            Some(w) => {
                let d = work.path().join("workspace");
                std::fs::create_dir_all(&d).map_err(|e| RebuildError::io("create", &d, e))?;
                for (name, data) in [("go.mod", w.download_go_mod.as_bytes()), ("go.sum", &w.download_go_sum[..])] {
                    let f = d.join(name);
                    std::fs::write(&f, data).map_err(|e| RebuildError::io("write", &f, e))?;
                }
                d
            }
            // -modfile: the requirements and sums of the files go reads, from a stand-in main module.
            None if mods.go_mod_digest.path != "go.mod" => {
                let d = work.path().join("modfile");
                std::fs::create_dir_all(&d).map_err(|e| RebuildError::io("create", &d, e))?;
                // Read as the go-sum step read them: confined to the tree, bounded.
                let tree = confined::ConfinedDir::open_followed(&src_dir).map_err(gosum::refused)?;
                let files = [
                    (Some(&mods.go_mod_digest), confined::limits::CONFIG),
                    (mods.go_sum_digest.as_ref(), confined::limits::SUMS),
                ];
                for (name, (from, limit)) in ["go.mod", "go.sum"].into_iter().zip(files) {
                    if let Some(from) = from {
                        let data = tree.read(&from.path, limit).map_err(gosum::refused)?;
                        let dst = d.join(name);
                        std::fs::write(&dst, data).map_err(|e| RebuildError::io("write", &dst, e))?;
                    }
                }
                d
            }
            None => src_dir.clone(),
        };
        let mut env = req.go_env.clone();
        env.set("GOMODCACHE", &modcache.display().to_string());
        let opts = DownloadOptions { source_tree: Some(src_dir.clone()), ..req.download.clone() };
        let rep = download::download(&req.io, &main_dir, &env, &opts, req.sumdb.clone(), Arc::new(download::Quiet))?;
        if !rep.security.is_empty() {
            return Err(RebuildError::Security { errors: rep.security });
        }
        if !rep.failures.is_empty() {
            return Err(RebuildError::Modules { failures: rep.failures });
        }
        Ok(())
    })?;

    // 5. The toolchain.
    let store = Store::open(&req.cache_dir).map_err(|e| (Step::Toolchain, e.into()))?;
    let (pulled, _guard) = run.step(Step::Toolchain, |run| {
        let guard = store.hold()?;
        let pulled = match store.get(toolchain.reference(), None)? {
            Some(p) => p,
            None => {
                let options = PullOptions { registry: req.registry.clone(), ..PullOptions::default() };
                store.pull_blocking(&req.io, toolchain.reference(), &options)?
            }
        };
        let t = &mut run.report.inputs.toolchain;
        t.manifest_digest = Some(pulled.manifest_digest.to_string());
        t.go_version = pulled.go_version.clone();
        run.report.tools.go = pulled.go_version.clone();
        run.report.warnings.extend(pulled.warnings.iter().cloned());
        let Some(image_version) = pulled.go_version.clone() else {
            return Err(RebuildError::NoGo { image: toolchain.to_string() });
        };
        match &recipe.go_version {
            Some(v) if *v != image_version => {
                return Err(RebuildError::GoVersionMismatch {
                    image: toolchain.to_string(),
                    image_version,
                    recipe_version: v.clone(),
                })
            }
            Some(_) => {}
            None => {
                recipe.go_version = Some(image_version);
                recipe.origins.insert("go_version".into(), ::recipe::Origin::Default);
            }
        }
        if recipe.buildvcs == BuildVcs::True && !build::has_git(&pulled) {
            return Err(RebuildError::VcsNeedsGit { image: toolchain.to_string() });
        }
        Ok((pulled, guard))
    })?;
    let go_work = mods.workspace.as_ref().map(|w| w.report.go_work.path.clone());
    Ok(Prepared {
        work,
        src_dir,
        modcache,
        pulled,
        _guard,
        recipe,
        toolchain,
        mods,
        reference,
        reference_bi,
        go_work,
        tree,
    })
}

fn pipeline(run: &mut Run<'_>, cancel: &CancelToken) -> Result<(), (Step, RebuildError)> {
    let req = run.req;
    let Prepared {
        work,
        src_dir,
        modcache,
        pulled,
        _guard,
        recipe,
        toolchain,
        mods,
        reference,
        reference_bi,
        go_work,
        tree,
    } = prepare(run)?;
    // 6. The build.
    let out_dir = work.path().join("out");
    let plan = build::plan(&recipe, &pulled, &toolchain, &req.cache_dir, go_work.as_deref(), &tree);
    run.report.recipe = report_recipe(&recipe, &plan.go_args, &plan.env);
    let rebuilt = run.step(Step::Build, |run| {
        std::fs::create_dir_all(&out_dir).map_err(|e| RebuildError::io("create", &out_dir, e))?;
        let built = build::run(&plan, &pulled, &src_dir, &modcache, &out_dir, req, cancel)?;
        if req.keep.is_some() {
            build::keep_output(&out_dir, &plan.output_name, &built.bytes)?;
        }
        run.report.tools.runtime = Some(built.runtime.clone());
        Ok(built)
    })?;

    // 7. Compare.
    run.step(Step::Compare, |run| {
        // The bytes read once from the checked descriptor, after the sandbox was gone.
        let data = rebuilt.bytes;
        let sha = stdx::sha256_hex(&data);
        run.report.rebuilt = Some(v1::Artifact {
            sha256: sha.clone(),
            size: data.len() as u64,
            path: req.keep.as_ref().map(|_| rebuilt.path.display().to_string()),
        });
        let rebuilt_bi = goinfo::read_build_info(&data).ok();
        run.report.modules = judge::modules(rebuilt_bi.as_ref().or(reference_bi.as_ref()), mods.go_sum.as_ref());
        run.report.module_findings =
            judge::module_findings(mods.go_sum.as_ref(), reference_bi.as_ref(), rebuilt_bi.as_ref());
        let reference_sha = run.report.inputs.reference.sha256.clone();
        let (verdict, causes) = judge::verdict(reference.as_deref(), &reference_sha, &data, &sha);
        run.report.causes = causes;
        run.report.summary = judge::summary(verdict, &run.report);
        run.report.verdict = verdict;
        Ok(())
    })?;
    Ok(())
}

fn report_recipe(r: &Recipe, go_args: &[String], build_env: &std::collections::BTreeMap<String, String>) -> v1::Recipe {
    let arch_level = recipe::ARCH_LEVEL_VARS.iter().find_map(|k| r.env.get(*k).map(|v| format!("{k}={v}")));
    v1::Recipe {
        package: r.package.clone(),
        goos: r.goos.clone(),
        goarch: r.goarch.clone(),
        arch_level,
        env: r.env.clone(),
        trimpath: r.trimpath,
        ldflags: r.ldflags.clone(),
        gcflags: r.gcflags.clone(),
        tags: r.tags.clone(),
        buildmode: r.buildmode.clone(),
        buildvcs: r.buildvcs.as_str().into(),
        output_name: r.output_name.clone(),
        go_version: r.go_version.clone(),
        go_args: go_args.to_vec(),
        build_env: build_env.clone(),
        origins: r.origins.iter().map(|(k, v)| (k.clone(), recipe::origin_text(v))).collect(),
        conflicts: r
            .conflicts
            .iter()
            .map(|c| v1::Conflict {
                field: c.field.clone(),
                used: c.used.clone(),
                used_origin: recipe::origin_text(&c.used_origin),
                overridden: c.overridden.clone(),
                overridden_origin: recipe::origin_text(&c.overridden_origin),
            })
            .collect(),
        notes: r.notes.clone(),
        exec: r
            .exec
            .iter()
            .map(|e| v1::ExecFlag {
                flag: e.flag.clone(),
                value: e.value.clone(),
                origin: recipe::origin_text(&e.origin),
            })
            .collect(),
        undetermined: r
            .undetermined
            .iter()
            .map(|u| v1::Undetermined { field: u.field.clone(), reason: u.reason.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `modfetch::failure` code reaches the report as itself.
    #[test]
    fn every_fetch_code_has_its_report_code() {
        for &code in modfetch::failure::ALL_CODES {
            assert_eq!(fetch_code(code).as_str(), code.as_str(), "{code:?}");
        }
    }

    /// A report's exit class is its failure's class; a verdict has none.
    #[test]
    fn exit_class_follows_the_failure() {
        let mut r: v1::Report =
            match serde_json::from_str(include_str!("../../../tests/fixtures/report/not-reproduced.json")) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
        assert_eq!(exit_class(&r), None);
        r.verdict = Verdict::Error;
        assert_eq!(exit_class(&r), Some(Class::Infrastructure));
        for class in Class::ALL {
            r.error = Some(v1::Failure {
                step: Step::Source,
                class: *class,
                code: Code::Source,
                message: String::new(),
                remediation: None,
                modules: Vec::new(),
            });
            assert_eq!(exit_class(&r), Some(*class));
        }
    }
}
