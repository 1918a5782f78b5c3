//! `reprove toolchain pull|build|gc|lock`: pinned toolchain images (the `run`
//! subcommand lives with the sandbox).
//!
//! Everything here is argument handling and printing; the work is in
//! `oci`. Registry, network and cache failures exit 3; bad
//! references, platforms, GOROOTs and auth files exit 2.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oci::build::{self, BuildOptions, LayerCompression};
use oci::{
    Credentials, Deadlines, Digest, GcOptions, ImageRef, OverallClock, PinnedImage, Platform, Progress, PullOptions,
    RegistryOptions, Store, ToolchainError,
};
use serde_json::json;

use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Pull a toolchain image, verify every blob and unpack it into the cache; print its digest, Go version and path.
    Pull(PullArgs),
    /// Package a Go installation (GOROOT) as a deterministic OCI image.
    Build(Box<BuildArgs>),
    /// Remove leftovers of interrupted pulls and cached images unused for a while.
    Gc(GcArgs),
    /// Pin a Go version to a toolchain image by digest in reprove.lock (pulls it and checks the Go version inside).
    Lock(Box<LockArgs>),
}

/// How to reach registries (shared by the toolchain subcommands).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Reach this registry over plain HTTP (loopback registries always are). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub(crate) insecure_registry: Vec<String>,
    /// User name for the registry; the password is read from standard input (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub(crate) username: Option<String>,
    /// Read the registry password (or token) from standard input.
    #[arg(long, requires = "username")]
    pub(crate) password_stdin: bool,
    /// Credentials file (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) deadlines: Box<DeadlineArgs>,
}

/// The deadlines of registry requests (boxed in [`RegistryArgs`]: the commands stay small).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeadlineArgs {
    /// Give up on a registry connection not open after this long (5s, 500ms;
    /// default: $REPROVE_REGISTRY_CONNECT_TIMEOUT, else 5s).
    #[arg(long, value_name = "DURATION", value_parser = sandbox::parse_duration)]
    pub(crate) registry_connect_timeout: Option<Duration>,
    /// Give up on a registry that sends nothing for this long while an answer is
    /// awaited or read (default: $REPROVE_REGISTRY_IDLE_TIMEOUT, else 20s).
    #[arg(long, value_name = "DURATION", value_parser = sandbox::parse_duration)]
    pub(crate) registry_idle_timeout: Option<Duration>,
    /// Give up when the registry work of this command (pulls, pushes, fetches, with
    /// retries) takes longer than this in all (default: $REPROVE_REGISTRY_TIMEOUT, else 5m).
    #[arg(long, value_name = "DURATION", value_parser = sandbox::parse_duration)]
    pub(crate) registry_timeout: Option<Duration>,
}

/// The flag's value, else the environment variable's, else `default`.
fn deadline(flag: Option<Duration>, var: &str, default: Duration) -> Result<Duration, Failure> {
    if let Some(d) = flag {
        return Ok(d);
    }
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            sandbox::parse_duration(&v).map_err(|e| Failure::input(anyhow::anyhow!("${var}: {e}")))
        }
        _ => Ok(default),
    }
}

impl RegistryArgs {
    pub(crate) fn to_options(&self) -> Result<RegistryOptions, Failure> {
        let credentials = match (&self.username, self.password_stdin) {
            (Some(username), true) => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| Failure::input(anyhow::anyhow!("reading the password from standard input: {e}")))?;
                let password = line.trim_end_matches(['\n', '\r']).to_string();
                Some(Credentials { username: username.clone(), password, origin: "--username".into() })
            }
            _ => None,
        };
        let defaults = Deadlines::default();
        let deadlines = Deadlines {
            connect: deadline(
                self.deadlines.registry_connect_timeout,
                "REPROVE_REGISTRY_CONNECT_TIMEOUT",
                defaults.connect,
            )?,
            idle: deadline(self.deadlines.registry_idle_timeout, "REPROVE_REGISTRY_IDLE_TIMEOUT", defaults.idle)?,
            overall: deadline(self.deadlines.registry_timeout, "REPROVE_REGISTRY_TIMEOUT", defaults.overall)?,
        };
        Ok(RegistryOptions {
            insecure_registries: self.insecure_registry.clone(),
            credentials,
            auth_file: self.authfile.clone(),
            retries: None,
            deadlines,
            // One clock per command: its registry operations share the overall deadline.
            clock: OverallClock::default(),
        })
    }
}

/// Where the image cache is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CacheArgs {
    /// The image cache (default: $REPROVE_CACHE_DIR, else $XDG_CACHE_HOME/reprove, else ~/.cache/reprove).
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    /// The cache directory: --cache-dir, else $REPROVE_CACHE_DIR, else the default.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        self.cache_dir
            .clone()
            .or_else(|| std::env::var_os("REPROVE_CACHE_DIR").filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(oci::default_cache_dir)
    }

    pub(crate) fn open_store(&self) -> Result<Store, Failure> {
        let dir = self.dir().ok_or_else(|| {
            Failure::input(anyhow::anyhow!("no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME"))
        })?;
        Store::open(dir).map_err(fail)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The image: [registry/]name[:tag][@sha256:…].
    image: String,
    /// Print a JSON document (schemas/toolchain-pull.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// The platform to select from an image index (default: linux/<this machine's architecture>).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Refuse images whose layers decompress to more than this (bytes, or with K, M, G suffix).
    #[arg(long, value_name = "SIZE", default_value = "8G")]
    max_unpacked_size: String,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The Go installation to package.
    #[arg(long, value_name = "DIR")]
    goroot: PathBuf,
    /// A base image (pinned by digest) whose layers go below the GOROOT layer.
    #[arg(long, value_name = "IMAGE@DIGEST")]
    base: Option<String>,
    /// The image name and tag, e.g. registry.example/go:1.22.5.
    #[arg(long, value_name = "REF")]
    tag: String,
    /// Push the image to the registry of --tag.
    #[arg(long)]
    push: bool,
    /// Write an OCI image layout to this directory.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    compression: CompressionArg,
    /// The mtime of every entry (default: $SOURCE_DATE_EPOCH, else the time line of $GOROOT/VERSION, else 0).
    #[arg(long, value_name = "UNIX_TIME")]
    source_date_epoch: Option<u64>,
    /// Print a JSON document (schemas/toolchain-build.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompressionArg {
    Gzip,
    None,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GcArgs {
    /// Remove every cached image and Go build cache.
    #[arg(long)]
    all: bool,
    /// Remove images and Go build caches not used for this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    unused_for_days: u64,
    /// Print a JSON document (schemas/toolchain-gc.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LockArgs {
    /// The Go version the image must contain, e.g. go1.22.5.
    go_version: String,
    /// The image: [registry/]name[:tag][@sha256:…].
    image: String,
    /// The repository whose reprove.lock is written (default: the current directory).
    #[arg(short = 'C', value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The platform to select from an image index (default: linux/<this machine's architecture>).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(command: Command) -> CommandResult {
    match command {
        Command::Lock(args) => lock(*args),
        Command::Pull(args) => pull(args),
        Command::Build(args) => build_image(*args),
        Command::Gc(args) => gc(args),
    }
}

/// Maps a library error to its exit class.
pub(crate) fn fail(e: ToolchainError) -> Failure {
    if e.is_input() {
        Failure::input(e)
    } else {
        Failure::infrastructure(e)
    }
}

pub(crate) fn parse_size(s: &str) -> Result<u64, Failure> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        Some((i, 'T' | 't')) => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| {
        Failure::input(anyhow::anyhow!("invalid size {s:?}: expected bytes or a number with K, M, G or T"))
    })
}

/// A progress bar on stderr, when stderr is a terminal.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Progress for Bar {
    fn layer(&self, index: usize, count: usize, digest: &Digest, size: u64) {
        self.bar.set_length(size);
        self.bar.set_position(0);
        let short = &digest.hex()[..12];
        self.bar.set_message(format!("layer {}/{count} {short}", index + 1));
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}

fn progress_bar(json: bool) -> Option<(Arc<Bar>, indicatif::ProgressBar)> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some((Arc::new(Bar { bar: bar.clone() }), bar))
}

fn pull(args: PullArgs) -> CommandResult {
    let reference: ImageRef = args.image.parse().map_err(fail)?;
    let platform = args.platform.as_deref().map(str::parse::<Platform>).transpose().map_err(fail)?;
    let max = parse_size(&args.max_unpacked_size)?;
    let store = args.cache.open_store()?;
    let registry = args.registry.to_options()?;
    let bar = progress_bar(args.json);
    let options = PullOptions {
        registry,
        platform,
        max_unpacked_size: Some(max),
        progress: bar.as_ref().map(|(p, _)| p.clone() as Arc<dyn Progress>),
    };
    let result = store.pull_blocking(&*super::io_runtime()?, &reference, &options);
    if let Some((_, bar)) = bar {
        bar.finish_and_clear();
    }
    let image = result.map_err(|e| match e {
        // The bound is this command's flag: say so (the library does not know flags).
        ToolchainError::TooLarge { ref image, limit } => {
            let message =
                anyhow::anyhow!("image {image} unpacks to more than {limit} bytes (--max-unpacked-size); refusing it");
            if e.is_input() {
                Failure::input(message)
            } else {
                Failure::infrastructure(message)
            }
        }
        e => fail(e),
    })?;
    for w in &image.warnings {
        eprintln!("reprove: warning: {w}");
    }
    let pinned = image.pinned();
    if args.json {
        let doc = json!({
            "reference": reference.to_string(),
            "digest": image.pin_digest().to_string(),
            "pinned": pinned.to_string(),
            "manifest_digest": image.manifest_digest.to_string(),
            "index_digest": image.index_digest.as_ref().map(ToString::to_string),
            "platform": image.platform.to_string(),
            "go_version": image.go_version,
            "goroot": image.goroot,
            "rootfs": image.rootfs.display().to_string(),
            "cached": image.cached,
            "warnings": image.warnings,
        });
        println!("{doc:#}");
    } else {
        println!("image:    {reference}");
        println!("digest:   {}", image.pin_digest());
        if let Some(index) = &image.index_digest {
            println!("index:    {index} (platform manifest {})", image.manifest_digest);
        }
        println!("pinned:   {pinned}");
        println!("platform: {}", image.platform);
        println!("go:       {}", image.go_version.as_deref().unwrap_or("(no $GOROOT/VERSION found)"));
        println!("rootfs:   {}", image.rootfs.display());
        if reference.digest().is_none() {
            eprintln!("reprove: pin this toolchain as {pinned}");
        }
    }
    Ok(Verdict::Positive)
}

fn lock(args: LockArgs) -> CommandResult {
    use recipe::lock::{check_go_version, lock_toolchain, LOCK_FILE_NAME};
    check_go_version(&args.go_version).map_err(Failure::input)?;
    let reference: ImageRef = args.image.parse().map_err(fail)?;
    let platform = args.platform.as_deref().map(str::parse::<Platform>).transpose().map_err(fail)?;
    let store = args.cache.open_store()?;
    let registry = args.registry.to_options()?;
    let bar = progress_bar(false);
    let options = PullOptions {
        registry,
        platform,
        max_unpacked_size: None,
        progress: bar.as_ref().map(|(p, _)| p.clone() as Arc<dyn Progress>),
    };
    let pulled = store.pull_blocking(&*super::io_runtime()?, &reference, &options);
    if let Some((_, bar)) = bar {
        bar.finish_and_clear();
    }
    let pulled = pulled.map_err(|e| if e.is_input() { Failure::input(e) } else { Failure::infrastructure(e) })?;
    let pinned = pulled.pinned();
    lock_toolchain(&args.dir, &args.go_version, &pinned, pulled.go_version.as_deref()).map_err(|e| {
        if e.is_input() {
            Failure::input(e)
        } else {
            Failure::infrastructure(e)
        }
    })?;
    println!("{} {} -> {pinned}", LOCK_FILE_NAME, args.go_version);
    Ok(Verdict::Positive)
}

fn build_image(args: BuildArgs) -> CommandResult {
    let tag: ImageRef = args.tag.parse().map_err(fail)?;
    if tag.digest().is_some() {
        return Err(Failure::input(anyhow::anyhow!(
            "--tag {tag}: a tag names the image to build; it cannot carry a digest"
        )));
    }
    let tag = if tag.tag().is_none() { tag.with_tag("latest").map_err(fail)? } else { tag };
    let base = args.base.as_deref().map(str::parse::<PinnedImage>).transpose().map_err(fail)?;
    let registry = args.registry.to_options()?;
    let work = tempfile::Builder::new()
        .prefix("reprove-build-")
        .tempdir_in(
            args.output_dir.as_deref().and_then(|d| d.parent()).filter(|p| p.is_dir()).unwrap_or(&std::env::temp_dir()),
        )
        .map_err(|e| Failure::infrastructure(anyhow::anyhow!("creating a work directory: {e}")))?;
    let options = BuildOptions {
        goroot: args.goroot.clone(),
        base,
        source_date_epoch: args.source_date_epoch,
        compression: match args.compression {
            CompressionArg::Gzip => LayerCompression::Gzip,
            CompressionArg::None => LayerCompression::None,
        },
        work_dir: work.path().to_path_buf(),
        registry: registry.clone(),
    };
    let rt = super::io_runtime()?;
    let built = build::build(&rt, &options).map_err(fail)?;
    let image = &built.image;
    if let Some(dir) = &args.output_dir {
        image.write_layout(dir, tag.tag()).map_err(fail)?;
    }
    if args.push {
        image.push_blocking(&rt, &tag, &registry).map_err(fail)?;
    }
    let pinned = tag.with_digest(image.manifest_digest.clone());
    if args.json {
        let doc = json!({
            "reference": tag.to_string(),
            "digest": image.manifest_digest.to_string(),
            "pinned": pinned.to_string(),
            "go_version": built.go_version,
            "platform": image.platform.to_string(),
            "source_date_epoch": built.source_date_epoch,
            "layers": image.layers.iter().map(|l| json!({
                "media_type": l.blob.media_type,
                "digest": l.blob.digest.to_string(),
                "size": l.blob.size,
                "diff_id": l.diff_id.to_string(),
            })).collect::<Vec<_>>(),
            "pushed": args.push,
            "output_dir": args.output_dir.as_ref().map(|d| d.display().to_string()),
        });
        println!("{doc:#}");
    } else {
        println!("built:    {pinned}");
        println!("go:       {}", built.go_version);
        println!("platform: {}", image.platform);
        for l in &image.layers {
            println!("layer:    {} ({} bytes, diff_id {})", l.blob.digest, l.blob.size, l.diff_id);
        }
        if args.push {
            println!("pushed:   {tag}");
        }
        if let Some(dir) = &args.output_dir {
            println!("layout:   {}", dir.display());
        }
    }
    Ok(Verdict::Positive)
}

fn gc(args: GcArgs) -> CommandResult {
    let store = args.cache.open_store()?;
    let options =
        GcOptions { all: args.all, unused_for: Some(Duration::from_secs(args.unused_for_days.saturating_mul(86400))) };
    let report = store.gc(&options).map_err(fail)?;
    // What killed runs left: their sandboxes and their work directories.
    let sandboxes = sandbox::collect_leftovers();
    let work_dirs = rebuild::workdirs::collect(store.dir()).map_err(|e| {
        Failure::infrastructure(anyhow::anyhow!(
            "removing the work directories of killed runs in {}: {e}",
            store.dir().display()
        ))
    })?;
    if args.json {
        let doc = json!({
            "cache_dir": store.dir().display().to_string(),
            "removed_images": report.removed_images.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "removed_temporary": report.removed_temporary,
            "kept_images": report.kept_images,
            "removed_build_caches": report.removed_build_caches,
            "kept_build_caches": report.kept_build_caches,
            "removed_cached_referrers": report.removed_cached_referrers,
            "removed_sandboxes": sandboxes.total(),
            "removed_work_dirs": work_dirs,
        });
        println!("{doc:#}");
    } else {
        for d in &report.removed_images {
            println!("removed {d}");
        }
        println!(
            "{} images removed, {} kept, {} temporary directories removed; {} Go build caches removed, {} kept; {} files of the referrers cache removed ({})",
            report.removed_images.len(),
            report.kept_images,
            report.removed_temporary,
            report.removed_build_caches,
            report.kept_build_caches,
            report.removed_cached_referrers,
            store.dir().display()
        );
        println!(
            "left by killed runs: {} sandboxes removed (runc containers, engine containers, bundles, cgroups), {} work directories removed",
            sandboxes.total(),
            work_dirs
        );
    }
    Ok(Verdict::Positive)
}
