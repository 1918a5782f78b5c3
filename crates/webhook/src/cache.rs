//! The decision cache: bounded, least-recently-used eviction, single flight.
//!
//! Keyed by (image as written, namespace, policy digest). An allowed decision lives
//! until the earliest expiry of the verdicts it rests on or the TTL, whichever comes
//! first; a denial for the (short) denial TTL; a failure (a [`DecideError`], a decision
//! made from an error, a deadline) is never stored. Reviews that ask for a key being
//! decided wait for that one decision instead of starting their own.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::{Decide, DecideError, Decision, ImageUse};

/// The cache's bounds and lifetimes.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The most decisions kept (each is a few hundred bytes: the reference, the
    /// message, the warnings).
    pub max_entries: usize,
    /// How long an allowed decision is kept at most.
    pub ttl: Duration,
    /// How long a denial is kept (briefly: a VSA pushed after a denial is seen soon).
    pub denial_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig { max_entries: 10_000, ttl: Duration::from_secs(300), denial_ttl: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    image: String,
    namespace: String,
    policy: String,
}

type Outcome = Result<Arc<Decision>, DecideError>;

enum Slot {
    Ready { decision: Arc<Decision>, expires: Instant, tick: u64 },
    Flight(watch::Receiver<Option<Outcome>>),
}

#[derive(Default)]
struct State {
    map: HashMap<Key, Slot>,
    /// Ready entries by last use, oldest first.
    lru: BTreeMap<u64, Key>,
    tick: u64,
}

pub(crate) struct Cache {
    config: CacheConfig,
    state: Arc<Mutex<State>>,
    metrics: Arc<Metrics>,
}

enum Step {
    Hit(Arc<Decision>),
    Wait(watch::Receiver<Option<Outcome>>),
    Lead(watch::Sender<Option<Outcome>>, watch::Receiver<Option<Outcome>>),
}

impl Cache {
    pub(crate) fn new(config: CacheConfig, metrics: Arc<Metrics>) -> Cache {
        Cache { config, state: Arc::new(Mutex::new(State::default())), metrics }
    }

    /// Entries held (ready and in flight).
    pub(crate) fn len(&self) -> usize {
        self.state.lock().map(|s| s.map.len()).unwrap_or(0)
    }

    /// The decision for `image`: from the cache, from a decision in flight, or from a
    /// new one. Past `deadline` the answer is a denial (`deadline-exceeded`).
    pub(crate) async fn decide<D: Decide>(
        &self,
        decider: &Arc<D>,
        image: ImageUse,
        policy: String,
        deadline: Instant,
    ) -> Decision {
        let key = Key { image: image.image.clone(), namespace: image.namespace.clone(), policy };
        let step = {
            let Ok(mut st) = self.state.lock() else {
                return internal_denial("the decision cache is unusable (a thread panicked holding it)");
            };
            let now = Instant::now();
            st.tick += 1;
            let tick = st.tick;
            let mut expired = None;
            let step = match st.map.get_mut(&key) {
                Some(Slot::Ready { decision, expires, tick: t }) if *expires > now => {
                    let old = std::mem::replace(t, tick);
                    let d = decision.clone();
                    expired = Some((old, Some(tick)));
                    Some(Step::Hit(d))
                }
                Some(Slot::Ready { tick: t, .. }) => {
                    expired = Some((*t, None));
                    None
                }
                // A decision whose task ended without an answer (it panicked) is gone:
                // start a new one rather than wait on it forever.
                Some(Slot::Flight(rx)) if rx.has_changed().is_err() && rx.borrow().is_none() => {
                    st.map.remove(&key);
                    None
                }
                Some(Slot::Flight(rx)) => Some(Step::Wait(rx.clone())),
                None => None,
            };
            if let Some((old, new)) = expired {
                st.lru.remove(&old);
                match new {
                    Some(n) => {
                        st.lru.insert(n, key.clone());
                    }
                    None => {
                        st.map.remove(&key);
                    }
                }
            }
            match step {
                Some(s) => s,
                None => {
                    let (tx, rx) = watch::channel(None);
                    st.map.insert(key.clone(), Slot::Flight(rx.clone()));
                    Step::Lead(tx, rx)
                }
            }
        };
        let mut rx = match step {
            Step::Hit(d) => {
                self.metrics.cache("hit");
                return (*d).clone();
            }
            Step::Wait(rx) => {
                self.metrics.cache("shared");
                rx
            }
            Step::Lead(tx, rx) => {
                self.metrics.cache("miss");
                // The decision runs on its own task: a review that gives up (its deadline,
                // its connection closed) does not cancel it for the others.
                let decider = decider.clone();
                let state = self.state.clone();
                let metrics = self.metrics.clone();
                let config = self.config.clone();
                tokio::spawn(async move {
                    metrics.fetch_started();
                    let outcome = match tokio::time::timeout_at(deadline, decider.decide(&image, deadline)).await {
                        Ok(Ok(d)) => Ok(Arc::new(d)),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(deadline_error()),
                    };
                    if let Err(e) = &outcome {
                        metrics.fetch_error(&e.reason);
                    }
                    store(&state, &config, key, &outcome);
                    let _ = tx.send(Some(outcome));
                });
                rx
            }
        };
        let waited = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
        let outcome = match waited {
            Ok(Ok(v)) => v.clone(),
            Ok(Err(_)) => Some(Err(DecideError {
                reason: "internal-error".into(),
                message: "the decision ended without an answer; retry".into(),
            })),
            Err(_) => Some(Err(deadline_error())),
        };
        match outcome {
            Some(Ok(d)) => (*d).clone(),
            Some(Err(e)) => error_denial(&e),
            None => internal_denial("no decision"),
        }
    }
}

/// Stores a finished decision (or removes the flight), evicting the least recently
/// used entries beyond the bound.
fn store(state: &Mutex<State>, config: &CacheConfig, key: Key, outcome: &Outcome) {
    let Ok(mut st) = state.lock() else { return };
    st.map.remove(&key);
    let Ok(d) = outcome else { return };
    if d.from_error || config.max_entries == 0 {
        return;
    }
    let now = Instant::now();
    let mut life = if d.allowed { config.ttl } else { config.denial_ttl };
    if let Some(exp) = d.earliest_expiry {
        match exp.duration_since(SystemTime::now()) {
            Ok(left) => life = life.min(left),
            Err(_) => return, // already expired: decide again next time
        }
    }
    if life.is_zero() {
        return;
    }
    while st.map.len() >= config.max_entries {
        let Some((_, old)) = st.lru.pop_first() else { break };
        st.map.remove(&old);
    }
    if st.map.len() >= config.max_entries {
        return; // every slot is a decision in flight
    }
    st.tick += 1;
    let tick = st.tick;
    st.lru.insert(tick, key.clone());
    st.map.insert(key, Slot::Ready { decision: d.clone(), expires: now + life, tick });
}

fn deadline_error() -> DecideError {
    DecideError {
        reason: "deadline-exceeded".into(),
        message: "reprove could not decide before the webhook's deadline (the registry or the verification was too slow); nothing was admitted: retry, and if it persists check the registry's health".into(),
    }
}

/// A failure is a denial (fail closed), never cached.
fn error_denial(e: &DecideError) -> Decision {
    Decision {
        allowed: false,
        reason: e.reason.clone(),
        message: e.message.clone(),
        warnings: Vec::new(),
        earliest_expiry: None,
        digest: None,
        from_error: true,
    }
}

fn internal_denial(message: &str) -> Decision {
    error_denial(&DecideError { reason: "internal-error".into(), message: message.into() })
}
