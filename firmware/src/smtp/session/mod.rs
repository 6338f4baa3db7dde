//! The sans-IO SMTP server session (RFC 5321), one per connection.
//!
//! States follow RFC 5321 §4.1.4 (command order) and §3.3 (mail transactions); every
//! transition takes the old [`State`] by value and returns the next one. Replies cite their
//! RFC section. The session owns no socket, timer or storage: the host feeds bytes and `now`
//! and acts on the [`Event`]s, see the [module docs](super) for the driving loop.
//!
//! # Layout
//!
//! - this file: the session ([`Session`]), its states, the host-facing input loop and
//!   closing;
//! - `commands`: one command line, dispatched on the state (§4.1.4), and the EHLO reply;
//! - `envelope`: MAIL and RCPT build the [`Envelope`], with the policy asked per recipient;
//! - `data`: DATA, the content's end and the host's answer ([`Session::stored`],
//!   [`StoreError`]);
//! - `tls`: STARTTLS (RFC 3207) and the handshake's result;
//! - `bounds`: what a client cannot exceed — time, rejected commands, message size;
//! - `checks`: the host's own checks — a recipient handed to the host before its reply
//!   ([`Event::RcptCheck`]), a greeting that refuses the client, a content verdict;
//! - `config`: the settings every session shares ([`SessionConfig`]) and the peer
//!   ([`PeerInfo`]).

mod bounds;
mod checks;
mod commands;
mod config;
mod data;
mod envelope;
mod tls;

pub use checks::{PendingRcpt, RcptAnswer};
pub use config::{PeerInfo, SessionConfig, SessionConfigError};
pub use data::StoreError;
pub use envelope::{Envelope, refusal_reply};

use embassy_time::Instant;

use crate::policy::Policy;
use crate::smtp::data::{DataReceiver, EVENTS_RESERVE};
use crate::smtp::event::{Event, Events};
use crate::smtp::limits::DOMAIN_MAX;
use crate::smtp::line::{LineReceiver, LineStatus};
use crate::smtp::reply::Reply;

/// What the client said in HELO/EHLO.
#[derive(Clone, Debug)]
struct Helo {
    name: heapless::String<DOMAIN_MAX>,
    ehlo: bool,
}

/// RFC 5321 §4.1.4 command order, plus the host hand-offs.
#[derive(Debug)]
enum State {
    /// Greeting sent (§3.1); EHLO/HELO expected.
    Connected,
    /// After EHLO/HELO, no transaction (§4.1.1.1).
    Ready(Helo),
    /// MAIL accepted (§4.1.1.2); RCPT expected.
    Mail(Helo),
    /// At least one RCPT accepted (§4.1.1.3); more RCPT or DATA.
    Rcpt(Helo),
    /// 354 sent (§4.1.1.4); content until CRLF.CRLF.
    Data(Helo, DataReceiver),
    /// Content complete; waiting for the host to make it durable (§4.1.1.4: 250 only then).
    Storing(Helo),
    /// A recipient handed to the host ([`Event::RcptCheck`]); waiting for its answer.
    RcptCheck(Helo),
    /// The greeting was `554` (§3.1): only QUIT is answered (221), anything else 503.
    Refused,
    /// 220 to STARTTLS sent (RFC 3207 §4.2); input is plaintext the client must not have
    /// sent, and is discarded.
    TlsHandshake,
    /// 221 or 421 sent; input is discarded.
    Closed,
}

/// One SMTP server session.
pub struct Session<P> {
    cfg: SessionConfig<P>,
    peer: PeerInfo,
    state: State,
    line: LineReceiver,
    /// Allocated with the session and reused per message; states stay small.
    envelope: Envelope,
    tls: bool,
    bad_commands: u32,
    started: Instant,
    last_input: Instant,
    /// The recipient handed to the host, and what the policy said of it.
    pending: Option<(
        crate::smtp::address::Mailbox,
        Option<crate::policy::Refusal>,
    )>,
}

impl<P: Policy + Clone> Session<P> {
    /// A new session and its greeting (RFC 5321 §4.3.1: `220 <domain> ...`).
    pub fn new(cfg: &SessionConfig<P>, peer: PeerInfo, now: Instant) -> (Self, Reply) {
        let greeting = Reply::new(220, "", format_args!("{} ESMTP mailbag", cfg.hostname));
        let session = Self {
            cfg: cfg.clone(),
            peer,
            state: State::Connected,
            line: LineReceiver::default(),
            envelope: Envelope::default(),
            tls: peer.tls,
            bad_commands: 0,
            started: now,
            last_input: now,
            pending: None,
        };
        (session, greeting)
    }
}

impl<P: Policy> Session<P> {
    /// Consume input, pushing events into `out`; returns how many bytes were consumed.
    ///
    /// Stops early (returning less than `bytes.len()`) when `out` is nearly full, after an
    /// event that needs the host first (`StartTls`, `MessageBegin`, `MessageEnd`, `Etrn`,
    /// `RcptCheck`, `Close`) and while waiting for [`Session::stored`] or
    /// [`Session::rcpt_checked`]. The host keeps the unconsumed
    /// bytes and feeds them again after handling the events — except after `StartTls`, when
    /// it drops them. Any split of the same bytes yields the same replies and content.
    pub fn input<'a>(&mut self, bytes: &'a [u8], now: Instant, out: &mut Events<'a>) -> usize {
        if !bytes.is_empty() {
            self.last_input = now;
        }
        let mut pos = 0;
        while pos < bytes.len() && out.capacity() - out.len() >= EVENTS_RESERVE {
            match &mut self.state {
                State::Closed | State::TlsHandshake => return bytes.len(),
                State::Storing(_) | State::RcptCheck(_) => break,
                State::Data(_, rx) => {
                    let fed = rx.feed(&bytes[pos..], out);
                    pos += fed.consumed;
                    if let Some(end) = fed.end {
                        self.data_end(end, out);
                        break;
                    }
                }
                _ => {
                    let (n, status) = self.line.feed(&bytes[pos..]);
                    pos += n;
                    let stop = match status {
                        LineStatus::Partial => false,
                        LineStatus::Ready => self.line_ready(now, out),
                        // §4.5.3.1.4: 500 for a line too long.
                        LineStatus::TooLong => self.bad(reply(500, "5.5.6", "Line too long"), out),
                        LineStatus::BareNewline => self.bare_newline(out),
                    };
                    if stop {
                        break;
                    }
                }
            }
        }
        pos
    }

    /// The current message's envelope, from [`Event::MessageBegin`] until
    /// [`Session::stored`] (or an abort).
    pub fn envelope(&self) -> Option<&Envelope> {
        matches!(self.state, State::Data(..) | State::Storing(_)).then_some(&self.envelope)
    }

    /// True once the session has closed; the host closes the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// A bare CR or LF: where the client thinks the line ends is unknowable, so nothing it
    /// sends next can be trusted; reject and close (Postfix `smtpd_forbid_bare_newline`).
    fn bare_newline(&mut self, out: &mut Events<'_>) -> bool {
        push(
            out,
            Event::Reply(reply(550, "5.5.2", "Error: bare <CR> or <LF> received")),
        );
        self.close(out)
    }

    fn close(&mut self, out: &mut Events<'_>) -> bool {
        self.state = State::Closed;
        push(out, Event::Close);
        true
    }
}

fn reply(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply::new(code, enhanced, format_args!("{text}"))
}

/// `input` keeps [`EVENTS_RESERVE`] slots free before each step and a step pushes at most
/// three events, so this cannot fail; ignoring the impossible error keeps panics out.
fn push<'a>(out: &mut Events<'a>, event: Event<'a>) {
    let _ = out.push(event);
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::policy::{Checker, Unlimited};

    /// RAM per connection is fixed and known: the session and its event buffer live in every
    /// connection's task (50 sessions must fit in a few MiB).
    #[test]
    fn a_session_and_its_event_buffer_have_a_fixed_small_size() {
        let session = core::mem::size_of::<Session<Checker<Unlimited>>>();
        let events = core::mem::size_of::<Events<'static>>();
        eprintln!("Session: {session} bytes, Events: {events} bytes");
        assert!(session < 4 * 1024, "Session is {session} bytes");
        assert!(events < 6 * 1024, "Events is {events} bytes");
    }
}
