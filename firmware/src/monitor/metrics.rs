//! Metrics: the counters the daemon bumps ([`Counters`], one per daemon, shared by
//! reference) and their rendering in the Prometheus text exposition format (version
//! 0.0.4) with the gauges read at scrape time ([`Gauges`]).
//!
//! **Adding counters for a check** (DNSBL, recipient verification, attachment rules…):
//! call [`Counters::check`] with the check's name and its result, both `'static`
//! (`counters.check("dnsbl", "listed")`). Each pair becomes one row of
//! `mailbag_check_results_total{check="dnsbl",result="listed"}`; at most
//! [`CHECK_ROWS_MAX`] pairs exist (more are counted in `result="other"` of that check
//! when it has a row, else dropped and counted in `mailbag_check_rows_dropped_total`).
//! Nothing else is needed: the renderer reads every row.
//!
//! Counting is a relaxed atomic add (or a short lock for check rows); rendering is
//! O(rows). Counters are 32-bit: 32-bit MIPS has no 64-bit atomics, and 4 billion
//! messages is beyond any router's life (Prometheus treats a wrap as a reset anyway). Label values are escaped per the format (`\\`, `\"`, `\n`).

use core::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

/// Most (check, result) pairs.
pub const CHECK_ROWS_MAX: usize = 64;

/// Why an SMTP command was refused, from its reply's enhanced status (RFC 3463).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Relaying denied: a recipient outside our domains (x.7.1 to RCPT).
    Relay,
    /// Unknown recipient (x.1.1).
    Recipient,
    /// Too big (x.3.4, 552).
    Size,
    /// The spool is full (452 4.3.1).
    SpoolFull,
    /// Too many sessions or too busy (421, x.3.2, x.4.5).
    Busy,
    /// Other policy refusals (x.7.x).
    Policy,
    /// Bad syntax or sequence (x.5.x, 500-504).
    Protocol,
    /// Anything else.
    Other,
}

impl Refusal {
    /// All of them, in rendering order.
    pub const ALL: [Refusal; 8] = [
        Self::Relay,
        Self::Recipient,
        Self::Size,
        Self::SpoolFull,
        Self::Busy,
        Self::Policy,
        Self::Protocol,
        Self::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Recipient => "recipient",
            Self::Size => "size",
            Self::SpoolFull => "spool-full",
            Self::Busy => "busy",
            Self::Policy => "policy",
            Self::Protocol => "protocol",
            Self::Other => "other",
        }
    }

    /// The refusal a reply's wire text stands for; `None` for 2xx/3xx.
    pub fn of_reply(wire: &str) -> Option<Self> {
        let code: u16 = wire.get(..3)?.parse().ok()?;
        if code < 400 {
            return None;
        }
        let status = wire
            .get(4..)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("");
        let mut parts = status.splitn(3, '.').skip(1);
        let (subject, detail) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        Some(match (code, subject, detail) {
            (_, "7", "1") if code >= 500 => Self::Relay,
            (_, "1", "1") => Self::Recipient,
            (552, _, _) | (_, "3", "4") => Self::Size,
            (452, "3", "1") => Self::SpoolFull,
            (421, _, _) | (_, "3", "2") | (_, "4", "5") => Self::Busy,
            (_, "7", _) => Self::Policy,
            (500..=504, _, _) | (_, "5", _) => Self::Protocol,
            _ => Self::Other,
        })
    }
}

/// Counters since the daemon started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages acknowledged (250 after DATA).
    pub accepted: AtomicU32,
    refused: [AtomicU32; Refusal::ALL.len()],
    /// Messages whose every recipient was delivered (each message once).
    pub delivered: AtomicU32,
    /// Delivery attempts that left recipients to retry.
    pub deferred: AtomicU32,
    /// Recipients bounced (permanent failures and expiries).
    pub bounced: AtomicU32,
    /// Messages that reached their lifetime.
    pub expired: AtomicU32,
    /// Beacons sent (edge) that the silo accepted.
    pub beacons_sent: AtomicU32,
    /// Beacons accepted (silo).
    pub beacons_accepted: AtomicU32,
    /// Beacons refused (silo): forged, replayed, unknown, malformed.
    pub beacons_refused: AtomicU32,
    /// Notices handed to a channel (mail queued, webhook 2xx, hook exit 0).
    pub notices_sent: AtomicU32,
    /// Notices a channel failed to take.
    pub notices_failed: AtomicU32,
    checks: Mutex<Vec<(&'static str, &'static str, u64)>>,
    checks_dropped: AtomicU32,
}

impl Counters {
    /// One refusal.
    pub fn refused(&self, why: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|r| *r == why) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one to `check`'s `result` (see the module doc).
    pub fn check(&self, check: &'static str, result: &'static str) {
        let mut rows = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(row) = rows.iter_mut().find(|r| r.0 == check && r.1 == result) {
            row.2 += 1;
        } else if rows.len() < CHECK_ROWS_MAX {
            rows.push((check, result, 1));
        } else if let Some(row) = rows.iter_mut().find(|r| r.0 == check && r.1 == "other") {
            row.2 += 1;
        } else {
            self.checks_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one to a plain counter (`&counters.delivered`).
    pub fn inc(c: &AtomicU32) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// One next hop (route) for the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteGauge {
    /// The route's name.
    pub route: String,
    /// `Some(true)` up, `Some(false)` down, `None` not known yet.
    pub up: Option<bool>,
    /// Unix seconds of its last change.
    pub since: u64,
}

/// A watched router (silo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterGauge {
    /// Its id.
    pub router: String,
    /// Unix seconds of its last beacon.
    pub last_seen: Option<u64>,
    /// Overdue now.
    pub overdue: bool,
    /// Messages it held at its last beacon.
    pub held: u64,
}

/// Values read at scrape time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Messages held.
    pub held_messages: u64,
    /// Their bytes on the spool.
    pub held_bytes: u64,
    /// Spool bytes free.
    pub spool_free_bytes: u64,
    /// Age of the oldest held message (seconds), if any.
    pub oldest_age_secs: Option<u64>,
    /// Unix seconds of the last delivery, if any.
    pub last_delivery: Option<u64>,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Next-hop state per route.
    pub routes: Vec<RouteGauge>,
    /// Upstream silos (edge): reachable or not.
    pub upstream: Vec<(String, bool)>,
    /// Watched routers (silo).
    pub routers: Vec<RouterGauge>,
}

/// The exposition text.
pub fn render(c: &Counters, g: &Gauges) -> String {
    let mut o = String::with_capacity(4096);
    let n = |a: &AtomicU32| u64::from(a.load(Ordering::Relaxed));
    let mut one = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            o,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    one(
        "mailbag_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        g.uptime_secs,
    );
    one(
        "mailbag_messages_accepted_total",
        "counter",
        "Messages accepted (250 after DATA).",
        n(&c.accepted),
    );
    one(
        "mailbag_messages_delivered_total",
        "counter",
        "Messages delivered to every recipient.",
        n(&c.delivered),
    );
    one(
        "mailbag_delivery_deferred_total",
        "counter",
        "Delivery attempts that left recipients to retry.",
        n(&c.deferred),
    );
    one(
        "mailbag_recipients_bounced_total",
        "counter",
        "Recipients returned to their sender.",
        n(&c.bounced),
    );
    one(
        "mailbag_messages_expired_total",
        "counter",
        "Messages that reached relay.lifetime-days.",
        n(&c.expired),
    );
    one(
        "mailbag_held_messages",
        "gauge",
        "Messages held on the spool.",
        g.held_messages,
    );
    one(
        "mailbag_held_bytes",
        "gauge",
        "Bytes of held messages on the spool.",
        g.held_bytes,
    );
    one(
        "mailbag_spool_free_bytes",
        "gauge",
        "Spool bytes still free.",
        g.spool_free_bytes,
    );
    one(
        "mailbag_oldest_message_age_seconds",
        "gauge",
        "Age of the oldest held message (0: none held).",
        g.oldest_age_secs.unwrap_or(0),
    );
    one(
        "mailbag_last_delivery_timestamp_seconds",
        "gauge",
        "Unix time of the last delivery (0: none yet).",
        g.last_delivery.unwrap_or(0),
    );
    one(
        "mailbag_beacons_sent_total",
        "counter",
        "Beacons the upstream silo accepted.",
        n(&c.beacons_sent),
    );
    one(
        "mailbag_beacons_accepted_total",
        "counter",
        "Beacons accepted from routers.",
        n(&c.beacons_accepted),
    );
    one(
        "mailbag_beacons_refused_total",
        "counter",
        "Beacons refused (forged, replayed, unknown, malformed).",
        n(&c.beacons_refused),
    );
    one(
        "mailbag_notices_sent_total",
        "counter",
        "Notices handed to a channel (mail, webhook, hook).",
        n(&c.notices_sent),
    );
    one(
        "mailbag_notices_failed_total",
        "counter",
        "Notices a channel failed to take.",
        n(&c.notices_failed),
    );

    head(
        &mut o,
        "mailbag_smtp_refused_total",
        "counter",
        "SMTP commands refused, by reason.",
    );
    for (i, r) in Refusal::ALL.iter().enumerate() {
        let _ = writeln!(
            o,
            "mailbag_smtp_refused_total{{reason=\"{}\"}} {}",
            r.as_str(),
            n(&c.refused[i])
        );
    }
    head(
        &mut o,
        "mailbag_next_hop_up",
        "gauge",
        "1 while the route's next hop answers, 0 while it is down (absent: not known yet).",
    );
    for r in &g.routes {
        if let Some(up) = r.up {
            let _ = writeln!(
                o,
                "mailbag_next_hop_up{{route=\"{}\"}} {}",
                label(&r.route),
                u8::from(up)
            );
        }
    }
    head(
        &mut o,
        "mailbag_next_hop_since_timestamp_seconds",
        "gauge",
        "Unix time of the route's last up/down change.",
    );
    for r in g.routes.iter().filter(|r| r.up.is_some()) {
        let _ = writeln!(
            o,
            "mailbag_next_hop_since_timestamp_seconds{{route=\"{}\"}} {}",
            label(&r.route),
            r.since
        );
    }
    head(
        &mut o,
        "mailbag_upstream_silo_up",
        "gauge",
        "1 while the upstream silo answers.",
    );
    for (silo, up) in &g.upstream {
        let _ = writeln!(
            o,
            "mailbag_upstream_silo_up{{silo=\"{}\"}} {}",
            label(silo),
            u8::from(*up)
        );
    }
    head(
        &mut o,
        "mailbag_router_overdue",
        "gauge",
        "1 while a watched router's beacons are overdue.",
    );
    for r in &g.routers {
        let _ = writeln!(
            o,
            "mailbag_router_overdue{{router=\"{}\"}} {}",
            label(&r.router),
            u8::from(r.overdue)
        );
    }
    head(
        &mut o,
        "mailbag_router_last_beacon_timestamp_seconds",
        "gauge",
        "Unix time of a router's last beacon.",
    );
    for r in &g.routers {
        if let Some(t) = r.last_seen {
            let _ = writeln!(
                o,
                "mailbag_router_last_beacon_timestamp_seconds{{router=\"{}\"}} {t}",
                label(&r.router)
            );
        }
    }
    head(
        &mut o,
        "mailbag_router_held_messages",
        "gauge",
        "Messages a router held at its last beacon.",
    );
    for r in &g.routers {
        let _ = writeln!(
            o,
            "mailbag_router_held_messages{{router=\"{}\"}} {}",
            label(&r.router),
            r.held
        );
    }
    head(
        &mut o,
        "mailbag_check_results_total",
        "counter",
        "Results of the protection checks, by check and result.",
    );
    let mut rows = c
        .checks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    rows.sort_unstable();
    for (check, result, v) in rows {
        let _ = writeln!(
            o,
            "mailbag_check_results_total{{check=\"{}\",result=\"{}\"}} {v}",
            label(check),
            label(result)
        );
    }
    let dropped = n(&c.checks_dropped);
    let _ = write!(
        o,
        "# HELP mailbag_check_rows_dropped_total Check results not counted: more than {CHECK_ROWS_MAX} rows.\n# TYPE mailbag_check_rows_dropped_total counter\nmailbag_check_rows_dropped_total {dropped}\n"
    );
    o
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// A label value escaped per the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_their_status() {
        let of = |w: &str| Refusal::of_reply(w);
        assert_eq!(of("550 5.7.1 relay denied\r\n"), Some(Refusal::Relay));
        assert_eq!(of("550 5.1.1 no such user\r\n"), Some(Refusal::Recipient));
        assert_eq!(of("552 5.3.4 too big\r\n"), Some(Refusal::Size));
        assert_eq!(of("452 4.3.1 spool full\r\n"), Some(Refusal::SpoolFull));
        assert_eq!(of("421 4.3.2 busy\r\n"), Some(Refusal::Busy));
        assert_eq!(of("554 5.7.0 listed\r\n"), Some(Refusal::Policy));
        assert_eq!(of("503 5.5.1 MAIL first\r\n"), Some(Refusal::Protocol));
        assert_eq!(of("451 4.0.0 hmm\r\n"), Some(Refusal::Other));
        assert_eq!(of("250 2.0.0 ok\r\n"), None);
        assert_eq!(of("x"), None);
    }

    #[test]
    fn the_text_has_every_family_and_escapes_labels() {
        let c = Counters::default();
        Counters::inc(&c.accepted);
        c.refused(Refusal::Relay);
        c.refused(Refusal::Relay);
        c.check("dnsbl", "listed");
        c.check("dnsbl", "listed");
        c.check("dnsbl", "clean");
        let g = Gauges {
            held_messages: 3,
            routes: vec![
                RouteGauge {
                    route: "a\"b".into(),
                    up: Some(false),
                    since: 7,
                },
                RouteGauge {
                    route: "x".into(),
                    up: None,
                    since: 0,
                },
            ],
            ..Gauges::default()
        };
        let t = render(&c, &g);
        assert!(t.contains("\nmailbag_messages_accepted_total 1\n"));
        assert!(t.contains("\nmailbag_smtp_refused_total{reason=\"relay\"} 2\n"));
        assert!(t.contains("\nmailbag_held_messages 3\n"));
        assert!(t.contains("\nmailbag_next_hop_up{route=\"a\\\"b\"} 0\n"));
        assert!(!t.contains("route=\"x\""), "unknown state is absent, not 0");
        assert!(t.contains("\nmailbag_check_results_total{check=\"dnsbl\",result=\"clean\"} 1\nmailbag_check_results_total{check=\"dnsbl\",result=\"listed\"} 2\n"));
        // Every sample line belongs to a family announced by # TYPE.
        let mut family = "";
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(family), "{line} outside {family}");
            }
        }
    }

    #[test]
    fn check_rows_are_bounded() {
        let c = Counters::default();
        // Fill the table with distinct results of one check, then overflow it.
        let results: Vec<&'static str> = (0..CHECK_ROWS_MAX + 2)
            .map(|i| &*Box::leak(format!("r{i}").into_boxed_str()))
            .collect();
        for r in &results {
            c.check("attachments", r);
        }
        let rows = c.checks.lock().unwrap().len();
        assert_eq!(rows, CHECK_ROWS_MAX);
        assert!(render(&c, &Gauges::default()).contains("mailbag_check_rows_dropped_total 2\n"));
    }
}
