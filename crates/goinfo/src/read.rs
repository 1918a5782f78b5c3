//! Finding and decoding the build info blob, as Go's `debug/buildinfo.readRawBuildInfo`.

use bstr::BString;

use super::exe::{self, Exe, ExeError};
use super::modinfo;
use super::source::{Source, Window};
use super::ReadError;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const ALIGN: u64 = 16;
const HEADER_SIZE: u64 = 32;
const CHUNK: u64 = 1 << 20;
const MAX_VARINT_LEN: u64 = 10;

impl From<ExeError> for ReadError {
    fn from(e: ExeError) -> Self {
        match e {
            ExeError::Unrecognized => ReadError::UnrecognizedFormat,
            ExeError::AddressNotMapped => ReadError::AddressNotMapped,
            ExeError::Io(e) => ReadError::Io(e),
        }
    }
}

/// Outcome of Go's `readData`: exactly `size` bytes, or EOF.
enum Data {
    Bytes(Vec<u8>),
    Eof,
}

/// Go's `readData(x, addr, size)`: it yields all `size` bytes or reports EOF.
fn read_data<S: Source + ?Sized>(src: &S, x: &Exe, addr: u64, size: u64) -> Result<Data, ReadError> {
    let w = x.data_window(addr)?;
    read_window(src, &w, size)
}

fn read_window<S: Source + ?Sized>(src: &S, w: &Window, size: u64) -> Result<Data, ReadError> {
    if size > i64::MAX as u64 {
        return Ok(Data::Eof);
    }
    if w.uninitialized && w.size > 0 {
        return Err(ReadError::Io(std::io::Error::other(super::source::UNINITIALIZED)));
    }
    if w.available(src, 0) < size {
        return Ok(Data::Eof);
    }
    let mut buf = vec![0u8; size as usize];
    if w.read_at(src, 0, &mut buf).map_err(ReadError::Io)? < buf.len() {
        return Ok(Data::Eof);
    }
    Ok(Data::Bytes(buf))
}

/// The raw version and module-info strings, sentinels removed.
pub(crate) fn raw_build_info<S: Source + ?Sized>(src: &S) -> Result<(exe::Format, Vec<u8>, Vec<u8>), ReadError> {
    let x = exe::open(src)?;
    let (data_addr, data_size) = x.data_start;
    if data_size == 0 {
        return Err(ReadError::NotGoExecutable);
    }
    let addr = search_magic(src, &x, data_addr, data_size)?;
    let header = match read_data(src, &x, addr, HEADER_SIZE)? {
        Data::Bytes(b) => b,
        Data::Eof => return Err(ReadError::NotGoExecutable),
    };
    let flags = header[15];
    let (vers, mut modinfo) = if flags & 0x2 == 0x2 {
        let (vers, next) = decode_string(src, &x, addr.wrapping_add(HEADER_SIZE))?;
        let (modinfo, _) = decode_string(src, &x, next)?;
        (vers, modinfo)
    } else {
        // Before Go 1.18: pointers to Go string headers.
        let ptr_size = header[14] as usize;
        let big = flags & 0x1 == 0x1;
        if ptr_size != 4 && ptr_size != 8 {
            return Err(ReadError::NotGoExecutable);
        }
        let read_ptr = |b: &[u8]| -> u64 {
            match (ptr_size, big) {
                (4, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
                (4, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
                (_, true) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                (_, false) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            }
        };
        let vers = read_string(src, &x, ptr_size, &read_ptr, read_ptr(&header[16..]));
        let modinfo = read_string(src, &x, ptr_size, &read_ptr, read_ptr(&header[16 + ptr_size..]));
        (vers, modinfo)
    };
    if vers.is_empty() {
        return Err(ReadError::NotGoExecutable);
    }
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        // Strip the 16-byte sentinels around the module info.
        modinfo = modinfo[16..modinfo.len() - 16].to_vec();
    } else {
        modinfo.clear();
    }
    Ok((x.format, vers, modinfo))
}

/// Reads and parses the build info, as Go's `debug/buildinfo.Read`.
pub(crate) fn build_info<S: Source + ?Sized>(src: &S) -> Result<(exe::Format, super::BuildInfo), ReadError> {
    let (format, vers, modinfo) = raw_build_info(src)?;
    let mut bi = modinfo::parse(&modinfo)?;
    bi.go_version = BString::from(vers);
    Ok((format, bi))
}

fn decode_string<S: Source + ?Sized>(src: &S, x: &Exe, addr: u64) -> Result<(Vec<u8>, u64), ReadError> {
    let b = match read_data(src, x, addr, MAX_VARINT_LEN)? {
        Data::Bytes(b) => b,
        Data::Eof => return Err(ReadError::NotGoExecutable),
    };
    let Some((length, n)) = uvarint(&b) else {
        return Err(ReadError::NotGoExecutable);
    };
    let addr = addr.wrapping_add(n as u64);
    match read_data(src, x, addr, length)? {
        Data::Bytes(b) => Ok((b, addr.wrapping_add(length))),
        Data::Eof => Err(ReadError::NotGoExecutable),
    }
}

/// Go's `readString`: any failure yields the empty string.
fn read_string<S: Source + ?Sized>(
    src: &S,
    x: &Exe,
    ptr_size: usize,
    read_ptr: &dyn Fn(&[u8]) -> u64,
    addr: u64,
) -> Vec<u8> {
    let Ok(Data::Bytes(hdr)) = read_data(src, x, addr, 2 * ptr_size as u64) else {
        return Vec::new();
    };
    let data_addr = read_ptr(&hdr);
    let data_len = read_ptr(&hdr[ptr_size..]);
    match read_data(src, x, data_addr, data_len) {
        Ok(Data::Bytes(b)) => b,
        _ => Vec::new(),
    }
}

/// Go's `binary.Uvarint`: the value and bytes used, or `None` on overflow or truncation.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut s = 0u32;
    for (i, &byte) in b.iter().enumerate() {
        if i == 10 {
            return None;
        }
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return None;
            }
            return Some((x | (u64::from(byte) << s), i + 1));
        }
        x |= u64::from(byte & 0x7f) << s;
        s += 7;
    }
    None
}

/// Go's `searchMagic`: the first 16-byte-aligned magic in `[start, start+size)`.
fn search_magic<S: Source + ?Sized>(src: &S, x: &Exe, start: u64, size: u64) -> Result<u64, ReadError> {
    let Some(end) = start.checked_add(size) else {
        return Err(ReadError::UnrecognizedFormat);
    };
    let mut start = match start.checked_add(ALIGN - 1) {
        Some(s) => s & !(ALIGN - 1),
        None => return Err(ReadError::NotGoExecutable),
    };
    if start >= end {
        return Err(ReadError::NotGoExecutable);
    }
    let mut buf = Vec::new();
    while start < end {
        let remaining = end - start;
        let chunk = CHUNK.min(remaining);
        buf.clear();
        buf.resize(chunk as usize, 0);
        let w = x.data_window(start)?;
        let n = w.read_at(src, 0, &mut buf).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::NotGoExecutable);
        }
        // Mirrors Go exactly, including that `i` stays relative to the re-sliced
        // data when a misaligned magic was skipped.
        let mut data = &buf[..n];
        while !data.is_empty() {
            let Some(i) = memchr::memmem::find(data, MAGIC) else {
                break;
            };
            if remaining - (i as u64) < HEADER_SIZE {
                return Err(ReadError::NotGoExecutable);
            }
            if (i as u64) % ALIGN != 0 {
                let next = (i + ALIGN as usize - 1) & !(ALIGN as usize - 1);
                if next > data.len() {
                    return Err(ReadError::NotGoExecutable);
                }
                data = &data[next..];
                continue;
            }
            return Ok(start + i as u64);
        }
        start += chunk;
    }
    Err(ReadError::NotGoExecutable)
}

#[cfg(test)]
mod tests {
    use super::uvarint;

    #[test]
    fn uvarint_matches_go() {
        assert_eq!(uvarint(&[0x05]), Some((5, 1)));
        assert_eq!(uvarint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[0xff; 10]), None);
        assert_eq!(uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Some((u64::MAX, 10)));
    }
}
