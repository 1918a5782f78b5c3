//! SLSA Provenance v1 predicate, and the external parameters of reprove's own buildType.
//!
//! [`Provenance`] is the predicate of a statement whose `predicateType` is
//! [`PREDICATE_TYPE_PROVENANCE_V1`] (<https://slsa.dev/spec/v1.0/provenance>): how an
//! artifact was built (`buildDefinition`) and by whom (`runDetails`). Its parameters are
//! free-form JSON; for a reprove rebuild they follow [`GoRebuildParameters`], whose schema
//! is `schemas/provenance-buildtype.schema.json` and whose meaning is documented in
//! `docs/buildtype.md`. Unknown fields are kept in `extra` on every type. Timestamps are
//! RFC 3339 strings, carried as written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::statement::ResourceDescriptor;

/// The `predicateType` of SLSA Provenance v1.
pub const PREDICATE_TYPE_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// The `buildType` of a reprove rebuild of a Go binary (see `docs/buildtype.md`).
pub const BUILD_TYPE_GO_REBUILD_V1: &str = "https://github.com/reprove/reprove/buildtypes/go-rebuild/v1";

/// A SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// What was built and from what.
    #[serde(rename = "buildDefinition")]
    pub build_definition: BuildDefinition,
    /// Who built it, and when.
    #[serde(rename = "runDetails")]
    pub run_details: RunDetails,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The inputs of a build: its type, its parameters and its resolved dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildDefinition {
    /// A URI saying how to read the parameters, such as [`BUILD_TYPE_GO_REBUILD_V1`].
    #[serde(rename = "buildType")]
    pub build_type: String,
    /// The parameters an outside party controls, which a verifier must check.
    #[serde(rename = "externalParameters")]
    pub external_parameters: Value,
    /// The parameters the builder chose itself.
    #[serde(rename = "internalParameters", default, skip_serializing_if = "Value::is_null")]
    pub internal_parameters: Value,
    /// The artifacts the build consumed: commit, go.mod, go.sum, modules, toolchain.
    #[serde(rename = "resolvedDependencies", default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The builder and this particular run of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetails {
    /// The builder that ran the build.
    pub builder: Builder,
    /// Invocation id and times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    /// Further outputs of the run, such as reprove's report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The identity of a builder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Builder {
    /// A URI identifying the builder and its trust boundary.
    pub id: String,
    /// Versions of the builder's components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
    /// The builder's own dependencies.
    #[serde(rename = "builderDependencies", default, skip_serializing_if = "Vec::is_empty")]
    pub builder_dependencies: Vec<ResourceDescriptor>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// When a build ran, under which invocation id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadata {
    /// The builder's id for this run.
    #[serde(rename = "invocationId", default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// When the build started (RFC 3339).
    #[serde(rename = "startedOn", default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// When the build finished (RFC 3339).
    #[serde(rename = "finishedOn", default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `externalParameters` of [`BUILD_TYPE_GO_REBUILD_V1`]: the recipe of a Go rebuild.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoRebuildParameters {
    /// Where the source came from and at which revision.
    pub source: SourceParameter,
    /// The package built, as given to `go build` (such as `./cmd/app`).
    pub package: String,
    /// The target operating system (GOOS).
    pub goos: String,
    /// The target architecture (GOARCH).
    pub goarch: String,
    /// The architecture level variable and its value, such as `GOAMD64=v1`.
    #[serde(rename = "archLevel", default, skip_serializing_if = "Option::is_none")]
    pub arch_level: Option<String>,
    /// The `go build` flags, in order, without `-ldflags` and `-tags`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The `-ldflags` value, exactly as passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldflags: Option<String>,
    /// The build tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The environment variables set for the build (besides GOOS/GOARCH/arch level).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The toolchain image, as `name[:tag]@sha256:…`.
    pub toolchain: String,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The source a rebuild starts from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceParameter {
    /// The repository URI (such as `git+https://host/org/repo`).
    pub uri: String,
    /// The full commit id the source was checked out at.
    pub rev: String,
    /// Fields this crate does not know, preserved on read and write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_round_trips_with_unknown_fields() -> Result<(), serde_json::Error> {
        let params = GoRebuildParameters {
            source: SourceParameter {
                uri: "git+https://example.com/app".into(),
                rev: "0".repeat(40),
                ..Default::default()
            },
            package: "./cmd/app".into(),
            goos: "linux".into(),
            goarch: "amd64".into(),
            arch_level: Some("GOAMD64=v1".into()),
            flags: vec!["-trimpath".into()],
            toolchain: format!("golang:1.22.5@sha256:{}", "a".repeat(64)),
            ..Default::default()
        };
        let text = serde_json::json!({
            "buildDefinition": {
                "buildType": BUILD_TYPE_GO_REBUILD_V1,
                "externalParameters": serde_json::to_value(&params)?,
                "resolvedDependencies": [{"uri": "git+https://example.com/app", "digest": {"gitCommit": "0".repeat(40)}}],
                "x-def": 1
            },
            "runDetails": {"builder": {"id": "https://example.com/builder", "x-b": [true]}, "metadata": {"invocationId": "1"}},
            "x-top": {"k": "v"}
        });
        let provenance: Provenance = serde_json::from_value(text.clone())?;
        assert_eq!(serde_json::to_value(&provenance)?, text);
        let back: GoRebuildParameters = serde_json::from_value(provenance.build_definition.external_parameters)?;
        assert_eq!(back, params);
        Ok(())
    }
}
