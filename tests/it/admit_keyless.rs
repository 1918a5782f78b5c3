//! Keyless verifiers in `reprove admit`: a policy that trusts a certificate identity
//! (`subject`/`subject_regexp` with `issuer`/`issuer_regexp` and a Sigstore
//! `trusted_root`), end to end against real registries on 127.0.0.1. The image VSAs are
//! signed with certificates from the offline test CA of `attest_certificate` (a leaf
//! with Fulcio's extensions and an embedded SCT of the test's CT log), given the entry
//! of the test's transparency log as Rekor would, and attached as Sigstore bundles with
//! `reprove attest push` (a referrer, and cosign's legacy `.att` with the certificate and
//! the entry in its annotations: both verify). Then each way a keyless VSA can fail to count is denied with
//! its reason, and a threshold of 2 counts a key and an identity as two verifiers but
//! one identity twice as one, and one certificate-signed VSA as one verifier even when
//! two verifiers' identities match it.

use std::path::Path;

use attest::bundle::Bundle;
use attest::statement::{Statement, PAYLOAD_TYPE_IN_TOTO};
use serde_json::{json, Value};

use crate::admit::{image_vsa, sign_and_push, time_ago};
use crate::attest_certificate::{
    fulcio_leaf_ext_for, issue_with_sct, make_ca, now, pem_to_der, trusted_root, CtLog, Log, ISSUER, SIGNER,
};
use crate::attest_registry::{keygen, push_image, reprove, Reg, PASSWORD};
use crate::support::schema::assert_valid;
use crate::support::signing::{ok, text, TestResult};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The test CA's world in a directory: the signing key `r` (its certificates are issued
/// for it), a key `k` for keyed VSAs, the CA `ca` and an unrelated CA `other`, a CT log
/// and a transparency log, `trusted_root.json` listing `ca`, both logs and no `other`,
/// and the leaves:
/// - `signer.pem`: `SIGNER` for `ISSUER`, from `ca` (the trusted identity);
/// - `mallory.pem`: another subject; `issuer.pem`: another issuer; `otherca.pem`: the
///   trusted identity, from `other`.
pub(crate) struct Ca {
    pub(crate) dir: tempfile::TempDir,
    log: Log,
}

impl Ca {
    pub(crate) fn new() -> Result<Ca> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        keygen(d, "r")?;
        keygen(d, "k")?;
        make_ca(d, "ca")?;
        make_ca(d, "other")?;
        let ct = CtLog::new(d, "ct")?;
        let log = Log::new(d)?;
        let mut root = trusted_root(d, &["ca-inter.pem", "ca-root.pem"], Some(&log.spki))?;
        root["ctlogs"] = json!([ct.root_entry()]);
        std::fs::write(d.join("trusted_root.json"), root.to_string())?;
        let leaves = [
            ("ca", SIGNER, ISSUER, "signer.pem"),
            ("ca", "mallory@example.test", ISSUER, "mallory.pem"),
            ("ca", SIGNER, "https://other-issuer.example.test", "issuer.pem"),
            ("other", SIGNER, ISSUER, "otherca.pem"),
        ];
        for (ca, san, issuer, out) in leaves {
            let ext = fulcio_leaf_ext_for(&format!("email:{san}"), issuer, true, true);
            issue_with_sct(d, &ct, ca, "r.pub", &ext, out, |_| {})?;
        }
        Ok(Ca { dir, log })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Signs `statement` with `r.key` into a Sigstore bundle carrying the certificate
    /// `leaf` and a transparency-log entry integrated at `integrated` (Unix seconds),
    /// written to `file`.
    pub(crate) fn sign(&self, leaf: &str, statement: &Statement, integrated: i64, file: &str) -> TestResult {
        let d = self.path();
        let signer =
            attest::keys::read_encrypted_private_key(&std::fs::read_to_string(d.join("r.key"))?, PASSWORD.as_bytes())?;
        let envelope = attest::dsse::Envelope::sign(PAYLOAD_TYPE_IN_TOTO, &serde_json::to_vec(statement)?, &[&signer])?;
        let der = pem_to_der(&std::fs::read_to_string(d.join(leaf))?)?;
        let mut bundle = serde_json::to_value(Bundle::with_certificate(envelope, &der))?;
        let entry = self.log.entry(d, &bundle, integrated)?;
        bundle["verificationMaterial"]["tlogEntries"] = json!([entry]);
        std::fs::write(d.join(file), bundle.to_string())?;
        Ok(())
    }

    /// [`Ca::sign`], then attaches the bundle to `image` (`name@digest`) with `reprove
    /// attest push`.
    pub(crate) fn sign_and_push(
        &self,
        leaf: &str,
        statement: &Statement,
        integrated: i64,
        image: &str,
        file: &str,
    ) -> TestResult {
        self.sign(leaf, statement, integrated, file)?;
        ok(&reprove(self.path(), &["attest", "push", file, "--image", image], None)?, "reprove attest push")
    }
}

/// The trusted identity as a policy verifier (TOML lines).
pub(crate) fn identity_verifier(name: &str) -> String {
    format!(
        "[[verifiers]]\nname = \"{name}\"\nsubject = \"{SIGNER}\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"trusted_root.json\"\n"
    )
}

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  containers:\n    - name: c\n      image: {image}\n"
    )
}

/// `reprove admit --json --policy POLICY DIR`: the exit code and the document (checked
/// against its schema).
fn admit(d: &Path, policy: &str, manifests: &Path) -> Result<(i32, Value)> {
    let out = reprove(d, &["admit", "--json", "--policy", policy, manifests.to_str().ok_or("path")?], None)?;
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    assert_valid("admit.schema.json", &doc);
    Ok((out.status.code().unwrap_or(-1), doc))
}

fn decision<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no image of {name} in {doc:#}"))
}

/// The details of the VSAs of a decision, joined.
fn details(d: &Value) -> String {
    d["vsas"].as_array().into_iter().flatten().filter_map(|v| v["detail"].as_str()).collect::<Vec<_>>().join("\n")
}

#[test]
fn keyless_verifiers_admit_only_their_identity_from_the_registry() -> TestResult {
    let ca = Ca::new()?;
    let d = ca.path();
    // Logged now, after every certificate was issued.
    let integrated = now();
    for reg in &Reg::both()? {
        let addr = reg.addr();
        let manifests = d.join(format!("manifests-{}", addr.replace([':', '.'], "-")));
        std::fs::create_dir_all(&manifests)?;
        // Pushes the image `name`, signs its PASSED image VSA with each of `keyless`
        // (leaf, integrated time) and `keys`, attaches them, and writes its Pod.
        let image = |name: &str, keyless: &[(&str, i64)], keys: &[&str]| -> Result<String> {
            let pushed = push_image(reg, name, "v1", "amd64")?;
            let full = format!("{addr}/{name}");
            let digest = pushed.manifest_digest.to_string();
            let pinned = format!("{full}@{digest}");
            let vsa = image_vsa(&full, &digest, &["reproduced"], &time_ago(60))?;
            for (i, (leaf, at)) in keyless.iter().enumerate() {
                ca.sign_and_push(leaf, &vsa, *at, &pinned, &format!("{name}-{i}.sigstore.json"))?;
            }
            for key in keys {
                sign_and_push(d, key, &vsa, &pinned, &format!("{name}-{key}.jsonl"))?;
            }
            std::fs::write(manifests.join(format!("{name}.yaml")), pod(name, &pinned))?;
            Ok(pinned)
        };
        image("ok", &[("signer.pem", integrated)], &[])?;
        image("subject", &[("mallory.pem", integrated)], &[])?;
        image("issuer", &[("issuer.pem", integrated)], &[])?;
        image("otherca", &[("otherca.pem", integrated)], &[])?;
        // Logged ten days before the one-day certificate was issued: not valid then.
        image("expired", &[("signer.pem", now() - 10 * 86_400)], &[])?;
        image("keyed", &[], &["k"])?;
        image("mixed", &[("signer.pem", integrated)], &["k"])?;
        image("twice", &[("signer.pem", integrated), ("signer.pem", integrated)], &[])?;

        let head = "version = 1\n[default]\nmax_age = \"30d\"\n";
        std::fs::write(d.join("identity.toml"), format!("{head}{}", identity_verifier("keyless")))?;
        std::fs::write(
            d.join("regexp.toml"),
            format!(
                "{head}[[verifiers]]\nname = \"keyless\"\nsubject_regexp = \"^signer@example\\\\.test$\"\n\
                 issuer_regexp = \"^https://issuer\\\\.example\\\\.test$\"\ntrusted_root = \"trusted_root.json\"\n"
            ),
        )?;
        std::fs::write(
            d.join("threshold.toml"),
            format!(
                "version = 1\n[default]\nmax_age = \"30d\"\nthreshold = 2\n\
                 [[verifiers]]\nname = \"ci\"\nkey = \"k.pub\"\n{}",
                identity_verifier("keyless")
            ),
        )?;

        // Only the identity is trusted, exactly or by regular expressions: the same decisions.
        for policy in ["identity.toml", "regexp.toml"] {
            let (code, doc) = admit(d, policy, &manifests)?;
            assert_eq!(code, 1, "{policy}: {doc:#}");
            let want = [
                ("ok", true, "passed", ""),
                ("subject", false, "untrusted", "identity: email:mallory@example.test (issuer"),
                ("issuer", false, "untrusted", "identity: "),
                ("otherca", false, "untrusted", "certificateChain: "),
                ("expired", false, "untrusted", "certificateValidity: "),
                ("keyed", false, "untrusted", "certificate: "),
                ("mixed", true, "passed", ""),
                ("twice", true, "passed", ""),
            ];
            for (name, allowed, reason, why) in want {
                let got = decision(&doc, name);
                assert_eq!(
                    (got["allowed"].as_bool(), got["reason"].as_str()),
                    (Some(allowed), Some(reason)),
                    "{addr} {policy} {name}: {got:#}"
                );
                if allowed {
                    assert!(
                        got["vsas"].as_array().into_iter().flatten().any(|v| v["verifiers"] == json!(["keyless"])),
                        "{addr} {policy} {name}: {got:#}"
                    );
                    continue;
                }
                // The reason, where it failed, and what to do.
                let all = details(got);
                assert!(all.contains(&format!("keyless: {why}")), "{addr} {policy} {name}: want {why:?} in {all}");
                let message = got["message"].as_str().unwrap_or_default();
                assert!(message.contains(why), "{addr} {policy} {name}: the message names why: {message}");
                let todo = got["todo"].as_str().unwrap_or_default();
                assert!(todo.contains("certificate identity the policy trusts"), "{addr} {policy} {name}: {todo}");
            }
            // Both layouts carry the certificate and the log entry (the legacy `.att` in
            // cosign's annotations): each is accepted.
            let ok_vsas = decision(&doc, "ok")["vsas"].as_array().cloned().unwrap_or_default();
            let sources: Vec<&str> = ok_vsas.iter().filter_map(|v| v["source"].as_str()).collect();
            assert!(
                ok_vsas.len() == 2
                    && ok_vsas.iter().all(|v| v["verifiers"] == json!(["keyless"]))
                    && sources[0].starts_with("referrer ")
                    && sources[1].starts_with("legacy "),
                "{addr} {policy}: {ok_vsas:#?}"
            );
            assert!(
                details(decision(&doc, "issuer")).contains("https://other-issuer.example.test"),
                "{:#}",
                decision(&doc, "issuer")
            );
            assert!(
                details(decision(&doc, "expired")).contains("outside the certificate's validity"),
                "{:#}",
                decision(&doc, "expired")
            );
        }

        // A threshold of 2 with a key and an identity: one VSA of each passes; two VSAs
        // of the one identity are one verifier.
        let (code, doc) = admit(d, "threshold.toml", &manifests)?;
        assert_eq!(code, 1, "{doc:#}");
        let mixed = decision(&doc, "mixed");
        assert_eq!((mixed["allowed"].as_bool(), mixed["reason"].as_str()), (Some(true), Some("passed")), "{mixed:#}");
        assert!(mixed["message"].as_str().is_some_and(|m| m.contains("ci, keyless (threshold 2)")), "{mixed:#}");
        for name in ["twice", "ok", "keyed"] {
            let got = decision(&doc, name);
            assert_eq!(
                (got["allowed"].as_bool(), got["reason"].as_str()),
                (Some(false), Some("below-threshold")),
                "{addr} {name}: {got:#}"
            );
            assert!(
                got["message"].as_str().is_some_and(|m| m.contains("threshold 2 (image: 1)")),
                "{addr} {name}: {got:#}"
            );
        }
        let twice = decision(&doc, "twice");
        let accepted = twice["vsas"].as_array().into_iter().flatten().filter(|v| v["verifiers"] == json!(["keyless"]));
        assert!(accepted.count() >= 2, "both bundles are accepted, for one verifier: {twice:#}");

        // Two verifiers whose identities overlap (a subject and a regexp it matches):
        // one certificate-signed VSA is one signer, it counts for one of them only.
        std::fs::write(
            d.join("overlap.toml"),
            format!(
                "version = 1\n[default]\nthreshold = 2\n{}[[verifiers]]\nname = \"pattern\"\n\
                 subject_regexp = \"^signer@\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"trusted_root.json\"\n",
                identity_verifier("exact")
            ),
        )?;
        let (_, doc) = admit(d, "overlap.toml", &manifests)?;
        let got = decision(&doc, "ok");
        assert_eq!(
            (got["allowed"].as_bool(), got["reason"].as_str()),
            (Some(false), Some("below-threshold")),
            "{addr}: {got:#}"
        );
        assert!(
            got["vsas"].as_array().into_iter().flatten().any(|v| v["verifiers"] == json!(["exact", "pattern"])),
            "both verifiers accept the one VSA: {got:#}"
        );
    }
    Ok(())
}
