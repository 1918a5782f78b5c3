//! A zip reader with the semantics of Go's `archive/zip`, for hashing module zips.
//!
//! dirhash hashes what Go's `archive/zip` reads, so this reader makes the same
//! decisions: the end-of-central-directory search (1 KiB, then 65 KiB), zip64
//! records, the base-offset correction for prefixed archives, the lenient end
//! of the central directory, local headers read only for their lengths, data
//! descriptors, and the per-entry checks of Go's `checksumReader` (no more
//! bytes than declared, exactly as many as declared, CRC-32). Errors are Go's
//! words (`zip: not a valid zip file`, `zip: checksum error`, `unexpected EOF`).
//!
//! Nothing here trusts a size from the archive: entries are streamed in fixed
//! chunks, never buffered whole, the central directory is read through a small
//! buffer, and decompressed output is bounded by the declared size, by the
//! caller's budget, and by the deflate ratio.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;

use flate2::{Decompress, FlushDecompress, Status};

const FILE_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const DIRECTORY_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const DIRECTORY_END_SIGNATURE: u32 = 0x0605_4b50;
const DIRECTORY64_LOC_SIGNATURE: u32 = 0x0706_4b50;
const DIRECTORY64_END_SIGNATURE: u32 = 0x0606_4b50;
const DATA_DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
const FILE_HEADER_LEN: u64 = 30;
const DIRECTORY_HEADER_LEN: usize = 46;
const DIRECTORY_END_LEN: usize = 22;
const DIRECTORY64_LOC_LEN: u64 = 20;
const DIRECTORY64_END_LEN: usize = 56;
const DATA_DESCRIPTOR_LEN: u64 = 16;
const ZIP64_EXTRA_ID: u16 = 0x0001;
const CHUNK: usize = 64 * 1024;

/// Why a zip could not be read; the messages are Go's `archive/zip` and `compress/flate` errors.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// `zip.ErrFormat`.
    #[error("zip: not a valid zip file")]
    Format,
    /// `zip.ErrAlgorithm`: a compression method other than store and deflate.
    #[error("zip: unsupported compression algorithm")]
    Algorithm,
    /// `zip.ErrChecksum`: the CRC-32 of the content differs from the header's.
    #[error("zip: checksum error")]
    Checksum,
    /// The end-of-directory comment length runs past the file.
    #[error("zip: invalid comment length")]
    CommentLength,
    /// `io.ErrUnexpectedEOF`: an entry or header is cut short.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// `io.EOF` where a header was expected.
    #[error("EOF")]
    Eof,
    /// The deflate stream is corrupt.
    #[error("flate: corrupt input before offset {0}")]
    Corrupt(u64),
    /// The content is larger than the caller allows.
    #[error("uncompressed content exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One central-directory entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed: u64,
    uncompressed: u64,
    header_offset: i128,
}

impl Entry {
    /// The uncompressed size the central directory declares.
    pub(crate) fn uncompressed(&self) -> u64 {
        self.uncompressed
    }
}

/// An open zip file and its central directory.
#[derive(Debug)]
pub(crate) struct ZipReader {
    file: File,
    name: String,
    size: u64,
    pub(crate) entries: Vec<Entry>,
}

thread_local! {
    /// One output buffer per thread, reused across entries.
    static OUT_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; CHUNK]);
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64le(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Go's `os.File.ReadAt`: a short read at the end of the file is `io.EOF`.
fn read_at(file: &File, name: &str, buf: &mut [u8], off: i128) -> Result<(), ZipError> {
    let off =
        u64::try_from(off).map_err(|_| ZipError::Io(io::Error::other(format!("readat {name}: negative offset"))))?;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => return Err(ZipError::Eof),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A window of the file read positionally (Go's `io.SectionReader`).
struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.end - self.pos).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn section(file: &File, off: i128, len: u64, size: u64) -> Section<'_> {
    // Offsets outside the file read as an immediate end of file, as in Go.
    let pos = u64::try_from(off).unwrap_or(u64::MAX).min(size);
    Section { file, pos, end: pos.saturating_add(len).min(size) }
}

/// Go's `io.ReadFull`: nothing read is `EOF`, a part is `unexpected EOF`.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<(), ZipError> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => return Err(if done == 0 { ZipError::Eof } else { ZipError::UnexpectedEof }),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

struct DirectoryEnd {
    records: u64,
    dir_size: u64,
    dir_offset: u64,
}

impl ZipReader {
    /// Opens a zip and reads its central directory, as Go's `zip.OpenReader`.
    pub(crate) fn open(file: File, name: &str) -> Result<ZipReader, ZipError> {
        let size = file.metadata()?.len();
        let (end, base) = read_directory_end(&file, name, size)?;
        let mut entries = Vec::new();
        let start = base + i128::from(end.dir_offset);
        let mut buf = BufReader::with_capacity(CHUNK, section(&file, start, size, size));
        let last_err = loop {
            match read_directory_header(&mut buf) {
                Ok(mut e) => {
                    e.header_offset += base;
                    entries.push(e);
                }
                Err(e @ (ZipError::Format | ZipError::UnexpectedEof)) => break e,
                Err(e) => return Err(e),
            }
        };
        // Go compares only the low 16 bits of the count.
        if entries.len() as u16 != end.records as u16 {
            return Err(last_err);
        }
        Ok(ZipReader { file, name: name.to_string(), size, entries })
    }

    /// Streams the content of an entry to `sink`, with the checks of Go's
    /// `File.Open` and `checksumReader`. `budget` is decreased by the bytes
    /// produced; running out is [`ZipError::TooLarge`] with `limit`.
    pub(crate) fn read_entry(
        &self,
        e: &Entry,
        budget: &mut u64,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), ZipError> {
        let mut hdr = [0u8; FILE_HEADER_LEN as usize];
        read_at(&self.file, &self.name, &mut hdr, e.header_offset)?;
        if u32le(&hdr, 0) != FILE_HEADER_SIGNATURE {
            return Err(ZipError::Format);
        }
        let body =
            e.header_offset + i128::from(FILE_HEADER_LEN) + i128::from(u16le(&hdr, 26)) + i128::from(u16le(&hdr, 28));
        if e.name.ends_with(b"/") {
            return if e.uncompressed != 0 { Err(ZipError::Format) } else { Ok(()) };
        }
        let mut src = section(&self.file, body, e.compressed, self.size);
        let mut crc = crc32fast::Hasher::new();
        let mut nread: u64 = 0;
        let mut emit = |chunk: &[u8], budget: &mut u64| -> Result<(), ZipError> {
            crc.update(chunk);
            nread += chunk.len() as u64;
            if nread > e.uncompressed {
                return Err(ZipError::Format);
            }
            if chunk.len() as u64 > *budget {
                return Err(ZipError::TooLarge { limit });
            }
            *budget -= chunk.len() as u64;
            sink(chunk);
            Ok(())
        };
        OUT_BUF.with(|out| -> Result<(), ZipError> {
            let mut out = out.borrow_mut();
            match e.method {
                0 => loop {
                    let n = src.read(&mut out)?;
                    if n == 0 {
                        return Ok(());
                    }
                    emit(&out[..n], budget)?;
                },
                8 => {
                    let mut inflate = Decompress::new(false);
                    let mut input = BufReader::with_capacity(CHUNK, src);
                    loop {
                        let avail = input.fill_buf()?;
                        let eof = avail.is_empty();
                        let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
                        let status = inflate
                            .decompress(avail, &mut out, FlushDecompress::None)
                            .map_err(|_| ZipError::Corrupt(inflate.total_in()))?;
                        let used = (inflate.total_in() - in_before) as usize;
                        let made = (inflate.total_out() - out_before) as usize;
                        input.consume(used);
                        emit(&out[..made], budget)?;
                        if status == Status::StreamEnd {
                            return Ok(());
                        }
                        if eof && made == 0 {
                            return Err(ZipError::UnexpectedEof);
                        }
                        if used == 0 && made == 0 {
                            return Err(ZipError::Corrupt(inflate.total_in()));
                        }
                    }
                }
                _ => Err(ZipError::Algorithm),
            }
        })?;
        if nread != e.uncompressed {
            return Err(ZipError::UnexpectedEof);
        }
        let sum = crc.finalize();
        if e.flags & 0x8 != 0 {
            let off = body + i128::from(e.compressed);
            let mut desc = section(&self.file, off, DATA_DESCRIPTOR_LEN, self.size);
            let mut b = [0u8; 12];
            let map_eof = |err: ZipError| match err {
                ZipError::Eof => ZipError::UnexpectedEof,
                other => other,
            };
            read_full(&mut desc, &mut b[..4]).map_err(map_eof)?;
            let off = if u32le(&b, 0) != DATA_DESCRIPTOR_SIGNATURE { 4 } else { 0 };
            read_full(&mut desc, &mut b[off..12]).map_err(map_eof)?;
            if u32le(&b, 0) != e.crc32 || sum != e.crc32 {
                return Err(ZipError::Checksum);
            }
        } else if e.crc32 != 0 && sum != e.crc32 {
            return Err(ZipError::Checksum);
        }
        Ok(())
    }
}

fn read_directory_end(file: &File, name: &str, size: u64) -> Result<(DirectoryEnd, i128), ZipError> {
    let mut found = None;
    for (i, want) in [1024u64, 65 * 1024].into_iter().enumerate() {
        let blen = want.min(size);
        let mut buf = vec![0u8; blen as usize];
        match read_at(file, name, &mut buf, i128::from(size - blen)) {
            Ok(()) | Err(ZipError::Eof) => {}
            Err(e) => return Err(e),
        }
        if let Some(p) = find_signature(&buf) {
            found = Some((buf[p..].to_vec(), size - blen + p as u64));
            break;
        }
        if i == 1 || blen == size {
            return Err(ZipError::Format);
        }
    }
    let Some((buf, mut end_offset)) = found else { return Err(ZipError::Format) };
    let mut d = DirectoryEnd {
        records: u64::from(u16le(&buf, 10)),
        dir_size: u64::from(u32le(&buf, 12)),
        dir_offset: u64::from(u32le(&buf, 16)),
    };
    let comment_len = usize::from(u16le(&buf, 20));
    if comment_len > buf.len() - DIRECTORY_END_LEN {
        return Err(ZipError::CommentLength);
    }
    if d.records == 0xffff || d.dir_size == 0xffff || d.dir_offset == 0xffff_ffff {
        if let Some(p) = find_directory64_end(file, name, end_offset)? {
            end_offset = p;
            read_directory64_end(file, name, p, &mut d)?;
        }
    }
    let max = i64::MAX as u64;
    if d.dir_size > max || d.dir_offset > max {
        return Err(ZipError::Format);
    }
    let mut base = i128::from(end_offset) - i128::from(d.dir_size) - i128::from(d.dir_offset);
    let o = base + i128::from(d.dir_offset);
    if o < 0 || o >= i128::from(size) {
        return Err(ZipError::Format);
    }
    if base > 0 {
        let off = i128::from(d.dir_offset);
        let mut r = section(file, off, size.saturating_sub(d.dir_offset), size);
        if read_directory_header(&mut r).is_ok() {
            base = 0;
        }
    }
    Ok((d, base))
}

fn find_signature(b: &[u8]) -> Option<usize> {
    if b.len() < DIRECTORY_END_LEN {
        return None;
    }
    for i in (0..=b.len() - DIRECTORY_END_LEN).rev() {
        if b[i] == b'P' && b[i + 1] == b'K' && b[i + 2] == 0x05 && b[i + 3] == 0x06 {
            let n = usize::from(u16le(b, i + DIRECTORY_END_LEN - 2));
            if n + DIRECTORY_END_LEN + i > b.len() {
                return None;
            }
            debug_assert_eq!(u32le(b, i), DIRECTORY_END_SIGNATURE);
            return Some(i);
        }
    }
    None
}

fn find_directory64_end(file: &File, name: &str, end_offset: u64) -> Result<Option<u64>, ZipError> {
    let Some(loc) = end_offset.checked_sub(DIRECTORY64_LOC_LEN) else { return Ok(None) };
    let mut buf = [0u8; DIRECTORY64_LOC_LEN as usize];
    read_at(file, name, &mut buf, i128::from(loc))?;
    if u32le(&buf, 0) != DIRECTORY64_LOC_SIGNATURE || u32le(&buf, 4) != 0 || u32le(&buf, 16) != 1 {
        return Ok(None);
    }
    let p = u64le(&buf, 8);
    // Go converts to int64 and tests p >= 0.
    Ok((p <= i64::MAX as u64).then_some(p))
}

fn read_directory64_end(file: &File, name: &str, offset: u64, d: &mut DirectoryEnd) -> Result<(), ZipError> {
    let mut buf = [0u8; DIRECTORY64_END_LEN];
    read_at(file, name, &mut buf, i128::from(offset))?;
    if u32le(&buf, 0) != DIRECTORY64_END_SIGNATURE {
        return Err(ZipError::Format);
    }
    d.records = u64le(&buf, 32);
    d.dir_size = u64le(&buf, 40);
    d.dir_offset = u64le(&buf, 48);
    Ok(())
}

fn read_directory_header(r: &mut impl Read) -> Result<Entry, ZipError> {
    let mut b = [0u8; DIRECTORY_HEADER_LEN];
    read_full(r, &mut b)?;
    if u32le(&b, 0) != DIRECTORY_HEADER_SIGNATURE {
        return Err(ZipError::Format);
    }
    let name_len = usize::from(u16le(&b, 28));
    let extra_len = usize::from(u16le(&b, 30));
    let comment_len = usize::from(u16le(&b, 32));
    let mut d = vec![0u8; name_len + extra_len + comment_len];
    if !d.is_empty() {
        read_full(r, &mut d).map_err(|e| match e {
            ZipError::Eof => ZipError::UnexpectedEof,
            other => other,
        })?;
    }
    let mut e = Entry {
        name: d[..name_len].to_vec(),
        flags: u16le(&b, 8),
        method: u16le(&b, 10),
        crc32: u32le(&b, 16),
        compressed: u64::from(u32le(&b, 20)),
        uncompressed: u64::from(u32le(&b, 24)),
        header_offset: i128::from(u32le(&b, 42)),
    };
    let mut need_usize = e.uncompressed == 0xffff_ffff;
    let mut need_csize = e.compressed == 0xffff_ffff;
    let mut need_offset = e.header_offset == 0xffff_ffff;
    let mut extra = &d[name_len..name_len + extra_len];
    while extra.len() >= 4 {
        let tag = u16le(extra, 0);
        let size = usize::from(u16le(extra, 2));
        extra = &extra[4..];
        if extra.len() < size {
            break;
        }
        let mut field = &extra[..size];
        extra = &extra[size..];
        if tag == ZIP64_EXTRA_ID {
            let mut take = |need: &mut bool| -> Result<Option<u64>, ZipError> {
                if !*need {
                    return Ok(None);
                }
                *need = false;
                if field.len() < 8 {
                    return Err(ZipError::Format);
                }
                let v = u64le(field, 0);
                field = &field[8..];
                Ok(Some(v))
            };
            if let Some(v) = take(&mut need_usize)? {
                e.uncompressed = v;
            }
            if let Some(v) = take(&mut need_csize)? {
                e.compressed = v;
            }
            if let Some(v) = take(&mut need_offset)? {
                // Go stores it as int64: huge values become negative offsets.
                e.header_offset = i128::from(v as i64);
            }
        }
    }
    if need_csize || need_offset {
        return Err(ZipError::Format);
    }
    Ok(e)
}
