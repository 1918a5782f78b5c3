//! RFC 3161 timestamps: a timestamping authority's signed statement that some bytes
//! existed at a time. A Sigstore bundle carries them in
//! `verificationMaterial.timestampVerificationData.rfc3161Timestamps[].signedTimestamp`
//! (a DER `TimeStampResp`), over the bytes of the signature (for a DSSE envelope, its
//! first signature, decoded), and a verifier with `--use-signed-timestamps` (cosign's
//! flag) takes the verified time as a signing time instead of, or beside, a
//! transparency-log entry's.
//!
//! [`verify`] accepts a response when, in this order: its status grants it; the token
//! is CMS SignedData of a TSTInfo; the TSTInfo's message imprint is the hash of the
//! signature bytes; the one SignerInfo's signed attributes name the TSTInfo content
//! type and carry its digest; their signature verifies under the certificate of a
//! timestamping authority of the trust material that was valid at the TSTInfo's
//! genTime, whose certificate allows time stamping and chains to the authority's root
//! at that time. Signature algorithms: ECDSA P-256/P-384 and RSA PKCS#1 v1.5, with
//! SHA-256/384/512 (ring).

use std::time::Duration;

use cms::signed_data::{SignedData, SignerIdentifier};
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::EndEntityCert;
use x509_cert::der::asn1::{ObjectIdentifier, OctetString};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_tsp::{TimeStampResp, TstInfo};

use crate::trust_root::{CertificateAuthority, UsageIfPresent};
use stdx::time::format_rfc3339;

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
/// `id-kp-timeStamping` (RFC 5280 §4.2.1.12).
pub const OID_EKU_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// DER contents of `id-kp-timeStamping`, for webpki (a TSA chain's certificates that
/// restrict their usage must allow it; the TSA's own must list it, checked separately).
const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// A timestamp that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// The TSTInfo's genTime, Unix seconds.
    pub time: i64,
    /// The authority whose certificate signed it.
    pub authority: String,
}

fn digest_algorithm(oid: &ObjectIdentifier) -> Result<&'static ring::digest::Algorithm, String> {
    match *oid {
        OID_SHA256 => Ok(&ring::digest::SHA256),
        OID_SHA384 => Ok(&ring::digest::SHA384),
        OID_SHA512 => Ok(&ring::digest::SHA512),
        other => Err(format!("hash algorithm {other} (SHA-256, SHA-384 or SHA-512 expected)")),
    }
}

/// The ring verification algorithm for a key (from its certificate) and a digest.
fn signature_algorithm(
    cert: &x509_cert::Certificate,
    digest: &ObjectIdentifier,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, String> {
    use ring::signature as s;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let algorithm: &'static dyn s::VerificationAlgorithm = match (spki.algorithm.oid, curve, *digest) {
        (OID_EC_PUBLIC_KEY, Some(OID_P256), OID_SHA256) => &s::ECDSA_P256_SHA256_ASN1,
        (OID_EC_PUBLIC_KEY, Some(OID_P256), OID_SHA384) => &s::ECDSA_P256_SHA384_ASN1,
        (OID_EC_PUBLIC_KEY, Some(OID_P384), OID_SHA256) => &s::ECDSA_P384_SHA256_ASN1,
        (OID_EC_PUBLIC_KEY, Some(OID_P384), OID_SHA384) => &s::ECDSA_P384_SHA384_ASN1,
        (OID_RSA, _, OID_SHA256) => &s::RSA_PKCS1_2048_8192_SHA256,
        (OID_RSA, _, OID_SHA384) => &s::RSA_PKCS1_2048_8192_SHA384,
        (OID_RSA, _, OID_SHA512) => &s::RSA_PKCS1_2048_8192_SHA512,
        (key, curve, digest) => {
            return Err(format!(
                "the TSA key ({key}{}) with digest {digest} is not supported (ECDSA P-256/P-384 or RSA, SHA-2)",
                curve.map(|c| format!(", curve {c}")).unwrap_or_default()
            ))
        }
    };
    Ok(algorithm)
}

/// Whether `cert` is the one `sid` names.
fn names(sid: &SignerIdentifier, cert: &x509_cert::Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            id.issuer == cert.tbs_certificate.issuer && id.serial_number == cert.tbs_certificate.serial_number
        }
        // A key identifier says nothing a signature check would not: let it decide.
        SignerIdentifier::SubjectKeyIdentifier(_) => true,
    }
}

/// Checks `authority`'s TSA certificate (the first of its chain) at `time`: it allows
/// time stamping, and chains to the authority's root then.
fn check_tsa_certificate(
    authority: &CertificateAuthority,
    tsa: &x509_cert::Certificate,
    time: i64,
) -> Result<(), String> {
    let eku = tsa
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OID_EKU)
        .map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()))
        .transpose()
        .map_err(|e| format!("{}: its certificate's extended key usage: {e}", authority.name))?;
    if !eku.is_some_and(|eku| eku.0.contains(&OID_EKU_TIME_STAMPING)) {
        return Err(format!("{}: its certificate does not allow time stamping (1.3.6.1.5.5.7.3.8)", authority.name));
    }
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(time).unwrap_or(0)));
    let (Some(leaf), Some(root)) = (authority.chain.first(), authority.chain.last()) else {
        return Err(format!("{}: no certificate", authority.name));
    };
    if authority.chain.len() == 1 {
        // A self-signed TSA certificate is its own anchor: only its validity is left.
        let validity = &tsa.tbs_certificate.validity;
        let (from, to) = (validity.not_before.to_unix_duration(), validity.not_after.to_unix_duration());
        let t = Duration::from_secs(u64::try_from(time).unwrap_or(0));
        return if from <= t && t <= to {
            Ok(())
        } else {
            Err(format!("{}: its certificate is not valid at {}", authority.name, format_rfc3339(time)))
        };
    }
    let root_der = CertificateDer::from(root.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&root_der)
        .map_err(|e| format!("{}: its root certificate cannot be a trust anchor: {e}", authority.name))?;
    let intermediates: Vec<CertificateDer<'_>> =
        authority.chain[1..authority.chain.len() - 1].iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let end_entity =
        EndEntityCert::try_from(&leaf_der).map_err(|e| format!("{}: its certificate: {e}", authority.name))?;
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &intermediates,
            at,
            UsageIfPresent(&[EKU_TIME_STAMPING]),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| {
            format!("{}: its certificate does not chain to its root at {}: {e}", authority.name, format_rfc3339(time))
        })
}

/// Verifies the DER `TimeStampResp` `response` over `signed` (the signature bytes)
/// against `authorities`; see the module documentation.
pub fn verify(
    response: &[u8],
    signed: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<VerifiedTimestamp, TimestampError> {
    verify_text(response, signed, authorities).map_err(TimestampError)
}

fn verify_text(
    response: &[u8],
    signed: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<VerifiedTimestamp, String> {
    let response = TimeStampResp::from_der(response).map_err(|e| format!("not a TimeStampResp: {e}"))?;
    let status = response.status.status as u8;
    if status > 1 {
        return Err(format!("the response's status is {:?}, not granted", response.status.status));
    }
    let token = response.time_stamp_token.ok_or("the response holds no timestamp token")?;
    if token.content_type != OID_SIGNED_DATA {
        return Err(format!("the token's content type is {}, not SignedData", token.content_type));
    }
    let signed_data = SignedData::from_der(&token.content.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("the token is not CMS SignedData: {e}"))?;
    let encapsulated = &signed_data.encap_content_info;
    if encapsulated.econtent_type != OID_TST_INFO {
        return Err(format!("the token's content is {}, not a TSTInfo", encapsulated.econtent_type));
    }
    let content = encapsulated.econtent.as_ref().ok_or("the token has no TSTInfo")?;
    let tst_der = OctetString::from_der(&content.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("the TSTInfo is not in an OCTET STRING: {e}"))?;
    let tst = TstInfo::from_der(tst_der.as_bytes()).map_err(|e| format!("not a TSTInfo: {e}"))?;
    let time = i64::try_from(tst.gen_time.to_unix_duration().as_secs()).map_err(|_| "genTime out of range")?;

    let imprint =
        digest_algorithm(&tst.message_imprint.hash_algorithm.oid).map_err(|e| format!("message imprint: {e}"))?;
    if ring::digest::digest(imprint, signed).as_ref() != tst.message_imprint.hashed_message.as_bytes() {
        return Err("the timestamp's message imprint is not the hash of this envelope's signature".to_owned());
    }

    let signer_infos = signed_data.signer_infos.0.as_slice();
    let [signer] = signer_infos else {
        return Err(format!("the token has {} signers, expected one", signer_infos.len()));
    };
    let attributes = signer.signed_attrs.as_ref().ok_or("the token's signer has no signed attributes")?;
    let digest = digest_algorithm(&signer.digest_alg.oid).map_err(|e| format!("signer digest: {e}"))?;
    let mut content_type_ok = false;
    let mut digest_ok = false;
    for attribute in attributes.iter() {
        let [value] = attribute.values.as_slice() else {
            return Err(format!("signed attribute {} has {} values", attribute.oid, attribute.values.len()));
        };
        match attribute.oid {
            OID_CONTENT_TYPE => content_type_ok = value.decode_as::<ObjectIdentifier>().ok() == Some(OID_TST_INFO),
            OID_MESSAGE_DIGEST => {
                let want = ring::digest::digest(digest, tst_der.as_bytes());
                digest_ok = value.decode_as::<OctetString>().is_ok_and(|d| d.as_bytes() == want.as_ref());
            }
            _ => {}
        }
    }
    if !content_type_ok {
        return Err("the signed attributes do not name the TSTInfo content type".to_owned());
    }
    if !digest_ok {
        return Err("the signed attributes' message digest is not the TSTInfo's".to_owned());
    }
    // The signature covers the attributes DER-encoded as a SET OF (RFC 5652 §5.4).
    let signed_attributes = attributes.to_der().map_err(|e| e.to_string())?;

    let current: Vec<&CertificateAuthority> = authorities.iter().filter(|a| a.valid_for.contains(time)).collect();
    if authorities.is_empty() {
        return Err(
            "the trust material has no timestamping authority (a trusted root's timestampAuthorities)".to_owned()
        );
    }
    if current.is_empty() {
        return Err(format!(
            "no trusted timestamping authority was valid at the timestamp's time {}",
            format_rfc3339(time)
        ));
    }
    let mut reasons = Vec::new();
    for authority in current {
        let Some(tsa_der) = authority.chain.first() else { continue };
        let tsa = match x509_cert::Certificate::from_der(tsa_der) {
            Ok(c) => c,
            Err(e) => {
                reasons.push(format!("{}: its certificate: {e}", authority.name));
                continue;
            }
        };
        if !names(&signer.sid, &tsa) {
            reasons.push(format!("{}: its certificate is not the token's signer", authority.name));
            continue;
        }
        let algorithm = match signature_algorithm(&tsa, &signer.digest_alg.oid) {
            Ok(a) => a,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        let key = tsa.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        if ring::signature::UnparsedPublicKey::new(algorithm, key)
            .verify(&signed_attributes, signer.signature.as_bytes())
            .is_err()
        {
            reasons.push(format!("{}: the token's signature does not verify under its certificate", authority.name));
            continue;
        }
        match check_tsa_certificate(authority, &tsa, time) {
            Ok(()) => return Ok(VerifiedTimestamp { time, authority: authority.name.clone() }),
            Err(e) => reasons.push(e),
        }
    }
    Err(reasons.join("; "))
}

/// The signed timestamps of a bundle's verification material (base64-decoded
/// `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`).
pub fn bundle_timestamps(extra: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<Vec<u8>>, TimestampError> {
    bundle_timestamps_text(extra).map_err(TimestampError)
}

fn bundle_timestamps_text(extra: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let Some(data) = extra.get("timestampVerificationData") else { return Ok(Vec::new()) };
    let list = match data.get("rfc3161Timestamps") {
        None => return Ok(Vec::new()),
        Some(l) => l.as_array().ok_or("timestampVerificationData.rfc3161Timestamps is not a list")?,
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            t.get("signedTimestamp")
                .and_then(serde_json::Value::as_str)
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(|| format!("rfc3161Timestamps[{i}].signedTimestamp is not base64"))
        })
        .collect()
}

crate::message_error! {
    /// Why an RFC 3161 timestamp does not verify.
    TimestampError
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile responses are errors, never panics: every truncation of a real-shaped
    /// response and a few byte flips.
    #[test]
    fn malformed_responses_are_errors() {
        assert!(verify(b"", b"sig", &[]).is_err());
        assert!(verify(&[0x30, 0x03, 0x02, 0x01, 0x00], b"sig", &[]).is_err());
        let status_only = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00];
        assert_eq!(
            verify(&status_only, b"sig", &[]),
            Err(TimestampError("the response holds no timestamp token".to_owned()))
        );
        let rejected = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02];
        assert!(verify(&rejected, b"sig", &[]).is_err_and(|e| e.0.contains("not granted")));
    }

    #[test]
    fn bundle_timestamps_are_read_or_refused() {
        let extra = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(bundle_timestamps(&extra(serde_json::json!({}))), Ok(Vec::new()));
        let one = extra(
            serde_json::json!({"timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": "AQI="}]}}),
        );
        assert_eq!(bundle_timestamps(&one), Ok(vec![vec![1, 2]]));
        let bad =
            extra(serde_json::json!({"timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": "!"}]}}));
        assert!(bundle_timestamps(&bad).is_err());
    }
}
