//! `reprove mod download`: the CLI side of `modfetch::download`.
//!
//! Resolves the Go module environment (`go env -json`), builds the HTTP
//! client settings (proxy variables, `.netrc`, timeouts, retries) and the
//! checksum database client, runs the download with a progress bar on a
//! terminal, prints the report, and maps the outcome to an exit code:
//! 1 for a SECURITY error (a verdict about the modules), 2 when only missing
//! go.sum lines stopped it, 3 for fetch failures.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use gomod::env::look_path;
use gomod::module::ModuleVersion;
use modfetch::download::{self, DownloadError, DownloadOptions, DownloadReport, Progress, Quiet, Verification};
use modfetch::failure::Code;
use modfetch::proxy::client::ClientConfig;
use modfetch::proxy::FileKind;
use modfetch::sumdb;

use super::{check_workspace, find_module_root, print, DownloadArgs};
use crate::exit::{CommandResult, Failure, Verdict};

/// A progress bar on stderr.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn planned(&self, files: u64) {
        self.0.inc_length(files);
    }

    fn finished(&self, module: &ModuleVersion, kind: FileKind, _bytes: u64) {
        if kind == FileKind::Zip {
            self.0.set_message(module.to_string());
        }
        self.0.inc(1);
    }
}

pub(super) fn run(args: DownloadArgs) -> CommandResult {
    let root = find_module_root(&args.dir).map_err(Failure::input)?;
    check_workspace(&root).map_err(Failure::input)?;
    let go = look_path("go");
    let mut env = modfetch::go_env::load(go.as_deref()).map_err(Failure::infrastructure)?;
    if let Some(m) = &args.modcache {
        let abs = std::path::absolute(m).unwrap_or_else(|_| m.clone());
        env.set("GOMODCACHE", &abs.display().to_string());
    }
    env.goproxy().map_err(Failure::input)?;
    let (mut client, _netrc) = ClientConfig::from_env(&env);
    client.read_timeout = Duration::from_secs(args.timeout);
    client.retries = args.retries;
    let opts = DownloadOptions {
        jobs: usize::from(args.jobs),
        client: client.clone(),
        go,
        all: args.all,
        direct_timeout: Duration::from_secs(600),
        source_tree: None,
    };
    let db = sumdb::from_env(&env, &client).map_err(Failure::input)?;
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files {wide_msg}")
        {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let progress: Arc<dyn Progress> = match &bar {
        Some(pb) => Arc::new(Bar(pb.clone())),
        None => Arc::new(Quiet),
    };
    let rt = crate::cmd::io_runtime()?;
    let result = download::download(&rt, &root, &env, &opts, db, progress);
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let report = result.map_err(|e| match e {
        DownloadError::Cache { .. } | DownloadError::Setup(_) => Failure::infrastructure(e),
        DownloadError::BuildList(gomod::BuildListError::Read { .. }) => Failure::infrastructure(e),
        _ => Failure::input(e),
    })?;
    let text = if args.json { v1::render(&report) } else { render_text(&report) };
    print(&text)?;
    for s in &report.security {
        // The verdict is on stdout; CI logs show stderr even with --json.
        eprintln!("reprove: {s}");
    }
    for f in report.failures.iter().filter(|f| f.security) {
        eprintln!("reprove: {}", f.message);
    }
    if !report.security.is_empty() || report.failures.iter().any(|f| f.security) {
        return Ok(Verdict::Negative);
    }
    if report.failures.is_empty() {
        return Ok(Verdict::Positive);
    }
    let n = report.failures.len();
    let err = anyhow!("{n} file{} could not be downloaded and verified", if n == 1 { "" } else { "s" });
    if report.failures.iter().all(|f| f.code == Code::MissingGoSum) {
        Err(Failure::input(err.context("go.sum is incomplete")))
    } else {
        Err(Failure::infrastructure(err))
    }
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::Info => "info",
        FileKind::Mod => "mod",
        FileKind::Zip => "zip",
    }
}

fn verified_by(v: &Verification, go_sum: Option<&PathBuf>) -> Option<String> {
    match v {
        Verification::GoSum(line) => {
            Some(format!("{}:{line}", go_sum.map(|p| p.display().to_string()).unwrap_or_else(|| "go.sum".into())))
        }
        Verification::SumDb(name) => Some(format!("checksum database {name}")),
        Verification::NotApplicable => None,
    }
}

fn render_text(r: &DownloadReport) -> String {
    let mut s = String::new();
    for e in &r.security {
        s.push_str(&e.to_string());
        s.push('\n');
    }
    for f in &r.failures {
        s.push_str(&format!(
            "{}@{} ({}): [{}] {}\n\tremedy: {}\n",
            f.module.path,
            f.module.version,
            kind_name(f.kind),
            f.code,
            f.message,
            f.code.remediation()
        ));
    }
    let files = r.modules.iter().flat_map(|m| m.files.iter());
    let (mut downloaded, mut cached, mut direct) = (0, 0, 0);
    for f in files {
        match f.status {
            download::FileStatus::Downloaded => downloaded += 1,
            download::FileStatus::Cached => cached += 1,
            download::FileStatus::Direct => direct += 1,
        }
    }
    let zips = r.modules.iter().filter(|m| m.dir.is_some()).count();
    let mb = r.bytes as f64 / 1e6;
    s.push_str(&format!(
        "{} modules in the build list, {zips} extracted; files: {downloaded} downloaded ({mb:.1} MB), {direct} via direct, {cached} already cached; into {}\n",
        r.modules.len(),
        r.modcache.display()
    ));
    let skipped: Vec<String> =
        r.modules.iter().filter(|m| m.skipped.is_some()).map(|m| m.fetched.to_string()).collect();
    if !skipped.is_empty() {
        s.push_str(&format!(
            "note: {} zip{} not downloaded: go.sum has no line for {} and no checksum database is consulted (a tidy go.sum lists every module a build needs): {}\n",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            if skipped.len() == 1 { "it" } else { "them" },
            skipped.join(", ")
        ));
    }
    if r.ok() {
        s.push_str("every go.mod and zip verified against go.sum\n");
    } else if !r.security.is_empty() {
        s.push_str(
            "SECURITY ERROR: download stopped; nothing that failed verification was written to the module cache\n",
        );
    }
    s
}

/// The versioned `--json` document of `reprove mod download` (schemas/mod-download.schema.json).
mod v1 {
    use modfetch::download::{DownloadReport, FileStatus};
    use serde::Serialize;

    use super::{kind_name, verified_by};

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        schema_version: u32,
        main_module: &'a str,
        modcache: String,
        go_sum: Option<String>,
        goproxy: &'a str,
        ok: bool,
        summary: Summary,
        modules: Vec<Module<'a>>,
        security_errors: Vec<Security<'a>>,
        failures: Vec<Fail<'a>>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Summary {
        modules: usize,
        extracted: usize,
        skipped: usize,
        downloaded: usize,
        direct: usize,
        cached: usize,
        direct_modules: u64,
        failures: usize,
        security_errors: usize,
        requests: u64,
        retries: u64,
        bytes: u64,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Module<'a> {
        path: &'a str,
        version: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
        zip_wanted: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<&'a str>,
        dir: Option<String>,
        files: Vec<File<'a>>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct File<'a> {
        kind: &'static str,
        status: &'static str,
        source: &'a str,
        path: String,
        bytes: u64,
        hash: Option<&'a str>,
        verified_by: Option<String>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Security<'a> {
        path: &'a str,
        version: &'a str,
        file: &'static str,
        expected: &'a str,
        expected_from: &'a str,
        actual: &'a str,
        actual_from: &'a str,
        message: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Fail<'a> {
        path: &'a str,
        version: &'a str,
        file: &'static str,
        code: &'static str,
        security: bool,
        message: &'a str,
        remediation: &'static str,
    }

    pub(super) fn render(r: &DownloadReport) -> String {
        let all_files = || r.modules.iter().flat_map(|m| m.files.iter());
        let count = |s: FileStatus| all_files().filter(|f| f.status == s).count();
        let doc = Doc {
            schema_version: 1,
            main_module: &r.main.path,
            modcache: r.modcache.display().to_string(),
            go_sum: r.go_sum.as_ref().map(|p| p.display().to_string()),
            goproxy: &r.goproxy,
            ok: r.ok(),
            summary: Summary {
                modules: r.modules.len(),
                extracted: r.modules.iter().filter(|m| m.dir.is_some()).count(),
                skipped: r.modules.iter().filter(|m| m.skipped.is_some()).count(),
                downloaded: count(FileStatus::Downloaded),
                direct: count(FileStatus::Direct),
                cached: count(FileStatus::Cached),
                direct_modules: r.direct,
                failures: r.failures.len(),
                security_errors: r.security.len(),
                requests: r.requests,
                retries: r.retries,
                bytes: r.bytes,
            },
            modules: r
                .modules
                .iter()
                .map(|m| Module {
                    path: &m.module.path,
                    version: &m.module.version,
                    replacement: (m.fetched != m.module).then(|| m.fetched.to_string()),
                    zip_wanted: m.zip_wanted,
                    skipped: m.skipped.as_deref(),
                    dir: m.dir.as_ref().map(|d| d.display().to_string()),
                    files: m
                        .files
                        .iter()
                        .map(|f| File {
                            kind: kind_name(f.kind),
                            status: f.status.code(),
                            source: &f.source,
                            path: f.path.display().to_string(),
                            bytes: f.bytes,
                            hash: f.hash.as_deref(),
                            verified_by: verified_by(&f.verified, r.go_sum.as_ref()),
                        })
                        .collect(),
                })
                .collect(),
            security_errors: r
                .security
                .iter()
                .map(|s| Security {
                    path: &s.module.path,
                    version: &s.module.version,
                    file: kind_name(s.kind),
                    expected: &s.expected,
                    expected_from: &s.expected_from,
                    actual: &s.actual,
                    actual_from: &s.actual_from,
                    message: s.to_string(),
                })
                .collect(),
            failures: r
                .failures
                .iter()
                .map(|f| Fail {
                    path: &f.module.path,
                    version: &f.module.version,
                    file: kind_name(f.kind),
                    code: f.code.as_str(),
                    security: f.security,
                    message: &f.message,
                    remediation: f.code.remediation(),
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
