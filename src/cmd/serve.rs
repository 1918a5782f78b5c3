//! `reprove serve`: the verification service (the `server` crate) with the executor that
//! runs jobs through the verify pipeline. This file reads the configuration (flags >
//! `REPROVE_*` variables > the config file), builds the runtime and the executor, and
//! serves until SIGINT or SIGTERM, when running jobs are handed back to the queue.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::server::job::{build_partial, JobSpec};
use ::server::{Cancel, Config, ExecError, Executor, JobProgress, JobResult, Server};
use anyhow::{anyhow, Context as _};
use rebuild::{Class, Progress, ReferenceInput, Request, SourceInput, Step};
use serde::Deserialize;

use super::toolchain::{CacheArgs, RegistryArgs};
use super::verify::{module_env, RuntimeArg};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The address to serve the API on (default: $REPROVE_LISTEN, the config's `listen`, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The data directory: the job database and the results (default: $REPROVE_DATA, the
    /// config's `data`, else $XDG_DATA_HOME/reprove/serve or ~/.local/share/reprove/serve).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The configuration file (TOML; the keys: listen, data, database, token, read-needs-token,
    /// workers, lease-seconds, max-attempts, log-format, runtime, build-timeout, audit-dir:
    /// the auditor's directory whose reprove.toml [audit] and reprove.lock audit jobs use;
    /// key: a cosign key, its password from COSIGN_PASSWORD, that signs a provenance and a
    /// VSA of every verify verdict; builder-id).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Jobs run at once in this process (default: $REPROVE_WORKERS, the config's `workers`, else 1; 0: none).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// The job database: `sqlite` (embedded, in the data directory) or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, which several servers share
    /// (default: $REPROVE_DATABASE, the config's `database`, else sqlite).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Log lines as text or JSON (default: $REPROVE_LOG_FORMAT, the config's `log-format`, else text).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// The sandbox runtime of the builds (default: the config's `runtime`, else auto).
    #[arg(long, value_enum)]
    runtime: Option<RuntimeArg>,
    /// Kill a build after this long (default: the config's `build-timeout`, else 1h).
    #[arg(long, value_name = "DURATION", value_parser = sandbox::parse_duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `reprove-server.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    database: Option<String>,
    token: Option<String>,
    read_needs_token: Option<bool>,
    workers: Option<usize>,
    lease_seconds: Option<u64>,
    max_attempts: Option<u32>,
    log_format: Option<String>,
    runtime: Option<String>,
    build_timeout: Option<String>,
    audit_dir: Option<PathBuf>,
    key: Option<PathBuf>,
    builder_id: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_parsed<T: std::str::FromStr>(name: &str) -> Result<Option<T>, Failure>
where
    T::Err: std::fmt::Display,
{
    env(name).map(|v| v.trim().parse::<T>().map_err(|e| Failure::input(anyhow!("${name}={v:?}: {e}")))).transpose()
}

fn default_data() -> Option<PathBuf> {
    env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/share")))
        .map(|d| d.join("reprove/serve"))
}

fn runtime_arg(s: &str) -> Result<RuntimeArg, Failure> {
    <RuntimeArg as clap::ValueEnum>::from_str(s, false)
        .map_err(|_| Failure::input(anyhow!("runtime {s:?}: expected auto, runc, bwrap, podman or docker")))
}

/// The executor of `reprove serve`: verify and check jobs through the pipeline, audit
/// jobs through `audit::audit`, with the server's caches, runtime and registry settings.
struct Pipeline {
    cache_dir: PathBuf,
    runtime: RuntimeArg,
    build_timeout: Duration,
    registry: oci::RegistryOptions,
    /// The auditor's settings (sources, toolchains, ldflags) for audit jobs.
    audit: Arc<::audit::Settings>,
    /// Signs a provenance and a VSA of each verify verdict, with this builder id.
    signer: Option<(Arc<attest::keys::KeySigner>, String)>,
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
                (&v.source, &v.rev, reference, &v.toolchain, &v.recipe, v.from_reference, false)
            }
            JobSpec::Check(c) => (&c.source, &c.rev, ReferenceInput::None, &c.toolchain, &c.recipe, false, true),
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
}

/// Scans `image` and rebuilds every Go binary in it, as `reprove audit IMAGE` does.
fn run_audit(
    image: &str,
    shared: &Request,
    settings: &::audit::Settings,
    cache_dir: &Path,
    cancel: &sandbox::CancelToken,
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
    outcome(&doc, verdict.unwrap_or_default(), failure, None)
}

impl Executor for Pipeline {
    async fn run(&self, job: &JobSpec, progress: Arc<dyn JobProgress>, cancel: Cancel) -> Result<JobResult, ExecError> {
        let work = self.request(job)?;
        let (settings, cache_dir, signer) = (self.audit.clone(), self.cache_dir.clone(), self.signer.clone());
        let token = sandbox::CancelToken::new();
        let flag = token.flag();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        // The pipeline blocks and runs its own runtime: a thread of its own.
        std::thread::Builder::new()
            .name("reprove-job".into())
            .spawn(move || {
                let steps = Steps(progress);
                let _ = tx.send(match work {
                    Work::Audit(image, shared) => run_audit(&image, &shared, &settings, &cache_dir, &token),
                    Work::Check(request) => {
                        let r = rebuild::check::check(&request, &steps, &token);
                        let failure = r.error.as_ref().map(|e| (e.class, e.message.clone()));
                        outcome(&r, r.verdict.as_str().to_string(), failure, None)
                    }
                    Work::Verify(request) => {
                        let r = rebuild::verify(&request, &steps, &token);
                        let verdict = serde_json::to_value(r.verdict).ok().and_then(|v| v.as_str().map(str::to_string));
                        let failure = rebuild::exit_class(&r)
                            .map(|c| (c, r.error.as_ref().map(|e| e.message.clone()).unwrap_or_default()));
                        let module = r.inputs.source.module.as_ref().map(|m| m.path.clone());
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

pub(crate) fn run(args: Args) -> CommandResult {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config {}", path.display()))
                .map_err(Failure::input)?;
            toml::from_str(&text).map_err(|e| Failure::input(anyhow!("--config {}: {e}", path.display())))?
        }
        None => FileConfig::default(),
    };
    let database = match args.database.clone().or_else(|| env("REPROVE_DATABASE")).or(file.database.clone()) {
        Some(d) => ::server::queue::Database::parse(&d).map_err(|e| Failure::input(anyhow!("--database: {e}")))?,
        None => ::server::queue::Database::Sqlite,
    };
    let log_format = args.log_format.clone().or_else(|| env("REPROVE_LOG_FORMAT")).or(file.log_format.clone());
    let log_format = match log_format.as_deref().unwrap_or("text") {
        "text" => ::server::log::Format::Text,
        "json" => ::server::log::Format::Json,
        other => return Err(Failure::input(anyhow!("--log-format {other:?}: expected text or json"))),
    };
    ::server::log::init(log_format);
    let listen = match args.listen {
        Some(l) => l,
        None => env_parsed::<SocketAddr>("REPROVE_LISTEN")?
            .or(file.listen)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    let data = args
        .data
        .clone()
        .or_else(|| env("REPROVE_DATA").map(PathBuf::from))
        .or(file.data.clone())
        .or_else(default_data)
        .ok_or_else(|| Failure::input(anyhow!("no data directory: give --data DIR (or set XDG_DATA_HOME or HOME)")))?;
    let token = env("REPROVE_API_TOKEN").or(file.token.clone()).unwrap_or_default();
    if token.trim().is_empty() {
        return Err(Failure::input(anyhow!(
            "no API token: set $REPROVE_API_TOKEN or `token` in the --config file (submitting jobs always needs it)"
        )));
    }
    let mut config = Config::new(data, token.trim().to_string());
    config.database = database;
    config.read_needs_token =
        env_parsed::<bool>("REPROVE_READ_NEEDS_TOKEN")?.or(file.read_needs_token).unwrap_or(false);
    config.workers = match args.workers {
        Some(n) => n,
        None => env_parsed::<usize>("REPROVE_WORKERS")?.or(file.workers).unwrap_or(1),
    };
    if let Some(s) = env_parsed::<u64>("REPROVE_LEASE_SECONDS")?.or(file.lease_seconds) {
        if s < 3 {
            return Err(Failure::input(anyhow!("lease-seconds {s}: at least 3")));
        }
        config.lease = Duration::from_secs(s);
    }
    if let Some(n) = file.max_attempts {
        config.max_attempts = n.max(1);
    }
    let runtime = match (args.runtime, file.runtime.as_deref()) {
        (Some(r), _) => r,
        (None, Some(r)) => runtime_arg(r)?,
        (None, None) => RuntimeArg::Auto,
    };
    let build_timeout = match (args.timeout, file.build_timeout.as_deref()) {
        (Some(t), _) => t,
        (None, Some(t)) => {
            sandbox::parse_duration(t).map_err(|e| Failure::input(anyhow!("build-timeout {t:?}: {e}")))?
        }
        (None, None) => Duration::from_secs(3600),
    };
    let cache_dir = args.cache.open_store()?.dir().to_path_buf();
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
    let executor = Pipeline {
        cache_dir,
        runtime,
        build_timeout,
        registry: args.registry.to_options()?,
        audit: Arc::new(audit),
        signer,
    };
    let server = Server::open(config, executor).map_err(|e| Failure::infrastructure(anyhow!(e)))?;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Failure::infrastructure(anyhow!("installing the handler for signal {sig}: {e}")))?;
    }
    let runtime = super::io_runtime()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))
            .map_err(Failure::infrastructure)?;
        let shutdown = async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        server.serve(listener, shutdown).await.map_err(|e| Failure::infrastructure(anyhow!(e)))
    })?;
    Ok(Verdict::Positive)
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

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
