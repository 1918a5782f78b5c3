//! From a registry to a sandboxed build: `reprove toolchain build` packages
//! this machine's Go as an image and pushes it to a registry on 127.0.0.1;
//! `reprove toolchain run IMAGE@DIGEST` pulls it (verified, into a fresh
//! cache), runs `go version` and a real `go build` in it with runc, bwrap
//! and podman, with the image config's environment; a reference without a digest
//! is refused; with the registry gone, the cached image still runs.

use std::fs;
use std::process::Command;

use crate::support::{self, registry, sandbox};

use registry::Registry;
use sandbox::{check_schema, fixture, json, run_with_pid, world_readable, RUNTIMES, SECRET};
use support::{hermetic_go_env, reprove_bin, run_ok};

fn toolchain_run(image: &str, cache: &str, runtime: &str, extra: &[&str], cmd: &[&str]) -> Command {
    let f = fixture();
    let mut c = Command::new(reprove_bin());
    c.args(["toolchain", "run", image, "--cache-dir", cache, "--runtime", runtime, "--mount"])
        .arg(format!("{}:/probe:ro", f.probe_dir.display()))
        .args(extra)
        .arg("--")
        .args(cmd)
        .env(SECRET.0, SECRET.1);
    c
}

#[test]
fn a_pushed_toolchain_image_is_pulled_by_digest_and_builds_in_the_sandbox() {
    let f = fixture();
    let mut registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::Builder::new().prefix("reprove-sandbox-image-").tempdir().unwrap_or_else(|e| panic!("{e}"));
    world_readable(tmp.path());
    let cache = tmp.path().join("cache").display().to_string();

    let mut go = Command::new("go");
    hermetic_go_env(&mut go).args(["env", "GOROOT"]);
    let goroot = run_ok(&mut go).unwrap_or_else(|e| panic!("{e}")).stdout_str().trim().to_string();
    let version = f.go_version.split_whitespace().nth(2).unwrap_or_default().to_string();
    let tag = format!("{}/toolchains/go:{}", registry.addr, version.trim_start_matches("go"));
    let built = run_ok(Command::new(reprove_bin()).args([
        "toolchain",
        "build",
        "--goroot",
        &goroot,
        "--tag",
        &tag,
        "--push",
        "--json",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let digest = json(&built)["digest"].as_str().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "{}", built.stdout_str());
    let image = format!("{tag}@{digest}");

    // Not pinned: refused, and nothing is pulled.
    let (_, out) = run_with_pid(&mut toolchain_run(&tag, &cache, "auto", &[], &["go", "version"]));
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("no digest"), "{}", out.stderr_str());

    for (i, rt) in RUNTIMES.iter().enumerate() {
        let (_, out) = run_with_pid(&mut toolchain_run(&image, &cache, rt, &["--json"], &["go", "version"]));
        let doc = json(&out);
        check_schema(&doc);
        assert_eq!(out.status, Some(0), "{rt}: {}", out.stderr_str());
        assert_eq!(doc["stdout"], format!("{}\n", f.go_version), "{rt}");
        assert_eq!((doc["image"].as_str(), doc["runtime"].as_str()), (Some(image.as_str()), Some(*rt)));
        // Pulled the first time only.
        assert_eq!(out.stderr_str().contains("pulling"), i == 0, "{rt}: {}", out.stderr_str());

        // The image config's environment, and nothing from the host.
        let (_, out) =
            run_with_pid(&mut toolchain_run(&image, &cache, rt, &["--json"], &["/probe/sbxprobe", "environ"]));
        let env = json(&out)["stdout"].as_str().unwrap_or_default().to_string();
        assert!(env.lines().any(|l| l == "GOTOOLCHAIN=local"), "{rt}: {env}");
        assert!(env.lines().any(|l| l.starts_with("GOROOT=")), "{rt}: {env}");
        assert!(!env.contains(SECRET.0), "{rt}: {env}");

        // A real build, written to the output mount, that runs on the host
        // (once: sandbox_runtimes builds with every runtime).
        if i > 0 {
            continue;
        }
        let out_dir = tmp.path().join(format!("out-{rt}"));
        fs::create_dir(&out_dir).unwrap_or_else(|e| panic!("{e}"));
        let mounts =
            [format!("--mount={}:/src:ro", f.probe_src.display()), format!("--mount={}:/out", out_dir.display())];
        let mut args: Vec<&str> = mounts.iter().map(String::as_str).collect();
        args.extend([
            "--workdir=/src",
            "--timeout=15m",
            "--env=CGO_ENABLED=0",
            "--env=GOCACHE=/tmp/gocache",
            "--env=GOPATH=/tmp/gopath",
            "--env=GOPROXY=off",
            "--env=GOENV=off",
            "--env=GOFLAGS=",
        ]);
        let (_, out) = run_with_pid(&mut toolchain_run(
            &image,
            &cache,
            rt,
            &args,
            &["go", "build", "-trimpath", "-o", "/out/built", "."],
        ));
        assert_eq!(out.status, Some(0), "{rt}: {}", out.stderr_str());
        let hello = run_ok(Command::new(out_dir.join("built")).arg("hello")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hello.stdout_str(), "hello from the sandbox build\n");
    }

    // The registry is gone: the cached image still runs.
    registry.stop();
    let (_, out) = run_with_pid(&mut toolchain_run(&image, &cache, "auto", &["--json"], &["go", "version"]));
    assert_eq!(out.status, Some(0), "{}", out.stderr_str());
    assert_eq!(json(&out)["stdout"], format!("{}\n", f.go_version));
}
