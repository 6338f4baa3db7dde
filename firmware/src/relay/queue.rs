//! The fair delivery order: which held messages to try now, and in what order.
//!
//! # Contract
//!
//! - Held mail is split into **lanes**, one per recipient domain (the message's first
//!   recipient domain, as the spool index keys it). A lane is delivered by one worker at a
//!   time, **oldest first** ([`lane_batch`]), over one kept connection: the order in which
//!   a domain's mail was accepted is the order in which it reaches the next hop.
//! - [`due_lanes`] says which lanes to start: every lane with due mail that is not already
//!   being delivered, ordered by how long its oldest due message has waited — a domain with
//!   500 held messages gets one turn like a domain with one (**round-robin across
//!   domains**). The caller bounds how many lanes run and how many connections go to one
//!   next hop.
//! - The spool index is the queue: nothing here keeps state, so nothing can drift from what
//!   is on flash. Both functions are linear in the index and never allocate beyond the
//!   caller's fixed `max`.

use crate::spool::MessageId;

/// A lane: the FNV-1a hash of a lowercased recipient domain (a collision only makes two
/// domains share a lane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainKey(pub u64);

impl DomainKey {
    /// The key of `domain` (case-insensitive), as the spool index computes it.
    pub fn of(domain: &str) -> Self {
        Self(crate::spool::fnv1a(&domain.to_ascii_lowercase()))
    }
}

/// A next hop (hash of its route's name), for per-hop connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HopKey(pub u64);

impl HopKey {
    /// The key of a route's name (`route:office.test`, `mx:example.com`, ...).
    pub fn of(name: &str) -> Self {
        Self(crate::spool::fnv1a(&name.to_ascii_lowercase()))
    }
}

/// One held message as the planner sees it (from the spool index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// Spool id.
    pub id: MessageId,
    /// Its lane.
    pub lane: DomainKey,
    /// Arrival (wall-clock seconds); older goes first.
    pub received_unix: u64,
    /// Not before this (wall-clock seconds; 0 = at once).
    pub next_attempt_unix: u64,
}

impl Held {
    fn due(&self, now_unix: u64) -> bool {
        self.next_attempt_unix <= now_unix
    }

    fn age_key(&self) -> (u64, MessageId) {
        (self.received_unix, self.id)
    }
}

/// Lanes to start at `now_unix`, longest-waiting first: each lane with due mail that is
/// not in `busy`, at most `max` of them.
pub fn due_lanes(
    held: impl IntoIterator<Item = Held>,
    now_unix: u64,
    busy: &[DomainKey],
    max: usize,
) -> Vec<DomainKey> {
    // (oldest due message of the lane, lane), at most `max` kept: the `max` oldest heads.
    let mut heads: Vec<((u64, MessageId), DomainKey)> = Vec::with_capacity(max + 1);
    for h in held {
        if !h.due(now_unix) || busy.contains(&h.lane) {
            continue;
        }
        let key = h.age_key();
        if let Some(slot) = heads.iter_mut().find(|(_, l)| *l == h.lane) {
            if key < slot.0 {
                slot.0 = key;
            }
            continue;
        }
        heads.push((key, h.lane));
        if heads.len() > max {
            // Drop the youngest head; it gets its turn in a later round.
            if let Some(youngest) = (0..heads.len()).max_by_key(|&i| heads[i].0) {
                heads.swap_remove(youngest);
            }
        }
    }
    heads.sort_unstable();
    heads.into_iter().map(|(_, lane)| lane).collect()
}

/// Up to `max` due messages of `lane`, oldest first.
pub fn lane_batch(
    held: impl IntoIterator<Item = Held>,
    lane: DomainKey,
    now_unix: u64,
    max: usize,
) -> Vec<MessageId> {
    let mut out: Vec<(u64, MessageId)> = Vec::with_capacity(max + 1);
    for h in held {
        if h.lane != lane || !h.due(now_unix) {
            continue;
        }
        out.push(h.age_key());
        if out.len() > max {
            out.sort_unstable();
            out.truncate(max);
        }
    }
    out.sort_unstable();
    out.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(id: u64, lane: &str, received: u64, next: u64) -> Held {
        Held {
            id: MessageId(id),
            lane: DomainKey::of(lane),
            received_unix: received,
            next_attempt_unix: next,
        }
    }

    #[test]
    fn every_due_domain_gets_a_turn_longest_waiting_first() {
        // 500 messages for a.test arrived first; b.test and c.test have one each.
        let mut q: Vec<Held> = (0..500).map(|i| held(i, "a.test", 100 + i, 0)).collect();
        q.push(held(900, "c.test", 50, 0));
        q.push(held(901, "b.test", 700, 0));
        q.push(held(902, "d.test", 10, 5000)); // not due yet
        let lanes = due_lanes(q.iter().copied(), 1000, &[], 8);
        assert_eq!(
            lanes,
            vec![
                DomainKey::of("c.test"),
                DomainKey::of("a.test"),
                DomainKey::of("b.test")
            ]
        );
        // A busy lane is not started twice; the limit keeps the oldest heads.
        let lanes = due_lanes(q.iter().copied(), 1000, &[DomainKey::of("c.test")], 1);
        assert_eq!(lanes, vec![DomainKey::of("a.test")]);
        // Domain keys ignore case, as the spool's do.
        assert_eq!(DomainKey::of("A.Test"), DomainKey::of("a.test"));
    }

    #[test]
    fn a_lane_is_delivered_oldest_first_whatever_the_index_order() {
        let q = [
            held(7, "a.test", 300, 0),
            held(3, "a.test", 100, 0),
            held(9, "b.test", 50, 0),
            held(5, "a.test", 100, 0),
            held(4, "a.test", 200, 999_999), // deferred: not in this batch
            held(8, "a.test", 400, 0),
        ];
        let ids = |max| lane_batch(q.iter().copied(), DomainKey::of("a.test"), 1000, max);
        assert_eq!(
            ids(10),
            vec![MessageId(3), MessageId(5), MessageId(7), MessageId(8)]
        );
        assert_eq!(ids(2), vec![MessageId(3), MessageId(5)]);
        assert!(lane_batch(q.iter().copied(), DomainKey::of("z.test"), 1000, 5).is_empty());
    }
}
