//! Extracting a module zip into the module cache, as `golang.org/x/mod/zip.Unzip`.
//!
//! What goes in: a zip whose hash was already checked, the module version and
//! the target directory `<GOMODCACHE>/<escaped path>@<version>`. What comes
//! out: the files under it, created read-only (0444) as Go creates them, or
//! an [`UnzipError`] with x/mod's words. Every check of x/mod's `checkZip`
//! runs first: canonical version and valid module path, a zip of at most
//! 500 MiB, every entry under `module@version/`, clean and valid file paths,
//! no case-insensitive collisions, `go.mod` only at the root and in lower case,
//! size limits (500 MiB in all, 16 MiB for go.mod and LICENSE). Contents are
//! streamed through the Go-compatible reader, which enforces declared sizes and CRCs.
//!
//! What it is not: the cache protocol around extraction (the lock, the
//! `.partial` marker, removing write permission from directories): the
//! downloader does that, as Go's `modfetch.unzip` does.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::dirhash::{clean_path, MAX_ZIP_UNCOMPRESSED};
use super::module::{canonical_version, check, check_file_path, go_quote, ModuleVersion};
use super::zip::{ZipError, ZipReader};

/// The largest go.mod or LICENSE in a module zip (`x/mod/zip.MaxGoMod`, `MaxLICENSE`).
const MAX_GO_MOD: u64 = 16 << 20;

/// Why a zip could not be extracted: `unzip <zip>: <reason>`, as x/mod reports it.
#[derive(Debug, thiserror::Error)]
#[error("unzip {}: {reason}", zip.display())]
pub struct UnzipError {
    /// The zip file.
    pub zip: PathBuf,
    /// x/mod's reason (several lines for several invalid files).
    pub reason: String,
}

/// Go's `strToFold`, approximated with Rust's case mappings: each character
/// is replaced by the smallest of itself and its single-character lower and
/// upper case forms.
fn str_to_fold(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut best = c;
            for cand in [c.to_lowercase().collect::<Vec<_>>(), c.to_uppercase().collect::<Vec<_>>()] {
                if let [one] = cand[..] {
                    best = best.min(one);
                }
            }
            if best.is_ascii_uppercase() {
                best.to_ascii_lowercase()
            } else {
                best
            }
        })
        .collect()
}

struct Collisions(HashMap<String, (String, bool)>);

impl Collisions {
    fn check(&mut self, p: &str, is_dir: bool) -> Result<(), String> {
        let fold = str_to_fold(p);
        if let Some((other, other_dir)) = self.0.get(&fold) {
            if p != other {
                return Err(format!("case-insensitive file name collision: {} and {}", go_quote(other), go_quote(p)));
            }
            if is_dir != *other_dir {
                return Err(format!("entry {} is both a file and a directory", go_quote(p)));
            }
            if !is_dir {
                return Err(format!("multiple entries for file {}", go_quote(p)));
            }
        } else {
            self.0.insert(fold, (p.to_string(), is_dir));
        }
        match p.rfind('/') {
            Some(i) => self.check(&p[..i], true),
            None => Ok(()),
        }
    }
}

/// x/mod's `checkZip`: the entries to extract (index, relative name), or every problem found.
fn check_zip(m: &ModuleVersion, zip: &ZipReader, zip_size: u64) -> Result<Vec<(usize, String)>, String> {
    let canon = canonical_version(&m.version);
    if canon != m.version {
        return Err(format!("version {} is not canonical (should be {})", go_quote(&m.version), go_quote(&canon)));
    }
    check(&m.path, &m.version).map_err(|e| e.to_string())?;
    if zip_size > MAX_ZIP_UNCOMPRESSED {
        return Err(format!("module zip file is too large ({zip_size} bytes; limit is {MAX_ZIP_UNCOMPRESSED} bytes)"));
    }
    let prefix = format!("{}@{}/", m.path, m.version);
    let mut invalid: Vec<String> = Vec::new();
    let mut size_error: Option<String> = None;
    let mut collisions = Collisions(HashMap::new());
    let mut valid = Vec::new();
    let mut size: u64 = 0;
    for (i, e) in zip.entries.iter().enumerate() {
        let full = String::from_utf8_lossy(&e.name).into_owned();
        let Some(name) = full.strip_prefix(&prefix) else {
            invalid.push(format!("{full}: path does not have prefix {}", go_quote(&prefix)));
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let is_dir = name.ends_with('/');
        let name = name.strip_suffix('/').unwrap_or(name);
        if clean_path(name) != name {
            invalid.push(format!("{full}: file path is not clean"));
            continue;
        }
        if let Err(err) = check_file_path(name) {
            invalid.push(format!("{full}: {err}"));
            continue;
        }
        if let Err(err) = collisions.check(name, is_dir) {
            invalid.push(format!("{full}: {err}"));
            continue;
        }
        if is_dir {
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.eq_ignore_ascii_case("go.mod") {
            if base != name {
                invalid.push(format!("{full}: go.mod file not in module root directory"));
                continue;
            }
            if name != "go.mod" {
                invalid.push(format!("{full}: go.mod files must have lowercase names"));
                continue;
            }
        }
        let sz = e.uncompressed();
        if MAX_ZIP_UNCOMPRESSED - size >= sz {
            size += sz;
        } else if size_error.is_none() {
            size_error = Some(format!(
                "total uncompressed size of module contents too large (max size is {MAX_ZIP_UNCOMPRESSED} bytes)"
            ));
        }
        if name == "go.mod" && sz > MAX_GO_MOD {
            invalid.push(format!("{full}: go.mod file too large (max size is {MAX_GO_MOD} bytes)"));
            continue;
        }
        if name == "LICENSE" && sz > MAX_GO_MOD {
            invalid.push(format!("{full}: LICENSE file too large (max size is {MAX_GO_MOD} bytes)"));
            continue;
        }
        valid.push((i, name.to_string()));
    }
    if let Some(e) = size_error {
        return Err(e);
    }
    if !invalid.is_empty() {
        return Err(invalid.join("\n"));
    }
    Ok(valid)
}

/// Extracts `zip_path` for module `m` into `dir`, which must be missing or empty.
pub fn unzip(dir: &Path, m: &ModuleVersion, zip_path: &Path) -> Result<(), UnzipError> {
    let fail = |reason: String| UnzipError { zip: zip_path.to_path_buf(), reason };
    let io_fail = |e: io::Error| UnzipError { zip: zip_path.to_path_buf(), reason: e.to_string() };
    if fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_some()) {
        return Err(fail(format!("target directory {} exists and is not empty", dir.display())));
    }
    let file = File::open(zip_path).map_err(io_fail)?;
    let zip_size = file.metadata().map_err(io_fail)?.len();
    let zip = ZipReader::open(file, &zip_path.display().to_string()).map_err(|e| fail(e.to_string()))?;
    let entries = check_zip(m, &zip, zip_size).map_err(fail)?;
    fs::create_dir_all(dir).map_err(io_fail)?;
    let mut made: HashSet<PathBuf> = HashSet::new();
    let mut budget = MAX_ZIP_UNCOMPRESSED;
    for (i, name) in entries {
        let e = &zip.entries[i];
        let dst = dir.join(&name);
        if let Some(parent) = dst.parent() {
            if !made.contains(parent) {
                fs::create_dir_all(parent).map_err(io_fail)?;
                made.insert(parent.to_path_buf());
            }
        }
        let f = OpenOptions::new().write(true).create_new(true).mode(0o444).open(&dst).map_err(io_fail)?;
        let mut w = BufWriter::with_capacity(64 * 1024, f);
        let mut werr: Option<io::Error> = None;
        zip.read_entry(e, &mut budget, MAX_ZIP_UNCOMPRESSED, &mut |chunk| {
            if werr.is_none() {
                if let Err(err) = w.write_all(chunk) {
                    werr = Some(err);
                }
            }
        })
        .map_err(|err| match err {
            ZipError::Format => fail(format!(
                "uncompressed size of file {} is larger than declared size ({} bytes)",
                String::from_utf8_lossy(&e.name),
                e.uncompressed()
            )),
            other => fail(other.to_string()),
        })?;
        if let Some(err) = werr {
            return Err(io_fail(err));
        }
        w.flush().map_err(io_fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold() {
        assert_eq!(str_to_fold("Go.MOD"), "go.mod");
        assert_eq!(str_to_fold("a/B/ẞ"), str_to_fold("A/b/ß"));
    }
}
