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
//! - [`env`](mod@env): the Go module environment, from `go env -json` output or
//!   the process environment with Go's derived defaults.
//!
//! Nothing here touches the network or starts a process: fetching, the
//! checksum database client and `reprove doctor` are the `modfetch` crate.
#![deny(missing_docs)]

pub mod buildlist;
pub mod cache;
pub mod dirhash;
pub mod env;
pub mod golist;
pub mod gosum;
pub mod gover;
pub mod lockedfile;
pub mod modfile;
pub mod module;
pub mod semver;
pub mod unzip;
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
