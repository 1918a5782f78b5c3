//! A strict reader of the Prometheus text exposition format, shared by the tests of the
//! servers' `/metrics` (`crates/webhook/tests`, `crates/server/tests`, `tests/it`): each
//! includes it with `#[path]`.

use std::collections::HashMap;

/// One sample of the text format.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// A strict reader of the Prometheus text exposition format 0.0.4: HELP and TYPE lines
/// before their family's samples, one TYPE per family, metric and label names of the
/// format's grammar, quoted and escaped label values, float values; histograms with
/// cumulative buckets ending at +Inf equal to _count.
pub(crate) fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let name_ok = |n: &str| {
        let mut cs = n.chars();
        cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    for (no, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", no + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, arg) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !name_ok(name) {
                return Err(err("bad metric name"));
            }
            match kw {
                "HELP" => {}
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                        return Err(err("bad type"));
                    }
                    if types.insert(name.to_string(), arg.to_string()).is_some() {
                        return Err(err("second TYPE"));
                    }
                    if samples.iter().any(|s: &Sample| s.name.starts_with(name)) {
                        return Err(err("TYPE after samples"));
                    }
                }
                _ => return Err(err("unknown comment keyword")),
            }
            continue;
        }
        let (name_end, rest) = match line.find(['{', ' ']) {
            Some(i) => (i, &line[i..]),
            None => return Err(err("no value")),
        };
        let name = &line[..name_end];
        if !name_ok(name) {
            return Err(err("bad metric name"));
        }
        let mut labels = Vec::new();
        let mut rest = rest;
        if let Some(mut l) = rest.strip_prefix('{') {
            loop {
                if let Some(r) = l.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = l.find('=').ok_or_else(|| err("label without ="))?;
                let lname = &l[..eq];
                if !name_ok(lname) || lname.contains(':') {
                    return Err(err("bad label name"));
                }
                l = l[eq + 1..].strip_prefix('"').ok_or_else(|| err("unquoted label value"))?;
                let mut value = String::new();
                let mut chars = l.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            _ => return Err(err("bad escape")),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => return Err(err("unterminated label value")),
                    }
                };
                labels.push((lname.to_string(), value));
                l = &l[end + 1..];
                l = l.strip_prefix(',').unwrap_or(l);
            }
        }
        let value = rest.strip_prefix(' ').ok_or_else(|| err("no space before the value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| err("bad value"))?,
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(err("sample without TYPE"));
        }
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    for (family, t) in &types {
        if t != "histogram" {
            continue;
        }
        // One series per label set (without `le`): cumulative buckets ending at +Inf = _count.
        let series =
            |s: &Sample| -> Vec<(String, String)> { s.labels.iter().filter(|(k, _)| k != "le").cloned().collect() };
        let mut sets: Vec<Vec<(String, String)>> = Vec::new();
        for s in samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            if !sets.contains(&series(s)) {
                sets.push(series(s));
            }
        }
        for set in sets {
            let buckets: Vec<&Sample> =
                samples.iter().filter(|s| s.name == format!("{family}_bucket") && series(s) == set).collect();
            let mut last = 0.0;
            let mut last_le = f64::NEG_INFINITY;
            for b in &buckets {
                let le = b.labels.iter().find(|(k, _)| k == "le").ok_or("bucket without le")?;
                let le: f64 = if le.1 == "+Inf" { f64::INFINITY } else { le.1.parse().map_err(|_| "bad le")? };
                if le <= last_le || b.value < last {
                    return Err(format!("{family}{set:?}: buckets not cumulative"));
                }
                (last, last_le) = (b.value, le);
            }
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && s.labels == set)
                .ok_or(format!("{family}{set:?}: no _count"))?;
            if last_le != f64::INFINITY || last != count.value {
                return Err(format!("{family}{set:?}: +Inf bucket missing or not _count"));
            }
        }
    }
    Ok(samples)
}
