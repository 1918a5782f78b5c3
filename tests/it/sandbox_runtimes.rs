//! The build sandbox end to end, with the real runc, the real bubblewrap and
//! the real podman (daemonless, as root):
//! `reprove toolchain run` in a rootfs made from this machine's Go
//! installation runs `go version` and a real `go build`; the network is
//! unreachable unless `--network host`; nothing outside the output mount is
//! writable; the host environment does not leak in; exit statuses propagate;
//! a timeout, SIGTERM or SIGINT kills the whole process tree and leaves
//! nothing behind; memory limits hold, by cgroups or, where cgroups cannot be
//! used, by rlimits; rootless operation works (runc and bwrap); docker is used
//! where an engine answers and reported unavailable where not, and its backend
//! runs for real with podman underneath a `docker` shim (no Docker engine
//! here).
//!
//! The tests run as root (as CI does): they switch to `nobody` for the
//! rootless cases and use a private mount namespace to take cgroups away.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{self, sandbox};

use sandbox::{
    assert_nothing_left, check_schema, fixture, json, marker, probe_processes, run_with_pid, toolchain_run,
    wait_for_probes, world_readable, IMAGE_ENV, ROOTLESS_RUNTIMES, RUNTIMES, SECRET,
};
use support::{run, run_ok};

fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("reprove-sandbox-test-").tempdir().unwrap_or_else(|e| panic!("{e}"));
    world_readable(dir.path());
    dir
}

#[test]
fn go_version_inside_matches_the_host() {
    let f = fixture();
    for rt in RUNTIMES {
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--json"], &["go", "version"]));
        let doc = json(&out);
        check_schema(&doc);
        assert_eq!(out.status, Some(0), "{rt}: {}", out.stderr_str());
        assert_eq!(doc["runtime"], rt);
        assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("exited"), Some(0)), "{rt}: {doc}");
        assert_eq!(doc["stdout"], format!("{}\n", f.go_version), "{rt}");
        assert_eq!(doc["image"], serde_json::Value::Null);
    }
    // auto: the first runtime that works here, and says which.
    let (_, out) = run_with_pid(&mut toolchain_run("auto", &["--json"], &["go", "version"]));
    let doc = json(&out);
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    let chosen = doc["runtime"].as_str().unwrap_or_default().to_string();
    assert!(RUNTIMES.contains(&chosen.as_str()), "auto chose {chosen}");
    assert!(out.stderr_str().contains(&format!("reprove: runtime: {chosen}")), "{}", out.stderr_str());
    assert_eq!(doc["stdout"], format!("{}\n", f.go_version));
    // Text mode streams the command's output as it is.
    let (_, out) = run_with_pid(&mut toolchain_run("bwrap", &[], &["go", "version"]));
    assert_eq!((out.status, out.stdout_str()), (Some(0), format!("{}\n", f.go_version)));
}

#[test]
fn go_build_inside_writes_the_binary_to_the_output_mount_and_it_runs_on_the_host() {
    let f = fixture();
    for rt in RUNTIMES {
        let out_dir = tempdir();
        let mounts = [
            format!("--mount={}:/src:ro", f.probe_src.display()),
            format!("--mount={}:/out", out_dir.path().display()),
        ];
        let mut args: Vec<&str> = mounts.iter().map(String::as_str).collect();
        args.extend([
            "--workdir=/src",
            "--timeout=15m",
            "--env=CGO_ENABLED=0",
            "--env=GOCACHE=/tmp/gocache",
            "--env=GOPATH=/tmp/gopath",
            "--env=GOPROXY=off",
            "--env=GOENV=off",
            "--env=GOFLAGS=",
            "--env=GOTOOLCHAIN=local",
            "--json",
        ]);
        let (_, out) =
            run_with_pid(&mut toolchain_run(rt, &args, &["go", "build", "-trimpath", "-o", "/out/built", "."]));
        let doc = json(&out);
        assert_eq!(out.status, Some(0), "{rt}: go build failed: {}\n{}", doc["stderr"], out.stderr_str());
        let built = out_dir.path().join("built");
        let hello = run_ok(Command::new(&built).arg("hello")).unwrap_or_else(|e| panic!("{rt}: {e}"));
        assert_eq!(hello.stdout_str(), "hello from the sandbox build\n", "{rt}");
        // The binary says it was built by the same Go, with -trimpath.
        let mut cmd = Command::new("go");
        support::hermetic_go_env(&mut cmd).args(["version", "-m"]).arg(&built);
        let info = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}")).stdout_str();
        let version = f.go_version.split_whitespace().nth(2).unwrap_or_default();
        assert!(info.contains(&format!(": {version}\n")) && info.contains("-trimpath=true"), "{rt}: {info}");
        // Nothing else was written: the output mount holds only the binary.
        let entries: Vec<String> = fs::read_dir(out_dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries, ["built"], "{rt}");
    }
}

#[test]
fn the_network_is_unreachable_unless_host_networking_is_asked_for() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let _ = s.read_to_string(&mut line);
            if line == "hello\n" {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    for rt in RUNTIMES {
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--json"], &["/probe/sbxprobe", "dial", &addr]));
        let doc = json(&out);
        assert_eq!(out.status, Some(1), "{rt}: dialing out must fail: {doc}");
        assert_eq!(doc["exit_code"], 3, "{rt}: {doc}");
        assert_eq!(doc["network"], "none");
        assert!(doc["stderr"].as_str().unwrap_or_default().contains("connection refused"), "{rt}: {doc}");

        let (_, out) =
            run_with_pid(&mut toolchain_run(rt, &["--json", "--network", "host"], &["/probe/sbxprobe", "dial", &addr]));
        let doc = json(&out);
        assert_eq!(out.status, Some(0), "{rt}: {doc}");
        assert_eq!((doc["stdout"].as_str(), doc["network"].as_str()), (Some("connected\n"), Some("host")));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted.load(Ordering::SeqCst) < RUNTIMES.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), RUNTIMES.len(), "only the --network host runs reach the listener");
}

#[test]
fn only_the_output_mount_and_tmp_are_writable() {
    let f = fixture();
    let version_before = fs::read(f.rootfs.join("usr/local/go/VERSION")).unwrap_or_else(|e| panic!("{e}"));
    for rt in RUNTIMES {
        let out_dir = tempdir();
        let ro_dir = tempdir();
        let mounts = [
            format!("--mount={}:/out", out_dir.path().display()),
            format!("--mount={}:/in:ro", ro_dir.path().display()),
        ];
        for (path, writable) in [
            ("/newfile", false),
            ("/usr/local/go/VERSION", false),
            ("/usr/local/go/newfile", false),
            ("/etc/passwd", false),
            ("/probe/newfile", false),
            ("/in/newfile", false),
            ("/proc/sys/kernel/hostname", false),
            ("/out/newfile", true),
            ("/tmp/newfile", true),
        ] {
            let mut args: Vec<&str> = mounts.iter().map(String::as_str).collect();
            args.push("--json");
            let (_, out) = run_with_pid(&mut toolchain_run(rt, &args, &["/probe/sbxprobe", "write", path]));
            let doc = json(&out);
            assert_eq!(out.status == Some(0), writable, "{rt}: writing {path}: {doc}");
            if !writable {
                let err = doc["stderr"].as_str().unwrap_or_default();
                assert!(
                    err.contains("read-only file system") || err.contains("permission denied"),
                    "{rt}: {path}: {err}"
                );
            }
        }
        assert_eq!(
            fs::read_to_string(out_dir.path().join("newfile")).ok().as_deref(),
            Some("written from the sandbox\n"),
            "{rt}"
        );
        assert!(
            fs::read_dir(ro_dir.path()).into_iter().flatten().next().is_none(),
            "{rt}: the read-only mount was written"
        );
    }
    assert!(
        !f.rootfs.join("newfile").exists()
            && !f.rootfs.join("usr/local/go/newfile").exists()
            && !f.rootfs.join("out").exists()
    );
    assert_eq!(fs::read(f.rootfs.join("usr/local/go/VERSION")).unwrap_or_default(), version_before);
}

#[test]
fn the_environment_is_the_image_s_and_the_caller_s_only() {
    for rt in RUNTIMES {
        let (_, out) = run_with_pid(
            toolchain_run(
                rt,
                &["--json", "--env", "EXTRA=a b", "--env", "GOTOOLCHAIN=go1.99", "--workdir", "/usr"],
                &["/probe/sbxprobe", "environ"],
            )
            .env("HOME", "/host-home")
            .env("GOFLAGS", "-mod=vendor"),
        );
        let doc = json(&out);
        assert_eq!(out.status, Some(0), "{rt}: {doc}");
        let seen: Vec<&str> = doc["stdout"].as_str().unwrap_or_default().lines().collect();
        let mut expected =
            vec!["EXTRA=a b", "GOROOT=/usr/local/go", "GOTOOLCHAIN=go1.99", "HOME=/root", IMAGE_ENV[0], "PWD=/usr"];
        if rt == "podman" {
            // The engine sets HOSTNAME (to --hostname); nothing else of its own (no container=podman).
            expected.push("HOSTNAME=reprove");
        }
        expected.sort();
        assert_eq!(seen, expected, "{rt}");
        assert!(!doc["stdout"].as_str().unwrap_or_default().contains(SECRET.0), "{rt}: the host environment leaked");
    }
}

#[test]
fn the_command_s_exit_status_is_reported_and_sets_ours() {
    for rt in RUNTIMES {
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--json"], &["/probe/sbxprobe", "exit", "7"]));
        let doc = json(&out);
        assert_eq!(
            (out.status, doc["status"].as_str(), doc["exit_code"].as_i64()),
            (Some(1), Some("exited"), Some(7)),
            "{rt}: {doc}"
        );
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &[], &["/probe/sbxprobe", "exit", "0"]));
        assert_eq!(out.status, Some(0), "{rt}: {}", out.stderr_str());
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &[], &["/probe/sbxprobe", "exit", "42"]));
        assert_eq!(out.status, Some(1), "{rt}");
        assert!(out.stderr_str().contains("exited with status 42"), "{rt}: {}", out.stderr_str());
    }
}

#[test]
fn a_timeout_kills_the_whole_process_tree_and_leaves_nothing_behind() {
    for rt in RUNTIMES {
        let m = marker("timeout", rt);
        let started = Instant::now();
        let (pid, out) = run_with_pid(&mut toolchain_run(
            rt,
            &["--json", "--timeout", "2s", "--kill-grace", "1s"],
            &["/probe/sbxprobe", "spawn", &m],
        ));
        let doc = json(&out);
        check_schema(&doc);
        assert_eq!(
            (out.status, doc["status"].as_str()),
            (Some(1), Some("timed_out")),
            "{rt}: {doc}\n{}",
            out.stderr_str()
        );
        assert!(doc["stdout"].as_str().unwrap_or_default().starts_with("spawned "), "{rt}: {doc}");
        assert!(started.elapsed() < Duration::from_secs(30), "{rt}: took {:?}", started.elapsed());
        assert_nothing_left(pid, &m);
    }
}

#[test]
fn sigterm_or_sigint_to_reprove_stops_the_sandbox_and_cleans_up() {
    for rt in RUNTIMES {
        for signal in ["TERM", "INT"] {
            let m = marker(&format!("sig{signal}"), rt);
            let mut cmd = toolchain_run(rt, &["--kill-grace", "1s"], &["/probe/sbxprobe", "spawn", &m]);
            let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{e}"));
            let pid = child.id();
            // The probe, its child and its grandchild (which left the session).
            wait_for_probes(&m, 3);
            run_ok(Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()))
                .unwrap_or_else(|e| panic!("{e}"));
            let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{rt} SIG{signal}: {stderr}");
            assert!(stderr.contains("interrupted"), "{rt} SIG{signal}: {stderr}");
            assert_nothing_left(pid, &m);
        }
    }
}

#[test]
fn the_sandbox_has_no_capabilities_no_new_privileges_and_its_own_namespaces() {
    let host_interfaces: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    for rt in RUNTIMES {
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--json"], &["/probe/sbxprobe", "whoami"]));
        let doc = json(&out);
        let text = doc["stdout"].as_str().unwrap_or_default().to_string();
        assert_eq!(out.status, Some(0), "{rt}: {doc}");
        for line in [
            "CapInh: 0000000000000000",
            "CapPrm: 0000000000000000",
            "CapEff: 0000000000000000",
            "CapBnd: 0000000000000000",
            "CapAmb: 0000000000000000",
            "NoNewPrivs: 1",
            "interfaces: lo",
        ] {
            assert!(text.lines().any(|l| l == line), "{rt}: no {line:?} in\n{text}");
        }
        let first = text.lines().next().unwrap_or_default();
        assert!(first.starts_with("uid=0 gid=0 pid=") && first.ends_with(" hostname=reprove"), "{rt}: {first}");
        let pid: u32 = first
            .split("pid=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(u32::MAX);
        assert!(pid < 10, "{rt}: pid {pid}: not in a pid namespace of its own");

        let (_, out) =
            run_with_pid(&mut toolchain_run(rt, &["--json", "--network", "host"], &["/probe/sbxprobe", "whoami"]));
        let doc = json(&out);
        let line = doc["stdout"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("interfaces: "))
            .unwrap_or_default()
            .to_string();
        let mut seen: Vec<String> = line.trim_start_matches("interfaces: ").split(',').map(str::to_string).collect();
        seen.sort();
        assert_eq!(seen, host_interfaces, "{rt}: --network host sees the host's interfaces");
    }
}

#[test]
fn memory_limits_hold() {
    for rt in RUNTIMES {
        let cwd = tempdir();
        let (_, out) = run_with_pid(
            toolchain_run(rt, &["--json", "--memory", "64M"], &["/probe/sbxprobe", "alloc", "400"])
                .current_dir(cwd.path()),
        );
        // Nothing is written into the caller's directory (podman's monitor drops an `oom` file in its own).
        assert!(
            fs::read_dir(cwd.path()).into_iter().flatten().next().is_none(),
            "{rt}: files left in the caller's cwd"
        );
        let doc = json(&out);
        assert_eq!(out.status, Some(1), "{rt}: 400 MiB under a 64 MiB limit: {doc}");
        assert!(!doc["stdout"].as_str().unwrap_or_default().contains("allocated"), "{rt}: {doc}");
        let notes: Vec<&str> = doc["notes"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
        if rt == "bwrap" || notes.iter().any(|n| n.contains("unusable")) {
            assert!(notes.iter().any(|n| n.contains("RLIMIT_DATA")), "{rt}: the fallback is named: {notes:?}");
        }
        let (_, out) =
            run_with_pid(&mut toolchain_run(rt, &["--json", "--memory", "256M"], &["/probe/sbxprobe", "alloc", "16"]));
        let doc = json(&out);
        assert_eq!((out.status, doc["stdout"].as_str()), (Some(0), Some("allocated 16 MiB\n")), "{rt}: {doc}");
    }
}

/// The outcome of a fork bomb under `--pids 64`: the command itself ends,
/// saying how far it got; nothing of it is left.
fn assert_fork_bomb_stopped(rt: &str, pid: u32, out: &support::Outcome, m: &str) -> serde_json::Value {
    let doc = json(out);
    assert_eq!(
        (out.status, doc["status"].as_str(), doc["exit_code"].as_i64()),
        (Some(1), Some("exited"), Some(4)),
        "{rt}: the fork bomb must be stopped by the limit: {doc}"
    );
    let err = doc["stderr"].as_str().unwrap_or_default();
    assert!(err.contains("resource temporarily unavailable"), "{rt}: {err}");
    let started: u64 =
        err.split("started ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    assert!(started < 64, "{rt}: {started} processes started under --pids 64");
    assert_nothing_left(pid, m);
    doc
}

#[test]
fn a_fork_bomb_is_stopped_by_the_process_limit() {
    for rt in RUNTIMES {
        let m = marker("forkbomb", rt);
        let (pid, out) = run_with_pid(&mut toolchain_run(
            rt,
            &["--json", "--pids", "64", "--timeout", "2m"],
            &["/probe/sbxprobe", "forkbomb", "1000", &m],
        ));
        let doc = assert_fork_bomb_stopped(rt, pid, &out, &m);
        // As root, a pids cgroup holds it (runc's, podman's, or bwrap's own): no fallback is noted.
        assert!(!doc["notes"].to_string().contains("process count"), "{rt}: {doc}");
    }
    // Without --pids, the default (4096) leaves room for a real build.
    let m = marker("forkbomb-default", "bwrap");
    let (_, out) = run_with_pid(&mut toolchain_run("bwrap", &["--json"], &["/probe/sbxprobe", "forkbomb", "40", &m]));
    assert_eq!((out.status, json(&out)["stdout"].as_str()), (Some(0), Some("started 40 processes\n")));
    assert!(probe_processes(&m).is_empty());
}

/// The `syscalls` probe's report: call name → "ok" or the error.
fn syscalls(out: &support::Outcome) -> Vec<(String, String)> {
    let doc = json(out);
    assert_eq!(out.status, Some(0), "{doc}");
    doc["stdout"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

#[test]
fn runc_s_and_bwrap_s_seccomp_filters_deny_dangerous_system_calls_with_eperm() {
    // Without a filter, the probe's calls succeed or fail otherwise: as root with
    // every capability dropped, the key calls and ptrace of its own child work,
    // and unshare(CLONE_NEWUSER) from a multi-threaded Go program is EINVAL.
    for rt in ["runc", "bwrap"] {
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--json"], &["/probe/sbxprobe", "syscalls"]));
        let seen = syscalls(&out);
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["keyctl", "add_key", "ptrace", "mount", "unshare"], "{rt}");
        for (name, result) in &seen {
            assert_eq!(result, "operation not permitted", "{rt}: {name}");
        }
    }
}

#[test]
fn output_beyond_the_cap_is_counted_and_dropped() {
    for rt in RUNTIMES {
        let (_, out) =
            run_with_pid(&mut toolchain_run(rt, &["--json", "--output-cap", "1k"], &["go", "help", "build"]));
        let doc = json(&out);
        assert_eq!(out.status, Some(0), "{rt}: {doc}");
        assert_eq!(doc["stdout"].as_str().map(str::len), Some(1024), "{rt}");
        assert!(
            doc["stdout_bytes"].as_u64().unwrap_or_default() > 1024 && doc["stdout_truncated"] == true,
            "{rt}: {doc}"
        );
    }
}

#[test]
fn bad_input_exits_2() {
    let f = fixture();
    for rt in RUNTIMES {
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &[], &["no-such-command"]));
        assert_eq!(out.status, Some(2), "{rt}: {}", out.stderr_str());
        assert!(out.stderr_str().contains("not found in the image"), "{rt}: {}", out.stderr_str());
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--mount", "/nonexistent-source:/x"], &["go", "version"]));
        assert_eq!(out.status, Some(2), "{rt}: {}", out.stderr_str());
        let dst = format!("{}:/usr/local/go/newdir", f.probe_dir.display());
        let (_, out) = run_with_pid(&mut toolchain_run(rt, &["--mount", &dst], &["go", "version"]));
        assert_eq!(out.status, Some(2), "{rt}: {}", out.stderr_str());
        assert!(out.stderr_str().contains("does not exist in the image"), "{rt}: {}", out.stderr_str());
    }
    let reprove = support::reprove_bin();
    for args in [
        vec!["toolchain", "run", "example.invalid/go:1.22", "--", "go", "version"],
        vec!["toolchain", "run", "--rootfs", "/nonexistent-rootfs", "--", "go", "version"],
        vec!["toolchain", "run", "--rootfs", "/", "--", "go", "version"],
        vec!["toolchain", "run", "--timeout", "soon", "--rootfs", "/tmp", "--", "true"],
        vec!["toolchain", "run", "--rootfs", "/tmp"],
    ] {
        let out = run(Command::new(&reprove).args(&args)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stderr_str());
    }
    let out = run(Command::new(&reprove).args(["toolchain", "run", "example.invalid/go:1.22", "--", "go"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.stderr_str().contains("no digest"), "an image must be pinned: {}", out.stderr_str());
}

/// Whether `program info` succeeds here (an engine answers).
fn engine_answers(program: &str) -> Option<bool> {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false);
    if !found {
        return None;
    }
    Some(
        Command::new(program)
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    )
}

#[test]
fn docker_runs_where_an_engine_answers_and_is_reported_unavailable_where_not() {
    let f = fixture();
    // podman is in RUNTIMES: every behaviour is tested with it. docker needs a daemon.
    let engine = "docker";
    {
        let (_, out) = run_with_pid(&mut toolchain_run(engine, &["--json"], &["go", "version"]));
        match engine_answers(engine) {
            Some(true) => {
                let doc = json(&out);
                assert_eq!(out.status, Some(0), "{engine}: {}", out.stderr_str());
                assert_eq!(
                    (doc["runtime"].as_str(), doc["stdout"].as_str()),
                    (Some(engine), Some(format!("{}\n", f.go_version).as_str()))
                );
            }
            Some(false) => {
                assert_eq!(out.status, Some(3), "{engine}: {}", out.stderr_str());
                assert!(out.stdout.is_empty());
                assert!(
                    out.stderr_str().contains(&format!("{engine} cannot run sandboxes here: `{engine} info` failed")),
                    "{engine}: {}",
                    out.stderr_str()
                );
            }
            None => {
                assert_eq!(out.status, Some(3), "{engine}: {}", out.stderr_str());
                assert!(
                    out.stderr_str().contains(&format!("{engine} is not installed")),
                    "{engine}: {}",
                    out.stderr_str()
                );
            }
        }
    }
}

/// The docker backend for real, with **podman underneath**: no Docker engine
/// runs here, so `docker` on PATH is a shim that execs podman (what Debian's
/// podman-docker package installs as /usr/bin/docker). The backend's own code
/// runs as it would against docker: the rootfs imported once as an image
/// (`tar | docker import`), `docker run --pull never … IMAGE`, `rm --force`,
/// and the leftover check with `ps --all`.
#[test]
fn docker_backend_with_podman_underneath_a_docker_shim() {
    let f = fixture();
    let shim = tempdir();
    fs::write(shim.path().join("docker"), "#!/bin/sh\nexec podman \"$@\"\n").unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(shim.path().join("docker"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::join_paths(
        std::iter::once(shim.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let docker = |extra: &[&str], cmd: &[&str]| {
        let mut c = toolchain_run("docker", extra, cmd);
        c.env("PATH", &path);
        run_with_pid(&mut c)
    };

    let (_, out) = docker(&["--json"], &["go", "version"]);
    let doc = json(&out);
    check_schema(&doc);
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    assert_eq!(
        (doc["runtime"].as_str(), doc["stdout"].clone()),
        (Some("docker"), format!("{}\n", f.go_version).into())
    );

    let out_dir = tempdir();
    let mount = format!("--mount={}:/out", out_dir.path().display());
    for (path, writable) in [("/newfile", false), ("/usr/local/go/newfile", false), ("/out/newfile", true)] {
        let (_, out) = docker(&["--json", &mount], &["/probe/sbxprobe", "write", path]);
        assert_eq!(out.status == Some(0), writable, "writing {path}: {}", json(&out));
    }
    assert!(out_dir.path().join("newfile").is_file());

    let (_, out) = docker(&["--json"], &["/probe/sbxprobe", "dial", "127.0.0.1:9"]);
    assert_eq!((out.status, json(&out)["exit_code"].as_i64()), (Some(1), Some(3)), "{}", json(&out));

    let (_, out) = docker(&["--json"], &["/probe/sbxprobe", "exit", "7"]);
    assert_eq!((out.status, json(&out)["exit_code"].as_i64()), (Some(1), Some(7)));

    let (_, out) = docker(&["--json"], &["/probe/sbxprobe", "environ"]);
    let env = json(&out)["stdout"].as_str().unwrap_or_default().to_string();
    assert!(env.lines().any(|l| l == "GOROOT=/usr/local/go") && !env.contains(SECRET.0), "{env}");

    let m = marker("timeout", "docker-on-podman");
    let (pid, out) = docker(&["--json", "--timeout", "2s", "--kill-grace", "1s"], &["/probe/sbxprobe", "spawn", &m]);
    assert_eq!(json(&out)["status"], "timed_out", "{}", out.stderr_str());
    assert_nothing_left(pid, &m);

    // The imported image is the backend's cache; drop it so tests leave no images behind.
    let images = run_ok(Command::new("podman").args(["images", "--format", "{{.Repository}}:{{.Tag}}"]))
        .unwrap_or_else(|e| panic!("{e}"));
    for image in images.stdout_str().lines().filter(|l| l.contains("reprove-rootfs:")) {
        let _ = run(Command::new("podman").args(["rmi", "--force", image]));
    }
}

#[test]
fn podman_never_writes_the_cached_rootfs() {
    // A fresh copy of the rootfs (hard links), so that nothing an earlier run
    // may have left hides what this one would write.
    let s = rootless_setup();
    let before = support_tree(&s.rootfs);
    for cmd in [&["go", "version"][..], &["/probe/sbxprobe", "whoami"], &["/probe/sbxprobe", "write", "/out/x"]] {
        let out_dir = tempdir();
        let mut c = Command::new(&s.reprove);
        c.args(["toolchain", "run", "--rootfs"])
            .arg(&s.rootfs)
            .args(["--runtime", "podman", "--json", "--mount"])
            .arg(format!("{}:/probe:ro", s.probe.display()))
            .arg("--mount")
            .arg(format!("{}:/out", out_dir.path().display()))
            .args(["--env", IMAGE_ENV[0], "--"])
            .args(cmd)
            .stdin(Stdio::null());
        let (_, out) = run_with_pid(&mut c);
        assert_eq!(out.status, Some(0), "{cmd:?}: {}", out.stderr_str());
    }
    assert_eq!(support_tree(&s.rootfs), before, "podman wrote into the rootfs (mount points, /etc/hosts, /run…)");
}

/// Every path under `dir` with its size and modification time, sorted.
fn support_tree(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else { continue };
            out.push(format!("{} {} {}", p.strip_prefix(dir).unwrap_or(&p).display(), m.size(), m.mtime()));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A copy of the reprove binary, the rootfs and the probe that `nobody` can reach.
struct RootlessSetup {
    dir: tempfile::TempDir,
    reprove: PathBuf,
    rootfs: PathBuf,
    probe: PathBuf,
}

fn rootless_setup() -> RootlessSetup {
    let f = fixture();
    let dir = tempdir();
    let reprove = dir.path().join("reprove");
    fs::copy(support::reprove_bin(), &reprove).unwrap_or_else(|e| panic!("{e}"));
    let rootfs = dir.path().join("rootfs");
    // Hard links are enough (the files are world-readable) and cost no copy; fall back to copying across filesystems.
    let linked = Command::new("cp").arg("-al").arg(&f.rootfs).arg(&rootfs).status().is_ok_and(|s| s.success());
    if !linked {
        let _ = fs::remove_dir_all(&rootfs);
        run_ok(Command::new("cp").arg("-a").arg(&f.rootfs).arg(&rootfs)).unwrap_or_else(|e| panic!("{e}"));
    }
    let probe = dir.path().join("probe");
    fs::create_dir(&probe).unwrap_or_else(|e| panic!("{e}"));
    world_readable(&probe);
    fs::copy(f.probe_dir.join("sbxprobe"), probe.join("sbxprobe")).unwrap_or_else(|e| panic!("{e}"));
    RootlessSetup { dir, reprove, rootfs, probe }
}

fn as_nobody(s: &RootlessSetup, runtime: &str, extra: &[&str], cmd: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "--"])
        .arg(&s.reprove)
        .args(["toolchain", "run", "--rootfs"])
        .arg(&s.rootfs)
        .args(["--runtime", runtime, "--mount"])
        .arg(format!("{}:/probe:ro", s.probe.display()))
        .args(["--env", IMAGE_ENV[0]])
        .args(extra)
        .arg("--")
        .args(cmd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.dir.path())
        .env(SECRET.0, SECRET.1)
        .current_dir(s.dir.path());
    c
}

#[test]
fn rootless_operation_uses_a_user_namespace() {
    let f = fixture();
    let s = rootless_setup();
    for rt in ROOTLESS_RUNTIMES {
        let (_, out) = run_with_pid(&mut as_nobody(&s, rt, &["--json"], &["go", "version"]));
        let doc = json(&out);
        assert_eq!(out.status, Some(0), "{rt} as nobody: {}", out.stderr_str());
        assert_eq!(doc["stdout"], format!("{}\n", f.go_version), "{rt}");

        let (_, out) = run_with_pid(&mut as_nobody(&s, rt, &["--json"], &["/probe/sbxprobe", "whoami"]));
        let text = json(&out)["stdout"].as_str().unwrap_or_default().to_string();
        assert!(
            text.starts_with("uid=0 gid=0 ")
                && text.contains("CapEff: 0000000000000000\n")
                && text.contains("interfaces: lo\n"),
            "{rt}: {text}"
        );

        let (_, out) =
            run_with_pid(&mut as_nobody(&s, rt, &["--json", "--memory", "64M"], &["/probe/sbxprobe", "alloc", "400"]));
        let doc = json(&out);
        assert_eq!(out.status, Some(1), "{rt}: {doc}");
        let notes = doc["notes"].to_string();
        assert!(notes.contains("RLIMIT_DATA"), "{rt}: {notes}");

        // The seccomp filter holds rootless too.
        let (_, out) = run_with_pid(&mut as_nobody(&s, rt, &["--json"], &["/probe/sbxprobe", "syscalls"]));
        let seen = syscalls(&out);
        assert!(seen.len() == 5 && seen.iter().all(|(_, r)| r == "operation not permitted"), "{rt}: {seen:?}");

        // The process count: RLIMIT_NPROC, which binds the sandbox's (unprivileged) user.
        let m = marker("rootless-forkbomb", rt);
        let (pid, out) = run_with_pid(&mut as_nobody(
            &s,
            rt,
            &["--json", "--pids", "64"],
            &["/probe/sbxprobe", "forkbomb", "1000", &m],
        ));
        let doc = assert_fork_bomb_stopped(rt, pid, &out, &m);
        assert!(doc["notes"].to_string().contains("RLIMIT_NPROC"), "{rt}: {doc}");

        let m = marker("rootless", rt);
        let (pid, out) = run_with_pid(&mut as_nobody(
            &s,
            rt,
            &["--json", "--timeout", "2s", "--kill-grace", "1s"],
            &["/probe/sbxprobe", "spawn", &m],
        ));
        assert_eq!(json(&out)["status"], "timed_out", "{rt}: {}", out.stderr_str());
        assert!(probe_processes(&m).is_empty(), "{rt}: processes left: {:?}", probe_processes(&m));
        // reprove ran with a cleared environment: no XDG_RUNTIME_DIR, no TMPDIR.
        let state = PathBuf::from("/tmp/reprove-runc-65534");
        let prefix = format!("reprove-{pid}-");
        let left: Vec<String> = fs::read_dir(&state)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "{rt}: runc state left: {left:?}");
    }
}

/// Runs `cmd` in a private mount namespace where every cgroup filesystem is read-only,
/// as on a CI machine that gives no cgroup access.
fn without_cgroups(cmd: &Command) -> Command {
    const SCRIPT: &str = r#"set -e
for m in $(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts); do mount -o remount,bind,ro "$m"; done
if mkdir /sys/fs/cgroup/memory/reprove-test-writable 2>/dev/null; then echo "cgroups still writable" >&2; exit 99; fi
exec "$@""#;
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "bash", "-c", SCRIPT, "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.stdin(Stdio::null());
    c
}

#[test]
fn runc_without_usable_cgroups_says_so_and_limits_memory_by_rlimit() {
    let f = fixture();
    let (_, out) = run_with_pid(&mut without_cgroups(&toolchain_run("runc", &["--json"], &["go", "version"])));
    let doc = json(&out);
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    assert_eq!(doc["stdout"], format!("{}\n", f.go_version));
    let notes = doc["notes"].to_string();
    assert!(notes.contains("unusable here") && notes.contains("Read-only file system"), "{notes}");

    let (_, out) = run_with_pid(&mut without_cgroups(&toolchain_run(
        "runc",
        &["--json", "--memory", "64M"],
        &["/probe/sbxprobe", "alloc", "400"],
    )));
    let doc = json(&out);
    assert_eq!(out.status, Some(1), "{doc}");
    assert!(doc["notes"].to_string().contains("RLIMIT_DATA"), "{doc}");
    // runc's init must install the seccomp profile under the same limit: 64M is raised, and the note says so.
    assert!(doc["notes"].to_string().contains("raised from 67108864 to 134217728 bytes"), "{doc}");
    assert!(doc["stderr"].as_str().unwrap_or_default().contains("out of memory"), "{doc}");

    let m = marker("nocgroup", "runc");
    let (pid, out) = run_with_pid(&mut without_cgroups(&toolchain_run(
        "runc",
        &["--json", "--timeout", "2s", "--kill-grace", "1s"],
        &["/probe/sbxprobe", "spawn", &m],
    )));
    assert_eq!(json(&out)["status"], "timed_out", "{}", out.stderr_str());
    assert_nothing_left(pid, &m);
}
