//! The audit of one scanned image: a decision per binary, the rebuilds, and
//! the document (`report::audit::v1`).

use std::time::Instant;

use inventory::{Binary, Inventory, PlatformInventory};
use report::audit::v1 as doc;
use report::v1;
use sandbox::CancelToken;

use crate::claim::{go_version, Claim};
use crate::config::Settings;
use crate::outcome::{claimed_source, judge, reason};
use crate::plan::{decide, Decision};
use crate::run::{run, AuditProgress, Job, Shared};

/// What an audit needs besides the scanned image.
pub struct Audit<'a> {
    /// Where sources, toolchains and ldflags come from.
    pub settings: &'a Settings,
    /// What every rebuild shares (caches, registry, module environment, runtime).
    pub shared: &'a Shared,
    /// Rebuilds at once.
    pub jobs: usize,
    /// reprove's version, for the document.
    pub tool_version: String,
    /// When the audit started (the scan is part of it).
    pub started: (Instant, i64),
}

/// One binary on its way to the document.
struct Entry<'a> {
    platform: usize,
    binary: &'a Binary,
    claim: Claim,
    decision: Decision,
    job: Option<usize>,
}

/// Audits `inventory`: decides for every binary, rebuilds those it can
/// (deduped, `audit.jobs` at a time), and returns the document.
pub fn audit(
    inventory: &Inventory,
    audit: &Audit<'_>,
    progress: &dyn AuditProgress,
    cancel: &CancelToken,
) -> doc::AuditReport {
    let mut entries = Vec::new();
    let mut jobs = Vec::new();
    for (pi, platform) in inventory.platforms.iter().enumerate() {
        for binary in &platform.binaries {
            let claim = Claim::of(binary.build_info.as_ref());
            let mut decision = decide(&binary.path, binary.build_info.as_ref(), audit.settings);
            if let (
                Decision::Unverifiable { detail, .. },
                Some(inventory::Unverifiable::NoBuildInfo { evidence, .. }),
            ) = (&mut decision, &binary.unverifiable)
            {
                *detail = format!("its build info was stripped, so it claims no source (Go by its {evidence})");
            }
            let job = match (&decision, &binary.file) {
                (Decision::Build(plan), Some(file)) => {
                    jobs.push(Job { reference: file.clone(), sha256: binary.sha256.clone(), plan: plan.clone() });
                    Some(jobs.len() - 1)
                }
                _ => None,
            };
            entries.push(Entry { platform: pi, binary, claim, decision, job });
        }
    }
    let (reports, shared_flags, builds, failure) = match run(audit.shared, &jobs, audit.jobs, progress, cancel) {
        Ok(ran) => (ran.reports, ran.shared, ran.builds, None),
        Err(e) => (Vec::new(), Vec::new(), 0, Some(e.to_string())),
    };
    let mut platforms: Vec<doc::Platform> = inventory
        .platforms
        .iter()
        .map(|p| doc::Platform {
            platform: p.platform.to_string(),
            manifest_digest: p.manifest_digest.as_ref().map(ToString::to_string),
            binaries: Vec::new(),
        })
        .collect();
    for entry in entries {
        let report = entry.job.and_then(|j| reports.get(j)).cloned();
        let shared = entry.job.and_then(|j| shared_flags.get(j)).copied().unwrap_or(false);
        let binary = document_binary(&entry, report, shared, inventory, &inventory.platforms[entry.platform]);
        platforms[entry.platform].binaries.push(binary);
    }
    let counts = {
        let mut c = doc::Counts::of(&platforms);
        c.builds = builds as u64;
        c
    };
    let error = failure.map(|message| doc::AuditFailure { class: v1::Class::Infrastructure, message });
    let verdict = if error.is_some() {
        doc::ImageVerdict::Error
    } else {
        doc::ImageVerdict::from_outcomes(platforms.iter().flat_map(|p| p.binaries.iter().map(|b| b.outcome)))
    };
    let image = &inventory.image;
    doc::AuditReport {
        schema_version: doc::SCHEMA_VERSION,
        tool: doc::Tool { name: "reprove".into(), version: audit.tool_version.clone() },
        started_on: stdx::time::format_rfc3339(audit.started.1),
        finished_on: stdx::time::format_rfc3339(stdx::time::now_unix()),
        duration_ms: u64::try_from(audit.started.0.elapsed().as_millis()).unwrap_or(u64::MAX),
        image: doc::Image {
            input: image.input.clone(),
            reference: image.reference.clone().filter(|r| r.contains("@sha256:")),
            digest: image.digest.to_string(),
            digest_kind: match image.digest_of {
                oci::image_input::DigestOf::Index => doc::DigestKind::Index,
                oci::image_input::DigestOf::Manifest => doc::DigestKind::Manifest,
                oci::image_input::DigestOf::Config => doc::DigestKind::Config,
            },
            media_type: image.media_type.clone(),
            resolved_from_tag: image.resolved_from_tag.then(|| tag_of(&image.input)).flatten(),
        },
        summary: doc::summarize(verdict, &counts),
        verdict,
        counts,
        platforms,
        error,
    }
}

/// The tag of a registry reference as the user typed it (`name:tag`).
fn tag_of(input: &str) -> Option<String> {
    let last = input.rsplit('/').next()?;
    let (_, tag) = last.split_once(':')?;
    Some(tag.split('@').next().unwrap_or(tag).to_string())
}

fn document_binary(
    entry: &Entry<'_>,
    report: Option<v1::Report>,
    shared: bool,
    inventory: &Inventory,
    platform: &PlatformInventory,
) -> doc::Binary {
    let b = entry.binary;
    let bi = b.build_info.as_ref();
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let main_module = bi.filter(|bi| !bi.main.path.is_empty()).map(|bi| doc::MainModule {
        path: text(&bi.main.path),
        version: text(&bi.main.version),
        sum: Some(text(&bi.main.sum)).filter(|s| !s.is_empty()),
    });
    let (outcome, reason_, detail, build_key, report) = match (&entry.decision, report) {
        (Decision::Unverifiable { reason: why, detail }, _) => {
            (doc::Outcome::Unverifiable, Some(reason(*why)), detail.clone(), None, None)
        }
        (Decision::Build(plan), Some(report)) => {
            let report = with_image(report, b, inventory, platform);
            let (outcome, reason_, mut detail) = judge(&report);
            if shared {
                detail = format!("{detail} (verified once with an identical binary)");
            }
            (outcome, reason_, detail, Some(plan.key.0.clone()), Some(Box::new(report)))
        }
        (Decision::Build(plan), None) => (
            doc::Outcome::Error,
            None,
            "its bytes were not kept for the rebuild".into(),
            Some(plan.key.0.clone()),
            None,
        ),
    };
    doc::Binary {
        path: b.path.clone(),
        links: b.links.clone(),
        sha256: b.sha256.clone(),
        size: b.size,
        go_version: bi.map(|bi| go_version(bi).unwrap_or_else(|| text(&bi.go_version))),
        main_module,
        package: bi.map(|bi| text(&bi.path)).filter(|p| !p.is_empty()),
        claimed_source: claimed_source(&entry.claim),
        outcome,
        reason: reason_,
        detail,
        build_key,
        report,
    }
}

/// The rebuild's report names the binary as it is in the image: its file name,
/// its path, and the image by digest when it is in a registry (so the VSA's
/// subjects bind it to the image, docs/attestation-subjects.md).
fn with_image(mut report: v1::Report, b: &Binary, inventory: &Inventory, platform: &PlatformInventory) -> v1::Report {
    let file_name = b.path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("binary");
    report.subject.name = file_name.to_string();
    let image = &inventory.image;
    let name = image.reference.as_deref().and_then(|r| r.split_once("@sha256:")).map(|(name, _)| name.to_string());
    match (name, &platform.manifest_digest) {
        (Some(name), Some(manifest)) => {
            let digest = image.digest.to_string();
            let is_index = matches!(image.digest_of, oci::image_input::DigestOf::Index);
            report.inputs.reference.path = Some(format!("oci://{name}@{digest}#{}", b.path));
            report.inputs.reference.image = Some(v1::ReferenceImage {
                name,
                tag: if image.resolved_from_tag { tag_of(&image.input) } else { None },
                digest: digest.clone(),
                manifest_digest: manifest.to_string(),
                index_digest: is_index.then_some(digest),
                platform: platform.platform.to_string(),
                path: b.path.clone(),
            });
        }
        _ => report.inputs.reference.path = Some(format!("{}#{}", image.input, b.path)),
    }
    report
}
