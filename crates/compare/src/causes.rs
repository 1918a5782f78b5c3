//! From differences to causes: map every build info change to a cause code, infer
//! what Go does not record from the bytes, and rank the result.

use std::collections::BTreeMap;

use crate::model::{
    BuildInfoDiff, Cause, CauseCode, Change, Confidence, DepChange, DepChangeKind, Evidence, EvidenceSource,
    FunctionsDiff, SectionDiff,
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
    truncated(input, &mut found);
    no_build_info(input, &mut found);
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
    if found.by_code.is_empty() {
        build_id_only(input, &mut found);
    }
    if found.by_code.is_empty() {
        unknown(input, &mut found);
    }
    found.into_causes()
}

fn truncated(input: &Input<'_, '_>, found: &mut Found) {
    let (a, b) = (input.a.data, input.b.data);
    let side = if a.len() < b.len() && b.starts_with(a) {
        "a"
    } else if b.len() < a.len() && a.starts_with(b) {
        "b"
    } else {
        return;
    };
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

/// Without build info on both sides, a different format or architecture still tells.
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

/// `-ldflags` under `-trimpath` are not recorded: look for `-X` strings instead.
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
            return;
        }
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

/// Byte ranges of Go build ID text markers: the ID between `\xff Go build ID: "` and `"`.
fn build_id_marker_ranges(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    const MARKER: &[u8] = b"\xff Go build ID: \"";
    memchr::memmem::find_iter(data, MARKER)
        .filter_map(|at| {
            let start = at + MARKER.len();
            let tail = &data[start..data.len().min(start + 1024)];
            memchr::memchr(b'"', tail).map(|len| start..start + len)
        })
        .collect()
}

fn build_id_only(input: &Input<'_, '_>, found: &mut Found) {
    let (a, b) = (input.a.data, input.b.data);
    if a.len() != b.len() {
        return;
    }
    let mut ranges = build_id_marker_ranges(a);
    ranges.extend(build_id_marker_ranges(b));
    // Copies of the whole ID elsewhere, e.g. -X=cmd/internal/objabi.buildID in toolchain commands.
    for (data, id) in [(a, &input.a.go_build_id), (b, &input.b.go_build_id)] {
        if let Some(id) = id.as_deref().filter(|id| id.len() >= 16) {
            ranges.extend(memchr::memmem::find_iter(data, id.as_bytes()).map(|at| at..at + id.len()));
        }
    }
    for parsed in [&input.a.parsed, &input.b.parsed].into_iter().flatten() {
        ranges.extend(parsed.build_id_ranges.iter().cloned());
    }
    if ranges.is_empty() {
        return;
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut at = 0;
    for r in &ranges {
        if r.start > at && a[at..r.start] != b[at..r.start] {
            return;
        }
        at = at.max(r.end);
    }
    if a[at.min(a.len())..] != b[at.min(b.len())..] {
        return;
    }
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
    found.explain(
        CauseCode::BuildIdOnly,
        "only the build IDs differ: the files are identical with them masked (-ldflags=-buildid?)".into(),
    );
}

fn unknown(input: &Input<'_, '_>, found: &mut Found) {
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
    if let FunctionsDiff::Compared { changed, .. } = input.functions {
        for name in changed.iter().take(EXAMPLES) {
            found.add(
                CauseCode::Unknown,
                Confidence::Possible,
                Evidence::new(EvidenceSource::Symbol, name.clone(), Some("code".into()), Some("differs".into())),
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
    let text = if where_.is_empty() {
        "the files differ and nothing recorded or found explains it".to_string()
    } else {
        format!("nothing recorded explains the difference in {}", where_.join(", "))
    };
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

    #[test]
    fn strip_flags_are_parsed() {
        assert_eq!(strip_flags(Some("-s -w -X main.v=1")), (true, true));
        assert_eq!(strip_flags(Some("-X main.v=1 --w")), (false, true));
        assert_eq!(strip_flags(None), (false, false));
    }
}
