//! The checksum database client, as `golang.org/x/mod/sumdb.Client` and the
//! go command's `modfetch/sumdb.go` use it.
//!
//! For `path@version`: GET `<base>/lookup/<escaped path>@<escaped version>`,
//! which answers a record id, the record (the module's go.sum lines) and a
//! signed tree head. The note must carry a valid signature by GOSUMDB's key;
//! the tree must be consistent with the latest tree seen before (kept, as Go
//! keeps it, in `$GOPATH/pkg/sumdb/<name>/latest`, updated under a lock);
//! and the record must be in the tree (an inclusion proof from tiles,
//! `<base>/tile/8/<L>/<N>[.p/<W>]`). Only then are the lines returned.
//!
//! The base URL is GOSUMDB's own URL when it names one; otherwise, as Go
//! does, each GOPROXY entry is asked for `<proxy>/sumdb/<name>/supported`:
//! 200 means "use me", 404/410 (or any error after `|`) means "next", and
//! `direct`, `off` or the end of the list mean `https://<name>`.
//!
//! What it is not: a cache. Lookups and tiles are fetched for each run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use reqwest::Url;
use tokio::sync::{Mutex, OnceCell};

use super::records;
use super::{ChecksumDb, SumDbError};
use crate::proxy::client::Client;
use crate::proxy::{join, try_proxies, FetchError, ProxyList, Walk};
use gomod::lockedfile;
use gomod::module::{escape_path, escape_version};
use tlog::merkle::{self, Hash, Stored, Tree};
use tlog::note::{self, VerifierKey};
use tlog::tile;

/// A checksum database client for one GOSUMDB.
pub struct SumDbClient {
    key: VerifierKey,
    url: Option<Url>,
    proxies: Option<ProxyList>,
    client: Client,
    latest_file: Option<PathBuf>,
    base: OnceCell<Result<Url, SumDbError>>,
    merge: Mutex<()>,
}

impl std::fmt::Debug for SumDbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumDbClient").field("key", &self.key).field("url", &self.url).finish()
    }
}

impl SumDbClient {
    /// A client for the database with verifier `key`, reached at `url` or
    /// through `proxies`; `sumdb_dir` is where `<name>/latest` is kept.
    pub fn new(
        key: VerifierKey,
        url: Option<Url>,
        proxies: Option<ProxyList>,
        client: Client,
        sumdb_dir: Option<PathBuf>,
    ) -> SumDbClient {
        let latest_file = sumdb_dir.map(|d| d.join(key.name()).join("latest"));
        SumDbClient { key, url, proxies, client, latest_file, base: OnceCell::new(), merge: Mutex::new(()) }
    }

    fn fetch_err(&self, e: &FetchError) -> SumDbError {
        SumDbError::Fetch { name: self.key.name().to_string(), reason: e.to_string() }
    }

    fn verification(&self, reason: impl Into<String>) -> SumDbError {
        SumDbError::Verification { name: self.key.name().to_string(), reason: reason.into() }
    }

    /// Go's `dbClient.initBase`.
    async fn base(&self) -> Result<Url, SumDbError> {
        self.base
            .get_or_init(|| async {
                if let Some(u) = &self.url {
                    return Ok(u.clone());
                }
                let name = self.key.name();
                let direct = Url::parse(&format!("https://{name}")).map_err(|e| SumDbError::Unavailable {
                    name: name.to_string(),
                    reason: format!("invalid sumdb name (must be host[/path]): {e}"),
                })?;
                let Some(list) = &self.proxies else { return Ok(direct) };
                // The sumdb name is not a module path: the GONOPROXY route does not apply.
                let walk = try_proxies(list, "", |base| async move {
                    let supported = join(&base, &format!("sumdb/{name}/supported"));
                    self.client.get_bytes(&supported, 1 << 16).await?;
                    Ok(join(&base, &format!("sumdb/{name}")))
                })
                .await;
                match walk {
                    Ok(Walk::Fetched(u, _)) => Ok(u),
                    Ok(Walk::Direct) => Ok(direct),
                    Err(e) if e.is_not_exist() => Ok(direct),
                    Err(e) => Err(self.fetch_err(&e)),
                }
            })
            .await
            .clone()
    }

    async fn tiles(
        &self,
        base: &Url,
        tree: &Tree,
        needs: &std::collections::BTreeSet<Stored>,
    ) -> Result<BTreeMap<Stored, Hash>, SumDbError> {
        let mut data = BTreeMap::new();
        for tile in tile::tiles_for(needs, tree.n) {
            let url = join(base, &tile.path());
            let bytes = self.client.get_bytes(&url, 1 << 20).await.map_err(|e| self.fetch_err(&e))?;
            data.insert(tile, bytes);
        }
        tile::hashes_from_tiles(needs, tree.n, &data).map_err(|e| self.verification(e.to_string()))
    }

    /// Go's `mergeLatest`: checks `tree` against the latest tree seen and keeps the larger.
    async fn merge_latest(&self, base: &Url, tree: &Tree, note_msg: &[u8]) -> Result<(), SumDbError> {
        let Some(file) = &self.latest_file else { return Ok(()) };
        let _guard = self.merge.lock().await;
        let stored = match lockedfile::read(file) {
            Ok(d) if !d.is_empty() => d,
            Ok(_) => Vec::new(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.verification(format!("reading {}: {e}", file.display()))),
        };
        let old = if stored.is_empty() {
            None
        } else {
            let text =
                note::open(&stored, &self.key).map_err(|e| self.verification(format!("{}: {e}", file.display())))?;
            Some(records::parse_tree(text).map_err(|e| self.verification(format!("{}: {e}", file.display())))?)
        };
        let consistent = match old {
            None => true,
            Some(old) if old.n == tree.n => old.hash == tree.hash,
            Some(old) => {
                let (small, large) = if old.n < tree.n { (old, *tree) } else { (*tree, old) };
                let needs = merkle::consistency_needs(small.n, large.n);
                let hashes = self.tiles(base, &large, &needs).await?;
                merkle::check_consistency(&small, &large, &hashes).map_err(|e| self.verification(e.to_string()))?
            }
        };
        if !consistent {
            let old = old.map(|o| format!("{} records", o.n)).unwrap_or_default();
            return Err(self.verification(format!(
                "the tree it serves ({} records) is inconsistent with the tree seen before ({old}, kept in {}): the database may be forked or compromised",
                tree.n,
                file.display()
            )));
        }
        if old.is_none_or(|o| o.n < tree.n) {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            lockedfile::write(file, note_msg)
                .map_err(|e| self.verification(format!("writing {}: {e}", file.display())))?;
        }
        Ok(())
    }

    async fn lookup_verified(&self, path: &str, version: &str) -> Result<Vec<String>, SumDbError> {
        let name = self.key.name().to_string();
        let version = version.strip_suffix("/go.mod").unwrap_or(version);
        let bad = |e: String| SumDbError::Unavailable { name: name.clone(), reason: e };
        let (ep, ev) = (
            escape_path(path).map_err(|e| bad(e.to_string()))?,
            escape_version(version).map_err(|e| bad(e.to_string()))?,
        );
        let base = self.base().await?;
        let url = join(&base, &format!("lookup/{ep}@{ev}"));
        let data = match self.client.get_bytes(&url, 1 << 20).await {
            Ok(d) => d,
            Err(e) if e.is_not_exist() => {
                return Err(SumDbError::NotFound { name, path: path.to_string(), version: version.to_string() });
            }
            Err(e) => return Err(self.fetch_err(&e)),
        };
        let (id, text, note_msg) =
            records::parse_record(&data).map_err(|e| self.verification(format!("{url}: {e}")))?;
        let tree_text = note::open(note_msg, &self.key).map_err(|e| self.verification(format!("{url}: {e}")))?;
        let tree = records::parse_tree(tree_text).map_err(|e| self.verification(format!("{url}: {e}")))?;
        if id >= tree.n {
            return Err(self.verification(format!("{url}: record {id} is not in the tree of {} records", tree.n)));
        }
        self.merge_latest(&base, &tree, note_msg).await?;
        let needs = merkle::inclusion_needs(id, tree.n);
        let hashes = self.tiles(&base, &tree, &needs).await?;
        let included = merkle::check_inclusion(&tree, id, &merkle::leaf_hash(text), &hashes)
            .map_err(|e| self.verification(e.to_string()))?;
        if !included {
            return Err(self.verification(format!(
                "{url}: record {id} is not in the signed tree of {} records (the inclusion proof fails)",
                tree.n
            )));
        }
        let text = String::from_utf8_lossy(text);
        let prefix = format!("{path} {version} ");
        let prefix_mod = format!("{path} {version}/go.mod ");
        Ok(text.lines().filter(|l| l.starts_with(&prefix) || l.starts_with(&prefix_mod)).map(String::from).collect())
    }
}

impl ChecksumDb for SumDbClient {
    fn name(&self) -> &str {
        self.key.name()
    }

    fn lookup<'a>(&'a self, path: &'a str, version: &'a str) -> BoxFuture<'a, Result<Vec<String>, SumDbError>> {
        Box::pin(self.lookup_verified(path, version))
    }
}

/// A shareable client.
pub fn shared(c: SumDbClient) -> Arc<dyn ChecksumDb> {
    Arc::new(c)
}
