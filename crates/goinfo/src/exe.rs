//! Executable containers as Go's `debug/buildinfo` sees them.
//!
//! For each format, two questions only: where does the data that holds the build
//! info start (`data_start`), and which file window maps a virtual address
//! (`data_window`). The answers, and the conditions under which a file counts as
//! malformed, follow Go's `debug/elf`, `debug/pe`, `debug/macho`, `internal/xcoff`
//! and `debug/plan9obj`, so that reprove accepts and rejects what `go version -m`
//! does.

use std::io;

use super::source::{read_exact_at, read_vec_at, Source, Sub, Window};

/// Why a file is not a readable executable, worded as Go words it.
#[derive(Debug)]
pub(crate) enum ExeError {
    /// Go's `errUnrecognizedFormat`.
    Unrecognized,
    /// The XCOFF and Plan 9 readers' `address not mapped`.
    AddressNotMapped,
    /// A real I/O error from the source.
    Io(io::Error),
}

/// Header-parsing failures are format errors; only real I/O failures stay I/O errors.
fn fmt_err(e: io::Error) -> ExeError {
    if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::InvalidData {
        ExeError::Unrecognized
    } else {
        ExeError::Io(e)
    }
}

/// One mapped region: virtual address range and where its bytes are in the file.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    addr: u64,
    size: u64,
    window: Window,
    /// Mach-O's `__PAGEZERO` never maps data.
    skip: bool,
}

/// The executable file formats Go can read build info from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ELF (Linux, BSDs, ...).
    Elf,
    /// PE (Windows).
    Pe,
    /// Mach-O, thin.
    MachO,
    /// Mach-O universal (fat) binary; Go reads its first architecture.
    MachOFat,
    /// XCOFF (AIX).
    Xcoff,
    /// Plan 9 a.out.
    Plan9,
}

/// A parsed executable: its data start and its address mappings.
#[derive(Debug)]
pub(crate) struct Exe {
    pub(crate) format: Format,
    /// (address, size) of the section or segment that holds the build info.
    pub(crate) data_start: (u64, u64),
    mappings: Vec<Mapping>,
    /// Which error a read of an unmapped address gives.
    unmapped: fn() -> ExeError,
}

impl Exe {
    /// Go's `DataReader(addr)`: the window from `addr` to the end of the mapping holding it.
    pub(crate) fn data_window(&self, addr: u64) -> Result<Window, ExeError> {
        for m in &self.mappings {
            // Go computes `addr <= start+size-1` in wrapping uint64 arithmetic.
            let last = m.addr.wrapping_add(m.size).wrapping_sub(1);
            if m.addr <= addr && addr <= last {
                if m.skip {
                    continue;
                }
                let skip = addr - m.addr;
                let remaining = m.addr.wrapping_add(m.size).wrapping_sub(addr);
                let mut w = m.window;
                w.base = w.base.wrapping_add(skip);
                w.size = remaining;
                return Ok(w);
            }
        }
        Err((self.unmapped)())
    }
}

fn unrecognized() -> ExeError {
    ExeError::Unrecognized
}

fn not_mapped() -> ExeError {
    ExeError::AddressNotMapped
}

/// Identifies the format from the first 16 bytes and parses the headers, as Go's
/// `readRawBuildInfo` does.
pub(crate) fn open<S: Source + ?Sized>(src: &S) -> Result<Exe, ExeError> {
    let mut ident = [0u8; 16];
    if src.read_at(0, &mut ident).map_err(ExeError::Io)? < 16 {
        return Err(ExeError::Unrecognized);
    }
    let r = if ident.starts_with(b"\x7fELF") {
        elf(src, 0)
    } else if ident.starts_with(b"MZ") {
        pe(src)
    } else if ident.starts_with(b"\xfe\xed\xfa") || ident[1..].starts_with(b"\xfa\xed\xfe") {
        macho(src, 0, u64::MAX).map(|e| (Format::MachO, e))
    } else if ident.starts_with(b"\xca\xfe\xba\xbe") || ident.starts_with(b"\xca\xfe\xba\xbf") {
        macho_fat(src)
    } else if ident.starts_with(&[0x01, 0xdf]) || ident.starts_with(&[0x01, 0xf7]) {
        xcoff(src)
    } else if is_plan9(&ident) {
        plan9(src)
    } else {
        return Err(ExeError::Unrecognized);
    };
    let (format, (data_start, mappings, unmapped)) = r?;
    Ok(Exe { format, data_start, mappings, unmapped })
}

/// Where the build info data starts, the address mappings, and the unmapped-address error.
type Layout = ((u64, u64), Vec<Mapping>, fn() -> ExeError);

type Parsed = (Format, Layout);

/// Byte order helpers over a header buffer.
#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let x = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        }
    }
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    }
    fn u64(self, b: &[u8], at: usize) -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        if self.big {
            u64::from_be_bytes(x)
        } else {
            u64::from_le_bytes(x)
        }
    }
}

const LE: Endian = Endian { big: false };

// ---------------------------------------------------------------- ELF

struct ElfSection {
    name_off: u32,
    typ: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
}

/// The parts of an ELF file Go's `debug/elf.NewFile` reads, with its validity checks.
pub(crate) struct ElfFile {
    pub(crate) big: bool,
    pub(crate) progs: Vec<ElfProg>,
    sections: Vec<ElfSection>,
    names: Vec<Vec<u8>>,
}

/// An ELF program header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElfProg {
    pub(crate) typ: u32,
    pub(crate) flags: u32,
    pub(crate) off: u64,
    pub(crate) vaddr: u64,
    pub(crate) filesz: u64,
    pub(crate) memsz: u64,
    pub(crate) align: u64,
}

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHF_COMPRESSED: u64 = 0x800;

pub(crate) fn parse_elf<S: Source + ?Sized>(src: &S, base: u64) -> Result<ElfFile, ExeError> {
    let mut hdr = [0u8; 64];
    let n = src.read_at(base, &mut hdr).map_err(ExeError::Io)?;
    if n < 16 || &hdr[..4] != b"\x7fELF" {
        return Err(ExeError::Unrecognized);
    }
    let is64 = match hdr[4] {
        1 => false,
        2 => true,
        _ => return Err(ExeError::Unrecognized),
    };
    let e = match hdr[5] {
        1 => Endian { big: false },
        2 => Endian { big: true },
        _ => return Err(ExeError::Unrecognized),
    };
    if hdr[6] != 1 || n < if is64 { 64 } else { 52 } {
        return Err(ExeError::Unrecognized);
    }
    let (phoff, phentsize, phnum, shoff, shentsize, mut shnum, mut shstrndx);
    if is64 {
        if e.u32(&hdr, 20) != 1 {
            return Err(ExeError::Unrecognized);
        }
        phoff = e.u64(&hdr, 32);
        shoff = e.u64(&hdr, 40);
        phentsize = e.u16(&hdr, 54) as u64;
        phnum = e.u16(&hdr, 56) as u64;
        shentsize = e.u16(&hdr, 58) as u64;
        shnum = e.u16(&hdr, 60) as u64;
        shstrndx = e.u16(&hdr, 62) as u64;
    } else {
        if e.u32(&hdr, 20) != 1 {
            return Err(ExeError::Unrecognized);
        }
        phoff = e.u32(&hdr, 28) as u64;
        shoff = e.u32(&hdr, 32) as u64;
        phentsize = e.u16(&hdr, 42) as u64;
        phnum = e.u16(&hdr, 44) as u64;
        shentsize = e.u16(&hdr, 46) as u64;
        shnum = e.u16(&hdr, 48) as u64;
        shstrndx = e.u16(&hdr, 50) as u64;
    }
    let neg = |x: u64| x > i64::MAX as u64;
    if neg(shoff) || neg(phoff) || (shoff == 0 && shnum != 0) || (shnum > 0 && shstrndx >= shnum) {
        return Err(ExeError::Unrecognized);
    }
    let (want_ph, want_sh) = if is64 { (56, 64) } else { (32, 40) };
    if phnum > 0 && phentsize < want_ph {
        return Err(ExeError::Unrecognized);
    }
    let phdata = read_vec_at(src, base.wrapping_add(phoff), phnum * phentsize).map_err(fmt_err)?;
    let mut progs = Vec::with_capacity(phnum as usize);
    for i in 0..phnum as usize {
        let p = &phdata[i * phentsize as usize..];
        let prog = if is64 {
            ElfProg {
                typ: e.u32(p, 0),
                flags: e.u32(p, 4),
                off: e.u64(p, 8),
                vaddr: e.u64(p, 16),
                filesz: e.u64(p, 32),
                memsz: e.u64(p, 40),
                align: e.u64(p, 48),
            }
        } else {
            ElfProg {
                typ: e.u32(p, 0),
                off: e.u32(p, 4) as u64,
                vaddr: e.u32(p, 8) as u64,
                filesz: e.u32(p, 16) as u64,
                memsz: e.u32(p, 20) as u64,
                flags: e.u32(p, 24),
                align: e.u32(p, 28) as u64,
            }
        };
        if neg(prog.off) || neg(prog.filesz) {
            return Err(ExeError::Unrecognized);
        }
        progs.push(prog);
    }
    if shoff > 0 && shnum == 0 {
        // Extended numbering: the real count lives in section 0.
        let mut sh0 = [0u8; 64];
        read_exact_at(src, base.wrapping_add(shoff), &mut sh0[..want_sh as usize]).map_err(fmt_err)?;
        let (typ, size, link) = if is64 {
            (e.u32(&sh0, 4), e.u64(&sh0, 32), e.u32(&sh0, 40))
        } else {
            (e.u32(&sh0, 4), e.u32(&sh0, 20) as u64, e.u32(&sh0, 24))
        };
        if typ != 0 || size < 0xff00 {
            return Err(ExeError::Unrecognized);
        }
        shnum = size;
        if shstrndx == 0xffff {
            shstrndx = link as u64;
            if shstrndx < 0xff00 {
                return Err(ExeError::Unrecognized);
            }
        }
    }
    if shnum > 0 && shentsize < want_sh {
        return Err(ExeError::Unrecognized);
    }
    let table_len = shnum.checked_mul(shentsize).ok_or(ExeError::Unrecognized)?;
    let shdata = read_vec_at(src, base.saturating_add(shoff), table_len).map_err(fmt_err)?;
    let mut sections = Vec::with_capacity(shnum as usize);
    for i in 0..shnum as usize {
        let s = &shdata[i * shentsize as usize..];
        let mut sec = if is64 {
            ElfSection {
                name_off: e.u32(s, 0),
                typ: e.u32(s, 4),
                flags: e.u64(s, 8),
                addr: e.u64(s, 16),
                offset: e.u64(s, 24),
                size: e.u64(s, 32),
            }
        } else {
            ElfSection {
                name_off: e.u32(s, 0),
                typ: e.u32(s, 4),
                flags: e.u32(s, 8) as u64,
                addr: e.u32(s, 12) as u64,
                offset: e.u32(s, 16) as u64,
                size: e.u32(s, 20) as u64,
            }
        };
        if neg(sec.offset) || neg(sec.size) {
            return Err(ExeError::Unrecognized);
        }
        if sec.flags & SHF_COMPRESSED != 0 {
            // Go reports the uncompressed size from the compression header.
            let mut ch = [0u8; 24];
            let chlen = if is64 { 24 } else { 12 };
            let w = Window::new(base.wrapping_add(sec.offset), sec.size);
            if w.read_at(src, 0, &mut ch[..chlen]).map_err(ExeError::Io)? < chlen {
                return Err(ExeError::Unrecognized);
            }
            sec.size = if is64 { e.u64(&ch, 8) } else { e.u32(&ch, 4) as u64 };
        }
        sections.push(sec);
    }
    let mut names = Vec::new();
    if !sections.is_empty() && shstrndx != 0 {
        let strtab = &sections[shstrndx as usize];
        if strtab.typ != SHT_STRTAB || strtab.flags & SHF_COMPRESSED != 0 {
            return Err(ExeError::Unrecognized);
        }
        let data = if strtab.typ == SHT_NOBITS {
            Vec::new()
        } else {
            read_vec_at(src, base.wrapping_add(strtab.offset), strtab.size).map_err(fmt_err)?
        };
        for s in &sections {
            let start = s.name_off as usize;
            if start >= data.len() {
                return Err(ExeError::Unrecognized);
            }
            let Some(end) = memchr::memchr(0, &data[start..]) else {
                return Err(ExeError::Unrecognized);
            };
            names.push(data[start..start + end].to_vec());
        }
    } else {
        names = sections.iter().map(|_| Vec::new()).collect();
    }
    Ok(ElfFile { big: e.big, progs, sections, names })
}

impl ElfFile {
    /// The first section with this name: (address, size).
    pub(crate) fn section(&self, name: &[u8]) -> Option<(u64, u64)> {
        self.sections.iter().zip(&self.names).find(|(_, n)| n.as_slice() == name).map(|(s, _)| (s.addr, s.size))
    }

    /// The first section with this name: (file offset, size), the size as Go's
    /// `Section.Size` (uncompressed for a compressed section).
    pub(crate) fn section_file(&self, name: &[u8]) -> Option<(u64, u64)> {
        self.sections.iter().zip(&self.names).find(|(_, n)| n.as_slice() == name).map(|(s, _)| (s.offset, s.size))
    }

    /// The section names, in the section table's order.
    pub(crate) fn section_names(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.names.iter().map(Vec::as_slice)
    }

    /// File windows (offset, size) of the uncompressed `SHT_NOTE` sections.
    pub(crate) fn note_sections(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        const SHT_NOTE: u32 = 7;
        self.sections.iter().filter(|s| s.typ == SHT_NOTE && s.flags & SHF_COMPRESSED == 0).map(|s| (s.offset, s.size))
    }
}

fn elf<S: Source + ?Sized>(src: &S, base: u64) -> Result<Parsed, ExeError> {
    let f = parse_elf(src, base)?;
    let data_start = f.section(b".go.buildinfo").unwrap_or_else(|| {
        f.progs
            .iter()
            .find(|p| p.typ == PT_LOAD && p.flags & (PF_X | PF_W) == PF_W)
            .map(|p| (p.vaddr, p.memsz))
            .unwrap_or((0, 0))
    });
    let mappings = f
        .progs
        .iter()
        .map(|p| Mapping {
            addr: p.vaddr,
            size: p.filesz,
            window: Window::new(base.wrapping_add(p.off), p.filesz),
            skip: false,
        })
        .collect();
    Ok((Format::Elf, (data_start, mappings, unrecognized)))
}

// ---------------------------------------------------------------- PE

fn pe<S: Source + ?Sized>(src: &S) -> Result<Parsed, ExeError> {
    let mut dos = [0u8; 96];
    read_exact_at(src, 0, &mut dos).map_err(fmt_err)?;
    let signoff = LE.u32(&dos, 0x3c) as u64;
    let mut sign = [0u8; 4];
    let _ = src.read_at(signoff, &mut sign).map_err(ExeError::Io)?;
    if sign != *b"PE\0\0" {
        return Err(ExeError::Unrecognized);
    }
    let base = signoff + 4;
    let mut fh = [0u8; 20];
    read_exact_at(src, base, &mut fh).map_err(fmt_err)?;
    let machine = LE.u16(&fh, 0);
    // AMD64, ARM64, ARMNT, I386, RISCV32, RISCV64, RISCV128, UNKNOWN.
    if ![0x8664, 0xaa64, 0x1c4, 0x14c, 0x5032, 0x5064, 0x5128, 0].contains(&machine) {
        return Err(ExeError::Unrecognized);
    }
    let nsections = LE.u16(&fh, 2) as u64;
    let symptr = LE.u32(&fh, 8) as u64;
    let nsyms = LE.u32(&fh, 12) as u64;
    let opt_size = LE.u16(&fh, 16) as u64;
    // Go reads the COFF string table and symbols and fails when they are cut off.
    let mut strtab = Vec::new();
    if symptr > 0 {
        let off = symptr + 18 * nsyms;
        let mut l = [0u8; 4];
        read_exact_at(src, off, &mut l).map_err(fmt_err)?;
        let l = LE.u32(&l, 0) as u64;
        if l > 4 {
            strtab = read_vec_at(src, off + 4, l - 4).map_err(fmt_err)?;
        }
        if nsyms > 0 {
            read_vec_at(src, symptr, 18 * nsyms).map_err(fmt_err)?;
        }
    }
    // Optional header: magic then image base.
    let opt = read_vec_at(src, base + 20, opt_size).map_err(fmt_err)?;
    // Go's readOptionalHeader: the magic, a complete fixed part, and exactly
    // NumberOfRvaAndSizes data directories filling the rest.
    let image_base = if opt_size == 0 {
        0
    } else {
        if opt.len() < 2 {
            return Err(ExeError::Unrecognized);
        }
        let (min, ndirs_at, base_at, base64) = match LE.u16(&opt, 0) {
            0x10b => (96, 92, 28, false),
            0x20b => (112, 108, 24, true),
            _ => return Err(ExeError::Unrecognized),
        };
        if opt.len() < min {
            return Err(ExeError::Unrecognized);
        }
        let ndirs = LE.u32(&opt, ndirs_at) as u64;
        if (opt.len() - min) as u64 != ndirs * 8 {
            return Err(ExeError::Unrecognized);
        }
        if base64 {
            LE.u64(&opt, base_at)
        } else {
            LE.u32(&opt, base_at) as u64
        }
    };
    let shdrs = read_vec_at(src, base + 20 + opt_size, 40 * nsections).map_err(fmt_err)?;
    let mut data_start = (0, 0);
    let mut mappings = Vec::new();
    for i in 0..nsections as usize {
        let s = &shdrs[i * 40..i * 40 + 40];
        let name = &s[..8];
        if name[0] == b'/' {
            // "/123": an offset into the string table.
            let digits = name[1..].split(|&b| b == 0).next().unwrap_or_default();
            let idx = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<usize>().ok());
            match idx {
                Some(i) if (4..=strtab.len() + 4).contains(&i) => {}
                _ => return Err(ExeError::Unrecognized),
            }
        }
        let vsize = LE.u32(s, 8) as u64;
        let vaddr = LE.u32(s, 12) as u64;
        let raw_size = LE.u32(s, 16) as u64;
        let raw_ptr = LE.u32(s, 20) as u64;
        let reloc_ptr = LE.u32(s, 24) as u64;
        let nrelocs = LE.u16(s, 32) as u64;
        let characteristics = LE.u32(s, 36);
        if nrelocs > 0 {
            read_vec_at(src, reloc_ptr, 10 * nrelocs).map_err(fmt_err)?;
        }
        const DATA_RW: u32 = 0x40 | 0x4000_0000 | 0x8000_0000;
        if data_start == (0, 0) && vaddr != 0 && raw_size != 0 && characteristics & !0x60_0000 == DATA_RW {
            data_start = (vaddr.wrapping_add(image_base), vsize);
        }
        let mut window = Window::new(raw_ptr, raw_size);
        window.uninitialized = raw_ptr == 0;
        // Go compares in uint32 arithmetic: VirtualAddress+Size wraps.
        let end32 = (vaddr as u32).wrapping_add(raw_size as u32) as u64;
        mappings.push(Mapping { addr: vaddr, size: end32.wrapping_sub(vaddr), window, skip: false });
    }
    // Addresses are relative to the image base.
    let mappings = mappings.into_iter().map(|m| Mapping { addr: m.addr.wrapping_add(image_base), ..m }).collect();
    Ok((Format::Pe, (data_start, mappings, unrecognized)))
}

// ---------------------------------------------------------------- Mach-O

/// What `cmd/internal/buildid` looks up in a thin Mach-O file that Go's
/// `debug/macho.NewFile` accepts, offsets relative to the image.
#[derive(Debug, Default)]
pub(crate) struct MachoLoads {
    /// The first `LC_CODE_SIGNATURE`: (dataoff, datasize); `None` also when the
    /// command is too short to hold them (Go's `FindCodeSigCmd` would panic).
    pub(crate) code_signature: Option<(u32, u32)>,
    /// The first `LC_UUID`: the offset of its data and the data's length
    /// (the command less its 8-byte header).
    pub(crate) uuid: Option<(u64, u64)>,
    /// Segment and section names, in load-command order.
    pub(crate) names: Vec<Vec<u8>>,
}

/// Parses a Mach-O image that occupies `len` bytes at `base` (the whole file, or one
/// architecture of a fat file, which Go reads through a window of exactly that size).
fn macho<S: Source + ?Sized>(outer: &S, base: u64, len: u64) -> Result<Layout, ExeError> {
    parse_macho(outer, base, len).map(|(layout, _)| layout)
}

/// A thin Mach-O file's load commands that the build-ID tools read, if Go's
/// `debug/macho.NewFile` accepts the file.
pub(crate) fn macho_loads<S: Source + ?Sized>(src: &S) -> Result<MachoLoads, ExeError> {
    parse_macho(src, 0, u64::MAX).map(|(_, loads)| loads)
}

fn parse_macho<S: Source + ?Sized>(outer: &S, base: u64, len: u64) -> Result<(Layout, MachoLoads), ExeError> {
    let src = &Sub { inner: outer, base, len };
    let limit = base.saturating_add(len);
    let mut h = [0u8; 32];
    let n = src.read_at(0, &mut h).map_err(ExeError::Io)?;
    if n < 28 {
        return Err(ExeError::Unrecognized);
    }
    let be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let e = if be & !1 == 0xfeedface {
        Endian { big: true }
    } else if le & !1 == 0xfeedface {
        Endian { big: false }
    } else {
        return Err(ExeError::Unrecognized);
    };
    let magic = e.u32(&h, 0);
    let is64 = magic == 0xfeedfacf;
    let ncmd = e.u32(&h, 16) as u64;
    let cmdsz = e.u32(&h, 20) as u64;
    let hsize = if is64 { 32 } else { 28 };
    // Go's binary.Read of the header needs all 28 bytes of FileHeader.
    let cmds = read_vec_at(src, hsize, cmdsz).map_err(fmt_err)?;
    let mut dat = cmds.as_slice();
    let mut sections: Vec<(Vec<u8>, u64, u64)> = Vec::new();
    // (name, addr, memsz, fileoff, filesz, prot, maxprot)
    #[allow(clippy::type_complexity)]
    let mut segments: Vec<(Vec<u8>, u64, u64, u64, u64, u32, u32)> = Vec::new();
    let mut nsyms_seen: Option<u64> = None;
    let cstring = |b: &[u8]| b.split(|&c| c == 0).next().unwrap_or_default().to_vec();
    let mut loads = MachoLoads::default();
    let mut cmd_off = hsize;
    for _ in 0..ncmd {
        if dat.len() < 8 {
            return Err(ExeError::Unrecognized);
        }
        let cmd = e.u32(dat, 0);
        let siz = e.u32(dat, 4) as usize;
        if siz < 8 || siz > dat.len() {
            return Err(ExeError::Unrecognized);
        }
        let c = &dat[..siz];
        dat = &dat[siz..];
        match cmd {
            // LC_CODE_SIGNATURE
            0x1d if loads.code_signature.is_none() => {
                loads.code_signature = (c.len() >= 16).then(|| (e.u32(c, 8), e.u32(c, 12)));
            }
            // LC_UUID
            0x1b if loads.uuid.is_none() => loads.uuid = Some((cmd_off + 8, siz as u64 - 8)),
            _ => {}
        }
        cmd_off += siz as u64;
        match cmd {
            // LC_SEGMENT, LC_SEGMENT_64
            0x1 | 0x19 => {
                let seg64 = cmd == 0x19;
                let need = if seg64 { 72 } else { 56 };
                if c.len() < need {
                    return Err(ExeError::Unrecognized);
                }
                let name = cstring(&c[8..24]);
                loads.names.push(name.clone());
                let (addr, memsz, off, filesz, maxprot, prot, nsect) = if seg64 {
                    (e.u64(c, 24), e.u64(c, 32), e.u64(c, 40), e.u64(c, 48), e.u32(c, 56), e.u32(c, 60), e.u32(c, 64))
                } else {
                    (
                        e.u32(c, 24) as u64,
                        e.u32(c, 28) as u64,
                        e.u32(c, 32) as u64,
                        e.u32(c, 36) as u64,
                        e.u32(c, 40),
                        e.u32(c, 44),
                        e.u32(c, 48),
                    )
                };
                let ssize = if seg64 { 80 } else { 68 };
                for i in 0..nsect as usize {
                    let at = need + i * ssize;
                    if at + ssize > c.len() {
                        return Err(ExeError::Unrecognized);
                    }
                    let s = &c[at..at + ssize];
                    let sname = cstring(&s[..16]);
                    loads.names.push(sname.clone());
                    let (saddr, ssz) =
                        if seg64 { (e.u64(s, 32), e.u64(s, 40)) } else { (e.u32(s, 32) as u64, e.u32(s, 36) as u64) };
                    let (reloff, nreloc) = if seg64 {
                        (e.u32(s, 56) as u64, e.u32(s, 60) as u64)
                    } else {
                        (e.u32(s, 48) as u64, e.u32(s, 52) as u64)
                    };
                    if nreloc > 0 {
                        read_vec_at(src, reloff, nreloc * 8).map_err(fmt_err)?;
                    }
                    sections.push((sname, saddr, ssz));
                }
                // Go turns both into an io.SectionReader's int64s and refuses the
                // file when either is negative ("invalid section offset/file size").
                if i64::try_from(off).is_err() || i64::try_from(filesz).is_err() {
                    return Err(ExeError::Unrecognized);
                }
                segments.push((name, addr, memsz, off, filesz, prot, maxprot));
            }
            // LC_SYMTAB: Go reads the string table and the symbols.
            0x2 => {
                if c.len() < 24 {
                    return Err(ExeError::Unrecognized);
                }
                let symoff = e.u32(c, 8) as u64;
                let nsyms = e.u32(c, 12) as u64;
                let stroff = e.u32(c, 16) as u64;
                let strsize = e.u32(c, 20) as u64;
                let strtab = read_vec_at(src, stroff, strsize).map_err(fmt_err)?;
                let symsz = if is64 { 16 } else { 12 };
                let syms = read_vec_at(src, symoff, nsyms * symsz).map_err(fmt_err)?;
                for i in 0..nsyms as usize {
                    let name = e.u32(&syms, i * symsz as usize) as usize;
                    if name >= strtab.len() {
                        return Err(ExeError::Unrecognized);
                    }
                }
                nsyms_seen = Some(nsyms);
            }
            // LC_DYSYMTAB
            0xb => {
                if c.len() < 80 {
                    return Err(ExeError::Unrecognized);
                }
                let Some(nsyms) = nsyms_seen else {
                    return Err(ExeError::Unrecognized);
                };
                let iundef = e.u32(c, 24) as u64;
                let nundef = e.u32(c, 28) as u64;
                if iundef > nsyms || (iundef as u32).wrapping_add(nundef as u32) as u64 > nsyms {
                    return Err(ExeError::Unrecognized);
                }
                let indoff = e.u32(c, 56) as u64;
                let nind = e.u32(c, 60) as u64;
                read_vec_at(src, indoff, nind * 4).map_err(fmt_err)?;
            }
            // LC_LOAD_DYLIB, LC_RPATH: name offsets must be inside the command.
            0xc | 0x8000_001c if c.len() < 12 || e.u32(c, 8) as usize >= c.len() => {
                return Err(ExeError::Unrecognized);
            }
            _ => {}
        }
    }
    let data_start = sections
        .iter()
        .find(|(n, _, _)| n.as_slice() == b"__go_buildinfo")
        .map(|&(_, a, s)| (a, s))
        .or_else(|| segments.iter().find(|s| s.1 != 0 && s.4 != 0 && s.5 == 3 && s.6 == 3).map(|s| (s.1, s.2)))
        .unwrap_or((0, 0));
    let mappings = segments
        .iter()
        .map(|(name, addr, _memsz, off, filesz, _, _)| Mapping {
            addr: *addr,
            size: *filesz,
            window: Window { limit, ..Window::new(base.wrapping_add(*off), *filesz) },
            skip: name.as_slice() == b"__PAGEZERO",
        })
        .collect();
    Ok(((data_start, mappings, unrecognized), loads))
}

fn macho_fat<S: Source + ?Sized>(src: &S) -> Result<Parsed, ExeError> {
    let be = Endian { big: true };
    let mut h = [0u8; 8];
    read_exact_at(src, 0, &mut h).map_err(fmt_err)?;
    // Go's NewFatFile knows only the 32-bit fat header (0xcafebabe).
    if be.u32(&h, 0) != 0xcafebabe {
        return Err(ExeError::Unrecognized);
    }
    let narch = be.u32(&h, 4) as u64;
    let mut first = None;
    let mut first_type = 0;
    let mut seen = std::collections::HashSet::new();
    for i in 0..narch {
        let mut a = [0u8; 20];
        read_exact_at(src, 8 + 20 * i, &mut a).map_err(fmt_err)?;
        let (cpu, sub, off, size) = (be.u32(&a, 0), be.u32(&a, 4), be.u32(&a, 8) as u64, be.u32(&a, 12) as u64);
        // Every architecture must parse, be unique, and have the first one's file type.
        let parsed = macho(src, off, size)?;
        let mut t = [0u8; 16];
        read_exact_at(&Sub { inner: src, base: off, len: size }, 0, &mut t).map_err(fmt_err)?;
        let little = u32::from_le_bytes([t[0], t[1], t[2], t[3]]) & !1 == 0xfeedface;
        let filetype = Endian { big: !little }.u32(&t, 12);
        if !seen.insert((cpu, sub)) {
            return Err(ExeError::Unrecognized);
        }
        if i == 0 {
            first_type = filetype;
            first = Some(parsed);
        } else if filetype != first_type {
            return Err(ExeError::Unrecognized);
        }
    }
    let first = first.ok_or(ExeError::Unrecognized)?;
    Ok((Format::MachOFat, first))
}

// ---------------------------------------------------------------- XCOFF

fn xcoff<S: Source + ?Sized>(src: &S) -> Result<Parsed, ExeError> {
    let be = Endian { big: true };
    let mut fh = [0u8; 24];
    let n = src.read_at(0, &mut fh).map_err(ExeError::Io)?;
    let is64 = be.u16(&fh, 0) == 0x01f7;
    let fhsize = if is64 { 24 } else { 20 };
    if n < fhsize {
        return Err(ExeError::Unrecognized);
    }
    let nscns = be.u16(&fh, 2) as u64;
    let (symptr, opthdr, nsyms) = if is64 {
        (be.u64(&fh, 8), be.u16(&fh, 16) as u64, be.u32(&fh, 20) as u64)
    } else {
        (be.u32(&fh, 8) as u64, be.u16(&fh, 16) as u64, be.u32(&fh, 12) as u64)
    };
    let shsize = if is64 { 72 } else { 40 };
    let shdrs = read_vec_at(src, fhsize as u64 + opthdr, nscns * shsize).map_err(fmt_err)?;
    if symptr == 0 || nsyms == 0 {
        // Go's internal/xcoff refuses files without a symbol table.
        return Err(ExeError::Unrecognized);
    }
    {
        // The string table follows the symbols; Go reads both (uint64 arithmetic wraps).
        let stroff = symptr.wrapping_add(18 * nsyms);
        let mut l = [0u8; 4];
        read_exact_at(src, stroff, &mut l).map_err(fmt_err)?;
        let l = be.u32(&l, 0) as u64;
        if l > 4 {
            read_vec_at(src, stroff, l).map_err(fmt_err)?;
        }
        read_vec_at(src, symptr, 18 * nsyms).map_err(fmt_err)?;
    }
    let mut data_start = None;
    let mut mappings = Vec::new();
    for i in 0..nscns as usize {
        let s = &shdrs[i * shsize as usize..];
        let (vaddr, size, scnptr, flags) = if is64 {
            (be.u64(s, 16), be.u64(s, 24), be.u64(s, 32), be.u32(s, 64))
        } else {
            (be.u32(s, 12) as u64, be.u32(s, 16) as u64, be.u32(s, 20) as u64, be.u32(s, 36))
        };
        const STYP_DATA: u32 = 0x40;
        if data_start.is_none() && flags == STYP_DATA {
            data_start = Some((vaddr, size));
        }
        let mut window = Window::new(scnptr, size);
        window.uninitialized = scnptr == 0;
        mappings.push(Mapping { addr: vaddr, size, window, skip: false });
    }
    Ok((Format::Xcoff, (data_start.unwrap_or((0, 0)), mappings, not_mapped)))
}

// ---------------------------------------------------------------- Plan 9

fn is_plan9(ident: &[u8]) -> bool {
    let m = u32::from_be_bytes([ident[0], ident[1], ident[2], ident[3]]);
    // 386, AMD64, ARM.
    matches!(m, 0x1eb | 0x8a97 | 0x647)
}

fn plan9<S: Source + ?Sized>(src: &S) -> Result<Parsed, ExeError> {
    let be = Endian { big: true };
    let mut h = [0u8; 40];
    read_exact_at(src, 0, &mut h[..32]).map_err(fmt_err)?;
    let magic = be.u32(&h, 0);
    // AMD64 headers carry an extra 8-byte entry point.
    let hdrsz: u64 = if magic == 0x8a97 {
        read_exact_at(src, 32, &mut h[32..40]).map_err(fmt_err)?;
        40
    } else {
        32
    };
    let text = be.u32(&h, 4) as u64;
    let data = be.u32(&h, 8) as u64;
    let syms = be.u32(&h, 16) as u64;
    let spsz = be.u32(&h, 24) as u64;
    let pcsz = be.u32(&h, 28) as u64;
    // Sections in file order: text, data, syms, spsz, pcsz; Go maps them by file offset.
    let mut mappings = Vec::new();
    // Go keeps section offsets in uint32 and lets them wrap.
    let mut off = hdrsz as u32;
    let mut data_start = (0, 0);
    for (i, size) in [text, data, syms, spsz, pcsz].into_iter().enumerate() {
        let size = size as u32;
        if i == 1 {
            data_start = (off as u64, size as u64);
        }
        let end = off.wrapping_add(size) as u64;
        let window = Window::new(off as u64, size as u64);
        mappings.push(Mapping { addr: off as u64, size: end.wrapping_sub(off as u64), window, skip: false });
        off = off.wrapping_add(size);
    }
    // Go's debug/plan9obj reads the symbol table lazily: its size does not matter here.
    let _ = syms;
    Ok((Format::Plan9, (data_start, mappings, not_mapped)))
}

/// The section names of a PE file, read leniently (no validity checks beyond the
/// headers' own bounds): for naming a packer, not for Go's readers.
pub(crate) fn pe_section_names<S: Source + ?Sized>(src: &S) -> Vec<Vec<u8>> {
    let mut dos = [0u8; 64];
    if read_exact_at(src, 0, &mut dos).is_err() || !dos.starts_with(b"MZ") {
        return Vec::new();
    }
    let signoff = LE.u32(&dos, 0x3c) as u64;
    let mut fh = [0u8; 24];
    if read_exact_at(src, signoff, &mut fh).is_err() || !fh.starts_with(b"PE\0\0") {
        return Vec::new();
    }
    let nsections = LE.u16(&fh, 6) as u64;
    let opt_size = LE.u16(&fh, 20) as u64;
    let Ok(shdrs) = read_vec_at(src, signoff + 24 + opt_size, 40 * nsections) else {
        return Vec::new();
    };
    shdrs.chunks_exact(40).map(|s| s[..8].split(|&b| b == 0).next().unwrap_or_default().to_vec()).collect()
}
