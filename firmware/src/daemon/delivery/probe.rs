//! The next-hop probe: while a route is down and mail is held, the route's next hops are
//! asked (EHLO, QUIT) every `relay.probe-interval`; the first answer makes the held mail due.
//!
//! A next-hop list is probed as configured. An MX route (a silo delivering an office's
//! mail) is probed through its MX records, looked up again each time: the office's edge
//! first, then any silo more preferred than this one. So a lower-tier silo notices both
//! the edge's return and, while the edge is still down, the return of the silo above it —
//! and hands its held mail on at once ("Two tiers" in the README).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::deliverer::{Deliverer, Scope};
use super::{lanes, outbound};
use crate::relay::{HopKey, NextHop, route};

/// A route's name and the hosts to ask for it, in order.
type Watched = Vec<(String, Vec<NextHop>)>;

/// While a next hop is down and mail is held, connects to it every
/// `relay.probe-interval` (EHLO, QUIT); as soon as it answers, the held mail is made due
/// and delivery starts at once.
pub(super) async fn probe_loop(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
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
        let first = !checked;
        checked = true;
        let (mut watched, down_mx) = watched(&d);
        if first && d.settings().routes.uses_mx() && d.spool.gauge.get().messages > 0 {
            // Held across a restart, delivered by MX: nothing is known of those routes
            // yet, and there is no list to probe. One attempt each tells (and delivers).
            let held = d.make_due(Scope::All).await;
            crate::log!("start-up: trying {held} held message(s) once");
        }
        for (name, domain) in down_mx {
            if let Ok(hops) = lanes::mx_hops(&d, &domain).await {
                let list = hops.ordered(0).into_iter().filter(|h| !d.guard.is_self(h));
                watched.push((name, list.cloned().collect()));
            }
        }
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

/// The next-hop lists to probe (those known to be down, or all while nothing is known
/// yet), and the MX routes known to be down: (name, domain).
fn watched(d: &Deliverer) -> (Watched, Vec<(String, String)>) {
    let down = d.down_routes.lock().unwrap_or_else(PoisonError::into_inner);
    let lists = d
        .settings()
        .routes
        .named_hop_lists()
        .filter(|(name, _)| down.is_empty() || down.contains_key(&HopKey::of(name)))
        .map(|(name, l)| {
            let hops = l.ordered(0).into_iter().filter(|h| !d.guard.is_self(h));
            (name, hops.cloned().collect())
        })
        .collect();
    let mx = down
        .values()
        .filter_map(|name| route::mx_domain(name).map(|dom| (name.clone(), dom.to_owned())))
        .collect();
    (lists, mx)
}
