//! An adversarial corpus: binaries changed on purpose, and what `reprove diff` and
//! `reprove verify` must say about them (issue 14).
//!
//! One program (a flag with a help string, a `-X` version, a small function
//! `main.greet`, the real module github.com/spf13/pflag from the test module cache),
//! built with the real `go` once per variant and shared by every case of
//! [`tampered_and_rebuilt_binaries`]; each case is then a copy edited the way an
//! attacker or a careless pipeline would (bytes, `objcopy`, `strip`, `upx`,
//! `go tool buildid -w`) or another build. Each case asserts the verdict, the first
//! cause and its confidence, what the first line says, and that no misleading cause
//! appears (`ldflags` when the link action IDs are equal, `truncated` for appended
//! data, `unknown` where the self-check proves a change). The table:
//!
//! | case | first cause | confidence |
//! |---|---|---|
//! | one byte of a help string (stripped) | modified-after-link | certain |
//! | one instruction of `main.greet`, with symbols / stripped | modified-after-link | certain |
//! | data appended after the end | modified-after-link | certain |
//! | a section added / resized (`objcopy`) | modified-after-link | certain |
//! | build info claims another pflag version, same / other length | modified-after-link | certain |
//! | an edit, then `go tool buildid -w` (code with and without symbols, a string) | modified-after-link | likely |
//! | another source of `main.greet`, VCS-stamped | vcs-revision | certain |
//! | another source of `main.greet`, unstamped | unknown (naming `main.greet`) | possible |
//! | pflag replaced by a patched copy of the same version | dependency-replace | certain |
//! | `-X` with another value (stripped: only strings tell) | ldflags | possible |
//! | `-ldflags=-buildid=` | build-id-only | certain |
//! | `-ldflags=-buildid=`, then a byte of a string edited | ldflags (nothing to check it against) | possible |
//! | `-s -w` against none | stripped | likely |
//! | `strip` after the link | modified-after-link (then stripped) | certain |
//! | UPX-packed (Debian's upx-ucl) | modified-after-link | certain |
//!
//! [`a_tampered_reference_fails_verify_naming_the_edit`] and
//! [`a_reference_from_another_source_fails_verify_naming_the_function`] run `reprove
//! verify` on the `verify_e2e` fixture (its registry, toolchain image and GOPROXY,
//! shared with that module).
//!
//! `objcopy`, `strip` (binutils) and `upx` (upx-ucl) come from `ci/setup`; a missing
//! one fails the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::diff_build_ids::elf_section_header;
use super::diff_causes::{build, go_on_path, reprove_diff, Diff};
use super::verify_e2e::{args, base, git, shared, status, strs, verify, Project};
use crate::support::{self, harness, hermetic_go_env, run_ok, schema, Failures, RUN_SETUP};

const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"github.com/spf13/pflag"
)

var version = "dev"

//go:noinline
func greet(name string) string { return "hello, " + name + "!" }

func main() {
	verbose := pflag.Bool("verbose", false, "print more about what hello does")
	pflag.Parse()
	fmt.Println(greet("world"), version, *verbose)
}
"#;

const HELP: &[u8] = b"print more about what hello does";
const PFLAG: &str = "github.com/spf13/pflag";

/// The module's go.mod and go.sum, pflag at v1.0.5 from the test module cache.
fn write_module(dir: &Path, main_go: &str) {
    fs::create_dir_all(dir).expect("creating the module directory");
    fs::write(dir.join("go.mod"), format!("module example.com/hello\n\ngo 1.22\n\nrequire {PFLAG} v1.0.5\n"))
        .expect("writing go.mod");
    let sums =
        fs::read_to_string(support::repo_root().join("tests/fixtures/verify/app/go.sum")).expect("reading go.sum");
    fs::write(dir.join("go.sum"), sums).expect("writing go.sum");
    fs::write(dir.join("main.go"), main_go).expect("writing main.go");
}

/// `go build ARGS` of `src` into `out`, offline, from the test module cache.
fn go_build(src: &Path, out: &Path, args: &[&str]) {
    let modcache = harness::shared_cache().display().to_string();
    build(&go_on_path(), src, out, args, &[("GOMODCACHE", &modcache)]);
}

/// A tool `ci/setup` installs; the test fails naming it when it is missing.
fn tool(name: &str, args: &[&std::ffi::OsStr]) {
    let mut cmd = Command::new(name);
    cmd.args(args);
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{name} ({RUN_SETUP}): {e}"));
}

fn find(data: &[u8], what: &[u8]) -> usize {
    data.windows(what.len()).position(|w| w == what).unwrap_or_else(|| panic!("{what:?} not in the binary"))
}

/// A copy of `from` named `name` in `dir`, with `edit` applied to its bytes.
fn edited(dir: &Path, from: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut data = fs::read(from).expect("reading the binary");
    edit(&mut data);
    let to = dir.join(name);
    fs::write(&to, &data).expect("writing the copy");
    to
}

/// `go tool buildid -w FILE`: the content ID recomputed and written, so the self-check passes.
fn rewrite_build_id(file: &Path) {
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd).args(["tool", "buildid", "-w"]).arg(file);
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
}

/// The file range of `main.greet`'s code in an ELF64 binary with symbols, from `go tool nm`
/// and the `.text` section header.
fn greet_code(binary: &Path) -> std::ops::Range<usize> {
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd).args(["tool", "nm", "-size"]).arg(binary);
    let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}")).stdout_str();
    let line = out.lines().find(|l| l.ends_with(" T main.greet")).unwrap_or_else(|| panic!("no main.greet:\n{out}"));
    let mut fields = line.split_whitespace();
    let addr = u64::from_str_radix(fields.next().unwrap_or_default(), 16).expect("an address");
    let size: usize = fields.next().unwrap_or_default().parse().expect("a size");
    let data = fs::read(binary).expect("reading the binary");
    let header = elf_section_header(&data, ".text");
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes"));
    let (text_addr, text_off) = (u64_at(header + 0x10), u64_at(header + 0x18));
    let start = (addr - text_addr + text_off) as usize;
    start..start + size
}

/// What one case expects.
struct Expect {
    /// The first cause and its confidence.
    first: (&'static str, &'static str),
    /// Codes that would mislead here.
    never: &'static [&'static str],
    /// Texts the first line of `reprove diff` must hold.
    says: Vec<String>,
}

fn expect(first: (&'static str, &'static str), never: &'static [&'static str], says: &[&str]) -> Expect {
    Expect { first, never, says: says.iter().map(|s| s.to_string()).collect() }
}

/// Checks `reprove diff a b` against `want`; the first line of the text, for the table.
fn check(d: &Diff, want: &Expect) -> Result<(), String> {
    schema::assert_valid("diff.schema.json", &d.json);
    let codes = d.codes();
    let first_line = d.stdout.lines().next().unwrap_or_default();
    let mut problems = Vec::new();
    if d.code != 1 || d.json["verdict"] != "differ" {
        problems.push(format!("exit {} verdict {}, want 1 differ", d.code, d.json["verdict"]));
    }
    let first = codes.first().map(|(c, k)| (c.as_str(), k.as_str()));
    if first != Some(want.first) {
        problems.push(format!("first cause {first:?}, want {:?}", want.first));
    }
    for code in want.never {
        if codes.iter().any(|(c, _)| c == code) {
            problems.push(format!("misleading cause {code}"));
        }
    }
    if !first_line.starts_with(&format!("differ: {} — ", want.first.0)) {
        problems.push("the text does not lead with the first cause".to_string());
    }
    for s in &want.says {
        if !first_line.contains(s.as_str()) {
            problems.push(format!("the first line does not say {s:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\ncauses {codes:?}\n{}", problems.join("\n"), d.stdout))
    }
}

/// The evidence of the first cause named `name`, as `(a, b)`.
fn evidence(d: &Diff, name: &str) -> Option<(Value, Value)> {
    let evidence = d.json["causes"][0]["evidence"].as_array()?;
    let named = |e: &&Value| e["name"].as_str().is_some_and(|n| n == name || n.starts_with(&format!("{name} (")));
    evidence.iter().find(named).map(|e| (e["a"].clone(), e["b"].clone()))
}

#[test]
fn tampered_and_rebuilt_binaries() {
    let tmp = tempfile::tempdir().expect("creating a temporary directory");
    let dir = tmp.path();
    let src = dir.join("src");
    write_module(&src, MAIN_GO);

    // The builds every case shares.
    let release = dir.join("release");
    go_build(&src, &release, &["-trimpath", "-ldflags=-s -w"]);
    let symbols = dir.join("symbols");
    go_build(&src, &symbols, &["-trimpath"]);
    let stamped = dir.join("stamped");
    go_build(&src, &stamped, &["-trimpath", "-ldflags=-s -w -X main.version=1.0.1"]);
    let no_build_id = dir.join("no-build-id");
    go_build(&src, &no_build_id, &["-trimpath", "-ldflags=-s -w -buildid="]);

    let mut failures = Failures::new("adversarial corpus");
    let mut table = Vec::new();
    let mut case = |name: &str, a: &Path, b: &Path, want: Expect, extra: &dyn Fn(&Diff) -> Result<(), String>| {
        failures.case();
        let d = reprove_diff(a, b);
        let result = check(&d, &want).and_then(|()| extra(&d).map_err(|e| format!("{e}\n{}", d.stdout)));
        table.push(format!("{name}: {:?}", d.codes().first()));
        if let Err(e) = result {
            failures.fail(name, e);
        }
    };
    let none = |_: &Diff| Ok(());
    let self_checks = |a: &'static str, b: &'static str| {
        move |d: &Diff| {
            let got = (d.json["a"]["selfCheck"].as_str(), d.json["b"]["selfCheck"].as_str());
            if got == (Some(a), Some(b)) {
                Ok(())
            } else {
                Err(format!("self-checks {got:?}, want ({a}, {b})"))
            }
        }
    };
    // A change after the link: no build setting, no guess from the bytes.
    const AFTER_LINK: &[&str] = &["ldflags", "unknown", "truncated", "dependency-version", "embedded-path"];

    // One byte of a string.
    let mut at = 0;
    let string = edited(dir, &release, "string", |d| {
        at = find(d, HELP);
        d[at] = b'P';
    });
    let at_string = format!("the first changed byte is at file offset {at:#x} (.rodata+0x");
    case(
        "one byte of a help string, stripped",
        &release,
        &string,
        expect(("modified-after-link", "certain"), AFTER_LINK, &["b was changed after it was built", &at_string]),
        &self_checks("intact", "modified-after-link"),
    );

    // One instruction of main.greet, found through the symbol table; the same bytes in
    // the stripped build, where Go's function table names the function.
    let code = greet_code(&symbols);
    let greet = fs::read(&symbols).expect("reading")[code.clone()].to_vec();
    let patch = |d: &mut Vec<u8>| {
        let at = find(d, &greet[..24]) + 8;
        d[at] ^= 0x01;
    };
    let code_symbols = edited(dir, &symbols, "code-symbols", patch);
    let code_stripped = edited(dir, &release, "code-stripped", patch);
    for (name, a, b) in [("with symbols", &symbols, &code_symbols), ("stripped", &release, &code_stripped)] {
        case(
            &format!("one instruction of main.greet, {name}"),
            a,
            b,
            expect(
                ("modified-after-link", "certain"),
                AFTER_LINK,
                &["b was changed after it was built", ", in main.greet+0x"],
            ),
            &self_checks("intact", "modified-after-link"),
        );
    }

    // Data appended after the end.
    let appended = edited(dir, &release, "appended", |d| d.extend_from_slice(&[0x90; 4096]));
    case(
        "data appended after the end",
        &release,
        &appended,
        expect(
            ("modified-after-link", "certain"),
            AFTER_LINK,
            &["4096 bytes were appended after the end of the file as linked"],
        ),
        &none,
    );

    // A section added, a section resized.
    let payload = dir.join("payload");
    fs::write(&payload, b"#!/bin/sh\necho owned\n").expect("writing the payload");
    let added = dir.join("section-added");
    let add = format!(".evil={}", payload.display());
    tool("objcopy", &["--add-section".as_ref(), add.as_ref(), release.as_ref(), added.as_ref()]);
    case(
        "a section added (objcopy --add-section)",
        &release,
        &added,
        expect(("modified-after-link", "certain"), AFTER_LINK, &["b was changed after it was built"]),
        &|d: &Diff| match evidence(d, ".evil") {
            Some((Value::Null, b)) if b.is_string() => Ok(()),
            other => Err(format!("no evidence of the added section .evil: {other:?}")),
        },
    );
    let resized = dir.join("section-resized");
    let update = format!(".itablink={}", payload.display());
    tool("objcopy", &["--update-section".as_ref(), update.as_ref(), release.as_ref(), resized.as_ref()]);
    case(
        "a section resized (objcopy --update-section)",
        &release,
        &resized,
        expect(("modified-after-link", "certain"), AFTER_LINK, &["b was changed after it was built"]),
        &|d: &Diff| match evidence(d, ".itablink") {
            Some((a, b)) if a.is_string() && b.is_string() && a != b => Ok(()),
            other => Err(format!("no evidence of the resized section .itablink: {other:?}")),
        },
    );

    // Build info that claims another pflag version: at the same length, and one byte
    // longer (the rest of the module info moved into the section's padding, its
    // length prefix adjusted).
    let dep_line = format!("dep\t{PFLAG}\tv1.0.5\t");
    let same_length = edited(dir, &release, "buildinfo-same-length", |d| {
        let header = find(d, b"\xff Go buildinf:");
        let at = header + find(&d[header..], dep_line.as_bytes()) + dep_line.len() - 2;
        d[at] = b'6';
    });
    let other_length = edited(dir, &release, "buildinfo-other-length", |d| {
        let header = find(d, b"\xff Go buildinf:");
        let at = header + find(&d[header..], dep_line.as_bytes()) + dep_line.len() - 1;
        // The module info ends with its 16-byte sentinel; a zero follows in the padding.
        let end = header + find(&d[header..], b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2") + 16;
        assert_eq!(d[end], 0, "padding after the module info");
        d.copy_within(at..end, at + 1);
        d[at] = b'0';
        // The varint length before the module info (its 16-byte start sentinel).
        let start = header + find(&d[header..], b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6");
        let (lo, hi) = (d[start - 2], d[start - 1]);
        assert!(lo & 0x80 != 0 && hi & 0x80 == 0, "a two-byte length");
        let len = usize::from(lo & 0x7f) | (usize::from(hi) << 7);
        let len = len + 1;
        assert!(len < 1 << 14);
        d[start - 2] = (len & 0x7f) as u8 | 0x80;
        d[start - 1] = (len >> 7) as u8;
    });
    for (name, copy, version) in
        [("the same length", &same_length, "v1.0.6"), ("another length", &other_length, "v1.0.50")]
    {
        let claim = format!("{PFLAG} v1.0.5 vs {version}");
        case(
            &format!("build info claiming {PFLAG} {version} ({name})"),
            &release,
            copy,
            expect(("modified-after-link", "certain"), AFTER_LINK, &["b was changed after it was built", &claim]),
            &|d: &Diff| match d.json["buildInfo"]["deps"][0]["b"]["version"].as_str() {
                Some(v) if v == version => Ok(()),
                other => Err(format!("the edited build info reads {other:?}")),
            },
        );
    }

    // An edit, then the build ID rewritten: both pass their self-checks, and only the
    // comparison with the original finds the change, naming the function or section.
    let rewritten = |from: &Path, name: &str| {
        let copy = dir.join(name);
        fs::copy(from, &copy).expect("copying");
        rewrite_build_id(&copy);
        copy
    };
    for (name, a, b, place) in [
        ("code with symbols", &symbols, rewritten(&code_symbols, "code-symbols-w"), ", in main.greet+0x"),
        ("code, stripped", &release, rewritten(&code_stripped, "code-stripped-w"), ", in main.greet+0x"),
        ("a string, stripped", &release, rewritten(&string, "string-w"), "(.rodata+0x"),
    ] {
        case(
            &format!("{name} edited, then go tool buildid -w"),
            a,
            &b,
            expect(
                ("modified-after-link", "likely"),
                AFTER_LINK,
                &["its build ID rewritten to match (go tool buildid -w)", "each matches its own content ID", place],
            ),
            &self_checks("intact", "intact"),
        );
    }

    // Another source of one function: a commit stamped by VCS, and an unstamped build.
    let repo = dir.join("repo");
    write_module(&repo, MAIN_GO);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    let (v1, v2) = (dir.join("vcs-v1"), dir.join("vcs-v2"));
    go_build(&repo, &v1, &["-trimpath"]);
    // The edit changes the function's size, as most edits do.
    let other_greet = MAIN_GO.replace(
        r#"func greet(name string) string { return "hello, " + name + "!" }"#,
        "func greet(name string) string {\n\tif name == \"\" {\n\t\tname = \"nobody\"\n\t}\n\treturn \"hello, \" + name + \"!\"\n}",
    );
    assert_ne!(other_greet, MAIN_GO);
    fs::write(repo.join("main.go"), &other_greet).expect("writing main.go");
    git(&repo, &["commit", "-q", "-am", "v2"]);
    go_build(&repo, &v2, &["-trimpath"]);
    let changed_greet = |d: &Diff| {
        let resized = d.json["functions"]["resized"].as_array().cloned().unwrap_or_default();
        if resized.iter().any(|f| f == "main.greet") {
            Ok(())
        } else {
            Err(format!("main.greet not among the functions that changed size {resized:?}"))
        }
    };
    case(
        "another commit of main.greet, VCS-stamped",
        &v1,
        &v2,
        expect(("vcs-revision", "certain"), &["modified-after-link", "ldflags"], &["built from revision"]),
        &changed_greet,
    );
    let unstamped = dir.join("unstamped");
    write_module(&unstamped, &other_greet);
    let other_source = dir.join("other-source");
    go_build(&unstamped, &other_source, &["-trimpath"]);
    case(
        "another source of main.greet, unstamped",
        &symbols,
        &other_source,
        expect(("unknown", "possible"), &["modified-after-link", "ldflags"], &["the code of main.greet changed size"]),
        &changed_greet,
    );

    // pflag replaced by a patched copy of the same version.
    let patched = dir.join("patched");
    harness::copy_tree(&src, &patched);
    let pflag_src = harness::shared_cache().join(format!("{PFLAG}@v1.0.5"));
    let local = patched.join("pflag");
    harness::copy_tree(&pflag_src, &local);
    harness::make_writable(&local);
    let flag_go = local.join("flag.go");
    let text = fs::read_to_string(&flag_go).expect("reading flag.go");
    fs::write(
        &flag_go,
        text.replacen(
            "func (f *FlagSet) Parse(arguments []string) error {",
            "func (f *FlagSet) Parse(arguments []string) error {\n\tprintln(\"patched\")",
            1,
        ),
    )
    .expect("patching flag.go");
    let mut go_mod = fs::read_to_string(patched.join("go.mod")).expect("reading go.mod");
    go_mod.push_str(&format!("\nreplace {PFLAG} => ./pflag\n"));
    fs::write(patched.join("go.mod"), go_mod).expect("writing go.mod");
    let replaced = dir.join("replaced");
    go_build(&patched, &replaced, &["-trimpath", "-ldflags=-s -w"]);
    case(
        "pflag replaced by a patched copy of the same version",
        &release,
        &replaced,
        expect(("dependency-replace", "certain"), &["modified-after-link", "dependency-version"], &[PFLAG, "./pflag"]),
        &none,
    );

    // Build settings: -X, -buildid=, stripped.
    case(
        "-X main.version with another value",
        &release,
        &stamped,
        expect(("ldflags", "possible"), &["modified-after-link", "build-id-only"], &[]),
        &|d: &Diff| match d.json["buildId"]["parts"][0]["equal"].as_bool() {
            Some(false) => Ok(()),
            other => Err(format!("the link action IDs should differ: {other:?}")),
        },
    );
    case(
        "-ldflags=-buildid=",
        &release,
        &no_build_id,
        expect(("build-id-only", "certain"), &["modified-after-link", "unknown"], &["b has none (-ldflags=-buildid=)"]),
        &|d: &Diff| if d.codes().len() == 1 { Ok(()) } else { Err("build-id-only is not alone".into()) },
    );
    // Nothing but the notes may differ for that: a byte edited beside them is no build-id-only.
    let no_build_id_edited = edited(dir, &no_build_id, "no-build-id-edited", |d| {
        let at = find(d, HELP);
        d[at] = b'P';
    });
    case(
        "-ldflags=-buildid= and a byte of a string edited",
        &release,
        &no_build_id_edited,
        expect(("ldflags", "possible"), &["build-id-only", "modified-after-link"], &[]),
        &self_checks("intact", "no-build-id"),
    );
    case(
        "-s -w against none",
        &symbols,
        &release,
        expect(("stripped", "likely"), &["modified-after-link", "ldflags", "unknown"], &[]),
        &self_checks("intact", "intact"),
    );
    let stripped = dir.join("stripped-after-link");
    tool("strip", &["-o".as_ref(), stripped.as_ref(), symbols.as_ref()]);
    case(
        "strip after the link",
        &symbols,
        &stripped,
        expect(("modified-after-link", "certain"), &["ldflags", "unknown"], &["b was changed after it was built"]),
        &|d: &Diff| match d.codes().get(1) {
            Some((code, _)) if code == "stripped" => Ok(()),
            other => Err(format!("second cause {other:?}, want stripped")),
        },
    );

    // UPX.
    let packed = dir.join("packed");
    tool("upx", &["-q".as_ref(), "-o".as_ref(), packed.as_ref(), release.as_ref()]);
    case(
        "UPX-packed",
        &release,
        &packed,
        expect(
            ("modified-after-link", "certain"),
            &["ldflags", "unknown", "stripped", "goos-goarch"],
            &["b was changed after it was built: it is packed"],
        ),
        &self_checks("intact", "packed"),
    );

    eprintln!("{}", table.join("\n"));
    failures.assert_none();
}

/// The reference of a release, one byte of its help string edited: `reprove verify`
/// rebuilds it, the rebuilt binary passes its self-check, the reference fails it, and
/// the report leads with `modified-after-link`, certain, saying where.
#[test]
fn a_tampered_reference_fails_verify_naming_the_edit() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let reference = p.reference("verifyapp", "go", &[]);
    let mut data = fs::read(&reference).expect("reading the reference");
    let at = find(&data, b"who to greet");
    data[at] = b'W';
    fs::write(&reference, &data).expect("writing the reference");
    let a = args(&base(&repo, "HEAD", toolchain), &["--reference", reference.to_str().unwrap_or_default()]);
    let (out, doc) = verify(&proxy, cache, &strs(&a));
    status(&out, &doc, 1);
    assert_eq!(doc["verdict"], "not-reproduced");
    assert_eq!(doc["inputs"]["reference"]["selfCheck"], "modified-after-link", "{doc:#}");
    let first = &doc["causes"][0];
    assert_eq!(
        (first["code"].as_str(), first["confidence"].as_str()),
        (Some("modified-after-link"), Some("certain")),
        "{doc:#}"
    );
    let explanation = first["explanation"].as_str().unwrap_or_default();
    assert!(explanation.starts_with("the reference was changed after it was built"), "{explanation}");
    assert!(explanation.contains(&format!("file offset {at:#x} (.rodata+0x")), "{explanation}");
    assert!(explanation.ends_with("the rebuilt binary is intact"), "{explanation}");
    let codes: Vec<&str> = doc["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(!codes.iter().any(|c| matches!(*c, "ldflags" | "unknown")), "{codes:?}");
    let summary = doc["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("modified-after-link: the reference was changed after it was built"), "{summary}");
}

/// A reference built from a source whose one function differs from the commit's:
/// nothing recorded differs (no VCS stamping), so the cause is `unknown`, naming the function.
#[test]
fn a_reference_from_another_source_fails_verify_naming_the_function() {
    let s = shared();
    let (proxy, cache, toolchain) = (s.proxy.url(), &s.cache, s.toolchain.as_str());
    let p = Project::new();
    let repo = p.repo.display().to_string();
    let main_go = p.repo.join("main.go");
    let original = fs::read_to_string(&main_go).expect("reading main.go");
    let edited =
        original.replace("\tpflag.Parse()\n", "\tpflag.Parse()\n\tif *name == \"\" {\n\t\t*name = \"nobody\"\n\t}\n");
    assert_ne!(edited, original);
    fs::write(&main_go, edited).expect("editing main.go");
    let reference = p.reference("verifyapp", "go", &[]);
    fs::write(&main_go, original).expect("restoring main.go");
    let a = args(&base(&repo, "HEAD", toolchain), &["--reference", reference.to_str().unwrap_or_default()]);
    let (out, doc) = verify(&proxy, cache, &strs(&a));
    status(&out, &doc, 1);
    assert_eq!(doc["inputs"]["reference"]["selfCheck"], "intact", "{doc:#}");
    let first = &doc["causes"][0];
    assert_eq!(first["code"], "unknown", "{doc:#}");
    let explanation = first["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains("the code of main.main changed size"), "{explanation}");
    let codes: Vec<&str> = doc["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(!codes.iter().any(|c| matches!(*c, "ldflags" | "modified-after-link")), "{codes:?}");
}
