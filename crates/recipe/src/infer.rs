//! Inferring the recipe from the reference binary's build info.
//!
//! This follows what Go's `cmd/go/internal/load.(*Package).setBuildInfo`
//! records (Go ≥ 1.18):
//!
//! - `-asan`, `-msan`, `-race`, `-cover` as `true` when set; `-asmflags` when
//!   given; `-buildmode` always (`exe` for the default); `-compiler` always;
//!   `-gcflags` when non-empty (gc only); `-tags` when non-empty (comma-joined);
//!   `-trimpath=true` when set; `DefaultGODEBUG` when non-empty;
//!   `CGO_ENABLED` always; `GOARCH`, `GOOS` always; `GOEXPERIMENT` when set;
//!   `GOFIPS140` when FIPS mode is on; the architecture level variable of the
//!   target (`GOAMD64`, `GOARM`, `GOARM64`, `GO386`, `GOMIPS`, `GOMIPS64`,
//!   `GOPPC64`, `GORISCV64`, `GOWASM`) when non-empty.
//! - `-ldflags` only when non-empty **and without `-trimpath`** (go.dev/issue/52372);
//!   `CGO_CFLAGS`, `CGO_CPPFLAGS`, `CGO_CXXFLAGS`, `CGO_LDFLAGS` only when cgo is
//!   enabled and without `-trimpath` (recorded even when empty).
//! - `-pgo` (added by `setPGOProfilePath`) with the profile's absolute path, or
//!   its base name under `-trimpath`.
//! - `vcs`, `vcs.revision`, `vcs.time`, `vcs.modified` when VCS stamping happened.
//! - A dependency's `h1:` sum is omitted when the build used `-mod=vendor`.
//!
//! Go replaces newlines in every recorded value with spaces
//! (`appendBuildSetting`); a value is used as recorded.
//!
//! Nothing is guessed: what the build info cannot tell is listed as
//! undetermined with the reason and how to supply it.

use bstr::ByteSlice;
use stdx::setting::Setting;

use super::merge::{merge, Partial, Sourced};
use super::{BuildVcs, Origin, Recipe, Undetermined};
use goinfo::BuildInfo;

/// The architecture level variables Go records (`cmd/go/internal/cfg.GetArchEnv`).
pub const ARCH_LEVEL_VARS: &[&str] =
    &["GOAMD64", "GOARM", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64", "GOWASM"];

/// The cgo flag variables Go records when cgo is on and `-trimpath` is off.
pub const CGO_FLAG_VARS: &[&str] = &["CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS"];

/// The recipe the reference's build info determines, merged over the defaults.
pub fn infer(bi: &BuildInfo) -> Recipe {
    merge(&[infer_partial(bi)])
}

fn reference(setting: &str) -> Origin {
    Origin::Reference(setting.to_string())
}

fn undet(list: &mut Vec<Undetermined>, field: &str, reason: String) {
    list.push(Undetermined { field: field.to_string(), reason });
}

/// Go records `-tags` comma-separated.
fn split_tags(value: &str) -> Vec<String> {
    value.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// Whether `version` (`go1.21.0`, `go1.22rc1`) is at least go1.`minor`.
fn go_minor_at_least(version: &str, minor: u32) -> Option<bool> {
    let rest = version.strip_prefix("go1.")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse::<u32>().ok().map(|m| m >= minor)
}

/// What the reference's build info says about the recipe, field by field, each
/// with [`Origin::Reference`] naming the setting it was read from.
pub fn infer_partial(bi: &BuildInfo) -> Partial {
    let mut p = Partial::default();
    let mut settings: Vec<(String, String)> = Vec::new();
    for s in &bi.settings {
        match (s.key.to_str(), s.value.to_str()) {
            (Ok(k), Ok(v)) => settings.push((k.to_string(), v.to_string())),
            _ => undet(
                &mut p.undetermined,
                "settings",
                format!("the build setting {:?} is not valid UTF-8 and was ignored", s.key.to_str_lossy()),
            ),
        }
    }
    let get = |key: &str| settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());

    // Go version: runtime.Version(), possibly followed by " X:experiments".
    let version = bi.go_version.to_str_lossy();
    let version = version.split_whitespace().next().unwrap_or("");
    let go_version = if version.starts_with("go1") || version.starts_with("go2") {
        Some(version.to_string())
    } else {
        undet(
            &mut p.undetermined,
            "go_version",
            format!(
                "the reference was built by the toolchain {:?}, not a Go release; give {} or a toolchain",
                bi.go_version.to_str_lossy(),
                Setting::GoVersion
            ),
        );
        None
    };

    // The package, relative to the main module.
    let path = bi.path.to_str_lossy().into_owned();
    let main = bi.main.path.to_str_lossy().into_owned();
    if path == "command-line-arguments" {
        undet(
            &mut p.undetermined,
            "package",
            format!(
                "the reference was built from a list of .go files (command-line-arguments); \
                 give the package with {} or in reprove.toml",
                Setting::Package
            ),
        );
    } else if bi.main.is_empty() || main.is_empty() {
        undet(
            &mut p.undetermined,
            "package",
            format!(
                "the reference was built outside module mode (package {path:?}, no main module); \
                 give the package with {} or in reprove.toml",
                Setting::Package
            ),
        );
    } else if path == main {
        p.package = Some(Sourced::new(".".into(), reference("path")));
    } else if let Some(rel) = path.strip_prefix(&main).and_then(|r| r.strip_prefix('/')) {
        p.package = Some(Sourced::new(format!("./{rel}"), reference("path")));
    } else {
        undet(
            &mut p.undetermined,
            "package",
            format!(
                "the main package {path:?} is outside the main module {main:?}; give the package with {}",
                Setting::Package
            ),
        );
    }
    if let Some(v) = &go_version {
        p.go_version = Some(Sourced::new(v.clone(), reference("go version")));
    }
    if main.is_empty() {
        // Fine: reported above.
    } else if let Some(pkg) = &p.package {
        p.output_name = Some(Sourced::new(
            super::default_output_name(&format!("{main}/{}", pkg.value.trim_start_matches("./"))),
            reference("path"),
        ));
    }

    if settings.is_empty() {
        let pre118 = go_version.as_deref().and_then(|v| go_minor_at_least(v, 18)) == Some(false);
        let why = if pre118 {
            "Go before 1.18 does not record build settings"
        } else {
            "the reference records no build settings"
        };
        for field in ["goos", "goarch", "trimpath", "ldflags", "tags", "env.CGO_ENABLED", "buildvcs"] {
            undet(&mut p.undetermined, field, format!("{why}; give it with a flag or in reprove.toml"));
        }
        return p;
    }

    let trimpath = get("-trimpath") == Some("true");
    p.trimpath = Some(Sourced::new(trimpath, reference("-trimpath")));
    match get("-ldflags") {
        Some(v) => p.ldflags = Some(Sourced::new(v.to_string(), reference("-ldflags"))),
        None if trimpath => undet(
            &mut p.undetermined,
            "ldflags",
            format!(
                "Go does not record -ldflags under -trimpath (go.dev/issue/52372); \
                 give them with {}, in reprove.toml or a .goreleaser.yaml build",
                Setting::Ldflags
            ),
        ),
        None => p.ldflags = Some(Sourced::new(String::new(), reference("-ldflags"))),
    }
    for (key, field) in [("-gcflags", "gcflags"), ("-asmflags", "asmflags")] {
        let value = Sourced::new(get(key).unwrap_or("").to_string(), reference(key));
        match field {
            "gcflags" => p.gcflags = Some(value),
            _ => p.asmflags = Some(value),
        }
    }
    p.tags = Some(Sourced::new(get("-tags").map(split_tags).unwrap_or_default(), reference("-tags")));
    match get("-buildmode") {
        // "exe" is what Go records for the default; pass it on only when it is not.
        Some("exe") | None => {
            p.buildmode = Some(Sourced::new(String::new(), reference("-buildmode")));
            // Where the default is pie (internal/platform.DefaultPIE), "exe"
            // is recorded both for the default and for an explicit
            // -buildmode=exe, which link differently.
            let goos = get("GOOS").unwrap_or("");
            let race = get("-race") == Some("true");
            let default_pie = matches!(goos, "android" | "ios" | "darwin") || (goos == "windows" && !race);
            if default_pie && get("-buildmode").is_some() {
                p.notes.push(format!(
                    "-buildmode=exe is recorded both for go build's default (pie on {goos}) and for an explicit \
                     -buildmode=exe; the recipe uses the default (give {}=exe for the other)",
                    Setting::Buildmode
                ));
            }
        }
        Some(mode) => p.buildmode = Some(Sourced::new(mode.to_string(), reference("-buildmode"))),
    }
    if let Some(compiler) = get("-compiler").filter(|c| *c != "gc") {
        undet(
            &mut p.undetermined,
            "compiler",
            format!("the reference was built with -compiler={compiler}; reprove rebuilds with gc"),
        );
    }
    let extra: Vec<String> = ["-asan", "-cover", "-msan", "-race"]
        .iter()
        .filter(|f| get(f) == Some("true"))
        .map(|f| f.to_string())
        .collect();
    p.extra_flags = Some(Sourced::new(extra, reference("-race/-msan/-asan/-cover")));

    // -pgo: absent means no profile was used; since Go 1.21 the default is
    // auto, so a rebuild must say off in case the tree has a default.pgo.
    match get("-pgo") {
        None => {
            if go_version.as_deref().and_then(|v| go_minor_at_least(v, 21)) == Some(true) {
                p.pgo = Some(Sourced::new("off".into(), reference("-pgo")));
            }
        }
        Some(file) => {
            let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
            if base == "default.pgo" {
                p.pgo = Some(Sourced::new("auto".into(), reference("-pgo")));
            } else {
                undet(
                    &mut p.undetermined,
                    "pgo",
                    format!(
                        "the reference used the profile {file:?}, whose place in the source tree is not recorded; \
                         give it with {} or in reprove.toml",
                        Setting::Pgo
                    ),
                );
            }
        }
    }

    for key in ["GOOS", "GOARCH"] {
        match get(key) {
            Some(v) if key == "GOOS" => p.goos = Some(Sourced::new(v.to_string(), reference(key))),
            Some(v) => p.goarch = Some(Sourced::new(v.to_string(), reference(key))),
            None => undet(&mut p.undetermined, &key.to_lowercase(), format!("the reference does not record {key}")),
        }
    }
    let mut env_keys: Vec<&str> = vec!["CGO_ENABLED", "GOEXPERIMENT", "GOFIPS140"];
    env_keys.extend(ARCH_LEVEL_VARS);
    for key in env_keys {
        if let Some(v) = get(key) {
            p.env.insert(key.to_string(), Sourced::new(v.to_string(), reference(key)));
        }
    }
    let cgo = get("CGO_ENABLED") == Some("1");
    if cgo {
        p.notes.push(
            "CGO_ENABLED=1: if a package of the binary uses cgo, the rebuild also depends on the C toolchain \
             in the image (compiler, headers, libc), which the build info does not record"
                .to_string(),
        );
    }
    if cgo && trimpath {
        undet(
            &mut p.undetermined,
            "cgo-flags",
            format!(
                "Go does not record CGO_CFLAGS, CGO_CPPFLAGS, CGO_CXXFLAGS or CGO_LDFLAGS under -trimpath; \
                 give them with {} if the release set them",
                Setting::Env
            ),
        );
    }
    for key in CGO_FLAG_VARS {
        // Recorded even when empty, and empty means unset (cfg.Getenv).
        if let Some(v) = get(key).filter(|v| !v.is_empty()) {
            p.env.insert(key.to_string(), Sourced::new(v.to_string(), reference(key)));
        }
    }
    if let Some(v) = get("DefaultGODEBUG") {
        p.default_godebug = Some(Sourced::new(v.to_string(), reference("DefaultGODEBUG")));
    }

    // VCS stamping.
    if get("vcs").is_some() || get("vcs.revision").is_some() {
        p.buildvcs = Some(Sourced::new(BuildVcs::True, reference("vcs")));
        if let Some(rev) = get("vcs.revision") {
            p.revision = Some(Sourced::new(rev.to_string(), reference("vcs.revision")));
        }
        if get("vcs.modified") == Some("true") {
            undet(
                &mut p.undetermined,
                "source",
                "the reference was built from a modified working tree (vcs.modified=true); \
                 no commit reproduces it exactly"
                    .to_string(),
            );
        }
    } else {
        p.buildvcs = Some(Sourced::new(BuildVcs::False, reference("vcs")));
    }

    // -mod=vendor leaves every dependency without a sum. A `(devel)` dependency
    // is another module of a go.work workspace, which never has one.
    let versioned: Vec<_> =
        bi.deps.iter().filter(|d| d.replace.is_none() && !d.version.is_empty() && d.version != "(devel)").collect();
    if !versioned.is_empty() && versioned.iter().all(|d| d.sum.is_empty()) {
        p.env.insert("GOFLAGS".into(), Sourced::new("-mod=vendor".into(), reference("dep sums")));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use goinfo::{BuildSetting, Module};

    fn bi(path: &str, main: &str, settings: &[(&str, &str)]) -> BuildInfo {
        BuildInfo {
            go_version: "go1.22.5".into(),
            path: path.into(),
            main: Module { path: main.into(), version: "(devel)".into(), ..Module::default() },
            deps: vec![],
            settings: settings.iter().map(|(k, v)| BuildSetting { key: (*k).into(), value: (*v).into() }).collect(),
        }
    }

    #[test]
    fn package_relative_to_main_module() {
        let r = infer(&bi("example.com/app/cmd/tool", "example.com/app", &[("GOOS", "linux"), ("GOARCH", "amd64")]));
        assert_eq!(r.package, "./cmd/tool");
        assert_eq!(r.output_name, "tool");
        assert_eq!(r.origins["package"], Origin::Reference("path".into()));
        assert_eq!(infer(&bi("example.com/app/v2", "example.com/app/v2", &[])).output_name, "app");
        let r = infer(&bi("command-line-arguments", "example.com/app", &[]));
        assert!(r.undetermined.iter().any(|u| u.field == "package" && u.reason.contains("command-line-arguments")));
        let mut gopath = bi("example.com/app", "", &[]);
        gopath.main = Module::default();
        assert!(infer(&gopath).undetermined.iter().any(|u| u.field == "package" && u.reason.contains("module mode")));
    }

    #[test]
    fn ldflags_under_trimpath_are_undetermined() {
        let r = infer(&bi("m", "m", &[("-trimpath", "true"), ("GOOS", "linux"), ("GOARCH", "amd64")]));
        assert!(r.trimpath);
        assert_eq!(r.ldflags, None);
        assert!(r.undetermined.iter().any(|u| u.field == "ldflags" && u.reason.contains("-trimpath")));
        let r = infer(&bi("m", "m", &[("-ldflags", "-s -w"), ("GOOS", "linux"), ("GOARCH", "amd64")]));
        assert_eq!(r.ldflags.as_deref(), Some("-s -w"));
        assert!(r.undetermined.is_empty(), "{:?}", r.undetermined);
    }

    #[test]
    fn old_go_and_vendor_builds() {
        let mut old = bi("example.com/app", "example.com/app", &[]);
        old.go_version = "go1.15.15".into();
        let r = infer(&old);
        assert_eq!(r.go_version.as_deref(), Some("go1.15.15"));
        assert!(r.undetermined.iter().any(|u| u.field == "goos" && u.reason.contains("before 1.18")));
        assert_eq!(r.origins["goos"], Origin::Default);
        assert_eq!(r.pgo, None);

        let dep = |sum: &str| Module {
            path: "example.com/dep".into(),
            version: "v1.0.0".into(),
            sum: sum.into(),
            replace: None,
        };
        let mut vendored = bi("m", "m", &[("GOOS", "windows"), ("GOARCH", "amd64")]);
        vendored.deps = vec![dep("")];
        let r = infer(&vendored);
        assert_eq!(r.env.get("GOFLAGS").map(String::as_str), Some("-mod=vendor"));
        assert_eq!(r.output_name, "m.exe");
        vendored.settings.push(BuildSetting { key: "-buildmode".into(), value: "exe".into() });
        assert!(infer(&vendored).notes.iter().any(|n| n.contains("pie on windows")));
        vendored.deps = vec![dep("h1:abc=")];
        assert!(!infer(&vendored).env.contains_key("GOFLAGS"));
        // Workspace modules are (devel) without a sum: not a vendor build.
        let mut devel = dep("");
        devel.version = "(devel)".into();
        vendored.deps = vec![devel];
        assert!(!infer(&vendored).env.contains_key("GOFLAGS"));

        let mut devel = bi("m", "m", &[("GOOS", "linux"), ("GOARCH", "amd64")]);
        devel.go_version = "devel go1.24-abcdef Tue".into();
        assert!(infer(&devel).undetermined.iter().any(|u| u.field == "go_version"));
    }

    #[test]
    fn settings_map_to_fields() {
        let r = infer(&bi(
            "m",
            "m",
            &[
                ("-buildmode", "pie"),
                ("-compiler", "gc"),
                ("-gcflags", "-N -l"),
                ("-race", "true"),
                ("-tags", "a,b"),
                ("DefaultGODEBUG", "panicnil=1"),
                ("CGO_ENABLED", "1"),
                ("CGO_CFLAGS", ""),
                ("CGO_LDFLAGS", "-L/x"),
                ("GOARCH", "arm"),
                ("GOEXPERIMENT", "loopvar"),
                ("GOOS", "linux"),
                ("GOARM", "6"),
                ("vcs", "git"),
                ("vcs.revision", "abc"),
            ],
        ));
        assert_eq!(r.buildmode.as_deref(), Some("pie"));
        assert_eq!(r.gcflags.as_deref(), Some("-N -l"));
        assert_eq!(r.extra_flags, ["-race"]);
        assert_eq!(r.tags, ["a", "b"]);
        assert_eq!(r.env["GOARM"], "6");
        assert_eq!(r.env["GOEXPERIMENT"], "loopvar");
        assert_eq!(r.env["CGO_LDFLAGS"], "-L/x");
        assert!(!r.env.contains_key("CGO_CFLAGS"));
        assert_eq!(r.buildvcs, BuildVcs::True);
        assert_eq!(r.revision.as_deref(), Some("abc"));
        assert_eq!(r.default_godebug.as_deref(), Some("panicnil=1"));
        assert_eq!(r.pgo.as_deref(), Some("off"));
        assert_eq!(r.origins["env.GOARM"], Origin::Reference("GOARM".into()));
    }
}
