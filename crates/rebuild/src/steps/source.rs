//! The `source` step: the revision resolved to a commit, a dirty working
//! tree refused unless allowed, and exactly the commit's tree exported
//! (never the working tree). With VCS stamping, [`checkout`] replaces the
//! export with a clean checkout that has `.git`.

use std::path::Path;

use ::source::{Export, ResolvedCommit, Source};

use crate::RebuildError;

/// The source opened (a local repository, or a clone in the work directory)
/// and the revision resolved.
pub struct Opened {
    /// The repository.
    pub source: Source,
    /// The commit the revision names.
    pub commit: ResolvedCommit,
}

/// Opens `location` (cloning into `work` when it is a URL) and resolves `rev`.
pub fn open(location: &str, rev: &str, work: &Path) -> Result<Opened, RebuildError> {
    let source = Source::open(location, work)?;
    let commit = source.resolve(rev)?;
    Ok(Opened { source, commit })
}

/// The uncommitted changes of the working tree, when the revision is its
/// HEAD: an error unless `allow_dirty`, else the changed paths (none when
/// clean, or when the revision is not the working tree's HEAD).
pub fn dirty_paths(opened: &Opened, allow_dirty: bool) -> Result<Vec<String>, RebuildError> {
    if !opened.commit.is_worktree_head {
        return Ok(Vec::new());
    }
    let dirty = opened.source.dirty_paths()?;
    if !dirty.is_empty() && !allow_dirty {
        return Err(RebuildError::DirtyTree {
            worktree: opened.source.worktree().map(Path::to_path_buf).unwrap_or_default(),
            paths: dirty,
        });
    }
    Ok(dirty)
}

/// What the export wrote, and the commit's Git tree id.
pub struct Exported {
    /// The export.
    pub export: Export,
    /// The Git tree id of the commit.
    pub tree: String,
}

impl Exported {
    /// Notes for the report: what of the tree the build does not see as Git has it.
    pub fn warnings(&self) -> Vec<String> {
        let submodules = self.export.submodules.iter().map(|m| {
            format!(
                "submodule {} (commit {}) is not part of the rebuild: the build sees an empty directory",
                m.path, m.commit
            )
        });
        let symlinks = self.export.symlinks.iter().filter(|l| l.escapes).map(|l| {
            format!(
                "symlink {} points outside the source tree ({}); inside the sandbox it resolves in the toolchain image",
                l.path, l.target
            )
        });
        submodules.chain(symlinks).collect()
    }
}

/// Exports the commit's tree into `dir`, which must not exist.
pub fn export(opened: &Opened, dir: &Path) -> Result<Exported, RebuildError> {
    let export = opened.source.export(&opened.commit, dir)?;
    let tree = opened.source.tree_id(&opened.commit)?;
    Ok(Exported { export, tree })
}

/// Replaces the export in `dir` with a clean checkout of the commit that has
/// `.git`, for a build that stamps VCS information.
pub fn checkout(opened: &Opened, dir: &Path) -> Result<Export, RebuildError> {
    std::fs::remove_dir_all(dir).map_err(|e| RebuildError::io("remove", dir, e))?;
    Ok(opened.source.checkout(&opened.commit, dir)?)
}
