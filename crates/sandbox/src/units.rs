//! Durations and sizes as users type them: `90s`, `10m`, `1h30m`; `512M`, `2GiB`.
//!
//! Durations follow Go's `time.ParseDuration` units (`ms`, `s`, `m`, `h`,
//! combinable, with fractions); a bare number means seconds. Sizes follow
//! Docker's `--memory`: a number with an optional `k`, `m`, `g` or `t` suffix
//! (any case, optionally followed by `i` and/or `b`), in powers of 1024.

use std::time::Duration;

use super::Error;

/// Parses a positive duration: `1h30m`, `90s`, `1.5h`, `250ms`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let invalid =
        |reason: &str| Error::Invalid { what: "duration", value: text.to_string(), reason: reason.to_string() };
    let s = text.trim();
    if s.is_empty() {
        return Err(invalid("empty"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return positive_secs(secs).ok_or_else(|| invalid("must be a positive number of seconds"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(invalid("expected a number before each unit, e.g. 1h30m"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| invalid("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(invalid("missing unit (ms, s, m, h)")),
            _ => return Err(invalid("unknown unit; use ms, s, m or h")),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    positive_secs(total).ok_or_else(|| invalid("must be positive"))
}

fn positive_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs > 0.0 && secs < 1e12).then(|| Duration::from_secs_f64(secs))
}

/// Parses a positive size in bytes: `512M`, `2GiB`, `1g`, `65536`.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let invalid = |reason: &str| Error::Invalid { what: "size", value: text.to_string(), reason: reason.to_string() };
    let s = text.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return Err(invalid("expected a number of bytes with an optional k, m, g or t suffix"));
    }
    let value: u64 = s[..digits].parse().map_err(|_| invalid("number too large"))?;
    let suffix = s[digits..].to_ascii_lowercase();
    let suffix = suffix.strip_suffix('b').unwrap_or(&suffix);
    let suffix = suffix.strip_suffix('i').unwrap_or(suffix);
    let shift = match suffix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(invalid("unknown suffix; use k, m, g or t")),
    };
    let bytes = value.checked_mul(1u64 << shift).ok_or_else(|| invalid("too large"))?;
    if bytes == 0 {
        return Err(invalid("must be positive"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms").ok(), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("600").ok(), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("0.5").ok(), Some(Duration::from_millis(500)));
        for bad in ["", "0", "0s", "-1s", "5x", "h", "1h30", "1e400", "inf", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").ok(), Some(512 << 20));
        assert_eq!(parse_size("2GiB").ok(), Some(2 << 30));
        assert_eq!(parse_size("1g").ok(), Some(1 << 30));
        assert_eq!(parse_size("64kb").ok(), Some(64 << 10));
        assert_eq!(parse_size("65536").ok(), Some(65536));
        for bad in ["", "0", "M", "-1M", "1.5G", "12X", "99999999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
