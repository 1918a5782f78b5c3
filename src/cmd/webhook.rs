//! `reprove webhook --listen ADDR --tls-cert FILE --tls-key FILE --policy FILE`: the
//! Kubernetes ValidatingAdmissionWebhook (the `webhook` crate). This file parses the
//! flags, builds the runtime and starts the library's server; it runs until killed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ::webhook::{CacheConfig, Config, Decide, DecideError, Decision, ImageUse, Server};
use anyhow::{anyhow, Context as _};
use tokio::time::Instant;

use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The address to serve HTTPS on (`0.0.0.0:8443` in a cluster).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The serving certificate chain (PEM); reloaded when the file changes.
    #[arg(long, value_name = "FILE")]
    tls_cert: PathBuf,
    /// The serving certificate's private key (PEM); reloaded when the file changes.
    #[arg(long, value_name = "FILE")]
    tls_key: PathBuf,
    /// The admission policy (TOML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Milliseconds a review may take before it is denied: keep it well under the
    /// webhook configuration's timeoutSeconds.
    #[arg(long, value_name = "MS", default_value_t = 8000, value_parser = clap::value_parser!(u64).range(100..=29_000))]
    deadline_ms: u64,
    /// Seconds an allowed decision stays cached at most (never past its VSAs' expiry).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    cache_ttl: u64,
    /// Seconds a denial stays cached.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    denial_ttl: u64,
    /// Decisions kept in the cache at most.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    cache_entries: usize,
    #[command(flatten)]
    limits: super::attest_registry::LimitsArgs,
    #[command(flatten)]
    registry: super::toolchain::RegistryArgs,
}

/// The policy engine `reprove webhook` asks: `admission::decide` under the policy, with
/// the registry flags' credentials and deadlines; what to do is said in the CLI's words.
struct Engine {
    policy: admission::Policy,
    fetcher: admission::Fetcher,
    policy_digest: String,
}

impl Decide for Engine {
    async fn decide(&self, image: &ImageUse, deadline: Instant) -> Result<Decision, DecideError> {
        let d =
            admission::decide(&image.image, &image.namespace, &self.policy, &self.fetcher, deadline.into_std()).await;
        let action = super::admit::action_text(&d.action);
        let message = if action.is_empty() { d.message.clone() } else { format!("{}; {action}", d.message) };
        let cacheable = d.cacheable();
        if !cacheable && !d.allowed {
            // A registry failure or an expired deadline is not a verdict: denied, never cached.
            return Err(DecideError { reason: d.reason.as_str().to_owned(), message });
        }
        Ok(Decision {
            allowed: d.allowed,
            reason: d.reason.as_str().to_owned(),
            message,
            warnings: d.warnings,
            earliest_expiry: d
                .expires_unix
                .and_then(|s| u64::try_from(s).ok())
                .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s)),
            digest: d.digest,
            // An outage the policy lets through (on_error) is allowed but never cached.
            from_error: !cacheable,
        })
    }

    fn policy_digest(&self) -> String {
        self.policy_digest.clone()
    }
}

pub(crate) fn run(args: Args) -> CommandResult {
    let policy = std::fs::read(&args.policy)
        .with_context(|| format!("reading the policy {}", args.policy.display()))
        .map_err(Failure::input)?;
    let policy_digest = format!("sha256:{}", stdx::sha256_hex(&policy));
    let policy =
        admission::Policy::load(&args.policy).map_err(|e| Failure::input(anyhow!("{}: {e}", args.policy.display())))?;
    let fetcher = admission::Fetcher::new(args.registry.to_options()?, args.limits.limits());
    let engine = Engine { policy, fetcher, policy_digest };
    let mut config = Config::new(args.tls_cert, args.tls_key);
    config.deadline = Duration::from_millis(args.deadline_ms);
    config.cache = CacheConfig {
        max_entries: args.cache_entries,
        ttl: Duration::from_secs(args.cache_ttl),
        denial_ttl: Duration::from_secs(args.denial_ttl),
    };
    let server = Server::new(config, engine).map_err(|e| Failure::input(anyhow!(e)))?;
    let runtime = super::io_runtime()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))
            .map_err(Failure::infrastructure)?;
        eprintln!("reprove webhook: serving https://{}", listener.local_addr().map_or(args.listen, |a| a));
        server.serve(listener, std::future::pending()).await.map_err(|e| Failure::infrastructure(anyhow!(e)))
    })?;
    Ok(Verdict::Positive)
}
