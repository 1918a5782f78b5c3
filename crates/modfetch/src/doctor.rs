//! `reprove doctor`: the effective Go module environment and the checks for
//! what commonly breaks module fetching.
//!
//! What goes in: a resolved [`GoEnv`], the main module's directory if there
//! is one, and probe settings ([`DoctorOptions`]). What comes out: a
//! [`Diagnosis`] (the variables with their origins, and one [`Check`] per
//! finding, each with a stable id, a severity, a failure [`Code`] where one
//! applies, and a remediation line).
//!
//! The checks:
//!
//! - **Proxies** (`proxy-reachable`): each `http(s)://` GOPROXY entry is
//!   probed in stages, so that the failure is named: DNS (the host, or the
//!   HTTP proxy's host when HTTP(S)_PROXY applies), TCP connect, then an HTTP
//!   GET of the base URL (TLS failures show there). 5xx is an error, 401/403
//!   a warning. `file://` entries must be readable directories.
//! - **Private modules** (`private-module`): requirements of go.mod that
//!   GONOPROXY (GOPRIVATE) does not cover, whose host does not resolve, or
//!   whose `.info` the first proxy answers 404/410 for.
//! - **Patterns** (`pattern-unused`, `pattern-malformed`): GOPRIVATE,
//!   GONOPROXY, GONOSUMDB and GOINSECURE entries that match no module of go.mod, or that Go
//!   cannot parse (and silently ignores).
//! - **Credentials** (`netrc-permissions`): a `.netrc` readable by group or others.
//! - **Proxy variables** (`proxy-variables`): HTTP_PROXY without HTTPS_PROXY
//!   (or the reverse) for the schemes GOPROXY uses, upper- and lower-case
//!   variables that disagree, unparseable values, and private hosts that
//!   NO_PROXY does not exempt.
//! - **Processes** (`process-limit`): RLIMIT_NPROC (`ulimit -u`) against the
//!   tasks the user already runs: git and go fail with "unable to fork" near it.
//! - **Toolchain** (`toolchain`): a go.mod `go` or `toolchain` line newer
//!   than the local go, with what GOTOOLCHAIN will then do.
//! - **Settings** (`gosumdb`, `goinsecure`, `goflags`, `go-command`).
//!
//! What it is not: a fixer. Nothing is changed; the network is touched only
//! by the probes, with short timeouts and no retries.

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::failure::{code_for_fetch, Code};
use crate::proxy::client::{Client, ClientConfig};
use crate::proxy::httpproxy::{ProxyChoice, ProxyConfig};
use crate::proxy::{file_url, redact, Entry, FileKind, ProxyList};
use gomod::env::{GoEnv, Origin};
use gomod::gover;
use gomod::modfile::{self, ModFile};
use gomod::module::{glob_is_valid, match_prefix_patterns};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A fact worth showing.
    Info,
    /// Likely to cause trouble, or to make builds irreproducible.
    Warning,
    /// Fetching or building will fail.
    Error,
}

impl Severity {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A stable id (`proxy-reachable`, `private-module`…).
    pub id: &'static str,
    /// How bad.
    pub severity: Severity,
    /// The failure code, when the finding is a failure of a known kind.
    pub code: Option<Code>,
    /// What the finding is about (a URL, a module, a variable, a file).
    pub subject: String,
    /// What was found.
    pub message: String,
    /// What to do, if anything.
    pub remediation: Option<String>,
}

/// The outcome of `reprove doctor`.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The environment examined.
    pub env: GoEnv,
    /// The main module's go.mod, if one was found.
    pub go_mod: Option<PathBuf>,
    /// Every finding, in the order the checks ran.
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// Whether no check found an error.
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.severity == Severity::Error)
    }
}

/// Probe settings.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Connect and read timeout of each probe.
    pub timeout: Duration,
    /// Skip every network probe.
    pub offline: bool,
    /// The longest list of modules asked of the proxy for the private-module check.
    pub max_module_probes: usize,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions { timeout: Duration::from_secs(5), offline: false, max_module_probes: 64 }
    }
}

fn check(
    id: &'static str,
    severity: Severity,
    code: Option<Code>,
    subject: impl Into<String>,
    message: impl Into<String>,
    remediation: Option<&str>,
) -> Check {
    Check {
        id,
        severity,
        code,
        subject: subject.into(),
        message: message.into(),
        remediation: remediation.map(str::to_string),
    }
}

/// Runs every check. `main_dir` is the main module's directory (with go.mod), if any.
/// Probes run on `rt`, the caller's runtime.
pub fn diagnose(rt: &tokio::runtime::Runtime, env: &GoEnv, main_dir: Option<&Path>, opts: &DoctorOptions) -> Diagnosis {
    let mut checks = Vec::new();
    let go_mod_path = main_dir.map(|d| d.join("go.mod")).filter(|p| p.is_file());
    let go_mod = go_mod_path.as_ref().and_then(|p| {
        let data = fs::read(p).ok()?;
        match modfile::parse_mod(&p.display().to_string(), &data) {
            Ok(f) => Some(f),
            Err(e) => {
                checks.push(check(
                    "go-mod",
                    Severity::Error,
                    None,
                    p.display().to_string(),
                    e.to_string(),
                    Some("fix go.mod"),
                ));
                None
            }
        }
    });
    go_command(env, &mut checks);
    let list = goproxy(env, &mut checks);
    let lookup = |k: &str| env.process(k).map(str::to_string);
    let proxy_cfg = ProxyConfig::from_lookup(&lookup);
    let (mut client_cfg, netrc_path) = ClientConfig::from_env(env);
    client_cfg.connect_timeout = opts.timeout;
    client_cfg.read_timeout = opts.timeout;
    client_cfg.retries = 0;
    if !opts.offline {
        if let Some(list) = &list {
            probe_proxies(rt, list, &proxy_cfg, &client_cfg, opts, &mut checks);
            if let Some(f) = &go_mod {
                private_modules(rt, env, list, f, &client_cfg, opts, &mut checks);
            }
        }
    }
    patterns(env, go_mod.as_ref(), &mut checks);
    netrc(env, netrc_path.as_deref(), &mut checks);
    proxy_variables(env, &proxy_cfg, list.as_ref(), &mut checks);
    process_limit(&mut checks);
    if let Some(f) = &go_mod {
        toolchain(env, f, &mut checks);
    }
    settings(env, &mut checks);
    Diagnosis { env: env.clone(), go_mod: go_mod_path, checks }
}

fn go_command(env: &GoEnv, checks: &mut Vec<Check>) {
    if env.from_go() {
        checks.push(check(
            "go-command",
            Severity::Info,
            None,
            "go",
            format!("module environment read from `go env` ({})", env.get("GOVERSION")),
            None,
        ));
    } else {
        checks.push(check(
            "go-command",
            Severity::Warning,
            None,
            "go",
            "no go command found: values come from the environment, the go env file and Go's derived defaults; the defaults of GOPROXY and GOSUMDB are unknown",
            Some("install Go, or set GOPROXY and GOSUMDB explicitly"),
        ));
    }
}

fn goproxy(env: &GoEnv, checks: &mut Vec<Check>) -> Option<ProxyList> {
    let gp = match env.goproxy() {
        Ok(v) => v,
        Err(e) => {
            checks.push(check("goproxy", Severity::Error, None, "GOPROXY", e.to_string(), Some("set GOPROXY")));
            return None;
        }
    };
    match ProxyList::parse(gp, env.get("GONOPROXY")) {
        Ok(l) => {
            let entries: Vec<String> = l.specs().iter().map(|s| s.entry.to_string()).collect();
            checks.push(check(
                "goproxy",
                Severity::Info,
                None,
                "GOPROXY",
                format!("requests go to: {}", entries.join(" → ")),
                None,
            ));
            if l.specs().iter().all(|s| s.entry == Entry::Off || s.entry == Entry::NoProxy) {
                checks.push(check(
                    "goproxy",
                    Severity::Warning,
                    Some(Code::LookupDisabled),
                    "GOPROXY",
                    "GOPROXY=off: only modules already in the cache can be used",
                    Some(Code::LookupDisabled.remediation()),
                ));
            }
            Some(l)
        }
        Err(e) => {
            checks.push(check(
                "goproxy",
                Severity::Error,
                None,
                "GOPROXY",
                format!("GOPROXY={gp}: {e}"),
                Some("fix GOPROXY: comma- or pipe-separated URLs, `direct` or `off`"),
            ));
            None
        }
    }
}

/// Where the TCP connection for `url` goes: the HTTP proxy when one applies.
fn connect_target(url: &Url, cfg: &ProxyConfig) -> (Option<Url>, Option<(String, u16)>) {
    let via = match cfg.proxy_for(url) {
        ProxyChoice::Proxy(p) => Some(p),
        _ => None,
    };
    let target = via.as_ref().unwrap_or(url);
    let host = target.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
    let port = target.port_or_known_default();
    (via, host.zip(port))
}

fn probe_proxies(
    rt: &tokio::runtime::Runtime,
    list: &ProxyList,
    cfg: &ProxyConfig,
    client_cfg: &ClientConfig,
    opts: &DoctorOptions,
    checks: &mut Vec<Check>,
) {
    for spec in list.specs() {
        let Entry::Url(url) = &spec.entry else { continue };
        let shown = redact(url);
        if url.scheme() == "file" {
            let ok = url.to_file_path().ok().is_some_and(|p| fs::read_dir(&p).is_ok());
            checks.push(if ok {
                check("proxy-reachable", Severity::Info, None, &shown, "a readable directory", None)
            } else {
                check(
                    "proxy-reachable",
                    Severity::Error,
                    Some(Code::NotFound),
                    &shown,
                    "not a readable directory",
                    Some("point the file:// GOPROXY entry at a module cache's cache/download directory"),
                )
            });
            continue;
        }
        checks.push(probe_url(rt, url, cfg, client_cfg, opts));
    }
}

/// DNS, then TCP, then HTTP (TLS included): the first stage that fails names the failure.
fn probe_url(
    rt: &tokio::runtime::Runtime,
    url: &Url,
    cfg: &ProxyConfig,
    client_cfg: &ClientConfig,
    opts: &DoctorOptions,
) -> Check {
    let shown = redact(url);
    let (via, target) = connect_target(url, cfg);
    let via_note = via.as_ref().map(|v| format!(" (through the HTTP proxy {})", redact(v))).unwrap_or_default();
    let Some((host, port)) = target else {
        return check("proxy-reachable", Severity::Error, None, &shown, "no host in the URL", None);
    };
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return check(
                "proxy-reachable",
                Severity::Error,
                Some(Code::Dns),
                &shown,
                format!("DNS: {host} does not resolve{via_note}: {e}"),
                Some(Code::Dns.remediation()),
            );
        }
    };
    let mut last = None;
    let mut connected = false;
    for a in &addrs {
        match TcpStream::connect_timeout(a, opts.timeout) {
            Ok(_) => {
                connected = true;
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    if !connected {
        let e = last.map(|e| e.to_string()).unwrap_or_else(|| "no address".into());
        let code = if e.contains("timed out") { Code::Timeout } else { Code::Connect };
        return check(
            "proxy-reachable",
            Severity::Error,
            Some(code),
            &shown,
            format!("TCP: cannot connect to {host}:{port}{via_note}: {e}"),
            Some(code.remediation()),
        );
    }
    let result: Result<_, String> = rt.block_on(async {
        let client = Client::new(client_cfg.clone()).map_err(|e| e.to_string())?;
        let mut base = url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(client.get_bytes(&base, 1 << 20).await)
    });
    match result {
        Err(e) => check("proxy-reachable", Severity::Error, None, &shown, e, None),
        Ok(Ok(_)) => check("proxy-reachable", Severity::Info, None, &shown, format!("reachable{via_note}"), None),
        Ok(Err(e)) => match e.status {
            Some(s) if s < 400 || s == 404 || s == 410 => check(
                "proxy-reachable",
                Severity::Info,
                None,
                &shown,
                format!("reachable{via_note} (HTTP {s} for the base URL)"),
                None,
            ),
            Some(401 | 403) => check(
                "proxy-reachable",
                Severity::Warning,
                Some(Code::Auth),
                &shown,
                format!("HTTP: {}{via_note}", e.detail),
                Some(Code::Auth.remediation()),
            ),
            _ => {
                let code = code_for_fetch(&e);
                let stage = match code {
                    Code::Tls => "TLS",
                    Code::Timeout => "timeout",
                    _ => "HTTP",
                };
                check(
                    "proxy-reachable",
                    Severity::Error,
                    Some(code),
                    &shown,
                    format!("{stage}: {}{via_note}", e.detail.lines().next().unwrap_or_default()),
                    Some(code.remediation()),
                )
            }
        },
    }
}

fn private_modules(
    rt: &tokio::runtime::Runtime,
    env: &GoEnv,
    list: &ProxyList,
    f: &ModFile,
    client_cfg: &ClientConfig,
    opts: &DoctorOptions,
    checks: &mut Vec<Check>,
) {
    // Requirements GONOPROXY does not cover go to the proxies. Ask the first
    // one for each; only for those it does not have, look the host up (so
    // that public hosts are never resolved just to be checked).
    let noproxy = env.get("GONOPROXY");
    let mut candidates: Vec<_> =
        f.require.iter().map(|r| r.module.clone()).filter(|m| !match_prefix_patterns(noproxy, &m.path)).collect();
    candidates.truncate(opts.max_module_probes);
    let base = list.specs().iter().find_map(|s| match &s.entry {
        Entry::Url(u) => Some(u.clone()),
        _ => None,
    });
    let missing: Vec<(gomod::module::ModuleVersion, String)> = match &base {
        None => candidates.into_iter().map(|m| (m, "no proxy in GOPROXY to ask".to_string())).collect(),
        Some(base) => rt.block_on(async {
            let Ok(client) = Client::new(client_cfg.clone()) else { return Vec::new() };
            let mut out = Vec::new();
            for m in candidates {
                let Ok(url) = file_url(base, &m.path, &m.version, FileKind::Info) else { continue };
                if let Err(e) = client.get_bytes(&url, 1 << 20).await {
                    if e.is_not_exist() {
                        out.push((m, format!("{} answers {}", redact(base), e.detail)));
                    }
                }
            }
            out
        }),
    };
    for (m, why) in missing {
        let host = m.path.split('/').next().unwrap_or_default().to_string();
        let resolves = (host.as_str(), 443).to_socket_addrs().is_ok();
        let (code, message) = if resolves {
            (Code::NotFound, format!("{why} for {m}, and GOPRIVATE/GONOPROXY do not cover it"))
        } else {
            (
                Code::Dns,
                format!("{why} for {m}, its host {host} does not resolve, and GOPRIVATE/GONOPROXY do not cover it"),
            )
        };
        checks.push(check(
            "private-module",
            Severity::Warning,
            Some(code),
            m.to_string(),
            message,
            Some("if the module is private, add its path (or a glob such as *.corp.example) to GOPRIVATE, so that it is fetched directly and never sent to a proxy or the checksum database"),
        ));
    }
}

fn patterns(env: &GoEnv, f: Option<&ModFile>, checks: &mut Vec<Check>) {
    let mut paths: Vec<String> = Vec::new();
    if let Some(f) = f {
        paths.extend(f.require.iter().map(|r| r.module.path.clone()));
        paths.extend(f.replace.iter().map(|r| r.old.path.clone()));
        paths.extend(f.replace.iter().filter(|r| !r.new.version.is_empty()).map(|r| r.new.path.clone()));
        if let Some(m) = &f.module {
            paths.push(m.path.clone());
        }
    }
    for var in ["GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE"] {
        if var != "GOPRIVATE" && env.origin(var) == Origin::Derived {
            continue;
        }
        let value = env.get(var);
        for pat in value.split(',').map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
            if !glob_is_valid(pat) {
                checks.push(check(
                    "pattern-malformed",
                    Severity::Error,
                    None,
                    var,
                    format!("{var} entry {pat:?} is not a valid glob: Go ignores it, so it matches nothing"),
                    Some("fix the pattern (path.Match syntax: *, ?, [...], \\)"),
                ));
                continue;
            }
            if f.is_some() && !paths.iter().any(|p| match_prefix_patterns(pat, p)) {
                checks.push(check(
                    "pattern-unused",
                    Severity::Info,
                    None,
                    var,
                    format!("{var} entry {pat:?} matches no module in go.mod (a typo, or for another project)"),
                    Some("patterns match leading path elements: `corp.example/team` matches corp.example/team/x, not corp.example/teams"),
                ));
            }
        }
    }
}

fn netrc(env: &GoEnv, path: Option<&Path>, checks: &mut Vec<Check>) {
    let lookup = |k: &str| env.process(k).map(str::to_string);
    let Some(path) = path.map(Path::to_path_buf).or_else(|| crate::proxy::netrc::path(&lookup)) else { return };
    let Ok(meta) = fs::metadata(&path) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        checks.push(check(
            "netrc-permissions",
            Severity::Warning,
            None,
            path.display().to_string(),
            format!("{} holds credentials and is readable by others (mode {mode:o})", path.display()),
            Some("chmod 600 the file"),
        ));
    } else {
        let n = fs::read_to_string(&path).map(|t| crate::proxy::netrc::parse(&t).len()).unwrap_or(0);
        checks.push(check(
            "netrc-permissions",
            Severity::Info,
            None,
            path.display().to_string(),
            format!("{n} credential(s), mode {mode:o}"),
            None,
        ));
    }
    let goauth = env.get("GOAUTH");
    if !goauth.is_empty() && !goauth.split(';').any(|c| c.split_whitespace().next() == Some("netrc")) {
        checks.push(check(
            "netrc-permissions",
            Severity::Info,
            None,
            "GOAUTH",
            format!("GOAUTH={goauth} does not include netrc: go (and reprove) ignore {}", path.display()),
            None,
        ));
    }
}

fn proxy_variables(env: &GoEnv, cfg: &ProxyConfig, list: Option<&ProxyList>, checks: &mut Vec<Check>) {
    let p = |k: &str| env.process(k).filter(|v| !v.is_empty());
    for (upper, lower) in [("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy"), ("NO_PROXY", "no_proxy")] {
        if let (Some(u), Some(l)) = (p(upper), p(lower)) {
            if u != l {
                checks.push(check(
                    "proxy-variables",
                    Severity::Warning,
                    None,
                    upper,
                    format!("{upper} and {lower} differ: go uses {upper}, curl and git may use {lower}"),
                    Some("set both to the same value, or unset one"),
                ));
            }
        }
    }
    for (var, val) in [("HTTP_PROXY", cfg.http_proxy()), ("HTTPS_PROXY", cfg.https_proxy())] {
        if !val.is_empty() && Url::parse(val).is_err() && Url::parse(&format!("http://{val}")).is_err() {
            checks.push(check(
                "proxy-variables",
                Severity::Error,
                None,
                var,
                format!("{var}={val:?} is not a URL: Go ignores it"),
                Some("use http://host:port"),
            ));
        }
    }
    let schemes: BTreeSet<&str> = list
        .map(|l| {
            l.specs()
                .iter()
                .filter_map(|s| match &s.entry {
                    Entry::Url(u) => Some(u.scheme()),
                    Entry::Direct | Entry::NoProxy => Some("https"),
                    Entry::Off => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let (http, https) = (!cfg.http_proxy().is_empty(), !cfg.https_proxy().is_empty());
    if http && !https && schemes.contains("https") {
        checks.push(check(
            "proxy-variables",
            Severity::Warning,
            None,
            "HTTPS_PROXY",
            "HTTP_PROXY is set but HTTPS_PROXY is not: https:// requests (GOPROXY, direct fetches) bypass the proxy",
            Some("set HTTPS_PROXY too (usually to the same proxy)"),
        ));
    }
    if https && !http && schemes.contains("http") {
        checks.push(check(
            "proxy-variables",
            Severity::Warning,
            None,
            "HTTP_PROXY",
            "HTTPS_PROXY is set but HTTP_PROXY is not: http:// GOPROXY entries bypass the proxy",
            Some("set HTTP_PROXY too"),
        ));
    }
    if http || https {
        let private = env.get("GONOPROXY");
        for pat in private.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let first = pat.split('/').next().unwrap_or_default();
            let host = first.trim_start_matches("*.");
            if host.contains(['*', '?', '[']) || host.is_empty() {
                continue;
            }
            let probe = if first.starts_with("*.") { format!("any.{host}") } else { host.to_string() };
            let Ok(url) = Url::parse(&format!("https://{probe}/")) else { continue };
            if cfg.use_proxy(&url) && matches!(cfg.proxy_for(&url), ProxyChoice::Proxy(_)) {
                checks.push(check(
                    "proxy-variables",
                    Severity::Warning,
                    None,
                    "NO_PROXY",
                    format!("private host {probe} (from GOPRIVATE/GONOPROXY {pat:?}) is not in NO_PROXY: direct fetches of private modules go through the proxy"),
                    Some("add the private domain to NO_PROXY (e.g. .corp.example)"),
                ));
            }
        }
    }
}

/// Tasks (threads) of a user, as RLIMIT_NPROC counts them, from /proc.
fn tasks_of(uid: u32) -> u64 {
    let Ok(rd) = fs::read_dir("/proc") else { return 0 };
    let mut n = 0;
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = fs::read_to_string(e.path().join("status")) else { continue };
        let mut real_uid = None;
        let mut threads = 1;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("Uid:") {
                real_uid = v.split_whitespace().next().and_then(|x| x.parse::<u32>().ok());
            } else if let Some(v) = line.strip_prefix("Threads:") {
                threads = v.trim().parse().unwrap_or(1);
            }
        }
        if real_uid == Some(uid) {
            n += threads;
        }
    }
    n
}

/// The smallest process limit under which go and git can be expected to work
/// (a go build starts a thread per CPU and a process per compile; git forks helpers).
const MIN_NPROC: u64 = 256;

/// The process-limit finding for `used` tasks under a soft limit (`None`: unlimited).
pub fn process_limit_check(limit: Option<u64>, used: u64, root: bool) -> Check {
    let subject = "RLIMIT_NPROC";
    match limit {
        None => check(
            "process-limit",
            Severity::Info,
            None,
            subject,
            format!("unlimited (ulimit -u); {used} tasks running"),
            None,
        ),
        Some(_) if root => check(
            "process-limit",
            Severity::Info,
            None,
            subject,
            format!("{} (ulimit -u), not enforced for root; {used} tasks running", limit.unwrap_or(0)),
            None,
        ),
        Some(l) => {
            let ratio = used as f64 / l.max(1) as f64;
            let msg = format!("{used} of {l} processes/threads (ulimit -u) in use by this user");
            if l < MIN_NPROC && ratio < 0.95 {
                return check(
                    "process-limit",
                    Severity::Warning,
                    Some(Code::GitResources),
                    subject,
                    format!("{msg}: a limit under {MIN_NPROC} is too low for go and git, which start dozens of threads and processes"),
                    Some(Code::GitResources.remediation()),
                );
            }
            if ratio >= 0.95 {
                check(
                    "process-limit",
                    Severity::Error,
                    Some(Code::GitResources),
                    subject,
                    msg,
                    Some(Code::GitResources.remediation()),
                )
            } else if ratio >= 0.8 {
                check(
                    "process-limit",
                    Severity::Warning,
                    Some(Code::GitResources),
                    subject,
                    msg,
                    Some(Code::GitResources.remediation()),
                )
            } else {
                check("process-limit", Severity::Info, None, subject, msg, None)
            }
        }
    }
}

fn process_limit(checks: &mut Vec<Check>) {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nproc);
    let uid = rustix::process::getuid();
    checks.push(process_limit_check(lim.current, tasks_of(uid.as_raw()), uid.is_root()));
}

fn toolchain(env: &GoEnv, f: &ModFile, checks: &mut Vec<Check>) {
    let local = gover::from_toolchain(env.get("GOVERSION"));
    if local.is_empty() {
        return;
    }
    let gotoolchain = env.get("GOTOOLCHAIN");
    let mode = gotoolchain.split('+').next().unwrap_or_default();
    let go_line = f.go.clone().unwrap_or_default();
    let tc_line = f.toolchain.clone().unwrap_or_default();
    let tc = gover::from_toolchain(&tc_line);
    if !go_line.is_empty() && gover::compare(&go_line, local) == std::cmp::Ordering::Greater {
        let (sev, what) = if mode == "local" {
            (Severity::Error, "go refuses to build (GOTOOLCHAIN=local)".to_string())
        } else {
            (Severity::Warning, format!("go will download and switch toolchains (GOTOOLCHAIN={gotoolchain})"))
        };
        checks.push(check(
            "toolchain",
            sev,
            Some(Code::ToolchainMismatch),
            "go.mod go line",
            format!("go.mod requires go >= {go_line}, the local go is {local}: {what}"),
            Some(Code::ToolchainMismatch.remediation()),
        ));
    } else if !tc.is_empty() && gover::compare(tc, local) == std::cmp::Ordering::Greater {
        let (sev, what) = if mode == "local" {
            (
                Severity::Warning,
                format!("GOTOOLCHAIN=local builds with {local} anyway: not the toolchain the module asks for"),
            )
        } else {
            (Severity::Warning, format!("go will download and switch to {tc_line} (GOTOOLCHAIN={gotoolchain})"))
        };
        checks.push(check(
            "toolchain",
            sev,
            Some(Code::ToolchainMismatch),
            "go.mod toolchain line",
            format!("go.mod asks for {tc_line}, the local go is {local}: {what}"),
            Some(Code::ToolchainMismatch.remediation()),
        ));
    } else {
        checks.push(check(
            "toolchain",
            Severity::Info,
            None,
            "go.mod",
            format!(
                "the local go ({local}) satisfies go {go_line}{}",
                if tc_line.is_empty() { String::new() } else { format!(" and {tc_line}") }
            ),
            None,
        ));
    }
}

fn settings(env: &GoEnv, checks: &mut Vec<Check>) {
    match env.get("GOSUMDB") {
        "off" => checks.push(check(
            "gosumdb",
            Severity::Warning,
            None,
            "GOSUMDB",
            "GOSUMDB=off: modules missing from go.sum are not checked against the checksum database",
            Some("unset GOSUMDB (or name a database) and list private modules in GOPRIVATE/GONOSUMDB instead"),
        )),
        "" => {}
        v if !v.contains('+') => checks.push(check(
            "gosumdb",
            Severity::Info,
            None,
            "GOSUMDB",
            format!("GOSUMDB={v} names a database whose key is built into go; reprove needs GOSUMDB=name+key to check go.sum gaps itself"),
            None,
        )),
        _ => {}
    }
    let insecure = env.get("GOINSECURE");
    if !insecure.is_empty() {
        checks.push(check(
            "goinsecure",
            Severity::Warning,
            None,
            "GOINSECURE",
            format!("GOINSECURE={insecure}: direct fetches of these modules skip TLS verification"),
            Some("serve private modules over HTTPS with a trusted certificate (SSL_CERT_FILE) instead"),
        ));
    }
    let flags = env.get("GOFLAGS");
    if !flags.is_empty() {
        checks.push(check(
            "goflags",
            Severity::Warning,
            None,
            "GOFLAGS",
            format!(
                "GOFLAGS={flags} changes every go command (from {}): builds elsewhere will differ",
                env.origin("GOFLAGS").code()
            ),
            Some("pass flags on the command line of the build instead"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_limit_levels() {
        assert_eq!(process_limit_check(Some(1000), 500, false).severity, Severity::Info);
        assert_eq!(process_limit_check(Some(1000), 850, false).severity, Severity::Warning);
        assert_eq!(process_limit_check(Some(1000), 990, false).severity, Severity::Error);
        assert_eq!(process_limit_check(Some(100), 2, false).code, Some(Code::GitResources));
        assert_eq!(process_limit_check(Some(100), 99, true).severity, Severity::Info);
        assert_eq!(process_limit_check(None, 99, false).severity, Severity::Info);
    }
}
