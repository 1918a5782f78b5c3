//! Which HTTP proxy a request goes through, exactly as Go's
//! `golang.org/x/net/http/httpproxy` (what `net/http.ProxyFromEnvironment`,
//! and so the go command, uses).
//!
//! `HTTPS_PROXY` (else `https_proxy`) for `https://` URLs, `HTTP_PROXY` (else
//! `http_proxy`) for `http://` URLs — never one for the other; a value without
//! a scheme means `http://`. No proxy for `localhost` and loopback addresses,
//! nor for hosts matched by `NO_PROXY` (else `no_proxy`): `*`; IP addresses
//! and CIDR ranges; `host[:port]`, where `example.com` matches the host and its
//! subdomains and `.example.com` or `*.example.com` only subdomains. With
//! `REQUEST_METHOD` set (a CGI environment), HTTP_PROXY is refused.
//!
//! What it is not: a proxy client. It only answers "which proxy, if any"; the
//! HTTP client connects. Host names are compared in ASCII; internationalized
//! names are not converted to punycode here (the URL parser already does).

use std::net::IpAddr;

use reqwest::Url;

/// The proxy configuration from the environment.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    http: Option<Url>,
    https: Option<Url>,
    /// The raw values, for reports.
    raw: Raw,
    cgi: bool,
    ip_matchers: Vec<IpMatcher>,
    domain_matchers: Vec<DomainMatcher>,
    all: bool,
}

#[derive(Debug, Clone, Default)]
struct Raw {
    http: String,
    https: String,
    no_proxy: String,
}

#[derive(Debug, Clone)]
enum IpMatcher {
    Cidr(IpAddr, u8),
    Ip(IpAddr, String),
}

#[derive(Debug, Clone)]
struct DomainMatcher {
    host: String,
    port: String,
    match_host: bool,
}

/// What [`ProxyConfig::proxy_for`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Connect directly.
    Direct,
    /// Go through this proxy.
    Proxy(Url),
    /// Refused: HTTP_PROXY in a CGI environment (Go's error).
    Refused(String),
}

fn parse_proxy(s: &str) -> Option<Url> {
    if s.is_empty() {
        return None;
    }
    match Url::parse(s) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Some(u),
        _ => Url::parse(&format!("http://{s}")).ok(),
    }
}

/// Go's `net.SplitHostPort` for the forms NO_PROXY entries take.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((&s[..end + 2], port));
    }
    let i = s.rfind(':')?;
    if s[..i].contains(':') {
        return None; // an IPv6 address without brackets has no port
    }
    Some((&s[..i], &s[i + 1..]))
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max && !s.starts_with('[')).then_some((ip, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let (n, i, len) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(i)) << 96, 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        (IpAddr::V4(n), IpAddr::V6(i)) => match i.to_ipv4_mapped() {
            Some(i4) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(i4)) << 96, 32),
            None => return false,
        },
        (IpAddr::V6(_), IpAddr::V4(_)) => return false,
    };
    let _ = len;
    if bits == 0 {
        return true;
    }
    let mask = !0u128 << (128 - u32::from(bits));
    n & mask == i & mask
}

fn ip_equal(a: IpAddr, b: IpAddr) -> bool {
    let norm = |x: IpAddr| match x {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(x, IpAddr::V4),
        v4 => v4,
    };
    norm(a) == norm(b)
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

impl ProxyConfig {
    /// Go's `httpproxy.FromEnvironment`, reading through `lookup`.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> ProxyConfig {
        let any = |names: [&str; 2]| names.iter().find_map(|n| lookup(n).filter(|v| !v.is_empty())).unwrap_or_default();
        let raw = Raw {
            http: any(["HTTP_PROXY", "http_proxy"]),
            https: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
        };
        let cgi = lookup("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        let mut c =
            ProxyConfig { http: parse_proxy(&raw.http), https: parse_proxy(&raw.https), cgi, ..Default::default() };
        for p in raw.no_proxy.split(',') {
            let p = p.trim().to_lowercase();
            if p.is_empty() {
                continue;
            }
            if p == "*" {
                c.all = true;
                break;
            }
            if let Some((ip, bits)) = parse_cidr(&p) {
                c.ip_matchers.push(IpMatcher::Cidr(ip, bits));
                continue;
            }
            let (phost, pport) = match split_host_port(&p) {
                Some((h, port)) => {
                    if h.is_empty() {
                        continue;
                    }
                    (h.trim_start_matches('[').trim_end_matches(']').to_string(), port.to_string())
                }
                None => (p.clone(), String::new()),
            };
            if let Some(ip) = parse_ip(&phost) {
                c.ip_matchers.push(IpMatcher::Ip(ip, pport));
                continue;
            }
            if phost.is_empty() {
                continue;
            }
            let mut host = phost.strip_prefix('*').filter(|h| h.starts_with('.')).unwrap_or(&phost).to_string();
            let mut match_host = false;
            if !host.starts_with('.') {
                match_host = true;
                host = format!(".{host}");
            }
            c.domain_matchers.push(DomainMatcher { host, port: pport, match_host });
        }
        c.raw = raw;
        c
    }

    /// The raw HTTP_PROXY value in effect (empty if none).
    pub fn http_proxy(&self) -> &str {
        &self.raw.http
    }

    /// The raw HTTPS_PROXY value in effect (empty if none).
    pub fn https_proxy(&self) -> &str {
        &self.raw.https
    }

    /// The raw NO_PROXY value in effect (empty if none).
    pub fn no_proxy(&self) -> &str {
        &self.raw.no_proxy
    }

    /// Go's `useProxy(canonicalAddr(url))`: false when NO_PROXY, localhost or loopback exempts the URL's host.
    pub fn use_proxy(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return true };
        let port = url.port_or_known_default().map(|p| p.to_string()).unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']').to_lowercase();
        if host == "localhost" {
            return false;
        }
        let ip = parse_ip(&host);
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        if self.all {
            return false;
        }
        if let Some(ip) = ip {
            for m in &self.ip_matchers {
                let hit = match m {
                    IpMatcher::Cidr(net, bits) => cidr_contains(*net, *bits, ip),
                    IpMatcher::Ip(mip, mport) => ip_equal(*mip, ip) && (mport.is_empty() || *mport == port),
                };
                if hit {
                    return false;
                }
            }
            return true;
        }
        for m in &self.domain_matchers {
            if (host.ends_with(&m.host) || (m.match_host && host == m.host[1..]))
                && (m.port.is_empty() || m.port == port)
            {
                return false;
            }
        }
        true
    }

    /// Go's `proxyForURL`: the proxy for a request to `url`.
    pub fn proxy_for(&self, url: &Url) -> ProxyChoice {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => {
                if self.http.is_some() && self.cgi {
                    return ProxyChoice::Refused(
                        "refusing to use HTTP_PROXY value in CGI environment; see golang.org/s/cgihttpproxy".into(),
                    );
                }
                self.http.as_ref()
            }
            _ => None,
        };
        match proxy {
            Some(p) if self.use_proxy(url) => ProxyChoice::Proxy(p.clone()),
            _ => ProxyChoice::Direct,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &'static [(&'static str, &'static str)]) -> ProxyConfig {
        ProxyConfig::from_lookup(&move |k: &str| pairs.iter().find(|(pk, _)| *pk == k).map(|(_, v)| v.to_string()))
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn scheme_and_exemptions() {
        let c =
            cfg(&[("HTTP_PROXY", "127.0.0.1:3128"), ("no_proxy", "corp.example,.only.sub,10.0.0.0/8,1.2.3.4:8080")]);
        assert_eq!(c.proxy_for(&url("http://a.example/x")), ProxyChoice::Proxy(url("http://127.0.0.1:3128")));
        assert_eq!(c.proxy_for(&url("https://a.example/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://localhost:9/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://127.0.0.2/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://corp.example/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://git.corp.example/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://only.sub/x")), ProxyChoice::Proxy(url("http://127.0.0.1:3128")));
        assert_eq!(c.proxy_for(&url("http://a.only.sub/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://10.1.2.3/x")), ProxyChoice::Direct);
        assert_eq!(c.proxy_for(&url("http://1.2.3.4/x")), ProxyChoice::Proxy(url("http://127.0.0.1:3128")));
        assert_eq!(c.proxy_for(&url("http://1.2.3.4:8080/x")), ProxyChoice::Direct);
    }
}
