//! Interop with the Python reference DSSE implementation (securesystemslib, in the venv
//! `ci/setup-python` makes in the test cache): it verifies reprove's envelopes with our
//! P-256 and Ed25519 public keys, alone and as a threshold of two, and rejects the same
//! tampered envelopes reprove rejects. The script is `tests/fixtures/attest/verify_dsse.py`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::support::{self, signing};
use signing::{text, TestResult, PROVENANCE};

/// The venv `ci/setup-python` makes in the test cache.
fn python() -> Result<PathBuf, String> {
    support::cached_tool("pyattest/bin/python", "ci/setup-python (it installs securesystemslib in a venv)")
}

fn reprove(dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    signing::reprove_with_password(dir, args, Some("pw"))
}

/// Runs the securesystemslib script; returns its exit code and JSON line.
fn securesystemslib(
    dir: &Path,
    envelope: &str,
    threshold: usize,
    keys: &[&str],
) -> Result<(Option<i32>, serde_json::Value), Box<dyn std::error::Error>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/attest/verify_dsse.py");
    let threshold = threshold.to_string();
    let mut command = Command::new(python()?);
    command.current_dir(dir).arg(script).arg(envelope).arg(&threshold).args(keys).stdin(Stdio::null());
    let out = command.output()?;
    let doc = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    Ok((out.status.code(), doc))
}

fn keygen(dir: &Path, prefix: &str, ed25519: bool) -> TestResult {
    let mut args = vec!["keygen", "--output-key-prefix", prefix];
    if ed25519 {
        args.push("--ed25519");
    }
    let out = reprove(dir, &args)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

fn sign(dir: &Path, key: &str, out: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let key = format!("{key}.key");
    let args = [
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
        out,
    ];
    let result = reprove(dir, &args)?;
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    Ok(serde_json::from_str(&std::fs::read_to_string(dir.join(out))?)?)
}

fn key_id(dir: &Path, public: &str) -> Result<String, Box<dyn std::error::Error>> {
    let pem = std::fs::read_to_string(dir.join(public))?;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(format!("{:x}", Sha256::digest(STANDARD.decode(body)?)))
}

fn write(dir: &Path, name: &str, value: &serde_json::Value) -> TestResult {
    Ok(std::fs::write(dir.join(name), value.to_string())?)
}

fn setup() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("app"), b"\x7fELF python interop")?;
    std::fs::write(
        dir.path().join("pred.json"),
        br#"{"buildDefinition":{"buildType":"t"},"runDetails":{"builder":{"id":"b"}}}"#,
    )?;
    Ok(dir)
}

#[test]
fn securesystemslib_verifies_our_envelopes_and_rejects_tampering() -> TestResult {
    for ed25519 in [false, true] {
        let dir = setup()?;
        let d = dir.path();
        keygen(d, "k", ed25519)?;
        keygen(d, "other", ed25519)?;
        let envelope = sign(d, "k", "k.intoto.jsonl")?;
        let (code, doc) = securesystemslib(d, "k.intoto.jsonl", 1, &["k.pub"])?;
        assert_eq!(code, Some(0), "{doc}");
        assert_eq!(doc["keyids"], serde_json::json!([key_id(d, "k.pub")?]), "our keyid is the SPKI SHA-256");
        assert_eq!(doc["schemes"][0], if ed25519 { "ed25519" } else { "ecdsa-sha2-nistp256" });
        assert_eq!(doc["payloadType"], "application/vnd.in-toto+json");
        let payload = STANDARD.decode(envelope["payload"].as_str().ok_or("payload")?)?;
        assert_eq!(doc["payloadSha256"], format!("{:x}", Sha256::digest(&payload)));

        // A changed payload byte, a changed signature byte: both reject, as reprove does.
        let mut changed = payload.clone();
        changed[10] ^= 0x01;
        let mut tampered_payload = envelope.clone();
        tampered_payload["payload"] = STANDARD.encode(&changed).into();
        write(d, "payload.jsonl", &tampered_payload)?;
        let mut sig = STANDARD.decode(envelope["signatures"][0]["sig"].as_str().ok_or("sig")?)?;
        let middle = sig.len() / 2;
        sig[middle] ^= 0x01;
        let mut tampered_sig = envelope.clone();
        tampered_sig["signatures"][0]["sig"] = STANDARD.encode(&sig).into();
        write(d, "sig.jsonl", &tampered_sig)?;
        for file in ["payload.jsonl", "sig.jsonl"] {
            let (code, doc) = securesystemslib(d, file, 1, &["k.pub"])?;
            assert_eq!(code, Some(1), "{file}: securesystemslib accepted a tampered envelope: {doc}");
            assert!(doc["error"].as_str().is_some_and(|e| e.contains("Found: 0, Expected 1")), "{doc}");
            let ours = reprove(d, &["attest", "verify", "--key", "k.pub", file])?;
            assert_eq!(ours.status.code(), Some(1), "{file}: {}", text(&ours));
        }
        // The wrong key.
        let (code, doc) = securesystemslib(d, "k.intoto.jsonl", 1, &["other.pub"])?;
        assert_eq!(code, Some(1), "{doc}");
    }
    Ok(())
}

/// A P-256 and an Ed25519 signature over one statement: a threshold of two distinct
/// keys in both implementations. The same signature twice never meets a threshold of
/// two: reprove counts it once (the DSSE protocol's rule), securesystemslib refuses to
/// even read an envelope with two signatures under one keyid.
#[test]
fn thresholds_agree_with_securesystemslib() -> TestResult {
    let dir = setup()?;
    let d = dir.path();
    keygen(d, "p", false)?;
    keygen(d, "e", true)?;
    let mut both = sign(d, "p", "p.intoto.jsonl")?;
    let second = sign(d, "e", "e.intoto.jsonl")?;
    assert_eq!(both["payload"], second["payload"]);
    both["signatures"].as_array_mut().ok_or("signatures")?.push(second["signatures"][0].clone());
    write(d, "both.jsonl", &both)?;
    let (code, doc) = securesystemslib(d, "both.jsonl", 2, &["p.pub", "e.pub"])?;
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["keyids"].as_array().map(Vec::len), Some(2));
    let ours = reprove(d, &["attest", "verify", "--key", "p.pub", "--key", "e.pub", "--threshold", "2", "both.jsonl"])?;
    assert_eq!(ours.status.code(), Some(0), "{}", text(&ours));

    let mut twice = sign(d, "p", "p2.intoto.jsonl")?;
    let first = twice["signatures"][0].clone();
    twice["signatures"].as_array_mut().ok_or("signatures")?.push(first);
    write(d, "twice.jsonl", &twice)?;
    let (code, doc) = securesystemslib(d, "twice.jsonl", 2, &["p.pub", "e.pub"])?;
    assert_eq!(code, Some(2), "{doc}");
    assert!(doc["error"].as_str().is_some_and(|e| e.contains("Multiple signatures found for keyid")), "{doc}");
    let ours =
        reprove(d, &["attest", "verify", "--key", "p.pub", "--key", "e.pub", "--threshold", "2", "twice.jsonl"])?;
    assert_eq!(ours.status.code(), Some(1), "{}", text(&ours));
    assert!(text(&ours).contains("1 of 2 required distinct keys"), "{}", text(&ours));
    Ok(())
}
