//! The `[policy]` and `[scan]` configuration sections.

use serde::{Deserialize, Serialize};

/// `[policy]`: which mail is accepted, and the protection checks before the 250.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyConfig {
    /// Domains mailbag accepts mail for (never an open relay: empty accepts nothing).
    pub domains: Vec<String>,
    /// Optional recipient lists, as `local@domain`: if a domain has any entry, only those
    /// local parts are accepted there (ASCII case-insensitive; `user+tag` matches `user`).
    pub recipients: Vec<String>,
    /// CIDRs of clients no protection check applies to (the silo, the LAN, the chain's
    /// peers).
    pub trusted: Vec<String>,
    /// DNS blocklist zones asked at connect; a listed client gets `554 5.7.1`.
    pub dnsbl: Vec<String>,
    /// DNS blocklist zones that only add to the spam score.
    pub dnsbl_score: Vec<String>,
    /// Seconds the blocklist lookups may take in all before the client is let through.
    pub dnsbl_timeout: u64,
    /// Ask the next hop whether a recipient exists (`MAIL FROM:<>`, `RCPT`, `RSET`).
    pub verify_recipients: bool,
    /// Days an "exists" answer is kept.
    pub verify_positive_days: u64,
    /// Minutes a "does not exist" answer is kept.
    pub verify_negative_minutes: u64,
    /// An address not known while the next hop is down: `accept` or `defer` (450).
    pub verify_unknown_while_down: String,
    /// The verification cache file; empty: next to the spool image (`<spool>.verify`), or
    /// `verify.cache` in the state directory when the spool is a `/dev/` device.
    pub verify_cache: String,
    /// Attachment name extensions refused with `554 5.7.1`.
    pub block_extensions: Vec<String>,
    /// Spam score (points) from which a message gets `X-Spam-Flag: YES`; 0: no scoring.
    pub spam_flag_score: u16,
    /// Spam score from which a message is refused with `554 5.7.1`; 0: never.
    pub spam_reject_score: u16,
    /// Refused recipients of one client (IPv4 address, IPv6 /64) within
    /// `guess-window` that start a cool-down; 0: off.
    pub guess_threshold: u32,
    /// Seconds over which refused recipients are counted.
    pub guess_window: u64,
    /// Seconds a guessing client gets `450 4.7.1` for every RCPT.
    pub guess_cooldown: u64,
    /// Seconds each RCPT of a cooling-down client waits before its 450.
    pub guess_delay: u64,
    /// Concurrent sessions per client (IPv4 address, IPv6 /64); more get `421 4.7.0`.
    pub sessions_per_client: u32,
    /// Idle timeout (seconds) before MAIL while three quarters of `smtp.max-sessions`
    /// are taken (Postfix's stress mode); 0: no stress mode.
    pub stress_idle_timeout: u64,
    /// Per-domain settings, one entry per domain: `DOMAIN: key=value ...` with keys
    /// `accept-when` (`always`/`next-hop-down`), `max-message-size`, `max-bytes` (bytes,
    /// or with K/M/G), `verify`, `attachments`, `scan`, `spam` (`on`/`off`).
    pub domain_rules: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            recipients: Vec::new(),
            trusted: Vec::new(),
            dnsbl: Vec::new(),
            dnsbl_score: Vec::new(),
            dnsbl_timeout: 5,
            verify_recipients: false,
            verify_positive_days: 30,
            verify_negative_minutes: 60,
            verify_unknown_while_down: "accept".into(),
            verify_cache: String::new(),
            block_extensions: vec!["pif".into(), "scr".into()],
            spam_flag_score: 5,
            spam_reject_score: 0,
            guess_threshold: 20,
            guess_window: 600,
            guess_cooldown: 600,
            guess_delay: 5,
            sessions_per_client: 8,
            stress_idle_timeout: 10,
            domain_rules: Vec::new(),
        }
    }
}

/// `[scan]`: the virus scanner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScanConfig {
    /// clamd's address: `host:port` or the absolute path of its Unix socket; empty: no
    /// scanning.
    pub clamd: String,
    /// An infected message: `reject` (554 naming the virus) or `repackage` (delivered as
    /// a notice with the original attached).
    pub infected: String,
    /// clamd cannot be reached or fails: `defer` (451, the sender retries) or `accept`
    /// (fail open, logged).
    pub unreachable: String,
    /// Seconds clamd may take for one message (connect, stream, answer).
    pub timeout: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            clamd: String::new(),
            infected: "reject".into(),
            unreachable: "defer".into(),
            timeout: 30,
        }
    }
}
