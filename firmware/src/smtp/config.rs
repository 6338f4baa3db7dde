//! The `[smtp]` configuration section (listeners, limits, TLS).

use serde::{Deserialize, Serialize};

/// `[smtp]`: how mailbag listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmtpConfig {
    /// Name used in the greeting, EHLO reply and Received headers.
    pub hostname: String,
    /// Listen addresses, e.g. `0.0.0.0:25`, `[::]:25`.
    pub listen: Vec<String>,
    /// Concurrent sessions; one more gets `421 4.3.2`.
    pub max_sessions: u32,
    /// Largest message in bytes (advertised with SIZE).
    pub max_message_size: u64,
    /// PEM certificate chain for STARTTLS (empty: self-signed, generated once).
    pub tls_cert: Option<String>,
    /// PEM private key for STARTTLS.
    pub tls_key: Option<String>,
    /// Offer STARTTLS at all.
    pub starttls: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            hostname: "mailbag.localdomain".into(),
            listen: vec!["0.0.0.0:25".into(), "[::]:25".into()],
            max_sessions: 32,
            max_message_size: 25 * 1024 * 1024,
            tls_cert: None,
            tls_key: None,
            starttls: true,
        }
    }
}
