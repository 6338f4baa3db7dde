//! Content headers (RFC 2045 §5, RFC 2183) and their parameters, with RFC 2231
//! continuations and charsets.

use crate::decode::Encoding;
use crate::words::{charset_decode, decode_words, unescape_hex};
use crate::{BOUNDARY_MAX, NAME_MAX, SECTIONS_MAX, TYPE_MAX};

/// What one entity's content headers say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentHead {
    /// `type/subtype`, lower-case; empty when there was no Content-Type.
    pub mime: String,
    /// The multipart boundary (at most [`BOUNDARY_MAX`] bytes, else none).
    pub boundary: Option<String>,
    /// Charset parameter, lower-case.
    pub charset: String,
    /// Content-Disposition `filename` values, decoded (extended, then plain).
    from_disposition: Vec<String>,
    /// Content-Type `name` values, decoded (extended, then plain).
    from_type: Vec<String>,
    /// `Content-Disposition: attachment`.
    pub attachment: bool,
    /// Content-Transfer-Encoding, when given.
    pub encoding: Option<Encoding>,
}

impl ContentHead {
    /// Takes one header into account (others are ignored). `value` is unfolded.
    pub fn apply(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("content-type") {
            let (mime, params) = split_params(value);
            self.mime = bounded(&mime.to_ascii_lowercase(), TYPE_MAX);
            if let Some(b) = plain_param(&params, "boundary") {
                self.boundary = (!b.is_empty() && b.len() <= BOUNDARY_MAX).then_some(b);
            }
            if let Some(c) = plain_param(&params, "charset") {
                self.charset = bounded(&c.to_ascii_lowercase(), 40);
            }
            self.from_type = names(&params, "name");
        } else if name.eq_ignore_ascii_case("content-disposition") {
            let (disp, params) = split_params(value);
            self.attachment = disp.eq_ignore_ascii_case("attachment");
            self.from_disposition = names(&params, "filename");
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
            self.encoding = Some(Encoding::parse(value));
        }
    }

    /// Every file name the headers give, best first: Content-Disposition `filename`
    /// (extended, then plain), then Content-Type `name`. A check must look at all of them:
    /// mail clients differ in which one they show.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for n in self.from_disposition.iter().chain(&self.from_type) {
            if !out.contains(&n.as_str()) {
                out.push(n);
            }
        }
        out
    }

    /// The name a mail client would most likely show.
    pub fn display_name(&self) -> Option<&str> {
        self.from_disposition
            .first()
            .or(self.from_type.first())
            .map(String::as_str)
    }
}

/// The extended and the plain value of parameter `key`, decoded and bounded.
fn names(params: &[(String, String)], key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in [extended_param(params, key), plain_param(params, key)]
        .into_iter()
        .flatten()
    {
        let v = bounded(&v, NAME_MAX);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Splits `type; a=b; c="d;e"` into the value and its parameters: keys lower-case, quotes
/// removed and backslash escapes undone (RFC 2045 §5.1, RFC 5322 §3.2.4). A `;` inside
/// quotes does not split. Bounded by the value's length.
pub fn split_params(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                // Kept as a marker that the value was quoted; removed below.
                cur.push('\u{0}');
            }
            ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let mut iter = parts.into_iter();
    let first = iter.next().unwrap_or_default().replace('\u{0}', "");
    let params = iter
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().replace('\u{0}', "");
            (!k.is_empty()).then_some((k, v))
        })
        .collect();
    (first.trim().to_owned(), params)
}

/// `key="value"`, with RFC 2047 encoded words inside decoded (mailers send them there).
fn plain_param(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| decode_words(v))
}

/// `key*=charset'lang'%XX` (RFC 2231 §4) or continuations `key*0*=…; key*1=…` (§3, §4.1).
fn extended_param(params: &[(String, String)], key: &str) -> Option<String> {
    let star = format!("{key}*");
    if let Some((_, v)) = params.iter().find(|(k, _)| *k == star) {
        return Some(crate::words::decode_rfc2231(v));
    }
    // Sections in any order; each `key*N` (plain) or `key*N*` (percent-encoded).
    let mut sections: Vec<(usize, bool, &str)> = Vec::new();
    for (k, v) in params {
        let Some(rest) = k.strip_prefix(&star) else {
            continue;
        };
        let (num, encoded) = match rest.strip_suffix('*') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let Ok(n) = num.parse::<usize>() else {
            continue;
        };
        if n < SECTIONS_MAX && !sections.iter().any(|s| s.0 == n) {
            sections.push((n, encoded, v));
        }
    }
    if sections.is_empty() {
        return None;
    }
    sections.sort_by_key(|s| s.0);
    let mut bytes = Vec::new();
    let mut charset = String::from("utf-8");
    for (i, (n, encoded, text)) in sections.iter().enumerate() {
        if *n != i {
            break; // §3: sections are numbered from 0 without gaps.
        }
        let mut text = *text;
        if i == 0 && *encoded {
            // The first encoded section carries `charset'language'`.
            let mut parts = text.splitn(3, '\'');
            if let (Some(cs), Some(_), Some(rest)) = (parts.next(), parts.next(), parts.next()) {
                charset = cs.to_ascii_lowercase();
                text = rest;
            }
        }
        if *encoded {
            bytes.extend(unescape_hex(text.as_bytes(), b'%', None));
        } else {
            bytes.extend_from_slice(text.as_bytes());
        }
        if bytes.len() > NAME_MAX * 4 {
            break;
        }
    }
    Some(charset_decode(&charset, &bytes))
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn bounded(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> ContentHead {
        let mut h = ContentHead::default();
        for (n, v) in headers {
            h.apply(n, v);
        }
        h
    }

    #[test]
    fn quoted_semicolons_and_escapes_do_not_split() {
        let (v, p) = split_params(r#"attachment; filename="a;b \"c\".pdf"; size=3"#);
        assert_eq!(v, "attachment");
        assert_eq!(
            p,
            vec![
                ("filename".into(), "a;b \"c\".pdf".into()),
                ("size".into(), "3".into())
            ]
        );
    }

    #[test]
    fn every_name_is_kept_filename_first() {
        let h = head(&[
            ("Content-Type", "application/pdf; name=\"invoice.pdf\""),
            (
                "Content-Disposition",
                "attachment; filename=\"invoice.pdf\"; filename*=utf-8''invoice.scr",
            ),
        ]);
        assert_eq!(h.names(), ["invoice.scr", "invoice.pdf"]);
        assert!(h.attachment);
        assert_eq!(h.display_name(), Some("invoice.scr"));
    }

    #[test]
    fn rfc2231_continuations_join_in_section_order() {
        let h = head(&[(
            "Content-Disposition",
            "attachment; filename*1*=%20Rechnung; filename*0*=utf-8'de'%E2%82%AC; filename*2=\".scr\"",
        )]);
        assert_eq!(h.names(), ["€ Rechnung.scr"]);
        // A gap ends the name where it is.
        let h = head(&[(
            "Content-Disposition",
            "attachment; filename*0=\"a\"; filename*2=\".scr\"",
        )]);
        assert_eq!(h.names(), ["a"]);
    }

    #[test]
    fn encoded_words_in_quoted_names_are_decoded() {
        let h = head(&[(
            "Content-Type",
            "application/octet-stream; name=\"=?utf-8?B?c2NyZWVuLnNjcg==?=\"",
        )]);
        assert_eq!(h.names(), ["screen.scr"]);
        assert_eq!(h.mime, "application/octet-stream");
    }

    #[test]
    fn boundaries_charsets_and_encodings() {
        let h = head(&[
            (
                "Content-Type",
                "Multipart/Mixed; BOUNDARY=\"=_x y\"; charset=UTF-8",
            ),
            ("Content-Transfer-Encoding", " Base64 "),
        ]);
        assert_eq!(h.mime, "multipart/mixed");
        assert_eq!(h.boundary.as_deref(), Some("=_x y"));
        assert_eq!(h.charset, "utf-8");
        assert_eq!(h.encoding, Some(Encoding::Base64));
        let long = format!("multipart/mixed; boundary={}", "b".repeat(BOUNDARY_MAX + 1));
        assert_eq!(head(&[("Content-Type", &long)]).boundary, None);
    }
}
