//! Attestations in the registry: the mapping between attestations (DSSE envelopes,
//! Sigstore bundles) and the OCI artifacts that admission controllers and cosign
//! find next to an image.
//!
//! What it is: the layouts, as cosign writes them.
//! - **Referrer** (cosign v3, `--new-bundle-format`): a Sigstore bundle v0.3 as
//!   the one layer of an artifact manifest whose `artifactType` and layer media
//!   type are [`MEDIA_TYPE_BUNDLE`], with the empty config
//!   (`application/vnd.oci.empty.v1+json`, its descriptor carrying the artifact
//!   type too), `subject` the image, and the annotations
//!   [`ANNOTATION_BUNDLE_CONTENT`] = `dsse-envelope` and
//!   [`ANNOTATION_BUNDLE_PREDICATE_TYPE`]. cosign also writes
//!   `org.opencontainers.image.created` with the time of the push; reprove leaves
//!   it out so that the same attestation always makes the same manifest (pushing it
//!   twice adds nothing).
//! - **Legacy** (cosign v2's `attest`, sigstore's policy-controller): the image
//!   tagged `sha256-<hex>.att`, one layer per DSSE envelope
//!   ([`MEDIA_TYPE_DSSE`]) annotated with [`ANNOTATION_PREDICATE_TYPE`] and an
//!   empty [`ANNOTATION_SIGNATURE`] (the signature is inside the envelope). A
//!   certificate bundle's verification material goes into cosign's annotations: the
//!   certificate ([`ANNOTATION_CERTIFICATE`], PEM) and its transparency-log entry
//!   ([`ANNOTATION_REKOR_BUNDLE`], cosign's `RekorBundle`: the signed entry
//!   timestamp, not the inclusion proof); [`fetch`] makes a Sigstore bundle of such a
//!   layer again, so that a certificate identity can verify either layout.
//!
//! [`push`] attaches prepared attestations in either layout or both, only to the
//! image their statements are about ([`AttachError::OtherSubject`] before anything
//! is written otherwise); [`fetch`] lists and downloads the attestations of a
//! digest in every layout (referrers by the API, else by the tag schema; the
//! legacy image), bounded by [`oci::referrers::Limits`], whoever pushed them
//! (reprove, cosign v2's `attest`, cosign v3's `attest --new-bundle-format`).
//!
//! What it isn't: it does not verify signatures (that is `attest::verify`, which
//! callers run on what [`fetch`] returns), and it does no file I/O: callers pass
//! bytes and write what they want. The registry protocol is `oci`'s.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use attest::bundle::{Attestation, Bundle, BundleError, Format, PublicKeyIdentifier, MEDIA_TYPE_BUNDLE_V0_3};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use oci::referrers::{
    Blob, Budget, Limits, NewReferrer, ReferrerList, ReferrersError, ReferrersPath, Repository, Subject,
    MEDIA_TYPE_EMPTY,
};
use oci::Digest;

/// The media type of a Sigstore bundle v0.3: the referrer's artifact type and layer.
pub const MEDIA_TYPE_BUNDLE: &str = MEDIA_TYPE_BUNDLE_V0_3;
/// The media type of a DSSE envelope: the layers of cosign's legacy `.att` image.
pub const MEDIA_TYPE_DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The artifact type of an in-toto attestation referrer (cosign's `WriteAttestationsReferrer`).
pub const MEDIA_TYPE_IN_TOTO: &str = "application/vnd.in-toto+json";
/// What a bundle referrer holds: `dsse-envelope`.
pub const ANNOTATION_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
/// The predicate type of a bundle referrer.
pub const ANNOTATION_BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
/// The predicate type of a legacy `.att` layer.
pub const ANNOTATION_PREDICATE_TYPE: &str = "predicateType";
/// The signature of a legacy layer: empty for attestations.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The suffix of the legacy attestation image's tag.
pub const LEGACY_SUFFIX: &str = "att";
/// The signing certificate of a legacy layer (PEM), as cosign v2 writes it.
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// The transparency-log entry of a legacy layer: cosign v2's `RekorBundle` JSON
/// (`SignedEntryTimestamp`, `Payload` with `body`, `integratedTime`, `logIndex`, `logID`).
pub const ANNOTATION_REKOR_BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// Errors of [`prepare`], [`push`] and [`fetch`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The registry side failed (see [`ReferrersError`]).
    #[error(transparent)]
    Registry(#[from] ReferrersError),
    /// An attestation is neither a DSSE envelope nor a Sigstore bundle with one.
    #[error("attestation {name}: {source}")]
    Attestation {
        /// The attestation's name (a file name).
        name: String,
        /// Why.
        #[source]
        source: BundleError,
    },
    /// An attestation's payload is not an in-toto statement.
    #[error("attestation {name}: the payload is not an in-toto statement: {reason}")]
    Statement {
        /// The attestation's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// An attestation's statement does not name the image it would be attached to.
    #[error(
        "attestation {name}: its statement is not about {digest} (no subject has that sha256); attach an attestation to the image it is about"
    )]
    OtherSubject {
        /// The attestation's name.
        name: String,
        /// The image digest.
        digest: String,
    },
    /// A bundle's verification material (certificate, transparency-log entry) cannot
    /// be carried into the legacy layout.
    #[error("attestation {name}: its verification material {field}: {reason}")]
    Material {
        /// The attestation's name.
        name: String,
        /// The field (`certificate.rawBytes`, `tlogEntries[0]`).
        field: String,
        /// Why.
        reason: String,
    },
    /// More attestation referrers than the bound.
    #[error("{image} has more than {limit} attestations; raise {setting} to fetch them")]
    TooManyAttestations {
        /// The image.
        image: String,
        /// The bound.
        limit: usize,
        /// The setting that raises it.
        setting: stdx::setting::Setting,
    },
}

impl AttachError {
    /// Whether the error is the user's input (exit 2) rather than the registry's or
    /// the content's (exit 3).
    pub fn is_input(&self) -> bool {
        match self {
            AttachError::Registry(e) => e.is_input(),
            AttachError::Attestation { .. }
            | AttachError::Statement { .. }
            | AttachError::OtherSubject { .. }
            | AttachError::Material { .. } => true,
            AttachError::TooManyAttestations { .. } => false,
        }
    }
}

/// An attestation ready to attach.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Its name, for messages.
    pub name: String,
    /// The format it came in.
    pub format: Format,
    /// The statement's predicate type.
    pub predicate_type: String,
    /// Whether a subject of the statement is the image digest.
    pub names_subject: bool,
    /// The Sigstore bundle (the one given, or one made around the envelope given).
    pub bundle: Bytes,
    /// The DSSE envelope (the one given, or the bundle's).
    pub envelope: Bytes,
    /// The legacy layer's annotations for a certificate bundle's verification material
    /// ([`ANNOTATION_CERTIFICATE`], [`ANNOTATION_REKOR_BUNDLE`]); empty otherwise.
    pub legacy_material: BTreeMap<String, String>,
}

/// What a statement says, unauthenticated: its predicate type and whether it names `digest`.
fn read_statement(name: &str, attestation: &Attestation, digest: &Digest) -> Result<(String, bool), AttachError> {
    let bad = |reason: String| AttachError::Statement { name: name.to_string(), reason };
    let payload = attestation.envelope.payload_bytes().map_err(|e| bad(e.to_string()))?;
    let statement: attest::statement::Statement = serde_json::from_slice(&payload).map_err(|e| bad(e.to_string()))?;
    if !statement.has_known_type() {
        return Err(bad(format!("unknown _type {:?}", statement.type_)));
    }
    Ok((statement.predicate_type.clone(), statement.has_subject_digest("sha256", digest.hex())))
}

/// Reads an attestation file (a DSSE envelope, one `.intoto.jsonl` line, or a Sigstore
/// bundle) for attaching to the image `digest`.
pub fn prepare(name: &str, bytes: &[u8], digest: &Digest) -> Result<Prepared, AttachError> {
    let attestation =
        Attestation::detect(bytes).map_err(|source| AttachError::Attestation { name: name.to_string(), source })?;
    let (predicate_type, names_subject) = read_statement(name, &attestation, digest)?;
    let json = |v: Result<Vec<u8>, serde_json::Error>| {
        v.map(Bytes::from).map_err(|e| AttachError::Statement { name: name.to_string(), reason: e.to_string() })
    };
    let legacy_material = match &attestation.bundle {
        Some(b) => legacy_material(name, b)?,
        None => BTreeMap::new(),
    };
    let (bundle, envelope) = match &attestation.bundle {
        Some(_) => (Bytes::copy_from_slice(trim(bytes)), json(serde_json::to_vec(&attestation.envelope))?),
        None => {
            let mut bundle = Bundle::new(attestation.envelope.clone(), None);
            // A bundle must carry verification material: an empty key hint says "a key the
            // verifier brings", as cosign's keyed bundles do.
            bundle.verification_material.public_key = Some(PublicKeyIdentifier::default());
            (json(serde_json::to_vec(&bundle))?, Bytes::copy_from_slice(trim(bytes)))
        }
    };
    Ok(Prepared {
        name: name.to_string(),
        format: attestation.format(),
        predicate_type,
        names_subject,
        bundle,
        envelope,
        legacy_material,
    })
}

fn pem_certificate(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The legacy annotations of a certificate bundle: its leaf certificate (v0.3
/// `certificate`, or the first of v0.1/v0.2's `x509CertificateChain`) as PEM and its
/// first transparency-log entry with a signed entry timestamp as cosign's
/// `RekorBundle`. A keyed bundle has none.
fn legacy_material(name: &str, bundle: &Bundle) -> Result<BTreeMap<String, String>, AttachError> {
    let bad =
        |field: &str, reason: String| AttachError::Material { name: name.to_owned(), field: field.to_owned(), reason };
    let material = &bundle.verification_material.extra;
    let mut out = BTreeMap::new();
    let (field, raw) = match (material.get("certificate"), material.get("x509CertificateChain")) {
        (Some(c), _) => ("certificate.rawBytes", c.get("rawBytes")),
        (None, Some(chain)) => {
            ("x509CertificateChain.certificates[0].rawBytes", chain.pointer("/certificates/0/rawBytes"))
        }
        (None, None) => return Ok(out),
    };
    let raw = raw.and_then(serde_json::Value::as_str).ok_or_else(|| bad(field, "missing or not a string".into()))?;
    let der = STANDARD.decode(raw).map_err(|e| bad(field, format!("not base64: {e}")))?;
    out.insert(ANNOTATION_CERTIFICATE.to_owned(), pem_certificate(&der));
    let entries = material.get("tlogEntries").and_then(serde_json::Value::as_array);
    let Some(entry) = entries.and_then(|e| e.first()) else { return Ok(out) };
    let entry: attest::tlog::TlogEntry =
        serde_json::from_value(entry.clone()).map_err(|e| bad("tlogEntries[0]", e.to_string()))?;
    let (Some(promise), Some(time), Some(index), Some(log_id)) =
        (&entry.inclusion_promise, entry.integrated_time, entry.log_index, &entry.log_id)
    else {
        // Without a signed entry timestamp, cosign's RekorBundle cannot say it.
        return Ok(out);
    };
    let log_id =
        STANDARD.decode(&log_id.key_id).map_err(|e| bad("tlogEntries[0].logId", format!("not base64: {e}")))?;
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": promise.signed_entry_timestamp,
        "Payload": {
            "body": entry.canonicalized_body,
            "integratedTime": time.0,
            "logIndex": index.0,
            "logID": hex(&log_id),
        },
    });
    out.insert(ANNOTATION_REKOR_BUNDLE.to_owned(), rekor.to_string());
    Ok(out)
}

/// The Sigstore bundle of a legacy layer that carries cosign's certificate annotations:
/// the envelope `bytes`, the certificate, and the transparency-log entry when there is
/// one. `None` when the layer has no certificate; an error says what is malformed.
fn bundle_from_legacy(bytes: &[u8], annotations: &BTreeMap<String, String>) -> Result<Option<Bytes>, String> {
    let Some(pem) = annotations.get(ANNOTATION_CERTIFICATE) else { return Ok(None) };
    let attestation = Attestation::detect(bytes).map_err(|e| e.to_string())?;
    if attestation.bundle.is_some() {
        return Err("the layer is a bundle, not a DSSE envelope".to_owned());
    }
    let body: String = pem
        .lines()
        .skip_while(|l| l.trim() != "-----BEGIN CERTIFICATE-----")
        .skip(1)
        .take_while(|l| l.trim() != "-----END CERTIFICATE-----")
        .map(str::trim)
        .collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("{ANNOTATION_CERTIFICATE}: not a PEM certificate: {e}"))?;
    if der.is_empty() {
        return Err(format!("{ANNOTATION_CERTIFICATE}: not a PEM certificate"));
    }
    let mut bundle =
        serde_json::to_value(Bundle::with_certificate(attestation.envelope, &der)).map_err(|e| e.to_string())?;
    if let Some(rekor) = annotations.get(ANNOTATION_REKOR_BUNDLE) {
        let bad = |why: &str| format!("{ANNOTATION_REKOR_BUNDLE}: {why}");
        let rekor: serde_json::Value = serde_json::from_str(rekor).map_err(|e| bad(&e.to_string()))?;
        let payload = &rekor["Payload"];
        let text =
            |v: &serde_json::Value, what: &str| v.as_str().map(str::to_owned).ok_or_else(|| bad(&format!("no {what}")));
        let int = |v: &serde_json::Value, what: &str| v.as_i64().ok_or_else(|| bad(&format!("no {what}")));
        let log_id = text(&payload["logID"], "Payload.logID")?;
        let log_id: Vec<u8> = (0..log_id.len())
            .step_by(2)
            .map(|i| log_id.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("Payload.logID is not hex"))?;
        bundle["verificationMaterial"]["tlogEntries"] = serde_json::json!([{
            "logIndex": int(&payload["logIndex"], "Payload.logIndex")?.to_string(),
            "logId": {"keyId": STANDARD.encode(log_id)},
            "integratedTime": int(&payload["integratedTime"], "Payload.integratedTime")?.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": text(&rekor["SignedEntryTimestamp"], "SignedEntryTimestamp")?},
            "canonicalizedBody": text(&payload["body"], "Payload.body")?,
        }]);
    }
    serde_json::to_vec(&bundle).map(|b| Some(Bytes::from(b))).map_err(|e| e.to_string())
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// The referrer artifact of `p`, as cosign v3 lays it out (without the creation time).
pub fn referrer_artifact(p: &Prepared) -> NewReferrer {
    NewReferrer {
        artifact_type: MEDIA_TYPE_BUNDLE.to_string(),
        layers: vec![Blob {
            media_type: MEDIA_TYPE_BUNDLE.to_string(),
            data: p.bundle.clone(),
            annotations: BTreeMap::new(),
        }],
        annotations: BTreeMap::from([
            (ANNOTATION_BUNDLE_CONTENT.to_string(), "dsse-envelope".to_string()),
            (ANNOTATION_BUNDLE_PREDICATE_TYPE.to_string(), p.predicate_type.clone()),
        ]),
    }
}

/// The legacy `.att` layer of `p`, as cosign v2 writes it.
pub fn legacy_layer(p: &Prepared) -> Blob {
    let mut annotations = p.legacy_material.clone();
    annotations.insert(ANNOTATION_SIGNATURE.to_string(), String::new());
    annotations.insert(ANNOTATION_PREDICATE_TYPE.to_string(), p.predicate_type.clone());
    Blob { media_type: MEDIA_TYPE_DSSE.to_string(), data: p.envelope.clone(), annotations }
}

/// Which layouts to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layouts {
    /// The OCI 1.1 referrer only.
    Referrer,
    /// The legacy `.att` image only.
    Legacy,
    /// Both.
    Both,
}

impl Layouts {
    fn referrer(self) -> bool {
        matches!(self, Layouts::Referrer | Layouts::Both)
    }

    fn legacy(self) -> bool {
        matches!(self, Layouts::Legacy | Layouts::Both)
    }
}

/// What [`push`] did with one attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The attestation's name.
    pub name: String,
    /// Its predicate type.
    pub predicate_type: String,
    /// Whether a subject of its statement is the image digest.
    pub names_subject: bool,
    /// The referrer: its manifest digest, the path, whether it was added.
    pub referrer: Option<oci::referrers::PushedReferrer>,
    /// Whether its envelope was added to the legacy image (false: it was there).
    pub legacy_added: Option<bool>,
}

/// What [`push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The image.
    pub subject: Subject,
    /// Per attestation, in order.
    pub attestations: Vec<Pushed>,
    /// The legacy image after the push, when pushed.
    pub legacy: Option<oci::referrers::PushedLegacy>,
}

/// Attaches `attestations` to the image `digest` of `repository` in `layouts`: each as a
/// referrer, then all envelopes to the legacy image in one push. The image must exist,
/// and every statement must name it as a subject ([`AttachError::OtherSubject`]
/// otherwise, before anything is written).
pub async fn push(
    repository: &Repository,
    digest: &Digest,
    attestations: &[Prepared],
    layouts: Layouts,
) -> Result<PushReport, AttachError> {
    if let Some(p) = attestations.iter().find(|p| !p.names_subject) {
        return Err(AttachError::OtherSubject { name: p.name.clone(), digest: digest.to_string() });
    }
    let subject = repository.subject(digest).await?;
    let mut pushed = Vec::with_capacity(attestations.len());
    for p in attestations {
        let referrer = if layouts.referrer() {
            Some(repository.push_referrer(&subject, &referrer_artifact(p)).await?)
        } else {
            None
        };
        pushed.push(Pushed {
            name: p.name.clone(),
            predicate_type: p.predicate_type.clone(),
            names_subject: p.names_subject,
            referrer,
            legacy_added: None,
        });
    }
    let mut legacy = None;
    if layouts.legacy() {
        let layers: Vec<Blob> = attestations.iter().map(legacy_layer).collect();
        let before = {
            let budget = Budget::new(u64::MAX);
            repository.legacy(digest, LEGACY_SUFFIX, &budget).await?
        };
        let result = repository.push_legacy(digest, LEGACY_SUFFIX, &layers).await?;
        for (p, layer) in pushed.iter_mut().zip(&layers) {
            let d = layer.descriptor().digest;
            let was_there = before.as_ref().is_some_and(|b| b.manifest.layers.iter().any(|l| l.digest == d));
            p.legacy_added = Some(!was_there);
        }
        legacy = Some(result);
    }
    Ok(PushReport { subject, attestations: pushed, legacy })
}

/// Where a fetched attestation was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A referrer of the digest.
    Referrer {
        /// How the referrers were listed.
        path: ReferrersPath,
        /// The referrer manifest's digest.
        manifest: Digest,
    },
    /// The legacy image.
    Legacy {
        /// Its tag.
        tag: String,
        /// Its manifest's digest.
        manifest: Digest,
    },
}

/// An attestation found next to an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// Where it was.
    pub source: Source,
    /// Envelope or bundle.
    pub format: Format,
    /// The statement's predicate type (from the annotation when the statement cannot be read).
    pub predicate_type: Option<String>,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's bytes, digest-checked; for a legacy layer with cosign's certificate
    /// annotations, the Sigstore bundle made of the blob (the envelope) and them.
    pub bytes: Bytes,
}

/// What [`fetch`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    /// The image.
    pub subject: Subject,
    /// How its referrers were listed.
    pub referrers_path: ReferrersPath,
    /// The attestations, referrers first, then the legacy image's.
    pub attestations: Vec<Fetched>,
    /// What was skipped, and why.
    pub notes: Vec<String>,
}

fn is_bundle_type(t: &str) -> bool {
    t.starts_with("application/vnd.dev.sigstore.bundle")
}

/// Whether a referrers index entry may be an attestation: a bundle, an in-toto or DSSE
/// artifact, or one whose artifact type the registry reported as its config's (empty).
fn may_be_attestation(artifact_type: Option<&str>) -> bool {
    match artifact_type {
        None => true,
        Some(t) => is_bundle_type(t) || t == MEDIA_TYPE_IN_TOTO || t == MEDIA_TYPE_DSSE || t == MEDIA_TYPE_EMPTY,
    }
}

fn predicate_type_of(bytes: &[u8]) -> Option<String> {
    let attestation = Attestation::detect(bytes).ok()?;
    let payload = attestation.envelope.payload_bytes().ok()?;
    let statement: attest::statement::Statement = serde_json::from_slice(&payload).ok()?;
    Some(statement.predicate_type)
}

/// How many manifests or blobs of one fetch are requested at once.
const CONCURRENT_REQUESTS: usize = 8;

/// A layer to download, in the order of the report.
struct Wanted<'a> {
    source: Source,
    format: Format,
    layer: &'a oci::referrers::Descriptor,
    /// The predicate type the annotations give, when the statement cannot be read.
    annotated_type: Option<&'a String>,
}

/// Lists and downloads the attestations of the image `digest`: its referrers (the API,
/// else the tag schema) and the legacy `.att` image, within `limits`. A referrer whose
/// `subject` is not `digest` is ignored with a note; referrers of other kinds
/// (signatures, SBOMs) are skipped with a note.
///
/// Requests that do not depend on each other run concurrently: the image, its referrers
/// and its legacy image at once, then the referrer manifests, then every attestation
/// blob (at most 8 requests at a time each); the report is in the same
/// order whatever order they complete in.
pub async fn fetch(repository: &Repository, digest: &Digest, limits: Limits) -> Result<FetchReport, AttachError> {
    let budget = Budget::new(limits.max_bytes);
    let (subject, ReferrerList { path, referrers }, legacy) = futures_util::future::try_join3(
        repository.subject(digest),
        repository.referrers(digest, &budget),
        repository.legacy(digest, LEGACY_SUFFIX, &budget),
    )
    .await?;
    let mut notes = Vec::new();
    let too_many = || AttachError::TooManyAttestations {
        image: subject.image.to_string(),
        limit: limits.max_referrers,
        setting: stdx::setting::Setting::MaxReferrers,
    };
    let candidates: Vec<_> = referrers
        .iter()
        .filter(|d| {
            let keep = may_be_attestation(d.artifact_type.as_deref());
            if !keep {
                notes.push(format!(
                    "skipped referrer {} of artifact type {}: not an attestation",
                    d.digest,
                    d.artifact_type.as_deref().unwrap_or("")
                ));
            }
            keep
        })
        .collect();
    if candidates.len() > limits.max_referrers {
        return Err(too_many());
    }
    // The requests are made into a Vec before they become a stream (they start only when
    // polled): a closure in the stream's type makes the whole future not `Send` to
    // rustc's higher-ranked check (rust-lang/rust#102211), and the webhook spawns it.
    let requests: Vec<_> = candidates.iter().map(|d| repository.manifest(d, &budget)).collect();
    let manifests: Vec<_> = stream::iter(requests).buffered(CONCURRENT_REQUESTS).try_collect().await?;
    let mut wanted = Vec::new();
    for (d, manifest) in candidates.iter().zip(&manifests) {
        let manifest_digest = d.parsed_digest().map_err(ReferrersError::from)?;
        match &manifest.subject {
            Some(s) if s.digest == digest.to_string() => {}
            other => {
                notes.push(format!(
                    "ignored referrer {manifest_digest}: its subject is {}, not {digest}",
                    other.as_ref().map_or("missing", |s| s.digest.as_str())
                ));
                continue;
            }
        }
        let artifact_type = manifest.effective_artifact_type();
        for layer in &manifest.layers {
            let format = if is_bundle_type(&layer.media_type) {
                Format::SigstoreBundle
            } else if layer.media_type == MEDIA_TYPE_DSSE {
                Format::Dsse
            } else {
                notes.push(format!(
                    "skipped layer {} of referrer {manifest_digest} ({artifact_type}): media type {}",
                    layer.digest, layer.media_type
                ));
                continue;
            };
            wanted.push(Wanted {
                source: Source::Referrer { path, manifest: manifest_digest.clone() },
                format,
                layer,
                annotated_type: manifest
                    .annotations
                    .get(ANNOTATION_BUNDLE_PREDICATE_TYPE)
                    .or_else(|| layer.annotations.get(ANNOTATION_PREDICATE_TYPE)),
            });
        }
    }
    if let Some(legacy) = &legacy {
        for layer in &legacy.manifest.layers {
            if layer.media_type != MEDIA_TYPE_DSSE {
                notes
                    .push(format!("skipped layer {} of {}: media type {}", layer.digest, legacy.tag, layer.media_type));
                continue;
            }
            wanted.push(Wanted {
                source: Source::Legacy { tag: legacy.tag.clone(), manifest: legacy.digest.clone() },
                format: Format::Dsse,
                layer,
                annotated_type: layer.annotations.get(ANNOTATION_PREDICATE_TYPE),
            });
        }
    }
    if wanted.len() > limits.max_referrers {
        return Err(too_many());
    }
    let requests: Vec<_> = wanted.iter().map(|w| repository.blob(w.layer, &budget)).collect();
    let blobs: Vec<Bytes> = stream::iter(requests).buffered(CONCURRENT_REQUESTS).try_collect().await?;
    let mut attestations = Vec::with_capacity(wanted.len());
    for (w, bytes) in wanted.into_iter().zip(blobs) {
        let (format, bytes) = match &w.source {
            Source::Legacy { tag, .. } => match bundle_from_legacy(&bytes, &w.layer.annotations) {
                Ok(Some(bundle)) => (Format::SigstoreBundle, bundle),
                Ok(None) => (w.format, bytes),
                Err(why) => {
                    notes.push(format!("layer {} of {tag}: its certificate was not read: {why}", w.layer.digest));
                    (w.format, bytes)
                }
            },
            Source::Referrer { .. } => (w.format, bytes),
        };
        attestations.push(Fetched {
            source: w.source,
            format,
            predicate_type: predicate_type_of(&bytes).or_else(|| w.annotated_type.cloned()),
            digest: w.layer.parsed_digest().map_err(ReferrersError::from)?,
            bytes,
        });
    }
    Ok(FetchReport { subject, referrers_path: path, attestations, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use attest::keys::{Algorithm, KeySigner};
    use attest::statement::{ResourceDescriptor, Statement, PAYLOAD_TYPE_IN_TOTO};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PROVENANCE: &str = "https://slsa.dev/provenance/v1";

    fn envelope(subject_hex: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let statement =
            Statement::new(vec![ResourceDescriptor::sha256("img", subject_hex)], PROVENANCE, serde_json::json!({}));
        let envelope =
            attest::dsse::Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &serde_json::to_vec(&statement)?, &[&signer])?;
        Ok(serde_json::to_vec(&envelope)?)
    }

    #[test]
    fn an_envelope_maps_to_both_layouts() -> TestResult {
        let digest = Digest::of(b"image");
        let bytes = envelope(digest.hex())?;
        let p = prepare("a.intoto.jsonl", &bytes, &digest)?;
        assert_eq!(p.format, Format::Dsse);
        assert_eq!(p.predicate_type, PROVENANCE);
        assert!(p.names_subject);
        assert_eq!(&p.envelope[..], &bytes[..]);
        let bundle = Attestation::detect(&p.bundle)?;
        assert_eq!(bundle.format(), Format::SigstoreBundle);
        let bundle_json: serde_json::Value = serde_json::from_slice(&p.bundle)?;
        assert!(bundle_json["verificationMaterial"]["publicKey"].is_object());

        let referrer = referrer_artifact(&p);
        assert_eq!(referrer.artifact_type, MEDIA_TYPE_BUNDLE);
        assert_eq!(referrer.layers[0].media_type, MEDIA_TYPE_BUNDLE);
        assert_eq!(referrer.annotations[ANNOTATION_BUNDLE_CONTENT], "dsse-envelope");
        assert_eq!(referrer.annotations[ANNOTATION_BUNDLE_PREDICATE_TYPE], PROVENANCE);

        let layer = legacy_layer(&p);
        assert_eq!(layer.media_type, MEDIA_TYPE_DSSE);
        assert_eq!(layer.annotations[ANNOTATION_PREDICATE_TYPE], PROVENANCE);
        assert_eq!(layer.annotations[ANNOTATION_SIGNATURE], "");
        Ok(())
    }

    /// A certificate bundle's certificate and log entry go into cosign's legacy
    /// annotations, and a bundle is made of the layer and them again.
    #[test]
    fn a_certificate_bundle_survives_the_legacy_layout() -> TestResult {
        let digest = Digest::of(b"image");
        let env: attest::dsse::Envelope = serde_json::from_slice(&envelope(digest.hex())?)?;
        let leaf = b"not really DER, not checked here".repeat(5);
        let mut bundle = serde_json::to_value(Bundle::with_certificate(env, &leaf))?;
        let entry = serde_json::json!({
            "logIndex": "7", "logId": {"keyId": STANDARD.encode([0xab, 0x01])},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": "1800000000",
            "inclusionPromise": {"signedEntryTimestamp": "c2V0"}, "canonicalizedBody": "e30=",
        });
        bundle["verificationMaterial"]["tlogEntries"] = serde_json::json!([entry]);
        let p = prepare("c.sigstore.json", &serde_json::to_vec(&bundle)?, &digest)?;
        let layer = legacy_layer(&p);
        let pem = &layer.annotations[ANNOTATION_CERTIFICATE];
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n") && pem.lines().all(|l| l.len() <= 64), "{pem}");
        let rekor: serde_json::Value = serde_json::from_str(&layer.annotations[ANNOTATION_REKOR_BUNDLE])?;
        assert_eq!(
            rekor,
            serde_json::json!({"SignedEntryTimestamp": "c2V0", "Payload": {
                "body": "e30=", "integratedTime": 1_800_000_000i64, "logIndex": 7, "logID": "ab01"}})
        );
        let rebuilt = bundle_from_legacy(&layer.data, &layer.annotations)?.ok_or("no bundle")?;
        let rebuilt: serde_json::Value = serde_json::from_slice(&rebuilt)?;
        let material = &rebuilt["verificationMaterial"];
        assert_eq!(material["certificate"], bundle["verificationMaterial"]["certificate"]);
        let mut want = entry.clone();
        want.as_object_mut().ok_or("entry")?.remove("kindVersion");
        assert_eq!(material["tlogEntries"], serde_json::json!([want]));
        assert_eq!(rebuilt["dsseEnvelope"], bundle["dsseEnvelope"]);
        assert_eq!(Attestation::detect(&serde_json::to_vec(&rebuilt)?)?.format(), Format::SigstoreBundle);

        // A keyed envelope has no such annotations and stays an envelope.
        let keyed = prepare("k.intoto.jsonl", &envelope(digest.hex())?, &digest)?;
        let layer = legacy_layer(&keyed);
        assert_eq!(layer.annotations.len(), 2);
        assert_eq!(bundle_from_legacy(&layer.data, &layer.annotations)?, None);
        // Malformed annotations are said, not trusted.
        let mut bad = legacy_layer(&p).annotations;
        bad.insert(ANNOTATION_REKOR_BUNDLE.to_owned(), r#"{"Payload": {"logID": "zz"}}"#.to_owned());
        let err = bundle_from_legacy(&layer.data, &bad).err().unwrap_or_default();
        assert!(err.contains("Payload.logID is not hex"), "{err}");
        bad.insert(ANNOTATION_CERTIFICATE.to_owned(), "-----BEGIN CERTIFICATE-----\n!!\n".to_owned());
        let err = bundle_from_legacy(&layer.data, &bad).err().unwrap_or_default();
        assert!(err.contains("not a PEM certificate"), "{err}");
        // A certificate that is not base64 cannot be carried: a typed error.
        bundle["verificationMaterial"]["certificate"]["rawBytes"] = serde_json::json!("!!");
        let err = prepare("c.sigstore.json", &serde_json::to_vec(&bundle)?, &digest).err();
        assert!(
            matches!(&err, Some(AttachError::Material { field, .. }) if field == "certificate.rawBytes"),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn a_bundle_keeps_its_bytes_and_another_subject_is_said() -> TestResult {
        let digest = Digest::of(b"image");
        let env: attest::dsse::Envelope = serde_json::from_slice(&envelope(&"0".repeat(64))?)?;
        let bundle = serde_json::to_vec(&Bundle::new(env, None))?;
        let p = prepare("b.sigstore.json", &bundle, &digest)?;
        assert_eq!(p.format, Format::SigstoreBundle);
        assert_eq!(&p.bundle[..], &bundle[..]);
        assert!(!p.names_subject);
        assert!(matches!(prepare("x", b"not json", &digest), Err(AttachError::Attestation { .. })));
        Ok(())
    }
}
