//! reprove's attestations: in-toto statements, SLSA provenance and VSA predicates,
//! DSSE envelopes and the keys that sign them.
//!
//! - [`statement`]: in-toto Statement v1 and ResourceDescriptor.
//! - [`provenance`]: SLSA Provenance v1 and reprove's `go-rebuild/v1` buildType parameters.
//! - [`vsa`]: SLSA Verification Summary v1.
//! - [`dsse`]: DSSE envelopes: PAE, signing, threshold verification.
//! - [`keys`]: ECDSA P-256 and Ed25519 keys behind the [`keys::Signer`] trait.
//! - [`bundle`]: Sigstore bundle v0.3 around an envelope; telling the file kinds apart.
//! - [`generate`]: the provenance and VSA statements of a rebuild, from plain inputs.
//! - [`policy`]: the TOML verification policy and its rules.
//! - [`certificate`]: X.509 signing certificates (Fulcio-style SANs and OIDC issuer
//!   extensions) and identity rules.
//! - [`trust_root`]: Sigstore trusted roots and PEM chains; certificate path validation.
//! - [`tlog`]: transparency-log entries verified offline (SET, inclusion proof, checkpoint).
//! - [`cert_verify`]: the checks of a certificate bundle's signer, in order.
//! - [`verify`]: the whole verification of an envelope or bundle (signer, signatures,
//!   statement, predicate type, subject, policy) as named checks: what `reprove attest
//!   verify` prints, for servers to reuse.
//! - [`from_report`]: a `reprove verify` report mapped to the provenance and VSA
//!   inputs of [`generate`].
//! - [`keyless`]: the Fulcio and Rekor request and answer bodies of keyless signing,
//!   as pure functions (no client: the live flow is not implemented).
//!
//! What it is not (yet): OCI storage, and keyless *signing* (an OIDC token, a Fulcio
//! certificate, a Rekor upload: `docs/keyless.md`, behind the reserved `keyless`
//! feature) follow in later slices of the signed-provenance issue. Verifying
//! certificate bundles, and signing with a key and its certificate, need no service and
//! are always built. This crate does no network I/O and no file I/O; the CLI
//! reads and writes the files.
//!
//! # Design notes
//!
//! `statement`, `provenance` (with our `go-rebuild/v1` buildType, documented in
//! `docs/buildtype.md`) and `vsa`: versioned wire types that keep unknown fields.
//! `dsse`: PAE, signing, threshold verification counting distinct keys. `bundle`:
//! Sigstore bundle v0.3 around an envelope (public-key hint, no keyids inside) and
//! `Attestation::detect`, which tells an envelope from a bundle by content. `generate`:
//! the provenance and VSA statements of a rebuild from input structs of its own (no
//! dependency on `verifier`), checked against `schemas/` in `attest/tests/api/generate.rs`.
//! Mapping a `rebuild::report::v1::Report` to those input structs is the
//! CLI's job (`src/cmd/provenance.rs`, behind `reprove attest provenance` and
//! `reprove verify --attest`), since it is the one crate that sees both; a report
//! field that cannot be attested is an input error naming it.
//! `policy`:
//! the TOML policy (`toml`, parse and serde only), one outcome per rule named as the
//! file writes it; `time`: RFC 3339 and durations without a date library. `keys`:
//! P-256 and Ed25519 behind the `Signer` trait (the extension point for KMS or PKCS#11
//! signers; `KeySigner` is the in-memory one), cosign key files. Generation, PKCS#8 and
//! SPKI parsing, signing and cosign's encrypted key format (scrypt + secretbox) are
//! the `sigstore` crate's; verification, the hot path of `attest verify`, is ring's (the
//! crate's OpenSSL backend re-reads the key and initialises OpenSSL on each call). The
//! crate is used without default features; it cannot be built without a crypto backend,
//! and of its two, OpenSSL (`native-tls`: the system library; no HTTP, OCI or TUF code
//! comes with it) and aws-lc-rs (`rustls-tls`: a C build of its own), reprove takes
//! OpenSSL, so building needs `libssl-dev`. On Debian x86_64 and arm64 OpenSSL is linked
//! statically (`.cargo/config.toml`): the shared libraries cost every invocation about a
//! millisecond of symbol binding (BENCHMARKS.md g–h). `keys` keeps what the crate does not decide: the algorithms (RSA and
//! other curves are a typed `UnsupportedKeyType`), the canonical SPKI that key ids hash,
//! LF-terminated PEM as cosign writes it, and checks made before the crate sees a key
//! file (the secretbox nonce length, on which the crate would panic, and the scrypt work
//! factors). No network and no file I/O: the CLI reads and writes files.
//! Certificate bundles (always built; no service needed): `certificate` reads a
//! signing certificate (x509-cert: key, validity, email/URI SANs, Fulcio's OIDC issuer
//! extensions `.1.8` and `.1.1`, key usage, EKU) and holds the identity rules (exact or
//! RE2 regular expression, as cosign's flags); `trust_root` reads a Sigstore
//! TrustedRoot JSON (or a PEM chain) and validates a leaf with rustls-webpki at a given
//! time (anchors: the roots of the authorities valid then; EKU, where present, must
//! allow code signing); `tlog` verifies a bundle's transparency-log entries offline
//! (the SET over Rekor's canonical JSON, the RFC 6962 inclusion proof and its signed
//! checkpoint, and that the entry's `dsse`/`intoto` body records this envelope and
//! certificate); `sct` parses a leaf's embedded signed certificate timestamps and
//! verifies them over the precertificate (the TBSCertificate without the SCT extension,
//! re-encoded, and the issuer's key hash) with the trusted root's `ctlogs` keys;
//! `tsa` verifies RFC 3161 timestamps (x509-tsp and cms types; the CMS signature over
//! the signed attributes with ring, the TSA certificate with rustls-webpki) against the
//! trusted root's `timestampAuthorities`;
//! `cert_verify` runs the signer checks in order (`certificate`,
//! `keyUsage`, `extendedKeyUsage`, `tlog`, `timestamp` when asked, `certificateValidity`,
//! `certificateChain`, `sct`, `identity`) and hands the leaf's key to the usual DSSE verification. The policy's
//! `[certificate] identities` are the rule `certificate.identities`. `keyless` holds
//! the Fulcio and Rekor request and answer bodies as pure functions; live keyless
//! signing (OIDC, the HTTP calls) is not implemented (`docs/keyless.md`).
//!
//! **Invariant:** the signing time of a certificate bundle is a verified log entry's
//! integratedTime, or the current time only when `--insecure-ignore-tlog` asks for it,
//! with a warning in the output; never a silent fallback. Likewise a certificate
//! without a verified SCT is accepted only under `--insecure-ignore-sct`, with a warning.
//!
//! **Invariant:** private key bytes live only in `keys::Secret` (no `Debug`, zeroed
//! on drop) and are never logged.
//!
//! **Invariant:** a DSSE `keyid` never decides anything; it only makes error
//! messages precise.
#![deny(missing_docs)]

/// An error that is one message, for checks whose failures are reported as text:
/// a type of its own per kind of check, convertible to the message.
macro_rules! message_error {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        pub struct $name(pub String);

        impl From<$name> for String {
            fn from(e: $name) -> String {
                e.0
            }
        }
    };
}
pub(crate) use message_error;

pub mod bundle;
pub mod cert_verify;
pub mod certificate;
pub mod dsse;
pub mod from_report;
pub mod generate;
pub mod image_vsa;
pub mod keyless;
pub mod keys;
pub mod policy;
pub mod provenance;
pub mod sct;
pub mod statement;
pub mod tlog;
pub mod trust_root;
pub mod tsa;
pub mod verify;
pub mod vsa;
