//! `reprove attest sign` and `reprove attest verify`: DSSE envelopes of in-toto statements.
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

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use attest::bundle::{self, Attestation, Bundle};
use attest::cert_verify::{self, SctCheck, SignerOptions, SigningTime};
use attest::certificate::{IdentityRule, Matcher, SignerIdentity, SigningCertificate};
use attest::dsse::{DsseError, Envelope};
use attest::keys::{self, PublicKey, Secret, Signer as _};
use attest::policy::Policy;
use attest::statement::{ResourceDescriptor, Statement, PAYLOAD_TYPE_IN_TOTO, STATEMENT_TYPE_V0_1, STATEMENT_TYPE_V1};
use attest::trust_root::TrustMaterial;

use crate::exit::{CommandResult, Failure, Verdict};

/// Sign and verify in-toto attestations in DSSE envelopes.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Sign a predicate about subject files; write a DSSE envelope (.intoto.jsonl).
    Sign(SignArgs),
    /// Verify a DSSE envelope: signatures, statement, predicate type, subject.
    Verify(VerifyArgs),
    /// Sign a provenance of the rebuild and a VSA of the reference from a `verify --json` report.
    Provenance(Box<super::provenance::ProvenanceArgs>),
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

/// `--certificate` and `--certificate-chain` of the signing commands (cosign's
/// `sign-blob`/`attest-blob` flags): the signing key's certificate goes into the bundle.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct CertificateArgs {
    /// The signing key's X.509 certificate (PEM), written into the Sigstore bundle
    /// instead of a public-key hint; its public key must be the signing key's, and it
    /// must allow code signing.
    #[arg(long, value_name = "CERT.pem")]
    pub(crate) certificate: Option<PathBuf>,
    /// The certificate's issuing chain (PEM: its issuer first, the root last): the
    /// certificate must chain to it now. Not written into the v0.3 bundle (verifiers
    /// take the chain from their trusted root or --certificate-chain).
    #[arg(long, value_name = "CHAIN.pem", requires = "certificate")]
    pub(crate) certificate_chain: Option<PathBuf>,
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
    /// Print one JSON document (schemas/attest-verify.schema.json) instead of text.
    #[arg(long)]
    json: bool,
    /// The attestation: a DSSE envelope (JSON document or one-line .intoto.jsonl) or a
    /// Sigstore bundle (.sigstore.json); the kind is detected from the content.
    envelope: PathBuf,
}

pub(crate) fn run(command: Command) -> CommandResult {
    match command {
        Command::Sign(args) => sign(args),
        Command::Verify(args) => verify(args),
        Command::Provenance(args) => super::provenance::run(*args),
    }
}

/// The sha256 of a subject file, streamed.
fn hash_input(path: &Path) -> Result<String, Failure> {
    std::fs::File::open(path)
        .and_then(attest::statement::sha256_hex_reader)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(Failure::input)
}

fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display())).map_err(Failure::input)
}

/// The key password: `COSIGN_PASSWORD` if set (even empty, as cosign), otherwise a
/// prompt on the terminal with echo off; without a terminal, an input error.
pub(crate) fn password(confirm: bool) -> Result<Secret, Failure> {
    if let Some(value) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(Secret::new(value.into_vec()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::input(anyhow!(
            "no password: COSIGN_PASSWORD is not set and standard input is not a terminal to prompt on"
        )));
    }
    let first = prompt("Enter password for private key: ")?;
    if confirm {
        let again = prompt("Enter password for private key again: ")?;
        if first.expose() != again.expose() {
            return Err(Failure::input(anyhow!("the passwords do not match")));
        }
    }
    Ok(first)
}

fn prompt(message: &str) -> Result<Secret, Failure> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let fail =
        |e: std::io::Error| Failure::input(anyhow::Error::new(e).context("reading the password from the terminal"));
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(fail)?;
    let saved = tcgetattr(&tty).map_err(|e| fail(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    (&tty).write_all(message.as_bytes()).map_err(fail)?;
    tcsetattr(&tty, OptionalActions::Now, &quiet).map_err(|e| fail(e.into()))?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let restored = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = (&tty).write_all(b"\n");
    read.map_err(fail)?;
    restored.map_err(|e| fail(e.into()))?;
    let secret = Secret::new(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec());
    // Clear the String's buffer too; the Secret zeroes its own copy on drop.
    line.clear();
    line.shrink_to_fit();
    Ok(secret)
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

/// Reads `--certificate` (and `--certificate-chain`) for signing with `signer`: the
/// certificate's key must be the signing key, it must allow code signing, and it must
/// chain to the given chain now. Returns the certificate's DER.
pub(crate) fn signing_certificate(args: &CertificateArgs, signer: &PublicKey) -> Result<Option<Vec<u8>>, Failure> {
    let Some(path) = &args.certificate else { return Ok(None) };
    let text = String::from_utf8(read_input(path)?)
        .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", path.display())))?;
    let fail = |why: String| Failure::input(anyhow!("--certificate {}: {why}", path.display()));
    let der = attest::certificate::pem_certificates(&text)
        .map_err(|e| fail(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| fail("no certificate".to_owned()))?;
    let cert = SigningCertificate::from_der(&der).map_err(|e| fail(e.to_string()))?;
    match &cert.public_key {
        Err(e) => return Err(fail(e.clone())),
        Ok(key) if key != signer => {
            return Err(fail(format!(
            "its public key ({} {}) is not the signing key's ({} {}): refusing to bundle a certificate for another key",
            key.algorithm(),
            key.key_id(),
            signer.algorithm(),
            signer.key_id()
        )))
        }
        Ok(_) => {}
    }
    if !cert.allows_code_signing() {
        return Err(fail("its extended key usage does not include codeSigning".to_owned()));
    }
    if let Some(chain_path) = &args.certificate_chain {
        let chain = String::from_utf8(read_input(chain_path)?)
            .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", chain_path.display())))?;
        let mut trust = TrustMaterial::default();
        trust
            .add_pem_chain(&chain, &chain_path.display().to_string())
            .with_context(|| format!("reading --certificate-chain {}", chain_path.display()))
            .map_err(Failure::input)?;
        trust.verify_chain(&der, &[], stdx::time::now_unix()).map_err(|e| {
            Failure::input(anyhow!(
                "--certificate {} and --certificate-chain {}: {e}",
                path.display(),
                chain_path.display()
            ))
        })?;
    }
    Ok(Some(der))
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
        super::keygen::write_new(path, 0o644, text.as_bytes())?;
    }
    match &args.out {
        Some(path) => super::keygen::write_new(path, 0o644, line.as_bytes())?,
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

/// One check of `attest verify` and its outcome.
#[derive(serde::Serialize)]
struct Check {
    name: &'static str,
    /// For `policy` checks: the rule, as the policy file writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    passed: bool,
    detail: String,
}

fn parse_digest(text: &str) -> Result<String, Failure> {
    let hex = text
        .strip_prefix("sha256:")
        .ok_or_else(|| Failure::input(anyhow!("--digest {text:?}: expected sha256:HEX")))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::input(anyhow!("--digest {text:?}: expected 64 hex digits after sha256:")));
    }
    Ok(hex.to_ascii_lowercase())
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
    let mut trusted = Vec::with_capacity(args.key.len());
    for path in &args.key {
        let text = String::from_utf8(read_input(path)?)
            .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", path.display())))?;
        let key = PublicKey::from_pem(&text)
            .with_context(|| format!("reading the public key {}", path.display()))
            .map_err(Failure::input)?;
        // The threshold counts distinct keys: the same key given twice is a mistake.
        if let Some(i) = trusted.iter().position(|k| k == &key) {
            return Err(Failure::input(anyhow!(
                "--key {} is the same key as --key {}",
                path.display(),
                args.key[i].display()
            )));
        }
        trusted.push(key);
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
    if certificate_mode && identities.is_empty() && policy.as_ref().and_then(|p| p.certificate.as_ref()).is_none() {
        return Err(Failure::input(anyhow!(
            "a certificate bundle is only as good as the identity it must name: give --certificate-identity (or \
             --certificate-identity-regexp) and --certificate-oidc-issuer (or --certificate-oidc-issuer-regexp), \
             or a --policy with a [certificate] section"
        )));
    }
    let policy_threshold = policy.as_ref().and_then(Policy::threshold);
    let threshold = args.threshold.unwrap_or(1).max(policy_threshold.unwrap_or(1));
    // A certificate bundle has one signer: its certificate's key.
    let available = if certificate_mode { 1 } else { trusted.len() };
    if args.threshold == Some(0) || threshold > available {
        let from = match (args.threshold, policy_threshold) {
            (Some(0), _) => "--threshold 0".to_owned(),
            (_, Some(t)) if t == threshold => format!("the policy's threshold {t}"),
            _ => format!("--threshold {threshold}"),
        };
        return Err(Failure::input(anyhow!(
            "{from} with {available} keys: it must be between 1 and the number of keys{}",
            if certificate_mode { " (a certificate bundle has one signer)" } else { "" }
        )));
    }
    let want_digest = match (&args.digest, &args.subject) {
        (Some(d), _) => Some(parse_digest(d)?),
        (None, Some(path)) => Some(hash_input(path)?),
        (None, None) => None,
    };
    let attestation = Attestation::detect(&read_input(&args.envelope)?)
        .with_context(|| format!("reading {}", args.envelope.display()))
        .map_err(Failure::input)?;

    let mut checks = Vec::new();
    let mut warnings = Vec::new();
    let mut signer_identity: Option<SignerIdentity> = None;
    let mut signer_ok = true;
    if certificate_mode {
        let time = if args.insecure_ignore_tlog {
            SigningTime::InsecureCurrentTime(stdx::time::now_unix())
        } else {
            SigningTime::TransparencyLog
        };
        let sct = if args.insecure_ignore_sct { SctCheck::InsecureIgnore } else { SctCheck::Required };
        let options = SignerOptions {
            trust: &trust,
            identities: &identities,
            time,
            sct,
            signed_timestamps: args.use_signed_timestamps,
        };
        let verified = cert_verify::verify_signer(attestation.bundle.as_ref(), &attestation.envelope, &options);
        for step in verified.steps {
            let passed = step.result.is_ok();
            checks.push(Check { name: step.name, rule: None, passed, detail: step.result.unwrap_or_else(|e| e) });
        }
        warnings = verified.warnings;
        match verified.signer {
            Some(signer) => {
                trusted = vec![signer.key];
                signer_identity = Some(signer.identity);
            }
            None => signer_ok = false,
        }
    }
    for warning in &warnings {
        eprintln!("{warning}");
    }
    let context = CheckContext {
        trusted: &trusted,
        signer: signer_identity.as_ref(),
        threshold,
        threshold_from_policy: policy_threshold == Some(threshold) && args.threshold.is_none_or(|t| t < threshold),
        predicate_type: args.predicate_type.as_deref(),
        want_digest: want_digest.as_deref(),
        policy: policy.as_ref(),
    };
    let valid = signer_ok && run_checks(&attestation, &context, &mut checks).is_ok();
    if args.json {
        let doc = serde_json::json!({
            "schemaVersion": 1,
            "verdict": if valid { "valid" } else { "invalid" },
            "envelope": args.envelope.display().to_string(),
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
        println!("{}: {}", args.envelope.display(), if valid { "valid" } else { "invalid" });
    }
    Ok(if valid { Verdict::Positive } else { Verdict::Negative })
}

/// What `attest verify` checks an attestation against.
struct CheckContext<'a> {
    trusted: &'a [PublicKey],
    /// The verified certificate's identity, for certificate bundles.
    signer: Option<&'a SignerIdentity>,
    threshold: usize,
    threshold_from_policy: bool,
    predicate_type: Option<&'a str>,
    want_digest: Option<&'a str>,
    policy: Option<&'a Policy>,
}

/// Runs the checks in order, recording each; stops at the first failure, except that
/// every policy rule is evaluated and recorded.
fn run_checks(attestation: &Attestation, cx: &CheckContext<'_>, checks: &mut Vec<Check>) -> Result<(), ()> {
    let (trusted, threshold, want_digest) = (cx.trusted, cx.threshold, cx.want_digest);
    let threshold_note = if cx.threshold_from_policy { " (threshold from the policy)" } else { "" };
    let mut record = |name, result: Result<String, String>| {
        let passed = result.is_ok();
        checks.push(Check { name, rule: None, passed, detail: result.unwrap_or_else(|e| e) });
        if passed {
            Ok(())
        } else {
            Err(())
        }
    };
    let envelope = &attestation.envelope;
    // A bundle's key hint is unauthenticated: it only explains a failure.
    let hint_note = match attestation.bundle.as_ref().and_then(Bundle::hint) {
        Some(hint) if !trusted.iter().any(|k| bundle::public_key_hint(k) == hint) => {
            format!(" (the bundle's publicKey hint {hint} names none of the trusted keys)")
        }
        _ => String::new(),
    };
    let verified = match envelope.verify(PAYLOAD_TYPE_IN_TOTO, trusted, threshold) {
        Ok(v) => {
            record(
                "signatures",
                Ok(format!("{} of {threshold} required distinct keys verified{threshold_note}", v.keys.len())),
            )?;
            record("payloadType", Ok(PAYLOAD_TYPE_IN_TOTO.to_owned()))?;
            v
        }
        Err(e @ DsseError::PayloadType { .. }) => {
            record("signatures", Ok("verified".to_owned()))?;
            return record("payloadType", Err(e.to_string()));
        }
        Err(e) => {
            let short = match &e {
                DsseError::Threshold { accepted, .. } if cx.threshold_from_policy && *accepted > 0 => Some(*accepted),
                _ => None,
            };
            let failed = record("signatures", Err(format!("{e}{threshold_note}{hint_note}")));
            // Enough valid signatures for --threshold, not for the policy: name its rule too.
            if let Some(accepted) = short {
                checks.push(Check {
                    name: "policy",
                    rule: Some("threshold".to_owned()),
                    passed: false,
                    detail: format!("the policy requires {threshold} distinct trusted keys; {accepted} signed"),
                });
            }
            return failed;
        }
    };
    let statement: Statement = match serde_json::from_slice(&verified.payload) {
        Ok(s) => s,
        Err(e) => return record("statement", Err(format!("payload is not an in-toto statement: {e}"))),
    };
    if !statement.has_known_type() {
        return record(
            "statement",
            Err(format!("_type is {:?}, expected {STATEMENT_TYPE_V1:?} or {STATEMENT_TYPE_V0_1:?}", statement.type_)),
        );
    }
    record(
        "statement",
        Ok(format!("{} subjects, predicate type {}", statement.subject.len(), statement.predicate_type)),
    )?;
    if let Some(want) = cx.predicate_type {
        let result = if statement.predicate_type == want {
            Ok(want.to_owned())
        } else {
            Err(format!("expected {want:?}, statement has {:?}", statement.predicate_type))
        };
        record("predicateType", result)?;
    }
    if let Some(hex) = want_digest {
        let result = if statement.has_subject_digest("sha256", hex) {
            Ok(format!("sha256:{hex}"))
        } else if statement.has_subject_digest_in_other_case("sha256", hex) {
            Err(format!(
                "a subject has sha256:{hex} written in upper-case hex; digests are lower-case hex (as cosign requires)"
            ))
        } else {
            Err(format!("no subject has sha256:{hex}"))
        };
        record("subject", result)?;
    }
    if let Some(policy) = cx.policy {
        let mut outcomes = policy.evaluate(&statement, stdx::time::now_unix());
        outcomes.extend(policy.evaluate_signer(cx.signer));
        let passed = outcomes.iter().all(|o| o.passed);
        if outcomes.is_empty() {
            checks.push(Check { name: "policy", rule: None, passed, detail: "no rule applies".to_owned() });
        }
        for outcome in outcomes {
            checks.push(Check {
                name: "policy",
                rule: Some(outcome.rule),
                passed: outcome.passed,
                detail: outcome.detail,
            });
        }
        if !passed {
            return Err(());
        }
    }
    Ok(())
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
