//! The `recipe` step: [`::recipe::resolve()`] over the exported tree
//! of the commit being verified, so `reprove.toml` and `.goreleaser.yaml` are
//! read from that commit and never from a working tree, with goreleaser's
//! template values taken from the commit itself.
//!
//! Inference from the reference's build info is a layer only with
//! `--from-reference`. Without it the reference still fixes the Go version
//! (the toolchain must contain exactly that version) unless another input
//! sets it. What stays undetermined stops the rebuild before anything is
//! built ([`admit`]), as does a value of the commit's own files that runs
//! code unless the verifier allowed it. Then the toolchain is chosen
//! ([`choose_toolchain`]): the verifier's, else the commit's `reprove.lock`
//! for the recipe's Go version.

use std::path::Path;

use ::recipe::{
    resolve, Inputs, Origin, Partial, Recipe, ReferencePlatform, ResolveError, Resolved, Target, TemplateValues,
};
use goinfo::BuildInfo;
use oci::PinnedImage;
use source::ResolvedCommit;
use stdx::setting::Setting;

use crate::RebuildError;

pub use ::recipe::infer::ARCH_LEVEL_VARS;

/// The recipe inputs of a rebuild besides the source tree and the reference.
#[derive(Debug, Clone, Default)]
pub struct RecipeInputs {
    /// The command-line layer (every value with [`Origin::Flag`]).
    pub flags: Partial,
    /// The process environment; only `REPROVE_*` recipe variables are read.
    pub env: Vec<(String, String)>,
    /// The named build of `reprove.toml` and the build id of `.goreleaser.yaml`.
    pub build: Option<String>,
    /// goreleaser template values given explicitly (`--tag`, `--commit`,
    /// `--commit-time`, `--date`, `--template-env`); the rest come from the commit.
    pub templates: TemplateValues,
    /// The goreleaser target (`--target`).
    pub target: Option<Target>,
    /// Infer the recipe from the reference's build info (`--from-reference`).
    pub from_reference: bool,
    /// Run recipe values from the commit's own files that make the build run
    /// or read what they name (`-toolexec`, `-exec`, `-overlay`, `-modfile`
    /// in GOFLAGS); without it they are refused ([`::recipe::exec`]).
    pub allow_exec: bool,
}

/// goreleaser's template values for `commit`: its id, its commit time and,
/// when exactly one tag points at it, that tag. Explicit values win. `.Date`
/// is never invented: it is not in the commit.
pub fn template_values(given: &TemplateValues, commit: &ResolvedCommit) -> TemplateValues {
    let mut v = given.clone();
    if v.commit.is_none() {
        v.commit = Some(commit.id.clone());
    }
    if v.commit_time.is_none() {
        v.commit_time = Some(commit.time);
    }
    if v.tag.is_none() {
        if let [only] = commit.tags.as_slice() {
            v.tag = Some(only.clone());
        }
    }
    v
}

/// Resolves the recipe over the exported tree `dir` of `commit`.
///
/// `reference_file` is the reference's bytes, when read: its header confirms
/// the platform its build info records, which picks the goreleaser target
/// when none is given (with or without inference).
pub fn resolve_for_commit(
    dir: &Path,
    inputs: &RecipeInputs,
    reference: Option<&BuildInfo>,
    reference_file: Option<&[u8]>,
    commit: &ResolvedCommit,
) -> Result<Resolved, ResolveError> {
    let templates = template_values(&inputs.templates, commit);
    let mut resolved = resolve_with(dir, inputs, reference, reference_file, templates)?;
    if commit.tags.len() > 1 && inputs.templates.tag.is_none() && resolved.goreleaser.is_some() {
        resolved.recipe.notes.push(format!(
            "several tags point at the commit ({}): goreleaser's .Tag and .Version were left unset; give {}",
            commit.tags.join(", "),
            Setting::Tag
        ));
    }
    Ok(resolved)
}

/// Resolves the recipe of a released module version (`go install
/// PATH@VERSION`) over `dir`, an empty directory: the module's own recipe
/// files play no part in what `go install` does.
pub fn resolve_for_module(
    dir: &Path,
    inputs: &RecipeInputs,
    reference: Option<&BuildInfo>,
    reference_file: Option<&[u8]>,
) -> Result<Resolved, ResolveError> {
    resolve_with(dir, inputs, reference, reference_file, inputs.templates.clone())
}

fn resolve_with(
    dir: &Path,
    inputs: &RecipeInputs,
    reference: Option<&BuildInfo>,
    reference_file: Option<&[u8]>,
    templates: TemplateValues,
) -> Result<Resolved, ResolveError> {
    let platform = reference.map(|bi| ReferencePlatform::new(bi, reference_file.and_then(goinfo::read_machine)));
    let resolve_inputs = Inputs {
        flags: inputs.flags.clone(),
        env: inputs.env.clone(),
        reference: reference.filter(|_| inputs.from_reference),
        build: inputs.build.as_deref(),
        templates,
        target: inputs.target.clone(),
        platform,
    };
    let mut resolved = resolve(dir, &resolve_inputs)?;
    if !inputs.from_reference {
        if let Some(bi) = reference {
            reference_go_version(&mut resolved.recipe, bi);
        }
    }
    Ok(resolved)
}

/// Refuses a recipe the rebuild may not build: values of the commit's own
/// files that make the build run or read what they name, unless
/// `inputs.allow_exec`; fields nothing determined.
pub fn admit(recipe: &Recipe, inputs: &RecipeInputs) -> Result<(), RebuildError> {
    if !inputs.allow_exec {
        ::recipe::refuse_from_commit(recipe)?;
    }
    if !recipe.undetermined.is_empty() {
        return Err(RebuildError::Undetermined { fields: recipe.undetermined.clone() });
    }
    Ok(())
}

/// Where the toolchain image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolchainFrom {
    /// The verifier named it.
    Given,
    /// The commit's `reprove.lock`, for the recipe's Go version.
    Lock,
}

/// The toolchain: `given`, else the one the commit's `reprove.lock` (in the
/// exported tree `dir`) pins for the recipe's Go version.
pub fn choose_toolchain(
    given: Option<&PinnedImage>,
    dir: &Path,
    recipe: &Recipe,
) -> Result<(PinnedImage, ToolchainFrom), RebuildError> {
    if let Some(t) = given {
        return Ok((t.clone(), ToolchainFrom::Given));
    }
    let has_lock = ::recipe::LockFile::exists(dir)?;
    if has_lock && recipe.go_version.is_none() {
        return Err(RebuildError::LockNeedsGoVersion);
    }
    let t = ::recipe::locked_toolchain(dir, recipe)?
        .ok_or_else(|| RebuildError::NoToolchain { go_version: recipe.go_version.clone() })?;
    Ok((t, ToolchainFrom::Lock))
}

/// Without inference, the reference still decides the Go version unless an
/// input set it; a different version set by an input is a conflict.
fn reference_go_version(r: &mut Recipe, bi: &BuildInfo) {
    let version = bi.go_version.to_string();
    let Some(version) = version.split_whitespace().next().filter(|v| v.starts_with("go")).map(str::to_string) else {
        return;
    };
    let origin = Origin::Reference("go version".into());
    match &r.go_version {
        None => {
            r.go_version = Some(version);
            r.origins.insert("go_version".into(), origin);
        }
        Some(v) if *v != version => r.conflicts.push(::recipe::Conflict {
            field: "go_version".into(),
            used: v.clone(),
            used_origin: r.origins.get("go_version").cloned().unwrap_or(Origin::Default),
            overridden: version,
            overridden_origin: origin,
        }),
        Some(_) => {}
    }
}

/// How an [`Origin`] is written in the report.
pub fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Flag => "flag".into(),
        Origin::RecipeFile(p) => format!("recipe-file:{p}"),
        Origin::Goreleaser(p) => format!("goreleaser:{p}"),
        Origin::ReferencePlatform(p) => format!("reference-platform:{p}"),
        Origin::Reference(s) => format!("reference:{s}"),
        Origin::Environment(v) => format!("environment:{v}"),
        Origin::Default => "default".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bi(text: &str, go: &str) -> BuildInfo {
        match goinfo::parse_modinfo(text.as_bytes()) {
            Ok(mut b) => {
                b.go_version = go.into();
                b
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn commit(tags: &[&str]) -> ResolvedCommit {
        ResolvedCommit {
            rev: "HEAD".into(),
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            time: 1_704_164_645,
            time_rfc3339: "2024-01-02T03:04:05Z".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            is_worktree_head: false,
        }
    }

    fn tmp() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    fn resolved(dir: &Path, inputs: &RecipeInputs, reference: Option<&BuildInfo>, tags: &[&str]) -> Resolved {
        match resolve_for_commit(dir, inputs, reference, None, &commit(tags)) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        if let Err(e) = std::fs::write(dir.join(name), text) {
            panic!("{e}");
        }
    }

    const TRIMMED: &str = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\nbuild\t-buildmode=exe\nbuild\t-compiler=gc\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=0\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\nbuild\tGOAMD64=v1\n";

    #[test]
    fn the_commits_recipe_file_supplies_what_the_reference_cannot() {
        let dir = tmp();
        let b = bi(TRIMMED, "go1.22.5");
        let inputs = RecipeInputs { from_reference: true, ..RecipeInputs::default() };
        let r = resolved(dir.path(), &inputs, Some(&b), &[]).recipe;
        assert_eq!(r.undetermined.iter().map(|u| u.field.as_str()).collect::<Vec<_>>(), ["ldflags"]);

        write(dir.path(), "reprove.toml", "[build]\nldflags = \"-s -w\"\n");
        let r = resolved(dir.path(), &inputs, Some(&b), &[]).recipe;
        assert!(r.undetermined.is_empty(), "{:?}", r.undetermined);
        assert_eq!(r.ldflags.as_deref(), Some("-s -w"));
        assert_eq!(r.origins.get("ldflags"), Some(&Origin::RecipeFile("reprove.toml".into())));
        assert!(r.trimpath);
        assert_eq!(r.go_version.as_deref(), Some("go1.22.5"));
    }

    #[test]
    fn without_inference_only_the_go_version_comes_from_the_reference() {
        let dir = tmp();
        let b = bi(TRIMMED, "go1.22.5");
        let r = resolved(dir.path(), &RecipeInputs::default(), Some(&b), &[]).recipe;
        assert!(!r.trimpath);
        assert_eq!(r.go_version.as_deref(), Some("go1.22.5"));
        assert_eq!(r.origins.get("go_version"), Some(&Origin::Reference("go version".into())));
        assert!(r.undetermined.is_empty());
    }

    #[test]
    fn goreleaser_templates_expand_from_the_commit() {
        let dir = tmp();
        write(
            dir.path(),
            ".goreleaser.yaml",
            "builds:\n  - id: app\n    goos: [linux]\n    goarch: [amd64]\n    ldflags:\n      - -X main.version={{.Version}} -X main.commit={{.Commit}}\n",
        );
        let inputs = RecipeInputs::default();
        let r = resolved(dir.path(), &inputs, None, &["v1.2.3"]);
        assert_eq!(
            r.recipe.ldflags.as_deref(),
            Some("-X main.version=1.2.3 -X main.commit=0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(r.goreleaser.as_deref(), Some(".goreleaser.yaml#app"));
        // .Date is not in the commit: never invented.
        let v = template_values(&TemplateValues::default(), &commit(&["v1", "v2"]));
        assert_eq!((v.build_time, v.tag), (None, None));
        assert_eq!(v.commit_time, Some(1_704_164_645));
    }
}
