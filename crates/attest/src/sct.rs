//! Certificate transparency: the signed certificate timestamps (SCTs, RFC 6962) a
//! signing certificate carries, verified against the CT log keys of the trust material.
//!
//! A Fulcio certificate embeds, in extension `1.3.6.1.4.1.11129.2.4.2`, a list of SCTs:
//! each is a log's promise to publish the certificate, signed over the *precertificate*
//! — the certificate's TBSCertificate without that extension — and the SHA-256 of the
//! issuer's SubjectPublicKeyInfo (RFC 6962 §3.2). Without a verified SCT a certificate
//! authority could issue a certificate no one will ever see; cosign therefore requires
//! one unless told `--insecure-ignore-sct`, and so does reprove.
//!
//! [`verify_embedded`] accepts the certificate when one SCT of the list verifies under a
//! trusted CT log key that was valid at the SCT's timestamp. Detached SCTs (cosign's
//! `--sct`) are not supported.

use x509_cert::der::asn1::{ObjectIdentifier, OctetString};
use x509_cert::der::{Decode as _, Encode as _};

use crate::statement::hex;
use crate::trust_root::TransparencyLogKey;
use stdx::time::format_rfc3339;

/// The embedded SCT list extension (RFC 6962 §3.3).
pub const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// One SCT of a certificate's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sct {
    /// SHA-256 of the log's DER SubjectPublicKeyInfo.
    pub log_id: [u8; 32],
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// CtExtensions, signed with the rest.
    pub extensions: Vec<u8>,
    /// TLS HashAlgorithm (4: SHA-256).
    pub hash_algorithm: u8,
    /// TLS SignatureAlgorithm (3: ECDSA, 1: RSA).
    pub signature_algorithm: u8,
    /// The signature (ASN.1 DER for ECDSA).
    pub signature: Vec<u8>,
}

/// A byte reader for TLS structures; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("truncated SCT data: {what} needs {n} bytes, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<usize, String> {
        let b = self.take(2, what)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn vector16(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u16(what)?;
        self.take(n, what)
    }
}

/// Parses a TLS `SignedCertificateTimestampList` (the contents of the extension's
/// inner OCTET STRING).
pub fn parse_list(bytes: &[u8]) -> Result<Vec<Sct>, SctParseError> {
    parse_list_text(bytes).map_err(SctParseError)
}

fn parse_list_text(bytes: &[u8]) -> Result<Vec<Sct>, String> {
    let mut outer = Reader(bytes);
    let list = outer.vector16("the SCT list")?;
    if !outer.0.is_empty() {
        return Err(format!("{} bytes after the SCT list", outer.0.len()));
    }
    let mut list = Reader(list);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let mut sct = Reader(list.vector16("an SCT")?);
        let version = sct.u8("the SCT version")?;
        if version != 0 {
            return Err(format!("SCT version {version} (only v1, 0, exists)"));
        }
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(sct.take(32, "the SCT log id")?);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(sct.take(8, "the SCT timestamp")?);
        let extensions = sct.vector16("the SCT extensions")?.to_vec();
        let hash_algorithm = sct.u8("the SCT hash algorithm")?;
        let signature_algorithm = sct.u8("the SCT signature algorithm")?;
        let signature = sct.vector16("the SCT signature")?.to_vec();
        if !sct.0.is_empty() {
            return Err(format!("{} bytes after an SCT", sct.0.len()));
        }
        out.push(Sct {
            log_id,
            timestamp_ms: u64::from_be_bytes(ts),
            extensions,
            hash_algorithm,
            signature_algorithm,
            signature,
        });
    }
    Ok(out)
}

/// A certificate's embedded SCTs and what they sign.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The SCTs of the list, in order.
    pub scts: Vec<Sct>,
    /// The precertificate's TBS: the TBSCertificate DER without the SCT list extension.
    pub precert_tbs: Vec<u8>,
}

/// A certificate's embedded SCTs; `Ok(None)` when it embeds none.
pub fn embedded(leaf_der: &[u8]) -> Result<Option<Embedded>, SctParseError> {
    embedded_text(leaf_der).map_err(SctParseError)
}

fn embedded_text(leaf_der: &[u8]) -> Result<Option<Embedded>, String> {
    let cert = x509_cert::Certificate::from_der(leaf_der).map_err(|e| format!("the signing certificate: {e}"))?;
    let mut tbs = cert.tbs_certificate;
    let Some(extensions) = tbs.extensions.as_mut() else { return Ok(None) };
    let Some(at) = extensions.iter().position(|e| e.extn_id == OID_SCT_LIST) else { return Ok(None) };
    let extension = extensions.remove(at);
    if extensions.iter().any(|e| e.extn_id == OID_SCT_LIST) {
        return Err("the certificate has two SCT list extensions".to_owned());
    }
    if extensions.is_empty() {
        tbs.extensions = None;
    }
    let inner = OctetString::from_der(extension.extn_value.as_bytes())
        .map_err(|e| format!("the SCT list extension is not an OCTET STRING: {e}"))?;
    let scts = parse_list(inner.as_bytes())?;
    let precert = tbs.to_der().map_err(|e| format!("re-encoding the TBSCertificate: {e}"))?;
    Ok(Some(Embedded { scts, precert_tbs: precert }))
}

/// The DER SubjectPublicKeyInfos of those of `candidates` (DER certificates) whose
/// subject is the leaf's issuer: the keys that may have issued it. Unparsable
/// candidates are skipped; the chain check reports on them.
pub fn issuer_spkis<'a>(leaf_der: &[u8], candidates: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let Ok(leaf) = x509_cert::Certificate::from_der(leaf_der) else { return Vec::new() };
    let mut out: Vec<Vec<u8>> = Vec::new();
    for der in candidates {
        let Ok(cert) = x509_cert::Certificate::from_der(der) else { continue };
        if cert.tbs_certificate.subject != leaf.tbs_certificate.issuer {
            continue;
        }
        if let Ok(spki) = cert.tbs_certificate.subject_public_key_info.to_der() {
            if !out.contains(&spki) {
                out.push(spki);
            }
        }
    }
    out
}

/// The bytes an SCT for a precertificate signs (RFC 6962 §3.2, `precert_entry`).
pub fn signed_data(sct: &Sct, issuer_key_hash: &[u8; 32], precert_tbs: &[u8]) -> Result<Vec<u8>, SctParseError> {
    signed_data_text(sct, issuer_key_hash, precert_tbs).map_err(SctParseError)
}

fn signed_data_text(sct: &Sct, issuer_key_hash: &[u8; 32], precert_tbs: &[u8]) -> Result<Vec<u8>, String> {
    let tbs_len = u32::try_from(precert_tbs.len())
        .ok()
        .filter(|n| *n < 1 << 24)
        .ok_or("the TBSCertificate is too long for an SCT")?;
    let ext_len = u16::try_from(sct.extensions.len()).map_err(|_| "the SCT extensions are too long")?;
    let mut out = Vec::with_capacity(precert_tbs.len() + sct.extensions.len() + 52);
    out.push(0); // sct_version v1
    out.push(0); // signature_type certificate_timestamp
    out.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
    out.extend_from_slice(issuer_key_hash);
    out.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
    out.extend_from_slice(precert_tbs);
    out.extend_from_slice(&ext_len.to_be_bytes());
    out.extend_from_slice(&sct.extensions);
    Ok(out)
}

/// Why no embedded SCT verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SctFailure {
    /// The certificate carries no SCT list: nothing to check (a caller may choose to
    /// skip the check, insecurely).
    #[error("the signing certificate embeds no SCT (certificate transparency)")]
    NoScts,
    /// The trust material has no CT log key to check an SCT with (idem).
    #[error("the trust material has no CT log key (a trusted root's ctlogs) to verify the certificate's SCT with")]
    NoLogKeys,
    /// The SCTs are malformed or none verifies.
    #[error("{0}")]
    Invalid(String),
}

impl From<SctParseError> for SctFailure {
    fn from(e: SctParseError) -> Self {
        SctFailure::Invalid(e.0)
    }
}

impl From<String> for SctFailure {
    fn from(reason: String) -> Self {
        SctFailure::Invalid(reason)
    }
}

/// Verifies the SCTs embedded in `leaf_der` against `logs`. `issuer_spkis` are the DER
/// SubjectPublicKeyInfos of the certificates that may have issued the leaf (those whose
/// subject is its issuer); the chain check has established which authority that is.
/// `Ok` names the log and time of the SCT that verified; `Err` says why none did.
pub fn verify_embedded(
    leaf_der: &[u8],
    issuer_spkis: &[Vec<u8>],
    logs: &[TransparencyLogKey],
) -> Result<String, SctFailure> {
    let Some(Embedded { scts, precert_tbs: precert }) = embedded(leaf_der)? else {
        return Err(SctFailure::NoScts);
    };
    if scts.is_empty() {
        return Err(SctFailure::Invalid("the signing certificate's SCT list is empty".to_owned()));
    }
    if logs.is_empty() {
        return Err(SctFailure::NoLogKeys);
    }
    if issuer_spkis.is_empty() {
        return Err(SctFailure::Invalid(
            "the signing certificate's issuer is not among the trusted certificates".to_owned(),
        ));
    }
    let issuer_hashes: Vec<[u8; 32]> = issuer_spkis
        .iter()
        .map(|spki| {
            let mut h = [0u8; 32];
            h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, spki).as_ref());
            h
        })
        .collect();
    let mut reasons = Vec::new();
    for (i, sct) in scts.iter().enumerate() {
        let time = i64::try_from(sct.timestamp_ms / 1000).unwrap_or(i64::MAX);
        let Some(log) = logs.iter().find(|l| l.log_id == sct.log_id) else {
            reasons.push(format!("SCT {i}: no trusted CT log has id {}", hex(&sct.log_id)));
            continue;
        };
        if !log.valid_for.contains(time) {
            reasons.push(format!(
                "SCT {i}: {}'s key was not valid at the SCT's time {} (valid {})",
                log.name,
                format_rfc3339(time),
                log.valid_for
            ));
            continue;
        }
        if (sct.hash_algorithm, sct.signature_algorithm) != (4, 3) {
            reasons.push(format!(
                "SCT {i}: signature algorithm {}/{} (reprove verifies ECDSA with SHA-256, 4/3)",
                sct.hash_algorithm, sct.signature_algorithm
            ));
            continue;
        }
        let mut verified = false;
        for hash in &issuer_hashes {
            let message = signed_data(sct, hash, &precert)?;
            if log.key.verify(&message, &sct.signature).is_ok() {
                verified = true;
                break;
            }
        }
        if verified {
            return Ok(format!("SCT from {} at {} verified", log.name, format_rfc3339(time)));
        }
        reasons.push(format!("SCT {i}: the signature of {} does not verify over this certificate", log.name));
    }
    Err(SctFailure::Invalid(reasons.join("; ")))
}

crate::message_error! {
    /// Why signed certificate timestamps could not be read.
    SctParseError
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sct_bytes(version: u8, sig: &[u8]) -> Vec<u8> {
        let mut s = vec![version];
        s.extend_from_slice(&[7u8; 32]);
        s.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        s.extend_from_slice(&[0, 0, 4, 3]);
        s.extend_from_slice(&u16::try_from(sig.len()).unwrap_or(0).to_be_bytes());
        s.extend_from_slice(sig);
        s
    }

    fn list(scts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        for s in scts {
            body.extend_from_slice(&u16::try_from(s.len()).unwrap_or(0).to_be_bytes());
            body.extend_from_slice(s);
        }
        let mut out = u16::try_from(body.len()).unwrap_or(0).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn a_list_parses_field_by_field() {
        let parsed = parse_list(&list(&[sct_bytes(0, b"sig"), sct_bytes(0, b"")]));
        let parsed = parsed.unwrap_or_default();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].log_id, [7u8; 32]);
        assert_eq!(parsed[0].timestamp_ms, 1_700_000_000_000);
        assert_eq!((parsed[0].hash_algorithm, parsed[0].signature_algorithm), (4, 3));
        assert_eq!(parsed[0].signature, b"sig");
    }

    /// Every truncation and every trailing byte is an error, never a panic.
    #[test]
    fn malformed_lists_are_errors() {
        let good = list(&[sct_bytes(0, b"signature")]);
        for n in 0..good.len() {
            assert!(parse_list(&good[..n]).is_err(), "truncated to {n}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_list(&trailing).is_err());
        let v2 = parse_list(&list(&[sct_bytes(1, b"s")]));
        assert!(v2.is_err_and(|e| e.0.contains("version 1")));
        // An SCT whose inner length leaves a byte over.
        let mut long = sct_bytes(0, b"s");
        long.push(9);
        assert!(parse_list(&list(&[long])).is_err_and(|e| e.0.contains("after an SCT")));
    }

    #[test]
    fn signed_data_is_laid_out_as_rfc_6962_says() {
        let sct = Sct {
            log_id: [0; 32],
            timestamp_ms: 0x0102_0304_0506_0708,
            extensions: vec![0xee],
            hash_algorithm: 4,
            signature_algorithm: 3,
            signature: Vec::new(),
        };
        let data = signed_data(&sct, &[0xaa; 32], &[0x30, 0x00]).unwrap_or_default();
        let mut want = vec![0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1];
        want.extend_from_slice(&[0xaa; 32]);
        want.extend_from_slice(&[0, 0, 2, 0x30, 0x00, 0, 1, 0xee]);
        assert_eq!(data, want);
    }
}
