//! `reprove toolchain run`: run one command inside a toolchain image or an
//! unpacked rootfs, in the build sandbox.
//!
//! The target is an image pinned by digest (pulled into the cache when it is
//! not there yet), or a rootfs directory (`--rootfs DIR`, or a positional
//! argument that names an existing directory). The command's own exit status
//! is reported on stderr (text) or in the JSON document
//! (schemas/toolchain-run.schema.json). Exit codes: 0 when the command ran and
//! exited 0; 1 when it ran and failed (non-zero exit, killed, timed out); 2 for
//! bad arguments (including a command that does not exist in the image); 3 when
//! the sandbox could not run it, or reprove was interrupted (SIGINT, SIGTERM),
//! in which case the sandbox is killed and cleaned up first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use oci::{PinnedImage, PullOptions};
use sandbox::{self, CancelToken, Job, JobConfig, Limits, Mount, Network, Outcome, Runtime, RuntimeChoice, Status};
use serde_json::json;

use super::toolchain::{fail, CacheArgs, RegistryArgs};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// A toolchain image pinned by digest (name[:tag]@sha256:…), or an unpacked rootfs directory.
    #[arg(value_name = "ROOTFS-or-IMAGE", required_unless_present = "rootfs", conflicts_with = "rootfs")]
    target: Option<String>,
    /// Run in this unpacked root filesystem instead of an image.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// With a rootfs: an OCI image config (JSON) whose config.Env and config.WorkingDir apply.
    #[arg(long, value_name = "FILE")]
    image_config: Option<PathBuf>,
    /// Bind-mount a host path into the sandbox, read-write unless :ro. Repeatable.
    #[arg(long = "mount", value_name = "SRC:DST[:ro]")]
    mounts: Vec<String>,
    /// Set a variable in the sandbox (over the image's). Repeatable. Nothing else comes from the host.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The working directory in the sandbox (default: the image's WorkingDir, else /).
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// `none`: a network namespace with only loopback; `host`: the host's network.
    #[arg(long, value_enum, default_value = "none")]
    network: NetworkArg,
    /// Kill the sandbox after this long (90s, 30m, 1h30m, or seconds).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = sandbox::parse_duration)]
    timeout: Duration,
    /// Memory limit (512M, 2G): for the whole sandbox where cgroups work, else per process (RLIMIT_DATA).
    #[arg(long, value_name = "SIZE", value_parser = sandbox::parse_size)]
    memory: Option<u64>,
    /// At most this many processes (threads count) in the sandbox: a pids cgroup (runc, bwrap as root, podman,
    /// docker), else RLIMIT_NPROC (rootless).
    #[arg(long, value_name = "N", default_value = "4096", value_parser = clap::value_parser!(u64).range(1..))]
    pids: u64,
    /// The container runtime; `auto` takes the first of runc, bwrap, podman, docker that works.
    #[arg(long, value_enum, default_value = "auto")]
    runtime: RuntimeArg,
    /// Time between SIGTERM and SIGKILL when the sandbox is stopped.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = sandbox::parse_duration)]
    kill_grace: Duration,
    /// Bytes of stdout and of stderr kept each (the JSON document carries them); the rest is dropped.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = sandbox::parse_size)]
    output_cap: u64,
    /// Print one JSON document (schemas/toolchain-run.schema.json) instead of streaming the output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The command to run and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum NetworkArg {
    None,
    Host,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RuntimeArg {
    Auto,
    Runc,
    Bwrap,
    Podman,
    Docker,
}

impl RuntimeArg {
    fn choice(self) -> RuntimeChoice {
        match self {
            RuntimeArg::Auto => RuntimeChoice::Auto,
            RuntimeArg::Runc => RuntimeChoice::Only(Runtime::Runc),
            RuntimeArg::Bwrap => RuntimeChoice::Only(Runtime::Bwrap),
            RuntimeArg::Podman => RuntimeChoice::Only(Runtime::Podman),
            RuntimeArg::Docker => RuntimeChoice::Only(Runtime::Docker),
        }
    }
}

/// What the sandbox runs in, resolved from the arguments.
struct Target {
    rootfs: PathBuf,
    image: Option<String>,
    env: Vec<String>,
    workdir: Option<String>,
    /// Keeps `toolchain gc` from removing the image while it is in use.
    _guard: Option<oci::StoreGuard>,
}

fn sandbox_failure(e: sandbox::Error) -> Failure {
    if e.is_input() {
        Failure::input(e)
    } else {
        Failure::infrastructure(e)
    }
}

pub(crate) fn run(args: RunArgs) -> CommandResult {
    let target = resolve(&args)?;
    let mounts = args.mounts.iter().map(|m| Mount::parse(m)).collect::<Result<Vec<_>, _>>().map_err(sandbox_failure)?;
    let output_cap = usize::try_from(args.output_cap).unwrap_or(usize::MAX);
    let job = Job::new(JobConfig {
        rootfs: target.rootfs.clone(),
        argv: args.command.clone(),
        image_env: target.env.clone(),
        env: args.env.clone(),
        workdir: args.workdir.clone().or(target.workdir.clone()),
        mounts,
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host => Network::Host,
        },
        limits: Limits {
            timeout: args.timeout,
            memory: args.memory,
            pids: Some(args.pids),
            output_cap,
            kill_grace: args.kill_grace,
        },
        echo: !args.json,
        user: None,
        umask: None,
    })
    .map_err(sandbox_failure)?;

    // From here on, SIGINT and SIGTERM stop the sandbox cleanly instead of killing reprove.
    let cancel = CancelToken::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, cancel.flag())
            .map_err(|e| Failure::infrastructure(anyhow!("installing the handler for signal {sig}: {e}")))?;
    }

    let selection = sandbox::select(args.runtime.choice(), &job, &cancel).map_err(sandbox_failure)?;
    for (rt, why) in &selection.skipped {
        eprintln!("reprove: {rt} skipped: {why}");
    }
    let runtime = selection.runner.runtime();
    if selection.unprobed {
        eprintln!(
            "reprove: the image has neither `true` nor `go` on its PATH: {runtime} was chosen without a trial run"
        );
    }
    if matches!(args.runtime, RuntimeArg::Auto) {
        eprintln!("reprove: runtime: {runtime}");
    }
    let outcome = selection.runner.run(&job, &cancel).map_err(sandbox_failure)?;
    for note in &outcome.notes {
        eprintln!("reprove: note: {note}");
    }

    if args.json {
        println!("{:#}", document(&args, &target, &job, &outcome, &selection.skipped));
    } else {
        report_text(&args.command, &outcome);
    }
    match outcome.status {
        Status::Exited(0) => Ok(Verdict::Positive),
        Status::Cancelled => {
            Err(Failure::infrastructure(anyhow!("interrupted: the sandbox was stopped and cleaned up")))
        }
        _ => Ok(Verdict::Negative),
    }
}

fn resolve(args: &RunArgs) -> Result<Target, Failure> {
    let (rootfs_dir, image) = match (&args.rootfs, &args.target) {
        (Some(dir), _) => (Some(dir.clone()), None),
        (None, Some(t)) if Path::new(t).is_dir() => (Some(PathBuf::from(t)), None),
        (None, Some(t)) => (None, Some(t.clone())),
        (None, None) => {
            return Err(Failure::input(anyhow!("name an image (IMAGE@sha256:…) or a rootfs directory (--rootfs DIR)")))
        }
    };
    if let Some(rootfs) = rootfs_dir {
        let (env, workdir) = match &args.image_config {
            Some(file) => read_image_config(file)?,
            None => (Vec::new(), None),
        };
        return Ok(Target { rootfs, image: None, env, workdir, _guard: None });
    }
    if args.image_config.is_some() {
        return Err(Failure::input(anyhow!("--image-config applies to a rootfs; an image carries its own config")));
    }
    let text = image.unwrap_or_default();
    let pinned: PinnedImage = text.parse().map_err(fail)?;
    let store = args.cache.open_store()?;
    let guard = store.hold().map_err(fail)?;
    let pulled = match store.get(pinned.reference(), None).map_err(fail)? {
        Some(image) => image,
        None => {
            eprintln!("reprove: pulling {pinned}");
            let options = PullOptions { registry: args.registry.to_options()?, ..PullOptions::default() };
            store.pull_blocking(&*super::io_runtime()?, pinned.reference(), &options).map_err(fail)?
        }
    };
    for w in &pulled.warnings {
        eprintln!("reprove: warning: {w}");
    }
    let config = pulled.config.config().as_ref();
    let env = config.and_then(|c| c.env().clone()).unwrap_or_default();
    let workdir = config.and_then(|c| c.working_dir().clone());
    Ok(Target { rootfs: pulled.rootfs.clone(), image: Some(pinned.to_string()), env, workdir, _guard: Some(guard) })
}

/// `config.Env` and `config.WorkingDir` of an OCI image config file.
fn read_image_config(file: &Path) -> Result<(Vec<String>, Option<String>), Failure> {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::input(anyhow!("reading image config {}: {e}", file.display())))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::input(anyhow!("image config {}: not JSON: {e}", file.display())))?;
    let config = &value["config"];
    let env = match &config["Env"] {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Failure::input(anyhow!("image config {}: config.Env must be strings", file.display())))?,
        _ => return Err(Failure::input(anyhow!("image config {}: config.Env must be an array", file.display()))),
    };
    let workdir = config["WorkingDir"].as_str().filter(|w| !w.is_empty()).map(str::to_string);
    Ok((env, workdir))
}

fn report_text(command: &[String], outcome: &Outcome) {
    let secs = outcome.duration.as_secs_f64();
    eprintln!("reprove: `{}` {} ({}, {secs:.2}s)", command.join(" "), outcome.status, outcome.runtime);
    for (name, c) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        if c.truncated() {
            eprintln!("reprove: {name}: kept {} of {} bytes (--output-cap)", c.bytes.len(), c.total);
        }
    }
}

fn document(
    args: &RunArgs,
    target: &Target,
    job: &Job,
    outcome: &Outcome,
    skipped: &[(Runtime, String)],
) -> serde_json::Value {
    let (status, exit_code, signal) = match outcome.status {
        Status::Exited(c) => ("exited", Some(c), None),
        Status::Signaled(s) => ("signaled", None, Some(s)),
        Status::TimedOut => ("timed_out", None, None),
        Status::Cancelled => ("interrupted", None, None),
    };
    json!({
        "runtime": outcome.runtime.name(),
        "skipped": skipped.iter().map(|(rt, why)| json!({"runtime": rt.name(), "reason": why})).collect::<Vec<_>>(),
        "image": target.image,
        "rootfs": job.rootfs().display().to_string(),
        "command": args.command,
        "network": job.network().name(),
        "status": status,
        "exit_code": exit_code,
        "signal": signal,
        "duration_ms": u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        "stdout": String::from_utf8_lossy(&outcome.stdout.bytes),
        "stdout_bytes": outcome.stdout.total,
        "stdout_truncated": outcome.stdout.truncated(),
        "stderr": String::from_utf8_lossy(&outcome.stderr.bytes),
        "stderr_bytes": outcome.stderr.total,
        "stderr_truncated": outcome.stderr.truncated(),
        "notes": outcome.notes,
    })
}
