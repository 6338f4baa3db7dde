//! `[notify]` (who is told, and how) and `[monitor]` (beacons, the silo's routers, the
//! LED, the metrics token).

use serde::{Deserialize, Serialize};

/// Shortest beacon secret accepted (characters): 128 bits of a hex or base64 secret.
pub const SECRET_MIN: usize = 16;
/// Longest router id.
pub const ROUTER_ID_MAX: usize = 63;
/// Most routers a silo watches (each a fixed row of the table).
pub const ROUTERS_MAX: usize = 1024;
/// Most contacts per router, and most `notify.to` addresses.
pub const CONTACTS_MAX: usize = 8;
/// Most webhooks.
pub const WEBHOOKS_MAX: usize = 4;

/// `[notify]`: how the admin hears about the next hop, the spool and expiries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifyConfig {
    /// Email addresses told (a notice is queued on the spool like any message).
    pub to: Vec<String>,
    /// Envelope and header sender of notices; empty: `mailbag@` + `smtp.hostname`.
    pub from: String,
    /// How notices to `to` travel: `mx` (by the recipients' MX records, never through the
    /// primary that is down) or next hops (`10 smtp.provider.example:25`, e.g. the upstream
    /// silo when it relays for this router).
    pub via: String,
    /// URLs POSTed a small JSON document per notice (`http://` or `https://`).
    pub webhook: Vec<String>,
    /// A directory of executables run per notice with the event in environment variables
    /// (missing or empty: none).
    pub hook: String,
    /// Seconds: at most one notice per kind and subject in this time (0: no damping).
    pub damping: u32,
    /// Spool use (percent of its capacity) that sends a "spool nearly full" notice (0: never).
    pub spool_full_percent: u8,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            from: String::new(),
            via: "mx".into(),
            webhook: Vec::new(),
            hook: "/etc/mailbag/notify.d".into(),
            damping: 900,
            spool_full_percent: 80,
        }
    }
}

/// `[monitor]`: heartbeat beacons (edge → silo), the silo's router table, the LED, metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MonitorConfig {
    /// Edge: this router's name in its beacons; empty: `smtp.hostname`.
    pub router_id: String,
    /// Edge: the secret shared with the silo (HMAC key); empty sends no beacons.
    pub beacon_secret: String,
    /// Seconds between beacons (the silo expects them at the same interval).
    pub beacon_interval: u32,
    /// A route is down after this many failed probes or deliveries in a row.
    pub down_after: u32,
    /// Silo: a router is overdue after this many intervals without a beacon.
    pub overdue_after: u32,
    /// Silo: the routers it watches, `ID SECRET CONTACT...` (contacts: email addresses
    /// told when the router falls silent and when it returns).
    pub routers: Vec<String>,
    /// The LED under `/sys/class/leds/` that shows held mail (empty: none); a full path
    /// names an LED directory elsewhere.
    pub led: String,
    /// Bearer token for `/metrics` on the admin listener (empty: `/metrics` is not served).
    pub metrics_token: String,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            router_id: String::new(),
            beacon_secret: String::new(),
            beacon_interval: 300,
            down_after: crate::relay::health::DOWN_AFTER,
            overdue_after: 3,
            routers: Vec::new(),
            led: String::new(),
            metrics_token: String::new(),
        }
    }
}

/// One router a silo watches, parsed from `monitor.routers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterSpec {
    /// The id its beacons carry.
    pub id: String,
    /// The shared secret (HMAC key).
    pub secret: String,
    /// Who is told when it falls silent or returns.
    pub contacts: Vec<String>,
}

impl RouterSpec {
    /// Parses `ID SECRET [CONTACT...]` (contacts separated by spaces or commas).
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty());
        let (Some(id), Some(secret)) = (words.next(), words.next()) else {
            return Err(format!(
                "'{line}' is not 'ID SECRET [CONTACT...]' (e.g. 'office1 9f2c...e1 admin@office.example')"
            ));
        };
        if !is_router_id(id) {
            return Err(format!(
                "router id '{id}' must be 1-{ROUTER_ID_MAX} of A-Z a-z 0-9 . _ -"
            ));
        }
        check_secret(secret)?;
        let contacts: Vec<String> = words.map(str::to_owned).collect();
        if contacts.len() > CONTACTS_MAX {
            return Err(format!("router {id}: at most {CONTACTS_MAX} contacts"));
        }
        if let Some(bad) = contacts.iter().find(|a| !is_address(a)) {
            return Err(format!(
                "router {id}: '{bad}' is not an address like user@example.com"
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            contacts,
        })
    }
}

/// A router id: 1-[`ROUTER_ID_MAX`] of `A-Z a-z 0-9 . _ -`.
pub fn is_router_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ROUTER_ID_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A usable shared secret: at least [`SECRET_MIN`] printable characters, no spaces.
pub fn check_secret(s: &str) -> Result<(), String> {
    if s.len() < SECRET_MIN || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the secret must be at least {SECRET_MIN} printable characters without spaces (e.g. `head -c 24 /dev/urandom | base64`)"
        ));
    }
    Ok(())
}

/// `local@domain` with a non-empty local part and a dotted or simple domain, nothing
/// that could break a header or command line.
pub fn is_address(a: &str) -> bool {
    a.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && a.len() <= 254
            && a.bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&b))
    })
}

/// Every problem in `[notify]` and `[monitor]`: `(key, message, is_error)`.
pub fn issues(n: &NotifyConfig, m: &MonitorConfig) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut err = |key: String, msg: String| out.push((key, msg, true));
    if n.to.len() > CONTACTS_MAX {
        err(
            "notify.to".into(),
            format!("at most {CONTACTS_MAX} addresses"),
        );
    }
    for (i, a) in n.to.iter().enumerate() {
        if !is_address(a) {
            err(
                format!("notify.to[{i}]"),
                format!("'{a}' is not an address like user@example.com"),
            );
        }
    }
    if !n.from.is_empty() && !is_address(&n.from) {
        err(
            "notify.from".into(),
            format!("'{}' is not an address", n.from),
        );
    }
    if n.webhook.len() > WEBHOOKS_MAX {
        err(
            "notify.webhook".into(),
            format!("at most {WEBHOOKS_MAX} URLs"),
        );
    }
    for (i, u) in n.webhook.iter().enumerate() {
        if let Err(e) = super::http::Url::parse(u) {
            err(format!("notify.webhook[{i}]"), e.to_string());
        }
    }
    if n.spool_full_percent > 100 {
        err(
            "notify.spool-full-percent".into(),
            "a percentage: 0 (never) to 100".into(),
        );
    }
    if m.beacon_interval == 0 {
        err(
            "monitor.beacon-interval".into(),
            "at least 1 second (the default, 300, suits a router)".into(),
        );
    }
    if m.down_after == 0 || m.down_after > 100 {
        err(
            "monitor.down-after".into(),
            "1 to 100 failures in a row".into(),
        );
    }
    if m.overdue_after == 0 {
        err("monitor.overdue-after".into(), "at least 1 interval".into());
    }
    if !m.router_id.is_empty() && !is_router_id(&m.router_id) {
        err(
            "monitor.router-id".into(),
            format!(
                "'{}' must be 1-{ROUTER_ID_MAX} of A-Z a-z 0-9 . _ -",
                m.router_id
            ),
        );
    }
    if !m.beacon_secret.is_empty() {
        if let Err(e) = check_secret(&m.beacon_secret) {
            err("monitor.beacon-secret".into(), e);
        }
    }
    if m.routers.len() > ROUTERS_MAX {
        err(
            "monitor.routers".into(),
            format!("at most {ROUTERS_MAX} routers"),
        );
    }
    let mut seen = Vec::new();
    for (i, line) in m.routers.iter().enumerate() {
        match RouterSpec::parse(line) {
            Ok(spec) if seen.contains(&spec.id) => err(
                format!("monitor.routers[{i}]"),
                format!("router {} is listed twice", spec.id),
            ),
            Ok(spec) => seen.push(spec.id),
            Err(e) => err(format!("monitor.routers[{i}]"), e),
        }
    }
    let led_name = !m.led.contains('/') && !m.led.starts_with('.') && m.led.len() <= 64;
    let led_dir = m.led.starts_with('/') && !m.led.split('/').any(|c| c == "..");
    if !m.led.is_empty() && !led_name && !led_dir {
        err(
            "monitor.led".into(),
            format!(
                "'{}' is not an LED name under /sys/class/leds/ (or the full path of one)",
                m.led
            ),
        );
    }
    if !m.metrics_token.is_empty() && m.metrics_token.len() < SECRET_MIN {
        err(
            "monitor.metrics-token".into(),
            format!("at least {SECRET_MIN} characters (or empty: no /metrics)"),
        );
    }
    out
}

/// `[relay]` with a route per notice recipient domain (notice mail must not depend on the
/// primary that is down) (`notify.to`, and on a silo its
/// routers' contacts) to `notify.via`, unless `relay.routes` routes that domain already.
pub fn relay_config(c: &crate::config::Config) -> crate::relay::RelayConfig {
    let mut relay = c.relay.clone();
    let contacts = c
        .monitor
        .routers
        .iter()
        .filter_map(|l| RouterSpec::parse(l).ok())
        .flat_map(|r| r.contacts);
    let mut domains: Vec<String> = c
        .notify
        .to
        .iter()
        .cloned()
        .chain(contacts)
        .map(|a| crate::spool::message::domain_of(&a))
        .filter(|d| !d.is_empty())
        .collect();
    domains.sort();
    domains.dedup();
    let via = if c.notify.via.trim().is_empty() {
        "mx"
    } else {
        c.notify.via.trim()
    };
    for dom in domains {
        let routed = relay.routes.iter().any(|r| {
            r.split_once('=')
                .is_some_and(|(d, _)| d.trim().trim_start_matches('.').eq_ignore_ascii_case(&dom))
        });
        if !routed {
            relay.routes.push(format!("{dom} = {via}"));
        }
    }
    relay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_lines_parse_or_say_why() {
        let r =
            RouterSpec::parse("office1 0123456789abcdef0123 admin@office.example, it@isp.example")
                .unwrap();
        assert_eq!(r.id, "office1");
        assert_eq!(r.contacts, ["admin@office.example", "it@isp.example"]);
        assert!(
            RouterSpec::parse("office1")
                .unwrap_err()
                .contains("ID SECRET")
        );
        assert!(
            RouterSpec::parse("office1 short")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(
            RouterSpec::parse("of/fice 0123456789abcdef0123")
                .unwrap_err()
                .contains("router id")
        );
        assert!(
            RouterSpec::parse("o 0123456789abcdef0123 nobody")
                .unwrap_err()
                .contains("'nobody'")
        );
    }

    #[test]
    fn every_bad_key_is_named() {
        let n = NotifyConfig {
            to: vec!["x".into()],
            webhook: vec!["ftp://h/".into()],
            spool_full_percent: 120,
            ..NotifyConfig::default()
        };
        let m = MonitorConfig {
            beacon_interval: 0,
            routers: vec![
                "a 0123456789abcdef0123".into(),
                "a 0123456789abcdef0123".into(),
            ],
            led: "../x".into(),
            metrics_token: "short".into(),
            ..MonitorConfig::default()
        };
        let keys: Vec<String> = issues(&n, &m).into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(
            keys,
            [
                "notify.to[0]",
                "notify.webhook[0]",
                "notify.spool-full-percent",
                "monitor.beacon-interval",
                "monitor.routers[1]",
                "monitor.led",
                "monitor.metrics-token"
            ]
        );
        assert!(issues(&NotifyConfig::default(), &MonitorConfig::default()).is_empty());
    }

    #[test]
    fn notice_domains_get_their_own_route() {
        let mut c = crate::config::Config::default();
        c.relay.next_hops = vec!["mail.office.lan:25".into()];
        c.relay.routes = vec![".office.test = mail.office.lan:25".into()];
        c.notify.to = vec![
            "admin@isp.example".into(),
            "boss@office.test".into(),
            "it@ISP.example".into(),
        ];
        let r = relay_config(&c);
        assert_eq!(
            r.routes,
            [".office.test = mail.office.lan:25", "isp.example = mx"],
            "the office's own domain keeps its route; the others go by MX, not via the primary"
        );
        c.notify.via = "10 silo.provider.example:25".into();
        assert_eq!(
            relay_config(&c).routes[1],
            "isp.example = 10 silo.provider.example:25"
        );
    }
}
