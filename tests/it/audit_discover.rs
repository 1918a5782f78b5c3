//! `reprove audit IMAGE --list`: the Go binaries of images built here with
//! `oci::build` from real Go programs (the host `go`, several GOOS/GOARCH, one
//! with its build info removed by `objcopy`), with whiteouts, opaque
//! directories, replaced files, symlinks over directories and hardlinks; read
//! from an OCI layout, `docker save` archives (classic and OCI), a registry (by
//! tag and by digest) and image indexes. Then hostile images: a wrong digest, a
//! truncated gzip stream, `..` and absolute entries, a huge declared size, a
//! manifest that is not JSON: each a clear error (exit 2) or a note, never a
//! panic, nothing written outside the test's directories.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use oci::build::{Image, Layer, LayerCompression, ManifestFormat};
use oci::Digest;
use serde_json::{json, Value};

use crate::support::registry::Registry;
use crate::support::{hermetic_go_env, reprove_bin, run, run_ok, schema, Outcome};

/// The Go programs the images hold, built once per test process.
pub(crate) struct Programs {
    _dir: tempfile::TempDir,
    /// example.com/hello, linux/amd64.
    pub(crate) hello: Vec<u8>,
    /// example.com/hello, linux/arm64.
    pub(crate) hello_arm64: Vec<u8>,
    /// example.com/greet, linux/amd64.
    pub(crate) greet: Vec<u8>,
    /// example.com/hello with `.go.buildinfo` removed (objcopy): Go, no build info.
    pub(crate) stripped: Vec<u8>,
    /// example.com/hello for windows/amd64 (PE).
    pub(crate) windows: Vec<u8>,
    /// example.com/hello for darwin/arm64 (Mach-O).
    pub(crate) darwin: Vec<u8>,
    /// The host's `true`: an ELF executable Go did not link.
    pub(crate) host_true: Vec<u8>,
}

fn go_build(module: &str, dir: &Path, goos: &str, goarch: &str, out: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("go.mod"), format!("module {module}\n\ngo 1.22\n")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("main.go"),
        format!("package main\n\nimport \"fmt\"\n\nfunc main() {{ fmt.Println(\"{module}\") }}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new("go");
    hermetic_go_env(&mut cmd)
        .current_dir(dir)
        .env("CGO_ENABLED", "0")
        .env("GOOS", goos)
        .env("GOARCH", goarch)
        .env("GOPROXY", "off")
        .args(["build", "-trimpath", "-o"])
        .arg(out)
        .arg(".");
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
}

pub(crate) fn programs() -> &'static Programs {
    static P: OnceLock<Programs> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        go_build("example.com/hello", &d.join("hello"), "linux", "amd64", &d.join("hello.bin"));
        go_build("example.com/hello", &d.join("hello"), "linux", "arm64", &d.join("hello-arm64.bin"));
        go_build("example.com/hello", &d.join("hello"), "windows", "amd64", &d.join("hello.exe"));
        go_build("example.com/hello", &d.join("hello"), "darwin", "arm64", &d.join("hello-darwin.bin"));
        go_build("example.com/greet", &d.join("greet"), "linux", "amd64", &d.join("greet.bin"));
        let mut objcopy = Command::new("objcopy");
        objcopy.args(["--remove-section", ".go.buildinfo"]).arg(d.join("hello.bin")).arg(d.join("stripped.bin"));
        run_ok(&mut objcopy).unwrap_or_else(|e| panic!("{e} (binutils: run ci/setup)"));
        let host_true = ["/usr/bin/true", "/bin/true"]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .unwrap_or_else(|| panic!("no true(1) on this host"));
        Programs {
            hello: read(&d.join("hello.bin")),
            hello_arm64: read(&d.join("hello-arm64.bin")),
            greet: read(&d.join("greet.bin")),
            stripped: read(&d.join("stripped.bin")),
            windows: read(&d.join("hello.exe")),
            darwin: read(&d.join("hello-darwin.bin")),
            host_true,
            _dir: dir,
        }
    })
}

/// A layer entry.
pub(crate) enum E<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
    /// A regular file whose name goes into the header unchecked (absolute, `..`).
    Raw(&'a str, &'a [u8]),
}

pub(crate) fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        let r = match e {
            E::File(p, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, p, *data)
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty())
            }
            E::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, p, t)
            }
            E::Sym(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, t)
            }
            E::Raw(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(0o755);
                h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                b.append(&h, *data)
            }
        };
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    b.into_inner().unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn layer(entries: &[E<'_>], c: LayerCompression) -> Layer {
    Layer::from_tar(&tar(entries), c, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn image(layers: Vec<Layer>, arch: &str) -> Image {
    Image::assemble(json!({"architecture": arch, "os": "linux", "config": {}}), layers, ManifestFormat::Oci)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The raw tars of the main image's layers, bottom first: whiteouts, an opaque
/// directory, a replaced file, a symlink over a directory, hardlinks, PE and
/// Mach-O at non-executable paths, a non-Go ELF, a Go binary without build info.
fn main_tars() -> Vec<Vec<u8>> {
    let p = programs();
    vec![
        tar(&[
            E::Dir("usr"),
            E::Dir("usr/bin"),
            E::File("usr/bin/hello", 0o755, &p.hello),
            E::Link("usr/bin/hello-link", "usr/bin/hello"),
            E::File("usr/bin/tool", 0o755, &p.hello),
            E::Link("usr/sbin/tool-link", "usr/bin/tool"),
            E::File("usr/bin/true", 0o755, &p.host_true),
            E::File("usr/bin/stripped", 0o755, &p.stripped),
            E::File("opt/win/hello.exe", 0o644, &p.windows),
            E::File("opt/mac/hello", 0o644, &p.darwin),
            E::File("usr/local/bin/replaced", 0o755, &p.hello),
            // A Go binary found only here, hidden by the layer above.
            E::File("gone/x", 0o755, &hidden_only(&p.hello)),
            E::File("opq/dir/y", 0o755, &p.hello),
            E::File("shadowed/dir/z", 0o755, &p.hello),
            E::File("etc/script.sh", 0o755, b"#!/bin/sh\necho hi\n"),
        ]),
        tar(&[
            E::File("gone/.wh.x", 0o644, b""),
            E::File("opq/dir/.wh..wh..opq", 0o644, b""),
            E::File("opq/dir/new", 0o755, &p.greet),
            E::File("usr/local/bin/replaced", 0o755, &p.greet),
            E::Sym("shadowed", "/opt"),
            E::File("usr/bin/.wh.hello", 0o644, b""),
        ]),
        tar(&[E::File("./usr/bin/late", 0o755, &p.hello)]),
    ]
}

/// A Go binary whose content no visible file has: `hello` with bytes appended.
fn hidden_only(hello: &[u8]) -> Vec<u8> {
    [hello, b"only in a hidden file"].concat()
}

fn main_layers() -> Vec<Layer> {
    let compressions = [LayerCompression::Gzip, LayerCompression::Zstd, LayerCompression::None];
    main_tars()
        .iter()
        .zip(compressions)
        .map(|(t, c)| Layer::from_tar(t, c, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// (path, links, main module or "-", format, unverifiable) of what the main image must list.
fn expected_main() -> BTreeSet<(String, Vec<String>, String, String, String)> {
    let row = |path: &str, links: &[&str], main: &str, format: &str, unverifiable: &str| {
        (
            path.to_string(),
            links.iter().map(|s| s.to_string()).collect(),
            main.to_string(),
            format.to_string(),
            unverifiable.to_string(),
        )
    };
    [
        row("/opq/dir/new", &[], "example.com/greet", "elf", ""),
        row("/opt/mac/hello", &[], "example.com/hello", "macho", ""),
        row("/opt/win/hello.exe", &[], "example.com/hello", "pe", ""),
        row("/usr/bin/hello-link", &[], "example.com/hello", "elf", ""),
        row("/usr/bin/late", &[], "example.com/hello", "elf", ""),
        row("/usr/bin/stripped", &[], "-", "elf", "no build info"),
        row("/usr/bin/tool", &["/usr/sbin/tool-link"], "example.com/hello", "elf", ""),
        row("/usr/local/bin/replaced", &[], "example.com/greet", "elf", ""),
    ]
    .into_iter()
    .collect()
}

fn rows(platform: &Value) -> BTreeSet<(String, Vec<String>, String, String, String)> {
    platform["binaries"]
        .as_array()
        .unwrap_or_else(|| panic!("no binaries: {platform}"))
        .iter()
        .map(|b| {
            (
                b["path"].as_str().unwrap_or_default().to_string(),
                b["links"]
                    .as_array()
                    .map(|l| l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
                b["buildInfo"]["Main"]["Path"].as_str().unwrap_or("-").to_string(),
                b["format"].as_str().unwrap_or_default().to_string(),
                b["unverifiable"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn audit(args: &[&str], cwd: &Path) -> Outcome {
    let mut cmd = Command::new(reprove_bin());
    cmd.current_dir(cwd).arg("audit").args(args);
    run(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `reprove audit IMAGE --list --json ARGS`, which must succeed; the document, checked against its schema.
pub(crate) fn audit_json(image: &str, args: &[&str], cwd: &Path) -> Value {
    let mut all = vec![image, "--list", "--json"];
    all.extend_from_slice(args);
    let out = audit(&all, cwd);
    assert!(out.success(), "audit {image} failed: {:?}\n{}", out.status, out.stderr_str());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout_str()));
    schema::assert_valid("audit-list.schema.json", &doc);
    doc
}

fn sha(data: &[u8]) -> String {
    crate::support::hex(&<sha2::Sha256 as sha2::Digest>::digest(data))
}

#[test]
fn a_layout_lists_the_visible_go_binaries() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let img = image(main_layers(), "amd64");
    let layout = dir.path().join("layout");
    img.write_layout(&layout, Some("v1")).unwrap_or_else(|e| panic!("{e}"));
    let input = format!("oci:{}:v1", layout.display());
    let doc = audit_json(&input, &[], dir.path());
    assert_eq!(doc["image"]["digest"], json!(img.manifest_digest.to_string()));
    assert_eq!(doc["image"]["digestOf"], json!("manifest"));
    assert_eq!(doc["image"]["reference"], json!("v1"));
    assert_eq!(doc["image"]["resolvedFromTag"], json!(false));
    let platforms = doc["platforms"].as_array().unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(platforms.len(), 1);
    let p = &platforms[0];
    assert_eq!(p["platform"], json!("linux/amd64"));
    assert_eq!(p["manifestDigest"], json!(img.manifest_digest.to_string()));
    assert_eq!(p["configDigest"], json!(img.config.digest.to_string()));
    assert_eq!(rows(p), expected_main(), "{doc:#}");

    // The upper layer's file is the one read; the sizes and digests are the files'.
    let progs = programs();
    let by_path: BTreeMap<&str, &Value> =
        p["binaries"].as_array().into_iter().flatten().map(|b| (b["path"].as_str().unwrap_or_default(), b)).collect();
    assert_eq!(by_path["/usr/local/bin/replaced"]["sha256"], json!(sha(&progs.greet)));
    assert_eq!(by_path["/usr/bin/hello-link"]["sha256"], json!(sha(&progs.hello)));
    assert_eq!(by_path["/usr/bin/stripped"]["evidence"], json!("Go build ID"));
    assert_eq!(by_path["/usr/bin/late"]["size"], json!(progs.hello.len()));
    assert_eq!(by_path["/opt/mac/hello"]["machine"]["goarch"], json!("arm64"));
    assert_eq!(by_path["/opt/win/hello.exe"]["machine"]["goarch"], json!("amd64"));
    // The build info is `go version -m -json`'s document.
    assert_eq!(by_path["/usr/bin/late"]["buildInfo"]["Path"], json!("example.com/hello"));
    assert!(by_path["/usr/bin/late"]["buildInfo"]["GoVersion"].as_str().is_some_and(|v| v.starts_with("go1.")));
    // The hidden link target was read while its layer streamed, once: nothing to note.
    assert_eq!(p["notes"], json!([]));

    // The text form: one line per binary.
    let out = audit(&[&input, "--list"], dir.path());
    assert!(out.success(), "{}", out.stderr_str());
    let text = out.stdout_str();
    assert!(text.contains("linux/amd64\t/usr/bin/stripped\t-\tunverifiable: no build info"), "{text}");
    assert!(text.contains("/usr/local/bin/replaced\tgo1."), "{text}");
    assert!(text.contains("example.com/greet@(devel)"), "{text}");
    assert_eq!(text.lines().count(), 1 + expected_main().len(), "{text}");

    // Without a tag: the layout's only image.
    let doc = audit_json(&format!("oci:{}", layout.display()), &[], dir.path());
    assert_eq!(rows(&doc["platforms"][0]), expected_main());

    // The binaries can be kept for the rebuild, named by their digest.
    let keep = dir.path().join("binaries");
    let keep_arg = keep.display().to_string();
    audit_json(&input, &["--binaries-dir", &keep_arg], dir.path());
    assert_eq!(std::fs::read(keep.join(sha(&progs.greet))).unwrap_or_default(), progs.greet);
    // Only the visible binaries stay: the walk read the hidden one too, and removed its copy.
    let kept: BTreeSet<String> = std::fs::read_dir(&keep)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    let visible: BTreeSet<String> = by_path.values().filter_map(|b| b["sha256"].as_str().map(str::to_string)).collect();
    assert_eq!(kept, visible);
    assert!(!kept.contains(&sha(&hidden_only(&progs.hello))));

    // Without --list, the audit: nothing names a source or a toolchain, so every binary
    // is unverifiable, each saying why (exit 1; tests/it/audit_e2e.rs rebuilds them).
    let cache = dir.path().join("cache").display().to_string();
    let out = audit(&[&input, "--cache-dir", &cache], dir.path());
    assert_eq!(out.status, Some(1), "{}", out.stderr_str());
    let text = out.stdout_str();
    assert!(text.contains("unverifiable") && text.contains("no-build-info"), "{text}");
}

/// Writes a classic `docker save` archive (manifest.json, `<hex>.json` config, `<n>/layer.tar`).
fn classic_archive(path: &Path, tars: &[Vec<u8>], config: &Value) -> Digest {
    let mut config = config.clone();
    let diff_ids: Vec<String> = tars.iter().map(|t| Digest::of(t).to_string()).collect();
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = Digest::of(&config_bytes);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap_or_else(|e| panic!("{e}"));
    };
    add(&format!("{}.json", config_digest.hex()), &config_bytes);
    let mut layers = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        let name = format!("{i:064x}/layer.tar");
        add(&name, t);
        layers.push(name);
    }
    let manifest =
        json!([{"Config": format!("{}.json", config_digest.hex()), "RepoTags": ["app:v1"], "Layers": layers}]);
    add("manifest.json", manifest.to_string().as_bytes());
    std::fs::write(path, b.into_inner().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    config_digest
}

/// Writes the archive newer Docker saves: an OCI layout plus a manifest.json naming its blobs.
fn oci_archive(path: &Path, img: &Image) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    img.write_layout(dir.path(), Some("app:v1")).unwrap_or_else(|e| panic!("{e}"));
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", img.config.digest.hex()),
        "RepoTags": ["app:v1"],
        "Layers": img.layers.iter().map(|l| format!("blobs/sha256/{}", l.blob.digest.hex())).collect::<Vec<_>>(),
    }]);
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(path, b.into_inner().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn docker_archives_classic_and_oci() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let classic = dir.path().join("classic.tar");
    let config_digest = classic_archive(&classic, &main_tars(), &json!({"architecture": "amd64", "os": "linux"}));
    let doc = audit_json(&format!("docker-archive:{}", classic.display()), &[], dir.path());
    // No registry manifest: the config digest names the image, and the document says so.
    assert_eq!(doc["image"]["digest"], json!(config_digest.to_string()));
    assert_eq!(doc["image"]["digestOf"], json!("config"));
    assert_eq!(doc["image"]["reference"], json!("app:v1"));
    assert!(doc["image"]["notes"].to_string().contains("config digest"), "{doc}");
    assert_eq!(doc["platforms"][0]["manifestDigest"], Value::Null);
    assert_eq!(rows(&doc["platforms"][0]), expected_main());

    let img = image(main_layers(), "amd64");
    let newer = dir.path().join("oci.tar");
    oci_archive(&newer, &img);
    let doc = audit_json(&format!("docker-archive:{}", newer.display()), &[], dir.path());
    assert_eq!(doc["image"]["digest"], json!(img.manifest_digest.to_string()));
    assert_eq!(doc["image"]["digestOf"], json!("manifest"));
    assert_eq!(rows(&doc["platforms"][0]), expected_main());

    // A classic archive whose layer does not match its diff_id.
    let mut tars = main_tars();
    let bad = dir.path().join("bad.tar");
    let cfg = classic_archive(&bad, &tars, &json!({"architecture": "amd64", "os": "linux"}));
    let _ = cfg;
    let mut bytes = std::fs::read(&bad).unwrap_or_default();
    let needle = &tars[2][600..640];
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap_or_else(|| panic!("layer not found"));
    bytes[at] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&[&format!("docker-archive:{}", bad.display()), "--list"], dir.path());
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("(diff_id)") && out.stderr_str().contains("does not match"),
        "{}",
        out.stderr_str()
    );
    tars.clear();
}

#[test]
fn a_registry_tag_is_resolved_and_reported() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let img = image(main_layers(), "amd64");
    let reference = registry.reference("app:v1");
    img.push_blocking(&rt, &reference, &registry.options()).unwrap_or_else(|e| panic!("{e}"));
    let by_tag = reference.to_string();
    let doc = audit_json(&by_tag, &[], dir.path());
    assert_eq!(doc["image"]["resolvedFromTag"], json!(true));
    assert_eq!(doc["image"]["digest"], json!(img.manifest_digest.to_string()));
    let pinned = format!("{}@{}", reference.name(), img.manifest_digest);
    assert_eq!(doc["image"]["reference"], json!(pinned));
    assert_eq!(rows(&doc["platforms"][0]), expected_main());
    let text = audit(&[&by_tag, "--list"], dir.path()).stdout_str();
    assert!(
        text.starts_with(&format!("image {by_tag} manifest {} (resolved from a tag)", img.manifest_digest)),
        "{text}"
    );

    let doc = audit_json(&pinned, &[], dir.path());
    assert_eq!(doc["image"]["resolvedFromTag"], json!(false));
    assert_eq!(rows(&doc["platforms"][0]), expected_main());

    // An index of two platforms, all of them or the ones picked.
    let p = programs();
    let amd = image(vec![layer(&[E::File("app", 0o755, &p.hello)], LayerCompression::Gzip)], "amd64");
    let arm = image(vec![layer(&[E::File("app", 0o755, &p.hello_arm64)], LayerCompression::Gzip)], "arm64");
    for (i, tag) in [(&amd, "amd"), (&arm, "arm")] {
        i.push_blocking(&rt, &registry.reference(&format!("multi:{tag}")), &registry.options())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let index_ref = registry.reference("multi:v1");
    let index_digest = rt
        .block_on(oci::build::push_index(&index_ref, &[&amd, &arm], &registry.options()))
        .unwrap_or_else(|e| panic!("{e}"));
    let doc = audit_json(&index_ref.to_string(), &[], dir.path());
    assert_eq!(doc["image"]["digest"], json!(index_digest.to_string()));
    assert_eq!(doc["image"]["digestOf"], json!("index"));
    let platforms: Vec<(&str, &str)> = doc["platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["platform"].as_str().unwrap_or_default(),
                p["binaries"][0]["machine"]["goarch"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(platforms, vec![("linux/amd64", "amd64"), ("linux/arm64", "arm64")]);
    let doc = audit_json(&index_ref.to_string(), &["--platform", "linux/arm64"], dir.path());
    assert_eq!(doc["platforms"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["platforms"][0]["manifestDigest"], json!(arm.manifest_digest.to_string()));
    let out = audit(&[&index_ref.to_string(), "--list", "--platform", "linux/s390x"], dir.path());
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("linux/amd64, linux/arm64"), "{}", out.stderr_str());

    // A registry that is gone: infrastructure.
    let gone = registry.reference("app:v1").to_string();
    drop(registry);
    let out = audit(&[&gone, "--list", "--registry-timeout", "5s"], dir.path());
    assert_eq!(out.status, Some(3), "{}", out.stderr_str());
}

/// Writes an OCI layout holding `images` under one index, plus a buildx-style attestation manifest.
pub(crate) fn index_layout(dir: &Path, images: &[&Image]) -> Digest {
    for img in images {
        img.write_layout(dir, None).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut manifests: Vec<Value> = images
        .iter()
        .map(|i| {
            json!({"mediaType": i.manifest_media_type, "digest": i.manifest_digest.to_string(), "size": i.manifest.len(),
                   "platform": {"os": i.platform.os, "architecture": i.platform.architecture}})
        })
        .collect();
    // An attestation manifest whose blob is not even there: it must not be read.
    manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of(b"attestation").to_string(), "size": 11,
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}));
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let bytes = index.to_string().into_bytes();
    let digest = Digest::of(&bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.hex()), &bytes).unwrap_or_else(|e| panic!("{e}"));
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": digest.to_string(), "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), top.to_string()).unwrap_or_else(|e| panic!("{e}"));
    digest
}

#[test]
fn a_layout_index_skips_attestations_and_picks_platforms() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = programs();
    let amd = image(vec![layer(&[E::File("bin/app", 0o755, &p.hello)], LayerCompression::Zstd)], "amd64");
    let arm = image(vec![layer(&[E::File("bin/app", 0o755, &p.hello_arm64)], LayerCompression::Zstd)], "arm64");
    let layout = dir.path().join("layout");
    let digest = index_layout(&layout, &[&amd, &arm]);
    let input = format!("oci:{}:v1", layout.display());
    let doc = audit_json(&input, &[], dir.path());
    assert_eq!(doc["image"]["digest"], json!(digest.to_string()));
    let names: Vec<&str> =
        doc["platforms"].as_array().into_iter().flatten().filter_map(|p| p["platform"].as_str()).collect();
    assert_eq!(names, vec!["linux/amd64", "linux/arm64"]);
    let doc = audit_json(&input, &["--platform", "linux/amd64"], dir.path());
    assert_eq!(doc["platforms"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["platforms"][0]["binaries"][0]["sha256"], json!(sha(&p.hello)));
}

/// Writes `img` as a layout after `tamper` changed its blobs (by digest hex) and returns the input.
fn tampered_layout(dir: &Path, name: &str, img: &Image, tamper: impl FnOnce(&Path)) -> String {
    let layout = dir.join(name);
    img.write_layout(&layout, None).unwrap_or_else(|e| panic!("{e}"));
    tamper(&layout.join("blobs/sha256"));
    format!("oci:{}", layout.display())
}

fn expect_input_error(input: &str, cwd: &Path, words: &[&str]) {
    let out = audit(&[input, "--list"], cwd);
    let err = out.stderr_str();
    assert_eq!(out.status, Some(2), "{input}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "{input}: want {w:?} in: {err}");
    }
}

#[test]
fn hostile_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    let p = programs();

    // A layer blob that does not match its digest.
    let img = image(vec![layer(&[E::File("bin/app", 0o755, &p.hello)], LayerCompression::Gzip)], "amd64");
    let hex = img.layers[0].blob.digest.hex().to_string();
    let input = tampered_layout(dir.path(), "mismatch", &img, |blobs| {
        let path = blobs.join(&hex);
        let mut b = std::fs::read(&path).unwrap_or_default();
        let n = b.len();
        b[n / 2] ^= 0x55;
        std::fs::write(&path, b).unwrap_or_else(|e| panic!("{e}"));
    });
    expect_input_error(&input, &work, &["does not match its digest", &hex]);

    // A truncated gzip stream whose digest and size are the descriptor's.
    let tar_bytes = tar(&[E::File("bin/app", 0o755, &p.hello)]);
    let full =
        Layer::from_tar(&tar_bytes, LayerCompression::Gzip, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"));
    let data = match &full.blob.data {
        oci::build::BlobData::Memory(b) => b.slice(..b.len() / 2),
        oci::build::BlobData::File(_) => panic!("in memory"),
    };
    let truncated =
        Layer { blob: oci::build::Blob::from_bytes(full.blob.media_type.clone(), data), diff_id: full.diff_id.clone() };
    let img = image(vec![truncated], "amd64");
    let input = tampered_layout(dir.path(), "truncated", &img, |_| {});
    expect_input_error(&input, &work, &["reading the layer"]);

    // A corrupt deflate stream whose digest is the descriptor's: the stream is the error, not the digest.
    let mut corrupt = match &full.blob.data {
        oci::build::BlobData::Memory(b) => b.to_vec(),
        oci::build::BlobData::File(_) => panic!("in memory"),
    };
    let n = corrupt.len();
    for b in &mut corrupt[n / 3..n / 3 + 64] {
        *b = 0xff;
    }
    let corrupt =
        Layer { blob: oci::build::Blob::from_bytes(full.blob.media_type.clone(), corrupt), diff_id: full.diff_id };
    let img = image(vec![corrupt], "amd64");
    let input = tampered_layout(dir.path(), "corrupt", &img, |_| {});
    let out = audit(&[&input, "--list"], &work);
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(err.contains("reading the layer") || err.contains("(diff_id)"), "{err}");

    // `..` and absolute entries: skipped with a note (never joined to a host path), the rest listed.
    let img = image(
        vec![layer(
            &[E::Raw("../../escape", &p.hello), E::Raw("/abs/app", &p.hello), E::Raw("a/../../b", &p.hello)],
            LayerCompression::None,
        )],
        "amd64",
    );
    let input = tampered_layout(dir.path(), "dotdot", &img, |_| {});
    let doc = audit_json(&input, &[], &work);
    let paths: Vec<&str> =
        doc["platforms"][0]["binaries"].as_array().into_iter().flatten().filter_map(|b| b["path"].as_str()).collect();
    assert_eq!(paths, vec!["/abs/app"]);
    let notes = doc["platforms"][0]["notes"].to_string();
    assert!(notes.contains("../../escape") && notes.contains("`..`"), "{notes}");

    // A header that declares a huge size, and then the archive ends.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(1 << 40);
    h.set_mode(0o755);
    h.as_old_mut().name[..7].copy_from_slice(b"bin/big");
    h.set_cksum();
    let mut huge = h.as_bytes().to_vec();
    huge.extend_from_slice(&p.hello[..4096]);
    let img = image(
        vec![Layer::from_tar(&huge, LayerCompression::Gzip, ManifestFormat::Oci).unwrap_or_else(|e| panic!("{e}"))],
        "amd64",
    );
    let input = tampered_layout(dir.path(), "huge", &img, |_| {});
    expect_input_error(&input, &work, &["reading the layer"]);

    // A manifest that is not JSON.
    let layout = dir.path().join("notjson");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap_or_else(|e| panic!("{e}"));
    let junk = b"<html>not a manifest</html>";
    let d = Digest::of(junk);
    std::fs::write(layout.join("blobs/sha256").join(d.hex()), junk).unwrap_or_else(|e| panic!("{e}"));
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": d.to_string(), "size": junk.len()}]});
    std::fs::write(layout.join("index.json"), top.to_string()).unwrap_or_else(|e| panic!("{e}"));
    expect_input_error(&format!("oci:{}", layout.display()), &work, &["not valid JSON"]);

    // An index.json larger than the bound, a missing layout, a bad platform, an unsupported transport.
    let big = dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap_or_else(|e| panic!("{e}"));
    let mut f = std::fs::File::create(big.join("index.json")).unwrap_or_else(|e| panic!("{e}"));
    f.write_all(&vec![b' '; 9 << 20]).unwrap_or_else(|e| panic!("{e}"));
    expect_input_error(&format!("oci:{}", big.display()), &work, &["more than 8 MiB"]);
    expect_input_error(&format!("oci:{}", dir.path().join("none").display()), &work, &["not an OCI layout"]);
    expect_input_error("docker://x", &work, &["not supported"]);
    let out = audit(&["x", "--list", "--platform", "linux"], &work);
    assert_eq!(out.status, Some(2), "{}", out.stderr_str());

    // Nothing was written next to the test's directories.
    let listing: Vec<PathBuf> =
        std::fs::read_dir(dir.path()).into_iter().flatten().flatten().map(|e| e.path()).collect();
    assert!(!dir.path().join("b").exists(), "{listing:?}");
    assert!(
        std::fs::read_dir(&work).map(|mut d| d.next().is_none()).unwrap_or(false),
        "the work directory was written to"
    );
}
