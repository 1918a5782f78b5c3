//! `/metrics` in the Prometheus text exposition format 0.0.4: the queue's counts read at
//! scrape time, and this process's counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::queue::Stats;

/// Job durations' upper bounds, in seconds.
const BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// (kind, state) → finished jobs' duration histogram.
    durations: BTreeMap<(&'static str, &'static str), Histogram>,
    /// failure class → jobs of this process that failed with it.
    failures: BTreeMap<String, u64>,
    /// code → refused requests.
    rejected: BTreeMap<&'static str, u64>,
    /// (method, status) → answered requests.
    requests: BTreeMap<(String, u16), u64>,
    submitted: u64,
    deduplicated: u64,
    leases_lost: u64,
    workers: u64,
    busy: u64,
    /// Remote worker (loop) → when it last called the worker API, and how long that counts.
    remote: BTreeMap<String, std::time::Instant>,
    remote_window: Duration,
    /// (watch, result) → polls.
    watch_polls: BTreeMap<(String, &'static str), u64>,
    /// watch → jobs it submitted that were new.
    watch_new: BTreeMap<String, u64>,
    /// watch → failures in a row (0 after a success).
    watch_failing: BTreeMap<String, u64>,
}

/// Remote workers remembered at most (their names come from token holders only).
const MAX_REMOTE: usize = 4096;

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Failure classes kept as distinct label values before the rest count as `other`.
const MAX_CLASSES: usize = 32;

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.inner.lock() {
            f(&mut c);
        }
    }

    pub(crate) fn finished(&self, kind: &'static str, state: &'static str, took: Duration, class: Option<&str>) {
        self.with(|c| {
            let h = c.durations.entry((kind, state)).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
            if let Some(class) = class {
                let class =
                    if c.failures.len() < MAX_CLASSES || c.failures.contains_key(class) { class } else { "other" };
                *c.failures.entry(class.to_string()).or_default() += 1;
            }
        });
    }

    pub(crate) fn rejected(&self, code: &'static str) {
        self.with(|c| *c.rejected.entry(code).or_default() += 1);
    }

    pub(crate) fn request(&self, method: &str, status: u16) {
        let method = match method {
            "GET" | "POST" | "HEAD" => method,
            _ => "other",
        };
        self.with(|c| *c.requests.entry((method.to_string(), status)).or_default() += 1);
    }

    pub(crate) fn submitted(&self, new: bool) {
        self.with(|c| if new { c.submitted += 1 } else { c.deduplicated += 1 });
    }

    pub(crate) fn lease_lost(&self) {
        self.with(|c| c.leases_lost += 1);
    }

    pub(crate) fn workers(&self, n: u64) {
        self.with(|c| c.workers = n);
    }

    /// The remote worker `worker` called the worker API; it counts for `window`.
    pub(crate) fn remote_seen(&self, worker: &str, window: Duration) {
        self.with(|c| {
            let now = std::time::Instant::now();
            c.remote_window = window;
            if c.remote.len() >= MAX_REMOTE && !c.remote.contains_key(worker) {
                c.remote.retain(|_, t| now.duration_since(*t) <= window);
            }
            if c.remote.len() < MAX_REMOTE || c.remote.contains_key(worker) {
                c.remote.insert(worker.to_string(), now);
            }
        });
    }

    pub(crate) fn busy(&self, delta: i64) {
        self.with(|c| c.busy = c.busy.saturating_add_signed(delta));
    }

    /// A poll of `watch` ended with `result` (`ok`, `error`); `failing`: failures in a row.
    pub(crate) fn watch_poll(&self, watch: &str, result: &'static str, failing: u32) {
        self.with(|c| {
            *c.watch_polls.entry((watch.to_string(), result)).or_default() += 1;
            c.watch_failing.insert(watch.to_string(), u64::from(failing));
        });
    }

    /// `watch` submitted `n` new jobs.
    pub(crate) fn watch_new(&self, watch: &str, n: u64) {
        self.with(|c| *c.watch_new.entry(watch.to_string()).or_default() += n);
    }

    /// Declares `watch` (its counters at zero), so that every watch shows from the start.
    pub(crate) fn watch_declare(&self, watch: &str) {
        self.with(|c| {
            c.watch_new.entry(watch.to_string()).or_default();
            c.watch_failing.entry(watch.to_string()).or_default();
            for r in ["ok", "error"] {
                c.watch_polls.entry((watch.to_string(), r)).or_default();
            }
        });
    }

    pub(crate) fn render(&self, stats: Option<&Stats>) -> String {
        let mut out = String::new();
        let o = &mut out;
        if let Some(stats) = stats {
            head(o, "reprove_serve_jobs", "gauge", "Jobs in the queue by state.");
            for (state, n) in &stats.by_state {
                let _ = writeln!(o, "reprove_serve_jobs{{state=\"{}\"}} {n}", state.as_str());
            }
            head(o, "reprove_serve_jobs_failed", "gauge", "Failed jobs in the queue by failure class.");
            for (class, n) in &stats.failed_by_class {
                let _ = writeln!(o, "reprove_serve_jobs_failed{{class=\"{}\"}} {n}", escape(class));
            }
            head(o, "reprove_serve_queue_oldest_seconds", "gauge", "Age of the oldest queued job.");
            let _ = writeln!(o, "reprove_serve_queue_oldest_seconds {}", stats.oldest_queued_secs);
        }
        head(o, "reprove_serve_queue_up", "gauge", "Whether the queue answered this scrape.");
        let _ = writeln!(o, "reprove_serve_queue_up {}", u8::from(stats.is_some()));
        let Ok(c) = self.inner.lock() else { return out };
        head(o, "reprove_serve_workers", "gauge", "Workers of this process.");
        let _ = writeln!(o, "reprove_serve_workers {}", c.workers);
        head(
            o,
            "reprove_serve_remote_workers",
            "gauge",
            "Remote workers (reprove worker job slots) heard from lately.",
        );
        let recent = c.remote.values().filter(|t| t.elapsed() <= c.remote_window).count();
        let _ = writeln!(o, "reprove_serve_remote_workers {recent}");
        head(o, "reprove_serve_workers_busy", "gauge", "Workers of this process running a job.");
        let _ = writeln!(o, "reprove_serve_workers_busy {}", c.busy);
        head(o, "reprove_serve_submissions_total", "counter", "Submissions by outcome.");
        let _ = writeln!(o, "reprove_serve_submissions_total{{result=\"created\"}} {}", c.submitted);
        let _ = writeln!(o, "reprove_serve_submissions_total{{result=\"existing\"}} {}", c.deduplicated);
        head(o, "reprove_serve_leases_lost_total", "counter", "Jobs whose lease a worker of this process lost.");
        let _ = writeln!(o, "reprove_serve_leases_lost_total {}", c.leases_lost);
        head(o, "reprove_serve_failures_total", "counter", "Jobs this process finished as failed, by class.");
        for (class, n) in &c.failures {
            let _ = writeln!(o, "reprove_serve_failures_total{{class=\"{}\"}} {n}", escape(class));
        }
        head(o, "reprove_serve_rejected_total", "counter", "Requests refused, by reason.");
        for (code, n) in &c.rejected {
            let _ = writeln!(o, "reprove_serve_rejected_total{{reason=\"{code}\"}} {n}");
        }
        head(o, "reprove_serve_requests_total", "counter", "Requests answered, by method and status.");
        for ((m, s), n) in &c.requests {
            let _ = writeln!(o, "reprove_serve_requests_total{{method=\"{m}\",code=\"{s}\"}} {n}");
        }
        if !c.watch_polls.is_empty() {
            head(o, "reprove_serve_watch_polls_total", "counter", "Polls of each watch, by result.");
            for ((w, r), n) in &c.watch_polls {
                let _ = writeln!(o, "reprove_serve_watch_polls_total{{watch=\"{}\",result=\"{r}\"}} {n}", escape(w));
            }
            head(o, "reprove_serve_watch_new_total", "counter", "New jobs each watch submitted.");
            for (w, n) in &c.watch_new {
                let _ = writeln!(o, "reprove_serve_watch_new_total{{watch=\"{}\"}} {n}", escape(w));
            }
            head(o, "reprove_serve_watch_failing", "gauge", "Failed polls in a row of each watch.");
            for (w, n) in &c.watch_failing {
                let _ = writeln!(o, "reprove_serve_watch_failing{{watch=\"{}\"}} {n}", escape(w));
            }
        }
        head(o, "reprove_serve_job_duration_seconds", "histogram", "Run time of the jobs this process finished.");
        for ((kind, state), h) in &c.durations {
            let l = format!("kind=\"{kind}\",state=\"{state}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(o, "reprove_serve_job_duration_seconds_bucket{{{l},le=\"{b}\"}} {}", h.buckets[i]);
            }
            let _ = writeln!(o, "reprove_serve_job_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(o, "reprove_serve_job_duration_seconds_sum{{{l}}} {}", h.sum);
            let _ = writeln!(o, "reprove_serve_job_duration_seconds_count{{{l}}} {}", h.count);
        }
        out
    }
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
