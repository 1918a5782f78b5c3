//! `[[watch]]` for `reprove serve`: the watches read from the configuration file, and
//! where their tags come from (registries through `oci`, Git hosts through `source`).
//! The scheduling is the server crate's (`server::watching`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::server::watching::{BoxFuture, ListError, Listed, Lister, Rate, Settings, Watch, WatchEntry};
use anyhow::anyhow;

use crate::exit::Failure;

/// The watching keys of `reprove-server.toml`.
#[derive(Debug, Default)]
pub(crate) struct WatchConfig {
    /// `[[watch]]` tables.
    pub(crate) watch: Vec<WatchEntry>,
    /// Polls per host at most, for hosts `watch-rates` does not name (default 10/m).
    pub(crate) watch_rate: Option<String>,
    /// Polls per host at most, by host (`REGISTRY[:PORT]`, a Git URL's host).
    pub(crate) watch_rates: BTreeMap<String, String>,
    /// The first backoff after a failed poll (default 10s); it doubles per failure.
    pub(crate) watch_backoff: Option<String>,
    /// The longest backoff (default 1h).
    pub(crate) watch_backoff_max: Option<String>,
    /// Tags listed per poll at most (default 1000).
    pub(crate) watch_max_tags: Option<usize>,
}

impl WatchConfig {
    /// The checked watches and settings; a bad watch is an input error naming it.
    pub(crate) fn build(&self) -> Result<(Vec<Watch>, Settings), Failure> {
        let mut watches = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for entry in &self.watch {
            let watch = Watch::from_entry(entry).map_err(|e| Failure::input(anyhow!("[[watch]] {e}")))?;
            if !names.insert(watch.name.clone()) {
                return Err(Failure::input(anyhow!("[[watch]] {:?}: the name is used twice", watch.name)));
            }
            watches.push(watch);
        }
        let rate = |s: &str| s.parse::<Rate>().map_err(|e| Failure::input(anyhow!("{e}")));
        let duration = |key: &str, s: &str| {
            ::server::watching::parse_duration(s).map_err(|e| Failure::input(anyhow!("{key} {e}")))
        };
        let mut settings = Settings::default();
        if let Some(r) = &self.watch_rate {
            settings.default_rate = Some(rate(r)?);
        }
        for (host, r) in &self.watch_rates {
            settings.rates.insert(host.clone(), rate(r)?);
        }
        if let Some(b) = &self.watch_backoff {
            settings.backoff_base = duration("watch-backoff", b)?;
        }
        if let Some(b) = &self.watch_backoff_max {
            settings.backoff_cap = duration("watch-backoff-max", b)?;
        }
        if settings.backoff_cap < settings.backoff_base {
            settings.backoff_cap = settings.backoff_base;
        }
        if let Some(n) = self.watch_max_tags {
            settings.max_tags = n.clamp(1, 100_000);
        }
        Ok((watches, settings))
    }
}

/// Tags from registries (`oci`) and Git hosts (`source`).
pub(crate) struct Tags {
    pub(crate) registry: oci::RegistryOptions,
    pub(crate) clone: source::CloneOptions,
}

impl Tags {
    /// A client of `image`'s repository with a deadline clock of its own: each poll gets
    /// the overall deadline afresh.
    fn repository(&self, image: &str) -> Result<oci::referrers::Repository, ListError> {
        let reference = image.parse::<oci::ImageRef>().map_err(|e| ListError(e.to_string()))?;
        let options = oci::RegistryOptions { clock: oci::OverallClock::default(), ..self.registry.clone() };
        oci::referrers::Repository::new(&reference, &options).map_err(|e| ListError(e.to_string()))
    }
}

impl Lister for Tags {
    fn image_tags<'a>(&'a self, repository: &'a str, max: usize) -> BoxFuture<'a, Result<Listed, ListError>> {
        Box::pin(async move {
            let (tags, truncated) =
                self.repository(repository)?.tags(max).await.map_err(|e| ListError(e.to_string()))?;
            Ok(Listed { tags: tags.into_iter().map(|t| (t, String::new())).collect(), truncated })
        })
    }

    fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, ListError>> {
        Box::pin(async move {
            // A Git tag that makes no valid image tag names no release image: nothing to pin.
            let Ok(reference) = image.parse::<oci::ImageRef>() else { return Ok(None) };
            let Some(tag) = reference.tag() else { return Ok(None) };
            match self.repository(image)?.resolve_tag(tag).await {
                Ok(d) => Ok(Some(d.to_string())),
                Err(oci::referrers::ReferrersError::ImageNotFound { .. }) => Ok(None),
                Err(e) => Err(ListError(e.to_string())),
            }
        })
    }

    fn git_tags<'a>(&'a self, url: &'a str, max: usize) -> BoxFuture<'a, Result<Listed, ListError>> {
        Box::pin(async move {
            let (url, opts) = (url.to_string(), self.clone.clone());
            let tags = tokio::task::spawn_blocking(move || source::Source::list_tags(&url, &opts))
                .await
                .map_err(|e| ListError(format!("the listing stopped: {e}")))?
                .map_err(|e| ListError(e.to_string()))?;
            let truncated = tags.len() > max;
            Ok(Listed { tags: tags.into_iter().take(max).collect(), truncated })
        })
    }
}

/// Pins a submitted job's revision to the commit it names now: the `source` crate (git2
/// for a path on the server, an ls-remote for a URL, with the clone's transport rules
/// and no credentials), under the server's deadline.
pub(crate) struct Revisions {
    pub(crate) clone: source::CloneOptions,
}

impl ::server::Resolver for Revisions {
    fn resolve(&self, location: &str, rev: &str, timeout: Duration) -> Result<String, ::server::ResolveError> {
        let opts = source::CloneOptions { timeout: self.clone.timeout.min(timeout), ..self.clone.clone() };
        source::Source::resolve_commit(location, rev, &opts).map_err(|e| match e {
            source::SourceError::Revision { .. } => ::server::ResolveError::UnknownRevision(e.to_string()),
            e if e.is_input() || e.is_security() => ::server::ResolveError::BadSource(e.to_string()),
            e => ::server::ResolveError::Unreachable(e.to_string()),
        })
    }
}

/// The lister of `reprove serve`, with the server's registry settings; Git listings get
/// a minute.
pub(crate) fn lister(registry: &oci::RegistryOptions) -> Arc<dyn Lister> {
    let mut clone = source::CloneOptions::from_env();
    clone.timeout = clone.timeout.min(Duration::from_secs(60));
    Arc::new(Tags { registry: registry.clone(), clone })
}
