//! The result of a comparison: what differs between two binaries and why.
//!
//! These types carry no serialization: the versioned JSON form lives in
//! [`crate::report::v1`] and is converted by hand.

use goinfo::{BuildInfo, ReadError};

/// What a self-check of one binary found: whether its bytes still hash to the content
/// ID its Go build ID records (`go tool buildid -w` would leave it unchanged).
///
/// The comparison does not check this itself: the caller runs the check and passes the
/// outcome in [`SelfChecks`]. [`SelfCheckOutcome::Unknown`] means it was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SelfCheckOutcome {
    /// Not checked, or the check could not tell.
    #[default]
    Unknown,
    /// The content ID matches the file: nothing changed since the link wrote it.
    Intact,
    /// The content ID does not match: the file was changed after it was linked.
    ModifiedAfterLink {
        /// File offset of the first mismatching window, when the check could find it.
        first_mismatch: Option<u64>,
    },
    /// The file has no Go build ID to check (`-buildid=`, or not built by `go build`).
    NoBuildId,
    /// The file is packed (UPX or similar): its bytes are not the linker's.
    Packed,
}

/// The self-check outcomes of the two files, as the caller found them.
///
/// `reprove verify` compares the reference as `a` with the rebuilt binary as `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SelfChecks {
    /// The first file's.
    pub a: SelfCheckOutcome,
    /// The second file's.
    pub b: SelfCheckOutcome,
}

/// Everything [`compare`](crate) found out about two binaries.
#[derive(Debug)]
pub struct Comparison {
    /// What was read from the first binary.
    pub a: Side,
    /// What was read from the second binary.
    pub b: Side,
    /// Whether the two files are byte-identical. When true, the other diffs are empty.
    pub identical: bool,
    /// The build info, field by field; `None` when either binary has no readable build info.
    pub build_info: Option<BuildInfoDiff>,
    /// The Go and GNU build IDs of both binaries.
    pub build_id: BuildIdDiff,
    /// Section by section sizes, hashes and first differing offsets.
    pub sections: Vec<SectionDiff>,
    /// Functions whose code differs, when both binaries carry symbols.
    pub functions: FunctionsDiff,
    /// Why the binaries differ, most significant first. Empty when identical.
    pub causes: Vec<Cause>,
}

/// What was read from one of the two binaries.
#[derive(Debug)]
pub struct Side {
    /// File size in bytes.
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    /// The build info, or why it could not be read. Not read when the files are identical.
    pub build_info: Option<Result<BuildInfo, ReadError>>,
    /// The object file's format and architecture, or why it could not be parsed.
    pub object: Option<Result<ObjectSummary, ObjectError>>,
    /// The content-ID self-check's outcome, as the caller passed it.
    pub self_check: SelfCheckOutcome,
}

/// The object-file facts of one binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// `elf`, `macho`, `pe`, `xcoff`, ...
    pub format: String,
    /// The machine architecture as the `object` crate names it, e.g. `X86_64`.
    pub architecture: String,
    /// Whether the file carries a symbol table.
    pub has_symbols: bool,
    /// Whether the file carries DWARF debug sections.
    pub has_dwarf: bool,
}

/// Why a binary's object-file structure could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The file is not an object file the `object` crate can parse, or is damaged.
    #[error("cannot parse object file: {message}")]
    Parse {
        /// The parser's message.
        message: String,
    },
}

/// One changed field of the build info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The field or setting name: `go`, `path`, `mod.version`, `-ldflags`, ...
    pub name: String,
    /// The value in the first binary; `None` when absent there.
    pub a: Option<String>,
    /// The value in the second binary; `None` when absent there.
    pub b: Option<String>,
}

/// How a dependency differs between the two build infos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepChangeKind {
    /// Present only in the second binary.
    Added,
    /// Present only in the first binary.
    Removed,
    /// Same module, different version.
    Version,
    /// Same module and version, different `h1:` sum.
    Sum,
    /// Same module, version and sum, different `replace` target.
    Replace,
}

/// One dependency that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepChange {
    /// The module path.
    pub path: String,
    /// What changed.
    pub kind: DepChangeKind,
    /// `version sum [=> replacement]` in the first binary, `None` when absent.
    pub a: Option<DepState>,
    /// `version sum [=> replacement]` in the second binary, `None` when absent.
    pub b: Option<DepState>,
}

/// A dependency's recorded version, sum and replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepState {
    /// The module version.
    pub version: String,
    /// The `h1:` sum; empty when not recorded.
    pub sum: String,
    /// The replacement as `path version sum`, when replaced.
    pub replace: Option<String>,
}

/// The build info of both binaries, field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfoDiff {
    /// Changed top-level fields: `go`, `path`, `mod.path`, `mod.version`, `mod.sum`, `mod.replace`.
    pub fields: Vec<Change>,
    /// Dependencies added, removed or changed.
    pub deps: Vec<DepChange>,
    /// Build settings added, removed or changed, in recorded order.
    pub settings: Vec<Change>,
}

impl BuildInfoDiff {
    /// Whether the two build infos are the same.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.deps.is_empty() && self.settings.is_empty()
    }

    /// The change of field or setting `name`, if it changed.
    pub fn change(&self, name: &str) -> Option<&Change> {
        self.fields.iter().chain(&self.settings).find(|c| c.name == name)
    }
}

/// The build IDs of both binaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildIdDiff {
    /// The Go build ID of the first binary (`go tool buildid`), or why it is missing.
    pub go_a: Option<String>,
    /// The Go build ID of the second binary.
    pub go_b: Option<String>,
    /// The Go build IDs split on `/`, part by part.
    pub parts: Vec<BuildIdPart>,
    /// The GNU build ID of the first binary, hex.
    pub gnu_a: Option<String>,
    /// The GNU build ID of the second binary, hex.
    pub gnu_b: Option<String>,
}

/// One `/`-separated part of the Go build ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildIdPart {
    /// What the part is: `link action ID`, `main package action ID`, ...
    pub label: &'static str,
    /// The part in the first binary.
    pub a: Option<String>,
    /// The part in the second binary.
    pub b: Option<String>,
}

/// One section's state in both binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDiff {
    /// Section name; Mach-O sections are `SEGMENT,section`.
    pub name: String,
    /// The section in the first binary, `None` when absent.
    pub a: Option<SectionInfo>,
    /// The section in the second binary, `None` when absent.
    pub b: Option<SectionInfo>,
    /// Offset within the section of the first differing byte, when both have file data
    /// and it differs (the shorter length when one is a prefix of the other).
    pub first_difference: Option<u64>,
}

impl SectionDiff {
    /// Whether the section is present in both with the same size and content.
    pub fn is_equal(&self) -> bool {
        match (&self.a, &self.b) {
            (Some(a), Some(b)) => a.size == b.size && a.sha256 == b.sha256,
            _ => false,
        }
    }
}

/// One section of one binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    /// Size in memory.
    pub size: u64,
    /// SHA-256 of the section's bytes in the file; `None` for sections without file data (`.bss`).
    pub sha256: Option<[u8; 32]>,
}

/// Functions whose code differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionsDiff {
    /// Not compared, and why (one side has no symbols, the files are identical, ...).
    NotCompared(String),
    /// Compared by name; every list sorted.
    Compared {
        /// Present in both with different bytes.
        changed: Vec<String>,
        /// Present only in the second binary.
        added: Vec<String>,
        /// Present only in the first binary.
        removed: Vec<String>,
        /// Present in both with the same bytes.
        unchanged: usize,
        /// Of `changed`, those whose code changed size: when a source edit moves the
        /// code after it, every function that refers to what moved differs too, but
        /// only the edited ones change size.
        resized: Vec<String>,
    },
}

/// One reason why the binaries differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The stable machine-readable code.
    pub code: CauseCode,
    /// How sure the cause is.
    pub confidence: Confidence,
    /// One line for a person.
    pub explanation: String,
    /// What the cause was concluded from.
    pub evidence: Vec<Evidence>,
}

/// Where a piece of evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceSource {
    /// The whole file: size, hash, prefix.
    File,
    /// The embedded build info.
    BuildInfo,
    /// The Go or GNU build ID.
    BuildId,
    /// The section table or a section's bytes.
    Section,
    /// The symbol table and the bytes of a symbol.
    Symbol,
    /// Printable strings found in data sections.
    Strings,
}

impl EvidenceSource {
    /// The stable name: `file`, `buildinfo`, `buildid`, `section`, `symbol`, `strings`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceSource::File => "file",
            EvidenceSource::BuildInfo => "buildinfo",
            EvidenceSource::BuildId => "buildid",
            EvidenceSource::Section => "section",
            EvidenceSource::Symbol => "symbol",
            EvidenceSource::Strings => "strings",
        }
    }
}

/// One observation behind a cause: a named value in each binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Where it was read.
    pub source: EvidenceSource,
    /// What was read: a setting name, a section, a symbol, ...
    pub name: String,
    /// The value in the first binary; `None` when absent there.
    pub a: Option<String>,
    /// The value in the second binary; `None` when absent there.
    pub b: Option<String>,
}

impl Evidence {
    pub(crate) fn new(source: EvidenceSource, name: impl Into<String>, a: Option<String>, b: Option<String>) -> Self {
        Evidence { source, name: name.into(), a, b }
    }
}

/// The stable cause codes and confidences are the report's own: one vocabulary from
/// `reprove diff` to the signed VSA. Their declaration order is the significance
/// order that ranks causes of equal confidence (the first explains the most).
pub use ::report::v1::{CauseCode, Confidence};
