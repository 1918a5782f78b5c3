//! Helpers shared by the attestation tests (`attest_*`): reprove run in a scratch
//! directory with a key password, its output as text, and the cosign release
//! `ci/setup-cosign` builds into the test cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(crate) const PROVENANCE: &str = "https://slsa.dev/provenance/v1";

/// The cosign release `ci/setup-cosign` builds into the test cache.
pub(crate) fn cosign() -> Result<PathBuf, String> {
    super::cached_tool("cosign/bin/cosign", "ci/setup-cosign (it builds the pinned cosign release)")
}

/// The cosign v3 release `ci/setup-cosign` builds into the test cache (Sigstore
/// bundles as OCI 1.1 referrers with `--new-bundle-format`).
pub(crate) fn cosign_v3() -> Result<PathBuf, String> {
    super::cached_tool("cosign-v3/bin/cosign", "ci/setup-cosign (it builds the pinned cosign v3 release)")
}

/// reprove in `dir` as [`super::run_signing_tool`] runs the signing tools: `password`
/// as `COSIGN_PASSWORD`, `HOME` in `dir`, offline.
pub(crate) fn reprove_signing(dir: &Path, password: &str, args: &[&str]) -> Result<Output, std::io::Error> {
    super::run_signing_tool(Path::new(env!("CARGO_BIN_EXE_reprove")), dir, password, args)
}

/// reprove in `dir` with stdin closed and `COSIGN_PASSWORD` set to `password`, or unset.
pub(crate) fn reprove_with_password(
    dir: &Path,
    args: &[&str],
    password: Option<&str>,
) -> Result<Output, std::io::Error> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reprove"));
    command.current_dir(dir).args(args).stdin(Stdio::null()).env_remove("COSIGN_PASSWORD");
    if let Some(pw) = password {
        command.env("COSIGN_PASSWORD", pw);
    }
    command.output()
}

/// stdout then stderr, as text.
pub(crate) fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// An error naming `what`, the exit status and the output, unless `output` succeeded.
pub(crate) fn ok(output: &Output, what: &str) -> TestResult {
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({:?}):\n{}", output.status.code(), text(output)).into())
    }
}
