//! `reprove check`: is the build reproducible at all? No reference: the same
//! commit is built once as a baseline and again under each [`Variation`]
//! (another build directory, another environment, a warm build cache), and
//! every output is compared with the baseline; a difference names the
//! variation and the causes `compare` finds.
//!
//! The baseline and every variation but `warm-cache` build with an empty Go
//! build cache, so that a variation cannot hide behind cached objects.
//! `umask` (077) and `user-id` (1000:1000) need the runtime's help: runc as
//! root sets both (`process.user`); rootless runc, bwrap and the engines
//! cannot, and then the variation is listed as not varied with the reason,
//! as it is when the output shows the runtime ignored it (the output file's
//! mode or owner). The clock cannot be set back or forward (no namespace
//! covers `CLOCK_REALTIME`), so the `time` variation is the same build again,
//! at least [`LATER_BY`] after the baseline: it is also the control. When it
//! differs, the output depends on when it was built (or is not deterministic
//! at all), and the other variations' differences cannot be put on them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::pipeline::{prepare, Prepared, Run};
use crate::record::failure_of;
use crate::steps::build;
use crate::{CancelToken, Progress, RebuildError, Request, Step};
use report::v1 as verify_v1;
pub use v1::{Timed, VariationName, Verdict};

/// One way the second build differs from the baseline.
#[derive(Debug, Clone)]
pub struct Variation {
    /// A stable name: `time`, `build-dir`, `environment`, `umask`, `user-id`, `warm-cache`.
    pub name: VariationName,
    /// What is varied, for people.
    pub description: &'static str,
    src_mount: Option<&'static str>,
    env: &'static [(&'static str, &'static str)],
    warm_cache: bool,
    user: Option<(u32, u32)>,
    umask: Option<u32>,
    /// Starts at least [`LATER_BY`] after the baseline finished.
    later: bool,
}

/// How much later than the baseline the `time` variation starts: enough for
/// a clock read at second resolution to differ.
pub const LATER_BY: Duration = Duration::from_secs(2);

/// The umask of the `umask` variation.
pub const VARIED_UMASK: u32 = 0o077;
/// The user and group ids of the `user-id` variation.
pub const VARIED_USER: (u32, u32) = (1000, 1000);

/// The variations `reprove check` tries, in order.
pub fn variations() -> Vec<Variation> {
    vec![
        Variation {
            name: VariationName::Time,
            description: "the same build again, at least 2 s after the baseline finished (the control: nothing else \
                          changes)",
            src_mount: None,
            env: &[],
            warm_cache: false,
            user: None,
            umask: None,
            later: true,
        },
        Variation {
            name: VariationName::BuildDir,
            description: "the source is at /home/builder/work/project instead of /src",
            src_mount: Some("/home/builder/work/project"),
            env: &[],
            warm_cache: false,
            user: None,
            umask: None,
            later: false,
        },
        Variation {
            name: VariationName::Environment,
            description: "another time zone, locale, HOME and user name, one CPU (GOMAXPROCS=1), and the \
                          unrelated variables a CI runner sets (CI, BUILD_NUMBER)",
            src_mount: None,
            env: &[
                ("TZ", "Pacific/Kiritimati"),
                ("LANG", "tr_TR.UTF-8"),
                ("LC_ALL", "tr_TR.UTF-8"),
                ("HOME", "/tmp/elsewhere"),
                ("USER", "builder"),
                ("GOMAXPROCS", "1"),
                ("CI", "true"),
                ("BUILD_NUMBER", "4711"),
            ],
            warm_cache: false,
            user: None,
            umask: None,
            later: false,
        },
        Variation {
            name: VariationName::Umask,
            description: "umask 077 instead of 022",
            src_mount: None,
            env: &[],
            warm_cache: false,
            user: None,
            umask: Some(VARIED_UMASK),
            later: false,
        },
        Variation {
            name: VariationName::UserId,
            description: "the build runs as 1000:1000 instead of the sandbox's root",
            src_mount: None,
            env: &[],
            warm_cache: false,
            user: Some(VARIED_USER),
            umask: None,
            later: false,
        },
        Variation {
            name: VariationName::WarmCache,
            description: "the baseline's warm Go build cache instead of an empty one",
            src_mount: None,
            env: &[],
            warm_cache: true,
            user: None,
            umask: None,
            later: false,
        },
    ]
}

/// What `reprove check` never varies, and why. A variation the runtime
/// cannot apply is added to the report's list when it is skipped.
pub const NOT_VARIED: &[&str] = &["clock: no namespace changes CLOCK_REALTIME, so the clock is not set back or \
                                   forward; the time variation builds again later instead, which finds a dependence \
                                   on the second or minute of the build but not on the date"];

/// Version 1 of the `reprove check --json` document (schemas/check.schema.json).
pub mod v1 {
    use serde::{Deserialize, Serialize};

    use super::verify_v1;

    /// The whole document.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Report {
        /// Always 1.
        pub schema_version: u32,
        /// `reproducible`, `not-reproducible` or `error`.
        pub verdict: Verdict,
        /// One line for a person.
        pub summary: String,
        /// The inputs (the reference is empty).
        pub inputs: verify_v1::Inputs,
        /// The recipe.
        pub recipe: verify_v1::Recipe,
        /// The baseline build's output.
        pub baseline: Option<verify_v1::Artifact>,
        /// Each variation and its outcome.
        pub variations: Vec<Outcome>,
        /// What was not varied, and why.
        pub not_varied: Vec<String>,
        /// Wall time of each step.
        pub timings: Vec<Timing>,
        /// Why there is no verdict.
        pub error: Option<verify_v1::Failure>,
        /// Notes.
        pub warnings: Vec<String>,
        /// Tool versions.
        pub tools: verify_v1::Tools,
    }

    /// The outcome of a check.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum Verdict {
        /// Every variation built the same binary as the baseline.
        Reproducible,
        /// Some variation built another binary.
        NotReproducible,
        /// There is no verdict: a step failed.
        Error,
    }

    impl Verdict {
        /// The name as the document carries it.
        pub fn as_str(self) -> &'static str {
            match self {
                Verdict::Reproducible => "reproducible",
                Verdict::NotReproducible => "not-reproducible",
                Verdict::Error => "error",
            }
        }
    }

    impl std::fmt::Display for Verdict {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.pad(self.as_str())
        }
    }

    /// The name of a [`Variation`](super::Variation).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum VariationName {
        /// The same build again, later (the control).
        Time,
        /// Another source directory.
        BuildDir,
        /// Another environment.
        Environment,
        /// Another umask.
        Umask,
        /// Another user.
        UserId,
        /// The baseline's warm build cache.
        WarmCache,
    }

    impl VariationName {
        /// Every name, in the order the variations run.
        pub const ALL: &'static [VariationName] = &[
            VariationName::Time,
            VariationName::BuildDir,
            VariationName::Environment,
            VariationName::Umask,
            VariationName::UserId,
            VariationName::WarmCache,
        ];

        /// The name as the document carries it.
        pub fn as_str(self) -> &'static str {
            match self {
                VariationName::Time => "time",
                VariationName::BuildDir => "build-dir",
                VariationName::Environment => "environment",
                VariationName::Umask => "umask",
                VariationName::UserId => "user-id",
                VariationName::WarmCache => "warm-cache",
            }
        }
    }

    impl std::fmt::Display for VariationName {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.pad(self.as_str())
        }
    }

    /// What a check timing is of: a pipeline step, the baseline build
    /// (`build:baseline`) or a variation's build (`build:<name>`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Timed {
        /// A step before the builds.
        Step(verify_v1::Step),
        /// The baseline build.
        Baseline,
        /// A variation's build.
        Variation(VariationName),
    }

    impl std::fmt::Display for Timed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Timed::Step(s) => f.write_str(s.as_str()),
                Timed::Baseline => f.write_str("build:baseline"),
                Timed::Variation(v) => write!(f, "build:{}", v.as_str()),
            }
        }
    }

    /// A timing's step that is neither a pipeline step nor a build.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0:?}: expected a pipeline step, build:baseline or build:<variation>")]
    pub struct UnknownTimed(pub String);

    impl std::str::FromStr for Timed {
        type Err = UnknownTimed;

        fn from_str(s: &str) -> Result<Timed, UnknownTimed> {
            if s == "build:baseline" {
                return Ok(Timed::Baseline);
            }
            let found = match s.strip_prefix("build:") {
                Some(name) => VariationName::ALL.iter().find(|v| v.as_str() == name).map(|v| Timed::Variation(*v)),
                None => verify_v1::Step::ALL.iter().find(|step| step.as_str() == s).map(|step| Timed::Step(*step)),
            };
            found.ok_or_else(|| UnknownTimed(s.to_owned()))
        }
    }

    impl Serialize for Timed {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self)
        }
    }

    impl<'de> Deserialize<'de> for Timed {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timed, D::Error> {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        }
    }

    /// A step's or a build's wall time.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Timing {
        /// The step, or the build.
        pub step: Timed,
        /// Milliseconds.
        pub ms: u64,
    }

    /// One variation's outcome.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Outcome {
        /// The variation's name.
        pub name: VariationName,
        /// What was varied.
        pub description: String,
        /// The output's SHA-256.
        pub sha256: String,
        /// Whether it is identical to the baseline.
        pub identical: bool,
        /// Why it differs (reference = the baseline, rebuilt = this variation).
        pub causes: Vec<verify_v1::Cause>,
    }
}

/// Runs the check. `req.reference` is ignored.
pub fn check(req: &Request, progress: &dyn Progress, cancel: &CancelToken) -> v1::Report {
    let mut req = req.clone();
    req.reference = crate::ReferenceInput::None;
    let mut run = Run::new(&req, progress);
    let mut out = v1::Report {
        schema_version: 1,
        verdict: Verdict::Error,
        summary: String::new(),
        inputs: run.record.inputs(&req),
        recipe: run.record.recipe(),
        baseline: None,
        variations: Vec::new(),
        not_varied: NOT_VARIED.iter().map(|s| s.to_string()).collect(),
        timings: Vec::new(),
        error: None,
        warnings: Vec::new(),
        tools: run.record.tools(&req),
    };
    // Without a reference the source step never reaches a verdict itself.
    let result = prepare(&mut run).and_then(|p| match p {
        Some(p) => builds(&mut run, &p, &mut out, cancel),
        None => Ok(()),
    });
    out.inputs = run.record.inputs(&req);
    out.recipe = run.record.recipe();
    // The pipeline's steps came first, then the builds (timed into `out`).
    let builds = std::mem::take(&mut out.timings);
    out.timings =
        run.record.timings.iter().map(|t| v1::Timing { step: Timed::Step(t.step), ms: t.ms }).chain(builds).collect();
    out.warnings = run.record.warnings.clone();
    out.tools = run.record.tools(&req);
    match result {
        Err((step, e)) => {
            out.summary = format!("no verdict: the {step} step failed: {}", e.to_string().lines().next().unwrap_or(""));
            out.error = Some(failure_of(step, &e));
        }
        Ok(()) => {
            let differing: Vec<&str> =
                out.variations.iter().filter(|v| !v.identical).map(|v| v.name.as_str()).collect();
            let control_differs = out.variations.iter().any(|v| v.name == VariationName::Time && !v.identical);
            if differing.is_empty() {
                out.verdict = Verdict::Reproducible;
                out.summary = format!("every variation ({}) built the same binary", out.variations.len());
            } else if control_differs {
                out.verdict = Verdict::NotReproducible;
                out.summary = format!(
                    "the same build, run again later, made another binary: the output depends on the time of the \
                     build or is not deterministic, so the other differences may not come from their variations \
                     (differing: {})",
                    differing.join(", ")
                );
            } else {
                out.verdict = Verdict::NotReproducible;
                out.summary = format!("the output changes with: {}", differing.join(", "));
            }
        }
    }
    out
}

fn builds(
    run: &mut Run<'_>,
    p: &Prepared,
    out: &mut v1::Report,
    cancel: &CancelToken,
) -> Result<(), (Step, RebuildError)> {
    let req = run.req;
    let plan = p.plan(&req.cache_dir);
    run.record.recipe = Some(p.recipe.clone());
    run.record.plan = Some((plan.go_args.clone(), plan.env.clone()));
    let work = p.work.path();
    let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(|e| (Step::Build, RebuildError::io("create", d, e)));
    let mut baseline_plan = plan.clone();
    baseline_plan.gocache = work.join("gocache-baseline");
    let baseline_out = work.join("out/baseline");
    mkdir(&baseline_out)?;
    let baseline = timed(run, out, Timed::Baseline, || {
        build::run(&baseline_plan, &p.pulled, &p.src_dir, &p.modcache, &baseline_out, req, cancel)
    })?;
    run.record.runtime = Some(baseline.runtime.clone());
    let base_bytes = baseline.bytes;
    let base_sha = stdx::sha256_hex(&base_bytes);
    out.baseline = Some(verify_v1::Artifact { sha256: base_sha.clone(), size: base_bytes.len() as u64, path: None });
    let baseline_finished = Instant::now();
    for v in variations() {
        if v.later {
            std::thread::sleep(LATER_BY.saturating_sub(baseline_finished.elapsed()));
        }
        let mut vp = plan.clone();
        vp.gocache =
            if v.warm_cache { baseline_plan.gocache.clone() } else { work.join(format!("gocache-{}", v.name)) };
        if let Some(m) = v.src_mount {
            vp.src_mount = m.to_string();
        }
        for (k, val) in v.env {
            vp.env.insert(k.to_string(), val.to_string());
        }
        vp.user = v.user;
        vp.umask = v.umask;
        let dir = work.join("out").join(v.name.as_str());
        mkdir(&dir)?;
        mkdir(&vp.gocache)?;
        // Not root: the runtime refuses the user below, with its reason (a rootless
        // sandbox maps only the caller), and chown could not work anyway.
        if let (Some((uid, gid)), true) = (v.user, rustix::process::geteuid().is_root()) {
            if let Err(why) = give(&[&dir, &vp.gocache], uid, gid) {
                out.not_varied.push(format!("{}: {why}", v.name));
                continue;
            }
        }
        let result = timed(run, out, Timed::Variation(v.name), || {
            build::run(&vp, &p.pulled, &p.src_dir, &p.modcache, &dir, req, cancel)
        });
        let built = match result {
            Err((_, RebuildError::Sandbox(e @ sandbox::Error::Unsupported { .. }))) => {
                out.not_varied.push(format!("{}: {e}", v.name));
                continue;
            }
            r => r?,
        };
        if let Some(why) = not_applied(&v, &built.path) {
            out.not_varied.push(format!("{}: {why}", v.name));
            continue;
        }
        let bytes = built.bytes;
        let sha = stdx::sha256_hex(&bytes);
        let causes = if sha == base_sha {
            Vec::new()
        } else {
            crate::steps::judge::verdict(Some(&base_bytes), &base_sha, &bytes, &sha).causes
        };
        out.variations.push(v1::Outcome {
            name: v.name,
            description: v.description.into(),
            identical: sha == base_sha,
            sha256: sha,
            causes,
        });
    }
    Ok(())
}

/// Hands the fresh, empty directories `dirs` (the output directory and the
/// build cache) to `uid:gid`, so that a build running as that user can write
/// them; `/tmp` (HOME, GOPATH) is the sandbox's own, mode 1777. Every
/// directory above the mounts is left as it is: the runtime mounts them as
/// root, and the source and module cache are read-only and world-readable.
fn give(dirs: &[&Path], uid: u32, gid: u32) -> Result<(), String> {
    for d in dirs {
        std::os::unix::fs::chown(d, Some(uid), Some(gid))
            .map_err(|e| format!("cannot hand {} to {uid}:{gid} for the build: {e}", d.display()))?;
    }
    Ok(())
}

/// Why the output shows that the runtime did not apply `v`'s umask or user,
/// if it does: go writes the binary with mode 0777 minus the umask, owned by
/// the build's user.
fn not_applied(v: &Variation, output: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(output) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot read {}: {e}", output.display())),
    };
    if let Some(umask) = v.umask {
        if meta.mode() & umask != 0 {
            return Some(format!(
                "the runtime ignored the umask {umask:03o}: the output has mode {:03o}",
                meta.mode() & 0o777
            ));
        }
    }
    if let Some((uid, _)) = v.user {
        if meta.uid() != uid {
            return Some(format!("the runtime ignored the user {uid}: the output is owned by {}", meta.uid()));
        }
    }
    None
}

fn timed<T>(
    run: &mut Run<'_>,
    out: &mut v1::Report,
    step: Timed,
    f: impl FnOnce() -> Result<T, RebuildError>,
) -> Result<T, (Step, RebuildError)> {
    run.progress.start(Step::Build);
    let t = Instant::now();
    let r = f();
    let elapsed = t.elapsed();
    run.progress.finish(Step::Build, elapsed);
    out.timings.push(v1::Timing { step, ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX) });
    r.map_err(|e| (Step::Build, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's verdicts and variation names are the enums' names, and
    /// every timing step reads back as itself.
    #[test]
    fn names_match_the_schema() {
        let schema: serde_json::Value = match serde_json::from_str(include_str!("../../../schemas/check.schema.json")) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let listed = |pointer: &str| schema.pointer(pointer).cloned();
        let verdicts = [Verdict::Reproducible, Verdict::NotReproducible, Verdict::Error];
        assert_eq!(listed("/properties/verdict/enum"), serde_json::to_value(verdicts).ok());
        assert_eq!(listed("/$defs/outcome/properties/name/enum"), serde_json::to_value(VariationName::ALL).ok());
        for v in verdicts {
            assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::Value::String(v.as_str().to_owned())));
        }
        for v in VariationName::ALL {
            assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::Value::String(v.as_str().to_owned())));
        }
        assert_eq!(variations().iter().map(|v| v.name).collect::<Vec<_>>(), VariationName::ALL);
        let mut steps: Vec<Timed> = verify_v1::Step::ALL.iter().map(|s| Timed::Step(*s)).collect();
        steps.push(Timed::Baseline);
        steps.extend(VariationName::ALL.iter().map(|v| Timed::Variation(*v)));
        for step in steps {
            let timing = v1::Timing { step, ms: 1 };
            let text = serde_json::to_string(&timing).unwrap_or_default();
            assert_eq!(serde_json::from_str::<v1::Timing>(&text).ok(), Some(timing), "{text}");
        }
        assert_eq!(
            serde_json::to_string(&v1::Timing { step: Timed::Variation(VariationName::WarmCache), ms: 7 }).ok(),
            Some(r#"{"step":"build:warm-cache","ms":7}"#.to_string())
        );
        assert!(serde_json::from_str::<v1::Timing>(r#"{"step":"build:nothing","ms":1}"#).is_err());
    }

    /// A check report `reprove check --json` wrote reads into [`v1::Report`]
    /// and writes back byte for byte.
    #[test]
    fn a_committed_check_report_round_trips() {
        let text = include_str!("../../../tests/fixtures/check/error-toolchain-unreachable.json");
        let report: v1::Report = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            (report.verdict, report.error.as_ref().map(|e| e.class)),
            (Verdict::Error, Some(verify_v1::Class::Infrastructure))
        );
        assert_eq!(serde_json::to_string_pretty(&report).ok().map(|t| t + "\n").as_deref(), Some(text));
    }
}
