//! STARTTLS server configuration: rustls (ring) with the configured certificate and key, or
//! `tls-cert.pem`/`tls-key.pem` in the state directory: made there by OpenWrt's px5g (the
//! init script), or, with the `self-signed` cargo feature (plain Linux, the silo), by the
//! daemon itself at first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Builds the TLS server configuration. With `cert`/`key` unset, uses (and on first start
/// creates) `state_dir/tls-cert.pem` and `state_dir/tls-key.pem` for `hostname`.
pub fn server_config(
    cert: Option<&str>,
    key: Option<&str>,
    state_dir: &Path,
    hostname: &str,
) -> Result<Arc<ServerConfig>, String> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (PathBuf::from(c), PathBuf::from(k)),
        (None, None) => {
            let c = state_dir.join("tls-cert.pem");
            let k = state_dir.join("tls-key.pem");
            if !c.exists() || !k.exists() {
                self_signed(&c, &k, hostname)?;
            }
            #[cfg(not(feature = "self-signed"))]
            let _ = hostname;
            (c, k)
        }
        _ => return Err("smtp.tls-cert and smtp.tls-key must be set together".into()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect())
        .map_err(|e| format!("cannot read certificate {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("cannot read key {}: {e}", key_path.display()))?;
    let provider = crate::crypto::provider();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(Arc::new(config))
}

/// True if STARTTLS failed only because the state directory has no certificate and this
/// build cannot make one (no `self-signed` feature, no `smtp.tls-cert`).
pub fn missing_generated(smtp: &crate::smtp::SmtpConfig, state_dir: &Path) -> bool {
    !cfg!(feature = "self-signed")
        && smtp.tls_cert.is_none()
        && smtp.tls_key.is_none()
        && !(state_dir.join("tls-cert.pem").exists() && state_dir.join("tls-key.pem").exists())
}

#[cfg(not(feature = "self-signed"))]
fn self_signed(cert: &Path, _key: &Path, _hostname: &str) -> Result<(), String> {
    Err(format!(
        "no certificate in {} (make one with px5g, or set smtp.tls-cert and smtp.tls-key)",
        cert.display()
    ))
}

#[cfg(feature = "self-signed")]
fn self_signed(cert: &Path, key: &Path, hostname: &str) -> Result<(), String> {
    let generated = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| format!("cannot generate a certificate: {e}"))?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    write_private(key, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, generated.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    crate::log!(
        "generated a self-signed certificate for {hostname} in {}",
        cert.display()
    );
    Ok(())
}

#[cfg(feature = "self-signed")]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "self-signed")]
    #[test]
    fn self_signed_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("mailbag-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        server_config(None, None, &dir, "mx.example.test").unwrap();
        let first = std::fs::read(dir.join("tls-cert.pem")).unwrap();
        server_config(None, None, &dir, "mx.example.test").unwrap();
        assert_eq!(std::fs::read(dir.join("tls-cert.pem")).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("tls-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key must not be readable by others");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn half_configured_or_missing_files_are_clear_errors() {
        let dir = std::env::temp_dir();
        let e = server_config(Some("/nonexistent/c.pem"), None, &dir, "x.test").unwrap_err();
        assert!(e.contains("together"), "{e}");
        let e = server_config(
            Some("/nonexistent/c.pem"),
            Some("/nonexistent/k.pem"),
            &dir,
            "x.test",
        )
        .unwrap_err();
        assert!(e.contains("cannot read certificate"), "{e}");
    }
}
