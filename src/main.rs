//! The `reprove` command line: argument parsing and dispatch, nothing else.
//!
//! Each subcommand lives in `cmd/<name>.rs`, calls the libraries and returns a
//! [`exit::CommandResult`]; [`exit::to_exit_code`] turns that into the documented
//! exit code. Clap's own usage errors exit 2 as well.

// Doc comments in this crate are clap's help text, where `[...]` means optional,
// not an intra-doc link.
#![allow(rustdoc::broken_intra_doc_links)]

mod cmd;
mod exit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { exit::INPUT_ERROR } else { exit::SUCCESS };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    exit::to_exit_code(cmd::run(cli))
}
