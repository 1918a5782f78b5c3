//! reprove's attestations: in-toto statements, SLSA provenance and VSA
//! predicates, DSSE envelopes, signing and policy.
//!
//! Empty for now: it fills in with the signed-provenance issue. The crate exists
//! so that the dependency direction (CLI → attest → verifier types) is fixed from
//! the start.
#![deny(missing_docs)]
