//! `reprove keygen`, `reprove attest sign` and `reprove attest verify` end to end: the
//! real binary, real key files, every rejection with its exit code and named check.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::signing::{reprove_with_password as reprove, text, TestResult, PROVENANCE};

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

/// A key pair, a subject, a predicate and a signed envelope in a fresh directory.
fn setup(dir: &Path, ed25519: bool) -> TestResult {
    let mut args = vec!["keygen", "--output-key-prefix", "k", "--json"];
    if ed25519 {
        args.push("--ed25519");
    }
    let out = reprove(dir, &args, Some("pw"))?;
    assert_eq!(code(&out), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["algorithm"], if ed25519 { "ed25519" } else { "ecdsa-p256-sha256" });
    std::fs::write(dir.join("app"), b"\x7fELF pretend binary")?;
    std::fs::write(
        dir.join("pred.json"),
        br#"{"buildDefinition":{"buildType":"x"},"runDetails":{"builder":{"id":"b"}}}"#,
    )?;
    let out = reprove(
        dir,
        &[
            "attest",
            "sign",
            "--key",
            "k.key",
            "--predicate-type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--subject",
            "app",
            "--out",
            "app.intoto.jsonl",
        ],
        Some("pw"),
    )?;
    assert_eq!(code(&out), Some(0), "{}", text(&out));
    Ok(())
}

#[test]
fn keygen_writes_cosign_style_files_with_private_mode() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir()?;
    setup(dir.path(), false)?;
    let key = std::fs::read_to_string(dir.path().join("k.key"))?;
    assert!(key.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert_eq!(std::fs::metadata(dir.path().join("k.key"))?.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(dir.path().join("k.pub"))?.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    // Never overwrites; no password and no terminal is a clear input error.
    let again = reprove(dir.path(), &["keygen", "--output-key-prefix", "k"], Some("pw"))?;
    assert_eq!(code(&again), Some(2));
    assert!(text(&again).contains("refusing to overwrite"), "{}", text(&again));
    let nopw = reprove(dir.path(), &["keygen", "--output-key-prefix", "other"], None)?;
    assert_eq!(code(&nopw), Some(2));
    assert!(text(&nopw).contains("COSIGN_PASSWORD is not set"), "{}", text(&nopw));
    Ok(())
}

#[test]
fn sign_then_verify_passes_every_check() -> TestResult {
    for ed25519 in [false, true] {
        let dir = tempfile::tempdir()?;
        setup(dir.path(), ed25519)?;
        let out = reprove(
            dir.path(),
            &[
                "attest",
                "verify",
                "--key",
                "k.pub",
                "--subject",
                "app",
                "--predicate-type",
                PROVENANCE,
                "--json",
                "app.intoto.jsonl",
            ],
            None,
        )?;
        assert_eq!(code(&out), Some(0), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(doc["verdict"], "valid");
        let names: Vec<_> = doc["checks"].as_array().ok_or("checks")?.iter().map(|c| c["name"].clone()).collect();
        assert_eq!(names, ["signatures", "payloadType", "statement", "predicateType", "subject"]);
        // The envelope is one line, standard base64.
        let envelope = std::fs::read_to_string(dir.path().join("app.intoto.jsonl"))?;
        assert_eq!(envelope.lines().count(), 1);
    }
    Ok(())
}

#[test]
fn each_rejection_names_its_check() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, false)?;
    let out = reprove(d, &["keygen", "--output-key-prefix", "other"], Some("pw"))?;
    assert_eq!(code(&out), Some(0));
    let digest = format!("sha256:{}", "0".repeat(64));
    let cases: [(&[&str], &str); 4] = [
        (&["--key", "other.pub", "app.intoto.jsonl"], "FAIL signatures: "),
        (
            &["--key", "k.pub", "--predicate-type", "https://slsa.dev/verification_summary/v1", "app.intoto.jsonl"],
            "FAIL predicateType: ",
        ),
        (&["--key", "k.pub", "--digest", &digest, "app.intoto.jsonl"], "FAIL subject: no subject has sha256:0000"),
        (
            &["--key", "k.pub", "--key", "other.pub", "--threshold", "2", "app.intoto.jsonl"],
            "1 of 2 required distinct keys",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["attest", "verify"];
        full.extend_from_slice(args);
        let out = reprove(d, &full, None)?;
        assert_eq!(code(&out), Some(1), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    // A changed payload byte.
    let mut envelope: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("app.intoto.jsonl"))?)?;
    let payload = envelope["payload"].as_str().ok_or("payload")?.to_owned();
    let flipped = if payload.starts_with('e') { payload.replacen('e', "f", 1) } else { format!("e{}", &payload[1..]) };
    envelope["payload"] = flipped.into();
    std::fs::write(d.join("tampered.jsonl"), envelope.to_string())?;
    let out = reprove(d, &["attest", "verify", "--key", "k.pub", "tampered.jsonl"], None)?;
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAIL signatures"), "{}", text(&out));
    Ok(())
}

#[test]
fn bad_input_exits_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, false)?;
    std::fs::write(d.join("junk"), b"not json")?;
    let cases: [&[&str]; 6] = [
        &["attest", "verify", "--key", "k.pub", "--key", "k.pub", "app.intoto.jsonl"],
        &["attest", "verify", "--key", "k.pub", "junk"],
        &["attest", "verify", "--key", "app", "app.intoto.jsonl"],
        &["attest", "verify", "--key", "k.pub", "--threshold", "2", "app.intoto.jsonl"],
        &["attest", "verify", "--key", "k.pub", "--digest", "sha256:zz", "app.intoto.jsonl"],
        &["attest", "verify", "--key", "k.pub", "missing.jsonl"],
    ];
    for args in cases {
        let out = reprove(d, args, None)?;
        assert_eq!(code(&out), Some(2), "{args:?}: {}", text(&out));
    }
    let wrong_pw = reprove(
        d,
        &[
            "attest",
            "sign",
            "--key",
            "k.key",
            "--predicate-type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--subject",
            "app",
        ],
        Some("nope"),
    )?;
    assert_eq!(code(&wrong_pw), Some(2));
    assert!(text(&wrong_pw).contains("wrong password"), "{}", text(&wrong_pw));
    // The public key where the private key belongs: named as what it is.
    let sign_with = |key: &str| {
        let args = [
            "attest",
            "sign",
            "--key",
            key,
            "--predicate-type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--subject",
            "app",
        ];
        reprove(d, &args, Some("pw"))
    };
    let public = sign_with("k.pub")?;
    assert_eq!(code(&public), Some(2));
    assert!(
        text(&public).contains("not an encrypted cosign private key")
            && text(&public).contains("(found \"PUBLIC KEY\")"),
        "{}",
        text(&public)
    );
    // A damaged key file: a PEM error, not a password error.
    let key = std::fs::read_to_string(d.join("k.key"))?;
    std::fs::write(d.join("damaged.key"), key.replacen('\n', "\n!", 1))?;
    let damaged = sign_with("damaged.key")?;
    assert_eq!(code(&damaged), Some(2));
    assert!(text(&damaged).contains("bad base64"), "{}", text(&damaged));
    Ok(())
}

/// The prompt on a terminal (a pseudo-terminal from util-linux `script`): the password
/// is asked twice with echo off and the key decrypts with it.
#[test]
fn keygen_prompts_on_a_terminal() -> TestResult {
    use std::io::Write as _;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let command = format!("{} keygen --output-key-prefix t", env!("CARGO_BIN_EXE_reprove"));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(d)
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    for _ in 0..2 {
        // Typed after the prompt has turned echo off, as a person would.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stdin.write_all(b"typed-pw\n")?;
        stdin.flush()?;
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(stdin);
    let out = child.wait_with_output()?;
    assert_eq!(code(&out), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Enter password for private key again: "), "{}", text(&out));
    assert!(!text(&out).contains("typed-pw"), "the password was echoed: {}", text(&out));
    std::fs::write(d.join("p.json"), b"{}")?;
    let sign = [
        "attest",
        "sign",
        "--key",
        "t.key",
        "--predicate-type",
        PROVENANCE,
        "--predicate",
        "p.json",
        "--subject",
        "p.json",
    ];
    let out = reprove(d, &sign, Some("typed-pw"))?;
    assert_eq!(code(&out), Some(0), "{}", text(&out));
    Ok(())
}

/// `attest sign --bundle` writes a Sigstore bundle v0.3 beside the envelope; `attest
/// verify` reads either file, detects its kind and reports it.
#[test]
fn bundle_and_envelope_both_verify_and_are_told_apart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, false)?;
    let sign = [
        "attest",
        "sign",
        "--key",
        "k.key",
        "--predicate-type",
        PROVENANCE,
        "--predicate",
        "pred.json",
        "--subject",
        "app",
        "--bundle",
        "app.sigstore.json",
    ];
    let out = reprove(d, &sign, Some("pw"))?;
    assert_eq!(code(&out), Some(0), "{}", text(&out));
    assert!(out.stdout.is_empty(), "with --bundle and no --out nothing goes to stdout");
    let bundle: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("app.sigstore.json"))?)?;
    assert_eq!(bundle["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
    assert!(bundle["verificationMaterial"]["publicKey"]["hint"].as_str().is_some_and(|h| h.len() == 44));
    assert_eq!(bundle["dsseEnvelope"]["payloadType"], "application/vnd.in-toto+json");
    for (file, format) in [("app.sigstore.json", "sigstore-bundle"), ("app.intoto.jsonl", "dsse")] {
        let out = reprove(d, &["attest", "verify", "--key", "k.pub", "--subject", "app", "--json", file], None)?;
        assert_eq!(code(&out), Some(0), "{file}: {}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(doc["format"], format);
    }
    // The wrong key: the failure says the bundle's hint names another key.
    let out = reprove(d, &["keygen", "--output-key-prefix", "other"], Some("pw"))?;
    assert_eq!(code(&out), Some(0));
    let out = reprove(d, &["attest", "verify", "--key", "other.pub", "app.sigstore.json"], None)?;
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    assert!(text(&out).contains("publicKey hint"), "{}", text(&out));
    // A bundle of an unknown version, or of a message signature, is bad input.
    let mut future = bundle.clone();
    future["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.9+json".into();
    std::fs::write(d.join("future.sigstore.json"), future.to_string())?;
    let mut blob = bundle;
    blob.as_object_mut().ok_or("object")?.remove("dsseEnvelope");
    blob["messageSignature"] = serde_json::json!({"signature": "AA=="});
    std::fs::write(d.join("blob.sigstore.json"), blob.to_string())?;
    for (file, expected) in
        [("future.sigstore.json", "unsupported Sigstore bundle media type"), ("blob.sigstore.json", "messageSignature")]
    {
        let out = reprove(d, &["attest", "verify", "--key", "k.pub", file], None)?;
        assert_eq!(code(&out), Some(2), "{file}: {}", text(&out));
        assert!(text(&out).contains(expected), "{file}: {}", text(&out));
    }
    Ok(())
}

/// One row of the tampering matrix: a change to a signed envelope and what the DSSE
/// protocol (secure-systems-lab/dsse protocol.md) says a verifier does with it.
struct Tamper {
    name: &'static str,
    change: fn(&mut serde_json::Value, &Keys),
    extra_args: &'static [&'static str],
    /// None: accepted; Some(text): rejected (exit 1) with this in the output.
    rejected_with: Option<&'static str>,
}

/// What the matrix may need: the signer's and a second key's envelopes and key ids.
struct Keys {
    other_signature: serde_json::Value,
    other_keyid: String,
}

fn b64_std(value: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default()).unwrap_or_default()
}

fn b64_encode(bytes: &[u8], url: bool, pad: bool) -> serde_json::Value {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let engine = match (url, pad) {
        (false, true) => STANDARD,
        (false, false) => STANDARD_NO_PAD,
        (true, true) => URL_SAFE,
        (true, false) => URL_SAFE_NO_PAD,
    };
    engine.encode(bytes).into()
}

const MATRIX: &[Tamper] = &[
    Tamper { name: "untouched", change: |_, _| {}, extra_args: &[], rejected_with: None },
    Tamper {
        name: "payload byte",
        change: |e, _| {
            let mut p = b64_std(&e["payload"]);
            p[20] ^= 0x20;
            e["payload"] = b64_encode(&p, false, true);
        },
        extra_args: &[],
        rejected_with: Some("signature 0 verifies under none of the 1 trusted keys (its keyid"),
    },
    Tamper {
        name: "signature byte",
        change: |e, _| {
            let mut s = b64_std(&e["signatures"][0]["sig"]);
            let i = s.len() / 2;
            s[i] ^= 0x01;
            e["signatures"][0]["sig"] = b64_encode(&s, false, true);
        },
        extra_args: &[],
        rejected_with: Some("payload, type or signature changed"),
    },
    Tamper {
        name: "payloadType swapped (authenticated by PAE)",
        change: |e, _| e["payloadType"] = "application/vnd.in-toto.other+json".into(),
        extra_args: &[],
        rejected_with: Some("FAIL signatures: "),
    },
    Tamper {
        name: "predicateType swapped inside the payload",
        change: |e, _| {
            let p = String::from_utf8(b64_std(&e["payload"])).unwrap_or_default();
            let swapped = p.replace("https://slsa.dev/provenance/v1", "https://slsa.dev/verification_summary/v1");
            e["payload"] = b64_encode(swapped.as_bytes(), false, true);
        },
        extra_args: &[],
        rejected_with: Some("FAIL signatures: "),
    },
    Tamper {
        name: "wrong subject digest asked for",
        change: |_, _| {},
        extra_args: &["--digest", "sha256:1111111111111111111111111111111111111111111111111111111111111111"],
        rejected_with: Some("FAIL subject: no subject has sha256:1111"),
    },
    Tamper {
        name: "predicate type other than asked",
        change: |_, _| {},
        extra_args: &["--predicate-type", "https://slsa.dev/verification_summary/v1"],
        rejected_with: Some("FAIL predicateType: expected \"https://slsa.dev/verification_summary/v1\""),
    },
    Tamper {
        name: "signed by another key only",
        change: |e, k| e["signatures"] = serde_json::json!([k.other_signature]),
        extra_args: &[],
        rejected_with: Some("names none of the trusted keys"),
    },
    Tamper {
        name: "zero signatures",
        change: |e, _| e["signatures"] = serde_json::json!([]),
        extra_args: &[],
        rejected_with: Some("FAIL signatures: envelope has no signatures"),
    },
    Tamper {
        name: "duplicated signature, threshold 1",
        change: |e, _| {
            let s = e["signatures"][0].clone();
            if let Some(a) = e["signatures"].as_array_mut() {
                a.push(s);
            }
        },
        extra_args: &[],
        rejected_with: None,
    },
    Tamper {
        name: "duplicated signature, threshold 2",
        change: |e, _| {
            let s = e["signatures"][0].clone();
            if let Some(a) = e["signatures"].as_array_mut() {
                a.push(s);
            }
        },
        extra_args: &["--key", "other.pub", "--threshold", "2"],
        rejected_with: Some("1 of 2 required distinct keys verified (signature 1 is by key 0 again and counts once"),
    },
    Tamper {
        name: "URL-safe base64 (verifiers MUST accept either alphabet)",
        change: |e, _| {
            e["payload"] = b64_encode(&b64_std(&e["payload"]), true, true);
            e["signatures"][0]["sig"] = b64_encode(&b64_std(&e["signatures"][0]["sig"]), true, true);
        },
        extra_args: &[],
        rejected_with: None,
    },
    Tamper {
        name: "unpadded base64 (as go-securesystemslib, padding is required)",
        change: |e, _| e["payload"] = b64_encode(&b64_std(&e["payload"]), false, false),
        extra_args: &[],
        rejected_with: Some("payload is neither standard nor URL-safe padded base64"),
    },
    Tamper {
        name: "mixed alphabets in one string",
        change: |e, _| {
            let p = e["payload"].as_str().unwrap_or_default().to_owned();
            e["payload"] = p.replacen('/', "_", 1).into();
        },
        extra_args: &[],
        rejected_with: Some("payload is neither standard nor URL-safe padded base64"),
    },
    Tamper {
        name: "keyid hint names another key (unauthenticated, never decides)",
        change: |e, k| e["signatures"][0]["keyid"] = k.other_keyid.clone().into(),
        extra_args: &[],
        rejected_with: None,
    },
    Tamper {
        name: "keyid hint removed",
        change: |e, _| {
            if let Some(s) = e["signatures"][0].as_object_mut() {
                s.remove("keyid");
            }
        },
        extra_args: &[],
        rejected_with: None,
    },
];

/// Every row of [`MATRIX`], on a bare envelope and on the same envelope in a Sigstore bundle.
#[test]
fn tampering_matrix_follows_the_dsse_protocol() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, false)?;
    // A predicate whose base64 has '/' ("???" is "Pz8/"), so alphabets visibly differ.
    std::fs::write(d.join("pred.json"), br#"{"runDetails":{"builder":{"id":"?????"}},"buildDefinition":{}}"#)?;
    let sign = |key: &str, out: &str| -> TestResult {
        let args = ["attest", "sign", "--key", key, "--predicate-type", PROVENANCE, "--predicate", "pred.json"];
        let mut args = args.to_vec();
        args.extend(["--subject", "app", "--out", out]);
        let result = reprove(d, &args, Some("pw"))?;
        assert_eq!(code(&result), Some(0), "{}", text(&result));
        Ok(())
    };
    sign("k.key", "good.jsonl")?;
    let out = reprove(d, &["keygen", "--output-key-prefix", "other"], Some("pw"))?;
    assert_eq!(code(&out), Some(0));
    sign("other.key", "other.jsonl")?;
    let good: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("good.jsonl"))?)?;
    let other: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("other.jsonl"))?)?;
    assert!(good["payload"].as_str().is_some_and(|p| p.contains('/')), "the payload must exercise the alphabets");
    let keys = Keys {
        other_signature: other["signatures"][0].clone(),
        other_keyid: other["signatures"][0]["keyid"].as_str().unwrap_or_default().to_owned(),
    };
    for row in MATRIX {
        let mut envelope = good.clone();
        (row.change)(&mut envelope, &keys);
        let mut bundle_envelope = envelope.clone();
        for s in bundle_envelope["signatures"].as_array_mut().into_iter().flatten() {
            if let Some(s) = s.as_object_mut() {
                s.remove("keyid");
            }
        }
        let bundle = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": "unchecked"}},
            "dsseEnvelope": bundle_envelope,
        });
        std::fs::write(d.join("t.intoto.jsonl"), envelope.to_string())?;
        std::fs::write(d.join("t.sigstore.json"), bundle.to_string())?;
        for file in ["t.intoto.jsonl", "t.sigstore.json"] {
            let mut args = vec!["attest", "verify", "--key", "k.pub"];
            args.extend_from_slice(row.extra_args);
            args.push(file);
            let out = reprove(d, &args, None)?;
            match row.rejected_with {
                None => assert_eq!(code(&out), Some(0), "{} ({file}) must be accepted: {}", row.name, text(&out)),
                Some(expected) => {
                    assert_eq!(code(&out), Some(1), "{} ({file}) must be rejected: {}", row.name, text(&out));
                    // Without keyids (in bundles), the keyid part of the message is absent.
                    let expected = if file.ends_with(".sigstore.json") {
                        expected.split(" (its keyid").next().unwrap_or(expected)
                    } else {
                        expected
                    };
                    let expected = if file.ends_with(".sigstore.json")
                        && expected.contains("payload, type or signature")
                    {
                        "FAIL signatures: "
                    } else if file.ends_with(".sigstore.json") && expected.contains("names none of the trusted keys") {
                        "verifies under none of the 1 trusted keys"
                    } else {
                        expected
                    };
                    assert!(text(&out).contains(expected), "{} ({file}): {}", row.name, text(&out));
                }
            }
        }
    }
    Ok(())
}

/// Live keyless signing (an OIDC token, a Fulcio certificate, a Rekor upload) needs the
/// services and is not implemented (docs/keyless.md): `--keyless` is a clear input
/// error pointing to the docs and to what works offline (`--certificate`, and
/// `attest verify --trusted-root`), and it cannot be combined with `--key`.
#[test]
fn keyless_is_a_clear_input_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    setup(d, false)?;
    let sign =
        ["attest", "sign", "--keyless", "--predicate-type", PROVENANCE, "--predicate", "pred.json", "--subject", "app"];
    for args in [&sign[..], &["attest", "verify", "--keyless", "app.intoto.jsonl"]] {
        let out = reprove(d, args, Some("pw"))?;
        assert_eq!(code(&out), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("--keyless") && text(&out).contains("docs/keyless.md"), "{}", text(&out));
        assert!(
            text(&out).contains("--certificate CERT.pem") && text(&out).contains("--trusted-root"),
            "{}",
            text(&out)
        );
    }
    let both = reprove(d, &["attest", "verify", "--keyless", "--key", "k.pub", "app.intoto.jsonl"], None)?;
    assert_eq!(code(&both), Some(2), "{}", text(&both));
    assert!(text(&both).contains("cannot be used with"), "{}", text(&both));
    Ok(())
}
