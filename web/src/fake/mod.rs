//! A fake backend: an in-memory queue, a log and a TOML settings file.
//!
//! Used by the Rust tests and by the `mailbag-web-demo` binary that the browser tests drive,
//! so the page can be built and exercised before the daemon's real backend exists. It
//! behaves like the daemon where the page can tell: retry bumps the attempt count, delete
//! and bounce remove the message and log it, settings are validated and written to a file.

mod seed;
mod settings;
mod setup;

use std::collections::VecDeque;
use std::io::{self, Cursor};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

pub use seed::{HOSTILE_ATTR, HOSTILE_SUBJECT, HTML_MAIL_ID};
pub use settings::validate;

use self::settings::{SaveFailure, SettingsStore};
use crate::backend::{
    ActionReport, Backend, BackendError, CheckCount, DomainUsage, FieldError, FirewallPreview,
    LogEvent, MessageId, MessageInfo, MessageSource, PrimaryStatus, QueueAction, QueuePage,
    QueueQuery, QueueRow, SaveError, SaveOutcome, SettingField, SettingsValues, SetupReport,
    SortKey, Status, UpstreamStatus,
};

/// Most log events kept.
pub const LOG_CAP: usize = 1000;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One held message in the fake spool.
#[derive(Clone, Debug)]
pub struct FakeMessage {
    id: MessageId,
    received: u64,
    sender: String,
    recipients: Vec<String>,
    subject: String,
    /// Size in bytes.
    pub size: u64,
    attempts: u32,
    last_error: Option<String>,
    next_attempt: Option<u64>,
    raw: Option<Arc<Vec<u8>>>,
}

impl FakeMessage {
    /// A message received at unix time `received`.
    pub fn new(
        id: MessageId,
        received: u64,
        sender: &str,
        recipients: &[&str],
        subject: &str,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Self {
        Self {
            id,
            received,
            sender: sender.into(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            subject: subject.into(),
            size: 0,
            attempts,
            last_error: last_error.map(Into::into),
            next_attempt: Some(received + 900 * u64::from(attempts + 1)),
            raw: None,
        }
    }

    /// Sets the raw message (and its size).
    pub fn with_raw(mut self, raw: Vec<u8>) -> Self {
        self.size = raw.len() as u64;
        self.raw = Some(Arc::new(raw));
        self
    }

    fn row(&self, now: u64) -> QueueRow {
        QueueRow {
            id: self.id.clone(),
            age_secs: now.saturating_sub(self.received),
            sender: self.sender.clone(),
            recipients: self.recipients.clone(),
            subject: self.subject.clone(),
            size: self.size,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            next_attempt: self.next_attempt,
        }
    }

    fn source(&self) -> Vec<u8> {
        match &self.raw {
            Some(r) => r.as_ref().clone(),
            None => format!(
                "From: {}\r\nTo: {}\r\nSubject: {}\r\n\r\nGenerated demo message {}.\r\n",
                self.sender,
                self.recipients.join(", "),
                self.subject,
                self.id
            )
            .into_bytes(),
        }
    }

    fn matches(&self, q: &QueueQuery) -> bool {
        let domain_ok = q.domain.as_deref().is_none_or(|d| {
            self.recipients.iter().any(|r| {
                r.rsplit_once('@')
                    .is_some_and(|(_, rd)| rd.eq_ignore_ascii_case(d))
            })
        });
        let text_ok = q.text.as_deref().is_none_or(|t| {
            let t = t.to_lowercase();
            let has = |s: &str| s.to_lowercase().contains(&t);
            has(self.id.as_str())
                || has(&self.sender)
                || has(&self.subject)
                || self.recipients.iter().any(|r| has(r))
                || self.last_error.as_deref().is_some_and(has)
        });
        domain_ok && text_ok
    }
}

struct State {
    messages: Vec<FakeMessage>,
    log: VecDeque<LogEvent>,
    settings: SettingsStore,
    firewall_applied: bool,
    started: u64,
}

impl State {
    fn find(&self, id: &MessageId) -> Result<&FakeMessage, BackendError> {
        self.messages
            .iter()
            .find(|m| &m.id == id)
            .ok_or(BackendError::NotFound)
    }

    fn log(&mut self, kind: &str, id: Option<&MessageId>, text: String) {
        if self.log.len() >= LOG_CAP {
            self.log.pop_back();
        }
        self.log.push_front(LogEvent {
            time: unix_now(),
            kind: kind.into(),
            message_id: id.cloned(),
            text,
        });
    }
}

/// The fake backend.
pub struct FakeBackend {
    state: Mutex<State>,
}

impl FakeBackend {
    /// A backend holding the demo messages plus `generated` more, with settings in
    /// `config_path` (created with demo values if missing).
    pub fn demo(config_path: &Path, generated: usize) -> io::Result<Self> {
        let now = unix_now();
        let settings = SettingsStore::open(
            config_path,
            &[
                ("smtp.hostname", "office-gw"),
                (
                    "policy.domains",
                    "example.com\nexample.org\nbranch.example.net",
                ),
                ("relay.next-hops", "10 mail.lan:25"),
                ("relay.upstream-silo", "silo.provider.example:25"),
                ("firewall.silo", "203.0.113.0/28\n2001:db8:25::/48"),
            ],
        )?;
        let mut messages = seed::special(now);
        messages.extend(seed::generated(now, generated));
        let mut state = State {
            messages,
            log: VecDeque::with_capacity(LOG_CAP),
            settings,
            firewall_applied: false,
            started: now,
        };
        state.log(
            "primary-down",
            None,
            "mail.lan:25: connection refused".into(),
        );
        for m in state
            .messages
            .iter()
            .take(20)
            .map(|m| (m.id.clone(), m.recipients.join(", ")))
            .collect::<Vec<_>>()
        {
            state.log("accepted", Some(&m.0), format!("for {}", m.1));
            state.log("deferred", Some(&m.0), "421 4.3.2 primary down".into());
        }
        Ok(Self {
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below is a single step; a panicking thread cannot leave it half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn sort_rows(rows: &mut [&FakeMessage], key: SortKey) {
    match key {
        // Ascending age: the newest message first.
        SortKey::Age => rows.sort_by_key(|m| std::cmp::Reverse(m.received)),
        SortKey::Sender => rows.sort_by(|a, b| a.sender.cmp(&b.sender)),
        SortKey::Recipients => rows.sort_by(|a, b| a.recipients.first().cmp(&b.recipients.first())),
        SortKey::Size => rows.sort_by_key(|m| m.size),
        SortKey::Attempts => rows.sort_by_key(|m| m.attempts),
        SortKey::NextAttempt => rows.sort_by_key(|m| m.next_attempt),
        SortKey::Id => rows.sort_by(|a, b| a.id.cmp(&b.id)),
    }
}

impl Backend for FakeBackend {
    fn status(&self) -> Result<Status, BackendError> {
        let s = self.lock();
        let now = unix_now();
        let used: u64 = s.messages.iter().map(|m| m.size).sum();
        let quota: u64 = s.settings.value("spool.max-bytes").parse().unwrap_or(0);
        let upstream = s.settings.value("relay.upstream-silo");
        Ok(Status {
            hostname: s.settings.value("smtp.hostname").into(),
            role: s.settings.value("role").into(),
            now,
            primary: PrimaryStatus {
                // The first next hop, without its preference ("10 mail.lan:25" → "mail.lan:25").
                name: s
                    .settings
                    .value("relay.next-hops")
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().last())
                    .unwrap_or("")
                    .into(),
                up: false,
                since: Some(s.started.saturating_sub(7300)),
            },
            upstream: upstream
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|a| UpstreamStatus {
                    address: a.into(),
                    reachable: true,
                })
                .collect(),
            queue_depth: s.messages.len() as u64,
            oldest_age_secs: s
                .messages
                .iter()
                .map(|m| m.received)
                .min()
                .map(|r| now.saturating_sub(r)),
            spool_used_bytes: used,
            spool_free_bytes: quota.saturating_sub(used),
            // An overdue message is retried at the next scheduler pass: now.
            next_retry: s
                .messages
                .iter()
                .filter_map(|m| m.next_attempt)
                .min()
                .map(|t| t.max(now)),
            last_delivery: Some(s.started.saturating_sub(7400)),
            firewall_mode: s.settings.value("firewall.mode").into(),
            domains: vec![DomainUsage {
                domain: "example.com".into(),
                held_bytes: used,
                max_bytes: Some(500 << 20),
                max_message_size: Some(50 << 20),
                accept_when: "always".into(),
            }],
            protection: [
                (
                    "dnsbl_rejected",
                    "clients refused with 554 because a blocking list lists them",
                    12,
                ),
                (
                    "attachments_blocked",
                    "messages refused with 554 for a blocked attachment name",
                    3,
                ),
                ("spam_flagged", "messages flagged X-Spam-Flag: YES", 41),
            ]
            .iter()
            .map(|(n, h, v)| CheckCount {
                name: (*n).into(),
                help: (*h).into(),
                value: *v,
            })
            .collect(),
        })
    }

    fn queue_page(&self, q: &QueueQuery) -> Result<QueuePage, BackendError> {
        let s = self.lock();
        let now = unix_now();
        let mut rows: Vec<&FakeMessage> = s.messages.iter().filter(|m| m.matches(q)).collect();
        sort_rows(&mut rows, q.sort);
        if q.descending {
            rows.reverse();
        }
        let total = rows.len();
        let rows = rows
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|m| m.row(now))
            .collect();
        Ok(QueuePage { total, rows })
    }

    fn message(&self, id: &MessageId) -> Result<MessageInfo, BackendError> {
        let s = self.lock();
        let m = s.find(id)?;
        Ok(MessageInfo {
            row: m.row(unix_now()),
            received: m.received,
            client: "198.51.100.7".into(),
            helo: "mx.sender.example".into(),
            checks: "spam score 2 of 5 (MISSING_MESSAGE_ID); attachments, virus scan: clean".into(),
        })
    }

    fn message_source(&self, id: &MessageId) -> Result<MessageSource, BackendError> {
        let s = self.lock();
        let m = s.find(id)?;
        Ok(Box::new(Cursor::new(m.source())))
    }

    fn act(&self, action: QueueAction, ids: &[MessageId]) -> Result<ActionReport, BackendError> {
        let mut s = self.lock();
        let now = unix_now();
        let mut report = ActionReport::default();
        for id in ids {
            let Some(pos) = s.messages.iter().position(|m| &m.id == id) else {
                report.missing.push(id.clone());
                continue;
            };
            report.done += 1;
            match action {
                QueueAction::Retry => {
                    let m = &mut s.messages[pos];
                    m.attempts += 1;
                    m.last_error = Some("421 4.3.2 primary down (retried by admin)".into());
                    m.next_attempt = Some(now + 900);
                    s.log(
                        "deferred",
                        Some(id),
                        "retry now: 421 4.3.2 primary down".into(),
                    );
                }
                QueueAction::Delete => {
                    s.messages.remove(pos);
                    s.log("deleted", Some(id), "deleted by admin".into());
                }
                QueueAction::Bounce => {
                    let m = s.messages.remove(pos);
                    s.log(
                        "bounced",
                        Some(id),
                        format!("bounced by admin to <{}>", m.sender),
                    );
                }
            }
        }
        Ok(report)
    }

    fn flush(&self, domain: Option<&str>) -> Result<usize, BackendError> {
        let q = QueueQuery {
            domain: domain.map(Into::into),
            ..QueueQuery::default()
        };
        let ids: Vec<MessageId> = self
            .lock()
            .messages
            .iter()
            .filter(|m| m.matches(&q))
            .map(|m| m.id.clone())
            .collect();
        self.act(QueueAction::Retry, &ids).map(|r| r.done)
    }

    fn settings(&self) -> Result<Vec<SettingField>, BackendError> {
        Ok(self.lock().settings.fields())
    }

    fn validate_settings(&self, values: &SettingsValues) -> Vec<FieldError> {
        validate(values)
    }

    fn save_settings(&self, values: &SettingsValues) -> Result<SaveOutcome, SaveError> {
        let mut s = self.lock();
        match s.settings.save(values) {
            Ok(restart_needed) => {
                s.firewall_applied = false;
                let path = s.settings.path().display().to_string();
                s.log("config", None, format!("settings saved to {path}"));
                Ok(SaveOutcome {
                    path,
                    applied: true,
                    restart_needed,
                })
            }
            Err(SaveFailure::Invalid(e)) => Err(SaveError::Invalid(e)),
            Err(SaveFailure::Io(e)) => Err(SaveError::Backend(BackendError::Failed(e.to_string()))),
        }
    }

    fn firewall_preview(&self) -> Result<FirewallPreview, BackendError> {
        let s = self.lock();
        let mode = s.settings.value("firewall.mode").to_owned();
        let rules = nft_rules(
            &mode,
            s.settings.value("firewall.silo"),
            s.settings.value("firewall.ports"),
            s.settings.value("firewall.wan-zone"),
        );
        Ok(FirewallPreview {
            mode,
            format: "nft".into(),
            rules,
            applied: s.firewall_applied,
        })
    }

    fn firewall_apply(&self) -> Result<String, BackendError> {
        let mut s = self.lock();
        s.firewall_applied = true;
        s.log(
            "firewall",
            None,
            "rules applied (demo: nothing installed)".into(),
        );
        Ok("Rules applied (demo backend: nothing was installed).".into())
    }

    fn log(&self, limit: usize) -> Result<Vec<LogEvent>, BackendError> {
        Ok(self.lock().log.iter().take(limit).cloned().collect())
    }

    fn check_setup(&self) -> Result<SetupReport, BackendError> {
        let s = self.lock();
        let v = |k| s.settings.value(k);
        let hop = v("relay.next-hops");
        let hop = hop
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or("");
        Ok(setup::report(
            v("smtp.hostname"),
            v("policy.domains"),
            hop,
            v("relay.upstream-silo").lines().next().unwrap_or(""),
            s.firewall_applied,
        ))
    }
}

/// A plausible fw4 include for the preview (the daemon's firewall module generates the real one).
fn nft_rules(mode: &str, silo: &str, ports: &str, zone: &str) -> String {
    if mode == "off" {
        return "# firewall mode 'off': mailbag installs no rules\n".into();
    }
    let (v6, v4): (Vec<&str>, Vec<&str>) = silo
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .partition(|l| l.contains(':'));
    let ports = ports
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let mut r = String::from("table inet mailbag {\n");
    r += &format!(
        "  set silo4 {{ type ipv4_addr; flags interval; elements = {{ {} }} }}\n",
        v4.join(", ")
    );
    r += &format!(
        "  set silo6 {{ type ipv6_addr; flags interval; elements = {{ {} }} }}\n",
        v6.join(", ")
    );
    r += &format!(
        "  chain input_{zone} {{\n    type filter hook input priority filter - 1; policy accept;\n"
    );
    r += &format!("    iifname @{zone}_devices tcp dport {{ {ports} }} ip saddr @silo4 accept\n");
    r += &format!("    iifname @{zone}_devices tcp dport {{ {ports} }} ip6 saddr @silo6 accept\n");
    if mode == "open-when-primary-down" {
        r += "    # open-when-primary-down: the daemon adds 'accept' here while the primary is down\n";
    }
    r += &format!("    iifname @{zone}_devices tcp dport {{ {ports} }} drop\n  }}\n}}\n");
    r
}
