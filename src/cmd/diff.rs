//! `reprove diff [--json] A B`: explain why two Go binaries differ.
//!
//! Reads both files, hands the bytes to [`verifier::compare::compare`], prints the
//! text or the versioned JSON report, and exits 0 when identical, 1 when they differ.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use verifier::compare::{self, report};

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

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    let what = || format!("reading {}", path.display());
    let meta = std::fs::metadata(path).with_context(what).map_err(Failure::input)?;
    if meta.is_dir() {
        return Err(Failure::input(anyhow::anyhow!("{}: is a directory", what())));
    }
    std::fs::read(path).map_err(|e| {
        let class = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput => Failure::input,
            _ => Failure::infrastructure,
        };
        class(anyhow::Error::new(e).context(what()))
    })
}

pub(crate) fn run(args: Args) -> CommandResult {
    let a = read(&args.a)?;
    let b = read(&args.b)?;
    let comparison = compare::compare(&a, &b);
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
