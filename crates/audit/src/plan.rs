//! For each binary found: rebuild it (from which source, in which
//! toolchain, with which flags it cannot record), or say why it cannot be
//! verified and what the auditor can add.
//!
//! The decision reads only the binary's build info and the auditor's
//! [`Settings`]; nothing is fetched here. Binaries whose (source, recipe,
//! toolchain) are the same get the same [`BuildKey`] and are built once.

use std::fmt::Write as _;

use goinfo::BuildInfo;
use oci::PinnedImage;
use stdx::setting::Setting;

use crate::claim::{go_version, Claim};
use crate::config::Settings;

/// Where a rebuild takes its source from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceChoice {
    /// The released module version's zip, through GOPROXY.
    Module {
        /// The module path.
        path: String,
        /// The version.
        version: String,
    },
    /// A Git repository at a revision.
    Git {
        /// A local repository or a clone URL.
        location: String,
        /// The revision (the binary's `vcs.revision`, or what the auditor named).
        rev: String,
    },
}

/// Why a binary cannot be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unverifiable {
    /// Its build info was stripped: it claims no source.
    NoBuildInfo,
    /// Its source cannot be found from what it records.
    SourceUnknown,
    /// A recipe field it cannot record is not known.
    RecipeUndetermined,
    /// No toolchain image is pinned for its Go version.
    ToolchainMissing,
}

/// A rebuild to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The source.
    pub source: SourceChoice,
    /// The toolchain image.
    pub toolchain: PinnedImage,
    /// Where the toolchain was named (`flag`, a file).
    pub toolchain_from: String,
    /// `-ldflags` the auditor gave (build info records them only without `-trimpath`).
    pub ldflags: Option<String>,
    /// Same key, same build.
    pub key: BuildKey,
}

/// What the audit does with one binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Rebuild it.
    Build(Plan),
    /// It cannot be verified: why, and what to add.
    Unverifiable {
        /// Why.
        reason: Unverifiable,
        /// One line, naming the setting to add.
        detail: String,
    },
}

/// The identity of a build: a digest of its source, toolchain and recipe
/// inputs (the build info's package and settings, and the auditor's flags).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BuildKey(pub String);

/// Splits `URL#REV` (a revision after `#`; Git URLs have no fragment).
fn location_and_rev(value: &str) -> (&str, Option<&str>) {
    match value.rsplit_once('#') {
        Some((loc, rev)) if !loc.is_empty() && !rev.is_empty() => (loc, Some(rev)),
        _ => (value, None),
    }
}

/// Decides what to do with the binary at `path` with this build info.
pub fn decide(path: &str, info: Option<&BuildInfo>, settings: &Settings) -> Decision {
    let unverifiable = |reason, detail: String| Decision::Unverifiable { reason, detail };
    let Some(bi) = info else {
        return unverifiable(
            Unverifiable::NoBuildInfo,
            "its build info was stripped, so it claims no source (a Go build ID or pclntab shows it is Go)".into(),
        );
    };
    let claim = Claim::of(Some(bi));
    let module = claim.module().to_string();
    let source = match &claim {
        Claim::Module { path, version, .. } => {
            SourceChoice::Module { path: path.clone(), version: version.clone() }
        }
        Claim::Vcs { modified: true, revision, .. } => {
            return unverifiable(
                Unverifiable::SourceUnknown,
                format!(
                    "built from a working tree with uncommitted changes (vcs.modified=true at {}): no commit holds its source",
                    short(revision)
                ),
            )
        }
        Claim::Vcs { revision, system, .. } => match settings.source_for(&module) {
            Some(value) => {
                let (location, rev) = location_and_rev(value);
                SourceChoice::Git { location: location.to_string(), rev: rev.unwrap_or(revision).to_string() }
            }
            None => {
                return unverifiable(
                    Unverifiable::SourceUnknown,
                    format!(
                        "it records {system} revision {} of {}; name the repository: {} {}=URL|PATH",
                        short(revision),
                        shown(&module),
                        Setting::Source,
                        shown(&module)
                    ),
                )
            }
        },
        Claim::Devel { .. } => match settings.source_for(&module) {
            Some(value) => {
                let (location, rev) = location_and_rev(value);
                SourceChoice::Git { location: location.to_string(), rev: rev.unwrap_or("HEAD").to_string() }
            }
            None => {
                return unverifiable(
                    Unverifiable::SourceUnknown,
                    format!(
                        "{} is (devel) without VCS information; name its source: {} {}=URL|PATH[#REV]",
                        if module.is_empty() { "its main module" } else { shown(&module) },
                        Setting::Source,
                        if module.is_empty() { "MODULE" } else { shown(&module) }
                    ),
                )
            }
        },
        Claim::None => {
            return unverifiable(Unverifiable::NoBuildInfo, "it has no build info, so it claims no source".into())
        }
    };
    let Some(version) = go_version(bi) else {
        return unverifiable(
            Unverifiable::ToolchainMissing,
            format!(
                "built by a development toolchain ({}); no released toolchain image can rebuild it",
                String::from_utf8_lossy(&bi.go_version)
            ),
        );
    };
    let Some((toolchain, from)) = settings.toolchains.get(&version) else {
        return unverifiable(
            Unverifiable::ToolchainMissing,
            format!(
                "no toolchain for {version}: add {} {version}=IMAGE@sha256:… or lock one in reprove.lock",
                Setting::Toolchain
            ),
        );
    };
    let package = String::from_utf8_lossy(&bi.path).into_owned();
    let ldflags = settings.ldflags_for(path, &package).map(str::to_string);
    let key = build_key(&source, toolchain, ldflags.as_deref(), bi);
    Decision::Build(Plan { source, toolchain: toolchain.clone(), toolchain_from: from.clone(), ldflags, key })
}

/// At most 12 characters of a revision, for messages.
fn short(rev: &str) -> &str {
    rev.get(..12).unwrap_or(rev)
}

/// A module path from a hostile binary, bounded for a message.
fn shown(module: &str) -> &str {
    module.get(..120).unwrap_or(module)
}

fn build_key(source: &SourceChoice, toolchain: &PinnedImage, ldflags: Option<&str>, bi: &BuildInfo) -> BuildKey {
    let mut s = String::new();
    match source {
        SourceChoice::Module { path, version } => {
            let _ = writeln!(s, "module\0{path}\0{version}");
        }
        SourceChoice::Git { location, rev } => {
            let _ = writeln!(s, "git\0{location}\0{rev}");
        }
    }
    let _ = writeln!(s, "toolchain\0{}", toolchain.digest());
    let _ = writeln!(s, "ldflags\0{}", ldflags.map_or("\u{1}unset", |l| l));
    let _ = writeln!(s, "package\0{}", String::from_utf8_lossy(&bi.path));
    for setting in &bi.settings {
        let _ = writeln!(
            s,
            "setting\0{}\0{}",
            String::from_utf8_lossy(&setting.key),
            String::from_utf8_lossy(&setting.value)
        );
    }
    BuildKey(stdx::sha256_hex(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use goinfo::{BuildSetting, Module};

    const IMAGE: &str = "reg.test/go@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn bi(version: &str, sum: &str, settings: &[(&str, &str)]) -> BuildInfo {
        BuildInfo {
            go_version: "go1.22.5".into(),
            path: "example.com/t/cmd/t".into(),
            main: Module { path: "example.com/t".into(), version: version.into(), sum: sum.into(), replace: None },
            deps: vec![],
            settings: settings.iter().map(|(k, v)| BuildSetting { key: (*k).into(), value: (*v).into() }).collect(),
        }
    }

    fn settings() -> Settings {
        let mut s = Settings::default();
        s.add_toolchain_flag(&format!("go1.22.5={IMAGE}")).unwrap();
        s
    }

    #[test]
    fn a_go_installed_tool_is_rebuilt_from_its_module() {
        let d = decide("/bin/t", Some(&bi("v1.0.0", "h1:x=", &[("-trimpath", "true")])), &settings());
        let Decision::Build(plan) = d else { panic!("{d:?}") };
        assert_eq!(plan.source, SourceChoice::Module { path: "example.com/t".into(), version: "v1.0.0".into() });
        assert_eq!(plan.toolchain_from, "flag");
    }

    #[test]
    fn every_unverifiable_binary_names_what_to_add() {
        let s = settings();
        let vcs = bi("(devel)", "", &[("vcs", "git"), ("vcs.revision", "0123456789abcdef0123")]);
        let Decision::Unverifiable { reason, detail } = decide("/bin/t", Some(&vcs), &s) else { panic!() };
        assert_eq!(reason, Unverifiable::SourceUnknown);
        assert!(detail.contains("source example.com/t=URL|PATH") && detail.contains("0123456789ab"), "{detail}");
        let devel = bi("(devel)", "", &[]);
        let Decision::Unverifiable { reason, detail } = decide("/bin/t", Some(&devel), &s) else { panic!() };
        assert_eq!(reason, Unverifiable::SourceUnknown);
        assert!(detail.contains("(devel)"), "{detail}");
        let Decision::Unverifiable { reason, .. } = decide("/bin/t", None, &s) else { panic!() };
        assert_eq!(reason, Unverifiable::NoBuildInfo);
        let dirty = bi("(devel)", "", &[("vcs.revision", "abc"), ("vcs.modified", "true")]);
        let Decision::Unverifiable { reason, .. } = decide("/bin/t", Some(&dirty), &s) else { panic!() };
        assert_eq!(reason, Unverifiable::SourceUnknown);
        let mut other = bi("v1.0.0", "h1:x=", &[]);
        other.go_version = "go1.21.0".into();
        let Decision::Unverifiable { reason, detail } = decide("/bin/t", Some(&other), &s) else { panic!() };
        assert_eq!(reason, Unverifiable::ToolchainMissing);
        assert!(detail.contains("toolchain go1.21.0=IMAGE@sha256:"), "{detail}");
    }

    #[test]
    fn a_named_repository_is_built_at_the_recorded_revision_unless_another_is_named() {
        let mut s = settings();
        s.add_source_flag("example.com/t=/repos/t").unwrap();
        let vcs = bi("(devel)", "", &[("vcs", "git"), ("vcs.revision", "0123")]);
        let Decision::Build(plan) = decide("/bin/t", Some(&vcs), &s) else { panic!() };
        assert_eq!(plan.source, SourceChoice::Git { location: "/repos/t".into(), rev: "0123".into() });
        let mut s = settings();
        s.add_source_flag("example.com/t=https://git.test/t.git#v1.2.0").unwrap();
        let Decision::Build(plan) = decide("/bin/t", Some(&bi("(devel)", "", &[])), &s) else { panic!() };
        assert_eq!(plan.source, SourceChoice::Git { location: "https://git.test/t.git".into(), rev: "v1.2.0".into() });
    }

    #[test]
    fn the_same_build_has_the_same_key_and_any_difference_another() {
        let s = settings();
        let key = |path: &str, info: &BuildInfo, s: &Settings| match decide(path, Some(info), s) {
            Decision::Build(p) => p.key,
            other => panic!("{other:?}"),
        };
        let a = bi("v1.0.0", "h1:x=", &[("-trimpath", "true"), ("GOARCH", "amd64")]);
        assert_eq!(key("/bin/a", &a, &s), key("/usr/bin/a", &a, &s));
        let arm = bi("v1.0.0", "h1:x=", &[("-trimpath", "true"), ("GOARCH", "arm64")]);
        assert_ne!(key("/bin/a", &a, &s), key("/bin/a", &arm, &s));
        let mut flagged = settings();
        flagged.add_ldflags_flag("/bin/a=-s -w").unwrap();
        assert_ne!(key("/bin/a", &a, &s), key("/bin/a", &a, &flagged));
        assert_eq!(key("/bin/b", &a, &s), key("/bin/b", &a, &flagged));
    }
}
