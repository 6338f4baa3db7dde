//! Acceptance policy: which recipients mailbag takes mail for, and whether there is room.
//!
//! The SMTP session asks a [`Policy`] synchronously at every RCPT. [`Checker`] is the
//! product policy: the pure [`Rules`] built once from [`PolicyConfig`] (configured domains,
//! optional per-domain recipient lists, relay-trick refusal — mailbag is never an open
//! relay) followed by a host hook, [`Capacity::space_for`], that reports a full spool or a
//! domain over quota. Nothing here does I/O or panics on peer input.
//!
//! | refusal | reply |
//! |---------|-------|
//! | [`Refusal::RelayDenied`] | `550 5.7.1` (RFC 5321 §3.6.2, RFC 3463) |
//! | [`Refusal::UnknownUser`] | `550 5.1.1` |
//! | [`Refusal::Capacity`]`(SpoolFull)` | `452 4.3.1` (RFC 5321 §4.5.3.1.10) |
//! | [`Refusal::Capacity`]`(QuotaExceeded)` | `452 4.2.2` |

pub mod clamd;
pub mod client;
pub mod config;
pub mod content;
pub mod counters;
pub mod dnsbl;
pub mod protection;
mod rules;
pub mod spam;
pub mod throttle;
pub mod verdict;
pub mod verify;

#[cfg(test)]
mod open_relay_tests;

use core::fmt;
use std::sync::Arc;

pub use config::{PolicyConfig, ScanConfig};
pub use counters::Counters;
pub use protection::Protection;
pub use rules::{Rules, RulesError};

use crate::smtp::Mailbox;

/// Why a recipient is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of our domains, or a relay trick (`%`, `!`, quoting, literals, routes).
    RelayDenied,
    /// Our domain, but not on its recipient list.
    UnknownUser,
    /// No room now; the sender retries.
    Capacity(QuotaError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RelayDenied => f.write_str("relay access denied"),
            Self::UnknownUser => f.write_str("user unknown"),
            Self::Capacity(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// A temporary lack of space, reported by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// The spool as a whole is full: `452 4.3.1`.
    SpoolFull,
    /// This domain's share of the spool is used up: `452 4.2.2`.
    QuotaExceeded,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SpoolFull => "insufficient system storage",
            Self::QuotaExceeded => "domain quota exceeded",
        })
    }
}

impl std::error::Error for QuotaError {}

/// The question a session asks at RCPT.
pub trait Policy {
    /// May a message of about `size` octets (the SIZE= estimate, else 0) go to `rcpt`?
    fn recipient(&self, rcpt: &Mailbox, size: u64) -> Result<(), Refusal>;
}

/// The host's view of free space (spool and per-domain quota). Must not block: answer
/// from counters the spool keeps, not by scanning flash.
pub trait Capacity {
    /// Is there room for `size` more octets for `domain`?
    fn space_for(&self, domain: &str, size: u64) -> Result<(), QuotaError>;
}

/// A [`Capacity`] that always has room (tests, or a host without quotas).
#[derive(Clone, Copy, Debug, Default)]
pub struct Unlimited;

impl Capacity for Unlimited {
    fn space_for(&self, _domain: &str, _size: u64) -> Result<(), QuotaError> {
        Ok(())
    }
}

/// The product policy: [`Rules`] first, then the host's [`Capacity`].
#[derive(Clone, Debug)]
pub struct Checker<C> {
    rules: Arc<Rules>,
    capacity: C,
}

impl<C: Capacity> Checker<C> {
    /// Combine shared rules with a capacity hook (one `Checker` clone per session).
    pub fn new(rules: Arc<Rules>, capacity: C) -> Self {
        Self { rules, capacity }
    }
}

impl<C: Capacity> Policy for Checker<C> {
    fn recipient(&self, rcpt: &Mailbox, size: u64) -> Result<(), Refusal> {
        let domain = self.rules.check(rcpt)?;
        self.capacity
            .space_for(domain, size)
            .map_err(Refusal::Capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Full(QuotaError);

    impl Capacity for Full {
        fn space_for(&self, _domain: &str, _size: u64) -> Result<(), QuotaError> {
            Err(self.0)
        }
    }

    fn rules() -> Arc<Rules> {
        let cfg = PolicyConfig {
            domains: vec!["example.com".into()],
            recipients: vec![],
            ..PolicyConfig::default()
        };
        Arc::new(Rules::from_config(&cfg).unwrap())
    }

    fn rcpt(text: &str) -> Mailbox {
        Mailbox::parse_forward(text, false).unwrap()
    }

    #[test]
    fn capacity_is_asked_only_for_accepted_domains() {
        let full = Checker::new(rules(), Full(QuotaError::SpoolFull));
        assert_eq!(
            full.recipient(&rcpt("<a@example.com>"), 10),
            Err(Refusal::Capacity(QuotaError::SpoolFull))
        );
        assert_eq!(
            full.recipient(&rcpt("<a@evil.example>"), 10),
            Err(Refusal::RelayDenied)
        );
        let open = Checker::new(rules(), Unlimited);
        assert_eq!(open.recipient(&rcpt("<a@example.com>"), 10), Ok(()));
    }
}
