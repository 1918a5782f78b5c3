//! Checkpoints: the tree head a log signs as the text of a note (C2SP
//! tlog-checkpoint): an origin line, the tree size in decimal, the root hash
//! in base64, then lines this parser ignores. Go's checksum database writes
//! the same with the origin `go.sum database tree`; the syntax rules are
//! `golang.org/x/mod/sumdb/tlog.ParseTree`'s.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::merkle::{Hash, Tree};

/// The longest checkpoint text accepted (Go's limit).
const MAX_LEN: usize = 1_000_000;

/// A parsed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    /// The log's origin line.
    pub origin: &'a str,
    /// The tree size and root hash.
    pub tree: Tree,
}

/// Why a checkpoint does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not the three lines (origin, size, root hash), or over the length limit.
    #[error("a checkpoint is an origin, a tree size and a root hash line, at most {MAX_LEN} bytes")]
    Lines,
    /// The size is not a canonical decimal integer up to 2^63 - 1.
    #[error("the checkpoint's tree size {0:?} is not a number")]
    Size(String),
    /// The root hash is not the base64 of 32 bytes.
    #[error("the checkpoint's root hash is not the base64 of 32 bytes")]
    RootHash,
}

impl Checkpoint<'_> {
    /// Parses a checkpoint's text (a verified note's text).
    pub fn parse(text: &str) -> Result<Checkpoint<'_>, CheckpointError> {
        if text.matches('\n').count() < 3 || text.len() > MAX_LEN {
            return Err(CheckpointError::Lines);
        }
        let mut lines = text.splitn(4, '\n');
        let (origin, size, root) = match (lines.next(), lines.next(), lines.next()) {
            (Some(origin), Some(size), Some(root)) => (origin, size, root),
            _ => return Err(CheckpointError::Lines),
        };
        let size_error = || CheckpointError::Size(size.to_string());
        let n: u64 = size.parse().map_err(|_| size_error())?;
        if n.to_string() != size || n > i64::MAX as u64 {
            return Err(size_error());
        }
        let hash = STANDARD.decode(root).map_err(|_| CheckpointError::RootHash)?;
        let hash: Hash = hash.try_into().map_err(|_| CheckpointError::RootHash)?;
        Ok(Checkpoint { origin, tree: Tree { n, hash } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=";

    #[test]
    fn checkpoints() {
        let text = format!("go.sum database tree\n2\n{ROOT}\n");
        assert_eq!(Checkpoint::parse(&text).map(|c| (c.origin, c.tree.n)), Ok(("go.sum database tree", 2)));
        // Extension lines are ignored.
        let text = format!("log.example - 1\n9\n{ROOT}\nTimestamp: 1\n");
        assert_eq!(Checkpoint::parse(&text).map(|c| c.tree.n), Ok(9));
        for bad in ["02", "+2", "-1", "9223372036854775808", ""] {
            let text = format!("o\n{bad}\n{ROOT}\n");
            assert_eq!(Checkpoint::parse(&text), Err(CheckpointError::Size(bad.to_string())), "{bad}");
        }
        assert_eq!(Checkpoint::parse("o\n2\nAAAA\n"), Err(CheckpointError::RootHash));
        assert_eq!(Checkpoint::parse(&format!("o\n2\n{ROOT}")), Err(CheckpointError::Lines));
    }
}
