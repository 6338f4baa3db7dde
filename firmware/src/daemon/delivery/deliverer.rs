//! [`Deliverer`]: what the delivery tasks share — the spool handle, the relay settings in
//! force, the loop guard, DNS, TLS client configurations, connection permits per route, the
//! next-hop state and the ids being worked on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mailbag_hal::Clock;
use tokio::sync::{Notify, Semaphore};

use super::tls::TlsClients;
use crate::daemon::live::Live;
use crate::daemon::spool::SpoolHandle;
use crate::relay::{HopKey, LoopGuard, RelaySettings};

/// The delivery task's shared parts.
pub struct Deliverer {
    /// The spool thread.
    pub spool: SpoolHandle,
    /// Parsed `[relay]` in force (see [`Deliverer::settings`]); replaced on reload.
    pub settings: Live<RelaySettings>,
    /// Refuses next hops that are this daemon.
    pub guard: LoopGuard,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Wakes the loop (new mail, ETRN, flush).
    pub kick: Arc<Notify>,
    /// Our host name (DSN Reporting-MTA).
    pub hostname: String,
    /// TLS client configurations: (no verification, verification against system CAs).
    pub tls: TlsClients,
    /// Set when the last attempt could not reach any configured next hop; the probe then
    /// watches for its return.
    pub hop_down: Arc<AtomicBool>,
    /// Routes (by name) whose next hops could not be reached at the last attempt; the
    /// probe watches these, and the first success of one flushes the held mail.
    pub down_routes: Mutex<HashSet<HopKey>>,
    /// DNS for delivery by MX and for next-hop names.
    pub dns: Arc<super::dns::DnsResolver>,
    /// Connection permits per route (`relay.max-per-hop` each).
    pub hop_slots: Mutex<HashMap<HopKey, Arc<Semaphore>>>,
    /// Ids of messages being worked on: by a lane while it delivers them, or claimed by
    /// an admin action (see `admin::queue_actions`). Neither touches a message the other holds.
    pub in_flight: Arc<Mutex<HashSet<u64>>>,
    /// The upstream silo answered its last probe (edge role; see `upstream`).
    pub upstream_up: Arc<AtomicBool>,
}

impl Deliverer {
    /// Records whether route `name` answered (through next hop `hop`). When it just came
    /// back (it was down, or its state was unknown since start-up), every held message is
    /// made due and delivery woken: the held mail goes now.
    pub async fn route_state(&self, name: &str, reachable: bool, hop: &str) {
        let came_back = {
            let key = HopKey::of(name);
            let mut down = self
                .down_routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let unknown = down.is_empty() && self.hop_down.load(Ordering::Relaxed);
            let was_down = down.contains(&key) || unknown;
            if reachable {
                down.remove(&key);
            } else {
                down.insert(key);
            }
            self.hop_down.store(!down.is_empty(), Ordering::Relaxed);
            was_down && reachable
        };
        if came_back {
            let held = self.spool.flush(None).await;
            crate::log!("next hop {hop} answers again: delivering {held} held message(s) now");
            self.kick.notify_one();
        }
    }

    /// Whether the last attempt or probe found route `name` down (not known: false).
    pub fn route_down(&self, name: &str) -> bool {
        self.down_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&HopKey::of(name))
    }

    /// The relay settings in force; an attempt takes them once and keeps them throughout.
    pub fn settings(&self) -> Arc<RelaySettings> {
        self.settings.get()
    }

    /// Marks `id` as being worked on; false when someone else holds it.
    pub fn claim(&self, id: u64) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }

    /// Lets go of `id`.
    pub fn release(&self, id: u64) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
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
