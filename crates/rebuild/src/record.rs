//! What a run found, step by step, and the report made from it once, at the
//! end ([`Record::into_report`]). The steps never see the report: the
//! pipeline records their typed outcomes here as they come.

use std::collections::BTreeMap;
use std::time::SystemTime;

use ::recipe::Recipe;
use oci::PinnedImage;
use report::v1::{self, FileDigest, Step, Verdict};

use crate::steps::{judge, recipe};
use crate::{RebuildError, Request, SourceInput};

/// The reference as the report gives it.
#[derive(Debug, Clone)]
pub(crate) struct ReferenceFacts {
    pub path: Option<String>,
    pub sha256: String,
    pub size: Option<u64>,
    pub go_version: Option<String>,
    /// The main module path of its build info.
    pub main_module: Option<String>,
    /// The image it was read from, when it was.
    pub image: Option<v1::ReferenceImage>,
}

/// The commit the revision resolved to.
#[derive(Debug, Clone)]
pub(crate) struct CommitFacts {
    pub uri: String,
    pub id: String,
    pub time_rfc3339: String,
    pub tags: Vec<String>,
}

/// The pulled toolchain image.
#[derive(Debug, Clone)]
pub(crate) struct ImageFacts {
    pub manifest_digest: String,
    pub go_version: Option<String>,
}

/// The outcome of the compare step.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    /// `None` when the verdict came before any build (`main-module-sum`).
    pub rebuilt: Option<v1::Artifact>,
    pub verdict: Verdict,
    pub causes: Vec<v1::Cause>,
    /// The reference checked against its own content ID (when compared).
    pub reference_self_check: Option<v1::SelfCheck>,
    pub modules: Vec<v1::Module>,
    pub module_findings: Vec<v1::ModuleFinding>,
}

/// What the steps found so far.
pub(crate) struct Record {
    pub invocation_id: String,
    pub started_on: String,
    pub timings: Vec<v1::Timing>,
    /// Notes for the report, in the order the steps found them.
    pub warnings: Vec<String>,
    pub reference: Option<ReferenceFacts>,
    pub commit: Option<CommitFacts>,
    /// The released module version, for a module source.
    pub module: Option<v1::ModuleSource>,
    /// Uncommitted changes of the working tree, rebuilt anyway.
    pub dirty_paths: Vec<String>,
    pub submodules: Vec<v1::Submodule>,
    pub escaping_symlinks: Vec<String>,
    /// The recipe as resolved, then as built.
    pub recipe: Option<Recipe>,
    /// The build's `go` arguments and environment, once planned.
    pub plan: Option<(Vec<String>, BTreeMap<String, String>)>,
    /// The toolchain the commit's `reprove.lock` chose.
    pub locked_toolchain: Option<PinnedImage>,
    pub go_mod: Option<FileDigest>,
    pub go_sum: Option<FileDigest>,
    pub workspace: Option<v1::Workspace>,
    pub image: Option<ImageFacts>,
    /// The sandbox runtime that ran the build.
    pub runtime: Option<String>,
    pub judged: Option<Judged>,
}

impl Record {
    /// Nothing found yet.
    pub(crate) fn new() -> Record {
        Record {
            invocation_id: invocation_id(),
            started_on: now_rfc3339(),
            timings: Vec::new(),
            warnings: Vec::new(),
            reference: None,
            commit: None,
            module: None,
            dirty_paths: Vec::new(),
            submodules: Vec::new(),
            escaping_symlinks: Vec::new(),
            recipe: None,
            plan: None,
            locked_toolchain: None,
            go_mod: None,
            go_sum: None,
            workspace: None,
            image: None,
            runtime: None,
            judged: None,
        }
    }

    /// The report's inputs.
    pub(crate) fn inputs(&self, req: &Request) -> v1::Inputs {
        let commit = self.commit.as_ref();
        let toolchain = self.locked_toolchain.as_ref().or(req.toolchain.as_ref());
        let reference = self.reference.as_ref();
        v1::Inputs {
            source: v1::Source {
                uri: match &req.source {
                    SourceInput::Git { location, .. } => commit.map_or_else(|| location.clone(), |c| c.uri.clone()),
                    SourceInput::Module { path, version } => match &self.module {
                        Some(m) => format!("pkg:golang/{}@{}", m.path, m.version),
                        None => format!("pkg:golang/{path}@{version}"),
                    },
                },
                rev: match &req.source {
                    SourceInput::Git { rev, .. } => rev.clone(),
                    SourceInput::Module { version, .. } => {
                        self.module.as_ref().map_or_else(|| version.clone(), |m| m.version.clone())
                    }
                },
                commit: commit.map(|c| c.id.clone()),
                commit_time: commit.map(|c| c.time_rfc3339.clone()),
                tags: commit.map(|c| c.tags.clone()).unwrap_or_default(),
                dirty: !self.dirty_paths.is_empty(),
                dirty_paths: self.dirty_paths.clone(),
                submodules: self.submodules.clone(),
                escaping_symlinks: self.escaping_symlinks.clone(),
                module: self.module.clone(),
            },
            go_mod: self.go_mod.clone(),
            go_sum: self.go_sum.clone(),
            reference: v1::Reference {
                path: reference.and_then(|r| r.path.clone()),
                sha256: reference.map(|r| r.sha256.clone()).unwrap_or_default(),
                size: reference.and_then(|r| r.size),
                go_version: reference.and_then(|r| r.go_version.clone()),
                main_module: reference.and_then(|r| r.main_module.clone()),
                image: reference.and_then(|r| r.image.clone()),
                self_check: self.judged.as_ref().and_then(|j| j.reference_self_check),
            },
            toolchain: v1::Toolchain {
                image: toolchain.map(ToString::to_string).unwrap_or_default(),
                digest: toolchain.map(|t| t.digest().to_string()).unwrap_or_default(),
                manifest_digest: self.image.as_ref().map(|i| i.manifest_digest.clone()),
                go_version: self.image.as_ref().and_then(|i| i.go_version.clone()),
                from: if self.locked_toolchain.is_some() {
                    Some(::recipe::lock::LOCK_FILE_NAME.to_string())
                } else {
                    req.toolchain.as_ref().map(|_| "flag".to_string())
                },
            },
            workspace: self.workspace.clone(),
        }
    }

    /// The report's recipe: as resolved, with the build's arguments once planned.
    pub(crate) fn recipe(&self) -> v1::Recipe {
        let (go_args, env) = self.plan.clone().unwrap_or_default();
        match &self.recipe {
            Some(r) => report_recipe(r, &go_args, &env),
            None => report_recipe(&Recipe::new(".", "", ""), &go_args, &env),
        }
    }

    /// The report's tool versions.
    pub(crate) fn tools(&self, req: &Request) -> v1::Tools {
        v1::Tools {
            reprove: req.tool_version.clone(),
            go: self.image.as_ref().and_then(|i| i.go_version.clone()),
            runtime: self.runtime.clone(),
        }
    }

    /// The report: the verdict when the compare step ran, else the failure of
    /// the step that stopped the run.
    pub(crate) fn into_report(self, req: &Request, failure: Option<(Step, RebuildError)>) -> v1::Report {
        let mut r = v1::Report {
            schema_version: v1::SCHEMA_VERSION,
            invocation_id: self.invocation_id.clone(),
            verdict: Verdict::Error,
            summary: String::new(),
            started_on: self.started_on.clone(),
            finished_on: now_rfc3339(),
            subject: v1::Subject {
                name: self.recipe.as_ref().map(|r| r.output_name.clone()).unwrap_or_default(),
                sha256: self.reference.as_ref().map(|r| r.sha256.clone()).unwrap_or_default(),
            },
            inputs: self.inputs(req),
            recipe: self.recipe(),
            rebuilt: None,
            causes: Vec::new(),
            modules: Vec::new(),
            module_findings: Vec::new(),
            timings: self.timings.clone(),
            error: None,
            warnings: self.warnings.clone(),
            tools: self.tools(req),
        };
        if let Some((step, e)) = failure {
            r.summary = format!("no verdict: the {step} step failed: {}", first_line(&e.to_string()));
            r.error = Some(failure_of(step, &e));
        } else if let Some(j) = self.judged {
            r.rebuilt = j.rebuilt;
            r.causes = j.causes;
            r.modules = j.modules;
            r.module_findings = j.module_findings;
            r.summary = judge::summary(j.verdict, &r);
            r.verdict = j.verdict;
        }
        r
    }
}

/// The report's failure for `e` in `step`.
pub(crate) fn failure_of(step: Step, e: &RebuildError) -> v1::Failure {
    v1::Failure {
        step,
        class: e.class(),
        code: e.code(),
        message: e.to_string(),
        remediation: e.remediation(),
        modules: e.modules(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

pub(crate) fn now_rfc3339() -> String {
    stdx::time::format_rfc3339(stdx::time::now_unix())
}

fn invocation_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    hex::encode(b)
}

pub(crate) fn report_recipe(
    r: &Recipe,
    go_args: &[String],
    build_env: &std::collections::BTreeMap<String, String>,
) -> v1::Recipe {
    let arch_level = recipe::ARCH_LEVEL_VARS.iter().find_map(|k| r.env.get(*k).map(|v| format!("{k}={v}")));
    v1::Recipe {
        package: r.package.clone(),
        goos: r.goos.clone(),
        goarch: r.goarch.clone(),
        arch_level,
        env: r.env.clone(),
        trimpath: r.trimpath,
        ldflags: r.ldflags.clone(),
        gcflags: r.gcflags.clone(),
        tags: r.tags.clone(),
        buildmode: r.buildmode.clone(),
        buildvcs: r.buildvcs.as_str().into(),
        output_name: r.output_name.clone(),
        go_version: r.go_version.clone(),
        go_args: go_args.to_vec(),
        build_env: build_env.clone(),
        origins: r.origins.iter().map(|(k, v)| (k.clone(), recipe::origin_text(v))).collect(),
        conflicts: r
            .conflicts
            .iter()
            .map(|c| v1::Conflict {
                field: c.field.clone(),
                used: c.used.clone(),
                used_origin: recipe::origin_text(&c.used_origin),
                overridden: c.overridden.clone(),
                overridden_origin: recipe::origin_text(&c.overridden_origin),
            })
            .collect(),
        notes: r.notes.clone(),
        exec: r
            .exec
            .iter()
            .map(|e| v1::ExecFlag {
                flag: e.flag.clone(),
                value: e.value.clone(),
                origin: recipe::origin_text(&e.origin),
            })
            .collect(),
        undetermined: r
            .undetermined
            .iter()
            .map(|u| v1::Undetermined { field: u.field.clone(), reason: u.reason.clone() })
            .collect(),
    }
}
