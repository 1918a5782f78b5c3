//! `reprove mod …`: Go module hashing and verification, computed without `go`.
//!
//! - `reprove mod hash PATH [--prefix module@version] [--json]`: the h1 hash of
//!   a module zip, a module directory (with `--prefix`), or a go.mod file,
//!   identical to `golang.org/x/mod/sumdb/dirhash`.
//! - `reprove mod verify [-C DIR] [--modcache DIR] [--json] [--build-list rust|go]`:
//!   `go mod verify`, re-implemented (same verdict, same modules named), plus
//!   go.sum checks. Exit 0 when every module verifies, 1 when any does not.
//!   The build list is computed without `go` unless `--build-list go` asks
//!   `go list -m -json all` for it.
//!
//! - `reprove mod download [-C DIR] [--modcache DIR] [--json] [--all] [--jobs N]
//!   [--timeout SECS] [--retries N]`: fetches the main module's dependencies
//!   through GOPROXY into the module cache in Go's layout, checking every
//!   go.mod and zip against go.sum first. Exit 0 when everything is in the
//!   cache and verified; 1 on a SECURITY error (content that differs from
//!   go.sum or the checksum database: a verdict about the modules, nothing of
//!   it enters the cache); 2 when go.sum lacks a needed hash and nothing else
//!   can vouch for it; 3 when fetching failed (network, proxy, `direct`).
//!
//! For `hash` and `verify`, the module cache is `--modcache`, else `$GOMODCACHE`, else the GOMODCACHE or
//! GOPATH of the go env file (`$GOENV`, unless `off`), else `$GOPATH/pkg/mod`,
//! else `$HOME/go/pkg/mod`: the go command's own rule, without running it.
//! `download` reads the whole Go module environment from `go env -json`
//! when a go command is on PATH (else from the environment and Go's derived
//! defaults), since GOPROXY's default lives in the Go distribution.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use gomod::{self, BuildListError, HashError, ModCache, VerifyReport};

use crate::exit::{CommandResult, Failure, Verdict};

mod download;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the h1: hash of a module zip, a module directory or a go.mod file.
    Hash(HashArgs),
    /// Verify the module cache against the build list and go.sum, like `go mod verify`.
    Verify(VerifyArgs),
    /// Download the main module's dependencies through GOPROXY, checked against go.sum.
    Download(DownloadArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// Run as if in DIR (the main module's directory, or one below it).
    #[arg(short = 'C', value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The module cache to fill (default: GOMODCACHE from `go env`).
    #[arg(long, value_name = "DIR")]
    modcache: Option<PathBuf>,
    /// Print one JSON document (schemas/mod-download.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// Download the zip of every module of the build list, not only those
    /// `go mod download` fetches (the main module's requirements from go 1.17 on).
    #[arg(long)]
    all: bool,
    /// How many modules to fetch at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Seconds to wait for the next bytes of a response before giving up on it.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Extra attempts after a transient failure (timeout, broken connection, 5xx, 429).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HashArgs {
    /// A module zip (`.zip`), a directory (needs --prefix), or a go.mod file.
    path: PathBuf,
    /// `module@version`: the name prefix for a directory; for a zip, every
    /// entry must lie under it.
    #[arg(long)]
    prefix: Option<String>,
    /// Print a JSON document ({"path","kind","hash"}) instead of the hash.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Run as if in DIR (the main module's directory, or one below it).
    #[arg(short = 'C', value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The module cache (default: GOMODCACHE as the go command resolves it).
    #[arg(long, value_name = "DIR")]
    modcache: Option<PathBuf>,
    /// Print one JSON document (schemas/mod-verify.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// Where the build list comes from: computed by reprove from the go.mod
    /// files in the cache (`rust`, the default, no `go` needed), or reported by
    /// `go list -m -json all` (`go`, which also handles workspaces).
    #[arg(long, value_enum, default_value_t = BuildListSource::Rust)]
    build_list: BuildListSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BuildListSource {
    Rust,
    Go,
}

pub(crate) fn run(command: Command) -> CommandResult {
    match command {
        Command::Hash(args) => hash(args),
        Command::Verify(args) => verify(args),
        Command::Download(args) => download::run(args),
    }
}

pub(super) fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::infrastructure(anyhow!(e).context("writing to stdout"))),
    }
}

fn hash_failure(e: HashError) -> Failure {
    match &e {
        HashError::Io { cause, .. }
            if !matches!(cause.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) =>
        {
            Failure::infrastructure(e)
        }
        _ => Failure::input(e),
    }
}

fn hash(args: HashArgs) -> CommandResult {
    let meta = std::fs::metadata(&args.path)
        .with_context(|| format!("reading {}", args.path.display()))
        .map_err(Failure::input)?;
    if let Some(p) = &args.prefix {
        check_prefix(p).map_err(Failure::input)?;
    }
    let (kind, h) = if meta.is_dir() {
        let prefix = args.prefix.as_deref().ok_or_else(|| {
            Failure::input(anyhow!(
                "{} is a directory: --prefix module@version is needed to name its files",
                args.path.display()
            ))
        })?;
        ("dir", gomod::hash_dir(&args.path, prefix).map_err(hash_failure)?)
    } else if is_go_mod(&args.path) {
        let data = std::fs::read(&args.path)
            .with_context(|| format!("reading {}", args.path.display()))
            .map_err(Failure::input)?;
        ("go.mod", gomod::hash_go_mod(&data))
    } else {
        ("zip", gomod::hash_zip(&args.path, args.prefix.as_deref()).map_err(hash_failure)?)
    };
    let text = if args.json {
        let doc = serde_json::json!({
            "path": args.path.display().to_string(),
            "kind": kind,
            "hash": h.as_str(),
        });
        format!("{doc:#}\n")
    } else {
        format!("{h}\n")
    };
    print(&text)?;
    Ok(Verdict::Positive)
}

/// A file is hashed as a go.mod when it is named `go.mod` or `*.mod` (as in the cache).
fn is_go_mod(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "go.mod") || path.extension().is_some_and(|e| e == "mod")
}

fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let (path, version) = prefix.split_once('@').ok_or_else(|| anyhow!("--prefix {prefix:?}: want module@version"))?;
    gomod::module::check(path, version).map_err(|e| anyhow!("--prefix {prefix:?}: {e}"))
}

/// The go command's module cache: GOMODCACHE, else GOPATH[0]/pkg/mod, each from
/// the environment first and then the go env file.
fn default_modcache() -> anyhow::Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let file = go_env_file();
    let from_file = |k: &str| file.iter().find(|(key, _)| key == k).map(|(_, v)| OsString::from(v));
    if let Some(m) = env("GOMODCACHE").or_else(|| from_file("GOMODCACHE")) {
        return Ok(PathBuf::from(m));
    }
    let gopath = env("GOPATH").or_else(|| from_file("GOPATH"));
    if let Some(gp) = gopath {
        if let Some(first) = std::env::split_paths(&gp).next().filter(|p| !p.as_os_str().is_empty()) {
            return Ok(first.join("pkg/mod"));
        }
    }
    let home = env("HOME").ok_or_else(|| anyhow!("cannot find the module cache: set GOMODCACHE or use --modcache"))?;
    Ok(PathBuf::from(home).join("go/pkg/mod"))
}

/// `key=value` lines of the go env file (`$GOENV`, default `$XDG_CONFIG_HOME/go/env`
/// or `$HOME/.config/go/env`); nothing when GOENV is `off`.
fn go_env_file() -> Vec<(String, String)> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let path = match env("GOENV") {
        Some(v) if v == "off" => return Vec::new(),
        Some(v) => PathBuf::from(v),
        None => match env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))
        {
            Some(dir) => dir.join("go/env"),
            None => return Vec::new(),
        },
    };
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

/// The go command's `findModuleRoot`: the nearest directory at or above `dir` with a go.mod.
pub(super) fn find_module_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    if !abs.is_dir() {
        anyhow::bail!("-C {}: not a directory", dir.display());
    }
    let mut cur = Some(abs.as_path());
    while let Some(d) = cur {
        if d.join("go.mod").is_file() {
            return Ok(d.to_path_buf());
        }
        cur = d.parent();
    }
    anyhow::bail!("go.mod file not found in {} or any parent directory", abs.display())
}

/// A go.work above the module would put `go` in workspace mode, which the
/// build list does not implement: refuse rather than verify a different list.
pub(super) fn check_workspace(root: &Path) -> anyhow::Result<()> {
    match std::env::var("GOWORK") {
        Ok(v) if v == "off" => return Ok(()),
        Ok(v) if !v.is_empty() => anyhow::bail!("GOWORK={v}: workspace mode is not supported yet (set GOWORK=off)"),
        _ => {}
    }
    let mut cur = Some(root);
    while let Some(d) = cur {
        let w = d.join("go.work");
        if w.is_file() {
            anyhow::bail!("{} puts go in workspace mode, which is not supported yet (set GOWORK=off)", w.display());
        }
        cur = d.parent();
    }
    Ok(())
}

/// How long `go list -m -json all` may take (it may load go.mod files from a
/// proxy), and how much output it may print (a few KiB per module).
const GO_LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
const GO_LIST_OUTPUT_CAP: usize = 64 << 20;

/// Runs `go list -m -json all` in `root` and reads its build list.
fn go_list(root: &Path, modcache: &Path, explicit_modcache: bool) -> Result<gomod::BuildList, Failure> {
    let mut cmd = std::process::Command::new("go");
    cmd.current_dir(root).args(["list", "-m", "-json", "all"]);
    if explicit_modcache {
        cmd.env("GOMODCACHE", modcache);
    }
    let out = sandbox::run_host(&mut cmd, GO_LIST_TIMEOUT, GO_LIST_OUTPUT_CAP)
        .with_context(|| format!("running go list -m -json all in {}", root.display()))
        .map_err(Failure::infrastructure)?;
    let stderr = String::from_utf8_lossy(&out.stderr.bytes);
    match out.status {
        None => {
            return Err(Failure::infrastructure(anyhow!(
                "go list -m -json all did not finish within {} s",
                GO_LIST_TIMEOUT.as_secs()
            )))
        }
        Some(status) if !status.success() => {
            return Err(Failure::infrastructure(anyhow!(
                "go list -m -json all failed ({status}):\n{}",
                stderr.trim_end()
            )))
        }
        Some(_) => {}
    }
    if out.stdout.truncated() {
        return Err(Failure::infrastructure(anyhow!(
            "go list -m -json all printed more than {} MiB; refusing a truncated build list",
            GO_LIST_OUTPUT_CAP >> 20
        )));
    }
    gomod::parse_go_list(&out.stdout.bytes, modcache).map_err(Failure::infrastructure)
}

fn verify(args: VerifyArgs) -> CommandResult {
    let root = find_module_root(&args.dir).map_err(Failure::input)?;
    if args.build_list == BuildListSource::Rust {
        check_workspace(&root).map_err(Failure::input)?;
    }
    let modcache = match &args.modcache {
        Some(m) => m.clone(),
        None => default_modcache().map_err(Failure::input)?,
    };
    let modcache = std::path::absolute(&modcache).unwrap_or(modcache);
    let cache = ModCache::new(&modcache);
    let list = match args.build_list {
        BuildListSource::Rust => gomod::load_build_list(&root, &cache).map_err(|e| match e {
            BuildListError::Read { .. } => Failure::infrastructure(e),
            _ => Failure::input(e),
        })?,
        BuildListSource::Go => go_list(&root, &modcache, args.modcache.is_some())?,
    };
    let report = gomod::verify(&list, &cache).map_err(Failure::input)?;
    let text = if args.json { v1::render(&report) } else { render_text(&report) };
    print(&text)?;
    Ok(if report.ok() { Verdict::Positive } else { Verdict::Negative })
}

fn render_text(r: &VerifyReport) -> String {
    let mut s = String::new();
    for p in r.problems.iter().filter(|p| p.kind.is_failure()) {
        s.push_str(&p.message);
        s.push('\n');
    }
    let downloaded = r.modules.iter().filter(|m| m.downloaded).count();
    let failures = r.problems.iter().filter(|p| p.kind.is_failure()).count();
    let warnings = r.problems.len() - failures;
    if warnings > 0 {
        // A tidy go.sum lists only the modules that provide packages, so these
        // are usually harmless; --json lists them.
        s.push_str(&format!(
            "note: {warnings} downloaded module{} of the build list {} no go.sum line (not needed by the build, or go.sum is incomplete; --json lists them)\n",
            if warnings == 1 { "" } else { "s" },
            if warnings == 1 { "has" } else { "have" },
        ));
    }
    if failures == 0 {
        s.push_str(&format!(
            "all modules verified: {} modules in the build list, {downloaded} in the cache",
            r.modules.len()
        ));
    } else {
        s.push_str(&format!(
            "verification failed: {failures} problem{} in {} modules in the build list ({downloaded} in the cache)",
            if failures == 1 { "" } else { "s" },
            r.modules.len()
        ));
    }
    s.push('\n');
    s
}

/// The versioned `--json` document of `reprove mod verify` (schemas/mod-verify.schema.json).
mod v1 {
    use gomod::VerifyReport;
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        schema_version: u32,
        main_module: &'a str,
        modcache: String,
        go_sum: Option<String>,
        verified: bool,
        summary: Summary,
        modules: Vec<Module<'a>>,
        problems: Vec<Problem<'a>>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Summary {
        modules: usize,
        downloaded: usize,
        failures: usize,
        warnings: usize,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Module<'a> {
        path: &'a str,
        version: &'a str,
        status: &'static str,
        ziphash: Option<&'a str>,
        zip_hash: Option<&'a str>,
        dir_hash: Option<&'a str>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Problem<'a> {
        path: &'a str,
        version: &'a str,
        kind: &'static str,
        failure: bool,
        reported_by_go: bool,
        file: Option<String>,
        expected: Option<&'a str>,
        actual: Option<&'a str>,
        message: &'a str,
    }

    pub(super) fn render(r: &VerifyReport) -> String {
        let failures = r.problems.iter().filter(|p| p.kind.is_failure()).count();
        let modules = r
            .modules
            .iter()
            .map(|m| {
                let failed = r.problems.iter().any(|p| p.kind.is_failure() && p.module == m.module);
                Module {
                    path: &m.module.path,
                    version: &m.module.version,
                    status: if failed {
                        "failed"
                    } else if m.downloaded {
                        "verified"
                    } else {
                        "not-downloaded"
                    },
                    ziphash: m.ziphash.as_deref(),
                    zip_hash: m.zip_hash.as_deref(),
                    dir_hash: m.dir_hash.as_deref(),
                }
            })
            .collect();
        let doc = Doc {
            schema_version: 1,
            main_module: &r.main.path,
            modcache: r.modcache.display().to_string(),
            go_sum: r.go_sum.as_ref().map(|p| p.display().to_string()),
            verified: failures == 0,
            summary: Summary {
                modules: r.modules.len(),
                downloaded: r.modules.iter().filter(|m| m.downloaded).count(),
                failures,
                warnings: r.problems.len() - failures,
            },
            modules,
            problems: r
                .problems
                .iter()
                .map(|p| Problem {
                    path: &p.module.path,
                    version: &p.module.version,
                    kind: p.kind.code(),
                    failure: p.kind.is_failure(),
                    reported_by_go: p.kind.reported_by_go(),
                    file: p.path.as_ref().map(|f| f.display().to_string()),
                    expected: p.expected.as_deref(),
                    actual: p.actual.as_deref(),
                    message: &p.message,
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
