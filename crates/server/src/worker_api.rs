//! The worker API: how `reprove worker` processes on other machines lease jobs, renew
//! their leases, store results and hand jobs back, through the same [`crate::queue::Queue`]
//! calls (and lease and attempt rules) as the in-process workers. Every route needs the
//! worker token (the API token unless one of its own is configured), compared in constant
//! time; bodies are bounded and parsed strictly; ids are checked before the queue sees them.
//! A remote worker's name is kept as `remote/NAME`, so it never names an in-process worker.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::job::valid_id;
use crate::queue::State;
use crate::work::Local;
use crate::{answer, bearer_is, blocking, error, log, now_ms, queue_error, rfc3339, unauthorized};
use crate::{ExecError, Executor, Inner, JobResult};

/// The longest worker name, progress step, verdict or failure class.
const MAX_NAME: usize = 200;
/// Attestations one result may carry.
const MAX_ATTESTATIONS: usize = 32;

pub(crate) fn routes<E: Executor>() -> Router<Arc<Inner<E>>> {
    Router::new()
        .route("/v1/worker/claim", post(claim::<E>))
        .route("/v1/worker/jobs/{id}/heartbeat", post(heartbeat::<E>))
        .route("/v1/worker/jobs/{id}/finish", post(finish::<E>))
        .route("/v1/worker/jobs/{id}/release", post(release::<E>))
}

/// `POST /v1/worker/claim` and `…/release`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerBody {
    pub(crate) worker: String,
    /// On a claim: how long the server may hold the request for a job to be queued (a
    /// long poll; capped below the request deadline), rather than answering 204 at once.
    #[serde(default, rename = "waitMs", skip_serializing_if = "Option::is_none")]
    pub(crate) wait_ms: Option<u64>,
}

/// `POST /v1/worker/jobs/{id}/heartbeat`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatBody {
    pub(crate) worker: String,
    #[serde(default)]
    pub(crate) progress: Option<String>,
}

/// An attestation of a result, its content as text (a DSSE envelope, a bundle).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AttestationBody {
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) content: String,
}

/// Why a job reached no verdict.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailureBody {
    pub(crate) class: String,
    pub(crate) message: String,
}

/// `POST /v1/worker/jobs/{id}/finish`: a report (JSON, kept byte for byte) with its
/// verdict, or only a failure when the job produced no report.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinishBody {
    pub(crate) worker: String,
    #[serde(default)]
    pub(crate) verdict: Option<String>,
    #[serde(default)]
    pub(crate) report: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    pub(crate) module: Option<String>,
    #[serde(default)]
    pub(crate) attestations: Vec<AttestationBody>,
    #[serde(default)]
    pub(crate) failure: Option<FailureBody>,
}

impl FinishBody {
    /// The body of `result`.
    pub(crate) fn new(worker: &str, result: Result<JobResult, ExecError>) -> Result<FinishBody, String> {
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                return Ok(FinishBody {
                    worker: worker.into(),
                    verdict: None,
                    report: None,
                    module: None,
                    attestations: Vec::new(),
                    failure: Some(FailureBody { class: e.class, message: e.message }),
                })
            }
        };
        let report = String::from_utf8(r.report).map_err(|_| "the report is not UTF-8".to_string())?;
        let report = serde_json::value::RawValue::from_string(report).map_err(|e| format!("the report: {e}"))?;
        let mut attestations = Vec::new();
        for (name, media_type, bytes) in r.attestations {
            let content = String::from_utf8(bytes).map_err(|_| format!("attestation {name} is not UTF-8"))?;
            attestations.push(AttestationBody { name, media_type, content });
        }
        Ok(FinishBody {
            worker: worker.into(),
            verdict: Some(r.verdict),
            report: Some(report),
            module: r.module,
            attestations,
            failure: r.failure.map(|(class, message)| FailureBody { class, message }),
        })
    }

    /// The result it carries, checked.
    fn result(self) -> Result<Result<JobResult, ExecError>, String> {
        let short = |what: &str, v: &str| -> Result<(), String> {
            if v.is_empty() || v.len() > MAX_NAME || v.chars().any(char::is_control) {
                return Err(format!("{what}: 1 to {MAX_NAME} bytes without control characters"));
            }
            Ok(())
        };
        if let Some(f) = &self.failure {
            short("failure.class", &f.class)?;
        }
        let Some(report) = self.report else {
            if self.verdict.is_some() || !self.attestations.is_empty() {
                return Err("a verdict or attestations without a report".into());
            }
            let f = self.failure.ok_or("neither a report nor a failure")?;
            return Ok(Err(ExecError { class: f.class, message: f.message }));
        };
        let verdict = self.verdict.ok_or("a report without a verdict")?;
        short("verdict", &verdict)?;
        if let Some(m) = &self.module {
            short("module", m)?;
        }
        if self.attestations.len() > MAX_ATTESTATIONS {
            return Err(format!("more than {MAX_ATTESTATIONS} attestations"));
        }
        let mut attestations = Vec::new();
        for a in self.attestations {
            short("attestations.name", &a.name)?;
            short("attestations.mediaType", &a.media_type)?;
            attestations.push((a.name, a.media_type, a.content.into_bytes()));
        }
        Ok(Ok(JobResult {
            verdict,
            report: report.get().as_bytes().to_vec(),
            failure: self.failure.map(|f| (f.class, f.message)),
            module: self.module,
            attestations,
        }))
    }
}

/// The lease owner of a remote worker's name, or the answer refusing the name.
fn owner(inner: &Inner<impl Executor>, worker: &str) -> Result<String, Box<Response>> {
    if worker.is_empty() || worker.len() > MAX_NAME || worker.chars().any(char::is_control) {
        inner.metrics.rejected("bad-worker");
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-worker",
            format!("worker: a name of 1 to {MAX_NAME} bytes without control characters"),
        )));
    }
    // Heard from within two leases: an idle worker asks for work, a busy one renews its lease.
    inner.metrics.remote_seen(worker, inner.config.lease.saturating_mul(2));
    Ok(format!("remote/{worker}"))
}

/// Checks the token, then the job id if there is one, then reads the body (at most
/// `limit` bytes) as `T`.
async fn body<E: Executor, T: DeserializeOwned>(
    inner: &Inner<E>,
    id: Option<&str>,
    request: Request,
    limit: usize,
) -> Result<T, Response> {
    let want = inner.config.worker_token.as_deref().unwrap_or(&inner.config.token);
    if !bearer_is(request.headers(), want) {
        return Err(unauthorized(inner));
    }
    if let Some(id) = id {
        check_id(inner, id).map_err(|r| *r)?;
    }
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
        inner.metrics.rejected("body-too-large");
        crate::too_large(limit)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            inner.metrics.rejected("invalid-fields");
            error(StatusCode::UNPROCESSABLE_ENTITY, "invalid-fields", e.to_string())
        } else {
            inner.metrics.rejected("malformed-json");
            error(StatusCode::BAD_REQUEST, "malformed-json", format!("the body is not a JSON object: {e}"))
        }
    })
}

fn check_id(inner: &Inner<impl Executor>, id: &str) -> Result<(), Box<Response>> {
    if valid_id(id) {
        return Ok(());
    }
    inner.metrics.rejected("bad-id");
    Err(Box::new(error(StatusCode::BAD_REQUEST, "bad-id", "a job id is 32 lowercase hexadecimal digits".into())))
}

fn lease_lost() -> Response {
    error(
        StatusCode::CONFLICT,
        "lease-lost",
        "this worker does not hold the job's lease (it expired and the job went to another worker, or it finished)"
            .into(),
    )
}

async fn claim<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>, request: Request) -> Response {
    let limit = inner.config.max_body_bytes;
    let b: WorkerBody = match body(&inner, None, request, limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let owner = match owner(&inner, &b.worker) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let lease_ms = i64::try_from(inner.config.lease.as_millis()).unwrap_or(60_000);
    // A long poll ends a second before the request's deadline, and at the latest after 30 s.
    let wait = Duration::from_millis(b.wait_ms.unwrap_or(0).min(30_000))
        .min(inner.config.request_timeout.saturating_sub(Duration::from_secs(1)));
    let until = tokio::time::Instant::now() + wait;
    let claimed = loop {
        // Registered before the claim: a job queued in between still wakes this request.
        let queued = inner.queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let (q, w, max) = (inner.queue.clone(), owner.clone(), inner.config.max_attempts);
        match blocking(move || q.claim(&w, now_ms(), lease_ms, max)).await {
            Ok(None) if tokio::time::Instant::now() < until => {
                // Woken by a submission, or at least once a second (another server's
                // submissions on a shared database wake nothing here).
                let next = until.min(tokio::time::Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    () = &mut queued => {}
                    () = tokio::time::sleep_until(next) => {}
                }
            }
            other => break other,
        }
    };
    match claimed {
        Ok(Some(job)) => {
            log::event(
                "info",
                "job leased to a remote worker",
                &[("id", &job.id), ("worker", &b.worker), ("attempt", &job.attempts.to_string())],
            );
            answer(
                StatusCode::OK,
                &json!({
                    "id": job.id,
                    "spec": job.spec,
                    "attempt": job.attempts,
                    "leaseMs": lease_ms,
                    "leaseExpires": rfc3339(job.lease_expires_ms),
                }),
            )
        }
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => queue_error(&e),
    }
}

async fn heartbeat<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Response {
    let b: HeartbeatBody = match body(&inner, Some(&id), request, inner.config.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let owner = match owner(&inner, &b.worker) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let progress = b.progress.map(|p| p.chars().filter(|c| !c.is_control()).take(MAX_NAME).collect::<String>());
    let lease_ms = i64::try_from(inner.config.lease.as_millis()).unwrap_or(60_000);
    let (q, i) = (inner.queue.clone(), id.clone());
    let now = now_ms();
    match blocking(move || q.heartbeat(&i, &owner, now, lease_ms, progress.as_deref())).await {
        Ok(true) => answer(StatusCode::OK, &json!({"id": id, "leaseExpires": rfc3339(Some(now + lease_ms))})),
        Ok(false) => {
            inner.metrics.lease_lost();
            lease_lost()
        }
        Err(e) => queue_error(&e),
    }
}

async fn finish<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Response {
    let b: FinishBody = match body(&inner, Some(&id), request, inner.config.max_result_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let owner = match owner(&inner, &b.worker) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let worker = b.worker.clone();
    let result = match b.result() {
        Ok(r) => r,
        Err(m) => {
            inner.metrics.rejected("invalid-result");
            return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid-result", m);
        }
    };
    // A worker that lost its lease stores nothing, not even blobs.
    let (q, i) = (inner.queue.clone(), id.clone());
    let job = match blocking(move || q.get(&i)).await {
        Ok(Some(job)) => job,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no-such-job", "no job has this id".into()),
        Err(e) => return queue_error(&e),
    };
    if job.state != State::Running || job.lease_owner.as_deref() != Some(owner.as_str()) {
        inner.metrics.lease_lost();
        return lease_lost();
    }
    let took = Duration::from_millis(job.started_ms.map_or(0, |s| (now_ms() - s).max(0).unsigned_abs()));
    let local = Local(inner.clone());
    let outcome = {
        let local = Local(inner.clone());
        match tokio::task::spawn_blocking(move || local.outcome(result)).await {
            Ok(o) => o,
            Err(e) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("storing the result stopped: {e}"))
            }
        }
    };
    let state = outcome.state;
    match local.finish_outcome(&id, job.spec.kind(), &owner, outcome, took).await {
        Ok(true) => {
            log::event(
                "info",
                "job finished by a remote worker",
                &[("id", &id), ("worker", &worker), ("state", state.as_str())],
            );
            answer(StatusCode::OK, &json!({"id": id, "state": state.as_str()}))
        }
        Ok(false) => lease_lost(),
        Err(e) => queue_error(&e),
    }
}

async fn release<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Response {
    let b: WorkerBody = match body(&inner, Some(&id), request, inner.config.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let owner = match owner(&inner, &b.worker) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let (q, i) = (inner.queue.clone(), id.clone());
    match blocking(move || q.release(&i, &owner)).await {
        Ok(true) => {
            log::event("info", "job handed back by a remote worker", &[("id", &id), ("worker", &b.worker)]);
            answer(StatusCode::OK, &json!({"id": id, "state": State::Queued.as_str()}))
        }
        Ok(false) => lease_lost(),
        Err(e) => queue_error(&e),
    }
}
