//! The control socket's JSON views (`status`, `queue`, `message`, `log`): what LuCI's rpcd
//! plugin (`mailbag rpcd`) shows, computed here without the admin page's crate.
//!
//! Bounded work per request: `status` reads only the spool's in-RAM index (O(n) in the
//! messages held); a `queue` page lists the index (O(n log n)) and reads the records and
//! first [`message_head::HEAD_MAX`] bytes of at most [`PAGE_MAX`] rows, oldest first; `message` reads one record and at most [`MESSAGE_HEAD`] bytes of
//! its content. Every string is JSON-escaped, so a hostile subject stays text.

use super::actions::Actions;
use super::message_head::{self, headers_of, read_head};
use crate::config::{Config, Role};
use crate::daemon::delivery::hops::Overall;
use crate::daemon::events::EventLog;
use crate::firewall::ruleset::mode_name;
use crate::json::{Obj, array, str_array};
use crate::relay::NextHop;
use crate::spool::{MessageId, MessageMeta, RcptStatus, SpoolError, SpoolRead};

/// Most rows of one `queue` page.
pub const PAGE_MAX: usize = 200;
/// Bytes of a message read for `message` (headers and the start of the body).
pub const MESSAGE_HEAD: usize = 16 * 1024;
/// Header fields shown by `message`.
pub const HEADERS_MAX: usize = 100;
/// Body bytes shown by `message` (lossy UTF-8).
pub const PREVIEW_MAX: usize = 4096;
/// Most events of one `log` request.
pub const LOG_MAX: usize = 500;

/// The status view: role, next hop and silo state, queue and spool figures.
pub async fn status(a: &Actions, c: &Config) -> Result<String, SpoolError> {
    let figures = a
        .spool()
        .run(|s| {
            let u = s.usage();
            let used = u.bytes + u.reserved;
            let room = u.limits.max_bytes.min(u.device_bytes);
            let (oldest, next) = (s.oldest_received(), s.next_attempt());
            (
                u64::from(u.messages),
                used,
                room.saturating_sub(used),
                oldest,
                next,
            )
        })
        .await?;
    let (messages, used, free, oldest, next) = figures;
    let now = a.clock().unix_seconds();
    let delivery = a.delivery().status();
    // One entry per silo, in `relay.upstream-silo` order.
    let upstream = array(c.relay.upstream_silo.iter().map(|addr| {
        Obj::new()
            .str("address", addr)
            .bool(
                "reachable",
                NextHop::parse(addr, 0).is_ok_and(|h| delivery.silo_up(&h)),
            )
            .finish()
    }));
    Ok(Obj::new()
        .str("version", env!("CARGO_PKG_VERSION"))
        .str("hostname", &c.smtp.hostname)
        .str(
            "role",
            match c.role {
                Role::Edge => "edge",
                Role::Silo => "silo",
            },
        )
        .num("now", now)
        .raw(
            "primary",
            &Obj::new()
                .raw(
                    "next_hops",
                    &str_array(c.relay.next_hops.iter().map(String::as_str)),
                )
                .bool("up", delivery.primary == Overall::Up)
                .opt_num("since", delivery.since)
                .finish(),
        )
        .opt_num("last_delivery", delivery.last_delivery)
        .raw("upstream", &upstream)
        .num("queue_depth", messages)
        .opt_num("oldest_age_secs", oldest.map(|t| now.saturating_sub(t)))
        .num("spool_used_bytes", used)
        .num("spool_free_bytes", free)
        .opt_num("next_retry", next)
        .str("firewall_mode", mode_name(c.firewall.mode))
        .raw(
            "domains",
            &str_array(c.policy.domains.iter().map(String::as_str)),
        )
        .finish())
}

/// One page of the held queue, oldest first: `{"total": n, "rows": [...]}`.
pub async fn queue(a: &Actions, offset: usize, limit: usize) -> Result<String, SpoolError> {
    let limit = limit.min(PAGE_MAX);
    let now = a.clock().unix_seconds();
    a.spool()
        .run(move |s| {
            // Oldest first already.
            let order = s.list();
            let mut rows = Vec::with_capacity(limit.min(order.len()));
            for id in order.iter().skip(offset).take(limit).map(|e| e.id) {
                let meta = s.meta(id)?;
                let subject = message_head::read_subject(s, id)?;
                rows.push(row(&meta, &subject, now).finish());
            }
            Ok(Obj::new()
                .num("total", order.len() as u64)
                .num("offset", offset as u64)
                .raw("rows", &array(rows))
                .finish())
        })
        .await?
}

/// One message: its row, each recipient's state, its header fields and the start of its
/// body. `Ok(None)` if there is no such message.
pub async fn message(a: &Actions, id: MessageId) -> Result<Option<String>, SpoolError> {
    let now = a.clock().unix_seconds();
    a.spool()
        .run(move |s| {
            if !s.contains(id) {
                return Ok(None);
            }
            detail(s, id, now).map(Some)
        })
        .await?
}

fn detail(s: &impl SpoolRead, id: MessageId, now: u64) -> Result<String, SpoolError> {
    let meta = s.meta(id)?;
    let head = read_head(s, id, MESSAGE_HEAD)?;
    let (fields, body_at) = headers_of(&head, HEADERS_MAX);
    let subject = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
        .map_or("", |(_, v)| v.as_str());
    let headers = array(
        fields
            .iter()
            .map(|(n, v)| str_array([n.as_str(), v.as_str()])),
    );
    let body = &head[body_at.min(head.len())..];
    let shown = &body[..body.len().min(PREVIEW_MAX)];
    let recipients = array(meta.recipients.iter().map(|r| {
        Obj::new()
            .str("address", &r.address)
            .str(
                "status",
                match r.status {
                    RcptStatus::Pending => "pending",
                    RcptStatus::Delivered => "delivered",
                    RcptStatus::Failed => "failed",
                },
            )
            .finish()
    }));
    Ok(row(&meta, subject, now)
        .raw("recipient_status", &recipients)
        .raw("headers", &headers)
        .str("preview", &String::from_utf8_lossy(shown))
        .bool(
            "truncated",
            meta.size > head.len() as u64 || body.len() > shown.len(),
        )
        .finish())
}

fn row(meta: &MessageMeta, subject: &str, now: u64) -> Obj {
    Obj::new()
        .str("id", &meta.id.to_string())
        .num("age_secs", now.saturating_sub(meta.received_unix))
        .num("received", meta.received_unix)
        .str("sender", &meta.sender)
        .raw(
            "recipients",
            &str_array(meta.pending().map(|r| r.address.as_str())),
        )
        .str("subject", subject)
        .num("size", meta.size)
        .num("attempts", u64::from(meta.attempts))
        .opt_str(
            "last_error",
            (!meta.last_error.is_empty()).then_some(meta.last_error.as_str()),
        )
        .opt_num(
            "next_attempt",
            (meta.next_attempt_unix != 0).then_some(meta.next_attempt_unix),
        )
}

/// The newest `limit` events (flushes, deliveries, bounces, ...), newest first.
pub fn log(events: &EventLog, limit: usize) -> String {
    let list = events.recent(limit.min(LOG_MAX));
    let items = list.iter().map(|e| {
        Obj::new()
            .num("time", e.time)
            .str("kind", e.kind)
            .opt_str("message_id", e.message_id.as_deref())
            .str("text", &e.text)
            .finish()
    });
    Obj::new().raw("events", &array(items)).finish()
}
