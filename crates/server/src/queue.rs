//! The job queue behind a trait: the API and the workers see only [`Queue`]; SQLite
//! ([`sqlite::Sqlite`]) is the embedded default, PostgreSQL ([`postgres::Postgres`]) the
//! one several servers share; [`open`] picks one by [`Database`].
//!
//! A claimed job carries a lease (owner, expiry) that its worker renews with heartbeats;
//! a job whose lease expired is claimable again (its worker was lost), up to
//! [`Queue::claim`]'s attempt limit. Only the lease owner can finish or hand back a job.

pub mod postgres;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::blobs::Blobs;
use crate::job::JobSpec;

/// Where the jobs and their results are kept.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite database in the data directory, the results beside it.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`postgres://…`), the results in it too.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite => f.write_str("Sqlite"),
            Database::Postgres(url) => f.debug_tuple("Postgres").field(&postgres::redact(url)).finish(),
        }
    }
}

/// A database that is neither `sqlite` nor a PostgreSQL URL, or whose TLS settings are refused.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    /// Not a database URL (shown without its password).
    #[error("the job database {0:?}: expected sqlite or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    Url(String),
    /// A TLS setting (`sslmode`, `sslcert`, `sslkey`) that is refused, and why.
    #[error("the job database {url:?}: {message}")]
    Tls {
        /// The URL without its password.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl Database {
    /// `sqlite`, or a `postgres://` (`postgresql://`) URL.
    pub fn parse(s: &str) -> Result<Database, DatabaseUrlError> {
        let s = s.trim();
        if s == "sqlite" {
            return Ok(Database::Sqlite);
        }
        let rest = s.strip_prefix("postgres://").or_else(|| s.strip_prefix("postgresql://"));
        if rest.is_none_or(str::is_empty) {
            return Err(DatabaseUrlError::Url(postgres::redact(s)));
        }
        let (without, _) =
            postgres::tls::split(s).map_err(|message| DatabaseUrlError::Tls { url: postgres::redact(s), message })?;
        match without.parse::<::postgres::Config>() {
            Ok(_) => Ok(Database::Postgres(s.to_string())),
            Err(_) => Err(DatabaseUrlError::Url(postgres::redact(s))),
        }
    }
}

/// Opens the queue and the blob store of `database`: SQLite in `data/queue.sqlite3` with
/// the blobs in `data/blobs`, or PostgreSQL holding both. Blocks (connects, migrates).
pub fn open(database: &Database, data: &Path) -> Result<(Arc<dyn Queue>, Blobs), QueueError> {
    match database {
        Database::Sqlite => {
            let queue = sqlite::Sqlite::open(&data.join("queue.sqlite3"))?;
            let blobs = Blobs::open(data).map_err(|e| QueueError::Database {
                path: data.join("blobs").display().to_string(),
                message: e.to_string(),
            })?;
            Ok((Arc::new(queue), blobs))
        }
        Database::Postgres(url) => {
            let pg = Arc::new(postgres::Postgres::open(url)?);
            Ok((pg.clone(), Blobs::Postgres(pg)))
        }
    }
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease.
    Running,
    /// Finished with a verdict.
    Done,
    /// Finished without one (the failure class says why).
    Failed,
}

impl State {
    /// Every state, in order.
    pub const ALL: [State; 4] = [State::Queued, State::Running, State::Done, State::Failed];

    /// The state's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }

    /// Parses [`State::as_str`].
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A job as the queue stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// 32 hex digits, derived from the idempotency key.
    pub id: String,
    /// The idempotency key.
    pub key: String,
    /// What was submitted.
    pub spec: JobSpec,
    /// Its state.
    pub state: State,
    /// The image the job is about, and its digest.
    pub image: Option<String>,
    /// The digest of `image`.
    pub image_digest: Option<String>,
    /// The main module of the result (known once done).
    pub module: Option<String>,
    /// Times a worker started it.
    pub attempts: u32,
    /// The worker holding the lease.
    pub lease_owner: Option<String>,
    /// When the lease expires (Unix milliseconds).
    pub lease_expires_ms: Option<i64>,
    /// The last step a worker reported.
    pub progress: Option<String>,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// When it was last queued (submitted or retried), Unix milliseconds.
    pub queued_ms: i64,
    /// When the last attempt started.
    pub started_ms: Option<i64>,
    /// When it finished.
    pub finished_ms: Option<i64>,
    /// The verdict once done.
    pub verdict: Option<String>,
    /// The report's blob digest (`sha256:…`).
    pub report: Option<String>,
    /// The attestations' blobs.
    pub attestations: Vec<Attestation>,
    /// Why it failed: a short class (`input`, `infrastructure`, `unsupported`, …).
    pub failure_class: Option<String>,
    /// What failed.
    pub failure_message: Option<String>,
    /// Times a result was written for it (1 after one run, however often it was leased).
    pub results_stored: u32,
}

/// An attestation stored with a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Attestation {
    /// What it is (`vsa`, `provenance`, …).
    pub name: String,
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its blob (`sha256:…`).
    pub digest: String,
}

/// How a job ended, as its worker stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `Done` or `Failed`.
    pub state: State,
    /// The verdict.
    pub verdict: Option<String>,
    /// The report blob.
    pub report: Option<String>,
    /// The attestation blobs.
    pub attestations: Vec<Attestation>,
    /// The main module the result is about.
    pub module: Option<String>,
    /// The failure class.
    pub failure_class: Option<String>,
    /// The failure message.
    pub failure_message: Option<String>,
}

/// `GET /v1/jobs` filters; all optional, combined with "and".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this state.
    pub state: Option<State>,
    /// The image (as submitted) or its digest.
    pub image: Option<String>,
    /// The main module.
    pub module: Option<String>,
    /// The image repository (the image without tag and digest, [`repository_of`]).
    pub repository: Option<String>,
    /// The `[[watch]]` that submitted the job (its spec's `watch`).
    pub watch: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
    /// Skipped first (the dashboard's pages).
    pub offset: u32,
}

/// The repository of an image reference: without its `@digest` and its `:tag`
/// (`registry:5000/app:v1@sha256:…` is `registry:5000/app`).
pub fn repository_of(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// One line of a job's log: what happened to it (submitted, started, a step, finished,
/// handed back, retried), kept by the queue in the transaction that made it happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// What happened (at most [`LOG_LINE_BYTES`]).
    pub line: String,
}

/// The lines a job's log keeps: the newest.
pub const LOG_LINES: u32 = 200;
/// The longest log line kept (longer ones are cut at a character boundary).
pub const LOG_LINE_BYTES: usize = 1000;

/// `line` cut to [`LOG_LINE_BYTES`].
pub fn clip_log_line(line: &str) -> &str {
    let mut end = line.len().min(LOG_LINE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// Jobs that finished on one UTC day, for the reproducibility rate over time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Day {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Jobs that finished that day (done or failed).
    pub finished: u64,
    /// Of those, the ones whose verdict is `reproduced`.
    pub reproduced: u64,
    /// Of those, the failed ones.
    pub failed: u64,
}

/// What `/metrics` reads from the queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Jobs per state.
    pub by_state: Vec<(State, u64)>,
    /// Failed jobs per failure class.
    pub failed_by_class: Vec<(String, u64)>,
    /// Age of the oldest queued job, in seconds.
    pub oldest_queued_secs: f64,
}

/// A queue failure: the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database failed.
    #[error("the job database {path}: {message}")]
    Database {
        /// Where it is.
        path: String,
        /// What failed.
        message: String,
    },
    /// A stored row does not read back (a newer or damaged database).
    #[error("job {id} in the database does not read back: {message}")]
    Corrupt {
        /// The job.
        id: String,
        /// What is wrong.
        message: String,
    },
}

/// The job queue: every call is one transaction; implementations are blocking (the
/// server calls them off its async threads).
pub trait Queue: Send + Sync + 'static {
    /// Inserts the job of `spec` unless its key is known: the job, and whether it is new.
    fn submit(&self, spec: &JobSpec, now_ms: i64) -> Result<(Job, bool), QueueError>;
    /// The job `id`.
    fn get(&self, id: &str) -> Result<Option<Job>, QueueError>;
    /// Jobs matching `filter`, newest first.
    fn list(&self, filter: &Filter) -> Result<Vec<Job>, QueueError>;
    /// Leases the oldest claimable job to `worker` until `now_ms + lease_ms`: a queued
    /// one, or a running one whose lease expired. A job leased `max_attempts` times
    /// already fails (class `lease-expired`) instead of running again.
    fn claim(&self, worker: &str, now_ms: i64, lease_ms: i64, max_attempts: u32) -> Result<Option<Job>, QueueError>;
    /// Renews `worker`'s lease on `id` and records `progress`; `false`: the lease is lost.
    fn heartbeat(
        &self,
        id: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        progress: Option<&str>,
    ) -> Result<bool, QueueError>;
    /// Stores the outcome if `worker` still holds the lease; `false` otherwise.
    fn finish(&self, id: &str, worker: &str, now_ms: i64, outcome: &Outcome) -> Result<bool, QueueError>;
    /// Hands a job back (queued again, the attempt not counted) if `worker` holds it.
    fn release(&self, id: &str, worker: &str) -> Result<bool, QueueError>;
    /// Queues a finished job again; `None` if there is no such job, `Err(state)` inside
    /// `Ok` if it is not finished.
    fn retry(&self, id: &str, now_ms: i64) -> Result<Option<Result<Job, State>>, QueueError>;
    /// The most recently finished job about image digest `digest`.
    fn latest_for_image(&self, digest: &str) -> Result<Option<Job>, QueueError>;
    /// The log of job `id`, oldest line first (at most [`LOG_LINES`]); empty for an
    /// unknown job. Implementations write it in the transactions of `submit`, `claim`,
    /// `heartbeat` (when the progress changes), `finish`, `release` and `retry`.
    fn job_log(&self, id: &str) -> Result<Vec<LogLine>, QueueError>;
    /// Jobs finished since `since_ms`, counted per UTC day, oldest day first; days
    /// without any are left out.
    fn daily(&self, since_ms: i64) -> Result<Vec<Day>, QueueError>;
    /// Counts for the metrics.
    fn stats(&self, now_ms: i64) -> Result<Stats, QueueError>;
    /// Claims the next poll of watch `watch` for `holder` (a server) until `now_ms +
    /// lease_ms`, if it is due (`next_at <= now_ms`) and no other holder's lease runs:
    /// every server sharing the database polls a watch once per interval between them.
    fn claim_poll(&self, watch: &str, holder: &str, now_ms: i64, lease_ms: i64) -> Result<PollClaim, QueueError>;
    /// `holder`'s poll of `watch` ended: the next is due at `next_ms`, after `failures` in
    /// a row (shared, for the backoff). False if `holder` no longer held it.
    fn finish_poll(&self, watch: &str, holder: &str, next_ms: i64, failures: u32) -> Result<bool, QueueError>;
}

/// The answer of [`Queue::claim_poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollClaim {
    /// This server polls now; the watch's failures in a row so far.
    Claimed {
        /// Failures in a row (of whichever server polled).
        failures: u32,
    },
    /// Not due yet, or another server is polling it: ask again at this time (Unix ms).
    NotBefore(i64),
}
