//! The pipeline: the steps in order, each timed and reported to the
//! [`Progress`], their outcomes kept in a [`Record`]. [`prepare`] runs
//! everything before the build, which `verify` and `check` share.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ::recipe::{BuildVcs, Recipe};
use goinfo::BuildInfo;
use oci::{PinnedImage, Store};
use report::v1::{self, Step};
use sandbox::CancelToken;
use stdx::setting::Setting;

use crate::record::{CommitFacts, ImageFacts, Judged, Record, ReferenceFacts};
use crate::steps::module::Outcome;
use crate::steps::{self, build, gosum, judge};
use crate::{workdirs, Progress, RebuildError, Request, SourceInput};

/// A run: the request, where progress goes, and what the steps found.
pub(crate) struct Run<'a> {
    pub req: &'a Request,
    pub progress: &'a dyn Progress,
    pub record: Record,
}

impl<'a> Run<'a> {
    pub(crate) fn new(req: &'a Request, progress: &'a dyn Progress) -> Run<'a> {
        Run { req, progress, record: Record::new() }
    }

    /// Runs `f` as `step`: timed, shown, its failure tagged with the step.
    pub(crate) fn step<T>(
        &mut self,
        step: Step,
        f: impl FnOnce(&mut Record) -> Result<T, RebuildError>,
    ) -> Result<T, (Step, RebuildError)> {
        self.progress.start(step);
        let t = Instant::now();
        let out = f(&mut self.record);
        let elapsed = t.elapsed();
        self.progress.finish(step, elapsed);
        self.record.timings.push(v1::Timing { step, ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX) });
        out.map_err(|e| (step, e))
    }
}

/// The work directory: `--keep DIR`, or a temporary directory below the cache.
pub(crate) enum WorkDir {
    Kept(PathBuf),
    /// Below the cache, with the lock that tells `toolchain gc` the run lives (`workdirs`).
    Temp {
        dir: tempfile::TempDir,
        _lock: std::fs::File,
    },
}

impl WorkDir {
    pub(crate) fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(p) => p,
            WorkDir::Temp { dir, .. } => dir.path(),
        }
    }

    fn new(keep: Option<&Path>, cache_dir: &Path) -> Result<WorkDir, RebuildError> {
        if let Some(dir) = keep {
            // A symlink planted where the directory is expected (a CI checkout) is
            // refused, not followed: its final component is opened with O_NOFOLLOW.
            if std::fs::symlink_metadata(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                std::fs::create_dir_all(dir).map_err(|e| RebuildError::io("create", dir, e))?;
            }
            let opened = confined::ConfinedDir::open(dir).map_err(|e| match e {
                confined::ConfinedError::Io { source, .. } => RebuildError::io("open", dir, source),
                _ => RebuildError::KeepNotDirectory(dir.to_path_buf()),
            })?;
            drop(opened);
            let empty = std::fs::read_dir(dir).map_err(|e| RebuildError::io("read", dir, e))?.next().is_none();
            if !empty {
                return Err(RebuildError::KeepNotEmpty(dir.to_path_buf()));
            }
            let abs = std::path::absolute(dir).map_err(|e| RebuildError::io("resolve", dir, e))?;
            return Ok(WorkDir::Kept(abs));
        }
        let parent = cache_dir.join("work");
        std::fs::create_dir_all(&parent).map_err(|e| RebuildError::io("create", &parent, e))?;
        let t = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(&parent)
            .map_err(|e| RebuildError::io("create a directory in", &parent, e))?;
        let lock = workdirs::lock(t.path()).map_err(|e| RebuildError::io("lock", t.path(), e))?;
        Ok(WorkDir::Temp { dir: t, _lock: lock })
    }
}

/// What the steps before the build leave for it.
pub(crate) struct Prepared {
    pub work: WorkDir,
    pub src_dir: PathBuf,
    pub modcache: PathBuf,
    pub pulled: oci::PulledImage,
    pub _guard: oci::StoreGuard,
    pub recipe: Recipe,
    pub toolchain: PinnedImage,
    pub mods: gosum::Checked,
    /// The reference's bytes, when read.
    pub reference: Option<Vec<u8>>,
    pub reference_bi: Option<BuildInfo>,
    /// The workspace's go.work (relative to the source root) when the build uses one.
    pub go_work: Option<String>,
    /// The Git tree id of the source (for a module: its zip's h1 sum).
    pub tree: String,
    /// The released module version built, for a module source (`go install PATH@VERSION`).
    pub module: Option<gomod::ModuleVersion>,
}

impl Prepared {
    /// The build of `verify` and of `check`'s baseline: the `go` command and environment.
    pub(crate) fn plan(&self, cache_dir: &std::path::Path) -> build::Plan {
        build::plan(
            &self.recipe,
            &self.pulled,
            &self.toolchain,
            cache_dir,
            self.go_work.as_deref(),
            &self.tree,
            self.module.as_ref(),
        )
    }
}

/// The steps before the build: reference, source, recipe, go.sum, modules,
/// toolchain. `None`: the source step reached the verdict itself (a module
/// version the reference claims but that was not published); nothing is built.
pub(crate) fn prepare(run: &mut Run<'_>) -> Result<Option<Prepared>, (Step, RebuildError)> {
    let req = run.req;
    let reference = run.step(Step::Reference, |_| steps::reference::read(req))?;
    let (reference, reference_bi) = match reference {
        Some(r) => {
            run.record.warnings.extend(r.warnings());
            run.record.reference = Some(ReferenceFacts {
                path: r.path.clone(),
                sha256: r.sha256.clone(),
                size: r.size(),
                go_version: r.go_version(),
                main_module: r.main_module(),
                image: r.image.clone(),
            });
            (r.data, r.build_info)
        }
        None => (None, None),
    };

    let work = WorkDir::new(req.keep.as_deref(), &req.cache_dir).map_err(|e| (Step::Reference, e))?;

    let (src_dir, source) = match &req.source {
        SourceInput::Git { location, rev } => {
            let src_dir = work.path().join("src");
            let (opened, tree) = git_source(run, location, rev, &src_dir)?;
            (src_dir, Source::Git { opened, tree })
        }
        SourceInput::Module { path, version } => {
            let modcache = req.cache_dir.join("modcache");
            let outcome = run.step(Step::Source, |rec| {
                let m = steps::module::resolve(path, version, reference_bi.as_ref())?;
                rec.module = Some(v1::ModuleSource {
                    path: m.path.clone(),
                    version: m.version.clone(),
                    recorded_sum: reference_bi.as_ref().map(|bi| bi.main.sum.to_string()).filter(|s| !s.is_empty()),
                    sum: None,
                    zip_sha256: None,
                    zip_from: None,
                    checked_against: Vec::new(),
                });
                let outcome = steps::module::fetch(&m, reference_bi.as_ref(), &modcache, req)?;
                match &outcome {
                    Outcome::Fetched(f) => rec.module = Some(f.facts.clone()),
                    Outcome::Claimed { facts, .. } => rec.module = Some(facts.clone()),
                }
                Ok(outcome)
            })?;
            let fetched = match outcome {
                Outcome::Fetched(f) => f,
                Outcome::Claimed { cause, .. } => {
                    run.record.judged = Some(Judged {
                        rebuilt: None,
                        verdict: v1::Verdict::NotReproduced,
                        causes: vec![cause],
                        reference_self_check: None,
                        modules: Vec::new(),
                        module_findings: Vec::new(),
                    });
                    return Ok(None);
                }
            };
            (fetched.dir.clone(), Source::Module(fetched))
        }
    };

    let (mut recipe, toolchain) = run.step(Step::Recipe, |rec| {
        let resolved = match &source {
            Source::Git { opened, .. } => steps::recipe::resolve_for_commit(
                &src_dir,
                &req.recipe,
                reference_bi.as_ref(),
                reference.as_deref(),
                &opened.commit,
            )?,
            Source::Module(_) => {
                // `go install PATH@VERSION` reads no recipe file of the module:
                // the recipe is the verifier's and the reference's only.
                let empty = work.path().join("recipe");
                std::fs::create_dir_all(&empty).map_err(|e| RebuildError::io("create", &empty, e))?;
                let mut resolved = steps::recipe::resolve_for_module(
                    &empty,
                    &req.recipe,
                    reference_bi.as_ref(),
                    reference.as_deref(),
                )?;
                if let Source::Module(f) = &source {
                    let r = &mut resolved.recipe;
                    // Without -trimpath the binary embeds the module cache's path: the
                    // rebuild mounts the cache where the reference's was.
                    let embedded = reference.as_deref().and_then(|b| steps::module::embedded_modcache(b, &f.module));
                    if let (false, None, Some(dir)) = (r.trimpath, r.env.get("GOMODCACHE"), embedded) {
                        r.env.insert("GOMODCACHE".into(), dir);
                        r.origins.insert("env.GOMODCACHE".into(), ::recipe::Origin::Reference("file table".into()));
                    }
                }
                resolved
            }
        };
        let recipe = rec.recipe.insert(resolved.recipe).clone();
        steps::recipe::admit(&recipe, &req.recipe)?;
        // VCS stamping needs a clean checkout with .git; otherwise the build sees no .git.
        if let Source::Git { opened, .. } = &source {
            if recipe.buildvcs == BuildVcs::True {
                steps::source::checkout(opened, &src_dir)?;
            }
        }
        let (toolchain, from) = steps::recipe::choose_toolchain(req.toolchain.as_ref(), &src_dir, &recipe)?;
        if from == steps::recipe::ToolchainFrom::Lock {
            rec.locked_toolchain = Some(toolchain.clone());
        }
        Ok((recipe, toolchain))
    })?;

    let mods = run.step(Step::GoSum, |rec| {
        let checked = match &source {
            Source::Git { .. } => gosum::run(&src_dir, &recipe, reference_bi.as_ref())?,
            // The module's own go.mod and go.sum, as `go install PATH@VERSION` reads them (no workspace).
            Source::Module(_) => gosum::check(&src_dir)?,
        };
        rec.go_mod = Some(checked.go_mod_digest.clone());
        rec.go_sum = checked.go_sum_digest.clone();
        rec.workspace = checked.workspace.as_ref().map(|w| w.report.clone());
        rec.warnings.extend(checked.warnings.iter().cloned());
        Ok(checked)
    })?;

    let modcache = run.step(Step::Modules, |_| steps::modules::fetch(&mods, &src_dir, work.path(), req))?;

    let store = Store::open(&req.cache_dir).map_err(|e| (Step::Toolchain, e.into()))?;
    let (pulled, _guard) = run.step(Step::Toolchain, |rec| {
        let (pulled, guard) = steps::toolchain::get_or_pull(&store, &toolchain, req)?;
        rec.image = Some(ImageFacts {
            manifest_digest: pulled.manifest_digest.to_string(),
            go_version: pulled.go_version.clone(),
        });
        rec.warnings.extend(pulled.warnings.iter().cloned());
        steps::toolchain::check(&pulled, &toolchain, &mut recipe)?;
        Ok((pulled, guard))
    })?;
    let go_work = mods.workspace.as_ref().map(|w| w.report.go_work.path.clone());
    let (tree, module) = match source {
        Source::Git { tree, .. } => (tree, None),
        // The zip's h1 names its content as the tree id names a commit's.
        Source::Module(f) => (f.facts.sum.clone().unwrap_or_default(), Some(f.module)),
    };
    Ok(Some(Prepared {
        work,
        src_dir,
        modcache,
        pulled,
        _guard,
        recipe,
        toolchain,
        mods,
        reference,
        reference_bi,
        go_work,
        tree,
        module,
    }))
}

/// A Git source: what the source step found.
enum Source {
    Git { opened: steps::source::Opened, tree: String },
    Module(steps::module::Fetched),
}

/// The `source` step for a Git source: the revision resolved, a dirty
/// working tree refused unless allowed, the commit's tree exported to `src_dir`.
fn git_source(
    run: &mut Run<'_>,
    location: &str,
    rev: &str,
    src_dir: &Path,
) -> Result<(steps::source::Opened, String), (Step, RebuildError)> {
    let req = run.req;
    let work = src_dir.parent().unwrap_or(src_dir);
    run.step(Step::Source, |rec| {
        let opened = steps::source::open(location, rev, work)?;
        let c = &opened.commit;
        rec.commit = Some(CommitFacts {
            uri: opened.source.uri().to_string(),
            id: c.id.clone(),
            time_rfc3339: c.time_rfc3339.clone(),
            tags: c.tags.clone(),
        });
        rec.dirty_paths = steps::source::dirty_paths(&opened, req.allow_dirty)?;
        if !rec.dirty_paths.is_empty() {
            rec.warnings.push(format!(
                "the working tree has uncommitted changes ({}): the rebuild used the commit's tree, not the working tree",
                Setting::AllowDirty
            ));
        }
        let exported = steps::source::export(&opened, src_dir)?;
        let e = &exported.export;
        rec.submodules =
            e.submodules.iter().map(|m| v1::Submodule { path: m.path.clone(), commit: m.commit.clone() }).collect();
        rec.escaping_symlinks = e.symlinks.iter().filter(|l| l.escapes).map(|l| l.path.clone()).collect();
        rec.warnings.extend(exported.warnings());
        Ok((opened, exported.tree))
    })
}

/// Every step of `reprove verify`.
pub(crate) fn verify(run: &mut Run<'_>, cancel: &CancelToken) -> Result<(), (Step, RebuildError)> {
    let req = run.req;
    let Some(p) = prepare(run)? else { return Ok(()) };
    let plan = p.plan(&req.cache_dir);
    run.record.recipe = Some(p.recipe.clone());
    run.record.plan = Some((plan.go_args.clone(), plan.env.clone()));
    let out_dir = p.work.path().join("out");
    let rebuilt = run.step(Step::Build, |rec| {
        std::fs::create_dir_all(&out_dir).map_err(|e| RebuildError::io("create", &out_dir, e))?;
        let built = build::run(&plan, &p.pulled, &p.src_dir, &p.modcache, &out_dir, req, cancel)?;
        if req.keep.is_some() {
            build::keep_output(&out_dir, &plan.output_name, &built.bytes)?;
        }
        rec.runtime = Some(built.runtime.clone());
        Ok(built)
    })?;

    run.step(Step::Compare, |rec| {
        // The bytes read once from the checked descriptor, after the sandbox was gone.
        let data = rebuilt.bytes;
        let sha = stdx::sha256_hex(&data);
        let rebuilt_bi = goinfo::read_build_info(&data).ok();
        let reference_sha = rec.reference.as_ref().map(|r| r.sha256.clone()).unwrap_or_default();
        let judgement = judge::verdict(p.reference.as_deref(), &reference_sha, &data, &sha);
        rec.judged = Some(Judged {
            rebuilt: Some(v1::Artifact {
                sha256: sha,
                size: data.len() as u64,
                path: req.keep.as_ref().map(|_| rebuilt.path.display().to_string()),
            }),
            verdict: judgement.verdict,
            causes: judgement.causes,
            reference_self_check: judgement.reference_self_check,
            modules: judge::modules(rebuilt_bi.as_ref().or(p.reference_bi.as_ref()), p.mods.go_sum.as_ref()),
            module_findings: judge::module_findings(
                p.mods.go_sum.as_ref(),
                p.reference_bi.as_ref(),
                rebuilt_bi.as_ref(),
            ),
        });
        Ok(())
    })
}
