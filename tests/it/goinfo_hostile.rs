//! Hostile inputs for `reprove buildinfo`: damaged, truncated and lying
//! executables, and the inputs the fuzzer (`ci/fuzz`) found.
//!
//! The spec is the real `go version -m`: for every input, reprove must print the
//! same stdout, the same stderr and exit with the same status, and it must never
//! panic. Inputs are made at run time from Go binaries built here (no binary is
//! committed): a small program for linux/amd64, darwin/amd64 and darwin/arm64.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// `go` with an environment that cannot reach the network or switch toolchains.
fn go() -> Command {
    let mut cmd = Command::new("go");
    cmd.env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("CGO_ENABLED", "0");
    cmd
}

fn output(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {cmd:?}: {e} (is go on PATH? run ci/setup)"),
    }
}

/// The Go binaries every case starts from, built once per test process.
struct Binaries {
    _dir: tempfile::TempDir,
    linux: Vec<u8>,
    darwin_amd64: Vec<u8>,
    darwin_arm64: Vec<u8>,
}

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let write = |name: &str, text: &str| {
            fs::write(src.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        };
        write("go.mod", "module example.com/hostile\n\ngo 1.21\n");
        write("main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hostile\") }\n");
        let build = |goos: &str, goarch: &str| -> Vec<u8> {
            let out_file = dir.path().join(format!("hello-{goos}-{goarch}"));
            let out = output(
                go().current_dir(&src)
                    .env("GOOS", goos)
                    .env("GOARCH", goarch)
                    .args(["build", "-trimpath", "-o"])
                    .arg(&out_file)
                    .arg("."),
            );
            assert!(out.status.success(), "go build {goos}/{goarch}: {}", String::from_utf8_lossy(&out.stderr));
            fs::read(&out_file).unwrap_or_else(|e| panic!("read {}: {e}", out_file.display()))
        };
        Binaries {
            linux: build("linux", "amd64"),
            darwin_amd64: build("darwin", "amd64"),
            darwin_arm64: build("darwin", "arm64"),
            _dir: dir,
        }
    })
}

/// A scratch directory where both tools run, so that they print the same relative names.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Scratch { dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")) }
    }

    /// Writes an executable file (mode 0755: both tools report why it is not a Go binary).
    fn file(&self, name: &str, data: &[u8]) -> &Self {
        self.file_mode(name, data, 0o755)
    }

    fn file_mode(&self, name: &str, data: &[u8], mode: u32) -> &Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod: {e}"));
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The outcome of one tool on some arguments.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

fn outcome(out: Output) -> Outcome {
    Outcome {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn go_version_m(dir: &Path, args: &[&str]) -> Outcome {
    outcome(output(go().current_dir(dir).args(["version", "-m"]).args(args)))
}

/// Seconds any one `reprove buildinfo` may take: a hostile file must not make it hang.
const DEADLINE_SECS: u32 = 60;
/// Address space any one `reprove buildinfo` may use.
const MEMORY_LIMIT_KIB: u64 = 4 << 20;

fn reprove(dir: &Path, args: &[&str]) -> Outcome {
    // A memory limit too: a hostile file must not make it allocate without bound
    // (and, with overcommit, take the machine's memory with it).
    let out = outcome(output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v {MEMORY_LIMIT_KIB} && exec timeout {DEADLINE_SECS} \"$0\" buildinfo \"$@\""))
            .arg(env!("CARGO_BIN_EXE_reprove"))
            .args(args)
            .current_dir(dir),
    ));
    assert_ne!(out.status, Some(124), "reprove buildinfo {args:?} hung (killed after {DEADLINE_SECS} s)");
    out
}

/// Runs both tools; reprove must not panic and must agree with Go on stdout,
/// stderr and exit status. Returns reprove's outcome.
fn same_as_go(dir: &Path, args: &[&str]) -> Outcome {
    let want = go_version_m(dir, args);
    let got = reprove(dir, args);
    assert!(!got.stderr.contains("panicked"), "reprove buildinfo {args:?} panicked:\n{}", got.stderr);
    assert!(
        matches!(got.status, Some(0) | Some(1)),
        "reprove buildinfo {args:?}: status {:?}\n{}",
        got.status,
        got.stderr
    );
    assert_eq!(got, want, "reprove buildinfo {args:?} (left) differs from go version -m (right)");
    got
}

/// Checks each named case against Go and reports every difference at once.
fn all_same_as_go(scratch: &Scratch, names: &[String]) {
    let mut failures = Vec::new();
    for name in names {
        let want = go_version_m(scratch.path(), &[name]);
        let got = reprove(scratch.path(), &[name]);
        if got.stderr.contains("panicked") {
            failures.push(format!("{name}: reprove panicked:\n{}", got.stderr));
        } else if got != want {
            failures.push(format!(
                "{name}:\n  go version -m:     {}\n  reprove buildinfo: {}",
                brief(&want),
                brief(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from go version -m:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// An outcome in one line, stdout cut short.
fn brief(o: &Outcome) -> String {
    let stdout: String = o.stdout.chars().take(120).collect();
    format!("status {:?}, stdout {stdout:?}, stderr {:?}", o.status, o.stderr)
}

/// A refusal, as both tools word it for an executable file.
fn assert_refused(out: &Outcome, name: &str, reason: &str) {
    assert_eq!(out.status, Some(1), "{name}: {out:?}");
    assert_eq!(out.stdout, "", "{name}");
    assert_eq!(out.stderr, format!("{name}: could not read Go build info from {name}: {reason}\n"));
}

fn find_magic(exe: &[u8]) -> usize {
    exe.windows(MAGIC.len())
        .enumerate()
        .position(|(i, w)| i % 16 == 0 && w == MAGIC)
        .unwrap_or_else(|| panic!("no build info header"))
}

fn patched(exe: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = exe.to_vec();
    out[at..at + bytes.len()].copy_from_slice(bytes);
    out
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

fn le16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

/// Offset of the ELF64 section header named `name`.
fn elf_section_header(exe: &[u8], name: &[u8]) -> usize {
    let shoff = le64(exe, 40) as usize;
    let (shentsize, shnum, shstrndx) = (le16(exe, 58), le16(exe, 60), le16(exe, 62));
    let strtab = le64(exe, shoff + shstrndx * shentsize + 24) as usize;
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&sh| {
            let at = strtab + u32::from_le_bytes(exe[sh..sh + 4].try_into().unwrap_or_default()) as usize;
            exe[at..].split(|&b| b == 0).next() == Some(name)
        })
        .unwrap_or_else(|| panic!("no section {}", String::from_utf8_lossy(name)))
}

/// Offset of the first writable PT_LOAD program header of an ELF64 file.
fn elf_data_segment(exe: &[u8]) -> usize {
    let phoff = le64(exe, 32) as usize;
    let (phentsize, phnum) = (le16(exe, 54), le16(exe, 56));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| exe[ph..ph + 4] == [1, 0, 0, 0] && exe[ph + 4] & 3 == 2)
        .unwrap_or_else(|| panic!("no data segment"))
}

#[test]
fn intact_binary_reads_like_go() {
    let b = binaries();
    let s = Scratch::new();
    s.file("hello", &b.linux);
    let out = same_as_go(s.path(), &["hello"]);
    assert_eq!(out.status, Some(0));
    assert!(out.stdout.starts_with("hello: go"), "{}", out.stdout);
    let json = go_version_m_json(s.path(), "hello");
    assert_eq!(json.0, json.1, "--json differs from go version -m -json");
}

fn go_version_m_json(dir: &Path, name: &str) -> (Outcome, Outcome) {
    let want = outcome(output(go().current_dir(dir).args(["version", "-m", "-json", name])));
    let got = reprove(dir, &["--json", name]);
    (got, want)
}

#[test]
fn truncated_binaries() {
    let exe = &binaries().linux;
    let m = find_magic(exe);
    let version_len = exe[m + 32] as usize;
    let cuts = [
        1,
        15,
        16,
        63,
        64,
        le64(exe, 32) as usize + 10, // inside the program headers
        le64(exe, 40) as usize + 70, // inside the section headers
        4096,
        m - 1,
        m,
        m + 16,
        m + 31,
        m + 32,
        m + 33,
        m + 33 + version_len / 2,
        m + 33 + version_len,
        m + 33 + version_len + 2,
        m + 200,
        exe.len() / 2,
        exe.len() - 1,
    ];
    let s = Scratch::new();
    let mut names = Vec::new();
    for cut in cuts {
        let name = format!("cut-{cut}");
        s.file(&name, &exe[..cut]);
        names.push(name);
    }
    all_same_as_go(&s, &names);
    for name in &names {
        let out = reprove(s.path(), &[name]);
        assert_eq!(out.status, Some(1), "{name}: a truncated binary is refused: {out:?}");
        assert!(out.stderr.starts_with(&format!("{name}: could not read Go build info from {name}: ")), "{out:?}");
    }
}

#[test]
fn lying_version_length() {
    let exe = &binaries().linux;
    let m = find_magic(exe);
    let v = m + 32;
    let modinfo_len_at = v + 1 + exe[v] as usize;
    let cases: [(&str, usize, &[u8]); 9] = [
        ("len-max", v, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        ("len-overflow", v, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
        ("len-2p62", v, b"\x80\x80\x80\x80\x80\x80\x80\x80\x40"),
        ("len-past-segment", v, b"\x80\x80\x20"),
        ("len-past-section", v, b"\x80\x08"),
        ("len-127", v, b"\x7f"),
        ("len-0", v, b"\x00"),
        ("modinfo-len-max", modinfo_len_at, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        ("modinfo-len-past-segment", modinfo_len_at, b"\x80\x80\x20"),
    ];
    let s = Scratch::new();
    let mut names = Vec::new();
    for (name, at, bytes) in cases {
        s.file(name, &patched(exe, at, bytes));
        names.push(name.to_string());
    }
    all_same_as_go(&s, &names);
    assert_refused(&reprove(s.path(), &["len-max"]), "len-max", "not a Go executable");
    assert_refused(&reprove(s.path(), &["len-overflow"]), "len-overflow", "not a Go executable");
}

#[test]
fn moved_and_lying_headers() {
    let exe = &binaries().linux;
    let m = find_magic(exe);
    let no_magic = patched(exe, m, &[0; 14]);
    let sh = elf_section_header(exe, b".go.buildinfo");
    let ph = elf_data_segment(exe);
    let seg_addr = le64(exe, ph + 16);
    let seg_filesz = le64(exe, ph + 32);
    let mut at_eof = exe.clone();
    at_eof.resize(exe.len().next_multiple_of(16), 0);
    at_eof.extend_from_slice(&exe[m..m + 16]);
    let mut pointers_past_end = patched(exe, m + 14, &[8, 0]);
    pointers_past_end[m + 16..m + 24].copy_from_slice(&0xffff_ffff_ffff_0000u64.to_le_bytes());
    pointers_past_end[m + 24..m + 32].copy_from_slice(&(seg_addr + seg_filesz - 8).to_le_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("magic-removed", no_magic.clone()),
        ("magic-misaligned", patched(&no_magic, m + 8, &exe[m..m + 48])),
        ("magic-also-at-eof", at_eof.clone()),
        ("magic-only-at-eof", patched(&at_eof, m, &[0; 14])),
        ("pointer-format", patched(exe, m + 15, &[0])),
        ("pointer-format-big-endian", patched(exe, m + 15, &[1])),
        ("pointer-size-3", patched(exe, m + 14, &[3, 0])),
        ("pointers-past-end", pointers_past_end),
        ("section-unmapped", patched(exe, sh + 16, &0x1000_0000u64.to_le_bytes())),
        ("section-at-segment-end", patched(exe, sh + 16, &(seg_addr + seg_filesz - 16).to_le_bytes())),
        ("section-size-huge", patched(exe, sh + 32, &(1u64 << 62).to_le_bytes())),
        ("section-size-0", patched(exe, sh + 32, &0u64.to_le_bytes())),
        ("section-size-16", patched(exe, sh + 32, &16u64.to_le_bytes())),
        ("segment-filesz-past-eof", patched(exe, ph + 32, &(1u64 << 40).to_le_bytes())),
        ("segment-offset-past-eof", patched(exe, ph + 8, &(1u64 << 40).to_le_bytes())),
        ("segment-offset-negative", patched(exe, ph + 8, &(1u64 << 63).to_le_bytes())),
        ("segment-vaddr-wraps", patched(exe, ph + 16, &0xffff_ffff_ffff_ff00u64.to_le_bytes())),
        ("shoff-past-eof", patched(exe, 40, &(1u64 << 40).to_le_bytes())),
        ("shnum-ffff", patched(exe, 60, &[0xff, 0xff])),
        ("phnum-ffff", patched(exe, 56, &[0xff, 0xff])),
    ];
    let s = Scratch::new();
    let mut names = Vec::new();
    for (name, data) in &cases {
        s.file(name, data);
        names.push(name.to_string());
    }
    all_same_as_go(&s, &names);
    assert_refused(&reprove(s.path(), &["magic-removed"]), "magic-removed", "not a Go executable");
    assert_refused(&reprove(s.path(), &["shoff-past-eof"]), "shoff-past-eof", "unrecognized file format");
}

#[test]
fn empty_file_directory_and_non_go_elf() {
    let s = Scratch::new();
    s.file("empty", b"");
    s.file_mode("empty-not-executable", b"", 0o644);
    s.file("dir/hello", &binaries().linux);
    s.file("dir/empty", b"");
    s.file("dir/sub/garbage", b"\x7fELF garbage that is not an ELF file");
    fs::create_dir(s.path().join("empty-dir")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    fs::copy("/bin/true", s.path().join("true")).unwrap_or_else(|e| panic!("copy /bin/true: {e}"));

    assert_refused(&same_as_go(s.path(), &["empty"]), "empty", "unrecognized file format");
    // Not executable: refused without a word, as Go does.
    let out = same_as_go(s.path(), &["empty-not-executable"]);
    assert_eq!((out.status, out.stderr.as_str()), (Some(1), ""));
    assert_refused(&same_as_go(s.path(), &["true"]), "true", "not a Go executable");
    // A directory is walked and its non-Go files are skipped silently.
    let out = same_as_go(s.path(), &["dir"]);
    assert_eq!(out.status, Some(0));
    assert!(out.stdout.starts_with("dir/hello: go"), "{}", out.stdout);
    same_as_go(s.path(), &["empty-dir"]);
    same_as_go(s.path(), &["missing"]);
    same_as_go(s.path(), &["empty", "dir", "true", "empty-dir"]);
}

// ---------------------------------------------------------------- fat Mach-O

const CPU_AMD64: u32 = 0x0100_0007;
const CPU_ARM64: u32 = 0x0100_000c;

/// One architecture entry of a fat header: cpu, subcpu, offset, size, align.
type FatArch = (u32, u32, u32, u32, u32);

/// A universal binary: big-endian header, 20-byte entries, then the images at the given offsets.
fn fat(arches: &[FatArch], narch: u32, images: &[(usize, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xcafe_babeu32.to_be_bytes());
    out.extend_from_slice(&narch.to_be_bytes());
    for &(cpu, sub, off, size, align) in arches {
        for v in [cpu, sub, off, size, align] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    for &(off, img) in images {
        if out.len() < off + img.len() {
            out.resize(off + img.len(), 0);
        }
        out[off..off + img.len()].copy_from_slice(img);
    }
    out
}

fn page_align(n: usize) -> usize {
    n.next_multiple_of(0x4000)
}

struct FatParts {
    amd64: &'static [u8],
    arm64: &'static [u8],
    off_a: usize,
    off_b: usize,
}

impl FatParts {
    fn new() -> Self {
        let b = binaries();
        let off_a = 0x4000;
        FatParts {
            amd64: &b.darwin_amd64,
            arm64: &b.darwin_arm64,
            off_a,
            off_b: page_align(off_a + b.darwin_amd64.len()),
        }
    }
    fn a(&self) -> FatArch {
        (CPU_AMD64, 3, self.off_a as u32, self.amd64.len() as u32, 14)
    }
    fn b(&self) -> FatArch {
        (CPU_ARM64, 0, self.off_b as u32, self.arm64.len() as u32, 14)
    }
    fn build(&self, arches: &[FatArch]) -> Vec<u8> {
        fat(arches, arches.len() as u32, &[(self.off_a, self.amd64), (self.off_b, self.arm64)])
    }
}

#[test]
fn fat_macho_reads_like_go() {
    let p = FatParts::new();
    let s = Scratch::new();
    s.file("fat", &p.build(&[p.a(), p.b()]));
    s.file("fat-arm64-first", &p.build(&[p.b(), p.a()]));
    s.file("thin-amd64", p.amd64);
    for name in ["fat", "fat-arm64-first"] {
        let out = same_as_go(s.path(), &[name]);
        assert_eq!(out.status, Some(0), "{out:?}");
        let (got, want) = go_version_m_json(s.path(), name);
        assert_eq!(got, want, "{name}: --json differs from go version -m -json");
    }
    // The fat binary reads as its first architecture.
    let fat = reprove(s.path(), &["fat"]).stdout.replacen("fat: ", "", 1);
    let thin = reprove(s.path(), &["thin-amd64"]).stdout.replacen("thin-amd64: ", "", 1);
    assert_eq!(fat, thin);
}

#[test]
fn fat_macho_with_lying_entries() {
    let p = FatParts::new();
    let (a, b) = (p.a(), p.b());
    let whole = p.build(&[a, b]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("offset-past-eof", p.build(&[(a.0, a.1, 1 << 31, a.3, a.4), b])),
        ("second-offset-past-eof", p.build(&[a, (b.0, b.1, 0xffff_f000, b.3, b.4)])),
        ("size-past-eof", p.build(&[(a.0, a.1, a.2, u32::MAX, a.4), b])),
        ("overlapping-same-image", p.build(&[a, (b.0, b.1, a.2, a.3, b.4)])),
        ("overlapping-inside-image", p.build(&[a, (b.0, b.1, a.2 + 4096, b.3, b.4)])),
        ("duplicate-arch", p.build(&[a, (a.0, a.1, b.2, b.3, b.4)])),
        ("duplicate-entry", p.build(&[a, a])),
        ("no-arch", fat(&[], 0, &[(p.off_a, p.amd64)])),
        ("narch-huge", fat(&[a, b], u32::MAX, &[(p.off_a, p.amd64), (p.off_b, p.arm64)])),
        ("narch-past-entries", fat(&[a, b], 3, &[(p.off_a, p.amd64), (p.off_b, p.arm64)])),
        ("header-only", fat(&[], 2, &[]).into_iter().chain([0; 8]).collect()),
        ("fat64-magic", patched(&whole, 3, &[0xbf])),
        ("truncated-in-second-image", whole[..p.off_b + 1000].to_vec()),
    ];
    let s = Scratch::new();
    let mut names = Vec::new();
    for (name, data) in &cases {
        s.file(name, data);
        names.push(name.to_string());
    }
    all_same_as_go(&s, &names);
}

/// Go reads each architecture through a window of exactly `size` bytes
/// (`io.NewSectionReader(r, offset, size)` in `debug/macho.NewFatFile`): an
/// image cut short by its entry is not readable, even when the bytes are in the file.
#[test]
fn fat_macho_arch_size_is_a_window() {
    let p = FatParts::new();
    let (a, b) = (p.a(), p.b());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("size-0", p.build(&[(a.0, a.1, a.2, 0, a.4), b])),
        ("size-one-page", p.build(&[(a.0, a.1, a.2, 4096, a.4), b])),
        ("size-half-image", p.build(&[(a.0, a.1, a.2, a.3 / 2, a.4), b])),
        ("second-size-0", p.build(&[a, (b.0, b.1, b.2, 0, b.4)])),
    ];
    let s = Scratch::new();
    let mut names = Vec::new();
    for (name, data) in &cases {
        s.file(name, data);
        names.push(name.to_string());
    }
    all_same_as_go(&s, &names);
}

// ---------------------------------------------------------------- found by ci/fuzz

/// The build info blob of the linux binary: header, then the two length-prefixed strings.
fn raw_blob() -> Vec<u8> {
    let exe = &binaries().linux;
    let m = find_magic(exe);
    let uvarint = |at: usize| -> (usize, usize) {
        let (mut x, mut shift) = (0usize, 0);
        for (i, &b) in exe[at..at + 10].iter().enumerate() {
            x |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                return (x, i + 1);
            }
            shift += 7;
        }
        panic!("bad uvarint in build info")
    };
    let (vlen, n) = uvarint(m + 32);
    let at = m + 32 + n + vlen;
    let (mlen, n) = uvarint(at);
    exe[m..at + n + mlen].to_vec()
}

fn put(buf: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if buf.len() < at + bytes.len() {
        buf.resize(at + bytes.len(), 0);
    }
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A Plan 9 386 a.out: 32-byte header, 16 bytes of text, the blob as data, and a
/// symbol table size that may point past the end of the file.
fn plan9(blob: &[u8], syms: u32) -> Vec<u8> {
    let mut f = Vec::new();
    let data = blob.len().next_multiple_of(16) as u32;
    for (i, v) in [0x1eb, 16, data, 0, syms, 0, 0, 0].into_iter().enumerate() {
        put(&mut f, 4 * i, &u32::to_be_bytes(v));
    }
    put(&mut f, 48, blob);
    f.resize(48 + data as usize, 0);
    f
}

/// A PE32+ file with one .data section holding the blob; the optional header
/// size, its data-directory count and the section's raw-data pointer are parameters.
fn pe(blob: &[u8], opt_size: u16, data_dirs: u32, raw_ptr: u32) -> Vec<u8> {
    let mut f = Vec::new();
    put(&mut f, 0, b"MZ");
    put(&mut f, 0x3c, &0x80u32.to_le_bytes());
    put(&mut f, 0x80, b"PE\0\0");
    put(&mut f, 0x84, &0x8664u16.to_le_bytes()); // AMD64
    put(&mut f, 0x86, &1u16.to_le_bytes()); // one section
    put(&mut f, 0x94, &opt_size.to_le_bytes());
    put(&mut f, 0x96, &0x22u16.to_le_bytes());
    let opt = 0x98;
    put(&mut f, opt, &0x20bu16.to_le_bytes());
    put(&mut f, opt + 24, &0x40_0000u64.to_le_bytes()); // image base
    put(&mut f, opt + 32, &0x1000u32.to_le_bytes());
    put(&mut f, opt + 36, &0x200u32.to_le_bytes());
    put(&mut f, opt + 108, &data_dirs.to_le_bytes());
    let sh = opt + opt_size as usize;
    let raw_size = blob.len().next_multiple_of(0x200) as u32;
    put(&mut f, sh, b".data\0\0\0");
    put(&mut f, sh + 8, &(blob.len() as u32).to_le_bytes());
    put(&mut f, sh + 12, &0x1000u32.to_le_bytes());
    put(&mut f, sh + 16, &raw_size.to_le_bytes());
    put(&mut f, sh + 20, &raw_ptr.to_le_bytes());
    put(&mut f, sh + 36, &0xc000_0040u32.to_le_bytes()); // initialized data, read, write
    put(&mut f, 0x400, blob);
    f.resize(0x400 + raw_size as usize, 0);
    f
}

/// An XCOFF64 section header: name, virtual address, size, file offset (0: no
/// file data), flags.
type XcoffSection = (&'static str, u64, u64, u64, u32);

/// An XCOFF64 file with the given sections and file contents, then one C_FILE
/// symbol and a string table after the last byte of `contents`.
fn xcoff_file(sections: &[XcoffSection], contents: &[(usize, &[u8])]) -> Vec<u8> {
    let mut f = Vec::new();
    for (i, &(name, vaddr, size, scnptr, flags)) in sections.iter().enumerate() {
        let sh = 24 + 72 * i;
        put(&mut f, sh, name.as_bytes());
        put(&mut f, sh + 8, &vaddr.to_be_bytes());
        put(&mut f, sh + 16, &vaddr.to_be_bytes());
        put(&mut f, sh + 24, &size.to_be_bytes());
        put(&mut f, sh + 32, &scnptr.to_be_bytes());
        put(&mut f, sh + 64, &flags.to_be_bytes());
    }
    for &(off, bytes) in contents {
        put(&mut f, off, bytes);
    }
    let sym = f.len().next_multiple_of(16);
    put(&mut f, 0, &0x01f7u16.to_be_bytes());
    put(&mut f, 2, &(sections.len() as u16).to_be_bytes());
    put(&mut f, 8, &(sym as u64).to_be_bytes());
    put(&mut f, 20, &1u32.to_be_bytes());
    put(&mut f, sym + 8, &4u32.to_be_bytes()); // name at string table offset 4
    put(&mut f, sym + 12, &0xfffeu16.to_be_bytes()); // N_DEBUG
    put(&mut f, sym + 16, &[0x67, 0]); // C_FILE, no auxiliary entries
    put(&mut f, sym + 18, &12u32.to_be_bytes());
    put(&mut f, sym + 22, b"main.go\0");
    f
}

/// An XCOFF64 file with one .data section holding the blob (at file offset
/// `scnptr`, or nowhere when 0).
fn xcoff(blob: &[u8], scnptr: u64) -> Vec<u8> {
    let size = blob.len().next_multiple_of(16) as u64;
    let mut data = blob.to_vec();
    data.resize(size as usize, 0);
    xcoff_file(&[(".data", 0x2000_0000, size, scnptr, 0x40)], &[(0x100, &data)])
}

/// Minimal executables in the formats Go reads, valid as Go reads them; each
/// variant below changes one thing the fuzzer found reprove and Go disagree on.
#[test]
fn minimal_executables_read_like_go() {
    let blob = raw_blob();
    let s = Scratch::new();
    s.file("plan9", &plan9(&blob, 0));
    s.file("pe", &pe(&blob, 112 + 16 * 8, 16, 0x400));
    s.file("xcoff", &xcoff(&blob, 0x100));
    for name in ["plan9", "pe", "xcoff"] {
        let out = same_as_go(s.path(), &[name]);
        assert_eq!(out.status, Some(0), "{name}: {out:?}");
    }
}

/// Go's `debug/plan9obj.NewFile` never reads the symbol table, so a symbol
/// table size past the end of the file does not matter (Go prints the build
/// info); and it lays the sections out with `uint32` offsets that wrap: with a
/// data size of 2^32-1, the symbol table starts one byte before the data and
/// maps it (found by ci/fuzz).
#[test]
fn plan9_sections_like_go() {
    let blob = raw_blob();
    let mut wrapping = plan9(&blob, blob.len() as u32 + 1);
    put(&mut wrapping, 8, &u32::MAX.to_be_bytes()); // data size
    let s = Scratch::new();
    s.file("plan9-syms-past-eof", &plan9(&blob, 0x3030_3030));
    s.file("plan9-syms-past-eof-no-build-info", &plan9(&[0; 64], 0x3030_3030));
    s.file("plan9-offsets-wrap", &wrapping);
    all_same_as_go(
        &s,
        &["plan9-syms-past-eof", "plan9-syms-past-eof-no-build-info", "plan9-offsets-wrap"].map(String::from),
    );
}

/// `saferio.ReadDataAt(r, 0, off)` succeeds at any offset, even past the end of
/// the file: a zero-length table is never out of bounds to Go (found by ci/fuzz).
#[test]
fn zero_length_reads_past_eof_like_go() {
    let darwin = &binaries().darwin_amd64;
    // A 64-bit Mach-O header cut to 28 bytes, no load commands: the (empty)
    // commands are read at offset 32.
    let mut header_only = darwin[..28].to_vec();
    put(&mut header_only, 16, &[0; 8]);
    // LC_DYSYMTAB with no indirect symbols, at an offset past the end.
    let mut no_indirect = darwin.clone();
    let ncmds = u32::from_le_bytes(darwin[16..20].try_into().unwrap_or_default()) as usize;
    let mut off = 32;
    for _ in 0..ncmds {
        let cmd = u32::from_le_bytes(darwin[off..off + 4].try_into().unwrap_or_default());
        let size = u32::from_le_bytes(darwin[off + 4..off + 8].try_into().unwrap_or_default()) as usize;
        if cmd == 0xb {
            put(&mut no_indirect, off + 56, &0xfff0_0000u32.to_le_bytes()); // indirectsymoff
            put(&mut no_indirect, off + 60, &0u32.to_le_bytes()); // nindirectsyms
        }
        off += size;
    }
    assert_ne!(&no_indirect, darwin, "no LC_DYSYMTAB in the darwin binary");
    let s = Scratch::new();
    s.file("macho-header-only", &header_only);
    s.file("macho-no-indirect-symbols-past-eof", &no_indirect);
    all_same_as_go(&s, &["macho-header-only", "macho-no-indirect-symbols-past-eof"].map(String::from));
}

/// A segment whose file offset or size is negative as an int64 makes Go's
/// `debug/macho` refuse the file ("invalid section file size"), so `go version -m`
/// says `unrecognized file format`, not "not a Go executable" (found by ci/fuzz).
#[test]
fn macho_segment_offsets_are_int64_like_go() {
    let darwin = &binaries().darwin_amd64;
    let ncmds = u32::from_le_bytes(darwin[16..20].try_into().unwrap_or_default()) as usize;
    let mut off = 32;
    let mut segment = None;
    for _ in 0..ncmds {
        let cmd = u32::from_le_bytes(darwin[off..off + 4].try_into().unwrap_or_default());
        let size = u32::from_le_bytes(darwin[off + 4..off + 8].try_into().unwrap_or_default()) as usize;
        if cmd == 0x19 && darwin[off + 8..off + 24].starts_with(b"__DATA\0") {
            segment = Some(off);
        }
        off += size;
    }
    let segment = segment.unwrap_or_else(|| panic!("no __DATA LC_SEGMENT_64 in the darwin binary"));
    let s = Scratch::new();
    let mut names = Vec::new();
    for (name, field) in [("macho-segment-filesz-negative", 48), ("macho-segment-fileoff-negative", 40)] {
        let mut file = darwin.clone();
        let value = u64::from_le_bytes(darwin[segment + field..segment + field + 8].try_into().unwrap_or_default());
        put(&mut file, segment + field, &(value | 1 << 63).to_le_bytes());
        s.file(name, &file);
        names.push(name.to_owned());
    }
    all_same_as_go(&s, &names);
}

/// Go's `debug/pe` requires an optional header of at least its fixed size and
/// exactly NumberOfRvaAndSizes data directories after it; otherwise the file is
/// not a PE file (`unrecognized file format`).
#[test]
fn pe_optional_header_is_checked_like_go() {
    let blob = raw_blob();
    let s = Scratch::new();
    let cases = [
        ("pe-dirs-size-mismatch", pe(&blob, 112 + 16 * 8, 0, 0x400)),
        ("pe-dirs-count-huge", pe(&blob, 112 + 16 * 8, u32::MAX, 0x400)),
        ("pe-no-dirs", pe(&blob, 112, 0, 0x400)),
        ("pe-opt-header-short", pe(&blob, 32, 0, 0x400)),
        ("pe-opt-header-2-bytes", pe(&blob, 2, 0, 0x400)),
    ];
    let mut names = Vec::new();
    for (name, data) in &cases {
        s.file(name, data);
        names.push(name.to_string());
    }
    all_same_as_go(&s, &names);
}

/// Sections without file data (PE PointerToRawData 0, XCOFF s_scnptr 0) are not
/// zeros to Go: any read inside them fails with "unexpected read from section
/// with uninitialized data", and `go version -m` prints that error.
#[test]
fn sections_without_file_data_are_unreadable_like_go() {
    let blob = raw_blob();
    let s = Scratch::new();
    s.file("pe-data-no-raw-pointer", &pe(&blob, 112 + 16 * 8, 16, 0));
    s.file("xcoff-data-no-file-pointer", &xcoff(&blob, 0));
    // Huge sections of "zeros": reprove searched them for the build info header,
    // 1 MiB at a time (4 GiB for PE: 0.25 s in a release build, 50 s in a debug
    // build; 1 TiB for XCOFF: a hang), where Go fails on the first read.
    let mut pe_huge = pe(&blob, 112 + 16 * 8, 16, 0);
    put(&mut pe_huge, 0x98 + 240 + 8, &0xffff_0000u32.to_le_bytes()); // VirtualSize
    put(&mut pe_huge, 0x98 + 240 + 16, &0xffff_0000u32.to_le_bytes()); // SizeOfRawData
    s.file("pe-data-no-raw-pointer-4gib", &pe_huge);
    let mut xcoff_huge = xcoff(&blob, 0);
    put(&mut xcoff_huge, 48, &(1u64 << 40).to_be_bytes()); // s_size
    s.file("xcoff-data-no-file-pointer-1tib", &xcoff_huge);
    let names = [
        "pe-data-no-raw-pointer",
        "xcoff-data-no-file-pointer",
        "pe-data-no-raw-pointer-4gib",
        "xcoff-data-no-file-pointer-1tib",
    ];
    all_same_as_go(&s, &names.map(String::from));
    for name in names {
        let start = std::time::Instant::now();
        reprove(s.path(), &[name]);
        assert!(start.elapsed().as_secs() < 5, "{name}: reprove took {:?}", start.elapsed());
    }
}

/// A pre-Go 1.18 header whose version string header points into a section
/// without file data, with a length of 1 TiB: reprove allocated the whole length
/// before reading ("memory allocation of 1099511627776 bytes failed", abort),
/// where Go's chunked reader fails on the first read ("not a Go executable").
#[test]
fn huge_string_in_section_without_data_is_not_allocated() {
    const DATA: u64 = 0x2000_0000;
    const BSS: u64 = 0x3000_0000;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&[8, 1]); // 8-byte big-endian pointers, pointer format
    for v in [DATA + 32, DATA + 48, BSS, 1 << 40, 0, 0] {
        header.extend_from_slice(&v.to_be_bytes());
    }
    let file = xcoff_file(
        &[(".data", DATA, 0x80, 0x100, 0x40), (".bss", BSS, 1 << 41, 0, 0x80)],
        &[(0x100, &header), (0x17f, &[0])],
    );
    let s = Scratch::new();
    s.file("xcoff-string-in-bss", &file);
    assert_refused(&same_as_go(s.path(), &["xcoff-string-in-bss"]), "xcoff-string-in-bss", "not a Go executable");
}

/// Inputs that made reprove panic (overflow checks of debug builds: `cargo test`
/// and the fuzz targets): Go computes these offsets in wrapping `uint64` arithmetic.
fn overflowing_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let blob = raw_blob();
    // Found by ci/fuzz: XCOFF64 s_symptr 0xffff_ffff_ffff_fffa; the string table
    // offset symptr + 18 * nsyms overflows (goinfo/exe.rs, fn xcoff).
    let mut xcoff_symptr = xcoff(&blob, 0x100);
    put(&mut xcoff_symptr, 8, &0xffff_ffff_ffff_fffau64.to_be_bytes());
    // The same class, PE: ImageBase + VirtualAddress of .data overflows (fn pe).
    let mut pe_image_base = pe(&blob, 112 + 16 * 8, 16, 0x400);
    put(&mut pe_image_base, 0x98 + 24, &0xffff_ffff_ffff_f000u64.to_le_bytes());
    // Found by ci/fuzz: an XCOFF64 s_symptr past 2^63 (0xffff_f900_0000_0430): Go's
    // int64 offset is negative and its reader says EOF; pread said EINVAL, an I/O error.
    let mut xcoff_symptr_negative = xcoff(&blob, 0x100);
    put(&mut xcoff_symptr_negative, 8, &0xffff_f900_0000_0430u64.to_be_bytes());
    vec![
        ("xcoff-symptr-wraps", xcoff_symptr),
        ("pe-image-base-wraps", pe_image_base),
        ("xcoff-symptr-past-i64", xcoff_symptr_negative),
    ]
}

#[test]
fn overflowing_offsets_wrap_like_go() {
    let cases = overflowing_inputs();
    let s = Scratch::new();
    let mut names = Vec::new();
    for (name, data) in &cases {
        s.file(name, data);
        names.push(name.to_string());
    }
    all_same_as_go(&s, &names);
    assert_refused(&reprove(s.path(), &["xcoff-symptr-wraps"]), "xcoff-symptr-wraps", "unrecognized file format");
}

/// A PT_NOTE segment with p_align 2^64-1 and a second note: the alignment step
/// (goinfo/buildid.rs, fn elf_notes) overflowed. `--build-id` must print what
/// `go tool buildid` prints, without panicking.
#[test]
fn note_alignment_wraps_like_go() {
    let mut exe = binaries().linux.clone();
    let phoff = le64(&exe, 32) as usize;
    let (phentsize, phnum) = (le16(&exe, 54), le16(&exe, 56));
    let note = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| exe[ph..ph + 4] == [4, 0, 0, 0])
        .unwrap_or_else(|| panic!("no PT_NOTE"));
    let filesz = le64(&exe, note + 32);
    // Cover the following note (.note.gnu.build-id) too, so that the loop aligns.
    exe[note + 32..note + 40].copy_from_slice(&(filesz + 36).to_le_bytes());
    exe[note + 48..note + 56].copy_from_slice(&u64::MAX.to_le_bytes());
    let s = Scratch::new();
    s.file("note-align-max", &exe);
    let want = output(go().current_dir(s.path()).args(["tool", "buildid", "note-align-max"]));
    let got = reprove(s.path(), &["--build-id", "note-align-max"]);
    assert!(!got.stderr.contains("panicked"), "{}", got.stderr);
    assert_eq!(got.status, Some(0), "{got:?}");
    let id = String::from_utf8_lossy(&want.stdout).trim().to_string();
    assert!(got.stdout.contains(&format!("\tGoBuildID\t{id}\n")), "want {id}, got {}", got.stdout);
}

/// Devices and FIFOs are refused at once by `buildinfo` and `diff`: go reads
/// /dev/zero only to find no header in it (and blocks on a FIFO); `diff` used to
/// read /dev/zero without end.
#[test]
fn devices_and_fifos_are_refused_at_once() {
    let scratch = Scratch::new();
    let fifo = scratch.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let started = std::time::Instant::now();
    same_as_go(scratch.path(), &["/dev/zero"]);
    let got = reprove(scratch.path(), &["fifo"]);
    assert_eq!(got, Outcome { status: Some(1), stdout: String::new(), stderr: String::new() }, "a FIFO is skipped");
    for (a, b, kind) in [("/dev/zero", "/dev/zero", "character device"), ("fifo", "/dev/null", "FIFO")] {
        let out = output(
            Command::new("sh")
                .arg("-c")
                .arg(format!("ulimit -v {MEMORY_LIMIT_KIB} && exec timeout 10 \"$0\" diff \"$@\""))
                .arg(env!("CARGO_BIN_EXE_reprove"))
                .args([a, b])
                .current_dir(scratch.path()),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "diff {a} {b}: {stderr}");
        assert!(stderr.contains(&format!("{a}: is a {kind}, not a regular file")), "diff {a} {b}: {stderr}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}
