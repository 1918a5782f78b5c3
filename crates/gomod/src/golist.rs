//! The build list as the go command reports it: the JSON stream of
//! `go list -m -json all`, parsed into a [`BuildList`].
//!
//! This is the second source of a build list (the first is
//! [`load_build_list`](super::load_build_list), computed without `go`): the
//! caller runs the command, this module only reads its output. The go.mod
//! files named in the output (`GoMod`, for modules in the cache) are hashed so
//! that go.sum can be checked against them as for a computed list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::buildlist::{BuildList, LoadedGoMod};
use super::dirhash::hash_go_mod;
use super::modfile::{self, ModFile};
use super::module::ModuleVersion;

/// The fields of `go list -m -json` this reads (a subset of Go's `modinfo.ModulePublic`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    path: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    main: bool,
    #[serde(default)]
    dir: Option<PathBuf>,
    #[serde(default)]
    go_mod: Option<PathBuf>,
    #[serde(default)]
    replace: Option<Box<Listed>>,
}

/// Why `go list -m -json all` output could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GoListError {
    /// The output is not a stream of JSON module objects.
    #[error("reading go list -m -json output: {0}")]
    Json(String),
    /// No module is marked `"Main": true`.
    #[error("go list -m -json output has no main module")]
    NoMain,
    /// The main module's go.mod could not be read or parsed.
    #[error("{}: {message}", path.display())]
    MainGoMod {
        /// The go.mod file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Parses the output of `go list -m -json all` run in a main module.
///
/// `modcache` is the GOMODCACHE the command used: go.mod files under it are
/// hashed for the go.sum checks (other `GoMod` paths, such as a directory
/// replacement's, are not in go.sum).
pub fn parse_go_list(data: &[u8], modcache: &Path) -> Result<BuildList, GoListError> {
    let mut listed = Vec::new();
    for item in serde_json::Deserializer::from_slice(data).into_iter::<Listed>() {
        listed.push(item.map_err(|e| GoListError::Json(e.to_string()))?);
    }
    let main = listed.iter().find(|m| m.main).cloned().ok_or(GoListError::NoMain)?;
    let main_dir = main.dir.clone().unwrap_or_default();
    let main_go_mod_path = main.go_mod.clone().unwrap_or_else(|| main_dir.join("go.mod"));
    let main_go_mod = read_main_go_mod(&main_go_mod_path)?;
    let mut modules = Vec::new();
    let mut replaced = BTreeMap::new();
    let mut go_mods = Vec::new();
    for m in listed.iter().filter(|m| !m.main) {
        let mv = ModuleVersion::new(m.path.clone(), m.version.clone());
        let provider = match &m.replace {
            Some(r) => {
                let rv = ModuleVersion::new(r.path.clone(), r.version.clone());
                replaced.insert(mv.clone(), rv.clone());
                (!rv.version.is_empty()).then_some((rv, r.go_mod.clone()))
            }
            None => Some((mv.clone(), m.go_mod.clone())),
        };
        if let Some((pm, Some(file))) = provider {
            if file.starts_with(modcache) {
                if let Ok(data) = std::fs::read(&file) {
                    go_mods.push(LoadedGoMod { module: pm, file, hash: hash_go_mod(&data) });
                }
            }
        }
        modules.push(mv);
    }
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(BuildList {
        main: ModuleVersion::new(main.path, ""),
        main_dir,
        main_go_mod,
        modules,
        replaced,
        go_mods,
        errors: Vec::new(),
        missing_go_mods: Vec::new(),
    })
}

fn read_main_go_mod(path: &Path) -> Result<ModFile, GoListError> {
    let fail = |message: String| GoListError::MainGoMod { path: path.to_path_buf(), message };
    let data = std::fs::read(path).map_err(|e| fail(super::dirhash::errno_text(&e)))?;
    modfile::parse_mod(&path.display().to_string(), &data).map_err(|e| fail(e.to_string()))
}
