//! The message view: headers, a plain-text preview and the attachment list of a stored
//! message, built on the product's one MIME scanner ([`mailbag_mime`], which the SMTP
//! policy uses for attachment blocking too).
//!
//! The message streams through the scanner's fixed buffers; nothing grows with message
//! size. At most [`SCAN_MAX`] bytes are read, the preview keeps at most [`PREVIEW_MAX`]
//! bytes, and at most [`HEADERS_MAX`] headers and [`ATTACHMENTS_MAX`] attachments are
//! listed — past any bound the result says it was truncated. HTML is never interpreted: an
//! HTML-only message's preview is its HTML source, returned as text for the page to show
//! escaped. Peer-controlled bytes can make the result odd, never make this panic.

use std::io::{self, Read};

use mailbag_mime::{Options, Part, Scanner, Visitor, charset_decode};
use serde::Serialize;

pub use mailbag_mime::{DEPTH_MAX, decode_words};

/// Most bytes of a message read for one detail view.
pub const SCAN_MAX: u64 = 64 * 1024 * 1024;
/// Longest line kept whole; longer lines are processed in pieces of this size.
pub const LINE_MAX: usize = mailbag_mime::LINE_MAX;
/// Most headers listed (top level).
pub const HEADERS_MAX: usize = 100;
/// Longest header kept (after unfolding).
pub const HEADER_VALUE_MAX: usize = mailbag_mime::HEADER_MAX;
/// Most bytes of body text in the preview.
pub const PREVIEW_MAX: usize = 64 * 1024;
/// Most attachments listed.
pub const ATTACHMENTS_MAX: usize = 100;
/// Bytes read from the source at a time.
const READ_CHUNK: usize = 16 * 1024;

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

/// Where the current part's decoded bytes go.
#[derive(Clone, Copy)]
enum Sink {
    Skip,
    Text { html: bool, latin1: bool },
    Count(usize),
}

/// Builds [`Parsed`] from the scanner's findings.
#[derive(Default)]
struct View {
    out: Parsed,
    plain: TextBuf,
    html: TextBuf,
    sink: Option<Sink>,
}

impl Visitor for View {
    fn header(&mut self, depth: usize, name: &str, value: &str) {
        if depth != 0 {
            return;
        }
        if self.out.headers.len() >= HEADERS_MAX {
            self.out.truncated = true;
            return;
        }
        self.out.headers.push((name.to_owned(), value.to_owned()));
    }

    fn part(&mut self, part: Part<'_>) {
        let head = part.head;
        let is_text = head.mime == "text/plain" || head.mime == "text/html" || head.mime.is_empty();
        let name = head.display_name();
        if is_text && !head.attachment && name.is_none() {
            let latin1 = matches!(
                head.charset.as_str(),
                "iso-8859-1" | "latin1" | "windows-1252" | "us-ascii"
            );
            self.sink = Some(Sink::Text {
                html: head.mime == "text/html",
                latin1,
            });
            return;
        }
        if self.out.attachments.len() >= ATTACHMENTS_MAX {
            self.out.truncated = true;
            self.sink = Some(Sink::Skip);
            return;
        }
        self.out.attachments.push(Attachment {
            name: name.unwrap_or_default().to_owned(),
            content_type: if head.mime.is_empty() {
                "text/plain".into()
            } else {
                head.mime.clone()
            },
            size: 0,
        });
        self.sink = Some(Sink::Count(self.out.attachments.len() - 1));
    }

    fn content(&mut self, bytes: &[u8]) {
        match self.sink.unwrap_or(Sink::Skip) {
            Sink::Skip => {}
            Sink::Text { html, latin1 } => {
                let buf = if html {
                    &mut self.html
                } else {
                    &mut self.plain
                };
                if buf.seen && buf.done {
                    return;
                }
                buf.seen = true;
                buf.latin1 = latin1;
                buf.push(bytes);
            }
            Sink::Count(i) => {
                if let Some(a) = self.out.attachments.get_mut(i) {
                    a.size += bytes.len() as u64;
                }
            }
        }
    }
}

/// Parses a message read from `source`, reading at most [`SCAN_MAX`] bytes.
pub fn parse(source: impl Read) -> io::Result<Parsed> {
    let mut source = source.take(SCAN_MAX);
    let mut scanner = Scanner::new(Options {
        descend_messages: false,
        content: true,
    });
    let mut view = View::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        scanner.feed(&buf[..n], &mut view);
    }
    scanner.finish(&mut view);
    let View {
        mut out,
        plain,
        html,
        ..
    } = view;
    out.truncated |= scanner.truncated() || scanner.too_deep() || source.limit() == 0;
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
    out.preview_type = kind.into();
    Ok(out)
}

/// Replaces `<escape>XX` hex escapes (and `space`, if given, by a space); bad escapes stay.
pub(crate) fn unescape_hex(t: &[u8], escape: u8, space: Option<u8>) -> Vec<u8> {
    mailbag_mime::unescape_hex(t, escape, space)
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
