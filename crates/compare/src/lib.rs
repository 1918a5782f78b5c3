//! Explaining why two Go binaries differ.
//!
//! What goes in: the bytes of two files, already read. What comes out: a
//! [`Comparison`] holding the size and SHA-256 of each file, their build infos
//! field by field, their Go and GNU build IDs part by part, every section's size,
//! hash and first differing offset, the functions whose code differs, and a ranked
//! list of [`Cause`]s, each with a stable [`CauseCode`], a one-line explanation,
//! the evidence and a [`Confidence`]. [`report`] turns a comparison into the
//! versioned JSON document (`schemas/diff.schema.json`) and into text for people.
//!
//! Causes read from the build info are `certain`. Where Go records nothing
//! (`-ldflags` under `-trimpath`, build directories), causes are inferred from the
//! bytes: `-X` string symbols, differing strings in data sections, absolute paths,
//! missing symbol tables; those are `likely` or `possible`. A difference confined to
//! the build ID notes and markers is proven by comparing the files with those bytes
//! masked. The Go build IDs bound all of these: equal link action IDs mean the same
//! inputs were linked, so no build setting is blamed, and equal whole IDs on
//! differing files mean a file was changed after it was linked. A caller that ran
//! the content-ID self-check on each file passes the outcome to [`compare_checked`].
//! Every rule, and the evidence behind each confidence, is in `docs/causes.md`.
//!
//! What it is not: it does no I/O, runs no `go`, and never fails. A damaged or
//! truncated file still compares: what cannot be parsed is reported as such in the
//! [`Side`] (see [`ObjectError`] and the build info's read error).
#![deny(missing_docs)]

mod binary;
mod buildid;
mod buildinfo;
mod causes;
mod model;
mod pclntab;
pub mod report;
mod strings;

use goinfo::{self, BuildInfo, ReadError};

pub use model::{
    BuildIdDiff, BuildIdPart, BuildInfoDiff, Cause, CauseCode, Change, Comparison, Confidence, DepChange,
    DepChangeKind, DepState, Evidence, EvidenceSource, FunctionsDiff, ObjectError, ObjectSummary, SectionDiff,
    SectionInfo, SelfCheckOutcome, SelfChecks, Side,
};

/// One file as the comparison sees it.
pub(crate) struct Analysis<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) sha256: [u8; 32],
    pub(crate) build_info: Result<BuildInfo, ReadError>,
    pub(crate) go_build_id: Option<String>,
    pub(crate) gnu_build_id: Option<Vec<u8>>,
    pub(crate) parsed: Result<binary::Parsed<'a>, ObjectError>,
}

impl<'a> Analysis<'a> {
    fn new(data: &'a [u8]) -> Self {
        Analysis {
            data,
            sha256: binary::sha256(data),
            build_info: goinfo::read_build_info(data),
            go_build_id: goinfo::read_go_build_id(data).ok().flatten(),
            gnu_build_id: goinfo::read_gnu_build_id(data),
            parsed: binary::parse(data),
        }
    }

    fn into_side(self, self_check: SelfCheckOutcome) -> Side {
        Side {
            size: self.data.len() as u64,
            sha256: self.sha256,
            build_info: Some(self.build_info),
            object: Some(self.parsed.map(|p| p.summary)),
            self_check,
        }
    }
}

/// Compares two files and explains how they differ.
///
/// Never fails: parts of a file that cannot be read are reported in its [`Side`].
/// The two files are analysed on two threads. The same as [`compare_checked`] with
/// neither file's self-check known.
pub fn compare(a: &[u8], b: &[u8]) -> Comparison {
    compare_checked(a, b, SelfChecks::default())
}

/// Compares two files whose self-checks the caller ran (see [`SelfCheckOutcome`]).
///
/// A file whose bytes no longer match its own content ID was changed after it was
/// linked: that is the cause `modified-after-link`, `certain` when the other file
/// passes the same check, and then what its bytes suggest about the build (strings
/// that `-X` might have set, paths, unexplained sections) is left out.
pub fn compare_checked(a: &[u8], b: &[u8], checks: SelfChecks) -> Comparison {
    compare_named(a, b, checks, ["a", "b"])
}

/// [`compare_checked`], the files called `names` in the explanations (`reprove verify`
/// calls them `the reference` and `the rebuilt binary`).
pub fn compare_named(a: &[u8], b: &[u8], checks: SelfChecks, names: [&str; 2]) -> Comparison {
    if a == b {
        let sha = binary::sha256(a);
        let side =
            |check| Side { size: a.len() as u64, sha256: sha, build_info: None, object: None, self_check: check };
        return Comparison {
            a: side(checks.a),
            b: side(checks.b),
            identical: true,
            build_info: None,
            build_id: BuildIdDiff::default(),
            sections: Vec::new(),
            functions: FunctionsDiff::NotCompared("the files are identical".into()),
            causes: Vec::new(),
        };
    }

    let (aa, mut ab) = analyse_both(a, b);
    let mut aa = aa;
    if let (Ok(pa), Ok(pb)) = (&mut aa.parsed, &mut ab.parsed) {
        binary::hash_sections(&mut pa.sections, &mut pb.sections);
    } else {
        for parsed in [&mut aa.parsed, &mut ab.parsed].into_iter().flatten() {
            binary::hash_sections(&mut parsed.sections, &mut []);
        }
    }
    let build_info = match (&aa.build_info, &ab.build_info) {
        (Ok(x), Ok(y)) => Some(buildinfo::diff(x, y)),
        _ => None,
    };
    let build_id = build_id_diff(&aa, &ab);
    let sections = match (&aa.parsed, &ab.parsed) {
        (Ok(x), Ok(y)) => sections_diff(&x.sections, &y.sections),
        _ => Vec::new(),
    };
    let functions = functions_diff(&aa, &ab);
    let causes = causes::infer(&causes::Input {
        a: &aa,
        b: &ab,
        checks,
        names,
        build_info: build_info.as_ref(),
        sections: &sections,
        functions: &functions,
    });
    Comparison {
        a: aa.into_side(checks.a),
        b: ab.into_side(checks.b),
        identical: false,
        build_info,
        build_id,
        sections,
        functions,
        causes,
    }
}

/// Runs the content-ID self-check ([`goinfo::self_check`]) on both files, and when one
/// fails it and the other passes, finds the first byte where they differ with the bytes
/// a content ID leaves out zeroed ([`goinfo::first_mismatch`]): where the failing file
/// was changed. A check that cannot be read gives [`SelfCheckOutcome::Unknown`].
///
/// Costs about one read of each file. The comparison itself never runs it: callers that
/// want it pass the result to [`compare_checked`].
pub fn self_checks(a: &[u8], b: &[u8]) -> SelfChecks {
    let outcome = |x: &[u8]| match goinfo::self_check(x) {
        Ok(goinfo::SelfCheck::Intact { .. }) => SelfCheckOutcome::Intact,
        Ok(goinfo::SelfCheck::ModifiedAfterLink { first_mismatch, .. }) => {
            SelfCheckOutcome::ModifiedAfterLink { first_mismatch }
        }
        Ok(goinfo::SelfCheck::NoBuildId) => SelfCheckOutcome::NoBuildId,
        Ok(goinfo::SelfCheck::Packed { .. }) => SelfCheckOutcome::Packed,
        Err(_) => SelfCheckOutcome::Unknown,
    };
    let (mut ca, mut cb) = (outcome(a), outcome(b));
    let modified = |o: SelfCheckOutcome| matches!(o, SelfCheckOutcome::ModifiedAfterLink { .. });
    if modified(ca) != modified(cb) && (ca == SelfCheckOutcome::Intact || cb == SelfCheckOutcome::Intact) {
        let at = goinfo::first_mismatch(a, b).ok().flatten();
        for o in [&mut ca, &mut cb] {
            if let SelfCheckOutcome::ModifiedAfterLink { first_mismatch } = o {
                *first_mismatch = at;
            }
        }
    }
    SelfChecks { a: ca, b: cb }
}

fn analyse_both<'a>(a: &'a [u8], b: &'a [u8]) -> (Analysis<'a>, Analysis<'a>) {
    std::thread::scope(|scope| {
        match std::thread::Builder::new().spawn_scoped(scope, || Analysis::new(a)) {
            Ok(handle) => {
                let ab = Analysis::new(b);
                match handle.join() {
                    Ok(aa) => (aa, ab),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            // No thread to be had: do it in turn.
            Err(_) => (Analysis::new(a), Analysis::new(b)),
        }
    })
}

/// Labels of the `/`-separated parts of a Go build ID, by part count.
fn build_id_labels(parts: usize) -> &'static [&'static str] {
    match parts {
        2 => &["action ID", "content ID"],
        4 => &["link action ID", "main package action ID", "main package content ID", "link content ID"],
        _ => &[],
    }
}

fn build_id_diff(a: &Analysis<'_>, b: &Analysis<'_>) -> BuildIdDiff {
    let split = |id: &Option<String>| -> Vec<String> {
        id.as_deref().map(|s| s.split('/').map(str::to_string).collect()).unwrap_or_default()
    };
    let (pa, pb) = (split(&a.go_build_id), split(&b.go_build_id));
    let n = pa.len().max(pb.len());
    let labels = build_id_labels(n);
    let parts = (0..n)
        .map(|i| BuildIdPart {
            label: labels.get(i).copied().unwrap_or("part"),
            a: pa.get(i).cloned(),
            b: pb.get(i).cloned(),
        })
        .collect();
    BuildIdDiff {
        go_a: a.go_build_id.clone(),
        go_b: b.go_build_id.clone(),
        parts,
        gnu_a: a.gnu_build_id.as_deref().map(hex::encode),
        gnu_b: b.gnu_build_id.as_deref().map(hex::encode),
    }
}

fn sections_diff(a: &[binary::Section<'_>], b: &[binary::Section<'_>]) -> Vec<SectionDiff> {
    let info = |s: &binary::Section<'_>| SectionInfo { size: s.size, sha256: s.sha256 };
    binary::match_sections(a, b)
        .into_iter()
        .map(|(ia, ib)| {
            let (sa, sb) = (ia.map(|i| &a[i]), ib.map(|j| &b[j]));
            let first_difference = match (sa.and_then(|s| s.data), sb.and_then(|s| s.data)) {
                (Some(x), Some(y)) if x != y => strings::first_difference_from(x, y, 0).map(|o| o as u64),
                _ => None,
            };
            let name = sa.or(sb).map(|s| s.name.clone()).unwrap_or_default();
            SectionDiff { name, a: sa.map(info), b: sb.map(info), first_difference }
        })
        .collect()
}

fn functions_diff(a: &Analysis<'_>, b: &Analysis<'_>) -> FunctionsDiff {
    let (fa, fb) = match (&a.parsed, &b.parsed) {
        (Ok(x), Ok(y)) => (&x.functions, &y.functions),
        _ => return FunctionsDiff::NotCompared("a file could not be parsed as an object file".into()),
    };
    let (fa, fb) = match (fa, fb) {
        (Some(x), Some(y)) => (x, y),
        (None, None) => return FunctionsDiff::NotCompared("neither file has a symbol table".into()),
        (None, _) => return FunctionsDiff::NotCompared("a has no symbol table".into()),
        (_, None) => return FunctionsDiff::NotCompared("b has no symbol table".into()),
    };
    let name = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
    let (mut changed, mut removed, mut added, mut unchanged) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut resized = Vec::new();
    for (n, code) in fa {
        match fb.get(n) {
            Some(other) if other == code => unchanged += 1,
            Some(other) => {
                if other.len() != code.len() {
                    resized.push(name(n));
                }
                changed.push(name(n));
            }
            None => removed.push(name(n)),
        }
    }
    for n in fb.keys() {
        if !fa.contains_key(n) {
            added.push(name(n));
        }
    }
    changed.sort_unstable();
    resized.sort_unstable();
    added.sort_unstable();
    removed.sort_unstable();
    FunctionsDiff::Compared { changed, added, removed, unchanged, resized }
}
