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
use crate::steps::{self, build, gosum, judge};
use crate::{workdirs, Progress, RebuildError, Request};

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
    /// The Git tree id of the source.
    pub tree: String,
}

/// The steps before the build: reference, source, recipe, go.sum, modules, toolchain.
pub(crate) fn prepare(run: &mut Run<'_>) -> Result<Prepared, (Step, RebuildError)> {
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
                image: r.image.clone(),
            });
            (r.data, r.build_info)
        }
        None => (None, None),
    };

    let work = WorkDir::new(req.keep.as_deref(), &req.cache_dir).map_err(|e| (Step::Reference, e))?;
    let src_dir = work.path().join("src");

    let (opened, exported) = run.step(Step::Source, |rec| {
        let opened = steps::source::open(&req.source, &req.rev, work.path())?;
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
        let exported = steps::source::export(&opened, &src_dir)?;
        let e = &exported.export;
        rec.submodules =
            e.submodules.iter().map(|m| v1::Submodule { path: m.path.clone(), commit: m.commit.clone() }).collect();
        rec.escaping_symlinks = e.symlinks.iter().filter(|l| l.escapes).map(|l| l.path.clone()).collect();
        rec.warnings.extend(exported.warnings());
        Ok((opened, exported))
    })?;

    let (mut recipe, toolchain) = run.step(Step::Recipe, |rec| {
        let resolved = steps::recipe::resolve_for_commit(
            &src_dir,
            &req.recipe,
            reference_bi.as_ref(),
            reference.as_deref(),
            &opened.commit,
        )?;
        let recipe = rec.recipe.insert(resolved.recipe).clone();
        steps::recipe::admit(&recipe, &req.recipe)?;
        // VCS stamping needs a clean checkout with .git; otherwise the build sees no .git.
        if recipe.buildvcs == BuildVcs::True {
            steps::source::checkout(&opened, &src_dir)?;
        }
        let (toolchain, from) = steps::recipe::choose_toolchain(req.toolchain.as_ref(), &src_dir, &recipe)?;
        if from == steps::recipe::ToolchainFrom::Lock {
            rec.locked_toolchain = Some(toolchain.clone());
        }
        Ok((recipe, toolchain))
    })?;

    let mods = run.step(Step::GoSum, |rec| {
        let checked = gosum::run(&src_dir, &recipe, reference_bi.as_ref())?;
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
    Ok(Prepared {
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
        tree: exported.tree,
    })
}

/// Every step of `reprove verify`.
pub(crate) fn verify(run: &mut Run<'_>, cancel: &CancelToken) -> Result<(), (Step, RebuildError)> {
    let req = run.req;
    let p = prepare(run)?;
    let plan = build::plan(&p.recipe, &p.pulled, &p.toolchain, &req.cache_dir, p.go_work.as_deref(), &p.tree);
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
            rebuilt: v1::Artifact {
                sha256: sha,
                size: data.len() as u64,
                path: req.keep.as_ref().map(|_| rebuilt.path.display().to_string()),
            },
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
