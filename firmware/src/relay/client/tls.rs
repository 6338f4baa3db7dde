//! STARTTLS (RFC 3207): the policy for a next hop and the result of the host's handshake.

use embassy_time::Instant;

use super::{Client, Extensions, FailReason, State};

/// What protects the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// No TLS (before STARTTLS, or none offered).
    #[default]
    Plain,
    /// TLS, the certificate not checked or not verified (opportunistic).
    Encrypted,
    /// TLS with a certificate chain and name the host verified.
    Verified,
}

/// STARTTLS policy for a next hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Use STARTTLS when offered; plaintext otherwise (RFC 3207 §4.1 default).
    #[default]
    Opportunistic,
    /// Only deliver over TLS; any certificate.
    Require,
    /// Only deliver over TLS with a certificate the host verified.
    RequireVerify,
}

impl TlsPolicy {
    /// Parse `opportunistic`, `require` or `require-verify`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "opportunistic" | "" => Some(Self::Opportunistic),
            "require" => Some(Self::Require),
            "require-verify" => Some(Self::RequireVerify),
            _ => None,
        }
    }

    pub(super) fn required(self) -> bool {
        self != Self::Opportunistic
    }
}

impl Client<'_> {
    /// The handshake after [`ClientAction::StartTls`](super::ClientAction::StartTls)
    /// reached `tls` ([`Tls::Encrypted`], or [`Tls::Verified`] when the host checked the
    /// certificate chain and name; [`Tls::Plain`] counts as a failed handshake). The
    /// session starts over with EHLO (RFC 3207 §4.2).
    pub fn tls_established(&mut self, tls: Tls, now: Instant) {
        self.now = now;
        if tls == Tls::Plain {
            self.tls_failed();
            return;
        }
        if !matches!(self.state, State::Handshake) {
            return;
        }
        self.tls = tls;
        self.reader.reset();
        self.ext = Extensions::default();
        if self.cfg.tls == TlsPolicy::RequireVerify && tls != Tls::Verified {
            // Over TLS, so a QUIT is safe and polite.
            self.fail(FailReason::TlsUnverified, None);
            return;
        }
        self.send_helo("EHLO", now);
        self.state = State::Ehlo;
    }

    /// The handshake after [`ClientAction::StartTls`](super::ClientAction::StartTls)
    /// failed; the connection is unusable.
    pub fn tls_failed(&mut self) {
        if matches!(self.state, State::Handshake) {
            self.fail(FailReason::TlsHandshake, None);
        }
    }

    /// The STARTTLS policy this session follows.
    pub fn tls_policy(&self) -> TlsPolicy {
        self.cfg.tls
    }

    /// What protects this session's connection now.
    pub fn tls(&self) -> Tls {
        self.tls
    }
}
