//! What the admin is told, and the words for it. One [`Notice`] becomes an email
//! ([`Notice::email`]), a webhook's JSON document ([`Notice::json`]) and a hook's
//! environment ([`Notice::env`]) from the same fields, so the three never disagree.
//!
//! Texts are ASCII (subjects need no RFC 2047 encoding); values that came from peers
//! (a next hop's reply) have control characters replaced and are cut, so no notice can
//! carry a header or line break it did not write itself.

use core::fmt::Write as _;

use crate::smtp::received::Rfc5322Date;

/// Longest free-text value kept in a notice (a next hop's last reply).
pub const REASON_MAX: usize = 200;

/// Something the admin should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A route's next hops stopped answering: its mail is held here from now on.
    PrimaryDown {
        /// The route (`relay.routes` name, or `next-hops`).
        route: String,
        /// The next hop last tried.
        hop: String,
        /// Messages held at that moment.
        held: u64,
        /// Why (the last failure).
        reason: String,
    },
    /// A route answers again: what it held goes now.
    PrimaryUp {
        /// The route.
        route: String,
        /// The next hop that answered.
        hop: String,
        /// How long it was down (seconds).
        down_secs: u64,
        /// Messages held when it came back.
        held: u64,
        /// Their size in bytes.
        held_bytes: u64,
    },
    /// The spool passed `notify.spool-full-percent`: soon new mail gets 452.
    SpoolFull {
        /// Bytes used.
        used: u64,
        /// Bytes it may use.
        capacity: u64,
        /// Messages held.
        held: u64,
    },
    /// A message reached `relay.lifetime-days` undelivered and was bounced.
    Expired {
        /// Its spool id.
        id: String,
        /// Its envelope sender (`<>` for none).
        sender: String,
        /// Recipients given up on.
        recipients: u64,
        /// The lifetime in days.
        days: u64,
    },
    /// Silo: a router's beacons stopped.
    RouterOverdue {
        /// The router's id.
        router: String,
        /// Seconds since its last beacon (or since the silo started).
        silent_secs: u64,
        /// Messages it held at its last beacon.
        held: u64,
        /// Its primary's state at its last beacon (`up`, `down`, `unknown`).
        primary: String,
    },
    /// Silo: an overdue router sends beacons again.
    RouterBack {
        /// The router's id.
        router: String,
        /// How long it was silent (seconds).
        silent_secs: u64,
        /// Messages it holds now.
        held: u64,
        /// Its primary's state now.
        primary: String,
    },
}

/// A field value, for JSON and the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Text.
    Str(String),
    /// A count, seconds or bytes.
    Num(u64),
}

/// One notice: the event, when, by whom, and how many like it damping held back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Unix seconds.
    pub time: u64,
    /// Our host name (`smtp.hostname`).
    pub host: String,
    /// What happened.
    pub event: Event,
    /// Notices of the same kind and subject not sent since the last one (damping).
    pub suppressed: u32,
}

impl Notice {
    /// A notice at `time` from `host`.
    pub fn new(time: u64, host: &str, event: Event) -> Self {
        Self {
            time,
            host: host.to_owned(),
            event,
            suppressed: 0,
        }
    }

    /// `primary-down`, `primary-up`, `spool-full`, `expired`, `router-overdue`, `router-back`.
    pub fn kind(&self) -> &'static str {
        match self.event {
            Event::PrimaryDown { .. } => "primary-down",
            Event::PrimaryUp { .. } => "primary-up",
            Event::SpoolFull { .. } => "spool-full",
            Event::Expired { .. } => "expired",
            Event::RouterOverdue { .. } => "router-overdue",
            Event::RouterBack { .. } => "router-back",
        }
    }

    /// What damping counts per: a route's down and up share one (the last state wins),
    /// as do a router's overdue and back.
    pub fn subject_key(&self) -> String {
        match &self.event {
            Event::PrimaryDown { route, .. } | Event::PrimaryUp { route, .. } => {
                format!("primary {route}")
            }
            Event::SpoolFull { .. } => "spool".into(),
            Event::Expired { .. } => "expired".into(),
            Event::RouterOverdue { router, .. } | Event::RouterBack { router, .. } => {
                format!("router {router}")
            }
        }
    }

    /// The email subject (also the log line).
    pub fn subject(&self) -> String {
        let what = match &self.event {
            Event::PrimaryDown {
                route, hop, held, ..
            } => format!(
                "next hop {hop} ({route}) is DOWN: mail for it is held here ({held} held now)"
            ),
            Event::PrimaryUp {
                route,
                hop,
                down_secs,
                held,
                held_bytes,
            } => format!(
                "next hop {hop} ({route}) is UP again after {}: delivering {held} held message(s), {}",
                Duration(*down_secs),
                Bytes(*held_bytes)
            ),
            Event::SpoolFull { used, capacity, .. } => format!(
                "spool nearly full: {}% used ({} of {})",
                percent(*used, *capacity),
                Bytes(*used),
                Bytes(*capacity)
            ),
            Event::Expired { id, days, .. } => {
                format!("message {id} expired after {days} days and was returned to its sender")
            }
            Event::RouterOverdue {
                router,
                silent_secs,
                ..
            } => {
                format!(
                    "router {router} is SILENT: no beacon for {}",
                    Duration(*silent_secs)
                )
            }
            Event::RouterBack {
                router,
                silent_secs,
                ..
            } => {
                format!(
                    "router {router} is back after {} of silence",
                    Duration(*silent_secs)
                )
            }
        };
        format!("[mailbag {}] {what}", self.host)
    }

    /// The body for people: what happened, what it means, what to do.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let when = Rfc5322Date(self.time);
        let _ = match &self.event {
            Event::PrimaryDown {
                route,
                hop,
                held,
                reason,
            } => write!(
                t,
                "{when}: {host} cannot reach the next hop {hop} (route {route}).\n\
                 Last error: {reason}\n\n\
                 Mail for it is accepted and held on {host}'s spool ({held} message(s) now) and\n\
                 delivered as soon as it answers again; you will get a notice then.\n",
                host = self.host,
                reason = clean(reason),
            ),
            Event::PrimaryUp {
                route,
                hop,
                down_secs,
                held,
                held_bytes,
            } => write!(
                t,
                "{when}: the next hop {hop} (route {route}) answers again after {}.\n\n\
                 {held} held message(s) ({}) are being delivered to it now.\n",
                Duration(*down_secs),
                Bytes(*held_bytes)
            ),
            Event::SpoolFull {
                used,
                capacity,
                held,
            } => write!(
                t,
                "{when}: {host}'s spool is {}% full ({} of {}, {held} message(s)).\n\n\
                 When it is full, new mail is answered 452 (senders retry later). Bring the\n\
                 next hop back, or make room (mailbag queue list / delete).\n",
                percent(*used, *capacity),
                Bytes(*used),
                Bytes(*capacity),
                host = self.host,
            ),
            Event::Expired {
                id,
                sender,
                recipients,
                days,
            } => write!(
                t,
                "{when}: message {id} from {sender} could not be delivered to {recipients}\n\
                 recipient(s) within {days} days (relay.lifetime-days). Its sender was sent a\n\
                 failure report, and the message was removed from {host}.\n",
                sender = if sender.is_empty() { "<>" } else { sender },
                host = self.host,
            ),
            Event::RouterOverdue {
                router,
                silent_secs,
                held,
                primary,
            } => write!(
                t,
                "{when}: no heartbeat from router {router} for {}.\n\
                 At its last beacon it held {held} message(s) and its primary was {primary}.\n\n\
                 The router, its power or its internet link may be down. Mail for its\n\
                 domains waits at {host} meanwhile.\n",
                Duration(*silent_secs),
                host = self.host,
            ),
            Event::RouterBack {
                router,
                silent_secs,
                held,
                primary,
            } => write!(
                t,
                "{when}: router {router} sends heartbeats again after {} of silence.\n\
                 It holds {held} message(s); its primary is {primary}.\n",
                Duration(*silent_secs)
            ),
        };
        if self.suppressed > 0 {
            let _ = write!(
                t,
                "\n({} similar notice(s) were held back since the last one: notify.damping.)\n",
                self.suppressed
            );
        }
        t
    }

    /// The event's own fields, in a fixed order.
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        use Value::{Num, Str};
        let s = |v: &str| Str(clean(v));
        match &self.event {
            Event::PrimaryDown {
                route,
                hop,
                held,
                reason,
            } => vec![
                ("route", s(route)),
                ("hop", s(hop)),
                ("held", Num(*held)),
                ("reason", s(reason)),
            ],
            Event::PrimaryUp {
                route,
                hop,
                down_secs,
                held,
                held_bytes,
            } => vec![
                ("route", s(route)),
                ("hop", s(hop)),
                ("down_secs", Num(*down_secs)),
                ("held", Num(*held)),
                ("held_bytes", Num(*held_bytes)),
            ],
            Event::SpoolFull {
                used,
                capacity,
                held,
            } => vec![
                ("used_bytes", Num(*used)),
                ("capacity_bytes", Num(*capacity)),
                ("held", Num(*held)),
            ],
            Event::Expired {
                id,
                sender,
                recipients,
                days,
            } => vec![
                ("message_id", s(id)),
                ("sender", s(sender)),
                ("recipients", Num(*recipients)),
                ("days", Num(*days)),
            ],
            Event::RouterOverdue {
                router,
                silent_secs,
                held,
                primary,
            }
            | Event::RouterBack {
                router,
                silent_secs,
                held,
                primary,
            } => vec![
                ("router", s(router)),
                ("silent_secs", Num(*silent_secs)),
                ("held", Num(*held)),
                ("primary", s(primary)),
            ],
        }
    }

    /// The webhook's document: `{"event", "host", "time", "subject", fields…, "suppressed"}`.
    pub fn json(&self) -> String {
        let mut j = String::from("{");
        let _ = write!(
            j,
            "\"event\":\"{}\",\"host\":{},\"time\":{},\"subject\":{}",
            self.kind(),
            json_str(&self.host),
            self.time,
            json_str(&self.subject())
        );
        for (k, v) in self.fields() {
            let _ = match v {
                Value::Str(s) => write!(j, ",\"{k}\":{}", json_str(&s)),
                Value::Num(n) => write!(j, ",\"{k}\":{n}"),
            };
        }
        let _ = write!(j, ",\"suppressed\":{}}}", self.suppressed);
        j
    }

    /// A hook's environment: `MAILBAG_EVENT`, `MAILBAG_HOST`, `MAILBAG_TIME`,
    /// `MAILBAG_SUBJECT`, `MAILBAG_TEXT`, then each field as `MAILBAG_<FIELD>`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut e = vec![
            ("MAILBAG_EVENT".to_owned(), self.kind().to_owned()),
            ("MAILBAG_HOST".to_owned(), self.host.clone()),
            ("MAILBAG_TIME".to_owned(), self.time.to_string()),
            ("MAILBAG_SUBJECT".to_owned(), self.subject()),
            ("MAILBAG_TEXT".to_owned(), self.text()),
            ("MAILBAG_SUPPRESSED".to_owned(), self.suppressed.to_string()),
        ];
        for (k, v) in self.fields() {
            let v = match v {
                Value::Str(s) => s,
                Value::Num(n) => n.to_string(),
            };
            e.push((format!("MAILBAG_{}", k.to_ascii_uppercase()), v));
        }
        e
    }

    /// The notice as a message (RFC 5322, CRLF, `Auto-Submitted: auto-generated` per
    /// RFC 3834 so that auto-responders stay quiet), from `from` to `to`.
    pub fn email(&self, from: &str, to: &[String]) -> Vec<u8> {
        let mut m = String::new();
        let _ = write!(
            m,
            "From: mailbag <{from}>\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\n\
             Message-ID: <mailbag.{}.{}.{}@{}>\r\nAuto-Submitted: auto-generated\r\n\
             X-Mailbag-Event: {}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
            to.iter()
                .map(|a| format!("<{a}>"))
                .collect::<Vec<_>>()
                .join(", "),
            clean(&self.subject()),
            Rfc5322Date(self.time),
            self.kind(),
            self.time,
            self.suppressed,
            self.host,
            self.kind()
        );
        for line in self.text().lines() {
            m.push_str(line);
            m.push_str("\r\n");
        }
        m.into_bytes()
    }
}

/// Printable ASCII only (others become `?`), at most [`REASON_MAX`] bytes.
fn clean(s: &str) -> String {
    s.chars()
        .take(REASON_MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A JSON string literal (the crate's one escaping, [`crate::json::push_str`]).
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    crate::json::push_str(&mut o, s);
    o
}

fn percent(used: u64, capacity: u64) -> u64 {
    used.saturating_mul(100)
        .checked_div(capacity)
        .unwrap_or(100)
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub struct Duration(pub u64);

impl core::fmt::Display for Duration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.0;
        match s {
            0..60 => write!(f, "{s} s"),
            60..3600 => write!(f, "{} min", s / 60),
            3600..86_400 if s % 3600 < 60 => write!(f, "{} h", s / 3600),
            3600..86_400 => write!(f, "{} h {} min", s / 3600, s % 3600 / 60),
            _ => write!(f, "{} d {} h", s / 86_400, s % 86_400 / 3600),
        }
    }
}

/// `512 B`, `12.3 KiB`, `4.0 MiB`.
pub struct Bytes(pub u64);

impl core::fmt::Display for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        if b < 1024 {
            return write!(f, "{b} B");
        }
        let (div, unit) = if b < 1 << 20 {
            (1u64 << 10, "KiB")
        } else if b < 1 << 30 {
            (1 << 20, "MiB")
        } else {
            (1 << 30, "GiB")
        };
        write!(f, "{}.{} {unit}", b / div, b % div * 10 / div)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Notice {
        Notice::new(
            1_700_000_000,
            "mx.office.test",
            Event::PrimaryUp {
                route: "next-hops".into(),
                hop: "mail.office.lan".into(),
                down_secs: 3_900,
                held: 12,
                held_bytes: 348_160,
            },
        )
    }

    #[test]
    fn the_up_notice_says_how_long_and_how_much() {
        let n = up();
        assert_eq!(
            n.subject(),
            "[mailbag mx.office.test] next hop mail.office.lan (next-hops) is UP again after 1 h 5 min: delivering 12 held message(s), 340.0 KiB"
        );
        assert!(
            n.text()
                .contains("12 held message(s) (340.0 KiB) are being delivered")
        );
    }

    #[test]
    fn one_notice_three_forms_that_agree() {
        let mut n = up();
        n.suppressed = 2;
        assert_eq!(
            n.json(),
            format!(
                "{{\"event\":\"primary-up\",\"host\":\"mx.office.test\",\"time\":1700000000,\"subject\":{},\"route\":\"next-hops\",\"hop\":\"mail.office.lan\",\"down_secs\":3900,\"held\":12,\"held_bytes\":348160,\"suppressed\":2}}",
                json_str(&n.subject())
            )
        );
        let env = n.env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MAILBAG_EVENT"), Some("primary-up"));
        assert_eq!(get("MAILBAG_HELD"), Some("12"));
        assert_eq!(get("MAILBAG_DOWN_SECS"), Some("3900"));
        assert!(n.text().contains("2 similar notice(s) were held back"));
        let mail =
            String::from_utf8(n.email("mailbag@mx.office.test", &["admin@isp.example".into()]))
                .unwrap();
        assert!(
            mail.starts_with(
                "From: mailbag <mailbag@mx.office.test>\r\nTo: <admin@isp.example>\r\n"
            )
        );
        assert!(mail.contains("\r\nAuto-Submitted: auto-generated\r\n"));
        assert!(mail.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
        assert!(
            !mail.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
    }

    #[test]
    fn peer_text_cannot_break_out_of_its_line() {
        let n = Notice::new(
            0,
            "h",
            Event::PrimaryDown {
                route: "r".into(),
                hop: "x".into(),
                held: 0,
                reason: "421 bye\r\nBcc: victim@example.com\u{1b}".into(),
            },
        );
        let mail = String::from_utf8(n.email("a@h", &["b@h".into()])).unwrap();
        assert!(!mail.contains("\r\nBcc:"), "{mail}");
        assert!(n.json().contains("421 bye??Bcc: victim@example.com?"));
        assert_eq!(
            json_str("<a>\"\\\u{1}"),
            "\"\\u003ca\\u003e\\\"\\\\\\u0001\""
        );
    }

    #[test]
    fn durations_and_sizes_read_naturally() {
        let d = |s| Duration(s).to_string();
        assert_eq!(
            [d(45), d(720), d(7200), d(11_100), d(180_000)],
            ["45 s", "12 min", "2 h", "3 h 5 min", "2 d 2 h"]
        );
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(5 << 20).to_string(), "5.0 MiB");
    }
}
