//! Fetching Go modules as the go command does, checked at every step: a GOPROXY
//! client, the module download into Go's exact cache layout, `direct` delegated
//! to the go command, the checksum database client, the environment diagnosis
//! of `reprove doctor`, and stable codes for what fails.
//!
//! - [`download`]: `reprove mod download`, a GOPROXY client ([`proxy`]) that
//!   fills a module cache in Go's exact layout (`gomod::cache`, with Go's lock
//!   files) and checks every go.mod and zip against go.sum, or against the
//!   checksum database ([`sumdb`]) where go.sum has no line; `direct` is
//!   delegated to the go command.
//! - [`go_env`]: runs `go env -json` for `gomod::env::GoEnv`.
//! - [`doctor`]: `reprove doctor`, the environment and what breaks in it.
//! - [`failure`]: stable codes, with a remediation line, for failures of
//!   `go`, `git` and the GOPROXY client (the "exit status 128" family).
//!
//! The go command is started only through the `sandbox` crate's host runner.
#![deny(missing_docs)]

mod direct;
pub mod doctor;
pub mod download;
pub mod failure;
pub mod go_env;
pub mod proxy;
pub mod sumdb;
