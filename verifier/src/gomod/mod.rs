//! Go modules, computed independently of the go command: go.mod, go.sum,
//! go.work and vendor/modules.txt parsing; module path and version rules;
//! h1 hashes; the module cache layout; the build list by minimal version
//! selection; and `go mod verify`.
//!
//! What goes in: files (go.mod, go.sum, module zips and directories) and a
//! module cache directory (GOMODCACHE). What comes out: parsed files with Go's
//! errors, [`H1Hash`]es identical to `golang.org/x/mod/sumdb/dirhash`, a
//! [`BuildList`] identical to `go list -m all`, and a [`VerifyReport`] with the
//! same verdict and modules as `go mod verify`, plus go.sum checks.
//!
//! Each piece follows a named Go source: [`semver`] is `x/mod/semver`,
//! [`module`] is `x/mod/module`, [`modfile`] is `x/mod/modfile`, [`gosum`] is
//! `cmd/go/internal/modfetch`'s go.sum reader, [`buildlist`] is
//! `cmd/go/internal/modload`'s graph loading, [`verify()`] is
//! `cmd/go/internal/modcmd/verify.go`; [`golist`] reads the build list that
//! `go list -m -json all` reports, for callers that prefer Go's own. The tests compare each with the real
//! `go` and `x/mod` on real modules.
//!
//! Fetching and diagnosing (issue 3, part B):
//!
//! - [`download`]: `reprove mod download`, a GOPROXY client ([`proxy`]) that
//!   fills a module cache in Go's exact layout ([`cache`], with Go's lock
//!   files) and checks every go.mod and zip against go.sum, or against the
//!   checksum database ([`sumdb`]) where go.sum has no line; `direct` is
//!   delegated to the go command.
//! - [`env`](mod@env): the Go module environment (`go env -json`, or the process
//!   environment with Go's derived defaults).
//! - [`doctor`]: `reprove doctor`, the environment and what breaks in it.
//! - [`failure`]: stable codes, with a remediation line, for failures of
//!   `go`, `git` and the GOPROXY client (the "exit status 128" family).
//!
//! Only [`download`], [`doctor`] and [`sumdb`] touch the network; everything
//! else reads files.

pub mod buildlist;
pub mod cache;
mod direct;
pub mod dirhash;
pub mod doctor;
pub mod download;
pub mod env;
pub mod failure;
pub mod golist;
pub mod gosum;
pub mod gover;
mod lockedfile;
pub mod modfile;
pub mod module;
pub mod proxy;
pub mod semver;
pub mod sumdb;
mod unzip;
pub mod vendor;
mod verify;
mod zip;

pub use buildlist::{load_build_list, load_build_list_in, BuildList, BuildListError, GraphError, LoadedGoMod};
pub use cache::{CachePathError, ModCache};
pub use dirhash::{hash_dir, hash_files, hash_go_mod, hash_zip, H1Hash, HashError, InvalidHash};
pub use golist::{parse_go_list, GoListError};
pub use gosum::{GoSum, GoSumError, SumCheck};
pub use modfile::{parse_mod, parse_mod_lax, parse_work, ModFile, ModFileError, WorkFile};
pub use module::{ModuleError, ModuleVersion};
pub use verify::{verify, ModuleOutcome, Problem, ProblemKind, VerifyError, VerifyReport};
pub use zip::ZipError;
