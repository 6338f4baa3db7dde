//! The edge's watch on its upstream silos (`relay.upstream-silo`, one watch per silo of
//! the chain): when a silo becomes reachable — at start-up, or when the office's internet
//! link comes back — mailbag asks it to deliver what it holds for the office's domains at
//! once (ETRN, RFC 1985), instead of waiting for the silo's next retry or probe.
//!
//! - Every `relay.probe-interval` each silo is probed (connect, EHLO, QUIT). On the change
//!   from unreachable (or unknown, at start) to reachable, one ETRN per accepted domain is
//!   sent; the replies are logged. While the silo stays reachable nothing more is sent.
//!   Each silo has its own watch, so a silo that is down never delays the others' ETRN.
//! - The result is published for the status page ([`super::DeliveryHandle::status`]).
//! - The WAN hotplug's `mailbag etrn` does the same at once when the link comes up; both
//!   are harmless together (a second ETRN only finds less to flush).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::deliverer::Deliverer;
use super::outbound;
use crate::relay::NextHop;
use crate::relay::client::Outcome;

/// Watches `silo`, the `index`th of `relay.upstream-silo`, until shutdown; ETRN goes for
/// the accepted domains in force ([`Deliverer::etrn_domains`]).
pub(super) async fn watch_silo(
    d: Arc<Deliverer>,
    silo: NextHop,
    index: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut was_up = false;
    loop {
        let reachable = outbound::probe(&d, &silo).await;
        if let Some(state) = d.upstream_up.get(index) {
            state.store(reachable, Ordering::Relaxed);
        }
        if reachable && !was_up {
            crate::log!(
                "upstream silo {} reachable: asking it to deliver held mail (ETRN)",
                silo.host
            );
            let domains = d.etrn_domains.get();
            for domain in domains.iter() {
                match outbound::etrn(&d, &silo, domain).await {
                    Outcome::Etrn(reply) => crate::log!("ETRN {domain} to {}: {reply}", silo.host),
                    Outcome::Failed(f) => crate::log!("ETRN {domain} to {}: {f}", silo.host),
                    _ => {}
                }
            }
        } else if !reachable && was_up {
            crate::log!("upstream silo {} unreachable", silo.host);
        }
        was_up = reachable;
        let interval = Duration::from_micros(d.settings().probe_interval.as_micros());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
