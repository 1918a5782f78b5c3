//! The runc backend: an OCI runtime bundle per run, `runc run` in the foreground.
//!
//! The bundle (a temporary directory) holds `config.json`, generated with
//! `oci-spec`, and `rootfs/`, an empty skeleton that becomes the read-only
//! root: the image's top-level directories and files are bind-mounted into it
//! read-only, its top-level symlinks are recreated in it, and mount points for
//! new directories are created in it, never in the image. runc's own errors go
//! to a JSON log in the bundle, which tells a sandbox that could not start
//! from a command that failed. Container state lives under
//! [`state_root`]; containers of reprove processes that died are deleted at
//! the next run.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    Arch, Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder, MountBuilder, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use rustix::process::Signal;

use super::job::TopEntry;
use super::process::{self, run_helper, Waited};
use super::{cgroups, unique_id, CancelToken, Error, Job, Network, Outcome, Runner, Runtime, Status};

const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The runc backend.
pub(crate) struct Runc {
    state_root: PathBuf,
}

/// Where reprove keeps runc's container state: `/run/reprove/runc` as root,
/// else `$XDG_RUNTIME_DIR/reprove/runc`, else `$TMPDIR/reprove-runc-<uid>`.
/// `runc --root <this> list` shows reprove's containers.
pub fn state_root() -> PathBuf {
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/reprove/runc");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(dir) => dir.join("reprove/runc"),
        None => std::env::temp_dir().join(format!("reprove-runc-{}", uid.as_raw())),
    }
}

impl Runc {
    pub(crate) fn new() -> Runc {
        Runc { state_root: state_root() }
    }

    fn binary(&self) -> Result<PathBuf, Error> {
        process::find_program("runc")
            .ok_or_else(|| Error::NotInstalled { runtime: Runtime::Runc, program: "runc".into() })
    }

    fn runc(&self, binary: &Path) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    /// [`Runc::collect_stale`] when runc is installed; how many were deleted.
    pub(crate) fn collect_stale_all(&self) -> usize {
        self.binary().map(|b| self.collect_stale(&b)).unwrap_or(0)
    }

    /// Deletes containers whose reprove process is gone (it was SIGKILLed):
    /// processes, cgroup and state; returns how many.
    fn collect_stale(&self, binary: &Path) -> usize {
        let mut deleted = 0;
        let Ok(entries) = fs::read_dir(&self.state_root) else { return 0 };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) =
                name.strip_prefix("reprove-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run_helper(self.runc(binary).args(["delete", "--force", &name]), HELPER_TIMEOUT);
                if !entry.path().exists() {
                    deleted += 1;
                }
            }
        }
        deleted
    }

    /// SIGTERM to every process of the container, SIGKILL after `grace`.
    fn stop(
        &self,
        binary: &Path,
        id: &str,
        child: &mut process::Child,
        grace: Duration,
        wrapped: bool,
    ) -> Result<(), Error> {
        let term = run_helper(self.runc(binary).args(["kill", "--all", id, "TERM"]), HELPER_TIMEOUT)?;
        if !term.success() {
            // Without cgroups runc cannot list the container's processes: signal them from here.
            for pid in process::descendants(child.pid()) {
                process::signal(pid, Signal::TERM);
            }
        }
        if child.wait_for(grace)?.is_some() {
            return Ok(());
        }
        // SIGKILL to the container's init ends its pid namespace, and with it every process in it.
        // Wrapped, runc's state holds the init's pid in runc's own namespace, which means
        // nothing here: the SIGKILL to runc below, the init of that namespace, ends both.
        if !wrapped {
            let _ = run_helper(self.runc(binary).args(["kill", id, "KILL"]), HELPER_TIMEOUT)?;
        }
        let _ = run_helper(self.runc(binary).args(["kill", "--all", id, "KILL"]), HELPER_TIMEOUT)?;
        let killed = process::descendants(child.pid());
        for pid in &killed {
            process::signal(*pid, Signal::KILL);
        }
        if child.wait_for(Duration::from_secs(10))?.is_none() {
            child.kill()?;
        }
        let _ = process::wait_gone(&killed, Duration::from_secs(10));
        Ok(())
    }
}

impl Runner for Runc {
    fn runtime(&self) -> Runtime {
        Runtime::Runc
    }

    fn check_available(&self) -> Result<(), Error> {
        // Whether runc can start a sandbox here shows when it tries (a `Start` error).
        self.binary().map(|_| ())
    }

    fn run(&self, job: &Job, cancel: &CancelToken) -> Result<Outcome, Error> {
        let started = Instant::now();
        let binary = self.binary()?;
        let rootless = !rustix::process::geteuid().is_root();
        let cg = cgroups::detect_cached(rootless);
        let use_cgroups = cg.unusable.is_none();
        let mut notes = Vec::new();
        if let Some(why) = &cg.unusable {
            let mut what = Vec::new();
            if let Some(m) = job.limits().memory {
                what.push(if m < MIN_RLIMIT_DATA {
                    format!(
                        "memory is limited per process by RLIMIT_DATA, raised from {m} to {MIN_RLIMIT_DATA} bytes \
                         (runc's init needs that much to install the seccomp profile)"
                    )
                } else {
                    "memory is limited per process by RLIMIT_DATA".to_string()
                });
            }
            if let Some(n) = job.limits().pids {
                what.push(if rootless {
                    format!("the process count by RLIMIT_NPROC ({n} processes of the user)")
                } else {
                    "the process count is not limited (RLIMIT_NPROC does not bind root)".to_string()
                });
            }
            let what = if what.is_empty() { "no limit depends on it".to_string() } else { what.join(", ") };
            notes.push(format!("runc: {} unusable here ({why}): {what}", cg.mode.name()));
        }
        if rootless {
            notes.push("runc: rootless, in a user namespace that maps the caller to root".into());
        }

        fs::create_dir_all(&self.state_root)
            .map_err(|e| Error::io("create runc state directory", &self.state_root, e))?;
        let _ = self.collect_stale(&binary);

        let id = unique_id();
        let bundle = tempfile::Builder::new()
            .prefix(&format!("{id}-bundle-"))
            .tempdir()
            .map_err(|e| Error::io("create bundle directory in", std::env::temp_dir(), e))?;
        let skeleton = bundle.path().join("rootfs");
        build_skeleton(job, &skeleton)?;
        let spec = build_spec(job, &SpecOptions { root: &skeleton, id: &id, rootless, cgroups: use_cgroups })?;
        let config = bundle.path().join("config.json");
        spec.save(&config).map_err(|e| Error::io("write", &config, std::io::Error::other(e.to_string())))?;
        let log = bundle.path().join("runc.log");

        let mut runc_args: Vec<std::ffi::OsString> = vec!["--root".into(), self.state_root.clone().into()];
        runc_args.extend(["--log".into(), log.clone().into_os_string(), "--log-format".into(), "json".into()]);
        if !rootless && !use_cgroups {
            // As root with unusable cgroups: make runc ignore cgroup permission errors.
            runc_args.extend(["--rootless".into(), "true".into()]);
        }
        let pid_file = bundle.path().join("init.pid");
        runc_args.extend(["run".into(), "--pid-file".into(), pid_file.clone().into_os_string()]);
        runc_args.extend(["--bundle".into(), bundle.path().as_os_str().to_owned(), id.clone().into()]);
        let (mut cmd, wrapped) = lifeline(&binary, runc_args, rootless, &mut notes);
        cmd.stdin(Stdio::null());
        // Not in a pid namespace of its own (rootless): a guard deletes the
        // container if reprove dies.
        let _guard = (!wrapped).then(|| {
            let mut cleanup: Vec<std::ffi::OsString> = vec![binary.clone().into_os_string()];
            cleanup.extend(["--root".into(), self.state_root.clone().into_os_string()]);
            cleanup.extend(["delete".into(), "--force".into(), id.clone().into()]);
            process::DeathGuard::start(&cleanup)
        });
        // The calling thread waits for the run: the parent-death signal, which
        // fires when the thread that spawned the child exits, fires only when
        // reprove itself dies.
        let mut child = process::spawn(&mut cmd, job.limits().output_cap, job.echo())?;

        let waited = child.wait_until(started + job.limits().timeout, cancel);
        let status = match waited {
            Ok(Waited::Exited(s)) => Ok(match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => Status::Exited(c),
                (None, Some(sig)) => Status::Signaled(sig),
                _ => Status::Signaled(0),
            }),
            Ok(Waited::TimedOut) => {
                self.stop(&binary, &id, &mut child, job.limits().kill_grace, wrapped).map(|()| Status::TimedOut)
            }
            Ok(Waited::Cancelled) => {
                self.stop(&binary, &id, &mut child, job.limits().kill_grace, wrapped).map(|()| Status::Cancelled)
            }
            Err(e) => Err(e),
        };
        if status.is_err() {
            let _ = child.kill();
        }

        // Delete the container (processes, cgroup, state) unless `runc run` already
        // did, as it does when its container ends; then the bundle.
        let state = self.state_root.join(&id);
        if state.exists() {
            let deleted = run_helper(self.runc(&binary).args(["delete", "--force", &id]), HELPER_TIMEOUT)?;
            if state.exists() {
                return Err(Error::Cleanup {
                    runtime: Runtime::Runc,
                    id,
                    message: format!("runc delete --force: {}", deleted.message()),
                });
            }
        }
        // Nothing of the container may run when this returns. Wrapped: runc
        // was the init of its own pid namespace, and the kernel kills and
        // reaps everything in a pid namespace before its init is reaped.
        // Otherwise: the container's init (runc's child, the init of the
        // container's pid namespace) must be gone, which takes the rest of
        // the container's processes with it.
        if !wrapped {
            let init = fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok());
            if let Some(init) = init {
                if !process::wait_gone(&[init], Duration::from_secs(10)).is_empty() {
                    return Err(Error::Cleanup {
                        runtime: Runtime::Runc,
                        id,
                        message: format!("the container's init (pid {init}) is still running after runc exited"),
                    });
                }
            }
        }
        let (stdout, stderr, closed) = child.output();
        if !closed {
            notes.push("runc: the output pipes were still open after the container ended".into());
        }
        let errors = runc_errors(&log);
        let bundle_path = bundle.path().to_path_buf();
        bundle.close().map_err(|e| Error::Cleanup {
            runtime: Runtime::Runc,
            id: id.clone(),
            message: format!("remove bundle {}: {e}", bundle_path.display()),
        })?;
        let status = status?;

        if let (Status::Exited(code), Some(message)) = (status, errors.last()) {
            if code != 0 {
                return Err(classify(job, message));
            }
        }
        Ok(Outcome { runtime: Runtime::Runc, status, stdout, stderr, duration: started.elapsed(), notes })
    }
}

/// The command that runs runc so that the container dies with reprove.
///
/// `setpriv --pdeathsig KILL` (util-linux) makes the kernel SIGKILL the
/// wrapper when reprove dies. As root, the wrapper is `unshare --pid --fork
/// --mount-proc --kill-child=KILL`: runc becomes the init of a pid namespace
/// of its own, the container's namespace nested below it, and is SIGKILLed
/// when the wrapper dies; the kernel then kills every process of both
/// namespaces. Rootless, `unshare --pid` would need a user namespace in which
/// runc no longer runs rootless, so only runc itself dies with reprove, and a
/// [`process::DeathGuard`] deletes its container (`runc delete --force`) when
/// reprove dies. Returns whether runc runs in a pid namespace of its
/// own. Without setpriv or unshare (not util-linux), runc runs bare, and the
/// note says what that means.
fn lifeline(
    runc: &Path,
    runc_args: Vec<std::ffi::OsString>,
    rootless: bool,
    notes: &mut Vec<String>,
) -> (Command, bool) {
    let setpriv = process::find_program("setpriv");
    let unshare = process::find_program("unshare");
    match (setpriv, unshare) {
        (Some(setpriv), Some(unshare)) if !rootless => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"])
                .arg(unshare)
                .args(["--pid", "--fork", "--mount-proc", "--kill-child=KILL", "--"])
                .arg(runc)
                .args(runc_args);
            (cmd, true)
        }
        (Some(setpriv), _) => {
            if !rootless {
                notes.push("runc: util-linux's unshare is not on PATH: a container outlives a killed reprove".into());
            }
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(runc).args(runc_args);
            (cmd, false)
        }
        (None, _) => {
            notes.push(
                "runc: util-linux's setpriv is not on PATH: a container outlives a killed reprove until \
                 `reprove toolchain gc` or the next run deletes it"
                    .into(),
            );
            let mut cmd = Command::new(runc);
            cmd.args(runc_args);
            (cmd, false)
        }
    }
}

/// A failure runc logged: the command is missing, or the sandbox did not start.
fn classify(job: &Job, message: &str) -> Error {
    let not_found = message.contains("exec: ")
        && (message.contains("executable file not found") || message.contains("no such file or directory"));
    if not_found {
        Error::CommandNotFound { runtime: Runtime::Runc, command: job.argv()[0].clone(), message: message.to_string() }
    } else {
        Error::Start { runtime: Runtime::Runc, message: message.to_string() }
    }
}

/// The `msg` of every `"level":"error"` line of runc's JSON log.
fn runc_errors(log: &Path) -> Vec<String> {
    let text = fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[..text.len().min(1 << 20)]).into_owned();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .collect()
}

fn build_skeleton(job: &Job, root: &Path) -> Result<(), Error> {
    let mkdir = |p: PathBuf| fs::create_dir(&p).map_err(|e| Error::io("create", p, e));
    mkdir(root.to_path_buf())?;
    for d in ["proc", "dev", "tmp"] {
        mkdir(root.join(d))?;
    }
    // runc gives a tmpfs the mode of the directory it is mounted on, whatever
    // its `mode=` option says: /tmp must be 1777 for a build that is not root.
    let tmp = root.join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).map_err(|e| Error::io("chmod", tmp, e))?;
    for entry in job.top_level() {
        match entry {
            TopEntry::Dir(n) => mkdir(root.join(n))?,
            TopEntry::File(n) => {
                fs::File::create(root.join(n)).map_err(|e| Error::io("create", root.join(n), e))?;
            }
            TopEntry::Symlink(n, target) => std::os::unix::fs::symlink(target, root.join(n))
                .map_err(|e| Error::io("create symlink", root.join(n), e))?,
        }
    }
    Ok(())
}

pub(crate) struct SpecOptions<'a> {
    /// The skeleton root directory.
    pub(crate) root: &'a Path,
    pub(crate) id: &'a str,
    pub(crate) rootless: bool,
    pub(crate) cgroups: bool,
}

/// The soft and hard `RLIMIT_NOFILE` for sandboxed processes: 65536, or the
/// host's hard limit if lower (an unprivileged process cannot raise it).
pub(crate) fn nofile_limit() -> u64 {
    let host = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum.unwrap_or(u64::MAX);
    host.min(65536)
}

fn spec_error(e: impl std::fmt::Display) -> Error {
    Error::Start { runtime: Runtime::Runc, message: format!("cannot build the runtime spec: {e}") }
}

/// The lowest `RLIMIT_DATA` runc gets: the rlimits apply to runc's own init
/// before it compiles and installs the seccomp profile, which fails (the
/// container dies before it starts) under about 75 MiB.
pub(crate) const MIN_RLIMIT_DATA: u64 = 128 << 20;

/// System calls a build never needs and that widen the kernel's attack
/// surface; the default seccomp profile makes them fail with `EPERM`. Most
/// already fail without capabilities; the profile also covers those that an
/// unprivileged process may make (`keyctl`, `add_key`, `ptrace`, `bpf`,
/// `unshare`, `userfaultfd`, `perf_event_open`…). Names libseccomp does not
/// know are skipped by runc.
pub(crate) const DENIED_SYSCALLS: &[&str] = &[
    // Mounts and the new mount API.
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // Namespaces.
    "unshare",
    "setns",
    // Kernel code, kernel state, the machine.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "iopl",
    "ioperm",
    "vhangup",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "nfsservctl",
    "uselib",
    "_sysctl",
    "sysfs",
    "ustat",
    "get_kernel_syms",
    "query_module",
    // BPF, perf, keys.
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    // Other processes' memory and tracing.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    // File handles (container escapes), userfaultfd, clocks.
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "settimeofday",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    "stime",
];

/// The seccomp architectures for this machine: the native one and the
/// compatibility ABIs a process could switch to (so no deny can be bypassed
/// through them).
fn seccomp_arches() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "x86" => vec![Arch::ScmpArchX86],
        "arm" => vec![Arch::ScmpArchArm],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The default seccomp profile: everything allowed but [`DENIED_SYSCALLS`], which fail with `EPERM`.
pub(crate) fn seccomp_profile() -> Result<LinuxSeccomp, Error> {
    let denied = LinuxSyscallBuilder::default()
        .names(DENIED_SYSCALLS.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(1u32) // EPERM
        .build()
        .map_err(spec_error)?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(seccomp_arches())
        .syscalls(vec![denied])
        .build()
        .map_err(spec_error)
}

/// The OCI runtime spec for `job`.
pub(crate) fn build_spec(job: &Job, o: &SpecOptions<'_>) -> Result<Spec, Error> {
    let string_vec = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mount = |dst: &str, typ: &str, src: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(dst)
            .typ(typ)
            .source(src)
            .options(string_vec(options))
            .build()
            .map_err(spec_error)
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        if o.rootless {
            mount("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"])?
        } else {
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            )?
        },
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"])?,
    ];
    for entry in job.top_level() {
        let name = match entry {
            TopEntry::Dir(n) | TopEntry::File(n) => n,
            TopEntry::Symlink(..) => continue,
        };
        let src = job.rootfs().join(name);
        mounts.push(
            MountBuilder::default()
                .destination(format!("/{name}"))
                .typ("bind")
                .source(src)
                .options(string_vec(&["bind", "ro", "nosuid", "nodev"]))
                .build()
                .map_err(spec_error)?,
        );
    }
    for m in job.mounts() {
        let mode = if m.read_only() { "ro" } else { "rw" };
        mounts.push(
            MountBuilder::default()
                .destination(m.destination())
                .typ("bind")
                .source(m.source())
                .options(string_vec(&["rbind", mode, "nosuid", "nodev"]))
                .build()
                .map_err(spec_error)?,
        );
    }

    let rlimit = |typ: PosixRlimitType, value: u64| -> Result<PosixRlimit, Error> {
        PosixRlimitBuilder::default().typ(typ).soft(value).hard(value).build().map_err(spec_error)
    };
    let mut rlimits =
        vec![rlimit(PosixRlimitType::RlimitNofile, nofile_limit())?, rlimit(PosixRlimitType::RlimitCore, 0)?];
    if let (Some(memory), false) = (job.limits().memory, o.cgroups) {
        rlimits.push(rlimit(PosixRlimitType::RlimitData, memory.max(MIN_RLIMIT_DATA))?);
    }
    // Binds only rootless sandboxes: the kernel exempts the host's uid 0.
    if let (Some(pids), false, true) = (job.limits().pids, o.cgroups, o.rootless) {
        rlimits.push(rlimit(PosixRlimitType::RlimitNproc, pids)?);
    }
    let none = Capabilities::new();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(none.clone())
        .effective(none.clone())
        .inheritable(none.clone())
        .permitted(none.clone())
        .ambient(none)
        .build()
        .map_err(spec_error)?;
    let (uid, gid) = job.user().unwrap_or((0, 0));
    if o.rootless && (uid, gid) != (0, 0) {
        // The rootless user namespace maps only the caller, as root.
        return Err(Error::Unsupported {
            runtime: Runtime::Runc,
            feature: "run the build as another user",
            reason: format!("rootless runc maps only the caller (as 0:0), not {uid}:{gid}"),
        });
    }
    let mut user = UserBuilder::default().uid(uid).gid(gid);
    if let Some(umask) = job.umask() {
        // OCI runtime spec 1.1 `process.user.umask`: honoured by runc 1.1 and later.
        user = user.umask(umask);
    }
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user.build().map_err(spec_error)?)
        .args(job.argv().to_vec())
        .env(job.env_strings())
        .cwd(job.cwd())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(true)
        .build()
        .map_err(spec_error)?;

    let mut ns_types =
        vec![LinuxNamespaceType::Pid, LinuxNamespaceType::Ipc, LinuxNamespaceType::Uts, LinuxNamespaceType::Mount];
    if job.network() == Network::None {
        ns_types.push(LinuxNamespaceType::Network);
    }
    if Path::new("/proc/self/ns/cgroup").exists() {
        ns_types.push(LinuxNamespaceType::Cgroup);
    }
    if o.rootless {
        ns_types.push(LinuxNamespaceType::User);
    }
    let namespaces = ns_types
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build().map_err(spec_error))
        .collect::<Result<Vec<_>, _>>()?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .seccomp(seccomp_profile()?)
        .masked_paths(oci_spec::runtime::get_default_maskedpaths())
        .readonly_paths(oci_spec::runtime::get_default_readonly_paths());
    if o.rootless {
        let map = |host: u32| {
            LinuxIdMappingBuilder::default().container_id(0u32).host_id(host).size(1u32).build().map_err(spec_error)
        };
        linux = linux
            .uid_mappings(vec![map(rustix::process::geteuid().as_raw())?])
            .gid_mappings(vec![map(rustix::process::getegid().as_raw())?]);
    }
    if o.cgroups {
        let mut resources = LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(spec_error)?]);
        if let Some(memory) = job.limits().memory {
            let limit = i64::try_from(memory).unwrap_or(i64::MAX);
            resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).build().map_err(spec_error)?);
        }
        if let Some(pids) = job.limits().pids {
            let limit = i64::try_from(pids).unwrap_or(i64::MAX);
            resources = resources.pids(LinuxPidsBuilder::default().limit(limit).build().map_err(spec_error)?);
        }
        linux = linux.resources(resources.build().map_err(spec_error)?).cgroups_path(format!("/{}", o.id));
    }

    let mut linux = linux.build().map_err(spec_error)?;
    if !o.cgroups {
        // The builder starts from oci-spec's defaults, which carry an empty resources section.
        linux.set_resources(None);
    }
    SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(o.root).readonly(true).build().map_err(spec_error)?)
        .mounts(mounts)
        .process(process)
        .hostname("reprove")
        .linux(linux)
        .build()
        .map_err(spec_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobConfig, Limits, Mount};

    #[test]
    fn spec_is_locked_down() {
        let rootfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir_all(rootfs.path().join("usr/bin")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("usr/bin", rootfs.path().join("bin")).unwrap_or_else(|e| panic!("{e}"));
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(JobConfig {
            rootfs: rootfs.path().into(),
            argv: vec!["go".into(), "version".into()],
            image_env: vec!["PATH=/usr/bin".into()],
            mounts: vec![Mount::new(out.path(), "/out", false).unwrap_or_else(|e| panic!("{e}"))],
            limits: Limits { memory: Some(1 << 30), ..Limits::default() },
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let root = Path::new("/bundle/rootfs");
        let with_cgroups = build_spec(&job, &SpecOptions { root, id: "reprove-1-0-0", rootless: false, cgroups: true })
            .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::to_value(&with_cgroups).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["root"], serde_json::json!({"path": "/bundle/rootfs", "readonly": true}));
        assert_eq!(v["process"]["noNewPrivileges"], true);
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
            assert_eq!(v["process"]["capabilities"][set], serde_json::json!([]), "{set}");
        }
        assert_eq!(v["process"]["env"], serde_json::json!(["PATH=/usr/bin", "HOME=/", "PWD=/"]));
        let ns: Vec<&str> =
            v["linux"]["namespaces"].as_array().into_iter().flatten().filter_map(|n| n["type"].as_str()).collect();
        assert!(ns.contains(&"network") && ns.contains(&"pid") && !ns.contains(&"user"), "{ns:?}");
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 1 << 30);
        assert_eq!(v["linux"]["cgroupsPath"], "/reprove-1-0-0");
        let mounts = v["mounts"].as_array().cloned().unwrap_or_default();
        let usr = mounts.iter().find(|m| m["destination"] == "/usr").cloned().unwrap_or_default();
        assert_eq!(usr["options"], serde_json::json!(["bind", "ro", "nosuid", "nodev"]));
        assert!(mounts.iter().all(|m| m["destination"] != "/bin"), "symlinks live in the skeleton");
        let out_mount = mounts.iter().find(|m| m["destination"] == "/out").cloned().unwrap_or_default();
        assert_eq!(out_mount["options"], serde_json::json!(["rbind", "rw", "nosuid", "nodev"]));
        assert!(mounts.iter().any(|m| m["destination"] == "/tmp" && m["type"] == "tmpfs"));
        // The default seccomp profile: allow, but the denied calls fail with EPERM.
        let seccomp = &v["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(seccomp["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(seccomp["syscalls"][0]["errnoRet"], 1);
        let names: Vec<&str> =
            seccomp["syscalls"][0]["names"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
        for name in ["mount", "kexec_load", "bpf", "keyctl", "ptrace", "unshare", "open_by_handle_at"] {
            assert!(names.contains(&name), "{name} is not denied: {names:?}");
        }
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                seccomp["architectures"],
                serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }

        let rootless = build_spec(&job, &SpecOptions { root, id: "x", rootless: true, cgroups: false })
            .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::to_value(&rootless).unwrap_or_else(|e| panic!("{e}"));
        assert!(v["linux"]["resources"].is_null() && v["linux"]["cgroupsPath"].is_null());
        assert_eq!(v["linux"]["uidMappings"].as_array().map(Vec::len), Some(1));
        let rl: Vec<&str> =
            v["process"]["rlimits"].as_array().into_iter().flatten().filter_map(|r| r["type"].as_str()).collect();
        assert!(rl.contains(&"RLIMIT_DATA") && rl.contains(&"RLIMIT_NPROC"), "{rl:?}");
        assert!(v["linux"]["seccomp"].is_object());
    }

    #[test]
    fn host_network_keeps_the_host_namespace() {
        let rootfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(JobConfig {
            rootfs: rootfs.path().into(),
            argv: vec!["x".into()],
            network: Network::Host,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let spec = build_spec(&job, &SpecOptions { root: Path::new("/r"), id: "x", rootless: false, cgroups: false })
            .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::to_value(&spec).unwrap_or_else(|e| panic!("{e}"));
        let ns: Vec<&str> =
            v["linux"]["namespaces"].as_array().into_iter().flatten().filter_map(|n| n["type"].as_str()).collect();
        assert!(!ns.contains(&"network"), "{ns:?}");
    }

    #[test]
    fn user_and_umask_go_to_process_user_and_tmp_is_world_writable() {
        let rootfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(JobConfig {
            rootfs: rootfs.path().into(),
            argv: vec!["x".into()],
            user: Some((1000, 1001)),
            umask: Some(0o077),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let spec = build_spec(&job, &SpecOptions { root: Path::new("/r"), id: "x", rootless: false, cgroups: false })
            .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::to_value(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["process"]["user"], serde_json::json!({"uid": 1000, "gid": 1001, "umask": 63}));
        let rootless =
            build_spec(&job, &SpecOptions { root: Path::new("/r"), id: "x", rootless: true, cgroups: false });
        assert!(matches!(rootless, Err(Error::Unsupported { .. })), "{rootless:?}");
        let default = Job::new(JobConfig { user: None, umask: None, ..job_config(rootfs.path()) })
            .unwrap_or_else(|e| panic!("{e}"));
        let spec =
            build_spec(&default, &SpecOptions { root: Path::new("/r"), id: "x", rootless: false, cgroups: false })
                .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::to_value(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["process"]["user"], serde_json::json!({"uid": 0, "gid": 0}));
        assert!(Job::new(JobConfig { umask: Some(0o1000), ..job_config(rootfs.path()) }).is_err());

        let bundle = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = bundle.path().join("rootfs");
        build_skeleton(&default, &root).unwrap_or_else(|e| panic!("{e}"));
        let mode = fs::metadata(root.join("tmp")).map(|m| m.permissions().mode() & 0o7777).unwrap_or_default();
        assert_eq!(mode, 0o1777);
    }

    fn job_config(rootfs: &Path) -> JobConfig {
        JobConfig { rootfs: rootfs.into(), argv: vec!["x".into()], ..Default::default() }
    }

    #[test]
    fn log_errors_are_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("log");
        fs::write(&log, "{\"level\":\"info\",\"msg\":\"x\"}\nnot json\n{\"level\":\"error\",\"msg\":\"runc run failed: exec: \\\"x\\\": executable file not found in $PATH\"}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let errors = runc_errors(&log);
        assert_eq!(errors.len(), 1);
        let job = Job::new(JobConfig { rootfs: dir.path().into(), argv: vec!["x".into()], ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(classify(&job, &errors[0]), Error::CommandNotFound { .. }));
        assert!(matches!(classify(&job, "mount failed"), Error::Start { .. }));
    }
}
