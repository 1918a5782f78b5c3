//! Certificate bundles, offline and for real: a local CA made with the `openssl` CLI
//! (a root, an intermediate, leaf certificates with Fulcio's extensions: an email SAN,
//! the OIDC issuer extensions 1.3.6.1.4.1.57264.1.8 and .1.1, codeSigning), a local
//! "transparency log" key whose signed entry timestamps, inclusion proofs and
//! checkpoints the test builds itself, and the real cosign (`ci/setup-cosign`) in both
//! directions. No network: every name below is under the reserved `.test` domain.

use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::support::{self, hex, signing};
use signing::{cosign, ok, text, TestResult, PROVENANCE};

const PASSWORD: &str = "cert-pw";
pub(crate) const SIGNER: &str = "signer@example.test";
pub(crate) const ISSUER: &str = "https://issuer.example.test";

fn run(program: &Path, dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    support::run_signing_tool(program, dir, PASSWORD, args)
}

fn reprove(dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    signing::reprove_signing(dir, PASSWORD, args)
}

pub(crate) fn openssl(dir: &Path, args: &[&str]) -> TestResult {
    let out = Command::new("openssl").current_dir(dir).args(args).output()?;
    ok(&out, &format!("openssl {}", args.join(" ")))
}

pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(STANDARD.decode(body)?)
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

const REQ_CONFIG: &str = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n\
    [v3_root]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n";

const INTERMEDIATE_EXT: &str = "basicConstraints = critical,CA:TRUE,pathlen:0\n\
    keyUsage = critical,keyCertSign,cRLSign\nextendedKeyUsage = codeSigning\n\
    subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

/// The extensions of a Fulcio leaf with the SAN `san` issued for `ISSUER` (both issuer
/// extensions), as openssl extension lines.
fn fulcio_leaf_ext(san: &str, eku: bool, v2_issuer: bool) -> String {
    fulcio_leaf_ext_for(san, ISSUER, eku, v2_issuer)
}

/// [`fulcio_leaf_ext`] for the OIDC issuer `issuer`.
pub(crate) fn fulcio_leaf_ext_for(san: &str, issuer: &str, eku: bool, v2_issuer: bool) -> String {
    let mut ext = format!(
        "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nsubjectAltName = critical,{san}\n\
         authorityKeyIdentifier = keyid\n1.3.6.1.4.1.57264.1.1 = DER:{}\n",
        hex(issuer.as_bytes())
    );
    if eku {
        ext.push_str("extendedKeyUsage = codeSigning\n");
    }
    if v2_issuer {
        ext.push_str(&format!("1.3.6.1.4.1.57264.1.8 = ASN1:UTF8String:{issuer}\n"));
    }
    ext
}

/// A root CA (`name`-root.pem/.key) and an intermediate (`name`-inter.pem/.key) in `d`,
/// and `name`-chain.pem (intermediate then root, cosign's --certificate-chain order).
pub(crate) fn make_ca(d: &Path, name: &str) -> TestResult {
    std::fs::write(d.join("req.cnf"), REQ_CONFIG)?;
    std::fs::write(d.join("inter.ext"), INTERMEDIATE_EXT)?;
    let (root_key, root, inter_key, inter) = (
        format!("{name}-root.key"),
        format!("{name}-root.pem"),
        format!("{name}-inter.key"),
        format!("{name}-inter.pem"),
    );
    openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &root_key])?;
    let subject = format!("/O=reprove tests/CN={name} root");
    openssl(
        d,
        &["req", "-config", "req.cnf", "-x509", "-new", "-key", &root_key, "-subj", &subject, "-extensions", "v3_root"]
            .into_iter()
            .chain(["-days", "3650", "-out", &root])
            .collect::<Vec<_>>(),
    )?;
    openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &inter_key])?;
    let csr = format!("{name}-inter.csr");
    let subject = format!("/O=reprove tests/CN={name} intermediate");
    openssl(d, &["req", "-config", "req.cnf", "-new", "-key", &inter_key, "-subj", &subject, "-out", &csr])?;
    openssl(
        d,
        &["x509", "-req", "-in", &csr, "-CA", &root, "-CAkey", &root_key, "-set_serial", "2", "-days", "3650"]
            .into_iter()
            .chain(["-extfile", "inter.ext", "-out", &inter])
            .collect::<Vec<_>>(),
    )?;
    let chain = format!("{}{}", std::fs::read_to_string(d.join(&inter))?, std::fs::read_to_string(d.join(&root))?);
    std::fs::write(d.join(format!("{name}-chain.pem")), chain)?;
    Ok(())
}

/// A leaf `out` for the public key `public` (PEM), issued by `ca`'s intermediate with
/// extension lines `ext`.
pub(crate) fn make_leaf(d: &Path, ca: &str, public: &str, ext: &str, out: &str) -> TestResult {
    if !d.join("dummy.key").exists() {
        openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "dummy.key"])?;
    }
    std::fs::write(d.join(format!("{out}.ext")), ext)?;
    openssl(
        d,
        &["req", "-config", "req.cnf", "-new", "-key", "dummy.key", "-subj", "/O=sigstore.test", "-out", "leaf.csr"],
    )?;
    let (inter, inter_key, ext_file) = (format!("{ca}-inter.pem"), format!("{ca}-inter.key"), format!("{out}.ext"));
    openssl(
        d,
        &["x509", "-req", "-in", "leaf.csr", "-CA", &inter, "-CAkey", &inter_key, "-set_serial", "3", "-days", "1"]
            .into_iter()
            .chain(["-force_pubkey", public, "-extfile", &ext_file, "-out", out])
            .collect::<Vec<_>>(),
    )
}

/// A Sigstore trusted root listing `ca`'s chain and, if given, a log key (SPKI DER).
pub(crate) fn trusted_root(
    d: &Path,
    ca_chain: &[&str],
    log_key: Option<&[u8]>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut certs = Vec::new();
    for name in ca_chain {
        certs.push(json!({"rawBytes": STANDARD.encode(pem_to_der(&std::fs::read_to_string(d.join(name))?)?)}));
    }
    let mut root = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "certificateAuthorities": [{
            "subject": {"organization": "reprove tests", "commonName": "test"},
            "uri": "https://ca.example.test",
            "certChain": {"certificates": certs},
            "validFor": {"start": "2020-01-01T00:00:00Z"}
        }],
        "ctlogs": [],
        "timestampAuthorities": []
    });
    if let Some(spki) = log_key {
        root["tlogs"] = json!([{
            "baseUrl": "https://log.example.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": STANDARD.encode(spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": STANDARD.encode(sha256(spki))}
        }]);
    } else {
        root["tlogs"] = json!([]);
    }
    Ok(root)
}

/// A directory with the CA `ca` (and an unrelated `other` CA), a reprove key pair `r`,
/// the leaf `leaf.pem` for it (email SAN, both issuer extensions, codeSigning), a
/// subject `app`, a predicate, and `trusted_root.json` listing `ca`.
fn setup() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    std::fs::write(d.join("app"), b"\x7fELF a binary to attest")?;
    std::fs::write(
        d.join("pred.json"),
        br#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#,
    )?;
    make_ca(d, "ca")?;
    make_ca(d, "other")?;
    ok(&reprove(d, &["keygen", "--output-key-prefix", "r"])?, "reprove keygen")?;
    make_leaf(d, "ca", "r.pub", &fulcio_leaf_ext(&format!("email:{SIGNER}"), true, true), "leaf.pem")?;
    std::fs::write(d.join("trusted_root.json"), trusted_root(d, &["ca-inter.pem", "ca-root.pem"], None)?.to_string())?;
    Ok(dir)
}

fn sign(d: &Path, cert: &str, bundle: &str) -> Result<Output, std::io::Error> {
    let args = [
        "attest",
        "sign",
        "--key",
        "r.key",
        "--certificate",
        cert,
        "--certificate-chain",
        "ca-chain.pem",
        "--predicate-type",
        PROVENANCE,
        "--predicate",
        "pred.json",
        "--subject",
        "app",
        "--bundle",
        bundle,
    ];
    reprove(d, &args)
}

/// The exit code, the failed checks, the JSON document, the output as text.
type Verified = (Option<i32>, Vec<String>, Value, String);

/// `reprove attest verify --json` with `extra` flags; the exit code, the failed check
/// names (a policy check by its rule), the document and the whole output. The local
/// CA's leaves carry no SCT, so with a certificate trust flag this adds
/// `--insecure-ignore-sct` (and its warning); [`verify_sct`] does not.
fn verify(d: &Path, extra: &[&str], bundle: &str) -> Result<Verified, Box<dyn std::error::Error>> {
    let trust = extra.iter().any(|a| *a == "--trusted-root" || *a == "--certificate-chain");
    let extra = if trust { with(extra, &["--insecure-ignore-sct"]) } else { extra.to_vec() };
    verify_sct(d, &extra, bundle)
}

/// [`verify`] as it is: SCTs are checked unless `extra` says otherwise.
fn verify_sct(d: &Path, extra: &[&str], bundle: &str) -> Result<Verified, Box<dyn std::error::Error>> {
    let mut args = vec!["attest", "verify", "--json", "--subject", "app", "--predicate-type", PROVENANCE];
    args.extend_from_slice(extra);
    args.push(bundle);
    let out = reprove(d, &args)?;
    let mut all = text(&out);
    if out.status.code() == Some(2) {
        return Ok((Some(2), Vec::new(), Value::Null, all));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {all}"))?;
    let failed = doc["checks"]
        .as_array()
        .ok_or("checks")?
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["rule"].as_str().or(c["name"].as_str()).unwrap_or("?").to_owned())
        .collect();
    // The checks' details as text (the JSON escapes quotes).
    for check in doc["checks"].as_array().into_iter().flatten() {
        all.push_str(&format!("\n{}: {}", check["name"], check["detail"].as_str().unwrap_or_default()));
    }
    Ok((out.status.code(), failed, doc, all))
}

const IDENTITY: [&str; 4] = ["--certificate-identity", SIGNER, "--certificate-oidc-issuer", ISSUER];

fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

fn edit_bundle(d: &Path, from: &str, to: &str, edit: impl FnOnce(&mut Value)) -> TestResult {
    let mut bundle: Value = serde_json::from_str(&std::fs::read_to_string(d.join(from))?)?;
    edit(&mut bundle);
    std::fs::write(d.join(to), bundle.to_string())?;
    Ok(())
}

fn cert_raw(d: &Path, pem: &str) -> Result<String, Box<dyn std::error::Error>> {
    Ok(STANDARD.encode(pem_to_der(&std::fs::read_to_string(d.join(pem))?)?))
}

/// [`setup`], then `b.sigstore.json` signed with the certificate `leaf.pem`.
fn signed() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = setup()?;
    ok(&sign(dir.path(), "leaf.pem", "b.sigstore.json")?, "reprove attest sign --certificate")?;
    Ok(dir)
}

#[test]
fn reprove_signs_and_verifies_certificate_bundles() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(d.join("b.sigstore.json"))?)?;
    assert_eq!(bundle["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
    assert_eq!(bundle["verificationMaterial"]["certificate"]["rawBytes"], cert_raw(d, "leaf.pem")?);
    assert!(bundle["verificationMaterial"].get("publicKey").is_none());

    // Accepted with the trusted root, and with the PEM chain, only with the insecure flag,
    // which warns on stderr and in the document.
    let insecure = ["--insecure-ignore-tlog"];
    for trust in [["--trusted-root", "trusted_root.json"], ["--certificate-chain", "ca-chain.pem"]] {
        let (code, failed, doc, all) = verify(d, &with(&with(&trust, &IDENTITY), &insecure), "b.sigstore.json")?;
        assert_eq!((code, failed.len()), (Some(0), 0), "{all}");
        assert!(all.contains("WARNING: --insecure-ignore-tlog"), "{all}");
        assert!(all.contains("WARNING: --insecure-ignore-sct"), "{all}");
        assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(2), "{all}");
        // The skipped checks name the flag that skipped them (the CLI's wording of the
        // library's hints).
        assert!(
            all.contains(
                "SKIPPED (--insecure-ignore-tlog): no transparency-log entry verified; using the current time"
            ),
            "{all}"
        );
        assert!(all.contains("SKIPPED (--insecure-ignore-sct): no signed certificate timestamp verified"), "{all}");
        let names: Vec<&str> =
            doc["checks"].as_array().ok_or("checks")?.iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(
            names[..8],
            [
                "certificate",
                "keyUsage",
                "extendedKeyUsage",
                "tlog",
                "certificateValidity",
                "certificateChain",
                "sct",
                "identity"
            ]
        );
    }
    // Both together: the authorities of either.
    let both =
        ["--trusted-root", "root_only_other.json", "--certificate-chain", "ca-chain.pem", "--insecure-ignore-tlog"];
    std::fs::write(
        d.join("root_only_other.json"),
        trusted_root(d, &["other-inter.pem", "other-root.pem"], None)?.to_string(),
    )?;
    let (code, _, _, all) = verify(d, &with(&both, &IDENTITY), "b.sigstore.json")?;
    assert_eq!(code, Some(0), "{all}");
    // Identity flags without any trust: a usage error.
    let (code, _, _, all) = verify(d, &IDENTITY, "b.sigstore.json")?;
    assert_eq!(code, Some(2), "{all}");
    let trust = with(&["--trusted-root", "trusted_root.json"], &IDENTITY);
    // No transparency-log entry and no --insecure-ignore-tlog: no silent fallback.
    let (code, failed, _, all) = verify(d, &trust, "b.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["tlog".to_owned()]), "{all}");
    assert!(all.contains("no transparency-log entry"), "{all}");
    assert!(
        all.contains(
            "the bundle has no transparency-log entry to prove the signing time (--insecure-ignore-tlog checks the \
             certificate at the current time instead)"
        ),
        "{all}"
    );
    Ok(())
}

/// Identities that are not the leaf's fail the `identity` check; matching regexps pass.
#[test]
fn wrong_identities_and_issuers_fail_the_identity_check() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    let secure = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &[]);
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "wrong identity",
            vec!["--certificate-identity", "mallory@example.test", "--certificate-oidc-issuer", ISSUER],
            "no SAN matches subject \"mallory@example.test\"",
        ),
        (
            "wrong issuer",
            vec!["--certificate-identity", SIGNER, "--certificate-oidc-issuer", "https://evil.example.test"],
            "does not match \"https://evil.example.test\"",
        ),
        (
            "identity regexp",
            vec!["--certificate-identity-regexp", "^ops@", "--certificate-oidc-issuer-regexp", "example"],
            "no SAN matches subject /^ops@/",
        ),
    ];
    for (name, flags, want) in cases {
        let (code, failed, _, all) = verify(d, &with(&secure, &flags), "b.sigstore.json")?;
        assert_eq!((code, failed), (Some(1), vec!["identity".to_owned()]), "{name}: {all}");
        assert!(all.contains(want), "{name}: {all}");
    }
    let (code, _, _, all) = verify(
        d,
        &with(
            &secure,
            &["--certificate-identity-regexp", "^signer@", "--certificate-oidc-issuer-regexp", "^https://issuer\\."],
        ),
        "b.sigstore.json",
    )?;
    assert_eq!(code, Some(0), "{all}");
    Ok(())
}

/// A certificate from another CA: the chain check fails.
#[test]
fn a_certificate_from_another_ca_fails_the_chain_check() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    // A certificate from another CA: the chain check fails.
    let other = with(&["--certificate-chain", "other-chain.pem", "--insecure-ignore-tlog"], &IDENTITY);
    let (code, failed, _, all) = verify(d, &other, "b.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["certificateChain".to_owned()]), "{all}");
    assert!(all.contains("does not chain to any trusted certificate authority"), "{all}");
    Ok(())
}

/// A leaf without codeSigning: signing refuses it; a bundle carrying it is rejected.
#[test]
fn a_leaf_without_code_signing_is_refused_and_rejected() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    let secure = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &[]);
    // A leaf without codeSigning: signing refuses it; a bundle carrying it is rejected.
    make_leaf(d, "ca", "r.pub", &fulcio_leaf_ext(&format!("email:{SIGNER}"), false, true), "noeku.pem")?;
    refused_then_rejected(d, "noeku.pem", &secure, "codeSigning", "extendedKeyUsage")
}

/// Signing with `leaf` is refused with `refusal`; the signed bundle with its
/// certificate swapped for `leaf` fails exactly the check `failed_check`.
fn refused_then_rejected(d: &Path, leaf: &str, trust: &[&str], refusal: &str, failed_check: &str) -> TestResult {
    let out = sign(d, leaf, &format!("signed-{leaf}.sigstore.json"))?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(refusal), "{}", text(&out));
    let raw = cert_raw(d, leaf)?;
    let swapped = format!("{leaf}.sigstore.json");
    edit_bundle(d, "b.sigstore.json", &swapped, |b| b["verificationMaterial"]["certificate"]["rawBytes"] = json!(raw))?;
    let (code, failed, _, all) = verify(d, &with(trust, &IDENTITY), &swapped)?;
    assert_eq!((code, failed), (Some(1), vec![failed_check.to_owned()]), "{all}");
    Ok(())
}

/// A certificate for another key: signing refuses; a bundle with it fails the signature.
#[test]
fn a_certificate_for_another_key_is_refused_and_fails_the_signature() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    let secure = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &[]);
    // A certificate for another key: signing refuses; a bundle with it fails the signature.
    ok(&reprove(d, &["keygen", "--output-key-prefix", "o"])?, "reprove keygen")?;
    make_leaf(d, "ca", "o.pub", &fulcio_leaf_ext(&format!("email:{SIGNER}"), true, true), "otherkey.pem")?;
    refused_then_rejected(d, "otherkey.pem", &secure, "is not the signing key's", "signatures")
}

/// The v0.1/v0.2 form: x509CertificateChain with the intermediate, the root alone trusted.
#[test]
fn the_v02_certificate_chain_form_carries_the_intermediate() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    // The v0.1/v0.2 form: x509CertificateChain with the intermediate, the root alone trusted.
    std::fs::write(d.join("root_only.json"), trusted_root(d, &["ca-root.pem"], None)?.to_string())?;
    let (leaf, inter) = (cert_raw(d, "leaf.pem")?, cert_raw(d, "ca-inter.pem")?);
    edit_bundle(d, "b.sigstore.json", "v02.sigstore.json", |b| {
        b["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2");
        b["verificationMaterial"] =
            json!({"x509CertificateChain": {"certificates": [{"rawBytes": leaf}, {"rawBytes": inter}]}});
    })?;
    let root_only = with(&["--trusted-root", "root_only.json", "--insecure-ignore-tlog"], &IDENTITY);
    let (code, _, _, all) = verify(d, &root_only, "v02.sigstore.json")?;
    assert_eq!(code, Some(0), "{all}");
    // Without the bundle's intermediate the root alone cannot vouch for the leaf.
    let (code, failed, _, all) = verify(d, &root_only, "b.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["certificateChain".to_owned()]), "{all}");
    Ok(())
}

/// The deprecated issuer extension (1.3.6.1.4.1.57264.1.1) alone, and a URI SAN.
#[test]
fn the_deprecated_issuer_extension_and_a_uri_san_are_accepted() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    let secure = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &[]);
    // The deprecated issuer extension (1.3.6.1.4.1.57264.1.1) alone, and a URI SAN.
    make_leaf(
        d,
        "ca",
        "r.pub",
        &fulcio_leaf_ext("URI:https://ci.example.test/acme/app/release.yml@refs/tags/v1", true, false),
        "uri.pem",
    )?;
    ok(&sign(d, "uri.pem", "uri.sigstore.json")?, "reprove attest sign with a URI SAN")?;
    let uri = with(
        &secure,
        &[
            "--certificate-identity",
            "https://ci.example.test/acme/app/release.yml@refs/tags/v1",
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    );
    let (code, _, _, all) = verify(d, &uri, "uri.sigstore.json")?;
    assert_eq!(code, Some(0), "{all}");
    Ok(())
}

/// A policy pins the signer: certificate.identities.
#[test]
fn a_policy_pins_the_signer_and_refuses_a_keyed_attestation() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    let secure = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &[]);
    // A policy pins the signer: certificate.identities.
    let policy = |subject: &str| {
        format!("version = 1\n[certificate]\nidentities = [{{ subject = \"{subject}\", issuer = \"{ISSUER}\" }}]\n")
    };
    std::fs::write(d.join("good.toml"), policy(SIGNER))?;
    std::fs::write(d.join("bad.toml"), policy("mallory@example.test"))?;
    let (code, _, _, all) = verify(d, &with(&secure, &["--policy", "good.toml"]), "b.sigstore.json")?;
    assert_eq!(code, Some(0), "{all}");
    let (code, failed, _, all) = verify(d, &with(&secure, &["--policy", "bad.toml"]), "b.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["certificate.identities".to_owned()]), "{all}");
    // The same policy refuses a keyed attestation.
    ok(
        &reprove(
            d,
            &[
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
                "k.sigstore.json",
            ],
        )?,
        "keyed sign",
    )?;
    let (code, failed, _, all) = verify(d, &["--key", "r.pub", "--policy", "good.toml"], "k.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["certificate.identities".to_owned()]), "{all}");
    // A keyed bundle given to the certificate path names what it holds.
    let (code, failed, _, all) = verify(d, &with(&secure, &IDENTITY), "k.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["certificate".to_owned()]), "{all}");
    assert!(all.contains("publicKey hint, no certificate: verify it with --key"), "{all}");
    Ok(())
}

/// Input errors: no identity at all; half an identity; a certificate without --bundle.
#[test]
fn certificate_verification_input_errors_exit_2() -> TestResult {
    let dir = signed()?;
    let d = dir.path();
    // Input errors: no identity at all; half an identity; a certificate without --bundle.
    for flags in [
        vec!["--trusted-root", "trusted_root.json"],
        vec!["--trusted-root", "trusted_root.json", "--certificate-identity", SIGNER],
    ] {
        let (code, _, _, all) = verify(d, &flags, "b.sigstore.json")?;
        assert_eq!(code, Some(2), "{all}");
        assert!(all.contains("--certificate-oidc-issuer"), "{all}");
    }
    let out = reprove(
        d,
        &[
            "attest",
            "sign",
            "--key",
            "r.key",
            "--certificate",
            "leaf.pem",
            "--predicate-type",
            PROVENANCE,
            "--predicate",
            "pred.json",
            "--subject",
            "app",
            "--out",
            "e.intoto.jsonl",
        ],
    )?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("give --bundle"), "{}", text(&out));
    Ok(())
}

/// A local transparency log: its key, and entries for a bundle's envelope.
pub(crate) struct Log {
    pub(crate) spki: Vec<u8>,
}

impl Log {
    pub(crate) fn new(d: &Path) -> Result<Log, Box<dyn std::error::Error>> {
        openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "log.key"])?;
        openssl(d, &["ec", "-in", "log.key", "-pubout", "-outform", "DER", "-out", "log.der"])?;
        Ok(Log { spki: std::fs::read(d.join("log.der"))? })
    }

    fn sign(&self, d: &Path, message: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        std::fs::write(d.join("msg.bin"), message)?;
        openssl(d, &["dgst", "-sha256", "-sign", "log.key", "-out", "sig.bin", "msg.bin"])?;
        Ok(std::fs::read(d.join("sig.bin"))?)
    }

    /// A `dsse` 0.0.1 entry for `bundle` at `integrated_time`, index 1 of a two-leaf
    /// tree, with its SET, inclusion proof and checkpoint.
    pub(crate) fn entry(
        &self,
        d: &Path,
        bundle: &Value,
        integrated_time: i64,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let envelope = &bundle["dsseEnvelope"];
        let payload = STANDARD.decode(envelope["payload"].as_str().ok_or("payload")?)?;
        let leaf =
            STANDARD.decode(bundle["verificationMaterial"]["certificate"]["rawBytes"].as_str().ok_or("cert")?)?;
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(&leaf));
        let body = json!({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex(&sha256(envelope.to_string().as_bytes()))},
                "payloadHash": {"algorithm": "sha256", "value": hex(&sha256(&payload))},
                "signatures": [{"signature": envelope["signatures"][0]["sig"], "verifier": STANDARD.encode(pem)}]
            }
        })
        .to_string();
        let log_id = sha256(&self.spki);
        let log_index = 7;
        let set_payload = format!(
            r#"{{"body":"{}","integratedTime":{integrated_time},"logID":"{}","logIndex":{log_index}}}"#,
            STANDARD.encode(&body),
            hex(&log_id)
        );
        let set = self.sign(d, set_payload.as_bytes())?;
        // A two-leaf tree: [other, this].
        let leaf_hash = |data: &[u8]| sha256(&[&[0u8][..], data].concat());
        let sibling = leaf_hash(b"another entry");
        let root = sha256(&[&[1u8][..], &sibling, &leaf_hash(body.as_bytes())].concat());
        let note = format!("log.example.test - 1\n2\n{}\n", STANDARD.encode(&root));
        let note_sig = self.sign(d, note.as_bytes())?;
        let signed_note =
            format!("{note}\n\u{2014} log.example.test {}\n", STANDARD.encode([&log_id[..4], &note_sig].concat()));
        Ok(json!({
            "logIndex": log_index.to_string(),
            "logId": {"keyId": STANDARD.encode(&log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(set)},
            "inclusionProof": {
                "logIndex": "1", "rootHash": STANDARD.encode(&root), "treeSize": "2",
                "hashes": [STANDARD.encode(&sibling)], "checkpoint": {"envelope": signed_note}
            },
            "canonicalizedBody": STANDARD.encode(&body)
        }))
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn transparency_log_entries_give_the_signing_time() -> TestResult {
    let dir = setup()?;
    let d = dir.path();
    let log = Log::new(d)?;
    std::fs::write(
        d.join("trusted_root.json"),
        trusted_root(d, &["ca-inter.pem", "ca-root.pem"], Some(&log.spki))?.to_string(),
    )?;
    ok(&sign(d, "leaf.pem", "b.sigstore.json")?, "reprove attest sign --certificate")?;
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(d.join("b.sigstore.json"))?)?;
    let entry = log.entry(d, &bundle, now())?;
    let put = |name: &str, entry: &Value| {
        edit_bundle(d, "b.sigstore.json", name, |b| b["verificationMaterial"]["tlogEntries"] = json!([entry]))
    };
    put("logged.sigstore.json", &entry)?;
    let trust = with(&["--trusted-root", "trusted_root.json"], &IDENTITY);
    let (code, failed, doc, all) = verify(d, &trust, "logged.sigstore.json")?;
    assert_eq!((code, failed.len()), (Some(0), 0), "{all}");
    assert!(all.contains("inclusion proof and checkpoint verified"), "{all}");
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(1), "{all}");
    assert!(!all.contains("WARNING: --insecure-ignore-tlog"), "{all}");

    // Without the inclusion proof, the SET alone establishes the time.
    let mut promise_only = entry.clone();
    promise_only.as_object_mut().ok_or("entry")?.remove("inclusionProof");
    put("promise.sigstore.json", &promise_only)?;
    let (code, _, _, all) = verify(d, &trust, "promise.sigstore.json")?;
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("signed entry timestamp verified; integratedTime"), "{all}");

    let cases: Vec<(&str, Value, &str, &str)> = {
        let mut tampered_set = entry.clone();
        tampered_set["integratedTime"] = json!((now() - 60).to_string());
        let mut bad_proof = entry.clone();
        bad_proof["inclusionProof"]["hashes"] = json!([STANDARD.encode([7u8; 32])]);
        let mut bad_checkpoint = entry.clone();
        let note = entry["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap_or_default()
            .replacen("\n2\n", "\n3\n", 1);
        bad_checkpoint["inclusionProof"]["checkpoint"]["envelope"] = json!(note);
        let mut unknown_log = entry.clone();
        unknown_log["logId"]["keyId"] = json!(STANDARD.encode([1u8; 32]));
        vec![
            ("tampered SET", tampered_set, "tlog", "signed entry timestamp does not verify"),
            ("bad inclusion proof", bad_proof, "tlog", "inclusion proof does not lead to its rootHash"),
            ("bad checkpoint", bad_checkpoint, "tlog", "no signature of the checkpoint verifies"),
            ("unknown log", unknown_log, "tlog", "is not a transparency log of the trusted root"),
            // A valid entry, from before the certificate was issued: expired at the signing time.
            (
                "signed outside validity",
                log.entry(d, &bundle, now() - 10 * 86_400)?,
                "certificateValidity",
                "outside the certificate's validity",
            ),
        ]
    };
    for (name, entry, check, want) in cases {
        put("case.sigstore.json", &entry)?;
        let (code, failed, _, all) = verify(d, &trust, "case.sigstore.json")?;
        assert_eq!((code, failed), (Some(1), vec![check.to_owned()]), "{name}: {all}");
        assert!(all.contains(want), "{name}: {all}");
    }

    // An entry that records another envelope's signature.
    ok(&sign(d, "leaf.pem", "b2.sigstore.json")?, "second signature")?;
    let other: Value = serde_json::from_str(&std::fs::read_to_string(d.join("b2.sigstore.json"))?)?;
    put("mismatch.sigstore.json", &log.entry(d, &other, now())?)?;
    let (code, failed, _, all) = verify(d, &trust, "mismatch.sigstore.json")?;
    assert_eq!((code, failed), (Some(1), vec!["tlog".to_owned()]), "{all}");
    assert!(all.contains("records no signature of this envelope"), "{all}");
    Ok(())
}

fn cosign_verify(cosign: &Path, d: &Path, identity: &str, bundle: &str) -> Result<Output, std::io::Error> {
    cosign_verify_with(cosign, d, "trusted_root.json", identity, bundle, &[NO_SCT])
}

/// cosign's flag to accept certificates without SCTs (the local CA's have none).
const NO_SCT: &str = "--insecure-ignore-sct=true";

/// cosign's offline verification of a certificate bundle against `root`, without a
/// transparency log, with `flags` added.
fn cosign_verify_with(
    cosign: &Path,
    d: &Path,
    root: &str,
    identity: &str,
    bundle: &str,
    flags: &[&str],
) -> Result<Output, std::io::Error> {
    let mut args = vec![
        "verify-blob-attestation",
        "--bundle",
        bundle,
        "--new-bundle-format",
        "--trusted-root",
        root,
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        ISSUER,
        "--type",
        PROVENANCE,
        "--insecure-ignore-tlog=true",
    ];
    args.extend_from_slice(flags);
    args.push("app");
    run(cosign, d, &args)
}

/// The first element of a DER SEQUENCE (a certificate's TBSCertificate), whole.
fn first_element(der: &[u8]) -> Result<&[u8], Box<dyn std::error::Error>> {
    // (header length, content length) of the TLV at the start of `b`.
    fn tlv(b: &[u8]) -> Result<(usize, usize), Box<dyn std::error::Error>> {
        let first = *b.get(1).ok_or("short DER")?;
        if first < 0x80 {
            return Ok((2, usize::from(first)));
        }
        let n = usize::from(first & 0x7f);
        let len = b.get(2..2 + n).ok_or("short DER")?.iter().fold(0usize, |acc, x| acc << 8 | usize::from(*x));
        Ok((2 + n, len))
    }
    let (outer_header, _) = tlv(der)?;
    let inner = der.get(outer_header..).ok_or("short DER")?;
    let (header, len) = tlv(inner)?;
    Ok(inner.get(..header + len).ok_or("short DER")?)
}

/// A CT log of the test: its key, and SCTs over a precertificate.
pub(crate) struct CtLog {
    key: String,
    spki: Vec<u8>,
}

impl CtLog {
    pub(crate) fn new(d: &Path, name: &str) -> Result<CtLog, Box<dyn std::error::Error>> {
        let (key, der) = (format!("{name}.key"), format!("{name}.der"));
        openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key])?;
        openssl(d, &["ec", "-in", &key, "-pubout", "-outform", "DER", "-out", &der])?;
        Ok(CtLog { spki: std::fs::read(d.join(&der))?, key })
    }

    /// A TLS SignedCertificateTimestampList with one v1 SCT over `tbs` issued by the
    /// key `issuer_spki` (RFC 6962 §3.2), its signature bytes passed through `mangle`.
    fn sct_list(
        &self,
        d: &Path,
        issuer_spki: &[u8],
        tbs: &[u8],
        mangle: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let timestamp = (now() as u64 - 60) * 1000;
        let mut signed = vec![0u8, 0];
        signed.extend_from_slice(&timestamp.to_be_bytes());
        signed.extend_from_slice(&[0, 1]);
        signed.extend_from_slice(&sha256(issuer_spki));
        signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(tbs);
        signed.extend_from_slice(&[0, 0]);
        std::fs::write(d.join("sct-msg.bin"), &signed)?;
        openssl(d, &["dgst", "-sha256", "-sign", &self.key, "-out", "sct-sig.bin", "sct-msg.bin"])?;
        let mut signature = std::fs::read(d.join("sct-sig.bin"))?;
        mangle(&mut signature);
        let mut sct = vec![0u8];
        sct.extend_from_slice(&sha256(&self.spki));
        sct.extend_from_slice(&timestamp.to_be_bytes());
        sct.extend_from_slice(&[0, 0, 4, 3]);
        sct.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        sct.extend_from_slice(&signature);
        let mut entries = (sct.len() as u16).to_be_bytes().to_vec();
        entries.extend_from_slice(&sct);
        let mut list = (entries.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&entries);
        Ok(list)
    }

    /// The trusted root entry of this log.
    pub(crate) fn root_entry(&self) -> Value {
        json!({
            "baseUrl": "https://ct.example.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": STANDARD.encode(&self.spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": STANDARD.encode(sha256(&self.spki))}
        })
    }
}

/// A leaf like `leaf.pem` that embeds one SCT of `log` (its signature through
/// `mangle`), written to `out`: the precertificate is issued first, its TBS signed by
/// the log, then the certificate again with the SCT list extension last. Both are
/// issued in the same second, so their TBS differ only by that extension.
fn make_leaf_with_sct(d: &Path, log: &CtLog, out: &str, mangle: impl Fn(&mut Vec<u8>)) -> TestResult {
    let ext = fulcio_leaf_ext(&format!("email:{SIGNER}"), true, true);
    issue_with_sct(d, log, "ca", "r.pub", &ext, out, mangle)
}

/// A leaf `out` for the public key `public` (PEM) issued by `ca`'s intermediate with the
/// extension lines `ext`, embedding one SCT of `log` (its signature through `mangle`);
/// see [`make_leaf_with_sct`].
pub(crate) fn issue_with_sct(
    d: &Path,
    log: &CtLog,
    ca: &str,
    public: &str,
    ext: &str,
    out: &str,
    mangle: impl Fn(&mut Vec<u8>),
) -> TestResult {
    let (inter_key, inter_der) = (format!("{ca}-inter.key"), format!("{ca}-inter.der"));
    openssl(d, &["ec", "-in", &inter_key, "-pubout", "-outform", "DER", "-out", &inter_der])?;
    let issuer_spki = std::fs::read(d.join(&inter_der))?;
    let start = |pem: &str| -> Result<String, Box<dyn std::error::Error>> {
        let o = Command::new("openssl").current_dir(d).args(["x509", "-noout", "-startdate", "-in", pem]).output()?;
        Ok(String::from_utf8(o.stdout)?)
    };
    for _ in 0..5 {
        make_leaf(d, ca, public, ext, "pre.pem")?;
        let tbs = first_element(&pem_to_der(&std::fs::read_to_string(d.join("pre.pem"))?)?)?.to_vec();
        let list = log.sct_list(d, &issuer_spki, &tbs, &mangle)?;
        // The extension's value is an OCTET STRING holding the TLS list (RFC 6962 §3.3).
        let mut octets = match list.len() {
            n @ 0..=127 => vec![0x04, n as u8],
            n @ 128..=255 => vec![0x04, 0x81, n as u8],
            n => [&[0x04, 0x82][..], &(n as u16).to_be_bytes()].concat(),
        };
        octets.extend_from_slice(&list);
        let with_sct = format!("{ext}1.3.6.1.4.1.11129.2.4.2 = DER:{}\n", hex(&octets));
        make_leaf(d, ca, public, &with_sct, out)?;
        if start("pre.pem")? == start(out)? {
            return Ok(());
        }
    }
    Err("could not issue the precertificate and the certificate within one second".into())
}

/// RFC 6962 SCTs: a certificate must embed one that a CT log of the trusted root
/// signed over its precertificate, unless --insecure-ignore-sct; cosign agrees on each
/// case.
#[test]
fn signed_certificate_timestamps_are_required_and_verified() -> TestResult {
    let cosign = cosign()?;
    let dir = setup()?;
    let d = dir.path();
    let (ct, other_ct) = (CtLog::new(d, "ct")?, CtLog::new(d, "other-ct")?);
    let mut root = trusted_root(d, &["ca-inter.pem", "ca-root.pem"], None)?;
    root["ctlogs"] = json!([ct.root_entry()]);
    std::fs::write(d.join("ct_root.json"), root.to_string())?;
    make_leaf_with_sct(d, &ct, "sct-leaf.pem", |_| {})?;
    make_leaf_with_sct(d, &ct, "bad-sct-leaf.pem", |sig| {
        let last = sig.len() - 1;
        sig[last - 4] ^= 1;
    })?;
    make_leaf_with_sct(d, &other_ct, "other-sct-leaf.pem", |_| {})?;
    for (cert, bundle) in [
        ("sct-leaf.pem", "sct.sigstore.json"),
        ("bad-sct-leaf.pem", "bad-sct.sigstore.json"),
        ("other-sct-leaf.pem", "other-sct.sigstore.json"),
        ("leaf.pem", "no-sct.sigstore.json"),
    ] {
        ok(&sign(d, cert, bundle)?, &format!("reprove attest sign --certificate {cert}"))?;
    }
    let trust = with(&["--trusted-root", "ct_root.json", "--insecure-ignore-tlog"], &IDENTITY);

    let (code, failed, doc, all) = verify_sct(d, &trust, "sct.sigstore.json")?;
    assert_eq!((code, failed.len()), (Some(0), 0), "{all}");
    let sct = doc["checks"].as_array().ok_or("checks")?.iter().find(|c| c["name"] == "sct").ok_or("no sct check")?;
    assert!(
        sct["detail"].as_str().unwrap_or_default().contains("SCT from ctlogs[0] (https://ct.example.test)"),
        "{all}"
    );
    assert!(!all.contains("insecure-ignore-sct"), "{all}");
    ok(&cosign_verify_with(&cosign, d, "ct_root.json", SIGNER, "sct.sigstore.json", &[])?, "cosign, valid SCT")?;

    let rejected: [(&str, &str); 3] = [
        ("bad-sct.sigstore.json", "does not verify over this certificate"),
        ("other-sct.sigstore.json", "no trusted CT log has id"),
        ("no-sct.sigstore.json", "embeds no SCT"),
    ];
    for (bundle, why) in rejected {
        let (code, failed, _, all) = verify_sct(d, &trust, bundle)?;
        assert_eq!((code, failed), (Some(1), vec!["sct".to_owned()]), "{bundle}: {all}");
        assert!(all.contains(why), "{bundle}: {all}");
        let cosign_out = cosign_verify_with(&cosign, d, "ct_root.json", SIGNER, bundle, &[])?;
        assert!(!cosign_out.status.success(), "cosign accepted {bundle}: {}", text(&cosign_out));
        // With the insecure flag both accept it, and reprove says what was skipped.
        let (code, _, doc, all) = verify_sct(d, &with(&trust, &["--insecure-ignore-sct"]), bundle)?;
        assert_eq!(code, Some(0), "{bundle}: {all}");
        assert!(doc["warnings"].to_string().contains("--insecure-ignore-sct"), "{all}");
        ok(
            &cosign_verify_with(&cosign, d, "ct_root.json", SIGNER, bundle, &[NO_SCT])?,
            "cosign --insecure-ignore-sct",
        )?;
    }
    // A valid SCT, but the trust material lists no CT log: nothing to verify it with.
    let (code, failed, _, all) = verify_sct(
        d,
        &with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &IDENTITY),
        "sct.sigstore.json",
    )?;
    assert_eq!((code, failed), (Some(1), vec!["sct".to_owned()]), "{all}");
    assert!(all.contains("no CT log key"), "{all}");
    assert!(all.contains("to verify the certificate's SCT with; --insecure-ignore-sct skips this check"), "{all}");
    Ok(())
}

#[test]
fn cosign_and_reprove_verify_each_others_certificate_bundles() -> TestResult {
    let cosign = cosign()?;
    let dir = setup()?;
    let d = dir.path();
    // reprove signs with the key and its certificate; cosign verifies against the
    // trusted root that lists the CA, with the identity and issuer.
    ok(&sign(d, "leaf.pem", "r.sigstore.json")?, "reprove attest sign --certificate")?;
    ok(&cosign_verify(&cosign, d, SIGNER, "r.sigstore.json")?, "cosign verifies reprove's certificate bundle")?;
    let wrong = cosign_verify(&cosign, d, "mallory@example.test", "r.sigstore.json")?;
    assert!(!wrong.status.success(), "cosign accepted the wrong identity: {}", text(&wrong));

    // cosign signs with the same key and certificate; reprove verifies.
    let args = [
        "attest-blob",
        "--key",
        "r.key",
        "--certificate",
        "leaf.pem",
        "--certificate-chain",
        "ca-chain.pem",
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
    ];
    ok(&run(&cosign, d, &args)?, "cosign attest-blob --certificate")?;
    let written: Value = serde_json::from_str(&std::fs::read_to_string(d.join("c.sigstore.json"))?)?;
    assert_eq!(written["verificationMaterial"]["certificate"]["rawBytes"], cert_raw(d, "leaf.pem")?, "{written}");
    let trust = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &IDENTITY);
    let (code, failed, _, all) = verify(d, &trust, "c.sigstore.json")?;
    assert_eq!((code, failed.len()), (Some(0), 0), "{all}");
    let (code, failed, _, all) = verify(
        d,
        &[
            "--trusted-root",
            "trusted_root.json",
            "--insecure-ignore-tlog",
            "--certificate-identity",
            SIGNER,
            "--certificate-oidc-issuer",
            "https://other.example.test",
        ],
        "c.sigstore.json",
    )?;
    assert_eq!((code, failed), (Some(1), vec!["identity".to_owned()]), "{all}");
    // cosign accepts its own bundle the same way (a sanity check of the flags above).
    ok(&cosign_verify(&cosign, d, SIGNER, "c.sigstore.json")?, "cosign verifies its own certificate bundle")?;
    Ok(())
}

#[test]
fn attest_provenance_bundles_carry_the_certificate() -> TestResult {
    let dir = setup()?;
    let d = dir.path();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/not-reproduced.json");
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(fixture)?)?;
    let app = hex(&sha256(&std::fs::read(d.join("app"))?));
    report["verdict"] = json!("reproduced");
    report["causes"] = json!([]);
    report["rebuilt"]["sha256"] = json!(app);
    report["subject"]["sha256"] = json!(app);
    report["inputs"]["reference"]["sha256"] = json!(app);
    std::fs::write(d.join("report.json"), report.to_string())?;
    let base = ["attest", "provenance", "report.json", "--key", "r.key", "--out", "att", "--certificate", "leaf.pem"];
    // The certificate goes into bundles only.
    let out = reprove(d, &base)?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("add --bundle"), "{}", text(&out));
    ok(
        &reprove(d, &with(&base, &["--bundle", "--certificate-chain", "ca-chain.pem"]))?,
        "attest provenance --certificate",
    )?;
    let mut bundles: Vec<String> = std::fs::read_dir(d.join("att"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".sigstore.json"))
        .collect();
    bundles.sort();
    assert_eq!(bundles.len(), 2, "{bundles:?}");
    let leaf = cert_raw(d, "leaf.pem")?;
    for name in &bundles {
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(d.join("att").join(name))?)?;
        assert_eq!(bundle["verificationMaterial"]["certificate"]["rawBytes"], json!(leaf), "{name}");
    }
    let provenance = bundles.iter().find(|n| n.contains(".provenance.")).ok_or("no provenance bundle")?;
    let trust = with(&["--trusted-root", "trusted_root.json", "--insecure-ignore-tlog"], &IDENTITY);
    let (code, failed, _, all) = verify(d, &trust, &format!("att/{provenance}"))?;
    assert_eq!((code, failed.len()), (Some(0), 0), "{all}");
    Ok(())
}

/// Every single-byte corruption of a real leaf, chain and log entry is an error or a
/// result, never a panic.
#[test]
fn corrupted_certificates_and_entries_never_panic() -> TestResult {
    use attest::certificate::SigningCertificate;
    use attest::trust_root::TrustMaterial;
    let dir = setup()?;
    let d = dir.path();
    let leaf = pem_to_der(&std::fs::read_to_string(d.join("leaf.pem"))?)?;
    let mut trust = TrustMaterial::default();
    trust.add_pem_chain(&std::fs::read_to_string(d.join("ca-chain.pem"))?, "chain")?;
    assert!(trust.verify_chain(&leaf, &[], now()).is_ok());
    for i in 0..leaf.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = leaf.clone();
            bad[i] ^= flip;
            let _ = SigningCertificate::from_der(&bad);
            let _ = trust.verify_chain(&bad, &[bad.clone()], now());
        }
        let _ = SigningCertificate::from_der(&leaf[..i]);
    }
    // Hostile tlog entries and verification material through the CLI: a result, no crash.
    ok(&sign(d, "leaf.pem", "b.sigstore.json")?, "sign")?;
    let trust = with(&["--trusted-root", "trusted_root.json"], &IDENTITY);
    let hostile = [
        json!({"tlogEntries": "x", "certificate": {"rawBytes": STANDARD.encode(&leaf)}}),
        json!({"tlogEntries": [{"logIndex": "-1", "integratedTime": "99999999999999", "logId": {"keyId": "AA=="}, "canonicalizedBody": "!"}], "certificate": {"rawBytes": STANDARD.encode(&leaf)}}),
        json!({"certificate": {"rawBytes": "!!"}}),
        json!({"certificate": {"rawBytes": STANDARD.encode(&leaf[..40])}}),
        json!({"x509CertificateChain": {"certificates": []}}),
        json!({"x509CertificateChain": {"certificates": [{"rawBytes": 7}]}}),
    ];
    for material in hostile {
        edit_bundle(d, "b.sigstore.json", "h.sigstore.json", |b| b["verificationMaterial"] = material.clone())?;
        let (code, failed, _, all) = verify(d, &trust, "h.sigstore.json")?;
        assert_eq!(code, Some(1), "{material}: {all}");
        assert!(failed.first().is_some_and(|f| f == "certificate" || f == "tlog"), "{material}: {all}");
    }
    Ok(())
}

/// `openssl ts` configuration of the test's timestamping authority.
const TSA_CONFIG: &str = "[tsa]\ndefault_tsa = tsa1\n[tsa1]\nserial = tsaserial\ncrypto_device = builtin\n\
    signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n\
    ordering = no\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n";

/// A timestamping authority `name`: a root (`make_ca`'s) and a TSA certificate
/// `name`-tsa.pem/.key it issued, with the critical timeStamping EKU RFC 3161 requires.
fn make_tsa(d: &Path, name: &str) -> TestResult {
    make_ca(d, name)?;
    let (key, csr, cert) = (format!("{name}-tsa.key"), format!("{name}-tsa.csr"), format!("{name}-tsa.pem"));
    openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key])?;
    openssl(d, &["req", "-config", "req.cnf", "-new", "-key", &key, "-subj", "/O=reprove tests/CN=tsa", "-out", &csr])?;
    std::fs::write(
        d.join("tsa.ext"),
        "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = critical,timeStamping\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )?;
    let (root, root_key) = (format!("{name}-root.pem"), format!("{name}-root.key"));
    openssl(
        d,
        &["x509", "-req", "-in", &csr, "-CA", &root, "-CAkey", &root_key, "-set_serial", "9", "-days", "3650"]
            .into_iter()
            .chain(["-extfile", "tsa.ext", "-out", &cert])
            .collect::<Vec<_>>(),
    )?;
    Ok(())
}

/// A DER TimeStampResp from `tsa` over `data` (openssl ts -query, then -reply).
fn timestamp(d: &Path, tsa: &str, data: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    std::fs::write(d.join("ts.cnf"), TSA_CONFIG)?;
    std::fs::write(d.join("tsaserial"), "01\n")?;
    std::fs::write(d.join("ts-data.bin"), data)?;
    openssl(d, &["ts", "-query", "-data", "ts-data.bin", "-sha256", "-cert", "-no_nonce", "-out", "q.tsq"])?;
    let (cert, key) = (format!("{tsa}-tsa.pem"), format!("{tsa}-tsa.key"));
    openssl(
        d,
        &[
            "ts",
            "-reply",
            "-config",
            "ts.cnf",
            "-queryfile",
            "q.tsq",
            "-signer",
            &cert,
            "-inkey",
            &key,
            "-out",
            "r.tsr",
        ],
    )?;
    Ok(std::fs::read(d.join("r.tsr"))?)
}

/// RFC 3161 timestamps with --use-signed-timestamps (cosign's flag): a timestamp from
/// a TSA of the trusted root over the envelope's signature gives the signing time;
/// one over other bytes, one from an untrusted TSA, a tampered one and none are
/// refused. cosign v2.4.1 decides every case the same way.
#[test]
fn rfc3161_timestamps_give_the_signing_time() -> TestResult {
    let cosign = cosign()?;
    let dir = setup()?;
    let d = dir.path();
    make_tsa(d, "tsa")?;
    make_tsa(d, "rogue")?;
    let mut root = trusted_root(d, &["ca-inter.pem", "ca-root.pem"], None)?;
    let der = |name: &str| -> Result<String, Box<dyn std::error::Error>> { cert_raw(d, name) };
    root["timestampAuthorities"] = json!([{
        "subject": {"organization": "reprove tests", "commonName": "tsa"},
        "uri": "https://tsa.example.test",
        "certChain": {"certificates": [{"rawBytes": der("tsa-tsa.pem")?}, {"rawBytes": der("tsa-root.pem")?}]},
        "validFor": {"start": "2020-01-01T00:00:00Z"}
    }]);
    std::fs::write(d.join("ts_root.json"), root.to_string())?;
    ok(&sign(d, "leaf.pem", "b.sigstore.json")?, "reprove attest sign --certificate")?;
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(d.join("b.sigstore.json"))?)?;
    let signature = STANDARD.decode(bundle["dsseEnvelope"]["signatures"][0]["sig"].as_str().ok_or("sig")?)?;
    let put = |name: &str, response: &[u8]| {
        edit_bundle(d, "b.sigstore.json", name, |b| {
            b["verificationMaterial"]["timestampVerificationData"] =
                json!({"rfc3161Timestamps": [{"signedTimestamp": STANDARD.encode(response)}]})
        })
    };
    let good = timestamp(d, "tsa", &signature)?;
    put("ts.sigstore.json", &good)?;
    put("other-bytes.sigstore.json", &timestamp(d, "tsa", b"some other signature")?)?;
    put("rogue.sigstore.json", &timestamp(d, "rogue", &signature)?)?;
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last - 3] ^= 1; // inside the SignerInfo's signature, the response's last field
    put("tampered.sigstore.json", &tampered)?;

    let trust =
        with(&["--trusted-root", "ts_root.json", "--use-signed-timestamps", "--insecure-ignore-tlog"], &IDENTITY);
    let cosign_verify_ts = |bundle: &str| {
        cosign_verify_with(&cosign, d, "ts_root.json", SIGNER, bundle, &["--use-signed-timestamps", NO_SCT])
    };
    let (code, failed, doc, all) = verify(d, &trust, "ts.sigstore.json")?;
    assert_eq!((code, failed.len()), (Some(0), 0), "{all}");
    let step = |doc: &Value, name: &str| -> String {
        doc["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .map_or_else(String::new, |c| c["detail"].as_str().unwrap_or_default().to_owned())
    };
    assert!(step(&doc, "timestamp").contains("RFC 3161 timestamp of timestampAuthorities[0]"), "{all}");
    assert!(step(&doc, "tlog").contains("comes from the RFC 3161 timestamp"), "{all}");
    assert!(step(&doc, "tlog").starts_with("SKIPPED (--insecure-ignore-tlog): "), "{all}");
    // The signing time is the timestamp's, not the current time.
    assert!(!all.contains("CURRENT time"), "{all}");
    assert!(all.contains("the signing time is the RFC 3161 timestamp's"), "{all}");
    ok(&cosign_verify_ts("ts.sigstore.json")?, "cosign --use-signed-timestamps")?;

    let rejected: [(&str, &str); 4] = [
        ("other-bytes.sigstore.json", "message imprint is not the hash of this envelope's signature"),
        ("rogue.sigstore.json", "is not the token's signer"),
        ("tampered.sigstore.json", "the token's signature does not verify under its certificate"),
        ("b.sigstore.json", "--use-signed-timestamps: the bundle has no RFC 3161 timestamp"),
    ];
    for (bundle, why) in rejected {
        let (code, failed, _, all) = verify(d, &trust, bundle)?;
        assert_eq!((code, failed), (Some(1), vec!["timestamp".to_owned()]), "{bundle}: {all}");
        assert!(all.contains(why), "{bundle}: {all}");
        let out = cosign_verify_ts(bundle)?;
        assert!(!out.status.success(), "cosign accepted {bundle}: {}", text(&out));
    }
    // Without --use-signed-timestamps a timestamp is not looked at (as cosign): the
    // insecure current time is used, and said so.
    let (code, _, _, all) = verify(
        d,
        &with(&["--trusted-root", "ts_root.json", "--insecure-ignore-tlog"], &IDENTITY),
        "rogue.sigstore.json",
    )?;
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("CURRENT time"), "{all}");
    Ok(())
}
