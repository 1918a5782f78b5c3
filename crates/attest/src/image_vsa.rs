//! The image-level VSA of `reprove audit`: one verdict about an image,
//! bound to its digest, listing every Go binary found in it.
//!
//! Its subjects are the image only (docs/attestation-subjects.md, "The audit's
//! image VSA"): the digest the audit was given (an index or a manifest) and,
//! for an index, the manifest of each platform audited. An admission check
//! holding the digest it deploys finds it without knowing the binaries. The
//! predicate is a SLSA VSA v1: PASSED only when the image has at least one Go
//! binary and every one was reproduced; the binaries, each with its digest,
//! platform, path and outcome, are in the [`VSA_BINARIES_FIELD`] extension,
//! and the per-binary VSAs, when signed, are its input attestations.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::generate::{
    bad, check_sha256_hex, check_time, descriptor, digest_hex, non_empty, AttestationRef, GenerateError,
    ImageDigestKind, ANNOTATION_IMAGE_DIGEST, ANNOTATION_IMAGE_PLATFORM, LEVEL_REPRODUCED, VSA_CAUSES_FIELD,
};
use crate::statement::{ResourceDescriptor, Statement};
use crate::vsa::{VerificationResult, VerificationSummary, VerifierId, PREDICATE_TYPE_VSA_V1};

/// The VSA field (an extension) that lists the binaries of the image and their outcomes.
pub const VSA_BINARIES_FIELD: &str = "reproveBinaries";

/// The outcome `reproduced`, the only one that passes.
pub const OUTCOME_REPRODUCED: &str = "reproduced";

/// The cause of a FAILED image VSA whose image had no Go binary.
pub const CAUSE_NO_GO_BINARIES: &str = "no-go-binaries";

/// One binary of the audited image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditedBinary {
    /// Its path in the image.
    pub path: String,
    /// The platform whose manifest held it (`linux/amd64`).
    pub platform: String,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// `reproduced`, `not-reproduced`, `unverifiable` or `error`.
    pub outcome: String,
    /// Why, when not reproduced (an unverifiable reason or the first cause).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The audited image by one of its digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedImage {
    /// `registry/repository` (for a local layout or archive: the name the auditor gave it).
    pub name: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// What the digest names.
    pub kind: ImageDigestKind,
    /// The platform, for a manifest.
    pub platform: Option<String>,
}

/// What an audit established, for the image VSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVsaInput {
    /// The image by the digest given first, then each platform manifest audited.
    pub images: Vec<AuditedImage>,
    /// The URI of the image verified (`oci://registry/repo@sha256:…`).
    pub resource_uri: String,
    /// Every Go binary found.
    pub binaries: Vec<AuditedBinary>,
    /// The per-binary VSAs, when signed.
    pub input_attestations: Vec<AttestationRef>,
    /// The verifier's id (a URI).
    pub verifier_id: String,
    /// Versions of the verifier's components.
    pub verifier_version: BTreeMap<String, String>,
    /// When the audit finished (RFC 3339).
    pub time_verified: String,
    /// The policy applied.
    pub policy_uri: String,
}

/// PASSED only when there is a binary and every one was reproduced; the
/// causes of a FAILED result are the outcomes that were not.
pub fn image_result(binaries: &[AuditedBinary]) -> (VerificationResult, Vec<String>) {
    if binaries.is_empty() {
        return (VerificationResult::Failed, vec![CAUSE_NO_GO_BINARIES.to_owned()]);
    }
    let causes: BTreeSet<&str> =
        binaries.iter().map(|b| b.outcome.as_str()).filter(|o| *o != OUTCOME_REPRODUCED).collect();
    if causes.is_empty() {
        (VerificationResult::Passed, Vec::new())
    } else {
        (VerificationResult::Failed, causes.into_iter().map(str::to_owned).collect())
    }
}

/// The image VSA statement.
pub fn image_vsa_statement(input: &ImageVsaInput) -> Result<Statement, GenerateError> {
    non_empty("resource_uri", &input.resource_uri)?;
    non_empty("verifier_id", &input.verifier_id)?;
    check_time("time_verified", &input.time_verified)?;
    non_empty("policy_uri", &input.policy_uri)?;
    if input.images.is_empty() {
        return Err(bad("images", "an image VSA is about an image: give its digest"));
    }
    let mut subject = Vec::with_capacity(input.images.len());
    for (i, image) in input.images.iter().enumerate() {
        non_empty(&format!("images[{i}].name"), &image.name)?;
        let hex = digest_hex(&format!("images[{i}].digest"), &image.digest)?;
        let mut d = descriptor(None, Some(image.name.clone()), ("sha256", hex));
        d.annotations.insert(ANNOTATION_IMAGE_DIGEST.to_owned(), Value::from(image.kind.as_str()));
        match (&image.kind, &image.platform) {
            (ImageDigestKind::Manifest, Some(p)) => {
                d.annotations.insert(ANNOTATION_IMAGE_PLATFORM.to_owned(), Value::from(p.as_str()));
            }
            (ImageDigestKind::Manifest, None) => {
                return Err(bad(&format!("images[{i}].platform"), "a manifest names its platform"))
            }
            (ImageDigestKind::Index, _) if i > 0 => {
                return Err(bad(&format!("images[{i}]"), "only the digest given may be an index"))
            }
            _ => {}
        }
        subject.push(d);
    }
    for (i, b) in input.binaries.iter().enumerate() {
        non_empty(&format!("binaries[{i}].path"), &b.path)?;
        non_empty(&format!("binaries[{i}].outcome"), &b.outcome)?;
        check_sha256_hex(&format!("binaries[{i}].sha256"), &b.sha256)?;
    }
    let mut attestations = Vec::with_capacity(input.input_attestations.len());
    for (i, a) in input.input_attestations.iter().enumerate() {
        non_empty(&format!("input_attestations[{i}].uri"), &a.uri)?;
        check_sha256_hex(&format!("input_attestations[{i}].sha256"), &a.sha256)?;
        attestations.push(descriptor(Some(a.uri.clone()), None, ("sha256", &a.sha256)));
    }
    let (result, causes) = image_result(&input.binaries);
    let mut extra = Map::new();
    if !causes.is_empty() {
        extra.insert(VSA_CAUSES_FIELD.to_owned(), Value::from(causes));
    }
    let binaries = serde_json::to_value(&input.binaries).map_err(|e| bad("binaries", e.to_string()))?;
    extra.insert(VSA_BINARIES_FIELD.to_owned(), binaries);
    let summary = VerificationSummary {
        verifier: VerifierId {
            id: input.verifier_id.clone(),
            version: input.verifier_version.clone(),
            extra: Map::new(),
        },
        time_verified: input.time_verified.clone(),
        resource_uri: input.resource_uri.clone(),
        policy: ResourceDescriptor { uri: Some(input.policy_uri.clone()), ..ResourceDescriptor::default() },
        input_attestations: attestations,
        verification_result: result,
        verified_levels: if result == VerificationResult::Passed {
            vec![LEVEL_REPRODUCED.to_owned()]
        } else {
            Vec::new()
        },
        dependency_levels: BTreeMap::new(),
        slsa_version: Some("1.0".to_owned()),
        extra,
    };
    let predicate = serde_json::to_value(&summary).map_err(|e| bad("predicate", e.to_string()))?;
    Ok(Statement::new(subject, PREDICATE_TYPE_VSA_V1, predicate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(path: &str, outcome: &str) -> AuditedBinary {
        AuditedBinary {
            path: path.into(),
            platform: "linux/amd64".into(),
            sha256: "a".repeat(64),
            outcome: outcome.into(),
            reason: None,
        }
    }

    fn input(binaries: Vec<AuditedBinary>) -> ImageVsaInput {
        ImageVsaInput {
            images: vec![
                AuditedImage {
                    name: "reg.test/acme/app".into(),
                    digest: format!("sha256:{}", "1".repeat(64)),
                    kind: ImageDigestKind::Index,
                    platform: None,
                },
                AuditedImage {
                    name: "reg.test/acme/app".into(),
                    digest: format!("sha256:{}", "2".repeat(64)),
                    kind: ImageDigestKind::Manifest,
                    platform: Some("linux/amd64".into()),
                },
            ],
            resource_uri: format!("oci://reg.test/acme/app@sha256:{}", "1".repeat(64)),
            binaries,
            input_attestations: vec![],
            verifier_id: "https://reprove.dev/verifier".into(),
            verifier_version: BTreeMap::new(),
            time_verified: "2026-12-06T00:00:00Z".into(),
            policy_uri: "https://reprove.dev/policy/audit/v1".into(),
        }
    }

    #[test]
    fn passed_only_when_every_binary_was_reproduced() {
        let all = input(vec![binary("/a", "reproduced"), binary("/b", "reproduced")]);
        let s = serde_json::to_value(image_vsa_statement(&all).unwrap()).unwrap();
        assert_eq!(s["predicate"]["verificationResult"], "PASSED");
        assert_eq!(s["predicate"][VSA_BINARIES_FIELD][1]["path"], "/b");
        assert_eq!(s["subject"][0]["annotations"][ANNOTATION_IMAGE_DIGEST], "index");
        assert_eq!(s["subject"][1]["annotations"][ANNOTATION_IMAGE_PLATFORM], "linux/amd64");
        let some =
            input(vec![binary("/a", "reproduced"), binary("/b", "unverifiable"), binary("/c", "not-reproduced")]);
        let s = serde_json::to_value(image_vsa_statement(&some).unwrap()).unwrap();
        assert_eq!(s["predicate"]["verificationResult"], "FAILED");
        assert_eq!(s["predicate"][VSA_CAUSES_FIELD], serde_json::json!(["not-reproduced", "unverifiable"]));
        assert_eq!(s["predicate"]["verifiedLevels"], serde_json::json!([]));
        let none = serde_json::to_value(image_vsa_statement(&input(vec![])).unwrap()).unwrap();
        assert_eq!(none["predicate"]["verificationResult"], "FAILED");
        assert_eq!(none["predicate"][VSA_CAUSES_FIELD][0], CAUSE_NO_GO_BINARIES);
    }

    /// Both layouts (an index with its platforms, a single manifest) follow
    /// `schemas/image-vsa-subjects.schema.json`; a binary subject would not.
    #[test]
    fn subjects_follow_the_schema() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/image-vsa-subjects.schema.json");
        let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let index =
            serde_json::to_value(image_vsa_statement(&input(vec![binary("/a", "reproduced")])).unwrap()).unwrap();
        assert!(validator.is_valid(&index["subject"]), "{:#}", index["subject"]);
        let mut single = input(vec![binary("/a", "reproduced")]);
        single.images.remove(0);
        let single = serde_json::to_value(image_vsa_statement(&single).unwrap()).unwrap();
        assert!(validator.is_valid(&single["subject"]), "{:#}", single["subject"]);
        let mut with_binary = index["subject"].clone();
        with_binary
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "app", "digest": {"sha256": "a".repeat(64)}}));
        assert!(!validator.is_valid(&with_binary));
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut i = input(vec![binary("/a", "reproduced")]);
        i.images[1].platform = None;
        assert_eq!(image_vsa_statement(&i).unwrap_err().field, "images[1].platform");
        let mut i = input(vec![binary("/a", "reproduced")]);
        i.binaries[0].sha256 = "x".into();
        assert_eq!(image_vsa_statement(&i).unwrap_err().field, "binaries[0].sha256");
        let mut i = input(vec![]);
        i.images.clear();
        assert_eq!(image_vsa_statement(&i).unwrap_err().field, "images");
    }
}
