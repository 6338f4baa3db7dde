//! The sans-IO SMTP client session (RFC 5321): delivers one message to one next hop, or
//! probes it.
//!
//! # Contract
//!
//! The mirror of [`crate::smtp::Session`]: the host connects, then loops
//!
//! 1. write [`Client::output`] to the socket and call [`Client::written`] with the count;
//! 2. handle every [`Client::next_action`] ([`ClientAction::StartTls`], [`ClientAction::SendBody`],
//!    [`ClientAction::Done`], [`ClientAction::Close`]);
//! 3. read, and feed the bytes with [`Client::input`] (keep what it did not consume);
//!    on EOF call [`Client::eof`]; at [`Client::deadline`] call [`Client::tick`].
//!
//! - **Conversation.** Greeting → EHLO (HELO when EHLO gets 5xx, RFC 5321 §4.1.4) →
//!   STARTTLS when offered or required → MAIL FROM (with `SIZE=` when advertised, RFC 1870)
//!   → one RCPT TO per recipient → DATA → content → `.` → QUIT. With PIPELINING (RFC 2920)
//!   MAIL, the RCPTs and DATA go out in as few writes as [`OUTPUT_MAX`] allows and replies
//!   are matched to commands in order.
//! - **TLS policy** ([`TlsPolicy`]): `opportunistic` uses STARTTLS when offered and goes on
//!   in plaintext if it is refused; `require` and `require-verify` fail the attempt
//!   temporarily (the mail stays queued) when TLS is not offered, refused, fails, or — for
//!   `require-verify` — the host reports the certificate unverified.
//! - **Outcome** ([`Client::outcome`], final once [`ClientAction::Done`] was given): one
//!   [`RcptResult`] per recipient in order (2xx delivered, 4xx deferred, 5xx bounced, with
//!   the server's reply text), or a connection-level [`Failure`] that applies to every
//!   recipient. The reason carries its consequences, as rustls's errors do: whether the
//!   failure is permanent ([`Failure::permanent`]: bounce, or retry) and whether the
//!   stream is still sane enough for QUIT or is only closed ([`FailReason::stream_sane`]). The outcome is known before QUIT is answered, so the host can record it at
//!   once.
//! - **Content** streams through [`Client::body`] in host-sized chunks, dot-stuffed; a bare
//!   CR or LF stops the session without the final dot ([`super::dotstuff`] says why).
//!   Envelope addresses with control characters or brackets are never written either
//!   ([`FailReason::BadAddress`]): nothing from the spool can inject a command.
//! - **Timeouts** are the RFC 5321 §4.5.3.2 minimums, as named constants below.
//! - **Bounded.** One reply line, one output buffer of [`OUTPUT_MAX`] octets, at most
//!   [`RECIPIENTS_MAX`] recipients; nothing the server sends can make it grow or panic.
//!
//! # Layout
//!
//! - this file: the session ([`Client`]), its states, the host-facing loop (`output`,
//!   `written`, `input`, `eof`, `tick`) and the primitives every step uses (QUIT, fail,
//!   close);
//! - `dispatch`: one complete reply, dispatched on the state (greeting, EHLO/HELO,
//!   STARTTLS, RSET, end of data) and what the next hop offered ([`Extensions`]);
//! - `transaction`: MAIL, RCPT and DATA, pipelined, and the per-recipient bookkeeping;
//! - `content`: the DATA phase, dot-stuffed into the bounded output buffer;
//! - `tls`: the STARTTLS policy ([`TlsPolicy`]) and the handshake's result;
//! - `kept`: connection reuse between messages ([`Kept`]);
//! - `etrn`: the ETRN session (RFC 1985);
//! - `beacon`: the heartbeat beacon session (`XBEACON`, mailbag's own);
//! - `outcome`: what the host is asked to do ([`ClientAction`]) and what came of it ([`Outcome`]).

mod beacon;
mod content;
mod dispatch;
mod etrn;
mod kept;
mod outcome;
mod tls;
mod transaction;
mod verify;

pub use dispatch::Extensions;
pub use kept::Kept;
pub use outcome::{ClientAction, FailReason, Failure, Outcome, RcptResult};
pub use tls::{Tls, TlsPolicy};

use core::fmt::{self, Write as _};

use embassy_time::{Duration, Instant};

use crate::relay::dotstuff::DotStuffer;
use crate::relay::reply::{ReplyReader, ServerReply};
use crate::smtp::limits::DOMAIN_MAX;
use crate::spool::message::RECIPIENTS_MAX;
use dispatch::parse_extension;
use transaction::Transaction;

/// Output buffer: commands (and content) waiting for the host to write them.
pub const OUTPUT_MAX: usize = 4096;
/// Initial 220 message (RFC 5321 §4.5.3.2.1).
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// EHLO, HELO and STARTTLS replies: RFC 5321 names none; the MAIL value is used.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// MAIL command (RFC 5321 §4.5.3.2.2).
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// RCPT command (RFC 5321 §4.5.3.2.3).
pub const RCPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// DATA initiation, until 354 (RFC 5321 §4.5.3.2.4).
pub const DATA_INIT_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// Each content block written (RFC 5321 §4.5.3.2.5).
pub const DATA_BLOCK_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// DATA termination, `.` until 250 (RFC 5321 §4.5.3.2.6).
pub const DATA_END_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The 221 after QUIT; the outcome is already known, so this only bounds politeness.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The message to deliver: borrowed from the spool record for the session's lifetime.
#[derive(Clone, Debug)]
pub struct DeliveryJob<'a> {
    /// Reverse-path without brackets; empty for the null sender.
    pub sender: &'a str,
    /// Forward-paths without brackets, at most [`RECIPIENTS_MAX`].
    pub recipients: heapless::Vec<&'a str, RECIPIENTS_MAX>,
    /// Content size in octets (for `SIZE=`).
    pub size: u64,
}

/// Settings that do not change per attempt.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Our name for EHLO/HELO (`smtp.hostname`).
    pub helo_name: heapless::String<DOMAIN_MAX>,
    /// STARTTLS policy of this next hop.
    pub tls: TlsPolicy,
}

/// RFC 5321 §4.1.4 order, seen from the client.
#[derive(Debug)]
// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
enum State {
    /// Waiting for 220 (§3.1).
    Greeting,
    /// EHLO sent (§4.1.1.1).
    Ehlo,
    /// HELO sent after EHLO got 5xx.
    Helo,
    /// STARTTLS sent; waiting for 220 (RFC 3207 §4).
    StartTls,
    /// The host is handshaking.
    Handshake,
    /// ETRN sent (RFC 1985 §3).
    Etrn,
    /// XBEACON sent.
    Beacon,
    /// Verifying a recipient: `MAIL FROM:<>` sent.
    VerifyMail,
    /// Verifying a recipient: `RCPT TO` sent.
    VerifyRcpt,
    /// MAIL, RCPTs, DATA going out and being answered (§3.3, RFC 2920).
    Transaction(Transaction),
    /// 354 received; the host streams content.
    Body(DotStuffer),
    /// `.` sent; waiting for the final reply (§4.1.1.4).
    DataEnd,
    /// The message's outcome is known and the connection is kept for another message
    /// ([`Client::keep_open`]); nothing is outstanding.
    Idle,
    /// RSET sent before the next message on a kept connection (§4.1.1.5).
    Rset,
    /// QUIT sent (§4.1.1.10); waiting for 221 or EOF.
    Quit,
    /// Nothing more to do.
    Closed,
}

// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
enum Mode<'a> {
    Deliver(DeliveryJob<'a>),
    Probe,
    /// RFC 1985: ask the next hop to flush its queue for this node.
    Etrn(&'a str),
    /// Tell the silo this edge is alive (one signed beacon line).
    Beacon(&'a str),
    /// Ask whether a recipient exists: `MAIL FROM:<>`, `RCPT TO`, `RSET`, QUIT.
    Verify(&'a str),
}

/// One SMTP client session.
pub struct Client<'a> {
    cfg: ClientConfig,
    mode: Mode<'a>,
    state: State,
    reader: ReplyReader,
    ext: Extensions,
    /// Extensions collected while an EHLO reply is being read.
    ext_partial: Extensions,
    /// What protects the connection now.
    tls: Tls,
    out: heapless::Vec<u8, OUTPUT_MAX>,
    actions: heapless::Deque<ClientAction, 4>,
    results: heapless::Vec<Option<RcptResult>, RECIPIENTS_MAX>,
    outcome: Option<Outcome>,
    deadline: Option<Instant>,
    /// The latest `now` the host passed in.
    now: Instant,
    /// [`ClientAction::Close`] was given (it is given once).
    close_given: bool,
    /// What follows a message's outcome.
    after: After,
    /// Where the last transaction left the server.
    boundary: Boundary,
}

/// What follows a message's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// QUIT.
    Quit,
    /// Stay connected, idle, for another message ([`Client::keep_open`]).
    KeepOpen,
}

/// Where the last transaction left the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Boundary {
    /// It ended with the reply to the final dot: the next message starts with MAIL.
    Clean,
    /// It ended elsewhere (refused, abandoned), or none ran: the next message on this
    /// connection starts with RSET.
    Unclean,
}

impl<'a> Client<'a> {
    /// A session delivering `job`; call right after the TCP connection is up.
    pub fn deliver(cfg: ClientConfig, job: DeliveryJob<'a>, now: Instant) -> Self {
        Self::new(cfg, Mode::Deliver(job), now)
    }

    /// A session that only checks the next hop answers: greeting, EHLO, QUIT.
    pub fn probe(cfg: ClientConfig, now: Instant) -> Self {
        Self::new(cfg, Mode::Probe, now)
    }

    fn new(cfg: ClientConfig, mode: Mode<'a>, now: Instant) -> Self {
        let mut results = heapless::Vec::new();
        if let Mode::Deliver(job) = &mode {
            // Cannot overflow: both vectors have RECIPIENTS_MAX capacity.
            let _ = results.resize(job.recipients.len(), None);
        }
        Self {
            cfg,
            mode,
            state: State::Greeting,
            reader: ReplyReader::default(),
            ext: Extensions::default(),
            ext_partial: Extensions::default(),
            tls: Tls::Plain,
            out: heapless::Vec::new(),
            actions: heapless::Deque::new(),
            results,
            outcome: None,
            deadline: Some(now.saturating_add(GREETING_TIMEOUT)),
            now,
            close_given: false,
            after: After::Quit,
            boundary: Boundary::Unclean,
        }
    }
    /// Bytes to write to the socket now.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The host wrote the first `n` bytes of [`Client::output`].
    pub fn written(&mut self, n: usize, now: Instant) {
        self.now = now;
        let n = n.min(self.out.len());
        self.out.copy_within(n.., 0);
        self.out.truncate(self.out.len() - n);
        if let State::Transaction(_) = self.state {
            self.fill(now);
        }
    }

    /// The next thing the host must do.
    pub fn next_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    /// The result, once [`ClientAction::Done`] was given.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// What the next hop advertised (after EHLO).
    pub fn extensions(&self) -> Extensions {
        self.ext
    }

    /// When [`Client::tick`] must be called, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once nothing more will happen; the host closes the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Feed bytes read from the next hop; returns how many were consumed. Stops early when
    /// an action is waiting (after [`ClientAction::StartTls`] the host drops the rest).
    pub fn input(&mut self, bytes: &[u8], now: Instant) -> usize {
        self.now = now;
        let mut pos = 0;
        while pos < bytes.len() && self.actions.is_empty() {
            if matches!(self.state, State::Closed | State::Handshake) {
                return bytes.len();
            }
            let (n, line) = self.reader.feed(&bytes[pos..]);
            pos += n;
            let line = match line {
                Ok(Some(line)) => line,
                Ok(None) => continue,
                Err(e) => {
                    self.fail(FailReason::Protocol(e), None);
                    break;
                }
            };
            if matches!(self.state, State::Ehlo) && line.number > 1 {
                parse_extension(line.text, &mut self.ext_partial);
            }
            if line.last {
                let reply = ServerReply::new(line.code, line.line);
                self.reply(reply, now);
            }
        }
        pos
    }

    /// The next hop closed the connection.
    pub fn eof(&mut self) {
        match self.state {
            State::Closed => {}
            State::Quit | State::Idle => self.close(),
            _ => self.fail(FailReason::Closed, None),
        }
    }

    /// Check the deadline; on expiry the attempt fails temporarily and the session closes
    /// (RFC 5321 §4.5.3.2: the client gives up on an unresponsive server).
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        match self.state {
            State::Quit => self.close(),
            State::Closed => {}
            _ => self.fail(FailReason::Timeout, None),
        }
    }

    /// Send QUIT (§4.1.1.10) and wait briefly for 221.
    fn quit(&mut self) {
        self.push_out(format_args!("QUIT\r\n"));
        self.state = State::Quit;
        self.deadline = Some(self.now.saturating_add(QUIT_TIMEOUT));
    }

    /// A connection-level failure: record it (the first one is the outcome), then QUIT or
    /// close as the reason says ([`FailReason::stream_sane`]); whether it is permanent is
    /// the [`Failure`]'s to say.
    fn fail(&mut self, reason: FailReason, reply: Option<ServerReply>) {
        let quit = reason.stream_sane();
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::Failed(Failure { reason, reply }));
            self.action(ClientAction::Done);
        }
        if quit {
            self.quit();
        } else {
            self.close();
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.deadline = None;
        if !core::mem::replace(&mut self.close_given, true) {
            self.action(ClientAction::Close);
        }
    }

    fn action(&mut self, a: ClientAction) {
        // Cannot overflow: at most Done and one of StartTls/SendBody/Close are queued
        // before the input loop stops.
        let _ = self.actions.push_back(a);
    }

    fn send_helo(&mut self, verb: &str, now: Instant) {
        let name = self.cfg.helo_name.clone();
        self.push_out(format_args!("{verb} {name}\r\n"));
        self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
    }

    /// Append a command; commands outside the transaction are short and the buffer is
    /// drained before replies arrive, so they always fit.
    fn push_out(&mut self, text: fmt::Arguments<'_>) {
        let mut line: heapless::String<{ DOMAIN_MAX + 16 }> = heapless::String::new();
        let _ = line.write_fmt(text);
        let _ = self.out.extend_from_slice(line.as_bytes());
    }
}

#[cfg(test)]
mod tests;
