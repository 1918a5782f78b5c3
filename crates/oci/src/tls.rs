//! TLS for the HTTP clients this crate builds itself: the platform's verifier (the
//! system's root certificates, as reqwest uses by default), loaded once per process
//! and only when a first HTTPS connection needs it.
//!
//! reqwest's default builds a `rustls-platform-verifier` for every client, which reads
//! and parses every root certificate of the system (on Debian, about 140 certificates
//! in 220 files: 2–3 ms per client). reprove builds a client for every registry it
//! talks to; a registry on plain HTTP (loopback, `--insecure-registry`) never needs a
//! root, and a process that builds many clients (the admission webhook) needs them
//! loaded once. Verification itself is the platform verifier's, unchanged.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The platform verifier, built on its first use.
#[derive(Debug)]
struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl LazyPlatformVerifier {
    fn inner(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        match self.inner.get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone())) {
            Ok(verifier) => Ok(verifier),
            Err(e) => Err(e.clone()),
        }
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // What the platform verifier answers, without loading the roots.
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS configuration of this crate's reqwest clients (`tls_backend_preconfigured`),
/// shared by all of them; `None` if it cannot be built (then reqwest's default applies).
pub(crate) fn client_config() -> Option<rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            super::install_crypto_provider();
            let provider = CryptoProvider::get_default()
                .cloned()
                .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
            let verifier = LazyPlatformVerifier { provider: provider.clone(), inner: OnceLock::new() };
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            // As reqwest sets it (HTTP/1.1 only: its http2 feature is off).
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(config)
        })
        .clone()
}

/// `builder` with [`client_config`].
pub(crate) fn lazy_roots(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    match client_config() {
        Some(config) => builder.tls_backend_preconfigured(config),
        None => builder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_root_is_loaded_before_a_tls_connection() {
        let verifier = LazyPlatformVerifier {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            inner: OnceLock::new(),
        };
        assert!(!verifier.supported_verify_schemes().is_empty());
        assert!(verifier.inner.get().is_none());
        assert!(client_config().is_some());
    }
}
