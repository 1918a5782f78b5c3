//! The request and response bodies of keyless signing, without the network: what
//! reprove would send to a Fulcio certificate authority and a Rekor transparency log,
//! and how their answers become a bundle's verification material. Nothing here talks
//! to a service (docs/keyless.md says why the live flow is not implemented); these are
//! pure functions, checked by golden tests, so that the live client, when it comes,
//! only moves bytes.
//!
//! - [`proof_subject`]: the value whose signature proves possession of the key: the
//!   identity token's `email` claim when it has one, else its `sub` (as sigstore-go's
//!   signer does). The token is not verified here; Fulcio verifies it.
//! - [`fulcio_signing_cert_request`]: the body of Fulcio's `POST /api/v2/signingCert`.
//! - [`fulcio_chain`]: the PEM chain of its answer (embedded or detached SCT form).
//! - [`rekor_dsse_entry`]: the proposed `dsse` 0.0.1 entry of Rekor's
//!   `POST /api/v1/log/entries`.
//! - [`rekor_bundle_entry`]: a Rekor `LogEntry` answer as a bundle `tlogEntries` item,
//!   which [`crate::tlog::verify_entry`] then verifies like any other.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::dsse::Envelope;
use crate::keys::PublicKey;

/// Why a token or a service answer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeylessError {
    /// The OIDC token is not a JWT with a subject.
    #[error("the identity token: {0}")]
    Token(String),
    /// An answer of the certificate authority or the log has the wrong shape.
    #[error("the {service} answer: {why}")]
    Answer {
        /// `Fulcio` or `Rekor`.
        service: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// The claim of an (unverified) OIDC identity token whose signature proves possession
/// of the signing key: `email` when present, else `sub`.
pub fn proof_subject(id_token: &str) -> Result<String, KeylessError> {
    let token = |why: &str| KeylessError::Token(why.to_owned());
    let mut parts = id_token.split('.');
    let (_, claims) = (parts.next(), parts.next().ok_or_else(|| token("not a JWT (no claims part)"))?);
    if parts.next().is_none() {
        return Err(token("not a JWT (no signature part)"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .map_err(|e| token(&format!("claims are not base64url: {e}")))?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|e| token(&format!("claims are not JSON: {e}")))?;
    ["email", "sub"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map(str::to_owned)
        .ok_or_else(|| token("no email or sub claim"))
}

/// The JSON body of Fulcio's `POST /api/v2/signingCert`: the token, the public key
/// (PEM) and the proof of possession (the key's signature over [`proof_subject`]).
pub fn fulcio_signing_cert_request(id_token: &str, key: &PublicKey, proof: &[u8]) -> Value {
    let algorithm = match key.algorithm() {
        crate::keys::Algorithm::EcdsaP256Sha256 => "ECDSA",
        crate::keys::Algorithm::Ed25519 => "ED25519",
    };
    json!({
        "credentials": {"oidcIdentityToken": id_token},
        "publicKeyRequest": {
            "publicKey": {"algorithm": algorithm, "content": key.to_pem()},
            "proofOfPossession": STANDARD.encode(proof)
        }
    })
}

/// The certificate chain (DER, the leaf first) of Fulcio's `signingCert` answer.
pub fn fulcio_chain(answer: &[u8]) -> Result<Vec<Vec<u8>>, KeylessError> {
    let bad = |why: String| KeylessError::Answer { service: "Fulcio", why };
    let value: Value = serde_json::from_slice(answer).map_err(|e| bad(format!("not JSON: {e}")))?;
    let certs = ["signedCertificateEmbeddedSct", "signedCertificateDetachedSct"]
        .iter()
        .find_map(|k| value.pointer(&format!("/{k}/chain/certificates")).and_then(Value::as_array))
        .ok_or_else(|| bad("no signedCertificate*Sct.chain.certificates".to_owned()))?;
    let mut chain = Vec::with_capacity(certs.len());
    for (i, pem) in certs.iter().enumerate() {
        let pem = pem.as_str().ok_or_else(|| bad(format!("certificate {i} is not a string")))?;
        let der = crate::certificate::pem_certificates(pem).map_err(|e| bad(format!("certificate {i}: {e}")))?;
        chain.extend(der);
    }
    if chain.is_empty() {
        return Err(bad("an empty chain".to_owned()));
    }
    Ok(chain)
}

/// The proposed Rekor entry for `envelope` signed with the certificate `leaf` (DER):
/// kind `dsse` 0.0.1, the envelope as a JSON string, the certificate PEM as verifier.
pub fn rekor_dsse_entry(envelope: &Envelope, leaf: &[u8]) -> Result<Value, serde_json::Error> {
    Ok(json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {"proposedContent": {
            "envelope": serde_json::to_string(envelope)?,
            "verifiers": [STANDARD.encode(crate::certificate::certificate_pem(leaf))]
        }}
    }))
}

/// A Rekor `LogEntry` answer (`{uuid: {body, integratedTime, logID, logIndex,
/// verification: {signedEntryTimestamp, inclusionProof}}}`) as the bundle's
/// `tlogEntries` item (protobuf-specs `TransparencyLogEntry` JSON).
pub fn rekor_bundle_entry(answer: &[u8]) -> Result<Value, KeylessError> {
    let bad = |why: String| KeylessError::Answer { service: "Rekor", why };
    let value: Value = serde_json::from_slice(answer).map_err(|e| bad(format!("not JSON: {e}")))?;
    let entries = value.as_object().ok_or_else(|| bad("not an object of entries".to_owned()))?;
    let (_, entry) = match (entries.len(), entries.iter().next()) {
        (1, Some(e)) => e,
        (n, _) => return Err(bad(format!("{n} entries, expected 1"))),
    };
    let str_at = |p: &str| entry.pointer(p).and_then(Value::as_str).ok_or_else(|| bad(format!("no {p}")));
    let int_at = |p: &str| entry.pointer(p).and_then(Value::as_i64).ok_or_else(|| bad(format!("no integer {p}")));
    let body = STANDARD.decode(str_at("/body")?).map_err(|e| bad(format!("/body is not base64: {e}")))?;
    let body_json: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("/body is not JSON: {e}")))?;
    let log_id: Vec<u8> = {
        let hex = str_at("/logID")?;
        (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("/logID is not hex".to_owned()))?
    };
    let mut out = json!({
        "logIndex": int_at("/logIndex")?.to_string(),
        "logId": {"keyId": STANDARD.encode(log_id)},
        "kindVersion": {
            "kind": body_json.get("kind").and_then(Value::as_str).unwrap_or_default(),
            "version": body_json.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
        },
        "integratedTime": int_at("/integratedTime")?.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": str_at("/verification/signedEntryTimestamp")?},
        "canonicalizedBody": STANDARD.encode(&body)
    });
    if let Some(proof) = entry.pointer("/verification/inclusionProof") {
        let hex_to_b64 = |h: &str| -> Result<String, KeylessError> {
            let bytes: Option<Vec<u8>> =
                (0..h.len()).step_by(2).map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok())).collect();
            bytes.map(|b| STANDARD.encode(b)).ok_or_else(|| bad(format!("inclusion proof hash {h:?} is not hex")))
        };
        let field = |k: &str| proof.get(k).ok_or_else(|| bad(format!("inclusionProof has no {k}")));
        let hashes: Vec<String> = field("hashes")?
            .as_array()
            .ok_or_else(|| bad("inclusionProof.hashes is not an array".to_owned()))?
            .iter()
            .map(|h| h.as_str().ok_or_else(|| bad("a hash is not a string".to_owned())).and_then(hex_to_b64))
            .collect::<Result<_, _>>()?;
        let int = |k: &str| field(k)?.as_i64().ok_or_else(|| bad(format!("inclusionProof.{k} is not an integer")));
        out["inclusionProof"] = json!({
            "logIndex": int("logIndex")?.to_string(),
            "rootHash": hex_to_b64(field("rootHash")?.as_str().unwrap_or_default())?,
            "treeSize": int("treeSize")?.to_string(),
            "hashes": hashes,
            "checkpoint": {"envelope": field("checkpoint")?.as_str().unwrap_or_default()}
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, KeySigner, Signer as _};
    use crate::trust_root::{TransparencyLogKey, TrustMaterial, ValidFor};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn jwt(claims: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn proof_subject_prefers_email() -> Result<(), KeylessError> {
        assert_eq!(proof_subject(&jwt(r#"{"sub":"123","email":"a@example.test"}"#))?, "a@example.test");
        assert_eq!(
            proof_subject(&jwt(r#"{"sub":"repo:acme/app:ref:refs/tags/v1"}"#))?,
            "repo:acme/app:ref:refs/tags/v1"
        );
        for bad in ["", "a.b", "e30.!!.c2ln", &jwt("[]"), &jwt(r#"{"sub":""}"#)] {
            assert!(proof_subject(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn fulcio_request_and_answer() -> TestResult {
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let body = fulcio_signing_cert_request("tok", signer.public_key(), b"sig");
        assert_eq!(
            body,
            json!({"credentials": {"oidcIdentityToken": "tok"}, "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": signer.public_key().to_pem()},
                "proofOfPossession": "c2ln"}})
        );
        let pem = crate::certificate::certificate_pem(&[0x30, 0x00]);
        let answer = json!({"signedCertificateEmbeddedSct": {"chain": {"certificates": [pem, pem]}}});
        assert_eq!(fulcio_chain(answer.to_string().as_bytes())?, vec![vec![0x30, 0x00]; 2]);
        for bad in [json!({}), json!({"signedCertificateDetachedSct": {"chain": {"certificates": [1]}}})] {
            assert!(fulcio_chain(bad.to_string().as_bytes()).is_err(), "{bad}");
        }
        Ok(())
    }

    /// A Rekor answer made with a local log key becomes a bundle entry that
    /// `tlog::verify_entry` accepts.
    #[test]
    fn rekor_entry_round_trip() -> TestResult {
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let envelope = Envelope::sign(crate::statement::PAYLOAD_TYPE_IN_TOTO, b"{}", &[&signer])?;
        let leaf = b"not really a certificate".to_vec();
        let proposed = rekor_dsse_entry(&envelope, &leaf)?;
        assert_eq!(proposed["spec"]["proposedContent"]["envelope"], serde_json::to_string(&envelope)?);
        // What the log would canonicalize and answer.
        let payload_hash = crate::statement::sha256_hex(b"{}");
        let body = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "payloadHash": {"algorithm": "sha256", "value": payload_hash},
            "signatures": [{"signature": envelope.signatures[0].sig,
                            "verifier": proposed["spec"]["proposedContent"]["verifiers"][0]}]}})
        .to_string();
        let (log, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let log_id = ring::digest::digest(&ring::digest::SHA256, &log.public_key().to_spki_der()).as_ref().to_vec();
        let set = log.sign(&crate::tlog::set_payload(body.as_bytes(), 1_700_000_000, &log_id, 9))?;
        let hex = crate::statement::hex(&log_id);
        let answer = json!({"24296fb2": {"body": STANDARD.encode(&body), "integratedTime": 1_700_000_000i64,
            "logID": hex, "logIndex": 9, "verification": {"signedEntryTimestamp": STANDARD.encode(set)}}});
        let entry = rekor_bundle_entry(answer.to_string().as_bytes())?;
        assert_eq!(entry["kindVersion"], json!({"kind": "dsse", "version": "0.0.1"}));
        let trust = TrustMaterial {
            authorities: Vec::new(),
            tlogs: vec![TransparencyLogKey {
                name: "local".into(),
                key: log.public_key().clone(),
                log_id,
                valid_for: ValidFor::default(),
            }],
            ctlogs: Vec::new(),
            timestamp_authorities: Vec::new(),
        };
        let entry: crate::tlog::TlogEntry = serde_json::from_value(entry)?;
        let verified = crate::tlog::verify_entry(&entry, &trust, &envelope, &leaf)?;
        assert_eq!((verified.integrated_time, verified.log_index), (1_700_000_000, 9));
        assert!(rekor_bundle_entry(b"{}").is_err() && rekor_bundle_entry(b"{\"a\":{}}").is_err());
        Ok(())
    }
}
