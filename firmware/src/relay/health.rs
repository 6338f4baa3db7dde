//! Next-hop health from probes and delivery attempts: when a hop is down, when it came
//! back (flush the queue at once), when to probe next.
//!
//! # Contract
//!
//! - Every connection result for a hop (a [`Client::probe`](super::Client::probe) outcome,
//!   or whether a delivery attempt got past the greeting) goes through
//!   [`HopHealth::record`]. It returns a [`Change`] only on transitions, so the daemon
//!   logs, notifies the admin and flushes exactly once per transition.
//! - A hop is declared down after [`DOWN_AFTER`] consecutive failures (one lost SYN does
//!   not page anyone) and up again on the first success; the first success after start-up
//!   also counts as coming up, so mail held across a restart goes out at once.
//! - Probes run every `probe-interval` while the hop is not known to be up; pure
//!   arithmetic on `now`, no panics.

use embassy_time::{Duration, Instant};

/// Consecutive failures before a hop counts as down.
pub const DOWN_AFTER: u32 = 2;

/// What is known about a hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No result yet (after start-up).
    Unknown,
    /// The last connection worked.
    Up,
    /// [`DOWN_AFTER`] or more connections failed in a row.
    Down,
}

/// A transition the daemon acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Now reachable: flush held mail for it (and, on the edge, send ETRN upstream).
    CameUp,
    /// Now unreachable: tell the admin.
    WentDown,
}

/// One next hop's health.
#[derive(Clone, Copy, Debug)]
pub struct HopHealth {
    health: Health,
    failures: u32,
    since: Instant,
    next_probe: Instant,
}

impl HopHealth {
    /// Unknown, to be probed at once.
    pub fn new(now: Instant) -> Self {
        Self {
            health: Health::Unknown,
            failures: 0,
            since: now,
            next_probe: now,
        }
    }

    /// Record one connection result at `now`; `interval` is `probe-interval`.
    pub fn record(&mut self, ok: bool, now: Instant, interval: Duration) -> Option<Change> {
        self.next_probe = now.saturating_add(interval);
        let before = self.health;
        if ok {
            self.failures = 0;
            self.health = Health::Up;
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= DOWN_AFTER {
                self.health = Health::Down;
            }
        }
        if self.health != before {
            self.since = now;
        }
        match (before, self.health) {
            (Health::Unknown | Health::Down, Health::Up) => Some(Change::CameUp),
            (Health::Unknown | Health::Up, Health::Down) => Some(Change::WentDown),
            _ => None,
        }
    }

    /// The current state.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Since when it is in that state (for "primary down for 2 h" on the status page).
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When to probe next (while mail is held for it).
    pub fn next_probe(&self) -> Instant {
        self.next_probe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_reported_once() {
        let i = Duration::from_secs(30);
        let t = Instant::from_secs;
        let mut h = HopHealth::new(t(0));
        assert_eq!(h.next_probe(), t(0), "probe at start-up");
        assert_eq!(
            h.record(true, t(0), i),
            Some(Change::CameUp),
            "held mail goes out"
        );
        assert_eq!(h.record(true, t(30), i), None);
        assert_eq!(h.record(false, t(60), i), None, "one failure is not down");
        assert_eq!(h.health(), Health::Up);
        assert_eq!(h.record(false, t(90), i), Some(Change::WentDown));
        assert_eq!(h.record(false, t(120), i), None);
        assert_eq!((h.health(), h.since()), (Health::Down, t(90)));
        assert_eq!(h.next_probe(), t(150));
        assert_eq!(h.record(true, t(150), i), Some(Change::CameUp));
        assert_eq!((h.health(), h.since()), (Health::Up, t(150)));
    }

    #[test]
    fn a_hop_never_reached_since_start_goes_down() {
        let i = Duration::from_secs(30);
        let mut h = HopHealth::new(Instant::from_secs(0));
        assert_eq!(h.record(false, Instant::from_secs(0), i), None);
        assert_eq!(h.health(), Health::Unknown);
        assert_eq!(
            h.record(false, Instant::from_secs(30), i),
            Some(Change::WentDown)
        );
    }
}
