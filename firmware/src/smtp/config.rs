//! The `[smtp]` configuration section (listeners, limits, TLS).

use serde::{Deserialize, Serialize};

use super::limits::{
    DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_BAD_COMMANDS, DEFAULT_SESSION_TIMEOUT_SECS,
    RECIPIENTS_MAX,
};

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
    /// Recipients per message; more get `452 4.5.3` (at most [`RECIPIENTS_MAX`]).
    pub max_recipients: u32,
    /// Rejected commands before `421 4.7.0` and disconnect.
    pub max_bad_commands: u32,
    /// Seconds without input before `421 4.4.2` (RFC 5321 §4.5.3.2.7: at least 300).
    pub idle_timeout_secs: u64,
    /// Seconds a whole session may last before `421 4.4.2`.
    pub session_timeout_secs: u64,
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
            max_recipients: RECIPIENTS_MAX as u32,
            max_bad_commands: DEFAULT_MAX_BAD_COMMANDS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            session_timeout_secs: DEFAULT_SESSION_TIMEOUT_SECS,
        }
    }
}
