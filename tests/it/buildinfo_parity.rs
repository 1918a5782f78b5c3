//! `reprove buildinfo` against the reference reader, `go version -m` of the
//! newest Go (the `go` on PATH), byte for byte: stdout, stderr and exit status.
//!
//! - every fixture of the matrix (`support::fixtures`): toolchains 1.15 to the
//!   newest, ELF/PE/Mach-O/XCOFF/Plan 9/wasm, flags, modules, VCS stamping, cgo;
//! - every Go binary the Debian packages of `ci/setup` carry;
//! - non-Go and hostile inputs: empty, text, truncated, corrupted, a fat Mach-O,
//!   symlinks, directory walks, several files in one call;
//! - `--json` against `go version -m -json`;
//! - `--json --build-id` against `go tool buildid` and the ELF GNU build-id note.
//!
//! Every case runs; a test fails at the end with the list of failing cases and
//! a diff of the two outputs.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

use support::fixtures::{
    fat_macho, fixtures, packaged_binaries, packaged_dirs, Fixture, Target, DARWIN_AMD64, DARWIN_ARM64, LINUX_AMD64,
    WINDOWS_AMD64,
};
use support::{compare, go_version, hermetic_go_env, os_args, reprove_buildinfo, run, Failures, RUN_SETUP};

/// `go version -m ARGS` vs `reprove buildinfo ARGS`, and the `-json` / `--json` pair.
fn check_both(failures: &mut Failures, label: &str, cwd: &Path, files: &[OsString]) -> Option<support::Outcome> {
    let mut go_text = None;
    for json in [false, true] {
        failures.case();
        let mut go_args = os_args(["-m"]);
        let mut reprove_args = Vec::new();
        if json {
            go_args.push("-json".into());
            reprove_args.push(OsString::from("--json"));
        }
        go_args.extend(files.iter().cloned());
        reprove_args.extend(files.iter().cloned());
        let mode = if json { "json" } else { "text" };
        let expected = match go_version(cwd, &go_args) {
            Ok(o) => o,
            Err(e) => {
                failures.fail(format!("{label} [{mode}]"), e);
                continue;
            }
        };
        match reprove_buildinfo(cwd, &reprove_args) {
            Ok(actual) => {
                if let Some(report) = compare("go version", &expected, "reprove", &actual) {
                    failures.fail(format!("{label} [{mode}] in {}: {}", cwd.display(), show_args(files)), report);
                }
            }
            Err(e) => failures.fail(format!("{label} [{mode}]"), e),
        }
        if !json {
            go_text = Some(expected);
        }
    }
    go_text
}

fn show_args(files: &[OsString]) -> String {
    files.iter().map(|f| format!("{:?}", f.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

fn parent(path: &Path) -> &Path {
    path.parent().expect("a fixture path has a parent")
}

/// Go reads the build info of everything it builds, except wasm (a format the
/// reference reader does not know) and Plan 9 386 (where Go 1.26 reports "not a
/// Go executable"): parity there is both reporting the same error.
fn go_can_read(f: &Fixture) -> bool {
    f.target.goarch != "wasm" && !(f.target.goos == "plan9" && f.target.goarch == "386")
}

#[test]
fn fixtures_all_build() {
    let fx = fixtures();
    eprintln!(
        "toolchains: {}",
        fx.toolchains.iter().map(|t| format!("{} ({})", t.version, t.go.display())).collect::<Vec<_>>().join(", ")
    );
    eprintln!("{} fixtures, {} built now, {:.1?}", fx.built.len(), fx.fresh, fx.elapsed);
    assert!(fx.errors.is_empty(), "{} fixture problems:\n\n{}\n", fx.errors.len(), fx.errors.join("\n\n"));
    assert!(fx.toolchains.len() >= 6, "expected 6 Go toolchains; {RUN_SETUP}");
}

#[test]
fn fixtures_text_and_json() {
    let fx = fixtures();
    let mut failures = Failures::new("reprove buildinfo vs go version -m, fixtures");
    for f in &fx.built {
        let label = f.to_string();
        let go = check_both(&mut failures, &label, parent(&f.path), &os_args([&f.path]));
        if let Some(go) = go {
            if go_can_read(f) != go.success() {
                failures.fail(
                    &label,
                    format!(
                        "the reference reader {} this fixture (exit {:?}): {}",
                        if go.success() { "unexpectedly reads" } else { "cannot read" },
                        go.status,
                        go.stderr_str()
                    ),
                );
            }
        }
    }
    failures.assert_none();
}

#[test]
fn fixtures_relative_paths() {
    // The file name is printed as given: relative, with "./", and several at once.
    let fx = fixtures();
    let mut failures = Failures::new("reprove buildinfo vs go version -m, relative names");
    let hello = fx.require_newest("hello", LINUX_AMD64);
    let dir = parent(&hello.path);
    let name = hello.path.file_name().expect("file name").to_os_string();
    let mut dot = OsString::from("./");
    dot.push(&name);
    check_both(&mut failures, "relative", dir, std::slice::from_ref(&name));
    check_both(&mut failures, "dot-relative", dir, &[dot]);
    let many: Vec<OsString> = fx
        .built
        .iter()
        .filter(|f| f.target == WINDOWS_AMD64 || f.target == DARWIN_ARM64)
        .map(|f| f.path.clone().into())
        .collect();
    check_both(&mut failures, "many files in one call", dir, &many);
    failures.assert_none();
}

#[test]
fn packaged_go_binaries() {
    let fx = fixtures();
    let (paths, errors) = packaged_binaries(&fx.toolchains);
    let mut failures = Failures::new("reprove buildinfo vs go version -m, packaged Go binaries");
    for e in errors {
        failures.case();
        failures.fail("packaged binary", e);
    }
    let root = Path::new("/");
    for p in &paths {
        let go = check_both(&mut failures, &p.display().to_string(), root, &os_args([p]));
        if let Some(go) = go {
            if !go.success() {
                failures
                    .fail(p.display().to_string(), format!("not read by the reference reader: {}", go.stderr_str()));
            }
        }
    }
    // Directory walks over real tools.
    for dir in packaged_dirs(&fx.toolchains) {
        if !dir.is_dir() {
            failures.case();
            failures.fail(dir.display().to_string(), format!("missing directory: {RUN_SETUP}"));
            continue;
        }
        check_both(&mut failures, &format!("walk {}", dir.display()), root, &os_args([&dir]));
    }
    failures.assert_none();
}

/// A scratch directory of non-Go and hostile inputs (see [`hostile_inputs`]).
struct Hostile {
    dir: tempfile::TempDir,
}

impl Hostile {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn write_file(path: &Path, content: &[u8], mode: u32) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create dir");
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn hostile_inputs() -> Hostile {
    let fx = fixtures();
    let hello = read(&fx.require_newest("hello", LINUX_AMD64).path);
    let hello_pe = read(&fx.require_newest("hello", WINDOWS_AMD64).path);
    let hello_macho = read(&fx.require_newest("hello", DARWIN_AMD64).path);
    let hello_macho_arm = read(&fx.require_newest("hello", DARWIN_ARM64).path);
    let old = |target: Target| {
        fx.by("go1.15", "hello", target)
            .map(|f| read(&f.path))
            .unwrap_or_else(|| panic!("Go 1.15 hello {target} was not built ({RUN_SETUP}):\n{}", fx.errors.join("\n")))
    };
    let hello115 = old(LINUX_AMD64);
    let hello115_386 = old(Target { goos: "linux", goarch: "386" });

    let dir = tempfile::Builder::new().prefix("reprove-hostile-").tempdir().expect("tempdir");
    let h = Hostile { dir };
    write_file(&h.path("empty"), b"", 0o644);
    write_file(&h.path("empty-x"), b"", 0o755);
    write_file(&h.path("text.txt"), b"just some text\n", 0o644);
    write_file(&h.path("text-x"), b"#!/bin/sh\necho not go\n", 0o755);
    write_file(&h.path("x.exe"), b"MZ but not really a PE file\n", 0o644);
    write_file(&h.path("hello"), &hello, 0o755);
    write_file(&h.path("hello-noexec"), &hello, 0o644);
    write_file(&h.path("name with space"), &hello, 0o755);
    write_file(&h.path("fat-macho"), &fat_macho(&[hello_macho.clone(), hello_macho_arm]), 0o755);
    for (name, bytes) in [
        ("elf", &hello),
        ("pe", &hello_pe),
        ("macho", &hello_macho),
        ("go115", &hello115),
        ("go115-386", &hello115_386),
    ] {
        write_file(&h.path(&format!("trunc-{name}-1000")), &bytes[..1000], 0o755);
        write_file(&h.path(&format!("trunc-{name}-half")), &bytes[..bytes.len() / 2], 0o755);
    }
    // Same-length corruptions, so the container still parses and Go's build info
    // reader gets to the damaged part.
    let magic: &[u8] = b"\xff Go buildinf:";
    let corrupt = |name: &str, bytes: &[u8], needle: &[u8], edit: &dyn Fn(&mut [u8])| {
        // The modinfo is in the binary twice (runtime.modinfo too): patch the
        // copy in the build info blob, which follows the magic.
        let start = find(bytes, magic).unwrap_or_else(|| panic!("{name}: no build info magic"));
        let pos = start
            + find(&bytes[start..], needle).unwrap_or_else(|| panic!("{name}: {needle:?} not found after the magic"));
        let mut b = bytes.to_vec();
        edit(&mut b[pos..]);
        write_file(&h.path(name), &b, 0o755);
    };
    corrupt("corrupt-magic", &hello, magic, &|w| w[13] = b'X');
    // Inline format: flags at 15, then uvarint(len) + version at 32.
    corrupt("corrupt-flags-pointer-format", &hello, magic, &|w| w[15] = 0);
    corrupt("corrupt-flags-big-endian", &hello, magic, &|w| w[15] |= 1);
    {
        let pos = find(&hello, magic).expect("build info magic");
        let mut b = hello.clone();
        b[pos + 32] = 0x7f; // the version's length: now runs into the modinfo
        write_file(&h.path("corrupt-version-length"), &b, 0o755);
        let mut b = hello.clone();
        b[pos + 32] = 0; // an empty version
        write_file(&h.path("corrupt-version-empty"), &b, 0o755);
    }
    // The modinfo text: a mod line with one column, a build line without '='.
    corrupt("corrupt-mod-columns", &hello, b"mod\texample.com/hello\t(devel)\t\n", &|w| {
        w[21] = b' ';
        w[29] = b' ';
    });
    corrupt("corrupt-build-line", &hello, b"build\t-buildmode=exe\n", &|w| w[16] = b' ');
    corrupt("corrupt-build-quote", &hello, b"build\t-buildmode=exe\n", &|w| w[6] = b'"');
    corrupt("corrupt-path-newline", &hello, b"\nmod\texample.com/hello", &|w| w[0] = b'X');
    // The newline before the closing sentinel: Go then drops the whole modinfo.
    corrupt("corrupt-sentinel", &hello, b"build\tGOAMD64=v1\n", &|w| w[16] = b'X');
    // Old pointer format: the version string pointer aimed outside the file.
    corrupt("corrupt-go115-pointer", &hello115, magic, &|w| w[16..24].fill(0xff));
    symlink(h.path("hello"), h.path("link-bin")).expect("symlink");
    symlink(h.path("tree"), h.path("link-dir")).expect("symlink");
    symlink(h.path("nowhere"), h.path("link-dangling")).expect("symlink");

    // A tree for `go version -m DIR`: Go binaries among non-Go files, names
    // whose byte order differs from path order ("sub" then "sub-a"), upper case
    // before lower case, symlinks to a file (followed) and to a directory (not).
    let tree = h.path("tree");
    write_file(&tree.join("hello"), &hello, 0o755);
    write_file(&tree.join("Hello-upper"), &hello115, 0o755);
    write_file(&tree.join("noexec"), &hello, 0o644);
    write_file(&tree.join("a.exe"), b"text named .exe\n", 0o644);
    write_file(&tree.join("empty"), b"", 0o755);
    write_file(&tree.join("trunc"), &hello[..hello.len() / 2], 0o755);
    write_file(&tree.join("text-x"), b"#!/bin/sh\n", 0o755);
    write_file(&tree.join("sub/z-windows.exe"), &hello_pe, 0o755);
    write_file(&tree.join("sub/deeper/macho"), &hello_macho, 0o755);
    write_file(&tree.join("sub-a"), &hello115_386, 0o755);
    write_file(&tree.join("sub.b"), &hello, 0o755);
    fs::create_dir_all(tree.join("empty-dir")).expect("mkdir");
    symlink("hello", tree.join("link-to-bin")).expect("symlink");
    symlink("sub", tree.join("link-to-sub")).expect("symlink");
    symlink("nowhere", tree.join("link-dangling")).expect("symlink");
    h
}

#[test]
fn hostile_and_non_go_inputs() {
    let h = hostile_inputs();
    let cwd = h.dir.path();
    let mut failures = Failures::new("reprove buildinfo vs go version -m, hostile inputs");
    let abs = |name: &str| OsString::from(h.path(name));
    let rel = |name: &str| OsString::from(name);
    let mut cases: Vec<(&str, Vec<OsString>)> = vec![
        ("0-byte file", vec![rel("empty")]),
        ("0-byte executable", vec![rel("empty-x")]),
        ("missing file", vec![rel("missing")]),
        ("empty name", vec![rel("")]),
        ("text file", vec![rel("text.txt")]),
        ("executable text file", vec![rel("text-x")]),
        ("x.exe that is not a binary", vec![rel("x.exe")]),
        ("non-Go ELF", vec![OsString::from("/bin/ls")]),
        ("character device", vec![OsString::from("/dev/null")]),
        ("Go binary, absolute", vec![abs("hello")]),
        ("Go binary without exec bit", vec![rel("hello-noexec")]),
        ("name with a space", vec![rel("name with space")]),
        ("fat Mach-O", vec![rel("fat-macho")]),
        ("symlink to a binary", vec![rel("link-bin")]),
        ("symlink to a directory", vec![rel("link-dir")]),
        ("dangling symlink", vec![rel("link-dangling")]),
        ("directory, absolute", vec![abs("tree")]),
        ("directory, relative", vec![rel("tree")]),
        ("directory, trailing slash", vec![rel("tree/")]),
        ("directory, double slash", vec![rel("tree//sub")]),
        ("directory, dot", vec![rel(".")]),
        ("same file twice", vec![rel("hello"), rel("hello")]),
        (
            "several files in one call",
            vec![
                rel("hello"),
                rel("missing"),
                rel("text-x"),
                rel("x.exe"),
                rel("tree/sub"),
                rel("link-bin"),
                OsString::from("/bin/ls"),
                rel("empty"),
                rel("fat-macho"),
            ],
        ),
    ];
    let mut truncated: Vec<String> = fs::read_dir(cwd)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("trunc-") || n.starts_with("corrupt-"))
        .collect();
    truncated.sort();
    assert!(truncated.len() >= 10, "truncated inputs missing: {truncated:?}");
    for name in &truncated {
        cases.push(("truncated Go binary", vec![OsString::from(name)]));
    }
    for (label, args) in &cases {
        check_both(&mut failures, label, cwd, args);
    }
    // Within the directory too, relative to it.
    check_both(&mut failures, "directory walk from inside", &h.path("tree"), &[rel(".")]);
    failures.assert_none();
}

/// The `Build ID:` of the GNU build-id note, from `readelf -n`; `Ok(None)` for
/// an ELF file without one, `Err` when readelf does not read the file.
fn readelf_gnu_build_id(path: &Path) -> Result<Option<String>, String> {
    let out = run(Command::new("readelf").arg("-n").arg(path)).map_err(|e| format!("{e} ({RUN_SETUP})"))?;
    if !out.success() {
        return Err(out.stderr_str());
    }
    Ok(out.stdout_str().lines().find_map(|l| l.trim().strip_prefix("Build ID: ").map(|id| id.trim().to_string())))
}

#[test]
fn build_ids() {
    let fx = fixtures();
    let (packaged, errors) = packaged_binaries(&fx.toolchains);
    let mut failures = Failures::new("reprove buildinfo --json --build-id vs go tool buildid and readelf -n");
    for e in errors {
        failures.case();
        failures.fail("packaged binary", e);
    }
    let files: Vec<PathBuf> = fx.built.iter().map(|f| f.path.clone()).chain(packaged).collect();
    failures.case();
    if let Err(e) =
        run(Command::new("readelf").arg("--version")).and_then(
            |o| {
                if o.success() {
                    Ok(())
                } else {
                    Err(o.stderr_str())
                }
            },
        )
    {
        failures.fail("readelf", format!("{e} ({RUN_SETUP})"));
    }
    let (mut go_checked, mut gnu_checked) = (0, 0);
    for path in &files {
        let label = path.display().to_string();
        let cwd = parent(path);
        let reference = match go_version(cwd, &os_args(["-m".as_ref(), "-json".as_ref(), path.as_os_str()])) {
            Ok(o) if o.success() => o,
            // Not readable by Go (wasm): there is no build info to extend.
            Ok(_) => continue,
            Err(e) => {
                failures.case();
                failures.fail(&label, e);
                continue;
            }
        };
        failures.case();
        let mut reference: serde_json::Value = match serde_json::from_slice(&reference.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.fail(&label, format!("go version -m -json printed invalid JSON: {e}"));
                continue;
            }
        };
        let out = match reprove_buildinfo(cwd, &os_args(["--json".as_ref(), "--build-id".as_ref(), path.as_os_str()])) {
            Ok(o) => o,
            Err(e) => {
                failures.fail(&label, e);
                continue;
            }
        };
        if !out.success() {
            failures.fail(&label, format!("reprove exited {:?}: {}", out.status, out.stderr_str()));
            continue;
        }
        let mut actual: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.fail(&label, format!("reprove printed invalid JSON: {e}\n{}", out.stdout_str()));
                continue;
            }
        };
        let Some(obj) = actual.as_object_mut() else {
            failures.fail(&label, format!("reprove printed no JSON object: {}", out.stdout_str()));
            continue;
        };
        let go_build_id = obj.remove("GoBuildID");
        let gnu_build_id = obj.remove("GNUBuildID");
        if let Some(o) = reference.as_object_mut() {
            o.remove("GoBuildID");
            o.remove("GNUBuildID");
        }
        if actual != reference {
            failures.fail(
                &label,
                format!(
                    "with --build-id, the rest of the JSON differs from go version -m -json:\n{}",
                    support::line_diff(
                        serde_json::to_string_pretty(&reference).unwrap_or_default().as_bytes(),
                        serde_json::to_string_pretty(&actual).unwrap_or_default().as_bytes()
                    )
                ),
            );
        }

        let mut tool = Command::new("go");
        hermetic_go_env(&mut tool).current_dir(cwd).args(["tool", "buildid"]).arg(path);
        match run(&mut tool) {
            Ok(o) if o.success() => {
                go_checked += 1;
                let want = o.stdout_str().trim().to_string();
                // An empty build ID (`-ldflags=-buildid=`) is left out, as the JSON's other empty strings.
                let got = go_build_id.as_ref().and_then(|v| v.as_str()).unwrap_or_default();
                if got != want {
                    failures.fail(&label, format!("GoBuildID: go tool buildid {want:?}, reprove {go_build_id:?}"));
                }
            }
            Ok(_) => {}
            Err(e) => failures.fail(&label, e),
        }

        // readelf reads ELF files only; there is nothing to compare with for the others.
        if let Ok(want) = readelf_gnu_build_id(path) {
            gnu_checked += usize::from(want.is_some());
            let got = match &gnu_build_id {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) if s.is_empty() => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            if got != want {
                failures.fail(&label, format!("GNUBuildID: readelf -n {want:?}, reprove {gnu_build_id:?}"));
            }
        }
    }
    eprintln!("Go build IDs compared: {go_checked}; GNU build IDs compared: {gnu_checked}");
    if go_checked == 0 || gnu_checked == 0 {
        failures.case();
        failures.fail(
            "coverage",
            format!("compared {go_checked} Go and {gnu_checked} GNU build IDs; expected some of each"),
        );
    }
    failures.assert_none();
}
