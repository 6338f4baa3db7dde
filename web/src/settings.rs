//! The settings schema: one table of the daemon's config keys (`section.option`, as in its
//! TOML file) for everything the settings page shows and everything that applies without
//! a restart. The daemon's page and reload (`mailbag::daemon::admin`) and this crate's demo
//! backend ([`crate::fake`]) all read it, so the form, its defaults and the "restart
//! needed" list cannot drift apart; the daemon's tests check the table against its config
//! model (defaults, ranges).
//!
//! A key not in the table needs a restart ([`needs_restart`]); a key ending in `.` stands
//! for its whole section.

/// When a changed value takes effect in the running daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    /// At once: new SMTP sessions and the next delivery attempt use it (or the daemon does
    /// not read it at all: the init script and the firewall commands do).
    Live,
    /// After a restart of the daemon.
    Restart,
}

/// How a form field is shown, converted and (by the demo) checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One line of text.
    Text,
    /// One line of text; empty means "not set" (the key is left out).
    OptText,
    /// A whole number the config model accepts from `min` to `max`.
    Number {
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// One entry per line.
    List,
    /// One port (1-65535) per line.
    Ports,
    /// `1` or `0`.
    Bool,
    /// One of the given words.
    Select(&'static [&'static str]),
}

/// A field of the settings form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The form's section heading.
    pub section: &'static str,
    /// The label.
    pub label: &'static str,
    /// The hint under the input.
    pub help: &'static str,
    /// How it is shown and converted.
    pub kind: Kind,
    /// The config model's default, as the form shows it (the demo starts from it).
    pub default: &'static str,
}

/// One key of the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// `section.option` (`relay.lifetime-days`), a top-level key (`role`), or `section.`
    /// for every key of a section.
    pub key: &'static str,
    /// When a change takes effect.
    pub applies: Applies,
    /// Its form field, when the page shows it.
    pub field: Option<Field>,
}

/// Roles.
pub const ROLES: &[&str] = &["edge", "silo"];
/// Firewall modes.
pub const MODES: &[&str] = &["walled-garden", "open-when-primary-down", "off"];
/// The config model's largest size (1 TiB).
const SIZE_MAX: u64 = 1 << 40;
const U32_MAX: u64 = u32::MAX as u64;
const U16_MAX: u64 = u16::MAX as u64;
/// The heading of Protection's finer settings.
const ADVANCED: &str = "Protection (advanced)";
/// What an unknown recipient gets while the next hop is down.
pub const WHILE_DOWN: &[&str] = &["accept", "defer"];
/// What an infected message gets.
pub const INFECTED: &[&str] = &["reject", "repackage"];
/// What a message gets while clamd cannot be reached.
pub const UNREACHABLE: &[&str] = &["defer", "accept"];

const fn field(
    key: &'static str,
    applies: Applies,
    section: &'static str,
    label: &'static str,
    help: &'static str,
    kind: Kind,
    default: &'static str,
) -> Setting {
    Setting {
        key,
        applies,
        field: Some(Field {
            section,
            label,
            help,
            kind,
            default,
        }),
    }
}

const fn live(key: &'static str) -> Setting {
    Setting {
        key,
        applies: Applies::Live,
        field: None,
    }
}

use Applies::{Live, Restart};

/// The schema: the form's fields in page order, then the keys that apply live without
/// being on the form.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    field("role", Restart, "General", "Role", "edge: office router; silo: provider's secondary MX", Kind::Select(ROLES), "edge"),
    field("smtp.hostname", Restart, "General", "Host name", "Used in the greeting and Received headers", Kind::Text, "mailbag.localdomain"),
    field("policy.domains", Live, "Domains", "Accepted domains", "One per line; mail for other domains is refused", Kind::List, ""),
    field("policy.recipients", Live, "Domains", "Recipients", "One address per line; empty accepts any recipient of the domains", Kind::List, ""),
    field("relay.next-hops", Live, "Delivery", "Next hops", "[preference ]host[:port], one per line; lowest preference first", Kind::List, ""),
    field("relay.routes", Live, "Delivery", "Routes", "DOMAIN = [preference ]host[:port], ... or DOMAIN = mx, one per line; .domain covers subdomains; other domains use the next hops", Kind::List, ""),
    field("relay.upstream-silo", Restart, "Delivery", "Upstream silos", "host:port per line, in MX order (silo 1, then silo 2); each gets ETRN when the WAN returns (edge)", Kind::List, ""),
    field("relay.retry", Live, "Delivery", "Retry schedule", "e.g. 15m for 2h, then 30m", Kind::Text, "15m for 2h, then 30m"),
    field("relay.lifetime-days", Live, "Delivery", "Lifetime (days)", "Undeliverable mail is bounced after this long (1-30)", Kind::Number { min: 1, max: 30 }, "7"),
    field("relay.delay-warning-hours", Live, "Delivery", "Delay warning (hours)", "0 = never", Kind::Number { min: 0, max: U32_MAX }, "4"),
    field("relay.probe-interval", Live, "Delivery", "Probe interval (s)", "How often the next hop is probed while mail is held", Kind::Number { min: 1, max: 86_400 }, "30"),
    field("relay.dns-servers", Restart, "Delivery", "DNS servers", "ip or ip:port ([::1]:53), one per line, for MX lookups; empty = /etc/resolv.conf", Kind::List, ""),
    field("smtp.listen", Restart, "Listeners", "SMTP listen", "One address:port per line", Kind::List, "0.0.0.0:25\n[::]:25"),
    field("smtp.max-sessions", Restart, "Listeners", "Max sessions", "More get 421", Kind::Number { min: 1, max: 4096 }, "32"),
    field("web.listen", Restart, "Listeners", "Admin page listen", "One address:port per line; empty turns this page off", Kind::List, ""),
    field("smtp.starttls", Restart, "TLS", "Offer STARTTLS", "", Kind::Bool, "1"),
    field("smtp.tls-cert", Restart, "TLS", "Certificate", "PEM chain path; empty = self-signed", Kind::OptText, ""),
    field("smtp.tls-key", Restart, "TLS", "Private key", "PEM key path", Kind::OptText, ""),
    field("smtp.max-message-size", Live, "Limits", "Max message size (bytes)", "Advertised with SIZE", Kind::Number { min: 1024, max: SIZE_MAX }, "26214400"),
    field("spool.max-messages", Restart, "Limits", "Max held messages", "", Kind::Number { min: 1, max: U32_MAX }, "4096"),
    field("spool.max-bytes", Restart, "Limits", "Spool quota (bytes)", "", Kind::Number { min: 1, max: SIZE_MAX }, "14680064"),
    field("spool.max-bytes-per-domain", Restart, "Limits", "Quota per domain (bytes)", "0 = no per-domain limit", Kind::Number { min: 0, max: SIZE_MAX }, "0"),
    field("policy.trusted", Live, "Protection", "Trusted networks", "CIDRs no check applies to (silo, LAN), one per line", Kind::List, ""),
    field("policy.dnsbl", Live, "Protection", "DNS blocklists", "Zones asked at connect; a listed client gets 554", Kind::List, ""),
    field("policy.dnsbl-score", Live, "Protection", "Scoring blocklists", "Zones that only add to the spam score", Kind::List, ""),
    field("policy.verify-recipients", Live, "Protection", "Verify recipients at the next hop", "Unknown recipients get 550; answers are cached on flash", Kind::Bool, "0"),
    field("policy.verify-unknown-while-down", Live, "Protection", "Unknown recipient while the next hop is down", "accept, or defer with 450", Kind::Select(WHILE_DOWN), "accept"),
    field("policy.block-extensions", Live, "Protection", "Blocked attachment extensions", "One per line, e.g. scr; a match gets 554", Kind::List, "pif\nscr"),
    field("policy.spam-flag-score", Live, "Protection", "Spam flag score", "Points for X-Spam-Flag: YES; 0 = no scoring", Kind::Number { min: 0, max: U16_MAX }, "5"),
    field("policy.spam-reject-score", Live, "Protection", "Spam reject score", "Points for 554; 0 = never", Kind::Number { min: 0, max: U16_MAX }, "0"),
    field("policy.guess-threshold", Live, "Protection", "Guessed recipients before cool-down", "Refused recipients per client in the window; 0 = off", Kind::Number { min: 0, max: U32_MAX }, "20"),
    field("policy.sessions-per-client", Live, "Protection", "Sessions per client", "Per IPv4 address or IPv6 /64; more get 421", Kind::Number { min: 1, max: U32_MAX }, "8"),
    field("policy.domain-rules", Live, "Protection", "Per-domain rules", "DOMAIN: accept-when=always|next-hop-down max-message-size=50M max-bytes=500M verify=on|off attachments=on|off scan=on|off spam=on|off", Kind::List, ""),
    field("scan.clamd", Live, "Protection", "clamd", "host:port or Unix socket path; empty = no virus scanning", Kind::Text, ""),
    field("scan.infected", Live, "Protection", "Infected messages", "reject (554) or repackage (a notice with the original attached)", Kind::Select(INFECTED), "reject"),
    field("scan.unreachable", Live, "Protection", "clamd unreachable", "defer (451) or accept unscanned", Kind::Select(UNREACHABLE), "defer"),
    // Protection's finer settings (advanced): the defaults suit most sites.
    field("policy.dnsbl-timeout", Live, ADVANCED, "Blocklist timeout (s)", "All blocklist lookups of a connection together; a client is let through when it passes (1-60)", Kind::Number { min: 1, max: 60 }, "5"),
    field("policy.verify-positive-days", Live, ADVANCED, "Keep \"exists\" answers (days)", "Recipient verification cache (1-365)", Kind::Number { min: 1, max: 365 }, "30"),
    field("policy.verify-negative-minutes", Live, ADVANCED, "Keep \"unknown\" answers (minutes)", "Recipient verification cache (1-10080, a week)", Kind::Number { min: 1, max: 10_080 }, "60"),
    field("policy.verify-cache", Restart, ADVANCED, "Verification cache file", "Empty = next to the spool image (<spool>.verify), or verify.cache in the state directory for a /dev/ spool", Kind::OptText, ""),
    field("policy.guess-window", Live, ADVANCED, "Guessing window (s)", "Refused recipients are counted over this long (at least 1 while guessing is checked)", Kind::Number { min: 1, max: 86_400 }, "600"),
    field("policy.guess-cooldown", Live, ADVANCED, "Guessing cool-down (s)", "A guessing client gets 450 for every RCPT this long (at least 1 while guessing is checked)", Kind::Number { min: 1, max: 86_400 }, "600"),
    field("policy.guess-delay", Live, ADVANCED, "Cool-down delay (s)", "Each RCPT of a cooling-down client waits this long before its 450 (0-60)", Kind::Number { min: 0, max: 60 }, "5"),
    field("policy.stress-idle-timeout", Live, ADVANCED, "Idle timeout under stress (s)", "Before MAIL, while three quarters of the sessions are taken; 0 = no stress mode", Kind::Number { min: 0, max: 3_600 }, "10"),
    field("scan.timeout", Live, ADVANCED, "clamd timeout (s)", "How long clamd may take for one message (1-600)", Kind::Number { min: 1, max: 600 }, "30"),
    field("firewall.mode", Live, "Firewall", "Mode", "Who may reach port 25 from the WAN", Kind::Select(MODES), "walled-garden"),
    field("firewall.silo", Live, "Firewall", "Silo addresses", "CIDRs, one per line", Kind::List, ""),
    field("firewall.silo-dns", Live, "Firewall", "Silo DNS name", "Resolved for more silo addresses; empty = none", Kind::OptText, ""),
    field("firewall.ports", Live, "Firewall", "Guarded ports", "One per line", Kind::Ports, "25"),
    field("firewall.wan-zone", Live, "Firewall", "WAN zone", "fw4 zone name", Kind::Text, "wan"),
    // Read by the init script and the firewall commands, not by the running daemon: a
    // restart would change nothing for them either.
    live("enabled"),
    live("firewall."),
    // The sessions' policy, limits and timeouts: new sessions take them.
    live("policy."),
    live("scan."),
    live("smtp.max-recipients"),
    live("smtp.max-bad-commands"),
    live("smtp.idle-timeout-secs"),
    live("smtp.session-timeout-secs"),
    // Delivery: the next attempt takes them.
    live("relay.tls-policy"),
    live("relay.max-per-hop"),
];

/// The schema's entry for `key`: its own, else its section's (`section.`).
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key).or_else(|| {
        SETTINGS
            .iter()
            .find(|s| s.key.ends_with('.') && key.starts_with(s.key))
    })
}

/// Whether a change of `key` (`smtp.listen`, `relay.routes`) only takes effect after a
/// restart of the daemon.
pub fn needs_restart(key: &str) -> bool {
    find(key).is_none_or(|s| s.applies == Applies::Restart)
}

/// The form's fields, in page order.
pub fn fields() -> impl Iterator<Item = (&'static str, &'static Field)> {
    SETTINGS
        .iter()
        .filter_map(|s| s.field.as_ref().map(|f| (s.key, f)))
}

/// The form field `key`, if the page shows it.
pub fn field_of(key: &str) -> Option<&'static Field> {
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .and_then(|s| s.field.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_takes_its_own_entry_else_its_sections_else_needs_a_restart() {
        assert!(!needs_restart("relay.routes"));
        assert!(!needs_restart("policy.anything-new"), "the section's entry");
        assert!(!needs_restart("firewall.silo-dns-interval"));
        assert!(needs_restart("smtp.listen"));
        assert!(needs_restart("daemon.control-socket"), "not in the table");
        assert!(needs_restart("policy"), "a section name is not its keys");
    }

    #[test]
    fn every_key_is_listed_once_and_every_field_has_a_label() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[i + 1..].iter().all(|t| t.key != s.key),
                "{} twice",
                s.key
            );
        }
        assert!(fields().all(|(_, f)| !f.label.is_empty() && !f.section.is_empty()));
        assert!(field_of("web.listen").is_some() && field_of("firewall.silo-dns").is_some());
    }
}
