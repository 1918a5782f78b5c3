//! `reprove recipe`: the recipe reprove would rebuild with, each field with
//! its origin, what is undetermined, conflicts, and the exact `go build`
//! command line.
//!
//! Inputs, highest precedence first: the recipe flags, `REPROVE_*`
//! variables, `reprove.toml` in `-C DIR`, a `.goreleaser.yaml` build entry in
//! `-C DIR`, the reference binary's build info (`--from`), defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use recipe::goreleaser::{Target, TemplateValues};
use recipe::{locked_toolchain, resolve, BuildVcs, Inputs, Origin, Partial, ReferencePlatform, Sourced};
use serde_json::json;

use crate::exit::{CommandResult, Failure, Verdict};

/// The recipe flags (shared with the commands that rebuild).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RecipeFlags {
    /// The package to build: ., ./cmd/app or an import path.
    #[arg(long, value_name = "PKG")]
    pub(crate) package: Option<String>,
    /// Target GOOS.
    #[arg(long)]
    pub(crate) goos: Option<String>,
    /// Target GOARCH.
    #[arg(long)]
    pub(crate) goarch: Option<String>,
    /// A build environment variable (CGO_ENABLED, GOAMD64, GOEXPERIMENT, GOFLAGS…). Repeatable.
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// -trimpath (--trimpath=false to turn it off).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) trimpath: Option<bool>,
    /// -ldflags, one argument ("" for none).
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub(crate) ldflags: Option<String>,
    /// -gcflags, one argument.
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub(crate) gcflags: Option<String>,
    /// -asmflags, one argument.
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub(crate) asmflags: Option<String>,
    /// -tags, comma-separated ("" for none).
    #[arg(long, value_name = "TAGS")]
    pub(crate) tags: Option<String>,
    /// -buildmode.
    #[arg(long, value_name = "MODE")]
    pub(crate) buildmode: Option<String>,
    /// -buildvcs: true, false or auto.
    #[arg(long, value_name = "true|false|auto")]
    pub(crate) buildvcs: Option<String>,
    /// -pgo: off, auto or a profile path in the source tree.
    #[arg(long, value_name = "PGO")]
    pub(crate) pgo: Option<String>,
    /// The file name of the built binary.
    #[arg(long, value_name = "NAME")]
    pub(crate) output_name: Option<String>,
    /// The Go version the toolchain must contain, e.g. go1.22.5.
    #[arg(long, value_name = "VERSION")]
    pub(crate) go_version: Option<String>,
}

impl RecipeFlags {
    /// The flags as the highest-precedence recipe layer.
    pub(crate) fn to_partial(&self) -> Result<Partial, Failure> {
        let s = |v: &Option<String>| v.clone().map(|v| Sourced::new(v, Origin::Flag));
        let mut p = Partial {
            package: s(&self.package),
            goos: s(&self.goos),
            goarch: s(&self.goarch),
            trimpath: self.trimpath.map(|v| Sourced::new(v, Origin::Flag)),
            ldflags: s(&self.ldflags),
            gcflags: s(&self.gcflags),
            asmflags: s(&self.asmflags),
            tags: self.tags.as_ref().map(|t| {
                Sourced::new(t.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(), Origin::Flag)
            }),
            buildmode: s(&self.buildmode),
            pgo: s(&self.pgo),
            output_name: s(&self.output_name),
            go_version: s(&self.go_version),
            ..Partial::default()
        };
        if let Some(v) = &self.buildvcs {
            let bv = match v.as_str() {
                "true" => BuildVcs::True,
                "false" => BuildVcs::False,
                "auto" => BuildVcs::Auto,
                _ => return Err(Failure::input(anyhow::anyhow!("--buildvcs={v}: expected true, false or auto"))),
            };
            p.buildvcs = Some(Sourced::new(bv, Origin::Flag));
        }
        for kv in &self.env {
            let (k, v) = split_kv(kv, "--env")?;
            p.env.insert(k, Sourced::new(v, Origin::Flag));
        }
        Ok(p)
    }
}

fn split_kv(kv: &str, flag: &str) -> Result<(String, String), Failure> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Failure::input(anyhow::anyhow!("{flag} {kv:?}: expected KEY=VALUE"))),
    }
}

/// The values `.goreleaser.yaml` templates expand to.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TemplateFlags {
    /// The release tag (.Tag; .Version is it without a leading v).
    #[arg(long, value_name = "TAG")]
    pub(crate) tag: Option<String>,
    /// The commit id (.Commit, .FullCommit, .ShortCommit); default: the reference's vcs.revision.
    #[arg(long, value_name = "SHA")]
    pub(crate) commit: Option<String>,
    /// The commit time in Unix seconds (.CommitDate, .CommitTimestamp); default: the reference's vcs.time.
    #[arg(long, value_name = "UNIX_TIME")]
    pub(crate) commit_time: Option<i64>,
    /// The release's build time in Unix seconds (.Date, .Timestamp).
    #[arg(long, value_name = "UNIX_TIME")]
    pub(crate) date: Option<i64>,
    /// A value for .Env.NAME. Repeatable.
    #[arg(long = "template-env", value_name = "K=V")]
    pub(crate) template_env: Vec<String>,
    /// The goreleaser target to use: OS_ARCH[_LEVEL] (default: the reference's, or --goos/--goarch).
    #[arg(long, value_name = "OS_ARCH[_LEVEL]")]
    pub(crate) target: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Infer the recipe from this reference binary's build info.
    #[arg(long, value_name = "BINARY")]
    from: Option<PathBuf>,
    /// The source tree holding reprove.toml, .goreleaser.yaml and reprove.lock.
    #[arg(short = 'C', value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The named build of reprove.toml, and the build id of .goreleaser.yaml.
    #[arg(long, value_name = "NAME")]
    build: Option<String>,
    /// Print a JSON document (schemas/recipe-output.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    recipe: RecipeFlags,
    #[command(flatten)]
    templates: TemplateFlags,
}

impl TemplateFlags {
    /// The template values and the goreleaser target the flags give.
    pub(crate) fn to_values(&self) -> Result<(TemplateValues, Option<Target>), Failure> {
        let mut values = TemplateValues {
            commit: self.commit.clone(),
            commit_time: self.commit_time,
            tag: self.tag.clone(),
            build_time: self.date,
            ..TemplateValues::default()
        };
        for kv in &self.template_env {
            let (k, v) = split_kv(kv, "--template-env")?;
            values.env.insert(k, v);
        }
        let target = match &self.target {
            Some(t) => Some(
                Target::parse(t)
                    .ok_or_else(|| Failure::input(anyhow::anyhow!("--target {t:?}: expected OS_ARCH[_LEVEL]")))?,
            ),
            None => None,
        };
        Ok((values, target))
    }
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Flag => "flag".into(),
        Origin::Environment(v) => format!("environment {v}"),
        Origin::RecipeFile(p) => p.clone(),
        Origin::Goreleaser(p) => p.clone(),
        Origin::ReferencePlatform(p) => format!("reference platform ({p})"),
        Origin::Reference(s) => format!("reference ({s})"),
        Origin::Default => "default".into(),
    }
}

pub(crate) fn run(args: Args) -> CommandResult {
    let reference = match &args.from {
        Some(path) => Some(
            goinfo::read_build_info_file(path)
                .map_err(|e| Failure::input(anyhow::anyhow!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let (templates, target) = args.templates.to_values()?;
    // The reference's platform picks the goreleaser target when none is given.
    let platform = match (&args.from, &reference) {
        (Some(path), Some(bi)) => Some(ReferencePlatform::new(bi, goinfo::read_machine_file(path))),
        _ => None,
    };
    let inputs = Inputs {
        flags: args.recipe.to_partial()?,
        env: std::env::vars().collect(),
        reference: reference.as_ref(),
        build: args.build.as_deref(),
        templates,
        target,
        platform,
    };
    let resolved = resolve(&args.dir, &inputs).map_err(Failure::input)?;
    let recipe = &resolved.recipe;
    let (toolchain, toolchain_error) = match locked_toolchain(&args.dir, recipe) {
        Ok(image) => (image.map(|i| i.to_string()), None),
        Err(e @ recipe::LockError::MissingVersion { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(Failure::input(e)),
    };
    let inputs_doc = json!({
        "reference": args.from.as_ref().map(|p| p.display().to_string()),
        "recipe_file": resolved.recipe_file,
        "goreleaser": resolved.goreleaser,
        "build": args.build,
        "mod_timestamp": resolved.mod_timestamp,
    });
    let output = recipe.output_name.clone();
    let args_v = recipe.go_build_args(&output);
    let env: BTreeMap<String, String> = recipe.build_env().into_iter().collect();
    if args.json {
        let mut doc = serde_json::to_value(recipe).map_err(|e| Failure::infrastructure(anyhow::anyhow!(e)))?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("complete".into(), json!(recipe.undetermined.is_empty()));
            let exec: Vec<serde_json::Value> = recipe
                .exec
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("needs_allow_recipe_exec".into(), json!(e.from_commit()));
                    }
                    v
                })
                .collect();
            obj.insert("exec".into(), json!(exec));
            obj.insert("inputs".into(), inputs_doc);
            obj.insert("toolchain".into(), json!(toolchain));
            obj.insert("toolchain_error".into(), json!(toolchain_error));
            obj.insert(
                "go_build".into(),
                json!({ "args": args_v, "env": env, "command_line": recipe.command_line(&output) }),
            );
        }
        println!("{doc:#}");
        return Ok(Verdict::Positive);
    }
    let undetermined = |f: &str| recipe.undetermined.iter().any(|u| u.field == f);
    let o = |f: &str| {
        recipe
            .origins
            .get(f)
            .map(origin_text)
            .unwrap_or_else(|| if undetermined(f) { "undetermined" } else { "-" }.into())
    };
    let row = |name: &str, value: String, field: &str| println!("{name:<16}{value:<40} {}", o(field));
    let none = |f: &str| if undetermined(f) { "(undetermined)".to_string() } else { "(none)".to_string() };
    row("go", recipe.go_version.clone().unwrap_or_else(|| none("go_version")), "go_version");
    row("package", recipe.package.clone(), "package");
    row("goos", recipe.goos.clone(), "goos");
    row("goarch", recipe.goarch.clone(), "goarch");
    for (k, v) in &recipe.env {
        row("env", format!("{k}={v}"), &format!("env.{k}"));
    }
    row("trimpath", recipe.trimpath.to_string(), "trimpath");
    row("ldflags", recipe.ldflags.clone().unwrap_or_else(|| none("ldflags")), "ldflags");
    for (name, v) in [("gcflags", &recipe.gcflags), ("asmflags", &recipe.asmflags), ("buildmode", &recipe.buildmode)] {
        if v.is_some() || recipe.origins.contains_key(name) {
            row(name, v.clone().unwrap_or_else(|| "(none)".into()), name);
        }
    }
    row("tags", if recipe.tags.is_empty() { "(none)".into() } else { recipe.tags.join(",") }, "tags");
    row("buildvcs", recipe.buildvcs.as_str().to_string(), "buildvcs");
    if let Some(pgo) = &recipe.pgo {
        row("pgo", pgo.clone(), "pgo");
    }
    if !recipe.extra_flags.is_empty() {
        row("flags", recipe.extra_flags.join(" "), "extra_flags");
    }
    row("output", recipe.output_name.clone(), "output_name");
    if let Some(rev) = &recipe.revision {
        row("revision", rev.clone(), "revision");
    }
    if let Some(g) = &recipe.default_godebug {
        row("DefaultGODEBUG", g.clone(), "default_godebug");
    }
    match (&toolchain, &toolchain_error) {
        (Some(t), _) => println!("{:<16}{t} (reprove.lock)", "toolchain"),
        (None, Some(e)) => println!("{:<16}(none: {e})", "toolchain"),
        _ => {}
    }
    if !recipe.conflicts.is_empty() {
        println!("\nconflicts:");
        for c in &recipe.conflicts {
            println!(
                "  {}: {:?} from {} wins over {:?} from {}",
                c.field,
                c.used,
                origin_text(&c.used_origin),
                c.overridden,
                origin_text(&c.overridden_origin)
            );
        }
    }
    if !recipe.notes.is_empty() {
        println!("\nnotes:");
        for n in &recipe.notes {
            println!("  {n}");
        }
    }
    if !recipe.exec.is_empty() {
        println!("\nruns or reads what it names:");
        for e in &recipe.exec {
            let needs = if e.from_commit() {
                "; from the source's own files: reprove verify and reprove check refuse it without --allow-recipe-exec"
            } else {
                ""
            };
            println!("  {e} ({}, from {}){needs}", e.field, origin_text(&e.origin));
        }
    }
    if !recipe.undetermined.is_empty() {
        println!("\nundetermined:");
        for u in &recipe.undetermined {
            println!("  {}: {}", u.field, u.reason);
        }
    }
    println!("\ncommand:\n  {}", recipe.command_line(&output));
    Ok(Verdict::Positive)
}
