//! `go mod verify`, re-implemented, plus the go.sum checks Go leaves out.
//!
//! For each module of the build list, exactly as `modcmd.verifyMod`: nothing
//! downloaded (no zip, no extracted directory, no .ziphash) is not an error;
//! a missing .ziphash is (`missing ziphash`); the zip, if present, must hash
//! to the .ziphash (`zip has been modified`); the extracted directory, if
//! complete (no `.partial`, .ziphash present), must too (`dir has been
//! modified`); a hashing error is reported as it is. Go's messages are kept
//! word for word, so the modules named are the same.
//!
//! Beyond Go: the .ziphash (or the zip, when the .ziphash is missing) of each
//! downloaded module is checked against go.sum, and so is every go.mod the
//! graph was loaded from. A mismatch is an error; a downloaded module without
//! a go.sum line is only a warning (a tidy go.sum lists only the modules that
//! provide packages), while a loaded go.mod without one is an error, as it is
//! for `go` in its default `-mod=readonly` mode.
//!
//! Modules are hashed in parallel (rayon); results keep build-list order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::buildlist::BuildList;
use super::cache::ModCache;
use super::dirhash::{errno_text, hash_dir, hash_zip, H1Hash};
use super::gosum::{GoSum, SumCheck};
use super::module::ModuleVersion;

/// What kind of problem a module has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// Go: the zip does not hash to its .ziphash.
    ZipModified,
    /// Go: the extracted directory does not hash to the .ziphash.
    DirModified,
    /// Go: the zip or directory is there but the .ziphash is not.
    MissingZiphash,
    /// Go: the zip or directory could not be hashed.
    HashError,
    /// Beyond Go: the module's hash differs from its go.sum line.
    GoSumMismatch,
    /// Beyond Go: a downloaded module has no go.sum line (a warning).
    GoSumMissing,
    /// A go.mod the graph was loaded from differs from its go.sum `/go.mod` line.
    GoModMismatch,
    /// A go.mod the graph was loaded from has no go.sum `/go.mod` line.
    GoModMissing,
    /// A module's go.mod could not be read, so the graph below it is unknown.
    GraphError,
}

impl ProblemKind {
    /// The stable code used in JSON reports.
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::ZipModified => "zip-modified",
            ProblemKind::DirModified => "dir-modified",
            ProblemKind::MissingZiphash => "missing-ziphash",
            ProblemKind::HashError => "hash-error",
            ProblemKind::GoSumMismatch => "gosum-mismatch",
            ProblemKind::GoSumMissing => "gosum-missing",
            ProblemKind::GoModMismatch => "gomod-mismatch",
            ProblemKind::GoModMissing => "gomod-missing",
            ProblemKind::GraphError => "graph-error",
        }
    }

    /// Whether `go mod verify` reports this kind itself.
    pub fn reported_by_go(self) -> bool {
        matches!(
            self,
            ProblemKind::ZipModified | ProblemKind::DirModified | ProblemKind::MissingZiphash | ProblemKind::HashError
        )
    }

    /// Whether this kind fails verification (all but [`ProblemKind::GoSumMissing`]).
    pub fn is_failure(self) -> bool {
        self != ProblemKind::GoSumMissing
    }
}

/// One problem with one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The module (as in the build list, or the go.mod's module for go.mod kinds).
    pub module: ModuleVersion,
    /// What is wrong.
    pub kind: ProblemKind,
    /// The file or directory concerned, if any.
    pub path: Option<PathBuf>,
    /// The expected hash (.ziphash or go.sum), if any.
    pub expected: Option<String>,
    /// The actual hash, if any.
    pub actual: Option<String>,
    /// One line: Go's own message for Go's kinds.
    pub message: String,
}

/// What was found for one module of the build list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOutcome {
    /// The module.
    pub module: ModuleVersion,
    /// Whether anything of it is in the cache (zip, directory or .ziphash).
    pub downloaded: bool,
    /// The .ziphash content, if any.
    pub ziphash: Option<String>,
    /// The zip's hash, if the zip was hashed.
    pub zip_hash: Option<String>,
    /// The directory's hash, if the directory was hashed.
    pub dir_hash: Option<String>,
}

/// The result of verifying a module cache against a build list.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The main module.
    pub main: ModuleVersion,
    /// The module cache.
    pub modcache: PathBuf,
    /// The go.sum read, if any.
    pub go_sum: Option<PathBuf>,
    /// Every module of the build list but the main one, in order.
    pub modules: Vec<ModuleOutcome>,
    /// Every problem, in build-list order (go.mod and graph problems last).
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether every module verified (warnings allowed).
    pub fn ok(&self) -> bool {
        !self.problems.iter().any(|p| p.kind.is_failure())
    }
}

/// Why verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// go.sum exists but cannot be read.
    #[error("reading {}: {}", path.display(), errno_text(cause))]
    ReadGoSum {
        /// The go.sum path.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// go.sum has malformed lines.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    GoSum(Vec<super::gosum::GoSumError>),
}

fn exists(p: &Path) -> Result<(), io::Error> {
    fs::metadata(p).map(|_| ())
}

fn not_exist(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// `modfetch.DownloadDir`'s verdict: the directory, or whether its absence
/// counts as "not there" (`fs.ErrNotExist`, including partial extractions).
fn download_dir_state(cache: &ModCache, m: &ModuleVersion) -> (Option<PathBuf>, bool) {
    let Ok(dir) = cache.extracted_dir(m) else { return (None, false) };
    match fs::metadata(&dir) {
        Err(e) if not_exist(&e) => return (Some(dir), true),
        Err(_) => return (Some(dir), true),
        Ok(md) if !md.is_dir() => return (Some(dir), true),
        Ok(_) => {}
    }
    let Ok(partial) = cache.cache_path(m, "partial") else { return (Some(dir), false) };
    if exists(&partial).is_ok() {
        return (Some(dir), true);
    }
    if m.path == "golang.org/fips140" {
        return (Some(dir), false);
    }
    let Ok(ziphash) = cache.cache_path(m, "ziphash") else { return (Some(dir), false) };
    match fs::metadata(&ziphash) {
        Err(e) if not_exist(&e) => (Some(dir), true),
        _ => (Some(dir), false),
    }
}

fn problem(m: &ModuleVersion, kind: ProblemKind, path: Option<PathBuf>, message: String) -> Problem {
    Problem { module: m.clone(), kind, path, expected: None, actual: None, message }
}

/// `modcmd.verifyMod` for one module, plus the go.sum check of its zip hash.
fn verify_module(cache: &ModCache, m: &ModuleVersion, sum: Option<&GoSum>) -> (ModuleOutcome, Vec<Problem>) {
    let mut out = ModuleOutcome { module: m.clone(), downloaded: false, ziphash: None, zip_hash: None, dir_hash: None };
    let mut problems = Vec::new();
    let zip = cache.cache_path(m, "zip");
    let zip_missing = match &zip {
        Ok(z) => exists(z).err().is_some_and(|e| not_exist(&e)),
        Err(_) => false,
    };
    let (dir, dir_not_there) = download_dir_state(cache, m);
    let ziphash_path = cache.cache_path(m, "ziphash");
    let data = match &ziphash_path {
        Ok(p) => fs::read(p).map_err(|e| format!("open {}: {}", p.display(), errno_text(&e))),
        Err(e) => Err(e.to_string()),
    };
    let data = match data {
        Ok(d) => d,
        Err(msg) => {
            if zip_missing && dir_not_there {
                return (out, problems);
            }
            out.downloaded = true;
            let message = format!("{} {}: missing ziphash: {msg}", m.path, m.version);
            problems.push(problem(m, ProblemKind::MissingZiphash, ziphash_path.ok(), message));
            check_zip_sum(cache, m, sum, None, &mut out, &mut problems);
            return (out, problems);
        }
    };
    out.downloaded = true;
    let h = String::from_utf8_lossy(&data).trim().to_string();
    out.ziphash = Some(h.clone());
    let prefix = format!("{}@{}", m.path, m.version);
    // Go hashes the zip unless stat said it does not exist.
    if !zip_missing {
        if let Ok(zp) = &zip {
            match hash_zip(zp, None) {
                Err(e) => {
                    let message = format!("{} {}: {e}", m.path, m.version);
                    problems.push(problem(m, ProblemKind::HashError, Some(zp.clone()), message));
                    check_zip_sum(cache, m, sum, Some(&h), &mut out, &mut problems);
                    return (out, problems);
                }
                Ok(hz) => {
                    out.zip_hash = Some(hz.to_string());
                    if hz.as_str() != h {
                        let message = format!("{} {}: zip has been modified ({})", m.path, m.version, zp.display());
                        let mut p = problem(m, ProblemKind::ZipModified, Some(zp.clone()), message);
                        p.expected = Some(h.clone());
                        p.actual = Some(hz.to_string());
                        problems.push(p);
                    }
                }
            }
        }
    }
    if !dir_not_there {
        if let Some(d) = &dir {
            match hash_dir(d, &prefix) {
                Err(e) => {
                    let message = format!("{} {}: {e}", m.path, m.version);
                    problems.push(problem(m, ProblemKind::HashError, Some(d.clone()), message));
                    check_zip_sum(cache, m, sum, Some(&h), &mut out, &mut problems);
                    return (out, problems);
                }
                Ok(hd) => {
                    out.dir_hash = Some(hd.to_string());
                    if hd.as_str() != h {
                        let message = format!("{} {}: dir has been modified ({})", m.path, m.version, d.display());
                        let mut p = problem(m, ProblemKind::DirModified, Some(d.clone()), message);
                        p.expected = Some(h.clone());
                        p.actual = Some(hd.to_string());
                        problems.push(p);
                    }
                }
            }
        }
    }
    check_zip_sum(cache, m, sum, Some(&h), &mut out, &mut problems);
    (out, problems)
}

/// Checks a downloaded module's hash against go.sum: the .ziphash when there
/// is one, else the zip's own hash (computed here if needed).
fn check_zip_sum(
    cache: &ModCache,
    m: &ModuleVersion,
    sum: Option<&GoSum>,
    ziphash: Option<&str>,
    out: &mut ModuleOutcome,
    problems: &mut Vec<Problem>,
) {
    let Some(sum) = sum else { return };
    let (hash, origin) = match ziphash {
        Some(h) => (h.to_string(), "the cache's .ziphash"),
        None => {
            if out.zip_hash.is_none() {
                if let Ok(zp) = cache.cache_path(m, "zip") {
                    if let Ok(h) = hash_zip(&zp, None) {
                        out.zip_hash = Some(h.to_string());
                    }
                }
            }
            match &out.zip_hash {
                Some(h) => (h.clone(), "the cached zip"),
                None => return,
            }
        }
    };
    match sum.check(m, false, &hash) {
        SumCheck::Match => {}
        SumCheck::Mismatch { want, line } => problems.push(Problem {
            module: m.clone(),
            kind: ProblemKind::GoSumMismatch,
            path: None,
            expected: Some(want.clone()),
            actual: Some(hash.clone()),
            message: format!(
                "{} {}: go.sum mismatch: go.sum line {line} has {want}, {origin} has {hash}",
                m.path, m.version
            ),
        }),
        SumCheck::Missing => problems.push(Problem {
            module: m.clone(),
            kind: ProblemKind::GoSumMissing,
            path: None,
            expected: None,
            actual: Some(hash.clone()),
            message: format!("{} {}: not in go.sum ({origin} has {hash})", m.path, m.version),
        }),
    }
}

/// Verifies every module of `list` in `cache`, with go.sum from the main module's directory.
pub fn verify(list: &BuildList, cache: &ModCache) -> Result<VerifyReport, VerifyError> {
    let sum_path = list.main_dir.join("go.sum");
    let sum = match fs::read(&sum_path) {
        Ok(data) => Some(GoSum::parse(&sum_path.display().to_string(), &data).map_err(VerifyError::GoSum)?),
        Err(e) if not_exist(&e) => None,
        Err(cause) => return Err(VerifyError::ReadGoSum { path: sum_path, cause }),
    };
    // go.sum checks need a go.sum; without one every module is "missing", as for go.
    let empty = GoSum::default();
    let sum_ref = Some(sum.as_ref().unwrap_or(&empty));
    let results: Vec<(ModuleOutcome, Vec<Problem>)> =
        list.modules.par_iter().map(|m| verify_module(cache, m, sum_ref)).collect();
    let mut modules = Vec::with_capacity(results.len());
    let mut problems = Vec::new();
    for (o, p) in results {
        modules.push(o);
        problems.extend(p);
    }
    let sums = sum.as_ref().unwrap_or(&empty);
    for g in &list.go_mods {
        let hash: &H1Hash = &g.hash;
        match sums.check(&g.module, true, hash.as_str()) {
            SumCheck::Match => {}
            SumCheck::Mismatch { want, line } => problems.push(Problem {
                module: g.module.clone(),
                kind: ProblemKind::GoModMismatch,
                path: Some(g.file.clone()),
                expected: Some(want.clone()),
                actual: Some(hash.to_string()),
                message: format!(
                    "{} {}: go.mod: go.sum mismatch: go.sum line {line} has {want}, {} has {hash}",
                    g.module.path,
                    g.module.version,
                    g.file.display()
                ),
            }),
            SumCheck::Missing => problems.push(Problem {
                module: g.module.clone(),
                kind: ProblemKind::GoModMissing,
                path: Some(g.file.clone()),
                expected: None,
                actual: Some(hash.to_string()),
                message: format!(
                    "{} {}: go.mod: missing go.sum entry ({} has {hash})",
                    g.module.path,
                    g.module.version,
                    g.file.display()
                ),
            }),
        }
    }
    for e in &list.errors {
        problems.push(Problem {
            module: e.module.clone(),
            kind: ProblemKind::GraphError,
            path: None,
            expected: None,
            actual: None,
            message: e.message.replace('\n', " "),
        });
    }
    Ok(VerifyReport {
        main: list.main.clone(),
        modcache: cache.root().to_path_buf(),
        go_sum: sum.is_some().then_some(sum_path),
        modules,
        problems,
    })
}
