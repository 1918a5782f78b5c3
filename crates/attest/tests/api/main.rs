//! The attest crate's API, one test binary: statement generation checked against
//! `schemas/` (`generate`) and the example policies (`policy_examples`).

mod generate;
mod policy_examples;
