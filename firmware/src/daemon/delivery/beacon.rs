//! The edge's heartbeat: every `monitor.beacon-interval` one signed beacon
//! ([`crate::monitor::beacon`]) to each upstream silo, as `XBEACON` over SMTP (the link the
//! edge already uses; STARTTLS per `relay.tls-policy`). Nothing is sent without
//! `monitor.beacon-secret` or an upstream silo. The silo's answer is logged only when it
//! changes (accepted ↔ refused or unreachable), so a healthy edge logs nothing.

use std::sync::atomic::Ordering;

use super::deliverer::Deliverer;
use super::hops::Overall;
use super::outbound;
use crate::monitor::beacon::{Beacon, PrimaryReport};
use crate::monitor::metrics::Counters;
use crate::relay::NextHop;

/// The beacon this edge sends now.
pub(super) fn current(d: &Deliverer) -> Option<(Beacon, String)> {
    let s = d.watch.settings();
    if s.monitor.beacon_secret.is_empty() {
        return None;
    }
    let g = d.spool.gauge.get();
    let now = d.clock.unix_seconds();
    let beacon = Beacon {
        router: if s.monitor.router_id.is_empty() {
            s.hostname.clone()
        } else {
            s.monitor.router_id.clone()
        },
        time: now,
        seq: u64::from(d.watch.beacon_seq.fetch_add(1, Ordering::Relaxed)),
        uptime: now.saturating_sub(d.watch.started_unix),
        held: g.messages,
        held_bytes: g.bytes,
        primary: match d.watch.primary() {
            Overall::Up => PrimaryReport::Up,
            Overall::Down => PrimaryReport::Down,
            Overall::Unknown => PrimaryReport::Unknown,
        },
        spool_free: g.max_bytes.saturating_sub(g.bytes),
    };
    let line = beacon.encode(s.monitor.beacon_secret.as_bytes());
    Some((beacon, line))
}

/// Sends the current beacon to every upstream silo.
pub(super) async fn send_all(d: &Deliverer) {
    let s = d.watch.settings();
    if s.upstream_silo.is_empty() {
        return;
    }
    let Some((_, line)) = current(d) else {
        return;
    };
    for silo in &s.upstream_silo {
        if let Ok(hop) = NextHop::parse(silo, 0) {
            send(d, &hop, &line).await;
        }
    }
}

async fn send(d: &Deliverer, silo: &NextHop, line: &str) {
    let result = outbound::beacon(d, silo, line).await;
    let ok = result.is_ok();
    if ok {
        Counters::inc(&d.watch.counters.beacons_sent);
    }
    // 0: nothing sent yet, 1: accepted, 2: refused or unreachable.
    let state = if ok { 1 } else { 2 };
    if d.watch.beacon_state.swap(state, Ordering::Relaxed) == state {
        return;
    }
    match result {
        Ok(reply) => crate::log!("beacon to {}:{}: {reply}", silo.host, silo.port),
        Err(e) => crate::warn!("beacon to {}:{}: {e}", silo.host, silo.port),
    }
}
