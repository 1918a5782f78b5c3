//! `reprove check`: is the build reproducible at all? Builds the commit once
//! as a baseline and again under each variation (build directory,
//! environment, warm build cache) in the pinned toolchain, and says which
//! variation changes the output and why. Exit codes: 0 reproducible, 1 a
//! variation changes the output, 2 bad input, 3 infrastructure.

use std::io::Write as _;
use std::time::Duration;

use anyhow::anyhow;
use rebuild::check::{self, v1};
use rebuild::{ReferenceInput, Request};

use super::interrupt::Interrupts;
use super::recipe::{RecipeFlags, TemplateFlags};
use super::toolchain::{CacheArgs, RegistryArgs};
use super::verify::{module_env, progress, recipe_inputs, toolchain_flag, RuntimeArg};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The source: a local Git repository, or a clone URL (file://, https://, ssh://, user@host:path);
    /// ssh uses the ssh agent and known_hosts ($REPROVE_SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts).
    #[arg(long, value_name = "PATH|URL", default_value = ".")]
    source: String,
    /// The revision to build: a commit id, a tag or a branch.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    rev: String,
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
    /// Build even when the local working tree has uncommitted changes.
    #[arg(long)]
    allow_dirty: bool,
    /// Build even when the commit's reprove.toml or .goreleaser.yaml sets -toolexec, -exec, -overlay or
    /// -modfile (in GOFLAGS): values that make the build run or read what they name.
    #[arg(long)]
    allow_recipe_exec: bool,
    /// The sandbox runtime.
    #[arg(long, value_enum, default_value = "auto")]
    runtime: RuntimeArg,
    /// Kill each build after this long (90s, 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = sandbox::parse_duration)]
    timeout: Duration,
    /// Print the report as JSON (schemas/check.schema.json) on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(args: Args) -> CommandResult {
    let toolchain = toolchain_flag(args.toolchain.as_deref())?;
    let recipe = recipe_inputs(&args.recipe, &args.templates, args.build.as_deref(), false, args.allow_recipe_exec)?;
    let cache_dir = args.cache.open_store()?.dir().to_path_buf();
    let (go_env, download, sumdb) = module_env()?;
    let request = Request {
        source: rebuild::SourceInput::git(args.source.clone(), args.rev.clone()),
        reference: ReferenceInput::None,
        toolchain,
        recipe,
        allow_dirty: args.allow_dirty,
        runtime: args.runtime.choice(),
        cache_dir,
        keep: None,
        registry: args.registry.to_options()?,
        go_env,
        download,
        sumdb,
        build_timeout: args.timeout,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        echo_build: false,
        io: super::io_runtime()?,
    };
    let interrupts = Interrupts::install()?;
    let (spinner, progress) = progress(args.json);
    let progress = interrupts.track(progress);
    let report = check::check(&request, progress.as_ref(), interrupts.cancel());
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)
            .map(|t| t + "\n")
            .map_err(|e| Failure::infrastructure(anyhow!("serializing the report: {e}")))?
    } else {
        render_text(&report)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::infrastructure(anyhow!("writing stdout: {e}")))?;
    match report.verdict {
        check::Verdict::Reproducible => Ok(Verdict::Positive),
        check::Verdict::NotReproducible => Ok(Verdict::Negative),
        check::Verdict::Error => {
            let e = report.error.as_ref();
            let hint = super::verify::exec_hint(e.map(|e| e.code));
            let err =
                anyhow!("{}{hint}", e.map(|e| e.message.clone()).unwrap_or_default()).context("check: no verdict");
            Err(match e.map(|e| e.class) {
                Some(rebuild::Class::Input) => Failure::input(err),
                Some(rebuild::Class::Infrastructure | rebuild::Class::Security) | None => Failure::infrastructure(err),
            })
        }
    }
}

fn render_text(r: &v1::Report) -> String {
    let mut s = format!("verdict: {}\n  {}\n", r.verdict.as_str().to_uppercase(), r.summary);
    let src = &r.inputs.source;
    s += &format!("source:     {} @ {}\n", src.uri, src.commit.as_deref().unwrap_or(&src.rev));
    s += &format!("build:      go {}\n", r.recipe.go_args.join(" "));
    for e in &r.recipe.exec {
        s += &format!("WARNING:    {}\n", report::exec_warning(e));
    }
    if let Some(b) = &r.baseline {
        s += &format!("baseline:   sha256:{}\n", b.sha256);
    }
    for v in &r.variations {
        let mark = if v.identical { "same" } else { "DIFFERS" };
        s += &format!("{:<11} {mark}: {}\n", format!("{}:", v.name), v.description);
        for c in &v.causes {
            s += &format!("              {} ({}): {}\n", c.code, c.confidence, c.explanation);
        }
    }
    for n in &r.not_varied {
        s += &format!("not varied: {n}\n");
    }
    if let Some(e) = &r.error {
        s += &format!("error:      [{}/{}] in step {}: {}\n", e.class, e.code, e.step, e.message);
    }
    s
}
