//! Applying a changed configuration to the running daemon (the admin page's save, SIGHUP).
//!
//! [`Reloader::apply`] validates a new [`Config`] with the checks of `mailbag check-config`
//! and, if it passes, swaps what can change at run time: the SMTP sessions' settings and
//! policy (accepted domains, recipient lists, size and recipient limits, timeouts) and the
//! relay settings (routes, next hops, retry schedule, lifetime, TLS policy, max-per-hop,
//! probe interval). New SMTP sessions and the next delivery attempt use the new values;
//! sessions and attempts in progress finish with the ones they started with.
//!
//! Everything else — listeners, the spool (path, size, limits), STARTTLS and its
//! certificate, the host name, role, upstream silo, DNS servers, the admin page's listener
//! and password file, the control socket — keeps its running value until a restart;
//! [`needs_restart`] is the one list, and the page's "restart needed" comes from it. The
//! configuration in force ([`Reloader::running`]) is the new one with those keys left at
//! their running values, so what the daemon reports is what it does.

use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{Config, keys};
use crate::daemon::delivery::Deliverer;
use crate::daemon::inbound::Inbound;
use crate::daemon::live::Live;
use crate::daemon::spool::GaugeCapacity;
use crate::policy::{Checker, Rules};
use crate::relay::RelaySettings;
use crate::smtp::SessionConfig;

/// Keys (`section.option`, or `section.` for a whole section) that apply without a restart.
/// `enabled` and `[firewall]` are read by the init script and the firewall commands, not by
/// the running daemon, so a restart changes nothing for them either.
const LIVE: &[&str] = &[
    "enabled",
    "policy.",
    "scan.",
    "smtp.max-message-size",
    "smtp.max-recipients",
    "smtp.max-bad-commands",
    "smtp.idle-timeout-secs",
    "smtp.session-timeout-secs",
    "relay.next-hops",
    "relay.routes",
    "relay.probe-interval",
    "relay.retry",
    "relay.lifetime-days",
    "relay.delay-warning-hours",
    "relay.tls-policy",
    "relay.max-per-hop",
    "firewall.",
];

/// Whether a change of `key` (`smtp.listen`, `relay.routes`) only takes effect after a
/// restart of the daemon.
pub fn needs_restart(key: &str) -> bool {
    !LIVE
        .iter()
        .any(|l| key == *l || (l.ends_with('.') && key.starts_with(l)))
}

/// What [`Reloader::apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Changed keys now in force.
    pub applied: Vec<String>,
    /// Changed keys that keep their running value until a restart.
    pub restart_needed: Vec<String>,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.applied.is_empty(), self.restart_needed.is_empty()) {
            (true, true) => f.write_str("no changes"),
            (false, true) => write!(f, "applied: {}", self.applied.join(", ")),
            (true, false) => write!(f, "restart needed for: {}", self.restart_needed.join(", ")),
            (false, false) => write!(
                f,
                "applied: {}; restart needed for: {}",
                self.applied.join(", "),
                self.restart_needed.join(", ")
            ),
        }
    }
}

/// Holds the configuration in force and the swappable parts of the daemon.
pub struct Reloader {
    running: Mutex<Config>,
    inbound: Arc<Live<Inbound>>,
    deliverer: Arc<Deliverer>,
    capacity: GaugeCapacity,
    /// STARTTLS is offered (an acceptor was made at start).
    starttls: bool,
    /// The daemon's runtime: held mail is made due on it when the routes change.
    runtime: Option<tokio::runtime::Handle>,
}

impl Reloader {
    /// Over the daemon started with `running`. `runtime` (when given) must be driven by
    /// the daemon; without it a route change does not make held mail due at once.
    pub fn new(
        running: Config,
        inbound: Arc<Live<Inbound>>,
        deliverer: Arc<Deliverer>,
        capacity: GaugeCapacity,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Self {
        let starttls = inbound.get().session.starttls;
        Self {
            running: Mutex::new(running),
            inbound,
            deliverer,
            capacity,
            starttls,
            runtime,
        }
    }

    /// The configuration in force.
    pub fn running(&self) -> Config {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Config> {
        // Replaced in one step; a panic elsewhere cannot leave it half-written.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Validates `new` and puts what can change at run time in force; a refused
    /// configuration changes nothing (the error lists every problem, one per line).
    pub fn apply(&self, new: &Config) -> Result<Applied, String> {
        let report = new.validate();
        if !report.errors.is_empty() {
            let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            return Err(lines.join("\n"));
        }
        let mut running = self.lock();
        let mut effective = new.clone();
        let mut out = Applied::default();
        for key in keys::changed(&running, new) {
            if needs_restart(key) {
                keys::copy(key, &running, &mut effective);
                out.restart_needed.push(key.to_owned());
            } else {
                out.applied.push(key.to_owned());
            }
        }
        if out.applied.is_empty() {
            return Ok(out);
        }
        let inbound = self.inbound(&effective)?;
        let relay = RelaySettings::from_config(&effective.relay, &effective.smtp.hostname)
            .map_err(|e| format!("relay: {e}"))?
            .for_edge(effective.role == crate::config::Role::Edge);
        let routes_changed = running.relay.next_hops != effective.relay.next_hops
            || running.relay.routes != effective.relay.routes;
        if running.relay.max_per_hop != effective.relay.max_per_hop {
            // New connections get permits of the new size; those in progress keep theirs.
            self.deliverer
                .hop_slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        self.inbound.set(inbound);
        self.deliverer.settings.set(relay);
        *running = effective;
        drop(running);
        if routes_changed {
            self.make_held_mail_due();
        }
        Ok(out)
    }

    fn inbound(&self, c: &Config) -> Result<Inbound, String> {
        let rules = Rules::from_config(&c.policy).map_err(|e| format!("policy: {e}"))?;
        let checker = Checker::new(Arc::new(rules), self.capacity.clone());
        let mut session = SessionConfig::new(&c.smtp, checker).map_err(|e| e.to_string())?;
        session.starttls = self.starttls;
        Inbound::new(session, &c.policy, &c.scan)
    }

    /// Held mail waits for its retry time; with new next hops it is tried now instead.
    fn make_held_mail_due(&self) {
        let Some(rt) = &self.runtime else { return };
        let d = Arc::clone(&self.deliverer);
        rt.spawn(async move {
            let n = d.spool.flush(None).await;
            d.kick.notify_one();
            if n > 0 {
                crate::log!("next hops changed: {n} held message(s) made due");
            }
        });
    }
}

/// Leaf keys (`role`, `smtp.listen`) whose values differ.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_and_the_spool_need_a_restart_policy_and_routes_do_not() {
        for key in [
            "smtp.listen",
            "smtp.hostname",
            "spool.path",
            "spool.max-bytes",
            "web.listen",
            "role",
            "daemon.control-socket",
            "relay.dns-servers",
            "relay.upstream-silo",
            "smtp.tls-cert",
        ] {
            assert!(needs_restart(key), "{key}");
        }
        for key in [
            "policy.domains",
            "policy.recipients",
            "relay.routes",
            "relay.next-hops",
            "relay.retry",
            "smtp.max-message-size",
            "firewall.mode",
        ] {
            assert!(!needs_restart(key), "{key}");
        }
    }

    #[test]
    fn changed_keys_name_each_option() {
        let a = Config::demo(std::path::Path::new("/s"));
        let mut b = a.clone();
        b.policy.domains.push("new.test".into());
        b.smtp.listen = vec!["127.0.0.1:2526".into()];
        b.relay.upstream_silo = Some("silo.test:25".into());
        let keys = keys::changed(&a, &b);
        assert_eq!(
            keys,
            ["policy.domains", "relay.upstream-silo", "smtp.listen"]
        );
    }

    #[cfg(feature = "web")]
    #[test]
    fn the_demo_page_says_restart_for_the_same_fields_as_the_daemon() {
        let mut n = 0;
        for key in mailbag_web::fake::setting_keys() {
            assert_eq!(
                mailbag_web::fake::restart_needed(key),
                Some(needs_restart(key)),
                "{key}"
            );
            n += 1;
        }
        assert!(n > 20, "{n} fields");
    }
}
