//! `reprove webhook`: a Kubernetes ValidatingAdmissionWebhook that decides from the
//! signed verdicts (VSAs) attached to image digests.
//!
//! The server ([`Server`]) serves AdmissionReview `admission.k8s.io/v1` at `/validate`
//! (and `/mutate`, which pins tags to digests with a JSONPatch) over HTTPS, with
//! `/healthz`, `/readyz` and `/metrics` (Prometheus text). It does not decide itself: a
//! [`Decide`] implementation (the policy engine) judges one image used in one
//! namespace, and the server adds what a webhook needs around it:
//!
//! - one decision per distinct image and namespace per review, concurrently;
//! - a per-review deadline well under the API server's `timeoutSeconds`, answered with
//!   a denial (never an allow: fail closed);
//! - a bounded cache keyed by (image, namespace, policy digest): allowed decisions until
//!   the earliest VSA expiry or a TTL, denials briefly, failures never; concurrent
//!   reviews of one image share one decision (single flight);
//! - the serving certificate reloaded when its files change (a broken new pair keeps
//!   the old one, counted in the metrics);
//! - bounded bodies, connections and header reads.
//!
//! The library builds no runtime: the caller's runs [`Server::serve`].

mod cache;
mod metrics;
mod review;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::time::Instant;

pub use cache::CacheConfig;
pub use review::{extract_images, ImageAt, ReviewError};

/// One image as one review uses it: the reference as written in the object, and the
/// namespace of the object (policies may differ per namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageUse {
    /// The image reference as the object spells it (`name:tag`, `name@sha256:…`).
    pub image: String,
    /// The object's namespace; empty for cluster-scoped objects.
    pub namespace: String,
}

/// The policy engine's answer for one [`ImageUse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the image may run. A warn-mode denial is `true` with a warning.
    pub allowed: bool,
    /// A short stable code (`passed`, `no-vsa`, `expired`, `tag-only`, …): the metrics'
    /// `reason` label and the start of the message.
    pub reason: String,
    /// What happened and what to do, for the person whose deployment was refused.
    pub message: String,
    /// Warnings to show even when allowed (warn-mode denials, VSAs about to expire).
    pub warnings: Vec<String>,
    /// The earliest expiry of the verdicts the decision rests on: it is cached no longer.
    pub earliest_expiry: Option<SystemTime>,
    /// The image's digest (`sha256:…`) when known: `/mutate` pins a tag to it.
    pub digest: Option<String>,
    /// The decision stands in for a failure the policy allows through (its `on_error`):
    /// never cached.
    pub from_error: bool,
}

/// A decision that could not be made (a registry down, a malformed answer): the review
/// is denied and nothing is cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct DecideError {
    /// A short stable code (`registry-unavailable`, …), the metrics' label.
    pub reason: String,
    /// What failed and what to do.
    pub message: String,
}

/// The policy engine the server asks: one image in one namespace, before a deadline.
///
/// The seam between the server and the decision engine (`admission::decide`): the
/// server calls it at most once per (image, namespace, policy digest) at a time and
/// caches what it answers.
pub trait Decide: Send + Sync + 'static {
    /// Decides `image`; gives up at `deadline` (the server also stops waiting then).
    fn decide(&self, image: &ImageUse, deadline: Instant)
        -> impl Future<Output = Result<Decision, DecideError>> + Send;

    /// The digest of the policy in force (`sha256:…`): part of every cache key, so a
    /// new policy never reuses the old one's decisions.
    fn policy_digest(&self) -> String;

    /// Whether the policy is loaded (`/readyz`).
    fn ready(&self) -> bool {
        true
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The certificate chain (PEM), reloaded when it changes.
    pub tls_cert: PathBuf,
    /// The private key (PEM), reloaded when it changes.
    pub tls_key: PathBuf,
    /// How often the certificate files are checked for changes.
    pub tls_reload_interval: Duration,
    /// The time a review may take, from its first byte: well under the webhook's
    /// `timeoutSeconds`, so that the answer is ours (a denial), not the API server's.
    pub deadline: Duration,
    /// The largest request body accepted (an AdmissionReview holds the object and
    /// the old object; etcd stores objects up to 1.5 MiB).
    pub max_body_bytes: usize,
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// The decision cache.
    pub cache: CacheConfig,
}

impl Config {
    /// Defaults for a webhook registered with `timeoutSeconds: 10`.
    pub fn new(tls_cert: PathBuf, tls_key: PathBuf) -> Config {
        Config {
            tls_cert,
            tls_key,
            tls_reload_interval: Duration::from_secs(10),
            deadline: Duration::from_secs(8),
            max_body_bytes: 4 << 20,
            max_connections: 512,
            cache: CacheConfig::default(),
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key could not be loaded at start.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Accepting connections failed.
    #[error("accepting connections on {addr}: {source}")]
    Accept {
        /// The listening address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The webhook server: its decision engine, cache, certificate and metrics.
pub struct Server<D: Decide> {
    inner: Arc<Inner<D>>,
}

struct Inner<D: Decide> {
    config: Config,
    decider: Arc<D>,
    cache: cache::Cache,
    tls: Arc<tls::Reloader>,
    metrics: Arc<metrics::Metrics>,
}

impl<D: Decide> Server<D> {
    /// Loads the certificate and key (an error if they do not load or do not match).
    pub fn new(config: Config, decider: D) -> Result<Server<D>, WebhookError> {
        let metrics = Arc::new(metrics::Metrics::default());
        let tls = Arc::new(tls::Reloader::load(&config.tls_cert, &config.tls_key)?);
        let cache = cache::Cache::new(config.cache.clone(), metrics.clone());
        Ok(Server { inner: Arc::new(Inner { config, decider: Arc::new(decider), cache, tls, metrics }) })
    }

    /// The metrics as `/metrics` serves them (Prometheus text format 0.0.4).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render(self.inner.cache.len())
    }

    /// Serves HTTPS on `listener` until `shutdown` completes; connections in progress
    /// are then dropped.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), WebhookError> {
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let router = self.router();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(self.inner.tls.clone())?);
        let reload = tokio::spawn(tls::watch(
            self.inner.tls.clone(),
            self.inner.metrics.clone(),
            self.inner.config.tls_reload_interval,
        ));
        let slots = Arc::new(tokio::sync::Semaphore::new(self.inner.config.max_connections.max(1)));
        tokio::pin!(shutdown);
        let result = loop {
            let permit = tokio::select! {
                () = &mut shutdown => break Ok(()),
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break Ok(()) },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break Ok(()),
                a = listener.accept() => match a {
                    Ok(a) => a,
                    // Out of descriptors and similar: wait a little, go on serving.
                    Err(e) if is_transient(&e) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
                    Err(source) => break Err(WebhookError::Accept { addr: addr.clone(), source }),
                },
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let _permit = permit;
                serve_connection(acceptor, router, stream, peer).await;
            });
        };
        reload.abort();
        result
    }

    /// The routes, without TLS (the tests of the handlers call it in process).
    fn router(&self) -> Router {
        Router::new()
            .route("/validate", post(validate::<D>))
            .route("/mutate", post(mutate::<D>))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz::<D>))
            .route("/metrics", get(metrics_route::<D>))
            .with_state(self.inner.clone())
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::Interrupted
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

/// A TLS handshake bounded in time, then HTTP/1.1 with a bounded header read.
async fn serve_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    stream: tokio::net::TcpStream,
    _peer: SocketAddr,
) {
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        _ => return,
    };
    let service = hyper_util::service::TowerToHyperService::new(router);
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 << 10)
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
}

async fn readyz<D: Decide>(State(inner): State<Arc<Inner<D>>>) -> Response {
    if inner.decider.ready() && inner.tls.loaded() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the policy or the certificate is not loaded\n").into_response()
    }
}

async fn metrics_route<D: Decide>(State(inner): State<Arc<Inner<D>>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], inner.metrics.render(inner.cache.len()))
        .into_response()
}

async fn validate<D: Decide>(State(inner): State<Arc<Inner<D>>>, request: Request<Body>) -> Response {
    review_route(inner, request, review::Endpoint::Validate).await
}

async fn mutate<D: Decide>(State(inner): State<Arc<Inner<D>>>, request: Request<Body>) -> Response {
    review_route(inner, request, review::Endpoint::Mutate).await
}

async fn review_route<D: Decide>(inner: Arc<Inner<D>>, request: Request<Body>, endpoint: review::Endpoint) -> Response {
    let started = Instant::now();
    let deadline = started + inner.config.deadline;
    let limit = inner.config.max_body_bytes;
    let body = match tokio::time::timeout_at(deadline, axum::body::to_bytes(request.into_body(), limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            inner.metrics.bad_request("body-too-large");
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the AdmissionReview is larger than the webhook accepts ({limit} bytes) or was cut off"),
            );
        }
        Err(_) => {
            inner.metrics.bad_request("body-timeout");
            return plain(StatusCode::REQUEST_TIMEOUT, "the AdmissionReview did not arrive before the deadline".into());
        }
    };
    let parsed = match review::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            inner.metrics.bad_request(e.code());
            return plain(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let answer = review::answer(&inner, &parsed, endpoint, deadline).await;
    inner.metrics.review(endpoint.name(), answer.allowed, parsed.dry_run, started.elapsed());
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&review::envelope(&parsed, answer)).unwrap_or_default(),
    )
        .into_response()
}

fn plain(code: StatusCode, message: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
}
