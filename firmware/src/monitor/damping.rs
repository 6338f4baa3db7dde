//! Damping: at most one notice per kind and subject ([`Notice::subject_key`]) per
//! interval, so a flapping next hop does not flood the admin.
//!
//! - The first notice of a subject goes at once. Within the interval after it, newer
//!   notices of that subject are held back — only the newest is kept — and counted.
//! - When the interval has passed ([`Damper::due`]), the newest held notice goes, unless
//!   it says the same as the last one sent (a flap that ended where it started: down,
//!   up, down again, all within the interval, after "down" was sent): then it is dropped
//!   and only counted into the next notice. The admin's last word is always the truth.
//! - At most [`SUBJECTS_MAX`] subjects are tracked; a new one beyond that replaces the
//!   one idle longest (its damping is then forgotten, never its held notice: that one
//!   goes out at once).
//!
//! Time is Unix seconds from the caller; nothing here reads a clock.

use super::notice::Notice;

/// Subjects tracked at once (routes, routers, spool, expiries).
pub const SUBJECTS_MAX: usize = 64;

struct Slot {
    key: String,
    sent_at: u64,
    /// The kind of the last notice sent (`primary-down`…).
    sent_kind: &'static str,
    held: Option<Notice>,
    suppressed: u32,
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

    /// Changes the interval (reload); held notices keep waiting.
    pub fn set_interval(&mut self, interval: u64) {
        self.interval = interval;
    }

    /// Offers a notice at `now`: what to send now (it, or nothing while it is held, or an
    /// evicted subject's held notice).
    pub fn offer(&mut self, mut n: Notice, now: u64) -> Vec<Notice> {
        let key = n.subject_key();
        let mut out = Vec::new();
        let Some(i) = self.slots.iter().position(|s| s.key == key) else {
            if self.slots.len() == SUBJECTS_MAX {
                if let Some(oldest) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].sent_at) {
                    out.extend(self.slots.swap_remove(oldest).held);
                }
            }
            self.slots.push(Slot {
                key,
                sent_at: now,
                sent_kind: n.kind(),
                held: None,
                suppressed: 0,
            });
            out.push(n);
            return out;
        };
        let slot = &mut self.slots[i];
        if now >= slot.sent_at.saturating_add(self.interval) {
            // A held one is superseded by this newer word on the same subject.
            if slot.held.take().is_some() {
                slot.suppressed += 1;
            }
            n.suppressed = slot.suppressed;
            slot.suppressed = 0;
            slot.sent_at = now;
            slot.sent_kind = n.kind();
            out.push(n);
        } else if slot.held.replace(n).is_some() {
            slot.suppressed += 1;
        }
        out
    }

    /// Held notices whose interval has passed at `now`, ready to send.
    pub fn due(&mut self, now: u64) -> Vec<Notice> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            if now < slot.sent_at.saturating_add(self.interval) {
                continue;
            }
            let Some(mut n) = slot.held.take() else {
                continue;
            };
            if n.kind() == slot.sent_kind && flap_kind(n.kind()) {
                // Back where the last notice left it: nothing new to say.
                slot.suppressed += 1;
                continue;
            }
            n.suppressed = slot.suppressed;
            slot.suppressed = 0;
            slot.sent_at = now;
            slot.sent_kind = n.kind();
            out.push(n);
        }
        out
    }
}

/// Kinds that describe a state (the newest says everything); an expiry or a full spool
/// is news each time.
fn flap_kind(kind: &str) -> bool {
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
    fn a_flap_within_the_interval_says_nothing_more() {
        let mut d = Damper::new(900);
        assert_eq!(kinds(&d.offer(down(0), 0)), ["primary-down"]);
        assert!(d.offer(up(60), 60).is_empty(), "held");
        assert!(d.offer(down(120), 120).is_empty(), "held, replacing the up");
        assert!(d.due(899).is_empty());
        assert!(
            d.due(900).is_empty(),
            "down again, as the admin was told: nothing to send"
        );
        // It comes back for good: the notice goes at once and counts what was held back.
        let sent = d.offer(up(1000), 1000);
        assert_eq!(kinds(&sent), ["primary-up"]);
        assert_eq!(sent[0].suppressed, 2);
    }

    #[test]
    fn the_last_state_is_always_told() {
        let mut d = Damper::new(900);
        d.offer(down(0), 0);
        assert!(d.offer(up(30), 30).is_empty());
        let sent = d.due(900);
        assert_eq!(
            kinds(&sent),
            ["primary-up"],
            "the outage ended: the admin hears it"
        );
        assert_eq!(sent[0].time, 30, "with the time it happened");
        assert!(
            d.offer(down(901), 901).is_empty(),
            "the next change waits its turn"
        );
        assert_eq!(kinds(&d.due(1800)), ["primary-down"]);
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
