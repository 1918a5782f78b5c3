//! `reprove verify`: rebuild a Git commit in a pinned toolchain and judge the
//! result against the reference; the CI gate.
//!
//! Arguments are resolved here (the toolchain must be pinned by digest, the
//! reference digest must be `sha256:…`, `--env` entries must be `K=V`), the
//! Go module environment is read from `go env` (or the process environment),
//! and `rebuild::verify` does the rest. Output: the report as text,
//! `--json` (schemas/report.schema.json), `--markdown` (also appended to
//! `$GITHUB_STEP_SUMMARY` when set), `--junit FILE`. Exit codes: 0 reproduced,
//! 1 not reproduced, 2 bad input (including a toolchain whose Go version is
//! not the reference's, and a dirty tree), 3 infrastructure (registry,
//! network, sandbox, and module content that does not match go.sum).

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use gomod::env::{look_path, GoEnv};
use modfetch::download::DownloadOptions;
use modfetch::proxy::client::ClientConfig;
use modfetch::sumdb;
use oci::PinnedImage;
use rebuild::RecipeInputs;
use rebuild::{self, Class, Code, Progress, ReferenceInput, Request, SourceInput, Step};
use report::{self, v1};
use sandbox::{self, Runtime, RuntimeChoice};

use super::interrupt::Interrupts;
use super::recipe::{RecipeFlags, TemplateFlags};
use super::toolchain::{fail, CacheArgs, RegistryArgs};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The source: a local Git repository, or a clone URL (file://, https://, ssh://, user@host:path);
    /// ssh uses the ssh agent and known_hosts ($REPROVE_SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts).
    #[arg(long, value_name = "PATH|URL", required_unless_present = "module", conflicts_with = "module")]
    source: Option<String>,
    /// The revision to rebuild: a commit id, a tag or a branch.
    #[arg(long, value_name = "REV", default_value = "HEAD", conflicts_with = "module")]
    rev: String,
    /// Rebuild a released module version as `go install PATH/CMD@VERSION` does, from its zip
    /// fetched through GOPROXY and checked against the checksum database and the sum the
    /// reference records (no Git). `PATH` alone or `auto` takes the rest from the reference's
    /// main module.
    #[arg(long, value_name = "PATH@VERSION|auto")]
    module: Option<String>,
    /// The reference binary.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "reference_digest",
        conflicts_with = "reference_digest"
    )]
    reference: Option<PathBuf>,
    /// Only the reference's published digest (sha256:…): the verdict, without a diff.
    #[arg(long, value_name = "sha256:HEX")]
    reference_digest: Option<String>,
    /// The toolchain image, pinned by digest (IMAGE@sha256:…); default: the
    /// one the commit's reprove.lock pins for the recipe's Go version.
    #[arg(long, value_name = "IMAGE@DIGEST")]
    toolchain: Option<String>,
    #[command(flatten)]
    recipe: RecipeFlags,
    #[command(flatten)]
    templates: TemplateFlags,
    /// The named build of the commit's reprove.toml, and the build id of its .goreleaser.yaml.
    #[arg(long, value_name = "NAME")]
    build: Option<String>,
    /// Infer the recipe from the reference's build info, below flags,
    /// REPROVE_* variables, reprove.toml and .goreleaser.yaml. Without it only
    /// the reference's Go version is used.
    #[arg(long)]
    from_reference: bool,
    /// Rebuild the commit even when the local working tree has uncommitted changes (the report says so).
    #[arg(long)]
    allow_dirty: bool,
    /// Build even when the commit's reprove.toml or .goreleaser.yaml sets -toolexec, -exec, -overlay or
    /// -modfile (in GOFLAGS): values that make the build run or read what they name. The report, the
    /// provenance and the VSA record them.
    #[arg(long)]
    allow_recipe_exec: bool,
    /// The sandbox runtime.
    #[arg(long, value_enum, default_value = "auto")]
    runtime: RuntimeArg,
    /// Keep the exported source and the rebuilt binary in this (new or empty) directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Kill the build after this long (90s, 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = sandbox::parse_duration)]
    timeout: Duration,
    /// Print the report as JSON (schemas/report.schema.json) on stdout.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the report as Markdown (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    markdown: bool,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    attest: super::provenance::VerifyAttestArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RuntimeArg {
    Auto,
    Runc,
    Bwrap,
    Podman,
    Docker,
}

impl RuntimeArg {
    pub(crate) fn choice(self) -> RuntimeChoice {
        match self {
            RuntimeArg::Auto => RuntimeChoice::Auto,
            RuntimeArg::Runc => RuntimeChoice::Only(Runtime::Runc),
            RuntimeArg::Bwrap => RuntimeChoice::Only(Runtime::Bwrap),
            RuntimeArg::Podman => RuntimeChoice::Only(Runtime::Podman),
            RuntimeArg::Docker => RuntimeChoice::Only(Runtime::Docker),
        }
    }
}

/// A spinner on stderr naming the running step.
struct Spinner(indicatif::ProgressBar);

impl Progress for Spinner {
    fn start(&self, step: Step) {
        self.0.set_message(format!("{step}…"));
    }

    fn finish(&self, step: Step, elapsed: Duration) {
        self.0.println(format!("  {step:<10} {:>6.1}s", elapsed.as_secs_f64()));
    }
}

/// The recipe inputs from the command line and the `REPROVE_*` variables.
pub(crate) fn recipe_inputs(
    recipe: &RecipeFlags,
    templates: &TemplateFlags,
    build: Option<&str>,
    from_reference: bool,
    allow_exec: bool,
) -> Result<RecipeInputs, Failure> {
    let (templates, target) = templates.to_values()?;
    Ok(RecipeInputs {
        flags: recipe.to_partial()?,
        env: std::env::vars().collect(),
        build: build.map(str::to_string),
        templates,
        target,
        from_reference,
        allow_exec,
    })
}

/// `--toolchain`, when given: it must be pinned by digest.
pub(crate) fn toolchain_flag(toolchain: Option<&str>) -> Result<Option<PinnedImage>, Failure> {
    toolchain.map(|t| t.parse::<PinnedImage>().map_err(fail)).transpose()
}

/// The Go module environment (`go env`, else the process environment), the download settings and the checksum database.
pub(crate) fn module_env() -> Result<(GoEnv, DownloadOptions, Arc<dyn modfetch::sumdb::ChecksumDb>), Failure> {
    let go = look_path("go");
    let go_env = match modfetch::go_env::load(go.as_deref()) {
        Ok(env) => env,
        Err(_) => GoEnv::from_process(&|k: &str| std::env::var(k).ok()),
    };
    let (client, _netrc) = ClientConfig::from_env(&go_env);
    let db = sumdb::from_env(&go_env, &client).map_err(Failure::input)?;
    Ok((go_env, DownloadOptions { client, go, ..DownloadOptions::default() }, db))
}

/// A spinner on a terminal unless `quiet`.
pub(crate) fn progress(quiet: bool) -> (Option<indicatif::ProgressBar>, Arc<dyn Progress>) {
    let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} reprove: {wide_msg}") {
            pb.set_style(style);
        }
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let progress: Arc<dyn Progress> = match &spinner {
        Some(pb) => Arc::new(Spinner(pb.clone())),
        None => Arc::new(rebuild::Quiet),
    };
    (spinner, progress)
}

pub(crate) fn run(args: Args) -> CommandResult {
    let toolchain = toolchain_flag(args.toolchain.as_deref())?;
    let reference = match (&args.reference, &args.reference_digest) {
        (Some(file), _) if file.to_str().is_some_and(|f| f.starts_with("oci://")) => {
            let (image, path) = rebuild::parse_oci_reference(file.to_str().unwrap_or_default())
                .map_err(|e| Failure::input(anyhow!("--reference {e}")))?;
            ReferenceInput::Image { image, path }
        }
        (Some(file), _) => ReferenceInput::File(file.clone()),
        (None, Some(d)) => ReferenceInput::Digest(rebuild::parse_sha256(d).ok_or_else(|| {
            Failure::input(anyhow!("--reference-digest {d:?}: expected sha256: and 64 hexadecimal digits"))
        })?),
        (None, None) => return Err(Failure::input(anyhow!("give --reference FILE or --reference-digest sha256:…"))),
    };
    super::provenance::check_push(&args.attest, matches!(reference, ReferenceInput::Image { .. }))?;
    let recipe = recipe_inputs(
        &args.recipe,
        &args.templates,
        args.build.as_deref(),
        args.from_reference,
        args.allow_recipe_exec,
    )?;
    let cache_dir = args.cache.open_store()?.dir().to_path_buf();
    let (go_env, download, db) = module_env()?;
    // Read once (a password from standard input): the pulls and `--push` share them.
    let registry = args.registry.to_options()?;
    let source = match (&args.module, &args.source) {
        (Some(m), _) => module_source(m)?,
        (None, Some(s)) => SourceInput::git(s.clone(), args.rev.clone()),
        (None, None) => return Err(Failure::input(anyhow!("give --source PATH|URL or --module PATH@VERSION"))),
    };
    let request = Request {
        source,
        reference,
        toolchain,
        recipe,
        allow_dirty: args.allow_dirty,
        runtime: args.runtime.choice(),
        cache_dir,
        keep: args.keep.clone(),
        registry: registry.clone(),
        go_env,
        download,
        sumdb: db,
        build_timeout: args.timeout,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        echo_build: false,
        io: super::io_runtime()?,
    };

    let interrupts = Interrupts::install()?;
    let (spinner, progress) = progress(args.json);
    let progress = interrupts.track(progress);
    let report = rebuild::verify(&request, progress.as_ref(), interrupts.cancel());
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    output(&args, &report)?;
    let verdict = match rebuild::exit_class(&report) {
        None if report.verdict == v1::Verdict::Reproduced => Ok(Verdict::Positive),
        None => Ok(Verdict::Negative),
        Some(class) => {
            let e = report.error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
            let err = anyhow!("{e}{}", exec_hint(report.error.as_ref().map(|e| e.code)))
                .context(format!("verify: no verdict ({class})"));
            Err(match class {
                Class::Input => Failure::input(err),
                Class::Infrastructure | Class::Security => Failure::infrastructure(err),
            })
        }
    };
    super::provenance::after_verify(&args.attest, &report, verdict, &registry)
}

/// `--module PATH@VERSION`, `PATH` or `auto` (the reference's main module).
fn module_source(arg: &str) -> Result<SourceInput, Failure> {
    let (path, version) = match arg {
        "auto" => ("", ""),
        a => a.rsplit_once('@').unwrap_or((a, "")),
    };
    if (path.is_empty() && arg != "auto") || (arg.contains('@') && version.is_empty()) {
        return Err(Failure::input(anyhow!("--module {arg:?}: expected PATH@VERSION, PATH or auto")));
    }
    Ok(SourceInput::Module { path: path.to_string(), version: version.to_string() })
}

/// The CLI's hint for a refused recipe value that runs code.
pub(crate) fn exec_hint(code: Option<Code>) -> &'static str {
    if code == Some(Code::RecipeExecRefused) {
        "\n(--allow-recipe-exec runs them; the report, the provenance and the VSA then record them)"
    } else {
        ""
    }
}

fn output(args: &Args, report: &v1::Report) -> Result<(), Failure> {
    let io = |what: &str, e: std::io::Error| Failure::infrastructure(anyhow!("{what}: {e}"));
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| Failure::infrastructure(anyhow!("serializing the report: {e}")))?;
        writeln!(stdout, "{text}").map_err(|e| io("writing stdout", e))?;
    } else if args.markdown {
        write!(stdout, "{}", report::render_markdown(report)).map_err(|e| io("writing stdout", e))?;
    } else {
        write!(stdout, "{}", report::render_text(report)).map_err(|e| io("writing stdout", e))?;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&summary)
            .map_err(|e| io(&format!("opening $GITHUB_STEP_SUMMARY {}", PathBuf::from(&summary).display()), e))?;
        f.write_all(report::render_markdown(report).as_bytes()).map_err(|e| io("writing $GITHUB_STEP_SUMMARY", e))?;
    }
    if let Some(file) = &args.junit {
        std::fs::write(file, report::render_junit(report))
            .map_err(|e| io(&format!("writing --junit {}", file.display()), e))?;
    }
    Ok(())
}
