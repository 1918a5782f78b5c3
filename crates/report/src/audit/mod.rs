//! The `reprove audit` report: one verdict for a release image, with every Go
//! binary found in it and, for each one rebuilt, the [`crate::v1::Report`] of
//! its rebuild. The document is [`v1::AuditReport`] (described by
//! `schemas/audit-report.schema.json`); it renders as text for a terminal
//! ([`render_text`]), Markdown for CI summaries ([`render_markdown`]) and one
//! self-contained HTML page for auditors ([`render_html`]; [`render_html_body`] and
//! [`render_verify_html`] for pages that embed a report, such as `reprove serve`'s).
//!
//! Paths, module paths, versions and details come from the image, which is
//! hostile input: every rendering escapes them for its format (and shows
//! control and bidirectional-override characters as `\u{…}` escapes).

mod html;
mod text;

pub use html::{csp_source, esc as escape_html, render_html, render_html_body, render_verify_html, style};
pub use text::{render_markdown, render_text};

/// Version 1 of the audit document.
pub mod v1 {
    use std::collections::BTreeSet;

    use serde::{Deserialize, Serialize};

    /// The schema version this module writes.
    pub const SCHEMA_VERSION: u32 = 1;

    names! {
        /// The image's verdict.
        ImageVerdict {
            /// Every Go binary found was reproduced (and there was at least one).
            Reproduced => "reproduced",
            /// At least one Go binary was not reproduced.
            NotReproduced => "not-reproduced",
            /// None was not reproduced and none failed, but at least one could not
            /// be verified (no build info, source or recipe unknown, no toolchain).
            Unverifiable => "unverifiable",
            /// None was not reproduced, and a failure prevented the audit or the
            /// verification of at least one binary (a registry down, a build failed).
            Error => "error",
            /// The image holds no Go binary: nothing to audit.
            NoGoBinaries => "no-go-binaries",
        }
    }

    names! {
        /// What became of one binary.
        Outcome {
            /// Rebuilt bit for bit.
            Reproduced => "reproduced",
            /// Rebuilt, and the rebuild differs (its report's causes say how).
            NotReproduced => "not-reproduced",
            /// Not rebuilt: something it takes is missing (the reason and detail say what).
            Unverifiable => "unverifiable",
            /// A failure prevented its verification (its report or the detail says which).
            Error => "error",
        }
    }

    names! {
        /// Why a binary is unverifiable.
        Reason {
            /// The binary records no Go build info.
            NoBuildInfo => "no-build-info",
            /// Nothing says where its source is.
            SourceUnknown => "source-unknown",
            /// Recipe fields nothing determined.
            RecipeUndetermined => "recipe-undetermined",
            /// No toolchain image for its Go version.
            ToolchainMissing => "toolchain-missing",
        }
    }

    names! {
        /// What the image digest is the digest of.
        DigestKind {
            /// An image manifest.
            Manifest => "manifest",
            /// An image index (a multi-platform image).
            Index => "index",
            /// An image configuration (an old docker archive has no manifest digest).
            Config => "config",
        }
    }

    /// The whole document.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AuditReport {
        /// Always [`SCHEMA_VERSION`].
        pub schema_version: u32,
        /// The tool that wrote it.
        pub tool: Tool,
        /// When the audit started (RFC 3339, `stdx::time`).
        pub started_on: String,
        /// When it finished.
        pub finished_on: String,
        /// Its wall time in milliseconds.
        pub duration_ms: u64,
        /// The image audited.
        pub image: Image,
        /// The image's verdict ([`ImageVerdict::from_outcomes`], or `error` when
        /// [`error`](Self::error) says why there was no audit).
        pub verdict: ImageVerdict,
        /// One line for a person ([`summarize`]).
        pub summary: String,
        /// How many binaries had each outcome ([`Counts::of`]).
        pub counts: Counts,
        /// The image's platforms, each with its Go binaries.
        pub platforms: Vec<Platform>,
        /// What prevented the audit as a whole (the image could not be read);
        /// `null` otherwise, also when single binaries failed.
        pub error: Option<AuditFailure>,
    }

    /// A tool by name and version.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Tool {
        /// `reprove`.
        pub name: String,
        /// Its version.
        pub version: String,
    }

    /// The image audited.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Image {
        /// What the user gave, as given.
        pub input: String,
        /// `REGISTRY/REPOSITORY@sha256:…` when the image is in a registry, else `null`.
        pub reference: Option<String>,
        /// The digest audited (`sha256:…`): the manifest's or the index's, or for an
        /// old docker archive the configuration's.
        pub digest: String,
        /// What [`digest`](Self::digest) is the digest of.
        pub digest_kind: DigestKind,
        /// The media type of the manifest or index (`application/vnd.oci.image.index.v1+json`…).
        pub media_type: String,
        /// The tag the user gave, resolved to the digest; `null` when none was given.
        pub resolved_from_tag: Option<String>,
    }

    /// What prevented the audit as a whole.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AuditFailure {
        /// How it counts: `input` (exit 2), `infrastructure` or `security` (exit 3).
        pub class: crate::v1::Class,
        /// What happened.
        pub message: String,
    }

    /// How many binaries had each outcome.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Counts {
        /// Go binaries found (a file linked at several paths counts once).
        pub binaries: u64,
        /// Reproduced.
        pub reproduced: u64,
        /// Not reproduced.
        pub not_reproduced: u64,
        /// Unverifiable.
        pub unverifiable: u64,
        /// In error.
        pub error: u64,
        /// Distinct rebuilds: binaries with the same [`Binary::build_key`] share one.
        pub builds: u64,
    }

    /// One platform of the image.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Platform {
        /// `os/arch[/variant]`, e.g. `linux/amd64`.
        pub platform: String,
        /// The digest of the platform's image manifest; `null` for an old docker
        /// archive, which has none.
        pub manifest_digest: Option<String>,
        /// Its Go binaries, in path order.
        pub binaries: Vec<Binary>,
    }

    /// One Go binary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Binary {
        /// Its path in the image's file system.
        pub path: String,
        /// Other paths of the same file (hard links, or links to it).
        pub links: Vec<String>,
        /// SHA-256, hex.
        pub sha256: String,
        /// Size in bytes.
        pub size: u64,
        /// The Go version from its build info; `null` without build info.
        pub go_version: Option<String>,
        /// The main module from its build info; `null` without one.
        pub main_module: Option<MainModule>,
        /// The main package's import path; `null` without build info.
        pub package: Option<String>,
        /// Where the build info says the source is.
        pub claimed_source: ClaimedSource,
        /// What became of it.
        pub outcome: Outcome,
        /// Why it is unverifiable; `null` for any other outcome.
        pub reason: Option<Reason>,
        /// One line: the cause, or for an unverifiable binary what is missing and
        /// the setting that supplies it.
        pub detail: String,
        /// The dedupe key: binaries with the same (source, recipe, toolchain) share
        /// one rebuild; `null` when it was not built.
        pub build_key: Option<String>,
        /// The report of its rebuild; `null` when it was not rebuilt.
        pub report: Option<Box<crate::v1::Report>>,
    }

    /// The main module of a binary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct MainModule {
        /// The module path.
        pub path: String,
        /// The version (`(devel)` when built from a source tree).
        pub version: String,
        /// Its `h1:` sum; `null` when the build info records none.
        pub sum: Option<String>,
    }

    /// Where a binary's build info says its source is.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "camelCase")]
    pub enum ClaimedSource {
        /// A module version (`go install MODULE@VERSION`).
        Module {
            /// The module path.
            path: String,
            /// The version.
            version: String,
            /// Its `h1:` sum, when recorded.
            sum: Option<String>,
        },
        /// A version control checkout (`vcs.*` build settings).
        Vcs {
            /// `git`, `hg`…
            system: String,
            /// The revision.
            revision: String,
            /// Whether the working tree had uncommitted changes.
            modified: bool,
            /// The commit time, when recorded.
            time: Option<String>,
        },
        /// Built from a source tree that says nothing more (`(devel)`, no VCS).
        Devel,
        /// No build info at all.
        #[serde(rename = "none")]
        NoBuildInfo,
    }

    impl ClaimedSource {
        /// `kind` as the document carries it.
        pub fn kind(&self) -> &'static str {
            match self {
                ClaimedSource::Module { .. } => "module",
                ClaimedSource::Vcs { .. } => "vcs",
                ClaimedSource::Devel => "devel",
                ClaimedSource::NoBuildInfo => "none",
            }
        }
    }

    impl ImageVerdict {
        /// The image's verdict from its binaries' outcomes: `no-go-binaries`
        /// when there are none; else `not-reproduced` if any binary was not
        /// reproduced (a difference found stands whatever failed elsewhere);
        /// else `error` if any failed; else `unverifiable` if any could not be
        /// verified; else `reproduced`.
        pub fn from_outcomes<I: IntoIterator<Item = Outcome>>(outcomes: I) -> ImageVerdict {
            let mut worst: Option<ImageVerdict> = None;
            for o in outcomes {
                let v = match o {
                    Outcome::Reproduced => ImageVerdict::Reproduced,
                    Outcome::NotReproduced => ImageVerdict::NotReproduced,
                    Outcome::Unverifiable => ImageVerdict::Unverifiable,
                    Outcome::Error => ImageVerdict::Error,
                };
                worst = Some(match worst {
                    Some(w) if w.rank() >= v.rank() => w,
                    _ => v,
                });
            }
            worst.unwrap_or(ImageVerdict::NoGoBinaries)
        }

        /// How strongly a binary's outcome decides the image's verdict.
        fn rank(self) -> u8 {
            match self {
                ImageVerdict::NoGoBinaries => 0,
                ImageVerdict::Reproduced => 1,
                ImageVerdict::Unverifiable => 2,
                ImageVerdict::Error => 3,
                ImageVerdict::NotReproduced => 4,
            }
        }

        /// Whether the verdict is the positive one (every binary reproduced).
        pub fn is_positive(self) -> bool {
            self == ImageVerdict::Reproduced
        }
    }

    impl Counts {
        /// The counts of the binaries of `platforms`.
        pub fn of(platforms: &[Platform]) -> Counts {
            let mut c = Counts::default();
            let mut keys = BTreeSet::new();
            for b in platforms.iter().flat_map(|p| &p.binaries) {
                c.binaries += 1;
                match b.outcome {
                    Outcome::Reproduced => c.reproduced += 1,
                    Outcome::NotReproduced => c.not_reproduced += 1,
                    Outcome::Unverifiable => c.unverifiable += 1,
                    Outcome::Error => c.error += 1,
                }
                if let Some(k) = &b.build_key {
                    keys.insert(k.as_str());
                }
            }
            c.builds = keys.len() as u64;
            c
        }
    }

    /// One line about the image: the verdict in words and the counts.
    pub fn summarize(verdict: ImageVerdict, counts: &Counts) -> String {
        let n = counts.binaries;
        let plural = |k: u64, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        let mut parts = Vec::new();
        for (k, what) in [
            (counts.reproduced, "reproduced"),
            (counts.not_reproduced, "not reproduced"),
            (counts.unverifiable, "unverifiable"),
            (counts.error, "in error"),
        ] {
            if k > 0 {
                parts.push(format!("{k} {what}"));
            }
        }
        let builds = plural(counts.builds, "build", "builds");
        let of_n = plural(n, "Go binary", "Go binaries");
        match verdict {
            ImageVerdict::Reproduced if n == 1 => format!("the Go binary reproduced; {builds}"),
            ImageVerdict::Reproduced => format!("all {n} Go binaries reproduced; {builds}"),
            ImageVerdict::NotReproduced => {
                format!("{} of {of_n} not reproduced ({}); {builds}", counts.not_reproduced, parts.join(", "))
            }
            ImageVerdict::Unverifiable => {
                format!("{} of {of_n} could not be verified ({}); {builds}", counts.unverifiable, parts.join(", "))
            }
            ImageVerdict::Error if n == 0 => "the audit failed before any Go binary was verified".to_string(),
            ImageVerdict::Error => {
                format!("{} of {of_n} failed to verify ({}); {builds}", counts.error, parts.join(", "))
            }
            ImageVerdict::NoGoBinaries => "no Go binary in the image: nothing to audit".to_string(),
        }
    }

    impl AuditReport {
        /// Every binary, with the platform it was found in.
        pub fn binaries(&self) -> impl Iterator<Item = (&Platform, &Binary)> {
            self.platforms.iter().flat_map(|p| p.binaries.iter().map(move |b| (p, b)))
        }

        /// How the failures count, for an `error` verdict: the audit's own
        /// failure's class, else the gravest class among the binaries'
        /// reports' failures (`security`, then `infrastructure`, then
        /// `input`); `None` when nothing says.
        pub fn error_class(&self) -> Option<crate::v1::Class> {
            use crate::v1::Class;
            if let Some(e) = &self.error {
                return Some(e.class);
            }
            let rank = |c: Class| match c {
                Class::Input => 0,
                Class::Infrastructure => 1,
                Class::Security => 2,
            };
            self.binaries()
                .filter(|(_, b)| b.outcome == Outcome::Error)
                .filter_map(|(_, b)| b.report.as_ref()?.error.as_ref().map(|e| e.class))
                .max_by_key(|c| rank(*c))
        }
    }
}

/// Replaces what a terminal, a Markdown or an HTML reader would act on
/// instead of showing (C0 and C1 controls, DEL, bidirectional overrides and
/// isolates, line and paragraph separators) with `\u{…}` escapes.
pub(crate) fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    fn hidden(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
    }
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `PATH@VERSION` of the binary's main module, else its package, else `-`.
pub(crate) fn module_of(b: &v1::Binary) -> String {
    match (&b.main_module, &b.package) {
        (Some(m), _) => format!("{}@{}", m.path, m.version),
        (None, Some(p)) => p.clone(),
        (None, None) => "-".to_string(),
    }
}

#[cfg(test)]
mod tests;
