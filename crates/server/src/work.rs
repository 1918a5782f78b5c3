//! The worker loop, one for both kinds of worker: it leases a job, runs it through an
//! [`Executor`], renews the lease with heartbeats (a third of the lease apart, carrying the
//! step the job is in), then stores the result, or hands the job back when told to stop.
//! Where the leases come from is a [`Leases`]: the server's own queue for its in-process
//! workers (`Local`), or the server's worker API over HTTP for `reprove worker`
//! ([`crate::remote::Remote`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::job::{JobSpec, NoopSpec};
use crate::queue::{Attestation, Outcome, QueueError, State};
use crate::{blocking, log, now_ms, Cancel, ExecError, Executor, Inner, JobProgress, JobResult};

/// A job leased to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    /// The job's id.
    pub id: String,
    /// What to run.
    pub spec: JobSpec,
    /// Which lease of the job this is (1 the first time).
    pub attempt: u32,
    /// How long the lease lasts without a heartbeat.
    pub lease: Duration,
}

/// Why a lease call failed; the loop logs it and tries again later.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The server could not be reached, or answered what the worker cannot use.
    #[error("the server {url}: {message}")]
    Server {
        /// The request's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Where a worker gets its jobs and puts their results.
pub trait Leases: Send + Sync + 'static {
    /// Leases the next job to `worker`, if there is one.
    fn claim(&self, worker: &str) -> impl Future<Output = Result<Option<Leased>, LeaseError>> + Send;
    /// Renews `worker`'s lease and records `progress`; `false`: the lease is lost.
    fn heartbeat(
        &self,
        job: &Leased,
        worker: &str,
        progress: Option<String>,
    ) -> impl Future<Output = Result<bool, LeaseError>> + Send;
    /// Stores the result (its blobs first) if `worker` still holds the lease; `false`: the
    /// lease was lost and the result dropped. `took` is how long the job ran here.
    fn finish(
        &self,
        job: &Leased,
        worker: &str,
        result: Result<JobResult, ExecError>,
        took: Duration,
    ) -> impl Future<Output = Result<bool, LeaseError>> + Send;
    /// Hands the job back (queued again, the attempt not counted); `false`: not held.
    fn release(&self, job: &Leased, worker: &str) -> impl Future<Output = Result<bool, LeaseError>> + Send;
    /// A job started (`1`) or ended (`-1`) here, for the metrics.
    fn busy(&self, _delta: i64) {}
    /// Waits up to `poll` before the next claim, when the last found no job; sooner if
    /// the source can tell that one was queued.
    fn idle(&self, poll: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(poll)
    }
}

/// How a worker loop waits.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// The longest wait before trying again after a failed claim (the wait doubles from a
    /// second up to this).
    pub backoff: Duration,
    /// How long a running job gets to stop when the worker is told to stop.
    pub shutdown_grace: Duration,
}

/// The result of a no-op job (a load-testing aid): the verdict `noop`, at once.
pub fn noop_result(spec: &NoopSpec) -> JobResult {
    JobResult {
        verdict: "noop".into(),
        report: serde_json::json!({"kind": "noop", "n": spec.n}).to_string().into_bytes(),
        failure: None,
        module: None,
        attestations: Vec::new(),
    }
}

/// The step a job is in; a new step wakes the heartbeat, so the queue logs each step
/// (the job's log on the dashboard) that lasts as long as a heartbeat takes.
struct ProgressCell(Mutex<Option<String>>, tokio::sync::Notify);

impl JobProgress for ProgressCell {
    fn step(&self, step: &str) {
        if let Ok(mut p) = self.0.lock() {
            *p = Some(step.chars().take(200).collect());
        }
        self.1.notify_one();
    }
}

/// Starts a worker loop named `name`: it runs jobs until `stop` turns true, then hands its
/// running job back.
pub fn spawn<L: Leases, E: Executor>(
    leases: Arc<L>,
    executor: Arc<E>,
    name: String,
    options: LoopOptions,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(worker(leases, executor, name, options, stop))
}

async fn worker<L: Leases, E: Executor>(
    leases: Arc<L>,
    executor: Arc<E>,
    name: String,
    options: LoopOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match leases.claim(&name).await {
            Ok(Some(job)) => {
                failures = 0;
                run_job(&*leases, &executor, &name, job, &options, &mut stop).await;
                continue;
            }
            Ok(None) => {
                failures = 0;
                tokio::select! {
                    _ = stop.changed() => {}
                    () = leases.idle(options.poll) => {}
                }
                continue;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = backoff(failures, options.backoff);
                log::event(
                    "error",
                    "claiming a job",
                    &[
                        ("worker", &name),
                        ("error", &e.to_string()),
                        ("retry-in", &format!("{:.1}s", wait.as_secs_f64())),
                    ],
                );
                wait
            }
        };
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The `n`th wait after a failure: a second, doubling up to `max`, with up to a tenth more
/// (so that many workers of a server that was down do not come back at the same instant).
pub(crate) fn backoff(n: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(max);
    let jitter = u64::from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos(),
    );
    base + base.mul_f64((jitter % 100) as f64 / 1000.0)
}

enum Ending {
    Finished(Result<JobResult, ExecError>),
    LeaseLost,
    Stopped,
}

async fn run_job<L: Leases, E: Executor>(
    leases: &L,
    executor: &Arc<E>,
    name: &str,
    job: Leased,
    options: &LoopOptions,
    stop: &mut watch::Receiver<bool>,
) {
    let started = tokio::time::Instant::now();
    let id = job.id.clone();
    log::event(
        "info",
        "job started",
        &[("id", &id), ("kind", job.spec.kind()), ("attempt", &job.attempt.to_string()), ("worker", name)],
    );
    leases.busy(1);
    let cancel = Cancel::default();
    let progress = Arc::new(ProgressCell(Mutex::new(None), tokio::sync::Notify::new()));
    let exec = {
        let (executor, spec, progress, cancel) = (executor.clone(), job.spec.clone(), progress.clone(), cancel.clone());
        tokio::spawn(async move { executor.run(&spec, progress, cancel).await })
    };
    tokio::pin!(exec);
    let mut beat = tokio::time::interval((job.lease / 3).max(Duration::from_millis(10)));
    beat.tick().await;
    if *stop.borrow() {
        cancel.cancel();
    }
    let ending = loop {
        tokio::select! {
            r = &mut exec => {
                let r = r.unwrap_or_else(|e| Err(ExecError { class: "internal".into(), message: format!("the executor stopped: {e}") }));
                break if cancel.is_cancelled() { Ending::Stopped } else { Ending::Finished(r) };
            }
            () = async { tokio::select! { _ = beat.tick() => {}, () = progress.1.notified() => {} } } => {
                let step = progress.0.lock().ok().and_then(|p| p.clone());
                match leases.heartbeat(&job, name, step).await {
                    Ok(true) => {}
                    Ok(false) => { cancel.cancel(); break Ending::LeaseLost; }
                    // The queue is unreachable: keep running; the lease may expire.
                    Err(e) => log::event("warn", "heartbeat failed", &[("id", &id), ("error", &e.to_string())]),
                }
            }
            _ = stop.changed() => {
                cancel.cancel();
                // The executor gets the grace time to stop; the job is handed back either way.
                let _ = tokio::time::timeout(options.shutdown_grace, &mut exec).await;
                break Ending::Stopped;
            }
        }
    };
    leases.busy(-1);
    match ending {
        Ending::Stopped => {
            let handed = leases.release(&job, name).await;
            let handed = match handed {
                Ok(b) => format!("Ok({b})"),
                Err(e) => format!("Err({e})"),
            };
            log::event("info", "job handed back", &[("id", &id), ("released", &handed)]);
        }
        Ending::LeaseLost => log::event("warn", "job lease lost: another worker may run it", &[("id", &id)]),
        Ending::Finished(r) => {
            let took = started.elapsed();
            let (state, verdict, class) = match &r {
                Ok(r) => (
                    if r.failure.is_some() { State::Failed } else { State::Done },
                    r.verdict.clone(),
                    r.failure.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
                ),
                Err(e) => (State::Failed, String::new(), e.class.clone()),
            };
            match leases.finish(&job, name, r, took).await {
                Ok(true) => log::event(
                    "info",
                    "job finished",
                    &[
                        ("id", &id),
                        ("state", state.as_str()),
                        ("verdict", &verdict),
                        ("class", &class),
                        ("seconds", &format!("{:.3}", took.as_secs_f64())),
                        ("worker", name),
                    ],
                ),
                Ok(false) => {
                    log::event("warn", "job finished after its lease was lost: result dropped", &[("id", &id)])
                }
                Err(e) => log::event("error", "storing the outcome", &[("id", &id), ("error", &e.to_string())]),
            }
        }
    }
}

/// The server's own queue, for its in-process workers (and the worker API's handlers).
pub(crate) struct Local<E: Executor>(pub(crate) Arc<Inner<E>>);

impl<E: Executor> Local<E> {
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.0.config.lease.as_millis()).unwrap_or(60_000)
    }

    /// Writes the result's blobs (before any row names them) and makes the outcome; a
    /// result that cannot be stored fails the job (class `storage`).
    pub(crate) fn outcome(&self, r: Result<JobResult, ExecError>) -> Outcome {
        store(&self.0.blobs, r).unwrap_or_else(|e| Outcome {
            state: State::Failed,
            verdict: None,
            report: None,
            attestations: Vec::new(),
            module: None,
            failure_class: Some("storage".into()),
            failure_message: Some(format!("storing the result: {e}")),
        })
    }

    /// Stores `outcome` if `worker` holds the lease on `id`, and counts it; `false`: lost.
    pub(crate) async fn finish_outcome(
        &self,
        id: &str,
        kind: &'static str,
        worker: &str,
        outcome: Outcome,
        took: Duration,
    ) -> Result<bool, QueueError> {
        let (q, i, w, o) = (self.0.queue.clone(), id.to_string(), worker.to_string(), outcome.clone());
        let stored = blocking(move || q.finish(&i, &w, now_ms(), &o)).await?;
        if stored {
            self.0.metrics.finished(kind, outcome.state.as_str(), took, outcome.failure_class.as_deref());
        } else {
            self.0.metrics.lease_lost();
        }
        Ok(stored)
    }
}

impl<E: Executor> Leases for Local<E> {
    async fn claim(&self, worker: &str) -> Result<Option<Leased>, LeaseError> {
        let (q, w, max, lease_ms) =
            (self.0.queue.clone(), worker.to_string(), self.0.config.max_attempts, self.lease_ms());
        let job = blocking(move || q.claim(&w, now_ms(), lease_ms, max)).await?;
        Ok(job.map(|j| Leased { id: j.id, spec: j.spec, attempt: j.attempts, lease: self.0.config.lease }))
    }

    async fn idle(&self, poll: Duration) {
        // A job queued between the empty claim and this wait is found at the next poll.
        tokio::select! {
            () = self.0.queued.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }

    async fn heartbeat(&self, job: &Leased, worker: &str, progress: Option<String>) -> Result<bool, LeaseError> {
        let (q, i, w, lease_ms) = (self.0.queue.clone(), job.id.clone(), worker.to_string(), self.lease_ms());
        let held = blocking(move || q.heartbeat(&i, &w, now_ms(), lease_ms, progress.as_deref())).await?;
        if !held {
            self.0.metrics.lease_lost();
        }
        Ok(held)
    }

    async fn finish(
        &self,
        job: &Leased,
        worker: &str,
        result: Result<JobResult, ExecError>,
        took: Duration,
    ) -> Result<bool, LeaseError> {
        // The blobs may be in the database (PostgreSQL's client blocks): stored off the
        // async threads.
        let local = Local(self.0.clone());
        let outcome = tokio::task::spawn_blocking(move || local.outcome(result)).await.unwrap_or_else(|e| Outcome {
            state: State::Failed,
            verdict: None,
            report: None,
            attestations: Vec::new(),
            module: None,
            failure_class: Some("storage".into()),
            failure_message: Some(format!("storing the result stopped: {e}")),
        });
        Ok(self.finish_outcome(&job.id, job.spec.kind(), worker, outcome, took).await?)
    }

    async fn release(&self, job: &Leased, worker: &str) -> Result<bool, LeaseError> {
        let (q, i, w) = (self.0.queue.clone(), job.id.clone(), worker.to_string());
        Ok(blocking(move || q.release(&i, &w)).await?)
    }

    fn busy(&self, delta: i64) {
        self.0.metrics.busy(delta);
    }
}

/// Writes the result's blobs and makes the outcome.
fn store(blobs: &crate::blobs::Blobs, r: Result<JobResult, ExecError>) -> std::io::Result<Outcome> {
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome {
                state: State::Failed,
                verdict: None,
                report: None,
                attestations: Vec::new(),
                module: None,
                failure_class: Some(e.class),
                failure_message: Some(e.message),
            })
        }
    };
    let report = blobs.put(&r.report)?;
    let mut attestations = Vec::new();
    for (name, media_type, bytes) in &r.attestations {
        attestations.push(Attestation {
            name: name.clone(),
            media_type: media_type.clone(),
            digest: blobs.put(bytes)?,
        });
    }
    let (state, class, message) = match r.failure {
        Some((c, m)) => (State::Failed, Some(c), Some(m)),
        None => (State::Done, None, None),
    };
    Ok(Outcome {
        state,
        verdict: Some(r.verdict),
        report: Some(report),
        attestations,
        module: r.module,
        failure_class: class,
        failure_message: message,
    })
}
