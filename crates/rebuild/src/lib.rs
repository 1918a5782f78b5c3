//! The rebuild: from a Git commit (or a released module version), a
//! reference binary and a pinned toolchain to a verdict.
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
//! The steps, one module each under [`steps`], each timed, each returning a
//! typed outcome that the pipeline keeps in a record; the report is made from
//! that record once, at the end:
//!
//! 1. `reference` ([`steps::reference`]) — read the reference (or take its
//!    digest); `--reference oci://…` is read through `oci::read_file_in_image`
//!    from an image pulled by digest.
//! 2. `source` ([`steps::source`]) — resolve the revision, refuse a dirty
//!    working tree (unless allowed), export exactly the commit's tree. For a
//!    released module version ([`SourceInput::Module`], [`steps::module`]):
//!    its zip, go.mod and .info through GOPROXY into the module cache, the zip
//!    checked against the checksum database and the sum the reference records
//!    (a recorded sum that is not the published one is the verdict
//!    `not-reproduced`, cause `main-module-sum`, and nothing is built); the
//!    extracted directory is the source, the recipe reads no file of it, and
//!    the build is `go install PKG@VERSION` with the verified cache as its
//!    read-only `file://` GOPROXY (mounted where the reference's was when it
//!    embeds the path: no `-trimpath`).
//! 3. `recipe` ([`steps::recipe`]) — `recipe::resolve` over the exported tree
//!    (so `reprove.toml` and `.goreleaser.yaml` are the commit's, never a
//!    working tree's), with the reference's build info as a layer only when
//!    asked (else it gives only the Go version) and goreleaser's template
//!    values from the commit (id, commit time, its only tag; `.Date` only when
//!    given). An undetermined field stops the run before anything is built
//!    (`recipe-undetermined`); so does a value from the commit's own files
//!    that runs code ([`::recipe::exec`]) unless allowed
//!    (`recipe-exec-refused`). With VCS stamping the export becomes a clean
//!    checkout with `.git`. The toolchain: the request's, else the commit's
//!    `reprove.lock` for the recipe's Go version (`inputs.toolchain.from`).
//! 4. `go-sum` ([`steps::gosum`]) — go.mod and go.sum at the commit: every
//!    requirement needs a go.sum line; digests of both files. In a go.work
//!    workspace (the reference's `(devel)` dependencies say so, or recipe
//!    `GOWORK`, or go's default without build info) the same over every
//!    workspace module's go.sum and go.work.sum, with their digests. With
//!    `-modfile=F`, F and F's `.sum`.
//! 5. `modules` ([`steps::modules`]) — [`modfetch::download`] into one shared
//!    module cache under the cache directory; nothing unverified enters it.
//! 6. `toolchain` ([`steps::toolchain`]) — [`oci::Store`] pull by digest; the
//!    image's Go version must equal the recipe's (no silent switch:
//!    `GOTOOLCHAIN=local`).
//! 7. `build` ([`steps::build`]) — `go build` in the sandbox: source read-only,
//!    module cache read-only with `GOPROXY=off GOFLAGS=-mod=readonly` (and
//!    `GOWORK=/src/go.work` in a workspace, else `off`), a Go build cache
//!    keyed by toolchain digest and recipe (and the source's Git tree when the
//!    recipe runs programs it names), no network, scrubbed environment, a
//!    deadline.
//! 8. `compare` ([`steps::judge`]) — both files checked against their own content
//!    IDs (`compare::self_checks`), `compare::compare_named`, and the module sums
//!    three ways: go.sum, the reference's build info, the rebuilt binary's.
//!
//! [`check`] is `reprove check`: the same steps without a reference, then a
//! baseline build and one build per variation (time: the same build again at
//! least 2 s later, which is also the control; build directory, environment,
//! umask 077, user 1000:1000, warm cache), each from an empty build cache
//! except the warm one, compared with the baseline. A variation the runtime
//! cannot apply, or that the output shows was ignored, is listed under
//! `notVaried` with the reason, next to the clock itself (no namespace moves
//! `CLOCK_REALTIME`).
//!
//! What it is not: it parses no command line and prints nothing; progress
//! goes to a [`Progress`].
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

pub mod check;
mod error;
mod pipeline;
mod record;
pub mod steps;
pub mod workdirs;

pub use error::{exit_class, fetch_code, RebuildError};
pub use report;
pub use report::v1::{Class, Code, Step, Verdict};
pub use steps::recipe::RecipeInputs;
pub use steps::reference::MAX_REFERENCE;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gomod::env::GoEnv;
use modfetch::download::DownloadOptions;
use modfetch::sumdb::ChecksumDb;
use oci::{PinnedImage, RegistryOptions, ToolchainError};
use report::v1;
use sandbox::{CancelToken, RuntimeChoice};

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

/// Where the source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceInput {
    /// A Git repository at a revision: exactly the commit's tree is exported.
    Git {
        /// A repository directory or a clone URL.
        location: String,
        /// The revision.
        rev: String,
    },
    /// A released module version, built as `go install PATH/CMD@VERSION`
    /// builds it: its zip fetched through GOPROXY and checked against the
    /// checksum database and the sum the reference records ([`steps::module`]).
    Module {
        /// The module path; empty: the reference's main module's.
        path: String,
        /// The version; empty: the reference's main module's.
        version: String,
    },
}

impl SourceInput {
    /// A Git source.
    pub fn git(location: impl Into<String>, rev: impl Into<String>) -> SourceInput {
        SourceInput::Git { location: location.into(), rev: rev.into() }
    }
}

/// Everything a rebuild needs.
#[derive(Clone)]
pub struct Request {
    /// The source.
    pub source: SourceInput,
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

/// Runs the whole pipeline. Never fails: a failure is a report with verdict `error`.
pub fn verify(req: &Request, progress: &dyn Progress, cancel: &CancelToken) -> v1::Report {
    let mut run = pipeline::Run::new(req, progress);
    let failure = pipeline::verify(&mut run, cancel).err();
    run.record.into_report(req, failure)
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
