//! The fake backend's settings: the form schema, validation and a TOML file store.
//!
//! The schema mirrors the daemon's config model (`[smtp]`, `[policy]`, `[relay]`, `[spool]`,
//! `[firewall]`, kebab-case keys) so the file written here is a `mailbag` TOML config. The
//! checks follow what `mailbag check-config` enforces; the real backend calls that instead.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::backend::{FieldError, FieldKind, SettingField, SettingsValues};

/// One field of the schema.
struct Spec {
    key: &'static str,
    section: &'static str,
    label: &'static str,
    help: &'static str,
    kind: Kind,
    default: &'static str,
    /// Only takes effect after a restart; mirrors the daemon's `reload::needs_restart`
    /// (a firmware test compares the two through [`restart_needed`]).
    restart: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number(u64, u64),
    List,
    Ports,
    Bool,
    Select(&'static [&'static str]),
}

const ROLES: &[&str] = &["edge", "silo"];
const MODES: &[&str] = &["walled-garden", "open-when-primary-down", "off"];

#[rustfmt::skip]
const SCHEMA: &[Spec] = &[
    Spec { key: "role", section: "General", label: "Role", help: "edge: office router; silo: provider's secondary MX", kind: Kind::Select(ROLES), default: "edge", restart: true },
    Spec { key: "smtp.hostname", section: "General", label: "Host name", help: "Used in the greeting and Received headers", kind: Kind::Text, default: "mailbag.localdomain", restart: true },
    Spec { key: "policy.domains", section: "Domains", label: "Accepted domains", help: "One per line; mail for other domains is refused", kind: Kind::List, default: "", restart: false },
    Spec { key: "policy.recipients", section: "Domains", label: "Recipients", help: "One address per line; empty accepts any recipient of the domains", kind: Kind::List, default: "", restart: false },
    Spec { key: "relay.next-hops", section: "Delivery", label: "Next hops", help: "host:port, optionally with a preference: 10 mail.lan:25", kind: Kind::List, default: "", restart: false },
    Spec { key: "relay.routes", section: "Delivery", label: "Routes", help: "DOMAIN = [preference ]host[:port], ... or DOMAIN = mx, one per line; .domain covers subdomains; other domains use the next hops", kind: Kind::List, default: "", restart: false },
    Spec { key: "relay.upstream-silo", section: "Delivery", label: "Upstream silos", help: "host:port per line, in MX order (silo 1, then silo 2); each gets ETRN when the WAN returns (edge)", kind: Kind::List, default: "", restart: true },
    Spec { key: "relay.retry", section: "Delivery", label: "Retry schedule", help: "e.g. 15m for 2h, then 30m", kind: Kind::Text, default: "15m for 2h, then 30m", restart: false },
    Spec { key: "relay.lifetime-days", section: "Delivery", label: "Lifetime (days)", help: "Undeliverable mail is bounced after this long (1-30)", kind: Kind::Number(1, 30), default: "7", restart: false },
    Spec { key: "relay.delay-warning-hours", section: "Delivery", label: "Delay warning (hours)", help: "0 = never", kind: Kind::Number(0, 720), default: "4", restart: false },
    Spec { key: "relay.probe-interval", section: "Delivery", label: "Probe interval (s)", help: "How often the next hop is probed while mail is held", kind: Kind::Number(5, 3600), default: "30", restart: false },
    Spec { key: "relay.dns-servers", section: "Delivery", label: "DNS servers", help: "ip or ip:port ([::1]:53), one per line, for MX lookups; empty = /etc/resolv.conf", kind: Kind::List, default: "", restart: true },
    Spec { key: "smtp.listen", section: "Listeners", label: "SMTP listen", help: "One address:port per line", kind: Kind::List, default: "0.0.0.0:25\n[::]:25", restart: true },
    Spec { key: "smtp.max-sessions", section: "Listeners", label: "Max sessions", help: "More get 421", kind: Kind::Number(1, 1024), default: "32", restart: true },
    Spec { key: "smtp.starttls", section: "TLS", label: "Offer STARTTLS", help: "", kind: Kind::Bool, default: "1", restart: true },
    Spec { key: "smtp.tls-cert", section: "TLS", label: "Certificate", help: "PEM chain path; empty = self-signed", kind: Kind::Text, default: "", restart: true },
    Spec { key: "smtp.tls-key", section: "TLS", label: "Private key", help: "PEM key path", kind: Kind::Text, default: "", restart: true },
    Spec { key: "smtp.max-message-size", section: "Limits", label: "Max message size (bytes)", help: "Advertised with SIZE", kind: Kind::Number(1024, 1 << 31), default: "26214400", restart: false },
    Spec { key: "spool.max-messages", section: "Limits", label: "Max held messages", help: "", kind: Kind::Number(1, 1_000_000), default: "4096", restart: true },
    Spec { key: "spool.max-bytes", section: "Limits", label: "Spool quota (bytes)", help: "", kind: Kind::Number(65536, 1 << 40), default: "14680064", restart: true },
    Spec { key: "spool.max-bytes-per-domain", section: "Limits", label: "Quota per domain (bytes)", help: "0 = no per-domain limit", kind: Kind::Number(0, 1 << 40), default: "0", restart: true },
    Spec { key: "firewall.mode", section: "Firewall", label: "Mode", help: "Who may reach port 25 from the WAN", kind: Kind::Select(MODES), default: "walled-garden", restart: false },
    Spec { key: "firewall.silo", section: "Firewall", label: "Silo addresses", help: "CIDRs, one per line", kind: Kind::List, default: "", restart: false },
    Spec { key: "firewall.ports", section: "Firewall", label: "Guarded ports", help: "One per line", kind: Kind::Ports, default: "25", restart: false },
    Spec { key: "firewall.wan-zone", section: "Firewall", label: "WAN zone", help: "fw4 zone name", kind: Kind::Text, default: "wan", restart: false },
];

/// Whether a change of the form field `key` waits for a restart (`None`: no such field).
pub fn restart_needed(key: &str) -> Option<bool> {
    SCHEMA.iter().find(|s| s.key == key).map(|s| s.restart)
}

/// The form's field keys.
pub fn keys() -> impl Iterator<Item = &'static str> {
    SCHEMA.iter().map(|s| s.key)
}

/// Settings kept in memory and in a TOML file.
pub struct SettingsStore {
    path: PathBuf,
    values: SettingsValues,
}

impl SettingsStore {
    /// Opens the store at `path`, reading it if it exists (missing values fall back to
    /// defaults) or writing the defaults overridden by `initial` if it does not.
    pub fn open(path: &Path, initial: &[(&str, &str)]) -> io::Result<Self> {
        let mut store = Self {
            path: path.to_owned(),
            values: defaults(),
        };
        for (k, v) in initial {
            store.values.insert((*k).to_owned(), (*v).to_owned());
        }
        match fs::read_to_string(path) {
            Ok(text) => {
                let table: toml::Table = text
                    .parse()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))?;
                for spec in SCHEMA {
                    if let Some(v) = lookup(&table, spec.key) {
                        store.values.insert(spec.key.into(), from_toml(v));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => store.write(&store.values.clone())?,
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// The current value of `key` (empty if unknown).
    pub fn value(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    /// The form fields with current values.
    pub fn fields(&self) -> Vec<SettingField> {
        SCHEMA
            .iter()
            .map(|s| SettingField {
                key: s.key.into(),
                section: s.section.into(),
                label: s.label.into(),
                help: s.help.into(),
                kind: match s.kind {
                    Kind::Text => FieldKind::Text,
                    Kind::Number(..) => FieldKind::Number,
                    Kind::List | Kind::Ports => FieldKind::List,
                    Kind::Bool => FieldKind::Bool,
                    Kind::Select(opts) => {
                        FieldKind::Select(opts.iter().map(|o| (*o).to_owned()).collect())
                    }
                },
                value: self.value(s.key).into(),
            })
            .collect()
    }

    /// Validates and, if valid, writes; returns the keys whose change needs a restart.
    pub fn save(&mut self, submitted: &SettingsValues) -> Result<Vec<String>, SaveFailure> {
        let errors = validate(submitted);
        if !errors.is_empty() {
            return Err(SaveFailure::Invalid(errors));
        }
        let merged = self.merge(submitted);
        self.write(&merged).map_err(SaveFailure::Io)?;
        let restart = SCHEMA
            .iter()
            .filter(|s| s.restart && self.values.get(s.key) != merged.get(s.key))
            .map(|s| s.key.to_owned())
            .collect();
        self.values = merged;
        Ok(restart)
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Current values with the submitted ones (normalised) on top.
    fn merge(&self, submitted: &SettingsValues) -> SettingsValues {
        let mut merged = self.values.clone();
        for spec in SCHEMA {
            if let Some(v) = submitted.get(spec.key) {
                let v = match spec.kind {
                    Kind::List | Kind::Ports => lines(v).collect::<Vec<_>>().join("\n"),
                    _ => v.trim().to_owned(),
                };
                merged.insert(spec.key.into(), v);
            }
        }
        merged
    }

    /// Writes the file atomically (temp file, fsync, rename).
    fn write(&self, values: &SettingsValues) -> io::Result<()> {
        let mut root = toml::Table::new();
        for spec in SCHEMA {
            let v = values.get(spec.key).map_or("", String::as_str);
            let item = match spec.kind {
                Kind::Text if v.is_empty() => continue,
                Kind::Text | Kind::Select(_) => toml::Value::String(v.into()),
                Kind::Number(..) => toml::Value::Integer(v.parse::<i64>().unwrap_or(0)),
                Kind::Bool => toml::Value::Boolean(v == "1"),
                Kind::List => {
                    toml::Value::Array(lines(v).map(|l| toml::Value::String(l.into())).collect())
                }
                Kind::Ports => toml::Value::Array(
                    lines(v)
                        .filter_map(|l| l.parse::<i64>().ok())
                        .map(toml::Value::Integer)
                        .collect(),
                ),
            };
            match spec.key.split_once('.') {
                Some((section, name)) => {
                    let t = root
                        .entry(section)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = t {
                        t.insert(name.into(), item);
                    }
                }
                None => {
                    root.insert(spec.key.into(), item);
                }
            }
        }
        let text = toml::to_string(&root).map_err(|e| io::Error::other(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)
    }
}

/// Why saving failed.
pub enum SaveFailure {
    /// Validation errors; nothing written.
    Invalid(Vec<FieldError>),
    /// Writing failed.
    Io(io::Error),
}

fn defaults() -> SettingsValues {
    SCHEMA
        .iter()
        .map(|s| (s.key.to_owned(), s.default.to_owned()))
        .collect()
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    match key.split_once('.') {
        Some((section, name)) => table.get(section)?.as_table()?.get(name),
        None => table.get(key),
    }
}

fn from_toml(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => if *b { "1" } else { "0" }.into(),
        toml::Value::Array(a) => a.iter().map(from_toml).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

fn lines(v: &str) -> impl Iterator<Item = &str> {
    v.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Checks submitted values; unknown keys are errors too (a typo must not pass silently).
pub fn validate(values: &SettingsValues) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for key in values.keys() {
        if !SCHEMA.iter().any(|s| s.key == key) {
            errors.push(FieldError::new(key, "unknown setting"));
        }
    }
    for spec in SCHEMA {
        let Some(v) = values.get(spec.key) else {
            continue;
        };
        let v = v.trim();
        let err = match spec.kind {
            Kind::Number(lo, hi) => match v.parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) => None,
                _ => Some(format!("must be a whole number from {lo} to {hi}")),
            },
            Kind::Bool => (v != "0" && v != "1").then(|| "must be 0 or 1".to_owned()),
            Kind::Select(opts) => {
                (!opts.contains(&v)).then(|| format!("must be one of: {}", opts.join(", ")))
            }
            Kind::Ports => lines(v)
                .find(|l| l.parse::<u16>().map_or(true, |p| p == 0))
                .map(|l| format!("'{l}' is not a port (1-65535)")),
            Kind::Text | Kind::List => check_text(spec.key, v),
        };
        if let Some(message) = err {
            errors.push(FieldError::new(spec.key, message));
        }
    }
    cross_checks(values, &mut errors);
    errors
}

fn check_text(key: &str, v: &str) -> Option<String> {
    let bad_line = |ok: &dyn Fn(&str) -> bool, what: &str| {
        lines(v)
            .find(|l| !ok(l))
            .map(|l| format!("'{l}' is not {what}"))
    };
    match key {
        "smtp.hostname" => {
            (!is_hostname(v)).then(|| "must be a host name like mail.example.com".into())
        }
        "policy.domains" => bad_line(&is_hostname, "a domain name"),
        "policy.recipients" => bad_line(
            &|l| {
                l.split_once('@')
                    .is_some_and(|(u, d)| !u.is_empty() && is_hostname(d))
            },
            "an address",
        ),
        "relay.next-hops" => bad_line(
            &is_next_hop,
            "host:port (optionally preceded by a preference)",
        ),
        "relay.routes" => bad_line(&is_route, "DOMAIN = HOPS or DOMAIN = mx"),
        "relay.dns-servers" => bad_line(
            &|l| l.parse::<IpAddr>().is_ok() || l.parse::<SocketAddr>().is_ok(),
            "an IP address or ip:port",
        ),
        "relay.upstream-silo" => bad_line(&is_host_port, "host:port"),
        "relay.retry" => {
            (!is_retry_schedule(v)).then(|| "must look like: 15m for 2h, then 30m".into())
        }
        "smtp.listen" => bad_line(&|l| l.parse::<SocketAddr>().is_ok(), "an address:port"),
        "firewall.silo" => bad_line(&is_cidr, "an address or CIDR"),
        "firewall.wan-zone" => (v.is_empty()
            || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| "must be a zone name (letters, digits, _)".into()),
        "smtp.tls-cert" | "smtp.tls-key" => {
            (!v.is_empty() && !v.starts_with('/')).then(|| "must be an absolute path".into())
        }
        _ => None,
    }
}

fn cross_checks(values: &SettingsValues, errors: &mut Vec<FieldError>) {
    let get = |k: &str| values.get(k).map(|v| v.trim());
    if get("firewall.mode") == Some("walled-garden")
        && get("firewall.silo").is_some_and(|s| lines(s).next().is_none())
    {
        errors.push(FieldError::new(
            "firewall.silo",
            "walled-garden mode needs at least one silo address",
        ));
    }
    if let (Some(cert), Some(key)) = (get("smtp.tls-cert"), get("smtp.tls-key")) {
        if cert.is_empty() != key.is_empty() {
            errors.push(FieldError::new(
                "smtp.tls-key",
                "give both certificate and key, or neither",
            ));
        }
    }
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    s.rsplit_once(':')
        .is_some_and(|(h, p)| is_hostname(h) && p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// `office.test = 10 mail.lan:25, 20 backup.lan`, `.office.test = mx` (the daemon's
/// `Routes::parse` is the authority; this is the demo's approximation).
fn is_route(s: &str) -> bool {
    let Some((domain, hops)) = s.split_once('=') else {
        return false;
    };
    let domain = domain.trim();
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    let hops = hops.trim();
    is_hostname(domain)
        && (hops.eq_ignore_ascii_case("mx")
            || (!hops.is_empty()
                && hops.split(',').map(str::trim).all(|h| {
                    let host = h.split_once(' ').map_or(h, |(_, rest)| rest.trim());
                    is_next_hop(h) || is_hostname(host)
                })))
}

fn is_next_hop(s: &str) -> bool {
    match s.split_once(' ') {
        Some((pref, rest)) => pref.parse::<u16>().is_ok() && is_host_port(rest.trim()),
        None => is_host_port(s),
    }
}

fn is_cidr(s: &str) -> bool {
    let (addr, len) = s.split_once('/').unwrap_or((s, ""));
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_empty() || len.parse::<u8>().is_ok_and(|l| l <= max)
}

fn is_duration(s: &str) -> bool {
    let s = s.trim();
    let Some(unit) = s.chars().last() else {
        return false;
    };
    "smhd".contains(unit) && s[..s.len() - 1].parse::<u32>().is_ok_and(|n| n > 0)
}

/// `15m for 2h, then 30m`: steps of `<interval> [for <span>]`, all but the last with a span.
fn is_retry_schedule(s: &str) -> bool {
    let steps: Vec<&str> = s.split(',').map(str::trim).collect();
    steps.iter().enumerate().all(|(i, step)| {
        let step = step.strip_prefix("then ").unwrap_or(step);
        match step.split_once(" for ") {
            Some((every, span)) => is_duration(every) && is_duration(span),
            None => i + 1 == steps.len() && is_duration(step),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(&str, &str)]) -> SettingsValues {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn validation_names_the_field() {
        let e = validate(&vals(&[
            ("relay.lifetime-days", "99"),
            ("policy.domains", "example.com\nnot a domain"),
            ("relay.retry", "soon"),
            ("firewall.mode", "walled-garden"),
            ("firewall.silo", ""),
            ("bogus", "1"),
        ]));
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "bogus",
                "policy.domains",
                "relay.retry",
                "relay.lifetime-days",
                "firewall.silo"
            ]
        );
        assert_eq!(e[1].message, "'not a domain' is not a domain name");
    }

    #[test]
    fn good_values_pass() {
        let e = validate(&vals(&[
            ("relay.next-hops", "10 mail.lan:25\n192.168.1.10:25"),
            ("relay.retry", "5m for 1h, then 15m for 6h, then 1h"),
            ("firewall.silo", "203.0.113.0/28\n2001:db8::/48"),
            ("smtp.listen", "0.0.0.0:25\n[::]:25"),
            ("firewall.ports", "25\n587"),
        ]));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn saved_values_are_in_the_toml_file_and_reload() {
        let dir = std::env::temp_dir().join(format!("mailbag-web-settings-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mailbag.toml");
        let _ = fs::remove_file(&path);
        let mut store = SettingsStore::open(&path, &[]).unwrap();
        let restart = store
            .save(&vals(&[
                ("relay.lifetime-days", "12"),
                ("firewall.silo", " 203.0.113.0/28 \n\n"),
                ("smtp.listen", "0.0.0.0:2525"),
            ]))
            .ok()
            .unwrap();
        assert_eq!(restart, ["smtp.listen"]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("lifetime-days = 12"), "{text}");
        assert!(text.contains("silo = [\"203.0.113.0/28\"]"), "{text}");
        let again = SettingsStore::open(&path, &[]).unwrap();
        assert_eq!(again.value("relay.lifetime-days"), "12");
        assert_eq!(again.value("firewall.ports"), "25");
        fs::remove_dir_all(&dir).unwrap();
    }
}
