//! The admin page's [`Backend`] over the running daemon.
//!
//! Called from tiny-http worker threads (plain threads, never the tokio runtime): spool work
//! goes to the spool thread as bounded jobs ([`SpoolHandle::run_blocking`]); a message body
//! is streamed in [`SOURCE_CHUNK`]-byte pieces, never read whole. The page's queue actions
//! (flush, delete, retry, bounce) are admin's [`Actions`], the same the control socket
//! runs, waited for on the daemon's runtime. Settings are the daemon's one config model,
//! validated by [`Config::validate`] and written atomically in the file's own format. With
//! the reloader attached ([`DaemonBackend::with_reloader`]) a save is applied to the running
//! daemon by [`Reloader::apply`], which names the keys that still need a restart; without
//! it nothing is applied and every changed key needs one.

use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mailbag_hal::Clock;
use mailbag_web::Backend;
use mailbag_web::backend::{
    ActionReport, BackendError, CheckCount, DomainUsage, FieldError, FirewallPreview, LogEvent,
    MessageId, MessageInfo, MessageSource, PrimaryStatus, QueueAction, QueuePage, QueueQuery,
    RouterStatus, SaveError, SaveOutcome, SettingField, SettingsValues, SetupReport, Status,
    UpstreamStatus,
};

use super::actions::{ActionError, Actions, Done};
#[cfg(feature = "doctor")]
use super::doctor::{self, DaemonState, Options};
use super::queue_view;
use super::reload::Reloader;
use super::settings;
use crate::config::{Config, Format};
use crate::daemon::delivery::DeliveryHandle;
use crate::daemon::delivery::hops::Overall;
use crate::daemon::events::EventLog;
use crate::daemon::spool::{SpoolHandle, SpoolWriter};
use crate::firewall::dns::{self, SystemResolver};
use crate::firewall::iptables::{self, Family, Hooks};
use crate::firewall::ruleset::mode_name;
use crate::firewall::{Primary, Ruleset, SiloSet, apply, nft, uci};
use crate::monitor::metrics::{self, Gauges, RouteGauge, RouterGauge};
use crate::relay::Health;
use crate::relay::NextHop;
use crate::spool::{self, SpoolError};

/// Bytes fetched from the spool thread per read of a message source.
pub const SOURCE_CHUNK: usize = 16 * 1024;

/// The running daemon as the page reaches it.
#[derive(Clone)]
pub struct Parts {
    /// The spool thread (the queue's views, message sources).
    pub spool: SpoolHandle,
    /// Delivery (next-hop state; the actions' claims and flushes).
    pub delivery: DeliveryHandle,
    /// The event log (the page's Log; every action writes to it).
    pub events: Arc<EventLog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The daemon's runtime, driven by another thread (the daemon's `block_on`): the
    /// page's worker threads wait on it for the actions.
    pub runtime: tokio::runtime::Handle,
}

/// The daemon side of the admin page; clones share the saved settings (one per listener).
#[derive(Clone)]
pub struct DaemonBackend {
    spool: SpoolHandle,
    delivery: DeliveryHandle,
    actions: Actions,
    runtime: tokio::runtime::Handle,
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
    /// The protection checks' counters.
    counters: Option<Arc<crate::policy::Counters>>,
}

impl DaemonBackend {
    /// A backend over the running daemon's `parts`; settings are saved to `config_path`.
    pub fn new(parts: Parts, running: Config, config_path: PathBuf) -> Self {
        let actions = Actions::new(
            parts.spool.clone(),
            parts.delivery.clone(),
            Arc::clone(&parts.events),
            Arc::clone(&parts.clock),
        );
        Self {
            spool: parts.spool,
            delivery: parts.delivery,
            actions,
            runtime: parts.runtime,
            events: parts.events,
            clock: parts.clock,
            saved: Arc::new(Mutex::new(running.clone())),
            running,
            config_path,
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

    /// The primary's state as the next-hop probe knows it (up until known otherwise), so
    /// the firewall preview and Apply match what `open-when-primary-down` is following.
    fn primary(&self) -> Primary {
        match self.delivery.status().primary {
            Overall::Down => Primary::Down,
            _ => Primary::Up,
        }
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
        Ruleset::new(cfg, silo, self.primary(), false)
            .map(|r| r.with_resolved(resolved))
            .map_err(|e| failed(e.to_string()))
    }

    /// Runs one of the actions on the daemon's runtime (this is a worker thread, never
    /// one of the runtime's: blocking here is allowed) and counts what it did, in the
    /// order of `ids`.
    fn act_on<T, F>(
        &self,
        ids: &[MessageId],
        action: impl FnOnce(Vec<spool::MessageId>) -> F,
    ) -> Result<ActionReport, BackendError>
    where
        F: std::future::Future<Output = Result<Done<T>, ActionError>>,
    {
        let parsed: Vec<Option<spool::MessageId>> = ids.iter().map(spool_id).collect();
        let valid = parsed.iter().flatten().copied().collect();
        let done = self.runtime.block_on(action(valid)).map_err(|e| match e {
            ActionError::Busy(_) => BackendError::Unavailable(e.to_string()),
            ActionError::Spool(e) => spool_error(&e),
            ActionError::NotFound(_) => BackendError::NotFound,
            ActionError::NoticeFailed(_) => BackendError::Failed(e.to_string()),
        })?;
        let mut left: Vec<spool::MessageId> = done.done.into_iter().map(|(id, _)| id).collect();
        let mut report = ActionReport::default();
        for (id, sid) in ids.iter().zip(parsed) {
            match sid.and_then(|s| left.iter().position(|d| *d == s)) {
                Some(i) => {
                    left.swap_remove(i);
                    report.done += 1;
                }
                None => report.missing.push(id.clone()),
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
        let delivery = self.delivery.status();
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
            primary: PrimaryStatus {
                name: if delivery.primary == Overall::Unknown {
                    // The page has no "unknown" state; say it in the name.
                    format!("{hops} — not probed yet")
                } else {
                    hops
                },
                up: delivery.primary == Overall::Up,
                since: delivery.since,
            },
            upstream: c
                .relay
                .upstream_silo
                .iter()
                .map(|a| UpstreamStatus {
                    address: a.clone(),
                    reachable: NextHop::parse(a, 0).is_ok_and(|h| delivery.silo_up(&h)),
                })
                .collect(),
            queue_depth: f.messages,
            oldest_age_secs: f.oldest.map(|t| now.saturating_sub(t)),
            spool_used_bytes: f.used,
            spool_free_bytes: f.free,
            next_retry: f.next_attempt,
            last_delivery: delivery.last_delivery,
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
        let a = &self.actions;
        match action {
            QueueAction::Delete => self.act_on(ids, |ids| async move { a.delete(&ids).await }),
            QueueAction::Retry => self.act_on(ids, |ids| async move { a.retry(&ids).await }),
            QueueAction::Bounce => self.act_on(ids, |ids| async move { a.bounce(&ids).await }),
        }
    }

    fn flush(&self, domain: Option<&str>) -> Result<usize, BackendError> {
        let (n, _) = self.runtime.block_on(self.actions.flush(domain));
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

    #[cfg(feature = "doctor")]
    fn check_setup(&self) -> Result<SetupReport, BackendError> {
        let config = self.running();
        let usage =
            super::control::spool_usage(&self.spool.gauge, &self.events, self.clock.unix_seconds());
        let daemon = DaemonState {
            version: Ok(format!("mailbag {}", env!("CARGO_PKG_VERSION"))),
            usage: Ok(usage),
        };
        // A worker thread, never one of the runtime's: blocking here is allowed.
        let mut facts = self
            .runtime
            .block_on(doctor::gather(&config, &Options::default(), daemon))
            .map_err(BackendError::Failed)?;
        doctor::local_facts(&config, &mut facts);
        let report = crate::doctor::evaluate(&facts);
        self.events.push(
            self.clock.unix_seconds(),
            "setup-check",
            None,
            &format!("setup check: {report}").replace('\n', ""),
        );
        Ok(SetupReport::new(
            report
                .checks
                .into_iter()
                .map(|c| mailbag_web::backend::SetupCheck {
                    id: c.id.into(),
                    status: c.status.name().into(),
                    text: c.text,
                    fix: c.fix,
                })
                .collect(),
        ))
    }

    #[cfg(not(feature = "doctor"))]
    fn check_setup(&self) -> Result<SetupReport, BackendError> {
        Err(BackendError::Unavailable(crate::doctor::NOT_BUILT.into()))
    }

    fn routers(&self) -> Result<Vec<RouterStatus>, BackendError> {
        let watch = self.delivery.watch();
        let table = watch.routers.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(table
            .rows()
            .iter()
            .map(|r| RouterStatus {
                router: r.spec.id.clone(),
                last_seen: r.last_seen,
                overdue: r.overdue,
                held: r.last.as_ref().map_or(0, |b| b.held),
                primary: r
                    .last
                    .as_ref()
                    .map_or("unknown", |b| b.primary.as_str())
                    .into(),
                uptime_secs: r.last.as_ref().map(|b| b.uptime),
                spool_free_bytes: r.last.as_ref().map(|b| b.spool_free),
            })
            .collect())
    }

    fn metrics(&self) -> Result<String, BackendError> {
        let f = self.job(|s| {
            let u = s.usage();
            let used = u.bytes + u.reserved;
            let room = u.limits.max_bytes.min(u.device_bytes);
            (
                u64::from(u.messages),
                u.bytes,
                room.saturating_sub(used),
                s.oldest_received(),
            )
        })?;
        let now = self.clock.unix_seconds();
        let w = self.delivery.watch();
        let status = self.delivery.status();
        let up = |h: Health| match h {
            Health::Up => Some(true),
            Health::Down => Some(false),
            Health::Unknown => None,
        };
        let gauges = Gauges {
            held_messages: f.0,
            held_bytes: f.1,
            spool_free_bytes: f.2,
            oldest_age_secs: f.3.map(|t| now.saturating_sub(t)),
            last_delivery: status.last_delivery,
            uptime_secs: now.saturating_sub(w.started_unix),
            routes: status
                .routes
                .iter()
                .filter(|r| !r.upstream)
                .map(|r| RouteGauge {
                    route: r.name.clone(),
                    up: up(r.health),
                    since: r.since,
                })
                .collect(),
            upstream: status
                .routes
                .iter()
                .filter(|r| r.upstream && r.health != Health::Unknown)
                .map(|r| {
                    let silo = r.name.trim_start_matches("upstream ").to_owned();
                    (silo, r.health == Health::Up)
                })
                .collect(),
            routers: self
                .routers()?
                .into_iter()
                .map(|r| RouterGauge {
                    router: r.router,
                    last_seen: r.last_seen,
                    overdue: r.overdue,
                    held: r.held,
                })
                .collect(),
        };
        Ok(metrics::render(&w.counters, &gauges))
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
