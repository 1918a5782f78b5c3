//! `reprove attest sign` and `reprove attest verify`: DSSE envelopes of in-toto statements
//! (`verify --image`: those attached to an image in its registry, see `attest_registry`).
//!
//! `sign` wraps a predicate file in an in-toto Statement v1 about the subject files and
//! signs it with a cosign-compatible private key, writing one DSSE envelope line
//! (`*.intoto.jsonl`) and/or a Sigstore bundle v0.3 (`*.sigstore.json`). `verify` reads
//! either kind of file (told apart by content), checks the envelope against one or more
//! public keys (with a threshold of distinct keys), then its statement, predicate type
//! and subject digest. Exit 0 valid, 1 invalid (the failed check is named), 2 bad input.
//!
//! Certificate bundles (`--trusted-root` and/or `--certificate-chain` instead of `--key`)
//! are verified as cosign verifies them: the signer's certificate first
//! (`attest::cert_verify`: key usage, code signing, the signing time from a verified
//! transparency-log entry or, with `--insecure-ignore-tlog`, the current time with a
//! warning, the chain, the identity), then the envelope with the certificate's key.
//! `sign --certificate` puts the signing key's certificate into the bundle.
//!
//! The checks themselves are the library's (`attest::verify`); this module reads the
//! files, says setup errors, hints and warnings in terms of its flags, and prints.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use attest::bundle::{Attestation, Bundle};
use attest::cert_verify::{Hint, SctCheck, Warning};
use attest::certificate::{IdentityRule, Matcher};
use attest::dsse::Envelope;
use attest::keys::{self, PublicKey, Signer as _};
use attest::policy::Policy;
use attest::statement::{ResourceDescriptor, Statement, PAYLOAD_TYPE_IN_TOTO};
use attest::trust_root::TrustMaterial;
use attest::verify::{CertificateTrust, Check, Requirements, Signers, TrustedKeys, Verifier, VerifyError};

use super::signing::{password, read_input, signing_certificate, write_new, CertificateArgs};
use crate::exit::{CommandResult, Failure, Verdict};

/// Sign and verify in-toto attestations in DSSE envelopes.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Sign a predicate about subject files; write a DSSE envelope (.intoto.jsonl).
    Sign(SignArgs),
    /// Verify a DSSE envelope, or the attestations of an image (--image): signatures,
    /// statement, predicate type, subject.
    Verify(Box<VerifyArgs>),
    /// Sign a provenance of the rebuild and a VSA of the reference from a `verify --json` report.
    Provenance(Box<super::provenance::ProvenanceArgs>),
    /// Attach attestations to an image digest in its registry (OCI 1.1 referrer and/or cosign's legacy .att).
    Push(Box<super::attest_registry::PushArgs>),
    /// List and download the attestations of an image digest (referrers and cosign's legacy .att).
    Fetch(Box<super::attest_registry::FetchArgs>),
}

/// Arguments of `reprove attest sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The encrypted private key (cosign format); its password from COSIGN_PASSWORD or a prompt.
    #[arg(long, value_name = "KEY", required_unless_present = "keyless", conflicts_with = "keyless")]
    key: Option<PathBuf>,
    /// Sign keyless with a Fulcio certificate and a Rekor entry (cargo feature `keyless`;
    /// see docs/keyless.md). Without the feature: an input error (exit 2).
    #[arg(long)]
    keyless: bool,
    /// The predicate type URI (such as `https://slsa.dev/provenance/v1`).
    #[arg(long, value_name = "URI")]
    predicate_type: String,
    /// The predicate: a JSON file.
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// A subject file, named by its file name and sha256; repeat for several.
    #[arg(long, value_name = "FILE", required = true)]
    subject: Vec<PathBuf>,
    /// Write the envelope here instead of stdout (refuses to overwrite).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also (or only, without --out) write a Sigstore bundle v0.3 here (`*.sigstore.json`).
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    certificate: CertificateArgs,
}

/// Arguments of `reprove attest verify`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("certificate_trust").args(["trusted_root", "certificate_chain"]).multiple(true)))]
pub(crate) struct VerifyArgs {
    /// A trusted public key (PEM PUBLIC KEY); repeat for several.
    #[arg(
        long,
        value_name = "PUB",
        required_unless_present_any = ["keyless", "trusted_root", "certificate_chain"],
        conflicts_with_all = ["keyless", "trusted_root", "certificate_chain"]
    )]
    key: Vec<PathBuf>,
    /// Verify a certificate bundle against this Sigstore trusted root (JSON:
    /// certificateAuthorities, tlogs; the protobuf-specs TrustedRoot form).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Verify a certificate bundle against this CA chain (PEM: the signing
    /// certificate's issuer first, the root last), as cosign's --certificate-chain.
    #[arg(long, value_name = "PEM")]
    certificate_chain: Option<PathBuf>,
    /// The signing certificate's email or URI SAN, exactly.
    #[arg(long, value_name = "SAN", requires = "certificate_trust", conflicts_with = "certificate_identity_regexp")]
    certificate_identity: Option<String>,
    /// A regular expression (RE2 syntax, unanchored) one SAN must match.
    #[arg(long, value_name = "REGEXP", requires = "certificate_trust")]
    certificate_identity_regexp: Option<String>,
    /// The OIDC issuer of the signing certificate (Fulcio extension), exactly.
    #[arg(long, value_name = "URL", requires = "certificate_trust", conflicts_with = "certificate_oidc_issuer_regexp")]
    certificate_oidc_issuer: Option<String>,
    /// A regular expression (RE2 syntax, unanchored) the OIDC issuer must match.
    #[arg(long, value_name = "REGEXP", requires = "certificate_trust")]
    certificate_oidc_issuer_regexp: Option<String>,
    /// INSECURE: without a verified transparency-log entry, check the certificate at the
    /// current time instead of a proven signing time (cosign's flag); warns loudly.
    #[arg(long, requires = "certificate_trust")]
    insecure_ignore_tlog: bool,
    /// INSECURE: accept a signing certificate without a verified signed certificate
    /// timestamp (certificate transparency), as cosign's flag; warns loudly.
    #[arg(long, requires = "certificate_trust")]
    insecure_ignore_sct: bool,
    /// Require an RFC 3161 timestamp of the bundle, verified with a timestamping
    /// authority of the trusted root, as a signing time (cosign's flag); with
    /// --insecure-ignore-tlog it is the only signing time.
    #[arg(long, requires = "certificate_trust")]
    use_signed_timestamps: bool,
    /// Verify a keyless attestation (certificate identity, Rekor entry; cargo feature
    /// `keyless`, see docs/keyless.md). Without the feature: an input error (exit 2).
    #[arg(long)]
    keyless: bool,
    /// How many distinct trusted keys must have signed (default 1, or the policy's
    /// `threshold`; the higher of the two applies).
    #[arg(long, value_name = "N")]
    threshold: Option<usize>,
    /// A verification policy (TOML, schemas/policy.schema.json) whose rules the
    /// statement must satisfy; each failed rule is named.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The subject digest that must be attested, as sha256:HEX.
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "subject")]
    digest: Option<String>,
    /// A file whose sha256 must be attested.
    #[arg(long, value_name = "FILE")]
    subject: Option<PathBuf>,
    /// The predicate type the statement must have.
    #[arg(long, value_name = "URI")]
    predicate_type: Option<String>,
    /// Print one JSON document (schemas/attest-verify.schema.json, with --image
    /// schemas/attest-verify-image.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// The attestation: a DSSE envelope (JSON document or one-line .intoto.jsonl) or a
    /// Sigstore bundle (.sigstore.json); the kind is detected from the content.
    #[arg(required_unless_present = "image", conflicts_with = "image")]
    envelope: Option<PathBuf>,
    /// Fetch the attestations of this image from its registry instead (as `attest fetch`)
    /// and pass if at least one passes every check; the subject that must be attested is
    /// the image digest unless --digest or --subject says otherwise.
    #[arg(long, value_name = "REF@sha256:…")]
    image: Option<String>,
    #[command(flatten)]
    limits: super::attest_registry::LimitsArgs,
    #[command(flatten)]
    cache: super::attest_registry::FetchCacheArgs,
    #[command(flatten)]
    registry: super::toolchain::RegistryArgs,
}

pub(crate) fn run(command: Command) -> CommandResult {
    match command {
        Command::Sign(args) => sign(args),
        Command::Verify(args) => verify(*args),
        Command::Provenance(args) => super::provenance::run(*args),
        Command::Push(args) => super::attest_registry::push(*args),
        Command::Fetch(args) => super::attest_registry::fetch(*args),
    }
}

/// The sha256 of a subject file, streamed.
fn hash_input(path: &Path) -> Result<String, Failure> {
    std::fs::File::open(path)
        .and_then(attest::statement::sha256_hex_reader)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(Failure::input)
}

/// `--keyless`: what this build can do about it (see docs/keyless.md).
fn keyless_unavailable(command: &str) -> Failure {
    let verify = "certificate bundles (Fulcio-style certificates, Rekor entries) are verified offline with \
                  `attest verify --trusted-root FILE --certificate-identity … --certificate-oidc-issuer …`";
    if cfg!(feature = "keyless") {
        Failure::input(anyhow!(
            "{command} --keyless: obtaining a certificate from Fulcio and uploading to Rekor are not implemented \
             (they need the live services; see docs/keyless.md); sign with --key [--certificate CERT.pem]; {verify}"
        ))
    } else {
        Failure::input(anyhow!(
            "{command} --keyless: this reprove was built without the `keyless` cargo feature \
             (cargo build --features keyless; see docs/keyless.md); sign with --key [--certificate CERT.pem]; {verify}"
        ))
    }
}

fn sign(args: SignArgs) -> CommandResult {
    let key_path = match (&args.key, args.keyless) {
        (Some(path), false) => path.clone(),
        _ => return Err(keyless_unavailable("attest sign")),
    };
    let key_pem = String::from_utf8(read_input(&key_path)?)
        .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", key_path.display())))?;
    let predicate_bytes = read_input(&args.predicate)?;
    let predicate: serde_json::Value = serde_json::from_slice(&predicate_bytes)
        .with_context(|| format!("{}: not JSON", args.predicate.display()))
        .map_err(Failure::input)?;
    if !predicate.is_object() {
        return Err(Failure::input(anyhow!("{}: the predicate must be a JSON object", args.predicate.display())));
    }
    let mut subjects = Vec::with_capacity(args.subject.len());
    for path in &args.subject {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        subjects.push(ResourceDescriptor::sha256(name, hash_input(path)?));
    }
    let password = password(false)?;
    let signer = keys::read_encrypted_private_key(&key_pem, password.expose())
        .with_context(|| format!("reading the private key {}", key_path.display()))
        .map_err(Failure::input)?;
    let certificate = signing_certificate(&args.certificate, signer.public_key())?;
    if certificate.is_some() && args.bundle.is_none() {
        return Err(Failure::input(anyhow!(
            "--certificate is written into the Sigstore bundle: give --bundle FILE (a DSSE envelope line cannot carry it)"
        )));
    }
    let statement = Statement::new(subjects, args.predicate_type, predicate);
    let payload = serde_json::to_vec(&statement).context("encoding the statement").map_err(Failure::infrastructure)?;
    let envelope = Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &payload, &[&signer]).map_err(Failure::infrastructure)?;
    let mut line =
        serde_json::to_string(&envelope).context("encoding the envelope").map_err(Failure::infrastructure)?;
    line.push('\n');
    if let Some(path) = &args.bundle {
        let bundle = match &certificate {
            Some(der) => Bundle::with_certificate(envelope, der),
            None => Bundle::new(envelope, Some(signer.public_key())),
        };
        let mut text =
            serde_json::to_string(&bundle).context("encoding the bundle").map_err(Failure::infrastructure)?;
        text.push('\n');
        write_new(path, 0o644, text.as_bytes())?;
    }
    match &args.out {
        Some(path) => write_new(path, 0o644, line.as_bytes())?,
        None if args.bundle.is_some() => {}
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(line.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing the envelope")
                .map_err(Failure::infrastructure)?;
        }
    }
    Ok(Verdict::Positive)
}

fn verify(args: VerifyArgs) -> CommandResult {
    if args.keyless {
        return Err(keyless_unavailable("attest verify"));
    }
    let certificate_mode = args.trusted_root.is_some() || args.certificate_chain.is_some();
    let mut trust = TrustMaterial::default();
    if let Some(path) = &args.trusted_root {
        trust = TrustMaterial::from_trusted_root_json(&read_input(path)?)
            .with_context(|| format!("reading the trusted root {}", path.display()))
            .map_err(Failure::input)?;
    }
    if let Some(path) = &args.certificate_chain {
        let text = String::from_utf8(read_input(path)?)
            .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", path.display())))?;
        trust
            .add_pem_chain(&text, &format!("--certificate-chain {}", path.display()))
            .with_context(|| format!("reading the certificate chain {}", path.display()))
            .map_err(Failure::input)?;
    }
    let identities = identity_rules(&args)?;
    let mut trusted = TrustedKeys::default();
    for path in &args.key {
        let text = String::from_utf8(read_input(path)?)
            .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", path.display())))?;
        let key = PublicKey::from_pem(&text)
            .with_context(|| format!("reading the public key {}", path.display()))
            .map_err(Failure::input)?;
        trusted.add(key).map_err(|e| verify_setup_failure(&e, &args))?;
    }
    let policy = match &args.policy {
        None => None,
        Some(path) => {
            let bytes = read_input(path)?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| Failure::input(anyhow!("{}: not UTF-8 text: {e}", path.display())))?;
            Some(
                Policy::from_toml(text)
                    .with_context(|| format!("reading the policy {}", path.display()))
                    .map_err(Failure::input)?,
            )
        }
    };
    let signers = if certificate_mode {
        Signers::Certificate(CertificateTrust {
            trust,
            identities,
            insecure_current_time: args.insecure_ignore_tlog,
            sct: if args.insecure_ignore_sct { SctCheck::InsecureIgnore } else { SctCheck::Required },
            signed_timestamps: args.use_signed_timestamps,
        })
    } else {
        Signers::Keys(trusted)
    };
    let requirements = Requirements { threshold: args.threshold, predicate_type: args.predicate_type.clone(), policy };
    let verifier = Verifier::new(signers, requirements).map_err(|e| verify_setup_failure(&e, &args))?;
    let subject_sha256 = match (&args.digest, &args.subject) {
        (Some(d), _) => {
            Some(attest::verify::parse_sha256_digest(d).map_err(|e| Failure::input(anyhow!("--digest {e}")))?)
        }
        (None, Some(path)) => Some(hash_input(path)?),
        (None, None) => None,
    };
    let envelope = match (&args.envelope, &args.image) {
        (Some(path), _) => path.clone(),
        (None, Some(image)) => return verify_image(&args, image, &verifier, subject_sha256),
        (None, None) => return Err(Failure::input(anyhow!("give an attestation file or --image"))),
    };
    let attestation = Attestation::detect(&read_input(&envelope)?)
        .with_context(|| format!("reading {}", envelope.display()))
        .map_err(Failure::input)?;

    let verification = verifier.verify(&attestation, subject_sha256.as_deref(), stdx::time::now_unix());
    let warnings: Vec<String> = verification.warnings.iter().map(warning_text).collect();
    for warning in &warnings {
        eprintln!("{warning}");
    }
    let valid = verification.valid;
    let checks: Vec<Check> = verification.checks.into_iter().map(with_flag_hint).collect();
    if args.json {
        let doc = serde_json::json!({
            "schemaVersion": 1,
            "verdict": if valid { "valid" } else { "invalid" },
            "envelope": envelope.display().to_string(),
            "format": attestation.format().as_str(),
            "policy": args.policy.as_ref().map(|p| p.display().to_string()),
            "checks": checks,
            "warnings": warnings,
        });
        println!("{doc}");
    } else {
        for check in &checks {
            let status = if check.passed { "ok  " } else { "FAIL" };
            match &check.rule {
                Some(rule) => println!("{status} {} {rule}: {}", check.name, check.detail),
                None => println!("{status} {}: {}", check.name, check.detail),
            }
        }
        println!("{}: {}", envelope.display(), if valid { "valid" } else { "invalid" });
    }
    Ok(if valid { Verdict::Positive } else { Verdict::Negative })
}

/// `attest verify --image`: every attestation of the image through the same checks;
/// valid when at least one passes all of them.
fn verify_image(args: &VerifyArgs, image: &str, verifier: &Verifier, subject_sha256: Option<String>) -> CommandResult {
    let (pinned, report) = super::attest_registry::fetch_report(image, &args.registry, &args.limits, &args.cache)?;
    let subject_sha256 = subject_sha256.unwrap_or_else(|| pinned.digest().hex().to_string());
    let now = stdx::time::now_unix();
    let mut warnings: Vec<String> = Vec::new();
    let mut tried = Vec::with_capacity(report.attestations.len());
    for fetched in &report.attestations {
        let (valid, checks) = match Attestation::detect(&fetched.bytes) {
            Ok(attestation) => {
                let verification = verifier.verify(&attestation, Some(&subject_sha256), now);
                for warning in verification.warnings.iter().map(warning_text) {
                    if !warnings.contains(&warning) {
                        warnings.push(warning);
                    }
                }
                (verification.valid, verification.checks.into_iter().map(with_flag_hint).collect::<Vec<_>>())
            }
            Err(e) => {
                (false, vec![Check { name: "statement", rule: None, passed: false, detail: e.to_string(), hint: None }])
            }
        };
        tried.push((fetched, valid, checks));
    }
    for warning in &warnings {
        eprintln!("{warning}");
    }
    let passing = tried.iter().filter(|(_, valid, _)| *valid).count();
    let valid = passing > 0;
    if args.json {
        let attestations: Vec<serde_json::Value> = tried
            .iter()
            .map(|(f, valid, checks)| {
                let mut v = super::attest_registry::fetched_json(f);
                v["verdict"] = (if *valid { "valid" } else { "invalid" }).into();
                v["checks"] = serde_json::to_value(checks).unwrap_or_default();
                v
            })
            .collect();
        let doc = serde_json::json!({
            "schemaVersion": 1,
            "verdict": if valid { "valid" } else { "invalid" },
            "image": pinned.to_string(),
            "digest": pinned.digest().to_string(),
            "kind": super::attest_registry::kind_json(report.subject.kind),
            "referrersPath": report.referrers_path.as_str(),
            "subject": format!("sha256:{subject_sha256}"),
            "policy": args.policy.as_ref().map(|p| p.display().to_string()),
            "attestations": attestations,
            "notes": report.notes,
            "warnings": warnings,
        });
        println!("{doc}");
    } else {
        super::attest_registry::print_header(&pinned, &report);
        for (i, (f, valid, checks)) in tried.iter().enumerate() {
            println!(
                "attestation {}/{}: {} {} ({}, {})",
                i + 1,
                tried.len(),
                f.format.as_str(),
                f.predicate_type.as_deref().unwrap_or("(unknown predicate type)"),
                super::attest_registry::source_text(f),
                f.digest
            );
            for check in checks {
                let status = if check.passed { "ok  " } else { "FAIL" };
                match &check.rule {
                    Some(rule) => println!("  {status} {} {rule}: {}", check.name, check.detail),
                    None => println!("  {status} {}: {}", check.name, check.detail),
                }
            }
            println!("  {}", if *valid { "valid" } else { "invalid" });
        }
        for note in &report.notes {
            println!("note: {note}");
        }
        match (valid, tried.len()) {
            (_, 0) => println!("{pinned}: invalid (no attestations found)"),
            (true, n) => println!("{pinned}: valid ({passing} of {n} attestations pass every check)"),
            (false, n) => println!("{pinned}: invalid (none of {n} attestations passes every check)"),
        }
    }
    Ok(if valid { Verdict::Positive } else { Verdict::Negative })
}

/// A verification that cannot be set up, said in terms of the flags.
fn verify_setup_failure(error: &VerifyError, args: &VerifyArgs) -> Failure {
    let key_path = |i: usize| args.key.get(i).map_or_else(String::new, |p| p.display().to_string());
    Failure::input(match error {
        VerifyError::DuplicateKey { first, second } => {
            anyhow!("--key {} is the same key as --key {}", key_path(*second), key_path(*first))
        }
        VerifyError::NoIdentity => anyhow!(
            "a certificate bundle is only as good as the identity it must name: give --certificate-identity (or \
             --certificate-identity-regexp) and --certificate-oidc-issuer (or --certificate-oidc-issuer-regexp), \
             or a --policy with a [certificate] section"
        ),
        VerifyError::Threshold { requested, policy, required, available, certificate } => {
            let from = match (requested, policy) {
                (Some(0), _) => "--threshold 0".to_owned(),
                (_, Some(t)) if t == required => format!("the policy's threshold {t}"),
                _ => format!("--threshold {required}"),
            };
            anyhow!(
                "{from} with {available} keys: it must be between 1 and the number of keys{}",
                if *certificate { " (a certificate bundle has one signer)" } else { "" }
            )
        }
    })
}

/// A check's detail with the flag its hint concerns: the flag that skipped or required
/// it, or the one that would help.
fn with_flag_hint(mut check: Check) -> Check {
    let Some(hint) = check.hint.take() else { return check };
    let detail = &check.detail;
    check.detail = match hint {
        Hint::UseKey => format!("{detail}: verify it with --key"),
        Hint::MayUseCurrentTime => {
            format!("{detail} (--insecure-ignore-tlog checks the certificate at the current time instead)")
        }
        Hint::MayIgnoreSct => format!("{detail}; --insecure-ignore-sct skips this check"),
        Hint::SkippedForCurrentTime => skipped_by("--insecure-ignore-tlog", detail),
        Hint::SkippedSct => skipped_by("--insecure-ignore-sct", detail),
        Hint::SignedTimestampsRequired => format!("--use-signed-timestamps: {detail}"),
    };
    check
}

/// `SKIPPED: …` as `SKIPPED (FLAG): …`.
fn skipped_by(flag: &str, detail: &str) -> String {
    match detail.strip_prefix("SKIPPED") {
        Some(rest) => format!("SKIPPED ({flag}){rest}"),
        None => format!("{detail} ({flag})"),
    }
}

/// A warning of the verification, naming the flag that asked for it.
fn warning_text(warning: &Warning) -> String {
    let flag = match warning {
        Warning::InsecureCurrentTime | Warning::InsecureNoTlog => "--insecure-ignore-tlog",
        Warning::InsecureIgnoreSct => "--insecure-ignore-sct",
    };
    format!("WARNING: {flag}: {warning}")
}

/// The identity rule of the `--certificate-identity*` and `--certificate-oidc-issuer*`
/// flags: none, or one with both halves (as cosign requires).
fn identity_rules(args: &VerifyArgs) -> Result<Vec<IdentityRule>, Failure> {
    let subject = match (&args.certificate_identity, &args.certificate_identity_regexp) {
        (Some(exact), _) => Some(Matcher::Exact(exact.clone())),
        (None, Some(r)) => Some(
            Matcher::regexp("subject", r).map_err(|e| Failure::input(anyhow!("--certificate-identity-regexp: {e}")))?,
        ),
        (None, None) => None,
    };
    let issuer = match (&args.certificate_oidc_issuer, &args.certificate_oidc_issuer_regexp) {
        (Some(exact), _) => Some(Matcher::Exact(exact.clone())),
        (None, Some(r)) => Some(
            Matcher::regexp("issuer", r)
                .map_err(|e| Failure::input(anyhow!("--certificate-oidc-issuer-regexp: {e}")))?,
        ),
        (None, None) => None,
    };
    match (subject, issuer) {
        (Some(subject), Some(issuer)) => Ok(vec![IdentityRule { subject, issuer }]),
        (None, None) => Ok(Vec::new()),
        (Some(_), None) => Err(Failure::input(anyhow!(
            "--certificate-identity needs --certificate-oidc-issuer (or --certificate-oidc-issuer-regexp)"
        ))),
        (None, Some(_)) => Err(Failure::input(anyhow!(
            "--certificate-oidc-issuer needs --certificate-identity (or --certificate-identity-regexp)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(hint: Hint, detail: &str) -> String {
        let check = Check { name: "x", rule: None, passed: false, detail: detail.to_owned(), hint: Some(hint) };
        with_flag_hint(check).detail
    }

    /// The library's details name no flag; the CLI's output is what it was before
    /// the checks moved into the library.
    #[test]
    fn hints_are_worded_with_the_flags() {
        assert_eq!(
            rendered(Hint::UseKey, "a bare DSSE envelope carries no certificate"),
            "a bare DSSE envelope carries no certificate: verify it with --key"
        );
        assert_eq!(
            rendered(Hint::MayUseCurrentTime, "the bundle has no transparency-log entry to prove the signing time"),
            "the bundle has no transparency-log entry to prove the signing time \
             (--insecure-ignore-tlog checks the certificate at the current time instead)"
        );
        assert_eq!(
            rendered(Hint::MayIgnoreSct, "the signing certificate embeds no SCT (certificate transparency)"),
            "the signing certificate embeds no SCT (certificate transparency); --insecure-ignore-sct skips this check"
        );
        assert_eq!(
            rendered(Hint::SkippedSct, "SKIPPED: no signed certificate timestamp verified"),
            "SKIPPED (--insecure-ignore-sct): no signed certificate timestamp verified"
        );
        assert_eq!(
            rendered(
                Hint::SkippedForCurrentTime,
                "SKIPPED: no transparency-log entry verified; using the current time"
            ),
            "SKIPPED (--insecure-ignore-tlog): no transparency-log entry verified; using the current time"
        );
        assert_eq!(
            rendered(Hint::SignedTimestampsRequired, "the bundle has no RFC 3161 timestamp"),
            "--use-signed-timestamps: the bundle has no RFC 3161 timestamp"
        );
    }

    #[test]
    fn warnings_name_their_flag() {
        assert!(warning_text(&Warning::InsecureCurrentTime)
            .starts_with("WARNING: --insecure-ignore-tlog: no transparency-log entry was verified; the certificate's"));
        assert!(warning_text(&Warning::InsecureNoTlog)
            .starts_with("WARNING: --insecure-ignore-tlog: no transparency-log entry was verified; the signing time"));
        assert!(warning_text(&Warning::InsecureIgnoreSct)
            .starts_with("WARNING: --insecure-ignore-sct: the certificate's signed certificate timestamps"));
    }
}
