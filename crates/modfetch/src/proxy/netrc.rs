//! Credentials from a `.netrc` file, read and applied as the go command does
//! (`cmd/go/internal/auth`, GOAUTH's default `netrc` method).
//!
//! The file is `$NETRC`, else `$HOME/.netrc`. Entries are `machine`, `login`,
//! `password` tokens (in any order, across lines); a `default` entry ends the
//! file and is ignored, as Go ignores it; `macdef` bodies are skipped. The
//! first entry for a machine wins. A credential applies to an `https://` URL
//! whose `host[:port]/path` starts with the machine name at a `/` boundary.
//!
//! What it is not: GOAUTH's `git` and command methods, which run programs;
//! with GOAUTH set to them reprove uses no stored credentials and says so in
//! `reprove doctor`. Credentials never go to `http://` URLs (Go sends netrc
//! credentials over HTTPS only).

use std::fmt;
use std::path::PathBuf;

/// A login and password. `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The machine name (a host, `host:port`, or a URL prefix without scheme).
    pub machine: String,
    /// The login.
    pub login: String,
    password: String,
}

impl Credential {
    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Go's `parseNetrc`.
pub fn parse(data: &str) -> Vec<Credential> {
    let mut out = Vec::new();
    let (mut machine, mut login, mut password) = (String::new(), String::new(), String::new());
    let mut in_macro = false;
    for line in data.split('\n') {
        if in_macro {
            if line.is_empty() {
                in_macro = false;
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i + 1 < f.len() {
            match f[i] {
                "machine" => {
                    machine = f[i + 1].to_string();
                    login.clear();
                    password.clear();
                }
                "login" => login = f[i + 1].to_string(),
                "password" => password = f[i + 1].to_string(),
                "macdef" => in_macro = true,
                _ => {}
            }
            if !machine.is_empty() && !login.is_empty() && !password.is_empty() {
                out.push(Credential {
                    machine: std::mem::take(&mut machine),
                    login: std::mem::take(&mut login),
                    password: std::mem::take(&mut password),
                });
            }
            i += 2;
        }
        if i < f.len() && f[i] == "default" {
            break;
        }
    }
    out
}

/// Go's `netrcPath`: `$NETRC`, else `$HOME/.netrc`.
pub fn path(lookup: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = lookup("NETRC").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    lookup("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".netrc"))
}

/// The credential for an `https://` URL (`host[:port]/path`), as Go's
/// `loadCredential`: the longest machine prefix at a `/` boundary; the
/// first entry of a machine wins.
pub fn lookup<'a>(creds: &'a [Credential], url: &reqwest::Url) -> Option<&'a Credential> {
    if url.scheme() != "https" {
        return None;
    }
    let host = url.host_str()?;
    let mut prefix = match url.port() {
        Some(p) => format!("{host}:{p}{}", url.path()),
        None => format!("{host}{}", url.path()),
    };
    while prefix.ends_with('/') {
        prefix.pop();
    }
    loop {
        if let Some(c) = creds.iter().find(|c| c.machine.trim_end_matches('/') == prefix) {
            return Some(c);
        }
        let i = prefix.rfind('/')?;
        prefix.truncate(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_go() {
        let creds = parse(
            "machine a.example login u1 password p1\nmachine b.example\n login u2\n password p2\n\
             macdef init\nmachine evil login x password y\n\nmachine a.example login u3 password p3\n\
             default login d password d\nmachine after login z password z\n",
        );
        let names: Vec<(&str, &str)> = creds.iter().map(|c| (c.machine.as_str(), c.login.as_str())).collect();
        // As in Go, `default` only ends the file when it is the last token of
        // its line, so the entry after it still counts.
        assert_eq!(names, vec![("a.example", "u1"), ("b.example", "u2"), ("a.example", "u3"), ("after", "z")]);
        assert!(!format!("{:?}", creds[0]).contains("p1"));
        let url = reqwest::Url::parse("https://a.example/mod/@v/list").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lookup(&creds, &url).map(|c| c.login.as_str()), Some("u1"));
        let http = reqwest::Url::parse("http://a.example/mod").unwrap_or_else(|e| panic!("{e}"));
        assert!(lookup(&creds, &http).is_none());
        let port = reqwest::Url::parse("https://a.example:8443/x").unwrap_or_else(|e| panic!("{e}"));
        assert!(lookup(&creds, &port).is_none());
    }
}
