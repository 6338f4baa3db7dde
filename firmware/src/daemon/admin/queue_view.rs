//! The admin page's view of the held queue, computed in the spool thread.
//!
//! Bounded work per page: sorting by age, size, attempts, next attempt or id and the domain
//! filter use only the in-RAM index (`Spool::entries`); records and headers are read only for
//! the rows of the page. A text search or a sort by sender/recipients must read every
//! record, so it is refused past [`SCAN_MAX`] candidate messages (narrow by domain first).
//! Subjects come from the first bytes of a body ([`super::message_head`]).

use std::cmp::Ordering;

use mailbag_web::backend::{self as web, QueueQuery, QueueRow, SortKey};

use super::message_head::read_subject;
use crate::spool::{IndexEntry, MessageMeta, SpoolError, SpoolRead, domain_key};

/// Most messages a text search or sender/recipient sort reads records for.
pub const SCAN_MAX: usize = 500;

/// Why a page could not be computed.
#[derive(Debug)]
pub enum ViewError {
    /// The query needs more record reads than [`SCAN_MAX`].
    TooBroad(usize),
    /// The spool failed.
    Spool(SpoolError),
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooBroad(n) => write!(
                f,
                "searching text or sorting by address reads every message; {n} held is more \
                 than {SCAN_MAX}: filter by domain first"
            ),
            Self::Spool(e) => write!(f, "{e}"),
        }
    }
}

impl From<SpoolError> for ViewError {
    fn from(e: SpoolError) -> Self {
        Self::Spool(e)
    }
}

/// One page of the queue.
pub fn page(spool: &impl SpoolRead, q: &QueueQuery, now: u64) -> Result<web::QueuePage, ViewError> {
    // The domain filter is by the domain of each message's first recipient (the key the
    // index keeps: a message's lane).
    let domain = q.domain.as_deref().map(domain_key);
    let listed = spool.list();
    let mut cands: Vec<&IndexEntry> = listed
        .iter()
        .filter(|e| domain.is_none_or(|k| e.domain == k))
        .collect();
    let needs_records = q.text.is_some() || matches!(q.sort, SortKey::Sender | SortKey::Recipients);
    let (total, rows) = if needs_records {
        if cands.len() > SCAN_MAX {
            return Err(ViewError::TooBroad(cands.len()));
        }
        let mut all = Vec::with_capacity(cands.len());
        for e in cands {
            let r = row(spool, e.id, now, q.text.is_some())?;
            if q.text.as_deref().is_none_or(|t| matches_text(&r, t)) {
                all.push(r);
            }
        }
        all.sort_by(|a, b| order_rows(q.sort, a, b));
        if q.descending {
            all.reverse();
        }
        let total = all.len();
        (
            total,
            all.into_iter().skip(q.offset).take(q.limit).collect(),
        )
    } else {
        cands.sort_by(|a, b| order_entries(q.sort, a, b));
        if q.descending {
            cands.reverse();
        }
        let rows = cands
            .iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|e| row(spool, e.id, now, true))
            .collect::<Result<_, _>>()?;
        (cands.len(), rows)
    };
    Ok(web::QueuePage { total, rows })
}

/// The queue row of one message: its record, plus its subject when `subject` is set.
pub fn row(
    spool: &impl SpoolRead,
    id: crate::spool::MessageId,
    now: u64,
    subject: bool,
) -> Result<QueueRow, SpoolError> {
    let meta = spool.meta(id)?;
    let subject = if subject {
        read_subject(spool, id)?
    } else {
        String::new()
    };
    Ok(row_of(&meta, subject, now))
}

/// The web id of a spool id (16 hex digits always parse).
pub fn web_id(id: crate::spool::MessageId) -> web::MessageId {
    // Invariant: `{:016X}` is 16 ASCII hex digits, always a valid web id.
    #[allow(clippy::expect_used)]
    web::MessageId::parse(&id.to_string()).expect("16 hex digits are a valid web id")
}

fn row_of(meta: &MessageMeta, subject: String, now: u64) -> QueueRow {
    QueueRow {
        id: web_id(meta.id),
        age_secs: now.saturating_sub(meta.received_unix),
        sender: meta.sender.to_string(),
        recipients: meta
            .recipients
            .iter()
            .map(|r| r.address.to_string())
            .collect(),
        subject,
        size: meta.size,
        attempts: meta.attempts,
        last_error: (!meta.last_error.is_empty()).then(|| meta.last_error.to_string()),
        next_attempt: (meta.next_attempt_unix != 0).then_some(meta.next_attempt_unix),
    }
}

fn order_entries(key: SortKey, a: &IndexEntry, b: &IndexEntry) -> Ordering {
    match key {
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Attempts => a.attempts.cmp(&b.attempts),
        SortKey::NextAttempt => a.next_attempt_unix.cmp(&b.next_attempt_unix),
        SortKey::Id => a.id.cmp(&b.id),
        // Oldest first; the sender/recipient keys never get here.
        SortKey::Age | SortKey::Sender | SortKey::Recipients => {
            a.received_unix.cmp(&b.received_unix)
        }
    }
    .then(a.id.cmp(&b.id))
}

fn order_rows(key: SortKey, a: &QueueRow, b: &QueueRow) -> Ordering {
    let lower = |s: &str| s.to_ascii_lowercase();
    match key {
        SortKey::Sender => lower(&a.sender).cmp(&lower(&b.sender)),
        SortKey::Recipients => {
            let first = |r: &QueueRow| r.recipients.first().map(|s| lower(s)).unwrap_or_default();
            first(a).cmp(&first(b))
        }
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Attempts => a.attempts.cmp(&b.attempts),
        SortKey::NextAttempt => a.next_attempt.cmp(&b.next_attempt),
        SortKey::Id => a.id.cmp(&b.id),
        SortKey::Age => b.age_secs.cmp(&a.age_secs),
    }
    .then(a.id.cmp(&b.id))
}

fn matches_text(r: &QueueRow, text: &str) -> bool {
    let t = text.to_lowercase();
    let has = |s: &str| s.to_lowercase().contains(&t);
    has(r.id.as_str())
        || has(&r.sender)
        || r.recipients.iter().any(|s| has(s))
        || has(&r.subject)
        || r.last_error.as_deref().is_some_and(has)
}
