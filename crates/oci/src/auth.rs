//! Registry credentials: from flags, or from the Docker/Podman auth files.
//!
//! Lookup order (the first file that exists is used, as Podman and skopeo do):
//! an explicit auth file, `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. Entries are the
//! `auths` map; keys may be `host`, `host/namespace` (the longest match wins) or
//! a URL. In an entry, as Docker reads it:
//! - `registrytoken`: a bearer token sent to the registry as it is;
//! - `identitytoken`: an OAuth2 refresh token, exchanged at the registry's
//!   token server (`grant_type=refresh_token`) for an access token per
//!   repository and operation (see `registry::exchange_identity_token`);
//! - `auth` (base64 `user:password`) or `username` and `password`: basic
//!   credentials, sent to the token server of a registry that uses bearer
//!   tokens, or to the registry itself if it uses basic auth.
//!
//! Credential helpers (`credsStore`, `credHelpers`) are not run.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

use super::{ImageRef, ToolchainError};

/// A user name and password (or token) for a registry. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
    /// Where the caller took them from, for messages (the CLI: `--username`).
    pub origin: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The auth files to look at, in order.
fn candidate_files(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        files.push(p);
    }
    if let Some(dir) = env("XDG_RUNTIME_DIR") {
        files.push(dir.join("containers/auth.json"));
    }
    match env("DOCKER_CONFIG") {
        Some(dir) => files.push(dir.join("config.json")),
        None => {
            if let Some(home) = env("HOME") {
                files.push(home.join(".docker/config.json"));
            }
        }
    }
    files
}

/// Normalizes an `auths` key: drops a scheme and a trailing `/v1/`-style path for Docker Hub keys.
fn normalize_key(key: &str) -> String {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k.strip_suffix("/v1").or_else(|| k.strip_suffix("/v2")).unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => k.to_string(),
    }
}

/// How reprove authenticates to one registry.
#[derive(Clone)]
pub(crate) enum Auth {
    /// Handed to oci-client as it is: anonymous, basic (also sent to a token
    /// server), or a bearer token for the registry.
    Client(RegistryAuth),
    /// An OAuth2 refresh token (`identitytoken`), exchanged for access tokens.
    IdentityToken(String),
}

/// The credentials chosen for a registry, and where they came from (for error messages).
#[derive(Clone)]
pub(crate) struct ResolvedAuth {
    pub(crate) auth: Auth,
    /// `anonymous`, `user "u" from --username`, `identitytoken from auth file F`…
    pub(crate) origin: String,
}

impl ResolvedAuth {
    fn new(auth: Auth, origin: String) -> ResolvedAuth {
        ResolvedAuth { auth, origin }
    }

    fn anonymous() -> ResolvedAuth {
        ResolvedAuth::new(Auth::Client(RegistryAuth::Anonymous), "anonymous access (no credentials for it)".to_string())
    }
}

/// The credentials for `image`: `explicit` if given, else the auth files, else anonymous.
pub(crate) fn registry_auth(
    image: &ImageRef,
    explicit: Option<&Credentials>,
    auth_file: Option<&Path>,
) -> Result<ResolvedAuth, ToolchainError> {
    if let Some(c) = explicit {
        return Ok(ResolvedAuth::new(
            Auth::Client(RegistryAuth::Basic(c.username.clone(), c.password.clone())),
            format!("user {:?} from {}", c.username, c.origin),
        ));
    }
    for file in candidate_files(auth_file) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && auth_file.is_none() => continue,
            Err(e) => return Err(ToolchainError::io("read auth file", &file, e)),
        };
        return from_auth_file(&file, &text, image);
    }
    Ok(ResolvedAuth::anonymous())
}

fn from_auth_file(file: &Path, text: &str, image: &ImageRef) -> Result<ResolvedAuth, ToolchainError> {
    let bad = |reason: String| ToolchainError::AuthFile { path: file.to_path_buf(), reason };
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(ResolvedAuth::anonymous());
    };
    let full = format!("{}/{}", image.registry(), image.repository());
    let best = auths
        .iter()
        .map(|(k, v)| (normalize_key(k), v))
        .filter(|(k, _)| *k == image.registry() || (full.starts_with(k.as_str()) && full[k.len()..].starts_with('/')))
        .max_by_key(|(k, _)| k.len());
    let Some((key, entry)) = best else {
        return Ok(ResolvedAuth::anonymous());
    };
    let from = |what: String| format!("{what} of entry {key:?} in auth file {}", file.display());
    let string = |name: &str| entry.get(name).and_then(|t| t.as_str()).filter(|t| !t.is_empty());
    if let Some(token) = string("registrytoken") {
        return Ok(ResolvedAuth::new(
            Auth::Client(RegistryAuth::Bearer(token.to_string())),
            from("registrytoken".into()),
        ));
    }
    if let Some(token) = string("identitytoken") {
        return Ok(ResolvedAuth::new(Auth::IdentityToken(token.to_string()), from("identitytoken".into())));
    }
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("entry {key:?}: auth is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad(format!("entry {key:?}: auth is not UTF-8")))?;
        let (user, pass) =
            decoded.split_once(':').ok_or_else(|| bad(format!("entry {key:?}: auth is not user:password")))?;
        return Ok(ResolvedAuth::new(
            Auth::Client(RegistryAuth::Basic(user.to_string(), pass.to_string())),
            from(format!("user {user:?}")),
        ));
    }
    if let (Some(u), Some(p)) =
        (entry.get("username").and_then(|u| u.as_str()), entry.get("password").and_then(|p| p.as_str()))
    {
        return Ok(ResolvedAuth::new(
            Auth::Client(RegistryAuth::Basic(u.to_string(), p.to_string())),
            from(format!("user {u:?}")),
        ));
    }
    Ok(ResolvedAuth::anonymous())
}

/// A `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub(crate) realm: String,
    pub(crate) service: Option<String>,
}

/// Parses the Bearer challenge of a `WWW-Authenticate` value (RFC 7235
/// auth-params, quoted strings with `\` escapes); `None` for other schemes
/// or a challenge without a realm.
pub(crate) fn parse_bearer_challenge(value: &str) -> Option<BearerChallenge> {
    let v = value.trim_start();
    let (scheme, rest) = v.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_ascii_whitespace() || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        chars.next_if_eq(&'=')?;
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_ascii_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.push((name.to_ascii_lowercase(), value));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some(BearerChallenge { realm: get("realm").filter(|r| !r.is_empty())?, service: get("service") })
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn basic(a: ResolvedAuth) -> Option<(String, String)> {
        match a.auth {
            Auth::Client(RegistryAuth::Basic(u, p)) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn docker_config_entries() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let other = base64::engine::general_purpose::STANDARD.encode("bob:x");
        let text = format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{b64}"}}, "127.0.0.1:5000/team": {{"auth": "{other}"}},
                 "https://index.docker.io/v1/": {{"auth": "{other}"}}}}}}"#
        );
        let p = Path::new("config.json");
        let got = |r: &str| basic(from_auth_file(p, &text, &image(r)).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(got("127.0.0.1:5000/go:1"), Some(("alice".into(), "s3cret".into())));
        assert_eq!(got("127.0.0.1:5000/team/go:1"), Some(("bob".into(), "x".into())));
        assert_eq!(got("golang:1"), Some(("bob".into(), "x".into())));
        assert_eq!(got("127.0.0.1:5001/go"), None);
        assert!(from_auth_file(p, "{", &image("a")).is_err());
        let redacted =
            format!("{:?}", Credentials { username: "u".into(), password: "pw".into(), origin: "--username".into() });
        assert!(!redacted.contains("pw"));
    }

    #[test]
    fn tokens_in_auth_files() {
        let text = r#"{"auths": {"127.0.0.1:5000": {"auth": "PHRva2VuPjo=", "identitytoken": "refresh-me"},
                       "127.0.0.1:5001": {"registrytoken": "use-me"}}}"#;
        let p = Path::new("config.json");
        let got = |r: &str| from_auth_file(p, text, &image(r)).unwrap_or_else(|e| panic!("{e}"));
        let id = got("127.0.0.1:5000/go:1");
        assert!(matches!(&id.auth, Auth::IdentityToken(t) if t == "refresh-me"));
        assert!(id.origin.contains("identitytoken") && id.origin.contains("config.json"), "{}", id.origin);
        assert!(matches!(got("127.0.0.1:5001/go").auth, Auth::Client(RegistryAuth::Bearer(t)) if t == "use-me"));
    }

    #[test]
    fn bearer_challenges() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg, 1",scope="repository:a:pull""#,
        );
        assert_eq!(
            c,
            Some(BearerChallenge { realm: "http://127.0.0.1:1/token".into(), service: Some("reg, 1".into()) })
        );
        let c = parse_bearer_challenge(r#"bearer  realm = "r\"q" , error="invalid_token""#);
        assert_eq!(c, Some(BearerChallenge { realm: "r\"q".into(), service: None }));
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_bearer_challenge("Bearer realm"), None);
        assert_eq!(parse_bearer_challenge(""), None);
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("scope", "repository:a/b:pull,push"), ("x", "a b&c=é")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&x=a+b%26c%3D%C3%A9"
        );
    }
}
