//! The dashboard's HTML and SVG, as pure functions of what the queue answered: every
//! value escaped ([`esc`]: `report`'s escaping, which also shows control and
//! bidirectional characters as `\u{…}`), every link built from checked or
//! percent-encoded parts.

use std::fmt::Write as _;

use crate::job::{valid_digest, JobSpec};
use crate::queue::{repository_of, Day, Job, LogLine, State};

/// Escapes for HTML text, attribute values and XML (SVG).
pub(crate) fn esc(s: &str) -> String {
    report::audit::escape_html(s)
}

/// The dashboard's own style sheet (the report's, [`report::audit::style`], comes first).
pub(crate) const CSS: &str = r#"
nav.top{display:flex;gap:1rem;align-items:baseline;border-bottom:1px solid var(--line);padding:.2rem 0 .5rem;margin-bottom:1rem}
nav.top a{color:var(--fg);font-weight:600;text-decoration:none}
nav.top .mute{margin-left:auto}
.s-queued{background:#8250df}
.s-running{background:#0969da}
.s-done{background:var(--ok)}
.s-failed{background:var(--err)}
.o-unverifiable,.o-no-go-binaries{background:var(--unk)}
form.filter{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0 1rem}
form.filter label{display:flex;flex-direction:column;font-size:.85em;color:var(--mute)}
form.filter input,form.filter select{font:inherit;padding:.15rem .3rem}
table.jobs td{font-size:.92em}
table.jobs td.id{white-space:nowrap}
ul.counts li.c-queued{border-top-color:#8250df}
ul.counts li.c-running{border-top-color:#0969da}
ul.counts li.c-done{border-top-color:var(--ok)}
ul.counts li.c-failed{border-top-color:var(--err)}
table.jobs td.when{white-space:nowrap}
ol.log{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.85em;padding-left:2.2rem}
ol.log time{color:var(--mute);margin-right:.6rem}
pre.spec{background:var(--soft);padding:.6rem;border-radius:.3rem;overflow-x:auto;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere}
figure.chart{margin:.5rem 0 1rem}
figure.chart figcaption{color:var(--mute);font-size:.9em}
p.pages{display:flex;gap:1rem}
section.report{margin-top:1.5rem;border-top:2px solid var(--line);padding-top:1rem}
"#;

/// Percent-encodes `s` for a URL path: everything but unreserved characters, and `/`
/// too unless `keep_slash`.
pub(crate) fn pct(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `2026-12-07T01:02:03Z` of Unix milliseconds.
fn time(ms: i64) -> String {
    stdx::time::format_rfc3339(ms.div_euclid(1000))
}

/// A badge of a closed name: a job state or a verdict.
fn badge(class: &str, name: &str) -> String {
    format!(r#"<span class="badge {class}-{}">{}</span>"#, pct(name, false), esc(&name.replace('-', " ")))
}

/// The state of a job as a badge.
pub(crate) fn state_badge(s: State) -> String {
    badge("s", s.as_str())
}

/// A verdict as a badge (`-` when there is none).
pub(crate) fn verdict_badge(v: Option<&str>) -> String {
    v.map_or_else(|| "<span class=\"mute\">-</span>".to_string(), |v| badge("o", v))
}

/// A link to the page of an image digest (only a well-formed digest gets one).
fn image_link(image: &str, digest: Option<&str>) -> String {
    match digest.filter(|d| valid_digest(d)) {
        Some(d) => format!("<a href=\"/images/{d}\"><code>{}</code></a>", esc(image)),
        None => format!("<code>{}</code>", esc(image)),
    }
}

/// A link to the page of a module.
pub(crate) fn module_link(module: &str) -> String {
    format!("<a href=\"/modules/{}\"><code>{}</code></a>", esc(&pct(module, true)), esc(module))
}

/// What a job is about: its image, else its source and revision.
fn subject(job: &Job) -> String {
    match (&job.image, &job.spec) {
        (Some(image), _) => image_link(image, job.image_digest.as_deref()),
        (None, JobSpec::Verify(v)) => format!("<code>{}</code> @ <code>{}</code>", esc(&v.source), esc(&v.rev)),
        (None, JobSpec::Check(c)) => format!("<code>{}</code> @ <code>{}</code>", esc(&c.source), esc(&c.rev)),
        (None, JobSpec::Audit(a)) => format!("<code>{}</code>", esc(&a.image)),
        (None, JobSpec::Noop(n)) => format!("no-op <code>{}</code>", n.n),
    }
}

/// `12.3 s` between two times, when both are known.
fn took(job: &Job) -> String {
    match (job.started_ms, job.finished_ms) {
        (Some(s), Some(f)) if f >= s => format!("{:.1} s", (f - s) as f64 / 1000.0),
        _ => String::new(),
    }
}

/// The table of jobs (the list, an image's and a module's history).
pub(crate) fn jobs_table(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "<p class=\"mute\" id=\"no-jobs\">No job.</p>\n".to_string();
    }
    let mut s = String::from(
        "<table class=\"jobs\">\n<thead><tr><th>job</th><th>state</th><th>kind</th><th>image or source</th>\
         <th>module</th><th>verdict</th><th>created</th><th>finished</th></tr></thead>\n<tbody>\n",
    );
    for j in jobs {
        let module = j.module.as_deref().map(module_link).unwrap_or_default();
        let finished = j.finished_ms.map(time).unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr class=\"job\" id=\"job-{id}\" data-state=\"{state}\"><td class=\"id\"><a href=\"/jobs/{id}\"><code>{short}</code></a></td>\
             <td>{}</td><td>{kind}</td><td class=\"subject\">{}</td><td class=\"module\">{module}</td><td class=\"verdict\">{}</td>\
             <td class=\"when\">{}</td><td class=\"when\">{finished} <span class=\"mute\">{}</span></td></tr>",
            state_badge(j.state),
            subject(j),
            verdict_badge(j.verdict.as_deref()),
            time(j.created_ms),
            took(j),
            id = j.id,
            short = &j.id[..j.id.len().min(12)],
            state = j.state.as_str(),
            kind = j.spec.kind(),
        );
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The facts of a job (its page's header).
pub(crate) fn job_facts(job: &Job) -> String {
    let mut s = format!(
        "<header class=\"banner v-{v}\">\n<h1>{} job <code>{}</code></h1>\n\
         <p class=\"verdict\" id=\"job-state\">{} {}</p>\n<dl class=\"facts\">\n",
        job.spec.kind(),
        job.id,
        state_badge(job.state),
        verdict_badge(job.verdict.as_deref()),
        v = pct(job.verdict.as_deref().unwrap_or("none"), false),
    );
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(s, "<dt>{name}</dt><dd>{value}</dd>");
    };
    fact("subject", subject(job));
    if let Some(m) = &job.module {
        fact("module", module_link(m));
    }
    fact("attempts", job.attempts.to_string());
    if let Some(p) = &job.progress {
        fact("progress", format!("<code>{}</code>", esc(p)));
    }
    fact("created", time(job.created_ms));
    if let Some(t) = job.started_ms {
        fact("started", time(t));
    }
    if let Some(t) = job.finished_ms {
        fact("finished", format!("{} <span class=\"mute\">{}</span>", time(t), took(job)));
    }
    if let Some(class) = &job.failure_class {
        fact(
            "failure",
            format!(
                "<span class=\"warn\" id=\"failure\">[{}]</span> {}",
                esc(class),
                esc(job.failure_message.as_deref().unwrap_or(""))
            ),
        );
    }
    if let Some(d) = &job.report {
        fact("report", blob_link(d));
    }
    s.push_str("</dl>\n</header>\n");
    if !job.attestations.is_empty() {
        s.push_str("<h2>Attestations</h2>\n<ul class=\"attestations\">\n");
        for a in &job.attestations {
            let _ = writeln!(
                s,
                "<li>{} <span class=\"mute\">{}</span> {}</li>",
                esc(&a.name),
                esc(&a.media_type),
                blob_link(&a.digest)
            );
        }
        s.push_str("</ul>\n");
    }
    let spec = serde_json::to_string_pretty(&job.spec).unwrap_or_default();
    let _ = writeln!(
        s,
        "<details class=\"spec\"><summary>What was submitted</summary><pre class=\"spec\">{}</pre></details>",
        esc(&spec)
    );
    s
}

/// A link to a stored blob (only a well-formed digest gets one).
fn blob_link(digest: &str) -> String {
    if valid_digest(digest) {
        format!("<a href=\"/blobs/{digest}\"><code>{digest}</code></a>")
    } else {
        format!("<code>{}</code>", esc(digest))
    }
}

/// A job's log, oldest line first.
pub(crate) fn log(lines: &[LogLine]) -> String {
    let mut s = String::from("<h2>Log</h2>\n");
    if lines.is_empty() {
        s.push_str("<p class=\"mute\">Nothing logged.</p>\n");
        return s;
    }
    s.push_str("<ol class=\"log\">\n");
    for l in lines {
        let _ = writeln!(s, "<li><time>{}</time>{}</li>", time(l.at_ms), esc(&l.line));
    }
    s.push_str("</ol>\n");
    s
}

/// One day of the chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bar {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Jobs finished that day.
    pub finished: u64,
    /// Of those, reproduced.
    pub reproduced: u64,
    /// reproduced / finished, 0 to 1; `None` on a day without any.
    pub rate: Option<f64>,
}

/// The `span` days ending with `today`, each with its counts (0 when absent).
pub(crate) fn bars(days: &[Day], today: i64, span: i64) -> Vec<Bar> {
    (today - span + 1..=today)
        .map(|day| {
            let d = days.iter().find(|d| d.day == day).copied().unwrap_or(Day { day, ..Day::default() });
            Bar {
                day,
                finished: d.finished,
                reproduced: d.reproduced,
                rate: (d.finished > 0).then(|| d.reproduced as f64 / d.finished as f64),
            }
        })
        .collect()
}

/// `YYYY-MM-DD` of a day number.
fn date(day: i64) -> String {
    time(day * 86_400_000).chars().take(10).collect()
}

/// The reproducibility rate per day as an inline SVG: a bar per day, its height the
/// rate, with the counts in its title; the whole span's rate in the caption.
pub(crate) fn chart(bars: &[Bar]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 20.0;
    let n = bars.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let plot = H - BOTTOM - 10.0;
    let (finished, reproduced) = bars.iter().fold((0u64, 0u64), |(f, r), b| (f + b.finished, r + b.reproduced));
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure class=\"chart\" id=\"rate-chart\" data-finished=\"{finished}\" data-reproduced=\"{reproduced}\">\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-labelledby=\"rate-title\">\n\
         <title id=\"rate-title\">Reproducibility rate per day</title>\n"
    );
    for pct in [0.0, 0.5, 1.0] {
        let y = 10.0 + plot * (1.0 - pct);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\" stroke=\"#d1d9e0\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#59636e\">{}%</text>",
            LEFT - 4.0,
            y + 3.0,
            (pct * 100.0) as u32
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let w = slot * 0.7;
        let Some(rate) = b.rate else { continue };
        let h = plot * rate;
        let _ = writeln!(
            s,
            "<g class=\"day\" data-day=\"{d}\" data-finished=\"{f}\" data-reproduced=\"{r}\"><title>{d}: {r} of {f} reproduced</title>\
             <rect x=\"{x:.1}\" y=\"10\" width=\"{w:.1}\" height=\"{plot:.1}\" fill=\"#f6f8fa\" stroke=\"#d1d9e0\"/>\
             <rect class=\"rate\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#1a7f37\"/></g>",
            10.0 + plot - h,
            d = date(b.day),
            f = b.finished,
            r = b.reproduced,
        );
    }
    if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#59636e\">{}</text>\
             <text x=\"{W}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#59636e\">{}</text>",
            H - 5.0,
            date(first.day),
            H - 5.0,
            date(last.day)
        );
    }
    let caption = if finished == 0 {
        "No job finished in these days.".to_string()
    } else {
        format!(
            "{reproduced} of {finished} jobs finished in these {} days reproduced ({:.0}%).",
            bars.len(),
            reproduced as f64 * 100.0 / finished as f64
        )
    };
    let _ = write!(s, "</svg>\n<figcaption>{caption}</figcaption>\n</figure>\n");
    s
}

/// What a badge says, from the latest verdict of each subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadgeText {
    /// The right half's text.
    pub message: String,
    /// Its colour.
    pub colour: &'static str,
}

/// Green: every subject's latest verdict is `reproduced`; red: one is not; grey:
/// nothing was judged. A subject is an image digest (else the job itself); `jobs` is
/// newest first and only a done job's verdict counts.
pub(crate) fn badge_text(jobs: &[Job]) -> BadgeText {
    let mut seen = std::collections::BTreeSet::new();
    let (mut judged, mut reproduced) = (0u32, 0u32);
    for j in jobs {
        let subject = j.image_digest.clone().unwrap_or_else(|| j.id.clone());
        if !seen.insert(subject) {
            continue;
        }
        match (j.state, j.verdict.as_deref()) {
            (State::Done, Some("reproduced")) => {
                judged += 1;
                reproduced += 1;
            }
            (State::Done, Some("no-go-binaries")) | (State::Done, None) => {}
            (State::Done, Some(_)) => judged += 1,
            _ => {}
        }
    }
    if judged == 0 {
        BadgeText { message: "unknown".into(), colour: "#6e7781" }
    } else if reproduced == judged {
        BadgeText { message: format!("reproduced {reproduced}/{judged}"), colour: "#1a7f37" }
    } else {
        BadgeText { message: format!("not reproduced {reproduced}/{judged}"), colour: "#cf222e" }
    }
}

/// Roughly how wide `s` is in 11px Verdana (the badge's font).
fn text_width(s: &str) -> f64 {
    s.chars().map(|c| if c.is_ascii_uppercase() || c == 'm' || c == 'w' { 8.5 } else { 6.5 }).sum()
}

/// A flat SVG badge: `label | message`.
pub(crate) fn badge_svg(label: &str, b: &BadgeText, title: &str) -> String {
    let lw = text_width(label) + 12.0;
    let mw = text_width(&b.message) + 12.0;
    let w = lw + mw;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"20\" role=\"img\" aria-label=\"{l}: {m}\">\
<title>{t}: {m}</title>\
<rect width=\"{lw:.0}\" height=\"20\" fill=\"#555\"/>\
<rect x=\"{lw:.0}\" width=\"{mw:.0}\" height=\"20\" fill=\"{c}\"/>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\">\
<text x=\"{lx:.1}\" y=\"14\">{l}</text><text x=\"{mx:.1}\" y=\"14\">{m}</text></g></svg>\n",
        l = esc(label),
        m = esc(&b.message),
        t = esc(title),
        c = b.colour,
        lx = lw / 2.0,
        mx = lw + mw / 2.0,
    )
}

/// The repository of a job's image, for the badge link.
pub(crate) fn badge_link(image: &str) -> String {
    let repo = repository_of(image);
    format!(
        "<p class=\"mute\">Badge of <code>{}</code>: <a href=\"/badge/{}.svg\">/badge/{}.svg</a></p>\n",
        esc(repo),
        esc(&pct(repo, false)),
        esc(&pct(repo, false))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_are_escaped_and_encoded() {
        let hostile = "</td><script>alert(1)</script>\u{202e}\"'&";
        let e = esc(hostile);
        assert_eq!(e, "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}&quot;&#39;&amp;");
        let link = module_link("example.com/<img src=x onerror=alert(2)>");
        assert!(!link.contains("<img"), "{link}");
        assert!(
            link.starts_with("<a href=\"/modules/example.com/%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E\">"),
            "{link}"
        );
        assert_eq!(pct("a/b c", false), "a%2Fb%20c");
        // A digest that is not one gets no link.
        assert_eq!(image_link("x", Some("sha256:\"><script>")), "<code>x</code>");
        assert_eq!(blob_link("sha256:<x>"), "<code>sha256:&lt;x&gt;</code>");
        let svg = badge_svg("reprove", &BadgeText { message: "<x>".into(), colour: "#555" }, "a&b");
        assert!(svg.contains("&lt;x&gt;") && svg.contains("a&amp;b") && !svg.contains("<x>"), "{svg}");
    }

    #[test]
    fn the_chart_counts_each_day() {
        let days = [
            Day { day: 100, finished: 4, reproduced: 3, failed: 1 },
            Day { day: 102, finished: 2, reproduced: 2, failed: 0 },
            Day { day: 50, finished: 9, reproduced: 0, failed: 9 },
        ];
        let b = bars(&days, 102, 4);
        assert_eq!(b.iter().map(|b| b.day).collect::<Vec<_>>(), [99, 100, 101, 102]);
        assert_eq!(b.iter().map(|b| b.rate).collect::<Vec<_>>(), [None, Some(0.75), None, Some(1.0)]);
        let svg = chart(&b);
        // Six finished in the span, five reproduced; the day before it is not counted.
        assert!(svg.contains("data-finished=\"6\" data-reproduced=\"5\""), "{svg}");
        assert!(svg.contains("5 of 6 jobs finished in these 4 days reproduced (83%)"), "{svg}");
        assert_eq!(svg.matches("<g class=\"day\"").count(), 2);
        // The bars' heights are the rates of the plot's 130 units.
        assert!(svg.contains("height=\"97.5\" fill=\"#1a7f37\""), "{svg}");
        assert!(svg.contains("height=\"130.0\" fill=\"#1a7f37\""), "{svg}");
        assert!(svg.contains("1970-04-11: 3 of 4 reproduced"), "{svg}");
        assert!(chart(&bars(&[], 10, 3)).contains("No job finished"));
    }

    fn job(id: &str, digest: Option<&str>, state: State, verdict: Option<&str>) -> Job {
        Job {
            id: id.into(),
            key: id.into(),
            spec: JobSpec::Audit(crate::job::AuditSpec {
                image: "r/a@sha256:x".into(),
                platforms: Vec::new(),
                push: false,
                watch: None,
            }),
            state,
            image: digest.map(|d| format!("r/a@{d}")),
            image_digest: digest.map(str::to_string),
            module: None,
            attempts: 1,
            lease_owner: None,
            lease_expires_ms: None,
            progress: None,
            created_ms: 0,
            queued_ms: 0,
            started_ms: None,
            finished_ms: None,
            verdict: verdict.map(str::to_string),
            report: None,
            attestations: vec![],
            failure_class: None,
            failure_message: None,
            results_stored: 0,
        }
    }

    #[test]
    fn the_badge_counts_the_latest_verdict_of_each_digest() {
        assert_eq!(badge_text(&[]).message, "unknown");
        let older_failure = [
            job("1", Some("d1"), State::Done, Some("reproduced")),
            job("2", Some("d1"), State::Done, Some("not-reproduced")),
            job("3", Some("d2"), State::Done, Some("reproduced")),
            job("4", Some("d3"), State::Failed, None),
        ];
        assert_eq!(badge_text(&older_failure), BadgeText { message: "reproduced 2/2".into(), colour: "#1a7f37" });
        let newer_failure = [job("5", Some("d2"), State::Done, Some("not-reproduced")), older_failure[0].clone()];
        assert_eq!(badge_text(&newer_failure), BadgeText { message: "not reproduced 1/2".into(), colour: "#cf222e" });
        assert_eq!(badge_text(&[job("6", None, State::Queued, None)]).message, "unknown");
    }
}
