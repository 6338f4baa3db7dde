//! Next-hop state with hysteresis: the one record of whether a route's next hops answer,
//! since when, and the transitions the daemon acts on.
//!
//! # Contract
//!
//! - Every connection result for a route (a [`Client::probe`](super::Client::probe)
//!   outcome, or whether a delivery attempt got past the greeting) goes through
//!   [`HopHealth::record`]. It returns a [`Change`] only on transitions, so the daemon
//!   logs, notifies the admin, switches the firewall and flushes exactly once per
//!   transition.
//! - A route is declared down after `down_after` consecutive failures (default
//!   [`DOWN_AFTER`]: one lost SYN does not page anyone) and up again on the first
//!   success; the first success after start-up also counts as coming up, so mail held
//!   across a restart goes out at once.
//! - Time comes from the caller twice: a monotonic [`Instant`] for how long a state
//!   lasted, and Unix seconds for "since" on the status page. Pure arithmetic, no panics.

use embassy_time::{Duration, Instant};

/// Consecutive failures before a route counts as down, unless configured otherwise.
pub const DOWN_AFTER: u32 = 2;

/// What is known about a route's next hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No result yet (after start-up).
    Unknown,
    /// The last connection worked.
    Up,
    /// `down_after` or more connections failed in a row.
    Down,
}

/// A transition the daemon acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Now reachable (it was down, or unknown since start-up): flush the mail held for it.
    CameUp {
        /// How long it was down or unknown.
        after: Duration,
        /// It was down (not merely unknown since start-up): the admin was told so.
        was_down: bool,
    },
    /// Now unreachable: tell the admin; mail for it is held.
    WentDown,
}

/// One route's state.
#[derive(Clone, Copy, Debug)]
pub struct HopHealth {
    health: Health,
    failures: u32,
    down_after: u32,
    since: Instant,
    since_unix: u64,
}

impl HopHealth {
    /// Unknown since `now` (`unix` in wall-clock seconds); down after `down_after` failures
    /// in a row (at least 1).
    pub fn new(now: Instant, unix: u64, down_after: u32) -> Self {
        Self {
            health: Health::Unknown,
            failures: 0,
            down_after: down_after.max(1),
            since: now,
            since_unix: unix,
        }
    }

    /// Records one connection result.
    pub fn record(&mut self, ok: bool, now: Instant, unix: u64) -> Option<Change> {
        let before = self.health;
        if ok {
            self.failures = 0;
            self.health = Health::Up;
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.down_after {
                self.health = Health::Down;
            }
        }
        let lasted = now
            .checked_duration_since(self.since)
            .unwrap_or(Duration::MIN);
        if self.health != before {
            self.since = now;
            self.since_unix = unix;
        }
        match (before, self.health) {
            (Health::Unknown | Health::Down, Health::Up) => Some(Change::CameUp {
                after: lasted,
                was_down: before == Health::Down,
            }),
            (Health::Unknown | Health::Up, Health::Down) => Some(Change::WentDown),
            _ => None,
        }
    }

    /// The current state.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Since when it is in that state (monotonic).
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Since when it is in that state (Unix seconds, for the status page).
    pub fn since_unix(&self) -> u64 {
        self.since_unix
    }

    /// Failures in a row so far (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn transitions_are_reported_once() {
        let mut h = HopHealth::new(t(0), 1000, DOWN_AFTER);
        assert_eq!(
            h.record(true, t(0), 1000),
            Some(Change::CameUp {
                after: Duration::from_secs(0),
                was_down: false
            }),
            "held mail goes out at start-up"
        );
        assert_eq!(h.record(true, t(30), 1030), None);
        assert_eq!(
            h.record(false, t(60), 1060),
            None,
            "one failure is not down"
        );
        assert_eq!(h.health(), Health::Up);
        assert_eq!(h.record(false, t(90), 1090), Some(Change::WentDown));
        assert_eq!(h.record(false, t(120), 1120), None);
        assert_eq!(
            (h.health(), h.since(), h.since_unix()),
            (Health::Down, t(90), 1090)
        );
        assert_eq!(
            h.record(true, t(3690), 4690),
            Some(Change::CameUp {
                after: Duration::from_secs(3600),
                was_down: true
            }),
            "up on the first success, with how long it was down"
        );
        assert_eq!((h.health(), h.since_unix()), (Health::Up, 4690));
    }

    #[test]
    fn a_route_never_reached_since_start_goes_down() {
        let mut h = HopHealth::new(t(0), 0, DOWN_AFTER);
        assert_eq!(h.record(false, t(0), 0), None);
        assert_eq!(h.health(), Health::Unknown);
        assert_eq!(h.record(false, t(30), 30), Some(Change::WentDown));
    }

    #[test]
    fn the_threshold_is_configurable() {
        let mut h = HopHealth::new(t(0), 0, 3);
        h.record(true, t(0), 0);
        assert_eq!(h.record(false, t(1), 1), None);
        assert_eq!(h.record(false, t(2), 2), None);
        assert_eq!(h.failures(), 2);
        assert_eq!(h.record(false, t(3), 3), Some(Change::WentDown));
        let mut once = HopHealth::new(t(0), 0, 0);
        assert_eq!(
            once.record(false, t(0), 0),
            Some(Change::WentDown),
            "0 means 1"
        );
    }
}
