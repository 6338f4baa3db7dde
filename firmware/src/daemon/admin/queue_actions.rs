//! Operator actions on the live queue — flush, delete, bounce — shared by the control
//! socket (`mailbag queue …`, [`super::control`]) and the admin page
//! ([`super::web_backend`]). All spool work goes through the spool thread.
//!
//! - **Claims.** An action first claims the message in the deliverer's in-flight set
//!   ([`Deliverer::in_flight`]). A message being delivered right now cannot be claimed: the
//!   action is refused with [`ActionError::Busy`] ("try again") rather than pulling the
//!   message out from under an SMTP transaction. While an action holds a claim the
//!   deliverer skips the message. Claims are released when the [`Claim`] is dropped.
//! - **Bounce order.** An operator bounce first commits the failure notice (RFC 3464,
//!   status 5.0.0, "returned by the administrator") durably, then removes the original. A
//!   crash in between leaves both: the notice goes out and the original stays queued, so
//!   bouncing it again sends a second notice. A crash never loses both. The null sender
//!   `<>` never gets a notice (RFC 5321 §4.5.5).
//! - **Delete by domain.** `delete --all-for DOMAIN` drops every still-pending recipient in
//!   DOMAIN: a message left with no pending recipient is removed, one that still has
//!   recipients in other domains keeps them (and its other recipients' delivery goes on).
//!   Such a partial change is made only to a message that is not due: the deliverer may
//!   already hold a copy of a due message's record, taken before the claim, and would
//!   write it back after its attempt. A due one is counted as busy ("run again").

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use mailbag_hal::BlockDevice;

use crate::daemon::delivery::Deliverer;
use crate::daemon::delivery::notice::{Notice, original_headers, send_dsn};
use crate::relay::dsn::DsnKind;
use crate::spool::message::domain_of;
use crate::spool::{MessageId, RcptStatus, SpoolError, Writer};

/// RFC 3463 status of an operator bounce ("other undefined status").
pub const ADMIN_STATUS: (u8, u16, u16) = (5, 0, 0);
/// What the notice tells people.
pub const ADMIN_REASON: &str = "returned by the administrator";

/// The deliverer's set of message ids being worked on.
pub type InFlight = Arc<Mutex<HashSet<u64>>>;

/// Why an action was not done.
#[derive(Debug)]
pub enum ActionError {
    /// No such message (delivered or deleted meanwhile).
    NotFound(MessageId),
    /// The message is being delivered right now.
    Busy(MessageId),
    /// The failure notice could not be written or queued; the message is kept.
    NoticeFailed(MessageId),
    /// The spool refused.
    Spool(SpoolError),
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(id) => write!(f, "no message {id} in the queue"),
            Self::Busy(id) => write!(
                f,
                "{id} is being delivered right now; try again in a moment"
            ),
            Self::NoticeFailed(id) => write!(
                f,
                "could not queue the failure notice for {id}; the message is kept (see the log)"
            ),
            Self::Spool(e) => write!(f, "spool: {e}"),
        }
    }
}

impl std::error::Error for ActionError {}

fn spool_error(id: MessageId, e: SpoolError) -> ActionError {
    match e {
        SpoolError::NotFound => ActionError::NotFound(id),
        e => ActionError::Spool(e),
    }
}

/// A message held by an admin action; the deliverer skips it until this is dropped.
#[derive(Debug)]
pub struct Claim {
    set: InFlight,
    id: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Claims `id`, or `None` if it is being delivered (or another action holds it).
pub fn try_claim(set: &InFlight, id: MessageId) -> Option<Claim> {
    let fresh = set
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.0);
    fresh.then(|| Claim {
        set: Arc::clone(set),
        id: id.0,
    })
}

/// Claims every id or none: the first busy one is the error.
pub fn claim_all(
    set: &InFlight,
    ids: impl IntoIterator<Item = MessageId>,
) -> Result<Vec<Claim>, ActionError> {
    let mut claims = Vec::new();
    for id in ids {
        // A repeated id is already ours.
        if claims.iter().any(|c: &Claim| c.id == id.0) {
            continue;
        }
        claims.push(try_claim(set, id).ok_or(ActionError::Busy(id))?);
    }
    Ok(claims)
}

/// Makes held mail (of `domain`, or all) due now and wakes the deliverer; how many.
pub async fn flush(d: &Deliverer, domain: Option<&str>) -> usize {
    let n = d.spool.flush(domain.map(str::to_ascii_lowercase)).await;
    d.kick.notify_one();
    n
}

/// Removes message `id`, unless it is being delivered.
pub async fn delete(d: &Deliverer, id: MessageId) -> Result<(), ActionError> {
    let _claim = try_claim(&d.in_flight, id).ok_or(ActionError::Busy(id))?;
    d.spool.remove(id).await.map_err(|e| spool_error(id, e))?;
    crate::log!("{id}: deleted by the administrator");
    Ok(())
}

/// What `delete --all-for DOMAIN` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainDeleted {
    /// Messages removed (no pending recipient left).
    pub removed: usize,
    /// Messages that keep pending recipients in other domains.
    pub trimmed: usize,
    /// Messages not touched because they were being delivered.
    pub busy: usize,
}

/// Drops every pending recipient in `domain` (see the module docs).
pub async fn delete_all_for(d: &Deliverer, domain: &str) -> Result<DomainDeleted, ActionError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let set = Arc::clone(&d.in_flight);
    let what = domain.clone();
    let now = d.clock.unix_seconds();
    let done = d
        .spool
        .run(move |s| delete_domain_in(s, &set, &what, now))
        .await
        .map_err(ActionError::Spool)?
        .map_err(ActionError::Spool)?;
    crate::log!(
        "{domain}: deleted by the administrator: {} message(s) removed, {} kept for other domains, {} being delivered",
        done.removed,
        done.trimmed,
        done.busy
    );
    Ok(done)
}

/// The spool-thread half of [`delete_all_for`]; `domain` is lower-case.
pub fn delete_domain_in<D: BlockDevice>(
    s: &mut Writer<'_, '_, '_, D>,
    set: &InFlight,
    domain: &str,
    now_unix: u64,
) -> Result<DomainDeleted, SpoolError> {
    // The index keeps only the first recipient's domain: every record is read (an admin
    // action, O(n) reads in the spool thread; not on any per-message path).
    let ids: Vec<MessageId> = s.list().iter().map(|e| e.id).collect();
    let mut done = DomainDeleted::default();
    for id in ids {
        let Some(_claim) = try_claim(set, id) else {
            done.busy += 1;
            continue;
        };
        let mut meta = match s.meta(id) {
            Ok(m) => m,
            Err(SpoolError::NotFound) => continue,
            Err(e) => return Err(e),
        };
        let mut hit = false;
        for r in meta.recipients.iter_mut() {
            if r.status == RcptStatus::Pending && domain_of(&r.address) == domain {
                // Dropped without a notice: the operator deleted it.
                r.status = RcptStatus::Failed;
                hit = true;
            }
        }
        if !hit {
            continue;
        }
        if meta.pending().next().is_none() {
            s.remove(id)?;
            done.removed += 1;
        } else if meta.next_attempt_unix <= now_unix {
            done.busy += 1;
        } else {
            s.update(&meta)?;
            done.trimmed += 1;
        }
    }
    Ok(done)
}

/// What an operator bounce did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounced {
    /// The envelope sender the notice went to (`None`: null sender or nothing pending).
    pub notice_to: Option<String>,
    /// Pending recipients reported as failed.
    pub recipients: usize,
}

/// Operator bounce of message `id` (see the module docs), unless it is being delivered.
pub async fn bounce(d: &Deliverer, id: MessageId) -> Result<Bounced, ActionError> {
    let _claim = try_claim(&d.in_flight, id).ok_or(ActionError::Busy(id))?;
    bounce_claimed(d, id).await
}

/// [`bounce`] for a message the caller has claimed.
pub async fn bounce_claimed(d: &Deliverer, id: MessageId) -> Result<Bounced, ActionError> {
    let meta = d
        .spool
        .run(move |s| s.meta(id))
        .await
        .map_err(ActionError::Spool)?
        .map_err(|e| spool_error(id, e))?;
    let notices: Vec<Notice> = meta
        .pending()
        .map(|r| {
            (
                r.address.to_string(),
                ADMIN_STATUS,
                None,
                ADMIN_REASON.to_string(),
            )
        })
        .collect();
    let notice_to =
        (!meta.sender.is_empty() && !notices.is_empty()).then(|| meta.sender.to_string());
    if notice_to.is_some() {
        let headers = original_headers(d, &meta).await;
        // Durable before the original goes: a crash now repeats a bounce, never loses both.
        if !send_dsn(d, &meta, &headers, DsnKind::Failure, &notices, "").await {
            return Err(ActionError::NoticeFailed(id));
        }
    }
    d.spool.remove(id).await.map_err(|e| spool_error(id, e))?;
    match &notice_to {
        Some(to) => crate::log!(
            "{id}: bounced by the administrator ({} recipient(s), notice to <{to}>)",
            notices.len()
        ),
        None => crate::log!("{id}: bounced by the administrator (null sender: no notice)"),
    }
    Ok(Bounced {
        notice_to,
        recipients: notices.len(),
    })
}

#[cfg(test)]
mod tests {
    use mailbag_hal::{Geometry, RamDevice};

    use super::*;
    use crate::spool::{Access, Allocation, Barrier, Envelope, Flash, Limits, Spool, format};

    const NOW: u64 = 1_800_000_000;

    fn store(s: &mut Spool<'_, RamDevice>, rcpts: &[&str], next_attempt: u64) -> MessageId {
        let env = Envelope::new("a@sender.test", rcpts.iter().copied()).unwrap();
        let mut p = s.begin(&env, 0).unwrap();
        s.append(&mut p, b"Subject: x\r\n\r\nx\r\n").unwrap();
        let id = s.commit(p, &env, NOW).unwrap();
        let mut m = s.meta(id).unwrap();
        m.next_attempt_unix = next_attempt;
        s.update(&m).unwrap();
        id
    }

    #[test]
    fn delete_all_for_drops_only_that_domains_pending_recipients() {
        let dev = format(
            RamDevice::new(Geometry::new(16, 16, 4096, 256).unwrap()),
            Barrier::BlockSwitch,
            NOW,
        )
        .unwrap();
        let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
        let mut alloc = Allocation::new();
        let mut s =
            Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
        let later = NOW + 900;
        let only = store(&mut s, &["x@gone.test", "y@Gone.Test"], later);
        let mixed = store(&mut s, &["x@gone.test", "z@kept.test"], later);
        let mixed_due = store(&mut s, &["x@gone.test", "z@kept.test"], 0);
        let claimed = store(&mut s, &["x@gone.test"], later);
        let other = store(&mut s, &["z@kept.test"], later);
        let set = InFlight::default();
        let held = try_claim(&set, claimed).unwrap();

        let r = s
            .with_writer(|w| delete_domain_in(w, &set, "gone.test", NOW))
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            DomainDeleted {
                removed: 1,
                trimmed: 1,
                busy: 2
            }
        );
        assert!(matches!(s.meta(only), Err(SpoolError::NotFound)));
        let m = s.meta(mixed).unwrap();
        let states: Vec<_> = m.recipients.iter().map(|r| r.status).collect();
        assert_eq!(states, [RcptStatus::Failed, RcptStatus::Pending]);
        assert_eq!(s.meta(mixed_due).unwrap().pending().count(), 2);
        assert_eq!(s.meta(claimed).unwrap().pending().count(), 1);
        assert_eq!(s.meta(other).unwrap().pending().count(), 1);
        assert_eq!(
            set.lock().unwrap().len(),
            1,
            "only the outside claim is left"
        );
        drop(held);
        // Once it is free, the claimed one goes too; nothing else changes.
        let r = s
            .with_writer(|w| delete_domain_in(w, &set, "gone.test", NOW))
            .unwrap()
            .unwrap();
        assert_eq!((r.removed, r.trimmed, r.busy), (1, 0, 1));
    }

    #[test]
    fn a_claimed_message_cannot_be_claimed_again_until_released() {
        let set = InFlight::default();
        let id = MessageId(7);
        let c = try_claim(&set, id).unwrap();
        assert!(try_claim(&set, id).is_none());
        drop(c);
        assert!(try_claim(&set, id).is_some());
    }

    #[test]
    fn claim_all_takes_none_when_one_is_busy() {
        let set = InFlight::default();
        let held = try_claim(&set, MessageId(2)).unwrap();
        let e = claim_all(&set, [MessageId(1), MessageId(2), MessageId(3)]).unwrap_err();
        assert!(matches!(e, ActionError::Busy(MessageId(2))));
        assert_eq!(set.lock().unwrap().len(), 1, "the claim on 1 was released");
        drop(held);
        let all = claim_all(&set, [MessageId(1), MessageId(1), MessageId(3)]).unwrap();
        assert_eq!(all.len(), 2);
    }
}
