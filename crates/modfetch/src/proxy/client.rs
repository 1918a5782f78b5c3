//! The fetcher behind the GOPROXY client: `http://`, `https://` and `file://`
//! GETs with the go command's rules.
//!
//! - Proxies from HTTP_PROXY/HTTPS_PROXY/NO_PROXY with Go's semantics
//!   ([`super::httpproxy`]); the proxy URL's userinfo becomes `Proxy-Authorization`.
//! - Credentials: a `.netrc` entry for an `https://` URL (Go's GOAUTH=netrc),
//!   else the userinfo of the GOPROXY URL itself (what Go's `net/http` sends);
//!   like Go, credentials in an `http://` URL are refused, never sent.
//! - Redirects: at most 10, never from HTTPS to plain HTTP.
//! - A connect timeout and an idle-read timeout (Go has none; a hung proxy
//!   should not hang a CI job), retries with exponential backoff on transient
//!   failures ([`FetchError::is_transient`]): each request is tried up to
//!   `1 + retries` times.
//! - `file://` answers 404 for a missing file and 403 for an unreadable one,
//!   as Go's `web.getFile`.
//!
//! Errors are classified into [`FetchErrorKind`]s by walking the error's
//! causes (DNS, connect, TLS, timeout), so that reports and `reprove doctor`
//! can tell them apart.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{redirect, StatusCode, Url};

use super::httpproxy::{ProxyChoice, ProxyConfig};
use super::netrc::{self, Credential};
use super::{redact, FetchError, FetchErrorKind};

/// How the fetcher behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Proxy variables (HTTP_PROXY…).
    pub proxy: ProxyConfig,
    /// `.netrc` credentials (empty when GOAUTH does not include `netrc`).
    pub credentials: Vec<Credential>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// Extra attempts after a transient failure.
    pub retries: u32,
    /// The first backoff delay; doubled at each retry.
    pub backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            proxy: ProxyConfig::default(),
            credentials: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            retries: 2,
            backoff: Duration::from_millis(250),
        }
    }
}

impl ClientConfig {
    /// The proxy variables and `.netrc` credentials of a resolved environment
    /// (credentials only when GOAUTH includes `netrc`, its default), with
    /// default timeouts and retries. Also returns the `.netrc` path consulted.
    pub fn from_env(env: &gomod::env::GoEnv) -> (ClientConfig, Option<std::path::PathBuf>) {
        let lookup = |k: &str| env.process(k).map(str::to_string);
        let proxy = ProxyConfig::from_lookup(&lookup);
        let goauth = env.get("GOAUTH");
        let use_netrc = goauth.is_empty() || goauth.split(';').any(|c| c.split_whitespace().next() == Some("netrc"));
        let path = netrc::path(&lookup);
        let credentials = match (&path, use_netrc) {
            (Some(p), true) => std::fs::read_to_string(p).map(|t| netrc::parse(&t)).unwrap_or_default(),
            _ => Vec::new(),
        };
        (ClientConfig { proxy, credentials, ..ClientConfig::default() }, path.filter(|_| use_netrc))
    }
}

/// Counters, shared by every request of a client.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (each attempt counts).
    pub requests: AtomicU64,
    /// Attempts repeated after a transient failure.
    pub retries: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
}

/// An HTTP(S) and `file://` fetcher.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    stats: Arc<Stats>,
}

fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The body of a successful GET.
#[derive(Debug)]
pub enum Sink<'a> {
    /// Collect in memory (at most `limit` bytes).
    Memory(&'a mut Vec<u8>),
    /// Write to this file (truncated before each attempt).
    File(&'a mut File),
}

impl Client {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<Client, FetchError> {
        install_crypto_provider();
        let proxy_cfg = config.proxy.clone();
        let proxy = reqwest::Proxy::custom(move |url: &Url| match proxy_cfg.proxy_for(url) {
            ProxyChoice::Proxy(p) => Some(p),
            ProxyChoice::Direct | ProxyChoice::Refused(_) => None,
        });
        let policy = redirect::Policy::custom(|attempt| {
            let prev = attempt.previous();
            if prev.len() >= 10 {
                return attempt.error("stopped after 10 redirects");
            }
            if prev.first().is_some_and(|u| u.scheme() == "https") && attempt.url().scheme() != "https" {
                let msg = format!(
                    "redirected from secure URL {} to insecure URL {}",
                    prev.last().map(redact).unwrap_or_default(),
                    redact(attempt.url())
                );
                return attempt.error(msg);
            }
            attempt.follow()
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .proxy(proxy)
            .redirect(policy)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("reprove/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::new(FetchErrorKind::Other, "", format!("creating the HTTP client: {e}")))?;
        Ok(Client { http, config: Arc::new(config), stats: Arc::new(Stats::default()) })
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// GETs `url` into `sink`, with retries; `limit` bounds the body size.
    pub async fn get(&self, url: &Url, sink: &mut Sink<'_>, limit: u64) -> Result<u64, FetchError> {
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            reset(sink).map_err(|e| FetchError::new(FetchErrorKind::File, &redact(url), e.to_string()))?;
            let r = match url.scheme() {
                "file" => get_file(url, sink, limit).inspect(|n| {
                    self.stats.bytes.fetch_add(*n, Ordering::Relaxed);
                }),
                _ => self.get_http(url, sink, limit).await,
            };
            match r {
                Err(e) if e.is_transient() && attempt < self.config.retries => {
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(jitter(delay)).await;
                    delay = delay.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    /// GETs a small document into memory.
    pub async fn get_bytes(&self, url: &Url, limit: u64) -> Result<Vec<u8>, FetchError> {
        let mut buf = Vec::new();
        self.get(url, &mut Sink::Memory(&mut buf), limit).await?;
        Ok(buf)
    }

    async fn get_http(&self, url: &Url, sink: &mut Sink<'_>, limit: u64) -> Result<u64, FetchError> {
        let shown = redact(url);
        if let ProxyChoice::Refused(msg) = self.config.proxy.proxy_for(url) {
            return Err(FetchError::new(FetchErrorKind::Other, &shown, msg));
        }
        let mut target = url.clone();
        let userinfo = (!url.username().is_empty() || url.password().is_some())
            .then(|| (percent_decode(url.username()), percent_decode(url.password().unwrap_or(""))));
        if userinfo.is_some() && url.scheme() != "https" {
            // Go's web.get: credentials never travel over plain HTTP.
            return Err(FetchError::new(
                FetchErrorKind::InsecureCredentials,
                &shown,
                format!("refusing to pass credentials to insecure URL: {shown}"),
            ));
        }
        let _ = target.set_username("");
        let _ = target.set_password(None);
        let mut req = self.http.get(target);
        if let Some(c) = netrc::lookup(&self.config.credentials, url) {
            req = req.header(AUTHORIZATION, basic(&c.login, c.password()));
        } else if let Some((u, p)) = userinfo {
            req = req.header(AUTHORIZATION, basic(&u, &p));
        }
        let mut resp = req.send().await.map_err(|e| classify(&e, &shown))?;
        let status = resp.status();
        if status != StatusCode::OK {
            let mut detail = status_text(status);
            let plain = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("text/plain"));
            if plain {
                let mut body = Vec::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    body.extend_from_slice(&chunk);
                    if body.len() > 8192 {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&body);
                let text = text.trim();
                if !text.is_empty() {
                    let first: String = text.lines().take(8).collect::<Vec<_>>().join("\n\t");
                    detail = format!("{detail}\n\tserver response: {first}");
                }
            }
            let kind = match status.as_u16() {
                404 => FetchErrorKind::NotFound,
                410 => FetchErrorKind::Gone,
                401 => FetchErrorKind::Unauthorized,
                403 => FetchErrorKind::Forbidden,
                _ => FetchErrorKind::Status,
            };
            return Err(FetchError { kind, url: shown, status: Some(status.as_u16()), detail });
        }
        let mut n: u64 = 0;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(classify(&e, &shown)),
            };
            n += chunk.len() as u64;
            self.stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if n > limit {
                return Err(FetchError::new(FetchErrorKind::TooLarge, &shown, format!("larger than {limit} bytes")));
            }
            write_sink(sink, &chunk).map_err(|e| FetchError::new(FetchErrorKind::File, &shown, e.to_string()))?;
        }
        Ok(n)
    }
}

fn status_text(s: StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

fn basic(user: &str, pass: &str) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::from_str(&format!("Basic {token}")).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d + Duration::from_millis(u64::from(nanos % 100))
}

fn reset(sink: &mut Sink<'_>) -> io::Result<()> {
    match sink {
        Sink::Memory(v) => {
            v.clear();
            Ok(())
        }
        Sink::File(f) => {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0)).map(|_| ())
        }
    }
}

fn write_sink(sink: &mut Sink<'_>, data: &[u8]) -> io::Result<()> {
    match sink {
        Sink::Memory(v) => {
            v.extend_from_slice(data);
            Ok(())
        }
        Sink::File(f) => f.write_all(data),
    }
}

/// Go's `web.getFile`.
fn get_file(url: &Url, sink: &mut Sink<'_>, limit: u64) -> Result<u64, FetchError> {
    let shown = redact(url);
    let path =
        url.to_file_path().map_err(|()| FetchError::new(FetchErrorKind::File, &shown, "not a local file path"))?;
    let status = |kind, code: u16, text: &str, e: &io::Error| FetchError {
        kind,
        url: shown.clone(),
        status: Some(code),
        detail: format!("{code} {text} ({})", gomod::dirhash::errno_text(e)),
    };
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(status(FetchErrorKind::NotFound, 404, "Not Found", &e));
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(status(FetchErrorKind::Forbidden, 403, "Forbidden", &e));
        }
        Err(e) => return Err(FetchError::new(FetchErrorKind::File, &shown, e.to_string())),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut n: u64 = 0;
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FetchError::new(FetchErrorKind::File, &shown, e.to_string())),
        };
        n += k as u64;
        if n > limit {
            return Err(FetchError::new(FetchErrorKind::TooLarge, &shown, format!("larger than {limit} bytes")));
        }
        write_sink(sink, &buf[..k]).map_err(|e| FetchError::new(FetchErrorKind::File, &shown, e.to_string()))?;
    }
    Ok(n)
}

/// Classifies a reqwest error by its causes.
pub(crate) fn classify(e: &reqwest::Error, url: &str) -> FetchError {
    let chain = error_chain(e);
    let text = chain.join(": ");
    let kind = classify_chain(e, &chain);
    FetchError::new(kind, url, text)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if out.last() != Some(&s) && !out.last().is_some_and(|l: &String| l.ends_with(&s)) {
            out.push(s);
        }
        cur = c.source();
    }
    out
}

fn classify_chain(e: &reqwest::Error, chain: &[String]) -> FetchErrorKind {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return FetchErrorKind::Tls;
        }
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) {
                return FetchErrorKind::Tls;
            }
        }
        cur = c.source();
    }
    let lower = chain.join(": ").to_lowercase();
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        return FetchErrorKind::Dns;
    }
    if e.is_timeout() || lower.contains("timed out") {
        return FetchErrorKind::Timeout;
    }
    const TLS_WORDS: &[&str] = &[
        "certificate",
        "tls handshake",
        "invalidcontenttype",
        "received fatal alert",
        "corrupt message",
        "peer misbehaved",
        "peer is incompatible",
        "invalid peer certificate",
    ];
    if TLS_WORDS.iter().any(|w| lower.contains(w)) {
        return FetchErrorKind::Tls;
    }
    if e.is_redirect() {
        return FetchErrorKind::Redirect;
    }
    if e.is_connect() {
        return FetchErrorKind::Connect;
    }
    if e.is_body() || e.is_decode() {
        return FetchErrorKind::Read;
    }
    if lower.contains("connection") {
        return FetchErrorKind::Connect;
    }
    FetchErrorKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_userinfo() {
        assert_eq!(percent_decode("a%40b%3A"), "a@b:");
        assert_eq!(percent_decode("plain%"), "plain%");
    }
}
