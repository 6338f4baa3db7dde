//! [`Counters`]: one count per protection check and outcome, in one struct that the
//! inbound side bumps and the status page and metrics read ([`Counters::each`] lists
//! every counter with its name and help text). Counted since start; a mutex, not 64-bit
//! atomics, which 32-bit MIPS lacks.

use std::sync::{Mutex, PoisonError};

macro_rules! counters {
    ($($field:ident => $help:literal,)*) => {
        /// A snapshot of every counter.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counts {
            $(#[doc = $help] pub $field: u64,)*
        }

        impl Counts {
            /// Every counter: (name, help, value), in a fixed order.
            pub fn each(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($field), $help, self.$field),)*]
            }
        }
    };
}

counters! {
    dnsbl_lookups => "clients looked up in the blocking DNS lists",
    dnsbl_rejected => "clients refused with 554 because a blocking list lists them",
    dnsbl_failed_open => "list lookups that timed out or failed; the client was let through",
    dnsbl_score_hits => "scoring-list listings added to a spam score",
    trusted_clients => "connections from policy.trusted networks (no checks)",
    verify_callouts => "recipients asked at the next hop",
    verify_cache_hits => "recipients answered from the verification cache",
    verify_rejected => "recipients refused with 550 because the next hop does not know them",
    verify_unknown_while_down => "unknown recipients while the next hop was down (accepted or 450)",
    attachments_blocked => "messages refused with 554 for a blocked attachment name",
    structure_too_deep => "messages refused because their MIME nesting was too deep to check",
    clamd_scanned => "messages scanned by clamd",
    clamd_rejected => "infected messages refused with 554",
    clamd_repackaged => "infected messages accepted to be delivered repackaged",
    clamd_failed => "scans that failed (451, or accepted unscanned when failing open)",
    spam_scored => "messages given a spam score",
    spam_flagged => "messages flagged X-Spam-Flag: YES",
    spam_rejected => "messages refused with 554 for their spam score",
    accept_when_deferred => "recipients told 450 because their next hop answers (accept-when = next-hop-down)",
    tier_quota_refused => "recipients told 452 because their domain's max-bytes is used up",
    tier_size_refused => "messages or recipients refused 552 over their domain's max-message-size",
    guess_cooldowns => "clients put in cool-down for guessing recipients",
    guess_deferred => "recipients told 450 because their client is cooling down",
    sessions_per_client_refused => "connections refused with 421 over policy.sessions-per-client",
    stress_timeouts => "idle sessions closed early under stress (policy.stress-idle-timeout)",
}

/// The shared counters.
#[derive(Debug, Default)]
pub struct Counters(Mutex<Counts>);

impl Counters {
    /// Adds one to the counter `f` picks.
    pub fn bump(&self, f: impl FnOnce(&mut Counts) -> &mut u64) {
        let mut c = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let v = f(&mut c);
        *v = v.saturating_add(1);
    }

    /// The current values.
    pub fn get(&self) -> Counts {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_and_list_themselves() {
        let c = Counters::default();
        c.bump(|c| &mut c.attachments_blocked);
        c.bump(|c| &mut c.attachments_blocked);
        let all = c.get().each();
        assert_eq!(all.len(), 25);
        assert!(all.contains(&(
            "attachments_blocked",
            "messages refused with 554 for a blocked attachment name",
            2
        )));
    }
}
