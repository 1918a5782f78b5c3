//! From a `reprove verify` report ([`report::v1::Report`]) to the plain inputs of the
//! [`crate::generate`] API: [`provenance_input`] (the rebuilt binary, the `go-rebuild/v1`
//! parameters and resolved dependencies, the report itself as an inline byproduct) and
//! [`vsa_input`] (about the reference: PASSED for `reproduced`, FAILED with the cause
//! codes for `not-reproduced`). A report whose verdict is `error` reached no verdict:
//! nothing is attested (docs/buildtype.md, "Reports without a verdict"). A missing or
//! malformed field is a [`MappingError`] naming it.
//!
//! When the reference was read from an image, both statements name that image after the
//! binary, by the digest given and, when that is an index, by the platform manifest's
//! digest ([`image_subjects`], `docs/attestation-subjects.md`).

use std::collections::BTreeMap;

use report::v1;

use crate::generate::{
    Artifact, AttestationRef, Byproduct, ByproductContent, ExecFlag, ImageDigestKind, ImageSubject, Module,
    ProvenanceInput, SourceFile, SourceModule, ToolchainImage, VsaInput,
};
use crate::vsa::VerificationResult;

/// The builder id written when `--builder-id` is not given (docs/buildtype.md).
pub const DEFAULT_BUILDER_ID: &str = "https://github.com/reprove/reprove/builders/local/v1";

/// The policy a VSA of `verify` applied: a byte-identical rebuild under `go-rebuild/v1`.
pub const VSA_POLICY_URI: &str = "https://github.com/reprove/reprove/buildtypes/go-rebuild/v1#byte-identical";

/// A field of the report that cannot be attested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the report's {field}: {reason}")]
pub struct MappingError {
    /// The field, as the report's JSON names it (`inputs.goMod`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn missing(field: &'static str) -> MappingError {
    MappingError { field, reason: "is missing".to_owned() }
}

/// A repository URL as the `go-rebuild/v1` `source.uri` (`git+https://…`).
fn source_uri(uri: &str) -> String {
    if uri.starts_with("git+") || !uri.contains("://") {
        uri.to_owned()
    } else {
        format!("git+{uri}")
    }
}

/// `name[:tag]@sha256:…` without its digest.
fn without_digest(image: &str) -> &str {
    image.split_once('@').map_or(image, |(name, _)| name)
}

/// The `go build` flags of the recipe in order, without `build`, `-o FILE`, `-ldflags`,
/// `-tags` and the package.
fn build_flags(recipe: &v1::Recipe) -> Vec<String> {
    let mut args = recipe.go_args.iter();
    let mut flags = Vec::new();
    if recipe.go_args.first().is_some_and(|a| a == "build") {
        args.next();
    }
    let mut rest: Vec<&String> = args.collect();
    if rest.last().is_some_and(|last| **last == recipe.package) {
        rest.pop();
    }
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        let flag = arg.split_once('=').map_or(arg, |(f, _)| f);
        let skip = matches!(flag, "-o" | "-ldflags" | "--ldflags" | "-tags" | "--tags");
        if skip && !arg.contains('=') {
            i += 2;
            continue;
        }
        if !skip {
            flags.push(arg.to_owned());
        }
        i += 1;
    }
    flags
}

/// The provenance of the rebuild a report describes; `report_bytes` are its JSON, carried
/// inline as the byproduct `report.json`.
pub fn provenance_input(
    report: &v1::Report,
    report_bytes: &[u8],
    builder_id: &str,
) -> Result<ProvenanceInput, MappingError> {
    if report.verdict == v1::Verdict::Error {
        return Err(MappingError {
            field: "verdict",
            reason: "is `error`: the rebuild reached no verdict and there is no rebuilt binary to attest".to_owned(),
        });
    }
    let rebuilt = report.rebuilt.as_ref().ok_or_else(|| missing("rebuilt"))?;
    let source = &report.inputs.source;
    let (source_uri, source_rev, source_module) = match &source.module {
        Some(m) => {
            let h1 = m.sum.clone().ok_or_else(|| missing("inputs.source.module.sum"))?;
            let module =
                SourceModule { path: m.path.clone(), version: m.version.clone(), h1, zip_sha256: m.zip_sha256.clone() };
            (source.uri.clone(), m.version.clone(), Some(module))
        }
        None => {
            let commit = source.commit.as_ref().ok_or_else(|| missing("inputs.source.commit"))?;
            (source_uri(&source.uri), commit.clone(), None)
        }
    };
    let go_mod = report.inputs.go_mod.as_ref().ok_or_else(|| missing("inputs.goMod"))?;
    let recipe = &report.recipe;
    let name = if recipe.output_name.is_empty() { &report.subject.name } else { &recipe.output_name };
    let arch_var = recipe.arch_level.as_deref().and_then(|l| l.split_once('=')).map(|(k, _)| k);
    let env: BTreeMap<String, String> = recipe
        .env
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "GOOS" | "GOARCH") && Some(k.as_str()) != arch_var)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut modules = Vec::with_capacity(report.modules.len());
    for m in &report.modules {
        // A module of the go.work workspace is part of the source tree: the
        // commit and the workspace files stand for it.
        if m.version == "(devel)" && m.h1.is_empty() && m.replace.is_none() {
            continue;
        }
        if m.h1.is_empty() {
            return Err(MappingError {
                field: "modules[].h1",
                reason: format!("{}@{} has no h1 hash", m.path, m.version),
            });
        }
        modules.push(Module { path: m.path.clone(), version: m.version.clone(), h1: m.h1.clone() });
    }
    Ok(ProvenanceInput {
        subject: Artifact { name: name.clone(), sha256: rebuilt.sha256.clone() },
        images: image_subjects(report),
        source_uri,
        source_rev,
        source_module,
        package: recipe.package.clone(),
        goos: recipe.goos.clone(),
        goarch: recipe.goarch.clone(),
        arch_level: recipe.arch_level.clone(),
        flags: build_flags(recipe),
        ldflags: recipe.ldflags.clone(),
        tags: recipe.tags.clone(),
        env,
        toolchain: ToolchainImage {
            reference: without_digest(&report.inputs.toolchain.image).to_owned(),
            digest: report.inputs.toolchain.digest.clone(),
        },
        go_mod_sha256: go_mod.sha256.clone(),
        go_sum_sha256: report.inputs.go_sum.as_ref().map(|s| s.sha256.clone()),
        go_mod_path: Some(go_mod.path.clone()).filter(|p| p != "go.mod"),
        exec: exec_flags(report),
        workspace_files: workspace_files(report),
        modules,
        builder_id: builder_id.to_owned(),
        builder_version: BTreeMap::from([("reprove".to_owned(), report.tools.reprove.clone())]),
        invocation_id: report.invocation_id.clone(),
        started_on: report.started_on.clone(),
        finished_on: report.finished_on.clone(),
        byproduct: Some(Byproduct {
            name: "report.json".to_owned(),
            media_type: Some("application/json".to_owned()),
            content: ByproductContent::Inline(report_bytes.to_vec()),
        }),
    })
}

/// The recipe values of the rebuild that ran or read what they name.
fn exec_flags(report: &v1::Report) -> Vec<ExecFlag> {
    report
        .recipe
        .exec
        .iter()
        .map(|e| ExecFlag { flag: e.flag.clone(), value: e.value.clone(), origin: e.origin.clone() })
        .collect()
}

/// The workspace's files besides the root go.mod and go.sum, in a fixed order:
/// go.work, go.work.sum, then each other module's go.mod and go.sum.
fn workspace_files(report: &v1::Report) -> Vec<SourceFile> {
    let Some(w) = &report.inputs.workspace else { return Vec::new() };
    let mut files = vec![SourceFile { path: w.go_work.path.clone(), sha256: w.go_work.sha256.clone() }];
    files.extend(w.go_work_sum.iter().map(|f| SourceFile { path: f.path.clone(), sha256: f.sha256.clone() }));
    for m in w.modules.iter().filter(|m| m.dir != ".") {
        for f in std::iter::once(&m.go_mod).chain(m.go_sum.iter()) {
            files.push(SourceFile { path: f.path.clone(), sha256: f.sha256.clone() });
        }
    }
    files
}

/// The image an `oci://IMAGE@sha256:…#/path` reference came from, and the path.
fn reference_image(path: &str) -> Option<(ToolchainImage, Option<String>)> {
    let rest = path.strip_prefix("oci://")?;
    let (image, file) = rest.split_once('#').map_or((rest, None), |(image, file)| (image, Some(file.to_owned())));
    let (name, digest) = image.split_once('@')?;
    Some((ToolchainImage { reference: name.to_owned(), digest: digest.to_owned() }, file))
}

/// `registry/repository[:tag]` without its tag (a registry port stays).
fn without_tag(name: &str) -> &str {
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].find(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    }
}

/// The image subjects of both statements: the image the reference was read from, by
/// the digest given (an index or a platform manifest) and, when it is an index, by the
/// platform manifest's digest too. Empty when the reference was a file or a digest. A
/// report of an older reprove, without `inputs.reference.image`, gives the digest of its
/// `oci://` path, of unknown kind.
pub fn image_subjects(report: &v1::Report) -> Vec<ImageSubject> {
    let reference = &report.inputs.reference;
    if let Some(image) = &reference.image {
        let subject = |digest: &str, kind| ImageSubject {
            name: image.name.clone(),
            digest: digest.to_owned(),
            kind: Some(kind),
            path: Some(image.path.clone()),
            platform: Some(image.platform.clone()),
        };
        if image.digest == image.manifest_digest {
            return vec![subject(&image.digest, ImageDigestKind::Manifest)];
        }
        return vec![
            subject(&image.digest, ImageDigestKind::Index),
            subject(&image.manifest_digest, ImageDigestKind::Manifest),
        ];
    }
    match reference.path.as_deref().and_then(reference_image) {
        Some((image, path)) => vec![ImageSubject {
            name: without_tag(&image.reference).to_owned(),
            digest: image.digest,
            kind: None,
            path,
            platform: None,
        }],
        None => Vec::new(),
    }
}

/// The VSA about the reference binary of a report, with the signed provenance as its
/// input attestation.
pub fn vsa_input(report: &v1::Report, provenance: AttestationRef, builder_id: &str) -> Result<VsaInput, MappingError> {
    let (result, causes) = match report.verdict {
        v1::Verdict::Reproduced => (VerificationResult::Passed, Vec::new()),
        v1::Verdict::NotReproduced => {
            let mut causes: Vec<String> = report.causes.iter().map(|c| c.code.as_str().to_owned()).collect();
            if causes.is_empty() {
                causes.push("unexplained".to_owned());
            }
            (VerificationResult::Failed, causes)
        }
        other @ v1::Verdict::Error => {
            return Err(MappingError {
                field: "verdict",
                reason: format!("is {:?}: only `reproduced` and `not-reproduced` are attested", other.as_str()),
            })
        }
    };
    let reference = &report.inputs.reference;
    let resource_uri = match &reference.path {
        Some(p) if p.contains("://") => p.clone(),
        Some(p) => format!("file:{p}"),
        None => format!("urn:sha256:{}", reference.sha256),
    };
    Ok(VsaInput {
        reference: Artifact { name: report.subject.name.clone(), sha256: reference.sha256.clone() },
        images: image_subjects(report),
        resource_uri,
        result,
        causes,
        verifier_id: builder_id.to_owned(),
        verifier_version: BTreeMap::from([("reprove".to_owned(), report.tools.reprove.clone())]),
        time_verified: report.finished_on.clone(),
        policy_uri: VSA_POLICY_URI.to_owned(),
        policy_sha256: None,
        input_attestations: vec![provenance],
        hosted_builder: false,
        recipe_exec: exec_flags(report),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::generate;
    use crate::statement::sha256_hex;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/report/not-reproduced.json");

    fn report() -> v1::Report {
        serde_json::from_str(FIXTURE).unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    fn schema(name: &str) -> jsonschema::Validator {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        jsonschema::options().should_validate_formats(true).build(&value).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn assert_valid(validator: &jsonschema::Validator, value: &serde_json::Value, what: &str) {
        let errors: Vec<String> =
            validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{what} does not match its schema: {errors:#?}\n{value:#}");
    }

    fn statement_json(s: &crate::statement::Statement) -> serde_json::Value {
        serde_json::to_value(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn provenance_of_a_report() {
        let r = report();
        let input = provenance_input(&r, FIXTURE.as_bytes(), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.subject.name, "app");
        assert_eq!(input.subject.sha256, "7".repeat(64));
        assert_eq!(input.source_uri, "git+https://example.com/acme/app");
        assert_eq!(input.source_rev, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(input.package, "./cmd/app");
        assert_eq!(input.arch_level.as_deref(), Some("GOAMD64=v1"));
        assert_eq!(input.flags, ["-trimpath", "-buildvcs=false"]);
        assert_eq!(input.ldflags.as_deref(), Some("-s -w -X main.version=1.2.3"));
        assert_eq!(input.tags, ["netgo", "osusergo"]);
        assert_eq!(input.env, BTreeMap::from([("CGO_ENABLED".to_owned(), "0".to_owned())]));
        assert_eq!(input.toolchain.reference, "golang:1.22.5");
        assert_eq!(input.toolchain.digest, format!("sha256:{}", "5".repeat(64)));
        assert_eq!(input.go_mod_sha256, "2".repeat(64));
        assert_eq!(input.go_sum_sha256, Some("3".repeat(64)));
        assert_eq!(input.modules.len(), 2);
        assert_eq!(input.modules[0].h1, "h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=");
        assert_eq!(input.invocation_id, "3f1c2a9e5b7d4e60a1b2c3d4e5f60718");
        assert_eq!(input.started_on, "2026-11-20T09:00:00Z");
        assert_eq!(input.finished_on, "2026-11-20T09:01:30Z");
        assert_eq!(input.builder_id, DEFAULT_BUILDER_ID);
        assert!(
            matches!(&input.byproduct, Some(Byproduct { content: ByproductContent::Inline(b), .. }) if b == FIXTURE.as_bytes())
        );

        let statement = generate::provenance_statement(&input).unwrap_or_else(|e| panic!("{e}"));
        let value = statement_json(&statement);
        assert_valid(&schema("statement.schema.json"), &value, "statement");
        assert_valid(&schema("provenance.schema.json"), &value["predicate"], "provenance");
        let deps =
            value["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().cloned().unwrap_or_default();
        // commit, go.mod, go.sum, 2 modules, the toolchain image.
        assert_eq!(deps.len(), 6, "{deps:#?}");
        assert_eq!(deps[5]["digest"]["sha256"], "5".repeat(64));
    }

    /// A released module version as the source: the provenance names the module
    /// zip (`pkg:golang/PATH@VERSION`, its h1 and SHA-256) instead of a commit.
    #[test]
    fn a_module_source_is_named_by_its_zip() {
        let mut r = report();
        r.inputs.source.uri = "pkg:golang/example.com/tool@v1.2.3".into();
        r.inputs.source.rev = "v1.2.3".into();
        r.inputs.source.commit = None;
        r.inputs.source.module = Some(v1::ModuleSource {
            path: "example.com/tool".into(),
            version: "v1.2.3".into(),
            recorded_sum: Some("h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=".into()),
            sum: Some("h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=".into()),
            zip_sha256: Some("9".repeat(64)),
            zip_from: Some("cache".into()),
            checked_against: vec!["reference build info".into()],
        });
        let input = provenance_input(&r, FIXTURE.as_bytes(), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (input.source_uri.as_str(), input.source_rev.as_str()),
            ("pkg:golang/example.com/tool@v1.2.3", "v1.2.3")
        );
        let statement = generate::provenance_statement(&input).unwrap_or_else(|e| panic!("{e}"));
        let value = statement_json(&statement);
        assert_valid(&schema("provenance.schema.json"), &value["predicate"], "provenance");
        let definition = &value["predicate"]["buildDefinition"];
        assert_valid(&schema("provenance-buildtype.schema.json"), &definition["externalParameters"], "parameters");
        let deps =
            value["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().cloned().unwrap_or_default();
        assert_eq!(deps[0]["uri"], "pkg:golang/example.com/tool@v1.2.3");
        assert_eq!(deps[0]["digest"]["dirHash"], "h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=");
        assert_eq!(deps[0]["digest"]["sha256"], "9".repeat(64));
        assert_eq!(deps[1]["uri"], "pkg:golang/example.com/tool@v1.2.3#go.mod");
        // A module source without a verified sum cannot be attested.
        if let Some(m) = r.inputs.source.module.as_mut() {
            m.sum = None;
        }
        let e = provenance_input(&r, FIXTURE.as_bytes(), DEFAULT_BUILDER_ID)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("inputs.source.module.sum"), "{e}");
    }

    /// The report's recipe values that ran code, and a -modfile, reach the provenance
    /// (external parameters, resolved dependencies) and the VSA.
    #[test]
    fn recipe_exec_and_a_modfile_reach_both_statements() {
        let mut r = report();
        r.recipe.exec = vec![v1::ExecFlag {
            flag: "-toolexec".into(),
            value: "/src/tools/wrap".into(),
            origin: "recipe-file:reprove.toml".into(),
        }];
        r.inputs.go_mod = Some(v1::FileDigest { path: "alt.mod".into(), sha256: "2".repeat(64) });
        let input = provenance_input(&r, FIXTURE.as_bytes(), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.exec.len(), 1);
        assert_eq!(input.go_mod_path.as_deref(), Some("alt.mod"));
        let value = statement_json(&generate::provenance_statement(&input).unwrap_or_else(|e| panic!("{e}")));
        assert_valid(&schema("provenance.schema.json"), &value["predicate"], "provenance");
        let definition = &value["predicate"]["buildDefinition"];
        assert_valid(&schema("provenance-buildtype.schema.json"), &definition["externalParameters"], "parameters");
        assert_eq!(
            definition["externalParameters"]["exec"],
            serde_json::json!([{"flag": "-toolexec", "value": "/src/tools/wrap", "origin": "recipe-file:reprove.toml"}])
        );
        assert_eq!(definition["resolvedDependencies"][1]["name"], "alt.mod");
        assert_eq!(definition["resolvedDependencies"][2]["name"], "alt.sum");
        r.verdict = v1::Verdict::Reproduced;
        r.causes.clear();
        let vsa =
            vsa_input(&r, generate::attestation_ref("p", b"p"), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        let value = statement_json(&generate::vsa_statement(&vsa).unwrap_or_else(|e| panic!("{e}")));
        assert_valid(&schema("vsa.schema.json"), &value["predicate"], "vsa");
        assert_eq!(value["predicate"][generate::VSA_RECIPE_EXEC_FIELD][0]["origin"], "recipe-file:reprove.toml");
    }

    #[test]
    fn a_workspace_build_lists_its_files_and_not_its_devel_modules() {
        let mut r = report();
        let digest = |path: &str, c: char| v1::FileDigest { path: path.into(), sha256: c.to_string().repeat(64) };
        r.inputs.workspace = Some(v1::Workspace {
            go_work: digest("go.work", 'a'),
            go_work_sum: Some(digest("go.work.sum", 'b')),
            modules: vec![
                v1::WorkspaceModule {
                    path: "example.com/app".into(),
                    dir: ".".into(),
                    go_mod: digest("go.mod", '2'),
                    go_sum: Some(digest("go.sum", '3')),
                },
                v1::WorkspaceModule {
                    path: "example.com/lib".into(),
                    dir: "lib".into(),
                    go_mod: digest("lib/go.mod", 'c'),
                    go_sum: None,
                },
            ],
        });
        r.modules.insert(
            0,
            v1::Module { path: "example.com/lib".into(), version: "(devel)".into(), h1: String::new(), replace: None },
        );
        let input = provenance_input(&r, FIXTURE.as_bytes(), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.modules.len(), 2, "the (devel) workspace module is part of the source");
        let files: Vec<&str> = input.workspace_files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, ["go.work", "go.work.sum", "lib/go.mod"]);
        let value = statement_json(&generate::provenance_statement(&input).unwrap_or_else(|e| panic!("{e}")));
        assert_valid(&schema("provenance.schema.json"), &value["predicate"], "provenance");
        let deps =
            value["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().cloned().unwrap_or_default();
        // commit, go.mod, go.sum, go.work, go.work.sum, lib/go.mod, 2 modules, the toolchain image.
        assert_eq!(deps.len(), 9, "{deps:#?}");
        assert_eq!(deps[3]["name"], "go.work");
        assert_eq!(deps[3]["digest"]["sha256"], "a".repeat(64));
        assert!(deps[5]["uri"].as_str().is_some_and(|u| u.ends_with("#lib/go.mod")), "{deps:#?}");
    }

    #[test]
    fn vsa_of_a_not_reproduced_report_is_failed_with_causes() {
        let r = report();
        let prov = generate::attestation_ref("app.provenance.intoto.jsonl", b"envelope");
        let input = vsa_input(&r, prov, "https://builder.example/ci").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.result, VerificationResult::Failed);
        assert_eq!(input.causes, ["ldflags", "build-id-only"]);
        assert_eq!(input.reference.sha256, "1".repeat(64));
        assert_eq!(input.images.len(), 2, "an index reference: the index and the platform manifest");
        assert_eq!(input.images[0].name, "registry.example:5000/acme/app");
        assert_eq!(input.images[0].digest, format!("sha256:{}", "4".repeat(64)));
        assert_eq!(input.input_attestations[0].sha256, sha256_hex(b"envelope"));
        assert!(generate::verified_levels(&input).is_empty());
        let value = statement_json(&generate::vsa_statement(&input).unwrap_or_else(|e| panic!("{e}")));
        assert_valid(&schema("vsa.schema.json"), &value["predicate"], "vsa");
        assert_eq!(value["subject"].as_array().map(Vec::len), Some(3));
        assert_eq!(value["predicate"][generate::VSA_CAUSES_FIELD][0], "ldflags");
    }

    #[test]
    fn vsa_of_a_reproduced_report_is_passed_and_reproduced() {
        let mut r = report();
        r.verdict = v1::Verdict::Reproduced;
        r.causes.clear();
        r.inputs.reference.path = Some("dist/app".into());
        r.inputs.reference.image = None;
        let prov = generate::attestation_ref("app.provenance.intoto.jsonl", b"envelope");
        let input = vsa_input(&r, prov, DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.result, VerificationResult::Passed);
        assert!(input.images.is_empty());
        assert_eq!(input.resource_uri, "file:dist/app");
        assert!(generate::verified_levels(&input).contains(&generate::LEVEL_REPRODUCED.to_owned()));
        let value = statement_json(&generate::vsa_statement(&input).unwrap_or_else(|e| panic!("{e}")));
        assert_valid(&schema("vsa.schema.json"), &value["predicate"], "vsa");
    }

    #[test]
    fn missing_fields_and_error_verdicts_are_named() {
        let mut r = report();
        r.inputs.go_mod = None;
        let e = provenance_input(&r, b"{}", DEFAULT_BUILDER_ID).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("inputs.goMod"), "{e}");

        let mut r = report();
        r.inputs.source.commit = None;
        let e = provenance_input(&r, b"{}", DEFAULT_BUILDER_ID).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("inputs.source.commit"), "{e}");

        let mut r = report();
        r.verdict = v1::Verdict::Error;
        r.rebuilt = None;
        let e = provenance_input(&r, b"{}", DEFAULT_BUILDER_ID).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("verdict") && e.contains("error"), "{e}");
        let prov = generate::attestation_ref("x", b"x");
        let e = vsa_input(&r, prov, DEFAULT_BUILDER_ID).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("verdict"), "{e}");

        let mut r = report();
        r.modules[1].h1.clear();
        let e = provenance_input(&r, b"{}", DEFAULT_BUILDER_ID).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("example.com/acme/lib@v1.0.0"), "{e}");
    }

    #[test]
    fn a_failed_vsa_without_causes_says_unexplained() {
        let mut r = report();
        r.causes.clear();
        let input =
            vsa_input(&r, generate::attestation_ref("p", b"p"), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.causes, ["unexplained"]);
        assert!(generate::vsa_statement(&input).is_ok());
    }

    #[test]
    fn flags_keep_their_order_without_ldflags_tags_output_and_package() {
        let mut r = report().recipe;
        r.go_args = ["build", "-o", "/out/app", "-trimpath", "-tags", "a", "-mod=readonly", "-ldflags=-s", "./cmd/app"]
            .map(String::from)
            .to_vec();
        assert_eq!(build_flags(&r), ["-trimpath", "-mod=readonly"]);
    }

    /// Both statements of a report whose reference was read from an image.
    fn statements(r: &v1::Report) -> (serde_json::Value, serde_json::Value) {
        let input = provenance_input(r, FIXTURE.as_bytes(), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        let provenance = statement_json(&generate::provenance_statement(&input).unwrap_or_else(|e| panic!("{e}")));
        let vsa =
            vsa_input(r, generate::attestation_ref("p", b"p"), DEFAULT_BUILDER_ID).unwrap_or_else(|e| panic!("{e}"));
        let vsa = statement_json(&generate::vsa_statement(&vsa).unwrap_or_else(|e| panic!("{e}")));
        (provenance, vsa)
    }

    fn subject_digests(statement: &serde_json::Value) -> Vec<String> {
        statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{}={}",
                    s["name"].as_str().unwrap_or_default(),
                    s["digest"]["sha256"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// A reference read through an image index: both statements name the binary first
    /// (unchanged), then the index digest as given, then the platform manifest's, with
    /// the same name and annotations; they follow attestation-subjects.schema.json.
    #[test]
    fn an_index_reference_gives_both_statements_the_index_and_the_platform_digest() {
        let r = report();
        let (provenance, vsa) = statements(&r);
        let (index, manifest) = (
            format!("registry.example:5000/acme/app={}", "4".repeat(64)),
            format!("registry.example:5000/acme/app={}", "8".repeat(64)),
        );
        assert_eq!(subject_digests(&provenance), [format!("app={}", "7".repeat(64)), index.clone(), manifest.clone()]);
        assert_eq!(subject_digests(&vsa), [format!("app={}", "1".repeat(64)), index, manifest]);
        // The binary subject is exactly what it was before images were added.
        let mut plain = report();
        plain.inputs.reference.image = None;
        plain.inputs.reference.path = Some("dist/app".into());
        let (p0, v0) = statements(&plain);
        assert_eq!(p0["subject"].as_array().map(Vec::len), Some(1));
        assert_eq!(provenance["subject"][0], p0["subject"][0]);
        assert_eq!(vsa["subject"][0], v0["subject"][0]);
        for statement in [&provenance, &vsa] {
            assert_eq!(statement["subject"][1]["annotations"][generate::ANNOTATION_IMAGE_DIGEST], "index");
            assert_eq!(statement["subject"][2]["annotations"][generate::ANNOTATION_IMAGE_DIGEST], "manifest");
            for i in [1, 2] {
                assert_eq!(statement["subject"][i]["annotations"][generate::ANNOTATION_IMAGE_PATH], "/usr/bin/app");
                assert_eq!(statement["subject"][i]["annotations"][generate::ANNOTATION_IMAGE_PLATFORM], "linux/amd64");
            }
            assert_valid(&schema("attestation-subjects.schema.json"), &statement["subject"], "subjects");
            assert_valid(&schema("statement.schema.json"), statement, "statement");
        }
        assert_valid(&schema("provenance.schema.json"), &provenance["predicate"], "provenance");
        assert_valid(&schema("vsa.schema.json"), &vsa["predicate"], "vsa");
    }

    /// A reference read by a platform manifest's digest: that digest, once.
    #[test]
    fn a_manifest_reference_gives_one_image_subject() {
        let mut r = report();
        if let Some(image) = r.inputs.reference.image.as_mut() {
            image.digest = image.manifest_digest.clone();
            image.index_digest = None;
        }
        let (provenance, vsa) = statements(&r);
        for statement in [&provenance, &vsa] {
            let subjects = subject_digests(statement);
            assert_eq!(subjects.len(), 2, "{statement:#}");
            assert_eq!(subjects[1], format!("registry.example:5000/acme/app={}", "8".repeat(64)));
            assert_eq!(statement["subject"][1]["annotations"][generate::ANNOTATION_IMAGE_DIGEST], "manifest");
            assert_valid(&schema("attestation-subjects.schema.json"), &statement["subject"], "subjects");
        }
    }

    /// The schema is not vacuous: an image subject without its digest kind, a binary
    /// subject that is not first, a third image subject, are refused.
    #[test]
    fn the_subjects_schema_refuses_other_layouts() {
        let validator = schema("attestation-subjects.schema.json");
        let (provenance, _) = statements(&report());
        let good = provenance["subject"].clone();
        assert!(validator.is_valid(&good));
        let mut no_kind = good.clone();
        if let Some(a) = no_kind[1]["annotations"].as_object_mut() {
            a.remove(generate::ANNOTATION_IMAGE_DIGEST);
        }
        assert!(!validator.is_valid(&no_kind));
        let swapped = serde_json::json!([good[1], good[0]]);
        assert!(!validator.is_valid(&swapped));
        let mut three = good.as_array().cloned().unwrap_or_default();
        three.push(good[2].clone());
        assert!(!validator.is_valid(&serde_json::Value::from(three)));
        let index_last = serde_json::json!([good[0], good[2], good[1]]);
        assert!(!validator.is_valid(&index_last));
    }

    /// A report of an older reprove (no `inputs.reference.image`): the digest of its
    /// `oci://` path, named without its tag, of unknown kind; a file reference: none.
    #[test]
    fn an_older_report_gives_the_digest_of_its_path() {
        let mut r = report();
        r.inputs.reference.image = None;
        let images = image_subjects(&r);
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].name, "registry.example:5000/acme/app");
        assert_eq!(images[0].digest, format!("sha256:{}", "4".repeat(64)));
        assert_eq!((images[0].kind, images[0].path.as_deref()), (None, Some("/usr/bin/app")));
        r.inputs.reference.path = Some("dist/app".into());
        assert!(image_subjects(&r).is_empty());
        r.inputs.reference.path = None;
        assert!(image_subjects(&r).is_empty());
    }
}
