//! The build recipe: everything `go build` needs besides the source, the
//! modules and the toolchain, and where each part of it came from.
//!
//! A recipe is assembled from command-line flags, a `reprove.toml` in the
//! repository, a `.goreleaser.yaml` build entry, or inferred from the reference
//! binary's own build info. Each field remembers its [`Origin`] so that a report
//! can say why the rebuild used it, and what could not be determined is listed
//! in [`Recipe::undetermined`] rather than guessed.
//!
//! # Design notes
//!
//! How to build, and why. `lib.rs` is the `Recipe` (package,
//! GOOS/GOARCH, env, flags, Go version, output name) with `go_build_args` and
//! `build_env`; `infer.rs` reads it from a reference's build info following
//! `cmd/go/internal/load.setBuildInfo` (what Go records and when: no `-ldflags`
//! and cgo flags under `-trimpath`, `-pgo` as a path, no dep sums under
//! `-mod=vendor`); `file.rs` is `reprove.toml` and the `REPROVE_*` variables;
//! `goreleaser.rs` a `.goreleaser.yaml` build entry with its matrix and
//! templates; `platform.rs` the reference's platform, which picks the
//! goreleaser target when none is given; `merge.rs` the precedence merge (flags > `REPROVE_*` >
//! `reprove.toml` > goreleaser > reference > defaults) with an `Origin` per value
//! and a `Conflict` whenever two inputs disagree; `exec.rs` finds the values
//! that make the build run or read what they name (`-toolexec`, `-exec`,
//! `-overlay`, `-modfile` in `GOFLAGS`, split by Go's rules) as
//! `Recipe::exec`, with the origin of the field carrying them; `resolve.rs` assembles a
//! source tree's inputs; `lock.rs` is `reprove.lock` (Go version → toolchain
//! image by digest) and `reprove toolchain lock`.
//!
//! **Invariant:** nothing is guessed silently: every value carries its origin
//! (`Default` included), and what no input determines is listed in
//! `Recipe::undetermined` with the reason and how to supply it; an unknown key,
//! template, function or flag is an error, never dropped.
//!
//! **Invariant:** inference is measured: `tests/it/recipe_infer.rs` rebuilds a
//! matrix of real `go` builds from the inferred recipe, bit for bit.
//!
//! **Invariant:** a recipe value that runs code is never silent: `Recipe::exec`
//! lists it whatever its layer; from the commit's own files a rebuild refuses
//! it unless the verifier allows it (`RecipeInputs::allow_exec`).
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod exec;
pub mod file;
pub mod goreleaser;
pub mod infer;
pub mod lock;
pub mod merge;
pub mod platform;
pub mod resolve;

pub use exec::{exec_values, refuse_from_commit, ExecRefused, ExecValue};
pub use file::{partial_from_env, RecipeFile, RecipeFileError};
pub use goreleaser::{Goreleaser, GoreleaserBuild, GoreleaserError, Target, TemplateValues};
pub use infer::{infer, infer_partial};
pub use lock::{lock_toolchain, LockError, LockFile};
pub use merge::{merge, Conflict, Partial, Sourced};
pub use platform::ReferencePlatform;
pub use resolve::{locked_toolchain, resolve, Inputs, ResolveError, Resolved};

/// How `go build -buildvcs` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildVcs {
    /// `-buildvcs=false`: no VCS stamping; the build sees no `.git`.
    #[default]
    False,
    /// `-buildvcs=true`: stamp `vcs.*` from a clean checkout of the commit.
    True,
    /// `-buildvcs=auto`: Go's default.
    Auto,
}

impl BuildVcs {
    /// The flag value Go accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildVcs::False => "false",
            BuildVcs::True => "true",
            BuildVcs::Auto => "auto",
        }
    }
}

/// Where a recipe field's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// A `REPROVE_*` environment variable, by its name.
    Environment(String),
    /// A recipe file in the repository (`reprove.toml`), by its path in the repository.
    RecipeFile(String),
    /// A `.goreleaser.yaml` build entry, by its path and build id.
    Goreleaser(String),
    /// The reference binary's build info, by the build setting it was read from.
    Reference(String),
    /// A `.goreleaser.yaml` build entry (by its path and build id) whose
    /// target was chosen by the reference's platform (its build info's
    /// `GOOS`/`GOARCH`/level, confirmed by its header).
    ReferencePlatform(String),
    /// reprove's default, or Go's.
    Default,
}

/// A recipe field that neither the inputs nor the reference could determine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undetermined {
    /// The recipe field, e.g. `ldflags`.
    pub field: String,
    /// Why it could not be determined and how the user can supply it.
    pub reason: String,
}

/// How to build the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    /// The package to build, as given to `go build` (`.`, `./cmd/app`, or an import path).
    pub package: String,
    /// Target operating system (`GOOS`).
    pub goos: String,
    /// Target architecture (`GOARCH`).
    pub goarch: String,
    /// Further build environment: `CGO_ENABLED`, `GOAMD64`, `GOARM`, `GO386`,
    /// `GOEXPERIMENT`, `GOFLAGS`, ... Only these variables (plus the ones the
    /// pipeline itself sets) reach the build.
    pub env: BTreeMap<String, String>,
    /// `-trimpath`.
    pub trimpath: bool,
    /// `-ldflags`, verbatim (one argument; never split by a shell).
    pub ldflags: Option<String>,
    /// `-gcflags`, verbatim.
    pub gcflags: Option<String>,
    /// `-asmflags`, verbatim.
    pub asmflags: Option<String>,
    /// `-tags`, in order.
    pub tags: Vec<String>,
    /// `-buildmode`, when not Go's default.
    pub buildmode: Option<String>,
    /// `-buildvcs`.
    pub buildvcs: BuildVcs,
    /// `-pgo`, when set (`off`, `auto` or a profile path in the source tree).
    pub pgo: Option<String>,
    /// The file name of the built binary.
    pub output_name: String,
    /// The Go version the recipe requires (`go1.22.5`); the toolchain image must
    /// contain exactly this version.
    pub go_version: Option<String>,
    /// Where each field came from, by field name.
    pub origins: BTreeMap<String, Origin>,
    /// Fields that could not be determined.
    pub undetermined: Vec<Undetermined>,
    /// Boolean build flags the reference records as settings (`-race`,
    /// `-msan`, `-asan`, `-cover`), passed to `go build` as given.
    #[serde(default)]
    pub extra_flags: Vec<String>,
    /// The `DefaultGODEBUG` the reference records. It is not a build input:
    /// Go derives it from the main module's `go` line and its `godebug` and
    /// `//go:debug` directives, so a rebuild of the right source reproduces it;
    /// a difference points at the source, not at the recipe.
    #[serde(default)]
    pub default_godebug: Option<String>,
    /// The commit the reference was stamped with (`vcs.revision`), when it was.
    #[serde(default)]
    pub revision: Option<String>,
    /// Values that two inputs set differently, with the one that won.
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// What an input set that reprove left out on purpose, and why (for
    /// example a goreleaser `env: [GOPROXY=…]`: reprove controls module fetching).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Values that make the build run or read what they name (`-toolexec`,
    /// `-exec`, `-overlay`, `-modfile` in `GOFLAGS`), with their origin; see
    /// [`exec`].
    #[serde(default)]
    pub exec: Vec<ExecValue>,
}

impl Recipe {
    /// A recipe for `package` with Go's defaults for everything else.
    pub fn new(package: &str, goos: &str, goarch: &str) -> Recipe {
        let output_name = package.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty() && *s != ".");
        Recipe {
            package: package.to_string(),
            goos: goos.to_string(),
            goarch: goarch.to_string(),
            env: BTreeMap::new(),
            trimpath: false,
            ldflags: None,
            gcflags: None,
            asmflags: None,
            tags: Vec::new(),
            buildmode: None,
            buildvcs: BuildVcs::default(),
            pgo: None,
            output_name: output_name.unwrap_or("main").to_string(),
            go_version: None,
            origins: BTreeMap::new(),
            undetermined: Vec::new(),
            extra_flags: Vec::new(),
            default_godebug: None,
            revision: None,
            conflicts: Vec::new(),
            notes: Vec::new(),
            exec: Vec::new(),
        }
    }

    /// The arguments after `go`: `build -o OUTPUT [flags] PACKAGE`. Each flag
    /// is one argument, so values with spaces need no quoting.
    pub fn go_build_args(&self, output: &str) -> Vec<String> {
        let mut args = vec!["build".to_string(), "-o".to_string(), output.to_string()];
        if self.trimpath {
            args.push("-trimpath".to_string());
        }
        args.push(format!("-buildvcs={}", self.buildvcs.as_str()));
        args.extend(self.extra_flags.iter().cloned());
        if let Some(mode) = &self.buildmode {
            args.push(format!("-buildmode={mode}"));
        }
        if !self.tags.is_empty() {
            args.push(format!("-tags={}", self.tags.join(",")));
        }
        for (flag, value) in [("-ldflags", &self.ldflags), ("-gcflags", &self.gcflags), ("-asmflags", &self.asmflags)] {
            if let Some(value) = value {
                args.push(format!("{flag}={value}"));
            }
        }
        if let Some(pgo) = &self.pgo {
            args.push(format!("-pgo={pgo}"));
        }
        args.push(self.package.clone());
        args
    }

    /// The `go build` command line as a shell would need it, each argument
    /// quoted when it has to be: for showing to people, never for running.
    pub fn command_line(&self, output: &str) -> String {
        let mut words = vec!["go".to_string()];
        words.extend(self.go_build_args(output));
        let env: Vec<String> = self.build_env().into_iter().map(|(k, v)| format!("{k}={}", shell_quote(&v))).collect();
        let args: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        if env.is_empty() {
            args.join(" ")
        } else {
            format!("{} {}", env.join(" "), args.join(" "))
        }
    }

    /// The recipe's part of the build environment: `GOOS`, `GOARCH` and
    /// [`Recipe::env`]. The pipeline adds its own (`GOTOOLCHAIN=local`,
    /// `GOPROXY=off`, caches, `HOME`).
    pub fn build_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("GOOS".to_string(), self.goos.clone()), ("GOARCH".to_string(), self.goarch.clone())];
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

/// `word` quoted for a POSIX shell when it contains anything but safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The file name `go build` gives the binary of `package` by default: the last
/// path element, skipping a major-version suffix (`/v2`), `main` for `.`.
pub fn default_output_name(package: &str) -> String {
    let elems: Vec<&str> = package.trim_end_matches('/').split('/').filter(|e| !e.is_empty() && *e != ".").collect();
    let is_major = |e: &str| {
        e.len() > 1 && e.starts_with('v') && e[1..].bytes().all(|b| b.is_ascii_digit()) && !e[1..].starts_with('0')
    };
    match elems.as_slice() {
        [] => "main".to_string(),
        [.., prev, last] if is_major(last) => (*prev).to_string(),
        [.., last] => (*last).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_keep_each_flag_one_argument() {
        let mut r = Recipe::new("./cmd/app", "linux", "amd64");
        r.trimpath = true;
        r.tags = vec!["netgo".into(), "osusergo".into()];
        r.ldflags = Some("-s -w -X main.version=1.2.3".into());
        assert_eq!(
            r.go_build_args("/out/app"),
            [
                "build",
                "-o",
                "/out/app",
                "-trimpath",
                "-buildvcs=false",
                "-tags=netgo,osusergo",
                "-ldflags=-s -w -X main.version=1.2.3",
                "./cmd/app"
            ]
        );
        assert_eq!(r.output_name, "app");
        assert_eq!(Recipe::new(".", "linux", "arm64").output_name, "main");
    }
}
