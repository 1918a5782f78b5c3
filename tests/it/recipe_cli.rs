//! `reprove recipe` end to end with the real `go`: a reference built with
//! -trimpath and -ldflags, the recipe from the reference alone (ldflags
//! undetermined), completed by reprove.toml or by a .goreleaser.yaml build
//! with templates, each run through `go` as printed and compared by sha256;
//! conflicts, precedence, the lock file, malformed files and the JSON schema.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support;

use support::{hermetic_go_env, json_stdout, reprove_bin, run, run_ok};

const SCRUB: &[&str] =
    &["GOOS", "GOARCH", "GOAMD64", "GOARM", "GOARM64", "GOEXPERIMENT", "CGO_ENABLED", "CGO_CFLAGS", "CGO_LDFLAGS"];
pub(crate) const LDFLAGS: &str = "-s -w -X main.v=1.2.3";

/// The host's `go`, hermetic, with no target variables of the environment.
pub(crate) fn go(dir: &Path) -> Command {
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd).current_dir(dir);
    for k in SCRUB {
        cmd.env_remove(k);
    }
    cmd
}

/// `reprove recipe ARGS` without the environment's `REPROVE_*` variables.
pub(crate) fn reprove(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(reprove_bin());
    cmd.current_dir(dir).arg("recipe").args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REPROVE_")) {
        cmd.env_remove(k);
    }
    cmd
}

pub(crate) fn sha(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// The document has every key the schema requires, and no other.
fn check_schema(doc: &serde_json::Value) {
    let path = support::repo_root().join("schemas/recipe-output.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let obj = doc.as_object().unwrap();
    for key in schema["required"].as_array().unwrap().iter().filter_map(|k| k.as_str()) {
        assert!(obj.contains_key(key), "missing {key}: {doc}");
    }
    for key in obj.keys() {
        assert!(schema["properties"].get(key).is_some(), "{key} is not in the schema");
    }
    let kinds = schema["$defs"]["origin"]["properties"]["kind"]["enum"].as_array().unwrap();
    for (field, origin) in doc["origins"].as_object().unwrap() {
        assert!(kinds.contains(&origin["kind"]), "{field}: {origin}");
    }
}

/// Runs the `go build` the document describes in `dir` and returns the output's sha256.
pub(crate) fn rebuild(dir: &Path, doc: &serde_json::Value, out: &Path) -> String {
    let mut args: Vec<String> =
        doc["go_build"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    assert_eq!(args[1], "-o");
    args[2] = out.display().to_string();
    let mut cmd = go(dir);
    cmd.args(&args);
    for (k, v) in doc["go_build"]["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    sha(out)
}

#[test]
fn recipe_command_rebuilds_what_it_prints() {
    let src = tempfile::tempdir().unwrap();
    let outs = tempfile::tempdir().unwrap();
    let dir = src.path();
    std::fs::create_dir_all(dir.join("cmd/app")).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/rc\n\ngo 1.21\n").unwrap();
    std::fs::write(
        dir.join("cmd/app/main.go"),
        "package main\n\nimport \"fmt\"\n\nvar v = \"dev\"\n\nfunc main() { fmt.Println(v) }\n",
    )
    .unwrap();
    let reference = outs.path().join("app");
    run_ok(
        go(dir)
            .env("CGO_ENABLED", "0")
            .args(["build", "-trimpath", "-tags=a,b", "-ldflags", LDFLAGS, "-o"])
            .arg(&reference)
            .arg("./cmd/app"),
    )
    .unwrap();
    let want = sha(&reference);
    let from = reference.display().to_string();

    // The reference alone: ldflags are undetermined.
    let doc = json_stdout(&run_ok(&mut reprove(dir, &["--from", &from, "--json"])).unwrap());
    check_schema(&doc);
    assert_eq!(doc["complete"], false);
    assert!(doc["undetermined"].as_array().unwrap().iter().any(|u| u["field"] == "ldflags"), "{doc}");
    assert_eq!(doc["package"], "./cmd/app");
    assert_eq!(doc["origins"]["trimpath"], serde_json::json!({"kind": "reference", "detail": "-trimpath"}));
    let text = run_ok(&mut reprove(dir, &["--from", &from])).unwrap().stdout_str();
    assert!(text.contains("undetermined:") && text.contains("ldflags") && text.contains("go build -o app"), "{text}");

    // reprove.toml supplies the ldflags: complete, and the printed build is bit-identical.
    std::fs::write(dir.join("reprove.toml"), format!("[build]\nldflags = \"{LDFLAGS}\"\ntags = [\"a\", \"b\"]\n"))
        .unwrap();
    let doc = json_stdout(&run_ok(&mut reprove(dir, &["--from", &from, "--json"])).unwrap());
    check_schema(&doc);
    assert_eq!(doc["complete"], true, "{doc}");
    assert_eq!(doc["origins"]["ldflags"], serde_json::json!({"kind": "recipe-file", "detail": "reprove.toml"}));
    assert_eq!(doc["conflicts"], serde_json::json!([]));
    assert_eq!(rebuild(dir, &doc, &outs.path().join("from-toml")), want);

    // A flag overrides both, and the conflict says who won.
    let out = run_ok(&mut reprove(dir, &["--from", &from, "--tags", "x", "--json"])).unwrap();
    let doc = json_stdout(&out);
    let c: Vec<_> = doc["conflicts"].as_array().unwrap().iter().filter(|c| c["field"] == "tags").collect();
    assert_eq!(c.len(), 2, "{doc}");
    assert!(c.iter().all(|c| c["used_origin"]["kind"] == "flag"));
    let text = run_ok(&mut reprove(dir, &["--from", &from, "--tags", "x"])).unwrap().stdout_str();
    assert!(text.contains("conflicts:") && text.contains("wins over"), "{text}");
    // REPROVE_* sits between flags and the file.
    let doc = json_stdout(&run_ok(reprove(dir, &["--from", &from, "--json"]).env("REPROVE_LDFLAGS", "-s")).unwrap());
    assert_eq!(doc["ldflags"], "-s");
    assert_eq!(doc["origins"]["ldflags"]["kind"], "environment");

    // A malformed reprove.toml: exit 2 with the position.
    std::fs::write(dir.join("reprove.toml"), "[build]\nldflags = \"-s\"\nbogus = 1\n").unwrap();
    let bad = run(&mut reprove(dir, &["--from", &from])).unwrap();
    assert_eq!(bad.status, Some(2));
    assert!(
        bad.stderr_str().contains("reprove.toml:3:1") && bad.stderr_str().contains("bogus"),
        "{}",
        bad.stderr_str()
    );
    std::fs::remove_file(dir.join("reprove.toml")).unwrap();

    // .goreleaser.yaml with templates: the version comes from --tag.
    std::fs::write(
        dir.join(".goreleaser.yaml"),
        "version: 2\nproject_name: app\nbuilds:\n  - id: app\n    main: ./cmd/app\n    flags: [-trimpath]\n    \
         tags: [a, b]\n    env: [CGO_ENABLED=0]\n    ldflags: [\"-s -w\", \"-X main.v={{ .Version }}\"]\n    \
         goos: [linux, darwin]\n    goarch: [amd64, arm64]\n",
    )
    .unwrap();
    let missing = run(&mut reprove(dir, &["--from", &from])).unwrap();
    assert_eq!(missing.status, Some(2));
    assert!(missing.stderr_str().contains(".Version"), "{}", missing.stderr_str());
    let doc = json_stdout(&run_ok(&mut reprove(dir, &["--from", &from, "--tag", "v1.2.3", "--json"])).unwrap());
    check_schema(&doc);
    assert_eq!(doc["complete"], true, "{doc}");
    assert_eq!(doc["inputs"]["goreleaser"], ".goreleaser.yaml#app");
    assert_eq!(doc["origins"]["ldflags"], serde_json::json!({"kind": "goreleaser", "detail": ".goreleaser.yaml#app"}));
    assert_eq!(doc["ldflags"], LDFLAGS);
    assert_eq!(rebuild(dir, &doc, &outs.path().join("from-goreleaser")), want);

    // reprove.lock: the toolchain for the inferred Go version is shown.
    let version = doc["go_version"].as_str().unwrap().to_string();
    let image = format!("127.0.0.1:5000/toolchains/go:x@sha256:{}", "cd".repeat(32));
    std::fs::write(dir.join("reprove.lock"), format!("[toolchains]\n\"{version}\" = \"{image}\"\n")).unwrap();
    let doc = json_stdout(&run_ok(&mut reprove(dir, &["--from", &from, "--tag", "v1.2.3", "--json"])).unwrap());
    assert_eq!(doc["toolchain"], image.as_str());
    let doc = json_stdout(
        &run_ok(&mut reprove(dir, &["--from", &from, "--tag", "v1.2.3", "--go-version", "go1.1.1", "--json"])).unwrap(),
    );
    assert!(doc["toolchain_error"].as_str().unwrap().contains("go1.1.1"), "{doc}");
}
