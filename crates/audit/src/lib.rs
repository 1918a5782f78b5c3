//! `reprove audit`: is every Go program in an image what its source says?
//!
//! The image's binaries are found by `inventory` (every Go executable, with
//! or without build info). For each, [`plan::decide`] reads the source it
//! claims ([`claim::Claim`]: a released module version, a VCS revision, or
//! `(devel)`), the toolchain pinned for its Go version and what its build
//! info cannot record, from the auditor's [`config::Settings`]; a binary that
//! cannot be rebuilt is `unverifiable`, with the reason and the setting to
//! add, never skipped. [`run::run`] rebuilds the rest through
//! `rebuild::verify`, each distinct build once, in parallel.
//!
//! **Invariant:** every binary found ends in the audit with an outcome; the
//! image is reproduced only if every one of them is.
#![deny(missing_docs)]

pub mod claim;
pub mod config;
pub mod image;
pub mod outcome;
pub mod plan;
pub mod run;

pub use claim::Claim;
pub use config::{ConfigError, Settings};
pub use image::{audit, Audit};
pub use plan::{decide, BuildKey, Decision, Plan, SourceChoice, Unverifiable};
