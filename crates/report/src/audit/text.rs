//! The audit as text for a terminal and as Markdown for CI summaries.

use std::fmt::Write as _;

use super::v1::{AuditReport, Binary, Counts, ImageVerdict, Outcome};
use super::{module_of, visible};

/// Columns wider than this are not padded: a long path would push every row.
const MAX_COLUMN: usize = 48;

/// The report as text: the verdict and summary, the image, the counts, then
/// per platform one line per binary (outcome, path, module@version, detail).
pub fn render_text(r: &AuditReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "verdict: {}", r.verdict.as_str().to_uppercase());
    let _ = writeln!(s, "  {}", visible(&r.summary));
    let _ = writeln!(s, "image:      {}", visible(&r.image.input));
    if let Some(reference) = &r.image.reference {
        let _ = writeln!(s, "reference:  {}", visible(reference));
    }
    let _ = writeln!(
        s,
        "digest:     {} ({}, {})",
        visible(&r.image.digest),
        r.image.digest_kind,
        visible(&r.image.media_type)
    );
    if let Some(tag) = &r.image.resolved_from_tag {
        let _ = writeln!(s, "tag:        {} (resolved to the digest)", visible(tag));
    }
    let _ = writeln!(s, "binaries:   {}", counts_line(&r.counts));
    if let Some(e) = &r.error {
        let _ = writeln!(s, "error:      [{}] {}", e.class, visible(&e.message));
    }
    let _ = writeln!(
        s,
        "time:       {} to {} ({:.1}s)",
        visible(&r.started_on),
        visible(&r.finished_on),
        r.duration_ms as f64 / 1000.0
    );
    for p in &r.platforms {
        let _ = write!(s, "\n{}", visible(&p.platform));
        match &p.manifest_digest {
            Some(d) => {
                let _ = writeln!(s, " (manifest {})", visible(d));
            }
            None => s.push('\n'),
        }
        if p.binaries.is_empty() {
            let _ = writeln!(s, "  no Go binary");
            continue;
        }
        let rows: Vec<(String, String)> =
            p.binaries.iter().map(|b| (visible(&b.path).into_owned(), visible(&module_of(b)).into_owned())).collect();
        let width = |f: fn(&(String, String)) -> &String| {
            rows.iter().map(|r| f(r).chars().count()).filter(|w| *w <= MAX_COLUMN).max().unwrap_or(0)
        };
        let (path_w, module_w) = (width(|r| &r.0), width(|r| &r.1));
        for (b, (path, module)) in p.binaries.iter().zip(&rows) {
            let line = format!("  {:<14}  {path:<path_w$}  {module:<module_w$}  {}", b.outcome.as_str(), detail(b));
            let _ = writeln!(s, "{}", line.trim_end());
            for l in &b.links {
                let _ = writeln!(s, "  {:<14}  also at {}", "", visible(l));
            }
        }
    }
    s
}

/// The detail, with the reason first for an unverifiable binary.
fn detail(b: &Binary) -> String {
    let d = visible(&b.detail);
    match b.reason {
        Some(reason) if b.outcome == Outcome::Unverifiable => format!("{reason}: {d}"),
        _ => d.into_owned(),
    }
}

/// `N (A reproduced, B not reproduced, C unverifiable, D error; E builds)`.
pub(crate) fn counts_line(c: &Counts) -> String {
    format!(
        "{} ({} reproduced, {} not reproduced, {} unverifiable, {} error; {} {})",
        c.binaries,
        c.reproduced,
        c.not_reproduced,
        c.unverifiable,
        c.error,
        c.builds,
        if c.builds == 1 { "build" } else { "builds" }
    )
}

/// The icon of a binary's outcome (the verify report's for the shared ones).
pub(crate) fn outcome_icon(o: Outcome) -> &'static str {
    match o {
        Outcome::Reproduced => "✅",
        Outcome::NotReproduced => "❌",
        Outcome::Unverifiable => "❔",
        Outcome::Error => "⚠️",
    }
}

/// The icon of the image's verdict.
pub(crate) fn verdict_icon(v: ImageVerdict) -> &'static str {
    match v {
        ImageVerdict::Reproduced => "✅",
        ImageVerdict::NotReproduced => "❌",
        ImageVerdict::Unverifiable => "❔",
        ImageVerdict::Error => "⚠️",
        ImageVerdict::NoGoBinaries => "➖",
    }
}

/// `s` as a Markdown code span that nothing in it can end: fenced with more
/// backticks than its longest run, `|` escaped for tables.
fn code(s: &str) -> String {
    let text = visible(s).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `s` as Markdown text: every character Markdown or HTML would act on is escaped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in visible(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // `.` and `-` too: no domain autolinks, lists or rules from the image's text.
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '|' | '~' | '+' | '-' | '.' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The report as Markdown, for CI job summaries: a header table, then a table per platform.
pub fn render_markdown(r: &AuditReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### {} reprove audit: {} {}\n", verdict_icon(r.verdict), code(&r.image.input), r.verdict);
    let _ = writeln!(s, "{}\n", text(&r.summary));
    let _ = writeln!(s, "| | |\n|---|---|");
    if let Some(reference) = &r.image.reference {
        let _ = writeln!(s, "| reference | {} |", code(reference));
    }
    let _ = writeln!(s, "| digest | {} ({}) |", code(&r.image.digest), r.image.digest_kind);
    if let Some(tag) = &r.image.resolved_from_tag {
        let _ = writeln!(s, "| tag | {} |", code(tag));
    }
    let c = &r.counts;
    let _ = writeln!(
        s,
        "| binaries | {}: {} {} reproduced, {} {} not reproduced, {} {} unverifiable, {} {} error |",
        c.binaries,
        outcome_icon(Outcome::Reproduced),
        c.reproduced,
        outcome_icon(Outcome::NotReproduced),
        c.not_reproduced,
        outcome_icon(Outcome::Unverifiable),
        c.unverifiable,
        outcome_icon(Outcome::Error),
        c.error
    );
    let _ = writeln!(s, "| builds | {} |", c.builds);
    if let Some(e) = &r.error {
        let _ = writeln!(s, "\n**Error** (`{}`): {}", e.class, text(&e.message));
    }
    for p in &r.platforms {
        let _ = write!(s, "\n#### {}", code(&p.platform));
        if let Some(d) = &p.manifest_digest {
            let _ = write!(s, " ({})", code(d));
        }
        let _ = writeln!(s, "\n");
        if p.binaries.is_empty() {
            let _ = writeln!(s, "No Go binary.");
            continue;
        }
        let _ = writeln!(s, "| | binary | module | Go | detail |\n|---|---|---|---|---|");
        for b in &p.binaries {
            let mut path = code(&b.path);
            for l in &b.links {
                let _ = write!(path, "<br>also {}", code(l));
            }
            let _ = writeln!(
                s,
                "| {} {} | {path} | {} | {} | {} |",
                outcome_icon(b.outcome),
                b.outcome,
                code(&module_of(b)),
                b.go_version.as_deref().map(code).unwrap_or_default(),
                text(&detail(b))
            );
        }
    }
    let _ = writeln!(
        s,
        "\n<sub>{:.1}s · {} {}</sub>",
        r.duration_ms as f64 / 1000.0,
        text(&r.tool.name),
        text(&r.tool.version)
    );
    s
}
