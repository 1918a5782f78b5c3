//! `reprove attest push` and `reprove attest fetch`: attestations next to an image in
//! its registry, in the layouts cosign and admission controllers read (the `attach`
//! crate: cosign v3's Sigstore bundle referrer, cosign v2's legacy `.att` image).
//! `attest verify --image` (in `attest.rs`) fetches with [`fetch_report`] and runs
//! each attestation through the checks of `attest verify`.
//!
//! Both need the image by digest (a tag can move; what is attached belongs to one
//! digest). Credentials as for `toolchain pull`. Exit 0 done, 2 bad input (a tag-only
//! reference, an attestation file that cannot be read or is about another digest, an
//! image that does not exist),
//! 3 the registry or its content failed (a malformed index, a digest mismatch, a
//! document over a bound).

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use attach::{AttachError, Layouts, Source};
use oci::referrers::{Cache, Limits, ReferrersPath, Repository, SubjectKind};
use oci::PinnedImage;

use super::toolchain::RegistryArgs;
use crate::exit::{CommandResult, Failure, Verdict};

/// Which layouts `attest push` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FormatArg {
    /// An OCI 1.1 referrer holding a Sigstore bundle v0.3 (cosign v3).
    Referrer,
    /// cosign v2's legacy `sha256-<hex>.att` image (policy-controller's default).
    Legacy,
    /// Both.
    Both,
}

/// Arguments of `reprove attest push`.
#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// Attestations to attach: DSSE envelopes (.intoto.jsonl) or Sigstore bundles (.sigstore.json).
    #[arg(required = true, value_name = "ATTESTATION")]
    attestations: Vec<PathBuf>,
    /// The image, by digest (an index digest or a platform's manifest digest): REF@sha256:….
    #[arg(long, value_name = "REF@sha256:…")]
    image: String,
    /// The layouts to write.
    #[arg(long, value_enum, default_value = "both")]
    format: FormatArg,
    /// Print a JSON document (schemas/attest-push.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Arguments of `reprove attest fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {
    /// The image, by digest: REF@sha256:….
    #[arg(value_name = "REF@sha256:…")]
    image: String,
    /// Write each attestation into this directory (created if missing), named by its digest.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitsArgs,
    #[command(flatten)]
    cache: FetchCacheArgs,
    /// Print a JSON document (schemas/attest-fetch.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The bounds of a fetch (`attest fetch`, `attest verify --image`, per image in `admit`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LimitsArgs {
    /// Fetch at most this many attestations.
    #[arg(long, value_name = "N", default_value_t = oci::referrers::DEFAULT_MAX_REFERRERS)]
    max_referrers: usize,
    /// Fetch at most this many bytes of manifests and attestations together.
    #[arg(long, value_name = "BYTES", default_value_t = oci::referrers::DEFAULT_MAX_BYTES)]
    max_bytes: u64,
}

impl LimitsArgs {
    pub(crate) fn limits(&self) -> Limits {
        Limits { max_referrers: self.max_referrers, max_bytes: self.max_bytes }
    }
}

/// The cache of a fetch (`attest fetch`, `attest verify --image`): manifests and
/// attestations by digest, and the registries that serve the referrers API, under
/// CACHE_DIR/referrers. The referrers lists and legacy tags are always asked.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FetchCacheArgs {
    /// The cache directory; manifests and attestations fetched by digest are kept in
    /// DIR/referrers (default: $REPROVE_CACHE_DIR, else $XDG_CACHE_HOME/reprove, else ~/.cache/reprove).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Neither read nor write the cache: fetch everything from the registry.
    #[arg(long)]
    no_cache: bool,
}

impl FetchCacheArgs {
    /// The cache: in CACHE_DIR/referrers, or in memory only (--no-cache, or no cache directory).
    fn cache(&self) -> std::sync::Arc<Cache> {
        let dir = super::toolchain::CacheArgs { cache_dir: self.cache_dir.clone() }.dir();
        std::sync::Arc::new(match dir {
            Some(dir) if !self.no_cache => Cache::in_dir(dir.join("referrers")),
            _ => Cache::in_memory(oci::referrers::DEFAULT_MEMORY_BYTES),
        })
    }
}

pub(crate) fn pinned(image: &str) -> Result<PinnedImage, Failure> {
    image.parse::<PinnedImage>().map_err(|e| Failure::input(anyhow!("{image}: {e}")))
}

fn failure(e: AttachError) -> Failure {
    if e.is_input() {
        Failure::input(e)
    } else {
        Failure::infrastructure(e)
    }
}

fn kind_text(kind: SubjectKind, platforms: &[String]) -> String {
    match kind {
        SubjectKind::Index if platforms.is_empty() => "an image index".to_string(),
        SubjectKind::Index => format!("an image index of {}", platforms.join(", ")),
        SubjectKind::Manifest => "a single image manifest (one platform)".to_string(),
    }
}

fn path_text(path: ReferrersPath) -> &'static str {
    match path {
        ReferrersPath::Api => "the referrers API",
        ReferrersPath::TagSchema => "the referrers tag schema (the registry has no referrers API)",
    }
}

/// `reprove attest push`.
pub(crate) fn push(args: PushArgs) -> CommandResult {
    let image = pinned(&args.image)?;
    let options = args.registry.to_options()?;
    let mut prepared = Vec::with_capacity(args.attestations.len());
    for path in &args.attestations {
        let bytes = super::signing::read_input(path)?;
        let name = path.display().to_string();
        prepared.push(attach::prepare(&name, &bytes, image.digest()).map_err(failure)?);
    }
    let layouts = layouts(args.format);
    let runtime = super::io_runtime()?;
    let repository = Repository::new(image.reference(), &options)
        .map_err(|e| failure(AttachError::from(oci::referrers::ReferrersError::from(e))))?;
    let report = runtime.block_on(attach::push(&repository, image.digest(), &prepared, layouts)).map_err(failure)?;
    if args.json {
        let legacy_tag = report.legacy.as_ref().map(|l| l.tag.clone());
        let attestations: Vec<serde_json::Value> = report
            .attestations
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "predicateType": p.predicate_type,
                    "referrer": p.referrer.as_ref().map(|r| serde_json::json!({
                        "manifest": r.digest.to_string(), "path": r.path.as_str(), "added": r.added,
                    })),
                    "legacy": p.legacy_added.map(|added| serde_json::json!({
                        "tag": legacy_tag.clone().unwrap_or_default(), "added": added,
                    })),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "image": image.to_string(),
            "digest": image.digest().to_string(),
            "kind": kind_json(report.subject.kind),
            "platforms": report.subject.platforms,
            "attestations": attestations,
            "legacy": report.legacy.as_ref().map(|l| serde_json::json!({
                "tag": l.tag, "manifest": l.digest.to_string(), "added": l.added, "present": l.present,
            })),
        });
        println!("{doc:#}");
        return Ok(Verdict::Positive);
    }
    println!("image {image}: {}", kind_text(report.subject.kind, &report.subject.platforms));
    for p in &report.attestations {
        println!("{} ({})", p.name, p.predicate_type);
        if let Some(r) = &p.referrer {
            let what = if r.added { "pushed" } else { "already there" };
            println!("  referrer {}: {what}, listed by {}", r.digest, path_text(r.path));
        }
        if let Some(added) = p.legacy_added {
            let tag = report.legacy.as_ref().map_or(String::new(), |l| l.tag.clone());
            println!("  legacy {tag}: {}", if added { "added" } else { "already there" });
        }
    }
    if let Some(l) = &report.legacy {
        println!("legacy image {} is {} ({} added, {} already there)", l.tag, l.digest, l.added, l.present);
    }
    Ok(Verdict::Positive)
}

fn layouts(format: FormatArg) -> Layouts {
    match format {
        FormatArg::Referrer => Layouts::Referrer,
        FormatArg::Legacy => Layouts::Legacy,
        FormatArg::Both => Layouts::Both,
    }
}

/// `verify --attest --push`: attaches `files` (name and bytes: the signed provenance and
/// VSA) to the image the report's reference was read from, by the digest given and, when
/// that is an index, by the platform manifest's digest too: both statements name both
/// (docs/attestation-subjects.md). Returns what was done, one line each.
pub(crate) fn push_verified(
    report: &report::v1::Report,
    files: &[(String, Vec<u8>)],
    format: FormatArg,
    options: &oci::RegistryOptions,
) -> Result<Vec<String>, Failure> {
    let image = report.inputs.reference.image.as_ref().ok_or_else(|| {
        Failure::input(anyhow!(
            "the report's inputs.reference.image is missing: the reference was not read from an image"
        ))
    })?;
    let mut digests = vec![image.digest.clone()];
    if image.manifest_digest != image.digest {
        digests.push(image.manifest_digest.clone());
    }
    push_to(&image.name, &digests, files, format, options)
}

/// Attaches `files` to each of `digests` of the repository `name`; one line per
/// attestation pushed, for the user.
pub(crate) fn push_to(
    name: &str,
    digests: &[String],
    files: &[(String, Vec<u8>)],
    format: FormatArg,
    options: &oci::RegistryOptions,
) -> Result<Vec<String>, Failure> {
    let runtime = super::io_runtime()?;
    let mut lines = Vec::new();
    for digest in digests {
        let pinned = pinned(&format!("{name}@{digest}"))?;
        let mut prepared = Vec::with_capacity(files.len());
        for (name, bytes) in files {
            prepared.push(attach::prepare(name, bytes, pinned.digest()).map_err(failure)?);
        }
        let repository = Repository::new(pinned.reference(), options)
            .map_err(|e| failure(AttachError::from(oci::referrers::ReferrersError::from(e))))?;
        let pushed = runtime
            .block_on(attach::push(&repository, pinned.digest(), &prepared, layouts(format)))
            .map_err(failure)?;
        lines.push(format!("pushed to {pinned}, {}", kind_text(pushed.subject.kind, &pushed.subject.platforms)));
        for p in &pushed.attestations {
            if let Some(r) = &p.referrer {
                let what = if r.added { "added" } else { "already there" };
                lines.push(format!("  {} referrer {}: {what}, listed by {}", p.name, r.digest, path_text(r.path)));
            }
            if let (Some(added), Some(l)) = (p.legacy_added, &pushed.legacy) {
                let what = if added { "added" } else { "already there" };
                lines.push(format!("  {} legacy {}: {what}", p.name, l.tag));
            }
        }
    }
    Ok(lines)
}

/// The file name of a fetched attestation.
fn file_name(f: &attach::Fetched) -> String {
    let ext = match f.format {
        attest::bundle::Format::SigstoreBundle => "sigstore.json",
        attest::bundle::Format::Dsse => "intoto.jsonl",
    };
    format!("sha256-{}.{ext}", f.digest.hex())
}

fn write_output(dir: &Path, f: &attach::Fetched) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::input(anyhow!("creating {}: {e}", dir.display())))?;
    let path = dir.join(file_name(f));
    let mut bytes = f.bytes.to_vec();
    if f.format == attest::bundle::Format::Dsse && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    stdx::fs::write_atomic(&path, &bytes, ".reprove-attestation-", 0o644, stdx::fs::Existing::Replace)
        .map_err(|e| Failure::infrastructure(anyhow!("writing {}: {e}", path.display())))?;
    Ok(path)
}

/// Fetches the attestations of `image` (a pinned reference, as given) within `limits`.
pub(crate) fn fetch_report(
    image: &str,
    registry: &RegistryArgs,
    limits: &LimitsArgs,
    cache: &FetchCacheArgs,
) -> Result<(PinnedImage, attach::FetchReport), Failure> {
    let image = pinned(image)?;
    let options = registry.to_options()?;
    let runtime = super::io_runtime()?;
    let repository = Repository::new(image.reference(), &options)
        .map_err(|e| failure(AttachError::from(oci::referrers::ReferrersError::from(e))))?
        .with_cache(cache.cache());
    let report = runtime.block_on(attach::fetch(&repository, image.digest(), limits.limits())).map_err(failure)?;
    Ok((image, report))
}

/// Where a fetched attestation came from and what it is, as `--json` reports it.
pub(crate) fn fetched_json(f: &attach::Fetched) -> serde_json::Value {
    let mut v = match &f.source {
        Source::Referrer { path, manifest } => serde_json::json!({
            "source": "referrer", "path": path.as_str(), "manifest": manifest.to_string(),
        }),
        Source::Legacy { tag, manifest } => serde_json::json!({
            "source": "legacy", "tag": tag, "manifest": manifest.to_string(),
        }),
    };
    v["format"] = f.format.as_str().into();
    v["predicateType"] = f.predicate_type.clone().into();
    v["size"] = f.bytes.len().into();
    v["digest"] = f.digest.to_string().into();
    v
}

/// Where a fetched attestation came from, as text.
pub(crate) fn source_text(f: &attach::Fetched) -> String {
    match &f.source {
        Source::Referrer { manifest, .. } => format!("referrer {manifest}"),
        Source::Legacy { tag, .. } => format!("legacy {tag}"),
    }
}

pub(crate) fn kind_json(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Index => "index",
        SubjectKind::Manifest => "manifest",
    }
}

/// The header of the text output: what the digest is and how its referrers were listed.
pub(crate) fn print_header(image: &PinnedImage, report: &attach::FetchReport) {
    println!("image {image}: {}", kind_text(report.subject.kind, &report.subject.platforms));
    println!("referrers listed by {}", path_text(report.referrers_path));
}

/// `reprove attest fetch`.
pub(crate) fn fetch(args: FetchArgs) -> CommandResult {
    let (image, report) = fetch_report(&args.image, &args.registry, &args.limits, &args.cache)?;
    let mut files = Vec::new();
    for f in &report.attestations {
        files.push(match &args.output {
            Some(dir) => Some(write_output(dir, f)?),
            None => None,
        });
    }
    if args.json {
        let attestations: Vec<serde_json::Value> = report
            .attestations
            .iter()
            .zip(&files)
            .map(|(f, file)| {
                let mut v = fetched_json(f);
                if let Some(file) = file {
                    v["file"] = file.display().to_string().into();
                }
                v
            })
            .collect();
        let doc = serde_json::json!({
            "image": image.to_string(),
            "digest": image.digest().to_string(),
            "kind": kind_json(report.subject.kind),
            "platforms": report.subject.platforms,
            "referrersPath": report.referrers_path.as_str(),
            "attestations": attestations,
            "notes": report.notes,
        });
        println!("{doc:#}");
        return Ok(Verdict::Positive);
    }
    print_header(&image, &report);
    if report.attestations.is_empty() {
        println!("no attestations");
    }
    for (f, file) in report.attestations.iter().zip(&files) {
        let source = source_text(f);
        println!(
            "{:<16} {:<40} {:>8} {}  ({source})",
            f.format.as_str(),
            f.predicate_type.as_deref().unwrap_or("(unknown predicate type)"),
            f.bytes.len(),
            f.digest
        );
        if let Some(file) = file {
            println!("  written to {}", file.display());
        }
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(Verdict::Positive)
}
