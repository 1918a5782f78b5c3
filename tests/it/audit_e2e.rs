//! `reprove audit IMAGE` end to end: an image built in the test from real
//! `go install`ed programs (a module published to a GOPROXY on 127.0.0.1, as in
//! `verify_module`), audited through the same pipeline as `reprove verify`, in
//! the toolchain image `verify_e2e::shared()` pushed, with the real runc.
//!
//! The image holds: the tool installed with `-trimpath` (reproduced from the
//! module zip) and a copy of it at another path (the same build: one rebuild),
//! the tool installed without `-trimpath` (reproduced: the module cache is
//! mounted where its file table says it was), the tool built against a
//! changed dependency (not reproduced, `dependency-sum`), the same binary with
//! its build info removed (unverifiable: no build info), and a `(devel)` build
//! without VCS information (unverifiable: source unknown, naming the setting).
//! Then an image of the faithful tool alone in the registry, audited with
//! `--attest --push`: its image VSA is PASSED, found by `attest verify --image`
//! and admitted by `reprove admit`. A multi-arch index (amd64 and a cross-installed
//! arm64), every platform or one; a goreleaser-style release from a Git commit
//! (the repository from `[audit.sources]`, the ldflags from its `.goreleaser.yaml`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::attest_registry::{keygen, PASSWORD};
use crate::support::registry::TarBuilder;
use crate::support::{reprove_bin, run, run_ok, schema, Outcome};
use crate::verify_e2e::shared;
use crate::verify_module::{changed_pflag_zip, install, proxy, published, Scratch, MAIN_GO, PKG, VERSION};

/// `reprove audit ARGS --json --cache-dir CACHE` with GOPROXY `proxy`, from `here`.
fn audit(here: &Path, proxy: &str, args: &[&str]) -> (Outcome, Value) {
    let s = shared();
    let mut cmd = Command::new(reprove_bin());
    crate::support::goenv::base_env(
        &mut cmd,
        here,
        &s.cache.join("unused-host-modcache"),
        &[("GOPROXY", proxy.to_string())],
    );
    cmd.env("COSIGN_PASSWORD", PASSWORD).env_remove("GITHUB_STEP_SUMMARY");
    cmd.arg("audit").args(args).arg("--cache-dir").arg(&s.cache).args(["--json", "--runtime", "runc"]);
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("reprove audit --json: {e}\nstdout:\n{}\nstderr:\n{}", out.stdout_str(), out.stderr_str())
    });
    schema::assert_valid("audit-report.schema.json", &doc);
    (out, doc)
}

/// The binary at `path` in the audit document.
fn binary<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["binaries"].as_array().into_iter().flatten())
        .find(|b| b["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {doc:#}"))
}

/// An image of one layer holding `files` (path in the image, file), written as an
/// OCI layout in `dir`.
pub(super) fn image(files: &[(&str, &Path)]) -> oci::build::Image {
    let mut tar = TarBuilder::new();
    for (path, file) in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        tar.file(path.trim_start_matches('/'), 0o755, &data);
    }
    let layer =
        oci::build::Layer::from_tar(&tar.finish(), oci::build::LayerCompression::Gzip, oci::build::ManifestFormat::Oci)
            .unwrap_or_else(|e| panic!("{e}"));
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {}});
    oci::build::Image::assemble(config, vec![layer], oci::build::ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"))
}

/// A copy of `bin` without its build info section (as a release pipeline that strips it).
fn stripped(scratch: &Scratch, bin: &Path) -> PathBuf {
    let out = scratch.path("stripped");
    run_ok(Command::new("objcopy").arg("--remove-section").arg(".go.buildinfo").arg(bin).arg(&out))
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

/// `go build` of a main package in a directory without VCS information: `(devel)`.
fn devel(scratch: &Scratch) -> PathBuf {
    let dir = scratch.path("devel-src");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("go.mod"), "module example.com/develtool\n\ngo 1.22\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("main.go"), "package main\n\nfunc main() { println(\"devel\") }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = scratch.path("develtool");
    let mut go = Command::new("go");
    crate::support::hermetic_go_env(&mut go).current_dir(&dir).env("CGO_ENABLED", "0");
    run_ok(go.args(["build", "-trimpath", "-buildvcs=false", "-o"]).arg(&out)).unwrap_or_else(|e| panic!("{e}"));
    out
}

/// `goX.Y.Z=IMAGE@sha256:…` for the toolchain image `shared()` pushed (tagged with its Go version).
fn toolchain_flag() -> String {
    let s = shared();
    let name_tag = s.toolchain.split('@').next().unwrap_or_default();
    let version = name_tag.rsplit(':').next().unwrap_or_default();
    format!("go{version}={}", s.toolchain)
}

#[test]
fn every_binary_of_an_image_gets_the_right_verdict() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let mut overrides = published(VERSION, MAIN_GO, &[]);
    overrides.insert("/github.com/spf13/pflag/@v/v1.0.5.zip".into(), changed_pflag_zip());
    let tampered = proxy(overrides);
    let scratch = Scratch::new();
    let trimmed = install(&scratch, "trimmed", &server.url(), &["-trimpath"]);
    let untrimmed = install(&scratch, "untrimmed", &server.url(), &[]);
    let changed = install(&scratch, "changed", &tampered.url(), &["-trimpath"]);
    let no_info = stripped(&scratch, &trimmed);
    let develtool = devel(&scratch);
    let layout = scratch.path("layout");
    image(&[
        ("/usr/local/bin/modtool", &trimmed),
        ("/opt/tools/modtool", &trimmed),
        ("/usr/bin/modtool-untrimmed", &untrimmed),
        ("/usr/bin/modtool-changed", &changed),
        ("/usr/bin/modtool-stripped", &no_info),
        ("/usr/bin/develtool", &develtool),
    ])
    .write_layout(&layout, Some("v1"))
    .unwrap_or_else(|e| panic!("{e}"));
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));
    let input = format!("oci:{}:v1", layout.display());
    // Under -trimpath Go records no -ldflags: without them the recipe is undetermined.
    let (_, doc) = audit(&here, &server.url(), &[&input, "--toolchain", &toolchain_flag()]);
    let tool = binary(&doc, "/usr/local/bin/modtool");
    assert_eq!(
        (tool["outcome"].as_str(), tool["reason"].as_str()),
        (Some("unverifiable"), Some("recipe-undetermined"))
    );
    // What to add, spelled as the audit takes it (per binary), not as verify does.
    assert!(tool["detail"].as_str().unwrap_or_default().contains("give them with --ldflags BINARY=FLAGS"), "{tool:#}");

    let ldflags = format!("{PKG}=");
    let (out, doc) =
        audit(&here, &server.url(), &[&input, "--toolchain", &toolchain_flag(), "--jobs", "2", "--ldflags", &ldflags]);
    assert_eq!(out.status, Some(1), "{doc:#}\n{}", out.stderr_str());
    assert_eq!(doc["verdict"], "not-reproduced", "{doc:#}");
    let outcome = |path: &str| binary(&doc, path)["outcome"].as_str().unwrap_or_default().to_string();
    assert_eq!(outcome("/usr/local/bin/modtool"), "reproduced", "{doc:#}");
    assert_eq!(outcome("/opt/tools/modtool"), "reproduced");
    assert_eq!(outcome("/usr/bin/modtool-untrimmed"), "reproduced", "{:#}", binary(&doc, "/usr/bin/modtool-untrimmed"));
    assert_eq!(outcome("/usr/bin/modtool-changed"), "not-reproduced");
    let changed = binary(&doc, "/usr/bin/modtool-changed");
    let causes: Vec<&str> =
        changed["report"]["causes"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
    assert!(causes.contains(&"dependency-sum"), "{changed:#}");
    let no_info = binary(&doc, "/usr/bin/modtool-stripped");
    assert_eq!(
        (no_info["outcome"].as_str(), no_info["reason"].as_str()),
        (Some("unverifiable"), Some("no-build-info"))
    );
    assert_eq!(no_info["claimedSource"]["kind"], "none");
    let develtool = binary(&doc, "/usr/bin/develtool");
    assert_eq!(
        (develtool["outcome"].as_str(), develtool["reason"].as_str()),
        (Some("unverifiable"), Some("source-unknown"))
    );
    assert!(
        develtool["detail"].as_str().unwrap_or_default().contains("reprove audit --source example.com/develtool="),
        "{develtool:#}"
    );
    // The module claim, and the rebuild's report, per binary.
    let tool = binary(&doc, "/usr/local/bin/modtool");
    assert_eq!(tool["claimedSource"]["kind"], "module");
    assert_eq!(tool["report"]["inputs"]["source"]["module"]["version"], VERSION);
    assert_eq!(tool["report"]["subject"]["name"], "modtool");
    // Two copies of one binary are one build; the changed-dependency binary claims the
    // same (source, recipe, toolchain), so the same build judges it; the untrimmed one
    // is another build: two in all.
    assert_eq!(tool["buildKey"], binary(&doc, "/opt/tools/modtool")["buildKey"]);
    assert_eq!(tool["buildKey"], changed["buildKey"]);
    assert_ne!(tool["buildKey"], binary(&doc, "/usr/bin/modtool-untrimmed")["buildKey"]);
    assert_eq!(doc["counts"]["builds"], 2, "{:#}", doc["counts"]);
    assert_eq!(doc["counts"]["binaries"], 6);
    assert!(
        binary(&doc, "/opt/tools/modtool")["detail"].as_str().unwrap_or_default().contains("identical binary")
            || tool["detail"].as_str().unwrap_or_default().contains("identical binary")
    );

    // The source named for the (devel) binary: it is built from that directory's commit.
    let repo = scratch.path("devel-src");
    crate::support::git(&repo, &["init", "-q", "-b", "main"]);
    crate::support::git(&repo, &["add", "."]);
    crate::support::git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "devel"]);
    let named = format!("example.com/develtool={}#main", repo.display());
    let (_, doc) = audit(
        &here,
        &server.url(),
        &[&input, "--toolchain", &toolchain_flag(), "--source", &named, "--ldflags", "/usr/bin/develtool="],
    );
    let develtool = binary(&doc, "/usr/bin/develtool");
    assert_eq!(develtool["outcome"], "reproduced", "{develtool:#}");
    assert_eq!(develtool["claimedSource"]["kind"], "devel");

    // Without a toolchain for the Go version: every buildable binary says which is missing.
    let (out, doc) = audit(&here, &server.url(), &[&input]);
    assert_eq!(out.status, Some(1));
    let tool = binary(&doc, "/usr/local/bin/modtool");
    assert_eq!(tool["reason"], "toolchain-missing", "{tool:#}");
    assert!(tool["detail"].as_str().unwrap_or_default().contains("--toolchain go1."), "{tool:#}");
    let _ = s;
}

#[test]
fn an_audited_image_is_attested_and_admitted_by_its_digest() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let trimmed = install(&scratch, "trimmed", &server.url(), &["-trimpath"]);
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));
    keygen(&here, "auditor").unwrap_or_else(|e| panic!("{e}"));
    let img = image(&[("/usr/local/bin/modtool", &trimmed)]);
    let tagged = format!("{}/audited/modtool:v1", s.registry.addr);
    let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    img.push_blocking(&io, &tagged.parse().unwrap_or_else(|e| panic!("{e}")), &s.registry.options())
        .unwrap_or_else(|e| panic!("{e}"));
    let pinned = format!("{}/audited/modtool@{}", s.registry.addr, img.manifest_digest);
    let (out, doc) = audit(
        &here,
        &server.url(),
        &[
            &tagged,
            "--toolchain",
            &toolchain_flag(),
            "--ldflags",
            &format!("{PKG}="),
            "--attest",
            "--key",
            "auditor.key",
        ]
        .into_iter()
        .chain(["--out", "att", "--push"])
        .collect::<Vec<_>>(),
    );
    assert_eq!(out.status, Some(0), "{doc:#}\n{}", out.stderr_str());
    assert_eq!(doc["verdict"], "reproduced");
    assert_eq!(doc["image"]["resolvedFromTag"], "v1");
    assert_eq!(doc["image"]["digest"], img.manifest_digest.to_string());
    assert!(here.join("att/image.vsa.intoto.jsonl").is_file());
    assert!(here.join("att/linux-amd64/0/modtool.vsa.intoto.jsonl").is_file());

    // The image VSA is found by the image digest and verifies with the auditor's key.
    let mut verify = Command::new(reprove_bin());
    verify.current_dir(&here).args(["attest", "verify", "--image", &pinned, "--key", "auditor.pub", "--json"]);
    verify.args(["--predicate-type", "https://slsa.dev/verification_summary/v1"]);
    let out = run(&mut verify).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());

    // Admission on the digest alone: the audit's image VSA covers every binary.
    std::fs::write(
        here.join("policy.toml"),
        "version = 1\n[[verifiers]]\nname = \"auditor\"\nkey = \"auditor.pub\"\n[default]\nmax_age = \"1d\"\ncoverage = \"image\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: {pinned}\n"
    );
    std::fs::write(here.join("pod.yaml"), pod).unwrap_or_else(|e| panic!("{e}"));
    let mut admit = Command::new(reprove_bin());
    admit.current_dir(&here).args(["admit", "--policy", "policy.toml", "pod.yaml"]);
    let out = run(&mut admit).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());
}

/// A multi-arch index (linux/amd64 and linux/arm64, the arm64 tool cross-installed as
/// `GOARCH=arm64 go install` leaves it in `GOPATH/bin/linux_arm64`): every platform
/// audited, or the one `--platform` picks; the HTML page names every binary.
#[test]
fn every_platform_of_an_index_is_audited() {
    let s = shared();
    let server = proxy(published(VERSION, MAIN_GO, &[]));
    let scratch = Scratch::new();
    let amd64 = install(&scratch, "amd64", &server.url(), &["-trimpath"]);
    let gopath = scratch.path("gopath");
    let mut cmd = Command::new("go");
    crate::support::goenv::base_env(
        &mut cmd,
        &scratch.path("."),
        &scratch.path("modcache"),
        &[("GOPROXY", server.url())],
    );
    cmd.env("GOPATH", &gopath).env("GOOS", "linux").env("GOARCH", "arm64").env("CGO_ENABLED", "0").env("GOFLAGS", "");
    run_ok(cmd.args(["install", "-trimpath", &format!("{PKG}@{VERSION}")])).unwrap_or_else(|e| panic!("{e}"));
    let arm64 = gopath.join("bin/linux_arm64/modtool");
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));

    let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let repo = format!("{}/audited/multi", s.registry.addr);
    let mut images = Vec::new();
    for (arch, bin) in [("amd64", &amd64), ("arm64", &arm64)] {
        let mut tar = TarBuilder::new();
        tar.file("usr/local/bin/modtool", 0o755, &std::fs::read(bin).unwrap_or_else(|e| panic!("{e}")));
        let layer = oci::build::Layer::from_tar(
            &tar.finish(),
            oci::build::LayerCompression::Gzip,
            oci::build::ManifestFormat::Oci,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let config = serde_json::json!({"architecture": arch, "os": "linux", "config": {}});
        let img = oci::build::Image::assemble(config, vec![layer], oci::build::ManifestFormat::Oci)
            .unwrap_or_else(|e| panic!("{e}"));
        img.push_blocking(
            &io,
            &format!("{repo}:{arch}").parse().unwrap_or_else(|e| panic!("{e}")),
            &s.registry.options(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        images.push(img);
    }
    let refs: Vec<&oci::build::Image> = images.iter().collect();
    let index = io
        .block_on(oci::build::push_index(
            &format!("{repo}:multi").parse().unwrap_or_else(|e| panic!("{e}")),
            &refs,
            &s.registry.options(),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let pinned = format!("{repo}@{index}");
    let ldflags = format!("{PKG}=");
    let (out, doc) = audit(
        &here,
        &server.url(),
        &[&pinned, "--toolchain", &toolchain_flag(), "--ldflags", &ldflags, "--html", "page.html"],
    );
    assert_eq!(out.status, Some(0), "{doc:#}\n{}", out.stderr_str());
    assert_eq!((doc["verdict"].as_str(), doc["image"]["digestKind"].as_str()), (Some("reproduced"), Some("index")));
    let platforms: Vec<&str> =
        doc["platforms"].as_array().into_iter().flatten().filter_map(|p| p["platform"].as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{doc:#}");
    assert_eq!(doc["counts"]["builds"], 2, "two platforms are two builds");
    let arm = &doc["platforms"][1]["binaries"][0];
    assert_eq!(arm["report"]["recipe"]["goarch"], "arm64", "{arm:#}");
    assert_eq!(arm["report"]["inputs"]["reference"]["image"]["indexDigest"], index.to_string());
    let page = std::fs::read_to_string(here.join("page.html")).unwrap_or_else(|e| panic!("{e}"));
    assert!(page.contains("/usr/local/bin/modtool") && page.contains("linux/arm64"), "{page}");

    let (out, doc) = audit(
        &here,
        &server.url(),
        &[&pinned, "--toolchain", &toolchain_flag(), "--ldflags", &ldflags, "--platform", "linux/arm64"],
    );
    assert_eq!(out.status, Some(0), "{doc:#}");
    assert_eq!(doc["platforms"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["platforms"][0]["platform"], "linux/arm64");
}

/// A goreleaser-style release from a Git commit: built with VCS stamping, `-trimpath`
/// and the `.goreleaser.yaml` ldflags (`-X main.v={{ .Version }}` from the tag), so its
/// build info claims the revision and records no ldflags. `--source` names the
/// repository; the commit's `.goreleaser.yaml` and tag give the ldflags: reproduced.
#[test]
fn a_goreleaser_release_is_rebuilt_from_its_commit() {
    let scratch = Scratch::new();
    let repo = scratch.path("rp");
    std::fs::create_dir_all(repo.join("cmd/app")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(repo.join("go.mod"), "module example.com/rp\n\ngo 1.21\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        repo.join("cmd/app/main.go"),
        "package main\n\nimport \"fmt\"\n\nvar v = \"dev\"\n\nfunc main() { fmt.Println(v) }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        repo.join(".goreleaser.yaml"),
        "version: 2\nproject_name: app\nbuilds:\n  - id: app\n    main: ./cmd/app\n    flags: [-trimpath]\n    \
         env: [CGO_ENABLED=0]\n    ldflags: [\"-s -w\", \"-X main.v={{ .Version }}\"]\n    goos: [linux]\n    goarch: [amd64]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    crate::support::git(&repo, &["init", "-q", "-b", "main"]);
    crate::support::git(&repo, &["add", "."]);
    crate::support::git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "release"]);
    crate::support::git(&repo, &["tag", "v1.2.3"]);
    let release = scratch.path("app");
    let mut go = Command::new("go");
    crate::support::hermetic_go_env(&mut go).current_dir(&repo).env("CGO_ENABLED", "0").env("GOFLAGS", "");
    go.args(["build", "-trimpath", "-ldflags", "-s -w -X main.v=1.2.3", "-o"]).arg(&release).arg("./cmd/app");
    run_ok(&mut go).unwrap_or_else(|e| panic!("{e}"));
    let layout = scratch.path("layout");
    image(&[("/usr/bin/app", &release)]).write_layout(&layout, None).unwrap_or_else(|e| panic!("{e}"));
    let here = scratch.path("here");
    std::fs::create_dir_all(&here).unwrap_or_else(|e| panic!("{e}"));
    let input = format!("oci:{}", layout.display());
    let s = shared();

    // Without --source: unverifiable, naming the revision and the setting.
    let (_, doc) = audit(&here, &s.proxy.url(), &[&input, "--toolchain", &toolchain_flag()]);
    let app = binary(&doc, "/usr/bin/app");
    assert_eq!((app["reason"].as_str(), app["claimedSource"]["kind"].as_str()), (Some("source-unknown"), Some("vcs")));
    assert!(app["detail"].as_str().unwrap_or_default().contains("reprove audit --source example.com/rp="), "{app:#}");

    // The repository named in the audit directory's reprove.toml, and a toolchain with
    // git (VCS stamping runs it) in its [audit.toolchains].
    let with_git = crate::verify_e2e::toolchain_on_base(&s.registry, "audit-git", crate::verify_e2e::git_layer());
    let version = toolchain_flag().split('=').next().unwrap_or_default().to_string();
    std::fs::write(
        here.join("reprove.toml"),
        format!(
            "[audit.sources]\n\"example.com/rp\" = \"{}\"\n[audit.toolchains]\n\"{version}\" = \"{with_git}\"\n",
            repo.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (out, doc) = audit(&here, &s.proxy.url(), &[&input]);
    let app = binary(&doc, "/usr/bin/app");
    assert_eq!(out.status, Some(0), "{app:#}\n{}", out.stderr_str());
    assert_eq!(app["outcome"], "reproduced");
    assert_eq!(
        app["report"]["recipe"]["origins"]["ldflags"], "goreleaser:.goreleaser.yaml#app",
        "{:#}",
        app["report"]["recipe"]
    );
}
