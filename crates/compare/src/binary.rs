//! What one binary looks like to the comparison: sections with their bytes and
//! hashes, function and `-X` string symbols, build ID locations.
//!
//! Everything borrows from the file's bytes; nothing here compares two files.

use std::collections::HashMap;
use std::ops::Range;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader as _, SectionHeader as _};
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use sha2::{Digest, Sha256};

use crate::model::{ObjectError, ObjectSummary};

/// The parsed structure of one binary.
pub(crate) struct Parsed<'a> {
    pub(crate) summary: ObjectSummary,
    pub(crate) sections: Vec<Section<'a>>,
    /// Text symbols by name with their code; `None` without a symbol table.
    pub(crate) functions: Option<HashMap<&'a [u8], &'a [u8]>>,
    /// Data symbols named `*.str` (the string data `-ldflags=-X` creates) with their bytes.
    pub(crate) x_strings: HashMap<&'a [u8], &'a [u8]>,
    /// File ranges holding build IDs (ELF notes, Mach-O UUID); the text marker is found later.
    pub(crate) build_id_ranges: Vec<Range<usize>>,
    /// ELF section and program headers that locate a build ID note.
    pub(crate) note_headers: Vec<NoteHeader>,
}

/// An ELF header that says where a build ID note is: a `.note.go.buildid` or
/// `.note.gnu.build-id` section header, or a `PT_NOTE` program header.
///
/// A build ID of another length moves its note: then only the fields in
/// [`fields`](Self::fields) change, the ones that hold the note's offset, address and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoteHeader {
    /// Which header: a program header (`true`) or a section header, by table index.
    pub(crate) which: (bool, usize),
    /// The file range it describes.
    pub(crate) range: Range<u64>,
    /// Its virtual address less its file offset (the same for every header of one mapping).
    pub(crate) bias: u64,
    /// For a program header, the physical address less the file offset; the size in
    /// memory less the size in the file. Zero for a section header.
    pub(crate) extra: (u64, u64),
    /// The file ranges of the header's offset, address and size fields.
    pub(crate) fields: Vec<Range<usize>>,
}

/// One section of one binary.
pub(crate) struct Section<'a> {
    pub(crate) name: String,
    pub(crate) kind: SectionKind,
    pub(crate) address: u64,
    pub(crate) size: u64,
    /// The section's bytes in the file, `None` for `.bss`-like sections or when out of bounds.
    pub(crate) data: Option<&'a [u8]>,
    /// Where [`data`](Self::data) starts in the file.
    pub(crate) offset: Option<usize>,
    /// Filled in by [`hash_sections`], which hashes equal sections of two files once.
    pub(crate) sha256: Option<[u8; 32]>,
}

impl Section<'_> {
    /// Whether the section holds read-only or writable program data worth scanning for strings.
    pub(crate) fn is_program_data(&self) -> bool {
        matches!(
            self.kind,
            SectionKind::Data
                | SectionKind::ReadOnlyData
                | SectionKind::ReadOnlyDataWithRel
                | SectionKind::ReadOnlyString
        ) && !is_debug_name(&self.name)
    }
}

fn is_debug_name(name: &str) -> bool {
    let bare = name.rsplit(',').next().unwrap_or(name);
    bare.starts_with(".debug_")
        || bare.starts_with(".zdebug_")
        || bare.starts_with("__debug_")
        || bare.starts_with("__zdebug_")
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Parses `data` as an object file. Section hashes are left to [`hash_sections`].
pub(crate) fn parse(data: &[u8]) -> Result<Parsed<'_>, ObjectError> {
    let file = object::File::parse(data).map_err(|e| ObjectError::Parse { message: e.to_string() })?;
    let format = match file.format() {
        object::BinaryFormat::Elf => "elf",
        object::BinaryFormat::MachO => "macho",
        object::BinaryFormat::Pe => "pe",
        object::BinaryFormat::Coff => "coff",
        object::BinaryFormat::Xcoff => "xcoff",
        object::BinaryFormat::Wasm => "wasm",
        _ => "other",
    };
    let is_macho = format == "macho";

    let mut sections = Vec::new();
    let mut section_index = HashMap::new();
    let mut has_dwarf = false;
    let mut build_id_ranges = Vec::new();
    for section in file.sections() {
        let raw = String::from_utf8_lossy(section.name_bytes().unwrap_or(b"?")).into_owned();
        let name = match section.segment_name_bytes() {
            Ok(Some(seg)) if is_macho => format!("{},{raw}", String::from_utf8_lossy(seg)),
            _ => raw,
        };
        if is_debug_name(&name) {
            has_dwarf = true;
        }
        let range = section.file_range().and_then(|(off, len)| {
            let start = usize::try_from(off).ok()?;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            (end <= data.len()).then_some(start..end)
        });
        let note = match name.as_str() {
            ".note.go.buildid" => Some((&b"Go\0\0"[..], 4)),
            ".note.gnu.build-id" => Some((&b"GNU\0"[..], 3)),
            _ => None,
        };
        if let (true, Some((owner, kind)), Some(r)) = (format == "elf", note, &range) {
            if is_note(&data[r.clone()], owner, kind, file.is_little_endian()) {
                build_id_ranges.push(r.clone());
            }
        }
        let offset = range.as_ref().map(|r| r.start);
        let bytes = range.map(|r| &data[r]);
        section_index.insert(section.index(), sections.len());
        sections.push(Section {
            name,
            kind: section.kind(),
            address: section.address(),
            size: section.size(),
            data: bytes,
            offset,
            sha256: None,
        });
    }

    if let Ok(Some(uuid)) = file.mach_uuid() {
        let head = &data[..data.len().min(64 * 1024)];
        if let Some(at) = memchr::memmem::find(head, &uuid) {
            build_id_ranges.push(at..at + uuid.len());
        }
    }

    let note_headers = match &file {
        object::File::Elf32(_) => elf_note_headers::<elf::FileHeader32<Endianness>>(data),
        object::File::Elf64(_) => elf_note_headers::<elf::FileHeader64<Endianness>>(data),
        _ => Vec::new(),
    };
    let (functions, x_strings) = symbols(&file, &sections, &section_index, is_macho);
    let summary = ObjectSummary {
        format: format.to_string(),
        architecture: format!("{:?}", file.architecture()),
        has_symbols: functions.is_some(),
        has_dwarf,
    };
    Ok(Parsed { summary, sections, functions, x_strings, build_id_ranges, note_headers })
}

/// Whether `bytes` is exactly one ELF note (`Elf_Nhdr`, name and descriptor padded to
/// four bytes) with the name `owner` (NUL and padding included) and type `kind`.
fn is_note(bytes: &[u8], owner: &[u8], kind: u32, little: bool) -> bool {
    let word = |at: usize| {
        let w: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if little { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }))
    };
    let (Some(namesz), Some(descsz), Some(ntype)) = (word(0), word(4), word(8)) else {
        return false;
    };
    let pad = |n: u64| n.div_ceil(4) * 4;
    let owner_len = owner.len() as u64;
    namesz <= owner_len
        && pad(namesz) == owner_len
        && ntype == u64::from(kind)
        && bytes.get(12..12 + owner.len()) == Some(owner)
        && 12 + owner_len + pad(descsz) == bytes.len() as u64
}

/// The build ID notes' section headers and the `PT_NOTE` program headers that cover only
/// notes. Empty when the headers cannot be read.
fn elf_note_headers<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Vec<NoteHeader> {
    let Ok(header) = Elf::parse(data) else {
        return Vec::new();
    };
    let Ok(endian) = header.endian() else {
        return Vec::new();
    };
    // Field offsets within one header, and their width: Elf32_Phdr/Elf64_Phdr, Elf32_Shdr/Elf64_Shdr.
    let (width, p_fields, s_fields): (usize, [usize; 5], [usize; 3]) = if header.is_type_64() {
        (8, [8, 16, 24, 32, 40], [16, 24, 32])
    } else {
        (4, [4, 8, 12, 16, 20], [12, 16, 20])
    };
    let field_ranges = |table: u64, entsize: u16, index: usize, offsets: &[usize]| -> Option<Vec<Range<usize>>> {
        let start = usize::try_from(table).ok()?.checked_add(index.checked_mul(usize::from(entsize))?)?;
        offsets
            .iter()
            .map(|&f| {
                let at = start.checked_add(f)?;
                let end = at.checked_add(width)?;
                (end <= data.len()).then_some(at..end)
            })
            .collect()
    };
    let mut out = Vec::new();
    let mut notes: Vec<Range<u64>> = Vec::new();
    if let Ok(table) = header.sections(endian, data) {
        let shoff: u64 = header.e_shoff(endian).into();
        for (index, section) in table.iter().enumerate() {
            if section.sh_type(endian) != elf::SHT_NOTE {
                continue;
            }
            let (offset, size): (u64, u64) = (section.sh_offset(endian).into(), section.sh_size(endian).into());
            let Some(end) = offset.checked_add(size) else { continue };
            notes.push(offset..end);
            let name = table.section_name(endian, section).unwrap_or_default();
            if name != b".note.go.buildid" && name != b".note.gnu.build-id" {
                continue;
            }
            let Some(fields) = field_ranges(shoff, header.e_shentsize(endian), index, &s_fields) else { continue };
            let addr: u64 = section.sh_addr(endian).into();
            out.push(NoteHeader {
                which: (false, index),
                range: offset..end,
                bias: addr.wrapping_sub(offset),
                extra: (0, 0),
                fields,
            });
        }
    }
    notes.sort_unstable_by_key(|r| r.start);
    if let Ok(segments) = header.program_headers(endian, data) {
        let phoff: u64 = header.e_phoff(endian).into();
        for (index, segment) in segments.iter().enumerate() {
            if segment.p_type(endian) != elf::PT_NOTE {
                continue;
            }
            let (offset, filesz): (u64, u64) = (segment.p_offset(endian).into(), segment.p_filesz(endian).into());
            let Some(end) = offset.checked_add(filesz) else { continue };
            if !covered_by(&(offset..end), &notes) {
                continue;
            }
            let Some(fields) = field_ranges(phoff, header.e_phentsize(endian), index, &p_fields) else { continue };
            let (vaddr, paddr, memsz): (u64, u64, u64) =
                (segment.p_vaddr(endian).into(), segment.p_paddr(endian).into(), segment.p_memsz(endian).into());
            out.push(NoteHeader {
                which: (true, index),
                range: offset..end,
                bias: vaddr.wrapping_sub(offset),
                extra: (paddr.wrapping_sub(offset), memsz.wrapping_sub(filesz)),
                fields,
            });
        }
    }
    out
}

/// Whether `range` starts where a note starts, ends where one ends, and has only notes
/// and their alignment padding (under 8 bytes) in between. `notes` is sorted.
fn covered_by(range: &Range<u64>, notes: &[Range<u64>]) -> bool {
    let Some(first) = notes.iter().position(|n| n.start == range.start) else {
        return false;
    };
    let mut end = range.start;
    for note in &notes[first..] {
        if note.start >= range.end {
            break;
        }
        if note.start > end.saturating_add(7) {
            return false;
        }
        end = end.max(note.end);
    }
    end == range.end
}

type SymbolMaps<'a> = (Option<HashMap<&'a [u8], &'a [u8]>>, HashMap<&'a [u8], &'a [u8]>);

/// Collects text symbols with their code and `*.str` data symbols with their bytes.
///
/// Symbols without a size (Mach-O) extend to the next symbol of the same section.
fn symbols<'a>(
    file: &object::File<'a>,
    sections: &[Section<'a>],
    section_index: &HashMap<object::SectionIndex, usize>,
    strip_underscore: bool,
) -> SymbolMaps<'a> {
    struct Sym<'a> {
        name: &'a [u8],
        section: usize,
        address: u64,
        size: u64,
        text: bool,
    }
    let mut syms = Vec::new();
    let mut any = false;
    for symbol in file.symbols() {
        any = true;
        // Mach-O classifies symbols by section, and Go's `__rodata` is no standard section:
        // anything that is not code may hold a `-X` string.
        let text = match symbol.kind() {
            SymbolKind::Text => true,
            SymbolKind::Data | SymbolKind::Unknown => false,
            _ => continue,
        };
        let Some(idx) = symbol.section_index() else {
            continue;
        };
        let Some(&section) = section_index.get(&idx) else {
            continue;
        };
        let Ok(name) = symbol.name_bytes() else {
            continue;
        };
        // Mach-O prefixes C symbol names with `_`; Go's names start without one.
        let name = if strip_underscore { name.strip_prefix(b"_").unwrap_or(name) } else { name };
        if name.is_empty() || (!text && !name.ends_with(b".str")) {
            continue;
        }
        syms.push(Sym { name, section, address: symbol.address(), size: symbol.size(), text });
    }
    if !any {
        return (None, HashMap::new());
    }
    syms.sort_unstable_by_key(|s| (s.section, s.address));

    let mut functions = HashMap::with_capacity(syms.len());
    let mut x_strings = HashMap::new();
    for (i, s) in syms.iter().enumerate() {
        let Some(section) = sections.get(s.section) else {
            continue;
        };
        let Some(data) = section.data else { continue };
        let base = section.address;
        let size = if s.size > 0 {
            s.size
        } else {
            let next = syms[i + 1..]
                .iter()
                .find(|n| n.section == s.section && n.address > s.address)
                .map(|n| n.address)
                .unwrap_or(base.saturating_add(section.size));
            next.saturating_sub(s.address)
        };
        let bytes = s.address.checked_sub(base).and_then(|off| usize::try_from(off).ok()).and_then(|off| {
            let end = off.checked_add(usize::try_from(size).ok()?)?;
            data.get(off..end)
        });
        let Some(bytes) = bytes else { continue };
        if s.text {
            functions.entry(s.name).or_insert(bytes);
        } else {
            // The linker NUL-terminates -X strings; without a symbol size (PE, Mach-O) the
            // bytes run to the next symbol, so cut there too.
            let value = memchr::memchr(0, bytes).map_or(bytes, |end| &bytes[..end]);
            x_strings.entry(s.name).or_insert(value);
        }
    }
    (Some(functions), x_strings)
}

/// Pairs the sections of two files by name and occurrence, so duplicate names pair up
/// in order: first every section of `a` with its partner in `b`, then those only in `b`.
pub(crate) fn match_sections(a: &[Section<'_>], b: &[Section<'_>]) -> Vec<(Option<usize>, Option<usize>)> {
    fn keys<'s>(sections: &'s [Section<'_>]) -> Vec<(&'s str, usize)> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        sections
            .iter()
            .map(|s| {
                let n = seen.entry(s.name.as_str()).or_insert(0);
                *n += 1;
                (s.name.as_str(), *n - 1)
            })
            .collect()
    }
    let (ka, kb) = (keys(a), keys(b));
    let index_b: HashMap<&(&str, usize), usize> = kb.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut used_b = vec![false; b.len()];
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    for (i, k) in ka.iter().enumerate() {
        let j = index_b.get(k).copied();
        if let Some(j) = j {
            used_b[j] = true;
        }
        out.push((Some(i), j));
    }
    out.extend(used_b.iter().enumerate().filter(|(_, used)| !**used).map(|(j, _)| (None, Some(j))));
    out
}

/// Hashes the sections of both files, a section equal in both only once, on two threads.
pub(crate) fn hash_sections(a: &mut [Section<'_>], b: &mut [Section<'_>]) {
    let mut jobs: Vec<(&[u8], Option<usize>, Option<usize>)> = Vec::new();
    for (ia, ib) in match_sections(a, b) {
        let da = ia.and_then(|i| a[i].data);
        let db = ib.and_then(|j| b[j].data);
        match (da, db) {
            (Some(x), Some(y)) if x == y => jobs.push((x, ia, ib)),
            _ => {
                if let Some(x) = da {
                    jobs.push((x, ia, None));
                }
                if let Some(y) = db {
                    jobs.push((y, None, ib));
                }
            }
        }
    }
    // Largest first, each to the less loaded of two lists.
    jobs.sort_unstable_by_key(|j| std::cmp::Reverse(j.0.len()));
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut load_left, mut load_right) = (0usize, 0usize);
    for job in jobs {
        if load_left <= load_right {
            load_left += job.0.len();
            left.push(job);
        } else {
            load_right += job.0.len();
            right.push(job);
        }
    }
    let run = |jobs: Vec<(&[u8], Option<usize>, Option<usize>)>| -> Vec<([u8; 32], Option<usize>, Option<usize>)> {
        jobs.into_iter().map(|(data, ia, ib)| (sha256(data), ia, ib)).collect()
    };
    let (done_left, done_right) = std::thread::scope(|scope| {
        let right_jobs = right.clone();
        match std::thread::Builder::new().spawn_scoped(scope, move || run(right_jobs)) {
            Ok(handle) => {
                let l = run(left);
                match handle.join() {
                    Ok(r) => (l, r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Err(_) => (run(left), run(right)),
        }
    });
    for (hash, ia, ib) in done_left.into_iter().chain(done_right) {
        if let Some(i) = ia {
            a[i].sha256 = Some(hash);
        }
        if let Some(j) = ib {
            b[j].sha256 = Some(hash);
        }
    }
}
