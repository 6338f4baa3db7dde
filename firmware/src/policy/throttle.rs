//! Per-client tables that outlive a connection, sans-IO (the host passes `now` in seconds
//! and keeps each table behind one lock).
//!
//! - [`Guesses`]: dictionary attacks across connections. Every refused recipient of a
//!   client ([`ClientKey`]: one IPv4 address or one IPv6 /64) counts; past `threshold`
//!   refusals within `window` seconds the client is cooled down for `cooldown` seconds:
//!   each of its RCPTs is answered, after a delay, `450 4.7.1`. The table holds at most
//!   [`GUESS_CLIENTS_MAX`] clients; when full, the one seen longest ago is forgotten
//!   (a client in cool-down is kept over one that is not). Every operation is
//!   O([`GUESS_CLIENTS_MAX`]) at worst.
//! - [`Sessions`]: connection floods. At most `per_client` concurrent sessions per client
//!   key; [`stressed`] says when most session slots are taken, so idle timeouts shrink
//!   the way Postfix's stress mode does. The table never holds more keys than sessions.

use super::client::ClientKey;
use crate::vecmap::VecMap;

/// Clients remembered by [`Guesses`].
pub const GUESS_CLIENTS_MAX: usize = 1024;

/// The dictionary-attack settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuessLimits {
    /// Refused recipients within `window` that start a cool-down (0: never).
    pub threshold: u32,
    /// Seconds over which refusals are counted.
    pub window: u64,
    /// Seconds a client is cooled down.
    pub cooldown: u64,
}

/// What to do with a client's next RCPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuessVerdict {
    /// Go on with the usual checks.
    Allow,
    /// In cool-down for this many more seconds: delay, then `450 4.7.1`.
    CoolDown(u64),
}

#[derive(Clone, Copy, Debug)]
struct GuessEntry {
    key: ClientKey,
    window_start: u64,
    refused: u32,
    cooldown_until: u64,
    last_seen: u64,
}

/// Refused recipients per client, across connections (see the module docs).
#[derive(Debug)]
pub struct Guesses {
    limits: GuessLimits,
    entries: Vec<GuessEntry>,
}

impl Guesses {
    /// An empty table; its storage is allocated here, once.
    pub fn new(limits: GuessLimits) -> Self {
        Self {
            limits,
            entries: Vec::with_capacity(GUESS_CLIENTS_MAX),
        }
    }

    /// New limits (a reload); what is remembered stays.
    pub fn set_limits(&mut self, limits: GuessLimits) {
        self.limits = limits;
    }

    /// Whether `key` is cooling down at `now`.
    pub fn check(&self, key: ClientKey, now: u64) -> GuessVerdict {
        match self.entries.iter().find(|e| e.key == key) {
            Some(e) if e.cooldown_until > now => GuessVerdict::CoolDown(e.cooldown_until - now),
            _ => GuessVerdict::Allow,
        }
    }

    /// Counts one refused recipient of `key`; returns true when this one started a
    /// cool-down.
    pub fn refused(&mut self, key: ClientKey, now: u64) -> bool {
        if self.limits.threshold == 0 {
            return false;
        }
        let limits = self.limits;
        let i = match self.entries.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => self.insert(key, now),
        };
        let e = &mut self.entries[i];
        e.last_seen = now;
        if now.saturating_sub(e.window_start) >= limits.window {
            e.window_start = now;
            e.refused = 0;
        }
        e.refused = e.refused.saturating_add(1);
        if e.refused >= limits.threshold && e.cooldown_until <= now {
            e.cooldown_until = now.saturating_add(limits.cooldown);
            e.refused = 0;
            e.window_start = now;
            return true;
        }
        false
    }

    /// Clients in cool-down at `now` (for the status page and metrics).
    pub fn cooling(&self, now: u64) -> usize {
        self.entries
            .iter()
            .filter(|e| e.cooldown_until > now)
            .count()
    }

    fn insert(&mut self, key: ClientKey, now: u64) -> usize {
        let entry = GuessEntry {
            key,
            window_start: now,
            refused: 0,
            cooldown_until: 0,
            last_seen: now,
        };
        if self.entries.len() < GUESS_CLIENTS_MAX {
            self.entries.push(entry);
            return self.entries.len() - 1;
        }
        // Full: forget whoever was seen longest ago, preferring clients not cooling down.
        let victim = (0..self.entries.len())
            .min_by_key(|&i| {
                let e = &self.entries[i];
                (e.cooldown_until > now, e.last_seen)
            })
            .unwrap_or(0);
        self.entries[victim] = entry;
        victim
    }
}

/// Concurrent sessions per client (see the module docs).
#[derive(Debug, Default)]
pub struct Sessions {
    open: VecMap<ClientKey, u32>,
}

impl Sessions {
    /// An empty table with room for `max_sessions` clients (it never holds more).
    pub fn new(max_sessions: usize) -> Self {
        Self {
            open: VecMap::with_capacity(max_sessions),
        }
    }

    /// Takes one of `key`'s `per_client` session slots; false when it has them all.
    pub fn open(&mut self, key: ClientKey, per_client: u32) -> bool {
        let n = self.open.get_or_insert_with(key, || 0);
        if *n >= per_client {
            if *n == 0 {
                self.open.remove(&key);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// Gives back a slot taken by [`Sessions::open`].
    pub fn close(&mut self, key: ClientKey) {
        if let Some(n) = self.open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }

    /// Sessions `key` holds.
    pub fn held(&self, key: ClientKey) -> u32 {
        self.open.get(&key).copied().unwrap_or(0)
    }

    /// Distinct clients with a session.
    pub fn clients(&self) -> usize {
        self.open.len()
    }
}

/// Postfix-like stress: true when at least three quarters of the `max` session slots are
/// in use (`in_use` of them).
pub fn stressed(in_use: usize, max: usize) -> bool {
    max > 0 && in_use * 4 >= max * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: GuessLimits = GuessLimits {
        threshold: 20,
        window: 600,
        cooldown: 600,
    };

    fn key(n: u32) -> ClientKey {
        ClientKey::V4(n)
    }

    #[test]
    fn a_guesser_is_cooled_down_after_the_threshold_and_released_after() {
        let mut g = Guesses::new(LIMITS);
        for i in 0..19 {
            assert!(!g.refused(key(1), 100 + i), "refusal {i}");
            assert_eq!(g.check(key(1), 100 + i), GuessVerdict::Allow);
        }
        assert!(
            g.refused(key(1), 130),
            "the 20th refusal starts the cool-down"
        );
        assert_eq!(g.check(key(1), 131), GuessVerdict::CoolDown(599));
        assert_eq!(
            g.check(key(2), 131),
            GuessVerdict::Allow,
            "others are not affected"
        );
        assert_eq!(g.cooling(131), 1);
        assert_eq!(g.check(key(1), 730), GuessVerdict::Allow);
    }

    #[test]
    fn refusals_spread_beyond_the_window_do_not_add_up() {
        let mut g = Guesses::new(LIMITS);
        for i in 0..100u64 {
            assert!(
                !g.refused(key(1), i * 60),
                "one refusal a minute never trips"
            );
        }
        let mut off = Guesses::new(GuessLimits {
            threshold: 0,
            ..LIMITS
        });
        for i in 0..100 {
            assert!(!off.refused(key(1), i));
        }
    }

    #[test]
    fn the_table_is_bounded_and_keeps_clients_in_cool_down() {
        let mut g = Guesses::new(GuessLimits {
            threshold: 1,
            ..LIMITS
        });
        assert!(g.refused(key(0), 10));
        for n in 1..(GUESS_CLIENTS_MAX as u32 * 3) {
            let _ = g.refused(key(n), 11 + u64::from(n));
            assert!(g.entries.len() <= GUESS_CLIENTS_MAX);
        }
        // Every other client is cooling too here, so the oldest went; with threshold 2 the
        // cooling one survives a flood of one-off guessers.
        let mut g = Guesses::new(GuessLimits {
            threshold: 2,
            cooldown: 100_000,
            ..LIMITS
        });
        g.refused(key(0), 10);
        g.refused(key(0), 10);
        for n in 1..(GUESS_CLIENTS_MAX as u32 * 3) {
            g.refused(key(n), 11 + u64::from(n));
        }
        assert!(matches!(g.check(key(0), 500), GuessVerdict::CoolDown(_)));
    }

    #[test]
    fn sessions_per_client_are_capped_and_given_back() {
        let mut s = Sessions::new(8);
        assert!(s.open(key(1), 2));
        assert!(s.open(key(1), 2));
        assert!(!s.open(key(1), 2));
        assert!(s.open(key(2), 2));
        assert_eq!((s.held(key(1)), s.clients()), (2, 2));
        s.close(key(1));
        assert!(s.open(key(1), 2));
        s.close(key(1));
        s.close(key(1));
        s.close(key(2));
        assert_eq!(s.clients(), 0);
        assert!(!s.open(key(3), 0));
        assert_eq!(s.clients(), 0);
    }

    #[test]
    fn stress_starts_at_three_quarters() {
        assert!(!stressed(23, 32));
        assert!(stressed(24, 32));
        assert!(!stressed(0, 0));
    }
}
