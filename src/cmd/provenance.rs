//! From a `reprove verify` report to signed statements: `reprove attest provenance
//! REPORT.json` and `reprove verify --attest`.
//!
//! The mapping of a [`v1::Report`] to provenance and VSA inputs is the attest crate's
//! ([`attest::from_report`]); a missing or malformed field is an input error (exit 2)
//! naming it. This module loads the key, signs and writes the files.
//!
//! The files `DIR/<name>.provenance.intoto.jsonl` and `DIR/<name>.vsa.intoto.jsonl`
//! (and `*.sigstore.json` with `--bundle`) are written atomically (a temporary file in
//! DIR, then a link or, with `--force`, a rename); an existing file is an input error.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use attest::bundle::Bundle;
use attest::from_report::{provenance_input, vsa_input, DEFAULT_BUILDER_ID};
use attest::generate;
use attest::keys::{KeySigner, Signer as _};
use attest::statement::sha256_hex;
use report::v1;

use super::attest_registry::FormatArg;
use super::signing::{load_key, signing_certificate, CertificateArgs};
use crate::exit::{CommandResult, Failure, Verdict};

/// Arguments of `reprove attest provenance`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProvenanceArgs {
    /// The report of `reprove verify --json` (schemas/report.schema.json).
    report: PathBuf,
    #[command(flatten)]
    sign: SignOptions,
    /// Print one JSON document (schemas/attest-provenance.schema.json) instead of text.
    #[arg(long)]
    json: bool,
}

/// Where and how to sign: shared by `attest provenance` and `verify --attest`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SignOptions {
    /// The encrypted private key (cosign format); its password from COSIGN_PASSWORD or a prompt.
    #[arg(long, value_name = "KEY")]
    key: Option<PathBuf>,
    /// The directory to write the attestations into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Also write Sigstore bundles v0.3 (`*.sigstore.json`).
    #[arg(long)]
    bundle: bool,
    /// The builder id recorded in the provenance and as the VSA's verifier id.
    #[arg(long, value_name = "URI", default_value = DEFAULT_BUILDER_ID)]
    builder_id: String,
    /// Replace existing attestation files instead of refusing.
    #[arg(long)]
    force: bool,
    /// The key's certificate for the bundles (needs --bundle).
    #[command(flatten)]
    certificate: CertificateArgs,
}

/// `reprove verify --attest`: the flags added to `verify` (the signing flags only with
/// `--attest`, so a forgotten `--attest` is refused before the rebuild).
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("signing").args(["key", "bundle", "force", "certificate"]).multiple(true).requires("attest")))]
pub(crate) struct VerifyAttestArgs {
    /// After the verdict, sign a provenance of the rebuild and a VSA of the reference
    /// (needs --key; files in --out).
    #[arg(long, requires = "key")]
    pub(crate) attest: bool,
    #[command(flatten)]
    sign: SignOptions,
    /// After signing, attach both attestations to the image the reference was read from
    /// (--reference oci://IMAGE@sha256:…#/path): by the digest given and, when that is an
    /// index, by the platform manifest's digest too (docs/attestation-subjects.md). The
    /// Sigstore bundles with --bundle, else the DSSE envelopes.
    #[arg(long, requires = "attest")]
    pub(crate) push: bool,
    /// The layouts --push writes, as `attest push --format`.
    #[arg(long, value_enum, value_name = "FORMAT", requires = "push")]
    push_format: Option<FormatArg>,
}

/// One file written.
#[derive(Debug, serde::Serialize)]
struct Written {
    /// `provenance` or `vsa`.
    statement: &'static str,
    /// `dsse` or `sigstore-bundle`.
    format: &'static str,
    path: String,
    sha256: String,
    /// The bytes written.
    #[serde(skip)]
    bytes: Vec<u8>,
}

/// Writes `contents` to `path` atomically; refuses to replace an existing file unless `force`.
fn write_atomic(path: &Path, contents: &[u8], force: bool) -> Result<(), Failure> {
    let existing = if force { stdx::fs::Existing::Replace } else { stdx::fs::Existing::Keep };
    stdx::fs::write_atomic(path, contents, ".reprove-attest-", 0o644, existing).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::input(anyhow!("{} exists; refusing to overwrite it (use --force)", path.display()))
        } else {
            Failure::infrastructure(anyhow::Error::new(e).context(format!("writing {}", path.display())))
        }
    })
}

fn envelope_line(
    statement: &attest::statement::Statement,
    signer: &KeySigner,
    certificate: Option<&[u8]>,
) -> Result<(String, Bundle), Failure> {
    let envelope = generate::sign(statement, &[signer]).map_err(Failure::infrastructure)?;
    let mut line =
        serde_json::to_string(&envelope).context("encoding the envelope").map_err(Failure::infrastructure)?;
    line.push('\n');
    let bundle = match certificate {
        Some(der) => Bundle::with_certificate(envelope, der),
        None => Bundle::new(envelope, Some(signer.public_key())),
    };
    Ok((line, bundle))
}

/// The provenance and the VSA of `report`, signed with `signer`: each as a DSSE envelope
/// line and a Sigstore bundle (the VSA names the provenance as
/// `<name>.provenance.intoto.jsonl`). For `attest provenance`, `verify --attest` and the
/// jobs of `reprove serve`.
pub(crate) fn signed_statements(
    report: &v1::Report,
    report_bytes: &[u8],
    signer: &KeySigner,
    builder_id: &str,
    certificate: Option<&[u8]>,
) -> Result<[(String, Bundle); 2], Failure> {
    let input = provenance_input(report, report_bytes, builder_id).map_err(Failure::input)?;
    let provenance = generate::provenance_statement(&input).map_err(|e| Failure::input(anyhow!("provenance: {e}")))?;
    let (prov_line, prov_b) = envelope_line(&provenance, signer, certificate)?;
    let prov_file = format!("{}.provenance.intoto.jsonl", report.subject.name);
    let vsa = vsa_input(report, generate::attestation_ref(prov_file, prov_line.as_bytes()), builder_id)
        .map_err(Failure::input)?;
    let vsa = generate::vsa_statement(&vsa).map_err(|e| Failure::input(anyhow!("vsa: {e}")))?;
    let (vsa_line, vsa_b) = envelope_line(&vsa, signer, certificate)?;
    Ok([(prov_line, prov_b), (vsa_line, vsa_b)])
}

/// Maps, signs and writes both statements of a report.
fn attest_report(report: &v1::Report, report_bytes: &[u8], options: &SignOptions) -> Result<Vec<Written>, Failure> {
    let key = options.key.as_ref().ok_or_else(|| Failure::input(anyhow!("--key KEY is required to sign")))?;
    let input = provenance_input(report, report_bytes, &options.builder_id).map_err(Failure::input)?;
    let name = &report.subject.name;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Failure::input(anyhow!("the report's subject.name {name:?} is not a file name")));
    }
    // Checked before the key is loaded (a password prompt), then signed below.
    generate::provenance_statement(&input).map_err(|e| Failure::input(anyhow!("provenance: {e}")))?;
    let dir = &options.out;
    let files = |kind: &str| {
        (dir.join(format!("{name}.{kind}.intoto.jsonl")), dir.join(format!("{name}.{kind}.sigstore.json")))
    };
    let (prov_path, prov_bundle) = files("provenance");
    let (vsa_path, vsa_bundle) = files("vsa");
    let mut targets = vec![&prov_path, &vsa_path];
    if options.bundle {
        targets.extend([&prov_bundle, &vsa_bundle]);
    }
    if !options.force {
        if let Some(existing) = targets.iter().find(|p| p.exists()) {
            return Err(Failure::input(anyhow!(
                "{} exists; refusing to overwrite it (use --force)",
                existing.display()
            )));
        }
    }
    if options.certificate.certificate.is_some() && !options.bundle {
        return Err(Failure::input(anyhow!(
            "--certificate is written into the Sigstore bundles: add --bundle (a DSSE envelope line cannot carry it)"
        )));
    }
    let signer = load_key(key)?;
    let certificate = signing_certificate(&options.certificate, signer.public_key())?;
    let [(prov_line, prov_b), (vsa_line, vsa_b)] =
        signed_statements(report, report_bytes, &signer, &options.builder_id, certificate.as_deref())?;

    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .map_err(Failure::infrastructure)?;
    let mut written = Vec::new();
    let mut put = |statement, format, path: &Path, bytes: &[u8]| -> Result<(), Failure> {
        write_atomic(path, bytes, options.force)?;
        written.push(Written {
            statement,
            format,
            path: path.display().to_string(),
            sha256: sha256_hex(bytes),
            bytes: bytes.to_vec(),
        });
        Ok(())
    };
    put("provenance", "dsse", &prov_path, prov_line.as_bytes())?;
    put("vsa", "dsse", &vsa_path, vsa_line.as_bytes())?;
    if options.bundle {
        for (statement, path, bundle) in [("provenance", &prov_bundle, prov_b), ("vsa", &vsa_bundle, vsa_b)] {
            let mut text =
                serde_json::to_string(&bundle).context("encoding the bundle").map_err(Failure::infrastructure)?;
            text.push('\n');
            put(statement, "sigstore-bundle", path, text.as_bytes())?;
        }
    }
    Ok(written)
}

fn print_text(written: &[Written]) {
    for w in written {
        println!("{} {} sha256:{} {}", w.statement, w.format, w.sha256, w.path);
    }
}

/// `reprove attest provenance REPORT.json`.
pub(crate) fn run(args: ProvenanceArgs) -> CommandResult {
    let bytes = std::fs::read(&args.report)
        .with_context(|| format!("reading {}", args.report.display()))
        .map_err(Failure::input)?;
    let report: v1::Report = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a reprove report (schemas/report.schema.json)", args.report.display()))
        .map_err(Failure::input)?;
    let written = attest_report(&report, &bytes, &args.sign)?;
    if args.json {
        let doc = serde_json::json!({
            "schemaVersion": 1,
            "report": args.report.display().to_string(),
            "verdict": report.verdict,
            "files": written,
        });
        println!("{doc}");
    } else {
        print_text(&written);
    }
    Ok(Verdict::Positive)
}

/// `reprove verify --attest`: after the verdict was printed, attest it, and with
/// `--push` attach the attestations to the reference's image (with `registry`). The exit
/// code stays the verdict's unless signing fails (2 for a bad key or password, 3
/// otherwise) or the push fails (3, the files written stay); a run without a verdict is
/// returned as it is, with nothing attested or pushed.
pub(crate) fn after_verify(
    args: &VerifyAttestArgs,
    report: &v1::Report,
    verdict: CommandResult,
    registry: &oci::RegistryOptions,
) -> CommandResult {
    if !args.attest {
        return verdict;
    }
    let verdict = match verdict {
        Ok(v) => v,
        Err(failure) => {
            eprintln!("reprove: no verdict, so nothing is attested");
            return Err(failure);
        }
    };
    let bytes = serde_json::to_vec_pretty(report).context("serializing the report").map_err(Failure::infrastructure)?;
    let written = attest_report(report, &bytes, &args.sign).map_err(|f| Failure {
        class: f.class,
        error: f.error.context("verify --attest: the verdict stands, signing failed"),
    })?;
    for w in &written {
        eprintln!("reprove: wrote {} {} sha256:{} {}", w.statement, w.format, w.sha256, w.path);
    }
    if args.push {
        // Bundles when written (cosign v3's referrers are bundles), else the envelopes.
        let format = if args.sign.bundle { "sigstore-bundle" } else { "dsse" };
        let files: Vec<(String, Vec<u8>)> =
            written.iter().filter(|w| w.format == format).map(|w| (w.path.clone(), w.bytes.clone())).collect();
        let lines = super::attest_registry::push_verified(
            report,
            &files,
            args.push_format.unwrap_or(FormatArg::Both),
            registry,
        )
        .map_err(|f| Failure {
            // After a verdict every input was good: whatever failed is the registry's.
            class: crate::exit::FailureClass::Infrastructure,
            error: f.error.context(format!(
                "verify --attest --push: the verdict stands and the attestations are in {}, pushing them failed",
                args.sign.out.display()
            )),
        })?;
        for line in lines {
            eprintln!("reprove: {line}");
        }
    }
    Ok(verdict)
}

/// `reprove audit --attest [--push]`: a provenance and a VSA for every binary that was
/// rebuilt (in `OUT/PLATFORM/N/`, N its place in the platform's list), then the image
/// VSA (`OUT/image.vsa.intoto.jsonl`) with those VSAs as its input attestations; with
/// `--push`, each binary's pair to the image by its digests (as `verify --push`) and the
/// image VSA to the image digest and each platform manifest's. Returns lines for stderr.
pub(crate) fn attest_audit(
    args: &VerifyAttestArgs,
    audit: &report::audit::v1::AuditReport,
    registry: &oci::RegistryOptions,
) -> Result<Vec<String>, Failure> {
    use attest::image_vsa::image_vsa_statement;
    let options = &args.sign;
    let key = options.key.as_ref().ok_or_else(|| Failure::input(anyhow!("--key KEY is required to sign")))?;
    let push_format = args.push_format.unwrap_or(FormatArg::Both);
    let format = if options.bundle { "sigstore-bundle" } else { "dsse" };
    let mut lines = Vec::new();
    let mut vsas = Vec::new();
    for platform in &audit.platforms {
        let dir_name = platform.platform.replace('/', "-");
        for (i, b) in platform.binaries.iter().enumerate() {
            let Some(report) = b.report.as_deref().filter(|r| r.verdict != v1::Verdict::Error) else { continue };
            let mut sign = options.clone();
            sign.out = options.out.join(&dir_name).join(i.to_string());
            let bytes =
                serde_json::to_vec_pretty(report).context("serializing the report").map_err(Failure::infrastructure)?;
            let written = attest_report(report, &bytes, &sign)?;
            for w in &written {
                lines.push(format!("wrote {} {} sha256:{} {}", w.statement, w.format, w.sha256, w.path));
                if w.statement == "vsa" && w.format == "dsse" {
                    let uri = Path::new(&w.path)
                        .strip_prefix(&options.out)
                        .map_or(w.path.clone(), |p| p.display().to_string());
                    vsas.push(generate::attestation_ref(uri, &w.bytes));
                }
            }
            if args.push {
                let files: Vec<(String, Vec<u8>)> =
                    written.iter().filter(|w| w.format == format).map(|w| (w.path.clone(), w.bytes.clone())).collect();
                lines.extend(super::attest_registry::push_verified(report, &files, push_format, registry)?);
            }
        }
    }
    let (name, input) = image_vsa_input(audit, vsas, &options.builder_id);
    let statement = image_vsa_statement(&input).map_err(|e| Failure::input(anyhow!("image vsa: {e}")))?;
    let signer = load_key(key)?;
    let certificate = signing_certificate(&options.certificate, signer.public_key())?;
    let (line, bundle) = envelope_line(&statement, &signer, certificate.as_deref())?;
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))
        .map_err(Failure::infrastructure)?;
    let envelope_path = options.out.join("image.vsa.intoto.jsonl");
    write_atomic(&envelope_path, line.as_bytes(), options.force)?;
    lines.push(format!("wrote image-vsa dsse sha256:{} {}", sha256_hex(line.as_bytes()), envelope_path.display()));
    let mut push_file = (envelope_path.display().to_string(), line.into_bytes());
    if options.bundle {
        let mut text =
            serde_json::to_string(&bundle).context("encoding the bundle").map_err(Failure::infrastructure)?;
        text.push('\n');
        let path = options.out.join("image.vsa.sigstore.json");
        write_atomic(&path, text.as_bytes(), options.force)?;
        lines.push(format!(
            "wrote image-vsa sigstore-bundle sha256:{} {}",
            sha256_hex(text.as_bytes()),
            path.display()
        ));
        push_file = (path.display().to_string(), text.into_bytes());
    }
    if args.push {
        let digests: Vec<String> = input.images.iter().map(|i| i.digest.clone()).collect();
        lines.extend(super::attest_registry::push_to(&name, &digests, &[push_file], push_format, registry)?);
    }
    Ok(lines)
}

/// What the image VSA of an audit says: the image's repository name, and the input of
/// [`attest::image_vsa::image_vsa_statement`] (`vsas`: the binaries' VSAs it names).
fn image_vsa_input(
    audit: &report::audit::v1::AuditReport,
    vsas: Vec<generate::AttestationRef>,
    builder_id: &str,
) -> (String, attest::image_vsa::ImageVsaInput) {
    let mut binaries = Vec::new();
    for platform in &audit.platforms {
        for b in &platform.binaries {
            binaries.push(attest::image_vsa::AuditedBinary {
                path: b.path.clone(),
                platform: platform.platform.clone(),
                sha256: b.sha256.clone(),
                outcome: b.outcome.as_str().to_owned(),
                reason: b.reason.map(|r| r.as_str().to_owned()),
            });
        }
    }
    let reference = audit.image.reference.as_deref();
    let name =
        reference.and_then(|r| r.split_once('@')).map_or_else(|| audit.image.input.clone(), |(n, _)| n.to_owned());
    let given = attest::image_vsa::AuditedImage {
        name: name.clone(),
        digest: audit.image.digest.clone(),
        kind: if audit.image.digest_kind == report::audit::v1::DigestKind::Index {
            generate::ImageDigestKind::Index
        } else {
            generate::ImageDigestKind::Manifest
        },
        platform: (audit.image.digest_kind != report::audit::v1::DigestKind::Index)
            .then(|| audit.platforms.first().map(|p| p.platform.clone()))
            .flatten(),
    };
    let mut images = vec![given];
    if audit.image.digest_kind == report::audit::v1::DigestKind::Index {
        for p in &audit.platforms {
            if let Some(m) = &p.manifest_digest {
                images.push(attest::image_vsa::AuditedImage {
                    name: name.clone(),
                    digest: m.clone(),
                    kind: generate::ImageDigestKind::Manifest,
                    platform: Some(p.platform.clone()),
                });
            }
        }
    }
    let input = attest::image_vsa::ImageVsaInput {
        images,
        resource_uri: match reference {
            Some(r) => format!("oci://{r}"),
            None => audit.image.input.clone(),
        },
        binaries,
        input_attestations: vsas,
        verifier_id: builder_id.to_owned(),
        verifier_version: std::collections::BTreeMap::from([("reprove".to_owned(), audit.tool.version.clone())]),
        time_verified: audit.finished_on.clone(),
        policy_uri: attest::from_report::VSA_POLICY_URI.to_owned(),
    };
    (name, input)
}

/// The image VSA of an audit, signed with `signer`: the repository, the digests it is
/// about (the image's, and each platform's of an index) and the DSSE envelope line. For
/// the audit jobs of `reprove serve`.
pub(crate) fn signed_image_vsa(
    audit: &report::audit::v1::AuditReport,
    signer: &KeySigner,
    builder_id: &str,
) -> Result<(String, Vec<String>, String), Failure> {
    let (name, input) = image_vsa_input(audit, Vec::new(), builder_id);
    let statement =
        attest::image_vsa::image_vsa_statement(&input).map_err(|e| Failure::input(anyhow!("image vsa: {e}")))?;
    let (line, _) = envelope_line(&statement, signer, None)?;
    Ok((name, input.images.iter().map(|i| i.digest.clone()).collect(), line))
}

/// Whether `--push` can be honoured for a reference that `oci` says was (or was not)
/// read from an image: checked before the rebuild.
pub(crate) fn check_push(args: &VerifyAttestArgs, oci: bool) -> Result<(), Failure> {
    if args.push && !oci {
        return Err(Failure::input(anyhow!(
            "--push attaches the attestations to the image the reference is read from: give --reference oci://IMAGE@sha256:…#/path"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/report/not-reproduced.json");

    fn report() -> v1::Report {
        serde_json::from_str(FIXTURE).unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    #[test]
    fn verify_attest_keeps_the_verdict_and_reports_signing_failures() {
        let r = report();
        let off = VerifyAttestArgs {
            attest: false,
            sign: SignOptions {
                key: None,
                out: PathBuf::from("."),
                bundle: false,
                builder_id: DEFAULT_BUILDER_ID.to_owned(),
                force: false,
                certificate: CertificateArgs::default(),
            },
            push: false,
            push_format: None,
        };
        assert!(matches!(
            after_verify(&off, &r, Ok(Verdict::Negative), &oci::RegistryOptions::default()),
            Ok(Verdict::Negative)
        ));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut on = off.clone();
        on.attest = true;
        on.sign.key = Some(dir.path().join("no-such.key"));
        on.sign.out = dir.path().join("out");
        // A key that cannot be read: an input error, after the verdict, nothing written.
        let failure = after_verify(&on, &r, Ok(Verdict::Negative), &oci::RegistryOptions::default()).err();
        assert!(
            matches!(&failure, Some(f) if f.class == crate::exit::FailureClass::Input
                && format!("{f}").contains("no-such.key") && format!("{f}").contains("the verdict stands")),
            "{failure:?}"
        );
        assert!(!on.sign.out.exists());
        // No verdict: the run's own failure, nothing attested.
        let failure = after_verify(
            &on,
            &r,
            Err(Failure::infrastructure(anyhow!("registry down"))),
            &oci::RegistryOptions::default(),
        )
        .err();
        assert!(matches!(&failure, Some(f) if f.class == crate::exit::FailureClass::Infrastructure), "{failure:?}");
    }

    #[test]
    fn verify_signing_flags_need_attest_and_attest_needs_a_key() {
        use clap::Parser as _;
        let base = ["reprove", "verify", "--source", ".", "--toolchain", "x", "--reference", "app"];
        let parse = |extra: &[&str]| crate::cmd::Cli::try_parse_from(base.iter().chain(extra)).map(|_| ());
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--attest", "--key", "k.key", "--out", "att", "--bundle"]).is_ok());
        assert!(parse(&["--key", "k.key"]).is_err(), "--key without --attest");
        assert!(parse(&["--attest"]).is_err(), "--attest without --key");
        assert!(parse(&["--attest", "--key", "k.key", "--push"]).is_ok());
        assert!(parse(&["--attest", "--key", "k.key", "--push", "--push-format", "legacy"]).is_ok());
        assert!(parse(&["--push"]).is_err(), "--push without --attest");
        assert!(
            parse(&["--attest", "--key", "k.key", "--push-format", "referrer"]).is_err(),
            "--push-format without --push"
        );
    }

    /// `--push` needs a reference in an image, checked before the rebuild.
    #[test]
    fn push_needs_an_image_reference() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut args = VerifyAttestArgs {
            attest: true,
            sign: SignOptions {
                key: None,
                out: dir.path().join("out"),
                bundle: false,
                builder_id: DEFAULT_BUILDER_ID.to_owned(),
                force: false,
                certificate: CertificateArgs::default(),
            },
            push: true,
            push_format: None,
        };
        let refused = check_push(&args, false).err();
        assert!(
            matches!(&refused, Some(f) if f.class == crate::exit::FailureClass::Input && format!("{f:#}").contains("oci://")),
            "{refused:?}"
        );
        assert!(check_push(&args, true).is_ok());
        args.push = false;
        assert!(check_push(&args, false).is_ok());
    }
}
