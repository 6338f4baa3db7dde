//! The sans-IO SMTP server session (RFC 5321), one per connection.
//!
//! States follow RFC 5321 §4.1.4 (command order) and §3.3 (mail transactions); every
//! transition takes the old [`State`] by value and returns the next one. Replies cite their
//! RFC section. The session owns no socket, timer or storage: the host feeds bytes and `now`
//! and acts on the [`Event`]s, see the [module docs](super) for the driving loop.

use core::fmt;
use std::net::IpAddr;

use embassy_time::{Duration, Instant};

use super::address::{AddressError, Mailbox, ReversePath};
use super::command::{Command, CommandError, MailParams};
use super::config::SmtpConfig;
use super::data::{DataEnd, DataReceiver, EVENTS_RESERVE};
use super::event::{AbortReason, Event, Events};
use super::limits::{DOMAIN_MAX, RECIPIENTS_MAX};
use super::line::{LineReceiver, LineStatus};
use super::received::{Protocol, ReceivedHeader, received_header};
use super::reply::Reply;
use crate::policy::{Policy, QuotaError, Refusal};

/// Everything a session needs that does not change per connection.
#[derive(Clone, Debug)]
pub struct SessionConfig<P> {
    /// Our name in the greeting, EHLO and Received header.
    pub hostname: heapless::String<DOMAIN_MAX>,
    /// Largest message in octets (advertised with SIZE, RFC 1870).
    pub max_message_size: u64,
    /// Offer STARTTLS (the host has a certificate).
    pub starttls: bool,
    /// Recipients per message, at most [`RECIPIENTS_MAX`].
    pub max_recipients: usize,
    /// Rejected commands before 421 and disconnect.
    pub max_bad_commands: u32,
    /// Time without input before 421.
    pub idle_timeout: Duration,
    /// Time a session may last before 421.
    pub session_timeout: Duration,
    /// Asked at every RCPT.
    pub policy: P,
}

/// An `[smtp]` section that cannot drive a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionConfigError {
    /// `hostname` is not a host name.
    Hostname,
    /// `max-recipients` is 0 or above [`RECIPIENTS_MAX`].
    MaxRecipients,
}

impl fmt::Display for SessionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hostname => f.write_str("smtp.hostname is not a host name"),
            Self::MaxRecipients => {
                write!(
                    f,
                    "smtp.max-recipients must be between 1 and {RECIPIENTS_MAX}"
                )
            }
        }
    }
}

impl std::error::Error for SessionConfigError {}

impl<P> SessionConfig<P> {
    /// Check `[smtp]` once at start-up; `policy` is cloned into every session.
    pub fn new(smtp: &SmtpConfig, policy: P) -> Result<Self, SessionConfigError> {
        let hostname = match super::address::Domain::parse(&smtp.hostname, false) {
            Ok(super::address::Domain::Name(_)) => {
                heapless::String::try_from(smtp.hostname.as_str())
                    .map_err(|_| SessionConfigError::Hostname)?
            }
            _ => return Err(SessionConfigError::Hostname),
        };
        let max_recipients = usize::try_from(smtp.max_recipients).unwrap_or(usize::MAX);
        if !(1..=RECIPIENTS_MAX).contains(&max_recipients) {
            return Err(SessionConfigError::MaxRecipients);
        }
        Ok(Self {
            hostname,
            max_message_size: smtp.max_message_size,
            starttls: smtp.starttls,
            max_recipients,
            max_bad_commands: smtp.max_bad_commands.max(1),
            idle_timeout: Duration::from_secs(smtp.idle_timeout_secs),
            session_timeout: Duration::from_secs(smtp.session_timeout_secs),
            policy,
        })
    }
}

/// The connection, as the host accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Client address (goes into the Received header).
    pub ip: IpAddr,
    /// Client port.
    pub port: u16,
    /// True for implicit TLS (port 465); STARTTLS then is not offered.
    pub tls: bool,
    /// Wall-clock seconds at accept ([`Clock::unix_seconds`](mailbag_hal::Clock)); the
    /// Received date is this plus the monotonic time since.
    pub unix_seconds: u64,
}

/// One message's envelope (RFC 5321 §2.3.1), valid from [`Event::MessageBegin`] until
/// [`Session::stored`].
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    /// MAIL FROM.
    pub from: Option<ReversePath>,
    /// MAIL FROM parameters (SIZE, BODY, SMTPUTF8).
    pub params: MailParams,
    /// Accepted RCPT TOs, in order.
    pub recipients: heapless::Vec<Mailbox, RECIPIENTS_MAX>,
    /// The trace header to write before the content.
    pub received: ReceivedHeader,
}

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
        };
        (session, greeting)
    }
}

impl<P: Policy> Session<P> {
    /// Consume input, pushing events into `out`; returns how many bytes were consumed.
    ///
    /// Stops early (returning less than `bytes.len()`) when `out` is nearly full, after an
    /// event that needs the host first (`StartTls`, `MessageBegin`, `MessageEnd`, `Etrn`,
    /// `Close`) and while waiting for [`Session::stored`]. The host keeps the unconsumed
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
                State::Storing(_) => break,
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
            if !rx.too_big() {
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
            State::Storing(_) => Some(session_end),
            _ => Some(session_end.min(self.last_input.saturating_add(self.cfg.idle_timeout))),
        }
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

    /// The content ended; returns nothing, the caller stops after it.
    fn data_end(&mut self, end: DataEnd, out: &mut Events<'_>) {
        let State::Data(helo, rx) = core::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        match end {
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
                if !rx.too_big() {
                    push(out, Event::MessageAborted(AbortReason::BareNewline));
                }
                self.bare_newline(out);
            }
        }
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

    /// A rejected command: send `r`, and after too many, 421 and close (RFC 5321 §4.2.2
    /// lets a server end a session that only produces errors).
    fn bad(&mut self, r: Reply, out: &mut Events<'_>) -> bool {
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

    /// Run the buffered command line; true when input must stop after it.
    fn line_ready(&mut self, now: Instant, out: &mut Events<'_>) -> bool {
        // Taken out so the parsed command may borrow the line while the session changes.
        let line = core::mem::take(&mut self.line);
        let stop = match Command::parse(line.line()) {
            Ok(cmd) => self.command(cmd, now, out),
            Err(e) => {
                let r = command_error_reply(e);
                self.bad(r, out)
            }
        };
        self.line = line;
        self.line.clear();
        stop
    }

    fn command(&mut self, cmd: Command<'_>, now: Instant, out: &mut Events<'_>) -> bool {
        let state = core::mem::replace(&mut self.state, State::Closed);
        let helo = match &state {
            State::Ready(h) | State::Mail(h) | State::Rcpt(h) => Some(h.clone()),
            _ => None,
        };
        let ok = |text: &'static str| Event::Reply(reply(250, "2.0.0", text));
        // Commands valid in any command state (RFC 5321 §4.1.4).
        match cmd {
            Command::Helo(name) | Command::Ehlo(name) => {
                let ehlo = matches!(cmd, Command::Ehlo(_));
                // Name bounded by the parser to DOMAIN_MAX; an overflow cannot happen.
                let name = heapless::String::try_from(name).unwrap_or_default();
                let r = if ehlo {
                    self.ehlo_reply()
                } else {
                    Reply::new(250, "", format_args!("{}", self.cfg.hostname))
                };
                // §4.1.4: EHLO/HELO in a transaction resets it.
                self.state = State::Ready(Helo { name, ehlo });
                push(out, Event::Reply(r));
                return false;
            }
            Command::Noop => {
                self.state = state;
                push(out, ok("Ok"));
                return false;
            }
            Command::Help => {
                self.state = state;
                push(out, Event::Reply(reply(214, "2.0.0", "See RFC 5321")));
                return false;
            }
            Command::Vrfy => {
                // §3.5.3: 252 when we will not verify but will accept.
                self.state = state;
                let text = "Cannot VRFY user, but will accept message and attempt delivery";
                push(out, Event::Reply(reply(252, "2.5.2", text)));
                return false;
            }
            Command::Quit => {
                // §4.1.1.10: 221, then close.
                push(out, Event::Reply(reply(221, "2.0.0", "Bye")));
                return self.close(out);
            }
            Command::Rset => {
                // §4.1.1.5: abort the transaction, keep the HELO.
                self.state = helo.map_or(State::Connected, State::Ready);
                push(out, ok("Ok"));
                return false;
            }
            _ => {}
        }
        let Some(helo) = helo else {
            // §4.1.4: MAIL, RCPT, DATA, ETRN need EHLO/HELO first.
            self.state = state;
            let r = match cmd {
                Command::StartTls => return self.start_tls(None, out),
                _ => reply(503, "5.5.1", "Error: send HELO/EHLO first"),
            };
            return self.bad(r, out);
        };
        match (state, cmd) {
            (State::Ready(_), Command::Mail(from, params)) => self.mail(helo, from, params, out),
            (State::Mail(_) | State::Rcpt(_), Command::Mail(..)) => {
                self.state = State::Mail(helo);
                self.bad(reply(503, "5.5.1", "Error: nested MAIL command"), out)
            }
            (State::Mail(_) | State::Rcpt(_), Command::Rcpt(path)) => self.rcpt(helo, path, out),
            (state @ State::Ready(_), Command::Rcpt(_) | Command::Data) => {
                self.state = state;
                self.bad(reply(503, "5.5.1", "Error: need MAIL command"), out)
            }
            (State::Mail(_), Command::Data) => {
                self.state = State::Mail(helo);
                self.bad(reply(503, "5.5.1", "Error: need RCPT command"), out)
            }
            (State::Rcpt(_), Command::Data) => self.data(helo, now, out),
            (State::Ready(_), Command::StartTls) => self.start_tls(Some(helo), out),
            (State::Ready(_), Command::Etrn(node)) => {
                self.state = State::Ready(helo);
                // Bounded by the parser to ETRN_ARG_MAX.
                push(
                    out,
                    Event::Etrn(heapless::String::try_from(node).unwrap_or_default()),
                );
                true
            }
            (state, _) => {
                // STARTTLS or ETRN inside a transaction.
                self.state = state;
                self.bad(
                    reply(503, "5.5.1", "Error: MAIL transaction in progress"),
                    out,
                )
            }
        }
    }

    fn ehlo_reply(&self) -> Reply {
        // RFC 1869 §4.3: first line names us, then one extension per line.
        let size = format!("SIZE {}", self.cfg.max_message_size);
        let mut lines: heapless::Vec<&str, 8> = heapless::Vec::new();
        let offer_tls = self.cfg.starttls && !self.tls;
        for line in [
            self.cfg.hostname.as_str(),
            "PIPELINING",
            size.as_str(),
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "STARTTLS",
            "ETRN",
        ] {
            if line != "STARTTLS" || offer_tls {
                let _ = lines.push(line);
            }
        }
        Reply::multiline(250, &lines)
    }

    fn start_tls(&mut self, helo: Option<Helo>, out: &mut Events<'_>) -> bool {
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

    fn mail(
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

    fn rcpt(&mut self, helo: Helo, path: &str, out: &mut Events<'_>) -> bool {
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
        let refused = match self.cfg.policy.recipient(&mailbox, size) {
            Ok(()) => None,
            Err(Refusal::RelayDenied) => Some(reply(550, "5.7.1", "Relay access denied")),
            Err(Refusal::UnknownUser) => Some(reply(550, "5.1.1", "User unknown")),
            Err(Refusal::Capacity(QuotaError::SpoolFull)) => {
                Some(reply(452, "4.3.1", "Insufficient system storage"))
            }
            Err(Refusal::Capacity(QuotaError::QuotaExceeded)) => {
                Some(reply(452, "4.2.2", "Mailbox full"))
            }
        };
        match refused {
            // 5xx refusals count as errors, so a harvesting client is soon disconnected.
            Some(r) if r.is_permanent() => self.bad(r, out),
            Some(r) => {
                push(out, Event::Reply(r));
                false
            }
            None => {
                // Capacity checked above, so the push cannot fail.
                let _ = self.envelope.recipients.push(mailbox);
                self.state = State::Rcpt(helo);
                push(out, Event::Reply(reply(250, "2.1.5", "Ok")));
                false
            }
        }
    }

    fn data(&mut self, helo: Helo, now: Instant, out: &mut Events<'_>) -> bool {
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
}

/// RFC 3463 §3.2: X.1.7 for a bad sender, X.1.3 for a bad recipient address.
fn command_error_reply(e: CommandError) -> Reply {
    match e {
        // §4.2.4: 500 unrecognized, 502 not implemented.
        CommandError::Unknown => reply(500, "5.5.1", "Error: command unrecognized"),
        CommandError::NotImplemented => reply(502, "5.5.1", "Error: command not implemented"),
        CommandError::Syntax(why) => Reply::new(501, "5.5.4", format_args!("Syntax error: {why}")),
        CommandError::UnknownParam => reply(555, "5.5.4", "Error: parameter not recognized"),
        CommandError::RcptAddress(e) if e.is_relay_attempt() => {
            reply(550, "5.7.1", "Relay access denied")
        }
        // RFC 6531 §3.6: non-ASCII address without SMTPUTF8.
        CommandError::Address(AddressError::NonAscii)
        | CommandError::RcptAddress(AddressError::NonAscii) => {
            reply(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8")
        }
        CommandError::RcptAddress(e) => Reply::new(
            501,
            "5.1.3",
            format_args!("Bad recipient address syntax: {e}"),
        ),
        CommandError::Address(e) => {
            Reply::new(501, "5.1.7", format_args!("Bad sender address syntax: {e}"))
        }
    }
}

fn reply(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply::new(code, enhanced, format_args!("{text}"))
}

fn too_big() -> Reply {
    reply(
        552,
        "5.3.4",
        "Message size exceeds fixed maximum message size",
    )
}

/// `input` keeps [`EVENTS_RESERVE`] slots free before each step and a step pushes at most
/// three events, so this cannot fail; ignoring the impossible error keeps panics out.
fn push<'a>(out: &mut Events<'a>, event: Event<'a>) {
    let _ = out.push(event);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::policy::{Capacity, Checker, PolicyConfig, Rules};
    use crate::smtp::limits;

    #[allow(unused_macros)]
    macro_rules! send {
        ($h:expr, $($bytes:expr),+ $(,)?) => { $( $h.send(AsRef::<[u8]>::as_ref(&$bytes)); )+ };
    }
    pub(crate) use send;

    macro_rules! expect_reply {
        ($h:expr, $code:expr) => {
            $h.expect_reply($code, "")
        };
        ($h:expr, $code:expr, $text:expr) => {
            $h.expect_reply($code, $text)
        };
    }

    macro_rules! expect_event {
        ($h:expr, $seen:expr) => {
            assert_eq!($h.next(), Some($seen))
        };
    }

    macro_rules! expect_nothing {
        ($h:expr) => {
            assert_eq!($h.next(), None)
        };
    }

    /// A capacity hook the test can fill up.
    #[derive(Clone, Default)]
    pub(crate) struct TestCapacity(Rc<Cell<Option<QuotaError>>>);

    impl Capacity for TestCapacity {
        fn space_for(&self, _domain: &str, _size: u64) -> Result<(), QuotaError> {
            self.0.get().map_or(Ok(()), Err)
        }
    }

    /// What the host saw, owned, with adjacent body pieces merged.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Seen {
        Reply(String),
        StartTls,
        Begin,
        Body(Vec<u8>),
        End,
        Aborted(AbortReason),
        Etrn(String),
        Close,
    }

    /// A host that behaves like the daemon edge will: keeps unconsumed bytes, drops them
    /// after StartTls, feeds at most `chunk` bytes per call.
    pub(crate) struct Host {
        pub(crate) session: Session<Checker<TestCapacity>>,
        pub(crate) capacity: TestCapacity,
        pending: Vec<u8>,
        pub(crate) log: VecDeque<Seen>,
        pub(crate) now: Instant,
        chunk: usize,
    }

    pub(crate) const T0: u64 = 1_795_554_000;

    pub(crate) fn smtp_config() -> SmtpConfig {
        SmtpConfig {
            hostname: "mx.example.net".into(),
            max_message_size: 1000,
            ..SmtpConfig::default()
        }
    }

    impl Host {
        pub(crate) fn new() -> Self {
            Self::with(smtp_config(), usize::MAX)
        }

        pub(crate) fn with(smtp: SmtpConfig, chunk: usize) -> Self {
            let policy = PolicyConfig {
                domains: vec!["example.com".into(), "list.example".into()],
                recipients: vec!["alice@list.example".into()],
                ..PolicyConfig::default()
            };
            let rules = Arc::new(Rules::from_config(&policy).unwrap());
            let capacity = TestCapacity::default();
            let cfg = SessionConfig::new(&smtp, Checker::new(rules, capacity.clone())).unwrap();
            let peer = PeerInfo {
                ip: "192.0.2.7".parse().unwrap(),
                port: 40000,
                tls: false,
                unix_seconds: T0,
            };
            let now = Instant::from_secs(100);
            let (session, greeting) = Session::new(&cfg, peer, now);
            let mut log = VecDeque::new();
            log.push_back(Seen::Reply(greeting.as_str().into()));
            Self {
                session,
                capacity,
                pending: Vec::new(),
                log,
                now,
                chunk,
            }
        }

        pub(crate) fn send(&mut self, bytes: &[u8]) {
            self.pending.extend_from_slice(bytes);
            self.pump();
        }

        fn pump(&mut self) {
            // Bounded: every round consumes at least one byte or stops.
            while !self.pending.is_empty() {
                let take = self.pending.len().min(self.chunk);
                let mut out = Events::new();
                let n = self
                    .session
                    .input(&self.pending[..take], self.now, &mut out);
                let mut starttls = false;
                for event in out {
                    starttls |= event == Event::StartTls;
                    record(&mut self.log, event);
                }
                self.pending.drain(..n);
                if starttls {
                    // CVE-2011-0411: plaintext read before the handshake is dropped.
                    self.pending.clear();
                }
                if n == 0 {
                    break;
                }
            }
        }

        pub(crate) fn stored(&mut self, result: Result<&str, StoreError>) {
            let r = self.session.stored(result, self.now);
            self.log.push_back(Seen::Reply(r.as_str().into()));
            self.pump();
        }

        pub(crate) fn tick(&mut self) {
            let mut out = Events::new();
            self.session.tick(self.now, &mut out);
            for event in out {
                record(&mut self.log, event);
            }
        }

        /// The Received header of the message in progress.
        pub(crate) fn received(&self) -> String {
            self.session
                .envelope()
                .expect("a message in progress")
                .received
                .to_string()
        }

        pub(crate) fn next(&mut self) -> Option<Seen> {
            self.log.pop_front()
        }

        pub(crate) fn expect_reply(&mut self, code: u16, text: &str) -> String {
            match self.next() {
                Some(Seen::Reply(r)) => {
                    assert!(
                        r.starts_with(&code.to_string()),
                        "want {code} {text:?}, got {r:?}"
                    );
                    assert!(r.contains(text), "want {code} {text:?}, got {r:?}");
                    r
                }
                other => panic!("want reply {code} {text:?}, got {other:?}"),
            }
        }

        /// Greeting, EHLO, MAIL and one RCPT, all answered.
        pub(crate) fn ready_for_data(&mut self) {
            self.expect_reply(220, "mx.example.net");
            send!(
                self,
                "EHLO client.example\r\n",
                "MAIL FROM:<s@sender.example>\r\n",
                "RCPT TO:<u@example.com>\r\n"
            );
            self.expect_reply(250, "PIPELINING");
            self.expect_reply(250, "2.1.0");
            self.expect_reply(250, "2.1.5");
        }
    }

    pub(crate) fn record(log: &mut VecDeque<Seen>, event: Event<'_>) {
        let seen = match event {
            Event::Reply(r) => Seen::Reply(r.as_str().into()),
            Event::StartTls => Seen::StartTls,
            Event::MessageBegin => Seen::Begin,
            Event::Body(b) => {
                if let Some(Seen::Body(prev)) = log.back_mut() {
                    prev.extend_from_slice(b);
                    return;
                }
                Seen::Body(b.to_vec())
            }
            Event::MessageEnd => Seen::End,
            Event::MessageAborted(r) => Seen::Aborted(r),
            Event::Etrn(n) => Seen::Etrn(n.as_str().into()),
            Event::Close => Seen::Close,
        };
        log.push_back(seen);
    }

    #[test]
    fn greeting_and_ehlo_advertise_every_extension() {
        let mut h = Host::new();
        expect_reply!(h, 220, "mx.example.net ESMTP");
        send!(h, "EHLO client.example\r\n");
        let ehlo = expect_reply!(h, 250);
        for ext in [
            "PIPELINING",
            "SIZE 1000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "STARTTLS",
            "ETRN",
        ] {
            assert!(
                ehlo.contains(&format!("250-{ext}\r\n"))
                    || ehlo.ends_with(&format!("250 {ext}\r\n")),
                "{ext} in {ehlo}"
            );
        }
        let mut h = Host::with(
            SmtpConfig {
                starttls: false,
                ..smtp_config()
            },
            usize::MAX,
        );
        send!(h, "EHLO client.example\r\n");
        h.next();
        assert!(!expect_reply!(h, 250).contains("STARTTLS"));
    }

    #[test]
    fn a_message_is_streamed_then_acknowledged_only_after_the_host_stored_it() {
        let mut h = Host::new();
        h.ready_for_data();
        send!(h, "DATA\r\n");
        expect_reply!(h, 354);
        expect_event!(h, Seen::Begin);
        let env = h.session.envelope().unwrap();
        assert_eq!(env.from.as_ref().unwrap().to_string(), "<s@sender.example>");
        assert_eq!(env.recipients[0].to_string(), "u@example.com");
        assert_eq!(
            env.received.as_str(),
            "Received: from client.example ([192.0.2.7])\r\n\tby mx.example.net (mailbag) with ESMTP;\r\n\tTue, 24 Nov 2026 21:00:00 +0000\r\n"
        );
        send!(h, "Subject: hi\r\n\r\n..dot\r\n", "end\r\n.\r\n");
        expect_event!(
            h,
            Seen::Body(b"Subject: hi\r\n\r\n.dot\r\nend\r\n".to_vec())
        );
        expect_event!(h, Seen::End);
        expect_nothing!(h);
        h.stored(Ok("4F2A"));
        expect_reply!(h, 250, "2.0.0 Ok: queued as 4F2A");
        assert!(h.session.envelope().is_none());
    }

    #[test]
    fn pipelined_commands_wait_while_the_host_stores() {
        let mut h = Host::new();
        h.ready_for_data();
        send!(
            h,
            "DATA\r\nhello\r\n.\r\nMAIL FROM:<t@sender.example>\r\nQUIT\r\n"
        );
        expect_reply!(h, 354);
        expect_event!(h, Seen::Begin);
        expect_event!(h, Seen::Body(b"hello\r\n".to_vec()));
        expect_event!(h, Seen::End);
        expect_nothing!(h);
        // Not consumed: the session would not even look at it.
        let mut out = Events::new();
        assert_eq!(h.session.input(b"NOOP\r\n", h.now, &mut out), 0);
        assert!(out.is_empty());
        h.stored(Err(StoreError::SpoolFull));
        expect_reply!(h, 452, "4.3.1 Insufficient system storage");
        expect_reply!(h, 250, "2.1.0");
        expect_reply!(h, 221);
        expect_event!(h, Seen::Close);
    }

    #[test]
    fn store_errors_map_to_retryable_replies() {
        for (err, want) in [
            (StoreError::QuotaExceeded, "452 4.2.2"),
            (StoreError::Io, "451 4.3.0"),
        ] {
            let mut h = Host::new();
            h.ready_for_data();
            send!(h, "DATA\r\nx\r\n.\r\n");
            h.log.clear();
            h.stored(Err(err));
            assert!(expect_reply!(h, 400 + want[1..3].parse::<u16>().unwrap()).starts_with(want));
        }
        let mut h = Host::new();
        assert_eq!(
            h.session.stored(Ok("x"), h.now).code(),
            451,
            "no message waiting"
        );
    }

    #[test]
    fn commands_out_of_order_get_503_and_the_rest_behave() {
        let mut h = Host::with(
            SmtpConfig {
                max_bad_commands: 100,
                ..smtp_config()
            },
            usize::MAX,
        );
        h.next();
        send!(h, "MAIL FROM:<a@b.example>\r\n");
        expect_reply!(h, 503, "5.5.1");
        send!(
            h,
            "HELO client.example\r\n",
            "RCPT TO:<u@example.com>\r\n",
            "DATA\r\n"
        );
        expect_reply!(h, 250, "mx.example.net");
        expect_reply!(h, 503, "need MAIL");
        expect_reply!(h, 503, "need MAIL");
        send!(h, "MAIL FROM:<>\r\n", "DATA\r\n", "MAIL FROM:<>\r\n");
        expect_reply!(h, 250, "2.1.0");
        expect_reply!(h, 503, "need RCPT");
        expect_reply!(h, 503, "nested MAIL");
        send!(
            h,
            "VRFY bob\r\n",
            "HELP\r\n",
            "NOOP\r\n",
            "RSET\r\n",
            "RCPT TO:<u@example.com>\r\n"
        );
        expect_reply!(h, 252, "2.5.2");
        expect_reply!(h, 214);
        expect_reply!(h, 250, "2.0.0");
        expect_reply!(h, 250, "2.0.0");
        expect_reply!(h, 503, "need MAIL");
        send!(
            h,
            "FOO\r\n",
            "EXPN staff\r\n",
            "DATA x\r\n",
            "RCPT\r\n",
            "MAIL FROM:<>\r\n",
            "RCPT TO:u@example.com\r\n"
        );
        expect_reply!(h, 500, "5.5.1");
        expect_reply!(h, 502, "5.5.1");
        expect_reply!(h, 501, "5.5.4");
        expect_reply!(h, 501, "5.5.4");
        expect_reply!(h, 250);
        expect_reply!(h, 501, "5.1.3");
        send!(h, "QUIT\r\n");
        expect_reply!(h, 221, "2.0.0");
        expect_event!(h, Seen::Close);
        send!(h, "NOOP\r\n");
        expect_nothing!(h);
    }

    #[test]
    fn a_long_pipelined_burst_is_answered_in_full_and_in_order() {
        let mut h = Host::new();
        h.next();
        // Far more replies than one Events buffer holds: input returns early and resumes.
        let burst: String = (0..200).map(|i| format!("NOOP {i}\r\n")).collect();
        let mut out = Events::new();
        let n = h.session.input(burst.as_bytes(), h.now, &mut out);
        assert!(n < burst.len(), "stops before the buffer overflows");
        assert!(out.len() <= limits::EVENTS_MAX);
        h.log.clear();
        send!(h, &burst.as_bytes()[n..]);
        assert_eq!(h.log.len() + out.len(), 200);
        assert!(
            h.log
                .iter()
                .all(|s| *s == Seen::Reply("250 2.0.0 Ok\r\n".into()))
        );
    }

    #[test]
    fn too_many_errors_disconnect() {
        let mut h = Host::new();
        h.next();
        for _ in 1..DEFAULT_BAD {
            send!(h, "BOGUS\r\n");
            expect_reply!(h, 500);
        }
        send!(h, "BOGUS\r\n", "NOOP\r\n");
        expect_reply!(h, 500);
        expect_reply!(h, 421, "4.7.0");
        expect_event!(h, Seen::Close);
        expect_nothing!(h);
    }

    const DEFAULT_BAD: u32 = super::super::limits::DEFAULT_MAX_BAD_COMMANDS;

    #[test]
    fn recipients_are_checked_by_the_policy() {
        let mut h = Host::new();
        h.ready_for_data();
        send!(
            h,
            "RCPT TO:<u@evil.example>\r\n",
            "RCPT TO:<@example.com:u@evil.example>\r\n",
            "RCPT TO:<u@evil.example@example.com>\r\n",
            "RCPT TO:<u%evil.example@example.com>\r\n",
            "RCPT TO:<bob@list.example>\r\n",
            "RCPT TO:<Alice+x@LIST.example>\r\n",
        );
        expect_reply!(h, 550, "5.7.1 Relay access denied");
        expect_reply!(h, 550, "5.7.1");
        expect_reply!(h, 550, "5.7.1");
        expect_reply!(h, 550, "5.7.1");
        expect_reply!(h, 550, "5.1.1 User unknown");
        expect_reply!(h, 250, "2.1.5");
        h.capacity.0.set(Some(QuotaError::SpoolFull));
        send!(h, "RCPT TO:<v@example.com>\r\n");
        expect_reply!(h, 452, "4.3.1");
        h.capacity.0.set(Some(QuotaError::QuotaExceeded));
        send!(h, "RCPT TO:<v@example.com>\r\n");
        expect_reply!(h, 452, "4.2.2");
    }

    #[test]
    fn recipient_count_is_bounded() {
        let mut h = Host::with(
            SmtpConfig {
                max_recipients: 2,
                ..smtp_config()
            },
            usize::MAX,
        );
        h.ready_for_data();
        send!(
            h,
            "RCPT TO:<v@example.com>\r\n",
            "RCPT TO:<w@example.com>\r\n",
            "DATA\r\n"
        );
        expect_reply!(h, 250);
        expect_reply!(h, 452, "4.5.3");
        expect_reply!(h, 354);
        assert_eq!(h.session.envelope().unwrap().recipients.len(), 2);
        let too_many = SmtpConfig {
            max_recipients: 101,
            ..smtp_config()
        };
        assert_eq!(
            SessionConfig::new(&too_many, ()).err(),
            Some(SessionConfigError::MaxRecipients)
        );
    }

    #[test]
    fn size_is_refused_at_mail_and_while_streaming() {
        let mut h = Host::new();
        h.next();
        send!(
            h,
            "EHLO c.example\r\n",
            "MAIL FROM:<a@b.example> SIZE=1001\r\n",
            "MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME\r\n"
        );
        h.next();
        expect_reply!(h, 552, "5.3.4");
        expect_reply!(h, 250);
        send!(h, "RCPT TO:<u@example.com>\r\n", "DATA\r\n");
        expect_reply!(h, 250);
        expect_reply!(h, 354);
        expect_event!(h, Seen::Begin);
        let line = "x".repeat(98) + "\r\n";
        for _ in 0..10 {
            send!(h, line.as_str());
        }
        expect_event!(h, Seen::Body(line.repeat(10).into_bytes()));
        send!(h, "one byte too many\r\n");
        expect_event!(h, Seen::Aborted(AbortReason::TooBig));
        send!(h, "more\r\n.\r\n", "MAIL FROM:<a@b.example>\r\n");
        expect_reply!(h, 552, "5.3.4");
        expect_reply!(h, 250, "2.1.0");
        expect_nothing!(h);
    }

    #[test]
    fn helo_sessions_take_no_parameters_and_say_smtp_in_received() {
        let mut h = Host::new();
        h.next();
        send!(
            h,
            "HELO c.example\r\n",
            "MAIL FROM:<a@b.example> BODY=8BITMIME\r\n",
            "MAIL FROM:<a@b.example>\r\n"
        );
        send!(h, "RCPT TO:<u@example.com>\r\n", "DATA\r\n");
        h.next();
        expect_reply!(h, 555, "5.5.4");
        expect_reply!(h, 250);
        expect_reply!(h, 250);
        expect_reply!(h, 354);
        assert!(h.received().contains("with SMTP;"));
    }

    #[test]
    fn smtputf8_allows_utf8_addresses() {
        let mut h = Host::new();
        h.next();
        send!(
            h,
            "EHLO c.example\r\n",
            "MAIL FROM:<ö@b.example>\r\n",
            "MAIL FROM:<ö@b.example> SMTPUTF8\r\n"
        );
        send!(h, "RCPT TO:<jürgen@example.com>\r\n", "DATA\r\n");
        h.next();
        expect_reply!(h, 553, "5.6.7");
        expect_reply!(h, 250);
        expect_reply!(h, 250);
        expect_reply!(h, 354);
        assert!(h.received().contains("with UTF8SMTP;"));
    }

    #[test]
    fn an_overlong_command_line_is_refused_and_the_next_works() {
        let mut h = Host::new();
        h.next();
        send!(h, "NOOP ".to_string() + &"x".repeat(2000) + "\r\nNOOP\r\n");
        expect_reply!(h, 500, "5.5.6");
        expect_reply!(h, 250);
    }

    #[test]
    fn bare_newline_in_a_command_closes() {
        let mut h = Host::new();
        h.next();
        send!(h, "NOOP\nNOOP\r\n");
        expect_reply!(h, 550, "5.5.2");
        expect_event!(h, Seen::Close);
        expect_nothing!(h);
    }

    /// SMTP smuggling at the session level: after each end-of-data look-alike the client
    /// pipelines a second, forged message. The first message must be aborted, the session
    /// closed, and nothing of the forged message accepted.
    #[test]
    fn no_smuggled_message_is_ever_accepted() {
        let ends: &[&str] = &[
            "\n.\n",
            "\n.\r\n",
            "\r\n.\n",
            "\r.\r",
            "\r.\r\n",
            "\r\n.\r",
            ".\n",
            "\r\n.\r\r\n",
        ];
        for end in ends {
            let mut h = Host::new();
            h.ready_for_data();
            let forged =
                "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nforged\r\n.\r\n";
            send!(h, format!("DATA\r\nreal{end}{forged}"));
            expect_reply!(h, 354);
            expect_event!(h, Seen::Begin);
            let Some(Seen::Body(body)) = h.next() else {
                panic!("no body for {end:?}")
            };
            // The piece before the bad ending may or may not be passed on; it is aborted.
            assert!(
                body.starts_with(b"real") && body.len() <= 6,
                "{end:?}: {body:?}"
            );
            expect_event!(h, Seen::Aborted(AbortReason::BareNewline));
            expect_reply!(h, 550, "5.5.2");
            expect_event!(h, Seen::Close);
            expect_nothing!(h);
            assert!(h.session.is_closed(), "{end:?}");
        }
    }

    #[test]
    fn starttls_drops_pipelined_plaintext() {
        let mut h = Host::new();
        h.next();
        send!(h, "EHLO c.example\r\n");
        h.next();
        // The injected commands ride in the same packet as STARTTLS (CVE-2011-0411).
        let wire = b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<u@example.com>\r\n";
        let mut out = Events::new();
        let n = h.session.input(wire, h.now, &mut out);
        assert_eq!(
            n,
            b"STARTTLS\r\n".len(),
            "nothing after STARTTLS is consumed"
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            Event::Reply(reply(220, "2.0.0", "Ready to start TLS"))
        );
        assert_eq!(out[1], Event::StartTls);
        // A host that wrongly feeds the rest anyway: the session discards it.
        let mut out = Events::new();
        assert_eq!(h.session.input(&wire[n..], h.now, &mut out), wire.len() - n);
        assert!(out.is_empty());
        h.session.tls_established(h.now);
        send!(
            h,
            "RCPT TO:<u@example.com>\r\n",
            "MAIL FROM:<a@b.example>\r\n",
            "EHLO c.example\r\n"
        );
        expect_reply!(h, 503, "HELO/EHLO first");
        expect_reply!(h, 503, "HELO/EHLO first");
        let ehlo = expect_reply!(h, 250);
        assert!(!ehlo.contains("STARTTLS"), "not offered twice");
        send!(
            h,
            "STARTTLS\r\n",
            "MAIL FROM:<a@b.example>\r\n",
            "RCPT TO:<u@example.com>\r\n",
            "DATA\r\n"
        );
        expect_reply!(h, 503, "TLS already active");
        expect_reply!(h, 250);
        expect_reply!(h, 250);
        expect_reply!(h, 354);
        assert!(h.received().contains("with ESMTPS;"));
    }

    #[test]
    fn starttls_is_refused_when_not_configured_or_in_a_transaction() {
        let mut h = Host::with(
            SmtpConfig {
                starttls: false,
                ..smtp_config()
            },
            usize::MAX,
        );
        h.next();
        send!(h, "STARTTLS\r\n");
        expect_reply!(h, 502);
        let mut h = Host::new();
        h.ready_for_data();
        send!(h, "STARTTLS\r\n");
        expect_reply!(h, 503, "transaction");
    }

    #[test]
    fn etrn_is_handed_to_the_host() {
        let mut h = Host::new();
        h.next();
        send!(
            h,
            "ETRN example.com\r\n",
            "EHLO c.example\r\n",
            "ETRN @example.com\r\n",
            "NOOP\r\n"
        );
        expect_reply!(h, 503);
        expect_reply!(h, 250);
        expect_event!(h, Seen::Etrn("@example.com".into()));
        expect_reply!(h, 250, "Ok");
        send!(h, "MAIL FROM:<>\r\n", "ETRN example.com\r\n");
        expect_reply!(h, 250);
        expect_reply!(h, 503, "transaction");
    }

    #[test]
    fn idle_and_session_timeouts_close_with_421() {
        let mut h = Host::new();
        h.next();
        let idle = Duration::from_secs(smtp_config().idle_timeout_secs);
        assert_eq!(h.session.deadline(), Some(h.now + idle));
        h.now += idle - Duration::from_secs(1);
        h.tick();
        expect_nothing!(h);
        h.now += Duration::from_secs(1);
        h.tick();
        expect_reply!(h, 421, "4.4.2");
        expect_event!(h, Seen::Close);
        assert_eq!(h.session.deadline(), None);

        // Mid-DATA, the partial message is aborted too.
        let mut h = Host::new();
        h.ready_for_data();
        send!(h, "DATA\r\npartial");
        h.log.clear();
        h.now += idle;
        h.tick();
        expect_event!(h, Seen::Aborted(AbortReason::Timeout));
        expect_reply!(h, 421);
        expect_event!(h, Seen::Close);
    }

    #[test]
    fn idle_time_does_not_run_while_the_host_stores_but_the_session_limit_does() {
        let mut h = Host::new();
        h.ready_for_data();
        send!(h, "DATA\r\nx\r\n.\r\n");
        h.log.clear();
        h.now += Duration::from_secs(smtp_config().idle_timeout_secs * 2);
        h.tick();
        expect_nothing!(h);
        h.now = Instant::from_secs(100 + smtp_config().session_timeout_secs);
        h.tick();
        expect_reply!(h, 421);
        expect_event!(h, Seen::Close);
    }

    /// A conversation with pipelining, two messages, dot-stuffing and errors.
    fn script() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(
            b"EHLO c.example\r\nMAIL FROM:<a@b.example> SIZE=500\r\nRCPT TO:<u@example.com>\r\n",
        );
        s.extend_from_slice(b"RCPT TO:<u@evil.example>\r\nDATA\r\n");
        for i in 0..40 {
            s.extend_from_slice(format!("..line {i}\r\n.stuffed\r\n\r\n...\r\n").as_bytes());
        }
        s.extend_from_slice(
            b".\r\nBOGUS\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<alice@list.example>\r\nDATA\r\n.\r\n",
        );
        s.extend_from_slice(b"ETRN example.com\r\nQUIT\r\nNOOP\r\n");
        s
    }

    fn run_script(chunk: usize) -> Vec<Seen> {
        let mut h = Host::with(smtp_config(), chunk);
        h.send(&script());
        let mut seen = Vec::new();
        // Bounded: two messages, so at most two store hand-offs.
        for _ in 0..3 {
            seen.extend(h.log.drain(..));
            if seen.last() == Some(&Seen::End) {
                h.stored(Ok("Q1"));
            }
        }
        seen
    }

    #[test]
    fn byte_at_a_time_behaves_exactly_like_whole_buffer() {
        let whole = run_script(usize::MAX);
        assert_eq!(
            whole.iter().filter(|s| **s == Seen::End).count(),
            2,
            "{whole:#?}"
        );
        assert_eq!(whole.last(), Some(&Seen::Close));
        assert!(whole.contains(&Seen::Etrn("example.com".into())));
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(run_script(chunk), whole, "chunk size {chunk}");
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::policy::{Checker, Unlimited};

    /// RAM per connection is fixed and known: 32 sessions must fit a 64 MiB router easily.
    #[test]
    fn a_session_and_its_event_buffer_have_a_fixed_small_size() {
        let session = core::mem::size_of::<Session<Checker<Unlimited>>>();
        let events = core::mem::size_of::<Events<'static>>();
        eprintln!("Session: {session} bytes, Events: {events} bytes");
        assert!(session < 48 * 1024, "Session is {session} bytes");
        assert!(events < 24 * 1024, "Events is {events} bytes");
    }
}
