//! The build list of a main module, by minimal version selection over the
//! go.mod files in a module cache, as the go command's `modload` computes it.
//!
//! Roots are the main module's requirements (minus `exclude`d versions).
//! Each module's go.mod is read from `cache/download/…/@v/<v>.mod`, or from a
//! `replace`ment: another module version, or a directory relative to the main
//! module. With graph pruning (main module `go` ≥ 1.17, `modload.readModGraph`),
//! the requirements of a root are loaded, but the requirements of a pruned
//! dependency (one whose own go.mod says `go` ≥ 1.17) are not followed; an
//! unpruned dependency pulls in its whole transitive graph. The build list is
//! the highest version of each path in that graph: the main module first, then
//! the rest sorted by path, exactly `go list -m all`.
//!
//! What it is not: a resolver. Nothing is downloaded and no query (`latest`,
//! upgrades) is answered; a go.mod missing from the cache is an error for that
//! module. Workspaces (go.work) are parsed by [`super::modfile`] but not used here:
//! `rebuild::gosum::check_workspace` writes a stand-in main module with the
//! union of a workspace's requirements, whose build list holds at least the workspace's.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use super::cache::ModCache;
use super::dirhash::{errno_text, hash_go_mod, H1Hash};
use super::gover;
use super::modfile::{self, ModFile};
use super::module::ModuleVersion;
use super::semver;
use confined::ConfinedDir;

/// The Go version from which module graphs are pruned (`gover.ExplicitIndirectVersion`).
const PRUNING_VERSION: &str = "1.17";
/// The Go version assumed for a main go.mod without a `go` line (`gover.DefaultGoModVersion`).
const DEFAULT_GO_MOD_VERSION: &str = "1.16";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pruning {
    Pruned,
    Unpruned,
}

fn pruning_for(go: &str) -> Pruning {
    if gover::compare(go, PRUNING_VERSION) == Ordering::Less {
        Pruning::Unpruned
    } else {
        Pruning::Pruned
    }
}

/// A go.mod file read while loading the graph, with its go.sum hash.
#[derive(Debug, Clone)]
pub struct LoadedGoMod {
    /// The module whose go.mod this is (after replacement; never a directory).
    pub module: ModuleVersion,
    /// The file in the module cache.
    pub file: PathBuf,
    /// Its h1 hash, as go.sum records it on the `/go.mod` line.
    pub hash: H1Hash,
}

/// A module whose requirements could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The module as required.
    pub module: ModuleVersion,
    /// What went wrong.
    pub message: String,
}

/// The result of loading a main module's graph.
#[derive(Debug, Clone)]
pub struct BuildList {
    /// The main module (empty version).
    pub main: ModuleVersion,
    /// The main module's directory.
    pub main_dir: PathBuf,
    /// The main go.mod.
    pub main_go_mod: ModFile,
    /// Every selected module but the main one, sorted by path.
    pub modules: Vec<ModuleVersion>,
    /// Replacements in effect for modules of the build list: module → what provides it.
    pub replaced: BTreeMap<ModuleVersion, ModuleVersion>,
    /// Every go.mod read from the cache, in load order.
    pub go_mods: Vec<LoadedGoMod>,
    /// Modules whose go.mod could not be read or parsed. Go stops at the
    /// first; this records each and goes on with the rest of the graph.
    pub errors: Vec<GraphError>,
    /// The module versions (after replacement) whose go.mod is not in the
    /// cache at all, in load order: what a downloader fetches before loading again.
    pub missing_go_mods: Vec<ModuleVersion>,
}

/// Why a build list could not be computed at all.
#[derive(Debug, thiserror::Error)]
pub enum BuildListError {
    /// The main go.mod is missing or unreadable.
    #[error("reading {}: {}", path.display(), errno_text(cause))]
    Read {
        /// The go.mod path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The main go.mod does not parse.
    #[error("errors parsing {}:\n{cause}", path.display())]
    Parse {
        /// The go.mod path.
        path: PathBuf,
        /// Go's errors.
        cause: modfile::ModFileError,
    },
    /// The main go.mod has no module line.
    #[error("{}: no module declaration in go.mod", path.display())]
    NoModule {
        /// The go.mod path.
        path: PathBuf,
    },
    /// The main go.mod cannot be read inside its directory (a rebuild): a
    /// symlink out, a device, FIFO or socket, too large.
    #[error("{0}")]
    Refused(confined::ConfinedError),
    /// Two replacements of the same module differ.
    #[error("conflicting replacements for {old}:\n\t{first}\n\t{second}")]
    ConflictingReplace {
        /// The replaced module (`path@version` or `path`).
        old: String,
        /// The first replacement.
        first: String,
        /// The second.
        second: String,
    },
}

#[derive(Debug, Clone)]
struct Summary {
    require: Vec<ModuleVersion>,
    pruning: Pruning,
}

struct Loader<'a> {
    cache: &'a ModCache,
    main_dir: &'a Path,
    /// The exported tree local replacements must stay in (a rebuild).
    tree: Option<&'a Path>,
    replace: HashMap<(String, String), ModuleVersion>,
    exclude: HashSet<ModuleVersion>,
    summaries: HashMap<ModuleVersion, Result<Summary, String>>,
    go_mods: Vec<LoadedGoMod>,
    seen_go_mods: HashSet<ModuleVersion>,
    missing: Vec<ModuleVersion>,
}

impl Loader<'_> {
    fn replacement(&self, m: &ModuleVersion) -> Option<&ModuleVersion> {
        self.replace
            .get(&(m.path.clone(), m.version.clone()))
            .or_else(|| self.replace.get(&(m.path.clone(), String::new())))
    }

    fn summary(&mut self, m: &ModuleVersion) -> Result<Summary, String> {
        if let Some(s) = self.summaries.get(m) {
            return s.clone();
        }
        let s = self.load_summary(m);
        self.summaries.insert(m.clone(), s.clone());
        s
    }

    fn load_summary(&mut self, m: &ModuleVersion) -> Result<Summary, String> {
        let actual = self.replacement(m).cloned().unwrap_or_else(|| m.clone());
        let (name, data) = if actual.version.is_empty() {
            let dir = self.main_dir.join(&actual.path);
            let file = dir.join("go.mod");
            let data = match self.tree {
                Some(tree) => read_in_tree(tree, &file).map_err(|e| format!("{m}: {e}"))?,
                None => fs::read(&file).map_err(|e| format!("{m}: reading {}: {}", file.display(), errno_text(&e)))?,
            };
            (file.display().to_string(), data)
        } else {
            let file = self.cache.cache_path(&actual, "mod").map_err(|e| format!("{actual}: {e}"))?;
            let data = fs::read(&file).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound && !self.missing.contains(&actual) {
                    self.missing.push(actual.clone());
                }
                format!("{actual}: reading {}: {}", file.display(), errno_text(&e))
            })?;
            if self.seen_go_mods.insert(actual.clone()) {
                self.go_mods.push(LoadedGoMod { module: actual.clone(), file, hash: hash_go_mod(&data) });
            }
            ("go.mod".to_string(), data)
        };
        let f = modfile::parse_mod_lax(&name, &data).map_err(|e| match self.tree {
            Some(_) => format!("{actual}: parsing {name}: {}", e.excerpted()),
            None => format!("{actual}: parsing {name}: {e}"),
        })?;
        if !actual.version.is_empty() {
            let mpath = f.module.as_ref().map(|m| m.path.as_str()).unwrap_or("");
            if mpath.is_empty() {
                return Err(format!("{actual}: parsing go.mod: missing module line"));
            }
            if mpath != m.path && mpath != actual.path {
                return Err(format!(
                    "{actual}: parsing go.mod:\n\tmodule declares its path as: {mpath}\n\t        but was required as: {}",
                    m.path
                ));
            }
        }
        let pruning = f.go.as_deref().map_or(Pruning::Unpruned, pruning_for);
        let require = f.require.into_iter().map(|r| r.module).filter(|r| !self.exclude.contains(r)).collect();
        Ok(Summary { require, pruning })
    }
}

struct Graph {
    selected: HashMap<String, String>,
}

impl Graph {
    fn note(&mut self, m: &ModuleVersion) {
        let cur = self.selected.entry(m.path.clone()).or_default();
        if cur.is_empty() || semver::compare(cur, &m.version) == Ordering::Less {
            *cur = m.version.clone();
        }
    }
}

/// `a` with `.` and `..` resolved lexically, absolute.
fn lexical(a: &Path) -> PathBuf {
    let a = std::path::absolute(a).unwrap_or_else(|_| a.to_path_buf());
    let mut out = PathBuf::new();
    for c in a.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Reads `file` (a local replacement's go.mod) confined to `tree`: it must
/// lie inside lexically, and is opened beneath it ([`ConfinedDir`]).
fn read_in_tree(tree: &Path, file: &Path) -> Result<Vec<u8>, String> {
    let full = lexical(file);
    let Ok(rel) = full.strip_prefix(lexical(tree)) else {
        return Err(format!(
            "the replacement directory {} is outside the commit's tree; a rebuild sees only the commit",
            confined::excerpt(&file.parent().unwrap_or(file).display().to_string())
        ));
    };
    let dir = ConfinedDir::open_followed(tree).map_err(|e| e.to_string())?;
    dir.read(&rel.display().to_string(), confined::limits::CONFIG).map_err(|e| e.to_string())
}

/// Computes the build list of the main module in `main_dir` from the go.mod
/// files in `cache`, as `go list -m all` would with `GOFLAGS=-mod=mod` and
/// `GOPROXY=off` on the same cache.
pub fn load_build_list(main_dir: &Path, cache: &ModCache) -> Result<BuildList, BuildListError> {
    load_build_list_in(main_dir, cache, None)
}

/// [`load_build_list`] for a rebuild: with `tree` (the exported source),
/// the main go.mod is read confined to `main_dir` and every local
/// replacement's go.mod confined to `tree`, which its directory must lie in.
pub fn load_build_list_in(main_dir: &Path, cache: &ModCache, tree: Option<&Path>) -> Result<BuildList, BuildListError> {
    let gomod_path = main_dir.join("go.mod");
    let data = match tree {
        Some(_) => ConfinedDir::open_followed(main_dir)
            .and_then(|d| d.read("go.mod", confined::limits::CONFIG))
            .map_err(BuildListError::Refused)?,
        None => fs::read(&gomod_path).map_err(|cause| BuildListError::Read { path: gomod_path.clone(), cause })?,
    };
    let main_go_mod = modfile::parse_mod(&gomod_path.display().to_string(), &data)
        .map_err(|cause| BuildListError::Parse { path: gomod_path.clone(), cause })?;
    let main_path = match &main_go_mod.module {
        Some(m) if !m.path.is_empty() => m.path.clone(),
        _ => return Err(BuildListError::NoModule { path: gomod_path }),
    };
    let mut replace: HashMap<(String, String), ModuleVersion> = HashMap::new();
    for r in &main_go_mod.replace {
        let key = (r.old.path.clone(), r.old.version.clone());
        if let Some(prev) = replace.get(&key) {
            if *prev != r.new {
                return Err(BuildListError::ConflictingReplace {
                    old: r.old.to_string(),
                    first: prev.to_string(),
                    second: r.new.to_string(),
                });
            }
        }
        replace.insert(key, r.new.clone());
    }
    let exclude: HashSet<ModuleVersion> = main_go_mod.exclude.iter().map(|(m, _)| m.clone()).collect();
    let go_version = main_go_mod.go.clone().unwrap_or_else(|| DEFAULT_GO_MOD_VERSION.to_string());
    let pruning = pruning_for(&go_version);

    let mut loader = Loader {
        cache,
        main_dir,
        tree,
        replace,
        exclude,
        summaries: HashMap::new(),
        go_mods: Vec::new(),
        seen_go_mods: HashSet::new(),
        missing: Vec::new(),
    };
    let mut roots: Vec<ModuleVersion> = main_go_mod
        .require
        .iter()
        .map(|r| r.module.clone())
        .filter(|m| !loader.exclude.contains(m) && m.path != main_path)
        .collect();

    // modload.expandGraph: when a root is not its path's selected version,
    // the roots are raised to the selected versions and the graph reloaded.
    let mut attempts = 0;
    let (graph, errors) = loop {
        let (graph, errors) = read_graph(&mut loader, &roots, pruning);
        attempts += 1;
        let consistent = roots.iter().all(|r| graph.selected.get(&r.path) == Some(&r.version));
        if consistent || !errors.is_empty() || attempts > 16 {
            break (graph, errors);
        }
        let mut next: Vec<ModuleVersion> = Vec::new();
        for r in &roots {
            if let Some(v) = graph.selected.get(&r.path) {
                let m = ModuleVersion::new(r.path.clone(), v.clone());
                if !next.contains(&m) {
                    next.push(m);
                }
            }
        }
        roots = next;
    };

    let mut modules: Vec<ModuleVersion> =
        graph.selected.into_iter().filter(|(p, _)| *p != main_path).map(|(p, v)| ModuleVersion::new(p, v)).collect();
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    let replaced = modules.iter().filter_map(|m| loader.replacement(m).map(|r| (m.clone(), r.clone()))).collect();
    Ok(BuildList {
        main: ModuleVersion::new(main_path, ""),
        main_dir: main_dir.to_path_buf(),
        main_go_mod,
        modules,
        replaced,
        go_mods: loader.go_mods,
        errors,
        missing_go_mods: loader.missing,
    })
}

/// `modload.readModGraph` for a single main module.
fn read_graph(loader: &mut Loader<'_>, roots: &[ModuleVersion], pruning: Pruning) -> (Graph, Vec<GraphError>) {
    let mut g = Graph { selected: HashMap::new() };
    for r in roots {
        g.note(r);
    }
    let mut errors = Vec::new();
    let mut enqueued: HashSet<(ModuleVersion, Pruning)> = HashSet::new();
    let mut required: HashSet<ModuleVersion> = HashSet::new();
    let mut queue: VecDeque<(ModuleVersion, Pruning)> = VecDeque::new();
    for r in roots {
        if enqueued.insert((r.clone(), pruning)) {
            queue.push_back((r.clone(), pruning));
        }
    }
    while let Some((m, p)) = queue.pop_front() {
        if m.version == "none" {
            continue;
        }
        let summary = match loader.summary(&m) {
            Ok(s) => s,
            Err(message) => {
                if !errors.iter().any(|e: &GraphError| e.module == m) {
                    errors.push(GraphError { module: m.clone(), message });
                }
                continue;
            }
        };
        if required.insert(m.clone()) {
            for r in &summary.require {
                g.note(r);
            }
        }
        let next = if p == Pruning::Unpruned { Pruning::Unpruned } else { summary.pruning };
        for r in &summary.require {
            let follow = p != Pruning::Pruned || summary.pruning == Pruning::Unpruned;
            if follow && enqueued.insert((r.clone(), next)) {
                queue.push_back((r.clone(), next));
            }
        }
    }
    (g, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn in_a_rebuild_local_replacements_are_read_inside_the_tree_only() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (src, host) = (t.path().join("src"), t.path().join("host"));
        write(&host.join("go.mod"), "module example.com/x\nrequire TOPSECRET-MARKER v1.0.0\n");
        write(&src.join("inside/go.mod"), "module example.com/y\n");
        std::os::unix::fs::symlink(&host, src.join("x")).unwrap_or_else(|e| panic!("{e}"));
        let cache = ModCache::new(t.path().join("modcache"));
        let messages = |go_mod: &str, tree: Option<&Path>| -> Vec<String> {
            write(&src.join("go.mod"), go_mod);
            match load_build_list_in(&src, &cache, tree) {
                Ok(bl) => bl.errors.iter().map(|e| e.message.clone()).collect(),
                Err(e) => vec![e.to_string()],
            }
        };
        let req = "module example.com/app\n\ngo 1.22\n\nrequire example.com/x v1.0.0\nrequire example.com/y v1.0.0\n";
        for replace in ["replace example.com/x => ./x\n", &format!("replace example.com/x => {}\n", host.display())] {
            let go_mod = format!("{req}replace example.com/y => ./inside\n{replace}");
            // Read as go does (reprove mod …): the link is followed.
            let plain = messages(&go_mod, None);
            assert!(plain.iter().all(|m| !m.contains("example.com/y")), "{plain:?}");
            // In a rebuild: refused, naming it, without its content.
            let confined = messages(&go_mod, Some(&src));
            assert_eq!(confined.len(), 1, "{confined:?}");
            assert!(confined[0].starts_with("example.com/x@v1.0.0: "), "{confined:?}");
            assert!(!confined[0].contains("TOPSECRET"), "{confined:?}");
        }
        // The main go.mod itself: confined to its directory.
        fs::remove_file(src.join("go.mod")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("/dev/zero", src.join("go.mod")).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(load_build_list_in(&src, &cache, Some(&src)), Err(BuildListError::Refused(_))));
    }
}
