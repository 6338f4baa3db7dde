//! The admin page's [`Backend`] over the running daemon.
//!
//! Called from tiny-http worker threads (plain threads, never the tokio runtime): spool work
//! goes to the spool thread as bounded jobs ([`SpoolHandle::run_blocking`]); a message body
//! is streamed in [`SOURCE_CHUNK`]-byte pieces, never read whole. Settings are the daemon's
//! one config model, validated by [`Config::validate`] and written atomically in the file's
//! own format. With the reloader attached ([`DaemonBackend::with_reloader`]) a save is
//! applied to the running daemon by [`Reloader::apply`], which names the keys that still
//! need a restart; without it nothing is applied and every changed key needs one. With the deliverer attached ([`DaemonBackend::with_deliverer`]) bounce runs
//! the daemon's operator bounce ([`queue_actions::bounce`]) on the runtime, and delete and
//! bounce refuse, all or nothing, while any of the messages is being delivered; without it
//! bounce answers [`NO_DELIVERY`]. The upstream state is reported as unknown rather than
//! invented.

use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mailbag_hal::Clock;
use mailbag_web::Backend;
use mailbag_web::backend::{
    ActionReport, BackendError, CheckCount, DomainUsage, FieldError, FirewallPreview, LogEvent,
    MessageId, MessageInfo, MessageSource, PrimaryStatus, QueueAction, QueuePage, QueueQuery,
    SaveError, SaveOutcome, SettingField, SettingsValues, Status, UpstreamStatus,
};

use super::queue_actions::{self, ActionError};
use super::queue_view;
use super::reload::Reloader;
use super::settings;
use crate::config::{Config, Format};
use crate::daemon::delivery::Deliverer;
use crate::daemon::events::EventLog;
use crate::daemon::spool::{SpoolHandle, SpoolWriter};
use crate::firewall::dns::{self, SystemResolver};
use crate::firewall::iptables::{self, Family, Hooks};
use crate::firewall::ruleset::mode_name;
use crate::firewall::{Primary, Ruleset, SiloSet, apply, nft, uci};
use crate::spool::{self, SpoolError};

/// Bytes fetched from the spool thread per read of a message source.
pub const SOURCE_CHUNK: usize = 16 * 1024;
/// Messages handled per spool job in a bulk action (each removal syncs the device).
const ACTION_BATCH: usize = 32;
/// What the page shows for actions the daemon cannot do from the page yet, and for next-hop
/// states when no deliverer reports them.
pub const NO_DELIVERY: &str = "not available from the page in this build yet";

/// The daemon side of the admin page; clones share the saved settings (one per listener).
#[derive(Clone)]
pub struct DaemonBackend {
    spool: SpoolHandle,
    events: Arc<EventLog>,
    clock: Arc<dyn Clock>,
    /// The configuration the daemon was started with (status, firewall mode in effect);
    /// the reloader's, when attached, is the one in force.
    running: Config,
    /// Applies saved settings to the running daemon.
    reloader: Option<Arc<Reloader>>,
    /// The settings as last saved (shown in the form, used for the firewall preview).
    saved: Arc<Mutex<Config>>,
    /// Where settings are saved.
    config_path: PathBuf,
    /// The deliverer's view of the next hop (true: unreachable at the last attempt/probe).
    primary_down: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The deliverer (its in-flight set, bounces) and the runtime its async work runs on.
    deliverer: Option<(Arc<Deliverer>, tokio::runtime::Handle)>,
    /// The protection checks' counters.
    counters: Option<Arc<crate::policy::Counters>>,
}

impl DaemonBackend {
    /// A backend over a running spool thread; settings are saved to `config_path`.
    pub fn new(
        spool: SpoolHandle,
        events: Arc<EventLog>,
        clock: Arc<dyn Clock>,
        running: Config,
        config_path: PathBuf,
    ) -> Self {
        Self {
            spool,
            events,
            clock,
            saved: Arc::new(Mutex::new(running.clone())),
            running,
            config_path,
            primary_down: None,
            deliverer: None,
            reloader: None,
            counters: None,
        }
    }

    /// Shows the protection checks' counters on the status page.
    pub fn with_counters(mut self, counters: Arc<crate::policy::Counters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Domains with a rule of their own, their tiers and what they hold.
    fn domain_usage(&self, c: &Config) -> Vec<DomainUsage> {
        let Ok(p) = crate::policy::Protection::from_config(&c.policy, &c.scan) else {
            return Vec::new();
        };
        p.tiers()
            .map(|(domain, max_message_size, max_bytes)| DomainUsage {
                domain: domain.to_owned(),
                held_bytes: self.spool.gauge.domain_bytes(domain),
                max_bytes,
                max_message_size,
                accept_when: match p.domain(domain).accept_when {
                    crate::policy::protection::AcceptWhen::Always => "always".into(),
                    crate::policy::protection::AcceptWhen::NextHopDown => "next-hop-down".into(),
                },
            })
            .collect()
    }

    /// Applies saved settings to the running daemon (those that can change at run time).
    pub fn with_reloader(mut self, r: Arc<Reloader>) -> Self {
        self.reloader = Some(r);
        self
    }

    /// The configuration in force.
    fn running(&self) -> Config {
        match &self.reloader {
            Some(r) => r.running(),
            None => self.running.clone(),
        }
    }

    /// Lets the page bounce mail and keeps its deletes off messages being delivered.
    /// `runtime` must be driven by another thread (the daemon's `block_on`): the page's
    /// worker threads wait on it with [`tokio::runtime::Handle::block_on`].
    pub fn with_deliverer(mut self, d: Arc<Deliverer>, runtime: tokio::runtime::Handle) -> Self {
        self.deliverer = Some((d, runtime));
        self
    }

    /// Shows the deliverer's next-hop state on the status page.
    pub fn with_primary_state(mut self, down: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.primary_down = Some(down);
        self
    }

    fn saved(&self) -> MutexGuard<'_, Config> {
        // Replaced in one step; a panic elsewhere cannot leave it half-written.
        self.saved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn job<T: Send + 'static>(
        &self,
        f: impl for<'f, 'b, 'a> FnOnce(&mut SpoolWriter<'f, 'b, 'a>) -> T + Send + 'static,
    ) -> Result<T, BackendError> {
        self.spool.run_blocking(f).map_err(|e| spool_error(&e))
    }

    fn ruleset(&self, config: &Config) -> Result<Ruleset, BackendError> {
        let cfg = &config.firewall;
        let failed = |e: String| BackendError::Failed(e);
        let mut prefixes: Vec<_> = SiloSet::parse(&cfg.silo)
            .map_err(|e| failed(e.to_string()))?
            .iter()
            .copied()
            .collect();
        let mut resolved: Vec<IpAddr> = Vec::new();
        if let Some(name) = &cfg.silo_dns {
            let last_good = std::fs::read_to_string(nft::INCLUDE_PATH)
                .map(|t| dns::parse_last_good(&t))
                .unwrap_or_default();
            let lookup = dns::lookup(&SystemResolver, name, &last_good);
            prefixes.extend(dns::prefixes(&lookup.addrs));
            resolved = lookup.addrs;
        }
        let silo = SiloSet::new(prefixes).map_err(|e| failed(e.to_string()))?;
        Ruleset::new(cfg, silo, Primary::Up, false)
            .map(|r| r.with_resolved(resolved))
            .map_err(|e| failed(e.to_string()))
    }

    fn note(&self, kind: &'static str, id: &MessageId, text: &str) {
        self.events
            .push(self.clock.unix_seconds(), kind, Some(id.to_string()), text);
    }
}

impl DaemonBackend {
    /// Operator bounces, each through [`queue_actions::bounce_claimed`]; refused as a whole
    /// when one of the messages is being delivered.
    fn bounce(&self, ids: &[MessageId]) -> Result<ActionReport, BackendError> {
        let Some((d, runtime)) = &self.deliverer else {
            return Err(BackendError::Unavailable(NO_DELIVERY.into()));
        };
        let _claims = queue_actions::claim_all(&d.in_flight, ids.iter().filter_map(spool_id))
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let mut report = ActionReport::default();
        for id in ids {
            let Some(sid) = spool_id(id) else {
                report.missing.push(id.clone());
                continue;
            };
            // A worker thread, never one of the runtime's: blocking here is allowed.
            match runtime.block_on(queue_actions::bounce_claimed(d, sid)) {
                Ok(b) => {
                    report.done += 1;
                    let text = match b.notice_to {
                        Some(to) => format!("bounced by the admin; failure notice to <{to}>"),
                        None => "bounced by the admin; no notice (null sender)".to_string(),
                    };
                    self.note("bounced", id, &text);
                }
                Err(ActionError::NotFound(_)) => report.missing.push(id.clone()),
                Err(ActionError::Spool(e)) => return Err(spool_error(&e)),
                Err(e) => return Err(BackendError::Failed(e.to_string())),
            }
        }
        Ok(report)
    }
}

fn spool_error(e: &SpoolError) -> BackendError {
    match e {
        SpoolError::NotFound => BackendError::NotFound,
        SpoolError::Io(why) => BackendError::Unavailable(why.clone()),
        other => BackendError::Failed(other.to_string()),
    }
}

fn spool_id(id: &MessageId) -> Option<spool::MessageId> {
    id.as_str().parse().ok()
}

/// Figures the status page needs from the spool thread.
struct SpoolFigures {
    messages: u64,
    used: u64,
    free: u64,
    oldest: Option<u64>,
    next_attempt: Option<u64>,
}

impl Backend for DaemonBackend {
    fn status(&self) -> Result<Status, BackendError> {
        let f = self.job(|s| {
            let u = s.usage();
            let used = u.bytes + u.reserved;
            let room = u.limits.max_bytes.min(u.device_bytes);
            SpoolFigures {
                messages: u64::from(u.messages),
                used,
                free: room.saturating_sub(used),
                oldest: s.oldest_received(),
                next_attempt: s.next_attempt(),
            }
        })?;
        let now = self.clock.unix_seconds();
        let c = &self.running();
        let hops = if c.relay.next_hops.is_empty() {
            "no next hop configured".to_owned()
        } else {
            c.relay.next_hops.join(", ")
        };
        Ok(Status {
            hostname: c.smtp.hostname.clone(),
            role: match c.role {
                crate::config::Role::Edge => "edge".into(),
                crate::config::Role::Silo => "silo".into(),
            },
            now,
            primary: match &self.primary_down {
                Some(down) => PrimaryStatus {
                    name: hops,
                    up: !down.load(std::sync::atomic::Ordering::Relaxed),
                    since: None,
                },
                // The page has no "unknown" state; say it in the name rather than invent one.
                None => PrimaryStatus {
                    name: format!("{hops} — state unknown: {NO_DELIVERY}"),
                    up: false,
                    since: None,
                },
            },
            upstream: c
                .relay
                .upstream_silo
                .as_ref()
                .map(|a| match &self.deliverer {
                    Some((d, _)) => UpstreamStatus {
                        address: a.clone(),
                        reachable: d.upstream_up.load(std::sync::atomic::Ordering::Relaxed),
                    },
                    None => UpstreamStatus {
                        address: format!("{a} (not checked: {NO_DELIVERY})"),
                        reachable: false,
                    },
                }),
            queue_depth: f.messages,
            oldest_age_secs: f.oldest.map(|t| now.saturating_sub(t)),
            spool_used_bytes: f.used,
            spool_free_bytes: f.free,
            next_retry: f.next_attempt,
            last_delivery: None,
            firewall_mode: mode_name(c.firewall.mode).into(),
            domains: self.domain_usage(c),
            protection: self
                .counters
                .as_ref()
                .map(|k| {
                    k.get()
                        .each()
                        .into_iter()
                        .map(|(name, help, value)| CheckCount {
                            name: name.into(),
                            help: help.into(),
                            value,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn queue_page(&self, query: &QueueQuery) -> Result<QueuePage, BackendError> {
        let q = query.clone();
        let now = self.clock.unix_seconds();
        self.job(move |s| queue_view::page(s, &q, now))?
            .map_err(|e| match e {
                queue_view::ViewError::TooBroad(_) => BackendError::Unavailable(e.to_string()),
                queue_view::ViewError::Spool(e) => spool_error(&e),
            })
    }

    fn message(&self, id: &MessageId) -> Result<MessageInfo, BackendError> {
        let sid = spool_id(id).ok_or(BackendError::NotFound)?;
        let now = self.clock.unix_seconds();
        let (row, received, verdict) = self
            .job(move |s| {
                let meta = s.meta(sid)?;
                let row = queue_view::row(s, sid, now, true)?;
                Ok::<_, SpoolError>((row, meta.received_unix, meta.verdict))
            })?
            .map_err(|e| spool_error(&e))?;
        let checks = describe_verdict(verdict.as_ref());
        Ok(MessageInfo {
            row,
            received,
            client: "not recorded by this build".into(),
            helo: "not recorded by this build".into(),
            checks,
        })
    }

    fn message_source(&self, id: &MessageId) -> Result<MessageSource, BackendError> {
        let sid = spool_id(id).ok_or(BackendError::NotFound)?;
        self.job(move |s| s.meta(sid).map(|_| ()))?
            .map_err(|e| spool_error(&e))?;
        Ok(Box::new(SpoolReader {
            spool: self.spool.clone(),
            id: sid,
            offset: 0,
            buf: Vec::with_capacity(SOURCE_CHUNK),
            pos: 0,
            done: false,
        }))
    }

    fn act(&self, action: QueueAction, ids: &[MessageId]) -> Result<ActionReport, BackendError> {
        if action == QueueAction::Bounce {
            return self.bounce(ids);
        }
        // Claimed for the whole action: the deliverer leaves them alone meanwhile.
        let _claims = match (&self.deliverer, action) {
            (Some((d, _)), QueueAction::Delete) => {
                queue_actions::claim_all(&d.in_flight, ids.iter().filter_map(spool_id))
                    .map_err(|e| BackendError::Unavailable(e.to_string()))?
            }
            _ => Vec::new(),
        };
        let mut report = ActionReport::default();
        for batch in ids.chunks(ACTION_BATCH) {
            let wanted: Vec<(MessageId, Option<spool::MessageId>)> =
                batch.iter().map(|id| (id.clone(), spool_id(id))).collect();
            let results = self.job(move |s| {
                wanted
                    .into_iter()
                    .map(|(id, sid)| {
                        let Some(sid) = sid else {
                            return (id, Err(SpoolError::NotFound));
                        };
                        let r = match action {
                            QueueAction::Delete => s.remove(sid),
                            _ => s.meta(sid).and_then(|mut m| {
                                // 0 = due now; the scheduler (when there is one) takes it first.
                                m.next_attempt_unix = 0;
                                s.update(&m)
                            }),
                        };
                        (id, r)
                    })
                    .collect::<Vec<_>>()
            })?;
            for (id, r) in results {
                match r {
                    Ok(()) => {
                        report.done += 1;
                        match action {
                            QueueAction::Delete => {
                                self.note("deleted", &id, "deleted by the admin")
                            }
                            _ => self.note("retried", &id, "next attempt set to now by the admin"),
                        }
                    }
                    Err(SpoolError::NotFound) => report.missing.push(id),
                    Err(e) => return Err(spool_error(&e)),
                }
            }
        }
        Ok(report)
    }

    fn flush(&self, domain: Option<&str>) -> Result<usize, BackendError> {
        // Held messages become due now, in RAM (a flush never rewrites flash); the
        // deliverer is woken below.
        let domain_owned = domain.map(str::to_ascii_lowercase);
        let n = self.job(move |s| s.expedite(domain_owned.as_deref()))?;
        if let Some((d, _)) = &self.deliverer {
            d.kick.notify_one();
        }
        let what = domain.map_or("all domains".to_string(), |d| format!("domain {d}"));
        self.events.push(
            self.clock.unix_seconds(),
            "flushed",
            None,
            &format!("{n} message(s) of {what} made due"),
        );
        Ok(n)
    }

    fn settings(&self) -> Result<Vec<SettingField>, BackendError> {
        Ok(settings::fields(&self.saved()))
    }

    fn validate_settings(&self, values: &SettingsValues) -> Vec<FieldError> {
        settings::merge(&self.saved(), values)
            .err()
            .unwrap_or_default()
    }

    fn save_settings(&self, values: &SettingsValues) -> Result<SaveOutcome, SaveError> {
        let mut saved = self.saved();
        let merged = settings::merge(&saved, values).map_err(SaveError::Invalid)?;
        let failed = |e: String| SaveError::Backend(BackendError::Failed(e));
        match file_format(&self.config_path) {
            Format::Uci => merged.save_uci(&self.config_path),
            Format::Toml => merged.save_toml(&self.config_path),
        }
        .map_err(|e| failed(e.to_string()))?;
        let path = self.config_path.display().to_string();
        let (applied, restart_needed) = match &self.reloader {
            Some(r) => {
                let a = r
                    .apply(&merged)
                    .map_err(|e| failed(format!("saved to {path}, but not applied: {e}")))?;
                (true, a.restart_needed)
            }
            None => (false, settings::changed(&self.running, &merged)),
        };
        *saved = merged;
        drop(saved);
        let text = match (applied, restart_needed.is_empty()) {
            (false, _) => format!("{path}; restart to apply"),
            (true, true) => format!("{path}; applied"),
            (true, false) => format!(
                "{path}; applied, except (restart needed): {}",
                restart_needed.join(", ")
            ),
        };
        self.events
            .push(self.clock.unix_seconds(), "settings-saved", None, &text);
        Ok(SaveOutcome {
            path,
            applied,
            restart_needed,
        })
    }

    fn firewall_preview(&self) -> Result<FirewallPreview, BackendError> {
        let rules = self.ruleset(&self.saved())?;
        let nft_text = nft::include(&rules);
        let applied = std::fs::read_to_string(nft::INCLUDE_PATH).is_ok_and(|t| t == nft_text);
        let text = format!(
            "# nft (fw4 include, {})\n{nft_text}\n# uci batch (fw4)\n{}\n# iptables (fw3, IPv4)\n{}",
            nft::INCLUDE_PATH,
            uci::batch(&rules),
            iptables::fragment(&rules, Family::V4, Hooks::Insert),
        );
        Ok(FirewallPreview {
            mode: mode_name(self.saved().firewall.mode).into(),
            format: "nft, uci, iptables".into(),
            rules: text,
            applied,
        })
    }

    fn firewall_apply(&self) -> Result<String, BackendError> {
        let rules = self.ruleset(&self.saved())?;
        // What `mailbag firewall apply` does: one nft transaction, then the fw4 include.
        let outcome = apply::apply_nft(&rules, Path::new(nft::INCLUDE_PATH))
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        self.events.push(
            self.clock.unix_seconds(),
            "firewall",
            None,
            &outcome.to_string(),
        );
        Ok(outcome.to_string())
    }

    fn log(&self, limit: usize) -> Result<Vec<LogEvent>, BackendError> {
        Ok(self
            .events
            .recent(limit)
            .into_iter()
            .map(|e| LogEvent {
                time: e.time,
                kind: e.kind.into(),
                message_id: e.message_id.as_deref().and_then(MessageId::parse),
                text: e.text,
            })
            .collect())
    }
}

/// The config file's format; a file not there yet (the demo's) is TOML unless named UCI-like.
fn file_format(path: &Path) -> Format {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if text.is_empty() {
        return if path.extension().is_some_and(|e| e == "toml") {
            Format::Toml
        } else {
            Format::Uci
        };
    }
    Format::detect(path, &text)
}

/// A message body read from the spool thread in [`SOURCE_CHUNK`]-byte pieces.
struct SpoolReader {
    spool: SpoolHandle,
    id: spool::MessageId,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for SpoolReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() && !self.done {
            let (id, offset) = (self.id, self.offset);
            let mut buf = std::mem::take(&mut self.buf);
            let (buf, r) = self
                .spool
                .run_blocking(move |s| {
                    buf.resize(SOURCE_CHUNK, 0);
                    let r = s.read_body(id, offset, &mut buf);
                    buf.truncate(*r.as_ref().unwrap_or(&0));
                    (buf, r)
                })
                .map_err(io::Error::other)?;
            self.buf = buf;
            let n = r.map_err(io::Error::other)?;
            self.pos = 0;
            self.offset += n as u64;
            self.done = n == 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What the message view says of the checks a message passed.
fn describe_verdict(v: Option<&crate::spool::message::Verdict>) -> String {
    let Some(v) = v else {
        return String::new();
    };
    let mut parts = Vec::new();
    if v.spam_threshold > 0 {
        let flag = if v.spam_score >= v.spam_threshold {
            " — flagged X-Spam-Flag: YES"
        } else {
            ""
        };
        let rules = if v.spam_rules.is_empty() {
            "no rule fired".to_string()
        } else {
            v.spam_rules.replace(',', ", ")
        };
        parts.push(format!(
            "spam score {} of {} ({rules}){flag}",
            v.spam_score, v.spam_threshold
        ));
    }
    if !v.virus.is_empty() {
        parts.push(format!(
            "virus {} found: delivered repackaged as an attachment",
            v.virus
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod verdict_tests {
    use super::describe_verdict;
    use crate::spool::message::Verdict;

    #[test]
    fn the_message_view_says_what_the_checks_found() {
        assert_eq!(describe_verdict(None), "");
        let v = Verdict {
            spam_score: 5,
            spam_threshold: 5,
            spam_rules: "HELO_IP_LITERAL,MISSING_MESSAGE_ID".into(),
            virus: "Eicar-Test-Signature".into(),
        };
        assert_eq!(
            describe_verdict(Some(&v)),
            "spam score 5 of 5 (HELO_IP_LITERAL, MISSING_MESSAGE_ID) — flagged X-Spam-Flag: YES; \
             virus Eicar-Test-Signature found: delivered repackaged as an attachment"
        );
    }
}
