//! Helpers shared by reprove's end-to-end tests: the test cache, the Go
//! toolchains `ci/setup` installs, running commands, and comparing outputs.
//!
//! Nothing here skips: a missing toolchain or tool is an error whose message
//! says to run `ci/setup`.
#![allow(dead_code)]

pub(crate) mod fixtures;
pub(crate) mod goenv;
pub(crate) mod harness;
pub(crate) mod kube;
pub(crate) mod registry;
pub(crate) mod sandbox;
pub(crate) mod schema;
pub(crate) mod server;
pub(crate) mod signing;
pub(crate) mod ssh;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to tell a developer when something `ci/setup` provides is missing.
pub(crate) const RUN_SETUP: &str = "run ci/setup (it installs the Go toolchains and binaries the tests need)";

/// The test cache: `$REPROVE_TEST_CACHE`, else `$XDG_CACHE_HOME/reprove-tests`,
/// else `$HOME/.cache/reprove-tests` (the same rule as `ci/setup`).
pub(crate) fn cache_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = non_empty("REPROVE_TEST_CACHE").unwrap_or_else(|| {
        non_empty("XDG_CACHE_HOME")
            .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("reprove-tests")
    });
    if dir.is_absolute() {
        dir
    } else {
        std::env::current_dir().map(|cwd| cwd.join(&dir)).unwrap_or(dir)
    }
}

/// A tool a setup script installs into the test cache, such as
/// `cosign/bin/cosign` (`ci/setup-cosign`) or `pyattest/bin/python`
/// (`ci/setup-python`); the error names the script to run.
pub(crate) fn cached_tool(relative: &str, setup: &str) -> Result<PathBuf, String> {
    let bin = cache_dir().join(relative);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} is missing: run {setup}", bin.display()))
    }
}

/// Runs reprove or cosign the way the signing interop tests need: in `dir`,
/// with `password` as `COSIGN_PASSWORD`, and offline and hermetic (`HOME` is
/// `dir`, no TUF cache, no experimental network features).
pub(crate) fn run_signing_tool(
    program: &Path,
    dir: &Path,
    password: &str,
    args: &[&str],
) -> Result<std::process::Output, std::io::Error> {
    Command::new(program)
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("COSIGN_PASSWORD", password)
        .env("HOME", dir)
        .env("SIGSTORE_NO_CACHE", "true")
        .env_remove("COSIGN_EXPERIMENTAL")
        .output()
}

/// Kills the process `pid` and removes `paths` when this test process exits, however
/// it exits: for what a process-wide fixture (a `static`, never dropped) starts. A `sh`
/// waits for the end of a pipe that only this process holds open (the kernel closes it
/// at exit), then cleans up.
pub(crate) fn reap_at_exit(pid: u32, paths: &[&Path]) {
    let script = r#"read -r _ || :
kill "$0" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$0" 2>/dev/null || break; sleep 0.2; done
for p in "$@"; do chmod -R u+w -- "$p" 2>/dev/null; rm -rf -- "$p"; done"#;
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(pid.to_string())
        .args(paths)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    // The pipe to its stdin stays open until this process exits.
    std::mem::forget(child);
}

/// The repository root (the `reprove` package's manifest directory).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `reprove` binary under test.
pub(crate) fn reprove_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reprove"))
}

/// What a finished process left: exit status, stdout, stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The exit code; `None` when a signal ended the process.
    pub(crate) status: Option<i32>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl Outcome {
    pub(crate) fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub(crate) fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub(crate) fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` to the end and captures its outputs.
pub(crate) fn run(cmd: &mut Command) -> Result<Outcome, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    Ok(Outcome { status: out.status.code(), stdout: out.stdout, stderr: out.stderr })
}

/// Runs `cmd` and requires exit status 0.
pub(crate) fn run_ok(cmd: &mut Command) -> Result<Outcome, String> {
    let out = run(cmd)?;
    if out.success() {
        Ok(out)
    } else {
        Err(format!(
            "{} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            describe(cmd),
            out.status,
            out.stdout_str(),
            out.stderr_str()
        ))
    }
}

/// A shell-like rendering of a command, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        let _ = write!(s, "(cd {} && ", dir.display());
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            let _ = write!(s, "{}={} ", k.to_string_lossy(), quote_arg(v));
        }
    }
    s.push_str(&quote_arg(cmd.get_program()));
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote_arg(a));
    }
    if cmd.get_current_dir().is_some() {
        s.push(')');
    }
    s
}

fn quote_arg(a: &OsStr) -> String {
    let s = a.to_string_lossy();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=./,:@+%".contains(&b)) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Environment for every `go` command the tests run: no user `go env -w`
/// settings, no GOFLAGS from the caller's environment, no toolchain switching.
pub(crate) fn hermetic_go_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GOENV", "off").env("GOFLAGS", "").env("GOTOOLCHAIN", "local").env_remove("GOROOT")
}

/// The reference reader: `go version ARGS` with the newest Go (the `go` on PATH).
pub(crate) fn go_version(cwd: &Path, args: &[OsString]) -> Result<Outcome, String> {
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd).current_dir(cwd).arg("version").args(args);
    run(&mut cmd)
}

/// `reprove buildinfo ARGS`, in the same directory and environment as [`go_version`].
pub(crate) fn reprove_buildinfo(cwd: &Path, args: &[OsString]) -> Result<Outcome, String> {
    let mut cmd = Command::new(reprove_bin());
    hermetic_go_env(&mut cmd).current_dir(cwd).arg("buildinfo").args(args);
    run(&mut cmd)
}

/// Compares two outcomes stream by stream. `None` when byte-identical, else a
/// report with a line diff of every stream that differs.
pub(crate) fn compare(expected_name: &str, expected: &Outcome, actual_name: &str, actual: &Outcome) -> Option<String> {
    if expected == actual {
        return None;
    }
    let mut report = String::new();
    if expected.status != actual.status {
        let _ =
            writeln!(report, "exit status: {expected_name} {:?}, {actual_name} {:?}", expected.status, actual.status);
    }
    for (stream, e, a) in [("stdout", &expected.stdout, &actual.stdout), ("stderr", &expected.stderr, &actual.stderr)] {
        if e != a {
            let _ = writeln!(report, "{stream} differs (- {expected_name}, + {actual_name}):");
            report.push_str(&line_diff(e, a));
        }
    }
    Some(report)
}

/// A minimal unified-style line diff (longest common subsequence), with up to
/// two lines of context. Lines are shown with Rust's debug escaping so that
/// tabs, trailing spaces and invalid UTF-8 are visible.
pub(crate) fn line_diff(expected: &[u8], actual: &[u8]) -> String {
    let e: Vec<&[u8]> = split_lines(expected);
    let a: Vec<&[u8]> = split_lines(actual);
    let (n, m) = (e.len(), a.len());
    // lcs[i][j] = LCS length of e[i..] and a[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if e[i] == a[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    enum Op<'a> {
        Same(&'a [u8]),
        Del(&'a [u8]),
        Add(&'a [u8]),
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && e[i] == a[j] {
            ops.push(Op::Same(e[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(Op::Add(a[j]));
            j += 1;
        } else {
            ops.push(Op::Del(e[i]));
            i += 1;
        }
    }
    const CONTEXT: usize = 2;
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(ops.len());
        changed[lo..hi].iter().any(|&c| c)
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, op) in ops.iter().enumerate() {
        if !near_change(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        let (mark, line) = match op {
            Op::Same(l) => (' ', l),
            Op::Del(l) => ('-', l),
            Op::Add(l) => ('+', l),
        };
        let _ = writeln!(out, "{mark} {}", show_line(line));
    }
    if skipped {
        out.push_str("  ...\n");
    }
    out
}

/// Splits after each `\n`, keeping it, so a missing final newline shows.
fn split_lines(b: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            lines.push(&b[start..=i]);
            start = i + 1;
        }
    }
    if start < b.len() {
        lines.push(&b[start..]);
    }
    lines
}

fn show_line(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    let escaped = format!("{:?}", s.as_ref());
    if std::str::from_utf8(line).is_err() {
        format!("{escaped} (invalid UTF-8: {})", hex_bytes(line))
    } else {
        escaped
    }
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Collects failures so that every case runs; [`Failures::assert_none`] panics
/// at the end with all of them.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    what: String,
    cases: usize,
    failed: Vec<String>,
}

impl Failures {
    pub(crate) fn new(what: &str) -> Self {
        Failures { what: what.to_string(), cases: 0, failed: Vec::new() }
    }

    /// Records that one case ran.
    pub(crate) fn case(&mut self) {
        self.cases += 1;
    }

    pub(crate) fn fail(&mut self, case: impl AsRef<str>, report: impl AsRef<str>) {
        self.failed.push(format!("=== {}\n{}", case.as_ref(), report.as_ref().trim_end()));
    }

    pub(crate) fn cases(&self) -> usize {
        self.cases
    }

    pub(crate) fn assert_none(self) {
        eprintln!("{}: {} cases, {} failed", self.what, self.cases, self.failed.len());
        assert!(self.cases > 0, "{}: no case ran", self.what);
        if !self.failed.is_empty() {
            panic!(
                "{}: {} of {} cases failed:\n\n{}\n",
                self.what,
                self.failed.len(),
                self.cases,
                self.failed.join("\n\n")
            );
        }
    }
}

/// `OsString`s from anything path- or string-like.
pub(crate) fn os_args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    items.into_iter().map(|s| s.as_ref().to_os_string()).collect()
}

/// Every path below `root`: `f <mode> <content>`, `l <target>` or `d`, by
/// relative path: two trees are the same when their listings are equal.
pub(crate) fn listing(root: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).map(|r| r.display().to_string()).unwrap_or_default();
            let meta = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{e}"));
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("l {}", std::fs::read_link(&p).unwrap_or_default().display()));
            } else if meta.is_dir() {
                out.insert(rel, "d".into());
                walk(base, &p, out);
            } else {
                let mode = meta.permissions().mode() & 0o777;
                out.insert(rel, format!("f {mode:o} {}", std::fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `git ARGS` in `dir` with no user or system configuration, a fixed identity
/// and fixed dates (so commit ids are the same on every run), and file://
/// submodules allowed; its trimmed stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
        .args(["-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_COMMITTER_DATE", "2024-06-27T20:11:12Z")
        .env("GIT_AUTHOR_DATE", "2024-06-27T20:11:12Z");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}")).stdout_str().trim().to_string()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON document a command printed on stdout.
pub(crate) fn json_stdout(out: &Outcome) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout_str()))
}

/// `reprove ARGS` for the toolchain commands, without the environment that would change
/// what they build or how they authenticate (`SOURCE_DATE_EPOCH`, registry auth files).
pub(crate) fn reprove_toolchain_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(reprove_bin());
    cmd.args(args).env_remove("SOURCE_DATE_EPOCH").env_remove("REGISTRY_AUTH_FILE").env_remove("DOCKER_CONFIG");
    cmd
}
