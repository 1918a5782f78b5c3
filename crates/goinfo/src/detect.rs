//! Is this a Go executable? The question syft's Go cataloger asks of every file
//! of an image, answered the way `go version -m` reads build info, plus the Go
//! executables whose build info was removed (found by their Go build ID or their
//! pclntab), so that a caller can list them instead of skipping them.

use crate::source::Source;
use crate::{BuildInfo, Format, ReadError};

/// What [`detect`] found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detection {
    /// A Go executable with build info, as `go version -m` reads it.
    Go {
        /// The container format.
        format: Format,
        /// Its build info.
        build_info: Box<BuildInfo>,
    },
    /// An executable Go linked whose build info cannot be read (removed, or malformed).
    GoWithoutBuildInfo {
        /// The container format.
        format: Format,
        /// What shows it is Go: `Go build ID`, `pclntab`.
        evidence: &'static str,
        /// Why the build info is missing, in Go's words (`not a Go executable`).
        reason: String,
    },
    /// Not an executable, or one Go did not link.
    NotGo,
}

/// Whether `head` (the first bytes of a file, at least 4) starts like an
/// executable Go can build: ELF, PE (`MZ`), Mach-O thin or universal.
pub fn looks_executable(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || head.starts_with(b"\xfe\xed\xfa\xce")
        || head.starts_with(b"\xfe\xed\xfa\xcf")
        || head.starts_with(b"\xce\xfa\xed\xfe")
        || head.starts_with(b"\xcf\xfa\xed\xfe")
        || head.starts_with(b"\xca\xfe\xba\xbe")
        || head.starts_with(b"\xca\xfe\xba\xbf")
}

/// The pclntab headers Go's linkers wrote (Go 1.2, 1.16, 1.18, 1.20+), little and
/// big endian: magic, two zero pad bytes; the next two bytes (instruction size
/// quantum 1, 2 or 4, pointer size 4 or 8) are checked after a match.
const PCLNTAB_MAGICS: [[u8; 6]; 8] = [
    [0xf1, 0xff, 0xff, 0xff, 0, 0],
    [0xf0, 0xff, 0xff, 0xff, 0, 0],
    [0xfa, 0xff, 0xff, 0xff, 0, 0],
    [0xfb, 0xff, 0xff, 0xff, 0, 0],
    [0xff, 0xff, 0xff, 0xf1, 0, 0],
    [0xff, 0xff, 0xff, 0xf0, 0, 0],
    [0xff, 0xff, 0xff, 0xfa, 0, 0],
    [0xff, 0xff, 0xff, 0xfb, 0, 0],
];

/// Whether `exe` holds a Go pclntab header (what `.gopclntab`, `__gopclntab` or
/// `runtime.pclntab` in PE's `.rdata` start with).
fn has_pclntab(exe: &[u8]) -> bool {
    PCLNTAB_MAGICS.iter().any(|magic| {
        memchr::memmem::find_iter(exe, magic).any(|i| {
            let quantum = exe.get(i + 6).copied();
            let ptr = exe.get(i + 7).copied();
            matches!(quantum, Some(1 | 2 | 4)) && matches!(ptr, Some(4 | 8))
        })
    })
}

/// Decides whether `exe` (a whole file) is a Go executable: with build info
/// (read exactly as [`crate::read_build_info`]), without (a Go build ID or a
/// pclntab in an ELF, PE or Mach-O file), or not Go. Never fails: a file that
/// cannot be parsed is [`Detection::NotGo`] unless Go's marks are in it.
pub fn detect(exe: &[u8]) -> Detection {
    if !looks_executable(exe) {
        return Detection::NotGo;
    }
    let format = match crate::read_machine(exe) {
        Some(m) => m.format,
        None => return Detection::NotGo,
    };
    let reason = match crate::read::build_info(exe) {
        Ok((format, bi)) => return Detection::Go { format, build_info: Box::new(bi) },
        Err(e) => e,
    };
    if matches!(reason, ReadError::Io(_)) {
        return Detection::NotGo;
    }
    let evidence = if crate::buildid::has_own_go_build_id(exe) {
        "Go build ID"
    } else if has_pclntab(exe) {
        "pclntab"
    } else {
        return Detection::NotGo;
    };
    Detection::GoWithoutBuildInfo { format, evidence, reason: reason.to_string() }
}

/// [`detect`] over any [`Source`] that fits in memory: reads it whole (`limit`
/// bytes at most; a larger source is an error).
pub fn detect_from<S: Source + ?Sized>(src: &S, limit: u64) -> std::io::Result<Detection> {
    if src.len() > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    let data = crate::source::read_vec_at(src, 0, src.len())?;
    Ok(detect(&data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_executables_are_not_go() {
        assert_eq!(detect(b""), Detection::NotGo);
        assert_eq!(detect(b"#!/bin/sh\necho hi\n"), Detection::NotGo);
        // An ELF header that does not parse, with no Go marks.
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(detect(&elf), Detection::NotGo);
    }

    #[test]
    fn a_host_executable_is_not_go() {
        // Its GNU build ID is what `go tool buildid` prints for it; that is not Go's mark.
        for path in ["/usr/bin/true", "/bin/true"] {
            if let Ok(data) = std::fs::read(path) {
                assert_eq!(detect(&data), Detection::NotGo, "{path}");
                return;
            }
        }
    }

    #[test]
    fn a_pclntab_without_build_info_is_go() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        elf.extend_from_slice(&[0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8]);
        match detect(&elf) {
            Detection::GoWithoutBuildInfo { format: Format::Elf, evidence: "pclntab", .. } => {}
            other => panic!("{other:?}"),
        }
        // The wrong pointer size is not a pclntab.
        let n = elf.len();
        elf[n - 1] = 3;
        assert_eq!(detect(&elf), Detection::NotGo);
    }
}
