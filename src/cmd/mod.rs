//! Subcommand definitions (clap) and dispatch.

mod admit;
mod attest;
mod attest_registry;
mod audit;
mod audit_progress;
mod buildinfo;
mod buildinfo_check;
mod check;
mod diff;
mod doctor;
mod executor;
mod interrupt;
mod keygen;
mod modules;
mod provenance;
mod recipe;
mod serve;
mod serve_watch;
mod settings;
mod signing;
mod toolchain;
mod toolchain_run;
mod verify;
mod webhook;
mod worker;

use clap::{Parser, Subcommand};

use crate::exit::CommandResult;

/// Prove that a Go binary is what its source says it is.
#[derive(Debug, Parser)]
#[command(name = "reprove", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the images of Kubernetes manifests against an admission policy, from the signed VSAs in their registries.
    Admit(Box<admit::Args>),
    /// Sign and verify in-toto attestations in DSSE envelopes.
    #[command(subcommand)]
    Attest(attest::Command),
    /// Rebuild every Go binary of a container image from the source it claims; one verdict for the image.
    Audit(Box<audit::Args>),
    /// Print the build info of Go binaries, exactly as `go version -m` does.
    Buildinfo(buildinfo::Args),
    /// Build a commit twice under varied conditions and say which variation changes the output.
    Check(Box<check::Args>),
    /// Explain why two Go binaries differ.
    Diff(diff::Args),
    /// Show the Go module environment and diagnose what breaks module fetching.
    Doctor(doctor::Args),
    /// Generate a cosign-compatible key pair (PREFIX.key, PREFIX.pub).
    Keygen(keygen::Args),
    /// Go modules: hash, verify and download them exactly as `go` does.
    #[command(name = "mod", subcommand)]
    Mod(modules::Command),
    /// Show the recipe reprove would rebuild with: each value's origin, what is undetermined, the go build command.
    Recipe(Box<recipe::Args>),
    /// Serve the verification service: a job API, a durable queue (SQLite) and workers that run verify jobs.
    Serve(Box<serve::Args>),
    /// Run the jobs of a `reprove serve` from another process or machine, through its worker API.
    Worker(Box<worker::Args>),
    /// Toolchain images: pull, build, gc, and run commands in them.
    #[command(subcommand)]
    Toolchain(ToolchainCommand),
    /// Rebuild a Git commit in a pinned toolchain and judge it against the reference (the CI gate).
    Verify(Box<verify::Args>),
    /// Serve the Kubernetes admission webhook: admit images by their signed verdicts (VSAs).
    Webhook(Box<webhook::Args>),
}

#[derive(Debug, Subcommand)]
enum ToolchainCommand {
    #[command(flatten)]
    Images(toolchain::Command),
    /// Run a command in a toolchain image or rootfs, in the build sandbox.
    Run(Box<toolchain_run::RunArgs>),
}

pub(crate) fn run(cli: Cli) -> CommandResult {
    settings::install(match &cli.command {
        Command::Audit(_) => settings::Spelling::Audit,
        Command::Serve(_) | Command::Worker(_) => settings::Spelling::Ids,
        _ => settings::Spelling::Flags,
    });
    match cli.command {
        Command::Admit(args) => admit::run(*args),
        Command::Attest(command) => attest::run(command),
        Command::Audit(args) => audit::run(*args),
        Command::Buildinfo(args) => buildinfo::run(args),
        Command::Check(args) => check::run(*args),
        Command::Diff(args) => diff::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Mod(command) => modules::run(command),
        Command::Recipe(args) => recipe::run(*args),
        Command::Serve(args) => serve::run(*args),
        Command::Worker(args) => worker::run(*args),
        Command::Toolchain(ToolchainCommand::Images(command)) => toolchain::run(command),
        Command::Toolchain(ToolchainCommand::Run(args)) => toolchain_run::run(*args),
        Command::Verify(args) => verify::run(*args),
        Command::Webhook(args) => webhook::run(*args),
    }
}

/// The one async runtime of a command that talks to registries or GOPROXY: the
/// libraries expose async functions and blocking facades that run on it, and never
/// start a runtime of their own.
pub(crate) fn io_runtime() -> Result<std::sync::Arc<tokio::runtime::Runtime>, crate::exit::Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(std::sync::Arc::new)
        .map_err(|e| crate::exit::Failure::infrastructure(anyhow::anyhow!("starting the async runtime: {e}")))
}
