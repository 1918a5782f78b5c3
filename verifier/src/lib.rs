//! The verification pipeline of reprove.
//!
//! Each module is one stage of the pipeline described in `ARCHITECTURE.md`:
//!
//! - [`goinfo`] reads what a Go binary says about itself: the build info that
//!   `go version -m` prints, and the build IDs that `go tool buildid` prints.
//!   It re-implements Go's readers exactly and is tested against the real `go`.
//! - [`compare`] explains why two Go binaries differ, as machine-readable causes.
//!
//! Later stages (modules, source, toolchain, sandbox, rebuild, report) join them
//! as the issues that define them land.
#![deny(missing_docs)]

pub mod compare;
pub mod goinfo;
