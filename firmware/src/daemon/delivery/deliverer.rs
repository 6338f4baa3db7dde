//! [`Deliverer`]: what the delivery tasks share — the spool handle, the relay settings in
//! force, the loop guard, DNS, TLS client configurations, connection permits per route, the
//! next-hop state and the ids being worked on. Private to delivery: the rest of the daemon
//! holds a [`DeliveryHandle`](super::DeliveryHandle).

use std::sync::{Arc, Mutex, PoisonError};

use mailbag_hal::Clock;
use tokio::sync::{Notify, Semaphore};

use super::claims::InFlight;
use super::tls::TlsClients;
use crate::daemon::live::Live;
use crate::daemon::spool::SpoolHandle;
use crate::relay::{HopKey, LoopGuard, RelaySettings};
use crate::vecmap::VecMap;

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
    /// Next-hop state per route ([`super::hops`]): the one record of whether each
    /// answers.
    pub(super) hops: super::hops::HopStates,
    /// Notices, counters, the firewall follower, beacons, the silo's routers.
    pub(super) watch: Arc<super::watch::Watch>,
    /// DNS for delivery by MX and for next-hop names.
    pub(super) dns: super::dns::DnsResolver,
    /// Connection permits per route (`relay.max-per-hop` each).
    pub(super) hop_slots: Mutex<VecMap<HopKey, Arc<Semaphore>>>,
    /// Ids of messages being worked on: by a lane while it delivers them, or claimed by
    /// an admin action. Neither touches a message the other holds.
    pub(super) in_flight: InFlight,
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
        Arc::clone(map.get_or_insert_with(HopKey::of(route), || Arc::new(Semaphore::new(full))))
    }
}
