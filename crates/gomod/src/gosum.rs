//! go.sum files, read as the go command reads them (`modfetch.readGoSum`).
//!
//! Each non-blank line is `path version hash`, where a version ending in
//! `/go.mod` is the hash of the module's go.mod file alone. A line with another
//! number of fields is malformed (Go stops with `wrong number of fields`); the
//! hash of an empty go.mod, written by an old Go bug, is dropped as Go drops it.
//! What it is not: a writer; reprove never edits go.sum.

use std::collections::HashMap;

use super::module::ModuleVersion;

/// The hash of a one-file tree holding an empty go.mod, which old Go versions
/// wrote by mistake; Go ignores such lines.
pub const EMPTY_GO_MOD_HASH: &str = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=";

/// One line of go.sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    /// The module path.
    pub path: String,
    /// The version, with `/go.mod` for go.mod-only lines.
    pub version: String,
    /// The hash, normally `h1:…`.
    pub hash: String,
    /// 1-based line number.
    pub line: usize,
}

/// A malformed go.sum line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed go.sum:\n{file}:{line}: wrong number of fields {fields}")]
pub struct GoSumError {
    /// The file name, as given.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// How many fields the line had.
    pub fields: usize,
}

/// A parsed go.sum: every line, and the hashes of each module in file order.
#[derive(Debug, Clone, Default)]
pub struct GoSum {
    lines: Vec<SumLine>,
    index: HashMap<(String, String), Vec<usize>>,
}

/// What go.sum says about one hash of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumCheck {
    /// The first `h1:` line for the module matches.
    Match,
    /// The first `h1:` line for the module has another hash.
    Mismatch {
        /// The hash go.sum records.
        want: String,
        /// Its line number.
        line: usize,
    },
    /// go.sum has no `h1:` line for the module.
    Missing,
}

impl GoSum {
    /// Parses go.sum content. Every malformed line is reported, in order.
    pub fn parse(file: &str, data: &[u8]) -> Result<GoSum, Vec<GoSumError>> {
        let text = String::from_utf8_lossy(data);
        let mut sum = GoSum::default();
        let mut errors = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() {
                continue;
            }
            if f.len() != 3 {
                errors.push(GoSumError { file: file.to_string(), line: i + 1, fields: f.len() });
                continue;
            }
            if f[2] == EMPTY_GO_MOD_HASH {
                continue;
            }
            let key = (f[0].to_string(), f[1].to_string());
            sum.index.entry(key).or_default().push(sum.lines.len());
            sum.lines.push(SumLine { path: f[0].into(), version: f[1].into(), hash: f[2].into(), line: i + 1 });
        }
        if errors.is_empty() {
            Ok(sum)
        } else {
            Err(errors)
        }
    }

    /// Every line, in file order.
    pub fn lines(&self) -> &[SumLine] {
        &self.lines
    }

    /// The lines recorded for `path` and `version` (`v1.2.3` or `v1.2.3/go.mod`), in file order.
    pub fn hashes(&self, path: &str, version: &str) -> impl Iterator<Item = &SumLine> {
        self.index
            .get(&(path.to_string(), version.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.lines.get(i))
    }

    /// Checks `hash` for a module as the go command does (`haveModSumLocked`):
    /// an identical line matches; otherwise the first `h1:` line decides.
    pub fn check(&self, m: &ModuleVersion, go_mod: bool, hash: &str) -> SumCheck {
        let version = if go_mod { format!("{}/go.mod", m.version) } else { m.version.clone() };
        for l in self.hashes(&m.path, &version) {
            if l.hash == hash {
                return SumCheck::Match;
            }
            if l.hash.starts_with("h1:") {
                return SumCheck::Mismatch { want: l.hash.clone(), line: l.line };
            }
        }
        SumCheck::Missing
    }

    /// Lines that repeat an earlier line exactly (harmless), as (first line, repeat line).
    pub fn duplicates(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for idx in self.index.values() {
            for (k, &i) in idx.iter().enumerate() {
                if let Some(&j) = idx[..k].iter().find(|&&j| self.lines[j].hash == self.lines[i].hash) {
                    out.push((self.lines[j].line, self.lines[i].line));
                }
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check() {
        let data = b"a.com/x v1.0.0 h1:AAA=\na.com/x v1.0.0/go.mod h1:BBB=\n\na.com/x v1.0.0 h1:AAA=\nbad line\n";
        let errs = GoSum::parse("go.sum", data).err().unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].to_string(), "malformed go.sum:\ngo.sum:5: wrong number of fields 2");
        let sum = GoSum::parse("go.sum", &data[..data.len() - 9]).unwrap_or_default();
        let m = ModuleVersion::new("a.com/x", "v1.0.0");
        assert_eq!(sum.check(&m, false, "h1:AAA="), SumCheck::Match);
        assert_eq!(sum.check(&m, true, "h1:CCC="), SumCheck::Mismatch { want: "h1:BBB=".into(), line: 2 });
        assert_eq!(sum.check(&ModuleVersion::new("b.com/y", "v1.0.0"), false, "h1:x"), SumCheck::Missing);
        assert_eq!(sum.duplicates(), vec![(1, 4)]);
    }
}
