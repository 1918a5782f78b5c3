//! Rendering a [`Comparison`]: the versioned JSON document and the text for people.
//!
//! The JSON types live in [`v1`], described by `schemas/diff.schema.json`; they are
//! the only serializable types of the comparison and are converted by hand, so the
//! internal model can change without changing the document.

use std::fmt::Write as _;

use crate::model::{
    BuildInfoDiff, Comparison, DepChangeKind, FunctionsDiff, SectionDiff, SectionInfo, SelfCheckOutcome, Side,
};

/// At most this many function names per list in the JSON document.
const JSON_FUNCTIONS: usize = 200;
/// At most this many function names per list, and sections, in the text.
const TEXT_ITEMS: usize = 20;

/// Version 1 of the `reprove diff --json` document.
pub mod v1 {
    use serde::Serialize;

    /// The schema version this module writes.
    pub const SCHEMA_VERSION: u32 = 1;

    /// The whole document.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Report {
        /// Always [`SCHEMA_VERSION`].
        pub schema_version: u32,
        /// `identical` or `differ`.
        pub verdict: &'static str,
        /// The first file.
        pub a: File,
        /// The second file.
        pub b: File,
        /// Why they differ, most significant first; empty when identical.
        pub causes: Vec<Cause>,
        /// The build info diff; `null` when identical or when either has none.
        pub build_info: Option<BuildInfo>,
        /// The build IDs; `null` when identical.
        pub build_id: Option<BuildId>,
        /// Every section of either file.
        pub sections: Vec<Section>,
        /// Functions whose code differs.
        pub functions: Functions,
    }

    /// One input file.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct File {
        /// The path as given on the command line.
        pub path: String,
        /// Size in bytes.
        pub size: u64,
        /// SHA-256 of the file, hex.
        pub sha256: String,
        /// The Go version from the build info, when read.
        pub go_version: Option<String>,
        /// Why the build info could not be read, when it could not.
        pub build_info_error: Option<String>,
        /// `elf`, `macho`, `pe`, ... when parsed.
        pub format: Option<String>,
        /// The architecture, when parsed.
        pub architecture: Option<String>,
        /// Whether the file has a symbol table, when parsed.
        pub has_symbols: Option<bool>,
        /// Whether the file has DWARF sections, when parsed.
        pub has_dwarf: Option<bool>,
        /// Why the object file could not be parsed, when it could not.
        pub object_error: Option<String>,
        /// The content-ID self-check: `intact`, `modified-after-link`, `no-build-id` or
        /// `packed`; absent when it was not run (identical files need none).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub self_check: Option<&'static str>,
    }

    /// One cause.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Cause {
        /// The stable code, e.g. `go-version`.
        pub code: &'static str,
        /// `certain`, `likely` or `possible`.
        pub confidence: &'static str,
        /// One line for a person.
        pub explanation: String,
        /// What the cause was concluded from.
        pub evidence: Vec<Evidence>,
    }

    /// One observation.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Evidence {
        /// `file`, `buildinfo`, `buildid`, `section`, `symbol` or `strings`.
        pub source: &'static str,
        /// What was observed.
        pub name: String,
        /// The value in the first file, `null` when absent.
        pub a: Option<String>,
        /// The value in the second file, `null` when absent.
        pub b: Option<String>,
    }

    /// A changed value.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Change {
        /// The field or setting.
        pub name: String,
        /// The value in the first file, `null` when absent.
        pub a: Option<String>,
        /// The value in the second file, `null` when absent.
        pub b: Option<String>,
    }

    /// The build info diff.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BuildInfo {
        /// Changed top-level fields.
        pub fields: Vec<Change>,
        /// Changed dependencies.
        pub deps: Vec<Dep>,
        /// Changed build settings.
        pub settings: Vec<Change>,
    }

    /// A changed dependency.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Dep {
        /// The module path.
        pub path: String,
        /// `added`, `removed`, `version`, `sum` or `replace`.
        pub change: &'static str,
        /// The module in the first file, `null` when absent.
        pub a: Option<DepState>,
        /// The module in the second file, `null` when absent.
        pub b: Option<DepState>,
    }

    /// A dependency's version, sum and replacement.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DepState {
        /// The version.
        pub version: String,
        /// The `h1:` sum, empty when not recorded.
        pub sum: String,
        /// The replacement, `path version sum`, when replaced.
        pub replace: Option<String>,
    }

    /// The build IDs.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BuildId {
        /// The Go build ID of the first file.
        pub go_a: Option<String>,
        /// The Go build ID of the second file.
        pub go_b: Option<String>,
        /// The Go build IDs split on `/`.
        pub parts: Vec<BuildIdPart>,
        /// The GNU build ID of the first file, hex.
        pub gnu_a: Option<String>,
        /// The GNU build ID of the second file, hex.
        pub gnu_b: Option<String>,
    }

    /// One part of the Go build ID.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BuildIdPart {
        /// Position, from 0.
        pub index: usize,
        /// What the part is.
        pub label: &'static str,
        /// The part in the first file.
        pub a: Option<String>,
        /// The part in the second file.
        pub b: Option<String>,
        /// Whether both are present and equal.
        pub equal: bool,
    }

    /// One section.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Section {
        /// The name.
        pub name: String,
        /// The section in the first file, `null` when absent.
        pub a: Option<SectionState>,
        /// The section in the second file, `null` when absent.
        pub b: Option<SectionState>,
        /// Whether present in both with equal size and content.
        pub equal: bool,
        /// Offset within the section of the first differing byte.
        pub first_difference: Option<u64>,
    }

    /// A section's size and hash.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SectionState {
        /// Size in memory.
        pub size: u64,
        /// SHA-256 of its file bytes, `null` for sections without file data.
        pub sha256: Option<String>,
    }

    /// The function comparison.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Functions {
        /// Whether functions were compared.
        pub compared: bool,
        /// Why not, when not.
        pub reason: Option<String>,
        /// Functions in both with different code, capped.
        pub changed: Vec<String>,
        /// How many changed in all.
        pub changed_count: usize,
        /// Functions only in the second file, capped.
        pub added: Vec<String>,
        /// How many were added in all.
        pub added_count: usize,
        /// Functions only in the first file, capped.
        pub removed: Vec<String>,
        /// How many were removed in all.
        pub removed_count: usize,
        /// Functions in both with the same code.
        pub unchanged_count: usize,
        /// Of the changed functions, those whose code changed size (an edit moves the
        /// code after it, so every function referring to what moved differs, but only
        /// the edited ones change size), capped; absent when none did.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub resized: Vec<String>,
    }
}

fn hex32(h: &[u8; 32]) -> String {
    hex::encode(h)
}

fn file(side: &Side, path: &str) -> v1::File {
    let (go_version, build_info_error) = match &side.build_info {
        Some(Ok(bi)) => (Some(String::from_utf8_lossy(&bi.go_version).into_owned()), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let (summary, object_error) = match &side.object {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    v1::File {
        path: path.to_string(),
        size: side.size,
        sha256: hex32(&side.sha256),
        go_version,
        build_info_error,
        format: summary.map(|s| s.format.clone()),
        architecture: summary.map(|s| s.architecture.clone()),
        has_symbols: summary.map(|s| s.has_symbols),
        has_dwarf: summary.map(|s| s.has_dwarf),
        object_error,
        self_check: self_check_code(side.self_check),
    }
}

/// The stable name of a self-check outcome, as `reprove buildinfo --check` spells it.
pub fn self_check_code(o: SelfCheckOutcome) -> Option<&'static str> {
    match o {
        SelfCheckOutcome::Unknown => None,
        SelfCheckOutcome::Intact => Some("intact"),
        SelfCheckOutcome::ModifiedAfterLink { .. } => Some("modified-after-link"),
        SelfCheckOutcome::NoBuildId => Some("no-build-id"),
        SelfCheckOutcome::Packed => Some("packed"),
    }
}

fn dep_kind(kind: DepChangeKind) -> &'static str {
    match kind {
        DepChangeKind::Added => "added",
        DepChangeKind::Removed => "removed",
        DepChangeKind::Version => "version",
        DepChangeKind::Sum => "sum",
        DepChangeKind::Replace => "replace",
    }
}

fn change(c: &crate::model::Change) -> v1::Change {
    v1::Change { name: c.name.clone(), a: c.a.clone(), b: c.b.clone() }
}

fn build_info(d: &BuildInfoDiff) -> v1::BuildInfo {
    let state = |s: &crate::model::DepState| v1::DepState {
        version: s.version.clone(),
        sum: s.sum.clone(),
        replace: s.replace.clone(),
    };
    v1::BuildInfo {
        fields: d.fields.iter().map(change).collect(),
        deps: d
            .deps
            .iter()
            .map(|dep| v1::Dep {
                path: dep.path.clone(),
                change: dep_kind(dep.kind),
                a: dep.a.as_ref().map(state),
                b: dep.b.as_ref().map(state),
            })
            .collect(),
        settings: d.settings.iter().map(change).collect(),
    }
}

fn section_state(s: &SectionInfo) -> v1::SectionState {
    v1::SectionState { size: s.size, sha256: s.sha256.as_ref().map(hex32) }
}

fn functions(f: &FunctionsDiff, cap: usize) -> v1::Functions {
    let capped = |v: &[String]| v.iter().take(cap).cloned().collect::<Vec<_>>();
    match f {
        FunctionsDiff::NotCompared(reason) => v1::Functions {
            compared: false,
            reason: Some(reason.clone()),
            changed: Vec::new(),
            changed_count: 0,
            added: Vec::new(),
            added_count: 0,
            removed: Vec::new(),
            removed_count: 0,
            unchanged_count: 0,
            resized: Vec::new(),
        },
        FunctionsDiff::Compared { changed, added, removed, unchanged, resized } => v1::Functions {
            compared: true,
            reason: None,
            changed: capped(changed),
            changed_count: changed.len(),
            added: capped(added),
            added_count: added.len(),
            removed: capped(removed),
            removed_count: removed.len(),
            unchanged_count: *unchanged,
            resized: capped(resized),
        },
    }
}

impl v1::Report {
    /// Converts a comparison of the files named `a_path` and `b_path`.
    pub fn new(c: &Comparison, a_path: &str, b_path: &str) -> Self {
        let build_id = (!c.identical).then(|| v1::BuildId {
            go_a: c.build_id.go_a.clone(),
            go_b: c.build_id.go_b.clone(),
            parts: c
                .build_id
                .parts
                .iter()
                .enumerate()
                .map(|(index, p)| v1::BuildIdPart {
                    index,
                    label: p.label,
                    a: p.a.clone(),
                    b: p.b.clone(),
                    equal: p.a.is_some() && p.a == p.b,
                })
                .collect(),
            gnu_a: c.build_id.gnu_a.clone(),
            gnu_b: c.build_id.gnu_b.clone(),
        });
        v1::Report {
            schema_version: v1::SCHEMA_VERSION,
            verdict: if c.identical { "identical" } else { "differ" },
            a: file(&c.a, a_path),
            b: file(&c.b, b_path),
            causes: c
                .causes
                .iter()
                .map(|cause| v1::Cause {
                    code: cause.code.as_str(),
                    confidence: cause.confidence.as_str(),
                    explanation: cause.explanation.clone(),
                    evidence: cause
                        .evidence
                        .iter()
                        .map(|e| v1::Evidence {
                            source: e.source.as_str(),
                            name: e.name.clone(),
                            a: e.a.clone(),
                            b: e.b.clone(),
                        })
                        .collect(),
                })
                .collect(),
            build_info: c.build_info.as_ref().map(build_info),
            build_id,
            sections: c
                .sections
                .iter()
                .map(|s| v1::Section {
                    name: s.name.clone(),
                    a: s.a.as_ref().map(section_state),
                    b: s.b.as_ref().map(section_state),
                    equal: s.is_equal(),
                    first_difference: s.first_difference,
                })
                .collect(),
            functions: functions(&c.functions, JSON_FUNCTIONS),
        }
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(absent)")
}

/// The first line of the text output: the verdict and the top cause.
pub fn headline(c: &Comparison) -> String {
    if c.identical {
        return format!("identical: sha256 {}", hex32(&c.a.sha256));
    }
    match c.causes.first() {
        Some(cause) => format!("differ: {} — {}", cause.code, cause.explanation),
        None => "differ: unknown".to_string(),
    }
}

/// The whole text output for people: the headline, then readable sections.
pub fn render_text(c: &Comparison, a_path: &str, b_path: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(c));
    let _ = writeln!(out, "\nfiles");
    for (name, side, path) in [("a", &c.a, a_path), ("b", &c.b, b_path)] {
        let _ = writeln!(out, "  {name}  {path}");
        let _ = writeln!(out, "     size {}  sha256 {}", side.size, hex32(&side.sha256));
        match &side.build_info {
            Some(Ok(bi)) => {
                let _ = writeln!(out, "     {}", String::from_utf8_lossy(&bi.go_version));
            }
            Some(Err(e)) => {
                let _ = writeln!(out, "     build info: {e}");
            }
            None => {}
        }
        if let Some(code) = self_check_code(side.self_check) {
            let _ = writeln!(out, "     self-check: {code}");
        }
        match &side.object {
            Some(Ok(s)) => {
                let _ = writeln!(
                    out,
                    "     {} {}{}{}",
                    s.format,
                    s.architecture,
                    if s.has_symbols { ", symbols" } else { ", no symbols" },
                    if s.has_dwarf { ", DWARF" } else { ", no DWARF" },
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(out, "     sections: {e}");
            }
            None => {}
        }
    }
    if c.identical {
        return out;
    }

    let _ = writeln!(out, "\ncauses");
    for cause in &c.causes {
        let _ = writeln!(out, "  {:<9} {:<19} {}", cause.confidence, cause.code, cause.explanation);
        for e in &cause.evidence {
            let _ = writeln!(
                out,
                "  {:<9} {:<19}   {} [{}]: {} | {}",
                "",
                "",
                e.name,
                e.source.as_str(),
                opt(&e.a),
                opt(&e.b)
            );
        }
    }

    if let Some(bi) = &c.build_info {
        let _ = writeln!(out, "\nbuild info");
        if bi.is_empty() {
            let _ = writeln!(out, "  identical");
        }
        for ch in bi.fields.iter().chain(&bi.settings) {
            let _ = writeln!(out, "  {}: {} -> {}", ch.name, opt(&ch.a), opt(&ch.b));
        }
        for dep in &bi.deps {
            let show = |s: &Option<crate::model::DepState>| match s {
                None => "(absent)".to_string(),
                Some(s) => {
                    let mut t = format!("{} {}", s.version, if s.sum.is_empty() { "(no sum)" } else { &s.sum });
                    if let Some(r) = &s.replace {
                        let _ = write!(t, " => {r}");
                    }
                    t
                }
            };
            let _ = writeln!(out, "  dep {} [{}]: {} -> {}", dep.path, dep_kind(dep.kind), show(&dep.a), show(&dep.b));
        }
    }

    let id = &c.build_id;
    let _ = writeln!(out, "\nbuild id");
    let _ = writeln!(out, "  go   a {}", id.go_a.as_deref().unwrap_or("(none)"));
    let _ = writeln!(out, "       b {}", id.go_b.as_deref().unwrap_or("(none)"));
    for p in &id.parts {
        let state = if p.a.is_some() && p.a == p.b { "same" } else { "differs" };
        let _ = writeln!(out, "       {:<24} {state}", p.label);
    }
    if id.gnu_a.is_some() || id.gnu_b.is_some() {
        let _ = writeln!(out, "  gnu  a {}", id.gnu_a.as_deref().unwrap_or("(none)"));
        let _ = writeln!(out, "       b {}", id.gnu_b.as_deref().unwrap_or("(none)"));
    }

    let differing: Vec<&SectionDiff> = c.sections.iter().filter(|s| !s.is_equal()).collect();
    let _ = writeln!(out, "\nsections ({} of {} differ)", differing.len(), c.sections.len());
    for s in differing.iter().take(TEXT_ITEMS) {
        let show = |i: &Option<SectionInfo>| match i {
            None => "absent".to_string(),
            Some(i) => match &i.sha256 {
                Some(h) => format!("{} bytes sha256 {}", i.size, &hex32(h)[..16]),
                None => format!("{} bytes (no file data)", i.size),
            },
        };
        let at = s.first_difference.map(|o| format!("  first difference at {o:#x}")).unwrap_or_default();
        let _ = writeln!(out, "  {:<20} {} | {}{at}", s.name, show(&s.a), show(&s.b));
    }
    if differing.len() > TEXT_ITEMS {
        let _ = writeln!(out, "  … and {} more", differing.len() - TEXT_ITEMS);
    }

    let _ = writeln!(out, "\nfunctions");
    match &c.functions {
        FunctionsDiff::NotCompared(reason) => {
            let _ = writeln!(out, "  not compared: {reason}");
        }
        FunctionsDiff::Compared { changed, added, removed, unchanged, resized } => {
            let _ = writeln!(
                out,
                "  {} changed, {} added, {} removed, {unchanged} unchanged",
                changed.len(),
                added.len(),
                removed.len()
            );
            for (what, list) in [("resized", resized), ("changed", changed), ("added", added), ("removed", removed)] {
                for name in list.iter().take(TEXT_ITEMS) {
                    let _ = writeln!(out, "  {what:<8} {name}");
                }
                if list.len() > TEXT_ITEMS {
                    let _ = writeln!(out, "  {what:<8} … and {} more", list.len() - TEXT_ITEMS);
                }
            }
        }
    }
    out
}
