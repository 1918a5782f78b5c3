//! The source stage: the exact tree of one Git commit, and what is known about it.
//!
//! What goes in: a location — a local repository (a working tree or a bare
//! repository) or a clone URL — and a revision (a full or abbreviated commit
//! id, a tag, a branch, `HEAD`). What comes out: a [`Source`] that resolves the
//! revision to a [`ResolvedCommit`] (full id, commit time as Go's `vcs.time`
//! writes it, the tags that point at it, whether it is the checkout's `HEAD`),
//! tells whether a local working tree is dirty ([`Source::dirty_paths`]), and
//! [`export`]s exactly that commit's tree into a new directory.
//! [`Source::resolve_commit`] tells which commit a revision names now without a clone
//! (git2 for a local repository, an ls-remote for a URL).
//!
//! Clones: every URL is fetched by libgit2 (vendored, with its https and ssh
//! transports over OpenSSL and a bundled libssh2, see `.cargo/config.toml`); there is no
//! `git` command and no fallback to one. Accepted: `file://`, `https://`,
//! `http://`, `ssh://` (and scp-like `user@host:path`), `git://`; anything else
//! (`ext::`, `fd::`, other schemes) is refused before anything runs.
//!   - ssh authenticates with the ssh agent (`SSH_AUTH_SOCK`) as the URL's user
//!     (else `$USER`). The server's host key must be listed in a known_hosts
//!     file ([`CloneOptions::known_hosts`]: `$REPROVE_SSH_KNOWN_HOSTS` when set,
//!     else `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`); an unknown,
//!     changed or revoked key is refused ([`SourceError::HostKey`], naming the
//!     host and the key's SHA256 fingerprint), never accepted on first use.
//!   - https trusts what OpenSSL trusts: the system store, and the files named
//!     by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (a private CA). An
//!     untrusted certificate is [`SourceError::Certificate`]. No credentials
//!     are sent: a server that asks for them is [`SourceError::Auth`].
//!   - The clone has a deadline ([`CloneOptions::timeout`]).
//!
//! Every clone is a bare repository in a temporary directory below a directory
//! the caller owns, removed when the [`Source`] is dropped.
//!
//! What it is not: it never checks out into the user's working tree, never
//! writes into the repository, and the export never contains `.git`.
//!
//! **Invariant:** the export is written only below the destination directory:
//! every directory is created by the export itself, every file with
//! `O_CREAT|O_EXCL` (which does not follow symlinks), and symlinks from the
//! tree are created as symlinks and never followed. Tree entries named `.`,
//! `..`, `.git`, or containing `/` or NUL are refused.
//!
//! # Design notes
//!
//! One Git commit, exactly. `Source::open` opens a local repository
//! or clones a URL into a temporary directory it owns, all with libgit2
//! (vendored; its https and ssh transports link OpenSSL and libssh2 statically,
//! see `.cargo/config.toml`; there is no `git` command and no fallback to one). `remote.rs` is the clone: `file://`,
//! `https://`, `http://`, `ssh://`/scp-like, `git://`, under a deadline
//! (`CloneOptions::timeout`; every callback checks it and a stalled transfer is
//! abandoned on a worker thread). ssh authenticates with the agent
//! (`SSH_AUTH_SOCK`) as the URL's user; `known_hosts.rs` checks the host key
//! against `$REPROVE_SSH_KNOWN_HOSTS`, else `~/.ssh/known_hosts` and
//! `/etc/ssh/ssh_known_hosts` (patterns, `[host]:port`, hashed names,
//! `@revoked`). https trusts OpenSSL's store plus `SSL_CERT_FILE`/`SSL_CERT_DIR`
//! and sends no credentials. A refused host key or certificate is
//! `SourceError::HostKey`/`Certificate` (`is_security`: class `security`,
//! exit 3, codes `ssh-host-key-unknown`, `ssh-host-key-refused`,
//! `tls-certificate-untrusted`); refused credentials are `Auth` and network
//! failures `Clone` (infrastructure, exit 3). `resolve` turns a commit id, tag or branch into the full id,
//! commit time (Go's `vcs.time` format) and tags; `dirty_paths` lists what a
//! local working tree changed; `export` writes the commit's tree into a new
//! directory: no `.git`, modes 0644/0755, symlinks kept as symlinks and flagged
//! when they leave the tree, submodules reported (an empty directory, as git
//! leaves them). `checkout` (for VCS stamping only) clones into a new directory,
//! tags included, `HEAD` detached at the commit, after the same tree checks as
//! `export`. What it is not: it never checks out into the user's tree or writes
//! into a repository. Blobs are written streaming, checked against the object
//! id with SHA-1: loose ones through libgit2 (`git_odb_open_rstream`); packed
//! ones above 1 MiB that their pack stores whole (as git stores big files) by
//! `source/pack.rs`, which reads the `.idx` (version 2) and inflates the pack
//! entry in chunks, because libgit2's pack backend cannot stream. A deltified
//! packed blob (and a small one) is read whole through libgit2, and refused
//! (`BlobTooLarge`) when its header size is above `MAX_WHOLE_BLOB` (256 MiB).
//! Two entries of one name, or a mode that disagrees with the object's type,
//! are `MalformedTree`; with `UnsafeEntry` they are input errors (exit 2,
//! codes `malformed-tree`, `blob-too-large`, `unsafe-tree`).
//!
//! **Invariant:** the export writes only below its new destination directory:
//! every directory is created by it, files with `O_CREAT|O_EXCL` (no symlink is
//! followed), and tree entries named `.`, `..`, `.git` or containing `/` or NUL
//! are refused. Clones use only the ordinary transports (file, https, http,
//! ssh, git): never `ext::` or other helpers.
//!
//! **Invariant:** an ssh host key is accepted only when a known_hosts line
//! lists it for that host (never on first use), an https certificate only when
//! OpenSSL verifies it; refusals name the host and the key's SHA256 fingerprint.
#![deny(missing_docs)]

mod export;
mod known_hosts;
mod pack;
mod remote;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use export::{export, Export, Submodule, Symlink, MAX_WHOLE_BLOB};

/// Everything that can go wrong with the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The location is neither an existing directory nor a URL reprove can clone.
    #[error("source {location:?}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// libgit2 could not open the repository.
    #[error("cannot open the Git repository {path}: {message}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// libgit2's message.
        message: String,
    },
    /// The clone failed: network, server, timeout.
    #[error("cannot clone {url}: {message}")]
    Clone {
        /// The URL.
        url: String,
        /// What failed, with libgit2's own words.
        message: String,
    },
    /// The ssh server's host key is not one a known_hosts file lists for it.
    #[error("refusing to clone {url}: the ssh host key of {host} ({key_type} {fingerprint}) {problem}")]
    HostKey {
        /// The URL.
        url: String,
        /// The host as known_hosts names it: `host`, or `[host]:port`.
        host: String,
        /// The key's type (`ssh-ed25519`…).
        key_type: String,
        /// `SHA256:…`, as `ssh-keygen -l` prints it.
        fingerprint: String,
        /// What is wrong with it.
        problem: Box<HostKeyProblem>,
    },
    /// The https server's certificate is not trusted (or not for that host).
    #[error("refusing to clone {url}: the TLS certificate of {host} is not trusted: {message}; for a private CA, set SSL_CERT_FILE to its PEM file")]
    Certificate {
        /// The URL.
        url: String,
        /// The host (and port).
        host: String,
        /// libgit2's (OpenSSL's) words.
        message: String,
    },
    /// The server refused the credentials, or asked for some reprove does not send.
    #[error("cannot clone {url}: authentication to {host}{} failed: {message}", user.as_ref().map(|u| format!(" as {u}")).unwrap_or_default())]
    Auth {
        /// The URL.
        url: String,
        /// The host (and port).
        host: String,
        /// The user, when there is one.
        user: Option<String>,
        /// What failed.
        message: String,
    },
    /// The revision does not name a commit.
    #[error("revision {rev:?} does not name a commit in {location}: {message}")]
    Revision {
        /// The revision as given.
        rev: String,
        /// The source location.
        location: String,
        /// libgit2's message.
        message: String,
    },
    /// The working tree status could not be read.
    #[error("cannot read the status of the working tree {path}: {message}")]
    Status {
        /// The working tree.
        path: PathBuf,
        /// libgit2's message.
        message: String,
    },
    /// A tree entry cannot be exported safely.
    #[error("commit {commit}: tree entry {path:?} cannot be exported: {reason}")]
    UnsafeEntry {
        /// The commit.
        commit: String,
        /// The entry's path in the tree.
        path: String,
        /// Why.
        reason: String,
    },
    /// The commit's tree is malformed: two entries with one name, an entry
    /// whose mode says tree but whose object is a blob, or the reverse.
    #[error("commit {commit}: tree entry {path:?} is malformed: {reason}")]
    MalformedTree {
        /// The commit.
        commit: String,
        /// The entry's path in the tree.
        path: String,
        /// Why.
        reason: String,
    },
    /// A blob that can only be read whole (deltified in a pack) is larger than the limit.
    #[error("commit {commit}: {path:?} is a packed blob of {size} bytes that cannot be streamed from its pack (a delta, or a pack not readable here), more than the {limit} bytes read whole (loose blobs and blobs a pack stores whole are streamed)")]
    BlobTooLarge {
        /// The commit.
        commit: String,
        /// The entry's path in the tree.
        path: String,
        /// The blob's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The repository's objects could not be read.
    #[error("commit {commit}: reading {what}: {message}")]
    Object {
        /// The commit.
        commit: String,
        /// What was read.
        what: String,
        /// libgit2's message.
        message: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What reprove was doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether the error is the user's input (exit 2) rather than the
    /// machine's (exit 3). A clone that fails is infrastructure (network,
    /// credentials); a location or revision that does not exist is input.
    /// A refused host key or certificate is neither: see [`SourceError::is_security`].
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            SourceError::Location { .. }
                | SourceError::Open { .. }
                | SourceError::Revision { .. }
                | SourceError::UnsafeEntry { .. }
                | SourceError::MalformedTree { .. }
                | SourceError::BlobTooLarge { .. }
        )
    }

    /// Whether the error is a security refusal (exit 3, class `security`): an
    /// ssh host key that known_hosts does not vouch for, or an untrusted TLS certificate.
    pub fn is_security(&self) -> bool {
        matches!(self, SourceError::HostKey { .. } | SourceError::Certificate { .. })
    }

    fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> SourceError {
        SourceError::Io { action, path: path.into(), source }
    }
}

/// Why an ssh host key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostKeyProblem {
    /// No known_hosts line for the host holds a key of this type.
    #[error("is not in known_hosts ({}){}; check the fingerprint with the server's owner, then add the key (`{keyscan}`) to one of those files or name a file that has it in REPROVE_SSH_KNOWN_HOSTS", display_files(files), other_types_note(other_types))]
    Unknown {
        /// The files read.
        files: Vec<PathBuf>,
        /// Key types that lines for the host do hold.
        other_types: Vec<String>,
        /// The command that prints the server's keys in known_hosts form.
        keyscan: String,
    },
    /// A known_hosts line for the host holds another key of the same type.
    #[error(
        "does not match the key in {at} ({expected}): the host key changed, or someone is intercepting the connection"
    )]
    Mismatch {
        /// `file:line` of the line.
        at: String,
        /// The fingerprint of the listed key.
        expected: String,
    },
    /// A known_hosts `@revoked` line holds this key.
    #[error("is revoked ({at})")]
    Revoked {
        /// `file:line` of the line.
        at: String,
    },
    /// The key or the known_hosts files could not be read.
    #[error("cannot be checked: {reason}")]
    Unreadable {
        /// Why.
        reason: String,
    },
}

fn display_files(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "no files".into();
    }
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn other_types_note(types: &[String]) -> String {
    if types.is_empty() {
        String::new()
    } else {
        format!(", which lists only {} keys for it", types.join(", "))
    }
}

/// How URLs are cloned.
#[derive(Debug, Clone)]
pub struct CloneOptions {
    /// The deadline of the whole clone.
    pub timeout: Duration,
    /// The known_hosts files an ssh host key is looked up in, in order.
    pub known_hosts: Vec<PathBuf>,
}

impl CloneOptions {
    /// [`CLONE_TIMEOUT`], and the known_hosts file named by
    /// `$REPROVE_SSH_KNOWN_HOSTS` when it is set and not empty, else
    /// `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts` (as `ssh` reads them).
    pub fn from_env() -> CloneOptions {
        let known_hosts = match std::env::var_os("REPROVE_SSH_KNOWN_HOSTS").filter(|v| !v.is_empty()) {
            Some(file) => vec![PathBuf::from(file)],
            None => known_hosts::default_files(),
        };
        CloneOptions { timeout: CLONE_TIMEOUT, known_hosts }
    }
}

/// A commit a revision resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCommit {
    /// The revision as given.
    pub rev: String,
    /// The full commit id (hex).
    pub id: String,
    /// The committer time, Unix seconds.
    pub time: i64,
    /// The committer time as Go's `vcs.time` writes it (`2006-01-02T15:04:05Z`, UTC).
    pub time_rfc3339: String,
    /// Tags that point at the commit (peeled), sorted.
    pub tags: Vec<String>,
    /// Whether the commit is `HEAD` of a local working tree.
    pub is_worktree_head: bool,
}

/// An opened repository: a local one, or a clone that lives as long as this value.
pub struct Source {
    repo: git2::Repository,
    uri: String,
    location: String,
    /// A clone's temporary directory, removed on drop.
    _clone: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("uri", &self.uri).field("location", &self.location).finish_non_exhaustive()
    }
}

/// How long a clone of a URL may take.
pub const CLONE_TIMEOUT: Duration = Duration::from_secs(900);

/// Only the ordinary transports: never `ext::`, `fd::` or another helper.
fn check_url(url: &str) -> Result<(), SourceError> {
    let scheme_ok = ["file://", "https://", "http://", "ssh://", "git://"].iter().any(|p| url.starts_with(p))
        || (!url.contains("://") && !url.contains("::") && remote::ssh_target(url).is_some());
    if !scheme_ok || url.contains(['\n', '\0']) || url.starts_with('-') {
        return Err(SourceError::Location {
            location: url.to_string(),
            reason: "only file://, https://, http://, ssh://, git:// and user@host:path URLs are cloned".into(),
        });
    }
    Ok(())
}

/// `rev` in lowercase when it is a full (SHA-1) commit id.
fn full_commit_id(rev: &str) -> Option<String> {
    (rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())).then(|| rev.to_ascii_lowercase())
}

fn check_rev(location: &str, rev: &str) -> Result<(), SourceError> {
    if rev.is_empty() || rev.starts_with('-') || rev.contains(['\n', '\0']) {
        return Err(SourceError::Revision {
            rev: rev.to_string(),
            location: location.to_string(),
            message: "expected a commit id, a tag or a branch".into(),
        });
    }
    Ok(())
}

/// Whether `location` is a URL (or scp-like `user@host:path`) rather than a path.
pub fn is_url(location: &str) -> bool {
    if location.contains("://") {
        return true;
    }
    // scp-like syntax, as git reads it: a colon before any slash.
    match (location.find(':'), location.find('/')) {
        (Some(c), Some(s)) => c < s && c > 1,
        (Some(c), None) => c > 1,
        _ => false,
    }
}

impl Source {
    /// Opens a local repository, or clones a URL into a temporary directory
    /// below `work_dir` with [`CloneOptions::from_env`].
    pub fn open(location: &str, work_dir: &Path) -> Result<Source, SourceError> {
        Source::open_with(location, work_dir, &CloneOptions::from_env())
    }

    /// [`Source::open`], cloning with `opts`.
    pub fn open_with(location: &str, work_dir: &Path, opts: &CloneOptions) -> Result<Source, SourceError> {
        if location.is_empty() || location.starts_with('-') {
            return Err(SourceError::Location {
                location: location.to_string(),
                reason: "expected a repository directory or a clone URL".into(),
            });
        }
        if is_url(location) {
            return Source::clone(location, work_dir, opts);
        }
        let path = Path::new(location);
        if !path.is_dir() {
            return Err(SourceError::Location {
                location: location.to_string(),
                reason: "no such directory (and not a URL)".into(),
            });
        }
        let abs = std::path::absolute(path).map_err(|e| SourceError::io("resolve", path, e))?;
        let repo = git2::Repository::open(&abs)
            .map_err(|e| SourceError::Open { path: abs.clone(), message: e.message().to_string() })?;
        let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
        let uri = format!("file://{}", root.display().to_string().trim_end_matches('/'));
        Ok(Source { repo, uri, location: location.to_string(), _clone: None })
    }

    /// The tags of the repository at `url` and the commit each names (annotated tags
    /// peeled), without cloning: `git ls-remote --tags` over the transports, with the
    /// deadline, the credential rules and the host checks of a clone.
    pub fn list_tags(url: &str, opts: &CloneOptions) -> Result<Vec<(String, String)>, SourceError> {
        check_url(url)?;
        remote::list_tags(url, opts)
    }

    /// The commit `rev` names at `url` now, without cloning: an ls-remote (`HEAD`,
    /// `refs/…`, else the tag, peeled, else the branch of that name) with the transports,
    /// the deadline, the credential rules and the host checks of a clone. A full commit id
    /// is not looked up; an abbreviated one cannot be resolved this way.
    pub fn resolve_remote(url: &str, rev: &str, opts: &CloneOptions) -> Result<String, SourceError> {
        check_url(url)?;
        check_rev(url, rev)?;
        if let Some(id) = full_commit_id(rev) {
            return Ok(id);
        }
        remote::resolve(url, rev, opts)
    }

    /// The commit `rev` names in `location` now, reading no tree and writing nothing: a
    /// full commit id (40 hexadecimal digits) as is; in a local repository, what
    /// [`Source::resolve`] finds; at a URL, [`Source::resolve_remote`].
    pub fn resolve_commit(location: &str, rev: &str, opts: &CloneOptions) -> Result<String, SourceError> {
        check_rev(location, rev)?;
        if let Some(id) = full_commit_id(rev) {
            return Ok(id);
        }
        if is_url(location) {
            return Source::resolve_remote(location, rev, opts);
        }
        // A local repository is only opened: no clone, so no work directory is needed.
        let source = Source::open_with(location, Path::new("."), opts)?;
        source.resolve(rev).map(|c| c.id)
    }

    fn clone(url: &str, work_dir: &Path, opts: &CloneOptions) -> Result<Source, SourceError> {
        check_url(url)?;
        std::fs::create_dir_all(work_dir).map_err(|e| SourceError::io("create", work_dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix("clone-")
            .tempdir_in(work_dir)
            .map_err(|e| SourceError::io("create a temporary directory in", work_dir, e))?;
        let dir = tmp.path().join("repo.git");
        let (repo, tmp) = remote::clone(url, tmp, dir, opts)?;
        Ok(Source { repo, uri: url.to_string(), location: url.to_string(), _clone: Some(tmp) })
    }

    /// The source URI for reports: the clone URL, or `file://` and the absolute
    /// path of a local repository.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The working tree of a local checkout; `None` for bare repositories and clones.
    pub fn worktree(&self) -> Option<&Path> {
        if self._clone.is_some() {
            return None;
        }
        self.repo.workdir()
    }

    /// Resolves `rev` to a commit.
    pub fn resolve(&self, rev: &str) -> Result<ResolvedCommit, SourceError> {
        let fail =
            |message: String| SourceError::Revision { rev: rev.to_string(), location: self.location.clone(), message };
        if rev.is_empty() || rev.starts_with('-') {
            return Err(fail("expected a commit id, a tag or a branch".into()));
        }
        let commit = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| fail(e.message().to_string()))?;
        let id = commit.id();
        let time = commit.committer().when().seconds();
        let time_rfc3339 = stdx::time::format_rfc3339(time.max(0));
        let mut tags = Vec::new();
        if let Ok(names) = self.repo.tag_names(None) {
            for name in names.iter().flatten() {
                let target = self
                    .repo
                    .revparse_single(&format!("refs/tags/{name}"))
                    .and_then(|o| o.peel_to_commit())
                    .map(|c| c.id());
                if target.is_ok_and(|t| t == id) {
                    tags.push(name.to_string());
                }
            }
        }
        tags.sort();
        let is_worktree_head = self.worktree().is_some()
            && self.repo.head().ok().and_then(|h| h.peel_to_commit().ok()).is_some_and(|c| c.id() == id);
        Ok(ResolvedCommit { rev: rev.to_string(), id: id.to_string(), time, time_rfc3339, tags, is_worktree_head })
    }

    /// The id of `commit`'s tree: it names the content exported, whatever the
    /// repository or the commit's metadata.
    pub fn tree_id(&self, commit: &ResolvedCommit) -> Result<String, SourceError> {
        let fail = |message: String| SourceError::Revision {
            rev: commit.rev.clone(),
            location: self.location.clone(),
            message,
        };
        let id = git2::Oid::from_str(&commit.id).map_err(|e| fail(e.message().to_string()))?;
        let found = self.repo.find_commit(id).map_err(|e| fail(e.message().to_string()))?;
        Ok(found.tree_id().to_string())
    }

    /// Paths of a local working tree that differ from `HEAD`: modified, staged,
    /// deleted, renamed and untracked files (ignored files do not count, as for
    /// Go's `vcs.modified`). Submodules are not looked into: the export
    /// reports them. Empty for bare repositories and clones.
    pub fn dirty_paths(&self) -> Result<Vec<String>, SourceError> {
        let Some(workdir) = self.worktree() else { return Ok(Vec::new()) };
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false).exclude_submodules(true);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| SourceError::Status { path: workdir.to_path_buf(), message: e.message().to_string() })?;
        let mut paths: Vec<String> = statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT && !s.status().contains(git2::Status::IGNORED))
            .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// Exports the tree of `commit` into `dest`, which must not exist yet.
    pub fn export(&self, commit: &ResolvedCommit, dest: &Path) -> Result<Export, SourceError> {
        export::export(&self.repo, &commit.id, dest)
    }

    /// A clean checkout of `commit` with its `.git` (for VCS stamping): a clone
    /// of this repository into `dest` (which must not exist yet), tags
    /// included, `HEAD` detached at the commit, the working tree exactly its
    /// tree. libgit2's checkout refuses `.git` paths and never writes through a
    /// symlink. The tree is first exported (and checked) into a scratch
    /// directory next to `dest`, so the same entries are refused as by
    /// [`Source::export`]; the result is what [`Source::export`] writes, plus `.git`.
    pub fn checkout(&self, commit: &ResolvedCommit, dest: &Path) -> Result<Export, SourceError> {
        let scratch = dest.with_extension("check");
        let exported = export::export(&self.repo, &commit.id, &scratch)?;
        std::fs::remove_dir_all(&scratch).map_err(|e| SourceError::io("remove", &scratch, e))?;
        let fail = |e: git2::Error| SourceError::Clone { url: self.uri.clone(), message: e.message().to_string() };
        if dest.exists() {
            return Err(SourceError::io(
                "create the checkout directory",
                dest,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "it exists"),
            ));
        }
        let url = self.repo.path().display().to_string();
        let mut fetch = git2::FetchOptions::new();
        fetch.download_tags(git2::AutotagOption::All);
        let repo = git2::build::RepoBuilder::new()
            .fetch_options(fetch)
            .with_checkout(git2::build::CheckoutBuilder::new())
            .clone(&url, dest)
            .map_err(fail)?;
        {
            let mut remote = repo.find_remote("origin").map_err(fail)?;
            remote.fetch(&["+refs/tags/*:refs/tags/*"], None, None).map_err(fail)?;
        }
        let oid = git2::Oid::from_str(&commit.id).map_err(fail)?;
        repo.set_head_detached(oid).map_err(fail)?;
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force().remove_untracked(true))).map_err(fail)?;
        // Nothing of the clone's origin: the build sees only this commit's history.
        repo.remote_delete("origin").map_err(fail)?;
        Ok(Export { dir: dest.to_path_buf(), ..exported })
    }
}

#[cfg(test)]
mod tests {
    use super::is_url;

    /// `list_tags` over file://: lightweight and annotated tags (peeled to their commit),
    /// branches left out; helper transports refused.
    #[test]
    fn tags_are_listed_without_a_clone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = git2::Repository::init(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let sig = git2::Signature::now("t", "t@example.invalid").unwrap_or_else(|e| panic!("{e}"));
        let tree = repo.treebuilder(None).and_then(|b| b.write()).unwrap_or_else(|e| panic!("{e}"));
        let tree = repo.find_tree(tree).unwrap_or_else(|e| panic!("{e}"));
        let c1 = repo.commit(Some("HEAD"), &sig, &sig, "one", &tree, &[]).unwrap_or_else(|e| panic!("{e}"));
        let first = repo.find_commit(c1).unwrap_or_else(|e| panic!("{e}"));
        let c2 = repo.commit(Some("HEAD"), &sig, &sig, "two", &tree, &[&first]).unwrap_or_else(|e| panic!("{e}"));
        let obj = |id| repo.find_object(id, None).unwrap_or_else(|e| panic!("{e}"));
        repo.tag_lightweight("v1.0.0", &obj(c1), false).unwrap_or_else(|e| panic!("{e}"));
        repo.tag("v1.1.0", &obj(c2), &sig, "release", false).unwrap_or_else(|e| panic!("{e}"));
        let url = format!("file://{}", dir.path().display());
        let tags = super::Source::list_tags(&url, &super::CloneOptions::from_env()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tags, [("v1.0.0".to_string(), c1.to_string()), ("v1.1.0".to_string(), c2.to_string())]);
        assert!(super::Source::list_tags("ext::sh -c id", &super::CloneOptions::from_env()).is_err());
    }

    /// `resolve_commit`: a branch, a lightweight and an annotated tag, `HEAD`, over
    /// file:// (an ls-remote) and as a local path (git2) alike; a full id as is; an
    /// unknown name is a revision error.
    #[test]
    fn revisions_resolve_to_commits_locally_and_remotely() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = git2::Repository::init(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let sig = git2::Signature::now("t", "t@example.invalid").unwrap_or_else(|e| panic!("{e}"));
        let tree = repo.treebuilder(None).and_then(|b| b.write()).unwrap_or_else(|e| panic!("{e}"));
        let tree = repo.find_tree(tree).unwrap_or_else(|e| panic!("{e}"));
        let c1 = repo.commit(Some("HEAD"), &sig, &sig, "one", &tree, &[]).unwrap_or_else(|e| panic!("{e}"));
        let first = repo.find_commit(c1).unwrap_or_else(|e| panic!("{e}"));
        let obj = |id| repo.find_object(id, None).unwrap_or_else(|e| panic!("{e}"));
        repo.tag("v1.0.0", &obj(c1), &sig, "release", false).unwrap_or_else(|e| panic!("{e}"));
        repo.tag_lightweight("light", &obj(c1), false).unwrap_or_else(|e| panic!("{e}"));
        let c2 = repo.commit(Some("HEAD"), &sig, &sig, "two", &tree, &[&first]).unwrap_or_else(|e| panic!("{e}"));
        let branch = repo.head().ok().and_then(|h| h.shorthand().map(str::to_string)).unwrap_or_default();
        let opts = super::CloneOptions::from_env();
        let path = dir.path().display().to_string();
        let url = format!("file://{path}");
        for location in [&path, &url] {
            let r = |rev: &str| super::Source::resolve_commit(location, rev, &opts);
            assert_eq!(r(&branch).ok(), Some(c2.to_string()), "{location}");
            assert_eq!(r("HEAD").ok(), Some(c2.to_string()), "{location}");
            assert_eq!(r("v1.0.0").ok(), Some(c1.to_string()), "{location}");
            assert_eq!(r("light").ok(), Some(c1.to_string()), "{location}");
            assert_eq!(r(&c1.to_string().to_uppercase()).ok(), Some(c1.to_string()), "{location}");
            let e = r("no-such-branch").err();
            assert!(matches!(e, Some(super::SourceError::Revision { .. })), "{location}: {e:?}");
        }
    }

    #[test]
    fn urls_and_paths() {
        for url in ["file:///tmp/x", "https://example.invalid/a/b.git", "git@example.invalid:a/b.git", "ssh://h/p"] {
            assert!(is_url(url), "{url}");
        }
        for path in [".", "/tmp/repo", "repo", "./a:b", "C", "a/b:c"] {
            assert!(!is_url(path), "{path}");
        }
    }
}
