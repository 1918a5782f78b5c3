//! Assembling the recipe from every input of a source tree, in precedence
//! order: flags, `REPROVE_*` variables, `reprove.toml`, a `.goreleaser.yaml`
//! build entry, the reference's build info, defaults.

use std::path::Path;

use super::file::{partial_from_env, validate_layer, RecipeFile, RecipeFileError};
use super::goreleaser::{Goreleaser, GoreleaserError, Target, TemplateValues};
use super::infer::infer_partial;
use super::lock::{LockError, LockFile};
use super::merge::{merge, Partial};
use super::platform::ReferencePlatform;
use super::{Origin, Recipe};
use confined::{limits, ConfinedDir, ConfinedError};
use goinfo::BuildInfo;
use oci::PinnedImage;

/// The goreleaser files read, in goreleaser's order; the first that exists wins.
pub const GORELEASER_FILES: &[&str] = &[".goreleaser.yml", ".goreleaser.yaml", "goreleaser.yml", "goreleaser.yaml"];

/// Everything [`resolve`] reads besides the source tree.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// The command-line layer: every value with [`super::Origin::Flag`].
    pub flags: Partial,
    /// The process environment (`std::env::vars()`); only `REPROVE_*` recipe
    /// variables are read from it.
    pub env: Vec<(String, String)>,
    /// The reference's build info, when the recipe is inferred from it.
    pub reference: Option<&'a BuildInfo>,
    /// The named build of `reprove.toml`, and the build id of `.goreleaser.yaml`.
    pub build: Option<&'a str>,
    /// Values for goreleaser templates. A missing commit and commit time are
    /// taken from the reference's `vcs.revision` and `vcs.time`.
    pub templates: TemplateValues,
    /// The goreleaser target; default: GOOS/GOARCH and level from the flags,
    /// else the reference's platform, else inference's GOOS/GOARCH.
    pub target: Option<Target>,
    /// The reference's platform, whether or not the recipe is inferred from
    /// the reference: it chooses the goreleaser target when none is given.
    pub platform: Option<ReferencePlatform>,
}

/// What [`resolve`] produced and which files it used.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The merged recipe.
    pub recipe: Recipe,
    /// `reprove.toml`, when one was read.
    pub recipe_file: Option<String>,
    /// `FILE#BUILD_ID` of the goreleaser build used.
    pub goreleaser: Option<String>,
    /// goreleaser's expanded `mod_timestamp` (the binary's mtime, not its bytes).
    pub mod_timestamp: Option<String>,
}

/// Why the recipe could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `reprove.toml` or the `REPROVE_*` variables.
    #[error(transparent)]
    RecipeFile(#[from] RecipeFileError),
    /// The goreleaser build entry.
    #[error(transparent)]
    Goreleaser(#[from] GoreleaserError),
    /// A goreleaser file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A goreleaser file cannot be read inside the tree: a symlink out, a
    /// device, FIFO or socket, too large.
    #[error("{0}")]
    Refused(ConfinedError),
}

/// Unix seconds of the RFC 3339 UTC time Go writes as `vcs.time`.
pub fn parse_vcs_time(s: &str) -> Option<i64> {
    stdx::time::parse_rfc3339(s)
}

/// The first goreleaser file of `dir` ([`GORELEASER_FILES`] order) and its
/// text, read confined to `dir`: a symlink out of it, a device or FIFO is
/// [`ResolveError::Refused`], never opened.
fn read_goreleaser(dir: &Path) -> Result<Option<(&'static str, String)>, ResolveError> {
    let tree = ConfinedDir::open_followed(dir).map_err(ResolveError::Refused)?;
    for name in GORELEASER_FILES {
        if let Some(data) = tree.read_optional(name, limits::CONFIG).map_err(ResolveError::Refused)? {
            let text = String::from_utf8(data).map_err(|_| ResolveError::Read {
                path: name.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
            })?;
            return Ok(Some((name, text)));
        }
    }
    Ok(None)
}

/// Whether one of `layers` sets recipe field `field` (`ldflags`,
/// `env.NAME`, …): a lower layer need not be evaluated for it.
fn supplied_by(layers: &[&Partial], field: &str) -> bool {
    layers.iter().any(|p| match field {
        "ldflags" => p.ldflags.is_some(),
        "gcflags" => p.gcflags.is_some(),
        "asmflags" => p.asmflags.is_some(),
        "tags" => p.tags.is_some(),
        "buildmode" => p.buildmode.is_some(),
        "output_name" => p.output_name.is_some(),
        other => other.strip_prefix("env.").is_some_and(|k| p.env.contains_key(k)),
    })
}

/// Merges every input for the source tree `dir`.
pub fn resolve(dir: &Path, inputs: &Inputs<'_>) -> Result<Resolved, ResolveError> {
    validate_layer(&inputs.flags, "flags")?;
    let env_layer = partial_from_env(inputs.env.iter().cloned())?;
    let file = RecipeFile::load(dir)?;
    let file_layer = file.as_ref().map(|f| f.partial(inputs.build)).transpose()?;
    let reference_layer = inputs.reference.map(infer_partial);

    let mut goreleaser = None;
    let mut goreleaser_layer = None;
    let mut mod_timestamp = None;
    if let Some((name, text)) = read_goreleaser(dir)? {
        let g = Goreleaser::parse(&text, name)?;
        let reference = reference_layer.as_ref();
        let mut values = inputs.templates.clone();
        if values.commit.is_none() {
            values.commit = reference.and_then(|r| r.revision.as_ref()).map(|s| s.value.clone());
        }
        if values.commit_time.is_none() {
            values.commit_time =
                inputs.reference.and_then(|bi| bi.setting("vcs.time")).and_then(|t| parse_vcs_time(&t.to_string()));
        }
        // The target: the one given, else GOOS/GOARCH (and level) from the
        // flags, else the reference's platform, else inference's GOOS/GOARCH.
        // A target chosen by the reference's platform cannot make a false
        // "reproduced" when it is wrong: the rebuild is compared bit for bit,
        // and a binary of another platform never equals the reference. It is
        // still cross-checked (build info against header) and must be in the
        // build's matrix, so a wrong choice is an input error naming the targets.
        let flags = &inputs.flags;
        let mut platform_choice: Option<Result<Target, super::platform::PlatformUnknown>> = None;
        let target = match &inputs.target {
            Some(t) => Some(t.clone()),
            None if flags.goos.is_none() && flags.goarch.is_none() && inputs.platform.is_some() => {
                let chosen = inputs.platform.as_ref().map(ReferencePlatform::target);
                let t = chosen.as_ref().and_then(|c| c.as_ref().ok()).cloned();
                platform_choice = chosen;
                t
            }
            None => {
                let goos = flags.goos.as_ref().or_else(|| reference.and_then(|r| r.goos.as_ref()));
                let goarch = flags.goarch.as_ref().or_else(|| reference.and_then(|r| r.goarch.as_ref()));
                match (goos, goarch) {
                    (Some(goos), Some(goarch)) => {
                        let mut t = Target { goos: goos.value.clone(), goarch: goarch.value.clone(), level: None };
                        if let Some(var) = t.level_var() {
                            t.level = flags
                                .env
                                .get(var)
                                .or_else(|| reference.and_then(|r| r.env.get(var)))
                                .map(|s| s.value.clone());
                        }
                        Some(t)
                    }
                    _ => None,
                }
            }
        };
        let id = inputs.build.filter(|b| g.build_ids().iter().any(|i| i == b));
        let higher = [&inputs.flags, &env_layer];
        let higher: Vec<&Partial> = higher.into_iter().chain(file_layer.as_ref()).collect();
        let supplied = |field: &str| supplied_by(&higher, field);
        let mut built =
            g.build_over(id, target.as_ref(), &values, &supplied).map_err(|e| match (e, &platform_choice) {
                (GoreleaserError::Target { path, build, message, targets }, Some(choice)) => {
                    let why = match choice {
                        Ok(_) => format!(
                            "the reference's platform ({}) is not among them",
                            inputs.platform.as_ref().map(ReferencePlatform::describe).unwrap_or_default()
                        ),
                        Err(why) => format!("the reference's platform was not used: {why}"),
                    };
                    GoreleaserError::Target { path, build, message: format!("{message}; {why}"), targets }
                }
                (e, _) => e,
            })?;
        if let Some(Ok(_)) = &platform_choice {
            let by = Origin::ReferencePlatform(format!("{name}#{}", built.id));
            let p = &mut built.partial;
            for s in [&mut p.goos, &mut p.goarch].into_iter().flatten() {
                s.origin = by.clone();
            }
            if let Some(var) = built.target.level_var() {
                if let Some(s) = p.env.get_mut(var) {
                    s.origin = by.clone();
                }
            }
            p.notes.push(format!(
                "{name}#{}: target {} chosen by the reference's platform ({})",
                built.id,
                built.target,
                inputs.platform.as_ref().map(ReferencePlatform::describe).unwrap_or_default()
            ));
        }
        mod_timestamp = built.mod_timestamp;
        goreleaser = Some(format!("{name}#{}", built.id));
        goreleaser_layer = Some(built.partial);
    }

    let layers: Vec<Partial> =
        [Some(inputs.flags.clone()), Some(env_layer), file_layer, goreleaser_layer, reference_layer]
            .into_iter()
            .flatten()
            .collect();
    Ok(Resolved { recipe: merge(&layers), recipe_file: file.map(|f| f.path), goreleaser, mod_timestamp })
}

/// The toolchain image `dir/reprove.lock` pins for the recipe's Go version.
pub fn locked_toolchain(dir: &Path, recipe: &Recipe) -> Result<Option<PinnedImage>, LockError> {
    let Some(lock) = LockFile::load(dir)? else {
        return Ok(None);
    };
    match &recipe.go_version {
        Some(v) => lock.toolchain(v).cloned().map(Some),
        None => Err(LockError::MissingVersion {
            path: lock.path.clone(),
            version: "(undetermined Go version)".into(),
            known: lock.toolchains.keys().cloned().collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dir` with `name` a symlink to `target`.
    fn linked(name: &str, target: &std::path::Path) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(t.path().join("src")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(target, t.path().join("src").join(name)).unwrap_or_else(|e| panic!("{e}"));
        t
    }

    #[test]
    fn recipe_files_that_lead_out_of_the_tree_are_refused_unread() {
        let host = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secret = host.path().join("secret");
        std::fs::write(&secret, "TOPSECRET-MARKER\n").unwrap_or_else(|e| panic!("{e}"));
        let fifo = host.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, 0o600.into(), 0)
            .unwrap_or_else(|e| panic!("{e}"));
        for name in ["reprove.toml", ".goreleaser.yaml", "goreleaser.yml", "reprove.lock"] {
            for target in [secret.clone(), fifo.clone(), "/dev/zero".into(), "/dev/stdin".into()] {
                let t = linked(name, &target);
                let started = std::time::Instant::now();
                let src = t.path().join("src");
                let msg = if name == "reprove.lock" {
                    let recipe = Recipe::new(".", "linux", "amd64");
                    let e = match locked_toolchain(&src, &recipe) {
                        Ok(_) => panic!("{name} -> {}: accepted", target.display()),
                        Err(e) => e,
                    };
                    assert!(e.is_input(), "{e}");
                    assert!(LockFile::exists(&src).is_err());
                    e.to_string()
                } else {
                    match resolve(&src, &Inputs::default()) {
                        Ok(_) => panic!("{name} -> {}: accepted", target.display()),
                        Err(e) => e.to_string(),
                    }
                };
                assert!(started.elapsed() < std::time::Duration::from_secs(1), "{name}");
                assert!(msg.contains(name) && !msg.contains("TOPSECRET"), "{name}: {msg}");
            }
        }
        // Relative, out through ..
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(t.path().join("src")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(t.path().join("secret"), "TOPSECRET-MARKER\n").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("../secret", t.path().join("src/reprove.toml")).unwrap_or_else(|e| panic!("{e}"));
        let msg = resolve(&t.path().join("src"), &Inputs::default()).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("reprove.toml") && !msg.contains("TOPSECRET"), "{msg}");
    }

    #[test]
    fn parse_errors_quote_only_a_short_escaped_excerpt() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let long = format!("TOP\\u001b[2J{}SECRET-MARKER", "x".repeat(100));
        for (name, text) in [
            (".goreleaser.yaml", format!("\"{long}\"\n")),
            (".goreleaser.yaml", format!("builds:\n  - {long}: 1\n")),
            ("reprove.toml", format!("[build]\n\"{long}\" = 1\n")),
            ("reprove.toml", format!("[build]\ntrimpath = \"{long}\"\n")),
            ("reprove.lock", format!("[toolchains]\n\"{long}\" = \"x\"\n")),
            ("reprove.lock", format!("[toolchains]\n\"go1.22.5\" = \"{long}\"\n")),
        ] {
            for n in [".goreleaser.yaml", "reprove.toml", "reprove.lock"] {
                let _ = std::fs::remove_file(t.path().join(n));
            }
            std::fs::write(t.path().join(name), &text).unwrap_or_else(|e| panic!("{e}"));
            let msg = if name == "reprove.lock" {
                let mut recipe = Recipe::new(".", "linux", "amd64");
                recipe.go_version = Some("go1.22.5".into());
                locked_toolchain(t.path(), &recipe).map(|_| ()).unwrap_err().to_string()
            } else {
                resolve(t.path(), &Inputs::default()).map(|_| ()).unwrap_err().to_string()
            };
            assert!(msg.contains("TOP") && msg.contains('…'), "{name}: {text}: {msg}");
            assert!(!msg.contains("SECRET-MARKER") && !msg.chars().any(char::is_control), "{name}: {text}: {msg}");
        }
    }

    #[test]
    fn vcs_time() {
        assert_eq!(parse_vcs_time("2024-01-02T03:04:05Z"), Some(1_704_164_645));
        assert_eq!(parse_vcs_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_vcs_time("2024-01-02T03:04:05.123Z"), Some(1_704_164_645));
        assert_eq!(parse_vcs_time("2024-13-02T03:04:05Z"), None);
        assert_eq!(parse_vcs_time("2024-01-02"), None);
        assert_eq!(parse_vcs_time("2024-01-02T03:04:05é"), None);
    }
}
