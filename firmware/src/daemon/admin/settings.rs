//! The admin page's settings form over the daemon's one config model.
//!
//! Each form field is a dotted key of the model (`relay.lifetime-days`). Values are read
//! from and written into the model's TOML tree, then parsed back into [`Config`] and
//! checked by [`Config::validate`] — the same checks as `mailbag check-config`. Its
//! key-named issues (`smtp.listen[1]`) become errors under the matching field. Which
//! changes apply without a restart is [`super::reload::needs_restart`]'s to say.

use mailbag_web::backend::{FieldError, FieldKind, SettingField, SettingsValues};
use toml::Value;

use super::config_tree::{lookup, set, tree};
use crate::config::Config;

/// How a field is shown and converted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Empty means "not set" (the key is removed).
    OptText,
    Number,
    List,
    Ports,
    Bool,
    Select(&'static [&'static str]),
}

/// One form field.
struct Spec {
    key: &'static str,
    section: &'static str,
    label: &'static str,
    help: &'static str,
    kind: Kind,
}

const ROLES: &[&str] = &["edge", "silo"];
const MODES: &[&str] = &["walled-garden", "open-when-primary-down", "off"];
const WHILE_DOWN: &[&str] = &["accept", "defer"];
const INFECTED: &[&str] = &["reject", "repackage"];
const UNREACHABLE: &[&str] = &["defer", "accept"];

#[rustfmt::skip]
const SCHEMA: &[Spec] = &[
    Spec { key: "role", section: "General", label: "Role", help: "edge: office router; silo: provider's secondary MX", kind: Kind::Select(ROLES) },
    Spec { key: "smtp.hostname", section: "General", label: "Host name", help: "Used in the greeting and Received headers", kind: Kind::Text },
    Spec { key: "policy.domains", section: "Domains", label: "Accepted domains", help: "One per line; mail for other domains is refused", kind: Kind::List },
    Spec { key: "policy.recipients", section: "Domains", label: "Recipients", help: "One address per line; empty accepts any recipient of the domains", kind: Kind::List },
    Spec { key: "relay.next-hops", section: "Delivery", label: "Next hops", help: "[preference ]host[:port], one per line; lowest preference first", kind: Kind::List },
    Spec { key: "relay.routes", section: "Delivery", label: "Routes", help: "DOMAIN = [preference ]host[:port], ... or DOMAIN = mx, one per line; .domain covers subdomains; other domains use the next hops", kind: Kind::List },
    Spec { key: "relay.upstream-silo", section: "Delivery", label: "Upstream silo", help: "host:port that gets ETRN when the WAN returns (edge)", kind: Kind::OptText },
    Spec { key: "relay.retry", section: "Delivery", label: "Retry schedule", help: "e.g. 15m for 2h, then 30m", kind: Kind::Text },
    Spec { key: "relay.lifetime-days", section: "Delivery", label: "Lifetime (days)", help: "Undeliverable mail is bounced after this long (1-30)", kind: Kind::Number },
    Spec { key: "relay.delay-warning-hours", section: "Delivery", label: "Delay warning (hours)", help: "0 = never", kind: Kind::Number },
    Spec { key: "relay.probe-interval", section: "Delivery", label: "Probe interval (s)", help: "How often the next hop is probed while mail is held", kind: Kind::Number },
    Spec { key: "relay.dns-servers", section: "Delivery", label: "DNS servers", help: "ip or ip:port ([::1]:53), one per line, for MX lookups; empty = /etc/resolv.conf", kind: Kind::List },
    Spec { key: "smtp.listen", section: "Listeners", label: "SMTP listen", help: "One address:port per line", kind: Kind::List },
    Spec { key: "smtp.max-sessions", section: "Listeners", label: "Max sessions", help: "More get 421", kind: Kind::Number },
    Spec { key: "web.listen", section: "Listeners", label: "Admin page listen", help: "One address:port per line; empty turns this page off", kind: Kind::List },
    Spec { key: "smtp.starttls", section: "TLS", label: "Offer STARTTLS", help: "", kind: Kind::Bool },
    Spec { key: "smtp.tls-cert", section: "TLS", label: "Certificate", help: "PEM chain path; empty = self-signed", kind: Kind::OptText },
    Spec { key: "smtp.tls-key", section: "TLS", label: "Private key", help: "PEM key path", kind: Kind::OptText },
    Spec { key: "smtp.max-message-size", section: "Limits", label: "Max message size (bytes)", help: "Advertised with SIZE", kind: Kind::Number },
    Spec { key: "spool.max-messages", section: "Limits", label: "Max held messages", help: "", kind: Kind::Number },
    Spec { key: "spool.max-bytes", section: "Limits", label: "Spool quota (bytes)", help: "", kind: Kind::Number },
    Spec { key: "spool.max-bytes-per-domain", section: "Limits", label: "Quota per domain (bytes)", help: "0 = no per-domain limit", kind: Kind::Number },
    Spec { key: "policy.trusted", section: "Protection", label: "Trusted networks", help: "CIDRs no check applies to (silo, LAN), one per line", kind: Kind::List },
    Spec { key: "policy.dnsbl", section: "Protection", label: "DNS blocklists", help: "Zones asked at connect; a listed client gets 554", kind: Kind::List },
    Spec { key: "policy.dnsbl-score", section: "Protection", label: "Scoring blocklists", help: "Zones that only add to the spam score", kind: Kind::List },
    Spec { key: "policy.verify-recipients", section: "Protection", label: "Verify recipients at the next hop", help: "Unknown recipients get 550; answers are cached on flash", kind: Kind::Bool },
    Spec { key: "policy.verify-unknown-while-down", section: "Protection", label: "Unknown recipient while the next hop is down", help: "accept, or defer with 450", kind: Kind::Select(WHILE_DOWN) },
    Spec { key: "policy.block-extensions", section: "Protection", label: "Blocked attachment extensions", help: "One per line, e.g. scr; a match gets 554", kind: Kind::List },
    Spec { key: "policy.spam-flag-score", section: "Protection", label: "Spam flag score", help: "Points for X-Spam-Flag: YES; 0 = no scoring", kind: Kind::Number },
    Spec { key: "policy.spam-reject-score", section: "Protection", label: "Spam reject score", help: "Points for 554; 0 = never", kind: Kind::Number },
    Spec { key: "policy.guess-threshold", section: "Protection", label: "Guessed recipients before cool-down", help: "Refused recipients per client in the window; 0 = off", kind: Kind::Number },
    Spec { key: "policy.sessions-per-client", section: "Protection", label: "Sessions per client", help: "Per IPv4 address or IPv6 /64; more get 421", kind: Kind::Number },
    Spec { key: "policy.domain-rules", section: "Protection", label: "Per-domain rules", help: "DOMAIN: accept-when=always|next-hop-down max-message-size=50M max-bytes=500M verify=on|off attachments=on|off scan=on|off spam=on|off", kind: Kind::List },
    Spec { key: "scan.clamd", section: "Protection", label: "clamd", help: "ip:port or Unix socket path; empty = no virus scanning", kind: Kind::Text },
    Spec { key: "scan.infected", section: "Protection", label: "Infected messages", help: "reject (554) or repackage (a notice with the original attached)", kind: Kind::Select(INFECTED) },
    Spec { key: "scan.unreachable", section: "Protection", label: "clamd unreachable", help: "defer (451) or accept unscanned", kind: Kind::Select(UNREACHABLE) },
    Spec { key: "firewall.mode", section: "Firewall", label: "Mode", help: "Who may reach port 25 from the WAN", kind: Kind::Select(MODES) },
    Spec { key: "firewall.silo", section: "Firewall", label: "Silo addresses", help: "CIDRs, one per line", kind: Kind::List },
    Spec { key: "firewall.silo-dns", section: "Firewall", label: "Silo DNS name", help: "Resolved for more silo addresses; empty = none", kind: Kind::OptText },
    Spec { key: "firewall.ports", section: "Firewall", label: "Guarded ports", help: "One per line", kind: Kind::Ports },
    Spec { key: "firewall.wan-zone", section: "Firewall", label: "WAN zone", help: "fw4 zone name", kind: Kind::Text },
];

/// The form: every field with its value in `config`.
pub fn fields(config: &Config) -> Vec<SettingField> {
    let tree = tree(config);
    SCHEMA
        .iter()
        .map(|s| SettingField {
            key: s.key.into(),
            section: s.section.into(),
            label: s.label.into(),
            help: s.help.into(),
            kind: match s.kind {
                Kind::Text | Kind::OptText => FieldKind::Text,
                Kind::Number => FieldKind::Number,
                Kind::List | Kind::Ports => FieldKind::List,
                Kind::Bool => FieldKind::Bool,
                Kind::Select(o) => FieldKind::Select(o.iter().map(|v| (*v).to_owned()).collect()),
            },
            value: lookup(&tree, s.key).map(show).unwrap_or_default(),
        })
        .collect()
}

/// `config` with the submitted values applied, if it parses and validates; otherwise every
/// error, each under its field.
pub fn merge(config: &Config, values: &SettingsValues) -> Result<Config, Vec<FieldError>> {
    let mut tree = tree(config);
    let mut errors = Vec::new();
    for (key, text) in values {
        let Some(spec) = SCHEMA.iter().find(|s| s.key == key) else {
            errors.push(FieldError::new(key, "unknown setting"));
            continue;
        };
        match convert(spec.kind, text) {
            Ok(v) => set(&mut tree, spec.key, v),
            Err(msg) => errors.push(FieldError::new(spec.key, msg)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let merged: Config = Value::Table(tree)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let msg = e.message().to_owned();
            let field = SCHEMA
                .iter()
                .find(|s| msg.contains(s.key.rsplit('.').next().unwrap_or(s.key)))
                .map_or("role", |s| s.key);
            vec![FieldError::new(field, msg)]
        })?;
    let report = merged.validate();
    if report.errors.is_empty() {
        Ok(merged)
    } else {
        Err(report
            .errors
            .iter()
            .map(|i| FieldError::new(&field_of(&i.key), i.msg.clone()))
            .collect())
    }
}

/// Keys whose value differs between `a` and `b`.
pub fn changed(a: &Config, b: &Config) -> Vec<String> {
    let (ta, tb) = (tree(a), tree(b));
    SCHEMA
        .iter()
        .filter(|s| lookup(&ta, s.key) != lookup(&tb, s.key))
        .map(|s| s.key.to_owned())
        .collect()
}

/// The form field an issue key (`smtp.listen[1]`, `relay.lifetime-days`) belongs to.
fn field_of(issue_key: &str) -> String {
    let base = issue_key.split('[').next().unwrap_or(issue_key);
    SCHEMA
        .iter()
        .find(|s| s.key == base)
        .or_else(|| SCHEMA.iter().find(|s| base.starts_with(s.key)))
        .map_or_else(|| base.to_owned(), |s| s.key.to_owned())
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Boolean(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

/// Form text → TOML value (`None`: remove the key).
fn convert(kind: Kind, text: &str) -> Result<Option<Value>, String> {
    let text = text.trim();
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    Ok(Some(match kind {
        Kind::Text => Value::String(text.to_owned()),
        Kind::OptText if text.is_empty() => return Ok(None),
        Kind::OptText => Value::String(text.to_owned()),
        Kind::Number => {
            let n: u64 = text
                .parse()
                .map_err(|_| format!("'{text}' is not a whole number"))?;
            Value::Integer(i64::try_from(n).map_err(|_| format!("{n} is too large"))?)
        }
        Kind::List => Value::Array(lines().map(|l| Value::String(l.to_owned())).collect()),
        Kind::Ports => Value::Array(
            lines()
                .map(|l| match l.parse::<u16>() {
                    Ok(p) if p > 0 => Ok(Value::Integer(i64::from(p))),
                    _ => Err(format!("'{l}' is not a port (1-65535)")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Kind::Bool => Value::Boolean(matches!(text, "1" | "on" | "true" | "yes")),
        Kind::Select(options) if options.contains(&text) => Value::String(text.to_owned()),
        Kind::Select(options) => {
            return Err(format!("choose one of: {}", options.join(", ")));
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn values(pairs: &[(&str, &str)]) -> SettingsValues {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_shows_the_models_values() {
        let c = Config::demo(Path::new("/s"));
        let f = fields(&c);
        let v = |k: &str| f.iter().find(|x| x.key == k).map(|x| x.value.clone());
        assert_eq!(v("policy.domains").as_deref(), Some("example.test"));
        assert_eq!(v("role").as_deref(), Some("edge"));
        assert_eq!(v("firewall.mode").as_deref(), Some("off"));
        assert_eq!(v("smtp.tls-cert").as_deref(), Some(""));
        assert_eq!(v("firewall.ports").as_deref(), Some("25"));
    }

    #[test]
    fn merging_changes_the_model_and_reports_what_changed() {
        let c = Config::demo(Path::new("/s"));
        let m = merge(
            &c,
            &values(&[
                ("policy.domains", "example.test\nother.test\n"),
                ("relay.lifetime-days", "5"),
                ("relay.upstream-silo", "silo.example.net:25"),
            ]),
        )
        .unwrap();
        assert_eq!(m.policy.domains, ["example.test", "other.test"]);
        assert_eq!(m.relay.lifetime_days, 5);
        assert_eq!(
            m.relay.upstream_silo.as_deref(),
            Some("silo.example.net:25")
        );
        assert_eq!(
            changed(&c, &m),
            [
                "policy.domains",
                "relay.upstream-silo",
                "relay.lifetime-days"
            ]
        );
    }

    #[test]
    fn validation_errors_land_under_their_field() {
        let c = Config::demo(Path::new("/s"));
        let e = merge(&c, &values(&[("relay.lifetime-days", "99")])).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].field, "relay.lifetime-days");
        let e = merge(
            &c,
            &values(&[("smtp.listen", "127.0.0.1:25\nnot-an-address")]),
        )
        .unwrap_err();
        assert_eq!(e[0].field, "smtp.listen");
        assert!(e[0].message.contains("not-an-address"), "{e:?}");
        let e = merge(&c, &values(&[("smtp.max-sessions", "many")])).unwrap_err();
        assert_eq!(e[0].field, "smtp.max-sessions");
        let e = merge(&c, &values(&[("firewall.ports", "25\n70000")])).unwrap_err();
        assert_eq!(e[0].field, "firewall.ports");
    }

    #[test]
    fn protection_settings_are_checked_inline() {
        let c = Config::demo(Path::new("/s"));
        let e = merge(
            &c,
            &values(&[
                ("policy.domain-rules", "example.test: accept-when=sometimes"),
                ("scan.clamd", "clamd.lan:3310"),
                ("policy.trusted", "10.0.0.0/8\n10.1.2.3/40"),
                ("policy.block-extensions", "scr\n*.exe"),
            ]),
        )
        .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "policy.domain-rules",
            "scan.clamd",
            "policy.trusted",
            "policy.block-extensions",
        ] {
            assert!(fields.contains(&f), "{f} in {e:?}");
        }
        let m = merge(
            &c,
            &values(&[
                (
                    "policy.domain-rules",
                    "example.test: accept-when=next-hop-down max-bytes=500M",
                ),
                ("scan.clamd", "127.0.0.1:3310"),
                ("scan.infected", "repackage"),
                ("policy.verify-recipients", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(m.scan.infected, "repackage");
        assert!(m.policy.verify_recipients);
        assert_eq!(m.policy.domain_rules.len(), 1);
    }

    #[test]
    fn routes_are_checked_by_the_route_parser() {
        let c = Config::demo(Path::new("/s"));
        let m = merge(
            &c,
            &values(&[(
                "relay.routes",
                "office.test = 10 mail.lan:25, 20 backup.lan\ncustomer.test = mx",
            )]),
        )
        .unwrap();
        assert_eq!(m.relay.routes.len(), 2);
        let f = fields(&m);
        let shown = f.iter().find(|x| x.key == "relay.routes").unwrap();
        assert!(
            shown.value.contains("customer.test = mx"),
            "{}",
            shown.value
        );
        let e = merge(
            &c,
            &values(&[("relay.routes", "office.test = mx\nno equals sign")]),
        )
        .unwrap_err();
        assert_eq!(e[0].field, "relay.routes");
        assert!(e[0].message.contains("no equals sign"), "{e:?}");
        let e = merge(&c, &values(&[("relay.dns-servers", "not-an-ip")])).unwrap_err();
        assert_eq!(e[0].field, "relay.dns-servers");
    }
}
