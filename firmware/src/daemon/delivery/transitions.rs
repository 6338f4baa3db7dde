//! Next-hop transitions, acted on in one place.
//!
//! [`Deliverer::route_state`] records one result in the route's [`HopHealth`] (through
//! [`super::hops::HopStates`]) and acts on a transition in `Deliverer::on_change`:
//!
//! - **came up** — a delivery route: every held message is made due and delivery woken
//!   (the held mail goes now), and if it had been down the admin is told how much was
//!   held for how long; an upstream silo: it is asked for what it holds for our domains
//!   ([`super::upstream::etrn_upstream`], once per silo that came up);
//! - **went down** — a delivery route: the admin is told ([`notify`]: a warning in the
//!   log, the event log, notices); mail for it is held. An upstream silo: a warning.
//! - **an MX route** (a silo's office, by its MX records) — came up: that domain's held
//!   mail is made due (the office, or a more preferred silo, answers again: "Two tiers" in
//!   the README); went down: a log line. Never the primary, never a notice.
//!
//! - **a notice route** (`notify.via` for the notice recipients' domains): logged only;
//!   when it came up its domain's held notices are made due.
//!
//! When the primary's overall state (all delivery routes together) changes, the firewall
//! follows it ([`follow`], `open-when-primary-down`).
//!
//! [`HopHealth`]: crate::relay::HopHealth

use super::deliverer::{Deliverer, Scope};
use super::hops::RouteId;
use super::{follow, notify};
use crate::monitor::notice::Event;
use crate::relay::health::Change;

impl Deliverer {
    /// Records whether route `id` answered through next hop `hop` (`reason`: why not), and
    /// acts on a transition (`Deliverer::on_change`).
    pub(super) async fn route_state(
        &self,
        id: RouteId<'_>,
        reachable: bool,
        hop: &str,
        reason: &str,
    ) {
        let settings = self.watch.settings();
        let notice_domain = match id {
            RouteId::Delivery(n) => settings
                .notice_routes
                .iter()
                .find(|(r, _)| r == n)
                .map(|(_, d)| d.as_str()),
            _ => None,
        };
        let recorded = self.hops.record(
            &id,
            reachable,
            hop,
            (self.clock.now(), self.clock.unix_seconds()),
            settings.down_after,
            notice_domain.is_some(),
        );
        if let Some((change, before, after)) = recorded {
            match notice_domain {
                Some(domain) => self.on_notice_route(domain, change, hop, reason).await,
                None => self.on_change(id, change, hop, reason).await,
            }
            if before != after {
                self.watch.set_primary(after);
                follow::follow(&self.watch, after);
            }
        }
    }

    /// A route that only carries notices (`notify.via`) came or went: its held notices go
    /// now, or wait; logged only. It is not the primary, and a notice about the notices'
    /// own route could not travel by it anyway.
    async fn on_notice_route(&self, domain: &str, change: Change, hop: &str, reason: &str) {
        match change {
            Change::CameUp { .. } => {
                let made_due = self.make_due(Scope::of(Some(domain))).await;
                crate::log!(
                    "notice relay {hop} for {domain} answers: {made_due} held notice(s) due now"
                );
            }
            Change::WentDown => {
                crate::warn!(
                    "notice relay {hop} for {domain} unreachable ({reason}): notices are held"
                );
            }
        }
    }

    /// The one place a next-hop transition is acted on (see the module doc).
    async fn on_change(&self, id: RouteId<'_>, change: Change, hop: &str, reason: &str) {
        let now = self.clock.unix_seconds();
        match (id, change) {
            (RouteId::Mx(route), Change::CameUp { .. }) => {
                let domain = crate::relay::route::mx_domain(route).unwrap_or_default();
                let made_due = self.make_due(Scope::of(Some(domain))).await;
                crate::log!(
                    "MX host {hop} of {domain} answers: delivering {made_due} held message(s) now"
                );
            }
            (RouteId::Mx(route), Change::WentDown) => {
                let domain = crate::relay::route::mx_domain(route).unwrap_or_default();
                crate::log!("no MX host of {domain} answers ({reason}): its mail is held");
            }
            (RouteId::Upstream(silo), Change::CameUp { .. }) => {
                super::upstream::etrn_upstream(self, silo).await;
            }
            (RouteId::Upstream(silo), Change::WentDown) => {
                crate::warn!("upstream silo {}:{} unreachable", silo.host, silo.port);
                self.watch.events.push(
                    now,
                    "upstream-down",
                    None,
                    &format!(
                        "upstream silo {}:{} unreachable: {reason}",
                        silo.host, silo.port
                    ),
                );
            }
            (RouteId::Delivery(route), Change::CameUp { after, was_down }) => {
                let g = self.spool.gauge.get();
                let made_due = self.make_due(Scope::All).await;
                if !was_down {
                    // Known for the first time since start-up (the notice below says it
                    // for a return).
                    crate::log!(
                        "next hop {hop} ({route}) is up: delivering {made_due} held message(s) now"
                    );
                }
                if was_down {
                    notify::notify(
                        self,
                        Event::PrimaryUp {
                            route: route.to_owned(),
                            hop: hop.to_owned(),
                            down_secs: after.as_secs(),
                            held: g.messages,
                            held_bytes: g.bytes,
                        },
                    )
                    .await;
                } else {
                    self.watch.events.push(
                        now,
                        "primary-up",
                        None,
                        &format!("next hop {hop} ({route}) answers"),
                    );
                }
            }
            (RouteId::Delivery(route), Change::WentDown) => {
                let held = self.spool.gauge.get().messages;
                notify::notify(
                    self,
                    Event::PrimaryDown {
                        route: route.to_owned(),
                        hop: hop.to_owned(),
                        held,
                        reason: reason.to_owned(),
                    },
                )
                .await;
            }
        }
    }
}
