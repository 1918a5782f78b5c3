//! The `modules` step: every module of the build list fetched through
//! GOPROXY (or directly) and verified against go.sum and the checksum
//! database into the one shared module cache, `<cache>/modcache`; nothing
//! unverified enters it. In a workspace, or with `-modfile`, the build list
//! is that of a stand-in main module in the work directory with the
//! requirements and sums go would read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use modfetch::download::{self, DownloadOptions};

use super::gosum::{self, Checked};
use crate::{RebuildError, Request};

/// Fetches and verifies the modules `mods` needs into `<cache>/modcache`,
/// which it returns; `src` is the exported tree, `work` the run's directory.
pub fn fetch(mods: &Checked, src: &Path, work: &Path, req: &Request) -> Result<PathBuf, RebuildError> {
    let modcache = req.cache_dir.join("modcache");
    std::fs::create_dir_all(&modcache).map_err(|e| RebuildError::io("create", &modcache, e))?;
    if mods.requires == 0 {
        return Ok(modcache);
    }
    let main_dir = match &mods.workspace {
        Some(w) => {
            let d = work.join("workspace");
            std::fs::create_dir_all(&d).map_err(|e| RebuildError::io("create", &d, e))?;
            for (name, data) in [("go.mod", w.download_go_mod.as_bytes()), ("go.sum", &w.download_go_sum[..])] {
                let f = d.join(name);
                std::fs::write(&f, data).map_err(|e| RebuildError::io("write", &f, e))?;
            }
            d
        }
        // -modfile: the requirements and sums of the files go reads, from a stand-in main module.
        None if mods.go_mod_digest.path != "go.mod" => {
            let d = work.join("modfile");
            std::fs::create_dir_all(&d).map_err(|e| RebuildError::io("create", &d, e))?;
            // Read as the go-sum step read them: confined to the tree, bounded.
            let tree = confined::ConfinedDir::open_followed(src).map_err(gosum::refused)?;
            let files = [
                (Some(&mods.go_mod_digest), confined::limits::CONFIG),
                (mods.go_sum_digest.as_ref(), confined::limits::SUMS),
            ];
            for (name, (from, limit)) in ["go.mod", "go.sum"].into_iter().zip(files) {
                if let Some(from) = from {
                    let data = tree.read(&from.path, limit).map_err(gosum::refused)?;
                    let dst = d.join(name);
                    std::fs::write(&dst, data).map_err(|e| RebuildError::io("write", &dst, e))?;
                }
            }
            d
        }
        None => src.to_path_buf(),
    };
    let mut env = req.go_env.clone();
    env.set("GOMODCACHE", &modcache.display().to_string());
    let opts = DownloadOptions { source_tree: Some(src.to_path_buf()), ..req.download.clone() };
    let rep = download::download(&req.io, &main_dir, &env, &opts, req.sumdb.clone(), Arc::new(download::Quiet))?;
    if !rep.security.is_empty() {
        return Err(RebuildError::Security { errors: rep.security });
    }
    if !rep.failures.is_empty() {
        return Err(RebuildError::Modules { failures: rep.failures });
    }
    Ok(modcache)
}
