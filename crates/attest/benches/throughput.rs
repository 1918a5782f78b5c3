//! Sign and verify throughput of DSSE envelopes, in envelopes per second, for ECDSA
//! P-256 and Ed25519, on a realistic provenance statement (from `attest::generate`,
//! with 40 modules: about 6 KB of payload). No benchmark framework: a timed loop per
//! case, run for at least `BENCH_SECONDS` (default 2) each, after a short warm-up.
//!
//!   cargo bench -p attest --bench throughput
//!
//! Each verification decodes the envelope's base64, rebuilds the PAE and checks the
//! signature, as `attest verify` does (JSON parsing of the envelope included).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use attest::dsse::Envelope;
use attest::generate::{provenance_statement, sign, Artifact, Module, ProvenanceInput, ToolchainImage};
use attest::keys::{Algorithm, KeySigner, Signer as _};
use attest::statement::PAYLOAD_TYPE_IN_TOTO;

fn statement_input() -> ProvenanceInput {
    let hex = |c: char| c.to_string().repeat(64);
    ProvenanceInput {
        subject: Artifact { name: "app".into(), sha256: hex('a') },
        source_uri: "git+https://example.com/acme/app".into(),
        source_rev: "0123456789abcdef0123456789abcdef01234567".into(),
        source_module: None,
        package: "./cmd/app".into(),
        goos: "linux".into(),
        goarch: "amd64".into(),
        arch_level: Some("GOAMD64=v1".into()),
        flags: vec!["-trimpath".into()],
        ldflags: Some("-s -w".into()),
        env: BTreeMap::from([("CGO_ENABLED".into(), "0".into())]),
        toolchain: ToolchainImage { reference: "golang:1.22.5".into(), digest: format!("sha256:{}", hex('b')) },
        go_mod_sha256: hex('c'),
        go_sum_sha256: Some(hex('d')),
        workspace_files: Vec::new(),
        modules: (0..40)
            .map(|i| Module {
                path: format!("example.com/module{i}"),
                version: format!("v1.{i}.0"),
                h1: "h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=".into(),
            })
            .collect(),
        builder_id: "https://reprove.example/builders/ci".into(),
        invocation_id: "bench".into(),
        started_on: "2026-01-01T10:00:00Z".into(),
        finished_on: "2026-01-01T10:02:30Z".into(),
        ..ProvenanceInput::default()
    }
}

/// Runs `f` repeatedly for `budget`; returns operations per second.
fn rate(budget: Duration, mut f: impl FnMut() -> bool) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        assert!(f());
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..16 {
            assert!(f());
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);
    let statement = provenance_statement(&statement_input())?;
    let payload_len = serde_json::to_vec(&statement)?.len();
    println!("payload: {payload_len} bytes of in-toto provenance statement; {seconds} s per case");
    println!("| algorithm | sign (envelopes/s) | verify (envelopes/s) |");
    println!("|---|---:|---:|");
    for (name, algorithm) in [("ECDSA P-256", Algorithm::EcdsaP256Sha256), ("Ed25519", Algorithm::Ed25519)] {
        let (signer, _) = KeySigner::generate(algorithm)?;
        let keys = [signer.public_key().clone()];
        let signs = rate(budget, || sign(&statement, &[&signer]).is_ok());
        let line = serde_json::to_vec(&sign(&statement, &[&signer])?)?;
        let verifies =
            rate(budget, || Envelope::from_json(&line).is_ok_and(|e| e.verify(PAYLOAD_TYPE_IN_TOTO, &keys, 1).is_ok()));
        println!("| {name} | {signs:.0} | {verifies:.0} |");
    }
    Ok(())
}
