//! [`Watch`]: what watching keeps — the settings, the damping state, the counters behind
//! `/metrics`, the event log, the silo's table of routers, the last delivery, the
//! primary's overall state as last acted on. One per daemon, shared: delivery feeds it
//! (next-hop transitions, deliveries, expiries), inbound its counters and the beacons it
//! receives, admin reads it (status page, `/api/routers`, `/metrics`).
//!
//! The decisions are the sans-IO cores in [`crate::monitor`]; the I/O is in
//! `notify` (notices to their channels), `watching` (the periodic task),
//! `follow` (the firewall), `beacon` (the edge's beacons).

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mailbag_hal::Clock;

use super::hops::Overall;
use crate::config::{Config, Role};
use crate::daemon::events::EventLog;
use crate::daemon::live::Live;
use crate::firewall::{FirewallConfig, Primary};
use crate::monitor::config::RouterSpec;
use crate::monitor::config::relay_config;
use crate::monitor::damping::Damper;
use crate::monitor::metrics::Counters;
use crate::monitor::notice::Event;
use crate::monitor::routers::RouterTable;
use crate::monitor::{MonitorConfig, NotifyConfig};

/// Most router alerts waiting for the watch task (beyond that the oldest is dropped; its
/// router's state is in the table regardless).
pub const ALERTS_MAX: usize = 64;

/// What watching needs from the configuration (restart to change, like `[smtp]`).
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// `[notify]`.
    pub notify: NotifyConfig,
    /// `[monitor]`.
    pub monitor: MonitorConfig,
    /// `[firewall]` (the follower).
    pub firewall: FirewallConfig,
    /// `smtp.hostname`.
    pub hostname: String,
    /// Edge or silo.
    pub role: Role,
    /// The upstream silos (edge), where beacons go.
    pub upstream_silo: Vec<String>,
    /// Failures in a row before a route is down (`monitor.down-after`).
    pub down_after: u32,
    /// Routes that only carry notices (`notify.via` hops, see
    /// [`crate::monitor::config::relay_config`]): not the primary, so the firewall, the LED and the
    /// beacons do not follow them, and their coming and going is logged, never noticed.
    /// Each with the notice recipients' domain it carries.
    pub notice_routes: Vec<(String, String)>,
}

impl WatchSettings {
    /// From the whole configuration.
    pub fn from_config(c: &Config) -> Self {
        Self {
            notify: c.notify.clone(),
            monitor: c.monitor.clone(),
            firewall: c.firewall.clone(),
            hostname: c.smtp.hostname.clone(),
            role: c.role,
            upstream_silo: c.relay.upstream_silo.clone(),
            down_after: c.monitor.down_after,
            notice_routes: {
                let all = relay_config(c).routes;
                (c.relay.routes.len()..all.len())
                    .map(|i| {
                        let domain = all[i].split_once('=').map_or("", |(d, _)| d.trim());
                        (format!("route:{i}"), domain.to_ascii_lowercase())
                    })
                    .collect()
            },
        }
    }

    /// The sender of notices.
    pub fn from_address(&self) -> String {
        if self.notify.from.is_empty() {
            format!("mailbag@{}", self.hostname)
        } else {
            self.notify.from.clone()
        }
    }
}

/// The watching state every subsystem shares (see the module doc).
pub struct Watch {
    settings: Live<WatchSettings>,
    /// The daemon's recent events (the admin page's Log).
    pub events: Arc<EventLog>,
    /// Counters for `/metrics`.
    pub counters: Arc<Counters>,
    /// The silo's routers (empty on an edge).
    pub routers: Mutex<RouterTable>,
    /// Router alerts raised where no deliverer is at hand (a beacon's "back"), for the
    /// watch task to send; at most [`ALERTS_MAX`].
    alerts: Mutex<std::collections::VecDeque<Event>>,
    /// Notices held back by damping.
    pub damper: Mutex<Damper>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The firewall state last loaded by the follower (one switch at a time).
    pub firewall_loaded: Arc<Mutex<Option<Primary>>>,
    /// Unix seconds at start.
    pub started_unix: u64,
    /// Unix seconds of the last delivery (0: none yet). 32 bits: 32-bit MIPS has no
    /// 64-bit atomics, and Unix time fits until 2106.
    last_delivery: AtomicU32,
    /// The overall primary state the firewall and LED last followed.
    primary: Mutex<Overall>,
    /// Beacons sent since start (the beacon counter `n`).
    pub beacon_seq: AtomicU32,
    /// How the last beacon fared (0 none yet, 1 accepted, 2 not): its answer is logged
    /// only when this changes.
    pub beacon_state: AtomicU8,
}

impl Watch {
    /// Watching with `settings` from now on.
    pub fn new(settings: WatchSettings, events: Arc<EventLog>, clock: Arc<dyn Clock>) -> Self {
        let now = clock.unix_seconds();
        // Watching routers is a silo's job: a build without the `silo` feature keeps an
        // empty table (config validation refuses `monitor.routers` there).
        let specs: Vec<RouterSpec> = if cfg!(feature = "silo") && settings.role == Role::Silo {
            settings
                .monitor
                .routers
                .iter()
                .filter_map(|l| RouterSpec::parse(l).ok())
                .collect()
        } else {
            Vec::new()
        };
        Self {
            damper: Mutex::new(Damper::new(u64::from(settings.notify.damping))),
            settings: Live::new(settings),
            events,
            counters: Arc::default(),
            routers: Mutex::new(RouterTable::new(specs, now)),
            alerts: Mutex::default(),
            clock,
            firewall_loaded: Arc::default(),
            started_unix: now,
            last_delivery: AtomicU32::new(0),
            primary: Mutex::new(Overall::Unknown),
            beacon_seq: AtomicU32::new(0),
            beacon_state: AtomicU8::new(0),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<WatchSettings> {
        self.settings.get()
    }

    /// Records a delivery now.
    pub fn delivered(&self) {
        let now = u32::try_from(self.clock.unix_seconds()).unwrap_or(u32::MAX);
        self.last_delivery.store(now, Ordering::Relaxed);
        Counters::inc(&self.counters.delivered);
    }

    /// Unix seconds of the last delivery.
    pub fn last_delivery(&self) -> Option<u64> {
        match self.last_delivery.load(Ordering::Relaxed) {
            0 => None,
            t => Some(u64::from(t)),
        }
    }

    /// The overall primary state last acted on.
    pub fn primary(&self) -> Overall {
        *self.primary.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the primary's overall state (the firewall follower and the LED read it).
    pub fn set_primary(&self, now: Overall) {
        *self.primary.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Queues a router alert for the watch task.
    pub fn alert(&self, a: Event) {
        let mut q = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() == ALERTS_MAX {
            q.pop_front();
        }
        q.push_back(a);
    }

    /// Takes the queued router alerts.
    pub fn take_alerts(&self) -> Vec<Event> {
        self.alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}
