//! Verification of a certificate bundle's signer, before its DSSE signature: which key
//! signed, whether a trusted authority vouched for it at the signing time, and who it
//! names.
//!
//! [`verify_signer`] runs these checks in order and stops at the first failure, each
//! named as `reprove attest verify` reports it:
//!
//! 1. `certificate`: the bundle carries a certificate (v0.3 `certificate`, or the first
//!    of `x509CertificateChain`), it parses, it is not a CA, and its key is ECDSA P-256
//!    or Ed25519;
//! 2. `keyUsage`: the key usage extension is present and allows digitalSignature;
//! 3. `extendedKeyUsage`: the extended key usages include code signing;
//! 4. `tlog`: the signing time: the integratedTime of a transparency-log entry whose
//!    signed entry timestamp verifies under a log key of the trust material (with its
//!    inclusion proof and checkpoint when present) and whose body records this envelope
//!    and certificate; or, only when the caller asks for it
//!    ([`SigningTime::InsecureCurrentTime`], cosign's `--insecure-ignore-tlog`), the
//!    current time, with a warning. There is no silent fallback from one to the other;
//!    With `signed_timestamps` (cosign's `--use-signed-timestamps`), also
//!    `timestamp`: an RFC 3161 timestamp of the bundle over the envelope's signature
//!    verifies under a timestamping authority of the trust material ([`crate::tsa`]);
//!    its time is a signing time too, and with `--insecure-ignore-tlog` the only one;
//! 5. `certificateValidity`: every signing time lies in the leaf's validity;
//! 6. `certificateChain`: the leaf chains to a trusted authority valid at each time
//!    ([`TrustMaterial::verify_chain`]);
//! 7. `sct`: one of the leaf's embedded signed certificate timestamps verifies under a
//!    CT log key of the trust material ([`crate::sct`]); or, only when the caller asks
//!    for it ([`SctCheck::InsecureIgnore`], cosign's `--insecure-ignore-sct`), nothing,
//!    with a warning;
//! 8. `identity`: a SAN and the OIDC issuer match one of the identity rules, when any
//!    are given (a policy's `[certificate]` rules are applied with the policy).
//!
//! The signer's key then verifies the envelope like a trusted `--key`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::bundle::Bundle;
use crate::certificate::{match_identity, IdentityRule, SignerIdentity, SigningCertificate};
use crate::dsse::Envelope;
use crate::keys::PublicKey;
use crate::sct::{self, SctFailure};
use crate::tlog::{verify_entry, TlogEntry};
use crate::trust_root::TrustMaterial;
use crate::tsa;
use stdx::time::format_rfc3339;

/// Where the signing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningTime {
    /// A verified transparency-log entry's integratedTime (the secure default).
    TransparencyLog,
    /// The given current time (Unix seconds), without any log: insecure, since a
    /// stolen key of an expired certificate could sign now; warned about.
    InsecureCurrentTime(i64),
}

/// Whether the certificate must carry a verified SCT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SctCheck {
    /// One embedded SCT must verify under a CT log key of the trust material (the
    /// secure default, as cosign's).
    Required,
    /// No SCT is checked: a certificate its authority never published is accepted;
    /// warned about.
    InsecureIgnore,
}

/// What to verify a certificate bundle against.
#[derive(Debug, Clone, Copy)]
pub struct SignerOptions<'a> {
    /// Authorities and log keys.
    pub trust: &'a TrustMaterial,
    /// Accepted signers (any one); empty: no identity check here.
    pub identities: &'a [IdentityRule],
    /// The signing time's source.
    pub time: SigningTime,
    /// Whether certificate transparency is checked.
    pub sct: SctCheck,
    /// Whether an RFC 3161 timestamp of the bundle must verify and give a signing
    /// time (cosign's `--use-signed-timestamps`).
    pub signed_timestamps: bool,
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `certificate`, `keyUsage`, `extendedKeyUsage`, `tlog`, `timestamp`,
    /// `certificateValidity`, `certificateChain`, `sct` or `identity`.
    pub name: &'static str,
    /// What was found, or why it failed.
    pub result: Result<String, String>,
    /// How the outcome relates to the caller's options, for the caller to say in its
    /// own terms (the result's text names no option).
    pub hint: Option<Hint>,
}

/// How a check's outcome relates to what the caller chose, or could choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// The attestation carries no certificate: verify it with a trusted key instead.
    UseKey,
    /// No transparency-log entry: the caller could check the certificate at the current
    /// time instead ([`SigningTime::InsecureCurrentTime`]).
    MayUseCurrentTime,
    /// Nothing to check an SCT with: the caller could skip the check
    /// ([`SctCheck::InsecureIgnore`]).
    MayIgnoreSct,
    /// Skipped (the text starts with `SKIPPED`) because the caller chose
    /// [`SigningTime::InsecureCurrentTime`].
    SkippedForCurrentTime,
    /// Skipped (the text starts with `SKIPPED`) because the caller chose
    /// [`SctCheck::InsecureIgnore`].
    SkippedSct,
    /// Failed because the caller required signed timestamps.
    SignedTimestampsRequired,
}

/// A signer whose certificate passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedSigner {
    /// The leaf's key: the one that must have signed the envelope.
    pub key: PublicKey,
    /// Who the certificate names.
    pub identity: SignerIdentity,
    /// The signing time used, Unix seconds.
    pub signing_time: i64,
}

/// The checks run, the signer when all passed, and warnings to show loudly.
#[derive(Debug, Clone, Default)]
pub struct SignerVerification {
    /// The checks in order; the last failed when `signer` is `None`.
    pub steps: Vec<Step>,
    /// The verified signer.
    pub signer: Option<VerifiedSigner>,
    /// Warnings (an insecure time source, SCTs not checked).
    pub warnings: Vec<Warning>,
}

/// An insecure option in effect, for the caller to show loudly. The text says what is
/// not proven; the caller names its own option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// [`SigningTime::InsecureCurrentTime`] without signed timestamps: the certificate
    /// was checked at the current time.
    InsecureCurrentTime,
    /// [`SigningTime::InsecureCurrentTime`] with signed timestamps: the RFC 3161
    /// timestamp gives the signing time, but no log entry shows publication.
    InsecureNoTlog,
    /// [`SctCheck::InsecureIgnore`]: certificate transparency was not checked.
    InsecureIgnoreSct,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Warning::InsecureCurrentTime => {
                "no transparency-log entry was verified; the certificate's validity was checked at the CURRENT time, \
                 not at a proven signing time. Anyone holding the certificate's private key could have signed this \
                 attestation at any time within that validity."
            }
            Warning::InsecureNoTlog => {
                "no transparency-log entry was verified; the signing time is the RFC 3161 timestamp's, and nothing \
                 shows the signature was published."
            }
            Warning::InsecureIgnoreSct => {
                "the certificate's signed certificate timestamps were not checked; a certificate its authority never \
                 published to a certificate-transparency log would be accepted."
            }
        })
    }
}

fn raw_bytes(value: &Value) -> Option<Vec<u8>> {
    value.get("rawBytes").and_then(Value::as_str).and_then(|s| STANDARD.decode(s).ok())
}

/// The certificates of a bundle's verification material, the leaf first: v0.3
/// `certificate`, or v0.1/v0.2 `x509CertificateChain`. `Ok(None)` when it has neither.
pub fn bundle_certificates(bundle: &Bundle) -> Result<Option<Vec<Vec<u8>>>, BundleCertificatesError> {
    bundle_certificates_text(bundle).map_err(BundleCertificatesError)
}

fn bundle_certificates_text(bundle: &Bundle) -> Result<Option<Vec<Vec<u8>>>, String> {
    let extra = &bundle.verification_material.extra;
    if let Some(cert) = extra.get("certificate") {
        return raw_bytes(cert).map(|c| Some(vec![c])).ok_or_else(|| "certificate.rawBytes is not base64".to_owned());
    }
    if let Some(chain) = extra.get("x509CertificateChain") {
        let certs = chain.get("certificates").and_then(Value::as_array).cloned().unwrap_or_default();
        let der: Option<Vec<Vec<u8>>> = certs.iter().map(raw_bytes).collect();
        return match der {
            Some(d) if !d.is_empty() => Ok(Some(d)),
            Some(_) => Err("x509CertificateChain has no certificates".to_owned()),
            None => Err("an x509CertificateChain certificate's rawBytes is not base64".to_owned()),
        };
    }
    Ok(None)
}

/// Runs the checks of the module documentation on `bundle` (whose envelope is
/// `envelope`).
pub fn verify_signer(bundle: Option<&Bundle>, envelope: &Envelope, options: &SignerOptions<'_>) -> SignerVerification {
    let mut out = SignerVerification::default();
    let signer = run(bundle, envelope, options, &mut out);
    out.signer = signer.ok();
    if matches!(options.time, SigningTime::InsecureCurrentTime(_)) {
        out.warnings.push(if options.signed_timestamps {
            Warning::InsecureNoTlog
        } else {
            Warning::InsecureCurrentTime
        });
    }
    if options.sct == SctCheck::InsecureIgnore {
        out.warnings.push(Warning::InsecureIgnoreSct);
    }
    out
}

fn run(
    bundle: Option<&Bundle>,
    envelope: &Envelope,
    options: &SignerOptions<'_>,
    out: &mut SignerVerification,
) -> Result<VerifiedSigner, ()> {
    // The few hinted steps set `hint` just before recording; one closure keeps the
    // many plain `record(name, result)?` steps short.
    let hint = std::cell::Cell::new(None);
    let mut record = |name: &'static str, result: Result<String, String>| {
        let ok = result.is_ok();
        out.steps.push(Step { name, result, hint: hint.take() });
        if ok {
            Ok(())
        } else {
            Err(())
        }
    };
    let Some(bundle) = bundle else {
        hint.set(Some(Hint::UseKey));
        record("certificate", Err("a bare DSSE envelope carries no certificate".to_owned()))?;
        return Err(());
    };
    let chain = match bundle_certificates(bundle) {
        Ok(Some(chain)) => chain,
        Ok(None) => {
            let what = if bundle.verification_material.public_key.is_some() { "a publicKey hint" } else { "nothing" };
            hint.set(Some(Hint::UseKey));
            record("certificate", Err(format!("the bundle's verification material holds {what}, no certificate")))?;
            return Err(());
        }
        Err(e) => {
            record("certificate", Err(e.into()))?;
            return Err(());
        }
    };
    let (leaf_der, bundle_intermediates) = chain.split_first().ok_or(())?;
    let leaf = match SigningCertificate::from_der(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => {
            record("certificate", Err(format!("the signing certificate: {e}")))?;
            return Err(());
        }
    };
    let key = match (&leaf.public_key, leaf.is_ca) {
        (_, true) => Err("the signing certificate is a CA certificate (basicConstraints cA)".to_owned()),
        (Err(e), _) => Err(format!("the signing certificate's key: {e}")),
        (Ok(key), false) => Ok(key.clone()),
    };
    let key = match key {
        Ok(key) => {
            record(
                "certificate",
                Ok(format!(
                    "{}, valid {} to {}, {} key",
                    leaf.identity,
                    format_rfc3339(leaf.not_before),
                    format_rfc3339(leaf.not_after),
                    key.algorithm()
                )),
            )?;
            key
        }
        Err(e) => {
            record("certificate", Err(e))?;
            return Err(());
        }
    };
    record(
        "keyUsage",
        match leaf.digital_signature {
            Some(true) => Ok("digitalSignature".to_owned()),
            Some(false) => Err("the key usage extension does not allow digitalSignature".to_owned()),
            None => Err("the signing certificate has no key usage extension (digitalSignature required)".to_owned()),
        },
    )?;
    record(
        "extendedKeyUsage",
        match &leaf.extended_key_usage {
            _ if leaf.allows_code_signing() => Ok("codeSigning".to_owned()),
            None => {
                Err("the signing certificate has no extended key usage extension (codeSigning required)".to_owned())
            }
            Some(ekus) => {
                Err(format!("the extended key usages {ekus:?} do not include codeSigning (1.3.6.1.5.5.7.3.3)"))
            }
        },
    )?;
    let mut times = Vec::new();
    match options.time {
        SigningTime::InsecureCurrentTime(_) if options.signed_timestamps => {
            hint.set(Some(Hint::SkippedForCurrentTime));
            record(
                "tlog",
                Ok("SKIPPED: no transparency-log entry verified; the signing time comes from the RFC 3161 timestamp"
                    .to_owned()),
            )?;
        }
        SigningTime::InsecureCurrentTime(now) => {
            hint.set(Some(Hint::SkippedForCurrentTime));
            record(
                "tlog",
                Ok(format!(
                    "SKIPPED: no transparency-log entry verified; using the current time {} as the signing time",
                    format_rfc3339(now)
                )),
            )?;
            times.push(now);
        }
        SigningTime::TransparencyLog => {
            let entries = match bundle.verification_material.extra.get("tlogEntries") {
                None => Vec::new(),
                Some(v) => match serde_json::from_value::<Vec<TlogEntry>>(v.clone()) {
                    Ok(entries) => entries,
                    Err(e) => {
                        record("tlog", Err(format!("tlogEntries is malformed: {e}")))?;
                        return Err(());
                    }
                },
            };
            if entries.is_empty() {
                hint.set(Some(Hint::MayUseCurrentTime));
                record("tlog", Err("the bundle has no transparency-log entry to prove the signing time".to_owned()))?;
                return Err(());
            }
            let mut reasons = Vec::new();
            let mut verified = None;
            for (i, entry) in entries.iter().enumerate() {
                match verify_entry(entry, options.trust, envelope, leaf_der) {
                    Ok(v) => {
                        verified = Some(v);
                        break;
                    }
                    Err(e) => reasons.push(format!("tlogEntries[{i}]: {e}")),
                }
            }
            match verified {
                Some(v) => {
                    let proof = if v.inclusion_proof { ", inclusion proof and checkpoint verified" } else { "" };
                    record(
                        "tlog",
                        Ok(format!(
                            "entry {} of {}: signed entry timestamp verified{proof}; integratedTime {}",
                            v.log_index,
                            v.log,
                            format_rfc3339(v.integrated_time)
                        )),
                    )?;
                    times.push(v.integrated_time);
                }
                None => {
                    record("tlog", Err(reasons.join("; ")))?;
                    return Err(());
                }
            }
        }
    }
    if options.signed_timestamps {
        let verified = signed_timestamp(bundle, envelope, options);
        match &verified {
            Ok(t) => times.push(t.time),
            Err(e) if e == NO_SIGNED_TIMESTAMP => hint.set(Some(Hint::SignedTimestampsRequired)),
            Err(_) => {}
        }
        record(
            "timestamp",
            verified.map(|t| format!("RFC 3161 timestamp of {} at {} verified", t.authority, format_rfc3339(t.time))),
        )?;
    }
    let Some(&signing_time) = times.first() else {
        // Unreachable: every branch above gives a time or fails; kept as a named failure.
        record("certificateValidity", Err("no signing time was established".to_owned()))?;
        return Err(());
    };
    for &time in &times {
        if !(leaf.not_before..=leaf.not_after).contains(&time) {
            record(
                "certificateValidity",
                Err(format!(
                    "signing time {} is outside the certificate's validity {} to {}",
                    format_rfc3339(time),
                    format_rfc3339(leaf.not_before),
                    format_rfc3339(leaf.not_after)
                )),
            )?;
        }
    }
    let listed: Vec<String> = times.iter().map(|t| format_rfc3339(*t)).collect();
    record(
        "certificateValidity",
        Ok(format!(
            "signing time{} {} within the certificate's validity",
            if times.len() > 1 { "s" } else { "" },
            listed.join(" and ")
        )),
    )?;
    let mut chain = Err(String::new());
    for &time in &times {
        chain = options.trust.verify_chain(leaf_der, bundle_intermediates, time).map_err(String::from);
        if chain.is_err() {
            break;
        }
    }
    record("certificateChain", chain)?;
    let sct = match options.sct {
        SctCheck::InsecureIgnore => {
            hint.set(Some(Hint::SkippedSct));
            Ok("SKIPPED: no signed certificate timestamp verified".to_owned())
        }
        SctCheck::Required => {
            let certificates = options
                .trust
                .authorities
                .iter()
                .flat_map(|a| a.chain.iter())
                .chain(bundle_intermediates)
                .map(Vec::as_slice);
            let issuers = sct::issuer_spkis(leaf_der, certificates);
            sct::verify_embedded(leaf_der, &issuers, &options.trust.ctlogs).map_err(|e| {
                if matches!(e, SctFailure::NoScts | SctFailure::NoLogKeys) {
                    hint.set(Some(Hint::MayIgnoreSct));
                }
                e.to_string()
            })
        }
    };
    record("sct", sct)?;
    if !options.identities.is_empty() {
        record("identity", match_identity(&leaf.identity, options.identities).map_err(String::from))?;
    }
    Ok(VerifiedSigner { key, identity: leaf.identity, signing_time })
}

/// Why the `timestamp` check fails on a bundle without any timestamp.
const NO_SIGNED_TIMESTAMP: &str = "the bundle has no RFC 3161 timestamp (timestampVerificationData.rfc3161Timestamps)";

/// The first of the bundle's RFC 3161 timestamps that verifies over the envelope's
/// (first) signature, or why none does.
fn signed_timestamp(
    bundle: &Bundle,
    envelope: &Envelope,
    options: &SignerOptions<'_>,
) -> Result<tsa::VerifiedTimestamp, String> {
    let timestamps = tsa::bundle_timestamps(&bundle.verification_material.extra)?;
    if timestamps.is_empty() {
        return Err(NO_SIGNED_TIMESTAMP.to_owned());
    }
    let signature = envelope
        .signatures
        .first()
        .and_then(|s| STANDARD.decode(&s.sig).ok())
        .ok_or("the envelope has no base64 signature for a timestamp to cover")?;
    let mut reasons = Vec::new();
    for (i, timestamp) in timestamps.iter().enumerate() {
        match tsa::verify(timestamp, &signature, &options.trust.timestamp_authorities) {
            Ok(v) => return Ok(v),
            Err(e) => reasons.push(format!("rfc3161Timestamps[{i}]: {e}")),
        }
    }
    Err(reasons.join("; "))
}

crate::message_error! {
    /// Why a bundle's certificates could not be read.
    BundleCertificatesError
}
