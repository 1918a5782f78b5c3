//! What `reprove serve` and `reprove worker` share: the configuration file
//! (`reprove-server.toml`, `schemas/server-config.schema.json`), the log format, the
//! signals that stop them, and the executor that runs jobs through the verify and audit
//! pipelines ([`Pipeline`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::server::job::{build_partial, JobSpec};
use ::server::{Cancel, ExecError, Executor, JobProgress, JobResult};
use anyhow::{anyhow, Context as _};
use rebuild::{Class, Progress, ReferenceInput, Request, SourceInput, Step};
use serde::Deserialize;

use super::toolchain::{CacheArgs, RegistryArgs};
use super::verify::{module_env, RuntimeArg};
use crate::exit::Failure;

/// `reprove-server.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data: Option<PathBuf>,
    pub(crate) database: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) worker_token: Option<String>,
    pub(crate) read_needs_token: Option<bool>,
    pub(crate) workers: Option<usize>,
    pub(crate) lease_seconds: Option<u64>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) noop_jobs: Option<bool>,
    pub(crate) loopback_http_references: Option<bool>,
    pub(crate) max_reference_bytes: Option<u64>,
    pub(crate) reference_retention: Option<String>,
    pub(crate) log_format: Option<String>,
    pub(crate) runtime: Option<String>,
    pub(crate) build_timeout: Option<String>,
    pub(crate) audit_dir: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) builder_id: Option<String>,
    /// `[[watch]]` tables and how watching runs (`super::serve_watch`).
    #[serde(default)]
    pub(crate) watch: Vec<::server::watching::WatchEntry>,
    pub(crate) watch_rate: Option<String>,
    #[serde(default)]
    pub(crate) watch_rates: BTreeMap<String, String>,
    pub(crate) watch_backoff: Option<String>,
    pub(crate) watch_backoff_max: Option<String>,
    pub(crate) watch_max_tags: Option<usize>,
}

impl FileConfig {
    /// The file `path`, or the defaults.
    pub(crate) fn read(path: Option<&Path>) -> Result<FileConfig, Failure> {
        let Some(path) = path else { return Ok(FileConfig::default()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --config {}", path.display()))
            .map_err(Failure::input)?;
        toml::from_str(&text).map_err(|e| Failure::input(anyhow!("--config {}: {e}", path.display())))
    }
}

/// Sets the log format: the flag, else `$REPROVE_LOG_FORMAT`, else the file's, else text.
pub(crate) fn init_log(flag: Option<&str>, file: &FileConfig) -> Result<(), Failure> {
    let format = flag.map(str::to_string).or_else(|| env("REPROVE_LOG_FORMAT")).or(file.log_format.clone());
    let format = match format.as_deref().unwrap_or("text") {
        "text" => ::server::log::Format::Text,
        "json" => ::server::log::Format::Json,
        other => return Err(Failure::input(anyhow!("--log-format {other:?}: expected text or json"))),
    };
    ::server::log::init(format);
    Ok(())
}

/// The flags of how jobs run, the same for `reprove serve` and `reprove worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Log lines as text or JSON (default: $REPROVE_LOG_FORMAT, the config's `log-format`, else text).
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,
    /// The sandbox runtime of the builds (default: the config's `runtime`, else auto).
    #[arg(long, value_enum)]
    pub(crate) runtime: Option<RuntimeArg>,
    /// Kill a build after this long (default: the config's `build-timeout`, else 1h).
    #[arg(long, value_name = "DURATION", value_parser = sandbox::parse_duration)]
    pub(crate) timeout: Option<Duration>,
    #[command(flatten)]
    pub(crate) cache: CacheArgs,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// The executor of jobs with the settings of flags and file: the runtime (flag, then the
/// file's `runtime`, else auto), the build timeout, the cache, registries, the auditor's
/// directory and the signing key.
pub(crate) fn pipeline(file: &FileConfig, args: &RunArgs) -> Result<Pipeline, Failure> {
    let RunArgs { runtime, timeout, cache, registry, .. } = args;
    let (runtime, timeout) = (*runtime, *timeout);
    let runtime = match (runtime, file.runtime.as_deref()) {
        (Some(r), _) => r,
        (None, Some(r)) => runtime_arg(r)?,
        (None, None) => RuntimeArg::Auto,
    };
    let build_timeout = match (timeout, file.build_timeout.as_deref()) {
        (Some(t), _) => t,
        (None, Some(t)) => {
            sandbox::parse_duration(t).map_err(|e| Failure::input(anyhow!("build-timeout {t:?}: {e}")))?
        }
        (None, None) => Duration::from_secs(3600),
    };
    let cache_dir = cache.open_store()?.dir().to_path_buf();
    let mut audit = ::audit::Settings::default();
    if let Some(dir) = &file.audit_dir {
        audit.add_directory(dir).map_err(|e| Failure::input(anyhow!("audit-dir {}: {e}", dir.display())))?;
    }
    let signer = match &file.key {
        Some(key) => {
            let builder =
                file.builder_id.clone().unwrap_or_else(|| attest::from_report::DEFAULT_BUILDER_ID.to_string());
            Some((Arc::new(super::signing::load_key(key)?), builder))
        }
        None => None,
    };
    Ok(Pipeline {
        cache_dir,
        runtime,
        build_timeout,
        registry: registry.to_options()?,
        audit: Arc::new(audit),
        signer,
        references: None,
    })
}

/// Turns true on SIGINT or SIGTERM.
pub(crate) fn stop_on_signals() -> Result<Arc<std::sync::atomic::AtomicBool>, Failure> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Failure::infrastructure(anyhow!("installing the handler for signal {sig}: {e}")))?;
    }
    Ok(stop)
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn env_parsed<T: std::str::FromStr>(name: &str) -> Result<Option<T>, Failure>
where
    T::Err: std::fmt::Display,
{
    env(name).map(|v| v.trim().parse::<T>().map_err(|e| Failure::input(anyhow!("${name}={v:?}: {e}")))).transpose()
}

pub(crate) fn default_data() -> Option<PathBuf> {
    env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/share")))
        .map(|d| d.join("reprove/serve"))
}

fn runtime_arg(s: &str) -> Result<RuntimeArg, Failure> {
    <RuntimeArg as clap::ValueEnum>::from_str(s, false)
        .map_err(|_| Failure::input(anyhow!("runtime {s:?}: expected auto, runc, bwrap, podman or docker")))
}

/// The executor of `reprove serve` and `reprove worker`: verify and check jobs through
/// the pipeline, audit jobs through `audit::audit`, with the caches, runtime and registry
/// settings of the process; no-op jobs (a load-testing aid) at once.
pub(crate) struct Pipeline {
    cache_dir: PathBuf,
    runtime: RuntimeArg,
    build_timeout: Duration,
    registry: oci::RegistryOptions,
    /// The auditor's settings (sources, toolchains, ldflags) for audit jobs.
    audit: Arc<::audit::Settings>,
    /// Signs a provenance and a VSA of each verify verdict and the image VSA of each audit,
    /// with this builder id.
    signer: Option<(Arc<attest::keys::KeySigner>, String)>,
    /// Where the server keeps the references it downloaded (`reprove serve`'s data
    /// directory); a `reprove worker` has none and downloads them itself.
    references: Option<PathBuf>,
}

impl Pipeline {
    /// Whether verdicts are signed (the config names a `key`).
    pub(crate) fn signs(&self) -> bool {
        self.signer.is_some()
    }

    /// Reads the references the server downloaded from `dir` (`DIR/sha256/HEX`).
    pub(crate) fn with_references(mut self, dir: PathBuf) -> Pipeline {
        self.references = Some(dir);
        self
    }

    /// The file of a reference URL whose content the job was keyed by (`digest`): the
    /// server's copy, else downloaded again into a directory of the job's own (removed
    /// with it). The job thread checks its content against `digest` before anything runs.
    async fn url_reference(
        &self,
        url: &str,
        digest: Option<&str>,
    ) -> Result<(PathBuf, Option<tempfile::TempDir>), ExecError> {
        // Without the digest it was keyed by, nothing could check what was downloaded.
        let Some(digest) = digest else {
            return Err(ExecError {
                class: "input".into(),
                message: format!("the job names the reference {url} without its digest: submit it again"),
            });
        };
        if let Some(p) = self.references.as_deref().and_then(|dir| ::server::fetch::kept(dir, digest)) {
            return Ok((p, None));
        }
        let parent = self.cache_dir.join("work");
        let dir = std::fs::create_dir_all(&parent)
            .and_then(|()| tempfile::Builder::new().prefix("serve-reference-").tempdir_in(&parent))
            .map_err(|e| ExecError {
                class: "infrastructure".into(),
                message: format!("a work directory in {}: {e}", parent.display()),
            })?;
        // The server decided whether the URL was acceptable (plain http to a loopback host
        // only where it allows it); what is verified is checked against the digest.
        let fetch = ::server::fetch::Fetch {
            loopback_http: true,
            ..::server::fetch::Fetch::new(::server::MAX_REFERENCE_BYTES, Duration::from_secs(300))
        };
        match ::server::fetch::fetch(url, dir.path(), &fetch).await {
            Ok(f) if f.digest != digest => Err(ExecError {
                class: "input".into(),
                message: format!(
                    "the reference {url} served content whose digest is {}, not {digest}, the digest the job was submitted with: nothing else is verified",
                    f.digest
                ),
            }),
            Ok(f) => Ok((f.path, Some(dir))),
            Err(e) => {
                use ::server::fetch::FetchError as F;
                // What the URL is or serves is the submitter's; a server that fails is not.
                let class = match e {
                    F::NotFound(_) | F::TooLarge(_) | F::Refused(_) | F::Insecure(_) => "input",
                    F::Untrusted(_) | F::Unreachable(_) | F::Store(_) => "infrastructure",
                };
                Err(ExecError { class: class.into(), message: format!("downloading the reference: {e}") })
            }
        }
    }
}

/// The pipeline's steps as the job's progress.
struct Steps(Arc<dyn JobProgress>);

impl Progress for Steps {
    fn start(&self, step: Step) {
        self.0.step(&step.to_string());
    }
}

impl Pipeline {
    fn request(&self, spec: &JobSpec) -> Result<Work, ExecError> {
        let input = |m: String| ExecError { class: "input".into(), message: m };
        let (source, rev, reference, toolchain, recipe, from_reference, check) = match spec {
            JobSpec::Verify(v) => {
                let reference = if v.reference.starts_with("oci://") {
                    let (image, path) = rebuild::parse_oci_reference(&v.reference).map_err(|e| input(e.to_string()))?;
                    ReferenceInput::Image { image, path }
                } else if let Some(d) = rebuild::parse_sha256(&v.reference) {
                    ReferenceInput::Digest(d)
                } else {
                    ReferenceInput::File(PathBuf::from(&v.reference))
                };
                // The commit the rev named at submission: what was keyed is what runs.
                (
                    &v.source,
                    v.commit.as_ref().unwrap_or(&v.rev),
                    reference,
                    &v.toolchain,
                    &v.recipe,
                    v.from_reference,
                    false,
                )
            }
            JobSpec::Check(c) => (
                &c.source,
                c.commit.as_ref().unwrap_or(&c.rev),
                ReferenceInput::None,
                &c.toolchain,
                &c.recipe,
                false,
                true,
            ),
            JobSpec::Noop(n) => return Ok(Work::Noop(n.clone())),
            JobSpec::Audit(a) => {
                // The template every rebuild of the audit starts from (as `reprove audit`'s).
                let request = self.base(SourceInput::git(String::new(), String::new()), ReferenceInput::None, None)?;
                return Ok(Work::Audit(a.image.clone(), Box::new(request)));
            }
        };
        let recipe: &BTreeMap<String, serde_json::Value> = recipe;
        let flags = build_partial(recipe).map_err(|e| input(e.to_string()))?;
        let toolchain = toolchain.parse::<oci::PinnedImage>().map_err(|e| input(e.to_string()))?;
        let mut request = self.base(SourceInput::git(source.clone(), rev.clone()), reference, Some(toolchain))?;
        request.recipe.flags = flags;
        request.recipe.from_reference = from_reference;
        Ok(if check { Work::Check(Box::new(request)) } else { Work::Verify(Box::new(request)) })
    }

    /// A pipeline request with the server's settings.
    fn base(
        &self,
        source: SourceInput,
        reference: ReferenceInput,
        toolchain: Option<oci::PinnedImage>,
    ) -> Result<Request, ExecError> {
        let infra = |f: Failure| ExecError { class: "infrastructure".into(), message: f.to_string() };
        let (go_env, download, sumdb) = module_env().map_err(infra)?;
        Ok(Request {
            source,
            reference,
            toolchain,
            recipe: rebuild::RecipeInputs {
                flags: Default::default(),
                // The job is the whole recipe: nothing from the server's environment.
                env: Vec::new(),
                build: None,
                templates: Default::default(),
                target: None,
                from_reference: true,
                allow_exec: false,
            },
            allow_dirty: false,
            runtime: self.runtime.choice(),
            cache_dir: self.cache_dir.clone(),
            keep: None,
            registry: self.registry.clone(),
            go_env,
            download,
            sumdb,
            build_timeout: self.build_timeout,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            echo_build: false,
            io: super::io_runtime().map_err(infra)?,
        })
    }
}

/// What a job runs.
enum Work {
    Verify(Box<Request>),
    Check(Box<Request>),
    /// The image, and the template of its rebuilds.
    Audit(String, Box<Request>),
    Noop(::server::job::NoopSpec),
}

/// Scans `image` and rebuilds every Go binary in it, as `reprove audit IMAGE` does.
fn run_audit(
    image: &str,
    shared: &Request,
    settings: &::audit::Settings,
    cache_dir: &Path,
    cancel: &sandbox::CancelToken,
    attest: AuditAttest<'_>,
) -> Result<JobResult, ExecError> {
    let input_err = |m: String| ExecError { class: "input".into(), message: m };
    let input = inventory::ImageInput::parse(image).map_err(|e| input_err(e.to_string()))?;
    let started = (std::time::Instant::now(), stdx::time::now_unix());
    // The binaries are kept for their rebuilds, below the cache, until the audit ends.
    let parent = cache_dir.join("work");
    let work = std::fs::create_dir_all(&parent)
        .and_then(|()| tempfile::Builder::new().prefix("serve-audit-").tempdir_in(&parent))
        .map_err(|e| ExecError {
            class: "infrastructure".into(),
            message: format!("a work directory in {}: {e}", parent.display()),
        })?;
    let mut options =
        inventory::Options { binaries_dir: Some(work.path().join("binaries")), ..inventory::Options::default() };
    options.open.registry = shared.registry.clone();
    options.open.platforms = attest.platforms()?;
    let inventory = inventory::scan_blocking(&shared.io, &input, &options).map_err(|e| ExecError {
        class: if e.is_input(&input) { "input" } else { "infrastructure" }.into(),
        message: e.to_string(),
    })?;
    let audit =
        ::audit::Audit { settings, shared, jobs: 1, tool_version: env!("CARGO_PKG_VERSION").to_string(), started };
    let doc = ::audit::audit(&inventory, &audit, &::audit::run::Silent, cancel);
    let verdict = serde_json::to_value(doc.verdict).ok().and_then(|v| v.as_str().map(str::to_string));
    let failure = (doc.verdict == report::audit::v1::ImageVerdict::Error)
        .then(|| doc.error_class().map(|c| (c, doc.summary.clone())))
        .flatten();
    // The job is about a module when the Go binaries with build info share one main module.
    let mut modules: std::collections::BTreeSet<&str> =
        doc.binaries().filter_map(|(_, b)| b.main_module.as_ref().map(|m| m.path.as_str())).collect();
    let module = (modules.len() == 1).then(|| modules.pop_first().map(str::to_string)).flatten();
    let result = outcome(&doc, verdict.unwrap_or_default(), failure, module)?;
    Ok(attest.apply(result, &doc))
}

/// What an audit job does with its verdict: its platforms, the server's signer, and
/// whether the job asks for the image VSA to be pushed.
struct AuditAttest<'a> {
    platforms: &'a [String],
    signer: Option<&'a (Arc<attest::keys::KeySigner>, String)>,
    push: bool,
    registry: &'a oci::RegistryOptions,
}

impl AuditAttest<'_> {
    fn platforms(&self) -> Result<Vec<oci::Platform>, ExecError> {
        self.platforms
            .iter()
            .map(|p| p.parse::<oci::Platform>())
            .collect::<Result<_, _>>()
            .map_err(|e| ExecError { class: "input".into(), message: e.to_string() })
    }

    /// Signs the image VSA of a verdict (when the server has a key) and pushes it to the
    /// image's repository (when the job asks), as `reprove audit --attest --push`; a
    /// signature or push that fails fails the job (class `signing`, `push`), its verdict
    /// and report kept.
    fn apply(&self, mut result: JobResult, doc: &report::audit::v1::AuditReport) -> JobResult {
        let Some((key, builder)) = self.signer.filter(|_| result.failure.is_none()) else {
            if self.push && result.failure.is_none() {
                result.failure =
                    Some(("push".into(), "the job asks to push its VSA, and the server has no key".into()));
            }
            return result;
        };
        let (name, digests, line) = match super::provenance::signed_image_vsa(doc, key, builder) {
            Ok(signed) => signed,
            Err(e) => {
                result.failure = Some(("signing".into(), format!("signing the image VSA: {e}")));
                return result;
            }
        };
        let envelope = "application/vnd.dsse.envelope.v1+json".to_string();
        result.attestations.push(("image-vsa".into(), envelope, line.clone().into_bytes()));
        if self.push {
            let registry = oci::RegistryOptions { clock: oci::OverallClock::default(), ..self.registry.clone() };
            let files = [("image.vsa.intoto.jsonl".to_string(), line.into_bytes())];
            let format = super::attest_registry::FormatArg::Both;
            if let Err(e) = super::attest_registry::push_to(&name, &digests, &files, format, &registry) {
                result.failure = Some(("push".into(), format!("pushing the image VSA: {e}")));
            }
        }
        result
    }
}

impl Executor for Pipeline {
    async fn run(&self, job: &JobSpec, progress: Arc<dyn JobProgress>, cancel: Cancel) -> Result<JobResult, ExecError> {
        // A reference URL: the file whose content the job was keyed by. Downloaded before
        // the work is made: a request holds a blocking runtime, which must not be dropped
        // here, on the async threads, when the download fails.
        let url = match job {
            JobSpec::Verify(v) if ::server::fetch::is_url(&v.reference) => Some(v.reference.clone()),
            _ => None,
        };
        let (mut url_file, mut download_dir) = (None, None);
        if let (Some(url), JobSpec::Verify(v)) = (&url, job) {
            let (file, dir) = self.url_reference(url, v.reference_digest.as_deref()).await?;
            (url_file, download_dir) = (Some(file), dir);
        }
        let mut work = self.request(job)?;
        if let (Some(file), Work::Verify(request)) = (&url_file, &mut work) {
            request.reference = ReferenceInput::File(file.clone());
        }
        if let Work::Noop(n) = &work {
            return Ok(::server::work::noop_result(n));
        }
        let (settings, cache_dir, signer) = (self.audit.clone(), self.cache_dir.clone(), self.signer.clone());
        let (platforms, push) = match job {
            JobSpec::Audit(a) => (a.platforms.clone(), a.push),
            _ => (Vec::new(), false),
        };
        let registry = self.registry.clone();
        // A reference file (or the file of a reference URL) is checked against the content
        // its job was keyed by.
        let keyed_reference = match job {
            JobSpec::Verify(v) => v
                .reference_digest
                .clone()
                .map(|d| (url_file.clone().unwrap_or_else(|| PathBuf::from(&v.reference)), v.reference.clone(), d)),
            _ => None,
        };
        let token = sandbox::CancelToken::new();
        let flag = token.flag();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        // The pipeline blocks and runs its own runtime: a thread of its own.
        std::thread::Builder::new()
            .name("reprove-job".into())
            .spawn(move || {
                // A downloaded reference is removed when the job ends.
                let _download_dir = download_dir;
                let steps = Steps(progress);
                let _ = tx.send(match work {
                    Work::Noop(n) => Ok(::server::work::noop_result(&n)),
                    Work::Audit(image, shared) => {
                        let attest =
                            AuditAttest { platforms: &platforms, signer: signer.as_ref(), push, registry: &registry };
                        run_audit(&image, &shared, &settings, &cache_dir, &token, attest)
                    }
                    Work::Check(request) => {
                        let r = rebuild::check::check(&request, &steps, &token);
                        let failure = r.error.as_ref().map(|e| (e.class, e.message.clone()));
                        outcome(&r, r.verdict.as_str().to_string(), failure, None)
                    }
                    Work::Verify(_) if keyed_reference.as_ref().is_some_and(|(p, _, d)| !same_content(p, d)) => {
                        Err(ExecError {
                            class: "input".into(),
                            message: format!(
                                "the reference {} changed (or went) since the job was submitted (it was {}): submit it again",
                                keyed_reference.as_ref().map(|(_, r, _)| r.as_str()).unwrap_or_default(),
                                keyed_reference.as_ref().map(|(_, _, d)| d.as_str()).unwrap_or_default(),
                            ),
                        })
                    }
                    Work::Verify(request) => {
                        let mut r = rebuild::verify(&request, &steps, &token);
                        if let Some(url) = &url {
                            // The reference as given: the URL its file was downloaded from.
                            r.inputs.reference.path = Some(url.clone());
                        }
                        let verdict = serde_json::to_value(r.verdict).ok().and_then(|v| v.as_str().map(str::to_string));
                        let failure = rebuild::exit_class(&r)
                            .map(|c| (c, r.error.as_ref().map(|e| e.message.clone()).unwrap_or_default()));
                        // The module the verdict is about (its history, `?module=`, badges):
                        // a module source's path; for a Git source, the main module the
                        // reference's build info records. Reproduced, the rebuilt binary is
                        // the reference byte for byte, so its build info says the same. Not
                        // reproduced, the report records no module line of the source's
                        // go.mod (only its digest), and the verdict is about the binary that
                        // claims to be that module, which is what a reader of the module's
                        // history looks for (a different main module of the rebuild is a
                        // cause of its own, `main-path`).
                        let module = r
                            .inputs
                            .source
                            .module
                            .as_ref()
                            .map(|m| m.path.clone())
                            .or_else(|| r.inputs.reference.main_module.clone());
                        let signed = outcome(&r, verdict.unwrap_or_default(), failure, module);
                        match (signed, &signer) {
                            (Ok(result), Some((key, builder))) if result.failure.is_none() => {
                                attest(result, &r, key, builder)
                            }
                            (other, _) => other,
                        }
                    }
                });
            })
            .map_err(|e| ExecError {
                class: "infrastructure".into(),
                message: format!("starting the job thread: {e}"),
            })?;
        loop {
            tokio::select! {
                r = &mut rx => break r.unwrap_or_else(|_| Err(ExecError { class: "internal".into(), message: "the job thread ended without a report".into() })),
                () = tokio::time::sleep(Duration::from_millis(200)) => if cancel.is_cancelled() { flag.store(true, Ordering::SeqCst) },
            }
        }
    }
}

/// Whether the file at `path` has the SHA-256 `digest` (`sha256:…`).
fn same_content(path: &std::path::Path, digest: &str) -> bool {
    // A file larger than any the server keys by content cannot be the one it keyed.
    ::server::job::file_digest(path, ::server::MAX_REFERENCE_BYTES).is_ok_and(|d| d == digest)
}

/// Adds the signed provenance and VSA of a verdict to its result; a signature that cannot
/// be made fails the job (class `signing`), its verdict and report kept.
fn attest(
    mut result: JobResult,
    report: &report::v1::Report,
    key: &attest::keys::KeySigner,
    builder_id: &str,
) -> Result<JobResult, ExecError> {
    match super::provenance::signed_statements(report, &result.report, key, builder_id, None) {
        Ok([(provenance, _), (vsa, _)]) => {
            for (name, line) in [("provenance", provenance), ("vsa", vsa)] {
                result.attestations.push((
                    name.into(),
                    "application/vnd.dsse.envelope.v1+json".into(),
                    line.into_bytes(),
                ));
            }
        }
        Err(e) => result.failure = Some(("signing".into(), format!("signing the verdict: {e}"))),
    }
    Ok(result)
}

/// A report as the job's result: its JSON, its verdict, and the failure class when it has no verdict.
fn outcome(
    report: &impl serde::Serialize,
    verdict: String,
    failure: Option<(Class, String)>,
    module: Option<String>,
) -> Result<JobResult, ExecError> {
    let bytes = serde_json::to_vec(report)
        .map_err(|e| ExecError { class: "internal".into(), message: format!("serializing the report: {e}") })?;
    let failure = failure.filter(|_| verdict == "error").map(|(class, message)| {
        let class = match class {
            Class::Input => "input",
            Class::Infrastructure => "infrastructure",
            Class::Security => "security",
        };
        (class.to_string(), message)
    });
    Ok(JobResult { verdict, report: bytes, failure, module, attestations: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

    /// A job naming a reference URL without the digest it was keyed by is refused before
    /// anything is downloaded: nothing could check the bytes.
    #[test]
    fn a_reference_url_without_its_digest_is_refused() {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pipeline = bare_pipeline(cache.path());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        let e = rt
            .block_on(pipeline.url_reference("https://127.0.0.1:1/app", None))
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.class, "input", "{}", e.message);
        assert!(e.message.contains("without its digest"), "{}", e.message);
    }

    /// A reference URL whose file is over the bound fails the job as the submitter's
    /// (class `input`), as one that is not there does; nothing is kept.
    #[test]
    fn a_reference_download_over_the_bound_is_an_input_failure() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let too_many = ::server::MAX_REFERENCE_BYTES + 1;
                let _ = write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {too_many}\r\n\r\n");
            }
        });
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pipeline = bare_pipeline(cache.path());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        let digest = format!("sha256:{}", "a".repeat(64));
        let e = rt
            .block_on(pipeline.url_reference(&format!("http://127.0.0.1:{port}/app"), Some(&digest)))
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.class, "input", "{}", e.message);
        assert!(e.message.contains("larger than"), "{}", e.message);
        let left: Vec<_> = walk(cache.path());
        assert!(left.is_empty(), "{left:?}");
    }

    /// A pipeline with the defaults, its cache in `cache`.
    fn bare_pipeline(cache: &std::path::Path) -> super::Pipeline {
        super::Pipeline {
            cache_dir: cache.to_path_buf(),
            runtime: super::RuntimeArg::Auto,
            build_timeout: std::time::Duration::from_secs(1),
            registry: oci::RegistryOptions::default(),
            audit: std::sync::Arc::new(::audit::Settings::default()),
            signer: None,
            references: None,
        }
    }

    /// The files below `dir`.
    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => files.extend(walk(&e.path())),
                _ => files.push(e.path()),
            }
        }
        files
    }

    /// `schemas/server-config.schema.json` names exactly the keys the file takes: each
    /// parses, together they set every field, and another key is refused.
    #[test]
    fn the_config_schema_matches_the_parser() {
        let schema: serde_json::Value = serde_json::from_str(include_str!("../../schemas/server-config.schema.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::new();
        for (key, spec) in schema["properties"].as_object().into_iter().flatten() {
            let value = match (spec["type"].as_str(), spec["enum"].as_array()) {
                (Some("boolean"), _) => "true".to_string(),
                (Some("integer"), _) => "3".to_string(),
                (Some("object"), _) => "{ h = \"1/m\" }".to_string(),
                (Some("array"), _) => {
                    // [[watch]]: a table with every key its definition names.
                    let mut fields = Vec::new();
                    for (k, v) in schema["$defs"]["watch"]["properties"].as_object().into_iter().flatten() {
                        let value = match v["type"].as_str() {
                            Some("array") => "[\"x\"]",
                            Some("object") => "{}",
                            _ => "\"x\"",
                        };
                        fields.push(format!("{k} = {value}"));
                    }
                    format!("[{{ {} }}]", fields.join(", "))
                }
                (_, Some(values)) => values[0].to_string(),
                _ if key == "listen" => "\"127.0.0.1:1\"".to_string(),
                _ => "\"x\"".to_string(),
            };
            text.push_str(&format!("{key} = {value}\n"));
        }
        let config: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(!format!("{config:?}").contains("None"), "a field the schema does not name: {config:?}");
        assert!(toml::from_str::<FileConfig>("tokn = \"x\"\n").is_err());
    }
}
