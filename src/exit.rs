//! Exit codes and the error classes that map to them (DESIGN §4), in one place.
//!
//! - 0: success, reproduced, allowed
//! - 1: a negative verdict (not reproduced, denied, signature invalid, modules modified,
//!   not a Go binary)
//! - 2: usage or input error
//! - 3: infrastructure failure (registry, network, sandbox, toolchain)

use std::fmt;
use std::process::ExitCode;

/// What a command concluded when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Success: identical, reproduced, allowed.
    Positive,
    /// A negative verdict: differs, not reproduced, denied.
    Negative,
}

/// Why a command could not reach a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// The user's arguments or input files are wrong (exit 2).
    Input,
    /// Something the verifier depends on failed (exit 3).
    Infrastructure,
}

/// An error that ends a command, with the class that picks its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) class: FailureClass,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    pub(crate) fn input(error: impl Into<anyhow::Error>) -> Self {
        Failure { class: FailureClass::Input, error: error.into() }
    }

    pub(crate) fn infrastructure(error: impl Into<anyhow::Error>) -> Self {
        Failure { class: FailureClass::Infrastructure, error: error.into() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// The result every subcommand returns.
pub(crate) type CommandResult = Result<Verdict, Failure>;

pub(crate) const SUCCESS: u8 = 0;
pub(crate) const NEGATIVE: u8 = 1;
pub(crate) const INPUT_ERROR: u8 = 2;
pub(crate) const INFRASTRUCTURE_ERROR: u8 = 3;

/// Maps a command's outcome to the process exit code, printing a failure on stderr.
pub(crate) fn to_exit_code(result: CommandResult) -> ExitCode {
    match result {
        Ok(Verdict::Positive) => ExitCode::from(SUCCESS),
        Ok(Verdict::Negative) => ExitCode::from(NEGATIVE),
        Err(failure) => {
            eprintln!("reprove: error: {failure}");
            ExitCode::from(match failure.class {
                FailureClass::Input => INPUT_ERROR,
                FailureClass::Infrastructure => INFRASTRUCTURE_ERROR,
            })
        }
    }
}
