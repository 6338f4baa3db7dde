//! The operator's actions on the live queue — flush, delete, retry, bounce — implemented
//! once, here. The control socket (`mailbag queue …`, [`super::control`]) and the admin page
//! ([`super::web_backend`]) both call [`Actions`]; each action writes its own line in the
//! log and the event log, so the two can never tell different stories.
//!
//! - **Claims.** Delete and bounce first claim their messages from delivery
//!   ([`DeliveryHandle::claim_all`]), all or nothing. A message being delivered right now
//!   cannot be claimed: the action is refused with [`ActionError::Busy`] ("try again")
//!   rather than pulling the message out from under an SMTP transaction. While an action
//!   holds a claim the lanes skip the message. Claims are released when dropped.
//! - **Flush** makes held mail due through delivery ([`DeliveryHandle::flush`]: in RAM,
//!   never a rewrite of records on flash). **Retry** sets one message's next attempt to
//!   now in its record (it stays due after a restart) and wakes delivery.
//! - **Bounce order.** An operator bounce first commits the failure notice (RFC 3464,
//!   status 5.0.0, "returned by the administrator") durably, then removes the original. A
//!   crash in between leaves both: the notice goes out and the original stays queued, so
//!   bouncing it again sends a second notice. A crash never loses both. The null sender
//!   `<>` never gets a notice (RFC 5321 §4.5.5).
//! - **Delete by domain.** `delete --all-for DOMAIN` drops every still-pending recipient in
//!   DOMAIN: a message left with no pending recipient is removed, one that still has
//!   recipients in other domains keeps them (and its other recipients' delivery goes on).
//!   Such a partial change is made only to a message that is not due: a lane may already
//!   hold a copy of a due message's record, taken before the claim, and would write it
//!   back after its attempt. A due one is counted as busy ("run again").

use std::fmt;
use std::sync::Arc;

use mailbag_hal::{BlockDevice, Clock};

use crate::daemon::delivery::{DeliveryHandle, InFlight, Notice, Scope};
use crate::daemon::events::EventLog;
use crate::daemon::spool::SpoolHandle;
use crate::relay::dsn::DsnKind;
use crate::spool::message::domain_of;
use crate::spool::{MessageId, RcptStatus, SpoolError, Writer};

/// RFC 3463 status of an operator bounce ("other undefined status").
pub const ADMIN_STATUS: (u8, u16, u16) = (5, 0, 0);
/// What the notice tells people.
pub const ADMIN_REASON: &str = "returned by the administrator";

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

/// What an action on a list of messages did: per message done, or not found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done<T> {
    /// The messages acted on, with what came of each.
    pub done: Vec<(MessageId, T)>,
    /// The messages not in the queue (delivered or deleted meanwhile).
    pub missing: Vec<MessageId>,
}

impl<T> Default for Done<T> {
    fn default() -> Self {
        Self {
            done: Vec::new(),
            missing: Vec::new(),
        }
    }
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

impl DomainDeleted {
    /// What happened, in words (the control socket's answer and the event log's line).
    pub fn text(&self, domain: &str) -> String {
        let mut text = format!(
            "{} message(s) for {domain} deleted, {} kept for recipients in other domains",
            self.removed, self.trimmed
        );
        if self.busy > 0 {
            text.push_str(&format!(
                "; {} being delivered right now, not touched (run again)",
                self.busy
            ));
        }
        text
    }
}

/// What an operator bounce did to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounced {
    /// The envelope sender the notice went to (`None`: null sender or nothing pending).
    pub notice_to: Option<String>,
    /// Pending recipients reported as failed.
    pub recipients: usize,
}

impl Bounced {
    /// What happened to message `id`, in words (the control socket's answer and the event
    /// log's line).
    pub fn text(&self, id: MessageId) -> String {
        match &self.notice_to {
            Some(to) => format!(
                "bounced {id}: failure notice for {} recipient(s) queued for <{to}>",
                self.recipients
            ),
            None => format!("bounced {id}: no notice (null sender or nothing pending)"),
        }
    }
}

/// The operator's actions, over the spool's and delivery's handles; clones share them.
#[derive(Clone)]
pub struct Actions {
    spool: SpoolHandle,
    delivery: DeliveryHandle,
    events: Arc<EventLog>,
    clock: Arc<dyn Clock>,
}

fn spool_error(id: MessageId, e: SpoolError) -> ActionError {
    match e {
        SpoolError::NotFound => ActionError::NotFound(id),
        e => ActionError::Spool(e),
    }
}

impl Actions {
    /// Actions on `spool`, coordinated with `delivery`; each one is recorded in `events`.
    pub fn new(
        spool: SpoolHandle,
        delivery: DeliveryHandle,
        events: Arc<EventLog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            spool,
            delivery,
            events,
            clock,
        }
    }

    /// The spool's handle (for the views that read it).
    pub fn spool(&self) -> &SpoolHandle {
        &self.spool
    }

    /// Delivery's handle (for the views that show its state).
    pub fn delivery(&self) -> &DeliveryHandle {
        &self.delivery
    }

    /// The event log the actions write to.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// The daemon's clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    fn event(&self, kind: &'static str, id: Option<MessageId>, text: &str) {
        self.events.push(
            self.clock.unix_seconds(),
            kind,
            id.map(|i| i.to_string()),
            text,
        );
    }

    /// Makes held mail (of `domain`, or all) due now and starts delivering it; what was
    /// done, in words, and how many messages that covers.
    pub async fn flush(&self, domain: Option<&str>) -> (usize, String) {
        let n = self.delivery.flush(Scope::of(domain)).await;
        let what = domain.map_or("all domains".to_string(), |d| {
            format!("domain {}", d.to_ascii_lowercase())
        });
        let text = format!("{n} held message(s) of {what} made due; delivery started");
        self.event("flushed", None, &text);
        (n, text)
    }

    /// Removes each of `ids`; refused as a whole while one of them is being delivered.
    pub async fn delete(&self, ids: &[MessageId]) -> Result<Done<()>, ActionError> {
        let _claims = self
            .delivery
            .claim_all(ids.iter().copied())
            .map_err(ActionError::Busy)?;
        let mut out = Done::default();
        for &id in dedup(ids).iter() {
            match self.spool.remove(id).await {
                Ok(()) => {
                    crate::log!("{id}: deleted by the administrator");
                    self.event("deleted", Some(id), "deleted by the admin");
                    out.done.push((id, ()));
                }
                Err(SpoolError::NotFound) => out.missing.push(id),
                Err(e) => return Err(ActionError::Spool(e)),
            }
        }
        Ok(out)
    }

    /// Drops every pending recipient in `domain` (see the module docs).
    pub async fn delete_all_for(&self, domain: &str) -> Result<DomainDeleted, ActionError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let set = self.delivery.in_flight();
        let what = domain.clone();
        let now = self.clock.unix_seconds();
        let done = self
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
        self.event("deleted", None, &done.text(&domain));
        Ok(done)
    }

    /// Sets the next attempt of each of `ids` to now (in its record: it stays due after a
    /// restart) and wakes delivery.
    pub async fn retry(&self, ids: &[MessageId]) -> Result<Done<()>, ActionError> {
        let mut out = Done::default();
        for &id in dedup(ids).iter() {
            let r = self
                .spool
                .run(move |s| {
                    s.meta(id).and_then(|mut m| {
                        // 0 = due now; the lanes take it first.
                        m.next_attempt_unix = 0;
                        s.update(&m)
                    })
                })
                .await
                .map_err(ActionError::Spool)?;
            match r {
                Ok(()) => {
                    self.event("retried", Some(id), "next attempt set to now by the admin");
                    out.done.push((id, ()));
                }
                Err(SpoolError::NotFound) => out.missing.push(id),
                Err(e) => return Err(ActionError::Spool(e)),
            }
        }
        if !out.done.is_empty() {
            self.delivery.wake();
        }
        Ok(out)
    }

    /// Operator bounce of each of `ids` (see the module docs); refused as a whole while one
    /// of them is being delivered.
    pub async fn bounce(&self, ids: &[MessageId]) -> Result<Done<Bounced>, ActionError> {
        let _claims = self
            .delivery
            .claim_all(ids.iter().copied())
            .map_err(ActionError::Busy)?;
        let mut out = Done::default();
        for &id in dedup(ids).iter() {
            match self.bounce_claimed(id).await {
                Ok(b) => {
                    self.event("bounced", Some(id), &b.text(id));
                    out.done.push((id, b));
                }
                Err(ActionError::NotFound(_)) => out.missing.push(id),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// [`Actions::bounce`] of one message the caller has claimed.
    async fn bounce_claimed(&self, id: MessageId) -> Result<Bounced, ActionError> {
        let meta = self
            .spool
            .run(move |s| s.meta(id))
            .await
            .map_err(ActionError::Spool)?
            .map_err(|e| spool_error(id, e))?;
        let notices: Vec<Notice> = meta
            .pending()
            .map(|r| Notice {
                recipient: r.address.to_string(),
                status: ADMIN_STATUS,
                reply: None,
                reason: ADMIN_REASON.to_string(),
            })
            .collect();
        let notice_to =
            (!meta.sender.is_empty() && !notices.is_empty()).then(|| meta.sender.to_string());
        // Durable before the original goes: a crash now repeats a bounce, never loses both.
        if notice_to.is_some()
            && !self
                .delivery
                .notify_sender(&meta, DsnKind::Failure, &notices)
                .await
        {
            return Err(ActionError::NoticeFailed(id));
        }
        self.spool
            .remove(id)
            .await
            .map_err(|e| spool_error(id, e))?;
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
}

/// `ids` without repeats, in their order.
fn dedup(ids: &[MessageId]) -> Vec<MessageId> {
    let mut out: Vec<MessageId> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

/// The spool-thread half of [`Actions::delete_all_for`]; `domain` is lower-case.
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
        let Some(_claim) = set.try_claim(id) else {
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
        let held = set.try_claim(claimed).unwrap();

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
        assert_eq!(set.len(), 1, "only the outside claim is left");
        drop(held);
        // Once it is free, the claimed one goes too; nothing else changes.
        let r = s
            .with_writer(|w| delete_domain_in(w, &set, "gone.test", NOW))
            .unwrap()
            .unwrap();
        assert_eq!((r.removed, r.trimmed, r.busy), (1, 0, 1));
    }

    #[test]
    fn dedup_keeps_the_first_of_each() {
        let ids = [MessageId(3), MessageId(1), MessageId(3)];
        assert_eq!(dedup(&ids), [MessageId(3), MessageId(1)]);
    }
}
