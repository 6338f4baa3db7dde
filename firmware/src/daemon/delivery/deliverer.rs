//! [`Deliverer`]: what the delivery tasks share — the spool handle, the relay settings in
//! force, the loop guard, DNS, TLS client configurations, connection permits per route, the
//! next-hop state and the ids being worked on. Private to delivery: the rest of the daemon
//! holds a [`DeliveryHandle`](super::DeliveryHandle).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mailbag_hal::Clock;
use tokio::sync::{Notify, Semaphore};

use super::claims::InFlight;
use super::tls::TlsClients;
use crate::daemon::live::Live;
use crate::daemon::spool::SpoolHandle;
use crate::relay::{HopKey, LoopGuard, RelaySettings, route};

/// Which held mail a flush makes due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything held.
    All,
    /// Mail whose first recipient is in this domain (lower-case).
    Domain(String),
}

impl Scope {
    /// `Some(domain)` → that domain (lower-cased), `None` → all.
    pub fn of(domain: Option<&str>) -> Self {
        domain.map_or(Self::All, |d| Self::Domain(d.to_ascii_lowercase()))
    }

    pub(super) fn into_domain(self) -> Option<String> {
        match self {
            Self::All => None,
            Self::Domain(d) => Some(d),
        }
    }
}

/// The delivery tasks' shared parts.
pub(super) struct Deliverer {
    /// The spool thread.
    pub(super) spool: SpoolHandle,
    /// Parsed `[relay]` in force (see [`Deliverer::settings`]); replaced on reload.
    pub(super) settings: Live<RelaySettings>,
    /// The accepted domains (`policy.domains`, lower-case): what ETRN asks the upstream
    /// silo for; replaced on reload.
    pub(super) etrn_domains: Live<Vec<String>>,
    /// Refuses next hops that are this daemon.
    pub(super) guard: LoopGuard,
    /// Time.
    pub(super) clock: Arc<dyn Clock>,
    /// Wakes the loop (new mail, ETRN, flush).
    pub(super) kick: Notify,
    /// Our host name (DSN Reporting-MTA).
    pub(super) hostname: String,
    /// TLS client configurations: (no verification, verification against system CAs).
    pub(super) tls: TlsClients,
    /// Set when the last attempt could not reach any configured next hop; the probe then
    /// watches for its return.
    pub(super) hop_down: AtomicBool,
    /// Routes whose next hops could not be reached at the last attempt, with their names
    /// (an MX route's name says its domain); the probe watches these, and the first success
    /// of one flushes the held mail.
    pub(super) down_routes: Mutex<HashMap<HopKey, String>>,
    /// DNS for delivery by MX and for next-hop names.
    pub(super) dns: super::dns::DnsResolver,
    /// Connection permits per route (`relay.max-per-hop` each).
    pub(super) hop_slots: Mutex<HashMap<HopKey, Arc<Semaphore>>>,
    /// Ids of messages being worked on: by a lane while it delivers them, or claimed by
    /// an admin action. Neither touches a message the other holds.
    pub(super) in_flight: InFlight,
    /// Per `relay.upstream-silo` entry, in order: the silo answered its last probe (edge
    /// role; see `upstream`).
    pub(super) upstream_up: Vec<AtomicBool>,
}

impl Deliverer {
    /// Makes held mail (of `scope`) due now and wakes the lanes; how many messages that
    /// covers. The one place held mail is made due: a flush (ETRN, `queue flush`, the page),
    /// a next hop answering again, new next hops. In RAM only: a flush never rewrites
    /// records on flash ([`crate::spool::Writer::expedite`]).
    pub(super) async fn make_due(&self, scope: Scope) -> usize {
        let n = self.spool.flush(scope.into_domain()).await;
        self.kick.notify_one();
        n
    }

    /// Records whether route `name` answered (through next hop `hop`). When it just came
    /// back, the held mail is made due and delivery woken: it goes now. A route that was
    /// down releases its own mail — all of it for a next-hop list, its domain's for an MX
    /// route (a silo holds many offices' mail; one office's return does not concern the
    /// others); the first answer after start-up (state unknown) releases everything.
    pub(super) async fn route_state(&self, name: &str, reachable: bool, hop: &str) {
        let came_back = {
            let key = HopKey::of(name);
            let mut down = self
                .down_routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let unknown = down.is_empty() && self.hop_down.load(Ordering::Relaxed);
            let was_down = down.contains_key(&key);
            if reachable {
                down.remove(&key);
            } else {
                down.insert(key, name.to_owned());
            }
            self.hop_down.store(!down.is_empty(), Ordering::Relaxed);
            match (reachable, was_down, unknown) {
                (true, true, _) => Some(Scope::of(route::mx_domain(name))),
                (true, false, true) => Some(Scope::All),
                _ => None,
            }
        };
        if let Some(scope) = came_back {
            let held = self.make_due(scope).await;
            crate::log!("next hop {hop} answers again: delivering {held} held message(s) now");
        }
    }

    /// The relay settings in force; an attempt takes them once and keeps them throughout.
    pub(super) fn settings(&self) -> Arc<RelaySettings> {
        self.settings.get()
    }

    pub(super) fn slots(&self, route: &str) -> Arc<Semaphore> {
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
