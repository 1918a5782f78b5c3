//! `reprove doctor [-C DIR] [--json] [--offline] [--timeout SECS]`: the
//! effective Go module environment and what in it commonly breaks fetching
//! (see `modfetch::doctor`).
//!
//! Exit 0 when no check found an error (warnings allowed), 1 when one did (a
//! verdict about the environment), 2 for bad arguments. The module
//! environment comes from `go env -json` when a go command is on PATH.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use gomod::env::{look_path, GoEnv, Origin};
use modfetch::doctor::{self, Check, Diagnosis, DoctorOptions, Severity};
use modfetch::failure::{classify_output, Tool};

use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Run as if in DIR (a module directory, for the go.mod checks).
    #[arg(short = 'C', value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Print one JSON document (schemas/doctor.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// Skip the network probes (proxies, private modules).
    #[arg(long)]
    offline: bool,
    /// Seconds each network probe may take.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    timeout: u64,
}

/// The nearest directory at or above `dir` with a go.mod, if any.
fn module_root(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors().find(|d| d.join("go.mod").is_file()).map(Path::to_path_buf)
}

pub(crate) fn run(args: Args) -> CommandResult {
    if !args.dir.is_dir() {
        return Err(Failure::input(anyhow!("-C {}: not a directory", args.dir.display())));
    }
    let go = look_path("go");
    let (env, go_error) = match modfetch::go_env::load(go.as_deref()) {
        Ok(env) => (env, None),
        Err(e) => (GoEnv::from_process(&|k: &str| std::env::var(k).ok()), Some(e.to_string())),
    };
    let root = module_root(&args.dir);
    let opts =
        DoctorOptions { timeout: Duration::from_secs(args.timeout), offline: args.offline, ..Default::default() };
    let rt = super::io_runtime()?;
    let mut diagnosis = doctor::diagnose(&rt, &env, root.as_deref(), &opts);
    if let Some(msg) = go_error {
        // A go that cannot run (often: no processes left to fork) is itself a finding.
        let d = classify_output(Tool::Git, None, &msg);
        diagnosis.checks.retain(|c| c.id != "go-command");
        let msg = msg.lines().filter(|l| !l.trim().is_empty()).take(4).collect::<Vec<_>>().join(" | ");
        diagnosis.checks.insert(
            0,
            Check {
                id: "go-command",
                severity: Severity::Error,
                code: Some(d.code),
                subject: "go".into(),
                message: msg,
                remediation: Some(d.remediation().to_string()),
            },
        );
    }
    let text = if args.json { v1::render(&diagnosis) } else { render_text(&diagnosis) };
    super::modules::print(&text)?;
    Ok(if diagnosis.ok() { Verdict::Positive } else { Verdict::Negative })
}

/// Proxy URLs in process variables, with any password replaced.
fn shown_value(name: &str, value: &str) -> String {
    if name.to_ascii_lowercase().ends_with("_proxy") && !name.eq_ignore_ascii_case("no_proxy") {
        return modfetch::proxy::redact_str(value);
    }
    value.to_string()
}

fn render_text(d: &Diagnosis) -> String {
    let mut s = String::from("Go module environment:\n");
    for (name, var) in d.env.vars() {
        if var.value.is_empty() && var.origin == Origin::Unset {
            continue;
        }
        s.push_str(&format!("  {name}={}  ({})\n", var.value, var.origin.code()));
    }
    for (name, value) in d.env.process_vars() {
        if name == "HOME" {
            continue;
        }
        s.push_str(&format!("  {name}={}  (environment)\n", shown_value(name, value)));
    }
    if let Some(p) = &d.go_mod {
        s.push_str(&format!("go.mod: {}\n", p.display()));
    }
    s.push('\n');
    for c in &d.checks {
        let mark = match c.severity {
            Severity::Info => "ok  ",
            Severity::Warning => "WARN",
            Severity::Error => "FAIL",
        };
        let code = c.code.map(|c| format!(" [{c}]")).unwrap_or_default();
        s.push_str(&format!("{mark} {}{code} {}: {}\n", c.id, c.subject, c.message));
        if c.severity != Severity::Info {
            if let Some(r) = &c.remediation {
                s.push_str(&format!("     remedy: {r}\n"));
            }
        }
    }
    let errors = d.checks.iter().filter(|c| c.severity == Severity::Error).count();
    let warnings = d.checks.iter().filter(|c| c.severity == Severity::Warning).count();
    s.push_str(&format!("\n{errors} error(s), {warnings} warning(s)\n"));
    s
}

/// The versioned `--json` document of `reprove doctor` (schemas/doctor.schema.json).
mod v1 {
    use modfetch::doctor::{Diagnosis, Severity};
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        schema_version: u32,
        ok: bool,
        go_env_source: &'static str,
        go_mod: Option<String>,
        environment: Vec<Var<'a>>,
        process_environment: Vec<Var<'a>>,
        summary: Summary,
        checks: Vec<Check<'a>>,
    }

    #[derive(Serialize)]
    struct Var<'a> {
        name: &'a str,
        value: String,
        origin: &'static str,
    }

    #[derive(Serialize)]
    struct Summary {
        errors: usize,
        warnings: usize,
    }

    #[derive(Serialize)]
    struct Check<'a> {
        id: &'static str,
        severity: &'static str,
        code: Option<&'static str>,
        subject: &'a str,
        message: &'a str,
        remediation: Option<&'a str>,
    }

    pub(super) fn render(d: &Diagnosis) -> String {
        let count = |s: Severity| d.checks.iter().filter(|c| c.severity == s).count();
        let doc = Doc {
            schema_version: 1,
            ok: d.ok(),
            go_env_source: if d.env.from_go() { "go-env" } else { "environment" },
            go_mod: d.go_mod.as_ref().map(|p| p.display().to_string()),
            environment: d
                .env
                .vars()
                .iter()
                .map(|(name, v)| Var { name, value: v.value.clone(), origin: v.origin.code() })
                .collect(),
            process_environment: d
                .env
                .process_vars()
                .iter()
                .filter(|(n, _)| *n != "HOME")
                .map(|(name, v)| Var { name, value: super::shown_value(name, v), origin: "environment" })
                .collect(),
            summary: Summary { errors: count(Severity::Error), warnings: count(Severity::Warning) },
            checks: d
                .checks
                .iter()
                .map(|c| Check {
                    id: c.id,
                    severity: c.severity.as_str(),
                    code: c.code.map(|c| c.as_str()),
                    subject: &c.subject,
                    message: &c.message,
                    remediation: c.remediation.as_deref(),
                })
                .collect(),
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
        }
    }
}
