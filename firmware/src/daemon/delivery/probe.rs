//! The next-hop probe: every `relay.probe-interval` each route with fixed next hops that
//! has not proved itself since the last round ([`HopStates::wants_probe`]: down, unknown,
//! a recent failure, or no success for a whole interval) is asked (EHLO, QUIT), its next
//! hops in order until one answers. The result goes to [`Deliverer::route_state`], so a
//! route that answers again flushes its held mail, and one that stops answering is
//! noticed within `monitor.down-after` intervals even when no mail is flowing.
//!
//! An MX route (a silo delivering an office's mail) that is down or failing
//! ([`HopStates::mx_to_probe`]) is probed through its MX records, looked up again each
//! time: the office's edge first, then any silo more preferred than this one. So a
//! lower-tier silo notices both the edge's return and, while the edge is still down, the
//! return of the silo above it — and hands that domain's held mail on at once ("Two tiers"
//! in the README). Mail held across a restart for MX routes is tried once at start-up:
//! nothing is known of those routes yet.
//!
//! [`HopStates::mx_to_probe`]: super::hops::HopStates::mx_to_probe
//! [`HopStates::wants_probe`]: super::hops::HopStates::wants_probe

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::deliverer::{Deliverer, Scope};
use super::hops::RouteId;
use super::{lanes, outbound};
use crate::relay::{NextHop, route};

/// Probes until shutdown (see the module doc).
pub(super) async fn probe_loop(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let mut first = true;
    loop {
        let interval = Duration::from_micros(d.settings().probe_interval.as_micros());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if std::mem::take(&mut first)
            && d.settings().routes.uses_mx()
            && d.spool.gauge.get().messages > 0
        {
            let held = d.make_due(Scope::All).await;
            crate::log!("start-up: trying {held} held message(s) once");
        }
        mx_round(&d).await;
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

/// One probe of each MX route that is down or failing: its MX hosts ahead of us, in order
/// until one answers.
async fn mx_round(d: &Deliverer) {
    for name in d.hops.mx_to_probe() {
        let Some(domain) = route::mx_domain(&name) else {
            continue;
        };
        let Ok(hops) = lanes::mx_hops(d, domain).await else {
            continue;
        };
        let hops: Vec<&NextHop> = hops
            .ordered(0)
            .into_iter()
            .filter(|h| !d.guard.is_self(h))
            .collect();
        let mut answered = None;
        for hop in &hops {
            if outbound::probe(d, hop).await {
                answered = Some(*hop);
                break;
            }
        }
        let hop = answered
            .or(hops.first().copied())
            .map_or_else(String::new, |h| h.host.to_string());
        let reason = if answered.is_some() {
            ""
        } else {
            "no MX host answers (probe)"
        };
        d.route_state(RouteId::Mx(&name), answered.is_some(), &hop, reason)
            .await;
    }
}
