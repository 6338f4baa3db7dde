//! The config model from a parsed UCI package, without serde: each option is looked up by
//! its dotted key in [`super::keys`], which knows the field it sets.
//!
//! Mapping: options of the `config mailbag` section are the top-level fields (`role`,
//! `enabled`); every other section's type names a top-level table (`config smtp` →
//! `smtp`), so each type may appear once (named or anonymous). Option names use `_` where
//! the model uses `-` (`max_message_size` → `max-message-size`). UCI values are all text;
//! they become numbers and booleans only when the model asks for one (booleans as libuci's
//! `uci_parse_bool`: 1/0, true/false, yes/no, on/off, enabled/disabled). A sequence is a
//! `list`, or an `option` whose value is split at whitespace (`option ports '25 587'`).
//! Every error names the line and the key.
//!
//! (A serde deserializer did this before; its instantiation for the model was ~51 KB of
//! the router binary, this reader is a few KB.)

use std::fmt;

use super::uci::{UciOption, UciPackage, UciValue};
use super::{Config, Role, keys};
use crate::firewall::FirewallMode;

/// The section type holding top-level options.
pub const GLOBAL_SECTION: &str = "mailbag";

/// A UCI value that does not fit the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key, as written in the file (`smtp.max_sessions`), when known.
    pub key: String,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for UciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.msg)
    }
}

impl std::error::Error for UciError {}

impl UciError {
    fn msg(msg: String) -> Self {
        Self {
            line: None,
            key: String::new(),
            msg,
        }
    }

    /// Fills in line and key unless an inner layer already did.
    fn within(mut self, line: usize, key: &str) -> Self {
        if self.line.is_none() {
            self.line = Some(line);
        }
        if self.key.is_empty() {
            self.key = key.to_string();
        } else if !self.key.starts_with('[') {
            self.key = format!("{key}.{}", self.key);
        } else {
            self.key = format!("{key}{}", self.key);
        }
        self
    }
}

/// Reads the model from a parsed package: the defaults, with every option given set.
pub fn from_package(pkg: &UciPackage) -> Result<Config, UciError> {
    let mut config = Config::default();
    for (i, section) in pkg.sections.iter().enumerate() {
        if let Some(first) = pkg.sections[..i].iter().find(|s| s.kind == section.kind) {
            return Err(UciError {
                line: Some(section.line),
                key: section.kind.clone(),
                msg: format!(
                    "a second 'config {}' section (the first is on line {}); merge them",
                    section.kind, first.line
                ),
            });
        }
        if section.kind == GLOBAL_SECTION {
            for o in &section.options {
                set(&mut config, "", o)?;
            }
            continue;
        }
        if !keys::KEYS.iter().any(|k| is_in(k, &section.kind)) {
            let msg = if keys::KEYS.contains(&section.kind.as_str()) {
                "is a section, but an option is expected".to_string()
            } else {
                unknown(&section.kind, "")
            };
            return Err(UciError::msg(msg).within(section.line, &section.kind));
        }
        for o in &section.options {
            set(&mut config, &section.kind, o)
                .map_err(|e| e.within(section.line, &section.kind))?;
        }
    }
    Ok(config)
}

/// Whether `key` is an option of the table `section` (`""`: a top-level option).
fn is_in(key: &str, section: &str) -> bool {
    match key.split_once('.') {
        Some((s, _)) => s == section,
        None => section.is_empty(),
    }
}

/// "unknown field `x`, expected one of ...", the names as the file spells them.
fn unknown(name: &str, section: &str) -> String {
    let mut msg = format!("unknown field `{name}`, expected one of ");
    let mut first = true;
    for k in keys::KEYS.iter().filter(|k| is_in(k, section)) {
        let option = k.split_once('.').map_or(*k, |(_, o)| o);
        if !first {
            msg.push_str(", ");
        }
        first = false;
        msg.push('`');
        msg.push_str(&option.replace('-', "_"));
        msg.push('`');
    }
    if section.is_empty() {
        let mut tables: Vec<&str> = keys::KEYS
            .iter()
            .filter_map(|k| k.split_once('.'))
            .map(|(s, _)| s)
            .collect();
        tables.dedup();
        for t in tables {
            msg.push_str(", `");
            msg.push_str(t);
            msg.push('`');
        }
    }
    msg
}

/// Sets the option `o` of the table `section` (`""`: the `config mailbag` section).
fn set(config: &mut Config, section: &str, o: &UciOption) -> Result<(), UciError> {
    let name = o.name.replace('_', "-");
    let key = if section.is_empty() {
        name
    } else {
        format!("{section}.{name}")
    };
    match keys::set(&key, &o.value, config) {
        Some(r) => r.map_err(|e| e.within(o.line, &o.name)),
        None => {
            let msg = if section.is_empty() && keys::KEYS.iter().any(|k| is_in(k, &key)) {
                "is an option, but a 'config' section is expected here".to_string()
            } else {
                unknown(&o.name, section)
            };
            Err(UciError::msg(msg).within(o.line, &o.name))
        }
    }
}

/// A field's type, read from one UCI value.
pub(super) trait FromUci: Sized {
    /// The value, or what is wrong with it (without line and key).
    fn from_uci(value: &UciValue) -> Result<Self, UciError>;
}

/// A scalar field's type, read from one word of text.
trait FromText: Sized {
    fn from_text(text: &str) -> Result<Self, UciError>;
}

fn single(value: &UciValue) -> Result<&str, UciError> {
    match value {
        UciValue::Str(s) => Ok(s),
        UciValue::List(_) => Err(UciError::msg(
            "is a 'list', but a single 'option' value is expected".into(),
        )),
    }
}

macro_rules! scalars {
    ($($ty:ty),*) => {$(
        impl FromUci for $ty {
            fn from_uci(value: &UciValue) -> Result<Self, UciError> {
                <$ty>::from_text(single(value)?)
            }
        }

        impl FromUci for Option<$ty> {
            fn from_uci(value: &UciValue) -> Result<Self, UciError> {
                <$ty>::from_uci(value).map(Some)
            }
        }

        impl FromUci for Vec<$ty> {
            fn from_uci(value: &UciValue) -> Result<Self, UciError> {
                let items: Vec<&str> = match value {
                    UciValue::List(items) => items.iter().map(String::as_str).collect(),
                    UciValue::Str(s) => s.split_whitespace().collect(),
                };
                let mut out = Vec::with_capacity(items.len());
                for (idx, item) in items.into_iter().enumerate() {
                    out.push(<$ty>::from_text(item).map_err(|mut e| {
                        e.key = format!("[{idx}]");
                        e
                    })?);
                }
                Ok(out)
            }
        }
    )*};
}

scalars!(String, bool, u8, u16, u32, u64, Role, FirewallMode);

impl FromText for String {
    fn from_text(text: &str) -> Result<Self, UciError> {
        Ok(text.to_string())
    }
}

impl FromText for bool {
    fn from_text(text: &str) -> Result<Self, UciError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "enabled" => Ok(true),
            "0" | "false" | "no" | "off" | "disabled" => Ok(false),
            _ => Err(UciError::msg(format!(
                "'{text}' is not a boolean (use '1' or '0')"
            ))),
        }
    }
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, UciError> {
    text.trim()
        .parse()
        .map_err(|_| UciError::msg(format!("'{text}' is not {what}")))
}

macro_rules! numbers {
    ($($ty:ty => $what:literal;)*) => {$(
        impl FromText for $ty {
            fn from_text(text: &str) -> Result<Self, UciError> {
                number(text, $what)
            }
        }
    )*};
}

numbers! {
    u8 => "a number (0..=255)";
    u16 => "a number (0..=65535)";
    u32 => "a number (0..=4294967295)";
    u64 => "a whole number";
}

/// One of `variants` (the words as the file spells them), by index.
fn variant(text: &str, variants: &[&str]) -> Result<usize, UciError> {
    variants.iter().position(|v| *v == text).ok_or_else(|| {
        let list: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
        UciError::msg(format!(
            "unknown variant `{text}`, expected one of {}",
            list.join(", ")
        ))
    })
}

impl FromText for Role {
    fn from_text(text: &str) -> Result<Self, UciError> {
        Ok([Role::Edge, Role::Silo][variant(text, &["edge", "silo"])?])
    }
}

impl FromText for FirewallMode {
    fn from_text(text: &str) -> Result<Self, UciError> {
        const ALL: [FirewallMode; 3] = [
            FirewallMode::WalledGarden,
            FirewallMode::OpenWhenPrimaryDown,
            FirewallMode::Off,
        ];
        Ok(ALL[variant(text, &["walled-garden", "open-when-primary-down", "off"])?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::uci::parse;

    fn load(text: &str) -> Result<Config, UciError> {
        from_package(&parse(text).unwrap())
    }

    #[test]
    fn typed_fields_from_text() {
        let c = load(
            "config mailbag\n option role silo\n option enabled no\nconfig smtp 's'\n option max_sessions 7\n option hostname mx\nconfig firewall\n list ports 25\n list ports 587\n option mode off\n",
        )
        .unwrap();
        let mut want = Config {
            role: Role::Silo,
            enabled: false,
            ..Config::default()
        };
        want.smtp.max_sessions = 7;
        want.smtp.hostname = "mx".into();
        want.firewall.ports = vec![25, 587];
        want.firewall.mode = FirewallMode::Off;
        assert_eq!(c, want);
        let c = load("config firewall\n option ports '25 465'\nconfig smtp\n option tls_cert ''\n")
            .unwrap();
        assert_eq!(c.firewall.ports, vec![25, 465]);
        assert_eq!(c.smtp.tls_cert.as_deref(), Some(""));
        assert_eq!(c.smtp.tls_key, None);
        for (word, b) in [
            ("1", true),
            ("off", false),
            ("Enabled", true),
            ("no", false),
        ] {
            assert_eq!(
                load(&format!("config smtp\n option starttls '{word}'\n"))
                    .unwrap()
                    .smtp
                    .starttls,
                b
            );
        }
        let c = load(
            "config notify\n option spool_full_percent 80\nconfig spool\n option size 1048576\n",
        )
        .unwrap();
        assert_eq!(c.notify.spool_full_percent, 80);
        assert_eq!(c.spool.size, 1 << 20);
    }

    #[test]
    fn errors_name_line_and_key() {
        let cases = [
            (
                "config firewall\n\n option ports 70000\n",
                "line 3: firewall.ports[0]: '70000' is not a number (0..=65535)",
            ),
            (
                "config firewall\n list ports 25\n list ports x\n",
                "line 3: firewall.ports[1]: 'x' is not a number (0..=65535)",
            ),
            (
                "config notify\n option spool_full_percent 300\n",
                "line 2: notify.spool_full_percent: '300' is not a number (0..=255)",
            ),
            (
                "config smtp\n option starttls maybe\n",
                "line 2: smtp.starttls: 'maybe' is not a boolean",
            ),
            (
                "config mailbag\n option role router\n",
                "line 2: role: unknown variant `router`, expected one of `edge`, `silo`",
            ),
            (
                "config smtp\n option colour red\n",
                "line 2: smtp.colour: unknown field `colour`, expected one of `hostname`, `idle_timeout_secs`",
            ),
            (
                "config smtp\n option hostname x\nconfig other\n",
                "line 3: other: unknown field `other`",
            ),
            (
                "config smtp\nconfig smtp\n",
                "line 2: smtp: a second 'config smtp' section (the first is on line 1)",
            ),
            (
                "config smtp\n list hostname a\n list hostname b\n",
                "line 3: smtp.hostname: is a 'list'",
            ),
            (
                "config mailbag\n option smtp x\n",
                "line 2: smtp: is an option",
            ),
            (
                "config role\n",
                "line 1: role: is a section, but an option is expected",
            ),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
        }
    }
}
