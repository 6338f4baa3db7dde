//! [`Clock`]: monotonic time as `embassy_time::Instant`, plus wall-clock seconds.

use std::sync::{Arc, Mutex, PoisonError};

use embassy_time::{Duration, Instant};

/// A clock that is monotonic and never fails.
///
/// `now` never goes backwards and starts near zero at process start. `unix_seconds` is wall
/// time (it may jump when NTP sets it on a router without an RTC); use it only for
/// timestamps shown to people or stored across reboots, never for timers.
pub trait Clock: Send + Sync {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock seconds since 1970-01-01 UTC.
    fn unix_seconds(&self) -> u64;
}

/// The operating system's clocks.
#[derive(Clone, Debug)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl SystemClock {
    /// A clock whose `now()` counts from this call.
    pub fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let micros = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }

    fn unix_seconds(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// (A mutex rather than an `AtomicU64`: 32-bit MIPS has no 64-bit atomics.)
#[derive(Clone, Debug)]
pub struct ManualClock {
    micros: Arc<Mutex<u64>>,
    unix_base: u64,
}

impl ManualClock {
    /// A clock at monotonic zero whose wall time starts at `unix_base` seconds.
    pub fn new(unix_base: u64) -> Self {
        Self {
            micros: Arc::new(Mutex::new(0)),
            unix_base,
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.micros.lock().unwrap_or_else(PoisonError::into_inner) += by.as_micros();
    }
}

impl ManualClock {
    fn micros(&self) -> u64 {
        *self.micros.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.micros())
    }

    fn unix_seconds(&self) -> u64 {
        self.unix_base + self.micros() / 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let c = ManualClock::new(1_700_000_000);
        let other = c.clone();
        assert_eq!(c.now(), Instant::from_micros(0));
        c.advance(Duration::from_secs(90));
        assert_eq!(other.now(), Instant::from_secs(90));
        assert_eq!(other.unix_seconds(), 1_700_000_090);
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!(c.unix_seconds() > 1_600_000_000);
    }
}
