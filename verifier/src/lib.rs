//! The verification pipeline of reprove.
//!
//! Each module is one stage of the pipeline described in `ARCHITECTURE.md`:
//!
//! - [`goinfo`] reads what a Go binary says about itself: the build info that
//!   `go version -m` prints, and the build IDs that `go tool buildid` prints.
//!   It re-implements Go's readers exactly and is tested against the real `go`.
//! - [`compare`] explains why two Go binaries differ, as machine-readable causes.
//! - [`gomod`] computes a Go module's integrity independently of `go`: go.mod
//!   and go.sum parsing, h1 hashes, the build list, and `go mod verify`; it
//!   fetches modules through GOPROXY (checked against go.sum and the checksum
//!   database), diagnoses the module environment, and classifies failures.
//! - [`toolchain`] pulls toolchain images by digest from OCI registries, checks
//!   every byte, unpacks them safely into a content-addressed cache, and builds
//!   deterministic toolchain images from a GOROOT.
//! - [`sandbox`] runs a command inside an unpacked image (runc, bubblewrap,
//!   docker or podman): read-only rootfs, no network, scrubbed environment,
//!   time, memory and output limits. It is the only module that starts build
//!   processes.
//! - [`confined`] opens files that a hostile party controls (the exported
//!   commit, a build's output) without following links out of their directory,
//!   refusing anything but regular files before opening them, with size limits.
//! - [`source`] resolves a Git revision to a commit and exports exactly its
//!   tree (no `.git`), reports symlinks and submodules, and refuses dirty
//!   working trees unless asked.
//! - [`rebuild`] composes them: source → go.sum → modules → toolchain →
//!   sandboxed build → compare, into one report with a verdict.
//! - [`recipe`] describes how to build: flags, environment, and where each
//!   value came from. It infers the recipe from a reference's build info,
//!   reads `reprove.toml`, `REPROVE_*` variables and `.goreleaser.yaml` build
//!   entries, merges them by precedence with conflicts reported, and pins Go
//!   versions to toolchain images in `reprove.lock`.
#![deny(missing_docs)]

pub mod compare;
pub mod confined;
pub mod goinfo;
pub mod gomod;
pub mod rebuild;
pub mod recipe;
pub mod sandbox;
pub mod source;
pub mod toolchain;
