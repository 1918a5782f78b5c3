//! The serving certificate, reloaded when its files change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::metrics::Metrics;

/// Why a certificate and key pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No PEM certificate, or a malformed one.
    #[error("{path}: no PEM certificate could be read ({detail})")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        detail: String,
    },
    /// No PEM private key, or one rustls cannot sign with.
    #[error("{path}: no usable PEM private key ({detail})")]
    Key {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The key is not the certificate's.
    #[error("the key {key} does not belong to the certificate {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// Size and modification time of both files: a change triggers a reload.
type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

pub(crate) struct Reloader {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    seen: RwLock<Stamp>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let c = std::fs::metadata(cert).ok()?;
    let k = std::fs::metadata(key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

/// Reads and checks a pair (files are small; a size cap keeps a wrong path harmless).
pub(crate) fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| -> Result<Vec<u8>, TlsError> {
        use std::io::Read as _;
        let f = std::fs::File::open(p).map_err(|source| TlsError::Read { path: p.to_path_buf(), source })?;
        let mut buf = Vec::new();
        f.take(1 << 20).read_to_end(&mut buf).map_err(|source| TlsError::Read { path: p.to_path_buf(), source })?;
        Ok(buf)
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate { path: cert.to_path_buf(), detail: format!("{e:?}") })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate { path: cert.to_path_buf(), detail: "no CERTIFICATE block".into() });
    }
    let der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::Key { path: key.to_path_buf(), detail: format!("{e:?}") })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| TlsError::Key { path: key.to_path_buf(), detail: e.to_string() })?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|_| TlsError::Mismatch { cert: cert.to_path_buf(), key: key.to_path_buf() })?;
    Ok(ck)
}

impl Reloader {
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Reloader, TlsError> {
        let seen = stamp(cert, key);
        let ck = load_pair(cert, key)?;
        Ok(Reloader {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(ck)),
            seen: RwLock::new(seen),
        })
    }

    pub(crate) fn loaded(&self) -> bool {
        self.current.read().is_ok()
    }

    /// Reloads if either file changed since the last look; a pair that does not load
    /// keeps the current one.
    pub(crate) fn check(&self, metrics: &Metrics) {
        let now = stamp(&self.cert, &self.key);
        let changed = self.seen.read().map(|s| *s != now).unwrap_or(false);
        if !changed {
            return;
        }
        if let Ok(mut s) = self.seen.write() {
            *s = now;
        }
        match load_pair(&self.cert, &self.key) {
            Ok(ck) => {
                if let Ok(mut cur) = self.current.write() {
                    *cur = Arc::new(ck);
                }
                metrics.tls_reload(true);
                eprintln!("reprove webhook: reloaded the certificate {}", self.cert.display());
            }
            Err(e) => {
                metrics.tls_reload(false);
                eprintln!("reprove webhook: keeping the current certificate: {e}");
            }
        }
    }
}

impl ResolvesServerCert for Reloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

pub(crate) fn server_config(resolver: Arc<Reloader>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

pub(crate) async fn watch(reloader: Arc<Reloader>, metrics: Arc<Metrics>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (r, m) = (reloader.clone(), metrics.clone());
        // File reads are blocking; they are small and rare, but keep them off the reactor.
        let _ = tokio::task::spawn_blocking(move || r.check(&m)).await;
    }
}
