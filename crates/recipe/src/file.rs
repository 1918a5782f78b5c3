//! `reprove.toml`: the recipe a repository declares for its release builds.
//!
//! ```toml
//! [build]                 # the build, or the defaults of the named builds
//! go = "go1.22.5"
//! package = "./cmd/app"
//! goos = "linux"
//! goarch = "amd64"
//! trimpath = true
//! ldflags = "-s -w -X main.version=1.2.3"
//! tags = ["netgo", "osusergo"]
//! buildvcs = false        # true, false or "auto"
//! env = { CGO_ENABLED = "0", GOAMD64 = "v1" }
//!
//! [builds.server]         # optional named builds, each over [build]
//! package = "./cmd/server"
//! output = "server"
//! ```
//!
//! Unknown keys are errors with their line and column; the JSON Schema is
//! `schemas/recipe.schema.json`. The `REPROVE_*` environment variables
//! ([`partial_from_env`]) set the same fields one level above the file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use stdx::setting::Setting;

use super::merge::{Partial, Sourced};
use super::{BuildVcs, Origin};
use confined::{bounded_message, excerpt, limits, ConfinedDir, ConfinedError};

/// The file name reprove looks for at the root of the source tree.
pub const FILE_NAME: &str = "reprove.toml";

/// What went wrong with a recipe file or the `REPROVE_*` variables.
#[derive(Debug, thiserror::Error)]
pub enum RecipeFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file cannot be read inside its directory: a symlink out, a
    /// device, FIFO or socket, too large.
    #[error("{0}")]
    Refused(ConfinedError),
    /// Not valid TOML, or a key or type the schema does not allow.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A value the schema allows but Go would not accept.
    #[error("{path}: {}: {}", excerpt(field), bounded_message(message))]
    Invalid {
        /// The file, or the environment variable.
        path: String,
        /// The field (with the build name for named builds).
        field: String,
        /// Why.
        message: String,
    },
    /// `--build NAME` names no build in the file.
    #[error("{path}: no build named {name:?} (builds: {})", known.join(", "))]
    UnknownBuild {
        /// The file.
        path: String,
        /// The name asked for.
        name: String,
        /// The builds the file has.
        known: Vec<String>,
    },
    /// Several named builds and none chosen.
    #[error("{path} has several builds ({}); choose one with {}", known.join(", "), Setting::Build)]
    AmbiguousBuild {
        /// The file.
        path: String,
        /// The builds the file has.
        known: Vec<String>,
    },
}

/// `true`, `false` or `"auto"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum RawBuildVcs {
    Bool(bool),
    Word(String),
}

/// One build table. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildEntry {
    /// The Go version (`go1.22.5`).
    pub go: Option<String>,
    /// The package to build.
    pub package: Option<String>,
    /// `GOOS`.
    pub goos: Option<String>,
    /// `GOARCH`.
    pub goarch: Option<String>,
    /// Build environment (`CGO_ENABLED`, `GOAMD64`, `GOEXPERIMENT`, ...).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `-trimpath`.
    pub trimpath: Option<bool>,
    /// `-ldflags`, verbatim.
    pub ldflags: Option<String>,
    /// `-gcflags`, verbatim.
    pub gcflags: Option<String>,
    /// `-asmflags`, verbatim.
    pub asmflags: Option<String>,
    /// `-tags`.
    pub tags: Option<Vec<String>>,
    /// `-buildmode`.
    pub buildmode: Option<String>,
    #[serde(default)]
    buildvcs: Option<RawBuildVcs>,
    /// `-pgo`.
    pub pgo: Option<String>,
    /// The output file name.
    pub output: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    build: BuildEntry,
    #[serde(default)]
    builds: BTreeMap<String, BuildEntry>,
    /// `[audit]` is read by `reprove audit` in the auditor's directory, never
    /// from a commit; a recipe ignores it.
    #[serde(default, rename = "audit")]
    _audit: Option<toml::Table>,
}

/// A parsed `reprove.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeFile {
    /// The path it was read from, as reported in origins and errors.
    pub path: String,
    /// `[build]`: the build, or the defaults of the named builds.
    pub build: BuildEntry,
    /// `[builds.NAME]`.
    pub builds: BTreeMap<String, BuildEntry>,
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl RecipeFile {
    /// Parses `text`; `path` is used in errors and origins.
    pub fn parse(text: &str, path: &str) -> Result<RecipeFile, RecipeFileError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            RecipeFileError::Syntax {
                path: path.to_string(),
                line,
                column,
                message: bounded_message(e.message().trim()),
            }
        })?;
        let file = RecipeFile { path: path.to_string(), build: raw.build, builds: raw.builds };
        // Validate every build now, so a mistake in one is found before it is chosen.
        file.entry_partial(&file.build, "build")?;
        for (name, entry) in &file.builds {
            file.entry_partial(entry, &format!("builds.{name}"))?;
        }
        Ok(file)
    }

    /// Reads `dir/reprove.toml`; `Ok(None)` when there is none. The file is
    /// read confined to `dir` ([`ConfinedDir`]): a symlink out of it, a
    /// device or FIFO is [`RecipeFileError::Refused`], never opened.
    pub fn load(dir: &Path) -> Result<Option<RecipeFile>, RecipeFileError> {
        let tree = ConfinedDir::open_followed(dir).map_err(RecipeFileError::Refused)?;
        let Some(data) = tree.read_optional(FILE_NAME, limits::CONFIG).map_err(RecipeFileError::Refused)? else {
            return Ok(None);
        };
        let text = String::from_utf8(data).map_err(|_| RecipeFileError::Syntax {
            path: FILE_NAME.to_string(),
            line: 1,
            column: 1,
            message: "not UTF-8 text".into(),
        })?;
        RecipeFile::parse(&text, FILE_NAME).map(Some)
    }

    /// The names of the named builds.
    pub fn build_names(&self) -> Vec<String> {
        self.builds.keys().cloned().collect()
    }

    /// The recipe layer of build `name` (over `[build]`), or of `[build]` when
    /// the file has no named builds, or of the only named build.
    pub fn partial(&self, name: Option<&str>) -> Result<Partial, RecipeFileError> {
        let known = self.build_names();
        let chosen = match (name, known.len()) {
            (Some(n), _) => Some(self.builds.get_key_value(n).ok_or_else(|| RecipeFileError::UnknownBuild {
                path: self.path.clone(),
                name: n.to_string(),
                known: known.clone(),
            })?),
            (None, 0) => None,
            (None, 1) => self.builds.iter().next(),
            (None, _) => return Err(RecipeFileError::AmbiguousBuild { path: self.path.clone(), known }),
        };
        let mut p = self.entry_partial(&self.build, "build")?;
        if let Some((name, entry)) = chosen {
            let over = self.entry_partial(entry, &format!("builds.{name}"))?;
            overlay(&mut p, over);
        }
        Ok(p)
    }

    fn entry_partial(&self, e: &BuildEntry, table: &str) -> Result<Partial, RecipeFileError> {
        let origin = Origin::RecipeFile(self.path.clone());
        let invalid = |field: &str, message: String| RecipeFileError::Invalid {
            path: self.path.clone(),
            field: format!("{table}.{field}"),
            message,
        };
        let s = |v: &Option<String>| v.clone().map(|v| Sourced::new(v, origin.clone()));
        let mut p = Partial {
            package: s(&e.package),
            goos: s(&e.goos),
            goarch: s(&e.goarch),
            trimpath: e.trimpath.map(|v| Sourced::new(v, origin.clone())),
            ldflags: s(&e.ldflags),
            gcflags: s(&e.gcflags),
            asmflags: s(&e.asmflags),
            tags: e.tags.clone().map(|v| Sourced::new(v, origin.clone())),
            buildmode: s(&e.buildmode),
            pgo: s(&e.pgo),
            output_name: s(&e.output),
            go_version: s(&e.go),
            ..Partial::default()
        };
        if let Some(v) = &e.buildvcs {
            let value = match v {
                RawBuildVcs::Bool(true) => BuildVcs::True,
                RawBuildVcs::Bool(false) => BuildVcs::False,
                RawBuildVcs::Word(w) => parse_buildvcs(w).map_err(|m| invalid("buildvcs", m))?,
            };
            p.buildvcs = Some(Sourced::new(value, origin.clone()));
        }
        for (k, v) in &e.env {
            p.env.insert(k.clone(), Sourced::new(v.clone(), origin.clone()));
        }
        validate(&p).map_err(|(field, message)| invalid(&field, message))?;
        Ok(p)
    }
}

/// Puts every field `over` sets onto `base`.
fn overlay(base: &mut Partial, over: Partial) {
    macro_rules! take {
        ($($f:ident),*) => { $( if over.$f.is_some() { base.$f = over.$f; } )* };
    }
    take!(package, goos, goarch, trimpath, ldflags, gcflags, asmflags, tags, buildmode, buildvcs, pgo, output_name);
    take!(go_version, extra_flags, default_godebug, revision);
    base.env.extend(over.env);
    base.undetermined.extend(over.undetermined);
}

fn parse_buildvcs(w: &str) -> Result<BuildVcs, String> {
    match w {
        "true" => Ok(BuildVcs::True),
        "false" => Ok(BuildVcs::False),
        "auto" => Ok(BuildVcs::Auto),
        _ => Err(format!("{w:?} is not true, false or auto")),
    }
}

fn parse_bool(w: &str) -> Result<bool, String> {
    match w {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{w:?} is not true or false")),
    }
}

/// Go's build modes.
pub const BUILD_MODES: &[&str] = &["archive", "c-archive", "c-shared", "default", "exe", "pie", "plugin", "shared"];

fn word(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks what Go would refuse or what would make the rebuild ambiguous.
fn validate(p: &Partial) -> Result<(), (String, String)> {
    let bad = |f: &str, m: String| Err((f.to_string(), m));
    if let Some(s) = &p.package {
        if s.value.is_empty() || s.value.starts_with('-') || s.value.contains(char::is_whitespace) {
            return bad("package", format!("{:?} is not a package path", s.value));
        }
    }
    for (f, v) in [("goos", &p.goos), ("goarch", &p.goarch)] {
        if let Some(s) = v {
            if !word(&s.value) {
                return bad(f, format!("{:?} is not a Go {}", s.value, f.to_uppercase()));
            }
        }
    }
    if let Some(s) = &p.tags {
        if let Some(t) = s.value.iter().find(|t| t.is_empty() || t.contains([',', ' ', '\t', '\n'])) {
            return bad("tags", format!("{t:?} is not a build tag"));
        }
    }
    if let Some(s) = &p.buildmode {
        if !BUILD_MODES.contains(&s.value.as_str()) {
            return bad("buildmode", format!("{:?} is not one of {}", s.value, BUILD_MODES.join(", ")));
        }
    }
    if let Some(s) = &p.output_name {
        if s.value.is_empty() || s.value.contains(['/', '\\']) || s.value == "." || s.value == ".." {
            return bad("output", format!("{:?} is not a file name", s.value));
        }
    }
    if let Some(s) = &p.go_version {
        let ok = s.value.strip_prefix("go").is_some_and(|r| {
            r.starts_with(|c: char| c.is_ascii_digit()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        });
        if !ok {
            return bad("go", format!("{:?} is not a Go version like go1.22.5", s.value));
        }
    }
    for k in p.env.keys() {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return bad("env", format!("{k:?} is not an environment variable name"));
        }
        if k == "GOOS" || k == "GOARCH" {
            return bad("env", format!("set {k} with the {} key, not in env", k.to_lowercase()));
        }
        if k == "GOTOOLCHAIN" {
            return bad("env", "GOTOOLCHAIN is fixed to local by reprove; choose the version with `go`".to_string());
        }
        if PIPELINE_VARS.contains(&k.as_str()) {
            return bad("env", format!("{k} is set by reprove's build pipeline, not by a recipe"));
        }
    }
    Ok(())
}

/// Variables the rebuild pipeline owns: module fetching (always `GOPROXY=off`
/// over the verified cache), caches and paths. No recipe input may set them.
pub const PIPELINE_VARS: &[&str] = &[
    "GOPROXY",
    "GONOPROXY",
    "GOPRIVATE",
    "GONOSUMDB",
    "GONOSUMCHECK",
    "GOSUMDB",
    "GOINSECURE",
    "GOVCS",
    "GOAUTH",
    "GOROOT",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
    "GOCACHEPROG",
    "GOENV",
    "GOTMPDIR",
    "GOTELEMETRY",
    "GOTELEMETRYDIR",
    "HOME",
    "PATH",
    "TMPDIR",
];

/// Checks a recipe layer from any input (flags, for instance) as
/// `reprove.toml` values are checked; `source` names the input in the error.
pub fn validate_layer(p: &Partial, source: &str) -> Result<(), RecipeFileError> {
    validate(p).map_err(|(field, message)| RecipeFileError::Invalid { path: source.to_string(), field, message })
}

/// The `REPROVE_*` variables that set recipe fields.
pub const ENV_VARS: &[&str] = &[
    "REPROVE_PACKAGE",
    "REPROVE_GOOS",
    "REPROVE_GOARCH",
    "REPROVE_TRIMPATH",
    "REPROVE_LDFLAGS",
    "REPROVE_GCFLAGS",
    "REPROVE_ASMFLAGS",
    "REPROVE_TAGS",
    "REPROVE_BUILDMODE",
    "REPROVE_BUILDVCS",
    "REPROVE_PGO",
    "REPROVE_OUTPUT_NAME",
    "REPROVE_GO_VERSION",
];

/// The recipe layer of the `REPROVE_*` variables among `vars` (pass
/// `std::env::vars()`); each value has [`Origin::Environment`] with the
/// variable's name. `REPROVE_TAGS` is comma-separated.
pub fn partial_from_env<I>(vars: I) -> Result<Partial, RecipeFileError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut p = Partial::default();
    for (k, v) in vars {
        if !ENV_VARS.contains(&k.as_str()) {
            continue;
        }
        let origin = Origin::Environment(k.clone());
        let invalid = |m: String| RecipeFileError::Invalid { path: k.clone(), field: k.clone(), message: m };
        let s = Some(Sourced::new(v.clone(), origin.clone()));
        match k.as_str() {
            "REPROVE_PACKAGE" => p.package = s,
            "REPROVE_GOOS" => p.goos = s,
            "REPROVE_GOARCH" => p.goarch = s,
            "REPROVE_LDFLAGS" => p.ldflags = s,
            "REPROVE_GCFLAGS" => p.gcflags = s,
            "REPROVE_ASMFLAGS" => p.asmflags = s,
            "REPROVE_BUILDMODE" => p.buildmode = s,
            "REPROVE_PGO" => p.pgo = s,
            "REPROVE_OUTPUT_NAME" => p.output_name = s,
            "REPROVE_GO_VERSION" => p.go_version = s,
            "REPROVE_TAGS" => {
                let tags = v.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
                p.tags = Some(Sourced::new(tags, origin));
            }
            "REPROVE_TRIMPATH" => p.trimpath = Some(Sourced::new(parse_bool(&v).map_err(invalid)?, origin)),
            _ => p.buildvcs = Some(Sourced::new(parse_buildvcs(&v).map_err(invalid)?, origin)),
        }
    }
    validate(&p).map_err(|(field, message)| RecipeFileError::Invalid {
        path: "environment".into(),
        field: format!("REPROVE_{}", field.to_uppercase()),
        message,
    })?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge;

    const FILE: &str = r#"
[build]
go = "go1.22.5"
trimpath = true
ldflags = "-s -w"
buildvcs = "auto"
env = { CGO_ENABLED = "0" }

[builds.app]
package = "./cmd/app"

[builds.server]
package = "./cmd/server"
output = "srv"
tags = ["netgo"]
buildvcs = false
"#;

    #[test]
    fn named_builds_over_defaults() {
        let f = RecipeFile::parse(FILE, "reprove.toml").unwrap();
        assert_eq!(f.build_names(), ["app", "server"]);
        let r = merge(&[f.partial(Some("server")).unwrap()]);
        assert_eq!(r.package, "./cmd/server");
        assert_eq!(r.output_name, "srv");
        assert!(r.trimpath);
        assert_eq!(r.buildvcs, BuildVcs::False);
        assert_eq!(r.env["CGO_ENABLED"], "0");
        assert_eq!(r.origins["ldflags"], Origin::RecipeFile("reprove.toml".into()));
        assert_eq!(merge(&[f.partial(Some("app")).unwrap()]).buildvcs, BuildVcs::Auto);
        assert!(matches!(f.partial(None), Err(RecipeFileError::AmbiguousBuild { .. })));
        let e = f.partial(Some("nope")).unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("app, server"), "{e}");
    }

    /// `[audit]` belongs to `reprove audit` in the auditor's directory: a recipe
    /// ignores it, and the same file serves both.
    #[test]
    fn the_audit_table_is_not_a_recipe() {
        let text = format!("{FILE}\n[audit.sources]\n\"example.com/a\" = \"/repos/a\"\n");
        let f = RecipeFile::parse(&text, "reprove.toml").unwrap();
        assert_eq!(f, RecipeFile::parse(FILE, "reprove.toml").unwrap());
        assert!(RecipeFile::parse("[auditt]\n", "reprove.toml").is_err());
    }

    /// The JSON Schema and the parser accept the same keys.
    #[test]
    fn schema_keys_match_the_parser() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/recipe.schema.json")).unwrap();
        let props = schema["$defs"]["build"]["properties"].as_object().unwrap();
        for (key, def) in props {
            let value = match def["type"].as_str() {
                Some("boolean") => "true".to_string(),
                Some("array") => "[\"x\"]".to_string(),
                Some("object") => "{ CGO_ENABLED = \"0\" }".to_string(),
                _ if key == "buildvcs" => "\"auto\"".to_string(),
                _ if key == "buildmode" => "\"pie\"".to_string(),
                _ if key == "go" => "\"go1.22.5\"".to_string(),
                _ => "\"x\"".to_string(),
            };
            let text = format!("[build]\n{key} = {value}\n[builds.n]\n{key} = {value}\n");
            RecipeFile::parse(&text, "r.toml").unwrap_or_else(|e| panic!("schema key {key}: {e}"));
        }
        let top = schema["properties"].as_object().unwrap();
        // `audit` is `reprove audit`'s (the audit crate parses it); a recipe ignores it.
        assert_eq!(top.keys().collect::<Vec<_>>(), ["audit", "build", "builds"]);
        // A key outside the schema is refused.
        assert!(RecipeFile::parse("[build]\noutput_name = \"x\"\n", "r.toml").is_err());
        assert_eq!(props.len(), 14, "a BuildEntry field without a schema entry, or the reverse");
    }

    #[test]
    fn the_example_parses() {
        let f = RecipeFile::parse(include_str!("../../../examples/recipe/reprove.toml"), "reprove.toml").unwrap();
        let r = merge(&[f.partial(Some("hello-arm")).unwrap()]);
        assert_eq!((r.goarch.as_str(), r.output_name.as_str()), ("arm64", "hello-arm64"));
        assert_eq!(r.env["GOARM64"], "v8.0");
        assert_eq!(r.env["CGO_ENABLED"], "0");
    }

    #[test]
    fn unknown_keys_and_bad_toml_have_positions() {
        let e = RecipeFile::parse("[build]\npackage = \".\"\nldflag = \"-s\"\n", "reprove.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("reprove.toml:3:1: "), "{msg}");
        assert!(msg.contains("ldflag"), "{msg}");
        let e = RecipeFile::parse("[build]\ntrimpath = \"yes\"\n", "reprove.toml").unwrap_err().to_string();
        assert!(e.starts_with("reprove.toml:2:12: "), "{e}");
        let e = RecipeFile::parse("[build\n", "reprove.toml").unwrap_err().to_string();
        assert!(e.starts_with("reprove.toml:1:"), "{e}");
        let e = RecipeFile::parse("[build]\nbuildmode = \"exe2\"\n", "r.toml").unwrap_err().to_string();
        assert!(e.contains("build.buildmode"), "{e}");
        let e = RecipeFile::parse("[builds.x]\nenv = { GOOS = \"linux\" }\n", "r.toml").unwrap_err().to_string();
        assert!(e.contains("builds.x.env"), "{e}");
        let e = RecipeFile::parse("[build]\nenv = { GOPROXY = \"direct\" }\n", "r.toml").unwrap_err().to_string();
        assert!(e.contains("GOPROXY") && e.contains("pipeline"), "{e}");
        for text in ["\u{0}", "a = [", "[[build]]\n", "[build]\ntags = [1]\n", "x = 1e999999"] {
            assert!(RecipeFile::parse(text, "r.toml").is_err(), "{text:?}");
        }
    }

    /// Every prefix and every one-byte corruption of the example is an error
    /// or a file, never a panic.
    #[test]
    fn mangled_files_never_panic() {
        let text = include_str!("../../../examples/recipe/reprove.toml");
        for end in 0..text.len() {
            if let Some(prefix) = text.get(..end) {
                let _ = RecipeFile::parse(prefix, "r.toml").and_then(|f| f.partial(Some("hello")));
            }
        }
        for i in 0..text.len() {
            for b in [b'"', b'[', b'=', b'\n', b'\\', 0xff] {
                let mut bytes = text.as_bytes().to_vec();
                bytes[i] = b;
                let mangled = String::from_utf8_lossy(&bytes);
                let _ = RecipeFile::parse(&mangled, "r.toml");
            }
        }
    }

    #[test]
    fn precedence_flags_env_file_reference() {
        let file = RecipeFile::parse("[build]\nldflags = \"-s\"\ntrimpath = false\ntags = [\"a\"]\n", "reprove.toml")
            .unwrap()
            .partial(None)
            .unwrap();
        let env = partial_from_env([
            ("REPROVE_LDFLAGS".to_string(), "-w".to_string()),
            ("HOME".to_string(), "/x".to_string()),
        ])
        .unwrap();
        let flags = Partial { tags: Some(Sourced::new(vec!["b".into()], Origin::Flag)), ..Partial::default() };
        let reference =
            Partial { trimpath: Some(Sourced::new(true, Origin::Reference("-trimpath".into()))), ..Partial::default() };
        let r = merge(&[flags, env, file, reference]);
        assert_eq!(r.ldflags.as_deref(), Some("-w"));
        assert_eq!(r.origins["ldflags"], Origin::Environment("REPROVE_LDFLAGS".into()));
        assert_eq!(r.tags, ["b"]);
        assert!(!r.trimpath);
        let c = r.conflicts.iter().find(|c| c.field == "trimpath").unwrap();
        assert_eq!(c.used_origin, Origin::RecipeFile("reprove.toml".into()));
        assert_eq!(c.overridden_origin, Origin::Reference("-trimpath".into()));
        assert!(partial_from_env([("REPROVE_TRIMPATH".into(), "maybe".into())]).is_err());
    }
}
