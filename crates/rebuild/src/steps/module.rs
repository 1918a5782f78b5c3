//! The `source` step for a released module version (what `go install
//! PATH@VERSION` builds): no Git. The version's zip, `.mod` and `.info` are
//! fetched through GOPROXY into the shared module cache by
//! [`modfetch::download::download_version`], which lets nothing in before it
//! matched what vouches for it; the extracted directory (read-only, in the
//! cache) is the exported source.
//!
//! What vouches for the zip: the checksum database, when it is consulted for
//! the path (GOSUMDB, GONOSUMDB), and the `h1:` sum the reference's build info
//! records for its main module. Both are checked, and they must agree: a
//! reference whose recorded sum is not the database's, or (without the
//! database) not the sum of the zip GOPROXY serves, claims a source that is
//! not what was published. That is no build difference and nothing is built:
//! the verdict is `not-reproduced` with the cause `main-module-sum`
//! ([`Outcome::Claimed`]). A zip that differs from the database's sum is the
//! proxy's fault, a security error as for any module.

use std::path::{Path, PathBuf};

use goinfo::BuildInfo;
use gomod::module::{canonical_version, check as check_module};
use gomod::ModuleVersion;
use modfetch::download::{self, FileStatus};
use modfetch::failure::Code as FetchCode;
use modfetch::proxy::FileKind;
use modfetch::sumdb::{check_lines, use_sumdb, DbCheck, SumDbError};
use report::v1;

use crate::{RebuildError, Request};

/// Where the reference's recorded sum is cited from in messages and evidence.
pub const RECORDED: &str = "reference build info";

/// The module version fetched and checked.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The module version.
    pub module: ModuleVersion,
    /// Its extracted directory in the module cache (read-only): the source.
    pub dir: PathBuf,
    /// What the report says about it.
    pub facts: v1::ModuleSource,
}

/// What the step found.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Fetched, and every check agreed.
    Fetched(Fetched),
    /// The reference claims a source that was not published: the verdict,
    /// with its cause; nothing is built.
    Claimed {
        /// What the report says about the source.
        facts: v1::ModuleSource,
        /// The cause (`main-module-sum`).
        cause: v1::Cause,
    },
}

/// `PATH@VERSION` as given (either may be empty: then the reference's main
/// module gives it), checked against the reference's main module.
pub fn resolve(path: &str, version: &str, reference: Option<&BuildInfo>) -> Result<ModuleVersion, RebuildError> {
    let main = reference.map(|bi| (bi.main.path.to_string(), bi.main.version.to_string()));
    let (path, version) = match (&main, path.is_empty() || version.is_empty()) {
        (_, false) => (path.to_string(), version.to_string()),
        (Some((p, v)), true) if !p.is_empty() => {
            (if path.is_empty() { p.clone() } else { path.to_string() }, if version.is_empty() { v.clone() } else { version.to_string() })
        }
        _ => {
            return Err(RebuildError::ModuleSource(
                "the module path and version are needed: the reference's build info records no main module to take them from"
                    .into(),
            ))
        }
    };
    if version == "(devel)" {
        return Err(RebuildError::ModuleSource(format!(
            "the reference's main module {} is (devel): it was built from a checkout, not from a released module version; \
             rebuild it from its repository instead",
            confined::excerpt(&path)
        )));
    }
    let m = ModuleVersion { path, version };
    check_module(&m.path, &m.version).map_err(|e| RebuildError::ModuleSource(confined::excerpt(&e.to_string())))?;
    if canonical_version(&m.version) != m.version {
        return Err(RebuildError::ModuleSource(format!(
            "{}: not a canonical version (vX.Y.Z, a pre-release or a pseudo-version)",
            confined::excerpt(&m.to_string())
        )));
    }
    if let Some((p, v)) = &main {
        if *p != m.path || *v != m.version {
            return Err(RebuildError::ModuleSource(format!(
                "the reference's main module is {}@{}, not {m}",
                confined::excerpt(p),
                confined::excerpt(v)
            )));
        }
    }
    Ok(m)
}

fn failure(m: &ModuleVersion, code: FetchCode, message: String, security: bool) -> RebuildError {
    RebuildError::Modules {
        failures: vec![download::Failure { module: m.clone(), kind: FileKind::Zip, code, message, security }],
    }
}

fn claimed(m: &ModuleVersion, recorded: &str, published: &str, from: &str, facts: v1::ModuleSource) -> Outcome {
    let cause = v1::Cause {
        code: v1::CauseCode::MainModuleSum,
        confidence: v1::Confidence::Certain,
        explanation: format!(
            "the reference records {m} with sum {recorded}, but the published {m} has {published} ({from}): \
             it claims a source it was not built from"
        ),
        evidence: vec![v1::Evidence {
            source: "buildinfo".into(),
            name: format!("mod {} {}", m.path, m.version),
            reference: Some(recorded.to_string()),
            rebuilt: Some(format!("{published} ({from})")),
        }],
    };
    Outcome::Claimed { facts, cause }
}

/// Fetches and checks `m` into `modcache` (see the module docs).
pub fn fetch(
    m: &ModuleVersion,
    reference: Option<&BuildInfo>,
    modcache: &Path,
    req: &Request,
) -> Result<Outcome, RebuildError> {
    let recorded = reference.map(|bi| bi.main.sum.to_string()).filter(|s| !s.is_empty());
    if reference.is_some() && recorded.is_none() {
        return Err(RebuildError::ModuleSource(format!(
            "the reference's build info records no sum for its main module {m}: it was not built by `go install {}@{}`",
            m.path, m.version
        )));
    }
    let mut facts = v1::ModuleSource {
        path: m.path.clone(),
        version: m.version.clone(),
        recorded_sum: recorded.clone(),
        sum: None,
        zip_sha256: None,
        zip_from: None,
        checked_against: Vec::new(),
    };
    let env = &req.go_env;
    // The go.sum lines the download checks against: the database's, else the recorded sum.
    let mut sums = String::new();
    let mut sums_from = RECORDED.to_string();
    if use_sumdb(env.get("GOSUMDB"), env.get("GONOSUMDB"), &m.path) {
        let name = req.sumdb.name().to_string();
        sums_from = format!("checksum database {name}");
        let lines = req.io.block_on(req.sumdb.lookup(&m.path, &m.version)).map_err(|e| {
            let security = matches!(e, SumDbError::Verification { .. });
            failure(m, FetchCode::SumDb, format!("verifying {m}: {e}"), security)
        })?;
        if !lines.iter().any(|l| l.starts_with(&format!("{} {} h1:", m.path, m.version))) {
            let message = format!("checksum database {name} has no line for {m}");
            return Err(failure(m, FetchCode::SumDb, message, false));
        }
        if let Some(rec) = &recorded {
            if let DbCheck::Mismatch(want) = check_lines(&lines, &m.path, &m.version, rec) {
                return Ok(claimed(m, rec, &want, &format!("checksum database {name}"), facts));
            }
        }
        facts.checked_against.push(format!("checksum database {name}"));
        for l in lines.iter().filter(|l| l.starts_with(&format!("{} {}", m.path, m.version))) {
            sums.push_str(l);
            sums.push('\n');
        }
        if recorded.is_some() {
            facts.checked_against.push(RECORDED.into());
        }
        facts.checked_against.push(format!("go.mod: checksum database {name}"));
    } else if let Some(rec) = &recorded {
        sums = format!("{} {} {rec}\n", m.path, m.version);
        facts.checked_against.push(RECORDED.into());
        facts.checked_against.push("go.mod: the verified zip's go.mod".into());
    }
    let mut env = env.clone();
    env.set("GOMODCACHE", &modcache.display().to_string());
    let rep =
        download::download_version(&req.io, m, &env, &req.download, req.sumdb.clone(), (&sums_from, sums.as_bytes()))?;
    if let Some(s) = rep.security.iter().find(|s| s.kind == FileKind::Zip && s.expected_from.starts_with(RECORDED)) {
        // Without the database, only the recorded sum vouched: the zip GOPROXY
        // serves is not what the reference claims. (A zip that is not the
        // database's is the proxy's fault: a security error below.)
        let from = format!("the zip from {}", s.actual_from);
        return Ok(claimed(m, &s.expected, &s.actual, &from, facts));
    }
    if !rep.security.is_empty() {
        return Err(RebuildError::Security { errors: rep.security });
    }
    if !rep.failures.is_empty() {
        return Err(RebuildError::Modules { failures: rep.failures });
    }
    let (Some(zip), Some(dir)) = (rep.zip().cloned(), rep.module.dir.clone()) else {
        return Err(failure(m, FetchCode::Unknown, format!("{m}: the zip was not fetched"), false));
    };
    facts.sum = zip.hash.clone();
    facts.zip_from = Some(if zip.status == FileStatus::Cached { "cache".into() } else { zip.source.clone() });
    facts.zip_sha256 = Some(sha256_file(&zip.path)?);
    Ok(Outcome::Fetched(Fetched { module: m.clone(), dir, facts }))
}

/// The GOMODCACHE a reference built without `-trimpath` was built with, read
/// from the source paths it embeds (its file table): the directory before
/// `PATH@VERSION/` (the path case-escaped as the cache writes it) that most of
/// them share. `None` when it embeds none, or only unusable ones (relative,
/// `.`/`..` components, not valid UTF-8).
pub fn embedded_modcache(reference: &[u8], m: &ModuleVersion) -> Option<String> {
    let escaped = gomod::module::escape_path(&m.path).ok()?;
    let needle = format!("/{escaped}@{}/", m.version);
    let needle = needle.as_bytes();
    let path_byte = |b: u8| b.is_ascii_alphanumeric() || b"/._-+~!@%=,:".contains(&b);
    let mut counts: std::collections::BTreeMap<&[u8], usize> = std::collections::BTreeMap::new();
    let mut at = 0;
    while let Some(pos) = reference.get(at..).and_then(|r| r.windows(needle.len()).position(|w| w == needle)) {
        let end = at + pos;
        let mut start = end;
        while start > 0 && path_byte(reference[start - 1]) {
            start -= 1;
        }
        let prefix = &reference[start..end];
        if prefix.first() == Some(&b'/') && prefix.len() < 4096 {
            *counts.entry(prefix).or_default() += 1;
        }
        at = end + needle.len();
        if counts.len() > 64 {
            break;
        }
    }
    let (best, _) = counts.into_iter().max_by_key(|(p, n)| (*n, std::cmp::Reverse(p.len())))?;
    let text = std::str::from_utf8(best).ok()?;
    let clean = text.split('/').skip(1).all(|c| !c.is_empty() && c != "." && c != "..");
    clean.then(|| text.to_string())
}

/// The SHA-256 of the file at `path` (a verified zip in the cache), hex, streamed.
fn sha256_file(path: &Path) -> Result<String, RebuildError> {
    use sha2::Digest as _;
    let mut f = std::fs::File::open(path).map_err(|e| RebuildError::io("open", path, e))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| RebuildError::io("read", path, e))?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(path: &str, version: &str) -> ModuleVersion {
        ModuleVersion { path: path.into(), version: version.into() }
    }

    /// The cache directory most embedded paths share, case-escaped as the cache writes paths.
    #[test]
    fn the_embedded_module_cache_is_the_directory_before_path_at_version() {
        let m = mv("github.com/Acme/tool", "v1.2.3");
        let mut bin = b"\x00\x01/home/builder/go/pkg/mod/github.com/!acme/tool@v1.2.3/main.go\x00".to_vec();
        bin.extend_from_slice(b"\x10/home/builder/go/pkg/mod/github.com/!acme/tool@v1.2.3/cmd/x.go\xff");
        bin.extend_from_slice(b"\x00/elsewhere/github.com/!acme/tool@v1.2.3/y.go\x00");
        assert_eq!(embedded_modcache(&bin, &m).as_deref(), Some("/home/builder/go/pkg/mod"));
        // Only under -trimpath's relative names, or with `..`: nothing usable.
        assert_eq!(embedded_modcache(b"github.com/!acme/tool@v1.2.3/main.go", &m), None);
        assert_eq!(embedded_modcache(b"\x00/a/../b/github.com/!acme/tool@v1.2.3/main.go", &m), None);
        assert_eq!(embedded_modcache(b"\x00/home/builder/go/pkg/mod/github.com/!acme/tool@v1.2.4/main.go", &m), None);
    }

    fn reference(path: &str, version: &str, sum: &str) -> BuildInfo {
        let mut bi = BuildInfo::default();
        bi.main.path = path.into();
        bi.main.version = version.into();
        bi.main.sum = sum.into();
        bi
    }

    /// `PATH@VERSION` as given or from the reference; another version than the reference's is refused.
    #[test]
    fn the_module_comes_from_the_argument_or_the_reference() {
        let bi = reference("example.com/tool", "v1.0.0", "h1:x");
        assert_eq!(resolve("", "", Some(&bi)).ok(), Some(mv("example.com/tool", "v1.0.0")));
        assert_eq!(resolve("example.com/tool", "", Some(&bi)).ok(), Some(mv("example.com/tool", "v1.0.0")));
        assert_eq!(resolve("example.com/tool", "v1.0.0", None).ok(), Some(mv("example.com/tool", "v1.0.0")));
        for (p, v, bi) in [
            ("example.com/tool", "v1.0.1", Some(&bi)),
            ("", "", None),
            ("example.com/tool", "1.0", None),
            ("example.com/tool", "v1.0", None),
            ("../escape", "v1.0.0", None),
        ] {
            let e = resolve(p, v, bi);
            assert!(matches!(e, Err(RebuildError::ModuleSource(_))), "{p}@{v}: {e:?}");
        }
        let devel = reference("example.com/tool", "(devel)", "");
        assert!(matches!(resolve("", "", Some(&devel)), Err(RebuildError::ModuleSource(m)) if m.contains("(devel)")));
    }
}
