//! Merging partial recipes from several inputs, each value with its origin.
//!
//! Precedence, highest first: command-line flags, `REPROVE_*` environment
//! variables, `reprove.toml`, a `.goreleaser.yaml` build entry, inference from
//! the reference binary, defaults. [`merge`] takes the inputs in that order.
//! When two inputs set a field to different values the higher one wins and a
//! [`Conflict`] records both, so the report can say which won. An undetermined
//! field stays listed only while no input supplies it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{default_output_name, BuildVcs, Origin, Recipe, Undetermined};

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Its origin.
    pub origin: Origin,
}

impl<T> Sourced<T> {
    /// `value` from `origin`.
    pub fn new(value: T, origin: Origin) -> Sourced<T> {
        Sourced { value, origin }
    }
}

/// What one input says about the recipe: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    /// The package to build.
    pub package: Option<Sourced<String>>,
    /// `GOOS`.
    pub goos: Option<Sourced<String>>,
    /// `GOARCH`.
    pub goarch: Option<Sourced<String>>,
    /// Build environment variables, merged key by key.
    pub env: BTreeMap<String, Sourced<String>>,
    /// `-trimpath`.
    pub trimpath: Option<Sourced<bool>>,
    /// `-ldflags`; `Some("")` means explicitly none.
    pub ldflags: Option<Sourced<String>>,
    /// `-gcflags`.
    pub gcflags: Option<Sourced<String>>,
    /// `-asmflags`.
    pub asmflags: Option<Sourced<String>>,
    /// `-tags`.
    pub tags: Option<Sourced<Vec<String>>>,
    /// `-buildmode`.
    pub buildmode: Option<Sourced<String>>,
    /// `-buildvcs`.
    pub buildvcs: Option<Sourced<BuildVcs>>,
    /// `-pgo`.
    pub pgo: Option<Sourced<String>>,
    /// The output file name.
    pub output_name: Option<Sourced<String>>,
    /// The Go version.
    pub go_version: Option<Sourced<String>>,
    /// `-race`, `-msan`, `-asan`, `-cover`.
    pub extra_flags: Option<Sourced<Vec<String>>>,
    /// The reference's `DefaultGODEBUG` (only inference sets it).
    pub default_godebug: Option<Sourced<String>>,
    /// The reference's `vcs.revision` (only inference sets it).
    pub revision: Option<Sourced<String>>,
    /// What this input could not determine.
    pub undetermined: Vec<Undetermined>,
    /// What this input set that reprove left out on purpose, and why.
    pub notes: Vec<String>,
}

/// Two inputs that set one field differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The field (`ldflags`, `env.CGO_ENABLED`, ...).
    pub field: String,
    /// The value used, as text.
    pub used: String,
    /// Where the value used came from.
    pub used_origin: Origin,
    /// The value overridden, as text.
    pub overridden: String,
    /// Where the overridden value came from.
    pub overridden_origin: Origin,
}

fn pick<T: Clone + PartialEq + std::fmt::Debug>(
    field: &str,
    layers: &[&Option<Sourced<T>>],
    show: impl Fn(&T) -> String,
    conflicts: &mut Vec<Conflict>,
) -> Option<Sourced<T>> {
    let mut set = layers.iter().filter_map(|l| l.as_ref());
    let winner = set.next()?.clone();
    for other in set {
        if other.value != winner.value {
            conflicts.push(Conflict {
                field: field.to_string(),
                used: show(&winner.value),
                used_origin: winner.origin.clone(),
                overridden: show(&other.value),
                overridden_origin: other.origin.clone(),
            });
        }
    }
    Some(winner)
}

/// The Go name of the machine reprove runs on, for the `GOOS`/`GOARCH` defaults.
pub fn host_goos_goarch() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    (os, arch)
}

/// Merges `layers`, highest precedence first, over reprove's defaults.
///
/// Every field of the result has an entry in [`Recipe::origins`] (env
/// variables as `env.NAME`); conflicts go to [`Recipe::conflicts`]; an
/// undetermined field that some layer supplied is dropped from
/// [`Recipe::undetermined`].
pub fn merge(layers: &[Partial]) -> Recipe {
    let mut conflicts = Vec::new();
    let mut origins = BTreeMap::new();
    macro_rules! field {
        ($name:ident, $show:expr) => {{
            let refs: Vec<&Option<Sourced<_>>> = layers.iter().map(|l| &l.$name).collect();
            let got = pick(stringify!($name), &refs, $show, &mut conflicts);
            if let Some(s) = &got {
                origins.insert(stringify!($name).to_string(), s.origin.clone());
            }
            got.map(|s| s.value)
        }};
    }
    let text = |s: &String| s.clone();
    let (host_os, host_arch) = host_goos_goarch();
    let package = field!(package, text);
    let goos = field!(goos, text);
    let goarch = field!(goarch, text);
    let trimpath = field!(trimpath, |b: &bool| b.to_string());
    let ldflags = field!(ldflags, text);
    let gcflags = field!(gcflags, text);
    let asmflags = field!(asmflags, text);
    let tags = field!(tags, |t: &Vec<String>| t.join(","));
    let buildmode = field!(buildmode, text);
    let buildvcs = field!(buildvcs, |b: &BuildVcs| b.as_str().to_string());
    let pgo = field!(pgo, text);
    let output_name = field!(output_name, text);
    let go_version = field!(go_version, text);
    let extra_flags = field!(extra_flags, |t: &Vec<String>| t.join(" "));
    let default_godebug = field!(default_godebug, text);
    let revision = field!(revision, text);

    let mut env = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> = layers.iter().flat_map(|l| l.env.keys()).collect();
    for key in keys {
        let values: Vec<Option<Sourced<String>>> = layers.iter().map(|l| l.env.get(key).cloned()).collect();
        let refs: Vec<&Option<Sourced<String>>> = values.iter().collect();
        if let Some(s) = pick(&format!("env.{key}"), &refs, text, &mut conflicts) {
            origins.insert(format!("env.{key}"), s.origin);
            env.insert(key.clone(), s.value);
        }
    }

    let package = package.unwrap_or_else(|| {
        origins.insert("package".into(), Origin::Default);
        ".".to_string()
    });
    let mut default = |name: &str, value: &str| {
        origins.insert(name.to_string(), Origin::Default);
        value.to_string()
    };
    let goos = goos.unwrap_or_else(|| default("goos", host_os));
    let goarch = goarch.unwrap_or_else(|| default("goarch", host_arch));
    let mut output_name = output_name.unwrap_or_else(|| default("output_name", &default_output_name(&package)));
    // go build names a Windows binary NAME.exe unless told otherwise.
    let derived = matches!(origins.get("output_name"), Some(Origin::Default | Origin::Reference(_)));
    if derived && goos == "windows" && !output_name.ends_with(".exe") {
        output_name.push_str(".exe");
    }
    for name in ["trimpath", "buildvcs"] {
        origins.entry(name.to_string()).or_insert(Origin::Default);
    }

    let mut recipe = Recipe::new(&package, &goos, &goarch);
    recipe.env = env;
    recipe.trimpath = trimpath.unwrap_or(false);
    recipe.ldflags = ldflags.filter(|s| !s.is_empty());
    recipe.gcflags = gcflags.filter(|s| !s.is_empty());
    recipe.asmflags = asmflags.filter(|s| !s.is_empty());
    recipe.tags = tags.unwrap_or_default();
    recipe.buildmode = buildmode.filter(|s| !s.is_empty());
    recipe.buildvcs = buildvcs.unwrap_or_default();
    recipe.pgo = pgo.filter(|s| !s.is_empty());
    recipe.output_name = output_name;
    recipe.go_version = go_version;
    recipe.extra_flags = extra_flags.unwrap_or_default();
    recipe.default_godebug = default_godebug;
    recipe.revision = revision;
    recipe.conflicts = conflicts;
    recipe.notes = layers.iter().flat_map(|l| l.notes.iter().cloned()).collect();
    let mut undetermined: Vec<Undetermined> = Vec::new();
    for u in layers.iter().flat_map(|l| l.undetermined.iter()) {
        let supplied = origins.get(&u.field).is_some_and(|o| *o != Origin::Default);
        if !supplied && !undetermined.iter().any(|x| x.field == u.field) {
            undetermined.push(u.clone());
        }
    }
    // Cgo flags matter only to a cgo build.
    if recipe.env.get("CGO_ENABLED").map(String::as_str) == Some("0") {
        undetermined.retain(|u| u.field != "cgo-flags");
    }
    recipe.undetermined = undetermined;
    recipe.origins = origins;
    recipe.exec = super::exec::exec_values(&recipe);
    recipe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgo_flags_matter_only_with_cgo() {
        let reference = Partial {
            env: [("CGO_ENABLED".to_string(), Sourced::new("1".to_string(), Origin::Reference("CGO_ENABLED".into())))]
                .into(),
            undetermined: vec![Undetermined { field: "cgo-flags".into(), reason: "trimpath".into() }],
            ..Partial::default()
        };
        assert_eq!(merge(std::slice::from_ref(&reference)).undetermined.len(), 1);
        let flags = Partial {
            env: [("CGO_ENABLED".to_string(), Sourced::new("0".to_string(), Origin::Flag))].into(),
            ..Partial::default()
        };
        let r = merge(&[flags, reference]);
        assert!(r.undetermined.is_empty(), "{:?}", r.undetermined);
        assert_eq!(r.conflicts.len(), 1);
    }

    #[test]
    fn higher_layer_wins_and_conflict_is_recorded() {
        let file = Origin::RecipeFile("reprove.toml".into());
        let reference = Origin::Reference("-tags".into());
        let a = Partial {
            tags: Some(Sourced::new(vec!["netgo".into()], file.clone())),
            ldflags: Some(Sourced::new("-s -w".into(), file.clone())),
            ..Partial::default()
        };
        let b = Partial {
            tags: Some(Sourced::new(vec!["osusergo".into()], reference.clone())),
            trimpath: Some(Sourced::new(true, Origin::Reference("-trimpath".into()))),
            undetermined: vec![
                Undetermined { field: "ldflags".into(), reason: "not recorded".into() },
                Undetermined { field: "pgo".into(), reason: "path".into() },
            ],
            ..Partial::default()
        };
        let r = merge(&[a, b]);
        assert_eq!(r.tags, ["netgo"]);
        assert!(r.trimpath);
        assert_eq!(r.origins["tags"], file);
        assert_eq!(r.origins["goos"], Origin::Default);
        assert_eq!(r.conflicts.len(), 1);
        assert_eq!(r.conflicts[0].field, "tags");
        assert_eq!(r.conflicts[0].overridden_origin, reference);
        assert_eq!(r.undetermined.iter().map(|u| u.field.as_str()).collect::<Vec<_>>(), ["pgo"]);
    }
}
