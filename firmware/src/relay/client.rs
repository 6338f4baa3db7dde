//! The sans-IO SMTP client session (RFC 5321): delivers one message to one next hop, or
//! probes it.
//!
//! # Contract
//!
//! The mirror of [`crate::smtp::Session`]: the host connects, then loops
//!
//! 1. write [`Client::output`] to the socket and call [`Client::written`] with the count;
//! 2. handle every [`Client::next_action`] ([`Action::StartTls`], [`Action::SendBody`],
//!    [`Action::Done`], [`Action::Close`]);
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
//! - **Outcome** ([`Client::outcome`], final once [`Action::Done`] was given): one
//!   [`RcptResult`] per recipient in order (2xx delivered, 4xx deferred, 5xx bounced, with
//!   the server's reply text), or a connection-level [`Failure`] that applies to every
//!   recipient. The outcome is known before QUIT is answered, so the host can record it at
//!   once.
//! - **Content** streams through [`Client::body`] in host-sized chunks, dot-stuffed; a bare
//!   CR or LF stops the session without the final dot ([`super::dotstuff`] says why).
//!   Envelope addresses with control characters or brackets are never written either
//!   ([`FailReason::BadAddress`]): nothing from the spool can inject a command.
//! - **Timeouts** are the RFC 5321 §4.5.3.2 minimums, as named constants below.
//! - **Bounded.** One reply line, one output buffer of [`OUTPUT_MAX`] octets, at most
//!   [`RECIPIENTS_MAX`] recipients; nothing the server sends can make it grow or panic.

use core::fmt::{self, Write as _};

use embassy_time::{Duration, Instant};

use super::dotstuff::{BareNewline, DotStuffer};
use super::reply::{ReplyError, ReplyReader, ServerReply};
use crate::smtp::limits::DOMAIN_MAX;
use crate::spool::message::RECIPIENTS_MAX;

/// Output buffer: commands (and content) waiting for the host to write them.
pub const OUTPUT_MAX: usize = 4096;
/// Octets kept free during the content for `CRLF . CRLF`.
const TERMINATOR_MAX: usize = 5;
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

    fn required(self) -> bool {
        self != Self::Opportunistic
    }
}

/// What the session asks of the host, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write all output, drop every byte read but not consumed, do the TLS handshake, then
    /// call [`Client::tls_established`] or [`Client::tls_failed`].
    StartTls,
    /// The next hop said 354: stream the content with [`Client::body`], then call
    /// [`Client::body_end`].
    SendBody,
    /// [`Client::outcome`] is final: record it now (the QUIT exchange may still follow).
    Done,
    /// Write all output, then close the connection.
    Close,
}

/// What happened to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptResult {
    /// The next hop took responsibility (RCPT and end of data both 2xx).
    Delivered,
    /// 4xx: keep it queued and retry.
    Deferred(ServerReply),
    /// 5xx: bounce it.
    Bounced(ServerReply),
}

/// Why a whole attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The 220 greeting was refused.
    Greeting,
    /// EHLO and HELO were both refused.
    Helo,
    /// TLS is required but the next hop does not offer STARTTLS.
    TlsNotOffered,
    /// TLS is required but STARTTLS was refused.
    TlsRefused,
    /// The TLS handshake failed.
    TlsHandshake,
    /// `require-verify`, but the certificate did not verify.
    TlsUnverified,
    /// MAIL FROM was refused.
    Mail,
    /// The message needs SMTPUTF8 (RFC 6531 §3.2) and the next hop lacks it.
    Smtputf8,
    /// DATA was refused.
    Data,
    /// ETRN was refused (458 unable, 459 not allowed, 5xx unknown).
    Etrn,
    /// The next hop did not answer in time.
    Timeout,
    /// The next hop's output was not valid SMTP.
    Protocol(ReplyError),
    /// A reply arrived when none was expected.
    Unexpected,
    /// The next hop closed the connection.
    Closed,
    /// No connection could be made to the next hop (refused, unreachable, no address).
    Connect,
    /// The content holds a bare CR or LF; it was not sent.
    BareNewline,
    /// An envelope address holds a control character or bracket; it was not sent.
    BadAddress,
    /// No next hop for the domain (DNS, null MX, or only ourselves).
    NoRoute(super::nexthop::MxError),
    /// No next hop is configured for the domain (the mail is held).
    Unrouted,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Greeting => f.write_str("greeting refused"),
            Self::Helo => f.write_str("EHLO and HELO refused"),
            Self::TlsNotOffered => f.write_str("TLS required but STARTTLS not offered"),
            Self::TlsRefused => f.write_str("TLS required but STARTTLS refused"),
            Self::TlsHandshake => f.write_str("TLS handshake failed"),
            Self::TlsUnverified => f.write_str("TLS certificate not verified"),
            Self::Mail => f.write_str("sender refused"),
            Self::Smtputf8 => f.write_str("message needs SMTPUTF8, next hop lacks it"),
            Self::Data => f.write_str("DATA refused"),
            Self::Etrn => f.write_str("ETRN refused"),
            Self::Timeout => f.write_str("timeout waiting for the next hop"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Unexpected => f.write_str("protocol error: unexpected reply"),
            Self::Closed => f.write_str("connection closed by the next hop"),
            Self::Connect => f.write_str("could not connect to the next hop"),
            Self::BareNewline => BareNewline.fmt(f),
            Self::BadAddress => f.write_str("unusable envelope address; not sent"),
            Self::NoRoute(e) => write!(f, "no route: {e}"),
            Self::Unrouted => f.write_str("no next hop configured (relay.next-hops, relay.routes)"),
        }
    }
}

/// A connection-level failure: applies to every recipient of the attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 5xx from the next hop (or a message that can never be sent): bounce. Otherwise retry.
    pub permanent: bool,
    /// What failed.
    pub reason: FailReason,
    /// The reply that caused it, if one did.
    pub reply: Option<ServerReply>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reply {
            Some(r) => write!(f, "{}: {r}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

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

/// The final result of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
// A failure carries one reply (about 230 bytes) and is produced once per attempt; boxing it
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The transaction ran; one result per recipient, in the order given. Boxed: about
    /// 20 KiB with every reply kept, allocated once per attempt.
    Transaction(Box<heapless::Vec<RcptResult, RECIPIENTS_MAX>>),
    /// The attempt failed as a whole.
    Failed(Failure),
    /// A probe got a 250 to EHLO (or HELO).
    Probed(Extensions),
    /// ETRN was accepted (250 started, 251 nothing waiting, 252/253 RFC 1985 §5).
    Etrn(ServerReply),
}

/// The message to deliver: borrowed from the spool record for the session's lifetime.
#[derive(Clone, Debug)]
pub struct Job<'a> {
    /// Reverse-path without brackets; empty for the null sender.
    pub sender: &'a str,
    /// Forward-paths without brackets, at most [`RECIPIENTS_MAX`].
    pub recipients: heapless::Vec<&'a str, RECIPIENTS_MAX>,
    /// Content size in octets (for `SIZE=`).
    pub size: u64,
}

/// A kept connection's state between two messages ([`Client::kept`]).
#[derive(Clone, Debug)]
pub struct Kept {
    cfg: ClientConfig,
    ext: Extensions,
    tls: bool,
    tls_verified: bool,
    clean: bool,
}

/// Settings that do not change per attempt.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Our name for EHLO/HELO (`smtp.hostname`).
    pub helo_name: heapless::String<DOMAIN_MAX>,
    /// STARTTLS policy of this next hop.
    pub tls: TlsPolicy,
}

/// A command whose reply is outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Mail,
    Rcpt(usize),
    Data,
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

#[derive(Debug, Default)]
struct Transaction {
    mail_sent: bool,
    next_rcpt: usize,
    data_sent: bool,
    /// MAIL was refused: send nothing more, drain the outstanding replies, QUIT.
    abandoned: bool,
    expected: heapless::Deque<Expect, { RECIPIENTS_MAX + 2 }>,
}

// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
enum Mode<'a> {
    Deliver(Job<'a>),
    Probe,
    /// RFC 1985: ask the next hop to flush its queue for this node.
    Etrn(&'a str),
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
    tls: bool,
    tls_verified: bool,
    out: heapless::Vec<u8, OUTPUT_MAX>,
    actions: heapless::Deque<Action, 4>,
    results: heapless::Vec<Option<RcptResult>, RECIPIENTS_MAX>,
    outcome: Option<Outcome>,
    deadline: Option<Instant>,
    /// The latest `now` the host passed in.
    now: Instant,
    /// [`Action::Close`] was given.
    close_given: bool,
    /// After the outcome, stay connected ([`State::Idle`]) instead of QUIT.
    keep_open: bool,
    /// The last transaction ended with the reply to the final dot, so the server is at a
    /// clean transaction boundary (otherwise the next message starts with RSET).
    clean: bool,
}

impl<'a> Client<'a> {
    /// A session delivering `job`; call right after the TCP connection is up.
    pub fn deliver(cfg: ClientConfig, job: Job<'a>, now: Instant) -> Self {
        Self::new(cfg, Mode::Deliver(job), now)
    }

    /// A session that only checks the next hop answers: greeting, EHLO, QUIT.
    pub fn probe(cfg: ClientConfig, now: Instant) -> Self {
        Self::new(cfg, Mode::Probe, now)
    }

    /// A session that asks the next hop (the silo) to deliver what it holds for `node`
    /// (RFC 1985): greeting, EHLO, STARTTLS as for mail, `ETRN node`, QUIT.
    pub fn etrn(cfg: ClientConfig, node: &'a str, now: Instant) -> Self {
        Self::new(cfg, Mode::Etrn(node), now)
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
            tls: false,
            tls_verified: false,
            out: heapless::Vec::new(),
            actions: heapless::Deque::new(),
            results,
            outcome: None,
            deadline: Some(now.saturating_add(GREETING_TIMEOUT)),
            now,
            close_given: false,
            keep_open: false,
            clean: false,
        }
    }

    /// Keep the connection for another message after this one's outcome (Postfix's
    /// connection reuse): the session goes idle instead of sending QUIT; continue with
    /// [`Client::resume`] or end with [`Client::quit_idle`].
    pub fn keep_open(mut self) -> Self {
        self.keep_open = true;
        self
    }

    /// True when the message's outcome is known and the connection waits for the next
    /// message ([`Client::keep_open`]).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// What the next message on this connection needs to know, once this session is idle
    /// ([`Client::keep_open`]); `None` otherwise.
    pub fn kept(&self) -> Option<Kept> {
        (self.is_idle() && matches!(self.mode, Mode::Deliver(_))).then(|| Kept {
            cfg: self.cfg.clone(),
            ext: self.ext,
            tls: self.tls,
            tls_verified: self.tls_verified,
            clean: self.clean,
        })
    }

    /// The next message on a kept connection: same extensions and TLS state, RSET first
    /// unless the last transaction ended cleanly. It keeps the connection open too.
    pub fn resume(kept: &Kept, job: Job<'a>, now: Instant) -> Self {
        let mut c = Self::new(kept.cfg.clone(), Mode::Deliver(job), now);
        c.ext = kept.ext;
        c.tls = kept.tls;
        c.tls_verified = kept.tls_verified;
        c.keep_open = true;
        if kept.clean {
            c.begin(now);
        } else {
            c.push_out(format_args!("RSET\r\n"));
            c.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
            c.state = State::Rset;
        }
        c
    }

    /// End a kept connection politely: a session that sends QUIT and closes.
    pub fn quit_kept(kept: &Kept, now: Instant) -> Self {
        let mut c = Self::new(kept.cfg.clone(), Mode::Probe, now);
        c.now = now;
        c.quit();
        c
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
    pub fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The result, once [`Action::Done`] was given.
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
    /// an action is waiting (after [`Action::StartTls`] the host drops the rest).
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
                    self.fail(false, FailReason::Protocol(e), None, false);
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
            _ => self.fail(false, FailReason::Closed, None, false),
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
            _ => self.fail(false, FailReason::Timeout, None, false),
        }
    }

    /// The handshake after [`Action::StartTls`] succeeded; `verified` says whether the
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

    /// The handshake after [`Action::StartTls`] failed; the connection is unusable.
    pub fn tls_failed(&mut self) {
        if matches!(self.state, State::Handshake) {
            self.fail(false, FailReason::TlsHandshake, None, false);
        }
    }

    /// True when this session's content went over TLS with a verified certificate.
    pub fn tls_verified(&self) -> bool {
        self.tls && self.tls_verified
    }

    /// Content for the DATA phase, after [`Action::SendBody`]: encodes as much of `chunk`
    /// as fits into the output buffer and returns how much was consumed. The host writes
    /// [`Client::output`] and feeds the rest. A bare CR or LF ends the session
    /// ([`FailReason::BareNewline`], permanent) and consumes everything.
    pub fn body(&mut self, chunk: &[u8], now: Instant) -> usize {
        self.now = now;
        let State::Body(stuffer) = &mut self.state else {
            return chunk.len();
        };
        let start = self.out.len();
        // Cannot fail: the length never exceeds OUTPUT_MAX.
        let _ = self.out.resize(OUTPUT_MAX, 0);
        // Room for the terminator stays free, so body_end() always fits.
        let end = OUTPUT_MAX.saturating_sub(TERMINATOR_MAX).max(start);
        let result = stuffer.encode(chunk, &mut self.out[start..end]);
        match result {
            Ok((consumed, written)) => {
                self.out.truncate(start + written);
                self.deadline = Some(now.saturating_add(DATA_BLOCK_TIMEOUT));
                consumed
            }
            Err(BareNewline) => {
                self.out.truncate(start);
                self.fail(true, FailReason::BareNewline, None, false);
                chunk.len()
            }
        }
    }

    /// All content was given to [`Client::body`]: send the final dot.
    pub fn body_end(&mut self, now: Instant) {
        self.now = now;
        let State::Body(stuffer) = &self.state else {
            return;
        };
        match stuffer.finish() {
            Ok(end) => {
                // Cannot overflow: body() leaves TERMINATOR_MAX octets free.
                let _ = self.out.extend_from_slice(end);
                self.state = State::DataEnd;
                self.deadline = Some(now.saturating_add(DATA_END_TIMEOUT));
            }
            Err(BareNewline) => self.fail(true, FailReason::BareNewline, None, false),
        }
    }

    /// One complete reply.
    fn reply(&mut self, reply: ServerReply, now: Instant) {
        let state = core::mem::replace(&mut self.state, State::Closed);
        let code = reply.code();
        match state {
            State::Greeting if code == 220 => {
                self.send_helo("EHLO", now);
                self.state = State::Ehlo;
            }
            State::Greeting => self.fail(code >= 500, FailReason::Greeting, Some(reply), true),
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
            State::Ehlo if reply.is_permanent() && !self.tls => {
                self.ext_partial = Extensions::default();
                self.send_helo("HELO", now);
                self.state = State::Helo;
            }
            State::Ehlo | State::Helo => {
                self.fail(code >= 500, FailReason::Helo, Some(reply), true);
            }
            State::StartTls if code == 220 => {
                self.state = State::Handshake;
                self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
                self.reader.reset();
                self.action(Action::StartTls);
            }
            State::StartTls if self.cfg.tls.required() => {
                self.fail(false, FailReason::TlsRefused, Some(reply), true);
            }
            State::StartTls => self.begin(now),
            State::Rset if reply.is_positive() => self.begin(now),
            State::Rset => self.fail(false, FailReason::Unexpected, Some(reply), true),
            State::Etrn if (250..=253).contains(&code) => {
                self.outcome = Some(Outcome::Etrn(reply));
                self.action(Action::Done);
                self.quit();
            }
            State::Etrn => self.fail(code >= 500, FailReason::Etrn, Some(reply), true),
            State::Transaction(t) => self.transaction_reply(t, reply, now),
            State::DataEnd => {
                for r in self.results.iter_mut() {
                    if r.as_ref() == Some(&RcptResult::Delivered) {
                        *r = Some(verdict(&reply));
                    }
                }
                self.clean = true;
                self.finish_transaction();
            }
            // Anything else is a reply to nothing: the stream can no longer be trusted.
            State::Body(_) | State::Handshake | State::Closed | State::Idle => {
                self.fail(false, FailReason::Unexpected, Some(reply), false);
            }
            State::Quit => self.close(),
        }
    }

    fn after_helo(&mut self, now: Instant) {
        if let Mode::Probe = self.mode {
            self.outcome = Some(Outcome::Probed(self.ext));
            self.action(Action::Done);
            self.quit();
            return;
        }
        if !self.tls && self.ext.starttls {
            self.push_out(format_args!("STARTTLS\r\n"));
            self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
            self.state = State::StartTls;
        } else if !self.tls && self.cfg.tls.required() {
            self.fail(false, FailReason::TlsNotOffered, None, true);
        } else {
            self.begin(now);
        }
    }

    /// Start the mail transaction (§3.3).
    fn begin(&mut self, now: Instant) {
        if let Mode::Etrn(node) = self.mode {
            self.push_out(format_args!("ETRN {node}\r\n"));
            self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
            self.state = State::Etrn;
            return;
        }
        if let Mode::Deliver(job) = &self.mode {
            let unsafe_path = |a: &str| a.chars().any(|c| c.is_control() || c == '<' || c == '>');
            if unsafe_path(job.sender) || job.recipients.iter().any(|r| unsafe_path(r)) {
                // Never on the wire: a CR or LF here would inject commands. The spool only
                // holds addresses the server session parsed, so this is damage.
                self.fail(true, FailReason::BadAddress, None, true);
                return;
            }
            if needs_smtputf8(job) && !self.ext.smtputf8 {
                // RFC 6531 §3.2: such a message cannot be delivered to this server.
                self.fail(true, FailReason::Smtputf8, None, true);
                return;
            }
        }
        self.state = State::Transaction(Transaction::default());
        self.fill(now);
    }

    /// Queue every command that may go out now: one at a time without PIPELINING, as many
    /// as fit with it (RFC 2920 §3.1: DATA last in the group).
    fn fill(&mut self, now: Instant) {
        let State::Transaction(t) = &mut self.state else {
            return;
        };
        let Mode::Deliver(job) = &self.mode else {
            return;
        };
        let was_idle = t.expected.is_empty();
        while !t.abandoned && (self.ext.pipelining || t.expected.is_empty()) {
            let mut line: heapless::String<1100> = heapless::String::new();
            let expect = if !t.mail_sent {
                let _ = write!(line, "MAIL FROM:<{}>", job.sender);
                if self.ext.size.is_some() {
                    let _ = write!(line, " SIZE={}", job.size);
                }
                if self.ext.smtputf8 && needs_smtputf8(job) {
                    let _ = write!(line, " SMTPUTF8");
                }
                Expect::Mail
            } else if t.next_rcpt < job.recipients.len() {
                let rcpt = job.recipients[t.next_rcpt];
                let _ = write!(line, "RCPT TO:<{rcpt}>");
                Expect::Rcpt(t.next_rcpt)
            } else if !t.data_sent {
                if !self.ext.pipelining && !any_accepted(&self.results) {
                    break;
                }
                let _ = line.push_str("DATA");
                Expect::Data
            } else {
                break;
            };
            if line.push_str("\r\n").is_err() || OUTPUT_MAX - self.out.len() < line.len() {
                break;
            }
            let _ = self.out.extend_from_slice(line.as_bytes());
            let _ = t.expected.push_back(expect);
            match expect {
                Expect::Mail => t.mail_sent = true,
                Expect::Rcpt(_) => t.next_rcpt += 1,
                Expect::Data => t.data_sent = true,
            }
        }
        if was_idle {
            if let Some(first) = t.expected.front() {
                self.deadline = Some(now.saturating_add(timeout_for(*first)));
            }
        }
        // Without PIPELINING and no recipient accepted, nothing more will be sent.
        let nothing_to_send = t.expected.is_empty()
            && !t.abandoned
            && !t.data_sent
            && t.mail_sent
            && t.next_rcpt >= job.recipients.len();
        if nothing_to_send {
            self.finish_transaction();
        }
    }

    fn transaction_reply(&mut self, mut t: Transaction, reply: ServerReply, now: Instant) {
        let Some(expect) = t.expected.pop_front() else {
            self.fail(false, FailReason::Unexpected, Some(reply), false);
            return;
        };
        match expect {
            _ if t.abandoned => {}
            Expect::Mail if reply.is_positive() => {}
            Expect::Mail => {
                // The whole message fails; drain the pipelined replies, then QUIT.
                t.abandoned = true;
                self.outcome = Some(Outcome::Failed(Failure {
                    permanent: reply.is_permanent(),
                    reason: FailReason::Mail,
                    reply: Some(reply),
                }));
                self.action(Action::Done);
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
                    self.action(Action::SendBody);
                } else {
                    // RFC 2920 §3.1 says a server must not do this; sending even an empty
                    // message would be wrong, so the connection is dropped.
                    self.finish_transaction();
                    self.actions.clear();
                    self.action(Action::Done);
                    self.close();
                }
                return;
            }
            Expect::Data if reply.is_positive() => {
                // Only 354 may answer DATA (§4.1.1.4); anything else leaves us unsure
                // whether the server now reads content.
                self.fail(false, FailReason::Unexpected, Some(reply), false);
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
        let done = t.abandoned && t.expected.is_empty();
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
    fn finish_transaction(&mut self) {
        let mut results = Box::new(heapless::Vec::new());
        for r in &self.results {
            let r = r
                .clone()
                .unwrap_or_else(|| RcptResult::Deferred(ServerReply::new(0, "no reply to RCPT")));
            let _ = results.push(r);
        }
        self.outcome = Some(Outcome::Transaction(results));
        self.action(Action::Done);
        self.end_message();
    }

    /// The message's outcome is given: wait for the next one, or QUIT.
    fn end_message(&mut self) {
        if self.keep_open {
            self.state = State::Idle;
            self.deadline = None;
        } else {
            self.quit();
        }
    }

    /// Send QUIT (§4.1.1.10) and wait briefly for 221.
    fn quit(&mut self) {
        self.push_out(format_args!("QUIT\r\n"));
        self.state = State::Quit;
        self.deadline = Some(self.now.saturating_add(QUIT_TIMEOUT));
    }

    /// A connection-level failure: record it, then QUIT (when the stream is still sane) or
    /// close.
    fn fail(
        &mut self,
        permanent: bool,
        reason: FailReason,
        reply: Option<ServerReply>,
        quit: bool,
    ) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::Failed(Failure {
                permanent,
                reason,
                reply,
            }));
            self.action(Action::Done);
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
            self.action(Action::Close);
        }
    }

    fn action(&mut self, a: Action) {
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

/// 2xx → delivered (so far), 4xx → deferred, 5xx → bounced.
fn verdict(reply: &ServerReply) -> RcptResult {
    if reply.is_positive() {
        RcptResult::Delivered
    } else if reply.is_permanent() {
        RcptResult::Bounced(reply.clone())
    } else {
        RcptResult::Deferred(reply.clone())
    }
}

fn timeout_for(e: Expect) -> Duration {
    match e {
        Expect::Mail => MAIL_TIMEOUT,
        Expect::Rcpt(_) => RCPT_TIMEOUT,
        Expect::Data => DATA_INIT_TIMEOUT,
    }
}

fn needs_smtputf8(job: &Job<'_>) -> bool {
    !job.sender.is_ascii() || job.recipients.iter().any(|r| !r.is_ascii())
}

/// One EHLO keyword line (RFC 5321 §4.1.1.1 `ehlo-line`).
fn parse_extension(text: &str, ext: &mut Extensions) {
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

/// True when at least one RCPT was accepted so far.
fn any_accepted(results: &[Option<RcptResult>]) -> bool {
    results
        .iter()
        .any(|r| matches!(r, Some(RcptResult::Delivered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays the host: writes what the client outputs (in `chunk`-byte reads of the
    /// server's bytes), streams `body` on SendBody, records actions.
    struct Host<'a> {
        c: Client<'a>,
        now: Instant,
        wire: Vec<u8>,
        actions: Vec<Action>,
        body: &'a [u8],
        chunk: usize,
        tls_verified: Option<bool>,
        writes: usize,
    }

    macro_rules! server {
        ($h:expr, $($bytes:expr),+ $(,)?) => { $( $h.server(AsRef::<[u8]>::as_ref(&$bytes)); )+ };
    }

    macro_rules! expect_sent {
        ($h:expr, $text:expr) => {
            assert_eq!($h.sent(), $text)
        };
    }

    fn cfg(tls: TlsPolicy) -> ClientConfig {
        ClientConfig {
            helo_name: heapless::String::try_from("relay.example.net").unwrap(),
            tls,
        }
    }

    fn job<'a>(recipients: &[&'a str]) -> Job<'a> {
        Job {
            sender: "s@sender.example",
            recipients: recipients.iter().copied().collect(),
            size: 42,
        }
    }

    impl<'a> Host<'a> {
        fn deliver(tls: TlsPolicy, job: Job<'a>, body: &'a [u8]) -> Self {
            let now = Instant::from_secs(1000);
            Self::with(Client::deliver(cfg(tls), job, now), body)
        }

        fn with(c: Client<'a>, body: &'a [u8]) -> Self {
            Self {
                c,
                now: Instant::from_secs(1000),
                wire: Vec::new(),
                actions: Vec::new(),
                body,
                chunk: usize::MAX,
                tls_verified: Some(true),
                writes: 0,
            }
        }

        fn server(&mut self, bytes: &[u8]) {
            let mut rest = bytes;
            self.pump();
            // Bounded: each round consumes input or the session is waiting on the host,
            // which pump() resolves.
            for _ in 0..10_000 {
                if rest.is_empty() || self.c.is_closed() {
                    break;
                }
                let take = rest.len().min(self.chunk);
                let n = self.c.input(&rest[..take], self.now);
                rest = &rest[n..];
                if self.pump() {
                    rest = &[]; // StartTls: drop unconsumed plaintext.
                }
            }
        }

        /// Drain output and handle actions; true after StartTls.
        fn pump(&mut self) -> bool {
            let mut starttls = false;
            loop {
                self.drain();
                let Some(a) = self.c.next_action() else {
                    return starttls;
                };
                self.actions.push(a);
                match a {
                    Action::StartTls => {
                        starttls = true;
                        match self.tls_verified {
                            Some(v) => self.c.tls_established(v, self.now),
                            None => self.c.tls_failed(),
                        }
                    }
                    Action::SendBody => {
                        for piece in self.body.chunks(7) {
                            let mut piece = piece;
                            while !piece.is_empty() && !self.c.is_closed() {
                                let n = self.c.body(piece, self.now);
                                piece = &piece[n..];
                                self.drain();
                            }
                        }
                        self.c.body_end(self.now);
                    }
                    Action::Done | Action::Close => {}
                }
            }
        }

        /// Write until the client has nothing more (it refills as the socket takes bytes).
        fn drain(&mut self) {
            for _ in 0..1000 {
                let out = self.c.output().to_vec();
                if out.is_empty() {
                    return;
                }
                self.writes += 1;
                self.wire.extend_from_slice(&out);
                self.c.written(out.len(), self.now);
            }
        }

        fn sent(&mut self) -> String {
            self.pump();
            String::from_utf8(core::mem::take(&mut self.wire)).unwrap()
        }

        fn results(&self) -> Vec<RcptResult> {
            match self.c.outcome() {
                Some(Outcome::Transaction(r)) => r.to_vec(),
                other => panic!("want a transaction, got {other:?}"),
            }
        }

        fn failure(&self) -> Failure {
            match self.c.outcome() {
                Some(Outcome::Failed(f)) => f.clone(),
                other => panic!("want a failure, got {other:?}"),
            }
        }
    }

    const EHLO_PIPELINING: &str =
        "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

    #[test]
    fn pipelined_delivery_with_per_recipient_results() {
        let body = b"Subject: hi\r\n\r\n.dot line\r\nend";
        let mut h = Host::deliver(
            TlsPolicy::Opportunistic,
            job(&["a@example.com", "b@example.com", "c@example.com"]),
            body,
        );
        expect_sent!(h, "");
        server!(h, "220 mx.example.com ESMTP\r\n");
        expect_sent!(h, "EHLO relay.example.net\r\n");
        server!(h, EHLO_PIPELINING);
        // RFC 2920: the whole envelope and DATA in one write.
        expect_sent!(
            h,
            "MAIL FROM:<s@sender.example> SIZE=42\r\nRCPT TO:<a@example.com>\r\n\
             RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
        );
        server!(
            h,
            "250 2.1.0 Ok\r\n",
            "250 2.1.5 Ok\r\n",
            "550 5.1.1 <b@example.com>: user unknown\r\n",
            "451 4.2.0 greylisted\r\n",
            "354 go ahead\r\n"
        );
        expect_sent!(h, "Subject: hi\r\n\r\n..dot line\r\nend\r\n.\r\n");
        assert_eq!(
            h.c.outcome(),
            None,
            "not final before the end-of-data reply"
        );
        server!(h, "250 2.0.0 Ok: queued as X\r\n");
        assert_eq!(
            h.results(),
            vec![
                RcptResult::Delivered,
                RcptResult::Bounced(ServerReply::new(
                    550,
                    "550 5.1.1 <b@example.com>: user unknown"
                )),
                RcptResult::Deferred(ServerReply::new(451, "451 4.2.0 greylisted")),
            ]
        );
        expect_sent!(h, "QUIT\r\n");
        assert_eq!(h.actions, vec![Action::SendBody, Action::Done]);
        server!(h, "221 2.0.0 Bye\r\n");
        assert!(h.c.is_closed());
        assert_eq!(h.actions.last(), Some(&Action::Close));
    }

    #[test]
    fn a_kept_connection_carries_the_next_message_with_rset_only_when_needed() {
        let body = b"Subject: one\r\n\r\nx";
        let now = Instant::from_secs(1000);
        let first = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now);
        let mut h = Host::with(first.keep_open(), body);
        server!(h, "220 mx.example.com ESMTP\r\n", EHLO_PIPELINING);
        h.sent();
        server!(h, "250 ok\r\n", "250 ok\r\n", "354 go\r\n");
        h.sent();
        server!(h, "250 queued\r\n");
        assert_eq!(h.results(), vec![RcptResult::Delivered]);
        assert!(
            h.c.is_idle(),
            "no QUIT: the connection waits for the next message"
        );
        expect_sent!(h, "");
        assert!(!h.actions.contains(&Action::Close));

        // The second message goes straight to MAIL (the last one ended cleanly).
        let second = Client::resume(&h.c.kept().unwrap(), job(&["b@example.com"]), now);
        let mut h = Host::with(second, body);
        expect_sent!(
            h,
            "MAIL FROM:<s@sender.example> SIZE=42\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        );
        // Its only recipient is refused: the transaction is left open on the server...
        server!(
            h,
            "250 ok\r\n",
            "550 5.1.1 unknown\r\n",
            "554 no valid recipients\r\n"
        );
        assert!(matches!(h.results()[0], RcptResult::Bounced(_)));
        assert!(h.c.is_idle());
        // ...so the third message starts with RSET.
        let third = Client::resume(&h.c.kept().unwrap(), job(&["c@example.com"]), now);
        let mut h = Host::with(third, body);
        expect_sent!(h, "RSET\r\n");
        server!(h, "250 reset\r\n");
        assert!(h.sent().starts_with("MAIL FROM:<s@sender.example>"));
        server!(h, "250 ok\r\n", "250 ok\r\n", "354 go\r\n");
        h.sent();
        server!(h, "250 queued\r\n");
        assert_eq!(h.results(), vec![RcptResult::Delivered]);
        let kept = h.c.kept().unwrap();
        // Done with the connection: QUIT.
        let mut h = Host::with(Client::quit_kept(&kept, now), body);
        expect_sent!(h, "QUIT\r\n");
        server!(h, "221 bye\r\n");
        assert!(h.c.is_closed());
        assert!(h.c.outcome().is_none());

        // Only an idle session is kept; a refused RSET fails the message temporarily.
        let plain = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now);
        assert!(plain.kept().is_none());
        let mut idle = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now)
            .keep_open();
        idle.state = State::Idle;
        let mut h = Host::with(
            Client::resume(&idle.kept().unwrap(), job(&["e@example.com"]), now),
            body,
        );
        expect_sent!(h, "RSET\r\n");
        server!(h, "421 shutting down\r\n");
        assert!(!h.failure().permanent);
        // The next hop dropping an idle connection ends it without an error.
        let mut idle2 =
            Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now)
                .keep_open();
        idle2.state = State::Idle;
        idle2.eof();
        assert!(idle2.is_closed());
        assert!(idle2.outcome().is_none());
    }

    #[test]
    fn without_pipelining_one_command_at_a_time_and_no_data_when_all_refused() {
        let mut h = Host::deliver(
            TlsPolicy::Opportunistic,
            job(&["a@example.com", "b@example.com"]),
            b"x\r\n",
        );
        server!(h, "220 mx\r\n", "250-mx\r\n250 SIZE\r\n");
        // SIZE without a limit still takes SIZE= (RFC 1870 §4).
        expect_sent!(
            h,
            "EHLO relay.example.net\r\nMAIL FROM:<s@sender.example> SIZE=42\r\n"
        );
        let mut h = Host::deliver(
            TlsPolicy::Opportunistic,
            job(&["a@example.com", "b@example.com"]),
            b"x\r\n",
        );
        server!(h, "220 mx\r\n", "250 mx\r\n");
        expect_sent!(
            h,
            "EHLO relay.example.net\r\nMAIL FROM:<s@sender.example>\r\n"
        );
        server!(h, "250 ok\r\n");
        expect_sent!(h, "RCPT TO:<a@example.com>\r\n");
        server!(h, "550 5.1.1 no\r\n");
        expect_sent!(h, "RCPT TO:<b@example.com>\r\n");
        server!(h, "553 5.1.3 no\r\n");
        expect_sent!(h, "QUIT\r\n");
        let r = h.results();
        assert!(
            r.iter().all(|r| matches!(r, RcptResult::Bounced(_))),
            "{r:?}"
        );
    }

    #[test]
    fn helo_fallback_when_ehlo_is_refused() {
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(h, "220 old.example\r\n", "502 5.5.1 what\r\n");
        expect_sent!(h, "EHLO relay.example.net\r\nHELO relay.example.net\r\n");
        server!(h, "250 old.example\r\n");
        expect_sent!(h, "MAIL FROM:<s@sender.example>\r\n");
        server!(h, "250 ok\r\n", "250 ok\r\n");
        expect_sent!(h, "RCPT TO:<a@example.com>\r\nDATA\r\n");
        server!(h, "354 go\r\n");
        expect_sent!(h, ".\r\n");
        server!(h, "250 ok\r\n");
        assert_eq!(h.results(), vec![RcptResult::Delivered]);
    }

    #[test]
    fn opportunistic_starttls_restarts_with_ehlo_and_drops_plaintext() {
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(
            h,
            "220 mx\r\n",
            "250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n"
        );
        expect_sent!(h, "EHLO relay.example.net\r\nSTARTTLS\r\n");
        // A "250" injected after the 220 in the same read must not count (CVE-2011-0411).
        server!(h, "220 ready\r\n250 injected\r\n");
        assert_eq!(h.actions, vec![Action::StartTls]);
        expect_sent!(h, "EHLO relay.example.net\r\n");
        server!(h, "250-mx\r\n250 PIPELINING\r\n");
        expect_sent!(
            h,
            "MAIL FROM:<s@sender.example>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
        );
        assert!(h.c.tls_verified());

        // Refused STARTTLS: opportunistic goes on in plaintext.
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(
            h,
            "220 mx\r\n",
            "250-mx\r\n250 STARTTLS\r\n",
            "454 4.7.0 no TLS now\r\n"
        );
        expect_sent!(
            h,
            "EHLO relay.example.net\r\nSTARTTLS\r\nMAIL FROM:<s@sender.example>\r\n"
        );
    }

    #[test]
    fn required_tls_fails_temporarily_when_missing_refused_broken_or_unverified() {
        let cases: &[(TlsPolicy, &str, Option<bool>, FailReason)] = &[
            (
                TlsPolicy::Require,
                "250 mx\r\n",
                Some(true),
                FailReason::TlsNotOffered,
            ),
            (
                TlsPolicy::Require,
                "250-mx\r\n250 STARTTLS\r\n454 4.7.0 no\r\n",
                Some(true),
                FailReason::TlsRefused,
            ),
            (
                TlsPolicy::Require,
                "250-mx\r\n250 STARTTLS\r\n220 go\r\n",
                None,
                FailReason::TlsHandshake,
            ),
            (
                TlsPolicy::RequireVerify,
                "250-mx\r\n250 STARTTLS\r\n220 go\r\n",
                Some(false),
                FailReason::TlsUnverified,
            ),
        ];
        for (policy, ehlo, verified, reason) in cases {
            let mut h = Host::deliver(*policy, job(&["a@example.com"]), b"");
            h.tls_verified = *verified;
            server!(h, "220 mx\r\n", ehlo);
            let f = h.failure();
            assert_eq!(
                (f.reason, f.permanent),
                (*reason, false),
                "{policy:?} {ehlo:?}"
            );
            assert!(!h.sent().contains("MAIL FROM"), "no mail in plaintext");
        }
        // require with a certificate that did not verify is fine.
        let mut h = Host::deliver(TlsPolicy::Require, job(&["a@example.com"]), b"");
        h.tls_verified = Some(false);
        server!(
            h,
            "220 mx\r\n",
            "250-mx\r\n250 STARTTLS\r\n",
            "220 go\r\n",
            "250 mx\r\n"
        );
        assert!(h.sent().ends_with("MAIL FROM:<s@sender.example>\r\n"));
    }

    #[test]
    fn refused_sender_fails_the_message_after_draining_pipelined_replies() {
        let mut h = Host::deliver(
            TlsPolicy::Opportunistic,
            job(&["a@example.com", "b@example.com"]),
            b"x",
        );
        server!(h, "220 mx\r\n", EHLO_PIPELINING);
        h.sent();
        server!(h, "550 5.7.1 sender rejected\r\n", "503 5.5.1 no mail\r\n");
        let f = h.failure();
        assert_eq!((f.reason, f.permanent), (FailReason::Mail, true));
        assert_eq!(f.reply.unwrap().enhanced(), Some((5, 7, 1)));
        expect_sent!(h, "");
        server!(
            h,
            "503 5.5.1 no mail\r\n",
            "554 5.5.1 no valid recipients\r\n"
        );
        expect_sent!(h, "QUIT\r\n");
        assert!(!h.actions.contains(&Action::SendBody));
    }

    #[test]
    fn greeting_refusals_are_classified_by_code() {
        for (greeting, permanent) in [
            ("554 5.3.2 go away\r\n", true),
            ("421 4.3.2 busy\r\n", false),
        ] {
            let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
            server!(h, greeting);
            let f = h.failure();
            assert_eq!((f.reason, f.permanent), (FailReason::Greeting, permanent));
            expect_sent!(h, "QUIT\r\n");
        }
    }

    #[test]
    fn timeouts_follow_rfc_5321_and_fail_temporarily() {
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"x\r\n");
        assert_eq!(h.c.deadline(), Some(h.now + GREETING_TIMEOUT));
        h.c.tick(h.now + GREETING_TIMEOUT - Duration::from_secs(1));
        assert_eq!(h.c.outcome(), None);
        server!(h, "220 mx\r\n", EHLO_PIPELINING);
        assert_eq!(h.c.deadline(), Some(h.now + MAIL_TIMEOUT));
        server!(h, "250 ok\r\n", "250 ok\r\n");
        assert_eq!(h.c.deadline(), Some(h.now + DATA_INIT_TIMEOUT));
        server!(h, "354 go\r\n");
        assert_eq!(h.c.deadline(), Some(h.now + DATA_END_TIMEOUT));
        h.c.tick(h.now + DATA_END_TIMEOUT);
        let f = h.failure();
        assert_eq!((f.reason, f.permanent), (FailReason::Timeout, false));
        assert!(h.c.is_closed());
    }

    #[test]
    fn bare_newline_in_the_content_is_never_sent() {
        let mut h = Host::deliver(
            TlsPolicy::Opportunistic,
            job(&["a@example.com"]),
            b"ok line\r\nsmuggle\n.\nMAIL FROM:<x@evil>\r\n",
        );
        server!(
            h,
            "220 mx\r\n",
            EHLO_PIPELINING,
            "250 ok\r\n250 ok\r\n354 go\r\n"
        );
        let wire = h.sent();
        assert!(
            !wire.contains("smuggle") && !wire.contains("\r\n.\r\n"),
            "{wire:?}"
        );
        let f = h.failure();
        assert_eq!((f.reason, f.permanent), (FailReason::BareNewline, true));
        assert!(h.c.is_closed());
    }

    #[test]
    fn malformed_or_unsolicited_replies_fail_temporarily() {
        for bad in ["25O ok\r\n", "250 ok\n", "250-a\r\n251 b\r\n"] {
            let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
            server!(h, "220 mx\r\n", bad);
            let f = h.failure();
            assert!(
                matches!(f.reason, FailReason::Protocol(_)) && !f.permanent,
                "{bad:?}"
            );
        }
        let mut h2 = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(
            h2,
            "220 mx\r\n",
            "250 mx\r\n",
            "250 ok\r\n250 ok\r\n250 extra\r\n"
        );
        assert_eq!(h2.failure().reason, FailReason::Unexpected, "250 to DATA");
        assert!(h2.c.is_closed());
        let mut h3 = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(h3, "220 mx\r\n");
        h3.c.eof();
        assert_eq!(h3.failure().reason, FailReason::Closed);
    }

    #[test]
    fn probe_says_ehlo_and_quits() {
        let now = Instant::from_secs(5);
        let mut h = Host::with(Client::probe(cfg(TlsPolicy::Opportunistic), now), b"");
        server!(h, "220 mx\r\n", EHLO_PIPELINING);
        expect_sent!(h, "EHLO relay.example.net\r\nQUIT\r\n");
        match h.c.outcome() {
            Some(Outcome::Probed(ext)) => {
                assert!(ext.pipelining && ext.eight_bit_mime && !ext.starttls);
                assert_eq!(ext.size, Some(10_240_000));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A script whose wire and outcome must not depend on how the replies are split.
    fn scripted(chunk: usize) -> (String, Vec<RcptResult>) {
        let body = b"A: b\r\n\r\n.\r\n..\r\nlast\r\n";
        let mut h = Host::deliver(
            TlsPolicy::Opportunistic,
            job(&["a@example.com", "b@example.com"]),
            body,
        );
        h.chunk = chunk;
        server!(
            h,
            "220 mx\r\n",
            EHLO_PIPELINING,
            "250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n354 go\r\n",
            "250 ok\r\n221 bye\r\n"
        );
        (h.sent(), h.results())
    }

    #[test]
    fn replies_split_byte_by_byte_behave_like_whole_reads() {
        let whole = scripted(usize::MAX);
        assert_eq!(scripted(1), whole);
        assert_eq!(scripted(5), whole);
        assert!(
            whole
                .0
                .contains("A: b\r\n\r\n..\r\n...\r\nlast\r\n.\r\nQUIT\r\n")
        );
    }

    #[test]
    fn a_hundred_long_recipients_are_pipelined_through_the_bounded_buffer() {
        let names: Vec<String> = (0..RECIPIENTS_MAX)
            .map(|i| format!("{}{i}@example.com", "u".repeat(200)))
            .collect();
        let rcpts: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&rcpts), b"x\r\n");
        server!(h, "220 mx\r\n", EHLO_PIPELINING);
        // More than one buffer-full, written as the socket takes it, before any reply.
        let wire = h.sent();
        assert!(
            h.writes > 1 && wire.len() > OUTPUT_MAX,
            "{} writes",
            h.writes
        );
        assert_eq!(wire.matches("RCPT TO:").count(), RECIPIENTS_MAX);
        assert!(wire.ends_with("DATA\r\n"));
        server!(
            h,
            "250 ok\r\n".repeat(RECIPIENTS_MAX + 1),
            "354 go\r\n",
            "250 ok\r\n"
        );
        assert_eq!(h.results(), vec![RcptResult::Delivered; RECIPIENTS_MAX]);
    }

    #[test]
    fn smtputf8_is_requested_when_needed_and_required_of_the_next_hop() {
        let mut j = job(&["jürgen@example.com"]);
        j.size = 1;
        let mut h = Host::deliver(TlsPolicy::Opportunistic, j.clone(), b"");
        server!(h, "220 mx\r\n", "250-mx\r\n250 SMTPUTF8\r\n");
        assert!(
            h.sent()
                .ends_with("MAIL FROM:<s@sender.example> SMTPUTF8\r\n")
        );
        let mut h = Host::deliver(TlsPolicy::Opportunistic, j, b"");
        server!(h, "220 mx\r\n", "250 mx\r\n");
        let f = h.failure();
        assert_eq!((f.reason, f.permanent), (FailReason::Smtputf8, true));
    }

    #[test]
    fn a_bounce_goes_out_from_the_null_sender() {
        let mut j = job(&["s@sender.example"]);
        j.sender = "";
        let mut h = Host::deliver(TlsPolicy::Opportunistic, j, b"");
        server!(h, "220 mx\r\n", "250 mx\r\n");
        assert!(h.sent().ends_with("MAIL FROM:<>\r\n"));
    }

    /// Random server output in every state: never a panic, always an end within bounds.
    #[test]
    fn random_server_bytes_never_panic_and_always_end() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: &[&[u8]] = &[
            b"220 mx\r\n",
            EHLO_PIPELINING.as_bytes(),
            b"250-STARTTLS\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
            b"550 5.1.1 no\r\n",
            b"421 bye\r\n",
            b"\r\n",
            b"2",
            b"\n",
            b"-",
            b"\xff\x00",
        ];
        for _ in 0..2000 {
            let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b".x\r\n");
            h.tls_verified = if rand() % 2 == 0 { Some(true) } else { None };
            h.chunk = 1 + (rand() % 7) as usize;
            for _ in 0..(rand() % 12) {
                let p = pieces[(rand() % pieces.len() as u64) as usize];
                server!(h, p);
            }
            h.c.eof();
            h.c.tick(h.now + DATA_END_TIMEOUT);
            assert!(h.c.is_closed() || h.c.deadline().is_some());
            assert!(h.c.outcome().is_some(), "an outcome once the peer is gone");
        }
    }

    #[test]
    fn etrn_asks_the_silo_to_flush() {
        let now = Instant::from_secs(5);
        let etrn = |reply: &'static str| {
            let c = Client::etrn(cfg(TlsPolicy::Opportunistic), "example.com", now);
            let mut h = Host::with(c, b"");
            server!(h, "220 silo\r\n", "250-silo\r\n250 ETRN\r\n");
            expect_sent!(h, "EHLO relay.example.net\r\nETRN example.com\r\n");
            server!(h, reply);
            expect_sent!(h, "QUIT\r\n");
            h.c.outcome().cloned()
        };
        assert_eq!(
            etrn("250 OK, queuing for node example.com started\r\n"),
            Some(Outcome::Etrn(ServerReply::new(
                250,
                "250 OK, queuing for node example.com started"
            )))
        );
        assert!(matches!(
            etrn("251 OK, no messages waiting\r\n"),
            Some(Outcome::Etrn(_))
        ));
        match etrn("459 Node example.com not allowed\r\n") {
            Some(Outcome::Failed(f)) => {
                assert_eq!((f.reason, f.permanent), (FailReason::Etrn, false))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_client_session_has_a_fixed_size() {
        // Boxed by the daemon: one per delivery in flight (`max-per-hop` per next hop).
        let size = core::mem::size_of::<Client<'_>>();
        assert!(size < 40 * 1024, "{size} bytes");
    }

    #[test]
    fn the_end_of_data_fits_even_when_the_host_never_drained() {
        // Driven by hand: the test host would stream the content itself.
        let now = Instant::from_secs(1);
        let mut c = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now);
        let wire = format!("220 mx\r\n{EHLO_PIPELINING}250 ok\r\n250 ok\r\n354 go\r\n");
        let mut rest = wire.as_bytes();
        while !rest.is_empty() {
            let n = c.input(rest, now);
            rest = &rest[n..];
            let w = c.output().len();
            c.written(w, now);
            while c.next_action().is_some() {}
        }
        let line = [b'x'; 100];
        let mut fed = 0;
        while fed < 2 * OUTPUT_MAX {
            let n = c.body(&line, now);
            if n == 0 {
                break;
            }
            fed += n;
        }
        assert!(fed < OUTPUT_MAX, "the buffer filled up");
        c.body_end(now);
        assert!(c.output().ends_with(b"x\r\n.\r\n"));
        assert_eq!(c.output().len(), OUTPUT_MAX);
    }

    #[test]
    fn addresses_that_could_inject_commands_never_go_out() {
        for (sender, rcpt) in [
            ("s@x.example\r\nRSET", "a@example.com"),
            ("s@x.example", "a@example.com>\r\nRCPT TO:<b@evil.example"),
        ] {
            let mut j = job(&[rcpt]);
            j.sender = sender;
            let mut h = Host::deliver(TlsPolicy::Opportunistic, j, b"");
            server!(h, "220 mx\r\n", EHLO_PIPELINING);
            let f = h.failure();
            assert_eq!((f.reason, f.permanent), (FailReason::BadAddress, true));
            expect_sent!(h, "EHLO relay.example.net\r\nQUIT\r\n");
        }
    }
}
