//! Artifacts attached to an image digest: OCI 1.1 referrers (the referrers API,
//! with the referrers tag schema as fallback) and cosign's legacy tagged images
//! (`sha256-<hex>.att`).
//!
//! What it is: the registry side of attaching and discovering artifacts. A
//! [`Repository`] pushes an artifact manifest whose `subject` is an image
//! ([`Repository::push_referrer`]), lists the referrers of a digest
//! ([`Repository::referrers`]: `GET /v2/<name>/referrers/<digest>` first; a
//! registry that answers 404 has no referrers API, and then the image index
//! tagged `sha256-<hex>` is read, and updated on push), reads and appends to the
//! legacy tagged image ([`Repository::legacy`], [`Repository::push_legacy`]),
//! and fetches manifests and blobs with their digest checked.
//!
//! What it isn't: it knows nothing of attestations (which media types, which
//! annotations): the `attach` crate maps attestations to artifacts.
//!
//! **Bounded.** Every document is read with a size bound, stopping the
//! download at the bound, and every fetch counts against a [`Budget`] of
//! bytes; a document over its bound, a referrers index that is not JSON, a blob
//! whose digest or size does not match are errors ([`ReferrersError`]), never
//! a partial result.
//!
//! **Nothing half-written.** A push uploads the blobs first, then the manifest
//! (by digest), and updates the tag (the referrers tag schema's index, the
//! legacy image's tag) last, after reading and checking what it replaces: an
//! existing index that cannot be read is an error, not overwritten.
//!
//! **Cached.** Content named by its digest (the image manifest, referrer manifests,
//! attestation blobs) is fetched once per [`Cache`] and checked again when read from
//! disk; what can change (the referrers list, legacy tags) is asked every time
//! ([`cache`]).

pub mod cache;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use oci_client::RegistryOperation;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::registry::{HttpAuth, Registry, OCI_INDEX, OCI_MANIFEST};
use crate::{Digest, ImageRef, RegistryOptions, ToolchainError};

pub use cache::{Cache, DEFAULT_MEMORY_BYTES, MAX_ENTRY_BYTES};

/// The empty JSON object `{}` as a blob: OCI 1.1's empty config.
pub const EMPTY_JSON: &[u8] = b"{}";
/// The media type of [`EMPTY_JSON`] as an artifact's config.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The config media type of an OCI image (cosign's legacy images use it).
pub const MEDIA_TYPE_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = OCI_MANIFEST;
/// An OCI image index.
pub const MEDIA_TYPE_INDEX: &str = OCI_INDEX;

/// The largest manifest or index read (the OCI distribution spec's suggested limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The default of [`Limits::max_referrers`].
pub const DEFAULT_MAX_REFERRERS: usize = 100;
/// The default of [`Limits::max_bytes`]: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Errors of referrers and legacy artifacts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferrersError {
    /// The registry refused or failed a request, or refused the credentials.
    #[error(transparent)]
    Registry(#[from] ToolchainError),
    /// The image digest is not in the repository.
    #[error("image {image} does not exist in the registry")]
    ImageNotFound {
        /// The image, with its digest.
        image: String,
    },
    /// A document or blob is larger than its bound.
    #[error("{what} of {image} is larger than {limit} bytes; refusing it")]
    TooLarge {
        /// The repository.
        image: String,
        /// Which document or blob.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// Fetching would exceed the byte budget.
    #[error(
        "the artifacts of {image} are more than {limit} bytes together (at {what}); raise {setting} to fetch them"
    )]
    BudgetExceeded {
        /// The image.
        image: String,
        /// The document or blob that would exceed it.
        what: String,
        /// The budget.
        limit: u64,
        /// The setting that raises it.
        setting: stdx::setting::Setting,
    },
    /// A manifest, index or blob is not what it must be.
    #[error("{what} of {image} is malformed: {reason}")]
    Malformed {
        /// The repository.
        image: String,
        /// Which document.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest or blob does not match its digest or size.
    #[error("{what} of {image} does not match its descriptor: expected {expected}, got {actual}")]
    Mismatch {
        /// The repository.
        image: String,
        /// Which document or blob.
        what: String,
        /// The digest (or size) it should have.
        expected: String,
        /// The digest (or size) it has.
        actual: String,
    },
    /// The registry answered a request with an unexpected status.
    #[error("{action} at {image}: the registry answered {status}: {body}")]
    Status {
        /// The repository.
        image: String,
        /// What reprove was doing.
        action: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
}

impl ReferrersError {
    /// Whether the error is the user's input (exit 2) rather than the registry's or
    /// the content's (exit 3).
    pub fn is_input(&self) -> bool {
        match self {
            ReferrersError::Registry(e) => e.is_input(),
            ReferrersError::ImageNotFound { .. } => true,
            _ => false,
        }
    }
}

/// Bounds of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many referrers (of the kinds the caller fetches) are fetched.
    pub max_referrers: usize,
    /// At most this many bytes of manifests and blobs are fetched in all.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_referrers: DEFAULT_MAX_REFERRERS, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// The bytes a fetch may still read; every manifest and blob is charged before it is read.
/// Shared by the requests of one fetch, also when they run concurrently.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    left: std::sync::atomic::AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Budget {
        Budget { limit, left: std::sync::atomic::AtomicU64::new(limit) }
    }

    /// Bytes left.
    pub fn left(&self) -> u64 {
        self.left.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn charge(&self, image: &ImageRef, what: &str, bytes: u64) -> Result<(), ReferrersError> {
        use std::sync::atomic::Ordering;
        self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes)).map_err(|_| {
            ReferrersError::BudgetExceeded {
                image: image.to_string(),
                what: what.to_string(),
                limit: self.limit,
                setting: stdx::setting::Setting::MaxAttestationBytes,
            }
        })?;
        Ok(())
    }
}

/// An OCI content descriptor, as manifests and indexes hold them (fields in the order
/// go-containerregistry writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The media type of the content.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its digest (`sha256:…`; other algorithms are refused when fetched).
    pub digest: String,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The artifact type, in an index entry or a config descriptor.
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor of `data`.
    pub fn of(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            size: data.len() as u64,
            digest: Digest::of(data).to_string(),
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }

    /// The digest, parsed.
    pub fn parsed_digest(&self) -> Result<Digest, ToolchainError> {
        self.digest.parse()
    }
}

/// An OCI image manifest, also as an artifact manifest (OCI 1.1: `artifactType`, `subject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`MEDIA_TYPE_MANIFEST`].
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// The artifact type.
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Manifest {
    /// The artifact type as a referrers index reports it: `artifactType`, else the
    /// config's media type.
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type.as_deref().unwrap_or(&self.config.media_type)
    }
}

/// An OCI image index (a referrers index is one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`MEDIA_TYPE_INDEX`].
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Whether an image digest names an index or a single manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// An image index (a multi-platform image).
    Index,
    /// An image manifest (one platform).
    Manifest,
}

/// The image artifacts attach to, as the registry has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The image, with its digest.
    pub image: ImageRef,
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Index or manifest.
    pub kind: SubjectKind,
    /// The platforms an index lists (`os/arch[/variant]`); empty for a manifest.
    pub platforms: Vec<String>,
}

impl Subject {
    /// Its descriptor, as an artifact's `subject`.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            size: self.size,
            digest: self.digest.to_string(),
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }
}

/// How the referrers of a digest were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersPath {
    /// The registry's referrers API.
    Api,
    /// The referrers tag schema (`sha256-<hex>`): the registry has no referrers API.
    TagSchema,
}

impl ReferrersPath {
    /// `api` or `tag-schema`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrersPath::Api => "api",
            ReferrersPath::TagSchema => "tag-schema",
        }
    }
}

/// The referrers of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerList {
    /// How they were found.
    pub path: ReferrersPath,
    /// The index entries, as the registry listed them.
    pub referrers: Vec<Descriptor>,
}

/// A blob to push, with the descriptor annotations it gets in its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub data: Bytes,
    /// The annotations of its descriptor.
    pub annotations: BTreeMap<String, String>,
}

impl Blob {
    /// The descriptor of this blob in a manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor { annotations: self.annotations.clone(), ..Descriptor::of(&self.media_type, &self.data) }
    }
}

/// An artifact to attach to a subject as an OCI 1.1 referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferrer {
    /// The manifest's `artifactType` (also set on its config descriptor, as cosign does).
    pub artifact_type: String,
    /// The layers.
    pub layers: Vec<Blob>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

impl NewReferrer {
    /// The manifest for `subject`: an empty config, the layers, the subject. The
    /// same artifact and subject always give the same bytes.
    pub fn manifest(&self, subject: &Subject) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            config: Descriptor {
                artifact_type: Some(self.artifact_type.clone()),
                ..Descriptor::of(MEDIA_TYPE_EMPTY, EMPTY_JSON)
            },
            layers: self.layers.iter().map(Blob::descriptor).collect(),
            annotations: self.annotations.clone(),
            subject: Some(subject.descriptor()),
            artifact_type: Some(self.artifact_type.clone()),
        }
    }
}

/// What [`Repository::push_referrer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedReferrer {
    /// The artifact manifest's digest.
    pub digest: Digest,
    /// How the subject's referrers list it.
    pub path: ReferrersPath,
    /// False when the same artifact was already a referrer of the subject: nothing was added.
    pub added: bool,
}

/// A legacy tagged image (`sha256-<hex>.att`) as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyImage {
    /// Its tag.
    pub tag: String,
    /// Its manifest's digest.
    pub digest: Digest,
    /// Its manifest.
    pub manifest: Manifest,
}

/// What [`Repository::push_legacy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedLegacy {
    /// The tag.
    pub tag: String,
    /// The digest of the image's manifest after the push.
    pub digest: Digest,
    /// How many layers were added.
    pub added: usize,
    /// How many of the layers given were there already.
    pub present: usize,
}

/// A repository of a registry, for artifacts attached to its images.
pub struct Repository {
    registry: Registry,
    /// The repository (its tag and digest are not used).
    image: ImageRef,
    pull: OnceCell<HttpAuth>,
    push: OnceCell<HttpAuth>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository").field("image", &self.image.name()).finish_non_exhaustive()
    }
}

/// The tag of the referrers tag schema for `digest`: `sha256-<hex>`.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// The tag of cosign's legacy image for `digest` with `suffix` (`att`, `sig`): `sha256-<hex>.att`.
pub fn legacy_tag(digest: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", digest.hex())
}

/// The target of a `Link` header's `rel="next"` entry.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let rel_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        rel_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// A query value with everything but unreserved characters percent-encoded.
fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The start of an error answer's body (at most 4 KiB read), for messages.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut answer = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        answer.extend_from_slice(&chunk);
        if answer.len() > 4096 {
            break;
        }
    }
    excerpt(&answer)
}

/// A body cut to 300 bytes, at a character boundary, for messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl Repository {
    /// A client for the repository of `image` (its tag or digest is ignored), with a
    /// cache of its own in memory ([`Cache::default`]).
    pub fn new(image: &ImageRef, options: &RegistryOptions) -> Result<Repository, ToolchainError> {
        Ok(Repository {
            registry: Registry::new(image, options)?,
            image: image.clone(),
            pull: OnceCell::new(),
            push: OnceCell::new(),
            cache: Arc::new(Cache::default()),
        })
    }

    /// The same client using `cache` (shared with other clients, or kept in a directory).
    pub fn with_cache(self, cache: Arc<Cache>) -> Repository {
        Repository { cache, ..self }
    }

    /// Its cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The repository, as `registry/name`.
    pub fn name(&self) -> String {
        self.image.name()
    }

    fn at(&self, digest: &Digest) -> ImageRef {
        self.image.with_digest(digest.clone())
    }

    async fn push_auth(&self) -> Result<&HttpAuth, ReferrersError> {
        Ok(self.push.get_or_try_init(|| self.registry.http_auth(&self.image, RegistryOperation::Push)).await?)
    }

    async fn pull_auth(&self) -> Result<&HttpAuth, ReferrersError> {
        Ok(self.pull.get_or_try_init(|| self.registry.http_auth(&self.image, RegistryOperation::Pull)).await?)
    }

    /// `GET` of `url` (below the repository), reading at most `limit` bytes; `None` on 404.
    async fn get(
        &self,
        path: &str,
        accept: &str,
        limit: u64,
        what: &str,
    ) -> Result<Option<(Bytes, Option<String>)>, ReferrersError> {
        let url = format!("{}/{path}", self.registry.repository_url(&self.image));
        let auth = self.pull_auth().await?;
        let action = format!("fetching {what}");
        self.registry.within(&self.image, &action, self.get_unbounded(&url, auth, accept, limit, what, &action)).await
    }

    async fn get_unbounded(
        &self,
        url: &str,
        auth: &HttpAuth,
        accept: &str,
        limit: u64,
        what: &str,
        action: &str,
    ) -> Result<Option<(Bytes, Option<String>)>, ReferrersError> {
        let response = self
            .send(|| auth.apply(self.registry.http().get(url).header(http::header::ACCEPT, accept)), action)
            .await?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(self.registry.refused(&self.image, format!("the registry answered {status} to {url}")).into());
        }
        if !status.is_success() {
            return Err(ReferrersError::Status {
                image: self.image.name(),
                action: action.to_string(),
                status: status.as_u16(),
                body: error_body(response).await,
            });
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let too_large = || ReferrersError::TooLarge { image: self.image.name(), what: what.to_string(), limit };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.registry.transport_error(&self.image, action, e).into()),
            }
        }
        Ok(Some((Bytes::from(body), content_type)))
    }

    /// Sends the request `build` makes, again after a connection failure or a 5xx answer,
    /// up to the registry's retries, within the command's overall deadline; the last
    /// answer, whatever its status. A connect or idle deadline that expired is final
    /// (`transport_error` says which).
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        action: &str,
    ) -> Result<reqwest::Response, ReferrersError> {
        self.registry.within(&self.image, action, self.send_unbounded(build, action)).await
    }

    async fn send_unbounded(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        action: &str,
    ) -> Result<reqwest::Response, ReferrersError> {
        let mut attempt = 0;
        loop {
            match build().send().await {
                Ok(r) if r.status().is_server_error() && attempt < self.registry.retries() => {}
                Ok(r) => return Ok(r),
                Err(e) if attempt < self.registry.retries() && e.is_connect() && !e.is_timeout() => {}
                Err(e) => return Err(self.registry.transport_error(&self.image, action, e).into()),
            }
            attempt += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(6))).await;
        }
    }

    /// The image `digest` names: index or manifest, media type and size. An image the
    /// repository does not have is [`ReferrersError::ImageNotFound`]. Its manifest is
    /// cached (when it names its media type).
    pub async fn subject(&self, digest: &Digest) -> Result<Subject, ReferrersError> {
        if let Some(bytes) = self.cache.get(digest) {
            if let Ok(subject) = self.parse_subject(digest, &bytes, None) {
                return Ok(subject);
            }
        }
        let what = format!("manifest {digest}");
        let Some((bytes, content_type)) =
            self.get(&format!("manifests/{digest}"), ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, &what).await?
        else {
            return Err(ReferrersError::ImageNotFound { image: self.at(digest).to_string() });
        };
        self.check_digest(&what, digest, &bytes)?;
        // Only a manifest that says its media type itself is kept: the answer's header is not.
        match self.parse_subject(digest, &bytes, None) {
            Ok(subject) => {
                self.cache.put(digest, &bytes);
                Ok(subject)
            }
            Err(_) => self.parse_subject(digest, &bytes, content_type),
        }
    }

    fn parse_subject(
        &self,
        digest: &Digest,
        bytes: &[u8],
        content_type: Option<String>,
    ) -> Result<Subject, ReferrersError> {
        let image = self.at(digest);
        let what = format!("manifest {digest}");
        let malformed =
            |reason: String| ReferrersError::Malformed { image: image.to_string(), what: what.clone(), reason };
        let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let media_type = doc
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or(content_type)
            .ok_or_else(|| malformed("no media type".to_string()))?;
        let is_index = doc.get("manifests").is_some();
        let platforms = doc
            .get("manifests")
            .and_then(|m| m.as_array())
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| {
                        let p = e.get("platform")?;
                        let os = p.get("os")?.as_str()?;
                        let arch = p.get("architecture")?.as_str()?;
                        Some(match p.get("variant").and_then(|v| v.as_str()) {
                            Some(v) => format!("{os}/{arch}/{v}"),
                            None => format!("{os}/{arch}"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Subject {
            image,
            digest: digest.clone(),
            media_type,
            size: bytes.len() as u64,
            kind: if is_index { SubjectKind::Index } else { SubjectKind::Manifest },
            platforms,
        })
    }

    /// The digest `tag` names in the repository now: the SHA-256 of the manifest (or
    /// index) the registry serves for it, fetched bounded as [`Repository::subject`]
    /// fetches by digest. A tag the repository does not have is
    /// [`ReferrersError::ImageNotFound`]. Tags move: the digest is what to pin.
    pub async fn resolve_tag(&self, tag: &str) -> Result<Digest, ReferrersError> {
        let image = self.image.with_tag(tag)?;
        let what = format!("manifest {tag}");
        let Some((bytes, _)) =
            self.get(&format!("manifests/{tag}"), ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, &what).await?
        else {
            return Err(ReferrersError::ImageNotFound { image: image.to_string() });
        };
        Ok(Digest::of(&bytes))
    }

    /// The repository's tags (`GET /v2/<name>/tags/list`), following the registry's
    /// pages (the `Link: <…>; rel="next"` header, or `last=` after a full page) up to
    /// `max` tags; whether the list was cut there. Each page is read with a bound; a link
    /// to another host or repository is not followed. A repository the registry does not
    /// know has no tags.
    pub async fn tags(&self, max: usize) -> Result<(Vec<String>, bool), ReferrersError> {
        self.tags_paged(max, 1000).await
    }

    /// [`Repository::tags`], asking for pages of `page` tags.
    pub async fn tags_paged(&self, max: usize, page: usize) -> Result<(Vec<String>, bool), ReferrersError> {
        let page = page.max(1);
        let base = self.registry.repository_url(&self.image);
        let origin = base.find("/v2/").map_or(base.as_str(), |i| &base[..i]).to_string();
        let mut url = format!("{base}/tags/list?n={page}");
        let mut tags: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // A page adds one tag at least, or the listing stops: no loop on a bad registry.
        loop {
            let auth = self.pull_auth().await?;
            let action = "listing the tags".to_string();
            let answer = self
                .registry
                .within(&self.image, &action, self.get_page(&url, auth, MAX_MANIFEST_BYTES, &action))
                .await?;
            let Some((body, link)) = answer else { return Ok((tags, false)) };
            #[derive(Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let list: TagList = serde_json::from_slice(&body).map_err(|e| ReferrersError::Malformed {
                image: self.image.name(),
                what: "the tag list".into(),
                reason: format!("not JSON: {e}"),
            })?;
            let page_tags = list.tags.unwrap_or_default();
            let before = tags.len();
            for t in &page_tags {
                if seen.insert(t.clone()) {
                    if tags.len() == max {
                        return Ok((tags, true));
                    }
                    tags.push(t.clone());
                }
            }
            let next = match link.as_deref().and_then(next_link) {
                Some(next) if next.starts_with('/') => Some(format!("{origin}{next}")),
                Some(next) if next.starts_with(&format!("{origin}/")) => Some(next),
                Some(_) => None,
                None if page_tags.len() >= page => {
                    page_tags.last().map(|last| format!("{base}/tags/list?n={page}&last={}", percent_encode(last)))
                }
                None => None,
            };
            let next = next.filter(|n| n.starts_with(&format!("{base}/tags/list")));
            match next {
                Some(n) if tags.len() > before => url = n,
                _ => return Ok((tags, false)),
            }
        }
    }

    /// One page of a list: its body (bounded) and `Link` header; `None` on 404.
    async fn get_page(
        &self,
        url: &str,
        auth: &HttpAuth,
        limit: u64,
        action: &str,
    ) -> Result<Option<(Bytes, Option<String>)>, ReferrersError> {
        let response = self.send(|| auth.apply(self.registry.http().get(url)), action).await?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(self.registry.refused(&self.image, format!("the registry answered {status} to {url}")).into());
        }
        if !status.is_success() {
            return Err(ReferrersError::Status {
                image: self.image.name(),
                action: action.to_string(),
                status: status.as_u16(),
                body: error_body(response).await,
            });
        }
        let link = response.headers().get(http::header::LINK).and_then(|v| v.to_str().ok()).map(str::to_string);
        let too_large = || ReferrersError::TooLarge { image: self.image.name(), what: "the tag list".into(), limit };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.registry.transport_error(&self.image, action, e).into()),
            }
        }
        Ok(Some((Bytes::from(body), link)))
    }

    fn check_digest(&self, what: &str, expected: &Digest, bytes: &[u8]) -> Result<(), ReferrersError> {
        let actual = Digest::of(bytes);
        if actual != *expected {
            return Err(ReferrersError::Mismatch {
                image: self.image.name(),
                what: what.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    fn parse_index(&self, what: &str, bytes: &[u8]) -> Result<Index, ReferrersError> {
        let malformed =
            |reason: String| ReferrersError::Malformed { image: self.image.name(), what: what.to_string(), reason };
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("not a JSON image index: {e}")))?;
        if index.schema_version != 2 {
            return Err(malformed(format!("schemaVersion {}, expected 2", index.schema_version)));
        }
        Ok(index)
    }

    /// The referrers of `digest`: from the referrers API, or, when the registry has
    /// none (it answers 404), from the index tagged `sha256-<hex>` (none when that tag
    /// does not exist). The index is charged to `budget`.
    ///
    /// A registry the cache knows to serve the API is asked the API only; any other is
    /// asked the API and the tag at once, so that a registry without the API costs one
    /// round trip, not two (the tag's answer is dropped when the API answers).
    pub async fn referrers(&self, digest: &Digest, budget: &Budget) -> Result<ReferrerList, ReferrersError> {
        let what = format!("the referrers index of {digest}");
        let tag = referrers_tag(digest);
        let tag_what = format!("the referrers index tagged {tag}");
        let (api_path, tag_path) = (format!("referrers/{digest}"), format!("manifests/{tag}"));
        let api_request = self.get(&api_path, MEDIA_TYPE_INDEX, MAX_MANIFEST_BYTES, &what);
        let tag_request = || self.get(&tag_path, ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, &tag_what);
        let host = self.image.registry();
        let (api, by_tag) = if self.cache.has_api(host) {
            (api_request.await?, None)
        } else {
            let (api, by_tag) = futures_util::future::join(api_request, tag_request()).await;
            (api?, Some(by_tag))
        };
        self.cache.set_api(host, api.is_some());
        let (path, bytes) = match api {
            Some((bytes, _)) => (ReferrersPath::Api, Some(bytes)),
            None => {
                let fetched = match by_tag {
                    Some(fetched) => fetched?,
                    // Remembered for the API, but it answered 404: the tag after all.
                    None => tag_request().await?,
                };
                (ReferrersPath::TagSchema, fetched.map(|(b, _)| b))
            }
        };
        let Some(bytes) = bytes else {
            return Ok(ReferrerList { path, referrers: Vec::new() });
        };
        budget.charge(&self.image, &what, bytes.len() as u64)?;
        let index = self.parse_index(&what, &bytes)?;
        Ok(ReferrerList { path, referrers: index.manifests })
    }

    /// Whether the registry serves the referrers API (it answers the referrers of
    /// `digest` with anything but 404). Always asked; the answer is kept in the cache.
    pub async fn has_referrers_api(&self, digest: &Digest) -> Result<bool, ReferrersError> {
        let what = format!("the referrers index of {digest}");
        let api =
            self.get(&format!("referrers/{digest}"), MEDIA_TYPE_INDEX, MAX_MANIFEST_BYTES, &what).await?.is_some();
        self.cache.set_api(self.image.registry(), api);
        Ok(api)
    }

    /// The manifest `descriptor` names, at most `limit` bytes, its digest and size checked
    /// and charged to `budget`.
    pub async fn manifest(&self, descriptor: &Descriptor, budget: &Budget) -> Result<Manifest, ReferrersError> {
        let digest = descriptor.parsed_digest()?;
        let what = format!("manifest {digest}");
        if descriptor.size > MAX_MANIFEST_BYTES {
            return Err(ReferrersError::TooLarge { image: self.image.name(), what, limit: MAX_MANIFEST_BYTES });
        }
        budget.charge(&self.image, &what, descriptor.size)?;
        if let Some(bytes) = self.cache.get(&digest) {
            self.check_size(&what, descriptor.size, bytes.len())?;
            return self.parse_manifest(&what, &bytes);
        }
        let Some((bytes, _)) =
            self.get(&format!("manifests/{digest}"), ACCEPT_MANIFESTS, descriptor.size, &what).await?
        else {
            return Err(ReferrersError::Status {
                image: self.image.name(),
                action: format!("fetching {what}"),
                status: 404,
                body: "listed as a referrer, but not in the repository".to_string(),
            });
        };
        self.check_size(&what, descriptor.size, bytes.len())?;
        self.check_digest(&what, &digest, &bytes)?;
        let manifest = self.parse_manifest(&what, &bytes)?;
        self.cache.put(&digest, &bytes);
        Ok(manifest)
    }

    fn check_size(&self, what: &str, expected: u64, actual: usize) -> Result<(), ReferrersError> {
        if expected != actual as u64 {
            return Err(ReferrersError::Mismatch {
                image: self.image.name(),
                what: what.to_string(),
                expected: format!("{expected} bytes"),
                actual: format!("{actual} bytes"),
            });
        }
        Ok(())
    }

    fn parse_manifest(&self, what: &str, bytes: &[u8]) -> Result<Manifest, ReferrersError> {
        let malformed =
            |reason: String| ReferrersError::Malformed { image: self.image.name(), what: what.to_string(), reason };
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("not a JSON image manifest: {e}")))?;
        if m.schema_version != 2 {
            return Err(malformed(format!("schemaVersion {}, expected 2", m.schema_version)));
        }
        Ok(m)
    }

    /// The blob `descriptor` names, its digest and size checked, charged to `budget`.
    pub async fn blob(&self, descriptor: &Descriptor, budget: &Budget) -> Result<Bytes, ReferrersError> {
        let digest = descriptor.parsed_digest()?;
        let what = format!("blob {digest}");
        budget.charge(&self.image, &what, descriptor.size)?;
        if let Some(bytes) = self.cache.get(&digest) {
            self.check_size(&what, descriptor.size, bytes.len())?;
            return Ok(bytes);
        }
        let Some((bytes, _)) = self.get(&format!("blobs/{digest}"), "*/*", descriptor.size, &what).await? else {
            return Err(ReferrersError::Status {
                image: self.image.name(),
                action: format!("fetching {what}"),
                status: 404,
                body: "a manifest lists it, but it is not in the repository".to_string(),
            });
        };
        self.check_size(&what, descriptor.size, bytes.len())?;
        self.check_digest(&what, &digest, &bytes)?;
        self.cache.put(&digest, &bytes);
        Ok(bytes)
    }

    /// cosign's legacy image tagged `sha256-<hex>.<suffix>` for `digest`, if there is one.
    pub async fn legacy(
        &self,
        digest: &Digest,
        suffix: &str,
        budget: &Budget,
    ) -> Result<Option<LegacyImage>, ReferrersError> {
        let tag = legacy_tag(digest, suffix);
        let what = format!("the image tagged {tag}");
        let Some((bytes, _)) =
            self.get(&format!("manifests/{tag}"), ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, &what).await?
        else {
            return Ok(None);
        };
        budget.charge(&self.image, &what, bytes.len() as u64)?;
        let manifest = self.parse_manifest(&what, &bytes)?;
        Ok(Some(LegacyImage { tag, digest: Digest::of(&bytes), manifest }))
    }

    async fn push_blob(&self, data: &Bytes) -> Result<(), ReferrersError> {
        let digest = Digest::of(data);
        self.registry.push_blob(&self.at(&digest), &digest, data.clone()).await?;
        Ok(())
    }

    /// `PUT` of a manifest under `reference` (a digest or a tag), retrying transient
    /// failures. Not oci-client's: a registry may leave out the `Location` of a manifest
    /// pushed by digest (go-containerregistry's, ECR), which the distribution spec allows
    /// clients to do without.
    async fn push_manifest_as(&self, reference: &str, media_type: &str, body: Vec<u8>) -> Result<(), ReferrersError> {
        let url = format!("{}/manifests/{reference}", self.registry.repository_url(&self.image));
        let auth = self.push_auth().await?;
        let action = format!("pushing manifest {reference}");
        let body = Bytes::from(body);
        let put = || {
            auth.apply(self.registry.http().put(&url).header(http::header::CONTENT_TYPE, media_type).body(body.clone()))
        };
        let response = self.send(put, &action).await?;
        let status = response.status();
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(self
                .registry
                .refused(&self.image, format!("the registry answered {status} to PUT {url}"))
                .into());
        }
        if status.is_success() {
            return Ok(());
        }
        Err(ReferrersError::Status {
            image: self.image.name(),
            action,
            status: status.as_u16(),
            body: error_body(response).await,
        })
    }

    /// Attaches `artifact` to `subject` as an OCI 1.1 referrer: pushes its blobs, then
    /// its manifest by digest; on a registry without the referrers API, then adds it to
    /// the index tagged `sha256-<hex>` (read first: an index that cannot be read is an
    /// error and is left as it is). Pushing the same artifact again adds nothing.
    pub async fn push_referrer(
        &self,
        subject: &Subject,
        artifact: &NewReferrer,
    ) -> Result<PushedReferrer, ReferrersError> {
        self.registry.authenticate(&self.image, RegistryOperation::Push).await?;
        let manifest = artifact.manifest(subject);
        let body = serde_json::to_vec(&manifest).map_err(|e| ReferrersError::Malformed {
            image: self.image.name(),
            what: "the artifact manifest".to_string(),
            reason: e.to_string(),
        })?;
        let digest = Digest::of(&body);
        let budget = Budget::new(u64::MAX);
        let api = self.has_referrers_api(&subject.digest).await?;
        let path = if api { ReferrersPath::Api } else { ReferrersPath::TagSchema };
        // Read the tag schema's index before writing anything: one that cannot be read stops the push.
        let existing = if api {
            None
        } else {
            let tag = referrers_tag(&subject.digest);
            let what = format!("the referrers index tagged {tag}");
            match self.get(&format!("manifests/{tag}"), ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, &what).await? {
                Some((bytes, _)) => Some(self.parse_index(&what, &bytes)?),
                None => Some(Index {
                    schema_version: 2,
                    media_type: MEDIA_TYPE_INDEX.to_string(),
                    manifests: Vec::new(),
                    annotations: BTreeMap::new(),
                }),
            }
        };
        let listed = match &existing {
            Some(index) => index.manifests.iter().any(|d| d.digest == digest.to_string()),
            None => {
                self.referrers(&subject.digest, &budget).await?.referrers.iter().any(|d| d.digest == digest.to_string())
            }
        };
        if listed {
            return Ok(PushedReferrer { digest, path, added: false });
        }
        self.push_blob(&Bytes::from_static(EMPTY_JSON)).await?;
        for layer in &artifact.layers {
            self.push_blob(&layer.data).await?;
        }
        self.push_manifest_as(&digest.to_string(), MEDIA_TYPE_MANIFEST, body.clone()).await?;
        if let Some(mut index) = existing {
            index.manifests.push(Descriptor {
                media_type: MEDIA_TYPE_MANIFEST.to_string(),
                size: body.len() as u64,
                digest: digest.to_string(),
                annotations: manifest.annotations.clone(),
                artifact_type: Some(manifest.effective_artifact_type().to_string()),
            });
            if index.media_type.is_empty() {
                index.media_type = MEDIA_TYPE_INDEX.to_string();
            }
            let index_body = serde_json::to_vec(&index).map_err(|e| ReferrersError::Malformed {
                image: self.image.name(),
                what: "the referrers index".to_string(),
                reason: e.to_string(),
            })?;
            self.push_manifest_as(&referrers_tag(&subject.digest), MEDIA_TYPE_INDEX, index_body).await?;
        }
        Ok(PushedReferrer { digest, path, added: true })
    }

    /// Appends `layers` to cosign's legacy image tagged `sha256-<hex>.<suffix>` for
    /// `subject` (creating it), as cosign writes it: an OCI image whose config lists the
    /// layers' digests, each layer a signature or attestation with its annotations.
    /// Layers already there (by digest) are not added again; when all are, nothing is
    /// pushed. The existing image is read first: one that cannot be read stops the push.
    pub async fn push_legacy(
        &self,
        subject: &Digest,
        suffix: &str,
        layers: &[Blob],
    ) -> Result<PushedLegacy, ReferrersError> {
        self.registry.authenticate(&self.image, RegistryOperation::Push).await?;
        let budget = Budget::new(u64::MAX);
        let existing = self.legacy(subject, suffix, &budget).await?;
        let tag = legacy_tag(subject, suffix);
        let mut descriptors = existing.as_ref().map(|e| e.manifest.layers.clone()).unwrap_or_default();
        let mut added = Vec::new();
        let mut present = 0;
        for layer in layers {
            let d = layer.descriptor();
            if descriptors.iter().any(|e| e.digest == d.digest)
                || added.iter().any(|a: &&Blob| a.descriptor().digest == d.digest)
            {
                present += 1;
            } else {
                added.push(layer);
            }
        }
        if added.is_empty() {
            if let Some(e) = existing {
                return Ok(PushedLegacy { tag, digest: e.digest, added: 0, present });
            }
        }
        for layer in &added {
            self.push_blob(&layer.data).await?;
            descriptors.push(layer.descriptor());
        }
        let config = legacy_config(&descriptors);
        let config = Bytes::from(config);
        self.push_blob(&config).await?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            config: Descriptor::of(MEDIA_TYPE_IMAGE_CONFIG, &config),
            layers: descriptors,
            annotations: BTreeMap::new(),
            subject: None,
            artifact_type: None,
        };
        let body = serde_json::to_vec(&manifest).map_err(|e| ReferrersError::Malformed {
            image: self.image.name(),
            what: format!("the image tagged {tag}"),
            reason: e.to_string(),
        })?;
        let digest = Digest::of(&body);
        self.push_manifest_as(&tag, MEDIA_TYPE_MANIFEST, body).await?;
        Ok(PushedLegacy { tag, digest, added: added.len(), present })
    }
}

/// The config of cosign's signature and attestation images: go-containerregistry's
/// empty image with the layers appended (uncompressed, so each diff ID is the layer's
/// digest), as `mutate.Append` writes it.
fn legacy_config(layers: &[Descriptor]) -> Vec<u8> {
    let zero = "0001-01-01T00:00:00Z";
    let history: Vec<serde_json::Value> = layers.iter().map(|_| serde_json::json!({"created": zero})).collect();
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    // serde_json keeps insertion order only with preserve_order; write the fields in Go's order by hand.
    format!(
        r#"{{"architecture":"","created":"{zero}","history":{},"os":"","rootfs":{{"type":"layers","diff_ids":{}}},"config":{{}}}}"#,
        serde_json::Value::Array(history),
        serde_json::to_string(&diff_ids).unwrap_or_else(|_| "[]".to_string()),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_links() {
        use super::next_link;
        let h = r#"</v2/a/b/tags/list?n=2&last=v2>; rel="next""#;
        assert_eq!(next_link(h).as_deref(), Some("/v2/a/b/tags/list?n=2&last=v2"));
        assert_eq!(next_link(r#"<x>; rel="prev", <y>; rel=next"#).as_deref(), Some("y"));
        assert_eq!(next_link(r#"<x>; rel="prev""#), None);
        assert_eq!(super::percent_encode("v1.0+b/x"), "v1.0%2Bb%2Fx");
    }

    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn digest() -> Digest {
        D.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tags() {
        assert_eq!(referrers_tag(&digest()), format!("sha256-{}", &D[7..]));
        assert_eq!(legacy_tag(&digest(), "att"), format!("sha256-{}.att", &D[7..]));
    }

    #[test]
    fn artifact_manifest_has_cosigns_shape() -> Result<(), Box<dyn std::error::Error>> {
        let subject = Subject {
            image: format!("127.0.0.1:5000/app@{D}").parse()?,
            digest: digest(),
            media_type: MEDIA_TYPE_INDEX.to_string(),
            size: 321,
            kind: SubjectKind::Index,
            platforms: vec![],
        };
        let artifact = NewReferrer {
            artifact_type: "application/x-test".to_string(),
            layers: vec![Blob {
                media_type: "application/x-test".into(),
                data: Bytes::from_static(b"hello"),
                annotations: BTreeMap::new(),
            }],
            annotations: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        let m = serde_json::to_value(artifact.manifest(&subject))?;
        assert_eq!(m["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(m["artifactType"], "application/x-test");
        assert_eq!(m["config"]["mediaType"], MEDIA_TYPE_EMPTY);
        assert_eq!(m["config"]["digest"], Digest::of(b"{}").to_string());
        assert_eq!(m["config"]["size"], 2);
        assert_eq!(m["subject"]["digest"], D);
        assert_eq!(m["subject"]["mediaType"], MEDIA_TYPE_INDEX);
        assert_eq!(m["subject"]["size"], 321);
        assert_eq!(m["layers"][0]["digest"], Digest::of(b"hello").to_string());
        assert_eq!(m["annotations"]["k"], "v");
        // Deterministic: the same artifact gives the same manifest.
        assert_eq!(
            serde_json::to_vec(&artifact.manifest(&subject))?,
            serde_json::to_vec(&artifact.manifest(&subject))?
        );
        Ok(())
    }

    #[test]
    fn legacy_config_is_go_containerregistrys() -> Result<(), Box<dyn std::error::Error>> {
        let layers = vec![Descriptor::of("application/vnd.dsse.envelope.v1+json", b"x")];
        let config: serde_json::Value = serde_json::from_slice(&legacy_config(&layers))?;
        assert_eq!(config["rootfs"]["diff_ids"][0], Digest::of(b"x").to_string());
        assert_eq!(config["history"].as_array().map(Vec::len), Some(1));
        assert_eq!(config["created"], "0001-01-01T00:00:00Z");
        Ok(())
    }
}
