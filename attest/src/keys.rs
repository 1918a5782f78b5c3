//! Signing keys and public keys: ECDSA P-256 (the default) and Ed25519.
//!
//! A [`Signer`] signs bytes; [`KeySigner`] is the in-memory implementation over a
//! PKCS#8 private key, and KMS or PKCS#11 signers can implement the same trait later.
//! [`PublicKey`] verifies, and reads and writes the PEM `PUBLIC KEY` (SPKI DER) that
//! cosign uses. ECDSA signatures are ASN.1 DER over SHA-256, as cosign makes them; the
//! verifier also accepts the fixed-width `r || s` form, which the DSSE test vectors use.
//!
//! The cryptography is ring's, which the workspace already builds for rustls and the
//! checksum database. The `sigstore` crate was considered: its key code comes with a
//! second set of RustCrypto curves, RSA, X.509 and, in its default features, an HTTP,
//! OAuth and TUF client; ring covers the two algorithms reprove needs with nothing new.
//! Private key bytes live in [`Secret`], which has no `Debug` and is never logged.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// The signature algorithms reprove signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA over NIST P-256 with SHA-256 (the default, as in cosign).
    EcdsaP256Sha256,
    /// Ed25519.
    Ed25519,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::Ed25519 => "ed25519",
        })
    }
}

/// Why a key could not be read, made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not a PEM block of the expected type.
    #[error("not a PEM {expected} block: {why}")]
    Pem {
        /// The PEM type that was expected.
        expected: &'static str,
        /// What was wrong.
        why: String,
    },
    /// The public key is neither an ECDSA P-256 nor an Ed25519 SPKI.
    #[error("unsupported public key: only ECDSA P-256 and Ed25519 SubjectPublicKeyInfo are supported")]
    UnsupportedPublicKey,
    /// The PKCS#8 private key could not be parsed for the algorithm.
    #[error("invalid {algorithm} PKCS#8 private key: {why}")]
    PrivateKey {
        /// The algorithm tried.
        algorithm: Algorithm,
        /// ring's reason.
        why: String,
    },
    /// Key generation or signing failed in the crypto library.
    #[error("{algorithm} {operation} failed")]
    Crypto {
        /// The algorithm used.
        algorithm: Algorithm,
        /// `key generation` or `signing`.
        operation: &'static str,
    },
    /// The signature does not verify under this key.
    #[error("signature does not verify under the {algorithm} key {key_id}")]
    BadSignature {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The key's id (see [`PublicKey::key_id`]).
        key_id: String,
    },
}

/// Secret bytes (a private key): no `Debug`, no `Display`, zeroed when dropped.
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The secret bytes; do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: black_box keeps these stores from being optimized away; copies
        // made elsewhere (by ring, by the allocator) are out of reach.
        for b in self.0.iter_mut() {
            *b = std::hint::black_box(0);
        }
    }
}

/// Something that signs bytes with a private key it may not reveal (file, KMS, token).
pub trait Signer {
    /// The public half, to put a key id hint in signatures and to check the result.
    fn public_key(&self) -> &PublicKey;
    /// Signs `message` (ECDSA: ASN.1 DER signature over its SHA-256).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ED25519_SPKI_PREFIX: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A public key that verifies signatures, with its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: Algorithm,
    /// The raw key: the uncompressed SEC1 point for P-256, 32 bytes for Ed25519.
    raw: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("algorithm", &self.algorithm).field("key_id", &self.key_id()).finish()
    }
}

impl PublicKey {
    /// A public key from its raw form: an uncompressed SEC1 point (65 bytes) for P-256,
    /// 32 bytes for Ed25519.
    pub fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Result<Self, KeyError> {
        let ok = match algorithm {
            Algorithm::EcdsaP256Sha256 => raw.len() == 65 && raw[0] == 0x04,
            Algorithm::Ed25519 => raw.len() == 32,
        };
        if !ok {
            return Err(KeyError::UnsupportedPublicKey);
        }
        Ok(PublicKey { algorithm, raw: raw.to_vec() })
    }

    /// Reads a DER SubjectPublicKeyInfo (P-256 with an uncompressed point, or Ed25519).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Some(raw) = der.strip_prefix(P256_SPKI_PREFIX) {
            PublicKey::from_raw(Algorithm::EcdsaP256Sha256, raw)
        } else if let Some(raw) = der.strip_prefix(ED25519_SPKI_PREFIX) {
            PublicKey::from_raw(Algorithm::Ed25519, raw)
        } else {
            Err(KeyError::UnsupportedPublicKey)
        }
    }

    /// Reads a PEM `PUBLIC KEY` block, as `cosign generate-key-pair` writes `cosign.pub`.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        PublicKey::from_spki_der(&pem_decode(text, "PUBLIC KEY")?)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let prefix = match self.algorithm {
            Algorithm::EcdsaP256Sha256 => P256_SPKI_PREFIX,
            Algorithm::Ed25519 => ED25519_SPKI_PREFIX,
        };
        [prefix, &self.raw].concat()
    }

    /// The PEM `PUBLIC KEY` block.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.to_spki_der())
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id reprove puts in DSSE `keyid` hints: the lower-case hex SHA-256 of
    /// the SPKI DER. A hint only: it narrows the keys to try and decides nothing.
    pub fn key_id(&self) -> String {
        crate::statement::sha256_hex(&self.to_spki_der())
    }

    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let ok = match self.algorithm {
            Algorithm::EcdsaP256Sha256 => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.raw).verify(message, signature).is_ok()
                    || (signature.len() == 64
                        && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.raw)
                            .verify(message, signature)
                            .is_ok())
            }
            Algorithm::Ed25519 => {
                UnparsedPublicKey::new(&signature::ED25519, &self.raw).verify(message, signature).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(KeyError::BadSignature { algorithm: self.algorithm, key_id: self.key_id() })
        }
    }
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A [`Signer`] over a private key held in memory.
pub struct KeySigner {
    pair: Pair,
    public: PublicKey,
    rng: SystemRandom,
}

impl KeySigner {
    /// Generates a key pair; returns the signer and its PKCS#8 DER private key (to store).
    pub fn generate(algorithm: Algorithm) -> Result<(KeySigner, Secret), KeyError> {
        let rng = SystemRandom::new();
        let crypto = KeyError::Crypto { algorithm, operation: "key generation" };
        let pkcs8 = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|_| crypto)?
            }
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| crypto)?,
        };
        let secret = Secret::new(pkcs8.as_ref().to_vec());
        Ok((KeySigner::from_pkcs8(algorithm, &secret)?, secret))
    }

    /// A signer from a PKCS#8 DER private key of `algorithm` (v1 or v2; for P-256 the
    /// key must carry its public point, as Go's `x509.MarshalPKCS8PrivateKey` writes it).
    pub fn from_pkcs8(algorithm: Algorithm, pkcs8: &Secret) -> Result<KeySigner, KeyError> {
        let rng = SystemRandom::new();
        let invalid = |e: ring::error::KeyRejected| KeyError::PrivateKey { algorithm, why: e.to_string() };
        let (pair, raw) = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.expose(), &rng)
                    .map_err(invalid)?;
                let raw = pair.public_key().as_ref().to_vec();
                (Pair::Ecdsa(pair), raw)
            }
            Algorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.expose()).map_err(invalid)?;
                let raw = pair.public_key().as_ref().to_vec();
                (Pair::Ed25519(pair), raw)
            }
        };
        Ok(KeySigner { pair, public: PublicKey::from_raw(algorithm, &raw)?, rng })
    }

    /// A signer from PKCS#8 DER of either algorithm, trying P-256 first.
    pub fn from_pkcs8_any(pkcs8: &Secret) -> Result<KeySigner, KeyError> {
        KeySigner::from_pkcs8(Algorithm::EcdsaP256Sha256, pkcs8)
            .or_else(|_| KeySigner::from_pkcs8(Algorithm::Ed25519, pkcs8))
    }
}

impl Signer for KeySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto { algorithm: self.public.algorithm, operation: "signing" }),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The PEM type cosign (v2) writes encrypted private keys under.
pub const PEM_SIGSTORE_PRIVATE_KEY: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM type older cosign releases wrote; read, never written.
pub const PEM_COSIGN_PRIVATE_KEY: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// The scrypt work factors cosign's encrypted keys use, as (N, r, p): the one cosign
/// writes first, then the others go-securesystemslib reads. Anything else is refused, so
/// a hostile key file cannot make reprove allocate gigabytes.
const SCRYPT_PARAMS: [(u64, u32, u32); 3] = [(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)];

/// Why an encrypted private key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file is not a PEM block of either encrypted private key type.
    #[error(
        "not an encrypted cosign private key: no PEM block {PEM_SIGSTORE_PRIVATE_KEY:?} or {PEM_COSIGN_PRIVATE_KEY:?}"
    )]
    NotAKeyFile,
    /// The PEM body is not the JSON cosign writes.
    #[error("malformed encrypted private key: {0}")]
    Malformed(String),
    /// The KDF or cipher is not one cosign uses.
    #[error("unsupported encrypted private key: {0}")]
    Unsupported(String),
    /// The password is wrong, or the ciphertext was changed.
    #[error("cannot decrypt the private key: wrong password or corrupted file")]
    Decrypt,
    /// The decrypted key is not a P-256 or Ed25519 PKCS#8 key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Randomness or key derivation failed.
    #[error("encrypting the private key failed: {0}")]
    Encrypt(&'static str),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: CipherParams,
    ciphertext: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CipherParams {
    name: String,
    nonce: String,
}

fn derive_key(password: &[u8], salt: &[u8], n: u64, r: u32, p: u32) -> Result<Secret, KeyFileError> {
    let unsupported = || KeyFileError::Unsupported(format!("scrypt parameters N={n} r={r} p={p}"));
    if !SCRYPT_PARAMS.contains(&(n, r, p)) {
        return Err(unsupported());
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32).map_err(|_| unsupported())?;
    let mut key = Secret::new(vec![0; 32]);
    scrypt::scrypt(password, salt, &params, &mut key.0).map_err(|_| KeyFileError::Encrypt("scrypt"))?;
    Ok(key)
}

/// Decrypts the JSON of cosign's encrypted key format (go-securesystemslib's
/// `encrypted` package): scrypt, then NaCl secretbox (XSalsa20-Poly1305).
pub(crate) fn decrypt_key_json(json: &[u8], password: &[u8]) -> Result<Secret, KeyFileError> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    let doc: EncryptedKey = serde_json::from_slice(json).map_err(|e| KeyFileError::Malformed(e.to_string()))?;
    if doc.kdf.name != "scrypt" {
        return Err(KeyFileError::Unsupported(format!("kdf {:?}", doc.kdf.name)));
    }
    if doc.cipher.name != "nacl/secretbox" {
        return Err(KeyFileError::Unsupported(format!("cipher {:?}", doc.cipher.name)));
    }
    let b64 = |field: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| KeyFileError::Malformed(format!("{field} is not base64: {e}")))
    };
    let salt = b64("kdf.salt", &doc.kdf.salt)?;
    let nonce = b64("cipher.nonce", &doc.cipher.nonce)?;
    let ciphertext = b64("ciphertext", &doc.ciphertext)?;
    if nonce.len() != 24 {
        return Err(KeyFileError::Malformed(format!("cipher.nonce is {} bytes, not 24", nonce.len())));
    }
    let key = derive_key(password, &salt, doc.kdf.params.n, doc.kdf.params.r, doc.kdf.params.p)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key.expose()).map_err(|_| KeyFileError::Decrypt)?;
    let plain = cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| KeyFileError::Decrypt)?;
    Ok(Secret::new(plain))
}

/// Encrypts `plaintext` as cosign does: random 32-byte salt, scrypt N=32768 r=8 p=1,
/// random 24-byte nonce, NaCl secretbox; returns the JSON.
pub(crate) fn encrypt_key_json(plaintext: &Secret, password: &[u8]) -> Result<Vec<u8>, KeyFileError> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    use ring::rand::SecureRandom as _;
    let rng = SystemRandom::new();
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rng.fill(&mut salt).map_err(|_| KeyFileError::Encrypt("random salt"))?;
    rng.fill(&mut nonce).map_err(|_| KeyFileError::Encrypt("random nonce"))?;
    let (n, r, p) = SCRYPT_PARAMS[0];
    let key = derive_key(password, &salt, n, r, p)?;
    let cipher =
        crypto_secretbox::XSalsa20Poly1305::new_from_slice(key.expose()).map_err(|_| KeyFileError::Encrypt("key"))?;
    let ciphertext = cipher
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), plaintext.expose())
        .map_err(|_| KeyFileError::Encrypt("secretbox"))?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let doc = EncryptedKey {
        kdf: Kdf { name: "scrypt".into(), params: ScryptParams { n, r, p }, salt: b64(&salt) },
        cipher: CipherParams { name: "nacl/secretbox".into(), nonce: b64(&nonce) },
        ciphertext: b64(&ciphertext),
    };
    serde_json::to_vec(&doc).map_err(|e| KeyFileError::Malformed(e.to_string()))
}

/// Reads a cosign encrypted private key file (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, or
/// the older `ENCRYPTED COSIGN PRIVATE KEY`) with `password`.
pub fn read_encrypted_private_key(pem: &str, password: &[u8]) -> Result<KeySigner, KeyFileError> {
    let json = pem_decode(pem, PEM_SIGSTORE_PRIVATE_KEY)
        .or_else(|_| pem_decode(pem, PEM_COSIGN_PRIVATE_KEY))
        .map_err(|_| KeyFileError::NotAKeyFile)?;
    let pkcs8 = decrypt_key_json(&json, password)?;
    Ok(KeySigner::from_pkcs8_any(&pkcs8)?)
}

/// Writes `pkcs8` as a cosign encrypted private key file (PEM
/// `ENCRYPTED SIGSTORE PRIVATE KEY`), as `cosign generate-key-pair` does.
pub fn write_encrypted_private_key(pkcs8: &Secret, password: &[u8]) -> Result<String, KeyFileError> {
    Ok(pem_encode(PEM_SIGSTORE_PRIVATE_KEY, &encrypt_key_json(pkcs8, password)?))
}

/// Encodes one PEM block with 64-column base64 lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes the first PEM block of type `label` in `text`.
pub(crate) fn pem_decode(text: &str, label: &'static str) -> Result<Vec<u8>, KeyError> {
    let err = |why: &str| KeyError::Pem { expected: label, why: why.to_owned() };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or_else(|| err("no BEGIN line"))? + begin.len();
    let rest = &text[start..];
    let stop = rest.find(&end).ok_or_else(|| err("no END line"))?;
    let body: String = rest[..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| err(&format!("bad base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_verify_and_round_trip_pem() -> Result<(), KeyError> {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (signer, secret) = KeySigner::generate(algorithm)?;
            let sig = signer.sign(b"message")?;
            let public = PublicKey::from_pem(&signer.public_key().to_pem())?;
            assert_eq!(&public, signer.public_key());
            public.verify(b"message", &sig)?;
            assert!(matches!(public.verify(b"messagf", &sig), Err(KeyError::BadSignature { .. })));
            let again = KeySigner::from_pkcs8_any(&secret)?;
            assert_eq!(again.public_key(), &public);
            assert_eq!(public.key_id().len(), 64);
        }
        Ok(())
    }

    /// go-securesystemslib's own vector (encrypted_test.go, TestDecrypt): the format
    /// cosign's key files wrap.
    #[test]
    fn decrypts_the_securesystemslib_vector() -> Result<(), KeyFileError> {
        let json = br#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#;
        assert_eq!(decrypt_key_json(json, b"supersecret")?.expose(), b"reallyimportant");
        assert!(matches!(decrypt_key_json(json, b"supersecreT"), Err(KeyFileError::Decrypt)));
        let hostile = String::from_utf8_lossy(json).replace("32768", "1073741824");
        assert!(matches!(decrypt_key_json(hostile.as_bytes(), b"supersecret"), Err(KeyFileError::Unsupported(_))));
        Ok(())
    }

    #[test]
    fn encrypted_key_files_round_trip_for_both_algorithms() -> Result<(), KeyFileError> {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (signer, pkcs8) = KeySigner::generate(algorithm)?;
            let pem = write_encrypted_private_key(&pkcs8, b"pw")?;
            assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
            let back = read_encrypted_private_key(&pem, b"pw")?;
            assert_eq!(back.public_key(), signer.public_key());
            assert!(matches!(read_encrypted_private_key(&pem, b"pW"), Err(KeyFileError::Decrypt)));
            // The older PEM type reads too.
            let old = pem.replace("SIGSTORE", "COSIGN");
            assert_eq!(read_encrypted_private_key(&old, b"pw")?.public_key(), signer.public_key());
        }
        assert!(matches!(read_encrypted_private_key("x", b""), Err(KeyFileError::NotAKeyFile)));
        Ok(())
    }

    #[test]
    fn rejects_other_keys_and_bad_pem() {
        assert!(matches!(PublicKey::from_spki_der(&[0x30, 0x00]), Err(KeyError::UnsupportedPublicKey)));
        assert!(matches!(PublicKey::from_pem("nothing"), Err(KeyError::Pem { .. })));
        let wrong_label = pem_encode("PRIVATE KEY", &[1, 2, 3]);
        assert!(matches!(PublicKey::from_pem(&wrong_label), Err(KeyError::Pem { .. })));
    }
}
