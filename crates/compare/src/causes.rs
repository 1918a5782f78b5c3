//! From differences to causes: map every build info change to a cause code, infer
//! what Go does not record from the bytes, bound both by what the build IDs and the
//! self-checks prove, and rank the result.
//!
//! Each rule says, beside its code, what makes its cause `certain`, `likely` or
//! `possible` and what rules it out; `docs/causes.md` collects them for users. The
//! order of [`infer`]:
//!
//! 1. A self-check that found a file changed after it was linked
//!    ([`self_checked`]).
//! 2. Facts about the files themselves: one is a truncated copy of the other, one has
//!    no readable build info.
//! 3. Files equal but for their build IDs: `build-id-only`, the one cause.
//! 4. Otherwise, when both build IDs have the same link action ID, the same inputs
//!    were linked ([`crate::buildid`]): no build setting is a cause, and the
//!    difference was made after the link ([`same_link`]).
//! 5. Otherwise the build info, field by field, then what the bytes suggest: a
//!    stripped symbol table, `-X` strings, absolute paths.
//! 6. `unknown` when nothing else was found.

use std::collections::BTreeMap;

use crate::buildid::{self, Link};
use crate::model::{
    BuildInfoDiff, Cause, CauseCode, Change, Confidence, DepChange, DepChangeKind, Evidence, EvidenceSource,
    FunctionsDiff, SectionDiff, SelfCheckOutcome, SelfChecks,
};
use crate::{strings, Analysis};
use goinfo::BuildInfo;

/// Build settings that select an architecture level (`cmd/go/internal/cfg.GetArchEnv`).
const ARCH_LEVEL_KEYS: &[&str] =
    &["GO386", "GOAMD64", "GOARM", "GOARM64", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64", "GOWASM"];
/// Build settings `go build -trimpath` leaves out (`cmd/go/internal/load.setBuildInfo`).
const UNRECORDED_UNDER_TRIMPATH: &[&str] = &["-ldflags", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS"];
/// String symbols the linker itself sets the way `-X` does (`cmd/link/internal/ld`):
/// they follow the Go version and `-trimpath`, not `-ldflags`.
const LINKER_SET_STRINGS: &[&[u8]] =
    &[b"runtime.buildVersion.str", b"runtime.defaultGOROOT.str", b"runtime.modinfo.str"];
/// How many examples of a kind a cause's evidence lists.
const EXAMPLES: usize = 8;

/// What the causes are inferred from.
pub(crate) struct Input<'x, 'a> {
    pub(crate) a: &'x Analysis<'a>,
    pub(crate) b: &'x Analysis<'a>,
    pub(crate) checks: SelfChecks,
    /// What to call the two files in explanations: `a` and `b`, or `the reference` and
    /// `the rebuilt binary`.
    pub(crate) names: [&'x str; 2],
    pub(crate) build_info: Option<&'x BuildInfoDiff>,
    pub(crate) sections: &'x [SectionDiff],
    pub(crate) functions: &'x FunctionsDiff,
}

/// Collects evidence per code, then turns each group into one cause.
#[derive(Default)]
struct Found {
    by_code: BTreeMap<CauseCode, (Confidence, Vec<Evidence>, Option<String>)>,
}

impl Found {
    fn add(&mut self, code: CauseCode, confidence: Confidence, evidence: Evidence) {
        let entry = self.by_code.entry(code).or_insert((confidence, Vec::new(), None));
        entry.0 = entry.0.min(confidence);
        entry.1.push(evidence);
    }

    fn explain(&mut self, code: CauseCode, explanation: String) {
        if let Some(entry) = self.by_code.get_mut(&code) {
            entry.2 = Some(explanation);
        }
    }

    fn has(&self, code: CauseCode) -> bool {
        self.by_code.contains_key(&code)
    }

    fn confidence(&self, code: CauseCode) -> Option<Confidence> {
        self.by_code.get(&code).map(|entry| entry.0)
    }

    fn into_causes(self) -> Vec<Cause> {
        let mut causes: Vec<Cause> = self
            .by_code
            .into_iter()
            .map(|(code, (confidence, evidence, explanation))| Cause {
                code,
                confidence,
                explanation: explanation.unwrap_or_else(|| default_explanation(code, &evidence)),
                evidence,
            })
            .collect();
        rank(&mut causes);
        causes
    }
}

/// Orders causes most significant first: certain before inferred, then by code.
pub(crate) fn rank(causes: &mut [Cause]) {
    causes.sort_by_key(|c| (c.confidence, c.code));
}

/// Infers the causes of the differences in `input`, ranked.
pub(crate) fn infer(input: &Input<'_, '_>) -> Vec<Cause> {
    let mut found = Found::default();
    let link = Link::of(input.a.go_build_id.as_deref(), input.b.go_build_id.as_deref());
    let prefix = prefix_of(input);
    match prefix {
        Some(Prefix::Truncated { shorter }) => truncated(input, shorter, &mut found),
        Some(Prefix::Appended { longer }) => appended(input, longer, &mut found),
        None => self_checked(input, &mut found),
    }
    no_build_info(input, &mut found);
    if prefix.is_none()
        && (buildid::only_build_ids_differ(input.a, input.b) || buildid::only_build_id_notes_differ(input.a, input.b))
    {
        build_id_only(input, &mut found);
    } else if let Link::Same { whole } = link {
        same_link(input, whole, &mut found);
    } else {
        if let Some(bi) = input.build_info {
            let infos = match (&input.a.build_info, &input.b.build_info) {
                (Ok(a), Ok(b)) => Some((a, b)),
                _ => None,
            };
            from_build_info(bi, infos, &mut found);
        } else {
            object_identity(input, &mut found);
        }
        stripped(input, &mut found);
        inferred_ldflags(input, &mut found);
        embedded_path(input, &mut found);
    }
    if found.confidence(CauseCode::ModifiedAfterLink) == Some(Confidence::Certain) {
        // The bytes of a file changed after its link say nothing of how it was built;
        // a packed file's lack of symbols is the packer's doing.
        let packed =
            matches!(input.checks.a, SelfCheckOutcome::Packed) || matches!(input.checks.b, SelfCheckOutcome::Packed);
        found.by_code.retain(|code, (confidence, _, _)| match code {
            CauseCode::Ldflags => *confidence == Confidence::Certain,
            CauseCode::EmbeddedPath | CauseCode::Unknown => false,
            CauseCode::Stripped | CauseCode::GoosGoarch => !packed,
            _ => true,
        });
    }
    if found.by_code.is_empty() {
        unknown(input, link, &mut found);
    }
    found.into_causes()
}

/// One file is a strict prefix of the other: which way round, by the self-checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    /// The shorter (`true`: a) is a truncated copy of the longer.
    Truncated { shorter: bool },
    /// Data was appended to the longer (`true`: a) after its link: the shorter passes
    /// its self-check, so it is the file as linked.
    Appended { longer: bool },
}

fn prefix_of(input: &Input<'_, '_>) -> Option<Prefix> {
    let (a, b) = (input.a.data, input.b.data);
    let a_shorter = if a.len() < b.len() && b.starts_with(a) {
        true
    } else if b.len() < a.len() && a.starts_with(b) {
        false
    } else {
        return None;
    };
    let shorter_check = if a_shorter { input.checks.a } else { input.checks.b };
    Some(if shorter_check == SelfCheckOutcome::Intact {
        Prefix::Appended { longer: !a_shorter }
    } else {
        Prefix::Truncated { shorter: a_shorter }
    })
}

/// `modified-after-link` from the callers' self-checks.
///
/// Certain when one file fails its self-check (its bytes no longer hash to the content
/// ID its build ID records, or a packer rewrote it) and the other passes it: the check
/// is then known to work on binaries of this kind. Likely when the other file was not
/// checked, has no build ID, is packed, or fails too. The check itself rules nothing
/// out: a file changed and its build ID rewritten (`go tool buildid -w`) passes it.
///
/// The explanation names the file and where it first differs from the other: the file
/// offset, the section and, when the symbol table or Go's function table says, the
/// function.
fn self_checked(input: &Input<'_, '_>, found: &mut Found) {
    let SelfChecks { a, b } = input.checks;
    let failed =
        |o: SelfCheckOutcome| matches!(o, SelfCheckOutcome::ModifiedAfterLink { .. } | SelfCheckOutcome::Packed);
    let (fa, fb) = (failed(a), failed(b));
    if !fa && !fb {
        return;
    }
    let confidence = match (fa, fb) {
        (true, false) if b == SelfCheckOutcome::Intact => Confidence::Certain,
        (false, true) if a == SelfCheckOutcome::Intact => Confidence::Certain,
        _ => Confidence::Likely,
    };
    found.add(
        CauseCode::ModifiedAfterLink,
        confidence,
        Evidence::new(EvidenceSource::BuildId, "content ID self-check", Some(show_check(a)), Some(show_check(b))),
    );
    let [na, nb] = input.names;
    let at = where_changed(input, !fa || fb);
    let text = match (fa, fb) {
        (true, true) => format!(
            "{na} and {nb} were changed after they were built: neither matches the content ID its build ID records{}",
            at.map(|w| format!("; they first differ at {w}")).unwrap_or_default()
        ),
        _ => {
            let (name, check, other, other_check) = if fa { (na, a, nb, b) } else { (nb, b, na, a) };
            let how = match check {
                SelfCheckOutcome::Packed => {
                    "it is packed (UPX or similar): a packer rewrote the whole file, so its bytes say nothing of the build; unpack it and compare again".to_string()
                }
                _ => "its bytes no longer match the content ID its build ID records".to_string(),
            };
            let mut place = match (check, at) {
                (SelfCheckOutcome::Packed, _) | (_, None) => String::new(),
                (_, Some(w)) => format!("; the first changed byte is at {w}"),
            };
            if let Some(edit) = first_build_info_edit(input) {
                place.push_str(&format!("; the build infos differ ({edit})"));
            }
            format!("{name} was changed after it was built: {how}{place}; {other} is {}", show_check(other_check))
        }
    };
    found.explain(CauseCode::ModifiedAfterLink, text);
    where_evidence(input, CauseCode::ModifiedAfterLink, confidence, found);
}

/// The first build info field, setting or dependency that differs, for people.
fn first_build_info_edit(input: &Input<'_, '_>) -> Option<String> {
    let bi = input.build_info?;
    if let Some(c) = bi.fields.iter().chain(&bi.settings).next() {
        return Some(format!("{} {}", c.name, versus(c)));
    }
    bi.deps.first().map(dep_line)
}

/// A self-check outcome for people.
fn show_check(o: SelfCheckOutcome) -> String {
    match o {
        SelfCheckOutcome::Unknown => "not checked".to_string(),
        SelfCheckOutcome::Intact => "intact".to_string(),
        SelfCheckOutcome::ModifiedAfterLink { first_mismatch: Some(at) } => {
            format!("modified after link (first mismatch at file offset {at:#x})")
        }
        SelfCheckOutcome::ModifiedAfterLink { first_mismatch: None } => "modified after link".to_string(),
        SelfCheckOutcome::NoBuildId => "without a build ID to check".to_string(),
        SelfCheckOutcome::Packed => "packed".to_string(),
    }
}

/// Where the two files first differ, for people: `file offset 0x… (.text+0x…, in
/// main.f+0x…)`. The offset is the self-check's first mismatch when it found one, else
/// the first differing byte; it is placed in the layout of `a` when `in_a` (the file
/// that passed its check), else of `b`, falling back to the other.
fn where_changed(input: &Input<'_, '_>, in_a: bool) -> Option<String> {
    let mismatch = |o: SelfCheckOutcome| match o {
        SelfCheckOutcome::ModifiedAfterLink { first_mismatch } => first_mismatch,
        _ => None,
    };
    let at = mismatch(input.checks.a)
        .or(mismatch(input.checks.b))
        .and_then(|at| usize::try_from(at).ok())
        .or_else(|| buildid::first_difference_outside_ids(input.a, input.b))
        .or_else(|| strings::first_difference_from(input.a.data, input.b.data, 0))?;
    let (first, second) = if in_a { (input.a, input.b) } else { (input.b, input.a) };
    let place = [first, second].into_iter().find_map(|x| x.parsed.as_ref().ok().and_then(|p| p.place(at)));
    Some(match place {
        Some(p) => format!("file offset {at:#x} ({p})"),
        None => format!("file offset {at:#x}"),
    })
}

/// Evidence of where two files differ, for a change made after the link: the first
/// differing byte placed in each file, the functions whose code differs and the
/// sections that differ (added, removed, resized or changed).
fn where_evidence(input: &Input<'_, '_>, code: CauseCode, confidence: Confidence, found: &mut Found) {
    if let Some(at) = first_difference(input) {
        found.add(code, confidence, at);
    }
    if let FunctionsDiff::Compared { changed, added, removed, resized, .. } = input.functions {
        let lists =
            [(resized, "code differs in size"), (changed, "code differs"), (added, "added"), (removed, "removed")];
        for (list, what) in lists {
            for name in list.iter().take(EXAMPLES) {
                let (a, b) = match what {
                    "added" => (None, Some(what.to_string())),
                    "removed" => (Some(what.to_string()), None),
                    _ => (Some("code".to_string()), Some(what.to_string())),
                };
                found.add(code, confidence, Evidence::new(EvidenceSource::Symbol, name.clone(), a, b));
            }
        }
    }
    for s in input.sections.iter().filter(|s| !s.is_equal()).take(EXAMPLES) {
        let state = |x: &Option<crate::model::SectionInfo>| x.as_ref().map(|i| format!("{} bytes", i.size));
        let name = match s.first_difference {
            Some(o) => format!("{} (first difference at offset {o:#x})", s.name),
            None => s.name.clone(),
        };
        found.add(code, confidence, Evidence::new(EvidenceSource::Section, name, state(&s.a), state(&s.b)));
    }
}

/// Where the two files first differ, as evidence: the file offset (the first outside
/// their build IDs, when they differ elsewhere), and the section (and function, when
/// known) holding it in each file.
fn first_difference(input: &Input<'_, '_>) -> Option<Evidence> {
    let at = buildid::first_difference_outside_ids(input.a, input.b)
        .or_else(|| strings::first_difference_from(input.a.data, input.b.data, 0))?;
    let place = |x: &Analysis<'_>| {
        let place = x.parsed.as_ref().ok().and_then(|p| p.place(at));
        Some(match place {
            Some(p) => format!("{at:#x} ({p})"),
            None => format!("{at:#x}"),
        })
    };
    Some(Evidence::new(EvidenceSource::File, "first difference", place(input.a), place(input.b)))
}

/// Both build IDs have `go build`'s shape and the same link action ID: the same
/// inputs were linked ([`crate::buildid`]).
///
/// That rules out every cause the link action ID covers: the Go version, the target
/// and its architecture level, experiments, `-buildmode`, `-ldflags` (so `-X` and
/// `-s -w`), `-trimpath` and paths, `-gcflags`, `-tags`, cgo, instrumentation, PGO,
/// DefaultGODEBUG, the main module and its dependencies, VCS stamping: the build info
/// is hashed into it too. What is left was done after the link, or by what the ID does
/// not cover (an external linker):
///
/// - `modified-after-link`, likely: the whole build IDs are equal, content ID included,
///   yet the files differ, so one no longer matches its content ID; or the build infos
///   differ, which no link with these inputs writes. Likely, not certain: which file
///   changed needs a self-check, and `-ldflags=-buildid=` can copy an ID by hand.
/// - `stripped`, likely: one file lacks the symbols or DWARF the other has; since `-s`
///   and `-w` are link inputs, `strip` removed them after the link.
/// - otherwise `unknown`, naming the equal link action IDs (see [`unknown`]).
fn same_link(input: &Input<'_, '_>, whole: bool, found: &mut Found) {
    let edited: Vec<Evidence> = input
        .build_info
        .map(|bi| {
            let changes = bi.fields.iter().chain(&bi.settings);
            let changes =
                changes.map(|c| Evidence::new(EvidenceSource::BuildInfo, c.name.clone(), c.a.clone(), c.b.clone()));
            changes.chain(bi.deps.iter().map(dep_evidence)).collect()
        })
        .unwrap_or_default();
    // Equal link action IDs, other content IDs, the same build info: the same inputs
    // were linked, so the bytes were changed and the build ID rewritten to match
    // (`go tool buildid -w`), unless an external linker (not in the ID) differs.
    let rewritten = !whole && edited.is_empty() && internal_link_only(input);
    // A truncated copy is a change after the link too, and says more.
    if (whole || rewritten || !edited.is_empty()) && !found.has(CauseCode::Truncated) {
        let already = found.has(CauseCode::ModifiedAfterLink);
        let id = |x: &Analysis<'_>| x.go_build_id.clone();
        let what = if whole { "go build ID" } else { "link action ID" };
        let part = |x: &Analysis<'_>| {
            if whole {
                id(x)
            } else {
                x.go_build_id.as_deref().and_then(buildid::ExeBuildId::parse).map(|p| p.link_action.to_string())
            }
        };
        found.add(
            CauseCode::ModifiedAfterLink,
            Confidence::Likely,
            Evidence::new(EvidenceSource::BuildId, what, part(input.a), part(input.b)),
        );
        if rewritten {
            let content = |x: &Analysis<'_>| {
                x.go_build_id.as_deref().and_then(buildid::ExeBuildId::parse).map(|p| p.link_content.to_string())
            };
            found.add(
                CauseCode::ModifiedAfterLink,
                Confidence::Likely,
                Evidence::new(EvidenceSource::BuildId, "link content ID", content(input.a), content(input.b)),
            );
        }
        let first_edit = edited.first().map(|e| {
            let c = Change { name: e.name.clone(), a: e.a.clone(), b: e.b.clone() };
            format!("{} {}", e.name, versus(&c))
        });
        for e in edited {
            found.add(CauseCode::ModifiedAfterLink, Confidence::Likely, e);
        }
        if !already {
            let [na, nb] = input.names;
            let place =
                where_changed(input, true).map(|w| format!("; the first difference is at {w}")).unwrap_or_default();
            let checked = if input.checks.a == SelfCheckOutcome::Intact && input.checks.b == SelfCheckOutcome::Intact {
                ", and each matches its own content ID"
            } else {
                ""
            };
            let text = match first_edit {
                Some(edit) => format!(
                    "{na} or {nb} was changed after it was built: the build infos differ ({edit}) though the link action IDs, which cover them, are equal{place}"
                ),
                None if rewritten => format!(
                    "{na} or {nb} was changed after it was built and its build ID rewritten to match (go tool buildid -w): the link action IDs are equal, so the same inputs were linked without an external linker, yet the content IDs differ{checked}{place}"
                ),
                None => format!(
                    "{na} or {nb} was changed after it was built: both carry the same build ID, content ID included, yet they differ{place}; a self-check of each tells which"
                ),
            };
            where_evidence(input, CauseCode::ModifiedAfterLink, Confidence::Likely, found);
            found.explain(CauseCode::ModifiedAfterLink, text);
        }
    }
    stripped_sections(input, found, false);
    if let Some((_, evidence, _)) = found.by_code.get(&CauseCode::Stripped) {
        let lacks: Vec<String> = evidence
            .iter()
            .map(|e| format!("{} has no {}", if e.a.as_deref() == Some("present") { "b" } else { "a" }, e.name))
            .collect();
        let text = format!(
            "{} (strip after linking: -s and -w are link flags, and the link action IDs are equal)",
            lacks.join(", ")
        );
        found.explain(CauseCode::Stripped, text);
    }
}

/// Whether both build infos record `CGO_ENABLED=0`: then the Go linker linked on its
/// own, and no external linker (whose version and flags the link action ID does not
/// cover) can explain a difference.
fn internal_link_only(input: &Input<'_, '_>) -> bool {
    let off =
        |x: &Analysis<'_>| x.build_info.as_ref().is_ok_and(|bi| bi.setting("CGO_ENABLED").is_some_and(|v| v == "0"));
    off(input.a) && off(input.b)
}

/// `truncated`, certain: one file is a strict prefix of the other (a cut download or
/// copy) and the shorter does not pass a self-check (a truncated file fails it; when it
/// passes, data was appended to the other: [`appended`]). A fact about the bytes;
/// nothing rules it out, and it explains the longer file's passing and the shorter's
/// failing self-check.
fn truncated(input: &Input<'_, '_>, shorter_is_a: bool, found: &mut Found) {
    let (a, b) = (input.a.data, input.b.data);
    let side = input.names[usize::from(!shorter_is_a)];
    found.add(
        CauseCode::Truncated,
        Confidence::Certain,
        Evidence::new(EvidenceSource::File, "size", Some(a.len().to_string()), Some(b.len().to_string())),
    );
    found.explain(
        CauseCode::Truncated,
        format!("{side} is a truncated copy of the other ({} vs {} bytes)", a.len(), b.len()),
    );
}

/// `modified-after-link` for data appended after the end of a linked file: one file is
/// a strict prefix of the other, and the shorter passes its self-check, so it is the
/// file as the linker wrote it. Certain when the longer fails its self-check (appended
/// bytes change the content ID, go.dev's `FindAndHash` reads to the end), likely when
/// it was not checked.
fn appended(input: &Input<'_, '_>, longer_is_a: bool, found: &mut Found) {
    let (a, b) = (input.a.data, input.b.data);
    let (longer, shorter) = if longer_is_a { (a, b) } else { (b, a) };
    let check = if longer_is_a { input.checks.a } else { input.checks.b };
    let confidence = if matches!(check, SelfCheckOutcome::ModifiedAfterLink { .. }) {
        Confidence::Certain
    } else {
        Confidence::Likely
    };
    let [na, nb] = input.names;
    let (name, other) = if longer_is_a { (na, nb) } else { (nb, na) };
    found.add(
        CauseCode::ModifiedAfterLink,
        confidence,
        Evidence::new(EvidenceSource::File, "size", Some(a.len().to_string()), Some(b.len().to_string())),
    );
    found.add(
        CauseCode::ModifiedAfterLink,
        confidence,
        Evidence::new(
            EvidenceSource::BuildId,
            "content ID self-check",
            Some(show_check(input.checks.a)),
            Some(show_check(input.checks.b)),
        ),
    );
    found.explain(
        CauseCode::ModifiedAfterLink,
        format!(
            "{name} was changed after it was built: {} bytes were appended after the end of the file as linked (from file offset {:#x}); {other} is that file, intact",
            longer.len() - shorter.len(),
            shorter.len()
        ),
    );
}

/// `no-build-info`, certain: one file's build info reads and the other's does not (not
/// built by `go build`, or damaged: the read error is the evidence).
fn no_build_info(input: &Input<'_, '_>, found: &mut Found) {
    let (a, b) = (&input.a.build_info, &input.b.build_info);
    let (side, err) = match (a, b) {
        (Ok(_), Err(e)) => ("b", e),
        (Err(e), Ok(_)) => ("a", e),
        _ => return,
    };
    let show = |r: &Result<_, goinfo::ReadError>| match r {
        Ok(_) => "present".to_string(),
        Err(e) => e.to_string(),
    };
    found.add(
        CauseCode::NoBuildInfo,
        Confidence::Certain,
        Evidence::new(EvidenceSource::BuildInfo, "build info", Some(show(a)), Some(show(b))),
    );
    found.explain(CauseCode::NoBuildInfo, format!("{side} has no readable Go build info: {err}"));
}

fn setting_code(key: &str) -> CauseCode {
    match key {
        "GOOS" | "GOARCH" => CauseCode::GoosGoarch,
        k if ARCH_LEVEL_KEYS.contains(&k) => CauseCode::ArchLevel,
        "GOEXPERIMENT" => CauseCode::Goexperiment,
        "GOFIPS140" => CauseCode::Fips140,
        "-buildmode" => CauseCode::Buildmode,
        "-compiler" => CauseCode::Compiler,
        "CGO_ENABLED" | "CGO_CFLAGS" | "CGO_CPPFLAGS" | "CGO_CXXFLAGS" | "CGO_LDFLAGS" => CauseCode::Cgo,
        "-race" | "-msan" | "-asan" | "-cover" => CauseCode::Instrumentation,
        "-tags" => CauseCode::Tags,
        "-gcflags" | "-gccgoflags" => CauseCode::Gcflags,
        "-asmflags" => CauseCode::Asmflags,
        "-pgo" => CauseCode::Pgo,
        "-ldflags" => CauseCode::Ldflags,
        "-trimpath" => CauseCode::Trimpath,
        "DefaultGODEBUG" => CauseCode::Godebug,
        "vcs" => CauseCode::Buildvcs,
        "vcs.revision" => CauseCode::VcsRevision,
        "vcs.modified" => CauseCode::VcsModified,
        "vcs.time" => CauseCode::VcsTime,
        _ => CauseCode::BuildSetting,
    }
}

/// Causes read from the build info, certain: each changed field, dependency and setting
/// maps to a code ([`setting_code`]) with the recorded values as evidence; under
/// `-trimpath` the settings it leaves out or trims are part of `trimpath`.
///
/// Ruled out when the link action IDs are equal: the build info is hashed into them,
/// so a difference there was written after the link ([`same_link`]).
fn from_build_info(bi: &BuildInfoDiff, infos: Option<(&BuildInfo, &BuildInfo)>, found: &mut Found) {
    let certain = Confidence::Certain;
    let ev = |c: &Change| Evidence::new(EvidenceSource::BuildInfo, c.name.clone(), c.a.clone(), c.b.clone());
    for change in &bi.fields {
        let code = match change.name.as_str() {
            // `go1.26.1 X:nogreenteagc`: the toolchain is the same, the experiments are not.
            "go" if same_toolchain(change) => CauseCode::Goexperiment,
            "go" => CauseCode::GoVersion,
            "mod.version" | "mod.sum" => CauseCode::MainVersion,
            _ => CauseCode::MainPath,
        };
        found.add(code, certain, ev(change));
    }
    for dep in &bi.deps {
        let code = match dep.kind {
            DepChangeKind::Added | DepChangeKind::Removed | DepChangeKind::Version => CauseCode::DependencyVersion,
            DepChangeKind::Sum => CauseCode::DependencySum,
            DepChangeKind::Replace => CauseCode::DependencyReplace,
        };
        found.add(code, certain, dep_evidence(dep));
    }
    let goarch_changed = bi.settings.iter().any(|c| c.name == "GOARCH");
    // Stamped on one side only: the vcs.* settings are part of that one cause.
    let buildvcs_changed = bi.settings.iter().any(|c| c.name == "vcs");
    // Under -trimpath Go records no -ldflags or CGO_* flags and trims paths: on the
    // side built with it their absence is not a difference of its own.
    let trimpath_side = bi.change("-trimpath").map(|c| c.a.as_deref() == Some("true"));
    let hidden_by_trimpath = |c: &Change| {
        let Some(a_trimmed) = trimpath_side else {
            return false;
        };
        let (trimmed, full) = if a_trimmed { (&c.a, &c.b) } else { (&c.b, &c.a) };
        match (trimmed, full) {
            (None, Some(_)) => UNRECORDED_UNDER_TRIMPATH.contains(&c.name.as_str()),
            (Some(t), Some(f)) => f.starts_with('/') && f.ends_with(&format!("/{t}")),
            _ => false,
        }
    };
    for change in &bi.settings {
        let mut code = setting_code(&change.name);
        if hidden_by_trimpath(change) {
            code = CauseCode::Trimpath;
        }
        if code == CauseCode::ArchLevel && goarch_changed {
            code = CauseCode::GoosGoarch;
        }
        if buildvcs_changed && change.name.starts_with("vcs.") {
            code = CauseCode::Buildvcs;
        }
        found.add(code, certain, ev(change));
    }

    if let Some(first) = bi.fields.iter().find(|c| c.name == "go" && !same_toolchain(c)) {
        found.explain(CauseCode::GoVersion, format!("built with {}", versus(first)));
    }
    if let (Some((a, b)), true) = (infos, found.has(CauseCode::GoosGoarch)) {
        let target = |bi: &BuildInfo| {
            let get = |k| bi.setting(k).map_or_else(|| "?".to_string(), |v| v.to_string());
            format!("{}/{}", get("GOOS"), get("GOARCH"))
        };
        found.explain(CauseCode::GoosGoarch, format!("built for {} vs {}", target(a), target(b)));
    }
    if let Some(c) = bi.settings.iter().find(|c| setting_code(&c.name) == CauseCode::ArchLevel) {
        if !goarch_changed {
            found.explain(CauseCode::ArchLevel, format!("{} {}", c.name, versus(c)));
        }
    }
    if let Some(c) = bi.settings.iter().find(|c| c.name == "GOEXPERIMENT") {
        found.explain(CauseCode::Goexperiment, format!("GOEXPERIMENT {}", versus(c)));
    }
    if let Some(c) = bi.settings.iter().find(|c| c.name == "-trimpath") {
        let (with, without) = if c.a.is_some() { ("a", "b") } else { ("b", "a") };
        let hidden = bi.settings.iter().filter(|c| hidden_by_trimpath(c)).count();
        let note = if hidden > 0 {
            format!(" ({hidden} setting(s) it does not record or records trimmed)")
        } else {
            String::new()
        };
        found.explain(CauseCode::Trimpath, format!("{with} was built with -trimpath, {without} without{note}"));
    }
    if let Some(c) = bi.settings.iter().find(|c| c.name == "vcs") {
        let (with, without) = if c.a.is_some() { ("a", "b") } else { ("b", "a") };
        found.explain(
            CauseCode::Buildvcs,
            format!("{with} is stamped with version control information, {without} is not (-buildvcs)"),
        );
    }
    if let Some(c) = bi.settings.iter().find(|c| c.name == "vcs.revision") {
        found.explain(
            CauseCode::VcsRevision,
            format!("built from revision {}", versus_with(c, |v| v.chars().take(12).collect())),
        );
    }
    if let Some(c) = bi.settings.iter().find(|c| c.name == "vcs.modified") {
        found.explain(CauseCode::VcsModified, format!("uncommitted changes in the work tree: {}", versus(c)));
    }
    if let Some(c) = bi.settings.iter().find(|c| c.name == "vcs.time") {
        found.explain(CauseCode::VcsTime, format!("commit time {}", versus(c)));
    }
    if let Some(c) = bi.fields.iter().find(|c| c.name == "mod.version") {
        found.explain(CauseCode::MainVersion, format!("main module version {}", versus(c)));
    }
    let deps = |kind: fn(&DepChange) -> bool| bi.deps.iter().filter(move |d| kind(d));
    let version_deps: Vec<&DepChange> =
        deps(|d| matches!(d.kind, DepChangeKind::Added | DepChangeKind::Removed | DepChangeKind::Version)).collect();
    if let Some(first) = version_deps.first() {
        found.explain(CauseCode::DependencyVersion, with_more(dep_line(first), version_deps.len()));
    }
    let sum_deps: Vec<&DepChange> = deps(|d| d.kind == DepChangeKind::Sum).collect();
    if let Some(first) = sum_deps.first() {
        found.explain(CauseCode::DependencySum, with_more(dep_line(first), sum_deps.len()));
    }
    let replace_deps: Vec<&DepChange> = deps(|d| d.kind == DepChangeKind::Replace).collect();
    if let Some(first) = replace_deps.first() {
        found.explain(CauseCode::DependencyReplace, with_more(dep_line(first), replace_deps.len()));
    }
}

/// Whether two Go versions differ only in their experiments suffix: `go1.26.1-X:name`,
/// or `go1.22.5 X:name` (a space when the version has a `-` already, go.dev/issue/75953).
fn same_toolchain(change: &Change) -> bool {
    let base = |v: &Option<String>| {
        v.as_deref().map(|v| {
            let cut = v.find(" X:").or_else(|| v.find("-X:")).unwrap_or(v.len());
            v[..cut].to_string()
        })
    };
    base(&change.a) == base(&change.b)
}

fn with_more(line: String, count: usize) -> String {
    if count > 1 {
        format!("{line} (and {} more)", count - 1)
    } else {
        line
    }
}

fn dep_evidence(dep: &DepChange) -> Evidence {
    let show = |s: &Option<crate::model::DepState>| {
        s.as_ref().map(|s| {
            let mut out = s.version.clone();
            if !s.sum.is_empty() {
                out.push(' ');
                out.push_str(&s.sum);
            }
            if let Some(r) = &s.replace {
                out.push_str(" => ");
                out.push_str(r);
            }
            out
        })
    };
    Evidence::new(EvidenceSource::BuildInfo, format!("dep {}", dep.path), show(&dep.a), show(&dep.b))
}

fn dep_line(dep: &DepChange) -> String {
    let (a, b) = (dep.a.as_ref(), dep.b.as_ref());
    match dep.kind {
        DepChangeKind::Added => format!("{} {} added in b", dep.path, b.map_or("", |s| s.version.as_str())),
        DepChangeKind::Removed => {
            format!("{} {} removed in b", dep.path, a.map_or("", |s| s.version.as_str()))
        }
        DepChangeKind::Version => {
            format!("{} {} vs {}", dep.path, a.map_or("", |s| s.version.as_str()), b.map_or("", |s| s.version.as_str()))
        }
        DepChangeKind::Sum => {
            let sum = |s: Option<&crate::model::DepState>| match s {
                Some(s) if !s.sum.is_empty() => s.sum.clone(),
                _ => "(no sum)".to_string(),
            };
            format!("{} {}: sum {} vs {}", dep.path, a.map_or("", |s| s.version.as_str()), sum(a), sum(b))
        }
        DepChangeKind::Replace => {
            let r = |s: Option<&crate::model::DepState>| {
                s.and_then(|s| s.replace.clone()).unwrap_or_else(|| "(not replaced)".into())
            };
            format!("{} replaced by {} vs {}", dep.path, r(a), r(b))
        }
    }
}

/// `a vs b`, values shortened, absent values shown as `(unset)`.
fn versus(c: &Change) -> String {
    versus_with(c, |v| v.to_string())
}

fn versus_with(c: &Change, f: impl Fn(&str) -> String) -> String {
    let show = |v: &Option<String>| match v {
        None => "(unset)".to_string(),
        Some(v) if v.is_empty() => "(empty)".to_string(),
        Some(v) => shorten(&f(v), 60),
    };
    format!("{} vs {}", show(&c.a), show(&c.b))
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn default_explanation(code: CauseCode, evidence: &[Evidence]) -> String {
    let first = evidence.first();
    let detail = first
        .map(|e| {
            let c = Change { name: e.name.clone(), a: e.a.clone(), b: e.b.clone() };
            format!("{} {}", e.name, versus(&c))
        })
        .unwrap_or_default();
    let more = if evidence.len() > 1 { format!(" (and {} more)", evidence.len() - 1) } else { String::new() };
    let what = match code {
        CauseCode::Unknown => return "no recorded setting explains the difference".into(),
        _ => detail,
    };
    format!("{what}{more}")
}

/// `goos-goarch`, likely: without build info on both sides, a different object format
/// or architecture still tells.
fn object_identity(input: &Input<'_, '_>, found: &mut Found) {
    let (Ok(a), Ok(b)) = (&input.a.parsed, &input.b.parsed) else {
        return;
    };
    let (a, b) = (&a.summary, &b.summary);
    for (name, x, y) in [("format", &a.format, &b.format), ("architecture", &a.architecture, &b.architecture)] {
        if x != y {
            found.add(
                CauseCode::GoosGoarch,
                Confidence::Likely,
                Evidence::new(EvidenceSource::Section, name, Some(x.clone()), Some(y.clone())),
            );
        }
    }
    if found.has(CauseCode::GoosGoarch) {
        found.explain(
            CauseCode::GoosGoarch,
            format!("different targets: {} {} vs {} {}", a.format, a.architecture, b.format, b.architecture),
        );
    }
}

fn strip_flags(ldflags: Option<&str>) -> (bool, bool) {
    let mut out = (false, false);
    for token in ldflags.unwrap_or("").split_whitespace() {
        let t = token.trim_start_matches('-');
        match t {
            "s" | "s=true" => out.0 = true,
            "w" | "w=true" => out.1 = true,
            "s=false" => out.0 = false,
            "w=false" => out.1 = false,
            _ => {}
        }
    }
    out
}

/// `stripped`: certain when both build infos record `-ldflags` (no `-trimpath`) and
/// their `-s`/`-w` differ; likely when a symbol table or DWARF is in one file only and
/// Go recorded no `-ldflags` to tell.
///
/// With equal link action IDs `-s` and `-w` were the same: then [`same_link`] names
/// `strip` after the link instead.
fn stripped(input: &Input<'_, '_>, found: &mut Found) {
    let mut certain = false;
    let trimmed = |bi: &BuildInfo| bi.setting("-trimpath").is_some_and(|v| v == "true");
    if let (Ok(a), Ok(b)) = (&input.a.build_info, &input.b.build_info) {
        if trimmed(a) || trimmed(b) {
            // -ldflags are not recorded on at least one side: nothing certain to say.
            return stripped_sections(input, found, false);
        }
        let (la, lb) = (a.setting("-ldflags"), b.setting("-ldflags"));
        let (la, lb) = (la.map(|v| v.to_string()), lb.map(|v| v.to_string()));
        if strip_flags(la.as_deref()) != strip_flags(lb.as_deref()) {
            certain = true;
            found.add(
                CauseCode::Stripped,
                Confidence::Certain,
                Evidence::new(EvidenceSource::BuildInfo, "-ldflags", la, lb),
            );
        }
    }
    stripped_sections(input, found, certain);
}

fn stripped_sections(input: &Input<'_, '_>, found: &mut Found, certain: bool) {
    let (Ok(a), Ok(b)) = (&input.a.parsed, &input.b.parsed) else {
        return;
    };
    let (a, b) = (&a.summary, &b.summary);
    let present = |p: bool| Some(if p { "present" } else { "absent" }.to_string());
    let confidence = if certain { Confidence::Certain } else { Confidence::Likely };
    let mut lacks = Vec::new();
    if a.has_symbols != b.has_symbols {
        found.add(
            CauseCode::Stripped,
            confidence,
            Evidence::new(EvidenceSource::Section, "symbol table", present(a.has_symbols), present(b.has_symbols)),
        );
        lacks.push((if a.has_symbols { "b" } else { "a" }, "symbol table"));
    }
    if a.has_dwarf != b.has_dwarf {
        found.add(
            CauseCode::Stripped,
            confidence,
            Evidence::new(EvidenceSource::Section, "DWARF", present(a.has_dwarf), present(b.has_dwarf)),
        );
        lacks.push((if a.has_dwarf { "b" } else { "a" }, "DWARF"));
    }
    if found.has(CauseCode::Stripped) {
        let text = if lacks.is_empty() {
            "built with different -s/-w linker flags".to_string()
        } else {
            let what: Vec<String> = lacks.iter().map(|(side, what)| format!("{side} has no {what}")).collect();
            format!("{} (-ldflags=-s -w, or strip)", what.join(", "))
        };
        found.explain(CauseCode::Stripped, text);
    }
}

/// `ldflags` where Go does not record them (`-trimpath`): likely when a `-X` string
/// symbol (`<variable>.str`) differs and both files have symbols; possible when,
/// without symbols, a printable string in a data section differs and nothing recorded
/// does. (Recorded `-ldflags` that differ are certain, [`from_build_info`].)
///
/// Ruled out when both files record `-ldflags` and they are equal; when the link
/// action IDs are equal, since `-ldflags` are a link input ([`same_link`]); and when a
/// self-check proves a file was changed after its link, since the change explains
/// its strings ([`infer`]). Without two build IDs of `go build`'s shape, as with
/// `-ldflags=-buildid=`, the inference runs as before.
fn inferred_ldflags(input: &Input<'_, '_>, found: &mut Found) {
    if found.has(CauseCode::Ldflags) {
        return;
    }
    let recorded =
        |a: &Analysis<'_>| a.build_info.as_ref().is_ok_and(|bi| bi.setting("-trimpath").is_none_or(|v| v != "true"));
    if recorded(input.a) && recorded(input.b) {
        // Both record -ldflags, and they are equal.
        return;
    }
    let (Ok(pa), Ok(pb)) = (&input.a.parsed, &input.b.parsed) else {
        return;
    };

    // The linker puts each -X value in a symbol named `<variable>.str`.
    if pa.functions.is_some() && pb.functions.is_some() {
        let mut names: Vec<&[u8]> = pa.x_strings.keys().chain(pb.x_strings.keys()).copied().collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            if LINKER_SET_STRINGS.contains(&name) {
                continue;
            }
            let (va, vb) = (pa.x_strings.get(name), pb.x_strings.get(name));
            // `go build` of a toolchain command passes -X=cmd/internal/objabi.buildID=<build ID>.
            let is_own_build_id = |v: Option<&&[u8]>, id: &Option<String>| {
                v.is_some_and(|v| id.as_deref().is_some_and(|id| *v == id.as_bytes()))
            };
            if va == vb || is_own_build_id(va, &input.a.go_build_id) || is_own_build_id(vb, &input.b.go_build_id) {
                continue;
            }
            let show = |v: Option<&&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
            let var = String::from_utf8_lossy(name.strip_suffix(b".str").unwrap_or(name)).into_owned();
            found.add(
                CauseCode::Ldflags,
                Confidence::Likely,
                Evidence::new(EvidenceSource::Symbol, var, show(va), show(vb)),
            );
        }
        if let Some((_, evidence, _)) = found.by_code.get(&CauseCode::Ldflags) {
            let e = &evidence[0];
            let c = Change { name: e.name.clone(), a: e.a.clone(), b: e.b.clone() };
            let text = format!("-X {} {} (-ldflags are not recorded under -trimpath)", e.name, versus(&c));
            found.explain(CauseCode::Ldflags, text);
        }
        // Every -X value is a `.str` symbol: with both symbol tables at hand and none of
        // them different, a string that differs elsewhere is no -X value.
        return;
    }

    // No symbols to tell: a string that changed while nothing recorded did.
    if input.build_info.is_none_or(BuildInfoDiff::is_empty) && !found.has(CauseCode::Truncated) {
        let changes = strings::differing_strings(&pa.sections, &pb.sections, EXAMPLES);
        let changes: Vec<_> = changes
            .into_iter()
            .filter(|c| {
                let looks_like_path = |s: &Option<String>| s.as_deref().is_some_and(|s| s.starts_with('/'));
                !(looks_like_path(&c.a) || looks_like_path(&c.b))
            })
            .collect();
        for change in &changes {
            found.add(
                CauseCode::Ldflags,
                Confidence::Possible,
                Evidence::new(EvidenceSource::Strings, change.section.clone(), change.a.clone(), change.b.clone()),
            );
        }
        if let Some(first) = changes.first() {
            let show = |v: &Option<String>| v.as_deref().map_or("(absent)".to_string(), |s| format!("{s:?}"));
            found.explain(
                CauseCode::Ldflags,
                format!(
                    "a string in {} differs ({} vs {}); -ldflags=-X is the usual source",
                    first.section,
                    shorten(&show(&first.a), 50),
                    shorten(&show(&first.b), 50)
                ),
            );
        }
    }
}

/// `embedded-path`, likely: absolute source paths in one file's data only (built
/// without `-trimpath` in different directories). Ruled out by equal link action IDs
/// (GOROOT and the package directories are hashed when paths are not trimmed) and by
/// a self-check proving an edit.
fn embedded_path(input: &Input<'_, '_>, found: &mut Found) {
    let (Ok(pa), Ok(pb)) = (&input.a.parsed, &input.b.parsed) else {
        return;
    };
    let (xa, xb) = (strings::absolute_paths(&pa.sections), strings::absolute_paths(&pb.sections));
    let only_a: Vec<&[u8]> = xa.difference(&xb).copied().collect();
    let only_b: Vec<&[u8]> = xb.difference(&xa).copied().collect();
    if only_a.is_empty() && only_b.is_empty() {
        return;
    }
    let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    let (da, db) = (strings::common_dir(only_a.iter().copied()), strings::common_dir(only_b.iter().copied()));
    found.add(
        CauseCode::EmbeddedPath,
        Confidence::Likely,
        Evidence::new(
            EvidenceSource::Strings,
            "paths only in one",
            Some(only_a.len().to_string()),
            Some(only_b.len().to_string()),
        ),
    );
    if da.is_some() || db.is_some() {
        found.add(
            CauseCode::EmbeddedPath,
            Confidence::Likely,
            Evidence::new(EvidenceSource::Strings, "common directory", da.map(text), db.map(text)),
        );
    }
    for i in 0..EXAMPLES.min(only_a.len().max(only_b.len())) {
        found.add(
            CauseCode::EmbeddedPath,
            Confidence::Likely,
            Evidence::new(
                EvidenceSource::Strings,
                "path",
                only_a.get(i).map(|p| text(p)),
                only_b.get(i).map(|p| text(p)),
            ),
        );
    }
    let side = |dir: Option<&[u8]>, paths: &[&[u8]]| match (dir, paths.first()) {
        (Some(d), _) => format!("{}…", text(d)),
        (None, Some(p)) => text(p),
        (None, None) => "none".to_string(),
    };
    found.explain(
        CauseCode::EmbeddedPath,
        format!(
            "absolute build paths differ: {} vs {} (built without -trimpath?)",
            side(da, &only_a),
            side(db, &only_b)
        ),
    );
}

/// `build-id-only`, certain: the files are equal once every copy of each file's build
/// ID is masked ([`buildid::only_build_ids_differ`]), so nothing but the IDs differs,
/// whatever set them (`-ldflags=-buildid=`, `go tool buildid -w`, a GNU build ID of
/// its own). Build IDs of different lengths are allowed where
/// they only move ELF notes; on PE and Mach-O such a difference moves the code and is
/// not recognised.
fn build_id_only(input: &Input<'_, '_>, found: &mut Found) {
    let ida = input.a.go_build_id.clone();
    let idb = input.b.go_build_id.clone();
    found.add(
        CauseCode::BuildIdOnly,
        Confidence::Certain,
        Evidence::new(EvidenceSource::BuildId, "go build ID", ida, idb),
    );
    let (ga, gb) = (&input.a.gnu_build_id, &input.b.gnu_build_id);
    if ga != gb {
        found.add(
            CauseCode::BuildIdOnly,
            Confidence::Certain,
            Evidence::new(
                EvidenceSource::BuildId,
                "GNU build ID",
                ga.as_deref().map(hex::encode),
                gb.as_deref().map(hex::encode),
            ),
        );
    }
    let lengths = (input.a.go_build_id.as_deref().map(str::len), input.b.go_build_id.as_deref().map(str::len));
    let [na, nb] = input.names;
    let text = match lengths {
        (Some(_), None) | (None, Some(_)) => {
            let (with, without) = if lengths.0.is_some() { (na, nb) } else { (nb, na) };
            format!(
                "only the build IDs differ: {without} has none (-ldflags=-buildid=), and the files are identical once {with}'s build ID notes, their headers and their names are set aside"
            )
        }
        (Some(x), Some(y)) if x != y => format!(
            "only the build IDs differ ({x} and {y} characters): the files are identical with them masked and their notes' headers set aside (-ldflags=-buildid?)"
        ),
        _ => "only the build IDs differ: the files are identical with them masked (-ldflags=-buildid?)".into(),
    };
    found.explain(CauseCode::BuildIdOnly, text);
}

/// `unknown`, possible: nothing recorded or found explains the difference; the
/// evidence names the sections and functions that differ. With equal link action IDs
/// it says so: the same inputs were linked, so a file was changed after its link and
/// its build ID rewritten (`go tool buildid -w`), or an external linker differs.
fn unknown(input: &Input<'_, '_>, link: Link, found: &mut Found) {
    let mut where_ = Vec::new();
    for s in input.sections.iter().filter(|s| !s.is_equal()).take(EXAMPLES) {
        let offset = s.first_difference.map(|o| format!("first difference at offset {o:#x}"));
        let state = |x: &Option<crate::model::SectionInfo>| x.as_ref().map(|i| format!("{} bytes", i.size));
        found.add(
            CauseCode::Unknown,
            Confidence::Possible,
            Evidence::new(
                EvidenceSource::Section,
                match &offset {
                    Some(o) => format!("{} ({o})", s.name),
                    None => s.name.clone(),
                },
                state(&s.a),
                state(&s.b),
            ),
        );
        where_.push(match s.first_difference {
            Some(o) => format!("{} at {o:#x}", s.name),
            None => s.name.clone(),
        });
    }
    if let FunctionsDiff::Compared { changed, resized, .. } = input.functions {
        let listed = resized.iter().chain(changed.iter().filter(|n| !resized.contains(n)));
        for name in listed.take(EXAMPLES) {
            let what = if resized.contains(name) { "differs in size" } else { "differs" };
            found.add(
                CauseCode::Unknown,
                Confidence::Possible,
                Evidence::new(EvidenceSource::Symbol, name.clone(), Some("code".into()), Some(what.into())),
            );
        }
    }
    if !found.has(CauseCode::Unknown) {
        found.add(
            CauseCode::Unknown,
            Confidence::Possible,
            Evidence::new(
                EvidenceSource::File,
                "sha256",
                Some(hex::encode(input.a.sha256)),
                Some(hex::encode(input.b.sha256)),
            ),
        );
    }
    let mut text = if where_.is_empty() {
        "the files differ and nothing recorded or found explains it".to_string()
    } else {
        format!("nothing recorded explains the difference in {}", where_.join(", "))
    };
    if let FunctionsDiff::Compared { changed, resized, .. } = input.functions {
        let more = |list: &[String]| match list.len() {
            0 | 1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        if let Some(first) = resized.first() {
            // Edited code changes size; code that only refers to what moved does not.
            text.push_str(&format!(
                "; the code of {first}{} changed size ({} function(s) differ in all)",
                more(resized),
                changed.len()
            ));
        } else if let Some(first) = changed.first() {
            text.push_str(&format!("; the code of {first}{} differs", more(changed)));
        }
    } else if let Some(w) = where_changed(input, true) {
        text.push_str(&format!("; the first difference is at {w}"));
    }
    if link == (Link::Same { whole: false }) {
        let part = |x: &Analysis<'_>| {
            x.go_build_id.as_deref().and_then(buildid::ExeBuildId::parse).map(|p| p.link_action.to_string())
        };
        found.add(
            CauseCode::Unknown,
            Confidence::Possible,
            Evidence::new(EvidenceSource::BuildId, "link action ID", part(input.a), part(input.b)),
        );
        text.push_str(
            ": the same inputs were linked (equal link action IDs), so a file was changed after its link and its build ID rewritten, or an external linker differs",
        );
    }
    found.explain(CauseCode::Unknown, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(code: CauseCode, confidence: Confidence) -> Cause {
        Cause { code, confidence, explanation: String::new(), evidence: Vec::new() }
    }

    #[test]
    fn certain_causes_rank_first_then_by_significance() {
        let mut causes = vec![
            cause(CauseCode::Unknown, Confidence::Possible),
            cause(CauseCode::EmbeddedPath, Confidence::Likely),
            cause(CauseCode::VcsTime, Confidence::Certain),
            cause(CauseCode::GoosGoarch, Confidence::Certain),
            cause(CauseCode::GoVersion, Confidence::Certain),
            cause(CauseCode::BuildIdOnly, Confidence::Certain),
        ];
        rank(&mut causes);
        let codes: Vec<_> = causes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["go-version", "goos-goarch", "vcs-time", "build-id-only", "embedded-path", "unknown"]);
    }

    #[test]
    fn settings_map_to_codes() {
        assert_eq!(setting_code("GOAMD64"), CauseCode::ArchLevel);
        assert_eq!(setting_code("GOARM64"), CauseCode::ArchLevel);
        assert_eq!(setting_code("CGO_ENABLED"), CauseCode::Cgo);
        assert_eq!(setting_code("-race"), CauseCode::Instrumentation);
        assert_eq!(setting_code("vcs.time"), CauseCode::VcsTime);
        assert_eq!(setting_code("-something-new"), CauseCode::BuildSetting);
    }

    #[test]
    fn build_info_changes_become_certain_causes() {
        let change = |name: &str, a: Option<&str>, b: Option<&str>| Change {
            name: name.into(),
            a: a.map(Into::into),
            b: b.map(Into::into),
        };
        let bi = BuildInfoDiff {
            fields: vec![change("go", Some("go1.22.5"), Some("go1.23.1"))],
            deps: vec![DepChange {
                path: "x.org/d".into(),
                kind: DepChangeKind::Sum,
                a: Some(crate::model::DepState { version: "v1.0.0".into(), sum: "h1:x".into(), replace: None }),
                b: Some(crate::model::DepState { version: "v1.0.0".into(), sum: String::new(), replace: None }),
            }],
            settings: vec![
                change("GOARCH", Some("amd64"), Some("arm64")),
                change("GOAMD64", Some("v1"), None),
                change("GOARM64", None, Some("v8.0")),
                change("vcs", Some("git"), None),
                change("vcs.revision", Some("abc"), None),
            ],
        };
        let mut found = Found::default();
        from_build_info(&bi, None, &mut found);
        let causes = found.into_causes();
        let codes: Vec<_> = causes.iter().map(|c| (c.code.as_str(), c.confidence)).collect();
        assert_eq!(
            codes,
            [
                ("go-version", Confidence::Certain),
                ("goos-goarch", Confidence::Certain),
                ("buildvcs", Confidence::Certain),
                ("dependency-sum", Confidence::Certain),
            ]
        );
        assert_eq!(causes[0].explanation, "built with go1.22.5 vs go1.23.1");
        assert_eq!(causes[1].evidence.len(), 3);
        assert_eq!(causes[3].explanation, "x.org/d v1.0.0: sum h1:x vs (no sum)");
    }

    #[test]
    fn experiments_in_the_go_version_are_not_a_go_version_change() {
        let change = |a: &str, b: &str| Change { name: "go".into(), a: Some(a.into()), b: Some(b.into()) };
        assert!(same_toolchain(&change("go1.26.1", "go1.26.1 X:nogreenteagc")));
        assert!(same_toolchain(&change("go1.26.1", "go1.26.1-X:nogreenteagc")));
        assert!(!same_toolchain(&change("go1.26.1", "go1.26.2-X:nogreenteagc")));
        let bi = BuildInfoDiff {
            fields: vec![change("go1.26.1", "go1.26.1 X:nogreenteagc")],
            deps: Vec::new(),
            settings: vec![Change { name: "GOEXPERIMENT".into(), a: None, b: Some("nogreenteagc".into()) }],
        };
        let mut found = Found::default();
        from_build_info(&bi, None, &mut found);
        let causes = found.into_causes();
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].code, CauseCode::Goexperiment);
        assert_eq!(causes[0].explanation, "GOEXPERIMENT (unset) vs nogreenteagc");
    }

    const ID: &str = "iteDJbn6p2FhgYzuEJCi/enyEFiuzbMVxIAgeQy3w/2uMpsx5_DoSxhIwvEfNy/w9_1mCoaPjiiP4cOPHcz";

    /// A file that is no object file but carries Go's text build ID marker, as
    /// `go tool buildid` finds it in the first 32 KiB.
    fn marked(id: &str, payload: &str) -> Vec<u8> {
        let mut out = b"\x7fhead\n\xff Go build ID: \"".to_vec();
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\"\n \xff\n");
        out.extend_from_slice(payload.as_bytes());
        out
    }

    fn codes(c: &crate::Comparison) -> Vec<(&'static str, Confidence)> {
        c.causes.iter().map(|c| (c.code.as_str(), c.confidence)).collect()
    }

    fn modified(first_mismatch: Option<u64>) -> SelfCheckOutcome {
        SelfCheckOutcome::ModifiedAfterLink { first_mismatch }
    }

    #[test]
    fn marked_files_carry_their_build_id() {
        assert_eq!(goinfo::read_go_build_id(&marked(ID, "x")).ok().flatten().as_deref(), Some(ID));
    }

    #[test]
    fn a_failed_self_check_against_an_intact_file_is_certain_and_alone() {
        let (a, b) = (marked(ID, "print more"), marked(ID, "Print more"));
        let checks = SelfChecks { a: modified(Some(0x4d2)), b: SelfCheckOutcome::Intact };
        let c = crate::compare_checked(&a, &b, checks);
        assert_eq!(codes(&c), [("modified-after-link", Confidence::Certain)]);
        let cause = &c.causes[0];
        assert_eq!(
            cause.explanation,
            "a was changed after it was built: its bytes no longer match the content ID its build ID records; \
             the first changed byte is at file offset 0x4d2; b is intact"
        );
        let first = cause.evidence.iter().find(|e| e.name == "first difference").map(|e| e.a.clone());
        assert_eq!(first, Some(Some(format!("{:#x}", a.len() - "print more".len()))));
        assert!(
            crate::report::headline(&c).starts_with("differ: modified-after-link — a was changed after it was built")
        );

        // The other way round, and with the other side's check unknown or failing too.
        let c = crate::compare_checked(&a, &b, SelfChecks { a: SelfCheckOutcome::Intact, b: modified(None) });
        assert_eq!(codes(&c)[0], ("modified-after-link", Confidence::Certain));
        assert!(c.causes[0].explanation.starts_with("b was changed after it was built"), "{}", c.causes[0].explanation);
        for other in [SelfCheckOutcome::Unknown, SelfCheckOutcome::NoBuildId, SelfCheckOutcome::Packed, modified(None)]
        {
            let c = crate::compare_checked(&a, &b, SelfChecks { a: modified(None), b: other });
            assert_eq!(codes(&c)[0], ("modified-after-link", Confidence::Likely), "{other:?}");
        }
    }

    #[test]
    fn a_prefix_is_truncated_unless_the_shorter_file_is_intact() {
        let whole = marked(ID, "the whole file");
        let cut = &whole[..whole.len() - 4];
        let mut longer = whole.clone();
        longer.extend_from_slice(b"appended");
        // Unchecked: a prefix is a truncated copy, as before the self-check.
        assert_eq!(codes(&crate::compare(&whole, cut)), [("truncated", Confidence::Certain)]);
        // The shorter fails its check and the longer passes: truncated.
        let c = crate::compare_checked(&whole, cut, SelfChecks { a: SelfCheckOutcome::Intact, b: modified(None) });
        assert_eq!(codes(&c)[0], ("truncated", Confidence::Certain));
        assert!(!codes(&c).iter().any(|(code, _)| *code == "modified-after-link"), "{:?}", codes(&c));
        // The shorter passes: data was appended to the longer after its link.
        let c = crate::compare_named(
            &whole,
            &longer,
            SelfChecks { a: SelfCheckOutcome::Intact, b: modified(Some(whole.len() as u64)) },
            ["the rebuilt binary", "the reference"],
        );
        assert_eq!(codes(&c)[0], ("modified-after-link", Confidence::Certain));
        assert!(!codes(&c).iter().any(|(code, _)| *code == "truncated"), "{:?}", codes(&c));
        assert_eq!(
            c.causes[0].explanation,
            format!(
                "the reference was changed after it was built: 8 bytes were appended after the end of the file as \
                 linked (from file offset {:#x}); the rebuilt binary is that file, intact",
                whole.len()
            )
        );
        // The longer not checked: likely.
        let c = crate::compare_checked(
            &longer,
            &whole,
            SelfChecks { a: SelfCheckOutcome::Unknown, b: SelfCheckOutcome::Intact },
        );
        assert_eq!(codes(&c)[0], ("modified-after-link", Confidence::Likely));
        assert!(
            c.causes[0].explanation.starts_with("a was changed after it was built: 8 bytes"),
            "{}",
            c.causes[0].explanation
        );
    }

    #[test]
    fn a_packed_file_against_an_intact_one_is_certain() {
        let (a, b) = (marked(ID, "linked"), b"UPX! packed bytes".to_vec());
        let c = crate::compare_checked(&a, &b, SelfChecks { a: SelfCheckOutcome::Intact, b: SelfCheckOutcome::Packed });
        assert_eq!(codes(&c)[0], ("modified-after-link", Confidence::Certain));
        assert!(
            c.causes[0].explanation.starts_with("b was changed after it was built: it is packed"),
            "{}",
            c.causes[0].explanation
        );
        assert!(
            !codes(&c).iter().any(|(code, _)| matches!(*code, "unknown" | "stripped" | "ldflags")),
            "{:?}",
            codes(&c)
        );
        // Unchecked, the same files are unexplained.
        assert_ne!(codes(&crate::compare(&a, &b))[0].0, "modified-after-link");
    }

    #[test]
    fn a_failed_self_check_drops_what_the_bytes_suggest() {
        // Not Go files: on their own they are `unknown`; the certain edit explains them.
        let (a, b) = (b"one".as_slice(), b"two".as_slice());
        assert_eq!(codes(&crate::compare(a, b)), [("unknown", Confidence::Possible)]);
        let c = crate::compare_checked(a, b, SelfChecks { a: modified(None), b: SelfCheckOutcome::Intact });
        assert_eq!(codes(&c), [("modified-after-link", Confidence::Certain)]);
    }

    #[test]
    fn equal_build_ids_on_different_files_mean_a_change_after_the_link() {
        let (a, b) = (marked(ID, "print more"), marked(ID, "Print more"));
        let c = crate::compare(&a, &b);
        assert_eq!(codes(&c), [("modified-after-link", Confidence::Likely)]);
        assert!(
            c.causes[0].explanation.starts_with("a or b was changed after it was built"),
            "{}",
            c.causes[0].explanation
        );
        assert!(c.causes[0].evidence.iter().any(|e| e.name == "go build ID" && e.a.as_deref() == Some(ID)));
    }

    #[test]
    fn equal_link_action_ids_with_other_content_ids_are_unknown_and_say_why() {
        let other = format!("{}AAAAAAAAAAAAAAAAAAAA", &ID[..ID.len() - 20]);
        let (a, b) = (marked(ID, "print more"), marked(&other, "Print more"));
        let c = crate::compare(&a, &b);
        assert_eq!(codes(&c), [("unknown", Confidence::Possible)]);
        assert!(c.causes[0].explanation.contains("the same inputs were linked"), "{}", c.causes[0].explanation);
    }

    #[test]
    fn only_build_ids_differ_even_when_the_content_id_alone_does() {
        let other = format!("{}AAAAAAAAAAAAAAAAAAAA", &ID[..ID.len() - 20]);
        let c = crate::compare(&marked(ID, "same"), &marked(&other, "same"));
        assert_eq!(codes(&c), [("build-id-only", Confidence::Certain)]);
        // Hand-set IDs of one length: masked. Anything else differing: not build-id-only.
        let c = crate::compare(&marked("reprove-test-AAAA", "same"), &marked("reprove-test-BBBB", "same"));
        assert_eq!(codes(&c), [("build-id-only", Confidence::Certain)]);
        let c = crate::compare(&marked("reprove-test-AAAA", "same"), &marked("reprove-test-BBBB", "sane"));
        assert_eq!(codes(&c)[0].0, "unknown");
    }

    #[test]
    fn strip_flags_are_parsed() {
        assert_eq!(strip_flags(Some("-s -w -X main.v=1")), (true, true));
        assert_eq!(strip_flags(Some("-X main.v=1 --w")), (false, true));
        assert_eq!(strip_flags(None), (false, false));
    }
}
