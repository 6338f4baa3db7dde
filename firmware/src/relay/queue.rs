//! The fair delivery order: which held messages to try now, and in what order.
//!
//! # Contract
//!
//! - The queue holds one [`Held`] entry per message *and next hop* (a message whose
//!   recipients go to two next hops is two entries; the daemon splits it). Each entry has a
//!   fairness domain (the first pending recipient's domain), its next-attempt time and its
//!   arrival sequence.
//! - [`FairQueue::plan`] picks the entries due at `now` that are not already in flight:
//!   **oldest first within a domain** (arrival sequence, then id), **round-robin across
//!   domains** (the domain whose head waited longest goes first in each round), and never
//!   more than `max_per_hop` in flight per next hop, counting those already started. A
//!   domain whose next hop is saturated waits whole, so its order never changes.
//! - [`FairQueue::start`] / [`FairQueue::finish`] keep the in-flight counts; a finished
//!   entry is rescheduled or removed. [`FairQueue::flush`] (ETRN, a next hop coming back)
//!   makes entries due at once.
//! - Fixed capacity, set once at start-up ([`FairQueue::with_capacity`], e.g. the spool's
//!   `max-messages`); a full queue hands the entry back. Planning uses scratch space
//!   allocated with the queue, so it never allocates. No panics.

use embassy_time::Instant;

use crate::spool::{MessageId, fnv1a};

/// A fairness domain (hash of the lowercased recipient domain; a collision only merges two
/// domains' turns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainKey(pub u64);

impl DomainKey {
    /// The key of `domain` (case-insensitive).
    pub fn of(domain: &str) -> Self {
        Self(fnv1a(&domain.to_ascii_lowercase()))
    }
}

/// A next hop (hash of its `host:port`, or any id the daemon chooses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HopKey(pub u64);

impl HopKey {
    /// The key of a next hop's `host:port` text.
    pub fn of(hop: &str) -> Self {
        Self(fnv1a(&hop.to_ascii_lowercase()))
    }
}

/// One message (for one next hop) waiting in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// Spool id.
    pub id: MessageId,
    /// Fairness domain.
    pub domain: DomainKey,
    /// Where it goes.
    pub hop: HopKey,
    /// Not before this.
    pub next_attempt: Instant,
    /// Arrival order (e.g. received time); older is smaller.
    pub seq: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    held: Held,
    busy: bool,
}

/// A domain's run of due entries in the scratch index, and how far its turns got.
#[derive(Clone, Copy, Debug)]
struct Group {
    start: usize,
    end: usize,
    next: usize,
}

/// The held messages and the delivery order over them.
#[derive(Debug)]
pub struct FairQueue {
    entries: Vec<Entry>,
    capacity: usize,
    /// Scratch for [`FairQueue::plan`], capacity `capacity`, never grown.
    due: Vec<usize>,
    groups: Vec<Group>,
    in_flight: Vec<(HopKey, u32)>,
}

impl FairQueue {
    /// A queue for at most `capacity` entries; all memory is allocated here.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
            capacity,
            due: Vec::with_capacity(capacity),
            groups: Vec::with_capacity(capacity),
            in_flight: Vec::with_capacity(capacity),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add an entry; a full queue (or a duplicate id for the same hop) hands it back.
    pub fn insert(&mut self, held: Held) -> Result<(), Held> {
        let duplicate = self
            .entries
            .iter()
            .any(|e| e.held.id == held.id && e.held.hop == held.hop);
        if duplicate || self.entries.len() >= self.capacity {
            return Err(held);
        }
        self.entries.push(Entry { held, busy: false });
        Ok(())
    }

    /// The order to try now: at most `limit` entries (see the module docs). Entries are not
    /// marked in flight; call [`FairQueue::start`] for each one actually started.
    pub fn plan(&mut self, now: Instant, max_per_hop: u32, limit: usize, out: &mut Vec<Held>) {
        out.clear();
        self.due.clear();
        self.groups.clear();
        for (i, e) in self.entries.iter().enumerate() {
            if !e.busy && e.held.next_attempt <= now {
                self.due.push(i);
            }
        }
        let entries = &self.entries;
        self.due.sort_unstable_by_key(|&i| {
            let h = &entries[i].held;
            (h.domain, h.seq, h.id)
        });
        let mut start = 0;
        while start < self.due.len() {
            let domain = entries[self.due[start]].held.domain;
            let end = self.due[start..]
                .iter()
                .position(|&i| entries[i].held.domain != domain)
                .map_or(self.due.len(), |n| start + n);
            self.groups.push(Group {
                start,
                end,
                next: start,
            });
            start = end;
        }
        // The domain whose oldest message waited longest takes the first turn.
        let due = &self.due;
        self.groups.sort_unstable_by_key(|g| {
            let h = &entries[due[g.start]].held;
            (h.seq, h.id)
        });
        // Slots per hop this plan may still use; hops not yet seen have max_per_hop.
        let mut used: Vec<(HopKey, u32)> = core::mem::take(&mut self.in_flight);
        let flight_len = used.len();
        let mut active = self.groups.len();
        while active > 0 && out.len() < limit {
            active = 0;
            for g in self.groups.iter_mut() {
                if g.next >= g.end || out.len() >= limit {
                    continue;
                }
                let held = entries[due[g.next]].held;
                let slot = match used.iter().position(|(h, _)| *h == held.hop) {
                    Some(p) => p,
                    None if used.len() < used.capacity() => {
                        used.push((held.hop, 0));
                        used.len() - 1
                    }
                    None => continue,
                };
                if used[slot].1 >= max_per_hop {
                    // FIFO per domain: the head waits, and the rest behind it too.
                    g.next = g.end;
                    continue;
                }
                used[slot].1 += 1;
                out.push(held);
                g.next += 1;
                active += 1;
            }
        }
        // Restore the real in-flight counts (plan() only looked ahead).
        used.truncate(flight_len);
        self.in_flight = used;
        self.restore_counts();
    }

    /// Mark `id` (for `hop`) in flight; false when unknown or already started.
    pub fn start(&mut self, id: MessageId, hop: HopKey) -> bool {
        let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.held.id == id && e.held.hop == hop && !e.busy)
        else {
            return false;
        };
        e.busy = true;
        self.restore_counts();
        true
    }

    /// An attempt for `id` (for `hop`) ended: retry at `next`, or remove with `None`
    /// (delivered, bounced or expired).
    pub fn finish(&mut self, id: MessageId, hop: HopKey, next: Option<Instant>) {
        if let Some(pos) = self
            .entries
            .iter()
            .position(|e| e.held.id == id && e.held.hop == hop)
        {
            match next {
                Some(t) => {
                    self.entries[pos].busy = false;
                    self.entries[pos].held.next_attempt = t;
                }
                None => {
                    self.entries.swap_remove(pos);
                }
            }
        }
        self.restore_counts();
    }

    /// Make every waiting entry for `hop` (or all, with `None`) due at `now`; returns how
    /// many (ETRN: `251` when none).
    pub fn flush(&mut self, hop: Option<HopKey>, now: Instant) -> usize {
        let mut n = 0;
        for e in self.entries.iter_mut() {
            if !e.busy && hop.is_none_or(|h| h == e.held.hop) {
                e.held.next_attempt = e.held.next_attempt.min(now);
                n += 1;
            }
        }
        n
    }

    /// Entries of `domain` waiting (for ETRN's answer and the status page).
    pub fn count_domain(&self, domain: DomainKey) -> usize {
        self.entries
            .iter()
            .filter(|e| e.held.domain == domain)
            .count()
    }

    /// The earliest next attempt of an idle entry: when to plan again.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| !e.busy)
            .map(|e| e.held.next_attempt)
            .min()
    }

    /// In flight for `hop`.
    pub fn in_flight(&self, hop: HopKey) -> u32 {
        self.in_flight
            .iter()
            .find(|(h, _)| *h == hop)
            .map_or(0, |(_, n)| *n)
    }

    /// Recount in-flight entries per hop (at most one count per entry: fits the capacity).
    fn restore_counts(&mut self) {
        self.in_flight.clear();
        for e in self.entries.iter().filter(|e| e.busy) {
            match self.in_flight.iter_mut().find(|(h, _)| *h == e.held.hop) {
                Some((_, n)) => *n += 1,
                None => self.in_flight.push((e.held.hop, 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: HopKey = HopKey(1);

    fn held(id: u64, domain: &str, seq: u64) -> Held {
        Held {
            id: MessageId(id),
            domain: DomainKey::of(domain),
            hop: HOP,
            next_attempt: Instant::from_secs(0),
            seq,
        }
    }

    fn ids(plan: &[Held]) -> Vec<u64> {
        plan.iter().map(|h| h.id.0).collect()
    }

    fn queue(items: &[Held]) -> FairQueue {
        let mut q = FairQueue::with_capacity(64);
        for h in items {
            q.insert(*h).unwrap();
        }
        q
    }

    #[test]
    fn oldest_first_per_domain_and_round_robin_across_domains() {
        // A flood from a.example arrived first; b and c each have a little.
        let mut items: Vec<Held> = (0..6).map(|i| held(10 + i, "a.example", i)).collect();
        items.push(held(21, "B.example", 8));
        items.push(held(20, "b.example", 7));
        items.push(held(30, "c.example", 9));
        items.reverse(); // insertion order does not matter
        let mut q = queue(&items);
        let mut plan = Vec::new();
        q.plan(Instant::from_secs(5), 100, 100, &mut plan);
        assert_eq!(ids(&plan), [10, 20, 30, 11, 21, 12, 13, 14, 15]);
    }

    #[test]
    fn per_hop_limit_counts_messages_in_flight() {
        let mut q = queue(&[
            held(1, "a.example", 1),
            held(2, "a.example", 2),
            held(3, "b.example", 3),
            Held {
                hop: HopKey(2),
                ..held(4, "c.example", 4)
            },
        ]);
        let mut plan = Vec::new();
        q.plan(Instant::from_secs(0), 2, 10, &mut plan);
        assert_eq!(ids(&plan), [1, 3, 4], "two for hop 1, one for hop 2");
        assert!(q.start(MessageId(1), HOP));
        assert_eq!(q.in_flight(HOP), 1);
        q.plan(Instant::from_secs(0), 2, 10, &mut plan);
        assert_eq!(
            ids(&plan),
            [2, 4],
            "one slot left on hop 1, FIFO within a.example"
        );
        assert!(q.start(MessageId(2), HOP));
        q.plan(Instant::from_secs(0), 2, 10, &mut plan);
        assert_eq!(ids(&plan), [4], "hop 1 saturated: b.example waits");
        q.finish(MessageId(1), HOP, None);
        assert_eq!(q.in_flight(HOP), 1);
        q.plan(Instant::from_secs(0), 2, 10, &mut plan);
        assert_eq!(ids(&plan), [3, 4]);
        assert!(!q.start(MessageId(2), HOP), "already in flight");
    }

    #[test]
    fn only_due_entries_and_the_limit() {
        let mut q = queue(&[
            Held {
                next_attempt: Instant::from_secs(100),
                ..held(1, "a.example", 1)
            },
            held(2, "b.example", 2),
            held(3, "c.example", 3),
        ]);
        let mut plan = Vec::new();
        q.plan(Instant::from_secs(50), 10, 1, &mut plan);
        assert_eq!(ids(&plan), [2]);
        assert_eq!(q.next_due(), Some(Instant::from_secs(0)));
        q.finish(MessageId(2), HOP, Some(Instant::from_secs(400)));
        q.finish(MessageId(3), HOP, None);
        assert_eq!(q.next_due(), Some(Instant::from_secs(100)));
        // ETRN / next hop back: everything due now.
        assert_eq!(q.flush(Some(HOP), Instant::from_secs(60)), 2);
        q.plan(Instant::from_secs(60), 10, 10, &mut plan);
        assert_eq!(ids(&plan), [1, 2]);
        assert_eq!(q.count_domain(DomainKey::of("A.EXAMPLE")), 1);
    }

    #[test]
    fn capacity_is_fixed_and_full_hands_the_entry_back() {
        let mut q = FairQueue::with_capacity(2);
        q.insert(held(1, "a", 1)).unwrap();
        assert_eq!(q.insert(held(1, "a", 1)), Err(held(1, "a", 1)), "duplicate");
        q.insert(held(2, "a", 2)).unwrap();
        assert_eq!(q.insert(held(3, "a", 3)), Err(held(3, "a", 3)));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_thousand_messages_over_many_domains_stay_fair() {
        // 900 from one sender domain, 100 spread over 10 others: each of the others gets a
        // turn in every round, so all of them are in the first 11 * 10 picks.
        let mut q = FairQueue::with_capacity(1000);
        for i in 0..900 {
            q.insert(held(i, "flood.example", i)).unwrap();
        }
        for i in 0..100 {
            let d = format!("d{}.example", i % 10);
            q.insert(held(1000 + i, &d, 900 + i)).unwrap();
        }
        let mut plan = Vec::new();
        q.plan(Instant::from_secs(0), u32::MAX, 1000, &mut plan);
        assert_eq!(plan.len(), 1000);
        let first: Vec<u64> = ids(&plan[..110]);
        assert_eq!(first.iter().filter(|&&id| id >= 1000).count(), 100);
        let flood: Vec<u64> = ids(&plan).into_iter().filter(|&id| id < 900).collect();
        assert!(
            flood.windows(2).all(|w| w[0] < w[1]),
            "FIFO within the flood"
        );
    }
}
