//! The `compare` step: the verdict, its causes, and the module sums compared
//! three ways (go.sum at the commit, the reference's build info, the rebuilt
//! binary's build info). No I/O.

use std::collections::BTreeMap;

use compare;
use goinfo::{BuildInfo, Module};
use gomod::{GoSum, ModuleVersion, SumCheck};
use report::v1::{self, Verdict};
use stdx::setting::Setting;

/// What the compare step concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Why the rebuilt binary differs, most significant first.
    pub causes: Vec<v1::Cause>,
    /// The reference checked against its own content ID, when it was read and
    /// differs from the rebuilt binary.
    pub reference_self_check: Option<v1::SelfCheck>,
}

/// The verdict and its causes. `reference` is `None` when only its digest is known.
///
/// When the two differ, each is checked against its own content ID first
/// ([`compare::self_checks`]): a reference that fails the check while the rebuilt
/// binary passes it was changed after it was built, and the first cause says so
/// (`modified-after-link`, certain) and where.
pub fn verdict(reference: Option<&[u8]>, reference_sha: &str, rebuilt: &[u8], rebuilt_sha: &str) -> Judgement {
    if reference_sha == rebuilt_sha {
        return Judgement { verdict: Verdict::Reproduced, causes: Vec::new(), reference_self_check: None };
    }
    let Some(reference) = reference else {
        let cause = v1::Cause {
            code: v1::CauseCode::Unknown,
            confidence: v1::Confidence::Certain,
            explanation: format!(
                "only the reference's digest is known and the rebuilt binary's differs; verify with {} FILE to explain the difference",
                Setting::Reference
            ),
            evidence: vec![v1::Evidence {
                source: "file".into(),
                name: "sha256".into(),
                reference: Some(reference_sha.to_string()),
                rebuilt: Some(rebuilt_sha.to_string()),
            }],
        };
        return Judgement { verdict: Verdict::NotReproduced, causes: vec![cause], reference_self_check: None };
    };
    let checks = compare::self_checks(reference, rebuilt);
    let c = compare::compare_named(reference, rebuilt, checks, ["the reference", "the rebuilt binary"]);
    let causes = c
        .causes
        .iter()
        .map(|c| v1::Cause {
            code: c.code,
            confidence: c.confidence,
            explanation: c.explanation.clone(),
            evidence: c
                .evidence
                .iter()
                .map(|e| v1::Evidence {
                    source: e.source.as_str().into(),
                    name: e.name.clone(),
                    reference: e.a.clone(),
                    rebuilt: e.b.clone(),
                })
                .collect(),
        })
        .collect();
    Judgement { verdict: Verdict::NotReproduced, causes, reference_self_check: self_check(checks.a) }
}

/// The report's name for a self-check outcome; `None` when not known.
fn self_check(o: compare::SelfCheckOutcome) -> Option<v1::SelfCheck> {
    match o {
        compare::SelfCheckOutcome::Intact => Some(v1::SelfCheck::Intact),
        compare::SelfCheckOutcome::ModifiedAfterLink { .. } => Some(v1::SelfCheck::ModifiedAfterLink),
        compare::SelfCheckOutcome::NoBuildId => Some(v1::SelfCheck::NoBuildId),
        compare::SelfCheckOutcome::Packed => Some(v1::SelfCheck::Packed),
        _ => None,
    }
}

/// One line for a person.
pub fn summary(verdict: Verdict, r: &v1::Report) -> String {
    let commit = r.inputs.source.commit.as_deref().unwrap_or(&r.inputs.source.rev);
    let commit = commit.get(..12).unwrap_or(commit);
    if r.inputs.source.module.is_some() {
        // `pkg:golang/PATH@VERSION` names the version already.
        return module_summary(verdict, r);
    }
    match verdict {
        Verdict::Reproduced => format!(
            "{} was rebuilt bit for bit from {} @ {commit} (sha256:{})",
            r.subject.name, r.inputs.source.uri, r.subject.sha256
        ),
        Verdict::NotReproduced if r.causes.first().is_some_and(|c| c.code == v1::CauseCode::ModifiedAfterLink) => {
            // The cause that matters most is said first, in words.
            let first = r.causes.first().map(|c| c.explanation.as_str()).unwrap_or_default();
            format!(
                "{} rebuilt from {} @ {commit} differs from the reference: modified-after-link: {first}",
                r.subject.name, r.inputs.source.uri
            )
        }
        Verdict::NotReproduced | Verdict::Error => {
            let codes: Vec<&str> = r.causes.iter().map(|c| c.code.as_str()).collect();
            format!(
                "{} rebuilt from {} @ {commit} differs from the reference: {}",
                r.subject.name,
                r.inputs.source.uri,
                if codes.is_empty() { "unexplained".to_string() } else { codes.join(", ") }
            )
        }
    }
}

/// [`summary`] for a released module version as the source.
fn module_summary(verdict: Verdict, r: &v1::Report) -> String {
    let name = if r.subject.name.is_empty() { "the reference" } else { r.subject.name.as_str() };
    let uri = &r.inputs.source.uri;
    match (verdict, r.causes.first()) {
        (Verdict::Reproduced, _) => {
            format!("{name} was rebuilt bit for bit from {uri} (sha256:{})", r.subject.sha256)
        }
        (_, Some(c)) if c.code == v1::CauseCode::MainModuleSum => {
            format!("{name} was not built from {uri} as published: main-module-sum: {}", c.explanation)
        }
        _ => {
            let codes: Vec<&str> = r.causes.iter().map(|c| c.code.as_str()).collect();
            format!(
                "{name} rebuilt from {uri} differs from the reference: {}",
                if codes.is_empty() { "unexplained".to_string() } else { codes.join(", ") }
            )
        }
    }
}

/// The module a build info dependency resolves to: its replacement when replaced by a module.
fn effective(m: &Module) -> (String, String, String, Option<String>) {
    match &m.replace {
        Some(r) if !r.version.is_empty() => {
            (r.path.to_string(), r.version.to_string(), r.sum.to_string(), Some(format!("{}@{}", r.path, r.version)))
        }
        Some(r) => (m.path.to_string(), m.version.to_string(), String::new(), Some(r.path.to_string())),
        None => (m.path.to_string(), m.version.to_string(), m.sum.to_string(), None),
    }
}

/// The modules for the report: from a build info when there is one, else go.sum's zip lines.
pub fn modules(bi: Option<&BuildInfo>, sum: Option<&GoSum>) -> Vec<v1::Module> {
    if let Some(bi) = bi {
        return bi
            .deps
            .iter()
            .map(|d| {
                let (_, _, h1, replace) = effective(d);
                v1::Module { path: d.path.to_string(), version: d.version.to_string(), h1, replace }
            })
            .collect();
    }
    sum.map(|s| {
        s.lines()
            .iter()
            .filter(|l| !l.version.ends_with("/go.mod"))
            .map(|l| v1::Module { path: l.path.clone(), version: l.version.clone(), h1: l.hash.clone(), replace: None })
            .collect()
    })
    .unwrap_or_default()
}

/// Every disagreement between go.sum, the reference and the rebuilt binary.
pub fn module_findings(
    sum: Option<&GoSum>,
    reference: Option<&BuildInfo>,
    rebuilt: Option<&BuildInfo>,
) -> Vec<v1::ModuleFinding> {
    let mut out = Vec::new();
    for (side, bi) in [("reference", reference), ("rebuilt", rebuilt)] {
        let Some(bi) = bi else { continue };
        for d in &bi.deps {
            let (path, version, h1, _) = effective(d);
            if h1.is_empty() {
                continue;
            }
            let check = sum.map(|s| s.check(&ModuleVersion::new(path.clone(), version.clone()), false, &h1));
            let finding = |kind: &str, go_sum: Option<String>, message: String| v1::ModuleFinding {
                kind: kind.into(),
                path: path.clone(),
                version: version.clone(),
                go_sum,
                reference: (side == "reference").then(|| h1.clone()),
                rebuilt: (side == "rebuilt").then(|| h1.clone()),
                message,
            };
            match check {
                Some(SumCheck::Mismatch { want, line }) => out.push(finding(
                    &format!("{side}-vs-go-sum"),
                    Some(want.clone()),
                    format!("{path}@{version}: the {side} binary records {h1}, go.sum (line {line}) records {want}"),
                )),
                Some(SumCheck::Missing) | None => out.push(finding(
                    "missing-in-go-sum",
                    None,
                    format!(
                        "{path}@{version}: the {side} binary records {h1}, go.sum at the commit has no line for it"
                    ),
                )),
                Some(SumCheck::Match) => {}
            }
        }
    }
    if let (Some(a), Some(b)) = (reference, rebuilt) {
        let index = |bi: &BuildInfo| -> BTreeMap<String, (String, String)> {
            bi.deps.iter().map(|d| (d.path.to_string(), (d.version.to_string(), effective(d).2))).collect()
        };
        let (ia, ib) = (index(a), index(b));
        for (path, (va, sa)) in &ia {
            match ib.get(path) {
                None => out.push(v1::ModuleFinding {
                    kind: "only-in-reference".into(),
                    path: path.clone(),
                    version: va.clone(),
                    go_sum: None,
                    reference: Some(sa.clone()),
                    rebuilt: None,
                    message: format!("{path}@{va} is in the reference binary but not in the rebuilt one"),
                }),
                Some((vb, sb)) if vb != va || sb != sa => out.push(v1::ModuleFinding {
                    kind: "reference-vs-rebuilt".into(),
                    path: path.clone(),
                    version: va.clone(),
                    go_sum: None,
                    reference: Some(format!("{va} {sa}")),
                    rebuilt: Some(format!("{vb} {sb}")),
                    message: format!("{path}: the reference records {va} {sa}, the rebuilt binary {vb} {sb}"),
                }),
                Some(_) => {}
            }
        }
        for (path, (vb, sb)) in &ib {
            if !ia.contains_key(path) {
                out.push(v1::ModuleFinding {
                    kind: "only-in-rebuilt".into(),
                    path: path.clone(),
                    version: vb.clone(),
                    go_sum: None,
                    reference: None,
                    rebuilt: Some(sb.clone()),
                    message: format!("{path}@{vb} is in the rebuilt binary but not in the reference"),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bi(text: &str) -> BuildInfo {
        match goinfo::parse_modinfo(text.as_bytes()) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn three_way_module_findings() {
        let sum = match GoSum::parse(
            "go.sum",
            b"example.com/a v1.0.0 h1:AAA=\nexample.com/a v1.0.0/go.mod h1:M=\nexample.com/b v1.0.0 h1:BBB=\n",
        ) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        };
        let reference = bi(
            "path\tx\nmod\tx\t(devel)\t\ndep\texample.com/a\tv1.0.0\th1:AAA=\ndep\texample.com/b\tv1.0.0\th1:XXX=\n",
        );
        let rebuilt = bi("path\tx\nmod\tx\t(devel)\t\ndep\texample.com/a\tv1.0.0\th1:AAA=\ndep\texample.com/b\tv1.0.0\th1:BBB=\ndep\texample.com/c\tv1.0.0\th1:CCC=\n");
        let f = module_findings(Some(&sum), Some(&reference), Some(&rebuilt));
        let kinds: Vec<(&str, &str)> = f.iter().map(|f| (f.kind.as_str(), f.path.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("reference-vs-go-sum", "example.com/b"),
                ("missing-in-go-sum", "example.com/c"),
                ("reference-vs-rebuilt", "example.com/b"),
                ("only-in-rebuilt", "example.com/c"),
            ]
        );
        assert!(module_findings(Some(&sum), Some(&rebuilt), Some(&rebuilt)).iter().all(|f| f.path == "example.com/c"));
    }

    #[test]
    fn workspace_modules_are_devel_without_a_sum_and_no_finding() {
        let sum = match GoSum::parse("go.sum", b"example.com/a v1.0.0 h1:AAA=\n") {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        };
        let ws = "path\tx\nmod\tx\t(devel)\t\ndep\texample.com/lib\t(devel)\t\ndep\texample.com/a\tv1.0.0\th1:AAA=\n";
        assert!(module_findings(Some(&sum), Some(&bi(ws)), Some(&bi(ws))).is_empty());
        // A workspace module only one side has is still named.
        let alone = "path\tx\nmod\tx\t(devel)\t\ndep\texample.com/a\tv1.0.0\th1:AAA=\n";
        let f = module_findings(Some(&sum), Some(&bi(ws)), Some(&bi(alone)));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind.as_str(), f[0].path.as_str(), f[0].version.as_str()),
            ("only-in-reference", "example.com/lib", "(devel)")
        );
        let m = modules(Some(&bi(ws)), None);
        assert_eq!((m[0].version.as_str(), m[0].h1.as_str()), ("(devel)", ""));
    }

    #[test]
    fn digest_only_references_differ_without_a_diff() {
        let j = verdict(None, "aa", b"x", "bb");
        assert_eq!(j.verdict, Verdict::NotReproduced);
        assert_eq!(j.causes[0].code, v1::CauseCode::Unknown);
        assert_eq!(j.reference_self_check, None);
        assert_eq!(verdict(None, "aa", b"x", "aa").verdict, Verdict::Reproduced);
    }

    /// Every self-check outcome reaches the report as itself.
    #[test]
    fn every_self_check_outcome_has_its_report_name() {
        for o in [
            compare::SelfCheckOutcome::Intact,
            compare::SelfCheckOutcome::ModifiedAfterLink { first_mismatch: None },
            compare::SelfCheckOutcome::NoBuildId,
            compare::SelfCheckOutcome::Packed,
        ] {
            assert_eq!(self_check(o).map(|c| c.as_str()), compare::report::self_check_code(o));
        }
        assert_eq!(self_check(compare::SelfCheckOutcome::Unknown), None);
    }
}
