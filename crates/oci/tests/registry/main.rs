//! The oci crate against a real registry: Debian's `docker-registry` on 127.0.0.1
//! (`ci/setup` installs it), with images crafted and pushed by the registry helper
//! the CLI's end-to-end tests share (`tests/it/support/registry.rs`).
//!
//! - `faults`: a registry that misbehaves (5xx, broken and truncated downloads);
//! - `hostile`: crafted layers against the unpacker.

#[path = "../../../../tests/it/support/registry.rs"]
mod registry;

mod faults;
mod hostile;
