//! `reprove admit`: the pre-merge check of a GitOps repository. Reads Kubernetes
//! manifests (files, directories, `-` for rendered Helm or Kustomize output), decides
//! on every container image with `admission::decide_all` under the admission policy
//! (one registry fetch per distinct digest), and prints allowed or denied with the
//! reason and what to do. `--pin` rewrites tag-only images to `tag@sha256:…` in the
//! files, editing only those scalars, and decides on the pinned images.
//!
//! Exit 0 every image allowed (warn mode and `on_error = "allow-with-warning"`
//! included), 1 an image denied (also a registry failure under `on_error = "deny"`:
//! the check cannot vouch for the image, so it is a denial with reason
//! `registry-error`, not an infrastructure error), 2 bad input (the policy, a file that
//! is not YAML, `--pin` of standard input).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use admission::decide::{Action, Decision, Request};
use admission::manifest::{ContainerImage, Manifests};
use admission::{Fetcher, Policy};
use anyhow::anyhow;

use super::toolchain::RegistryArgs;
use crate::exit::{CommandResult, Failure, Verdict};

/// The policy read when `--policy` is not given.
const DEFAULT_POLICY: &str = "admission-policy.toml";

/// Arguments of `reprove admit`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Kubernetes manifests: files, directories (every *.yaml, *.yml, *.json below
    /// them) or - for standard input (rendered Helm or Kustomize output).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The admission policy (TOML, schemas/admission-policy.schema.json; default:
    /// admission-policy.toml in the current directory).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The namespace of manifests that name none.
    #[arg(long, value_name = "NAME", default_value = "default")]
    namespace: String,
    /// Rewrite tag-only images to TAG@sha256:… in the files, in place (nothing else
    /// in them changes), then decide on the pinned images.
    #[arg(long)]
    pin: bool,
    /// Print a JSON document (schemas/admit.schema.json) instead of the table.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print a Markdown table (for a pull request comment).
    #[arg(long)]
    markdown: bool,
    #[command(flatten)]
    limits: super::attest_registry::LimitsArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// One input: its name for messages, its file (None for standard input), its text.
struct Input {
    name: String,
    file: Option<PathBuf>,
    text: String,
    manifests: Manifests,
}

fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// The manifest files below `dir`, sorted; hidden directories (`.git`) are skipped.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| Failure::input(anyhow!("reading {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Failure::input(anyhow!("reading {}: {e}", dir.display())))?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        let link = std::fs::symlink_metadata(&path)
            .map_err(|e| Failure::input(anyhow!("reading {}: {e}", path.display())))?
            .file_type()
            .is_symlink();
        let meta = std::fs::metadata(&path).map_err(|e| Failure::input(anyhow!("reading {}: {e}", path.display())))?;
        if meta.is_dir() {
            if !hidden && !link {
                walk(&path, out)?;
            }
        } else if meta.is_file() && is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn read_inputs(args: &Args) -> Result<Vec<Input>, Failure> {
    let mut inputs = Vec::new();
    let mut stdin_read = false;
    for path in &args.paths {
        if path.as_os_str() == "-" {
            if args.pin {
                return Err(Failure::input(anyhow!(
                    "--pin rewrites files in place; it cannot pin standard input (give the files)"
                )));
            }
            if args.registry.password_stdin {
                return Err(Failure::input(anyhow!(
                    "--password-stdin and - (manifests on standard input) both read standard input: give the \
                     manifests as files, or the credentials in an auth file (--authfile)"
                )));
            }
            if stdin_read {
                return Err(Failure::input(anyhow!("- (standard input) is given twice")));
            }
            stdin_read = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::input(anyhow!("reading standard input: {e}")))?;
            inputs.push(("(stdin)".to_owned(), None, text));
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|e| Failure::input(anyhow!("{}: {e}", path.display())))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| Failure::input(anyhow!("reading {}: {e}", file.display())))?;
            let text =
                String::from_utf8(bytes).map_err(|_| Failure::input(anyhow!("{}: not UTF-8 text", file.display())))?;
            inputs.push((file.display().to_string(), Some(file), text));
        }
    }
    inputs
        .into_iter()
        .map(|(name, file, text)| {
            let manifests = admission::manifest::parse(&text).map_err(|e| Failure::input(anyhow!("{name}: {e}")))?;
            Ok(Input { name, file, text, manifests })
        })
        .collect()
}

/// One image occurrence and its decision.
struct Row<'a> {
    input: &'a Input,
    image: &'a ContainerImage,
    decision: Decision,
    /// The reference written by `--pin`.
    pinned: Option<String>,
}

/// What to do, in the CLI's words (also `reprove webhook`'s denial messages).
pub(crate) fn action_text(action: &Action) -> String {
    match action {
        Action::None => String::new(),
        Action::AuditImage { image } => format!("run `reprove audit {image} --attest --push`"),
        Action::VerifyPaths { image, paths } => format!(
            "verify each binary and push its VSA (`reprove verify --reference oci://{image}#PATH … --attest --push`): {}",
            paths.join(", ")
        ),
        Action::Pin { reference: Some(reference) } => format!("pin it: `image: {reference}` (or run with --pin)"),
        Action::Pin { reference: None } => "pin it by digest: `image: NAME:TAG@sha256:…`".to_owned(),
        Action::Investigate { image } => format!(
            "the binaries were not reproduced: read the causes (`reprove attest verify --image {image} --key …`), \
             fix the build, or add an exemption with a reason to the policy"
        ),
        Action::TrustSigner => {
            "sign the VSAs with a key or certificate identity the policy trusts, or add their signer to the policy's [[verifiers]]".to_owned()
        }
        Action::Retry => "retry when the registry answers (the policy's on_error says what an outage means)".to_owned(),
        Action::FixReference => "fix the image reference".to_owned(),
    }
}

fn location(row: &Row<'_>) -> String {
    format!("{}:{}", row.input.name, row.image.span.line)
}

fn workload(row: &Row<'_>) -> String {
    format!("{}/{} {}", row.image.kind, row.image.name, row.image.container)
}

/// Pins the tag-only images whose digest was resolved: edits each file in place.
fn pin(rows: &mut [Row<'_>]) -> Result<Vec<String>, Failure> {
    let mut by_file: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let (Some(file), Action::Pin { reference: Some(_) }, Some(_)) =
            (&row.input.file, &row.decision.action, &row.decision.digest)
        {
            by_file.entry(file.clone()).or_default().push(i);
        }
    }
    let mut lines = Vec::new();
    for (file, indices) in by_file {
        let new_values: Vec<String> = indices
            .iter()
            .map(|&i| format!("{}@{}", rows[i].image.image, rows[i].decision.digest.clone().unwrap_or_default()))
            .collect();
        let text = &rows[indices[0]].input.text;
        let edits: Vec<(&admission::manifest::ScalarSpan, &str, &str)> = indices
            .iter()
            .zip(&new_values)
            .map(|(&i, new)| (&rows[i].image.span, rows[i].image.image.as_str(), new.as_str()))
            .collect();
        let edited = admission::manifest::edit(text, &edits)
            .map_err(|e| Failure::input(anyhow!("pinning {}: {e}", file.display())))?;
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644)
        };
        stdx::fs::write_atomic(&file, edited.as_bytes(), ".reprove-pin-", mode, stdx::fs::Existing::Replace)
            .map_err(|e| Failure::infrastructure(anyhow!("writing {}: {e}", file.display())))?;
        for (&i, new) in indices.iter().zip(new_values) {
            lines.push(format!("{}: pinned {} to {new}", location(&rows[i]), rows[i].image.image));
            rows[i].pinned = Some(new);
        }
    }
    Ok(lines)
}

/// `reprove admit`.
pub(crate) fn run(args: Args) -> CommandResult {
    let policy_path = args.policy.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY));
    let policy = Policy::load(&policy_path).map_err(|e| {
        let hint = if args.policy.is_none() { " (give the policy with --policy FILE)" } else { "" };
        Failure::input(anyhow!("{}: {e}{hint}", policy_path.display()))
    })?;
    let inputs = read_inputs(&args)?;
    let options = args.registry.to_options()?;
    let overall = options.deadlines.overall;
    let fetcher = Fetcher::new(options, args.limits.limits());
    let occurrences: Vec<(&Input, &ContainerImage)> =
        inputs.iter().flat_map(|input| input.manifests.images.iter().map(move |image| (input, image))).collect();
    let namespace_of = |image: &ContainerImage| image.namespace.clone().unwrap_or_else(|| args.namespace.clone());
    let requests: Vec<Request> = occurrences
        .iter()
        .map(|(_, image)| Request { image: image.image.clone(), namespace: namespace_of(image) })
        .collect();
    let runtime = super::io_runtime()?;
    let deadline = Instant::now() + overall;
    let decisions = runtime.block_on(admission::decide_all(&requests, &policy, &fetcher, deadline));
    let mut rows: Vec<Row<'_>> = occurrences
        .iter()
        .zip(decisions)
        .map(|((input, image), decision)| Row { input, image, decision, pinned: None })
        .collect();
    let mut notes = Vec::new();
    if args.pin {
        notes = pin(&mut rows)?;
        let again: Vec<(usize, Request)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.pinned.as_ref().map(|p| (i, Request { image: p.clone(), namespace: namespace_of(r.image) }))
            })
            .collect();
        if !again.is_empty() {
            let requests: Vec<Request> = again.iter().map(|(_, r)| r.clone()).collect();
            let deadline = Instant::now() + overall;
            let decisions = runtime.block_on(admission::decide_all(&requests, &policy, &fetcher, deadline));
            for ((i, _), decision) in again.iter().zip(decisions) {
                rows[*i].decision = decision;
            }
        }
    }
    let denied = rows.iter().filter(|r| !r.decision.allowed).count();
    let workloads: usize = inputs.iter().map(|i| i.manifests.workloads).sum();
    let mut ignored: BTreeMap<String, usize> = BTreeMap::new();
    for input in &inputs {
        for (kind, n) in &input.manifests.ignored {
            *ignored.entry(kind.clone()).or_default() += n;
        }
    }
    if args.json {
        print_json(&policy_path, &policy, &inputs, &rows, workloads, &ignored, &notes);
    } else if args.markdown {
        print_markdown(&rows, workloads, &ignored, &notes);
    } else {
        print_text(&rows, inputs.len(), workloads, &ignored, &notes);
    }
    Ok(if denied > 0 { Verdict::Negative } else { Verdict::Positive })
}

fn result_word(d: &Decision) -> &'static str {
    if d.allowed {
        "allowed"
    } else {
        "denied"
    }
}

fn ignored_text(ignored: &BTreeMap<String, usize>) -> String {
    if ignored.is_empty() {
        return "none".to_owned();
    }
    ignored.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

fn summary(rows: &[Row<'_>], workloads: usize, ignored: &BTreeMap<String, usize>) -> String {
    let denied = rows.iter().filter(|r| !r.decision.allowed).count();
    let ignored_total: usize = ignored.values().sum();
    format!(
        "{} images in {workloads} workloads: {} allowed, {denied} denied; {ignored_total} other documents ignored ({})",
        rows.len(),
        rows.len() - denied,
        ignored_text(ignored)
    )
}

fn print_text(rows: &[Row<'_>], files: usize, workloads: usize, ignored: &BTreeMap<String, usize>, notes: &[String]) {
    for note in notes {
        println!("{note}");
    }
    for row in rows {
        let d = &row.decision;
        let image = row.pinned.as_deref().unwrap_or(&row.image.image);
        println!(
            "{:<8} {:<17} {image}  ({}, {}, namespace {})",
            result_word(d),
            d.reason.as_str(),
            location(row),
            workload(row),
            d.namespace
        );
        println!("         {}", d.message);
        let action = action_text(&d.action);
        if !action.is_empty() && (d.reason != admission::Reason::Passed) {
            println!("         what to do: {action}");
        }
        for w in &d.warnings {
            println!("         warning: {w}");
        }
    }
    println!("{} ({files} files)", summary(rows, workloads, ignored));
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn print_markdown(rows: &[Row<'_>], workloads: usize, ignored: &BTreeMap<String, usize>, notes: &[String]) {
    println!("| result | reason | image | where | what to do |");
    println!("|---|---|---|---|---|");
    for row in rows {
        let d = &row.decision;
        let image = row.pinned.as_deref().unwrap_or(&row.image.image);
        let mut todo = action_text(&d.action);
        for w in &d.warnings {
            todo.push_str(&format!(" ⚠ {w}"));
        }
        println!(
            "| {} | {} | `{}` | {} ({}) | {} |",
            result_word(d),
            d.reason.as_str(),
            md_cell(image),
            md_cell(&location(row)),
            md_cell(&workload(row)),
            md_cell(&todo)
        );
    }
    println!();
    for note in notes {
        println!("- {note}");
    }
    println!("{}", summary(rows, workloads, ignored));
}

fn print_json(
    policy_path: &Path,
    policy: &Policy,
    inputs: &[Input],
    rows: &[Row<'_>],
    workloads: usize,
    ignored: &BTreeMap<String, usize>,
    notes: &[String],
) {
    let denied = rows.iter().filter(|r| !r.decision.allowed).count();
    let images: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut v = serde_json::to_value(&row.decision).unwrap_or_default();
            v["file"] = row.input.name.clone().into();
            v["document"] = row.image.document.into();
            v["line"] = row.image.span.line.into();
            v["kind"] = row.image.kind.clone().into();
            v["name"] = row.image.name.clone().into();
            v["container"] = row.image.container.clone().into();
            v["list"] = row.image.list.as_str().into();
            v["written"] = row.image.image.clone().into();
            v["pinned"] = row.pinned.clone().into();
            v["todo"] = action_text(&row.decision.action).into();
            v
        })
        .collect();
    let doc = serde_json::json!({
        "schemaVersion": 1,
        "allowed": denied == 0,
        "policy": policy_path.display().to_string(),
        "policyDigest": format!("sha256:{}", policy.digest),
        "summary": {
            "files": inputs.len(),
            "workloads": workloads,
            "images": rows.len(),
            "allowed": rows.len() - denied,
            "denied": denied,
            "ignored": ignored,
        },
        "notes": notes,
        "images": images,
    });
    println!("{doc:#}");
}
