//! The web dashboard, served by the same process as the API: server-rendered HTML with
//! no script, so every page works with JavaScript off. Pages that show a queued or
//! running job reload themselves (`<meta http-equiv="refresh">`).
//!
//! - `GET /`: the job list, newest first, filtered by `state`, `image`, `module` (checked
//!   as `GET /v1/jobs` checks them), `limit` and `page`; the reproducibility rate per
//!   day of the last 30 days as an inline SVG chart.
//! - `GET /jobs/{id}`: a job's state, attempts, progress, failure, attestations, its
//!   log (kept by the queue, [`crate::queue::Queue::job_log`]) and its report: an
//!   audit's is `reprove audit --html`'s own body ([`report::audit::render_html_body`]),
//!   a verify's or check's [`report::audit::render_verify_html`].
//! - `GET /images/{digest}`, `GET /modules/{module path}`: the history of verdicts.
//! - `GET /badge/{name}.svg`: a badge of the latest verdicts about `name`, an image
//!   repository (the image reference without tag and digest, percent-encoded as one
//!   path segment) or else a main module path. A watched repository's badge is the
//!   badge of its image repository (or its module).
//! - `GET /blobs/{digest}`: a stored report or attestation.
//!
//! The routes only read, and follow the server's `read_needs_token`. Every page has a
//! Content-Security-Policy that allows its two style sheets by hash and nothing else
//! (no script, no image, no request), `X-Content-Type-Options: nosniff`, and bounded
//! work: at most 200 jobs a page, pages up to 1000, reports up to 16 MiB rendered.

mod render;

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use axum::extract::{Path as UrlPath, Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::job::{valid_digest, valid_id, JobSpec};
use crate::queue::{Filter, Job, State};
use crate::{blocking, log, may_read, now_ms, parse_filter, Executor, Inner};
use render::esc;

/// The dashboard's routes, as axum spells them.
pub const ROUTES: &[&str] =
    &["/", "/jobs/{id}", "/images/{digest}", "/modules/{*module}", "/badge/{name}", "/blobs/{digest}"];

/// Jobs on one page at most.
const MAX_PAGE_JOBS: u32 = 200;
/// Jobs on one page unless `limit` says otherwise.
const PAGE_JOBS: u32 = 50;
/// The last page one can ask for.
const MAX_PAGE: u32 = 1000;
/// Jobs a history or a badge reads at most.
const HISTORY: u32 = 200;
/// Seconds between reloads of a page that shows unfinished work.
const REFRESH_SECS: u32 = 5;
/// Days the chart shows.
const CHART_DAYS: i64 = 30;
/// The largest report rendered on a job's page (a larger one is only linked).
const MAX_REPORT_BYTES: usize = 16 << 20;

pub(crate) fn routes<E: Executor>() -> Router<Arc<Inner<E>>> {
    Router::new()
        .route("/", get(list::<E>))
        .route("/jobs/{id}", get(job_page::<E>))
        .route("/images/{digest}", get(image_page::<E>))
        .route("/modules/{*module}", get(module_page::<E>))
        .route("/badge/{name}", get(badge::<E>))
        .route("/blobs/{digest}", get(blob::<E>))
}

/// The policy of every page: its two style sheets by hash, nothing else.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src {} {}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            report::audit::csp_source(report::audit::style()),
            report::audit::csp_source(render::CSS)
        )
    })
}

fn secure(mut r: Response, content_type: &'static str, csp: &str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A whole page: `title` (escaped here), `body` (already escaped).
fn page(status: StatusCode, title: &str, refresh: bool, body: &str) -> Response {
    let mut s = String::with_capacity(body.len() + 8 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    );
    if refresh {
        let _ = writeln!(s, "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">");
    }
    let _ = write!(
        s,
        "<title>{} · reprove serve</title>\n<style>{}</style>\n<style>{}</style>\n</head>\n<body>\n\
         <nav class=\"top\"><a href=\"/\">reprove serve</a><a href=\"/?state=queued\">queued</a>\
         <a href=\"/?state=running\">running</a><a href=\"/?state=done\">done</a><a href=\"/?state=failed\">failed</a>\
         <span class=\"mute\" id=\"live\">{}</span></nav>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title),
        report::audit::style(),
        render::CSS,
        if refresh { "live: this page reloads while jobs are queued or running" } else { "" },
    );
    secure((status, s).into_response(), "text/html; charset=utf-8", csp())
}

/// A page that only says what went wrong.
fn problem(status: StatusCode, message: &str) -> Response {
    page(
        status,
        message,
        false,
        &format!("<h1>{}</h1>\n<p class=\"warn\" id=\"problem\">{}</p>\n", status, esc(message)),
    )
}

fn denied<E: Executor>(inner: &Inner<E>) -> Response {
    inner.metrics.rejected("unauthorized");
    let mut r = problem(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn unavailable(e: &crate::queue::QueueError) -> Response {
    log::event("error", "queue", &[("error", &e.to_string())]);
    problem(StatusCode::SERVICE_UNAVAILABLE, "the job queue is unavailable")
}

/// Whether `s` may name a module or a repository: not empty, at most 4096 bytes, no
/// control character.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 4096 && !s.chars().any(char::is_control)
}

/// The list's query: `page` taken out, the rest checked as `GET /v1/jobs` checks it.
fn list_query(query: &str) -> Result<(Filter, u32), String> {
    let mut page = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("page", v) => {
                if page.is_some() {
                    return Err("page given twice".into());
                }
                page = Some(v.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                    format!("page {:?}: expected 1 to {MAX_PAGE}", v.chars().take(20).collect::<String>())
                })?);
            }
            // An empty field of the form is no filter.
            ("state" | "image" | "module", "") => {}
            _ => rest.push(pair),
        }
    }
    let mut filter = parse_filter(&rest.join("&"))?;
    if !rest.iter().any(|p| p.starts_with("limit=")) {
        filter.limit = PAGE_JOBS;
    }
    if filter.limit > MAX_PAGE_JOBS {
        return Err(format!("limit {}: the dashboard shows at most {MAX_PAGE_JOBS} jobs a page", filter.limit));
    }
    let page = page.unwrap_or(1);
    filter.offset = (page - 1) * filter.limit;
    Ok((filter, page))
}

/// `?state=…&image=…&module=…&limit=…&page=N` of a filter, form-encoded.
fn query_of(f: &Filter, page: u32) -> String {
    let mut parts = Vec::new();
    if let Some(s) = f.state {
        parts.push(format!("state={}", s.as_str()));
    }
    if let Some(i) = &f.image {
        parts.push(format!("image={}", render::pct(i, false)));
    }
    if let Some(m) = &f.module {
        parts.push(format!("module={}", render::pct(m, false)));
    }
    if f.limit != PAGE_JOBS {
        parts.push(format!("limit={}", f.limit));
    }
    parts.push(format!("page={page}"));
    format!("?{}", parts.join("&"))
}

fn filter_form(f: &Filter) -> String {
    let mut s = String::from(
        "<form class=\"filter\" method=\"get\" action=\"/\">\n<label>state<select name=\"state\"><option value=\"\">any</option>",
    );
    for st in State::ALL {
        let selected = if f.state == Some(st) { " selected" } else { "" };
        let _ = write!(s, "<option value=\"{0}\"{selected}>{0}</option>", st.as_str());
    }
    let _ = write!(
        s,
        "</select></label>\n<label>image or digest<input name=\"image\" value=\"{}\" size=\"40\"></label>\n\
         <label>module<input name=\"module\" value=\"{}\" size=\"30\"></label>\n<button type=\"submit\">filter</button>\n</form>\n",
        esc(f.image.as_deref().unwrap_or("")),
        esc(f.module.as_deref().unwrap_or("")),
    );
    s
}

async fn list<E: Executor>(AxState(inner): AxState<Arc<Inner<E>>>, request: Request) -> Response {
    if !may_read(&inner, request.headers()) {
        return denied(&inner);
    }
    let (filter, page_no) = match list_query(request.uri().query().unwrap_or("")) {
        Ok(f) => f,
        Err(m) => {
            inner.metrics.rejected("bad-filter");
            return problem(StatusCode::BAD_REQUEST, &m);
        }
    };
    let now = now_ms();
    let today = now.div_euclid(86_400_000);
    let (q, mut f) = (inner.queue.clone(), filter.clone());
    // One more than shown: whether there is a next page.
    f.limit += 1;
    let read =
        blocking(move || Ok((q.list(&f)?, q.stats(now)?, q.daily((today - CHART_DAYS + 1) * 86_400_000)?))).await;
    let (mut jobs, stats, days) = match read {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let more = jobs.len() > filter.limit as usize;
    jobs.truncate(filter.limit as usize);
    let count = |s: State| stats.by_state.iter().find(|(st, _)| *st == s).map_or(0, |(_, n)| *n);
    let live = count(State::Queued) + count(State::Running) > 0;
    let mut body = String::from("<h1>Jobs</h1>\n<ul class=\"counts\" id=\"counts\">\n");
    for st in State::ALL {
        let _ = writeln!(
            body,
            "<li class=\"c-{0}\"><a href=\"/?state={0}\"><b>{1}</b></a>{0}</li>",
            st.as_str(),
            count(st)
        );
    }
    body.push_str("</ul>\n<h2>Reproducibility rate per day</h2>\n");
    body.push_str(&render::chart(&render::bars(&days, today, CHART_DAYS)));
    body.push_str("<h2>Jobs, newest first</h2>\n");
    body.push_str(&filter_form(&filter));
    body.push_str(&render::jobs_table(&jobs));
    body.push_str("<p class=\"pages\">");
    if page_no > 1 {
        let _ = write!(body, "<a rel=\"prev\" href=\"/{}\">newer</a>", esc(&query_of(&filter, page_no - 1)));
    }
    let _ = write!(body, "<span class=\"mute\">page {page_no}</span>");
    if more && page_no < MAX_PAGE {
        let _ = write!(body, "<a rel=\"next\" href=\"/{}\">older</a>", esc(&query_of(&filter, page_no + 1)));
    }
    body.push_str("</p>\n");
    page(StatusCode::OK, "jobs", live, &body)
}

async fn job_page<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return denied(&inner);
    }
    if !valid_id(&id) {
        inner.metrics.rejected("bad-id");
        return problem(StatusCode::BAD_REQUEST, "a job id is 32 lowercase hexadecimal digits");
    }
    let (q, i) = (inner.queue.clone(), id.clone());
    let (job, lines) = match blocking(move || Ok((q.get(&i)?, q.job_log(&i)?))).await {
        Ok((Some(job), lines)) => (job, lines),
        Ok((None, _)) => return problem(StatusCode::NOT_FOUND, "no job has this id"),
        Err(e) => return unavailable(&e),
    };
    let live = matches!(job.state, State::Queued | State::Running);
    let title = format!("{} job {}", job.spec.kind(), job.id);
    let inner2 = inner.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut body = render::job_facts(&job);
        body.push_str(&render::log(&lines));
        body.push_str(&report_section(&inner2, &job));
        body
    })
    .await
    .unwrap_or_else(|_| "<p class=\"warn\">the page could not be rendered</p>".into());
    page(StatusCode::OK, &title, live, &body)
}

/// The job's report, rendered as `report` renders it; a report that does not read
/// back is named, not shown.
fn report_section<E: Executor>(inner: &Inner<E>, job: &Job) -> String {
    let Some(digest) = &job.report else { return String::new() };
    let bytes = match inner.blobs.get(digest) {
        Ok(Some(b)) if b.len() <= MAX_REPORT_BYTES => b,
        Ok(Some(b)) => {
            return format!(
                "<p class=\"warn\" id=\"report\">The report ({} bytes) is too large to show here: see its blob.</p>\n",
                b.len()
            )
        }
        Ok(None) => return "<p class=\"warn\">The report is not in the store.</p>\n".into(),
        Err(e) => {
            log::event("error", "reading a blob", &[("digest", digest), ("error", &e.to_string())]);
            return "<p class=\"warn\">The report could not be read.</p>\n".into();
        }
    };
    let rendered = match &job.spec {
        JobSpec::Audit(_) => serde_json::from_slice::<report::audit::v1::AuditReport>(&bytes)
            .map(|r| report::audit::render_html_body(&r)),
        JobSpec::Verify(_) | JobSpec::Check(_) => {
            serde_json::from_slice::<report::v1::Report>(&bytes).map(|r| report::audit::render_verify_html(&r))
        }
        // A load-testing job's report is no document of reprove's: shown as text.
        JobSpec::Noop(_) => Ok(format!("<pre>{}</pre>\n", esc(&String::from_utf8_lossy(&bytes)))),
    };
    match rendered {
        Ok(html) => format!("<section class=\"report\" id=\"report\">\n{html}</section>\n"),
        Err(e) => format!(
            "<p class=\"warn\" id=\"report\">The report does not read as a {} report: {}</p>\n",
            job.spec.kind(),
            esc(&e.to_string())
        ),
    }
}

/// A history: the latest verdict and every job, newest first.
fn history(kind: &str, name_html: &str, jobs: &[Job], extra: &str) -> String {
    let mut body = format!("<h1>{kind} {name_html}</h1>\n");
    match jobs.iter().find(|j| j.state == State::Done) {
        Some(j) => {
            let _ = writeln!(
                body,
                "<p class=\"verdict\" id=\"latest\">latest verdict: {} <a href=\"/jobs/{id}\">job {}</a></p>",
                render::verdict_badge(j.verdict.as_deref()),
                &j.id[..j.id.len().min(12)],
                id = j.id
            );
        }
        None => body.push_str("<p class=\"verdict mute\" id=\"latest\">no verdict yet</p>\n"),
    }
    body.push_str(extra);
    body.push_str("<h2>History</h2>\n");
    body.push_str(&render::jobs_table(jobs));
    body
}

async fn image_page<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(digest): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return denied(&inner);
    }
    if !valid_digest(&digest) {
        inner.metrics.rejected("bad-digest");
        return problem(StatusCode::BAD_REQUEST, "expected sha256: and 64 lowercase hexadecimal digits");
    }
    let f = Filter { image: Some(digest.clone()), limit: HISTORY, ..Filter::default() };
    history_page(&inner, f, "image", &digest, |jobs| {
        jobs.iter().find_map(|j| j.image.as_deref()).map(render::badge_link).unwrap_or_default()
    })
    .await
}

async fn module_page<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(module): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return denied(&inner);
    }
    if !valid_name(&module) {
        inner.metrics.rejected("bad-module");
        return problem(StatusCode::BAD_REQUEST, "a module path is 1 to 4096 bytes without control characters");
    }
    let f = Filter { module: Some(module.clone()), limit: HISTORY, ..Filter::default() };
    let badge = format!(
        "<p class=\"mute\">Badge: <a href=\"/badge/{0}.svg\">/badge/{0}.svg</a></p>\n",
        esc(&render::pct(&module, false))
    );
    history_page(&inner, f, "module", &module, |_| badge).await
}

/// The page of an image's or a module's history: the jobs `filter` finds, their latest
/// verdict, and the badge link `badge` makes of them.
async fn history_page<E: Executor>(
    inner: &Inner<E>,
    filter: Filter,
    kind: &str,
    name: &str,
    badge: impl FnOnce(&[Job]) -> String,
) -> Response {
    let q = inner.queue.clone();
    let jobs = match blocking(move || q.list(&filter)).await {
        Ok(j) => j,
        Err(e) => return unavailable(&e),
    };
    let live = jobs.iter().any(|j| matches!(j.state, State::Queued | State::Running));
    let body = history(kind, &format!("<code>{}</code>", esc(name)), &jobs, &badge(&jobs));
    page(StatusCode::OK, &format!("{kind} {name}"), live, &body)
}

async fn badge<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(file): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return denied(&inner);
    }
    let Some(name) = file.strip_suffix(".svg").filter(|n| valid_name(n)).map(str::to_string) else {
        inner.metrics.rejected("bad-badge");
        return problem(
            StatusCode::NOT_FOUND,
            "a badge is /badge/NAME.svg: NAME a [[watch]]'s name, an image repository or a module path",
        );
    };
    let q = inner.queue.clone();
    let n = name.clone();
    // A watch's badge counts the jobs it submitted (an image repository's audits, or a Git
    // repository's release verifications).
    let watched = inner.config.watches.iter().any(|w| w.name == name);
    let jobs = blocking(move || {
        if watched {
            return q.list(&Filter { watch: Some(n), limit: HISTORY, ..Filter::default() });
        }
        let by_repository = q.list(&Filter { repository: Some(n.clone()), limit: HISTORY, ..Filter::default() })?;
        if !by_repository.is_empty() {
            return Ok(by_repository);
        }
        q.list(&Filter { module: Some(n), limit: HISTORY, ..Filter::default() })
    })
    .await;
    let jobs = match jobs {
        Ok(j) => j,
        Err(e) => return unavailable(&e),
    };
    let svg = render::badge_svg("reprove", &render::badge_text(&jobs), &name);
    let mut r = secure((StatusCode::OK, svg).into_response(), "image/svg+xml", "default-src 'none'");
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, max-age=0"));
    r
}

async fn blob<E: Executor>(
    AxState(inner): AxState<Arc<Inner<E>>>,
    headers: HeaderMap,
    UrlPath(digest): UrlPath<String>,
) -> Response {
    if !may_read(&inner, &headers) {
        return denied(&inner);
    }
    if !valid_digest(&digest) {
        inner.metrics.rejected("bad-digest");
        return problem(StatusCode::BAD_REQUEST, "expected sha256: and 64 lowercase hexadecimal digits");
    }
    let inner2 = inner.clone();
    let read = tokio::task::spawn_blocking(move || inner2.blobs.get(&digest)).await;
    match read {
        Ok(Ok(Some(bytes))) => {
            let json = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
            let kind = if json { "application/json" } else { "application/octet-stream" };
            secure((StatusCode::OK, bytes).into_response(), kind, "default-src 'none'; sandbox")
        }
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no stored blob has this digest"),
        Ok(Err(e)) => {
            log::event("error", "reading a blob", &[("error", &e.to_string())]);
            problem(StatusCode::INTERNAL_SERVER_ERROR, "the blob could not be read")
        }
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "the blob could not be read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_is_checked_as_the_api_checks_it() {
        let (f, page) = list_query("state=done&image=&module=example.com%2Fm&page=3").unwrap_or_default();
        assert_eq!(
            (f.state, f.image.as_deref(), f.module.as_deref()),
            (Some(State::Done), None, Some("example.com/m"))
        );
        assert_eq!((f.limit, f.offset, page), (PAGE_JOBS, 2 * PAGE_JOBS, 3));
        assert_eq!(query_of(&f, 4), "?state=done&module=example.com%2Fm&page=4");
        for bad in ["state=sleeping", "owner=x", "page=0", "page=1001", "page=1&page=2", "limit=500", "image=%zz"] {
            assert!(list_query(bad).is_err(), "{bad}");
        }
        let (f, _) = list_query("limit=10&page=2").unwrap_or_default();
        assert_eq!((f.limit, f.offset), (10, 10));
    }

    #[test]
    fn the_policy_allows_exactly_the_two_style_sheets() {
        let p = csp();
        assert!(p.starts_with("default-src 'none'; style-src 'sha256-"), "{p}");
        assert_eq!(p.matches("'sha256-").count(), 2, "{p}");
        assert!(!p.contains("script") && !p.contains("unsafe"), "{p}");
    }
}
