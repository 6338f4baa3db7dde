//! Outbound SMTP connections: connect to a route's next hops, drive [`Client`] sessions
//! over them (STARTTLS, content streamed from the spool), keep a connection for the next
//! message of the same route, and probe.
//!
//! - **Connecting.** Next hops in the order given, each address of a name in turn, with a
//!   [`CONNECT_TIMEOUT`]; the next hop is moved on to only when a whole attempt failed
//!   temporarily (a 5xx or a per-recipient result is an answer, not a reason to try
//!   elsewhere).
//! - **Kept connections** (Postfix's connection reuse): after a message the session stays
//!   open ([`Client::keep_open`]); the next message of the same route goes out on it, with
//!   RSET only when the last transaction did not end cleanly. A kept connection the next
//!   hop has meanwhile dropped is noticed on the next message, which is then sent over a
//!   fresh connection. At most [`MESSAGES_PER_CONNECTION`] messages per connection.
//! - **Limits.** Each connection holds one of its route's `max-per-hop` permits for its
//!   whole life.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use embassy_time::Instant;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::Deliverer;
use crate::relay::client::{ClientAction, FailReason, Failure, Kept, Outcome};
use crate::relay::nexthop::Host;
use crate::relay::reply::ServerReply;
use crate::relay::{Client, DeliveryJob, NextHop, TlsPolicy};
use crate::spool::MessageMeta;

/// TCP connect timeout per next-hop address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most messages sent over one connection before it is closed and a new one opened.
pub const MESSAGES_PER_CONNECTION: u32 = 100;
/// Read buffer per connection.
const READ_BUFFER: usize = 4096;

type Io = crate::daemon::io::Io<tokio_rustls::client::TlsStream<TcpStream>>;

/// A temporary failure of a whole attempt.
pub fn failure(reason: FailReason) -> Outcome {
    Outcome::Failed(Failure {
        permanent: false,
        reason,
        reply: None,
    })
}

/// Bytes read from the next hop and not yet consumed.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new() -> Self {
        Self {
            buf: vec![0u8; READ_BUFFER],
            start: 0,
            end: 0,
        }
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// An open connection to one next hop of one route.
pub struct HopConnection {
    /// The route's name ([`crate::relay::Route::name`]).
    pub route: String,
    hop: NextHop,
    io: Io,
    rb: ReadBuf,
    kept: Option<Kept>,
    messages: u32,
    _permit: OwnedSemaphorePermit,
}

impl HopConnection {
    /// The next hop's name, for the log.
    pub fn hop_name(&self) -> String {
        self.hop.host.to_string()
    }

    /// Sends one more message on this kept connection (the caller checks
    /// [`HopConnection::usable`] first). `None` when the connection turned
    /// out to be unusable before the message got anywhere (dropped while idle): the caller
    /// opens a fresh one; the connection is spent either way then.
    pub async fn send(
        &mut self,
        d: &Deliverer,
        job: DeliveryJob<'_>,
        meta: &MessageMeta,
    ) -> Option<Outcome> {
        let kept = self.kept.take()?;
        let mut c = Client::resume(&kept, job, now(d));
        let outcome = drive(d, &self.hop, &mut self.io, &mut self.rb, &mut c, Some(meta)).await;
        self.kept = c.kept();
        self.messages += 1;
        // Dropped while idle (or RSET refused): the message got nowhere; a fresh
        // connection takes it.
        let dead_on_arrival = self.kept.is_none()
            && matches!(&outcome, Outcome::Failed(f) if !f.permanent
                && matches!(f.reason,
                    FailReason::Closed | FailReason::Unexpected | FailReason::Protocol(_)));
        if dead_on_arrival {
            return None;
        }
        Some(outcome)
    }

    /// Messages sent over this connection so far.
    pub fn messages(&self) -> u32 {
        self.messages
    }

    /// True while the connection can carry another message.
    pub fn usable(&self) -> bool {
        self.kept.is_some() && self.messages < MESSAGES_PER_CONNECTION
    }

    /// QUIT and close (bounded by the client's QUIT timeout).
    pub async fn quit(mut self, d: &Deliverer) {
        if let Some(kept) = self.kept.take() {
            self.quit_with(d, &kept).await;
        }
        self.io.shutdown().await;
    }

    async fn quit_with(&mut self, d: &Deliverer, kept: &Kept) {
        let mut c = Client::quit_kept(kept, now(d));
        let _ = drive(d, &self.hop, &mut self.io, &mut self.rb, &mut c, None).await;
    }
}

/// Delivers `job` over a new connection to the first of `hops` that takes the attempt.
/// Returns the outcome, the next hop's name, and the connection when it can be kept.
pub async fn open_and_send(
    d: &Deliverer,
    route: &str,
    hops: &[NextHop],
    job: DeliveryJob<'_>,
    meta: &MessageMeta,
    permit: OwnedSemaphorePermit,
) -> (Outcome, String, Option<HopConnection>) {
    let mut outcome = failure(FailReason::Connect);
    let mut hop_name = String::new();
    for hop in hops {
        hop_name = hop.host.to_string();
        for addr in resolve(d, hop).await {
            let Some(stream) = connect(addr).await else {
                continue;
            };
            let mut io = Io::Plain(stream);
            let mut rb = ReadBuf::new();
            let mut c =
                Client::deliver(d.settings().client.clone(), job.clone(), now(d)).keep_open();
            outcome = drive(d, hop, &mut io, &mut rb, &mut c, Some(meta)).await;
            let kept = c.kept();
            drop(c);
            if let Some(kept) = kept {
                let conn = HopConnection {
                    route: route.to_owned(),
                    hop: hop.clone(),
                    io,
                    rb,
                    kept: Some(kept),
                    messages: 1,
                    _permit: permit,
                };
                return (outcome, hop_name, Some(conn));
            }
            io.shutdown().await;
            break;
        }
        // Only a temporary failure of the whole attempt moves on to the next hop.
        if !matches!(&outcome, Outcome::Failed(f) if !f.permanent) {
            break;
        }
    }
    (outcome, hop_name, None)
}

/// Connects, says EHLO and QUIT: true when `hop` answers like a mail server.
pub async fn probe(d: &Deliverer, hop: &NextHop) -> bool {
    for addr in resolve(d, hop).await {
        let Some(stream) = connect(addr).await else {
            continue;
        };
        let mut io = Io::Plain(stream);
        let mut c = Client::probe(d.settings().client.clone(), now(d));
        let outcome = drive(d, hop, &mut io, &mut ReadBuf::new(), &mut c, None).await;
        io.shutdown().await;
        if matches!(outcome, Outcome::Probed(_)) {
            return true;
        }
    }
    false
}

/// Asks `hop` (a silo) to deliver what it holds for `domain` now (ETRN, RFC 1985).
pub async fn etrn(d: &Deliverer, hop: &NextHop, domain: &str) -> Outcome {
    let mut last = failure(FailReason::Connect);
    for addr in resolve(d, hop).await {
        let Some(stream) = connect(addr).await else {
            continue;
        };
        let mut io = Io::Plain(stream);
        let mut c = Client::etrn(d.settings().client.clone(), domain, now(d));
        last = drive(d, hop, &mut io, &mut ReadBuf::new(), &mut c, None).await;
        io.shutdown().await;
        break;
    }
    last
}

async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = stream.set_nodelay(true);
    Some(stream)
}

/// The addresses of a next hop: a name's from DNS, else from the host's resolver
/// (`/etc/hosts`); our own addresses left out (the loop guard, after resolution).
pub async fn resolve(d: &Deliverer, hop: &NextHop) -> Vec<SocketAddr> {
    let addrs: Vec<SocketAddr> = match &hop.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, hop.port)],
        Host::Name(n) => {
            let from_dns = d.dns.addrs(n).await.unwrap_or_default();
            if from_dns.is_empty() {
                tokio::net::lookup_host((n.as_str(), hop.port))
                    .await
                    .map(|a| a.collect())
                    .unwrap_or_default()
            } else {
                from_dns
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, hop.port))
                    .collect()
            }
        }
    };
    addrs
        .into_iter()
        .filter(|a| !d.guard.is_our_address(*a))
        .collect()
}

fn now(d: &Deliverer) -> Instant {
    d.clock.now()
}

/// Drives `c` on `io` until its outcome is known and it is idle, or it is closed.
async fn drive(
    d: &Deliverer,
    hop: &NextHop,
    io: &mut Io,
    rb: &mut ReadBuf,
    c: &mut Client<'_>,
    body_of: Option<&MessageMeta>,
) -> Outcome {
    loop {
        if flush_out(d, c, io).await.is_err() {
            c.eof();
        }
        match c.next_action() {
            Some(ClientAction::StartTls) => {
                rb.clear();
                starttls(d, hop, io, c).await;
                continue;
            }
            Some(ClientAction::SendBody) => {
                match body_of {
                    Some(meta) => {
                        if !send_body(d, io, c, meta).await {
                            return failure(FailReason::Closed);
                        }
                    }
                    None => c.eof(),
                }
                continue;
            }
            Some(ClientAction::Done) | None => {}
            Some(ClientAction::Close) => {
                let _ = flush_out(d, c, io).await;
                io.shutdown().await;
                break;
            }
        }
        if c.is_closed() || c.is_idle() {
            break;
        }
        // Feed what we have, then read more.
        if rb.start < rb.end {
            let n = c.input(&rb.buf[rb.start..rb.end], now(d));
            rb.start += n;
            if n > 0 {
                continue;
            }
        }
        if !crate::daemon::io::compact(&mut rb.buf, &mut rb.start, &mut rb.end) {
            c.eof();
            continue;
        }
        let wait = c
            .deadline()
            .map(|t| Duration::from_micros(t.saturating_duration_since(now(d)).as_micros()))
            .unwrap_or(Duration::from_secs(300));
        match tokio::time::timeout(wait, io.read(&mut rb.buf[rb.end..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => c.eof(),
            Ok(Ok(n)) => rb.end += n,
            Err(_) => c.tick(now(d)),
        }
    }
    c.outcome()
        .cloned()
        .unwrap_or_else(|| failure(FailReason::Closed))
}

async fn starttls(d: &Deliverer, hop: &NextHop, io: &mut Io, c: &mut Client<'_>) {
    let Some(tcp) = io.take_plain() else {
        c.tls_failed();
        return;
    };
    let verify = d.settings().client.tls == TlsPolicy::RequireVerify;
    let config = if verify {
        d.tls.verified.clone()
    } else {
        Some(Arc::clone(&d.tls.any))
    };
    let name = match &hop.host {
        Host::Name(n) => rustls::pki_types::ServerName::try_from(n.to_string()).ok(),
        Host::Ip(ip) => Some(rustls::pki_types::ServerName::IpAddress((*ip).into())),
    };
    let (Some(config), Some(name)) = (config, name) else {
        c.tls_failed();
        return;
    };
    match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(tls) => {
            *io = Io::Tls(Box::new(tls));
            c.tls_established(verify, now(d));
        }
        Err(_) => c.tls_failed(),
    }
}

/// Streams the body from the spool; false when it cannot be read (the attempt fails).
async fn send_body(d: &Deliverer, io: &mut Io, c: &mut Client<'_>, meta: &MessageMeta) -> bool {
    // The inbound checks' verdict, applied like the Received header was: X-Spam-* lines
    // before the stored content, or a repackaging notice around it.
    let wrap = crate::policy::verdict::wrapping(
        meta.verdict.as_ref(),
        meta.id,
        meta.body_crc,
        &d.hostname,
        d.clock.unix_seconds(),
    );
    if !feed(d, io, c, wrap.prefix.as_bytes()).await {
        c.body_end(now(d));
        return true;
    }
    let mut offset = 0u64;
    loop {
        let chunk = match d.spool.body(meta.id, offset).await {
            Ok(c) => c,
            Err(e) => {
                crate::log!("{}: cannot read the body: {e}", meta.id);
                return false;
            }
        };
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        if !feed(d, io, c, &chunk).await {
            break;
        }
    }
    if !c.is_closed() {
        feed(d, io, c, wrap.suffix.as_bytes()).await;
    }
    c.body_end(now(d));
    true
}

/// Hands `bytes` to the client and writes what it produces; false once it closed.
async fn feed(d: &Deliverer, io: &mut Io, c: &mut Client<'_>, bytes: &[u8]) -> bool {
    let mut used = 0;
    while used < bytes.len() && !c.is_closed() {
        used += c.body(&bytes[used..], now(d));
        if flush_out(d, c, io).await.is_err() {
            c.eof();
            break;
        }
    }
    !c.is_closed()
}

/// Asks `hop` whether `address` exists (`MAIL FROM:<>`, `RCPT TO`, `RSET`); the RCPT
/// reply, or `None` when no address of the hop answered that far.
pub async fn verify(d: &Deliverer, hop: &NextHop, address: &str) -> Option<ServerReply> {
    for addr in resolve(d, hop).await {
        let Some(stream) = connect(addr).await else {
            continue;
        };
        let mut io = Io::Plain(stream);
        let mut c = Client::verify(d.settings().client.clone(), address, now(d));
        let outcome = drive(d, hop, &mut io, &mut ReadBuf::new(), &mut c, None).await;
        io.shutdown().await;
        if let Outcome::Verified(reply) = outcome {
            return Some(reply);
        }
    }
    None
}

async fn flush_out(d: &Deliverer, c: &mut Client<'_>, io: &mut Io) -> std::io::Result<()> {
    let out = c.output();
    if out.is_empty() {
        return Ok(());
    }
    let n = out.len();
    io.write_all(out).await?;
    c.written(n, now(d));
    Ok(())
}
