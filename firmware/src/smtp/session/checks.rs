//! The host's own checks around the session: a recipient handed over before its reply
//! ([`Event::RcptCheck`]), a greeting that refuses the client (RFC 5321 §3.1), a verdict on
//! the content instead of "stored" (a blocked attachment, a virus, a spam score), and
//! shorter idle time under load (Postfix's stress mode).

use embassy_time::{Duration, Instant};

use super::{Events, Reply, Session, SessionConfig, State, reply};
use crate::policy::{Policy, Refusal};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::limits::RECIPIENTS_MAX;

/// The host's answer to [`Event::RcptCheck`].
#[derive(Clone, Debug, PartialEq, Eq)]
// A fixed-capacity reply by design (no heap); one per recipient, never stored.
#[allow(clippy::large_enum_variant)]
pub enum RcptAnswer {
    /// `250 2.1.5`: the recipient joins the envelope.
    Accept,
    /// This reply; a 5xx counts as a rejected command (too many close the session).
    Refuse(Reply),
}

/// The recipient waiting for the host, and its transaction so far.
#[derive(Clone, Copy, Debug)]
pub struct PendingRcpt<'a> {
    /// The recipient.
    pub mailbox: &'a Mailbox,
    /// What the policy said (`None`: accepted by the static rules and capacity).
    pub refusal: Option<Refusal>,
    /// MAIL FROM.
    pub sender: Option<&'a ReversePath>,
    /// MAIL FROM's SIZE=, if given.
    pub declared_size: Option<u64>,
    /// Recipients accepted before this one.
    pub accepted: &'a [Mailbox],
}

impl<P: Policy + Clone> Session<P> {
    /// A session whose greeting refuses the client: `554 <text>` (RFC 5321 §3.1); it then
    /// answers QUIT with 221 and every other command with 503, closing after
    /// `max-bad-commands`.
    pub fn refused(
        cfg: &SessionConfig<P>,
        peer: super::PeerInfo,
        now: Instant,
        enhanced: &str,
        text: &str,
    ) -> (Self, Reply) {
        let (mut session, _) = Self::new(cfg, peer, now);
        session.state = State::Refused;
        (session, Reply::new(554, enhanced, format_args!("{text}")))
    }
}

impl<P: Policy> Session<P> {
    /// The recipient handed over with [`Event::RcptCheck`], until it is answered.
    pub fn pending_recipient(&self) -> Option<PendingRcpt<'_>> {
        let (mailbox, refusal) = self.pending.as_ref()?;
        Some(PendingRcpt {
            mailbox,
            refusal: *refusal,
            sender: self.envelope.from.as_ref(),
            declared_size: self.envelope.params.size,
            accepted: &self.envelope.recipients,
        })
    }

    /// The host's answer to [`Event::RcptCheck`]; its reply (and, after too many errors,
    /// `421` and [`Event::Close`]) go to `out`. Called in any other state it does nothing.
    pub fn rcpt_checked(&mut self, answer: RcptAnswer, now: Instant, out: &mut Events<'_>) {
        let helo = match core::mem::replace(&mut self.state, State::Closed) {
            State::RcptCheck(helo) => helo,
            other => {
                self.state = other;
                return;
            }
        };
        let Some((mailbox, _)) = self.pending.take() else {
            self.state = State::Ready(helo);
            return;
        };
        self.last_input = now;
        self.state = if self.envelope.recipients.is_empty() {
            State::Mail(helo.clone())
        } else {
            State::Rcpt(helo.clone())
        };
        debug_assert!(self.envelope.recipients.len() < RECIPIENTS_MAX);
        self.answer_rcpt(helo, mailbox, answer, out);
    }

    /// Instead of [`Session::stored`]: the host refuses the content with `reply` (a blocked
    /// attachment, a virus, a spam score, a domain's size or quota). The transaction is
    /// reset like after any final reply. Called in any other state it returns `451 4.3.0`.
    pub fn rejected(&mut self, reply_to_dot: Reply, now: Instant) -> Reply {
        match core::mem::replace(&mut self.state, State::Closed) {
            State::Storing(helo) => {
                self.state = State::Ready(helo);
                self.last_input = now;
                self.envelope.recipients.clear();
                reply_to_dot
            }
            other => {
                self.state = other;
                reply(451, "4.3.0", "Local error: no message waiting")
            }
        }
    }

    /// The idle timeout from now on (the host shortens it under load, lengthens it back).
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.cfg.idle_timeout = idle;
    }

    /// The idle timeout in force.
    pub fn idle_timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    /// True from MAIL until the transaction ends: the client is sending mail, not idling.
    pub fn in_transaction(&self) -> bool {
        matches!(
            self.state,
            State::Mail(_)
                | State::Rcpt(_)
                | State::RcptCheck(_)
                | State::Data(..)
                | State::Storing(_)
        )
    }

    /// The HELO/EHLO name, once given.
    pub fn helo_name(&self) -> Option<&str> {
        match &self.state {
            State::Ready(h)
            | State::Mail(h)
            | State::Rcpt(h)
            | State::RcptCheck(h)
            | State::Data(h, _)
            | State::Storing(h) => Some(&h.name),
            _ => None,
        }
    }
}
