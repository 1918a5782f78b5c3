//! `reprove recipe`: the recipe reprove would rebuild with, each field with
//! its origin, what is undetermined, conflicts, and the exact `go build`
//! command line.
//!
//! Inputs, highest precedence first: the recipe flags, `REPROVE_*`
//! variables, `reprove.toml` in `-C DIR`, a `.goreleaser.yaml` build entry in
//! `-C DIR`, the reference binary's build info (`--from`), defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use verifier::recipe::goreleaser::{Goreleaser, Target, TemplateValues};
use verifier::recipe::lock::LockFile;
use verifier::recipe::{
    infer_partial, merge, partial_from_env, BuildVcs, Origin, Partial, Recipe, RecipeFile, Sourced,
};

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
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
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

/// The goreleaser files reprove reads, in goreleaser's order.
pub(crate) const GORELEASER_FILES: &[&str] =
    &[".goreleaser.yml", ".goreleaser.yaml", "goreleaser.yml", "goreleaser.yaml"];

/// Unix seconds of an RFC 3339 UTC time as Go's vcs.time writes it.
fn parse_vcs_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Everything `reprove recipe` resolved.
pub(crate) struct Resolved {
    pub(crate) recipe: Recipe,
    pub(crate) inputs: serde_json::Value,
}

/// Merges every input for `dir` into the recipe.
pub(crate) fn resolve(
    dir: &Path,
    from: Option<&Path>,
    build: Option<&str>,
    flags: &RecipeFlags,
    templates: &TemplateFlags,
) -> Result<Resolved, Failure> {
    let flag_layer = flags.to_partial()?;
    let env_layer = partial_from_env(std::env::vars()).map_err(Failure::input)?;
    let file = RecipeFile::load(dir).map_err(Failure::input)?;
    let file_layer = file.as_ref().map(|f| f.partial(build)).transpose().map_err(Failure::input)?;
    let reference_layer = match from {
        Some(path) => {
            let bi = verifier::goinfo::read_build_info_file(path)
                .map_err(|e| Failure::input(anyhow::anyhow!("{}: {e}", path.display())))?;
            Some(infer_partial(&bi))
        }
        None => None,
    };

    let mut goreleaser_path = None;
    let mut goreleaser_layer = None;
    let mut mod_timestamp = None;
    if let Some(name) = GORELEASER_FILES.iter().find(|n| dir.join(n).is_file()) {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::input(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
        let g = Goreleaser::parse(&text, name).map_err(Failure::input)?;
        let reference = reference_layer.as_ref();
        let mut values = TemplateValues {
            commit: templates.commit.clone().or_else(|| reference.and_then(|r| r.revision.clone()).map(|s| s.value)),
            commit_time: templates.commit_time,
            tag: templates.tag.clone(),
            build_time: templates.date,
            ..TemplateValues::default()
        };
        if values.commit_time.is_none() {
            if let Some(path) = from {
                if let Ok(bi) = verifier::goinfo::read_build_info_file(path) {
                    values.commit_time = bi.setting("vcs.time").and_then(|t| parse_vcs_time(&t.to_string()));
                }
            }
        }
        for kv in &templates.template_env {
            let (k, v) = split_kv(kv, "--template-env")?;
            values.env.insert(k, v);
        }
        // The target: --target, else the explicit or inferred GOOS/GOARCH and level.
        let target = match &templates.target {
            Some(t) => Some(
                Target::parse(t)
                    .ok_or_else(|| Failure::input(anyhow::anyhow!("--target {t:?}: expected OS_ARCH[_LEVEL]")))?,
            ),
            None => {
                let pick = |f: fn(&Partial) -> Option<String>| f(&flag_layer).or_else(|| reference.and_then(f));
                let goos = pick(|p| p.goos.as_ref().map(|s| s.value.clone()));
                let goarch = pick(|p| p.goarch.as_ref().map(|s| s.value.clone()));
                match (goos, goarch) {
                    (Some(goos), Some(goarch)) => {
                        let mut t = Target { goos, goarch, level: None };
                        if let Some(var) = t.level_var() {
                            t.level = flag_layer
                                .env
                                .get(var)
                                .or_else(|| reference.and_then(|r| r.env.get(var)))
                                .map(|s| s.value.clone());
                        }
                        Some(t)
                    }
                    _ => None,
                }
            }
        };
        let id = build.filter(|b| g.build_ids().iter().any(|i| i == b));
        let built = g.build(id, target.as_ref(), &values).map_err(Failure::input)?;
        mod_timestamp = built.mod_timestamp.clone();
        goreleaser_layer = Some(built.partial);
        goreleaser_path = Some(format!("{name}#{}", built.id));
    }

    let layers: Vec<Partial> = [Some(flag_layer), Some(env_layer), file_layer, goreleaser_layer, reference_layer]
        .into_iter()
        .flatten()
        .collect();
    let recipe = merge(&layers);
    let inputs = json!({
        "reference": from.map(|p| p.display().to_string()),
        "recipe_file": file.as_ref().map(|f| f.path.clone()),
        "goreleaser": goreleaser_path,
        "build": build,
        "mod_timestamp": mod_timestamp,
    });
    Ok(Resolved { recipe, inputs })
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Flag => "flag".into(),
        Origin::Environment(v) => format!("environment {v}"),
        Origin::RecipeFile(p) => p.clone(),
        Origin::Goreleaser(p) => p.clone(),
        Origin::Reference(s) => format!("reference ({s})"),
        Origin::Default => "default".into(),
    }
}

pub(crate) fn run(args: Args) -> CommandResult {
    let resolved = resolve(&args.dir, args.from.as_deref(), args.build.as_deref(), &args.recipe, &args.templates)?;
    let recipe = &resolved.recipe;
    let (toolchain, toolchain_error) = match (&recipe.go_version, LockFile::load(&args.dir)) {
        (_, Err(e)) => return Err(Failure::input(e)),
        (Some(v), Ok(Some(lock))) => match lock.toolchain(v) {
            Ok(image) => (Some(image.to_string()), None),
            Err(e) => (None, Some(e.to_string())),
        },
        (None, Ok(Some(_))) => (None, Some("the Go version is undetermined".to_string())),
        (_, Ok(None)) => (None, None),
    };
    let output = recipe.output_name.clone();
    let args_v = recipe.go_build_args(&output);
    let env: BTreeMap<String, String> = recipe.build_env().into_iter().collect();
    if args.json {
        let mut doc = serde_json::to_value(recipe).map_err(|e| Failure::infrastructure(anyhow::anyhow!(e)))?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("complete".into(), json!(recipe.undetermined.is_empty()));
            obj.insert("inputs".into(), resolved.inputs.clone());
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
    if !recipe.undetermined.is_empty() {
        println!("\nundetermined:");
        for u in &recipe.undetermined {
            println!("  {}: {}", u.field, u.reason);
        }
    }
    println!("\ncommand:\n  {}", recipe.command_line(&output));
    Ok(Verdict::Positive)
}
