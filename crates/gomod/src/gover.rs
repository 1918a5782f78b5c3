//! Go toolchain versions (`1.21`, `1.21.0`, `1.21rc1`), as Go's `internal/gover`.
//!
//! These are the versions of `go` and `toolchain` lines, not module versions:
//! `1.21` (a language version) sorts before `1.21rc1`, which sorts before `1.21.0`.

use std::cmp::Ordering;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    kind: &'a str,
    pre: &'a str,
}

/// Compares two Go versions; invalid versions compare below valid ones and equal to each other.
pub fn compare(x: &str, y: &str) -> Ordering {
    let (vx, vy) = (parse(x).unwrap_or_default(), parse(y).unwrap_or_default());
    cmp_int(vx.major, vy.major)
        .then_with(|| cmp_int(vx.minor, vy.minor))
        .then_with(|| cmp_int(vx.patch, vy.patch))
        .then_with(|| vx.kind.cmp(vy.kind))
        .then_with(|| cmp_int(vx.pre, vy.pre))
}

/// Whether `x` is a valid Go version.
pub fn is_valid(x: &str) -> bool {
    parse(x).is_some()
}

/// The Go version named by a toolchain name such as `go1.21.3` (Go's `gover.FromToolchain`); empty if none.
pub fn from_toolchain(name: &str) -> &str {
    if name.contains(['\\', '/']) {
        return "";
    }
    let Some(v) = name.strip_prefix("go") else { return "" };
    let v = v.find([' ', '\t', '-']).map_or(v, |i| &v[..i]);
    if is_valid(v) {
        v
    } else {
        ""
    }
}

fn parse(x: &str) -> Option<Parsed<'_>> {
    let mut v = Parsed::default();
    let (major, x) = cut_int(x)?;
    v.major = major;
    if x.is_empty() {
        v.minor = "0";
        v.patch = "0";
        return Some(v);
    }
    let x = x.strip_prefix('.')?;
    let (minor, x) = cut_int(x)?;
    v.minor = minor;
    if x.is_empty() {
        if cmp_int(minor, "21") == Ordering::Less {
            v.patch = "0";
        }
        return Some(v);
    }
    if let Some(rest) = x.strip_prefix('.') {
        let (patch, rest) = cut_int(rest)?;
        if !rest.is_empty() {
            return None;
        }
        v.patch = patch;
        return Some(v);
    }
    let i = x.find(|c: char| c.is_ascii_digit()).unwrap_or(x.len());
    if i == 0 || !x[..i].bytes().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    v.kind = &x[..i];
    let x = &x[i..];
    if x.is_empty() {
        return Some(v);
    }
    let (pre, rest) = cut_int(x)?;
    if !rest.is_empty() {
        return None;
    }
    v.pre = pre;
    Some(v)
}

fn cut_int(x: &str) -> Option<(&str, &str)> {
    let i = x.find(|c: char| !c.is_ascii_digit()).unwrap_or(x.len());
    if i == 0 || (x.starts_with('0') && i != 1) {
        return None;
    }
    Some((&x[..i], &x[i..]))
}

fn cmp_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order() {
        let ordered = ["1.16", "1.17", "1.21", "1.21rc1", "1.21.0", "1.21.3", "1.22"];
        for w in ordered.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare("1.16", "1.16.0"), Ordering::Equal);
        assert!(!is_valid("1.021"));
        assert_eq!(from_toolchain("go1.21.3-custom"), "1.21.3");
    }
}
