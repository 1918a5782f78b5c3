//! `reprove attest provenance REPORT.json` end to end: a saved report (the fixture under
//! tests/fixtures/report, its digests made to match files written here) becomes a signed
//! provenance of the rebuilt binary and a VSA of the reference, which `reprove attest
//! verify` (with a policy on builder id, toolchain digest and source repository) and the
//! real cosign (built by `ci/setup-cosign`, offline) both accept.

use std::path::Path;
use std::process::Output;

use crate::support::{self, signing};
use signing::{cosign, ok, text, TestResult, PROVENANCE};

const PASSWORD: &str = "prov-pw";
const VSA: &str = "https://slsa.dev/verification_summary/v1";
const BUILDER: &str = "https://builders.example/reprove/ci";
const TOOLCHAIN: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";

fn run(program: &Path, dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    support::run_signing_tool(program, dir, PASSWORD, args)
}

fn reprove(dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    signing::reprove_signing(dir, PASSWORD, args)
}

/// A key pair, a rebuilt binary `app`, a reference `ref/app`, and `report.json` (the
/// fixture with their digests and the given verdict).
fn setup(dir: &Path, verdict: &str) -> TestResult {
    ok(&reprove(dir, &["keygen", "--output-key-prefix", "k"])?, "keygen")?;
    let rebuilt = b"\x7fELF the rebuilt binary";
    let reference: &[u8] = if verdict == "reproduced" { rebuilt } else { b"\x7fELF the reference binary" };
    std::fs::write(dir.join("app"), rebuilt)?;
    std::fs::create_dir_all(dir.join("ref"))?;
    std::fs::write(dir.join("ref/app"), reference)?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/not-reproduced.json");
    let mut report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture)?)?;
    report["verdict"] = verdict.into();
    report["rebuilt"]["sha256"] = stdx::sha256_hex(rebuilt).into();
    report["subject"]["sha256"] = stdx::sha256_hex(reference).into();
    report["inputs"]["reference"]["sha256"] = stdx::sha256_hex(reference).into();
    if verdict == "reproduced" {
        report["causes"] = serde_json::json!([]);
    }
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(
        dir.join("policy.toml"),
        format!(
            "version = 1\nmax_age = \"3650d\"\npredicate_types = [\"{PROVENANCE}\"]\n\n[provenance]\n\
             builder_ids = [\"{BUILDER}\"]\nsource_repositories = [\"git+https://example.com/acme/*\"]\n\
             toolchain_digests = [\"{TOOLCHAIN}\"]\n"
        ),
    )?;
    Ok(())
}

fn attest(dir: &Path, extra: &[&str]) -> Result<Output, std::io::Error> {
    let mut args =
        vec!["attest", "provenance", "report.json", "--key", "k.key", "--out", "att", "--builder-id", BUILDER];
    args.extend_from_slice(extra);
    reprove(dir, &args)
}

fn payload(path: &Path) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let envelope: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let b64 = envelope["payload"].as_str().ok_or("no payload")?;
    Ok(serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64)?)?)
}

fn cosign_verify(
    cosign: &Path,
    dir: &Path,
    kind: &str,
    attestation: &str,
    blob: &str,
) -> Result<Output, std::io::Error> {
    run(
        cosign,
        dir,
        &[
            "verify-blob-attestation",
            "--key",
            "k.pub",
            "--type",
            kind,
            "--signature",
            attestation,
            "--insecure-ignore-tlog=true",
            blob,
        ],
    )
}

fn schema(name: &str) -> Result<jsonschema::Validator, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    Ok(jsonschema::options().should_validate_formats(true).build(&value).map_err(|e| format!("{name}: {e}"))?)
}

fn assert_valid(validator: &jsonschema::Validator, value: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not match its schema: {errors:#?}\n{value:#}");
}

#[test]
fn reproduced_report_is_attested_and_verifies_in_reprove_and_cosign() -> TestResult {
    let cosign = cosign()?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, "reproduced")?;
    let out = attest(d, &["--bundle", "--json"])?;
    ok(&out, "attest provenance")?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_valid(&schema("attest-provenance.schema.json")?, &doc, "attest provenance --json");
    let files = doc["files"].as_array().ok_or("no files")?;
    assert_eq!(files.len(), 4, "{doc:#}");
    for f in files {
        let path = d.join(f["path"].as_str().ok_or("no path")?);
        assert_eq!(f["sha256"].as_str(), Some(stdx::sha256_hex(&std::fs::read(&path)?).as_str()), "{}", path.display());
    }

    let prov = payload(&d.join("att/app.provenance.intoto.jsonl"))?;
    assert_valid(&schema("provenance.schema.json")?, &prov["predicate"], "provenance");
    assert_eq!(prov["predicate"]["runDetails"]["builder"]["id"], BUILDER);
    let vsa = payload(&d.join("att/app.vsa.intoto.jsonl"))?;
    assert_valid(&schema("vsa.schema.json")?, &vsa["predicate"], "vsa");
    assert_eq!(vsa["predicate"]["verificationResult"], "PASSED");
    let prov_digest = stdx::sha256_hex(&std::fs::read(d.join("att/app.provenance.intoto.jsonl"))?);
    assert_eq!(vsa["predicate"]["inputAttestations"][0]["digest"]["sha256"], prov_digest.as_str());

    for file in ["att/app.provenance.intoto.jsonl", "att/app.provenance.sigstore.json"] {
        let out =
            reprove(d, &["attest", "verify", "--key", "k.pub", "--subject", "app", "--policy", "policy.toml", file])?;
        ok(&out, &format!("attest verify {file}"))?;
    }
    ok(
        &reprove(d, &["attest", "verify", "--key", "k.pub", "--subject", "ref/app", "att/app.vsa.intoto.jsonl"])?,
        "vsa",
    )?;
    // Another builder id in the policy: rejected, naming the rule.
    let strict = std::fs::read_to_string(d.join("policy.toml"))?.replace(BUILDER, "https://other.example/b");
    std::fs::write(d.join("strict.toml"), strict)?;
    let out = reprove(
        d,
        &[
            "attest",
            "verify",
            "--key",
            "k.pub",
            "--subject",
            "app",
            "--policy",
            "strict.toml",
            "att/app.provenance.intoto.jsonl",
        ],
    )?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("provenance.builder_ids"), "{}", text(&out));

    ok(&cosign_verify(&cosign, d, PROVENANCE, "att/app.provenance.intoto.jsonl", "app")?, "cosign provenance")?;
    ok(&cosign_verify(&cosign, d, VSA, "att/app.vsa.intoto.jsonl", "ref/app")?, "cosign vsa")?;

    // Existing files are not replaced without --force, and nothing is half-written.
    let before = std::fs::read(d.join("att/app.vsa.intoto.jsonl"))?;
    let out = attest(d, &[])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(std::fs::read(d.join("att/app.vsa.intoto.jsonl"))?, before);
    ok(&attest(d, &["--force"])?, "attest provenance --force")?;
    Ok(())
}

#[test]
fn not_reproduced_report_gets_a_signed_failed_vsa_with_its_causes() -> TestResult {
    let cosign = cosign()?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, "not-reproduced")?;
    let out = attest(d, &[])?;
    ok(&out, "attest provenance")?;
    assert!(text(&out).contains("att/app.vsa.intoto.jsonl"), "{}", text(&out));
    let vsa = payload(&d.join("att/app.vsa.intoto.jsonl"))?;
    assert_valid(&schema("vsa.schema.json")?, &vsa["predicate"], "vsa");
    assert_eq!(vsa["predicate"]["verificationResult"], "FAILED");
    assert_eq!(vsa["predicate"]["reproveCauses"], serde_json::json!(["ldflags", "build-id-only"]));
    assert_eq!(vsa["predicate"]["verifiedLevels"].as_array().map(Vec::len).unwrap_or(0), 0);
    ok(
        &reprove(d, &["attest", "verify", "--key", "k.pub", "--subject", "ref/app", "att/app.vsa.intoto.jsonl"])?,
        "vsa",
    )?;
    ok(&cosign_verify(&cosign, d, VSA, "att/app.vsa.intoto.jsonl", "ref/app")?, "cosign vsa")?;
    ok(&cosign_verify(&cosign, d, PROVENANCE, "att/app.provenance.intoto.jsonl", "app")?, "cosign provenance")?;
    Ok(())
}

#[test]
fn reports_that_cannot_be_attested_exit_2_naming_why() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, "not-reproduced")?;
    let mut report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("report.json"))?)?;
    report["inputs"]["goMod"] = serde_json::Value::Null;
    std::fs::write(d.join("report.json"), serde_json::to_vec(&report)?)?;
    let out = attest(d, &[])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("inputs.goMod"), "{}", text(&out));

    report["verdict"] = "error".into();
    report["rebuilt"] = serde_json::Value::Null;
    std::fs::write(d.join("report.json"), serde_json::to_vec(&report)?)?;
    let out = attest(d, &[])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("verdict"), "{}", text(&out));
    assert!(!d.join("att").exists(), "nothing is written for a report that cannot be attested");

    let out = reprove(d, &["attest", "provenance", "report.json", "--out", "att"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    std::fs::write(d.join("report.json"), b"{not json")?;
    let out = attest(d, &[])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    Ok(())
}
