//! Interop with the real cosign (the release `ci/setup-cosign` builds into the test
//! cache): keys made by either tool load in the other, cosign accepts reprove's DSSE
//! envelopes and Sigstore bundles, and reprove accepts cosign's. Offline: no
//! transparency log, no network.
//!
//! cosign v2.4.1 verifies a new-format bundle only against a trusted root (it fetches
//! the public-good one over TUF otherwise); a keyed, log-less bundle needs nothing from
//! it, so the tests hand it an empty trusted root (`--trusted-root`) and stay offline.

use std::path::Path;
use std::process::Output;

use crate::support::{self, signing};
use signing::{cosign, ok, TestResult, PROVENANCE};

const PASSWORD: &str = "interop-pw";

fn run(program: &Path, dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    support::run_signing_tool(program, dir, PASSWORD, args)
}

fn reprove(dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    signing::reprove_signing(dir, PASSWORD, args)
}

fn fixtures(dir: &Path) -> TestResult {
    std::fs::write(dir.join("app"), b"\x7fELF a binary to attest")?;
    std::fs::write(
        dir.join("pred.json"),
        br#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#,
    )?;
    Ok(())
}

/// Signs with reprove and `prefix.key`; cosign and reprove both verify with `prefix.pub`.
fn reprove_signs_cosign_verifies(cosign: &Path, dir: &Path, prefix: &str) -> TestResult {
    let key = format!("{prefix}.key");
    let public = format!("{prefix}.pub");
    let envelope = format!("{prefix}.intoto.jsonl");
    ok(
        &reprove(
            dir,
            &[
                "attest",
                "sign",
                "--key",
                &key,
                "--predicate-type",
                PROVENANCE,
                "--predicate",
                "pred.json",
                "--subject",
                "app",
                "--out",
                &envelope,
            ],
        )?,
        "reprove attest sign",
    )?;
    ok(
        &reprove(dir, &["attest", "verify", "--key", &public, "--subject", "app", &envelope])?,
        "reprove attest verify",
    )?;
    ok(
        &run(
            cosign,
            dir,
            &[
                "verify-blob-attestation",
                "--key",
                &public,
                "--type",
                PROVENANCE,
                "--signature",
                &envelope,
                "--insecure-ignore-tlog=true",
                "app",
            ],
        )?,
        "cosign verify-blob-attestation",
    )?;
    // And cosign rejects it for another blob: the subject digest is checked.
    std::fs::write(dir.join("other"), b"another blob")?;
    let wrong = run(
        cosign,
        dir,
        &[
            "verify-blob-attestation",
            "--key",
            &public,
            "--type",
            PROVENANCE,
            "--signature",
            &envelope,
            "--insecure-ignore-tlog=true",
            "other",
        ],
    )?;
    assert!(!wrong.status.success(), "cosign accepted the envelope for the wrong blob");
    Ok(())
}

#[test]
fn cosign_keys_sign_in_reprove_and_cosign_verifies_our_envelopes() -> TestResult {
    let cosign = cosign()?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    fixtures(d)?;
    ok(&run(&cosign, d, &["generate-key-pair", "--output-key-prefix", "c"])?, "cosign generate-key-pair")?;
    reprove_signs_cosign_verifies(&cosign, d, "c")
}

#[test]
fn reprove_keys_work_in_cosign() -> TestResult {
    let cosign = cosign()?;
    for ed25519 in [false, true] {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        fixtures(d)?;
        let mut keygen = vec!["keygen", "--output-key-prefix", "r"];
        if ed25519 {
            keygen.push("--ed25519");
        }
        ok(&reprove(d, &keygen)?, "reprove keygen")?;
        reprove_signs_cosign_verifies(&cosign, d, "r")?;
        // cosign signs with reprove's key (an in-toto v0.1 statement, as cosign 2.x
        // writes them); reprove verifies cosign's envelope.
        ok(
            &run(
                &cosign,
                d,
                &[
                    "attest-blob",
                    "--key",
                    "r.key",
                    "--type",
                    PROVENANCE,
                    "--predicate",
                    "pred.json",
                    "--tlog-upload=false",
                    "--yes",
                    "--output-signature",
                    "cosign.intoto.json",
                    "app",
                ],
            )?,
            "cosign attest-blob",
        )?;
        let args = [
            "attest",
            "verify",
            "--key",
            "r.pub",
            "--subject",
            "app",
            "--predicate-type",
            PROVENANCE,
            "cosign.intoto.json",
        ];
        ok(&reprove(d, &args)?, "reprove attest verify of cosign's envelope")?;
    }
    Ok(())
}

/// A trusted root with no authorities, logs or timestamping services: all a keyed bundle
/// without transparency-log entries needs, and it keeps cosign from fetching one.
const EMPTY_TRUSTED_ROOT: &str = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#;

fn cosign_verify_bundle(
    cosign: &Path,
    dir: &Path,
    public: &str,
    bundle: &str,
    blob: &str,
) -> Result<Output, std::io::Error> {
    run(
        cosign,
        dir,
        &[
            "verify-blob-attestation",
            "--key",
            public,
            "--bundle",
            bundle,
            "--new-bundle-format",
            "--trusted-root",
            "trusted_root.json",
            "--type",
            PROVENANCE,
            "--insecure-ignore-tlog=true",
            blob,
        ],
    )
}

#[test]
fn sigstore_bundles_verify_in_both_directions() -> TestResult {
    let cosign = cosign()?;
    for ed25519 in [false, true] {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        fixtures(d)?;
        std::fs::write(d.join("trusted_root.json"), EMPTY_TRUSTED_ROOT)?;
        std::fs::write(d.join("other"), b"another blob")?;
        let mut keygen = vec!["keygen", "--output-key-prefix", "r"];
        if ed25519 {
            keygen.push("--ed25519");
        }
        ok(&reprove(d, &keygen)?, "reprove keygen")?;
        // reprove writes the bundle; cosign verifies it with our public key, offline.
        let sign = [
            "attest",
            "sign",
            "--key",
            "r.key",
            "--predicate-type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--subject",
            "app",
            "--bundle",
            "r.sigstore.json",
        ];
        ok(&reprove(d, &sign)?, "reprove attest sign --bundle")?;
        ok(&cosign_verify_bundle(&cosign, d, "r.pub", "r.sigstore.json", "app")?, "cosign verifies reprove's bundle")?;
        let wrong = cosign_verify_bundle(&cosign, d, "r.pub", "r.sigstore.json", "other")?;
        assert!(!wrong.status.success(), "cosign accepted the bundle for the wrong blob");
        // cosign writes a bundle with the same key; reprove verifies it.
        ok(
            &run(
                &cosign,
                d,
                &[
                    "attest-blob",
                    "--key",
                    "r.key",
                    "--type",
                    PROVENANCE,
                    "--predicate",
                    "pred.json",
                    "--tlog-upload=false",
                    "--yes",
                    "--new-bundle-format",
                    "--bundle",
                    "c.sigstore.json",
                    "app",
                ],
            )?,
            "cosign attest-blob --new-bundle-format",
        )?;
        let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("c.sigstore.json"))?)?;
        assert_eq!(written["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
        let verify = [
            "attest",
            "verify",
            "--key",
            "r.pub",
            "--subject",
            "app",
            "--predicate-type",
            PROVENANCE,
            "--json",
            "c.sigstore.json",
        ];
        let out = reprove(d, &verify)?;
        ok(&out, "reprove attest verify of cosign's bundle")?;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(doc["format"], "sigstore-bundle");
        // Both name the key with the same hint.
        let ours: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("r.sigstore.json"))?)?;
        assert_eq!(
            ours["verificationMaterial"]["publicKey"]["hint"],
            written["verificationMaterial"]["publicKey"]["hint"]
        );
    }
    Ok(())
}
