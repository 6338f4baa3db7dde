//! What the inbound path learns from a message's content while it streams to flash: the
//! top-level header facts the spam rules need and the first attachment whose name is on
//! the block list. Sans-IO over the shared [`mailbag_mime::Scanner`] (structure only, no
//! decoding), so its memory is the scanner's fixed ~5 KiB plus three short header values.

use mailbag_mime::{Options, Part, Scanner, Visitor};

/// Longest Date/From value kept for the spam rules.
pub const FACT_MAX: usize = 256;
/// Most extensions on the block list.
pub const EXTENSIONS_MAX: usize = 64;

/// Top-level header facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFacts {
    /// A `Message-ID:` header is present.
    pub message_id: bool,
    /// The first `Date:` value.
    pub date: Option<String>,
    /// The first `From:` value (raw; encoded words decoded by whoever reads it).
    pub from: Option<String>,
}

/// `policy.block-extensions`: file name extensions refused as attachments, lower-case,
/// without the dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockList(Vec<String>);

impl BlockList {
    /// From the configured extensions (`scr`, `.PIF` …); at most [`EXTENSIONS_MAX`].
    pub fn new<S: AsRef<str>>(exts: &[S]) -> Self {
        Self(
            exts.iter()
                .map(|e| {
                    e.as_ref()
                        .trim()
                        .trim_start_matches('.')
                        .to_ascii_lowercase()
                })
                .filter(|e| !e.is_empty())
                .take(EXTENSIONS_MAX)
                .collect(),
        )
    }

    /// True when nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` ends in a blocked extension. Trailing dots, spaces and control
    /// characters are ignored, as Windows ignores them when it opens the file.
    pub fn blocks(&self, name: &str) -> bool {
        let name = name
            .trim_end_matches(|c: char| c == '.' || c.is_whitespace() || c.is_control())
            .to_lowercase();
        match name.rsplit_once('.') {
            Some((_, ext)) => self.0.iter().any(|b| *b == ext),
            None => false,
        }
    }
}

/// The per-message scan on the inbound path.
#[derive(Debug)]
pub struct BodyScan {
    scanner: Scanner,
    facts: Facts,
}

#[derive(Debug)]
struct Facts {
    block: BlockList,
    headers: HeaderFacts,
    blocked: Option<String>,
}

impl Visitor for Facts {
    fn header(&mut self, depth: usize, name: &str, value: &str) {
        if depth != 0 {
            return;
        }
        let keep = |v: &str| {
            let mut end = v.len().min(FACT_MAX);
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v[..end].to_owned()
        };
        if name.eq_ignore_ascii_case("message-id") {
            self.headers.message_id = true;
        } else if name.eq_ignore_ascii_case("date") && self.headers.date.is_none() {
            self.headers.date = Some(keep(value));
        } else if name.eq_ignore_ascii_case("from") && self.headers.from.is_none() {
            self.headers.from = Some(keep(value));
        }
    }

    fn part(&mut self, part: Part<'_>) {
        if self.blocked.is_some() || self.block.is_empty() {
            return;
        }
        if let Some(name) = part.head.names().into_iter().find(|n| self.block.blocks(n)) {
            self.blocked = Some(name.to_owned());
        }
    }
}

/// What the scan concluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentFacts {
    /// Top-level header facts.
    pub headers: HeaderFacts,
    /// The first attachment name on the block list.
    pub blocked: Option<String>,
    /// The structure was nested deeper than the scanner follows: what is inside was not
    /// checked (refused when attachments are blocked).
    pub too_deep: bool,
}

impl BodyScan {
    /// A scan blocking `block` (which may be empty: header facts only).
    pub fn new(block: BlockList) -> Self {
        Self {
            scanner: Scanner::new(Options {
                descend_messages: true,
                content: false,
            }),
            facts: Facts {
                block,
                headers: HeaderFacts::default(),
                blocked: None,
            },
        }
    }

    /// The next content bytes, exactly as stored.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.scanner.feed(bytes, &mut self.facts);
    }

    /// The content ended.
    pub fn finish(mut self) -> ContentFacts {
        self.scanner.finish(&mut self.facts);
        ContentFacts {
            headers: self.facts.headers,
            blocked: self.facts.blocked,
            too_deep: self.scanner.too_deep(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(msg: &str, block: &[&str]) -> ContentFacts {
        let mut s = BodyScan::new(BlockList::new(block));
        for piece in msg.as_bytes().chunks(7) {
            s.feed(piece);
        }
        s.finish()
    }

    #[test]
    fn extensions_match_like_windows_opens_files() {
        let b = BlockList::new(&["pif", ".SCR"]);
        for name in ["a.scr", "A.SCR", "a.pdf.scr", "a.scr.", "a.scr ", "ünï.Scr"] {
            assert!(b.blocks(name), "{name}");
        }
        for name in ["a.pdf", "scr", "a.scrx", "a.pif.pdf", ""] {
            assert!(!b.blocks(name), "{name}");
        }
        assert!(BlockList::new::<&str>(&[]).is_empty());
    }

    #[test]
    fn a_blocked_name_deep_inside_is_found_and_header_facts_are_kept() {
        let m = "Date: Tue, 24 Nov 2026 20:59:00 +0000\r\nFrom: A <a@x.example>\r\n\
Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n\
--i\r\nContent-Type: text/plain\r\n\r\nhi\r\n--i\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC; filename*1=\"x.scr\"\r\n\r\nMZ\r\n--i--\r\n--o--\r\n";
        let f = scan(m, &["pif", "scr"]);
        assert_eq!(f.blocked.as_deref(), Some("€x.scr"));
        assert!(!f.headers.message_id);
        assert_eq!(f.headers.from.as_deref(), Some("A <a@x.example>"));
        assert!(f.headers.date.is_some());
        assert_eq!(scan(m, &[]).blocked, None);
        assert_eq!(scan(&m.replace("x.scr", "x.pdf"), &["scr"]).blocked, None);
    }

    #[test]
    fn a_name_in_content_type_only_is_checked_too() {
        let m = "Message-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: application/x-msdownload; name=\"=?utf-8?B?cmVhZG1lLnBpZg==?=\"\r\n\
Content-Disposition: attachment; filename=\"readme.txt\"\r\n\r\nMZ\r\n--b--\r\n";
        let f = scan(m, &["pif"]);
        assert_eq!(f.blocked.as_deref(), Some("readme.pif"));
        assert!(f.headers.message_id);
    }
}
