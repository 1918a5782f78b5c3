//! `reprove mod ...`: Go module hashing, verification and download.

use crate::exit::{CommandResult, Failure};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the h1: hash of a module zip, directory or go.mod file.
    Hash {
        /// The zip, directory or go.mod file.
        path: std::path::PathBuf,
    },
}

pub(crate) fn run(command: Command) -> CommandResult {
    match command {
        Command::Hash { .. } => Err(Failure::input(anyhow::anyhow!("not implemented yet"))),
    }
}
