//! `reprove attest push`, `attest fetch` and `attest verify --image` against real
//! registries on 127.0.0.1: Debian's `docker-registry` (distribution 2.8, no
//! referrers API: the referrers tag schema) and go-containerregistry's registry with
//! the referrers API (`ci/setup-referrers-registry`). Every test says which path it
//! took: the CLI prints it and `--json` reports it (`referrersPath`, a referrer's
//! `path`), and the tests assert it. Basic auth on both, bearer tokens from the
//! support's token server on Debian's.
//!
//! Bad input goes through the fault-injecting proxy of the registry support (a
//! referrers index that is not JSON, a blob that does not match its digest, a 500
//! to the last write of a push) or is crafted in the registry (a referrer of another
//! subject, a manifest over the bound), and nothing is left half-written.
//!
//! Interop: cosign v2.4.1 and v3 (`ci/setup-cosign`) verify what reprove pushed
//! (the legacy `.att`, the bundle referrer) and reprove fetches and verifies what
//! they attested, on both registries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use oci::build::{Image, ManifestFormat};
use oci::{ImageRef, RegistryOptions};

use crate::support::registry::{io, Fault, FaultProxy, ReferrersRegistry, Registry};
use crate::support::signing::{ok, text, TestResult, PROVENANCE};

pub(crate) const PASSWORD: &str = "registry-pw";

/// One of the two test registries.
pub(crate) enum Reg {
    /// Debian's docker-registry: no referrers API.
    Distribution(Registry),
    /// go-containerregistry's registry with the referrers API.
    Api(ReferrersRegistry),
}

impl Reg {
    pub(crate) fn both() -> Result<Vec<Reg>, String> {
        Ok(vec![Reg::Distribution(Registry::start()?), Reg::Api(ReferrersRegistry::start()?)])
    }

    pub(crate) fn addr(&self) -> &str {
        match self {
            Reg::Distribution(r) => &r.addr,
            Reg::Api(r) => &r.addr,
        }
    }

    pub(crate) fn options(&self) -> RegistryOptions {
        match self {
            Reg::Distribution(r) => r.options(),
            Reg::Api(r) => r.options(),
        }
    }

    /// The path the referrers take on this registry, as `--json` names it.
    fn path(&self) -> &'static str {
        match self {
            Reg::Distribution(_) => "tag-schema",
            Reg::Api(_) => "api",
        }
    }

    fn reference(&self, name: &str) -> ImageRef {
        format!("{}/{name}", self.addr()).parse().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Pushes a one-layer image for `arch` to `name:tag` and returns it.
pub(crate) fn push_image(reg: &Reg, name: &str, tag: &str, arch: &str) -> Result<Image, Box<dyn std::error::Error>> {
    let tar = crate::support::registry::TarBuilder::new().file("hello.txt", 0o644, arch.as_bytes()).finish();
    let layer = oci::build::Layer::from_tar(&tar, oci::build::LayerCompression::Gzip, ManifestFormat::Oci)?;
    let config = serde_json::json!({"architecture": arch, "os": "linux", "config": {}});
    let image = Image::assemble(config, vec![layer], ManifestFormat::Oci)?;
    image.push_blocking(&io(), &reg.reference(&format!("{name}:{tag}")), &reg.options())?;
    Ok(image)
}

pub(crate) fn reprove(dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output, std::io::Error> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reprove"))
        .current_dir(dir)
        .args(args)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("HOME", dir)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    child.wait_with_output()
}

/// A key pair `PREFIX.key`/`PREFIX.pub`.
pub(crate) fn keygen(dir: &Path, prefix: &str) -> TestResult {
    ok(&reprove(dir, &["keygen", "--output-key-prefix", prefix], None)?, "reprove keygen")
}

/// The predicate of the test provenances, built by `builder`.
fn predicate(builder: &str) -> String {
    format!(
        r#"{{"buildDefinition":{{"buildType":"t","externalParameters":{{}}}},"runDetails":{{"builder":{{"id":"{builder}"}}}}}}"#
    )
}

/// Signs with `key` a provenance (builder `builder`) whose subject is the image whose
/// manifest is `manifest` (its sha256 is the image digest): `OUT.intoto.jsonl` and
/// `OUT.sigstore.json`.
fn sign_as(dir: &Path, key: &str, manifest: &[u8], builder: &str, out: &str) -> TestResult {
    std::fs::write(dir.join("image.manifest"), manifest)?;
    std::fs::write(dir.join(format!("{out}.pred.json")), predicate(builder))?;
    let (envelope, bundle, pred) =
        (format!("{out}.intoto.jsonl"), format!("{out}.sigstore.json"), format!("{out}.pred.json"));
    let args = [
        "attest",
        "sign",
        "--key",
        key,
        "--predicate-type",
        PROVENANCE,
        "--predicate",
        &pred,
        "--subject",
        "image.manifest",
        "--out",
        &envelope,
        "--bundle",
        &bundle,
    ];
    ok(&reprove(dir, &args, None)?, "reprove attest sign")
}

/// A key pair `r.key`/`r.pub` and an envelope `a.intoto.jsonl` and bundle
/// `a.sigstore.json` of a provenance about the image whose manifest is `manifest`.
fn sign(dir: &Path, manifest: &[u8]) -> TestResult {
    keygen(dir, "r")?;
    sign_as(dir, "r.key", manifest, "b", "a")
}

/// Asserts that `doc` follows `schemas/<file>` (a full JSON Schema validator: the
/// schemas use `$ref`).
fn schema_valid(file: &str, doc: &serde_json::Value) -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(file);
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let validator = jsonschema::options().build(&schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the document does not match {file}: {errors:#?}\n{doc:#}");
    Ok(())
}

fn fetch_json(dir: &Path, image: &str, extra: &[&str]) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let mut args = vec!["attest", "fetch", image, "--json"];
    args.extend_from_slice(extra);
    let out = reprove(dir, &args, None)?;
    ok(&out, "reprove attest fetch --json")?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    schema_valid("attest-fetch.schema.json", &doc)?;
    Ok(doc)
}

fn attestations(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["attestations"].as_array().cloned().unwrap_or_default()
}

fn failed(out: &Output, code: i32, needle: &str, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", text(out));
    assert!(text(out).contains(needle), "{what}: no {needle:?} in:\n{}", text(out));
}

#[test]
fn push_then_fetch_roundtrip_on_both_registries_and_twice_adds_nothing() -> TestResult {
    for reg in Reg::both()? {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        let pinned = format!("{}/app@{}", reg.addr(), image.manifest_digest);
        let path = reg.path();

        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned], None)?;
        ok(&out, "attest push")?;
        let t = text(&out);
        assert!(t.contains("a single image manifest"), "{path}: {t}");
        assert!(t.contains(": pushed, listed by"), "{path}: {t}");
        let listed = if path == "api" { "listed by the referrers API" } else { "listed by the referrers tag schema" };
        assert!(t.contains(listed), "{path}: {t}");
        assert!(t.contains("(1 added, 0 already there)"), "{path}: {t}");

        let doc = fetch_json(d, &pinned, &["--output", "out"])?;
        assert_eq!(doc["referrersPath"], path, "{doc:#}");
        assert_eq!(doc["kind"], "manifest");
        let found = attestations(&doc);
        assert_eq!(found.len(), 2, "{path}: {doc:#}");
        let referrer = &found[0];
        assert_eq!((referrer["source"].as_str(), referrer["path"].as_str()), (Some("referrer"), Some(path)));
        assert_eq!(referrer["format"], "sigstore-bundle");
        assert_eq!(referrer["predicateType"], PROVENANCE);
        let legacy = &found[1];
        assert_eq!(legacy["source"], "legacy");
        assert_eq!(legacy["tag"], format!("sha256-{}.att", image.manifest_digest.hex()));
        assert_eq!(legacy["format"], "dsse");
        assert_eq!(legacy["predicateType"], PROVENANCE);
        // The legacy layer is the envelope as given; the bundle made around it verifies.
        let legacy_file = legacy["file"].as_str().ok_or("no file")?;
        assert_eq!(std::fs::read(d.join(legacy_file))?, std::fs::read(d.join("a.intoto.jsonl"))?);
        let bundle_file = referrer["file"].as_str().ok_or("no file")?;
        for file in [bundle_file, legacy_file] {
            ok(
                &reprove(d, &["attest", "verify", "--key", "r.pub", "--subject", "image.manifest", file], None)?,
                "attest verify of a fetched attestation",
            )?;
        }

        // Twice: nothing added, the same two attestations.
        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned], None)?;
        ok(&out, "attest push again")?;
        let t = text(&out);
        assert!(t.contains(": already there, listed by") && t.contains("(0 added, 1 already there)"), "{path}: {t}");
        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--json"], None)?;
        ok(&out, "attest push --json a third time")?;
        let pushed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        schema_valid("attest-push.schema.json", &pushed)?;
        assert_eq!(pushed["kind"], "manifest");
        let first = &pushed["attestations"][0];
        assert_eq!(
            (first["referrer"]["path"].as_str(), first["referrer"]["added"].as_bool()),
            (Some(path), Some(false))
        );
        assert_eq!(first["legacy"]["added"], false);
        assert_eq!((pushed["legacy"]["added"].as_u64(), pushed["legacy"]["present"].as_u64()), (Some(0), Some(1)));
        let again = fetch_json(d, &pinned, &[])?;
        assert_eq!(attestations(&again).len(), 2, "{path}: {again:#}");
        for (a, b) in attestations(&again).iter().zip(&found) {
            assert_eq!(a["digest"], b["digest"]);
            assert_eq!(a["manifest"], b["manifest"]);
        }

        // A bundle given as such is pushed as it is, next to the first.
        let out = reprove(d, &["attest", "push", "a.sigstore.json", "--image", &pinned, "--format", "referrer"], None)?;
        ok(&out, "attest push of a bundle")?;
        let doc = fetch_json(d, &pinned, &[])?;
        let bundles: Vec<_> = attestations(&doc).into_iter().filter(|a| a["source"] == "referrer").collect();
        assert_eq!(bundles.len(), 2, "{path}: {doc:#}");
        let given = oci::Digest::of(std::fs::read(d.join("a.sigstore.json"))?.trim_ascii()).to_string();
        assert!(bundles.iter().any(|b| b["digest"] == given.as_str()), "{path}: {doc:#}");
    }
    Ok(())
}

#[test]
fn an_index_digest_and_a_platform_digest_each_get_their_own() -> TestResult {
    for reg in Reg::both()? {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let amd64 = push_image(&reg, "multi", "amd64", "amd64")?;
        let arm64 = push_image(&reg, "multi", "arm64", "arm64")?;
        let index =
            io().block_on(oci::build::push_index(&reg.reference("multi:latest"), &[&amd64, &arm64], &reg.options()))?;
        let (_, index_bytes) = get(reg.addr(), &format!("/v2/multi/manifests/{index}"))?;
        assert_eq!(oci::Digest::of(&index_bytes), index);
        // One attestation about the index, one about the arm64 image.
        sign(d, &index_bytes)?;
        sign_as(d, "r.key", &arm64.manifest, "b", "arm64")?;
        let at_index = format!("{}/multi@{index}", reg.addr());
        let at_platform = format!("{}/multi@{}", reg.addr(), arm64.manifest_digest);
        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &at_index], None)?;
        ok(&out, "attest push to the index")?;
        assert!(text(&out).contains("an image index of linux/amd64, linux/arm64"), "{}", text(&out));
        // The index's attestation is not about the platform image: refused, nothing written.
        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &at_platform], None)?;
        failed(&out, 2, "is not about", "an attestation of the index pushed to a platform");
        let out = reprove(
            d,
            &["attest", "push", "arm64.sigstore.json", "--image", &at_platform, "--format", "referrer"],
            None,
        )?;
        ok(&out, "attest push to a platform")?;
        assert!(text(&out).contains("a single image manifest"), "{}", text(&out));

        let doc = fetch_json(d, &at_index, &[])?;
        assert_eq!((doc["kind"].as_str(), doc["referrersPath"].as_str()), (Some("index"), Some(reg.path())));
        assert_eq!(attestations(&doc).len(), 2, "index: referrer and legacy: {doc:#}");
        let doc = fetch_json(d, &at_platform, &[])?;
        assert_eq!(doc["kind"], "manifest");
        let found = attestations(&doc);
        assert_eq!(found.len(), 1, "platform: its one referrer: {doc:#}");
        assert_eq!(found[0]["format"], "sigstore-bundle");
        let other = format!("{}/multi@{}", reg.addr(), amd64.manifest_digest);
        assert!(attestations(&fetch_json(d, &other, &[])?).is_empty());
    }
    Ok(())
}

#[test]
fn basic_auth_as_for_toolchain_pulls() -> TestResult {
    let regs = [
        Reg::Distribution(Registry::start_with_auth("alice", "s3cret")?),
        Reg::Api(ReferrersRegistry::start_with_auth("alice", "s3cret")?),
    ];
    for reg in regs {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let image = push_image(&reg, "private", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        let pinned = format!("{}/private@{}", reg.addr(), image.manifest_digest);
        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned], None)?;
        failed(&out, 3, "authentication to", "push without credentials");
        let creds = ["--username", "alice", "--password-stdin"];
        let mut args = vec!["attest", "push", "a.intoto.jsonl", "--image", &pinned];
        args.extend_from_slice(&creds);
        ok(&reprove(d, &args, Some("s3cret\n"))?, "attest push with credentials")?;
        let out = reprove(
            d,
            &["attest", "fetch", &pinned, "--json", "--username", "alice", "--password-stdin"],
            Some("s3cret\n"),
        )?;
        ok(&out, "attest fetch with credentials")?;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(doc["referrersPath"], reg.path());
        assert_eq!(attestations(&doc).len(), 2, "{doc:#}");
    }
    Ok(())
}

#[test]
fn a_tag_or_a_missing_image_is_refused() -> TestResult {
    let reg = ReferrersRegistry::start()?;
    let reg = Reg::Api(reg);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let image = push_image(&reg, "app", "v1", "amd64")?;
    sign(d, &image.manifest)?;
    let tagged = format!("{}/app:v1", reg.addr());
    failed(&reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &tagged], None)?, 2, "has no digest", "tag");
    failed(&reprove(d, &["attest", "fetch", &tagged], None)?, 2, "has no digest", "fetch by tag");
    let missing = format!("{}/app@{}", reg.addr(), oci::Digest::of(b"no such image"));
    sign_as(d, "r.key", b"no such image", "b", "m")?;
    failed(
        &reprove(d, &["attest", "push", "m.intoto.jsonl", "--image", &missing], None)?,
        2,
        "does not exist",
        "push to a missing image",
    );
    failed(&reprove(d, &["attest", "fetch", &missing], None)?, 2, "does not exist", "fetch of a missing image");
    failed(
        &reprove(d, &["attest", "verify", "--key", "r.pub", "--image", &missing], None)?,
        2,
        "does not exist",
        "verify of a missing image",
    );
    std::fs::write(d.join("junk.json"), b"{\"neither\": 1}")?;
    let pinned = format!("{}/app@{}", reg.addr(), oci::Digest::of(b"x"));
    failed(&reprove(d, &["attest", "push", "junk.json", "--image", &pinned], None)?, 2, "junk.json", "junk");
    Ok(())
}

/// `PUT` of a manifest (raw bytes) to an anonymous registry, for crafted content.
fn put_manifest(addr: &str, repository: &str, reference: &str, media_type: &str, body: &[u8]) -> TestResult {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "PUT /v2/{repository}/manifests/{reference} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut line = String::new();
    let mut reader = BufReader::new(s);
    reader.read_line(&mut line)?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest)?;
    if !line.contains(" 201 ") {
        return Err(format!("PUT {reference}: {line} {rest}").into());
    }
    Ok(())
}

/// A blob upload (`POST …/blobs/uploads/`, then `PUT` of the whole blob at its
/// `Location`) to an anonymous registry.
fn put_blob(addr: &str, repository: &str, body: &[u8]) -> TestResult {
    let digest = oci::Digest::of(body);
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "POST /v2/{repository}/blobs/uploads/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let location = answer
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .ok_or_else(|| format!("POST blob upload: no Location in {answer}"))?
        .trim();
    let path = match location.find("/v2/") {
        Some(i) => &location[i..],
        None => return Err(format!("POST blob upload: Location {location}").into()),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "PUT {path}{sep}digest={digest} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 201") {
        return Err(format!("PUT blob {digest}: {answer}").into());
    }
    Ok(())
}

fn get(addr: &str, path: &str) -> Result<(String, Vec<u8>), Box<dyn std::error::Error>> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").map_or(all.len(), |i| i + 4);
    Ok((String::from_utf8_lossy(&all[..split]).into_owned(), all[split..].to_vec()))
}

#[test]
fn bad_content_is_a_clear_error_and_nothing_is_half_written() -> TestResult {
    // The tag schema on Debian's registry, the API on the other; each behind a proxy
    // that changes the bytes of the referrers index (first byte: no longer JSON).
    for reg in Reg::both()? {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        let digest = image.manifest_digest.clone();
        let pinned = format!("{}/app@{digest}", reg.addr());
        ok(
            &reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--format", "referrer"], None)?,
            "push",
        )?;
        let index_request = match reg {
            Reg::Distribution(_) => format!("/manifests/sha256-{} ", digest.hex()),
            Reg::Api(_) => format!("/referrers/{digest}"),
        };
        let proxy = FaultProxy::start(reg.addr(), &index_request, Fault::WrongBlob)?;
        let via_proxy = format!("{}/app@{digest}", proxy.addr);
        let out = reprove(d, &["attest", "fetch", &via_proxy], None)?;
        failed(&out, 3, "not a JSON image index", &format!("{}: a referrers index that is not JSON", reg.path()));
        assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) > 0);
        if let Reg::Distribution(_) = reg {
            // A push over an index it cannot read stops before writing anything.
            let before = get(reg.addr(), &format!("/v2/app/manifests/sha256-{}", digest.hex()))?;
            let out = reprove(
                d,
                &["attest", "push", "a.sigstore.json", "--image", &via_proxy, "--format", "referrer"],
                None,
            )?;
            failed(&out, 3, "not a JSON image index", "push over a referrers index that is not JSON");
            assert_eq!(get(reg.addr(), &format!("/v2/app/manifests/sha256-{}", digest.hex()))?.1, before.1);
            let bundle = oci::Digest::of(std::fs::read(d.join("a.sigstore.json"))?.trim_ascii());
            let (head, _) = get(reg.addr(), &format!("/v2/app/blobs/{bundle}"))?;
            assert!(head.starts_with("HTTP/1.1 404"), "the bundle blob was pushed: {head}");
        }

        // A blob whose bytes do not match its digest.
        let proxy = FaultProxy::start(reg.addr(), "/blobs/", Fault::WrongBlob)?;
        let out = reprove(d, &["attest", "fetch", &format!("{}/app@{digest}", proxy.addr)], None)?;
        failed(&out, 3, "does not match its descriptor", &format!("{}: a blob digest mismatch", reg.path()));

        // Bounds: bytes and count.
        let out = reprove(d, &["attest", "fetch", &pinned, "--max-bytes", "200"], None)?;
        failed(&out, 3, "--max-bytes", "over the byte bound");
        ok(
            &reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--format", "legacy"], None)?,
            "legacy",
        )?;
        let out = reprove(d, &["attest", "fetch", &pinned, "--max-referrers", "1"], None)?;
        failed(&out, 3, "--max-referrers", "over the count bound");
        ok(&reprove(d, &["attest", "fetch", &pinned, "--max-referrers", "2"], None)?, "at the count bound")?;
    }
    Ok(())
}

#[test]
fn a_referrer_of_another_subject_is_ignored_with_a_note() -> TestResult {
    // On the tag schema, anyone who can push may list any manifest under sha256-<hex>:
    // here the referrers index of image B, copied to image A's tag.
    let reg = Reg::Distribution(Registry::start()?);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let a = push_image(&reg, "app", "a", "amd64")?;
    let b = push_image(&reg, "app", "b", "arm64")?;
    sign(d, &b.manifest)?;
    let at_b = format!("{}/app@{}", reg.addr(), b.manifest_digest);
    ok(&reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &at_b, "--format", "referrer"], None)?, "push")?;
    let (_, index) = get(reg.addr(), &format!("/v2/app/manifests/sha256-{}", b.manifest_digest.hex()))?;
    serde_json::from_slice::<serde_json::Value>(&index)?;
    put_manifest(
        reg.addr(),
        "app",
        &format!("sha256-{}", a.manifest_digest.hex()),
        "application/vnd.oci.image.index.v1+json",
        &index,
    )?;
    let at_a = format!("{}/app@{}", reg.addr(), a.manifest_digest);
    let doc = fetch_json(d, &at_a, &[])?;
    assert!(attestations(&doc).is_empty(), "{doc:#}");
    let notes = doc["notes"].to_string();
    assert!(notes.contains("its subject is") && notes.contains(&b.manifest_digest.to_string()), "{doc:#}");
    let out = reprove(d, &["attest", "fetch", &at_a], None)?;
    ok(&out, "fetch")?;
    assert!(text(&out).contains("note: ignored referrer"), "{}", text(&out));
    // Verification of A finds nothing to pass on: exit 1, the note kept.
    let out = reprove(d, &["attest", "verify", "--key", "r.pub", "--image", &at_a], None)?;
    failed(&out, 1, "no attestations found", "verify of A");
    assert!(text(&out).contains("note: ignored referrer"), "{}", text(&out));
    Ok(())
}

#[test]
fn bearer_tokens_as_for_toolchain_pulls() -> TestResult {
    // Debian's registry behind a token server (the tag-schema path): push, fetch and
    // verify each get a token for the repository, the push one with push scope.
    let registry = Registry::start_with_token_server("tester", "s3cret-pw", "refresh-0123456789")?;
    let reg = Reg::Distribution(registry);
    let Reg::Distribution(registry) = &reg else { unreachable!() };
    let tokens = registry.token_server.as_ref().ok_or("no token server")?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let image = push_image(&reg, "private/app", "v1", "amd64")?;
    sign(d, &image.manifest)?;
    let pinned = format!("{}/private/app@{}", reg.addr(), image.manifest_digest);
    let creds = ["--username", "tester", "--password-stdin"];
    let with = |args: &[&str]| -> Result<Output, std::io::Error> {
        let mut all = args.to_vec();
        all.extend_from_slice(&creds);
        reprove(d, &all, Some("s3cret-pw\n"))
    };
    let out = reprove(d, &["attest", "fetch", &pinned], None)?;
    failed(&out, 3, "authentication to", "fetch without credentials");
    let out = with(&["attest", "push", "a.intoto.jsonl", "--image", &pinned])?;
    ok(&out, "attest push with a token")?;
    assert!(text(&out).contains("listed by the referrers tag schema"), "{}", text(&out));
    assert!(
        tokens.requests().iter().any(|l| l.starts_with("GET basic:tester") && l.contains(":private/app:pull,push")),
        "{:?}",
        tokens.requests()
    );
    let out = with(&["attest", "fetch", &pinned, "--json"])?;
    ok(&out, "attest fetch with a token")?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["referrersPath"], "tag-schema");
    assert_eq!(attestations(&doc).len(), 2, "{doc:#}");
    let out = with(&["attest", "verify", "--key", "r.pub", "--image", &pinned])?;
    ok(&out, "attest verify --image with a token")?;
    assert!(text(&out).contains("valid (2 of 2 attestations pass every check)"), "{}", text(&out));
    Ok(())
}

#[test]
fn verify_image_passes_when_one_attestation_passes_every_check() -> TestResult {
    for reg in Reg::both()? {
        let path = reg.path();
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        // A second signer whose builder the policy does not accept, and a third key nobody used.
        keygen(d, "k2")?;
        keygen(d, "k3")?;
        sign_as(d, "k2.key", &image.manifest, "elsewhere", "b")?;
        std::fs::write(
            d.join("policy.toml"),
            format!("version = 1\npredicate_types = [\"{PROVENANCE}\"]\n[provenance]\nbuilder_ids = [\"b\"]\n"),
        )?;
        let pinned = format!("{}/app@{}", reg.addr(), image.manifest_digest);
        let verify = |extra: &[&str]| -> Result<Output, std::io::Error> {
            let mut args = vec!["attest", "verify", "--image", &pinned];
            args.extend_from_slice(extra);
            reprove(d, &args, None)
        };
        // Nothing attached yet: nothing passes.
        failed(&verify(&["--key", "r.pub"])?, 1, "no attestations found", &format!("{path}: empty"));

        ok(&reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned], None)?, "push a")?;
        ok(
            &reprove(d, &["attest", "push", "b.sigstore.json", "--image", &pinned, "--format", "referrer"], None)?,
            "b",
        )?;

        let out = verify(&["--key", "r.pub"])?;
        ok(&out, "verify with r.pub")?;
        let t = text(&out);
        assert!(
            t.contains(&format!(
                "referrers listed by {}",
                if path == "api" { "the referrers API" } else { "the referrers tag schema" }
            )),
            "{t}"
        );
        assert!(t.contains("valid (2 of 3 attestations pass every check)"), "{path}: {t}");
        ok(&verify(&["--key", "k2.pub"])?, "verify with k2.pub")?;

        // k2 signed, but its builder is not the policy's: with the policy only r's pass.
        let out = verify(&["--key", "k2.pub", "--policy", "policy.toml", "--json"])?;
        assert_eq!(out.status.code(), Some(1), "{path}: {}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        schema_valid("attest-verify-image.schema.json", &doc)?;
        assert_eq!((doc["verdict"].as_str(), doc["referrersPath"].as_str()), (Some("invalid"), Some(path)));
        assert_eq!(doc["subject"], image.manifest_digest.to_string());
        let tried = attestations(&doc);
        assert_eq!(tried.len(), 3, "{doc:#}");
        let failed_checks = |a: &serde_json::Value| -> Vec<String> {
            a["checks"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter(|c| c["passed"] == false)
                        .map(|c| format!("{} {}", c["name"].as_str().unwrap_or(""), c["rule"].as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default()
        };
        for a in &tried {
            assert_eq!(a["verdict"], "invalid", "{a:#}");
            let failures = failed_checks(a);
            if a["digest"] == oci::Digest::of(std::fs::read(d.join("b.sigstore.json"))?.trim_ascii()).to_string() {
                assert_eq!(failures, ["policy provenance.builder_ids"], "{path}: {a:#}");
            } else {
                assert_eq!(failures, ["signatures "], "{path}: {a:#}");
            }
        }
        let out = verify(&["--key", "r.pub", "--policy", "policy.toml", "--json"])?;
        ok(&out, "verify with r.pub and the policy")?;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        schema_valid("attest-verify-image.schema.json", &doc)?;
        let b_digest = oci::Digest::of(std::fs::read(d.join("b.sigstore.json"))?.trim_ascii()).to_string();
        for a in attestations(&doc) {
            let expected = if a["digest"] == b_digest.as_str() { "invalid" } else { "valid" };
            assert_eq!(a["verdict"], expected, "{path}: {a:#}");
        }

        // Nobody signed with k3.
        let out = verify(&["--key", "k3.pub"])?;
        failed(&out, 1, "invalid (none of 3 attestations passes every check)", &format!("{path}: k3"));
        // Another subject than the image: every attestation fails its subject check.
        let out = verify(&["--key", "r.pub", "--digest", &oci::Digest::of(b"another image").to_string()])?;
        failed(&out, 1, "FAIL subject", &format!("{path}: another subject"));
    }
    Ok(())
}

#[test]
fn a_registry_failing_half_way_through_a_push_leaves_nothing_half_written() -> TestResult {
    for reg in Reg::both()? {
        let path = reg.path();
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        let digest = image.manifest_digest.clone();
        let pinned = format!("{}/app@{digest}", reg.addr());
        // The last write fails: on the tag schema the referrers index tag, with the API
        // the referrer manifest itself; the blobs before it went through.
        let last = match reg {
            Reg::Distribution(_) => format!("/manifests/sha256-{} ", digest.hex()),
            Reg::Api(_) => "/manifests/sha256:".to_string(),
        };
        let proxy = FaultProxy::start_for(reg.addr(), "PUT", &last, Fault::ServerErrors { count: 1000 })?;
        let via_proxy = format!("{}/app@{digest}", proxy.addr);
        let out = reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &via_proxy], None)?;
        failed(&out, 3, "500", &format!("{path}: a 500 half-way through the push"));
        assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) > 0, "{path}: the fault was not hit");
        assert!(!text(&out).contains("pushed"), "{path}: {}", text(&out));
        // Nothing lists a referrer, no legacy image: the image has no attestations.
        let doc = fetch_json(d, &pinned, &[])?;
        assert_eq!(doc["referrersPath"], path);
        assert!(attestations(&doc).is_empty(), "{path}: {doc:#}");
        let (head, _) = get(reg.addr(), &format!("/v2/app/manifests/sha256-{}.att", digest.hex()))?;
        assert!(head.starts_with("HTTP/1.1 404"), "{path}: the legacy image was written: {head}");
        // The same push again, the registry well: complete, once.
        drop(proxy);
        ok(&reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned], None)?, "push again")?;
        let doc = fetch_json(d, &pinned, &[])?;
        assert_eq!(attestations(&doc).len(), 2, "{path}: {doc:#}");
    }
    Ok(())
}

#[test]
fn a_manifest_over_the_limit_is_refused_unread() -> TestResult {
    // The API path: go-containerregistry's registry lists a referrer whose manifest is
    // 5 MiB, over the 4 MiB bound (Debian's registry refuses to store one that large).
    let reg = Reg::Api(ReferrersRegistry::start()?);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let image = push_image(&reg, "app", "v1", "amd64")?;
    let digest = image.manifest_digest.clone();
    let pinned = format!("{}/app@{digest}", reg.addr());
    let big = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": oci::Digest::of(b"{}").to_string()},
        "layers": [],
        "annotations": {"padding": "x".repeat(5 << 20)},
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": image.manifest.len(), "digest": digest.to_string()},
    });
    let big = serde_json::to_vec(&big)?;
    put_blob(reg.addr(), "app", b"{}")?;
    put_manifest(
        reg.addr(),
        "app",
        &oci::Digest::of(&big).to_string(),
        "application/vnd.oci.image.manifest.v1+json",
        &big,
    )?;
    let out = reprove(d, &["attest", "fetch", &pinned, "--output", "out"], None)?;
    failed(&out, 3, "is larger than 4194304 bytes", "api: a 5 MiB referrer manifest");
    assert!(!d.join("out").exists(), "fetch wrote output before failing");

    // The tag-schema path on Debian's registry: an index entry that says a referrer is
    // smaller than it is; the read stops at the size the entry gives.
    let reg = Reg::Distribution(Registry::start()?);
    let image = push_image(&reg, "app", "v1", "amd64")?;
    let digest = image.manifest_digest.clone();
    sign(d, &image.manifest)?;
    let pinned = format!("{}/app@{digest}", reg.addr());
    ok(&reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--format", "referrer"], None)?, "push")?;
    let tag = format!("sha256-{}", digest.hex());
    let (_, index) = get(reg.addr(), &format!("/v2/app/manifests/{tag}"))?;
    let mut index: serde_json::Value = serde_json::from_slice(&index)?;
    index["manifests"][0]["size"] = 100.into();
    put_manifest(reg.addr(), "app", &tag, "application/vnd.oci.image.index.v1+json", &serde_json::to_vec(&index)?)?;
    let out = reprove(d, &["attest", "fetch", &pinned, "--output", "out"], None)?;
    failed(&out, 3, "is larger than 100 bytes", "tag-schema: a referrer larger than its index entry says");
    assert!(!d.join("out").exists(), "fetch wrote output before failing");
    Ok(())
}

// --- interop with cosign ---------------------------------------------------------------

/// A trusted root with no authorities, logs or timestamping services: all a keyed bundle
/// without transparency-log entries needs, and it keeps cosign from fetching one.
const EMPTY_TRUSTED_ROOT: &str = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#;

fn cosign_run(cosign: &Path, dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    crate::support::run_signing_tool(cosign, dir, PASSWORD, args)
}

/// reprove's `attest verify --image` in JSON, checked against its schema.
fn verify_image_json(
    dir: &Path,
    image: &str,
    key: &str,
) -> Result<(Option<i32>, serde_json::Value), Box<dyn std::error::Error>> {
    let out = reprove(dir, &["attest", "verify", "--key", key, "--image", image, "--json"], None)?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    schema_valid("attest-verify-image.schema.json", &doc)?;
    Ok((out.status.code(), doc))
}

#[test]
fn cosign_v2_and_reprove_read_each_others_legacy_attestations() -> TestResult {
    let cosign = crate::support::signing::cosign()?;
    for reg in Reg::both()? {
        let path = reg.path();
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        keygen(d, "k2")?;
        let pinned = format!("{}/app@{}", reg.addr(), image.manifest_digest);
        let cosign_verify = |key: &str| {
            cosign_run(
                &cosign,
                d,
                &["verify-attestation", "--key", key, "--insecure-ignore-tlog=true", "--type", PROVENANCE, &pinned],
            )
        };
        // Nothing there yet: cosign finds nothing (the test can tell).
        assert!(!cosign_verify("r.pub")?.status.success(), "{path}: cosign verified an image without attestations");
        ok(
            &reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--format", "legacy"], None)?,
            "push",
        )?;
        let out = cosign_verify("r.pub")?;
        ok(&out, &format!("{path}: cosign v2 verify-attestation of reprove's legacy .att"))?;
        assert!(String::from_utf8_lossy(&out.stdout).contains("payloadType"), "{}", text(&out));
        assert!(!cosign_verify("k2.pub")?.status.success(), "{path}: cosign accepted the wrong key");

        // cosign v2 attests with its own key: reprove finds it in the legacy image and verifies it.
        ok(&cosign_run(&cosign, d, &["generate-key-pair", "--output-key-prefix", "c"])?, "cosign generate-key-pair")?;
        std::fs::write(d.join("pred.json"), predicate("b"))?;
        let args = [
            "attest",
            "--key",
            "c.key",
            "--type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--tlog-upload=false",
            "--yes",
            &pinned,
        ];
        ok(&cosign_run(&cosign, d, &args)?, "cosign v2 attest")?;
        let doc = fetch_json(d, &pinned, &[])?;
        assert_eq!(doc["referrersPath"], path);
        let legacy: Vec<_> = attestations(&doc).into_iter().filter(|a| a["source"] == "legacy").collect();
        assert_eq!(legacy.len(), 2, "{path}: reprove's and cosign's envelopes in one .att image: {doc:#}");
        let (code, doc) = verify_image_json(d, &pinned, "c.pub")?;
        assert_eq!(code, Some(0), "{path}: {doc:#}");
        let verdicts: Vec<String> =
            attestations(&doc).iter().filter_map(|a| a["verdict"].as_str().map(String::from)).collect();
        assert_eq!(verdicts, ["invalid", "valid"], "{path}: reprove's (r) fails with c.pub, cosign's passes: {doc:#}");
        // And our legacy layer still verifies with cosign after cosign appended to the image.
        ok(&cosign_verify("r.pub")?, "cosign verify-attestation after cosign's own attest")?;
        // reprove appends to the image cosign rewrote; cosign still reads its own layer.
        sign_as(d, "r.key", &image.manifest, "b", "later")?;
        let out =
            reprove(d, &["attest", "push", "later.intoto.jsonl", "--image", &pinned, "--format", "legacy"], None)?;
        ok(&out, "push after cosign")?;
        assert!(text(&out).contains("(1 added, 0 already there)"), "{}", text(&out));
        ok(&cosign_verify("c.pub")?, "cosign verify-attestation of its own after reprove appended")?;
        let doc = fetch_json(d, &pinned, &[])?;
        assert_eq!(attestations(&doc).iter().filter(|a| a["source"] == "legacy").count(), 3, "{path}: {doc:#}");
    }
    Ok(())
}

#[test]
fn cosign_v3_and_reprove_read_each_others_bundle_referrers() -> TestResult {
    let cosign = crate::support::signing::cosign_v3()?;
    for reg in Reg::both()? {
        let path = reg.path();
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::write(d.join("trusted_root.json"), EMPTY_TRUSTED_ROOT)?;
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        keygen(d, "k2")?;
        let pinned = format!("{}/app@{}", reg.addr(), image.manifest_digest);
        let cosign_verify = |key: &str| {
            cosign_run(
                &cosign,
                d,
                &[
                    "verify-attestation",
                    "--new-bundle-format",
                    "--key",
                    key,
                    "--trusted-root",
                    "trusted_root.json",
                    "--insecure-ignore-tlog=true",
                    "--type",
                    PROVENANCE,
                    &pinned,
                ],
            )
        };
        assert!(!cosign_verify("r.pub")?.status.success(), "{path}: cosign verified an image without attestations");
        // The envelope goes up as a bundle reprove makes around it.
        ok(
            &reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--format", "referrer"], None)?,
            "push",
        )?;
        ok(&cosign_verify("r.pub")?, &format!("{path}: cosign v3 verify-attestation of reprove's referrer"))?;
        assert!(!cosign_verify("k2.pub")?.status.success(), "{path}: cosign accepted the wrong key");

        // cosign v3 attests with its own key as a bundle referrer: reprove lists it by the same path.
        ok(&cosign_run(&cosign, d, &["generate-key-pair", "--output-key-prefix", "c"])?, "cosign generate-key-pair")?;
        std::fs::write(d.join("pred.json"), predicate("b"))?;
        let args = [
            "attest",
            "--key",
            "c.key",
            "--type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--new-bundle-format",
            "--use-signing-config=false",
            "--tlog-upload=false",
            "--yes",
            &pinned,
        ];
        ok(&cosign_run(&cosign, d, &args)?, "cosign v3 attest")?;
        let doc = fetch_json(d, &pinned, &[])?;
        assert_eq!(doc["referrersPath"], path);
        let referrers: Vec<_> = attestations(&doc).into_iter().filter(|a| a["source"] == "referrer").collect();
        assert_eq!(referrers.len(), 2, "{path}: reprove's and cosign's referrers: {doc:#}");
        assert!(referrers.iter().all(|r| r["format"] == "sigstore-bundle" && r["path"] == path), "{doc:#}");
        let (code, doc) = verify_image_json(d, &pinned, "c.pub")?;
        assert_eq!(code, Some(0), "{path}: {doc:#}");
        let valid = attestations(&doc).iter().filter(|a| a["verdict"] == "valid").count();
        assert_eq!(valid, 1, "{path}: cosign's passes with c.pub: {doc:#}");
        // Both tools still read reprove's referrer after cosign added its own.
        ok(&cosign_verify("r.pub")?, "cosign verify-attestation after cosign's own attest")?;
        let (code, doc) = verify_image_json(d, &pinned, "r.pub")?;
        assert_eq!(code, Some(0), "{path}: {doc:#}");
        // reprove adds a bundle (with its key hint) to the referrers cosign listed last;
        // cosign still finds its own, reprove lists all three by the same path.
        ok(
            &reprove(d, &["attest", "push", "a.sigstore.json", "--image", &pinned, "--format", "referrer"], None)?,
            "push after cosign",
        )?;
        ok(&cosign_verify("c.pub")?, "cosign verify-attestation of its own after reprove pushed")?;
        let doc = fetch_json(d, &pinned, &[])?;
        let referrers: Vec<_> = attestations(&doc).into_iter().filter(|a| a["path"] == path).collect();
        assert_eq!(referrers.len(), 3, "{path}: {doc:#}");
    }
    Ok(())
}

/// An image on go-containerregistry's registry pulls: its first blob request carries no
/// `Range` header, which that registry refuses in the open-ended form `bytes=0-`
/// ("We don't understand your Range"), so `verify --reference oci://…` can read from it.
#[test]
fn an_image_on_the_referrers_registry_pulls() -> TestResult {
    let reg = Reg::Api(ReferrersRegistry::start()?);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let image = push_image(&reg, "app", "v1", "amd64")?;
    let pinned = format!("{}/app@{}", reg.addr(), image.manifest_digest);
    let cache = d.join("cache");
    let out = reprove(d, &["toolchain", "pull", "--json", "--cache-dir", &cache.to_string_lossy(), &pinned], None)?;
    ok(&out, "toolchain pull from the referrers registry")?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["digest"], image.manifest_digest.to_string(), "{doc:#}");
    let rootfs = doc["rootfs"].as_str().ok_or("no rootfs")?;
    assert_eq!(std::fs::read(Path::new(rootfs).join("hello.txt"))?, b"amd64");
    if let Reg::Api(r) = &reg {
        assert!(r.log().contains("blobs/"), "the pull fetched no blob:\n{}", r.log());
    }
    Ok(())
}

/// A push by digest to go-containerregistry's registry, which answers 201 Created without
/// a `Location`, succeeds and the image pulls by that digest.
#[test]
fn a_push_by_digest_without_a_location_answer_succeeds() -> TestResult {
    let reg = ReferrersRegistry::start()?;
    let tar = crate::support::registry::TarBuilder::new().file("hello.txt", 0o644, b"by digest").finish();
    let layer = oci::build::Layer::from_tar(&tar, oci::build::LayerCompression::Gzip, ManifestFormat::Oci)?;
    let image = Image::assemble(
        serde_json::json!({"architecture": "amd64", "os": "linux", "config": {}}),
        vec![layer],
        ManifestFormat::Oci,
    )?;
    let untagged: ImageRef = format!("{}/bydigest", reg.addr).parse()?;
    image.push_blocking(&io(), &untagged, &reg.options())?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let pinned = format!("{}/bydigest@{}", reg.addr, image.manifest_digest);
    let out =
        reprove(d, &["toolchain", "pull", "--json", "--cache-dir", &d.join("cache").to_string_lossy(), &pinned], None)?;
    ok(&out, "toolchain pull of the image pushed by digest")?;
    assert!(reg.log().contains(&format!("manifests/{}", image.manifest_digest)), "{}", reg.log());
    Ok(())
}

/// The files of the attestation cache under `home` (the tests' `HOME`), by name.
fn cached_files(home: &Path) -> Result<Vec<std::path::PathBuf>, std::io::Error> {
    let dir = home.join(".cache/reprove/referrers/sha256");
    let mut files: Vec<_> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    Ok(files)
}

#[test]
fn a_second_fetch_reads_content_from_the_cache_and_asks_what_can_change() -> TestResult {
    for reg in Reg::both()? {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let path = reg.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        let digest = &image.manifest_digest;
        let pinned = format!("{}/app@{digest}", reg.addr());
        ok(&reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned], None)?, "push")?;
        let first = fetch_json(d, &pinned, &[])?;
        assert_eq!((first["referrersPath"].as_str(), attestations(&first).len()), (Some(path), 2), "{first:#}");
        // The image manifest, the referrer's manifest, the bundle and the envelope; each file is its digest.
        let files = cached_files(d)?;
        assert_eq!(files.len(), 4, "{path}: {files:?}");
        for file in &files {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            assert_eq!(oci::Digest::of(&std::fs::read(file)?).hex(), name);
        }

        // Behind a proxy that spoils every blob: the blobs come from the cache, none is asked.
        let proxy = FaultProxy::start(reg.addr(), "/blobs/", Fault::WrongBlob)?;
        let via_proxy = format!("{}/app@{digest}", proxy.addr);
        let cached = fetch_json(d, &via_proxy, &[])?;
        assert_eq!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed), 0, "{path}: a blob was asked");
        // As a set: go-containerregistry's registry lists referrers in no fixed order.
        let digests = |doc: &serde_json::Value| {
            attestations(doc).iter().map(|a| a["digest"].to_string()).collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(digests(&cached), digests(&first), "{path}: {cached:#}");
        ok(
            &reprove(d, &["attest", "verify", "--key", "r.pub", "--image", &via_proxy], None)?,
            "verify --image from the cache",
        )?;
        // Without the cache, the spoiled blobs are asked and refused.
        let out = reprove(d, &["attest", "fetch", &via_proxy, "--no-cache"], None)?;
        failed(&out, 3, "does not match its descriptor", &format!("{path}: --no-cache"));
        assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) > 0);

        // What can change is asked every time: a second attestation pushed after the
        // first fetch is found (its referrer in the list, its envelope in the legacy tag).
        sign_as(d, "r.key", &image.manifest, "b2", "b")?;
        ok(&reprove(d, &["attest", "push", "b.intoto.jsonl", "--image", &pinned], None)?, "push b")?;
        let both = fetch_json(d, &pinned, &[])?;
        assert_eq!(attestations(&both).len(), 4, "{path}: {both:#}");

        // A cache file changed on disk is not used: fetched again and rewritten.
        let files = cached_files(d)?;
        for file in &files {
            std::fs::write(file, b"{\"schemaVersion\":2}")?;
        }
        let again = fetch_json(d, &pinned, &[])?;
        assert_eq!(digests(&again), digests(&both), "{path}: {again:#}");
        for file in cached_files(d)? {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            assert_eq!(oci::Digest::of(&std::fs::read(&file)?).hex(), name, "{path}: {} not rewritten", file.display());
        }

        // --cache-dir puts it elsewhere; --no-cache writes nothing.
        let elsewhere = d.join("elsewhere");
        fetch_json(d, &pinned, &["--cache-dir", &elsewhere.to_string_lossy()])?;
        // The image manifest, and per attestation a referrer manifest, a bundle and an envelope.
        assert_eq!(std::fs::read_dir(elsewhere.join("referrers/sha256"))?.count(), 7, "{path}");
        let nothing = d.join("nothing");
        fetch_json(d, &pinned, &["--cache-dir", &nothing.to_string_lossy(), "--no-cache"])?;
        assert!(!nothing.exists(), "{path}: --no-cache wrote {}", nothing.display());

        // `toolchain gc` keeps what was fetched within the period, and removes it with --all.
        let cache = elsewhere.to_string_lossy();
        // With --all: the cached image manifest and attestations, and on the API registry
        // the file that says it serves the referrers API.
        let api_marker = u64::from(path == "api");
        for (all, removed, left) in [(false, 0, 7), (true, 7 + api_marker, 0)] {
            let mut args = vec!["toolchain", "gc", "--json", "--cache-dir", &cache];
            if all {
                args.push("--all");
            }
            let out = reprove(d, &args, None)?;
            ok(&out, "toolchain gc")?;
            let gc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            schema_valid("toolchain-gc.schema.json", &gc)?;
            assert_eq!(gc["removed_cached_referrers"].as_u64(), Some(removed), "{path}: {gc:#}");
            assert_eq!(std::fs::read_dir(elsewhere.join("referrers/sha256"))?.count(), left, "{path}");
        }
    }
    Ok(())
}

#[test]
fn the_referrers_api_and_the_tag_are_asked_at_once() -> TestResult {
    let wait = std::time::Duration::from_secs(2);
    for reg in Reg::both()? {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let path = reg.path();
        let image = push_image(&reg, "app", "v1", "amd64")?;
        sign(d, &image.manifest)?;
        let digest = &image.manifest_digest;
        let pinned = format!("{}/app@{digest}", reg.addr());
        ok(
            &reprove(d, &["attest", "push", "a.intoto.jsonl", "--image", &pinned, "--format", "referrer"], None)?,
            "push",
        )?;
        // The referrers tag's request line: `GET /v2/app/manifests/sha256-<hex> HTTP/1.1`
        // (not the `.att` tag, not the image by digest).
        let tag_request = format!("/manifests/sha256-{} ", digest.hex());
        // Each of the two requests answered after `wait`: asked one after the other, a
        // fetch takes twice as long.
        let slow_tag = FaultProxy::start(reg.addr(), &tag_request, Fault::Delay(wait))?;
        let slow_both = FaultProxy::start(&slow_tag.addr, "/referrers/", Fault::Delay(wait))?;
        let image_there = format!("{}/app@{digest}", slow_both.addr);
        let started = std::time::Instant::now();
        let doc = fetch_json(d, &image_there, &["--no-cache"])?;
        let took = started.elapsed();
        assert_eq!((doc["referrersPath"].as_str(), attestations(&doc).len()), (Some(path), 1), "{doc:#}");
        assert_eq!(slow_tag.hits.load(std::sync::atomic::Ordering::Relaxed), 1, "{path}: the tag was not asked");
        assert_eq!(slow_both.hits.load(std::sync::atomic::Ordering::Relaxed), 1, "{path}: the API was not asked");
        assert!(took >= wait && took < wait * 7 / 4, "{path}: the fetch took {took:?}, the two requests {wait:?} each");

        // A registry that answered the API is remembered (in the cache): asked the API only.
        // One without it is asked the API every time, so that it finds an API it gained.
        let tag = FaultProxy::start(reg.addr(), &tag_request, Fault::None)?;
        let api = FaultProxy::start(&tag.addr, "/referrers/", Fault::None)?;
        let image_there = format!("{}/app@{digest}", api.addr);
        for _ in 0..2 {
            let doc = fetch_json(d, &image_there, &[])?;
            assert_eq!(doc["referrersPath"], path, "{doc:#}");
        }
        let (tag_hits, api_hits) =
            (tag.hits.load(std::sync::atomic::Ordering::Relaxed), api.hits.load(std::sync::atomic::Ordering::Relaxed));
        match reg {
            Reg::Api(_) => assert_eq!((api_hits, tag_hits), (2, 1), "api: the tag asked again"),
            Reg::Distribution(_) => assert_eq!((api_hits, tag_hits), (2, 2), "tag-schema"),
        }
    }
    Ok(())
}
