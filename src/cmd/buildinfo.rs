//! `reprove buildinfo`: `go version -m`, re-implemented and byte-identical.
//!
//! Per-file outcomes, messages and the exit status follow `cmd/go/internal/version`:
//! a directory is walked and its non-Go files are skipped silently; a named file
//! that is not a Go binary is an error (exit 1), reported only when it looks like
//! a binary (executable bit, `.exe`, `.so`, `.dll`).
//!
//! With `--check`, each file is checked against its own content ID instead
//! (`buildinfo_check.rs`).

use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use goinfo::{self, ExtraFields, FileSource, ReadError};

use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print `go version -m -json` output instead of text (with --check, one JSON
    /// document: schemas/buildinfo-check.schema.json).
    #[arg(long)]
    json: bool,
    /// Also print the Go build ID (as `go tool buildid`) and the GNU build ID.
    #[arg(long)]
    build_id: bool,
    /// Check each file against its own content ID, as `go tool buildid -w` recomputes
    /// it: intact, modified-after-link, no-build-id or packed. Exit 0 when every file
    /// is intact, 1 when one is not, 2 when one cannot be checked.
    #[arg(long, conflicts_with = "build_id")]
    check: bool,
    /// Go binaries, or directories to scan for them (with --check, files only).
    // Raw OS strings: an empty name is Go's "stat : no such file", not a usage error.
    #[arg(required = true, value_parser = clap::builder::OsStringValueParser::new())]
    files: Vec<std::ffi::OsString>,
}

struct Printer<'a> {
    args: &'a Args,
    out: io::StdoutLock<'static>,
}

pub(crate) fn run(args: Args) -> CommandResult {
    if args.check {
        return super::buildinfo_check::run(&args.files, args.json);
    }
    let mut p = Printer { args: &args, out: io::stdout().lock() };
    let mut all_ok = true;
    for file in args.files.iter().map(Path::new) {
        let meta = match fs::metadata(file) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("stat {}: {}", file.display(), go_errno_text(&e));
                all_ok = false;
                continue;
            }
        };
        let ok = if meta.is_dir() {
            p.scan_dir(file).map_err(Failure::infrastructure)?;
            true
        } else {
            p.scan_file(file, &meta, true).map_err(Failure::infrastructure)?
        };
        all_ok &= ok;
    }
    p.out.flush().map_err(Failure::infrastructure)?;
    Ok(if all_ok { Verdict::Positive } else { Verdict::Negative })
}

impl Printer<'_> {
    /// Go's `scanDir`: a lexical walk that does not follow directory symlinks.
    fn scan_dir(&mut self, dir: &Path) -> io::Result<()> {
        let meta = match fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(_) => return Ok(()),
        };
        self.walk(dir, &meta)
    }

    fn walk(&mut self, path: &Path, meta: &Metadata) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_file() || ft.is_symlink() {
            self.scan_file(path, meta, false)?;
            return Ok(());
        }
        if !ft.is_dir() {
            return Ok(());
        }
        let Ok(entries) = fs::read_dir(path) else {
            return Ok(());
        };
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = go_join(path, Path::new(&name));
            if let Ok(m) = fs::symlink_metadata(&child) {
                self.walk(&child, &m)?;
            }
        }
        Ok(())
    }

    /// Go's `scanFile`; returns whether the file is a Go binary.
    fn scan_file(&mut self, file: &Path, meta: &Metadata, must_print: bool) -> io::Result<bool> {
        let name = file.as_os_str().as_bytes();
        let mut meta = meta.clone();
        if meta.file_type().is_symlink() {
            match fs::metadata(file) {
                Ok(m) if m.is_file() => meta = m,
                _ => {
                    if must_print {
                        eprintln!("{}: symlink", file.display());
                    }
                    return Ok(false);
                }
            }
        }
        // Only a regular file is read: go reads a device such as /dev/zero only
        // to find no executable header in it, and blocks forever on a FIFO; a
        // non-regular file is never opened here.
        if !meta.is_file() {
            if must_print && is_go_binary_candidate(name, &meta) {
                eprintln!("{0}: could not read Go build info from {0}: not a regular file", file.display());
            }
            return Ok(false);
        }
        let opened =
            confined::open_regular_file(file).map_err(|e| io::Error::other(e.to_string())).and_then(FileSource::new);
        let src = match opened {
            Ok(src) => src,
            Err(_) => {
                // Go prints only the name when opening fails.
                if must_print {
                    eprintln!("{}", file.display());
                }
                return Ok(false);
            }
        };
        let bi = match goinfo::read_build_info_from(&src) {
            Ok((_, bi)) => bi,
            Err(e) => {
                if must_print && is_go_binary_candidate(name, &meta) {
                    let msg = match &e {
                        ReadError::Io(io) => go_errno_text(io),
                        other => other.to_string(),
                    };
                    eprintln!("{0}: could not read Go build info from {0}: {1}", file.display(), msg);
                }
                return Ok(false);
            }
        };
        if self.args.json {
            let extra = if self.args.build_id { build_id_fields(&src) } else { ExtraFields::default() };
            self.out.write_all(&goinfo::format_json(&bi, &extra))?;
        } else {
            let mut text = goinfo::format_text(name, &bi);
            if self.args.build_id {
                for (key, value) in build_id_fields(&src).strings {
                    text.extend_from_slice(format!("\t{key}\t{value}\n").as_bytes());
                }
            }
            self.out.write_all(&text)?;
        }
        Ok(true)
    }
}

fn build_id_fields(src: &FileSource) -> ExtraFields {
    let mut extra = ExtraFields::default();
    if let Ok(Some(id)) = goinfo::go_build_id_of(src) {
        extra.strings.push(("GoBuildID", String::from_utf8_lossy(&id).into_owned()));
    }
    if let Some(gnu) = goinfo::gnu_build_id_of(src) {
        extra.strings.push(("GNUBuildID", hex_lower(&gnu)));
    }
    extra
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Go's `isGoBinaryCandidate`.
fn is_go_binary_candidate(name: &[u8], meta: &Metadata) -> bool {
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    let base_start = lower.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let base = &lower[base_start..];
    let ext = base.iter().rposition(|&b| b == b'.').map(|i| &base[i..]).unwrap_or_default();
    matches!(ext, b".so" | b".exe" | b".dll") || lower.windows(4).any(|w| w == b".so.")
}

/// Go's `filepath.Join(dir, name)`, which also cleans the result.
fn go_join(dir: &Path, name: &Path) -> PathBuf {
    let joined = [dir.as_os_str().as_bytes(), b"/", name.as_os_str().as_bytes()].concat();
    PathBuf::from(std::ffi::OsStr::from_bytes(&go_clean(&joined)))
}

/// Go's `path.Clean`.
fn go_clean(p: &[u8]) -> Vec<u8> {
    let rooted = p.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in p.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = if rooted { b"/".to_vec() } else { Vec::new() };
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// An I/O error worded as Go's `syscall.Errno` prints it.
fn go_errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::go_clean;

    #[test]
    fn clean_matches_go() {
        for (a, b) in
            [("./d/x", "d/x"), ("d//x", "d/x"), ("/a/../b", "/b"), ("../x", "../x"), ("a/..", "."), ("d/", "d")]
        {
            assert_eq!(go_clean(a.as_bytes()), b.as_bytes(), "{a}");
        }
    }
}
