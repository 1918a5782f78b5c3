//! `reprove worker`: runs the jobs of a `reprove serve` on another machine. It leases jobs
//! through the server's worker API (`server::remote::Remote`; never the database), runs
//! them with the same executor as the server's own workers (`executor.rs`), and on SIGINT
//! or SIGTERM hands its running jobs back. A server that cannot be reached is logged and
//! tried again with backoff; the worker keeps running.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::server::remote::Remote;
use ::server::work::{self, LoopOptions};
use anyhow::anyhow;

use super::executor::{env, init_log, pipeline, stop_on_signals, FileConfig, RunArgs};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server's URL, the root of its API (default: $REPROVE_SERVER).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The worker token (default: $REPROVE_WORKER_TOKEN, the config's `worker-token`, else its `token`).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Jobs run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// This worker's name in the server's leases and logs (default: the host name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A configuration file as `reprove serve` reads (the keys this worker uses: key,
    /// builder-id, audit-dir, runtime, build-timeout, log-format, worker-token, token).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// How often an idle worker asks for a job.
const POLL: Duration = Duration::from_millis(500);

pub(crate) fn run(args: Args) -> CommandResult {
    let file = FileConfig::read(args.config.as_deref())?;
    init_log(args.run.log_format.as_deref(), &file)?;
    let server = args
        .server
        .clone()
        .or_else(|| env("REPROVE_SERVER"))
        .ok_or_else(|| Failure::input(anyhow!("no server: give --server URL (or set $REPROVE_SERVER)")))?;
    let token = args
        .token
        .clone()
        .or_else(|| env("REPROVE_WORKER_TOKEN"))
        .or(file.worker_token.clone())
        .or(file.token.clone())
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Failure::input(anyhow!(
                "no worker token: give --token, set $REPROVE_WORKER_TOKEN or the config's worker-token"
            ))
        })?;
    if args.jobs == 0 {
        return Err(Failure::input(anyhow!("--jobs 0: a worker runs at least one job at a time")));
    }
    let name = match args.name.clone() {
        Some(n) if n.is_empty() || n.len() > 100 || n.contains(|c: char| c.is_control() || c == '/') => {
            return Err(Failure::input(anyhow!("--name {n:?}: 1 to 100 characters, no '/' or control characters")))
        }
        Some(n) => n,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into()),
    };
    let remote = Arc::new(Remote::new(&server, &token).map_err(|e| Failure::input(anyhow!("--server: {e}")))?);
    let executor = Arc::new(pipeline(&file, &args.run)?);
    // Unique per process, also when containers share host names and process ids.
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let instance = format!("{name}.{}.{started}", std::process::id());
    let stop = stop_on_signals()?;
    let runtime = super::io_runtime()?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let options =
            LoopOptions { poll: POLL, backoff: Duration::from_secs(30), shutdown_grace: Duration::from_secs(10) };
        let mut loops = Vec::new();
        for n in 0..args.jobs {
            let name = format!("{instance}/w{n}");
            loops.push(work::spawn(remote.clone(), executor.clone(), name, options.clone(), stop_rx.clone()));
        }
        ::server::log::event(
            "info",
            "worker started",
            &[("server", &server), ("name", &instance), ("jobs", &args.jobs.to_string())],
        );
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ::server::log::event("info", "stopping: handing running jobs back", &[("name", &instance)]);
        remote.stop();
        let _ = stop_tx.send(true);
        for l in loops {
            let _ = l.await;
        }
    });
    ::server::log::event("info", "worker stopped", &[("name", &instance)]);
    Ok(Verdict::Positive)
}
