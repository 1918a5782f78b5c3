//! Admission: may an image run, decided from the signed VSAs attached to its digest in
//! its registry, under an admission policy. Shared by `reprove admit` (the pre-merge
//! check of Kubernetes manifests) and the admission webhook.
//!
//! - [`policy`]: the policy file (trusted verifiers, threshold, maximum age, coverage,
//!   rules per namespace and image, exemptions, mode, `on_error`);
//! - [`mod@decide`]: the decision, batched (one registry fetch per distinct digest), under a
//!   deadline, failing closed; a closed set of [`decide::Reason`]s;
//! - [`manifest`]: the images of Kubernetes workloads in YAML, and the in-place edit
//!   that pins a tag to its digest.
//!
//! What it isn't: it verifies nothing itself (`attest::verify` checks each attestation,
//! `attach::fetch` finds them, `oci` talks to the registry), and it never rebuilds.
#![deny(missing_docs)]

pub mod decide;
pub mod manifest;
pub mod policy;

pub use decide::{decide, decide_all, Decision, Fetcher, Reason, Request};
pub use policy::Policy;
