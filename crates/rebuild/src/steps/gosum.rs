//! The `go-sum` step ([`run`]): go.mod and go.sum at the commit. Every module go.mod
//! requires (after `replace`) must have a go.sum line, else the build could
//! not verify it: a missing entry is an error naming the module. The digests
//! of both files go into the report.
//!
//! In a go.work workspace ([`check_workspace`]) the go command reads every
//! workspace module's go.sum and go.work.sum as one set of hashes
//! (`modload` sets `modfetch.WorkspaceGoSumFiles` and `GoSumFile =
//! go.work.sum`): every requirement of every workspace module, except those
//! on workspace modules themselves, must have a line in one of them, after
//! go.work's `replace` (which wins) and the modules' own. Go would fill a
//! gap into go.work.sum from the module cache; reprove refuses it, as it
//! refuses a gap in a single module's go.sum.
//!
//! Every file is read through [`ConfinedDir`] rooted at the exported tree: a
//! symlink out of it, a device, FIFO or socket is an input error naming the
//! path, and is never opened; sizes are bounded ([`confined::limits`]). A
//! local `replace` directory (of go.mod, a workspace module's go.mod, or
//! go.work) that is absolute or leaves the tree is refused before anything
//! reads it, and one inside must have its go.mod inside too: a rebuild sees
//! only the commit. Parse errors quote at most an [`confined::excerpt`].

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use report::v1::{self, FileDigest};
use stdx::setting::Setting;
use stdx::sha256_hex;

use crate::RebuildError;
use confined::{self, limits, ConfinedDir, ConfinedError};
use gomod::modfile::Replace;
use gomod::{parse_mod, parse_work, semver, GoSum, GoSumError, ModFile, ModuleVersion};

/// What the step found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// go.mod's digest.
    pub go_mod_digest: FileDigest,
    /// go.sum's digest, when there is one.
    pub go_sum_digest: Option<FileDigest>,
    /// The parsed go.sum.
    pub go_sum: Option<GoSum>,
    /// How many requirements go.mod has.
    pub requires: usize,
    /// Notes for the report.
    pub warnings: Vec<String>,
    /// The workspace, when the build uses one.
    pub workspace: Option<Workspace>,
}

/// A go.work workspace at the commit.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Its files and modules, for the report.
    pub report: v1::Workspace,
    /// The go.mod of a stand-in main module whose build list holds at least
    /// the workspace's: the union of the modules' requirements (the graph
    /// unpruned when any module's is), go.work's and the
    /// modules' replacements (local directories made absolute, the workspace
    /// modules replaced by their directories). [`modfetch::download`]
    /// fetches and verifies from it.
    pub download_go_mod: String,
    /// The union of the workspace's go.sum files and go.work.sum, for the stand-in.
    pub download_go_sum: Vec<u8>,
}

/// The exported tree `dir`, for confined reads.
fn open_tree(dir: &Path) -> Result<ConfinedDir, RebuildError> {
    ConfinedDir::open_followed(dir).map_err(refused)
}

/// A confined read that failed: an input error naming the path when the
/// commit's content is at fault (a link out, a device, too large), else the
/// machine's.
pub(crate) fn refused(e: ConfinedError) -> RebuildError {
    match e {
        ConfinedError::Io { action, path, source } => RebuildError::Io { action, path: PathBuf::from(path), source },
        e => RebuildError::GoMod(e.to_string()),
    }
}

/// Whether the exported tree `dir` has a regular file at `rel`; something
/// there that is not read (a link out, a device…) is an input error, never
/// taken for a missing file.
pub fn has_file(dir: &Path, rel: &str) -> Result<bool, RebuildError> {
    open_tree(dir)?.has_file(rel).map_err(refused)
}

/// go.sum errors, at most a few (each names a line, not its content).
fn sum_errors(errs: &[GoSumError]) -> RebuildError {
    const SHOWN: usize = 5;
    let mut lines: Vec<String> = errs.iter().take(SHOWN).map(ToString::to_string).collect();
    if errs.len() > SHOWN {
        lines.push(format!("(and {} more errors)", errs.len() - SHOWN));
    }
    RebuildError::GoMod(lines.join("\n"))
}

/// Refuses a local replacement directory of `file` (a go.mod or go.work in
/// the tree directory `base`) that is absolute or leaves the tree, before
/// anything reads it; one inside must not lead out of the tree either (its
/// go.mod is looked up confined).
fn check_replace_dir(tree: &ConfinedDir, file: &str, base: &str, r: &Replace) -> Result<(), RebuildError> {
    if !r.new.version.is_empty() {
        return Ok(());
    }
    let joined = if base == "." { r.new.path.clone() } else { format!("{base}/{}", r.new.path) };
    let clean = if Path::new(&r.new.path).is_absolute() { None } else { clean_use_dir(&joined) };
    let Some(clean) = clean else {
        return Err(RebuildError::GoMod(format!(
            "{file}:{}: replace {} => {}: the directory is outside the commit's tree (absolute, or above its root); \
             a rebuild sees only the commit, so a local replacement must be a directory inside it",
            r.line,
            confined::excerpt(&r.old.to_string()),
            confined::excerpt(&r.new.path),
        )));
    };
    tree.has_file(&rel(&clean, "go.mod")).map_err(refused)?;
    Ok(())
}

/// Checks go.sum against go.mod in the exported source `dir`.
pub fn check(dir: &Path) -> Result<Checked, RebuildError> {
    check_modfile(dir, "go.mod")
}

/// The go.mod a `-modfile` value names, relative to the source root: `value`
/// as the build reads it (absolute under `src_mount`, or relative to it, the
/// build's directory), which must end in `.mod` (go refuses anything else) and
/// stay inside the tree.
pub fn modfile_in_tree(value: &str, src_mount: &str) -> Result<String, RebuildError> {
    let bad = |why: &str| RebuildError::GoMod(format!("-modfile={}: {why}", confined::excerpt(value)));
    if !value.ends_with(".mod") {
        return Err(bad("the file does not have a .mod extension, which go requires"));
    }
    let relative = match value.strip_prefix(src_mount).filter(|r| r.starts_with('/')) {
        Some(r) => r.trim_start_matches('/'),
        None if value.starts_with('/') => {
            return Err(bad("the file is outside the source tree; a rebuild sees only the commit"))
        }
        None => value,
    };
    match clean_use_dir(relative) {
        Some(clean) if clean != "." => Ok(clean),
        _ => Err(bad("the file is outside the source tree; a rebuild sees only the commit")),
    }
}

/// [`check`] with the go.mod at `go_mod` (relative to `dir`, as
/// [`modfile_in_tree`] gives it) and its go.sum where go reads it for
/// `-modfile`: `go_mod` without `.mod`, plus `.sum`. The root go.mod must
/// exist all the same: go finds the module root by it.
pub fn check_modfile(dir: &Path, go_mod: &str) -> Result<Checked, RebuildError> {
    let tree = open_tree(dir)?;
    let go_sum = match go_mod.strip_suffix(".mod") {
        Some(stem) if go_mod != "go.mod" => format!("{stem}.sum"),
        _ => "go.sum".to_string(),
    };
    let no_root_go_mod = || {
        RebuildError::GoMod(
            "the commit has no go.mod at the repository root: reprove verify rebuilds a Go module whose go.mod is at the root".into(),
        )
    };
    if go_mod != "go.mod" && !tree.has_file("go.mod").map_err(refused)? {
        return Err(no_root_go_mod());
    }
    let data = match tree.read(go_mod, limits::CONFIG) {
        Ok(d) => d,
        Err(e) if e.is_not_found() && go_mod == "go.mod" => return Err(no_root_go_mod()),
        Err(e) if e.is_not_found() => {
            return Err(RebuildError::GoMod(format!(
                "-modfile={}: the commit has no such file",
                confined::excerpt(go_mod)
            )))
        }
        Err(e) => return Err(refused(e)),
    };
    let modfile = parse_mod(go_mod, &data)
        .map_err(|e| RebuildError::GoMod(format!("{}: {}", confined::excerpt(go_mod), e.excerpted())))?;
    for r in &modfile.replace {
        check_replace_dir(&tree, go_mod, ".", r)?;
    }
    let go_mod_digest = FileDigest { path: go_mod.into(), sha256: sha256_hex(&data) };
    let (go_sum, go_sum_digest) = match tree.read_optional(&go_sum, limits::SUMS).map_err(refused)? {
        Some(d) => {
            let sum = GoSum::parse(&go_sum, &d).map_err(|errs| sum_errors(&errs))?;
            (Some(sum), Some(FileDigest { path: go_sum.clone(), sha256: sha256_hex(&d) }))
        }
        None => (None, None),
    };
    let mut missing = Vec::new();
    for req in &modfile.require {
        let m = &req.module;
        let replaced = modfile
            .replace
            .iter()
            .rev()
            .find(|r| r.old.path == m.path && (r.old.version.is_empty() || r.old.version == m.version));
        let target = match replaced {
            // A local directory: nothing to verify.
            Some(r) if r.new.version.is_empty() => continue,
            Some(r) => &r.new,
            None => m,
        };
        let has = go_sum.as_ref().is_some_and(|s| {
            s.hashes(&target.path, &target.version).next().is_some()
                || s.hashes(&target.path, &format!("{}/go.mod", target.version)).next().is_some()
        });
        if !has {
            missing.push(format!("{}@{}", target.path, target.version));
        }
    }
    if !missing.is_empty() {
        return Err(RebuildError::MissingGoSum { modules: missing });
    }
    let mut warnings = Vec::new();
    if tree.is_file("vendor/modules.txt") {
        warnings.push(
            format!("the commit has a vendor directory: the rebuild uses the verified module cache (-mod=readonly) unless {} GOFLAGS=-mod=vendor", Setting::Env),
        );
    }
    Ok(Checked { go_mod_digest, go_sum_digest, go_sum, requires: modfile.require.len(), warnings, workspace: None })
}

/// A go.work `use` directory as a clean path relative to the workspace root
/// (`.` for the root), or `None` when it is absolute or leaves the tree.
pub fn clean_use_dir(dir: &str) -> Option<String> {
    let p = Path::new(dir);
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(if parts.is_empty() { ".".to_string() } else { parts.join("/") })
}

/// `base` joined with `path` (relative or absolute), `.` and `..` resolved lexically.
fn lexical_join(base: &Path, path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(path).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn rel(dir: &str, file: &str) -> String {
    if dir == "." {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

/// Checks the go.work workspace at the root of the exported source `dir`:
/// the go.work, every module it uses (inside the tree, with a go.mod; the
/// root module among them, since the build runs there), and go.sum lines for
/// every requirement across the workspace's go.sum files and go.work.sum.
pub fn check_workspace(dir: &Path) -> Result<Checked, RebuildError> {
    let tree = open_tree(dir)?;
    let data = tree.read("go.work", limits::CONFIG).map_err(refused)?;
    let work = parse_work("go.work", &data).map_err(|e| RebuildError::GoMod(format!("go.work: {}", e.excerpted())))?;
    for r in &work.replace {
        check_replace_dir(&tree, "go.work", ".", r)?;
    }
    let go_work = FileDigest { path: "go.work".into(), sha256: sha256_hex(&data) };
    let work_sum_data = tree.read_optional("go.work.sum", limits::SUMS).map_err(refused)?;
    let go_work_sum = work_sum_data.as_ref().map(|d| FileDigest { path: "go.work.sum".into(), sha256: sha256_hex(d) });

    // The modules, in go.work order.
    let mut modules: Vec<(String, PathBuf, ModFile, v1::WorkspaceModule)> = Vec::new();
    let mut sum_text: Vec<u8> = Vec::new();
    for (use_dir, line) in &work.use_dirs {
        let Some(clean) = clean_use_dir(use_dir) else {
            return Err(RebuildError::GoMod(format!(
                "go.work:{line}: use {}: the directory is outside the commit's tree; a rebuild sees only the commit",
                confined::excerpt(use_dir)
            )));
        };
        if modules.iter().any(|m| m.0 == clean) {
            continue;
        }
        let mod_dir = if clean == "." { dir.to_path_buf() } else { dir.join(&clean) };
        let name = rel(&clean, "go.mod");
        let Some(mod_data) = tree.read_optional(&name, limits::CONFIG).map_err(refused)? else {
            return Err(RebuildError::GoMod(format!(
                "go.work:{line}: use {}: the commit has no {}",
                confined::excerpt(use_dir),
                confined::excerpt(&name)
            )));
        };
        let modfile = parse_mod(&name, &mod_data)
            .map_err(|e| RebuildError::GoMod(format!("{}: {}", confined::excerpt(&name), e.excerpted())))?;
        let Some(path) = modfile.module.as_ref().map(|m| m.path.clone()).filter(|p| !p.is_empty()) else {
            return Err(RebuildError::GoMod(format!("{}: no module declaration", confined::excerpt(&name))));
        };
        if let Some(other) = modules.iter().find(|m| m.3.path == path) {
            return Err(RebuildError::GoMod(format!(
                "go.work: module {} appears multiple times in the workspace ({} and {})",
                confined::excerpt(&path),
                confined::excerpt(&other.3.dir),
                confined::excerpt(&clean)
            )));
        }
        let sum_name = rel(&clean, "go.sum");
        let sum_data = tree.read_optional(&sum_name, limits::SUMS).map_err(refused)?;
        if let Some(d) = &sum_data {
            GoSum::parse(&confined::excerpt(&sum_name), d).map_err(|errs| sum_errors(&errs))?;
            sum_text.extend_from_slice(d);
            sum_text.push(b'\n');
        }
        let entry = v1::WorkspaceModule {
            path,
            dir: clean.clone(),
            go_mod: FileDigest { path: name, sha256: sha256_hex(&mod_data) },
            go_sum: sum_data.as_ref().map(|d| FileDigest { path: sum_name, sha256: sha256_hex(d) }),
        };
        modules.push((clean, mod_dir, modfile, entry));
    }
    if let Some(d) = &work_sum_data {
        GoSum::parse("go.work.sum", d).map_err(|errs| sum_errors(&errs))?;
        sum_text.extend_from_slice(d);
    }
    let Some(root) = modules.iter().find(|m| m.0 == ".") else {
        return Err(RebuildError::GoMod(
            "go.work does not use the module at the repository root (use .): go build there would refuse to run \
             (the current directory is contained in a module that is not one of the workspace modules)"
                .into(),
        ));
    };
    let go_mod_digest = root.3.go_mod.clone();
    let go_sum_digest = root.3.go_sum.clone();
    let union = GoSum::parse("workspace go.sum files", &sum_text).map_err(|errs| sum_errors(&errs))?;

    // Replacements: go.work's win; a module's own apply to what go.work does not replace.
    // A local directory becomes absolute (relative to go.work, or to the module).
    let mut replace: BTreeMap<(String, String), ModuleVersion> = BTreeMap::new();
    let local = |base: &Path, m: &ModuleVersion| -> ModuleVersion {
        if m.version.is_empty() {
            ModuleVersion::new(lexical_join(base, &m.path).display().to_string(), "")
        } else {
            m.clone()
        }
    };
    for r in &work.replace {
        replace.insert((r.old.path.clone(), r.old.version.clone()), local(dir, &r.new));
    }
    let work_replaced = |path: &str| work.replace.iter().any(|r| r.old.path == path);
    for (clean, mod_dir, modfile, _) in &modules {
        for r in &modfile.replace {
            if work_replaced(&r.old.path) {
                continue;
            }
            check_replace_dir(&tree, &rel(clean, "go.mod"), clean, r)?;
            let key = (r.old.path.clone(), r.old.version.clone());
            let new = local(mod_dir, &r.new);
            match replace.get(&key) {
                Some(prev) if *prev != new => {
                    return Err(RebuildError::GoMod(format!(
                        "conflicting replacements found for {} in workspace modules: {} and {}; \
                         go.work must replace it",
                        confined::excerpt(&r.old.to_string()),
                        confined::excerpt(&prev.to_string()),
                        confined::excerpt(&new.to_string())
                    )))
                }
                _ => {
                    replace.insert(key, new);
                }
            }
        }
    }
    let is_workspace_module = |p: &str| modules.iter().any(|m| m.3.path == p);
    let mut missing: Vec<String> = Vec::new();
    let mut requires: BTreeMap<String, String> = BTreeMap::new();
    let mut count = 0;
    for (_, _, modfile, _) in &modules {
        for req in &modfile.require {
            let m = &req.module;
            if is_workspace_module(&m.path) {
                continue;
            }
            count += 1;
            let cur = requires.entry(m.path.clone()).or_default();
            *cur = if cur.is_empty() { m.version.clone() } else { semver::max(cur, &m.version) };
            let target = replace
                .get(&(m.path.clone(), m.version.clone()))
                .or_else(|| replace.get(&(m.path.clone(), String::new())))
                .unwrap_or(m);
            if target.version.is_empty() {
                continue;
            }
            let has = union.hashes(&target.path, &target.version).next().is_some()
                || union.hashes(&target.path, &format!("{}/go.mod", target.version)).next().is_some();
            let name = format!("{}@{}", target.path, target.version);
            if !has && !missing.contains(&name) {
                missing.push(name);
            }
        }
    }
    if !missing.is_empty() {
        return Err(RebuildError::MissingGoSum { modules: missing });
    }

    // The stand-in main module for the download: the root module's path and the
    // lowest go line of the modules (a module without one counts as go 1.16), so
    // that the graph is unpruned when any workspace module's is: its build list
    // then holds at least the workspace's.
    let go = modules
        .iter()
        .map(|m| m.2.go.clone().unwrap_or_else(|| "1.16".into()))
        .min_by(|a, b| gomod::gover::compare(a, b))
        .unwrap_or_else(|| "1.16".into());
    let mut gm = format!("module {}\n\ngo {go}\n", root.3.path);
    for (p, v) in &requires {
        gm.push_str(&format!("\nrequire {} {}", quote(p), quote(v)));
    }
    gm.push('\n');
    for (_, mod_dir, _, m) in &modules {
        if m.dir != "." {
            gm.push_str(&format!("\nreplace {} => {}", quote(&m.path), quote(&mod_dir.display().to_string())));
        }
    }
    for ((p, v), new) in &replace {
        if is_workspace_module(p) {
            continue;
        }
        let old = if v.is_empty() { quote(p) } else { format!("{} {}", quote(p), quote(v)) };
        let new = if new.version.is_empty() {
            quote(&new.path)
        } else {
            format!("{} {}", quote(&new.path), quote(&new.version))
        };
        gm.push_str(&format!("\nreplace {old} => {new}"));
    }
    gm.push('\n');
    let mut warnings = Vec::new();
    if tree.is_file("vendor/modules.txt") {
        warnings.push(
            format!("the commit has a vendor directory: the rebuild uses the verified module cache (-mod=readonly) unless {} GOFLAGS=-mod=vendor", Setting::Env),
        );
    }
    let report = v1::Workspace { go_work, go_work_sum, modules: modules.into_iter().map(|m| m.3).collect() };
    Ok(Checked {
        go_mod_digest,
        go_sum_digest,
        go_sum: Some(union),
        requires: count,
        warnings,
        workspace: Some(Workspace { report, download_go_mod: gm, download_go_sum: sum_text }),
    })
}

/// A go.mod token: quoted (Go syntax) when it is not a plain word.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "./-_+~@".contains(c)) {
        s.to_string()
    } else {
        String::from_utf8_lossy(&goinfo::goquote::quote(s.as_bytes())).into_owned()
    }
}

/// The step over the exported tree `dir`: whether the build uses the
/// commit's go.work (the recipe's `GOWORK`, else the reference's `(devel)`
/// dependencies, else go's default), then [`check_workspace`] or [`check`]
/// (of the file `-modfile` names, when the recipe sets it). The notes say
/// which, and why.
pub fn run(
    dir: &Path,
    recipe: &::recipe::Recipe,
    reference: Option<&goinfo::BuildInfo>,
) -> Result<Checked, RebuildError> {
    let has_go_work = has_file(dir, "go.work")?;
    let devel = reference.map(workspace_deps).unwrap_or_default();
    let gowork = recipe.env.get("GOWORK").map(String::as_str);
    let mut notes = Vec::new();
    let mut checked = if use_workspace(gowork, has_go_work, reference.is_some(), &devel)? {
        let checked = check_workspace(dir)?;
        if let Some(w) = &checked.workspace {
            let unknown: Vec<&String> =
                devel.iter().filter(|d| !w.report.modules.iter().any(|m| &m.path == *d)).collect();
            if !unknown.is_empty() {
                notes.push(format!(
                    "the reference records {} as (devel), but the commit's go.work does not use {}",
                    unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    if unknown.len() == 1 { "it" } else { "them" }
                ));
            }
            notes.push(format!(
                "built in the commit's go.work workspace ({} modules: {}){}",
                w.report.modules.len(),
                w.report.modules.iter().map(|m| m.path.as_str()).collect::<Vec<_>>().join(", "),
                if gowork.is_some() {
                    " as the recipe's GOWORK says".to_string()
                } else if reference.is_some() {
                    " as the reference's (devel) dependencies show".to_string()
                } else {
                    format!(
                        ", as go build at the repository root does; {} GOWORK=off builds the module alone",
                        Setting::Env
                    )
                }
            ));
        }
        checked
    } else {
        // With -modfile, go reads that file and its .sum instead of go.mod and go.sum.
        let checked = match recipe.exec.iter().find(|e| e.flag == "-modfile") {
            Some(m) => check_modfile(dir, &modfile_in_tree(&m.value, super::build::SRC)?)?,
            None => check(dir)?,
        };
        if has_go_work {
            notes.push(format!(
                "the commit has a go.work file, but the rebuild ignores it (GOWORK=off): the reference records no \
                 workspace module as (devel), or the recipe sets GOWORK=off; {} GOWORK=go.work builds in the workspace",
                Setting::Env
            ));
        }
        checked
    };
    notes.append(&mut checked.warnings);
    checked.warnings = notes;
    Ok(checked)
}

/// Whether the rebuild uses the commit's go.work workspace. `gowork`: the
/// recipe's `GOWORK`, `off` or `go.work`; unset, the reference decides when
/// its build info is known (`has_build_info`): its `(devel)` dependencies
/// (`devel`) are the other workspace modules; without build info, what `go
/// build` at the root of the commit does (the workspace when there is a
/// go.work). A reference built in a workspace is never rebuilt without one.
pub fn use_workspace(
    gowork: Option<&str>,
    has_go_work: bool,
    has_build_info: bool,
    devel: &[String],
) -> Result<bool, RebuildError> {
    let workspace = match gowork {
        Some("off") => false,
        Some("go.work" | "./go.work") if has_go_work => true,
        Some("go.work" | "./go.work") => {
            return Err(RebuildError::GoMod(
                "the recipe sets GOWORK=go.work, and the commit has no go.work at the repository root".into(),
            ))
        }
        Some(other) => return Err(RebuildError::GoWorkValue(other.to_string())),
        None if has_build_info => !devel.is_empty() && has_go_work,
        None => has_go_work,
    };
    if !devel.is_empty() && !workspace {
        let reason = if has_go_work {
            "the recipe sets GOWORK=off".to_string()
        } else {
            "the commit has no go.work at the repository root: the rebuild would not use a workspace".to_string()
        };
        return Err(RebuildError::Workspace { modules: devel.to_vec(), reason });
    }
    Ok(workspace)
}

/// The dependencies `bi` records as `(devel)` without a replacement: the
/// other modules of the go.work workspace the binary was built in (a local
/// `replace` is recorded with its version and `=> ../dir (devel)`).
pub fn workspace_deps(bi: &goinfo::BuildInfo) -> Vec<String> {
    bi.deps.iter().filter(|d| d.replace.is_none() && d.version == "(devel)").map(|d| d.path.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    const PFLAG: &str = "github.com/spf13/pflag v1.0.5 h1:iy+VFUOCP1a+8yFto/drg2CJ5u0yRoB7fZw3DKv/JXA=\n";
    const PFLAG_MOD: &str = "github.com/spf13/pflag v1.0.5/go.mod h1:McXfInJRrz4CZXVZOBLb0bTZqETkiAhM9Iw0y3An2Bg=\n";

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = match tempfile::tempdir() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        for (name, data) in files {
            let p = t.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&p, data).unwrap_or_else(|e| panic!("{e}"));
        }
        t
    }

    fn workspace(extra: &[(&str, &str)]) -> tempfile::TempDir {
        let mut files = vec![
            ("go.work", "go 1.22\n\n// the app and its library\nuse (\n\t.\n\t./lib // the library\n)\n"),
            ("go.mod", "module example.com/app\n\ngo 1.22\n"),
            ("lib/go.mod", "module example.com/lib\n\ngo 1.22\n\nrequire github.com/spf13/pflag v1.0.5\n"),
        ];
        files.extend_from_slice(extra);
        tree(&files)
    }

    fn err(r: Result<Checked, RebuildError>) -> RebuildError {
        match r {
            Ok(c) => panic!("expected an error, got {:?}", c.workspace.map(|w| w.report)),
            Err(e) => e,
        }
    }

    #[test]
    fn the_reference_or_the_recipe_chooses_the_workspace_never_silently() {
        let lib = ["example.com/lib".to_string()];
        let code = |r: Result<bool, RebuildError>| r.map_err(|e| e.code());
        // The reference's (devel) dependencies: the workspace; none: GOWORK=off.
        assert_eq!(code(use_workspace(None, true, true, &lib)), Ok(true));
        assert_eq!(code(use_workspace(None, true, true, &[])), Ok(false));
        assert_eq!(code(use_workspace(None, false, true, &[])), Ok(false));
        // Without build info: go's default.
        assert_eq!(code(use_workspace(None, true, false, &[])), Ok(true));
        assert_eq!(code(use_workspace(None, false, false, &[])), Ok(false));
        // The recipe says it explicitly.
        assert_eq!(code(use_workspace(Some("go.work"), true, true, &[])), Ok(true));
        assert_eq!(code(use_workspace(Some("off"), true, false, &[])), Ok(false));
        // Never another mode than the reference's.
        assert_eq!(code(use_workspace(None, false, true, &lib)), Err(Code::GoWorkspace));
        assert_eq!(code(use_workspace(Some("off"), true, true, &lib)), Err(Code::GoWorkspace));
        assert_eq!(code(use_workspace(Some("go.work"), false, true, &[])), Err(Code::GoMod));
        assert_eq!(code(use_workspace(Some("/elsewhere/go.work"), true, true, &lib)), Err(Code::Recipe));
    }

    /// With -modfile, go reads that file and its .sum: so does the check, and
    /// the digests name them.
    #[test]
    fn a_modfile_is_checked_with_its_own_sum_file() {
        let go_mod = "module example.com/app\n\ngo 1.22\n\nrequire github.com/spf13/pflag v1.0.5\n";
        let t = tree(&[
            ("go.mod", "module example.com/app\n\ngo 1.22\n"),
            ("alt/alt.mod", go_mod),
            ("alt/alt.sum", &format!("{PFLAG}{PFLAG_MOD}")),
        ]);
        let c = check_modfile(t.path(), "alt/alt.mod").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.go_mod_digest.path, "alt/alt.mod");
        assert_eq!(c.go_mod_digest.sha256, sha256_hex(go_mod.as_bytes()));
        assert_eq!(c.go_sum_digest.map(|d| d.path).as_deref(), Some("alt/alt.sum"));
        assert_eq!(c.requires, 1);
        // go.sum is not what go reads: a line there does not count.
        let t = tree(&[("go.mod", "module example.com/app\n"), ("alt.mod", go_mod), ("go.sum", PFLAG)]);
        assert_eq!(err(check_modfile(t.path(), "alt.mod")).code(), Code::MissingGoSum);
        assert_eq!(check(t.path()).map(|c| c.requires).ok(), Some(0));
        // Where the file may be.
        assert_eq!(modfile_in_tree("/src/alt/alt.mod", "/src").ok().as_deref(), Some("alt/alt.mod"));
        assert_eq!(modfile_in_tree("./alt.mod", "/src").ok().as_deref(), Some("alt.mod"));
        for outside in ["/etc/x.mod", "/srcx/a.mod", "../a.mod", "/src/../a.mod", "alt.txt"] {
            assert_eq!(modfile_in_tree(outside, "/src").map_err(|e| e.code()), Err(Code::GoMod), "{outside}");
        }
    }

    #[test]
    fn use_dirs_are_cleaned_and_kept_in_the_tree() {
        assert_eq!(clean_use_dir(".").as_deref(), Some("."));
        assert_eq!(clean_use_dir("./lib/").as_deref(), Some("lib"));
        assert_eq!(clean_use_dir("a/../b").as_deref(), Some("b"));
        assert_eq!(clean_use_dir("a/./b").as_deref(), Some("a/b"));
        assert_eq!(clean_use_dir("../other"), None);
        assert_eq!(clean_use_dir("a/../../b"), None);
        assert_eq!(clean_use_dir("/abs"), None);
    }

    #[test]
    fn a_sum_in_any_workspace_go_sum_or_go_work_sum_counts() {
        for extra in [("lib/go.sum", PFLAG), ("go.sum", PFLAG_MOD), ("go.work.sum", PFLAG)] {
            let t = workspace(&[extra]);
            let c = match check_workspace(t.path()) {
                Ok(c) => c,
                Err(e) => panic!("{extra:?}: {e}"),
            };
            assert_eq!(c.requires, 1);
            let w = c.workspace.unwrap_or_else(|| panic!("no workspace"));
            let paths: Vec<(&str, &str)> = w.report.modules.iter().map(|m| (m.path.as_str(), m.dir.as_str())).collect();
            assert_eq!(paths, [("example.com/app", "."), ("example.com/lib", "lib")]);
            assert_eq!(w.report.go_work.path, "go.work");
            assert_eq!(w.report.go_work_sum.is_some(), extra.0 == "go.work.sum");
            assert_eq!(c.go_mod_digest.path, "go.mod");
            assert_eq!(w.report.modules[1].go_mod.path, "lib/go.mod");
            // The stand-in main module parses, requires the union, and points at the library's directory.
            let gm = match parse_mod("go.mod", w.download_go_mod.as_bytes()) {
                Ok(m) => m,
                Err(e) => panic!("{e}\n{}", w.download_go_mod),
            };
            assert_eq!(gm.module.map(|m| m.path).as_deref(), Some("example.com/app"));
            assert_eq!(
                gm.require.iter().map(|r| r.module.to_string()).collect::<Vec<_>>(),
                ["github.com/spf13/pflag@v1.0.5"]
            );
            assert_eq!(gm.replace.len(), 1, "{}", w.download_go_mod);
            assert_eq!(gm.replace[0].new.path, t.path().join("lib").display().to_string());
            let sum = match GoSum::parse("go.sum", &w.download_go_sum) {
                Ok(s) => s,
                Err(e) => panic!("{e:?}"),
            };
            assert_eq!(sum.lines().len(), 1);
        }
    }

    #[test]
    fn a_requirement_without_a_line_anywhere_is_missing() {
        let t = workspace(&[("go.sum", ""), ("go.work.sum", "example.com/other v1.0.0 h1:x=\n")]);
        match err(check_workspace(t.path())) {
            RebuildError::MissingGoSum { modules } => assert_eq!(modules, ["github.com/spf13/pflag@v1.0.5"]),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn requirements_on_workspace_modules_and_local_replacements_need_no_sum() {
        let t = workspace(&[
            ("go.mod", "module example.com/app\n\ngo 1.22\n\nrequire example.com/lib v0.1.0\nrequire example.com/local v1.0.0\n"),
            ("go.work", "go 1.22\nuse . \nuse ./lib\nreplace github.com/spf13/pflag => ./pflag\nreplace example.com/local v1.0.0 => ./local\n"),
        ]);
        let c = match check_workspace(t.path()) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let gm = c.workspace.map(|w| w.download_go_mod).unwrap_or_default();
        assert!(
            gm.contains(&format!("replace github.com/spf13/pflag => {}", t.path().join("pflag").display())),
            "{gm}"
        );
        assert!(!gm.contains("example.com/lib v0.1.0"), "{gm}");
        // go.work's replacement wins over a module's own.
        let t = workspace(&[
            ("lib/go.mod", "module example.com/lib\n\ngo 1.22\n\nrequire github.com/spf13/pflag v1.0.5\nreplace github.com/spf13/pflag => github.com/spf13/pflag v1.0.6\n"),
            ("go.work", "go 1.22\nuse (\n\t.\n\t./lib\n)\nreplace github.com/spf13/pflag => github.com/spf13/pflag v1.0.5\n"),
            ("go.work.sum", PFLAG),
        ]);
        if let Err(e) = check_workspace(t.path()) {
            panic!("{e}");
        }
        // Without go.work's, the module's replacement decides: v1.0.6 has no line.
        let t = workspace(&[
            ("lib/go.mod", "module example.com/lib\n\ngo 1.22\n\nrequire github.com/spf13/pflag v1.0.5\nreplace github.com/spf13/pflag => github.com/spf13/pflag v1.0.6\n"),
            ("go.work.sum", PFLAG),
        ]);
        match err(check_workspace(t.path())) {
            RebuildError::MissingGoSum { modules } => assert_eq!(modules, ["github.com/spf13/pflag@v1.0.6"]),
            e => panic!("{e}"),
        }
    }

    /// A host directory next to the tree, removed at the end.
    struct Host(PathBuf);

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A host directory next to the tree with a file holding a marker, and a FIFO.
    fn host_secret(t: &tempfile::TempDir) -> (PathBuf, PathBuf, Host) {
        let host = t.path().with_extension("host");
        std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
        let secret = host.join("secret");
        std::fs::write(&secret, "module TOPSECRET-MARKER\nTOPSECRET-MARKER\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(host.join("go.mod"), "module TOPSECRET-MARKER\n").unwrap_or_else(|e| panic!("{e}"));
        let fifo = host.join("fifo");
        if !fifo.exists() {
            rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, 0o600.into(), 0)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        (secret, fifo, Host(host))
    }

    fn assert_refused(r: Result<Checked, RebuildError>, names: &str, case: &str) {
        let started = std::time::Instant::now();
        let e = match r {
            Ok(_) => panic!("{case}: accepted"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{case}");
        assert_eq!(e.class(), crate::Class::Input, "{case}: {msg}");
        assert!(msg.contains(names), "{case}: {msg}");
        assert!(!msg.contains("TOPSECRET"), "{case}: {msg}");
    }

    #[test]
    fn files_that_lead_out_of_the_tree_are_refused_unread() {
        for (name, workspace_case) in [
            ("go.mod", false),
            ("go.sum", false),
            ("go.work", true),
            ("go.work.sum", true),
            ("lib/go.mod", true),
            ("lib/go.sum", true),
        ] {
            for target in ["abs", "rel", "/dev/zero", "/dev/stdin", "fifo"] {
                let t = if workspace_case { workspace(&[]) } else { tree(&[("go.mod", "module example.com/app\n")]) };
                let (secret, fifo, _host) = host_secret(&t);
                let link = t.path().join(name);
                let _ = std::fs::remove_file(&link);
                let depth = name.matches('/').count() + 1;
                let to = match target {
                    "abs" => secret.clone(),
                    "rel" => PathBuf::from(format!(
                        "{}{}/secret",
                        "../".repeat(depth),
                        secret
                            .parent()
                            .and_then(|p| p.file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )),
                    "fifo" => fifo.clone(),
                    dev => PathBuf::from(dev),
                };
                std::os::unix::fs::symlink(&to, &link).unwrap_or_else(|e| panic!("{e}"));
                let r = if workspace_case { check_workspace(t.path()) } else { check(t.path()) };
                assert_refused(r, name, &format!("{name} -> {}", to.display()));
            }
        }
        // Too large to be a go.mod.
        let t = tree(&[]);
        let f = std::fs::File::create(t.path().join("go.mod")).unwrap_or_else(|e| panic!("{e}"));
        f.set_len(limits::CONFIG + 1).unwrap_or_else(|e| panic!("{e}"));
        assert_refused(check(t.path()), "go.mod", "large go.mod");
        assert!(!has_file(t.path(), "missing").unwrap_or(true));
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("go.work")).unwrap_or_else(|e| panic!("{e}"));
        assert!(has_file(t.path(), "go.work").is_err(), "a go.work that leads out is not taken for a missing one");
    }

    #[test]
    fn replacements_outside_the_tree_are_refused_before_reading() {
        let t = tree(&[]);
        let (secret, _, _host) = host_secret(&t);
        let host = secret.parent().map(Path::to_path_buf).unwrap_or_default();
        let host_name = host.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (go_mod, names) in [
            (
                "module example.com/app\nreplace example.com/x => /etc\n".to_string(),
                "go.mod:2: replace example.com/x => /etc",
            ),
            (
                format!("module example.com/app\nreplace example.com/x => {}\n", host.display()),
                "outside the commit's tree",
            ),
            (
                format!("module example.com/app\nreplace example.com/x v1.0.0 => ../{host_name}\n"),
                "go.mod:2: replace example.com/x@v1.0.0 => ../",
            ),
            (
                "module example.com/app\nreplace example.com/x => ./a/../../outside\n".to_string(),
                "a rebuild sees only the commit",
            ),
        ] {
            std::fs::write(t.path().join("go.mod"), &go_mod).unwrap_or_else(|e| panic!("{e}"));
            assert_refused(check(t.path()), names, &go_mod);
        }
        // Inside the tree, but its directory is a symlink out: refused by the confined lookup.
        std::fs::write(t.path().join("go.mod"), "module example.com/app\nreplace example.com/x => ./x\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&host, t.path().join("x")).unwrap_or_else(|e| panic!("{e}"));
        assert_refused(check(t.path()), "x/go.mod", "a replacement directory that is a symlink out");
        // Inside, a real directory: accepted.
        std::fs::remove_file(t.path().join("x")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(t.path().join("x")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(t.path().join("x/go.mod"), "module example.com/x\n").unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = check(t.path()) {
            panic!("{e}");
        }
        // go.work's replace, and a workspace module's own (relative to its directory).
        for (file, text, names) in [
            (
                "go.work",
                "go 1.22\nuse (\n\t.\n\t./lib\n)\nreplace example.com/x => /etc\n",
                "go.work:6: replace example.com/x => /etc",
            ),
            (
                "lib/go.mod",
                "module example.com/lib\n\ngo 1.22\nreplace example.com/x => ../../outside\n",
                "lib/go.mod:4: replace example.com/x => ../../outside",
            ),
        ] {
            let t = workspace(&[(file, text)]);
            assert_refused(check_workspace(t.path()), names, file);
        }
        // A workspace module's replacement that stays inside (../shared from lib) is fine.
        let t = workspace(&[("lib/go.mod", "module example.com/lib\n\ngo 1.22\nreplace example.com/x => ../shared\n")]);
        if let Err(e) = check_workspace(t.path()) {
            panic!("{e}");
        }
    }

    #[test]
    fn bad_workspaces_are_refused_naming_why() {
        for (files, want) in [
            (vec![("go.work", "go 1.22\nuse ./lib\n")], "does not use the module at the repository root"),
            (vec![("go.work", "go 1.22\nuse .\nuse ../elsewhere\n")], "outside the commit's tree"),
            (vec![("go.work", "go 1.22\nuse .\nuse ./nothing\n")], "no nothing/go.mod"),
            (
                vec![
                    ("go.work", "go 1.22\nuse .\nuse ./lib\nuse ./lib2\n"),
                    ("lib2/go.mod", "module example.com/lib\n"),
                ],
                "multiple times",
            ),
            (vec![("go.work", "go 1.22\nrequire x v1.0.0\n")], "go.work:"),
            (vec![("go.work.sum", "bad\n")], "go.work.sum:1: wrong number of fields"),
        ] {
            let t = workspace(&files);
            let e = err(check_workspace(t.path())).to_string();
            assert!(e.contains(want), "{files:?}: {e}");
        }
    }
}
