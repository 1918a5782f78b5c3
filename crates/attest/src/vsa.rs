//! SLSA Verification Summary Attestation (VSA) v1 predicate.
//!
//! A [`VerificationSummary`] is the predicate of a statement whose `predicateType` is
//! [`PREDICATE_TYPE_VSA_V1`] (<https://slsa.dev/spec/v1.0/verification_summary>): who
//! verified which resource against which policy, when, with which result. reprove signs
//! one about the reference binary after each rebuild, FAILED as well as PASSED. Unknown
//! fields are kept in `extra`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::statement::ResourceDescriptor;

/// The `predicateType` of SLSA VSA v1.
pub const PREDICATE_TYPE_VSA_V1: &str = "https://slsa.dev/verification_summary/v1";

/// A SLSA VSA v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationSummary {
    /// The verifier that reached the result.
    pub verifier: VerifierId,
    /// When the verification happened (RFC 3339).
    #[serde(rename = "timeVerified")]
    pub time_verified: String,
    /// The URI of the resource verified.
    #[serde(rename = "resourceUri")]
    pub resource_uri: String,
    /// The policy applied.
    pub policy: ResourceDescriptor,
    /// The attestations the verification consumed, such as the provenance of the rebuild.
    #[serde(rename = "inputAttestations", default, skip_serializing_if = "Vec::is_empty")]
    pub input_attestations: Vec<ResourceDescriptor>,
    /// PASSED or FAILED.
    #[serde(rename = "verificationResult")]
    pub verification_result: VerificationResult,
    /// The SLSA levels (and reprove's reproduced-build level) the resource earned.
    #[serde(rename = "verifiedLevels", default)]
    pub verified_levels: Vec<String>,
    /// Levels of the dependencies, by level name.
    #[serde(rename = "dependencyLevels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependency_levels: BTreeMap<String, u64>,
    /// The SLSA version the levels refer to.
    #[serde(rename = "slsaVersion", default, skip_serializing_if = "Option::is_none")]
    pub slsa_version: Option<String>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The identity of a verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierId {
    /// A URI identifying the verifier.
    pub id: String,
    /// Versions of the verifier's components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerificationResult {
    /// The resource met the policy.
    #[serde(rename = "PASSED")]
    Passed,
    /// The resource did not meet the policy.
    #[serde(rename = "FAILED")]
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsa_round_trips_and_rejects_unknown_results() -> Result<(), serde_json::Error> {
        let text = serde_json::json!({
            "verifier": {"id": "https://example.com/v", "x-v": 2},
            "timeVerified": "2026-01-01T00:00:00Z",
            "resourceUri": "file:app",
            "policy": {"uri": "https://example.com/policy"},
            "verificationResult": "FAILED",
            "verifiedLevels": [],
            "x-top": null
        });
        let vsa: VerificationSummary = serde_json::from_value(text.clone())?;
        assert_eq!(vsa.verification_result, VerificationResult::Failed);
        assert_eq!(serde_json::to_value(&vsa)?, text);
        let mut bad = text;
        bad["verificationResult"] = "MAYBE".into();
        assert!(serde_json::from_value::<VerificationSummary>(bad).is_err());
        Ok(())
    }
}
