//! The daemon's recent events for the admin page's Log: a fixed-capacity ring of the last
//! [`EVENTS_MAX`] things that happened (accepted, aborted, deleted, retried, …).
//!
//! Pushing never blocks for long and never grows memory: the oldest event is dropped.
//! Texts are cut to [`EVENT_TEXT_MAX`] bytes. Values from mail (addresses) are stored as
//! given and escaped only where rendered.

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

/// The ring, shared by connections and the web backend.
#[derive(Debug)]
pub struct EventLog(Mutex<VecDeque<Event>>);

impl Default for EventLog {
    fn default() -> Self {
        Self(Mutex::new(VecDeque::with_capacity(EVENTS_MAX)))
    }
}

impl EventLog {
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
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == EVENTS_MAX {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The newest `limit` events, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
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
    fn cuts_long_texts_on_a_character_boundary() {
        let log = EventLog::default();
        log.push(1, "aborted", None, &"é".repeat(EVENT_TEXT_MAX));
        let text = &log.recent(1)[0].text;
        assert!(text.len() <= EVENT_TEXT_MAX && text.chars().all(|c| c == 'é'));
    }
}
