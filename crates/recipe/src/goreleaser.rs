//! `.goreleaser.yaml` build entries as a recipe layer.
//!
//! Read: `project_name` and, per `builds[]` entry, `id`, `main`, `binary`,
//! `flags`, `ldflags` (a string or a list), `gcflags`, `asmflags`, `tags`,
//! `env`, `buildmode`, `goos`/`goarch`/`goamd64`/`goarm`/`goarm64`/`go386`/
//! `gomips`/`goppc64`/`goriscv64` matrices or `targets`, `ignore`, `skip`,
//! `builder`, `mod_timestamp`, and the global `env` (every build's, and
//! visible to `.Env`). One target is chosen by the caller. Keys that could
//! change the binary and that reprove does not model (`overrides`, `dir`,
//! `gobinary`, `command`, `gomod.proxy`, unknown build keys) are errors, never
//! ignored; hooks, which reprove does not run, and env entries for variables
//! the pipeline owns are reported in [`super::Partial::notes`].
//!
//! Templates: `.Version`, `.Tag`, `.Commit`, `.FullCommit`, `.ShortCommit`,
//! `.Date`, `.CommitDate`, `.Timestamp`, `.CommitTimestamp`, `.Env.NAME`,
//! `.ProjectName`, `.Os`, `.Arch`, `.Amd64`, `.Arm`, `.Arm64`, `.Target`,
//! expanded from [`TemplateValues`]. Any other field, function or pipeline is
//! an error naming it; so is a known field whose value the caller did not give.

use std::collections::BTreeMap;

use serde::Deserialize;
use stdx::setting::Setting;

use super::merge::{Partial, Sourced};
use super::{BuildVcs, Origin};
use confined::{bounded_message, excerpt};

/// What went wrong with a `.goreleaser.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum GoreleaserError {
    /// Not valid YAML, or a key or type the reader does not accept.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line (0 when the parser gave none).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A template reprove does not expand.
    #[error("{path}: build \"{}\": {}: {}", excerpt(build), excerpt(field), bounded_message(message))]
    Template {
        /// The file.
        path: String,
        /// The build id.
        build: String,
        /// The key holding the template.
        field: String,
        /// The unknown field or function, or the missing value, by name.
        message: String,
    },
    /// A build setting reprove cannot reproduce faithfully.
    #[error("{path}: build \"{}\": {}", excerpt(build), bounded_message(message))]
    Unsupported {
        /// The file.
        path: String,
        /// The build id.
        build: String,
        /// What and why.
        message: String,
    },
    /// No build with that id, or several and none chosen.
    #[error("{path}: {}", bounded_message(message))]
    Build {
        /// The file.
        path: String,
        /// What.
        message: String,
    },
    /// The target chosen is not in the build's matrix, or none was chosen
    /// among several.
    #[error("{path}: build \"{}\": {} (targets: {})", excerpt(build), bounded_message(message), bounded_message(&targets.join(", ")))]
    Target {
        /// The file.
        path: String,
        /// The build id.
        build: String,
        /// What.
        message: String,
        /// The build's targets.
        targets: Vec<String>,
    },
}

/// The values templates expand to, supplied by the caller (usually from the
/// commit being verified).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateValues {
    /// The full commit id (`.Commit`, `.FullCommit`).
    pub commit: Option<String>,
    /// The abbreviated commit id (`.ShortCommit`); the first 7 hex digits of
    /// `commit` when not given.
    pub short_commit: Option<String>,
    /// The commit time, Unix seconds (`.CommitDate`, `.CommitTimestamp`).
    pub commit_time: Option<i64>,
    /// The release tag (`.Tag`; `.Version` is it without a leading `v`).
    pub tag: Option<String>,
    /// `.Version` when it is not the tag without its `v`.
    pub version: Option<String>,
    /// The release's build time, Unix seconds (`.Date`, `.Timestamp`). It is
    /// not in the commit: take it from the release or the reference.
    pub build_time: Option<i64>,
    /// `.Env.NAME`.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn joined(&self) -> String {
        match self {
            StringOrList::One(s) => s.clone(),
            StringOrList::Many(v) => v.join(" "),
        }
    }
}

/// One `builds[]` entry as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    id: Option<String>,
    main: Option<String>,
    binary: Option<String>,
    flags: Option<StringOrList>,
    ldflags: Option<StringOrList>,
    gcflags: Option<StringOrList>,
    asmflags: Option<StringOrList>,
    tags: Option<StringOrList>,
    env: Option<Vec<String>>,
    buildmode: Option<String>,
    goos: Option<Vec<String>>,
    goarch: Option<Vec<String>>,
    goamd64: Option<Vec<String>>,
    goarm: Option<Vec<serde_yaml_ng::Value>>,
    goarm64: Option<Vec<String>>,
    go386: Option<Vec<String>>,
    gomips: Option<Vec<String>>,
    goppc64: Option<Vec<String>>,
    goriscv64: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    ignore: Option<Vec<BTreeMap<String, serde_yaml_ng::Value>>>,
    skip: Option<serde_yaml_ng::Value>,
    builder: Option<String>,
    mod_timestamp: Option<String>,
    // Do not change the binary (hooks may change the tree: reported as a note).
    hooks: Option<serde_yaml_ng::Value>,
    #[serde(rename = "no_unique_dist_dir")]
    _no_unique_dist_dir: Option<serde_yaml_ng::Value>,
    #[serde(rename = "no_main_check")]
    _no_main_check: Option<serde_yaml_ng::Value>,
    // Change the binary in ways reprove does not model: refused when set.
    overrides: Option<serde_yaml_ng::Value>,
    dir: Option<String>,
    gobinary: Option<String>,
    command: Option<String>,
    tool: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    project_name: Option<String>,
    #[serde(default)]
    builds: Vec<RawBuild>,
    /// Global `env`: applied to every build, and visible to `.Env`.
    env: Option<Vec<String>>,
    /// `gomod.proxy: true` builds from the module proxy instead of the tree.
    gomod: Option<RawGomod>,
    /// `before.hooks` may change the tree before the builds.
    before: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawGomod {
    proxy: Option<serde_yaml_ng::Value>,
}

/// A parsed `.goreleaser.yaml`.
#[derive(Debug, Clone)]
pub struct Goreleaser {
    path: String,
    project_name: Option<String>,
    builds: Vec<RawBuild>,
    env: Vec<String>,
    gomod_proxy: bool,
    before_hooks: bool,
}

/// One build target: `GOOS`, `GOARCH` and the arch level, as goreleaser
/// names it (`linux_amd64_v1`, `linux_arm_6`, `darwin_arm64_v8.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `GOOS`.
    pub goos: String,
    /// `GOARCH`.
    pub goarch: String,
    /// The arch level (`v1`, `6`, `v8.0`, `sse2`, `hardfloat`, `power8`, `rva20u64`), if the arch has one.
    pub level: Option<String>,
}

impl Target {
    /// Parses `os_arch[_level]` or `os/arch[/level]`.
    pub fn parse(s: &str) -> Option<Target> {
        let parts: Vec<&str> = s.split(['_', '/']).collect();
        match parts.as_slice() {
            [os, arch] => Some(Target { goos: os.to_string(), goarch: arch.to_string(), level: None }),
            [os, arch, level] => {
                Some(Target { goos: os.to_string(), goarch: arch.to_string(), level: Some(level.to_string()) })
            }
            _ => None,
        }
    }

    /// The variable holding the level for this arch (`GOAMD64`, ...).
    pub fn level_var(&self) -> Option<&'static str> {
        Some(match self.goarch.as_str() {
            "amd64" => "GOAMD64",
            "arm" => "GOARM",
            "arm64" => "GOARM64",
            "386" => "GO386",
            "mips" | "mipsle" => "GOMIPS",
            "mips64" | "mips64le" => "GOMIPS64",
            "ppc64" | "ppc64le" => "GOPPC64",
            "riscv64" => "GORISCV64",
            _ => return None,
        })
    }

    fn matches(&self, other: &Target) -> bool {
        self.goos == other.goos
            && self.goarch == other.goarch
            && (other.level.is_none() || self.level.is_none() || self.level == other.level)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.level {
            Some(l) => write!(f, "{}_{}_{}", self.goos, self.goarch, l),
            None => write!(f, "{}_{}", self.goos, self.goarch),
        }
    }
}

/// A chosen build entry: the recipe layer and what else goreleaser does.
#[derive(Debug, Clone)]
pub struct GoreleaserBuild {
    /// The build's id.
    pub id: String,
    /// The target chosen.
    pub target: Target,
    /// The recipe layer, with [`Origin::Goreleaser`] `"PATH#ID"` on every value.
    pub partial: Partial,
    /// `mod_timestamp`, expanded: the modification time goreleaser gives the
    /// binary. It does not change the binary's bytes.
    pub mod_timestamp: Option<String>,
}

/// How a field whose goreleaser template cannot be expanded can be given
/// directly instead, for messages.
fn how_to_supply(field: &str) -> String {
    let var = |f: &str| format!("REPROVE_{}", f.to_ascii_uppercase());
    match field {
        "ldflags" => {
            format!("; or give the ldflags value itself ({}, {}, or reprove.toml)", Setting::Ldflags, var(field))
        }
        "buildmode" => {
            format!("; or give the buildmode value itself ({}, {}, or reprove.toml)", Setting::Buildmode, var(field))
        }
        "gcflags" | "asmflags" | "tags" => {
            format!("; or give the {field} value itself ({} or reprove.toml)", var(field))
        }
        "output_name" => "; or give the output name itself (REPROVE_OUTPUT_NAME or reprove.toml)".to_string(),
        f if f.starts_with("env.") => {
            format!("; or give {} itself ({} or reprove.toml)", &f[4..], Setting::Env)
        }
        _ => String::new(),
    }
}

/// goreleaser's default `ldflags`.
pub const DEFAULT_LDFLAGS: &str =
    "-s -w -X main.version={{.Version}} -X main.commit={{.Commit}} -X main.date={{.Date}} -X main.builtBy=goreleaser";

struct Expander<'a> {
    values: &'a TemplateValues,
    project: Option<&'a str>,
    target: &'a Target,
}

impl Expander<'_> {
    fn field(&self, name: &str) -> Result<String, String> {
        let v = self.values;
        let need = |o: Option<String>, what: &str| o.ok_or_else(|| format!("template {{{{.{name}}}}} needs {what}"));
        match name {
            "Version" => need(
                v.version.clone().or_else(|| v.tag.as_ref().map(|t| t.strip_prefix('v').unwrap_or(t).to_string())),
                &format!("the release version (a tag: give {})", Setting::Tag),
            ),
            "Tag" => need(v.tag.clone(), &format!("the release tag (give {})", Setting::Tag)),
            "Commit" | "FullCommit" => need(v.commit.clone(), "the commit id"),
            "ShortCommit" => need(
                v.short_commit.clone().or_else(|| v.commit.as_ref().map(|c| c.chars().take(7).collect())),
                "the commit id",
            ),
            "CommitDate" => need(v.commit_time.map(stdx::time::format_rfc3339), "the commit time"),
            "CommitTimestamp" => need(v.commit_time.map(|t| t.to_string()), "the commit time"),
            "Date" => need(v.build_time.map(stdx::time::format_rfc3339), "the release's build time"),
            "Timestamp" => need(v.build_time.map(|t| t.to_string()), "the release's build time"),
            "ProjectName" => need(self.project.map(str::to_string), "project_name"),
            "Os" => Ok(self.target.goos.clone()),
            "Arch" => Ok(self.target.goarch.clone()),
            "Target" => Ok(self.target.to_string()),
            "Amd64" | "Arm" | "Arm64" | "I386" | "Mips" | "Ppc64" | "Riscv64" => {
                Ok(self.target.level.clone().unwrap_or_default())
            }
            _ => match name.strip_prefix("Env.") {
                Some(var) => v.env.get(var).cloned().ok_or_else(|| {
                    format!("template {{{{.Env.{var}}}}}: the environment variable {var} was not given")
                }),
                None => Err(format!("unknown template field .{name}")),
            },
        }
    }

    /// Expands Go text/template actions that are a single field.
    fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let mut before = &rest[..start];
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| format!("unclosed template action in {text:?}"))?;
            let mut action = &after[..end];
            let mut tail = &after[end + 2..];
            if let Some(a) = action.strip_prefix('-') {
                before = before.trim_end();
                action = a;
            }
            if let Some(a) = action.strip_suffix('-') {
                tail = tail.trim_start();
                action = a;
            }
            out.push_str(before);
            let action = action.trim();
            if action.starts_with("/*") && action.ends_with("*/") {
                // A comment.
            } else if let Some(field) = action
                .strip_prefix('.')
                .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.'))
            {
                out.push_str(&self.field(field)?);
            } else {
                let first = action.split(|c: char| c.is_whitespace() || c == '|').next().unwrap_or(action);
                return Err(if first.starts_with('.') {
                    format!("template {{{{{action}}}}}: pipelines and arguments after {first} are not supported")
                } else {
                    format!("unsupported template function {first:?} in {{{{{action}}}}}")
                });
            }
            rest = tail;
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn goarm_text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Goreleaser {
    /// Parses `text`; `path` is used in errors and origins.
    pub fn parse(text: &str, path: &str) -> Result<Goreleaser, GoreleaserError> {
        let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let mut message = e.to_string();
            // The position is in the prefix already.
            if line > 0 {
                let at = format!(" at line {line} column {column}");
                message = message.replacen(&at, "", 1);
            }
            GoreleaserError::Syntax { path: path.to_string(), line, column, message: bounded_message(&message) }
        })?;
        let gomod_proxy = raw
            .gomod
            .and_then(|g| g.proxy)
            .is_some_and(|p| !matches!(p, serde_yaml_ng::Value::Bool(false) | serde_yaml_ng::Value::Null));
        Ok(Goreleaser {
            path: path.to_string(),
            project_name: raw.project_name,
            builds: raw.builds,
            env: raw.env.unwrap_or_default(),
            gomod_proxy,
            before_hooks: raw.before.is_some(),
        })
    }

    /// The ids of the builds, in order (goreleaser's default id is the project name).
    pub fn build_ids(&self) -> Vec<String> {
        self.builds.iter().map(|b| self.id_of(b)).collect()
    }

    fn id_of(&self, b: &RawBuild) -> String {
        b.id.clone().or_else(|| self.project_name.clone()).unwrap_or_else(|| "default".to_string())
    }

    /// The targets of build `id`'s matrix, after `ignore`.
    fn targets(&self, b: &RawBuild, id: &str) -> Result<Vec<Target>, GoreleaserError> {
        let unsupported =
            |message: String| GoreleaserError::Unsupported { path: self.path.clone(), build: id.to_string(), message };
        if let Some(ts) = &b.targets {
            return ts
                .iter()
                .map(|t| Target::parse(t).ok_or_else(|| unsupported(format!("target {t:?} is not os_arch[_level]"))))
                .collect();
        }
        let list = |v: &Option<Vec<String>>, d: &[&str]| -> Vec<String> {
            v.clone().unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
        };
        let goos = list(&b.goos, &["linux", "darwin", "windows"]);
        let goarch = list(&b.goarch, &["386", "amd64", "arm64"]);
        let goarm: Vec<String> = match &b.goarm {
            Some(v) => v.iter().filter_map(goarm_text).collect(),
            None => vec!["6".into()],
        };
        let levels = |arch: &str| -> Vec<Option<String>> {
            let l = match arch {
                "amd64" => list(&b.goamd64, &["v1"]),
                "arm" => goarm.clone(),
                "arm64" => list(&b.goarm64, &["v8.0"]),
                "386" => list(&b.go386, &["sse2"]),
                "mips" | "mipsle" | "mips64" | "mips64le" => list(&b.gomips, &["hardfloat"]),
                "ppc64" | "ppc64le" => list(&b.goppc64, &["power8"]),
                "riscv64" => list(&b.goriscv64, &["rva20u64"]),
                _ => return vec![None],
            };
            l.into_iter().map(Some).collect()
        };
        let mut out = Vec::new();
        for os in &goos {
            for arch in &goarch {
                for level in levels(arch) {
                    let t = Target { goos: os.clone(), goarch: arch.clone(), level };
                    let ignored = b.ignore.iter().flatten().any(|ig| {
                        let get = |k: &str| ig.get(k).and_then(goarm_text);
                        get("goos").is_none_or(|v| v == t.goos)
                            && get("goarch").is_none_or(|v| v == t.goarch)
                            && ["goamd64", "goarm", "goarm64", "go386", "gomips", "goppc64", "goriscv64"]
                                .iter()
                                .all(|k| get(k).is_none_or(|v| Some(v) == t.level))
                    });
                    if !ignored {
                        out.push(t);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The recipe layer of build `id` (the only build when `None`) for
    /// `target` (the only target when `None`), templates expanded from `values`.
    pub fn build(
        &self,
        id: Option<&str>,
        target: Option<&Target>,
        values: &TemplateValues,
    ) -> Result<GoreleaserBuild, GoreleaserError> {
        self.build_over(id, target, values, &|_| false)
    }

    /// [`Goreleaser::build`] below higher layers: a template of a field
    /// that `supplied` says a higher layer sets (`ldflags`, `gcflags`,
    /// `asmflags`, `tags`, `buildmode`, `output_name`, `env.NAME`) and that
    /// cannot be expanded is left out with a note, not an error: its value
    /// would not be used.
    pub fn build_over(
        &self,
        id: Option<&str>,
        target: Option<&Target>,
        values: &TemplateValues,
        supplied: &dyn Fn(&str) -> bool,
    ) -> Result<GoreleaserBuild, GoreleaserError> {
        let active: Vec<&RawBuild> =
            self.builds.iter().filter(|b| !matches!(b.skip, Some(serde_yaml_ng::Value::Bool(true)))).collect();
        let ids: Vec<String> = active.iter().map(|b| self.id_of(b)).collect();
        let b = match id {
            Some(want) => active.iter().find(|b| self.id_of(b) == want).ok_or_else(|| GoreleaserError::Build {
                path: self.path.clone(),
                message: format!("no build with id {want:?} (builds: {})", ids.join(", ")),
            })?,
            None if active.len() == 1 => &active[0],
            None => {
                return Err(GoreleaserError::Build {
                    path: self.path.clone(),
                    message: format!(
                        "{} builds ({}); choose one with {}",
                        active.len(),
                        ids.join(", "),
                        Setting::Build
                    ),
                })
            }
        };
        let id = self.id_of(b);
        let unsupported =
            |message: String| GoreleaserError::Unsupported { path: self.path.clone(), build: id.clone(), message };
        if let Some(builder) = b.builder.as_deref().filter(|x| *x != "go") {
            return Err(unsupported(format!("builder {builder:?} is not go")));
        }
        for (key, set) in [
            ("overrides", b.overrides.is_some()),
            ("dir", b.dir.as_deref().is_some_and(|d| d != "." && !d.is_empty())),
            ("gobinary", b.gobinary.as_deref().is_some_and(|g| g != "go")),
            ("command", b.command.as_deref().is_some_and(|c| c != "build")),
            ("tool", b.tool.as_deref().is_some_and(|c| c != "go")),
        ] {
            if set {
                return Err(unsupported(format!(
                    "{key} is not supported: it changes how the binary is built in a way reprove does not reproduce"
                )));
            }
        }
        if matches!(&b.skip, Some(v) if !matches!(v, serde_yaml_ng::Value::Bool(false))) {
            return Err(unsupported("skip is a template; give true or false".into()));
        }
        let targets = self.targets(b, &id)?;
        let names: Vec<String> = targets.iter().map(Target::to_string).collect();
        let target_err = |message: String| GoreleaserError::Target {
            path: self.path.clone(),
            build: id.clone(),
            message,
            targets: names.clone(),
        };
        let chosen = match target {
            Some(want) => {
                let found: Vec<&Target> = targets.iter().filter(|t| t.matches(want)).collect();
                match found.as_slice() {
                    [one] => (*one).clone(),
                    [] => return Err(target_err(format!("target {want} is not built"))),
                    _ => return Err(target_err(format!("target {want} is ambiguous; give its level"))),
                }
            }
            None if targets.len() == 1 => targets[0].clone(),
            None => {
                return Err(target_err(format!("several targets; choose one with {} OS_ARCH[_LEVEL]", Setting::Target)))
            }
        };

        if self.gomod_proxy {
            return Err(unsupported(
                "gomod.proxy builds from the module proxy instead of the source tree; reprove rebuilds the tree".into(),
            ));
        }
        // The global env is templated with the caller's values and joins them for .Env.
        let mut values = values.clone();
        let mut global_env = Vec::new();
        for kv in &self.env {
            let exp = Expander { values: &values, project: self.project_name.as_deref(), target: &chosen };
            let kv = exp.expand(kv).map_err(|message| GoreleaserError::Template {
                path: self.path.clone(),
                build: id.clone(),
                field: "env (global)".into(),
                message,
            })?;
            let (k, v) = kv.split_once('=').ok_or_else(|| unsupported(format!("env entry {kv:?} is not KEY=VALUE")))?;
            values.env.insert(k.to_string(), v.to_string());
            global_env.push(kv.clone());
        }
        let values = &values;
        let exp = Expander { values, project: self.project_name.as_deref(), target: &chosen };
        let expand = |field: &str, s: &str| {
            exp.expand(s).map_err(|message| GoreleaserError::Template {
                path: self.path.clone(),
                build: id.clone(),
                field: field.to_string(),
                message: format!("{message}{}", how_to_supply(field)),
            })
        };
        // A field a higher layer supplies: a template that cannot be expanded is a note.
        let mut skipped: Vec<String> = Vec::new();
        let mut soft = |field: &str, s: &str| -> Result<Option<String>, GoreleaserError> {
            match exp.expand(s) {
                Ok(v) => Ok(Some(v)),
                Err(message) if supplied(field) => {
                    skipped.push(format!(
                        "{}#{id}: {field} not evaluated ({message}); a higher-precedence input sets it",
                        self.path
                    ));
                    Ok(None)
                }
                Err(_) => expand(field, s).map(Some),
            }
        };
        let origin = Origin::Goreleaser(format!("{}#{id}", self.path));
        let src = |v: String| Some(Sourced::new(v, origin.clone()));
        let mut p = Partial {
            goos: src(chosen.goos.clone()),
            goarch: src(chosen.goarch.clone()),
            package: src(b.main.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| ".".into())),
            ..Partial::default()
        };
        if let (Some(var), Some(level)) = (chosen.level_var(), &chosen.level) {
            p.env.insert(var.to_string(), Sourced::new(level.clone(), origin.clone()));
        }
        let ldflags = b.ldflags.as_ref().map_or(DEFAULT_LDFLAGS.to_string(), StringOrList::joined);
        p.ldflags = soft("ldflags", &ldflags)?.and_then(src);
        if let Some(g) = &b.gcflags {
            p.gcflags = soft("gcflags", &g.joined())?.and_then(src);
        }
        if let Some(a) = &b.asmflags {
            p.asmflags = soft("asmflags", &a.joined())?.and_then(src);
        }
        if let Some(m) = &b.buildmode {
            p.buildmode = soft("buildmode", m)?.and_then(src);
        }
        if let Some(t) = &b.tags {
            let tags: Option<Vec<String>> = match t {
                StringOrList::One(s) => soft("tags", s)?.map(|v| v.split([',', ' ']).map(str::to_string).collect()),
                StringOrList::Many(v) => {
                    let mut all = Some(Vec::new());
                    for s in v {
                        match soft("tags", s)? {
                            Some(t) => all.iter_mut().for_each(|a| a.push(t.clone())),
                            None => all = None,
                        }
                    }
                    all
                }
            };
            if let Some(tags) = tags {
                p.tags =
                    Some(Sourced::new(tags.into_iter().filter(|t: &String| !t.is_empty()).collect(), origin.clone()));
            }
        }
        if self.before_hooks {
            p.notes.push(format!(
                "{}: before.hooks are not run by reprove; the commit must already hold what they generate",
                self.path
            ));
        }
        if b.hooks.is_some() {
            p.notes.push(format!("{}#{id}: build hooks are not run by reprove", self.path));
        }
        let mut build_env = Vec::new();
        for kv in b.env.iter().flatten() {
            // The variable's name, when it is not itself a template.
            let field = kv.split_once('=').map(|(k, _)| format!("env.{k}")).filter(|f| !f.contains("{{"));
            match field {
                Some(f) => build_env.extend(soft(&f, kv)?),
                None => build_env.push(expand("env", kv)?),
            }
        }
        for kv in global_env.into_iter().chain(build_env) {
            let (k, v) = kv.split_once('=').ok_or_else(|| unsupported(format!("env entry {kv:?} is not KEY=VALUE")))?;
            if super::file::PIPELINE_VARS.contains(&k) || k == "GOTOOLCHAIN" {
                p.notes.push(format!(
                    "{}#{id}: env {k}={v} not used: reprove's pipeline sets {k} (module fetching, caches and the toolchain are pinned)",
                    self.path
                ));
                continue;
            }
            if k == "GOOS" || k == "GOARCH" {
                return Err(unsupported(format!("env sets {k}; use goos/goarch")));
            }
            p.env.insert(k.to_string(), Sourced::new(v.to_string(), origin.clone()));
        }
        let flags: Vec<String> = match &b.flags {
            Some(StringOrList::One(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(StringOrList::Many(v)) => v.clone(),
            None => vec![],
        };
        let mut extra = Vec::new();
        let mut i = 0;
        while i < flags.len() {
            let flag = expand("flags", &flags[i])?;
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.trim_start_matches('-').to_string(), Some(v.to_string())),
                None => (flag.trim_start_matches('-').to_string(), None),
            };
            let mut value = || -> Result<String, GoreleaserError> {
                if let Some(v) = &inline {
                    return Ok(v.clone());
                }
                i += 1;
                flags
                    .get(i)
                    .map(|v| expand("flags", v))
                    .transpose()?
                    .ok_or_else(|| unsupported(format!("flag {flag} needs a value")))
            };
            match name.as_str() {
                "trimpath" => p.trimpath = Some(Sourced::new(inline.as_deref() != Some("false"), origin.clone())),
                "v" | "x" | "a" | "work" => {}
                "race" | "msan" | "asan" | "cover" => extra.push(format!("-{name}")),
                "tags" => {
                    let v = value()?;
                    p.tags = Some(Sourced::new(
                        v.split([',', ' ']).filter(|t| !t.is_empty()).map(str::to_string).collect(),
                        origin.clone(),
                    ))
                }
                "buildmode" => p.buildmode = src(value()?),
                "buildvcs" => {
                    let v = value()?;
                    let bv = match v.as_str() {
                        "true" => BuildVcs::True,
                        "false" => BuildVcs::False,
                        "auto" => BuildVcs::Auto,
                        _ => return Err(unsupported(format!("-buildvcs={v} is not true, false or auto"))),
                    };
                    p.buildvcs = Some(Sourced::new(bv, origin.clone()));
                }
                "pgo" => p.pgo = src(value()?),
                "gcflags" => p.gcflags = src(value()?),
                "asmflags" => p.asmflags = src(value()?),
                "ldflags" => p.ldflags = src(value()?),
                "mod" => {
                    let v = value()?;
                    p.env.insert("GOFLAGS".into(), Sourced::new(format!("-mod={v}"), origin.clone()));
                }
                // Flags that run or read what they name: carried in GOFLAGS,
                // where the recipe's exec values are found (super::exec).
                name if super::exec::EXEC_FLAGS.contains(&name) => {
                    let v = value()?;
                    if v.is_empty() || v.contains([' ', '\t', '\n', '\r', '\'', '"']) {
                        return Err(unsupported(format!(
                            "flag -{name} {v:?}: a value with spaces or quotes cannot be passed in GOFLAGS"
                        )));
                    }
                    let word = format!("-{name}={v}");
                    let joined = match p.env.get("GOFLAGS") {
                        Some(before) => format!("{} {word}", before.value),
                        None => word,
                    };
                    p.env.insert("GOFLAGS".into(), Sourced::new(joined, origin.clone()));
                }
                _ => return Err(unsupported(format!("flag {flag} is not supported"))),
            }
            i += 1;
        }
        if !extra.is_empty() {
            p.extra_flags = Some(Sourced::new(extra, origin.clone()));
        }
        let binary = match &b.binary {
            Some(bin) => soft("output_name", bin)?,
            None => self.project_name.clone(),
        };
        if let Some(bin) = binary {
            let base = bin.rsplit('/').next().unwrap_or(&bin).to_string();
            let name = if chosen.goos == "windows" && !base.ends_with(".exe") { format!("{base}.exe") } else { base };
            p.output_name = src(name);
        }
        let mod_timestamp = b.mod_timestamp.as_deref().map(|m| expand("mod_timestamp", m)).transpose()?;
        p.notes.extend(skipped);
        Ok(GoreleaserBuild { id, target: chosen, partial: p, mod_timestamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge;

    const YAML: &str = r#"
version: 2
project_name: tool
before:
  hooks: [go mod tidy]
env: [CGO_ENABLED=1, "TAGS=net{{ .Env.FOO }}"]
builds:
  - id: cli
    main: ./cmd/tool
    binary: "tool-{{ .Os }}"
    flags: [-trimpath, "-tags={{ .Env.TAGS }}"]
    ldflags:
      - -s -w
      - -X main.version={{.Version}} -X main.commit={{ .ShortCommit }}
      - -X main.date={{.CommitDate}} -X main.ts={{.CommitTimestamp}} -X main.full={{.FullCommit}}
      - -X main.tag={{.Tag}} -X main.built={{ .Date }} -X main.env={{ .Env.FOO }}
    env: [CGO_ENABLED=0, GOPROXY=https://proxy.invalid]
    goos: [linux, windows]
    goarch: [amd64, arm]
    goarm: [6, 7]
    goamd64: [v1, v3]
    ignore:
      - goos: windows
        goarch: arm
    mod_timestamp: "{{ .CommitTimestamp }}"
  - id: other
    skip: true
"#;

    fn values() -> TemplateValues {
        TemplateValues {
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            commit_time: Some(1_704_164_645),
            tag: Some("v1.2.3".into()),
            build_time: Some(1_704_164_700),
            env: [("FOO".to_string(), "bar".to_string())].into(),
            ..TemplateValues::default()
        }
    }

    #[test]
    fn build_entry_to_recipe() {
        let g = Goreleaser::parse(YAML, ".goreleaser.yaml").unwrap();
        assert_eq!(g.build_ids(), ["cli", "other"]);
        let t = Target::parse("linux_arm_7").unwrap();
        let b = g.build(None, Some(&t), &values()).unwrap();
        assert_eq!(b.mod_timestamp.as_deref(), Some("1704164645"));
        let r = merge(&[b.partial]);
        assert_eq!(r.package, "./cmd/tool");
        assert_eq!((r.goos.as_str(), r.goarch.as_str()), ("linux", "arm"));
        assert_eq!(r.env["GOARM"], "7");
        assert_eq!(r.env["CGO_ENABLED"], "0");
        assert!(!r.env.contains_key("GOPROXY"));
        assert!(r.notes.iter().any(|n| n.contains("GOPROXY")), "{:?}", r.notes);
        assert!(r.notes.iter().any(|n| n.contains("before.hooks")), "{:?}", r.notes);
        assert_eq!(r.env["TAGS"], "netbar");
        assert!(r.trimpath);
        assert_eq!(r.tags, ["netbar"]);
        assert_eq!(r.output_name, "tool-linux");
        assert_eq!(
            r.ldflags.as_deref(),
            Some(
                "-s -w -X main.version=1.2.3 -X main.commit=0123456 -X main.date=2024-01-02T03:04:05Z \
                 -X main.ts=1704164645 -X main.full=0123456789abcdef0123456789abcdef01234567 \
                 -X main.tag=v1.2.3 -X main.built=2024-01-02T03:05:00Z -X main.env=bar"
            )
        );
        assert_eq!(r.origins["ldflags"], Origin::Goreleaser(".goreleaser.yaml#cli".into()));
        let w = g.build(Some("cli"), Target::parse("windows/amd64/v3").as_ref(), &values()).unwrap();
        assert_eq!(merge(&[w.partial]).output_name, "tool-windows.exe");
        let e = g.build(None, Target::parse("windows_arm_6").as_ref(), &values()).unwrap_err().to_string();
        assert!(e.contains("not built") && e.contains("linux_arm_6"), "{e}");
        let e = g.build(None, Target::parse("linux_amd64").as_ref(), &values()).unwrap_err().to_string();
        assert!(e.contains("ambiguous"), "{e}");
    }

    /// goreleaser `flags` and `env` are where a goreleaser build can name a
    /// program to run: every spelling ends in the recipe's exec values.
    #[test]
    fn exec_flags_in_flags_and_env_are_exec_values() {
        let yaml = "builds:\n  - id: x\n    goos: [linux]\n    goarch: [riscv64]\n    ldflags: ''\n    \
                    env: ['GOFLAGS=--overlay=/src/o.json']\n    flags: [-trimpath, -toolexec, /src/tools/wrap, '--modfile=alt.mod']\n";
        let b = Goreleaser::parse(yaml, ".goreleaser.yaml").unwrap().build(None, None, &values()).unwrap();
        let r = merge(&[b.partial]);
        assert_eq!(r.env["GOFLAGS"], "--overlay=/src/o.json -toolexec=/src/tools/wrap -modfile=alt.mod");
        let found: Vec<(String, String)> = r.exec.iter().map(|e| (e.flag.clone(), e.value.clone())).collect();
        assert_eq!(
            found,
            [
                ("-overlay".to_string(), "/src/o.json".to_string()),
                ("-toolexec".to_string(), "/src/tools/wrap".to_string()),
                ("-modfile".to_string(), "alt.mod".to_string())
            ]
        );
        assert!(r.exec.iter().all(|e| e.origin == Origin::Goreleaser(".goreleaser.yaml#x".into())));
        let bad = yaml.replace("/src/tools/wrap", "'/src/a b'");
        let e = Goreleaser::parse(&bad, "g.yaml").unwrap().build(None, None, &values()).unwrap_err().to_string();
        assert!(e.contains("-toolexec") && e.contains("GOFLAGS"), "{e}");
    }

    #[test]
    fn unknown_templates_and_missing_values_are_errors() {
        let one =
            |ld: &str| format!("builds:\n  - id: x\n    goos: [linux]\n    goarch: [riscv64]\n    ldflags: \"{ld}\"\n");
        let err = |yaml: String, v: &TemplateValues| {
            Goreleaser::parse(&yaml, "g.yaml").unwrap().build(None, None, v).unwrap_err().to_string()
        };
        let e = err(one("-X main.v={{ .Branch }}"), &values());
        assert!(e.contains(".Branch"), "{e}");
        let e = err(one("-X main.v={{ time \\\"2006\\\" }}"), &values());
        assert!(e.contains("\\\"time\\\"") || e.contains("time"), "{e}");
        let e = err(one("-X main.v={{ .Version | lower }}"), &values());
        assert!(e.contains("pipelines"), "{e}");
        let e = err(one("-X main.v={{ .Env.NOPE }}"), &values());
        assert!(e.contains("NOPE"), "{e}");
        let e = err(one("-X main.v={{.Date}}"), &TemplateValues::default());
        assert!(e.contains(".Date") && e.contains("build time"), "{e}");
        let e = err(one("-X main.v={{.Version"), &values());
        assert!(e.contains("unclosed"), "{e}");
        let ok = Goreleaser::parse(&one("-X a={{- .Tag -}} -X b={{/* c */}}"), "g.yaml").unwrap();
        let r = merge(&[ok.build(None, None, &values()).unwrap().partial]);
        assert_eq!(r.ldflags.as_deref(), Some("-X a=v1.2.3-X b="));
        assert_eq!(r.env["GORISCV64"], "rva20u64");
    }

    /// Every prefix and one-byte corruption of a real-looking file is an
    /// error or a build, never a panic.
    #[test]
    fn a_template_a_higher_layer_overrides_is_a_note() {
        let yaml = "builds:\n  - id: x\n    goos: [linux]\n    goarch: [riscv64]\n    \
                    ldflags: '-X main.v={{ .Version }}'\n    env: ['FOO={{ .Env.NOPE }}']\n";
        let g = Goreleaser::parse(yaml, "g.yaml").unwrap();
        let none = TemplateValues::default();
        let err = g.build(None, None, &none).unwrap_err().to_string();
        assert!(err.contains("ldflags") && err.contains(".Version") && err.contains("REPROVE_LDFLAGS"), "{err}");
        let b = g.build_over(None, None, &none, &|f| f == "ldflags" || f == "env.FOO").unwrap();
        assert_eq!(b.partial.ldflags, None);
        assert!(!b.partial.env.contains_key("FOO"));
        let notes = b.partial.notes.join("\n");
        assert!(notes.contains("ldflags not evaluated") && notes.contains(".Version"), "{notes}");
        assert!(notes.contains("env.FOO not evaluated"), "{notes}");
        // Only the fields supplied are spared.
        let err = g.build_over(None, None, &none, &|f| f == "ldflags").unwrap_err().to_string();
        assert!(err.contains("NOPE"), "{err}");
    }

    #[test]
    fn mangled_files_never_panic() {
        for end in 0..YAML.len() {
            if let Some(prefix) = YAML.get(..end) {
                if let Ok(g) = Goreleaser::parse(prefix, "g") {
                    let _ = g.build(Some("cli"), Target::parse("linux_arm_7").as_ref(), &values());
                }
            }
        }
        for i in 0..YAML.len() {
            for b in [b'{', b'}', b'-', b':', b'\n', b'&', b'*', b' '] {
                let mut bytes = YAML.as_bytes().to_vec();
                bytes[i] = b;
                let mangled = String::from_utf8_lossy(&bytes);
                if let Ok(g) = Goreleaser::parse(&mangled, "g") {
                    let _ = g.build(None, Target::parse("linux_amd64_v1").as_ref(), &values());
                }
            }
        }
    }

    #[test]
    fn malformed_yaml_and_unsupported_keys() {
        let e = Goreleaser::parse("builds:\n  - id: x\n    ldflag: -s\n", "g.yaml").unwrap_err().to_string();
        assert!(e.starts_with("g.yaml:3:5: ") && e.contains("ldflag"), "{e}");
        let e = Goreleaser::parse("builds: [\n", "g.yaml").unwrap_err().to_string();
        assert!(e.starts_with("g.yaml:"), "{e}");
        for text in ["\u{0}", "builds: 3", "builds:\n  - goos: linux\n", "{{", "- a\n- b", "a: &x [*x]"] {
            let _ = Goreleaser::parse(text, "g.yaml");
        }
        let g = Goreleaser::parse("builds:\n  - overrides: []\n    goos: [linux]\n    goarch: [arm64]\n", "g").unwrap();
        let e = g.build(None, None, &values()).unwrap_err().to_string();
        assert!(e.contains("overrides"), "{e}");
        let g = Goreleaser::parse("gomod:\n  proxy: true\nbuilds:\n  - goos: [linux]\n    goarch: [arm64]\n", "g");
        let e = g.unwrap().build(None, None, &values()).unwrap_err().to_string();
        assert!(e.contains("gomod.proxy"), "{e}");
        let g = Goreleaser::parse("builds:\n  - flags: [-buildid=x]\n    goos: [linux]\n    goarch: [s390x]\n", "g");
        let e = g.unwrap().build(None, None, &values()).unwrap_err().to_string();
        assert!(e.contains("-buildid=x"), "{e}");
    }
}
