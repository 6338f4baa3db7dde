//! The mail transaction (RFC 5321 §3.3): MAIL, one RCPT per recipient, DATA — pipelined
//! when the next hop offers it (RFC 2920) — with replies matched to commands in order and
//! one result kept per recipient.

use core::fmt::Write as _;

use embassy_time::{Duration, Instant};

use super::outcome::verdict;
use super::{
    After, Client, ClientAction, DATA_BLOCK_TIMEOUT, DATA_INIT_TIMEOUT, DeliveryJob, FailReason,
    Failure, MAIL_TIMEOUT, Mode, OUTPUT_MAX, Outcome, RCPT_TIMEOUT, RcptResult, State,
};
use crate::relay::dotstuff::DotStuffer;
use crate::relay::reply::ServerReply;
use crate::spool::message::RECIPIENTS_MAX;

/// A command whose reply is outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Mail,
    Rcpt(usize),
    Data,
}

/// The next command of the transaction to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Next {
    /// MAIL FROM.
    #[default]
    Mail,
    /// RCPT TO for the recipient at this index (past the last: DATA is next).
    Rcpt(usize),
    /// DATA (without PIPELINING: once a recipient was accepted).
    Data,
    /// Everything was sent.
    Sent,
    /// MAIL was refused: send nothing more, drain the outstanding replies, QUIT.
    Abandoned,
}

#[derive(Debug, Default)]
pub(super) struct Transaction {
    next: Next,
    expected: heapless::Deque<Expect, { RECIPIENTS_MAX + 2 }>,
}

impl Client<'_> {
    /// Start the mail transaction (§3.3).
    pub(super) fn begin(&mut self, now: Instant) {
        if let Mode::Etrn(node) = self.mode {
            self.send_etrn(node, now);
            return;
        }
        if let Mode::Beacon(line) = self.mode {
            self.send_beacon(line, now);
            return;
        }
        if let Mode::Verify(address) = self.mode {
            self.send_verify(address, now);
            return;
        }
        if let Mode::Deliver(job) = &self.mode {
            let unsafe_path = |a: &str| a.chars().any(|c| c.is_control() || c == '<' || c == '>');
            if unsafe_path(job.sender) || job.recipients.iter().any(|r| unsafe_path(r)) {
                // Never on the wire: a CR or LF here would inject commands. The spool only
                // holds addresses the server session parsed, so this is damage.
                self.fail(FailReason::BadAddress, None);
                return;
            }
            if needs_smtputf8(job) && !self.ext.smtputf8 {
                // RFC 6531 §3.2: such a message cannot be delivered to this server.
                self.fail(FailReason::Smtputf8, None);
                return;
            }
        }
        self.state = State::Transaction(Transaction::default());
        self.fill(now);
    }

    /// Queue every command that may go out now: one at a time without PIPELINING, as many
    /// as fit with it (RFC 2920 §3.1: DATA last in the group).
    pub(super) fn fill(&mut self, now: Instant) {
        let State::Transaction(t) = &mut self.state else {
            return;
        };
        let Mode::Deliver(job) = &self.mode else {
            return;
        };
        let was_idle = t.expected.is_empty();
        while self.ext.pipelining || t.expected.is_empty() {
            if t.next == Next::Rcpt(job.recipients.len()) {
                t.next = Next::Data;
            }
            let mut line: heapless::String<1100> = heapless::String::new();
            let (expect, then) = match t.next {
                Next::Mail => {
                    let _ = write!(line, "MAIL FROM:<{}>", job.sender);
                    if self.ext.size.is_some() {
                        let _ = write!(line, " SIZE={}", job.size);
                    }
                    if self.ext.smtputf8 && needs_smtputf8(job) {
                        let _ = write!(line, " SMTPUTF8");
                    }
                    (Expect::Mail, Next::Rcpt(0))
                }
                Next::Rcpt(i) => {
                    let _ = write!(line, "RCPT TO:<{}>", job.recipients[i]);
                    (Expect::Rcpt(i), Next::Rcpt(i + 1))
                }
                Next::Data if !self.ext.pipelining && !any_accepted(&self.results) => break,
                Next::Data => {
                    let _ = line.push_str("DATA");
                    (Expect::Data, Next::Sent)
                }
                Next::Sent | Next::Abandoned => break,
            };
            if line.push_str("\r\n").is_err() || OUTPUT_MAX - self.out.len() < line.len() {
                break;
            }
            let _ = self.out.extend_from_slice(line.as_bytes());
            let _ = t.expected.push_back(expect);
            t.next = then;
        }
        if was_idle {
            if let Some(first) = t.expected.front() {
                self.deadline = Some(now.saturating_add(timeout_for(*first)));
            }
        }
        // Without PIPELINING and no recipient accepted, nothing more will be sent.
        let nothing_to_send = t.expected.is_empty() && t.next == Next::Data;
        if nothing_to_send {
            self.finish_transaction();
        }
    }

    pub(super) fn transaction_reply(
        &mut self,
        mut t: Transaction,
        reply: ServerReply,
        now: Instant,
    ) {
        let Some(expect) = t.expected.pop_front() else {
            self.fail(FailReason::Unexpected, Some(reply));
            return;
        };
        match expect {
            _ if t.next == Next::Abandoned => {}
            Expect::Mail if reply.is_positive() => {}
            Expect::Mail => {
                // The whole message fails; drain the pipelined replies, then QUIT.
                t.next = Next::Abandoned;
                self.outcome = Some(Outcome::Failed(Failure {
                    reason: FailReason::Mail,
                    reply: Some(reply),
                }));
                self.action(ClientAction::Done);
            }
            Expect::Rcpt(i) => {
                let result = verdict(&reply);
                if let Some(slot) = self.results.get_mut(i) {
                    *slot = Some(result);
                }
            }
            Expect::Data if reply.code() == 354 => {
                if any_accepted(&self.results) {
                    self.state = State::Body(DotStuffer::default());
                    self.deadline = Some(now.saturating_add(DATA_BLOCK_TIMEOUT));
                    self.action(ClientAction::SendBody);
                } else {
                    // RFC 2920 §3.1 says a server must not do this; sending even an empty
                    // message would be wrong, so the connection is dropped.
                    self.finish_transaction();
                    self.actions.clear();
                    self.action(ClientAction::Done);
                    self.close();
                }
                return;
            }
            Expect::Data if reply.is_positive() => {
                // Only 354 may answer DATA (§4.1.1.4); anything else leaves us unsure
                // whether the server now reads content.
                self.fail(FailReason::Unexpected, Some(reply));
                return;
            }
            Expect::Data => {
                // DATA refused: accepted recipients share its fate.
                for r in self.results.iter_mut() {
                    if r.as_ref() == Some(&RcptResult::Delivered) {
                        *r = Some(verdict(&reply));
                    }
                }
            }
        }
        let done = t.next == Next::Abandoned && t.expected.is_empty();
        let data_refused = matches!(expect, Expect::Data);
        if let Some(next) = t.expected.front() {
            self.deadline = Some(now.saturating_add(timeout_for(*next)));
        }
        self.state = State::Transaction(t);
        if done {
            self.end_message();
        } else if data_refused {
            self.finish_transaction();
        } else {
            self.fill(now);
        }
    }

    /// Turn the per-recipient results into the outcome (recipients never answered are
    /// deferred) and say Done, then QUIT.
    pub(super) fn finish_transaction(&mut self) {
        let mut results = Box::new(heapless::Vec::new());
        for r in &self.results {
            let r = r
                .clone()
                .unwrap_or_else(|| RcptResult::Deferred(ServerReply::new(0, "no reply to RCPT")));
            let _ = results.push(r);
        }
        self.outcome = Some(Outcome::Transaction(results));
        self.action(ClientAction::Done);
        self.end_message();
    }

    /// The message's outcome is given: wait for the next one, or QUIT.
    fn end_message(&mut self) {
        match self.after {
            After::KeepOpen => {
                self.state = State::Idle;
                self.deadline = None;
            }
            After::Quit => self.quit(),
        }
    }
}

fn timeout_for(e: Expect) -> Duration {
    match e {
        Expect::Mail => MAIL_TIMEOUT,
        Expect::Rcpt(_) => RCPT_TIMEOUT,
        Expect::Data => DATA_INIT_TIMEOUT,
    }
}

fn needs_smtputf8(job: &DeliveryJob<'_>) -> bool {
    !job.sender.is_ascii() || job.recipients.iter().any(|r| !r.is_ascii())
}

/// True when at least one RCPT was accepted so far.
fn any_accepted(results: &[Option<RcptResult>]) -> bool {
    results
        .iter()
        .any(|r| matches!(r, Some(RcptResult::Delivered)))
}
