//! Why a rebuild reaches no verdict: [`RebuildError`], with the class, the
//! stable code and the remediation the report gives it.

use std::path::PathBuf;

use modfetch::download::{self, DownloadError, SecurityError};
use modfetch::failure::Code as FetchCode;
use oci::ToolchainError;
use report::v1::{self, Class, Code, Verdict};
use source::{HostKeyProblem, SourceError};
use stdx::setting::Setting;

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
    #[error("the working tree {worktree} has uncommitted changes ({}); commit them, or pass {} to rebuild the commit anyway", paths.join(", "), Setting::AllowDirty)]
    DirtyTree {
        /// The working tree.
        worktree: PathBuf,
        /// The changed paths.
        paths: Vec<String>,
    },
    /// go.mod or go.sum cannot be used.
    #[error("{0}")]
    GoMod(String),
    /// The released module version to rebuild cannot be used (not a valid
    /// module version, not the reference's main module, no recorded sum).
    #[error("module source: {0}")]
    ModuleSource(String),
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
    #[error("no toolchain: give {} IMAGE@sha256:…, or commit a reprove.lock (reprove toolchain lock {} IMAGE)", Setting::Toolchain, go_version.as_deref().unwrap_or("GOVERSION"))]
    NoToolchain {
        /// The recipe's Go version, when known.
        go_version: Option<String>,
    },
    /// The commit's `reprove.lock` cannot give the toolchain.
    #[error("{0}")]
    Lock(#[from] ::recipe::LockError),
    /// The commit has a `reprove.lock` but the recipe's Go version is unknown.
    #[error("the commit has a reprove.lock, but the recipe's Go version is undetermined: give {}, go_version in reprove.toml, a reference with build info, or {}", Setting::GoVersion, Setting::Toolchain)]
    LockNeedsGoVersion,
    /// VCS stamping needs git inside the toolchain image.
    #[error("the recipe stamps VCS information (-buildvcs=true, or vcs.* settings in the reference's build info), which needs git inside the toolchain image, and {image} has no git on its PATH: build the toolchain image on a base image with git ({} IMAGE@DIGEST), or pass {} false if the release was built without stamping", Setting::ToolchainBase, Setting::Buildvcs)]
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
    #[error("{} {}: the directory is not empty; name a new or empty directory", Setting::Keep, .0.display())]
    KeepNotEmpty(PathBuf),
    /// The `--keep` path is a symlink (or not a directory): nothing is written through it.
    #[error("{} {}: is a symlink or not a directory; name a new or empty directory itself, not a link to one", Setting::Keep, .0.display())]
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
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> RebuildError {
        RebuildError::Io { action, path: path.into(), source }
    }

    /// The class of the failure.
    pub fn class(&self) -> Class {
        match self {
            RebuildError::Reference { .. }
            | RebuildError::ReferenceInImage { .. }
            | RebuildError::DirtyTree { .. }
            | RebuildError::GoMod(_)
            | RebuildError::ModuleSource(_)
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
            RebuildError::ModuleSource(_) => Code::Source,
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

    pub(crate) fn remediation(&self) -> Option<String> {
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
            RebuildError::Lock(::recipe::LockError::MissingVersion { version, .. }) => Some(format!(
                "reprove toolchain lock {version} IMAGE, and commit reprove.lock; or give {}",
                Setting::Toolchain
            )),
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

    pub(crate) fn modules(&self) -> Vec<String> {
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
