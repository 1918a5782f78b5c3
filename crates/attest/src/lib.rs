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
#![deny(missing_docs)]

pub mod bundle;
pub mod cert_verify;
pub mod certificate;
pub mod dsse;
pub mod from_report;
pub mod generate;
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
