//! Delivery: takes due messages from the spool, sends them to the next hop with the
//! sans-IO [`Client`], records each attempt (per-recipient state, next attempt, last
//! error) durably, removes delivered mail and queues bounces and delay warnings.
//!
//! - **When.** Every [`TICK`], and at once when kicked (a new message, ETRN, a flush). While
//!   the next hop is down, messages keep their retry schedule; a kick makes held mail due.
//! - **How much.** At most `relay.max-per-hop` deliveries at once (one next-hop list), oldest
//!   message first; a recovered server is not hammered.
//! - **Order of effects.** The record is updated (or removed) *before* a bounce is queued,
//!   so a crash can repeat a bounce but never lose a recipient's state. Delivery is
//!   at-least-once: a crash between the next hop's 250 and our record update delivers that
//!   message again after restart.
//! - **TLS.** STARTTLS is used when offered (`opportunistic`: certificate not checked,
//!   like Postfix's `may`); `require` fails the attempt when the hop has no STARTTLS;
//!   `require-verify` checks the certificate against the system's CA file.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use embassy_time::Instant;
use mailbag_hal::Clock;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};

use super::spool_actor::SpoolHandle;
use crate::relay::client::{Action, FailReason, Failure, Outcome};
use crate::relay::dsn::{DsnKind, DsnRecipient, Report, write_dsn};
use crate::relay::nexthop::Host;
use crate::relay::{Client, LoopGuard, NextHop, RelaySettings, TlsPolicy, attempt, record_attempt};
use crate::spool::{Envelope, MessageMeta};

/// How often due messages are looked for without a kick.
pub const TICK: Duration = Duration::from_secs(1);
/// Most due messages fetched per look.
const DUE_BATCH: usize = 64;
/// TCP connect timeout per next-hop address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Original headers read into a bounce (the DSN writer cuts them at its own limit).
const DSN_HEADERS_READ: usize = 16 * 1024;

/// The delivery task's shared parts.
pub struct Deliverer {
    /// The spool thread.
    pub spool: SpoolHandle,
    /// Parsed `[relay]`.
    pub settings: RelaySettings,
    /// Refuses next hops that are this daemon.
    pub guard: LoopGuard,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Wakes the loop (new mail, ETRN, flush).
    pub kick: Arc<Notify>,
    /// Our host name (DSN Reporting-MTA).
    pub hostname: String,
    /// TLS client configurations: (no verification, verification against system CAs).
    pub tls: TlsClients,
    /// Set when the last attempt could not reach any next hop; the probe then watches for
    /// its return.
    pub hop_down: Arc<AtomicBool>,
    /// Ids of messages being worked on: by [`run`] while it delivers them, or claimed by
    /// an admin action (see `queue_actions`). Neither touches a message the other holds.
    pub in_flight: Arc<Mutex<HashSet<u64>>>,
}

/// TLS client configurations for opportunistic and verified STARTTLS.
#[derive(Clone)]
pub struct TlsClients {
    /// Any certificate (encryption without authentication).
    pub any: Arc<rustls::ClientConfig>,
    /// Verified against the system CA bundle (None if none could be loaded).
    pub verified: Option<Arc<rustls::ClientConfig>>,
}

/// Runs until `shutdown` flips; in-flight deliveries finish (their records are written).
pub async fn run(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(d.settings.max_per_hop.max(1) as usize));
    let in_flight = Arc::clone(&d.in_flight);
    loop {
        let due = d.spool.due(d.clock.unix_seconds(), DUE_BATCH).await;
        for meta in due {
            let id = meta.id.0;
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                break;
            };
            // Checked and marked in one step: admin actions claim ids from other threads.
            if !in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id)
            {
                continue;
            }
            let (d2, flight) = (Arc::clone(&d), Arc::clone(&in_flight));
            tokio::spawn(async move {
                deliver_one(&d2, meta).await;
                flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                drop(permit);
                // A slot is free: look again without waiting for the tick.
                d2.kick.notify_one();
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = d.kick.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Let attempts in progress record their outcome (bounded: a stuck next hop is dropped,
    // and its message is simply tried again after restart).
    let all = d.settings.max_per_hop.max(1);
    let _ = tokio::time::timeout(super::GRACE, slots.acquire_many(all)).await;
}

/// One recipient line of a bounce or delay notice: address, RFC 3463 status, the next
/// hop's reply, and our words for people.
pub(super) type Notice = (String, (u8, u16, u16), Option<String>, String);

fn failure(reason: FailReason) -> Outcome {
    Outcome::Failed(Failure {
        permanent: false,
        reason,
        reply: None,
    })
}

/// One attempt for one message, over the next hops in order; records the result.
async fn deliver_one(d: &Deliverer, mut meta: MessageMeta) {
    let seed = meta.id.0 ^ u64::from(meta.attempts);
    let hops: Vec<NextHop> = d
        .settings
        .next_hops
        .ordered(seed)
        .into_iter()
        .filter(|h| !d.guard.is_self(h))
        .cloned()
        .collect();
    let (outcome, indices, hop_name) = {
        let (job, indices) = attempt::job(&meta, |_| true);
        let mut outcome = failure(FailReason::Connect);
        let mut hop_name = String::new();
        for hop in &hops {
            hop_name = hop.host.to_string();
            outcome = attempt_hop(d, hop, &meta, job.clone()).await;
            // Only a temporary failure of the whole attempt moves on to the next hop.
            let retry_elsewhere = matches!(&outcome, Outcome::Failed(f) if !f.permanent);
            if !retry_elsewhere {
                break;
            }
        }
        if hops.is_empty() {
            crate::log!(
                "{}: no usable next hop (relay.next-hops is empty or points at us)",
                meta.id
            );
        }
        (outcome, indices, hop_name)
    };
    let unreachable = matches!(&outcome, Outcome::Failed(f) if !f.permanent);
    d.hop_down.store(unreachable, Ordering::Relaxed);
    let now = d.clock.unix_seconds();
    let id = meta.id;
    let result = record_attempt(&mut meta, &indices, &outcome, &d.settings.retry, now);
    // The original's headers go into any notice; read them before the message may be
    // removed below.
    let headers = if result.bounces.is_empty() && !result.warn {
        Vec::new()
    } else {
        original_headers(d, &meta).await
    };
    let persisted = if result.done {
        d.spool.remove(id).await
    } else {
        d.spool.update(meta.clone()).await
    };
    if let Err(e) = persisted {
        crate::log!("{id}: could not record the attempt: {e}");
        return;
    }
    let delivered = meta
        .recipients
        .iter()
        .filter(|r| r.status == crate::spool::RcptStatus::Delivered)
        .count();
    match &outcome {
        Outcome::Transaction(_) if result.done && result.bounces.is_empty() => {
            crate::log!("delivered {id} to {hop_name} ({delivered} recipients)")
        }
        Outcome::Failed(f) => crate::log!("deferred {id}: {f} (attempt {})", meta.attempts),
        _ => crate::log!(
            "attempted {id}: {delivered} delivered, {} bounced, done={}",
            result.bounces.len(),
            result.done
        ),
    }
    if !result.bounces.is_empty() {
        let recipients: Vec<Notice> = result
            .bounces
            .iter()
            .map(|b| {
                let addr = meta
                    .recipients
                    .get(b.index)
                    .map(|r| r.address.to_string())
                    .unwrap_or_default();
                (
                    addr,
                    b.status,
                    b.reply.as_ref().map(|r| r.to_string()),
                    b.reason.clone(),
                )
            })
            .collect();
        send_dsn(d, &meta, &headers, DsnKind::Failure, &recipients, &hop_name).await;
    }
    if result.warn {
        let pending: Vec<Notice> = meta
            .pending()
            .map(|r| {
                (
                    r.address.to_string(),
                    (4, 0, 0),
                    None,
                    meta.last_error.to_string(),
                )
            })
            .collect();
        let until = meta.received_unix + d.settings.retry.lifetime.as_secs();
        send_dsn(
            d,
            &meta,
            &headers,
            DsnKind::Delay { until_unix: until },
            &pending,
            &hop_name,
        )
        .await;
    }
}

/// The first [`DSN_HEADERS_READ`] bytes of the message (the DSN writer keeps only the
/// header block).
pub(super) async fn original_headers(d: &Deliverer, meta: &MessageMeta) -> Vec<u8> {
    let mut headers = Vec::with_capacity(DSN_HEADERS_READ);
    while headers.len() < DSN_HEADERS_READ {
        match d.spool.body(meta.id, headers.len() as u64).await {
            Ok(chunk) if !chunk.is_empty() => headers.extend_from_slice(&chunk),
            _ => break,
        }
    }
    headers.truncate(DSN_HEADERS_READ);
    headers
}

/// Queues a notice to `meta`'s envelope sender. True when it is durably queued or none is
/// due (no recipients, null sender); false when it could not be written or queued.
pub(super) async fn send_dsn(
    d: &Deliverer,
    meta: &MessageMeta,
    headers: &[u8],
    kind: DsnKind,
    recipients: &[Notice],
    hop: &str,
) -> bool {
    if recipients.is_empty() {
        return true;
    }
    let now = d.clock.unix_seconds();
    let rcpts: Vec<DsnRecipient<'_>> = recipients
        .iter()
        .map(|(a, status, reply, reason)| DsnRecipient {
            address: a,
            status: *status,
            remote_mta: (!hop.is_empty() && reply.is_some()).then_some(hop),
            smtp_reply: reply.as_deref(),
            reason,
            last_attempt_unix: now,
        })
        .collect();
    let report = Report {
        reporting_mta: &d.hostname,
        queue_id: meta.id,
        arrival_unix: meta.received_unix,
        now_unix: now,
        kind,
        recipients: &rcpts,
    };
    let mut out = Vec::new();
    match write_dsn(&meta.sender, &report, headers, &mut out) {
        Ok(Some(env)) => {
            let Ok(envelope) = Envelope::new(&env.sender, [env.recipient.as_str()]) else {
                crate::log!("{}: no bounce: the sender is no usable address", meta.id);
                return false;
            };
            match d.spool.enqueue(envelope, &out).await {
                Ok(dsn_id) => {
                    crate::log!(
                        "{}: {} notice {dsn_id} queued for <{}>",
                        meta.id,
                        if matches!(kind, DsnKind::Failure) {
                            "bounce"
                        } else {
                            "delay"
                        },
                        env.recipient
                    );
                    d.kick.notify_one();
                    true
                }
                Err(e) => {
                    crate::log!("{}: could not queue the bounce: {e}", meta.id);
                    false
                }
            }
        }
        Ok(None) => {
            crate::log!(
                "{}: no bounce: the sender is <> (never bounce a bounce)",
                meta.id
            );
            true
        }
        Err(e) => {
            crate::log!("{}: could not write the bounce: {e}", meta.id);
            false
        }
    }
}

async fn resolve(hop: &NextHop) -> Vec<SocketAddr> {
    match &hop.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, hop.port)],
        Host::Name(n) => tokio::net::lookup_host((n.as_str(), hop.port))
            .await
            .map(|a| a.collect())
            .unwrap_or_default(),
    }
}

async fn attempt_hop(
    d: &Deliverer,
    hop: &NextHop,
    meta: &MessageMeta,
    job: crate::relay::Job<'_>,
) -> Outcome {
    let mut last = failure(FailReason::Connect);
    for addr in resolve(hop).await {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => continue,
        };
        let _ = stream.set_nodelay(true);
        let client = Box::new(Client::deliver(
            d.settings.client.clone(),
            job.clone(),
            now(d),
        ));
        last = drive(d, hop, stream, client, Some(meta)).await;
        break;
    }
    last
}

type Io = super::io::Io<tokio_rustls::client::TlsStream<TcpStream>>;

fn now(d: &Deliverer) -> Instant {
    d.clock.now()
}

/// Drives one client session on `stream` to its end.
async fn drive(
    d: &Deliverer,
    hop: &NextHop,
    stream: TcpStream,
    mut c: Box<Client<'_>>,
    body_of: Option<&MessageMeta>,
) -> Outcome {
    let mut io = Io::Plain(stream);
    let mut rbuf = vec![0u8; 4096];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        if flush_out(d, &mut c, &mut io).await.is_err() {
            c.eof();
        }
        match c.next_action() {
            Some(Action::StartTls) => {
                start = 0;
                end = 0;
                let Some(tcp) = io.take_plain() else {
                    break;
                };
                let verify = d.settings.client.tls == TlsPolicy::RequireVerify;
                let config = if verify {
                    d.tls.verified.clone()
                } else {
                    Some(Arc::clone(&d.tls.any))
                };
                let name = match &hop.host {
                    Host::Name(n) => rustls::pki_types::ServerName::try_from(n.to_string()).ok(),
                    Host::Ip(ip) => Some(rustls::pki_types::ServerName::IpAddress((*ip).into())),
                };
                match (config, name) {
                    (Some(config), Some(name)) => {
                        match tokio_rustls::TlsConnector::from(config)
                            .connect(name, tcp)
                            .await
                        {
                            Ok(tls) => {
                                io = Io::Tls(Box::new(tls));
                                c.tls_established(verify, now(d));
                            }
                            Err(_) => c.tls_failed(),
                        }
                    }
                    _ => c.tls_failed(),
                }
                continue;
            }
            Some(Action::SendBody) => {
                let Some(meta) = body_of else {
                    c.eof();
                    continue;
                };
                let mut offset = 0u64;
                loop {
                    let chunk = match d.spool.body(meta.id, offset).await {
                        Ok(c) => c,
                        Err(e) => {
                            crate::log!("{}: cannot read the body: {e}", meta.id);
                            return failure(FailReason::Closed);
                        }
                    };
                    if chunk.is_empty() {
                        break;
                    }
                    offset += chunk.len() as u64;
                    let mut used = 0;
                    while used < chunk.len() && !c.is_closed() {
                        used += c.body(&chunk[used..], now(d));
                        if flush_out(d, &mut c, &mut io).await.is_err() {
                            c.eof();
                            break;
                        }
                    }
                    if c.is_closed() {
                        break;
                    }
                }
                c.body_end(now(d));
                continue;
            }
            Some(Action::Done) | None => {}
            Some(Action::Close) => {
                let _ = flush_out(d, &mut c, &mut io).await;
                break;
            }
        }
        if c.is_closed() {
            break;
        }
        // Feed what we have, then read more.
        if start < end {
            let n = c.input(&rbuf[start..end], now(d));
            start += n;
            if n > 0 {
                continue;
            }
        }
        if !super::io::compact(&mut rbuf, &mut start, &mut end) {
            c.eof();
            continue;
        }
        let wait = c
            .deadline()
            .map(|t| Duration::from_micros(t.saturating_duration_since(now(d)).as_micros()))
            .unwrap_or(Duration::from_secs(300));
        match tokio::time::timeout(wait, io.read(&mut rbuf[end..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => c.eof(),
            Ok(Ok(n)) => end += n,
            Err(_) => c.tick(now(d)),
        }
    }
    c.outcome()
        .cloned()
        .unwrap_or_else(|| failure(FailReason::Closed))
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

/// While the next hop is down and mail is held, connects to it every
/// `relay.probe-interval` (EHLO, QUIT); as soon as it answers, every held message is made
/// due and delivery starts at once.
pub async fn probe_loop(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    // One probe at start even with nothing held, so the status page knows the next hop.
    let mut checked = false;
    loop {
        let interval = Duration::from_micros(d.settings.probe_interval.as_micros());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if !d.hop_down.load(Ordering::Relaxed) || (checked && d.spool.gauge.get().messages == 0) {
            continue;
        }
        checked = true;
        let hops: Vec<NextHop> = d
            .settings
            .next_hops
            .ordered(0)
            .into_iter()
            .filter(|h| !d.guard.is_self(h))
            .cloned()
            .collect();
        for hop in &hops {
            if probe(&d, hop).await {
                d.hop_down.store(false, Ordering::Relaxed);
                let held = d.spool.flush(None).await;
                crate::log!(
                    "next hop {} answers again: delivering {held} held message(s) now",
                    hop.host
                );
                d.kick.notify_one();
                break;
            }
        }
    }
}

async fn probe(d: &Deliverer, hop: &NextHop) -> bool {
    for addr in resolve(hop).await {
        let Ok(Ok(stream)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        else {
            continue;
        };
        let client = Box::new(Client::probe(d.settings.client.clone(), now(d)));
        if matches!(
            drive(d, hop, stream, client, None).await,
            Outcome::Probed(_)
        ) {
            return true;
        }
    }
    false
}
