//! `reprove audit IMAGE`: every Go binary of an image rebuilt from the source it
//! claims, one verdict for the image (the `audit` crate); `--list` stops after
//! finding them (`inventory`). Exit codes: 0 every binary reproduced, 1 a negative
//! verdict (one not reproduced or unverifiable, or no Go binary), 2 bad input (a
//! malformed, hostile or missing image, a bad reference, platform or setting), 3
//! infrastructure (registry, disk, sandbox).

use std::path::PathBuf;

use inventory::{Binary, ImageInput, Inventory, Options, ScanError};
use oci::walk::WalkOptions;
use oci::{Platform, ToolchainError};
use serde_json::{json, Value};

use super::toolchain::{parse_size, RegistryArgs};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: REF@sha256:… or REF:TAG in a registry, oci:DIR[:TAG] (an OCI layout), docker-archive:FILE (`docker save`).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// List the Go binaries of the image (paths, Go versions, main modules) without rebuilding them.
    #[arg(long, conflicts_with_all = ["source", "toolchain", "ldflags", "markdown", "html", "attest"])]
    list: bool,
    /// The repository of a main module: MODULE=URL|PATH[#REV] (repeatable); for binaries
    /// built from a checkout (vcs.revision, else REV or HEAD for (devel)).
    #[arg(long, value_name = "MODULE=URL|PATH")]
    source: Vec<String>,
    /// The toolchain image for a Go version: goX.Y.Z=IMAGE@sha256:… (repeatable); also
    /// `[audit.toolchains]` in reprove.toml and reprove.lock in --dir.
    #[arg(long, value_name = "GOVERSION=IMAGE@DIGEST")]
    toolchain: Vec<String>,
    /// -ldflags a binary was built with (build info cannot record them under -trimpath):
    /// BINARY=FLAGS, BINARY its path in the image or its main package (repeatable).
    #[arg(long, value_name = "BINARY=FLAGS")]
    ldflags: Vec<String>,
    /// The audit directory: its reprove.toml ([audit]) and reprove.lock are read.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Rebuilds run at once.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// The sandbox runtime.
    #[arg(long, value_enum, default_value = "auto")]
    runtime: super::verify::RuntimeArg,
    /// Kill a build after this long (90s, 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = sandbox::parse_duration)]
    timeout: std::time::Duration,
    /// Run recipe values that make a build run or read what they name (-toolexec…); recorded.
    #[arg(long)]
    allow_recipe_exec: bool,
    /// Print the audit as Markdown (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Also write the audit as one self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    cache: super::toolchain::CacheArgs,
    #[command(flatten)]
    attest: super::provenance::VerifyAttestArgs,
    /// Only this platform of an image index (os/arch[/variant]). Repeatable; default: every platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Vec<String>,
    /// Print a JSON document (schemas/audit-report.schema.json; with --list schemas/audit-list.schema.json).
    #[arg(long)]
    json: bool,
    /// Largest file read to see whether it is a Go binary (larger ones are listed as not read).
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    max_binary_size: String,
    /// Bound of the uncompressed size of each platform's layers together.
    #[arg(long, value_name = "SIZE", default_value = "32G")]
    max_unpacked_size: String,
    /// Write each binary found to DIR, named by its SHA-256.
    #[arg(long, value_name = "DIR")]
    binaries_dir: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(args: Args) -> CommandResult {
    let started = (std::time::Instant::now(), stdx::time::now_unix());
    let input = ImageInput::parse(&args.image).map_err(Failure::input)?;
    if !args.list && args.attest.push && !matches!(input, ImageInput::Registry(_)) {
        return Err(Failure::input(anyhow::anyhow!(
            "--push attaches the attestations to the image in its registry: audit REF@sha256:… (or REF:TAG)"
        )));
    }
    let settings = if args.list { None } else { Some(settings(&args)?) };
    // The binaries are kept for their rebuilds, below the cache, until the audit ends.
    let work = match (&args.binaries_dir, args.list) {
        (None, false) => {
            let root = args.cache.dir().ok_or_else(|| {
                Failure::input(anyhow::anyhow!("no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME"))
            })?;
            let parent = root.join("work");
            std::fs::create_dir_all(&parent)
                .map_err(|e| Failure::infrastructure(anyhow::anyhow!("creating {}: {e}", parent.display())))?;
            Some(tempfile::Builder::new().prefix("audit-").tempdir_in(&parent).map_err(|e| {
                Failure::infrastructure(anyhow::anyhow!("creating a work directory in {}: {e}", parent.display()))
            })?)
        }
        _ => None,
    };
    let platforms =
        args.platform.iter().map(|p| p.parse::<Platform>()).collect::<Result<Vec<_>, _>>().map_err(Failure::input)?;
    let walk = WalkOptions {
        max_file_size: parse_size(&args.max_binary_size)?,
        max_unpacked_size: parse_size(&args.max_unpacked_size)?,
        ..WalkOptions::default()
    };
    let binaries_dir = args.binaries_dir.clone().or_else(|| work.as_ref().map(|w| w.path().join("binaries")));
    let mut options = Options { walk, binaries_dir, ..Options::default() };
    options.open.platforms = platforms;
    if matches!(input, ImageInput::Registry(_)) {
        options.open.registry = args.registry.to_options()?;
    }
    // One runtime for the scan and every rebuild's registry and GOPROXY clients; a
    // rebuild thread that finds it driven by another polls its own work meanwhile.
    let runtime = super::io_runtime()?;
    let inventory = inventory::scan_blocking(&runtime, &input, &options).map_err(|e| failure(&input, e))?;
    for note in &inventory.image.notes {
        eprintln!("reprove: note: {note}");
    }
    for p in &inventory.platforms {
        for note in &p.notes {
            eprintln!("reprove: note: {}: {note}", p.platform);
        }
    }
    if let Some(settings) = settings {
        return rebuild_all(&args, &inventory, &settings, runtime, started);
    }
    if args.json {
        let doc = document(&inventory);
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Failure::infrastructure(anyhow::anyhow!(e)))?);
    } else {
        print!("{}", text(&inventory));
    }
    Ok(Verdict::Positive)
}

/// The auditor's settings: flags first, then the audit directory's files.
fn settings(args: &Args) -> Result<::audit::Settings, Failure> {
    let mut s = ::audit::Settings::default();
    for v in &args.source {
        s.add_source_flag(v).map_err(|e| Failure::input(anyhow::anyhow!("--{e}")))?;
    }
    for v in &args.toolchain {
        s.add_toolchain_flag(v).map_err(|e| Failure::input(anyhow::anyhow!("--toolchain: {e}")))?;
    }
    for v in &args.ldflags {
        s.add_ldflags_flag(v).map_err(|e| Failure::input(anyhow::anyhow!("--{e}")))?;
    }
    s.add_directory(&args.dir).map_err(|e| Failure::input(anyhow::anyhow!(e)))?;
    Ok(s)
}

/// Rebuilds and judges every binary found, prints the audit, signs and pushes it if asked.
fn rebuild_all(
    args: &Args,
    inventory: &Inventory,
    settings: &::audit::Settings,
    io: std::sync::Arc<tokio::runtime::Runtime>,
    started: (std::time::Instant, i64),
) -> CommandResult {
    let cache_dir = args.cache.open_store()?.dir().to_path_buf();
    let (go_env, download, sumdb) = super::verify::module_env()?;
    let registry = args.registry.to_options()?;
    let recipe = rebuild::RecipeInputs {
        flags: recipe::Partial::default(),
        env: Vec::new(),
        build: None,
        templates: recipe::TemplateValues::default(),
        target: None,
        from_reference: true,
        allow_exec: args.allow_recipe_exec,
    };
    let shared = rebuild::Request {
        source: rebuild::SourceInput::git(String::new(), String::new()),
        reference: rebuild::ReferenceInput::None,
        toolchain: None,
        recipe,
        allow_dirty: false,
        runtime: args.runtime.choice(),
        cache_dir,
        keep: None,
        registry: registry.clone(),
        go_env,
        download,
        sumdb,
        build_timeout: args.timeout,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        echo_build: false,
        io,
    };
    let names: Vec<String> = inventory
        .platforms
        .iter()
        .flat_map(|p| p.binaries.iter().map(move |b| format!("{} {}", p.platform, b.path)))
        .collect();
    let bars = super::audit_progress::Bars::new(names, args.json);
    let interrupts = super::interrupt::Interrupts::install()?;
    let quiet = ::audit::run::Silent;
    let progress: &dyn ::audit::run::AuditProgress = match &bars {
        Some(b) => b,
        None => &quiet,
    };
    let audit = ::audit::Audit {
        settings,
        shared: &shared,
        jobs: usize::from(args.jobs),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started,
    };
    let doc = ::audit::audit(inventory, &audit, progress, interrupts.cancel());
    if let Some(b) = &bars {
        b.clear();
    }
    output(args, &doc)?;
    let verdict = if doc.verdict.is_positive() {
        Ok(Verdict::Positive)
    } else {
        match doc.error_class() {
            Some(class) if doc.verdict == report::audit::v1::ImageVerdict::Error => {
                let err = anyhow::anyhow!("audit: {}", doc.summary);
                Err(match class {
                    report::v1::Class::Input => Failure::input(err),
                    _ => Failure::infrastructure(err),
                })
            }
            _ => Ok(Verdict::Negative),
        }
    };
    if !args.attest.attest {
        return verdict;
    }
    let verdict = verdict?;
    let lines = super::provenance::attest_audit(&args.attest, &doc, &registry).map_err(|f| Failure {
        class: f.class,
        error: f.error.context("audit --attest: the verdict stands, attesting it failed"),
    })?;
    for line in lines {
        eprintln!("reprove: {line}");
    }
    Ok(verdict)
}

fn output(args: &Args, doc: &report::audit::v1::AuditReport) -> Result<(), Failure> {
    use std::io::Write as _;
    let io = |what: &str, e: std::io::Error| Failure::infrastructure(anyhow::anyhow!("{what}: {e}"));
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(doc).map_err(|e| Failure::infrastructure(anyhow::anyhow!(e)))?;
        writeln!(stdout, "{text}").map_err(|e| io("writing stdout", e))?;
    } else if args.markdown {
        write!(stdout, "{}", report::audit::render_markdown(doc)).map_err(|e| io("writing stdout", e))?;
    } else {
        write!(stdout, "{}", report::audit::render_text(doc)).map_err(|e| io("writing stdout", e))?;
    }
    if args.markdown {
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&summary)
                .map_err(|e| io("opening $GITHUB_STEP_SUMMARY", e))?;
            f.write_all(report::audit::render_markdown(doc).as_bytes())
                .map_err(|e| io("writing $GITHUB_STEP_SUMMARY", e))?;
        }
    }
    if let Some(file) = &args.html {
        stdx::fs::write_atomic(
            file,
            report::audit::render_html(doc).as_bytes(),
            ".reprove-audit-",
            0o644,
            stdx::fs::Existing::Replace,
        )
        .map_err(|e| io(&format!("writing --html {}", file.display()), e))?;
    }
    Ok(())
}

fn failure(input: &ImageInput, e: ScanError) -> Failure {
    let is_input = e.is_input(input);
    let error = match e {
        // The bound is this command's flag: say so (the library does not know flags).
        ScanError::Image(ToolchainError::TooLarge { image, limit }) => {
            anyhow::anyhow!("image {image} unpacks to more than {limit} bytes (--max-unpacked-size); refusing it")
        }
        e => anyhow::Error::new(e),
    };
    if is_input {
        Failure::input(error)
    } else {
        Failure::infrastructure(error)
    }
}

/// One line per binary: platform, path, Go version, main module@version (or why it is unverifiable).
fn text(inv: &Inventory) -> String {
    let mut out = String::new();
    let resolved = if inv.image.resolved_from_tag { " (resolved from a tag)" } else { "" };
    out.push_str(&format!(
        "image {} {} {}{resolved}\n",
        inv.image.input,
        inv.image.digest_of.as_str(),
        inv.image.digest
    ));
    for p in &inv.platforms {
        for b in &p.binaries {
            let (go, what) = match &b.build_info {
                Some(bi) => {
                    let main = if bi.main.path.is_empty() {
                        format!("{} (no main module)", String::from_utf8_lossy(&bi.path))
                    } else {
                        format!(
                            "{}@{}",
                            String::from_utf8_lossy(&bi.main.path),
                            String::from_utf8_lossy(&bi.main.version)
                        )
                    };
                    (String::from_utf8_lossy(&bi.go_version).into_owned(), main)
                }
                None => ("-".to_string(), format!("unverifiable: {}", unverifiable(b))),
            };
            out.push_str(&format!("{}\t{}\t{go}\t{what}\n", p.platform, b.path));
        }
    }
    out
}

fn unverifiable(b: &Binary) -> String {
    b.unverifiable.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn binary_json(b: &Binary) -> Value {
    let build_info = b.build_info.as_ref().map(|bi| {
        let bytes = goinfo::format_json(bi, &goinfo::ExtraFields::default());
        serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
    });
    json!({
        "path": b.path,
        "links": b.links,
        "sha256": b.sha256,
        "size": b.size,
        "format": inventory::format_name(b.format),
        "machine": b.machine.map(|m| json!({
            "format": inventory::format_name(m.format),
            "goarch": m.goarch,
            "description": m.describe(),
        })),
        "buildInfo": build_info,
        "unverifiable": b.unverifiable.as_ref().map(ToString::to_string),
        "evidence": match &b.unverifiable {
            Some(inventory::Unverifiable::NoBuildInfo { evidence, .. }) => json!(evidence),
            None => Value::Null,
        },
    })
}

/// The `--json` document (schemas/audit-list.schema.json).
fn document(inv: &Inventory) -> Value {
    json!({
        "image": {
            "input": inv.image.input,
            "reference": inv.image.reference,
            "digest": inv.image.digest.to_string(),
            "digestOf": inv.image.digest_of.as_str(),
            "mediaType": inv.image.media_type,
            "resolvedFromTag": inv.image.resolved_from_tag,
            "notes": inv.image.notes,
        },
        "platforms": inv.platforms.iter().map(|p| json!({
            "platform": p.platform.to_string(),
            "manifestDigest": p.manifest_digest.as_ref().map(ToString::to_string),
            "configDigest": p.config_digest.to_string(),
            "binaries": p.binaries.iter().map(binary_json).collect::<Vec<_>>(),
            "notes": p.notes,
        })).collect::<Vec<_>>(),
    })
}
