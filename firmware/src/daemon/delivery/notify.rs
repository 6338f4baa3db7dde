//! One notice to every configured channel: mail to `notify.to` (and, for a router's
//! notice, its contacts) queued on the spool, a POST to each `notify.webhook`, each executable in
//! `notify.hook`. Webhooks and hooks run in tasks of their own, bounded in time, so a slow
//! receiver never holds up delivery; the mail is queued before this returns.
//!
//! Notice mail is ordinary spool mail: delivered by the lanes with retries. It must not
//! travel through the primary that is down, so the domains it goes to get routes of their
//! own ([`crate::monitor::config::relay_config`]): `notify.via` (`mx`, or next hops such as the
//! provider's silo).

use std::sync::PoisonError;

use super::deliverer::Deliverer;
use super::{hook, webhook};
use crate::monitor::metrics::Counters;
use crate::monitor::notice::{Event, Notice};
use crate::spool::Envelope;

/// Tells the admin about `event`: the log line and the event log at once, the channels
/// through damping.
pub(super) async fn notify(d: &Deliverer, event: Event) {
    let w = &d.watch;
    let now = d.clock.unix_seconds();
    let n = Notice::new(now, &w.settings().hostname, event);
    let line = n.subject();
    let line = line.split_once("] ").map_or(line.as_str(), |(_, l)| l);
    match n.kind() {
        "primary-up" | "router-back" => crate::log!("{line}"),
        _ => crate::warn!("{line}"),
    }
    w.events.push(now, n.kind(), None, line);
    let ready = w
        .damper
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .offer(n, now);
    for n in ready {
        send(d, &n).await;
    }
}

/// Hands `n` to every channel; a router's notice also goes to its contacts.
pub(super) async fn send(d: &Deliverer, n: &Notice) {
    let w = &d.watch;
    let s = w.settings();
    let mut to: Vec<String> = s.notify.to.clone();
    let contacts: Vec<String> = match &n.event {
        Event::RouterOverdue { router, .. } | Event::RouterBack { router, .. } => w
            .routers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rows()
            .iter()
            .find(|r| r.spec.id == *router)
            .map(|r| r.spec.contacts.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for c in &contacts {
        if !to.iter().any(|t| t.eq_ignore_ascii_case(c)) {
            to.push(c.clone());
        }
    }
    if !to.is_empty() {
        let ok = queue_mail(d, n, &s.from_address(), &to).await;
        Counters::inc(if ok {
            &w.counters.notices_sent
        } else {
            &w.counters.notices_failed
        });
    }
    for url in &s.notify.webhook {
        let (url, body, counters) = (url.clone(), n.json(), std::sync::Arc::clone(&w.counters));
        let tls = d.tls.verified.clone();
        crate::daemon::task::spawn(async move {
            match webhook::post(&url, &body, tls).await {
                Ok(status) => {
                    crate::log!("notice webhook {url}: HTTP {status}");
                    Counters::inc(&counters.notices_sent);
                }
                Err(e) => {
                    crate::warn!("notice webhook {url}: {e}");
                    Counters::inc(&counters.notices_failed);
                }
            }
        });
    }
    if !s.notify.hook.is_empty() {
        let (dir, env, counters) = (
            s.notify.hook.clone(),
            n.env(),
            std::sync::Arc::clone(&w.counters),
        );
        // The hooks run on a blocking thread, and their outcome is counted there.
        crate::daemon::task::spawn_blocking(move || {
            for (path, r) in hook::run_all(&dir, &env) {
                match r {
                    Ok(()) => Counters::inc(&counters.notices_sent),
                    Err(e) => {
                        crate::warn!("notice hook {path}: {e}");
                        Counters::inc(&counters.notices_failed);
                    }
                }
            }
        });
    }
}

/// Queues the notice as a message from `from` to `to`; true once it is durable.
async fn queue_mail(d: &Deliverer, n: &Notice, from: &str, to: &[String]) -> bool {
    let envelope = match Envelope::new(from, to.iter().map(String::as_str)) {
        Ok(e) => e,
        Err(e) => {
            crate::warn!("notice mail: {e}");
            return false;
        }
    };
    match d.spool.enqueue(envelope, &n.email(from, to)).await {
        Ok(id) => {
            crate::log!("{} notice {id} queued for {}", n.kind(), to.join(", "));
            d.kick.notify_one();
            true
        }
        Err(e) => {
            crate::warn!("{} notice for {}: not queued: {e}", n.kind(), to.join(", "));
            false
        }
    }
}
