//! Watching (`[[watch]]`): image repositories whose tags are polled, each new digest
//! audited (and its image VSA pushed), and Git repositories whose tags are each verified
//! against a reference found by a template (a release image, or a binary's https URL).
//!
//! The scheduling is here and pure: a [`Scheduler`] decides, for a clock the caller
//! passes, which watches poll now — none twice at once, at most the rate of each host
//! (a token bucket per registry or Git host, [`Rate`]), after a failure only when its
//! backoff has passed (exponential, with jitter, capped, reset by a success). The
//! listing is behind [`Lister`] (the binary's talks to registries through `oci` and to
//! Git hosts through `source`), and what a poll submits goes through the [`Queue`], whose
//! idempotency keys make a digest (or a tag's commit and reference) one job however often
//! it is seen. A poll that fails is logged and counted, never fatal.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch as signal};

use crate::job::{valid_watch_name, AuditSpec, JobSpec, VerifySpec};
use crate::queue::{PollClaim, Queue};

/// A boxed future, for the object-safe [`Lister`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The tags a watch asks for at most, by default.
pub const DEFAULT_MAX_TAGS: usize = 1000;

/// A value of the watching configuration that does not parse (a duration, rate or tag filter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// A `[[watch]]` table as the configuration file spells it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WatchEntry {
    /// The watch's name (jobs carry it as `watch`).
    pub name: String,
    /// An image repository, `REGISTRY/REPO`.
    pub image: Option<String>,
    /// A Git repository's URL.
    pub git: Option<String>,
    /// Which tags: a glob (`*`, `?`), or a regular expression between slashes (`/^v1\./`).
    pub tags: Option<String>,
    /// How often to poll (`30s`, `5m`, `1h`).
    pub interval: Option<String>,
    /// The platforms of an index to audit (image watches).
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The reference of each Git tag: `{tag}` and `{version}` (the tag without a leading
    /// `v`) replaced; `oci://REGISTRY/REPO:{tag}#/PATH` is pinned to the tag's digest, an
    /// `https://` URL (a release binary) downloaded and pinned to its content's digest.
    pub reference: Option<String>,
    /// The toolchain image of Git watches' verify jobs, pinned by digest.
    pub toolchain: Option<String>,
    /// The recipe (`reprove.toml`'s `[build]` keys) of Git watches' verify jobs.
    #[serde(default)]
    pub recipe: BTreeMap<String, Value>,
}

/// What a watch polls.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// An image repository: each new digest gets an audit job that pushes its VSA.
    Image {
        /// `REGISTRY/REPO`.
        repository: String,
        /// Only these platforms of an index.
        platforms: Vec<String>,
    },
    /// A Git repository: each new tag gets a verify job.
    Git {
        /// The clone URL.
        url: String,
        /// The reference template.
        reference: String,
        /// The toolchain, pinned.
        toolchain: String,
        /// The recipe.
        recipe: BTreeMap<String, Value>,
    },
}

/// A checked watch.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Its name.
    pub name: String,
    /// What it polls.
    pub target: Target,
    /// Which tags.
    pub tags: TagFilter,
    /// How often.
    pub interval: Duration,
}

/// Which tags a watch takes.
#[derive(Debug, Clone)]
pub enum TagFilter {
    /// Every tag.
    All,
    /// A glob: `*` any run of characters, `?` one.
    Glob(String),
    /// A regular expression (searched, not anchored unless it says so).
    Regex(regex::Regex),
}

impl TagFilter {
    /// `None`: every tag; `/RE/`: a regular expression; anything else a glob.
    pub fn parse(text: Option<&str>) -> Result<TagFilter, InvalidValue> {
        match text {
            None | Some("*") => Ok(TagFilter::All),
            Some(t) if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') => regex::Regex::new(&t[1..t.len() - 1])
                .map(TagFilter::Regex)
                .map_err(|e| InvalidValue(format!("tags {t:?}: {e}"))),
            Some("") => Err(InvalidValue("tags: empty".into())),
            Some(t) => Ok(TagFilter::Glob(t.to_string())),
        }
    }

    /// Whether `tag` is taken.
    pub fn matches(&self, tag: &str) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::Glob(g) => glob(g.as_bytes(), tag.as_bytes()),
            TagFilter::Regex(r) => r.is_match(tag),
        }
    }
}

/// Whether `tag` names what is attached to an image rather than an image: `sha256-HEX`
/// (the referrers API's fallback index) and `sha256-HEX.SUFFIX` (cosign's `.att`, `.sig`,
/// `.sbom`).
pub fn is_attachment_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else { return false };
    let hex = rest.split_once('.').map_or(rest, |(hex, _)| hex);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// `30s`, `5m`, `1h30m`, `500ms`: a positive duration.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidValue> {
    let bad = |why: &str| Err(InvalidValue(format!("{text:?}: {why} (e.g. 30s, 5m, 1h)")));
    let mut rest = text.trim();
    if rest.is_empty() {
        return bad("empty");
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let Ok(value) = rest[..n].parse::<u64>() else { return bad("expected a number before each unit") };
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86400),
            _ => return bad("expected the unit ms, s, m, h or d"),
        };
        total = total.saturating_add(unit.saturating_mul(u32::try_from(value).unwrap_or(u32::MAX)));
        rest = &rest[u..];
    }
    if total.is_zero() {
        return bad("must be positive");
    }
    Ok(total)
}

/// A rate: `count` requests per `per` (`10/m`, `2/s`, `100/h`, `3/10s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per window (also the burst).
    pub count: u32,
    /// The window.
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Rate, InvalidValue> {
        let bad = || InvalidValue(format!("rate {s:?}: expected COUNT/UNIT, e.g. 10/m, 2/s, 3/10s"));
        let (count, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0).ok_or_else(bad)?;
        let per = per.trim();
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) { per.to_string() } else { format!("1{per}") };
        let per = parse_duration(&per).map_err(|_| bad())?;
        Ok(Rate { count, per })
    }
}

/// A token bucket: `count` tokens, refilled continuously at `count` per `per`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_ms: f64,
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate: Rate, now_ms: i64) -> TokenBucket {
        let capacity = f64::from(rate.count);
        let window = rate.per.as_millis().max(1) as f64;
        TokenBucket { capacity, tokens: capacity, per_ms: capacity / window, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes a token: `Ok`, or `Err(ms)` until one is there.
    pub fn take(&mut self, now_ms: i64) -> Result<(), i64> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.per_ms).ceil() as i64).max(1))
        }
    }
}

/// How watching runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tags listed per poll at most (the rest are left for a later release of the list).
    pub max_tags: usize,
    /// The first backoff after a failure; it doubles with each failure in a row.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_cap: Duration,
    /// Polls per host (`REGISTRY[:PORT]` or the Git URL's host) at most, by host.
    pub rates: BTreeMap<String, Rate>,
    /// The rate of every other host (none: unlimited).
    pub default_rate: Option<Rate>,
    /// Where a reference URL of a Git watch is downloaded to, and how (the server sets
    /// it: its data directory's `references`); none: such tags wait.
    pub references: Option<(std::path::PathBuf, crate::fetch::Fetch)>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_tags: DEFAULT_MAX_TAGS,
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(3600),
            rates: BTreeMap::new(),
            default_rate: Some(Rate { count: 10, per: Duration::from_secs(60) }),
            references: None,
        }
    }
}

/// Why a watch was refused (at startup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watch {name:?}: {message}")]
pub struct WatchError {
    /// The watch's name (as given).
    pub name: String,
    /// What is wrong.
    pub message: String,
}

impl Watch {
    /// Checks a `[[watch]]` table.
    pub fn from_entry(e: &WatchEntry) -> Result<Watch, WatchError> {
        let fail = |m: String| WatchError { name: e.name.clone(), message: m };
        if !valid_watch_name(&e.name) {
            return Err(fail("the name must be 1 to 64 letters, digits, '-', '_' or '.'".into()));
        }
        let interval =
            parse_duration(e.interval.as_deref().unwrap_or("5m")).map_err(|m| fail(format!("interval {m}")))?;
        if interval < Duration::from_secs(1) {
            return Err(fail("interval: at least 1s".into()));
        }
        let tags = TagFilter::parse(e.tags.as_deref()).map_err(|m| fail(m.0))?;
        let target = match (&e.image, &e.git) {
            (Some(image), None) => {
                if e.reference.is_some() || e.toolchain.is_some() || !e.recipe.is_empty() {
                    return Err(fail("reference, toolchain and recipe are for git watches".into()));
                }
                let parsed = image.parse::<oci::ImageRef>().map_err(|err| fail(format!("image {image:?}: {err}")))?;
                if parsed.tag().is_some() || parsed.digest().is_some() {
                    return Err(fail(format!(
                        "image {image:?}: name the repository (REGISTRY/REPO), without tag or digest"
                    )));
                }
                let spec = JobSpec::Audit(AuditSpec {
                    image: format!("{}@sha256:{}", parsed.name(), "0".repeat(64)),
                    platforms: e.platforms.clone(),
                    push: true,
                    watch: Some(e.name.clone()),
                });
                spec.validate().map_err(|err| fail(err.to_string()))?;
                Target::Image { repository: parsed.name(), platforms: e.platforms.clone() }
            }
            (None, Some(url)) => {
                if !e.platforms.is_empty() {
                    return Err(fail("platforms are for image watches".into()));
                }
                let reference =
                    e.reference.clone().ok_or_else(|| fail("a git watch needs a reference template".into()))?;
                let toolchain = e.toolchain.clone().ok_or_else(|| fail("a git watch needs a toolchain".into()))?;
                let target = Target::Git { url: url.clone(), reference, toolchain, recipe: e.recipe.clone() };
                // A tag as an example: the job it would make must be valid.
                let example = verify_spec(&e.name, &target, "v0.0.0", &"0".repeat(40), |image| {
                    Some(format!("{image}@sha256:{}", "0".repeat(64)))
                })
                .map_err(fail)?;
                example.validate().map_err(|err| fail(err.to_string()))?;
                target
            }
            _ => return Err(fail("give exactly one of image and git".into())),
        };
        Ok(Watch { name: e.name.clone(), target, tags, interval })
    }

    /// The host whose rate limit the watch's polls count against.
    pub fn host(&self) -> String {
        match &self.target {
            Target::Image { repository, .. } => repository.split('/').next().unwrap_or_default().to_string(),
            Target::Git { url, .. } => git_host(url),
        }
    }
}

/// The host (with its port) of a Git URL: `https://h:1/x`, `ssh://u@h/x`, `u@h:x`.
fn git_host(url: &str) -> String {
    let rest = match url.split_once("://") {
        Some((_, r)) => r,
        None => url.split_once(':').map_or(url, |(h, _)| h),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_string()
}

/// The verify job of `tag` (at `commit`) of a Git watch; `resolve` pins an image tag to
/// its digest (`None`: not published yet).
fn verify_spec(
    name: &str,
    target: &Target,
    tag: &str,
    commit: &str,
    resolve: impl FnOnce(&str) -> Option<String>,
) -> Result<JobSpec, String> {
    let Target::Git { url, reference, toolchain, recipe } = target else {
        return Err("not a git watch".into());
    };
    let mut reference = expand(reference, tag);
    if let Some(rest) = reference.strip_prefix("oci://") {
        let (image, path) =
            rest.split_once('#').ok_or_else(|| format!("reference {reference:?}: expected oci://IMAGE#/PATH"))?;
        if !image.contains('@') {
            let pinned = resolve(image).ok_or_else(|| format!("{image} is not published"))?;
            reference = format!("oci://{pinned}#{path}");
        }
    }
    Ok(JobSpec::Verify(VerifySpec {
        source: url.clone(),
        rev: commit.to_string(),
        reference,
        toolchain: toolchain.clone(),
        recipe: recipe.clone(),
        from_reference: true,
        watch: Some(name.to_string()),
        // The listing's commit, pinned as a submission's rev is.
        commit: crate::job::is_full_commit(commit).then(|| commit.to_string()),
        reference_digest: None,
    }))
}

/// A listing failure (the registry's or the Git host's), for the log and the backoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ListError(pub String);

/// Tags as a [`Lister`] found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// (tag, what it names: a commit id, or nothing for image tags).
    pub tags: Vec<(String, String)>,
    /// Whether the list was cut at the bound.
    pub truncated: bool,
}

/// Where tags come from: the binary's asks registries (through `oci`) and Git hosts
/// (through `source`).
pub trait Lister: Send + Sync + 'static {
    /// The tags of image repository `repository`, at most `max`.
    fn image_tags<'a>(&'a self, repository: &'a str, max: usize) -> BoxFuture<'a, Result<Listed, ListError>>;
    /// The digest `image` (`REGISTRY/REPO:TAG`) names now; `None`: no such tag.
    fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, ListError>>;
    /// The tags of Git repository `url` and their commits, at most `max`.
    fn git_tags<'a>(&'a self, url: &'a str, max: usize) -> BoxFuture<'a, Result<Listed, ListError>>;
}

/// The backoff after `failures` failures in a row: `base·2^(failures-1)` capped at `cap`,
/// then jittered down to between half and all of it (`unit` in [0, 1)).
pub fn backoff(failures: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(cap);
    exp.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

#[derive(Debug, Clone)]
struct Slot {
    host: String,
    interval: Duration,
    next_ms: i64,
    failures: u32,
    running: bool,
}

/// Which watches poll when: the pure part of watching, driven by a clock the caller passes.
#[derive(Debug)]
pub struct Scheduler {
    slots: Vec<Slot>,
    buckets: HashMap<String, TokenBucket>,
    settings: Settings,
    rng: u64,
}

impl Scheduler {
    /// Every watch due at `now_ms`; `seed` drives the jitter.
    pub fn new(watches: &[Watch], settings: Settings, now_ms: i64, seed: u64) -> Scheduler {
        let slots = watches
            .iter()
            .map(|w| Slot { host: w.host(), interval: w.interval, next_ms: now_ms, failures: 0, running: false })
            .collect();
        Scheduler { slots, buckets: HashMap::new(), settings, rng: seed | 1 }
    }

    fn unit(&mut self) -> f64 {
        // xorshift64*: jitter only, not secrets.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The watches to poll now, marked running (a running watch is never returned), each
    /// having taken a token of its host's bucket. A watch due whose host has no token
    /// waits until one is there.
    pub fn due(&mut self, now_ms: i64) -> Vec<usize> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if slot.running || slot.next_ms > now_ms {
                continue;
            }
            let rate = self.settings.rates.get(&slot.host).copied().or(self.settings.default_rate);
            if let Some(rate) = rate {
                let bucket = self.buckets.entry(slot.host.clone()).or_insert_with(|| TokenBucket::new(rate, now_ms));
                if let Err(wait) = bucket.take(now_ms) {
                    self.slots[i].next_ms = now_ms + wait;
                    continue;
                }
            }
            self.slots[i].running = true;
            out.push(i);
        }
        out
    }

    /// Watch `i`'s poll ended at `now_ms`; the delay until its next poll (the interval
    /// after a success, the backoff after a failure).
    pub fn finished(&mut self, i: usize, now_ms: i64, ok: bool) -> Duration {
        let unit = self.unit();
        let Some(slot) = self.slots.get_mut(i) else { return Duration::ZERO };
        slot.running = false;
        let delay = if ok {
            slot.failures = 0;
            slot.interval
        } else {
            slot.failures = slot.failures.saturating_add(1);
            backoff(slot.failures, self.settings.backoff_base, self.settings.backoff_cap, unit)
        };
        slot.next_ms = now_ms + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        delay
    }

    /// Watch `i` was due here but is not this server's to poll now (another server sharing
    /// the queue polled it or is polling it): not running, asked again at `at_ms`; its
    /// failures unchanged.
    pub fn deferred(&mut self, i: usize, at_ms: i64) {
        if let Some(slot) = self.slots.get_mut(i) {
            slot.running = false;
            slot.next_ms = at_ms;
        }
    }

    /// Sets the failures in a row of watch `i` (as the servers sharing the queue counted
    /// them), before [`Scheduler::finished`] adds this poll's.
    pub fn set_failures(&mut self, i: usize, failures: u32) {
        if let Some(slot) = self.slots.get_mut(i) {
            slot.failures = failures;
        }
    }

    /// Failures in a row of watch `i`.
    pub fn failures(&self, i: usize) -> u32 {
        self.slots.get(i).map_or(0, |s| s.failures)
    }

    /// When the next watch that is not running is due (`None`: all are running).
    pub fn next_due(&self) -> Option<i64> {
        self.slots.iter().filter(|s| !s.running).map(|s| s.next_ms).min()
    }
}

/// What a watch remembers between polls (lost on restart; the queue's keys still dedupe).
#[derive(Debug, Default)]
pub struct Seen {
    /// Image digests and `tag@commit` of Git tags already submitted.
    submitted: BTreeSet<String>,
}

/// One poll of `watch`: lists its tags, submits a job for each new digest (image) or tag
/// (Git); the number of new jobs. A tag whose reference is not published yet is left
/// for a later poll.
pub async fn poll(
    watch: &Watch,
    lister: &dyn Lister,
    queue: &Arc<dyn Queue>,
    settings: &Settings,
    seen: &mut Seen,
    now_ms: i64,
) -> Result<u64, ListError> {
    let mut specs = Vec::new();
    match &watch.target {
        Target::Image { repository, platforms } => {
            let listed = lister.image_tags(repository, settings.max_tags).await?;
            note_truncated(watch, &listed);
            // The tags attestations hang on (cosign's and the referrers fallback) are not
            // releases, whatever the filter: auditing them would audit the audit's own output.
            let releases = listed.tags.iter().filter(|(t, _)| !is_attachment_tag(t) && watch.tags.matches(t));
            for (tag, _) in releases {
                let Some(digest) = lister.resolve(&format!("{repository}:{tag}")).await? else { continue };
                if seen.submitted.contains(&digest) {
                    continue;
                }
                let spec = JobSpec::Audit(AuditSpec {
                    image: format!("{repository}@{digest}"),
                    platforms: platforms.clone(),
                    push: true,
                    watch: Some(watch.name.clone()),
                });
                specs.push((digest, spec));
            }
        }
        Target::Git { url, reference: template, .. } => {
            let listed = lister.git_tags(url, settings.max_tags).await?;
            note_truncated(watch, &listed);
            // What the queue already has of this watch (`commit reference`), read once a
            // poll finds a tag it has not seen: after a restart, or when another server
            // polled, a tag's reference is not downloaded again.
            let mut queued: Option<BTreeSet<String>> = None;
            for (tag, commit) in listed.tags.iter().filter(|(t, _)| watch.tags.matches(t)) {
                let key = format!("{tag}@{commit}");
                if seen.submitted.contains(&key) {
                    continue;
                }
                if queued.is_none() {
                    queued = Some(submitted_by(queue, &watch.name, settings.max_tags).await?);
                }
                if queued.as_ref().is_some_and(|q| q.contains(&format!("{commit} {}", expand(template, tag)))) {
                    seen.submitted.insert(key);
                    continue;
                }
                let resolved = match reference_image(&watch.target, tag) {
                    Some(image) => lister.resolve(&image).await?.map(|d| format!("{}@{d}", image_name(&image))),
                    None => None,
                };
                match verify_spec(&watch.name, &watch.target, tag, commit, |_| resolved) {
                    Ok(spec) => specs.push((key, spec)),
                    Err(why) => crate::log::event(
                        "info",
                        "watch: a tag's reference is not there yet",
                        &[("watch", &watch.name), ("tag", tag), ("why", &why)],
                    ),
                }
            }
        }
    }
    let mut new = 0;
    for (key, spec) in specs {
        if let Err(e) = spec.validate() {
            crate::log::event(
                "warn",
                "watch: a job it would submit is invalid",
                &[("watch", &watch.name), ("error", &e.to_string())],
            );
            continue;
        }
        // A reference that is a path or a URL counts by its content, as a submission's does.
        let mut spec = spec;
        if let JobSpec::Verify(v) = &mut spec {
            let digest = if crate::fetch::is_url(&v.reference) {
                Some(fetch_reference(&v.reference, settings).await)
            } else if v.reference.starts_with('/') {
                let path = v.reference.clone();
                let hashed = tokio::task::spawn_blocking(move || {
                    crate::reference_digest(&path, crate::MAX_REFERENCE_BYTES).map_err(|(_, _, m)| m)
                })
                .await;
                Some(hashed.unwrap_or_else(|e| Err(format!("hashing the reference stopped: {e}"))))
            } else {
                None
            };
            match digest {
                Some(Ok(d)) => v.reference_digest = Some(d),
                Some(Err(why)) => {
                    crate::log::event(
                        "info",
                        "watch: a tag's reference is not there yet",
                        &[("watch", &watch.name), ("why", &why)],
                    );
                    continue;
                }
                None => {}
            }
        }
        let q = queue.clone();
        let (job, created) = crate::blocking(move || q.submit(&spec, now_ms))
            .await
            .map_err(|e| ListError(format!("the job queue: {e}")))?;
        if created {
            new += 1;
            crate::log::event(
                "info",
                "watch: job submitted",
                &[("watch", &watch.name), ("id", &job.id), ("kind", job.spec.kind())],
            );
        }
        seen.submitted.insert(key);
    }
    Ok(new)
}

/// `commit reference` of the newest verify jobs watch `name` submitted (at most twice
/// `max_tags`, at least 100).
async fn submitted_by(queue: &Arc<dyn Queue>, name: &str, max_tags: usize) -> Result<BTreeSet<String>, ListError> {
    let limit = u32::try_from(max_tags.saturating_mul(2)).unwrap_or(u32::MAX).max(100);
    let filter = crate::queue::Filter { watch: Some(name.to_string()), limit, ..Default::default() };
    let q = queue.clone();
    let jobs = crate::blocking(move || q.list(&filter)).await.map_err(|e| ListError(format!("the job queue: {e}")))?;
    Ok(jobs
        .iter()
        .filter_map(|j| match &j.spec {
            JobSpec::Verify(v) => Some(format!("{} {}", v.rev, v.reference)),
            _ => None,
        })
        .collect())
}

/// A Git watch's reference template for `tag` (`{tag}`, `{version}`: the tag without `v`).
fn expand(template: &str, tag: &str) -> String {
    let version = tag.strip_prefix('v').unwrap_or(tag);
    template.replace("{tag}", tag).replace("{version}", version)
}

/// Downloads a Git tag's reference URL: its digest. Not there (404), unreachable or
/// refused: why, and the tag waits for a later poll.
async fn fetch_reference(url: &str, settings: &Settings) -> Result<String, String> {
    let Some((dir, fetch)) = &settings.references else {
        return Err(format!("{url}: this server keeps no downloaded references"));
    };
    crate::fetch::fetch(url, dir, fetch).await.map(|f| f.digest).map_err(|e| e.to_string())
}

/// The image (`REGISTRY/REPO:TAG`) that a Git watch's reference names for `tag`, when it
/// must be pinned.
fn reference_image(target: &Target, tag: &str) -> Option<String> {
    let Target::Git { reference, .. } = target else { return None };
    let reference = expand(reference, tag);
    let (image, _) = reference.strip_prefix("oci://")?.split_once('#')?;
    (!image.contains('@')).then(|| image.to_string())
}

/// `REGISTRY/REPO` of `REGISTRY/REPO:TAG` (a port's colon kept).
fn image_name(image: &str) -> &str {
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

fn note_truncated(watch: &Watch, listed: &Listed) {
    if listed.truncated {
        crate::log::event(
            "warn",
            "watch: the tag list was cut at its bound",
            &[("watch", &watch.name), ("tags", &listed.tags.len().to_string())],
        );
    }
}

/// How long a server holds a watch's poll before another may take it over (a server lost
/// mid-poll delays that watch by at most this).
const POLL_LEASE_MS: i64 = 2 * 60 * 1000;

/// What a poll task reports to the scheduling loop.
enum Polled {
    /// It polled: the failures in a row before it (shared; `None`: the queue did not
    /// answer, this server's count holds), and the result.
    Ran(Option<u32>, Result<u64, ListError>),
    /// Not this server's turn: ask again at this time.
    Deferred(i64),
}

/// Runs the watches until `stop`: polls each when the [`Scheduler`] says and the queue
/// gives this server the poll ([`Queue::claim_poll`]: servers sharing a database poll
/// each watch once per interval between them, the backoff shared), counting each poll's
/// result in the metrics.
pub(crate) async fn run(
    watches: Vec<Watch>,
    settings: Settings,
    lister: Arc<dyn Lister>,
    queue: Arc<dyn Queue>,
    metrics: Arc<crate::metrics::Metrics>,
    mut stop: signal::Receiver<bool>,
) {
    let now = crate::now_ms();
    let seed = u64::try_from(now).unwrap_or(1) ^ u64::from(std::process::id()).rotate_left(32);
    let mut scheduler = Scheduler::new(&watches, settings.clone(), now, seed);
    let holder: Arc<str> = format!("serve-{}-{now}-{seed:x}", std::process::id()).into();
    for w in &watches {
        metrics.watch_declare(&w.name);
    }
    let watches: Arc<Vec<Watch>> = Arc::new(watches);
    let mut seen: Vec<Option<Seen>> = watches.iter().map(|_| Some(Seen::default())).collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Polled, Seen)>();
    let mut running = Vec::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let now = crate::now_ms();
        for i in scheduler.due(now) {
            let mut s = seen[i].take().unwrap_or_default();
            let (watches, lister, queue, settings, tx, holder) =
                (watches.clone(), lister.clone(), queue.clone(), settings.clone(), tx.clone(), holder.clone());
            running.push(tokio::spawn(async move {
                let w = &watches[i];
                let (q, name) = (queue.clone(), w.name.clone());
                let claim = crate::blocking(move || q.claim_poll(&name, &holder, crate::now_ms(), POLL_LEASE_MS)).await;
                let polled = match claim {
                    Ok(PollClaim::NotBefore(at)) => {
                        // Asked again within an interval: a server that holds it and is lost
                        // is found when its lease runs out.
                        let interval = i64::try_from(w.interval.as_millis()).unwrap_or(i64::MAX / 2);
                        Polled::Deferred(at.min(crate::now_ms().saturating_add(interval)))
                    }
                    Ok(PollClaim::Claimed { failures }) => {
                        let r = poll(w, lister.as_ref(), &queue, &settings, &mut s, crate::now_ms()).await;
                        Polled::Ran(Some(failures), r)
                    }
                    Err(e) => Polled::Ran(None, Err(ListError(format!("the job queue: {e}")))),
                };
                let _ = tx.send((i, polled, s));
            }));
        }
        running.retain(|h| !h.is_finished());
        let wait = scheduler
            .next_due()
            .map_or(Duration::from_secs(1), |at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::select! {
            _ = stop.changed() => {}
            Some((i, polled, s)) = rx.recv() => {
                seen[i] = Some(s);
                let name = &watches[i].name;
                let (shared_failures, result) = match polled {
                    Polled::Deferred(at) => {
                        scheduler.deferred(i, at);
                        continue;
                    }
                    Polled::Ran(failures, result) => (failures, result),
                };
                let ok = result.is_ok();
                if let Some(f) = shared_failures {
                    scheduler.set_failures(i, f);
                }
                let now = crate::now_ms();
                let delay = scheduler.finished(i, now, ok);
                let next = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2));
                let (q, watch, holder, failures) = (queue.clone(), name.clone(), holder.clone(), scheduler.failures(i));
                if let Err(e) = crate::blocking(move || q.finish_poll(&watch, &holder, next, failures)).await {
                    crate::log::event("warn", "watch: the poll's end was not recorded", &[
                        ("watch", name),
                        ("error", &e.to_string()),
                    ]);
                }
                match result {
                    Ok(n) => {
                        metrics.watch_poll(name, "ok", 0);
                        metrics.watch_new(name, n);
                    }
                    Err(e) => {
                        metrics.watch_poll(name, "error", scheduler.failures(i));
                        crate::log::event("warn", "watch: poll failed", &[
                            ("watch", name),
                            ("error", &e.0),
                            ("failures", &scheduler.failures(i).to_string()),
                            ("retry_in_ms", &delay.as_millis().to_string()),
                        ]);
                    }
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
    for h in running {
        h.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn entry(name: &str) -> WatchEntry {
        WatchEntry {
            name: name.into(),
            image: Some("127.0.0.1:5000/app".into()),
            interval: Some("1m".into()),
            ..WatchEntry::default()
        }
    }

    fn watch(name: &str, repo: &str, interval: &str) -> Watch {
        let mut e = entry(name);
        e.image = Some(repo.into());
        e.interval = Some(interval.into());
        Watch::from_entry(&e).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn entries_are_checked_and_name_their_watch() {
        assert!(Watch::from_entry(&entry("app")).is_ok());
        let refused = |e: WatchEntry, words: &[&str]| {
            let err = Watch::from_entry(&e).err().unwrap_or_else(|| panic!("accepted: {e:?}"));
            let text = err.to_string();
            assert!(text.contains(&format!("{:?}", e.name)), "{text}");
            for w in words {
                assert!(text.contains(w), "{w:?} in {text}");
            }
        };
        refused(WatchEntry { interval: Some("soon".into()), ..entry("a") }, &["interval"]);
        refused(WatchEntry { tags: Some("/(/".into()), ..entry("b") }, &["tags"]);
        refused(WatchEntry { git: Some("https://h.invalid/r".into()), ..entry("c") }, &["exactly one"]);
        refused(WatchEntry { image: Some("127.0.0.1:5000/app:v1".into()), ..entry("d") }, &["without tag"]);
        refused(WatchEntry { platforms: vec!["linux".into()], ..entry("e") }, &["platforms"]);
        refused(WatchEntry { name: "a b".into(), ..entry("") }, &["name"]);
        let git = WatchEntry {
            name: "g".into(),
            git: Some("https://h.invalid/r".into()),
            reference: Some("oci://127.0.0.1:5000/app:{tag}#/app".into()),
            toolchain: Some("golang:1.22".into()),
            ..WatchEntry::default()
        };
        refused(git.clone(), &["toolchain"]);
        let mut pinned = git.clone();
        pinned.toolchain = Some(format!("golang@sha256:{}", "a".repeat(64)));
        assert!(Watch::from_entry(&pinned).is_ok());
        refused(WatchEntry { reference: Some("app-{tag}".into()), ..pinned.clone() }, &["reference"]);
        refused(WatchEntry { recipe: BTreeMap::from([("nope".into(), Value::Bool(true))]), ..pinned }, &["recipe"]);
    }

    #[test]
    fn attachment_tags_are_not_releases() {
        let hex = "0123456789abcdef".repeat(4);
        for tag in [format!("sha256-{hex}"), format!("sha256-{hex}.att"), format!("sha256-{hex}.sig")] {
            assert!(is_attachment_tag(&tag), "{tag}");
        }
        for tag in
            ["v1.0.0", "latest", "sha256-abc", &format!("sha256-{}", hex.to_uppercase()), &format!("x-sha256-{hex}")]
        {
            assert!(!is_attachment_tag(tag), "{tag}");
        }
    }

    #[test]
    fn tag_filters() {
        let f = |s: &str| TagFilter::parse(Some(s)).unwrap_or_else(|e| panic!("{e}"));
        assert!(f("v*").matches("v1.2.3") && !f("v*").matches("latest"));
        assert!(f("v?.*").matches("v1.0") && !f("v?.*").matches("v10.0"));
        assert!(f("/^v[0-9]+\\.[0-9]+$/").matches("v1.22") && !f("/^v[0-9]+\\.[0-9]+$/").matches("v1.22-rc1"));
        assert!(TagFilter::parse(None).map(|t| t.matches("anything")).unwrap_or(false));
        assert!(!glob(b"a*b*c*d*e*f", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
    }

    #[test]
    fn rates_and_durations_parse() {
        assert_eq!("10/m".parse(), Ok(Rate { count: 10, per: Duration::from_secs(60) }));
        assert_eq!("3/10s".parse(), Ok(Rate { count: 3, per: Duration::from_secs(10) }));
        assert!("0/m".parse::<Rate>().is_err() && "10".parse::<Rate>().is_err() && "1/y".parse::<Rate>().is_err());
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0s").is_err() && parse_duration("5").is_err());
        assert_eq!(git_host("https://u@h.invalid:8443/a"), "h.invalid:8443");
        assert_eq!(git_host("git@h.invalid:a/b"), "h.invalid");
        assert_eq!(image_name("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b");
        assert_eq!(image_name("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
    }

    /// The rate limit holds per host: three watches of one registry, 2 polls per 10 s,
    /// each wanting a poll every second, poll at most 2 + 2 per 10 s after the first
    /// burst; a watch of another host is not held back.
    #[test]
    fn the_rate_limit_holds_per_host() {
        let settings = Settings {
            rates: BTreeMap::from([("r1:5000".to_string(), Rate { count: 2, per: Duration::from_secs(10) })]),
            default_rate: None,
            ..Settings::default()
        };
        let watches = [
            watch("a", "r1:5000/a", "1s"),
            watch("b", "r1:5000/b", "1s"),
            watch("c", "r1:5000/c", "1s"),
            watch("d", "r2:5000/d", "1s"),
        ];
        let mut s = Scheduler::new(&watches, settings, 0, 7);
        let mut polls: Vec<(i64, usize)> = Vec::new();
        for now in (0..60_000).step_by(100) {
            for i in s.due(now) {
                polls.push((now, i));
                s.finished(i, now + 50, true);
            }
        }
        let r1 = |from: i64, to: i64| polls.iter().filter(|(t, i)| *i < 3 && (from..to).contains(t)).count();
        for start in (0..50_000).step_by(1000) {
            assert!(
                r1(start, start + 10_000) <= 3,
                "{} polls of r1 in 10 s from {start}: {polls:?}",
                r1(start, start + 10_000)
            );
        }
        assert!(r1(0, 60_000) >= 10, "the bucket refills: {polls:?}");
        let d = polls.iter().filter(|(_, i)| *i == 3).count();
        assert!(d >= 55, "the other host polls every second: {d}");
    }

    /// Failures back off exponentially with jitter up to the cap, a success resets it,
    /// and a running poll is never started again.
    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let settings = Settings {
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            default_rate: None,
            ..Settings::default()
        };
        let mut s = Scheduler::new(&[watch("a", "r1/a", "5s")], settings, 0, 42);
        assert_eq!(s.due(0), [0]);
        assert!(s.due(100_000).is_empty(), "running: not again");
        let mut delays = Vec::new();
        let mut now = 0;
        for _ in 0..10 {
            let d = s.finished(0, now, false);
            delays.push(d);
            now += i64::try_from(d.as_millis()).unwrap_or(0);
            assert!(s.due(now - 1).is_empty(), "not before the backoff");
            assert_eq!(s.due(now), [0]);
        }
        for (k, d) in delays.iter().enumerate() {
            let full = Duration::from_secs(1u64 << k.min(20)).min(Duration::from_secs(30));
            assert!(*d >= full / 2 && *d <= full, "failure {}: {d:?} not in [{:?}, {full:?}]", k + 1, full / 2);
        }
        assert!(delays[9] <= Duration::from_secs(30));
        let distinct: BTreeSet<u128> = delays[5..].iter().map(Duration::as_millis).collect();
        assert!(distinct.len() > 1, "jittered: {delays:?}");
        assert_eq!(s.finished(0, now, true), Duration::from_secs(5));
        assert_eq!(s.failures(0), 0);
    }

    /// A lister over fixed data (the scheduling's and the dedupe's unit tests only; the
    /// real ones talk to a registry and a Git server in tests/it/serve.rs).
    #[derive(Default)]
    struct Fixed {
        images: Mutex<BTreeMap<String, String>>,
        git: Mutex<Vec<(String, String)>>,
    }

    impl Lister for Fixed {
        fn image_tags<'a>(&'a self, repository: &'a str, max: usize) -> BoxFuture<'a, Result<Listed, ListError>> {
            let tags: Vec<(String, String)> = self
                .images
                .lock()
                .map(|m| {
                    m.keys()
                        .filter_map(|k| {
                            k.strip_prefix(&format!("{repository}:")).map(|t| (t.to_string(), String::new()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let truncated = tags.len() > max;
            Box::pin(async move { Ok(Listed { tags: tags.into_iter().take(max).collect(), truncated }) })
        }
        fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, ListError>> {
            let d = self.images.lock().ok().and_then(|m| m.get(image).cloned());
            Box::pin(async move { Ok(d) })
        }
        fn git_tags<'a>(&'a self, _url: &'a str, _max: usize) -> BoxFuture<'a, Result<Listed, ListError>> {
            let tags = self.git.lock().map(|g| g.clone()).unwrap_or_default();
            Box::pin(async move { Ok(Listed { tags, truncated: false }) })
        }
    }

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[tokio::test]
    async fn each_digest_is_one_job_and_each_tag_one_verify() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let queue: Arc<dyn Queue> = Arc::new(
            crate::queue::sqlite::Sqlite::open(&dir.path().join("q.sqlite3")).unwrap_or_else(|e| panic!("{e}")),
        );
        let lister = Fixed::default();
        let put = |k: &str, d: String| {
            if let Ok(mut m) = lister.images.lock() {
                m.insert(k.to_string(), d);
            }
        };
        put("r:5000/app:v1", digest('a'));
        put("r:5000/app:v2", digest('b'));
        put("r:5000/app:dev", digest('c'));
        let mut e = entry("app");
        e.image = Some("r:5000/app".into());
        e.tags = Some("v*".into());
        let w = Watch::from_entry(&e).unwrap_or_else(|e| panic!("{e}"));
        let settings = Settings::default();
        let mut seen = Seen::default();
        assert_eq!(poll(&w, &lister, &queue, &settings, &mut seen, 1).await, Ok(2));
        assert_eq!(poll(&w, &lister, &queue, &settings, &mut seen, 2).await, Ok(0));
        // Re-tagged: the digest is known. A restart (nothing seen) finds the jobs in the queue.
        put("r:5000/app:v3", digest('a'));
        assert_eq!(poll(&w, &lister, &queue, &settings, &mut Seen::default(), 3).await, Ok(0));
        put("r:5000/app:v4", digest('d'));
        assert_eq!(poll(&w, &lister, &queue, &settings, &mut seen, 4).await, Ok(1));
        let jobs = queue
            .list(&crate::queue::Filter { watch: Some("app".into()), limit: 10, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jobs.len(), 3);
        assert!(jobs
            .iter()
            .all(|j| matches!(&j.spec, JobSpec::Audit(a) if a.push && a.watch.as_deref() == Some("app"))));
        let none = queue
            .list(&crate::queue::Filter { watch: Some("other".into()), limit: 10, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_empty());

        // Git: a tag whose release image is not published yet waits for a later poll.
        let g = Watch::from_entry(&WatchEntry {
            name: "src".into(),
            git: Some("http://127.0.0.1:1/repo".into()),
            reference: Some("oci://r:5000/app:{tag}#/usr/local/bin/app".into()),
            toolchain: Some(format!("r:5000/go@{}", digest('f'))),
            tags: Some("v*".into()),
            ..WatchEntry::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        if let Ok(mut t) = lister.git.lock() {
            *t = vec![("v1".into(), "1".repeat(40)), ("v9".into(), "9".repeat(40)), ("x".into(), "2".repeat(40))];
        }
        let mut seen = Seen::default();
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut seen, 5).await, Ok(1));
        put("r:5000/app:v9", digest('e'));
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut seen, 6).await, Ok(1));
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut seen, 7).await, Ok(0));
        let jobs = queue
            .list(&crate::queue::Filter { watch: Some("src".into()), limit: 10, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        let refs: BTreeSet<String> = jobs
            .iter()
            .filter_map(|j| match &j.spec {
                JobSpec::Verify(v) => Some(format!("{} {}", v.rev, v.reference)),
                _ => None,
            })
            .collect();
        assert_eq!(
            refs,
            BTreeSet::from([
                format!("{} oci://r:5000/app@{}#/usr/local/bin/app", "1".repeat(40), digest('a')),
                format!("{} oci://r:5000/app@{}#/usr/local/bin/app", "9".repeat(40), digest('e')),
            ])
        );
    }

    /// A Git watch's reference URLs are downloaded once per tag, also across a restart
    /// (nothing seen; the queue knows the tag's job) and by another server polling.
    #[tokio::test]
    async fn a_tags_reference_url_is_not_downloaded_again_after_a_restart() {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let path = String::from_utf8_lossy(&buf[..n]).split(' ').nth(1).unwrap_or("/").to_string();
                counted.fetch_add(1, Ordering::SeqCst);
                let body = format!("the release at {path}");
                let _ = write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            }
        });
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let queue: Arc<dyn Queue> = Arc::new(
            crate::queue::sqlite::Sqlite::open(&dir.path().join("q.sqlite3")).unwrap_or_else(|e| panic!("{e}")),
        );
        let fetch =
            crate::fetch::Fetch { loopback_http: true, ..crate::fetch::Fetch::new(1 << 20, Duration::from_secs(10)) };
        let settings = Settings { references: Some((dir.path().join("references"), fetch)), ..Settings::default() };
        let g = Watch::from_entry(&WatchEntry {
            name: "bin".into(),
            git: Some("http://127.0.0.1:1/repo".into()),
            reference: Some(format!("http://127.0.0.1:{port}/releases/{{tag}}/app")),
            toolchain: Some(format!("r:5000/go@{}", digest('f'))),
            ..WatchEntry::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let lister = Fixed::default();
        if let Ok(mut t) = lister.git.lock() {
            *t = vec![("v1".into(), "1".repeat(40))];
        }
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut Seen::default(), 1).await, Ok(1));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // Restarted (or another server): nothing seen, nothing downloaded, nothing new.
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut Seen::default(), 2).await, Ok(0));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // A new tag is downloaded, once.
        if let Ok(mut t) = lister.git.lock() {
            t.push(("v2".into(), "2".repeat(40)));
        }
        let mut seen = Seen::default();
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut seen, 3).await, Ok(1));
        assert_eq!(poll(&g, &lister, &queue, &settings, &mut seen, 4).await, Ok(0));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        let jobs = queue
            .list(&crate::queue::Filter { watch: Some("bin".into()), limit: 10, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        let digests: BTreeSet<Option<String>> = jobs
            .iter()
            .map(|j| match &j.spec {
                JobSpec::Verify(v) => v.reference_digest.clone(),
                _ => None,
            })
            .collect();
        let want = |tag: &str| {
            Some(format!("sha256:{}", stdx::sha256_hex(format!("the release at /releases/{tag}/app").as_bytes())))
        };
        assert_eq!(digests, BTreeSet::from([want("v1"), want("v2")]));
    }
}
