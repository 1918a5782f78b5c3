//! The source a binary claims, read from its build info.
//!
//! Go records three kinds of claim, and each has its own way back to the source:
//!
//! - `mod PATH vX.Y.Z h1:…` — a released module version with its checksum, as
//!   `go install PATH@VERSION` leaves it: the module zip from GOPROXY, checked
//!   against the checksum database. No Git needed.
//! - `vcs.revision` (with `vcs`, `vcs.modified`, `vcs.time`) — a build from a
//!   checkout: the repository the user names, at exactly that commit. Go 1.24+
//!   also stamps the main module's version from a tag; without an `h1:` sum it
//!   is still a checkout, not a released zip.
//! - `(devel)` without VCS information — nothing in the binary says where its
//!   source is; only the user can.

use goinfo::BuildInfo;

/// What a binary says about its own source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Claim {
    /// A released module version with its `h1:` checksum.
    Module {
        /// The main module's path.
        path: String,
        /// Its version.
        version: String,
        /// The `h1:` checksum Go recorded.
        sum: String,
    },
    /// A version-control checkout at a revision.
    Vcs {
        /// The main module's path (what `--source MODULE=…` is keyed by).
        module: String,
        /// `vcs` (git, hg…).
        system: String,
        /// `vcs.revision`.
        revision: String,
        /// `vcs.modified=true`: the working tree had uncommitted changes.
        modified: bool,
        /// `vcs.time`, when recorded.
        time: Option<String>,
    },
    /// A main module without a version and without VCS information.
    Devel {
        /// The main module's path; empty outside module mode.
        module: String,
    },
    /// No build info at all (stripped): nothing is claimed.
    None,
}

impl Claim {
    /// The claim of a binary with this build info (`None`: no build info).
    pub fn of(info: Option<&BuildInfo>) -> Claim {
        let Some(bi) = info else { return Claim::None };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let module = text(&bi.main.path);
        let version = text(&bi.main.version);
        let sum = text(&bi.main.sum);
        let setting = |k: &str| bi.setting(k).map(|v| text(v));
        if !module.is_empty() && !version.is_empty() && version != "(devel)" && sum.starts_with("h1:") {
            return Claim::Module { path: module, version, sum };
        }
        if let Some(revision) = setting("vcs.revision").filter(|r| !r.is_empty()) {
            return Claim::Vcs {
                module,
                system: setting("vcs").unwrap_or_default(),
                revision,
                modified: setting("vcs.modified").as_deref() == Some("true"),
                time: setting("vcs.time"),
            };
        }
        Claim::Devel { module }
    }

    /// The main module's path the claim names (empty when none).
    pub fn module(&self) -> &str {
        match self {
            Claim::Module { path, .. } => path,
            Claim::Vcs { module, .. } | Claim::Devel { module } => module,
            Claim::None => "",
        }
    }
}

/// The Go version a build info records, as a toolchain is keyed: `go1.22.5`
/// from `go1.22.5 X:nocoverageredesign`; `None` for a development toolchain
/// (`devel go1.23-abc…`), which no released toolchain image can be.
pub fn go_version(info: &BuildInfo) -> Option<String> {
    let v = String::from_utf8_lossy(&info.go_version).into_owned();
    let first = v.split_whitespace().next()?;
    (first.starts_with("go1") && first.len() > 3).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use goinfo::{BuildSetting, Module};

    fn info(path: &str, version: &str, sum: &str, settings: &[(&str, &str)]) -> BuildInfo {
        BuildInfo {
            go_version: "go1.22.5".into(),
            path: format!("{path}/cmd/x").into(),
            main: Module { path: path.into(), version: version.into(), sum: sum.into(), replace: None },
            deps: vec![],
            settings: settings.iter().map(|(k, v)| BuildSetting { key: (*k).into(), value: (*v).into() }).collect(),
        }
    }

    #[test]
    fn a_released_version_with_a_sum_is_a_module_claim() {
        let bi = info("example.com/t", "v1.2.3", "h1:abc=", &[("vcs.revision", "deadbeef")]);
        assert_eq!(
            Claim::of(Some(&bi)),
            Claim::Module { path: "example.com/t".into(), version: "v1.2.3".into(), sum: "h1:abc=".into() }
        );
    }

    #[test]
    fn a_tag_stamped_checkout_without_a_sum_is_a_vcs_claim() {
        let bi = info(
            "example.com/t",
            "v1.2.3",
            "",
            &[("vcs", "git"), ("vcs.revision", "0123"), ("vcs.modified", "true"), ("vcs.time", "2024-01-01T00:00:00Z")],
        );
        assert_eq!(
            Claim::of(Some(&bi)),
            Claim::Vcs {
                module: "example.com/t".into(),
                system: "git".into(),
                revision: "0123".into(),
                modified: true,
                time: Some("2024-01-01T00:00:00Z".into()),
            }
        );
    }

    #[test]
    fn devel_without_vcs_and_no_build_info() {
        let bi = info("example.com/t", "(devel)", "", &[]);
        assert_eq!(Claim::of(Some(&bi)), Claim::Devel { module: "example.com/t".into() });
        assert_eq!(Claim::of(None), Claim::None);
    }

    #[test]
    fn go_versions_are_keyed_without_experiments() {
        let mut bi = info("m", "(devel)", "", &[]);
        bi.go_version = "go1.22.5 X:nocoverageredesign".into();
        assert_eq!(go_version(&bi).as_deref(), Some("go1.22.5"));
        bi.go_version = "devel go1.23-abc123 Tue".into();
        assert_eq!(go_version(&bi), None);
    }
}
