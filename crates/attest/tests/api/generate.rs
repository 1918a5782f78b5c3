//! The generation API: provenance and VSA statements built from plain inputs, checked
//! against the JSON Schemas in `schemas/` with a real validator, signed and verified,
//! FAILED results included; bad inputs are refused with the field named.

use std::collections::BTreeMap;
use std::path::Path;

use attest::generate::{
    attestation_ref, provenance_statement, sign, verified_levels, vsa_statement, Artifact, Byproduct, ByproductContent,
    ExecFlag, ImageDigestKind, ImageSubject, Module, ProvenanceInput, ToolchainImage, VsaInput, LEVEL_REPRODUCED,
    VSA_CAUSES_FIELD, VSA_RECIPE_EXEC_FIELD,
};
use attest::keys::{Algorithm, KeySigner, Signer as _};
use attest::policy::Policy;
use attest::statement::{Statement, PAYLOAD_TYPE_IN_TOTO};
use attest::vsa::VerificationResult;
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn schema(name: &str) -> Result<jsonschema::Validator, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas").join(name);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    Ok(jsonschema::options().should_validate_formats(true).build(&value).map_err(|e| format!("{name}: {e}"))?)
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not match its schema: {errors:#?}\n{value:#}");
}

fn hex(c: char) -> String {
    c.to_string().repeat(64)
}

fn provenance_input() -> ProvenanceInput {
    ProvenanceInput {
        subject: Artifact { name: "app".into(), sha256: hex('a') },
        images: Vec::new(),
        source_uri: "git+https://example.com/acme/app".into(),
        source_rev: "0123456789abcdef0123456789abcdef01234567".into(),
        source_module: None,
        package: "./cmd/app".into(),
        goos: "linux".into(),
        goarch: "amd64".into(),
        arch_level: Some("GOAMD64=v1".into()),
        flags: vec!["-trimpath".into(), "-buildvcs=false".into()],
        ldflags: Some("-s -w -X main.version=1.0.0".into()),
        tags: vec!["netgo".into()],
        env: BTreeMap::from([("CGO_ENABLED".into(), "0".into())]),
        toolchain: ToolchainImage {
            reference: "127.0.0.1:5000/golang:1.22.5".into(),
            digest: format!("sha256:{}", hex('b')),
        },
        go_mod_sha256: hex('c'),
        go_sum_sha256: Some(hex('d')),
        go_mod_path: None,
        exec: Vec::new(),
        workspace_files: Vec::new(),
        modules: vec![Module {
            path: "golang.org/x/text".into(),
            version: "v0.14.0".into(),
            h1: "h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=".into(),
        }],
        builder_id: "https://reprove.example/builders/ci".into(),
        builder_version: BTreeMap::from([("reprove".into(), "0.1.0".into())]),
        invocation_id: "run-42".into(),
        started_on: "2026-01-01T10:00:00Z".into(),
        finished_on: "2026-01-01T10:02:30Z".into(),
        byproduct: Some(Byproduct {
            name: "report.json".into(),
            media_type: Some("application/json".into()),
            content: ByproductContent::Inline(br#"{"verdict":"reproduced"}"#.to_vec()),
        }),
    }
}

fn vsa_input(result: VerificationResult) -> VsaInput {
    VsaInput {
        reference: Artifact { name: "app".into(), sha256: hex('e') },
        images: vec![ImageSubject {
            name: "127.0.0.1:5000/acme/app".into(),
            digest: format!("sha256:{}", hex('f')),
            kind: Some(ImageDigestKind::Manifest),
            path: Some("/usr/bin/app".into()),
            platform: Some("linux/amd64".into()),
        }],
        resource_uri: "oci://127.0.0.1:5000/acme/app@sha256:ffff".into(),
        result,
        causes: if result == VerificationResult::Failed {
            vec!["build info differs: -ldflags".into(), "section .text differs".into()]
        } else {
            Vec::new()
        },
        verifier_id: "https://reprove.example/verifiers/ci".into(),
        verifier_version: BTreeMap::from([("reprove".into(), "0.1.0".into())]),
        time_verified: "2026-01-01T10:03:00Z".into(),
        policy_uri: "https://reprove.example/policy.toml".into(),
        policy_sha256: Some(hex('1')),
        input_attestations: vec![attestation_ref("app.intoto.jsonl", b"{\"payload\":\"...\"}\n")],
        hosted_builder: false,
        recipe_exec: Vec::new(),
    }
}

fn check_statement(statement: &Statement, predicate_schema: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let value = serde_json::to_value(statement)?;
    assert_valid(&schema("statement.schema.json")?, &value, "statement");
    assert_valid(&schema(predicate_schema)?, &value["predicate"], "predicate");
    Ok(value)
}

#[test]
fn provenance_matches_the_schemas_and_the_buildtype_doc() -> TestResult {
    let statement = provenance_statement(&provenance_input())?;
    let value = check_statement(&statement, "provenance.schema.json")?;
    let definition = &value["predicate"]["buildDefinition"];
    assert_valid(&schema("provenance-buildtype.schema.json")?, &definition["externalParameters"], "externalParameters");
    assert_eq!(value["subject"][0]["digest"]["sha256"], hex('a'));
    assert_eq!(
        definition["externalParameters"]["toolchain"],
        format!("127.0.0.1:5000/golang:1.22.5@sha256:{}", hex('b'))
    );
    let deps = definition["resolvedDependencies"].as_array().ok_or("deps")?;
    let uris: Vec<&str> = deps.iter().filter_map(|d| d["uri"].as_str()).collect();
    assert_eq!(
        uris,
        [
            "git+https://example.com/acme/app",
            "git+https://example.com/acme/app@0123456789abcdef0123456789abcdef01234567#go.mod",
            "git+https://example.com/acme/app@0123456789abcdef0123456789abcdef01234567#go.sum",
            "pkg:golang/golang.org/x/text@v0.14.0",
            "oci://127.0.0.1:5000/golang",
        ]
    );
    assert_eq!(deps[0]["digest"]["gitCommit"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(deps[3]["digest"]["dirHash"], "h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=");
    assert_eq!(deps[4]["digest"]["sha256"], hex('b'));
    let run = &value["predicate"]["runDetails"];
    assert_eq!(run["metadata"]["invocationId"], "run-42");
    assert_eq!(run["byproducts"][0]["content"], "eyJ2ZXJkaWN0IjoicmVwcm9kdWNlZCJ9");
    assert_eq!(run["byproducts"][0]["mediaType"], "application/json");
    // A byproduct by name carries no content; no go.sum, no entry.
    let mut input = provenance_input();
    input.go_sum_sha256 = None;
    input.byproduct = Some(Byproduct {
        name: "report.json".into(),
        media_type: None,
        content: ByproductContent::ByName { uri: None, sha256: hex('9') },
    });
    let value = check_statement(&provenance_statement(&input)?, "provenance.schema.json")?;
    let run = &value["predicate"]["runDetails"];
    assert!(run["byproducts"][0].get("content").is_none());
    assert_eq!(run["byproducts"][0]["digest"]["sha256"], hex('9'));
    assert_eq!(value["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().map(Vec::len), Some(4));
    Ok(())
}

#[test]
fn vsa_passed_and_failed_match_the_schema_and_both_sign() -> TestResult {
    let (signer, _) = KeySigner::generate(Algorithm::EcdsaP256Sha256)?;
    let key = [signer.public_key().clone()];
    for result in [VerificationResult::Passed, VerificationResult::Failed] {
        let statement = vsa_statement(&vsa_input(result))?;
        let value = check_statement(&statement, "vsa.schema.json")?;
        assert_eq!(value["subject"].as_array().map(Vec::len), Some(2), "reference and image");
        assert_eq!(value["subject"][1]["digest"]["sha256"], hex('f'));
        assert_eq!(value["predicate"]["inputAttestations"][0]["uri"], "app.intoto.jsonl");
        let envelope = sign(&statement, &[&signer])?;
        let verified = envelope.verify(PAYLOAD_TYPE_IN_TOTO, &key, 1)?;
        let back: Statement = serde_json::from_slice(&verified.payload)?;
        assert_eq!(back, statement);
        match result {
            VerificationResult::Passed => {
                assert_eq!(value["predicate"]["verificationResult"], "PASSED");
                assert_eq!(
                    value["predicate"]["verifiedLevels"],
                    serde_json::json!([LEVEL_REPRODUCED, "SLSA_BUILD_LEVEL_1"])
                );
                assert!(value["predicate"].get(VSA_CAUSES_FIELD).is_none());
            }
            VerificationResult::Failed => {
                assert_eq!(value["predicate"]["verificationResult"], "FAILED");
                assert_eq!(value["predicate"]["verifiedLevels"], serde_json::json!([]));
                assert_eq!(value["predicate"][VSA_CAUSES_FIELD][1], "section .text differs");
            }
        }
    }
    // A policy sees the FAILED summary for what it is.
    let policy = Policy::from_toml("version = 1\n[vsa]\nverification_result = \"PASSED\"\n")?;
    let failed = vsa_statement(&vsa_input(VerificationResult::Failed))?;
    assert!(policy.evaluate(&failed, 1_767_261_800).iter().any(|o| !o.passed && o.rule == "vsa.verification_result"));
    Ok(())
}

/// The schemas are not vacuous: they refuse statements that break them.
#[test]
fn the_schemas_refuse_broken_statements() -> TestResult {
    let vsa = schema("vsa.schema.json")?;
    let mut value = serde_json::to_value(vsa_statement(&vsa_input(VerificationResult::Failed))?)?;
    value["predicate"]["verifiedLevels"] = serde_json::json!([LEVEL_REPRODUCED]);
    assert!(!vsa.is_valid(&value["predicate"]), "FAILED with a level");
    let mut value = serde_json::to_value(provenance_statement(&provenance_input())?)?;
    value["predicate"]["runDetails"]["metadata"]["finishedOn"] = "yesterday".into();
    assert!(!schema("provenance.schema.json")?.is_valid(&value["predicate"]), "a bad date-time");
    value["predicate"]["buildDefinition"]["externalParameters"]["toolchain"] = "golang:latest".into();
    assert!(!schema("provenance-buildtype.schema.json")?
        .is_valid(&value["predicate"]["buildDefinition"]["externalParameters"]));
    Ok(())
}

#[test]
fn levels_are_only_claimed_when_justified() {
    let mut input = vsa_input(VerificationResult::Passed);
    input.input_attestations.clear();
    assert_eq!(verified_levels(&input), [LEVEL_REPRODUCED], "no provenance, no SLSA build level");
    input.input_attestations.push(attestation_ref("p", b"x"));
    input.hosted_builder = true;
    assert_eq!(verified_levels(&input), [LEVEL_REPRODUCED, "SLSA_BUILD_LEVEL_2"]);
    assert!(verified_levels(&vsa_input(VerificationResult::Failed)).is_empty());
}

#[test]
fn bad_inputs_name_their_field() {
    type Edit = fn(&mut ProvenanceInput);
    let cases: [(Edit, &str); 8] = [
        (|i| i.subject.sha256 = "ABC".into(), "subject.sha256"),
        (|i| i.source_rev = "main".into(), "source_rev"),
        (|i| i.goos = "Linux".into(), "goos"),
        (|i| i.toolchain.digest = "latest".into(), "toolchain.digest"),
        (|i| i.toolchain.reference = format!("golang@sha256:{}", hex('0')), "toolchain.reference"),
        (|i| i.modules[0].h1 = "abc".into(), "modules[0].h1"),
        (|i| i.finished_on = "yesterday".into(), "finished_on"),
        (|i| i.arch_level = Some("v3".into()), "arch_level"),
    ];
    for (edit, field) in cases {
        let mut input = provenance_input();
        edit(&mut input);
        let err = provenance_statement(&input).err().map(|e| e.field);
        assert_eq!(err.as_deref(), Some(field));
    }
    let mut passed_with_causes = vsa_input(VerificationResult::Passed);
    passed_with_causes.causes.push("x".into());
    assert_eq!(vsa_statement(&passed_with_causes).err().map(|e| e.field).as_deref(), Some("causes"));
    let mut failed_silently = vsa_input(VerificationResult::Failed);
    failed_silently.causes.clear();
    assert_eq!(vsa_statement(&failed_silently).err().map(|e| e.field).as_deref(), Some("causes"));
    let mut bad_image = vsa_input(VerificationResult::Passed);
    bad_image.images[0].digest = "sha256:12".into();
    assert_eq!(vsa_statement(&bad_image).err().map(|e| e.field).as_deref(), Some("images[0].digest"));
}

/// The bundle written around a generated, signed statement matches its schema, and a
/// bundle of a message signature does not.
#[test]
fn bundles_match_their_schema() -> TestResult {
    let (signer, _) = KeySigner::generate(Algorithm::Ed25519)?;
    let envelope = sign(&provenance_statement(&provenance_input())?, &[&signer])?;
    let bundle = attest::bundle::Bundle::new(envelope.clone(), Some(signer.public_key()));
    let value = serde_json::to_value(&bundle)?;
    let validator = schema("sigstore-bundle.schema.json")?;
    assert_valid(&validator, &value, "bundle");
    // With --certificate: the certificate instead of the hint.
    let with_cert = serde_json::to_value(attest::bundle::Bundle::with_certificate(envelope, &[0x30, 0x00]))?;
    assert_valid(&validator, &with_cert, "certificate bundle");
    assert_eq!(with_cert["verificationMaterial"]["certificate"]["rawBytes"], "MAA=");
    let mut both = with_cert.clone();
    both["verificationMaterial"]["publicKey"] = value["verificationMaterial"]["publicKey"].clone();
    assert!(!validator.is_valid(&both));
    let mut blob = value;
    blob.as_object_mut().ok_or("object")?.remove("dsseEnvelope");
    blob["messageSignature"] = serde_json::json!({"signature": "AA=="});
    assert!(!validator.is_valid(&blob));
    Ok(())
}

/// Recipe values that ran or read what they name are recorded in the provenance's
/// external parameters and in the VSA; with -modfile the files read are the dependencies.
#[test]
fn recipe_exec_and_a_modfile_are_recorded() -> TestResult {
    let exec = vec![ExecFlag {
        flag: "-toolexec".into(),
        value: "/src/tools/wrap".into(),
        origin: "recipe-file:reprove.toml".into(),
    }];
    let mut input = provenance_input();
    input.exec = exec.clone();
    input.go_mod_path = Some("alt/alt.mod".into());
    let value = check_statement(&provenance_statement(&input)?, "provenance.schema.json")?;
    let definition = &value["predicate"]["buildDefinition"];
    assert_valid(&schema("provenance-buildtype.schema.json")?, &definition["externalParameters"], "externalParameters");
    assert_eq!(definition["externalParameters"]["exec"][0]["value"], "/src/tools/wrap");
    assert_eq!(definition["externalParameters"]["exec"][0]["origin"], "recipe-file:reprove.toml");
    assert_eq!(definition["resolvedDependencies"][1]["name"], "alt/alt.mod");
    assert_eq!(definition["resolvedDependencies"][2]["name"], "alt/alt.sum");
    // Without any, no field.
    let value = check_statement(&provenance_statement(&provenance_input())?, "provenance.schema.json")?;
    assert!(value["predicate"]["buildDefinition"]["externalParameters"].get("exec").is_none());
    assert_eq!(value["predicate"]["buildDefinition"]["resolvedDependencies"][1]["name"], "go.mod");

    let mut vsa = vsa_input(VerificationResult::Passed);
    vsa.recipe_exec = exec.clone();
    let value = check_statement(&vsa_statement(&vsa)?, "vsa.schema.json")?;
    assert_eq!(value["predicate"][VSA_RECIPE_EXEC_FIELD][0]["flag"], "-toolexec");

    // A flag that is not one of them, or a path outside the tree, is refused by name.
    let mut bad = provenance_input();
    bad.exec = vec![ExecFlag { flag: "-ldflags".into(), ..exec[0].clone() }];
    assert!(provenance_statement(&bad).err().is_some_and(|e| e.field == "exec[0].flag"));
    let mut bad = provenance_input();
    bad.go_mod_path = Some("../x.mod".into());
    assert!(provenance_statement(&bad).err().is_some_and(|e| e.field == "go_mod_path"));
    Ok(())
}
