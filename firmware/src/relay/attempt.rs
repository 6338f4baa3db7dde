//! One delivery attempt's [`Outcome`] → the spool record's new state, and what follows
//! from it (bounces, a delay warning, removal).
//!
//! # Contract
//!
//! - [`record_attempt`] is the only place that turns client results into
//!   [`RcptStatus`]es, so the rules live in one spot: 2xx → `Delivered`; 5xx (per
//!   recipient, or a permanent connection failure) → `Failed` and a bounce entry; 4xx or a
//!   temporary failure → stays `Pending` with the reply as `last_error`.
//! - Then the schedule decides: pending recipients get `next_attempt_unix`, or — when the
//!   lifetime is over — fail with status 4.4.7 ("delivery time expired", RFC 3463) and are
//!   bounced. A delay warning is due once, when the warning age has passed.
//! - Time base: wall-clock seconds, as the spool stores them (they survive reboots), used
//!   as `Instant::from_secs(unix)` for the schedule's pure arithmetic.
//! - The caller persists the record (`Spool::update`, or `Spool::remove` when
//!   [`AttemptResult::done`]) *before* it sends bounces, so a crash can repeat a bounce but
//!   never lose a recipient's state.

use embassy_time::Instant;

use super::client::{DeliveryJob, Outcome, RcptResult};
use super::reply::ServerReply;
use super::schedule::RetryPolicy;
use crate::spool::message::RECIPIENTS_MAX;
use crate::spool::{MessageMeta, RcptStatus};

/// RFC 3463 X.4.7: delivery time expired.
pub const EXPIRED_STATUS: (u8, u16, u16) = (4, 4, 7);

/// A recipient that failed for good in this attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounce {
    /// Index into `MessageMeta::recipients`.
    pub index: usize,
    /// RFC 3463 status for the DSN.
    pub status: (u8, u16, u16),
    /// The next hop's reply, when one caused it.
    pub reply: Option<ServerReply>,
    /// Words for people (the DSN's human part).
    pub reason: String,
}

/// What the caller does after [`record_attempt`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptResult {
    /// Recipients that failed for good now: send one DSN about them.
    pub bounces: Vec<Bounce>,
    /// Send a delay warning now (the record's `warned` is already set).
    pub warn: bool,
    /// No recipient is pending any more: remove the message.
    pub done: bool,
}

/// The client [`DeliveryJob`] for the pending recipients of `meta` that `route` accepts (those
/// going to the next hop at hand), and their indices for [`record_attempt`].
pub fn job<'a>(
    meta: &'a MessageMeta,
    route: impl Fn(&str) -> bool,
) -> (DeliveryJob<'a>, heapless::Vec<usize, RECIPIENTS_MAX>) {
    let mut job = DeliveryJob {
        sender: meta.sender.as_str(),
        recipients: heapless::Vec::new(),
        size: meta.size,
    };
    let mut indices = heapless::Vec::new();
    for (i, r) in meta.recipients.iter().enumerate() {
        if r.status == RcptStatus::Pending && route(&r.address) {
            // Cannot overflow: at most RECIPIENTS_MAX recipients exist.
            let _ = job.recipients.push(r.address.as_str());
            let _ = indices.push(i);
        }
    }
    (job, indices)
}

/// Apply `outcome` of an attempt at `attempted` (indices into `meta.recipients`, in the
/// order they were given to the client) finished at `now_unix`.
pub fn record_attempt(
    meta: &mut MessageMeta,
    attempted: &[usize],
    outcome: &Outcome,
    policy: &RetryPolicy,
    now_unix: u64,
) -> AttemptResult {
    record_attempts(meta, &[(attempted, outcome)], policy, now_unix)
}

/// [`record_attempt`] for one attempt that went to several next hops (recipients of
/// different domains on different routes): each part's outcome applies to its recipients,
/// and the attempt counts once.
pub fn record_attempts(
    meta: &mut MessageMeta,
    parts: &[(&[usize], &Outcome)],
    policy: &RetryPolicy,
    now_unix: u64,
) -> AttemptResult {
    let mut result = AttemptResult::default();
    // A reply's own enhanced code is the best status; 5.0.0 otherwise (RFC 3463 §3.1).
    let mut bounce = |meta: &mut MessageMeta,
                      index: usize,
                      reply: Option<&ServerReply>,
                      reason: String,
                      status: Option<(u8, u16, u16)>| {
        if let Some(r) = meta.recipients.get_mut(index) {
            if r.status == RcptStatus::Pending {
                r.status = RcptStatus::Failed;
                let status = status
                    .or_else(|| reply.and_then(ServerReply::enhanced))
                    .unwrap_or((5, 0, 0));
                result.bounces.push(Bounce {
                    index,
                    status,
                    reply: reply.cloned(),
                    reason,
                });
            }
        }
    };
    for &(attempted, outcome) in parts {
        match outcome {
            Outcome::Transaction(results) => {
                for (&index, r) in attempted.iter().zip(results.iter()) {
                    match r {
                        RcptResult::Delivered => {
                            if let Some(rcpt) = meta.recipients.get_mut(index) {
                                rcpt.status = RcptStatus::Delivered;
                            }
                        }
                        RcptResult::Bounced(reply) => {
                            bounce(
                                meta,
                                index,
                                Some(reply),
                                "refused by the next hop".into(),
                                None,
                            );
                        }
                        RcptResult::Deferred(reply) => meta.set_last_error(reply.text()),
                    }
                }
            }
            Outcome::Failed(f) if f.permanent() => {
                for &index in attempted {
                    bounce(meta, index, f.reply.as_ref(), f.reason.to_string(), None);
                }
            }
            Outcome::Failed(f) => meta.set_last_error(&f.to_string()),
            Outcome::Probed(_) | Outcome::Etrn(_) | Outcome::Beacon(_) | Outcome::Verified(_) => {}
        }
    }
    meta.attempts = meta.attempts.saturating_add(1);

    let first = Instant::from_secs(meta.received_unix);
    let now = Instant::from_secs(now_unix);
    if meta.pending().next().is_some() {
        match policy.next_attempt(meta.attempts, first, now) {
            Some(t) => meta.next_attempt_unix = t.as_secs(),
            None => {
                let last = meta.last_error.clone();
                let reason = if last.is_empty() {
                    "delivery time expired".to_string()
                } else {
                    format!("delivery time expired; last error: {last}")
                };
                for index in 0..meta.recipients.len() {
                    bounce(meta, index, None, reason.clone(), Some(EXPIRED_STATUS));
                }
            }
        }
    }
    let warn_due = policy.warn_at(first).is_some_and(|t| now >= t);
    if warn_due && !meta.warned && meta.pending().next().is_some() {
        meta.warned = true;
        result.warn = true;
    }
    result.done = meta.pending().next().is_none();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::RelayConfig;
    use crate::relay::client::{FailReason, Failure};
    use crate::spool::{MessageId, Recipient};

    const T0: u64 = 1_795_554_000;

    fn meta(n: usize) -> MessageMeta {
        let mut recipients = Vec::new();
        for i in 0..n {
            recipients.push(Recipient {
                address: format!("u{i}@example.com"),
                status: RcptStatus::Pending,
            });
        }
        MessageMeta {
            id: MessageId(7),
            received_unix: T0,
            size: 10,
            body_crc: 0,
            sender: "s@sender.example".to_string(),
            recipients,
            attempts: 0,
            next_attempt_unix: 0,
            last_error: String::new(),
            warned: false,
            verdict: None,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::from_config(&RelayConfig::default()).unwrap()
    }

    fn statuses(m: &MessageMeta) -> Vec<RcptStatus> {
        m.recipients.iter().map(|r| r.status).collect()
    }

    #[test]
    fn job_takes_the_pending_recipients_of_one_route() {
        let mut m = meta(4);
        m.recipients[1].status = RcptStatus::Delivered;
        m.recipients[3].address = "x@other.example".to_string();
        let (job, idx) = job(&m, |a| a.ends_with("@example.com"));
        assert_eq!(
            job.recipients.as_slice(),
            ["u0@example.com", "u2@example.com"]
        );
        assert_eq!(idx.as_slice(), [0, 2]);
        assert_eq!((job.sender, job.size), ("s@sender.example", 10));
    }

    #[test]
    fn mixed_results_update_each_recipient_and_bounce_only_the_refused() {
        let mut m = meta(3);
        let results = [
            RcptResult::Delivered,
            RcptResult::Bounced(ServerReply::new(550, "550 5.1.1 no such user")),
            RcptResult::Deferred(ServerReply::new(451, "451 4.2.0 greylisted")),
        ];
        let outcome = Outcome::Transaction(Box::new(results.into_iter().collect()));
        let r = record_attempt(&mut m, &[0, 1, 2], &outcome, &policy(), T0 + 10);
        use RcptStatus::*;
        assert_eq!(statuses(&m), [Delivered, Failed, Pending]);
        assert_eq!(r.bounces.len(), 1);
        assert_eq!((r.bounces[0].index, r.bounces[0].status), (1, (5, 1, 1)));
        assert!(!r.done && !r.warn);
        assert_eq!(m.last_error.as_str(), "451 4.2.0 greylisted");
        assert_eq!(m.attempts, 1);
        assert_eq!(
            m.next_attempt_unix,
            T0 + 10 + 15 * 60,
            "15m in the first 2h"
        );
    }

    #[test]
    fn connection_failures_defer_or_bounce_everyone_attempted() {
        let mut m = meta(2);
        let temp = Outcome::Failed(Failure {
            reason: FailReason::Timeout,
            reply: None,
        });
        let r = record_attempt(&mut m, &[0, 1], &temp, &policy(), T0 + 3 * 3600);
        assert!(r.bounces.is_empty() && !r.done);
        assert_eq!(m.last_error.as_str(), "timeout waiting for the next hop");
        assert_eq!(m.next_attempt_unix, T0 + 3 * 3600 + 30 * 60, "30m after 2h");
        assert!(!r.warn, "the default warning comes at 4 h");
        let r = record_attempt(&mut m, &[0, 1], &temp, &policy(), T0 + 4 * 3600);
        assert!(r.warn && m.warned, "due at 4 h");
        let r = record_attempt(&mut m, &[0, 1], &temp, &policy(), T0 + 5 * 3600);
        assert!(!r.warn, "only once");
        let perm = Outcome::Failed(Failure {
            reason: FailReason::Mail,
            reply: Some(ServerReply::new(553, "553 5.7.1 sender refused")),
        });
        let r = record_attempt(&mut m, &[0, 1], &perm, &policy(), T0 + 6 * 3600);
        assert!(r.done);
        assert_eq!(statuses(&m), [RcptStatus::Failed, RcptStatus::Failed]);
        assert!(r.bounces.iter().all(|b| b.status == (5, 7, 1)));
    }

    #[test]
    fn expiry_bounces_what_is_left_with_4_4_7() {
        let mut m = meta(2);
        m.recipients[0].status = RcptStatus::Delivered;
        let temp = Outcome::Failed(Failure {
            reason: FailReason::Closed,
            reply: None,
        });
        let r = record_attempt(&mut m, &[1], &temp, &policy(), T0 + 7 * 86_400);
        assert!(r.done);
        assert_eq!(r.bounces.len(), 1);
        assert_eq!(
            (r.bounces[0].index, r.bounces[0].status),
            (1, EXPIRED_STATUS)
        );
        assert!(
            r.bounces[0].reason.contains("connection closed"),
            "{}",
            r.bounces[0].reason
        );
        assert!(!r.warn, "no warning for a message that is bounced");
    }
}
