//! Writes the config model as UCI text (what the web page saves to `/etc/config/mailbag`).
//!
//! The model is first serialized to a TOML value tree (the same serde names the readers
//! use), then printed the way `uci export` prints: top-level fields in
//! `config mailbag 'main'`, each table as a named section of its own type, strings in
//! single quotes with `'` written as `'\''`, sequences as `list` lines, booleans as
//! `'1'`/`'0'`. An empty sequence is written `option NAME ''`, which the reader takes as
//! empty, so write → read gives back the same model.

use std::fmt;
#[cfg(feature = "web")]
use std::fmt::Write as _;

#[cfg(feature = "web")]
use serde::Serialize;

#[cfg(feature = "web")]
use super::uci_read::GLOBAL_SECTION;

/// The model has a shape UCI cannot hold (nested tables, tables in lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError(pub String);

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write as UCI: {}", self.0)
    }
}

impl std::error::Error for WriteError {}

/// Renders `value` (a struct of scalars and tables) as a UCI file.
#[cfg(feature = "web")]
pub fn to_uci<T: Serialize>(value: &T) -> Result<String, WriteError> {
    let tree = toml::Value::try_from(value).map_err(|e| WriteError(e.to_string()))?;
    let toml::Value::Table(top) = tree else {
        return Err(WriteError("the top level is not a table".into()));
    };
    let mut out = String::from("package mailbag\n");
    let (tables, scalars): (Vec<_>, Vec<_>) = top
        .iter()
        .partition(|(_, v)| matches!(v, toml::Value::Table(_)));
    if !scalars.is_empty() {
        out.push_str(&format!("\nconfig {GLOBAL_SECTION} 'main'\n"));
        for (key, v) in scalars {
            write_option(&mut out, key, v)?;
        }
    }
    for (kind, table) in tables {
        out.push_str(&format!("\nconfig {kind} '{kind}'\n"));
        if let toml::Value::Table(options) = table {
            for (key, v) in options {
                write_option(&mut out, &format!("{kind}.{key}"), v)?;
            }
        }
    }
    Ok(out)
}

/// One option; `path` is `section.key` (for error messages), the UCI name is its last part.
#[cfg(feature = "web")]
fn write_option(out: &mut String, path: &str, value: &toml::Value) -> Result<(), WriteError> {
    let key = path.rsplit('.').next().unwrap_or(path).replace('-', "_");
    match value {
        toml::Value::Array(items) if items.is_empty() => {
            let _ = writeln!(out, "\toption {key} ''");
        }
        toml::Value::Array(items) => {
            for item in items {
                let text = scalar(path, item)?;
                let _ = writeln!(out, "\tlist {key} '{}'", escape(&text));
            }
        }
        v => {
            let text = scalar(path, v)?;
            let _ = writeln!(out, "\toption {key} '{}'", escape(&text));
        }
    }
    Ok(())
}

#[cfg(feature = "web")]
fn scalar(path: &str, value: &toml::Value) -> Result<String, WriteError> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            return Err(WriteError(format!("{path} is nested too deeply for UCI")));
        }
    })
}

/// Single-quote escaping as libuci's `uci_escape`: `'` becomes `'\''`.
#[cfg(feature = "web")]
fn escape(s: &str) -> String {
    s.replace('\'', "'\\''")
}
