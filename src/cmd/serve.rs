//! `reprove serve`: the verification service (the `server` crate) with the executor that
//! runs jobs through the verify pipeline (`executor.rs`, shared with `reprove worker`).
//! This file reads the configuration (flags > `REPROVE_*` variables > the config file),
//! builds the runtime and the executor, and serves until SIGINT or SIGTERM, when running
//! jobs are handed back to the queue.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::server::{Config, Server};
use anyhow::{anyhow, Context as _};

use super::executor::{default_data, env, env_parsed, init_log, pipeline, stop_on_signals, FileConfig, RunArgs};
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
    /// The configuration file (TOML; the keys: listen, data, database, token, worker-token: the token
    /// of `reprove worker` processes, else token; read-needs-token, workers, lease-seconds,
    /// max-attempts, noop-jobs: accept no-op jobs, a load-testing aid; loopback-http-references:
    /// accept http:// reference URLs to loopback addresses; max-reference-bytes: the largest
    /// reference file or download of a submission; reference-retention: how long a download no
    /// queued or running job needs is kept (default 7d); log-format, runtime,
    /// build-timeout, audit-dir:
    /// the auditor's directory whose reprove.toml [audit] and reprove.lock audit jobs use;
    /// key: a cosign key, its password from COSIGN_PASSWORD, that signs a provenance and a
    /// VSA of every verify verdict and the image VSA of every audit; builder-id; [[watch]]
    /// tables and watch-rate, watch-rates, watch-backoff, watch-backoff-max, watch-max-tags).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Jobs run at once in this process (default: $REPROVE_WORKERS, the config's `workers`, else 1; 0: none).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// The job database: `sqlite` (embedded, in the data directory) or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, which several servers share, over TLS
    /// (`?sslmode=verify-full` by default, `verify-ca`, `require` or `disable`;
    /// `sslrootcert=CA.pem`, else the system's CAs; `sslcert`, `sslkey`)
    /// (default: $REPROVE_DATABASE, the config's `database`, else sqlite).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

pub(crate) fn run(args: Args) -> CommandResult {
    let file = FileConfig::read(args.config.as_deref())?;
    let database = match args.database.clone().or_else(|| env("REPROVE_DATABASE")).or(file.database.clone()) {
        Some(d) => ::server::queue::Database::parse(&d).map_err(|e| Failure::input(anyhow!("--database: {e}")))?,
        None => ::server::queue::Database::Sqlite,
    };
    init_log(args.run.log_format.as_deref(), &file)?;
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
    // The worker API's token: its own, else the API token.
    config.worker_token = env("REPROVE_WORKER_TOKEN").or(file.worker_token.clone()).map(|t| t.trim().to_string());
    config.noop_jobs = file.noop_jobs.unwrap_or(false);
    config.loopback_http_references = file.loopback_http_references.unwrap_or(false);
    if let Some(max) = file.max_reference_bytes {
        config.max_reference_bytes = max.clamp(1, ::server::MAX_REFERENCE_BYTES);
    }
    if let Some(keep) = &file.reference_retention {
        config.reference_retention =
            ::server::watching::parse_duration(keep).map_err(|e| Failure::input(anyhow!("reference-retention {e}")))?;
    }
    let (watches, watch_settings) = super::serve_watch::WatchConfig {
        watch: file.watch.clone(),
        watch_rate: file.watch_rate.clone(),
        watch_rates: file.watch_rates.clone(),
        watch_backoff: file.watch_backoff.clone(),
        watch_backoff_max: file.watch_backoff_max.clone(),
        watch_max_tags: file.watch_max_tags,
    }
    .build()?;
    // In-process workers read the references the server downloaded.
    let executor = pipeline(&file, &args.run)?.with_references(::server::references_dir(&config.data));
    if watches.iter().any(|w| matches!(w.target, ::server::watching::Target::Image { .. })) && !executor.signs() {
        return Err(Failure::input(anyhow!(
            "[[watch]] of an image pushes a signed VSA of each audit: set `key` in the --config file"
        )));
    }
    config.watches = watches;
    config.watch = watch_settings;
    let lister = super::serve_watch::lister(&args.run.registry.to_options()?);
    let server = Server::open(config, executor).map_err(|e| Failure::infrastructure(anyhow!(e)))?;
    server.watch_with(lister);
    server.resolve_with(Arc::new(super::serve_watch::Revisions { clone: source::CloneOptions::from_env() }));

    let stop = stop_on_signals()?;
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
