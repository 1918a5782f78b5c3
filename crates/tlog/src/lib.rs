//! Transparency logs: signed notes and RFC 6962 Merkle proofs, as pure functions
//! over bytes. Go's checksum database (modfetch's `sumdb`) and Rekor entries
//! (attest's `tlog`) share them.
//!
//! - [`merkle`]: RFC 6962 leaf and node hashes; inclusion proofs as RFC 9162
//!   audit paths or as the stored hashes `golang.org/x/mod/sumdb/tlog` reads
//!   from tiles; consistency proofs.
//! - [`tile`]: which tiles hold the stored hashes, and the hashes they give
//!   (`tlog.Tile`, C2SP tlog-tiles).
//! - [`note`]: signed notes (`golang.org/x/mod/sumdb/note`, C2SP signed-note):
//!   parsing, opening with a verifier, and Go's Ed25519 verifier keys.
//! - [`checkpoint`]: the tree head a note signs (C2SP tlog-checkpoint, with
//!   the rules of `tlog.ParseTree`).
//!
//! What it is not: a client or a signer. It does no I/O; fetching tiles,
//! notes and proofs is the caller's, and so is a log's entry format.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod tile;

pub use checkpoint::Checkpoint;
pub use merkle::{Hash, Tree};

/// SHA-256 of the concatenated parts.
fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
