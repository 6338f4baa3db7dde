//! The streaming scanner: lines in, headers, parts and decoded content out.

use crate::decode::{Base64, Encoding, quoted_printable};
use crate::params::ContentHead;
use crate::{BOUNDARY_MAX, DEPTH_MAX, HEADER_MAX, LINE_MAX};

/// What the scanner should do beyond finding the structure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Scan a `message/rfc822` part as a message of its own (its headers at one level
    /// deeper, its parts reported too). It is still reported as a part itself.
    pub descend_messages: bool,
    /// Decode each leaf part's content and hand it to [`Visitor::content`]. Off, the
    /// scanner only looks for boundaries in the body.
    pub content: bool,
}

/// A leaf part as it starts (not multipart containers).
#[derive(Clone, Copy, Debug)]
pub struct Part<'a> {
    /// 0 for a message that is not multipart; parts of the top multipart are at 1.
    pub depth: usize,
    /// Its content headers.
    pub head: &'a ContentHead,
}

/// Receives what the scanner finds, in message order. Every method has an empty default.
pub trait Visitor {
    /// One unfolded header of the entity at `depth` (0: the message's own header).
    /// `value` is trimmed and may be cut at [`HEADER_MAX`]; bytes that are not UTF-8 are
    /// shown as U+FFFD.
    fn header(&mut self, depth: usize, name: &str, value: &str) {
        let _ = (depth, name, value);
    }
    /// A leaf part starts; its content follows.
    fn part(&mut self, part: Part<'_>) {
        let _ = part;
    }
    /// Decoded content of the current leaf part (only with [`Options::content`]); line ends
    /// of text parts arrive as `\n`.
    fn content(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Reading an entity's header block.
    Headers,
    /// A multipart's preamble or epilogue, or a part too deep to follow: skipped.
    Skip,
    /// A leaf part's content.
    Leaf(Encoding),
}

/// The streaming scanner; see the [crate docs](crate) for its contract.
#[derive(Debug)]
pub struct Scanner {
    opts: Options,
    mode: Mode,
    /// The current line (or a [`LINE_MAX`] piece of a longer one).
    line: Vec<u8>,
    /// Whether `line` starts at the beginning of a line.
    line_start: bool,
    /// The header being unfolded (`Name: value`).
    header: Vec<u8>,
    /// The head of the entity whose headers are being read.
    head: ContentHead,
    /// Depth of the entity being read.
    depth: usize,
    /// Boundaries of the open multiparts, outermost first.
    stack: Vec<String>,
    b64: Base64,
    truncated: bool,
    too_deep: bool,
    parts: u64,
}

impl Scanner {
    /// A scanner at the start of a message; its buffers are allocated here, once.
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            mode: Mode::Headers,
            line: Vec::with_capacity(LINE_MAX),
            line_start: true,
            header: Vec::with_capacity(HEADER_MAX),
            head: ContentHead::default(),
            depth: 0,
            stack: Vec::with_capacity(DEPTH_MAX),
            b64: Base64::default(),
            truncated: false,
            too_deep: false,
            parts: 0,
        }
    }

    /// Scans the next bytes of the message (any split gives the same result).
    pub fn feed(&mut self, mut bytes: &[u8], v: &mut impl Visitor) {
        while !bytes.is_empty() {
            let room = LINE_MAX - self.line.len();
            let take = bytes
                .iter()
                .take(room)
                .position(|&b| b == b'\n')
                .map_or(bytes.len().min(room), |p| p + 1);
            self.line.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            let complete = self.line.last() == Some(&b'\n');
            if complete || self.line.len() >= LINE_MAX {
                self.process(complete, v);
            }
        }
    }

    /// The message ended: scans what is left of the last line, ends the last header block.
    pub fn finish(&mut self, v: &mut impl Visitor) {
        if !self.line.is_empty() {
            self.process(true, v);
        }
        if self.mode == Mode::Headers {
            self.end_headers(v);
        }
    }

    /// Some header was longer than [`HEADER_MAX`] and was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Some multipart or message was nested deeper than [`DEPTH_MAX`]; what is inside it
    /// was not reported.
    pub fn too_deep(&self) -> bool {
        self.too_deep
    }

    /// Leaf parts reported so far.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    fn process(&mut self, complete: bool, v: &mut impl Visitor) {
        let line = std::mem::take(&mut self.line);
        let at_start = self.line_start;
        self.line_start = complete;
        if at_start && line.starts_with(b"--") && !self.stack.is_empty() {
            if let Some((level, closing)) = boundary_match(&self.stack, trim_eol(&line)) {
                if self.mode == Mode::Headers {
                    self.end_headers(v);
                }
                self.stack.truncate(level + 1);
                if closing {
                    self.stack.pop();
                    self.mode = Mode::Skip;
                } else {
                    self.begin_entity(level + 1);
                }
                self.recycle(line);
                return;
            }
        }
        match self.mode {
            Mode::Headers => self.header_line(&line, at_start, complete, v),
            Mode::Skip => {}
            Mode::Leaf(enc) => {
                if self.opts.content {
                    self.decode(enc, &line, complete, v);
                }
            }
        }
        self.recycle(line);
    }

    /// Puts the line buffer back, emptied (no new allocation).
    fn recycle(&mut self, mut line: Vec<u8>) {
        line.clear();
        self.line = line;
    }

    fn begin_entity(&mut self, depth: usize) {
        self.mode = Mode::Headers;
        self.head = ContentHead::default();
        self.header.clear();
        self.depth = depth;
        self.b64 = Base64::default();
    }

    fn header_line(&mut self, line: &[u8], at_start: bool, complete: bool, v: &mut impl Visitor) {
        let body = trim_eol(line);
        if !at_start {
            // The rest of an over-long line.
            self.push_header(body);
            return;
        }
        if body.is_empty() && complete {
            self.end_headers(v);
            return;
        }
        if matches!(body.first(), Some(b' ' | b'\t')) {
            if !self.header.is_empty() {
                self.push_header(b" ");
                self.push_header(trim(body));
            }
            return;
        }
        self.emit_header(v);
        self.push_header(body);
    }

    fn push_header(&mut self, bytes: &[u8]) {
        let room = HEADER_MAX - self.header.len();
        if bytes.len() > room {
            self.truncated = true;
        }
        self.header
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit_header(&mut self, v: &mut impl Visitor) {
        if self.header.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.header);
        if let Some((name, value)) = text.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            v.header(self.depth, name, value);
            self.head.apply(name, value);
        }
        self.header.clear();
    }

    /// The blank line after an entity's headers: decide what its content is.
    fn end_headers(&mut self, v: &mut impl Visitor) {
        self.emit_header(v);
        let head = &self.head;
        if head.mime.starts_with("multipart/") {
            if let Some(b) = &head.boundary {
                if self.stack.len() < DEPTH_MAX {
                    self.stack.push(b.clone());
                } else {
                    self.too_deep = true;
                }
                self.mode = Mode::Skip;
                return;
            }
        }
        let encoding = head.encoding.unwrap_or_default();
        self.parts += 1;
        v.part(Part {
            depth: self.depth,
            head,
        });
        if head.mime == "message/rfc822" && self.opts.descend_messages {
            if encoding == Encoding::Plain && self.depth < DEPTH_MAX {
                let depth = self.depth + 1;
                self.begin_entity(depth);
                return;
            }
            self.too_deep |= self.depth >= DEPTH_MAX;
        }
        self.mode = Mode::Leaf(encoding);
        self.b64 = Base64::default();
    }

    fn decode(&mut self, enc: Encoding, line: &[u8], complete: bool, v: &mut impl Visitor) {
        let mut out = [0u8; LINE_MAX];
        match enc {
            Encoding::Plain => {
                v.content(trim_eol(line));
                if complete {
                    v.content(b"\n");
                }
            }
            Encoding::Base64 => {
                let n = self.b64.feed(line, &mut out);
                v.content(&out[..n]);
            }
            Encoding::QuotedPrintable => {
                let (n, soft) = quoted_printable(trim_eol(line), &mut out);
                v.content(&out[..n]);
                if complete && !soft {
                    v.content(b"\n");
                }
            }
        }
    }
}

/// If `line` is `--b` or `--b--` (RFC 2046 §5.1.1, trailing whitespace allowed) for a
/// boundary on the stack, its level (innermost wins) and whether it closes.
fn boundary_match(stack: &[String], line: &[u8]) -> Option<(usize, bool)> {
    let rest = line.get(2..)?;
    if rest.len() > BOUNDARY_MAX + 2 + 64 {
        return None;
    }
    stack.iter().enumerate().rev().find_map(|(level, b)| {
        let tail = trim(rest.strip_prefix(b.as_bytes())?);
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

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests;
