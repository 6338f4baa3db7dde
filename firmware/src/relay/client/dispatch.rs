//! One complete reply from the next hop, dispatched on the session's state (RFC 5321
//! §4.1.4 order): greeting, EHLO (HELO as the fallback), STARTTLS, RSET, ETRN and the end
//! of data here; the transaction's replies in `transaction`.

use embassy_time::Instant;

use super::outcome::verdict;
use super::{
    Boundary, COMMAND_TIMEOUT, Client, ClientAction, FailReason, Mode, Outcome, RcptResult, State,
    Tls,
};
use crate::relay::reply::ServerReply;

/// What the next hop offered in its EHLO reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 1870: `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 6152.
    pub eight_bit_mime: bool,
}

impl Client<'_> {
    /// One complete reply.
    pub(super) fn reply(&mut self, reply: ServerReply, now: Instant) {
        let state = core::mem::replace(&mut self.state, State::Closed);
        let code = reply.code();
        match state {
            State::Greeting if code == 220 => {
                self.send_helo("EHLO", now);
                self.state = State::Ehlo;
            }
            State::Greeting => self.fail(FailReason::Greeting, Some(reply)),
            State::Ehlo | State::Helo if reply.is_positive() => {
                self.ext = if matches!(state, State::Ehlo) {
                    self.ext_partial
                } else {
                    Extensions::default()
                };
                self.ext_partial = Extensions::default();
                self.after_helo(now);
            }
            // §4.1.4: a server that does not know EHLO answers 5xx; HELO then.
            State::Ehlo if reply.is_permanent() && self.tls == Tls::Plain => {
                self.ext_partial = Extensions::default();
                self.send_helo("HELO", now);
                self.state = State::Helo;
            }
            State::Ehlo | State::Helo => self.fail(FailReason::Helo, Some(reply)),
            State::StartTls if code == 220 => {
                self.state = State::Handshake;
                self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
                self.reader.reset();
                self.action(ClientAction::StartTls);
            }
            State::StartTls if self.cfg.tls.required() => {
                self.fail(FailReason::TlsRefused, Some(reply));
            }
            State::StartTls => self.begin(now),
            State::Rset if reply.is_positive() => self.begin(now),
            State::Rset => self.fail(FailReason::Rset, Some(reply)),
            State::Etrn => self.etrn_reply(reply),
            State::Beacon => self.beacon_reply(reply),
            State::VerifyMail | State::VerifyRcpt => self.verify_reply(state, reply, now),
            State::Transaction(t) => self.transaction_reply(t, reply, now),
            State::DataEnd => {
                for r in self.results.iter_mut() {
                    if r.as_ref() == Some(&RcptResult::Delivered) {
                        *r = Some(verdict(&reply));
                    }
                }
                self.boundary = Boundary::Clean;
                self.finish_transaction();
            }
            // Anything else is a reply to nothing: the stream can no longer be trusted.
            State::Body(_) | State::Handshake | State::Closed | State::Idle => {
                self.fail(FailReason::Unexpected, Some(reply));
            }
            State::Quit => self.close(),
        }
    }

    fn after_helo(&mut self, now: Instant) {
        if let Mode::Probe = self.mode {
            self.outcome = Some(Outcome::Probed(self.ext));
            self.action(ClientAction::Done);
            self.quit();
            return;
        }
        if self.tls == Tls::Plain && self.ext.starttls {
            self.push_out(format_args!("STARTTLS\r\n"));
            self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
            self.state = State::StartTls;
        } else if self.tls == Tls::Plain && self.cfg.tls.required() {
            self.fail(FailReason::TlsNotOffered, None);
        } else {
            self.begin(now);
        }
    }
}

/// One EHLO keyword line (RFC 5321 §4.1.1.1 `ehlo-line`).
pub(super) fn parse_extension(text: &str, ext: &mut Extensions) {
    let mut words = text.split_ascii_whitespace();
    let Some(keyword) = words.next() else {
        return;
    };
    let is = |k: &str| keyword.eq_ignore_ascii_case(k);
    if is("PIPELINING") {
        ext.pipelining = true;
    } else if is("STARTTLS") {
        ext.starttls = true;
    } else if is("SIZE") {
        ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
    } else if is("SMTPUTF8") {
        ext.smtputf8 = true;
    } else if is("8BITMIME") {
        ext.eight_bit_mime = true;
    }
}
