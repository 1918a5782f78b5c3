//! The web dashboard of `reprove serve`, loaded by the real headless Chromium (Debian's
//! `chromium`, installed by `ci/setup`) from a real server on 127.0.0.1 with real jobs:
//! an audit of an image holding a `go install`ed program (as `serve`'s audit test), and a
//! verify of a revision that does not exist whose name carries markup and a
//! bidirectional override, as a hostile submitter would.
//!
//! With no worker, both jobs are queued: the list shows them so and reloads itself.
//! Restarted with a worker, both finish: the list shows the verdict and the failure and
//! stops reloading, the chart counts them; the audit's page embeds `audit --html`'s
//! report and the job's log; the failed verify's page its report and failure; the image
//! and module pages their history; the repository's badge says `reproduced 1/1`. In
//! every DOM Chromium built, the hostile revision is text, and no element or attribute
//! the dashboard does not write is there. Screenshots are kept in
//! `target/test-artifacts/dashboard/` and checked for their size, that they are not
//! blank, and for the page's colours (so the style sheets the CSP allows by hash applied).

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::audit_html::{decode_png, near, parse_dom, run_chromium_url, Element};
use crate::serve::{audit_image, AuditImage, Serve, TOKEN};
use crate::verify_e2e::{shared, Project};

/// A revision name a hostile submitter chose: markup, and a right-to-left override.
const HOSTILE_REV: &str = "no-such-rev</td><script>alert(1)</script>\u{202e}<b>x</b>";

/// The elements the dashboard writes (the report's included).
const ALLOWED: &[&str] = &[
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "nav",
    "main",
    "header",
    "footer",
    "section",
    "h1",
    "h2",
    "h3",
    "p",
    "span",
    "a",
    "b",
    "code",
    "pre",
    "time",
    "dl",
    "dt",
    "dd",
    "ul",
    "ol",
    "li",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "div",
    "details",
    "summary",
    "form",
    "label",
    "select",
    "option",
    "input",
    "button",
    "figure",
    "figcaption",
    "svg",
    "g",
    "rect",
    "line",
    "text",
];

/// Where screenshots are kept: `CARGO_TARGET_DIR` (relative to the repository), else the
/// target directory the test binary runs from, then `test-artifacts/dashboard`.
fn artifacts() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()).map(PathBuf::from) {
        Some(t) if t.is_absolute() => t,
        Some(t) => crate::support::repo_root().join(t),
        None => {
            let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
            // target/debug/deps/it-HASH
            exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| panic!("{}", exe.display()))
        }
    };
    let dir = target.join("test-artifacts").join("dashboard");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A GET over HTTP/1.0: the status, the head (lower-case) and the body.
fn get(serve: &Serve, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(&serve.addr).unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap_or_else(|e| panic!("{e}"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", serve.addr).unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap_or_else(|e| panic!("{e}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Chromium's DOM of the page at `path`, parsed; checked for foreign elements and
/// attributes, and for the security headers of its answer.
fn dom(serve: &Serve, dir: &Path, path: &str) -> Vec<Element> {
    let (status, head, _) = get(serve, path);
    assert_eq!(status, 200, "{path}: {head}");
    for h in ["content-security-policy: default-src 'none'; style-src 'sha256-", "x-content-type-options: nosniff"] {
        assert!(head.contains(h), "{path}: no {h:?} in\n{head}");
    }
    assert!(!head.contains("script-src") && !head.contains("unsafe-inline"), "{head}");
    let url = format!("http://{}{path}", serve.addr);
    let text = run_chromium_url(dir, &url, &["--dump-dom".to_string()]);
    let elements = parse_dom(&text);
    let mut errors = Vec::new();
    let names: BTreeSet<&str> = elements.iter().map(|e| e.name.as_str()).collect();
    for n in names.iter().filter(|n| !ALLOWED.contains(n)) {
        errors.push(format!("an element the dashboard does not write: <{n}>"));
    }
    for e in &elements {
        for (a, v) in &e.attrs {
            if a.starts_with("on") || a == "style" || a == "srcdoc" || a == "src" {
                errors.push(format!("<{}> has attribute {a}={v:?}", e.name));
            }
            if (a == "href" || a == "action") && !(v.starts_with('/') || v.starts_with('#')) {
                errors.push(format!("<{}> links out: {v:?}", e.name));
            }
        }
    }
    assert!(errors.is_empty(), "{path}:\n{}\n--- DOM:\n{text}", errors.join("\n"));
    elements
}

fn by_id<'a>(elements: &'a [Element], id: &str) -> &'a Element {
    elements.iter().find(|e| e.attr("id") == Some(id)).unwrap_or_else(|| panic!("no element #{id}: {elements:#?}"))
}

fn page_text(elements: &[Element]) -> &str {
    elements.iter().find(|e| e.name == "body").map_or("", |b| b.text.as_str())
}

fn refreshes(elements: &[Element]) -> bool {
    elements.iter().any(|e| e.name == "meta" && e.attr("http-equiv") == Some("refresh"))
}

/// A screenshot of the page at `path` kept as `NAME.png`: 1280×1400, not blank, with
/// at least 300 pixels of each colour in `colours`.
fn screenshot(serve: &Serve, dir: &Path, path: &str, name: &str, colours: &[(&str, [u8; 3])]) {
    let png = artifacts().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let url = format!("http://{}{path}", serve.addr);
    run_chromium_url(dir, &url, &[format!("--screenshot={}", png.display()), "--window-size=1280,1400".into()]);
    let (width, height, pixels) = decode_png(&png);
    assert_eq!((width, height), (1280, 1400), "{}", png.display());
    let distinct: BTreeSet<[u8; 4]> = pixels.iter().copied().collect();
    let white = near(&pixels, [255, 255, 255]);
    assert!(distinct.len() > 32, "{}: {} colours: blank?", png.display(), distinct.len());
    assert!(white < pixels.len() * 98 / 100, "{}: {white} of {} pixels white", png.display(), pixels.len());
    for (what, rgb) in colours {
        let n = near(&pixels, *rgb);
        assert!(n > 300, "{}: {n} pixels of {what}", png.display());
    }
}

const GREEN: (&str, [u8; 3]) = ("reproduced green", [0x1a, 0x7f, 0x37]);
const ORANGE: (&str, [u8; 3]) = ("failed orange", [0xbc, 0x4c, 0x00]);
const PURPLE: (&str, [u8; 3]) = ("queued purple", [0x82, 0x50, 0xdf]);

/// A row of the job table, by job id.
fn row<'a>(elements: &'a [Element], id: &str) -> &'a Element {
    by_id(elements, &format!("job-{id}"))
}

#[test]
fn the_dashboard_shows_jobs_verdicts_logs_and_badges_in_chromium() {
    let s = shared();
    let AuditImage { scratch, goproxy, pinned, digest, config } = audit_image("dashboard/modtool");
    let p = Project::new();
    // A submitted rev must name a commit: a tag of that name, on a commit with nothing to
    // build (an empty tree), so that the job fails.
    let git = |args: &[&str]| crate::verify_e2e::git(&p.repo, args);
    let empty_tree = git(&["hash-object", "-w", "-t", "tree", "/dev/null"]);
    let nothing = git(&["commit-tree", empty_tree.trim(), "-m", "nothing to build"]);
    git(&["tag", HOSTILE_REV, nothing.trim()]);
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));
    let data = scratch.path("data");
    let config = config.display().to_string();
    let chromium_dir = scratch.path("chromium");
    std::fs::create_dir_all(&chromium_dir).unwrap_or_else(|e| panic!("{e}"));
    let dir = chromium_dir.as_path();

    // No worker: both jobs stay queued.
    let serve = Serve::start(&here, &data, &s.cache, &goproxy.url(), 0, 1, &["--config", &config]);
    let (status, audit) =
        serve.request("POST", "/v1/jobs", Some(TOKEN), &json!({"kind": "audit", "image": pinned}).to_string());
    assert_eq!(status, 201, "{audit}");
    let verify = json!({
        "kind": "verify",
        "source": p.repo.display().to_string(),
        "rev": HOSTILE_REV,
        "reference": format!("sha256:{}", "ab".repeat(32)),
        "toolchain": s.toolchain,
    });
    let (status, verify) = serve.request("POST", "/v1/jobs", Some(TOKEN), &verify.to_string());
    assert_eq!(status, 201, "{verify}");
    let audit = audit["id"].as_str().unwrap_or_default().to_string();
    let verify = verify["id"].as_str().unwrap_or_default().to_string();

    let list = dom(&serve, dir, "/");
    assert!(refreshes(&list), "the list of queued jobs does not reload itself");
    for id in [&audit, &verify] {
        assert_eq!(row(&list, id).attr("data-state"), Some("queued"));
        assert!(row(&list, id).text.contains("queued"), "{:?}", row(&list, id).text);
    }
    // The hostile revision is text, with its override shown, in its row.
    let shown = HOSTILE_REV.replace('\u{202e}', "\\u{202e}");
    assert!(row(&list, &verify).text.contains(&shown), "{:?}", row(&list, &verify).text);
    assert!(by_id(&list, "live").text.contains("reloads"));
    screenshot(&serve, dir, "/", "jobs-queued", &[PURPLE]);
    serve.kill9();

    // A worker: both run. The audit reproduces; the verify fails (nothing to build).
    let serve = Serve::start(&here, &data, &s.cache, &goproxy.url(), 1, 2, &["--config", &config]);
    for id in [&audit, &verify] {
        serve.wait(id, |j| j["state"] == "done" || j["state"] == "failed", Duration::from_secs(600));
    }
    let done = serve.job(&audit);
    assert_eq!((done["state"].as_str(), done["verdict"].as_str()), (Some("done"), Some("reproduced")), "{done:#}");
    let failed = serve.job(&verify);
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let class = failed["failure"]["class"].as_str().unwrap_or_default().to_string();
    let module = done["module"].as_str().unwrap_or_default().to_string();
    assert_eq!(module, crate::verify_module::MODULE);

    // The list: the verdict and the failure, no reloading, the chart's counts.
    let list = dom(&serve, dir, "/");
    assert!(!refreshes(&list), "the list reloads with nothing queued or running");
    assert_eq!(row(&list, &audit).attr("data-state"), Some("done"));
    assert!(row(&list, &audit).text.contains("reproduced"), "{:?}", row(&list, &audit).text);
    assert_eq!(row(&list, &verify).attr("data-state"), Some("failed"));
    let chart = by_id(&list, "rate-chart");
    assert_eq!((chart.attr("data-finished"), chart.attr("data-reproduced")), (Some("2"), Some("1")), "{chart:?}");
    assert!(chart.text.contains("1 of 2 jobs finished"), "{:?}", chart.text);
    let bars: Vec<&Element> = list.iter().filter(|e| e.name == "g" && e.has_class("day")).collect();
    assert_eq!(bars.len(), 1, "one day with finished jobs");
    screenshot(&serve, dir, "/", "jobs", &[GREEN, ORANGE]);
    // Filters are checked as the API checks them.
    let filtered = dom(&serve, dir, "/?state=failed");
    assert!(filtered.iter().any(|e| e.attr("id") == Some(&format!("job-{verify}"))));
    assert!(!filtered.iter().any(|e| e.attr("id") == Some(&format!("job-{audit}"))));
    let (status, _, body) = get(&serve, "/?state=sleeping");
    assert_eq!(status, 400, "{body}");

    // The audit's page: the report of `audit --html`, the log.
    let page = dom(&serve, dir, &format!("/jobs/{audit}"));
    assert!(by_id(&page, "job-state").text.contains("reproduced"));
    let report = by_id(&page, "report");
    assert!(by_id(&page, "verdict").text.contains("reproduced"), "{:?}", by_id(&page, "verdict").text);
    let paths: Vec<&str> =
        page.iter().filter(|e| e.name == "code" && e.has_class("path")).map(|e| e.text.as_str()).collect();
    assert_eq!(paths, ["/usr/local/bin/modtool"]);
    assert!(report.text.contains(&digest), "the report names the digest");
    let log = page.iter().find(|e| e.name == "ol" && e.has_class("log")).unwrap_or_else(|| panic!("no log"));
    for line in ["submitted: audit job", "started: attempt 1 by worker", "finished: done, verdict reproduced"] {
        assert!(log.text.contains(line), "{line:?} not in the log {:?}", log.text);
    }
    assert!(!refreshes(&page));
    screenshot(&serve, dir, &format!("/jobs/{audit}"), "job-audit", &[GREEN]);

    // The failed verify's page: its failure and its report, the hostile revision as text.
    let page = dom(&serve, dir, &format!("/jobs/{verify}"));
    assert!(by_id(&page, "failure").text.contains(&format!("[{class}]")), "{:?}", by_id(&page, "failure").text);
    assert!(by_id(&page, "verdict").text.contains("error"), "{:?}", by_id(&page, "verdict").text);
    assert!(page_text(&page).contains(&shown), "the revision is not shown as text");
    let log = page.iter().find(|e| e.name == "ol" && e.has_class("log")).unwrap_or_else(|| panic!("no log"));
    assert!(log.text.contains(&format!("finished: failed, verdict error, {class}: ")), "{:?}", log.text);
    screenshot(&serve, dir, &format!("/jobs/{verify}"), "job-verify-failed", &[ORANGE]);

    // The image's and the module's history.
    let image = dom(&serve, dir, &format!("/images/{digest}"));
    assert!(by_id(&image, "latest").text.contains("reproduced"));
    assert_eq!(row(&image, &audit).attr("data-state"), Some("done"));
    screenshot(&serve, dir, &format!("/images/{digest}"), "image", &[GREEN]);
    let modules = dom(&serve, dir, &format!("/modules/{module}"));
    assert!(by_id(&modules, "latest").text.contains("reproduced"));
    assert_eq!(row(&modules, &audit).attr("data-state"), Some("done"));
    assert!(!modules.iter().any(|e| e.attr("id") == Some(&format!("job-{verify}"))));
    screenshot(&serve, dir, &format!("/modules/{module}"), "module", &[GREEN]);

    // The badge of the image's repository, and of a repository nothing is known about.
    let repository = pinned.split('@').next().unwrap_or_default();
    let encoded: String = repository.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, head, svg) = get(&serve, &format!("/badge/{encoded}.svg"));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: image/svg+xml") && head.contains("x-content-type-options: nosniff"));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>"));
    let badge = dom_of_badge(&serve, dir, &format!("/badge/{encoded}.svg"));
    let text: Vec<&str> = badge.iter().filter(|e| e.name == "text").map(|e| e.text.as_str()).collect();
    assert_eq!(text, ["reprove", "reproduced 1/1"], "{svg}");
    let unknown = dom_of_badge(&serve, dir, "/badge/127.0.0.1%3A1%2Fnothing.svg");
    let text: Vec<&str> = unknown.iter().filter(|e| e.name == "text").map(|e| e.text.as_str()).collect();
    assert_eq!(text, ["reprove", "unknown"]);

    // Ids and digests are checked before they reach the queue.
    for bad in ["/jobs/..%2F..%2Fetc%2Fpasswd", "/images/sha256:..", "/blobs/..%2Fqueue.sqlite3"] {
        let (status, _, body) = get(&serve, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// Chromium's DOM of the badge at `path`, loaded as an SVG document: it parses (no
/// `parsererror`), its root is `svg`, and it holds nothing but the badge's elements.
fn dom_of_badge(serve: &Serve, dir: &Path, path: &str) -> Vec<Element> {
    let text = run_chromium_url(dir, &format!("http://{}{path}", serve.addr), &["--dump-dom".to_string()]);
    let elements = parse_dom(&text);
    assert_eq!(elements.first().map(|e| e.name.as_str()), Some("svg"), "{text}");
    let names: BTreeSet<&str> = elements.iter().map(|e| e.name.as_str()).collect();
    for n in &names {
        assert!(["svg", "title", "rect", "g", "text"].contains(n), "<{n}> in the badge: {text}");
    }
    elements
}
