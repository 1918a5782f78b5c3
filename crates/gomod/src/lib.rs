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
//!
//! # Design notes
//!
//! Go modules without `go`. One file per Go source it follows: x/mod's
//! `semver`, `module` (path checks, escaping) and `modfile` (go.mod, go.work);
//! modfetch's go.sum reader and cache layout (`gosum.rs`, `cache.rs`); modload's
//! graph loading and minimal version selection with pruning (`buildlist.rs`);
//! modcmd's `verify.go` (`verify.rs`); an `archive/zip`-compatible reader
//! (`zip.rs`) behind dirhash (`dirhash.rs`).
//! Fetching follows the go command's `modfetch`: `env.rs` resolves the module
//! environment like `go env` (with each value's origin); `proxy/` is the GOPROXY
//! protocol (list semantics, private patterns, `file://`, HTTP(S)_PROXY/NO_PROXY
//! in `httpproxy.rs`, `.netrc` in `netrc.rs`, retries in `client.rs`);
//! `download.rs` is `reprove mod download`; `direct.rs` hands `direct` to the go
//! command (reprove speaks no VCS protocol); `lockedfile.rs` takes Go's own
//! `flock` locks; `unzip.rs` is x/mod's `Unzip`; `sumdb/` is the checksum
//! database client (signed notes in `note.rs`, tiles and proofs in `tlog.rs`;
//! a bare GOSUMDB name takes its key from the Go distribution in GOROOT, never
//! from reprove). `doctor.rs` diagnoses the environment and `failure.rs` turns
//! failed `go`/`git`/fetch output into stable codes with a remediation line.
//! `golist.rs` reads `go list -m -json all`, the second source of a build list.
//!
//! **Invariant:** every output is compared with the real `go` or x/mod
//! (`tests/it/mod_*.rs`, the `tests/fixtures/mod/gocheck` oracle); a difference is a
//! bug, except the refusals listed in `dirhash.rs` (duplicate or escaping zip
//! names, oversized modules).
//!
//! **Invariant:** no input makes it panic or buffer a whole zip entry.
//!
//! **Invariant:** nothing enters the module cache before its hash matched go.sum
//! or a verified checksum-database record; files are written to a temp name,
//! fsynced and renamed under Go's lock, so `go` can share the cache.
//!
//! **Invariant:** a check that cannot be made (no key, database unreachable) is
//! a failure naming why, never a silent pass.
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
