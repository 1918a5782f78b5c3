//! Positional reads over a file or a byte slice, with Go's `io.SectionReader` semantics.
//!
//! Go's readers only touch the headers and the data segment of an executable, so
//! reprove reads files positionally rather than loading them whole.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Something that can be read at an offset, like Go's `io.ReaderAt`.
pub trait Source {
    /// Reads into `buf` at `off`; returns how many bytes were read, fewer only at the end.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// The total length in bytes.
    fn len(&self) -> u64;
    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Source for [u8] {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(off) else {
            return Ok(0);
        };
        if start >= <[u8]>::len(self) {
            return Ok(0);
        }
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

/// A file and its length, read with `pread`.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Wraps an open file.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        // Past the end is EOF, as for bytes and Go's SectionReader; pread would say
        // EINVAL for an offset beyond 2^63, which Go's int64 offsets make negative.
        if off >= self.len {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// Reads exactly `buf.len()` bytes at `off`, or fails with `UnexpectedEof`.
pub(crate) fn read_exact_at<S: Source + ?Sized>(src: &S, off: u64, buf: &mut [u8]) -> io::Result<()> {
    if src.read_at(off, buf)? == buf.len() {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

/// Reads `len` bytes at `off` into a new buffer, refusing lengths the source cannot hold
/// before allocating (a hostile header cannot make us allocate more than the file).
pub(crate) fn read_vec_at<S: Source + ?Sized>(src: &S, off: u64, len: u64) -> io::Result<Vec<u8>> {
    // Like Go's saferio.ReadDataAt, a zero-length read succeeds anywhere (but at a
    // negative int64 offset).
    if len == 0 {
        return if off > i64::MAX as u64 { Err(io::ErrorKind::InvalidInput.into()) } else { Ok(Vec::new()) };
    }
    if off.checked_add(len).is_none_or(|end| end > src.len()) {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut buf = vec![0; len as usize];
    read_exact_at(src, off, &mut buf)?;
    Ok(buf)
}

/// Go's error for a read inside a section that has no file data (PE `.bss`, XCOFF
/// sections with no file pointer): such sections are not zeros to Go.
pub(crate) const UNINITIALIZED: &str = "unexpected read from section with uninitialized data";

/// A window of a source (Go's `io.SectionReader`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Offset of the window in the source.
    pub(crate) base: u64,
    /// Length of the window.
    pub(crate) size: u64,
    /// The section has no file data: every read inside it fails, as in Go.
    pub(crate) uninitialized: bool,
    /// Absolute end in the source past which reads come up short (the end of a
    /// fat Mach-O architecture, which Go reads through a window of its own).
    pub(crate) limit: u64,
}

impl Window {
    pub(crate) fn new(base: u64, size: u64) -> Self {
        Window { base, size, uninitialized: false, limit: u64::MAX }
    }

    /// Reads like `SectionReader.ReadAt`: returns the bytes read, fewer at the window's
    /// or the source's end.
    pub(crate) fn read_at<S: Source + ?Sized>(&self, src: &S, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        if off >= self.size {
            return Ok(0);
        }
        if self.uninitialized {
            return Err(io::Error::other(UNINITIALIZED));
        }
        let max = usize::try_from(self.size - off).unwrap_or(usize::MAX);
        let Some(at) = self.base.checked_add(off) else {
            return Ok(0);
        };
        let before_limit = usize::try_from(self.limit.saturating_sub(at)).unwrap_or(usize::MAX);
        let want = buf.len().min(max).min(before_limit);
        src.read_at(at, &mut buf[..want])
    }

    /// How many bytes from `off` a read could return at most.
    pub(crate) fn available<S: Source + ?Sized>(&self, src: &S, off: u64) -> u64 {
        let in_window = self.size.saturating_sub(off);
        let at = self.base.saturating_add(off);
        let in_source = src.len().min(self.limit).saturating_sub(at);
        in_window.min(in_source)
    }
}

/// A part of another source, starting at `base` and `len` bytes long.
#[derive(Debug)]
pub(crate) struct Sub<'a, S: ?Sized> {
    pub(crate) inner: &'a S,
    pub(crate) base: u64,
    pub(crate) len: u64,
}

impl<S: Source + ?Sized> Source for Sub<'_, S> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        if off >= self.len {
            return Ok(0);
        }
        let Some(at) = self.base.checked_add(off) else {
            return Ok(0);
        };
        let want = buf.len().min(usize::try_from(self.len - off).unwrap_or(usize::MAX));
        self.inner.read_at(at, &mut buf[..want])
    }

    fn len(&self) -> u64 {
        self.len.min(self.inner.len().saturating_sub(self.base))
    }
}
