//! Signing keys and public keys: ECDSA P-256 (the default) and Ed25519.
//!
//! A [`Signer`] signs bytes; [`KeySigner`] is the in-memory implementation over a
//! PKCS#8 private key, and KMS or PKCS#11 signers can implement the same trait later.
//! [`PublicKey`] verifies, and reads and writes the PEM `PUBLIC KEY` (SPKI DER) that
//! cosign uses. ECDSA signatures are ASN.1 DER over SHA-256, as cosign makes them; the
//! verifier also accepts the fixed-width `r || s` form, which the DSSE test vectors use.
//!
//! The cryptography is the `sigstore` crate's: key generation, PKCS#8 and SPKI parsing,
//! signing and cosign's encrypted key format (`kdf`: scrypt, then NaCl
//! secretbox). That crate needs a crypto backend and has two, OpenSSL (`native-tls`,
//! the system library; linked statically where `.cargo/config.toml` says so) and aws-lc-rs (`rustls-tls`, a C build of
//! its own); reprove uses the OpenSSL one, which builds no C library (see ARCHITECTURE.md).
//! Verification, the hot path of `reprove attest verify`, is ring's (see [`PublicKey::verify`]).
//! What stays here: the choice of algorithms (P-256 and Ed25519; RSA and the other
//! curves are a typed refusal), the PEM text (LF line endings and 64 columns as cosign
//! writes them; the crate's encoder writes CRLF), the checks that keep hostile key files
//! from reaching code that would panic or allocate without bound (see
//! `decrypt_key_json`), and the canonical SPKI that key ids hash.
//! Private key bytes live in [`Secret`], which has no `Debug` and is never logged.

use base64::Engine as _;
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::ed25519::Ed25519Keys;
use sigstore::crypto::signing_key::{kdf, SigStoreKeyPair, SigStoreSigner};
use sigstore::crypto::{CosignVerificationKey, SigningScheme};
use sigstore::errors::SigstoreError;

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
    /// The bytes are not a DER SubjectPublicKeyInfo.
    #[error("not a public key (DER SubjectPublicKeyInfo): {why}")]
    NotPublicKey {
        /// The parser's reason.
        why: String,
    },
    /// A well-formed key of a type reprove does not sign or verify with (RSA, ECDSA
    /// P-384 or P-521, another algorithm).
    #[error("unsupported key type {key_type}: reprove signs and verifies with ECDSA P-256 and Ed25519 keys only")]
    UnsupportedKeyType {
        /// The key's type, as far as it could be told.
        key_type: String,
    },
    /// A P-256 or Ed25519 public key in a form other than the one cosign and Go write
    /// (a compressed point, explicit parameters): key ids hash that one form.
    #[error(
        "{algorithm} public key is not in the canonical SubjectPublicKeyInfo form (named curve, uncompressed point)"
    )]
    NonCanonicalPublicKey {
        /// The key's algorithm.
        algorithm: Algorithm,
    },
    /// The PKCS#8 private key could not be parsed for the algorithm.
    #[error("invalid {algorithm} PKCS#8 private key: {why}")]
    PrivateKey {
        /// The algorithm tried.
        algorithm: Algorithm,
        /// The crypto library's reason.
        why: String,
    },
    /// The bytes are not a PKCS#8 private key of any type the crypto library knows.
    #[error("not a valid ECDSA, Ed25519 or RSA PKCS#8 private key")]
    NotPrivateKey,
    /// Key generation or signing failed in the crypto library.
    #[error("{algorithm} {operation} failed: {why}")]
    Crypto {
        /// The algorithm used.
        algorithm: Algorithm,
        /// `key generation` or `signing`.
        operation: &'static str,
        /// The crypto library's reason.
        why: String,
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
        // made elsewhere (by the crypto library, by the allocator) are out of reach.
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
#[derive(Clone)]
pub struct PublicKey {
    algorithm: Algorithm,
    /// The canonical DER SubjectPublicKeyInfo (what key ids hash).
    spki: Vec<u8>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.spki == other.spki
    }
}

impl Eq for PublicKey {}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("algorithm", &self.algorithm).field("key_id", &self.key_id()).finish()
    }
}

impl PublicKey {
    /// A public key from its raw form: an uncompressed SEC1 point (65 bytes) for P-256,
    /// 32 bytes for Ed25519.
    pub fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Result<Self, KeyError> {
        let prefix = match algorithm {
            Algorithm::EcdsaP256Sha256 if raw.len() == 65 && raw[0] == 0x04 => P256_SPKI_PREFIX,
            Algorithm::Ed25519 if raw.len() == 32 => ED25519_SPKI_PREFIX,
            _ => return Err(KeyError::NonCanonicalPublicKey { algorithm }),
        };
        PublicKey::from_spki_der(&[prefix, raw].concat())
    }

    /// Reads a DER SubjectPublicKeyInfo: P-256 (named curve, uncompressed point) or
    /// Ed25519. Other well-formed keys (RSA, P-384, …) are
    /// [`KeyError::UnsupportedKeyType`].
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = CosignVerificationKey::try_from_der(der).map_err(|e| match e {
            SigstoreError::PublicKeyUnsupportedAlgorithmError(why) => KeyError::UnsupportedKeyType { key_type: why },
            other => KeyError::NotPublicKey { why: other.to_string() },
        })?;
        let (algorithm, prefix, raw_len) = match &key {
            CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => (Algorithm::EcdsaP256Sha256, P256_SPKI_PREFIX, 65),
            CosignVerificationKey::ED25519(_) => (Algorithm::Ed25519, ED25519_SPKI_PREFIX, 32),
            other => return Err(KeyError::UnsupportedKeyType { key_type: verification_key_type(other).into() }),
        };
        // The crate re-encodes what it parsed; the canonical form is the one Go's
        // x509.MarshalPKIXPublicKey writes, and the only one key ids are made from.
        match der.strip_prefix(prefix) {
            Some(raw) if raw.len() == raw_len && (algorithm == Algorithm::Ed25519 || raw[0] == 0x04) => {}
            _ => return Err(KeyError::NonCanonicalPublicKey { algorithm }),
        }
        Ok(PublicKey { algorithm, spki: der.to_vec() })
    }

    /// Reads a PEM `PUBLIC KEY` block, as `cosign generate-key-pair` writes `cosign.pub`.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        PublicKey::from_spki_der(&pem_decode(text, "PUBLIC KEY")?)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        self.spki.clone()
    }

    /// The PEM `PUBLIC KEY` block.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id reprove puts in DSSE `keyid` hints: the lower-case hex SHA-256 of
    /// the SPKI DER. A hint only: it narrows the keys to try and decides nothing.
    pub fn key_id(&self) -> String {
        crate::statement::sha256_hex(&self.spki)
    }

    /// Checks `signature` over `message`.
    ///
    /// With ring, not the `sigstore` crate: its OpenSSL backend re-reads the key on
    /// every call and initialises OpenSSL first, which made `reprove attest verify`
    /// about 5 ms slower per invocation (BENCHMARKS.md h). The key was parsed and
    /// checked by the crate in [`PublicKey::from_spki_der`]; both libraries verify
    /// the same standard signatures, and the cosign and DSSE interop tests run
    /// through this function.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, ED25519};
        let ok = match self.algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let raw = &self.spki[P256_SPKI_PREFIX.len()..];
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, raw).verify(message, signature).is_ok()
                    || UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, raw).verify(message, signature).is_ok()
            }
            Algorithm::Ed25519 => {
                let raw = &self.spki[ED25519_SPKI_PREFIX.len()..];
                UnparsedPublicKey::new(&ED25519, raw).verify(message, signature).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(KeyError::BadSignature { algorithm: self.algorithm, key_id: self.key_id() })
        }
    }
}

fn verification_key_type(key: &CosignVerificationKey) -> &'static str {
    match key {
        CosignVerificationKey::RSA_PSS_SHA256(_) | CosignVerificationKey::RSA_PKCS1_SHA256(_) => "RSA",
        CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => "ECDSA P-256",
        CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_) => "ECDSA P-384",
        CosignVerificationKey::ECDSA_P521_SHA512_ASN1(_) => "ECDSA P-521",
        CosignVerificationKey::ED25519(_) => "Ed25519",
    }
}

/// A [`Signer`] over a private key held in memory.
pub struct KeySigner {
    inner: SigStoreSigner,
    public: PublicKey,
}

fn generation_failed(algorithm: Algorithm) -> impl Fn(SigstoreError) -> KeyError {
    move |e| KeyError::Crypto { algorithm, operation: "key generation", why: e.to_string() }
}

impl KeySigner {
    /// Generates a key pair; returns the signer and its PKCS#8 DER private key (to store).
    pub fn generate(algorithm: Algorithm) -> Result<(KeySigner, Secret), KeyError> {
        let failed = generation_failed(algorithm);
        let pair = match algorithm {
            Algorithm::EcdsaP256Sha256 => SigStoreKeyPair::ECDSA(ECDSAKeys::new(EllipticCurve::P256).map_err(&failed)?),
            Algorithm::Ed25519 => SigStoreKeyPair::ED25519(Ed25519Keys::new().map_err(&failed)?),
        };
        let secret = Secret::new(pair.private_key_to_der().map_err(&failed)?.to_vec());
        Ok((KeySigner::from_key_pair(pair)?, secret))
    }

    /// A signer from a PKCS#8 DER private key of `algorithm` (v1 or v2, with or
    /// without its public key, as Go's `x509.MarshalPKCS8PrivateKey` and OpenSSL write
    /// them).
    pub fn from_pkcs8(algorithm: Algorithm, pkcs8: &Secret) -> Result<KeySigner, KeyError> {
        let invalid = |e: SigstoreError| KeyError::PrivateKey { algorithm, why: e.to_string() };
        let pair = match algorithm {
            Algorithm::EcdsaP256Sha256 => SigStoreKeyPair::ECDSA(ECDSAKeys::from_der(pkcs8.expose()).map_err(invalid)?),
            Algorithm::Ed25519 => SigStoreKeyPair::ED25519(Ed25519Keys::from_der(pkcs8.expose()).map_err(invalid)?),
        };
        KeySigner::from_key_pair(pair)
    }

    /// A signer from PKCS#8 DER of either algorithm. A well-formed key of another type
    /// (RSA, ECDSA P-384 or P-521) is [`KeyError::UnsupportedKeyType`].
    pub fn from_pkcs8_any(pkcs8: &Secret) -> Result<KeySigner, KeyError> {
        let pair = SigStoreKeyPair::from_der(pkcs8.expose()).map_err(|_| KeyError::NotPrivateKey)?;
        KeySigner::from_key_pair(pair)
    }

    fn from_key_pair(pair: SigStoreKeyPair) -> Result<KeySigner, KeyError> {
        let (algorithm, scheme) = match &pair {
            SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => {
                (Algorithm::EcdsaP256Sha256, SigningScheme::ECDSA_P256_SHA256_ASN1)
            }
            SigStoreKeyPair::ED25519(_) => (Algorithm::Ed25519, SigningScheme::ED25519),
            SigStoreKeyPair::ECDSA(ECDSAKeys::P384(_)) => {
                return Err(KeyError::UnsupportedKeyType { key_type: "ECDSA P-384".into() })
            }
            SigStoreKeyPair::ECDSA(ECDSAKeys::P521(_)) => {
                return Err(KeyError::UnsupportedKeyType { key_type: "ECDSA P-521".into() })
            }
            SigStoreKeyPair::RSA(_) => return Err(KeyError::UnsupportedKeyType { key_type: "RSA".into() }),
        };
        let invalid = |e: SigstoreError| KeyError::PrivateKey { algorithm, why: e.to_string() };
        let spki = pair.public_key_to_der().map_err(invalid)?;
        let public = PublicKey::from_spki_der(&spki)?;
        let inner = pair.to_sigstore_signer(&scheme).map_err(invalid)?;
        Ok(KeySigner { inner, public })
    }
}

impl Signer for KeySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.inner.sign(message).map_err(|e| KeyError::Crypto {
            algorithm: self.public.algorithm,
            operation: "signing",
            why: e.to_string(),
        })
    }
}

/// The PEM type cosign (v2) writes encrypted private keys under.
pub const PEM_SIGSTORE_PRIVATE_KEY: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM type older cosign releases wrote; read, never written.
pub const PEM_COSIGN_PRIVATE_KEY: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// The scrypt work factors an encrypted key may use, as (N, r, p): the one cosign
/// writes, then the other the `sigstore` crate's KDF accepts. Checked before the KDF
/// runs, so that the reason for a refusal is precise.
const SCRYPT_PARAMS: [(u64, u32, u32); 2] = [
    (kdf::SCRYPT_N_LOW as u64, kdf::SCRYPT_R, kdf::SCRYPT_P),
    (kdf::SCRYPT_N_HIGH as u64, kdf::SCRYPT_R, kdf::SCRYPT_P),
];

/// Why an encrypted private key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file has no PEM block of either encrypted private key type.
    #[error(
        "not an encrypted cosign private key: no PEM block {PEM_SIGSTORE_PRIVATE_KEY:?} or {PEM_COSIGN_PRIVATE_KEY:?}{}",
        found.as_ref().map(|l| format!(" (found {l:?})")).unwrap_or_default()
    )]
    NotAKeyFile {
        /// The type of the first PEM block in the file, if it has one.
        found: Option<String>,
    },
    /// The PEM body is not the JSON cosign writes.
    #[error("malformed encrypted private key: {0}")]
    Malformed(String),
    /// The KDF or cipher is not one cosign uses.
    #[error("unsupported encrypted private key: {0}")]
    Unsupported(String),
    /// The password is wrong, or the ciphertext was changed.
    #[error("cannot decrypt the private key: wrong password or corrupted file")]
    Decrypt,
    /// The PEM is malformed, or the decrypted key is not a P-256 or Ed25519 PKCS#8 key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Randomness or key derivation failed.
    #[error("encrypting the private key failed: {0}")]
    Encrypt(String),
}

/// The shape of cosign's encrypted key JSON, read only to check it before the
/// `sigstore` crate's KDF sees it.
#[derive(serde::Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: CipherParams,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(serde::Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
struct CipherParams {
    name: String,
    nonce: String,
}

/// Decrypts the JSON of cosign's encrypted key format (go-securesystemslib's
/// `encrypted` package: scrypt, then NaCl secretbox) with the `sigstore` crate's KDF.
///
/// The document is checked first: names, base64, scrypt parameters (so a hostile file
/// cannot make the KDF allocate gigabytes) and the nonce length, which the crate's
/// secretbox would otherwise panic on. What can then still fail is the authenticator:
/// a wrong password or a changed byte.
pub(crate) fn decrypt_key_json(json: &[u8], password: &[u8]) -> Result<Secret, KeyFileError> {
    let doc: EncryptedKey = serde_json::from_slice(json).map_err(|e| KeyFileError::Malformed(e.to_string()))?;
    if doc.kdf.name != kdf::NAME_SCRYPT {
        return Err(KeyFileError::Unsupported(format!("kdf {:?}", doc.kdf.name)));
    }
    if doc.cipher.name != kdf::NAME_SECRET_BOX {
        return Err(KeyFileError::Unsupported(format!("cipher {:?}", doc.cipher.name)));
    }
    let b64 = |field: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| KeyFileError::Malformed(format!("{field} is not base64: {e}")))
    };
    b64("kdf.salt", &doc.kdf.salt)?;
    let nonce = b64("cipher.nonce", &doc.cipher.nonce)?;
    b64("ciphertext", &doc.ciphertext)?;
    if nonce.len() != kdf::BOX_NONCE_SIZE as usize {
        return Err(KeyFileError::Malformed(format!(
            "cipher.nonce is {} bytes, not {}",
            nonce.len(),
            kdf::BOX_NONCE_SIZE
        )));
    }
    let (n, r, p) = (doc.kdf.params.n, doc.kdf.params.r, doc.kdf.params.p);
    if !SCRYPT_PARAMS.contains(&(n, r, p)) {
        return Err(KeyFileError::Unsupported(format!("scrypt parameters N={n} r={r} p={p}")));
    }
    kdf::decrypt(json, password).map(Secret::new).map_err(|_| KeyFileError::Decrypt)
}

/// Encrypts `plaintext` as cosign does, with the `sigstore` crate's KDF: random
/// 32-byte salt, scrypt N=32768 r=8 p=1, random 24-byte nonce, NaCl secretbox;
/// returns the JSON.
pub(crate) fn encrypt_key_json(plaintext: &Secret, password: &[u8]) -> Result<Vec<u8>, KeyFileError> {
    kdf::encrypt(plaintext.expose(), password).map_err(|e| KeyFileError::Encrypt(e.to_string()))
}

/// Reads a cosign encrypted private key file (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, or
/// the older `ENCRYPTED COSIGN PRIVATE KEY`) with `password`.
pub fn read_encrypted_private_key(pem: &str, password: &[u8]) -> Result<KeySigner, KeyFileError> {
    let label = [PEM_SIGSTORE_PRIVATE_KEY, PEM_COSIGN_PRIVATE_KEY]
        .into_iter()
        .find(|label| pem.contains(&format!("-----BEGIN {label}-----")))
        .ok_or_else(|| KeyFileError::NotAKeyFile { found: first_pem_label(pem) })?;
    let json = pem_decode(pem, label)?;
    let pkcs8 = decrypt_key_json(&json, password)?;
    Ok(KeySigner::from_pkcs8_any(&pkcs8)?)
}

/// Writes `pkcs8` as a cosign encrypted private key file (PEM
/// `ENCRYPTED SIGSTORE PRIVATE KEY`), as `cosign generate-key-pair` does.
pub fn write_encrypted_private_key(pkcs8: &Secret, password: &[u8]) -> Result<String, KeyFileError> {
    Ok(pem_encode(PEM_SIGSTORE_PRIVATE_KEY, &encrypt_key_json(pkcs8, password)?))
}

/// The type of the first PEM block in `text` (`-----BEGIN TYPE-----`), if any.
fn first_pem_label(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    let label = &rest[..rest.find("-----")?];
    (label.len() <= 64 && !label.contains('\n')).then(|| label.to_owned())
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
    use sigstore::crypto::signing_key::rsa::keypair::RSAKeys;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn both_algorithms_sign_verify_and_round_trip_pem() -> Result<(), KeyError> {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (signer, secret) = KeySigner::generate(algorithm)?;
            let sig = signer.sign(b"message")?;
            let public = PublicKey::from_pem(&signer.public_key().to_pem())?;
            assert_eq!(&public, signer.public_key());
            assert_eq!(public.algorithm(), algorithm);
            public.verify(b"message", &sig)?;
            assert!(matches!(public.verify(b"messagf", &sig), Err(KeyError::BadSignature { .. })));
            let again = KeySigner::from_pkcs8_any(&secret)?;
            assert_eq!(again.public_key(), &public);
            assert_eq!(KeySigner::from_pkcs8(algorithm, &secret)?.public_key(), &public);
            assert_eq!(public.key_id().len(), 64);
            assert_eq!(public.to_pem().matches('\n').count(), public.to_pem().lines().count());
        }
        Ok(())
    }

    /// A DER ECDSA signature as fixed-width `r || s`.
    fn der_to_fixed(der: &[u8]) -> Option<Vec<u8>> {
        let body = der.strip_prefix(&[0x30])?;
        let mut rest = body.get(1..)?;
        let mut out = Vec::new();
        for _ in 0..2 {
            let len = usize::from(*rest.get(1)?);
            let int = rest.get(2..2 + len)?;
            let int = &int[int.iter().position(|&b| b != 0).unwrap_or(int.len())..];
            out.extend(std::iter::repeat_n(0, 32 - int.len()));
            out.extend_from_slice(int);
            rest = &rest[2 + len..];
        }
        Some(out)
    }

    #[test]
    fn p256_verifies_der_and_fixed_width_signatures() -> TestResult {
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        for i in 0..32u8 {
            let message = [i; 7];
            let der = signer.sign(&message)?;
            let fixed = der_to_fixed(&der).ok_or("not DER")?;
            assert_eq!(fixed.len(), 64);
            signer.public_key().verify(&message, &fixed)?;
            assert!(signer.public_key().verify(b"other", &fixed).is_err());
        }
        assert!(signer.public_key().verify(b"m", &[0; 63]).is_err());
        assert!(signer.public_key().verify(b"m", &[0; 64]).is_err());
        Ok(())
    }

    /// go-securesystemslib's own vector (encrypted_test.go, TestDecrypt): the format
    /// cosign's key files wrap.
    #[test]
    fn decrypts_the_securesystemslib_vector() -> Result<(), KeyFileError> {
        let json = br#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#;
        assert_eq!(decrypt_key_json(json, b"supersecret")?.expose(), b"reallyimportant");
        assert!(matches!(decrypt_key_json(json, b"supersecreT"), Err(KeyFileError::Decrypt)));
        let text = String::from_utf8_lossy(json);
        let hostile = text.replace("32768", "1073741824");
        assert!(matches!(decrypt_key_json(hostile.as_bytes(), b"supersecret"), Err(KeyFileError::Unsupported(_))));
        // A nonce of the wrong length would panic in the crate's secretbox: refused first.
        for nonce in ["", "AAAA", "2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5IkAAAA"] {
            let short = text.replace("2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik", nonce);
            let err = decrypt_key_json(short.as_bytes(), b"supersecret").err();
            assert!(matches!(err, Some(KeyFileError::Malformed(ref m)) if m.contains("nonce")), "{err:?}");
        }
        let changed = text.replace("SEW6", "SEW7");
        assert!(matches!(decrypt_key_json(changed.as_bytes(), b"supersecret"), Err(KeyFileError::Decrypt)));
        let truncated = text.replace("SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ==", "");
        assert!(matches!(decrypt_key_json(truncated.as_bytes(), b"supersecret"), Err(KeyFileError::Decrypt)));
        for (from, to) in [("scrypt", "argon2"), ("nacl/secretbox", "aes-gcm")] {
            let other = text.replace(from, to);
            assert!(matches!(decrypt_key_json(other.as_bytes(), b""), Err(KeyFileError::Unsupported(_))));
        }
        for bad in ["", "{}", "[1]", &text.replace("N9a7", "N9a!")] {
            assert!(matches!(decrypt_key_json(bad.as_bytes(), b""), Err(KeyFileError::Malformed(_))), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn encrypted_key_files_round_trip_for_both_algorithms() -> Result<(), KeyFileError> {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (signer, pkcs8) = KeySigner::generate(algorithm)?;
            let pem = write_encrypted_private_key(&pkcs8, b"pw")?;
            assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
            assert!(!pem.contains('\r'));
            let back = read_encrypted_private_key(&pem, b"pw")?;
            assert_eq!(back.public_key(), signer.public_key());
            assert!(matches!(read_encrypted_private_key(&pem, b"pW"), Err(KeyFileError::Decrypt)));
            // The older PEM type reads too.
            let old = pem.replace("SIGSTORE", "COSIGN");
            assert_eq!(read_encrypted_private_key(&old, b"pw")?.public_key(), signer.public_key());
        }
        Ok(())
    }

    #[test]
    fn a_file_that_is_not_a_cosign_key_is_named() -> TestResult {
        assert!(matches!(read_encrypted_private_key("x", b""), Err(KeyFileError::NotAKeyFile { found: None })));
        let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
        let err = read_encrypted_private_key(&signer.public_key().to_pem(), b"").err().ok_or("accepted")?;
        assert!(matches!(err, KeyFileError::NotAKeyFile { found: Some(ref l) } if l == "PUBLIC KEY"), "{err:?}");
        assert!(err.to_string().contains("(found \"PUBLIC KEY\")"), "{err}");
        let plain = pem_encode("PRIVATE KEY", b"not a key");
        let err = read_encrypted_private_key(&plain, b"").err().ok_or("accepted")?;
        assert!(matches!(err, KeyFileError::NotAKeyFile { found: Some(ref l) } if l == "PRIVATE KEY"), "{err:?}");
        Ok(())
    }

    #[test]
    fn malformed_pem_is_a_pem_error() -> TestResult {
        let (_, pkcs8) = KeySigner::generate(Algorithm::Ed25519)?;
        let pem = write_encrypted_private_key(&pkcs8, b"pw")?;
        let no_end = pem.replace("-----END", "-----FIN");
        let bad_b64 = pem.replacen('\n', "\n!", 1);
        for text in [no_end, bad_b64] {
            let err = read_encrypted_private_key(&text, b"pw").err().ok_or("accepted")?;
            assert!(matches!(err, KeyFileError::Key(KeyError::Pem { .. })), "{err:?}");
        }
        let not_json = pem_encode(PEM_SIGSTORE_PRIVATE_KEY, b"\x00garbage");
        let err = read_encrypted_private_key(&not_json, b"pw").err().ok_or("accepted")?;
        assert!(matches!(err, KeyFileError::Malformed(_)), "{err:?}");
        Ok(())
    }

    #[test]
    fn rsa_and_other_curves_are_a_typed_refusal() -> TestResult {
        let rsa = RSAKeys::new(2048)?;
        let p384 = ECDSAKeys::new(EllipticCurve::P384)?;
        let pairs = [("RSA", SigStoreKeyPair::RSA(rsa)), ("ECDSA P-384", SigStoreKeyPair::ECDSA(p384))];
        for (key_type, pair) in pairs {
            let pkcs8 = Secret::new(pair.private_key_to_der()?.to_vec());
            let file = write_encrypted_private_key(&pkcs8, b"pw")?;
            let err = read_encrypted_private_key(&file, b"pw").err().ok_or("accepted")?;
            assert!(
                matches!(err, KeyFileError::Key(KeyError::UnsupportedKeyType { key_type: ref t }) if t == key_type),
                "{err:?}"
            );
            assert!(err.to_string().contains(key_type), "{err}");
            let public = pem_encode("PUBLIC KEY", &pair.public_key_to_der()?);
            let err = PublicKey::from_pem(&public).err().ok_or("accepted")?;
            assert!(matches!(err, KeyError::UnsupportedKeyType { key_type: ref t } if t == key_type), "{err:?}");
            let err = KeySigner::from_pkcs8(Algorithm::EcdsaP256Sha256, &pkcs8).err();
            assert!(matches!(err, Some(KeyError::PrivateKey { .. } | KeyError::UnsupportedKeyType { .. })), "{err:?}");
        }
        assert!(matches!(KeySigner::from_pkcs8_any(&Secret::new(b"not pkcs8".to_vec())), Err(KeyError::NotPrivateKey)));
        Ok(())
    }

    #[test]
    fn rejects_other_keys_and_bad_pem() {
        assert!(matches!(PublicKey::from_spki_der(&[0x30, 0x00]), Err(KeyError::NotPublicKey { .. })));
        assert!(matches!(PublicKey::from_pem("nothing"), Err(KeyError::Pem { .. })));
        let wrong_label = pem_encode("PRIVATE KEY", &[1, 2, 3]);
        assert!(matches!(PublicKey::from_pem(&wrong_label), Err(KeyError::Pem { .. })));
        assert!(matches!(
            PublicKey::from_raw(Algorithm::EcdsaP256Sha256, &[2; 33]),
            Err(KeyError::NonCanonicalPublicKey { .. })
        ));
        assert!(matches!(
            PublicKey::from_raw(Algorithm::Ed25519, &[0; 31]),
            Err(KeyError::NonCanonicalPublicKey { .. })
        ));
    }

    /// Truncated and bit-flipped keys and signatures: every outcome is a value, never a
    /// panic (the crate's parsers and the backend see all of them).
    #[test]
    fn hostile_keys_and_signatures_do_not_panic() -> TestResult {
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (signer, pkcs8) = KeySigner::generate(algorithm)?;
            let spki = signer.public_key().to_spki_der();
            let sig = signer.sign(b"m")?;
            for cut in 0..spki.len() {
                assert!(PublicKey::from_spki_der(&spki[..cut]).is_err());
            }
            for i in 0..spki.len() * 8 {
                let mut flipped = spki.clone();
                flipped[i / 8] ^= 1 << (i % 8);
                if let Ok(key) = PublicKey::from_spki_der(&flipped) {
                    assert!(key.verify(b"m", &sig).is_err());
                }
            }
            let der = pkcs8.expose();
            for cut in 0..der.len() {
                let _ = KeySigner::from_pkcs8_any(&Secret::new(der[..cut].to_vec()));
                let _ = KeySigner::from_pkcs8(algorithm, &Secret::new(der[..cut].to_vec()));
            }
            for i in 0..der.len() * 8 {
                let mut flipped = der.to_vec();
                flipped[i / 8] ^= 1 << (i % 8);
                let _ = KeySigner::from_pkcs8_any(&Secret::new(flipped));
            }
            for cut in 0..sig.len() {
                assert!(signer.public_key().verify(b"m", &sig[..cut]).is_err());
            }
            assert!(signer.public_key().verify(b"m", &[0xff; 64]).is_err());
            assert!(signer.public_key().verify(b"m", &[]).is_err());
        }
        Ok(())
    }
}
