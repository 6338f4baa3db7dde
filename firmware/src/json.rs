//! Just enough JSON for the control socket's views and the rpcd plugin (`mailbag rpcd`),
//! without a serde_json in the router binary: a writer of objects and arrays with correct
//! string escaping, and a reader of one flat object of string, number and boolean values
//! (what rpcd hands a plugin: `{"id":"…","domain":"…"}`).
//!
//! The reader is bounded: input over [`FLAT_MAX`] bytes, more than [`FIELDS_MAX`] fields,
//! nesting, or anything else outside that shape is an error naming where it stopped. No
//! recursion, no allocation beyond the fields returned.

use std::fmt::Write as _;

/// Largest input [`parse_flat`] reads.
pub const FLAT_MAX: usize = 64 * 1024;
/// Most fields [`parse_flat`] returns.
pub const FIELDS_MAX: usize = 32;

/// Appends `s` as a JSON string (quotes included). Control characters, `"` and `\` are
/// escaped, and `<`, `>`, `&` as `\u003c`-style escapes so the text is inert in HTML too.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds one JSON object: `Obj::new().str("a", "x").num("n", 1).finish()`.
#[derive(Default)]
pub struct Obj {
    out: String,
}

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Self {
            out: String::from("{"),
        }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        push_str(&mut self.out, k);
        self.out.push(':');
        &mut self.out
    }

    /// A string member.
    pub fn str(mut self, k: &str, v: &str) -> Self {
        push_str(self.key(k), v);
        self
    }

    /// A string member, or `null`.
    pub fn opt_str(mut self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => push_str(self.key(k), v),
            None => self.key(k).push_str("null"),
        }
        self
    }

    /// A number member.
    pub fn num(mut self, k: &str, v: u64) -> Self {
        let _ = write!(self.key(k), "{v}");
        self
    }

    /// A number member, or `null`.
    pub fn opt_num(mut self, k: &str, v: Option<u64>) -> Self {
        match v {
            Some(v) => {
                let _ = write!(self.key(k), "{v}");
            }
            None => self.key(k).push_str("null"),
        }
        self
    }

    /// A boolean member.
    pub fn bool(mut self, k: &str, v: bool) -> Self {
        self.key(k).push_str(if v { "true" } else { "false" });
        self
    }

    /// A member whose value is JSON text already (an [`Obj`] or [`array`] result).
    pub fn raw(mut self, k: &str, json: &str) -> Self {
        self.key(k).push_str(json);
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// A JSON array of values that are JSON text already.
pub fn array<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// A JSON array of strings.
pub fn str_array<'a, I: IntoIterator<Item = &'a str>>(items: I) -> String {
    array(items.into_iter().map(|s| {
        let mut o = String::new();
        push_str(&mut o, s);
        o
    }))
}

/// One value of a flat object, as text: strings unescaped, numbers and booleans as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Member name.
    pub name: String,
    /// Its value (`null` gives no field).
    pub value: String,
}

/// Reads one object whose values are strings, numbers, booleans or null (`{}` and empty or
/// blank input give no fields).
pub fn parse_flat(text: &str) -> Result<Vec<Field>, String> {
    if text.len() > FLAT_MAX {
        return Err(format!("arguments longer than {FLAT_MAX} bytes"));
    }
    let mut p = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    if p.i == p.s.len() {
        return Ok(Vec::new());
    }
    p.expect(b'{')?;
    let mut fields = Vec::new();
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let name = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let value = match p.peek() {
                Some(b'"') => Some(p.string()?),
                Some(b'n') => {
                    p.word("null")?;
                    None
                }
                Some(b't') => Some(p.word("true")?),
                Some(b'f') => Some(p.word("false")?),
                Some(b'-' | b'0'..=b'9') => Some(p.number()?),
                _ => return Err(p.error("a string, number, boolean or null")),
            };
            if let Some(value) = value {
                if fields.len() == FIELDS_MAX {
                    return Err(format!("more than {FIELDS_MAX} arguments"));
                }
                fields.push(Field { name, value });
            }
            p.ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b'}') => {
                    p.i += 1;
                    break;
                }
                _ => return Err(p.error("',' or '}'")),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(p.error("the end of the input"));
    }
    Ok(fields)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn error(&self, wanted: &str) -> String {
        format!("bad JSON arguments at byte {}: expected {wanted}", self.i)
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error(&format!("'{}'", char::from(b))))
        }
    }

    fn word(&mut self, w: &str) -> Result<String, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(w.to_owned())
        } else {
            Err(self.error(w))
        }
    }

    /// A JSON number (RFC 8259 section 6 grammar), returned as written. Checked by hand:
    /// a float parser would be the only one in the router binary.
    fn number(&mut self) -> Result<String, String> {
        let start = self.i;
        let digits = |c: &mut Self| {
            let from = c.i;
            while matches!(c.peek(), Some(b'0'..=b'9')) {
                c.i += 1;
            }
            c.i > from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        if !digits(self) {
            return Err(self.error("a number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.error("a number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.error("a number"));
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were consumed: always UTF-8.
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("the end of a string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("an escape"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode()?,
                        _ => return Err(self.error("an escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b if b < 0x20 => return Err(self.error("no control character in a string")),
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.error("4 hex digits"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.error("4 hex digits"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.error("4 hex digits"))?;
        self.i += 4;
        Ok(v)
    }

    fn unicode(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            self.expect(b'\\')?;
            self.expect(b'u')?;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.error("a low surrogate"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.error("a Unicode scalar value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<(String, String)> {
        parse_flat(text)
            .unwrap()
            .into_iter()
            .map(|f| (f.name, f.value))
            .collect()
    }

    #[test]
    fn writes_escaped_objects() {
        let o = Obj::new()
            .str("s", "a\"b\\c\n<x>&\u{1}")
            .num("n", 7)
            .bool("b", true)
            .opt_str("none", None)
            .raw("list", &str_array(["x", "y"]))
            .finish();
        assert_eq!(
            o,
            r#"{"s":"a\"b\\c\n\u003cx\u003e\u0026\u0001","n":7,"b":true,"none":null,"list":["x","y"]}"#
        );
    }

    #[test]
    fn reads_what_rpcd_sends() {
        assert_eq!(fields(""), vec![]);
        assert_eq!(fields(" {} "), vec![]);
        assert_eq!(
            fields(r#"{"id":"00000001000000AB","limit":50,"x":null,"ok":true}"#),
            vec![
                ("id".into(), "00000001000000AB".into()),
                ("limit".into(), "50".into()),
                ("ok".into(), "true".into())
            ]
        );
        assert_eq!(
            fields(r#"{"d":"caf\u00e9 \ud83d\ude00 \"q\""}"#),
            vec![("d".into(), "café 😀 \"q\"".into())]
        );
    }

    #[test]
    fn refuses_other_shapes_with_a_position() {
        for bad in [
            "[1]",
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":"x""#,
            r#"{"a":"x"} junk"#,
            r#"{"a":1,}"#,
            r#"{"a":"\ud800"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":1e}"#,
        ] {
            let e = parse_flat(bad).unwrap_err();
            assert!(e.contains("bad JSON"), "{bad}: {e}");
        }
        let many = format!(
            "{{{}}}",
            (0..=FIELDS_MAX)
                .map(|i| format!("\"k{i}\":1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(parse_flat(&many).unwrap_err().contains("more than"));
        assert!(parse_flat(&" ".repeat(FLAT_MAX + 1)).is_err());
    }
}
