//! `reprove keygen`: a cosign-compatible key pair, as `cosign generate-key-pair` makes it.
//!
//! Writes `PREFIX.key` (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, mode 0600) and `PREFIX.pub`
//! (PEM `PUBLIC KEY`). The password comes from `COSIGN_PASSWORD` or a prompt on the
//! terminal. Existing files are never overwritten.

use std::path::PathBuf;

use attest::keys::{self, Algorithm, KeySigner, Signer as _};

use super::signing::{password, write_new};
use crate::exit::{CommandResult, Failure, Verdict};

/// Generate a cosign-compatible key pair.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    output_key_prefix: String,
    /// An Ed25519 key instead of ECDSA P-256.
    #[arg(long)]
    ed25519: bool,
    /// Print one JSON document (schemas/keygen.schema.json) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CommandResult {
    let key_path = PathBuf::from(format!("{}.key", args.output_key_prefix));
    let pub_path = PathBuf::from(format!("{}.pub", args.output_key_prefix));
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err(Failure::input(anyhow::anyhow!("{} exists; refusing to overwrite it", path.display())));
        }
    }
    let algorithm = if args.ed25519 { Algorithm::Ed25519 } else { Algorithm::EcdsaP256Sha256 };
    let password = password(true)?;
    let (signer, pkcs8) = KeySigner::generate(algorithm).map_err(Failure::infrastructure)?;
    let pem = keys::write_encrypted_private_key(&pkcs8, password.expose()).map_err(Failure::infrastructure)?;
    let public = signer.public_key();
    write_new(&key_path, 0o600, pem.as_bytes())?;
    write_new(&pub_path, 0o644, public.to_pem().as_bytes())?;
    if args.json {
        let doc = serde_json::json!({
            "schemaVersion": 1,
            "privateKey": key_path.display().to_string(),
            "publicKey": pub_path.display().to_string(),
            "algorithm": algorithm.to_string(),
            "keyId": public.key_id(),
        });
        println!("{doc}");
    } else {
        println!("Private key written to {}", key_path.display());
        println!("Public key written to {}", pub_path.display());
    }
    Ok(Verdict::Positive)
}
