//! The fair delivery order: which held messages to try now, and in what order.
//!
//! # Contract
//!
//! - Held mail is split into **lanes** by the domain of each message's first recipient
//!   ([`Lane`]). A lane is delivered by one worker at a time, **oldest first**, over one kept
//!   connection: the order in which a domain's mail was accepted is the order in which it
//!   reaches the next hop.
//! - Which lanes to start: every lane with due mail that is not already being delivered,
//!   ordered by how long its oldest due message has waited — a domain with 500 held
//!   messages gets one turn like a domain with one (**round-robin across domains**). The
//!   caller bounds how many lanes run and how many connections go to one next hop.
//! - The spool keeps the order itself, incrementally (`crate::spool::index`: a heap of
//!   waiting messages and a due list per lane), so asking costs O(lanes) and O(batch), not
//!   a scan of everything held.

/// A delivery lane: a recipient domain's key modulo the number of lanes (two domains that
/// collide share a lane; each keeps its oldest-first order within it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lane(pub u16);

impl Lane {
    /// The lane of `domain` (case-insensitive), as the spool index computes it.
    pub fn of(domain: &str) -> Self {
        Self(crate::spool::index::lane_of(crate::spool::domain_key(
            domain,
        )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_ignore_case_and_separate_domains() {
        assert_eq!(Lane::of("A.Test"), Lane::of("a.test"));
        assert_ne!(Lane::of("a.test"), Lane::of("b.test"));
    }
}
