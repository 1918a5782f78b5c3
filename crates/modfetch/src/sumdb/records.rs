//! The checksum database's own formats, as `golang.org/x/mod/sumdb/tlog`
//! parses them: the lookup record (`tlog.ParseRecord`) and the signed tree
//! head, a checkpoint whose origin is `go.sum database tree`
//! (`tlog.ParseTree`). Hashing, proofs and tiles are the `tlog` crate's.

use tlog::{Checkpoint, Tree};

/// The origin line of the database's tree notes.
const TREE_ORIGIN: &str = "go.sum database tree";

/// Why a record or tree does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// x/mod's `malformed tree note`.
    #[error("malformed tree note")]
    MalformedTree,
    /// x/mod's `malformed record data`.
    #[error("malformed record data")]
    MalformedRecord,
}

/// `tlog.ParseTree`: `go.sum database tree\n<N>\n<base64 hash>\n` (extra lines ignored).
pub fn parse_tree(text: &str) -> Result<Tree, RecordError> {
    match Checkpoint::parse(text) {
        Ok(c) if c.origin == TREE_ORIGIN => Ok(c.tree),
        _ => Err(RecordError::MalformedTree),
    }
}

/// `tlog.ParseRecord`: the record id, its text, and what follows the blank line.
pub fn parse_record(msg: &[u8]) -> Result<(u64, &[u8], &[u8]), RecordError> {
    let i = msg.iter().position(|&b| b == b'\n').ok_or(RecordError::MalformedRecord)?;
    let id_str = std::str::from_utf8(&msg[..i]).map_err(|_| RecordError::MalformedRecord)?;
    let id: i64 = id_str.parse().map_err(|_| RecordError::MalformedRecord)?;
    let id = u64::try_from(id).map_err(|_| RecordError::MalformedRecord)?;
    let msg = &msg[i + 1..];
    let j = msg.windows(2).position(|w| w == b"\n\n").ok_or(RecordError::MalformedRecord)?;
    let (text, rest) = (&msg[..j + 1], &msg[j + 2..]);
    let s = std::str::from_utf8(text).map_err(|_| RecordError::MalformedRecord)?;
    if s.chars().any(|c| (c as u32) < 0x20 && c != '\n') || s.contains("\n\n") || !s.ends_with('\n') {
        return Err(RecordError::MalformedRecord);
    }
    Ok((id, text, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_trees() {
        let (id, text, rest) = parse_record(b"12\na b h1:x\na b/go.mod h1:y\n\nnote").unwrap_or((0, b"", b""));
        assert_eq!((id, text, rest), (12, &b"a b h1:x\na b/go.mod h1:y\n"[..], &b"note"[..]));
        let t = parse_tree("go.sum database tree\n2\nnND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n");
        assert_eq!(t.map(|t| t.n), Ok(2));
        assert!(parse_tree("go.sum database tree\n02\nnND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n").is_err());
        assert!(parse_tree("rekor.example - 1\n2\nnND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n").is_err());
    }
}
