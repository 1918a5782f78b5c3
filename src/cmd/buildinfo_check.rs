//! `reprove buildinfo --check FILE…`: each Go binary checked against its own content ID
//! ([`goinfo::self_check`]), without a rebuild.
//!
//! Per file: `intact`, `modified-after-link`, `no-build-id` or `packed`, as text or as
//! one JSON document (schemas/buildinfo-check.schema.json). Exit 0 when every file is
//! intact, 1 when any is not, 2 when a file could not be checked (missing, not a
//! regular file, unreadable, a malformed build ID); the other files are still checked.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context as _;
use goinfo::{FileSource, SelfCheck};
use serde_json::{json, Value};

use crate::exit::{CommandResult, Failure, Verdict};

/// One file's outcome, or why it could not be checked.
type Outcome = Result<SelfCheck, String>;

pub(crate) fn run(files: &[std::ffi::OsString], as_json: bool) -> CommandResult {
    let mut results = Vec::new();
    let mut out = io::stdout().lock();
    for file in files.iter().map(Path::new) {
        let outcome = check(file);
        if !as_json {
            match &outcome {
                Ok(c) => writeln!(out, "{}: {}", file.display(), describe(c)),
                Err(e) => {
                    eprintln!("{}: cannot check: {e}", file.display());
                    Ok(())
                }
            }
            .or_else(ignore_broken_pipe)?;
        }
        results.push((file, outcome));
    }
    if as_json {
        let doc = json!({
            "schemaVersion": 1,
            "files": results.iter().map(|(f, o)| to_json(f, o)).collect::<Vec<_>>(),
        });
        let mut text =
            serde_json::to_string_pretty(&doc).context("encoding the results").map_err(Failure::infrastructure)?;
        text.push('\n');
        out.write_all(text.as_bytes()).or_else(ignore_broken_pipe)?;
    }
    out.flush().or_else(ignore_broken_pipe)?;
    let unchecked = results.iter().filter(|(_, o)| o.is_err()).count();
    if unchecked > 0 {
        return Err(Failure::input(anyhow::anyhow!(
            "{unchecked} of {} file{} could not be checked",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        )));
    }
    let all_intact = results.iter().all(|(_, o)| matches!(o, Ok(SelfCheck::Intact { .. })));
    Ok(if all_intact { Verdict::Positive } else { Verdict::Negative })
}

/// A closed pipe (`| head`) is not a failure of the check.
fn ignore_broken_pipe(e: io::Error) -> Result<(), Failure> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Failure::infrastructure(anyhow::Error::new(e).context("writing the results")))
    }
}

/// Opens a regular file (a device or FIFO is refused before it is opened) and checks it.
fn check(file: &Path) -> Outcome {
    let opened = confined::open_regular_file(file).map_err(|e| e.to_string())?;
    let src = FileSource::new(opened).map_err(|e| e.to_string())?;
    goinfo::self_check(&src).map_err(|e| e.to_string())
}

fn describe(c: &SelfCheck) -> String {
    match c {
        SelfCheck::Intact { build_id } => format!("intact (build ID {build_id})"),
        SelfCheck::ModifiedAfterLink { recorded, computed, first_mismatch, .. } => {
            let at = first_mismatch.map(|o| format!(", first changed byte at offset {o:#x}")).unwrap_or_default();
            format!(
                "modified after link: the file was changed after it was built \
                 (content ID recorded {recorded}, computed {computed}{at})"
            )
        }
        SelfCheck::NoBuildId => {
            "no build ID: built with -ldflags=-buildid= or not by go build; nothing to check".to_string()
        }
        SelfCheck::Packed { packer, evidence } => {
            format!("packed ({packer}): {evidence}; the content ID cannot be checked")
        }
    }
}

fn to_json(file: &Path, outcome: &Outcome) -> Value {
    let file = file.display().to_string();
    match outcome {
        Err(e) => json!({ "file": file, "status": "error", "error": e }),
        Ok(c) => {
            let mut v = json!({ "file": file, "status": c.code() });
            match c {
                SelfCheck::Intact { build_id } => v["buildId"] = json!(build_id.to_string()),
                SelfCheck::ModifiedAfterLink { build_id, recorded, computed, first_mismatch } => {
                    v["buildId"] = json!(build_id.to_string());
                    v["recordedContentId"] = json!(recorded);
                    v["computedContentId"] = json!(computed);
                    v["firstMismatch"] = json!(first_mismatch);
                }
                SelfCheck::NoBuildId => {}
                SelfCheck::Packed { packer, evidence } => {
                    v["packer"] = json!(packer);
                    v["evidence"] = json!(evidence);
                }
            }
            v
        }
    }
}
