//! TLS to PostgreSQL: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` in the
//! database URL, over rustls under the driver's TLS seam.
//!
//! - `disable`: plaintext.
//! - `require`: TLS, the server's certificate not checked (as libpq, checked as
//!   `verify-ca` when `sslrootcert` is given).
//! - `verify-ca`: TLS, the certificate chains to a trusted CA.
//! - `verify-full` (the default when no `sslmode` is given): `verify-ca`, and the
//!   certificate names the host of the URL.
//! - `prefer` and `allow` are refused: they fall back to plaintext without saying so.
//!
//! The trusted CAs are `sslrootcert`'s (a PEM file; `system` is the system's store), else
//! the system's trust store (with `SSL_CERT_FILE` and `SSL_CERT_DIR`). A connection over
//! a Unix socket has no TLS (as libpq: the server never offers it there).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::Socket;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the connection is secured (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    /// Whether `sslmode` was written (else the default, for messages).
    pub(crate) given: bool,
    /// `sslrootcert` (`None`: the system's store; `system` is that too).
    pub(crate) root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`.
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
}

impl Settings {
    /// `sslmode=MODE` as written, or `sslmode=verify-full (the default)`.
    pub(crate) fn shown(&self) -> String {
        if self.given {
            format!("sslmode={}", self.mode.as_str())
        } else {
            format!("sslmode={} (the default)", self.mode.as_str())
        }
    }

    /// Whether TLS is required at all.
    pub(crate) fn tls(&self) -> bool {
        self.mode != Mode::Disable
    }

    fn trust(&self) -> String {
        match &self.root_cert {
            Some(p) => format!("sslrootcert {}", p.display()),
            None => "the system's trust store".into(),
        }
    }
}

/// Decodes `%XX` escapes (a URL's query value).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| format!("bad escape in {s:?}"))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Takes the TLS settings out of `url` (a `postgres://` URL, or libpq's `key=value`
/// form): the URL without them (for the driver) and the settings.
pub(crate) fn split(url: &str) -> Result<(String, Settings), String> {
    let mut found: Vec<(String, String)> = Vec::new();
    let rest = if url.contains("://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if KEYS.contains(&k) {
                        found.push((k.to_string(), percent_decode(v)?));
                    } else {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) if KEYS.contains(&k.trim()) => found.push((k.trim().to_string(), v.to_string())),
                _ => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let get = |key: &str| found.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let (mode, given) = match get("sslmode").as_deref() {
        None => (Mode::VerifyFull, false),
        Some("disable") => (Mode::Disable, true),
        Some("require") => (Mode::Require, true),
        Some("verify-ca") => (Mode::VerifyCa, true),
        Some("verify-full") => (Mode::VerifyFull, true),
        Some(weak @ ("prefer" | "allow")) => {
            return Err(format!(
                "sslmode={weak} is refused: it falls back to plaintext without saying so; write sslmode=require \
                 or verify-full to insist on TLS, or sslmode=disable for plaintext"
            ))
        }
        Some(other) => return Err(format!("sslmode={other:?}: expected disable, require, verify-ca or verify-full")),
    };
    let root_cert = get("sslrootcert").filter(|p| p != "system" && !p.is_empty()).map(PathBuf::from);
    let client_cert = match (get("sslcert"), get("sslkey")) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        _ => return Err("sslcert and sslkey go together: give both or neither".into()),
    };
    Ok((rest, Settings { mode, given, root_cert, client_cert }))
}

/// The driver's TLS connector for `settings` (not for `disable`).
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
    settings: Arc<Settings>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The trusted CAs of `settings`.
fn roots(settings: &Settings) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match &settings.root_cert {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("sslrootcert {}: no PEM certificate in it", path.display()));
            }
            for c in certs {
                store.add(c).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                let why = native.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                return Err(format!(
                    "{}: the system's trust store has no certificate{why}; give the CA as sslrootcert=FILE",
                    settings.shown()
                ));
            }
        }
    }
    Ok(store)
}

impl MakeRustls {
    /// Reads the CAs and the client certificate; errors name the setting.
    pub(crate) fn new(settings: &Settings) -> Result<MakeRustls, String> {
        let provider = provider();
        let chain = match (settings.mode, &settings.root_cert) {
            (Mode::Require, None) => None,
            _ => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots(settings)?), provider.clone())
                    .build()
                    .map_err(|e| format!("{}: {e}", settings.trust()))?,
            ),
        };
        let names = settings.mode == Mode::VerifyFull;
        let verifier = Arc::new(Verifier { provider: provider.clone(), chain, names });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &settings.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
                if chain.is_empty() {
                    return Err(format!("sslcert {}: no PEM certificate in it", cert.display()));
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| format!("sslcert and sslkey: {e}"))?
            }
        };
        Ok(MakeRustls { config: Arc::new(config), settings: Arc::new(settings.clone()) })
    }

    /// The message of a failed handshake: the setting and the check that failed.
    fn explain(settings: &Settings, host: &str, e: &io::Error) -> String {
        let mode = settings.shown();
        let rustls = e.get_ref().and_then(|i| i.downcast_ref::<tokio_rustls::rustls::Error>());
        match rustls {
            Some(tokio_rustls::rustls::Error::InvalidCertificate(c)) => match c {
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                    "{mode}: the server's certificate is not valid for the host name {host:?} ({c:?}); connect by a \
                     name it holds, or write sslmode=verify-ca to check only its CA"
                ),
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "{mode}: the server's certificate is not trusted: it does not chain to a CA of {} ({c:?})",
                    settings.trust()
                ),
                other => format!("{mode}: the server's certificate is refused: {other:?}"),
            },
            Some(other) => format!("{mode}: the TLS handshake failed: {other}"),
            None => format!("{mode}: the TLS handshake failed: {e}"),
        }
    }
}

/// A TLS failure, with the setting and the check in its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TlsError(String);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsError> {
        let name = ServerName::try_from(domain.to_string()).map_err(|e| {
            TlsError(format!("{}: the host {domain:?} is not a name TLS can check: {e}", self.settings.shown()))
        })?;
        Ok(RustlsConnect { make: self.clone(), name, host: domain.to_string() })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnect {
    make: MakeRustls,
    name: ServerName<'static>,
    host: String,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, TlsError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.make.config.clone());
            connector
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| TlsError(MakeRustls::explain(&self.make.settings, &self.host, &e)))
        })
    }
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl AsyncRead for RustlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // No SCRAM channel binding: its hash depends on the certificate's signature
        // algorithm; the certificate checks above are what authenticate the server.
        ChannelBinding::none()
    }
}

/// How the server's certificate is checked: for `verify-ca` and `verify-full` the chain
/// to a trusted CA (`chain`), and for `verify-full` the name (`names`); for `require`
/// without `sslrootcert`, not at all (encrypted, the certificate taken as it is). The
/// handshake's signatures are always checked against the certificate.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    names: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // The chain is checked before the name: a name mismatch means a trusted chain.
            Err(tokio_rustls::rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_come_out_of_the_url() {
        let (rest, s) =
            split("postgres://u:p@db:5432/q?sslmode=verify-ca&sslrootcert=%2Fca%20dir%2Fca.pem&application_name=x")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rest, "postgres://u:p@db:5432/q?application_name=x");
        assert_eq!(s.mode, Mode::VerifyCa);
        assert_eq!(s.root_cert, Some(PathBuf::from("/ca dir/ca.pem")));
        let (rest, s) = split("postgres://u@db/q").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((rest.as_str(), s.mode, s.given), ("postgres://u@db/q", Mode::VerifyFull, false));
        assert_eq!(s.shown(), "sslmode=verify-full (the default)");
        let (rest, s) = split("host=db sslmode=disable user=u").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((rest.as_str(), s.mode), ("host=db user=u", Mode::Disable));
        let (_, s) = split("postgres://db/q?sslmode=require&sslrootcert=system").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.mode, s.root_cert), (Mode::Require, None));
        for (url, want) in [
            ("postgres://db/q?sslmode=prefer", "falls back to plaintext"),
            ("postgres://db/q?sslmode=allow", "falls back to plaintext"),
            ("postgres://db/q?sslmode=verify", "expected disable, require"),
            ("postgres://db/q?sslcert=c.pem", "sslcert and sslkey"),
        ] {
            let e = split(url).err().unwrap_or_else(|| panic!("{url} accepted"));
            assert!(e.contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_or_empty_root_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
        for path in [dir.path().join("absent.pem"), empty] {
            let url = format!("postgres://db/q?sslmode=verify-full&sslrootcert={}", path.display());
            let (_, s) = split(&url).unwrap_or_else(|e| panic!("{e}"));
            let e = MakeRustls::new(&s).err().unwrap_or_else(|| panic!("{} accepted", path.display()));
            assert!(e.contains("sslrootcert") && e.contains(&path.display().to_string()), "{e}");
        }
    }
}
