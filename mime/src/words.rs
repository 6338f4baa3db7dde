//! Header text decoding: RFC 2047 encoded words, RFC 2231 extended values, charsets.

use crate::decode::{Base64, hex};

/// Decodes RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?iso-8859-1?Q?...?=`); anything
/// malformed stays as written. Whitespace between two encoded words is dropped (§6.2).
pub fn decode_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, tail) = rest.split_at(start);
        match encoded_word(tail) {
            Some((text, used)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &tail[used..];
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &tail[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s` (which starts with `=?`): its text and length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let body = s.get(2..)?;
    let (charset, rest) = body.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty() || text.contains(' ') {
        return None;
    }
    let bytes = match enc {
        "B" | "b" => {
            let mut out = vec![0u8; text.len()];
            let n = Base64::default().feed(text.as_bytes(), &mut out);
            out.truncate(n);
            out
        }
        "Q" | "q" => unescape_hex(text.as_bytes(), b'=', Some(b'_')),
        _ => return None,
    };
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    // RFC 2231 §5: `charset*language`.
    let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    Some((charset_decode(&charset, &bytes), used))
}

/// RFC 2231 §4 `utf-8''%E2%82%AC.pdf` → `€.pdf` (charset as in [`charset_decode`]); a value
/// without the two quotes is percent-decoded as UTF-8.
pub fn decode_rfc2231(v: &str) -> String {
    let mut parts = v.splitn(3, '\'');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(charset), Some(_lang), Some(text)) => {
            let out = unescape_hex(text.as_bytes(), b'%', None);
            charset_decode(&charset.to_ascii_lowercase(), &out)
        }
        _ => charset_decode("utf-8", &unescape_hex(v.as_bytes(), b'%', None)),
    }
}

/// Bytes in a declared charset to text: the Latin-1 family mapped byte for byte (when the
/// bytes are not UTF-8 already), everything else as UTF-8 with replacement characters.
pub fn charset_decode(charset: &str, bytes: &[u8]) -> String {
    let latin1 = matches!(
        charset,
        "iso-8859-1" | "latin1" | "windows-1252" | "iso-8859-15" | "us-ascii"
    );
    if latin1 && std::str::from_utf8(bytes).is_err() {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Replaces `<escape>XX` hex escapes (and `space`, if given, by a space); bad escapes stay.
/// Serves RFC 2047 Q-words (`=`, `_`), RFC 2231 values and URL query text (`%`, `+`).
pub fn unescape_hex(t: &[u8], escape: u8, space: Option<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        match (t[i], hex(t.get(i + 1)), hex(t.get(i + 2))) {
            (c, Some(h), Some(l)) if c == escape => {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
            (c, ..) if Some(c) == space => out.push(b' '),
            (c, ..) => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_decode_and_malformed_ones_stay() {
        assert_eq!(
            decode_words("=?utf-8?B?Q2Fmw6k=?= =?ISO-8859-1?Q?_cr=E8me?= ok"),
            "Café crème ok"
        );
        assert_eq!(decode_words("=?utf-8?Q?=3Cscript=3E?="), "<script>");
        assert_eq!(
            decode_words("plain =?bad and =?x?Z?y?= =?"),
            "plain =?bad and =?x?Z?y?= =?"
        );
    }

    #[test]
    fn rfc2231_values_decode_by_charset() {
        assert_eq!(
            decode_rfc2231("utf-8''%E2%82%AC%20Rechnung.pdf"),
            "€ Rechnung.pdf"
        );
        assert_eq!(decode_rfc2231("iso-8859-1'de'%E9t%E9.scr"), "été.scr");
        assert_eq!(decode_rfc2231("plain%2Escr"), "plain.scr");
    }
}
