//! The delivery loop: every [`TICK`] (or when kicked) it takes due lanes from the spool, one
//! per recipient domain, and runs up to [`LANES_MAX`] of them at once; each sends up to
//! [`LANE_TURN`] messages, records each attempt and queues the notices it calls for.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::deliverer::Deliverer;
use super::hops::RouteId;
use super::notice::{Notice, original_headers, send_dsn};
use super::outbound::{self, HopConnection};
use super::{driver, notify};
use crate::monitor::metrics::Counters;
use crate::monitor::notice::Event;
use crate::relay::client::{FailReason, Outcome};
use crate::relay::dsn::DsnKind;
use crate::relay::nexthop::MxError;
use crate::relay::{Lane, NextHop, NextHops, RelaySettings, Target, attempt, record_attempts};
use crate::spool::MessageMeta;
use crate::spool::message::domain_of;

/// How often due messages are looked for without a kick.
pub const TICK: Duration = Duration::from_secs(1);
/// Most lanes (domains) delivered at once.
pub const LANES_MAX: usize = 8;
/// Most messages a lane sends in one turn before other domains get theirs.
pub const LANE_TURN: usize = 20;
/// Messages fetched from the spool at a time by a lane.
const LANE_FETCH: usize = 4;

/// Runs until `shutdown` flips; lanes in progress finish the message at hand (its record
/// is written) and stop.
pub(super) async fn run(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let workers = Arc::new(Semaphore::new(LANES_MAX));
    let busy: Arc<Mutex<Vec<Lane>>> = Arc::default();
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
                crate::daemon::task::spawn(async move {
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
    let _ = tokio::time::timeout(
        crate::daemon::shutdown::GRACE,
        workers.acquire_many(LANES_MAX as u32),
    )
    .await;
}

/// One turn of one lane: its due messages, oldest first, over kept connections.
async fn deliver_lane(d: &Deliverer, lane: Lane, stop: watch::Receiver<bool>) {
    let mut conn: Option<HopConnection> = None;
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
            let Some(claim) = d.in_flight.try_claim(meta.id) else {
                continue;
            };
            deliver_one(d, meta, &mut conn).await;
            drop(claim);
            sent += 1;
        }
    }
    if let Some(c) = conn {
        c.quit(d).await;
    }
}

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

/// The route mail for `domain` takes and its next hops (ourselves left out); `None` when
/// it has none (unrouted, or DNS failed). Inbound's recipient checks ask this.
pub async fn hops_for_domain(d: &Deliverer, domain: &str) -> Option<(String, Vec<NextHop>)> {
    let settings = d.settings();
    let route = settings.routes.for_domain(domain);
    let name = route.name(domain);
    let hops = hops_for(d, route.target, domain, 0).await.ok()?;
    (!hops.is_empty()).then_some((name, hops))
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
async fn deliver_one(d: &Deliverer, mut meta: MessageMeta, conn: &mut Option<HopConnection>) {
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
                    driver::failure(FailReason::Unrouted)
                }
                Ok(hops) => {
                    let slots = d.slots(name);
                    let Ok(permit) = slots.acquire_owned().await else {
                        return;
                    };
                    let sent = outbound::open_and_send(d, name, &hops, job, &meta, permit).await;
                    hop_name = sent.hop;
                    let unreachable = match &sent.outcome {
                        Outcome::Failed(f) if f.reason == FailReason::Connect => {
                            Some(f.to_string())
                        }
                        _ => None,
                    };
                    // Back before the probe saw it (new mail got through): what it held
                    // back goes now, not at its retry time. Down after `down-after`
                    // attempts or probes in a row could not connect. An MX route too: a
                    // silo learns that the office, or a more preferred silo, is back.
                    let id = match target {
                        Target::Mx => RouteId::Mx(name),
                        _ => RouteId::Delivery(name),
                    };
                    d.route_state(
                        id,
                        unreachable.is_none(),
                        &hop_name,
                        unreachable.as_deref().unwrap_or(""),
                    )
                    .await;
                    *conn = sent.kept;
                    sent.outcome
                }
                Err(e) => {
                    crate::log!("{}: no route to {domain}: {e}", meta.id);
                    // Permanent for a null MX or a domain that does not exist
                    // (`Failure::permanent`).
                    driver::failure(FailReason::NoRoute(e))
                }
            },
        };
        conn_use = conn.as_ref().map_or(1, HopConnection::messages);
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
        crate::warn!("{id}: could not record the attempt: {e}");
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
    let w = &d.watch;
    let (kind, text) = match failed {
        _ if result.done && result.bounces.is_empty() => {
            w.delivered();
            (
                "delivered",
                format!(
                    "delivered {id} to {hop_name} ({delivered} recipients, conn_use={conn_use})"
                ),
            )
        }
        Some(f) if parts.len() == 1 && result.bounces.is_empty() => {
            Counters::inc(&w.counters.deferred);
            (
                "deferred",
                format!("deferred {id}: {f} (attempt {})", meta.attempts),
            )
        }
        _ => {
            if result.done && delivered > 0 {
                w.delivered();
            } else if !result.done {
                Counters::inc(&w.counters.deferred);
            }
            (
                if result.bounces.is_empty() {
                    "deferred"
                } else {
                    "bounced"
                },
                format!(
                    "attempted {id}: {delivered} delivered, {} bounced, done={}",
                    result.bounces.len(),
                    result.done
                ),
            )
        }
    };
    crate::log!("{text}");
    w.events.push(now, kind, Some(id.to_string()), &text);
    for _ in &result.bounces {
        Counters::inc(&w.counters.bounced);
    }
    let expired = result
        .bounces
        .iter()
        .filter(|b| b.status == attempt::EXPIRED_STATUS)
        .count();
    if expired > 0 {
        Counters::inc(&w.counters.expired);
        notify::notify(
            d,
            Event::Expired {
                id: id.to_string(),
                sender: meta.sender.to_string(),
                recipients: expired as u64,
                days: settings.retry.lifetime.as_secs() / 86_400,
            },
        )
        .await;
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
                Notice {
                    recipient: addr,
                    status: b.status,
                    reply: b.reply.as_ref().map(|r| r.to_string()),
                    reason: b.reason.clone(),
                }
            })
            .collect();
        send_dsn(d, &meta, &headers, DsnKind::Failure, &recipients, &hop_name).await;
    }
    if result.warn {
        let pending: Vec<Notice> = meta
            .pending()
            .map(|r| Notice {
                recipient: r.address.to_string(),
                status: (4, 0, 0),
                reply: None,
                reason: meta.last_error.to_string(),
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

/// Next hops from `domain`'s MX records (we and anything less preferred left out).
pub(super) async fn mx_hops(
    d: &Deliverer,
    domain: &str,
) -> Result<crate::relay::NextHops, MxError> {
    d.dns
        .next_hops(domain, &d.guard, crate::relay::nexthop::DEFAULT_PORT)
        .await
}
