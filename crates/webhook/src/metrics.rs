//! The counters `/metrics` serves, in the Prometheus text exposition format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::review::result_label;
use crate::Decision;

/// The latency histogram's upper bounds, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Distinct label values kept per label before the rest count as `other` (a reason
/// comes from the policy engine; the set must stay bounded).
const MAX_LABEL_VALUES: usize = 64;

#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// (result, reason) → count
    decisions: BTreeMap<(String, String), u64>,
    /// (endpoint, allowed, dry_run) → count
    reviews: BTreeMap<(&'static str, bool, bool), u64>,
    bad_requests: BTreeMap<&'static str, u64>,
    cache: BTreeMap<&'static str, u64>,
    fetches: u64,
    fetch_errors: BTreeMap<String, u64>,
    tls_reloads: BTreeMap<&'static str, u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

fn bounded(label: &str, taken: usize, known: bool) -> String {
    if known || taken < MAX_LABEL_VALUES {
        label.to_string()
    } else {
        "other".to_string()
    }
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.inner.lock() {
            f(&mut c);
        }
    }

    pub(crate) fn decision(&self, d: &Decision) {
        self.with(|c| {
            let result = result_label(d).to_string();
            let known = c.decisions.contains_key(&(result.clone(), d.reason.clone()));
            let reason = bounded(&d.reason, c.decisions.len(), known);
            *c.decisions.entry((result, reason)).or_default() += 1;
        });
    }

    pub(crate) fn review(&self, endpoint: &'static str, allowed: bool, dry_run: bool, took: Duration) {
        self.with(|c| {
            *c.reviews.entry((endpoint, allowed, dry_run)).or_default() += 1;
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    c.latency_buckets[i] += 1;
                }
            }
            c.latency_count += 1;
            c.latency_sum += s;
        });
    }

    pub(crate) fn bad_request(&self, code: &'static str) {
        self.with(|c| *c.bad_requests.entry(code).or_default() += 1);
    }

    pub(crate) fn cache(&self, what: &'static str) {
        self.with(|c| *c.cache.entry(what).or_default() += 1);
    }

    pub(crate) fn fetch_started(&self) {
        self.with(|c| c.fetches += 1);
    }

    pub(crate) fn fetch_error(&self, reason: &str) {
        self.with(|c| {
            let known = c.fetch_errors.contains_key(reason);
            let reason = bounded(reason, c.fetch_errors.len(), known);
            *c.fetch_errors.entry(reason).or_default() += 1;
        });
    }

    pub(crate) fn tls_reload(&self, ok: bool) {
        self.with(|c| *c.tls_reloads.entry(if ok { "ok" } else { "error" }).or_default() += 1);
    }

    /// The exposition text.
    pub(crate) fn render(&self, cache_entries: usize) -> String {
        let Ok(c) = self.inner.lock() else { return String::new() };
        let mut o = String::new();
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut o,
            "reprove_webhook_decisions_total",
            "counter",
            "Image decisions by result (allowed, warned, denied) and reason.",
        );
        for ((result, reason), n) in &c.decisions {
            let _ = writeln!(
                o,
                "reprove_webhook_decisions_total{{result=\"{}\",reason=\"{}\"}} {n}",
                esc(result),
                esc(reason)
            );
        }
        family(
            &mut o,
            "reprove_webhook_reviews_total",
            "counter",
            "AdmissionReviews answered, by endpoint, answer and dry run.",
        );
        for ((endpoint, allowed, dry_run), n) in &c.reviews {
            let _ = writeln!(o, "reprove_webhook_reviews_total{{endpoint=\"{endpoint}\",allowed=\"{allowed}\",dry_run=\"{dry_run}\"}} {n}");
        }
        family(
            &mut o,
            "reprove_webhook_bad_requests_total",
            "counter",
            "Requests refused before any decision (HTTP 4xx), by cause.",
        );
        for (code, n) in &c.bad_requests {
            let _ = writeln!(o, "reprove_webhook_bad_requests_total{{cause=\"{code}\"}} {n}");
        }
        family(&mut o, "reprove_webhook_review_duration_seconds", "histogram", "Time to answer an AdmissionReview.");
        for (b, n) in BUCKETS.iter().zip(c.latency_buckets.iter()) {
            let _ = writeln!(o, "reprove_webhook_review_duration_seconds_bucket{{le=\"{b}\"}} {n}");
        }
        let _ = writeln!(o, "reprove_webhook_review_duration_seconds_bucket{{le=\"+Inf\"}} {}", c.latency_count);
        let _ = writeln!(o, "reprove_webhook_review_duration_seconds_sum {}", c.latency_sum);
        let _ = writeln!(o, "reprove_webhook_review_duration_seconds_count {}", c.latency_count);
        family(
            &mut o,
            "reprove_webhook_cache_lookups_total",
            "counter",
            "Decision cache lookups: hit, miss, shared (joined a decision in flight).",
        );
        for what in ["hit", "miss", "shared"] {
            let _ = writeln!(
                o,
                "reprove_webhook_cache_lookups_total{{result=\"{what}\"}} {}",
                c.cache.get(what).copied().unwrap_or(0)
            );
        }
        family(&mut o, "reprove_webhook_cache_entries", "gauge", "Decisions cached or in flight.");
        let _ = writeln!(o, "reprove_webhook_cache_entries {cache_entries}");
        family(
            &mut o,
            "reprove_webhook_fetches_total",
            "counter",
            "Decisions made by the policy engine (registry fetches and verifications).",
        );
        let _ = writeln!(o, "reprove_webhook_fetches_total {}", c.fetches);
        family(
            &mut o,
            "reprove_webhook_fetch_errors_total",
            "counter",
            "Decisions that failed (never cached), by reason.",
        );
        for (reason, n) in &c.fetch_errors {
            let _ = writeln!(o, "reprove_webhook_fetch_errors_total{{reason=\"{}\"}} {n}", esc(reason));
        }
        family(
            &mut o,
            "reprove_webhook_tls_reloads_total",
            "counter",
            "Certificate reloads after a change of the files, by result.",
        );
        for what in ["ok", "error"] {
            let _ = writeln!(
                o,
                "reprove_webhook_tls_reloads_total{{result=\"{what}\"}} {}",
                c.tls_reloads.get(what).copied().unwrap_or(0)
            );
        }
        o
    }
}

/// A label value escaped as the text format requires.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
