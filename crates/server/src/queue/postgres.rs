//! The queue on PostgreSQL, shared by several servers: claims with
//! `SELECT … FOR UPDATE SKIP LOCKED` (two servers never lease one job), idempotent
//! submission with `INSERT … ON CONFLICT DO NOTHING`, and the results' blobs in the same
//! database (a `blobs` table), so that every server answers for every job.
//!
//! The schema is created or migrated on open, in one transaction under an advisory lock
//! (servers starting together migrate once), and its version is kept in `schema_version`.
//! Every call is one transaction on a connection of a small pool. A call that meets a dead
//! connection (the server restarted) drops the pool and runs once more on a fresh
//! connection; errors name the URL without its password.
//!
//! The connection is TLS unless the URL says `sslmode=disable` (libpq's
//! `sslmode`, `sslrootcert`, `sslcert`, `sslkey`; `verify-full` by default).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement, Transaction};

#[path = "postgres_tls.rs"]
pub(crate) mod tls;

use super::sqlite::RawJob;
use super::{clip_log_line, Day, Filter, Job, LogLine, Outcome, PollClaim, Queue, QueueError, State, Stats, LOG_LINES};
use crate::job::{valid_digest, JobSpec};

/// The schema's version this build writes; each entry of [`MIGRATIONS`] moves it one up.
const VERSION: i64 = 3;

/// The migrations, in order: entry `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    image TEXT,
    image_digest TEXT,
    module TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires BIGINT,
    heartbeat_at BIGINT,
    progress TEXT,
    created_at BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    verdict TEXT,
    report TEXT,
    attestations TEXT NOT NULL DEFAULT '[]',
    failure_class TEXT,
    failure_message TEXT,
    results_stored BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_claimable ON jobs (queued_at, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_state ON jobs (state);
CREATE INDEX jobs_image ON jobs (image_digest, finished_at);
CREATE INDEX jobs_created ON jobs (created_at);
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
",
    "
CREATE INDEX jobs_finished ON jobs (finished_at);
CREATE TABLE job_log (
    seq BIGSERIAL PRIMARY KEY,
    job TEXT NOT NULL,
    at BIGINT NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX job_log_job ON job_log (job, seq);
",
    // The watches' polls, shared by the servers: who polls next, and when.
    "
CREATE TABLE watch_polls (
    name TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL,
    holder TEXT,
    lease_until BIGINT,
    failures BIGINT NOT NULL DEFAULT 0
);
",
];

/// The advisory lock the migration holds (any constant; "reprove" in ASCII).
const MIGRATION_LOCK: i64 = 0x0072_6570_726f_7665;

/// Idle connections kept for the next calls.
const POOL_IDLE: usize = 16;

/// The largest blob read back (as the directory store's).
const MAX_BLOB: i64 = 64 << 20;

macro_rules! columns {
    () => {
        "id, key, spec, state, image, image_digest, module, attempts, lease_owner, lease_expires, \
         progress, created_at, queued_at, started_at, finished_at, verdict, report, attestations, \
         failure_class, failure_message, results_stored"
    };
}

/// The PostgreSQL queue (and blob store). Every call blocks (the driver runs its own
/// small runtime per connection): call it off async threads, as the server does.
pub struct Postgres {
    config: postgres::Config,
    /// The TLS connector (`None`: `sslmode=disable`) and the settings it was made of.
    tls: Option<tls::MakeRustls>,
    tls_settings: tls::Settings,
    /// The URL without its password, for messages.
    shown: String,
    pool: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("url", &self.shown).finish_non_exhaustive()
    }
}

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// Why a transaction failed: the database, or what it returned.
enum Fail {
    Pg(postgres::Error),
    Queue(QueueError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<QueueError> for Fail {
    fn from(e: QueueError) -> Fail {
        Fail::Queue(e)
    }
}

/// A transaction with the connection's statement cache.
struct Tx<'a, 'b> {
    tx: Transaction<'a>,
    cache: &'b mut HashMap<&'static str, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Tx<'_, '_> {
    /// Appends a line to the log of `id`, dropping its oldest beyond [`LOG_LINES`] (as
    /// the SQLite queue does, in the same transaction as the change it tells of).
    fn log(&mut self, id: &str, at_ms: i64, line: &str) -> Result<(), postgres::Error> {
        let line = clip_log_line(line);
        self.execute("INSERT INTO job_log (job, at, line) VALUES ($1, $2, $3)", &[&id, &at_ms, &line])?;
        self.execute(
            "DELETE FROM job_log WHERE job = $1 AND seq <= \
             (SELECT seq FROM job_log WHERE job = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
            &[&id, &i64::from(LOG_LINES)],
        )?;
        Ok(())
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.cache.insert(sql, s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, params)
    }

    fn query_opt(&mut self, sql: &'static str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, params)
    }

    fn execute(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, params)
    }
}

/// `url` without the password (in the user part or a `password=` parameter).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split_whitespace().filter(|w| !w.starts_with("password=")).collect::<Vec<_>>().join(" ");
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => format!("{}@{host}", user.split(':').next().unwrap_or_default()),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("password=")).collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A message of `e` with its cause (the driver's own text is only the kind).
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Whether `e` means the connection is gone (the server stopped or restarted).
fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code);
    }
    std::error::Error::source(e).is_some_and(|c| c.downcast_ref::<std::io::Error>().is_some())
}

fn count(id: &str, what: &str, n: i64) -> Result<u32, QueueError> {
    u32::try_from(n).map_err(|_| QueueError::Corrupt { id: id.to_string(), message: format!("{what} {n}") })
}

fn raw(r: &Row) -> Result<RawJob, Fail> {
    let id: String = r.try_get(0)?;
    let attempts = count(&id, "attempts", r.try_get(7)?)?;
    let results_stored = count(&id, "results stored", r.try_get(20)?)?;
    Ok(RawJob {
        key: r.try_get(1)?,
        spec: r.try_get(2)?,
        state: r.try_get(3)?,
        image: r.try_get(4)?,
        image_digest: r.try_get(5)?,
        module: r.try_get(6)?,
        attempts,
        lease_owner: r.try_get(8)?,
        lease_expires: r.try_get(9)?,
        progress: r.try_get(10)?,
        created: r.try_get(11)?,
        queued: r.try_get(12)?,
        started: r.try_get(13)?,
        finished: r.try_get(14)?,
        verdict: r.try_get(15)?,
        report: r.try_get(16)?,
        attestations: r.try_get(17)?,
        failure_class: r.try_get(18)?,
        failure_message: r.try_get(19)?,
        results_stored,
        id,
    })
}

fn job(r: Option<Row>) -> Result<Option<Job>, Fail> {
    match r {
        Some(r) => Ok(Some(raw(&r)?.into_job()?)),
        None => Ok(None),
    }
}

impl Postgres {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`) and creates
    /// or migrates the schema.
    pub fn open(url: &str) -> Result<Postgres, QueueError> {
        let shown = redact(url);
        let fail = |message: String| QueueError::Database { path: shown.clone(), message };
        let (rest, tls_settings) = tls::split(url).map_err(fail)?;
        let mut config: postgres::Config = rest.parse().map_err(|e| fail(describe(&e)))?;
        let unix_only = config.get_hosts().iter().all(|h| !matches!(h, postgres::config::Host::Tcp(_)))
            && config.get_hostaddrs().is_empty();
        let tls = if tls_settings.tls() && !unix_only {
            config.ssl_mode(postgres::config::SslMode::Require);
            Some(tls::MakeRustls::new(&tls_settings).map_err(fail)?)
        } else {
            // No TLS on a Unix socket (the server never offers it there), as libpq.
            config.ssl_mode(postgres::config::SslMode::Disable);
            None
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("reprove serve");
        }
        if config.get_options().is_none() {
            // A call never hangs on a stuck server: every statement has a deadline.
            config.options("-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000");
        }
        let pg = Postgres { config, tls, tls_settings, shown, pool: Mutex::new(Vec::new()) };
        pg.migrate()?;
        Ok(pg)
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn err(&self, e: &postgres::Error) -> QueueError {
        let mut message = describe(e);
        if message.ends_with("server does not support TLS") {
            message = format!(
                "the server does not offer TLS, which {} requires (no plaintext fallback); set up TLS on the \
                 server, or write sslmode=disable in the URL to connect in plaintext",
                self.tls_settings.shown()
            );
        }
        QueueError::Database { path: self.shown.clone(), message }
    }

    fn migrate(&self) -> Result<(), QueueError> {
        let shown = self.shown.clone();
        self.with(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)::text", &[&MIGRATION_LOCK])?;
            tx.tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
            let version: Option<i64> = tx.tx.query_one("SELECT max(version) FROM schema_version", &[])?.try_get(0)?;
            let version = version.unwrap_or(0);
            if version > VERSION {
                return Err(Fail::Queue(QueueError::Database {
                    path: shown.clone(),
                    message: format!("the schema is version {version}, newer than this build's {VERSION}"),
                }));
            }
            let from = usize::try_from(version).unwrap_or(0);
            for m in MIGRATIONS.iter().skip(from) {
                tx.tx.batch_execute(m)?;
            }
            if version < VERSION {
                tx.tx.execute("DELETE FROM schema_version", &[])?;
                tx.tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&VERSION])?;
            }
            Ok(())
        })
    }

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(NoTls)?,
        };
        Ok(Conn { client, statements: HashMap::new() })
    }

    fn take(&self) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(c) = pool.pop() {
            if !c.client.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn give_back(&self, c: Conn) {
        if c.client.is_closed() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < POOL_IDLE {
            pool.push(c);
        }
    }

    /// Runs `f` in one transaction; once more on a fresh connection if the connection was lost.
    fn with<T>(&self, mut f: impl FnMut(&mut Tx<'_, '_>) -> Result<T, Fail>) -> Result<T, QueueError> {
        let mut again = true;
        loop {
            let mut conn = match self.take() {
                Some(c) => c,
                None => self.connect().map_err(|e| self.err(&e))?,
            };
            let result = (|| {
                let Conn { client, statements } = &mut conn;
                let mut tx = Tx { tx: client.transaction()?, cache: statements };
                let v = f(&mut tx)?;
                tx.tx.commit()?;
                Ok::<T, Fail>(v)
            })();
            match result {
                Ok(v) => {
                    self.give_back(conn);
                    return Ok(v);
                }
                Err(Fail::Queue(e)) => {
                    self.give_back(conn);
                    return Err(e);
                }
                Err(Fail::Pg(e)) if again && (connection_lost(&e) || conn.client.is_closed()) => {
                    // The server went away: every pooled connection is as dead as this one.
                    drop(conn);
                    let dead =
                        std::mem::take(&mut *self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                    drop(dead);
                    again = false;
                }
                Err(Fail::Pg(e)) => {
                    self.give_back(conn);
                    return Err(self.err(&e));
                }
            }
        }
    }

    /// Stores `bytes` as a blob; its digest (`sha256:…`).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, QueueError> {
        let digest = format!("sha256:{}", stdx::sha256_hex(bytes));
        self.with(|tx| {
            tx.execute(
                "INSERT INTO blobs (digest, data) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&digest, &bytes],
            )?;
            Ok(())
        })?;
        Ok(digest)
    }

    /// The blob `digest`, checked against it; `None` if malformed or absent.
    pub fn get_blob(&self, digest: &str) -> Result<Option<Vec<u8>>, QueueError> {
        if !valid_digest(digest) {
            return Ok(None);
        }
        let row = self.with(|tx| {
            Ok(tx.query_opt(
                "SELECT CASE WHEN octet_length(data)::BIGINT <= $2::BIGINT THEN data END, octet_length(data)::BIGINT FROM blobs \
                 WHERE digest = $1",
                &[&digest, &MAX_BLOB],
            )?)
        })?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = |message: String| QueueError::Corrupt { id: digest.to_string(), message };
        let bytes: Option<Vec<u8>> = row.try_get(0).map_err(|e| corrupt(describe(&e)))?;
        let Some(bytes) = bytes else {
            let len: i64 = row.try_get(1).unwrap_or_default();
            return Err(corrupt(format!("the blob is {len} bytes, over the limit of {MAX_BLOB}")));
        };
        if format!("sha256:{}", stdx::sha256_hex(&bytes)) != digest {
            return Err(corrupt("the blob's content does not match its digest".into()));
        }
        Ok(Some(bytes))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing a connection runs its own runtime, which cannot start on an async
        // thread: the connections are closed on a thread of their own.
        let pool = std::mem::take(&mut *self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if !pool.is_empty() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl Queue for Postgres {
    fn submit(&self, spec: &JobSpec, now_ms: i64) -> Result<(Job, bool), QueueError> {
        let key = spec.key();
        let id = spec.id();
        let text = serde_json::to_string(spec)
            .map_err(|e| QueueError::Corrupt { id: id.clone(), message: format!("spec: {e}") })?;
        let (kind, image, image_digest) = (spec.kind(), spec.image(), spec.image_digest());
        self.with(|tx| {
            let inserted = tx.execute(
                "INSERT INTO jobs (id, key, kind, spec, state, image, image_digest, created_at, queued_at) \
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7) ON CONFLICT DO NOTHING",
                &[&id, &key, &kind, &text, &image, &image_digest, &now_ms],
            )?;
            if inserted == 1 {
                tx.log(&id, now_ms, &format!("submitted: {kind} job"))?;
            }
            let row = tx.query_opt(concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1"), &[&id])?;
            let job = job(row)?
                .ok_or_else(|| QueueError::Corrupt { id: id.clone(), message: "inserted but not found".into() })?;
            Ok((job, inserted == 1))
        })
    }

    fn get(&self, id: &str) -> Result<Option<Job>, QueueError> {
        self.with(|tx| job(tx.query_opt(concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1"), &[&id])?))
    }

    fn list(&self, filter: &Filter) -> Result<Vec<Job>, QueueError> {
        let state = filter.state.map(State::as_str);
        let (limit, offset) = (i64::from(filter.limit), i64::from(filter.offset));
        self.with(|tx| {
            let rows = tx.query(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM jobs WHERE ($1::TEXT IS NULL OR state = $1) \
                     AND ($2::TEXT IS NULL OR image = $2 OR image_digest = $2) AND ($3::TEXT IS NULL OR module = $3) \
                     AND ($5::TEXT IS NULL OR (left(image, length($5) + 1) IN ($5 || '@', $5 || ':') \
                          AND strpos(substr(image, length($5) + 2), '/') = 0)) \
                     AND ($7::TEXT IS NULL OR (spec::jsonb ->> 'watch') = $7) \
                     ORDER BY created_at DESC, id LIMIT $4 OFFSET $6"
                ),
                &[&state, &filter.image, &filter.module, &limit, &filter.repository, &offset, &filter.watch],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(raw(r)?.into_job()?);
            }
            Ok(out)
        })
    }

    fn claim(&self, worker: &str, now_ms: i64, lease_ms: i64, max_attempts: u32) -> Result<Option<Job>, QueueError> {
        let max = i64::from(max_attempts);
        let expires = now_ms.saturating_add(lease_ms);
        self.with(|tx| loop {
            let next = tx.query_opt(
                "SELECT id, attempts, CASE WHEN state = 'running' THEN lease_owner END FROM jobs \
                 WHERE state IN ('queued', 'running') \
                 AND (state = 'queued' OR lease_expires < $1) ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&now_ms],
            )?;
            let Some(next) = next else { return Ok(None) };
            let (id, attempts, lost): (String, i64, Option<String>) =
                (next.try_get(0)?, next.try_get(1)?, next.try_get(2)?);
            if let Some(lost) = lost {
                tx.log(&id, now_ms, &format!("the lease of worker {lost} expired: its worker was lost"))?;
            }
            if attempts >= max {
                let message = format!("its worker was lost {attempts} times (the lease expired each time)");
                tx.execute(
                    "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires = NULL, finished_at = $2, \
                     failure_class = 'lease-expired', failure_message = $3 WHERE id = $1",
                    &[&id, &now_ms, &message],
                )?;
                tx.log(&id, now_ms, &format!("failed: lease-expired: {message}"))?;
                continue;
            }
            let row = tx.query_opt(
                concat!(
                    "UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires = $3, heartbeat_at = $4, \
                     started_at = $4, attempts = attempts + 1, progress = NULL WHERE id = $1 RETURNING ",
                    columns!()
                ),
                &[&id, &worker, &expires, &now_ms],
            )?;
            tx.log(&id, now_ms, &format!("started: attempt {} by worker {worker}", attempts + 1))?;
            return job(row);
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
        let expires = now_ms.saturating_add(lease_ms);
        self.with(|tx| {
            let before = tx.query_opt(
                "SELECT progress FROM jobs WHERE id = $1 AND state = 'running' AND lease_owner = $2 FOR UPDATE",
                &[&id, &worker],
            )?;
            let Some(before) = before else { return Ok(false) };
            let before: Option<String> = before.try_get(0)?;
            tx.execute(
                "UPDATE jobs SET lease_expires = $3, heartbeat_at = $4, progress = COALESCE($5, progress) \
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                &[&id, &worker, &expires, &now_ms, &progress],
            )?;
            if let Some(step) = progress.filter(|p| before.as_deref() != Some(*p)) {
                tx.log(id, now_ms, &format!("step: {step}"))?;
            }
            Ok(true)
        })
    }

    fn finish(&self, id: &str, worker: &str, now_ms: i64, o: &Outcome) -> Result<bool, QueueError> {
        let attestations = serde_json::to_string(&o.attestations)
            .map_err(|e| QueueError::Corrupt { id: id.to_string(), message: format!("attestations: {e}") })?;
        let state = o.state.as_str();
        self.with(|tx| {
            let n = tx.execute(
                "UPDATE jobs SET state = $3, verdict = $4, report = $5, attestations = $6, \
                 module = COALESCE($7, module), failure_class = $8, failure_message = $9, finished_at = $10, \
                 lease_owner = NULL, lease_expires = NULL, results_stored = results_stored + 1 \
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                &[
                    &id,
                    &worker,
                    &state,
                    &o.verdict,
                    &o.report,
                    &attestations,
                    &o.module,
                    &o.failure_class,
                    &o.failure_message,
                    &now_ms,
                ],
            )?;
            if n == 1 {
                let mut line = format!("finished: {}", o.state.as_str());
                if let Some(v) = &o.verdict {
                    line.push_str(&format!(", verdict {v}"));
                }
                if let Some(c) = &o.failure_class {
                    line.push_str(&format!(", {c}: {}", o.failure_message.as_deref().unwrap_or("")));
                }
                tx.log(id, now_ms, &line)?;
            }
            Ok(n == 1)
        })
    }

    fn release(&self, id: &str, worker: &str) -> Result<bool, QueueError> {
        self.with(|tx| {
            let n = tx.execute(
                "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires = NULL, \
                 attempts = GREATEST(attempts - 1, 0) WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                &[&id, &worker],
            )?;
            if n == 1 {
                // The trait's release takes no time: the log line gets the clock's.
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                tx.log(id, now_ms, &format!("handed back by worker {worker}: queued again"))?;
            }
            Ok(n == 1)
        })
    }

    fn retry(&self, id: &str, now_ms: i64) -> Result<Option<Result<Job, State>>, QueueError> {
        self.with(|tx| {
            let row = tx.query_opt(concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1 FOR UPDATE"), &[&id])?;
            let Some(current) = job(row)? else { return Ok(None) };
            if !matches!(current.state, State::Done | State::Failed) {
                return Ok(Some(Err(current.state)));
            }
            let row = tx.query_opt(
                concat!(
                    "UPDATE jobs SET state = 'queued', queued_at = $2, attempts = 0, verdict = NULL, report = NULL, \
                     attestations = '[]', failure_class = NULL, failure_message = NULL, finished_at = NULL, \
                     started_at = NULL, progress = NULL, results_stored = 0 WHERE id = $1 RETURNING ",
                    columns!()
                ),
                &[&id, &now_ms],
            )?;
            tx.log(id, now_ms, &format!("retried: queued again (it was {})", current.state.as_str()))?;
            Ok(job(row)?.map(Ok))
        })
    }

    fn latest_for_image(&self, digest: &str) -> Result<Option<Job>, QueueError> {
        self.with(|tx| {
            job(tx.query_opt(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM jobs WHERE image_digest = $1 AND state = 'done' ORDER BY finished_at DESC, id LIMIT 1"
                ),
                &[&digest],
            )?)
        })
    }

    fn job_log(&self, id: &str) -> Result<Vec<LogLine>, QueueError> {
        self.with(|tx| {
            let rows = tx.query(
                "SELECT at, line FROM job_log WHERE job = $1 ORDER BY seq LIMIT $2",
                &[&id, &i64::from(LOG_LINES)],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(LogLine { at_ms: r.try_get(0)?, line: r.try_get(1)? });
            }
            Ok(out)
        })
    }

    fn daily(&self, since_ms: i64) -> Result<Vec<Day>, QueueError> {
        self.with(|tx| {
            // Integer division truncates toward zero: before 1970 is not a concern here.
            let rows = tx.query(
                "SELECT finished_at / 86400000, COUNT(*), \
                 SUM(CASE WHEN verdict = 'reproduced' THEN 1 ELSE 0 END)::BIGINT, \
                 SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END)::BIGINT \
                 FROM jobs WHERE state IN ('done', 'failed') AND finished_at >= $1 \
                 GROUP BY finished_at / 86400000 ORDER BY 1",
                &[&since_ms],
            )?;
            let count = |n: i64| n.max(0).unsigned_abs();
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(Day {
                    day: r.try_get(0)?,
                    finished: count(r.try_get(1)?),
                    reproduced: count(r.try_get(2)?),
                    failed: count(r.try_get(3)?),
                });
            }
            Ok(out)
        })
    }

    fn stats(&self, now_ms: i64) -> Result<Stats, QueueError> {
        self.with(|tx| {
            let mut stats = Stats::default();
            let mut counts = std::collections::BTreeMap::new();
            for r in tx.query("SELECT state, COUNT(*) FROM jobs GROUP BY state", &[])? {
                let (s, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                if let Some(s) = State::parse(&s) {
                    counts.insert(s, n.max(0).unsigned_abs());
                }
            }
            stats.by_state = State::ALL.iter().map(|s| (*s, counts.get(s).copied().unwrap_or(0))).collect();
            for r in tx.query(
                "SELECT COALESCE(failure_class, ''), COUNT(*) FROM jobs WHERE state = 'failed' \
                 GROUP BY failure_class ORDER BY 1",
                &[],
            )? {
                let (class, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                stats.failed_by_class.push((class, n.max(0).unsigned_abs()));
            }
            let oldest: Option<i64> = tx
                .query_opt("SELECT MIN(queued_at) FROM jobs WHERE state = 'queued'", &[])?
                .and_then(|r| r.try_get(0).ok().flatten());
            stats.oldest_queued_secs = oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
            Ok(stats)
        })
    }

    fn claim_poll(&self, watch: &str, holder: &str, now_ms: i64, lease_ms: i64) -> Result<PollClaim, QueueError> {
        let until = now_ms.saturating_add(lease_ms);
        self.with(|tx| {
            tx.execute("INSERT INTO watch_polls (name, next_at) VALUES ($1, 0) ON CONFLICT DO NOTHING", &[&watch])?;
            // One UPDATE decides: a second server's waits for the first's row lock, then
            // finds the row held and claims nothing.
            let claimed = tx.query_opt(
                "UPDATE watch_polls SET holder = $2, lease_until = $4 WHERE name = $1 AND next_at <= $3                  AND (holder IS NULL OR holder = $2 OR lease_until < $3) RETURNING failures",
                &[&watch, &holder, &now_ms, &until],
            )?;
            if let Some(row) = claimed {
                let failures: i64 = row.try_get(0)?;
                return Ok(PollClaim::Claimed { failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX) });
            }
            let row = tx.query_opt(
                "SELECT GREATEST(next_at, CASE WHEN holder IS NULL THEN 0 ELSE lease_until END) FROM watch_polls                  WHERE name = $1",
                &[&watch],
            )?;
            let at: Option<i64> = match row {
                Some(r) => r.try_get(0)?,
                None => None,
            };
            Ok(PollClaim::NotBefore(at.unwrap_or(now_ms)))
        })
    }

    fn finish_poll(&self, watch: &str, holder: &str, next_ms: i64, failures: u32) -> Result<bool, QueueError> {
        self.with(|tx| {
            let n = tx.execute(
                "UPDATE watch_polls SET next_at = $3, failures = $4, holder = NULL, lease_until = NULL                  WHERE name = $1 AND holder = $2",
                &[&watch, &holder, &next_ms, &i64::from(failures)],
            )?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(redact("postgres://reprove:s3cret@127.0.0.1:5432/jobs"), "postgres://reprove@127.0.0.1:5432/jobs");
        assert_eq!(
            redact("postgresql://u:p%40ss@db/q?sslmode=disable&password=x"),
            "postgresql://u@db/q?sslmode=disable"
        );
        assert_eq!(redact("postgres://db:5432/q?password=x"), "postgres://db:5432/q");
        assert_eq!(redact("postgres://u@db"), "postgres://u@db");
        assert_eq!(redact("host=db password=x user=u"), "host=db user=u");
    }
}
