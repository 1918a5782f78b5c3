//! The self-check: a Go binary's content ID recomputed exactly as `go tool buildid -w`
//! recomputes it, so that a binary can be checked against itself, without a rebuild.
//!
//! A Go build ID ends in a *content ID*: `go build` hashes the linked file with every
//! occurrence of the build ID replaced by zeros, then writes the hash's first 120 bits,
//! base64-encoded, over the ID's last part (`cmd/go/internal/work.updateBuildID`). If a
//! byte is changed after linking, or data is appended, the hash no longer matches.
//!
//! What is hashed follows `cmd/internal/buildid.FindAndHash` of Go 1.26:
//!
//! - the whole file, read front to back, with each occurrence of the build ID string
//!   (leftmost first, not overlapping) replaced by zeros;
//! - with the Mach-O code signature (`LC_CODE_SIGNATURE`'s data) read as zeros, when
//!   `debug/macho` accepts the file, since it hashes the file including the ID;
//! - with the host build ID read as zeros (`excludeHostBuildID`): the ELF
//!   `.note.gnu.build-id` section past its 16-byte header when `debug/elf` accepts the
//!   file, else the Mach-O `LC_UUID` data, since `-B gobuildid` derives them from the
//!   Go build ID. These zeroed bytes are not searched for the ID either, as in Go.
//!
//! The content ID is the first 15 bytes of the SHA-256 in Go's URL-safe base64
//! alphabet without padding (`HashToString`), 20 characters.
//!
//! Go reads through a buffer of 31 KiB plus a fringe as long as the ID (rounded up to
//! 128 bytes) carried from one read to the next, so that an ID split between two reads
//! is still found. Any buffer with a fringe at least as long as the ID finds the same
//! occurrences (an occurrence that starts before the fringe ends inside the buffer);
//! this module reads 64 KiB at a time and keeps Go's fringe: one pass over the file,
//! memory bounded by the buffer.
//!
//! Where `go tool buildid -w` would refuse the file, there is nothing to check
//! ([`SelfCheck::NoBuildId`]): no build ID, one without a `/` (Go's "legacy format",
//! or `-ldflags=-buildid=X`), one whose last part is not 20 characters (Go's "length
//! mismatch"). This module also asks that the last part be in the alphabet
//! `HashToString` writes, and that the ID occur in the hashed bytes (otherwise Go finds
//! nothing to rewrite): an ELF file with no Go note gives its raw GNU build ID as its
//! "build ID", which is not a content ID. An ID longer than Go's 31 KiB buffer is
//! [`ReadError::MalformedBuildId`] (Go: "buffer too small").
//!
//! A universal (fat) Mach-O file has no build ID of its own: `lipo` puts thin files
//! side by side, so each architecture is checked as the thin file it was linked as.
//! The fat header and the padding between architectures are covered by no content ID.
//!
//! A packed binary (UPX and the like) no longer matches its content ID either; before
//! concluding that a file was modified, the check looks for a packer's section names,
//! UPX's `UPX!` marker in the file's first or last 4 KiB, and the entropy of the file
//! ([`SelfCheck::Packed`]).

use std::io;

use bstr::{BString, ByteSlice};
use sha2::{Digest, Sha256};

use super::buildid::read_go_build_id;
use super::exe;
use super::source::{read_exact_at, Source, Sub};
use super::ReadError;

/// What the self-check concluded about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfCheck {
    /// The content ID matches: no byte changed since `go build` linked the file
    /// (or since the last `go tool buildid -w`).
    Intact {
        /// The whole Go build ID, as `go tool buildid` prints it.
        build_id: BString,
    },
    /// The content ID does not match: the file was changed after it was linked.
    ModifiedAfterLink {
        /// The whole Go build ID, as `go tool buildid` prints it.
        build_id: BString,
        /// The content ID the file records (the build ID's last part).
        recorded: String,
        /// The content ID of the file as it is.
        computed: String,
        /// The offset of the first changed byte, when a reference to compare with
        /// (such as a rebuilt binary) located it ([`first_mismatch`]); the file
        /// alone cannot tell where it was changed.
        first_mismatch: Option<u64>,
    },
    /// No content ID to check: built with `-ldflags=-buildid=` (or another ID than
    /// Go's), or not by `go build`.
    NoBuildId,
    /// Packed by an executable packer, which rewrites the whole file.
    Packed {
        /// The packer: `upx`, another packer's name, or `unknown` when only the
        /// entropy says so.
        packer: String,
        /// What shows it: section names, the packer's marker, the entropy.
        evidence: String,
    },
}

impl SelfCheck {
    /// The outcome's stable code: `intact`, `modified-after-link`, `no-build-id`, `packed`.
    pub fn code(&self) -> &'static str {
        match self {
            SelfCheck::Intact { .. } => "intact",
            SelfCheck::ModifiedAfterLink { .. } => "modified-after-link",
            SelfCheck::NoBuildId => "no-build-id",
            SelfCheck::Packed { .. } => "packed",
        }
    }
}

/// Checks a Go binary against its own content ID (see the module documentation).
///
/// Costs one read of the file, plus the headers; a file that does not match is
/// also sampled for entropy (at most 1 MiB more) before it is called modified.
pub fn self_check<S: Source + ?Sized>(src: &S) -> Result<SelfCheck, ReadError> {
    let outcome = match fat_slices(src)? {
        Some(slices) => {
            let mut first = None;
            let mut unchecked = false;
            let mut modified = None;
            for (base, len) in slices {
                match check_thin(&Sub { inner: src, base, len })? {
                    Thin::NoContentId => unchecked = true,
                    Thin::Checked { build_id, recorded, computed } if recorded == computed => {
                        first.get_or_insert(build_id);
                    }
                    Thin::Checked { build_id, recorded, computed } => {
                        modified =
                            Some(SelfCheck::ModifiedAfterLink { build_id, recorded, computed, first_mismatch: None });
                        break;
                    }
                }
            }
            match (modified, first) {
                (Some(m), _) => m,
                (None, Some(build_id)) if !unchecked => SelfCheck::Intact { build_id },
                _ => SelfCheck::NoBuildId,
            }
        }
        None => match check_thin(src)? {
            Thin::NoContentId => SelfCheck::NoBuildId,
            Thin::Checked { build_id, recorded, computed } if recorded == computed => SelfCheck::Intact { build_id },
            Thin::Checked { build_id, recorded, computed } => {
                SelfCheck::ModifiedAfterLink { build_id, recorded, computed, first_mismatch: None }
            }
        },
    };
    if matches!(outcome, SelfCheck::Intact { .. }) {
        return Ok(outcome);
    }
    Ok(packed(src)?.unwrap_or(outcome))
}

/// The offset of the first byte at which `a` and `b` differ, once the bytes a content
/// ID leaves out are zeroed in each (its own build ID occurrences, the host build ID,
/// the Mach-O code signature; per architecture in a fat Mach-O file); the shorter
/// file's length when one is a prefix of the other; `None` when they are the same.
///
/// For a reference that fails [`self_check`] and a rebuild of it that passes, this
/// is where the reference was changed after it was linked.
pub fn first_mismatch<S: Source + ?Sized, T: Source + ?Sized>(a: &S, b: &T) -> Result<Option<u64>, ReadError> {
    let (ids_a, ranges_a) = normalization(a)?;
    let (ids_b, ranges_b) = normalization(b)?;
    let mut na = Normalized::new(a, &ids_a, &ranges_a);
    let mut nb = Normalized::new(b, &ids_b, &ranges_b);
    let mut pa = Pending::default();
    let mut pb = Pending::default();
    let mut off = 0u64;
    loop {
        let more_a = pa.refill(&mut na).map_err(ReadError::Io)?;
        let more_b = pb.refill(&mut nb).map_err(ReadError::Io)?;
        let (x, y) = (pa.rest(), pb.rest());
        let n = x.len().min(y.len());
        if let Some(i) = x[..n].iter().zip(&y[..n]).position(|(p, q)| p != q) {
            return Ok(Some(off + i as u64));
        }
        off += n as u64;
        pa.pos += n;
        pb.pos += n;
        match (more_a, more_b) {
            (false, false) => return Ok(None),
            (true, true) => {}
            // One ended where the other goes on.
            _ => return Ok(Some(off)),
        }
    }
}

/// Go's `HashToString`: the first 120 bits of a hash in base64 (URL alphabet).
pub(crate) fn hash_to_string(h: &[u8; 32]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(20);
    for c in h[..15].chunks_exact(3) {
        let v = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            out.push(B64[((v >> shift) & 0x3f) as usize] as char);
        }
    }
    out
}

/// How long a content ID is, and the longest build ID Go's `FindAndHash` accepts.
const CONTENT_ID_LEN: usize = 20;
const GO_BUF_SIZE: usize = 31 * 1024;
/// How much is read at a time.
const READ_SIZE: usize = 64 * 1024;

/// The outcome for one thin file.
enum Thin {
    NoContentId,
    Checked { build_id: BString, recorded: String, computed: String },
}

fn check_thin<S: Source + ?Sized>(src: &S) -> Result<Thin, ReadError> {
    let Some(id) = read_go_build_id(src)? else {
        return Ok(Thin::NoContentId);
    };
    let Some(recorded) = content_id_of(&id) else {
        return Ok(Thin::NoContentId);
    };
    if id.len() > GO_BUF_SIZE {
        return Err(ReadError::MalformedBuildId);
    }
    let ranges = excluded_ranges(src);
    let ids = [id.to_vec()];
    let mut norm = Normalized::new(src, &ids, &ranges);
    let mut h = Sha256::new();
    while let Some(chunk) = norm.next_chunk().map_err(ReadError::Io)? {
        h.update(chunk);
    }
    if norm.matches == 0 {
        // Go would find nothing to rewrite: the "ID" is not one `go build` wrote.
        return Ok(Thin::NoContentId);
    }
    let computed = hash_to_string(&h.finalize().into());
    Ok(Thin::Checked { build_id: id, recorded, computed })
}

/// The content ID part of a build ID: after the last `/`, 20 characters of Go's alphabet.
fn content_id_of(id: &[u8]) -> Option<String> {
    let slash = id.rfind_byte(b'/')?;
    let last = &id[slash + 1..];
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    (last.len() == CONTENT_ID_LEN && last.iter().all(alphabet)).then(|| String::from_utf8_lossy(last).into_owned())
}

/// The byte ranges Go reads as zeros, `[start, end)` in Go's int64 arithmetic: the
/// Mach-O code signature and the host build ID.
fn excluded_ranges<S: Source + ?Sized>(src: &S) -> Vec<(i64, i64)> {
    let mut ranges = Vec::new();
    let macho = exe::macho_loads(src).ok();
    if let Some((off, size)) = macho.as_ref().and_then(|m| m.code_signature) {
        // Go adds the two uint32s before widening them.
        ranges.push((i64::from(off), i64::from(off.wrapping_add(size))));
    }
    match exe::parse_elf(src, 0) {
        Ok(f) => {
            if let Some((off, size)) = f.section_file(b".note.gnu.build-id") {
                let start = (off as i64).wrapping_add(16);
                ranges.push((start, start.wrapping_add(size.wrapping_sub(16) as i64)));
            }
        }
        Err(_) => {
            if let Some((off, len)) = macho.and_then(|m| m.uuid) {
                ranges.push((off as i64, (off as i64).wrapping_add(len as i64)));
            }
        }
    }
    ranges
}

/// The architectures of a universal Mach-O file, `(offset, size)`, when the file is
/// one whose every architecture is a Mach-O image inside it; `None` otherwise.
fn fat_slices<S: Source + ?Sized>(src: &S) -> Result<Option<Vec<(u64, u64)>>, ReadError> {
    const MAX_ARCHS: u64 = 32;
    let mut h = [0u8; 8];
    if src.read_at(0, &mut h).map_err(ReadError::Io)? < 8 {
        return Ok(None);
    }
    let entry: u64 = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
        0xcafe_babe => 20,
        0xcafe_babf => 32,
        _ => return Ok(None),
    };
    let narch = u64::from(u32::from_be_bytes([h[4], h[5], h[6], h[7]]));
    if narch == 0 || narch > MAX_ARCHS {
        return Ok(None);
    }
    let mut table = vec![0u8; (narch * entry) as usize];
    if src.read_at(8, &mut table).map_err(ReadError::Io)? < table.len() {
        return Ok(None);
    }
    let mut slices = Vec::new();
    for a in table.chunks_exact(entry as usize) {
        let be32 = |at: usize| u64::from(u32::from_be_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]]));
        let (off, size) =
            if entry == 20 { (be32(8), be32(12)) } else { ((be32(8) << 32) | be32(12), (be32(16) << 32) | be32(20)) };
        if off.checked_add(size).is_none_or(|end| end > src.len()) || size < 4 {
            return Ok(None);
        }
        let mut magic = [0u8; 4];
        read_exact_at(src, off, &mut magic).map_err(ReadError::Io)?;
        if u32::from_le_bytes(magic) & !1 != 0xfeed_face && u32::from_be_bytes(magic) & !1 != 0xfeed_face {
            return Ok(None);
        }
        slices.push((off, size));
    }
    Ok(Some(slices))
}

/// The build IDs to zero and the ranges Go zeroes, for [`first_mismatch`].
#[allow(clippy::type_complexity)]
fn normalization<S: Source + ?Sized>(src: &S) -> Result<(Vec<Vec<u8>>, Vec<(i64, i64)>), ReadError> {
    let usable = |id: Option<BString>| id.filter(|id| !id.is_empty() && id.len() <= GO_BUF_SIZE).map(|id| id.to_vec());
    let mut ids = Vec::new();
    let mut ranges = Vec::new();
    match fat_slices(src)? {
        Some(slices) => {
            for (base, len) in slices {
                let sub = Sub { inner: src, base, len };
                ids.extend(usable(read_go_build_id(&sub).ok().flatten()));
                let shift = base as i64;
                ranges.extend(
                    excluded_ranges(&sub).into_iter().map(|(s, e)| (s.wrapping_add(shift), e.wrapping_add(shift))),
                );
            }
            ids.sort();
            ids.dedup();
        }
        None => {
            ids.extend(usable(read_go_build_id(src).ok().flatten()));
            ranges = excluded_ranges(src);
        }
    }
    Ok((ids, ranges))
}

/// A source read front to back with Go's zeroed ranges and each build-ID occurrence
/// replaced by zeros, in chunks.
struct Normalized<'a, S: ?Sized> {
    src: &'a S,
    finders: Vec<memchr::memmem::Finder<'a>>,
    ranges: &'a [(i64, i64)],
    /// Go's `tiny`: the fringe carried from one read to the next.
    keep: usize,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    base: u64,
    filled: usize,
    /// Bytes before `emit` have been returned; the ID is searched from `search`.
    emit: usize,
    search: usize,
    /// The previous chunk was returned from a full buffer: slide the fringe first.
    slide: bool,
    done: bool,
    /// How many occurrences were replaced.
    matches: u64,
}

impl<'a, S: Source + ?Sized> Normalized<'a, S> {
    fn new(src: &'a S, ids: &'a [Vec<u8>], ranges: &'a [(i64, i64)]) -> Self {
        let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
        let keep = (longest + 127) & !127;
        Normalized {
            src,
            finders: ids.iter().map(|id| memchr::memmem::Finder::new(id.as_slice())).collect(),
            ranges,
            keep,
            // No more than the file holds (and one byte to see its end).
            buf: vec![0; keep + READ_SIZE.min(usize::try_from(src.len()).unwrap_or(usize::MAX)).max(1)],
            base: 0,
            filled: 0,
            emit: 0,
            search: 0,
            slide: false,
            done: false,
            matches: 0,
        }
    }

    /// The next chunk of normalized bytes, `None` at the end.
    fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.slide {
                // Go: copy(buf[0:], buf[bufSize:]).
                let cut = self.filled - self.keep;
                self.buf.copy_within(cut..self.filled, 0);
                self.base += cut as u64;
                self.filled = self.keep;
                self.emit -= cut;
                self.search -= cut;
                self.slide = false;
            }
            let want = self.buf.len() - self.filled;
            let n = self.src.read_at(self.base + self.filled as u64, &mut self.buf[self.filled..])?;
            let n = n.min(want);
            self.zero_ranges(self.filled, n);
            self.filled += n;
            self.replace_ids();
            if n < want {
                // Did not fill the buffer: the end of the file.
                self.done = true;
                return Ok(Some(&self.buf[self.emit..self.filled]));
            }
            // Return all but the fringe; an ID that starts before it ends inside the buffer.
            let cut = self.filled - self.keep;
            self.search = self.search.max(cut);
            self.slide = true;
            if self.emit < cut {
                let from = self.emit;
                self.emit = cut;
                return Ok(Some(&self.buf[from..cut]));
            }
        }
    }

    /// Go's `excludedReader`: the bytes of `buf[at..at + n]` inside a range read as zeros.
    fn zero_ranges(&mut self, at: usize, n: usize) {
        let off = (self.base + at as u64) as i64;
        let end = off.saturating_add(n as i64);
        for &(start, stop) in self.ranges {
            let (lo, hi) = (start.max(off), stop.min(end));
            if lo < hi {
                self.buf[at + (lo - off) as usize..at + (hi - off) as usize].fill(0);
            }
        }
    }

    /// Replaces the leftmost non-overlapping occurrences in `buf[search..filled]` by zeros.
    fn replace_ids(&mut self) {
        loop {
            let hay = &self.buf[self.search..self.filled];
            let found = self
                .finders
                .iter()
                .filter_map(|f| f.find(hay).map(|i| (i, f.needle().len())))
                .min_by_key(|&(i, len)| (i, usize::MAX - len));
            let Some((i, len)) = found else {
                return;
            };
            let at = self.search + i;
            self.buf[at..at + len].fill(0);
            self.search = at + len;
            self.matches += 1;
        }
    }
}

/// A chunk of one normalized stream not yet compared.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    pos: usize,
}

impl Pending {
    fn rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Fetches the next chunk when this one is used up; whether the stream may have more.
    fn refill<S: Source + ?Sized>(&mut self, n: &mut Normalized<'_, S>) -> io::Result<bool> {
        while self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
            match n.next_chunk()? {
                Some(c) => self.data.extend_from_slice(c),
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------- packers

/// Section or segment names packers give, with the packer's name.
const PACKER_SECTIONS: &[(&[u8], &str)] = &[
    (b"UPX0", "upx"),
    (b"UPX1", "upx"),
    (b"UPX2", "upx"),
    (b".upx", "upx"),
    (b".UPX0", "upx"),
    (b".UPX1", "upx"),
    (b".MPRESS1", "mpress"),
    (b".MPRESS2", "mpress"),
    (b".aspack", "aspack"),
    (b".adata", "aspack"),
    (b"PEC2", "pecompact"),
    (b"pec1", "pecompact"),
    (b".petite", "petite"),
    (b".nsp0", "nspack"),
    (b".nsp1", "nspack"),
    (b".themida", "themida"),
    (b".vmp0", "vmprotect"),
    (b".vmp1", "vmprotect"),
];

/// Entropy in bits per byte above which a file without readable build info is
/// called packed. Go binaries measure 4.8 to 7 (386 the highest), UPX-packed
/// ones 7.85 or more.
const PACKED_ENTROPY: f64 = 7.5;

/// Whether the file looks packed, and the evidence.
fn packed<S: Source + ?Sized>(src: &S) -> Result<Option<SelfCheck>, ReadError> {
    let mut packer: Option<&str> = None;
    let mut evidence = Vec::new();
    let mut names: Vec<Vec<u8>> = Vec::new();
    if let Ok(f) = exe::parse_elf(src, 0) {
        names.extend(f.section_names().map(<[u8]>::to_vec));
    }
    names.extend(exe::pe_section_names(src));
    if let Ok(m) = exe::macho_loads(src) {
        names.extend(m.names);
    }
    let mut seen = Vec::new();
    for name in &names {
        if let Some((_, p)) = PACKER_SECTIONS.iter().find(|(n, _)| *n == name.as_slice()) {
            packer.get_or_insert(p);
            if !seen.contains(name) {
                seen.push(name.clone());
            }
        }
    }
    if !seen.is_empty() {
        let list: Vec<String> = seen.iter().map(|n| n.to_str_lossy().into_owned()).collect();
        evidence.push(format!("section{} {}", if list.len() > 1 { "s" } else { "" }, list.join(", ")));
    }
    // UPX writes its marker in its loader header and its trailer.
    const EDGE: u64 = 4096;
    let len = src.len();
    // The last 4 KiB, or what the first 4 KiB leave of a small file.
    let last = len.saturating_sub(EDGE).max(EDGE.min(len));
    let mut markers = Vec::new();
    for start in [0, last] {
        let mut buf = vec![0u8; EDGE.min(len - start) as usize];
        let n = src.read_at(start, &mut buf).map_err(ReadError::Io)?;
        if let Some(i) = memchr::memmem::find(&buf[..n], b"UPX!") {
            markers.push(format!("{:#x}", start + i as u64));
        }
    }
    if !markers.is_empty() {
        packer.get_or_insert("upx");
        let s = if markers.len() > 1 { "s" } else { "" };
        evidence.push(format!("the UPX! marker at offset{s} {}", markers.join(", ")));
    }
    let entropy = entropy(src).map_err(ReadError::Io)?;
    let high = entropy >= PACKED_ENTROPY;
    if packer.is_none() {
        // Entropy alone: only when there is no Go build info to read (a packer
        // compresses it away; a Go binary that embeds compressed data still has it).
        if !high || super::read::build_info(src).is_ok() {
            return Ok(None);
        }
        evidence.push("no readable Go build info".to_string());
    }
    evidence.push(format!("entropy {entropy:.2} bits per byte"));
    Ok(Some(SelfCheck::Packed { packer: packer.unwrap_or("unknown").to_string(), evidence: evidence.join("; ") }))
}

/// Shannon entropy in bits per byte of up to 256 blocks of 4 KiB spread over the file.
fn entropy<S: Source + ?Sized>(src: &S) -> io::Result<f64> {
    const BLOCK: u64 = 4096;
    const BLOCKS: u64 = 256;
    let len = src.len();
    let mut counts = [0u64; 256];
    let mut total = 0u64;
    let mut buf = vec![0u8; BLOCK.min(len) as usize];
    let step = (len / BLOCKS).max(BLOCK);
    let mut off = 0;
    while off < len {
        let n = src.read_at(off, &mut buf)?;
        for &b in &buf[..n] {
            counts[b as usize] += 1;
        }
        total += n as u64;
        if n == 0 {
            break;
        }
        off += step;
    }
    if total == 0 {
        return Ok(0.0);
    }
    let total = total as f64;
    Ok(counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / total).map(|p| -p * p.log2()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_to_string_is_gos() {
        // Go 1.26: buildid.HashToString(sha256.Sum256([]byte("hello"))).
        let h: [u8; 32] = Sha256::digest(b"hello").into();
        assert_eq!(hash_to_string(&h), "LPJNul-wow4m6Dsqxbni");
    }

    /// The content ID of a Go-format build ID, hashed the simple way: the whole input
    /// in memory, every leftmost non-overlapping occurrence zeroed.
    fn naive(data: &[u8], id: &[u8]) -> String {
        let mut v = data.to_vec();
        let mut at = 0;
        while let Some(i) = memchr::memmem::find(&v[at..], id) {
            v[at + i..at + i + id.len()].fill(0);
            at += i + id.len();
        }
        hash_to_string(&Sha256::digest(&v).into())
    }

    fn stream(data: &[u8], id: &[u8]) -> (String, u64) {
        let ids = [id.to_vec()];
        let mut n = Normalized::new(data, &ids, &[]);
        let mut h = Sha256::new();
        while let Some(c) = n.next_chunk().expect("bytes") {
            h.update(c);
        }
        (hash_to_string(&h.finalize().into()), n.matches)
    }

    #[test]
    fn ids_across_read_boundaries_are_found() {
        let id = b"\xff Go build ID: \"aaaa/bbbb\"\n \xff".to_vec();
        // An occurrence at every position around the first and second read boundaries,
        // and right at the end of the file.
        for total in [READ_SIZE - 5, READ_SIZE, READ_SIZE + 200, 2 * READ_SIZE + 128] {
            for at in (READ_SIZE.saturating_sub(40)..(READ_SIZE + 5).min(total)).chain([total - id.len()]) {
                if at + id.len() > total {
                    continue;
                }
                let mut data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
                data[at..at + id.len()].copy_from_slice(&id);
                data[7..7 + id.len()].copy_from_slice(&id);
                let (got, matches) = stream(&data, &id);
                assert_eq!(got, naive(&data, &id), "len {total}, id at {at}");
                assert_eq!(matches, 2, "len {total}, id at {at}");
            }
        }
    }

    #[test]
    fn overlapping_occurrences_are_taken_leftmost_first() {
        let id = b"abab";
        let data = b"xxabababab__abab";
        assert_eq!(stream(data, id), (naive(data, id), 3));
    }

    #[test]
    fn content_id_needs_gos_shape() {
        assert_eq!(content_id_of(b"a/b/c/LPJNul-wow4m6DsqxbnI").as_deref(), Some("LPJNul-wow4m6DsqxbnI"));
        assert_eq!(content_id_of(b"reprove/custom-build-id"), None);
        assert_eq!(content_id_of(b"LPJNul-wow4m6DsqxbnI"), None);
        assert_eq!(content_id_of(b"x/LPJNul-wow4m6Dsqxb\xff"), None);
    }

    #[test]
    fn first_mismatch_ignores_build_ids_only() {
        let a = b"\x00\x00head \xff Go build ID: \"x/AAAAAAAAAAAAAAAAAAAA\"\n \xff tail".to_vec();
        let b = b"\x00\x00head \xff Go build ID: \"x/BBBBBBBBBBBBBBBBBBBB\"\n \xff tail".to_vec();
        assert_eq!(first_mismatch(a.as_slice(), b.as_slice()).expect("read"), None);
        let mut c = b.clone();
        let last = c.len() - 1;
        c[last] = b'L';
        assert_eq!(first_mismatch(a.as_slice(), c.as_slice()).expect("read"), Some(last as u64));
        let mut d = a.clone();
        d.extend_from_slice(b"appended");
        assert_eq!(first_mismatch(a.as_slice(), d.as_slice()).expect("read"), Some(a.len() as u64));
        assert_eq!(first_mismatch(d.as_slice(), a.as_slice()).expect("read"), Some(a.len() as u64));
    }

    /// Bytes that look random (xorshift), `n` of them.
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    #[test]
    fn compressed_looking_data_without_build_info_is_packed() {
        let data = noise(300_000);
        match self_check(data.as_slice()).expect("bytes") {
            SelfCheck::Packed { packer, evidence } => {
                assert_eq!(packer, "unknown");
                assert!(evidence.contains("no readable Go build info"), "{evidence}");
            }
            other => panic!("{other:?}"),
        }
        // The same size of text is not.
        let text: Vec<u8> = data.iter().map(|b| b'a' + b % 16).collect();
        assert_eq!(self_check(text.as_slice()).expect("bytes"), SelfCheck::NoBuildId);
    }

    #[test]
    fn upx_marker_names_upx() {
        let mut data: Vec<u8> = noise(10_000).iter().map(|b| b'a' + b % 16).collect();
        data[200..204].copy_from_slice(b"UPX!");
        match self_check(data.as_slice()).expect("bytes") {
            SelfCheck::Packed { packer, evidence } => {
                assert_eq!(packer, "upx");
                assert!(evidence.contains("UPX! marker at offset 0xc8"), "{evidence}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn first_mismatch_across_chunks() {
        let a: Vec<u8> = (0..3 * READ_SIZE + 17).map(|i| (i % 253) as u8).collect();
        for at in [0, READ_SIZE - 1, READ_SIZE, 2 * READ_SIZE + 5, a.len() - 1] {
            let mut b = a.clone();
            b[at] ^= 1;
            assert_eq!(first_mismatch(a.as_slice(), b.as_slice()).expect("read"), Some(at as u64));
        }
        assert_eq!(first_mismatch(a.as_slice(), a.as_slice()).expect("read"), None);
    }
}
