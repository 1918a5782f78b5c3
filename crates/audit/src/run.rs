//! Running the planned rebuilds: each distinct build once, up to `jobs` at a
//! time, through the same pipeline as `reprove verify`.
//!
//! Binaries with the same [`BuildKey`](crate::plan::BuildKey) and the same
//! bytes share one verification; the same key with other bytes is judged
//! again, which the Go build cache (keyed by toolchain and recipe) turns into
//! a link step. Every binary gets a report; a failure is a report with verdict
//! `error`, never a lost binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebuild::{Progress, ReferenceInput, Request, SourceInput, Step};
use report::v1;
use sandbox::CancelToken;

use crate::plan::{Plan, SourceChoice};

/// One binary to rebuild and judge.
#[derive(Debug, Clone)]
pub struct Job {
    /// The binary's bytes, as a file the audit owns (the reference).
    pub reference: PathBuf,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// What to build.
    pub plan: Plan,
}

/// Shows the rebuilds' progress (a bar per binary in the CLI).
pub trait AuditProgress: Send + Sync {
    /// Job `index` starts.
    fn started(&self, _index: usize) {}
    /// Job `index` entered `step`.
    fn step(&self, _index: usize, _step: Step) {}
    /// Job `index` ended with this report (`shared`: it reused another job's).
    fn finished(&self, _index: usize, _report: &v1::Report, _shared: bool) {}
}

/// An [`AuditProgress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl AuditProgress for Silent {}

struct StepsOf<'a> {
    index: usize,
    progress: &'a dyn AuditProgress,
}

impl Progress for StepsOf<'_> {
    fn start(&self, step: Step) {
        self.progress.step(self.index, step);
    }

    fn finish(&self, _step: Step, _elapsed: Duration) {}
}

/// What every rebuild of an audit shares: `rebuild::Request` without its
/// source, reference, toolchain and recipe.
pub type Shared = Request;

/// The request for one job, from the shared settings.
pub fn request_for(shared: &Shared, job: &Job) -> Request {
    let mut req = shared.clone();
    req.source = match &job.plan.source {
        SourceChoice::Git { location, rev } => SourceInput::git(location.clone(), rev.clone()),
        SourceChoice::Module { path, version } => SourceInput::Module { path: path.clone(), version: version.clone() },
    };
    req.reference = ReferenceInput::File(job.reference.clone());
    req.toolchain = Some(job.plan.toolchain.clone());
    req.recipe.from_reference = true;
    if let Some(ldflags) = &job.plan.ldflags {
        req.recipe.flags.ldflags = Some(recipe::Sourced::new(ldflags.clone(), recipe::Origin::Flag));
    }
    req.keep = None;
    req
}

/// The outcome of [`run`]: a report per job, and how many builds ran.
#[derive(Debug)]
pub struct Ran {
    /// In the jobs' order.
    pub reports: Vec<v1::Report>,
    /// Whether a job reused the verification of an earlier identical one.
    pub shared: Vec<bool>,
    /// Distinct build keys verified.
    pub builds: usize,
}

/// Verifies every job, `jobs` at a time (at least one).
pub fn run(
    shared: &Shared,
    jobs: &[Job],
    parallel: usize,
    progress: &dyn AuditProgress,
    cancel: &CancelToken,
) -> Result<Ran, Incomplete> {
    // One verification per (key, bytes); the first job of each group runs it.
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        groups.entry((job.plan.key.0.clone(), job.sha256.clone())).or_default().push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let builds = groups.iter().map(|g| jobs[g[0]].plan.key.clone()).collect::<std::collections::BTreeSet<_>>().len();
    let results: Mutex<Vec<Option<(v1::Report, bool)>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let workers = parallel.clamp(1, groups.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some(group) = groups.get(n) else { break };
                let first = group[0];
                progress.started(first);
                let request = request_for(shared, &jobs[first]);
                let report = rebuild::verify(&request, &StepsOf { index: first, progress }, cancel);
                progress.finished(first, &report, false);
                for &other in &group[1..] {
                    progress.finished(other, &report, true);
                }
                if let Ok(mut results) = results.lock() {
                    for (k, &i) in group.iter().enumerate() {
                        results[i] = Some((report.clone(), k > 0));
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut reports = Vec::with_capacity(jobs.len());
    let mut shared_flags = Vec::with_capacity(jobs.len());
    for (index, r) in results.into_iter().enumerate() {
        // Every index belongs to exactly one group and every group ran, so
        // this cannot happen; if it does, the binary is named, not lost.
        let (report, shared) = r.ok_or(Incomplete { index })?;
        reports.push(report);
        shared_flags.push(shared);
    }
    Ok(Ran { reports, shared: shared_flags, builds })
}

/// A job ended without a report (a bug: every job is verified).
#[derive(Debug, thiserror::Error)]
#[error("the verification of binary {index} did not finish")]
pub struct Incomplete {
    /// The job.
    pub index: usize,
}

/// Keeps a value shared across threads (the CLI's progress bars).
pub type SharedProgress = Arc<dyn AuditProgress>;
