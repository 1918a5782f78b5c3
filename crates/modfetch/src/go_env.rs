//! `go env -json`, run on the host through the sandbox crate's runner.

use std::path::Path;
use std::time::Duration;

use gomod::env::{EnvError, GoEnv};

/// Runs `go env -json` with `program` (normally `go` from PATH) when it
/// exists, else resolves without it. `None` for `program` means no go command.
pub fn load(program: Option<&Path>) -> Result<GoEnv, EnvError> {
    let lookup = |k: &str| std::env::var(k).ok();
    let Some(go) = program else { return Ok(GoEnv::from_process(&lookup)) };
    let mut cmd = std::process::Command::new(go);
    cmd.args(["env", "-json"]);
    let fail = |message: String| EnvError::GoEnvRun { program: go.display().to_string(), message };
    let out = sandbox::run_small_host(&mut cmd, Duration::from_secs(60)).map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        GoEnv::from_go_env_json(&out.stdout, &lookup)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(fail(if stderr.is_empty() { out.status.to_string() } else { stderr }))
    }
}
