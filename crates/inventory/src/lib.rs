//! The Go binaries of a container image: what `reprove audit` rebuilds.
//!
//! What goes in: an [`ImageInput`] (a registry reference, an OCI layout, a
//! `docker save` tarball) and [`Options`]. What comes out: an [`Inventory`]: the
//! image (its digest, and whether a tag was resolved to it), its platforms and,
//! per platform, every Go executable visible in the final filesystem: its paths,
//! SHA-256, size, file format and machine, and its build info or why it cannot
//! be verified (`no build info`: Go linked it, its build ID or pclntab says so,
//! but its build info was removed).
//!
//! How: `oci::image_input` opens the image (manifests and configs checked),
//! `oci::walk` streams each platform's layers once each, in parallel, and hands
//! every regular file that starts like an executable (ELF, PE, Mach-O) to
//! [`goinfo::detect`], as syft's Go cataloger looks at every file, executable bit
//! or not; the walk's whiteouts and shadowing then keep the visible ones. Nothing is unpacked to disk; a binary's bytes are
//! written to [`Options::binaries_dir`] (named by their SHA-256) when the caller
//! wants them later.
//!
//! **Invariant:** a scan that fails (a digest that does not match, a bound
//! exceeded) returns only the error: nothing it read is reported, and the
//! binaries it wrote are removed.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use oci::image_input::{DigestOf, ImageInput, ImageSummary, OpenOptions};
use oci::walk::{Visitor, WalkOptions};
use oci::{Digest, Platform, ToolchainError};

/// Options of [`scan`].
#[derive(Clone, Default)]
pub struct Options {
    /// Registry access and the platforms to keep.
    pub open: OpenOptions,
    /// Bounds of the layer walk (largest binary read, unpacked size, entries).
    pub walk: WalkOptions,
    /// Where to write each binary found, as `<sha256>` (created if missing); `None`: not kept.
    pub binaries_dir: Option<PathBuf>,
    /// Told what the scan is doing.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("open", &self.open)
            .field("walk", &self.walk)
            .field("binaries_dir", &self.binaries_dir)
            .finish_non_exhaustive()
    }
}

/// Receives a scan's progress.
pub trait Progress: Send + Sync {
    /// Platform `platform` (its `index` of `count`) starts: `layers` layers to walk.
    fn platform(&self, index: usize, count: usize, platform: &str, layers: usize);
    /// A Go binary was found at `path`.
    fn binary(&self, path: &str);
}

/// Why a Go binary cannot be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverifiable {
    /// Go linked it (its Go build ID or pclntab says so), but it has no build info.
    NoBuildInfo {
        /// What showed it is Go: `Go build ID` or `pclntab`.
        evidence: &'static str,
        /// Why the build info cannot be read, in Go's words.
        reason: String,
    },
}

impl std::fmt::Display for Unverifiable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverifiable::NoBuildInfo { .. } => f.write_str("no build info"),
        }
    }
}

/// One Go executable of the image.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Its path in the image, absolute (`/usr/local/bin/tool`).
    pub path: String,
    /// Its other paths: hardlinks of the same layer.
    pub links: Vec<String>,
    /// The SHA-256 of its content, in hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its mode bits, from the layer.
    pub mode: u32,
    /// The layer it is in (0: bottom).
    pub layer: usize,
    /// The container format.
    pub format: goinfo::Format,
    /// What its header says about its platform.
    pub machine: Option<goinfo::Machine>,
    /// Its build info, as `go version -m` reads it.
    pub build_info: Option<goinfo::BuildInfo>,
    /// Why it cannot be verified, when it cannot.
    pub unverifiable: Option<Unverifiable>,
    /// Where its bytes were written ([`Options::binaries_dir`]).
    pub file: Option<PathBuf>,
}

/// The Go binaries of one platform's image.
#[derive(Debug, Clone)]
pub struct PlatformInventory {
    /// The platform.
    pub platform: Platform,
    /// Its manifest digest (`None` in a classic `docker save` archive).
    pub manifest_digest: Option<Digest>,
    /// Its config digest.
    pub config_digest: Digest,
    /// The Go binaries, by path.
    pub binaries: Vec<Binary>,
    /// What the walk skipped or did not read (entries with `..`, files larger than the bound), one line each.
    pub notes: Vec<String>,
    /// How many tar entries the walk read.
    pub entries: u64,
}

/// What [`scan`] found.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The image.
    pub image: ImageSummary,
    /// Its platforms, in the index's order.
    pub platforms: Vec<PlatformInventory>,
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The image could not be opened or read, or did not verify.
    #[error(transparent)]
    Image(#[from] ToolchainError),
    /// A binary could not be written to the binaries directory.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The blocking walk did not complete.
    #[error("the layer walk stopped: {0}")]
    Task(String),
}

impl ScanError {
    /// Whether the error is the input's (exit 2): a malformed, hostile or
    /// missing local image, a bad reference or platform; otherwise the
    /// infrastructure's (registry, network, local disk: exit 3).
    pub fn is_input(&self, input: &ImageInput) -> bool {
        match self {
            ScanError::Image(e) => match input {
                ImageInput::Registry(_) => e.is_input() || matches!(e, ToolchainError::NoMatchingPlatform { .. }),
                _ => true,
            },
            ScanError::Write { .. } | ScanError::Task(_) => false,
        }
    }
}

struct Found {
    sha256: String,
    detection: goinfo::Detection,
    machine: Option<goinfo::Machine>,
    file: Option<PathBuf>,
}

/// Decides what each candidate file is, on a thread of its own while the walk streams on.
struct Analyzer<'a> {
    dir: Option<&'a Path>,
    found: HashMap<usize, Found>,
    written: Vec<PathBuf>,
    error: Option<ScanError>,
    progress: Option<&'a dyn Progress>,
}

/// The walk's visitor: hands each candidate to the [`Analyzer`]'s thread.
struct Forward<'a> {
    tx: std::sync::mpsc::SyncSender<(usize, String, Vec<u8>)>,
    spare: &'a Spare,
}

/// Buffers the analyzer is done with, for the walk to read the next candidates into.
#[derive(Default)]
struct Spare(std::sync::Mutex<Vec<Vec<u8>>>);

/// Most buffers kept for reuse: they hold as much memory as the largest binaries read.
const SPARE_BUFFERS: usize = 2;

impl Spare {
    fn put(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        if let Ok(mut spare) = self.0.lock() {
            if spare.len() < SPARE_BUFFERS {
                spare.push(buffer);
            }
        }
    }

    fn take(&self) -> Vec<u8> {
        self.0.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default()
    }
}

impl Visitor for Forward<'_> {
    fn wants(&self, head: &[u8]) -> bool {
        goinfo::looks_executable(head)
    }

    fn file(&self, id: usize, path: &str, content: Vec<u8>) {
        // A send fails only when the analyzer is gone, which its join reports.
        let _ = self.tx.send((id, path.to_string(), content));
    }

    fn buffer(&self) -> Vec<u8> {
        self.spare.take()
    }
}

impl Analyzer<'_> {
    fn file(&mut self, id: usize, path: &str, content: &[u8]) {
        let detection = goinfo::detect(content);
        if detection == goinfo::Detection::NotGo || self.error.is_some() {
            return;
        }
        if let Some(p) = self.progress {
            p.binary(&format!("/{path}"));
        }
        let sha256 = stdx::sha256_hex(content);
        let machine = goinfo::read_machine(content);
        let file = match self.dir {
            Some(dir) => {
                let dest = dir.join(&sha256);
                if !dest.exists() {
                    if let Err(source) =
                        stdx::fs::write_atomic(&dest, content, ".bin", 0o644, stdx::fs::Existing::Replace)
                    {
                        self.error = Some(ScanError::Write { path: dest, source });
                        return;
                    }
                    self.written.push(dest.clone());
                }
                Some(dest)
            }
            None => None,
        };
        self.found.insert(id, Found { sha256, detection, machine, file });
    }
}

/// Walks platform `index` of `image` (blocking: downloads run on `runtime`'s tasks).
fn walk_platform(
    image: &oci::image_input::OpenedImage,
    index: usize,
    options: &Options,
    written: &mut Vec<PathBuf>,
) -> Result<PlatformInventory, ScanError> {
    let p = &image.platforms[index];
    if let Some(progress) = &options.progress {
        progress.platform(index, image.platforms.len(), &p.platform.to_string(), p.layers.len());
    }
    let mut layers = image.layers(index);
    let analyzer = Analyzer {
        dir: options.binaries_dir.as_deref(),
        found: HashMap::new(),
        written: Vec::new(),
        error: None,
        progress: options.progress.as_deref(),
    };
    // At most one binary waits while one is analyzed and each layer being streamed reads
    // the next: memory stays within (4 + layers streamed at once) times the largest binary.
    // Two more buffers are kept for reuse.
    let spare = Spare::default();
    let (walked, analyzer) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, String, Vec<u8>)>(1);
        let spare = &spare;
        let worker = scope.spawn(move || {
            let mut analyzer = analyzer;
            for (id, path, content) in rx {
                analyzer.file(id, &path, &content);
                spare.put(content);
            }
            analyzer
        });
        let forward = Forward { tx, spare };
        let walked = oci::walk::walk(&mut layers, &options.walk, &forward);
        drop(forward);
        (walked, worker.join())
    });
    let mut analyzer = analyzer.map_err(|_| ScanError::Task("the binary analysis stopped".into()))?;
    let mut ours = std::mem::take(&mut analyzer.written);
    let walk = match (walked, analyzer.error.take()) {
        (Ok(walk), None) => walk,
        (Err(e), _) => {
            written.append(&mut ours);
            return Err(e.into());
        }
        (Ok(_), Some(e)) => {
            written.append(&mut ours);
            return Err(e);
        }
    };
    let mut collector = analyzer;
    let mut notes = walk.notes;
    let mut binaries = Vec::new();
    for f in walk.files {
        let Some(found) = collector.found.remove(&f.id) else { continue };
        let mut paths = f.paths.iter().map(|p| format!("/{p}"));
        let Some(path) = paths.next() else { continue };
        let (format, build_info, unverifiable) = match found.detection {
            goinfo::Detection::Go { format, build_info } => (format, Some(*build_info), None),
            goinfo::Detection::GoWithoutBuildInfo { format, evidence, reason } => {
                (format, None, Some(Unverifiable::NoBuildInfo { evidence, reason }))
            }
            goinfo::Detection::NotGo => continue,
        };
        binaries.push(Binary {
            path,
            links: paths.collect(),
            sha256: found.sha256,
            size: f.size,
            mode: f.mode,
            layer: f.layer,
            format,
            machine: found.machine,
            build_info,
            unverifiable,
            file: found.file,
        });
    }
    binaries.sort_by(|a, b| a.path.cmp(&b.path));
    // Candidates the walk read before it knew they were hidden were written too: only
    // the binaries of the image's filesystem stay.
    let used: std::collections::HashSet<&Path> = binaries.iter().filter_map(|b| b.file.as_deref()).collect();
    for file in ours {
        if used.contains(file.as_path()) {
            written.push(file);
        } else {
            let _ = std::fs::remove_file(&file);
        }
    }
    notes.sort();
    Ok(PlatformInventory {
        platform: p.platform.clone(),
        manifest_digest: p.manifest_digest.clone(),
        config_digest: p.config_digest.clone(),
        binaries,
        notes,
        entries: walk.entries,
    })
}

/// Finds the Go binaries of `input`, on the caller's runtime (registry
/// requests; the layer walk runs on a blocking thread).
pub async fn scan(input: &ImageInput, options: &Options) -> Result<Inventory, ScanError> {
    if let Some(dir) = &options.binaries_dir {
        std::fs::create_dir_all(dir).map_err(|source| ScanError::Write { path: dir.clone(), source })?;
    }
    let image = oci::image_input::open(input, &options.open).await?;
    let options = options.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        let mut platforms = Vec::new();
        for index in 0..image.platforms.len() {
            match walk_platform(&image, index, &options, &mut written) {
                Ok(p) => platforms.push(p),
                Err(e) => {
                    for w in &written {
                        let _ = std::fs::remove_file(w);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Inventory { image: image.summary.clone(), platforms })
    })
    .await
    .map_err(|e| ScanError::Task(e.to_string()))?;
    result
}

/// [`scan`] for synchronous callers, on the caller's runtime.
pub fn scan_blocking(
    runtime: &tokio::runtime::Runtime,
    input: &ImageInput,
    options: &Options,
) -> Result<Inventory, ScanError> {
    runtime.block_on(scan(input, options))
}

/// The name of a file format in documents: `elf`, `pe`, `macho` (thin or universal), `xcoff`, `plan9`.
pub fn format_name(format: goinfo::Format) -> &'static str {
    match format {
        goinfo::Format::Elf => "elf",
        goinfo::Format::Pe => "pe",
        goinfo::Format::MachO | goinfo::Format::MachOFat => "macho",
        goinfo::Format::Xcoff => "xcoff",
        goinfo::Format::Plan9 => "plan9",
    }
}
