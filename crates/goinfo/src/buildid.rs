//! Build IDs: the Go build ID as `go tool buildid` reads it, and the GNU build ID.

use bstr::BString;

use super::exe::parse_elf;
use super::goquote;
use super::source::Source;
use super::ReadError;

/// One ELF note record: (type, 4-byte name prefix, descriptor).
type Note = (u32, Vec<u8>, Vec<u8>);

const READ_SIZE: usize = 32 * 1024;
const GO_PREFIX: &[u8] = b"\xff Go build ID: \"";
const GO_END: &[u8] = b"\"\n \xff";
const PT_NOTE: u32 = 4;
const NOTE_GO_BUILD_ID: u32 = 4;
const NOTE_GNU_BUILD_ID: u32 = 3;

/// Reads the build ID exactly as `go tool buildid FILE` does for executables: the ELF
/// `Go` note, else (Go's quirk) the raw GNU build ID bytes, else the quoted ID in the
/// first 32 KiB (or a Mach-O's `__text`). `Ok(None)` when there is none.
pub fn read_go_build_id<S: Source + ?Sized>(src: &S) -> Result<Option<BString>, ReadError> {
    let mut data = vec![0u8; READ_SIZE];
    let n = src.read_at(0, &mut data).map_err(ReadError::Io)?;
    data.truncate(n);
    if data.starts_with(b"\x7fELF") {
        return read_elf(src, data);
    }
    const MACHO: [[u8; 4]; 4] =
        [[0xfe, 0xed, 0xfa, 0xce], [0xfe, 0xed, 0xfa, 0xcf], [0xce, 0xfa, 0xed, 0xfe], [0xcf, 0xfa, 0xed, 0xfe]];
    if MACHO.iter().any(|m| data.starts_with(m)) {
        if let Ok(Some(id)) = read_raw(&data) {
            return Ok(Some(id));
        }
        let text = macho_text(src)?;
        return read_raw(&text);
    }
    read_raw(&data)
}

fn read_raw(data: &[u8]) -> Result<Option<BString>, ReadError> {
    let Some(i) = memchr::memmem::find(data, GO_PREFIX) else {
        return Ok(None);
    };
    let after = i + GO_PREFIX.len();
    let Some(j) = memchr::memmem::find(&data[after..], GO_END) else {
        return Err(ReadError::MalformedBuildId);
    };
    let quoted = &data[after - 1..after + j + 1];
    goquote::unquote(quoted).map(|id| Some(BString::from(id))).map_err(|_| ReadError::MalformedBuildId)
}

/// Note records of the `PT_NOTE` segments: (type, name, descriptor).
fn elf_notes<S: Source + ?Sized>(src: &S, head: &[u8]) -> Result<Vec<Note>, ReadError> {
    // Like Go, parse the program headers from the first 32 KiB only, with the
    // section header fields zeroed so that a section table is not needed.
    let mut data = head.to_vec();
    if data.len() >= 64 {
        match data[4] {
            1 => {
                data[32..36].fill(0);
                data[48] = 0;
                data[49] = 0;
            }
            2 => {
                data[40..48].fill(0);
                data[60] = 0;
                data[61] = 0;
            }
            _ => {}
        }
    }
    let f = parse_elf(data.as_slice(), 0).map_err(|_| ReadError::MalformedBuildId)?;
    let u32_at = |b: &[u8], at: usize| {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if f.big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    };
    let mut notes = Vec::new();
    for p in f.progs.iter().filter(|p| p.typ == PT_NOTE && p.filesz >= 16) {
        let note = match p.off.checked_add(p.filesz) {
            Some(end) if end < data.len() as u64 => data[p.off as usize..end as usize].to_vec(),
            _ => super::source::read_vec_at(src, p.off, p.filesz).map_err(ReadError::Io)?,
        };
        let mut note = note.as_slice();
        let mut filesz = p.filesz;
        let mut off = p.off;
        while filesz >= 16 && note.len() >= 16 {
            let name_size = u32_at(note, 0);
            let val_size = u32_at(note, 4);
            let tag = u32_at(note, 8);
            let name = &note[12..16];
            if name_size == 4 && (16 + val_size as u64) <= note.len() as u64 {
                notes.push((tag, name.to_vec(), note[16..16 + val_size as usize].to_vec()));
            }
            // Go does this in wrapping uint64 arithmetic; so do we.
            let name_size = (name_size as u64 + 3) & !3;
            let val_size = (val_size as u64 + 3) & !3;
            let mut notesz = 12 + name_size + val_size;
            if filesz <= notesz {
                break;
            }
            off = off.wrapping_add(notesz);
            if p.align != 0 {
                let aligned = off.wrapping_add(p.align).wrapping_sub(1) & !(p.align - 1);
                notesz = notesz.wrapping_add(aligned.wrapping_sub(off));
                off = aligned;
            }
            filesz = filesz.wrapping_sub(notesz);
            if notesz > note.len() as u64 {
                break;
            }
            note = &note[notesz as usize..];
        }
    }
    Ok(notes)
}

/// Whether `src` carries a Go build ID of its own: the ELF `Go` note (not Go's
/// fallback to the GNU build ID, which any linker writes), else the quoted ID
/// [`read_go_build_id`] finds in other formats.
pub(crate) fn has_own_go_build_id<S: Source + ?Sized>(src: &S) -> bool {
    let mut data = vec![0u8; READ_SIZE];
    let Ok(n) = src.read_at(0, &mut data) else { return false };
    data.truncate(n);
    if data.starts_with(b"\x7fELF") {
        return elf_notes(src, &data)
            .is_ok_and(|notes| notes.iter().any(|(tag, name, _)| *tag == NOTE_GO_BUILD_ID && name == b"Go\0\0"));
    }
    matches!(read_go_build_id(src), Ok(Some(_)))
}

fn read_elf<S: Source + ?Sized>(src: &S, data: Vec<u8>) -> Result<Option<BString>, ReadError> {
    let notes = elf_notes(src, &data)?;
    let mut gnu = None;
    for (tag, name, desc) in notes {
        if tag == NOTE_GO_BUILD_ID && name == b"Go\0\0" {
            return Ok(Some(BString::from(desc)));
        }
        if tag == NOTE_GNU_BUILD_ID && name == b"GNU\0" {
            gnu = Some(BString::from(desc));
        }
    }
    Ok(gnu.filter(|g| !g.is_empty()))
}

/// The GNU build ID (`NT_GNU_BUILD_ID` note) of an ELF file, if it has one.
///
/// Read from the note sections first: Go's own linker (≥ 1.24) emits a `PT_NOTE`
/// segment that covers only the Go note, leaving `.note.gnu.build-id` outside any
/// note segment. Files without sections fall back to the note segments.
pub fn read_gnu_build_id<S: Source + ?Sized>(src: &S) -> Option<Vec<u8>> {
    let is_gnu = |(tag, name, _): &Note| *tag == NOTE_GNU_BUILD_ID && name == b"GNU\0";
    if let Ok(f) = parse_elf(src, 0) {
        for (off, size) in f.note_sections() {
            let Ok(data) = super::source::read_vec_at(src, off, size) else {
                continue;
            };
            if let Some((_, _, desc)) = parse_notes(&data, f.big).into_iter().find(is_gnu) {
                return Some(desc);
            }
        }
    }
    let mut data = vec![0u8; READ_SIZE];
    let n = src.read_at(0, &mut data).ok()?;
    data.truncate(n);
    if !data.starts_with(b"\x7fELF") {
        return None;
    }
    elf_notes(src, &data).ok()?.into_iter().find(is_gnu).map(|(_, _, desc)| desc)
}

/// The records of a note section: (type, 4-byte name prefix, descriptor).
fn parse_notes(mut data: &[u8], big: bool) -> Vec<Note> {
    let rd = |b: &[u8], at: usize| {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    };
    let mut notes = Vec::new();
    while data.len() >= 12 {
        let name_size = rd(data, 0) as usize;
        let desc_size = rd(data, 4) as usize;
        let tag = rd(data, 8);
        let name_end = 12usize.saturating_add(name_size.saturating_add(3) & !3);
        let Some(desc_end) = name_end.checked_add(desc_size) else {
            break;
        };
        if desc_end > data.len() {
            break;
        }
        let name = data[12..12 + name_size.min(4)].to_vec();
        notes.push((tag, name, data[name_end..desc_end].to_vec()));
        let next = name_end.saturating_add(desc_size.saturating_add(3) & !3);
        if next > data.len() {
            break;
        }
        data = &data[next..];
    }
    notes
}

/// Up to 32 KiB of a Mach-O file's `__text` section.
fn macho_text<S: Source + ?Sized>(src: &S) -> Result<Vec<u8>, ReadError> {
    let mut h = [0u8; 32];
    if src.read_at(0, &mut h).map_err(ReadError::Io)? < 28 {
        return Err(ReadError::MalformedBuildId);
    }
    let little = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) & !1 == 0xfeedface;
    let rd = |b: &[u8], at: usize| {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let is64 = rd(&h, 0) == 0xfeedfacf;
    let ncmd = rd(&h, 16);
    let cmdsz = rd(&h, 20) as u64;
    let cmds =
        super::source::read_vec_at(src, if is64 { 32 } else { 28 }, cmdsz).map_err(|_| ReadError::MalformedBuildId)?;
    let mut dat = cmds.as_slice();
    for _ in 0..ncmd {
        if dat.len() < 8 {
            break;
        }
        let (cmd, siz) = (rd(dat, 0), rd(dat, 4) as usize);
        if siz < 8 || siz > dat.len() {
            return Err(ReadError::MalformedBuildId);
        }
        let c = &dat[..siz];
        dat = &dat[siz..];
        let (hdr, ssize) = match cmd {
            0x19 => (72, 80),
            0x1 => (56, 68),
            _ => continue,
        };
        if c.len() < hdr {
            continue;
        }
        let nsect = rd(c, hdr - 8) as usize;
        for i in 0..nsect {
            let at = hdr + i * ssize;
            if at + ssize > c.len() {
                break;
            }
            let s = &c[at..at + ssize];
            if s[..16].split(|&b| b == 0).next() == Some(b"__text") {
                let (size, off) = if cmd == 0x19 {
                    let size = u64::from(rd(s, 40)) | (u64::from(rd(s, 44)) << 32);
                    let size = if little { size } else { (u64::from(rd(s, 40)) << 32) | u64::from(rd(s, 44)) };
                    (size, rd(s, 48) as u64)
                } else {
                    (rd(s, 36) as u64, rd(s, 40) as u64)
                };
                let n = size.min(READ_SIZE as u64);
                return super::source::read_vec_at(src, off, n).map_err(ReadError::Io);
            }
        }
    }
    Err(ReadError::MalformedBuildId)
}
