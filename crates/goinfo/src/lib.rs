//! Go binary forensics: the build info and build IDs a Go binary carries.
//!
//! What goes in: an executable (ELF, PE, Mach-O thin or fat, XCOFF, Plan 9 a.out),
//! as a byte slice or a file read positionally. What comes out: a [`BuildInfo`]
//! read exactly as Go's `debug/buildinfo` reads it, rendered exactly as
//! `go version -m` ([`format_text`]) and `go version -m -json` ([`format_json`])
//! render it, the Go and GNU build IDs, and whether the file is still what `go build`
//! linked (its content ID, [`self_check`]).
//!
//! Go's readers are re-implemented rather than approximated: the same sections
//! are searched, the same files are refused with the same words, and the tests
//! compare every output with the real `go` byte for byte. Go 1.26 does not read
//! build info from WebAssembly modules, so neither does this module.
//!
//! What it is not: a general object-file library. Section and symbol tables for
//! comparisons are read by the `compare` crate.
//!
//! # Design notes
//!
//! Go binary forensics.
//! - `source.rs`: positional reads over a file or bytes (Go's `io.ReaderAt` and
//!   `io.SectionReader` semantics); nothing reads a whole binary to get its build info.
//! - `exe.rs`: ELF, PE, Mach-O (thin and fat), XCOFF, Plan 9 headers, parsed with
//!   the validity checks of Go's `debug/*` packages, answering only "where is the
//!   data" and "which file window maps this address".
//! - `read.rs`: Go's `readRawBuildInfo`: the aligned magic search, the inline
//!   (≥ 1.18) and pointer (< 1.18) formats.
//! - `modinfo.rs`: Go's `ParseBuildInfo` and `BuildInfo.String`; `goquote.rs`:
//!   Go's `strconv.Quote`/`Unquote`, with `isprint_table.rs` generated from Go's
//!   own `strconv.IsPrint` by `ci/gen/isprint.go`; `gojson.rs`: Go's JSON encoding.
//! - `machine.rs`: the platform an executable's header states (format and
//!   machine), to cross-check the `GOOS`/`GOARCH` its build info records.
//! - `buildid.rs`: `go tool buildid`'s reader and the GNU build-ID note.
//! - `detect.rs`: is a file a Go executable, with build info or without (its Go
//!   build ID or pclntab): what an image audit asks of every file.
//! - `selfcheck.rs`: the self-check, the content ID recomputed as `go tool buildid -w`
//!   does ([`self_check`]), packers detected, and the first difference from a
//!   reference once build IDs are left out ([`first_mismatch`]).
//!
//! **Invariant:** every output of `goinfo` is compared with the real `go` in the
//! tests (`tests/it/buildinfo_parity.rs`); a divergence is a bug, even on odd input.
//!
//! **Invariant:** no input makes it panic or allocate more than the file's size.
#![deny(missing_docs)]

mod buildid;
mod detect;
mod exe;
mod gojson;
pub mod goquote;
mod isprint_table;
mod machine;
mod model;
mod modinfo;
mod read;
mod selfcheck;
mod source;

use std::path::Path;

use bstr::BString;

pub use buildid::{read_gnu_build_id as gnu_build_id_of, read_go_build_id as go_build_id_of};
pub use detect::{detect, detect_from, looks_executable, Detection};
pub use exe::Format;
pub use gojson::ExtraFields;
pub use machine::{read_machine, Machine};
pub use model::{BuildInfo, BuildSetting, Module};
pub use modinfo::{format as format_modinfo, parse as parse_modinfo, ParseError};
pub use selfcheck::{first_mismatch, self_check, SelfCheck};
pub use source::{FileSource, Source};

/// Why build info could not be read; the messages are Go's.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not an executable format Go knows, or a malformed one.
    #[error("unrecognized file format")]
    UnrecognizedFormat,
    /// A valid executable without Go build info.
    #[error("not a Go executable")]
    NotGoExecutable,
    /// An XCOFF or Plan 9 address outside every section.
    #[error("address not mapped")]
    AddressNotMapped,
    /// The module info text is malformed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The build ID is present but cannot be decoded.
    #[error("malformed object file")]
    MalformedBuildId,
    /// The file could not be read.
    #[error("{0}")]
    Io(std::io::Error),
}

/// Reads the build info of an executable held in memory.
pub fn read_build_info(exe: &[u8]) -> Result<BuildInfo, ReadError> {
    read::build_info(exe).map(|(_, bi)| bi)
}

/// Reads the build info from any [`Source`], with the container format it was found in.
pub fn read_build_info_from<S: Source + ?Sized>(src: &S) -> Result<(Format, BuildInfo), ReadError> {
    read::build_info(src)
}

/// The platform the header of the executable at `path` states; `None` when
/// it cannot be read or is not a format Go writes.
pub fn read_machine_file(path: &Path) -> Option<Machine> {
    let file = std::fs::File::open(path).ok()?;
    let src = FileSource::new(file).ok()?;
    read_machine(&src)
}

/// Reads the build info of the executable at `path`, touching only the bytes Go would.
pub fn read_build_info_file(path: &Path) -> Result<BuildInfo, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let src = FileSource::new(file).map_err(ReadError::Io)?;
    read::build_info(&src).map(|(_, bi)| bi)
}

/// The Go build ID exactly as `go tool buildid` prints it, or `None` when there is none.
pub fn read_go_build_id(exe: &[u8]) -> Result<Option<String>, ReadError> {
    buildid::read_go_build_id(exe).map(|id| id.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// The GNU build ID note of an ELF executable.
pub fn read_gnu_build_id(exe: &[u8]) -> Option<Vec<u8>> {
    buildid::read_gnu_build_id(exe)
}

/// The text `go version -m FILE` prints for one binary: `FILE: goX.Y.Z` then each
/// module-info line indented by a tab.
pub fn format_text(file: &[u8], bi: &BuildInfo) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(file);
    out.extend_from_slice(b": ");
    out.extend_from_slice(&bi.go_version);
    out.push(b'\n');
    let without_version = BuildInfo { go_version: BString::default(), ..bi.clone() };
    let text = modinfo::format(&without_version);
    if !text.is_empty() {
        out.push(b'\t');
        for &b in &text[..text.len() - 1] {
            out.push(b);
            if b == b'\n' {
                out.push(b'\t');
            }
        }
        out.push(b'\n');
    }
    out
}

/// The JSON `go version -m -json FILE` prints for one binary, with a final newline,
/// plus any extra top-level fields.
pub fn format_json(bi: &BuildInfo, extra: &ExtraFields) -> Vec<u8> {
    let mut out = gojson::marshal(bi, extra);
    out.push(b'\n');
    out
}
