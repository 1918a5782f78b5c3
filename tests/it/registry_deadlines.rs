//! Deadlines of registry traffic (issue 15): a registry that accepts no
//! connection, one that never answers, a bare TCP server that never speaks, and
//! one that trickles a byte at a time each end the command within its connect,
//! idle or overall deadline, with exit 3 and a message naming the deadline, its
//! value, the registry and what reprove was doing — in pulls, pushes and fetches
//! alike. The hanging servers here are real TCP servers on 127.0.0.1; the slow
//! proxy forwards to Debian's `docker-registry`.
//!
//! Before the deadlines, `toolchain pull` held on for 253 s against a registry
//! that never answered and 601 s against a server that never spoke.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use oci::referrers::{ReferrersError, Repository};
use oci::{Deadline, Deadlines, Digest, ImageRef, PullOptions, RegistryOptions, Store, ToolchainError};

use crate::support::registry::{self, push_tars, Registry, TarBuilder};
use crate::support::{reprove_toolchain_cmd, Outcome};

/// How a [`Hang`] server misbehaves.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Listens with a full accept queue: connecting never completes.
    Backlog,
    /// Accepts and never reads nor writes a byte.
    Silent,
    /// Accepts, reads the request, never answers.
    Mute,
    /// Answers the `/v2/` probe that opens a connection (anonymous, API v2), then
    /// never answers again: the manifest request hangs.
    PingOnly,
    /// Reads the request, answers 200 with a long body, and sends one byte of it every period.
    Trickle(Duration),
}

/// A misbehaving TCP server on 127.0.0.1, stopped on drop.
struct Hang {
    addr: String,
    stop: Arc<AtomicBool>,
    /// Connections kept open (the backlog fillers, accepted ones).
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Hang {
    fn start(mode: Mode) -> Hang {
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let listener = match mode {
            Mode::Backlog => full_backlog_listener(&held),
            _ => TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}")),
        };
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
        if !matches!(mode, Mode::Backlog) {
            listener.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
            let (stop, held) = (stop.clone(), held.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let _ = conn.set_nonblocking(false);
                            let (stop, held) = (stop.clone(), held.clone());
                            thread::spawn(move || serve(conn, mode, &stop, &held));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        } else {
            // Keep the listener (and its full queue) alive with the server.
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(50));
                }
                drop(listener);
            });
        }
        Hang { addr, stop, _held: held }
    }

    /// `127.0.0.1:PORT/name:tag`.
    fn image(&self, name_tag: &str) -> String {
        format!("{}/{name_tag}", self.addr)
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(conn: TcpStream, mode: Mode, stop: &AtomicBool, held: &Mutex<Vec<TcpStream>>) {
    if let Ok(c) = conn.try_clone() {
        if let Ok(mut h) = held.lock() {
            h.push(c);
        }
    }
    let mut conn = conn;
    if !matches!(mode, Mode::Silent) {
        let Some(first) = read_request_head(&conn) else { return };
        if matches!(mode, Mode::PingOnly) && first.starts_with("GET /v2/ ") {
            let pong = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Docker-Distribution-API-Version: registry/2.0\r\nContent-Length: 2\r\n\r\n{}";
            if conn.write_all(pong.as_bytes()).is_err() || read_request_head(&conn).is_none() {
                return;
            }
        }
    }
    if let Mode::Trickle(period) = mode {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100000\r\n\r\n{";
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(period);
            if conn.write_all(b" ").and_then(|()| conn.flush()).is_err() {
                return;
            }
        }
    }
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Reads one request head (no body: the hanging servers only get GETs), byte by
/// byte so nothing of the next request is consumed; its request line.
fn read_request_head(mut conn: &TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head);
    Some(text.lines().next().unwrap_or_default().to_string())
}

/// A listener on 127.0.0.1 with a backlog of 0 whose accept queue is full (it
/// never accepts): the kernel drops further SYNs, so a connect hangs until the
/// client gives up.
fn full_backlog_listener(held: &Mutex<Vec<TcpStream>>) -> TcpListener {
    use rustix::net::{bind, listen, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap_or_else(|e| panic!("socket: {e}"));
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    bind(&fd, &any).unwrap_or_else(|e| panic!("bind: {e}"));
    listen(&fd, 0).unwrap_or_else(|e| panic!("listen: {e}"));
    let listener = TcpListener::from(fd);
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.lock().unwrap_or_else(|e| panic!("{e}")).push(s),
            Err(_) => return listener,
        }
    }
    panic!("the accept queue of a listener with backlog 0 never filled");
}

/// A forwarder to a real registry that serves the bodies of matching GETs in
/// `pieces` pieces, `pause` before each: slow but steady when the pause is
/// below the idle deadline, a trickle when there are many pieces.
struct SlowProxy {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    fn start(upstream: &str, pattern: &str, pieces: usize, pause: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, upstream, pattern) = (stop.clone(), upstream.to_string(), pattern.to_string());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (upstream, pattern, stop) = (upstream.clone(), pattern.clone(), stop2.clone());
                        thread::spawn(move || {
                            let _ = forward(conn, &upstream, &pattern, pieces, pause, &stop);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SlowProxy { addr, stop }
    }

    fn image(&self, name_tag: &str) -> String {
        format!("{}/{name_tag}", self.addr)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One request per connection: forwards it, reads the whole answer, and sends it
/// back (slowly when the request matches).
fn forward(
    conn: TcpStream,
    upstream: &str,
    pattern: &str,
    pieces: usize,
    pause: Duration,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut up = TcpStream::connect(upstream)?;
    let mut out = format!("{request_line}\r\n");
    for l in head.iter().skip(1) {
        let lower = l.to_ascii_lowercase();
        if !lower.starts_with("connection:") && !lower.starts_with("host:") {
            out.push_str(&format!("{l}\r\n"));
        }
    }
    out.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n\r\n"));
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let mut conn = conn;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let (resp_head, resp_body) = response.split_at(split);
    let ok = resp_head.starts_with(b"HTTP/1.1 200") || resp_head.starts_with(b"HTTP/1.1 206");
    let slow = request_line.starts_with("GET ") && request_line.contains(pattern) && ok;
    if !slow {
        conn.write_all(&response)?;
        return conn.flush();
    }
    conn.write_all(resp_head)?;
    conn.flush()?;
    let piece = resp_body.len().div_ceil(pieces.max(1)).max(1);
    for chunk in resp_body.chunks(piece) {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        thread::sleep(pause);
        conn.write_all(chunk)?;
        conn.flush()?;
    }
    Ok(())
}

/// `reprove ARGS` with `env`, timed; no auth file of the machine.
fn reprove_timed(args: &[&str], env: &[(&str, &str)], home: &Path) -> (Outcome, Duration) {
    let mut cmd: Command = reprove_toolchain_cmd(args);
    cmd.env("HOME", home).env_remove("XDG_RUNTIME_DIR");
    for var in ["REPROVE_REGISTRY_CONNECT_TIMEOUT", "REPROVE_REGISTRY_IDLE_TIMEOUT", "REPROVE_REGISTRY_TIMEOUT"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("reprove: {e}"));
    (Outcome { status: out.status.code(), stdout: out.stdout, stderr: out.stderr }, start.elapsed())
}

/// `reprove toolchain pull IMAGE --cache-dir CACHE EXTRA…`, timed.
fn pull(image: &str, cache: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Outcome, Duration) {
    let cache_s = cache.display().to_string();
    let mut args = vec!["toolchain", "pull", image, "--cache-dir", &cache_s];
    args.extend_from_slice(extra);
    let home = cache.parent().unwrap_or(cache);
    reprove_timed(&args, env, home)
}

/// Requires exit 3 within `bound`, and every one of `needles` in stderr.
fn expect_deadline(what: &str, (out, took): &(Outcome, Duration), bound: Duration, needles: &[&str]) {
    let stderr = out.stderr_str();
    assert_eq!(out.status, Some(3), "{what}: exit 3 expected after {took:?}\n{stderr}");
    assert!(*took < bound, "{what}: took {took:?}, more than {bound:?}\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{what}: {n:?} missing from\n{stderr}");
    }
    eprintln!("{what}: exit 3 after {took:.1?}: {}", stderr.trim());
}

/// Nothing of a failed pull is left in the cache: no image, no temporary directory.
fn nothing_half_written(cache: &Path) {
    for sub in ["images/sha256", "tmp"] {
        let dir = cache.join(sub);
        let left: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "{}: left behind: {left:?}", dir.display());
    }
}

#[test]
fn pull_from_a_registry_that_never_answers_ends_on_the_default_idle_deadline() {
    let server = Hang::start(Mode::Mute);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let r = pull(&server.image("go:1.22"), &cache, &[], &[]);
    // Was 253 s. Now one idle deadline (20 s): an expired deadline is not retried.
    expect_deadline(
        "mute registry",
        &r,
        Duration::from_secs(45),
        &[
            &format!("registry {} did not answer within the idle deadline of 20 s", server.addr),
            "--registry-idle-timeout",
            "connect 5 s, idle 20 s, overall 300 s",
        ],
    );
    nothing_half_written(&cache);
}

#[test]
fn pull_from_a_registry_that_answers_the_probe_then_stalls_ends_on_the_idle_deadline() {
    let server = Hang::start(Mode::PingOnly);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let r = pull(&server.image("go:1.22"), &cache, &["--registry-idle-timeout", "1s"], &[]);
    // oci-client's own /v2/ probe before the manifest request may cost one more
    // idle deadline (it ignores the probe's failure); never more.
    expect_deadline(
        "probe answered, manifest never",
        &r,
        Duration::from_secs(6),
        &[&format!(
            "registry {} did not answer within the idle deadline of 1 s while fetching the manifest",
            server.addr
        )],
    );
    nothing_half_written(&cache);
}

#[test]
fn pull_from_a_server_that_never_speaks_ends_on_the_default_idle_deadline() {
    let server = Hang::start(Mode::Silent);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let r = pull(&server.image("go:1.22"), &cache, &[], &[]);
    // Was 601 s (five attempts of 120 s).
    expect_deadline(
        "silent server",
        &r,
        Duration::from_secs(45),
        &["did not answer within the idle deadline of 20 s", "--registry-idle-timeout"],
    );
    nothing_half_written(&cache);
}

#[test]
fn pull_from_a_registry_that_accepts_no_connection_ends_on_the_connect_deadline() {
    let server = Hang::start(Mode::Backlog);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let image = server.image("go:1.22");
    let r = pull(&image, &cache, &[], &[]);
    expect_deadline(
        "full accept queue, default",
        &r,
        Duration::from_secs(15),
        &[
            &format!("registry {} accepted no connection within the connect deadline of 5 s", server.addr),
            "--registry-connect-timeout",
        ],
    );
    let r = pull(&image, &cache, &["--registry-connect-timeout", "1s"], &[]);
    expect_deadline(
        "full accept queue, --registry-connect-timeout 1s",
        &r,
        Duration::from_secs(4),
        &["accepted no connection within the connect deadline of 1 s"],
    );
    nothing_half_written(&cache);
}

#[test]
fn shorter_deadlines_from_flags_and_the_environment_fail_faster() {
    let server = Hang::start(Mode::Mute);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let image = server.image("go:1.22");
    let r = pull(&image, &cache, &["--registry-idle-timeout", "1"], &[]);
    expect_deadline("--registry-idle-timeout 1", &r, Duration::from_secs(6), &["idle deadline of 1 s"]);
    let r = pull(&image, &cache, &[], &[("REPROVE_REGISTRY_IDLE_TIMEOUT", "1500ms")]);
    expect_deadline("REPROVE_REGISTRY_IDLE_TIMEOUT=1500ms", &r, Duration::from_secs(6), &["idle deadline of 1.5 s"]);
    // The flag wins over the environment.
    let r = pull(&image, &cache, &["--registry-idle-timeout", "1s"], &[("REPROVE_REGISTRY_IDLE_TIMEOUT", "1h")]);
    expect_deadline("flag over environment", &r, Duration::from_secs(6), &["idle deadline of 1 s"]);
    // The overall deadline cuts a longer idle deadline short.
    let r = pull(&image, &cache, &["--registry-idle-timeout", "60s", "--registry-timeout", "2s"], &[]);
    expect_deadline(
        "--registry-timeout 2s",
        &r,
        Duration::from_secs(7),
        &["did not finish within the overall deadline of 2 s", "--registry-timeout"],
    );
    // A bad value is the user's error (exit 2), naming where it came from.
    let (out, _) = pull(&image, &cache, &[], &[("REPROVE_REGISTRY_TIMEOUT", "soon")]);
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("REPROVE_REGISTRY_TIMEOUT"), "{}", out.stderr_str());
    let (out, _) = pull(&image, &cache, &["--registry-connect-timeout", "0"], &[]);
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    nothing_half_written(&cache);
}

#[test]
fn a_trickling_server_is_stopped_by_the_overall_deadline() {
    // A byte every 500 ms never lets the idle deadline expire; the overall one must.
    let server = Hang::start(Mode::Trickle(Duration::from_millis(500)));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let r = pull(&server.image("go:1.22"), &cache, &["--registry-idle-timeout", "2s", "--registry-timeout", "4s"], &[]);
    expect_deadline(
        "trickling server",
        &r,
        Duration::from_secs(9),
        &[&format!("registry {} did not finish within the overall deadline of 4 s", server.addr), "--registry-timeout"],
    );
    nothing_half_written(&cache);
}

/// A small image on a real registry, and its layer's digest.
fn image_on(registry: &Registry) -> (ImageRef, String) {
    let reference = registry.reference("slow/img:1");
    let mut tar = TarBuilder::new();
    tar.dir("etc/", 0o755);
    for i in 0..8 {
        tar.file(&format!("etc/file{i}"), 0o644, format!("content {i}\n").repeat(200).as_bytes());
    }
    let image = push_tars(registry, &reference, &[tar.finish()]);
    let layer = image.layers[0].blob.digest.to_string();
    (reference, layer)
}

#[test]
fn a_layer_that_trickles_is_stopped_by_the_overall_deadline_and_leaves_nothing() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let (_, layer) = image_on(&registry);
    // The layer in 200 pieces, one every 100 ms: 20 s, never idle for long.
    let proxy = SlowProxy::start(&registry.addr, &layer, 200, Duration::from_millis(100));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let r = pull(&proxy.image("slow/img:1"), &cache, &["--registry-timeout", "3s"], &[]);
    expect_deadline(
        "trickling layer",
        &r,
        Duration::from_secs(8),
        &["did not finish within the overall deadline of 3 s while fetching layer", &layer],
    );
    nothing_half_written(&cache);
}

#[test]
fn a_slow_but_steady_registry_succeeds_with_a_longer_idle_deadline() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let (_, layer) = image_on(&registry);
    // The layer in 2 pieces, 2 s before each.
    let proxy = SlowProxy::start(&registry.addr, &layer, 2, Duration::from_secs(2));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let image = proxy.image("slow/img:1");
    let cache = tmp.path().join("short");
    let r = pull(&image, &cache, &["--registry-idle-timeout", "1s"], &[]);
    expect_deadline(
        "idle 1 s, pauses of 2 s",
        &r,
        Duration::from_secs(10),
        &["did not answer within the idle deadline of 1 s while fetching layer", &layer],
    );
    nothing_half_written(&cache);
    let (out, took) = pull(&image, &tmp.path().join("long"), &["--registry-idle-timeout", "5s"], &[]);
    assert!(out.success(), "idle 5 s, pauses of 2 s: {}", out.stderr_str());
    assert!(took >= Duration::from_secs(4), "the proxy did not slow the layer down: {took:?}");
}

/// A GOROOT just big enough for `toolchain build`.
fn tiny_goroot(dir: &Path) -> PathBuf {
    let goroot = dir.join("go");
    std::fs::create_dir_all(goroot.join("bin")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(goroot.join("VERSION"), "go1.99.1\ntime 2024-01-02T03:04:05Z\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(goroot.join("bin/go"), "#!/bin/sh\n").unwrap_or_else(|e| panic!("{e}"));
    goroot
}

#[test]
fn toolchain_build_push_to_a_registry_that_never_answers_ends_on_the_idle_deadline() {
    let server = Hang::start(Mode::Mute);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let goroot = tiny_goroot(tmp.path()).display().to_string();
    let tag = server.image("toolchains/go:1.99.1");
    let args = ["toolchain", "build", "--goroot", &goroot, "--tag", &tag, "--push", "--registry-idle-timeout", "2s"];
    let r = reprove_timed(&args, &[], tmp.path());
    expect_deadline(
        "toolchain build --push",
        &r,
        Duration::from_secs(8),
        &[&format!(
            "registry {} did not answer within the idle deadline of 2 s while authenticating to push",
            server.addr
        )],
    );
}

#[test]
fn verify_reference_in_an_image_on_a_registry_that_never_answers_ends_on_the_idle_deadline() {
    let server = Hang::start(Mode::Mute);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache").display().to_string();
    let reference = format!("oci://{}@sha256:{}#/app", server.image("app"), "ab".repeat(32));
    let toolchain = format!("{}@sha256:{}", server.image("go"), "cd".repeat(32));
    let source = tmp.path().display().to_string();
    let args = [
        "verify",
        "--source",
        &source,
        "--reference",
        &reference,
        "--toolchain",
        &toolchain,
        "--cache-dir",
        &cache,
        "--registry-idle-timeout",
        "2s",
    ];
    let r = reprove_timed(&args, &[], tmp.path());
    let (out, took) = &r;
    let all = format!("{}{}", out.stdout_str(), out.stderr_str());
    assert_eq!(out.status, Some(3), "exit 3 expected after {took:?}\n{all}");
    assert!(*took < Duration::from_secs(8), "took {took:?}\n{all}");
    assert!(all.contains("did not answer within the idle deadline of 2 s"), "{all}");
    assert!(all.contains("--registry-idle-timeout"), "{all}");
}

#[test]
fn referrers_fetch_from_a_registry_that_never_answers_ends_on_the_idle_deadline() {
    let server = Hang::start(Mode::Mute);
    let image: ImageRef = server.image("app:1").parse().unwrap_or_else(|e| panic!("{e}"));
    let deadlines = Deadlines { idle: Duration::from_secs(1), ..Deadlines::default() };
    let options = RegistryOptions { deadlines, ..RegistryOptions::default() };
    let repository = Repository::new(&image, &options).unwrap_or_else(|e| panic!("{e}"));
    let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let r = registry::io().block_on(repository.subject(&digest));
    let took = start.elapsed();
    match r {
        Err(ReferrersError::Registry(ToolchainError::Deadline(e))) => {
            assert_eq!((e.deadline, e.registry.as_str()), (Deadline::Idle, server.addr.as_str()), "{e}");
            assert_eq!(e.deadlines.idle, Duration::from_secs(1));
        }
        other => panic!("an idle deadline expected, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn the_overall_deadline_counts_every_operation_of_a_command() {
    // Two pulls with clones of one RegistryOptions share the overall deadline: the
    // second gets what the first left.
    let server = Hang::start(Mode::Trickle(Duration::from_millis(200)));
    let image: ImageRef = server.image("go:1").parse().unwrap_or_else(|e| panic!("{e}"));
    let deadlines = Deadlines { overall: Duration::from_secs(2), ..Deadlines::default() };
    let options =
        PullOptions { registry: RegistryOptions { deadlines, ..RegistryOptions::default() }, ..PullOptions::default() };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(tmp.path().join("cache")).unwrap_or_else(|e| panic!("{e}"));
    let io = registry::io();
    let start = Instant::now();
    let first = store.pull_blocking(&io, &image, &options.clone());
    assert!(matches!(first, Err(ToolchainError::Deadline(ref e)) if e.deadline == Deadline::Overall), "{first:?}");
    let second = store.pull_blocking(&io, &image, &options.clone());
    assert!(matches!(second, Err(ToolchainError::Deadline(ref e)) if e.deadline == Deadline::Overall), "{second:?}");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "two operations took {took:?} against an overall deadline of 2 s");
    // A fresh clock starts again.
    let fresh =
        PullOptions { registry: RegistryOptions { deadlines, ..RegistryOptions::default() }, ..PullOptions::default() };
    let start = Instant::now();
    let third = store.pull_blocking(&io, &image, &fresh);
    assert!(matches!(third, Err(ToolchainError::Deadline(_))), "{third:?}");
    assert!(start.elapsed() >= Duration::from_millis(1500), "a fresh clock has the whole deadline");
}
