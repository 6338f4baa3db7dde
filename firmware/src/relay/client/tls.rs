//! STARTTLS (RFC 3207): the policy for a next hop and the result of the host's handshake.

use embassy_time::Instant;

use super::{Client, Extensions, FailReason, State};

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
    /// certificate chain and name verified. The session starts over with EHLO (RFC 3207 §4.2).
    pub fn tls_established(&mut self, verified: bool, now: Instant) {
        self.now = now;
        if !matches!(self.state, State::Handshake) {
            return;
        }
        self.tls = true;
        self.tls_verified = verified;
        self.reader.reset();
        self.ext = Extensions::default();
        if self.cfg.tls == TlsPolicy::RequireVerify && !verified {
            // Over TLS, so a QUIT is safe and polite.
            self.fail(false, FailReason::TlsUnverified, None, true);
            return;
        }
        self.send_helo("EHLO", now);
        self.state = State::Ehlo;
    }

    /// The handshake after [`ClientAction::StartTls`] failed; the connection is unusable.
    pub fn tls_failed(&mut self) {
        if matches!(self.state, State::Handshake) {
            self.fail(false, FailReason::TlsHandshake, None, false);
        }
    }

    /// True when this session's content went over TLS with a verified certificate.
    pub fn tls_verified(&self) -> bool {
        self.tls && self.tls_verified
    }
}
