//! The next-hop probe: while a route is down and mail is held, the route's next hops are
//! asked (EHLO, QUIT) every `relay.probe-interval`; the first answer makes the held mail due.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::deliverer::Deliverer;
use super::outbound;
use crate::relay::{HopKey, NextHop};

/// While the next hop is down and mail is held, connects to it every
/// `relay.probe-interval` (EHLO, QUIT); as soon as it answers, every held message is made
/// due and delivery starts at once.
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
