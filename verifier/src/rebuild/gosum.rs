//! The `go-sum` step: go.mod and go.sum at the commit. Every module go.mod
//! requires (after `replace`) must have a go.sum line, else the build could
//! not verify it: a missing entry is an error naming the module. The digests
//! of both files go into the report.

use std::path::Path;

use super::report::v1::FileDigest;
use super::{sha256_hex, RebuildError};
use crate::gomod::{parse_mod, GoSum};

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
}

/// Checks go.sum against go.mod in the exported source `dir`.
pub fn check(dir: &Path) -> Result<Checked, RebuildError> {
    let go_mod_path = dir.join("go.mod");
    let data = match std::fs::read(&go_mod_path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RebuildError::GoMod(
                "the commit has no go.mod at the repository root: reprove verify rebuilds a Go module whose go.mod is at the root".into(),
            ))
        }
        Err(e) => return Err(RebuildError::io("read", &go_mod_path, e)),
    };
    let modfile = parse_mod("go.mod", &data).map_err(|e| RebuildError::GoMod(format!("go.mod: {e}")))?;
    let go_mod_digest = FileDigest { path: "go.mod".into(), sha256: sha256_hex(&data) };
    let go_sum_path = dir.join("go.sum");
    let (go_sum, go_sum_digest) = match std::fs::read(&go_sum_path) {
        Ok(d) => {
            let sum = GoSum::parse("go.sum", &d).map_err(|errs| {
                RebuildError::GoMod(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
            })?;
            (Some(sum), Some(FileDigest { path: "go.sum".into(), sha256: sha256_hex(&d) }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => return Err(RebuildError::io("read", &go_sum_path, e)),
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
    if dir.join("go.work").exists() {
        warnings.push(
            "the commit has a go.work file: the rebuild ignores it (GOWORK=off), as a release of this module alone \
             does; a reference built in the workspace is refused (go-workspace)"
                .into(),
        );
    }
    if dir.join("vendor/modules.txt").exists() {
        warnings.push(
            "the commit has a vendor directory: the rebuild uses the verified module cache (-mod=readonly) unless --env GOFLAGS=-mod=vendor".into(),
        );
    }
    Ok(Checked { go_mod_digest, go_sum_digest, go_sum, requires: modfile.require.len(), warnings })
}

/// The dependencies `bi` records as `(devel)` without a replacement: the
/// other modules of the go.work workspace the binary was built in (a local
/// `replace` is recorded with its version and `=> ../dir (devel)`).
pub fn workspace_deps(bi: &crate::goinfo::BuildInfo) -> Vec<String> {
    bi.deps.iter().filter(|d| d.replace.is_none() && d.version == "(devel)").map(|d| d.path.to_string()).collect()
}
