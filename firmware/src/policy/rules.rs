//! [`Rules`]: the pure recipient checks, built once from [`PolicyConfig`].
//!
//! A recipient is accepted only when all of these hold, so that no address form can make
//! mailbag relay to a foreign host (RFC 5321 §3.6.2, RFC 2505 §2):
//!
//! - its domain is a host name (not an IP literal) exactly equal, after ASCII lowercasing, to
//!   a configured domain — no suffix or prefix match, no trailing dot, no Unicode folding;
//! - its local part is an unquoted dot-string without `%` or `!` (the percent hack and bang
//!   paths, RFC 2505 §2.6) or their full-width look-alikes;
//! - if the domain has a recipient list, the local part (ASCII case-insensitive, with or
//!   without its `+detail`) is on it.
//!
//! Source routes and `user@other@domain` never reach here: the address parser refuses them.

use core::fmt;

use super::{PolicyConfig, Refusal};
use crate::smtp::{Domain, Mailbox};

/// Characters that reroute mail in some MTA, and look-alikes a normalizing host might
/// turn into them (FULLWIDTH/SMALL PERCENT, COMMERCIAL AT, EXCLAMATION).
const ROUTING_CHARS: [char; 9] = [
    '%', '!', '@', '\u{FF05}', '\u{FE6A}', '\u{FF20}', '\u{FE6B}', '\u{FF01}', '\u{FE57}',
];

/// A configuration entry that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulesError {
    /// A `domains` entry is not a host name.
    BadDomain(String),
    /// A `recipients` entry is not `local@domain`.
    BadRecipient(String),
    /// A `recipients` entry's domain is not in `domains`.
    RecipientOutsideDomains(String),
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDomain(d) => write!(f, "policy.domains: {d:?} is not a host name"),
            Self::BadRecipient(r) => write!(f, "policy.recipients: {r:?} is not local@domain"),
            Self::RecipientOutsideDomains(r) => {
                write!(
                    f,
                    "policy.recipients: {r:?} is not in one of policy.domains"
                )
            }
        }
    }
}

impl std::error::Error for RulesError {}

/// One accepted domain and its optional recipient list.
#[derive(Clone, Debug)]
struct AcceptedDomain {
    name: String,
    /// Lowercased local parts; empty means every local part is accepted.
    recipients: Vec<String>,
}

/// The pure part of the policy.
#[derive(Clone, Debug)]
pub struct Rules {
    domains: Vec<AcceptedDomain>,
}

impl Rules {
    /// Check and normalize the configuration.
    pub fn from_config(cfg: &PolicyConfig) -> Result<Self, RulesError> {
        let mut domains = Vec::with_capacity(cfg.domains.len());
        for text in &cfg.domains {
            match Domain::parse(text, true) {
                Ok(Domain::Name(name)) => domains.push(AcceptedDomain {
                    name: name.as_str().into(),
                    recipients: Vec::new(),
                }),
                _ => return Err(RulesError::BadDomain(text.clone())),
            }
        }
        for text in &cfg.recipients {
            let mailbox = Mailbox::parse_bare(text, true)
                .map_err(|_| RulesError::BadRecipient(text.clone()))?;
            let domain = mailbox.domain().name().unwrap_or_default();
            let entry = domains
                .iter_mut()
                .find(|d| d.name == domain)
                .ok_or_else(|| RulesError::RecipientOutsideDomains(text.clone()))?;
            entry.recipients.push(mailbox.local().to_ascii_lowercase());
        }
        Ok(Self { domains })
    }

    /// Accept `rcpt` or say why not; on success returns the configured domain it matched.
    pub fn check(&self, rcpt: &Mailbox) -> Result<&str, Refusal> {
        let name = rcpt.domain().name().ok_or(Refusal::RelayDenied)?;
        let domain = self
            .domains
            .iter()
            .find(|d| d.name == name)
            .ok_or(Refusal::RelayDenied)?;
        let local = rcpt.local();
        if rcpt.is_quoted() || local.contains(ROUTING_CHARS) {
            return Err(Refusal::RelayDenied);
        }
        if !domain.recipients.is_empty() {
            let local = local.to_ascii_lowercase();
            let base = local
                .split_once('+')
                .map_or(local.as_str(), |(base, _)| base);
            if !domain.recipients.iter().any(|r| *r == local || r == base) {
                return Err(Refusal::UnknownUser);
            }
        }
        Ok(&domain.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(domains: &[&str], recipients: &[&str]) -> Rules {
        let cfg = PolicyConfig {
            domains: domains.iter().map(|s| s.to_string()).collect(),
            recipients: recipients.iter().map(|s| s.to_string()).collect(),
            ..PolicyConfig::default()
        };
        Rules::from_config(&cfg).unwrap()
    }

    fn check(rules: &Rules, rcpt: &str) -> Result<(), Refusal> {
        let mailbox = Mailbox::parse_forward(rcpt, true).unwrap();
        rules.check(&mailbox).map(|_| ())
    }

    #[test]
    fn configured_domains_accept_any_case_and_plus_addressing() {
        let r = rules(&["Example.COM"], &[]);
        assert_eq!(check(&r, "<user@example.com>"), Ok(()));
        assert_eq!(check(&r, "<User@Example.COM>"), Ok(()));
        assert_eq!(check(&r, "<user+tag@example.com>"), Ok(()));
        assert_eq!(check(&r, "<user@example.org>"), Err(Refusal::RelayDenied));
    }

    #[test]
    fn relay_tricks_are_denied_even_at_our_domain() {
        let r = rules(&["example.com"], &[]);
        for rcpt in [
            "<user%evil.net@example.com>",
            "<evil.net!user@example.com>",
            "<\"user@evil.net\"@example.com>",
            "<\"user\"@example.com>",
            "<user@[192.0.2.1]>",
            "<user＠evil.net@example.com>",
            "<user@sub.example.com>",
            "<user@example.com.evil.net>",
        ] {
            assert_eq!(check(&r, rcpt), Err(Refusal::RelayDenied), "{rcpt}");
        }
    }

    #[test]
    fn recipient_lists_limit_their_domain_only() {
        let r = rules(
            &["example.com", "other.example"],
            &["Sales@example.com", "info@example.com"],
        );
        assert_eq!(check(&r, "<sales@EXAMPLE.com>"), Ok(()));
        assert_eq!(check(&r, "<SALES+eu@example.com>"), Ok(()));
        assert_eq!(check(&r, "<bob@example.com>"), Err(Refusal::UnknownUser));
        assert_eq!(check(&r, "<bob@other.example>"), Ok(()));
    }

    #[test]
    fn bad_configuration_is_reported() {
        let bad = |domains: &[&str], recipients: &[&str]| {
            Rules::from_config(&PolicyConfig {
                domains: domains.iter().map(|s| s.to_string()).collect(),
                recipients: recipients.iter().map(|s| s.to_string()).collect(),
                ..PolicyConfig::default()
            })
            .unwrap_err()
        };
        assert_eq!(
            bad(&["[192.0.2.1]"], &[]),
            RulesError::BadDomain("[192.0.2.1]".into())
        );
        assert_eq!(
            bad(&["example.com."], &[]),
            RulesError::BadDomain("example.com.".into())
        );
        assert_eq!(
            bad(&["example.com"], &["nobody"]),
            RulesError::BadRecipient("nobody".into())
        );
        assert_eq!(
            bad(&["example.com"], &["a@other.example"]),
            RulesError::RecipientOutsideDomains("a@other.example".into())
        );
    }

    #[test]
    fn empty_configuration_accepts_nothing() {
        let r = rules(&[], &[]);
        assert_eq!(check(&r, "<user@example.com>"), Err(Refusal::RelayDenied));
    }
}
