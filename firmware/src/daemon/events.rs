//! The daemon's recent events for the admin page's Log: a fixed-capacity ring of the last
//! [`EVENTS_MAX`] things that happened (accepted, aborted, deleted, retried, …).
//!
//! Pushing never blocks for long and never grows memory: the oldest event is dropped.
//! Texts are cut to [`EVENT_TEXT_MAX`] bytes. Values from mail (addresses) are stored as
//! given and escaped only where rendered.
//!
//! Beside the ring, the bytes accepted per hour over the last day ([`RATE_HOURS`] sums,
//! O(1) per message): the setup check's "days of mail the spool holds at the recent rate".

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Events kept.
pub const EVENTS_MAX: usize = 512;
/// Longest event text kept (bytes).
pub const EVENT_TEXT_MAX: usize = 300;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unix seconds.
    pub time: u64,
    /// `accepted`, `aborted`, `store-failed`, `deleted`, `retried`, `started`, …
    pub kind: &'static str,
    /// The spool id concerned (16 hex digits), if any.
    pub message_id: Option<String>,
    /// Details.
    pub text: String,
}

/// Hours of accepted bytes kept.
pub const RATE_HOURS: u64 = 24;

/// The ring, shared by connections and the web backend.
#[derive(Debug)]
pub struct EventLog {
    ring: Mutex<VecDeque<Event>>,
    rate: Mutex<Rate>,
}

/// Bytes accepted per hour: `hours[h % RATE_HOURS]` is the sum of hour `h` (Unix hours),
/// for the [`RATE_HOURS`] hours up to `hour`.
#[derive(Debug, Default)]
struct Rate {
    hours: [u64; RATE_HOURS as usize],
    hour: u64,
    /// Since when it counts (Unix seconds; 0: from the first message).
    since: u64,
}

impl Rate {
    /// Moves to the hour of `now`, clearing the hours skipped (at most all of them).
    fn advance(&mut self, now: u64) {
        let h = now / 3600;
        if h > self.hour {
            for i in 1..=(h - self.hour).min(RATE_HOURS) {
                self.hours[((self.hour + i) % RATE_HOURS) as usize] = 0;
            }
            self.hour = h;
        }
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new(0)
    }
}

impl EventLog {
    /// An empty log whose accept rate counts from `started` (Unix seconds; 0: from the
    /// first message).
    pub fn new(started: u64) -> Self {
        Self {
            ring: Mutex::new(VecDeque::with_capacity(EVENTS_MAX)),
            rate: Mutex::new(Rate {
                since: started,
                hour: started / 3600,
                ..Rate::default()
            }),
        }
    }

    /// Counts a message of `bytes` accepted at `now`.
    pub fn accepted_bytes(&self, now: u64, bytes: u64) {
        let mut r = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        if r.since == 0 {
            r.since = now;
            r.hour = now / 3600;
        }
        r.advance(now);
        let i = (r.hour % RATE_HOURS) as usize;
        r.hours[i] = r.hours[i].saturating_add(bytes);
    }

    /// Bytes accepted over the last day (or since counting began, if later), and that
    /// window in seconds.
    pub fn accept_rate(&self, now: u64) -> (u64, u64) {
        let mut r = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        if r.since == 0 {
            return (0, 0);
        }
        r.advance(now);
        let bytes = r.hours.iter().fold(0u64, |a, b| a.saturating_add(*b));
        (bytes, now.saturating_sub(r.since).min(RATE_HOURS * 3600))
    }

    /// Records an event, dropping the oldest when full.
    pub fn push(&self, time: u64, kind: &'static str, message_id: Option<String>, text: &str) {
        let mut cut = text.len().min(EVENT_TEXT_MAX);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let event = Event {
            time,
            kind,
            message_id,
            text: text[..cut].to_owned(),
        };
        // A panic while holding the lock cannot leave the ring inconsistent (one step).
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == EVENTS_MAX {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The newest `limit` events, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_events_up_to_its_capacity() {
        let log = EventLog::default();
        for i in 0..(EVENTS_MAX as u64 + 10) {
            log.push(i, "accepted", None, "x");
        }
        let all = log.recent(usize::MAX);
        assert_eq!(all.len(), EVENTS_MAX);
        assert_eq!(all[0].time, EVENTS_MAX as u64 + 9, "newest first");
        assert_eq!(all[EVENTS_MAX - 1].time, 10, "the 10 oldest were dropped");
        assert_eq!(log.recent(3).len(), 3);
    }

    #[test]
    fn accepted_bytes_are_summed_over_the_last_day() {
        let t0 = 1_800_000_000 / 3600 * 3600;
        let log = EventLog::new(t0);
        assert_eq!(log.accept_rate(t0), (0, 0));
        log.accepted_bytes(t0 + 10, 1000);
        log.accepted_bytes(t0 + 3600 * 5, 500);
        assert_eq!(log.accept_rate(t0 + 3600 * 6), (1500, 3600 * 6));
        // 25 hours after the first: it has left the window, the second not yet.
        assert_eq!(log.accept_rate(t0 + 3600 * 25), (500, 3600 * 24));
        assert_eq!(log.accept_rate(t0 + 3600 * 100), (0, 3600 * 24));
        log.accepted_bytes(t0 + 3600 * 100, 7);
        assert_eq!(log.accept_rate(t0 + 3600 * 100).0, 7);
        let lazy = EventLog::default();
        lazy.accepted_bytes(t0, 9);
        assert_eq!(
            lazy.accept_rate(t0 + 60),
            (9, 60),
            "counted from the first message"
        );
    }

    #[test]
    fn cuts_long_texts_on_a_character_boundary() {
        let log = EventLog::default();
        log.push(1, "aborted", None, &"é".repeat(EVENT_TEXT_MAX));
        let text = &log.recent(1)[0].text;
        assert!(text.len() <= EVENT_TEXT_MAX && text.chars().all(|c| c == 'é'));
    }
}
