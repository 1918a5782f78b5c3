//! Go's semantic versions, exactly as `golang.org/x/mod/semver`.
//!
//! Versions start with `v`; `v1` and `v1.2` are accepted as shorthands for
//! `v1.0.0` and `v1.2.0`; build metadata (`+…`) is ignored by comparisons.
//! Invalid versions compare equal to each other and below every valid one.

use std::cmp::Ordering;

#[derive(Debug, Default, Clone, Copy)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    short: &'static str,
    prerelease: &'a str,
    build: &'a str,
}

/// Whether `v` is a valid semantic version (Go's `semver.IsValid`).
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// The canonical form of `v`: `v1` → `v1.0.0`, build metadata dropped; empty
/// when `v` is invalid (Go's `semver.Canonical`).
pub fn canonical(v: &str) -> String {
    let Some(p) = parse(v) else { return String::new() };
    if !p.build.is_empty() {
        return v[..v.len() - p.build.len()].to_string();
    }
    format!("{v}{}", p.short)
}

/// The major version prefix, `v2` for `v2.1.0`; empty when invalid.
pub fn major(v: &str) -> String {
    match parse(v) {
        Some(p) => v[..1 + p.major.len()].to_string(),
        None => String::new(),
    }
}

/// The `vMAJOR.MINOR` prefix; empty when invalid.
pub fn major_minor(v: &str) -> String {
    let Some(p) = parse(v) else { return String::new() };
    let i = 1 + p.major.len();
    let j = i + 1 + p.minor.len();
    if j <= v.len() && v.as_bytes()[i] == b'.' && &v[i + 1..j] == p.minor {
        return v[..j].to_string();
    }
    format!("{}.{}", &v[..i], p.minor)
}

/// The prerelease suffix with its `-`, empty when none or invalid.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// The build suffix with its `+`, empty when none or invalid.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// Compares two versions (Go's `semver.Compare`): an invalid version is
/// below every valid one, and two invalid versions are equal.
pub fn compare(v: &str, w: &str) -> Ordering {
    let (pv, pw) = match (parse(v), parse(w)) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(a), Some(b)) => (a, b),
    };
    compare_int(pv.major, pw.major)
        .then_with(|| compare_int(pv.minor, pw.minor))
        .then_with(|| compare_int(pv.patch, pw.patch))
        .then_with(|| compare_prerelease(pv.prerelease, pw.prerelease))
}

/// The larger of two versions in canonical form (Go's `semver.Max`).
pub fn max(v: &str, w: &str) -> String {
    let (v, w) = (canonical(v), canonical(w));
    if compare(&v, &w) == Ordering::Greater {
        v
    } else {
        w
    }
}

/// Sorts versions as Go's `semver.Sort`: by [`compare`], then bytewise.
pub fn sort(list: &mut [String]) {
    list.sort_by(|a, b| compare(a, b).then_with(|| a.cmp(b)));
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let mut p = Parsed::default();
    let (major, rest) = parse_int(rest)?;
    p.major = major;
    if rest.is_empty() {
        p.minor = "0";
        p.patch = "0";
        p.short = ".0.0";
        return Some(p);
    }
    let rest = rest.strip_prefix('.')?;
    let (minor, rest) = parse_int(rest)?;
    p.minor = minor;
    if rest.is_empty() {
        p.patch = "0";
        p.short = ".0";
        return Some(p);
    }
    let rest = rest.strip_prefix('.')?;
    let (patch, mut rest) = parse_int(rest)?;
    p.patch = patch;
    if rest.starts_with('-') {
        let (pre, r) = parse_prerelease(rest)?;
        p.prerelease = pre;
        rest = r;
    }
    if rest.starts_with('+') {
        let (b, r) = parse_build(rest)?;
        p.build = b;
        rest = r;
    }
    rest.is_empty().then_some(p)
}

fn parse_int(v: &str) -> Option<(&str, &str)> {
    let b = v.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() {
        return None;
    }
    let i = b.iter().position(|c| !c.is_ascii_digit()).unwrap_or(b.len());
    if b[0] == b'0' && i != 1 {
        return None;
    }
    Some((&v[..i], &v[i..]))
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn is_bad_num(v: &str) -> bool {
    let b = v.as_bytes();
    b.iter().all(u8::is_ascii_digit) && b.len() > 1 && b[0] == b'0'
}

fn is_num(v: &str) -> bool {
    v.bytes().all(|c| c.is_ascii_digit())
}

fn parse_prerelease(v: &str) -> Option<(&str, &str)> {
    let b = v.as_bytes();
    if b.first() != Some(&b'-') {
        return None;
    }
    let (mut i, mut start) = (1, 1);
    while i < b.len() && b[i] != b'+' {
        if !is_ident_char(b[i]) && b[i] != b'.' {
            return None;
        }
        if b[i] == b'.' {
            if start == i || is_bad_num(&v[start..i]) {
                return None;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start == i || is_bad_num(&v[start..i]) {
        return None;
    }
    Some((&v[..i], &v[i..]))
}

fn parse_build(v: &str) -> Option<(&str, &str)> {
    let b = v.as_bytes();
    if b.first() != Some(&b'+') {
        return None;
    }
    let (mut i, mut start) = (1, 1);
    while i < b.len() {
        if !is_ident_char(b[i]) && b[i] != b'.' {
            return None;
        }
        if b[i] == b'.' {
            if start == i {
                return None;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start == i {
        return None;
    }
    Some((&v[..i], &v[i..]))
}

fn compare_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    let (mut x, mut y) = (x, y);
    while !x.is_empty() && !y.is_empty() {
        x = &x[1..];
        y = &y[1..];
        let (dx, rx) = next_ident(x);
        let (dy, ry) = next_ident(y);
        x = rx;
        y = ry;
        if dx != dy {
            let (ix, iy) = (is_num(dx), is_num(dy));
            if ix != iy {
                return if ix { Ordering::Less } else { Ordering::Greater };
            }
            if ix && dx.len() != dy.len() {
                return dx.len().cmp(&dy.len());
            }
            return dx.cmp(dy);
        }
    }
    if x.is_empty() {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

fn next_ident(x: &str) -> (&str, &str) {
    let i = x.find('.').unwrap_or(x.len());
    (&x[..i], &x[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical("v1"), "v1.0.0");
        assert_eq!(canonical("v1.2"), "v1.2.0");
        assert_eq!(canonical("v1.2.3+meta"), "v1.2.3");
        assert_eq!(canonical("v1.2.3-pre+meta"), "v1.2.3-pre");
        assert_eq!(canonical("1.2.3"), "");
        assert_eq!(canonical("v01.2.3"), "");
        assert_eq!(major_minor("v1.2.3"), "v1.2");
        assert_eq!(major_minor("v1"), "v1.0");
    }

    #[test]
    fn ordering() {
        let ordered = [
            "bad",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-alpha.beta",
            "v1.0.0-beta.2",
            "v1.0.0-beta.11",
            "v1.0.0-rc.1",
            "v1.0.0",
            "v1.2.0",
            "v1.10.0",
            "v2.0.0+incompatible",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare("v1.0.0+a", "v1.0.0+b"), Ordering::Equal);
        assert_eq!(compare("x", "y"), Ordering::Equal);
    }
}
