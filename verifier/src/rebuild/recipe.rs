//! Assembling a [`Recipe`] from command-line flags and, with `--from-reference`,
//! a minimal inference from the reference binary's build info.
//!
//! This is deliberately small: the full inference (reprove.toml, goreleaser,
//! reprove.lock) lives in `recipe`. What the build info cannot determine goes
//! to [`Recipe::undetermined`]; flags always win.

use std::collections::BTreeMap;

use crate::goinfo::BuildInfo;
use crate::recipe::{BuildVcs, Origin, Recipe, Undetermined};

/// Recipe values given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct RecipeFlags {
    /// `--package`.
    pub package: Option<String>,
    /// `--goos`.
    pub goos: Option<String>,
    /// `--goarch`.
    pub goarch: Option<String>,
    /// `--env K=V`, in order.
    pub env: Vec<(String, String)>,
    /// `--trimpath` (only `true` can be given).
    pub trimpath: Option<bool>,
    /// `--ldflags`.
    pub ldflags: Option<String>,
    /// `--tags a,b`.
    pub tags: Option<Vec<String>>,
    /// `--buildvcs`.
    pub buildvcs: Option<BuildVcs>,
    /// `--output-name`.
    pub output_name: Option<String>,
}

/// Architecture level variables Go records as build settings.
pub const ARCH_LEVEL_VARS: &[&str] =
    &["GOAMD64", "GOARM", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64", "GOWASM", "GOLOONG64"];

/// Environment variables inferred from build settings of the same name.
const ENV_SETTINGS: &[&str] = &["CGO_ENABLED", "GOEXPERIMENT", "GOFIPS140"];

fn from_ref(setting: &str) -> Origin {
    Origin::Reference(setting.to_string())
}

/// The main package, relative to the main module: `.`, `./cmd/app`; `None`
/// when the build info's package is not inside its main module.
fn relative_package(bi: &BuildInfo) -> Option<String> {
    let path = bi.path.to_string();
    let module = bi.main.path.to_string();
    if module.is_empty() {
        return None;
    }
    if path == module {
        return Some(".".into());
    }
    path.strip_prefix(&format!("{module}/")).map(|rest| format!("./{rest}"))
}

/// Builds the recipe: defaults, then (with `from_reference`) the reference's
/// build info, then flags. The Go version always comes from the reference's
/// build info when there is one: it decides which toolchain is acceptable.
pub fn assemble(
    flags: &RecipeFlags,
    reference: Option<&BuildInfo>,
    from_reference: bool,
    host: (&str, &str),
) -> Recipe {
    let mut r = Recipe::new(".", host.0, host.1);
    for f in ["package", "goos", "goarch", "trimpath", "ldflags", "tags", "buildvcs", "output_name"] {
        r.origins.insert(f.to_string(), Origin::Default);
    }
    if let Some(bi) = reference {
        if !bi.go_version.is_empty() {
            r.go_version = Some(bi.go_version.to_string());
            r.origins.insert("go_version".into(), from_ref("go version"));
        }
    }
    if let (true, Some(bi)) = (from_reference, reference) {
        infer(&mut r, bi);
    }
    apply_flags(&mut r, flags);
    if r.go_version.is_none() {
        r.undetermined.push(Undetermined {
            field: "go_version".into(),
            reason: "no reference build info: the toolchain image's Go version is used".into(),
        });
    }
    r
}

fn infer(r: &mut Recipe, bi: &BuildInfo) {
    match relative_package(bi) {
        Some(p) => {
            r.output_name = bi.path.to_string().rsplit('/').next().unwrap_or("main").to_string();
            r.package = p;
            r.origins.insert("package".into(), from_ref("path"));
            r.origins.insert("output_name".into(), from_ref("path"));
        }
        None => r.undetermined.push(Undetermined {
            field: "package".into(),
            reason: format!(
                "the main package {:?} is not inside the main module {:?}: give --package",
                bi.path.to_string(),
                bi.main.path.to_string()
            ),
        }),
    }
    let setting = |k: &str| bi.setting(k).map(|v| v.to_string());
    if let Some(v) = setting("GOOS") {
        r.goos = v;
        r.origins.insert("goos".into(), from_ref("GOOS"));
    }
    if let Some(v) = setting("GOARCH") {
        r.goarch = v;
        r.origins.insert("goarch".into(), from_ref("GOARCH"));
    }
    for k in ARCH_LEVEL_VARS.iter().chain(ENV_SETTINGS) {
        if let Some(v) = setting(k) {
            r.env.insert(k.to_string(), v);
            r.origins.insert(format!("env.{k}"), from_ref(k));
        }
    }
    let trimpath = setting("-trimpath").is_some_and(|v| v == "true");
    r.trimpath = trimpath;
    r.origins.insert("trimpath".into(), from_ref("-trimpath"));
    match setting("-ldflags") {
        Some(v) => {
            r.ldflags = Some(v);
            r.origins.insert("ldflags".into(), from_ref("-ldflags"));
        }
        None if trimpath => r.undetermined.push(Undetermined {
            field: "ldflags".into(),
            reason: "Go does not record -ldflags under -trimpath: give --ldflags if the release used any".into(),
        }),
        None => {
            r.origins.insert("ldflags".into(), from_ref("-ldflags (absent)"));
        }
    }
    if let Some(v) = setting("-gcflags") {
        r.gcflags = Some(v);
        r.origins.insert("gcflags".into(), from_ref("-gcflags"));
    }
    if let Some(v) = setting("-asmflags") {
        r.asmflags = Some(v);
        r.origins.insert("asmflags".into(), from_ref("-asmflags"));
    }
    if let Some(v) = setting("-tags") {
        r.tags = v.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
    }
    r.origins.insert("tags".into(), from_ref("-tags"));
    if let Some(v) = setting("-buildmode").filter(|m| m != "exe") {
        r.buildmode = Some(v);
        r.origins.insert("buildmode".into(), from_ref("-buildmode"));
    }
    if bi.settings.iter().any(|s| s.key.starts_with(b"vcs")) {
        r.buildvcs = BuildVcs::True;
        r.origins.insert("buildvcs".into(), from_ref("vcs"));
    } else {
        r.origins.insert("buildvcs".into(), from_ref("vcs (absent)"));
    }
    if setting("CGO_ENABLED").as_deref() == Some("1") && !trimpath {
        for k in ["CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS"] {
            if let Some(v) = setting(k) {
                r.env.insert(k.to_string(), v);
                r.origins.insert(format!("env.{k}"), from_ref(k));
            }
        }
    }
}

fn apply_flags(r: &mut Recipe, f: &RecipeFlags) {
    let flag = |r: &mut Recipe, field: &str| {
        r.origins.insert(field.to_string(), Origin::Flag);
        r.undetermined.retain(|u| u.field != field);
    };
    if let Some(p) = &f.package {
        r.package = p.clone();
        if f.output_name.is_none() {
            r.output_name = Recipe::new(p, "", "").output_name;
        }
        flag(r, "package");
    }
    if let Some(v) = &f.goos {
        r.goos = v.clone();
        flag(r, "goos");
    }
    if let Some(v) = &f.goarch {
        r.goarch = v.clone();
        flag(r, "goarch");
    }
    let mut env = BTreeMap::new();
    for (k, v) in &f.env {
        env.insert(k.clone(), v.clone());
    }
    for (k, v) in env {
        flag(r, &format!("env.{k}"));
        r.env.insert(k, v);
    }
    if let Some(v) = f.trimpath {
        r.trimpath = v;
        flag(r, "trimpath");
    }
    if let Some(v) = &f.ldflags {
        r.ldflags = Some(v.clone()).filter(|s| !s.is_empty());
        flag(r, "ldflags");
    }
    if let Some(v) = &f.tags {
        r.tags = v.clone();
        flag(r, "tags");
    }
    if let Some(v) = f.buildvcs {
        r.buildvcs = v;
        flag(r, "buildvcs");
    }
    if let Some(v) = &f.output_name {
        r.output_name = v.clone();
        flag(r, "output_name");
    }
}

/// How an [`Origin`] is written in the report.
pub fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Flag => "flag".into(),
        Origin::RecipeFile(p) => format!("recipe-file:{p}"),
        Origin::Goreleaser(p) => format!("goreleaser:{p}"),
        Origin::Reference(s) => format!("reference:{s}"),
        Origin::Environment(v) => format!("environment:{v}"),
        Origin::Default => "default".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bi(text: &str) -> BuildInfo {
        match crate::goinfo::parse_modinfo(text.as_bytes()) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn from_reference_then_flags() {
        let mut b = bi("path\texample.com/app/cmd/tool\nmod\texample.com/app\t(devel)\t\nbuild\t-buildmode=exe\nbuild\t-compiler=gc\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=0\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\nbuild\tGOAMD64=v3\nbuild\t-tags=netgo,osusergo\n");
        b.go_version = "go1.22.5".into();
        let r = assemble(&RecipeFlags::default(), Some(&b), true, ("linux", "arm64"));
        assert_eq!(r.package, "./cmd/tool");
        assert_eq!(r.output_name, "tool");
        assert_eq!((r.goos.as_str(), r.goarch.as_str()), ("linux", "amd64"));
        assert_eq!(r.env.get("GOAMD64").map(String::as_str), Some("v3"));
        assert_eq!(r.env.get("CGO_ENABLED").map(String::as_str), Some("0"));
        assert!(r.trimpath);
        assert_eq!(r.tags, ["netgo", "osusergo"]);
        assert_eq!(r.buildmode, None);
        assert_eq!(r.go_version.as_deref(), Some("go1.22.5"));
        assert_eq!(r.undetermined.iter().map(|u| u.field.as_str()).collect::<Vec<_>>(), ["ldflags"]);

        let flags = RecipeFlags { ldflags: Some("-s -w".into()), ..RecipeFlags::default() };
        let r = assemble(&flags, Some(&b), true, ("linux", "arm64"));
        assert_eq!(r.ldflags.as_deref(), Some("-s -w"));
        assert!(r.undetermined.is_empty());
        assert_eq!(r.origins.get("ldflags"), Some(&Origin::Flag));

        // Without --from-reference only the Go version comes from the reference.
        let r = assemble(&RecipeFlags::default(), Some(&b), false, ("linux", "arm64"));
        assert_eq!((r.package.as_str(), r.goarch.as_str(), r.trimpath), (".", "arm64", false));
        assert_eq!(r.go_version.as_deref(), Some("go1.22.5"));
    }
}
