//! `reprove diff` and the Go build ID, on binaries the real `go` builds here.
//!
//! A binary's build ID starts with its link action ID, a hash of every input of the
//! link (`-ldflags` included) and of the build info. So two files with the same link
//! action ID were linked from the same inputs: a difference between them was made
//! after the link, and no build setting may be blamed for it. A difference confined
//! to the build IDs is `build-id-only`, whatever set them, even IDs of different
//! lengths on ELF, where they only move the notes; and anything else changed beside
//! them is not.
//!
//! The builds use the hermetic `go` environment and build cache of `diff_causes`;
//! nothing reaches the network.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::diff_causes::{build, elf_section_offset, go_on_path, reprove_diff, Diff};

/// A program with a flag, so that the binary holds a help string as release binaries do.
const MAIN_GO: &str = r#"package main

import (
	"flag"
	"fmt"
)

var version = "dev"

func main() {
	verbose := flag.Bool("verbose", false, "print more about what hello does")
	flag.Parse()
	fmt.Println("hello", version, *verbose)
}
"#;

const HELP: &[u8] = b"print more about what hello does";

/// How release binaries are usually built.
const RELEASE: &[&str] = &["-trimpath", "-ldflags=-s -w"];

const CUSTOM_ID: &str = "0123456789abcdef";

/// A temporary directory with the program's module in `src/`.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).expect("creating the module directory");
    std::fs::write(src.join("go.mod"), "module example.com/hello\n\ngo 1.21\n").expect("writing go.mod");
    std::fs::write(src.join("main.go"), MAIN_GO).expect("writing main.go");
    (tmp, src)
}

/// Builds the program with `args` into `name` in the temporary directory.
fn built(tmp: &Path, src: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = tmp.join(name);
    build(&go_on_path(), src, &out, args, &[]);
    out
}

/// Writes a copy of `from` with `edit` applied, as `name` beside it.
fn edited(from: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut data = std::fs::read(from).expect("reading the binary");
    edit(&mut data);
    let to = from.with_file_name(name);
    std::fs::write(&to, &data).expect("writing the copy");
    to
}

fn find(data: &[u8], what: &[u8]) -> usize {
    data.windows(what.len()).position(|w| w == what).unwrap_or_else(|| panic!("{what:?} not in the binary"))
}

/// File offset of the ELF64 little-endian section header of the section named `want`.
pub(super) fn elf_section_header(data: &[u8], want: &str) -> usize {
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes")) as usize;
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(header)
        .find(|&h| {
            let name = strtab + u32::from_le_bytes(data[h..h + 4].try_into().expect("4 bytes")) as usize;
            data[name..].starts_with(want.as_bytes()) && data[name + want.len()] == 0
        })
        .unwrap_or_else(|| panic!("no section {want}"))
}

impl Diff {
    fn has(&self, code: &str) -> bool {
        self.codes().iter().any(|(c, _)| c == code)
    }

    fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or_default()
    }
}

/// The outside check of issue 14: one byte of a help string edited in a stripped release
/// binary. The build IDs are identical, so `-ldflags` (which the link action ID covers)
/// cannot be the cause: the file was changed after it was linked.
#[test]
fn one_byte_of_a_help_string_in_a_stripped_release_binary() {
    let (tmp, src) = workspace();
    let original = built(tmp.path(), &src, "original", RELEASE);
    let mut at = 0;
    let copy = edited(&original, "edited", |data| {
        at = find(data, HELP);
        data[at] = b'P';
    });
    let d = reprove_diff(&original, &copy);
    assert_eq!((d.code, d.json["verdict"].as_str()), (1, Some("differ")), "{}", d.stdout);
    let ids = &d.json["buildId"];
    assert!(ids["goA"].is_string() && ids["goA"] == ids["goB"], "{ids:#}");
    assert_eq!(d.json["functions"]["compared"], false, "stripped: {}", d.stdout);
    d.assert_top("modified-after-link");
    // The edited copy fails its self-check and the original passes it: certain.
    assert_eq!(d.confidence_of("modified-after-link").as_deref(), Some("certain"), "{}", d.stdout);
    assert_eq!(
        (d.json["a"]["selfCheck"].as_str(), d.json["b"]["selfCheck"].as_str()),
        (Some("intact"), Some("modified-after-link"))
    );
    assert!(!d.has("ldflags"), "{:?}\n{}", d.codes(), d.stdout);
    let first = d.first_line();
    assert!(first.contains("b was changed after it was built"), "{first}");
    assert!(first.contains(&format!("the first changed byte is at file offset {at:#x} (.rodata+0x")), "{first}");
}

/// The other outside check: the same program built twice, the second time with
/// `-ldflags=-buildid=…` and nothing else changed. The IDs differ in length.
#[test]
fn a_hand_set_build_id_alone_is_build_id_only() {
    let (tmp, src) = workspace();
    for (name, flags) in [("trimpath", vec!["-trimpath"]), ("release", RELEASE.to_vec())] {
        let plain = built(tmp.path(), &src, &format!("{name}-plain"), &flags);
        let ldflags = match flags.iter().find_map(|f| f.strip_prefix("-ldflags=")) {
            Some(ld) => format!("-ldflags={ld} -buildid={CUSTOM_ID}"),
            None => format!("-ldflags=-buildid={CUSTOM_ID}"),
        };
        let mut custom_flags: Vec<&str> = flags.iter().copied().filter(|f| !f.starts_with("-ldflags=")).collect();
        custom_flags.push(&ldflags);
        let custom = built(tmp.path(), &src, &format!("{name}-custom"), &custom_flags);
        let d = reprove_diff(&plain, &custom);
        assert_eq!(d.json["buildId"]["goB"], CUSTOM_ID, "{name}");
        assert_ne!(d.json["buildId"]["goA"].as_str().map(str::len), Some(CUSTOM_ID.len()), "{name}");
        d.assert_top("build-id-only");
        assert_eq!(d.codes(), [("build-id-only".to_string(), "certain".to_string())], "{name}\n{}", d.stdout);
    }
}

/// The masking that allows IDs of different lengths lets nothing else through: a
/// byte changed elsewhere, a byte in the padding the shorter note leaves, or a note
/// header that no longer describes the note.
#[test]
fn a_change_beside_a_shorter_build_id_is_not_build_id_only() {
    let (tmp, src) = workspace();
    let plain = built(tmp.path(), &src, "plain", RELEASE);
    let custom = built(tmp.path(), &src, "custom", &["-trimpath", &format!("-ldflags=-s -w -buildid={CUSTOM_ID}")]);
    assert_eq!(reprove_diff(&plain, &custom).top(), "build-id-only");

    let help = edited(&custom, "help", |data| {
        let at = find(data, HELP);
        data[at] = b'P';
    });
    let padding = edited(&custom, "padding", |data| {
        let at = elf_section_offset(data, ".note.go.buildid") - 1;
        assert_eq!(data[at], 0, "the byte before the shorter note is padding");
        data[at] = 1;
    });
    let header = edited(&custom, "header", |data| {
        // sh_addr, which must stay the file offset plus the mapping's bias.
        let at = elf_section_header(data, ".note.go.buildid") + 0x10;
        data[at] ^= 0x10;
    });
    for copy in [help, padding, header] {
        let d = reprove_diff(&plain, &copy);
        assert_eq!(d.code, 1, "{}", d.stdout);
        assert!(!d.has("build-id-only"), "{copy:?}: {:?}\n{}", d.codes(), d.stdout);
    }
}

/// `-X` with another value still gives `ldflags`: the link action IDs differ.
#[test]
fn other_x_values_are_still_ldflags() {
    let (tmp, src) = workspace();
    let a = built(tmp.path(), &src, "a", &["-trimpath", "-ldflags=-s -w -X main.version=1.0.0"]);
    let b = built(tmp.path(), &src, "b", &["-trimpath", "-ldflags=-s -w -X main.version=1.0.1"]);
    let d = reprove_diff(&a, &b);
    let link = &d.json["buildId"]["parts"][0];
    assert_eq!((link["label"].as_str(), link["equal"].as_bool()), (Some("link action ID"), Some(false)), "{link:#}");
    d.assert_top("ldflags");
    assert!(!d.has("modified-after-link"), "{:?}", d.codes());
}

/// Build info edited after the link, at the same length: the link action ID covers the
/// build info, so the recorded main module path is no build setting that differs.
#[test]
fn build_info_edited_after_the_link_is_no_build_setting() {
    let (tmp, src) = workspace();
    let original = built(tmp.path(), &src, "original", RELEASE);
    let copy = edited(&original, "edited", |data| {
        // The copy in `.go.buildinfo`, which `go version -m` reads (the runtime has its own).
        let header = find(data, b"\xff Go buildinf:");
        let at = header + find(&data[header..], b"path\texample.com/hello\n") + "path\texample.com/".len();
        data[at] = b'j';
    });
    let d = reprove_diff(&original, &copy);
    assert_eq!(d.json["buildInfo"]["fields"][0]["b"], "example.com/jello", "{}", d.stdout);
    d.assert_top("modified-after-link");
    assert!(!d.has("main-path"), "{:?}", d.codes());
    assert!(d.first_line().contains("path example.com/hello vs example.com/jello"), "{}", d.first_line());
}
