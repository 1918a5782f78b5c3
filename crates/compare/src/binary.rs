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
    /// The file range of each text symbol's code, sorted by start; empty without symbols.
    pub(crate) function_ranges: Vec<(Range<usize>, &'a [u8])>,
    /// The Go function table (`.gopclntab`), when the file has one as a section.
    pub(crate) pclntab: Option<&'a [u8]>,
    /// Whether the file is little-endian.
    pub(crate) little_endian: bool,
    /// The ELF layout, for telling a file with build ID notes from one without.
    pub(crate) elf: Option<ElfLayout>,
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
    let elf = match &file {
        object::File::Elf32(_) => elf_layout::<elf::FileHeader32<Endianness>>(data),
        object::File::Elf64(_) => elf_layout::<elf::FileHeader64<Endianness>>(data),
        _ => None,
    };
    let Symbols { functions, x_strings, function_ranges } = symbols(&file, &sections, &section_index, is_macho);
    let pclntab =
        sections.iter().find(|s| s.name == ".gopclntab" || s.name.ends_with(",__gopclntab")).and_then(|s| s.data);
    let summary = ObjectSummary {
        format: format.to_string(),
        architecture: format!("{:?}", file.architecture()),
        has_symbols: functions.is_some(),
        has_dwarf,
    };
    Ok(Parsed {
        summary,
        sections,
        functions,
        x_strings,
        function_ranges,
        pclntab,
        little_endian: file.is_little_endian(),
        elf,
        build_id_ranges,
        note_headers,
    })
}

impl Parsed<'_> {
    /// Where file offset `at` lies: the section holding it, the offset within the
    /// section, and the function whose code holds it (from the symbol table, else
    /// from Go's function table), when known.
    pub(crate) fn place(&self, at: usize) -> Option<Place> {
        let section = self.sections.iter().find(|s| {
            let (Some(start), Some(data)) = (s.offset, s.data) else { return false };
            start <= at && at < start + data.len()
        });
        let Some(section) = section else {
            // The ELF headers are no section, but say what a change there touched.
            let names = ["ELF header", "program header table", "section header table"];
            let ranges = self.elf.as_ref().map(|l| l.header_ranges.as_slice()).unwrap_or_default();
            return names.iter().zip(ranges).find(|(_, r)| r.contains(&at)).map(|(name, r)| Place {
                section: (*name).to_string(),
                within: (at - r.start) as u64,
                function: None,
            });
        };
        let within = at - section.offset.unwrap_or(0);
        let function = match self.function_ranges.partition_point(|(r, _)| r.start <= at) {
            0 => None,
            i => self
                .function_ranges
                .get(i - 1)
                .filter(|(r, _)| at < r.end)
                .map(|(r, name)| (String::from_utf8_lossy(name).into_owned(), (at - r.start) as u64)),
        };
        let function = function.or_else(|| {
            let address = section.address.checked_add(within as u64)?;
            let table = self.pclntab?;
            let text = self.sections.iter().find(|s| s.name == ".text" || s.name == "__TEXT,__text").map(|s| s.address);
            crate::pclntab::function_at(table, self.little_endian, text, address)
        });
        Some(Place { section: section.name.clone(), within: within as u64, function })
    }
}

/// Where a file offset lies in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// The section's name.
    pub(crate) section: String,
    /// The offset within the section.
    pub(crate) within: u64,
    /// The function holding it, and the offset within the function.
    pub(crate) function: Option<(String, u64)>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{:#x}", self.section, self.within)?;
        if let Some((name, off)) = &self.function {
            write!(f, ", in {name}+{off:#x}")?;
        }
        Ok(())
    }
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

/// An ELF file's headers, as far as telling a file with build ID notes from the same
/// file without them needs: `-ldflags=-buildid=` drops the notes, their section and
/// program headers and their names, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfLayout {
    /// The ELF header fields that do not count headers: e_ident, then e_type, e_machine,
    /// e_version, e_entry, e_phoff, e_flags, e_ehsize, e_phentsize, e_shentsize.
    pub(crate) header: (Vec<u8>, [u64; 9]),
    /// The program headers, in order.
    pub(crate) segments: Vec<ElfSegment>,
    /// The section headers, in order.
    pub(crate) sections: Vec<ElfSection>,
    /// The index of the section name table.
    pub(crate) shstrndx: usize,
    /// The file ranges of the ELF header, the program header table and the section header table.
    pub(crate) header_ranges: Vec<Range<usize>>,
}

/// One program header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfSegment {
    pub(crate) kind: u32,
    pub(crate) flags: u32,
    pub(crate) offset: u64,
    pub(crate) vaddr: u64,
    pub(crate) paddr: u64,
    pub(crate) filesz: u64,
    pub(crate) memsz: u64,
    pub(crate) align: u64,
}

/// One section header, with the sections it links to named rather than numbered
/// (numbers change when sections before them go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfSection {
    pub(crate) name: Vec<u8>,
    pub(crate) kind: u32,
    pub(crate) flags: u64,
    pub(crate) addr: u64,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) link: Option<Vec<u8>>,
    /// `sh_info`, or with `SHF_INFO_LINK` the name of the section it numbers.
    pub(crate) info: Result<u64, Vec<u8>>,
    pub(crate) addralign: u64,
    pub(crate) entsize: u64,
}

impl ElfSection {
    /// Whether this is a build ID note (Go's or the GNU one `-B gobuildid` derives from it).
    pub(crate) fn is_build_id_note(&self) -> bool {
        self.kind == elf::SHT_NOTE && (self.name == b".note.go.buildid" || self.name == b".note.gnu.build-id")
    }

    /// The file range of its bytes; `None` for `SHT_NOBITS` and empty sections.
    pub(crate) fn file_range(&self) -> Option<Range<u64>> {
        (self.kind != elf::SHT_NOBITS && self.size > 0).then(|| self.offset..self.offset.saturating_add(self.size))
    }
}

fn elf_layout<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<ElfLayout> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let fields = [
        u64::from(header.e_type(endian)),
        u64::from(header.e_machine(endian)),
        u64::from(header.e_version(endian)),
        header.e_entry(endian).into(),
        header.e_phoff(endian).into(),
        u64::from(header.e_flags(endian)),
        u64::from(header.e_ehsize(endian)),
        u64::from(header.e_phentsize(endian)),
        u64::from(header.e_shentsize(endian)),
    ];
    let segments = header
        .program_headers(endian, data)
        .ok()?
        .iter()
        .map(|p| ElfSegment {
            kind: p.p_type(endian),
            flags: p.p_flags(endian),
            offset: p.p_offset(endian).into(),
            vaddr: p.p_vaddr(endian).into(),
            paddr: p.p_paddr(endian).into(),
            filesz: p.p_filesz(endian).into(),
            memsz: p.p_memsz(endian).into(),
            align: p.p_align(endian).into(),
        })
        .collect::<Vec<_>>();
    let table = header.sections(endian, data).ok()?;
    let name_of = |index: usize| -> Option<Vec<u8>> {
        let section = table.section(object::SectionIndex(index)).ok()?;
        table.section_name(endian, section).ok().map(<[u8]>::to_vec)
    };
    let sections = table
        .iter()
        .map(|s| {
            let link = s.sh_link(endian) as usize;
            let flags: u64 = s.sh_flags(endian).into();
            let info = s.sh_info(endian);
            ElfSection {
                name: table.section_name(endian, s).map(<[u8]>::to_vec).unwrap_or_default(),
                kind: s.sh_type(endian),
                flags,
                addr: s.sh_addr(endian).into(),
                offset: s.sh_offset(endian).into(),
                size: s.sh_size(endian).into(),
                link: if link == 0 { None } else { Some(name_of(link).unwrap_or_default()) },
                // With SHF_INFO_LINK, sh_info is a section number: named, like sh_link.
                info: if flags & u64::from(elf::SHF_INFO_LINK) != 0 {
                    Err(name_of(info as usize).unwrap_or_default())
                } else {
                    Ok(u64::from(info))
                },
                addralign: s.sh_addralign(endian).into(),
                entsize: s.sh_entsize(endian).into(),
            }
        })
        .collect::<Vec<_>>();
    let ehsize = usize::from(header.e_ehsize(endian));
    let table_range = |off: u64, n: usize, size: u16| -> Option<Range<usize>> {
        let start = usize::try_from(off).ok()?;
        Some(start..start.checked_add(n.checked_mul(usize::from(size))?)?)
    };
    let header_ranges = vec![
        0..ehsize,
        table_range(header.e_phoff(endian).into(), segments.len(), header.e_phentsize(endian))?,
        table_range(header.e_shoff(endian).into(), sections.len(), header.e_shentsize(endian))?,
    ];
    Some(ElfLayout {
        header: (data.get(..16)?.to_vec(), fields),
        segments,
        sections,
        shstrndx: usize::from(header.e_shstrndx(endian)),
        header_ranges,
    })
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

/// What the symbol table gives: functions with their code, `-X` strings, the file range
/// of each function.
struct Symbols<'a> {
    functions: Option<HashMap<&'a [u8], &'a [u8]>>,
    x_strings: HashMap<&'a [u8], &'a [u8]>,
    function_ranges: Vec<(Range<usize>, &'a [u8])>,
}

/// Collects text symbols with their code and `*.str` data symbols with their bytes.
///
/// Symbols without a size (Mach-O) extend to the next symbol of the same section.
fn symbols<'a>(
    file: &object::File<'a>,
    sections: &[Section<'a>],
    section_index: &HashMap<object::SectionIndex, usize>,
    strip_underscore: bool,
) -> Symbols<'a> {
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
        return Symbols { functions: None, x_strings: HashMap::new(), function_ranges: Vec::new() };
    }
    syms.sort_unstable_by_key(|s| (s.section, s.address));

    let mut functions = HashMap::with_capacity(syms.len());
    let mut x_strings = HashMap::new();
    let mut function_ranges = Vec::new();
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
        let range = s.address.checked_sub(base).and_then(|off| usize::try_from(off).ok()).and_then(|off| {
            let end = off.checked_add(usize::try_from(size).ok()?)?;
            (end <= data.len()).then_some(off..end)
        });
        let Some(range) = range else { continue };
        let bytes = &data[range.clone()];
        if s.text {
            if let Some(start) = section.offset {
                function_ranges.push((start + range.start..start + range.end, s.name));
            }
            functions.entry(s.name).or_insert(bytes);
        } else {
            // The linker NUL-terminates -X strings; without a symbol size (PE, Mach-O) the
            // bytes run to the next symbol, so cut there too.
            let value = memchr::memchr(0, bytes).map_or(bytes, |end| &bytes[..end]);
            x_strings.entry(s.name).or_insert(value);
        }
    }
    function_ranges.sort_unstable_by_key(|(r, _)| r.start);
    Symbols { functions: Some(functions), x_strings, function_ranges }
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
