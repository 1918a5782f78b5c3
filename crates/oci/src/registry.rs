//! The registry client: oci-client with retries, platform selection, and
//! streaming blob downloads that are checked against their digest and size.
//!
//! oci-client does the HTTP, the auth handshakes (anonymous, basic, bearer
//! token with basic credentials) and the manifest requests; an `identitytoken`
//! from an auth file is exchanged here for an access token (Docker's OAuth2
//! refresh-token grant) and handed to oci-client as a bearer token. A 401 from
//! the registry or a refusal by its token server is [`ToolchainError::Auth`]. Blob bodies are hashed here as they
//! stream, and a download broken mid-way is resumed with a range request, so
//! the digest covers every byte exactly once. Plain HTTP is used only for
//! loopback registries and those named in `insecure_registries`.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use sha2::Digest as _;

use super::auth::{self, Auth, ResolvedAuth};
use super::deadline::{self, Deadline, Deadlines, Operation};
use super::{Digest, ImageRef, Platform, Progress, RegistryOptions, ToolchainError};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Largest manifest or config accepted.
pub(crate) const MAX_SMALL_BLOB: u64 = 8 << 20;

/// A client for one registry.
pub(crate) struct Registry {
    /// oci-client's client, built on first use: `Repository`'s requests to an anonymous
    /// registry never need it (building it loads the system's root certificates).
    client: std::sync::OnceLock<Client>,
    /// What oci-client is given on every call (anonymous for identity tokens:
    /// their access tokens go into its token cache in `authenticate`).
    auth: RegistryAuth,
    resolved: ResolvedAuth,
    /// Plain HTTP allowed (loopback or `--insecure-registry`).
    plain_http: bool,
    insecure_registries: Vec<String>,
    retries: u32,
    /// For the requests oci-client does not make.
    http: reqwest::Client,
    deadlines: Deadlines,
    /// This client's share of the overall deadline; charged when it is dropped.
    operation: Operation,
}

/// What a plain HTTP request to the registry carries to authenticate.
pub(crate) enum HttpAuth {
    /// Nothing: the registry is anonymous.
    None,
    /// `Authorization: Basic`.
    Basic(String, String),
    /// `Authorization: Bearer`.
    Bearer(String),
}

impl HttpAuth {
    /// `request` with this authentication.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            HttpAuth::None => request,
            HttpAuth::Basic(user, password) => request.basic_auth(user, Some(password)),
            HttpAuth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

/// A manifest resolved for one platform.
pub(crate) struct Resolved {
    /// The digest of the index the reference named, if it named one.
    pub(crate) index_digest: Option<Digest>,
    pub(crate) manifest_digest: Digest,
    pub(crate) manifest_bytes: Bytes,
    pub(crate) manifest: ImageManifest,
    pub(crate) platform: Option<Platform>,
}

/// Whether `host` may be reached over plain HTTP.
fn insecure(image: &ImageRef, options: &RegistryOptions) -> bool {
    let host = image.registry_host();
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || options.insecure_registries.iter().any(|r| r == image.registry() || r == host)
}

fn retryable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code >= 500,
        // Timeouts are expired deadlines, which are final (`Registry::retry`).
        OciDistributionError::RequestError(e) => e.is_connect() || e.is_request() || e.is_body(),
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(6))
}

/// A plain HTTP client with the connect and idle deadlines.
fn http_client(deadlines: &Deadlines) -> reqwest::Result<reqwest::Client> {
    crate::tls::lazy_roots(reqwest::Client::builder())
        .connect_timeout(deadlines.connect)
        .read_timeout(deadlines.idle)
        .user_agent(concat!("reprove/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Registry {
    /// A client for the registry of `image`; the overall deadline of its requests
    /// starts now, with what the command has left of it.
    pub(crate) fn new(image: &ImageRef, options: &RegistryOptions) -> Result<Registry, ToolchainError> {
        super::install_crypto_provider();
        let operation = options.clock.start(options.deadlines.overall);
        let plain_http = insecure(image, options);
        let resolved = auth::registry_auth(image, options.credentials.as_ref(), options.auth_file.as_deref())?;
        let auth = match &resolved.auth {
            Auth::Client(a) => a.clone(),
            Auth::IdentityToken(_) => RegistryAuth::Anonymous,
        };
        let http = http_client(&options.deadlines).map_err(|e| ToolchainError::Registry {
            image: image.to_string(),
            action: "creating the HTTP client".to_string(),
            source: Box::new(OciDistributionError::RequestError(e)),
        })?;
        Ok(Registry {
            http,
            client: std::sync::OnceLock::new(),
            auth,
            resolved,
            plain_http,
            insecure_registries: options.insecure_registries.clone(),
            retries: options.retries.unwrap_or(4),
            deadlines: options.deadlines,
            operation,
        })
    }

    /// [`ToolchainError::Deadline`]: `deadline` expired while `action` on `image`.
    pub(crate) fn expired(&self, image: &ImageRef, action: &str, deadline: Deadline) -> ToolchainError {
        ToolchainError::Deadline(Box::new(deadline::Expired {
            registry: image.registry().to_string(),
            image: image.to_string(),
            action: action.to_string(),
            deadline,
            deadlines: self.deadlines,
        }))
    }

    /// `work` (requests, retries, backoff), bounded by the overall deadline.
    pub(crate) async fn within<T, E>(
        &self,
        image: &ImageRef,
        action: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        E: From<ToolchainError>,
    {
        match tokio::time::timeout_at(self.operation.deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(self.expired(image, action, Deadline::Overall).into()),
        }
    }

    /// oci-client's client (built on first use).
    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let protocol = if self.plain_http { ClientProtocol::Http } else { ClientProtocol::Https };
            let config = ClientConfig {
                protocol,
                platform_resolver: None,
                // Per connection. The idle deadline is reqwest's read timeout: one timer
                // from a request's start to the answer's headers, then restarted by
                // every byte of the body.
                connect_timeout: Some(self.deadlines.connect),
                read_timeout: Some(self.deadlines.idle),
                user_agent: concat!("reprove/", env!("CARGO_PKG_VERSION")),
                ..ClientConfig::default()
            };
            Client::new(config)
        })
    }

    fn auth_error(&self, image: &ImageRef, reason: impl Into<String>) -> ToolchainError {
        ToolchainError::Auth {
            registry: image.registry().to_string(),
            origin: self.resolved.origin.clone(),
            reason: reason.into(),
        }
    }

    /// `f` until it succeeds, fails for good, or a deadline expires (which is not retried).
    async fn retry<T, F, Fut>(&self, image: &ImageRef, action: &str, f: F) -> Result<T, ToolchainError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        self.within(image, action, self.retry_unbounded(image, action, f)).await
    }

    async fn retry_unbounded<T, F, Fut>(&self, image: &ImageRef, action: &str, mut f: F) -> Result<T, ToolchainError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let mut attempt = 0;
        loop {
            let e = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if let Some(d) = deadline::expired_oci(&e) {
                return Err(self.expired(image, action, d));
            }
            match e {
                e if retryable(&e) && attempt < self.retries => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                OciDistributionError::UnauthorizedError { url } => {
                    return Err(self.auth_error(image, format!("the registry answered 401 Unauthorized to {url}")))
                }
                OciDistributionError::AuthenticationFailure(body) => {
                    return Err(self.auth_error(image, format!("the token server refused them: {}", clip(&body))));
                }
                e => {
                    return Err(ToolchainError::Registry {
                        image: image.to_string(),
                        action: action.to_string(),
                        source: Box::new(e),
                    })
                }
            }
        }
    }

    /// Authenticates for `operation` (a no-op for anonymous registries).
    pub(crate) async fn authenticate(
        &self,
        image: &ImageRef,
        operation: RegistryOperation,
    ) -> Result<(), ToolchainError> {
        self.client_auth(image, operation).await.map(|_| ())
    }

    /// Authenticates for `operation` and returns what a plain HTTP request to the
    /// registry must carry (nothing for anonymous registries).
    ///
    /// A registry on plain HTTP (loopback, `--insecure-registry`) without credentials is
    /// first asked `/v2/` on the plain HTTP client: an answer without a challenge means
    /// nothing to carry, and then neither oci-client's client nor its own `/v2/` probe
    /// is needed (no second connection, no root certificates loaded for it: 2–3 ms, most
    /// of a local fetch). Any other answer goes the usual way. Not over HTTPS: most
    /// registries there answer `/v2/` with a token challenge, and the probe would add a
    /// round trip before oci-client's own, more than the certificates cost.
    pub(crate) async fn http_auth(
        &self,
        image: &ImageRef,
        operation: RegistryOperation,
    ) -> Result<HttpAuth, ToolchainError> {
        if self.plain_http && matches!(self.resolved.auth, Auth::Client(RegistryAuth::Anonymous)) {
            let probe = format!("http://{}/v2/", image.to_oci().resolve_registry());
            match self.http.get(&probe).send().await {
                Ok(mut r) if r.status().is_success() && !r.headers().contains_key(http::header::WWW_AUTHENTICATE) => {
                    // Read its (small) body, so that the connection goes back to the pool.
                    let mut read = 0;
                    while let Ok(Some(chunk)) = r.chunk().await {
                        read += chunk.len();
                        if read > 64 << 10 {
                            break;
                        }
                    }
                    return Ok(HttpAuth::None);
                }
                // A registry that does not answer in time is not asked twice.
                Err(e) if e.is_timeout() => return Err(self.request_error(image, "probing the registry", e)),
                _ => {}
            }
        }
        self.client_auth(image, operation).await
    }

    /// oci-client's authentication for `operation`, and what a plain HTTP request must carry.
    async fn client_auth(&self, image: &ImageRef, operation: RegistryOperation) -> Result<HttpAuth, ToolchainError> {
        let r = image.to_oci();
        let action = match operation {
            RegistryOperation::Pull => "authenticating to pull",
            RegistryOperation::Push => "authenticating to push",
        };
        let auth = match &self.resolved.auth {
            Auth::IdentityToken(token) => match self.exchange_identity_token(image, operation, token).await? {
                Some(access) => RegistryAuth::Bearer(access),
                None => RegistryAuth::Anonymous,
            },
            Auth::Client(a) => a.clone(),
        };
        let token = self.retry(image, action, || self.client().auth(&r, &auth, operation)).await?;
        Ok(match (token, auth) {
            (Some(token), _) | (None, RegistryAuth::Bearer(token)) => HttpAuth::Bearer(token),
            (None, RegistryAuth::Basic(user, password)) => HttpAuth::Basic(user, password),
            (None, RegistryAuth::Anonymous) => HttpAuth::None,
        })
    }

    /// `http[s]://registry/v2/repository`: the base of the repository's URLs.
    pub(crate) fn repository_url(&self, image: &ImageRef) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", image.to_oci().resolve_registry(), image.repository())
    }

    /// The plain HTTP client, for requests oci-client does not make (the referrers API,
    /// bounded reads).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How many times a transient failure is retried.
    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }

    /// [`ToolchainError::Auth`] for `image`, naming the credentials used.
    pub(crate) fn refused(&self, image: &ImageRef, reason: impl Into<String>) -> ToolchainError {
        self.auth_error(image, reason)
    }

    /// A transport error of a plain HTTP request as [`ToolchainError::Registry`].
    pub(crate) fn transport_error(&self, image: &ImageRef, action: &str, e: reqwest::Error) -> ToolchainError {
        self.request_error(image, action, e)
    }

    /// Docker's OAuth2 refresh-token grant: asks the registry for its token
    /// server (the `WWW-Authenticate: Bearer` challenge of `/v2/`), then POSTs
    /// `grant_type=refresh_token` with the identity token, the service and the
    /// repository scope, and returns the access token. `None` when the
    /// registry needs no authentication. The refresh token is sent over plain
    /// HTTP only to a loopback token server or one named in `--insecure-registry`.
    async fn exchange_identity_token(
        &self,
        image: &ImageRef,
        operation: RegistryOperation,
        token: &str,
    ) -> Result<Option<String>, ToolchainError> {
        let oci = image.to_oci();
        let scheme = if self.plain_http { "http" } else { "https" };
        let probe = format!("{scheme}://{}/v2/", oci.resolve_registry());
        let http = &self.http;
        let response =
            self.retry_http(image, "asking the registry for its token server", || http.get(&probe).send()).await?;
        if response.status().is_success() {
            return Ok(None);
        }
        let challenge = response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(auth::parse_bearer_challenge)
            .ok_or_else(|| {
                self.auth_error(
                    image,
                    format!(
                        "an identity token needs a token server, but {probe} answered {} without a Bearer challenge",
                        response.status()
                    ),
                )
            })?;
        let realm = reqwest::Url::parse(&challenge.realm)
            .map_err(|e| self.auth_error(image, format!("token server URL {:?}: {e}", challenge.realm)))?;
        let realm_host = realm.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
        let loopback = realm_host == "localhost" || realm_host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let listed = self.insecure_registries.iter().any(|r| super::reference::registry_host(r) == realm_host);
        match realm.scheme() {
            "https" => {}
            "http" if loopback || listed => {}
            other => {
                return Err(self
                    .auth_error(image, format!("refusing to send the identity token to {realm} ({other}, not https)")))
            }
        }
        let scope = match operation {
            RegistryOperation::Pull => format!("repository:{}:pull", image.repository()),
            RegistryOperation::Push => format!("repository:{}:pull,push", image.repository()),
        };
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "reprove")];
        if let Some(service) = &challenge.service {
            form.push(("service", service));
        }
        form.push(("scope", &scope));
        let body = auth::form_encode(&form);
        let response = self
            .retry_http(image, "exchanging the identity token", || {
                http.post(realm.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
            })
            .await?;
        let status = response.status();
        let text = self
            .within(image, "reading the token", async {
                response.text().await.map_err(|e| self.request_error(image, "reading the token", e))
            })
            .await?;
        if !status.is_success() {
            return Err(self
                .auth_error(image, format!("the token server refused the identity token: {status}: {}", clip(&text))));
        }
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.auth_error(image, format!("the token server's answer is not JSON: {e}")))?;
        ["access_token", "token"]
            .iter()
            .find_map(|k| doc.get(*k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
            .map(|t| Some(t.to_string()))
            .ok_or_else(|| self.auth_error(image, "the token server's answer has no access_token"))
    }

    /// A transport error: [`ToolchainError::Deadline`] when it is a connect or idle
    /// deadline that expired, else [`ToolchainError::Registry`].
    fn request_error(&self, image: &ImageRef, action: &str, e: reqwest::Error) -> ToolchainError {
        if let Some(d) = deadline::expired(&e) {
            return self.expired(image, action, d);
        }
        ToolchainError::Registry {
            image: image.to_string(),
            action: action.to_string(),
            source: Box::new(OciDistributionError::RequestError(e)),
        }
    }

    /// A plain reqwest request with the retry policy of [`Registry::retry`] (5xx and
    /// broken connections; not an expired deadline), bounded by the overall deadline.
    pub(crate) async fn retry_http<F, Fut>(
        &self,
        image: &ImageRef,
        action: &str,
        mut f: F,
    ) -> Result<reqwest::Response, ToolchainError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<reqwest::Response, reqwest::Error>>,
    {
        self.within(image, action, async {
            let mut attempt = 0;
            loop {
                let r = f().await;
                let transient = match &r {
                    Ok(resp) => resp.status().is_server_error(),
                    Err(e) => deadline::expired(e).is_none() && (e.is_connect() || e.is_request() || e.is_body()),
                };
                if transient && attempt < self.retries {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                return r.map_err(|e| self.request_error(image, action, e));
            }
        })
        .await
    }

    /// Fetches the manifest (or index) `image` names; checks its digest when the reference has one.
    pub(crate) async fn manifest_raw(&self, image: &ImageRef) -> Result<(Bytes, Digest), ToolchainError> {
        let r = image.to_oci();
        let (bytes, _) = self
            .retry(image, "fetching the manifest", || self.client().pull_manifest_raw(&r, &self.auth, ACCEPT))
            .await
            .map_err(|e| match e {
                // oci-client compares the body with the reference digest itself; say it our way.
                ToolchainError::Registry { source, .. } if matches!(*source, OciDistributionError::DigestError(_)) => {
                    ToolchainError::DigestMismatch {
                        image: image.to_string(),
                        what: "manifest".to_string(),
                        expected: image.digest().map(ToString::to_string).unwrap_or_default(),
                        actual: source.to_string(),
                    }
                }
                e => e,
            })?;
        if bytes.len() as u64 > MAX_SMALL_BLOB {
            return Err(ToolchainError::Manifest {
                image: image.to_string(),
                reason: "manifest larger than 8 MiB".into(),
            });
        }
        let actual = Digest::of(&bytes);
        if let Some(expected) = image.digest() {
            if *expected != actual {
                return Err(ToolchainError::DigestMismatch {
                    image: image.to_string(),
                    what: "manifest".to_string(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((bytes, actual))
    }

    /// Resolves `image` to one image manifest, selecting `platform` from an index.
    pub(crate) async fn resolve(&self, image: &ImageRef, platform: &Platform) -> Result<Resolved, ToolchainError> {
        self.authenticate(image, RegistryOperation::Pull).await?;
        let (bytes, digest) = self.manifest_raw(image).await?;
        let bad = |reason: String| ToolchainError::Manifest { image: image.to_string(), reason };
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        if doc.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
            return Err(bad("only schemaVersion 2 manifests are supported (not Docker schema 1)".into()));
        }
        let media_type = doc.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
        let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST || doc.get("manifests").is_some();
        if !is_index {
            let manifest = parse_manifest(image, &bytes)?;
            return Ok(Resolved {
                index_digest: None,
                manifest_digest: digest,
                manifest_bytes: bytes,
                manifest,
                platform: None,
            });
        }
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad image index: {e}")))?;
        let mut available = Vec::new();
        let mut chosen = None;
        for m in index.manifests() {
            let Some(p) = m.platform() else { continue };
            let (os, arch, variant) = (p.os().to_string(), p.architecture().to_string(), p.variant().clone());
            available.push(match &variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            });
            if chosen.is_none() && platform.matches(&os, &arch, variant.as_deref()) {
                chosen = Some((m.digest().to_string(), Platform { os, architecture: arch, variant }));
            }
        }
        let Some((child_digest, chosen_platform)) = chosen else {
            return Err(ToolchainError::NoMatchingPlatform {
                image: image.to_string(),
                platform: platform.to_string(),
                available: if available.is_empty() { "no platforms".into() } else { available.join(", ") },
            });
        };
        let child_digest: Digest = child_digest.parse()?;
        let child = image.with_digest(child_digest.clone());
        let (child_bytes, _) = self.manifest_raw(&child).await?;
        let cdoc: serde_json::Value = serde_json::from_slice(&child_bytes)
            .map_err(|e| bad(format!("manifest {child_digest} is not JSON: {e}")))?;
        if cdoc.get("manifests").is_some() {
            return Err(bad(format!("{child_digest}: nested image indexes are not supported")));
        }
        let manifest = parse_manifest(image, &child_bytes)?;
        Ok(Resolved {
            index_digest: Some(digest),
            manifest_digest: child_digest,
            manifest_bytes: child_bytes,
            manifest,
            platform: Some(chosen_platform),
        })
    }

    /// Fetches a small blob (a config) whole, checking size and digest.
    pub(crate) async fn small_blob(
        &self,
        image: &ImageRef,
        desc: &Descriptor,
        what: &str,
    ) -> Result<Vec<u8>, ToolchainError> {
        if desc.size() > MAX_SMALL_BLOB {
            return Err(ToolchainError::Manifest {
                image: image.to_string(),
                reason: format!("{what} {} is {} bytes, more than 8 MiB", desc.digest(), desc.size()),
            });
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let fetch = self.stream_blob(image, desc, what, tx, None);
        let collect = async {
            let mut out = Vec::new();
            while let Some(chunk) = rx.recv().await {
                if let Ok(b) = chunk {
                    out.extend_from_slice(&b);
                }
            }
            out
        };
        let (r, out) = tokio::join!(fetch, collect);
        r?;
        Ok(out)
    }

    /// Streams the blob `desc` into `tx`, hashing every byte; resumes broken
    /// downloads with range requests. Fails on a size or digest mismatch
    /// (after the last chunk was sent, so the receiver must not trust what it
    /// got until this returns `Ok`). A receiver that hangs up early does not
    /// stop the download: the digest is still checked. Bounded by the overall
    /// deadline; a body that stops for the idle deadline is not resumed.
    pub(crate) async fn stream_blob(
        &self,
        image: &ImageRef,
        desc: &Descriptor,
        what: &str,
        tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
        progress: Option<&dyn Progress>,
    ) -> Result<(), ToolchainError> {
        let action = format!("fetching {what} {}", desc.digest());
        let r = self.within(image, &action, self.stream_blob_unbounded(image, desc, what, tx.clone(), progress)).await;
        if r.is_err() {
            let _ = tx.send(Err(std::io::Error::other("download failed"))).await;
        }
        r
    }

    async fn stream_blob_unbounded(
        &self,
        image: &ImageRef,
        desc: &Descriptor,
        what: &str,
        tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
        progress: Option<&dyn Progress>,
    ) -> Result<(), ToolchainError> {
        let expected: Digest = desc.digest().to_string().parse()?;
        let size = desc.size();
        let r = image.to_oci();
        let od = OciDescriptor { digest: expected.to_string(), size: size as i64, ..OciDescriptor::default() };
        let what_d = format!("{what} {expected}");
        let mut hasher = sha2::Sha256::new();
        let mut got: u64 = 0;
        let mut failures = 0;
        let mut receiving = true;
        loop {
            let response = self
                .retry(image, &format!("fetching {what_d}"), || async {
                    // A first request asks for the whole blob, without a Range header: some
                    // registries refuse an open-ended `bytes=0-` (go-containerregistry's).
                    if got == 0 {
                        self.client().pull_blob_stream(&r, &od).await.map(BlobResponse::Full)
                    } else {
                        self.client().pull_blob_stream_partial(&r, &od, got, None).await
                    }
                })
                .await?;
            let (mut stream, mut skip) = match response {
                BlobResponse::Full(s) => (s.stream, got),
                BlobResponse::Partial(s) => (s.stream, 0),
            };
            let mut broken = None;
            while let Some(chunk) = stream.next().await {
                let mut chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                };
                if skip > 0 {
                    let n = skip.min(chunk.len() as u64);
                    let _ = chunk.split_to(n as usize);
                    skip -= n;
                    if chunk.is_empty() {
                        continue;
                    }
                }
                got += chunk.len() as u64;
                if got > size {
                    return Err(ToolchainError::SizeMismatch {
                        image: image.to_string(),
                        what: what_d,
                        expected: size,
                        actual: got,
                    });
                }
                hasher.update(&chunk);
                if let Some(p) = progress {
                    p.advance(chunk.len() as u64);
                }
                // When the receiver gave up (a bad layer), keep hashing: a digest
                // mismatch explains a bad layer better than the unpack error does.
                if receiving && tx.send(Ok(chunk)).await.is_err() {
                    receiving = false;
                }
            }
            if got == size {
                break;
            }
            if let Some(d) = broken.as_ref().and_then(|e| deadline::expired(e)) {
                return Err(self.expired(image, &format!("fetching {what_d}"), d));
            }
            failures += 1;
            if failures > self.retries {
                let _ = tx.send(Err(std::io::Error::other("download failed"))).await;
                return Err(match broken {
                    Some(e) => ToolchainError::Registry {
                        image: image.to_string(),
                        action: format!("fetching {what_d}"),
                        source: Box::new(OciDistributionError::IoError(e)),
                    },
                    None => ToolchainError::SizeMismatch {
                        image: image.to_string(),
                        what: what_d,
                        expected: size,
                        actual: got,
                    },
                });
            }
            tokio::time::sleep(backoff(failures)).await;
        }
        let actual = Digest::from_hasher(hasher);
        if actual != expected {
            let _ = tx.send(Err(std::io::Error::other("digest mismatch"))).await;
            return Err(ToolchainError::DigestMismatch {
                image: image.to_string(),
                what: what_d,
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Uploads a blob unless the registry already has it.
    pub(crate) async fn push_blob(&self, image: &ImageRef, digest: &Digest, data: Bytes) -> Result<(), ToolchainError> {
        let r = image.to_oci();
        let d = digest.to_string();
        let exists = self.retry(image, &format!("checking blob {d}"), || self.client().blob_exists(&r, &d)).await?;
        if !exists {
            self.retry(image, &format!("pushing blob {d}"), || self.client().push_blob(&r, data.clone(), &d)).await?;
        }
        Ok(())
    }

    /// Uploads a manifest under the reference's tag (or digest). Our own `PUT`, not
    /// oci-client's: a registry may answer 201 Created without a `Location` (the
    /// distribution spec lets clients do without it; go-containerregistry's and ECR's
    /// leave it out for a push by digest), and oci-client panics on that for a
    /// reference without a tag.
    pub(crate) async fn push_manifest(
        &self,
        image: &ImageRef,
        media_type: &str,
        body: Bytes,
    ) -> Result<(), ToolchainError> {
        let target = match (image.digest(), image.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let url = format!("{}/manifests/{target}", self.repository_url(image));
        let auth = self.http_auth(image, RegistryOperation::Push).await?;
        let action = format!("pushing the manifest {target}");
        let response = self
            .retry_http(image, &action, || {
                auth.apply(self.http.put(&url).header(http::header::CONTENT_TYPE, media_type).body(body.clone())).send()
            })
            .await?;
        let status = response.status();
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(self.refused(image, format!("the registry answered {status} to PUT {url}")));
        }
        if status.is_success() {
            return Ok(());
        }
        let code = status.as_u16();
        let message = response.text().await.unwrap_or_default();
        Err(ToolchainError::Registry {
            image: image.to_string(),
            action,
            source: Box::new(OciDistributionError::ServerError { url, code, message: clip(&message).to_string() }),
        })
    }
}

/// An error body, trimmed and cut to 300 bytes (at a character boundary).
fn clip(text: &str) -> &str {
    let text = text.trim();
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn parse_manifest(image: &ImageRef, bytes: &[u8]) -> Result<ImageManifest, ToolchainError> {
    let m: ImageManifest = serde_json::from_slice(bytes).map_err(|e| ToolchainError::Manifest {
        image: image.to_string(),
        reason: format!("bad image manifest: {e}"),
    })?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn plain_http_only_for_loopback_or_listed_registries() {
        let none = RegistryOptions::default();
        assert!(insecure(&image("127.0.0.1:5000/a"), &none));
        assert!(insecure(&image("127.8.9.10:5000/a"), &none));
        assert!(insecure(&image("localhost:5000/a"), &none));
        assert!(insecure(&image("[::1]:5000/a"), &none));
        assert!(!insecure(&image("registry.example:5000/a"), &none));
        assert!(!insecure(&image("10.0.0.1:5000/a"), &none));
        assert!(!insecure(&image("golang"), &none));
        let listed =
            RegistryOptions { insecure_registries: vec!["registry.example:5000".into()], ..RegistryOptions::default() };
        assert!(insecure(&image("registry.example:5000/a"), &listed));
        assert!(!insecure(&image("registry.example:5001/a"), &listed));
    }

    #[test]
    fn retries_only_transient_errors() {
        let server = |code| OciDistributionError::ServerError { code, url: String::new(), message: String::new() };
        assert!(retryable(&server(500)));
        assert!(retryable(&server(503)));
        assert!(!retryable(&server(404)));
        assert!(!retryable(&OciDistributionError::UnauthorizedError { url: String::new() }));
        assert!(backoff(0) < backoff(3));
    }
}
