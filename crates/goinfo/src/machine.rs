//! The platform an executable's header states: its file format (which
//! narrows `GOOS`) and its machine (which is `GOARCH`). Read from the first
//! bytes only; used to cross-check the `GOOS`/`GOARCH` a binary's build info
//! records before a recipe relies on them.

use crate::source::Source;

/// What the header of an executable says about its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// The file format.
    pub format: crate::Format,
    /// The `GOARCH` the header's machine field means, when it is one Go
    /// builds for (`None` for a machine reprove does not map).
    pub goarch: Option<&'static str>,
}

impl Machine {
    /// Whether a binary for `goos` is written in this file format (ELF for
    /// Linux and the BSDs, PE for Windows, Mach-O for Darwin and iOS, XCOFF
    /// for AIX, a.out for Plan 9).
    pub fn fits_goos(&self, goos: &str) -> bool {
        use crate::Format::*;
        match self.format {
            Pe => goos == "windows",
            MachO | MachOFat => matches!(goos, "darwin" | "ios"),
            Xcoff => goos == "aix",
            Plan9 => goos == "plan9",
            Elf => !matches!(goos, "windows" | "darwin" | "ios" | "aix" | "plan9" | "js" | "wasip1"),
        }
    }

    /// The header's machine in words, for messages (`ELF x86-64` style:
    /// the format and the `GOARCH` it means).
    pub fn describe(&self) -> String {
        let format = match self.format {
            crate::Format::Elf => "ELF",
            crate::Format::Pe => "PE",
            crate::Format::MachO => "Mach-O",
            crate::Format::MachOFat => "Mach-O universal",
            crate::Format::Xcoff => "XCOFF",
            crate::Format::Plan9 => "Plan 9 a.out",
        };
        match self.goarch {
            Some(a) => format!("{format} header, machine {a}"),
            None => format!("{format} header, machine unknown"),
        }
    }
}

fn read<S: Source + ?Sized>(src: &S, off: u64, n: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    (src.read_at(off, &mut buf).ok()? == n).then_some(buf)
}

fn u16_at(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if big { u16::from_be_bytes(x) } else { u16::from_le_bytes(x) })
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big { u32::from_be_bytes(x) } else { u32::from_le_bytes(x) })
}

fn macho_cpu(cpu: u32) -> Option<&'static str> {
    match cpu {
        0x0100_0007 => Some("amd64"),
        0x0100_000c => Some("arm64"),
        7 => Some("386"),
        12 => Some("arm"),
        _ => None,
    }
}

/// The platform `src`'s header states, or `None` when it is not an
/// executable format Go writes.
pub fn read_machine<S: Source + ?Sized>(src: &S) -> Option<Machine> {
    use crate::Format;
    let ident = read(src, 0, 64).or_else(|| {
        read(src, 0, 16).map(|mut v| {
            v.resize(64, 0);
            v
        })
    })?;
    if ident.starts_with(b"\x7fELF") {
        let is64 = ident[4] == 2;
        let big = ident[5] == 2;
        let goarch = match u16_at(&ident, 18, big)? {
            62 => Some("amd64"),
            183 => Some("arm64"),
            3 => Some("386"),
            40 => Some("arm"),
            8 => Some(match (is64, big) {
                (true, true) => "mips64",
                (true, false) => "mips64le",
                (false, true) => "mips",
                (false, false) => "mipsle",
            }),
            21 => Some(if big { "ppc64" } else { "ppc64le" }),
            243 if is64 => Some("riscv64"),
            22 if is64 => Some("s390x"),
            258 => Some("loong64"),
            _ => None,
        };
        return Some(Machine { format: Format::Elf, goarch });
    }
    if ident.starts_with(b"MZ") {
        let signoff = u32_at(&ident, 0x3c, false)? as u64;
        let pe = read(src, signoff, 6)?;
        if !pe.starts_with(b"PE\0\0") {
            return None;
        }
        let goarch = match u16_at(&pe, 4, false)? {
            0x8664 => Some("amd64"),
            0xaa64 => Some("arm64"),
            0x14c => Some("386"),
            0x1c4 => Some("arm"),
            _ => None,
        };
        return Some(Machine { format: Format::Pe, goarch });
    }
    if ident.starts_with(b"\xfe\xed\xfa") || ident[1..].starts_with(b"\xfa\xed\xfe") {
        let big = ident[0] == 0xfe;
        return Some(Machine { format: Format::MachO, goarch: macho_cpu(u32_at(&ident, 4, big)?) });
    }
    if ident.starts_with(b"\xca\xfe\xba\xbe") || ident.starts_with(b"\xca\xfe\xba\xbf") {
        // Go reads the first architecture of a universal binary.
        return Some(Machine { format: Format::MachOFat, goarch: macho_cpu(u32_at(&ident, 8, true)?) });
    }
    if ident.starts_with(&[0x01, 0xf7]) {
        return Some(Machine { format: Format::Xcoff, goarch: Some("ppc64") });
    }
    if ident.starts_with(&[0x01, 0xdf]) {
        return Some(Machine { format: Format::Xcoff, goarch: None });
    }
    let plan9 = match u32_at(&ident, 0, true)? & !0x8000 {
        0x01eb => Some("386"),
        0x0a97 => Some("amd64"),
        0x0647 => Some("arm"),
        _ => return None,
    };
    Some(Machine { format: Format::Plan9, goarch: plan9 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_machines_and_formats() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        let m = read_machine(elf.as_slice()).unwrap_or_else(|| panic!("not read"));
        assert_eq!(m.goarch, Some("amd64"));
        assert!(m.fits_goos("linux") && !m.fits_goos("windows") && !m.fits_goos("darwin"));
        elf[18] = 183;
        assert_eq!(read_machine(elf.as_slice()).and_then(|m| m.goarch), Some("arm64"));
        elf[18] = 0x99;
        assert_eq!(read_machine(elf.as_slice()).map(|m| m.goarch), Some(None));
        assert_eq!(read_machine(&b"\x7fEL"[..]), None);
        assert_eq!(read_machine(&[0u8; 100][..]), None);
    }
}
