//! reprove's end-to-end tests, one test binary with a module per area.

mod tidy;
