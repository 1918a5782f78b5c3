//! `reprove diff [--json] A B`: explain why two Go binaries differ.
//!
//! Reads both files, checks each against its own content ID
//! ([`compare::self_checks`]) unless they are identical, hands the bytes and the
//! outcomes to [`compare::compare_checked`], prints the text or the versioned JSON
//! report, and exits 0 when identical, 1 when they differ.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use compare::{self, report};

use crate::exit::{CommandResult, Failure, Verdict};

/// Explain why two Go binaries differ.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON document (schemas/diff.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// The first binary.
    a: PathBuf,
    /// The second binary.
    b: PathBuf,
}

/// The largest binary `diff` reads: both are held in memory.
const MAX_BINARY: u64 = 4 << 30;

/// Reads a binary the user named: a regular file (as `go version -m` reads
/// only what a regular file holds: a device or FIFO is refused before it is
/// opened), at most [`MAX_BINARY`] bytes.
fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    let read = confined::open_regular_file(path)
        .and_then(|file| confined::read_bounded(file, &path.display().to_string(), MAX_BINARY));
    read.map_err(|e| {
        let denied = matches!(&e, confined::ConfinedError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied);
        let class = if e.is_input() || denied { Failure::input } else { Failure::infrastructure };
        class(anyhow::Error::new(e).context("reading a binary to compare"))
    })
}

pub(crate) fn run(args: Args) -> CommandResult {
    let a = read(&args.a)?;
    let b = read(&args.b)?;
    let checks = if a == b { compare::SelfChecks::default() } else { compare::self_checks(&a, &b) };
    let comparison = compare::compare_checked(&a, &b, checks);
    let (an, bn) = (args.a.display().to_string(), args.b.display().to_string());
    let output = if args.json {
        let doc = report::v1::Report::new(&comparison, &an, &bn);
        let mut text =
            serde_json::to_string_pretty(&doc).context("encoding the report").map_err(Failure::infrastructure)?;
        text.push('\n');
        text
    } else {
        report::render_text(&comparison, &an, &bn)
    };
    let mut stdout = io::stdout().lock();
    match stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        // A closed pipe (`| head`) is not a failure of the comparison.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(Failure::infrastructure(anyhow::Error::new(e).context("writing the report"))),
    }
    Ok(if comparison.identical { Verdict::Positive } else { Verdict::Negative })
}
