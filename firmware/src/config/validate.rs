//! Validation of a parsed [`Config`]: the checks types cannot express.
//!
//! Errors make the config unusable (`check-config` exits 2, the daemon refuses to start);
//! warnings are printed but allowed. Each issue names its key in the model's dotted form,
//! e.g. `smtp.listen[1]`. Deep checks stay with their module (the firewall module parses
//! CIDRs fully, the relay module the retry schedule); here values only have to look right.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::{Config, Role};
use crate::firewall::FirewallMode;

/// Most concurrent SMTP sessions accepted in the config (each holds fixed buffers).
pub const MAX_SESSIONS_LIMIT: u32 = 4096;
/// Smallest spool image that holds littlefs metadata and a few messages.
pub const MIN_SPOOL_SIZE: u64 = 64 * 1024;
/// Largest size setting accepted (1 TiB): far above any router flash, and it keeps every
/// size representable in TOML (whose integers are i64).
pub const MAX_SIZE: u64 = 1 << 40;
/// Longest a message may be kept (days), per the product's retry policy.
pub const LIFETIME_DAYS: std::ops::RangeInclusive<u32> = 1..=30;
/// Longest Unix socket path (`sun_path` is 108 bytes on Linux, NUL included).
pub const SOCKET_PATH_MAX: usize = 107;

/// One problem, naming the key it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key, e.g. `smtp.listen[1]`.
    pub key: String,
    /// What is wrong and what is expected.
    pub msg: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.msg)
    }
}

/// Everything validation found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The config cannot be used.
    pub errors: Vec<Issue>,
    /// Allowed, but probably not what was meant.
    pub warnings: Vec<Issue>,
}

impl Report {
    pub(super) fn error(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(Issue {
            key: key.into(),
            msg: msg.into(),
        });
    }

    fn warn(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.warnings.push(Issue {
            key: key.into(),
            msg: msg.into(),
        });
    }
}

/// Runs every check.
pub fn check(c: &Config) -> Report {
    let mut r = Report::default();
    for (key, size) in [
        ("smtp.max-message-size", c.smtp.max_message_size),
        ("spool.size", c.spool.size),
        ("spool.max-bytes", c.spool.max_bytes),
        ("spool.max-bytes-per-domain", c.spool.max_bytes_per_domain),
    ] {
        if size > MAX_SIZE {
            r.error(
                key,
                format!("{size} bytes is more than the {MAX_SIZE} (1 TiB) limit"),
            );
        }
    }
    super::build::check(c, &mut r);
    smtp(c, &mut r);
    policy(c, &mut r);
    spool(c, &mut r);
    relay(c, &mut r);
    firewall(c, &mut r);
    daemon(c, &mut r);
    for (key, msg, error) in crate::monitor::config::issues(&c.notify, &c.monitor) {
        if error {
            r.error(key, msg);
        } else {
            r.warn(key, msg);
        }
    }
    for (i, a) in c.web.listen.iter().enumerate() {
        if a.parse::<SocketAddr>().is_err() {
            r.error(format!("web.listen[{i}]"), not_listen(a));
        }
    }
    r
}

fn smtp(c: &Config, r: &mut Report) {
    let s = &c.smtp;
    if !is_domain(&s.hostname) {
        r.error(
            "smtp.hostname",
            format!("'{}' is not a host name", s.hostname),
        );
    }
    if s.listen.is_empty() {
        r.error(
            "smtp.listen",
            "no listen address; mailbag would accept no mail",
        );
    }
    for (i, a) in s.listen.iter().enumerate() {
        if a.parse::<SocketAddr>().is_err() {
            r.error(format!("smtp.listen[{i}]"), not_listen(a));
        }
    }
    if s.max_sessions == 0 || s.max_sessions > MAX_SESSIONS_LIMIT {
        r.error(
            "smtp.max-sessions",
            format!(
                "{} is out of range 1..={MAX_SESSIONS_LIMIT}",
                s.max_sessions
            ),
        );
    }
    if s.max_message_size < 1024 {
        r.error(
            "smtp.max-message-size",
            format!("{} bytes is too small (at least 1024)", s.max_message_size),
        );
    } else if s.max_message_size > c.spool.max_bytes {
        r.warn(
            "smtp.max-message-size",
            format!(
                "{} is larger than spool.max-bytes ({}): such messages can never be held",
                s.max_message_size, c.spool.max_bytes
            ),
        );
    }
    let given = |p: &Option<String>| p.as_deref().is_some_and(|p| !p.trim().is_empty());
    match (given(&s.tls_cert), given(&s.tls_key)) {
        (true, false) => r.error("smtp.tls-key", "tls-cert is set, so tls-key must be too"),
        (false, true) => r.error("smtp.tls-cert", "tls-key is set, so tls-cert must be too"),
        (true, true) if !s.starttls => {
            r.warn("smtp.starttls", "a certificate is set but STARTTLS is off")
        }
        _ => {}
    }
}

fn policy(c: &Config, r: &mut Report) {
    if c.policy.domains.is_empty() {
        r.warn("policy.domains", "no domains: all mail will be refused");
    }
    for (i, d) in c.policy.domains.iter().enumerate() {
        if !is_domain(d) {
            r.error(
                format!("policy.domains[{i}]"),
                format!("'{d}' is not a domain name"),
            );
        }
    }
    for (i, a) in c.policy.recipients.iter().enumerate() {
        let ok = a.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !local
                    .chars()
                    .any(|ch| ch.is_whitespace() || "<>".contains(ch))
                && is_domain(domain)
        });
        if !ok {
            r.error(
                format!("policy.recipients[{i}]"),
                format!("'{a}' is not an address like user@example.com"),
            );
        }
    }
    if let Err(errors) = crate::policy::Protection::from_config(&c.policy, &c.scan) {
        for (key, msg) in errors {
            r.error(key, msg);
        }
    }
    if c.policy.sessions_per_client >= c.smtp.max_sessions && c.smtp.max_sessions > 1 {
        r.warn(
            "policy.sessions-per-client",
            format!(
                "not below smtp.max-sessions ({}): one client can still take every session",
                c.smtp.max_sessions
            ),
        );
    }
    if c.policy.verify_recipients && c.role == Role::Edge && c.relay.next_hops.is_empty() {
        r.warn(
            "policy.verify-recipients",
            "no relay.next-hops: recipients are asked at each domain's route",
        );
    }
}

fn spool(c: &Config, r: &mut Report) {
    let s = &c.spool;
    if s.path.trim().is_empty() {
        r.error("spool.path", "empty; give an image file path or /dev/mtdN");
    }
    let is_mtd = s.path.starts_with("/dev/");
    if ["/tmp/", "/var/"].iter().any(|ram| s.path.starts_with(ram)) {
        r.warn(
            "spool.path",
            format!(
                "'{}' is in RAM on OpenWrt (/tmp, /var): held mail would not survive a reboot",
                s.path
            ),
        );
    }
    if !is_mtd && s.size < MIN_SPOOL_SIZE {
        r.error(
            "spool.size",
            format!("{} bytes is too small (at least {MIN_SPOOL_SIZE})", s.size),
        );
    }
    if s.max_messages == 0 {
        r.error("spool.max-messages", "0 would hold no mail (at least 1)");
    }
    if s.max_bytes == 0 {
        r.error("spool.max-bytes", "0 would hold no mail");
    } else if !is_mtd && s.max_bytes > s.size {
        r.warn(
            "spool.max-bytes",
            format!(
                "{} is more than the image size ({}); the image bounds it",
                s.max_bytes, s.size
            ),
        );
    }
}

fn daemon(c: &Config, r: &mut Report) {
    let path = &c.daemon.control_socket;
    if path.is_empty() {
        return;
    }
    if path.len() > SOCKET_PATH_MAX {
        r.error(
            "daemon.control-socket",
            format!(
                "{} bytes is longer than a Unix socket path may be ({SOCKET_PATH_MAX})",
                path.len()
            ),
        );
    } else if path.ends_with('/') {
        r.error(
            "daemon.control-socket",
            format!("'{path}' names a directory"),
        );
    }
}

fn relay(c: &Config, r: &mut Report) {
    let s = &c.relay;
    if c.role == Role::Edge && s.next_hops.is_empty() {
        r.warn(
            "relay.next-hops",
            "no next hop: mail for domains without a relay.routes entry stays held (an edge \
             never delivers its office's domains by MX: that would come back to itself)",
        );
    }
    // The relay's own parser: check-config and the daemon agree on what a route is.
    let hops = crate::relay::NextHops::parse(&s.next_hops).unwrap_or_default();
    if let Err(e) = crate::relay::Routes::parse(&s.routes, hops) {
        let key = match e.index {
            Some(i) => format!("relay.routes[{i}]"),
            None => "relay.routes".to_owned(),
        };
        r.error(key, format!("'{}': {}", e.text, e.why));
    }
    for (i, h) in s.next_hops.iter().enumerate() {
        // `[preference ]host:port`
        let (pref, hostport) = match h.trim().split_once(char::is_whitespace) {
            Some((p, rest)) => (Some(p), rest.trim()),
            None => (None, h.trim()),
        };
        if pref.is_some_and(|p| p.parse::<u16>().is_err()) || !is_host_port(hostport) {
            r.error(
                format!("relay.next-hops[{i}]"),
                format!("'{h}' is not host:port (optionally with a preference: '10 mail.lan:25')"),
            );
        }
    }
    if s.probe_interval == 0 || s.probe_interval > 86_400 {
        r.error(
            "relay.probe-interval",
            format!("{} seconds is out of range 1..=86400", s.probe_interval),
        );
    }
    if s.retry.trim().is_empty() {
        r.error("relay.retry", "empty; e.g. '15m for 2h, then 30m'");
    }
    if !LIFETIME_DAYS.contains(&s.lifetime_days) {
        r.error(
            "relay.lifetime-days",
            format!("{} is out of range 1..=30 days", s.lifetime_days),
        );
    } else if s.delay_warning_hours >= s.lifetime_days.saturating_mul(24) {
        r.warn(
            "relay.delay-warning-hours",
            "not shorter than the lifetime: no delay warning will be sent",
        );
    }
    for (i, a) in s.dns_servers.iter().enumerate() {
        if crate::relay::dns::parse_server(a).is_none() {
            r.error(
                format!("relay.dns-servers[{i}]"),
                format!("'{a}' is not an IP address with an optional port (e.g. 127.0.0.1:53)"),
            );
        }
    }
    if s.dns_servers.len() > crate::relay::dns::SERVERS_MAX {
        r.error(
            "relay.dns-servers",
            format!(
                "{} servers; at most {} are asked",
                s.dns_servers.len(),
                crate::relay::dns::SERVERS_MAX
            ),
        );
    }
    for (i, silo) in s.upstream_silo.iter().enumerate() {
        if !is_host_port(silo) {
            r.error(
                format!("relay.upstream-silo[{i}]"),
                format!("'{silo}' is not host:port"),
            );
        }
    }
    if !s.upstream_silo.is_empty() && c.role == Role::Silo {
        r.warn("relay.upstream-silo", "ignored for role silo");
    }
}

fn firewall(c: &Config, r: &mut Report) {
    let f = &c.firewall;
    for (i, cidr) in f.silo.iter().enumerate() {
        if !looks_like_cidr(cidr) {
            r.error(
                format!("firewall.silo[{i}]"),
                format!("'{cidr}' is not an address or CIDR (e.g. 203.0.113.0/28, 2001:db8::/48)"),
            );
        }
    }
    if let Some(name) = &f.silo_dns
        && !is_domain(name)
    {
        r.error("firewall.silo-dns", format!("'{name}' is not a host name"));
    }
    for (i, p) in f.ports.iter().enumerate() {
        if *p == 0 {
            r.error(format!("firewall.ports[{i}]"), "port 0 is not a port");
        } else if f.ports[..i].contains(p) {
            r.warn(
                format!("firewall.ports[{i}]"),
                format!("port {p} is listed twice"),
            );
        }
    }
    let zone_ok = !f.wan_zone.is_empty()
        && f.wan_zone
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if !zone_ok {
        r.error(
            "firewall.wan-zone",
            format!("'{}' is not a zone name", f.wan_zone),
        );
    }
    if f.mode == FirewallMode::WalledGarden
        && c.role == Role::Edge
        && f.silo.is_empty()
        && f.silo_dns.is_none()
    {
        r.warn(
            "firewall.silo",
            "walled-garden mode with no silo addresses: port 25 is closed to everyone",
        );
    }
}

fn not_listen(a: &str) -> String {
    format!("'{a}' is not an address:port (e.g. 0.0.0.0:25, [::]:25)")
}

/// RFC 1035 host name syntax (letters, digits, hyphens; labels 1..=63; total ≤ 253).
pub fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
}

/// `host:port` with a host name, an IPv4 address or a bracketed IPv6 address.
pub fn is_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => is_domain(host) && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

/// An IP address, optionally with a prefix length that fits its family.
pub fn looks_like_cidr(s: &str) -> bool {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_none_or(|l| l.parse::<u8>().is_ok_and(|l| l <= max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.key.as_str()).collect()
    }

    #[test]
    fn demo_config_is_clean() {
        let r = check(&Config::demo(std::path::Path::new("state")));
        assert_eq!(r, Report::default());
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let mut c = Config::demo(std::path::Path::new("state"));
        c.smtp.listen = vec!["127.0.0.1:25".into(), "x:25".into()];
        c.smtp.hostname = "bad_host".into();
        c.smtp.tls_cert = Some("/etc/mailbag/cert.pem".into());
        c.policy.domains = vec!["example.com".into(), "-bad.example".into()];
        c.policy.recipients = vec!["nobody".into()];
        c.relay.lifetime_days = 31;
        c.relay.next_hops = vec!["10 mail.lan:25".into(), "mail.lan".into()];
        c.relay.dns_servers = vec!["[::1]:5353".into(), "dns.lan".into()];
        c.firewall.silo = vec![
            "203.0.113.0/28".into(),
            "2001:db8::/129".into(),
            "silo".into(),
        ];
        c.spool.size = 1000;
        c.spool.max_bytes_per_domain = u64::MAX;
        let r = check(&c);
        assert_eq!(
            keys(&r.errors),
            [
                "spool.max-bytes-per-domain",
                "smtp.hostname",
                "smtp.listen[1]",
                "smtp.tls-key",
                "policy.domains[1]",
                "policy.recipients[0]",
                "spool.size",
                "relay.next-hops[1]",
                "relay.lifetime-days",
                "relay.dns-servers[1]",
                "firewall.silo[1]",
                "firewall.silo[2]",
            ]
        );
        assert_eq!(
            r.errors[2].to_string(),
            "smtp.listen[1]: 'x:25' is not an address:port (e.g. 0.0.0.0:25, [::]:25)"
        );
    }

    #[test]
    fn control_socket_paths() {
        let mut c = Config::demo(std::path::Path::new("/state"));
        for bad in ["/var/run/", &format!("/{}", "x".repeat(SOCKET_PATH_MAX))] {
            c.daemon.control_socket = bad.to_string();
            assert_eq!(keys(&check(&c).errors), ["daemon.control-socket"], "{bad}");
        }
        for good in ["", "/var/run/mailbag/control.sock", "state/control.sock"] {
            c.daemon.control_socket = good.to_string();
            assert!(check(&c).errors.is_empty(), "{good}");
        }
    }

    #[test]
    fn lifetime_bounds() {
        let mut c = Config::demo(std::path::Path::new("s"));
        for (days, ok) in [(0, false), (1, true), (30, true), (31, false)] {
            c.relay.lifetime_days = days;
            c.relay.delay_warning_hours = 0;
            assert_eq!(check(&c).errors.is_empty(), ok, "{days}");
        }
    }

    #[test]
    fn syntax_helpers() {
        assert!(is_domain("mail.example.com") && is_domain("localhost"));
        assert!(!is_domain("a..b") && !is_domain("") && !is_domain(&"a".repeat(64)));
        assert!(is_host_port("[2001:db8::1]:25") && is_host_port("mx.lan:2525"));
        assert!(!is_host_port("mx.lan:0") && !is_host_port("mx.lan"));
        assert!(looks_like_cidr("10.0.0.1") && looks_like_cidr("::/0"));
        assert!(!looks_like_cidr("10.0.0.0/33") && !looks_like_cidr("10.0.0.0/x"));
    }

    #[test]
    fn warnings_do_not_fail() {
        let mut c = Config::default();
        c.smtp.max_message_size = c.spool.max_bytes + 1;
        c.spool.path = "/var/lib/mailbag/spool.img".into();
        let r = check(&c);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(keys(&r.warnings).contains(&"smtp.max-message-size"));
        assert!(keys(&r.warnings).contains(&"policy.domains"));
        assert!(
            keys(&r.warnings).contains(&"spool.path"),
            "/var/lib is tmpfs on OpenWrt"
        );
        // The default path is on flash (no warning).
        let r = check(&Config::default());
        assert!(
            !keys(&r.warnings).contains(&"spool.path"),
            "{:?}",
            r.warnings
        );
    }
}
