//! The admin page's settings form over the daemon's one config model.
//!
//! The fields are the shared schema's ([`mailbag_web::settings`], which the demo's page
//! uses too); each is a dotted key of the model (`relay.lifetime-days`). Values are read
//! from and written into the model's TOML tree, then parsed back into [`Config`] and
//! checked by [`Config::validate`] — the same checks as `mailbag check-config`. Its
//! key-named issues (`smtp.listen[1]`) become errors under the matching field. Which
//! changes apply without a restart is the schema's to say
//! ([`mailbag_web::settings::needs_restart`]).

use mailbag_web::backend::{FieldError, FieldKind, SettingField, SettingsValues};
use mailbag_web::settings::{self as schema, Kind};
use toml::Value;

use super::config_tree::{lookup, set, tree};
use crate::config::Config;

/// The form: every field with its value in `config`.
pub fn fields(config: &Config) -> Vec<SettingField> {
    let tree = tree(config);
    schema::fields()
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
                Kind::Select(o) => FieldKind::Select(o.iter().map(|v| (*v).to_owned()).collect()),
            },
            value: lookup(&tree, key).map(show).unwrap_or_default(),
        })
        .collect()
}

/// `config` with the submitted values applied, if it parses and validates; otherwise every
/// error, each under its field.
pub fn merge(config: &Config, values: &SettingsValues) -> Result<Config, Vec<FieldError>> {
    let mut tree = tree(config);
    let mut errors = Vec::new();
    for (key, text) in values {
        let Some(field) = schema::field_of(key) else {
            errors.push(FieldError::new(key, "unknown setting"));
            continue;
        };
        match convert(field.kind, text) {
            Ok(v) => set(&mut tree, key, v),
            Err(msg) => errors.push(FieldError::new(key, msg)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let merged: Config = Value::Table(tree)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let msg = e.message().to_owned();
            let field = schema::fields()
                .map(|(key, _)| key)
                .find(|key| msg.contains(key.rsplit('.').next().unwrap_or(key)))
                .unwrap_or("role");
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
    schema::fields()
        .filter(|(key, _)| lookup(&ta, key) != lookup(&tb, key))
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// The form field an issue key (`smtp.listen[1]`, `relay.lifetime-days`) belongs to.
fn field_of(issue_key: &str) -> String {
    let base = issue_key.split('[').next().unwrap_or(issue_key);
    let keys = || schema::fields().map(|(key, _)| key);
    keys()
        .find(|key| *key == base)
        .or_else(|| keys().find(|key| base.starts_with(key)))
        .map_or_else(|| base.to_owned(), str::to_owned)
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
        Kind::Number { .. } => {
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
                (
                    "relay.upstream-silo",
                    "silo1.example.net:25\nsilo2.example.net:25",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(m.policy.domains, ["example.test", "other.test"]);
        assert_eq!(m.relay.lifetime_days, 5);
        assert_eq!(
            m.relay.upstream_silo,
            ["silo1.example.net:25", "silo2.example.net:25"]
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

    /// The shared schema against the model: each field's default is the model's, and
    /// each number's range is what validation accepts (the demo checks with these).
    #[test]
    fn the_schema_matches_the_config_model() {
        let defaults = tree(&Config::default());
        for (key, f) in schema::fields() {
            let shown = lookup(&defaults, key).map(show).unwrap_or_default();
            assert_eq!(shown, f.default, "{key}: the schema's default");
            let Kind::Number { min, max } = f.kind else {
                continue;
            };
            let base = Config::demo(Path::new("/s"));
            let with = |n: u64| merge(&base, &values(&[(key, &n.to_string())]));
            assert!(with(min).is_ok(), "{key} = {min}: {:?}", with(min).err());
            assert!(with(max).is_ok(), "{key} = {max}: {:?}", with(max).err());
            if min > 0 {
                assert!(with(min - 1).is_err(), "{key} = {} passed", min - 1);
            }
            assert!(with(max + 1).is_err(), "{key} = {} passed", max + 1);
        }
    }

    #[test]
    fn protection_settings_are_checked_inline() {
        let c = Config::demo(Path::new("/s"));
        let e = merge(
            &c,
            &values(&[
                ("policy.domain-rules", "example.test: accept-when=sometimes"),
                ("scan.clamd", "clamd.lan"),
                ("policy.trusted", "10.0.0.0/8\n10.1.2.3/40"),
                ("policy.block-extensions", "scr\n*.exe"),
                ("policy.dnsbl-timeout", "0"),
                ("policy.guess-delay", "61"),
                ("scan.timeout", "601"),
            ]),
        )
        .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "policy.domain-rules",
            "scan.clamd",
            "policy.trusted",
            "policy.block-extensions",
            "policy.dnsbl-timeout",
            "policy.guess-delay",
            "scan.timeout",
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
                ("policy.verify-positive-days", "7"),
                ("policy.guess-window", "300"),
                ("policy.stress-idle-timeout", "0"),
                ("scan.timeout", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(m.scan.infected, "repackage");
        assert_eq!(m.policy.verify_positive_days, 7);
        assert_eq!(m.policy.guess_window, 300);
        assert_eq!(m.policy.stress_idle_timeout, 0);
        assert_eq!(m.scan.timeout, 60);
        // A bad value of one finer setting alone is refused under its own field.
        let e = merge(&c, &values(&[("policy.verify-negative-minutes", "0")])).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].field, "policy.verify-negative-minutes");
        assert!(e[0].message.contains("1..=10080"), "{e:?}");
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
