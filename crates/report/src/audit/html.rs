//! The audit as one self-contained HTML page: inline CSS only (allowed by its
//! hash in a Content-Security-Policy that allows nothing else: no script, no
//! image, no font, no request), every value from the image escaped, readable
//! on a narrow window and printable (every `<details>` opens on paper).

use std::fmt::Write as _;

use super::text::counts_line;
use super::v1::{AuditReport, Binary, ClaimedSource, Outcome, Platform};
use super::{module_of, visible};
use crate::v1 as verify;

/// The page's style sheet; the CSP allows it by its SHA-256 and nothing else.
const CSS: &str = r#"
:root{--ok:#1a7f37;--bad:#cf222e;--unk:#6e7781;--err:#bc4c00;--fg:#1f2328;--mute:#59636e;--line:#d1d9e0;--soft:#f6f8fa}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0 auto;max-width:1240px;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:#fff;overflow-wrap:break-word}
h1{font-size:1.35rem;margin:0 0 .4rem}
h2{font-size:1.15rem;margin:1.6rem 0 .4rem}
h3{font-size:1rem;margin:1rem 0 .3rem}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.9em;overflow-wrap:anywhere}
.banner{border-left:.7rem solid var(--unk);background:var(--soft);padding:.8rem 1rem;border-radius:.3rem}
.banner.v-reproduced{border-color:var(--ok)}
.banner.v-not-reproduced{border-color:var(--bad)}
.banner.v-error{border-color:var(--err)}
.verdict{font-size:1.1rem;margin:.2rem 0 .6rem}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:1rem;color:#fff;background:var(--unk);font-weight:600;white-space:nowrap}
.o-reproduced{background:var(--ok)}
.o-not-reproduced{background:var(--bad)}
.o-error{background:var(--err)}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem 1rem;margin:.3rem 0}
dl.facts dt{color:var(--mute)}
dl.facts dd{margin:0;min-width:0}
ul.counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0;margin:1rem 0}
ul.counts li{border:1px solid var(--line);border-top:.3rem solid var(--unk);border-radius:.3rem;padding:.3rem .8rem;min-width:7rem}
ul.counts li.c-reproduced{border-top-color:var(--ok)}
ul.counts li.c-not-reproduced{border-top-color:var(--bad)}
ul.counts li.c-error{border-top-color:var(--err)}
ul.counts b{display:block;font-size:1.4rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-weight:600}
td.path{min-width:12rem}
td.module{min-width:13rem}
td.source{min-width:9rem}
td.go,td.go code{white-space:nowrap}
.links,.mute{color:var(--mute);font-size:.9em}
details{border:1px solid var(--line);border-radius:.3rem;margin:.5rem 0;padding:.3rem .8rem}
details[open]{padding-bottom:.6rem}
summary{cursor:pointer;font-weight:600;overflow-wrap:anywhere}
ol,ul{padding-left:1.3rem}
li{margin:.15rem 0}
.warn{color:var(--err);font-weight:600}
footer{margin-top:2rem;color:var(--mute);font-size:.85em}
@media (max-width:720px){
 body{padding:.5rem;font-size:14px}
 table.binaries thead{display:none}
 table.binaries,table.binaries tbody,table.binaries tr,table.binaries td{display:block;width:100%}
 table.binaries tr{border-bottom:2px solid var(--line);padding:.3rem 0}
 table.binaries td{border:0;padding:.1rem 0}
 table.binaries td::before{content:attr(data-label) ": ";color:var(--mute)}
 dl.facts{grid-template-columns:minmax(0,1fr)}
 dl.facts dd{margin-bottom:.3rem}
}
@media print{
 body{max-width:none;font-size:10pt;padding:0}
 details{break-inside:avoid}
 details::details-content{content-visibility:visible;display:block}
 tr{break-inside:avoid}
 a{color:inherit;text-decoration:none}
}
"#;

/// `s` escaped for HTML text and attribute values, with what a reader would
/// not see shown as `\u{…}`.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in visible(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 of `bytes`, for the CSP's hash source.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's style sheet, for a page that embeds the report ([`render_html_body`]):
/// it goes in a `<style>` element as it is, allowed by [`csp_source`] of it.
pub fn style() -> &'static str {
    CSS
}

/// The Content-Security-Policy source that allows the inline `<style>` whose text is
/// exactly `css`: `'sha256-BASE64'`.
pub fn csp_source(css: &str) -> String {
    let digest: Vec<u8> = stdx::sha256_hex(css.as_bytes())
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| std::str::from_utf8(pair).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    format!("'sha256-{}'", base64(&digest))
}

/// The Content-Security-Policy: nothing but the page's own style sheet.
fn csp() -> String {
    format!(
        "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_source(CSS)
    )
}

/// `<code>` of an escaped value.
fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// A badge for a closed name (outcome or verdict), coloured by its class.
fn badge(name: &str) -> String {
    format!(r#"<span class="badge o-{name}">{}</span>"#, name.replace('-', " "))
}

/// The report as one self-contained HTML page: the image, its digest and
/// verdict, the counts, a table per platform with each binary's outcome, and
/// for each rebuilt binary a `<details>` with its verify report's essentials
/// (causes, recipe, toolchain, module sums).
pub fn render_html(r: &AuditReport) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>reprove audit: {} {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        csp(),
        esc(&r.image.input),
        r.verdict
    );
    s.push_str(&render_html_body(r));
    s.push_str("</body>\n</html>\n");
    s
}

/// What [`render_html`]'s `<body>` holds (the header with the verdict, the counts, a
/// section per platform, the footer), for a page of its own that embeds the report with
/// [`style`] in its head.
pub fn render_html_body(r: &AuditReport) -> String {
    let mut s = String::with_capacity(16 * 1024);
    header(&mut s, r);
    counts(&mut s, r);
    let mut index = 0;
    for p in &r.platforms {
        platform(&mut s, p, &mut index);
    }
    let _ = writeln!(
        s,
        "<footer>Written by {} {} · started {} · finished {} · {:.1}s · schema version {}</footer>",
        esc(&r.tool.name),
        esc(&r.tool.version),
        esc(&r.started_on),
        esc(&r.finished_on),
        r.duration_ms as f64 / 1000.0,
        r.schema_version
    );
    s
}

fn header(s: &mut String, r: &AuditReport) {
    let _ = write!(
        s,
        "<header class=\"banner v-{v}\">\n<h1>reprove audit of {}</h1>\n\
         <p class=\"verdict\" id=\"verdict\">{} <span class=\"summary\">{}</span></p>\n<dl class=\"facts\">\n",
        code(&r.image.input),
        badge(r.verdict.as_str()),
        esc(&r.summary),
        v = r.verdict.as_str()
    );
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(s, "<dt>{name}</dt><dd>{value}</dd>");
    };
    if let Some(reference) = &r.image.reference {
        fact("reference", code(reference));
    }
    fact("digest", format!("{} <span class=\"mute\">({})</span>", code(&r.image.digest), r.image.digest_kind));
    fact("media type", code(&r.image.media_type));
    if let Some(tag) = &r.image.resolved_from_tag {
        fact("tag", format!("{} <span class=\"mute\">(resolved to the digest)</span>", code(tag)));
    }
    if let Some(e) = &r.error {
        fact("error", format!("<span class=\"warn\">[{}]</span> {}", e.class, esc(&e.message)));
    }
    s.push_str("</dl>\n</header>\n");
}

fn counts(s: &mut String, r: &AuditReport) {
    let c = &r.counts;
    let _ = writeln!(s, "<ul class=\"counts\" title=\"{}\">", esc(&counts_line(c)));
    for (class, n, what) in [
        ("binaries", c.binaries, "Go binaries"),
        ("reproduced", c.reproduced, "reproduced"),
        ("not-reproduced", c.not_reproduced, "not reproduced"),
        ("unverifiable", c.unverifiable, "unverifiable"),
        ("error", c.error, "error"),
        ("builds", c.builds, "builds"),
    ] {
        let _ = writeln!(s, "<li class=\"c-{class}\"><b>{n}</b>{what}</li>");
    }
    s.push_str("</ul>\n");
}

fn platform(s: &mut String, p: &Platform, index: &mut usize) {
    let _ = write!(s, "<section class=\"platform\">\n<h2>{}</h2>\n", code(&p.platform));
    if let Some(d) = &p.manifest_digest {
        let _ = writeln!(s, "<p class=\"mute\">manifest {}</p>", code(d));
    }
    if p.binaries.is_empty() {
        s.push_str("<p>No Go binary.</p>\n</section>\n");
        return;
    }
    s.push_str(
        "<table class=\"binaries\">\n<thead><tr><th>outcome</th><th>binary</th><th>module</th><th>Go</th>\
         <th>source</th><th>detail</th></tr></thead>\n<tbody>\n",
    );
    let first = *index;
    for b in &p.binaries {
        row(s, b, *index);
        *index += 1;
    }
    s.push_str("</tbody>\n</table>\n");
    for (i, b) in p.binaries.iter().enumerate() {
        if let Some(report) = &b.report {
            rebuild(s, b, report, first + i);
        }
    }
    s.push_str("</section>\n");
}

fn row(s: &mut String, b: &Binary, index: usize) {
    let _ = write!(
        s,
        "<tr class=\"binary\" id=\"row{index}\">\n<td data-label=\"outcome\">{}</td>\n\
         <td data-label=\"binary\" class=\"path\"><code class=\"path\">{}</code>",
        badge(b.outcome.as_str()),
        esc(&b.path)
    );
    for l in &b.links {
        let _ = write!(s, "<div class=\"links\">also {}</div>", code(l));
    }
    let _ = writeln!(
        s,
        "<div class=\"mute\">sha256 <code>{}</code> · {} bytes</div></td>",
        esc(crate::short(&b.sha256)),
        b.size
    );
    let module = match &b.main_module {
        Some(m) => {
            let mut cell = code(&format!("{}@{}", m.path, m.version));
            if let Some(sum) = &m.sum {
                let _ = write!(cell, "<div class=\"mute\">{}</div>", code(sum));
            }
            cell
        }
        None => code(&module_of(b)),
    };
    let _ = writeln!(s, "<td data-label=\"module\" class=\"module\">{module}</td>");
    let _ = writeln!(
        s,
        "<td data-label=\"Go\" class=\"go\">{}</td>",
        b.go_version.as_deref().map(code).unwrap_or_default()
    );
    let _ = writeln!(s, "<td data-label=\"source\" class=\"source\">{}</td>", claimed(&b.claimed_source));
    let mut detail = String::new();
    if let (Outcome::Unverifiable, Some(reason)) = (b.outcome, b.reason) {
        let _ = write!(detail, "<b>{reason}</b>: ");
    }
    detail.push_str(&esc(&b.detail));
    if b.report.is_some() {
        let _ = write!(detail, " <a href=\"#b{index}\">rebuild</a>");
    }
    let _ = writeln!(s, "<td data-label=\"detail\" class=\"detail\">{detail}</td>\n</tr>");
}

fn claimed(c: &ClaimedSource) -> String {
    match c {
        ClaimedSource::Module { path, version, .. } => format!("module {}", code(&format!("{path}@{version}"))),
        ClaimedSource::Vcs { system, revision, modified, time } => {
            let mut out = format!("{} {}", esc(system), code(crate::short(revision)));
            if *modified {
                out.push_str(" <span class=\"warn\">modified</span>");
            }
            if let Some(t) = time {
                let _ = write!(out, "<div class=\"mute\">{}</div>", esc(t));
            }
            out
        }
        ClaimedSource::Devel => "<span class=\"mute\">(devel)</span>".to_string(),
        ClaimedSource::NoBuildInfo => "<span class=\"mute\">no build info</span>".to_string(),
    }
}

/// The essentials of a binary's verify report, in a `<details>` (open when
/// the rebuild did not reproduce it).
fn rebuild(s: &mut String, b: &Binary, r: &verify::Report, index: usize) {
    let open = if matches!(b.outcome, Outcome::NotReproduced | Outcome::Error) { " open" } else { "" };
    let _ = write!(
        s,
        "<details class=\"rebuild\" id=\"b{index}\"{open}>\n<summary>{} {}</summary>\n<p>{}</p>\n",
        badge(r.verdict.as_str()),
        code(&b.path),
        esc(&r.summary)
    );
    verify_facts(s, r);
    s.push_str("</details>\n");
}

/// A verify (or check) report as a section of a page that has [`style`]: its verdict
/// and summary in a banner, then what [`render_html`] shows of each rebuild (inputs,
/// recipe, causes, module findings, error, warnings, modules, timings).
pub fn render_verify_html(r: &verify::Report) -> String {
    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        "<section class=\"verify\">\n<header class=\"banner v-{v}\">\n<h2>reprove verify{}</h2>\n\
         <p class=\"verdict\" id=\"verdict\">{} <span class=\"summary\">{}</span></p>\n</header>\n",
        if r.subject.name.is_empty() { String::new() } else { format!(" of {}", code(&r.subject.name)) },
        badge(r.verdict.as_str()),
        esc(&r.summary),
        v = r.verdict.as_str()
    );
    verify_facts(&mut s, r);
    let _ = writeln!(
        s,
        "<footer>Written by reprove {} · started {} · finished {}</footer>\n</section>",
        esc(&r.tools.reprove),
        esc(&r.started_on),
        esc(&r.finished_on)
    );
    s
}

/// The facts, lists and tables of a verify report (all but its verdict and summary).
fn verify_facts(s: &mut String, r: &verify::Report) {
    s.push_str("<dl class=\"facts\">\n");
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(s, "<dt>{name}</dt><dd>{value}</dd>");
    };
    fact("source", code(&crate::source_line(&r.inputs.source)));
    let mut reference = code(&format!("sha256:{}", r.inputs.reference.sha256));
    if let Some(check) = r.inputs.reference.self_check {
        let _ = write!(reference, " <span class=\"mute\">(self-check: {check})</span>");
    }
    fact("reference", reference);
    if let Some(rebuilt) = &r.rebuilt {
        fact(
            "rebuilt",
            format!(
                "{} <span class=\"mute\">({} bytes)</span>",
                code(&format!("sha256:{}", rebuilt.sha256)),
                rebuilt.size
            ),
        );
    }
    fact("toolchain", code(&crate::toolchain_line(&r.inputs.toolchain)));
    fact("build", code(&format!("go {}", r.recipe.go_args.join(" "))));
    if !r.recipe.origins.is_empty() {
        let origins: Vec<String> = r.recipe.origins.iter().map(|(k, v)| format!("{}={}", esc(k), esc(v))).collect();
        fact("recipe origins", origins.join(", "));
    }
    if let Some(go_sum) = &r.inputs.go_sum {
        fact("go.sum", code(&format!("{} sha256:{}", go_sum.path, go_sum.sha256)));
    }
    s.push_str("</dl>\n");
    list(
        s,
        "The recipe runs or reads what it names",
        r.recipe.exec.iter().map(|e| format!("<span class=\"warn\">{}</span>", esc(&crate::exec_warning(e)))),
    );
    list(
        s,
        "Recipe fields nothing determined",
        r.recipe.undetermined.iter().map(|u| format!("{}: {}", code(&u.field), esc(&u.reason))),
    );
    if !r.causes.is_empty() {
        s.push_str("<h3>Causes</h3>\n<ol class=\"causes\">\n");
        for c in &r.causes {
            let _ = write!(s, "<li>{}", esc(&crate::cause_line(c)));
            if !c.evidence.is_empty() {
                s.push_str("<ul>");
                for e in c.evidence.iter().take(crate::EVIDENCE_SHOWN) {
                    let _ = write!(s, "<li>{}</li>", code(&crate::evidence_line(e)));
                }
                s.push_str("</ul>");
            }
            s.push_str("</li>\n");
        }
        s.push_str("</ol>\n");
    }
    list(s, "Module findings", r.module_findings.iter().map(|f| format!("{}: {}", code(&f.kind), esc(&f.message))));
    if let Some(e) = &r.error {
        let _ = write!(s, "<h3>Error</h3>\n<p>{}</p>\n", esc(&crate::failure_line(e)));
        if let Some(rem) = &e.remediation {
            let _ = writeln!(s, "<p>Remedy: {}</p>", esc(rem));
        }
    }
    list(s, "Warnings", r.warnings.iter().map(|w| esc(w)));
    if !r.modules.is_empty() {
        let _ = write!(
            s,
            "<h3>Modules ({})</h3>\n<table class=\"modules\">\n<thead><tr><th>module</th><th>version</th><th>h1</th></tr></thead>\n<tbody>\n",
            r.modules.len()
        );
        for m in &r.modules {
            let replaced = m
                .replace
                .as_deref()
                .map(|to| format!(" <span class=\"mute\">⇒ {}</span>", code(to)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "<tr><td>{}{replaced}</td><td>{}</td><td>{}</td></tr>",
                code(&m.path),
                code(&m.version),
                code(&m.h1)
            );
        }
        s.push_str("</tbody>\n</table>\n");
    }
    let timings: Vec<String> = r.timings.iter().map(|t| format!("{} {:.1}s", t.step, t.ms as f64 / 1000.0)).collect();
    let _ = writeln!(s, "<p class=\"mute\">{}</p>", esc(&timings.join(" · ")));
}

/// A heading and a list of already escaped items, when there are any.
fn list(s: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return;
    }
    let _ = writeln!(s, "<h3>{title}</h3>\n<ul>");
    for i in items {
        let _ = writeln!(s, "<li>{i}</li>");
    }
    s.push_str("</ul>\n");
}

#[cfg(test)]
pub(super) fn base64_for_tests(bytes: &[u8]) -> String {
    base64(bytes)
}
