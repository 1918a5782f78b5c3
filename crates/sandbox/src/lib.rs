//! The build sandbox: runs one command inside an unpacked image, isolated.
//!
//! What it is: the only part of reprove that starts build processes
//! (**Invariant**: nothing outside `sandbox` spawns a build, a probe, or a
//! container runtime). A [`Job`] — a rootfs directory, the image's environment
//! and working directory, the command, bind mounts, network mode and
//! [`Limits`] — goes to a [`Runner`]; an [`Outcome`] comes back: how the
//! command ended ([`Status`]), its output up to a cap, which runtime ran it,
//! and notes on what could not be enforced. An [`Error`] means the sandbox
//! could not run the command at all (or could not be cleaned up).
//!
//! What it isn't: it does not pull or unpack images (`toolchain` does, and
//! hands over a rootfs and its config), and it does not decide what to build.
//!
//! Backends ([`Runtime`]), each tested against the real runtime:
//!
//! - **runc**: an OCI runtime bundle generated with `oci-spec`. The bundle's
//!   root is an empty skeleton mounted read-only, with the image's top-level
//!   directories bind-mounted read-only (`nosuid`, `nodev`) and its top-level
//!   symlinks recreated, so that mount points for new directories such as
//!   `/out` never have to be created in the (shared, cached) image. Fresh
//!   `/proc`, `/dev`, `/dev/pts`, `/dev/shm` and a tmpfs `/tmp`; new pid, ipc,
//!   uts, mount and (unless `--network host`) network namespaces, the last with
//!   only loopback; all capabilities dropped, `noNewPrivileges`, a seccomp
//!   profile that makes `mount`, `kexec_load`, `bpf`, `keyctl`, `ptrace`,
//!   `unshare` and other calls a build never needs fail with `EPERM`
//!   (`runc::DENIED_SYSCALLS`), rlimits (`NOFILE`, `CORE=0`); a user namespace mapping the caller to root when
//!   not running as root. Memory and process limits are cgroup limits where
//!   cgroups can be used (v1, hybrid or v2, probed), else `RLIMIT_DATA` and,
//!   rootless, `RLIMIT_NPROC` (see `cgroups` for what binds where).
//! - **bwrap** (bubblewrap): the same layout with `--unshare-all` (plus
//!   `--share-net` for host networking), `--die-with-parent`,
//!   `--new-session`, `--cap-drop ALL`, `--clearenv`, fresh `/proc` (with
//!   runc's read-only and masked paths: `/proc/sys`, `/proc/sysrq-trigger`…),
//!   `/dev` and tmpfs `/tmp`, and `--remount-ro /` last; the same seccomp
//!   denials as runc, as a BPF program generated in `seccomp` (`--seccomp
//!   FD`); rlimits through
//!   util-linux's `prlimit` (`NOFILE`, `CORE=0`, `DATA` for memory); the
//!   process count by a pids cgroup of its own as root, `RLIMIT_NPROC` rootless.
//! - **podman** and **docker**: their CLIs, where an engine answers; podman
//!   (daemonless) runs the rootfs under an overlay (`--rootfs DIR:O`, so the
//!   image is not written to) with `RLIMIT_NPROC` set to what its monitor can
//!   grant; docker imports the rootfs once as an image.
//!   `--read-only`, `--network none`, `--cap-drop ALL`,
//!   `--security-opt no-new-privileges`, `--memory`, `--pids-limit`.
//!
//! [`select`] with [`RuntimeChoice::Auto`] takes the first of runc, bwrap,
//! podman, docker that actually runs a trivial command (`true`, or else `go
//! version`) in the rootfs; the probe's result is cached per process.
//!
//! Every child process has a deadline and an output cap. On a timeout or a
//! cancellation ([`CancelToken`], set by the CLI on SIGINT and SIGTERM) the
//! whole process tree gets SIGTERM, then SIGKILL after [`Limits::kill_grace`];
//! runc containers are then deleted (`runc delete --force`: processes,
//! cgroup, state), engine containers removed, and the bundle directory
//! removed. Mounts live only in the sandbox's mount namespace and disappear
//! with it. Nothing is left running; the tests check `/proc` for it.
//!
//! **Guarantee:** [`Runner::run`] returns only after every process of the
//! sandbox is gone, so that what the command wrote into a mount (the build
//! output) can be read by the caller alone. Every backend runs the command in
//! a pid namespace of its own, and the kernel kills every process of a pid
//! namespace, and waits for them, before the namespace's init is reaped:
//! - runc: `runc run` returns once it has reaped the container's init (its
//!   child). As root runc is itself the init of a pid namespace of its own
//!   (below), so its exit is the end of both namespaces; otherwise the run
//!   waits until the init (`--pid-file`) is gone, and fails with
//!   [`Error::Cleanup`] if it is not.
//! - bwrap: `--unshare-pid --die-with-parent`; bwrap exits as soon as its
//!   init reports the command's status, so the run waits until that init
//!   (`child-pid` on the status descriptor) is gone, else [`Error::Cleanup`];
//!   as root, the pids cgroup is emptied and removed too.
//! - podman and docker: the container's init is the command's parent;
//!   `--rm`, then `rm --force`, and the run fails unless the engine no longer
//!   lists the container (the engine removes its cgroup only when empty).
//!
//! **A killed reprove** (SIGKILL, which nothing can catch) leaves no running
//! sandbox with runc as root and with bwrap: runc runs under util-linux's
//! `setpriv --pdeathsig KILL unshare --pid --fork --mount-proc
//! --kill-child=KILL`, so the kernel kills it, and with it its pid namespace
//! and the container's, when reprove's spawning thread (which waits for the
//! run) dies; bwrap's init has `--die-with-parent`. Rootless runc dies with
//! reprove (`setpriv`) but its container would keep running (`unshare --pid`
//! would need a user namespace in which runc would no longer run rootless),
//! and so would podman and docker containers (killing their CLI stops
//! nothing): for these a guard process (`sh` under `setpriv --pdeathsig
//! TERM`) that the kernel signals when reprove's spawning thread dies runs
//! `runc delete --force ID` or `podman|docker rm --force NAME`.
//! What a killed run leaves — runc containers, state, cgroups and bundles,
//! engine containers, bwrap's pids cgroups, all named `reprove-<pid>-…` — is
//! removed by [`collect_leftovers`] (`reprove toolchain gc`), and runc's by
//! the next runc run, once `<pid>` no longer exists.
//!
//! # Design notes
//!
//! Runs one command in an unpacked image with runc, bubblewrap,
//! docker or podman behind the `Runner` trait. Input is a `Job`, output an
//! `Outcome`; it does not pull images or decide what to build.
//!
//! **Invariant:** only `sandbox` starts child processes for builds and runtimes
//! (`process.rs`), each with a deadline, an output cap, its own process group and
//! SIGTERM then SIGKILL of the whole tree; other host commands go through
//! `sandbox::run_host`.
//!
//! **Invariant:** `Runner::run` returns only after every process of the
//! sandbox is gone (the pid namespace's init reaped, else `Error::Cleanup`),
//! so the build output is then read by reprove alone: once, with `O_NOFOLLOW`
//! from the output directory, a regular file with one link within a size
//! limit (`confined::ConfinedDir::open_single`), else verdict `error`, code
//! `output-tampered`, and nothing is signed. A killed reprove leaves no running
//! runc (as root) or bwrap sandbox: runc runs under `setpriv --pdeathsig KILL
//! unshare --pid --fork --kill-child`, bwrap with `--die-with-parent`; a
//! rootless runc container or an engine container is deleted by a guard
//! (`process::DeathGuard`: `sh` under `setpriv --pdeathsig TERM`, whose trap
//! runs `runc delete --force` or `rm --force`) when reprove dies; `toolchain gc`
//! removes every leftover `reprove-<dead pid>-…` container, bundle and cgroup,
//! and the `work/verify-*` directories whose run no longer holds their `.lock`.
//!
//! **Invariant:** the cached image is never written to: runc and bwrap mount its
//! top-level directories read-only on an empty skeleton; podman runs it under an
//! overlay (`--rootfs DIR:O`); docker imports a copy.
//!
//! **User and umask:** a job runs as 0:0 with the runtime's umask unless it
//! sets `user`/`umask`; runc as root puts both in `process.user` (the runtime
//! spec's `umask`, honoured since runc 1.1) and makes the skeleton's `/tmp`
//! 1777 (runc gives a tmpfs its mount point's mode); rootless runc, bwrap and
//! the engines refuse them with `Error::Unsupported` instead of ignoring them.
//!
//! **Seccomp:** runc and bwrap run every sandbox with a default filter (allow,
//! but `mount`, `kexec_*`, `bpf`, `keyctl`, `ptrace`, `unshare`… fail with
//! `EPERM`), from one list (`runc::DENIED_SYSCALLS`): runc's as a profile in the
//! spec (native and compat architectures), bwrap's as a classic BPF program
//! generated by `seccomp.rs` (x86_64 and aarch64 numbers; other architectures
//! and x32 calls denied) and handed over in an inherited memfd (`--seccomp FD`);
//! podman and docker apply their own default profiles.
//!
//! **Limits:** memory and process count are cgroup limits where a cgroup can be
//! created (`cgroups.rs` reads v1, hybrid and v2 layouts from
//! `/proc/self/mountinfo` and probes by creating one): runc's own cgroup, a pids
//! cgroup bwrap's first process enters before it execs, podman's and docker's.
//! Where cgroups cannot be used, rlimits: `RLIMIT_DATA` per process for memory,
//! and `RLIMIT_NPROC` for the process count, which binds only rootless sandboxes
//! (the kernel exempts the host's uid 0); as root without cgroups the process
//! count is not limited. Every fallback is named in the outcome's notes.
#![deny(missing_docs)]

mod bwrap;
mod cgroups;
mod engine;
mod job;
mod process;
mod runc;
mod seccomp;
mod units;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use job::{Job, JobConfig, Limits, Mount, Network, DEFAULT_PATH};
pub use runc::state_root as runc_state_root;
pub use units::{parse_duration, parse_size};

/// A container runtime reprove can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// runc, with a generated OCI bundle.
    Runc,
    /// bubblewrap.
    Bwrap,
    /// The podman CLI.
    Podman,
    /// The docker CLI.
    Docker,
}

impl Runtime {
    /// The order in which [`RuntimeChoice::Auto`] tries them.
    pub const AUTO_ORDER: [Runtime; 4] = [Runtime::Runc, Runtime::Bwrap, Runtime::Podman, Runtime::Docker];

    /// `runc`, `bwrap`, `podman` or `docker`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Bwrap => "bwrap",
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Runtime {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Runtime::AUTO_ORDER.into_iter().find(|r| r.name() == s).ok_or_else(|| Error::Invalid {
            what: "runtime",
            value: s.to_string(),
            reason: "expected runc, bwrap, podman or docker".into(),
        })
    }
}

/// Which runtime to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeChoice {
    /// The first that works, in [`Runtime::AUTO_ORDER`].
    #[default]
    Auto,
    /// This one.
    Only(Runtime),
}

/// Set to stop a running sandbox: it is then killed and cleaned up, and the
/// run ends with [`Status::Cancelled`]. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

impl CancelToken {
    /// A token that is not set.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Sets the token.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether the token is set.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The flag itself, for a signal handler to set (`signal_hook::flag::register`).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code. runc and bwrap report a command killed by a
    /// signal as `128 + signal`.
    Exited(i32),
    /// The runtime process itself was killed by this signal.
    Signaled(i32),
    /// [`Limits::timeout`] passed; the sandbox was killed.
    TimedOut,
    /// The [`CancelToken`] was set; the sandbox was killed.
    Cancelled,
}

impl Status {
    /// Whether the command ran and exited 0.
    pub fn success(self) -> bool {
        self == Status::Exited(0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exited with status {c}"),
            Status::Signaled(s) => write!(f, "killed by signal {s}"),
            Status::TimedOut => f.write_str("timed out"),
            Status::Cancelled => f.write_str("interrupted"),
        }
    }
}

/// Captured output: the first bytes up to the cap, and how many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The bytes kept (at most [`Limits::output_cap`]).
    pub bytes: Vec<u8>,
    /// How many bytes the command wrote in all.
    pub total: u64,
}

impl Captured {
    /// Whether bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The runtime that ran it.
    pub runtime: Runtime,
    /// How the command ended.
    pub status: Status,
    /// Its standard output.
    pub stdout: Captured,
    /// Its standard error (for runc, runc's own messages too).
    pub stderr: Captured,
    /// Wall-clock time from start to the end of cleanup.
    pub duration: Duration,
    /// What could not be enforced or was done differently, in plain words
    /// (e.g. "cgroups unusable here: …; memory limited per process by RLIMIT_DATA").
    pub notes: Vec<String>,
}

/// A way to run [`Job`]s in a sandbox.
pub trait Runner: Send + Sync {
    /// Which runtime this is.
    fn runtime(&self) -> Runtime;

    /// Whether the runtime is installed and answers (the binary is there; an
    /// engine's daemon responds). Starts no sandbox.
    fn check_available(&self) -> Result<(), Error>;

    /// Runs `job`, returning when the command has ended and everything it
    /// started is gone.
    fn run(&self, job: &Job, cancel: &CancelToken) -> Result<Outcome, Error>;
}

/// The real backend for `runtime`, with default settings.
pub fn runner(runtime: Runtime) -> Box<dyn Runner> {
    match runtime {
        Runtime::Runc => Box::new(runc::Runc::new()),
        Runtime::Bwrap => Box::new(bwrap::Bwrap::new()),
        Runtime::Podman | Runtime::Docker => Box::new(engine::Engine::new(runtime)),
    }
}

/// A chosen runner and why the ones before it were passed over.
pub struct Selection {
    /// The runner to use.
    pub runner: Box<dyn Runner>,
    /// Runtimes tried first that did not work, with the reason.
    pub skipped: Vec<(Runtime, String)>,
    /// Set when the chosen runtime could not be probed by running a command
    /// (the image has neither `true` nor `go` on its `PATH`).
    pub unprobed: bool,
}

impl fmt::Debug for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selection")
            .field("runtime", &self.runner.runtime())
            .field("skipped", &self.skipped)
            .field("unprobed", &self.unprobed)
            .finish()
    }
}

/// Probe results per runtime, for the lifetime of the process.
type ProbeCache = Mutex<HashMap<Runtime, Result<(), String>>>;

fn probe_cache() -> &'static ProbeCache {
    static CACHE: OnceLock<ProbeCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Picks the runner for `job`. With [`RuntimeChoice::Only`], checks that the
/// runtime is available; with [`RuntimeChoice::Auto`], probes the runtimes in
/// [`Runtime::AUTO_ORDER`] by running a trivial command in `job`'s rootfs.
pub fn select(choice: RuntimeChoice, job: &Job, cancel: &CancelToken) -> Result<Selection, Error> {
    match choice {
        RuntimeChoice::Only(rt) => {
            let runner = runner(rt);
            runner.check_available()?;
            Ok(Selection { runner, skipped: Vec::new(), unprobed: false })
        }
        RuntimeChoice::Auto => {
            select_from(Runtime::AUTO_ORDER.into_iter().map(runner).collect(), job, cancel, probe_cache())
        }
    }
}

fn select_from(
    runners: Vec<Box<dyn Runner>>,
    job: &Job,
    cancel: &CancelToken,
    cache: &ProbeCache,
) -> Result<Selection, Error> {
    let probe_job = job.probe();
    let mut skipped = Vec::new();
    for runner in runners {
        let rt = runner.runtime();
        let cached = cache.lock().ok().and_then(|c| c.get(&rt).cloned());
        let verdict = match cached {
            Some(v) => v,
            None => {
                let v = probe(runner.as_ref(), probe_job.as_ref(), cancel);
                if cancel.is_cancelled() {
                    return Err(Error::Start { runtime: rt, message: "interrupted while probing".into() });
                }
                if let Ok(mut c) = cache.lock() {
                    c.insert(rt, v.clone());
                }
                v
            }
        };
        match verdict {
            Ok(()) => return Ok(Selection { runner, skipped, unprobed: probe_job.is_none() }),
            Err(reason) => skipped.push((rt, reason)),
        }
    }
    Err(Error::NoRuntime {
        tried: skipped.iter().map(|(rt, why)| format!("{rt}: {why}")).collect::<Vec<_>>().join("; "),
    })
}

fn probe(runner: &dyn Runner, probe_job: Option<&Job>, cancel: &CancelToken) -> Result<(), String> {
    runner.check_available().map_err(|e| e.to_string())?;
    let Some(job) = probe_job else { return Ok(()) };
    match runner.run(job, cancel) {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "probe `{}` {}: {}",
            job.argv().join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr.bytes).trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// What a host command run by [`run_host`] did.
#[derive(Debug, Clone)]
pub struct HostOutput {
    /// The exit status; `None` when the timeout killed it.
    pub status: Option<std::process::ExitStatus>,
    /// Its standard output, up to the cap.
    pub stdout: Captured,
    /// Its standard error, up to the cap.
    pub stderr: Captured,
}

/// Runs a helper command on the host, outside any sandbox (`go list`, `git`…),
/// the way every child process of reprove should run: stdin from `/dev/null`,
/// a process group of its own, stdout and stderr captured up to `output_cap`
/// bytes each, and SIGKILL to the whole group after `timeout` (then `status`
/// is `None`). Builds do not go through here: they go through a [`Runner`].
pub fn run_host(cmd: &mut std::process::Command, timeout: Duration, output_cap: usize) -> Result<HostOutput, Error> {
    cmd.stdin(std::process::Stdio::null());
    let mut child = process::spawn(cmd, output_cap, false)?;
    let status = match child.wait_until(std::time::Instant::now() + timeout, &CancelToken::new())? {
        process::Waited::Exited(s) => Some(s),
        process::Waited::TimedOut | process::Waited::Cancelled => {
            child.kill()?;
            None
        }
    };
    let (stdout, stderr, _) = child.output();
    Ok(HostOutput { status, stdout, stderr })
}

/// Why [`run_small_host`] has no output.
#[derive(Debug, thiserror::Error)]
pub enum SmallHostError {
    /// The command could not be started or waited for.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The child process was gone before it could be waited for.
    #[error("no child process")]
    NoChild,
    /// The time limit passed; the command was killed.
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
}

/// Runs a short host command that prints little (`go env -json`) with a time limit,
/// killing it when the limit passes. Unlike a runner with reader threads, it
/// still works when no thread can be created (a process limit that is almost
/// reached, which `reprove doctor` must be able to report): the wait then
/// happens on the calling thread, without the time limit.
pub fn run_small_host(
    cmd: &mut std::process::Command,
    timeout: Duration,
) -> Result<std::process::Output, SmallHostError> {
    use std::process::Stdio;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(child)));
    let slot2 = slot.clone();
    let spawned = std::thread::Builder::new().name("go-env".into()).spawn(move || {
        let child = slot2.lock().ok().and_then(|mut c| c.take());
        if let Some(c) = child {
            let _ = tx.send(c.wait_with_output());
        }
    });
    if spawned.is_err() {
        let child = slot.lock().ok().and_then(|mut c| c.take()).ok_or(SmallHostError::NoChild)?;
        return Ok(child.wait_with_output()?);
    }
    match rx.recv_timeout(timeout) {
        Ok(r) => Ok(r?),
        Err(_) => {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            Err(SmallHostError::Timeout(timeout))
        }
    }
}

/// What [`collect_leftovers`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// runc containers deleted (processes, cgroup, state).
    pub runc_containers: usize,
    /// podman and docker containers removed.
    pub engine_containers: usize,
    /// Bundle and engine working directories removed from the temporary directory.
    pub directories: usize,
    /// bwrap's pids cgroups removed.
    pub cgroups: usize,
}

impl Leftovers {
    /// How many things were removed in all.
    pub fn total(&self) -> usize {
        self.runc_containers + self.engine_containers + self.directories + self.cgroups
    }
}

/// Removes what sandboxes of reprove processes that are gone (killed with
/// SIGKILL) left behind: runc containers and their state and cgroups, podman
/// and docker containers, bundle directories, bwrap's pids cgroups. Every
/// name starts with `reprove-<pid>-`; only those whose process no longer
/// exists are touched, never those of a live run.
pub fn collect_leftovers() -> Leftovers {
    let dead = |name: &str| {
        name.strip_prefix("reprove-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    let mut left = Leftovers { runc_containers: runc::Runc::new().collect_stale_all(), ..Leftovers::default() };
    for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.contains("-bundle-") || name.contains("-cwd-");
        if ours
            && dead(&name)
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            left.directories += 1;
        }
    }
    left.cgroups = cgroups::collect_stale(&dead);
    left.engine_containers = engine::collect_stale(&dead);
    left
}

/// A unique name for a container or bundle: `reprove-<pid>-<n>-<nanos>`.
/// The pid lets a later run recognise leftovers of a dead process.
pub(crate) fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("reprove-{}-{n}-{nanos:08x}", std::process::id())
}

/// Everything that can keep a command from running in the sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is malformed (mount, environment entry, duration, size…).
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What kind of argument.
        what: &'static str,
        /// The argument as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The rootfs cannot be used.
    #[error("rootfs {path}: {reason}")]
    Rootfs {
        /// The rootfs as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The runtime's program is not installed.
    #[error("{runtime} is not installed: no `{program}` on PATH or in /usr/local/sbin, /usr/sbin, /sbin")]
    NotInstalled {
        /// The runtime.
        runtime: Runtime,
        /// The program looked for.
        program: String,
    },
    /// The runtime is installed but cannot run sandboxes here.
    #[error("{runtime} cannot run sandboxes here: {reason}")]
    Unavailable {
        /// The runtime.
        runtime: Runtime,
        /// Why, with the runtime's own message.
        reason: String,
    },
    /// `--runtime auto` found nothing that works.
    #[error("no sandbox runtime works here: {tried}")]
    NoRuntime {
        /// Each runtime and why it did not work.
        tried: String,
    },
    /// The runtime failed to set up the sandbox.
    #[error("{runtime} could not start the sandbox: {message}")]
    Start {
        /// The runtime.
        runtime: Runtime,
        /// The runtime's own message.
        message: String,
    },
    /// The command does not exist in the image.
    #[error("{runtime}: command {command:?} not found in the image: {message}")]
    CommandNotFound {
        /// The runtime.
        runtime: Runtime,
        /// The command.
        command: String,
        /// The runtime's own message.
        message: String,
    },
    /// A program could not be started on the host.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A filesystem operation on the host failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What reprove was doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The runtime cannot honour part of the job (a umask, a non-root user).
    #[error("{runtime} cannot {feature} here: {reason}")]
    Unsupported {
        /// The runtime.
        runtime: Runtime,
        /// What it cannot do, e.g. "set the umask".
        feature: &'static str,
        /// Why.
        reason: String,
    },
    /// The sandbox could not be cleaned up: something may be left behind.
    #[error("{runtime}: cleaning up {id} failed, processes or state may be left behind: {message}")]
    Cleanup {
        /// The runtime.
        runtime: Runtime,
        /// The container or bundle.
        id: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// Whether the error is the caller's input (exit 2) rather than the
    /// machine's or the runtime's (exit 3).
    pub fn is_input(&self) -> bool {
        matches!(self, Error::Invalid { .. } | Error::Rootfs { .. } | Error::CommandNotFound { .. })
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { action, path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A recording fake: answers availability and runs as configured, and
    /// counts how often it was asked.
    struct Fake {
        runtime: Runtime,
        available: bool,
        exit: i32,
        runs: Arc<AtomicUsize>,
    }

    impl Runner for Fake {
        fn runtime(&self) -> Runtime {
            self.runtime
        }

        fn check_available(&self) -> Result<(), Error> {
            if self.available {
                Ok(())
            } else {
                Err(Error::NotInstalled { runtime: self.runtime, program: self.runtime.name().into() })
            }
        }

        fn run(&self, _job: &Job, _cancel: &CancelToken) -> Result<Outcome, Error> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Ok(Outcome {
                runtime: self.runtime,
                status: Status::Exited(self.exit),
                stdout: Captured::default(),
                stderr: Captured { bytes: b"boom".to_vec(), total: 4 },
                duration: Duration::ZERO,
                notes: Vec::new(),
            })
        }
    }

    fn job(with_true: bool) -> (tempfile::TempDir, Job) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::create_dir_all(dir.path().join("bin")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        if with_true {
            let t = dir.path().join("bin/true");
            std::fs::write(&t, b"").unwrap_or_else(|e| panic!("write: {e}"));
            std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("chmod: {e}"));
        }
        let job = Job::new(JobConfig { rootfs: dir.path().into(), argv: vec!["x".into()], ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, job)
    }

    #[test]
    fn auto_takes_the_first_that_runs_the_probe_and_caches() {
        let (_dir, job) = job(true);
        let runs: Vec<Arc<AtomicUsize>> = (0..4).map(|_| Arc::default()).collect();
        let fakes = || -> Vec<Box<dyn Runner>> {
            vec![
                Box::new(Fake { runtime: Runtime::Runc, available: false, exit: 0, runs: Arc::clone(&runs[0]) }),
                Box::new(Fake { runtime: Runtime::Bwrap, available: true, exit: 1, runs: Arc::clone(&runs[1]) }),
                Box::new(Fake { runtime: Runtime::Podman, available: true, exit: 0, runs: Arc::clone(&runs[2]) }),
                Box::new(Fake { runtime: Runtime::Docker, available: true, exit: 0, runs: Arc::clone(&runs[3]) }),
            ]
        };
        let cache = ProbeCache::default();
        let cancel = CancelToken::new();
        for _ in 0..2 {
            let sel = select_from(fakes(), &job, &cancel, &cache).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sel.runner.runtime(), Runtime::Podman);
            assert!(!sel.unprobed);
            let reasons: Vec<String> = sel.skipped.iter().map(|(rt, why)| format!("{rt}: {why}")).collect();
            assert!(reasons[0].starts_with("runc: runc is not installed"), "{reasons:?}");
            assert!(reasons[1].contains("probe `/bin/true` exited with status 1: boom"), "{reasons:?}");
        }
        let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(counts, [0, 1, 1, 0], "each runtime is probed at most once per process");
    }

    #[test]
    fn auto_without_a_probe_command_uses_availability() {
        let (_dir, job) = job(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let fakes: Vec<Box<dyn Runner>> =
            vec![Box::new(Fake { runtime: Runtime::Bwrap, available: true, exit: 1, runs: Arc::clone(&runs) })];
        let sel =
            select_from(fakes, &job, &CancelToken::new(), &ProbeCache::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(sel.unprobed);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn auto_reports_every_failure() {
        let (_dir, job) = job(true);
        let fakes: Vec<Box<dyn Runner>> = Runtime::AUTO_ORDER
            .into_iter()
            .map(|runtime| {
                Box::new(Fake { runtime, available: false, exit: 0, runs: Arc::default() }) as Box<dyn Runner>
            })
            .collect();
        let err = select_from(fakes, &job, &CancelToken::new(), &ProbeCache::default()).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        for rt in Runtime::AUTO_ORDER {
            assert!(err.contains(&format!("{rt}: {rt} is not installed")), "{err}");
        }
    }

    #[test]
    fn host_commands_have_a_timeout_and_a_cap() {
        let out = run_host(
            std::process::Command::new("sh").args(["-c", "echo hello; echo oops >&2; exit 4"]),
            Duration::from_secs(20),
            3,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.and_then(|s| s.code()), Some(4));
        assert_eq!((out.stdout.bytes.as_slice(), out.stdout.total), (&b"hel"[..], 6));
        assert_eq!(out.stderr.bytes, b"oop");
        let started = std::time::Instant::now();
        let out = run_host(std::process::Command::new("sleep").arg("300"), Duration::from_millis(200), 10)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.is_none() && started.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn runtime_names_round_trip() {
        for rt in Runtime::AUTO_ORDER {
            assert_eq!(rt.name().parse::<Runtime>().ok(), Some(rt));
        }
        assert!("lxc".parse::<Runtime>().is_err());
    }
}
