//! The edge's watch on its upstream silo (`relay.upstream-silo`): when the silo becomes
//! reachable — at start-up, or when the office's internet link comes back — mailbag asks
//! it to deliver what it holds for the office's domains at once (ETRN, RFC 1985), instead
//! of waiting for the silo's next retry.
//!
//! - Every `relay.probe-interval` the silo is probed (connect, EHLO, QUIT) and the result
//!   recorded as the silo's next-hop state ([`Deliverer::route_state`] with
//!   [`RouteId::Upstream`]). Its "came up" transition — and nothing else — calls
//!   [`etrn_upstream`]: one ETRN per accepted domain; the replies are logged. While the
//!   silo stays reachable nothing more is sent.
//! - The WAN hotplug's `mailbag etrn` does the same at once when the link comes up; both
//!   are harmless together (a second ETRN only finds less to flush).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::deliverer::Deliverer;
use super::hops::RouteId;
use super::outbound;
use crate::relay::NextHop;
use crate::relay::client::Outcome;

/// Watches `silo` until shutdown.
pub(super) async fn watch_silo(
    d: Arc<Deliverer>,
    silo: NextHop,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let reachable = outbound::probe(&d, &silo).await;
        let reason = if reachable {
            ""
        } else {
            "could not connect (probe)"
        };
        d.route_state(
            RouteId::Upstream(&silo),
            reachable,
            &silo.host.to_string(),
            reason,
        )
        .await;
        let interval = Duration::from_micros(d.settings().probe_interval.as_micros());
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Asks `silo` to deliver what it holds for each accepted domain now (one ETRN per
/// domain, RFC 1985). The one place ETRN goes upstream: called when a silo comes up.
pub(super) async fn etrn_upstream(d: &Deliverer, silo: &NextHop) {
    crate::log!(
        "upstream silo {} reachable: asking it to deliver held mail (ETRN)",
        silo.host
    );
    let domains = d.etrn_domains.get();
    for domain in domains.iter() {
        match outbound::etrn(d, silo, domain).await {
            Outcome::Etrn(reply) => crate::log!("ETRN {domain} to {}: {reply}", silo.host),
            Outcome::Failed(f) => crate::warn!("ETRN {domain} to {}: {f}", silo.host),
            _ => {}
        }
    }
}
