//! Building the statements reprove signs after a rebuild, from plain inputs.
//!
//! The pipeline (`reprove verify`) fills a [`ProvenanceInput`] about the binary it rebuilt
//! and a [`VsaInput`] about the reference binary it compared with, and gets back in-toto
//! statements ([`provenance_statement`], [`vsa_statement`]) to sign with [`sign`]. The
//! inputs are this crate's own types, so the attestation layer depends on no pipeline
//! type; every field is checked (digests, commit ids, times) and a bad one is a
//! [`GenerateError`] naming it, never a malformed statement.
//!
//! The shapes follow `docs/buildtype.md` (the `go-rebuild/v1` buildType: external
//! parameters, resolved dependencies, run details) and, for the VSA, its section on
//! verified levels: `REPROVE_REPRODUCED` when PASSED, plus `SLSA_BUILD_LEVEL_1` when a
//! provenance of the rebuild is among the input attestations, `SLSA_BUILD_LEVEL_2` only
//! when the caller states that the builder is a hosted platform that signs its own
//! provenance; nothing for FAILED.
//!
//! Subjects (`docs/attestation-subjects.md`, `schemas/attestation-subjects.schema.json`):
//! the binary first (the rebuilt one in the provenance, the reference in the VSA), then,
//! when the reference was read from an image, that image by each of its digests
//! ([`ImageSubject`]: the digest as given, then the platform manifest's when the given
//! one is an index), so that a deploy check holding an image digest finds and binds both.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::dsse::{DsseError, Envelope};
use crate::keys::Signer;
use crate::provenance::{
    BuildDefinition, BuildMetadata, Builder, GoRebuildParameters, Provenance, RunDetails, SourceParameter,
    BUILD_TYPE_GO_REBUILD_V1, PREDICATE_TYPE_PROVENANCE_V1,
};
use crate::statement::{sha256_hex, ResourceDescriptor, Statement, PAYLOAD_TYPE_IN_TOTO};
use crate::vsa::{VerificationResult, VerificationSummary, VerifierId, PREDICATE_TYPE_VSA_V1};
use stdx::time::parse_rfc3339;

/// The verified level reprove grants a reference binary whose rebuild matched it byte for byte.
pub const LEVEL_REPRODUCED: &str = "REPROVE_REPRODUCED";

/// The VSA field (an extension, unknown to SLSA readers, kept by them) that lists why a
/// FAILED verification failed.
pub const VSA_CAUSES_FIELD: &str = "reproveCauses";

/// The VSA field (an extension) that lists the rebuild's recipe values that ran or read
/// what they name ([`ExecFlag`]); absent when there were none.
pub const VSA_RECIPE_EXEC_FIELD: &str = "reproveRecipeExec";

/// The `go-rebuild/v1` external parameter that lists them.
pub const PARAMETER_EXEC: &str = "exec";

/// The annotation of an image subject that says what its digest names: `index` (an
/// image index, the digest given) or `manifest` (the platform image manifest whose
/// layers held the binary).
pub const ANNOTATION_IMAGE_DIGEST: &str = "reproveImageDigest";

/// The annotation of an image subject that names the binary's path in the image.
pub const ANNOTATION_IMAGE_PATH: &str = "reprovePath";

/// The annotation of an image subject that names the platform whose manifest held the
/// binary (`linux/amd64`).
pub const ANNOTATION_IMAGE_PLATFORM: &str = "reprovePlatform";

/// The go flags an [`ExecFlag`] may name.
pub const EXEC_FLAGS: &[&str] = &["-toolexec", "-exec", "-overlay", "-modfile"];

/// A recipe value that made the build run or read what it names (`-toolexec`, `-exec`,
/// `-overlay`, `-modfile`), and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExecFlag {
    /// The go flag, one of [`EXEC_FLAGS`].
    pub flag: String,
    /// Its value.
    pub value: String,
    /// Where the recipe took it from (`flag`, `recipe-file:reprove.toml`, …).
    pub origin: String,
}

fn check_exec(field: &str, exec: &[ExecFlag]) -> Result<(), GenerateError> {
    for (i, e) in exec.iter().enumerate() {
        if !EXEC_FLAGS.contains(&e.flag.as_str()) {
            return Err(bad(
                &format!("{field}[{i}].flag"),
                format!("{:?} is not one of {}", e.flag, EXEC_FLAGS.join(", ")),
            ));
        }
        non_empty(&format!("{field}[{i}].origin"), &e.origin)?;
    }
    Ok(())
}

/// An input field that cannot go into a statement.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct GenerateError {
    /// The input field, as `ProvenanceInput.toolchain.digest`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn bad(field: &str, reason: impl Into<String>) -> GenerateError {
    GenerateError { field: field.to_owned(), reason: reason.into() }
}

pub(crate) fn check_sha256_hex(field: &str, hex: &str) -> Result<(), GenerateError> {
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(bad(field, format!("{hex:?} is not 64 lower-case hex digits")))
    }
}

/// `sha256:<hex>` to `<hex>`, checked.
pub(crate) fn digest_hex<'a>(field: &str, digest: &'a str) -> Result<&'a str, GenerateError> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| bad(field, format!("{digest:?} is not sha256:<hex>")))?;
    check_sha256_hex(field, hex)?;
    Ok(hex)
}

pub(crate) fn check_time(field: &str, time: &str) -> Result<(), GenerateError> {
    parse_rfc3339(time).map(|_| ()).ok_or_else(|| bad(field, format!("{time:?} is not an RFC 3339 time")))
}

pub(crate) fn non_empty(field: &str, value: &str) -> Result<(), GenerateError> {
    if value.trim().is_empty() {
        Err(bad(field, "is empty"))
    } else {
        Ok(())
    }
}

/// A file named and identified by its SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifact {
    /// Its name, such as the binary's file name.
    pub name: String,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}

/// A Go module of the build list, as `go.sum` records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    /// The module path.
    pub path: String,
    /// Its version.
    pub version: String,
    /// Its `h1:` hash.
    pub h1: String,
}

/// A released module version as the source of a rebuild (`go install PATH@VERSION`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceModule {
    /// The module path.
    pub path: String,
    /// Its version.
    pub version: String,
    /// The `h1:` hash of its zip, as `go.sum` records it.
    pub h1: String,
    /// SHA-256 of the zip, lower-case hex, when known.
    pub zip_sha256: Option<String>,
}

/// The toolchain image a rebuild ran in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolchainImage {
    /// `name[:tag]`, without a digest.
    pub reference: String,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
}

/// What an image subject's digest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageDigestKind {
    /// An image index (the digest given, which resolved to the platform manifest).
    Index,
    /// A platform image manifest, whose layers held the binary.
    Manifest,
}

impl ImageDigestKind {
    /// `index` or `manifest`, as [`ANNOTATION_IMAGE_DIGEST`] says it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageDigestKind::Index => "index",
            ImageDigestKind::Manifest => "manifest",
        }
    }
}

/// An image that holds the binary, by one of its digests: a subject after the binary's,
/// in both statements (`docs/attestation-subjects.md`). In the provenance it does not
/// claim that the rebuild produced the image: it names where the binary compared with
/// lives, so that the attestation can be found by, and bound to, the image digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSubject {
    /// `registry/repository`, without tag or digest (cosign's subject name).
    pub name: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// What the digest names, when known (a report of an older reprove only has the
    /// digest as given).
    pub kind: Option<ImageDigestKind>,
    /// The binary's path in the image, when known.
    pub path: Option<String>,
    /// The platform whose manifest held the binary (`linux/amd64`), when known.
    pub platform: Option<String>,
}

fn image_subjects(field: &str, images: &[ImageSubject]) -> Result<Vec<ResourceDescriptor>, GenerateError> {
    let mut subjects = Vec::with_capacity(images.len());
    for (i, image) in images.iter().enumerate() {
        non_empty(&format!("{field}[{i}].name"), &image.name)?;
        let hex = digest_hex(&format!("{field}[{i}].digest"), &image.digest)?;
        let mut d = descriptor(None, Some(image.name.clone()), ("sha256", hex));
        let mut put = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                d.annotations.insert(key.to_owned(), Value::from(v));
            }
        };
        put(ANNOTATION_IMAGE_DIGEST, image.kind.map(ImageDigestKind::as_str));
        put(ANNOTATION_IMAGE_PATH, image.path.as_deref());
        put(ANNOTATION_IMAGE_PLATFORM, image.platform.as_deref());
        subjects.push(d);
    }
    Ok(subjects)
}

/// A further output of the run, such as reprove's JSON report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Byproduct {
    /// Its name (`report.json`).
    pub name: String,
    /// Its media type (`application/json`).
    pub media_type: Option<String>,
    /// Where it is.
    pub content: ByproductContent,
}

/// A byproduct inline or by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByproductContent {
    /// The bytes, carried in the provenance (base64) with their SHA-256.
    Inline(Vec<u8>),
    /// Only a name (and a URI if given) with the SHA-256 of the bytes stored elsewhere.
    ByName {
        /// Where it can be found, if anywhere.
        uri: Option<String>,
        /// Lower-case hex SHA-256 of the bytes.
        sha256: String,
    },
}

/// Everything a provenance of a reprove rebuild records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvenanceInput {
    /// The rebuilt binary.
    pub subject: Artifact,
    /// The image the reference was read from, by each of its digests: further subjects,
    /// after the binary (see [`ImageSubject`]); empty when the reference was a file.
    pub images: Vec<ImageSubject>,
    /// The repository URI (`git+https://host/org/repo`).
    pub source_uri: String,
    /// The full commit id (40 or 64 lower-case hex digits); for a module
    /// source, its version.
    pub source_rev: String,
    /// The released module version the source is, instead of a Git commit:
    /// `source_uri` is then `pkg:golang/PATH@VERSION` and the first resolved
    /// dependency is the module's zip (`dirHash`: its h1; `sha256`: the zip's).
    pub source_module: Option<SourceModule>,
    /// The package argument of `go build`.
    pub package: String,
    /// GOOS.
    pub goos: String,
    /// GOARCH.
    pub goarch: String,
    /// The architecture level variable and value (`GOAMD64=v1`), if set.
    pub arch_level: Option<String>,
    /// `go build` flags in order, without `-ldflags` and `-tags`.
    pub flags: Vec<String>,
    /// The `-ldflags` value.
    pub ldflags: Option<String>,
    /// Build tags.
    pub tags: Vec<String>,
    /// Other environment set for the build.
    pub env: BTreeMap<String, String>,
    /// The toolchain image.
    pub toolchain: ToolchainImage,
    /// SHA-256 of `go.mod`.
    pub go_mod_sha256: String,
    /// SHA-256 of `go.sum`, when the module has one.
    pub go_sum_sha256: Option<String>,
    /// The path of the go.mod the build read, when not `go.mod` (`-modfile`); its
    /// go.sum is then the same path with `.sum` for `.mod`.
    pub go_mod_path: Option<String>,
    /// Recipe values that made the build run or read what they name.
    pub exec: Vec<ExecFlag>,
    /// The go.work workspace's files the build read besides go.mod and go.sum
    /// (`go.work`, `go.work.sum`, the other modules' `go.mod` and `go.sum`),
    /// by path in the source tree; empty without a workspace.
    pub workspace_files: Vec<SourceFile>,
    /// The build list.
    pub modules: Vec<Module>,
    /// The builder's id (a URI).
    pub builder_id: String,
    /// Versions of the builder's components (`reprove` → its version).
    pub builder_version: BTreeMap<String, String>,
    /// This run's id.
    pub invocation_id: String,
    /// When the build started (RFC 3339).
    pub started_on: String,
    /// When it finished (RFC 3339).
    pub finished_on: String,
    /// The report, if any.
    pub byproduct: Option<Byproduct>,
}

/// A file of the source tree, by path and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Its path in the source tree (`go.work`, `lib/go.sum`).
    pub path: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

fn validate_provenance(input: &ProvenanceInput) -> Result<(), GenerateError> {
    non_empty("subject.name", &input.subject.name)?;
    check_sha256_hex("subject.sha256", &input.subject.sha256)?;
    non_empty("source_uri", &input.source_uri)?;
    let rev = &input.source_rev;
    if let Some(m) = &input.source_module {
        non_empty("source_module.path", &m.path)?;
        if *rev != m.version || m.version.is_empty() {
            return Err(bad("source_rev", format!("{rev:?} is not the source module's version {:?}", m.version)));
        }
        if input.source_uri != format!("pkg:golang/{}@{}", m.path, m.version) {
            return Err(bad("source_uri", "must be pkg:golang/PATH@VERSION of the source module"));
        }
        if !m.h1.starts_with("h1:") {
            return Err(bad("source_module.h1", format!("{:?} is not an h1: hash", m.h1)));
        }
        if let Some(zip) = &m.zip_sha256 {
            check_sha256_hex("source_module.zip_sha256", zip)?;
        }
    } else if !(rev.len() == 40 || rev.len() == 64)
        || !rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad("source_rev", format!("{rev:?} is not a full commit id (40 or 64 lower-case hex digits)")));
    }
    non_empty("package", &input.package)?;
    for (field, value) in [("goos", &input.goos), ("goarch", &input.goarch)] {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(bad(field, format!("{value:?} is not a Go platform name")));
        }
    }
    if let Some(level) = &input.arch_level {
        if !level.starts_with("GO") || !level.contains('=') || level.contains(char::is_whitespace) {
            return Err(bad("arch_level", format!("{level:?} is not VARIABLE=value such as GOAMD64=v1")));
        }
    }
    non_empty("toolchain.reference", &input.toolchain.reference)?;
    if input.toolchain.reference.contains('@') || input.toolchain.reference.contains(char::is_whitespace) {
        return Err(bad("toolchain.reference", "must be name[:tag] without a digest"));
    }
    digest_hex("toolchain.digest", &input.toolchain.digest)?;
    check_sha256_hex("go_mod_sha256", &input.go_mod_sha256)?;
    if let Some(sum) = &input.go_sum_sha256 {
        check_sha256_hex("go_sum_sha256", sum)?;
    }
    if let Some(path) = &input.go_mod_path {
        if !path.ends_with(".mod") || path.starts_with('/') || path.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(bad("go_mod_path", format!("{path:?} is not a .mod file's path in the source tree")));
        }
    }
    check_exec("exec", &input.exec)?;
    for (i, f) in input.workspace_files.iter().enumerate() {
        non_empty(&format!("workspace_files[{i}].path"), &f.path)?;
        check_sha256_hex(&format!("workspace_files[{i}].sha256"), &f.sha256)?;
    }
    for (i, module) in input.modules.iter().enumerate() {
        non_empty(&format!("modules[{i}].path"), &module.path)?;
        non_empty(&format!("modules[{i}].version"), &module.version)?;
        if !module.h1.starts_with("h1:") {
            return Err(bad(&format!("modules[{i}].h1"), format!("{:?} is not an h1: hash", module.h1)));
        }
    }
    non_empty("builder_id", &input.builder_id)?;
    non_empty("invocation_id", &input.invocation_id)?;
    check_time("started_on", &input.started_on)?;
    check_time("finished_on", &input.finished_on)?;
    if let Some(byproduct) = &input.byproduct {
        non_empty("byproduct.name", &byproduct.name)?;
        if let ByproductContent::ByName { sha256, .. } = &byproduct.content {
            check_sha256_hex("byproduct.sha256", sha256)?;
        }
    }
    Ok(())
}

pub(crate) fn descriptor(uri: Option<String>, name: Option<String>, digest: (&str, &str)) -> ResourceDescriptor {
    ResourceDescriptor {
        uri,
        name,
        digest: BTreeMap::from([(digest.0.to_owned(), digest.1.to_owned())]),
        ..ResourceDescriptor::default()
    }
}

/// The image name of a reference (`golang:1.22` → `golang`; a registry port stays).
fn image_name(reference: &str) -> &str {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].find(':') {
        Some(colon) => &reference[..last_slash + colon],
        None => reference,
    }
}

/// The SLSA Provenance v1 statement of a reprove rebuild (`go-rebuild/v1` buildType).
pub fn provenance_statement(input: &ProvenanceInput) -> Result<Statement, GenerateError> {
    validate_provenance(input)?;
    let parameters = GoRebuildParameters {
        source: SourceParameter { uri: input.source_uri.clone(), rev: input.source_rev.clone(), extra: Map::new() },
        package: input.package.clone(),
        goos: input.goos.clone(),
        goarch: input.goarch.clone(),
        arch_level: input.arch_level.clone(),
        flags: input.flags.clone(),
        ldflags: input.ldflags.clone(),
        tags: input.tags.clone(),
        env: input.env.clone(),
        toolchain: format!("{}@{}", input.toolchain.reference, input.toolchain.digest),
        extra: Map::new(),
    };
    let mut parameters = parameters;
    if !input.exec.is_empty() {
        let exec = serde_json::to_value(&input.exec).map_err(|e| bad("exec", e.to_string()))?;
        parameters.extra.insert(PARAMETER_EXEC.to_owned(), exec);
    }
    let (at_rev, source) = match &input.source_module {
        Some(m) => {
            let mut d = descriptor(Some(input.source_uri.clone()), None, ("dirHash", &m.h1));
            if let Some(zip) = &m.zip_sha256 {
                d.digest.insert("sha256".to_owned(), zip.clone());
            }
            (input.source_uri.clone(), d)
        }
        None => (
            format!("{}@{}", input.source_uri, input.source_rev),
            descriptor(Some(input.source_uri.clone()), None, ("gitCommit", &input.source_rev)),
        ),
    };
    let mut dependencies = vec![source];
    let go_mod = input.go_mod_path.clone().unwrap_or_else(|| "go.mod".to_owned());
    let go_sum = match go_mod.strip_suffix(".mod") {
        Some(stem) if go_mod != "go.mod" => format!("{stem}.sum"),
        _ => "go.sum".to_owned(),
    };
    dependencies.push(descriptor(
        Some(format!("{at_rev}#{go_mod}")),
        Some(go_mod.clone()),
        ("sha256", &input.go_mod_sha256),
    ));
    if let Some(sum) = &input.go_sum_sha256 {
        dependencies.push(descriptor(Some(format!("{at_rev}#{go_sum}")), Some(go_sum.clone()), ("sha256", sum)));
    }
    for f in &input.workspace_files {
        dependencies.push(descriptor(
            Some(format!("{at_rev}#{}", f.path)),
            Some(f.path.clone()),
            ("sha256", &f.sha256),
        ));
    }
    for module in &input.modules {
        dependencies.push(descriptor(
            Some(format!("pkg:golang/{}@{}", module.path, module.version)),
            None,
            ("dirHash", &module.h1),
        ));
    }
    let image_hex = digest_hex("toolchain.digest", &input.toolchain.digest)?;
    dependencies.push(descriptor(
        Some(format!("oci://{}", image_name(&input.toolchain.reference))),
        None,
        ("sha256", image_hex),
    ));
    let byproducts = input
        .byproduct
        .iter()
        .map(|b| {
            let mut d = match &b.content {
                ByproductContent::Inline(bytes) => ResourceDescriptor {
                    content: Some(STANDARD.encode(bytes)),
                    ..descriptor(None, None, ("sha256", &sha256_hex(bytes)))
                },
                ByproductContent::ByName { uri, sha256 } => descriptor(uri.clone(), None, ("sha256", sha256)),
            };
            d.name = Some(b.name.clone());
            d.media_type = b.media_type.clone();
            d
        })
        .collect();
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE_GO_REBUILD_V1.to_owned(),
            external_parameters: serde_json::to_value(&parameters)
                .map_err(|e| bad("externalParameters", e.to_string()))?,
            internal_parameters: Value::Null,
            resolved_dependencies: dependencies,
            extra: Map::new(),
        },
        run_details: RunDetails {
            builder: Builder {
                id: input.builder_id.clone(),
                version: input.builder_version.clone(),
                builder_dependencies: Vec::new(),
                extra: Map::new(),
            },
            metadata: Some(BuildMetadata {
                invocation_id: Some(input.invocation_id.clone()),
                started_on: Some(input.started_on.clone()),
                finished_on: Some(input.finished_on.clone()),
                extra: Map::new(),
            }),
            byproducts,
            extra: Map::new(),
        },
        extra: Map::new(),
    };
    let predicate = serde_json::to_value(&provenance).map_err(|e| bad("predicate", e.to_string()))?;
    let mut subject = vec![ResourceDescriptor::sha256(&input.subject.name, &input.subject.sha256)];
    subject.extend(image_subjects("images", &input.images)?);
    Ok(Statement::new(subject, PREDICATE_TYPE_PROVENANCE_V1, predicate))
}

/// An attestation the verification consumed, by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationRef {
    /// Where it is (`app.intoto.jsonl`, or a URI).
    pub uri: String,
    /// Lower-case hex SHA-256 of the attestation file's bytes.
    pub sha256: String,
}

/// What a reference binary's verification established, for its VSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsaInput {
    /// The reference binary.
    pub reference: Artifact,
    /// The image the reference came from, by each of its digests (see [`ImageSubject`]);
    /// empty when it was a file.
    pub images: Vec<ImageSubject>,
    /// The URI of the resource verified (`file:app`, `oci://…`, a download URL).
    pub resource_uri: String,
    /// PASSED or FAILED.
    pub result: VerificationResult,
    /// Why it FAILED (the ranked causes of the diff); empty when PASSED.
    pub causes: Vec<String>,
    /// The verifier's id (a URI).
    pub verifier_id: String,
    /// Versions of the verifier's components.
    pub verifier_version: BTreeMap<String, String>,
    /// When the verification happened (RFC 3339).
    pub time_verified: String,
    /// The policy applied.
    pub policy_uri: String,
    /// SHA-256 of the policy's bytes, if it is a file.
    pub policy_sha256: Option<String>,
    /// The attestations consumed: the provenance of the rebuild.
    pub input_attestations: Vec<AttestationRef>,
    /// Whether the builder that rebuilt is a hosted platform that generates and signs
    /// provenance itself (SLSA Build L2); see `docs/buildtype.md`.
    pub hosted_builder: bool,
    /// The rebuild's recipe values that made it run or read what they name.
    pub recipe_exec: Vec<ExecFlag>,
}

impl Default for VsaInput {
    fn default() -> Self {
        VsaInput {
            reference: Artifact::default(),
            images: Vec::new(),
            resource_uri: String::new(),
            result: VerificationResult::Failed,
            causes: Vec::new(),
            verifier_id: String::new(),
            verifier_version: BTreeMap::new(),
            time_verified: String::new(),
            policy_uri: String::new(),
            policy_sha256: None,
            input_attestations: Vec::new(),
            hosted_builder: false,
            recipe_exec: Vec::new(),
        }
    }
}

/// The levels a verification earns (see the module documentation).
pub fn verified_levels(input: &VsaInput) -> Vec<String> {
    if input.result == VerificationResult::Failed {
        return Vec::new();
    }
    let mut levels = vec![LEVEL_REPRODUCED.to_owned()];
    if !input.input_attestations.is_empty() {
        levels.push(if input.hosted_builder { "SLSA_BUILD_LEVEL_2" } else { "SLSA_BUILD_LEVEL_1" }.to_owned());
    }
    levels
}

/// The SLSA VSA v1 statement about a reference binary (and its image), PASSED or FAILED.
pub fn vsa_statement(input: &VsaInput) -> Result<Statement, GenerateError> {
    non_empty("reference.name", &input.reference.name)?;
    check_sha256_hex("reference.sha256", &input.reference.sha256)?;
    non_empty("resource_uri", &input.resource_uri)?;
    non_empty("verifier_id", &input.verifier_id)?;
    check_time("time_verified", &input.time_verified)?;
    non_empty("policy_uri", &input.policy_uri)?;
    if let Some(sha) = &input.policy_sha256 {
        check_sha256_hex("policy_sha256", sha)?;
    }
    match input.result {
        VerificationResult::Passed if !input.causes.is_empty() => {
            return Err(bad("causes", "a PASSED verification has no causes of failure"));
        }
        VerificationResult::Failed if input.causes.is_empty() => {
            return Err(bad("causes", "a FAILED verification must say why"));
        }
        _ => {}
    }
    let mut subject = vec![ResourceDescriptor::sha256(&input.reference.name, &input.reference.sha256)];
    subject.extend(image_subjects("images", &input.images)?);
    let mut attestations = Vec::with_capacity(input.input_attestations.len());
    for (i, a) in input.input_attestations.iter().enumerate() {
        non_empty(&format!("input_attestations[{i}].uri"), &a.uri)?;
        check_sha256_hex(&format!("input_attestations[{i}].sha256"), &a.sha256)?;
        attestations.push(descriptor(Some(a.uri.clone()), None, ("sha256", &a.sha256)));
    }
    let mut policy = ResourceDescriptor { uri: Some(input.policy_uri.clone()), ..ResourceDescriptor::default() };
    if let Some(sha) = &input.policy_sha256 {
        policy.digest.insert("sha256".to_owned(), sha.clone());
    }
    let mut extra = Map::new();
    if !input.causes.is_empty() {
        extra.insert(VSA_CAUSES_FIELD.to_owned(), Value::from(input.causes.clone()));
    }
    check_exec("recipe_exec", &input.recipe_exec)?;
    if !input.recipe_exec.is_empty() {
        let exec = serde_json::to_value(&input.recipe_exec).map_err(|e| bad("recipe_exec", e.to_string()))?;
        extra.insert(VSA_RECIPE_EXEC_FIELD.to_owned(), exec);
    }
    let summary = VerificationSummary {
        verifier: VerifierId {
            id: input.verifier_id.clone(),
            version: input.verifier_version.clone(),
            extra: Map::new(),
        },
        time_verified: input.time_verified.clone(),
        resource_uri: input.resource_uri.clone(),
        policy,
        input_attestations: attestations,
        verification_result: input.result,
        verified_levels: verified_levels(input),
        dependency_levels: BTreeMap::new(),
        slsa_version: Some("1.0".to_owned()),
        extra,
    };
    let predicate = serde_json::to_value(&summary).map_err(|e| bad("predicate", e.to_string()))?;
    Ok(Statement::new(subject, PREDICATE_TYPE_VSA_V1, predicate))
}

/// Signs a statement into a DSSE envelope (payload type `application/vnd.in-toto+json`).
pub fn sign(statement: &Statement, signers: &[&dyn Signer]) -> Result<Envelope, DsseError> {
    let payload = serde_json::to_vec(statement)?;
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &payload, signers)
}

/// A reference to a signed attestation file for [`VsaInput::input_attestations`].
pub fn attestation_ref(uri: impl Into<String>, file_bytes: &[u8]) -> AttestationRef {
    AttestationRef { uri: uri.into(), sha256: sha256_hex(file_bytes) }
}
