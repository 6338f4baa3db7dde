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
//! [`needs_restart`] (the settings schema shared with the page and the demo,
//! [`mailbag_web::settings`]) is the one list, and the page's "restart needed" comes from
//! it. The new configuration is parsed whole ([`RunSettings::new_checked`]) and handed to
//! inbound's and delivery's handles ([`InboundHandle::apply`],
//! [`DeliveryHandle::apply`]). The configuration in force ([`Reloader::running`]) is the new one with those keys left at
//! their running values, so what the daemon reports is what it does.

use std::sync::{Mutex, PoisonError};

use crate::config::{Config, RunSettings, keys};
use crate::daemon::delivery::{DeliveryHandle, Scope};
use crate::daemon::inbound::InboundHandle;

/// Whether a change of `key` (`smtp.listen`, `relay.routes`) only takes effect after a
/// restart of the daemon: the shared settings schema says (its `Live` keys are the ones
/// [`Reloader::apply`] puts in force; `enabled` and `[firewall]` are read by the init
/// script and the firewall commands, not by the running daemon).
pub use mailbag_web::settings::needs_restart;

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

/// Holds the configuration in force and the handles of the parts that take new settings.
pub struct Reloader {
    running: Mutex<Config>,
    inbound: InboundHandle,
    delivery: DeliveryHandle,
    /// The daemon's runtime: held mail is made due on it when the routes change.
    runtime: Option<tokio::runtime::Handle>,
}

impl Reloader {
    /// Over the daemon started with `running`. `runtime` (when given) must be driven by
    /// the daemon; without it a route change does not make held mail due at once.
    pub fn new(
        running: Config,
        inbound: InboundHandle,
        delivery: DeliveryHandle,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Self {
        Self {
            running: Mutex::new(running),
            inbound,
            delivery,
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
        // Parsed whole before anything changes: a value that does not parse refuses it all.
        let settings = RunSettings::new_checked(effective)?;
        let routes_changed = running.relay.next_hops != settings.config.relay.next_hops
            || running.relay.routes != settings.config.relay.routes;
        self.inbound.apply(&settings);
        self.delivery.apply(&settings);
        *running = settings.config;
        drop(running);
        if routes_changed {
            self.make_held_mail_due();
        }
        Ok(out)
    }

    /// Held mail waits for its retry time; with new next hops it is tried now instead.
    fn make_held_mail_due(&self) {
        let Some(rt) = &self.runtime else { return };
        let delivery = self.delivery.clone();
        crate::daemon::task::spawn_on(rt, async move {
            let n = delivery.flush(Scope::All).await;
            if n > 0 {
                crate::log!("next hops changed: {n} held message(s) made due");
            }
        });
    }
}

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
        b.relay.upstream_silo = vec!["silo.test:25".into()];
        let keys = keys::changed(&a, &b);
        assert_eq!(
            keys,
            ["policy.domains", "relay.upstream-silo", "smtp.listen"]
        );
    }
}
