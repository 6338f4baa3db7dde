//! The one rustls crypto provider of mailbag (STARTTLS server and client): ring's, minus
//! Ed25519. SMTP peers present RSA or ECDSA certificates; Ed25519 ones are practically
//! unseen, and leaving the algorithm out of both the signature checks and the key loader
//! lets the linker drop its code (about 40 KiB on a router). Every other algorithm, cipher
//! suite and key-exchange group is ring's default, in ring's order.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::crypto::{CryptoProvider, KeyProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use webpki::ring as algs;

/// ring's provider without Ed25519.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        signature_verification_algorithms: SIGNATURES,
        key_provider: &RsaAndEcdsa,
        ..rustls::crypto::ring::default_provider()
    })
}

/// ring's table of signature algorithms, Ed25519 left out.
static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        algs::ECDSA_P256_SHA256,
        algs::ECDSA_P256_SHA384,
        algs::ECDSA_P384_SHA256,
        algs::ECDSA_P384_SHA384,
        algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        algs::RSA_PKCS1_2048_8192_SHA256,
        algs::RSA_PKCS1_2048_8192_SHA384,
        algs::RSA_PKCS1_2048_8192_SHA512,
        algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        // For TLS 1.2 the curve is not fixed by the scheme; for TLS 1.3 it is.
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[algs::ECDSA_P384_SHA384, algs::ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256],
        ),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[algs::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[algs::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[algs::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// Loads RSA and ECDSA (P-256, P-384) private keys; anything else is refused by name.
#[derive(Debug)]
struct RsaAndEcdsa;

impl KeyProvider for RsaAndEcdsa {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        if let Ok(rsa) = rustls::crypto::ring::sign::RsaSigningKey::new(&key_der) {
            return Ok(Arc::new(rsa));
        }
        rustls::crypto::ring::sign::any_ecdsa_type(&key_der).map_err(|_| {
            rustls::Error::General("the key is neither RSA nor ECDSA P-256/P-384".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scheme ring's provider verifies, except Ed25519, with the same algorithms.
    #[test]
    fn ring_table_without_ed25519() {
        let ring = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let ours = provider().signature_verification_algorithms;
        let mut expected: Vec<_> = ring
            .mapping
            .iter()
            .filter(|(s, _)| *s != SignatureScheme::ED25519)
            .map(|(s, a)| (*s, a.len()))
            .collect();
        let mut got: Vec<_> = ours.mapping.iter().map(|(s, a)| (*s, a.len())).collect();
        expected.sort_by_key(|(s, _)| u16::from(*s));
        got.sort_by_key(|(s, _)| u16::from(*s));
        assert_eq!(got, expected);
        assert_eq!(ours.all.len(), ring.all.len() - 1);
    }
}
