//! The docker and podman backends: their CLIs, where an engine answers.
//!
//! podman runs the rootfs directory itself, under an overlay
//! (`--rootfs DIR:O`): podman and its OCI runtime create mount points and
//! files (`/etc/hosts`, `/etc/hostname`, `/run`, `/dev`…) in a rootfs, and the
//! overlay keeps them out of the cached image, which is never written to.
//! podman is daemonless: the container inherits the rlimits of podman's
//! monitor (conmon), so `RLIMIT_NPROC` is set explicitly to what it can grant
//! (podman's own default, above the hard limit of a container host, makes the
//! runtime fail with `error setting rlimits`); docker gets the same value,
//! which also lets the docker backend run on podman's docker-compatible CLI. `--unsetenv-all` drops podman's
//! own `container=podman`. docker cannot run a directory, so
//! the rootfs is imported once as an image (`tar | docker import`), tagged
//! `reprove-rootfs:<hash of the rootfs path and identity>`, and reused.
//! Containers are named `reprove-<pid>-…`, run with `--rm`, and removed with
//! `rm -f` whatever happens. The environment is passed entry by entry as
//! `--env K=V`, never as a bare name (which the CLIs would fill in from the
//! host). The engine adds `HOSTNAME` to the environment.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use super::process::{self, run_helper, run_helper_with_input, Waited};
use super::runc::nofile_limit;
use super::{unique_id, CancelToken, Error, Job, Outcome, Runner, Runtime, Status};

const HELPER_TIMEOUT: Duration = Duration::from_secs(60);
const IMPORT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A docker or podman CLI.
pub(crate) struct Engine {
    runtime: Runtime,
}

impl Engine {
    pub(crate) fn new(runtime: Runtime) -> Engine {
        Engine { runtime }
    }

    fn binary(&self) -> Result<PathBuf, Error> {
        let name = self.runtime.name();
        process::find_program(name).ok_or_else(|| Error::NotInstalled { runtime: self.runtime, program: name.into() })
    }

    /// The image to run for a rootfs (docker only): imported once, then reused.
    fn import(&self, bin: &Path, rootfs: &Path) -> Result<String, Error> {
        let meta = std::fs::metadata(rootfs).map_err(|e| Error::io("stat", rootfs, e))?;
        let mut h = sha2::Sha256::new();
        h.update(rootfs.as_os_str().as_encoded_bytes());
        h.update(format!("\0{}:{}:{}", meta.dev(), meta.ino(), meta.mtime()).as_bytes());
        let tag = format!("reprove-rootfs:{}", &hex::encode(h.finalize())[..32]);
        if run_helper(Command::new(bin).args(["image", "inspect", &tag]), HELPER_TIMEOUT)?.success() {
            return Ok(tag);
        }
        let tar_bin = process::find_program("tar").ok_or_else(|| Error::Unavailable {
            runtime: self.runtime,
            reason: "importing a rootfs needs tar, which is not on PATH".into(),
        })?;
        let mut tar = Command::new(&tar_bin)
            .args(["--numeric-owner", "-C"])
            .arg(rootfs)
            .args(["-cf", "-", "."])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn { program: tar_bin.display().to_string(), source })?;
        let Some(stream) = tar.stdout.take() else {
            let _ = tar.kill();
            let _ = tar.wait();
            return Err(Error::Start { runtime: self.runtime, message: "tar has no stdout".into() });
        };
        let imported =
            run_helper_with_input(Command::new(bin).args(["import", "-", &tag]), Stdio::from(stream), IMPORT_TIMEOUT);
        // tar ends once its reader is done; bound the wait anyway.
        let deadline = Instant::now() + Duration::from_secs(60);
        while tar.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = tar.kill();
        let _ = tar.wait();
        let imported = imported?;
        if imported.success() {
            Ok(tag)
        } else {
            Err(Error::Start {
                runtime: self.runtime,
                message: format!("docker import of {}: {}", rootfs.display(), imported.message()),
            })
        }
    }

    fn args(&self, job: &Job, name: &str, image: Option<&str>) -> Vec<String> {
        let mut a: Vec<String> =
            ["run", "--rm", "--name", name, "--network", job.network().name()].map(String::from).to_vec();
        match self.runtime {
            Runtime::Docker => a.extend(["--pull", "never"].map(String::from)),
            _ => a.push("--unsetenv-all".into()),
        }
        let nproc = nproc_limit();
        a.extend(["--ulimit".into(), format!("nproc={nproc}:{nproc}")]);
        let nofile = nofile_limit();
        a.extend(
            [
                "--read-only",
                "--tmpfs",
                "/tmp:rw,nosuid,nodev,exec,mode=1777",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
                "--hostname",
                "reprove",
                "--user",
                "0:0",
                "--ulimit",
                "core=0:0",
                "--ulimit",
            ]
            .map(String::from),
        );
        a.push(format!("nofile={nofile}:{nofile}"));
        if let Some(m) = job.limits().memory {
            a.extend(["--memory".into(), m.to_string(), "--memory-swap".into(), m.to_string()]);
        }
        if let Some(p) = job.limits().pids {
            a.extend(["--pids-limit".into(), p.to_string()]);
        }
        a.extend(["--workdir".into(), job.cwd().to_string()]);
        for kv in job.env_strings() {
            a.extend(["--env".into(), kv]);
        }
        for m in job.mounts() {
            let mut spec = format!("type=bind,source={},target={}", m.source().display(), m.destination());
            if m.read_only() {
                spec.push_str(",readonly");
            }
            a.extend(["--mount".into(), spec]);
        }
        match image {
            Some(image) => a.push(image.to_string()),
            None => a.extend(["--rootfs".into(), format!("{}:O", job.rootfs().display())]),
        }
        a.extend(job.argv().iter().cloned());
        a
    }

    fn stop(&self, bin: &Path, name: &str, child: &mut process::Child, grace: Duration) -> Result<(), Error> {
        let _ = run_helper(Command::new(bin).args(["kill", "--signal", "TERM", name]), HELPER_TIMEOUT)?;
        if child.wait_for(grace)?.is_some() {
            return Ok(());
        }
        let _ = run_helper(Command::new(bin).args(["kill", name]), HELPER_TIMEOUT)?;
        if child.wait_for(Duration::from_secs(10))?.is_none() {
            child.kill()?;
        }
        Ok(())
    }
}

/// Removes podman and docker containers (`reprove-<pid>-…`) whose names
/// `dead` accepts, where the engine is installed and answers; returns how many.
pub(crate) fn collect_stale(dead: &dyn Fn(&str) -> bool) -> usize {
    let mut removed = 0;
    for runtime in [Runtime::Podman, Runtime::Docker] {
        let Ok(bin) = Engine::new(runtime).binary() else { continue };
        let listed = run_helper(
            Command::new(&bin).args(["ps", "--all", "--format", "{{.Names}}", "--filter", "name=^reprove-"]),
            HELPER_TIMEOUT,
        );
        let Ok(listed) = listed else { continue };
        if !listed.success() {
            continue;
        }
        for name in listed.stdout.lines().map(str::trim).filter(|n| n.starts_with("reprove-") && dead(n)) {
            if run_helper(Command::new(&bin).args(["rm", "--force", name]), HELPER_TIMEOUT).is_ok_and(|o| o.success()) {
                removed += 1;
            }
        }
    }
    removed
}

/// The `RLIMIT_NPROC` podman's containers get: the host's hard limit, at
/// most `kernel.pid_max` (podman's monitor runs with no more than that).
fn nproc_limit() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nproc).maximum.unwrap_or(u64::MAX);
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(32768);
    hard.min(pid_max)
}

impl Runner for Engine {
    fn runtime(&self) -> Runtime {
        self.runtime
    }

    fn check_available(&self) -> Result<(), Error> {
        let bin = self.binary()?;
        let out = run_helper(Command::new(&bin).arg("info"), HELPER_TIMEOUT)?;
        if out.success() {
            Ok(())
        } else {
            Err(Error::Unavailable {
                runtime: self.runtime,
                reason: format!("`{} info` failed: {}", self.runtime, out.message()),
            })
        }
    }

    fn run(&self, job: &Job, cancel: &CancelToken) -> Result<Outcome, Error> {
        let started = Instant::now();
        let bin = self.binary()?;
        if job.user().is_some_and(|u| u != (0, 0)) {
            return Err(Error::Unsupported {
                runtime: self.runtime,
                feature: "run the build as another user",
                reason: "reprove runs engine sandboxes as 0:0".into(),
            });
        }
        if job.umask().is_some() {
            return Err(Error::Unsupported {
                runtime: self.runtime,
                feature: "set the umask",
                reason: "docker has no umask option; reprove sets none for either engine".into(),
            });
        }
        if self.runtime == Runtime::Podman && job.rootfs().as_os_str().as_encoded_bytes().contains(&b':') {
            return Err(Error::Unavailable {
                runtime: self.runtime,
                reason: format!("podman's --rootfs cannot take a path with ':' ({})", job.rootfs().display()),
            });
        }
        let image = match self.runtime {
            Runtime::Docker => Some(self.import(&bin, job.rootfs())?),
            _ => None,
        };
        let name = unique_id();
        // podman's monitor writes files (an `oom` marker when the container
        // is OOM-killed) into its working directory: give it one of ours,
        // removed afterwards, never the caller's.
        let cwd = tempfile::Builder::new()
            .prefix(&format!("{name}-cwd-"))
            .tempdir()
            .map_err(|e| Error::io("create a working directory in", std::env::temp_dir(), e))?;
        // The engine's monitor keeps the container running when its CLI dies:
        // a guard removes it if reprove dies.
        let cleanup: Vec<std::ffi::OsString> =
            vec![bin.clone().into(), "rm".into(), "--force".into(), name.clone().into()];
        let _guard = process::DeathGuard::start(&cleanup);
        let mut cmd = Command::new(&bin);
        cmd.args(self.args(job, &name, image.as_deref())).stdin(Stdio::null()).current_dir(cwd.path());
        let mut child = process::spawn(&mut cmd, job.limits().output_cap, job.echo())?;
        let waited = child.wait_until(started + job.limits().timeout, cancel);
        let status = match waited {
            Ok(Waited::Exited(s)) => Ok(match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => Status::Exited(c),
                (None, Some(sig)) => Status::Signaled(sig),
                _ => Status::Signaled(0),
            }),
            Ok(Waited::TimedOut) => {
                self.stop(&bin, &name, &mut child, job.limits().kill_grace).map(|()| Status::TimedOut)
            }
            Ok(Waited::Cancelled) => {
                self.stop(&bin, &name, &mut child, job.limits().kill_grace).map(|()| Status::Cancelled)
            }
            Err(e) => Err(e),
        };
        if status.is_err() {
            let _ = child.kill();
        }
        let _ = run_helper(Command::new(&bin).args(["rm", "--force", &name]), HELPER_TIMEOUT)?;
        let left = run_helper(
            Command::new(&bin).args(["ps", "--all", "--quiet", "--filter", &format!("name=^{name}$")]),
            HELPER_TIMEOUT,
        )?;
        if !left.success() || !left.stdout.trim().is_empty() {
            return Err(Error::Cleanup {
                runtime: self.runtime,
                id: name,
                message: format!("container still listed after rm --force: {}", left.message()),
            });
        }
        let (stdout, stderr, _) = child.output();
        let status = status?;
        let err_text = String::from_utf8_lossy(&stderr.bytes).into_owned();
        let last = err_text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
        match status {
            Status::Exited(125) => return Err(Error::Start { runtime: self.runtime, message: last }),
            Status::Exited(126 | 127)
                if err_text.contains("executable file not found") || err_text.contains("no such file or directory") =>
            {
                return Err(Error::CommandNotFound {
                    runtime: self.runtime,
                    command: job.argv()[0].clone(),
                    message: last,
                })
            }
            // The OCI runtime could not create the container (rlimits, mounts, namespaces).
            Status::Exited(126 | 127) if last.starts_with("Error: ") && last.contains("OCI ") => {
                return Err(Error::Start { runtime: self.runtime, message: last })
            }
            _ => {}
        }
        Ok(Outcome { runtime: self.runtime, status, stdout, stderr, duration: started.elapsed(), notes: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobConfig, Limits, Mount};

    #[test]
    fn arguments() {
        let rootfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(JobConfig {
            rootfs: rootfs.path().into(),
            argv: vec!["go".into(), "version".into()],
            env: vec!["A=1".into()],
            mounts: vec![Mount::new(out.path(), "/out", true).unwrap_or_else(|e| panic!("{e}"))],
            limits: Limits { memory: Some(1 << 30), pids: Some(100), ..Limits::default() },
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let docker = Engine::new(Runtime::Docker).args(&job, "n", Some("img:t")).join(" ");
        let n = nproc_limit();
        assert!(docker.starts_with(&format!("run --rm --name n --network none --pull never --ulimit nproc={n}:{n} --read-only --tmpfs /tmp:rw,nosuid,nodev,exec,mode=1777 --cap-drop ALL --security-opt no-new-privileges")), "{docker}");
        assert!(
            docker.contains(
                "--memory 1073741824 --memory-swap 1073741824 --pids-limit 100 --workdir / --env A=1 --env PATH="
            ),
            "{docker}"
        );
        assert!(docker.ends_with(",target=/out,readonly img:t go version"), "{docker}");
        let podman = Engine::new(Runtime::Podman).args(&job, "n", None).join(" ");
        assert!(!podman.contains("--pull"));
        assert!(podman.contains(&format!("--unsetenv-all --ulimit nproc={0}:{0} ", nproc_limit())), "{podman}");
        assert!(docker.contains(&format!("--pull never --ulimit nproc={0}:{0} ", nproc_limit())), "{docker}");
        assert!(
            podman.contains(&format!(
                "--rootfs {}:O go version",
                std::fs::canonicalize(rootfs.path()).unwrap_or_default().display()
            )),
            "{podman}"
        );
    }
}
