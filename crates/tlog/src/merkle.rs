//! RFC 6962 Merkle trees: leaf and node hashes, inclusion and consistency
//! proofs.
//!
//! Inclusion proofs come in two shapes. Rekor sends the RFC 9162 audit path
//! (§2.1.3), checked by [`root_from_inclusion_proof`]. Go's checksum database
//! serves tiles of stored hashes instead (`golang.org/x/mod/sumdb/tlog`): the
//! caller lists the hashes a proof needs ([`inclusion_needs`],
//! [`consistency_needs`]), reads them, and checks with them
//! ([`check_inclusion`], which builds the audit path from them, and
//! [`check_consistency`]). Every hash read feeds the root, so a hash served
//! wrong makes the root differ and the check fail: the hashes need no other
//! authentication.

use std::collections::{BTreeMap, BTreeSet};

use crate::sha256;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// A tree head: its size and root hash (Go's `tlog.Tree`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// The number of records (leaves).
    pub n: u64,
    /// The root hash.
    pub hash: Hash,
}

/// A stored hash, `(level, index)`: the root of the complete subtree of
/// leaves `[index << level, (index + 1) << level)`.
pub type Stored = (u32, u64);

/// Why a proof could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A hash the check needs was not read.
    #[error("missing hash at level {0}, index {1}")]
    MissingHash(u32, u64),
    /// A tile is shorter than the hashes it must hold.
    #[error("tile {0} is too short")]
    ShortTile(String),
}

/// The leaf hash, SHA-256 of 0x00 and the record (Go's `tlog.RecordHash`).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0], data])
}

/// The interior node hash, SHA-256 of 0x01, left and right (Go's `tlog.NodeHash`).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[1], left, right])
}

/// The largest power of two strictly less than `n` (`n >= 2`): where RFC 6962 splits a tree.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Whether leaves `[lo, hi)` are one complete subtree, and its stored hash if so.
fn as_stored(lo: u64, hi: u64) -> Option<Stored> {
    let size = hi - lo;
    (size.is_power_of_two() && lo % size == 0).then(|| (size.trailing_zeros(), lo >> size.trailing_zeros()))
}

/// The stored hashes whose combination is the hash of leaves `[lo, hi)`.
fn subtree_needs(lo: u64, hi: u64, out: &mut BTreeSet<Stored>) {
    if let Some(stored) = as_stored(lo, hi) {
        out.insert(stored);
        return;
    }
    let k = split_point(hi - lo);
    subtree_needs(lo, lo + k, out);
    subtree_needs(lo + k, hi, out);
}

/// The hash of leaves `[lo, hi)` from stored hashes.
fn subtree_hash(lo: u64, hi: u64, hashes: &BTreeMap<Stored, Hash>) -> Result<Hash, ProofError> {
    if let Some(key) = as_stored(lo, hi) {
        return hashes.get(&key).copied().ok_or(ProofError::MissingHash(key.0, key.1));
    }
    let k = split_point(hi - lo);
    Ok(node_hash(&subtree_hash(lo, lo + k, hashes)?, &subtree_hash(lo + k, hi, hashes)?))
}

/// The leaf ranges whose hashes make the audit path of leaf `n` in a tree of
/// `size` leaves, leaf to root (RFC 6962 `PATH`). `n < size`.
fn audit_path_ranges(n: u64, size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, size);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if n < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The root hash of a tree of `size` leaves computed from `leaf_hash` at
/// `index` and its audit path `proof` (RFC 9162 §2.1.3.2); `None` when the
/// index is outside the tree or the path has the wrong length.
pub fn root_from_inclusion_proof(index: u64, size: u64, leaf_hash: Hash, proof: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    // transparency-dev/merkle's RootFromInclusionProof: the inner part of the path
    // (below where the leaf's and the last leaf's paths split), then the right border.
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    if proof.len() != inner + border {
        return None;
    }
    let mut hash = leaf_hash;
    for (i, p) in proof[..inner].iter().enumerate() {
        hash = if (index >> i) & 1 == 0 { node_hash(&hash, p) } else { node_hash(p, &hash) };
    }
    for p in &proof[inner..] {
        hash = node_hash(p, &hash);
    }
    Some(hash)
}

/// The stored hashes needed to prove record `n` in a tree of `size` records.
pub fn inclusion_needs(n: u64, size: u64) -> BTreeSet<Stored> {
    let mut out = BTreeSet::new();
    if n < size {
        for (lo, hi) in audit_path_ranges(n, size) {
            subtree_needs(lo, hi, &mut out);
        }
    }
    out
}

/// The audit path of record `n` in a tree of `size` records, from the hashes of
/// [`inclusion_needs`] (Go's `tlog.ProveRecord`). `n < size`.
fn inclusion_proof(n: u64, size: u64, hashes: &BTreeMap<Stored, Hash>) -> Result<Vec<Hash>, ProofError> {
    audit_path_ranges(n, size).into_iter().map(|(lo, hi)| subtree_hash(lo, hi, hashes)).collect()
}

/// Whether record `n` with hash `leaf` is in `tree`, given the hashes of
/// [`inclusion_needs`] (Go's `tlog.CheckRecord`).
pub fn check_inclusion(tree: &Tree, n: u64, leaf: &Hash, hashes: &BTreeMap<Stored, Hash>) -> Result<bool, ProofError> {
    if n >= tree.n {
        return Ok(false);
    }
    let proof = inclusion_proof(n, tree.n, hashes)?;
    Ok(root_from_inclusion_proof(n, tree.n, *leaf, &proof) == Some(tree.hash))
}

fn consistency_walk(lo: u64, hi: u64, n1: u64, out: &mut BTreeSet<Stored>) {
    if n1 >= hi || n1 <= lo {
        subtree_needs(lo, hi, out);
        return;
    }
    let k = split_point(hi - lo);
    if n1 <= lo + k {
        consistency_walk(lo, lo + k, n1, out);
        subtree_needs(lo + k, hi, out);
    } else {
        subtree_needs(lo, lo + k, out);
        consistency_walk(lo + k, hi, n1, out);
    }
}

/// The stored hashes needed to prove that a tree of `n1` records is a prefix of one of `n2`.
pub fn consistency_needs(n1: u64, n2: u64) -> BTreeSet<Stored> {
    let mut out = BTreeSet::new();
    if n1 > 0 && n1 <= n2 {
        consistency_walk(0, n2, n1, &mut out);
    }
    out
}

/// (hash of `[lo, hi)` in the new tree, hash of `[lo, min(hi, n1))` in the old one).
fn both_roots(lo: u64, hi: u64, n1: u64, hashes: &BTreeMap<Stored, Hash>) -> Result<(Hash, Option<Hash>), ProofError> {
    if n1 >= hi {
        let h = subtree_hash(lo, hi, hashes)?;
        return Ok((h, Some(h)));
    }
    if n1 <= lo {
        return Ok((subtree_hash(lo, hi, hashes)?, None));
    }
    let k = split_point(hi - lo);
    if n1 <= lo + k {
        let (l_new, l_old) = both_roots(lo, lo + k, n1, hashes)?;
        Ok((node_hash(&l_new, &subtree_hash(lo + k, hi, hashes)?), l_old))
    } else {
        let l = subtree_hash(lo, lo + k, hashes)?;
        let (r_new, r_old) = both_roots(lo + k, hi, n1, hashes)?;
        Ok((node_hash(&l, &r_new), r_old.map(|r| node_hash(&l, &r))))
    }
}

/// Whether `old` is a prefix of `new`, given the hashes of [`consistency_needs`]
/// (Go's `tlog.CheckTree`). Every hash used feeds `new`'s root, so both roots
/// must come out right.
pub fn check_consistency(old: &Tree, new: &Tree, hashes: &BTreeMap<Stored, Hash>) -> Result<bool, ProofError> {
    if old.n > new.n {
        return Ok(false);
    }
    if old.n == 0 {
        return Ok(true);
    }
    let (root_new, root_old) = both_roots(0, new.n, old.n, hashes)?;
    Ok(root_new == new.hash && root_old == Some(old.hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree built in memory, with every stored hash.
    fn stored(leaves: &[Hash]) -> BTreeMap<Stored, Hash> {
        let mut m = BTreeMap::new();
        let mut layer: Vec<Hash> = leaves.to_vec();
        let mut level = 0;
        while !layer.is_empty() {
            for (i, h) in layer.iter().enumerate() {
                m.insert((level, i as u64), *h);
            }
            layer = layer.chunks(2).filter(|p| p.len() == 2).map(|p| node_hash(&p[0], &p[1])).collect();
            level += 1;
        }
        m
    }

    fn root(leaves: &[Hash]) -> Hash {
        subtree_hash(0, leaves.len() as u64, &stored(leaves)).unwrap_or_default()
    }

    #[test]
    fn proofs() {
        let leaves: Vec<Hash> = (0..37u8).map(|i| leaf_hash(&[i])).collect();
        for size in 1..=leaves.len() as u64 {
            let all = stored(&leaves[..size as usize]);
            let tree = Tree { n: size, hash: root(&leaves[..size as usize]) };
            for n in 0..size {
                let needs = inclusion_needs(n, size);
                let hashes: BTreeMap<_, _> = needs.iter().filter_map(|k| all.get(k).map(|h| (*k, *h))).collect();
                assert_eq!(check_inclusion(&tree, n, &leaves[n as usize], &hashes), Ok(true), "{n}/{size}");
                assert_eq!(check_inclusion(&tree, n, &leaf_hash(b"x"), &hashes), Ok(false));
            }
            for old in 1..=size {
                let t_old = Tree { n: old, hash: root(&leaves[..old as usize]) };
                let needs = consistency_needs(old, size);
                let hashes: BTreeMap<_, _> = needs.iter().filter_map(|k| all.get(k).map(|h| (*k, *h))).collect();
                assert_eq!(check_consistency(&t_old, &tree, &hashes), Ok(true), "{old}->{size}");
                let forged = Tree { n: old, hash: leaf_hash(b"fork") };
                assert_eq!(check_consistency(&forged, &tree, &hashes), Ok(false));
            }
        }
    }

    #[test]
    fn a_missing_stored_hash_is_an_error() {
        let leaves: Vec<Hash> = (0..5u8).map(|i| leaf_hash(&[i])).collect();
        let tree = Tree { n: 5, hash: root(&leaves) };
        assert_eq!(check_inclusion(&tree, 2, &leaves[2], &BTreeMap::new()), Err(ProofError::MissingHash(0, 3)));
    }

    #[test]
    fn inclusion_proofs_of_a_small_tree() {
        // Five leaves: root = H(H(H(0,1),H(2,3)), 4).
        let l: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
        let (n01, n23) = (node_hash(&l[0], &l[1]), node_hash(&l[2], &l[3]));
        let n0123 = node_hash(&n01, &n23);
        let root = node_hash(&n0123, &l[4]);
        assert_eq!(root_from_inclusion_proof(2, 5, l[2], &[l[3], n01, l[4]]), Some(root));
        assert_eq!(root_from_inclusion_proof(4, 5, l[4], &[n0123]), Some(root));
        assert_eq!(root_from_inclusion_proof(0, 1, l[0], &[]), Some(l[0]));
        assert_ne!(root_from_inclusion_proof(2, 5, l[2], &[l[3], n01]), Some(root));
        assert_eq!(root_from_inclusion_proof(5, 5, l[4], &[n0123]), None);
        assert_ne!(root_from_inclusion_proof(3, 5, l[2], &[l[3], n01, l[4]]), Some(root));
    }

    fn unhex(s: &str) -> Hash {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = s.get(2 * i..2 * i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()).unwrap_or_default();
        }
        out
    }

    /// The RFC 6962 test vectors of the certificate-transparency and
    /// transparency-dev/merkle test suites: the roots of the trees of 1 to 8 of
    /// these leaves, and two audit paths in the tree of 8.
    #[test]
    fn rfc6962_test_vectors() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        for (size, want) in (1..=8).zip(roots) {
            assert_eq!(root(&leaves[..size]), unhex(want), "size {size}");
        }
        let all = stored(&leaves);
        let paths = [
            (
                0,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, path) in paths {
            let path = path.map(unhex);
            assert_eq!(root_from_inclusion_proof(index, 8, leaves[index as usize], &path), Some(unhex(roots[7])));
            // The path built from stored hashes is the same.
            assert_eq!(inclusion_proof(index, 8, &all), Ok(path.to_vec()));
        }
    }

    #[test]
    fn split_points() {
        assert_eq!([2, 3, 4, 5, 8, 9].map(split_point), [1, 2, 2, 4, 4, 8]);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }
}
