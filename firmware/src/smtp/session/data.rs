//! DATA (RFC 5321 §4.1.1.4): the Received header, 354, the content's end, and the reply
//! to the final dot only once the host says the message is durable.

use core::fmt;

use embassy_time::Instant;

use super::bounds::too_big;
use super::{Event, Events, Helo, Reply, Session, State, push, reply};
use crate::policy::{Policy, QuotaError};
use crate::smtp::data::{DataEnd, DataReceiver, HOPS_MAX};
use crate::smtp::event::AbortReason;
use crate::smtp::received::{Protocol, received_header};

/// The host's answer after [`Event::MessageEnd`]: why the message is not durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The spool is full: `452 4.3.1`.
    SpoolFull,
    /// The domain's quota is used up: `452 4.2.2`.
    QuotaExceeded,
    /// Flash or filesystem error: `451 4.3.0`.
    Io,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SpoolFull => "spool full",
            Self::QuotaExceeded => "quota exceeded",
            Self::Io => "storage error",
        })
    }
}

impl std::error::Error for StoreError {}

impl From<QuotaError> for StoreError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::SpoolFull => Self::SpoolFull,
            QuotaError::QuotaExceeded => Self::QuotaExceeded,
        }
    }
}

impl<P: Policy> Session<P> {
    /// The host's answer after [`Event::MessageEnd`]: the message is durable (`Ok(queue
    /// id)`) or not. Returns the reply to the final dot (RFC 5321 §4.1.1.4, §4.2.5). Called
    /// in any other state it changes nothing and returns `451 4.3.0` (a host bug).
    pub fn stored<Q: fmt::Display>(
        &mut self,
        result: Result<Q, StoreError>,
        now: Instant,
    ) -> Reply {
        let helo = match core::mem::replace(&mut self.state, State::Closed) {
            State::Storing(helo) => helo,
            other => {
                self.state = other;
                return reply(451, "4.3.0", "Local error: no message waiting");
            }
        };
        self.state = State::Ready(helo);
        self.last_input = now;
        self.envelope.recipients.clear();
        match result {
            Ok(id) => Reply::new(250, "2.0.0", format_args!("Ok: queued as {id}")),
            Err(StoreError::SpoolFull) => reply(452, "4.3.1", "Insufficient system storage"),
            Err(StoreError::QuotaExceeded) => reply(452, "4.2.2", "Mailbox full"),
            Err(StoreError::Io) => reply(451, "4.3.0", "Local error in processing"),
        }
    }

    pub(super) fn data(&mut self, helo: Helo, now: Instant, out: &mut Events<'_>) -> bool {
        let protocol = Protocol::of(helo.ehlo, self.tls, self.envelope.params.smtputf8);
        let elapsed = now.saturating_duration_since(self.started).as_secs();
        self.envelope.received = received_header(
            &helo.name,
            self.peer.ip,
            &self.cfg.hostname,
            protocol,
            self.peer.unix_seconds.saturating_add(elapsed),
        );
        self.state = State::Data(helo, DataReceiver::new(self.cfg.max_message_size));
        // §4.1.1.4 / §4.3.2: 354, then content.
        push(
            out,
            Event::Reply(Reply::new(
                354,
                "",
                format_args!("End data with <CR><LF>.<CR><LF>"),
            )),
        );
        push(out, Event::MessageBegin);
        true
    }

    /// The content ended; returns nothing, the caller stops after it.
    pub(super) fn data_end(&mut self, end: DataEnd, out: &mut Events<'_>) {
        let State::Data(helo, rx) = core::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        match end {
            DataEnd::Complete if rx.looped() => {
                // RFC 5321 §6.3: refuse, never store: a stored looping message would be
                // bounced around again.
                self.state = State::Ready(helo);
                let text = format_args!(
                    "Error: too many hops ({} Received: fields, at most {HOPS_MAX}); mail loop?",
                    rx.hops()
                );
                push(out, Event::Reply(Reply::new(554, "5.4.6", text)));
            }
            DataEnd::Complete if rx.too_big() => {
                // RFC 1870 §6.3: 552 after the final dot, transaction reset.
                self.state = State::Ready(helo);
                push(out, Event::Reply(too_big()));
            }
            DataEnd::Complete => {
                self.state = State::Storing(helo);
                push(out, Event::MessageEnd);
            }
            DataEnd::BareNewline => {
                if !rx.aborted() {
                    push(out, Event::MessageAborted(AbortReason::BareNewline));
                }
                self.bare_newline(out);
            }
        }
    }
}
