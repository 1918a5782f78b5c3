//! Images to audit, wherever they are: in a registry (`REF@sha256:…` or
//! `REF:TAG`, the tag resolved to the digest it names now and reported as
//! resolved), an OCI image layout directory (`oci:DIR[:TAG]`), or a `docker
//! save` tarball (`docker-archive:FILE`: the classic `manifest.json` format, or
//! the OCI layout newer Docker writes into it).
//!
//! [`open`] reads the manifests and configs (each at most 8 MiB, each checked
//! against its digest) and lists the platforms; [`OpenedImage::layers`] gives a
//! platform's layers as a [`LayerSource`] for [`crate::walk`]: every layer is
//! decompressed as its bytes say (gzip, zstd, or none), and its digest and size
//! are checked when it has been read ([`LayerStream::finish`]); the `diff_id`
//! (the digest of the decompressed tar) is checked for a layer that has no digest
//! of its own (a classic `docker save` layer), and otherwise not: the checked
//! blob digest already pins every byte decompressed from it. Attestation manifests of an index (platform
//! `unknown/unknown`, as buildx writes them) are skipped.
//!
//! A classic `docker save` archive has no registry manifest: the image is
//! identified by its config digest (Docker's image ID), and
//! [`ImageSummary::digest_of`] says so.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Deserialize;
use sha2::Digest as _;

use crate::registry::{Registry, MAX_SMALL_BLOB};
use crate::store::{ChannelReader, ZstdFrames};
use crate::walk::{LayerSource, LayerStream};
use crate::{Digest, ImageRef, Platform, RegistryOptions, ToolchainError};

/// Where an image to audit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// In a registry, by digest or by tag.
    Registry(ImageRef),
    /// An OCI image layout directory, and the `org.opencontainers.image.ref.name` to pick.
    Layout {
        /// The directory.
        dir: PathBuf,
        /// The tag, when given.
        tag: Option<String>,
    },
    /// A `docker save` tarball.
    DockerArchive(PathBuf),
}

impl ImageInput {
    /// Parses `oci:DIR[:TAG]`, `docker-archive:FILE` or a registry reference.
    /// For `oci:A:B`, `B` is a tag when `A` is a directory with an `index.json`
    /// and `A:B` is not.
    pub fn parse(s: &str) -> Result<ImageInput, ToolchainError> {
        let invalid = |reason: &str| ToolchainError::InvalidReference { reference: s.into(), reason: reason.into() };
        if let Some(rest) = s.strip_prefix("oci:") {
            if rest.is_empty() {
                return Err(invalid("no directory after `oci:`"));
            }
            let is_layout = |p: &str| Path::new(p).join("index.json").is_file();
            if !is_layout(rest) {
                if let Some((dir, tag)) = rest.rsplit_once(':') {
                    if is_layout(dir) && !tag.is_empty() && !tag.contains('/') {
                        return Ok(ImageInput::Layout { dir: dir.into(), tag: Some(tag.into()) });
                    }
                }
            }
            return Ok(ImageInput::Layout { dir: rest.into(), tag: None });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(invalid("no file after `docker-archive:`"));
            }
            return Ok(ImageInput::DockerArchive(rest.into()));
        }
        for prefix in ["docker://", "oci-archive:", "dir:", "docker-daemon:", "containers-storage:"] {
            if s.starts_with(prefix) {
                return Err(invalid(&format!(
                    "`{prefix}` inputs are not supported; use a registry reference, `oci:DIR[:TAG]` or `docker-archive:FILE`"
                )));
            }
        }
        Ok(ImageInput::Registry(s.parse()?))
    }
}

impl fmt::Display for ImageInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageInput::Registry(r) => write!(f, "{r}"),
            ImageInput::Layout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            ImageInput::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            ImageInput::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
        }
    }
}

/// What the image's [`ImageSummary::digest`] is the digest of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOf {
    /// An image index (several platforms).
    Index,
    /// An image manifest.
    Manifest,
    /// The image config (Docker's image ID): a classic `docker save` archive has no manifest.
    Config,
}

impl DigestOf {
    /// `index`, `manifest`, `config`.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestOf::Index => "index",
            DigestOf::Manifest => "manifest",
            DigestOf::Config => "config",
        }
    }
}

/// The image as a whole.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// The input as given.
    pub input: String,
    /// A reference naming exactly this image: `REGISTRY/REPO@sha256:…` for a
    /// registry, the tag of a layout or archive when it has one.
    pub reference: Option<String>,
    /// The digest of the index or manifest (of the config, see [`ImageSummary::digest_of`]).
    pub digest: Digest,
    /// What [`ImageSummary::digest`] is the digest of.
    pub digest_of: DigestOf,
    /// The media type of what the digest is of.
    pub media_type: String,
    /// Whether a tag was resolved to the digest (the tag may name another image later).
    pub resolved_from_tag: bool,
    /// Platforms skipped (attestations, filtered out, absent from an archive), one line each.
    pub notes: Vec<String>,
}

/// One layer of a platform's image.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// The digest of the blob as stored (`None` for a classic `docker save` layer, known by its `diff_id` only).
    pub digest: Option<Digest>,
    /// The blob's size, when a descriptor states it.
    pub size: Option<u64>,
    /// The digest of the uncompressed tar, from the config.
    pub diff_id: Digest,
    /// Where the blob is: a path in the layout or archive (`blobs/sha256/…`), or the registry.
    location: String,
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// Its platform (from the index, else from the config).
    pub platform: Platform,
    /// Its manifest's digest (`None` in a classic `docker save` archive).
    pub manifest_digest: Option<Digest>,
    /// Its config's digest.
    pub config_digest: Digest,
    /// Its layers, bottom first.
    pub layers: Vec<LayerInfo>,
}

/// Options of [`open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Registry access (credentials, plain HTTP, deadlines), as for toolchain pulls.
    pub registry: RegistryOptions,
    /// The platforms to keep from an index; empty: every platform.
    pub platforms: Vec<Platform>,
}

/// An image whose manifests and configs were read and checked.
pub struct OpenedImage {
    /// The image.
    pub summary: ImageSummary,
    /// The platforms selected.
    pub platforms: Vec<PlatformImage>,
    backend: Backend,
}

impl fmt::Debug for OpenedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedImage").field("summary", &self.summary).field("platforms", &self.platforms).finish()
    }
}

#[derive(Clone)]
enum Backend {
    Dir(PathBuf),
    Tar(Arc<TarIndex>),
    Registry { registry: Arc<Registry>, image: ImageRef, runtime: tokio::runtime::Handle },
}

/// The regular files of a tarball: name → (offset, size).
struct TarIndex {
    file: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

/// Most entries a `docker save` archive may have.
const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;

impl TarIndex {
    fn read(path: &Path) -> Result<TarIndex, ToolchainError> {
        let bad = |reason: String| ToolchainError::Manifest { image: path.display().to_string(), reason };
        let mut file = File::open(path).map_err(|e| ToolchainError::io("open", path, e))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(|e| ToolchainError::io("read", path, e))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(bad(
                "a compressed archive; decompress it first (`docker save` writes an uncompressed tar)".into()
            ));
        }
        file.seek(SeekFrom::Start(0)).map_err(|e| ToolchainError::io("read", path, e))?;
        let mut archive = tar::Archive::new(BufReader::new(file));
        let mut entries = HashMap::new();
        let iter = archive.entries().map_err(|e| bad(format!("not a tar archive: {e}")))?;
        for entry in iter {
            let entry = entry.map_err(|e| bad(format!("not a tar archive: {e}")))?;
            if entries.len() >= MAX_ARCHIVE_ENTRIES {
                return Err(bad(format!("more than {MAX_ARCHIVE_ENTRIES} entries")));
            }
            if !matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Continuous) {
                continue;
            }
            let name = entry.path_bytes();
            let Ok(comps) = crate::walk::clean_entry_path(&name) else { continue };
            let name = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
            entries.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(TarIndex { file: path.to_path_buf(), entries })
    }

    fn open(&self, name: &str) -> Result<Option<(io::Take<File>, u64)>, ToolchainError> {
        let Some(&(offset, size)) = self.entries.get(name) else { return Ok(None) };
        let mut f = File::open(&self.file).map_err(|e| ToolchainError::io("open", &self.file, e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| ToolchainError::io("read", &self.file, e))?;
        Ok(Some((f.take(size), size)))
    }
}

/// A descriptor, as manifests and indexes hold them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<DescPlatform>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
struct DescPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    schema_version: Option<u64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Desc>>,
    #[serde(default)]
    config: Option<Desc>,
    #[serde(default)]
    layers: Option<Vec<Desc>>,
}

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Docker's `manifest.json` entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

impl Backend {
    /// Reads a small blob by digest (`None`: absent from a local layout), checking size bound and digest.
    async fn small(&self, image: &str, digest: &Digest, what: &str) -> Result<Option<Bytes>, ToolchainError> {
        let bytes = match self {
            Backend::Dir(dir) => {
                let path = dir.join("blobs").join("sha256").join(digest.hex());
                match read_bounded(File::open(&path), &path, image, what)? {
                    Some(b) => b,
                    None => return Ok(None),
                }
            }
            Backend::Tar(index) => match index.open(&format!("blobs/sha256/{}", digest.hex()))? {
                Some((r, size)) => read_small(r, size, &index.file, image, what)?,
                None => return Ok(None),
            },
            Backend::Registry { registry, image: reference, .. } => {
                let (b, _) = registry.manifest_raw(&reference.with_digest(digest.clone())).await?;
                return Ok(Some(b));
            }
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(ToolchainError::DigestMismatch {
                image: image.into(),
                what: what.into(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(Some(bytes))
    }

    /// Reads a config blob (any backend), checking bound and digest.
    async fn config(&self, image: &str, desc: &Desc) -> Result<Bytes, ToolchainError> {
        let digest: Digest = desc.digest.parse()?;
        if desc.size > MAX_SMALL_BLOB {
            return Err(ToolchainError::Manifest {
                image: image.into(),
                reason: format!("config {digest} is {} bytes, more than 8 MiB", desc.size),
            });
        }
        if let Backend::Registry { registry, image: reference, .. } = self {
            let od = oci_spec::image::DescriptorBuilder::default()
                .media_type(desc.media_type.as_str())
                .digest(oci_spec::image::Digest::try_from(desc.digest.as_str()).map_err(|e| {
                    ToolchainError::InvalidDigest { digest: desc.digest.clone(), reason: e.to_string() }
                })?)
                .size(desc.size)
                .build()
                .map_err(|e| ToolchainError::Manifest { image: image.into(), reason: format!("config: {e}") })?;
            return registry.small_blob(reference, &od, "config").await.map(Bytes::from);
        }
        let bytes = self.small(image, &digest, &format!("config {digest}")).await?.ok_or_else(|| {
            ToolchainError::Manifest { image: image.into(), reason: format!("config {digest} is missing") }
        })?;
        if bytes.len() as u64 != desc.size {
            return Err(ToolchainError::SizeMismatch {
                image: image.into(),
                what: format!("config {digest}"),
                expected: desc.size,
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

fn read_bounded(file: io::Result<File>, path: &Path, image: &str, what: &str) -> Result<Option<Bytes>, ToolchainError> {
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ToolchainError::io("open", path, e)),
    };
    let size = file.metadata().map_err(|e| ToolchainError::io("stat", path, e))?.len();
    read_small(file, size, path, image, what).map(Some)
}

fn read_small(r: impl Read, size: u64, path: &Path, image: &str, what: &str) -> Result<Bytes, ToolchainError> {
    if size > MAX_SMALL_BLOB {
        return Err(ToolchainError::Manifest {
            image: image.into(),
            reason: format!("{what} is {size} bytes, more than 8 MiB"),
        });
    }
    let mut out = Vec::with_capacity(size as usize);
    r.take(MAX_SMALL_BLOB + 1).read_to_end(&mut out).map_err(|e| ToolchainError::io("read", path, e))?;
    Ok(Bytes::from(out))
}

fn parse_doc(image: &str, what: &str, bytes: &[u8]) -> Result<Doc, ToolchainError> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| ToolchainError::Manifest {
        image: image.into(),
        reason: format!("{what} is not valid JSON: {e}"),
    })?;
    if doc.schema_version != Some(2) {
        return Err(ToolchainError::Manifest {
            image: image.into(),
            reason: format!("{what}: only schemaVersion 2 manifests are supported"),
        });
    }
    Ok(doc)
}

fn is_index(doc: &Doc) -> bool {
    matches!(doc.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST)) || doc.manifests.is_some()
}

/// Builds a platform's image from its manifest.
async fn platform_image(
    backend: &Backend,
    image: &str,
    manifest_digest: Option<Digest>,
    doc: &Doc,
    platform: Option<Platform>,
) -> Result<PlatformImage, ToolchainError> {
    let bad = |reason: String| ToolchainError::Manifest { image: image.into(), reason };
    let (Some(config), Some(layers)) = (&doc.config, &doc.layers) else {
        return Err(bad("a manifest without config or layers".into()));
    };
    let config_bytes = backend.config(image, config).await?;
    let cfg: Config =
        serde_json::from_slice(&config_bytes).map_err(|e| bad(format!("bad image config {}: {e}", config.digest)))?;
    if cfg.rootfs.diff_ids.len() != layers.len() {
        return Err(bad(format!("{} layers but {} diff_ids in the config", layers.len(), cfg.rootfs.diff_ids.len())));
    }
    let mut out = Vec::new();
    for (l, d) in layers.iter().zip(&cfg.rootfs.diff_ids) {
        let digest: Digest = l.digest.parse()?;
        out.push(LayerInfo {
            location: format!("blobs/sha256/{}", digest.hex()),
            digest: Some(digest),
            size: Some(l.size),
            diff_id: d.parse()?,
        });
    }
    let platform = platform.unwrap_or(Platform {
        os: cfg.os.clone(),
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone(),
    });
    Ok(PlatformImage { platform, manifest_digest, config_digest: config.digest.parse()?, layers: out })
}

fn keep(wanted: &[Platform], p: &Platform) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| w.matches(&p.os, &p.architecture, p.variant.as_deref()))
}

/// Resolves the index or manifest `bytes` (digest `digest`) to its platforms.
async fn resolve(
    backend: &Backend,
    image: &str,
    digest: &Digest,
    bytes: &[u8],
    options: &OpenOptions,
    notes: &mut Vec<String>,
) -> Result<(Vec<PlatformImage>, DigestOf, String), ToolchainError> {
    let doc = parse_doc(image, &format!("manifest {digest}"), bytes)?;
    let media_type = doc.media_type.clone().unwrap_or_default();
    if !is_index(&doc) {
        let p = platform_image(backend, image, Some(digest.clone()), &doc, None).await?;
        if !keep(&options.platforms, &p.platform) {
            return Err(no_platform(image, options, &[p.platform.to_string()]));
        }
        let media_type =
            if media_type.is_empty() { "application/vnd.oci.image.manifest.v1+json".into() } else { media_type };
        return Ok((vec![p], DigestOf::Manifest, media_type));
    }
    let mut available = Vec::new();
    let mut out = Vec::new();
    for m in doc.manifests.iter().flatten() {
        let Some(p) = &m.platform else {
            notes.push(format!("manifest {} without a platform skipped", m.digest));
            continue;
        };
        if p.os == "unknown" || p.architecture == "unknown" {
            // buildx's attestation manifests.
            continue;
        }
        let platform = Platform { os: p.os.clone(), architecture: p.architecture.clone(), variant: p.variant.clone() };
        available.push(platform.to_string());
        if !keep(&options.platforms, &platform) {
            notes.push(format!("platform {platform} not selected"));
            continue;
        }
        let child: Digest = m.digest.parse()?;
        if m.size > MAX_SMALL_BLOB {
            return Err(ToolchainError::Manifest {
                image: image.into(),
                reason: format!("manifest {child} is {} bytes, more than 8 MiB", m.size),
            });
        }
        let Some(child_bytes) = backend.small(image, &child, &format!("manifest {child}")).await? else {
            notes.push(format!("platform {platform}: manifest {child} is not in the image; skipped"));
            continue;
        };
        let cdoc = parse_doc(image, &format!("manifest {child}"), &child_bytes)?;
        if is_index(&cdoc) {
            return Err(ToolchainError::Manifest {
                image: image.into(),
                reason: format!("{child}: nested image indexes are not supported"),
            });
        }
        out.push(platform_image(backend, image, Some(child), &cdoc, Some(platform)).await?);
    }
    if out.is_empty() {
        return Err(no_platform(image, options, &available));
    }
    let media_type = if media_type.is_empty() { OCI_INDEX.into() } else { media_type };
    Ok((out, DigestOf::Index, media_type))
}

fn no_platform(image: &str, options: &OpenOptions, available: &[String]) -> ToolchainError {
    ToolchainError::NoMatchingPlatform {
        image: image.into(),
        platform: if options.platforms.is_empty() {
            "any platform".into()
        } else {
            options.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        },
        available: if available.is_empty() { "no platforms".into() } else { available.join(", ") },
    }
}

/// Reads an OCI layout's `index.json` (from a directory or an archive) and picks the image.
async fn open_layout(
    backend: Backend,
    input: &str,
    index_json: Bytes,
    tag: Option<&str>,
    options: &OpenOptions,
) -> Result<OpenedImage, ToolchainError> {
    let bad = |reason: String| ToolchainError::Manifest { image: input.into(), reason };
    let doc = parse_doc(input, "index.json", &index_json)?;
    let manifests = doc.manifests.unwrap_or_default();
    const REF_NAME: &str = "org.opencontainers.image.ref.name";
    let tags: Vec<&str> = manifests.iter().filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str)).collect();
    let chosen: Vec<&Desc> = match tag {
        Some(t) => manifests.iter().filter(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(t)).collect(),
        None => manifests.iter().collect(),
    };
    let mut digests: Vec<&str> = chosen.iter().map(|m| m.digest.as_str()).collect();
    digests.dedup();
    let desc = match (digests.len(), tag) {
        (1, _) => chosen[0],
        (0, Some(t)) => return Err(bad(format!("no image tagged {t:?}; the layout has: {}", tags.join(", ")))),
        (0, None) => return Err(bad("index.json lists no image".into())),
        (n, _) => {
            return Err(bad(format!(
                "index.json lists {n} images; name one by its tag (the layout has: {})",
                if tags.is_empty() { "no tags".to_string() } else { tags.join(", ") }
            )))
        }
    };
    let digest: Digest = desc.digest.parse()?;
    let bytes = backend
        .small(input, &digest, &format!("manifest {digest}"))
        .await?
        .ok_or_else(|| bad(format!("manifest {digest} is missing")))?;
    let mut notes = Vec::new();
    let (platforms, digest_of, media_type) = resolve(&backend, input, &digest, &bytes, options, &mut notes).await?;
    let media_type = if desc.media_type.is_empty() { media_type } else { desc.media_type.clone() };
    Ok(OpenedImage {
        summary: ImageSummary {
            input: input.into(),
            reference: desc.annotations.get(REF_NAME).cloned(),
            digest,
            digest_of,
            media_type,
            resolved_from_tag: false,
            notes,
        },
        platforms,
        backend,
    })
}

/// Opens `input`: reads and checks its manifests and configs, selects the platforms.
/// Registry requests run on the caller's runtime; so will the layer downloads of
/// [`OpenedImage::layers`].
pub async fn open(input: &ImageInput, options: &OpenOptions) -> Result<OpenedImage, ToolchainError> {
    let name = input.to_string();
    match input {
        ImageInput::Layout { dir, tag } => {
            let path = dir.join("index.json");
            let index = read_bounded(File::open(&path), &path, &name, "index.json")?.ok_or_else(|| {
                ToolchainError::Manifest {
                    image: name.clone(),
                    reason: format!("{} is not an OCI layout (no index.json)", dir.display()),
                }
            })?;
            open_layout(Backend::Dir(dir.clone()), &name, index, tag.as_deref(), options).await
        }
        ImageInput::DockerArchive(file) => {
            let index = Arc::new(TarIndex::read(file)?);
            let backend = Backend::Tar(index.clone());
            if let Some((r, size)) = index.open("index.json")? {
                let bytes = read_small(r, size, file, &name, "index.json")?;
                return open_layout(backend, &name, bytes, None, options).await;
            }
            open_docker_archive(backend, &index, &name, options)
        }
        ImageInput::Registry(reference) => {
            let registry = Arc::new(Registry::new(reference, &options.registry)?);
            registry.authenticate(reference, oci_client::RegistryOperation::Pull).await?;
            let (bytes, digest) = registry.manifest_raw(reference).await?;
            let backend =
                Backend::Registry { registry, image: reference.clone(), runtime: tokio::runtime::Handle::current() };
            let mut notes = Vec::new();
            let (platforms, digest_of, media_type) =
                resolve(&backend, &name, &digest, &bytes, options, &mut notes).await?;
            Ok(OpenedImage {
                summary: ImageSummary {
                    input: name.clone(),
                    reference: Some(format!("{}@{digest}", reference.name())),
                    resolved_from_tag: reference.digest().is_none(),
                    digest,
                    digest_of,
                    media_type,
                    notes,
                },
                platforms,
                backend,
            })
        }
    }
}

fn open_docker_archive(
    backend: Backend,
    index: &TarIndex,
    name: &str,
    options: &OpenOptions,
) -> Result<OpenedImage, ToolchainError> {
    let bad = |reason: String| ToolchainError::Manifest { image: name.into(), reason };
    let (r, size) = index.open("manifest.json")?.ok_or_else(|| {
        bad("neither manifest.json nor index.json in the archive: not a `docker save` tarball".into())
    })?;
    let bytes = read_small(r, size, &index.file, name, "manifest.json")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest.json is not valid: {e}")))?;
    let entry = match entries.as_slice() {
        [one] => one,
        [] => return Err(bad("manifest.json lists no image".into())),
        more => return Err(bad(format!("manifest.json lists {} images; save one image per archive", more.len()))),
    };
    let clean = |p: &str| -> Result<String, ToolchainError> {
        crate::walk::clean_entry_path(p.as_bytes())
            .map(|c| String::from_utf8_lossy(&c.join(&b'/')).into_owned())
            .map_err(|why| bad(format!("path {p:?} in manifest.json has {why}")))
    };
    let config_path = clean(&entry.config)?;
    let (r, size) =
        index.open(&config_path)?.ok_or_else(|| bad(format!("config {config_path} is not in the archive")))?;
    let config_bytes = read_small(r, size, &index.file, name, "config")?;
    let config_digest = Digest::of(&config_bytes);
    let named = |p: &str| -> Option<String> {
        let base = p.rsplit('/').next()?;
        let hex = base.strip_suffix(".json").unwrap_or(base);
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_string())
    };
    if let Some(hex) = named(&config_path) {
        if hex != config_digest.hex() {
            return Err(ToolchainError::DigestMismatch {
                image: name.into(),
                what: format!("config {config_path}"),
                expected: format!("sha256:{hex}"),
                actual: config_digest.to_string(),
            });
        }
    }
    let cfg: Config = serde_json::from_slice(&config_bytes).map_err(|e| bad(format!("bad image config: {e}")))?;
    if cfg.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(bad(format!(
            "{} layers but {} diff_ids in the config",
            entry.layers.len(),
            cfg.rootfs.diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (l, d) in entry.layers.iter().zip(&cfg.rootfs.diff_ids) {
        let location = clean(l)?;
        let digest =
            if location.starts_with("blobs/sha256/") { named(&location).map(|h| format!("sha256:{h}")) } else { None };
        layers.push(LayerInfo {
            digest: digest.map(|d| d.parse()).transpose()?,
            size: None,
            diff_id: d.parse()?,
            location,
        });
    }
    let platform =
        Platform { os: cfg.os.clone(), architecture: cfg.architecture.clone(), variant: cfg.variant.clone() };
    if !keep(&options.platforms, &platform) {
        return Err(no_platform(name, options, &[platform.to_string()]));
    }
    Ok(OpenedImage {
        summary: ImageSummary {
            input: name.into(),
            reference: entry.repo_tags.as_ref().and_then(|t| t.first().cloned()),
            digest: config_digest.clone(),
            digest_of: DigestOf::Config,
            media_type: DOCKER_CONFIG.into(),
            resolved_from_tag: false,
            notes: vec!["a classic `docker save` archive has no registry manifest: the image is named by its config digest (Docker's image ID)".into()],
        },
        platforms: vec![PlatformImage { platform, manifest_digest: None, config_digest, layers }],
        backend,
    })
}

impl OpenedImage {
    /// The layers of platform `index` (of [`OpenedImage::platforms`]) for
    /// [`crate::walk::walk`]. For a registry image it must be used on a thread
    /// that may block (`tokio::task::spawn_blocking`), under the runtime that
    /// [`open`] ran on: each layer is downloaded as it is read.
    pub fn layers(&self, index: usize) -> Layers {
        Layers {
            backend: self.backend.clone(),
            image: self.summary.input.clone(),
            layers: self.platforms.get(index).map(|p| p.layers.clone()).unwrap_or_default(),
        }
    }
}

/// A platform's layers, opened one at a time.
pub struct Layers {
    backend: Backend,
    image: String,
    layers: Vec<LayerInfo>,
}

impl LayerSource for Layers {
    fn count(&self) -> usize {
        self.layers.len()
    }

    fn image(&self) -> String {
        self.image.clone()
    }

    fn layer_digest(&self, index: usize) -> String {
        self.layers.get(index).map(|l| l.digest.as_ref().unwrap_or(&l.diff_id).to_string()).unwrap_or_default()
    }

    fn size_hint(&self, index: usize) -> Option<u64> {
        self.layers.get(index).and_then(|l| l.size)
    }

    fn open(&mut self, index: usize) -> Result<Box<dyn LayerStream>, ToolchainError> {
        let layer = self.layers.get(index).cloned().ok_or_else(|| ToolchainError::Manifest {
            image: self.image.clone(),
            reason: format!("no layer {index}"),
        })?;
        let what = format!("layer {}", self.layer_digest(index));
        let (raw, download): (Box<dyn Read + Send>, Option<Download>) = match &self.backend {
            Backend::Dir(dir) => {
                let path = dir.join(&layer.location);
                let f = File::open(&path).map_err(|e| ToolchainError::io("open", &path, e))?;
                (Box::new(f), None)
            }
            Backend::Tar(index) => {
                let (r, _) = index.open(&layer.location)?.ok_or_else(|| ToolchainError::Manifest {
                    image: self.image.clone(),
                    reason: format!("{what} ({}) is not in the archive", layer.location),
                })?;
                (Box::new(r), None)
            }
            Backend::Registry { registry, image, runtime } => {
                let digest = layer.digest.clone().ok_or_else(|| ToolchainError::Manifest {
                    image: self.image.clone(),
                    reason: format!("{what} has no digest"),
                })?;
                let desc = oci_spec::image::DescriptorBuilder::default()
                    .media_type("application/vnd.oci.image.layer.v1.tar")
                    .digest(oci_spec::image::Digest::try_from(digest.to_string().as_str()).map_err(|e| {
                        ToolchainError::InvalidDigest { digest: digest.to_string(), reason: e.to_string() }
                    })?)
                    .size(layer.size.unwrap_or(0))
                    .build()
                    .map_err(|e| ToolchainError::Manifest { image: self.image.clone(), reason: e.to_string() })?;
                let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(64);
                let (registry, image) = (registry.clone(), image.clone());
                let task = runtime.spawn(async move { registry.stream_blob(&image, &desc, "layer", tx, None).await });
                (Box::new(ChannelReader::new(rx)), Some(Download { task, runtime: runtime.clone() }))
            }
        };
        let compressed = Arc::new(Mutex::new(Hashing::new()));
        // The uncompressed tar is hashed (against the config's diff_id) only when the blob has
        // no digest of its own (a classic `docker save` layer): otherwise the checked compressed
        // digest already pins every byte decompressed from it.
        let uncompressed = layer.digest.is_none().then(|| Mutex::new(Hashing::new()));
        let mut buffered = BufReader::with_capacity(1 << 16, HashingReader { inner: raw, state: compressed.clone() });
        let head = buffered.fill_buf().map_err(|e| ToolchainError::Layer {
            image: self.image.clone(),
            digest: self.layer_digest(index),
            entry: String::new(),
            reason: format!("reading the layer: {e}"),
        })?;
        let decoder = if head.starts_with(&[0x1f, 0x8b]) {
            if layer.digest.is_some() {
                // The blob's digest pins every compressed byte: the gzip CRC-32 of the
                // decompressed bytes would check nothing more (and costs a pass over them).
                Decoder::GzipPinned(Box::new(crate::gunzip::UncheckedGunzip::new(buffered)))
            } else {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
            }
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Decoder::Zstd(Box::new(ZstdFrames::new(buffered)))
        } else {
            Decoder::Plain(buffered)
        };
        Ok(Box::new(VerifiedLayer {
            decoder: Some(decoder),
            uncompressed,
            compressed,
            layer,
            what,
            image: self.image.clone(),
            download,
        }))
    }
}

struct Download {
    task: tokio::task::JoinHandle<Result<(), ToolchainError>>,
    runtime: tokio::runtime::Handle,
}

/// SHA-256 of a stream, computed on a thread of its own (the walk's thread
/// decompresses and parses): bytes are batched and sent over a bounded channel.
/// Falls back to hashing inline when no thread can be started.
struct Hashing {
    batch: Vec<u8>,
    worker: Option<HashWorker>,
    inline: sha2::Sha256,
    bytes: u64,
}

const HASH_BATCH: usize = 1 << 18;

/// The channel to a hashing thread, and the thread (which returns the digest and the byte count).
type HashWorker = (std::sync::mpsc::SyncSender<Vec<u8>>, std::thread::JoinHandle<(Digest, u64)>);

impl Hashing {
    fn new() -> Hashing {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let worker = std::thread::Builder::new()
            .name("layer-sha256".into())
            .spawn(move || {
                let mut h = sha2::Sha256::new();
                let mut n = 0u64;
                for chunk in rx {
                    h.update(&chunk);
                    n += chunk.len() as u64;
                }
                (Digest::from_hasher(h), n)
            })
            .ok()
            .map(|handle| (tx, handle));
        Hashing { batch: Vec::with_capacity(HASH_BATCH), worker, inline: sha2::Sha256::new(), bytes: 0 }
    }

    fn update(&mut self, data: &[u8]) {
        match &self.worker {
            None => {
                self.inline.update(data);
                self.bytes += data.len() as u64;
            }
            Some((tx, _)) => {
                self.batch.extend_from_slice(data);
                if self.batch.len() >= HASH_BATCH {
                    let full = std::mem::replace(&mut self.batch, Vec::with_capacity(HASH_BATCH));
                    if tx.send(full).is_err() {
                        // The worker is gone (it cannot be, short of a panic): make the digest wrong.
                        self.bytes = u64::MAX;
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> (Digest, u64) {
        match self.worker.take() {
            None => (Digest::from_hasher(std::mem::take(&mut self.inline)), self.bytes),
            Some((tx, handle)) => {
                let last = std::mem::take(&mut self.batch);
                let _ = tx.send(last);
                drop(tx);
                match handle.join() {
                    Ok((d, n)) if self.bytes != u64::MAX => (d, n),
                    _ => (Digest::of(b"the hashing thread failed"), u64::MAX),
                }
            }
        }
    }
}

struct HashingReader<R> {
    inner: R,
    state: Arc<Mutex<Hashing>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.lock().map_err(|_| io::Error::other("hash state poisoned"))?;
        s.update(&buf[..n]);
        Ok(n)
    }
}

type Raw = BufReader<HashingReader<Box<dyn Read + Send>>>;

enum Decoder {
    Plain(Raw),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Raw>>),
    GzipPinned(Box<crate::gunzip::UncheckedGunzip<Raw>>),
    Zstd(Box<ZstdFrames<Raw>>),
}

impl Decoder {
    fn into_inner(self) -> Option<Raw> {
        match self {
            Decoder::Plain(r) => Some(r),
            Decoder::Gzip(d) => Some((*d).into_inner()),
            Decoder::GzipPinned(d) => (*d).into_inner(),
            Decoder::Zstd(d) => (*d).into_inner(),
        }
    }
}

struct VerifiedLayer {
    decoder: Option<Decoder>,
    uncompressed: Option<Mutex<Hashing>>,
    compressed: Arc<Mutex<Hashing>>,
    layer: LayerInfo,
    what: String,
    image: String,
    download: Option<Download>,
}

impl Read for VerifiedLayer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.decoder {
            Some(Decoder::Plain(r)) => r.read(buf)?,
            Some(Decoder::Gzip(r)) => r.read(buf)?,
            Some(Decoder::GzipPinned(r)) => r.read(buf)?,
            Some(Decoder::Zstd(r)) => r.read(buf)?,
            None => 0,
        };
        if let Some(u) = &self.uncompressed {
            u.lock().map_err(|_| io::Error::other("hash state poisoned"))?.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn take_digest(state: &Mutex<Hashing>) -> (Digest, u64) {
    match state.lock() {
        Ok(mut s) => s.finish(),
        Err(_) => (Digest::of(b"poisoned"), u64::MAX),
    }
}

impl LayerStream for VerifiedLayer {
    fn finish(mut self: Box<Self>) -> Result<(), ToolchainError> {
        let (image, what) = (self.image.clone(), self.what.clone());
        let layer_err = |reason: String| ToolchainError::Layer {
            image: image.clone(),
            digest: what.trim_start_matches("layer ").to_string(),
            entry: String::new(),
            reason,
        };
        // Read what the walk left: the rest of the tar, then what follows the compressed
        // stream (also after a decompression error: the digest covers every byte).
        let tar_rest = io::copy(&mut *self, &mut io::sink()).map(|_| ());
        let raw_rest = match self.decoder.take().and_then(Decoder::into_inner) {
            Some(mut raw) => io::copy(&mut raw, &mut io::sink()).map(|_| ()),
            None => Ok(()),
        };
        let drained = tar_rest.and(raw_rest).map_err(|e| format!("reading the layer: {e}"));
        // A download's own error (digest, size, registry) explains a bad stream best.
        if let Some(d) = self.download.take() {
            let r = d.runtime.block_on(d.task).map_err(|e| layer_err(format!("download task: {e}")))?;
            r?;
        }
        let (compressed, size) = take_digest(&self.compressed);
        if let Some(expected) = &self.layer.digest {
            if *expected != compressed {
                return Err(ToolchainError::DigestMismatch {
                    image: self.image.clone(),
                    what: self.what.clone(),
                    expected: expected.to_string(),
                    actual: compressed.to_string(),
                });
            }
        }
        if let Some(expected) = self.layer.size {
            if expected != size {
                return Err(ToolchainError::SizeMismatch {
                    image: self.image.clone(),
                    what: self.what.clone(),
                    expected,
                    actual: size,
                });
            }
        }
        drained.map_err(layer_err)?;
        if let Some(u) = &self.uncompressed {
            let (uncompressed, _) = take_digest(u);
            if uncompressed != self.layer.diff_id {
                return Err(ToolchainError::DigestMismatch {
                    image: self.image.clone(),
                    what: format!("uncompressed {} (diff_id)", self.what),
                    expected: self.layer.diff_id.to_string(),
                    actual: uncompressed.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.json"), "{}").unwrap();
        let d = dir.path().display().to_string();
        assert_eq!(
            ImageInput::parse(&format!("oci:{d}:v1")).unwrap(),
            ImageInput::Layout { dir: d.clone().into(), tag: Some("v1".into()) }
        );
        assert_eq!(ImageInput::parse(&format!("oci:{d}")).unwrap(), ImageInput::Layout { dir: d.into(), tag: None });
        assert_eq!(ImageInput::parse("docker-archive:x.tar").unwrap(), ImageInput::DockerArchive("x.tar".into()));
        assert!(matches!(ImageInput::parse("127.0.0.1:5000/a:v1").unwrap(), ImageInput::Registry(_)));
        assert!(ImageInput::parse("oci:").is_err());
        assert!(ImageInput::parse("docker://x").is_err());
        assert!(ImageInput::parse("UPPER/case").is_err());
    }
}
