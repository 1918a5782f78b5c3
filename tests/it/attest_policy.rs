//! `reprove attest verify --policy`: every rule of the TOML policy accepts what it should
//! and rejects what it should, naming itself in text and JSON; malformed policies are
//! bad input (exit 2) with a line and column. Real keys, real signatures, the real binary.

use std::path::Path;
use std::process::Output;

use stdx::time::{format_rfc3339, now_unix};

use crate::support::signing::{self, text, TestResult, PROVENANCE};

/// The exit code, the failed checks (policy rules by rule name) and the output.
type Verified = (Option<i32>, Vec<String>, String);

const VSA: &str = "https://slsa.dev/verification_summary/v1";
const BUILDER: &str = "https://reprove.example/builders/ci";
const VERIFIER: &str = "https://reprove.example/verifiers/ci";

fn reprove(dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    signing::reprove_with_password(dir, args, Some("pw"))
}

fn keygen(dir: &Path, prefix: &str) -> TestResult {
    let out = reprove(dir, &["keygen", "--output-key-prefix", prefix])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

/// Signs `predicate` of `predicate_type` about the file `app` with `key`.key into `out`.
fn sign(dir: &Path, key: &str, predicate_type: &str, predicate: &serde_json::Value, out: &str) -> TestResult {
    let file = format!("{out}.predicate.json");
    std::fs::write(dir.join(&file), predicate.to_string())?;
    let key = format!("{key}.key");
    let args = [
        "attest",
        "sign",
        "--key",
        &key,
        "--predicate-type",
        predicate_type,
        "--predicate",
        &file,
        "--subject",
        "app",
        "--out",
        out,
    ];
    let result = reprove(dir, &args)?;
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    Ok(())
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn provenance(builder: &str, source: &str, toolchain_digest: &str, finished: i64) -> serde_json::Value {
    serde_json::json!({
        "buildDefinition": {
            "buildType": "https://github.com/reprove/reprove/buildtypes/go-rebuild/v1",
            "externalParameters": {
                "source": {"uri": source, "rev": "0".repeat(40)},
                "package": "./cmd/app", "goos": "linux", "goarch": "amd64",
                "toolchain": format!("golang:1.22@{toolchain_digest}")
            },
            "resolvedDependencies": [{"uri": "oci://golang", "digest": {"sha256": &toolchain_digest[7..]}}]
        },
        "runDetails": {
            "builder": {"id": builder},
            "metadata": {"invocationId": "1", "startedOn": format_rfc3339(finished - 60), "finishedOn": format_rfc3339(finished)}
        }
    })
}

fn vsa(result: &str, levels: &[&str], verified: i64) -> serde_json::Value {
    serde_json::json!({
        "verifier": {"id": VERIFIER},
        "timeVerified": format_rfc3339(verified),
        "resourceUri": "file:app",
        "policy": {"uri": "https://reprove.example/policy"},
        "verificationResult": result,
        "verifiedLevels": levels
    })
}

/// Runs `attest verify --json` and returns the exit code and the failed policy rules.
fn verify(dir: &Path, keys: &[&str], policy: &str, file: &str) -> Result<Verified, Box<dyn std::error::Error>> {
    let mut args = vec!["attest", "verify", "--json", "--subject", "app", "--policy", policy];
    for key in keys {
        args.push("--key");
        args.push(key);
    }
    args.push(file);
    let out = reprove(dir, &args)?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    let failed = doc["checks"]
        .as_array()
        .ok_or("checks")?
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["rule"].as_str().map_or_else(|| c["name"].as_str().unwrap_or("?").to_owned(), str::to_owned))
        .collect();
    assert_eq!(doc["verdict"], if out.status.code() == Some(0) { "valid" } else { "invalid" });
    Ok((out.status.code(), failed, text(&out)))
}

fn setup() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("app"), b"\x7fELF policy subject")?;
    keygen(dir.path(), "a")?;
    keygen(dir.path(), "b")?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    for name in ["provenance.toml", "vsa-passed.toml"] {
        std::fs::copy(examples.join(name), dir.path().join(name))?;
    }
    Ok(dir)
}

#[test]
fn provenance_rules_accept_and_reject_by_name() -> TestResult {
    let dir = setup()?;
    let d = dir.path();
    let now = now_unix();
    let good = ("git+https://example.com/acme/app", digest('1'));
    let cases: Vec<(&str, serde_json::Value, &[&str])> = vec![
        ("good", provenance(BUILDER, good.0, &good.1, now - 3600), &[]),
        ("builder", provenance("https://evil.example/b", good.0, &good.1, now), &["provenance.builder_ids"]),
        (
            "source",
            provenance(BUILDER, "git+https://example.com/acme/app/fork", &good.1, now),
            &["provenance.source_repositories"],
        ),
        ("toolchain", provenance(BUILDER, good.0, &digest('3'), now), &["provenance.toolchain_digests"]),
        ("old", provenance(BUILDER, good.0, &good.1, now - 31 * 86_400), &["max_age"]),
        ("future", provenance(BUILDER, good.0, &good.1, now + 86_400), &["max_age"]),
        (
            "everything",
            provenance("b", "git+https://other.example/x", &digest('4'), now - 40 * 86_400),
            &["provenance.builder_ids", "provenance.source_repositories", "provenance.toolchain_digests", "max_age"],
        ),
    ];
    for (name, predicate, want_failed) in cases {
        let file = format!("{name}.intoto.jsonl");
        sign(d, "a", PROVENANCE, &predicate, &file)?;
        let (code, failed, output) = verify(d, &["a.pub"], "provenance.toml", &file)?;
        assert_eq!(failed, want_failed, "{name}: {output}");
        assert_eq!(code, Some(if want_failed.is_empty() { 0 } else { 1 }), "{name}: {output}");
    }
    // The text form names the rule and says why.
    let out =
        reprove(d, &["attest", "verify", "--key", "a.pub", "--policy", "provenance.toml", "builder.intoto.jsonl"])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("FAIL policy provenance.builder_ids: builder id \"https://evil.example/b\" is not one of"),
        "{}",
        text(&out)
    );
    // A VSA is refused by a provenance policy: its predicate type is not allowed.
    sign(d, "a", VSA, &vsa("PASSED", &["REPROVE_REPRODUCED"], now), "vsa.intoto.jsonl")?;
    let (code, failed, output) = verify(d, &["a.pub"], "provenance.toml", "vsa.intoto.jsonl")?;
    assert_eq!((code, failed), (Some(1), vec!["predicate_types".to_owned()]), "{output}");
    Ok(())
}

#[test]
fn vsa_rules_and_the_policy_threshold() -> TestResult {
    let dir = setup()?;
    let d = dir.path();
    let now = now_unix();
    // Signed by both keys: a, then b over the same statement (two envelopes merged).
    let both = |name: &str, predicate: &serde_json::Value| -> TestResult {
        sign(d, "a", VSA, predicate, &format!("{name}.a"))?;
        sign(d, "b", VSA, predicate, &format!("{name}.b"))?;
        let mut first: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(format!("{name}.a")))?)?;
        let second: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join(format!("{name}.b")))?)?;
        assert_eq!(first["payload"], second["payload"], "same statement, same bytes");
        let sig = second["signatures"][0].clone();
        first["signatures"].as_array_mut().ok_or("signatures")?.push(sig);
        std::fs::write(d.join(format!("{name}.intoto.jsonl")), first.to_string())?;
        Ok(())
    };
    both("passed", &vsa("PASSED", &["REPROVE_REPRODUCED", "SLSA_BUILD_LEVEL_1"], now))?;
    both("failed", &vsa("FAILED", &[], now))?;
    both("stale", &vsa("PASSED", &["REPROVE_REPRODUCED"], now - 8 * 86_400))?;
    let keys = ["a.pub", "b.pub"];
    let (code, failed, output) = verify(d, &keys, "vsa-passed.toml", "passed.intoto.jsonl")?;
    assert_eq!((code, failed.len()), (Some(0), 0), "{output}");
    let (code, failed, output) = verify(d, &keys, "vsa-passed.toml", "failed.intoto.jsonl")?;
    assert_eq!(code, Some(1), "{output}");
    assert_eq!(failed, ["vsa.verification_result", "vsa.verified_levels"], "{output}");
    assert!(output.contains("verificationResult is FAILED, the policy requires PASSED"), "{output}");
    let (code, failed, output) = verify(d, &keys, "vsa-passed.toml", "stale.intoto.jsonl")?;
    assert_eq!((code, failed), (Some(1), vec!["max_age".to_owned()]), "{output}");
    // The policy's threshold of 2: one signature is not enough.
    let (code, failed, output) = verify(d, &keys, "vsa-passed.toml", "passed.a")?;
    assert_eq!((code, failed), (Some(1), vec!["signatures".to_owned(), "threshold".to_owned()]), "{output}");
    assert!(
        output.contains("1 of 2 required distinct keys verified") && output.contains("threshold from the policy"),
        "{output}"
    );
    // With one key only, the policy's threshold cannot be met: bad input.
    let out =
        reprove(d, &["attest", "verify", "--key", "a.pub", "--policy", "vsa-passed.toml", "passed.intoto.jsonl"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("the policy's threshold 2 with 1 keys"), "{}", text(&out));
    Ok(())
}

#[test]
fn bad_policies_are_input_errors_with_a_location() -> TestResult {
    let dir = setup()?;
    let d = dir.path();
    sign(
        d,
        "a",
        PROVENANCE,
        &provenance(BUILDER, "git+https://example.com/acme/app", &digest('1'), now_unix()),
        "p.intoto.jsonl",
    )?;
    let cases: [(&str, &[u8], &str); 6] = [
        ("syntax.toml", b"version = 1\n[provenance]\nbuilder_ids = [\"a\",\n", "policy line 3, column"),
        (
            "typo.toml",
            b"version = 1\n\n[provenance]\nbuilder_id = [\"a\"]\n",
            "policy line 4, column 1: unknown field `builder_id`",
        ),
        ("type.toml", b"version = 1\nthreshold = \"two\"\n", "policy line 2, column 13"),
        ("age.toml", b"version = 1\nmax_age = \"a month\"\n", "policy rule max_age: \"a month\" is not a duration"),
        (
            "digest.toml",
            b"version = 1\n[provenance]\ntoolchain_digests = [\"sha256:abc\"]\n",
            "policy rule provenance.toolchain_digests",
        ),
        ("binary.toml", b"version = 1\n\xff\n", "not UTF-8"),
    ];
    for (name, contents, expected) in cases {
        std::fs::write(d.join(name), contents)?;
        let out = reprove(d, &["attest", "verify", "--key", "a.pub", "--policy", name, "p.intoto.jsonl"])?;
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(text(&out).contains(expected), "{name}: {}", text(&out));
    }
    let out = reprove(d, &["attest", "verify", "--key", "a.pub", "--policy", "missing.toml", "p.intoto.jsonl"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("missing.toml"), "{}", text(&out));
    Ok(())
}
