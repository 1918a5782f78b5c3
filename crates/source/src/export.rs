//! Writing exactly one commit's tree into a new directory.
//!
//! Blobs are written streaming, checked against their object id with SHA-1.
//! A loose blob streams through libgit2 (`git_odb_open_rstream`, inflated in
//! small chunks). libgit2's pack backend has no read stream (libgit2 1.9,
//! `odb_pack.c` has no `readstream`), so a packed blob larger than
//! [`STREAM_PACKED_ABOVE`] is streamed from its pack by [`super::pack`] when
//! the pack stores it whole, which is how git stores big files (it does not
//! deltify files above `core.bigFileThreshold`, 512 MiB by default) and most
//! blobs. Other packed blobs are read whole through libgit2: small ones, and
//! deltified ones, whose size is read from the object header first
//! ([`git2::Odb::read_header`], which inflates nothing) and refused above
//! [`MAX_WHOLE_BLOB`] ([`SourceError::BlobTooLarge`]) instead of being held in
//! memory. Memory thus stays bounded by that limit for deltified blobs, and
//! does not grow with the size of any other blob.
//!
//! A tree is checked as it is written: two entries with one name, an entry
//! whose mode says tree but whose object is a blob (or the reverse) are
//! [`SourceError::MalformedTree`]; unsafe names [`SourceError::UnsafeEntry`].
//! Both are the commit's fault: input errors.

use std::collections::HashSet;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use super::pack::{Outcome, PackError, Packs};
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

/// The largest blob read whole: a deltified packed one, which neither libgit2
/// nor the export's own pack reader streams.
pub const MAX_WHOLE_BLOB: u64 = 256 << 20;

/// Packed blobs larger than this are streamed from their pack when it stores
/// them whole; smaller ones are read whole through libgit2 (faster than a
/// lookup in the pack indexes for each of a tree's many small files).
pub(crate) const STREAM_PACKED_ABOVE: u64 = 1 << 20;

/// The longest symlink target accepted (Linux's `PATH_MAX`).
const MAX_LINK: usize = 4096;

/// Exports the tree of `commit_id` from `repo` into `dest`, which must not exist.
pub fn export(repo: &git2::Repository, commit_id: &str, dest: &Path) -> Result<Export, SourceError> {
    export_bounded(repo, commit_id, dest, MAX_WHOLE_BLOB)
}

/// [`export`] with another limit for blobs read whole.
pub(crate) fn export_bounded(
    repo: &git2::Repository,
    commit_id: &str,
    dest: &Path,
    max_whole: u64,
) -> Result<Export, SourceError> {
    let object_err = |what: &str, e: git2::Error| SourceError::Object {
        commit: commit_id.to_string(),
        what: what.to_string(),
        message: e.message().to_string(),
    };
    let oid = git2::Oid::from_str(commit_id).map_err(|e| object_err("the commit id", e))?;
    let commit = repo.find_commit(oid).map_err(|e| object_err("the commit", e))?;
    let tree = commit.tree().map_err(|e| object_err("the root tree", e))?;
    let odb = repo.odb().map_err(|e| object_err("the object database", e))?;
    fs::create_dir(dest).map_err(|e| SourceError::io("create the export directory", dest, e))?;
    let mut out = Export { dir: dest.to_path_buf(), ..Export::default() };
    let ctx = Ctx { repo, odb: &odb, commit: commit_id, max_whole, packs: std::cell::OnceCell::new() };
    write_tree(&ctx, &tree, dest, "", &mut out)?;
    Ok(out)
}

struct Ctx<'a> {
    repo: &'a git2::Repository,
    odb: &'a git2::Odb<'a>,
    commit: &'a str,
    max_whole: u64,
    /// The repository's packs, listed at the first blob streamed from one.
    packs: std::cell::OnceCell<Packs>,
}

impl Ctx<'_> {
    fn malformed(&self, path: &str, reason: impl Into<String>) -> SourceError {
        SourceError::MalformedTree { commit: self.commit.to_string(), path: path.to_string(), reason: reason.into() }
    }

    fn object_err(&self, path: &str, e: &git2::Error) -> SourceError {
        SourceError::Object {
            commit: self.commit.to_string(),
            what: path.to_string(),
            message: e.message().to_string(),
        }
    }

    /// The object's size and type from its header, which must be `want`.
    fn header(&self, path: &str, id: git2::Oid, want: git2::ObjectType) -> Result<u64, SourceError> {
        let (size, kind) = self.odb.read_header(id).map_err(|e| self.object_err(path, &e))?;
        if kind != want {
            return Err(self.malformed(
                path,
                format!("its mode says {}, but object {id} is a {}", kind_name(want), kind_name(kind)),
            ));
        }
        Ok(size as u64)
    }

    /// Writes blob `id` (`size` bytes) into the new file `f`: streaming when
    /// the object is loose or (above [`STREAM_PACKED_ABOVE`]) stored whole in
    /// a pack, else whole when at most [`Ctx::max_whole`].
    fn write_blob(
        &self,
        path: &str,
        id: git2::Oid,
        size: u64,
        f: &mut fs::File,
        target: &Path,
    ) -> Result<(), SourceError> {
        let write_err = |e| SourceError::io("write", target, e);
        if let Ok((mut reader, len, _)) = self.odb.reader(id) {
            use sha1::Digest as _;
            let mut sha1 = sha1::Sha1::new();
            sha1.update(format!("blob {len}\0").as_bytes());
            let mut buf = vec![0u8; 64 << 10];
            let mut written: u64 = 0;
            loop {
                let n = reader.read(&mut buf).map_err(|_| SourceError::Object {
                    commit: self.commit.to_string(),
                    what: path.to_string(),
                    message: format!("reading object {id} failed"),
                })?;
                if n == 0 {
                    break;
                }
                sha1.update(&buf[..n]);
                f.write_all(&buf[..n]).map_err(write_err)?;
                written += n as u64;
            }
            if written != len as u64 || sha1.finalize().as_slice() != id.as_bytes() {
                return Err(SourceError::Object {
                    commit: self.commit.to_string(),
                    what: path.to_string(),
                    message: format!("object {id} is corrupt: its content does not hash to its id"),
                });
            }
            return Ok(());
        }
        if size > self.max_whole.min(STREAM_PACKED_ABOVE) {
            let packs = self.packs.get_or_init(|| Packs::scan(self.repo));
            match packs.stream_blob(id, size, f) {
                Ok(Outcome::Streamed) => return Ok(()),
                Ok(Outcome::Deltified | Outcome::NotFound) => {}
                Err(e @ PackError::Corrupt { .. }) => {
                    return Err(SourceError::Object {
                        commit: self.commit.to_string(),
                        what: path.to_string(),
                        message: e.to_string(),
                    })
                }
                Err(PackError::Write(e)) => return Err(write_err(e)),
            }
        }
        if size > self.max_whole {
            return Err(SourceError::BlobTooLarge {
                commit: self.commit.to_string(),
                path: path.to_string(),
                size,
                limit: self.max_whole,
            });
        }
        let blob = self.repo.find_blob(id).map_err(|e| self.object_err(path, &e))?;
        f.write_all(blob.content()).map_err(write_err)
    }
}

fn kind_name(k: git2::ObjectType) -> &'static str {
    match k {
        git2::ObjectType::Tree => "tree",
        git2::ObjectType::Blob => "blob",
        git2::ObjectType::Commit => "commit",
        git2::ObjectType::Tag => "tag",
        git2::ObjectType::Any => "object",
    }
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
    ctx: &Ctx<'_>,
    tree: &git2::Tree<'_>,
    dir: &Path,
    prefix: &str,
    out: &mut Export,
) -> Result<(), SourceError> {
    let commit = ctx.commit;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
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
        if !seen.insert(name.to_vec()) {
            return Err(ctx.malformed(&path, "the tree has more than one entry with this name"));
        }
        let target = dir.join(name_str);
        match entry.filemode() {
            0o040000 => {
                ctx.header(&path, entry.id(), git2::ObjectType::Tree)?;
                fs::create_dir(&target).map_err(|e| SourceError::io("create directory", &target, e))?;
                let sub = ctx.repo.find_tree(entry.id()).map_err(|e| ctx.object_err(&path, &e))?;
                write_tree(ctx, &sub, &target, &path, out)?;
            }
            mode @ (0o100644 | 0o100755 | 0o100664) => {
                let size = ctx.header(&path, entry.id(), git2::ObjectType::Blob)?;
                let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
                // create_new is O_CREAT|O_EXCL: it never follows a symlink.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(perm)
                    .open(&target)
                    .map_err(|e| SourceError::io("create", &target, e))?;
                ctx.write_blob(&path, entry.id(), size, &mut f, &target)?;
                out.files += 1;
                out.bytes += size;
            }
            0o120000 => {
                let size = ctx.header(&path, entry.id(), git2::ObjectType::Blob)?;
                if size > MAX_LINK as u64 {
                    return Err(SourceError::UnsafeEntry {
                        commit: commit.to_string(),
                        path,
                        reason: format!("a symlink whose target is {size} bytes, more than {MAX_LINK}"),
                    });
                }
                let blob = ctx.repo.find_blob(entry.id()).map_err(|e| ctx.object_err(&path, &e))?;
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
    use super::*;

    fn repo() -> (tempfile::TempDir, git2::Repository) {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = git2::Repository::init_bare(t.path().join("r.git")).unwrap_or_else(|e| panic!("{e}"));
        (t, r)
    }

    /// A raw tree object from `(mode, name, id)` entries, unchecked.
    fn raw_tree(r: &git2::Repository, entries: &[(&str, &str, git2::Oid)]) -> git2::Oid {
        let mut data = Vec::new();
        for (mode, name, id) in entries {
            data.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            data.extend_from_slice(id.as_bytes());
        }
        r.odb().and_then(|o| o.write(git2::ObjectType::Tree, &data)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A raw commit of `tree`, unchecked.
    fn raw_commit(r: &git2::Repository, tree: git2::Oid) -> String {
        let text = format!(
            "tree {tree}\nauthor t <t@example.invalid> 0 +0000\ncommitter t <t@example.invalid> 0 +0000\n\nm\n"
        );
        r.odb()
            .and_then(|o| o.write(git2::ObjectType::Commit, text.as_bytes()))
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    }

    #[test]
    fn loose_blobs_and_whole_packed_ones_stream() {
        use std::os::unix::fs::PermissionsExt as _;
        let (t, r) = repo();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let blob = r.blob(&data).unwrap_or_else(|e| panic!("{e}"));
        let small = r.blob(b"small\n").unwrap_or_else(|e| panic!("{e}"));
        let tree = raw_tree(&r, &[("100644", "big", blob), ("100755", "big-tool", blob), ("100644", "small", small)]);
        let commit = raw_commit(&r, tree);
        let mode = |p: &str| fs::metadata(t.path().join(p)).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        // Loose: streamed whatever the limit for whole reads.
        let out = export_bounded(&r, &commit, &t.path().join("loose"), 16).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs::read(t.path().join("loose/big")).unwrap_or_default(), data);
        assert_eq!((out.files, out.bytes), (3, 400_006));
        // Packed whole (as `git repack` stores a blob with nothing like it):
        // streamed from the pack, above the limit for whole reads too.
        let git = |args: &[&str]| super::super::pack::tests::git(r.path(), args);
        git(&["update-ref", "refs/heads/main", &commit]);
        git(&["repack", "-a", "-d", "-q"]);
        git(&["prune-packed"]);
        let r = git2::Repository::open_bare(r.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.odb().is_ok_and(|o| o.reader(blob).is_err()), "the blob is packed");
        for (dir, limit) in [("packed", 100_000), ("packed-whole", MAX_WHOLE_BLOB)] {
            let out = export_bounded(&r, &commit, &t.path().join(dir), limit).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((out.files, out.bytes), (3, 400_006), "{dir}");
            for file in ["big", "big-tool"] {
                assert!(fs::read(t.path().join(dir).join(file)).unwrap_or_default() == data, "{dir}/{file}");
            }
            assert_eq!(fs::read(t.path().join(dir).join("small")).unwrap_or_default(), b"small\n");
            assert_eq!(
                [mode(&format!("{dir}/big")), mode(&format!("{dir}/big-tool")), mode(&format!("{dir}/small"))],
                [0o644, 0o755, 0o644],
                "{dir}"
            );
        }
    }

    #[test]
    fn deltified_packed_blobs_are_read_whole_and_bounded() {
        let a = super::super::pack::tests::noise(150_000, 3);
        let mut b = a.clone();
        b[70_000..70_100].fill(0);
        b.extend_from_slice(&super::super::pack::tests::noise(1000, 4));
        let fx = super::super::pack::tests::Fixture::new(&[&a, &b], 0o100755);
        let r = fx.repo();
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut deltas = 0;
        for (i, data) in [&a, &b].into_iter().enumerate() {
            let (commit, size) = (&fx.commits[i], data.len() as u64);
            let streamed = export_bounded(&r, commit, &t.path().join(format!("s{i}")), 100_000);
            if fx.object(fx.blobs[i]).delta {
                deltas += 1;
                match streamed {
                    Err(e @ SourceError::BlobTooLarge { limit: 100_000, .. }) => {
                        assert!(e.is_input() && e.to_string().contains("\"big\""), "{e}");
                        assert!(matches!(e, SourceError::BlobTooLarge { size: s, .. } if s == size), "{e}");
                    }
                    other => panic!("blob {i}, a delta: {other:?}"),
                }
                // Within the limit: read whole through libgit2.
                export_bounded(&r, commit, &t.path().join(format!("w{i}")), size).unwrap_or_else(|e| panic!("{e}"));
                assert!(fs::read(t.path().join(format!("w{i}/big"))).unwrap_or_default() == *data, "blob {i}");
            } else {
                streamed.unwrap_or_else(|e| panic!("blob {i}, whole: {e}"));
                assert!(fs::read(t.path().join(format!("s{i}/big"))).unwrap_or_default() == *data, "blob {i}");
            }
        }
        assert_eq!(deltas, 1, "{:?}", fx.objects());
    }

    #[test]
    fn a_corrupt_packed_blob_is_an_object_error() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let fx = super::super::pack::tests::Fixture::new(&[&data], 0o100644);
        let entry = fx.object(fx.blobs[0]);
        let pack_path = fx.idx().with_extension("pack");
        let mut pack = fs::read(&pack_path).unwrap_or_default();
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // A byte in the middle of the blob's zlib data (after its 3-byte header).
        pack[(entry.offset + 3 + (entry.len - 3) / 2) as usize] ^= 0x55;
        super::super::pack::tests::rewrite(&pack_path, &pack);
        match export_bounded(&fx.repo(), &fx.commits[0], &t.path().join("out"), 100_000) {
            Err(e @ SourceError::Object { .. }) => {
                assert!(!e.is_input() && e.to_string().contains("is corrupt in pack"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_trees_are_input_errors() {
        let (t, r) = repo();
        let blob = r.blob(b"x\n").unwrap_or_else(|e| panic!("{e}"));
        let sub = raw_tree(&r, &[("100644", "f", blob)]);
        for (i, (entries, want)) in [
            (vec![("100644", "a", blob), ("100644", "a", blob)], "more than one entry with this name"),
            (vec![("40000", "a", sub), ("100644", "a", blob)], "more than one entry with this name"),
            (vec![("100644", "a", sub)], "its mode says blob, but object"),
            (vec![("120000", "a", sub)], "its mode says blob, but object"),
            (vec![("40000", "a", blob)], "its mode says tree, but object"),
        ]
        .into_iter()
        .enumerate()
        {
            let commit = raw_commit(&r, raw_tree(&r, &entries));
            match export(&r, &commit, &t.path().join(format!("out{i}"))) {
                Err(e @ SourceError::MalformedTree { .. }) => {
                    assert!(e.is_input() && e.to_string().contains(want), "{entries:?}: {e}")
                }
                other => panic!("{entries:?}: {other:?}"),
            }
        }
    }

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
