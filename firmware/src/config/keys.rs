//! Every setting of [`Config`] by its dotted key (`relay.lifetime-days`, the TOML spelling;
//! UCI writes `_` for `-`): which differ between two configurations, and copying one
//! setting from another. Reload uses it to put changed live settings in force and keep the
//! others at their running value, without a generic value tree in the router binary. The
//! UCI reader sets each option through [`set`].
//!
//! The list is checked against the serde model by a test: a new field must be added here.

use super::Config;
use super::uci::UciValue;
use super::uci_read::{FromUci, UciError};

macro_rules! keys {
    ($($key:literal => $($field:ident).+;)*) => {
        /// Every key, sorted (sections and their options alphabetically).
        pub const KEYS: &[&str] = &[$($key),*];

        /// The keys whose values differ between `a` and `b`, sorted.
        pub fn changed(a: &Config, b: &Config) -> Vec<&'static str> {
            let mut out = Vec::new();
            $(
                if differ(&a.$($field).+, &b.$($field).+) {
                    out.push($key);
                }
            )*
            out
        }

        /// Copies the value of `key` from `from` into `to`; false for an unknown key.
        pub fn copy(key: &str, from: &Config, to: &mut Config) -> bool {
            /// One copier per key, in [`KEYS`]' order.
            const COPY: &[fn(&Config, &mut Config)] =
                &[$(|f, t| copy_field(&mut t.$($field).+, &f.$($field).+)),*];
            match index(key) {
                Some(i) => {
                    COPY[i](from, to);
                    true
                }
                None => false,
            }
        }

        /// Sets `key` in `to` from a UCI value; `None` for an unknown key.
        pub(super) fn set(
            key: &str,
            value: &UciValue,
            to: &mut Config,
        ) -> Option<Result<(), UciError>> {
            /// One setter per key, in [`KEYS`]' order.
            const SET: &[fn(&UciValue, &mut Config) -> Result<(), UciError>] =
                &[$(|v, c| put(&mut c.$($field).+, v)),*];
            index(key).map(|i| SET[i](value, to))
        }
    };
}

/// Where `key` is in [`KEYS`] (sorted: a binary search, then a table of one small function
/// per key, rather than a string compare chain over every key).
fn index(key: &str) -> Option<usize> {
    KEYS.binary_search(&key).ok()
}

/// Reads `value` into `slot`: one copy per field type, not one inlined parse per key.
#[inline(never)]
fn put<T: FromUci>(slot: &mut T, value: &UciValue) -> Result<(), UciError> {
    *slot = T::from_uci(value)?;
    Ok(())
}

/// Whether two values of a field differ (one copy per field type, as [`put`]).
#[inline(never)]
fn differ<T: PartialEq>(a: &T, b: &T) -> bool {
    a != b
}

/// Copies one field's value (one copy per field type, as [`put`]).
#[inline(never)]
fn copy_field<T: Clone>(to: &mut T, from: &T) {
    to.clone_from(from);
}

keys! {
    "daemon.control-socket" => daemon.control_socket;
    "enabled" => enabled;
    "firewall.mode" => firewall.mode;
    "firewall.ports" => firewall.ports;
    "firewall.silo" => firewall.silo;
    "firewall.silo-dns" => firewall.silo_dns;
    "firewall.silo-dns-interval" => firewall.silo_dns_interval;
    "firewall.wan-zone" => firewall.wan_zone;
    "monitor.beacon-interval" => monitor.beacon_interval;
    "monitor.beacon-secret" => monitor.beacon_secret;
    "monitor.down-after" => monitor.down_after;
    "monitor.led" => monitor.led;
    "monitor.metrics-token" => monitor.metrics_token;
    "monitor.overdue-after" => monitor.overdue_after;
    "monitor.router-id" => monitor.router_id;
    "monitor.routers" => monitor.routers;
    "notify.damping" => notify.damping;
    "notify.from" => notify.from;
    "notify.hook" => notify.hook;
    "notify.spool-full-percent" => notify.spool_full_percent;
    "notify.to" => notify.to;
    "notify.via" => notify.via;
    "notify.webhook" => notify.webhook;
    "policy.block-extensions" => policy.block_extensions;
    "policy.dnsbl" => policy.dnsbl;
    "policy.dnsbl-score" => policy.dnsbl_score;
    "policy.dnsbl-timeout" => policy.dnsbl_timeout;
    "policy.domain-rules" => policy.domain_rules;
    "policy.domains" => policy.domains;
    "policy.guess-cooldown" => policy.guess_cooldown;
    "policy.guess-delay" => policy.guess_delay;
    "policy.guess-threshold" => policy.guess_threshold;
    "policy.guess-window" => policy.guess_window;
    "policy.recipients" => policy.recipients;
    "policy.sessions-per-client" => policy.sessions_per_client;
    "policy.spam-flag-score" => policy.spam_flag_score;
    "policy.spam-reject-score" => policy.spam_reject_score;
    "policy.stress-idle-timeout" => policy.stress_idle_timeout;
    "policy.trusted" => policy.trusted;
    "policy.verify-cache" => policy.verify_cache;
    "policy.verify-negative-minutes" => policy.verify_negative_minutes;
    "policy.verify-positive-days" => policy.verify_positive_days;
    "policy.verify-recipients" => policy.verify_recipients;
    "policy.verify-unknown-while-down" => policy.verify_unknown_while_down;
    "relay.delay-warning-hours" => relay.delay_warning_hours;
    "relay.dns-servers" => relay.dns_servers;
    "relay.lifetime-days" => relay.lifetime_days;
    "relay.max-per-hop" => relay.max_per_hop;
    "relay.next-hops" => relay.next_hops;
    "relay.probe-interval" => relay.probe_interval;
    "relay.retry" => relay.retry;
    "relay.routes" => relay.routes;
    "relay.tls-policy" => relay.tls_policy;
    "relay.upstream-silo" => relay.upstream_silo;
    "role" => role;
    "scan.clamd" => scan.clamd;
    "scan.infected" => scan.infected;
    "scan.timeout" => scan.timeout;
    "scan.unreachable" => scan.unreachable;
    "smtp.hostname" => smtp.hostname;
    "smtp.idle-timeout-secs" => smtp.idle_timeout_secs;
    "smtp.listen" => smtp.listen;
    "smtp.max-bad-commands" => smtp.max_bad_commands;
    "smtp.max-message-size" => smtp.max_message_size;
    "smtp.max-recipients" => smtp.max_recipients;
    "smtp.max-sessions" => smtp.max_sessions;
    "smtp.session-timeout-secs" => smtp.session_timeout_secs;
    "smtp.starttls" => smtp.starttls;
    "smtp.tls-cert" => smtp.tls_cert;
    "smtp.tls-key" => smtp.tls_key;
    "spool.max-bytes" => spool.max_bytes;
    "spool.max-bytes-per-domain" => spool.max_bytes_per_domain;
    "spool.max-messages" => spool.max_messages;
    "spool.path" => spool.path;
    "spool.size" => spool.size;
    "web.listen" => web.listen;
    "web.shadow" => web.shadow;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf of the serde model (all optional settings set) is listed, and nothing else.
    #[cfg(feature = "toml-config")]
    #[test]
    fn the_list_is_the_models_fields() {
        let mut c = Config::default();
        c.smtp.tls_cert = Some("c".into());
        c.smtp.tls_key = Some("k".into());
        c.relay.upstream_silo = vec!["s:25".into()];
        c.firewall.silo_dns = Some("s".into());
        let toml::Value::Table(top) = toml::Value::try_from(&c).unwrap() else {
            panic!("not a table")
        };
        let mut leaves = Vec::new();
        for (name, v) in &top {
            match v {
                toml::Value::Table(t) => leaves.extend(t.keys().map(|o| format!("{name}.{o}"))),
                _ => leaves.push(name.clone()),
            }
        }
        leaves.sort();
        assert_eq!(leaves, KEYS);
        let mut sorted = KEYS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KEYS);
    }

    #[test]
    fn changed_and_copied_per_key() {
        let a = Config::default();
        let mut b = a.clone();
        b.relay.lifetime_days = 12;
        b.smtp.listen = vec!["127.0.0.1:1".into()];
        assert_eq!(changed(&a, &b), ["relay.lifetime-days", "smtp.listen"]);
        let mut c = b.clone();
        assert!(copy("smtp.listen", &a, &mut c));
        assert_eq!(changed(&a, &c), ["relay.lifetime-days"]);
        assert!(!copy("smtp.nope", &a, &mut c));
    }
}
