//! The next-hop probe: every `relay.probe-interval` each route with fixed next hops that
//! has not proved itself since the last round ([`HopStates::wants_probe`]: down, unknown,
//! a recent failure, or no success for a whole interval) is asked (EHLO, QUIT), its next
//! hops in order until one answers. The result goes to [`Deliverer::route_state`], so a
//! route that answers again flushes its held mail, and one that stops answering is
//! noticed within `monitor.down-after` intervals even when no mail is flowing.
//!
//! [`HopStates::wants_probe`]: super::hops::HopStates::wants_probe

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::deliverer::Deliverer;
use super::hops::RouteId;
use super::outbound;
use crate::relay::NextHop;

/// Probes until shutdown (see the module doc).
pub(super) async fn probe_loop(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let interval = Duration::from_micros(d.settings().probe_interval.as_micros());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let routes: Vec<(String, Vec<NextHop>)> = d
            .settings()
            .routes
            .named_hop_lists()
            .map(|(name, l)| {
                let hops = l.ordered(0).into_iter().filter(|h| !d.guard.is_self(h));
                (name, hops.cloned().collect())
            })
            .collect();
        d.hops
            .retain(&routes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
        let every = d.settings().probe_interval;
        for (name, hops) in &routes {
            if hops.is_empty() || !d.hops.wants_probe(name, d.clock.now(), every) {
                continue;
            }
            let mut answered = None;
            for hop in hops {
                if outbound::probe(&d, hop).await {
                    answered = Some(hop);
                    break;
                }
            }
            let hop = answered.unwrap_or(&hops[0]).host.to_string();
            let reason = if answered.is_some() {
                ""
            } else {
                "could not connect to the next hop (probe)"
            };
            d.route_state(RouteId::Delivery(name), answered.is_some(), &hop, reason)
                .await;
        }
    }
}
