//! Bounces and delay warnings (RFC 3464) for a message's recipients, queued to its sender
//! through the spool.

use super::deliverer::Deliverer;
use crate::relay::dsn::{DsnKind, DsnRecipient, Report, write_dsn};
use crate::spool::{Envelope, MessageMeta};

/// Original headers read into a bounce (the DSN writer cuts them at its own limit).
const DSN_HEADERS_READ: usize = 16 * 1024;

/// One recipient line of a bounce or delay notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The recipient (envelope forward-path, no brackets).
    pub recipient: String,
    /// RFC 3463 status, e.g. `(5, 1, 1)`.
    pub status: (u8, u16, u16),
    /// The next hop's reply, when one caused it (`Diagnostic-Code`).
    pub reply: Option<String>,
    /// Our own words for people.
    pub reason: String,
}

/// The first [`DSN_HEADERS_READ`] bytes of the message (the DSN writer keeps only the
/// header block).
pub(super) async fn original_headers(d: &Deliverer, meta: &MessageMeta) -> Vec<u8> {
    let mut headers = Vec::with_capacity(DSN_HEADERS_READ);
    while headers.len() < DSN_HEADERS_READ {
        match d.spool.body(meta.id, headers.len() as u64).await {
            Ok(chunk) if !chunk.is_empty() => headers.extend_from_slice(&chunk),
            _ => break,
        }
    }
    headers.truncate(DSN_HEADERS_READ);
    headers
}

/// Queues a notice to `meta`'s envelope sender. True when it is durably queued or none is
/// due (no recipients, null sender); false when it could not be written or queued.
pub(super) async fn send_dsn(
    d: &Deliverer,
    meta: &MessageMeta,
    headers: &[u8],
    kind: DsnKind,
    recipients: &[Notice],
    hop: &str,
) -> bool {
    if recipients.is_empty() {
        return true;
    }
    let now = d.clock.unix_seconds();
    let rcpts: Vec<DsnRecipient<'_>> = recipients
        .iter()
        .map(|n| DsnRecipient {
            address: &n.recipient,
            status: n.status,
            remote_mta: (!hop.is_empty() && n.reply.is_some()).then_some(hop),
            smtp_reply: n.reply.as_deref(),
            reason: &n.reason,
            last_attempt_unix: now,
        })
        .collect();
    let report = Report {
        reporting_mta: &d.hostname,
        queue_id: meta.id,
        arrival_unix: meta.received_unix,
        now_unix: now,
        kind,
        recipients: &rcpts,
    };
    let mut out = Vec::new();
    match write_dsn(&meta.sender, &report, headers, &mut out) {
        Ok(Some(env)) => {
            let Ok(envelope) = Envelope::new(&env.sender, [env.recipient.as_str()]) else {
                crate::warn!("{}: no bounce: the sender is no usable address", meta.id);
                return false;
            };
            match d.spool.enqueue(envelope, &out).await {
                Ok(dsn_id) => {
                    crate::log!(
                        "{}: {} notice {dsn_id} queued for <{}>",
                        meta.id,
                        if matches!(kind, DsnKind::Failure) {
                            "bounce"
                        } else {
                            "delay"
                        },
                        env.recipient
                    );
                    d.kick.notify_one();
                    true
                }
                Err(e) => {
                    crate::warn!("{}: could not queue the bounce: {e}", meta.id);
                    false
                }
            }
        }
        Ok(None) => {
            crate::log!(
                "{}: no bounce: the sender is <> (never bounce a bounce)",
                meta.id
            );
            true
        }
        Err(e) => {
            crate::warn!("{}: could not write the bounce: {e}", meta.id);
            false
        }
    }
}
