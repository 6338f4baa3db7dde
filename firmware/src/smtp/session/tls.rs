//! STARTTLS (RFC 3207): offered only when configured and not yet encrypted; plaintext
//! the client sent after the command is never read.

use embassy_time::Instant;

use super::{Event, Events, Helo, LineReceiver, Session, State, push, reply};
use crate::policy::Policy;

impl<P: Policy> Session<P> {
    /// The TLS handshake after [`Event::StartTls`] succeeded. The session forgets everything
    /// learnt before it (RFC 3207 §4.2): the client must EHLO again.
    pub fn tls_established(&mut self, now: Instant) {
        if matches!(self.state, State::TlsHandshake) {
            self.state = State::Connected;
            self.tls = true;
            self.line = LineReceiver::default();
            self.last_input = now;
        }
    }

    pub(super) fn start_tls(&mut self, helo: Option<Helo>, out: &mut Events<'_>) -> bool {
        if !self.cfg.starttls {
            self.state = helo.map_or(State::Connected, State::Ready);
            return self.bad(reply(502, "5.5.1", "Error: command not implemented"), out);
        }
        if self.tls {
            self.state = helo.map_or(State::Connected, State::Ready);
            return self.bad(reply(503, "5.5.1", "Error: TLS already active"), out);
        }
        // RFC 3207 §4: 220, then the handshake; the host must drop buffered plaintext.
        self.state = State::TlsHandshake;
        push(out, Event::Reply(reply(220, "2.0.0", "Ready to start TLS")));
        push(out, Event::StartTls);
        true
    }
}
