//! Outbound SMTP connections: connect to a route's next hops, drive [`Client`] sessions
//! over them (STARTTLS, content streamed from the spool), keep a connection for the next
//! message of the same route, and probe.
//!
//! - **Connecting.** Next hops in the order given, each address of a name in turn, with a
//!   [`CONNECT_TIMEOUT`](driver::CONNECT_TIMEOUT); the next hop is moved on to only when a whole attempt failed
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

use tokio::sync::OwnedSemaphorePermit;

use super::deliverer::Deliverer;
use super::driver::{self, Driver, Io, ReadBuf, connect, drive, failure};
use crate::relay::client::{FailReason, Kept, Outcome};
use crate::relay::reply::ServerReply;
use crate::relay::{Client, DeliveryJob, NextHop};
use crate::spool::MessageMeta;

/// Most messages sent over one connection before it is closed and a new one opened.
pub const MESSAGES_PER_CONNECTION: u32 = 100;

fn driver(d: &Deliverer) -> Driver<'_> {
    Driver {
        clock: d.clock.as_ref(),
        tls: &d.tls,
        hostname: &d.hostname,
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
        let mut c = Client::resume(&kept, job, d.clock.now());
        let body = Some((&d.spool, meta));
        let outcome = drive(
            driver(d),
            &self.hop.host,
            &mut self.io,
            &mut self.rb,
            &mut c,
            body,
        )
        .await;
        self.kept = c.kept();
        self.messages += 1;
        // Dropped while idle (or RSET refused): the message got nowhere; a fresh
        // connection takes it.
        let dead_on_arrival = self.kept.is_none()
            && matches!(&outcome, Outcome::Failed(f) if !f.permanent()
                && matches!(f.reason,
                    FailReason::Closed | FailReason::Unexpected | FailReason::Rset
                    | FailReason::Protocol(_)));
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
        let mut c = Client::quit_kept(kept, d.clock.now());
        let _ = drive(
            driver(d),
            &self.hop.host,
            &mut self.io,
            &mut self.rb,
            &mut c,
            None,
        )
        .await;
    }
}

/// What [`open_and_send`] did.
pub struct Sent {
    /// The attempt's outcome.
    pub outcome: Outcome,
    /// The next hop it went to (the last one tried), for the log and bounces.
    pub hop: String,
    /// The connection, when it can carry the route's next message.
    pub kept: Option<HopConnection>,
}

/// Delivers `job` over a new connection to the first of `hops` that takes the attempt.
pub async fn open_and_send(
    d: &Deliverer,
    route: &str,
    hops: &[NextHop],
    job: DeliveryJob<'_>,
    meta: &MessageMeta,
    permit: OwnedSemaphorePermit,
) -> Sent {
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
            let mut c = Client::deliver(d.settings().client.clone(), job.clone(), d.clock.now())
                .keep_open();
            let body = Some((&d.spool, meta));
            outcome = drive(driver(d), &hop.host, &mut io, &mut rb, &mut c, body).await;
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
                return Sent {
                    outcome,
                    hop: hop_name,
                    kept: Some(conn),
                };
            }
            io.shutdown().await;
            break;
        }
        // Only a temporary failure of the whole attempt moves on to the next hop.
        if !matches!(&outcome, Outcome::Failed(f) if !f.permanent()) {
            break;
        }
    }
    Sent {
        outcome,
        hop: hop_name,
        kept: None,
    }
}

/// Connects, says EHLO and QUIT: true when `hop` answers like a mail server.
pub async fn probe(d: &Deliverer, hop: &NextHop) -> bool {
    let addrs = resolve(d, hop).await;
    let cfg = d.settings().client.clone();
    let outcome = driver::probe_session(&addrs, &hop.host, cfg, &d.tls, d.clock.as_ref()).await;
    matches!(outcome, Outcome::Probed(_))
}

/// Asks `hop` (a silo) to deliver what it holds for `domain` now (ETRN, RFC 1985).
pub async fn etrn(d: &Deliverer, hop: &NextHop, domain: &str) -> Outcome {
    let addrs = resolve(d, hop).await;
    let cfg = d.settings().client.clone();
    driver::etrn_session(&addrs, &hop.host, cfg, domain, &d.tls, d.clock.as_ref()).await
}

/// The addresses of a next hop ([`super::dns::DnsResolver::socket_addrs`]), our own left
/// out (the loop guard, after resolution).
pub async fn resolve(d: &Deliverer, hop: &NextHop) -> Vec<SocketAddr> {
    d.dns
        .socket_addrs(&hop.host, hop.port)
        .await
        .into_iter()
        .filter(|a| !d.guard.is_our_address(*a))
        .collect()
}

/// Sends one heartbeat beacon to `hop` (a silo): `XBEACON line`; the silo's reply when it
/// took it, else why not.
pub async fn beacon(d: &Deliverer, hop: &NextHop, line: &str) -> Result<String, String> {
    let addrs = resolve(d, hop).await;
    let cfg = d.settings().client.clone();
    match driver::beacon_session(&addrs, &hop.host, cfg, line, &d.tls, d.clock.as_ref()).await {
        Outcome::Beacon(reply) => Ok(reply.to_string()),
        Outcome::Failed(f) => Err(f.to_string()),
        other => Err(format!("unexpected outcome {other:?}")),
    }
}

/// Asks `hop` whether `address` exists (`MAIL FROM:<>`, `RCPT TO`, `RSET`); the RCPT
/// reply, or `None` when no address of the hop answered that far.
pub async fn verify(d: &Deliverer, hop: &NextHop, address: &str) -> Option<ServerReply> {
    let addrs = resolve(d, hop).await;
    let cfg = d.settings().client.clone();
    let client = || Client::verify(cfg.clone(), address, d.clock.now());
    let again = |o: &Outcome| !matches!(o, Outcome::Verified(_));
    let tls = &d.tls;
    match driver::short_session(&addrs, &hop.host, tls, d.clock.as_ref(), client, again).await {
        Outcome::Verified(reply) => Some(reply),
        _ => None,
    }
}
