//! STARTTLS client configurations for delivery: rustls (ring), one that encrypts without
//! checking the certificate (opportunistic) and one verified against the system CA bundle.
//!
//! **Trust roots.** The CA bundle is [`CA_BUNDLE`] unless the environment names another
//! PEM file in [`CA_FILE_ENV`] (`MAILBAG_CA_FILE=/etc/mailbag/ca.pem`): for a provider's
//! own CA, or for tests with a test CA. `mailbag doctor --ca-file FILE` does the same for
//! its MTA-STS policy fetch.

#[cfg(feature = "verify-tls")]
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
#[cfg(feature = "verify-tls")]
use rustls::pki_types::pem::PemObject;

/// TLS client configurations for opportunistic and verified STARTTLS.
#[derive(Clone)]
pub struct TlsClients {
    /// Any certificate (encryption without authentication).
    pub any: Arc<rustls::ClientConfig>,
    /// Verified against the system CA bundle (None if none could be loaded).
    pub verified: Option<Arc<rustls::ClientConfig>>,
}

/// TLS client configurations for delivery: one that accepts any certificate (opportunistic
/// STARTTLS encrypts without authenticating, as Postfix's `may` does) and one verified
/// against the system CA bundle (`None` when the bundle cannot be read).
pub fn client_configs() -> Result<TlsClients, String> {
    let provider = crate::crypto::provider();
    let any = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::clone(&provider))))
        .with_no_client_auth();
    Ok(TlsClients {
        any: Arc::new(any),
        verified: verified_default(),
    })
}

/// The verified configuration from the CA file in force: `None` when it cannot be read,
/// and always in a build without the `verify-tls` feature (config validation refuses the
/// settings that need it there).
#[cfg(feature = "verify-tls")]
fn verified_default() -> Option<Arc<rustls::ClientConfig>> {
    verified(&ca_file(None)).ok()
}

#[cfg(not(feature = "verify-tls"))]
fn verified_default() -> Option<Arc<rustls::ClientConfig>> {
    None
}

/// The CA file in force: `explicit`, else [`CA_FILE_ENV`], else [`CA_BUNDLE`].
#[cfg(feature = "verify-tls")]
pub fn ca_file(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CA_FILE_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(CA_BUNDLE))
}

/// A client configuration that verifies servers against the certificates of `ca_file`
/// (PEM); an error names the file when it holds none.
#[cfg(feature = "verify-tls")]
pub fn verified(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(iter) = CertificateDer::pem_file_iter(ca_file) {
        for cert in iter.flatten() {
            let _ = roots.add(cert);
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no CA certificate could be read from {}",
            ca_file.display()
        ));
    }
    let provider = crate::crypto::provider();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client: {e}"))?;
    Ok(Arc::new(
        b.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// The system CA bundle (Debian and OpenWrt's `ca-bundle` package).
#[cfg(feature = "verify-tls")]
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The environment variable naming another CA file (PEM).
#[cfg(feature = "verify-tls")]
pub const CA_FILE_ENV: &str = "MAILBAG_CA_FILE";

/// Accepts any server certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
