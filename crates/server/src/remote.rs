//! [`Leases`] over the server's worker API, for `reprove worker`: the process talks only to
//! the API (never to the database), with the worker token. A server that cannot be reached
//! is an error the worker loop retries with backoff; a result is offered again (with
//! backoff) until the server takes it, says the lease is lost, or the worker stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::job::JobSpec;
use crate::work::{backoff, LeaseError, Leased, Leases};
use crate::worker_api::{FinishBody, HeartbeatBody, WorkerBody};
use crate::{log, ExecError, JobResult};

/// The server's worker API.
#[derive(Debug)]
pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
    stopping: AtomicBool,
    /// How long a result is offered again while the server cannot be reached.
    patience: Duration,
    /// Whether the last empty claim was held by the server (a long poll): then the next
    /// claim follows at once.
    held: AtomicBool,
    /// How long a claim asks the server to wait for a job.
    claim_wait: Duration,
}

/// How long a claim asks the server to wait for a job (the server caps it below its
/// request deadline). Short, so that a worker told to stop, which lets its claim finish
/// (a job leased in flight is not lost), stops within it.
const CLAIM_WAIT: Duration = Duration::from_secs(2);

/// What a claim answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claimed {
    id: String,
    spec: serde_json::Value,
    attempt: u32,
    lease_ms: u64,
}

/// An answer other than the one expected.
enum Failed {
    /// The lease is lost (409).
    Lost,
    /// Worth trying again: no connection, a timeout, a 5xx, a 429.
    Transient(String),
    /// Trying again would not help (another 4xx).
    Final(String),
}

impl Remote {
    /// Claims ask the server to wait up to `wait` for a job (default two seconds; zero: an
    /// empty queue answers at once).
    pub fn with_claim_wait(mut self, wait: Duration) -> Remote {
        self.claim_wait = wait;
        self
    }

    /// A client of the server at `url` (`http://` or `https://`, the API's root) with the
    /// worker token.
    pub fn new(url: &str, token: &str) -> Result<Remote, LeaseError> {
        let bad = |m: String| LeaseError::Server { url: url.to_string(), message: m };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        if token.trim().is_empty() {
            return Err(bad("no worker token".into()));
        }
        // An error means a provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("reprove-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(format!("creating the HTTP client: {e}")))?;
        Ok(Remote {
            base: url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            http,
            stopping: AtomicBool::new(false),
            patience: Duration::from_secs(600),
            held: AtomicBool::new(false),
            claim_wait: CLAIM_WAIT,
        })
    }

    /// The worker is stopping: a result the server cannot take now is not offered again
    /// (its lease expires and the job runs elsewhere).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn error(&self, path: &str, message: String) -> LeaseError {
        LeaseError::Server { url: format!("{}{path}", self.base), message }
    }

    /// POSTs `body` to `path`: the status and the body of a 2xx answer.
    async fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<(u16, Vec<u8>), Failed> {
        let sent = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(body).send().await;
        let resp = sent.map_err(|e| Failed::Transient(without_url(e)))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| Failed::Transient(without_url(e)))?;
        match status {
            200..=299 => Ok((status, bytes.to_vec())),
            409 => Err(Failed::Lost),
            _ => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let message = format!(
                    "{status} {}: {}",
                    v["error"]["code"].as_str().unwrap_or("error"),
                    v["error"]["message"].as_str().unwrap_or_else(|| std::str::from_utf8(&bytes).unwrap_or(""))
                );
                if status >= 500 || status == 429 || status == 408 {
                    Err(Failed::Transient(message))
                } else {
                    Err(Failed::Final(message))
                }
            }
        }
    }

    /// A call whose 409 means the lease is lost.
    async fn leased_call(&self, path: &str, body: &impl serde::Serialize) -> Result<bool, LeaseError> {
        match self.post(path, body).await {
            Ok(_) => Ok(true),
            Err(Failed::Lost) => Ok(false),
            Err(Failed::Transient(m) | Failed::Final(m)) => Err(self.error(path, m)),
        }
    }
}

/// reqwest's error without the URL (the caller names it) but with its causes.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

impl Leases for Remote {
    async fn claim(&self, worker: &str) -> Result<Option<Leased>, LeaseError> {
        let path = "/v1/worker/claim";
        let wait_ms = u64::try_from(self.claim_wait.as_millis()).unwrap_or(u64::MAX);
        let asked = std::time::Instant::now();
        let body = WorkerBody { worker: worker.into(), wait_ms: Some(wait_ms) };
        self.held.store(false, Ordering::SeqCst);
        let (status, bytes) = match self.post(path, &body).await {
            Ok(a) => a,
            Err(Failed::Lost) => return Err(self.error(path, "409 on a claim".into())),
            Err(Failed::Transient(m) | Failed::Final(m)) => return Err(self.error(path, m)),
        };
        if status == 204 {
            // An answer after most of the wait was a long poll; a quick one is followed by
            // the loop's poll interval, so a server that holds nothing is not asked in a
            // tight loop.
            self.held.store(!self.claim_wait.is_zero() && asked.elapsed() >= self.claim_wait / 2, Ordering::SeqCst);
            return Ok(None);
        }
        let c: Claimed = serde_json::from_slice(&bytes).map_err(|e| self.error(path, format!("the answer: {e}")))?;
        if !crate::job::valid_id(&c.id) {
            return Err(self.error(path, format!("the answer's job id {:?} is not a job id", c.id)));
        }
        let lease = Duration::from_millis(c.lease_ms.max(30));
        match serde_json::from_value::<JobSpec>(c.spec) {
            Ok(spec) => Ok(Some(Leased { id: c.id, spec, attempt: c.attempt, lease })),
            Err(e) => {
                // A kind this worker does not know: the job fails rather than going round.
                let message = format!("this worker cannot run the job: {e}");
                let body = FinishBody::new(worker, Err(ExecError { class: "unsupported".into(), message }))
                    .map_err(|m| self.error(path, m))?;
                let _ = self.post(&format!("/v1/worker/jobs/{}/finish", c.id), &body).await;
                Err(self.error(path, format!("job {}: a spec this worker does not know ({e})", c.id)))
            }
        }
    }

    async fn idle(&self, poll: Duration) {
        if !self.held.load(Ordering::SeqCst) {
            tokio::time::sleep(poll).await;
        }
    }

    async fn heartbeat(&self, job: &Leased, worker: &str, progress: Option<String>) -> Result<bool, LeaseError> {
        let body = HeartbeatBody { worker: worker.into(), progress };
        self.leased_call(&format!("/v1/worker/jobs/{}/heartbeat", job.id), &body).await
    }

    async fn finish(
        &self,
        job: &Leased,
        worker: &str,
        result: Result<JobResult, ExecError>,
        _took: Duration,
    ) -> Result<bool, LeaseError> {
        let path = format!("/v1/worker/jobs/{}/finish", job.id);
        let body = match FinishBody::new(worker, result) {
            Ok(b) => b,
            Err(message) => FinishBody::new(worker, Err(ExecError { class: "internal".into(), message }))
                .map_err(|m| self.error(&path, m))?,
        };
        let started = tokio::time::Instant::now();
        let mut failures = 0;
        loop {
            match self.post(&path, &body).await {
                Ok(_) => return Ok(true),
                Err(Failed::Lost) => return Ok(false),
                Err(Failed::Final(m)) => return Err(self.error(&path, m)),
                Err(Failed::Transient(m)) => {
                    failures += 1;
                    if self.stopping.load(Ordering::SeqCst) || started.elapsed() > self.patience {
                        return Err(self.error(&path, m));
                    }
                    let wait = backoff(failures, Duration::from_secs(30));
                    log::event(
                        "warn",
                        "the server did not take the result: offering it again",
                        &[("id", &job.id), ("error", &m), ("retry-in", &format!("{:.1}s", wait.as_secs_f64()))],
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn release(&self, job: &Leased, worker: &str) -> Result<bool, LeaseError> {
        self.leased_call(
            &format!("/v1/worker/jobs/{}/release", job.id),
            &WorkerBody { worker: worker.into(), wait_ms: None },
        )
        .await
    }
}
