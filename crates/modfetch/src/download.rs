//! `reprove mod download`: fetches a main module's dependencies into a
//! module cache in the go command's exact layout, checking every go.mod and
//! zip against go.sum before it enters the cache.
//!
//! What goes in: the main module's directory, the resolved [`GoEnv`]
//! (GOPROXY, GONOPROXY, GOSUMDB, GOMODCACHE…), [`DownloadOptions`] and a
//! [`ChecksumDb`] for go.sum gaps. What comes out: a [`DownloadReport`] that
//! lists every module and file (cached, downloaded from which source, or
//! fetched `direct` by the go command), every [`SecurityError`] and every
//! [`Failure`] with its stable [`Code`]. An `Err` means the download could not
//! start (bad go.mod or go.sum, bad GOPROXY, no cache).
//!
//! How, step by step (Go's `modfetch` and `modcmd/download.go`):
//!
//! 1. **The module graph.** The build list is computed from the go.mod files
//!    in the cache ([`load_build_list`](gomod::load_build_list)); each round fetches the go.mod files
//!    it lacked (`@v/<v>.mod`) and loads again, until the graph is complete.
//!    Every go.mod, fetched or already cached, is checked against its go.sum
//!    `/go.mod` line (Go's `checkGoMod`).
//! 2. **The zips**, for the modules `go mod download` would fetch: with a
//!    `go` ≥ 1.17 main module, those its go.mod requires (at their selected
//!    versions, after `replace`); before 1.17, the whole build list.
//!    [`DownloadOptions::all`] takes the whole build list in every case.
//!    For each: `.info` (re-encoded as Go writes it), then the zip into
//!    `<v>.zip<random>.tmp` under `<v>.lock`, its data synced to disk, hashed,
//!    checked against go.sum, its `.ziphash` written, renamed into place (go.mod
//!    and .info files go through a synced temporary file and a rename too); then extracted under
//!    the same lock with Go's `.partial` marker, files 0444, directories made
//!    read-only. The `list` file is rewritten from the cached `.mod` files
//!    under its own lock, exactly as Go's `rewriteVersionList`.
//! 3. **GOPROXY** is walked per request with Go's fall-through rules
//!    ([`try_proxies`]); `direct` (and GONOPROXY paths) are delegated to
//!    `go mod download` into a scratch cache, and what it produced goes
//!    through the same checks.
//!
//! A go.sum mismatch is a [`SecurityError`]: nothing of that file enters the
//! cache, no new download starts, and the report names the module, both
//! hashes and where each came from. A file without a go.sum line is looked up
//! in the checksum database where Go would look, else it is a
//! [`Code::MissingGoSum`] failure: nothing unverified enters the cache.
//!
//! What it is not: a resolver (no queries, no upgrades) or a go.sum writer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};

use crate::direct::{go_mod_download, DirectError, GoDownloaded};
use crate::failure::{classify_output, code_for_fetch, Code, Tool};
use crate::proxy::client::{Client, ClientConfig, Sink};
use crate::proxy::{file_url, try_proxies, FetchError, FileKind, ProxyList, ProxyListError, Walk};
use crate::sumdb::{check_lines, use_sumdb, ChecksumDb, DbCheck, SumDbError};
use gomod::buildlist::{load_build_list_in, BuildList, BuildListError};
use gomod::cache::ModCache;
use gomod::dirhash::{errno_text, hash_go_mod, hash_zip, H1Hash};
use gomod::env::{EnvError, GoEnv};
use gomod::gosum::{GoSum, GoSumError, SumCheck};
use gomod::gover;
use gomod::lockedfile;
use gomod::module::{canonical_version, check as check_module, is_pseudo_version, ModuleVersion};
use gomod::semver;
use gomod::unzip::unzip;

/// The largest .info and .mod files accepted (Go's go.mod limit).
const MAX_SMALL: u64 = 16 << 20;
/// The largest zip accepted (`codehost.MaxZipFile`).
const MAX_ZIP: u64 = 500 << 20;

/// How to download.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// How many modules are fetched at once.
    pub jobs: usize,
    /// The HTTP client's settings.
    pub client: ClientConfig,
    /// The go command, for `direct`; `None` makes `direct` an error.
    pub go: Option<PathBuf>,
    /// Zips of the whole build list, not only what `go mod download` fetches.
    pub all: bool,
    /// The time limit of one `go mod download` for `direct`.
    pub direct_timeout: Duration,
    /// A rebuild's exported source tree: the main module's go.mod and go.sum
    /// are then read confined to its directory, and a local replacement's
    /// go.mod confined to this tree, which its directory must lie in
    /// ([`confined::ConfinedDir`]). `None`: read as go does.
    pub source_tree: Option<PathBuf>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            jobs: 16,
            client: ClientConfig::default(),
            go: None,
            all: false,
            direct_timeout: Duration::from_secs(600),
            source_tree: None,
        }
    }
}

/// Progress callbacks (a progress bar in the CLI). Called from the download thread.
pub trait Progress: Send + Sync {
    /// More files are planned.
    fn planned(&self, _files: u64) {}
    /// One file is done (`bytes` were transferred for it).
    fn finished(&self, _module: &ModuleVersion, _kind: FileKind, _bytes: u64) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {}

/// How a file got into the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// It was already there (and verified).
    Cached,
    /// Downloaded from a proxy by reprove.
    Downloaded,
    /// Fetched from the origin by the go command (`direct`).
    Direct,
}

impl FileStatus {
    /// A stable lowercase name.
    pub fn code(self) -> &'static str {
        match self {
            FileStatus::Cached => "cached",
            FileStatus::Downloaded => "downloaded",
            FileStatus::Direct => "direct",
        }
    }
}

/// What vouched for a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// A go.sum line (1-based).
    GoSum(usize),
    /// The checksum database.
    SumDb(String),
    /// Nothing checks this kind of file (.info).
    NotApplicable,
}

/// One file of a module in the cache.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// Which file.
    pub kind: FileKind,
    /// How it got there.
    pub status: FileStatus,
    /// Where it came from: a redacted URL, `direct`, or `cache`.
    pub source: String,
    /// The file in the cache.
    pub path: PathBuf,
    /// Bytes transferred (0 when cached).
    pub bytes: u64,
    /// Its h1 hash (.mod, .zip).
    pub hash: Option<String>,
    /// What vouched for it.
    pub verified: Verification,
}

/// A module of the download.
#[derive(Debug, Clone)]
pub struct ModuleResult {
    /// The module as in the build list.
    pub module: ModuleVersion,
    /// What was fetched for it (its replacement, if any).
    pub fetched: ModuleVersion,
    /// Whether its zip was wanted.
    pub zip_wanted: bool,
    /// Why a wanted zip was not downloaded, if it was not (nothing vouches for it).
    pub skipped: Option<String>,
    /// The files handled, in the order .mod, .info, .zip.
    pub files: Vec<FileOutcome>,
    /// The extracted directory, if extracted.
    pub dir: Option<PathBuf>,
}

/// Content that does not match what go.sum or the checksum database records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityError {
    /// The module.
    pub module: ModuleVersion,
    /// The .mod or the .zip.
    pub kind: FileKind,
    /// The recorded hash.
    pub expected: String,
    /// Where it is recorded (`go.sum:LINE`, `checksum database NAME`).
    pub expected_from: String,
    /// The hash of what was served.
    pub actual: String,
    /// Where that came from (a URL, `direct`, a cached file).
    pub actual_from: String,
}

impl std::fmt::Display for SecurityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.kind == FileKind::Mod { "go.mod" } else { "zip" };
        write!(
            f,
            "SECURITY ERROR: {}@{} ({what}): checksum mismatch\n\tdownloaded: {}\n\t  from {}\n\trecorded:   {}\n\t  in {}\n\
             The content does NOT match what was recorded: it was not written to the module cache.",
            self.module.path,
            self.module.version,
            self.actual,
            self.actual_from,
            self.expected,
            self.expected_from
        )
    }
}

/// A file that could not be fetched or verified.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The module.
    pub module: ModuleVersion,
    /// The file.
    pub kind: FileKind,
    /// The classification.
    pub code: Code,
    /// What happened.
    pub message: String,
    /// Whether it is a security failure (the checksum database's answer did
    /// not verify: bad signature, failed proof, forked tree): like a
    /// [`SecurityError`], it stops the download and is a negative verdict.
    pub security: bool,
}

/// The outcome of a download.
#[derive(Debug, Clone)]
pub struct DownloadReport {
    /// The main module.
    pub main: ModuleVersion,
    /// The module cache.
    pub modcache: PathBuf,
    /// The go.sum read, if any.
    pub go_sum: Option<PathBuf>,
    /// GOPROXY as used.
    pub goproxy: String,
    /// The modules, sorted by path and version.
    pub modules: Vec<ModuleResult>,
    /// Security errors (the download stopped at the first).
    pub security: Vec<SecurityError>,
    /// Other failures.
    pub failures: Vec<Failure>,
    /// Requests sent (attempts included).
    pub requests: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Bytes received from proxies.
    pub bytes: u64,
    /// Modules delegated to the go command.
    pub direct: u64,
}

impl DownloadReport {
    /// Whether everything was fetched and verified.
    pub fn ok(&self) -> bool {
        self.security.is_empty() && self.failures.is_empty()
    }
}

/// Why a download could not start.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The module environment is incomplete.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// GOPROXY is malformed.
    #[error("GOPROXY: {0}")]
    ProxyList(#[from] ProxyListError),
    /// The main module's go.mod cannot be used.
    #[error(transparent)]
    BuildList(#[from] BuildListError),
    /// go.sum cannot be read.
    #[error("reading {}: {}", path.display(), errno_text(cause))]
    ReadGoSum {
        /// go.sum.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// go.sum has malformed lines.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    GoSum(Vec<GoSumError>),
    /// go.sum cannot be read inside the main module's directory (a rebuild):
    /// a symlink out, a device, FIFO or socket, too large.
    #[error("{0}")]
    Refused(confined::ConfinedError),
    /// GOMODCACHE is relative (Go refuses it too).
    #[error("GOMODCACHE entry is relative; must be absolute path: {0:?}")]
    RelativeCache(PathBuf),
    /// The cache directory cannot be created or used.
    #[error("module cache {}: {}", path.display(), errno_text(cause))]
    Cache {
        /// The directory.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// The HTTP client or async runtime could not start.
    #[error("{0}")]
    Setup(String),
}

/// Why one file failed, before it becomes a [`Failure`] or a [`SecurityError`].
#[derive(Debug, Clone)]
enum Problem {
    Security(Box<SecurityError>),
    Fail(Code, String),
    /// The checksum database did not verify.
    Untrusted(String),
}

impl Problem {
    fn fetch(e: &FetchError) -> Problem {
        Problem::Fail(code_for_fetch(e), e.to_string())
    }

    fn io(what: &str, path: &Path, e: &io::Error) -> Problem {
        Problem::Fail(Code::Unknown, format!("{what} {}: {}", path.display(), errno_text(e)))
    }
}

/// What the go command fetched for one module (`direct`).
#[derive(Debug, Clone)]
struct DirectFiles {
    files: GoDownloaded,
}

/// One `go mod download` per module, shared by every file that needs it.
type DirectCell = Arc<OnceCell<Result<DirectFiles, String>>>;

struct Ctx {
    cache: ModCache,
    list: ProxyList,
    client: Client,
    sum: GoSum,
    go_sum_path: PathBuf,
    sumdb: Arc<dyn ChecksumDb>,
    gosumdb: String,
    gonosumdb: String,
    env: GoEnv,
    opts: DownloadOptions,
    cpu: Semaphore,
    net: Semaphore,
    abort: AtomicBool,
    progress: Arc<dyn Progress>,
    direct: Mutex<HashMap<ModuleVersion, DirectCell>>,
    direct_count: AtomicU64,
    scratch: OnceLock<Result<tempfile::TempDir, String>>,
    security: Mutex<Vec<SecurityError>>,
}

/// [`download_async`] for synchronous callers, on the caller's runtime.
pub fn download(
    runtime: &tokio::runtime::Runtime,
    main_dir: &Path,
    env: &GoEnv,
    opts: &DownloadOptions,
    sumdb: Arc<dyn ChecksumDb>,
    progress: Arc<dyn Progress>,
) -> Result<DownloadReport, DownloadError> {
    runtime.block_on(download_async(main_dir, env, opts, sumdb, progress))
}

/// Downloads the dependencies of the main module in `main_dir`.
pub async fn download_async(
    main_dir: &Path,
    env: &GoEnv,
    opts: &DownloadOptions,
    sumdb: Arc<dyn ChecksumDb>,
    progress: Arc<dyn Progress>,
) -> Result<DownloadReport, DownloadError> {
    let (modcache, goproxy, list) = cache_and_proxies(env)?;
    let go_sum_path = main_dir.join("go.sum");
    let read = match &opts.source_tree {
        Some(_) => confined::ConfinedDir::open_followed(main_dir)
            .and_then(|d| d.read_optional("go.sum", confined::limits::SUMS))
            .map_err(DownloadError::Refused)?,
        None => match fs::read(&go_sum_path) {
            Ok(data) => Some(data),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(cause) => return Err(DownloadError::ReadGoSum { path: go_sum_path, cause }),
        },
    };
    let (sum, have_sum) = match read {
        Some(data) => (GoSum::parse(&go_sum_path.display().to_string(), &data).map_err(DownloadError::GoSum)?, true),
        None => (GoSum::default(), false),
    };
    let ctx = new_ctx(env, opts, sumdb, (&modcache, list), sum, go_sum_path.clone(), progress)?;
    let main_dir = main_dir.to_path_buf();
    let (bl, modules, failures) = run(ctx.clone(), main_dir).await?;
    if let Some(Ok(scratch)) = ctx.scratch.get() {
        remove_all(scratch.path());
    }
    let security = ctx.security.lock().map(|s| s.clone()).unwrap_or_default();
    let stats = ctx.client.stats();
    Ok(DownloadReport {
        main: bl.main,
        modcache,
        go_sum: have_sum.then_some(go_sum_path),
        goproxy,
        modules,
        security,
        failures,
        requests: stats.requests.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        bytes: stats.bytes.load(Ordering::Relaxed),
        direct: ctx.direct_count.load(Ordering::Relaxed),
    })
}

/// GOMODCACHE (absolute, created), GOPROXY and its parsed list.
fn cache_and_proxies(env: &GoEnv) -> Result<(PathBuf, String, ProxyList), DownloadError> {
    let modcache = env.modcache()?;
    if !modcache.is_absolute() {
        return Err(DownloadError::RelativeCache(modcache));
    }
    fs::create_dir_all(&modcache).map_err(|cause| DownloadError::Cache { path: modcache.clone(), cause })?;
    let goproxy = env.goproxy()?.to_string();
    let list = ProxyList::parse(&goproxy, env.get("GONOPROXY"))?;
    Ok((modcache, goproxy, list))
}

/// The download's shared state over `sum` (read from `go_sum_path`, the name
/// its mismatches cite), for the cache and proxies of [`cache_and_proxies`].
fn new_ctx(
    env: &GoEnv,
    opts: &DownloadOptions,
    sumdb: Arc<dyn ChecksumDb>,
    (modcache, list): (&Path, ProxyList),
    sum: GoSum,
    go_sum_path: PathBuf,
    progress: Arc<dyn Progress>,
) -> Result<Arc<Ctx>, DownloadError> {
    let client = Client::new(opts.client.clone()).map_err(|e| DownloadError::Setup(e.to_string()))?;
    // Extraction is bound by file creation more than by the CPU: a few more
    // workers than cores keep the disk busy.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2) * 4;
    let ctx = Arc::new(Ctx {
        cache: ModCache::new(modcache),
        list,
        client,
        sum,
        go_sum_path,
        sumdb,
        gosumdb: env.get("GOSUMDB").to_string(),
        gonosumdb: env.get("GONOSUMDB").to_string(),
        env: env.clone(),
        opts: opts.clone(),
        cpu: Semaphore::new(cpus),
        net: Semaphore::new(opts.jobs.max(1)),
        abort: AtomicBool::new(false),
        progress,
        direct: Mutex::new(HashMap::new()),
        direct_count: AtomicU64::new(0),
        scratch: OnceLock::new(),
        security: Mutex::new(Vec::new()),
    });
    Ok(ctx)
}

/// One module version fetched for a rebuild of a released version (what
/// `go install PATH@VERSION` fetches of its main module), by
/// [`download_version`].
#[derive(Debug, Clone)]
pub struct VersionReport {
    /// The module, its files (.info, .zip, .mod) and its extracted directory.
    pub module: ModuleResult,
    /// GOPROXY as used.
    pub goproxy: String,
    /// Content that does not match what vouches for it; nothing of it entered the cache.
    pub security: Vec<SecurityError>,
    /// Files that could not be fetched or verified.
    pub failures: Vec<Failure>,
}

impl VersionReport {
    /// Whether everything was fetched and verified.
    pub fn ok(&self) -> bool {
        self.security.is_empty() && self.failures.is_empty() && self.module.dir.is_some()
    }

    /// The zip's file outcome, when it was fetched and verified.
    pub fn zip(&self) -> Option<&FileOutcome> {
        self.module.files.iter().find(|f| f.kind == FileKind::Zip)
    }
}

/// [`download_version_async`] for synchronous callers, on the caller's runtime.
pub fn download_version(
    runtime: &tokio::runtime::Runtime,
    m: &ModuleVersion,
    env: &GoEnv,
    opts: &DownloadOptions,
    sumdb: Arc<dyn ChecksumDb>,
    sum: (&str, &[u8]),
) -> Result<VersionReport, DownloadError> {
    runtime.block_on(download_version_async(m, env, opts, sumdb, sum))
}

/// Fetches the module version `m` into GOMODCACHE as `go mod download
/// PATH@VERSION` would: `.info`; the zip, checked against the go.sum lines
/// `sum` (its name, for messages, and its text; a rebuild passes the sum the
/// binary records), else the checksum database, then extracted; then its
/// go.mod (`.mod`), checked against `sum`'s `/go.mod` line, else the checksum
/// database, else the go.mod inside the verified zip (`module PATH` when it
/// has none, as Go synthesizes it): a module's `.mod` is its zip's go.mod.
/// Nothing enters the cache before it matched.
pub async fn download_version_async(
    m: &ModuleVersion,
    env: &GoEnv,
    opts: &DownloadOptions,
    sumdb: Arc<dyn ChecksumDb>,
    (sum_name, sum_text): (&str, &[u8]),
) -> Result<VersionReport, DownloadError> {
    let (modcache, goproxy, list) = cache_and_proxies(env)?;
    let sum = GoSum::parse(sum_name, sum_text).map_err(DownloadError::GoSum)?;
    let quiet: Arc<dyn Progress> = Arc::new(Quiet);
    let ctx =
        new_ctx(env, opts, sumdb.clone(), (&modcache, list.clone()), sum, PathBuf::from(sum_name), quiet.clone())?;
    let mut failures = Vec::new();
    let mut result = ModuleResult {
        module: m.clone(),
        fetched: m.clone(),
        zip_wanted: true,
        skipped: None,
        files: Vec::new(),
        dir: None,
    };
    match fetch_info(&ctx, m).await {
        Ok(f) => result.files.push(f),
        Err(p) => record(&ctx, &mut failures, m, FileKind::Info, p),
    }
    if failures.is_empty() {
        match fetch_zip(&ctx, m).await {
            Ok((f, dir)) => {
                result.files.push(f);
                result.dir = Some(dir);
            }
            Err(p) => record(&ctx, &mut failures, m, FileKind::Zip, p),
        }
    }
    let mut security = ctx.security.lock().map(|s| s.clone()).unwrap_or_default();
    let Some(dir) = result.dir.clone() else {
        return Ok(VersionReport { module: result, goproxy, security, failures });
    };
    let mod_version = format!("{}/go.mod", m.version);
    let has_line = ctx.sum.hashes(&m.path, &mod_version).next().is_some();
    let mod_ctx = if !has_line && !use_sumdb(&ctx.gosumdb, &ctx.gonosumdb, &m.path) {
        let in_zip = confined::ConfinedDir::open_followed(&dir)
            .and_then(|d| d.read_optional("go.mod", confined::limits::CONFIG))
            .map_err(DownloadError::Refused)?;
        let data = in_zip.unwrap_or_else(|| format!("module {}\n", m.path).into_bytes());
        let line = format!("{} {mod_version} {}\n", m.path, hash_go_mod(&data));
        let name = format!("the go.mod in the verified zip of {m}");
        let sum = GoSum::parse(&name, line.as_bytes()).map_err(DownloadError::GoSum)?;
        new_ctx(env, opts, sumdb, (&modcache, list), sum, PathBuf::from(name), quiet)?
    } else {
        ctx.clone()
    };
    let cached_mod = ctx.cache.cache_path(m, "mod").ok().filter(|p| p.is_file());
    let go_mod = match cached_mod {
        Some(p) => match fs::read(&p) {
            Ok(data) => {
                let hash = hash_go_mod(&data);
                let from = format!("cached file {}", p.display());
                verify(&mod_ctx, m, FileKind::Mod, &hash, &from)
                    .await
                    .map(|v| cached(FileKind::Mod, p.clone(), Some(hash.to_string()), v))
            }
            Err(e) => Err(Problem::io("reading", &p, &e)),
        },
        None => fetch_go_mod(&mod_ctx, m).await,
    };
    match go_mod {
        Ok(f) => result.files.push(f),
        Err(p) => {
            record(&mod_ctx, &mut failures, m, FileKind::Mod, p);
            security.extend(mod_ctx.security.lock().map(|s| s.clone()).unwrap_or_default());
            result.dir = None;
        }
    }
    Ok(VersionReport { module: result, goproxy, security, failures })
}

type Outcomes = (BuildList, Vec<ModuleResult>, Vec<Failure>);

async fn run(ctx: Arc<Ctx>, main_dir: PathBuf) -> Result<Outcomes, DownloadError> {
    let mut failures: Vec<Failure> = Vec::new();
    let mut mod_files: BTreeMap<ModuleVersion, FileOutcome> = BTreeMap::new();
    let mut given_up: HashSet<ModuleVersion> = HashSet::new();

    // 1. The module graph, one round per missing layer of go.mod files.
    let bl = loop {
        let (dir, cache, tree) = (main_dir.clone(), ctx.cache.clone(), ctx.opts.source_tree.clone());
        let bl = tokio::task::spawn_blocking(move || load_build_list_in(&dir, &cache, tree.as_deref()))
            .await
            .map_err(|e| DownloadError::Setup(e.to_string()))??;
        let missing: Vec<ModuleVersion> =
            bl.missing_go_mods.iter().filter(|m| !given_up.contains(*m)).cloned().collect();
        if missing.is_empty() || ctx.abort.load(Ordering::SeqCst) {
            break bl;
        }
        ctx.progress.planned(missing.len() as u64);
        let mut set = tokio::task::JoinSet::new();
        for m in missing {
            let ctx = ctx.clone();
            set.spawn(async move {
                let r = fetch_go_mod(&ctx, &m).await;
                (m, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((m, r)) = joined else { continue };
            match r {
                Ok(out) => {
                    mod_files.insert(m, out);
                }
                Err(p) => {
                    given_up.insert(m.clone());
                    record(&ctx, &mut failures, &m, FileKind::Mod, p);
                }
            }
        }
    };

    // Every go.mod the graph was loaded from, checked against go.sum (the
    // ones fetched in this run were checked before they were written).
    for g in &bl.go_mods {
        if mod_files.contains_key(&g.module) || ctx.abort.load(Ordering::SeqCst) {
            continue;
        }
        let from = format!("cached file {}", g.file.display());
        match verify(&ctx, &g.module, FileKind::Mod, &g.hash, &from).await {
            Ok(v) => {
                mod_files.insert(
                    g.module.clone(),
                    FileOutcome {
                        kind: FileKind::Mod,
                        status: FileStatus::Cached,
                        source: "cache".into(),
                        path: g.file.clone(),
                        bytes: 0,
                        hash: Some(g.hash.to_string()),
                        verified: v,
                    },
                );
            }
            Err(p) => record(&ctx, &mut failures, &g.module, FileKind::Mod, p),
        }
    }
    for e in &bl.errors {
        let missing = bl.missing_go_mods.iter().any(|m| given_up.contains(m) && e.message.starts_with(&m.to_string()));
        if !missing && !failures.iter().any(|f| f.module == e.module) {
            failures.push(Failure {
                module: e.module.clone(),
                kind: FileKind::Mod,
                code: Code::Unknown,
                message: e.message.replace('\n', " "),
                security: false,
            });
        }
    }

    // 2. The zips.
    let wanted = zip_set(&bl, ctx.opts.all);
    let mut results: BTreeMap<ModuleVersion, ModuleResult> = BTreeMap::new();
    for m in &bl.modules {
        let fetched = bl.replaced.get(m).cloned().unwrap_or_else(|| m.clone());
        let mut files = Vec::new();
        if let Some(f) = mod_files.get(&fetched) {
            files.push(f.clone());
        }
        results.insert(
            m.clone(),
            ModuleResult {
                module: m.clone(),
                fetched,
                zip_wanted: wanted.contains(m),
                skipped: None,
                files,
                dir: None,
            },
        );
    }
    let mut set = tokio::task::JoinSet::new();
    let mut planned = 0;
    let required: HashSet<&str> = bl.main_go_mod.require.iter().map(|r| r.module.path.as_str()).collect();
    for r in results.values_mut() {
        if !r.zip_wanted || r.fetched.version.is_empty() {
            continue;
        }
        // A zip that neither go.sum nor the checksum database can vouch for
        // never enters the cache. Go would take it on trust (GOSUMDB=off,
        // GONOSUMDB); reprove skips it when the main module does not require
        // it (a tidy go.sum lists every module that provides packages) and
        // fails otherwise.
        let f = &r.fetched;
        let has_sum = ctx.sum.hashes(&f.path, &f.version).any(|l| l.hash.starts_with("h1:"));
        if !has_sum && !use_sumdb(&ctx.gosumdb, &ctx.gonosumdb, &f.path) {
            let why = if ctx.gosumdb == "off" { "GOSUMDB=off" } else { "GONOSUMDB/GOPRIVATE matches it" };
            if required.contains(r.module.path.as_str()) {
                failures.push(Failure {
                    module: f.clone(),
                    kind: FileKind::Zip,
                    code: Code::MissingGoSum,
                    message: format!("missing go.sum entry for {f} and the checksum database is not consulted ({why})"),
                    security: false,
                });
            } else {
                r.skipped = Some(format!(
                    "not in go.sum and the checksum database is not consulted ({why}): not needed by a build if go.sum is tidy"
                ));
            }
            continue;
        }
        planned += 2;
        let (ctx, m) = (ctx.clone(), r.fetched.clone());
        let key = r.module.clone();
        set.spawn(async move {
            let out = fetch_module(&ctx, &m).await;
            (key, out)
        });
    }
    ctx.progress.planned(planned);
    while let Some(joined) = set.join_next().await {
        let Ok((key, (files, dir, problems))) = joined else { continue };
        let fetched = results.get(&key).map(|r| r.fetched.clone()).unwrap_or_default();
        for (kind, p) in problems {
            record(&ctx, &mut failures, &fetched, kind, p);
        }
        if let Some(r) = results.get_mut(&key) {
            r.files.extend(files);
            r.dir = dir;
        }
    }
    failures.sort_by(|a, b| (&a.module, a.kind as u8).cmp(&(&b.module, b.kind as u8)));
    Ok((bl, results.into_values().collect(), failures))
}

fn record(ctx: &Ctx, failures: &mut Vec<Failure>, m: &ModuleVersion, kind: FileKind, p: Problem) {
    match p {
        Problem::Security(s) => {
            ctx.abort.store(true, Ordering::SeqCst);
            if let Ok(mut v) = ctx.security.lock() {
                if !v.contains(&s) {
                    v.push(*s);
                }
            }
        }
        Problem::Fail(code, message) => {
            if !ctx.abort.load(Ordering::SeqCst) || code != Code::Unknown || !message.starts_with("cancelled") {
                failures.push(Failure { module: m.clone(), kind, code, message, security: false });
            }
        }
        Problem::Untrusted(message) => {
            ctx.abort.store(true, Ordering::SeqCst);
            failures.push(Failure { module: m.clone(), kind, code: Code::SumDb, message, security: true });
        }
    }
}

/// The modules whose zips `go mod download` (no arguments) fetches.
fn zip_set(bl: &BuildList, all: bool) -> HashSet<ModuleVersion> {
    let go = bl.main_go_mod.go.clone().unwrap_or_else(|| "1.16".into());
    if all || gover::compare(&go, "1.17") == std::cmp::Ordering::Less {
        return bl.modules.iter().cloned().collect();
    }
    let required: HashSet<&str> = bl.main_go_mod.require.iter().map(|r| r.module.path.as_str()).collect();
    bl.modules.iter().filter(|m| required.contains(m.path.as_str())).cloned().collect()
}

/// Checks a hash against go.sum, then the checksum database (Go's `checkModSum`).
async fn verify(
    ctx: &Ctx,
    m: &ModuleVersion,
    kind: FileKind,
    hash: &H1Hash,
    actual_from: &str,
) -> Result<Verification, Problem> {
    let go_mod = kind == FileKind::Mod;
    let version = if go_mod { format!("{}/go.mod", m.version) } else { m.version.clone() };
    match ctx.sum.check(m, go_mod, hash.as_str()) {
        SumCheck::Match => {
            let line = ctx.sum.hashes(&m.path, &version).find(|l| l.hash == hash.as_str()).map_or(0, |l| l.line);
            Ok(Verification::GoSum(line))
        }
        SumCheck::Mismatch { want, line } => Err(Problem::Security(Box::new(SecurityError {
            module: m.clone(),
            kind,
            expected: want,
            expected_from: format!("{}:{line}", ctx.go_sum_path.display()),
            actual: hash.to_string(),
            actual_from: actual_from.to_string(),
        }))),
        SumCheck::Missing => {
            if !use_sumdb(&ctx.gosumdb, &ctx.gonosumdb, &m.path) {
                let why = if ctx.gosumdb == "off" { "GOSUMDB=off" } else { "GONOSUMDB/GOPRIVATE matches it" };
                return Err(Problem::Fail(
                    Code::MissingGoSum,
                    format!(
                        "missing go.sum entry for {m}{} (hash {hash}) and the checksum database is not consulted ({why})",
                        if go_mod { "/go.mod" } else { "" }
                    ),
                ));
            }
            let name = ctx.sumdb.name().to_string();
            let what = if go_mod { format!("{m}/go.mod") } else { m.to_string() };
            let lines = ctx.sumdb.lookup(&m.path, &m.version).await.map_err(|e| match e {
                SumDbError::Verification { .. } => Problem::Untrusted(format!("verifying {what}: {e}")),
                // Nothing reprove can consult: go.sum must be completed (input).
                SumDbError::Disabled | SumDbError::Unavailable { .. } => {
                    Problem::Fail(Code::MissingGoSum, format!("missing go.sum entry for {what}, and {e}"))
                }
                // The database was consulted and failed (infrastructure).
                e => Problem::Fail(Code::SumDb, format!("verifying {what}: {e}")),
            })?;
            match check_lines(&lines, &m.path, &version, hash.as_str()) {
                DbCheck::Match => Ok(Verification::SumDb(name)),
                DbCheck::Mismatch(want) => Err(Problem::Security(Box::new(SecurityError {
                    module: m.clone(),
                    kind,
                    expected: want,
                    expected_from: format!("checksum database {name}"),
                    actual: hash.to_string(),
                    actual_from: actual_from.to_string(),
                }))),
                DbCheck::Missing => Err(Problem::Fail(
                    Code::SumDb,
                    format!("verifying {m}: checksum missing from the response of checksum database {name}"),
                )),
            }
        }
    }
}

fn cancelled() -> Problem {
    Problem::Fail(Code::Unknown, "cancelled after a security error".into())
}

/// Fetches one file's bytes through the GOPROXY list; `Ok(None)` means `direct`.
async fn fetch_small(ctx: &Ctx, m: &ModuleVersion, kind: FileKind) -> Result<Option<(Vec<u8>, String)>, Problem> {
    let walk = try_proxies(&ctx.list, &m.path, |base| async move {
        let url = file_url(&base, &m.path, &m.version, kind)
            .map_err(|e| FetchError::new(crate::proxy::FetchErrorKind::Invalid, "", e.to_string()))?;
        let data = ctx.client.get_bytes(&url, MAX_SMALL).await?;
        Ok((data, crate::proxy::redact(&url)))
    })
    .await
    .map_err(|e| Problem::fetch(&e))?;
    Ok(match walk {
        Walk::Fetched(v, _) => Some(v),
        Walk::Direct => None,
    })
}

/// Step 1 for one module version: its go.mod into `cache/download/…/@v/<v>.mod`.
async fn fetch_go_mod(ctx: &Arc<Ctx>, m: &ModuleVersion) -> Result<FileOutcome, Problem> {
    let _permit = ctx.net.acquire().await.map_err(|_| cancelled())?;
    if ctx.abort.load(Ordering::SeqCst) {
        return Err(cancelled());
    }
    let path = ctx.cache.cache_path(m, "mod").map_err(|e| Problem::Fail(Code::Unknown, format!("{m}: {e}")))?;
    let (data, source, status) = match fetch_small(ctx, m, FileKind::Mod).await? {
        Some((d, s)) => (d, s, FileStatus::Downloaded),
        None => {
            let files = direct_files(ctx, m).await?;
            let p = files.files.go_mod.clone().ok_or_else(|| no_direct_file(m, "GoMod"))?;
            let d = fs::read(&p).map_err(|e| Problem::io("reading", &p, &e))?;
            (d, "direct".to_string(), FileStatus::Direct)
        }
    };
    let hash = hash_go_mod(&data);
    let verified = verify(ctx, m, FileKind::Mod, &hash, &source).await?;
    let bytes = data.len() as u64;
    let p = path.clone();
    blocking(ctx, move || write_cache_file(&p, &data).map_err(|e| Problem::io("writing", &p, &e))).await?;
    ctx.progress.finished(m, FileKind::Mod, bytes);
    Ok(FileOutcome { kind: FileKind::Mod, status, source, path, bytes, hash: Some(hash.to_string()), verified })
}

fn no_direct_file(m: &ModuleVersion, what: &str) -> Problem {
    Problem::Fail(Code::Unknown, format!("go mod download {m} reported no {what} file"))
}

/// Runs CPU- or disk-bound work on the blocking pool, bounded by the CPU semaphore.
async fn blocking<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let _permit = ctx.cpu.acquire().await.map_err(|_| cancelled())?;
    tokio::task::spawn_blocking(f).await.map_err(|e| Problem::Fail(Code::Unknown, format!("worker failed: {e}")))?
}

/// `direct`: the files `go mod download` produces for `m`, once per module.
async fn direct_files(ctx: &Arc<Ctx>, m: &ModuleVersion) -> Result<DirectFiles, Problem> {
    let Some(go) = ctx.opts.go.clone() else {
        return Err(Problem::Fail(
            Code::LookupDisabled,
            format!("{m}: GOPROXY sends this module to `direct`, which needs the go command, and none was found"),
        ));
    };
    let cell = {
        let mut map = ctx.direct.lock().map_err(|_| Problem::Fail(Code::Unknown, "lock poisoned".into()))?;
        map.entry(m.clone()).or_default().clone()
    };
    let r = cell
        .get_or_init(|| async {
            let scratch = ctx
                .scratch
                .get_or_init(|| {
                    let parent = ctx.cache.root().join("cache");
                    fs::create_dir_all(&parent)
                        .and_then(|()| tempfile::Builder::new().prefix(".reprove-direct-").tempdir_in(&parent))
                        .map_err(|e| format!("creating a scratch cache under {}: {e}", parent.display()))
                })
                .as_ref()
                .map(|d| d.path().to_path_buf())
                .map_err(|e| e.clone())?;
            ctx.direct_count.fetch_add(1, Ordering::Relaxed);
            let (env, m2, timeout) = (ctx.env.clone(), m.clone(), ctx.opts.direct_timeout);
            let work = scratch.join("work");
            let cache = scratch.join("modcache");
            let res = tokio::task::spawn_blocking(move || {
                fs::create_dir_all(&work).map_err(|e| DirectError { message: e.to_string(), status: None })?;
                go_mod_download(&go, &env, &m2, &work, &cache, timeout)
            })
            .await
            .map_err(|e| e.to_string())?;
            res.map(|files| DirectFiles { files }).map_err(|e| e.message)
        })
        .await;
    r.clone().map_err(|msg| {
        let d = classify_output(Tool::Go, Some(1), &msg);
        Problem::Fail(d.code, format!("{m}: direct (go mod download): {}", msg.replace('\n', "\n\t")))
    })
}

/// Step 2 for one module version: .info, .mod (if the graph did not need it), zip, extraction.
async fn fetch_module(
    ctx: &Arc<Ctx>,
    m: &ModuleVersion,
) -> (Vec<FileOutcome>, Option<PathBuf>, Vec<(FileKind, Problem)>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let Ok(mut permit) = ctx.net.acquire().await else { return (files, None, vec![(FileKind::Zip, cancelled())]) };
    if ctx.abort.load(Ordering::SeqCst) {
        return (files, None, vec![(FileKind::Zip, cancelled())]);
    }
    match fetch_info(ctx, m).await {
        Ok(f) => files.push(f),
        Err(p) => {
            problems.push((FileKind::Info, p));
            return (files, None, problems);
        }
    }
    match ctx.cache.cache_path(m, "mod") {
        Ok(p) if !p.exists() => {
            // fetch_go_mod takes a permit of its own.
            drop(permit);
            match fetch_go_mod(ctx, m).await {
                Ok(f) => files.push(f),
                Err(p) => {
                    problems.push((FileKind::Mod, p));
                    return (files, None, problems);
                }
            }
            let Ok(p) = ctx.net.acquire().await else { return (files, None, vec![(FileKind::Zip, cancelled())]) };
            permit = p;
        }
        _ => {}
    }
    let _permit = permit;
    match fetch_zip(ctx, m).await {
        Ok((f, dir)) => {
            files.push(f);
            (files, Some(dir), problems)
        }
        Err(p) => {
            problems.push((FileKind::Zip, p));
            (files, None, problems)
        }
    }
}

async fn fetch_info(ctx: &Arc<Ctx>, m: &ModuleVersion) -> Result<FileOutcome, Problem> {
    let path = ctx.cache.cache_path(m, "info").map_err(|e| Problem::Fail(Code::Unknown, format!("{m}: {e}")))?;
    if path.is_file() {
        ctx.progress.finished(m, FileKind::Info, 0);
        return Ok(cached(FileKind::Info, path, None, Verification::NotApplicable));
    }
    let (data, source, status) = match fetch_small(ctx, m, FileKind::Info).await? {
        Some((d, s)) => (d, s, FileStatus::Downloaded),
        None => {
            let files = direct_files(ctx, m).await?;
            let p = files.files.info.clone().ok_or_else(|| no_direct_file(m, "Info"))?;
            let d = fs::read(&p).map_err(|e| Problem::io("reading", &p, &e))?;
            (d, "direct".to_string(), FileStatus::Direct)
        }
    };
    let info = encode_info(&data, m).map_err(|e| Problem::Fail(Code::BadResponse, format!("{m}: {source}: {e}")))?;
    let bytes = data.len() as u64;
    let p = path.clone();
    blocking(ctx, move || write_cache_file(&p, &info).map_err(|e| Problem::io("writing", &p, &e))).await?;
    ctx.progress.finished(m, FileKind::Info, bytes);
    Ok(FileOutcome {
        kind: FileKind::Info,
        status,
        source,
        path,
        bytes,
        hash: None,
        verified: Verification::NotApplicable,
    })
}

fn cached(kind: FileKind, path: PathBuf, hash: Option<String>, verified: Verification) -> FileOutcome {
    FileOutcome { kind, status: FileStatus::Cached, source: "cache".into(), path, bytes: 0, hash, verified }
}

/// Go's `isValidSum`: exactly `h1:` and 44 base64 characters, no NUL bytes.
fn valid_ziphash(data: &[u8]) -> Option<H1Hash> {
    let s = std::str::from_utf8(data).ok()?.trim();
    if s.contains('\0') || s.len() != 47 {
        return None;
    }
    H1Hash::parse(s).ok()
}

async fn fetch_zip(ctx: &Arc<Ctx>, m: &ModuleVersion) -> Result<(FileOutcome, PathBuf), Problem> {
    let err = |e: gomod::cache::CachePathError| Problem::Fail(Code::Unknown, format!("{m}: {e}"));
    let zip = ctx.cache.cache_path(m, "zip").map_err(err)?;
    let ziphash = ctx.cache.cache_path(m, "ziphash").map_err(err)?;
    let lock = ctx.cache.cache_path(m, "lock").map_err(err)?;
    let partial = ctx.cache.cache_path(m, "partial").map_err(err)?;
    let dir = ctx.cache.extracted_dir(m).map_err(err)?;
    let prefix = format!("{}@{}", m.path, m.version);

    // Already there: check the recorded hash against go.sum (Go's `checkMod`).
    let existing = if zip.is_file() { lockedfile::read(&ziphash).ok().and_then(|d| valid_ziphash(&d)) } else { None };
    if let Some(h) = existing {
        let from = format!("cached file {}", ziphash.display());
        let verified = verify(ctx, m, FileKind::Zip, &h, &from).await?;
        let outcome = cached(FileKind::Zip, zip.clone(), Some(h.to_string()), verified);
        if !dir_complete(&dir, &partial, &ziphash) {
            let (z, d, l, p, mm) = (zip.clone(), dir.clone(), lock.clone(), partial.clone(), m.clone());
            blocking(ctx, move || {
                let _lock = lock_version(&l)?;
                extract(&mm, &z, &d, &p, &ziphash)
            })
            .await?;
        }
        ctx.progress.finished(m, FileKind::Zip, 0);
        return Ok((outcome, dir));
    }

    // Download under the version lock, as Go's DownloadZip does.
    let l = lock.clone();
    let held = blocking(ctx, move || lock_version(&l)).await?;
    // A zip whose .ziphash was lost (a crash, another tool) is hashed again
    // rather than downloaded again, as Go's downloadZip does.
    if zip.is_file() && !ziphash.exists() {
        let (z, pfx) = (zip.clone(), prefix.clone());
        let hash = blocking(ctx, move || {
            hash_zip(&z, Some(&pfx)).map_err(|e| Problem::Fail(Code::BadResponse, format!("{pfx}: {e}")))
        })
        .await?;
        let from = format!("cached file {}", zip.display());
        let verified = verify(ctx, m, FileKind::Zip, &hash, &from).await?;
        let (z, zh, d, p, mm, h) =
            (zip.clone(), ziphash.clone(), dir.clone(), partial.clone(), m.clone(), hash.clone());
        blocking(ctx, move || {
            lockedfile::write_sized(&zh, h.as_str().as_bytes()).map_err(|e| Problem::io("writing", &zh, &e))?;
            extract(&mm, &z, &d, &p, &zh)?;
            drop(held);
            Ok(())
        })
        .await?;
        ctx.progress.finished(m, FileKind::Zip, 0);
        return Ok((cached(FileKind::Zip, zip, Some(hash.to_string()), verified), dir));
    }
    let walk_result = {
        let parent = zip.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = zip.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (p2, b2) = (parent.clone(), base.clone());
        blocking(ctx, move || {
            clean_tmp_files(&p2, &b2);
            Ok(())
        })
        .await?;
        let (tmp, tmp_path) = temp_file(&parent, &base).map_err(|e| Problem::io("creating a file in", &parent, &e))?;
        let walk = try_proxies(&ctx.list, &m.path, |url_base| {
            // Each attempt writes through its own handle; the client truncates first.
            let handle = tmp.try_clone();
            async move {
                let mut handle =
                    handle.map_err(|e| FetchError::new(crate::proxy::FetchErrorKind::File, "", e.to_string()))?;
                let url = file_url(&url_base, &m.path, &m.version, FileKind::Zip)
                    .map_err(|e| FetchError::new(crate::proxy::FetchErrorKind::Invalid, "", e.to_string()))?;
                let n = ctx.client.get(&url, &mut Sink::File(&mut handle), MAX_ZIP).await?;
                Ok((n, crate::proxy::redact(&url)))
            }
        })
        .await;
        (walk, tmp, tmp_path)
    };
    let (walk, tmp, tmp_path) = walk_result;
    let cleanup = |p: &Path| {
        let _ = fs::remove_file(p);
    };
    let (bytes, source, status) = match walk {
        Ok(Walk::Fetched((n, src), _)) => (n, src, FileStatus::Downloaded),
        Ok(Walk::Direct) => {
            drop(tmp);
            let files = match direct_files(ctx, m).await {
                Ok(f) => f,
                Err(p) => {
                    cleanup(&tmp_path);
                    return Err(p);
                }
            };
            let Some(src) = files.files.zip.clone() else {
                cleanup(&tmp_path);
                return Err(no_direct_file(m, "Zip"));
            };
            let n = fs::copy(&src, &tmp_path).map_err(|e| {
                cleanup(&tmp_path);
                Problem::io("copying", &src, &e)
            })?;
            (n, "direct".to_string(), FileStatus::Direct)
        }
        Err(e) => {
            drop(tmp);
            cleanup(&tmp_path);
            return Err(Problem::fetch(&e));
        }
    };
    if ctx.abort.load(Ordering::SeqCst) {
        cleanup(&tmp_path);
        return Err(cancelled());
    }
    // Sync, hash (every entry under module@version/), check, then commit.
    let (tp, pfx) = (tmp_path.clone(), prefix.clone());
    let hashed = blocking(ctx, move || {
        File::open(&tp).and_then(|f| f.sync_data()).map_err(|e| Problem::io("syncing", &tp, &e))?;
        hash_zip(&tp, Some(&pfx)).map_err(|e| Problem::Fail(Code::BadResponse, format!("{pfx}: {e}")))
    })
    .await;
    let hash = match hashed {
        Ok(h) => h,
        Err(p) => {
            cleanup(&tmp_path);
            return Err(p);
        }
    };
    let verified = match verify(ctx, m, FileKind::Zip, &hash, &source).await {
        Ok(v) => v,
        Err(p) => {
            cleanup(&tmp_path);
            return Err(p);
        }
    };
    let (tp, z, zh, d, p, mm, h) =
        (tmp_path.clone(), zip.clone(), ziphash.clone(), dir.clone(), partial.clone(), m.clone(), hash.clone());
    let committed = blocking(ctx, move || {
        lockedfile::write_sized(&zh, h.as_str().as_bytes()).map_err(|e| Problem::io("writing", &zh, &e))?;
        fs::rename(&tp, &z).map_err(|e| Problem::io("renaming", &tp, &e))?;
        extract(&mm, &z, &d, &p, &zh)?;
        drop(held);
        Ok(())
    })
    .await;
    if let Err(p) = committed {
        cleanup(&tmp_path);
        return Err(p);
    }
    ctx.progress.finished(m, FileKind::Zip, bytes);
    let outcome =
        FileOutcome { kind: FileKind::Zip, status, source, path: zip, bytes, hash: Some(hash.to_string()), verified };
    Ok((outcome, dir))
}

fn lock_version(path: &Path) -> Result<lockedfile::Locked, Problem> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Problem::io("creating", parent, &e))?;
    }
    lockedfile::edit(path).map_err(|e| Problem::io("locking", path, &e))
}

/// Go's `DownloadDir` check: the directory exists, no `.partial`, a `.ziphash`.
fn dir_complete(dir: &Path, partial: &Path, ziphash: &Path) -> bool {
    dir.is_dir() && !partial.exists() && ziphash.exists()
}

/// Go's `modfetch.unzip`, with the version lock held by the caller.
fn extract(m: &ModuleVersion, zip: &Path, dir: &Path, partial: &Path, ziphash: &Path) -> Result<(), Problem> {
    if dir_complete(dir, partial, ziphash) {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let tmp_prefix = format!("{}.tmp-", dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    if let Ok(rd) = fs::read_dir(parent) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&tmp_prefix) {
                remove_all(&e.path());
            }
        }
    }
    if dir.exists() {
        remove_all(dir);
        if dir.exists() {
            return Err(Problem::Fail(Code::Unknown, format!("removing partial extraction {}", dir.display())));
        }
    }
    fs::create_dir_all(parent).map_err(|e| Problem::io("creating", parent, &e))?;
    fs::write(partial, b"").map_err(|e| Problem::io("writing", partial, &e))?;
    if let Err(e) = unzip(dir, m, zip) {
        remove_all(dir);
        if !dir.exists() {
            let _ = fs::remove_file(partial);
        }
        return Err(Problem::Fail(Code::BadResponse, e.to_string()));
    }
    fs::remove_file(partial).map_err(|e| Problem::io("removing", partial, &e))?;
    make_dirs_read_only(dir);
    Ok(())
}

/// Go's `makeDirsReadOnly`: children before parents.
fn make_dirs_read_only(dir: &Path) {
    let mut dirs = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        dirs.push(d);
    }
    for d in dirs.iter().rev() {
        if let Ok(meta) = fs::metadata(d) {
            let mode = meta.permissions().mode();
            if mode & 0o222 != 0 {
                let _ = fs::set_permissions(d, fs::Permissions::from_mode(mode & !0o222));
            }
        }
    }
}

/// Go's `modfetch.RemoveAll`: directories made writable, then removed.
pub(crate) fn remove_all(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o777));
            if let Ok(rd) = fs::read_dir(&d) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    let _ = fs::remove_dir_all(dir);
}

/// Removes `<base>*.tmp` files left by earlier runs (the lock is held).
fn clean_tmp_files(dir: &Path, base: &str) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(base) && n.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn random_suffix() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % 1_000_000_000
}

/// Go's `tempFile`: `<dir>/<prefix><random>.tmp`, created exclusively, mode 0666.
fn temp_file(dir: &Path, prefix: &str) -> io::Result<(File, PathBuf)> {
    fs::create_dir_all(dir)?;
    loop {
        let path = dir.join(format!("{prefix}{}.tmp", random_suffix()));
        match OpenOptions::new().read(true).write(true).create_new(true).mode(0o666).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Go's `writeDiskCache`: temp file, sync, rename; then, for a .mod, the `list` file.
fn write_cache_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (mut f, tmp) = temp_file(dir, &base)?;
    // The data reaches the disk before the rename: after a crash the final
    // name holds either nothing or the whole file (a lost rename only means
    // a download again), so the directory itself is not synced.
    let r = f.write_all(data).and_then(|()| f.sync_data()).and_then(|()| fs::rename(&tmp, path));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r?;
    if base.ends_with(".mod") {
        rewrite_version_list(dir)?;
    }
    Ok(())
}

/// Go's `rewriteVersionList`: the sorted canonical versions of the `.mod`
/// files in `dir`, written under a lock on `list`, zero-filled first.
fn rewrite_version_list(dir: &Path) -> io::Result<()> {
    let list_path = dir.join("list");
    let mut locked = lockedfile::edit(&list_path)?;
    let mut list: Vec<String> = Vec::new();
    for e in fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Go compares the escaped name itself, so versions with upper-case
        // letters (escaped with `!`) are not canonical and stay out of the list.
        if let Some(v) = name.strip_suffix(".mod") {
            if !v.is_empty() && canonical_version(v) == v {
                list.push(v.to_string());
            }
        }
    }
    semver::sort(&mut list);
    let mut buf = String::new();
    for v in &list {
        buf.push_str(v);
        buf.push('\n');
    }
    let f = locked.file();
    let mut old = Vec::new();
    io::Read::read_to_end(f, &mut old)?;
    if old == buf.as_bytes() {
        return Ok(());
    }
    f.set_len(0)?;
    f.set_len(buf.len() as u64)?;
    io::Seek::seek(f, io::SeekFrom::Start(0))?;
    if let Err(e) = f.write_all(buf.as_bytes()) {
        let _ = f.set_len(0);
        return Err(e);
    }
    Ok(())
}

/// Go's `RevInfo` as the go command writes it to `.info`: `Version`, `Time`
/// (RFC 3339, fractional zeros dropped, `Z` for UTC) and a cleaned `Origin`.
/// The proxy must answer for the requested version (Go's `proxyRepo.Stat` check).
fn encode_info(data: &[u8], m: &ModuleVersion) -> Result<Vec<u8>, String> {
    let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| format!("invalid .info: {e}"))?;
    let version = v.get("Version").and_then(|x| x.as_str()).unwrap_or_default().to_string();
    if version != m.version && check_module(&m.path, &m.version).is_ok() {
        return Err(format!("proxy returned info for version {version} instead of requested version"));
    }
    let time =
        v.get("Time").and_then(|x| x.as_str()).map(normalize_time).unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    let mut out = String::from("{");
    out.push_str(&format!("\"Version\":{},\"Time\":{}", go_json(&version), go_json(&time)));
    if let Some(o) = v.get("Origin").and_then(|x| x.as_object()) {
        let mut fields = Vec::new();
        for k in ["VCS", "URL", "Subdir", "Hash", "TagPrefix", "TagSum", "Ref", "RepoSum"] {
            let cleared =
                matches!(k, "TagPrefix" | "TagSum" | "RepoSum") || (k == "Ref" && is_pseudo_version(&version));
            if cleared {
                continue;
            }
            if let Some(s) = o.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty()) {
                fields.push(format!("{}:{}", go_json(k), go_json(s)));
            }
        }
        out.push_str(&format!(",\"Origin\":{{{}}}", fields.join(",")));
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// Go's `time.Time` JSON form of an RFC 3339 time.
fn normalize_time(t: &str) -> String {
    let (body, zone) = if let Some(b) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        (b, "Z".to_string())
    } else if t.len() > 6 && matches!(t.as_bytes()[t.len() - 6], b'+' | b'-') {
        let z = &t[t.len() - 6..];
        (&t[..t.len() - 6], if z == "+00:00" || z == "-00:00" { "Z".to_string() } else { z.to_string() })
    } else {
        return t.to_string();
    };
    let body = match body.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                secs.to_string()
            } else {
                format!("{secs}.{frac}")
            }
        }
        None => body.to_string(),
    };
    format!("{}{zone}", body.replacen('t', "T", 1))
}

/// Go's `encoding/json` string encoding (HTML-safe).
fn go_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_as_go_writes_it() {
        let m = ModuleVersion::new("example.com/m", "v1.2.3");
        let got = encode_info(
            br#"{"Version":"v1.2.3","Time":"2024-05-07T03:23:42.500Z","Origin":{"VCS":"git","URL":"https://x/a&b","Ref":"refs/tags/v1.2.3","TagSum":"t1:x"}}"#,
            &m,
        );
        assert_eq!(
            got.map(String::from_utf8).ok().and_then(Result::ok).as_deref(),
            Some(
                r#"{"Version":"v1.2.3","Time":"2024-05-07T03:23:42.5Z","Origin":{"VCS":"git","URL":"https://x/a\u0026b","Ref":"refs/tags/v1.2.3"}}"#
            )
        );
        assert!(encode_info(br#"{"Version":"v1.2.4"}"#, &m).is_err());
        assert_eq!(normalize_time("2020-01-01T00:00:00.000+00:00"), "2020-01-01T00:00:00Z");
        assert_eq!(normalize_time("2020-01-01T00:00:00+02:00"), "2020-01-01T00:00:00+02:00");
    }

    #[test]
    fn version_list() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for v in ["v1.10.0", "v1.2.0", "v1.0.0-!r!c1", "v0.0.0-20200101000000-abcdefabcdef"] {
            fs::write(dir.path().join(format!("{v}.mod")), b"module x\n").unwrap_or_else(|e| panic!("{e}"));
        }
        rewrite_version_list(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let list = fs::read_to_string(dir.path().join("list")).unwrap_or_default();
        assert_eq!(list, "v0.0.0-20200101000000-abcdefabcdef\nv1.2.0\nv1.10.0\n");
    }
}
