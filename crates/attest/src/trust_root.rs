//! What a verifier trusts for certificate bundles: certificate authorities (whose chains
//! signing certificates must lead to) and transparency-log keys (which sign the log's
//! entry timestamps and checkpoints), each with the period it is valid for.
//!
//! Read from a Sigstore `TrustedRoot` JSON document (protobuf-specs
//! `sigstore_trustroot.proto`, media type
//! `application/vnd.dev.sigstore.trustedroot+json;version=0.1`):
//! `certificateAuthorities[].certChain.certificates[].rawBytes` (DER, the root last) with
//! `validFor`, and `tlogs[].publicKey.rawBytes` (DER SubjectPublicKeyInfo) with
//! `publicKey.validFor` and `logId.keyId`, and `ctlogs` of the same shape (the keys that
//! sign certificates' SCTs, [`crate::sct`]), and `timestampAuthorities` of the same shape
//! as `certificateAuthorities` (the TSAs whose RFC 3161 timestamps [`crate::tsa`] verifies).
//! A PEM chain file (`--certificate-chain`, cosign's form: the issuer of the signing
//! certificate first, the root last) adds one authority valid at all times.
//!
//! [`TrustMaterial::verify_chain`] validates a leaf with rustls-webpki at the signing
//! time: the anchors are the last certificate of each authority valid at that time,
//! the other certificates of those authorities (and of the bundle) are candidate
//! intermediates; every certificate of the path must be valid at that time, and an
//! extended key usage, where present, must allow code signing.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Deserialize;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use crate::certificate::{pem_certificates, CertificateError};
use crate::keys::PublicKey;
use stdx::time::format_rfc3339;

/// The media type prefix of trusted root documents.
pub const MEDIA_TYPE_TRUSTED_ROOT_PREFIX: &str = "application/vnd.dev.sigstore.trustedroot";

/// Why trust material could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrustRootError {
    /// Not JSON of the TrustedRoot shape.
    #[error("not a Sigstore trusted root: {0}")]
    Json(#[from] serde_json::Error),
    /// A media type that is not a trusted root's.
    #[error("not a Sigstore trusted root: mediaType {0:?}")]
    MediaType(String),
    /// A field that cannot be used, named by its JSON path.
    #[error("trusted root {field}: {why}")]
    Field {
        /// Where, such as `tlogs[0].publicKey.rawBytes`.
        field: String,
        /// What is wrong.
        why: String,
    },
    /// A PEM chain file that cannot be read.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

/// A period of validity; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidFor {
    /// Start, Unix seconds.
    pub start: Option<i64>,
    /// End, Unix seconds.
    pub end: Option<i64>,
}

impl ValidFor {
    /// Whether `time` lies in the period.
    pub fn contains(&self, time: i64) -> bool {
        self.start.is_none_or(|s| time >= s) && self.end.is_none_or(|e| time <= e)
    }
}

impl std::fmt::Display for ValidFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |t: Option<i64>| t.map_or_else(|| "…".to_owned(), format_rfc3339);
        write!(f, "[{}, {}]", side(self.start), side(self.end))
    }
}

/// A certificate authority: its chain, the root last.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// How errors and results name it (`trusted root certificateAuthorities[0]`, a file).
    pub name: String,
    /// DER certificates, the issuing (intermediate) first, the root last.
    pub chain: Vec<Vec<u8>>,
    /// When it may have issued signing certificates.
    pub valid_for: ValidFor,
}

/// A transparency log's public key.
#[derive(Debug, Clone)]
pub struct TransparencyLogKey {
    /// How errors and results name it.
    pub name: String,
    /// The key that signs entry timestamps and checkpoints.
    pub key: PublicKey,
    /// The log id: SHA-256 of the key's DER SubjectPublicKeyInfo.
    pub log_id: Vec<u8>,
    /// When the key was in use.
    pub valid_for: ValidFor,
}

/// Everything a certificate bundle is verified against.
#[derive(Debug, Clone, Default)]
pub struct TrustMaterial {
    /// Certificate authorities.
    pub authorities: Vec<CertificateAuthority>,
    /// Transparency-log keys.
    pub tlogs: Vec<TransparencyLogKey>,
    /// Certificate-transparency log keys, which sign the SCTs of signing certificates.
    pub ctlogs: Vec<TransparencyLogKey>,
    /// RFC 3161 timestamping authorities: their chains, the TSA's certificate first.
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    ctlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<CaJson>,
    #[serde(default)]
    timestamp_authorities: Vec<CaJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    #[serde(default)]
    log_id: Option<LogIdJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    #[serde(default)]
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaJson {
    #[serde(default)]
    uri: String,
    cert_chain: ChainJson,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct ChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ValidForJson {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

fn field(field: String, why: impl Into<String>) -> TrustRootError {
    TrustRootError::Field { field, why: why.into() }
}

fn valid_for(json: Option<&ValidForJson>, at: &str) -> Result<ValidFor, TrustRootError> {
    let Some(json) = json else { return Ok(ValidFor::default()) };
    let time = |name: &str, text: &Option<String>| -> Result<Option<i64>, TrustRootError> {
        text.as_deref()
            .map(|t| {
                stdx::time::parse_rfc3339(t)
                    .ok_or_else(|| field(format!("{at}.validFor.{name}"), format!("{t:?} is not an RFC 3339 time")))
            })
            .transpose()
    };
    Ok(ValidFor { start: time("start", &json.start)?, end: time("end", &json.end)? })
}

/// The authorities of a trusted root's `certificateAuthorities` or
/// `timestampAuthorities` (named `field_name` in errors).
fn authorities(list: &[CaJson], field_name: &str) -> Result<Vec<CertificateAuthority>, TrustRootError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, ca) in list.iter().enumerate() {
        let at = format!("{field_name}[{i}]");
        let mut chain = Vec::with_capacity(ca.cert_chain.certificates.len());
        for (j, cert) in ca.cert_chain.certificates.iter().enumerate() {
            chain.push(STANDARD.decode(&cert.raw_bytes).map_err(|e| {
                field(format!("{at}.certChain.certificates[{j}].rawBytes"), format!("bad base64: {e}"))
            })?);
        }
        if chain.is_empty() {
            return Err(field(format!("{at}.certChain"), "has no certificates"));
        }
        let name = if ca.uri.is_empty() { format!("trusted root {at}") } else { format!("{at} ({})", ca.uri) };
        out.push(CertificateAuthority { name, chain, valid_for: valid_for(ca.valid_for.as_ref(), &at)? });
    }
    Ok(out)
}

/// The keys of a trusted root's `tlogs` or `ctlogs` (named `list` in errors).
fn log_keys(logs: &[TlogJson], list: &str) -> Result<Vec<TransparencyLogKey>, TrustRootError> {
    let mut out = Vec::with_capacity(logs.len());
    for (i, tlog) in logs.iter().enumerate() {
        let at = format!("{list}[{i}]");
        let der = STANDARD
            .decode(&tlog.public_key.raw_bytes)
            .map_err(|e| field(format!("{at}.publicKey.rawBytes"), format!("bad base64: {e}")))?;
        let key =
            PublicKey::from_spki_der(&der).map_err(|e| field(format!("{at}.publicKey.rawBytes"), e.to_string()))?;
        let computed = ring::digest::digest(&ring::digest::SHA256, &der).as_ref().to_vec();
        if let Some(id) = &tlog.log_id {
            let given = STANDARD
                .decode(&id.key_id)
                .map_err(|e| field(format!("{at}.logId.keyId"), format!("bad base64: {e}")))?;
            if given != computed {
                return Err(field(format!("{at}.logId.keyId"), "is not the SHA-256 of the log's public key"));
            }
        }
        let name =
            if tlog.base_url.is_empty() { format!("trusted root {at}") } else { format!("{at} ({})", tlog.base_url) };
        let valid_for = valid_for(tlog.public_key.valid_for.as_ref(), &format!("{at}.publicKey"))?;
        out.push(TransparencyLogKey { name, key, log_id: computed, valid_for });
    }
    Ok(out)
}

/// A webpki extended key usage rule: a certificate without the extension passes, one
/// with it must list one of `accepted` (DER contents of the key purpose OIDs).
pub(crate) struct UsageIfPresent(pub(crate) &'static [&'static [u8]]);

/// Code signing (1.3.6.1.5.5.7.3.3) or `anyExtendedKeyUsage`: signing certificate chains.
const CODE_SIGNING_IF_PRESENT: UsageIfPresent =
    UsageIfPresent(&[&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03], &[0x55, 0x1d, 0x25, 0x00]]);

impl ExtendedKeyUsageValidator for UsageIfPresent {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut empty = true;
        for id in iter {
            empty = false;
            let id = id?;
            if self.0.iter().any(|accepted| id == KeyPurposeId::new(accepted)) {
                return Ok(());
            }
        }
        if empty {
            Ok(())
        } else {
            // The context variant's fields are private; the unit variant says the same.
            #[allow(deprecated)]
            Err(webpki::Error::RequiredEkuNotFound)
        }
    }
}

impl TrustMaterial {
    /// Reads a Sigstore TrustedRoot JSON document.
    pub fn from_trusted_root_json(bytes: &[u8]) -> Result<TrustMaterial, TrustRootError> {
        let root: RootJson = serde_json::from_slice(bytes)?;
        if !root.media_type.starts_with(MEDIA_TYPE_TRUSTED_ROOT_PREFIX) {
            return Err(TrustRootError::MediaType(root.media_type));
        }
        let mut out = TrustMaterial {
            tlogs: log_keys(&root.tlogs, "tlogs")?,
            ctlogs: log_keys(&root.ctlogs, "ctlogs")?,
            ..TrustMaterial::default()
        };
        out.authorities = authorities(&root.certificate_authorities, "certificateAuthorities")?;
        out.timestamp_authorities = authorities(&root.timestamp_authorities, "timestampAuthorities")?;
        Ok(out)
    }

    /// Adds the chain of a PEM file (cosign's `--certificate-chain`: the signing
    /// certificate's issuer first, the root last) as an authority valid at all times.
    pub fn add_pem_chain(&mut self, text: &str, name: &str) -> Result<(), TrustRootError> {
        let chain = pem_certificates(text)?;
        self.authorities.push(CertificateAuthority { name: name.to_owned(), chain, valid_for: ValidFor::default() });
        Ok(())
    }

    /// The transparency-log key with this log id.
    pub fn tlog(&self, log_id: &[u8]) -> Option<&TransparencyLogKey> {
        self.tlogs.iter().find(|t| t.log_id == log_id)
    }

    /// Validates `leaf` (DER) to an authority valid at `time` (Unix seconds), with
    /// `extra_intermediates` (from the bundle) as candidate intermediates. Returns the
    /// authority's name, or why not.
    pub fn verify_chain(&self, leaf: &[u8], extra_intermediates: &[Vec<u8>], time: i64) -> Result<String, ChainError> {
        self.verify_chain_text(leaf, extra_intermediates, time).map_err(ChainError)
    }

    fn verify_chain_text(&self, leaf: &[u8], extra_intermediates: &[Vec<u8>], time: i64) -> Result<String, String> {
        if self.authorities.is_empty() {
            return Err("no certificate authority is trusted (the trusted root lists none)".to_owned());
        }
        let current: Vec<&CertificateAuthority> =
            self.authorities.iter().filter(|a| a.valid_for.contains(time)).collect();
        if current.is_empty() {
            let periods: Vec<String> = self.authorities.iter().map(|a| format!("{} {}", a.name, a.valid_for)).collect();
            return Err(format!(
                "no trusted certificate authority was valid at the signing time {}: {}",
                format_rfc3339(time),
                periods.join(", ")
            ));
        }
        let roots: Vec<CertificateDer<'_>> =
            current.iter().filter_map(|a| a.chain.last()).map(|c| CertificateDer::from(c.as_slice())).collect();
        let mut anchors: Vec<(TrustAnchor<'_>, &str)> = Vec::with_capacity(roots.len());
        for (der, authority) in roots.iter().zip(&current) {
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|e| format!("{}: its root certificate cannot be a trust anchor: {e}", authority.name))?;
            anchors.push((anchor, &authority.name));
        }
        let intermediates: Vec<CertificateDer<'_>> = current
            .iter()
            .flat_map(|a| a.chain.iter().take(a.chain.len().saturating_sub(1)))
            .chain(extra_intermediates)
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let leaf_der = CertificateDer::from(leaf);
        let end_entity = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| format!("the signing certificate cannot be validated: {e}"))?;
        let trust_anchors: Vec<TrustAnchor<'_>> = anchors.iter().map(|(a, _)| a.clone()).collect();
        let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(time).unwrap_or(0)));
        let path = end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &trust_anchors,
                &intermediates,
                at,
                CODE_SIGNING_IF_PRESENT,
                None,
                None,
            )
            .map_err(|e| chain_error(&e, time))?;
        let anchor = path.anchor();
        let name = anchors
            .iter()
            .find(|(a, _)| a.subject_public_key_info == anchor.subject_public_key_info && a.subject == anchor.subject)
            .map_or("a trusted certificate authority", |(_, n)| n);
        let depth = path.intermediate_certificates().count();
        Ok(format!("chains to {name} through {depth} intermediate certificate(s), valid at {}", format_rfc3339(time)))
    }
}

#[allow(deprecated)] // RequiredEkuNotFound, which UsageIfPresent returns
fn chain_error(e: &webpki::Error, time: i64) -> String {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => {
            "the certificate does not chain to any trusted certificate authority (unknown issuer)".to_owned()
        }
        E::CertExpired { .. } | E::CertNotValidYet { .. } => {
            format!("a certificate of the chain is not valid at the signing time {}: {e}", format_rfc3339(time))
        }
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            "a certificate of the chain has an extended key usage that does not allow code signing".to_owned()
        }
        E::InvalidSignatureForPublicKey => {
            "a certificate's signature does not verify under its issuer's key".to_owned()
        }
        other => format!("the certificate chain is invalid: {other}"),
    }
}

crate::message_error! {
    /// Why a certificate does not chain to a trusted authority.
    ChainError
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trusted_roots_and_refuses_bad_ones() -> Result<(), TrustRootError> {
        let empty = TrustMaterial::from_trusted_root_json(
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
        )?;
        assert!(empty.authorities.is_empty() && empty.tlogs.is_empty());
        assert!(empty.verify_chain(b"", &[], 0).is_err_and(|e| e.0.contains("no certificate authority is trusted")));
        let cases: [(&str, &str); 4] = [
            (r#"{"mediaType":"x"}"#, "mediaType"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"publicKey":{"rawBytes":"!"}}]}"#,
                "tlogs[0].publicKey.rawBytes",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[]}}]}"#,
                "certificateAuthorities[0].certChain",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AA=="}]},"validFor":{"start":"yesterday"}}]}"#,
                "validFor.start",
            ),
        ];
        for (text, want) in cases {
            let err =
                TrustMaterial::from_trusted_root_json(text.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{text}: {err}");
        }
        Ok(())
    }

    #[test]
    fn garbage_chains_are_errors_not_panics() -> Result<(), TrustRootError> {
        let root = TrustMaterial::from_trusted_root_json(br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"MAA="}]},"validFor":{"start":"2020-01-01T00:00:00.000Z"}}]}"#)?;
        assert!(root.verify_chain(&[0x30, 0x00], &[vec![0xff]], 1_700_000_000).is_err());
        assert!(root
            .verify_chain(&[], &[], 0)
            .is_err_and(|e| e.0.contains("no trusted certificate authority was valid")));
        Ok(())
    }
}
