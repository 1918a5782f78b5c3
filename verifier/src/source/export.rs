//! Writing exactly one commit's tree into a new directory.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use super::SourceError;

/// A symlink of the tree, kept as a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    /// Its path in the tree.
    pub path: String,
    /// Its target, as stored.
    pub target: String,
    /// Whether the target leaves the exported tree (absolute, or `..` above the root).
    pub escapes: bool,
}

/// A submodule (gitlink) of the tree: exported as an empty directory, as
/// `git checkout` leaves it without `--recurse-submodules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submodule {
    /// Its path in the tree.
    pub path: String,
    /// The commit it pins.
    pub commit: String,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// The directory written.
    pub dir: PathBuf,
    /// Regular files written.
    pub files: u64,
    /// Bytes of regular files written.
    pub bytes: u64,
    /// Symlinks, in tree order.
    pub symlinks: Vec<Symlink>,
    /// Submodules, in tree order; their content is not part of the export.
    pub submodules: Vec<Submodule>,
}

/// Exports the tree of `commit_id` from `repo` into `dest`, which must not exist.
pub fn export(repo: &git2::Repository, commit_id: &str, dest: &Path) -> Result<Export, SourceError> {
    let object_err = |what: &str, e: git2::Error| SourceError::Object {
        commit: commit_id.to_string(),
        what: what.to_string(),
        message: e.message().to_string(),
    };
    let oid = git2::Oid::from_str(commit_id).map_err(|e| object_err("the commit id", e))?;
    let commit = repo.find_commit(oid).map_err(|e| object_err("the commit", e))?;
    let tree = commit.tree().map_err(|e| object_err("the root tree", e))?;
    fs::create_dir(dest).map_err(|e| SourceError::io("create the export directory", dest, e))?;
    let mut out = Export { dir: dest.to_path_buf(), ..Export::default() };
    write_tree(repo, commit_id, &tree, dest, "", &mut out)?;
    Ok(out)
}

fn check_name(commit: &str, path: &str, name: &[u8]) -> Result<(), SourceError> {
    let reason = if name.is_empty() || name == b"." || name == b".." {
        Some("not a file name")
    } else if name.contains(&b'/') || name.contains(&0) {
        Some("contains a slash or NUL")
    } else if name.eq_ignore_ascii_case(b".git") {
        Some("a .git entry would smuggle repository metadata into the build")
    } else {
        None
    };
    match reason {
        Some(reason) => {
            Err(SourceError::UnsafeEntry { commit: commit.to_string(), path: path.to_string(), reason: reason.into() })
        }
        None => Ok(()),
    }
}

/// Whether a symlink at `path` (in the tree) pointing at `target` resolves outside the tree.
fn escapes(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth: i64 = path.matches('/').count() as i64;
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn write_tree(
    repo: &git2::Repository,
    commit: &str,
    tree: &git2::Tree<'_>,
    dir: &Path,
    prefix: &str,
    out: &mut Export,
) -> Result<(), SourceError> {
    for entry in tree.iter() {
        let name = entry.name_bytes();
        let display = String::from_utf8_lossy(name);
        let path = if prefix.is_empty() { display.to_string() } else { format!("{prefix}/{display}") };
        check_name(commit, &path, name)?;
        let Ok(name_str) = std::str::from_utf8(name) else {
            return Err(SourceError::UnsafeEntry {
                commit: commit.to_string(),
                path,
                reason: "the name is not UTF-8".into(),
            });
        };
        let target = dir.join(name_str);
        let object_err = |e: git2::Error| SourceError::Object {
            commit: commit.to_string(),
            what: path.clone(),
            message: e.message().to_string(),
        };
        match entry.filemode() {
            0o040000 => {
                fs::create_dir(&target).map_err(|e| SourceError::io("create directory", &target, e))?;
                let sub = repo.find_tree(entry.id()).map_err(object_err)?;
                write_tree(repo, commit, &sub, &target, &path, out)?;
            }
            mode @ (0o100644 | 0o100755 | 0o100664) => {
                let blob = repo.find_blob(entry.id()).map_err(object_err)?;
                let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
                // create_new is O_CREAT|O_EXCL: it never follows a symlink.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(perm)
                    .open(&target)
                    .map_err(|e| SourceError::io("create", &target, e))?;
                f.write_all(blob.content()).map_err(|e| SourceError::io("write", &target, e))?;
                out.files += 1;
                out.bytes += blob.content().len() as u64;
            }
            0o120000 => {
                let blob = repo.find_blob(entry.id()).map_err(object_err)?;
                let link = String::from_utf8_lossy(blob.content()).into_owned();
                if link.is_empty() || link.contains('\0') {
                    return Err(SourceError::UnsafeEntry {
                        commit: commit.to_string(),
                        path,
                        reason: "a symlink with an empty or NUL-containing target".into(),
                    });
                }
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| SourceError::io("create symlink", &target, e))?;
                let escapes = escapes(&path, &link);
                out.symlinks.push(Symlink { path, target: link, escapes });
            }
            0o160000 => {
                fs::create_dir(&target).map_err(|e| SourceError::io("create directory", &target, e))?;
                out.submodules.push(Submodule { path, commit: entry.id().to_string() });
            }
            mode => {
                return Err(SourceError::UnsafeEntry {
                    commit: commit.to_string(),
                    path,
                    reason: format!("unknown file mode {mode:o}"),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escapes;

    #[test]
    fn symlink_escape() {
        assert!(escapes("a", "/etc/passwd"));
        assert!(escapes("a", "../x"));
        assert!(escapes("d/a", "../../x"));
        assert!(!escapes("d/a", "../x"));
        assert!(!escapes("d/a", "b/../c"));
        assert!(escapes("d/a", "b/../../../c"));
    }
}
