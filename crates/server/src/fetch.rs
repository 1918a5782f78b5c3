//! A reference given as a URL (`https://…`; `http://` to a loopback address only, when
//! the server allows it): downloaded once, bounded in size and time, hashed while it is
//! written, and kept content-addressed in a directory (`DIR/sha256/HEX`), so that what a
//! job is keyed by ([`crate::job::VerifySpec::reference_digest`]) is exactly what it
//! verifies. No credentials are sent (a URL with a user name is refused before this), no
//! cookies are kept, and TLS trusts the system's roots (and `SSL_CERT_FILE` for a private
//! CA), as every other HTTPS client of reprove does.
//!
//! Redirects: up to [`MAX_REDIRECTS`], to https on any host (a release URL of a forge
//! redirects to its storage host; the content is keyed by its digest whatever host served
//! it, and nothing secret is sent), never from https down to http; to http only where
//! http itself is allowed (the loopback switch, loopback hosts).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// Whether a reference is a URL (`https://`, `http://`).
pub fn is_url(reference: &str) -> bool {
    reference.starts_with("https://") || reference.starts_with("http://")
}

/// Checks the shape of a reference URL: `https://HOST/…`, or `http://` to a loopback
/// host (`127.0.0.0/8`, `::1`, `localhost`); no user name or password (nothing secret
/// goes into a job spec, which anyone who may read jobs sees).
pub fn check_url(url: &str) -> Result<reqwest::Url, InvalidUrl> {
    let bad = |m: String| Err(InvalidUrl(m));
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return bad(format!("{url:?}: not a URL: {e}")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad(format!("{url:?}: a reference URL carries no credentials"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad(format!("{url:?}: no host"));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => bad(format!("{url:?}: plain http is refused (the content could be changed on the way): use https")),
        other => bad(format!("{url:?}: the scheme {other} is not https")),
    }
}

/// Checks that `url` may be downloaded: [`check_url`], and plain http only where
/// `loopback_http` allows it.
pub fn allowed(url: &str, loopback_http: bool) -> Result<reqwest::Url, FetchError> {
    let parsed = check_url(url).map_err(|e| FetchError::Refused(e.0))?;
    if parsed.scheme() == "http" && !loopback_http {
        return Err(FetchError::Insecure(format!(
            "{url:?}: plain http is refused unless the server's configuration allows it for loopback addresses (loopback-http-references)"
        )));
    }
    Ok(parsed)
}

/// Why a reference URL is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidUrl(pub String);

/// Whether the URL's host is a loopback address (or `localhost`).
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// How a download runs.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The largest file taken (a `Content-Length` above it is refused before the body).
    pub max_bytes: u64,
    /// To connect (TCP and TLS).
    pub connect: Duration,
    /// Between two reads of the body.
    pub idle: Duration,
    /// For the whole download.
    pub overall: Duration,
    /// Whether `http://` to a loopback host is allowed (a test server, a local mirror).
    pub loopback_http: bool,
}

impl Fetch {
    /// The registry client's connect and idle deadlines, `overall` for the whole download.
    pub fn new(max_bytes: u64, overall: Duration) -> Fetch {
        Fetch {
            max_bytes,
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(20),
            overall,
            loopback_http: false,
        }
    }
}

/// A downloaded reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `sha256:…` of its content.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Where it is kept: `DIR/sha256/HEX`.
    pub path: PathBuf,
}

/// Why a reference URL gave no file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not acceptable (its form).
    #[error("{0}")]
    Refused(String),
    /// Plain http where the server does not allow it.
    #[error("{0}")]
    Insecure(String),
    /// The server answered 404 or 410: nothing there (yet).
    #[error("{0}")]
    NotFound(String),
    /// Larger than the bound.
    #[error("{0}")]
    TooLarge(String),
    /// The server's TLS certificate is not trusted.
    #[error("{0}")]
    Untrusted(String),
    /// No answer in time, another status, a broken connection.
    #[error("{0}")]
    Unreachable(String),
    /// The file could not be kept.
    #[error("{0}")]
    Store(String),
}

impl FetchError {
    /// A short stable code for an API answer.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Refused(_) => "invalid-reference",
            FetchError::Insecure(_) => "insecure-reference",
            FetchError::NotFound(_) => "reference-not-found",
            FetchError::TooLarge(_) => "reference-too-large",
            FetchError::Untrusted(_) => "reference-untrusted",
            FetchError::Unreachable(_) => "reference-unreachable",
            FetchError::Store(_) => "internal",
        }
    }
}

/// The file kept for `digest` in `dir`, if there is one.
pub fn kept(dir: &Path, digest: &str) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:").filter(|_| crate::job::valid_digest(digest))?;
    let path = dir.join("sha256").join(hex);
    path.is_file().then_some(path)
}

/// Removes what downloads interrupted by a crash left in `dir` (`sha256/.fetch-*` older
/// than `age`, longer than any download runs); the number removed.
pub fn sweep(dir: &Path, age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("sha256")) else { return 0 };
    let stale = |e: &std::fs::DirEntry| {
        e.file_name().to_string_lossy().starts_with(".fetch-")
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a > age))
    };
    entries.flatten().filter(stale).filter(|e| std::fs::remove_file(e.path()).is_ok()).count()
}

/// Removes the references kept in `dir` (`sha256/HEX`) that were written more than `age`
/// ago and whose digest (`sha256:HEX`) is not `in_use` (a queued or running job's); the
/// number removed. Nothing is lost by it: a job whose file is gone downloads its URL
/// again and checks it against the digest it was keyed by.
pub fn prune(dir: &Path, age: Duration, in_use: &std::collections::HashSet<String>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("sha256")) else { return 0 };
    let old = |e: &std::fs::DirEntry| {
        let name = e.file_name().to_string_lossy().into_owned();
        crate::job::valid_digest(&format!("sha256:{name}"))
            && !in_use.contains(&format!("sha256:{name}"))
            && e.metadata().is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t.elapsed().is_ok_and(|a| a > age)))
    };
    entries.flatten().filter(old).filter(|e| std::fs::remove_file(e.path()).is_ok()).count()
}

/// Removes a partial download unless it was kept.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Downloads `url` into `dir` (`DIR/sha256/HEX`, written to a temporary file there and
/// renamed when whole and within the bound: a refused download leaves nothing).
pub async fn fetch(url: &str, dir: &Path, opts: &Fetch) -> Result<Fetched, FetchError> {
    let parsed = allowed(url, opts.loopback_http)?;
    let shown = redacted(&parsed);
    match tokio::time::timeout(opts.overall, download(parsed, &shown, dir, opts)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Unreachable(format!(
            "{shown}: the download took longer than {}s",
            opts.overall.as_secs_f64()
        ))),
    }
}

/// The URL without its query (which may carry a signature) for messages.
fn redacted(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn client(opts: &Fetch) -> Result<reqwest::Client, FetchError> {
    // An error means a provider is already installed: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loopback_http = opts.loopback_http;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let from_https = attempt.previous().iter().any(|u| u.scheme() == "https");
        let to = attempt.url();
        match to.scheme() {
            "https" => attempt.follow(),
            "http" if loopback_http && !from_https && is_loopback(to) => attempt.follow(),
            _ => {
                let message = format!("redirected to {}, which is not https", redacted(to));
                attempt.error(message)
            }
        }
    });
    reqwest::Client::builder()
        .connect_timeout(opts.connect)
        .read_timeout(opts.idle)
        .redirect(policy)
        .user_agent(concat!("reprove-serve/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Unreachable(format!("creating the HTTP client: {e}")))
}

async fn download(url: reqwest::Url, shown: &str, dir: &Path, opts: &Fetch) -> Result<Fetched, FetchError> {
    let http = client(opts)?;
    let resp = http.get(url).send().await.map_err(|e| sent_error(shown, &e))?;
    let status = resp.status().as_u16();
    match status {
        200 => {}
        404 | 410 => return Err(FetchError::NotFound(format!("{shown}: the server answered {status}: no such file"))),
        _ => return Err(FetchError::Unreachable(format!("{shown}: the server answered {status}"))),
    }
    let max = opts.max_bytes;
    let too_large = || FetchError::TooLarge(format!("{shown}: larger than the {max} bytes the server takes"));
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let store = |e: std::io::Error| FetchError::Store(format!("keeping the reference in {}: {e}", dir.display()));
    let dir = dir.join("sha256");
    std::fs::create_dir_all(&dir).map_err(store)?;
    let temp = dir.join(format!(".fetch-{}-{}", std::process::id(), nonce()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp).map_err(store)?;
    let mut partial = Partial(Some(temp.clone()));
    // Hashing and writing up to the bound's bytes (the page cache throttles large writes)
    // block: a blocking thread does them, fed through a short queue (bounded memory).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<hyper::body::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        while let Some(chunk) = rx.blocking_recv() {
            sha2::Digest::update(&mut hasher, &chunk);
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        Ok(hex::encode(sha2::Digest::finalize(hasher)))
    });
    let mut size = 0u64;
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.map_err(|e| sent_error(shown, &e))? {
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large());
        }
        if tx.send(chunk).await.is_err() {
            break; // The writer failed: its error is below.
        }
    }
    drop(tx);
    let joined = writer.await.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    let hex = joined.map_err(store)?;
    let path = dir.join(&hex);
    let (from, to) = (temp.clone(), path.clone());
    let kept = tokio::task::spawn_blocking(move || std::fs::rename(&from, &to))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    kept.map_err(store)?;
    partial.0 = None;
    Ok(Fetched { digest: format!("sha256:{hex}"), size, path })
}

/// A number that differs between calls (temporary file names).
fn nonce() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    now ^ (u128::from(N.fetch_add(1, Ordering::Relaxed)) << 96)
}

/// A request that failed: an untrusted certificate said so, the rest unreachable.
fn sent_error(shown: &str, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain = Vec::new();
    while let Some(s) = source {
        // An I/O error's source is its inner error's source: look at the inner one too.
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        let tls = [Some(s), inner].into_iter().flatten().find_map(|e| e.downcast_ref::<rustls::Error>());
        // The connector's wrapping does not always keep the rustls error downcastable:
        // its message ("invalid peer certificate: …") says the same.
        let why = match tls {
            Some(rustls::Error::InvalidCertificate(why)) => Some(format!("{why:?}")),
            _ => s.to_string().strip_prefix("invalid peer certificate: ").map(str::to_string),
        };
        if let Some(why) = why {
            return FetchError::Untrusted(format!(
                "{shown}: the server's TLS certificate is not trusted ({why}); for a private CA, set SSL_CERT_FILE to its PEM file in the server's environment"
            ));
        }
        chain.push(s.to_string());
        source = s.source();
    }
    chain.dedup();
    let what = if e.is_timeout() { "no answer in time: " } else { "" };
    FetchError::Unreachable(format!("{shown}: {what}{}", chain.join(": ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only old, unused references go: not a fresh one, not one a job needs, not what is
    /// not a reference (a partial download is [`sweep`]'s).
    #[test]
    fn prune_removes_old_references_no_job_needs() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = dir.path().join("sha256");
        std::fs::create_dir_all(&store).unwrap_or_else(|e| panic!("{e}"));
        let hex = |c: char| c.to_string().repeat(64);
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(3 * 86400);
        for name in [hex('a'), hex('b'), hex('c'), ".fetch-x".to_string(), "notes".to_string()] {
            let f = std::fs::File::create(store.join(&name)).unwrap_or_else(|e| panic!("{e}"));
            if name != hex('c') {
                f.set_modified(long_ago).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        let in_use = std::collections::HashSet::from([format!("sha256:{}", hex('b'))]);
        assert_eq!(prune(dir.path(), Duration::from_secs(86400), &in_use), 1);
        let mut left: Vec<String> = std::fs::read_dir(&store)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".fetch-x".to_string(), hex('b'), hex('c'), "notes".to_string()]);
        assert_eq!(prune(&dir.path().join("missing"), Duration::ZERO, &in_use), 0);
    }

    #[test]
    fn urls_are_https_or_loopback_http_without_credentials() {
        assert!(check_url("https://example.test/app").is_ok());
        assert!(check_url("http://127.0.0.1:8/app").is_ok());
        assert!(check_url("http://[::1]:8/app").is_ok());
        assert!(check_url("http://localhost/app").is_ok());
        assert!(check_url("http://example.test/app").is_err());
        assert!(check_url("http://10.0.0.1/app").is_err());
        assert!(check_url("https://user:pw@example.test/app").is_err());
        assert!(check_url("https://user@example.test/app").is_err());
        assert!(check_url("ftp://example.test/app").is_err());
        assert!(check_url("https://").is_err());
    }

    /// A one-thread HTTP/1.0 server on 127.0.0.1 answering each request with
    /// `answer(path)` (the whole response, headers included); its base URL.
    fn serve(answer: fn(&str, u16) -> Vec<u8>) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let _ = conn.write_all(&answer(&path, port));
            }
        });
        format!("http://127.0.0.1:{port}")
    }

    fn answer(path: &str, port: u16) -> Vec<u8> {
        let ok = |body: &[u8], length: bool| {
            let mut r = b"HTTP/1.0 200 OK\r\n".to_vec();
            if length {
                r.extend(format!("Content-Length: {}\r\n", body.len()).bytes());
            }
            r.extend(b"\r\n");
            r.extend(body);
            r
        };
        let redirect =
            |to: String| format!("HTTP/1.0 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes();
        match path {
            "/app" => ok(b"the binary", true),
            "/big" => ok(&[1u8; 100], true),
            "/big-unannounced" => ok(&[1u8; 100], false),
            "/moved" => redirect(format!("http://127.0.0.1:{port}/app")),
            "/away" => redirect("http://192.0.2.1/app".into()),
            _ => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        }
    }

    #[test]
    fn downloads_are_bounded_kept_by_digest_and_redirected_only_where_allowed() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        let base = serve(answer);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let opts = Fetch { loopback_http: true, ..Fetch::new(50, Duration::from_secs(10)) };
        let get = |path: &str, opts: &Fetch| rt.block_on(fetch(&format!("{base}{path}"), dir.path(), opts));
        let want = format!("sha256:{}", stdx::sha256_hex(b"the binary"));
        let fetched = get("/app", &opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((fetched.digest.as_str(), fetched.size), (want.as_str(), 10));
        assert_eq!(kept(dir.path(), &want), Some(fetched.path.clone()));
        assert_eq!(get("/moved", &opts).map(|f| f.digest), Ok(want.clone()));
        let files = || std::fs::read_dir(dir.path().join("sha256")).map(|d| d.count()).unwrap_or(0);
        for (path, code) in [
            ("/big", "reference-too-large"),
            ("/big-unannounced", "reference-too-large"),
            ("/missing", "reference-not-found"),
            ("/away", "reference-unreachable"),
        ] {
            let e = get(path, &opts).err().unwrap_or_else(|| panic!("{path} was downloaded"));
            assert_eq!(e.code(), code, "{path}: {e}");
        }
        assert_eq!(files(), 1, "a refused download left a file");
        let plain = Fetch { loopback_http: false, ..opts.clone() };
        assert_eq!(get("/app", &plain).map_err(|e| e.code()), Err("insecure-reference"));
    }

    #[test]
    fn kept_files_are_found_by_digest_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hex = "a".repeat(64);
        std::fs::create_dir_all(dir.path().join("sha256")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("sha256").join(&hex), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert!(kept(dir.path(), &format!("sha256:{hex}")).is_some());
        assert!(kept(dir.path(), "sha256:../x").is_none());
        std::fs::write(dir.path().join("sha256/.fetch-1-2"), b"partial").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep(dir.path(), Duration::from_secs(3600)), 0);
        assert_eq!(sweep(dir.path(), Duration::ZERO), 1);
        assert!(kept(dir.path(), &format!("sha256:{hex}")).is_some());
        assert!(kept(dir.path(), &format!("sha256:{}", "b".repeat(64))).is_none());
    }
}
