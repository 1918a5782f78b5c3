//! Explaining why two Go binaries differ.
