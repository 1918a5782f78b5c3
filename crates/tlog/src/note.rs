//! Signed notes, verified as `golang.org/x/mod/sumdb/note` verifies them (C2SP
//! signed-note).
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature
//! lines `— <name> <base64(4-byte key hash || signature)>`. A note opens with
//! a [`Verifier`] when at least one signature is the verifier's and valid;
//! signatures by other keys are ignored, an invalid signature claimed by the
//! verifier's key is an error.
//!
//! Go's verifier keys ([`VerifierKey`]) are
//! `<name>+<8 hex digits of key hash>+<base64(algorithm byte || public key)>`,
//! the key hash being the first 4 bytes of SHA-256(`name` `\n` `alg||key`);
//! only Ed25519 (algorithm 1) exists. Other logs derive the key hash their own
//! way (Rekor: the first 4 bytes of its log id) and implement [`Verifier`].
//!
//! What it is not: a signer. reprove only verifies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::sha256;

const ALG_ED25519: u8 = 1;
const SIG_PREFIX: &str = "\u{2014} ";
/// Go's limit on signature lines, so that a note cannot make its reader spend forever.
const MAX_SIGNATURES: usize = 100;

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

/// A key that verifies notes.
pub trait Verifier {
    /// The key's name, for errors.
    fn name(&self) -> &str;
    /// Whether a signature line with this name and key hash claims to be by this key.
    fn is_signer(&self, name: &str, key_hash: u32) -> bool;
    /// Whether `signature` is this key's signature of `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature<'a> {
    /// The signer's name.
    pub name: &'a str,
    /// The key hash: the first 4 bytes of the decoded signature, big-endian.
    pub key_hash: u32,
    /// The signature proper: what follows the key hash.
    pub signature: Vec<u8>,
}

/// A parsed, not yet verified note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    /// The signed text, ending in a newline.
    pub text: &'a str,
    /// The signature lines, in order.
    pub signatures: Vec<Signature<'a>>,
}

/// Go's `isValidName`: non-empty, no spaces, no `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// Go's key hash: the first 4 bytes of SHA-256(`name` `\n` `key`), `key` being
/// the algorithm byte and the public key.
pub fn key_hash(name: &str, key: &[u8]) -> u32 {
    let d = sha256(&[name.as_bytes(), b"\n", key]);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Splits a note into its text and signature lines, with `note.Open`'s syntax
/// rules: valid UTF-8 without control characters but newlines, the last blank
/// line before the signatures, every signature line well formed, at most 100.
pub fn parse(msg: &[u8]) -> Result<Note<'_>, NoteError> {
    let s = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed)?;
    if s.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return Err(NoteError::Malformed);
    }
    let split = s.rfind("\n\n").ok_or(NoteError::Malformed)?;
    let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed);
    }
    let mut signatures = Vec::new();
    for (n, line) in sigs.lines().enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(NoteError::Malformed);
        }
        let line = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed)?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let sig = STANDARD.decode(b64).map_err(|_| NoteError::Malformed)?;
        if !is_valid_name(name) || b64.is_empty() || sig.len() < 5 {
            return Err(NoteError::Malformed);
        }
        let key_hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
        signatures.push(Signature { name, key_hash, signature: sig[4..].to_vec() });
    }
    Ok(Note { text, signatures })
}

/// x/mod's `note.Open` with one known key: the note's text when it verifies.
/// Stricter than Go in one way: every signature claimed by the key must
/// verify, not only the first of repeated ones.
pub fn open<'a>(msg: &'a [u8], verifier: &dyn Verifier) -> Result<&'a str, NoteError> {
    let note = parse(msg)?;
    let mut verified = false;
    for sig in &note.signatures {
        if !verifier.is_signer(sig.name, sig.key_hash) {
            continue;
        }
        if !verifier.verify(note.text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature { name: sig.name.to_string(), hash: sig.key_hash });
        }
        verified = true;
    }
    if verified {
        Ok(note.text)
    } else {
        Err(NoteError::Unverified(verifier.name().to_string()))
    }
}

/// A Go verifier key: a name and an Ed25519 public key.
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

impl VerifierKey {
    /// Parses `name+hash+key` (x/mod's `NewVerifier`).
    pub fn parse(vkey: &str) -> Result<VerifierKey, NoteError> {
        let bad = || NoteError::VerifierId(vkey.to_string());
        let (name, rest) = vkey.split_once('+').ok_or_else(bad)?;
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        let hash = u32::from_str_radix(hash16, 16).map_err(|_| bad())?;
        let key = STANDARD.decode(key64).map_err(|_| bad())?;
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

    /// The key's name (for the checksum database, the database name).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Verifier for VerifierKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_signer(&self, name: &str, key_hash: u32) -> bool {
        name == self.name && key_hash == self.hash
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.key).verify(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x/mod/sumdb/note's test key and note (note_test.go, TestOpen).
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn key_syntax() {
        assert!(matches!(VerifierKey::parse("nohash"), Err(NoteError::VerifierId(_))));
        assert!(matches!(
            VerifierKey::parse("a.example+00000000+AQ=="),
            Err(NoteError::VerifierHash(_)) | Err(NoteError::VerifierId(_))
        ));
    }

    #[test]
    fn go_test_vector() -> Result<(), NoteError> {
        let key = VerifierKey::parse(VKEY)?;
        let msg = format!("{TEXT}\n{SIG}");
        assert_eq!(open(msg.as_bytes(), &key), Ok(TEXT));
        // Signatures by unknown keys are skipped.
        let other = format!("{TEXT}\n\u{2014} Other AAAAAAAA\n{SIG}");
        assert_eq!(open(other.as_bytes(), &key), Ok(TEXT));
        assert!(matches!(
            open(format!("{TEXT}\n\u{2014} Other AAAAAAAA\n").as_bytes(), &key),
            Err(NoteError::Unverified(_))
        ));
        // A changed text no longer verifies, and that is an error, not a skip.
        let changed = msg.replacen("think", "thank", 1);
        assert!(matches!(open(changed.as_bytes(), &key), Err(NoteError::InvalidSignature { .. })));
        // Syntax.
        for bad in
            [TEXT.to_string(), format!("{TEXT}\n"), format!("{TEXT}\n{}", SIG.trim_end()), format!("{TEXT}\nx\n")]
        {
            assert_eq!(open(bad.as_bytes(), &key), Err(NoteError::Malformed), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn notes_parse() -> Result<(), NoteError> {
        let msg = format!("{TEXT}\n{SIG}");
        let note = parse(msg.as_bytes())?;
        assert_eq!((note.text, note.signatures.len()), (TEXT, 1));
        assert_eq!((note.signatures[0].name, note.signatures[0].key_hash), ("PeterNeumann", 0xc74f20a3));
        let many = format!("{TEXT}\n{}", "\u{2014} a AAAAAAAA\n".repeat(101));
        assert_eq!(parse(many.as_bytes()), Err(NoteError::Malformed));
        Ok(())
    }
}
