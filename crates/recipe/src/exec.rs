//! Recipe values that make the build run, or read in place of the tree, what
//! the value names: `go build -toolexec PROG` runs PROG around every tool,
//! `-exec PROG` runs PROG around the binaries of `go run`/`go test`,
//! `-overlay FILE` replaces source files by the files FILE lists, and
//! `-modfile FILE` reads another go.mod (and go.sum) than the tree's.
//!
//! A recipe carries go flags in one place only: the `GOFLAGS` variable of its
//! environment (a `.goreleaser.yaml` `flags:` entry for one of these flags is
//! put there too), so [`exec_values`] reads them from it, by Go's rules
//! ([`split_goflags`]: `cmd/internal/quoted.Split`, every word `-name`,
//! `--name`, `-name=value` or `--name=value`, the last setting of a flag
//! wins). [`exec_in_args`] reads a command line (`-toolexec x` as well).
//!
//! Such a value chosen by the verifier (a flag or its environment) is the
//! verifier's decision. From the commit's own files (`reprove.toml`,
//! `.goreleaser.yaml`) it is the source choosing what runs in the build, so
//! a rebuild refuses it unless the verifier allows it ([`refuse_from_commit`]).

use serde::{Deserialize, Serialize};

use super::{Origin, Recipe};

/// The go flags whose value names something the build runs or reads instead
/// of the tree, without the leading dash: `-compiler` picks gccgo and
/// `-gccgoflags` passes it anything, as `-extld`/`-extldflags` do for the
/// external linker ([`LINKER_FLAGS`], inside `-ldflags`).
pub const EXEC_FLAGS: &[&str] = &["toolexec", "exec", "overlay", "modfile", "compiler", "gccgoflags"];

/// Linker flags (in `-ldflags`) that name a program to run, or pass the
/// external linker options that can load one (`-fplugin`, `-B`…).
pub const LINKER_FLAGS: &[&str] = &["extld", "extldflags"];

/// Environment variables a recipe may set that no tool of the build reads to
/// find a program, a plugin or a library to load: the target, the language and
/// module settings (which the pipeline's own values override where it matters),
/// and `CGO_*FLAGS`, whose words are checked ([`RUNNING_CC_FLAGS`]). Any other
/// variable (`CC`, `PATH`, `GOROOT`, `GOCACHEPROG`, `COMPILER_PATH`, `LD_PRELOAD`,
/// `CGO_*_ALLOW`, `GIT_*`…) may make the build run what it names.
pub const SAFE_ENV: &[&str] = &[
    "GOOS",
    "GOARCH",
    "GOAMD64",
    "GOARM",
    "GOARM64",
    "GO386",
    "GOMIPS",
    "GOMIPS64",
    "GOPPC64",
    "GORISCV64",
    "GOWASM",
    "GOEXPERIMENT",
    "GODEBUG",
    "GOFIPS140",
    "CGO_ENABLED",
    "GOWORK",
    "GO111MODULE",
    "GOFLAGS",
    "GOTOOLCHAIN",
    "GOPROXY",
    "GOSUMDB",
    "GONOSUMDB",
    "GONOPROXY",
    "GOPRIVATE",
    "GOINSECURE",
    "GOVCS",
    "GOENV",
    "GOTELEMETRY",
    "TZ",
    "LANG",
    "LC_ALL",
    "SOURCE_DATE_EPOCH",
];

/// The `CGO_*FLAGS` variables: go checks `#cgo` directives against a list of
/// safe compiler flags, but not these.
pub const CGO_FLAG_ENV: &[&str] = &["CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_FFLAGS", "CGO_LDFLAGS"];

/// C compiler and linker options that load or run a program or plugin of
/// their own choosing (by prefix).
pub const RUNNING_CC_FLAGS: &[&str] = &[
    "-fplugin",
    "-B",
    "-wrapper",
    "-specs",
    "--specs",
    "-Wl,-plugin",
    "-Wl,--plugin",
    "-Xlinker",
    "-fuse-ld",
    "--ld-path",
    "-iplugindir",
];

/// One such value in a recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecValue {
    /// The flag, with one dash (`-toolexec`).
    pub flag: String,
    /// Its value, as go reads it.
    pub value: String,
    /// The recipe field that carries it (`env.GOFLAGS`).
    pub field: String,
    /// Where that field's value came from.
    pub origin: Origin,
}

impl ExecValue {
    /// Whether the party under test chose it: the commit's own files
    /// (`reprove.toml`, `.goreleaser.yaml`), or the reference's build info
    /// (`--from-reference`), which the same party published.
    pub fn from_commit(&self) -> bool {
        matches!(
            self.origin,
            Origin::RecipeFile(_) | Origin::Goreleaser(_) | Origin::ReferencePlatform(_) | Origin::Reference(_)
        )
    }

    /// The file of the commit (or the reference) it came from, when it did.
    pub fn commit_file(&self) -> Option<&str> {
        match &self.origin {
            Origin::RecipeFile(p) => Some(p),
            Origin::Goreleaser(p) | Origin::ReferencePlatform(p) => {
                Some(p.split_once('#').map_or(p.as_str(), |(file, _)| file))
            }
            Origin::Reference(_) => Some("the reference's build info"),
            _ => None,
        }
    }
}

impl std::fmt::Display for ExecValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.flag, self.value)
    }
}

/// Why go would refuse a `GOFLAGS` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoFlagsError {
    /// A field that starts with a quote has no closing one.
    #[error("unterminated {0} string")]
    Unterminated(char),
    /// A field is not a flag.
    #[error("{0:?} is not a flag")]
    NotAFlag(String),
    /// A flag that takes a value has none (`-NAME` without `=VALUE`).
    #[error("-{0} needs a value (-{0}=VALUE) in GOFLAGS")]
    NeedsValue(String),
}

/// `GOFLAGS` split as the go command splits it (`cmd/internal/quoted.Split`):
/// fields separated by space, tab, CR or LF, a field that starts with `'` or
/// `"` running to the next such quote, with no unescaping.
pub fn split_goflags(s: &str) -> Result<Vec<String>, GoFlagsError> {
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(space);
        let Some(first) = rest.chars().next() else { break };
        if first == '\'' || first == '"' {
            let body = &rest[1..];
            let end = body.find(first).ok_or(GoFlagsError::Unterminated(first))?;
            out.push(body[..end].to_string());
            rest = &body[end + 1..];
        } else {
            let end = rest.find(space).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// The flag name of a word go accepts as a flag (`-x`, `--x`, `-x=v`,
/// `--x=v`) and its inline value; `None` for anything else.
fn flag_word(word: &str) -> Option<(&str, Option<&str>)> {
    let body = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
        return None;
    }
    Some(match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    })
}

/// The exec flags `GOFLAGS` sets, each with the value go uses (the last
/// setting of a flag wins), in the order of their last setting. A GOFLAGS
/// go would refuse to parse is an error.
pub fn exec_in_goflags(goflags: &str) -> Result<Vec<(String, String)>, GoFlagsError> {
    let mut found: Vec<(String, String)> = Vec::new();
    for word in split_goflags(goflags)? {
        let Some((name, value)) = flag_word(&word) else {
            return Err(GoFlagsError::NotAFlag(word));
        };
        if !EXEC_FLAGS.contains(&name) {
            continue;
        }
        // go: "flag needs an argument" for a value flag without =value.
        let value = value.ok_or_else(|| GoFlagsError::NeedsValue(name.to_owned()))?;
        found.retain(|(f, _)| f != &format!("-{name}"));
        found.push((format!("-{name}"), value.to_string()));
    }
    Ok(found)
}

/// The exec flags of a go command line (`-toolexec=x`, `--toolexec=x`,
/// `-toolexec x`), up to the first argument that is not a flag, as Go's flag
/// package parses it.
pub fn exec_in_args(args: &[String]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_str();
        if word == "--" {
            break;
        }
        let Some((name, inline)) = flag_word(word) else {
            i += 1;
            continue;
        };
        if EXEC_FLAGS.contains(&name) {
            let value = match inline {
                Some(v) => Some(v.to_string()),
                None => {
                    i += 1;
                    args.get(i).cloned()
                }
            };
            if let Some(value) = value {
                found.retain(|(f, _)| f != &format!("-{name}"));
                found.push((format!("-{name}"), value));
            }
        }
        i += 1;
    }
    found
}

/// The linker flags of [`LINKER_FLAGS`] in an `-ldflags` value (Go-quoted
/// words; `-extld=x`, `-extld x`, `--extld=x`).
pub fn exec_in_ldflags(ldflags: &str) -> Vec<(String, String)> {
    let words = split_goflags(ldflags).unwrap_or_else(|_| ldflags.split_whitespace().map(str::to_string).collect());
    let mut found: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some((name, inline)) = flag_word(&words[i]) {
            if LINKER_FLAGS.contains(&name) {
                let value = match inline {
                    Some(v) => v.to_string(),
                    None => {
                        i += 1;
                        words.get(i).cloned().unwrap_or_default()
                    }
                };
                found.retain(|(f, _)| f != &format!("-{name}"));
                found.push((format!("-{name}"), value));
            }
        }
        i += 1;
    }
    found
}

/// Whether a `CGO_*FLAGS` value holds an option that loads or runs a program.
fn runs_cc_program(value: &str) -> bool {
    value.split_whitespace().any(|w| RUNNING_CC_FLAGS.iter().any(|p| w.starts_with(p)))
}

/// Every exec value of `recipe`, with the origin of the field that carries
/// it: the flags of [`EXEC_FLAGS`] in its `GOFLAGS`, the linker flags of
/// [`LINKER_FLAGS`] in its `ldflags` and in a `-ldflags` of its `GOFLAGS`, and
/// its environment variables outside [`SAFE_ENV`] (or `CGO_*FLAGS` holding a
/// [`RUNNING_CC_FLAGS`] option). A GOFLAGS go could not parse yields no go
/// flags here: go refuses it before running anything.
pub fn exec_values(recipe: &Recipe) -> Vec<ExecValue> {
    let mut out = Vec::new();
    let origin_of = |field: &str| recipe.origins.get(field).cloned().unwrap_or(Origin::Default);
    if let Some(goflags) = recipe.env.get("GOFLAGS") {
        let origin = origin_of("env.GOFLAGS");
        for (flag, value) in exec_in_goflags(goflags).unwrap_or_default() {
            out.push(ExecValue { flag, value, field: "env.GOFLAGS".into(), origin: origin.clone() });
        }
        for word in split_goflags(goflags).unwrap_or_default() {
            if let Some(("ldflags", Some(value))) = flag_word(&word) {
                for (flag, value) in exec_in_ldflags(value) {
                    out.push(ExecValue { flag, value, field: "env.GOFLAGS".into(), origin: origin.clone() });
                }
            }
        }
    }
    if let Some(ldflags) = &recipe.ldflags {
        let origin = origin_of("ldflags");
        for (flag, value) in exec_in_ldflags(ldflags) {
            out.push(ExecValue { flag, value, field: "ldflags".into(), origin: origin.clone() });
        }
    }
    for (key, value) in &recipe.env {
        let runs = if CGO_FLAG_ENV.contains(&key.as_str()) {
            runs_cc_program(value)
        } else {
            !SAFE_ENV.contains(&key.as_str())
        };
        if runs {
            let field = format!("env.{key}");
            let origin = origin_of(&field);
            out.push(ExecValue { flag: format!("${key}"), value: value.clone(), field, origin });
        }
    }
    out
}

/// Exec values the commit's own files chose, which a rebuild runs only when
/// the verifier allows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: a value that makes the build run or read what it names; the commit's own recipe files may set one only when \
     the verifier allows it",
    values.iter().map(|v| format!("{} sets {v} (in {})", v.commit_file().unwrap_or("the commit"), v.field)).collect::<Vec<_>>().join("; ")
)]
pub struct ExecRefused {
    /// The values refused.
    pub values: Vec<ExecValue>,
}

/// `Err` naming every value of `recipe.exec` that came from the commit's own files.
pub fn refuse_from_commit(recipe: &Recipe) -> Result<(), ExecRefused> {
    let values: Vec<ExecValue> = recipe.exec.iter().filter(|v| v.from_commit()).cloned().collect();
    if values.is_empty() {
        Ok(())
    } else {
        Err(ExecRefused { values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{merge, Partial, Sourced};

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn goflags_are_split_as_go_splits_them() {
        assert_eq!(split_goflags("  -a\t-b=1\n\"-c=x y\" '-d=\"q\"' ").unwrap(), ["-a", "-b=1", "-c=x y", "-d=\"q\""]);
        assert_eq!(split_goflags("").unwrap(), Vec::<String>::new());
        // Quotes count only at the start of a field.
        assert_eq!(split_goflags("-x='a b'").unwrap(), ["-x='a", "b'"]);
        assert!(split_goflags("-x \"open").is_err());
    }

    #[test]
    fn every_spelling_of_goflags_is_found() {
        for (goflags, want) in [
            ("-toolexec=/src/tools/wrap", vec![("-toolexec", "/src/tools/wrap")]),
            ("--toolexec=/src/tools/wrap", vec![("-toolexec", "/src/tools/wrap")]),
            ("-trimpath '-toolexec=/src/a b' -mod=readonly", vec![("-toolexec", "/src/a b")]),
            ("\"--overlay=/src/o.json\"", vec![("-overlay", "/src/o.json")]),
            ("-modfile=alt.mod -exec=/src/run", vec![("-modfile", "alt.mod"), ("-exec", "/src/run")]),
            // The last setting wins.
            ("-toolexec=/a -toolexec=/b", vec![("-toolexec", "/b")]),
            ("-toolexec= ", vec![("-toolexec", "")]),
            ("-trimpath -mod=mod -ldflags=-toolexec=x", vec![]),
        ] {
            assert_eq!(exec_in_goflags(goflags).unwrap(), pairs(&want), "{goflags:?}");
        }
        for bad in ["-toolexec", "---toolexec=x", "toolexec=x", "-=x", "\"-toolexec=x"] {
            assert!(exec_in_goflags(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_spelling_on_a_command_line_is_found() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (line, want) in [
            (args(&["build", "-toolexec=/x", "."]), vec![("-toolexec", "/x")]),
            (args(&["build", "--toolexec=/x", "."]), vec![("-toolexec", "/x")]),
            (args(&["build", "-toolexec", "/x", "."]), vec![("-toolexec", "/x")]),
            (
                args(&["build", "--overlay", "o.json", "-modfile=a.mod", "."]),
                vec![("-overlay", "o.json"), ("-modfile", "a.mod")],
            ),
            (args(&["build", "-ldflags=-toolexec=x", "-o", "/out/x", "."]), vec![]),
            (args(&["build", "--", "-toolexec=x"]), vec![]),
        ] {
            assert_eq!(exec_in_args(&line), pairs(&want), "{line:?}");
        }
    }

    #[test]
    fn linker_flags_and_environment_that_run_programs_are_found() {
        let file = Origin::RecipeFile("reprove.toml".into());
        let env = |pairs: &[(&str, &str)]| Partial {
            env: pairs.iter().map(|(k, v)| (k.to_string(), Sourced::new(v.to_string(), file.clone()))).collect(),
            ..Partial::default()
        };
        let flags = |r: &Recipe| r.exec.iter().map(|e| (e.flag.clone(), e.field.clone())).collect::<Vec<_>>();
        let r = merge(&[env(&[
            ("CC", "/src/tools/cc"),
            ("PATH", "/src/bin:/usr/bin"),
            ("GOCACHEPROG", "/src/cache"),
            ("CGO_CFLAGS_ALLOW", ".*"),
            ("CGO_CFLAGS", "-O2 -fplugin=/src/evil.so"),
            ("CGO_LDFLAGS", "-O2 -g"),
            ("GOOS", "linux"),
            ("CGO_ENABLED", "1"),
            ("GOFLAGS", "-trimpath -ldflags=-extld=/src/ld -compiler=gccgo"),
        ])]);
        let got = flags(&r);
        for want in [
            ("$CC", "env.CC"),
            ("$PATH", "env.PATH"),
            ("$GOCACHEPROG", "env.GOCACHEPROG"),
            ("$CGO_CFLAGS_ALLOW", "env.CGO_CFLAGS_ALLOW"),
            ("$CGO_CFLAGS", "env.CGO_CFLAGS"),
            ("-compiler", "env.GOFLAGS"),
            ("-extld", "env.GOFLAGS"),
        ] {
            assert!(got.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {got:?}");
        }
        for safe in ["$CGO_LDFLAGS", "$GOOS", "$CGO_ENABLED", "$GOFLAGS"] {
            assert!(!got.iter().any(|(f, _)| f == safe), "{safe} in {got:?}");
        }
        assert!(refuse_from_commit(&r).is_err());
        let ld = Partial {
            ldflags: Some(Sourced::new("-s -w -extldflags '-B/src/x'".into(), file.clone())),
            ..Partial::default()
        };
        let r = merge(&[ld]);
        assert_eq!(flags(&r), [("-extldflags".to_string(), "ldflags".to_string())]);
        assert_eq!(r.exec[0].value, "-B/src/x");
        assert_eq!(exec_in_ldflags("-extld /src/ld -X main.v=1"), pairs(&[("-extld", "/src/ld")]));
        // From the reference's build info (the same party): refused too.
        let from_ref = Partial {
            env: [(
                "CGO_CFLAGS".to_string(),
                Sourced::new("-fplugin=x.so".to_string(), Origin::Reference("CGO_CFLAGS".into())),
            )]
            .into(),
            ..Partial::default()
        };
        assert!(refuse_from_commit(&merge(&[from_ref])).is_err());
    }

    #[test]
    fn the_merged_goflags_decide_with_their_origin() {
        let file = Origin::RecipeFile("reprove.toml".into());
        let layer = |v: &str, o: &Origin| Partial {
            env: [("GOFLAGS".to_string(), Sourced::new(v.to_string(), o.clone()))].into(),
            ..Partial::default()
        };
        let r = merge(&[layer("--toolexec=/src/tools/wrap -trimpath", &file)]);
        assert_eq!(
            r.exec,
            [ExecValue {
                flag: "-toolexec".into(),
                value: "/src/tools/wrap".into(),
                field: "env.GOFLAGS".into(),
                origin: file.clone()
            }]
        );
        let e = refuse_from_commit(&r).unwrap_err().to_string();
        assert!(e.contains("reprove.toml sets -toolexec=/src/tools/wrap"), "{e}");
        // The verifier's own GOFLAGS replace the file's: nothing runs from the commit.
        let r = merge(&[layer("-trimpath", &Origin::Flag), layer("-toolexec=/src/x", &file)]);
        assert!(r.exec.is_empty());
        // The verifier's own choice is recorded, and allowed.
        let r = merge(&[layer("-toolexec=/usr/local/bin/stamp", &Origin::Flag)]);
        assert_eq!(r.exec.len(), 1);
        assert!(refuse_from_commit(&r).is_ok());
        let g = Origin::Goreleaser(".goreleaser.yaml#app".into());
        let r = merge(&[layer("-overlay=/src/o.json", &g)]);
        let e = refuse_from_commit(&r).unwrap_err();
        assert_eq!(e.values[0].commit_file(), Some(".goreleaser.yaml"));
    }
}
