//! `go version -m -json` output: Go's `json.MarshalIndent(bi, "", "\t")`, byte for byte.
//!
//! Written by hand rather than with serde because Go's encoder escapes `<`, `>`,
//! `&`, U+2028 and U+2029 and replaces invalid UTF-8 with U+FFFD; serde_json does
//! neither, and the output must match Go's.

use super::model::{BuildInfo, Module};

/// Extra fields reprove adds after Go's own (for `--build-id`).
#[derive(Debug, Default, Clone)]
pub struct ExtraFields {
    /// `(name, value)` string fields appended to the top-level object.
    pub strings: Vec<(&'static str, String)>,
}

struct Obj<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>, depth: usize) -> Self {
        out.push(b'{');
        Obj { out, depth, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'\n');
        indent(self.out, self.depth + 1);
        write_string(self.out, k.as_bytes());
        self.out.extend_from_slice(b": ");
    }

    fn string(&mut self, k: &str, v: &[u8]) {
        if !v.is_empty() {
            self.key(k);
            write_string(self.out, v);
        }
    }

    fn close(self) {
        if !self.first {
            self.out.push(b'\n');
            indent(self.out, self.depth);
        }
        self.out.push(b'}');
    }
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    out.extend(std::iter::repeat_n(b'\t', depth));
}

/// Go's `encoding/json` string encoding with HTML escaping.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = s;
    while let Some(&b) = rest.first() {
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'<' | b'>' | b'&' | 0x00..=0x1f => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                _ => out.push(b),
            }
            rest = &rest[1..];
            continue;
        }
        let (r, width) = super::goquote::decode_rune(rest);
        match r {
            None => out.extend_from_slice(b"\\ufffd"),
            Some('\u{2028}') => out.extend_from_slice(b"\\u2028"),
            Some('\u{2029}') => out.extend_from_slice(b"\\u2029"),
            Some(_) => out.extend_from_slice(&rest[..width]),
        }
        rest = &rest[width..];
    }
    out.push(b'"');
}

fn write_module(out: &mut Vec<u8>, m: &Module, depth: usize) {
    let mut o = Obj::open(out, depth);
    o.string("Path", &m.path);
    o.string("Version", &m.version);
    o.string("Sum", &m.sum);
    if let Some(r) = &m.replace {
        o.key("Replace");
        write_module(o.out, r, depth + 1);
    }
    o.close();
}

/// Renders build info as `go version -m -json` does (without the trailing newline).
pub(crate) fn marshal(bi: &BuildInfo, extra: &ExtraFields) -> Vec<u8> {
    let mut out = Vec::new();
    let mut o = Obj::open(&mut out, 0);
    o.string("GoVersion", &bi.go_version);
    o.string("Path", &bi.path);
    o.key("Main");
    write_module(o.out, &bi.main, 1);
    if !bi.deps.is_empty() {
        o.key("Deps");
        o.out.push(b'[');
        for (i, d) in bi.deps.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            o.out.push(b'\n');
            indent(o.out, 2);
            write_module(o.out, d, 2);
        }
        o.out.push(b'\n');
        indent(o.out, 1);
        o.out.push(b']');
    }
    if !bi.settings.is_empty() {
        o.key("Settings");
        o.out.push(b'[');
        for (i, s) in bi.settings.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            o.out.push(b'\n');
            indent(o.out, 2);
            let mut so = Obj::open(o.out, 2);
            so.string("Key", &s.key);
            so.string("Value", &s.value);
            so.close();
        }
        o.out.push(b'\n');
        indent(o.out, 1);
        o.out.push(b']');
    }
    for (k, v) in &extra.strings {
        o.string(k, v.as_bytes());
    }
    o.close();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_go() {
        let mut out = Vec::new();
        write_string(&mut out, b"<a&b>\x01\t\xff\xe2\x80\xa8\"");
        assert_eq!(out, b"\"\\u003ca\\u0026b\\u003e\\u0001\\t\\ufffd\\u2028\\\"\"");
    }

    #[test]
    fn empty_main_is_an_empty_object() {
        let bi = BuildInfo { go_version: "go1.22.5".into(), ..Default::default() };
        let out = String::from_utf8(marshal(&bi, &ExtraFields::default())).expect("utf-8");
        assert_eq!(out, "{\n\t\"GoVersion\": \"go1.22.5\",\n\t\"Main\": {}\n}");
    }
}
