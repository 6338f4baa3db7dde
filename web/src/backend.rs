//! The `Backend` trait: everything the admin page reads from or asks of the daemon.
//!
//! The web layer never touches the spool, the relay or the config file itself; it talks to
//! one `Box<dyn Backend + Send + Sync>`. The daemon implements it over its real modules; tests
//! and the demo binary use [`crate::fake::FakeBackend`]. Every method is synchronous and called
//! from a tiny-http worker thread, so implementations must not block for long (a queue page
//! of 10,000 held messages must answer in milliseconds).
//!
//! Values coming from mail (subjects, addresses, filenames) are carried as plain `String`s
//! and escaped only where they are rendered; the trait never pre-escapes anything.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

/// Longest message id the web layer accepts.
pub const MESSAGE_ID_MAX: usize = 64;

/// A spool message id: 1..=64 of `[A-Za-z0-9._-]`, so it is safe in URLs, file names and HTML.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// The one checked constructor: `None` for an empty, too long or oddly spelled id.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MESSAGE_ID_MAX
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        ok.then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid message id"))
    }
}

/// Whether the next hop (the office's primary server) accepts mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrimaryStatus {
    /// The next hop as configured (`mail.lan:25`).
    pub name: String,
    /// Up (answered the last probe) or down.
    pub up: bool,
    /// Unix seconds when it last changed state (`None`: not probed yet).
    pub since: Option<u64>,
}

/// Whether the upstream silo (edge role) is reachable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpstreamStatus {
    /// `host:port` of the silo.
    pub address: String,
    /// Reachable at the last check.
    pub reachable: bool,
}

/// One router a silo watches (`/api/routers`, the silo's Status page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouterStatus {
    /// Its id (`monitor.routers`).
    pub router: String,
    /// Unix seconds of its last accepted beacon (`None`: none since the silo started).
    pub last_seen: Option<u64>,
    /// Silent for longer than `monitor.overdue-after` intervals.
    pub overdue: bool,
    /// Messages it held at its last beacon.
    pub held: u64,
    /// Its primary at its last beacon: `up`, `down` or `unknown`.
    pub primary: String,
    /// Seconds its daemon had been running at its last beacon.
    pub uptime_secs: Option<u64>,
    /// Spool bytes it had free at its last beacon.
    pub spool_free_bytes: Option<u64>,
}

/// One status snapshot for the Status page and `/api/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The router's name, shown in the header bar.
    pub hostname: String,
    /// `edge` or `silo`.
    pub role: String,
    /// Unix seconds at the snapshot (the page shows ages relative to it).
    pub now: u64,
    /// The primary / next hop.
    pub primary: PrimaryStatus,
    /// The upstream silos (edge), in `relay.upstream-silo` order; empty when none.
    pub upstream: Vec<UpstreamStatus>,
    /// Messages held.
    pub queue_depth: u64,
    /// Age in seconds of the oldest held message.
    pub oldest_age_secs: Option<u64>,
    /// Spool bytes used.
    pub spool_used_bytes: u64,
    /// Spool bytes free.
    pub spool_free_bytes: u64,
    /// Unix seconds of the next scheduled delivery attempt.
    pub next_retry: Option<u64>,
    /// Unix seconds of the last successful delivery.
    pub last_delivery: Option<u64>,
    /// `walled-garden`, `open-when-primary-down` or `off`.
    pub firewall_mode: String,
    /// The per-domain tiers and rules in force, with the bytes each domain holds.
    pub domains: Vec<DomainUsage>,
    /// One count per protection check and outcome since start.
    pub protection: Vec<CheckCount>,
}

/// A domain with a rule of its own (`policy.domain-rules`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainUsage {
    /// The domain.
    pub domain: String,
    /// Body bytes held for it (by each message's first recipient).
    pub held_bytes: u64,
    /// Its storage tier (`max-bytes`), if any.
    pub max_bytes: Option<u64>,
    /// Its largest message (`max-message-size`), if any.
    pub max_message_size: Option<u64>,
    /// `always` or `next-hop-down`.
    pub accept_when: String,
}

/// One protection counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckCount {
    /// Its name (`attachments_blocked`).
    pub name: String,
    /// What it counts.
    pub help: String,
    /// The count.
    pub value: u64,
}

/// Column the queue is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortKey {
    /// Oldest first by default.
    #[default]
    Age,
    /// Envelope sender.
    Sender,
    /// First recipient.
    Recipients,
    /// Message size.
    Size,
    /// Delivery attempts so far.
    Attempts,
    /// Next attempt time.
    NextAttempt,
    /// Message id.
    Id,
}

impl SortKey {
    /// Parses the `sort=` query value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "age" => Self::Age,
            "sender" => Self::Sender,
            "recipients" => Self::Recipients,
            "size" => Self::Size,
            "attempts" => Self::Attempts,
            "next-attempt" => Self::NextAttempt,
            "id" => Self::Id,
            _ => return None,
        })
    }
}

/// Largest queue page the web layer asks for.
pub const QUEUE_PAGE_MAX: usize = 500;

/// A queue page query: filter, sort, then `offset..offset+limit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueQuery {
    /// First row (after filtering and sorting).
    pub offset: usize,
    /// Rows wanted, 1..=[`QUEUE_PAGE_MAX`].
    pub limit: usize,
    /// Sort column.
    pub sort: SortKey,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Only messages with a recipient in this domain (case-insensitive, exact).
    pub domain: Option<String>,
    /// Only messages whose id, sender, recipients, subject or last error contain this text
    /// (case-insensitive).
    pub text: Option<String>,
}

/// One held message in the queue table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueueRow {
    /// Spool id.
    pub id: MessageId,
    /// Seconds since it was accepted.
    pub age_secs: u64,
    /// Envelope sender (`MAIL FROM`), empty for the null sender.
    pub sender: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// Subject header as received (may be hostile; RFC 2047 encoded words are decoded by the
    /// web layer for display).
    pub subject: String,
    /// Size in bytes.
    pub size: u64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Last delivery error, if any.
    pub last_error: Option<String>,
    /// Unix seconds of the next attempt.
    pub next_attempt: Option<u64>,
}

/// A page of the queue plus the number of rows matching the filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueuePage {
    /// Rows matching the filter, in all pages.
    pub total: usize,
    /// This page's rows.
    pub rows: Vec<QueueRow>,
}

/// What the admin asks mailbag to do with held messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueAction {
    /// Attempt delivery now.
    Retry,
    /// Drop the message without a bounce.
    Delete,
    /// Give up now and send a DSN to the (verified) sender.
    Bounce,
}

/// The outcome of an action over several messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    /// Messages the action was applied to.
    pub done: usize,
    /// Ids that were not found (already delivered or deleted).
    pub missing: Vec<MessageId>,
}

/// Kind of a settings field, which decides the input the page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "options")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// A non-negative integer.
    Number,
    /// Several values, one per line (UCI `list`).
    List,
    /// On/off, value `"1"` or `"0"`.
    Bool,
    /// One of the given values.
    Select(Vec<String>),
}

/// One settings field: where it lives, how it is shown and its current value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingField {
    /// Stable key, `section.option` (`relay.next-hops`); the form posts values by key.
    pub key: String,
    /// Section title on the page (`Relay`).
    pub section: String,
    /// Label shown next to the input.
    pub label: String,
    /// One line of help under the input.
    pub help: String,
    /// Input kind.
    pub kind: FieldKind,
    /// Current value; lists are newline-separated.
    pub value: String,
}

/// Submitted settings: key → value (lists newline-separated).
pub type SettingsValues = BTreeMap<String, String>;

/// A validation error tied to one field, shown inline under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's key.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// What saving the settings did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SaveOutcome {
    /// The file written (`/etc/config/mailbag`).
    pub path: String,
    /// Applied to the running daemon without a restart.
    pub applied: bool,
    /// Keys whose new value only takes effect after a restart.
    pub restart_needed: Vec<String>,
}

/// Why the settings were not saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveError {
    /// Validation failed; nothing was written.
    Invalid(Vec<FieldError>),
    /// Validation passed but writing or applying failed.
    Backend(BackendError),
}

/// The generated firewall rules for the current settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FirewallPreview {
    /// Rule mode in effect.
    pub mode: String,
    /// Rule format (`nft`, `uci`, `iptables`).
    pub format: String,
    /// The rules, as they would be installed.
    pub rules: String,
    /// Whether the installed rules equal these.
    pub applied: bool,
}

/// One recent event for the Log page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// Unix seconds.
    pub time: u64,
    /// `accepted`, `delivered`, `deferred`, `bounced`, `primary-down`, `primary-up`, …
    pub kind: String,
    /// The message concerned, if any.
    pub message_id: Option<MessageId>,
    /// Details (the deferral reason, the recipient, …).
    pub text: String,
}

/// The envelope and queue state of one message (its content comes from
/// [`Backend::message_source`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageInfo {
    /// The queue row (envelope, size, attempts, errors).
    #[serde(flatten)]
    pub row: QueueRow,
    /// Unix seconds when it was accepted.
    pub received: u64,
    /// Address of the client that sent it.
    pub client: String,
    /// HELO/EHLO name the client gave.
    pub helo: String,
    /// What the protection checks said when it was accepted (spam score and rules, a
    /// virus it was repackaged for); empty when nothing was recorded.
    pub checks: String,
}

/// One line of the setup check (`mailbag doctor`): what was found and, unless it passed,
/// what to change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetupCheck {
    /// Stable rule name (`mx.office`, `mta-sts`, `spool.place`, …).
    pub id: String,
    /// `pass`, `warn` or `fail`.
    pub status: String,
    /// What was found.
    pub text: String,
    /// What to change (warnings and failures).
    pub fix: Option<String>,
}

/// The whole setup check, as `mailbag doctor --json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SetupReport {
    /// The checks in order.
    pub checks: Vec<SetupCheck>,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that warn.
    pub warnings: usize,
    /// Checks that failed.
    pub failed: usize,
    /// No check failed.
    pub ok: bool,
}

impl SetupReport {
    /// A report of `checks`, with the totals counted.
    pub fn new(checks: Vec<SetupCheck>) -> Self {
        let n = |s: &str| checks.iter().filter(|c| c.status == s).count();
        let (passed, warnings, failed) = (n("pass"), n("warn"), n("fail"));
        Self {
            checks,
            passed,
            warnings,
            failed,
            ok: failed == 0,
        }
    }
}

/// A backend failure, shown to the admin as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// No such message (delivered or deleted meanwhile).
    NotFound,
    /// The daemon cannot do this now (spool busy, not running, …).
    Unavailable(String),
    /// An I/O or internal failure.
    Failed(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such message"),
            Self::Unavailable(why) => write!(f, "unavailable: {why}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// The raw bytes of a stored message, as received (headers and body, CRLF line ends).
pub type MessageSource = Box<dyn Read + Send>;

/// Everything the admin page needs from the daemon. Object-safe: the server holds a
/// `Box<dyn Backend + Send + Sync>`.
pub trait Backend {
    /// A status snapshot.
    fn status(&self) -> Result<Status, BackendError>;
    /// One page of held messages after filtering and sorting.
    fn queue_page(&self, query: &QueueQuery) -> Result<QueuePage, BackendError>;
    /// Envelope and queue state of one message.
    fn message(&self, id: &MessageId) -> Result<MessageInfo, BackendError>;
    /// The message as received; the web layer reads only as much as it needs (bounded).
    fn message_source(&self, id: &MessageId) -> Result<MessageSource, BackendError>;
    /// Applies an action to the given messages.
    fn act(&self, action: QueueAction, ids: &[MessageId]) -> Result<ActionReport, BackendError>;
    /// Retries every held message now, or only those for `domain`; returns how many.
    fn flush(&self, domain: Option<&str>) -> Result<usize, BackendError>;
    /// The settings form: every field with its current value.
    fn settings(&self) -> Result<Vec<SettingField>, BackendError>;
    /// Validates submitted settings exactly as `mailbag check-config` would.
    fn validate_settings(&self, values: &SettingsValues) -> Vec<FieldError>;
    /// Validates, writes the configuration file the daemon reads and applies what it can.
    fn save_settings(&self, values: &SettingsValues) -> Result<SaveOutcome, SaveError>;
    /// The firewall rules generated from the current settings.
    fn firewall_preview(&self) -> Result<FirewallPreview, BackendError>;
    /// Installs the rules; returns what was done, for a person.
    fn firewall_apply(&self) -> Result<String, BackendError>;
    /// The most recent events, newest first, at most `limit`.
    fn log(&self, limit: usize) -> Result<Vec<LogEvent>, BackendError>;
    /// Runs the setup check (`mailbag doctor`): DNS, MTA-STS, next hops, silos, firewall,
    /// spool. Takes seconds (it asks DNS servers and connects to mail servers) and sends
    /// the silos an ETRN each.
    fn check_setup(&self) -> Result<SetupReport, BackendError>;
    /// The routers this silo watches (none on an edge).
    fn routers(&self) -> Result<Vec<RouterStatus>, BackendError> {
        Ok(Vec::new())
    }
    /// The Prometheus text exposition for `/metrics`.
    fn metrics(&self) -> Result<String, BackendError> {
        Err(BackendError::Unavailable("no metrics in this build".into()))
    }
}
