//! What a client cannot exceed: time (idle and whole-session timeouts, RFC 5321
//! §4.5.3.2), rejected commands (§4.2.2) and message size (RFC 1870).

use embassy_time::Instant;

use super::{Event, Events, Reply, Session, State, push, reply};
use crate::policy::Policy;
use crate::smtp::event::AbortReason;

impl<P: Policy> Session<P> {
    /// Check timeouts; on expiry pushes `421 4.4.2` and [`Event::Close`] (RFC 5321
    /// §4.5.3.2). The idle timer does not run while the host is storing a message.
    pub fn tick(&mut self, now: Instant, out: &mut Events<'_>) {
        let Some(deadline) = self.deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        if let State::Data(_, rx) = &self.state {
            if !rx.aborted() {
                push(out, Event::MessageAborted(AbortReason::Timeout));
            }
        }
        let text = format_args!("{} Error: timeout exceeded", self.cfg.hostname);
        push(out, Event::Reply(Reply::new(421, "4.4.2", text)));
        self.close(out);
    }

    /// When [`Session::tick`] should next be called, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        let session_end = self.started.saturating_add(self.cfg.session_timeout);
        match self.state {
            State::Closed => None,
            State::Storing(_) | State::RcptCheck(_) => Some(session_end),
            _ => Some(session_end.min(self.last_input.saturating_add(self.cfg.idle_timeout))),
        }
    }

    /// A rejected command: send `r`, and after too many, 421 and close (RFC 5321 §4.2.2
    /// lets a server end a session that only produces errors).
    pub(super) fn bad(&mut self, r: Reply, out: &mut Events<'_>) -> bool {
        push(out, Event::Reply(r));
        self.bad_commands += 1;
        if self.bad_commands < self.cfg.max_bad_commands {
            return false;
        }
        push(
            out,
            Event::Reply(reply(421, "4.7.0", "Error: too many errors")),
        );
        self.close(out)
    }
}

pub(super) fn too_big() -> Reply {
    reply(
        552,
        "5.3.4",
        "Message size exceeds fixed maximum message size",
    )
}
