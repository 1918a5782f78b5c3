//! Toolchain images end to end against a real registry on 127.0.0.1:
//! `reprove toolchain build` from the machine's Go installations (twice: same
//! digest), push, `reprove toolchain pull` by tag and by digest, the Go inside
//! really builds a program; image indexes and platforms, Docker v2 manifests,
//! gzip/zstd/uncompressed layers, basic auth (flags and auth files), bearer
//! tokens from a token server (basic credentials, `identitytoken` refresh
//! tokens, `registrytoken`), the warm cache without network, concurrent
//! pulls, and gc.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use oci::build::{push_index, Image, Layer, LayerCompression, ManifestFormat};
use oci::{Platform, PullOptions, Store, ToolchainError};

use crate::support::{self, registry};

use registry::{config, push_tars, push_tars_with, Registry, TarBuilder};
use support::{hermetic_go_env, json_stdout, reprove_toolchain_cmd, run, run_ok, RUN_SETUP};

/// The document has every key `schemas/<name>.schema.json` requires, and no other.
fn check_schema(name: &str, doc: &serde_json::Value) {
    let path = support::repo_root().join(format!("schemas/{name}.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = doc.as_object().unwrap_or_else(|| panic!("{name}: not an object: {doc}"));
    for key in schema["required"].as_array().into_iter().flatten().filter_map(|k| k.as_str()) {
        assert!(obj.contains_key(key), "{name}: missing {key}: {doc}");
    }
    for key in obj.keys() {
        assert!(schema["properties"].get(key).is_some(), "{name}: {key} is not in the schema");
    }
}

/// The GOROOTs to package: the `go` on PATH, and one Debian toolchain (its GOROOT links out to /usr/share).
fn goroots() -> Vec<PathBuf> {
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd).args(["env", "GOROOT"]);
    let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}\n{RUN_SETUP}"));
    let mut roots = vec![PathBuf::from(out.stdout_str().trim())];
    let debian = ["/usr/lib/go-1.22", "/usr/lib/go-1.23", "/usr/lib/go-1.21", "/usr/lib/go-1.19"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("bin/go").is_file())
        .unwrap_or_else(|| panic!("no Debian Go toolchain in /usr/lib/go-1.2x: {RUN_SETUP}"));
    roots.push(debian);
    roots
}

fn version_line(goroot: &Path) -> String {
    let text = std::fs::read_to_string(goroot.join("VERSION")).unwrap_or_else(|e| panic!("{}: {e}", goroot.display()));
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn go_toolchain_images_build_push_pull_and_build_a_program() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let roots = goroots();
    for (i, goroot) in roots.iter().enumerate() {
        let version = version_line(goroot);
        let tag = format!("{}/toolchains/go:{}", registry.addr, version.trim_start_matches("go"));
        let (out1, out2) = (tmp.path().join(format!("layout-{i}-a")), tmp.path().join(format!("layout-{i}-b")));
        let goroot_s = goroot.display().to_string();

        let built = run_ok(&mut reprove_toolchain_cmd(&[
            "toolchain",
            "build",
            "--goroot",
            &goroot_s,
            "--tag",
            &tag,
            "--push",
            "--output-dir",
            &out1.display().to_string(),
            "--json",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let built = json_stdout(&built);
        check_schema("toolchain-build", &built);
        let digest = built["digest"].as_str().unwrap_or_default().to_string();
        assert!(digest.starts_with("sha256:"), "{built}");
        assert_eq!(built["go_version"], version.as_str());

        // Deterministic: a second build of the same GOROOT has the same digest and bytes.
        let again = run_ok(&mut reprove_toolchain_cmd(&[
            "toolchain",
            "build",
            "--goroot",
            &goroot_s,
            "--tag",
            &tag,
            "--output-dir",
            &out2.display().to_string(),
            "--json",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json_stdout(&again)["digest"], digest.as_str(), "{} built twice gave two digests", goroot.display());
        assert_eq!(registry::tree(&out1), registry::tree(&out2));
        assert_eq!(std::fs::read(out1.join("index.json")).ok(), std::fs::read(out2.join("index.json")).ok());

        // Pull by tag: the digest to pin is printed, and it is the built one.
        let pulled = run_ok(&mut reprove_toolchain_cmd(&[
            "toolchain",
            "pull",
            &tag,
            "--cache-dir",
            &cache.display().to_string(),
            "--json",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let pulled = json_stdout(&pulled);
        check_schema("toolchain-pull", &pulled);
        assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
        assert_eq!(pulled["pinned"], format!("{tag}@{digest}").as_str());
        assert_eq!(pulled["go_version"], version.as_str());
        assert_eq!(pulled["goroot"], "/usr/local/go");
        assert_eq!(pulled["cached"], false);
        let rootfs = PathBuf::from(pulled["rootfs"].as_str().unwrap_or_default());
        let go = rootfs.join("usr/local/go/bin/go");
        assert!(go.is_file(), "{} missing", go.display());
        assert_eq!(version_line(&rootfs.join("usr/local/go")), version);
        assert!(
            rootfs.join("usr/local/go/src/runtime/proc.go").is_file(),
            "GOROOT/src missing (symlink not followed?)"
        );
        assert!(rootfs.join("etc/passwd").is_file() && rootfs.join("tmp").is_dir());

        // Text output by digest: cached now.
        let text = run_ok(&mut reprove_toolchain_cmd(&[
            "toolchain",
            "pull",
            &format!("{tag}@{digest}"),
            "--cache-dir",
            &cache.display().to_string(),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let text = text.stdout_str();
        assert!(text.contains(&format!("digest:   {digest}")), "{text}");
        assert!(text.contains(&format!("go:       {version}")), "{text}");

        // The unpacked toolchain works: `go version`, and a CGO_ENABLED=0 build.
        let mut cmd = Command::new(&go);
        hermetic_go_env(&mut cmd).arg("version");
        let v = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        assert!(v.stdout_str().contains(&version), "{}", v.stdout_str());
        if i == roots.len() - 1 {
            let src = tmp.path().join("hello");
            std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(src.join("go.mod"), "module example.com/hello\n\ngo 1.19\n")
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(
                src.join("main.go"),
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from the image\") }\n",
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let mut cmd = Command::new(&go);
            hermetic_go_env(&mut cmd)
                .current_dir(&src)
                .env("CGO_ENABLED", "0")
                .env("GOCACHE", tmp.path().join("gocache"))
                .env("GOPATH", tmp.path().join("gopath"))
                .env("GOPROXY", "off")
                .args(["build", "-trimpath", "-o", "hello", "."]);
            run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
            let out = run_ok(&mut Command::new(src.join("hello"))).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.stdout_str(), "hello from the image\n");
        }
    }
}

#[test]
fn source_date_epoch_sets_mtimes_and_changes_the_digest() {
    let goroot = goroots().remove(0);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let build = |epoch: &str| {
        let mut cmd = reprove_toolchain_cmd(&[
            "toolchain",
            "build",
            "--goroot",
            &goroot.display().to_string(),
            "--tag",
            "127.0.0.1:1/go:x",
            "--compression",
            "none",
            "--json",
        ]);
        cmd.env("SOURCE_DATE_EPOCH", epoch).current_dir(tmp.path());
        json_stdout(&run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}")))
    };
    let a = build("1000000000");
    assert_eq!(a["source_date_epoch"], 1_000_000_000);
    let b = build("1000000001");
    assert_ne!(a["digest"], b["digest"]);
    assert_eq!(a["digest"], build("1000000000")["digest"]);
}

fn store(dir: &Path) -> Store {
    Store::open(dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn pull_by_tag_gives_the_digest_to_pin_and_pinning_is_enforced() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tar = TarBuilder::new().file("hello", 0o644, b"hi").finish();
    let reference = registry.reference("tagged/img:v1");
    let image = push_tars(&registry, &reference, &[tar]);
    let cache = tmp.path().join("cache").display().to_string();

    let out = run_ok(&mut reprove_toolchain_cmd(&["toolchain", "pull", &reference.to_string(), "--cache-dir", &cache]))
        .unwrap_or_else(|e| panic!("{e}"));
    let pin = format!("{reference}@{}", image.manifest_digest);
    assert!(out.stdout_str().contains(&pin), "{}", out.stdout_str());
    assert!(out.stderr_str().contains(&format!("pin this toolchain as {pin}")), "{}", out.stderr_str());

    // A digest the registry does not have: refused (exit 3), and nothing cached.
    let wrong = format!("{}/tagged/img@sha256:{}", registry.addr, "0".repeat(64));
    let out = run(&mut reprove_toolchain_cmd(&["toolchain", "pull", &wrong, "--cache-dir", &cache]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    // Bad references are input errors (exit 2).
    let out = run(&mut reprove_toolchain_cmd(&["toolchain", "pull", "Bad/Ref", "--cache-dir", &cache]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    let out = run(&mut reprove_toolchain_cmd(&[
        "toolchain",
        "build",
        "--goroot",
        "/nonexistent",
        "--tag",
        "x/y:1",
        "--base",
        "golang:1.22",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("has no digest"), "{}", out.stderr_str());
}

#[test]
fn image_indexes_select_the_platform() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Platform::host();
    let mut images: Vec<Image> = Vec::new();
    for arch in [host.architecture.as_str(), "riscv64"] {
        let tar = TarBuilder::new().file("arch", 0o644, arch.as_bytes()).finish();
        let layer =
            Layer::from_tar(&tar, LayerCompression::Gzip, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = config(&[]);
        cfg["architecture"] = serde_json::json!(arch);
        let image = Image::assemble(cfg, vec![layer], ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
        image
            .push_blocking(&registry::io(), &registry.reference(&format!("multi/img:{arch}")), &registry.options())
            .unwrap_or_else(|e| panic!("{e}"));
        images.push(image);
    }
    let index_ref = registry.reference("multi/img:latest");
    let index_digest = registry::io()
        .block_on(push_index(&index_ref, &images.iter().collect::<Vec<_>>(), &registry.options()))
        .unwrap_or_else(|e| panic!("{e}"));
    let s = store(&tmp.path().join("cache"));
    let pull = |platform: Option<&str>| {
        s.pull_blocking(
            &registry::io(),
            &index_ref,
            &PullOptions {
                platform: platform.map(|p| p.parse().unwrap_or_else(|e| panic!("{e}"))),
                ..PullOptions::default()
            },
        )
    };
    let native = pull(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(native.manifest_digest, images[0].manifest_digest);
    assert_eq!(native.index_digest.as_ref(), Some(&index_digest));
    assert_eq!(native.pin_digest(), &index_digest);
    assert_eq!(std::fs::read_to_string(native.rootfs.join("arch")).unwrap_or_default(), host.architecture);
    let other = pull(Some("linux/riscv64")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.manifest_digest, images[1].manifest_digest);
    assert_eq!(other.platform.architecture, "riscv64");
    match pull(Some("linux/s390x")) {
        Err(ToolchainError::NoMatchingPlatform { available, .. }) => {
            assert!(available.contains("linux/riscv64"), "{available}")
        }
        other => panic!("expected no matching platform, got {other:?}"),
    }
    // By index digest, from the cache (alias), without the registry.
    let by_digest = index_ref.with_digest(index_digest.clone());
    drop(registry);
    let cached =
        s.pull_blocking(&registry::io(), &by_digest, &PullOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(cached.cached);
    assert_eq!(cached.manifest_digest, images[0].manifest_digest);
}

#[test]
fn docker_v2_manifests_and_all_layer_compressions() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = store(&tmp.path().join("cache"));
    let cases = [
        ("docker-gzip", LayerCompression::Gzip, ManifestFormat::DockerV2),
        ("docker-plain", LayerCompression::None, ManifestFormat::DockerV2),
        ("oci-zstd", LayerCompression::Zstd, ManifestFormat::Oci),
        ("oci-plain", LayerCompression::None, ManifestFormat::Oci),
    ];
    for (name, compression, format) in cases {
        let l1 = TarBuilder::new().file("a", 0o644, name.as_bytes()).finish();
        let l2 = TarBuilder::new().file("b", 0o755, b"second").finish();
        let reference = registry.reference(&format!("formats/{name}:1"));
        let image = push_tars_with(&registry, &reference, &[l1, l2], compression, format);
        let pulled = s
            .pull_blocking(
                &registry::io(),
                &reference.with_digest(image.manifest_digest.clone()),
                &PullOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(std::fs::read_to_string(pulled.rootfs.join("a")).unwrap_or_default(), name);
        assert!(pulled.rootfs.join("b").is_file(), "{name}");
    }
}

#[test]
fn basic_auth_from_flags_and_auth_files() {
    let registry = Registry::start_with_auth("tester", "s3cret-pw").unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tar = TarBuilder::new().file("private", 0o644, b"p").finish();
    let reference = registry.reference("private/img:1");
    push_tars(&registry, &reference, &[tar]);
    let cache = tmp.path().join("cache").display().to_string();
    let r = reference.to_string();

    // Anonymous: refused (exit 3), and the message says why.
    let out = run(&mut reprove_toolchain_cmd(&["toolchain", "pull", &r, "--cache-dir", &cache]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());

    // --username with --password-stdin.
    let mut cmd = reprove_toolchain_cmd(&[
        "toolchain",
        "pull",
        &r,
        "--cache-dir",
        &cache,
        "--username",
        "tester",
        "--password-stdin",
        "--json",
    ]);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(b"s3cret-pw\n").unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // An auth file, through REGISTRY_AUTH_FILE (docker config.json format), into a fresh cache.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("tester:s3cret-pw");
    let file = tmp.path().join("auth.json");
    std::fs::write(&file, format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, registry.addr))
        .unwrap_or_else(|e| panic!("{e}"));
    let cache2 = tmp.path().join("cache2").display().to_string();
    let mut cmd = reprove_toolchain_cmd(&["toolchain", "pull", &r, "--cache-dir", &cache2]);
    cmd.env("REGISTRY_AUTH_FILE", &file);
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));

    // A wrong password in ~/.docker/config.json is refused.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap_or_else(|e| panic!("{e}"));
    let bad = base64::engine::general_purpose::STANDARD.encode("tester:wrong");
    std::fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{bad}"}}}}}}"#, registry.addr),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cache3 = tmp.path().join("cache3").display().to_string();
    let mut cmd = reprove_toolchain_cmd(&["toolchain", "pull", &r, "--cache-dir", &cache3]);
    cmd.env("HOME", &home).env_remove("XDG_RUNTIME_DIR");
    let out = run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
}

/// `reprove toolchain pull` with `extra` arguments, `stdin` on standard input and
/// `auth_file` as REGISTRY_AUTH_FILE, into a fresh cache under `tmp`.
fn pull_with(tmp: &Path, r: &str, extra: &[&str], stdin: Option<&str>, auth_file: Option<&Path>) -> support::Outcome {
    use std::io::Write as _;
    use std::process::Stdio;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let cache = tmp.join(format!("cache{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let cache = cache.display().to_string();
    let mut args = vec!["toolchain", "pull", r, "--cache-dir", &cache];
    args.extend_from_slice(extra);
    let mut cmd = reprove_toolchain_cmd(&args);
    // No ~/.docker/config.json or Podman auth file of the machine.
    cmd.env("HOME", tmp).env_remove("XDG_RUNTIME_DIR");
    if let Some(f) = auth_file {
        cmd.env("REGISTRY_AUTH_FILE", f);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    support::Outcome { status: out.status.code(), stdout: out.stdout, stderr: out.stderr }
}

#[test]
fn bearer_tokens_from_a_token_server() {
    // docker-registry with `auth: token:`: it only accepts ES256 JWTs signed by
    // the test's token server (x5c chain to its rootcertbundle).
    let registry = Registry::start_with_token_server("tester", "s3cret-pw", "refresh-0123456789")
        .unwrap_or_else(|e| panic!("{e}"));
    let tokens = registry.token_server.as_ref().unwrap_or_else(|| panic!("no token server"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tar = TarBuilder::new().file("private", 0o644, b"p").finish();
    let reference = registry.reference("private/img:1");
    // The push itself goes through the token server (basic credentials, pull,push scope).
    push_tars(&registry, &reference, &[tar]);
    assert!(
        tokens.requests().iter().any(|l| l.starts_with("GET basic:tester") && l.contains(":private/img:pull,push")),
        "{:?}",
        tokens.requests()
    );
    let r = reference.to_string();
    let host = registry.addr.as_str();
    let write_auth = |name: &str, entry: serde_json::Value| {
        let file = tmp.path().join(name);
        let doc = serde_json::json!({ "auths": { host: entry } });
        std::fs::write(&file, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
        file
    };
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    // Anonymous: the token server hands out a token that grants nothing, the registry refuses it.
    let out = pull_with(tmp.path(), &r, &[], None, None);
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(err.contains(&format!("authentication to {host} failed with anonymous")), "{err}");
    assert!(err.contains("401"), "{err}");

    // --username/--password-stdin: a token for the pull scope.
    let out =
        pull_with(tmp.path(), &r, &["--username", "tester", "--password-stdin", "--json"], Some("s3cret-pw\n"), None);
    assert!(out.success(), "{}", out.stderr_str());
    assert_eq!(
        json_stdout(&out)["digest"].as_str().map(|d| d.starts_with("sha256:")),
        Some(true),
        "{}",
        out.stdout_str()
    );
    assert!(
        tokens.requests().iter().any(|l| l == "GET basic:tester repository:private/img:pull"),
        "{:?}",
        tokens.requests()
    );

    // A wrong password: the token server refuses, the message says which credentials.
    let out = pull_with(tmp.path(), &r, &["--username", "tester", "--password-stdin"], Some("wrong\n"), None);
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(
        err.contains(&format!("authentication to {host} failed with user \"tester\" from --username"))
            && err.contains("token server refused"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the password must not be printed: {err}");

    // An auth file with basic credentials (docker config.json `auth`).
    let file = write_auth("basic.json", serde_json::json!({"auth": b64("tester:s3cret-pw")}));
    let out = pull_with(tmp.path(), &r, &[], None, Some(&file));
    assert!(out.success(), "{}", out.stderr_str());
    let file = write_auth("basic-wrong.json", serde_json::json!({"auth": b64("tester:nope")}));
    let out = pull_with(tmp.path(), &r, &[], None, Some(&file));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("basic-wrong.json"), "{}", out.stderr_str());

    // `identitytoken`, as `docker login` stores it for OAuth token servers: a
    // refresh token exchanged with grant_type=refresh_token for an access token.
    let file = write_auth(
        "identity.json",
        serde_json::json!({"auth": b64("<token>:"), "identitytoken": "refresh-0123456789"}),
    );
    let before = tokens.requests().len();
    let out = pull_with(tmp.path(), &r, &["--json"], None, Some(&file));
    assert!(out.success(), "{}", out.stderr_str());
    assert!(
        tokens.requests()[before..].iter().any(|l| l == "POST refresh_token repository:private/img:pull"),
        "{:?}",
        tokens.requests()
    );
    let file = write_auth("identity-wrong.json", serde_json::json!({"identitytoken": "refresh-revoked"}));
    let out = pull_with(tmp.path(), &r, &[], None, Some(&file));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(err.contains("identitytoken") && err.contains("refused the identity token"), "{err}");
    assert!(!err.contains("refresh-revoked"), "the token must not be printed: {err}");

    // `registrytoken`: a bearer token sent to the registry as it is.
    let file = write_auth(
        "registry-token.json",
        serde_json::json!({"registrytoken": tokens.issue("tester", "repository:private/img:pull")}),
    );
    let out = pull_with(tmp.path(), &r, &[], None, Some(&file));
    assert!(out.success(), "{}", out.stderr_str());
    // … for another repository it grants nothing.
    let file = write_auth(
        "registry-token-other.json",
        serde_json::json!({"registrytoken": tokens.issue("tester", "repository:other/img:pull")}),
    );
    let out = pull_with(tmp.path(), &r, &[], None, Some(&file));
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("registrytoken"), "{}", out.stderr_str());
}

#[test]
fn warm_cache_needs_no_registry_and_concurrent_pulls_share_one_unpack() {
    let mut registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut b = TarBuilder::new();
    for i in 0..300 {
        b.file(&format!("f{i}"), 0o644, format!("{i}").repeat(1000).as_bytes());
    }
    let tar = b.finish();
    let reference = registry.reference("warm/img:1");
    let image = push_tars(&registry, &reference, &[tar]);
    let pinned = reference.with_digest(image.manifest_digest.clone());
    let cache = tmp.path().join("cache");

    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (cache, pinned, options) = (cache.clone(), pinned.clone(), registry.options());
            std::thread::spawn(move || {
                store(&cache).pull_blocking(
                    &registry::io(),
                    &pinned,
                    &PullOptions { registry: options, ..PullOptions::default() },
                )
            })
        })
        .collect();
    let mut rootfs = Vec::new();
    for t in threads {
        let image = t.join().unwrap_or_else(|_| panic!("thread panicked")).unwrap_or_else(|e| panic!("{e}"));
        rootfs.push(image.rootfs);
    }
    assert!(rootfs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(registry::tree(&cache.join("images/sha256")).iter().filter(|p| !p.contains('/')).count(), 1);

    registry.stop();
    let start = Instant::now();
    let out = run_ok(&mut reprove_toolchain_cmd(&[
        "toolchain",
        "pull",
        &pinned.to_string(),
        "--cache-dir",
        &cache.display().to_string(),
        "--json",
    ]))
    .unwrap_or_else(|e| panic!("the cache needed the registry: {e}"));
    let elapsed = start.elapsed();
    assert_eq!(json_stdout(&out)["cached"], true);
    eprintln!("warm pull by digest (process start included): {elapsed:?}");

    // gc: a recently used image stays, with the Go build cache made with it; a build
    // cache whose image is not cached goes; --all removes the rest.
    let build_cache = |key: &str, image: &str| {
        let dir = cache.join("gocache").join(key);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(cache.join("gocache").join(format!("{key}.toolchain")), format!("{image}\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    };
    let kept = build_cache(&"a".repeat(32), &image.manifest_digest.to_string());
    let orphan = build_cache(&"b".repeat(32), &format!("sha256:{}", "0".repeat(64)));
    let gc =
        run_ok(&mut reprove_toolchain_cmd(&["toolchain", "gc", "--cache-dir", &cache.display().to_string(), "--json"]))
            .unwrap_or_else(|e| panic!("{e}"));
    check_schema("toolchain-gc", &json_stdout(&gc));
    assert_eq!(json_stdout(&gc)["kept_images"], 1);
    assert_eq!(
        (json_stdout(&gc)["kept_build_caches"].as_u64(), json_stdout(&gc)["removed_build_caches"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(kept.is_dir() && !orphan.exists());
    let gc = run_ok(&mut reprove_toolchain_cmd(&[
        "toolchain",
        "gc",
        "--all",
        "--cache-dir",
        &cache.display().to_string(),
        "--json",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json_stdout(&gc)["removed_images"][0], image.manifest_digest.to_string().as_str());
    assert_eq!(json_stdout(&gc)["removed_build_caches"], 1);
    assert_eq!(registry::tree(&cache.join("images/sha256")), Vec::<String>::new());
    assert!(!kept.exists());
}

/// A tiny GOROOT: enough for `toolchain build` (bin/go, VERSION with a time line), with a
/// symlink inside it (kept) and one leading out of it (replaced by its target, as Debian's).
fn fake_goroot(dir: &Path) -> PathBuf {
    let goroot = dir.join("lib/go");
    let shared = dir.join("share/go/src");
    std::fs::create_dir_all(goroot.join("bin")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(shared.join("runtime")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(goroot.join("VERSION"), "go1.99.1\ntime 2024-01-02T03:04:05Z\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(goroot.join("bin/go"), "#!/bin/sh\necho go version go1.99.1 linux/amd64\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(goroot.join("bin/go"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(shared.join("runtime/proc.go"), "package runtime\n").unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("../../share/go/src", goroot.join("src")).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("bin/go", goroot.join("go-link")).unwrap_or_else(|e| panic!("{e}"));
    goroot
}

#[test]
fn build_on_a_pinned_base_image() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let goroot = fake_goroot(tmp.path());
    let base_tar = TarBuilder::new().dir("etc/", 0o755).file("etc/os-release", 0o644, b"ID=base\n").finish();
    let base_ref = registry.reference("bases/mini:1");
    let base = push_tars(&registry, &base_ref, &[base_tar]);
    let pinned_base = format!("{base_ref}@{}", base.manifest_digest);
    let tag = format!("{}/toolchains/go:1.99.1", registry.addr);
    let goroot_s = goroot.display().to_string();
    let build = |extra: &[&str]| {
        let mut args =
            vec!["toolchain", "build", "--goroot", &goroot_s, "--tag", &tag, "--base", &pinned_base, "--json"];
        args.extend_from_slice(extra);
        json_stdout(&run_ok(&mut reprove_toolchain_cmd(&args)).unwrap_or_else(|e| panic!("{e}")))
    };
    let built = build(&["--push"]);
    assert_eq!(built["source_date_epoch"], 1_704_164_645, "the VERSION time line sets the mtimes");
    assert_eq!(built["layers"].as_array().map(Vec::len), Some(2), "{built}");
    assert_eq!(built["layers"][0]["digest"], base.layers[0].blob.digest.to_string().as_str());
    assert_eq!(build(&[])["digest"], built["digest"], "not deterministic on a base");

    let s = store(&tmp.path().join("cache"));
    let pulled = s
        .pull_blocking(&registry::io(), &tag.parse().unwrap_or_else(|e| panic!("{e}")), &PullOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pulled.manifest_digest.to_string(), built["digest"].as_str().unwrap_or_default());
    assert_eq!(pulled.go_version.as_deref(), Some("go1.99.1"));
    assert_eq!(pulled.env("GOTOOLCHAIN").as_deref(), Some("local"));
    assert_eq!(pulled.env("GOROOT").as_deref(), Some("/usr/local/go"));
    assert!(pulled.env("PATH").unwrap_or_default().starts_with("/usr/local/go/bin:"));
    let root = &pulled.rootfs;
    assert!(root.join("etc/os-release").is_file(), "base layer missing");
    assert!(!root.join("etc/passwd").exists(), "a based image gets no made-up /etc/passwd");
    assert!(root.join("usr/local/go/src/runtime/proc.go").is_file(), "a symlink out of GOROOT must be followed");
    assert!(std::fs::symlink_metadata(root.join("usr/local/go/src")).map(|m| m.is_dir()).unwrap_or(false));
    assert_eq!(std::fs::read_link(root.join("usr/local/go/go-link")).unwrap_or_default(), PathBuf::from("bin/go"));
    let mtime = std::fs::metadata(root.join("usr/local/go/VERSION"))
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mtime.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(), 1_704_164_645);
}
