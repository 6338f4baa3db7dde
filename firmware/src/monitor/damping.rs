//! Damping: at most one notice of each kind per subject ([`Notice::subject_key`]: a
//! route, a router, the spool) per interval, so a flapping next hop does not flood the
//! admin — while the last thing the admin was told is always the truth.
//!
//! - A notice whose kind was not sent for its subject within the interval goes at once:
//!   a "down" followed by the "up" a minute later are both told at once.
//! - Otherwise it is held back; only the newest held notice of a subject is kept, and the
//!   ones it replaced are counted into it ([`Notice::suppressed`]).
//! - When its kind's interval has passed ([`Damper::due`]) the held notice goes, unless it
//!   says what the last notice sent for that subject said (a flap that ended where it
//!   started: down, up, down, up after "up" was sent): then it is dropped and counted
//!   into the next one.
//! - At most [`SUBJECTS_MAX`] subjects are tracked; a new one beyond that replaces the
//!   one idle longest (its damping is forgotten, never its held notice: that one goes out
//!   at once).
//!
//! Time is Unix seconds from the caller; nothing here reads a clock.

use super::notice::Notice;

/// Subjects tracked at once (routes, routers, spool, expiries).
pub const SUBJECTS_MAX: usize = 64;
/// Kinds per subject (down/up, overdue/back, and one-kind subjects).
const KINDS_MAX: usize = 2;

struct Slot {
    key: String,
    /// When each kind was last sent for this subject.
    sent: heapless::Vec<(&'static str, u64), KINDS_MAX>,
    /// The kind of the last notice sent.
    last_kind: &'static str,
    /// The last time anything happened on this subject (for eviction).
    touched: u64,
    held: Option<Notice>,
    suppressed: u32,
}

impl Slot {
    fn sent_at(&self, kind: &str) -> Option<u64> {
        self.sent.iter().find(|(k, _)| *k == kind).map(|(_, t)| *t)
    }

    fn mark_sent(&mut self, n: &mut Notice, now: u64) {
        n.suppressed = self.suppressed;
        self.suppressed = 0;
        self.last_kind = n.kind();
        match self.sent.iter_mut().find(|(k, _)| *k == n.kind()) {
            Some(e) => e.1 = now,
            None => {
                // A subject has at most KINDS_MAX kinds; if not, the oldest is forgotten.
                if self.sent.is_full() {
                    self.sent.remove(0);
                }
                let _ = self.sent.push((n.kind(), now));
            }
        }
    }
}

/// Per-subject damping state.
pub struct Damper {
    interval: u64,
    slots: Vec<Slot>,
}

impl Damper {
    /// Damping over `interval` seconds (0: every notice goes).
    pub fn new(interval: u64) -> Self {
        Self {
            interval,
            slots: Vec::with_capacity(SUBJECTS_MAX),
        }
    }

    fn free(&self, slot: &Slot, kind: &str, now: u64) -> bool {
        slot.sent_at(kind)
            .is_none_or(|t| now >= t.saturating_add(self.interval))
    }

    /// Offers a notice at `now`: what to send now (it, or nothing while it is held, or an
    /// evicted subject's held notice).
    pub fn offer(&mut self, mut n: Notice, now: u64) -> Vec<Notice> {
        let key = n.subject_key();
        let mut out = Vec::new();
        let i = match self.slots.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                if self.slots.len() == SUBJECTS_MAX {
                    if let Some(idle) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].touched)
                    {
                        out.extend(self.slots.swap_remove(idle).held);
                    }
                }
                self.slots.push(Slot {
                    key,
                    sent: heapless::Vec::new(),
                    last_kind: "",
                    touched: now,
                    held: None,
                    suppressed: 0,
                });
                self.slots.len() - 1
            }
        };
        let free = self.free(&self.slots[i], n.kind(), now);
        let slot = &mut self.slots[i];
        slot.touched = now;
        if free {
            // Newer than anything held for this subject: the held one is superseded.
            if slot.held.take().is_some() {
                slot.suppressed += 1;
            }
            slot.mark_sent(&mut n, now);
            out.push(n);
        } else if slot.held.replace(n).is_some() {
            slot.suppressed += 1;
        }
        out
    }

    /// Held notices whose kind's interval has passed at `now`, ready to send.
    pub fn due(&mut self, now: u64) -> Vec<Notice> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let Some(kind) = self.slots[i].held.as_ref().map(Notice::kind) else {
                continue;
            };
            if !self.free(&self.slots[i], kind, now) {
                continue;
            }
            let slot = &mut self.slots[i];
            let Some(mut n) = slot.held.take() else {
                continue;
            };
            if n.kind() == slot.last_kind && state_kind(n.kind()) {
                // Back where the last notice left it: nothing new to say.
                slot.suppressed += 1;
                continue;
            }
            slot.mark_sent(&mut n, now);
            out.push(n);
        }
        out
    }
}

/// Kinds that describe a state (the newest says everything); an expiry or a full spool
/// is news each time.
fn state_kind(kind: &str) -> bool {
    matches!(
        kind,
        "primary-down" | "primary-up" | "router-overdue" | "router-back"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::notice::Event;

    fn down(t: u64) -> Notice {
        Notice::new(
            t,
            "h",
            Event::PrimaryDown {
                route: "r".into(),
                hop: "x".into(),
                held: 0,
                reason: String::new(),
            },
        )
    }

    fn up(t: u64) -> Notice {
        Notice::new(
            t,
            "h",
            Event::PrimaryUp {
                route: "r".into(),
                hop: "x".into(),
                down_secs: 1,
                held: 0,
                held_bytes: 0,
            },
        )
    }

    fn kinds(v: &[Notice]) -> Vec<&'static str> {
        v.iter().map(Notice::kind).collect()
    }

    #[test]
    fn down_then_up_are_both_told_at_once() {
        let mut d = Damper::new(900);
        assert_eq!(kinds(&d.offer(down(0), 0)), ["primary-down"]);
        assert_eq!(
            kinds(&d.offer(up(60), 60)),
            ["primary-up"],
            "a different kind"
        );
    }

    #[test]
    fn a_flap_within_the_interval_says_nothing_more() {
        let mut d = Damper::new(900);
        d.offer(down(0), 0);
        d.offer(up(60), 60);
        assert!(d.offer(down(120), 120).is_empty(), "held");
        assert!(d.offer(up(180), 180).is_empty(), "held, replacing the down");
        assert!(d.due(900).is_empty(), "the held up is not due before 960");
        assert!(
            d.due(960).is_empty(),
            "up again, as the admin was told: nothing to send"
        );
        // Down for good later: it goes at once and counts what was held back.
        let sent = d.offer(down(2000), 2000);
        assert_eq!(kinds(&sent), ["primary-down"]);
        assert_eq!(sent[0].suppressed, 2);
    }

    #[test]
    fn the_last_state_is_always_told() {
        let mut d = Damper::new(900);
        d.offer(down(0), 0);
        d.offer(up(30), 30);
        assert!(
            d.offer(down(60), 60).is_empty(),
            "held: a down was sent at 0"
        );
        let sent = d.due(900);
        assert_eq!(
            kinds(&sent),
            ["primary-down"],
            "it stayed down: the admin hears it"
        );
        assert_eq!(sent[0].time, 60, "with the time it happened");
        assert!(
            d.offer(up(901), 901).is_empty(),
            "the up of 30 is recent: this one waits"
        );
        assert_eq!(kinds(&d.due(930)), ["primary-up"]);
    }

    #[test]
    fn subjects_are_damped_apart_and_zero_means_no_damping() {
        let mut d = Damper::new(900);
        let other = Notice::new(
            5,
            "h",
            Event::SpoolFull {
                used: 8,
                capacity: 10,
                held: 1,
            },
        );
        d.offer(down(0), 0);
        assert_eq!(kinds(&d.offer(other, 5)), ["spool-full"]);
        let mut none = Damper::new(0);
        for t in 0..5 {
            assert_eq!(
                none.offer(if t % 2 == 0 { down(t) } else { up(t) }, t)
                    .len(),
                1
            );
        }
    }

    #[test]
    fn the_table_is_bounded_and_never_loses_a_held_notice() {
        let mut d = Damper::new(900);
        let spool = |t| {
            Notice::new(
                t,
                "h",
                Event::SpoolFull {
                    used: 9,
                    capacity: 10,
                    held: 1,
                },
            )
        };
        d.offer(spool(0), 0);
        assert!(d.offer(spool(1), 1).is_empty(), "held");
        d.slots[0].touched = 0;
        for i in 0..SUBJECTS_MAX as u64 {
            let n = Notice::new(
                10 + i,
                "h",
                Event::RouterBack {
                    router: format!("r{i}"),
                    silent_secs: 1,
                    held: 0,
                    primary: "up".into(),
                },
            );
            let out = d.offer(n, 10 + i);
            if i == SUBJECTS_MAX as u64 - 1 {
                assert_eq!(
                    kinds(&out),
                    ["spool-full", "router-back"],
                    "evicted, its held notice sent"
                );
            }
        }
        assert!(d.slots.len() <= SUBJECTS_MAX);
    }
}
