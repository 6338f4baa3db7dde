//! serde deserialization of a parsed UCI package into the config model.
//!
//! Mapping: options of the `config mailbag` section are the top-level fields (`role`,
//! `enabled`); every other section's type names a top-level table (`config smtp` →
//! `smtp`), so each type may appear once (named or anonymous). Option names use `_` where
//! the model uses `-` (`max_message_size` → `max-message-size`). UCI values are all text;
//! they become numbers and booleans only when the model asks for one (booleans as libuci's
//! `uci_parse_bool`: 1/0, true/false, yes/no, on/off, enabled/disabled). A sequence is a
//! `list`, or an `option` whose value is split at whitespace (`option ports '25 587'`).
//! Every error names the line and the key.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::uci::{UciOption, UciPackage, UciSection, UciValue};

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

impl de::Error for UciError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            line: None,
            key: String::new(),
            msg: msg.to_string(),
        }
    }
}

impl UciError {
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

/// Deserializes the model from a parsed package.
pub fn from_package<T: DeserializeOwned>(pkg: &UciPackage) -> Result<T, UciError> {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut seen: Vec<&UciSection> = Vec::new();
    for section in &pkg.sections {
        if let Some(first) = seen.iter().find(|s| s.kind == section.kind) {
            return Err(UciError {
                line: Some(section.line),
                key: section.kind.clone(),
                msg: format!(
                    "a second 'config {}' section (the first is on line {}); merge them",
                    section.kind, first.line
                ),
            });
        }
        seen.push(section);
        if section.kind == GLOBAL_SECTION {
            entries.extend(section.options.iter().map(Entry::option));
        } else {
            entries.push(Entry {
                name: &section.kind,
                line: section.line,
                node: Node::Section(section),
            });
        }
    }
    T::deserialize(Node::Map(entries))
}

#[derive(Clone)]
struct Entry<'a> {
    name: &'a str,
    line: usize,
    node: Node<'a>,
}

impl<'a> Entry<'a> {
    fn option(o: &'a UciOption) -> Self {
        Self {
            name: &o.name,
            line: o.line,
            node: Node::Value(&o.value),
        }
    }
}

/// What a deserializer is looking at.
#[derive(Clone)]
enum Node<'a> {
    Map(Vec<Entry<'a>>),
    Section(&'a UciSection),
    Value(&'a UciValue),
}

impl<'a> Node<'a> {
    fn into_map(self) -> Result<MapDe<'a>, UciError> {
        match self {
            Node::Map(entries) => Ok(MapDe::new(entries)),
            Node::Section(s) => Ok(MapDe::new(s.options.iter().map(Entry::option).collect())),
            Node::Value(_) => Err(de::Error::custom(
                "is an option, but a 'config' section is expected here",
            )),
        }
    }

    fn scalar(&self) -> Result<Scalar<'a>, UciError> {
        match self {
            Node::Value(UciValue::Str(s)) => Ok(Scalar(s)),
            Node::Value(UciValue::List(_)) => Err(de::Error::custom(
                "is a 'list', but a single 'option' value is expected",
            )),
            _ => Err(de::Error::custom("is a section, but an option is expected")),
        }
    }
}

macro_rules! scalar_methods {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
            self.scalar()?.$method(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = UciError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        match self {
            Node::Value(UciValue::Str(_)) => self.scalar()?.deserialize_any(visitor),
            Node::Value(UciValue::List(_)) => self.deserialize_seq(visitor),
            _ => visitor.visit_map(self.into_map()?),
        }
    }

    scalar_methods!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_identifier
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        // An option that is present is `Some`; absent options never reach here.
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        let items: Vec<&str> = match self {
            Node::Value(UciValue::List(items)) => items.iter().map(String::as_str).collect(),
            Node::Value(UciValue::Str(s)) => s.split_whitespace().collect(),
            _ => return Err(de::Error::custom("is a section, but a list is expected")),
        };
        visitor.visit_seq(SeqDe { items, idx: 0 })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        visitor.visit_map(self.into_map()?)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, UciError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, UciError> {
        self.scalar()?.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct newtype_struct tuple tuple_struct
        ignored_any
    }
}

struct MapDe<'a> {
    entries: std::vec::IntoIter<Entry<'a>>,
    current: Option<Entry<'a>>,
}

impl<'a> MapDe<'a> {
    fn new(entries: Vec<Entry<'a>>) -> Self {
        Self {
            entries: entries.into_iter(),
            current: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'_> {
    type Error = UciError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, UciError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry.clone());
        let field = entry.name.replace('_', "-");
        let de: de::value::StringDeserializer<UciError> = field.into_deserializer();
        seed.deserialize(de).map(Some).map_err(|mut e| {
            // "unknown field ..., expected one of ...": name fields as the file spells them.
            e.msg = e.msg.replace('-', "_");
            e.within(entry.line, entry.name)
        })
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, UciError> {
        let entry = self
            .current
            .take()
            .ok_or_else(|| <UciError as de::Error>::custom("value without a key"))?;
        seed.deserialize(entry.node)
            .map_err(|e| e.within(entry.line, entry.name))
    }
}

struct SeqDe<'a> {
    items: Vec<&'a str>,
    idx: usize,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_> {
    type Error = UciError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, UciError> {
        let Some(item) = self.items.get(self.idx) else {
            return Ok(None);
        };
        let idx = self.idx;
        self.idx += 1;
        seed.deserialize(Scalar(item)).map(Some).map_err(|mut e| {
            if e.key.is_empty() {
                e.key = format!("[{idx}]");
            }
            e
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len().saturating_sub(self.idx))
    }
}

/// One UCI text value, converted to what the model asks for.
struct Scalar<'a>(&'a str);

impl Scalar<'_> {
    fn number<T: std::str::FromStr>(&self, what: &str) -> Result<T, UciError> {
        self.0
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("'{}' is not {what}", self.0)))
    }

    fn bool(&self) -> Result<bool, UciError> {
        match self.0.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "enabled" => Ok(true),
            "0" | "false" | "no" | "off" | "disabled" => Ok(false),
            _ => Err(de::Error::custom(format!(
                "'{}' is not a boolean (use '1' or '0')",
                self.0
            ))),
        }
    }
}

macro_rules! scalar_numbers {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
            visitor.$visit(self.number::<$ty>($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Scalar<'_> {
    type Error = UciError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        visitor.visit_bool(self.bool()?)
    }

    scalar_numbers! {
        deserialize_i8 => visit_i8: i8, "a number (-128..=127)";
        deserialize_i16 => visit_i16: i16, "a number (-32768..=32767)";
        deserialize_i32 => visit_i32: i32, "a 32-bit number";
        deserialize_i64 => visit_i64: i64, "a 64-bit number";
        deserialize_u8 => visit_u8: u8, "a number (0..=255)";
        deserialize_u16 => visit_u16: u16, "a number (0..=65535)";
        deserialize_u32 => visit_u32: u32, "a number (0..=4294967295)";
        deserialize_u64 => visit_u64: u64, "a whole number";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, UciError> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, UciError> {
        let de: de::value::StrDeserializer<'_, UciError> = self.0.into_deserializer();
        visitor.visit_enum(de)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::uci::parse;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Top {
        name: String,
        on: bool,
        sub: Sub,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Sub {
        max_count: u16,
        ports: Vec<u16>,
        note: Option<String>,
    }

    fn load(text: &str) -> Result<Top, UciError> {
        from_package(&parse(text).unwrap())
    }

    #[test]
    fn typed_fields_from_text() {
        let t = load(
            "config mailbag\n option name x\n option on yes\nconfig sub 's'\n option max_count 7\n list ports 25\n list ports 587\n",
        )
        .unwrap();
        assert_eq!(
            t,
            Top {
                name: "x".into(),
                on: true,
                sub: Sub {
                    max_count: 7,
                    ports: vec![25, 587],
                    note: None
                }
            }
        );
        let t = load("config sub\n option ports '25 465'\n option note ''\n").unwrap();
        assert_eq!(t.sub.ports, vec![25, 465]);
        assert_eq!(t.sub.note.as_deref(), Some(""));
        for (word, b) in [
            ("1", true),
            ("off", false),
            ("Enabled", true),
            ("no", false),
        ] {
            assert_eq!(
                load(&format!("config mailbag\n option on '{word}'\n"))
                    .unwrap()
                    .on,
                b
            );
        }
    }

    #[test]
    fn errors_name_line_and_key() {
        let cases = [
            (
                "config sub\n\n option max_count 70000\n",
                "line 3: sub.max_count: '70000' is not a number (0..=65535)",
            ),
            (
                "config sub\n list ports 25\n list ports x\n",
                "line 3: sub.ports[1]: 'x' is not a number (0..=65535)",
            ),
            (
                "config mailbag\n option on maybe\n",
                "line 2: on: 'maybe' is not a boolean",
            ),
            (
                "config sub\n option colour red\n",
                "line 2: sub.colour: unknown field `colour`",
            ),
            (
                "config sub\n option max_count 1\nconfig other\n",
                "line 3: other: unknown field `other`",
            ),
            (
                "config sub\nconfig sub\n",
                "line 2: sub: a second 'config sub' section (the first is on line 1)",
            ),
            (
                "config mailbag\n list name a\n list name b\n",
                "line 3: name: is a 'list'",
            ),
            (
                "config mailbag\n option sub x\n",
                "line 2: sub: is an option",
            ),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
        }
    }
}
