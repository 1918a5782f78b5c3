//! X.509 signing certificates as Sigstore uses them: the leaf of a Fulcio-style chain
//! (or any code-signing certificate), what it says about its holder, and the identity
//! rules a verifier applies to it.
//!
//! [`SigningCertificate::from_der`] reads the fields verification needs: the public key
//! (ECDSA P-256 or Ed25519, the keys [`crate::keys::PublicKey`] verifies), the validity
//! window, the subject alternative names (email and URI), the OIDC issuer of Fulcio's
//! extensions (`1.3.6.1.4.1.57264.1.8`, a DER UTF8String, and the deprecated
//! `1.3.6.1.4.1.57264.1.1`, raw bytes), key usage and extended key usage. Path
//! validation to a trusted root is [`crate::trust_root`]'s.
//!
//! [`IdentityRule`] is cosign's `--certificate-identity[-regexp]` and
//! `--certificate-oidc-issuer[-regexp]`: an exact string or a regular expression (RE2
//! syntax, unanchored like Go's `regexp.MatchString`: anchor with `^…$`) for the SAN,
//! and the same for the issuer. A certificate matches a rule when one of its SANs
//! matches and its issuer matches.

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{self as der, Decode as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};

use crate::keys::{KeyError, PublicKey};

/// `id-kp-codeSigning` (RFC 5280 §4.2.1.12), which Fulcio certificates carry.
pub const OID_EKU_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// `anyExtendedKeyUsage`.
pub const OID_EKU_ANY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
/// Fulcio's deprecated OIDC issuer extension: the issuer URL as raw bytes.
pub const OID_FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension: the issuer URL as a DER UTF8String.
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Why a certificate could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    Der(String),
    /// An extension this module reads is malformed.
    #[error("malformed {extension} extension: {why}")]
    Extension {
        /// The extension's name.
        extension: &'static str,
        /// What was wrong.
        why: String,
    },
    /// The certificate's key is not one reprove verifies with.
    #[error("the certificate's public key: {0}")]
    Key(#[from] KeyError),
    /// No `CERTIFICATE` PEM block, or a bad one.
    #[error("not a PEM CERTIFICATE file: {0}")]
    Pem(String),
    /// A regular expression of an identity rule does not compile.
    #[error("identity {what} regular expression {pattern:?}: {why}")]
    Regex {
        /// `subject` or `issuer`.
        what: &'static str,
        /// The pattern.
        pattern: String,
        /// The compiler's reason.
        why: String,
    },
}

/// A subject alternative name of a signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectName {
    /// `rfc822Name`: an email address.
    Email(String),
    /// `uniformResourceIdentifier`: a URI (a CI workflow, a SPIFFE id).
    Uri(String),
}

impl SubjectName {
    /// The name itself.
    pub fn as_str(&self) -> &str {
        match self {
            SubjectName::Email(s) | SubjectName::Uri(s) => s,
        }
    }
}

impl std::fmt::Display for SubjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubjectName::Email(s) => write!(f, "email:{s}"),
            SubjectName::Uri(s) => write!(f, "uri:{s}"),
        }
    }
}

/// Who a verified certificate says signed: its SANs and OIDC issuer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignerIdentity {
    /// Email and URI subject alternative names, in certificate order.
    pub subjects: Vec<SubjectName>,
    /// The OIDC issuer (Fulcio extension `.8`, else `.1`), if any.
    pub issuer: Option<String>,
}

impl std::fmt::Display for SignerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subjects: Vec<String> = self.subjects.iter().map(ToString::to_string).collect();
        let subjects = if subjects.is_empty() { "no email or URI SAN".to_owned() } else { subjects.join(", ") };
        match &self.issuer {
            Some(issuer) => write!(f, "{subjects} (issuer {issuer})"),
            None => write!(f, "{subjects} (no OIDC issuer extension)"),
        }
    }
}

/// The leaf certificate of a bundle, parsed.
#[derive(Debug, Clone)]
pub struct SigningCertificate {
    /// The DER bytes, as in the bundle.
    pub der: Vec<u8>,
    /// The certificate's subject public key, when it is one reprove verifies with.
    pub public_key: Result<PublicKey, String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// SANs and OIDC issuer.
    pub identity: SignerIdentity,
    /// The extended key usages (dotted OIDs); `None` without the extension.
    pub extended_key_usage: Option<Vec<String>>,
    /// Whether the key usage extension allows digitalSignature; `None` without it.
    pub digital_signature: Option<bool>,
    /// Whether basicConstraints says it is a CA.
    pub is_ca: bool,
}

fn unix(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

impl SigningCertificate {
    /// Parses a DER certificate. Malformed extensions this module reads are errors; an
    /// unsupported key is recorded in [`SigningCertificate::public_key`], not an error,
    /// so that the failing check can say so.
    pub fn from_der(der: &[u8]) -> Result<SigningCertificate, CertificateError> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| CertificateError::Der(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = tbs.subject_public_key_info.to_der().map_err(|e| CertificateError::Der(e.to_string()))?;
        let public_key = PublicKey::from_spki_der(&spki).map_err(|_| {
            format!("unsupported key algorithm {} (ECDSA P-256 or Ed25519)", tbs.subject_public_key_info.algorithm.oid)
        });
        let mut out = SigningCertificate {
            der: der.to_vec(),
            public_key,
            not_before: unix(&tbs.validity.not_before),
            not_after: unix(&tbs.validity.not_after),
            identity: SignerIdentity::default(),
            extended_key_usage: None,
            digital_signature: None,
            is_ca: false,
        };
        let mut issuer_v1 = None;
        for ext in tbs.extensions.iter().flatten() {
            let value = ext.extn_value.as_bytes();
            let bad =
                |extension: &'static str, e: der::Error| CertificateError::Extension { extension, why: e.to_string() };
            match ext.extn_id {
                OID_SAN => {
                    let san = SubjectAltName::from_der(value).map_err(|e| bad("subjectAltName", e))?;
                    for name in san.0 {
                        match name {
                            GeneralName::Rfc822Name(s) => out.identity.subjects.push(SubjectName::Email(s.to_string())),
                            GeneralName::UniformResourceIdentifier(s) => {
                                out.identity.subjects.push(SubjectName::Uri(s.to_string()))
                            }
                            _ => {}
                        }
                    }
                }
                OID_EKU => {
                    let eku = ExtendedKeyUsage::from_der(value).map_err(|e| bad("extendedKeyUsage", e))?;
                    out.extended_key_usage = Some(eku.0.iter().map(ToString::to_string).collect());
                }
                OID_KEY_USAGE => {
                    let ku = KeyUsage::from_der(value).map_err(|e| bad("keyUsage", e))?;
                    out.digital_signature = Some(ku.0.contains(KeyUsages::DigitalSignature));
                }
                OID_BASIC_CONSTRAINTS => {
                    out.is_ca = BasicConstraints::from_der(value).map_err(|e| bad("basicConstraints", e))?.ca;
                }
                OID_FULCIO_ISSUER_V2 => {
                    let issuer =
                        String::from_der(value).map_err(|e| bad("Fulcio OIDC issuer (1.3.6.1.4.1.57264.1.8)", e))?;
                    out.identity.issuer = Some(issuer);
                }
                OID_FULCIO_ISSUER_V1 => {
                    let issuer = std::str::from_utf8(value).map_err(|e| CertificateError::Extension {
                        extension: "Fulcio OIDC issuer (1.3.6.1.4.1.57264.1.1)",
                        why: e.to_string(),
                    })?;
                    issuer_v1 = Some(issuer.to_owned());
                }
                _ => {}
            }
        }
        if out.identity.issuer.is_none() {
            out.identity.issuer = issuer_v1;
        }
        Ok(out)
    }

    /// Whether the extended key usages include code signing (or any usage).
    pub fn allows_code_signing(&self) -> bool {
        let (code, any) = (OID_EKU_CODE_SIGNING.to_string(), OID_EKU_ANY.to_string());
        self.extended_key_usage.as_ref().is_some_and(|ekus| ekus.iter().any(|e| *e == code || *e == any))
    }
}

/// Reads every `CERTIFICATE` PEM block of `text`, in order, as DER.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, CertificateError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let stop =
            body.find(END).ok_or_else(|| CertificateError::Pem("a BEGIN CERTIFICATE line without END".into()))?;
        let b64: String = body[..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| CertificateError::Pem(format!("certificate {}: bad base64: {e}", out.len() + 1)))?;
        out.push(der);
        rest = &body[stop + END.len()..];
    }
    if out.is_empty() {
        return Err(CertificateError::Pem("no BEGIN CERTIFICATE block".into()));
    }
    Ok(out)
}

/// Why a certificate cannot go into a bundle beside a signing key's signatures.
#[derive(Debug, thiserror::Error)]
pub enum SignerCertificateError {
    /// Not a PEM certificate, or not a certificate reprove reads.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// The PEM text holds no certificate.
    #[error("no certificate")]
    Missing,
    /// The certificate's key is not one reprove verifies with.
    #[error("{0}")]
    Key(String),
    /// The certificate is another key's.
    #[error(
        "its public key ({} {}) is not the signing key's ({} {}): refusing to bundle a certificate for another key",
        certificate.algorithm(),
        certificate.key_id(),
        signer.algorithm(),
        signer.key_id()
    )]
    OtherKey {
        /// The certificate's key.
        certificate: PublicKey,
        /// The signing key.
        signer: PublicKey,
    },
    /// The extended key usages do not allow code signing.
    #[error("its extended key usage does not include codeSigning")]
    NoCodeSigning,
}

/// The first certificate of `pem`, checked for bundling with `signer`'s signatures: its
/// key is the signer's and it allows code signing (whether it chains to an authority is
/// [`crate::trust_root::TrustMaterial::verify_chain`]'s). Returns its DER.
pub fn signer_certificate(pem: &str, signer: &PublicKey) -> Result<Vec<u8>, SignerCertificateError> {
    let der = pem_certificates(pem)?.into_iter().next().ok_or(SignerCertificateError::Missing)?;
    let cert = SigningCertificate::from_der(&der)?;
    match cert.public_key {
        Err(e) => return Err(SignerCertificateError::Key(e)),
        Ok(key) if key != *signer => {
            return Err(SignerCertificateError::OtherKey { certificate: key, signer: signer.clone() })
        }
        Ok(_) => {}
    }
    if !cert.allows_code_signing() {
        return Err(SignerCertificateError::NoCodeSigning);
    }
    Ok(der)
}

/// A DER certificate as one PEM `CERTIFICATE` block.
pub fn certificate_pem(der: &[u8]) -> String {
    crate::keys::pem_encode("CERTIFICATE", der)
}

/// An exact string or an (unanchored, RE2-syntax) regular expression.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal, byte for byte.
    Exact(String),
    /// `regex::Regex::is_match` (anchor it with `^…$` to match the whole value).
    Regexp(regex::Regex),
}

impl Matcher {
    /// A regular expression matcher; `what` names it in errors (`subject`, `issuer`).
    pub fn regexp(what: &'static str, pattern: &str) -> Result<Matcher, CertificateError> {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map(Matcher::Regexp)
            .map_err(|e| CertificateError::Regex { what, pattern: pattern.to_owned(), why: e.to_string() })
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regexp(r) => r.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Regexp(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// One accepted signer: a SAN matcher and an issuer matcher (both must match).
#[derive(Debug, Clone)]
pub struct IdentityRule {
    /// Matches one of the certificate's email or URI SANs.
    pub subject: Matcher,
    /// Matches the OIDC issuer extension.
    pub issuer: Matcher,
}

impl std::fmt::Display for IdentityRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "subject {} issuer {}", self.subject, self.issuer)
    }
}

impl IdentityRule {
    /// Why `identity` does not match this rule, or `None` when it does.
    pub fn mismatch(&self, identity: &SignerIdentity) -> Option<String> {
        if !identity.subjects.iter().any(|s| self.subject.matches(s.as_str())) {
            return Some(format!("no SAN matches subject {}", self.subject));
        }
        match &identity.issuer {
            None => Some("the certificate has no OIDC issuer extension".to_owned()),
            Some(issuer) if !self.issuer.matches(issuer) => {
                Some(format!("issuer {issuer:?} does not match {}", self.issuer))
            }
            Some(_) => None,
        }
    }
}

/// Checks `identity` against `rules` (any one must match): the matching rule, or why
/// none did, one reason per rule.
pub fn match_identity(identity: &SignerIdentity, rules: &[IdentityRule]) -> Result<String, IdentityError> {
    match_identity_text(identity, rules).map_err(IdentityError)
}

fn match_identity_text(identity: &SignerIdentity, rules: &[IdentityRule]) -> Result<String, String> {
    let mut reasons = Vec::with_capacity(rules.len());
    for rule in rules {
        match rule.mismatch(identity) {
            None => return Ok(format!("{identity} matches {rule}")),
            Some(why) => reasons.push(why),
        }
    }
    Err(format!("{identity}: {}", reasons.join("; ")))
}

crate::message_error! {
    /// Why a certificate's identity matches no rule.
    IdentityError
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> SignerIdentity {
        SignerIdentity {
            subjects: vec![
                SubjectName::Email("dev@example.com".into()),
                SubjectName::Uri("https://ci.example/wf".into()),
            ],
            issuer: Some("https://issuer.example".into()),
        }
    }

    #[test]
    fn identity_rules_match_any_san_and_the_issuer() -> Result<(), CertificateError> {
        let exact = IdentityRule {
            subject: Matcher::Exact("https://ci.example/wf".into()),
            issuer: Matcher::Exact("https://issuer.example".into()),
        };
        assert!(match_identity(&identity(), std::slice::from_ref(&exact)).is_ok());
        let wrong_issuer = IdentityRule {
            subject: Matcher::Exact("dev@example.com".into()),
            issuer: Matcher::regexp("issuer", "^https://other")?,
        };
        let err = match_identity(&identity(), &[wrong_issuer]).err().unwrap_or_default();
        assert!(err.0.contains("issuer \"https://issuer.example\" does not match /^https://other/"), "{err}");
        let wrong_subject = IdentityRule {
            subject: Matcher::regexp("subject", "^ops@")?,
            issuer: Matcher::Exact("https://issuer.example".into()),
        };
        let err = match_identity(&identity(), &[wrong_subject]).err().unwrap_or_default();
        assert!(err.0.contains("no SAN matches subject /^ops@/"), "{err}");
        assert!(matches!(Matcher::regexp("subject", "("), Err(CertificateError::Regex { .. })));
        Ok(())
    }

    #[test]
    fn hostile_input_is_an_error() {
        for bytes in [&b""[..], b"\x30\x03\x02\x01\x01", &[0x30, 0x82, 0xff, 0xff], &[0xff; 64]] {
            assert!(SigningCertificate::from_der(bytes).is_err());
        }
        assert!(matches!(pem_certificates("nothing"), Err(CertificateError::Pem(_))));
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err());
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
    }

    #[test]
    fn a_signer_certificate_must_be_a_certificate() {
        let key = crate::keys::KeySigner::generate(crate::keys::Algorithm::Ed25519)
            .map(|(s, _)| crate::keys::Signer::public_key(&s).clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let err = signer_certificate("nothing", &key).err();
        assert!(matches!(err, Some(SignerCertificateError::Certificate(CertificateError::Pem(_)))), "{err:?}");
        let garbage = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
        let err = signer_certificate(garbage, &key).err();
        assert!(matches!(err, Some(SignerCertificateError::Certificate(CertificateError::Der(_)))), "{err:?}");
    }
}
