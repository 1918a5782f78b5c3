//! The self-check (`goinfo::self_check`, `reprove buildinfo --check`) against the
//! real `go tool buildid -w`, which recomputes a binary's content ID and writes it.
//!
//! - Parity: for every Go binary the buildinfo tests use (the fixture matrix of every
//!   toolchain, the packaged Go binaries) and for edited copies (one byte of a string
//!   changed, bytes appended; ELF, PE, Mach-O signed and not, wasm, XCOFF, Plan 9,
//!   a universal Mach-O), a copy is rewritten by `go tool buildid -w`: the content
//!   ID it writes must be the one recomputed on the original, the rewritten copy must
//!   check `intact`, and a file that Go changes must have checked
//!   `modified-after-link`.
//! - Build IDs that straddle read boundaries (Go's 31 KiB, ours 64 KiB), in a file
//!   made for it, against the same `go tool buildid -w`.
//! - The command: text, `--json` (checked against its schema), exit codes, and
//!   `packed` on UPX-packed copies made with Debian's upx-ucl.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use goinfo::{FileSource, SelfCheck};

use crate::support::fixtures::{
    fat_macho, fixtures, packaged_binaries, Fixture, DARWIN_AMD64, DARWIN_ARM64, LINUX_AMD64, WINDOWS_AMD64,
};
use crate::support::{hermetic_go_env, json_stdout, reprove_bin, run, run_ok, schema, Failures, Outcome, RUN_SETUP};

/// The `buildid` tool of the `go` on PATH, run directly (not through `go tool`,
/// which would cost a `go` start per call).
fn buildid_tool() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        let mut cmd = Command::new("go");
        hermetic_go_env(&mut cmd).args(["tool", "-n", "buildid"]);
        let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e} ({RUN_SETUP})"));
        PathBuf::from(out.stdout_str().trim())
    })
}

/// `go tool buildid [-w] FILE`.
fn go_buildid(write: bool, file: &Path) -> Outcome {
    let mut cmd = Command::new(buildid_tool());
    hermetic_go_env(&mut cmd);
    if write {
        cmd.arg("-w");
    }
    cmd.arg(file);
    run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn self_check(file: &Path) -> Result<SelfCheck, String> {
    let f = fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let src = FileSource::new(f).map_err(|e| format!("{}: {e}", file.display()))?;
    goinfo::self_check(&src).map_err(|e| format!("{}: {e}", file.display()))
}

fn first_mismatch(a: &Path, b: &Path) -> Option<u64> {
    let open = |p: &Path| FileSource::new(fs::File::open(p).expect("open")).expect("metadata");
    goinfo::first_mismatch(&open(a), &open(b)).expect("read both files")
}

fn content_id(build_id: &str) -> &str {
    build_id.rsplit('/').next().unwrap_or_default()
}

fn write_copy(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Compares the self-check of `file` with what `go tool buildid -w` does to a copy of
/// it; returns the self-check, or a report of the disagreement.
fn parity(file: &Path, scratch: &Path) -> Result<SelfCheck, String> {
    let ours = self_check(file)?;
    let original = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let copy = write_copy(scratch, "copy", &original);
    let w = go_buildid(true, &copy);
    let after = fs::read(&copy).expect("read the rewritten copy");
    if !w.success() {
        // Go refuses to rewrite: a build ID without a content ID, or none at all.
        return match ours {
            SelfCheck::NoBuildId => Ok(ours),
            other => Err(format!("go tool buildid -w fails ({}) but the self-check says {other:?}", w.stderr_str())),
        };
    }
    let read = go_buildid(false, &copy);
    let id = read.stdout_str().trim().to_string();
    match &ours {
        SelfCheck::Intact { build_id } => {
            if after != original {
                return Err(format!("intact {build_id}, but go tool buildid -w changed the file (now {id})"));
            }
            if *build_id != id.as_str() {
                return Err(format!("intact with build ID {build_id}, go tool buildid reads {id}"));
            }
        }
        SelfCheck::ModifiedAfterLink { build_id, recorded, computed, .. } => {
            if content_id(&id) != computed {
                return Err(format!("we compute the content ID {computed}, go tool buildid -w writes {id}"));
            }
            if content_id(&build_id.to_string()) != recorded {
                return Err(format!("recorded content ID {recorded} is not the last part of {build_id}"));
            }
            match self_check(&copy)? {
                SelfCheck::Intact { .. } => {}
                other => return Err(format!("after go tool buildid -w, the self-check says {other:?}")),
            }
        }
        SelfCheck::NoBuildId => {
            if after != original {
                return Err(format!("no build ID, but go tool buildid -w rewrote the file (now {id})"));
            }
        }
        SelfCheck::Packed { .. } => return Err(format!("a Go binary called packed: {ours:?}")),
    }
    Ok(ours)
}

#[test]
fn content_id_parity_with_go_buildid_w() {
    let fx = fixtures();
    assert!(fx.errors.is_empty(), "fixtures failed to build:\n{}", fx.errors.join("\n"));
    let (packaged, errors) = packaged_binaries(&fx.toolchains);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut failures = Failures::new("self-check vs go tool buildid -w, unedited binaries");
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let files = fx
        .built
        .iter()
        .map(|f| (f.to_string(), f.path.clone()))
        .chain(packaged.iter().map(|p| (p.display().to_string(), p.clone())));
    for (label, path) in files {
        failures.case();
        match parity(&path, scratch.path()) {
            Ok(c) => *counts.entry(c.code()).or_default() += 1,
            Err(e) => failures.fail(label, e),
        }
    }
    eprintln!("outcomes: {counts:?}");
    // What the go command built is intact; every fixture with a Go build ID has one.
    for f in &fx.built {
        let expect_none = f.case.starts_with("buildid-");
        match self_check(&f.path) {
            Ok(SelfCheck::Intact { .. }) if !expect_none => {}
            Ok(SelfCheck::NoBuildId) if expect_none => {}
            other => failures.fail(f.to_string(), format!("as built by go: {other:?}")),
        }
    }
    failures.assert_none();
}

/// Where `needle` first occurs at or after `from`.
fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// A string every Go program's runtime carries, outside any build ID.
const RUNTIME_STRING: &[u8] = b"nil pointer dereference";

/// Edits of a binary: (name, bytes, offset of the first changed byte).
fn edits(original: &[u8], search_from: usize) -> Vec<(&'static str, Vec<u8>, u64)> {
    let at = find_from(original, RUNTIME_STRING, search_from).expect("the runtime string");
    let mut one_byte = original.to_vec();
    one_byte[at] = b'N';
    let mut appended = original.to_vec();
    appended.extend_from_slice(b"appended after link\n");
    vec![("one byte of a string", one_byte, at as u64), ("bytes appended", appended, original.len() as u64)]
}

#[test]
fn edited_copies_are_modified_after_link_with_gos_content_id() {
    let fx = fixtures();
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut failures = Failures::new("self-check vs go tool buildid -w, edited copies");
    let targets = [
        ("hello", LINUX_AMD64),
        ("hello", WINDOWS_AMD64),
        ("hello", DARWIN_AMD64),
        // Signed by Go's linker: the code signature is left out of the hash.
        ("hello", DARWIN_ARM64),
        ("hello", crate::support::fixtures::Target { goos: "linux", goarch: "386" }),
        ("hello", crate::support::fixtures::Target { goos: "linux", goarch: "s390x" }),
        ("hello", crate::support::fixtures::Target { goos: "windows", goarch: "386" }),
        ("hello", crate::support::fixtures::Target { goos: "wasip1", goarch: "wasm" }),
        ("hello", crate::support::fixtures::Target { goos: "aix", goarch: "ppc64" }),
        ("hello", crate::support::fixtures::Target { goos: "plan9", goarch: "amd64" }),
        ("stripped", LINUX_AMD64),
        ("stripped", WINDOWS_AMD64),
        ("stripped", DARWIN_ARM64),
        // Linked by the host linker: a GNU build-ID note, left out of the hash.
        ("cgo", LINUX_AMD64),
        ("c-shared", LINUX_AMD64),
        ("pie", LINUX_AMD64),
    ];
    let mut edited: Vec<(String, &Fixture)> = Vec::new();
    for (case, target) in targets {
        edited.push((format!("{case} {target}"), fx.require_newest(case, target)));
    }
    // Older toolchains: their linkers lay files out differently.
    for f in fx.built.iter().filter(|f| !f.default_toolchain && f.case == "hello" && f.target == LINUX_AMD64) {
        edited.push((f.to_string(), f));
    }
    for (label, f) in &edited {
        let original = fs::read(&f.path).expect("read fixture");
        let Ok(SelfCheck::Intact { build_id }) = self_check(&f.path) else {
            failures.case();
            failures.fail(label, "the unedited fixture is not intact");
            continue;
        };
        for (what, bytes, changed_at) in edits(&original, 0) {
            failures.case();
            let case = format!("{label}: {what}");
            let path = write_copy(scratch.path(), "edited", &bytes);
            match self_check(&path) {
                Ok(SelfCheck::ModifiedAfterLink { build_id: b, recorded, first_mismatch: None, .. })
                    if b == build_id && recorded == content_id(&build_id.to_string()) => {}
                other => {
                    failures.fail(&case, format!("the self-check says {other:?}"));
                    continue;
                }
            }
            if let Err(e) = parity(&path, scratch.path()) {
                failures.fail(&case, e);
            }
            let original_path = write_copy(scratch.path(), "original", &original);
            let found = first_mismatch(&path, &original_path);
            if found != Some(changed_at) {
                failures.fail(&case, format!("first mismatch {found:?}, changed at {changed_at}"));
            }
        }
    }
    failures.assert_none();
}

#[test]
fn universal_macho_is_checked_per_architecture() {
    let fx = fixtures();
    let scratch = tempfile::tempdir().expect("tempdir");
    let amd64 = fs::read(&fx.require_newest("hello", DARWIN_AMD64).path).expect("read");
    let arm64 = fs::read(&fx.require_newest("hello", DARWIN_ARM64).path).expect("read");
    let fat = fat_macho(&[amd64.clone(), arm64.clone()]);
    let fat_path = write_copy(scratch.path(), "fat", &fat);
    let amd64_id = goinfo::go_build_id_of(amd64.as_slice()).expect("read").expect("a build ID");
    assert_eq!(self_check(&fat_path), Ok(SelfCheck::Intact { build_id: amd64_id }));

    // One byte of the second architecture changed: modified, with the content ID that
    // go tool buildid -w writes into that architecture on its own.
    let arm_at = fat.len() - arm64.len();
    let mut edited = fat.clone();
    let at = find_from(&fat, RUNTIME_STRING, arm_at).expect("the runtime string in the arm64 slice");
    edited[at] = b'N';
    let edited_path = write_copy(scratch.path(), "fat-edited", &edited);
    let computed = match self_check(&edited_path) {
        Ok(SelfCheck::ModifiedAfterLink { computed, .. }) => computed,
        other => panic!("an edited universal binary: {other:?}"),
    };
    let thin = write_copy(scratch.path(), "thin", &edited[arm_at..]);
    let w = go_buildid(true, &thin);
    assert!(w.success(), "go tool buildid -w: {}", w.stderr_str());
    assert_eq!(content_id(go_buildid(false, &thin).stdout_str().trim()), computed);
    assert_eq!(first_mismatch(&edited_path, &fat_path), Some(at as u64));
}

/// A file that is no executable, with a Go build ID that Go finds in its first 32 KiB
/// and copies of it across every read boundary: Go's (31 KiB) and ours (64 KiB).
#[test]
fn ids_straddling_read_boundaries_match_go() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let id = b"abcdefghijklmnopqrst/ABCDEFGHIJKLMNOPQRST/0123456789abcdefghij/AAAAAAAAAAAAAAAAAAAA";
    let mut failures = Failures::new("self-check vs go tool buildid -w, IDs across reads");
    for delta in [-60i64, -41, -40, -1, 0, 1] {
        failures.case();
        // Letters a to p in a varied order, so that the hash depends on every byte;
        // no `/`, so no ID but the ones placed; not random, or it would look packed.
        let mut data: Vec<u8> =
            (0..200_000u32).map(|i| b'a' + ((i.wrapping_mul(2_654_435_761) >> 13) & 0x0f) as u8).collect();
        let raw = [b"\xff Go build ID: \"".as_slice(), id, b"\"\n \xff"].concat();
        data[100..100 + raw.len()].copy_from_slice(&raw);
        for boundary in [31 * 1024, 62 * 1024, 64 * 1024, 128 * 1024, 93 * 1024] {
            let at = (boundary as i64 + delta) as usize;
            data[at..at + id.len()].copy_from_slice(id);
        }
        let end = data.len() - id.len();
        data[end..].copy_from_slice(id);
        let path = write_copy(scratch.path(), "straddle", &data);
        match parity(&path, scratch.path()) {
            Ok(SelfCheck::ModifiedAfterLink { .. }) => {}
            Ok(other) => failures.fail(format!("delta {delta}"), format!("{other:?}, expected modified-after-link")),
            Err(e) => failures.fail(format!("delta {delta}"), e),
        }
    }
    failures.assert_none();
}

/// `reprove buildinfo --check ARGS`.
fn check_cmd(args: &[&Path], json: bool) -> Outcome {
    let mut cmd = Command::new(reprove_bin());
    cmd.args(["buildinfo", "--check"]);
    if json {
        cmd.arg("--json");
    }
    cmd.args(args);
    run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// A UPX-packed copy of `file`, made with Debian's upx-ucl.
fn upx(file: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = Command::new("upx");
    cmd.args(["-q", "-o"]).arg(&out).arg(file);
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("upx (Debian's upx-ucl; {RUN_SETUP}): {e}"));
    out
}

#[test]
fn check_command_reports_each_outcome() {
    let fx = fixtures();
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path();
    let hello = fx.require_newest("hello", LINUX_AMD64).path.clone();
    let exe = fx.require_newest("hello", WINDOWS_AMD64).path.clone();
    let custom = fx.require_newest("buildid-custom", LINUX_AMD64).path.clone();
    let empty = fx.require_newest("buildid-empty", WINDOWS_AMD64).path.clone();
    let original = fs::read(&hello).expect("read");
    let (_, one_byte, _) = edits(&original, 0).swap_remove(0);
    let edited = write_copy(dir, "edited", &one_byte);
    let packed_elf = upx(&hello, dir, "packed-elf");
    let packed_pe = upx(&exe, dir, "packed.exe");
    let text = write_copy(dir, "text.txt", b"not a binary\n");
    let missing = dir.join("missing");

    // All intact: exit 0.
    let out = check_cmd(&[&hello, &exe], false);
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    assert!(out.stdout_str().contains(": intact (build ID "), "{}", out.stdout_str());

    // One changed after link: exit 1, said plainly.
    let out = check_cmd(&[&hello, &edited], false);
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    let line = out.stdout_str().lines().nth(1).unwrap_or_default().to_string();
    assert!(
        line.starts_with(&format!(
            "{}: modified after link: the file was changed after it was built",
            edited.display()
        )),
        "{line}"
    );

    // Nothing to check, packed: exit 1.
    for (file, status) in [
        (&custom, "no-build-id"),
        (&empty, "no-build-id"),
        (&text, "no-build-id"),
        (&packed_elf, "packed"),
        (&packed_pe, "packed"),
    ] {
        let out = check_cmd(&[file.as_path()], true);
        assert_eq!(out.status, Some(1), "{}: {}", file.display(), out.stderr_str());
        let doc = json_stdout(&out);
        schema::assert_valid("buildinfo-check.schema.json", &doc);
        assert_eq!(doc["files"][0]["status"], status, "{}: {doc:#}", file.display());
        if status == "packed" {
            assert_eq!(doc["files"][0]["packer"], "upx", "{doc:#}");
        }
    }

    // Everything in one call, as JSON; a missing file makes it exit 2 after the rest.
    let out = check_cmd(&[&hello, &edited, &missing, &packed_elf], true);
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("1 of 4 files could not be checked"), "{}", out.stderr_str());
    let doc = json_stdout(&out);
    schema::assert_valid("buildinfo-check.schema.json", &doc);
    let statuses: Vec<&str> =
        doc["files"].as_array().expect("files").iter().filter_map(|f| f["status"].as_str()).collect();
    assert_eq!(statuses, ["intact", "modified-after-link", "error", "packed"], "{doc:#}");
    let modified = &doc["files"][1];
    let id = goinfo::go_build_id_of(original.as_slice()).expect("read").expect("a build ID").to_string();
    assert_eq!(modified["buildId"], id.as_str());
    assert_eq!(modified["recordedContentId"], content_id(&id));
    assert_ne!(modified["computedContentId"], content_id(&id));
    assert_eq!(modified["firstMismatch"], serde_json::Value::Null);
}
