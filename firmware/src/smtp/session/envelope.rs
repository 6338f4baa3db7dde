//! The envelope (RFC 5321 §2.3.1): MAIL sets the reverse-path and parameters, each RCPT
//! adds a recipient the policy accepts, up to the configured count.

use super::bounds::too_big;
use super::commands::command_error_reply;
use super::{Event, Events, Helo, Session, State, push, reply};
use crate::policy::{Policy, QuotaError, Refusal};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{CommandError, MailParams};
use crate::smtp::received::ReceivedHeader;

/// One message's envelope (RFC 5321 §2.3.1), valid from [`Event::MessageBegin`] until
/// [`Session::stored`].
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    /// MAIL FROM.
    pub from: Option<ReversePath>,
    /// MAIL FROM parameters (SIZE, BODY, SMTPUTF8).
    pub params: MailParams,
    /// Accepted RCPT TOs, in order: at most `max-recipients` (itself at most
    /// [`crate::smtp::limits::RECIPIENTS_MAX`]). A vector that grows to what it holds, so an
    /// idle session costs a few hundred bytes, not room for 100 addresses.
    pub recipients: Vec<Mailbox>,
    /// The trace header to write before the content.
    pub received: ReceivedHeader,
}

impl<P: Policy> Session<P> {
    pub(super) fn mail(
        &mut self,
        helo: Helo,
        from: ReversePath,
        params: MailParams,
        out: &mut Events<'_>,
    ) -> bool {
        if !helo.ehlo && params != MailParams::default() {
            // RFC 1869 §6: no extension parameters after HELO.
            self.state = State::Ready(helo);
            return self.bad(reply(555, "5.5.4", "Error: parameters need EHLO"), out);
        }
        if params.size.is_some_and(|s| s > self.cfg.max_message_size) {
            // RFC 1870 §6.2.
            self.state = State::Ready(helo);
            push(out, Event::Reply(too_big()));
            return false;
        }
        self.envelope.from = Some(from);
        self.envelope.params = params;
        self.envelope.recipients.clear();
        self.state = State::Mail(helo);
        push(out, Event::Reply(reply(250, "2.1.0", "Ok")));
        false
    }

    pub(super) fn rcpt(&mut self, helo: Helo, path: &str, out: &mut Events<'_>) -> bool {
        // A refused RCPT leaves the transaction where it was (§4.1.1.3).
        self.state = if self.envelope.recipients.is_empty() {
            State::Mail(helo.clone())
        } else {
            State::Rcpt(helo.clone())
        };
        let mailbox = match Mailbox::parse_forward(path, self.envelope.params.smtputf8) {
            Ok(m) => m,
            Err(e) => return self.bad(command_error_reply(CommandError::RcptAddress(e)), out),
        };
        if self.envelope.recipients.len() >= self.cfg.max_recipients {
            // RFC 5321 §4.5.3.1.10: 452, the client sends the rest in another transaction.
            push(
                out,
                Event::Reply(reply(452, "4.5.3", "Error: too many recipients")),
            );
            return false;
        }
        let size = self.envelope.params.size.unwrap_or(0);
        let verdict = self.cfg.policy.recipient(&mailbox, size);
        if self.cfg.rcpt_checks {
            self.pending = Some((mailbox, verdict.err()));
            self.state = State::RcptCheck(helo);
            push(out, Event::RcptCheck(verdict.err()));
            return true;
        }
        let answer = match verdict {
            Ok(()) => super::RcptAnswer::Accept,
            Err(r) => super::RcptAnswer::Refuse(refusal_reply(r)),
        };
        self.answer_rcpt(helo, mailbox, answer, out)
    }

    /// Adds `mailbox` (250) or refuses it; the state is already Mail or Rcpt.
    pub(super) fn answer_rcpt(
        &mut self,
        helo: Helo,
        mailbox: Mailbox,
        answer: super::RcptAnswer,
        out: &mut Events<'_>,
    ) -> bool {
        match answer {
            // 5xx refusals count as errors, so a harvesting client is soon disconnected.
            super::RcptAnswer::Refuse(r) if r.is_permanent() => self.bad(r, out),
            super::RcptAnswer::Refuse(r) => {
                push(out, Event::Reply(r));
                false
            }
            super::RcptAnswer::Accept => {
                // Bounded by the `max-recipients` check before the hand-off.
                self.envelope.recipients.push(mailbox);
                self.state = State::Rcpt(helo);
                push(out, Event::Reply(reply(250, "2.1.5", "Ok")));
                false
            }
        }
    }
}

/// The reply to a recipient the policy refused (RFC 5321 §3.6.2, §4.5.3.1.10; RFC 3463).
pub fn refusal_reply(r: Refusal) -> crate::smtp::Reply {
    match r {
        Refusal::RelayDenied => reply(550, "5.7.1", "Relay access denied"),
        Refusal::UnknownUser => reply(550, "5.1.1", "User unknown"),
        Refusal::Capacity(QuotaError::SpoolFull) => {
            reply(452, "4.3.1", "Insufficient system storage")
        }
        Refusal::Capacity(QuotaError::QuotaExceeded) => reply(452, "4.2.2", "Mailbox full"),
    }
}
