//! `reprove recipe --from` on a goreleaser project with several targets, as
//! a new user tries it: the reference's platform (build info GOOS/GOARCH/level,
//! confirmed by the file header) picks the target, with origin
//! `reference-platform`; a reference of another platform is never matched to
//! a wrong target; a header that contradicts the build info, a platform not
//! in the matrix, and no reference at all still stop with the targets listed.
//! A goreleaser template that cannot be expanded (`.Version`, no tag) for a
//! value a higher layer gives is a note; otherwise an error naming the field.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use crate::recipe_cli::{go, rebuild, reprove, sha, LDFLAGS};
use crate::support::{json_stdout, run, run_ok};

const YAML: &str = "version: 2\nproject_name: app\nbuilds:\n  - id: app\n    main: ./cmd/app\n    \
                    flags: [-trimpath]\n    env: [CGO_ENABLED=0]\n    \
                    ldflags: [\"-s -w\", \"-X main.v={{ .Version }}\"]\n    \
                    goos: [linux, darwin, windows]\n    goarch: [amd64, arm64]\n    goamd64: [v1, v3]\n";

/// A release binary for `goos`/`goarch` (and `env`), as goreleaser builds it.
fn release(dir: &Path, out: &Path, goos: &str, goarch: &str, env: &[(&str, &str)]) -> PathBuf {
    let path = out.join(format!("app-{goos}-{goarch}-{}", env.iter().map(|(_, v)| *v).collect::<String>()));
    let mut cmd = go(dir);
    cmd.env("CGO_ENABLED", "0").env("GOOS", goos).env("GOARCH", goarch);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_ok(cmd.args(["build", "-trimpath", "-ldflags", LDFLAGS, "-o"]).arg(&path).arg("./cmd/app")).unwrap();
    path
}

fn project() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path();
    std::fs::create_dir_all(dir.join("cmd/app")).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/rp\n\ngo 1.21\n").unwrap();
    std::fs::write(
        dir.join("cmd/app/main.go"),
        "package main\n\nimport \"fmt\"\n\nvar v = \"dev\"\n\nfunc main() { fmt.Println(v) }\n",
    )
    .unwrap();
    std::fs::write(dir.join(".goreleaser.yaml"), YAML).unwrap();
    src
}

fn platform_origin() -> serde_json::Value {
    serde_json::json!({"kind": "reference-platform", "detail": ".goreleaser.yaml#app"})
}

#[test]
fn recipe_target_comes_from_the_reference_platform() {
    let src = project();
    let outs = tempfile::tempdir().unwrap();
    let dir = src.path();
    let tag = ["--tag", "v1.2.3", "--json"];

    // linux/amd64 (GOAMD64=v1) among 12 targets: chosen, with its origin, and rebuilt bit for bit.
    for (goos, goarch, env, level) in [
        ("linux", "amd64", vec![("GOAMD64", "v1")], Some(("GOAMD64", "v1"))),
        ("linux", "amd64", vec![("GOAMD64", "v3")], Some(("GOAMD64", "v3"))),
        ("linux", "arm64", vec![], None),
        ("windows", "amd64", vec![("GOAMD64", "v1")], Some(("GOAMD64", "v1"))),
        ("darwin", "arm64", vec![], None),
    ] {
        let reference = release(dir, outs.path(), goos, goarch, &env);
        let from = reference.display().to_string();
        let args: Vec<&str> = ["--from", &from].into_iter().chain(tag).collect();
        let doc = json_stdout(&run_ok(&mut reprove(dir, &args)).unwrap());
        assert_eq!((doc["goos"].as_str(), doc["goarch"].as_str()), (Some(goos), Some(goarch)), "{doc}");
        assert_eq!(doc["origins"]["goos"], platform_origin(), "{doc}");
        assert_eq!(doc["origins"]["goarch"], platform_origin(), "{doc}");
        if let Some((var, v)) = level {
            assert_eq!(doc["env"][var], v, "{doc}");
            assert_eq!(doc["origins"][format!("env.{var}")], platform_origin(), "{doc}");
        }
        let notes = doc["notes"].to_string();
        assert!(notes.contains("chosen by the reference's platform") && notes.contains(goarch), "{doc}");
        assert_eq!(doc["complete"], true, "{doc}");
        let out = outs.path().join(format!("re-{goos}-{goarch}-{}", level.map_or("", |l| l.1)));
        assert_eq!(rebuild(dir, &doc, &out), sha(&reference), "{goos}/{goarch} {level:?}");
        // The text output shows the origin.
        let text = run_ok(&mut reprove(dir, &["--from", &from, "--tag", "v1.2.3"])).unwrap().stdout_str();
        assert!(text.contains("reference platform (.goreleaser.yaml#app)"), "{text}");
    }

    // A platform the matrix does not build: not matched to another target; the targets are listed.
    let freebsd = release(dir, outs.path(), "freebsd", "amd64", &[]).display().to_string();
    let out = run(&mut reprove(dir, &["--from", &freebsd, "--tag", "v1.2.3"])).unwrap();
    assert_eq!(out.status, Some(2), "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(err.contains("freebsd_amd64") && err.contains("not built") && err.contains("linux_amd64_v1"), "{err}");
    assert!(err.contains("reference's platform"), "{err}");

    // A header that contradicts the build info (an amd64 build info in an arm64 ELF): not used.
    let linux = release(dir, outs.path(), "linux", "amd64", &[("GOAMD64", "v1")]);
    let mut bytes = std::fs::read(&linux).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    bytes[18] = 183;
    bytes[19] = 0;
    let forged = outs.path().join("forged");
    std::fs::write(&forged, &bytes).unwrap();
    let forged = forged.display().to_string();
    let out = run(&mut reprove(dir, &["--from", &forged, "--tag", "v1.2.3"])).unwrap();
    assert_eq!(out.status, Some(2), "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(err.contains("several targets") && err.contains("--target") && err.contains("linux_arm64"), "{err}");
    assert!(err.contains("GOARCH=amd64") && err.contains("machine is arm64"), "{err}");
    // --target still decides.
    let doc = json_stdout(
        &run_ok(&mut reprove(dir, &["--from", &forged, "--target", "linux_amd64_v1", "--tag", "v1.2.3", "--json"]))
            .unwrap(),
    );
    assert_eq!(doc["origins"]["goos"]["kind"], "goreleaser", "{doc}");

    // No reference: several targets, an error listing them; GOOS/GOARCH without a level is ambiguous.
    let out = run(&mut reprove(dir, &["--tag", "v1.2.3"])).unwrap();
    assert_eq!(out.status, Some(2));
    assert!(out.stderr_str().contains("several targets") && out.stderr_str().contains("darwin_arm64"));
    let out = run(&mut reprove(dir, &["--goos", "linux", "--goarch", "amd64", "--tag", "v1.2.3"])).unwrap();
    assert_eq!(out.status, Some(2));
    assert!(out.stderr_str().contains("ambiguous"), "{}", out.stderr_str());
}

#[test]
fn recipe_template_a_higher_layer_overrides_is_a_note() {
    let src = project();
    let outs = tempfile::tempdir().unwrap();
    let dir = src.path();
    let reference = release(dir, outs.path(), "linux", "amd64", &[("GOAMD64", "v1")]);
    let from = reference.display().to_string();

    // No tag and no ldflags: an error naming the field, the template and how to supply either.
    let out = run(&mut reprove(dir, &["--from", &from])).unwrap();
    assert_eq!(out.status, Some(2));
    let err = out.stderr_str();
    assert!(err.contains("ldflags") && err.contains(".Version"), "{err}");
    assert!(err.contains("--tag") && err.contains("--ldflags") && err.contains("REPROVE_LDFLAGS"), "{err}");

    // --ldflags given: the goreleaser ldflags are not evaluated, with a note; the build is the release's.
    let doc = json_stdout(&run_ok(&mut reprove(dir, &["--from", &from, "--ldflags", LDFLAGS, "--json"])).unwrap());
    assert_eq!(doc["complete"], true, "{doc}");
    assert_eq!(doc["ldflags"], LDFLAGS);
    assert_eq!(doc["origins"]["ldflags"]["kind"], "flag");
    let notes = doc["notes"].to_string();
    assert!(notes.contains("ldflags not evaluated") && notes.contains(".Version"), "{doc}");
    assert_eq!(rebuild(dir, &doc, &outs.path().join("re")), sha(&reference));
    let text = run_ok(&mut reprove(dir, &["--from", &from, "--ldflags", LDFLAGS])).unwrap().stdout_str();
    assert!(text.contains("notes:") && text.contains("ldflags not evaluated"), "{text}");

    // REPROVE_LDFLAGS and reprove.toml are higher layers too.
    let doc = json_stdout(&run_ok(reprove(dir, &["--from", &from, "--json"]).env("REPROVE_LDFLAGS", LDFLAGS)).unwrap());
    assert_eq!(doc["origins"]["ldflags"]["kind"], "environment", "{doc}");
    assert!(doc["notes"].to_string().contains("ldflags not evaluated"), "{doc}");
    std::fs::write(dir.join("reprove.toml"), format!("[build]\nldflags = \"{LDFLAGS}\"\n")).unwrap();
    let doc = json_stdout(&run_ok(&mut reprove(dir, &["--from", &from, "--json"])).unwrap());
    assert_eq!(doc["origins"]["ldflags"]["kind"], "recipe-file", "{doc}");
    assert_eq!(rebuild(dir, &doc, &outs.path().join("re-toml")), sha(&reference));
}
