//! The text form of build info: Go's `debug.ParseBuildInfo` and `BuildInfo.String`.

use bstr::{BString, ByteSlice};

use super::goquote;
use super::model::{BuildInfo, BuildSetting, Module};

/// Build info text that Go itself would refuse, with Go's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not parse Go build info: line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number, counted as Go counts it.
    pub line: usize,
    /// What is wrong with the line, worded as Go words it.
    pub message: String,
}

fn quote_key(key: &[u8]) -> bool {
    key.is_empty() || key.iter().any(|b| b"= \t\r\n\"`".contains(b))
}

fn quote_value(value: &[u8]) -> bool {
    value.iter().any(|b| b" \t\r\n\"`".contains(b))
}

/// Go's `%q` of a byte string, used in error messages.
fn go_q(s: &[u8]) -> String {
    String::from_utf8_lossy(&goquote::quote(s)).into_owned()
}

/// Go's `%q` of a single byte as a rune literal, used in one error message.
fn go_q_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'\\' => "'\\\\'".to_string(),
        0x20..=0x7e => format!("'{}'", c as char),
        _ => {
            // strconv.QuoteRune of a byte value 0x80..0xff is the rune U+0080..U+00FF.
            let q = goquote::quote(char::from(c).to_string().as_bytes());
            let inner = String::from_utf8_lossy(&q[1..q.len() - 1]).into_owned();
            format!("'{inner}'")
        }
    }
}

fn module_line(elem: &[&[u8]]) -> Result<Module, String> {
    if elem.len() != 2 && elem.len() != 3 {
        return Err(format!("expected 2 or 3 columns; got {}", elem.len()));
    }
    Ok(Module {
        path: BString::from(elem[0]),
        version: BString::from(elem[1]),
        sum: BString::from(elem.get(2).copied().unwrap_or_default()),
        replace: None,
    })
}

/// Which module a `=>` line replaces.
#[derive(Clone, Copy)]
enum Last {
    None,
    Main,
    Dep(usize),
}

/// Parses the module-info text (without sentinels), as Go's `debug.ParseBuildInfo`.
/// The Go version is not part of this text and stays empty.
pub fn parse(data: &[u8]) -> Result<BuildInfo, ParseError> {
    let mut bi = BuildInfo::default();
    let mut line_num = 1;
    let mut last = Last::None;
    let mut rest = data;
    let fail = |line: usize, message: String| ParseError { line, message };
    while !rest.is_empty() {
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        if let Some(elem) = line.strip_prefix(b"path\t") {
            bi.path = BString::from(elem);
        } else if let Some(elem) = line.strip_prefix(b"mod\t") {
            let cols: Vec<&[u8]> = elem.split_str("\t").collect();
            bi.main = module_line(&cols).map_err(|m| fail(line_num, m))?;
            last = Last::Main;
        } else if let Some(elem) = line.strip_prefix(b"dep\t") {
            let cols: Vec<&[u8]> = elem.split_str("\t").collect();
            // Go appends the module before checking its columns; on error the whole parse fails anyway.
            bi.deps.push(module_line(&cols).map_err(|m| fail(line_num, m))?);
            last = Last::Dep(bi.deps.len() - 1);
        } else if let Some(elem) = line.strip_prefix(b"=>\t") {
            let cols: Vec<&[u8]> = elem.split_str("\t").collect();
            if cols.len() != 3 {
                return Err(fail(line_num, format!("expected 3 columns for replacement; got {}", cols.len())));
            }
            let replacement = Box::new(Module {
                path: BString::from(cols[0]),
                version: BString::from(cols[1]),
                sum: BString::from(cols[2]),
                replace: None,
            });
            match last {
                Last::None => return Err(fail(line_num, "replacement with no module on previous line".into())),
                Last::Main => bi.main.replace = Some(replacement),
                Last::Dep(i) => bi.deps[i].replace = Some(replacement),
            }
            last = Last::None;
        } else if let Some(kv) = line.strip_prefix(b"build\t") {
            let setting = parse_build_line(kv).map_err(|m| fail(line_num, m))?;
            bi.settings.push(setting);
        }
        line_num += 1;
    }
    Ok(bi)
}

fn parse_build_line(kv: &[u8]) -> Result<BuildSetting, String> {
    let Some(&first) = kv.first() else {
        return Err("build line missing '='".into());
    };
    let (key, raw_value) = match first {
        b'=' => return Err("build line with missing key".into()),
        b'`' | b'"' => {
            let n = goquote::quoted_prefix_len(kv).map_err(|_| "invalid quoted key in build line".to_string())?;
            if kv.len() == n {
                return Err("build line missing '=' after quoted key".into());
            }
            if kv[n] != b'=' {
                return Err(format!("unexpected character after quoted key: {}", go_q_char(kv[n])));
            }
            // A prefix that QuotedPrefix accepted always unquotes.
            let key = goquote::unquote(&kv[..n]).unwrap_or_default();
            (key, &kv[n + 1..])
        }
        _ => {
            let Some(eq) = memchr::memchr(b'=', kv) else {
                return Err("build line missing '=' after key".into());
            };
            let key = &kv[..eq];
            if quote_key(key) {
                return Err(format!("unquoted key {} must be quoted", go_q(key)));
            }
            (key.to_vec(), &kv[eq + 1..])
        }
    };
    let value = match raw_value.first() {
        None => Vec::new(),
        Some(b'`') | Some(b'"') => {
            goquote::unquote(raw_value).map_err(|_| "invalid quoted value in build line".to_string())?
        }
        Some(_) => {
            if quote_value(raw_value) {
                return Err(format!("unquoted value {} must be quoted", go_q(raw_value)));
            }
            raw_value.to_vec()
        }
    };
    Ok(BuildSetting { key: BString::from(key), value: BString::from(value) })
}

fn format_module(buf: &mut Vec<u8>, word: &[u8], m: &Module) {
    buf.extend_from_slice(word);
    buf.push(b'\t');
    buf.extend_from_slice(&m.path);
    buf.push(b'\t');
    buf.extend_from_slice(&m.version);
    match &m.replace {
        None => {
            buf.push(b'\t');
            buf.extend_from_slice(&m.sum);
        }
        Some(r) => {
            buf.push(b'\n');
            format_module(buf, b"=>", r);
        }
    }
    buf.push(b'\n');
}

/// Renders build info as Go's `BuildInfo.String` does.
pub fn format(bi: &BuildInfo) -> Vec<u8> {
    let mut buf = Vec::new();
    if !bi.go_version.is_empty() {
        buf.extend_from_slice(b"go\t");
        buf.extend_from_slice(&bi.go_version);
        buf.push(b'\n');
    }
    if !bi.path.is_empty() {
        buf.extend_from_slice(b"path\t");
        buf.extend_from_slice(&bi.path);
        buf.push(b'\n');
    }
    if !bi.main.is_empty() {
        format_module(&mut buf, b"mod", &bi.main);
    }
    for dep in &bi.deps {
        format_module(&mut buf, b"dep", dep);
    }
    for s in &bi.settings {
        buf.extend_from_slice(b"build\t");
        if quote_key(&s.key) {
            buf.extend_from_slice(&goquote::quote(&s.key));
        } else {
            buf.extend_from_slice(&s.key);
        }
        buf.push(b'=');
        if quote_value(&s.value) {
            buf.extend_from_slice(&goquote::quote(&s.value));
        } else {
            buf.extend_from_slice(&s.value);
        }
        buf.push(b'\n');
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.0\th1:abc=\ndep\texample.com/lib\tv1.0.0\n=>\t../lib\t(devel)\t\nbuild\t-ldflags=\"-X 'main.v=a b'\"\nbuild\tCGO_ENABLED=0\nbuild\tempty=\n";

    #[test]
    fn round_trip() {
        let bi = parse(SAMPLE.as_bytes()).expect("sample parses");
        assert_eq!(bi.deps.len(), 2);
        assert_eq!(bi.deps[1].replace.as_ref().map(|r| r.path.to_string()), Some("../lib".into()));
        assert_eq!(bi.setting("-ldflags").map(|v| v.to_string()), Some("-X 'main.v=a b'".into()));
        // Go's BuildInfo.String ends a replaced module with an empty line; go version -m prints it too.
        let expected = SAMPLE.replace("=>\t../lib\t(devel)\t\n", "=>\t../lib\t(devel)\t\n\n");
        assert_eq!(format(&bi), expected.as_bytes());
    }

    #[test]
    fn errors_are_worded_as_go() {
        let e = parse(b"path\tx\ndep\ta\n").expect_err("one column");
        assert_eq!(e.to_string(), "could not parse Go build info: line 2: expected 2 or 3 columns; got 1");
        let e = parse(b"=>\ta\tb\tc\n").expect_err("orphan replacement");
        assert_eq!(e.line, 1);
        let e = parse(b"build\tk v=x\n").expect_err("unquoted key");
        assert_eq!(e.message, "unquoted key \"k v\" must be quoted");
        let e = parse(b"build\t\"k\"x\n").expect_err("junk after key");
        assert_eq!(e.message, "unexpected character after quoted key: 'x'");
        // A last line without a newline is ignored, as in Go.
        assert_eq!(parse(b"path\tx\nbuild\tbroken").map(|b| b.settings.len()), Ok(0));
    }
}
