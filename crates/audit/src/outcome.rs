//! From a decision or a rebuild's report to the binary's outcome in the
//! audit: reproduced, not reproduced, unverifiable (with the reason and what
//! to add) or error.
//!
//! A rebuild that stopped because a recipe field is undetermined is
//! `unverifiable: recipe-undetermined` with the pipeline's message (it names
//! the field and the setting); every other failure is an `error` that keeps
//! its class, so the CLI can tell exit 2 from exit 3.

use report::audit::v1::{ClaimedSource, Outcome, Reason};
use report::v1;

use crate::claim::Claim;
use crate::plan::Unverifiable;

/// How the audit document names a claim.
pub fn claimed_source(claim: &Claim) -> ClaimedSource {
    match claim {
        Claim::Module { path, version, sum } => {
            ClaimedSource::Module { path: path.clone(), version: version.clone(), sum: Some(sum.clone()) }
        }
        Claim::Vcs { system, revision, modified, time, .. } => ClaimedSource::Vcs {
            system: system.clone(),
            revision: revision.clone(),
            modified: *modified,
            time: time.clone(),
        },
        Claim::Devel { .. } => ClaimedSource::Devel,
        Claim::None => ClaimedSource::NoBuildInfo,
    }
}

/// The document's reason for a planning decision.
pub fn reason(why: Unverifiable) -> Reason {
    match why {
        Unverifiable::NoBuildInfo => Reason::NoBuildInfo,
        Unverifiable::SourceUnknown => Reason::SourceUnknown,
        Unverifiable::RecipeUndetermined => Reason::RecipeUndetermined,
        Unverifiable::ToolchainMissing => Reason::ToolchainMissing,
    }
}

/// The outcome, reason and one-line detail of a rebuild's report.
pub fn judge(report: &v1::Report) -> (Outcome, Option<Reason>, String) {
    match report.verdict {
        v1::Verdict::Reproduced => (Outcome::Reproduced, None, report.summary.clone()),
        v1::Verdict::NotReproduced => {
            let detail = match report.causes.first() {
                Some(cause) => format!("{}: {}", cause.code.as_str(), cause.explanation),
                None => report.summary.clone(),
            };
            (Outcome::NotReproduced, None, detail)
        }
        v1::Verdict::Error => {
            let (code, message) =
                report.error.as_ref().map_or((None, report.summary.clone()), |e| (Some(e.code), e.message.clone()));
            if code == Some(v1::Code::RecipeUndetermined) {
                (Outcome::Unverifiable, Some(Reason::RecipeUndetermined), message)
            } else {
                (Outcome::Error, None, message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdict: &str, error: Option<(&str, &str)>) -> v1::Report {
        let text = include_str!("../../../tests/fixtures/report/not-reproduced.json");
        let mut r: v1::Report = serde_json::from_str(text).unwrap();
        r.verdict = match verdict {
            "reproduced" => v1::Verdict::Reproduced,
            "error" => v1::Verdict::Error,
            _ => v1::Verdict::NotReproduced,
        };
        r.error = error.map(|(code, message)| {
            serde_json::from_value(serde_json::json!({
                "step": "recipe", "class": "input", "code": code, "message": message,
                "remediation": null, "modules": []
            }))
            .unwrap()
        });
        r
    }

    #[test]
    fn an_undetermined_recipe_is_unverifiable_and_other_failures_are_errors() {
        let (o, r, d) = judge(&report("error", Some(("recipe-undetermined", "ldflags: not recorded (give ldflags)"))));
        assert_eq!((o, r), (Outcome::Unverifiable, Some(Reason::RecipeUndetermined)));
        assert!(d.contains("ldflags"), "{d}");
        let (o, r, _) = judge(&report("error", Some(("build-failed", "go build failed"))));
        assert_eq!((o, r), (Outcome::Error, None));
        let (o, _, d) = judge(&report("not-reproduced", None));
        assert_eq!(o, Outcome::NotReproduced);
        assert!(d.starts_with("ldflags"), "{d}");
        assert_eq!(judge(&report("reproduced", None)).0, Outcome::Reproduced);
    }

    #[test]
    fn claims_are_named_as_the_document_names_them() {
        let module = Claim::Module { path: "m".into(), version: "v1.0.0".into(), sum: "h1:x=".into() };
        assert_eq!(claimed_source(&module).kind(), "module");
        assert_eq!(claimed_source(&Claim::None).kind(), "none");
        assert_eq!(reason(Unverifiable::ToolchainMissing), Reason::ToolchainMissing);
    }
}
