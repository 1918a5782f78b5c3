//! Signed notes, verified as `golang.org/x/mod/sumdb/note` verifies them.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature
//! lines `— <name> <base64(4-byte key hash || signature)>`. A verifier key is
//! `<name>+<8 hex digits of key hash>+<base64(algorithm byte || public key)>`,
//! the key hash being the first 4 bytes of SHA-256(`name` `\n` `alg||key`).
//! Only Ed25519 (algorithm 1) exists. A note verifies when at least one
//! signature is by the known key and valid; signatures by unknown keys are
//! ignored, an invalid signature by the known key is an error.
//!
//! What it is not: a signer. reprove only verifies.

use base64::Engine as _;
use sha2::{Digest, Sha256};

const ALG_ED25519: u8 = 1;
const SIG_PREFIX: &str = "\u{2014} ";

/// A verifier key: the database's name and Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    key: [u8; 32],
    text: String,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a key or note is refused (x/mod's words where it has them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// `malformed verifier id`.
    #[error("malformed verifier id {0:?}")]
    VerifierId(String),
    /// The key hash does not match the key.
    #[error("invalid verifier hash in {0:?}")]
    VerifierHash(String),
    /// Not Ed25519.
    #[error("unknown verifier algorithm in {0:?}")]
    VerifierAlg(String),
    /// The note's syntax is wrong.
    #[error("malformed note")]
    Malformed,
    /// A signature by the known key that does not verify.
    #[error("invalid signature for key {name}+{hash:08x}")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key hash.
        hash: u32,
    },
    /// No signature by the known key.
    #[error("note has no verifiable signature by {0}")]
    Unverified(String),
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl VerifierKey {
    /// Parses `name+hash+key` (x/mod's `NewVerifier`).
    pub fn parse(vkey: &str) -> Result<VerifierKey, NoteError> {
        let bad = || NoteError::VerifierId(vkey.to_string());
        let (name, rest) = vkey.split_once('+').ok_or_else(bad)?;
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        let hash = u32::from_str_radix(hash16, 16).map_err(|_| bad())?;
        let key = base64::engine::general_purpose::STANDARD.decode(key64).map_err(|_| bad())?;
        if hash16.len() != 8 || !is_valid_name(name) || key.is_empty() {
            return Err(bad());
        }
        if hash != key_hash(name, &key) {
            return Err(NoteError::VerifierHash(vkey.to_string()));
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::VerifierAlg(vkey.to_string()));
        }
        let key: [u8; 32] = key[1..].try_into().map_err(|_| bad())?;
        Ok(VerifierKey { name: name.to_string(), hash, key, text: vkey.to_string() })
    }

    /// The key's name (the database name).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.key).verify(msg, sig).is_ok()
    }
}

/// x/mod's `note.Open` with one known key: the note's text when it verifies.
pub fn open<'a>(msg: &'a [u8], key: &VerifierKey) -> Result<&'a str, NoteError> {
    let s = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed)?;
    if s.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return Err(NoteError::Malformed);
    }
    let split = s.rfind("\n\n").ok_or(NoteError::Malformed)?;
    let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed);
    }
    let mut verified = false;
    for (n, line) in sigs.lines().enumerate() {
        if n >= 100 {
            return Err(NoteError::Malformed);
        }
        let line = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed)?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let sig = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| NoteError::Malformed)?;
        if !is_valid_name(name) || b64.is_empty() || sig.len() < 5 {
            return Err(NoteError::Malformed);
        }
        let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
        if name != key.name || hash != key.hash {
            continue;
        }
        if !key.verify(text.as_bytes(), &sig[4..]) {
            return Err(NoteError::InvalidSignature { name: name.to_string(), hash });
        }
        verified = true;
    }
    if verified {
        Ok(text)
    } else {
        Err(NoteError::Unverified(key.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        assert!(matches!(VerifierKey::parse("nohash"), Err(NoteError::VerifierId(_))));
        assert!(matches!(
            VerifierKey::parse("a.example+00000000+AQ=="),
            Err(NoteError::VerifierHash(_)) | Err(NoteError::VerifierId(_))
        ));
    }
}
