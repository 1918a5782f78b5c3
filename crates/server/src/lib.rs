//! `reprove serve`: the verification service's library. A job API over HTTP (axum), a
//! durable queue ([`queue::Queue`]; SQLite embedded, [`queue::sqlite::Sqlite`], or
//! PostgreSQL shared by several servers, [`queue::postgres::Postgres`]), results stored
//! content-addressed ([`blobs::Blobs`]) and workers that lease jobs, renew their leases
//! with heartbeats and hand jobs back on shutdown: in-process, or `reprove worker`
//! processes through the worker API ([`remote::Remote`]), both running [`work`]'s loop.
//!
//! The server runs no build itself: an [`Executor`] does (the binary's calls the verify
//! pipeline), so this crate links no rebuild, sandbox or clone code. It fails closed:
//! submitting always needs the bearer token; every request has a body limit and a
//! deadline; ids, digests and filters are checked before they reach the queue or the
//! disk. The library builds no runtime: the caller's runs [`Server::serve`]. The same
//! process serves a web dashboard ([`dashboard`]: server-rendered HTML, no script).

pub mod blobs;
pub mod dashboard;
pub mod fetch;
pub mod job;
pub mod log;
mod metrics;
pub mod queue;
pub mod remote;
pub mod watching;
pub mod work;
mod worker_api;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Request, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use blobs::Blobs;
use job::{valid_digest, valid_id, JobSpec};
use queue::{Filter, Job, Queue, QueueError, State};

/// Every route: (method, path as the OpenAPI document spells it). `schemas/openapi.json`
/// is checked against this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("post", "/v1/jobs/{id}/retry"),
    ("get", "/v1/images/{digest}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/v1/worker/claim"),
    ("post", "/v1/worker/jobs/{id}/heartbeat"),
    ("post", "/v1/worker/jobs/{id}/finish"),
    ("post", "/v1/worker/jobs/{id}/release"),
];

/// The schema names of the OpenAPI document's components that the answers follow.
pub const SCHEMAS: &[&str] = &[
    "JobRequest",
    "VerifyJob",
    "AuditJob",
    "CheckJob",
    "NoopJob",
    "Job",
    "JobList",
    "ImageVerdict",
    "Error",
    "WorkerClaim",
    "WorkerLease",
    "WorkerHeartbeat",
    "WorkerResult",
];

/// The largest reference file hashed by default ([`Config::max_reference_bytes`]; a
/// watch's references always).
pub const MAX_REFERENCE_BYTES: u64 = 2 << 30;

/// Where the server keeps the reference URLs' files it downloaded, under its data
/// directory `data` (`…/sha256/HEX`, [`fetch::kept`]).
pub fn references_dir(data: &std::path::Path) -> PathBuf {
    data.join("references")
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory: the queue database and the blobs (with SQLite).
    pub data: PathBuf,
    /// Where the jobs and results are kept ([`queue::open`]).
    pub database: queue::Database,
    /// The bearer token that submitting and retrying need.
    pub token: String,
    /// The bearer token of the worker API (`None`: [`Config::token`]).
    pub worker_token: Option<String>,
    /// Whether no-op jobs (`{"kind": "noop", "n": …}`, a load-testing aid) are accepted.
    pub noop_jobs: bool,
    /// Whether reading jobs needs the token too.
    pub read_needs_token: bool,
    /// In-process workers.
    pub workers: usize,
    /// How long a lease lasts without a heartbeat (heartbeats come every third of it).
    pub lease: Duration,
    /// Times a job is leased at most (a job whose worker keeps dying fails then).
    pub max_attempts: u32,
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// The largest request body.
    pub max_body_bytes: usize,
    /// The largest result a remote worker may send (its report and attestations).
    pub max_result_bytes: usize,
    /// The time a request may take, from its first byte.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long running jobs get to stop on shutdown before they are handed back anyway.
    pub shutdown_grace: Duration,
    /// The `[[watch]]`es: polled while the server runs, given a [`watching::Lister`]
    /// ([`Server::watch_with`]).
    pub watches: Vec<watching::Watch>,
    /// How watching runs (rates, backoff, bounds).
    pub watch: watching::Settings,
    /// How long a submission may take to pin its revision and reference (resolving the
    /// rev, hashing a reference file): well under [`Config::request_timeout`].
    pub pin_timeout: Duration,
    /// The largest reference file a submission hashes (or downloads).
    pub max_reference_bytes: u64,
    /// Whether a reference URL may be plain `http://` to a loopback host (a test server,
    /// a local mirror); `https://` only otherwise.
    pub loopback_http_references: bool,
    /// How long a downloaded reference is kept in `DATA/references` once no queued or
    /// running job needs it ([`fetch::prune`]); checked at start and then every
    /// quarter of it (at most hourly).
    pub reference_retention: Duration,
}

impl Config {
    /// Defaults, with the data directory and the token.
    pub fn new(data: PathBuf, token: String) -> Config {
        Config {
            data,
            database: queue::Database::Sqlite,
            token,
            worker_token: None,
            noop_jobs: false,
            read_needs_token: false,
            workers: 1,
            lease: Duration::from_secs(60),
            max_attempts: 3,
            poll: Duration::from_millis(200),
            max_body_bytes: 256 << 10,
            max_result_bytes: 32 << 20,
            request_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(10),
            watches: Vec::new(),
            watch: watching::Settings::default(),
            pin_timeout: Duration::from_secs(5),
            max_reference_bytes: MAX_REFERENCE_BYTES,
            loopback_http_references: false,
            reference_retention: Duration::from_secs(7 * 86400),
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No token: submitting would be open to anyone.
    #[error("no API token is configured: the server refuses to accept jobs from anyone")]
    NoToken,
    /// The data directory could not be used.
    #[error("the data directory {path}: {source}")]
    Data {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The queue could not be opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Accepting connections failed.
    #[error("accepting connections on {addr}: {source}")]
    Accept {
        /// The listening address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Where a running job reports its progress (the step it is in).
pub trait JobProgress: Send + Sync {
    /// The job entered `step`.
    fn step(&self, step: &str);
}

/// Set when the job must stop (shutdown, or its lease was lost).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the job must stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What an executor produced.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    /// The verdict (`reproduced`, `not-reproduced`, …; `error` when none was reached).
    pub verdict: String,
    /// The report (JSON).
    pub report: Vec<u8>,
    /// Set when the job reached no verdict: (class, message); the job is `failed`.
    pub failure: Option<(String, String)>,
    /// The main module the result is about.
    pub module: Option<String>,
    /// Attestations: (name, media type, bytes).
    pub attestations: Vec<(String, String, Vec<u8>)>,
}

/// A job that produced no report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct ExecError {
    /// A short stable class (`unsupported`, `input`, `infrastructure`, …).
    pub class: String,
    /// What failed.
    pub message: String,
}

/// Runs jobs: the seam between the server and the pipelines.
pub trait Executor: Send + Sync + 'static {
    /// Runs `job`; stops early when `cancel` is set (its result is then discarded).
    fn run(
        &self,
        job: &JobSpec,
        progress: Arc<dyn JobProgress>,
        cancel: Cancel,
    ) -> impl Future<Output = Result<JobResult, ExecError>> + Send;
}

/// Resolves a revision of a source to the commit it names now: the seam between the
/// server and Git (the binary's uses the `source` crate; this crate links no Git).
pub trait Resolver: Send + Sync + 'static {
    /// The full commit id (40 lowercase hexadecimal digits) `rev` names in `source` (a
    /// clone URL or a path on the server), within `timeout`. Blocking: the server calls
    /// it off the async threads.
    fn resolve(&self, source: &str, rev: &str, timeout: Duration) -> Result<String, ResolveError>;
}

/// Why a revision could not be pinned to a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The source does not have the revision (a 422).
    #[error("{0}")]
    UnknownRevision(String),
    /// The source is not a repository the server can read, or is refused (a 422).
    #[error("{0}")]
    BadSource(String),
    /// The source could not be reached in time, or failed (a 502).
    #[error("{0}")]
    Unreachable(String),
}

/// The service: API, queue, blobs, workers.
pub struct Server<E: Executor> {
    inner: Arc<Inner<E>>,
}

struct Inner<E: Executor> {
    config: Config,
    executor: Arc<E>,
    queue: Arc<dyn Queue>,
    blobs: Blobs,
    metrics: Arc<metrics::Metrics>,
    instance: String,
    lister: OnceLock<Arc<dyn watching::Lister>>,
    resolver: OnceLock<Arc<dyn Resolver>>,
    /// Woken when a job is queued, so an idle in-process worker claims it at once rather
    /// than at its next poll.
    queued: tokio::sync::Notify,
}

impl<E: Executor> Server<E> {
    /// Opens the data directory (created if missing) and the configured database: its
    /// SQLite queue, or PostgreSQL (which blocks: call it off async threads).
    pub fn open(config: Config, executor: E) -> Result<Server<E>, ServerError> {
        if config.token.is_empty() || config.worker_token.as_deref().is_some_and(str::is_empty) {
            return Err(ServerError::NoToken);
        }
        let data_err = |source| ServerError::Data { path: config.data.display().to_string(), source };
        std::fs::create_dir_all(&config.data).map_err(data_err)?;
        let (queue, blobs) = queue::open(&config.database, &config.data)?;
        Server::with_stores(config, executor, queue, blobs)
    }

    /// A server over another queue, the blobs in the data directory.
    pub fn with_queue(config: Config, executor: E, queue: Arc<dyn Queue>) -> Result<Server<E>, ServerError> {
        let blobs = Blobs::open(&config.data)
            .map_err(|source| ServerError::Data { path: config.data.display().to_string(), source })?;
        Server::with_stores(config, executor, queue, blobs)
    }

    /// A server over a queue and a blob store.
    pub fn with_stores(
        config: Config,
        executor: E,
        queue: Arc<dyn Queue>,
        blobs: Blobs,
    ) -> Result<Server<E>, ServerError> {
        if config.token.is_empty() || config.worker_token.as_deref().is_some_and(str::is_empty) {
            return Err(ServerError::NoToken);
        }
        let mut config = config;
        if config.watch.references.is_none() {
            // A watch's download is not bound by a request's deadline: the registry
            // client's overall one.
            let fetch = fetch::Fetch {
                loopback_http: config.loopback_http_references,
                ..fetch::Fetch::new(config.max_reference_bytes, Duration::from_secs(300))
            };
            config.watch.references = Some((references_dir(&config.data), fetch));
        }
        // Downloads a crash interrupted (any still running would be younger).
        fetch::sweep(&references_dir(&config.data), Duration::from_secs(3600));
        let instance = format!("{}.{}", std::process::id(), now_ms());
        let metrics = Arc::new(metrics::Metrics::default());
        metrics.workers(config.workers as u64);
        let lister = OnceLock::new();
        let resolver = OnceLock::new();
        Ok(Server {
            inner: Arc::new(Inner {
                config,
                executor: Arc::new(executor),
                queue,
                blobs,
                metrics,
                instance,
                lister,
                resolver,
                queued: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Where the watches' tags come from; without one, the configured watches do not run.
    /// Set once (a second call is ignored).
    pub fn watch_with(&self, lister: Arc<dyn watching::Lister>) {
        let _ = self.inner.lister.set(lister);
    }

    /// What pins a verify or check job's `rev` to the commit it names when the job is
    /// submitted. Without one (a server embedded without Git), only a full commit id is
    /// accepted as `rev`: any other is refused (422 `unresolved-revision`), never keyed
    /// as written (a branch would be one job forever). The binary always sets one. Set once.
    pub fn resolve_with(&self, resolver: Arc<dyn Resolver>) {
        let _ = self.inner.resolver.set(resolver);
    }

    /// Serves on `listener` and runs the workers until `shutdown` completes; then stops
    /// accepting, cancels running jobs and hands them back to the queue.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut workers = Vec::new();
        let local = Arc::new(work::Local(self.inner.clone()));
        let options = work::LoopOptions {
            poll: self.inner.config.poll,
            backoff: Duration::from_secs(1),
            shutdown_grace: self.inner.config.shutdown_grace,
        };
        for n in 0..self.inner.config.workers {
            let name = format!("{}/w{n}", self.inner.instance);
            let (executor, options) = (self.inner.executor.clone(), options.clone());
            workers.push(work::spawn(local.clone(), executor, name, options, stop_rx.clone()));
        }
        let watcher = match self.inner.lister.get() {
            Some(lister) if !self.inner.config.watches.is_empty() => Some(tokio::spawn(watching::run(
                self.inner.config.watches.clone(),
                self.inner.config.watch.clone(),
                lister.clone(),
                self.inner.queue.clone(),
                self.inner.metrics.clone(),
                stop_rx.clone(),
            ))),
            _ => None,
        };
        let pruner = tokio::spawn(prune_references(self.inner.clone(), stop_rx.clone()));
        log::event(
            "info",
            "serving",
            &[
                ("addr", &addr),
                ("workers", &self.inner.config.workers.to_string()),
                ("watches", &self.inner.config.watches.len().to_string()),
            ],
        );
        let router = router(self.inner.clone());
        let slots = Arc::new(tokio::sync::Semaphore::new(self.inner.config.max_connections.max(1)));
        tokio::pin!(shutdown);
        let result = loop {
            let permit = tokio::select! {
                () = &mut shutdown => break Ok(()),
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break Ok(()) },
            };
            let stream = tokio::select! {
                () = &mut shutdown => break Ok(()),
                a = listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(e) if is_transient(&e) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
                    Err(source) => break Err(ServerError::Accept { addr: addr.clone(), source }),
                },
            };
            let router = router.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .max_buf_size(64 << 10)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        };
        log::event("info", "shutting down: handing running jobs back", &[]);
        let _ = stop_tx.send(true);
        if let Some(w) = watcher {
            let _ = w.await;
        }
        let _ = pruner.await;
        for w in workers {
            let _ = w.await;
        }
        result
    }

    /// The metrics as `/metrics` serves them.
    pub async fn metrics_text(&self) -> String {
        render_metrics(&self.inner).await
    }
}

/// Removes the downloaded references no job needs any more, older than
/// [`Config::reference_retention`], until `stop`.
async fn prune_references<E: Executor>(inner: Arc<Inner<E>>, mut stop: watch::Receiver<bool>) {
    let retention = inner.config.reference_retention;
    let every = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        let (q, dir) = (inner.queue.clone(), inner.references_dir());
        match blocking(move || references_in_use(&*q).map(|in_use| fetch::prune(&dir, retention, &in_use))).await {
            Ok(0) => {}
            Ok(n) => log::event("info", "removed downloaded references no job needs", &[("count", &n.to_string())]),
            // Not knowing which are needed, nothing is removed.
            Err(e) => log::event("warn", "could not list the jobs that need references", &[("error", &e.to_string())]),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The reference digests of the queued and running jobs.
fn references_in_use(q: &dyn Queue) -> Result<std::collections::HashSet<String>, QueueError> {
    const PAGE: u32 = 10_000;
    let mut in_use = std::collections::HashSet::new();
    for state in [State::Queued, State::Running] {
        for page in 0.. {
            let f = Filter { state: Some(state), limit: PAGE, offset: page * PAGE, ..Filter::default() };
            let jobs = q.list(&f)?;
            in_use.extend(jobs.iter().filter_map(|j| match &j.spec {
                JobSpec::Verify(v) => v.reference_digest.clone(),
                _ => None,
            }));
            if jobs.len() < PAGE as usize {
                break;
            }
        }
    }
    Ok(in_use)
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::Interrupted
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs a blocking queue call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(QueueError::Database { path: String::new(), message: format!("the queue call stopped: {e}") })
    })
}

// ---- the API ----

fn router<E: Executor>(inner: Arc<Inner<E>>) -> Router {
    Router::new()
        .route("/v1/jobs", post(submit::<E>).get(list::<E>))
        .route("/v1/jobs/{id}", get(get_job::<E>))
        .route("/v1/jobs/{id}/retry", post(retry::<E>))
        .route("/v1/images/{digest}", get(image::<E>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<E>))
        .route("/metrics", get(metrics_route::<E>))
        .merge(dashboard::routes::<E>())
        .merge(worker_api::routes::<E>())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not-found", "no such route".into()) })
        .layer(axum::middleware::from_fn_with_state(inner.clone(), guard::<E>))
        .with_state(inner)
}

/// Every request: the deadline, and the request counters.
async fn guard<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let response = match tokio::time::timeout(inner.config.request_timeout, next.run(request)).await {
        Ok(r) => r,
        Err(_) => {
            inner.metrics.rejected("timeout");
            error(StatusCode::REQUEST_TIMEOUT, "timeout", "the request did not complete before its deadline".into())
        }
    };
    inner.metrics.request(&method, response.status().as_u16());
    response
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

/// A body over `limit`: refused, and the connection closed (the rest of the body is
/// never read, so the connection cannot carry another request; saying so keeps clients
/// from reusing it).
fn too_large(limit: usize) -> Response {
    let mut r = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        format!("the body is larger than the server accepts ({limit} bytes) or was cut off"),
    );
    r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    r
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn queue_error(e: &QueueError) -> Response {
    log::event("error", "queue", &[("error", &e.to_string())]);
    error(StatusCode::SERVICE_UNAVAILABLE, "queue-unavailable", "the job queue is unavailable".into())
}

/// Whether the request carries the API token.
fn authorized(inner: &Inner<impl Executor>, headers: &HeaderMap) -> bool {
    bearer_is(headers, &inner.config.token)
}

/// Constant-time comparison of the bearer token with `want`.
fn bearer_is(headers: &HeaderMap, want: &str) -> bool {
    let Some(given) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let want = want.as_bytes();
    let given = given.trim().as_bytes();
    given.len() == want.len() && given.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn unauthorized(inner: &Inner<impl Executor>) -> Response {
    inner.metrics.rejected("unauthorized");
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required".into());
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

fn may_read(inner: &Inner<impl Executor>, headers: &HeaderMap) -> bool {
    !inner.config.read_needs_token || authorized(inner, headers)
}

async fn submit<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>, request: Request) -> Response {
    if !authorized(&inner, request.headers()) {
        return unauthorized(&inner);
    }
    let limit = inner.config.max_body_bytes;
    let body = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            inner.metrics.rejected("body-too-large");
            return too_large(limit);
        }
    };
    let spec = match JobSpec::parse_with(&body, inner.config.noop_jobs) {
        Ok(s) => s,
        Err(e) => {
            inner.metrics.rejected(e.code());
            let status = if matches!(e, job::SpecError::Malformed(_)) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            return error(status, e.code(), e.to_string());
        }
    };
    let spec = match pin(&inner, spec).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let q = inner.queue.clone();
    match blocking(move || q.submit(&spec, now_ms())).await {
        Ok((job, new)) => {
            inner.metrics.submitted(new);
            if new {
                log::event("info", "job submitted", &[("id", &job.id), ("kind", job.spec.kind())]);
                inner.queued.notify_waiters();
            }
            answer(if new { StatusCode::CREATED } else { StatusCode::OK }, &view(&inner, &job, false))
        }
        Err(e) => queue_error(&e),
    }
}

/// Pins what determines a verify or check job's result before it is keyed: its `rev` to
/// the commit it names now ([`Resolver`]), a reference path or URL to its content's
/// SHA-256 (a URL's given digest stands). Off the async threads, under
/// [`Config::pin_timeout`], holding no queue lock. A revision that does not resolve, a
/// missing reference, an unreachable source: an error answer, never the unpinned key.
async fn pin<E: Executor>(inner: &Arc<Inner<E>>, spec: JobSpec) -> Result<JobSpec, Response> {
    if !matches!(spec, JobSpec::Verify(_) | JobSpec::Check(_)) {
        return Ok(spec);
    }
    let timeout = inner.config.pin_timeout;
    let resolver = inner.resolver.get().cloned();
    let max = inner.config.max_reference_bytes;
    // A reference URL is downloaded (within the same deadline) while the rev resolves,
    // unless its digest was given: then the worker downloads it (with a deadline fit for
    // large files) and checks it, and only whether it may be downloaded is checked here.
    let url = match &spec {
        JobSpec::Verify(v) if fetch::is_url(&v.reference) && v.reference_digest.is_none() => Some(v.reference.clone()),
        JobSpec::Verify(v) if fetch::is_url(&v.reference) => {
            if let Err(e) = fetch::allowed(&v.reference, inner.config.loopback_http_references) {
                let (status, code, message) = fetch_error(&e);
                inner.metrics.rejected(code);
                return Err(error(status, code, message));
            }
            None
        }
        _ => None,
    };
    let download = async {
        match &url {
            Some(url) => Some(fetch::fetch(url, &inner.references_dir(), &inner.reference_fetch(timeout)).await),
            None => None,
        }
    };
    let task = tokio::task::spawn_blocking(move || pin_blocking(spec, resolver.as_deref(), timeout, max));
    // The resolver keeps its own deadline; this one also bounds the hashing.
    let grace = Duration::from_secs(1);
    let (downloaded, pinned) = tokio::join!(download, tokio::time::timeout(timeout + grace, task));
    let result = match pinned {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("pinning the job stopped: {e}"))),
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "pin-timeout",
            format!("resolving the revision and reading the reference took longer than {}s", timeout.as_secs()),
        )),
    };
    let result = result.and_then(|mut spec| {
        match (downloaded, &mut spec) {
            (Some(Ok(fetched)), JobSpec::Verify(v)) => v.reference_digest = Some(fetched.digest),
            (Some(Err(e)), _) => return Err(fetch_error(&e)),
            _ => {}
        }
        Ok(spec)
    });
    result.map_err(|(status, code, message)| {
        inner.metrics.rejected(code);
        error(status, code, message)
    })
}

/// A reference URL that gave no file, as a submission's answer: a URL that is not there is
/// the submitter's (422, as an unknown revision), a server that fails or is not trusted is
/// upstream's (502, as an unreachable source).
fn fetch_error(e: &fetch::FetchError) -> PinError {
    use fetch::FetchError as F;
    let status = match e {
        F::Refused(_) | F::Insecure(_) | F::NotFound(_) | F::TooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
        F::Untrusted(_) | F::Unreachable(_) => StatusCode::BAD_GATEWAY,
        F::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.code(), format!("reference {e}"))
}

impl<E: Executor> Inner<E> {
    /// Where downloaded references are kept: `DATA/references` (`sha256/HEX`).
    fn references_dir(&self) -> PathBuf {
        references_dir(&self.config.data)
    }

    /// How a reference URL is downloaded: the size bound, `overall` for the whole of it.
    fn reference_fetch(&self, overall: Duration) -> fetch::Fetch {
        fetch::Fetch {
            loopback_http: self.config.loopback_http_references,
            ..fetch::Fetch::new(self.config.max_reference_bytes, overall)
        }
    }
}

type PinError = (StatusCode, &'static str, String);

fn pin_blocking(
    mut spec: JobSpec,
    resolver: Option<&dyn Resolver>,
    timeout: Duration,
    max_reference: u64,
) -> Result<JobSpec, PinError> {
    let commit = |source: &str, rev: &str| -> Result<Option<String>, PinError> {
        if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Some(rev.to_ascii_lowercase()));
        }
        let Some(resolver) = resolver else {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "unresolved-revision",
                format!(
                    "revision {rev:?} is not a full commit id (40 hexadecimal digits), and this server resolves no \
                     revisions: submit the commit it names"
                ),
            ));
        };
        let id = resolver.resolve(source, rev, timeout).map_err(|e| match e {
            ResolveError::UnknownRevision(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-revision",
                format!("revision {rev:?} does not name a commit of {source}: {m}"),
            ),
            ResolveError::BadSource(m) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-source", m),
            ResolveError::Unreachable(m) => (StatusCode::BAD_GATEWAY, "source-unreachable", m),
        })?;
        if !job::is_full_commit(&id) {
            return Err((
                StatusCode::BAD_GATEWAY,
                "source-unreachable",
                format!("revision {rev:?} of {source} resolved to {id:?}, not a full commit id"),
            ));
        }
        Ok(Some(id))
    };
    match &mut spec {
        JobSpec::Verify(v) => {
            v.commit = commit(&v.source, &v.rev)?;
            if v.reference.starts_with('/') {
                v.reference_digest = Some(reference_digest(&v.reference, max_reference)?);
            }
        }
        JobSpec::Check(c) => c.commit = commit(&c.source, &c.rev)?,
        JobSpec::Audit(_) | JobSpec::Noop(_) => {}
    }
    Ok(spec)
}

/// [`job::file_digest`], refused as an invalid reference.
pub(crate) fn reference_digest(path: &str, max: u64) -> Result<String, PinError> {
    job::file_digest(std::path::Path::new(path), max)
        .map_err(|m| (StatusCode::UNPROCESSABLE_ENTITY, "invalid-reference", format!("reference {m}")))
}

async fn get_job<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return unauthorized(&inner);
    }
    if !valid_id(&id) {
        inner.metrics.rejected("bad-id");
        return error(StatusCode::BAD_REQUEST, "bad-id", "a job id is 32 lowercase hexadecimal digits".into());
    }
    let q = inner.queue.clone();
    match blocking(move || q.get(&id)).await {
        Ok(Some(job)) => answer(StatusCode::OK, &full_view(&inner, job, None).await),
        Ok(None) => error(StatusCode::NOT_FOUND, "no-such-job", "no job has this id".into()),
        Err(e) => queue_error(&e),
    }
}

async fn list<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>, request: Request) -> Response {
    if !may_read(&inner, request.headers()) {
        return unauthorized(&inner);
    }
    let filter = match parse_filter(request.uri().query().unwrap_or("")) {
        Ok(f) => f,
        Err(m) => {
            inner.metrics.rejected("bad-filter");
            return error(StatusCode::BAD_REQUEST, "bad-filter", m);
        }
    };
    let q = inner.queue.clone();
    match blocking(move || q.list(&filter)).await {
        Ok(jobs) => {
            let jobs: Vec<Value> = jobs.iter().map(|j| view(&inner, j, false)).collect();
            answer(StatusCode::OK, &json!({ "jobs": jobs }))
        }
        Err(e) => queue_error(&e),
    }
}

async fn retry<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !authorized(&inner, &headers) {
        return unauthorized(&inner);
    }
    if !valid_id(&id) {
        inner.metrics.rejected("bad-id");
        return error(StatusCode::BAD_REQUEST, "bad-id", "a job id is 32 lowercase hexadecimal digits".into());
    }
    let q = inner.queue.clone();
    match blocking(move || q.retry(&id, now_ms())).await {
        Ok(Some(Ok(job))) => {
            log::event("info", "job retried", &[("id", &job.id)]);
            inner.queued.notify_waiters();
            answer(StatusCode::OK, &view(&inner, &job, false))
        }
        Ok(Some(Err(state))) => error(
            StatusCode::CONFLICT,
            "not-finished",
            format!("the job is {}: only a done or failed job can be retried", state.as_str()),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, "no-such-job", "no job has this id".into()),
        Err(e) => queue_error(&e),
    }
}

async fn image<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(digest): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return unauthorized(&inner);
    }
    if !valid_digest(&digest) {
        inner.metrics.rejected("bad-digest");
        return error(
            StatusCode::BAD_REQUEST,
            "bad-digest",
            "expected sha256: and 64 lowercase hexadecimal digits".into(),
        );
    }
    let (q, d) = (inner.queue.clone(), digest.clone());
    match blocking(move || q.latest_for_image(&d)).await {
        Ok(Some(job)) => answer(StatusCode::OK, &full_view(&inner, job, Some(digest)).await),
        Ok(None) => error(StatusCode::NOT_FOUND, "no-verdict", "no finished job is about this digest".into()),
        Err(e) => queue_error(&e),
    }
}

async fn readyz<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>) -> Response {
    let q = inner.queue.clone();
    match blocking(move || q.stats(now_ms())).await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: the job queue is unavailable\n").into_response(),
    }
}

async fn render_metrics<E: Executor>(inner: &Arc<Inner<E>>) -> String {
    let q = inner.queue.clone();
    let stats = blocking(move || q.stats(now_ms())).await.ok();
    inner.metrics.render(stats.as_ref())
}

async fn metrics_route<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render_metrics(&inner).await).into_response()
}

/// `state=…&image=…&module=…&watch=…&limit=…`; unknown or repeated keys are refused.
fn parse_filter(query: &str) -> Result<Filter, String> {
    let mut f = Filter { limit: 100, ..Filter::default() };
    let mut seen = std::collections::BTreeSet::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v).ok_or_else(|| format!("{k}: not valid percent-encoded UTF-8"))?;
        if !seen.insert(k.to_string()) {
            return Err(format!("{k} given twice"));
        }
        if v.len() > 4096 {
            return Err(format!("{k}: longer than 4096 bytes"));
        }
        match k {
            "state" => {
                f.state = Some(
                    State::parse(&v).ok_or_else(|| format!("state {v:?}: expected queued, running, done or failed"))?,
                )
            }
            "image" => f.image = Some(v),
            "module" => f.module = Some(v),
            "watch" => f.watch = Some(v),
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("limit {v:?}: expected 1 to 1000"))?
            }
            _ => return Err(format!("unknown filter {k:?}: expected state, image, module, watch or limit")),
        }
    }
    Ok(f)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn rfc3339(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(stdx::time::format_rfc3339(ms.div_euclid(1000))))
}

/// [`view`] with the report and attestations read from their blobs off the async threads;
/// `digest` is added as `digest` (the image verdict's answer).
async fn full_view<E: Executor>(inner: &Arc<Inner<E>>, job: Job, digest: Option<String>) -> Value {
    let inner = inner.clone();
    let id = job.id.clone();
    let mut v = tokio::task::spawn_blocking(move || view(&inner, &job, true))
        .await
        .unwrap_or_else(|_| json!({"id": id, "state": Value::Null}));
    if let (Some(o), Some(d)) = (v.as_object_mut(), digest) {
        o.insert("digest".into(), d.into());
    }
    v
}

/// A job as the API answers it; `full` embeds the report and the attestations.
fn view(inner: &Inner<impl Executor>, job: &Job, full: bool) -> Value {
    let mut v = json!({
        "id": job.id,
        "state": job.state.as_str(),
        "kind": job.spec.kind(),
        "spec": job.spec,
        // What the job builds: the commit its rev named at submission.
        "commit": job.spec.commit(),
        "referenceDigest": match &job.spec { JobSpec::Verify(v) => v.reference_digest.clone(), _ => None },
        "attempts": job.attempts,
        "progress": job.progress,
        "createdAt": rfc3339(Some(job.created_ms)),
        "startedAt": rfc3339(job.started_ms),
        // Milliseconds from being queued (submitted or retried) to the latest attempt's start.
        "waitedMs": job.started_ms.map(|s| (s - job.queued_ms).max(0)),
        "finishedAt": rfc3339(job.finished_ms),
        "verdict": job.verdict,
        "image": job.image,
        "imageDigest": job.image_digest,
        "module": job.module,
        "reportDigest": job.report,
        "resultsStored": job.results_stored,
        "failure": job.failure_class.as_ref().map(|c| json!({"class": c, "message": job.failure_message})),
    });
    if full {
        let read = |d: &str| -> Value {
            match inner.blobs.get(d) {
                Ok(Some(b)) => {
                    serde_json::from_slice(&b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into()))
                }
                Ok(None) => Value::Null,
                Err(e) => {
                    log::event("error", "reading a blob", &[("digest", d), ("error", &e.to_string())]);
                    Value::Null
                }
            }
        };
        let report = job.report.as_deref().map_or(Value::Null, read);
        let attestations: Vec<Value> = job
            .attestations
            .iter()
            .map(|a| json!({"name": a.name, "mediaType": a.media_type, "digest": a.digest, "content": read(&a.digest)}))
            .collect();
        if let Some(o) = v.as_object_mut() {
            o.insert("report".into(), report);
            o.insert("attestations".into(), Value::Array(attestations));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_strict() {
        let f = parse_filter("state=done&image=sha256%3Aab&module=example.com%2Fm&limit=5").unwrap_or_default();
        assert_eq!(f.state, Some(State::Done));
        assert_eq!(f.image.as_deref(), Some("sha256:ab"));
        assert_eq!(f.module.as_deref(), Some("example.com/m"));
        assert_eq!(f.limit, 5);
        assert!(parse_filter("state=sleeping").is_err());
        assert!(parse_filter("owner=x").is_err());
        assert!(parse_filter("state=done&state=failed").is_err());
        assert!(parse_filter("limit=0").is_err());
        assert!(parse_filter("image=%zz").is_err());
    }
}
