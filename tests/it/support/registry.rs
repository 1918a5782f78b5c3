//! A real OCI registry for the toolchain tests: Debian's `docker-registry` on
//! 127.0.0.1 with a random port and a temporary storage directory (optionally
//! behind htpasswd basic auth, or behind bearer tokens issued by the
//! [`TokenServer`] here), a fault-injecting HTTP proxy in front of it, and
//! helpers to craft and push images.
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

use oci::build::{Image, Layer, LayerCompression, ManifestFormat};
use oci::{Credentials, ImageRef, RegistryOptions};

const RUN_SETUP: &str = "run ci/setup (it installs Debian's docker-registry)";

/// A running `docker-registry`, killed on drop.
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The credentials when started with basic or token auth.
    pub(crate) credentials: Option<Credentials>,
    /// The token server, when started with token auth.
    pub(crate) token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
}

/// How the registry authenticates.
enum AuthMode {
    None,
    Htpasswd(Credentials),
    /// `auth: token:` with this token server's realm, service, issuer and certificate.
    Token(TokenServer),
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
        let dir = tempfile::Builder::new().prefix("reprove-registry-").tempdir().map_err(|e| e.to_string())?;
        Registry::start_inner(AuthMode::None, dir)
    }

    /// Starts a registry that requires basic auth with `user`/`password` (htpasswd, bcrypt).
    pub(crate) fn start_with_auth(user: &str, password: &str) -> Result<Registry, String> {
        let dir = tempfile::Builder::new().prefix("reprove-registry-").tempdir().map_err(|e| e.to_string())?;
        let c = Credentials { username: user.to_string(), password: password.to_string(), origin: "--username".into() };
        Registry::start_inner(AuthMode::Htpasswd(c), dir)
    }

    /// Starts a registry that requires bearer tokens (`auth: token:`), issued by a
    /// [`TokenServer`] on 127.0.0.1 to `user`/`password` (basic auth on the token
    /// endpoint) and to the OAuth2 refresh token `refresh_token`.
    pub(crate) fn start_with_token_server(user: &str, password: &str, refresh_token: &str) -> Result<Registry, String> {
        let dir = tempfile::Builder::new().prefix("reprove-registry-").tempdir().map_err(|e| e.to_string())?;
        let c = Credentials { username: user.to_string(), password: password.to_string(), origin: "--username".into() };
        let server = TokenServer::start(dir.path(), c, refresh_token)?;
        Registry::start_inner(AuthMode::Token(server), dir)
    }

    fn start_inner(mode: AuthMode, dir: tempfile::TempDir) -> Result<Registry, String> {
        let bin = registry_binary()?;
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
            match &mode {
                AuthMode::None => {}
                AuthMode::Htpasswd(c) => {
                    let hash = bcrypt::hash(&c.password, 4).map_err(|e| e.to_string())?;
                    let htpasswd = dir.path().join("htpasswd");
                    std::fs::write(&htpasswd, format!("{}:{hash}\n", c.username)).map_err(|e| e.to_string())?;
                    config.push_str(&format!(
                        "auth:\n  htpasswd:\n    realm: reprove-test\n    path: {}\n",
                        htpasswd.display()
                    ));
                }
                AuthMode::Token(t) => config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    t.addr,
                    t.cert_pem.display()
                )),
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
                Ok(()) => {
                    let (credentials, token_server) = match mode {
                        AuthMode::None => (None, None),
                        AuthMode::Htpasswd(c) => (Some(c), None),
                        AuthMode::Token(t) => (Some(t.credentials.clone()), Some(t)),
                    };
                    return Ok(Registry { child, addr, credentials, token_server, dir });
                }
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

    /// The registry's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The registry's temporary directory (its storage and configuration).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
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

// --- a token server -------------------------------------------------------------------

/// The `service` (JWT audience) the token-auth registry expects.
pub(crate) const TOKEN_SERVICE: &str = "reprove-test-registry";
/// The `issuer` the token-auth registry trusts.
pub(crate) const TOKEN_ISSUER: &str = "reprove-test-token-issuer";

/// A Docker token server on 127.0.0.1 (the `realm` of `auth: token:`), as
/// distribution's token specification describes it: `GET /token?service=…&scope=…`
/// with HTTP basic credentials (none: an anonymous token that grants nothing),
/// and the OAuth2 `POST /token` with `grant_type=refresh_token` or `password`.
/// It issues ES256 JWTs whose `x5c` header holds a self-signed certificate made
/// by the `openssl` CLI, the registry's `rootcertbundle`; the `access` claim
/// grants the requested scopes to authenticated clients.
pub(crate) struct TokenServer {
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The certificate (PEM) the registry trusts.
    pub(crate) cert_pem: PathBuf,
    /// The user and password it accepts.
    pub(crate) credentials: Credentials,
    /// One line per answered request: `GET basic:USER SCOPES`, `GET anonymous …`,
    /// `POST refresh_token …`, `POST password:USER …`, `refused …`.
    pub(crate) log: Arc<Mutex<Vec<String>>>,
    signer: Arc<Signer>,
    stop: Arc<AtomicBool>,
}

struct Signer {
    key: ring::signature::EcdsaKeyPair,
    cert_der_b64: String,
    rng: ring::rand::SystemRandom,
}

fn openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("openssl: {e} (run ci/setup: it installs openssl)"))?;
    if !out.status.success() {
        return Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

impl Signer {
    /// A signed JWT for `subject` granting `access`.
    fn token(&self, subject: &str, access: &serde_json::Value) -> Result<String, String> {
        static JTI: AtomicUsize = AtomicUsize::new(0);
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_b64]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
            "exp": now + 600, "nbf": now - 10, "iat": now,
            "jti": format!("reprove-test-{}", JTI.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signing_input =
            format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let sig = self.key.sign(&self.rng, signing_input.as_bytes()).map_err(|e| format!("sign: {e}"))?;
        Ok(format!("{signing_input}.{}", b64url(sig.as_ref())))
    }
}

/// The `access` claim for `scopes` (`repository:NAME:ACTIONS`).
fn access_for(scopes: &[String]) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|s| {
            let (kind, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    serde_json::Value::Array(entries)
}

impl TokenServer {
    fn start(dir: &Path, credentials: Credentials, refresh_token: &str) -> Result<TokenServer, String> {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "token-key.pem",
                "-out",
                "token-cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=reprove test token issuer",
            ],
            dir,
        )?;
        openssl(
            &["pkcs8", "-topk8", "-nocrypt", "-in", "token-key.pem", "-outform", "DER", "-out", "token-key.der"],
            dir,
        )?;
        openssl(&["x509", "-in", "token-cert.pem", "-outform", "DER", "-out", "token-cert.der"], dir)?;
        let key_der = std::fs::read(dir.join("token-key.der")).map_err(|e| e.to_string())?;
        let cert_der = std::fs::read(dir.join("token-cert.der")).map_err(|e| e.to_string())?;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_der,
            &rng,
        )
        .map_err(|e| format!("token key: {e}"))?;
        use base64::Engine as _;
        let signer =
            Arc::new(Signer { key, cert_der_b64: base64::engine::general_purpose::STANDARD.encode(&cert_der), rng });
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop2, log2, signer2, creds2, refresh) =
            (stop.clone(), log.clone(), signer.clone(), credentials.clone(), refresh_token.to_string());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (log, signer, creds, refresh) =
                            (log2.clone(), signer2.clone(), creds2.clone(), refresh.clone());
                        thread::spawn(move || {
                            let _ = serve_token(client, &signer, &creds, &refresh, &log);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(TokenServer { addr, cert_pem: dir.join("token-cert.pem"), credentials, log, signer, stop })
    }

    /// A token for `user` granting `scope` (`repository:NAME:ACTIONS`), as the
    /// token server would issue it: for tests of `registrytoken`.
    pub(crate) fn issue(&self, user: &str, scope: &str) -> String {
        self.signer.token(user, &access_for(&[scope.to_string()])).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The log lines so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_token(
    client: TcpStream,
    signer: &Signer,
    creds: &Credentials,
    refresh: &str,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let head = read_head(&mut reader)?;
    let body_len: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0).min(1 << 16);
    let mut body = vec![0; body_len];
    reader.read_exact(&mut body)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let basic = header(&head, "authorization").and_then(|v| {
        use base64::Engine as _;
        let b = v.strip_prefix("Basic ")?;
        let d = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
        let d = String::from_utf8(d).ok()?;
        let (u, p) = d.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    });
    let params = if method == "POST" { form_pairs(&String::from_utf8_lossy(&body)) } else { form_pairs(query) };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = params.iter().filter(|(n, _)| n == "scope").map(|(_, v)| v.clone()).collect();
    let service_ok = get("service").as_deref() == Some(TOKEN_SERVICE);
    // Who is asking, and with what: Some(subject) when the credentials are right.
    let (who, subject) = match (method, get("grant_type").as_deref(), &basic) {
        ("GET", _, None) => ("anonymous".to_string(), Some(String::new())),
        ("GET", _, Some((u, p))) => {
            (format!("basic:{u}"), (*u == creds.username && *p == creds.password).then(|| u.clone()))
        }
        ("POST", Some("refresh_token"), _) => (
            "refresh_token".to_string(),
            (get("refresh_token").as_deref() == Some(refresh)).then(|| creds.username.clone()),
        ),
        ("POST", Some("password"), _) => {
            let u = get("username").unwrap_or_default();
            let ok = u == creds.username && get("password").as_deref() == Some(creds.password.as_str());
            (format!("password:{u}"), ok.then_some(u))
        }
        _ => ("unsupported".to_string(), None),
    };
    let line = format!("{method} {who} {}", scopes.join(" "));
    let respond = |client: &mut TcpStream, status: &str, body: &str| -> std::io::Result<()> {
        write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let subject = match subject {
        Some(s) if path == "/token" && service_ok => s,
        _ => {
            if let Ok(mut l) = log.lock() {
                l.push(format!("refused {line}"));
            }
            return respond(
                &mut client,
                "401 Unauthorized",
                r#"{"details":"incorrect username, password or refresh token"}"#,
            );
        }
    };
    // Anonymous clients get a token that grants nothing, as public token servers do.
    let access = if subject.is_empty() { serde_json::json!([]) } else { access_for(&scopes) };
    let token = signer.token(&subject, &access).map_err(std::io::Error::other)?;
    if let Ok(mut l) = log.lock() {
        l.push(line);
    }
    let body = if method == "POST" {
        serde_json::json!({"access_token": token, "expires_in": 600, "scope": scopes.join(" ")})
    } else {
        serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
    };
    respond(&mut client, "200 OK", &body.to_string())
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

/// What the proxy does to the requests (GETs, unless started for another method)
/// whose request line contains a pattern.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Forward everything unchanged.
    None,
    /// Answer 500 to the first `count` matching requests.
    ServerErrors { count: usize },
    /// Answer the first matching requests with these statuses, in order, then forward.
    Statuses(Vec<u16>),
    /// Cut the body of every matching response in half, with a matching Content-Length (a clean, short answer).
    Truncate,
    /// Close the connection half-way through the body of the first matching response (Content-Length intact).
    BreakOnce,
    /// Serve the body with its bytes changed (same length).
    WrongBlob,
    /// Forward unchanged, after waiting this long: a slow request, to show which requests
    /// a client makes at once.
    Delay(Duration),
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
        FaultProxy::start_for(upstream, "GET", pattern, fault)
    }

    /// Proxies to `upstream`, applying `fault` to `method` requests (`PUT`, `POST`…)
    /// whose request line contains `pattern`: a registry failing half-way through a push.
    pub(crate) fn start_for(upstream: &str, method: &str, pattern: &str, fault: Fault) -> Result<FaultProxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Mutex::new(fault));
        let (stop2, hits2, upstream, pattern) = (stop.clone(), hits.clone(), upstream.to_string(), pattern.to_string());
        let method = format!("{method} ");
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (state, hits, upstream, pattern, method) =
                            (state.clone(), hits2.clone(), upstream.clone(), pattern.clone(), method.clone());
                        thread::spawn(move || {
                            let _ = handle(client, &upstream, (&method, &pattern), &state, &hits);
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
    (method, pattern): (&str, &str),
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
    let matching = request_line.starts_with(method) && request_line.contains(pattern);
    let fault = if matching {
        hits.fetch_add(1, Ordering::Relaxed);
        let mut f = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        let now = f.clone();
        match &mut *f {
            Fault::ServerErrors { count } if *count > 0 => *count -= 1,
            Fault::ServerErrors { .. } => {}
            Fault::Statuses(list) if !list.is_empty() => {
                list.remove(0);
            }
            Fault::BreakOnce => *f = Fault::None,
            _ => {}
        }
        match now {
            Fault::ServerErrors { count: 0 } => Fault::None,
            Fault::Statuses(list) => list.first().map_or(Fault::None, |s| Fault::Statuses(vec![*s])),
            other => other,
        }
    } else {
        Fault::None
    };
    if let Fault::ServerErrors { .. } = fault {
        client.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    }
    if let Fault::Statuses(status) = &fault {
        let code = status.first().copied().unwrap_or(500);
        let reason = if code == 429 { "Too Many Requests" } else { "Error" };
        client.write_all(
            format!("HTTP/1.1 {code} {reason}\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        return Ok(());
    }
    if let Fault::Delay(wait) = fault {
        thread::sleep(wait);
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
        "architecture": oci::Platform::host().architecture,
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
    image.push_blocking(&io(), reference, &registry.options()).unwrap_or_else(|e| panic!("push {reference}: {e}"));
    image
}

/// The error of a pull that must fail.
pub(crate) fn refused<T>(r: Result<T, oci::ToolchainError>, what: &str) -> oci::ToolchainError {
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

/// A runtime for one blocking call of the registry client (the library never starts one).
pub(crate) fn io() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("runtime: {e}"))
}

// --- a registry with the referrers API -------------------------------------------------

const RUN_SETUP_REFERRERS: &str =
    "run ci/setup (ci/setup-referrers-registry builds the test registry with the referrers API)";

/// The registry with the OCI 1.1 referrers API that `ci/setup-referrers-registry`
/// builds into the test cache (go-containerregistry's `pkg/registry`, in memory).
fn referrers_registry_binary() -> Result<PathBuf, String> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = non_empty("REPROVE_TEST_CACHE").unwrap_or_else(|| {
        non_empty("XDG_CACHE_HOME")
            .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("reprove-tests")
    });
    let bin = cache.join("referrers-registry/bin/referrers-registry");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} is missing: {RUN_SETUP_REFERRERS}", bin.display()))
    }
}

/// A running registry with the referrers API on 127.0.0.1, killed on drop.
pub(crate) struct ReferrersRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The credentials when started with basic auth.
    pub(crate) credentials: Option<Credentials>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ReferrersRegistry {
    /// Starts an anonymous registry with the referrers API.
    pub(crate) fn start() -> Result<ReferrersRegistry, String> {
        Self::start_inner(None)
    }

    /// Starts one that requires basic auth with `user`/`password`.
    pub(crate) fn start_with_auth(user: &str, password: &str) -> Result<ReferrersRegistry, String> {
        Self::start_inner(Some(Credentials {
            username: user.to_string(),
            password: password.to_string(),
            origin: "--username".into(),
        }))
    }

    fn start_inner(credentials: Option<Credentials>) -> Result<ReferrersRegistry, String> {
        let bin = referrers_registry_binary()?;
        let dir =
            tempfile::Builder::new().prefix("reprove-referrers-registry-").tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("registry.log");
        let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&bin);
        cmd.arg("-addr").arg("127.0.0.1:0");
        if let Some(c) = &credentials {
            cmd.arg("-user").arg(&c.username).arg("-password").arg(&c.password);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} ({RUN_SETUP_REFERRERS})", bin.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("no stdout".into());
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = match (read, line.trim().strip_prefix("listening on ")) {
            (Ok(_), Some(addr)) => addr.to_string(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("the referrers registry did not start: {line:?} {log}"));
            }
        };
        if !addr.starts_with("127.0.0.1:") {
            let _ = child.kill();
            return Err(format!("the referrers registry listens on {addr}, not on 127.0.0.1"));
        }
        Ok(ReferrersRegistry { child, addr, credentials, log, _dir: dir })
    }

    /// Registry options that reach this registry (with its credentials, if any).
    pub(crate) fn options(&self) -> RegistryOptions {
        RegistryOptions { credentials: self.credentials.clone(), retries: Some(3), ..RegistryOptions::default() }
    }

    /// `127.0.0.1:PORT/name:tag` as a reference.
    pub(crate) fn reference(&self, name_tag: &str) -> ImageRef {
        format!("{}/{name_tag}", self.addr).parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The registry's log (one line per request).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
