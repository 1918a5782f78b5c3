//! `direct` in GOPROXY, delegated to the go command: reprove does not speak
//! VCS protocols itself.
//!
//! For one module version, `go mod download -json <path>@<version>` runs with
//! `GOPROXY=direct` in an empty working directory (no go.mod, so the user's
//! go.mod and go.sum are never touched) and a scratch GOMODCACHE next to the
//! real one. The files it produced (.info, .mod, .zip) are handed back; the
//! downloader checks them against go.sum like any proxy download before they
//! enter the real cache. GOPRIVATE, GONOPROXY, GONOSUMDB, GOINSECURE, GOSUMDB,
//! GOAUTH and GOVCS are passed as resolved; `GOTOOLCHAIN=local` keeps go from
//! switching toolchains; `GOFLAGS=-mod=mod` keeps a user's `-mod=vendor` out.
//!
//! What it is not: a way around go.sum. The go command may consult the
//! checksum database itself (it has no go.sum here), but its verdict is not
//! trusted in place of ours.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use gomod::env::GoEnv;
use gomod::module::ModuleVersion;

/// What `go mod download -json` reported for one module.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GoDownloaded {
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) info: Option<PathBuf>,
    #[serde(default)]
    pub(crate) go_mod: Option<PathBuf>,
    #[serde(default)]
    pub(crate) zip: Option<PathBuf>,
}

/// A failed delegation: what the go command said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DirectError {
    /// The go command's error text (its `Error` field, or stderr).
    pub(crate) message: String,
    /// Its exit status, if it ran to the end.
    pub(crate) status: Option<i32>,
}

const VARS: &[&str] = &["GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE", "GOSUMDB", "GOAUTH", "GOVCS", "GOPATH"];

/// Runs `go mod download -json m` with GOPROXY=direct into `scratch_cache`,
/// working in `workdir` (an empty directory).
pub(crate) fn go_mod_download(
    go: &Path,
    env: &GoEnv,
    m: &ModuleVersion,
    workdir: &Path,
    scratch_cache: &Path,
    timeout: Duration,
) -> Result<GoDownloaded, DirectError> {
    let mut cmd = std::process::Command::new(go);
    cmd.current_dir(workdir)
        .args(["mod", "download", "-json", &m.to_string()])
        .env("GOPROXY", "direct")
        .env("GOFLAGS", "-mod=mod")
        .env("GOMODCACHE", scratch_cache)
        .env("GOWORK", "off")
        .env("GO111MODULE", "on")
        .env("GOTOOLCHAIN", "local");
    for k in VARS {
        let v = env.get(k);
        if !v.is_empty() {
            cmd.env(k, v);
        }
    }
    let out = sandbox::run_host(&mut cmd, timeout, 4 << 20)
        .map_err(|e| DirectError { message: format!("running {} mod download: {e}", go.display()), status: None })?;
    let stderr = String::from_utf8_lossy(&out.stderr.bytes).trim().to_string();
    let Some(status) = out.status else {
        return Err(DirectError {
            message: format!("go mod download {m}: timed out after {}s\n{stderr}", timeout.as_secs()),
            status: None,
        });
    };
    let parsed: Option<GoDownloaded> = serde_json::from_slice(&out.stdout.bytes).ok();
    match parsed {
        Some(d) if d.error.is_empty() && status.success() => Ok(d),
        Some(d) if !d.error.is_empty() => {
            let message = if stderr.is_empty() { d.error } else { format!("{}\n{stderr}", d.error) };
            Err(DirectError { message, status: status.code() })
        }
        _ => Err(DirectError {
            message: if stderr.is_empty() { format!("go mod download {m}: {status}") } else { stderr },
            status: status.code(),
        }),
    }
}
