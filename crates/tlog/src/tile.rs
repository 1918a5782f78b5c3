//! Tiles: how a log serves its stored hashes (Go's `tlog.Tile`, C2SP
//! tlog-tiles). A tile of height `h` at level `L` holds up to `2^h` hashes of
//! stored level `L * h`; the hashes of the levels in between are computed from
//! them.

use std::collections::{BTreeMap, BTreeSet};

use crate::merkle::{node_hash, Hash, ProofError, Stored};

/// The tile height the Go checksum database uses.
pub const TILE_HEIGHT: u32 = 8;

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

/// Where a stored hash comes from: the tile (as a tree of `size` records
/// serves it), how many levels above the tile's its level is, and the first
/// of the tile's hashes it covers.
fn locate((level, index): Stored, size: u64) -> (Tile, u32, u64) {
    let h = TILE_HEIGHT;
    let l = level / h;
    let d = level - l * h;
    let n = (index << d) >> h;
    let count = size >> (l * h);
    let w = count.saturating_sub(n << h).min(1 << h);
    (Tile { l, n, w }, d, (index << d) - (n << h))
}

/// The tiles (as a tree of `size` records serves them) holding `needs`.
pub fn tiles_for(needs: &BTreeSet<Stored>, size: u64) -> BTreeSet<Tile> {
    needs.iter().map(|&stored| locate(stored, size).0).collect()
}

/// Computes `needs` from the tiles read (`tile → bytes`).
pub fn hashes_from_tiles(
    needs: &BTreeSet<Stored>,
    size: u64,
    tiles: &BTreeMap<Tile, Vec<u8>>,
) -> Result<BTreeMap<Stored, Hash>, ProofError> {
    let mut out = BTreeMap::new();
    for &(level, index) in needs {
        let (tile, d, start) = locate((level, index), size);
        let data = tiles.get(&tile).ok_or(ProofError::MissingHash(level, index))?;
        let end = start + (1 << d);
        let bytes = usize::try_from(start * 32)
            .ok()
            .zip(usize::try_from(end * 32).ok())
            .and_then(|(from, to)| data.get(from..to))
            .ok_or_else(|| ProofError::ShortTile(tile.path()))?;
        let mut layer: Vec<Hash> = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut x = [0u8; 32];
                x.copy_from_slice(c);
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
    use crate::merkle::{check_inclusion, inclusion_needs, leaf_hash, Tree};

    #[test]
    fn tile_paths() {
        assert_eq!(Tile { l: 0, n: 1234067, w: 256 }.path(), "tile/8/0/x001/x234/067");
        assert_eq!(Tile { l: 1, n: 0, w: 3 }.path(), "tile/8/1/000.p/3");
    }

    /// RFC 6962's MTH, straight from its definition.
    fn mth(leaves: &[Hash]) -> Hash {
        if leaves.len() <= 1 {
            return leaves.first().copied().unwrap_or_default();
        }
        let k = 1 << (63 - (leaves.len() as u64 - 1).leading_zeros());
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    #[test]
    fn inclusion_from_tiles() {
        // 300 records: a full level-0 tile, a partial one, and a partial level-1 tile.
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let level1 = mth(&leaves[..256]);
        let tree = Tree { n: 300, hash: mth(&leaves) };
        let mut tiles = BTreeMap::new();
        tiles.insert(Tile { l: 0, n: 0, w: 256 }, leaves[..256].concat());
        tiles.insert(Tile { l: 0, n: 1, w: 44 }, leaves[256..].concat());
        tiles.insert(Tile { l: 1, n: 0, w: 1 }, level1.to_vec());
        for n in [0, 255, 256, 299] {
            let needs = inclusion_needs(n, tree.n);
            assert!(tiles_for(&needs, tree.n).iter().all(|t| tiles.contains_key(t)));
            let hashes = hashes_from_tiles(&needs, tree.n, &tiles);
            let ok = hashes.and_then(|h| check_inclusion(&tree, n, &leaves[n as usize], &h));
            assert_eq!(ok, Ok(true), "{n}");
        }
        let short: BTreeMap<_, _> = tiles.iter().map(|(t, d)| (*t, d[..32].to_vec())).collect();
        let needs = inclusion_needs(299, tree.n);
        assert!(matches!(hashes_from_tiles(&needs, tree.n, &short), Err(ProofError::ShortTile(_))));
    }
}
