//! Small pieces that several reprove crates need and std does not have. A leaf: it
//! depends on no crate of ours and knows nothing of Go, images or attestations.
#![deny(missing_docs)]

pub mod fs;
pub mod setting;
pub mod time;

/// The SHA-256 of `data` in lower-case hex, the form every digest of ours is written in.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}
