//! Go's `strconv.Quote`, `strconv.Unquote` and `strconv.QuotedPrefix`, byte for byte.
//!
//! Build settings are quoted with Go's rules when they hold spaces, tabs or
//! quotes, and unquoted when read back; any difference from Go would change what
//! `reprove buildinfo` prints. Only the double-quote and back-quote forms are
//! needed (the build info never uses single quotes).

use super::isprint_table::PRINTABLE;

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// Go's `strconv.IsPrint`.
pub(crate) fn is_print(r: u32) -> bool {
    PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < r {
                std::cmp::Ordering::Less
            } else if lo > r {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Decodes one rune as Go's `utf8.DecodeRune` does: invalid input yields
/// `(None, 1)` (Go's `RuneError` with width 1).
pub(crate) fn decode_rune(s: &[u8]) -> (Option<char>, usize) {
    match bstr::decode_utf8(s) {
        (Some(c), n) => (Some(c), n),
        (None, _) => (None, 1),
    }
}

/// Go's `strconv.Quote`.
pub fn quote(s: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(s.len() + 2);
    buf.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        let (r, width) = decode_rune(rest);
        match r {
            None => {
                buf.extend_from_slice(b"\\x");
                buf.push(LOWER_HEX[(rest[0] >> 4) as usize]);
                buf.push(LOWER_HEX[(rest[0] & 0xf) as usize]);
            }
            Some(c) => append_escaped_rune(&mut buf, c),
        }
        rest = &rest[width..];
    }
    buf.push(b'"');
    buf
}

fn append_escaped_rune(buf: &mut Vec<u8>, c: char) {
    let r = c as u32;
    if c == '"' || c == '\\' {
        buf.push(b'\\');
        buf.push(r as u8);
        return;
    }
    if is_print(r) {
        let mut tmp = [0u8; 4];
        buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        return;
    }
    match c {
        '\u{7}' => buf.extend_from_slice(b"\\a"),
        '\u{8}' => buf.extend_from_slice(b"\\b"),
        '\u{c}' => buf.extend_from_slice(b"\\f"),
        '\n' => buf.extend_from_slice(b"\\n"),
        '\r' => buf.extend_from_slice(b"\\r"),
        '\t' => buf.extend_from_slice(b"\\t"),
        '\u{b}' => buf.extend_from_slice(b"\\v"),
        _ if r < 0x20 || r == 0x7f => {
            buf.extend_from_slice(b"\\x");
            buf.push(LOWER_HEX[(r >> 4) as usize & 0xf]);
            buf.push(LOWER_HEX[r as usize & 0xf]);
        }
        _ if r < 0x10000 => {
            buf.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                buf.push(LOWER_HEX[(r >> shift) as usize & 0xf]);
            }
        }
        _ => {
            buf.extend_from_slice(b"\\U");
            for shift in [28, 24, 20, 16, 12, 8, 4, 0] {
                buf.push(LOWER_HEX[(r >> shift) as usize & 0xf]);
            }
        }
    }
}

/// The quoted string at the start of `s` could not be read (Go's `ErrSyntax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxError;

/// Go's `strconv.Unquote` for `"…"` and `` `…` `` literals.
pub(crate) fn unquote(s: &[u8]) -> Result<Vec<u8>, SyntaxError> {
    let (out, rest) = unquote_prefix(s, true)?;
    if !rest.is_empty() {
        return Err(SyntaxError);
    }
    Ok(out)
}

/// Go's `strconv.QuotedPrefix`: the length of the quoted literal that `s` starts with.
pub(crate) fn quoted_prefix_len(s: &[u8]) -> Result<usize, SyntaxError> {
    let (_, rest) = unquote_prefix(s, false)?;
    Ok(s.len() - rest.len())
}

/// Go's `strconv.unquote(in, unescape)`: the value (when `unescape`) and the rest of the input.
fn unquote_prefix(input: &[u8], unescape: bool) -> Result<(Vec<u8>, &[u8]), SyntaxError> {
    if input.len() < 2 {
        return Err(SyntaxError);
    }
    let quote = input[0];
    let end = match memchr::memchr(quote, &input[1..]) {
        Some(i) => i + 2,
        None => return Err(SyntaxError),
    };
    match quote {
        b'`' => {
            let inner = &input[1..end - 1];
            let out = if !unescape {
                Vec::new()
            } else {
                // Raw strings drop carriage returns, as in Go source.
                inner.iter().copied().filter(|&b| b != b'\r').collect()
            };
            Ok((out, &input[end..]))
        }
        b'"' => {
            let head = &input[..end];
            if !head.contains(&b'\\') && !head.contains(&b'\n') && std::str::from_utf8(&head[1..end - 1]).is_ok() {
                let out = if unescape { head[1..end - 1].to_vec() } else { Vec::new() };
                return Ok((out, &input[end..]));
            }
            let mut buf = Vec::new();
            let mut rest = &input[1..];
            while !rest.is_empty() && rest[0] != quote {
                if rest[0] == b'\n' {
                    return Err(SyntaxError);
                }
                let (value, tail) = unquote_char(rest, quote)?;
                rest = tail;
                if unescape {
                    match value {
                        Unquoted::Byte(b) => buf.push(b),
                        Unquoted::Rune(c) => {
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                        }
                    }
                }
            }
            if rest.first() != Some(&quote) {
                return Err(SyntaxError);
            }
            Ok((buf, &rest[1..]))
        }
        _ => Err(SyntaxError),
    }
}

/// One decoded character: a single byte (ASCII, `\x`, octal) or a multi-byte rune.
enum Unquoted {
    Byte(u8),
    Rune(char),
}

/// Go's `strconv.UnquoteChar` for a double-quoted literal.
fn unquote_char(s: &[u8], quote: u8) -> Result<(Unquoted, &[u8]), SyntaxError> {
    let Some(&c) = s.first() else {
        return Err(SyntaxError);
    };
    if c == quote {
        return Err(SyntaxError);
    }
    if c >= 0x80 {
        let (r, width) = decode_rune(s);
        return Ok((Unquoted::Rune(r.unwrap_or('\u{fffd}')), &s[width..]));
    }
    if c != b'\\' {
        return Ok((Unquoted::Byte(c), &s[1..]));
    }
    if s.len() <= 1 {
        return Err(SyntaxError);
    }
    let c = s[1];
    let s = &s[2..];
    let simple = |b: u8| Ok((Unquoted::Byte(b), s));
    match c {
        b'a' => simple(7),
        b'b' => simple(8),
        b'f' => simple(0xc),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0xb),
        b'\\' => simple(b'\\'),
        b'"' if c == quote => simple(c),
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            if s.len() < n {
                return Err(SyntaxError);
            }
            let mut v: u32 = 0;
            for &d in &s[..n] {
                let x = (d as char).to_digit(16).ok_or(SyntaxError)?;
                v = (v << 4) | x;
            }
            let tail = &s[n..];
            if c == b'x' {
                // \x escapes are single bytes, not runes.
                return Ok((Unquoted::Byte(v as u8), tail));
            }
            let r = char::from_u32(v).ok_or(SyntaxError)?;
            if r.is_ascii() {
                Ok((Unquoted::Byte(v as u8), tail))
            } else {
                Ok((Unquoted::Rune(r), tail))
            }
        }
        b'0'..=b'7' => {
            let mut v = u32::from(c - b'0');
            if s.len() < 2 {
                return Err(SyntaxError);
            }
            for &d in &s[..2] {
                if !(b'0'..=b'7').contains(&d) {
                    return Err(SyntaxError);
                }
                v = (v << 3) | u32::from(d - b'0');
            }
            if v > 255 {
                return Err(SyntaxError);
            }
            Ok((Unquoted::Byte(v as u8), &s[2..]))
        }
        _ => Err(SyntaxError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_examples() {
        assert_eq!(quote(b"hello world"), b"\"hello world\"");
        assert_eq!(quote(b"a\"b\\c"), b"\"a\\\"b\\\\c\"");
        assert_eq!(quote(b"\x07\x00\x7f\t"), b"\"\\a\\x00\\x7f\\t\"");
        assert_eq!(quote(b"\xff"), b"\"\\xff\"");
        assert_eq!(quote("\u{2028}é".as_bytes()), "\"\\u2028é\"".as_bytes());
        assert_eq!(quote("\u{e0001}".as_bytes()), b"\"\\U000e0001\"");
    }

    #[test]
    fn unquote_round_trips() {
        for s in [&b"x y"[..], b"\"", b"\xff\x00", "é\u{2028}".as_bytes(), b"`back`"] {
            assert_eq!(unquote(&quote(s)).ok(), Some(s.to_vec()));
        }
        assert_eq!(unquote(b"`a\rb`").ok(), Some(b"ab".to_vec()));
        assert_eq!(unquote(b"\"\\400\""), Err(SyntaxError));
        assert_eq!(unquote(b"\"\\ud800\""), Err(SyntaxError));
        assert_eq!(unquote(b"\"abc"), Err(SyntaxError));
        assert_eq!(quoted_prefix_len(b"\"a b\"=rest"), Ok(5));
        assert_eq!(quoted_prefix_len(b"`a`x"), Ok(3));
    }
}
