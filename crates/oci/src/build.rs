//! Deterministic toolchain images: a Go installation packaged as an OCI image.
//!
//! What it is: [`build`] turns a GOROOT into one layer with `GOROOT` at
//! `/usr/local/go` (plus `/tmp`, `/etc/passwd` and `/etc/group` when there is
//! no base image), a config with `GOROOT`, `PATH` and `GOTOOLCHAIN=local`, and
//! an OCI manifest. The bytes depend only on the GOROOT's contents: entries in
//! bytewise-sorted order, every mtime set to `SOURCE_DATE_EPOCH` or else the
//! `time` line of `$GOROOT/VERSION` (else 0), uid/gid 0 and no user names, modes
//! normalized to 0755/0644, no xattrs, gzip at level 6 with a zero header
//! mtime (or no compression). Symlinks that stay inside the GOROOT are kept;
//! those that lead out of it (Debian's `src -> ../../share/go-1.22/src`) are
//! replaced by what they point to.
//!
//! [`Image`] is also the general assembler (config + layers → manifest) that
//! writes an OCI image layout and pushes to a registry; the tests use it to
//! push crafted images.
//!
//! In: a GOROOT directory, or layers and a config. Out: an [`Image`] whose
//! blobs live in memory or in a work directory.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::json;
use sha2::Digest as _;

use super::registry::{Registry, OCI_INDEX, OCI_MANIFEST};
use super::{Digest, ImageRef, PinnedImage, Platform, RegistryOptions, ToolchainError};

/// Where the GOROOT goes in the image.
pub const IMAGE_GOROOT: &str = "/usr/local/go";
const PATH_ENV: &str = "PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The media types of the manifest and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI image manifest v1.
    Oci,
    /// Docker image manifest v2 schema 2.
    DockerV2,
}

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// Plain tar.
    None,
    /// gzip (level 6, header without name or mtime).
    Gzip,
    /// zstd (ruzstd's fastest level).
    Zstd,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobData {
    /// In memory.
    Memory(Bytes),
    /// In a file.
    File(PathBuf),
}

/// A blob of an image with its descriptor fields.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its bytes.
    pub data: BlobData,
}

impl Blob {
    /// A blob held in memory.
    pub fn from_bytes(media_type: impl Into<String>, data: impl Into<Bytes>) -> Blob {
        let data: Bytes = data.into();
        Blob {
            media_type: media_type.into(),
            digest: Digest::of(&data),
            size: data.len() as u64,
            data: BlobData::Memory(data),
        }
    }

    fn bytes(&self) -> Result<Bytes, ToolchainError> {
        match &self.data {
            BlobData::Memory(b) => Ok(b.clone()),
            BlobData::File(p) => fs::read(p).map(Bytes::from).map_err(|e| ToolchainError::io("read blob", p, e)),
        }
    }
}

/// A layer: its compressed blob and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The compressed blob.
    pub blob: Blob,
    /// The digest of the uncompressed tar (`diff_id`).
    pub diff_id: Digest,
}

impl Layer {
    /// Compresses a tar archive held in memory.
    pub fn from_tar(
        tar: &[u8],
        compression: LayerCompression,
        format: ManifestFormat,
    ) -> Result<Layer, ToolchainError> {
        let diff_id = Digest::of(tar);
        let data = match compression {
            LayerCompression::None => tar.to_vec(),
            LayerCompression::Gzip => {
                let mut enc = gzip_encoder(Vec::new());
                enc.write_all(tar)
                    .and_then(|()| enc.finish())
                    .map_err(|e| ToolchainError::io("gzip", PathBuf::new(), e))?
            }
            LayerCompression::Zstd => {
                ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
            }
        };
        Ok(Layer { blob: Blob::from_bytes(layer_media_type(compression, format), data), diff_id })
    }
}

fn gzip_encoder<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new().mtime(0).operating_system(255).write(w, flate2::Compression::new(6))
}

fn layer_media_type(c: LayerCompression, f: ManifestFormat) -> &'static str {
    match (f, c) {
        (ManifestFormat::Oci, LayerCompression::None) => "application/vnd.oci.image.layer.v1.tar",
        (ManifestFormat::Oci, LayerCompression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (ManifestFormat::Oci, LayerCompression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        (ManifestFormat::DockerV2, LayerCompression::None) => "application/vnd.docker.image.rootfs.diff.tar",
        (ManifestFormat::DockerV2, LayerCompression::Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        (ManifestFormat::DockerV2, LayerCompression::Zstd) => "application/vnd.docker.image.rootfs.diff.tar.zstd",
    }
}

/// An assembled image: manifest, config and layer blobs.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest bytes.
    pub manifest: Bytes,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// The manifest digest: what to pin.
    pub manifest_digest: Digest,
    /// The config blob.
    pub config: Blob,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
    /// The platform.
    pub platform: Platform,
}

impl Image {
    /// Assembles an image from a config (whose `rootfs.diff_ids` are set here) and layers.
    pub fn assemble(
        mut config: serde_json::Value,
        layers: Vec<Layer>,
        format: ManifestFormat,
    ) -> Result<Image, ToolchainError> {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        if let Some(obj) = config.as_object_mut() {
            obj.insert("rootfs".into(), json!({"type": "layers", "diff_ids": diff_ids}));
        }
        let platform = Platform {
            os: config.get("os").and_then(|v| v.as_str()).unwrap_or("linux").to_string(),
            architecture: config.get("architecture").and_then(|v| v.as_str()).unwrap_or("amd64").to_string(),
            variant: config.get("variant").and_then(|v| v.as_str()).map(str::to_string),
        };
        let (manifest_type, config_type) = match format {
            ManifestFormat::Oci => (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json"),
            ManifestFormat::DockerV2 => (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
            ),
        };
        let config_bytes = serde_json::to_vec(&config)
            .map_err(|e| ToolchainError::Manifest { image: String::new(), reason: format!("config: {e}") })?;
        let config = Blob::from_bytes(config_type, config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config.media_type, "digest": config.digest.to_string(), "size": config.size},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.blob.media_type, "digest": l.blob.digest.to_string(), "size": l.blob.size
            })).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(
            serde_json::to_vec(&manifest)
                .map_err(|e| ToolchainError::Manifest { image: String::new(), reason: format!("manifest: {e}") })?,
        );
        Ok(Image {
            manifest_digest: Digest::of(&manifest),
            manifest,
            manifest_media_type: manifest_type.to_string(),
            config,
            layers,
            platform,
        })
    }

    fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter().map(|l| &l.blob))
    }

    /// Writes an OCI image layout to `dir` (created if missing); `tag` names the manifest in `index.json`.
    pub fn write_layout(&self, dir: &Path, tag: Option<&str>) -> Result<(), ToolchainError> {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(|e| ToolchainError::io("create", &blobs, e))?;
        let write =
            |path: PathBuf, data: &[u8]| fs::write(&path, data).map_err(|e| ToolchainError::io("write", &path, e));
        for blob in self.blobs() {
            let dest = blobs.join(blob.digest.hex());
            match &blob.data {
                BlobData::Memory(b) => write(dest, b)?,
                BlobData::File(p) => {
                    fs::copy(p, &dest).map_err(|e| ToolchainError::io("copy blob to", &dest, e))?;
                }
            }
        }
        write(blobs.join(self.manifest_digest.hex()), &self.manifest)?;
        write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut desc = json!({
            "mediaType": self.manifest_media_type,
            "digest": self.manifest_digest.to_string(),
            "size": self.manifest.len(),
            "platform": platform_json(&self.platform),
        });
        if let Some(tag) = tag {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]});
        write(dir.join("index.json"), index.to_string().as_bytes())
    }

    /// Pushes the blobs and the manifest to `reference` (its tag, or its digest when it has no tag).
    pub async fn push(&self, reference: &ImageRef, options: &RegistryOptions) -> Result<(), ToolchainError> {
        let registry = Registry::new(reference, options)?;
        registry.authenticate(reference, oci_client::RegistryOperation::Push).await?;
        for blob in self.blobs() {
            registry.push_blob(reference, &blob.digest, blob.bytes()?).await?;
        }
        let target = if reference.tag().is_some() {
            ImageRef::clone(reference)
        } else {
            reference.with_digest(self.manifest_digest.clone())
        };
        registry.push_manifest(&target, &self.manifest_media_type, self.manifest.clone()).await
    }

    /// [`Image::push`] for synchronous callers, on the caller's runtime.
    pub fn push_blocking(
        &self,
        runtime: &tokio::runtime::Runtime,
        reference: &ImageRef,
        options: &RegistryOptions,
    ) -> Result<(), ToolchainError> {
        runtime.block_on(self.push(reference, options))
    }
}

fn platform_json(p: &Platform) -> serde_json::Value {
    let mut v = json!({"os": p.os, "architecture": p.architecture});
    if let Some(variant) = &p.variant {
        v["variant"] = json!(variant);
    }
    v
}

/// Pushes an image index over already pushed images (by digest) under `reference`'s tag.
pub async fn push_index(
    reference: &ImageRef,
    images: &[&Image],
    options: &RegistryOptions,
) -> Result<Digest, ToolchainError> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|i| json!({
            "mediaType": i.manifest_media_type,
            "digest": i.manifest_digest.to_string(),
            "size": i.manifest.len(),
            "platform": platform_json(&i.platform),
        })).collect::<Vec<_>>(),
    });
    let body = Bytes::from(index.to_string());
    let digest = Digest::of(&body);
    let registry = Registry::new(reference, options)?;
    registry.authenticate(reference, oci_client::RegistryOperation::Push).await?;
    registry.push_manifest(reference, OCI_INDEX, body).await?;
    Ok(digest)
}

/// Options of [`build`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The Go installation to package.
    pub goroot: PathBuf,
    /// A base image whose layers go below the GOROOT layer.
    pub base: Option<PinnedImage>,
    /// The mtime of every entry; `None`: `SOURCE_DATE_EPOCH`, else the VERSION file's time line, else 0.
    pub source_date_epoch: Option<u64>,
    /// Layer compression.
    pub compression: LayerCompression,
    /// Where the layer blob is written while building (a directory that exists).
    pub work_dir: PathBuf,
    /// Registry access for the base image.
    pub registry: RegistryOptions,
}

/// What [`build`] made.
#[derive(Debug, Clone)]
pub struct BuiltToolchain {
    /// The image.
    pub image: Image,
    /// The Go version from `$GOROOT/VERSION`.
    pub go_version: String,
    /// The mtime used for every entry.
    pub source_date_epoch: u64,
}

fn goroot_err(goroot: &Path, reason: impl Into<String>) -> ToolchainError {
    ToolchainError::GoRoot { path: goroot.to_path_buf(), reason: reason.into() }
}

/// Parses `$GOROOT/VERSION`: the version line and the `time` line as a Unix time.
fn read_version(goroot: &Path) -> Result<(String, Option<u64>), ToolchainError> {
    let text = fs::read_to_string(goroot.join("VERSION"))
        .map_err(|e| goroot_err(goroot, format!("cannot read VERSION ({e}); is this a GOROOT?")))?;
    let mut lines = text.lines();
    let version = lines.next().unwrap_or("").trim().to_string();
    if !version.starts_with("go") {
        return Err(goroot_err(goroot, format!("VERSION starts with {version:?}, not a Go version")));
    }
    let time = lines
        .find_map(|l| l.strip_prefix("time "))
        .and_then(|t| stdx::time::parse_rfc3339(t.trim()))
        .and_then(|t| u64::try_from(t).ok());
    Ok((version, time))
}

/// The GOOS/GOARCH a GOROOT was built for, from its `pkg/tool/<goos>_<goarch>` directory.
fn goroot_platform(goroot: &Path) -> Platform {
    let host = Platform::host();
    let Ok(entries) = fs::read_dir(goroot.join("pkg/tool")) else { return host };
    let mut found: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    found.sort();
    for name in found {
        if let Some((os, arch)) = name.split_once('_') {
            if os == "linux" {
                let variant = (arch == host.architecture).then(|| host.variant.clone()).flatten();
                return Platform { os: os.to_string(), architecture: arch.to_string(), variant };
            }
        }
    }
    host
}

/// Writes through to `inner`, hashing and counting.
struct HashWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Compressor<W: Write> {
    None(W),
    Gzip(Box<flate2::write::GzEncoder<W>>),
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(w) => w.flush(),
        }
    }
}

impl<W: Write> Compressor<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(w) => w.finish(),
        }
    }
}

struct TarWriter<'a, W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
    goroot: &'a Path,
    /// Real directories on the current walk, against symlink cycles.
    visiting: HashSet<PathBuf>,
}

impl<W: Write> TarWriter<'_, W> {
    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h
    }

    fn err(&self, path: &Path, e: io::Error) -> ToolchainError {
        goroot_err(self.goroot, format!("{}: {e}", path.display()))
    }

    fn dir(&mut self, name: &str) -> Result<(), ToolchainError> {
        let mut h = self.header(tar::EntryType::Directory, if name == "tmp/" { 0o1777 } else { 0o755 }, 0);
        self.builder.append_data(&mut h, name, io::empty()).map_err(|e| self.err(Path::new(name), e))
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), ToolchainError> {
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder.append_data(&mut h, name, data).map_err(|e| self.err(Path::new(name), e))
    }

    /// Adds the contents of directory `fs_dir` as `image_dir/…`; `rel` is its path below the GOROOT.
    fn walk(&mut self, fs_dir: &Path, image_dir: &str, rel: &[Vec<u8>]) -> Result<(), ToolchainError> {
        let real = fs::canonicalize(fs_dir).map_err(|e| self.err(fs_dir, e))?;
        if !self.visiting.insert(real.clone()) {
            return Err(goroot_err(self.goroot, format!("symlink cycle at {}", fs_dir.display())));
        }
        let mut children: Vec<_> = fs::read_dir(fs_dir)
            .map_err(|e| self.err(fs_dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(fs_dir, e))?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in children {
            let path = fs_dir.join(&name);
            let name_str =
                name.to_str().ok_or_else(|| goroot_err(self.goroot, format!("{} is not UTF-8", path.display())))?;
            let image_path = format!("{image_dir}/{name_str}");
            let mut child_rel = rel.to_vec();
            child_rel.push(name.as_bytes().to_vec());
            let meta = fs::symlink_metadata(&path).map_err(|e| self.err(&path, e))?;
            let meta = if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).map_err(|e| self.err(&path, e))?;
                if stays_inside(rel, target.as_os_str().as_bytes()) {
                    let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
                    self.builder.append_link(&mut h, &image_path, &target).map_err(|e| self.err(&path, e))?;
                    continue;
                }
                // Leads out of the GOROOT: package what it points to.
                fs::metadata(&path).map_err(|e| self.err(&path, e))?
            } else {
                meta
            };
            if meta.is_dir() {
                self.dir(&format!("{image_path}/"))?;
                self.walk(&path, &image_path, &child_rel)?;
            } else if meta.is_file() {
                let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
                let mut h = self.header(tar::EntryType::Regular, mode, meta.len());
                let file = File::open(&path).map_err(|e| self.err(&path, e))?;
                // A file that changes size while we read it would corrupt the tar: take exactly len bytes.
                let mut limited = file.take(meta.len());
                self.builder.append_data(&mut h, &image_path, &mut limited).map_err(|e| self.err(&path, e))?;
            }
            // Sockets, fifos and devices have no place in a toolchain image.
        }
        self.visiting.remove(&real);
        Ok(())
    }
}

/// Whether a symlink at `rel/<name>` with `target` resolves (lexically) inside the GOROOT.
fn stays_inside(rel: &[Vec<u8>], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return false;
    }
    let mut depth = rel.len() as i64;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Packages a Go installation as an image (blocking).
pub fn build(runtime: &tokio::runtime::Runtime, options: &BuildOptions) -> Result<BuiltToolchain, ToolchainError> {
    let goroot = &options.goroot;
    if !goroot.join("bin/go").is_file() {
        return Err(goroot_err(goroot, "no bin/go: not a Go installation"));
    }
    let (go_version, version_time) = read_version(goroot)?;
    let env_epoch = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse::<u64>().ok());
    let epoch = options.source_date_epoch.or(env_epoch).or(version_time).unwrap_or(0);
    let platform = goroot_platform(goroot);

    // The base image, pulled to get its config and layer blobs.
    let (base_config, base_layers) = match &options.base {
        Some(base) => fetch_base(runtime, base, &platform, options)?,
        None => (None, Vec::new()),
    };

    let blob_path = options.work_dir.join(format!("layer.{}.tmp", std::process::id()));
    let file = File::create(&blob_path).map_err(|e| ToolchainError::io("create", &blob_path, e))?;
    let compressed =
        HashWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: sha2::Sha256::new(), size: 0 };
    let compressor = match options.compression {
        LayerCompression::None => Compressor::None(compressed),
        LayerCompression::Gzip => Compressor::Gzip(Box::new(gzip_encoder(compressed))),
        LayerCompression::Zstd => {
            return Err(goroot_err(goroot, "zstd is not offered for built toolchain layers; use gzip or none"));
        }
    };
    let uncompressed = HashWriter { inner: compressor, hasher: sha2::Sha256::new(), size: 0 };
    let mut tw = TarWriter { builder: tar::Builder::new(uncompressed), mtime: epoch, goroot, visiting: HashSet::new() };
    tw.builder.follow_symlinks(false);
    if options.base.is_none() {
        tw.dir("etc/")?;
        tw.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
        tw.file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
        )?;
        tw.dir("tmp/")?;
    }
    tw.dir("usr/")?;
    tw.dir("usr/local/")?;
    tw.dir("usr/local/go/")?;
    tw.walk(goroot, "usr/local/go", &[])?;
    let uncompressed = tw.builder.into_inner().map_err(|e| ToolchainError::io("write", &blob_path, e))?;
    let diff_id = Digest::from_hasher(uncompressed.hasher);
    let mut compressed = uncompressed.inner.finish().map_err(|e| ToolchainError::io("write", &blob_path, e))?;
    compressed.flush().map_err(|e| ToolchainError::io("write", &blob_path, e))?;
    let (digest, size) = (Digest::from_hasher(compressed.hasher), compressed.size);
    let final_path = options.work_dir.join(digest.hex());
    fs::rename(&blob_path, &final_path).map_err(|e| ToolchainError::io("rename", &final_path, e))?;
    let layer = Layer {
        blob: Blob {
            media_type: layer_media_type(options.compression, ManifestFormat::Oci).to_string(),
            digest,
            size,
            data: BlobData::File(final_path),
        },
        diff_id,
    };

    let created = stdx::time::format_rfc3339(i64::try_from(epoch).unwrap_or(i64::MAX));
    let history_entry = json!({"created": created, "created_by": format!("reprove toolchain build ({go_version})")});
    let config = match base_config {
        None => json!({
            "created": created,
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {
                "Env": [PATH_ENV, format!("GOROOT={IMAGE_GOROOT}"), "GOTOOLCHAIN=local"],
                "WorkingDir": "/",
            },
            "history": [history_entry],
        }),
        Some(mut base) => {
            let env: Vec<String> = base["config"]["Env"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let base_path = env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .to_string();
            let mut env: Vec<String> = env
                .into_iter()
                .filter(|e| !e.starts_with("PATH=") && !e.starts_with("GOROOT=") && !e.starts_with("GOTOOLCHAIN="))
                .collect();
            env.push(format!("PATH={IMAGE_GOROOT}/bin:{base_path}"));
            env.push(format!("GOROOT={IMAGE_GOROOT}"));
            env.push("GOTOOLCHAIN=local".to_string());
            base["config"]["Env"] = json!(env);
            base["created"] = json!(created);
            match base["history"].as_array_mut() {
                Some(h) => h.push(history_entry),
                None => base["history"] = json!([history_entry]),
            }
            base
        }
    };
    let mut layers = base_layers;
    layers.push(layer);
    let image = Image::assemble(config, layers, ManifestFormat::Oci)?;
    Ok(BuiltToolchain { image, go_version, source_date_epoch: epoch })
}

/// Fetches a base image's config and layer blobs (verified) into the work directory.
fn fetch_base(
    runtime: &tokio::runtime::Runtime,
    base: &PinnedImage,
    platform: &Platform,
    options: &BuildOptions,
) -> Result<(Option<serde_json::Value>, Vec<Layer>), ToolchainError> {
    let reference = base.reference();
    runtime.block_on(async {
        let registry = Registry::new(reference, &options.registry)?;
        let resolved = registry.resolve(reference, platform).await?;
        let config_bytes = registry.small_blob(reference, resolved.manifest.config(), "config").await?;
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).map_err(|e| {
            ToolchainError::Manifest { image: reference.to_string(), reason: format!("bad image config: {e}") }
        })?;
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if diff_ids.len() != resolved.manifest.layers().len() {
            return Err(ToolchainError::Manifest {
                image: reference.to_string(),
                reason: "layer count and diff_ids differ".to_string(),
            });
        }
        let mut layers = Vec::new();
        for (desc, diff_id) in resolved.manifest.layers().iter().zip(diff_ids) {
            let digest: Digest = desc.digest().to_string().parse()?;
            let path = options.work_dir.join(digest.hex());
            let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(64);
            let mut file = File::create(&path).map_err(|e| ToolchainError::io("create", &path, e))?;
            let write = async {
                while let Some(chunk) = rx.recv().await {
                    if let Ok(b) = chunk {
                        file.write_all(&b)?;
                    }
                }
                Ok::<(), io::Error>(())
            };
            let (fetched, written) = tokio::join!(registry.stream_blob(reference, desc, "layer", tx, None), write);
            fetched?;
            written.map_err(|e| ToolchainError::io("write", &path, e))?;
            layers.push(Layer {
                blob: Blob {
                    media_type: desc.media_type().to_string(),
                    digest,
                    size: desc.size(),
                    data: BlobData::File(path),
                },
                diff_id: diff_id.parse()?,
            });
        }
        Ok((Some(config), layers))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_inside_goroot() {
        let rel = |s: &str| s.split('/').filter(|c| !c.is_empty()).map(|c| c.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(!stays_inside(&rel(""), b"../../share/go-1.22/src"));
        assert!(stays_inside(&rel("src/a"), b"../b"));
        assert!(!stays_inside(&rel("src"), b"../../x"));
        assert!(!stays_inside(&rel("src"), b"/etc"));
    }
}
