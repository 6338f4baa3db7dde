//! The fake backend's settings: the shared schema ([`crate::settings`]), the demo's
//! validation and a TOML file store.
//!
//! The file written here is a `mailbag` TOML config (`[smtp]`, `[policy]`, `[relay]`,
//! `[spool]`, `[firewall]`, `[web]`, kebab-case keys). The checks follow what `mailbag
//! check-config` enforces; the real backend calls that instead. Which saved changes need a
//! restart comes from the schema, as it does for the daemon.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::backend::{FieldError, FieldKind, SettingField, SettingsValues};
use crate::settings::{self, Kind};

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
                for (key, _) in settings::fields() {
                    if let Some(v) = lookup(&table, key) {
                        store.values.insert(key.into(), from_toml(v));
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
        settings::fields()
            .map(|(key, f)| SettingField {
                key: key.into(),
                section: f.section.into(),
                label: f.label.into(),
                help: f.help.into(),
                kind: match f.kind {
                    Kind::Text | Kind::OptText => FieldKind::Text,
                    Kind::Number { .. } => FieldKind::Number,
                    Kind::List | Kind::Ports => FieldKind::List,
                    Kind::Bool => FieldKind::Bool,
                    Kind::Select(opts) => {
                        FieldKind::Select(opts.iter().map(|o| (*o).to_owned()).collect())
                    }
                },
                value: self.value(key).into(),
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
        let restart = settings::fields()
            .filter(|(key, _)| {
                settings::needs_restart(key) && self.values.get(*key) != merged.get(*key)
            })
            .map(|(key, _)| key.to_owned())
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
        for (key, f) in settings::fields() {
            if let Some(v) = submitted.get(key) {
                let v = match f.kind {
                    Kind::List | Kind::Ports => lines(v).collect::<Vec<_>>().join("\n"),
                    _ => v.trim().to_owned(),
                };
                merged.insert(key.into(), v);
            }
        }
        merged
    }

    /// Writes the file atomically (temp file, fsync, rename).
    fn write(&self, values: &SettingsValues) -> io::Result<()> {
        let mut root = toml::Table::new();
        for (key, f) in settings::fields() {
            let v = values.get(key).map_or("", String::as_str);
            let item = match f.kind {
                Kind::Text | Kind::OptText if v.is_empty() => continue,
                Kind::Text | Kind::OptText | Kind::Select(_) => toml::Value::String(v.into()),
                Kind::Number { .. } => toml::Value::Integer(v.parse::<i64>().unwrap_or(0)),
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
            match key.split_once('.') {
                Some((section, name)) => {
                    let t = root
                        .entry(section)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = t {
                        t.insert(name.into(), item);
                    }
                }
                None => {
                    root.insert(key.into(), item);
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
    settings::fields()
        .map(|(key, f)| (key.to_owned(), f.default.to_owned()))
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
        if settings::field_of(key).is_none() {
            errors.push(FieldError::new(key, "unknown setting"));
        }
    }
    for (key, f) in settings::fields() {
        let Some(v) = values.get(key) else {
            continue;
        };
        let v = v.trim();
        let err = match f.kind {
            Kind::Number { min, max } => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => None,
                _ => Some(format!("must be a whole number from {min} to {max}")),
            },
            Kind::Bool => (v != "0" && v != "1").then(|| "must be 0 or 1".to_owned()),
            Kind::Select(opts) => {
                (!opts.contains(&v)).then(|| format!("must be one of: {}", opts.join(", ")))
            }
            Kind::Ports => lines(v)
                .find(|l| l.parse::<u16>().map_or(true, |p| p == 0))
                .map(|l| format!("'{l}' is not a port (1-65535)")),
            Kind::Text | Kind::OptText | Kind::List => check_text(key, v),
        };
        if let Some(message) = err {
            errors.push(FieldError::new(key, message));
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
        "smtp.listen" | "web.listen" => {
            bad_line(&|l| l.parse::<SocketAddr>().is_ok(), "an address:port")
        }
        "firewall.silo-dns" => {
            (!v.is_empty() && !is_hostname(v)).then(|| "must be a host name".into())
        }
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
