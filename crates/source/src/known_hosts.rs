//! OpenSSH `known_hosts` files, read the way `ssh` reads them for one host key.
//!
//! A line is `[@marker] patterns keytype base64-key [comment]`. Patterns are
//! comma-separated host names with `*` and `?` wildcards, `!` negations and
//! `[host]:port` for ports other than 22, or one hashed name
//! (`|1|base64 salt|base64 HMAC-SHA1 of the name`, as `ssh-keygen -H` writes).
//! `@revoked` lines refuse a key; `@cert-authority` lines are skipped (host
//! certificates are not supported), as are lines that do not parse.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::Digest as _;

/// What the known_hosts files say about a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for the host holds this key.
    Known,
    /// A line for the host holds another key of the same type: `file:line` and its fingerprint.
    Mismatch { at: String, expected: String },
    /// An `@revoked` line holds this key: `file:line`.
    Revoked { at: String },
    /// No line for the host holds a key of this type; the types the lines for
    /// the host do hold, if any.
    Unknown { other_types: Vec<String> },
}

/// The name `ssh` looks up: `host` on port 22, else `[host]:port`.
pub(crate) fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:` and the unpadded base64 of the key blob's SHA-256, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob)))
}

/// The key type named inside an SSH public key blob (its first string).
pub(crate) fn key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    std::str::from_utf8(name).ok().map(str::to_string)
}

/// Checks `blob` (the server's host key) for `host`:`port` against `files` in
/// order (a file that does not exist holds nothing). A revoked key wins over
/// everything, then a matching line, then a mismatching one.
pub(crate) fn check(files: &[PathBuf], host: &str, port: u16, blob: &[u8]) -> Result<Verdict, std::io::Error> {
    let name = lookup_name(host, port);
    let offered = key_type(blob).unwrap_or_default();
    let (mut known, mut mismatch, mut other_types) = (false, None, Vec::new());
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for (i, line) in text.lines().enumerate() {
            let Some(entry) = Entry::parse(line) else { continue };
            if !entry.matches(&name) {
                continue;
            }
            let at = || format!("{}:{}", file.display(), i + 1);
            match entry.marker {
                Marker::Revoked if entry.key == blob => return Ok(Verdict::Revoked { at: at() }),
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if entry.key == blob => known = true,
                Marker::None if entry.key_type == offered => {
                    mismatch.get_or_insert_with(|| (at(), fingerprint(&entry.key)));
                }
                Marker::None => {
                    if !other_types.contains(&entry.key_type) {
                        other_types.push(entry.key_type.clone());
                    }
                }
            }
        }
    }
    Ok(if known {
        Verdict::Known
    } else if let Some((at, expected)) = mismatch {
        Verdict::Mismatch { at, expected }
    } else {
        Verdict::Unknown { other_types }
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Marker,
    patterns: &'a str,
    key_type: String,
    key: Vec<u8>,
}

impl<'a> Entry<'a> {
    fn parse(line: &'a str) -> Option<Entry<'a>> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next()?;
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            m if m.starts_with('@') => return None,
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next()?;
        }
        let key_type = fields.next()?.to_string();
        let key = base64::engine::general_purpose::STANDARD.decode(fields.next()?).ok()?;
        // The blob names its own type; a line whose type field disagrees is not trusted.
        if self::key_type(&key)? != key_type {
            return None;
        }
        Some(Entry { marker, patterns: first, key_type, key })
    }

    /// Whether the line applies to `name` (`host` or `[host]:port`).
    fn matches(&self, name: &str) -> bool {
        if let Some(hashed) = self.patterns.strip_prefix("|1|") {
            return hashed_matches(hashed, name);
        }
        let mut matched = false;
        for pattern in self.patterns.split(',') {
            let (negated, pattern) = match pattern.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, pattern),
            };
            if glob(pattern.to_ascii_lowercase().as_bytes(), name.to_ascii_lowercase().as_bytes()) {
                if negated {
                    return false;
                }
                matched = true;
            }
        }
        matched
    }
}

/// `salt|hash` (both base64): HMAC-SHA1 keyed by the salt over the name.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else { return false };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// OpenSSH's `match_pattern`: `*` any run, `?` any one byte.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The files read when nothing else is said: `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`.
pub(crate) fn default_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        files.push(Path::new(&home).join(".ssh/known_hosts"));
    }
    files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (kind.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn line(patterns: &str, key: &[u8]) -> String {
        format!(
            "{patterns} {} {}\n",
            key_type(key).unwrap_or_default(),
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    }

    #[test]
    fn patterns_ports_negations_hashes_and_markers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("known_hosts");
        let (a, b, c) = (blob("ssh-ed25519", b"a"), blob("ssh-ed25519", b"b"), blob("ecdsa-sha2-nistp256", b"c"));
        // ssh-keygen -H's form of "[127.0.0.1]:2222", with this salt.
        let salt = b"0123456789abcdefghij";
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
        let tag = ring::hmac::sign(&key, b"[127.0.0.1]:2222");
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{}", b64.encode(salt), b64.encode(tag.as_ref()));
        let text = [
            "# comment\n".to_string(),
            line("git.example.invalid,*.corp.invalid,!bad.corp.invalid", &a),
            line("[git.example.invalid]:2200", &b),
            line(&hashed, &a),
            format!("@revoked {}", line("*", &blob("ssh-ed25519", b"revoked"))),
            line("other.invalid", &c),
            "garbage line".into(),
        ]
        .concat();
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let files = [dir.path().join("missing"), file.clone()];
        let check =
            |host: &str, port: u16, key: &[u8]| check(&files, host, port, key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(check("git.example.invalid", 22, &a), Verdict::Known);
        assert_eq!(check("GIT.example.invalid", 22, &a), Verdict::Known);
        assert_eq!(check("x.corp.invalid", 22, &a), Verdict::Known);
        assert_eq!(check("bad.corp.invalid", 22, &a), Verdict::Unknown { other_types: vec![] });
        assert_eq!(check("git.example.invalid", 2200, &b), Verdict::Known);
        assert_eq!(
            check("git.example.invalid", 2200, &a),
            Verdict::Mismatch { at: format!("{}:3", file.display()), expected: fingerprint(&b) }
        );
        assert_eq!(check("127.0.0.1", 2222, &a), Verdict::Known);
        assert!(matches!(check("127.0.0.1", 2222, &b), Verdict::Mismatch { .. }));
        assert!(matches!(check("127.0.0.1", 22, &a), Verdict::Unknown { .. }));
        assert_eq!(
            check("other.invalid", 22, &a),
            Verdict::Unknown { other_types: vec!["ecdsa-sha2-nistp256".into()] }
        );
        assert_eq!(
            check("anything.invalid", 22, &blob("ssh-ed25519", b"revoked")),
            Verdict::Revoked { at: format!("{}:5", file.display()) }
        );
    }

    #[test]
    fn fingerprints_are_ssh_keygens() {
        // ssh-keygen -lf of this ed25519 public key prints this fingerprint.
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAICbaW6jZ91Z8imv/fC/Csrlwc1og5T8FX/AtA0fMwXvm";
        let blob = base64::engine::general_purpose::STANDARD.decode(key).unwrap_or_default();
        assert_eq!(key_type(&blob).as_deref(), Some("ssh-ed25519"));
        assert_eq!(fingerprint(&blob), "SHA256:LGX3bhTOtQoKPz0rNStApPHyiaWmJOzmssjtbQPhiwE");
    }
}
