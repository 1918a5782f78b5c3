//! Registry credentials: from flags, or from the Docker/Podman auth files.
//!
//! Lookup order (the first file that exists is used, as Podman and skopeo do):
//! an explicit auth file, `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. Entries are the
//! `auths` map (`auth` = base64 `user:password`, or `identitytoken`/`registrytoken`
//! as a bearer token); keys may be `host`, `host/namespace` (the longest match
//! wins) or a URL. Credential helpers (`credsStore`, `credHelpers`) are not run.

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

/// The credentials for `image`: `explicit` if given, else the auth files, else anonymous.
pub(crate) fn registry_auth(
    image: &ImageRef,
    explicit: Option<&Credentials>,
    auth_file: Option<&Path>,
) -> Result<RegistryAuth, ToolchainError> {
    if let Some(c) = explicit {
        return Ok(RegistryAuth::Basic(c.username.clone(), c.password.clone()));
    }
    for file in candidate_files(auth_file) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && auth_file.is_none() => continue,
            Err(e) => return Err(ToolchainError::io("read auth file", &file, e)),
        };
        return from_auth_file(&file, &text, image);
    }
    Ok(RegistryAuth::Anonymous)
}

fn from_auth_file(file: &Path, text: &str, image: &ImageRef) -> Result<RegistryAuth, ToolchainError> {
    let bad = |reason: String| ToolchainError::AuthFile { path: file.to_path_buf(), reason };
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let full = format!("{}/{}", image.registry(), image.repository());
    let best = auths
        .iter()
        .map(|(k, v)| (normalize_key(k), v))
        .filter(|(k, _)| *k == image.registry() || (full.starts_with(k.as_str()) && full[k.len()..].starts_with('/')))
        .max_by_key(|(k, _)| k.len());
    let Some((key, entry)) = best else {
        return Ok(RegistryAuth::Anonymous);
    };
    for token_key in ["registrytoken", "identitytoken"] {
        if let Some(token) = entry.get(token_key).and_then(|t| t.as_str()).filter(|t| !t.is_empty()) {
            return Ok(RegistryAuth::Bearer(token.to_string()));
        }
    }
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("entry {key:?}: auth is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad(format!("entry {key:?}: auth is not UTF-8")))?;
        let (user, pass) =
            decoded.split_once(':').ok_or_else(|| bad(format!("entry {key:?}: auth is not user:password")))?;
        return Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()));
    }
    if let (Some(u), Some(p)) =
        (entry.get("username").and_then(|u| u.as_str()), entry.get("password").and_then(|p| p.as_str()))
    {
        return Ok(RegistryAuth::Basic(u.to_string(), p.to_string()));
    }
    Ok(RegistryAuth::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn basic(a: RegistryAuth) -> Option<(String, String)> {
        match a {
            RegistryAuth::Basic(u, p) => Some((u, p)),
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
        let redacted = format!("{:?}", Credentials { username: "u".into(), password: "pw".into() });
        assert!(!redacted.contains("pw"));
    }
}
