//! Gzip members (RFC 1952) inflated without checking their CRC-32, for a
//! layer whose blob digest is checked: the digest pins every compressed byte,
//! so the CRC of the decompressed bytes checks nothing more, and computing it
//! is a pass over every byte (about 6 % of `reprove audit --list`). Headers,
//! the deflate streams and each member's length (ISIZE) are still checked, and
//! members follow one another as for `flate2`'s `MultiGzDecoder`.

use std::io::{self, BufRead, Read};

use flate2::bufread::DeflateDecoder;

enum State<R> {
    /// Before a member's header; `first`: no member read yet (an empty stream is an error).
    Header { reader: R, first: bool },
    /// In a member's deflate stream; `size`: bytes it produced (mod 2^32).
    Body { inflate: Box<DeflateDecoder<R>>, size: u32 },
    /// After the last member.
    Done(R),
    /// After an error (also while a state is moved).
    Failed,
}

/// Multi-member gzip, inflated, without the CRC-32 check.
pub(crate) struct UncheckedGunzip<R> {
    state: State<R>,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("invalid gzip {what}"))
}

fn byte<R: BufRead>(r: &mut R) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// Skips a zero-terminated header field (FNAME, FCOMMENT) without buffering it.
fn skip_zero_terminated<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "gzip header ends in a name or comment"));
        }
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            r.consume(end + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
}

fn skip<R: BufRead>(r: &mut R, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut r.take(n), &mut io::sink())?;
    if skipped == n {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "gzip header ends in its extra field"))
    }
}

/// Reads a member's header (RFC 1952 2.3), leaving `r` at its deflate stream.
fn header<R: BufRead>(r: &mut R) -> io::Result<()> {
    let mut fixed = [0u8; 10];
    r.read_exact(&mut fixed)?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b {
        return Err(invalid("header (magic)"));
    }
    if fixed[2] != 8 {
        return Err(invalid("header (compression method)"));
    }
    let flags = fixed[3];
    if flags & 0xe0 != 0 {
        return Err(invalid("header (reserved flags)"));
    }
    if flags & 0x04 != 0 {
        let len = u16::from_le_bytes([byte(r)?, byte(r)?]);
        skip(r, u64::from(len))?;
    }
    if flags & 0x08 != 0 {
        skip_zero_terminated(r)?;
    }
    if flags & 0x10 != 0 {
        skip_zero_terminated(r)?;
    }
    if flags & 0x02 != 0 {
        skip(r, 2)?;
    }
    Ok(())
}

impl<R: BufRead> UncheckedGunzip<R> {
    pub(crate) fn new(reader: R) -> UncheckedGunzip<R> {
        UncheckedGunzip { state: State::Header { reader, first: true } }
    }

    /// The compressed stream, where the decoder left it.
    pub(crate) fn into_inner(self) -> Option<R> {
        match self.state {
            State::Header { reader, .. } | State::Done(reader) => Some(reader),
            State::Body { inflate, .. } => Some(inflate.into_inner()),
            State::Failed => None,
        }
    }

    fn step(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Header { mut reader, first } => {
                // After a member, the end of the stream ends it; else another member follows.
                if !first && reader.fill_buf()?.is_empty() {
                    self.state = State::Done(reader);
                    return Ok(Some(0));
                }
                header(&mut reader)?;
                self.state = State::Body { inflate: Box::new(DeflateDecoder::new(reader)), size: 0 };
                Ok(None)
            }
            State::Body { mut inflate, size } => {
                let n = inflate.read(buf)?;
                if n > 0 {
                    // ISIZE is the length modulo 2^32: the truncation is the point.
                    #[allow(clippy::cast_possible_truncation)]
                    let size = size.wrapping_add(n as u32);
                    self.state = State::Body { inflate, size };
                    return Ok(Some(n));
                }
                // The deflate stream ended: the trailer (CRC-32, not checked; ISIZE).
                let mut reader = inflate.into_inner();
                let mut trailer = [0u8; 8];
                reader.read_exact(&mut trailer)?;
                if u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) != size {
                    return Err(invalid("trailer (length)"));
                }
                self.state = State::Header { reader, first: false };
                Ok(None)
            }
            State::Done(reader) => {
                self.state = State::Done(reader);
                Ok(Some(0))
            }
            State::Failed => Err(io::Error::other("the gzip stream failed before")),
        }
    }
}

impl<R: BufRead> Read for UncheckedGunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(n) = self.step(buf)? {
                return Ok(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut b = flate2::GzBuilder::new().extra(vec![1, 2, 3]).comment("c");
        if let Some(name) = name {
            b = b.filename(name);
        }
        let mut e = b.write(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn inflate(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        UncheckedGunzip::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn members_inflate_as_flate2_does() {
        let a: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut two = gzip(&a, Some("a"));
        two.extend(gzip(b"second member", None));
        let mut expected = Vec::new();
        flate2::bufread::MultiGzDecoder::new(&two[..]).read_to_end(&mut expected).unwrap();
        assert_eq!(inflate(&two).unwrap(), expected);
        assert_eq!(inflate(&gzip(b"", None)).unwrap(), b"");
    }

    #[test]
    fn a_wrong_crc_is_not_checked_but_everything_else_is() {
        let good = gzip(b"hello, layer", Some("n"));
        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 0xff;
        assert_eq!(inflate(&bad_crc).unwrap(), b"hello, layer");
        let mut bad_size = good.clone();
        let last = bad_size.len() - 1;
        bad_size[last] ^= 1;
        assert!(inflate(&bad_size).is_err());
        assert!(inflate(&good[..good.len() - 3]).is_err(), "truncated trailer");
        assert!(inflate(&good[..good.len() - 12]).is_err(), "truncated stream");
        assert!(inflate(b"").is_err(), "no member");
        // What follows the last member is refused as flate2's MultiGzDecoder refuses it.
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage after");
        let flate2 = flate2::bufread::MultiGzDecoder::new(&trailing[..]).read_to_end(&mut Vec::new()).is_err();
        assert_eq!(inflate(&trailing).is_err(), flate2);
        let mut method = good;
        method[2] = 7;
        assert!(inflate(&method).is_err());
    }
}
