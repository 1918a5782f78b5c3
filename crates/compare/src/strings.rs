//! Strings in program data: absolute paths, and the printable text around
//! differing bytes. Cheap scans over section bytes, no parsing of Go data structures.

use std::collections::{BTreeSet, HashSet};

use crate::binary::Section;

/// A path-like string must be at least this long to count.
const MIN_PATH_LEN: usize = 6;
/// Printable runs shorter than this are ignored when comparing strings of resized sections.
const MIN_RUN_LEN: usize = 4;
/// Printable context kept on each side of a differing byte run.
const CONTEXT: usize = 40;
/// Give up on a section with more differing runs than this: it is not a string change.
const MAX_RUNS: usize = 64;

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-' | b'+' | b'@' | b'~' | b'!')
}

/// File extensions of sources a Go build compiles, assembles or reads.
const SOURCE_EXTENSIONS: &[&[u8]] =
    &[b".go", b".s", b".S", b".c", b".h", b".cc", b".cpp", b".cxx", b".hh", b".hpp", b".m", b".f", b".pgo", b".syso"];

fn is_source_file(path: &[u8]) -> bool {
    SOURCE_EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

fn is_printable(c: u8) -> bool {
    (0x20..0x7f).contains(&c)
}

/// Absolute paths of source files (`/home/u/src/main.go`, `C:/src/x.go`) found in the
/// program data sections: the file table of `.gopclntab` names every compiled file.
pub(crate) fn absolute_paths<'a>(sections: &[Section<'a>]) -> BTreeSet<&'a [u8]> {
    let mut out = BTreeSet::new();
    for section in sections.iter().filter(|s| s.is_program_data()) {
        let Some(data) = section.data else { continue };
        let mut next = 0;
        for p in memchr::memchr_iter(b'/', data) {
            if p < next {
                continue;
            }
            let mut start = p;
            if p > 0 && is_path_char(data[p - 1]) {
                continue;
            }
            // A drive letter: `C:/...`.
            if p >= 2
                && data[p - 1] == b':'
                && data[p - 2].is_ascii_alphabetic()
                && (p == 2 || !is_path_char(data[p - 3]))
            {
                start = p - 2;
            }
            let len = data[p..].iter().take_while(|&&c| is_path_char(c)).count();
            let end = p + len;
            next = end;
            let path = &data[start..end];
            let first = data.get(p + 1).copied().unwrap_or(0);
            if path.len() >= MIN_PATH_LEN
                && (first.is_ascii_alphanumeric() || first == b'_' || first == b'.')
                && memchr::memchr_iter(b'/', path).count() >= 2
                && memchr::memmem::find(path, b"//").is_none()
                && is_source_file(path)
            {
                out.insert(path);
            }
        }
    }
    out
}

/// The longest common directory prefix of `paths`, e.g. `/tmp/build1/` for all files of a module.
pub(crate) fn common_dir<'a>(paths: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let mut prefix: Option<&[u8]> = None;
    for path in paths {
        let dir = match memchr::memrchr(b'/', path) {
            Some(i) => &path[..=i],
            None => return None,
        };
        prefix = Some(match prefix {
            None => dir,
            Some(p) => {
                let common = p.iter().zip(dir).take_while(|(x, y)| x == y).count();
                let cut = memchr::memrchr(b'/', &p[..common]).map_or(0, |i| i + 1);
                &p[..cut]
            }
        });
    }
    prefix.filter(|p| p.len() > 1)
}

/// A piece of text that differs in a data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StringChange {
    pub(crate) section: String,
    pub(crate) a: Option<String>,
    pub(crate) b: Option<String>,
}

/// Printable text that differs between same-named program data sections.
///
/// Sections of equal size are compared byte by byte and each differing run is shown
/// with its printable context; resized sections are compared as sets of printable runs.
/// Runs whose bytes are not printable (pointers, lengths) are skipped.
pub(crate) fn differing_strings(a: &[Section<'_>], b: &[Section<'_>], limit: usize) -> Vec<StringChange> {
    let mut out = Vec::new();
    for sa in a.iter().filter(|s| s.is_program_data()) {
        let Some(sb) = b.iter().find(|s| s.name == sa.name) else {
            continue;
        };
        let (Some(da), Some(db)) = (sa.data, sb.data) else {
            continue;
        };
        if sa.sha256 == sb.sha256 {
            continue;
        }
        let found = if da.len() == db.len() { same_size_changes(da, db) } else { resized_changes(da, db, limit) };
        for (a, b) in found {
            if out.len() >= limit {
                return out;
            }
            out.push(StringChange { section: sa.name.clone(), a, b });
        }
    }
    out
}

type Pair = (Option<String>, Option<String>);

fn same_size_changes(a: &[u8], b: &[u8]) -> Vec<Pair> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while let Some(start) = first_difference_from(a, b, i) {
        let mut end = start + 1;
        // Merge differences separated by fewer than 4 equal bytes into one run.
        while end < a.len() {
            if a[end] != b[end] {
                end += 1;
                continue;
            }
            let gap = a[end..].iter().zip(&b[end..]).take(4).take_while(|(x, y)| x == y).count();
            if gap < 4 && end + gap < a.len() {
                end += gap;
            } else {
                break;
            }
        }
        runs.push((start, end));
        if runs.len() > MAX_RUNS {
            return Vec::new();
        }
        i = end;
    }
    let mut out = Vec::new();
    for (start, end) in runs {
        let (ta, tb) = (context(a, start, end), context(b, start, end));
        if let (Some(ta), Some(tb)) = (ta, tb) {
            out.push((Some(ta), Some(tb)));
        }
    }
    out
}

/// The printable text around `start..end`, or `None` when the run itself is not printable.
fn context(data: &[u8], start: usize, end: usize) -> Option<String> {
    if !data[start..end].iter().all(|&c| is_printable(c)) {
        return None;
    }
    let left = data[..start].iter().rev().take(CONTEXT).take_while(|&&c| is_printable(c)).count();
    let right = data[end..].iter().take(CONTEXT).take_while(|&&c| is_printable(c)).count();
    Some(String::from_utf8_lossy(&data[start - left..end + right]).into_owned())
}

fn resized_changes(a: &[u8], b: &[u8], limit: usize) -> Vec<Pair> {
    let (ra, rb) = (printable_runs(a), printable_runs(b));
    let mut out: Vec<Pair> = Vec::new();
    for run in ra.iter().filter(|r| !rb.contains(*r)).take(limit) {
        out.push((Some(shorten(run)), None));
    }
    for run in rb.iter().filter(|r| !ra.contains(*r)).take(limit) {
        out.push((None, Some(shorten(run))));
    }
    out
}

fn printable_runs(data: &[u8]) -> HashSet<&[u8]> {
    data.split(|&c| !is_printable(c)).filter(|r| r.len() >= MIN_RUN_LEN).collect()
}

fn shorten(run: &[u8]) -> String {
    let cut = &run[..run.len().min(2 * CONTEXT)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < run.len() {
        s.push('…');
    }
    s
}

/// Offset of the first byte at or after `from` where `a` and `b` differ, or where the
/// shorter ends.
pub(crate) fn first_difference_from(a: &[u8], b: &[u8], from: usize) -> Option<usize> {
    const CHUNK: usize = 4096;
    let len = a.len().min(b.len());
    let mut i = from;
    while i < len {
        let end = (i + CHUNK).min(len);
        if a[i..end] != b[i..end] {
            return (i..end).find(|&j| a[j] != b[j]);
        }
        i = end;
    }
    (a.len() != b.len() && from <= len).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::SectionKind;

    fn section(name: &str, data: &'static [u8]) -> Section<'static> {
        Section {
            name: name.into(),
            kind: SectionKind::ReadOnlyData,
            address: 0,
            size: data.len() as u64,
            data: Some(data),
            offset: None,
            sha256: Some(crate::binary::sha256(data)),
        }
    }

    #[test]
    fn absolute_paths_are_found_and_relative_ones_ignored() {
        let s = section(
            ".gopclntab",
            b"\0/tmp/w1/main.go\0example.com/m/x.go\0runtime/proc.go\0/usr/local/go/src/fmt/print.go\0/gc/heap/goal:bytes\0",
        );
        let paths: Vec<&[u8]> = absolute_paths(&[s]).into_iter().collect();
        assert_eq!(paths, vec![&b"/tmp/w1/main.go"[..], b"/usr/local/go/src/fmt/print.go"]);
    }

    #[test]
    fn common_dir_is_component_wise() {
        let paths: [&[u8]; 2] = [b"/tmp/w12/a/main.go", b"/tmp/w12/b.go"];
        assert_eq!(common_dir(paths), Some(&b"/tmp/w12/"[..]));
        let paths: [&[u8]; 2] = [b"/tmp/w1/main.go", b"/tmp/w12/b.go"];
        assert_eq!(common_dir(paths), Some(&b"/tmp/"[..]));
    }

    #[test]
    fn a_changed_string_is_shown_with_its_context() {
        let a = section(".rodata", b"\x01\x02hello version 1.0.0 world\x00\x05");
        let b = section(".rodata", b"\x01\x02hello version 1.0.1 world\x00\x05");
        let d = differing_strings(&[a], &[b], 10);
        assert_eq!(
            d,
            vec![StringChange {
                section: ".rodata".into(),
                a: Some("hello version 1.0.0 world".into()),
                b: Some("hello version 1.0.1 world".into()),
            }]
        );
    }

    #[test]
    fn pointer_changes_are_not_strings() {
        let a = section(".data", b"abcd\x10\x20\x30\x40efgh");
        let b = section(".data", b"abcd\x11\x21\x31\x41efgh");
        assert!(differing_strings(&[a], &[b], 10).is_empty());
    }

    #[test]
    fn first_difference_handles_prefixes() {
        assert_eq!(first_difference_from(b"abc", b"abd", 0), Some(2));
        assert_eq!(first_difference_from(b"abc", b"abcde", 0), Some(3));
        assert_eq!(first_difference_from(b"abc", b"abc", 0), None);
        let big_a = vec![0u8; 10_000];
        let mut big_b = big_a.clone();
        big_b[9_000] = 1;
        assert_eq!(first_difference_from(&big_a, &big_b, 0), Some(9_000));
    }
}
