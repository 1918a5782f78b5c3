//! The whole verification of an attestation (a DSSE envelope or a Sigstore bundle), as
//! `reprove attest verify` runs it and a server can reuse it: the signer (trusted keys,
//! or a certificate with its transparency-log entry, timestamps and identity), the
//! signatures against a threshold, the statement, the predicate type, the subject digest
//! and a policy. Each step is a named [`Check`]; verification stops at the first failed
//! one, except that every policy rule is evaluated and recorded.
//!
//! Nothing here reads a file or the clock: the caller passes parsed keys, trust
//! material, policy and the current time.
//!
//! ```text
//! let mut keys = TrustedKeys::default();
//! keys.add(PublicKey::from_pem(pem)?)?;
//! let verifier = Verifier::new(Signers::Keys(keys), Requirements::default())?;
//! let verification = verifier.verify(&Attestation::detect(bytes)?, Some(sha256_hex), now);
//! ```

use crate::bundle::{self, Attestation, Bundle};
use crate::cert_verify::{self, Hint, SctCheck, SignerOptions, SigningTime, Warning};
use crate::certificate::{IdentityRule, SignerIdentity};
use crate::dsse::DsseError;
use crate::keys::PublicKey;
use crate::policy::Policy;
use crate::statement::{Statement, PAYLOAD_TYPE_IN_TOTO, STATEMENT_TYPE_V0_1, STATEMENT_TYPE_V1};
use crate::trust_root::TrustMaterial;

/// Why a verification cannot be set up (before any attestation is looked at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The same trusted key was added twice (the threshold counts distinct keys).
    #[error("trusted key {second} is the same key as trusted key {first}")]
    DuplicateKey {
        /// The index of the key added first.
        first: usize,
        /// The index of the key added again.
        second: usize,
    },
    /// Certificate trust without any identity rule: any certificate of the authority
    /// would do.
    #[error(
        "a certificate bundle is only as good as the identity it must name: give an identity rule (a subject and \
         an OIDC issuer) or a policy with a [certificate] section"
    )]
    NoIdentity,
    /// The threshold is 0 or more than the signers available.
    #[error(
        "threshold {required} with {available} keys: it must be between 1 and the number of keys{}",
        if *certificate { " (a certificate bundle has one signer)" } else { "" }
    )]
    Threshold {
        /// The threshold the caller asked for, if any.
        requested: Option<usize>,
        /// The policy's threshold, if any.
        policy: Option<usize>,
        /// The threshold that applies: the higher of the two (at least 1).
        required: usize,
        /// The number of possible signers.
        available: usize,
        /// Whether the signer is a certificate (which is one signer).
        certificate: bool,
    },
}

/// A subject digest that is not `sha256:` and 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `sha256:` prefix.
    #[error("{0:?}: expected sha256:HEX")]
    NotSha256(String),
    /// Not 64 hex digits after the prefix.
    #[error("{0:?}: expected 64 hex digits after sha256:")]
    NotHex(String),
}

/// `sha256:HEX` as the lower-case hex a subject must carry.
pub fn parse_sha256_digest(text: &str) -> Result<String, DigestError> {
    let hex = text.strip_prefix("sha256:").ok_or_else(|| DigestError::NotSha256(text.to_owned()))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DigestError::NotHex(text.to_owned()));
    }
    Ok(hex.to_ascii_lowercase())
}

/// One check of a verification and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `certificate`, `keyUsage`, `extendedKeyUsage`, `tlog`, `timestamp`,
    /// `certificateValidity`, `certificateChain`, `sct`, `identity` (certificate
    /// bundles), then `signatures`, `payloadType`, `statement`, `predicateType`,
    /// `subject`, `policy`.
    pub name: &'static str,
    /// For `policy` checks: the rule, as the policy file writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Whether it passed.
    pub passed: bool,
    /// What was found, or why it failed.
    pub detail: String,
    /// How the outcome relates to the caller's options (certificate checks), for the
    /// caller to add in its own terms: the detail names no option.
    #[serde(skip)]
    pub hint: Option<Hint>,
}

/// Distinct trusted public keys, in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// Adds a key; the same key twice is an error naming both positions.
    pub fn add(&mut self, key: PublicKey) -> Result<(), VerifyError> {
        if let Some(first) = self.keys.iter().position(|k| k == &key) {
            return Err(VerifyError::DuplicateKey { first, second: self.keys.len() });
        }
        self.keys.push(key);
        Ok(())
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// How a certificate bundle's signer is trusted.
#[derive(Debug, Clone)]
pub struct CertificateTrust {
    /// Authorities, transparency-log, CT-log and timestamping keys.
    pub trust: TrustMaterial,
    /// Accepted signers (any one); may be empty when the policy names them.
    pub identities: Vec<IdentityRule>,
    /// INSECURE: without a verified transparency-log entry, check the certificate at the
    /// current time (cosign's `insecure-ignore-tlog`); warned about.
    pub insecure_current_time: bool,
    /// Whether the certificate must carry a verified SCT.
    pub sct: SctCheck,
    /// Whether an RFC 3161 timestamp of the bundle must verify and give a signing time.
    pub signed_timestamps: bool,
}

/// Who may have signed.
#[derive(Debug, Clone)]
pub enum Signers {
    /// Trusted public keys, with a threshold of distinct keys.
    Keys(TrustedKeys),
    /// A certificate bundle's signer (one).
    Certificate(CertificateTrust),
}

/// What the statement must satisfy besides a trusted signature.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// How many distinct trusted keys must have signed (default 1; the policy's
    /// threshold when higher).
    pub threshold: Option<usize>,
    /// The predicate type the statement must have.
    pub predicate_type: Option<String>,
    /// A policy whose rules the statement (and a certificate's signer) must satisfy.
    pub policy: Option<Policy>,
}

/// The outcome of [`Verifier::verify`].
#[derive(Debug, Clone)]
pub struct Verification {
    /// The checks in order; when not valid, the failed ones are among them.
    pub checks: Vec<Check>,
    /// Insecure options in effect, to show loudly.
    pub warnings: Vec<Warning>,
    /// Whether every check passed.
    pub valid: bool,
}

/// A verification set up with its trust and requirements, for any number of attestations.
#[derive(Debug, Clone)]
pub struct Verifier {
    signers: Signers,
    requirements: Requirements,
    threshold: usize,
    /// Whether the threshold is the policy's (raised above the caller's), which the
    /// signature check then says.
    threshold_from_policy: bool,
}

impl Verifier {
    /// Checks that the trust and requirements make sense: certificate trust names an
    /// identity (directly or in the policy), and the threshold is between 1 and the
    /// number of possible signers.
    pub fn new(signers: Signers, requirements: Requirements) -> Result<Verifier, VerifyError> {
        let policy_threshold = requirements.policy.as_ref().and_then(Policy::threshold);
        if let Signers::Certificate(c) = &signers {
            let policy_names_one = requirements.policy.as_ref().and_then(|p| p.certificate.as_ref()).is_some();
            if c.identities.is_empty() && !policy_names_one {
                return Err(VerifyError::NoIdentity);
            }
        }
        let requested = requirements.threshold;
        let threshold = requested.unwrap_or(1).max(policy_threshold.unwrap_or(1));
        let (available, certificate) = match &signers {
            Signers::Keys(keys) => (keys.keys.len(), false),
            Signers::Certificate(_) => (1, true),
        };
        if requested == Some(0) || threshold > available {
            return Err(VerifyError::Threshold {
                requested,
                policy: policy_threshold,
                required: threshold,
                available,
                certificate,
            });
        }
        let threshold_from_policy = policy_threshold == Some(threshold) && requested.is_none_or(|t| t < threshold);
        Ok(Verifier { signers, requirements, threshold, threshold_from_policy })
    }

    /// The number of distinct keys that must have signed.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Verifies `attestation` at `now` (Unix seconds: the policy's age rule, and the
    /// certificate's validity with `insecure_current_time`); with `subject_sha256` (lower-case
    /// hex, as [`parse_sha256_digest`] returns it), one subject must have that digest.
    pub fn verify(&self, attestation: &Attestation, subject_sha256: Option<&str>, now: i64) -> Verification {
        let mut checks = Vec::new();
        let mut warnings = Vec::new();
        let certificate_signer;
        let (trusted, signer): (&[PublicKey], Option<&SignerIdentity>) = match &self.signers {
            Signers::Keys(keys) => (&keys.keys, None),
            Signers::Certificate(c) => {
                let options = SignerOptions {
                    trust: &c.trust,
                    identities: &c.identities,
                    time: if c.insecure_current_time {
                        SigningTime::InsecureCurrentTime(now)
                    } else {
                        SigningTime::TransparencyLog
                    },
                    sct: c.sct,
                    signed_timestamps: c.signed_timestamps,
                };
                let verified = cert_verify::verify_signer(attestation.bundle.as_ref(), &attestation.envelope, &options);
                for step in verified.steps {
                    let passed = step.result.is_ok();
                    let detail = step.result.unwrap_or_else(|e| e);
                    checks.push(Check { name: step.name, rule: None, passed, detail, hint: step.hint });
                }
                warnings = verified.warnings;
                let Some(verified_signer) = verified.signer else {
                    return Verification { checks, warnings, valid: false };
                };
                certificate_signer = verified_signer;
                (std::slice::from_ref(&certificate_signer.key), Some(&certificate_signer.identity))
            }
        };
        let valid = self.run_checks(attestation, trusted, signer, subject_sha256, now, &mut checks).is_ok();
        Verification { checks, warnings, valid }
    }

    /// Runs the checks after the signer's, in order, recording each; stops at the first
    /// failure, except that every policy rule is evaluated and recorded.
    fn run_checks(
        &self,
        attestation: &Attestation,
        trusted: &[PublicKey],
        signer: Option<&SignerIdentity>,
        subject_sha256: Option<&str>,
        now: i64,
        checks: &mut Vec<Check>,
    ) -> Result<(), ()> {
        let threshold = self.threshold;
        let requirements = &self.requirements;
        let threshold_note = if self.threshold_from_policy { " (threshold from the policy)" } else { "" };
        let mut record = |name, result: Result<String, String>| {
            let passed = result.is_ok();
            checks.push(Check { name, rule: None, passed, detail: result.unwrap_or_else(|e| e), hint: None });
            if passed {
                Ok(())
            } else {
                Err(())
            }
        };
        let envelope = &attestation.envelope;
        // A bundle's key hint is unauthenticated: it only explains a failure.
        let hint_note = match attestation.bundle.as_ref().and_then(Bundle::hint) {
            Some(hint) if !trusted.iter().any(|k| bundle::public_key_hint(k) == hint) => {
                format!(" (the bundle's publicKey hint {hint} names none of the trusted keys)")
            }
            _ => String::new(),
        };
        let verified = match envelope.verify(PAYLOAD_TYPE_IN_TOTO, trusted, threshold) {
            Ok(v) => {
                record(
                    "signatures",
                    Ok(format!("{} of {threshold} required distinct keys verified{threshold_note}", v.keys.len())),
                )?;
                record("payloadType", Ok(PAYLOAD_TYPE_IN_TOTO.to_owned()))?;
                v
            }
            Err(e @ DsseError::PayloadType { .. }) => {
                record("signatures", Ok("verified".to_owned()))?;
                return record("payloadType", Err(e.to_string()));
            }
            Err(e) => {
                let short = match &e {
                    DsseError::Threshold { accepted, .. } if self.threshold_from_policy && *accepted > 0 => {
                        Some(*accepted)
                    }
                    _ => None,
                };
                let failed = record("signatures", Err(format!("{e}{threshold_note}{hint_note}")));
                // Enough valid signatures for the caller's threshold, not for the
                // policy's: name its rule too.
                if let Some(accepted) = short {
                    checks.push(Check {
                        name: "policy",
                        rule: Some("threshold".to_owned()),
                        passed: false,
                        detail: format!("the policy requires {threshold} distinct trusted keys; {accepted} signed"),
                        hint: None,
                    });
                }
                return failed;
            }
        };
        let statement: Statement = match serde_json::from_slice(&verified.payload) {
            Ok(s) => s,
            Err(e) => return record("statement", Err(format!("payload is not an in-toto statement: {e}"))),
        };
        if !statement.has_known_type() {
            return record(
                "statement",
                Err(format!(
                    "_type is {:?}, expected {STATEMENT_TYPE_V1:?} or {STATEMENT_TYPE_V0_1:?}",
                    statement.type_
                )),
            );
        }
        record(
            "statement",
            Ok(format!("{} subjects, predicate type {}", statement.subject.len(), statement.predicate_type)),
        )?;
        if let Some(want) = &requirements.predicate_type {
            let result = if statement.predicate_type == *want {
                Ok(want.clone())
            } else {
                Err(format!("expected {want:?}, statement has {:?}", statement.predicate_type))
            };
            record("predicateType", result)?;
        }
        if let Some(hex) = subject_sha256 {
            let result = if statement.has_subject_digest("sha256", hex) {
                Ok(format!("sha256:{hex}"))
            } else if statement.has_subject_digest_in_other_case("sha256", hex) {
                Err(format!(
                    "a subject has sha256:{hex} written in upper-case hex; digests are lower-case hex (as cosign \
                     requires)"
                ))
            } else {
                Err(format!("no subject has sha256:{hex}"))
            };
            record("subject", result)?;
        }
        if let Some(policy) = &requirements.policy {
            let mut outcomes = policy.evaluate(&statement, now);
            outcomes.extend(policy.evaluate_signer(signer));
            let passed = outcomes.iter().all(|o| o.passed);
            if outcomes.is_empty() {
                checks.push(Check {
                    name: "policy",
                    rule: None,
                    passed,
                    detail: "no rule applies".to_owned(),
                    hint: None,
                });
            }
            for outcome in outcomes {
                checks.push(Check {
                    name: "policy",
                    rule: Some(outcome.rule),
                    passed: outcome.passed,
                    detail: outcome.detail,
                    hint: None,
                });
            }
            if !passed {
                return Err(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsse::Envelope;
    use crate::keys::{Algorithm, KeySigner, Signer as _};
    use crate::statement::ResourceDescriptor;

    const PREDICATE_TYPE: &str = "https://example.com/test-predicate/v1";
    const NOW: i64 = 1_790_000_000;

    fn signer() -> KeySigner {
        KeySigner::generate(Algorithm::EcdsaP256Sha256).map(|(s, _)| s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn envelope_about(subject_hex: &str, signers: &[&KeySigner]) -> Envelope {
        let statement = Statement::new(
            vec![ResourceDescriptor::sha256("app", subject_hex)],
            PREDICATE_TYPE,
            serde_json::json!({"buildDefinition": {}}),
        );
        let payload = serde_json::to_vec(&statement).unwrap_or_else(|e| panic!("{e}"));
        let signers: Vec<&dyn crate::keys::Signer> = signers.iter().map(|s| *s as &dyn crate::keys::Signer).collect();
        Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &payload, &signers).unwrap_or_else(|e| panic!("{e}"))
    }

    fn attestation(envelope: Envelope) -> Attestation {
        Attestation { envelope, bundle: None }
    }

    fn keys(signers: &[&KeySigner]) -> Signers {
        let mut keys = TrustedKeys::default();
        for s in signers {
            keys.add(s.public_key().clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        Signers::Keys(keys)
    }

    fn verifier(signers: Signers, requirements: Requirements) -> Verifier {
        Verifier::new(signers, requirements).unwrap_or_else(|e| panic!("{e}"))
    }

    fn policy(toml: &str) -> Policy {
        Policy::from_toml(toml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(v: &Verification) -> Vec<&str> {
        v.checks.iter().map(|c| c.name).collect()
    }

    #[test]
    fn a_signed_statement_passes_every_check_named() {
        let key = signer();
        let hex = "a".repeat(64);
        let requirements = Requirements { predicate_type: Some(PREDICATE_TYPE.to_owned()), ..Requirements::default() };
        let v =
            verifier(keys(&[&key]), requirements).verify(&attestation(envelope_about(&hex, &[&key])), Some(&hex), NOW);
        assert!(v.valid, "{:#?}", v.checks);
        assert_eq!(names(&v), ["signatures", "payloadType", "statement", "predicateType", "subject"]);
        assert!(v.checks.iter().all(|c| c.passed));
        assert_eq!(v.checks[0].detail, "1 of 1 required distinct keys verified");
        assert_eq!(v.checks[4].detail, format!("sha256:{hex}"));
        assert!(v.warnings.is_empty());
    }

    #[test]
    fn a_tampered_payload_fails_the_signature_check_and_stops() {
        let key = signer();
        let mut envelope = envelope_about(&"a".repeat(64), &[&key]);
        // The payload of another statement under the first one's signature.
        envelope.payload = envelope_about(&"b".repeat(64), &[&key]).payload;
        let v = verifier(keys(&[&key]), Requirements::default()).verify(&attestation(envelope), None, NOW);
        assert!(!v.valid);
        assert_eq!(names(&v), ["signatures"]);
        assert!(!v.checks[0].passed);
        assert!(v.checks[0].detail.starts_with("signature check failed: 0 of 1"), "{}", v.checks[0].detail);
    }

    #[test]
    fn an_untrusted_signer_fails_the_signature_check() {
        let (trusted, other) = (signer(), signer());
        let v = verifier(keys(&[&trusted]), Requirements::default()).verify(
            &attestation(envelope_about(&"a".repeat(64), &[&other])),
            None,
            NOW,
        );
        assert!(!v.valid);
        assert_eq!(names(&v), ["signatures"]);
    }

    #[test]
    fn a_wrong_subject_or_predicate_type_is_named() {
        let key = signer();
        let envelope = envelope_about(&"a".repeat(64), &[&key]);
        let v = verifier(keys(&[&key]), Requirements::default()).verify(
            &attestation(envelope.clone()),
            Some(&"b".repeat(64)),
            NOW,
        );
        assert!(!v.valid);
        let last = v.checks.last().unwrap_or_else(|| panic!("no checks"));
        assert_eq!((last.name, last.passed), ("subject", false));
        assert_eq!(last.detail, format!("no subject has sha256:{}", "b".repeat(64)));

        let requirements =
            Requirements { predicate_type: Some("https://example.com/other".into()), ..Requirements::default() };
        let v = verifier(keys(&[&key]), requirements).verify(&attestation(envelope), None, NOW);
        assert!(!v.valid);
        assert_eq!(names(&v), ["signatures", "payloadType", "statement", "predicateType"]);
    }

    #[test]
    fn a_policy_failure_names_the_rule_and_evaluates_every_rule() {
        let key = signer();
        let requirements = Requirements {
            policy: Some(policy("version = 1\npredicate_types = [\"https://example.com/other/v1\"]\n")),
            ..Requirements::default()
        };
        let v = verifier(keys(&[&key]), requirements).verify(
            &attestation(envelope_about(&"a".repeat(64), &[&key])),
            None,
            NOW,
        );
        assert!(!v.valid);
        let failed: Vec<(&str, Option<&str>)> =
            v.checks.iter().filter(|c| !c.passed).map(|c| (c.name, c.rule.as_deref())).collect();
        assert_eq!(failed, [("policy", Some("predicate_types"))]);

        let passing = Requirements {
            policy: Some(policy(&format!("version = 1\npredicate_types = [\"{PREDICATE_TYPE}\"]\n"))),
            ..Requirements::default()
        };
        let v =
            verifier(keys(&[&key]), passing).verify(&attestation(envelope_about(&"a".repeat(64), &[&key])), None, NOW);
        assert!(v.valid, "{:#?}", v.checks);
        assert_eq!(v.checks.last().and_then(|c| c.rule.as_deref()), Some("predicate_types"));
    }

    #[test]
    fn the_policy_threshold_raises_the_callers_and_is_named_when_short() {
        let (first, second) = (signer(), signer());
        let requirements =
            Requirements { policy: Some(policy("version = 1\nthreshold = 2\n")), ..Requirements::default() };
        let verifier = verifier(keys(&[&first, &second]), requirements);
        assert_eq!(verifier.threshold(), 2);
        let v = verifier.verify(&attestation(envelope_about(&"a".repeat(64), &[&first])), None, NOW);
        assert!(!v.valid);
        assert_eq!(names(&v), ["signatures", "policy"]);
        assert!(v.checks[0].detail.ends_with("(threshold from the policy)"), "{}", v.checks[0].detail);
        assert_eq!(v.checks[1].rule.as_deref(), Some("threshold"));
        assert_eq!(v.checks[1].detail, "the policy requires 2 distinct trusted keys; 1 signed");

        let v = verifier.verify(&attestation(envelope_about(&"a".repeat(64), &[&first, &second])), None, NOW);
        assert!(v.valid, "{:#?}", v.checks);
    }

    #[test]
    fn setup_errors_are_typed() {
        let key = signer();
        let mut trusted = TrustedKeys::default();
        assert!(trusted.add(key.public_key().clone()).is_ok());
        assert_eq!(trusted.add(key.public_key().clone()), Err(VerifyError::DuplicateKey { first: 0, second: 1 }));

        let requirements =
            Requirements { policy: Some(policy("version = 1\nthreshold = 2\n")), ..Requirements::default() };
        let err = Verifier::new(keys(&[&key]), requirements).err();
        assert_eq!(
            err,
            Some(VerifyError::Threshold {
                requested: None,
                policy: Some(2),
                required: 2,
                available: 1,
                certificate: false
            })
        );
        let requirements = Requirements { threshold: Some(0), ..Requirements::default() };
        assert!(matches!(Verifier::new(keys(&[&key]), requirements), Err(VerifyError::Threshold { .. })));

        let certificate = CertificateTrust {
            trust: TrustMaterial::default(),
            identities: Vec::new(),
            insecure_current_time: false,
            sct: SctCheck::Required,
            signed_timestamps: false,
        };
        let err = Verifier::new(Signers::Certificate(certificate), Requirements::default()).err();
        assert_eq!(err, Some(VerifyError::NoIdentity));
    }

    #[test]
    fn a_bare_envelope_under_certificate_trust_fails_the_certificate_check() {
        let key = signer();
        let identity = IdentityRule {
            subject: crate::certificate::Matcher::Exact("dev@example.com".into()),
            issuer: crate::certificate::Matcher::Exact("https://issuer.example".into()),
        };
        let certificate = CertificateTrust {
            trust: TrustMaterial::default(),
            identities: vec![identity],
            insecure_current_time: true,
            sct: SctCheck::InsecureIgnore,
            signed_timestamps: false,
        };
        let v = verifier(Signers::Certificate(certificate), Requirements::default()).verify(
            &attestation(envelope_about(&"a".repeat(64), &[&key])),
            None,
            NOW,
        );
        assert!(!v.valid);
        assert_eq!(names(&v), ["certificate"]);
        assert_eq!(v.checks[0].detail, "a bare DSSE envelope carries no certificate");
        assert_eq!(v.checks[0].hint, Some(Hint::UseKey));
        assert_eq!(v.warnings, [Warning::InsecureCurrentTime, Warning::InsecureIgnoreSct]);
    }

    #[test]
    fn digests_are_sha256_and_lower_cased() {
        let upper = format!("sha256:{}", "A".repeat(64));
        assert_eq!(parse_sha256_digest(&upper), Ok("a".repeat(64)));
        assert!(matches!(parse_sha256_digest("sha512:00"), Err(DigestError::NotSha256(_))));
        assert!(matches!(parse_sha256_digest("sha256:xyz"), Err(DigestError::NotHex(_))));
    }
}
