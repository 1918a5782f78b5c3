//! What the signing commands share (`attest sign`, `attest provenance`, `verify
//! --attest`, `keygen`): reading inputs, the key password, the signing key and its
//! certificate, and writing new files. The subcommand modules use this one; none of
//! them uses another's helpers.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use attest::keys::{self, KeySigner, PublicKey, Secret};
use attest::trust_root::TrustMaterial;

use crate::exit::Failure;

/// `--certificate` and `--certificate-chain` of the signing commands (cosign's
/// `sign-blob`/`attest-blob` flags): the signing key's certificate goes into the bundle.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct CertificateArgs {
    /// The signing key's X.509 certificate (PEM), written into the Sigstore bundle
    /// instead of a public-key hint; its public key must be the signing key's, and it
    /// must allow code signing.
    #[arg(long, value_name = "CERT.pem")]
    pub(crate) certificate: Option<PathBuf>,
    /// The certificate's issuing chain (PEM: its issuer first, the root last): the
    /// certificate must chain to it now. Not written into the v0.3 bundle (verifiers
    /// take the chain from their trusted root or --certificate-chain).
    #[arg(long, value_name = "CHAIN.pem", requires = "certificate")]
    pub(crate) certificate_chain: Option<PathBuf>,
}

/// A whole input file; an unreadable one is an input error naming it.
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display())).map_err(Failure::input)
}

/// The key password: `COSIGN_PASSWORD` if set (even empty, as cosign), otherwise a
/// prompt on the terminal with echo off; without a terminal, an input error.
pub(crate) fn password(confirm: bool) -> Result<Secret, Failure> {
    if let Some(value) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(Secret::new(value.into_vec()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::input(anyhow!(
            "no password: COSIGN_PASSWORD is not set and standard input is not a terminal to prompt on"
        )));
    }
    let first = prompt("Enter password for private key: ")?;
    if confirm {
        let again = prompt("Enter password for private key again: ")?;
        if first.expose() != again.expose() {
            return Err(Failure::input(anyhow!("the passwords do not match")));
        }
    }
    Ok(first)
}

fn prompt(message: &str) -> Result<Secret, Failure> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let fail =
        |e: std::io::Error| Failure::input(anyhow::Error::new(e).context("reading the password from the terminal"));
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(fail)?;
    let saved = tcgetattr(&tty).map_err(|e| fail(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    (&tty).write_all(message.as_bytes()).map_err(fail)?;
    tcsetattr(&tty, OptionalActions::Now, &quiet).map_err(|e| fail(e.into()))?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let restored = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = (&tty).write_all(b"\n");
    read.map_err(fail)?;
    restored.map_err(|e| fail(e.into()))?;
    let secret = Secret::new(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec());
    // Clear the String's buffer too; the Secret zeroes its own copy on drop.
    line.clear();
    line.shrink_to_fit();
    Ok(secret)
}

/// Reads `--certificate` (and `--certificate-chain`) for signing with `signer`: the
/// certificate's key must be the signing key, it must allow code signing, and it must
/// chain to the given chain now. Returns the certificate's DER.
pub(crate) fn signing_certificate(args: &CertificateArgs, signer: &PublicKey) -> Result<Option<Vec<u8>>, Failure> {
    let Some(path) = &args.certificate else { return Ok(None) };
    let text = String::from_utf8(read_input(path)?)
        .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", path.display())))?;
    let der = attest::certificate::signer_certificate(&text, signer)
        .map_err(|e| Failure::input(anyhow!("--certificate {}: {e}", path.display())))?;
    if let Some(chain_path) = &args.certificate_chain {
        let chain = String::from_utf8(read_input(chain_path)?)
            .map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", chain_path.display())))?;
        let mut trust = TrustMaterial::default();
        trust
            .add_pem_chain(&chain, &chain_path.display().to_string())
            .with_context(|| format!("reading --certificate-chain {}", chain_path.display()))
            .map_err(Failure::input)?;
        trust.verify_chain(&der, &[], stdx::time::now_unix()).map_err(|e| {
            Failure::input(anyhow!(
                "--certificate {} and --certificate-chain {}: {e}",
                path.display(),
                chain_path.display()
            ))
        })?;
    }
    Ok(Some(der))
}

/// Creates `path` with `mode`, refusing to replace an existing file.
pub(crate) fn write_new(path: &Path, mode: u32, contents: &[u8]) -> Result<(), Failure> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
        let class =
            if e.kind() == std::io::ErrorKind::AlreadyExists { Failure::input } else { Failure::infrastructure };
        class(anyhow::Error::new(e).context(format!("creating {}", path.display())))
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
        .map_err(Failure::infrastructure)
}

/// Reads an encrypted private key (cosign format), asking for its password.
pub(crate) fn load_key(path: &Path) -> Result<KeySigner, Failure> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display())).map_err(Failure::input)?;
    let pem =
        String::from_utf8(bytes).map_err(|_| Failure::input(anyhow!("{}: not a PEM text file", path.display())))?;
    let password = password(false)?;
    keys::read_encrypted_private_key(&pem, password.expose())
        .with_context(|| format!("reading the private key {}", path.display()))
        .map_err(Failure::input)
}
