//! The checksum database's transparency log, as `golang.org/x/mod/sumdb/tlog`:
//! record and tree formats, RFC 6962 hashing, tiles, and the proofs that a
//! record is in a tree and that one tree extends another.
//!
//! Proofs are checked by recomputing the signed tree hash from the record's
//! hash and the hashes read from tiles: every hash read feeds the root, so a
//! tile served wrong makes the root differ and the check fail. The tiles
//! themselves need no other authentication.
//!
//! Work is split in three so that fetching (async, elsewhere) stays apart
//! from hashing (pure, here): list the stored hashes a check needs
//! ([`inclusion_needs`], [`consistency_needs`]), name the tiles holding them
//! ([`tiles_for`]), then check with the hashes read ([`check_inclusion`],
//! [`check_consistency`]).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The tile height the Go checksum database uses.
pub const TILE_HEIGHT: u32 = 8;

/// A signed tree head: size and root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// The number of records.
    pub n: u64,
    /// The root hash.
    pub hash: Hash,
}

/// Why a record or tree does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    /// x/mod's `malformed tree note`.
    #[error("malformed tree note")]
    MalformedTree,
    /// x/mod's `malformed record data`.
    #[error("malformed record data")]
    MalformedRecord,
    /// A tile is shorter than the hashes it must hold.
    #[error("tile {0} is too short")]
    ShortTile(String),
    /// A hash the check needs was not read.
    #[error("missing hash at level {0}, index {1}")]
    MissingHash(u32, u64),
}

/// `tlog.RecordHash`: SHA-256 of 0x00 and the record.
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `tlog.NodeHash`: SHA-256 of 0x01, left and right.
pub fn node_hash(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// `tlog.ParseTree`: `go.sum database tree\n<N>\n<base64 hash>\n` (extra lines ignored).
pub fn parse_tree(text: &str) -> Result<Tree, TlogError> {
    let rest = text.strip_prefix("go.sum database tree\n").ok_or(TlogError::MalformedTree)?;
    if text.matches('\n').count() < 3 || text.len() > 1_000_000 {
        return Err(TlogError::MalformedTree);
    }
    let mut lines = rest.splitn(3, '\n');
    let n_str = lines.next().unwrap_or_default();
    let n: u64 = n_str.parse().map_err(|_| TlogError::MalformedTree)?;
    if n.to_string() != n_str || n > i64::MAX as u64 {
        return Err(TlogError::MalformedTree);
    }
    let h = base64::engine::general_purpose::STANDARD
        .decode(lines.next().unwrap_or_default())
        .map_err(|_| TlogError::MalformedTree)?;
    let hash: Hash = h.try_into().map_err(|_| TlogError::MalformedTree)?;
    Ok(Tree { n, hash })
}

/// `tlog.ParseRecord`: the record id, its text, and what follows the blank line.
pub fn parse_record(msg: &[u8]) -> Result<(u64, &[u8], &[u8]), TlogError> {
    let i = msg.iter().position(|&b| b == b'\n').ok_or(TlogError::MalformedRecord)?;
    let id_str = std::str::from_utf8(&msg[..i]).map_err(|_| TlogError::MalformedRecord)?;
    let id: i64 = id_str.parse().map_err(|_| TlogError::MalformedRecord)?;
    let id = u64::try_from(id).map_err(|_| TlogError::MalformedRecord)?;
    let msg = &msg[i + 1..];
    let j = msg.windows(2).position(|w| w == b"\n\n").ok_or(TlogError::MalformedRecord)?;
    let (text, rest) = (&msg[..j + 1], &msg[j + 2..]);
    let s = std::str::from_utf8(text).map_err(|_| TlogError::MalformedRecord)?;
    if s.chars().any(|c| (c as u32) < 0x20 && c != '\n') || s.contains("\n\n") || !s.ends_with('\n') {
        return Err(TlogError::MalformedRecord);
    }
    Ok((id, text, rest))
}

/// A stored hash: the root of the complete subtree `[index << level, (index+1) << level)`.
pub type Stored = (u32, u64);

fn largest_pow2_below(n: u64) -> u64 {
    // The largest power of two strictly less than n (n >= 2).
    let mut k = 1u64;
    while k.saturating_mul(2) < n {
        k *= 2;
    }
    k
}

/// The stored hashes whose combination is the hash of leaves `[lo, hi)`.
fn subtree_needs(lo: u64, hi: u64, out: &mut BTreeSet<Stored>) {
    let size = hi - lo;
    if size.is_power_of_two() && lo % size == 0 {
        out.insert((size.trailing_zeros(), lo >> size.trailing_zeros()));
        return;
    }
    let k = largest_pow2_below(size);
    subtree_needs(lo, lo + k, out);
    subtree_needs(lo + k, hi, out);
}

fn subtree_hash(lo: u64, hi: u64, hashes: &BTreeMap<Stored, Hash>) -> Result<Hash, TlogError> {
    let size = hi - lo;
    if size.is_power_of_two() && lo % size == 0 {
        let key = (size.trailing_zeros(), lo >> size.trailing_zeros());
        return hashes.get(&key).copied().ok_or(TlogError::MissingHash(key.0, key.1));
    }
    let k = largest_pow2_below(size);
    Ok(node_hash(&subtree_hash(lo, lo + k, hashes)?, &subtree_hash(lo + k, hi, hashes)?))
}

fn inclusion_walk(lo: u64, hi: u64, n: u64, out: &mut BTreeSet<Stored>) {
    if hi - lo == 1 {
        return;
    }
    let k = largest_pow2_below(hi - lo);
    if n < lo + k {
        inclusion_walk(lo, lo + k, n, out);
        subtree_needs(lo + k, hi, out);
    } else {
        subtree_needs(lo, lo + k, out);
        inclusion_walk(lo + k, hi, n, out);
    }
}

/// The stored hashes needed to prove record `n` in a tree of `size` records.
pub fn inclusion_needs(n: u64, size: u64) -> BTreeSet<Stored> {
    let mut out = BTreeSet::new();
    if n < size {
        inclusion_walk(0, size, n, &mut out);
    }
    out
}

fn root_with_leaf(lo: u64, hi: u64, n: u64, leaf: &Hash, hashes: &BTreeMap<Stored, Hash>) -> Result<Hash, TlogError> {
    if hi - lo == 1 {
        return Ok(*leaf);
    }
    let k = largest_pow2_below(hi - lo);
    if n < lo + k {
        Ok(node_hash(&root_with_leaf(lo, lo + k, n, leaf, hashes)?, &subtree_hash(lo + k, hi, hashes)?))
    } else {
        Ok(node_hash(&subtree_hash(lo, lo + k, hashes)?, &root_with_leaf(lo + k, hi, n, leaf, hashes)?))
    }
}

/// Whether record `n` with hash `leaf` is in `tree`, given the hashes of [`inclusion_needs`].
pub fn check_inclusion(tree: &Tree, n: u64, leaf: &Hash, hashes: &BTreeMap<Stored, Hash>) -> Result<bool, TlogError> {
    if n >= tree.n {
        return Ok(false);
    }
    Ok(root_with_leaf(0, tree.n, n, leaf, hashes)? == tree.hash)
}

fn consistency_walk(lo: u64, hi: u64, n1: u64, out: &mut BTreeSet<Stored>) {
    if n1 >= hi || n1 <= lo {
        subtree_needs(lo, hi, out);
        return;
    }
    let k = largest_pow2_below(hi - lo);
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
fn both(lo: u64, hi: u64, n1: u64, hashes: &BTreeMap<Stored, Hash>) -> Result<(Hash, Option<Hash>), TlogError> {
    if n1 >= hi {
        let h = subtree_hash(lo, hi, hashes)?;
        return Ok((h, Some(h)));
    }
    if n1 <= lo {
        return Ok((subtree_hash(lo, hi, hashes)?, None));
    }
    let k = largest_pow2_below(hi - lo);
    if n1 <= lo + k {
        let (l_new, l_old) = both(lo, lo + k, n1, hashes)?;
        Ok((node_hash(&l_new, &subtree_hash(lo + k, hi, hashes)?), l_old))
    } else {
        let l = subtree_hash(lo, lo + k, hashes)?;
        let (r_new, r_old) = both(lo + k, hi, n1, hashes)?;
        Ok((node_hash(&l, &r_new), r_old.map(|r| node_hash(&l, &r))))
    }
}

/// Whether `old` is a prefix of `new`, given the hashes of [`consistency_needs`].
/// Every hash used feeds `new`'s root, so both roots must come out right.
pub fn check_consistency(old: &Tree, new: &Tree, hashes: &BTreeMap<Stored, Hash>) -> Result<bool, TlogError> {
    if old.n > new.n {
        return Ok(false);
    }
    if old.n == 0 {
        return Ok(true);
    }
    let (root_new, root_old) = both(0, new.n, old.n, hashes)?;
    Ok(root_new == new.hash && root_old == Some(old.hash))
}

/// A tile of height [`TILE_HEIGHT`]: `w` hashes at level `l * height`, starting at `n << height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tile {
    /// The tile level.
    pub l: u32,
    /// The tile index at that level.
    pub n: u64,
    /// How many hashes it holds (2^height for a full tile).
    pub w: u64,
}

impl Tile {
    /// `tlog.Tile.Path`: `tile/8/<L>/<N in x123/456 groups>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut s = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            s = format!("x{:03}/{s}", n % 1000);
        }
        let p = if self.w != 1 << TILE_HEIGHT { format!(".p/{}", self.w) } else { String::new() };
        format!("tile/{TILE_HEIGHT}/{}/{s}{p}", self.l)
    }
}

/// The tiles (as a tree of `size` records serves them) holding `needs`.
pub fn tiles_for(needs: &BTreeSet<Stored>, size: u64) -> BTreeSet<Tile> {
    let h = TILE_HEIGHT;
    needs
        .iter()
        .map(|&(level, index)| {
            let l = level / h;
            let d = level - l * h;
            let n = (index << d) >> h;
            let count = size >> (l * h);
            let w = (count - (n << h)).min(1 << h);
            Tile { l, n, w }
        })
        .collect()
}

/// Computes `needs` from the tiles read (`tile → bytes`).
pub fn hashes_from_tiles(
    needs: &BTreeSet<Stored>,
    size: u64,
    tiles: &BTreeMap<Tile, Vec<u8>>,
) -> Result<BTreeMap<Stored, Hash>, TlogError> {
    let h = TILE_HEIGHT;
    let mut out = BTreeMap::new();
    for &(level, index) in needs {
        let l = level / h;
        let d = level - l * h;
        let n = (index << d) >> h;
        let count = size >> (l * h);
        let w = (count - (n << h)).min(1 << h);
        let tile = Tile { l, n, w };
        let data = tiles.get(&tile).ok_or(TlogError::MissingHash(level, index))?;
        let start = (index << d) - (n << h);
        let end = start + (1 << d);
        if (data.len() as u64) < end * 32 {
            return Err(TlogError::ShortTile(tile.path()));
        }
        let mut layer: Vec<Hash> = (start..end)
            .map(|j| {
                let mut x = [0u8; 32];
                x.copy_from_slice(&data[(j * 32) as usize..(j * 32 + 32) as usize]);
                x
            })
            .collect();
        while layer.len() > 1 {
            layer = layer.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        if let Some(root) = layer.first() {
            out.insert((level, index), *root);
        }
    }
    Ok(out)
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
        let leaves: Vec<Hash> = (0..37u8).map(|i| record_hash(&[i])).collect();
        for size in 1..=leaves.len() as u64 {
            let all = stored(&leaves[..size as usize]);
            let tree = Tree { n: size, hash: root(&leaves[..size as usize]) };
            for n in 0..size {
                let needs = inclusion_needs(n, size);
                let hashes: BTreeMap<_, _> = needs.iter().filter_map(|k| all.get(k).map(|h| (*k, *h))).collect();
                assert_eq!(check_inclusion(&tree, n, &leaves[n as usize], &hashes), Ok(true), "{n}/{size}");
                assert_eq!(check_inclusion(&tree, n, &record_hash(b"x"), &hashes), Ok(false));
            }
            for old in 1..=size {
                let t_old = Tree { n: old, hash: root(&leaves[..old as usize]) };
                let needs = consistency_needs(old, size);
                let hashes: BTreeMap<_, _> = needs.iter().filter_map(|k| all.get(k).map(|h| (*k, *h))).collect();
                assert_eq!(check_consistency(&t_old, &tree, &hashes), Ok(true), "{old}->{size}");
                let forged = Tree { n: old, hash: record_hash(b"fork") };
                assert_eq!(check_consistency(&forged, &tree, &hashes), Ok(false));
            }
        }
    }

    #[test]
    fn tile_paths() {
        assert_eq!(Tile { l: 0, n: 1234067, w: 256 }.path(), "tile/8/0/x001/x234/067");
        assert_eq!(Tile { l: 1, n: 0, w: 3 }.path(), "tile/8/1/000.p/3");
    }

    #[test]
    fn records_and_trees() {
        let (id, text, rest) = parse_record(b"12\na b h1:x\na b/go.mod h1:y\n\nnote").unwrap_or((0, b"", b""));
        assert_eq!((id, text, rest), (12, &b"a b h1:x\na b/go.mod h1:y\n"[..], &b"note"[..]));
        let t = parse_tree("go.sum database tree\n2\nnND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n");
        assert_eq!(t.map(|t| t.n), Ok(2));
        assert!(parse_tree("go.sum database tree\n02\nnND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n").is_err());
    }
}
