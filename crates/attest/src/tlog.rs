//! Transparency-log entries of a Sigstore bundle (`verificationMaterial.tlogEntries`),
//! verified offline: the signed entry timestamp (Rekor's inclusion promise), the
//! inclusion proof and its checkpoint when present, and that the entry's body records
//! this envelope and this certificate.
//!
//! - The SET is the log's signature over the canonical JSON
//!   `{"body":B,"integratedTime":T,"logID":HEX,"logIndex":I}` (keys sorted, no
//!   whitespace), where B is the standard base64 of the canonicalized body and HEX the
//!   log id: what Rekor signs and cosign and sigstore-go verify.
//! - The inclusion proof is RFC 6962's (leaf hash `SHA-256(0x00 || body)`, node hash
//!   `SHA-256(0x01 || left || right)`); its root must equal the checkpoint's, a signed
//!   note (`origin\nsize\nbase64(root)\n…\n\n— name base64(keyhint4 || sig)`) that the
//!   log's key signs (the key hint is the first 4 bytes of the log id). The proof,
//!   the note and the checkpoint are checked by the `tlog` crate, with the syntax
//!   rules of Go's `sumdb/note` and `sumdb/tlog`.
//! - Bodies of kind `dsse` (v0.0.1) and `intoto` (v0.0.2) are checked: the payload
//!   hash, a signature of the envelope, and the certificate as the verifier.
//!   Other kinds are refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use ::tlog::merkle;

use crate::dsse::{decode_base64, Envelope};
use crate::trust_root::TrustMaterial;
use stdx::time::format_rfc3339;

/// An entry as the bundle's proto3 JSON writes it (int64s as strings or numbers).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlogEntry {
    /// The entry's global index in the log.
    #[serde(default)]
    pub log_index: Option<Int64>,
    /// The log's id.
    #[serde(default)]
    pub log_id: Option<LogId>,
    /// The entry's kind and version (`dsse` 0.0.1, `intoto` 0.0.2…).
    #[serde(default)]
    pub kind_version: Option<KindVersion>,
    /// When the log integrated the entry, Unix seconds.
    #[serde(default)]
    pub integrated_time: Option<Int64>,
    /// The signed entry timestamp.
    #[serde(default)]
    pub inclusion_promise: Option<InclusionPromise>,
    /// The Merkle inclusion proof, with its checkpoint.
    #[serde(default)]
    pub inclusion_proof: Option<InclusionProof>,
    /// The entry body, base64.
    #[serde(default)]
    pub canonicalized_body: String,
}

/// A proto3 JSON int64: a string of digits, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int64(pub i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64().map(Int64).ok_or_else(|| serde::de::Error::custom("not an int64")),
            Value::String(s) => s.parse().map(Int64).map_err(|_| serde::de::Error::custom("not an int64")),
            _ => Err(serde::de::Error::custom("not an int64")),
        }
    }
}

/// `logId`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// base64 of the log's id.
    pub key_id: String,
}

/// `kindVersion`.
#[derive(Debug, Clone, Deserialize)]
pub struct KindVersion {
    /// `dsse`, `intoto`, `hashedrekord`…
    pub kind: String,
    /// The kind's version.
    #[serde(default)]
    pub version: String,
}

/// `inclusionPromise`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionPromise {
    /// base64 of the log's signature.
    pub signed_entry_timestamp: String,
}

/// `inclusionProof`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The leaf's index in the tree.
    pub log_index: Int64,
    /// base64 of the root hash.
    pub root_hash: String,
    /// The tree size.
    pub tree_size: Int64,
    /// base64 hashes, leaf to root.
    #[serde(default)]
    pub hashes: Vec<String>,
    /// The signed checkpoint.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

/// `checkpoint`.
#[derive(Debug, Clone, Deserialize)]
pub struct Checkpoint {
    /// The signed note.
    pub envelope: String,
}

/// What a verified entry established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    /// The integrated time, Unix seconds: the signing time.
    pub integrated_time: i64,
    /// The entry's log index.
    pub log_index: i64,
    /// The log's name in the trust material.
    pub log: String,
    /// Whether an inclusion proof and checkpoint were verified as well as the SET.
    pub inclusion_proof: bool,
}

/// The canonical JSON the SET signs.
pub fn set_payload(body: &[u8], integrated_time: i64, log_id: &[u8], log_index: i64) -> Vec<u8> {
    let log_id = crate::statement::hex(log_id);
    format!(
        r#"{{"body":"{}","integratedTime":{integrated_time},"logID":"{log_id}","logIndex":{log_index}}}"#,
        STANDARD.encode(body)
    )
    .into_bytes()
}

/// A log key as a note verifier. Rekor's checkpoint signatures carry the first 4
/// bytes of the log id as their key hash, under the log's name, which the trusted
/// root does not give: any name is taken.
struct CheckpointKey<'a>(&'a crate::trust_root::TransparencyLogKey);

impl ::tlog::note::Verifier for CheckpointKey<'_> {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn is_signer(&self, _name: &str, key_hash: u32) -> bool {
        self.0.log_id.get(..4) == Some(&key_hash.to_be_bytes()[..])
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.key.verify(message, signature).is_ok()
    }
}

/// Verifies a checkpoint note signed by `log`; returns its tree size and root hash.
fn verify_checkpoint(note: &str, log: &crate::trust_root::TransparencyLogKey) -> Result<::tlog::Tree, String> {
    use ::tlog::note::NoteError;
    let text = ::tlog::note::open(note.as_bytes(), &CheckpointKey(log)).map_err(|e| match e {
        NoteError::InvalidSignature { .. } | NoteError::Unverified(_) => {
            format!("no signature of the checkpoint verifies under the key of {}", log.name)
        }
        e => format!("the checkpoint is not a signed note: {e}"),
    })?;
    let checkpoint = ::tlog::Checkpoint::parse(text).map_err(|e| e.to_string())?;
    Ok(checkpoint.tree)
}

fn b64_field(value: &Value, pointer: &str) -> Option<Vec<u8>> {
    value.pointer(pointer).and_then(Value::as_str).and_then(|s| STANDARD.decode(s).ok())
}

/// Checks that `body` (a canonicalized Rekor entry) records `envelope` signed with the
/// certificate `leaf` (DER).
pub fn check_body(
    body: &[u8],
    kind: Option<&KindVersion>,
    envelope: &Envelope,
    leaf: &[u8],
) -> Result<String, EntryError> {
    check_body_text(body, kind, envelope, leaf).map_err(EntryError)
}

fn check_body_text(
    body: &[u8],
    kind: Option<&KindVersion>,
    envelope: &Envelope,
    leaf: &[u8],
) -> Result<String, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the entry body is not JSON: {e}"))?;
    let body_kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    let version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if let Some(kv) = kind {
        if kv.kind != body_kind {
            return Err(format!("kindVersion says {:?}, the body is {body_kind:?}", kv.kind));
        }
    }
    let payload = decode_base64(&envelope.payload).ok_or("the envelope payload is not base64")?;
    let payload_hash = crate::statement::sha256_hex(&payload);
    let envelope_sigs: Vec<Vec<u8>> = envelope.signatures.iter().filter_map(|s| decode_base64(&s.sig)).collect();
    let is_leaf = |pem: Option<Vec<u8>>| {
        pem.and_then(|p| String::from_utf8(p).ok())
            .and_then(|p| crate::certificate::pem_certificates(&p).ok())
            .is_some_and(|c| c.first().is_some_and(|d| d == leaf))
    };
    let (hash_at, sigs, sig_field, verifier_field) = match (body_kind, version) {
        ("dsse", "0.0.1") => ("/spec/payloadHash/value", "/spec/signatures", "signature", "verifier"),
        ("intoto", "0.0.2") => {
            ("/spec/content/payloadHash/value", "/spec/content/envelope/signatures", "sig", "publicKey")
        }
        _ => {
            return Err(format!(
                "entries of kind {body_kind:?} version {version:?} are not supported (dsse 0.0.1, intoto 0.0.2)"
            ))
        }
    };
    if value.pointer(hash_at).and_then(Value::as_str) != Some(payload_hash.as_str()) {
        return Err(format!("the entry's payload hash is not the envelope payload's sha256 {payload_hash}"));
    }
    let listed = value.pointer(sigs).and_then(Value::as_array).cloned().unwrap_or_default();
    let bound = listed.iter().any(|s| {
        let sig = b64_field(s, &format!("/{sig_field}"));
        // intoto v0.0.2 double-encodes the signature.
        let sig_twice = sig.as_ref().and_then(|b| std::str::from_utf8(b).ok()).and_then(decode_base64);
        let sig_ok = [sig, sig_twice].into_iter().flatten().any(|s| envelope_sigs.contains(&s));
        sig_ok && is_leaf(b64_field(s, &format!("/{verifier_field}")))
    });
    if !bound {
        return Err("the entry records no signature of this envelope made with this certificate".to_owned());
    }
    Ok(format!("{body_kind} {version} entry of this envelope and certificate"))
}

/// Verifies `entry` against `trust`, for `envelope` signed by the certificate `leaf`.
pub fn verify_entry(
    entry: &TlogEntry,
    trust: &TrustMaterial,
    envelope: &Envelope,
    leaf: &[u8],
) -> Result<VerifiedEntry, EntryError> {
    verify_entry_text(entry, trust, envelope, leaf).map_err(EntryError)
}

fn verify_entry_text(
    entry: &TlogEntry,
    trust: &TrustMaterial,
    envelope: &Envelope,
    leaf: &[u8],
) -> Result<VerifiedEntry, String> {
    let log_id = entry
        .log_id
        .as_ref()
        .and_then(|l| STANDARD.decode(&l.key_id).ok())
        .ok_or("the entry has no logId.keyId (base64)")?;
    let log = trust.tlog(&log_id).ok_or_else(|| {
        format!("the entry's log {} is not a transparency log of the trusted root", STANDARD.encode(&log_id))
    })?;
    let integrated_time = entry.integrated_time.ok_or("the entry has no integratedTime")?.0;
    let log_index = entry.log_index.ok_or("the entry has no logIndex")?.0;
    if !log.valid_for.contains(integrated_time) {
        return Err(format!(
            "the log key of {} was not valid at the entry's integratedTime {} (valid {})",
            log.name,
            format_rfc3339(integrated_time),
            log.valid_for
        ));
    }
    let body =
        STANDARD.decode(&entry.canonicalized_body).map_err(|e| format!("canonicalizedBody is not base64: {e}"))?;
    let promise = entry
        .inclusion_promise
        .as_ref()
        .ok_or("the entry has no inclusionPromise (signed entry timestamp): its integratedTime is not authenticated")?;
    let set = STANDARD
        .decode(&promise.signed_entry_timestamp)
        .map_err(|e| format!("signedEntryTimestamp is not base64: {e}"))?;
    log.key
        .verify(&set_payload(&body, integrated_time, &log_id, log_index), &set)
        .map_err(|_| format!("the signed entry timestamp does not verify under the key of {}", log.name))?;
    check_body(&body, entry.kind_version.as_ref(), envelope, leaf)?;
    let mut inclusion_proof = false;
    if let Some(proof) = &entry.inclusion_proof {
        let hashes: Option<Vec<merkle::Hash>> =
            proof.hashes.iter().map(|h| STANDARD.decode(h).ok().and_then(|b| merkle::Hash::try_from(b).ok())).collect();
        let hashes = hashes.ok_or("an inclusion proof hash is not 32 bytes of base64")?;
        let root = STANDARD.decode(&proof.root_hash).map_err(|_| "the inclusion proof's rootHash is not base64")?;
        let (index, size) = (u64::try_from(proof.log_index.0), u64::try_from(proof.tree_size.0));
        let computed = match (index, size) {
            (Ok(i), Ok(s)) => merkle::root_from_inclusion_proof(i, s, merkle::leaf_hash(&body), &hashes),
            _ => None,
        };
        if computed.is_none_or(|c| c[..] != root[..]) {
            return Err("the inclusion proof does not lead to its rootHash".to_owned());
        }
        let checkpoint = proof.checkpoint.as_ref().ok_or("the inclusion proof has no checkpoint")?;
        let tree = verify_checkpoint(&checkpoint.envelope, log)?;
        if Ok(tree.n) != size || tree.hash[..] != root[..] {
            return Err("the checkpoint's tree size or root hash differs from the inclusion proof's".to_owned());
        }
        inclusion_proof = true;
    }
    Ok(VerifiedEntry { integrated_time, log_index, log: log.name.clone(), inclusion_proof })
}

crate::message_error! {
    /// Why a transparency-log entry does not verify or does not match.
    EntryError
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rekor's checkpoints: signed notes whose key hash is the log id's first 4 bytes,
    /// read with the syntax rules of Go's notes.
    #[test]
    fn checkpoints() -> Result<(), Box<dyn std::error::Error>> {
        use crate::keys::{Algorithm, KeySigner, Signer as _};
        use crate::trust_root::{TransparencyLogKey, ValidFor};
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let log_id = ring::digest::digest(&ring::digest::SHA256, &signer.public_key().to_spki_der()).as_ref().to_vec();
        let log = TransparencyLogKey {
            name: "local".into(),
            key: signer.public_key().clone(),
            log_id,
            valid_for: ValidFor::default(),
        };
        let root = STANDARD.encode([7u8; 32]);
        let sign = |text: &str| -> Result<String, Box<dyn std::error::Error>> {
            let sig = signer.sign(text.as_bytes())?;
            Ok(format!("\u{2014} log.example {}\n", STANDARD.encode([&log.log_id[..4], &sig].concat())))
        };
        let text = format!("log.example - 1\n5\n{root}\n");
        let note = format!("{text}\n{}", sign(&text)?);
        assert_eq!(verify_checkpoint(&note, &log).map(|t| (t.n, t.hash)), Ok((5, [7u8; 32])));
        // Other logs' signatures are skipped.
        let cosigned = format!("{text}\n\u{2014} witness.example AAAAAAAA\n{}", sign(&text)?);
        assert!(verify_checkpoint(&cosigned, &log).is_ok());
        // A signature by this log that does not verify refuses the note, even beside a valid one.
        let other = sign("log.example - 1\n6\n")?;
        let forged = format!("{text}\n{other}{}", sign(&text)?);
        let err = verify_checkpoint(&forged, &log).err().unwrap_or_default();
        assert!(err.contains("no signature of the checkpoint verifies"), "{err}");
        // A malformed signature line is not skipped.
        let garbled = format!("{text}\n\u{2014} log.example not-base64\n{}", sign(&text)?);
        let err = verify_checkpoint(&garbled, &log).err().unwrap_or_default();
        assert!(err.contains("not a signed note"), "{err}");
        // The size is canonical decimal, the root 32 bytes.
        for text in [format!("log.example - 1\n05\n{root}\n"), "log.example - 1\n5\nAAAA\n".to_string()] {
            let note = format!("{text}\n{}", sign(&text)?);
            assert!(verify_checkpoint(&note, &log).is_err(), "{text}");
        }
        Ok(())
    }

    #[test]
    fn set_payload_is_canonical_json() {
        let text = String::from_utf8(set_payload(b"{}", 7, &[0xab, 0x01], 42)).unwrap_or_default();
        assert_eq!(text, r#"{"body":"e30=","integratedTime":7,"logID":"ab01","logIndex":42}"#);
    }

    #[test]
    fn entries_parse_with_string_or_number_int64s() -> Result<(), serde_json::Error> {
        let e: TlogEntry = serde_json::from_str(r#"{"logIndex":"5","integratedTime":6,"canonicalizedBody":""}"#)?;
        assert_eq!((e.log_index, e.integrated_time), (Some(Int64(5)), Some(Int64(6))));
        assert!(serde_json::from_str::<TlogEntry>(r#"{"logIndex":"x"}"#).is_err());
        Ok(())
    }
}
