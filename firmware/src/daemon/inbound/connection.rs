//! One SMTP connection: drives a sans-IO [`Session`] with bytes from the socket, streams
//! message content to the spool thread in [`BODY_CHUNK`]-byte pieces, and answers 250 only
//! after the spool reports the message durable.
//!
//! Memory per connection is fixed: one read buffer ([`READ_BUF`]), one body chunk, one
//! reply buffer, the session (one command line and one envelope).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mailbag_hal::Clock;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::daemon::delivery::{DeliveryHandle, Scope};
use crate::daemon::spool::{BODY_CHUNK, Chunk, MessageSlot, SpoolHandle};
#[cfg(feature = "silo")]
use crate::monitor::beacon::BeaconError;
use crate::monitor::metrics::{Counters, Refusal};
use crate::policy::{Checker, Protection};
use crate::smtp::{
    EtrnOutcome, Event, Events, PeerInfo, Reply, Session, SessionConfig, StoreError,
};
use crate::spool::{self, SpoolError};

/// Bytes read from the socket at a time (and the most a pipelining client can have
/// waiting while a message is being made durable).
pub const READ_BUF: usize = 16 * 1024;

/// The settings a new session starts with; replaced whole when the configuration is reloaded.
pub struct Inbound {
    /// Session settings and policy.
    pub session: SessionConfig<Checker<crate::daemon::spool::GaugeCapacity>>,
    /// Domains ETRN may flush (the configured ones, lower-case).
    pub domains: Vec<String>,
    /// The protection checks' settings (`[policy]`, `[scan]`).
    pub protection: Arc<Protection>,
}

impl Inbound {
    /// `session` with the accepted domains and the protection checks; every recipient is
    /// handed to the connection's checks.
    pub fn new(
        mut session: SessionConfig<Checker<crate::daemon::spool::GaugeCapacity>>,
        domains: &[String],
        protection: Arc<Protection>,
    ) -> Self {
        session.rcpt_checks = true;
        Self {
            session,
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            protection,
        }
    }
}

/// What every connection shares.
pub struct Ctx {
    /// Session settings, policy and ETRN domains in force (a session keeps the ones it
    /// started with).
    pub inbound: Arc<crate::daemon::live::Live<Inbound>>,
    /// The spool thread.
    pub spool: SpoolHandle,
    /// STARTTLS, when configured.
    pub tls: Option<TlsAcceptor>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Recent events for the admin page's Log.
    pub events: Arc<crate::daemon::events::EventLog>,
    /// Counters for `/metrics`, and (silo) the routers whose beacons arrive here.
    pub watch: Arc<crate::daemon::delivery::watch::Watch>,
    /// Flips to true when the daemon is stopping.
    pub shutdown: watch::Receiver<bool>,
    /// Delivery: woken for new mail, asked to flush by ETRN.
    pub delivery: DeliveryHandle,
    /// Protection state shared by every connection.
    pub guard: Arc<super::guard::Guard>,
}

type Io = crate::daemon::io::Io<TlsStream<TcpStream>>;

/// The message being received.
pub(super) struct Incoming {
    /// Not begun until its first chunk or its commit reaches the spool (one request fewer).
    slot: Option<MessageSlot>,
    pub(super) envelope: spool::Envelope,
    /// Body bytes handed to the spool so far.
    appended: u64,
    error: Option<StoreError>,
    /// The protection checks running on its content.
    pub(super) checks: super::checks::MessageChecks,
}

fn store_error(e: &SpoolError) -> StoreError {
    match e {
        SpoolError::TooManyMessages | SpoolError::Full => StoreError::SpoolFull,
        SpoolError::DomainQuota(_) => StoreError::QuotaExceeded,
        _ => StoreError::Io,
    }
}

fn to_spool_envelope(env: &crate::smtp::Envelope) -> Result<spool::Envelope, String> {
    let sender = env.from.as_ref().map(|f| f.to_string()).unwrap_or_default();
    let sender = sender
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    let rcpts: Vec<String> = env.recipients.iter().map(|r| r.to_string()).collect();
    spool::Envelope::new(&sender, rcpts.iter().map(String::as_str))
}

/// Serves one accepted connection until it closes.
pub async fn serve(stream: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    let settings = ctx.inbound.get();
    let trusted = settings.protection.trusted.contains(peer.ip());
    let mut conn = InboundConnection {
        ctx,
        io: Io::Plain(stream),
        chunk: None,
        incoming: None,
        wbuf: Vec::with_capacity(2048),
        peer,
        client: super::checks::Client {
            ip: peer.ip(),
            trusted,
            score_hits: Vec::new(),
        },
        settings,
    };
    if let Err(e) = conn.run(peer).await {
        if e.kind() != io::ErrorKind::UnexpectedEof && e.kind() != io::ErrorKind::ConnectionReset {
            crate::warn!("{peer}: connection error: {e}");
        }
    }
    conn.abort_message().await;
}

/// One accepted SMTP connection: the socket (plain or TLS) driving an `smtp::Session`.
pub(super) struct InboundConnection {
    pub(super) ctx: Arc<Ctx>,
    io: Io,
    /// The body chunk being filled: allocated when a message starts, freed when it ends
    /// (an idle connection holds no 16 KiB buffer).
    chunk: Option<Chunk>,
    incoming: Option<Incoming>,
    wbuf: Vec<u8>,
    /// The client's address (for the log of refused beacons).
    #[cfg_attr(not(feature = "silo"), allow(dead_code))]
    peer: SocketAddr,
    /// Who is connected, and what the blocklists said.
    pub(super) client: super::checks::Client,
    /// The settings this connection started with.
    pub(super) settings: Arc<Inbound>,
}

impl InboundConnection {
    async fn run(&mut self, peer: SocketAddr) -> io::Result<()> {
        let clock = Arc::clone(&self.ctx.clock);
        let info = PeerInfo {
            ip: peer.ip(),
            port: peer.port(),
            tls: false,
            unix_seconds: clock.unix_seconds(),
        };
        let (mut session, greeting) = self.open_session(info).await;
        self.wbuf.extend_from_slice(greeting.as_bytes());
        let mut rbuf = vec![0u8; READ_BUF].into_boxed_slice();
        let (mut start, mut end) = (0usize, 0usize);
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            // Feed what we have; the session stops at hand-offs and when its event buffer
            // is nearly full, so loop until it consumes nothing more.
            let mut upgrade = false;
            while start < end && !session.is_closed() {
                let mut out = Events::new();
                let n = session.input(&rbuf[start..end], clock.now(), &mut out);
                let had_events = !out.is_empty();
                let action = self.handle(&mut session, out).await?;
                start += n;
                match action {
                    NextStep::Continue => {}
                    NextStep::StartTls => {
                        upgrade = true;
                        break;
                    }
                    NextStep::Close => {
                        self.flush().await?;
                        self.io.shutdown().await;
                        return Ok(());
                    }
                }
                if n == 0 && !had_events {
                    break;
                }
            }
            self.flush().await?;
            if upgrade {
                // RFC 3207 §4.2 / CVE-2011-0411: nothing read before the handshake counts.
                start = 0;
                end = 0;
                self.start_tls().await?;
                session.tls_established(clock.now());
                continue;
            }
            if session.is_closed() {
                self.io.shutdown().await;
                return Ok(());
            }
            if !crate::daemon::io::compact(&mut rbuf, &mut start, &mut end) {
                // Cannot happen with a well-behaved session (a line is far shorter).
                return Err(io::Error::other("input buffer full"));
            }
            let recheck = self.stress(&mut session);
            let wait = session
                .deadline()
                .map(|d| {
                    std::time::Duration::from_micros(
                        d.saturating_duration_since(clock.now()).as_micros(),
                    )
                })
                .unwrap_or(std::time::Duration::from_secs(300))
                .min(recheck);
            tokio::select! {
                r = tokio::time::timeout(wait, self.io.read(&mut rbuf[end..])) => match r {
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(n)) => end += n,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        let mut out = Events::new();
                        session.tick(clock.now(), &mut out);
                        if session.is_closed()
                            && session.idle_timeout() < self.settings.session.idle_timeout
                        {
                            self.ctx.guard.counters.bump(|c| &mut c.stress_timeouts);
                        }
                        if let NextStep::Close = self.handle(&mut session, out).await? {
                            self.flush().await?;
                            self.io.shutdown().await;
                            return Ok(());
                        }
                    }
                },
                _ = shutdown.changed() => {
                    if self.incoming.is_none() {
                        self.wbuf.extend_from_slice(b"421 4.3.2 Service shutting down, try again later\r\n");
                        self.flush().await?;
                        self.io.shutdown().await;
                        return Ok(());
                    }
                    // In the middle of a message: let it finish (bounded by the daemon's grace).
                }
            }
        }
    }

    async fn handle<P: crate::policy::Policy + Clone>(
        &mut self,
        session: &mut Session<P>,
        out: Events<'_>,
    ) -> io::Result<NextStep> {
        let mut action = NextStep::Continue;
        for event in out {
            match event {
                Event::Reply(r) => {
                    if r.code() >= 400 {
                        // Refusals (policy, limits, syntax) are what an admin looks for.
                        self.event("refused", None, r.as_str().trim_end());
                        self.count_refusal(r.as_str());
                    }
                    self.wbuf.extend_from_slice(r.as_bytes());
                }
                Event::MessageBegin => self.begin_message(session).await,
                Event::Body(bytes) => self.body(bytes).await,
                Event::MessageEnd => {
                    let reply = self.end_message(session).await;
                    if reply.code() >= 400 {
                        self.count_refusal(reply.as_str());
                    }
                    self.wbuf.extend_from_slice(reply.as_bytes());
                }
                Event::MessageAborted(why) => {
                    crate::log!("message aborted: {why}");
                    self.event("aborted", None, &why.to_string());
                    self.abort_message().await;
                }
                Event::StartTls => action = NextStep::StartTls,
                Event::RcptCheck(refusal) => {
                    // Boxed: the checks' state lives on the heap while they run, not in
                    // every connection's task all the time.
                    let answer = Box::pin(self.rcpt_answer(session, refusal)).await;
                    let mut more = Events::new();
                    session.rcpt_checked(answer, self.ctx.clock.now(), &mut more);
                    for e in more {
                        match e {
                            Event::Reply(r) => {
                                if r.code() >= 400 {
                                    self.event("refused", None, r.as_str().trim_end());
                                    self.count_refusal(r.as_str());
                                }
                                self.wbuf.extend_from_slice(r.as_bytes());
                            }
                            Event::Close => action = NextStep::Close,
                            _ => {}
                        }
                    }
                }
                Event::Etrn(node) => {
                    let outcome = self.etrn(&node).await;
                    self.wbuf
                        .extend_from_slice(Reply::etrn(outcome, &node).as_bytes());
                }
                Event::Beacon(line) => {
                    let reply = self.beacon(&line);
                    self.wbuf.extend_from_slice(reply.as_bytes());
                }
                Event::Close => action = NextStep::Close,
            }
        }
        Ok(action)
    }

    async fn begin_message<P: crate::policy::Policy + Clone>(&mut self, session: &Session<P>) {
        self.chunk = None;
        let Some(env) = session.envelope() else {
            return;
        };
        let declared = env.params.size.unwrap_or(0);
        let received = env.received.clone();
        let checks = Box::pin(self.message_checks(env)).await;
        let incoming = match to_spool_envelope(env) {
            Ok(envelope) => Incoming {
                slot: Some(MessageSlot::New {
                    envelope: Box::new(envelope.clone()),
                    declared,
                }),
                envelope,
                appended: 0,
                error: None,
                checks,
            },
            Err(_) => Incoming {
                slot: None,
                envelope: spool::Envelope::default(),
                appended: 0,
                error: Some(StoreError::Io),
                checks,
            },
        };
        self.incoming = Some(incoming);
        self.body(received.as_bytes()).await;
    }

    async fn body(&mut self, mut bytes: &[u8]) {
        if let Some(inc) = self.incoming.as_mut() {
            if inc.error.is_none() {
                inc.checks.content(bytes).await;
            }
        }
        while !bytes.is_empty() {
            let Some(inc) = &self.incoming else { return };
            if inc.error.is_some() {
                return;
            }
            let chunk = self.chunk.get_or_insert_with(Box::default);
            let room = BODY_CHUNK - chunk.len();
            let take = room.min(bytes.len());
            // `take` fits by construction.
            let _ = chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if chunk.is_full() {
                self.flush_chunk().await;
            }
        }
    }

    async fn flush_chunk(&mut self) {
        let Some(inc) = &mut self.incoming else {
            return;
        };
        let Some(slot) = inc.slot.take() else {
            return;
        };
        let Some(chunk) = self.chunk.take() else {
            return;
        };
        let n = chunk.len() as u64;
        let (pending, chunk, result) = self.ctx.spool.append(slot, chunk).await;
        self.chunk = Some(chunk);
        match result {
            Ok(()) => {
                inc.slot = pending.map(MessageSlot::Begun);
                inc.appended += n;
            }
            Err(e) => {
                inc.error = Some(store_error(&e));
                if let Some(p) = pending {
                    self.ctx.spool.abort(p).await;
                }
            }
        }
    }

    async fn end_message<P: crate::policy::Policy + Clone>(
        &mut self,
        session: &mut Session<P>,
    ) -> Reply {
        let now = self.ctx.clock.now();
        let Some(mut inc) = self.incoming.take() else {
            return session.stored::<&str>(Err(StoreError::Io), now);
        };
        if let Some(e) = inc.error {
            if let Some(MessageSlot::Begun(p)) = inc.slot.take() {
                self.ctx.spool.abort(p).await;
            }
            return session.stored::<&str>(Err(e), now);
        }
        let Some(slot) = inc.slot.take() else {
            return session.stored::<&str>(Err(StoreError::Io), now);
        };
        let (verdict, summary) = match Box::pin(self.content_verdict(session, &mut inc)).await {
            Ok(v) => v,
            Err(reply) => {
                self.chunk = None;
                if let MessageSlot::Begun(p) = slot {
                    self.ctx.spool.abort(p).await;
                }
                return session.rejected(reply, self.ctx.clock.now());
            }
        };
        inc.envelope.verdict = verdict;
        // The last (partial) chunk goes with the commit: a message of one chunk or less is
        // one frame, one request.
        let tail = self.chunk.take().unwrap_or_default();
        let size = inc.appended + tail.len() as u64;
        // The buffer comes back emptied and is dropped: the next message allocates anew.
        let (_, stored) = self
            .ctx
            .spool
            .commit(slot, tail, inc.envelope.clone())
            .await;
        match stored {
            Ok(id) => {
                let text = format!(
                    "from=<{}> to={} size={size}{summary}",
                    inc.envelope.sender,
                    inc.envelope
                        .recipients
                        .iter()
                        .map(|r| format!("<{r}>"))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                crate::log!("accepted {id}: {text}");
                Counters::inc(&self.ctx.watch.counters.accepted);
                self.event("accepted", Some(id.to_string()), &text);
                self.ctx
                    .events
                    .accepted_bytes(self.ctx.clock.unix_seconds(), size);
                self.ctx.delivery.wake();
                session.stored(Ok(id), self.ctx.clock.now())
            }
            Err(e) => {
                crate::warn!("could not store message: {e}");
                self.event("store-failed", None, &e.to_string());
                session.stored::<&str>(Err(store_error(&e)), self.ctx.clock.now())
            }
        }
    }

    /// `XBEACON`: a router's heartbeat, checked against the silo's table of routers
    /// (signature, clock, replay). A router that was overdue is back: its contacts are
    /// told (by the watch task).
    fn beacon(&mut self, line: &str) -> Reply {
        #[cfg(not(feature = "silo"))]
        {
            let _ = line;
            Reply::new(
                502,
                "5.5.1",
                format_args!("XBEACON: this server watches no routers"),
            )
        }
        #[cfg(feature = "silo")]
        self.accept_beacon(line)
    }

    #[cfg(feature = "silo")]
    fn accept_beacon(&mut self, line: &str) -> Reply {
        let w = &self.ctx.watch;
        let now = self.ctx.clock.unix_seconds();
        let result = {
            let mut table = w
                .routers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if table.rows().is_empty() {
                return Reply::new(
                    502,
                    "5.5.1",
                    format_args!("XBEACON: this server watches no routers"),
                );
            }
            table.accept(line, now)
        };
        match result {
            Ok((beacon, back)) => {
                Counters::inc(&w.counters.beacons_accepted);
                if let Some(alert) = back {
                    w.alert(alert);
                }
                Reply::new(
                    250,
                    "2.0.0",
                    format_args!("beacon from {} accepted", beacon.router),
                )
            }
            Err(e) => {
                Counters::inc(&w.counters.beacons_refused);
                let text = format!("{}: {e}", self.peer);
                crate::warn!("beacon refused from {text}");
                self.event("beacon-refused", None, &text);
                let (code, enhanced) = match e {
                    BeaconError::Malformed(_) => (501, "5.5.4"),
                    _ => (554, "5.7.0"),
                };
                Reply::new(code, enhanced, format_args!("{e}"))
            }
        }
    }

    fn count_refusal(&self, wire: &str) {
        if let Some(why) = Refusal::of_reply(wire) {
            self.ctx.watch.counters.refused(why);
        }
    }

    /// RFC 1985: `ETRN example.com` or `ETRN @example.com` flushes mail held for that
    /// domain (the `@` form also covers subdomains in RFC 1985; only configured domains are
    /// flushed, anything else is 459).
    async fn etrn(&mut self, node: &str) -> EtrnOutcome {
        let domain = node
            .trim_start_matches(['@', '#'])
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !self.ctx.inbound.get().domains.contains(&domain) {
            return EtrnOutcome::NotAllowed;
        }
        let held = self.ctx.delivery.flush(Scope::Domain(domain.clone())).await;
        crate::log!("ETRN {domain}: {held} held message(s) made due");
        if held == 0 {
            return EtrnOutcome::NothingWaiting;
        }
        EtrnOutcome::Started
    }

    pub(super) fn event(&self, kind: &'static str, id: Option<String>, text: &str) {
        let now = self.ctx.clock.unix_seconds();
        self.ctx.events.push(now, kind, id, text);
    }

    async fn abort_message(&mut self) {
        self.chunk = None;
        if let Some(mut inc) = self.incoming.take() {
            if let Some(MessageSlot::Begun(p)) = inc.slot.take() {
                self.ctx.spool.abort(p).await;
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Err(io::Error::other("STARTTLS without a TLS configuration"));
        };
        let Some(tcp) = self.io.take_plain() else {
            return Err(io::Error::other("TLS already active"));
        };
        let tls = acceptor.accept(tcp).await?;
        self.io = Io::Tls(Box::new(tls));
        Ok(())
    }
}

/// What the connection does after handling the session's events.
enum NextStep {
    Continue,
    StartTls,
    Close,
}
