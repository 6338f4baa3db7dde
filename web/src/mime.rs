//! MIME-lite: the headers, a plain-text preview and the attachment list of a stored message.
//!
//! The message streams through a fixed line buffer; nothing grows with message size. At most
//! [`SCAN_MAX`] bytes are read, the preview keeps at most [`PREVIEW_MAX`] bytes, and at most
//! [`HEADERS_MAX`] headers and [`ATTACHMENTS_MAX`] attachments are listed — past any bound
//! the result says it was truncated. HTML is never interpreted: an HTML-only message's
//! preview is its HTML source, returned as text for the page to show escaped.
//! Peer-controlled bytes can make the result odd, never make this panic.

use std::io::{self, BufRead, BufReader, Read};

use serde::Serialize;

/// Most bytes of a message read for one detail view.
pub const SCAN_MAX: u64 = 64 * 1024 * 1024;
/// Longest line kept whole; longer lines are processed in pieces of this size.
pub const LINE_MAX: usize = 4096;
/// Most headers listed (top level).
pub const HEADERS_MAX: usize = 100;
/// Longest header value kept (after unfolding).
pub const HEADER_VALUE_MAX: usize = 2048;
/// Most bytes of body text in the preview.
pub const PREVIEW_MAX: usize = 64 * 1024;
/// Most attachments listed.
pub const ATTACHMENTS_MAX: usize = 100;
/// Deepest multipart nesting followed.
pub const DEPTH_MAX: usize = 4;

/// One attachment: its name as sent (may be hostile) and decoded size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// File name from Content-Disposition / Content-Type, or empty.
    pub name: String,
    /// MIME type, lower-case.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
}

/// What the message page shows of a message's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    /// Top-level headers in order, unfolded.
    pub headers: Vec<(String, String)>,
    /// Body text: the first text/plain part, else the first text/html part as source text.
    pub preview: String,
    /// `text/plain`, `text/html` or empty when the message has no text part.
    pub preview_type: String,
    /// Attachments in order.
    pub attachments: Vec<Attachment>,
    /// Some bound was hit (preview cut, headers/attachments dropped, or scan stopped).
    pub truncated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Plain,
    Base64,
    QuotedPrintable,
}

/// What a part's content-related headers say.
#[derive(Debug, Default)]
struct PartHead {
    mime: String,
    boundary: Option<String>,
    charset: String,
    name: Option<String>,
    attachment: bool,
    encoding: Option<Encoding>,
}

/// Where the current part's decoded bytes go.
enum Sink {
    Skip,
    Text {
        html: bool,
        latin1: bool,
        enc: Encoding,
        b64: Base64,
    },
    Count {
        index: usize,
        enc: Encoding,
        b64: Base64,
    },
}

/// Parses a message read from `source`, reading at most [`SCAN_MAX`] bytes.
pub fn parse(source: impl Read) -> io::Result<Parsed> {
    let mut reader = BufReader::new(source.take(SCAN_MAX));
    let mut line = Vec::with_capacity(LINE_MAX);
    let mut out = Parsed::default();
    let mut plain = TextBuf::default();
    let mut html = TextBuf::default();

    let headers = read_headers(&mut reader, &mut line, HEADERS_MAX, &mut out.truncated)?;
    let top = part_head(&headers);
    out.headers = headers;
    let mut stack: Vec<String> = Vec::with_capacity(DEPTH_MAX);
    let mut sink = open_part(&top, &mut stack, &mut out);

    loop {
        line.clear();
        if read_line(&mut reader, &mut line)? == 0 {
            break;
        }
        let trimmed = trim_eol(&line);
        if trimmed.starts_with(b"--") {
            if let Some((level, closing)) = boundary_match(&stack, trimmed) {
                stack.truncate(level + 1);
                if closing {
                    stack.pop();
                    sink = Sink::Skip;
                } else {
                    let h = read_headers(&mut reader, &mut line, HEADERS_MAX, &mut out.truncated)?;
                    sink = open_part(&part_head(&h), &mut stack, &mut out);
                }
                continue;
            }
        }
        feed(&mut sink, &line, &mut plain, &mut html, &mut out);
    }
    if reader.into_inner().limit() == 0 {
        out.truncated = true;
    }
    let (text, kind) = if plain.seen {
        (plain, "text/plain")
    } else if html.seen {
        (html, "text/html")
    } else {
        (TextBuf::default(), "")
    };
    out.truncated |= text.cut;
    out.preview = text.into_string();
    // Decoded only for display, after the structure was parsed from the raw values.
    for (_, v) in &mut out.headers {
        *v = decode_words(v);
    }
    for a in &mut out.attachments {
        a.name = decode_words(&a.name);
    }
    out.preview_type = kind.into();
    Ok(out)
}

/// Decides where a new part's content goes.
fn open_part(head: &PartHead, stack: &mut Vec<String>, out: &mut Parsed) -> Sink {
    if head.mime.starts_with("multipart/") {
        if let Some(b) = &head.boundary {
            if stack.len() < DEPTH_MAX {
                stack.push(b.clone());
            } else {
                out.truncated = true;
            }
        }
        return Sink::Skip;
    }
    let enc = head.encoding.unwrap_or(Encoding::Plain);
    let is_text = head.mime == "text/plain" || head.mime == "text/html" || head.mime.is_empty();
    if is_text && !head.attachment && head.name.is_none() {
        let latin1 = matches!(
            head.charset.as_str(),
            "iso-8859-1" | "latin1" | "windows-1252" | "us-ascii"
        );
        return Sink::Text {
            html: head.mime == "text/html",
            latin1,
            enc,
            b64: Base64::default(),
        };
    }
    if out.attachments.len() >= ATTACHMENTS_MAX {
        out.truncated = true;
        return Sink::Skip;
    }
    out.attachments.push(Attachment {
        name: head.name.clone().unwrap_or_default(),
        content_type: if head.mime.is_empty() {
            "text/plain".into()
        } else {
            head.mime.clone()
        },
        size: 0,
    });
    Sink::Count {
        index: out.attachments.len() - 1,
        enc,
        b64: Base64::default(),
    }
}

fn feed(sink: &mut Sink, line: &[u8], plain: &mut TextBuf, html: &mut TextBuf, out: &mut Parsed) {
    match sink {
        Sink::Skip => {}
        Sink::Text {
            html: is_html,
            latin1,
            enc,
            b64,
        } => {
            let buf = if *is_html { html } else { plain };
            if buf.seen && buf.done {
                return;
            }
            buf.seen = true;
            buf.latin1 = *latin1;
            decode_line(*enc, b64, line, &mut |bytes| buf.push(bytes));
        }
        Sink::Count { index, enc, b64 } => {
            let mut n = 0u64;
            decode_line(*enc, b64, line, &mut |bytes| n += bytes.len() as u64);
            if let Some(a) = out.attachments.get_mut(*index) {
                a.size += n;
            }
        }
    }
}

/// Decodes one body line, handing decoded bytes to `emit`.
fn decode_line(enc: Encoding, b64: &mut Base64, line: &[u8], emit: &mut dyn FnMut(&[u8])) {
    match enc {
        Encoding::Plain => {
            let body = trim_eol(line);
            emit(body);
            if body.len() != line.len() {
                emit(b"\n");
            }
        }
        Encoding::Base64 => {
            let mut out = [0u8; LINE_MAX];
            let n = b64.feed(line, &mut out);
            emit(&out[..n]);
        }
        Encoding::QuotedPrintable => {
            let body = trim_eol(line);
            let (body, soft) = match body.strip_suffix(b"=") {
                Some(b) => (b, true),
                None => (body, false),
            };
            let mut out = [0u8; LINE_MAX];
            let mut n = 0;
            let mut i = 0;
            while i < body.len() {
                let b = body[i];
                if b == b'=' {
                    if let (Some(h), Some(l)) = (hex(body.get(i + 1)), hex(body.get(i + 2))) {
                        out[n] = h << 4 | l;
                        n += 1;
                        i += 3;
                        continue;
                    }
                }
                out[n] = b;
                n += 1;
                i += 1;
            }
            emit(&out[..n]);
            if !soft && body.len() != line.len() {
                emit(b"\n");
            }
        }
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?iso-8859-1?Q?...?=`) for display;
/// anything malformed stays as written. Whitespace between two encoded words is dropped.
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
    let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    Some((charset_decode(&charset, &bytes), used))
}

/// RFC 2231 `utf-8''%E2%82%AC.pdf` → `€.pdf` (charset as in [`charset_decode`]).
fn decode_rfc2231(v: &str) -> String {
    let mut parts = v.splitn(3, '\'');
    let (Some(charset), Some(_lang), Some(text)) = (parts.next(), parts.next(), parts.next())
    else {
        return v.to_owned();
    };
    let out = unescape_hex(text.as_bytes(), b'%', None);
    charset_decode(&charset.to_ascii_lowercase(), &out)
}

/// Bytes in a declared charset to text: Latin-1 family mapped byte for byte, the rest as
/// UTF-8 with replacement characters.
fn charset_decode(charset: &str, bytes: &[u8]) -> String {
    let latin1 = matches!(
        charset,
        "iso-8859-1" | "latin1" | "windows-1252" | "iso-8859-15"
    );
    if latin1 && std::str::from_utf8(bytes).is_err() {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Replaces `<escape>XX` hex escapes (and `space`, if given, by a space); bad escapes stay.
/// Shared by RFC 2047 Q-words (`=`, `_`), RFC 2231 values and URL query text (`%`, `+`).
pub(crate) fn unescape_hex(t: &[u8], escape: u8, space: Option<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        match (t[i], hex(t.get(i + 1)), hex(t.get(i + 2))) {
            (c, Some(h), Some(l)) if c == escape => {
                out.push(h << 4 | l);
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

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A streaming base64 decoder that carries partial groups across lines.
#[derive(Debug, Default)]
struct Base64 {
    acc: u32,
    bits: u8,
    done: bool,
}

impl Base64 {
    /// Decodes the alphabet characters of `input` into `out` (which must hold `input.len()`
    /// bytes: decoding never expands); returns the bytes written.
    fn feed(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let mut n = 0;
        for &c in input {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    self.done = true;
                    continue;
                }
                _ => continue,
            };
            if self.done {
                continue;
            }
            self.acc = (self.acc << 6) | u32::from(v);
            self.bits += 6;
            if self.bits >= 8 {
                self.bits -= 8;
                if let Some(slot) = out.get_mut(n) {
                    *slot = (self.acc >> self.bits) as u8;
                    n += 1;
                }
            }
        }
        n
    }
}

/// A bounded preview buffer.
#[derive(Default)]
struct TextBuf {
    bytes: Vec<u8>,
    seen: bool,
    done: bool,
    cut: bool,
    latin1: bool,
}

impl TextBuf {
    fn push(&mut self, b: &[u8]) {
        let room = PREVIEW_MAX - self.bytes.len();
        if b.len() > room {
            self.bytes.extend_from_slice(&b[..room]);
            self.cut = true;
            self.done = true;
        } else {
            self.bytes.extend_from_slice(b);
        }
    }

    fn into_string(self) -> String {
        charset_decode(if self.latin1 { "latin1" } else { "utf-8" }, &self.bytes)
    }
}

/// Reads one line (with its `\n`) or a [`LINE_MAX`] piece of a longer one; 0 at the end.
fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(line.len());
        }
        let room = LINE_MAX - line.len();
        let take = buf
            .iter()
            .take(room)
            .position(|&b| b == b'\n')
            .map_or(buf.len().min(room), |p| p + 1);
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if line.last() == Some(&b'\n') || line.len() >= LINE_MAX {
            return Ok(line.len());
        }
    }
}

/// Reads a header block up to the empty line, unfolding continuation lines.
fn read_headers(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
    truncated: &mut bool,
) -> io::Result<Vec<(String, String)>> {
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        line.clear();
        if read_line(r, line)? == 0 {
            break;
        }
        let l = trim_eol(line);
        if l.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(l);
        if l[0] == b' ' || l[0] == b'\t' {
            if let Some((_, v)) = headers.last_mut() {
                append_bounded(v, " ", truncated);
                append_bounded(v, text.trim(), truncated);
            }
            continue;
        }
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        if headers.len() >= max {
            *truncated = true;
            continue;
        }
        let mut v = String::new();
        append_bounded(&mut v, value.trim(), truncated);
        headers.push((name.trim().to_owned(), v));
    }
    Ok(headers)
}

fn append_bounded(v: &mut String, s: &str, truncated: &mut bool) {
    for c in s.chars() {
        if v.len() + c.len_utf8() > HEADER_VALUE_MAX {
            *truncated = true;
            return;
        }
        v.push(c);
    }
}

/// Extracts the content type, boundary, charset, file name and encoding from headers.
fn part_head(headers: &[(String, String)]) -> PartHead {
    let mut head = PartHead::default();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-type") {
            let (mime, params) = split_params(value);
            head.mime = mime.to_ascii_lowercase();
            for (k, v) in params {
                match k.to_ascii_lowercase().as_str() {
                    "boundary" if !v.is_empty() => head.boundary = Some(v),
                    "charset" => head.charset = v.to_ascii_lowercase(),
                    "name" if head.name.is_none() => head.name = Some(v),
                    _ => {}
                }
            }
        } else if name.eq_ignore_ascii_case("content-disposition") {
            let (disp, params) = split_params(value);
            head.attachment = disp.eq_ignore_ascii_case("attachment");
            for (k, v) in params {
                if k.eq_ignore_ascii_case("filename") {
                    head.name = Some(v);
                } else if k.eq_ignore_ascii_case("filename*") {
                    head.name = Some(decode_rfc2231(&v));
                }
            }
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
            head.encoding = Some(match value.trim().to_ascii_lowercase().as_str() {
                "base64" => Encoding::Base64,
                "quoted-printable" => Encoding::QuotedPrintable,
                _ => Encoding::Plain,
            });
        }
    }
    head
}

/// Splits `type; a=b; c="d"` into the value and its parameters (quotes removed).
fn split_params(value: &str) -> (&str, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let first = parts.next().unwrap_or("").trim();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect();
    (first, params)
}

/// If `line` is `--b` or `--b--` for a boundary on the stack, its level and whether it closes.
fn boundary_match(stack: &[String], line: &[u8]) -> Option<(usize, bool)> {
    let rest = &line[2..];
    stack.iter().enumerate().rev().find_map(|(level, b)| {
        let tail = rest.strip_prefix(b.as_bytes())?;
        let tail = trim_ws(tail);
        if tail.is_empty() {
            Some((level, false))
        } else if tail == b"--" {
            Some((level, true))
        } else {
            None
        }
    })
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "From: \"Eve\" <eve@example.org>\r\nSubject: <script>alert(1)</script>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"outer\"\r\n\r\n\
preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Hello caf=C3=A9, this is a so=\r\nft break.\r\n--inner\r\nContent-Type: text/html\r\n\r\n\
<b>Hello</b><img src=x onerror=alert(1)>\r\n--inner--\r\n--outer\r\n\
Content-Type: application/pdf; name=\"x.pdf\"\r\nContent-Disposition: attachment; filename=\"\\\"><img src=x onerror=alert(2)>.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\nAAAA\r\n--outer--\r\nepilogue\r\n";

    #[test]
    fn multipart_gives_plain_preview_and_attachment_sizes() {
        let p = parse(MIXED.as_bytes()).unwrap();
        assert_eq!(p.preview_type, "text/plain");
        assert_eq!(p.preview, "Hello café, this is a soft break.\n");
        assert_eq!(p.attachments.len(), 1);
        assert_eq!(p.attachments[0].content_type, "application/pdf");
        assert!(p.attachments[0].name.contains("onerror"));
        // "%PDF-1.4\n" is 9 bytes, "AAAA" decodes to 3.
        assert_eq!(p.attachments[0].size, 12);
        assert_eq!(
            p.headers[1],
            ("Subject".into(), "<script>alert(1)</script>".into())
        );
        assert_eq!(p.headers[3].1, "multipart/mixed; boundary=\"outer\"");
        assert!(!p.truncated);
    }

    #[test]
    fn encoded_words_and_rfc2231_names_decode_for_display() {
        assert_eq!(
            decode_words("=?utf-8?B?Q2Fmw6k=?= =?ISO-8859-1?Q?_cr=E8me?= ok"),
            "Café crème ok"
        );
        assert_eq!(decode_words("=?utf-8?Q?=3Cscript=3E?="), "<script>");
        assert_eq!(
            decode_words("plain =?bad and =?x?Z?y?= =?"),
            "plain =?bad and =?x?Z?y?= =?"
        );
        let m = "Subject: =?utf-8?q?Rechnung_=E2=82=AC?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Disposition: attachment; filename*=utf-8''%E2%82%AC%20Rechnung.pdf\r\n\r\nx\r\n--b--\r\n";
        let p = parse(m.as_bytes()).unwrap();
        assert_eq!(p.headers[0].1, "Rechnung €");
        assert_eq!(p.attachments[0].name, "€ Rechnung.pdf");
    }

    #[test]
    fn random_fragment_soup_never_panics_and_stays_bounded() {
        const PIECES: [&str; 14] = [
            "Content-Type: multipart/mixed; boundary=a\r\n",
            "Content-Type: multipart/alternative; boundary=\"b\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "Content-Disposition: attachment; filename=\"x.bin\"\r\n",
            "\r\n",
            "--a\r\n",
            "--b\r\n",
            "--a--\r\n",
            "QUJD=\r\n",
            "=E2=82=\r\n",
            " folded\r\n",
            "Subject: =?utf-8?B?w6k=?=\r\n",
            "\u{0}\u{ff}==??=\n",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut msg = Vec::new();
            for _ in 0..(seed % 60) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                msg.extend_from_slice(PIECES[(seed % PIECES.len() as u64) as usize].as_bytes());
            }
            let p = parse(&msg[..]).unwrap();
            assert!(p.headers.len() <= HEADERS_MAX && p.attachments.len() <= ATTACHMENTS_MAX);
            assert!(p.attachments.iter().all(|a| a.size <= msg.len() as u64));
        }
    }

    #[test]
    fn html_only_mail_previews_its_source_as_text() {
        let m = "Subject: hi\r\nContent-Type: text/html\r\n\r\n<p onclick=x>Hi</p>\r\n";
        let p = parse(m.as_bytes()).unwrap();
        assert_eq!(p.preview_type, "text/html");
        assert_eq!(p.preview, "<p onclick=x>Hi</p>\n");
    }

    #[test]
    fn huge_body_and_binary_junk_are_bounded() {
        let mut m = b"Subject: big\r\n\r\n".to_vec();
        m.extend(std::iter::repeat_n(0xffu8, PREVIEW_MAX * 3));
        m.extend(b"\r\n");
        let p = parse(&m[..]).unwrap();
        assert!(p.truncated);
        assert!(p.preview.len() <= PREVIEW_MAX * 3);
        assert_eq!(p.preview.chars().count(), PREVIEW_MAX);
    }

    #[test]
    fn too_many_headers_are_cut() {
        let mut m = String::new();
        for i in 0..HEADERS_MAX + 10 {
            m.push_str(&format!("X-H{i}: v\r\n"));
        }
        m.push_str("\r\nbody\r\n");
        let p = parse(m.as_bytes()).unwrap();
        assert_eq!(p.headers.len(), HEADERS_MAX);
        assert!(p.truncated);
        assert_eq!(p.preview, "body\n");
    }

    #[test]
    fn unterminated_and_empty_messages_parse() {
        assert_eq!(
            parse(&b""[..]).unwrap(),
            Parsed {
                preview_type: String::new(),
                ..Parsed::default()
            }
        );
        let p = parse(&b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain"[..]).unwrap();
        assert_eq!(p.preview, "");
    }
}
