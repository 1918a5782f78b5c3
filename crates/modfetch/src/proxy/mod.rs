//! The GOPROXY protocol, client side: which source each request goes to and
//! how failures fall through the list, exactly as the go command's
//! `modfetch` (`proxy.go`, `repo.go`) decides.
//!
//! What goes in: GOPROXY and GONOPROXY ([`ProxyList::parse`]); requests for
//! `<base>/<escaped path>/@v/<escaped version>.{info,mod,zip}` and `@v/list`.
//! What comes out: bytes or a file, or a [`FetchError`] with a stable
//! [`FetchErrorKind`] that tells "not found" (404, 410: the list goes on after
//! `,`) from every other failure (the list goes on only after `|`). `direct`
//! and `off` end the list; a path matched by GONOPROXY skips every proxy and
//! goes `direct` (when the list allows it). [`Route::Direct`] is an answer,
//! not a fetch: the caller delegates it to the go command, which owns VCS access.
//!
//! - [`client`]: the HTTP(S) and `file://` fetcher: Go's proxy environment
//!   ([`httpproxy`]), `.netrc` ([`netrc`]) and URL credentials, redirect rules,
//!   timeouts, retries with backoff on transient errors.
//!
//! What it is not: a resolver of queries (`@latest`, version lists for
//! upgrades) or a VCS client.

pub mod client;
pub mod httpproxy;
pub mod netrc;

use std::fmt;

use reqwest::Url;

use gomod::module::{escape_path, escape_version, match_prefix_patterns, ModuleError};

/// One entry of GOPROXY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A proxy base URL (`https://`, `http://` or `file://`).
    Url(Url),
    /// `direct`: fetch from the origin (delegated to the go command).
    Direct,
    /// `off`: no fetching at all.
    Off,
    /// The implicit first entry when GONOPROXY is set: `direct` for matching paths only.
    NoProxy,
}

/// An entry and how failures after it are handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The entry.
    pub entry: Entry,
    /// `|` after it: any error falls through; `,`: only "not found" does.
    pub fall_back_on_error: bool,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Url(u) => f.write_str(&redact(u)),
            Entry::Direct => f.write_str("direct"),
            Entry::Off => f.write_str("off"),
            Entry::NoProxy => f.write_str("noproxy"),
        }
    }
}

/// A URL with its password replaced by `xxxxx`, as Go's `url.URL.Redacted`.
pub fn redact(u: &Url) -> String {
    if u.password().is_some() {
        let mut r = u.clone();
        let _ = r.set_password(Some("xxxxx"));
        r.to_string()
    } else {
        u.to_string()
    }
}

/// [`redact`] for a URL given as text; text that is not a URL is returned as is.
pub fn redact_str(s: &str) -> String {
    match Url::parse(s) {
        Ok(u) => redact(&u),
        Err(_) => s.to_string(),
    }
}

/// Why GOPROXY cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyListError {
    /// Go's `GOPROXY list is not the empty string, but contains no entries`.
    #[error("GOPROXY list is not the empty string, but contains no entries")]
    Empty,
    /// An entry is not a usable URL (Go's `newProxyRepo` errors).
    #[error("{0}")]
    BadUrl(String),
}

/// The parsed GOPROXY list plus GONOPROXY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyList {
    specs: Vec<Spec>,
    noproxy: String,
}

impl ProxyList {
    /// Go's `proxyList`: splits on `,` and `|`, adds `https://` to bare host
    /// names, stops after `direct` or `off`, and puts the implicit `noproxy`
    /// first when GONOPROXY is set (and GOPROXY is not `direct`).
    pub fn parse(goproxy: &str, gonoproxy: &str) -> Result<ProxyList, ProxyListError> {
        let mut specs = Vec::new();
        if !gonoproxy.is_empty() && goproxy != "direct" {
            specs.push(Spec { entry: Entry::NoProxy, fall_back_on_error: false });
        }
        let mut rest = goproxy;
        while !rest.is_empty() {
            let (raw, fall_back_on_error) = match rest.find([',', '|']) {
                Some(i) => {
                    let fb = rest.as_bytes()[i] == b'|';
                    let r = &rest[..i];
                    rest = &rest[i + 1..];
                    (r, fb)
                }
                None => {
                    let r = rest;
                    rest = "";
                    (r, false)
                }
            };
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            if raw == "off" {
                specs.push(Spec { entry: Entry::Off, fall_back_on_error });
                break;
            }
            if raw == "direct" {
                specs.push(Spec { entry: Entry::Direct, fall_back_on_error });
                break;
            }
            let mut url = raw.to_string();
            if raw.contains(['.', ':', '/']) && !raw.contains(":/") && !raw.starts_with('/') {
                url = format!("https://{raw}");
            }
            specs.push(Spec { entry: Entry::Url(check_url(&url)?), fall_back_on_error });
        }
        if specs.is_empty() || (specs.len() == 1 && specs[0].entry == Entry::NoProxy) {
            return Err(ProxyListError::Empty);
        }
        Ok(ProxyList { specs, noproxy: gonoproxy.to_string() })
    }

    /// The entries, in order.
    pub fn specs(&self) -> &[Spec] {
        &self.specs
    }

    /// GONOPROXY.
    pub fn gonoproxy(&self) -> &str {
        &self.noproxy
    }

    /// Go's `lookup(proxy, path)`: where a request for `path` goes at `spec`.
    /// An empty `path` (a request that is not for a module, such as the
    /// checksum database's `supported` probe) is never matched by GONOPROXY.
    pub fn route(&self, spec: &Spec, path: &str) -> Route {
        let matched = !path.is_empty() && match_prefix_patterns(&self.noproxy, path);
        match (&spec.entry, matched) {
            (Entry::NoProxy | Entry::Direct, true) => Route::Direct,
            (_, true) => Route::Skip(FetchError::not_exist(FetchErrorKind::NoProxy, "disabled by GOPRIVATE/GONOPROXY")),
            (Entry::Off, false) => {
                Route::Skip(FetchError::not_exist(FetchErrorKind::ProxyOff, "module lookup disabled by GOPROXY=off"))
            }
            (Entry::Direct, false) => Route::Direct,
            (Entry::NoProxy, false) => {
                Route::Skip(FetchError::not_exist(FetchErrorKind::UseProxy, "path does not match GOPRIVATE/GONOPROXY"))
            }
            (Entry::Url(u), false) => Route::Proxy(u.clone()),
        }
    }

    /// Whether any module path could be sent to `direct` (the list has
    /// `direct`, or GONOPROXY is set).
    pub fn may_go_direct(&self) -> bool {
        self.specs.iter().any(|s| matches!(s.entry, Entry::Direct | Entry::NoProxy))
    }
}

fn check_url(raw: &str) -> Result<Url, ProxyListError> {
    let u = Url::parse(raw).map_err(|e| ProxyListError::BadUrl(format!("parse {raw:?}: {e}")))?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        "file" => {
            if u.username() != "" || u.password().is_some() || u.query().is_some() || u.fragment().is_some() {
                return Err(ProxyListError::BadUrl(format!(
                    "invalid file:// proxy URL with non-path elements: {}",
                    redact(&u)
                )));
            }
            Ok(u)
        }
        _ => {
            Err(ProxyListError::BadUrl(format!("invalid proxy URL scheme (must be https, http, file): {}", redact(&u))))
        }
    }
}

/// Where a request goes at one entry of the list.
#[derive(Debug, Clone)]
pub enum Route {
    /// To this proxy base URL.
    Proxy(Url),
    /// To the origin: delegate to the go command.
    Direct,
    /// Nowhere: this entry answers with this (not-found class) error.
    Skip(FetchError),
}

/// What kind of file of a module version is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `.info`: version and time (JSON).
    Info,
    /// `.mod`: the go.mod file.
    Mod,
    /// `.zip`: the module zip.
    Zip,
}

impl FileKind {
    /// The suffix in the cache and on the proxy.
    pub fn suffix(self) -> &'static str {
        match self {
            FileKind::Info => "info",
            FileKind::Mod => "mod",
            FileKind::Zip => "zip",
        }
    }
}

/// `<base>/<escaped path>/@v/<escaped version>.<suffix>`, as Go's `proxyRepo`
/// builds it (the base path keeps its own segments; `?` and `#` are escaped).
pub fn file_url(base: &Url, path: &str, version: &str, kind: FileKind) -> Result<Url, ModuleError> {
    let p = escape_path(path)?;
    let v = escape_version(version)?;
    Ok(join(base, &format!("{p}/@v/{v}.{}", kind.suffix())))
}

/// `<base>/<rest>` keeping the base's path (Go's `web.Join` / `pathpkg.Join`).
pub fn join(base: &Url, rest: &str) -> Url {
    let mut u = base.clone();
    let mut path = base.path().trim_end_matches('/').to_string();
    for seg in rest.split('/') {
        path.push('/');
        path.push_str(&path_escape(seg));
    }
    u.set_path(&path);
    u
}

/// Go's `url.PathEscape` for one path segment: everything but letters,
/// digits, `-_.~` and `$&+:=@` is percent-encoded (so `!` becomes `%21`).
fn path_escape(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What kind of failure a fetch met. Stable codes ([`FetchErrorKind::code`])
/// appear in reports; see `failure` for how they map to remediation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// HTTP 404, or a missing `file://` path.
    NotFound,
    /// HTTP 410.
    Gone,
    /// HTTP 401.
    Unauthorized,
    /// HTTP 403, or an unreadable `file://` path.
    Forbidden,
    /// Another HTTP status (5xx, 429, other 4xx).
    Status,
    /// The host name does not resolve.
    Dns,
    /// The TCP connection failed (refused, reset, unreachable).
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// No answer within the timeout.
    Timeout,
    /// The connection broke while reading the body.
    Read,
    /// The response is larger than Go allows for the file.
    TooLarge,
    /// The response is not what the protocol says (bad JSON, wrong version).
    Invalid,
    /// A redirect Go refuses (to plain HTTP from HTTPS, or more than 10).
    Redirect,
    /// A local file system error on a `file://` proxy.
    File,
    /// Credentials in an `http://` URL, which Go refuses to send.
    InsecureCredentials,
    /// GOPROXY=off.
    ProxyOff,
    /// GOPRIVATE/GONOPROXY forbid this proxy for the path.
    NoProxy,
    /// The implicit `noproxy` entry for a path GONOPROXY does not match.
    UseProxy,
    /// Anything else the HTTP stack reports.
    Other,
}

impl FetchErrorKind {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            FetchErrorKind::NotFound => "proxy-not-found",
            FetchErrorKind::Gone => "proxy-gone",
            FetchErrorKind::Unauthorized => "auth-required",
            FetchErrorKind::Forbidden => "auth-forbidden",
            FetchErrorKind::Status => "http-status",
            FetchErrorKind::Dns => "dns",
            FetchErrorKind::Connect => "connect",
            FetchErrorKind::Tls => "tls",
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::Read => "read",
            FetchErrorKind::TooLarge => "too-large",
            FetchErrorKind::Invalid => "invalid-response",
            FetchErrorKind::Redirect => "redirect",
            FetchErrorKind::File => "file",
            FetchErrorKind::InsecureCredentials => "insecure-credentials",
            FetchErrorKind::ProxyOff => "proxy-off",
            FetchErrorKind::NoProxy => "noproxy",
            FetchErrorKind::UseProxy => "useproxy",
            FetchErrorKind::Other => "other",
        }
    }
}

/// A failed fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FetchError {
    /// What kind of failure.
    pub kind: FetchErrorKind,
    /// The URL, redacted (empty for list decisions).
    pub url: String,
    /// The HTTP status, if there was an answer.
    pub status: Option<u16>,
    /// The cause in words.
    pub detail: String,
}

impl FetchError {
    pub(crate) fn new(kind: FetchErrorKind, url: &str, detail: impl Into<String>) -> FetchError {
        FetchError { kind, url: url.to_string(), status: None, detail: detail.into() }
    }

    fn not_exist(kind: FetchErrorKind, detail: &str) -> FetchError {
        FetchError::new(kind, "", detail)
    }

    fn render(&self) -> String {
        if self.url.is_empty() {
            self.detail.clone()
        } else {
            format!("reading {}: {}", self.url, self.detail)
        }
    }

    /// Go's `errors.Is(err, fs.ErrNotExist)`: 404, 410, and the list's own refusals.
    pub fn is_not_exist(&self) -> bool {
        matches!(
            self.kind,
            FetchErrorKind::NotFound
                | FetchErrorKind::Gone
                | FetchErrorKind::ProxyOff
                | FetchErrorKind::NoProxy
                | FetchErrorKind::UseProxy
        )
    }

    /// Whether trying again may help: timeouts, broken connections, 429 and 5xx (but 501).
    pub fn is_transient(&self) -> bool {
        match self.kind {
            FetchErrorKind::Timeout | FetchErrorKind::Connect | FetchErrorKind::Read => true,
            FetchErrorKind::Status => matches!(self.status, Some(429) | Some(500) | Some(502..=504)),
            _ => false,
        }
    }
}

/// The outcome of walking the list for one request.
#[derive(Debug)]
pub enum Walk<T> {
    /// A proxy answered; the index of its entry.
    Fetched(T, usize),
    /// The list sends the request to the origin.
    Direct,
}

/// Go's `TryProxies`: calls `f` for each proxy entry in turn until one
/// succeeds, stopping at `direct` (returned to the caller) or at an error the
/// entry does not fall through; returns the most helpful error (proxy errors
/// other than "not found" rank above "not found").
pub async fn try_proxies<T, F, Fut>(list: &ProxyList, path: &str, mut f: F) -> Result<Walk<T>, FetchError>
where
    F: FnMut(Url) -> Fut,
    Fut: std::future::Future<Output = Result<T, FetchError>>,
{
    let mut best: Option<FetchError> = None;
    let mut best_is_proxy = false;
    for (i, spec) in list.specs().iter().enumerate() {
        let err = match list.route(spec, path) {
            Route::Direct => return Ok(Walk::Direct),
            Route::Skip(e) => e,
            Route::Proxy(base) => match f(base).await {
                Ok(v) => return Ok(Walk::Fetched(v, i)),
                Err(e) => e,
            },
        };
        let not_exist = err.is_not_exist();
        if !not_exist {
            best = Some(err.clone());
            best_is_proxy = true;
        } else if !best_is_proxy {
            best = Some(err.clone());
        }
        if !spec.fall_back_on_error && !not_exist {
            break;
        }
    }
    Err(best.unwrap_or_else(|| FetchError::not_exist(FetchErrorKind::ProxyOff, "no proxy to try")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(l: &ProxyList) -> Vec<String> {
        l.specs().iter().map(|s| format!("{}{}", s.entry, if s.fall_back_on_error { "|" } else { "" })).collect()
    }

    #[test]
    fn parse_like_go() {
        let l = ProxyList::parse("proxy.example, file:///srv/mods|https://u:p@b.example/x,direct,https://never", "")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            entries(&l),
            vec!["https://proxy.example/", "file:///srv/mods|", "https://u:xxxxx@b.example/x", "direct"]
        );
        let l = ProxyList::parse("off", "corp.example").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&l), vec!["noproxy", "off"]);
        assert_eq!(ProxyList::parse(" , ", ""), Err(ProxyListError::Empty));
        assert!(ProxyList::parse("ftp://x.example", "").is_err());
        let d = ProxyList::parse("direct", "corp.example").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&d), vec!["direct"]);
    }

    #[test]
    fn routes() {
        let l = ProxyList::parse("https://p.example,direct", "corp.example").unwrap_or_else(|e| panic!("{e}"));
        let s = l.specs();
        assert!(matches!(l.route(&s[0], "corp.example/x"), Route::Direct));
        assert!(matches!(l.route(&s[1], "corp.example/x"), Route::Skip(_)));
        assert!(matches!(l.route(&s[0], "other.example/x"), Route::Skip(_)));
        assert!(matches!(l.route(&s[1], "other.example/x"), Route::Proxy(_)));
    }

    #[test]
    fn urls() {
        let base = Url::parse("http://127.0.0.1:1/base/").unwrap_or_else(|e| panic!("{e}"));
        let u = file_url(&base, "github.com/Azure/x", "v1.0.0-RC1", FileKind::Zip).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.as_str(), "http://127.0.0.1:1/base/github.com/%21azure/x/@v/v1.0.0-%21r%21c1.zip");
    }
}
