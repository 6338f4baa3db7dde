//! [`InFlight`]: the ids of messages being worked on — by a lane while it delivers them, or
//! by an admin action (delete, bounce) while it changes them. Whoever holds a [`Claim`]
//! has the message to itself: a lane skips a message an action holds, an action is refused
//! ("try again") for a message a lane holds. The claim ends when the [`Claim`] is dropped.
//!
//! A sorted vector behind a mutex, held only to insert or remove one id (a binary search,
//! then a move of the ids above it: lanes hold a few, an admin action at most the queue
//! it names), never across an await. No hash map: its code costs flash on a router.

use std::sync::{Arc, Mutex, PoisonError};

use crate::spool::MessageId;

/// The set of claimed message ids; clones share it.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<Mutex<Vec<u64>>>);

/// One claimed message; released when dropped.
#[derive(Debug)]
pub struct Claim {
    set: InFlight,
    id: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut set = self.set.lock();
        if let Ok(i) = set.binary_search(&self.id) {
            set.remove(i);
        }
    }
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        // One insert or remove at a time: a panic elsewhere cannot leave it half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `id`, or `None` when someone else holds it.
    pub fn try_claim(&self, id: MessageId) -> Option<Claim> {
        let mut set = self.lock();
        let fresh = match set.binary_search(&id.0) {
            Ok(_) => false,
            Err(i) => {
                set.insert(i, id.0);
                true
            }
        };
        drop(set);
        fresh.then(|| Claim {
            set: self.clone(),
            id: id.0,
        })
    }

    /// Claims every id or none: the first one held elsewhere is the error (a repeated id
    /// counts once).
    pub fn claim_all(
        &self,
        ids: impl IntoIterator<Item = MessageId>,
    ) -> Result<Vec<Claim>, MessageId> {
        let mut claims: Vec<Claim> = Vec::new();
        for id in ids {
            if claims.iter().any(|c| c.id == id.0) {
                continue;
            }
            claims.push(self.try_claim(id).ok_or(id)?);
        }
        Ok(claims)
    }

    /// How many messages are claimed now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_message_cannot_be_claimed_again_until_released() {
        let set = InFlight::default();
        let id = MessageId(7);
        let c = set.try_claim(id).unwrap();
        assert!(set.try_claim(id).is_none());
        drop(c);
        assert!(set.try_claim(id).is_some());
    }

    #[test]
    fn claim_all_takes_none_when_one_is_busy() {
        let set = InFlight::default();
        let held = set.try_claim(MessageId(2)).unwrap();
        let e = set
            .claim_all([MessageId(1), MessageId(2), MessageId(3)])
            .unwrap_err();
        assert_eq!(e, MessageId(2));
        assert_eq!(set.len(), 1, "the claim on 1 was released");
        drop(held);
        let all = set
            .claim_all([MessageId(1), MessageId(1), MessageId(3)])
            .unwrap();
        assert_eq!(all.len(), 2);
    }
}
