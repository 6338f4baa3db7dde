//! The async driver of the sans-IO SMTP client ([`Client`]): one loop that writes its
//! output, does the STARTTLS handshake, streams a body from the spool, feeds it the next
//! hop's bytes and keeps its deadlines. Every outbound session runs through it — a
//! delivery, a probe, ETRN to the upstream silo — and so do `mailbag etrn`
//! ([`etrn_session`]) and the setup check ([`probe_session`], [`etrn_session`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use embassy_time::Instant;
use mailbag_hal::Clock;
use tokio::net::TcpStream;

use super::tls::TlsClients;
use crate::daemon::spool::SpoolHandle;
use crate::relay::Client;
use crate::relay::TlsPolicy;
use crate::relay::client::{ClientAction, ClientConfig, FailReason, Failure, Outcome, Tls};
use crate::relay::nexthop::Host;
use crate::spool::MessageMeta;

/// TCP connect timeout per next-hop address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffer per connection.
const READ_BUFFER: usize = 4096;

/// A connection to a next hop: plain, or TLS after STARTTLS.
pub(super) type Io = crate::daemon::io::Io<tokio_rustls::client::TlsStream<TcpStream>>;

/// What driving a session needs: time and the STARTTLS client configurations.
#[derive(Clone, Copy)]
pub(super) struct Driver<'a> {
    pub(super) clock: &'a dyn Clock,
    pub(super) tls: &'a TlsClients,
    /// Our host name (in a repackaging notice); empty where no body is sent.
    pub(super) hostname: &'a str,
}

/// Where a delivery's content comes from: the spool, message `meta`.
pub(super) type Body<'a> = Option<(&'a SpoolHandle, &'a MessageMeta)>;

/// A failure of a whole attempt that no reply caused.
pub fn failure(reason: FailReason) -> Outcome {
    Outcome::Failed(Failure::without_reply(reason))
}

/// Bytes read from the next hop and not yet consumed.
pub(super) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub(super) fn new() -> Self {
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

/// A TCP connection to `addr` within [`CONNECT_TIMEOUT`].
pub(super) async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = stream.set_nodelay(true);
    Some(stream)
}

/// Asks the SMTP server at the first of `addrs` that answers (`host` names it for TLS) to
/// deliver what it holds for `domain` now (ETRN, RFC 1985): greeting, EHLO, STARTTLS when
/// offered (as `cfg`'s policy says), `ETRN domain`, QUIT.
pub async fn etrn_session(
    addrs: &[SocketAddr],
    host: &Host,
    cfg: ClientConfig,
    domain: &str,
    tls: &TlsClients,
    clock: &dyn Clock,
) -> Outcome {
    let client = || Client::etrn(cfg.clone(), domain, clock.now());
    short_session(addrs, host, tls, clock, client, |_| false).await
}

/// Connects to the first of `addrs` that answers and says EHLO and QUIT:
/// [`Outcome::Probed`] with the extensions offered (the setup check reads STARTTLS there),
/// or why not.
pub async fn probe_session(
    addrs: &[SocketAddr],
    host: &Host,
    cfg: ClientConfig,
    tls: &TlsClients,
    clock: &dyn Clock,
) -> Outcome {
    let client = || Client::probe(cfg.clone(), clock.now());
    let again = |o: &Outcome| !matches!(o, Outcome::Probed(_));
    short_session(addrs, host, tls, clock, client, again).await
}

/// One heartbeat beacon (`XBEACON line`) to the first of `addrs` that takes a connection.
pub(super) async fn beacon_session(
    addrs: &[SocketAddr],
    host: &Host,
    cfg: ClientConfig,
    line: &str,
    tls: &TlsClients,
    clock: &dyn Clock,
) -> Outcome {
    let client = || Client::beacon(cfg.clone(), line, clock.now());
    short_session(addrs, host, tls, clock, client, |_| false).await
}

/// A session without a message (ETRN, probe, beacon, recipient verification) with the first of `addrs` that takes a
/// connection, and with the next ones while `again` says so; the last outcome.
pub(super) async fn short_session<'c>(
    addrs: &[SocketAddr],
    host: &Host,
    tls: &TlsClients,
    clock: &dyn Clock,
    client: impl Fn() -> Client<'c>,
    again: impl Fn(&Outcome) -> bool,
) -> Outcome {
    let drv = Driver {
        clock,
        tls,
        hostname: "",
    };
    let mut last = failure(FailReason::Connect);
    for &addr in addrs {
        let Some(stream) = connect(addr).await else {
            continue;
        };
        let mut io = Io::Plain(stream);
        let mut c = client();
        last = drive(drv, host, &mut io, &mut ReadBuf::new(), &mut c, None).await;
        io.shutdown().await;
        if !again(&last) {
            break;
        }
    }
    last
}

impl Driver<'_> {
    fn now(&self) -> Instant {
        self.clock.now()
    }
}

/// Drives `c` on `io` until its outcome is known and it is idle, or it is closed.
pub(super) async fn drive(
    drv: Driver<'_>,
    host: &Host,
    io: &mut Io,
    rb: &mut ReadBuf,
    c: &mut Client<'_>,
    body: Body<'_>,
) -> Outcome {
    loop {
        if flush_out(drv, c, io).await.is_err() {
            c.eof();
        }
        match c.next_action() {
            Some(ClientAction::StartTls) => {
                rb.clear();
                starttls(drv, host, io, c).await;
                continue;
            }
            Some(ClientAction::SendBody) => {
                match body {
                    Some((spool, meta)) => {
                        if !send_body(drv, spool, io, c, meta).await {
                            return failure(FailReason::Closed);
                        }
                    }
                    None => c.eof(),
                }
                continue;
            }
            Some(ClientAction::Done) | None => {}
            Some(ClientAction::Close) => {
                let _ = flush_out(drv, c, io).await;
                io.shutdown().await;
                break;
            }
        }
        if c.is_closed() || c.is_idle() {
            break;
        }
        // Feed what we have, then read more.
        if rb.start < rb.end {
            let n = c.input(&rb.buf[rb.start..rb.end], drv.now());
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
            .map(|t| Duration::from_micros(t.saturating_duration_since(drv.now()).as_micros()))
            .unwrap_or(Duration::from_secs(300));
        match tokio::time::timeout(wait, io.read(&mut rb.buf[rb.end..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => c.eof(),
            Ok(Ok(n)) => rb.end += n,
            Err(_) => c.tick(drv.now()),
        }
    }
    c.outcome()
        .cloned()
        .unwrap_or_else(|| failure(FailReason::Closed))
}

/// The handshake after [`ClientAction::StartTls`]: verified against the system's CAs under
/// `require-verify`, otherwise any certificate (opportunistic encryption).
async fn starttls(drv: Driver<'_>, host: &Host, io: &mut Io, c: &mut Client<'_>) {
    let Some(tcp) = io.take_plain() else {
        c.tls_failed();
        return;
    };
    let verify = c.tls_policy() == TlsPolicy::RequireVerify;
    let config = if verify {
        drv.tls.verified.clone()
    } else {
        Some(Arc::clone(&drv.tls.any))
    };
    let name = match host {
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
            let level = if verify {
                Tls::Verified
            } else {
                Tls::Encrypted
            };
            c.tls_established(level, drv.now());
        }
        Err(_) => c.tls_failed(),
    }
}

/// Streams the body from the spool; false when it cannot be read (the attempt fails).
/// The inbound checks' verdict is applied like the Received header was: `X-Spam-*` lines
/// before the stored content, or a repackaging notice around it.
async fn send_body(
    drv: Driver<'_>,
    spool: &SpoolHandle,
    io: &mut Io,
    c: &mut Client<'_>,
    meta: &MessageMeta,
) -> bool {
    let wrap = crate::policy::verdict::wrapping(
        meta.verdict.as_ref(),
        meta.id,
        meta.body_crc,
        drv.hostname,
        drv.clock.unix_seconds(),
    );
    if !feed(drv, io, c, wrap.prefix.as_bytes()).await {
        c.body_end(drv.now());
        return true;
    }
    let mut offset = 0u64;
    loop {
        let chunk = match spool.body(meta.id, offset).await {
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
        if !feed(drv, io, c, &chunk).await {
            break;
        }
    }
    if !c.is_closed() {
        feed(drv, io, c, wrap.suffix.as_bytes()).await;
    }
    c.body_end(drv.now());
    true
}

/// Hands `bytes` to the client and writes what it produces; false once it closed.
async fn feed(drv: Driver<'_>, io: &mut Io, c: &mut Client<'_>, bytes: &[u8]) -> bool {
    let mut used = 0;
    while used < bytes.len() && !c.is_closed() {
        used += c.body(&bytes[used..], drv.now());
        if flush_out(drv, c, io).await.is_err() {
            c.eof();
            break;
        }
    }
    !c.is_closed()
}

async fn flush_out(drv: Driver<'_>, c: &mut Client<'_>, io: &mut Io) -> std::io::Result<()> {
    let out = c.output();
    if out.is_empty() {
        return Ok(());
    }
    let n = out.len();
    io.write_all(out).await?;
    c.written(n, drv.now());
    Ok(())
}
