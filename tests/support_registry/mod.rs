//! A real OCI registry for the toolchain tests: Debian's `docker-registry` on
//! 127.0.0.1 with a random port and a temporary storage directory (optionally
//! behind htpasswd basic auth), a fault-injecting HTTP proxy in front of it,
//! and helpers to craft and push images.
//!
//! Nothing here skips: a missing `docker-registry` is an error saying to run `ci/setup`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use verifier::toolchain::build::{Image, Layer, LayerCompression, ManifestFormat};
use verifier::toolchain::{Credentials, ImageRef, RegistryOptions};

const RUN_SETUP: &str = "run ci/setup (it installs Debian's docker-registry)";

/// A running `docker-registry`, killed on drop.
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The credentials when started with basic auth.
    pub(crate) credentials: Option<Credentials>,
    dir: tempfile::TempDir,
}

fn registry_binary() -> Result<PathBuf, String> {
    for dir in std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default() {
        let p = dir.join("docker-registry");
        if p.is_file() {
            return Ok(p);
        }
    }
    let p = PathBuf::from("/usr/bin/docker-registry");
    if p.is_file() {
        return Ok(p);
    }
    Err(format!("docker-registry not found on PATH: {RUN_SETUP}"))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Registry {
    /// Starts an anonymous registry.
    pub(crate) fn start() -> Result<Registry, String> {
        Registry::start_inner(None)
    }

    /// Starts a registry that requires basic auth with `user`/`password` (htpasswd, bcrypt).
    pub(crate) fn start_with_auth(user: &str, password: &str) -> Result<Registry, String> {
        Registry::start_inner(Some(Credentials { username: user.to_string(), password: password.to_string() }))
    }

    fn start_inner(credentials: Option<Credentials>) -> Result<Registry, String> {
        let bin = registry_binary()?;
        let dir = tempfile::Builder::new().prefix("reprove-registry-").tempdir().map_err(|e| e.to_string())?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(|e| e.to_string())?;
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let addr = format!("127.0.0.1:{port}");
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.display()
            );
            if let Some(c) = &credentials {
                let hash = bcrypt::hash(&c.password, 4).map_err(|e| e.to_string())?;
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{}:{hash}\n", c.username)).map_err(|e| e.to_string())?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: reprove-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
            let log = std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
            let log2 = log.try_clone().map_err(|e| e.to_string())?;
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e} ({RUN_SETUP})", bin.display()))?;
            let mut child = child;
            match wait_ready(&mut child, &addr, &dir.path().join("registry.log")) {
                Ok(()) => return Ok(Registry { child, addr, credentials, dir }),
                Err(e) => {
                    last_err = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        Err(format!("docker-registry did not come up: {last_err}"))
    }

    /// Registry options that reach this registry (with its credentials, if any).
    pub(crate) fn options(&self) -> RegistryOptions {
        RegistryOptions { credentials: self.credentials.clone(), retries: Some(3), ..RegistryOptions::default() }
    }

    /// `127.0.0.1:PORT/name:tag` as a reference.
    pub(crate) fn reference(&self, name_tag: &str) -> ImageRef {
        format!("{}/{name_tag}", self.addr).parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The registry's storage directory (for tests that corrupt it).
    pub(crate) fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Stops the registry (for tests that check cache hits need no network).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal `GET path` returning the status code.
fn wait_ready(child: &mut Child, addr: &str, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("docker-registry exited with {status}:\n{log}"));
        }
        if let Ok(status) = http_status(addr, "/v2/") {
            if status == 200 || status == 401 {
                return Ok(());
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err("timed out waiting for /v2/".to_string())
}

fn http_status(addr: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).map_err(|e| e.to_string())?;
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad status line {line:?}"))
}

/// What the proxy does to GET requests whose request line contains a pattern.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Forward everything unchanged.
    None,
    /// Answer 500 to the first `count` matching requests.
    ServerErrors { count: usize },
    /// Cut the body of every matching response in half, with a matching Content-Length (a clean, short answer).
    Truncate,
    /// Close the connection half-way through the body of the first matching response (Content-Length intact).
    BreakOnce,
    /// Serve the body with its bytes changed (same length).
    WrongBlob,
}

/// An HTTP/1.1 forwarder on 127.0.0.1 that injects faults into matching GETs.
pub(crate) struct FaultProxy {
    pub(crate) addr: String,
    stop: Arc<AtomicBool>,
    /// Matching requests seen.
    pub(crate) hits: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Proxies to `upstream`, applying `fault` to GETs whose request line contains `pattern`.
    pub(crate) fn start(upstream: &str, pattern: &str, fault: Fault) -> Result<FaultProxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Mutex::new(fault));
        let (stop2, hits2, upstream, pattern) = (stop.clone(), hits.clone(), upstream.to_string(), pattern.to_string());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (state, hits, upstream, pattern) =
                            (state.clone(), hits2.clone(), upstream.clone(), pattern.clone());
                        thread::spawn(move || {
                            let _ = handle(client, &upstream, &pattern, &state, &hits);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(FaultProxy { addr, stop, hits })
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("eof in head"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn header(lines: &[String], name: &str) -> Option<String> {
    lines.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn handle(
    client: TcpStream,
    upstream: &str,
    pattern: &str,
    state: &Mutex<Fault>,
    hits: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let head = read_head(&mut reader)?;
    let body_len: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; body_len];
    reader.read_exact(&mut body)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let matching = request_line.starts_with("GET ") && request_line.contains(pattern);
    let fault = if matching {
        hits.fetch_add(1, Ordering::Relaxed);
        let mut f = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        let now = f.clone();
        match &mut *f {
            Fault::ServerErrors { count } if *count > 0 => *count -= 1,
            Fault::ServerErrors { .. } => {}
            Fault::BreakOnce => *f = Fault::None,
            _ => {}
        }
        match now {
            Fault::ServerErrors { count: 0 } => Fault::None,
            other => other,
        }
    } else {
        Fault::None
    };
    if let Fault::ServerErrors { .. } = fault {
        client.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    }
    // Forward, one request per connection.
    let mut up = TcpStream::connect(upstream)?;
    let mut out = String::new();
    out.push_str(&request_line);
    out.push_str("\r\n");
    for l in head.iter().skip(1) {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("host:") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n\r\n"));
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(response.len());
    let (resp_head, resp_body) = response.split_at(split);
    let resp_head = String::from_utf8_lossy(resp_head).into_owned();
    let is_ok_body = resp_head.starts_with("HTTP/1.1 200") || resp_head.starts_with("HTTP/1.1 206");
    match fault {
        Fault::Truncate if is_ok_body && resp_body.len() > 1 => {
            let half = resp_body.len() / 2;
            let head: String = resp_head
                .split("\r\n")
                .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:") && !l.is_empty())
                .map(|l| format!("{l}\r\n"))
                .collect();
            client.write_all(head.as_bytes())?;
            client.write_all(format!("Content-Length: {half}\r\n\r\n").as_bytes())?;
            client.write_all(&resp_body[..half])?;
        }
        Fault::BreakOnce if is_ok_body && resp_body.len() > 1 => {
            client.write_all(resp_head.as_bytes())?;
            client.write_all(&resp_body[..resp_body.len() / 2])?;
            client.flush()?;
            client.shutdown(Shutdown::Both)?;
        }
        Fault::WrongBlob if is_ok_body && !resp_body.is_empty() => {
            let mut changed = resp_body.to_vec();
            let last = changed.len() - 1;
            changed[last] ^= 0xff;
            changed[0] ^= 0x01;
            client.write_all(resp_head.as_bytes())?;
            client.write_all(&changed)?;
        }
        _ => {
            client.write_all(&response)?;
        }
    }
    client.flush()
}

// --- crafted images ------------------------------------------------------------------

/// Builds tar archives entry by entry, with raw (possibly hostile) names.
pub(crate) struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    pub(crate) fn new() -> TarBuilder {
        TarBuilder { out: Vec::new() }
    }

    fn header(name: &[u8], kind: tar::EntryType, mode: u32, size: u64, link: &[u8]) -> tar::Header {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            assert!(name.len() < 100 && link.len() < 100, "test names must fit a v7 header");
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            let _ = h.set_device_major(1);
            let _ = h.set_device_minor(3);
        }
        h.set_cksum();
        h
    }

    fn push(&mut self, h: tar::Header, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Regular, mode, data.len() as u64, b"");
        self.push(h, data)
    }

    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Directory, mode, 0, b"");
        self.push(h, b"")
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Symlink, 0o777, 0, target.as_bytes());
        self.push(h, b"")
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Link, 0o644, 0, target.as_bytes());
        self.push(h, b"")
    }

    pub(crate) fn device(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Char, 0o666, 0, b"");
        self.push(h, b"")
    }

    pub(crate) fn fifo(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Fifo, 0o644, 0, b"");
        self.push(h, b"")
    }

    /// A file whose header says `size` bytes of zeros (for big, compressible layers).
    pub(crate) fn zeros(&mut self, name: &str, size: u64) -> &mut Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Regular, 0o644, size, b"");
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend(std::iter::repeat_n(0u8, size as usize));
        let pad = ((512 - size % 512) % 512) as usize;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// A config for crafted images.
pub(crate) fn config(env: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "architecture": verifier::toolchain::Platform::host().architecture,
        "os": "linux",
        "config": {"Env": env},
    })
}

/// Assembles `tars` (bottom first) as an image with gzip layers and pushes it to `reference`.
pub(crate) fn push_tars(registry: &Registry, reference: &ImageRef, tars: &[Vec<u8>]) -> Image {
    push_tars_with(registry, reference, tars, LayerCompression::Gzip, ManifestFormat::Oci)
}

pub(crate) fn push_tars_with(
    registry: &Registry,
    reference: &ImageRef,
    tars: &[Vec<u8>],
    compression: LayerCompression,
    format: ManifestFormat,
) -> Image {
    let layers: Vec<Layer> =
        tars.iter().map(|t| Layer::from_tar(t, compression, format).unwrap_or_else(|e| panic!("layer: {e}"))).collect();
    let image = Image::assemble(config(&["PATH=/bin"]), layers, format).unwrap_or_else(|e| panic!("assemble: {e}"));
    image.push_blocking(reference, &registry.options()).unwrap_or_else(|e| panic!("push {reference}: {e}"));
    image
}

/// The error of a pull that must fail.
pub(crate) fn refused<T>(
    r: Result<T, verifier::toolchain::ToolchainError>,
    what: &str,
) -> verifier::toolchain::ToolchainError {
    match r {
        Ok(_) => panic!("{what}"),
        Err(e) => e,
    }
}

/// Every file under `dir`, relative, sorted (for "nothing left behind" checks).
pub(crate) fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
