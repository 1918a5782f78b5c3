//! reprove's end-to-end tests, one test binary with a module per area; the
//! helpers they share are in `support`.

mod support;

mod tidy;

mod admit;
mod admit_keyless;
mod adversarial;
mod attest_certificate;
mod attest_cli;
mod attest_cosign;
mod attest_policy;
mod attest_provenance;
mod attest_python;
mod attest_registry;
mod audit_discover;
mod audit_e2e;
mod audit_html;
mod audit_syft;
mod buildinfo_check;
mod buildinfo_parity;
mod diff_build_ids;
mod diff_causes;
mod doctor;
mod goinfo_hostile;
mod hostile_source;
mod mod_buildlist;
mod mod_download;
mod mod_failures;
mod mod_hash;
mod mod_parse;
mod mod_sumdb;
mod mod_verify;
mod recipe_cli;
mod recipe_infer;
mod recipe_platform;
mod registry_deadlines;
mod sandbox_image;
mod sandbox_runtimes;
mod serve;
mod serve_dashboard;
mod serve_kube;
mod serve_url;
mod serve_watch;
mod serve_workers;
mod source_git;
mod source_transports;
mod toolchain_images;
mod toolchain_lock;
mod verify_e2e;
mod verify_module;
mod webhook_kube;
