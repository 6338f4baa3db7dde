//! STARTTLS client configurations for delivery: rustls (ring), one that encrypts without
//! checking the certificate (opportunistic) and one verified against the system CA bundle.

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
        verified: verified(provider)?,
    })
}

/// The verified configuration: `None` when the CA bundle cannot be read, and always in a
/// build without the `verify-tls` feature (config validation refuses the settings that
/// need it there).
#[cfg(feature = "verify-tls")]
fn verified(
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(iter) = CertificateDer::pem_file_iter(CA_BUNDLE) {
        for cert in iter.flatten() {
            let _ = roots.add(cert);
        }
    }
    Ok(if roots.is_empty() {
        None
    } else {
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client: {e}"))?;
        Some(Arc::new(
            b.with_root_certificates(roots).with_no_client_auth(),
        ))
    })
}

#[cfg(not(feature = "verify-tls"))]
fn verified(
    _provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    Ok(None)
}

/// The system CA bundle (Debian and OpenWrt's `ca-bundle` package).
#[cfg(feature = "verify-tls")]
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

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
