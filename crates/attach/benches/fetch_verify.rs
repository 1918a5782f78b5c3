//! In-process fetch and verify of the attestations of one image digest, as the
//! admission webhook (issue 17) will run it on a cache miss: a tokio runtime and a
//! registry client that live as long as the process, and for each decision
//! `attach::fetch` (the subject, its referrers, the legacy `.att` image, each
//! attestation's manifest and blob) followed by `attest::verify` of each attestation
//! against the trusted key, the image digest and the predicate type; the decision
//! passes when one attestation passes every check, as `reprove attest verify --image`
//! decides. No benchmark framework: a timed loop per case, like `attest`'s throughput
//! bench, for at least `BENCH_SECONDS` (default 2) after a short warm-up.
//!
//! It needs a registry with an image and its attestations: `ci/bench-attest` starts
//! the registries on 127.0.0.1, pushes them and runs it as
//!
//!   cargo bench -p attach --bench fetch_verify -- --key k.pub --type URI \
//!       LABEL,REF@sha256:…[,COSIGN_MS…]
//!
//! Each case is measured four ways:
//! - **warm**: one `Repository` (its HTTP connections, credentials and content cache)
//!   reused for every decision, the webhook's steady state: the image manifest, the
//!   referrer manifests and the attestation blobs come from the cache, the referrers
//!   list and the legacy tag are asked every time;
//! - **new client**: a new `Repository` per decision (new connections, the
//!   registry's authentication handshake) sharing the process's `Cache`, as the
//!   webhook keeps one cache for every registry client;
//! - **cold**: a new `Repository` with an empty cache per decision: every request is
//!   made, the first decision on an image;
//! - **verify only**: the signature and statement checks of what one fetch returned,
//!   so that warm − verify is the registry's share.
//!
//! Given the mean time of `cosign verify-attestation` on the same image (milliseconds,
//! one or more: v2, v3), it prints how many times faster each way is. Without a case
//! it says so and exits 0: `cargo bench` over the workspace does not fail for lack of a
//! registry.

use std::time::{Duration, Instant};

use attest::bundle::Attestation;
use attest::keys::PublicKey;
use attest::verify::{Requirements, Signers, TrustedKeys, Verifier};
use oci::referrers::{Limits, Repository};
use oci::{PinnedImage, RegistryOptions};

type BoxError = Box<dyn std::error::Error>;

/// One image to fetch and verify.
struct Case {
    label: String,
    image: PinnedImage,
    /// Mean invocation times of cosign on the same image, in ms, as given.
    cosign_ms: Vec<f64>,
}

struct Args {
    key: String,
    predicate_type: String,
    cases: Vec<Case>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut key = None;
    let mut predicate_type = None;
    let mut cases = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--key" => key = args.next(),
            "--type" => predicate_type = args.next(),
            case => {
                let mut parts = case.split(',');
                let (Some(label), Some(image)) = (parts.next(), parts.next()) else {
                    return Err(format!("{case}: expected LABEL,REF@sha256:…[,COSIGN_MS…]").into());
                };
                let cosign_ms = parts.map(str::parse::<f64>).collect::<Result<Vec<_>, _>>()?;
                cases.push(Case { label: label.to_string(), image: image.parse()?, cosign_ms });
            }
        }
    }
    Ok(Args {
        key: key.unwrap_or_default(),
        predicate_type: predicate_type.unwrap_or_else(|| "https://slsa.dev/provenance/v1".to_string()),
        cases,
    })
}

/// Per-iteration times of `f`, run for at least `budget` after a warm-up of a tenth of it.
fn timed(budget: Duration, mut f: impl FnMut() -> Result<(), BoxError>) -> Result<Stats, BoxError> {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        f()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || times.len() < 10 {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Stats::of(times))
}

/// Milliseconds per iteration.
struct Stats {
    n: usize,
    mean: f64,
    median: f64,
    min: f64,
    p99: f64,
}

impl Stats {
    fn of(mut times: Vec<f64>) -> Stats {
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let at = |q: f64| times[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        Stats { n, mean: times.iter().sum::<f64>() / n as f64, median: at(0.5), min: times[0], p99: at(0.99) }
    }

    fn cell(&self) -> String {
        if self.mean < 1.0 {
            format!("{:.3} / {:.3} / {:.3} / {:.3} ({})", self.mean, self.median, self.min, self.p99, self.n)
        } else {
            format!("{:.2} / {:.2} / {:.2} / {:.2} ({})", self.mean, self.median, self.min, self.p99, self.n)
        }
    }
}

/// Fetches the attestations of `image` and verifies them; an error unless one passes.
async fn decide(repository: &Repository, image: &PinnedImage, verifier: &Verifier) -> Result<usize, BoxError> {
    let report = attach::fetch(repository, image.digest(), Limits::default()).await?;
    verify_all(&report, image, verifier)
}

/// How many of `report`'s attestations pass every check; an error when none does.
fn verify_all(report: &attach::FetchReport, image: &PinnedImage, verifier: &Verifier) -> Result<usize, BoxError> {
    let now = stdx::time::now_unix();
    let mut valid = 0;
    for fetched in &report.attestations {
        let attestation = Attestation::detect(&fetched.bytes)?;
        if verifier.verify(&attestation, Some(image.digest().hex()), now).valid {
            valid += 1;
        }
    }
    if valid == 0 {
        return Err(format!("{image}: none of {} attestations verifies", report.attestations.len()).into());
    }
    Ok(valid)
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    if args.cases.is_empty() {
        eprintln!("fetch_verify: no image given; ci/bench-attest starts a registry and runs this bench");
        return Ok(());
    }
    let seconds: f64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);
    let pem = std::fs::read_to_string(&args.key).map_err(|e| format!("--key {}: {e}", args.key))?;
    let mut keys = TrustedKeys::default();
    keys.add(PublicKey::from_pem(&pem)?)?;
    let requirements = Requirements { threshold: None, predicate_type: Some(args.predicate_type), policy: None };
    let verifier = Verifier::new(Signers::Keys(keys), requirements)?;
    // The webhook's runtime: one thread serves the requests (current-thread, as the CLI's).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let options = RegistryOptions::default();

    println!("in-process, {seconds} s per way; ms per decision: mean / median / min / p99 (decisions)");
    println!();
    println!("| image | attestations (valid) | warm | new client | cold | verify only | cosign mean | cosign ÷ warm | cosign ÷ new client | cosign ÷ cold |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for case in &args.cases {
        let repository = Repository::new(case.image.reference(), &options)?;
        let report = runtime.block_on(attach::fetch(&repository, case.image.digest(), Limits::default()))?;
        let valid = verify_all(&report, &case.image, &verifier)?;
        let warm = timed(budget, || runtime.block_on(decide(&repository, &case.image, &verifier)).map(|_| ()))?;
        let shared = repository.cache().clone();
        let new_client = timed(budget, || {
            runtime.block_on(async {
                let repository = Repository::new(case.image.reference(), &options)?.with_cache(shared.clone());
                decide(&repository, &case.image, &verifier).await.map(|_| ())
            })
        })?;
        let cold = timed(budget, || {
            runtime.block_on(async {
                let repository = Repository::new(case.image.reference(), &options)?;
                decide(&repository, &case.image, &verifier).await.map(|_| ())
            })
        })?;
        let verify = timed(budget, || verify_all(&report, &case.image, &verifier).map(|_| ()))?;
        let join = |f: &dyn Fn(f64) -> String| case.cosign_ms.iter().map(|&c| f(c)).collect::<Vec<_>>().join(" / ");
        println!(
            "| {} | {} ({valid}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            case.label,
            report.attestations.len(),
            warm.cell(),
            new_client.cell(),
            cold.cell(),
            verify.cell(),
            join(&|c| format!("{c:.1} ms")),
            join(&|c| format!("{:.0}×", c / warm.mean)),
            join(&|c| format!("{:.0}×", c / new_client.mean)),
            join(&|c| format!("{:.0}×", c / cold.mean)),
        );
    }
    Ok(())
}
