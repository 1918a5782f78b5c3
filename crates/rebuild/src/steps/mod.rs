//! The steps of a rebuild, in order, one module each. A step takes what it
//! needs and returns a typed outcome; it never touches the report.
//! `pipeline` runs and times them and keeps what they found in a
//! `record::Record`, from which the report is made once, at the end.
//!
//! 1. [`reference`](mod@reference) — read the reference, or take its digest.
//! 2. [`source`] — resolve the revision, refuse a dirty working tree unless
//!    allowed, export exactly the commit's tree; or [`module`]: a released
//!    module version's zip, fetched and checked.
//! 3. [`recipe`] — the recipe over the exported tree, refusing values from the
//!    commit's own files that run code unless allowed; the toolchain chosen.
//! 4. [`gosum`] — go.mod and go.sum (or the go.work workspace's) at the commit.
//! 5. [`modules`] — fetch and verify every module into the shared cache.
//! 6. [`toolchain`] — the image pulled by digest; its Go version checked.
//! 7. [`build`] — `go build` (a module version: `go install PKG@VERSION`) in the sandbox.
//! 8. [`judge`] — the `compare` step: the verdict, its causes, module sums.

pub mod build;
pub mod gosum;
pub mod judge;
pub mod module;
pub mod modules;
pub mod recipe;
pub mod reference;
pub mod source;
pub mod toolchain;
