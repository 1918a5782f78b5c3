//! What the Go build IDs of two executables prove, and whether two files differ
//! only in their build IDs.
//!
//! `go build` stamps an executable with four `/`-separated parts
//! (`cmd/go/internal/work/buildid.go`):
//!
//! ```text
//! actionID(binary)/actionID(main.a)/contentID(main.a)/contentID(binary)
//! ```
//!
//! The first, the *link action ID*, hashes every input of the link
//! (`Builder.linkActionID`): the linker's own ID (the Go version), GOOS, GOARCH and
//! the architecture level, `-buildmode`, `-ldflags`, `-trimpath`, GOEXPERIMENT,
//! DefaultGODEBUG, GOROOT when paths are not trimmed, the main package's build ID and
//! the content ID of every package linked. Those in turn hash the sources, `-gcflags`,
//! `-tags`, cgo's compilers and flags, instrumentation and the build info
//! (`modinfo`, hashed into the main package's action ID). The last part, the *content
//! ID*, hashes the linked file with every copy of the build ID left out.
//!
//! So when two well-formed build IDs have the same link action ID, the two links had
//! the same inputs and no build setting can explain a difference; what the link
//! action ID does not cover is the external linker and its flags (cgo,
//! `-linkmode=external`). When the whole IDs are equal, content ID included, and the
//! files still differ, one of them no longer matches its own content ID: it was
//! changed after it was linked. `-ldflags=-buildid=X` writes `X` verbatim, so a
//! hand-made ID (or a copied one) proves nothing; only IDs of `go build`'s shape
//! count here.

use std::ops::Range;

use object::elf::{PT_NOTE, PT_PHDR};

use crate::binary::{ElfLayout, ElfSection, ElfSegment, NoteHeader};
use crate::Analysis;

/// Length of each part `go build` writes: 15 bytes of a SHA-256 in unpadded
/// base64url (`cmd/internal/buildid.HashToString`).
const PART_LEN: usize = 20;

/// An executable's build ID in the shape `go build` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExeBuildId<'s> {
    /// The hash of every input of the link.
    pub(crate) link_action: &'s str,
    /// The main package's build ID, `actionID/contentID`.
    pub(crate) main: &'s str,
    /// The hash of the linked file, the build ID left out.
    pub(crate) link_content: &'s str,
}

impl<'s> ExeBuildId<'s> {
    /// Parses `id`; `None` unless it has four parts of 20 base64url characters.
    pub(crate) fn parse(id: &'s str) -> Option<Self> {
        let part =
            |p: &str| p.len() == PART_LEN && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        let mut parts = id.split('/');
        let (Some(link_action), Some(main_action), Some(main_content), Some(link_content), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if ![link_action, main_action, main_content, link_content].into_iter().all(part) {
            return None;
        }
        let main = &id[PART_LEN + 1..3 * PART_LEN + 2];
        Some(ExeBuildId { link_action, main, link_content })
    }
}

/// How the links of two files relate, by their build IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Both IDs have `go build`'s shape and the same link action ID: the same inputs
    /// were linked. `whole` when the IDs are equal to the last character.
    Same {
        /// The whole build IDs are equal, content ID included.
        whole: bool,
    },
    /// Both IDs have `go build`'s shape and different link action IDs.
    Different,
    /// At least one file has no ID of that shape: none, `-buildid=` set by hand, ...
    Unknown,
}

impl Link {
    /// Relates the Go build IDs `a` and `b`.
    pub(crate) fn of(a: Option<&str>, b: Option<&str>) -> Link {
        match (a.and_then(ExeBuildId::parse), b.and_then(ExeBuildId::parse)) {
            (Some(x), Some(y)) if x.link_action == y.link_action => Link::Same { whole: x == y },
            (Some(_), Some(_)) => Link::Different,
            _ => Link::Unknown,
        }
    }
}

/// Byte ranges of Go's text build ID marker, `\xff Go build ID: "ID"\n \xff`
/// (`cmd/link`'s `go:buildid` symbol on PE, Mach-O and others): the quoted ID.
fn marker_ranges(data: &[u8]) -> Vec<Range<usize>> {
    const MARKER: &[u8] = b"\xff Go build ID: \"";
    const END: &[u8] = b"\"\n \xff";
    memchr::memmem::find_iter(data, MARKER)
        .filter_map(|at| {
            let start = at + MARKER.len();
            let tail = &data[start..data.len().min(start + 1024)];
            let len = memchr::memchr(b'"', tail)?;
            let id = &tail[..len];
            (tail[len..].starts_with(END) && id.iter().all(|c| (0x20..0x7f).contains(c))).then_some(start..start + len)
        })
        .collect()
}

/// Every range of `x` that holds its own build ID: notes, markers, the Mach-O UUID
/// and other copies of the whole Go build ID (e.g. `-X=cmd/internal/objabi.buildID`).
fn own_ranges(x: &Analysis<'_>) -> Vec<Range<usize>> {
    let mut ranges = marker_ranges(x.data);
    if let Some(id) = x.go_build_id.as_deref().filter(|id| id.len() >= 16) {
        ranges.extend(memchr::memmem::find_iter(x.data, id.as_bytes()).map(|at| at..at + id.len()));
    }
    if let Ok(parsed) = &x.parsed {
        ranges.extend(parsed.build_id_ranges.iter().cloned());
    }
    ranges
}

/// The header fields that only say where a build ID note is, when both files have
/// them at the same place and they describe the same kind of mapping: these change
/// when an ID of another length resizes its note, and nothing else does.
fn note_header_fields(a: &Analysis<'_>, b: &Analysis<'_>) -> Vec<Range<usize>> {
    let (Ok(pa), Ok(pb)) = (&a.parsed, &b.parsed) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ha in &pa.note_headers {
        let Some(hb) = pb.note_headers.iter().find(|h| h.which == ha.which) else {
            continue;
        };
        let consistent = |h: &NoteHeader| h.extra.1 == 0;
        if ha.fields == hb.fields && ha.bias == hb.bias && ha.extra == hb.extra && consistent(ha) && consistent(hb) {
            out.extend(ha.fields.iter().cloned());
        }
    }
    out
}

/// Sorts and merges overlapping or touching ranges.
fn merged(mut ranges: Vec<Range<usize>>, len: usize) -> Vec<Range<usize>> {
    ranges.retain(|r| r.start < r.end && r.end <= len);
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

fn contains(ranges: &[Range<usize>], at: usize) -> bool {
    let i = ranges.partition_point(|r| r.end <= at);
    ranges.get(i).is_some_and(|r| r.start <= at)
}

/// Whether `a` and `b` differ only in their build IDs: every byte is equal except
/// where either holds its own build ID (or where a note's header says where that
/// note is), and where only one file holds an ID the other has the same bytes or
/// zeros (the padding a shorter note leaves). Build IDs of different lengths move ELF notes only, which
/// this allows; on PE and Mach-O the ID sits at the start of the text and moves the
/// code after it, which this cannot tell from other changes.
pub(crate) fn only_build_ids_differ(a: &Analysis<'_>, b: &Analysis<'_>) -> bool {
    let (da, db) = (a.data, b.data);
    if da.len() != db.len() || da == db {
        return false;
    }
    let (mut own_a, mut own_b) = (own_ranges(a), own_ranges(b));
    if own_a.is_empty() && own_b.is_empty() {
        return false;
    }
    let fields = note_header_fields(a, b);
    own_a.extend(fields.iter().cloned());
    own_b.extend(fields);
    let (own_a, own_b) = (merged(own_a, da.len()), merged(own_b, db.len()));
    let mut cuts: Vec<usize> = own_a.iter().chain(&own_b).flat_map(|r| [r.start, r.end]).collect();
    cuts.extend([0, da.len()]);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).all(|w| {
        let (start, end) = (w[0], w[1]);
        let (x, y) = (&da[start..end], &db[start..end]);
        match (contains(&own_a, start), contains(&own_b, start)) {
            (true, true) => true,
            (true, false) => x == y || y.iter().all(|&c| c == 0),
            (false, true) => x == y || x.iter().all(|&c| c == 0),
            (false, false) => x == y,
        }
    })
}

/// The first offset at which `a` and `b` differ outside the bytes that hold either
/// file's own build ID (notes, markers, copies): where a change other than the build ID
/// is. The shorter length when one is a prefix of the other outside those bytes.
pub(crate) fn first_difference_outside_ids(a: &Analysis<'_>, b: &Analysis<'_>) -> Option<usize> {
    let len = a.data.len().max(b.data.len());
    let mut ids = own_ranges(a);
    ids.extend(own_ranges(b));
    let ids = merged(ids, len);
    let mut from = 0;
    loop {
        let at = crate::strings::first_difference_from(a.data, b.data, from)?;
        let i = ids.partition_point(|r| r.end <= at);
        match ids.get(i) {
            Some(r) if r.start <= at => from = r.end,
            _ => return Some(at),
        }
    }
}

/// Whether `a` and `b` are the same ELF file but for build ID notes that one has and the
/// other lacks, as `-ldflags=-buildid=` (an empty ID) leaves them: no note, so no section
/// or program header for it and no name in the section name table, everything else in
/// place.
///
/// Required: the same ELF header but for the counts and where the section headers are;
/// the same program headers once the `PT_NOTE`s (which must hold only build ID notes)
/// are set aside, `PT_PHDR` sized to its own table; the same sections, in order, with
/// the same names, addresses, file offsets, sizes and bytes, once the build ID notes and
/// the section name table are set aside; and in each file, zeros in every byte that no
/// header, table or section holds.
pub(crate) fn only_build_id_notes_differ(a: &Analysis<'_>, b: &Analysis<'_>) -> bool {
    let (Ok(pa), Ok(pb)) = (&a.parsed, &b.parsed) else {
        return false;
    };
    let (Some(la), Some(lb)) = (&pa.elf, &pb.elf) else {
        return false;
    };
    let notes = |l: &ElfLayout| l.sections.iter().filter(|s| s.is_build_id_note()).count();
    if la.header != lb.header || notes(la) == notes(lb) {
        return false;
    }
    // Every note the headers name must be one the parser recognised as a build ID note.
    if notes(la) != pa.build_id_ranges.len() || notes(lb) != pb.build_id_ranges.len() {
        return false;
    }
    let kept = |l: &ElfLayout| -> Vec<ElfSection> {
        let sections = l.sections.iter().enumerate();
        sections.filter(|(i, s)| *i != l.shstrndx && !s.is_build_id_note()).map(|(_, s)| s.clone()).collect()
    };
    let (ka, kb) = (kept(la), kept(lb));
    if ka != kb {
        return false;
    }
    let segments = |l: &ElfLayout| -> Option<Vec<ElfSegment>> {
        let notes: Vec<Range<u64>> =
            l.sections.iter().filter(|s| s.is_build_id_note()).filter_map(|s| s.file_range()).collect();
        let mut out = Vec::new();
        for p in &l.segments {
            match p.kind {
                PT_NOTE => {
                    let covered = notes.iter().any(|n| n.start == p.offset)
                        && notes.iter().map(|n| n.end).max() >= Some(p.offset.saturating_add(p.filesz));
                    if !covered {
                        return None;
                    }
                }
                PT_PHDR => {
                    let table = l.header_ranges.get(1)?;
                    if p.filesz != table.len() as u64 || p.memsz != p.filesz {
                        return None;
                    }
                    out.push(ElfSegment { filesz: 0, memsz: 0, ..p.clone() });
                }
                _ => out.push(p.clone()),
            }
        }
        Some(out)
    };
    match (segments(la), segments(lb)) {
        (Some(x), Some(y)) if x == y => {}
        _ => return false,
    }
    let same_bytes = ka.iter().filter_map(ElfSection::file_range).all(|r| {
        let range = usize::try_from(r.start).ok().zip(usize::try_from(r.end).ok());
        range.is_some_and(|(s, e)| a.data.get(s..e).is_some() && a.data.get(s..e) == b.data.get(s..e))
    });
    same_bytes && only_zeros_elsewhere(la, a.data) && only_zeros_elsewhere(lb, b.data)
}

/// Whether every byte of `data` outside the headers, the header tables and the sections is zero.
fn only_zeros_elsewhere(l: &ElfLayout, data: &[u8]) -> bool {
    let mut held: Vec<Range<usize>> = l.header_ranges.clone();
    for s in &l.sections {
        if let Some(r) = s.file_range() {
            match (usize::try_from(r.start), usize::try_from(r.end)) {
                (Ok(start), Ok(end)) if end <= data.len() => held.push(start..end),
                _ => return false,
            }
        }
    }
    let held = merged(held, data.len());
    let mut at = 0;
    for r in held.iter().chain(std::iter::once(&(data.len()..data.len()))) {
        if data[at..r.start.max(at)].iter().any(|&c| c != 0) {
            return false;
        }
        at = at.max(r.end);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "iteDJbn6p2FhgYzuEJCi/enyEFiuzbMVxIAgeQy3w/2uMpsx5_DoSxhIwvEfNy/w9_1mCoaPjiiP4cOPHcz";

    #[test]
    fn only_go_builds_ids_parse() {
        let id = ExeBuildId::parse(ID).map(|p| (p.link_action, p.main, p.link_content));
        assert_eq!(
            id,
            Some(("iteDJbn6p2FhgYzuEJCi", "enyEFiuzbMVxIAgeQy3w/2uMpsx5_DoSxhIwvEfNy", "w9_1mCoaPjiiP4cOPHcz"))
        );
        for bad in [
            "0123456789abcdef",
            "iteDJbn6p2FhgYzuEJCi/w9_1mCoaPjiiP4cOPHcz",
            "iteDJbn6p2FhgYzuEJCi/enyEFiuzbMVxIAgeQy3w/2uMpsx5_DoSxhIwvEfNy/w9_1mCoaPjiiP4cOPHc",
            "iteDJbn6p2FhgYzuEJCi/enyEFiuzbMVxIAgeQy3w/2uMpsx5_DoSxhIwvEfNy/w9_1mCoaPjiiP4cOPHc=",
            "iteDJbn6p2FhgYzuEJCi/enyEFiuzbMVxIAgeQy3w/2uMpsx5_DoSxhIwvEfNy/w9_1mCoaPjiiP4cOPHcz/x",
            "",
        ] {
            assert_eq!(ExeBuildId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn link_relation() {
        let other_content = format!("{}x", &ID[..ID.len() - 1]);
        let other_link = format!("x{}", &ID[1..]);
        assert_eq!(Link::of(Some(ID), Some(ID)), Link::Same { whole: true });
        assert_eq!(Link::of(Some(ID), Some(&other_content)), Link::Same { whole: false });
        assert_eq!(Link::of(Some(ID), Some(&other_link)), Link::Different);
        assert_eq!(Link::of(Some(ID), Some("0123456789abcdef")), Link::Unknown);
        assert_eq!(Link::of(None, Some(ID)), Link::Unknown);
    }

    #[test]
    fn markers_need_their_whole_frame() {
        let data =
            b"..\xff Go build ID: \"abc/def\"\n \xff..\xff Go build ID: \"x\"..\xff Go build ID: \"\x01\"\n \xff";
        assert_eq!(marker_ranges(data), vec![Range { start: 18, end: 25 }]);
    }

    #[test]
    fn ranges_merge() {
        assert_eq!(merged(vec![5..8, 0..2, 1..3, 8..9, 20..30, 4..4], 25), [0..3, 5..9]);
        let r = [0..3, 5..9];
        assert!(contains(&r, 0) && contains(&r, 2) && !contains(&r, 3) && contains(&r, 8) && !contains(&r, 9));
    }
}
