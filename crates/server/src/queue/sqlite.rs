//! The embedded queue: one SQLite database in WAL mode, one connection (one writer),
//! every change a transaction synced before it returns (`synchronous = FULL`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension as _, Row, TransactionBehavior};

use super::{
    clip_log_line, Attestation, Day, Filter, Job, LogLine, Outcome, PollClaim, Queue, QueueError, State, Stats,
    LOG_LINES,
};
use crate::job::JobSpec;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    image TEXT,
    image_digest TEXT,
    module TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires INTEGER,
    heartbeat_at INTEGER,
    progress TEXT,
    created_at INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    verdict TEXT,
    report TEXT,
    attestations TEXT NOT NULL DEFAULT '[]',
    failure_class TEXT,
    failure_message TEXT,
    results_stored INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (state, queued_at);
CREATE INDEX IF NOT EXISTS jobs_image ON jobs (image_digest, finished_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at);
CREATE TABLE IF NOT EXISTS job_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    at INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_log_job ON job_log (job, seq);
CREATE TABLE IF NOT EXISTS watch_polls (
    name TEXT PRIMARY KEY,
    next_at INTEGER NOT NULL,
    holder TEXT,
    lease_until INTEGER,
    failures INTEGER NOT NULL DEFAULT 0
);
";

const COLUMNS: &str = "id, key, spec, state, image, image_digest, module, attempts, lease_owner, lease_expires, \
    progress, created_at, queued_at, started_at, finished_at, verdict, report, attestations, failure_class, \
    failure_message, results_stored";

/// The SQLite queue.
pub struct Sqlite {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, QueueError> {
        let err =
            |e: rusqlite::Error| QueueError::Database { path: path.display().to_string(), message: e.to_string() };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(QueueError::Database {
                path: path.display().to_string(),
                message: format!("WAL mode refused (journal mode {mode})"),
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;").map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Sqlite { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    fn err(&self, e: rusqlite::Error) -> QueueError {
        QueueError::Database { path: self.path.display().to_string(), message: e.to_string() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, QueueError>) -> Result<T, QueueError> {
        let mut conn = self.conn.lock().map_err(|_| QueueError::Database {
            path: self.path.display().to_string(),
            message: "a previous transaction panicked".into(),
        })?;
        f(&mut conn)
    }

    fn job_by_id(&self, conn: &Connection, id: &str) -> Result<Option<Job>, QueueError> {
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], raw).optional())
            .map_err(|e| self.err(e))?;
        row.map(RawJob::into_job).transpose()
    }

    /// Appends a line to the log of `id`, dropping its oldest beyond [`LOG_LINES`].
    fn log(&self, conn: &Connection, id: &str, at_ms: i64, line: &str) -> Result<(), QueueError> {
        conn.execute(
            "INSERT INTO job_log (job, at, line) VALUES (?1, ?2, ?3)",
            params![id, at_ms, clip_log_line(line)],
        )
        .map_err(|e| self.err(e))?;
        conn.execute(
            "DELETE FROM job_log WHERE job = ?1 AND seq <= \
             (SELECT seq FROM job_log WHERE job = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            params![id, LOG_LINES],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// A row before its JSON columns are parsed (also the PostgreSQL queue's).
pub(super) struct RawJob {
    pub(super) id: String,
    pub(super) key: String,
    pub(super) spec: String,
    pub(super) state: String,
    pub(super) image: Option<String>,
    pub(super) image_digest: Option<String>,
    pub(super) module: Option<String>,
    pub(super) attempts: u32,
    pub(super) lease_owner: Option<String>,
    pub(super) lease_expires: Option<i64>,
    pub(super) progress: Option<String>,
    pub(super) created: i64,
    pub(super) queued: i64,
    pub(super) started: Option<i64>,
    pub(super) finished: Option<i64>,
    pub(super) verdict: Option<String>,
    pub(super) report: Option<String>,
    pub(super) attestations: String,
    pub(super) failure_class: Option<String>,
    pub(super) failure_message: Option<String>,
    pub(super) results_stored: u32,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        id: r.get(0)?,
        key: r.get(1)?,
        spec: r.get(2)?,
        state: r.get(3)?,
        image: r.get(4)?,
        image_digest: r.get(5)?,
        module: r.get(6)?,
        attempts: r.get(7)?,
        lease_owner: r.get(8)?,
        lease_expires: r.get(9)?,
        progress: r.get(10)?,
        created: r.get(11)?,
        queued: r.get(12)?,
        started: r.get(13)?,
        finished: r.get(14)?,
        verdict: r.get(15)?,
        report: r.get(16)?,
        attestations: r.get(17)?,
        failure_class: r.get(18)?,
        failure_message: r.get(19)?,
        results_stored: r.get(20)?,
    })
}

impl RawJob {
    pub(super) fn into_job(self) -> Result<Job, QueueError> {
        let corrupt = |m: String| QueueError::Corrupt { id: self.id.clone(), message: m };
        let spec: JobSpec = serde_json::from_str(&self.spec).map_err(|e| corrupt(format!("spec: {e}")))?;
        let state = State::parse(&self.state).ok_or_else(|| corrupt(format!("state {:?}", self.state)))?;
        let attestations: Vec<Attestation> =
            serde_json::from_str(&self.attestations).map_err(|e| corrupt(format!("attestations: {e}")))?;
        Ok(Job {
            id: self.id,
            key: self.key,
            spec,
            state,
            image: self.image,
            image_digest: self.image_digest,
            module: self.module,
            attempts: self.attempts,
            lease_owner: self.lease_owner,
            lease_expires_ms: self.lease_expires,
            progress: self.progress,
            created_ms: self.created,
            queued_ms: self.queued,
            started_ms: self.started,
            finished_ms: self.finished,
            verdict: self.verdict,
            report: self.report,
            attestations,
            failure_class: self.failure_class,
            failure_message: self.failure_message,
            results_stored: self.results_stored,
        })
    }
}

impl Queue for Sqlite {
    fn submit(&self, spec: &JobSpec, now_ms: i64) -> Result<(Job, bool), QueueError> {
        let key = spec.key();
        let id = spec.id();
        let text = serde_json::to_string(spec)
            .map_err(|e| QueueError::Corrupt { id: id.clone(), message: format!("spec: {e}") })?;
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO jobs (id, key, kind, spec, state, image, image_digest, created_at, queued_at) \
                     VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?7)",
                    params![id, key, spec.kind(), text, spec.image(), spec.image_digest(), now_ms],
                )
                .map_err(|e| self.err(e))?;
            if inserted == 1 {
                self.log(&tx, &id, now_ms, &format!("submitted: {} job", spec.kind()))?;
            }
            let job = self.job_by_id(&tx, &id)?;
            tx.commit().map_err(|e| self.err(e))?;
            let job = job.ok_or_else(|| QueueError::Corrupt { id, message: "inserted but not found".into() })?;
            Ok((job, inserted == 1))
        })
    }

    fn get(&self, id: &str) -> Result<Option<Job>, QueueError> {
        self.with(|conn| self.job_by_id(conn, id))
    }

    fn list(&self, filter: &Filter) -> Result<Vec<Job>, QueueError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR state = ?1) \
                     AND (?2 IS NULL OR image = ?2 OR image_digest = ?2) AND (?3 IS NULL OR module = ?3) \
                     AND (?5 IS NULL OR (substr(image, 1, length(?5) + 1) IN (?5 || '@', ?5 || ':') \
                          AND instr(substr(image, length(?5) + 2), '/') = 0)) \
                     AND (?7 IS NULL OR json_extract(spec, '$.watch') = ?7) \
                     ORDER BY created_at DESC, id LIMIT ?4 OFFSET ?6"
                ))
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(
                    params![
                        filter.state.map(State::as_str),
                        filter.image,
                        filter.module,
                        filter.limit,
                        filter.repository,
                        filter.offset,
                        filter.watch
                    ],
                    raw,
                )
                .map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(r.map_err(|e| self.err(e))?.into_job()?);
            }
            Ok(out)
        })
    }

    fn claim(&self, worker: &str, now_ms: i64, lease_ms: i64, max_attempts: u32) -> Result<Option<Job>, QueueError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let claimed = loop {
                // The oldest queued job and the oldest whose lease expired, each through the
                // (state, queued_at) index (one query with OR would sort every queued job);
                // the older of the two is claimed.
                let oldest = |sql: &str, param: Option<i64>| {
                    tx.prepare_cached(sql)
                        .and_then(|mut st| {
                            st.query_row(params![param], |r| {
                                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?, r.get(3)?))
                            })
                            .optional()
                        })
                        .map_err(|e| self.err(e))
                };
                let queued: Option<(i64, String, u32, Option<String>)> = oldest(
                    "SELECT queued_at, id, attempts, NULL FROM jobs WHERE state = 'queued' AND ?1 IS NULL \
                     ORDER BY queued_at, id LIMIT 1",
                    None,
                )?;
                let expired = oldest(
                    "SELECT queued_at, id, attempts, lease_owner FROM jobs \
                     WHERE state = 'running' AND lease_expires < ?1 ORDER BY queued_at, id LIMIT 1",
                    Some(now_ms),
                )?;
                let next = match (queued, expired) {
                    (Some(q), Some(e)) => Some(if (e.0, &e.1) < (q.0, &q.1) { e } else { q }),
                    (q, e) => q.or(e),
                };
                let Some((_, id, attempts, lost)) = next else { break None };
                if let Some(lost) = lost {
                    self.log(&tx, &id, now_ms, &format!("the lease of worker {lost} expired: its worker was lost"))?;
                }
                if attempts >= max_attempts {
                    let message = format!("its worker was lost {attempts} times (the lease expired each time)");
                    tx.execute(
                        "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires = NULL, finished_at = ?2, \
                         failure_class = 'lease-expired', failure_message = ?3 WHERE id = ?1",
                        params![id, now_ms, message],
                    )
                    .map_err(|e| self.err(e))?;
                    self.log(&tx, &id, now_ms, &format!("failed: lease-expired: {message}"))?;
                    continue;
                }
                tx.execute(
                    "UPDATE jobs SET state = 'running', lease_owner = ?2, lease_expires = ?3, heartbeat_at = ?4, \
                     started_at = ?4, attempts = attempts + 1, progress = NULL WHERE id = ?1",
                    params![id, worker, now_ms + lease_ms, now_ms],
                )
                .map_err(|e| self.err(e))?;
                self.log(&tx, &id, now_ms, &format!("started: attempt {} by worker {worker}", attempts + 1))?;
                break Some(id);
            };
            let job = match claimed {
                Some(id) => self.job_by_id(&tx, &id)?,
                None => None,
            };
            tx.commit().map_err(|e| self.err(e))?;
            Ok(job)
        })
    }

    fn heartbeat(
        &self,
        id: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        progress: Option<&str>,
    ) -> Result<bool, QueueError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let before: Option<Option<String>> = tx
                .query_row(
                    "SELECT progress FROM jobs WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
                    params![id, worker],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(before) = before else { return Ok(false) };
            tx.execute(
                "UPDATE jobs SET lease_expires = ?3, heartbeat_at = ?4, progress = COALESCE(?5, progress) \
                 WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
                params![id, worker, now_ms + lease_ms, now_ms, progress],
            )
            .map_err(|e| self.err(e))?;
            if let Some(step) = progress.filter(|p| before.as_deref() != Some(*p)) {
                self.log(&tx, id, now_ms, &format!("step: {step}"))?;
            }
            tx.commit().map_err(|e| self.err(e))?;
            Ok(true)
        })
    }

    fn finish(&self, id: &str, worker: &str, now_ms: i64, o: &Outcome) -> Result<bool, QueueError> {
        let attestations = serde_json::to_string(&o.attestations)
            .map_err(|e| QueueError::Corrupt { id: id.to_string(), message: format!("attestations: {e}") })?;
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let n = tx
                .execute(
                    "UPDATE jobs SET state = ?3, verdict = ?4, report = ?5, attestations = ?6, \
                     module = COALESCE(?7, module), failure_class = ?8, failure_message = ?9, finished_at = ?10, \
                     lease_owner = NULL, lease_expires = NULL, results_stored = results_stored + 1 \
                     WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
                    params![
                        id,
                        worker,
                        o.state.as_str(),
                        o.verdict,
                        o.report,
                        attestations,
                        o.module,
                        o.failure_class,
                        o.failure_message,
                        now_ms
                    ],
                )
                .map_err(|e| self.err(e))?;
            if n == 1 {
                let mut line = format!("finished: {}", o.state.as_str());
                if let Some(v) = &o.verdict {
                    line.push_str(&format!(", verdict {v}"));
                }
                if let Some(c) = &o.failure_class {
                    line.push_str(&format!(", {c}: {}", o.failure_message.as_deref().unwrap_or("")));
                }
                self.log(&tx, id, now_ms, &line)?;
            }
            tx.commit().map_err(|e| self.err(e))?;
            Ok(n == 1)
        })
    }

    fn release(&self, id: &str, worker: &str) -> Result<bool, QueueError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let n = tx
                .execute(
                    "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires = NULL, \
                     attempts = MAX(attempts - 1, 0) WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
                    params![id, worker],
                )
                .map_err(|e| self.err(e))?;
            if n == 1 {
                // The trait's release takes no time: the log line gets the clock's.
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                self.log(&tx, id, now_ms, &format!("handed back by worker {worker}: queued again"))?;
            }
            tx.commit().map_err(|e| self.err(e))?;
            Ok(n == 1)
        })
    }

    fn retry(&self, id: &str, now_ms: i64) -> Result<Option<Result<Job, State>>, QueueError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            let Some(job) = self.job_by_id(&tx, id)? else { return Ok(None) };
            if !matches!(job.state, State::Done | State::Failed) {
                return Ok(Some(Err(job.state)));
            }
            tx.execute(
                "UPDATE jobs SET state = 'queued', queued_at = ?2, attempts = 0, verdict = NULL, report = NULL, \
                 attestations = '[]', failure_class = NULL, failure_message = NULL, finished_at = NULL, \
                 started_at = NULL, progress = NULL, results_stored = 0 WHERE id = ?1",
                params![id, now_ms],
            )
            .map_err(|e| self.err(e))?;
            self.log(&tx, id, now_ms, &format!("retried: queued again (it was {})", job.state.as_str()))?;
            let job = self.job_by_id(&tx, id)?;
            tx.commit().map_err(|e| self.err(e))?;
            Ok(job.map(Ok))
        })
    }

    fn latest_for_image(&self, digest: &str) -> Result<Option<Job>, QueueError> {
        self.with(|conn| {
            let row = conn
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM jobs WHERE image_digest = ?1 AND state = 'done' \
                         ORDER BY finished_at DESC, id LIMIT 1"
                    ),
                    [digest],
                    raw,
                )
                .optional()
                .map_err(|e| self.err(e))?;
            row.map(RawJob::into_job).transpose()
        })
    }

    fn job_log(&self, id: &str) -> Result<Vec<LogLine>, QueueError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT at, line FROM job_log WHERE job = ?1 ORDER BY seq LIMIT ?2")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![id, LOG_LINES], |r| Ok(LogLine { at_ms: r.get(0)?, line: r.get(1)? }))
                .map_err(|e| self.err(e))?;
            rows.map(|r| r.map_err(|e| self.err(e))).collect()
        })
    }

    fn daily(&self, since_ms: i64) -> Result<Vec<Day>, QueueError> {
        self.with(|conn| {
            // Integer division truncates toward zero: before 1970 is not a concern here.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT finished_at / 86400000, COUNT(*), \
                     SUM(CASE WHEN verdict = 'reproduced' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) \
                     FROM jobs WHERE state IN ('done', 'failed') AND finished_at >= ?1 \
                     GROUP BY finished_at / 86400000 ORDER BY 1",
                )
                .map_err(|e| self.err(e))?;
            let count = |n: i64| n.max(0).unsigned_abs();
            let rows = stmt
                .query_map([since_ms], |r| {
                    Ok(Day {
                        day: r.get(0)?,
                        finished: count(r.get(1)?),
                        reproduced: count(r.get(2)?),
                        failed: count(r.get(3)?),
                    })
                })
                .map_err(|e| self.err(e))?;
            rows.map(|r| r.map_err(|e| self.err(e))).collect()
        })
    }

    fn stats(&self, now_ms: i64) -> Result<Stats, QueueError> {
        self.with(|conn| {
            let mut stats = Stats::default();
            let mut stmt =
                conn.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state").map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0).unsigned_abs())))
                .map_err(|e| self.err(e))?;
            let mut counts = std::collections::BTreeMap::new();
            for r in rows {
                let (s, n) = r.map_err(|e| self.err(e))?;
                if let Some(s) = State::parse(&s) {
                    counts.insert(s, n);
                }
            }
            stats.by_state = State::ALL.iter().map(|s| (*s, counts.get(s).copied().unwrap_or(0))).collect();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT failure_class, COUNT(*) FROM jobs WHERE state = 'failed' GROUP BY failure_class",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, Option<String>>(0)?.unwrap_or_default(), r.get::<_, i64>(1)?.max(0).unsigned_abs()))
                })
                .map_err(|e| self.err(e))?;
            for r in rows {
                stats.failed_by_class.push(r.map_err(|e| self.err(e))?);
            }
            let oldest: Option<i64> = conn
                .query_row("SELECT MIN(queued_at) FROM jobs WHERE state = 'queued'", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            stats.oldest_queued_secs = oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
            Ok(stats)
        })
    }

    fn claim_poll(&self, watch: &str, holder: &str, now_ms: i64, lease_ms: i64) -> Result<PollClaim, QueueError> {
        let until = now_ms.saturating_add(lease_ms);
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
            tx.execute("INSERT OR IGNORE INTO watch_polls (name, next_at) VALUES (?1, 0)", params![watch])
                .map_err(|e| self.err(e))?;
            let claimed: Option<i64> = tx
                .query_row(
                    "UPDATE watch_polls SET holder = ?2, lease_until = ?4 WHERE name = ?1 AND next_at <= ?3 \
                     AND (holder IS NULL OR holder = ?2 OR lease_until < ?3) RETURNING failures",
                    params![watch, holder, now_ms, until],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let answer = match claimed {
                Some(f) => PollClaim::Claimed { failures: u32::try_from(f.max(0)).unwrap_or(u32::MAX) },
                None => {
                    let at: Option<i64> = tx
                        .query_row(
                            "SELECT max(next_at, CASE WHEN holder IS NULL THEN 0 ELSE lease_until END) \
                             FROM watch_polls WHERE name = ?1",
                            params![watch],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(|e| self.err(e))?
                        .flatten();
                    PollClaim::NotBefore(at.unwrap_or(now_ms))
                }
            };
            tx.commit().map_err(|e| self.err(e))?;
            Ok(answer)
        })
    }

    fn finish_poll(&self, watch: &str, holder: &str, next_ms: i64, failures: u32) -> Result<bool, QueueError> {
        self.with(|conn| {
            let n = conn
                .execute(
                    "UPDATE watch_polls SET next_at = ?3, failures = ?4, holder = NULL, lease_until = NULL \
                     WHERE name = ?1 AND holder = ?2",
                    params![watch, holder, next_ms, failures],
                )
                .map_err(|e| self.err(e))?;
            Ok(n == 1)
        })
    }
}
