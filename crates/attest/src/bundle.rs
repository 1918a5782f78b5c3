//! Sigstore bundle v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`) around a DSSE
//! envelope, and detection of which kind of attestation file a reader was given.
//!
//! The JSON form is the protobuf-specs `Bundle` message in proto3 JSON
//! (<https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto>):
//! `mediaType`, `verificationMaterial` (here a `publicKey` whose `hint` names the key,
//! as cosign writes it: standard base64 of the SHA-256 of the DER SubjectPublicKeyInfo)
//! and `dsseEnvelope`, the same envelope a `.intoto.jsonl` line holds. Keyed bundles
//! carry no certificate and no transparency-log entry; fields this crate does not
//! interpret (`tlogEntries`, `timestampVerificationData`, certificates) are kept as read.
//!
//! The envelope in a bundle carries no `keyid`s (see [`Bundle::new`]). The hint, like a
//! DSSE `keyid`, is unauthenticated: it never decides which key
//! verifies, it only makes errors precise.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dsse::Envelope;
use crate::keys::PublicKey;

/// The media type of a Sigstore bundle v0.3, the one this crate writes.
pub const MEDIA_TYPE_BUNDLE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The media types of older bundles, which are read (never written) when they hold a
/// DSSE envelope: v0.2 and v0.1 differ from v0.3 only in certificate and log material.
pub const MEDIA_TYPES_BUNDLE_OLDER: [&str; 2] =
    ["application/vnd.dev.sigstore.bundle+json;version=0.2", "application/vnd.dev.sigstore.bundle+json;version=0.1"];

/// Why a file is not an attestation this crate reads.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not JSON, or not of the shape of an envelope or a bundle.
    #[error("not a DSSE envelope or Sigstore bundle: {0}")]
    Json(#[from] serde_json::Error),
    /// A JSON value that is neither an envelope nor a bundle.
    #[error("not a DSSE envelope (no payloadType) or Sigstore bundle (no mediaType)")]
    Unrecognized,
    /// A bundle with a media type this crate does not know.
    #[error("unsupported Sigstore bundle media type {0:?} (expected {MEDIA_TYPE_BUNDLE_V0_3:?})")]
    MediaType(String),
    /// A bundle that signs a message, not a DSSE envelope.
    #[error("the Sigstore bundle holds a messageSignature, not a dsseEnvelope: it signs a blob, not an attestation")]
    MessageSignature,
    /// A bundle with no content.
    #[error("the Sigstore bundle has no dsseEnvelope")]
    NoEnvelope,
    /// A bundle with both a `dsseEnvelope` and a `messageSignature`: its content is
    /// a protobuf `oneof`, so at most one may be set (cosign refuses such a bundle too).
    #[error("the Sigstore bundle holds both a dsseEnvelope and a messageSignature; a bundle has exactly one content")]
    SeveralContents,
    /// A `.jsonl` file with more than one envelope.
    #[error("{0} envelopes in one file: give one attestation at a time")]
    SeveralLines(usize),
}

/// A Sigstore bundle holding a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`MEDIA_TYPE_BUNDLE_V0_3`] when written here.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// How to verify: the public key hint (and, from others, certificates and log entries).
    #[serde(rename = "verificationMaterial")]
    pub verification_material: VerificationMaterial,
    /// The signed attestation.
    #[serde(rename = "dsseEnvelope", default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
    /// Fields this crate does not know (such as `messageSignature`), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `verificationMaterial` of a bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerificationMaterial {
    /// The key that signed, by hint.
    #[serde(rename = "publicKey", default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    /// Fields this crate does not interpret (`certificate`, `x509CertificateChain`,
    /// `tlogEntries`, `timestampVerificationData`), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `PublicKeyIdentifier`: an optional, unauthenticated hint naming a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicKeyIdentifier {
    /// cosign's hint: base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
    /// Fields this crate does not know, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The public key hint cosign writes: standard base64 of SHA-256 over the DER SPKI.
pub fn public_key_hint(key: &PublicKey) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.to_spki_der());
    STANDARD.encode(digest.as_ref())
}

impl Bundle {
    /// A v0.3 bundle around `envelope`, hinting at `key` (the first signer's key).
    ///
    /// The signatures' `keyid`s are dropped: the bundle names its key with the hint, and
    /// sigstore-go (cosign's bundle verifier) skips a signature whose `keyid` differs
    /// from the id it derives for the key itself, which is not ours. cosign writes none.
    pub fn new(mut envelope: Envelope, key: Option<&PublicKey>) -> Bundle {
        for signature in &mut envelope.signatures {
            signature.keyid.clear();
        }
        Bundle {
            media_type: MEDIA_TYPE_BUNDLE_V0_3.to_owned(),
            verification_material: VerificationMaterial {
                public_key: key.map(|k| PublicKeyIdentifier { hint: public_key_hint(k), extra: Map::new() }),
                extra: Map::new(),
            },
            dsse_envelope: Some(envelope),
            extra: Map::new(),
        }
    }

    /// A v0.3 bundle around `envelope` whose verification material is the signing key's
    /// certificate `leaf_der` (`certificate.rawBytes`), as cosign writes a bundle signed
    /// with `--certificate`; the caller checks that the certificate's key signed.
    pub fn with_certificate(mut envelope: Envelope, leaf_der: &[u8]) -> Bundle {
        for signature in &mut envelope.signatures {
            signature.keyid.clear();
        }
        let mut extra = Map::new();
        extra.insert("certificate".to_owned(), serde_json::json!({ "rawBytes": STANDARD.encode(leaf_der) }));
        Bundle {
            media_type: MEDIA_TYPE_BUNDLE_V0_3.to_owned(),
            verification_material: VerificationMaterial { public_key: None, extra },
            dsse_envelope: Some(envelope),
            extra: Map::new(),
        }
    }

    /// The hint, when the bundle names a public key.
    pub fn hint(&self) -> Option<&str> {
        self.verification_material.public_key.as_ref().map(|k| k.hint.as_str()).filter(|h| !h.is_empty())
    }
}

/// Which kind of file an attestation came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A bare DSSE envelope (a JSON document or one `.intoto.jsonl` line).
    Dsse,
    /// A Sigstore bundle holding a DSSE envelope.
    SigstoreBundle,
}

impl Format {
    /// `dsse` or `sigstore-bundle`, as `--json` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dsse => "dsse",
            Format::SigstoreBundle => "sigstore-bundle",
        }
    }
}

/// An attestation as read from a file: its envelope, and the bundle around it if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    /// The DSSE envelope to verify.
    pub envelope: Envelope,
    /// The bundle it came in, when it came in one.
    pub bundle: Option<Bundle>,
}

impl Attestation {
    /// Which kind of file this was.
    pub fn format(&self) -> Format {
        if self.bundle.is_some() {
            Format::SigstoreBundle
        } else {
            Format::Dsse
        }
    }

    /// Reads either kind of file, telling them apart by content: a JSON object with
    /// `mediaType` is a bundle, one with `payloadType` an envelope. A `.intoto.jsonl`
    /// file must hold exactly one non-empty line.
    pub fn detect(bytes: &[u8]) -> Result<Attestation, BundleError> {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(whole) => {
                // JSON lines: several documents, one a line.
                let lines: Vec<&[u8]> =
                    bytes.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).collect();
                if lines.len() > 1 && lines.iter().all(|l| serde_json::from_slice::<Value>(l).is_ok()) {
                    return Err(BundleError::SeveralLines(lines.len()));
                }
                return Err(BundleError::Json(whole));
            }
        };
        let Some(object) = value.as_object() else {
            return Err(BundleError::Unrecognized);
        };
        if let Some(media_type) = object.get("mediaType") {
            let media_type = media_type.as_str().unwrap_or_default();
            if media_type != MEDIA_TYPE_BUNDLE_V0_3 && !MEDIA_TYPES_BUNDLE_OLDER.contains(&media_type) {
                return Err(BundleError::MediaType(media_type.to_owned()));
            }
            let bundle: Bundle = serde_json::from_value(value)?;
            if bundle.dsse_envelope.is_some() && bundle.extra.contains_key("messageSignature") {
                return Err(BundleError::SeveralContents);
            }
            let Some(envelope) = bundle.dsse_envelope.clone() else {
                if bundle.extra.contains_key("messageSignature") {
                    return Err(BundleError::MessageSignature);
                }
                return Err(BundleError::NoEnvelope);
            };
            return Ok(Attestation { envelope, bundle: Some(bundle) });
        }
        if object.contains_key("payloadType") {
            return Ok(Attestation { envelope: serde_json::from_value(value)?, bundle: None });
        }
        Err(BundleError::Unrecognized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, KeySigner, Signer as _};
    use crate::statement::PAYLOAD_TYPE_IN_TOTO;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn writes_the_v0_3_json_form_and_reads_it_back() -> TestResult {
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let envelope = Envelope::sign(PAYLOAD_TYPE_IN_TOTO, b"{}", &[&signer])?;
        let bundle = Bundle::new(envelope.clone(), Some(signer.public_key()));
        let json = serde_json::to_value(&bundle)?;
        assert_eq!(json["mediaType"], MEDIA_TYPE_BUNDLE_V0_3);
        assert_eq!(json["verificationMaterial"]["publicKey"]["hint"], public_key_hint(signer.public_key()));
        assert_eq!(json["dsseEnvelope"]["payloadType"], PAYLOAD_TYPE_IN_TOTO);
        let read = Attestation::detect(json.to_string().as_bytes())?;
        assert_eq!(read.format(), Format::SigstoreBundle);
        assert_eq!(read.envelope.payload, envelope.payload);
        assert!(read.envelope.signatures.iter().all(|s| s.keyid.is_empty()));
        let bare = Attestation::detect(format!("{}\n", serde_json::to_string(&envelope)?).as_bytes())?;
        assert_eq!(bare.format(), Format::Dsse);
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_verify() {
        let cases: [(&str, &str); 7] = [
            (r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v9+json","verificationMaterial":{}}"#, "media type"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"messageSignature":{}}"#,
                "messageSignature",
            ),
            (r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{}}"#, "no dsse"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"dsseEnvelope":{"payload":"e30=","payloadType":"t","signatures":[]},"messageSignature":{}}"#,
                "exactly one content",
            ),
            (r#"[1]"#, "not a DSSE envelope (no payloadType)"),
            ("{\"payloadType\":\"t\",\"payload\":\"\"}\n{\"payloadType\":\"t\",\"payload\":\"\"}\n", "2 envelopes"),
            ("{", "EOF"),
        ];
        for (text, expected) in cases {
            let err = Attestation::detect(text.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_fields_survive() -> TestResult {
        let text = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"aGk="},"tlogEntries":[]},"dsseEnvelope":{"payload":"e30=","payloadType":"t","signatures":[]},"x":1}"#;
        let bundle: Bundle = serde_json::from_str(text)?;
        assert_eq!(bundle.hint(), Some("aGk="));
        assert_eq!(serde_json::to_value(&bundle)?, serde_json::from_str::<Value>(text)?);
        Ok(())
    }
}
