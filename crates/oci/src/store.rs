//! The content-addressed image cache and the pull pipeline.
//!
//! Layout under the cache directory:
//!
//! ```text
//! lock                          flock: shared while pulling or using images, exclusive for gc
//! locks/<hex>.lock              flock: exclusive while one manifest digest is being unpacked
//! images/sha256/<hex>/          one complete image per manifest digest:
//!     rootfs/  manifest.json  config.json  last-used
//! aliases/<index hex>/<os>-<arch>[-<variant>]   the manifest digest an index resolved to
//! tmp/<hex>.<pid>.<n>/          an unpack in progress; renamed to images/… when complete
//! ```
//!
//! A pull by digest that is already cached does no network I/O. A pull
//! downloads each layer while unpacking it in a second thread, checks the
//! compressed digest, the size and the uncompressed `diff_id`, and renames the
//! temporary directory into place only when all of them matched; any failure
//! removes the temporary directory.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use oci_spec::image::ImageConfiguration;
use rustix::fs::FlockOperation;
use sha2::Digest as _;

use super::registry::{Registry, Resolved};
use super::unpack::{self, UnpackError, Unpacker};
use super::{Digest, ImageRef, Platform, PullOptions, ToolchainError, DEFAULT_MAX_UNPACKED_SIZE};

/// A pulled, verified and unpacked image.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference as asked for.
    pub reference: ImageRef,
    /// The digest of the platform image manifest (the cache key).
    pub manifest_digest: Digest,
    /// The digest of the image index the reference resolved to, if it was an index.
    pub index_digest: Option<Digest>,
    /// The image config (Env, WorkingDir, Entrypoint, …).
    pub config: ImageConfiguration,
    /// The unpacked root filesystem.
    pub rootfs: PathBuf,
    /// `GOROOT` from the config's Env (or `/usr/local/go` when it is unset and exists).
    pub goroot: Option<String>,
    /// The first line of `$GOROOT/VERSION`, e.g. `go1.22.5`.
    pub go_version: Option<String>,
    /// The platform of the image (from the config).
    pub platform: Platform,
    /// Whether it came from the cache without network I/O.
    pub cached: bool,
    /// What the unpack skipped or changed (device nodes, setuid bits).
    pub warnings: Vec<String>,
}

impl PulledImage {
    /// The digest to pin: the index digest when the reference named an index, else the manifest digest.
    pub fn pin_digest(&self) -> &Digest {
        self.index_digest.as_ref().unwrap_or(&self.manifest_digest)
    }

    /// The reference pinned to [`PulledImage::pin_digest`].
    pub fn pinned(&self) -> super::PinnedImage {
        match super::PinnedImage::new(self.reference.with_digest(self.pin_digest().clone())) {
            Ok(p) => p,
            Err(_) => unreachable!("with_digest always sets a digest"),
        }
    }

    /// Looks up `key` in the config's Env.
    pub fn env(&self, key: &str) -> Option<String> {
        env_of(&self.config, key)
    }
}

fn env_of(config: &ImageConfiguration, key: &str) -> Option<String> {
    config
        .config()
        .as_ref()?
        .env()
        .as_ref()?
        .iter()
        .rev()
        .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
}

/// Options of [`Store::gc`].
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Remove every image, not only those unused for `unused_for`.
    pub all: bool,
    /// Remove images not used for this long. `None`: 30 days.
    pub unused_for: Option<Duration>,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Manifest digests of the removed images.
    pub removed_images: Vec<Digest>,
    /// Leftover temporary directories removed.
    pub removed_temporary: usize,
    /// Images kept.
    pub kept_images: usize,
    /// Go build caches (`gocache/<key>`) removed: unused for the same period,
    /// or built with an image that is no longer in the cache.
    pub removed_build_caches: usize,
    /// Go build caches kept.
    pub kept_build_caches: usize,
    /// Files of the referrers cache (`referrers/`: manifests and attestations by digest,
    /// registries with the referrers API) written longer ago than the period; they are
    /// fetched again when needed.
    pub removed_cached_referrers: usize,
}

/// The file beside a Go build cache directory that names the toolchain image
/// (manifest digest) it was built with; its mtime is the cache's last use.
pub fn build_cache_marker(gocache: &Path) -> PathBuf {
    let mut name = gocache.file_name().unwrap_or_default().to_os_string();
    name.push(".toolchain");
    gocache.with_file_name(name)
}

/// A shared lock on the store: gc waits while one is held. Hold it while a
/// rootfs is in use (for example while a build runs in it).
#[derive(Debug)]
pub struct StoreGuard {
    _lock: File,
}

/// The image cache.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn lock(path: &Path, op: FlockOperation) -> Result<File, ToolchainError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ToolchainError::io("open lock file", path, e))?;
    rustix::fs::flock(&file, op).map_err(|e| ToolchainError::io("lock", path, e.into()))?;
    Ok(file)
}

/// Removes a temporary directory on drop unless disarmed.
struct TempDir {
    path: Option<PathBuf>,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = unpack::remove_tree(&p);
        }
    }
}

impl Store {
    /// Opens (creating) the cache in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, ToolchainError> {
        let dir: PathBuf = dir.into();
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir().map_err(|e| ToolchainError::io("current directory", &dir, e))?.join(&dir)
        };
        for sub in ["images/sha256", "locks", "aliases", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| ToolchainError::io("create cache directory", &p, e))?;
        }
        Ok(Store { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn image_dir(&self, digest: &Digest) -> PathBuf {
        self.dir.join("images/sha256").join(digest.hex())
    }

    fn alias_path(&self, index: &Digest, platform: &Platform) -> PathBuf {
        let mut name = format!("{}-{}", platform.os, platform.architecture);
        if let Some(v) = &platform.variant {
            name.push('-');
            name.push_str(v);
        }
        self.dir.join("aliases").join(index.hex()).join(name)
    }

    /// Takes a shared lock: gc waits until it is dropped.
    pub fn hold(&self) -> Result<StoreGuard, ToolchainError> {
        Ok(StoreGuard { _lock: lock(&self.dir.join("lock"), FlockOperation::LockShared)? })
    }

    /// The cached image for a manifest digest, or (through an alias) an index digest and platform.
    pub fn get(
        &self,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<PulledImage>, ToolchainError> {
        let Some(digest) = reference.digest() else { return Ok(None) };
        let host = Platform::host();
        let platform = platform.unwrap_or(&host);
        let mut manifest_digest = digest.clone();
        let mut index_digest = None;
        if !self.image_dir(digest).join("rootfs").is_dir() {
            let alias = self.alias_path(digest, platform);
            let Ok(text) = fs::read_to_string(&alias) else { return Ok(None) };
            let Ok(d) = text.trim().parse::<Digest>() else { return Ok(None) };
            index_digest = Some(digest.clone());
            manifest_digest = d;
        }
        let dir = self.image_dir(&manifest_digest);
        if !dir.join("rootfs").is_dir() {
            return Ok(None);
        }
        let config_bytes =
            fs::read(dir.join("config.json")).map_err(|e| ToolchainError::io("read", dir.join("config.json"), e))?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
            ToolchainError::Manifest { image: reference.to_string(), reason: format!("cached config.json: {e}") }
        })?;
        let _ = File::create(dir.join("last-used"));
        Ok(Some(self.describe(reference, manifest_digest, index_digest, config, &dir, true, Vec::new())))
    }

    #[allow(clippy::too_many_arguments)]
    fn describe(
        &self,
        reference: &ImageRef,
        manifest_digest: Digest,
        index_digest: Option<Digest>,
        config: ImageConfiguration,
        dir: &Path,
        cached: bool,
        warnings: Vec<String>,
    ) -> PulledImage {
        let rootfs = dir.join("rootfs");
        let goroot = env_of(&config, "GOROOT").or_else(|| {
            unpack::read_file_in_root(&rootfs, b"/usr/local/go/VERSION", 1).ok().map(|_| "/usr/local/go".to_string())
        });
        let go_version = goroot.as_deref().and_then(|g| super::go_version_in(&rootfs, g));
        let platform = Platform {
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            variant: config.variant().clone(),
        };
        PulledImage {
            reference: reference.clone(),
            manifest_digest,
            index_digest,
            config,
            rootfs,
            goroot,
            go_version,
            platform,
            cached,
            warnings,
        }
    }

    /// [`Store::pull`] for synchronous callers, on the caller's runtime.
    pub fn pull_blocking(
        &self,
        runtime: &tokio::runtime::Runtime,
        reference: &ImageRef,
        options: &PullOptions,
    ) -> Result<PulledImage, ToolchainError> {
        runtime.block_on(self.pull(reference, options))
    }

    /// Pulls `reference` (by tag or digest), verifies and unpacks it, or returns it from the cache.
    pub async fn pull(&self, reference: &ImageRef, options: &PullOptions) -> Result<PulledImage, ToolchainError> {
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        if let Some(hit) = self.get(reference, Some(&platform))? {
            return Ok(hit);
        }
        let registry = Registry::new(reference, &options.registry)?;
        let resolved = registry.resolve(reference, &platform).await?;
        let store = self.clone();
        let _shared = blocking(move || store.hold()).await?;
        let lock_path = self.dir.join("locks").join(format!("{}.lock", resolved.manifest_digest.hex()));
        let _exclusive = blocking(move || lock(&lock_path, FlockOperation::LockExclusive)).await?;

        let dir = self.image_dir(&resolved.manifest_digest);
        if !dir.join("rootfs").is_dir() {
            self.remove_stale_tmp(&resolved.manifest_digest);
            self.fetch_and_unpack(&registry, reference, &resolved, options).await?;
        }
        if let (Some(index), Some(p)) = (&resolved.index_digest, &resolved.platform) {
            let alias = self.alias_path(index, p);
            if let Some(parent) = alias.parent() {
                let _ = fs::create_dir_all(parent);
            }
            let tmp = alias.with_extension(format!("tmp{}", std::process::id()));
            if fs::write(&tmp, resolved.manifest_digest.to_string()).is_ok() {
                let _ = fs::rename(&tmp, &alias);
            }
        }
        let by_manifest = reference.with_digest(resolved.manifest_digest.clone());
        let mut image = self.get(&by_manifest, Some(&platform))?.ok_or_else(|| ToolchainError::Io {
            action: "find the unpacked image".into(),
            path: dir.clone(),
            source: io::Error::from(io::ErrorKind::NotFound),
        })?;
        image.reference = reference.clone();
        image.index_digest = resolved.index_digest.clone();
        image.cached = false;
        if let Ok(w) = fs::read_to_string(dir.join("warnings")) {
            image.warnings = w.lines().map(str::to_string).collect();
        }
        Ok(image)
    }

    fn remove_stale_tmp(&self, digest: &Digest) {
        let prefix = format!("{}.", digest.hex());
        if let Ok(entries) = fs::read_dir(self.dir.join("tmp")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = unpack::remove_tree(&e.path());
                }
            }
        }
    }

    async fn fetch_and_unpack(
        &self,
        registry: &Registry,
        reference: &ImageRef,
        resolved: &Resolved,
        options: &PullOptions,
    ) -> Result<(), ToolchainError> {
        let image = reference.to_string();
        let manifest = &resolved.manifest;
        let config_bytes = registry.small_blob(reference, manifest.config(), "config").await?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| ToolchainError::Manifest { image: image.clone(), reason: format!("bad image config: {e}") })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(ToolchainError::Manifest {
                image: image.clone(),
                reason: format!("{} layers but {} diff_ids in the config", manifest.layers().len(), diff_ids.len()),
            });
        }

        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp_path =
            self.dir.join("tmp").join(format!("{}.{}.{n}", resolved.manifest_digest.hex(), std::process::id()));
        let rootfs = tmp_path.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| ToolchainError::io("create", &rootfs, e))?;
        let mut tmp = TempDir { path: Some(tmp_path.clone()) };

        let max = options.max_unpacked_size.unwrap_or(DEFAULT_MAX_UNPACKED_SIZE);
        let mut unpacker = Some(Unpacker::new(&rootfs, max).map_err(|e| ToolchainError::io("open", &rootfs, e))?);
        let count = manifest.layers().len();
        for (i, (layer, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
            let layer_digest = layer.digest().to_string();
            let compression = compression_of(&image, layer.media_type().as_ref())?;
            let diff_id: Digest = diff_id.parse()?;
            if let Some(p) = &options.progress {
                p.layer(i, count, &layer_digest.parse()?, layer.size());
            }
            let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(64);
            let mut up =
                unpacker.take().ok_or_else(|| ToolchainError::io("unpack", &rootfs, io::Error::other("lost state")))?;
            let worker = tokio::task::spawn_blocking(move || {
                let mut reader = ChannelReader { rx, current: Bytes::new() };
                let r = apply_compressed(&mut up, &mut reader, compression);
                // Let the download finish (or stop) whatever happened.
                drop(reader);
                (up, r)
            });
            let download = registry.stream_blob(reference, layer, "layer", tx, options.progress.as_deref()).await;
            let (up, unpacked) =
                worker.await.map_err(|e| ToolchainError::io("unpack", &rootfs, io::Error::other(e)))?;
            unpacker = Some(up);
            // A bad download explains a bad unpack: report it first.
            download?;
            let actual_diff_id = unpacked.map_err(|e| match e {
                UnpackError::TooLarge => ToolchainError::TooLarge { image: image.clone(), limit: max },
                UnpackError::Entry { entry, reason } => {
                    ToolchainError::Layer { image: image.clone(), digest: layer_digest.clone(), entry, reason }
                }
                UnpackError::Read(e) => ToolchainError::Layer {
                    image: image.clone(),
                    digest: layer_digest.clone(),
                    entry: String::new(),
                    reason: format!("reading the layer: {e}"),
                },
            })?;
            if actual_diff_id != diff_id {
                return Err(ToolchainError::DigestMismatch {
                    image: image.clone(),
                    what: format!("uncompressed layer {layer_digest} (diff_id)"),
                    expected: diff_id.to_string(),
                    actual: actual_diff_id.to_string(),
                });
            }
        }
        let up = unpacker.ok_or_else(|| ToolchainError::io("unpack", &rootfs, io::Error::other("lost state")))?;
        let warnings = up.finish().map_err(|r| ToolchainError::Layer {
            image: image.clone(),
            digest: String::new(),
            entry: String::new(),
            reason: r,
        })?;
        let write = |name: &str, data: &[u8]| {
            let p = tmp_path.join(name);
            fs::write(&p, data).map_err(|e| ToolchainError::io("write", &p, e))
        };
        write("manifest.json", &resolved.manifest_bytes)?;
        write("config.json", &config_bytes)?;
        write("warnings", warnings.join("\n").as_bytes())?;
        write("last-used", b"")?;
        let dest = self.image_dir(&resolved.manifest_digest);
        fs::rename(&tmp_path, &dest).map_err(|e| ToolchainError::io("rename into the cache", &dest, e))?;
        tmp.path = None;
        Ok(())
    }

    /// Removes leftovers of interrupted pulls and images unused for a while (or all of them).
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport, ToolchainError> {
        let _exclusive = lock(&self.dir.join("lock"), FlockOperation::LockExclusive)?;
        let mut report = GcReport::default();
        let tmp = self.dir.join("tmp");
        for e in fs::read_dir(&tmp).map_err(|e| ToolchainError::io("list", &tmp, e))?.flatten() {
            unpack::remove_tree(&e.path()).map_err(|err| ToolchainError::io("remove", e.path(), err))?;
            report.removed_temporary += 1;
        }
        let unused_for = options.unused_for.unwrap_or(Duration::from_secs(30 * 24 * 3600));
        let now = SystemTime::now();
        let images = self.dir.join("images/sha256");
        for e in fs::read_dir(&images).map_err(|e| ToolchainError::io("list", &images, e))?.flatten() {
            let Ok(digest) = format!("sha256:{}", e.file_name().to_string_lossy()).parse::<Digest>() else { continue };
            let last_used = fs::metadata(e.path().join("last-used")).and_then(|m| m.modified()).ok();
            let stale =
                options.all || last_used.is_none_or(|t| now.duration_since(t).unwrap_or_default() >= unused_for);
            if stale {
                unpack::remove_tree(&e.path()).map_err(|err| ToolchainError::io("remove", e.path(), err))?;
                report.removed_images.push(digest);
            } else {
                report.kept_images += 1;
            }
        }
        // Aliases whose image is gone.
        let aliases = self.dir.join("aliases");
        for index in fs::read_dir(&aliases).map_err(|e| ToolchainError::io("list", &aliases, e))?.flatten() {
            for alias in fs::read_dir(index.path()).into_iter().flatten().flatten() {
                let target = fs::read_to_string(alias.path()).ok().and_then(|t| t.trim().parse::<Digest>().ok());
                if target.is_none_or(|d| !self.image_dir(&d).is_dir()) {
                    let _ = fs::remove_file(alias.path());
                }
            }
            let _ = fs::remove_dir(index.path());
        }
        self.gc_build_caches(options.all, unused_for, now, &mut report)?;
        self.gc_referrers(options.all, unused_for, now, &mut report)?;
        let locks = self.dir.join("locks");
        for l in fs::read_dir(&locks).map_err(|e| ToolchainError::io("list", &locks, e))?.flatten() {
            let _ = fs::remove_file(l.path());
        }
        Ok(report)
    }
}

impl Store {
    /// The Go build caches under `gocache/`, one per toolchain and recipe
    /// (see `rebuild::steps::build::plan`). Called with the exclusive lock held, so no
    /// build is using them.
    fn gc_build_caches(
        &self,
        all: bool,
        unused_for: Duration,
        now: SystemTime,
        report: &mut GcReport,
    ) -> Result<(), ToolchainError> {
        let root = self.dir.join("gocache");
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ToolchainError::io("list", &root, e)),
        };
        for e in entries.flatten() {
            let path = e.path();
            // Only what reprove creates: directories named by a hex key. The
            // markers go with their directory; stray files are left alone.
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.bytes().all(|b| b.is_ascii_hexdigit()) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let marker = build_cache_marker(&path);
            let image_present = fs::read_to_string(&marker)
                .ok()
                .and_then(|t| t.trim().parse::<Digest>().ok())
                .is_some_and(|d| self.image_dir(&d).is_dir());
            let last_used = fs::metadata(&marker).and_then(|m| m.modified()).ok();
            let stale = all
                || !image_present
                || last_used.is_none_or(|t| now.duration_since(t).unwrap_or_default() >= unused_for);
            if stale {
                unpack::remove_tree(&path).map_err(|err| ToolchainError::io("remove", &path, err))?;
                match fs::remove_file(&marker) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(ToolchainError::io("remove", &marker, err)),
                }
                report.removed_build_caches += 1;
            } else {
                report.kept_build_caches += 1;
            }
        }
        Ok(())
    }

    /// The files of the referrers cache ([`crate::referrers::Cache`] in `referrers/`)
    /// written before `unused_for` (all of them with `all`), and leftover temporary
    /// files. Cache readers take no lock: one that loses a file fetches it again.
    fn gc_referrers(
        &self,
        all: bool,
        unused_for: Duration,
        now: SystemTime,
        report: &mut GcReport,
    ) -> Result<(), ToolchainError> {
        for sub in ["sha256", "api"] {
            let dir = self.dir.join("referrers").join(sub);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ToolchainError::io("list", &dir, e)),
            };
            for e in entries.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let written = e.metadata().and_then(|m| m.modified()).ok();
                let stale = all
                    || e.file_name().to_string_lossy().starts_with(".tmp-")
                    || written.is_none_or(|t| now.duration_since(t).unwrap_or_default() >= unused_for);
                if stale {
                    match fs::remove_file(e.path()) {
                        Ok(()) => report.removed_cached_referrers += 1,
                        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                        Err(err) => return Err(ToolchainError::io("remove", e.path(), err)),
                    }
                }
            }
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolchainError> + Send + 'static,
) -> Result<T, ToolchainError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolchainError::io("lock the cache", PathBuf::new(), io::Error::other(e)))?
}

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

fn compression_of(image: &str, media_type: &str) -> Result<Compression, ToolchainError> {
    let known = media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.");
    if known && (media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip")) {
        Ok(Compression::Gzip)
    } else if known && (media_type.ends_with("+zstd") || media_type.ends_with(".tar.zstd")) {
        Ok(Compression::Zstd)
    } else if known && media_type.ends_with(".tar") {
        Ok(Compression::None)
    } else {
        Err(ToolchainError::Manifest {
            image: image.to_string(),
            reason: format!("unsupported layer media type {media_type:?}"),
        })
    }
}

/// A blocking reader over the chunks the download task sends.
pub(crate) struct ChannelReader {
    pub(crate) rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader { rx, current: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Decompresses and applies one layer; returns the digest of the uncompressed tar.
fn apply_compressed(up: &mut Unpacker, raw: &mut dyn Read, compression: Compression) -> Result<Digest, UnpackError> {
    let mut raw = BufReader::with_capacity(1 << 16, raw);
    let digest = {
        let decompressed: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut raw),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw)),
            Compression::Zstd => Box::new(ZstdFrames::new(&mut raw)),
        };
        let mut hashing = HashingReader { inner: decompressed, hasher: sha2::Sha256::new() };
        up.apply_layer(&mut hashing)?;
        Digest::from_hasher(hashing.hasher)
    };
    // Whatever follows the compressed stream still belongs to the blob.
    io::copy(&mut raw, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(digest)
}

/// Decodes consecutive zstd frames.
pub(crate) struct ZstdFrames<R: BufRead> {
    input: Option<R>,
    decoder: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> ZstdFrames<R> {
    pub(crate) fn new(input: R) -> Self {
        ZstdFrames { input: Some(input), decoder: None }
    }

    /// The compressed stream, positioned after the last frame read.
    pub(crate) fn into_inner(self) -> Option<R> {
        self.input.or_else(|| self.decoder.map(|d| d.into_inner()))
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(d) = &mut self.decoder {
                let n = d.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // This frame is done; another may follow.
                self.input = self.decoder.take().map(|d| d.into_inner());
            }
            let Some(mut input) = self.input.take() else { return Ok(0) };
            if input.fill_buf()?.is_empty() {
                self.input = Some(input);
                return Ok(0);
            }
            self.decoder = Some(ruzstd::decoding::StreamingDecoder::new(input).map_err(io::Error::other)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_cache(store: &Store, key: &str, image: Option<&str>, age: Duration) -> PathBuf {
        let dir = store.dir().join("gocache").join(key);
        fs::create_dir_all(dir.join("0a")).unwrap();
        fs::write(dir.join("0a/entry-d"), b"cached").unwrap();
        if let Some(image) = image {
            let marker = build_cache_marker(&dir);
            fs::write(&marker, format!("{image}\n")).unwrap();
            File::options().write(true).open(&marker).unwrap().set_modified(SystemTime::now() - age).unwrap();
        }
        dir
    }

    #[test]
    fn gc_collects_build_caches_by_toolchain_and_age() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let present = format!("sha256:{}", "1".repeat(64));
        let gone = format!("sha256:{}", "2".repeat(64));
        let image_dir = store.dir().join("images/sha256").join("1".repeat(64));
        fs::create_dir_all(&image_dir).unwrap();
        fs::write(image_dir.join("last-used"), b"").unwrap();
        let day = Duration::from_secs(86400);
        let fresh = build_cache(&store, &"a".repeat(32), Some(&present), Duration::ZERO);
        let old = build_cache(&store, &"b".repeat(32), Some(&present), 40 * day);
        let orphan = build_cache(&store, &"c".repeat(32), Some(&gone), Duration::ZERO);
        let unmarked = build_cache(&store, &"d".repeat(32), None, Duration::ZERO);
        let stray = store.dir().join("gocache/notes.txt");
        fs::write(&stray, b"not ours").unwrap();

        let report = store.gc(&GcOptions::default()).unwrap();
        assert_eq!((report.removed_build_caches, report.kept_build_caches), (3, 1));
        assert!(fresh.is_dir() && build_cache_marker(&fresh).is_file());
        for d in [&old, &orphan, &unmarked] {
            assert!(!d.exists() && !build_cache_marker(d).exists(), "{} survived", d.display());
        }
        assert!(stray.is_file(), "gc removed a file it did not create");
        assert_eq!(report.kept_images, 1);

        let report = store.gc(&GcOptions { all: true, ..Default::default() }).unwrap();
        assert_eq!((report.removed_build_caches, report.kept_build_caches), (1, 0));
        assert!(!fresh.exists());
    }
}
