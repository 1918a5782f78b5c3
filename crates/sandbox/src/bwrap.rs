//! The bubblewrap backend.
//!
//! The sandbox's `/` is bwrap's own tmpfs, remounted read-only last, with the
//! image's top-level directories and files bind-mounted read-only and its
//! top-level symlinks recreated (so mount points for new directories are made
//! in the tmpfs, never in the image). Limits are set by util-linux's
//! `prlimit`, which execs bwrap with them; bwrap and everything below it
//! inherit them: `NOFILE`, `CORE=0`, `DATA` for a memory limit.
//!
//! The process count: as root, a pids cgroup of reprove's own
//! ([`cgroups::PidsCgroup`]) that the first process enters before it execs
//! prlimit and bwrap (`sh -c 'echo $$ > …/cgroup.procs && exec …'`: no
//! `pre_exec`, the crate forbids `unsafe`), so every process of the sandbox
//! is counted, threads included; it is emptied and removed afterwards.
//! Rootless, `RLIMIT_NPROC`, which binds because the sandbox's user is not
//! the host's root. As root without a usable pids cgroup nothing limits it
//! (the kernel exempts uid 0 from `RLIMIT_NPROC`), and the notes say so.
//!
//! bwrap reports on `--json-status-fd` (here its stdin, a socket: std can
//! hand a child no other descriptor without `unsafe`): `child-pid` when the
//! sandbox exists and `exit-code` when the command has run. No `exit-code`
//! means the command never ran, and bwrap's stderr says why. bwrap closes the
//! status descriptor before running the command, so the command's stdin is
//! closed.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::cgroups::PidsCgroup;
use super::job::TopEntry;
use super::process::{self, Waited};
use super::runc::nofile_limit;
use super::seccomp;
use super::{unique_id, CancelToken, Error, Job, Network, Outcome, Runner, Runtime, Status};

/// Moves the shell into the pids cgroup (`$1` is its `cgroup.procs`), then execs the rest.
const ENTER_CGROUP: &str = r#"echo $$ > "$1" || { echo "reprove-cgroup: cannot enter the pids cgroup ($1)" >&2; exit 125; }; shift; exec "$@""#;

/// The bubblewrap backend.
pub(crate) struct Bwrap;

impl Bwrap {
    pub(crate) fn new() -> Bwrap {
        Bwrap
    }
}

fn binary() -> Result<std::path::PathBuf, Error> {
    process::find_program("bwrap")
        .ok_or_else(|| Error::NotInstalled { runtime: Runtime::Bwrap, program: "bwrap".into() })
}

/// Parts of /proc made read-only in the sandbox (existing ones only).
const PROC_READONLY: [&str; 8] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
    "/proc/acpi",
    "/proc/asound",
    "/proc/scsi",
];

/// Files of /proc hidden behind /dev/null (existing ones only).
const PROC_MASKED: [&str; 6] =
    ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"];

/// bwrap's arguments for `job` (without the program name).
pub(crate) fn build_args(job: &Job) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    push(&["--unshare-all"]);
    if job.network() == Network::Host {
        push(&["--share-net"]);
    }
    if !rustix::process::geteuid().is_root() {
        // Rootless: be root in the sandbox's user namespace, as runc and the engines are.
        push(&["--unshare-user", "--uid", "0", "--gid", "0"]);
    }
    push(&[
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "reprove",
        "--json-status-fd",
        "0",
    ]);
    push(&["--clearenv"]);
    for (k, v) in job.env() {
        push(&["--setenv", k, v]);
    }
    for entry in job.top_level() {
        match entry {
            TopEntry::Dir(n) | TopEntry::File(n) => {
                a.push("--ro-bind".into());
                a.push(job.rootfs().join(n).into_os_string());
                a.push(format!("/{n}").into());
            }
            TopEntry::Symlink(n, target) => {
                a.push("--symlink".into());
                a.push(target.clone().into_os_string());
                a.push(format!("/{n}").into());
            }
        }
    }
    a.extend(["--proc", "/proc"].map(OsString::from));
    // As runc's default readonlyPaths and maskedPaths: uid 0 in the sandbox may be the
    // host's root (bwrap run as root maps 0 to 0), and needs no capability to write
    // most sysctls or /proc/sysrq-trigger. Bind sources are host paths; /proc/sys
    // still shows the sandbox's own namespaces, as sysctls are looked up per task.
    for p in PROC_READONLY.iter().filter(|p| Path::new(p).exists()) {
        a.extend(["--ro-bind", p, p].map(OsString::from));
    }
    for p in PROC_MASKED.iter().filter(|p| Path::new(p).exists()) {
        a.extend(["--ro-bind", "/dev/null", p].map(OsString::from));
    }
    a.extend(["--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"].map(OsString::from));
    for m in job.mounts() {
        a.push(if m.read_only() { "--ro-bind" } else { "--bind" }.into());
        a.push(m.source().as_os_str().to_owned());
        a.push(m.destination().into());
    }
    a.extend(["--remount-ro", "/", "--chdir", job.cwd(), "--"].map(OsString::from));
    a.extend(job.argv().iter().map(OsString::from));
    a
}

/// SIGTERM to the sandboxed processes, SIGKILL to the sandbox (and to
/// everything in its pids cgroup) after `grace`.
fn stop(child: &mut process::Child, grace: Duration, cgroup: Option<&PidsCgroup>) -> Result<(), Error> {
    // bwrap's child is the pid namespace's init; the command and its children are below it.
    let inits: Vec<u32> =
        process::descendants(child.pid()).into_iter().filter(|p| parent_is(*p, child.pid())).collect();
    for init in &inits {
        for pid in process::descendants(*init) {
            process::signal(pid, Signal::TERM);
        }
    }
    if child.wait_for(grace)?.is_some() {
        return Ok(());
    }
    // Killing the init ends the pid namespace and every process in it; bwrap
    // exits once its child, the init, has exited, which is after the kernel
    // has torn the namespace down.
    for init in &inits {
        process::signal(*init, Signal::KILL);
    }
    for pid in cgroup.map(PidsCgroup::pids).unwrap_or_default() {
        process::signal(pid, Signal::KILL);
    }
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

/// The host pid of the sandbox's init, from bwrap's `{"child-pid": N}` status line.
fn child_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("child-pid").and_then(serde_json::Value::as_u64))
        .and_then(|p| u32::try_from(p).ok())
}

fn parent_is(pid: u32, parent: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].split_whitespace().nth(1) == Some(&parent.to_string())))
        .unwrap_or(false)
}

impl Runner for Bwrap {
    fn runtime(&self) -> Runtime {
        Runtime::Bwrap
    }

    fn check_available(&self) -> Result<(), Error> {
        // Whether bwrap can start a sandbox here shows when it tries (a `Start` error).
        binary().map(|_| ())
    }

    fn run(&self, job: &Job, cancel: &CancelToken) -> Result<Outcome, Error> {
        let started = Instant::now();
        let bwrap = binary()?;
        if job.user().is_some_and(|u| u != (0, 0)) {
            return Err(Error::Unsupported {
                runtime: Runtime::Bwrap,
                feature: "run the build as another user",
                reason: "reprove runs bwrap sandboxes as 0:0".into(),
            });
        }
        if job.umask().is_some() {
            return Err(Error::Unsupported {
                runtime: Runtime::Bwrap,
                feature: "set the umask",
                reason: "reprove does not pass bwrap a umask (--umask exists only in bwrap 0.11 and later)".into(),
            });
        }
        let mut notes = Vec::new();
        let root = rustix::process::geteuid().is_root();
        // The process count: a pids cgroup as root, RLIMIT_NPROC rootless.
        let mut cgroup = None;
        let mut nproc = None;
        if let Some(max) = job.limits().pids {
            if !root {
                nproc = Some(max);
            } else {
                match (PidsCgroup::create(&unique_id(), max), process::find_program("sh")) {
                    (Ok(cg), Some(sh)) => cgroup = Some((cg, sh)),
                    (Err(why), _) => notes.push(format!(
                        "bwrap: the process count is not limited: no pids cgroup ({why}), and RLIMIT_NPROC does not bind root"
                    )),
                    (Ok(_), None) => notes.push(
                        "bwrap: the process count is not limited: entering the pids cgroup needs sh, which is not on PATH"
                            .into(),
                    ),
                }
            }
        }
        let mut cmd = match process::find_program("prlimit") {
            Some(prlimit) => {
                let mut cmd = Command::new(prlimit);
                let nofile = nofile_limit();
                cmd.arg("--core=0:0").arg(format!("--nofile={nofile}:{nofile}"));
                if let Some(m) = job.limits().memory {
                    cmd.arg(format!("--data={m}:{m}"));
                    notes.push("bwrap: no memory cgroup: memory is limited per process by RLIMIT_DATA".into());
                }
                if let Some(n) = nproc {
                    cmd.arg(format!("--nproc={n}:{n}"));
                    notes.push(format!(
                        "bwrap: rootless: the process count is limited by RLIMIT_NPROC ({n} processes of the user)"
                    ));
                }
                cmd.arg("--").arg(&bwrap);
                cmd
            }
            None if job.limits().memory.is_some() => {
                return Err(Error::Unavailable {
                    runtime: Runtime::Bwrap,
                    reason: "a memory limit needs util-linux's prlimit, which is not on PATH".into(),
                })
            }
            None => {
                notes.push("bwrap: util-linux's prlimit is not on PATH: no rlimits are set".into());
                Command::new(&bwrap)
            }
        };
        // The seccomp filter, inherited by prlimit and bwrap (no CLOEXEC); ours
        // is closed once bwrap has started.
        let seccomp =
            seccomp::inheritable_program().map_err(|e| Error::io("create the seccomp filter for", &bwrap, e))?;
        match &seccomp {
            Some(fd) => {
                cmd.arg("--seccomp").arg(fd.as_raw_fd().to_string());
            }
            None => notes.push(format!(
                "bwrap: no seccomp filter: reprove has no system call table for {}",
                std::env::consts::ARCH
            )),
        }
        cmd.args(build_args(job));
        if let Some((cg, sh)) = &cgroup {
            let mut wrapped = Command::new(sh);
            wrapped
                .args(["-c", ENTER_CGROUP, "reprove-cgroup"])
                .arg(cg.procs_file())
                .arg(cmd.get_program())
                .args(cmd.get_args());
            cmd = wrapped;
        }
        let cgroup = cgroup.map(|(cg, _)| cg);
        let (theirs, ours) = UnixStream::pair().map_err(|e| Error::io("create a socket pair for", &bwrap, e))?;
        cmd.stdin(OwnedFd::from(theirs));
        let mut child = process::spawn(&mut cmd, job.limits().output_cap, job.echo())?;
        drop(cmd); // Closes our copy of bwrap's end, so the status stream ends when bwrap does.
        drop(seccomp);

        let (tx, status_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = (&ours).take(1 << 16).read_to_string(&mut text);
            let _ = tx.send(text);
        });

        let waited = match child.wait_until(started + job.limits().timeout, cancel) {
            Ok(w) => w,
            Err(e) => {
                let _ = child.kill();
                return Err(e);
            }
        };
        let status = match waited {
            Waited::Exited(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => Status::Exited(c),
                (None, Some(sig)) => Status::Signaled(sig),
                _ => Status::Signaled(0),
            },
            Waited::TimedOut => {
                stop(&mut child, job.limits().kill_grace, cgroup.as_ref())?;
                Status::TimedOut
            }
            Waited::Cancelled => {
                stop(&mut child, job.limits().kill_grace, cgroup.as_ref())?;
                Status::Cancelled
            }
        };
        // bwrap has exited: its child, the init of the sandbox's pid namespace,
        // is gone with it (--die-with-parent), and so is every process in the namespace.
        let (stdout, stderr, closed) = child.output();
        if !closed {
            notes.push("bwrap: the output pipes were still open after the sandbox ended".into());
        }
        let status_text = status_rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        // bwrap exits as soon as its init reports the command's exit code; the
        // init then exits, and the kernel kills what is left in the pid
        // namespace before the init is gone. Wait for that, so that nothing of
        // the sandbox runs when this returns.
        if let Some(init) = child_pid(&status_text) {
            if !process::wait_gone(&[init], Duration::from_secs(10)).is_empty() {
                return Err(Error::Cleanup {
                    runtime: Runtime::Bwrap,
                    id: format!("pid {init}"),
                    message: "the sandbox's init is still running 10 s after bwrap exited".into(),
                });
            }
        }
        if let Some(mut cg) = cgroup {
            cg.remove().map_err(|message| Error::Cleanup {
                runtime: Runtime::Bwrap,
                id: cg.dir().display().to_string(),
                message,
            })?;
        }
        if let Status::Exited(code) = status {
            if !status_text.contains("\"exit-code\"") {
                let err = String::from_utf8_lossy(&stderr.bytes).into_owned();
                let messages: Vec<&str> =
                    err.lines().filter(|l| l.starts_with("bwrap: ") || l.starts_with("reprove-cgroup: ")).collect();
                let message =
                    if messages.is_empty() { format!("bwrap exited with status {code}") } else { messages.join("; ") };
                return Err(if messages.iter().any(|l| l.starts_with("bwrap: execvp ")) {
                    Error::CommandNotFound { runtime: Runtime::Bwrap, command: job.argv()[0].clone(), message }
                } else {
                    Error::Start { runtime: Runtime::Bwrap, message }
                });
            }
        }
        Ok(Outcome { runtime: Runtime::Bwrap, status, stdout, stderr, duration: started.elapsed(), notes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobConfig, Mount};

    #[test]
    fn arguments() {
        let rootfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(rootfs.path().join("usr/bin")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("usr/bin", rootfs.path().join("bin")).unwrap_or_else(|e| panic!("{e}"));
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(JobConfig {
            rootfs: rootfs.path().into(),
            argv: vec!["go".into(), "build".into()],
            env: vec!["A=b c".into()],
            workdir: Some("/src".into()),
            mounts: vec![Mount::new(out.path(), "/src", true).unwrap_or_else(|e| panic!("{e}"))],
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let root = std::fs::canonicalize(rootfs.path()).unwrap_or_else(|e| panic!("{e}"));
        let src = std::fs::canonicalize(out.path()).unwrap_or_else(|e| panic!("{e}"));
        let args: Vec<String> = build_args(&job).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let rootless = if rustix::process::geteuid().is_root() { "" } else { "--unshare-user --uid 0 --gid 0 " };
        let mut proc = String::new();
        for p in PROC_READONLY.iter().filter(|p| Path::new(p).exists()) {
            proc += &format!("--ro-bind {p} {p} ");
        }
        for p in PROC_MASKED.iter().filter(|p| Path::new(p).exists()) {
            proc += &format!("--ro-bind /dev/null {p} ");
        }
        assert!(proc.contains("--ro-bind /proc/sys /proc/sys "), "{proc}");
        let expected = format!(
            "--unshare-all {rootless}--die-with-parent --new-session --cap-drop ALL --hostname reprove --json-status-fd 0 --clearenv \
             --setenv A b c --setenv PATH {} --setenv HOME / --setenv PWD /src --symlink usr/bin /bin --ro-bind {}/usr /usr \
             --proc /proc {proc}--dev /dev --perms 1777 --tmpfs /tmp --ro-bind {} /src --remount-ro / --chdir /src -- go build",
            crate::DEFAULT_PATH,
            root.display(),
            src.display()
        );
        assert_eq!(args.join(" "), expected);
        let host = Job::new(JobConfig {
            network: Network::Host,
            ..JobConfig { rootfs: rootfs.path().into(), argv: vec!["x".into()], ..Default::default() }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let args: Vec<String> = build_args(&host).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(&args[..2], ["--unshare-all", "--share-net"]);
    }

    #[test]
    fn status_lines() {
        assert_eq!(child_pid("{ \"child-pid\": 4242 }\n{ \"exit-code\": 0 }\n"), Some(4242));
        assert_eq!(child_pid("{ \"exit-code\": 0 }\n"), None);
        assert_eq!(child_pid("{ \"child-pid\": 99999999999 }\n{"), None);
        assert_eq!(child_pid(""), None);
    }
}
