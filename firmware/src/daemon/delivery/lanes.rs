//! Delivery: takes due messages from the spool, sends them to their next hops, records
//! each attempt (per-recipient state, next attempt, last error) durably, removes delivered
//! mail and queues bounces and delay warnings.
//!
//! - **When.** Every [`TICK`], and at once when kicked (a new message, ETRN, a flush, the
//!   next hop answering a probe again).
//! - **Order.** Held mail is delivered in lanes, one per recipient domain
//!   ([`crate::relay::queue`]): oldest first within a domain, round-robin across domains.
//!   A lane's worker sends up to [`LANE_TURN`] messages over one kept connection, then
//!   gives the next domain its turn. At most [`LANES_MAX`] lanes run at once.
//! - **Where.** Each pending recipient goes to its domain's route (`relay.routes`, else
//!   `relay.next-hops`, else MX), with the loop guard refusing ourselves; a message with
//!   recipients on two routes goes out in two transactions, recorded as one attempt.
//! - **How much.** At most `relay.max-per-hop` connections per route at once: a recovered
//!   server is not hammered.
//! - **Order of effects.** The record is updated (or removed) *before* a bounce is queued,
//!   so a crash can repeat a bounce but never lose a recipient's state. Delivery is
//!   at-least-once: a crash between the next hop's 250 and our record update delivers that
//!   message again after restart.
//! - **TLS.** STARTTLS is used when offered (`opportunistic`: certificate not checked,
//!   like Postfix's `may`); `require` fails the attempt when the hop has no STARTTLS;
//!   `require-verify` checks the certificate against the system's CA file.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailbag_hal::Clock;
use tokio::sync::{Notify, Semaphore, watch};

use super::outbound::{self, Conn};
use super::tls::TlsClients;
use crate::daemon::spool::SpoolHandle;
use crate::relay::client::{FailReason, Outcome};
use crate::relay::dsn::{DsnKind, DsnRecipient, Report, write_dsn};
use crate::relay::nexthop::{DnsError, MxError};
use crate::relay::{
    DomainKey, HopKey, LoopGuard, NextHop, NextHops, RelaySettings, Target, attempt,
    record_attempts,
};
use crate::spool::message::domain_of;
use crate::spool::{Envelope, MessageMeta};

/// How often due messages are looked for without a kick.
pub const TICK: Duration = Duration::from_secs(1);
/// Most lanes (domains) delivered at once.
pub const LANES_MAX: usize = 8;
/// Most messages a lane sends in one turn before other domains get theirs.
pub const LANE_TURN: usize = 20;
/// Messages fetched from the spool at a time by a lane.
const LANE_FETCH: usize = 4;
/// Original headers read into a bounce (the DSN writer cuts them at its own limit).
const DSN_HEADERS_READ: usize = 16 * 1024;

/// The delivery task's shared parts.
pub struct Deliverer {
    /// The spool thread.
    pub spool: SpoolHandle,
    /// Parsed `[relay]` in force (see [`Deliverer::settings`]); replaced on reload.
    pub settings: crate::daemon::live::Live<RelaySettings>,
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
    /// Set when the last attempt could not reach any configured next hop; the probe then
    /// watches for its return.
    pub hop_down: Arc<AtomicBool>,
    /// Routes (by name) whose next hops could not be reached at the last attempt; the
    /// probe watches these, and the first success of one flushes the held mail.
    pub down_routes: Mutex<HashSet<HopKey>>,
    /// DNS for delivery by MX and for next-hop names.
    pub dns: Arc<super::dns::DnsResolver>,
    /// Connection permits per route (`relay.max-per-hop` each).
    pub hop_slots: Mutex<HashMap<HopKey, Arc<Semaphore>>>,
    /// Ids of messages being worked on: by a lane while it delivers them, or claimed by
    /// an admin action (see `queue_actions`). Neither touches a message the other holds.
    pub in_flight: Arc<Mutex<HashSet<u64>>>,
    /// The upstream silo answered its last probe (edge role; see `upstream`).
    pub upstream_up: Arc<AtomicBool>,
}

impl Deliverer {
    /// Records whether route `name` answered (through next hop `hop`). When it just came
    /// back (it was down, or its state was unknown since start-up), every held message is
    /// made due and delivery woken: the held mail goes now.
    pub async fn route_state(&self, name: &str, reachable: bool, hop: &str) {
        let came_back = {
            let key = HopKey::of(name);
            let mut down = self
                .down_routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let unknown = down.is_empty() && self.hop_down.load(Ordering::Relaxed);
            let was_down = down.contains(&key) || unknown;
            if reachable {
                down.remove(&key);
            } else {
                down.insert(key);
            }
            self.hop_down.store(!down.is_empty(), Ordering::Relaxed);
            was_down && reachable
        };
        if came_back {
            let held = self.spool.flush(None).await;
            crate::log!("next hop {hop} answers again: delivering {held} held message(s) now");
            self.kick.notify_one();
        }
    }

    /// The relay settings in force; an attempt takes them once and keeps them throughout.
    pub fn settings(&self) -> Arc<RelaySettings> {
        self.settings.get()
    }

    /// Marks `id` as being worked on; false when someone else holds it.
    pub fn claim(&self, id: u64) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }

    /// Lets go of `id`.
    pub fn release(&self, id: u64) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    fn slots(&self, route: &str) -> Arc<Semaphore> {
        let mut map = self
            .hop_slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Routes nobody uses any more (an MX route per domain) are forgotten.
        let full = self.settings().max_per_hop.max(1) as usize;
        map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
        Arc::clone(
            map.entry(HopKey::of(route))
                .or_insert_with(|| Arc::new(Semaphore::new(full))),
        )
    }
}

/// Runs until `shutdown` flips; lanes in progress finish the message at hand (its record
/// is written) and stop.
pub async fn run(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let workers = Arc::new(Semaphore::new(LANES_MAX));
    let busy: Arc<Mutex<Vec<DomainKey>>> = Arc::default();
    loop {
        let free = workers.available_permits();
        if free > 0 {
            let taken = busy.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let lanes = d.spool.lanes(d.clock.unix_seconds(), taken, free).await;
            for lane in lanes {
                let Ok(permit) = Arc::clone(&workers).try_acquire_owned() else {
                    break;
                };
                busy.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(lane);
                let (d2, busy2, stop) = (Arc::clone(&d), Arc::clone(&busy), shutdown.clone());
                tokio::spawn(async move {
                    deliver_lane(&d2, lane, stop).await;
                    busy2
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|l| *l != lane);
                    drop(permit);
                    // A lane is free: look again without waiting for the tick.
                    d2.kick.notify_one();
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = d.kick.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Let attempts in progress record their outcome (bounded: a stuck next hop is dropped,
    // and its message is simply tried again after restart).
    let _ =
        tokio::time::timeout(crate::daemon::GRACE, workers.acquire_many(LANES_MAX as u32)).await;
}

/// One turn of one lane: its due messages, oldest first, over kept connections.
async fn deliver_lane(d: &Deliverer, lane: DomainKey, stop: watch::Receiver<bool>) {
    let mut conn: Option<Conn> = None;
    let mut sent = 0;
    'turn: while sent < LANE_TURN {
        let batch = d
            .spool
            .lane_due(
                lane,
                d.clock.unix_seconds(),
                LANE_FETCH.min(LANE_TURN - sent),
            )
            .await;
        if batch.is_empty() {
            break;
        }
        for meta in batch {
            if *stop.borrow() {
                break 'turn;
            }
            // Checked and marked in one step: admin actions claim ids from other threads;
            // a message an admin holds is skipped (it is being deleted or bounced).
            let id = meta.id.0;
            if !d.claim(id) {
                continue;
            }
            deliver_one(d, meta, &mut conn).await;
            d.release(id);
            sent += 1;
        }
    }
    if let Some(c) = conn {
        c.quit(d).await;
    }
}

/// One recipient line of a bounce or delay notice: address, RFC 3463 status, the next
/// hop's reply, and our words for people.
pub(crate) type Notice = (String, (u8, u16, u16), Option<String>, String);

/// The pending recipients of `meta` grouped by route: (route name, domain, target).
fn route_groups<'s>(
    settings: &'s RelaySettings,
    meta: &MessageMeta,
) -> Vec<(String, String, &'s Target)> {
    let mut groups: Vec<(String, String, &Target)> = Vec::new();
    for r in meta.pending() {
        let domain = domain_of(&r.address);
        let route = settings.routes.for_domain(&domain);
        let name = route.name(&domain);
        if !groups.iter().any(|(n, _, _)| *n == name) {
            groups.push((name, domain, route.target));
        }
    }
    groups
}

/// The next hops to try for `target`, in order, ourselves left out.
async fn hops_for(
    d: &Deliverer,
    target: &Target,
    domain: &str,
    seed: u64,
) -> Result<Vec<NextHop>, MxError> {
    let ours = |hops: &NextHops| -> Vec<NextHop> {
        let list = hops.ordered(seed).into_iter();
        list.filter(|h| !d.guard.is_self(h)).cloned().collect()
    };
    let list = match target {
        Target::Hops(h) => ours(h),
        Target::Mx => ours(&mx_hops(d, domain).await?),
        Target::Unrouted => return Ok(Vec::new()),
    };
    if list.is_empty() && *target != Target::Unrouted {
        return Err(MxError::LoopsToUs);
    }
    Ok(list)
}

/// One attempt for one message: each route's recipients to that route's next hops; the
/// result is recorded, bounces and warnings queued.
async fn deliver_one(d: &Deliverer, mut meta: MessageMeta, conn: &mut Option<Conn>) {
    let seed = meta.id.0 ^ u64::from(meta.attempts);
    // Taken once: a reload during the attempt applies from the next one.
    let settings = d.settings();
    let groups = route_groups(&settings, &meta);
    let mut parts: Vec<(
        heapless::Vec<usize, { crate::spool::message::RECIPIENTS_MAX }>,
        Outcome,
    )> = Vec::new();
    let mut hop_name = String::new();
    // Postfix's conn_use: which message on its connection this one was.
    let mut conn_use = 1;
    for (name, domain, target) in &groups {
        let (job, indices) = attempt::job(&meta, |a| {
            let dom = domain_of(a);
            settings.routes.for_domain(&dom).name(&dom) == *name
        });
        // The kept connection, when it goes the same way.
        let mut outcome = None;
        if let Some(c) = conn.as_mut().filter(|c| c.route == *name && c.usable()) {
            hop_name = c.hop_name();
            outcome = c.send(d, job.clone(), &meta).await;
        }
        if conn
            .as_ref()
            .is_some_and(|c| c.route != *name || !c.usable())
        {
            if let Some(old) = conn.take() {
                old.quit(d).await;
            }
        }
        let outcome = match outcome {
            Some(o) => o,
            None => match hops_for(d, target, domain, seed).await {
                Ok(hops) if hops.is_empty() => {
                    crate::log!("{}: no next hop configured for {domain}; held", meta.id);
                    outbound::failure(FailReason::Unrouted)
                }
                Ok(hops) => {
                    let slots = d.slots(name);
                    let Ok(permit) = slots.acquire_owned().await else {
                        return;
                    };
                    let (o, h, kept) =
                        outbound::open_and_send(d, name, &hops, job, &meta, permit).await;
                    hop_name = h;
                    if matches!(target, Target::Hops(_)) {
                        let unreachable =
                            matches!(&o, Outcome::Failed(f) if f.reason == FailReason::Connect);
                        // Back before the probe saw it (new mail got through): what it held
                        // back goes now, not at its retry time.
                        d.route_state(name, !unreachable, &hop_name).await;
                    }
                    *conn = kept;
                    o
                }
                Err(e) => {
                    crate::log!("{}: no route to {domain}: {e}", meta.id);
                    let permanent = matches!(e, MxError::NullMx | MxError::Dns(DnsError::NotFound));
                    Outcome::Failed(crate::relay::client::Failure {
                        permanent,
                        reason: FailReason::NoRoute(e),
                        reply: None,
                    })
                }
            },
        };
        conn_use = conn.as_ref().map_or(1, Conn::messages);
        parts.push((indices, outcome));
    }
    if parts.is_empty() {
        return;
    }
    let now = d.clock.unix_seconds();
    let id = meta.id;
    let refs: Vec<(&[usize], &Outcome)> = parts.iter().map(|(i, o)| (i.as_slice(), o)).collect();
    let result = record_attempts(&mut meta, &refs, &settings.retry, now);
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
    let failed = parts.iter().find_map(|(_, o)| match o {
        Outcome::Failed(f) => Some(f),
        _ => None,
    });
    match failed {
        _ if result.done && result.bounces.is_empty() => {
            crate::log!(
                "delivered {id} to {hop_name} ({delivered} recipients, conn_use={conn_use})"
            )
        }
        Some(f) if parts.len() == 1 => {
            crate::log!("deferred {id}: {f} (attempt {})", meta.attempts)
        }
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
        let until = meta.received_unix + settings.retry.lifetime.as_secs();
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
pub(crate) async fn original_headers(d: &Deliverer, meta: &MessageMeta) -> Vec<u8> {
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
pub(crate) async fn send_dsn(
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

/// While the next hop is down and mail is held, connects to it every
/// `relay.probe-interval` (EHLO, QUIT); as soon as it answers, every held message is made
/// due and delivery starts at once.
pub async fn probe_loop(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    // One probe at start even with nothing held, so the status page knows the next hop.
    let mut checked = false;
    loop {
        let interval = Duration::from_micros(d.settings().probe_interval.as_micros());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if !d.hop_down.load(Ordering::Relaxed) || (checked && d.spool.gauge.get().messages == 0) {
            continue;
        }
        checked = true;
        // The routes known to be down, or all of them while nothing is known yet.
        let watched: Vec<(String, Vec<NextHop>)> = {
            let down = d.down_routes.lock().unwrap_or_else(PoisonError::into_inner);
            d.settings()
                .routes
                .named_hop_lists()
                .filter(|(name, _)| down.is_empty() || down.contains(&HopKey::of(name)))
                .map(|(name, l)| {
                    let hops = l.ordered(0).into_iter().filter(|h| !d.guard.is_self(h));
                    (name, hops.cloned().collect())
                })
                .collect()
        };
        for (name, hops) in &watched {
            for hop in hops {
                if outbound::probe(&d, hop).await {
                    d.route_state(name, true, &hop.host.to_string()).await;
                    break;
                }
            }
        }
    }
}

/// Next hops from `domain`'s MX records (we and anything less preferred left out).
async fn mx_hops(d: &Deliverer, domain: &str) -> Result<crate::relay::NextHops, MxError> {
    d.dns
        .next_hops(domain, &d.guard, crate::relay::nexthop::DEFAULT_PORT)
        .await
}
