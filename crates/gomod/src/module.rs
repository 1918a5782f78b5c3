//! Module paths and versions: validity checks, case escaping and
//! pseudo-versions, exactly as `golang.org/x/mod/module`.
//!
//! Module paths in the module cache and on a GOPROXY are *escaped*: every
//! upper-case letter becomes `!` followed by its lower-case form, so that
//! case-insensitive file systems cannot confuse `github.com/Azure` with
//! `github.com/azure`. Error messages are Go's, word for word.

use std::fmt;

use super::semver;

/// A module path and version (Go's `module.Version`). An empty version
/// means a main module or a directory replacement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleVersion {
    /// The module path, e.g. `github.com/gin-gonic/gin`.
    pub path: String,
    /// The version, e.g. `v1.9.1`; empty for a main module or a local directory.
    pub version: String,
}

impl ModuleVersion {
    /// A module version from its parts.
    pub fn new(path: impl Into<String>, version: impl Into<String>) -> Self {
        ModuleVersion { path: path.into(), version: version.into() }
    }
}

impl fmt::Display for ModuleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(&self.path)
        } else {
            write!(f, "{}@{}", self.path, self.version)
        }
    }
}

/// What kind of path a check was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A module path (`CheckPath`).
    Module,
    /// An import path (`CheckImportPath`).
    Import,
    /// A file path inside a module (`CheckFilePath`).
    File,
}

impl PathKind {
    fn noun(self) -> &'static str {
        match self {
            PathKind::Module => "module",
            PathKind::Import => "import",
            PathKind::File => "file",
        }
    }
}

/// A path or version Go would refuse, with Go's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// `malformed module path "x": reason` and the import and file variants.
    #[error("malformed {} path {}: {reason}", kind.noun(), go_quote(path))]
    InvalidPath {
        /// Which check failed.
        kind: PathKind,
        /// The path checked.
        path: String,
        /// Go's reason, e.g. `missing dot in first path element`.
        reason: String,
    },
    /// A version that cannot be escaped or is not valid for its path.
    #[error("{} {} invalid: {reason}", if *pseudo { "pseudo-version" } else { "version" }, go_quote(version))]
    InvalidVersion {
        /// The version.
        version: String,
        /// Whether it was checked as a pseudo-version.
        pseudo: bool,
        /// Go's reason.
        reason: String,
    },
    /// An escaped path or version that does not unescape.
    #[error("invalid escaped {what} {}{}", go_quote(escaped), reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    InvalidEscape {
        /// `module path` or `version`.
        what: &'static str,
        /// The escaped text.
        escaped: String,
        /// Why the unescaped form is invalid, if it unescaped at all.
        reason: Option<String>,
    },
}

fn path_err(kind: PathKind, path: &str, reason: impl Into<String>) -> ModuleError {
    ModuleError::InvalidPath { kind, path: path.to_string(), reason: reason.into() }
}

fn first_path_ok(r: char) -> bool {
    r == '-' || r == '.' || r.is_ascii_digit() || r.is_ascii_lowercase()
}

fn mod_path_ok(r: char) -> bool {
    r.is_ascii() && (r == '-' || r == '.' || r == '_' || r == '~' || r.is_ascii_alphanumeric())
}

fn import_path_ok(r: char) -> bool {
    mod_path_ok(r) || r == '+'
}

fn file_name_ok(r: char) -> bool {
    if r.is_ascii() {
        r.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(r)
    } else {
        r.is_alphabetic()
    }
}

const BAD_WINDOWS_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Checks a module path as Go's `module.CheckPath`.
pub fn check_path(path: &str) -> Result<(), ModuleError> {
    let fail = |reason: String| path_err(PathKind::Module, path, reason);
    check_path_kind(path, PathKind::Module).map_err(fail)?;
    let i = path.find('/').unwrap_or(path.len());
    if i == 0 {
        return Err(fail("leading slash".into()));
    }
    if !path[..i].contains('.') {
        return Err(fail("missing dot in first path element".into()));
    }
    if path.starts_with('-') {
        return Err(fail("leading dash in first path element".into()));
    }
    if let Some(r) = path[..i].chars().find(|&r| !first_path_ok(r)) {
        return Err(fail(format!("invalid char {} in first path element", go_quote_rune(r))));
    }
    if split_path_version(path).is_none() {
        return Err(fail("invalid version".into()));
    }
    Ok(())
}

/// Checks an import path as Go's `module.CheckImportPath`.
pub fn check_import_path(path: &str) -> Result<(), ModuleError> {
    check_path_kind(path, PathKind::Import).map_err(|r| path_err(PathKind::Import, path, r))
}

/// Checks a file path inside a module as Go's `module.CheckFilePath`.
pub fn check_file_path(path: &str) -> Result<(), ModuleError> {
    check_path_kind(path, PathKind::File).map_err(|r| path_err(PathKind::File, path, r))
}

fn check_path_kind(path: &str, kind: PathKind) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty string".into());
    }
    if path.starts_with('-') && kind != PathKind::File {
        return Err("leading dash".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    for elem in path.split('/') {
        check_elem(elem, kind)?;
    }
    Ok(())
}

fn check_elem(elem: &str, kind: PathKind) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {}", go_quote(elem)));
    }
    if elem.starts_with('.') && kind == PathKind::Module {
        return Err("leading dot in path element".into());
    }
    if elem.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    let ok = match kind {
        PathKind::Module => mod_path_ok,
        PathKind::Import => import_path_ok,
        PathKind::File => file_name_ok,
    };
    if let Some(r) = elem.chars().find(|&r| !ok(r)) {
        return Err(format!("invalid char {}", go_quote_rune(r)));
    }
    let short = elem.find('.').map_or(elem, |i| &elem[..i]);
    if BAD_WINDOWS_NAMES.iter().any(|bad| bad.eq_ignore_ascii_case(short)) {
        return Err(format!("{} disallowed as path element component on Windows", go_quote(short)));
    }
    if kind == PathKind::File {
        return Ok(());
    }
    if let Some(tilde) = short.rfind('~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("trailing tilde and digits in path element".into());
        }
    }
    Ok(())
}

/// Splits a module path into its prefix and its major-version suffix
/// (`/v2`, `.v1` for gopkg.in), as Go's `module.SplitPathVersion`.
/// `None` when the suffix is malformed (`/v0`, `/v1`, `/v1.2`).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let b = path.as_bytes();
    let mut i = b.len();
    let mut dot = false;
    while i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
        if b[i - 1] == b'.' {
            dot = true;
        }
        i -= 1;
    }
    if i <= 1 || i == b.len() || b[i - 1] != b'v' || b[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = (&path[..i - 2], &path[i - 2..]);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let mut i = path.len();
    if path.ends_with("-unstable") {
        i -= "-unstable".len();
    }
    let b = path.as_bytes();
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || b[i - 1] != b'v' || b[i - 2] != b'.' {
        return None;
    }
    let (prefix, major) = (&path[..i - 2], &path[i - 2..]);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// Whether version `v` may be used with a path whose major suffix is
/// `path_major` (Go's `module.CheckPathMajor`).
pub fn check_path_major(v: &str, path_major: &str) -> Result<(), ModuleError> {
    let mut pm = path_major;
    if pm.starts_with(".v") && pm.ends_with("-unstable") {
        pm = &pm[..pm.len() - "-unstable".len()];
    }
    if v.starts_with("v0.0.0-") && pm == ".v1" {
        return Ok(());
    }
    let m = semver::major(v);
    let want = if pm.is_empty() {
        if m == "v0" || m == "v1" || semver::build(v) == "+incompatible" {
            return Ok(());
        }
        "v0 or v1"
    } else if pm.starts_with('/') || pm.starts_with('.') {
        if m == pm[1..] {
            return Ok(());
        }
        &pm[1..]
    } else {
        pm
    };
    Err(ModuleError::InvalidVersion {
        version: v.to_string(),
        pseudo: false,
        reason: format!("should be {want}, not {m}"),
    })
}

/// Why [`check`] refuses a module path and version, in Go's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The path is not a valid module path.
    #[error(transparent)]
    Path(ModuleError),
    /// The version is not a semantic version.
    #[error("{path}@{version}: invalid version: not a semantic version")]
    NotSemver {
        /// The module path.
        path: String,
        /// The version.
        version: String,
    },
    /// The version does not match the path's major version suffix.
    #[error("{path}@{version}: invalid version: {reason}")]
    Version {
        /// The module path.
        path: String,
        /// The version.
        version: String,
        /// Go's reason.
        reason: String,
    },
    /// Another refusal of the path and version together.
    #[error("module {path}: {source}")]
    Module {
        /// The module path.
        path: String,
        /// Go's refusal.
        source: ModuleError,
    },
}

/// Go's `module.Check`: a valid path and a semantic version that matches its major suffix.
pub fn check(path: &str, version: &str) -> Result<(), CheckError> {
    check_path(path).map_err(CheckError::Path)?;
    if !semver::is_valid(version) {
        return Err(CheckError::NotSemver { path: path.to_owned(), version: version.to_owned() });
    }
    let major = split_path_version(path).map_or("", |(_, m)| m);
    check_path_major(version, major).map_err(|e| match e {
        ModuleError::InvalidVersion { reason, .. } => {
            CheckError::Version { path: path.to_owned(), version: version.to_owned(), reason }
        }
        other => CheckError::Module { path: path.to_owned(), source: other },
    })
}

/// The canonical form of a module version, keeping `+incompatible` (Go's `module.CanonicalVersion`).
pub fn canonical_version(v: &str) -> String {
    let mut cv = semver::canonical(v);
    if semver::build(v) == "+incompatible" {
        cv.push_str("+incompatible");
    }
    cv
}

/// Escapes a module path for the cache and GOPROXY (Go's `module.EscapePath`).
pub fn escape_path(path: &str) -> Result<String, ModuleError> {
    check_path(path)?;
    Ok(escape_string(path))
}

/// Escapes a version for the cache and GOPROXY (Go's `module.EscapeVersion`).
pub fn escape_version(v: &str) -> Result<String, ModuleError> {
    if check_elem(v, PathKind::File).is_err() || v.contains('!') {
        return Err(ModuleError::InvalidVersion {
            version: v.to_string(),
            pseudo: false,
            reason: "disallowed version string".into(),
        });
    }
    Ok(escape_string(v))
}

fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes [`escape_path`] (Go's `module.UnescapePath`).
pub fn unescape_path(escaped: &str) -> Result<String, ModuleError> {
    let bad = |reason: Option<String>| ModuleError::InvalidEscape {
        what: "module path",
        escaped: escaped.to_string(),
        reason,
    };
    let path = unescape_string(escaped).ok_or_else(|| bad(None))?;
    check_path(&path).map_err(|e| bad(Some(e.to_string())))?;
    Ok(path)
}

/// Undoes [`escape_version`] (Go's `module.UnescapeVersion`).
pub fn unescape_version(escaped: &str) -> Result<String, ModuleError> {
    let v = unescape_string(escaped).ok_or_else(|| ModuleError::InvalidEscape {
        what: "version",
        escaped: escaped.to_string(),
        reason: None,
    })?;
    // Go reports the unescaped version here, not the escaped one.
    check_elem(&v, PathKind::File).map_err(|r| ModuleError::InvalidEscape {
        what: "version",
        escaped: v.clone(),
        reason: Some(r),
    })?;
    Ok(v)
}

fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
            continue;
        }
        if c == '!' {
            bang = true;
            continue;
        }
        if c.is_ascii_uppercase() {
            return None;
        }
        out.push(c);
    }
    (!bang).then_some(out)
}

/// Go's `module.MatchPrefixPatterns`: whether any comma-separated glob
/// matches a leading run of `target`'s path elements.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    for glob in globs.split(',') {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        if glob.is_empty() {
            continue;
        }
        let mut n = glob.matches('/').count();
        let mut prefix = target;
        for (i, b) in target.bytes().enumerate() {
            if b == b'/' {
                if n == 0 {
                    prefix = &target[..i];
                    break;
                }
                n -= 1;
            }
        }
        if n > 0 {
            continue;
        }
        if path_match(glob, prefix) {
            return true;
        }
    }
    false
}

/// Whether a GOPRIVATE-style glob is well formed: Go's `path.Match` would not
/// return `ErrBadPattern` for it (a malformed glob silently matches nothing).
pub fn glob_is_valid(pattern: &str) -> bool {
    fn esc(p: &[char], i: &mut usize) -> bool {
        match p.get(*i) {
            None | Some('-') | Some(']') => false,
            Some('\\') => {
                if p.get(*i + 1).is_none() {
                    return false;
                }
                *i += 2;
                true
            }
            Some(_) => {
                *i += 1;
                true
            }
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return false;
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if p.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    if i >= p.len() {
                        return false;
                    }
                    if p[i] == ']' && n > 0 {
                        i += 1;
                        break;
                    }
                    if !esc(&p, &mut i) {
                        return false;
                    }
                    if p.get(i) == Some(&'-') {
                        i += 1;
                        if !esc(&p, &mut i) {
                            return false;
                        }
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// Go's `path.Match`, returning false on a malformed pattern.
fn path_match(pattern: &str, name: &str) -> bool {
    fn class_match(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['.
        let mut i = 0;
        let negated = p.first() == Some(&'^');
        if negated {
            i += 1;
        }
        let mut matched = false;
        let mut n = 0;
        loop {
            if i < p.len() && p[i] == ']' && n > 0 {
                i += 1;
                break;
            }
            let lo = escaped_char(p, &mut i)?;
            let mut hi = lo;
            if i < p.len() && p[i] == '-' {
                i += 1;
                hi = escaped_char(p, &mut i)?;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            n += 1;
        }
        Some((matched != negated, i))
    }
    fn escaped_char(p: &[char], i: &mut usize) -> Option<char> {
        let c = *p.get(*i)?;
        if c == '-' || c == ']' {
            return None;
        }
        *i += 1;
        if c == '\\' {
            let e = *p.get(*i)?;
            *i += 1;
            return Some(e);
        }
        Some(c)
    }
    fn rec(p: &[char], n: &[char]) -> Option<bool> {
        if p.is_empty() {
            return Some(n.is_empty());
        }
        match p[0] {
            '*' => {
                for k in 0..=n.len() {
                    if k > 0 && n[k - 1] == '/' {
                        break;
                    }
                    if rec(&p[1..], &n[k..])? {
                        return Some(true);
                    }
                }
                // Validate the rest of the pattern even when nothing matched.
                rec(&p[1..], &[]).map(|_| false)
            }
            '?' => {
                if n.is_empty() || n[0] == '/' {
                    return Some(false);
                }
                rec(&p[1..], &n[1..])
            }
            '[' => {
                let c = *n.first()?;
                let (ok, used) = class_match(&p[1..], c)?;
                if !ok || c == '/' {
                    return Some(false);
                }
                rec(&p[1 + used..], &n[1..])
            }
            '\\' => {
                let e = *p.get(1)?;
                if n.first() != Some(&e) {
                    return Some(false);
                }
                rec(&p[2..], &n[1..])
            }
            c => {
                if n.first() != Some(&c) {
                    return Some(false);
                }
                rec(&p[1..], &n[1..])
            }
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n).unwrap_or(false)
}

/// Whether `v` is a pseudo-version (Go's `module.IsPseudoVersion`).
pub fn is_pseudo_version(v: &str) -> bool {
    v.matches('-').count() >= 2 && semver::is_valid(v) && matches_pseudo_syntax(v)
}

/// Go's `pseudoVersionRE`, matched by hand:
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`.
fn matches_pseudo_syntax(v: &str) -> bool {
    let (body, build) = match v.find('+') {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    if !build.is_empty() {
        let b = &build[1..];
        if b.is_empty()
            || b.split('.').any(|part| part.is_empty() || !part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        {
            return false;
        }
    }
    let Some(dash) = body.rfind('-') else { return false };
    let rev = &body[dash + 1..];
    if rev.is_empty() || !rev.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let s = &body[..dash];
    if s.len() < 14 || !s.is_char_boundary(s.len() - 14) {
        return false;
    }
    let (t, stamp) = s.split_at(s.len() - 14);
    if !stamp.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let digits = |s: &str| -> usize { s.bytes().take_while(u8::is_ascii_digit).count() };
    let Some(after_v) = t.strip_prefix('v') else { return false };
    let n = digits(after_v);
    if n == 0 {
        return false;
    }
    let Some(rest) = after_v[n..].strip_prefix('.') else { return false };
    if rest == "0.0-" {
        return true;
    }
    // \d+\.\d+-([^+]*\.)?0\.
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    let Some(rest) = rest[n..].strip_prefix('.') else { return false };
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    let Some(rest) = rest[n..].strip_prefix('-') else { return false };
    let Some(mid) = rest.strip_suffix("0.") else { return false };
    mid.is_empty() || mid.ends_with('.')
}

/// The parts of a pseudo-version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudoVersion {
    /// The version it is based on (Go's `PseudoVersionBase`); empty for `vX.0.0-…` forms.
    pub base: String,
    /// The UTC commit time stamp, `yyyymmddhhmmss`.
    pub timestamp: String,
    /// The revision (commit hash prefix).
    pub rev: String,
    /// Build metadata such as `+incompatible`, or empty.
    pub build: String,
}

/// The revision of a pseudo-version (Go's `module.PseudoVersionRev`).
pub fn pseudo_version_rev(v: &str) -> Result<String, ModuleError> {
    if !is_pseudo_version(v) {
        return Err(ModuleError::InvalidVersion {
            version: v.to_string(),
            pseudo: true,
            reason: "syntax error".into(),
        });
    }
    let body = &v[..v.len() - semver::build(v).len()];
    Ok(body.rsplit('-').next().unwrap_or_default().to_string())
}

/// Splits a pseudo-version into its parts, with Go's errors for each way it
/// can be malformed (the base is Go's `module.PseudoVersionBase`).
pub fn parse_pseudo_version(v: &str) -> Result<PseudoVersion, ModuleError> {
    let invalid = |reason: String| ModuleError::InvalidVersion { version: v.to_string(), pseudo: true, reason };
    if !is_pseudo_version(v) {
        return Err(invalid("syntax error".into()));
    }
    let build = semver::build(v).to_string();
    let body = &v[..v.len() - build.len()];
    let j = body.rfind('-').ok_or_else(|| invalid("syntax error".into()))?;
    let (rest, rev) = (&body[..j], &body[j + 1..]);
    let i = rest.rfind('-').ok_or_else(|| invalid("syntax error".into()))?;
    let (raw_base, timestamp) = match rest.rfind('.') {
        Some(d) if d > i => (&rest[..d], &rest[d + 1..]),
        _ => (&rest[..i], &rest[i + 1..]),
    };
    let base = match semver::prerelease(raw_base) {
        "" => {
            if !build.is_empty() {
                return Err(invalid(format!("lacks base version, but has build metadata {}", go_quote(&build))));
            }
            String::new()
        }
        "-0" => {
            let b = &raw_base[..raw_base.len() - 2];
            let d = b.rfind('.').ok_or_else(|| invalid("syntax error".into()))?;
            let patch = dec_decimal(&b[d + 1..]);
            if patch.is_empty() {
                return Err(invalid(format!("version before {b} would have negative patch number")));
            }
            format!("{}{}{}", &b[..=d], patch, build)
        }
        _ => format!("{}{}", raw_base.strip_suffix(".0").unwrap_or(raw_base), build),
    };
    Ok(PseudoVersion { base, timestamp: timestamp.to_string(), rev: rev.to_string(), build })
}

fn dec_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return String::new();
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// Go's `strconv.Quote` for the strings that appear in module error messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%q` of a rune.
pub(crate) fn go_quote_rune(r: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, r, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() || (c as u32 >= 0x80 && c.is_whitespace()) => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_path("github.com/Azure/azure-sdk").as_deref(), Ok("github.com/!azure/azure-sdk"));
        assert_eq!(unescape_path("github.com/!azure/azure-sdk").as_deref(), Ok("github.com/Azure/azure-sdk"));
        assert!(unescape_path("github.com/Azure").is_err());
        assert!(unescape_path("github.com/!").is_err());
        assert_eq!(escape_version("v1.0.0-RC1").as_deref(), Ok("v1.0.0-!r!c1"));
        assert_eq!(
            check_path("example/x").map_err(|e| e.to_string()),
            Err(r#"malformed module path "example/x": missing dot in first path element"#.to_string())
        );
    }

    #[test]
    fn pseudo() {
        for v in [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
        ] {
            assert!(is_pseudo_version(v), "{v}");
        }
        for v in [
            "v1.2.3",
            "v1.2.3-0.2019110902193-daa7c04131f5",
            "v0.0.0-20191109021931-",
            "v1.2.3-20191109021931-daa7c04131f5",
        ] {
            assert!(!is_pseudo_version(v), "{v}");
        }
        let p = parse_pseudo_version("v1.2.4-0.20191109021931-daa7c04131f5").map_err(|e| e.to_string());
        assert_eq!(p.map(|p| p.base), Ok("v1.2.3".to_string()));
    }

    #[test]
    fn prefix_patterns() {
        assert!(match_prefix_patterns("*.corp.example.com,rsc.io/private", "git.corp.example.com/x/y"));
        assert!(match_prefix_patterns("rsc.io/private", "rsc.io/private/quote"));
        assert!(!match_prefix_patterns("rsc.io/private", "rsc.io/privately"));
        for ok in ["*.corp.example", "a[bc]d", "x[^a-c]/y", "a\\*"] {
            assert!(glob_is_valid(ok), "{ok}");
        }
        for bad in ["corp[", "a\\", "[]a]", "[a-]", "[-a]"] {
            assert!(!glob_is_valid(bad), "{bad}");
        }
    }
}
