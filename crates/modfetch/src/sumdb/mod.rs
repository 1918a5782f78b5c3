//! The checksum database (GOSUMDB): the seam between the downloader and
//! whatever answers "what hashes does the database record for this module".
//!
//! The downloader consults a [`ChecksumDb`] only for a file go.sum has no
//! line for, and only when Go would ([`use_sumdb`]: GOSUMDB is not `off` and
//! GONOSUMDB does not match the path). A database that cannot answer is an
//! error for that file, never a silent pass.
//!
//! - [`records`]: the lookup records and tree notes the database serves
//!   (`x/mod/sumdb/tlog`'s `ParseRecord`, `ParseTree`).
//! - [`note`]: signed notes and verifier keys (`x/mod/sumdb/note`), from the
//!   `tlog` crate, which also does the hashing, tiles and proofs.
//! - [`client`]: lookups, tree-head merging with the `latest` Go keeps, and
//!   the base URL through GOPROXY (`x/mod/sumdb.Client`, `modfetch/sumdb.go`).
//!
//! What it is not: a writer of go.sum. A hash the database vouches for is
//! used for this download only.

pub mod client;
pub mod records;

pub use tlog::note;

use futures_util::future::BoxFuture;
use std::path::Path;

use gomod::module::match_prefix_patterns;

/// Why a checksum database lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SumDbError {
    /// GOSUMDB=off, or no database is configured.
    #[error("checksum database disabled by GOSUMDB=off")]
    Disabled,
    /// The database cannot be used (its key is unknown, the client is missing…).
    #[error("checksum database {name}: {reason}")]
    Unavailable {
        /// The database name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Fetching from the database failed.
    #[error("checksum database {name}: {reason}")]
    Fetch {
        /// The database name.
        name: String,
        /// The fetch error.
        reason: String,
    },
    /// The database's answer did not verify: bad signature, failed proof,
    /// or a tree inconsistent with one seen before. This is a security failure.
    #[error("SECURITY ERROR: checksum database {name}: {reason}")]
    Verification {
        /// The database name.
        name: String,
        /// What did not verify.
        reason: String,
    },
    /// The database has no record of the module version.
    #[error("checksum database {name}: {path}@{version}: not found")]
    NotFound {
        /// The database name.
        name: String,
        /// The module path.
        path: String,
        /// The version.
        version: String,
    },
}

/// A checksum database client.
pub trait ChecksumDb: Send + Sync {
    /// The database name (its key's name, e.g. the host of the database).
    fn name(&self) -> &str;

    /// The go.sum lines the database records for `path@version` (both the
    /// module line and the `/go.mod` line), after verifying them.
    fn lookup<'a>(&'a self, path: &'a str, version: &'a str) -> BoxFuture<'a, Result<Vec<String>, SumDbError>>;
}

/// A database that refuses every lookup with a fixed error (GOSUMDB=off, or
/// a GOSUMDB reprove cannot use).
#[derive(Debug, Clone)]
pub struct Refusing {
    name: String,
    error: SumDbError,
}

impl Refusing {
    /// A database named `name` that answers `error`.
    pub fn new(name: &str, error: SumDbError) -> Refusing {
        Refusing { name: name.to_string(), error }
    }
}

impl ChecksumDb for Refusing {
    fn name(&self) -> &str {
        &self.name
    }

    fn lookup<'a>(&'a self, _path: &'a str, _version: &'a str) -> BoxFuture<'a, Result<Vec<String>, SumDbError>> {
        let e = self.error.clone();
        Box::pin(async move { Err(e) })
    }
}

/// Go's `useSumDB`: whether the database is consulted for `path`.
pub fn use_sumdb(gosumdb: &str, gonosumdb: &str, path: &str) -> bool {
    gosumdb != "off" && !match_prefix_patterns(gonosumdb, path)
}

/// What the database says about one hash (Go's `checkSumDB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbCheck {
    /// The database has this exact line.
    Match,
    /// The database records another hash.
    Mismatch(String),
    /// The database's answer has no line for the module.
    Missing,
}

/// Go's `checkSumDB` over the lines of a lookup: `version` ends in `/go.mod` for go.mod hashes.
pub fn check_lines(lines: &[String], path: &str, version: &str, hash: &str) -> DbCheck {
    let have = format!("{path} {version} {hash}");
    let prefix = format!("{path} {version} h1:");
    for line in lines {
        if *line == have {
            return DbCheck::Match;
        }
        if line.starts_with(&prefix) {
            return DbCheck::Mismatch(line[prefix.len() - 3..].to_string());
        }
    }
    DbCheck::Missing
}

/// The checksum database GOSUMDB names, as a client (Go's `dbDial`).
///
/// `off` gives a database that refuses every lookup ([`SumDbError::Disabled`]).
/// `name+hash+key [URL]` gives a [`client::SumDbClient`]. A bare name (a
/// database whose key is built into the go command, such as the default) is
/// resolved with [`known_key`] from the Go distribution in GOROOT, so reprove
/// trusts exactly the keys the local `go` trusts and embeds none of its own;
/// a bare name it cannot resolve gives a database that refuses with
/// [`SumDbError::Unavailable`]: never a lookup it could not verify.
pub fn from_env(
    env: &gomod::env::GoEnv,
    client: &super::proxy::client::ClientConfig,
) -> Result<std::sync::Arc<dyn ChecksumDb>, SumDbError> {
    let gosumdb = env.get("GOSUMDB");
    if gosumdb == "off" {
        return Ok(std::sync::Arc::new(Refusing::new("off", SumDbError::Disabled)));
    }
    let fields: Vec<&str> = gosumdb.split_whitespace().collect();
    let invalid = |reason: String| SumDbError::Unavailable { name: gosumdb.to_string(), reason };
    match fields.len() {
        0 => {
            return Ok(std::sync::Arc::new(Refusing::new(
                "",
                SumDbError::Unavailable { name: String::new(), reason: "GOSUMDB is not set (missing GOSUMDB)".into() },
            )))
        }
        1 | 2 => {}
        _ => return Err(invalid("invalid GOSUMDB: too many fields".into())),
    }
    let mut verifier_key = fields[0].to_string();
    if !verifier_key.contains('+') {
        let name = fields[0];
        let goroot = env.get("GOROOT");
        match (!goroot.is_empty()).then(|| known_key(Path::new(goroot), name)).flatten() {
            Some(key) => verifier_key = key,
            None => {
                return Ok(std::sync::Arc::new(Refusing::new(
                    name,
                    SumDbError::Unavailable {
                        name: name.to_string(),
                        reason: format!(
                            "GOSUMDB={gosumdb} names the database without its key, and the Go distribution in GOROOT ({}) does not list a key for it in {KNOWN_KEYS_FILE}: set GOSUMDB to the full verifier key (name+hash+key, as `go help module-auth` describes)",
                            if goroot.is_empty() { "unknown" } else { goroot }
                        ),
                    },
                )));
            }
        }
    }
    let fields: Vec<&str> = std::iter::once(verifier_key.as_str()).chain(fields.get(1).copied()).collect();
    let key = note::VerifierKey::parse(fields[0]).map_err(|e| invalid(format!("invalid GOSUMDB: {e}")))?;
    let url = match fields.get(1) {
        Some(u) => Some(reqwest::Url::parse(u).map_err(|e| invalid(format!("invalid GOSUMDB URL: {e}")))?),
        None => None,
    };
    let proxies = env.goproxy().ok().and_then(|gp| super::proxy::ProxyList::parse(gp, env.get("GONOPROXY")).ok());
    let http = super::proxy::client::Client::new(client.clone()).map_err(|e| invalid(e.to_string()))?;
    Ok(client::shared(client::SumDbClient::new(key, url, proxies, http, env.sumdb_dir())))
}

/// Where the go command's built-in checksum database keys (`knownGOSUMDB`)
/// live in a Go distribution, relative to GOROOT.
pub const KNOWN_KEYS_FILE: &str = "src/cmd/go/internal/modfetch/key.go";

/// The verifier key the go command in `goroot` has built in for the database
/// `name` (Go's `knownGOSUMDB[name]`), read from that distribution's own
/// source. `None` when the file is missing or has no key for `name`.
///
/// The map is a Go composite literal of `"name": "name+hash+key",` lines;
/// only a value that names the same database is accepted.
pub fn known_key(goroot: &Path, name: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    // The file is a few hundred bytes; a bound keeps a hostile GOROOT harmless.
    std::fs::File::open(goroot.join(KNOWN_KEYS_FILE)).ok()?.take(64 * 1024).read_to_string(&mut text).ok()?;
    let body = text.split_once("knownGOSUMDB")?.1;
    let body = body.split_once('{')?.1.split_once('}')?.0;
    body.lines().find_map(|line| {
        let (k, v) = line.trim().trim_end_matches(',').split_once(':')?;
        let k = k.trim().strip_prefix('"')?.strip_suffix('"')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        (k == name && v.strip_prefix(name).is_some_and(|rest| rest.starts_with('+'))).then(|| v.to_string())
    })
}
