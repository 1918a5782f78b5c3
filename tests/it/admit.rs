//! `reprove admit` against real registries on 127.0.0.1 (Debian's `docker-registry`,
//! go-containerregistry's with the referrers API): images pushed by the tests, VSAs
//! made by attest's generators (the audit's image VSA) or written as `verify` lays out a
//! per-binary one, signed with keys from `reprove keygen` and attached with
//! `reprove attest push`. Each denial reason is shown with the VSA that causes it, and
//! the `--json` document is checked against `schemas/admit.schema.json`.

use std::path::Path;

use attest::generate::ImageDigestKind;
use attest::image_vsa::{AuditedBinary, AuditedImage, ImageVsaInput};
use attest::statement::{ResourceDescriptor, Statement, PAYLOAD_TYPE_IN_TOTO};
use attest::vsa::PREDICATE_TYPE_VSA_V1;
use serde_json::{json, Value};

use crate::attest_registry::{keygen, push_image, reprove, Reg, PASSWORD};
use crate::support::registry::{ReferrersRegistry, Registry};
use crate::support::schema::assert_valid;
use crate::support::signing::{ok, text, TestResult};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub(crate) fn time_ago(seconds: i64) -> String {
    stdx::time::format_rfc3339(stdx::time::now_unix() - seconds)
}

/// The audit's image VSA about `name@digest` (a manifest), PASSED when every binary's
/// outcome is `reproduced`.
pub(crate) fn image_vsa(name: &str, digest: &str, outcomes: &[&str], verified: &str) -> Result<Statement> {
    let binaries = outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| AuditedBinary {
            path: format!("/usr/bin/app{i}"),
            platform: "linux/amd64".to_owned(),
            sha256: "ab".repeat(32),
            outcome: (*outcome).to_owned(),
            reason: None,
        })
        .collect();
    let input = ImageVsaInput {
        images: vec![AuditedImage {
            name: name.to_owned(),
            digest: digest.to_owned(),
            kind: ImageDigestKind::Manifest,
            platform: Some("linux/amd64".to_owned()),
        }],
        resource_uri: format!("oci://{name}@{digest}"),
        binaries,
        input_attestations: Vec::new(),
        verifier_id: "https://reprove.dev/verifier".to_owned(),
        verifier_version: Default::default(),
        time_verified: verified.to_owned(),
        policy_uri: "https://reprove.dev/policy".to_owned(),
    };
    Ok(attest::image_vsa::image_vsa_statement(&input)?)
}

/// A per-binary PASSED VSA as `verify --attest` lays it out: the binary, then the image
/// subject annotated with the binary's path.
fn path_vsa(name: &str, digest: &str, path: &str) -> Statement {
    let hex = digest.trim_start_matches("sha256:");
    let mut image = ResourceDescriptor::sha256(name, hex);
    image.annotations.insert("reproveImageDigest".into(), "manifest".into());
    image.annotations.insert("reprovePath".into(), path.into());
    image.annotations.insert("reprovePlatform".into(), "linux/amd64".into());
    let predicate = json!({
        "verifier": {"id": "https://reprove.dev/verifier"},
        "timeVerified": time_ago(3600),
        "resourceUri": format!("oci://{name}@{digest}#{path}"),
        "policy": {"uri": "https://reprove.dev/policy"},
        "verificationResult": "PASSED",
        "verifiedLevels": ["REPROVE_REPRODUCED"],
    });
    Statement::new(vec![ResourceDescriptor::sha256("app", "cd".repeat(32)), image], PREDICATE_TYPE_VSA_V1, predicate)
}

/// Signs `statement` with the key `KEY.key` (from `reprove keygen`) and attaches it to
/// `image` (`name@digest`) with `reprove attest push`.
pub(crate) fn sign_and_push(dir: &Path, key: &str, statement: &Statement, image: &str, file: &str) -> TestResult {
    let pem = std::fs::read_to_string(dir.join(format!("{key}.key")))?;
    let signer = attest::keys::read_encrypted_private_key(&pem, PASSWORD.as_bytes())?;
    let payload = serde_json::to_vec(statement)?;
    let envelope = attest::dsse::Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &payload, &[&signer])?;
    std::fs::write(dir.join(file), serde_json::to_vec(&envelope)?)?;
    ok(&reprove(dir, &["attest", "push", file, "--image", image], None)?, "reprove attest push")
}

fn pod(name: &str, namespace: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  containers:\n    - name: c\n      image: {image}\n"
    )
}

/// Runs `reprove admit --json ARGS`, checks the document against its schema, returns
/// the exit code and the document.
fn admit_json(dir: &Path, args: &[&str]) -> Result<(i32, Value)> {
    let mut all = vec!["admit", "--json"];
    all.extend_from_slice(args);
    let out = reprove(dir, &all, None)?;
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    assert_valid("admit.schema.json", &doc);
    Ok((out.status.code().unwrap_or(-1), doc))
}

/// The decision about the workload named `name`.
fn decision<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no image of {name} in {doc:#}"))
}

fn policy(dir: &Path, body: &str) -> TestResult {
    let text = format!(
        "version = 1\n{body}\n[[verifiers]]\nname = \"a\"\nkey = \"a.pub\"\n[[verifiers]]\nname = \"b\"\nkey = \"b.pub\"\n\
         [default]\nmax_age = \"30d\"\n\
         [[rules]]\nnamespaces = [\"strict\"]\nthreshold = 2\n\
         [[rules]]\nnamespaces = [\"paths\"]\npaths = [\"/usr/bin/app\"]\n\
         [[exemptions]]\nimage = \"*/legacy\"\nexpires = \"{}\"\nreason = \"migrating to app\"\n\
         [[exemptions]]\nimage = \"*/legacy-old\"\nexpires = \"2020-01-01\"\nreason = \"was migrating\"\n",
        time_ago(-86_400)
    );
    std::fs::write(dir.join("policy.toml"), text)?;
    Ok(())
}

#[test]
fn every_reason_from_the_vsas_in_the_registry() -> TestResult {
    let regs = Reg::both()?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    for key in ["a", "b", "c"] {
        keygen(d, key)?;
    }
    policy(d, "expiry_warning = \"31d\"")?;
    for reg in &regs {
        let addr = reg.addr();
        let manifests = d.join(format!("manifests-{}", addr.replace([':', '.'], "-")));
        std::fs::create_dir_all(manifests.join("nested"))?;
        let push = |name: &str| -> Result<(String, String)> {
            let image = push_image(reg, name, "v1", "amd64")?;
            let full = format!("{addr}/{name}");
            Ok((full.clone(), format!("{full}@{}", image.manifest_digest)))
        };
        let (ok_name, ok_ref) = push("ok")?;
        let digest = |r: &str| r.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
        sign_and_push(
            d,
            "a",
            &image_vsa(&ok_name, &digest(&ok_ref), &["reproduced"], &time_ago(60))?,
            &ok_ref,
            "ok.jsonl",
        )?;
        let (_, missing_ref) = push("missing")?;
        let (failed_name, failed_ref) = push("failed")?;
        let failed = image_vsa(&failed_name, &digest(&failed_ref), &["reproduced", "not-reproduced"], &time_ago(60))?;
        sign_and_push(d, "a", &failed, &failed_ref, "failed.jsonl")?;
        let (old_name, old_ref) = push("old")?;
        let old = image_vsa(&old_name, &digest(&old_ref), &["reproduced"], &time_ago(60 * 86_400))?;
        sign_and_push(d, "a", &old, &old_ref, "old.jsonl")?;
        let (untrusted_name, untrusted_ref) = push("untrusted")?;
        let untrusted = image_vsa(&untrusted_name, &digest(&untrusted_ref), &["reproduced"], &time_ago(60))?;
        sign_and_push(d, "c", &untrusted, &untrusted_ref, "untrusted.jsonl")?;
        let (paths_name, paths_ref) = push("paths")?;
        sign_and_push(d, "a", &path_vsa(&paths_name, &digest(&paths_ref), "/usr/bin/app"), &paths_ref, "paths.jsonl")?;
        let (both_name, both_ref) = push("both")?;
        let both = image_vsa(&both_name, &digest(&both_ref), &["reproduced"], &time_ago(60))?;
        sign_and_push(d, "a", &both, &both_ref, "both-a.jsonl")?;
        sign_and_push(d, "b", &both, &both_ref, "both-b.jsonl")?;
        let (_, legacy_ref) = push("legacy")?;
        let (_, legacy_old_ref) = push("legacy-old")?;

        let pods = [
            ("ok", "default", ok_ref.clone()),
            ("missing", "default", missing_ref.clone()),
            ("failed", "default", failed_ref.clone()),
            ("old", "default", old_ref.clone()),
            ("untrusted", "default", untrusted_ref.clone()),
            ("tag", "default", format!("{ok_name}:v1")),
            ("below", "strict", ok_ref.clone()),
            ("strict-ok", "strict", both_ref.clone()),
            ("paths-ok", "paths", paths_ref.clone()),
            ("paths-image", "default", paths_ref.clone()),
            ("legacy", "default", legacy_ref.clone()),
            ("legacy-old", "default", legacy_old_ref.clone()),
        ];
        for (i, (name, namespace, image)) in pods.iter().enumerate() {
            let sub = if i % 2 == 0 { "" } else { "nested/" };
            std::fs::write(manifests.join(format!("{sub}{name}.yaml")), pod(name, namespace, image))?;
        }
        std::fs::write(manifests.join("notes.txt"), "not a manifest")?;
        let (code, doc) = admit_json(d, &["--policy", "policy.toml", manifests.to_str().ok_or("path")?])?;
        assert_eq!(code, 1, "{doc:#}");
        assert_eq!(doc["allowed"], false);
        assert_eq!(doc["summary"]["images"], pods.len(), "{doc:#}");
        let want = [
            ("ok", true, "passed"),
            ("missing", false, "missing"),
            ("failed", false, "failed"),
            ("old", false, "expired"),
            ("untrusted", false, "untrusted"),
            ("tag", false, "tag-only"),
            ("below", false, "below-threshold"),
            ("strict-ok", true, "passed"),
            ("paths-ok", true, "passed"),
            ("paths-image", false, "not-covered"),
            ("legacy", true, "exempt"),
            ("legacy-old", false, "missing"),
        ];
        for (name, allowed, reason) in want {
            let got = decision(&doc, name);
            assert_eq!(
                (got["allowed"].as_bool(), got["reason"].as_str()),
                (Some(allowed), Some(reason)),
                "{addr} {name}: {got:#}"
            );
        }
        // What to do, in the CLI's words; the VSAs and why each was not counted.
        assert!(decision(&doc, "missing")["todo"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("reprove audit {missing_ref} --attest --push"))));
        let tag = decision(&doc, "tag");
        assert_eq!(tag["digest"].as_str(), Some(digest(&ok_ref).as_str()), "the digest to pin: {tag:#}");
        assert!(
            tag["todo"].as_str().is_some_and(|t| t.contains(&format!("{ok_name}:v1@{}", digest(&ok_ref)))),
            "{tag:#}"
        );
        assert_eq!(decision(&doc, "untrusted")["vsas"][0]["rejected"], "untrusted");
        assert_eq!(decision(&doc, "failed")["vsas"][0]["rejected"], "failed");
        assert_eq!(decision(&doc, "old")["vsas"][0]["rejected"], "expired");
        assert_eq!(decision(&doc, "paths-image")["vsas"][0]["rejected"], "not-covered");
        let passed = decision(&doc, "ok");
        assert_eq!(passed["vsas"][0]["verifiers"], json!(["a"]));
        assert!(passed["expires"].as_str().is_some(), "the earliest expiry, for a cache: {passed:#}");
        assert!(
            passed["warnings"][0].as_str().is_some_and(|w| w.contains("expires at") && w.contains("of a verified at")),
            "a VSA expiring within expiry_warning: {passed:#}"
        );
        assert_eq!(passed["warnings"].as_array().map(Vec::len), Some(1), "one statement, two layouts: {passed:#}");
        let below = decision(&doc, "below");
        assert!(below["message"].as_str().is_some_and(|m| m.contains("threshold 2")), "{below:#}");
        assert_eq!(
            decision(&doc, "strict-ok")["vsas"].as_array().map(Vec::len),
            Some(2 * 2),
            "referrer and legacy, twice"
        );
        let expired_exemption = decision(&doc, "legacy-old");
        assert!(
            expired_exemption["warnings"][0]
                .as_str()
                .is_some_and(|w| w.contains("exemptions[1] (was migrating) expired")),
            "{expired_exemption:#}"
        );
        assert_eq!(decision(&doc, "legacy")["rule"], "exemptions[0]");

        // The text table says the same, and what to do.
        let out = reprove(d, &["admit", "--policy", "policy.toml", manifests.to_str().ok_or("path")?], None)?;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("12 images in 12 workloads: 4 allowed, 8 denied"), "{t}");
        assert!(t.contains("denied   tag-only"), "{t}");
        // Only the allowed ones: exit 0.
        let out =
            reprove(d, &["admit", "--policy", "policy.toml", &manifests.join("ok.yaml").to_string_lossy()], None)?;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = reprove(
            d,
            &["admit", "--markdown", "--policy", "policy.toml", &manifests.join("ok.yaml").to_string_lossy()],
            None,
        )?;
        assert!(text(&out).contains("| allowed | passed |"), "{}", text(&out));
    }
    Ok(())
}

#[test]
fn warn_mode_and_a_registry_that_is_down() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    keygen(d, "a")?;
    keygen(d, "b")?;
    let reg = Reg::Distribution(Registry::start()?);
    let image = push_image(&reg, "app", "v1", "amd64")?;
    let image_ref = format!("{}/app@{}", reg.addr(), image.manifest_digest);
    std::fs::write(d.join("pod.yaml"), pod("app", "default", &image_ref))?;

    // Warn mode: the missing VSA is allowed, with a warning.
    policy(d, "mode = \"warn\"")?;
    let (code, doc) = admit_json(d, &["--policy", "policy.toml", "pod.yaml"])?;
    let got = decision(&doc, "app");
    assert_eq!((code, got["allowed"].as_bool(), got["reason"].as_str()), (0, Some(true), Some("missing")), "{doc:#}");
    assert!(got["warnings"][0].as_str().is_some_and(|w| w.starts_with("would be denied (missing)")), "{got:#}");

    // The registry goes down: denied (fail closed) by default...
    drop(reg);
    policy(d, "")?;
    let timeouts = ["--registry-timeout", "20s", "--registry-connect-timeout", "2s"];
    let mut args = vec!["--policy", "policy.toml", "pod.yaml"];
    args.extend_from_slice(&timeouts);
    let (code, doc) = admit_json(d, &args)?;
    let got = decision(&doc, "app");
    assert_eq!(
        (code, got["allowed"].as_bool(), got["reason"].as_str()),
        (1, Some(false), Some("registry-error")),
        "{doc:#}"
    );
    assert!(got["expires"].is_null());
    // ... and allowed with a warning when the policy says so.
    policy(d, "on_error = \"allow-with-warning\"")?;
    let (code, doc) = admit_json(d, &args)?;
    let got = decision(&doc, "app");
    assert_eq!(
        (code, got["allowed"].as_bool(), got["reason"].as_str()),
        (0, Some(true), Some("registry-error")),
        "{doc:#}"
    );
    assert!(got["warnings"][0].as_str().is_some_and(|w| w.contains("the registry failed")), "{got:#}");
    Ok(())
}

const KINDS: &str = r#"# every workload kind; comments, quoting and order stay as they are
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly   # a comment
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - name: init
              image: "IMG:v1"
          containers:
            - {name: job, image: 'IMG:v1'}
---
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - image: IMG:v1
          name: web
---
kind: Pod
metadata: {name: debug}
spec:
  containers: [{name: main, image: IMG@DIGEST}]
  ephemeralContainers:
    - name: dbg
      image: IMG:v1
---
kind: StatefulSet
metadata: {name: db}
spec: {template: {spec: {containers: [{name: db, image: IMG:v1}]}}}
---
kind: DaemonSet
metadata: {name: agent}
spec: {template: {spec: {containers: [{name: a, image: IMG:v1}]}}}
---
kind: ReplicaSet
metadata: {name: rs}
spec: {template: {spec: {containers: [{name: r, image: IMG:v1}]}}}
---
kind: Job
metadata: {name: once}
spec: {template: {spec: {containers: [{name: o, image: IMG:v1}]}}}
---
kind: Service
metadata: {name: svc}
---
kind: ConfigMap
metadata: {name: cm}
data: {image: "IMG:v1"}
"#;

#[test]
fn pin_rewrites_only_the_image_scalars_and_every_kind_is_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    keygen(d, "a")?;
    keygen(d, "b")?;
    policy(d, "")?;
    let reg = Reg::Api(ReferrersRegistry::start()?);
    // The registry's log has a line per request: how many fetches a run made.
    let requests = |needle: &str| match &reg {
        Reg::Api(r) => r.log().matches(needle).count(),
        Reg::Distribution(_) => 0,
    };
    let image = push_image(&reg, "app", "v1", "amd64")?;
    let name = format!("{}/app", reg.addr());
    let pinned_ref = format!("{name}@{}", image.manifest_digest);
    sign_and_push(
        d,
        "a",
        &image_vsa(&name, &image.manifest_digest.to_string(), &["reproduced"], &time_ago(60))?,
        &pinned_ref,
        "v.jsonl",
    )?;
    let before = KINDS.replace("IMG", &name).replace("DIGEST", &image.manifest_digest.to_string());
    std::fs::write(d.join("all.yaml"), &before)?;

    // From standard input: every kind, init and ephemeral containers, the others counted.
    let referrers = format!("referrers/{}", image.manifest_digest);
    let tag = "/manifests/v1\n";
    let (referrers_before, tag_before) = (requests(&referrers), requests(tag));
    let out = reprove(d, &["admit", "--json", "--policy", "policy.toml", "-"], Some(&before))?;
    // One fetch of the one digest, one resolution of the one tag of the 8 tag-only images.
    assert_eq!(requests(&referrers) - referrers_before, 1, "{}", text(&out));
    let log = match &reg {
        Reg::Api(r) => r.log(),
        Reg::Distribution(_) => String::new(),
    };
    assert_eq!(requests(tag) - tag_before, 1, "{}\n{log}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_valid("admit.schema.json", &doc);
    let seen: Vec<(String, String)> = doc["images"]
        .as_array()
        .ok_or("images")?
        .iter()
        .map(|i| {
            (
                format!("{}/{}", i["kind"].as_str().unwrap_or(""), i["name"].as_str().unwrap_or("")),
                i["list"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("CronJob/nightly", "initContainers"),
        ("CronJob/nightly", "containers"),
        ("Deployment/web", "containers"),
        ("Pod/debug", "containers"),
        ("Pod/debug", "ephemeralContainers"),
        ("StatefulSet/db", "containers"),
        ("DaemonSet/agent", "containers"),
        ("ReplicaSet/rs", "containers"),
        ("Job/once", "containers"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(seen, want, "{doc:#}");
    assert_eq!(doc["summary"]["workloads"], 7);
    assert_eq!(doc["summary"]["ignored"], json!({"ConfigMap": 1, "Service": 1}));
    assert_eq!(doc["images"][0]["file"], "(stdin)");
    assert_eq!(out.status.code(), Some(1), "tag-only images are denied");
    // Standard input cannot be pinned.
    let out = reprove(d, &["admit", "--pin", "--policy", "policy.toml", "-"], Some(&before))?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot pin standard input"), "{}", text(&out));

    // --pin: the file changes only at the tag-only image scalars, then every image passes.
    let referrers_before = requests(&referrers);
    let (code, doc) = admit_json(d, &["--pin", "--policy", "policy.toml", "all.yaml"])?;
    assert_eq!(code, 0, "{doc:#}");
    // Before the pin, the one pinned image; after it, the 8 pinned ones: one fetch each time.
    assert_eq!(requests(&referrers) - referrers_before, 2);
    assert_eq!(doc["notes"].as_array().map(Vec::len), Some(8), "{doc:#}");
    assert!(doc["images"].as_array().ok_or("images")?.iter().all(|i| i["reason"] == "passed"), "{doc:#}");
    let after = std::fs::read_to_string(d.join("all.yaml"))?;
    let tagged = format!("{name}:v1");
    let pinned = format!("{name}:v1@{}", image.manifest_digest);
    // Every tag-only image scalar, quoted or not, gained its digest, and nothing else
    // changed: taking the digests out gives the file back byte for byte.
    assert_eq!(after.matches(&pinned).count(), 8, "{after}");
    assert_eq!(after.replace(&pinned, &tagged), before, "only the image scalars changed:\n{after}");
    // The ConfigMap's string that looks like an image is not a container image: untouched.
    assert!(after.contains(&format!("data: {{image: \"{tagged}\"}}")), "{after}");
    // Pinned files pin nothing more.
    let (code, doc) = admit_json(d, &["--pin", "--policy", "policy.toml", "all.yaml"])?;
    assert_eq!((code, doc["notes"].as_array().map(Vec::len)), (0, Some(0)), "{doc:#}");
    assert_eq!(std::fs::read_to_string(d.join("all.yaml"))?, after);
    Ok(())
}

#[test]
fn malformed_yaml_and_policies_are_input_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    keygen(d, "a")?;
    keygen(d, "b")?;
    policy(d, "")?;
    std::fs::write(d.join("bad.yaml"), "kind: Pod\n---\nkind: Deployment\nspec: {template: [\n")?;
    let out = reprove(d, &["admit", "--policy", "policy.toml", "bad.yaml"], None)?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("bad.yaml: document 2, line"), "{}", text(&out));
    std::fs::write(d.join("shape.yaml"), "kind: Pod\nmetadata: {name: p}\nspec: {containers: {image: x}}\n")?;
    let out = reprove(d, &["admit", "--policy", "policy.toml", "shape.yaml"], None)?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("shape.yaml: document 1 (Pod p): spec.containers: not a list"), "{}", text(&out));
    std::fs::write(d.join("typo.toml"), "version = 1\nmod = \"warn\"\n")?;
    let out = reprove(d, &["admit", "--policy", "typo.toml", "shape.yaml"], None)?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("policy line 2, column 1: unknown field `mod`"), "{}", text(&out));
    // A directory with a link back to itself is walked once.
    std::fs::create_dir_all(d.join("tree/sub"))?;
    std::os::unix::fs::symlink("..", d.join("tree/sub/loop"))?;
    std::fs::write(d.join("tree/sub/svc.yml"), "kind: Service\nmetadata: {name: s}\n")?;
    let out = reprove(d, &["admit", "--policy", "policy.toml", "tree"], None)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 other documents ignored (Service 1)"), "{}", text(&out));
    let out = reprove(d, &["admit", "bad.yaml"], None)?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("admission-policy.toml"), "{}", text(&out));
    Ok(())
}

#[test]
fn a_registry_that_never_answers_is_denied_at_the_deadline() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    keygen(d, "a")?;
    keygen(d, "b")?;
    policy(d, "on_error = \"allow-with-warning\"")?;
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let image = format!("{addr}/app@sha256:{}", "ab".repeat(32));
    std::fs::write(d.join("pod.yaml"), pod("app", "default", &image))?;
    let started = std::time::Instant::now();
    let (code, doc) = admit_json(d, &["--policy", "policy.toml", "--registry-timeout", "2s", "pod.yaml"])?;
    let got = decision(&doc, "app");
    assert_eq!((code, got["allowed"].as_bool(), got["reason"].as_str()), (1, Some(false), Some("deadline")), "{doc:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn the_example_policies_follow_the_schema_and_load() -> TestResult {
    let examples = crate::support::repo_root().join("examples/policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        if !(file.starts_with("admission-") && file.ends_with(".toml")) {
            continue;
        }
        seen += 1;
        let policy_text = std::fs::read_to_string(&path)?;
        let value: toml::Value = toml::from_str(&policy_text)?;
        assert_valid("admission-policy.schema.json", &serde_json::to_value(&value)?);
        // With the keys it names, it loads: admit of no manifest allows.
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("keys"))?;
        std::fs::create_dir_all(d.join("empty"))?;
        for verifier in value.get("verifiers").and_then(toml::Value::as_array).into_iter().flatten() {
            if let Some(key) = verifier.get("key").and_then(toml::Value::as_str) {
                keygen(d, key.trim_end_matches(".pub"))?;
            }
            // A keyless verifier's trust root: the test CA's.
            if let Some(root) = verifier.get("trusted_root").and_then(toml::Value::as_str) {
                crate::attest_certificate::make_ca(d, "ca")?;
                let json = crate::attest_certificate::trusted_root(d, &["ca-inter.pem", "ca-root.pem"], None)?;
                std::fs::write(d.join(root), json.to_string())?;
            }
        }
        std::fs::write(d.join(&file), &policy_text)?;
        let out = reprove(d, &["admit", "--policy", &file, "empty"], None)?;
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out));
        assert!(text(&out).contains("0 images in 0 workloads"), "{file}: {}", text(&out));
    }
    assert_eq!(seen, 3, "the admission examples in {}", examples.display());
    Ok(())
}
