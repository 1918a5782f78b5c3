//! Supervised child processes: the only place in `verifier` that spawns one.
//!
//! Every child runs in a process group of its own, with stdin from
//! `/dev/null` (unless the caller gives another), stdout and stderr captured
//! up to a cap (the rest is counted and dropped; optionally echoed as it
//! arrives), and a deadline. Waiting is done by a thread that owns the
//! [`std::process::Child`], so the caller can watch the deadline and a
//! [`CancelToken`] at the same time. The process tree under a pid is found
//! through `/proc`, so that a whole tree can be signalled.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::{CancelToken, Captured, Error};

/// How long the output readers may lag behind the process's exit before we
/// stop waiting for them (a process that escaped the sandbox could hold the
/// pipes open forever).
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Which stream of the current process an echo goes to.
#[derive(Debug, Clone, Copy)]
enum EchoTo {
    Stdout,
    Stderr,
}

/// A running child.
pub(crate) struct Child {
    program: String,
    pid: u32,
    exited: Receiver<io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    stdout: Reader,
    stderr: Reader,
}

/// How a wait ended.
#[derive(Debug)]
pub(crate) enum Waited {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

struct Reader {
    buf: Arc<Mutex<Captured>>,
    done: Receiver<()>,
}

impl Reader {
    fn start(stream: Option<impl Read + Send + 'static>, cap: usize, echo: Option<EchoTo>) -> Reader {
        let buf = Arc::new(Mutex::new(Captured::default()));
        let (tx, done) = mpsc::channel();
        if let Some(mut stream) = stream {
            let shared = Arc::clone(&buf);
            thread::spawn(move || {
                let mut chunk = [0u8; 16 << 10];
                loop {
                    let n = match stream.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    if let Ok(mut c) = shared.lock() {
                        let room = cap.saturating_sub(c.bytes.len());
                        c.bytes.extend_from_slice(&chunk[..n.min(room)]);
                        c.total += n as u64;
                    }
                    match echo {
                        Some(EchoTo::Stdout) => {
                            let mut out = io::stdout().lock();
                            let _ = out.write_all(&chunk[..n]).and_then(|()| out.flush());
                        }
                        Some(EchoTo::Stderr) => {
                            let _ = io::stderr().lock().write_all(&chunk[..n]);
                        }
                        None => {}
                    }
                }
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        Reader { buf, done }
    }

    /// What was read, after waiting for the end of the stream until `deadline`.
    fn take(&self, deadline: Instant) -> (Captured, bool) {
        let complete = self.done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok();
        let captured = self.buf.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        (captured, complete)
    }
}

/// Spawns `cmd` in a new process group, capturing stdout and stderr (up to
/// `cap` bytes each), optionally echoing them to ours.
pub(crate) fn spawn(cmd: &mut Command, cap: usize, echo: bool) -> Result<Child, Error> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|source| Error::Spawn { program: program.clone(), source })?;
    let pid = child.id();
    let stdout = Reader::start(child.stdout.take(), cap, echo.then_some(EchoTo::Stdout));
    let stderr = Reader::start(child.stderr.take(), cap, echo.then_some(EchoTo::Stderr));
    let (tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    Ok(Child { program, pid, exited, status: None, stdout, stderr })
}

impl Child {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status if the child has exited by now or within `timeout`.
    pub(crate) fn wait_for(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        match self.exited.recv_timeout(timeout) {
            Ok(Ok(s)) => {
                self.status = Some(s);
                Ok(Some(s))
            }
            Ok(Err(source)) => Err(Error::Spawn { program: self.program.clone(), source }),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Spawn {
                program: self.program.clone(),
                source: io::Error::other("the waiting thread ended without a status"),
            }),
        }
    }

    /// Waits until the child exits, `deadline` passes or `cancel` fires.
    pub(crate) fn wait_until(&mut self, deadline: Instant, cancel: &CancelToken) -> Result<Waited, Error> {
        loop {
            if cancel.is_cancelled() {
                return Ok(Waited::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::TimedOut);
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            if let Some(s) = self.wait_for(slice)? {
                return Ok(Waited::Exited(s));
            }
        }
    }

    /// SIGKILLs the child's process group and reaps the child (bounded).
    pub(crate) fn kill(&mut self) -> Result<Option<ExitStatus>, Error> {
        signal_group(self.pid, Signal::KILL);
        self.wait_for(Duration::from_secs(10))
    }

    /// The captured output, waiting a little for the pipes to close, and
    /// whether both closed (a `false` means a process still holds them).
    pub(crate) fn output(&self) -> (Captured, Captured, bool) {
        let deadline = Instant::now() + DRAIN_GRACE;
        let (out, a) = self.stdout.take(deadline);
        let (err, b) = self.stderr.take(deadline);
        (out, err, a && b)
    }
}

/// Sends `sig` to the process group `pgid`; a group that is gone is not an error.
pub(crate) fn signal_group(pgid: u32, sig: Signal) {
    if let Some(pid) = pid_of(pgid) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// Sends `sig` to `pid`; a process that is gone is not an error.
pub(crate) fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = pid_of(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw).filter(|p| p.as_raw_nonzero().get() > 1)
}

/// The pids of all processes below `root` in the process tree (children
/// first found breadth-first; `root` itself is not included).
pub(crate) fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(ppid) = parent_of(pid) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Waits (at most `timeout`) until each of `pids` has exited: gone from
/// `/proc`, or a zombie. SIGKILL is delivered asynchronously; this is what
/// makes "nothing is left running" true when a run returns.
/// Returns the pids still running when `timeout` passed (empty: all gone).
pub(crate) fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_running(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn is_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// The parent pid from `/proc/PID/stat` (the field after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// What an auxiliary command (a runtime's `kill`, `delete`, `info`…) did.
#[derive(Debug)]
pub(crate) struct HelperOutput {
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl HelperOutput {
    pub(crate) fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The last non-empty line of stderr (or stdout), for error messages.
    pub(crate) fn message(&self) -> String {
        let pick = |s: &str| s.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string());
        pick(&self.stderr).or_else(|| pick(&self.stdout)).unwrap_or_else(|| match self.status {
            Some(s) => describe_status(s),
            None => "timed out".to_string(),
        })
    }
}

/// Runs an auxiliary command to completion with a timeout (then SIGKILL to
/// its process group) and a 1 MiB output cap.
pub(crate) fn run_helper(cmd: &mut Command, timeout: Duration) -> Result<HelperOutput, Error> {
    run_helper_with_input(cmd, Stdio::null(), timeout)
}

/// [`run_helper`] with `stdin` as the command's standard input.
pub(crate) fn run_helper_with_input(cmd: &mut Command, stdin: Stdio, timeout: Duration) -> Result<HelperOutput, Error> {
    cmd.stdin(stdin);
    let mut child = spawn(cmd, 1 << 20, false)?;
    let status = match child.wait_until(Instant::now() + timeout, &CancelToken::new())? {
        Waited::Exited(s) => Some(s),
        Waited::TimedOut | Waited::Cancelled => {
            child.kill()?;
            None
        }
    };
    let (out, err, _) = child.output();
    Ok(HelperOutput {
        status,
        stdout: String::from_utf8_lossy(&out.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&err.bytes).into_owned(),
    })
}

/// `exit status 3` or `killed by signal 9`.
pub(crate) fn describe_status(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// Removes a sandbox that does not die with reprove by itself (a podman or
/// docker container, which their monitors keep running; a rootless runc
/// container) when reprove dies: a `sh` under `setpriv --pdeathsig TERM`
/// waits, and on SIGTERM (sent by the kernel when the thread that started it,
/// the run's own, ends with reprove) runs `cleanup`. When the run ends
/// normally, dropping the guard SIGKILLs its process group: the trap does not
/// run. Without util-linux's `setpriv` there is no guard (`None`).
pub(crate) struct DeathGuard {
    pid: u32,
    child: std::process::Child,
}

impl DeathGuard {
    /// Starts the guard for `cleanup` (a program and its arguments).
    pub(crate) fn start(cleanup: &[std::ffi::OsString]) -> Option<DeathGuard> {
        let setpriv = find_program("setpriv")?;
        // "$@" is the cleanup command: no quoting of its words is needed.
        let script = "trap '\"$@\" >/dev/null 2>&1; kill $! 2>/dev/null; exit 0' TERM; sleep 2147483647 & wait";
        let mut cmd = Command::new(setpriv);
        cmd.args(["--pdeathsig", "TERM", "--", "sh", "-c", script, "reprove-guard"])
            .args(cleanup)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = cmd.spawn().ok()?;
        Some(DeathGuard { pid: child.id(), child })
    }
}

impl Drop for DeathGuard {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(i32::try_from(self.pid).unwrap_or(0)) {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// Looks `name` up on this process's `PATH`, then in the sbin directories
/// (where Debian installs runc, and which a non-root `PATH` may lack).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guard runs its clean-up when its parent thread dies, and not when it
    /// is dropped.
    #[test]
    fn a_death_guard_cleans_up_only_when_its_parent_dies() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let marker = dir.path().join("cleaned");
        let touch = |m: &Path| vec!["touch".into(), m.as_os_str().to_owned()];
        // Dropped: no clean-up.
        let guard = DeathGuard::start(&touch(&marker)).unwrap_or_else(|| panic!("setpriv"));
        std::thread::sleep(Duration::from_millis(200));
        drop(guard);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!marker.exists(), "a dropped guard cleaned up");
        // Its parent (a thread that ends without dropping it) dies: clean-up.
        let m = marker.clone();
        std::thread::spawn(move || {
            std::mem::forget(DeathGuard::start(&touch(&m)));
            // Let setpriv set its parent-death signal before its parent thread ends.
            std::thread::sleep(Duration::from_millis(300));
        })
        .join()
        .unwrap_or_else(|_| panic!("thread"));
        let started = Instant::now();
        while !marker.exists() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(marker.exists(), "the guard did not clean up after its parent died");
    }

    #[test]
    fn capture_caps_and_counts() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "head -c 100000 /dev/zero; echo err >&2; exit 3"]);
        let mut child = spawn(&mut cmd, 1000, false).unwrap_or_else(|e| panic!("{e}"));
        let status = child.wait_until(Instant::now() + Duration::from_secs(20), &CancelToken::new());
        assert!(matches!(status, Ok(Waited::Exited(s)) if s.code() == Some(3)), "{status:?}");
        let (out, err, closed) = child.output();
        assert_eq!((out.bytes.len(), out.total, out.truncated()), (1000, 100000, true));
        assert_eq!((err.bytes.as_slice(), err.truncated()), (&b"err\n"[..], false));
        assert!(closed);
    }

    #[test]
    fn timeout_and_tree_kill() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 300 & sleep 300 & wait"]);
        let mut child = spawn(&mut cmd, 1000, false).unwrap_or_else(|e| panic!("{e}"));
        let waited = child.wait_until(Instant::now() + Duration::from_millis(300), &CancelToken::new());
        assert!(matches!(waited, Ok(Waited::TimedOut)), "{waited:?}");
        let below = descendants(child.pid());
        assert_eq!(below.len(), 2, "{below:?}");
        let status = child.kill().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.and_then(|s| s.signal()), Some(9));
        thread::sleep(Duration::from_millis(100));
        for pid in below {
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(state.is_empty() || state.contains(") Z"), "{pid} still alive: {state}");
        }
    }

    #[test]
    fn cancel_ends_the_wait() {
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let mut child = spawn(&mut cmd, 1000, false).unwrap_or_else(|e| panic!("{e}"));
        let cancel = CancelToken::new();
        cancel.cancel();
        let waited = child.wait_until(Instant::now() + Duration::from_secs(60), &cancel);
        assert!(matches!(waited, Ok(Waited::Cancelled)), "{waited:?}");
        assert!(child.kill().is_ok_and(|s| s.is_some()));
    }

    #[test]
    fn helper_times_out() {
        let started = Instant::now();
        let out =
            run_helper(Command::new("sleep").arg("300"), Duration::from_millis(200)).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.is_none() && started.elapsed() < Duration::from_secs(10));
        assert_eq!(out.message(), "timed out");
    }
}
