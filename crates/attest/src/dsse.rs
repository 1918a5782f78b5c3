//! DSSE envelopes (Dead Simple Signing Envelope v1): sign, read, verify.
//!
//! An [`Envelope`] carries a payload, its `payloadType` and any number of signatures,
//! each over the pre-authentication encoding [`pae`] of type and payload, exactly as
//! <https://github.com/secure-systems-lab/dsse/blob/master/protocol.md> defines it.
//!
//! Base64: signing writes standard base64 with padding. Reading accepts standard or
//! URL-safe base64, as the protocol says verifiers MUST; like the Go reference
//! implementation (go-securesystemslib, which cosign uses) it tries the standard
//! alphabet, then the URL-safe one, each with padding required, and so refuses a string
//! that mixes the two alphabets or drops its padding. One difference from Go: non-zero
//! trailing bits in the last character (a non-canonical encoding, which RFC 4648 lets
//! decoders reject) are refused, so each byte string has exactly one accepted
//! spelling per alphabet.
//!
//! Verification follows the protocol's `(t, n)` rule: a signature counts for the first
//! trusted key it verifies under, and the threshold counts distinct keys, so a
//! signature repeated (or two signatures by one key) counts once. `keyid` hints are
//! never used to decide; they only make error messages precise. The payload type is
//! checked after the signatures, as the protocol orders it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::{KeyError, PublicKey, Signer};

/// The pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal without leading zeros.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + body.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

/// Why an envelope could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    /// A base64 field decodes in neither alphabet.
    #[error("{field} is neither standard nor URL-safe padded base64")]
    Base64 {
        /// `payload` or `signatures[i].sig`.
        field: String,
    },
    /// The envelope has no signatures at all.
    #[error("envelope has no signatures")]
    NoSignatures,
    /// No trusted keys were given, or the threshold cannot be met by them.
    #[error("threshold {threshold} with {keys} trusted keys: need 1 <= threshold <= keys")]
    BadThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// The number of trusted keys.
        keys: usize,
    },
    /// Fewer distinct trusted keys verified than the threshold needs.
    #[error("signature check failed: {accepted} of {threshold} required distinct keys verified ({})", .details.join("; "))]
    Threshold {
        /// The threshold asked for.
        threshold: usize,
        /// How many distinct keys verified.
        accepted: usize,
        /// One line per signature saying what happened to it.
        details: Vec<String>,
    },
    /// The signatures verified, but the payload type is not the one expected.
    #[error("payload type check failed: expected {expected:?}, envelope has {actual:?}")]
    PayloadType {
        /// The type the caller accepts.
        expected: String,
        /// The type the envelope carries.
        actual: String,
    },
    /// A signer failed.
    #[error("signing failed: {0}")]
    Sign(#[from] KeyError),
    /// The envelope is not JSON of the DSSE shape.
    #[error("not a DSSE envelope: {0}")]
    Json(#[from] serde_json::Error),
}

/// A DSSE JSON envelope, as written on the wire (base64 fields kept as received).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The base64 payload.
    pub payload: String,
    /// The payload's type, authenticated by the signatures.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signatures.
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// An unauthenticated hint at the key; empty when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// The base64 signature over [`pae`].
    pub sig: String,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// The indexes (into the trusted keys given) of the distinct keys that verified.
    pub keys: Vec<usize>,
}

/// Decodes DSSE base64: standard alphabet first, then URL-safe, padding required.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()
}

impl Envelope {
    /// Signs `payload` of `payload_type` with every signer, in order, each signature
    /// carrying its key's id as `keyid` hint.
    pub fn sign(payload_type: &str, payload: &[u8], signers: &[&dyn Signer]) -> Result<Envelope, DsseError> {
        let message = pae(payload_type, payload);
        let mut signatures = Vec::with_capacity(signers.len());
        for signer in signers {
            let sig = signer.sign(&message)?;
            signatures.push(EnvelopeSignature {
                keyid: signer.public_key().key_id(),
                sig: STANDARD.encode(sig),
                extra: Map::new(),
            });
        }
        Ok(Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures,
            extra: Map::new(),
        })
    }

    /// Reads an envelope from JSON (one line of a `.intoto.jsonl` file, or a document).
    pub fn from_json(text: &[u8]) -> Result<Envelope, DsseError> {
        Ok(serde_json::from_slice(text)?)
    }

    /// The decoded payload, unauthenticated.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, DsseError> {
        decode_base64(&self.payload).ok_or_else(|| DsseError::Base64 { field: "payload".to_owned() })
    }

    /// Verifies that at least `threshold` distinct keys of `keys` signed the envelope,
    /// then that its type is `expected_type`; returns the payload and the keys that signed.
    pub fn verify(&self, expected_type: &str, keys: &[PublicKey], threshold: usize) -> Result<Verified, DsseError> {
        if keys.is_empty() || threshold == 0 || threshold > keys.len() {
            return Err(DsseError::BadThreshold { threshold, keys: keys.len() });
        }
        if self.signatures.is_empty() {
            return Err(DsseError::NoSignatures);
        }
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        let mut accepted: Vec<usize> = Vec::new();
        let mut details = Vec::new();
        for (i, signature) in self.signatures.iter().enumerate() {
            let Some(sig) = decode_base64(&signature.sig) else {
                return Err(DsseError::Base64 { field: format!("signatures[{i}].sig") });
            };
            match keys.iter().position(|key| key.verify(&message, &sig).is_ok()) {
                Some(k) if accepted.contains(&k) => {
                    details.push(format!("signature {i} is by key {k} again and counts once"));
                }
                Some(k) => accepted.push(k),
                None => {
                    let hint = if signature.keyid.is_empty() {
                        String::new()
                    } else if keys.iter().any(|key| key.key_id() == signature.keyid) {
                        format!(
                            " (its keyid {} names a trusted key: payload, type or signature changed)",
                            signature.keyid
                        )
                    } else {
                        format!(" (its keyid {} names none of the trusted keys)", signature.keyid)
                    };
                    details.push(format!("signature {i} verifies under none of the {} trusted keys{hint}", keys.len()));
                }
            }
            if accepted.len() >= threshold {
                break;
            }
        }
        if accepted.len() < threshold {
            return Err(DsseError::Threshold { threshold, accepted: accepted.len(), details });
        }
        if self.payload_type != expected_type {
            return Err(DsseError::PayloadType {
                expected: expected_type.to_owned(),
                actual: self.payload_type.clone(),
            });
        }
        Ok(Verified { payload, keys: accepted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, KeySigner};
    use crate::statement::PAYLOAD_TYPE_IN_TOTO;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn signer(algorithm: Algorithm) -> Result<KeySigner, KeyError> {
        KeySigner::generate(algorithm).map(|(s, _)| s)
    }

    fn hex_to_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
    }

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        let long = vec![b'x'; 1000];
        assert!(pae("t", &long).starts_with(b"DSSEv1 1 t 1000 x"));
    }

    /// The protocol's test vector: its P-256 public key (X and Y given in decimal there,
    /// in hex here) and the envelope the reference implementation produced, whose
    /// signature is the fixed-width `r || s` form.
    #[test]
    fn verifies_the_spec_test_vector() -> TestResult {
        // X = 46950820868899156662930047687818585632848591499744589407958293238635476079160
        // Y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
        let raw = hex_to_bytes(concat!(
            "04",
            "67cd390f77aa359cb08c2235f652270493a9ed832b0abcc01f70954c0390d238",
            "0c782bd54e269125a44f4433aff1432ce94e12bca73aa67ac80cea12608ddf74"
        ));
        let key = PublicKey::from_raw(Algorithm::EcdsaP256Sha256, &raw)?;
        let envelope = Envelope::from_json(VECTOR.as_bytes())?;
        let verified = envelope.verify("http://example.com/HelloWorld", std::slice::from_ref(&key), 1)?;
        assert_eq!(verified.payload, b"hello world");
        // The same signature in URL-safe base64 is accepted too (the protocol's MUST).
        let mut url = envelope.clone();
        url.signatures[0].sig = URL_SAFE.encode(decode_base64(&envelope.signatures[0].sig).ok_or("b64")?);
        assert_ne!(url.signatures[0].sig, envelope.signatures[0].sig);
        url.verify("http://example.com/HelloWorld", std::slice::from_ref(&key), 1)?;
        // A changed payload type is authenticated: the signature fails, not the type check.
        let mut retyped = envelope;
        retyped.payload_type = "http://example.com/HelloWorle".into();
        let err = retyped.verify("http://example.com/HelloWorle", &[key], 1).err().ok_or("accepted")?;
        assert!(matches!(err, DsseError::Threshold { accepted: 0, .. }), "{err}");
        Ok(())
    }

    const VECTOR: &str = r#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;

    fn signed(signers: &[&dyn Signer]) -> Result<Envelope, DsseError> {
        Envelope::sign(PAYLOAD_TYPE_IN_TOTO, br#"{"_type":"https://in-toto.io/Statement/v1"}"#, signers)
    }

    #[test]
    fn signs_and_verifies_with_both_algorithms_in_standard_base64() -> TestResult {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let s = signer(algorithm)?;
            let envelope = signed(&[&s])?;
            assert!(!envelope.payload.contains(['-', '_']) && envelope.payload.ends_with('='));
            assert_eq!(envelope.signatures[0].keyid, s.public_key().key_id());
            let json = serde_json::to_string(&envelope)?;
            let back = Envelope::from_json(json.as_bytes())?;
            let verified = back.verify(PAYLOAD_TYPE_IN_TOTO, &[s.public_key().clone()], 1)?;
            assert_eq!(verified.keys, vec![0]);
        }
        Ok(())
    }

    #[test]
    fn changed_payload_byte_is_rejected() -> TestResult {
        let s = signer(Algorithm::EcdsaP256Sha256)?;
        let mut envelope = signed(&[&s])?;
        let mut payload = envelope.payload_bytes()?;
        payload[3] ^= 1;
        envelope.payload = STANDARD.encode(payload);
        let err = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &[s.public_key().clone()], 1).err().ok_or("accepted")?;
        assert!(matches!(err, DsseError::Threshold { accepted: 0, threshold: 1, .. }));
        assert!(err.to_string().contains("names a trusted key: payload, type or signature changed"), "{err}");
        Ok(())
    }

    #[test]
    fn changed_signature_byte_is_rejected() -> TestResult {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let s = signer(algorithm)?;
            let mut envelope = signed(&[&s])?;
            let mut sig = decode_base64(&envelope.signatures[0].sig).ok_or("b64")?;
            let last = sig.len() - 1;
            sig[last] ^= 0x40;
            envelope.signatures[0].sig = STANDARD.encode(sig);
            let err = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &[s.public_key().clone()], 1).err().ok_or("accepted")?;
            assert!(err.to_string().contains("signature 0 verifies under none of the 1 trusted keys"), "{err}");
        }
        Ok(())
    }

    #[test]
    fn wrong_key_is_rejected_and_named() -> TestResult {
        let s = signer(Algorithm::EcdsaP256Sha256)?;
        let other = signer(Algorithm::EcdsaP256Sha256)?;
        let envelope = signed(&[&s])?;
        let err = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &[other.public_key().clone()], 1).err().ok_or("accepted")?;
        assert!(err.to_string().contains("names none of the trusted keys"), "{err}");
        Ok(())
    }

    #[test]
    fn zero_signatures_are_rejected() -> TestResult {
        let s = signer(Algorithm::Ed25519)?;
        let envelope = signed(&[])?;
        let err = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &[s.public_key().clone()], 1).err().ok_or("accepted")?;
        assert!(matches!(err, DsseError::NoSignatures));
        Ok(())
    }

    #[test]
    fn duplicated_signatures_count_one_key() -> TestResult {
        let a = signer(Algorithm::EcdsaP256Sha256)?;
        let b = signer(Algorithm::Ed25519)?;
        let keys = [a.public_key().clone(), b.public_key().clone()];
        // The same signature twice, and two fresh signatures by the same key.
        let mut twice = signed(&[&a])?;
        twice.signatures.push(twice.signatures[0].clone());
        let fresh_twice = signed(&[&a, &a])?;
        for envelope in [twice, fresh_twice] {
            assert_eq!(envelope.verify(PAYLOAD_TYPE_IN_TOTO, &keys, 1)?.keys, vec![0]);
            let err = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &keys, 2).err().ok_or("accepted")?;
            assert!(matches!(err, DsseError::Threshold { accepted: 1, threshold: 2, .. }));
            assert!(err.to_string().contains("signature 1 is by key 0 again and counts once"), "{err}");
        }
        let both = signed(&[&a, &b])?;
        assert_eq!(both.verify(PAYLOAD_TYPE_IN_TOTO, &keys, 2)?.keys, vec![0, 1]);
        Ok(())
    }

    #[test]
    fn wrong_payload_type_is_rejected_after_the_signatures() -> TestResult {
        let s = signer(Algorithm::EcdsaP256Sha256)?;
        let envelope = Envelope::sign("application/json", b"{}", &[&s])?;
        let err = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &[s.public_key().clone()], 1).err().ok_or("accepted")?;
        assert!(matches!(err, DsseError::PayloadType { .. }), "{err}");
        Ok(())
    }

    #[test]
    fn base64_alphabets_and_bad_thresholds() -> TestResult {
        // 0xfb 0xff encodes to "+/8=" in standard and "-_8=" in URL-safe base64.
        assert_eq!(decode_base64("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("-_8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("+_8="), None, "mixed alphabets");
        assert_eq!(decode_base64("+/8"), None, "padding required");
        assert_eq!(decode_base64("+/9="), None, "non-canonical trailing bits");
        let s = signer(Algorithm::Ed25519)?;
        let mut envelope = signed(&[&s])?;
        let key = [s.public_key().clone()];
        assert!(matches!(envelope.verify(PAYLOAD_TYPE_IN_TOTO, &key, 0), Err(DsseError::BadThreshold { .. })));
        assert!(matches!(envelope.verify(PAYLOAD_TYPE_IN_TOTO, &key, 2), Err(DsseError::BadThreshold { .. })));
        assert!(matches!(envelope.verify(PAYLOAD_TYPE_IN_TOTO, &[], 1), Err(DsseError::BadThreshold { .. })));
        envelope.payload.push('!');
        assert!(matches!(envelope.verify(PAYLOAD_TYPE_IN_TOTO, &key, 1), Err(DsseError::Base64 { .. })));
        Ok(())
    }

    #[test]
    fn unknown_fields_survive() -> TestResult {
        let text = r#"{"payload":"e30=","payloadType":"t","signatures":[{"sig":"AA==","x-s":1}],"x-e":"k"}"#;
        let envelope = Envelope::from_json(text.as_bytes())?;
        assert_eq!(serde_json::to_value(&envelope)?, serde_json::from_str::<Value>(text)?);
        Ok(())
    }
}
