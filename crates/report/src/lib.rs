//! The `reprove verify` report: the versioned document ([`v1`], described by
//! `schemas/report.schema.json`) and its renderings for people (text),
//! CI summaries (Markdown) and test dashboards (JUnit XML).
//!
//! The report carries everything a SLSA provenance of the rebuild needs
//! (subject, source URI and commit, recipe, toolchain image and digest,
//! go.mod/go.sum digests, every module with its h1, start and finish times, an
//! invocation id), so `reprove attest provenance REPORT.json` can be written
//! from the document alone. It derives `Deserialize` for that reason.
#![deny(missing_docs)]

use std::fmt::Write as _;

/// Version 1 of the document.
pub mod v1 {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    /// The schema version this module writes.
    pub const SCHEMA_VERSION: u32 = 1;

    /// The whole document.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Report {
        /// Always [`SCHEMA_VERSION`].
        pub schema_version: u32,
        /// A random id of this run (hex).
        pub invocation_id: String,
        /// `reproduced`, `not-reproduced` or `error`.
        pub verdict: String,
        /// One line for a person.
        pub summary: String,
        /// When the run started (`YYYY-MM-DDTHH:MM:SSZ`).
        pub started_on: String,
        /// When the run finished.
        pub finished_on: String,
        /// The artifact the verdict is about: the reference.
        pub subject: Subject,
        /// What went in, with digests.
        pub inputs: Inputs,
        /// How the rebuild was done, with where each value came from.
        pub recipe: Recipe,
        /// The rebuilt binary, when the build succeeded.
        pub rebuilt: Option<Artifact>,
        /// Why the binaries differ (not-reproduced only), most significant first.
        pub causes: Vec<Cause>,
        /// The modules the rebuilt (else the reference) binary was built from.
        pub modules: Vec<Module>,
        /// Disagreements between go.sum, the reference's and the rebuilt binary's module sums.
        pub module_findings: Vec<ModuleFinding>,
        /// Wall time of each step, in order.
        pub timings: Vec<Timing>,
        /// Why there is no verdict (`error` only).
        pub error: Option<Failure>,
        /// Things a reader should know that do not change the verdict.
        pub warnings: Vec<String>,
        /// Versions of the tools involved.
        pub tools: Tools,
    }

    /// An artifact by name and digest.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Subject {
        /// The file name (the recipe's output name).
        pub name: String,
        /// SHA-256, hex.
        pub sha256: String,
    }

    /// The rebuilt binary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Artifact {
        /// SHA-256, hex.
        pub sha256: String,
        /// Size in bytes.
        pub size: u64,
        /// Where it was kept (`--keep`), else `null`.
        pub path: Option<String>,
    }

    /// The inputs.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Inputs {
        /// The source.
        pub source: Source,
        /// go.mod at the commit (the file `-modfile` names when the recipe sets it).
        pub go_mod: Option<FileDigest>,
        /// go.sum at the commit (with `-modfile`, its `.sum`); `null` when the module has none.
        pub go_sum: Option<FileDigest>,
        /// The reference binary.
        pub reference: Reference,
        /// The toolchain image.
        pub toolchain: Toolchain,
        /// The go.work workspace the build used; absent when it used none
        /// (no go.work at the commit, or `GOWORK=off`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub workspace: Option<Workspace>,
    }

    /// The go.work workspace of a build: its files, with digests.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Workspace {
        /// go.work.
        pub go_work: FileDigest,
        /// go.work.sum; `null` when there is none.
        pub go_work_sum: Option<FileDigest>,
        /// The modules it uses, in go.work order (the main module included).
        pub modules: Vec<WorkspaceModule>,
    }

    /// One module of a workspace.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct WorkspaceModule {
        /// The module path.
        pub path: String,
        /// Its directory in the source tree, as go.work's `use` names it, cleaned (`.` for the root).
        pub dir: String,
        /// Its go.mod.
        pub go_mod: FileDigest,
        /// Its go.sum; `null` when there is none.
        pub go_sum: Option<FileDigest>,
    }

    /// The source.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Source {
        /// The repository: a clone URL, or `file://` and a local path.
        pub uri: String,
        /// The revision as given.
        pub rev: String,
        /// The full commit id; `null` when it could not be resolved.
        pub commit: Option<String>,
        /// The commit time (`vcs.time` format).
        pub commit_time: Option<String>,
        /// Tags pointing at the commit.
        pub tags: Vec<String>,
        /// Whether the local working tree had uncommitted changes (`--allow-dirty`);
        /// the rebuild used the commit's tree regardless.
        pub dirty: bool,
        /// The changed paths, when dirty.
        pub dirty_paths: Vec<String>,
        /// Submodules of the tree: their content is not part of the rebuild.
        pub submodules: Vec<Submodule>,
        /// Symlinks of the tree whose target leaves it.
        pub escaping_symlinks: Vec<String>,
    }

    /// A submodule.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Submodule {
        /// Its path in the tree.
        pub path: String,
        /// The commit it pins.
        pub commit: String,
    }

    /// A file by path and digest.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct FileDigest {
        /// Its path in the source tree.
        pub path: String,
        /// SHA-256, hex.
        pub sha256: String,
    }

    /// The reference binary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Reference {
        /// The file, as given; `null` with `--reference-digest`.
        pub path: Option<String>,
        /// SHA-256, hex.
        pub sha256: String,
        /// Size in bytes, when the file was given.
        pub size: Option<u64>,
        /// The Go version from its build info, when read.
        pub go_version: Option<String>,
    }

    /// The toolchain image.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Toolchain {
        /// The image reference pinned by digest, as given.
        pub image: String,
        /// The pinned digest (`sha256:…`).
        pub digest: String,
        /// The platform manifest's digest, when pulled.
        pub manifest_digest: Option<String>,
        /// The Go version the image contains (`$GOROOT/VERSION`), when pulled.
        pub go_version: Option<String>,
        /// Where the image came from: `flag` (`--toolchain`) or `reprove.lock`
        /// (the commit's lock file, for the recipe's Go version).
        #[serde(default)]
        pub from: Option<String>,
    }

    /// The recipe as built.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Recipe {
        /// The package given to `go build`.
        pub package: String,
        /// GOOS.
        pub goos: String,
        /// GOARCH.
        pub goarch: String,
        /// The architecture level variable and value (`GOAMD64=v1`…), when set.
        pub arch_level: Option<String>,
        /// The recipe's environment (CGO_ENABLED, GOAMD64, GOEXPERIMENT…).
        pub env: BTreeMap<String, String>,
        /// `-trimpath`.
        pub trimpath: bool,
        /// `-ldflags`.
        pub ldflags: Option<String>,
        /// `-gcflags`.
        pub gcflags: Option<String>,
        /// `-tags`.
        pub tags: Vec<String>,
        /// `-buildmode`, when not the default.
        pub buildmode: Option<String>,
        /// `-buildvcs`.
        pub buildvcs: String,
        /// The output file name.
        pub output_name: String,
        /// The Go version required.
        pub go_version: Option<String>,
        /// The full `go` command line run in the sandbox (after `go`).
        pub go_args: Vec<String>,
        /// The full environment the pipeline gave the build (besides the image's).
        pub build_env: BTreeMap<String, String>,
        /// Where each field came from: `flag`, `reference:<setting>`, `default`, `toolchain`…
        pub origins: BTreeMap<String, String>,
        /// Fields nothing determined, and how to supply them.
        pub undetermined: Vec<Undetermined>,
        /// Values two inputs set differently, with the one used.
        #[serde(default)]
        pub conflicts: Vec<Conflict>,
        /// What an input set that reprove left out on purpose, and why.
        #[serde(default)]
        pub notes: Vec<String>,
        /// Values that make the build run or read what they name (`-toolexec`,
        /// `-exec`, `-overlay`, `-modfile` in GOFLAGS), with their origin.
        #[serde(default)]
        pub exec: Vec<ExecFlag>,
    }

    /// A recipe value that makes the build run or read what it names.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ExecFlag {
        /// The go flag (`-toolexec`, `-exec`, `-overlay`, `-modfile`).
        pub flag: String,
        /// Its value.
        pub value: String,
        /// Where it came from (an origin as in `origins`).
        pub origin: String,
    }

    /// A recipe value two inputs set differently.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Conflict {
        /// The field, e.g. `ldflags` or `env.GOAMD64`.
        pub field: String,
        /// The value used.
        pub used: String,
        /// Where the value used came from (an origin as in `origins`).
        pub used_origin: String,
        /// The value set aside.
        pub overridden: String,
        /// Where it came from.
        pub overridden_origin: String,
    }

    /// A field nothing determined.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Undetermined {
        /// The field.
        pub field: String,
        /// Why, and how to supply it.
        pub reason: String,
    }

    /// One cause of a difference (the `reprove diff` cause, with codes of `compare::CauseCode`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Cause {
        /// The stable code, e.g. `ldflags`, `build-id-only`.
        pub code: String,
        /// `certain`, `likely` or `possible`.
        pub confidence: String,
        /// One line for a person.
        pub explanation: String,
        /// What it was concluded from (a = reference, b = rebuilt).
        pub evidence: Vec<Evidence>,
    }

    /// One observation.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Evidence {
        /// Where it was observed.
        pub source: String,
        /// What.
        pub name: String,
        /// In the reference.
        pub reference: Option<String>,
        /// In the rebuilt binary.
        pub rebuilt: Option<String>,
    }

    /// A module dependency.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Module {
        /// The module path.
        pub path: String,
        /// The version.
        pub version: String,
        /// The `h1:` hash of its content; empty when unknown.
        pub h1: String,
        /// `path@version` or a directory it was replaced by, when replaced.
        pub replace: Option<String>,
    }

    /// One disagreement about a module.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ModuleFinding {
        /// `reference-vs-go-sum`, `rebuilt-vs-go-sum`, `reference-vs-rebuilt`,
        /// `missing-in-go-sum`, `only-in-reference`, `only-in-rebuilt`.
        pub kind: String,
        /// The module path.
        pub path: String,
        /// The version (the reference's when they differ).
        pub version: String,
        /// What go.sum says, when it was consulted.
        pub go_sum: Option<String>,
        /// What the reference binary records.
        pub reference: Option<String>,
        /// What the rebuilt binary records.
        pub rebuilt: Option<String>,
        /// One line for a person.
        pub message: String,
    }

    /// A step's wall time.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Timing {
        /// `source`, `go-sum`, `modules`, `toolchain`, `build`, `compare`.
        pub step: String,
        /// Milliseconds.
        pub ms: u64,
    }

    /// Why there is no verdict.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Failure {
        /// The step that failed.
        pub step: String,
        /// `input` (exit 2) or `infrastructure` (exit 3); `security` (exit 3) for
        /// content that does not match go.sum.
        pub class: String,
        /// A stable code: a `modfetch::failure` code where one applies
        /// (`checksum-mismatch`, `missing-go-sum`…), else the step's own
        /// (`go-version-mismatch`, `dirty-tree`, `build-failed`…).
        pub code: String,
        /// What happened.
        pub message: String,
        /// What to do about it.
        pub remediation: Option<String>,
        /// The modules concerned, as `path@version`.
        pub modules: Vec<String>,
    }

    /// Tool versions.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Tools {
        /// reprove's version.
        pub reprove: String,
        /// The Go version inside the toolchain, when known.
        pub go: Option<String>,
        /// The sandbox runtime that ran the build, when it ran.
        pub runtime: Option<String>,
    }
}

fn ms_total(r: &v1::Report) -> u64 {
    r.timings.iter().map(|t| t.ms).sum()
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// One line about a recipe value that makes the build run or read what it names.
pub fn exec_warning(e: &v1::ExecFlag) -> String {
    let what = match e.flag.as_str() {
        "-toolexec" => "runs every compiler and linker invocation through",
        "-exec" => "runs the programs go run and go test build through",
        "-overlay" => "replaces source files with the files listed in",
        "-modfile" => "takes the module's requirements and sums from",
        _ => "uses",
    };
    format!(
        "{}={} (from {}): the build {what} {:?}; the verdict holds for the source together with it",
        e.flag, e.value, e.origin, e.value
    )
}

/// The report as text for a terminal.
pub fn render_text(r: &v1::Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "verdict: {}", r.verdict.to_uppercase());
    let _ = writeln!(s, "  {}", r.summary);
    let src = &r.inputs.source;
    let _ = writeln!(s, "source:     {} @ {}", src.uri, src.commit.as_deref().unwrap_or(&src.rev));
    if src.dirty {
        let _ = writeln!(
            s,
            "            the working tree had uncommitted changes (--allow-dirty): {}; the rebuild used the commit",
            src.dirty_paths.join(", ")
        );
    }
    let reference = r.inputs.reference.path.as_deref().unwrap_or("(digest only)");
    let _ = writeln!(s, "reference:  {reference} sha256:{}", r.inputs.reference.sha256);
    if let Some(b) = &r.rebuilt {
        let _ = writeln!(s, "rebuilt:    sha256:{} ({} bytes)", b.sha256, b.size);
    }
    let _ = writeln!(
        s,
        "toolchain:  {} ({}{})",
        r.inputs.toolchain.image,
        r.inputs.toolchain.go_version.as_deref().unwrap_or("Go version unknown"),
        match r.inputs.toolchain.from.as_deref() {
            Some("flag") | None => String::new(),
            Some(f) => format!(", from {f}"),
        }
    );
    let _ = writeln!(s, "build:      go {}", r.recipe.go_args.join(" "));
    if !r.recipe.origins.is_empty() {
        let origins: Vec<String> = r.recipe.origins.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "recipe:     {}", origins.join(", "));
    }
    for c in &r.recipe.conflicts {
        let _ = writeln!(
            s,
            "conflict:   {}: {:?} from {} over {:?} from {}",
            c.field, c.used, c.used_origin, c.overridden, c.overridden_origin
        );
    }
    for n in &r.recipe.notes {
        let _ = writeln!(s, "note:       {n}");
    }
    for e in &r.recipe.exec {
        let _ = writeln!(s, "WARNING:    {}", exec_warning(e));
    }
    for c in &r.causes {
        let _ = writeln!(s, "cause:      {} ({}): {}", c.code, c.confidence, c.explanation);
        for e in c.evidence.iter().take(5) {
            let _ = writeln!(
                s,
                "              {} {}: reference {} / rebuilt {}",
                e.source,
                e.name,
                e.reference.as_deref().unwrap_or("-"),
                e.rebuilt.as_deref().unwrap_or("-")
            );
        }
    }
    for f in &r.module_findings {
        let _ = writeln!(s, "module:     [{}] {}", f.kind, f.message);
    }
    for u in &r.recipe.undetermined {
        let _ = writeln!(s, "undetermined: {}: {}", u.field, u.reason);
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "error:      [{}/{}] in step {}: {}", e.class, e.code, e.step, e.message);
        if let Some(rem) = &e.remediation {
            let _ = writeln!(s, "remedy:     {rem}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning:    {w}");
    }
    let timings: Vec<String> = r.timings.iter().map(|t| format!("{} {:.1}s", t.step, t.ms as f64 / 1000.0)).collect();
    let _ = writeln!(s, "timings:    {} (total {:.1}s)", timings.join(", "), ms_total(r) as f64 / 1000.0);
    s
}

/// The report as Markdown, for CI job summaries.
pub fn render_markdown(r: &v1::Report) -> String {
    let mut s = String::new();
    let icon = match r.verdict.as_str() {
        "reproduced" => "✅",
        "not-reproduced" => "❌",
        _ => "⚠️",
    };
    let _ = writeln!(s, "### {icon} reprove verify: `{}` {}\n", r.subject.name, r.verdict);
    let _ = writeln!(s, "{}\n", r.summary);
    let _ = writeln!(s, "| | |\n|---|---|");
    let src = &r.inputs.source;
    let _ = writeln!(s, "| source | `{}` @ `{}` |", src.uri, src.commit.as_deref().unwrap_or(&src.rev));
    let _ = writeln!(s, "| reference | `sha256:{}` |", r.inputs.reference.sha256);
    if let Some(b) = &r.rebuilt {
        let _ = writeln!(s, "| rebuilt | `sha256:{}` |", b.sha256);
    }
    let _ = writeln!(s, "| toolchain | `{}` |", r.inputs.toolchain.image);
    if let Some(f) = r.inputs.toolchain.from.as_deref().filter(|f| *f != "flag") {
        let _ = writeln!(s, "| toolchain from | `{f}` |");
    }
    let _ = writeln!(s, "| build | `go {}` |", r.recipe.go_args.join(" ").replace('|', "\\|"));
    if !r.recipe.origins.is_empty() {
        let origins: Vec<String> = r.recipe.origins.iter().map(|(k, v)| format!("{k}: `{v}`")).collect();
        let _ = writeln!(s, "| recipe origins | {} |", origins.join(", ").replace('|', "\\|"));
    }
    if !r.recipe.exec.is_empty() {
        let _ = writeln!(s, "\n**Warning: the recipe runs or reads what it names**\n");
        for e in &r.recipe.exec {
            let _ = writeln!(s, "- ⚠️ {}", exec_warning(e).replace('|', "\\|"));
        }
    }
    if !r.recipe.conflicts.is_empty() || !r.recipe.notes.is_empty() {
        let _ = writeln!(s, "\n**Recipe**\n");
        for c in &r.recipe.conflicts {
            let _ = writeln!(
                s,
                "- conflict `{}`: `{}` from {} over `{}` from {}",
                c.field, c.used, c.used_origin, c.overridden, c.overridden_origin
            );
        }
        for n in &r.recipe.notes {
            let _ = writeln!(s, "- note: {n}");
        }
    }
    if !r.causes.is_empty() {
        let _ = writeln!(s, "\n**Causes**\n");
        for c in &r.causes {
            let _ = writeln!(s, "- `{}` ({}): {}", c.code, c.confidence, c.explanation);
        }
    }
    if !r.module_findings.is_empty() {
        let _ = writeln!(s, "\n**Module findings**\n");
        for f in &r.module_findings {
            let _ = writeln!(s, "- `{}`: {}", f.kind, f.message);
        }
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "\n**Error** (`{}`, `{}`, step `{}`): {}", e.class, e.code, e.step, e.message);
    }
    let timings: Vec<String> = r.timings.iter().map(|t| format!("{} {:.1}s", t.step, t.ms as f64 / 1000.0)).collect();
    let _ = writeln!(s, "\n<sub>{} · reprove {}</sub>", timings.join(" · "), r.tools.reprove);
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as a JUnit XML document: one test case, failed when not
/// reproduced, in error when there is no verdict.
pub fn render_junit(r: &v1::Report) -> String {
    let secs = ms_total(r) as f64 / 1000.0;
    let (failures, errors) = match r.verdict.as_str() {
        "reproduced" => (0, 0),
        "not-reproduced" => (1, 0),
        _ => (0, 1),
    };
    let name = xml_escape(&format!("verify {}", r.subject.name));
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<testsuites name="reprove" tests="1" failures="{failures}" errors="{errors}" time="{secs:.3}">"#
    );
    let _ = writeln!(
        s,
        r#"  <testsuite name="reprove verify" tests="1" failures="{failures}" errors="{errors}" time="{secs:.3}" timestamp="{}">"#,
        xml_escape(&r.started_on)
    );
    let _ = writeln!(s, r#"    <testcase classname="reprove.verify" name="{name}" time="{secs:.3}">"#);
    let body = xml_escape(&render_text(r));
    match r.verdict.as_str() {
        "reproduced" => {}
        "not-reproduced" => {
            let codes: Vec<&str> = r.causes.iter().map(|c| c.code.as_str()).collect();
            let _ = writeln!(
                s,
                r#"      <failure type="not-reproduced" message="{}">{body}</failure>"#,
                xml_escape(&format!("not reproduced: {}", codes.join(", ")))
            );
        }
        _ => {
            let code = r.error.as_ref().map(|e| e.code.as_str()).unwrap_or("error");
            let _ = writeln!(
                s,
                r#"      <error type="{}" message="{}">{body}</error>"#,
                xml_escape(code),
                xml_escape(&r.summary)
            );
        }
    }
    let _ = writeln!(
        s,
        "      <system-out>{}</system-out>",
        xml_escape(&format!("reference sha256:{}", short(&r.inputs.reference.sha256)))
    );
    let _ = writeln!(s, "    </testcase>\n  </testsuite>\n</testsuites>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recipe value that runs code is named in the text and Markdown outputs, with its origin.
    #[test]
    fn text_and_markdown_warn_of_recipe_values_that_run_code() {
        let mut r: v1::Report =
            match serde_json::from_str(include_str!("../../../tests/fixtures/report/not-reproduced.json")) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
        assert!(!render_text(&r).contains("WARNING"));
        assert!(!render_markdown(&r).contains("⚠️ -toolexec"));
        r.recipe.exec = vec![v1::ExecFlag {
            flag: "-toolexec".into(),
            value: "/src/tools/wrap".into(),
            origin: "recipe-file:reprove.toml".into(),
        }];
        let text = render_text(&r);
        assert!(
            text.contains(
                "WARNING:    -toolexec=/src/tools/wrap (from recipe-file:reprove.toml): the build runs every \
                           compiler and linker invocation through \"/src/tools/wrap\""
            ),
            "{text}"
        );
        let md = render_markdown(&r);
        assert!(md.contains("- ⚠️ -toolexec=/src/tools/wrap (from recipe-file:reprove.toml)"), "{md}");
    }
}
