//! The `reprove audit` report document (`report::audit`): samples serialized
//! from its types follow `schemas/audit-report.schema.json`, and its HTML page
//! is loaded by the real headless Chromium (Debian's `chromium`, installed by
//! `ci/setup`).
//!
//! The page is a realistic audit: two platforms, every outcome, every
//! unverifiable reason and claimed-source kind, a path of 200 characters,
//! and paths, module paths and details that carry markup, terminal escapes and
//! a bidirectional override, as a hostile image would. Chromium's DOM
//! (`--dump-dom`) must show the verdict, every binary's path as the text of
//! its own cell, in order, each in its own table row, and no element or
//! attribute the renderer did not write; the checks are shown to catch a page
//! with one tag left open and one value left unescaped. A screenshot
//! (`--screenshot`, 1280×2000) must be that size, not blank, and painted with
//! the page's own style sheet (the verdict's and outcomes' colours), which the
//! page's Content-Security-Policy allows by hash and nothing else. Printed
//! (`--print-to-pdf`), the page has as many pages with every `<details>` closed
//! as with every one open: its print style opens them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use report::audit::v1::{
    summarize, AuditFailure, AuditReport, Binary, ClaimedSource, Counts, DigestKind, Image, ImageVerdict, MainModule,
    Outcome, Platform, Reason, Tool, SCHEMA_VERSION,
};
use report::v1 as verify;

use crate::support::{repo_root, schema, RUN_SETUP};

/// A verify report from `tests/fixtures/report/`.
fn verify_report(name: &str) -> verify::Report {
    let path = repo_root().join("tests/fixtures/report").join(format!("{name}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The not-reproduced fixture as a rebuild that reproduced its reference.
fn reproduced_report() -> verify::Report {
    let mut r = verify_report("not-reproduced");
    r.verdict = verify::Verdict::Reproduced;
    r.summary = "the rebuilt binary is bit-identical to the reference".into();
    r.causes.clear();
    r.module_findings.clear();
    if let Some(rebuilt) = &mut r.rebuilt {
        rebuilt.sha256 = r.inputs.reference.sha256.clone();
    }
    r
}

const SCRIPT_PATH: &str = "/opt/</td><script>alert(1)</script>/x";
const IMG_MODULE: &str = "example.com/<img src=x onerror=alert(2)>";
const ESCAPES_PATH: &str = "/usr/bin/\u{1b}[31mred\u{202e}txt.exe";
const DETAIL_MARKUP: &str = "</td></tr></table><iframe srcdoc='x'></iframe><a href=\"https://evil.test\">x</a>";

/// A path as the page shows it: controls and bidi overrides as `\u{…}`.
fn shown(s: &str) -> String {
    s.replace('\u{1b}', "\\u{1b}").replace('\u{202e}', "\\u{202e}")
}

fn long_path() -> String {
    let mut p = String::from("/usr/lib/x86_64-linux-gnu/a-vendor-with-a-long-name");
    while p.len() < 200 {
        p.push_str("/nested-directory");
    }
    p.truncate(190);
    p.push_str("/tool-binary");
    p
}

#[allow(clippy::too_many_arguments)]
fn binary(
    path: &str,
    outcome: Outcome,
    reason: Option<Reason>,
    module: Option<(&str, &str)>,
    claimed: ClaimedSource,
    detail: &str,
    build_key: Option<&str>,
    report: Option<verify::Report>,
) -> Binary {
    Binary {
        path: path.to_string(),
        links: vec![],
        sha256: report.as_ref().map(|r| r.inputs.reference.sha256.clone()).unwrap_or_else(|| "9a".repeat(32)),
        size: 4_718_592,
        go_version: module.map(|_| "go1.22.5".to_string()),
        main_module: module.map(|(path, version)| MainModule {
            path: path.to_string(),
            version: version.to_string(),
            sum: (version != "(devel)").then(|| "h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=".to_string()),
        }),
        package: module.map(|(path, _)| format!("{path}/cmd/tool")),
        claimed_source: claimed,
        outcome,
        reason,
        detail: detail.to_string(),
        build_key: build_key.map(str::to_string),
        report: report.map(Box::new),
    }
}

fn module_source(path: &str, version: &str) -> ClaimedSource {
    ClaimedSource::Module {
        path: path.into(),
        version: version.into(),
        sum: Some("h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=".into()),
    }
}

/// The realistic audit described in the module documentation.
fn realistic() -> AuditReport {
    let vcs = |modified| ClaimedSource::Vcs {
        system: "git".into(),
        revision: "0123456789abcdef0123456789abcdef01234567".into(),
        modified,
        time: Some("2026-11-30T12:00:00Z".into()),
    };
    let mut app = binary(
        "/usr/local/bin/app",
        Outcome::Reproduced,
        None,
        Some(("example.com/acme/app", "v1.2.3")),
        module_source("example.com/acme/app", "v1.2.3"),
        "",
        Some("source=example.com/acme/app@v1.2.3 recipe=1f2e toolchain=go1.22.5 linux/amd64"),
        Some(reproduced_report()),
    );
    app.links = vec!["/app".into(), "/usr/bin/app".into()];
    let amd64 = vec![
        app,
        binary(
            "/usr/bin/helper",
            Outcome::NotReproduced,
            None,
            Some(("example.com/acme/app", "v1.2.3")),
            vcs(false),
            "ldflags (certain): the references was linked with -X main.version=1.2.4",
            Some("source=git:0123 recipe=77aa toolchain=go1.22.5 linux/amd64"),
            Some(verify_report("not-reproduced")),
        ),
        binary(
            SCRIPT_PATH,
            Outcome::Unverifiable,
            Some(Reason::SourceUnknown),
            Some((IMG_MODULE, "(devel)")),
            ClaimedSource::Devel,
            "nothing says where the source of a (devel) build is: add --source MODULE=URL",
            None,
            None,
        ),
        binary(
            &long_path(),
            Outcome::Unverifiable,
            Some(Reason::NoBuildInfo),
            None,
            ClaimedSource::NoBuildInfo,
            "the file has a Go build ID but no build info (stripped of it?)",
            None,
            None,
        ),
        binary(
            "/usr/bin/vcs-tool",
            Outcome::Error,
            None,
            Some(("example.com/acme/plain", "v0.0.0-20261130120000-0123456789ab")),
            vcs(true),
            "the toolchain image could not be pulled: connection refused",
            Some("source=git:0123 recipe=88bb toolchain=go1.22.5 linux/amd64"),
            Some(verify_report("error-toolchain-unreachable")),
        ),
    ];
    let arm64 = vec![
        binary(
            "/usr/local/bin/app",
            Outcome::Reproduced,
            None,
            Some(("example.com/acme/app", "v1.2.3")),
            module_source("example.com/acme/app", "v1.2.3"),
            "",
            Some("source=example.com/acme/app@v1.2.3 recipe=1f2e toolchain=go1.22.5 linux/arm64"),
            Some(reproduced_report()),
        ),
        binary(
            ESCAPES_PATH,
            Outcome::Unverifiable,
            Some(Reason::ToolchainMissing),
            Some(("example.com/old", "v0.1.0")),
            module_source("example.com/old", "v0.1.0"),
            "no toolchain image for go1.12: add a toolchain for go1.12",
            None,
            None,
        ),
        binary(
            "/usr/bin/tmpl",
            Outcome::Unverifiable,
            Some(Reason::RecipeUndetermined),
            Some(("example.com/acme/tmpl", "v2.0.0")),
            module_source("example.com/acme/tmpl", "v2.0.0"),
            DETAIL_MARKUP,
            None,
            None,
        ),
        binary(
            "/usr/bin/nosum",
            Outcome::Error,
            None,
            Some(("example.com/acme/nosum", "v1.0.0")),
            module_source("example.com/acme/nosum", "v1.0.0"),
            "go.sum has no line for example.com/acme/lib v1.0.0",
            Some("source=example.com/acme/nosum@v1.0.0 recipe=99cc toolchain=go1.22.5 linux/arm64"),
            Some(verify_report("error-missing-go-sum")),
        ),
    ];
    let platforms = vec![
        Platform {
            platform: "linux/amd64".into(),
            manifest_digest: Some(format!("sha256:{}", "a1".repeat(32))),
            binaries: amd64,
        },
        Platform {
            platform: "linux/arm64".into(),
            manifest_digest: Some(format!("sha256:{}", "b2".repeat(32))),
            binaries: arm64,
        },
    ];
    finish(platforms, None)
}

fn finish(platforms: Vec<Platform>, error: Option<AuditFailure>) -> AuditReport {
    let counts = Counts::of(&platforms);
    let verdict = if error.is_some() {
        ImageVerdict::Error
    } else {
        ImageVerdict::from_outcomes(platforms.iter().flat_map(|p| p.binaries.iter().map(|b| b.outcome)))
    };
    AuditReport {
        schema_version: SCHEMA_VERSION,
        tool: Tool { name: "reprove".into(), version: env!("CARGO_PKG_VERSION").into() },
        started_on: "2026-12-06T10:00:00Z".into(),
        finished_on: "2026-12-06T10:03:20Z".into(),
        duration_ms: 200_000,
        image: Image {
            input: "127.0.0.1:5000/acme/app:v1.2.3".into(),
            reference: Some(format!("127.0.0.1:5000/acme/app@sha256:{}", "cd".repeat(32))),
            digest: format!("sha256:{}", "cd".repeat(32)),
            digest_kind: DigestKind::Index,
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            resolved_from_tag: Some("v1.2.3".into()),
        },
        verdict,
        summary: summarize(verdict, &counts),
        counts,
        platforms,
        error,
    }
}

/// Documents serialized from the types follow the schema: the realistic audit,
/// an image without Go binaries, an audit that failed as a whole, and an old
/// docker archive (a config digest, no manifest digests).
#[test]
fn audit_reports_follow_the_schema() {
    let full = realistic();
    assert_eq!(full.verdict, ImageVerdict::NotReproduced);
    assert_eq!(
        full.counts,
        Counts { binaries: 9, reproduced: 2, not_reproduced: 1, unverifiable: 4, error: 2, builds: 5 }
    );
    let empty =
        finish(vec![Platform { platform: "linux/amd64".into(), manifest_digest: None, binaries: vec![] }], None);
    assert_eq!(empty.verdict, ImageVerdict::NoGoBinaries);
    let failed = finish(
        vec![],
        Some(AuditFailure {
            class: verify::Class::Infrastructure,
            message: "registry 127.0.0.1:5000: connection refused".into(),
        }),
    );
    let mut archive = realistic();
    archive.image.reference = None;
    archive.image.resolved_from_tag = None;
    archive.image.digest_kind = DigestKind::Config;
    archive.image.media_type = "application/vnd.docker.container.image.v1+json".into();
    for p in &mut archive.platforms {
        p.manifest_digest = None;
    }
    for doc in [&full, &empty, &failed, &archive] {
        let value = serde_json::to_value(doc).unwrap_or_else(|e| panic!("{e}"));
        schema::assert_valid("audit-report.schema.json", &value);
        let back: AuditReport = serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&back, doc);
    }
    // The embedded verify reports are checked against report.schema.json: a broken one fails.
    let mut value = serde_json::to_value(&full).unwrap_or_else(|e| panic!("{e}"));
    value["platforms"][0]["binaries"][0]["report"]["verdict"] = "maybe".into();
    let caught = std::panic::catch_unwind(|| schema::assert_valid("audit-report.schema.json", &value));
    assert!(caught.is_err(), "an embedded report with an unknown verdict passed the schema");
}

/// Where `ci/setup` installs Chromium.
fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("chromium is not installed: {RUN_SETUP}"))
}

/// Runs headless Chromium on `page` with `args` in `dir` (its own profile),
/// with a deadline: on expiry its whole process group is killed. Returns stdout.
fn run_chromium(dir: &Path, page: &Path, args: &[String]) -> String {
    run_chromium_url(dir, &format!("file://{}", page.display()), args)
}

/// [`run_chromium`] on a URL (`serve_dashboard` loads the dashboard from 127.0.0.1).
pub(crate) fn run_chromium_url(dir: &Path, url: &str, args: &[String]) -> String {
    use std::os::unix::process::CommandExt as _;
    const DEADLINE: Duration = Duration::from_secs(120);
    let profile = tempfile::Builder::new().prefix("chromium-profile").tempdir_in(dir).unwrap_or_else(|e| panic!("{e}"));
    let stdout_path = profile.path().join("stdout");
    let stderr_path = profile.path().join("stderr");
    let stdout = fs::File::create(&stdout_path).unwrap_or_else(|e| panic!("{e}"));
    let stderr = fs::File::create(&stderr_path).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(chromium());
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .args(["--no-default-browser-check", "--disable-extensions", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .current_dir(dir)
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("chromium ({RUN_SETUP}): {e}"));
    let group = rustix::process::Pid::from_raw(child.id() as i32);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => break None,
            Err(e) => panic!("chromium: {e}"),
        }
    };
    // Whatever it left behind (renderer, zygote) goes with its group.
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.wait();
    let err = fs::read_to_string(&stderr_path).unwrap_or_default();
    match status {
        None => panic!("chromium {args:?} did not finish in {DEADLINE:?}; stderr:\n{err}"),
        Some(s) if !s.success() => panic!("chromium {args:?} exited with {s}; stderr:\n{err}"),
        Some(_) => fs::read_to_string(&stdout_path).unwrap_or_else(|e| panic!("{e}")),
    }
}

/// An element of Chromium's serialized DOM, with all the text beneath it.
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) text: String,
}

impl Element {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn has_class(&self, class: &str) -> bool {
        self.attr("class").is_some_and(|c| c.split_whitespace().any(|c| c == class))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The elements of a DOM that Chromium serialized (well nested; void elements
/// unclosed; `<style>` text raw; everything else escaped), in document order.
pub(crate) fn parse_dom(dom: &str) -> Vec<Element> {
    const VOID: &[&str] =
        &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];
    const RAW: &[&str] = &["style", "script", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"];
    let mut elements: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut rest = dom;
    let add_text = |elements: &mut Vec<Element>, open: &[usize], text: &str| {
        let text = unescape(text);
        for &i in open {
            elements[i].text.push_str(&text);
        }
    };
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            add_text(&mut elements, &open, rest);
            break;
        };
        add_text(&mut elements, &open, &rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
        } else if rest.starts_with("<!") {
            rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').unwrap_or(after.len());
            let name = after[..end].trim().to_ascii_lowercase();
            while let Some(i) = open.pop() {
                if elements[i].name == name {
                    break;
                }
            }
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            // A start tag: the name, then attributes, values in double quotes.
            let tag = &rest[1..];
            let name_end = tag.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(tag.len());
            let name = tag[..name_end].to_ascii_lowercase();
            let mut attrs = Vec::new();
            let mut t = &tag[name_end..];
            loop {
                t = t.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
                if t.is_empty() || t.starts_with('>') {
                    t = t.get(1..).unwrap_or("");
                    break;
                }
                let n_end = t.find(|c: char| c.is_whitespace() || c == '=' || c == '>').unwrap_or(t.len());
                let attr = t[..n_end].to_ascii_lowercase();
                t = &t[n_end..];
                let mut value = String::new();
                if let Some(v) = t.strip_prefix("=\"") {
                    let close = v.find('"').unwrap_or(v.len());
                    value = unescape(&v[..close]);
                    t = v.get(close + 1..).unwrap_or("");
                }
                attrs.push((attr, value));
            }
            rest = t;
            elements.push(Element { name: name.clone(), attrs, text: String::new() });
            let index = elements.len() - 1;
            if RAW.contains(&name.as_str()) {
                let close = format!("</{name}>");
                let end = rest.find(&close).unwrap_or(rest.len());
                elements[index].text.push_str(&rest[..end]);
                rest = &rest[end..];
                open.push(index);
            } else if !VOID.contains(&name.as_str()) {
                open.push(index);
            }
        }
    }
    elements
}

/// Checks Chromium's DOM of the page of `r`: the verdict, every binary's path
/// as the text of its own cell in its own row, in order, its outcome in the
/// same row, and nothing the renderer did not write.
fn check_dom(r: &AuditReport, dom: &str) -> Result<(), String> {
    const ALLOWED: &[&str] = &[
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "span", "dl", "dt", "dd",
        "code", "ul", "ol", "li", "b", "section", "table", "thead", "tbody", "tr", "th", "td", "div", "details",
        "summary", "a", "footer",
    ];
    let elements = parse_dom(dom);
    let mut errors = Vec::new();
    let names: BTreeSet<&str> = elements.iter().map(|e| e.name.as_str()).collect();
    for n in names.iter().filter(|n| !ALLOWED.contains(n)) {
        errors.push(format!("an element the renderer does not write: <{n}>"));
    }
    for e in &elements {
        for (a, v) in &e.attrs {
            if a.starts_with("on") || a == "style" || a == "srcdoc" || a == "src" {
                errors.push(format!("<{}> has attribute {a}={v:?}", e.name));
            }
            if a == "href" && !v.starts_with('#') {
                errors.push(format!("<{}> links out: {v:?}", e.name));
            }
        }
    }
    match elements.iter().find(|e| e.attr("id") == Some("verdict")) {
        Some(v) if v.text.contains(&r.verdict.as_str().replace('-', " ")) && v.text.contains(&r.summary) => {}
        other => errors.push(format!("the verdict paragraph is not right: {other:?}")),
    }
    match elements.iter().find(|e| e.name == "title") {
        Some(t) if t.text.contains(&r.image.input) => {}
        other => errors.push(format!("the title does not name the image: {other:?}")),
    }
    let want: Vec<String> = r.binaries().map(|(_, b)| shown(&b.path)).collect();
    let got: Vec<&str> =
        elements.iter().filter(|e| e.name == "code" && e.has_class("path")).map(|e| e.text.as_str()).collect();
    if got != want {
        errors.push(format!("the path cells are\n{got:#?}\nnot\n{want:#?}"));
    }
    let rows: Vec<&Element> = elements.iter().filter(|e| e.name == "tr" && e.has_class("binary")).collect();
    if rows.len() != want.len() {
        errors.push(format!("{} binary rows, not {}", rows.len(), want.len()));
    }
    for ((_, b), row) in r.binaries().zip(&rows) {
        let outcome = b.outcome.as_str().replace('-', " ");
        let after_outcome = row.text.trim_start().strip_prefix(&outcome).map(str::trim_start);
        if !after_outcome.is_some_and(|t| t.starts_with(&shown(&b.path))) {
            errors.push(format!("the row of {:?} does not start with its outcome and path: {:?}", b.path, row.text));
        }
        if !row.text.contains(&shown(&b.detail)) {
            errors.push(format!("the row of {:?} lacks its detail: {:?}", b.path, row.text));
        }
    }
    let tables = elements.iter().filter(|e| e.name == "table" && e.has_class("binaries")).count();
    if tables != r.platforms.len() {
        errors.push(format!("{tables} binary tables, not {}", r.platforms.len()));
    }
    let details: Vec<&Element> = elements.iter().filter(|e| e.name == "details").collect();
    let rebuilt: Vec<&Binary> = r.binaries().map(|(_, b)| b).filter(|b| b.report.is_some()).collect();
    if details.len() != rebuilt.len() {
        errors.push(format!("{} <details>, not one per rebuilt binary ({})", details.len(), rebuilt.len()));
    }
    for (d, b) in details.iter().zip(&rebuilt) {
        let Some(report) = &b.report else { continue };
        for c in &report.causes {
            if !d.text.contains(&c.explanation) {
                errors.push(format!("the rebuild of {:?} lacks the cause {:?}", b.path, c.explanation));
            }
        }
        for m in &report.modules {
            if !d.text.contains(&m.h1) {
                errors.push(format!("the rebuild of {:?} lacks the sum of {}", b.path, m.path));
            }
        }
        if let Some(e) = &report.error {
            if !d.text.contains(&e.message) {
                errors.push(format!("the rebuild of {:?} lacks its error {:?}", b.path, e.message));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The pixels of a PNG as RGBA, with its size.
pub(crate) fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let size = reader.output_buffer_size().unwrap_or_else(|| panic!("{}: too large", path.display()));
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = &buf[..info.buffer_size()];
    let pixels = match info.color_type {
        png::ColorType::Rgba => bytes.chunks_exact(4).map(|p| [p[0], p[1], p[2], p[3]]).collect(),
        png::ColorType::Rgb => bytes.chunks_exact(3).map(|p| [p[0], p[1], p[2], 255]).collect(),
        png::ColorType::GrayscaleAlpha => bytes.chunks_exact(2).map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        png::ColorType::Grayscale => bytes.iter().map(|&g| [g, g, g, 255]).collect(),
        other => panic!("{}: colour type {other:?}", path.display()),
    };
    (info.width, info.height, pixels)
}

/// How many pixels are within a small distance of `rgb` (the screenshot is
/// not colour managed, but allow for rounding).
pub(crate) fn near(pixels: &[[u8; 4]], rgb: [u8; 3]) -> usize {
    pixels.iter().filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 3)).count()
}

/// The page Chromium loads: the verdict, every path in its own cell, no
/// injected element; the screenshot is the window's size, not blank, and in
/// the page's colours. The same checks reject a page with a tag left open and
/// one with a value left unescaped.
#[test]
fn chromium_renders_the_audit_page() {
    let r = realistic();
    let html = report::audit::render_html(&r);
    let dir = tempfile::Builder::new().prefix("audit-html").tempdir().unwrap_or_else(|e| panic!("{e}"));
    let page = dir.path().join("audit.html");
    fs::write(&page, &html).unwrap_or_else(|e| panic!("{e}"));

    let dom = run_chromium(dir.path(), &page, &["--dump-dom".to_string()]);
    if let Err(e) = check_dom(&r, &dom) {
        panic!("{e}\n--- the DOM Chromium built:\n{dom}");
    }

    let shot = dir.path().join("audit.png");
    run_chromium(dir.path(), &page, &[format!("--screenshot={}", shot.display()), "--window-size=1280,2000".into()]);
    let (width, height, pixels) = decode_png(&shot);
    assert_eq!((width, height), (1280, 2000), "{}", shot.display());
    let colours: BTreeSet<[u8; 4]> = pixels.iter().copied().collect();
    let white = near(&pixels, [255, 255, 255]);
    assert!(colours.len() > 64, "{} colours: blank?", colours.len());
    assert!(white < pixels.len() * 97 / 100, "{white} of {} pixels white: blank?", pixels.len());
    // The verdict's red (#cf222e: the banner's edge, badges), the reproduced
    // green (#1a7f37) and the error orange (#bc4c00) are painted: the style
    // sheet the CSP allows by hash was applied.
    for (what, rgb) in [
        ("not-reproduced red", [0xcf, 0x22, 0x2e]),
        ("reproduced green", [0x1a, 0x7f, 0x37]),
        ("error orange", [0xbc, 0x4c, 0x00]),
    ] {
        let n = near(&pixels, rgb);
        assert!(n > 400, "{n} pixels of {what} in {}", shot.display());
    }

    // The checks fail on a broken page: one tag left open swallows what follows
    // it; one value left unescaped adds an element.
    let open_tag = html.replacen("</code><div class=\"links\">", "<div class=\"links\">", 1);
    let unescaped = html.replacen("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>", 1);
    for (what, broken) in [("a tag left open", open_tag), ("a value left unescaped", unescaped)] {
        assert_ne!(broken, html, "{what}: the page did not change");
        let page = dir.path().join("broken.html");
        fs::write(&page, &broken).unwrap_or_else(|e| panic!("{e}"));
        let dom = run_chromium(dir.path(), &page, &["--dump-dom".to_string()]);
        assert!(check_dom(&r, &dom).is_err(), "{what}: the checks passed\n{dom}");
    }
}

/// The number of pages of a PDF Chromium printed: its page tree root's `/Count`.
fn pdf_pages(path: &Path) -> u32 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&bytes);
    let counts = text.match_indices("/Count ").filter_map(|(i, m)| {
        let digits: String = text[i + m.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    counts.max().unwrap_or_else(|| panic!("{}: no page count", path.display()))
}

/// Printed, the page shows every rebuild's details whether open or closed on
/// screen: with every `<details>` closed it prints on as many pages as with
/// every one open (the page's print style opens them), and more than the
/// closed page's screen content alone needs.
#[test]
fn the_printed_page_opens_every_rebuild() {
    let html = report::audit::render_html(&realistic());
    let dir = tempfile::Builder::new().prefix("audit-print").tempdir().unwrap_or_else(|e| panic!("{e}"));
    let closed = html.replace(" open>", ">");
    let open = closed.replace("<details class=\"rebuild\"", "<details open class=\"rebuild\"");
    assert!(closed.contains("<details class=\"rebuild\"") && open.contains("<details open"));
    let mut pages = Vec::new();
    for (name, page) in [("closed", &closed), ("open", &open)] {
        let file = dir.path().join(format!("{name}.html"));
        fs::write(&file, page).unwrap_or_else(|e| panic!("{e}"));
        let pdf = dir.path().join(format!("{name}.pdf"));
        run_chromium(
            dir.path(),
            &file,
            &["--no-pdf-header-footer".into(), format!("--print-to-pdf={}", pdf.display())],
        );
        pages.push(pdf_pages(&pdf));
    }
    assert_eq!(pages[0], pages[1], "printed pages with every <details> closed, then open");
    // Without its print style, the closed page prints shorter: the comparison can fail.
    let unstyled = closed
        .replacen(" details::details-content{content-visibility:visible;display:block}\n", "\n", 1)
        .lines()
        .filter(|l| !l.contains("Content-Security-Policy"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(unstyled, closed, "the print style was not found");
    let file = dir.path().join("unstyled.html");
    fs::write(&file, &unstyled).unwrap_or_else(|e| panic!("{e}"));
    let pdf = dir.path().join("unstyled.pdf");
    run_chromium(dir.path(), &file, &["--no-pdf-header-footer".into(), format!("--print-to-pdf={}", pdf.display())]);
    assert!(pdf_pages(&pdf) < pages[0], "closed details print as long without the print style");
}
