//! The DATA receiver: message content up to `CRLF . CRLF`, streamed (RFC 5321 §4.1.1.4).
//!
//! Anti-smuggling: only `CRLF . CRLF` ends the content. Every CR must be followed by LF and
//! every LF preceded by CR; anything else ends the receiver with [`DataEnd::BareNewline`]
//! (Postfix's `smtpd_forbid_bare_newline = reject`), so no variant (`\n.\n`, `\r.\r`,
//! `\n.\r\n`, …) that another MTA might take as the end can split one message into two here.
//!
//! Content is emitted as [`Event::Body`] slices of the caller's input (no copy, no growth):
//! the leading dot of every line is removed (RFC 5321 §4.5.2), so a slice ends before it and
//! the next begins after it. The terminating `. CRLF` is not content; the CRLF before it is.
//!
//! Loop guard (RFC 5321 §6.3): the `Received:` fields of the header section are counted as
//! the content streams by; a message with more than [`HOPS_MAX`] has circled between
//! servers, and is aborted like an oversized one — refused after the final dot (554 5.4.6),
//! never stored, so it cannot be bounced around again.

use super::event::{AbortReason, Event, Events};

/// Free event slots the receiver needs before it starts a step: one body slice, one final
/// slice, and the session's end-of-data events (abort, reply, close).
pub const EVENTS_RESERVE: usize = 5;

/// Most `Received:` header fields a message may carry (RFC 5321 §6.3: "a large rejection
/// threshold, normally at least 100").
pub const HOPS_MAX: u32 = 100;

/// `Received:`, the field name counted (case-insensitive).
const RECEIVED: &[u8] = b"received:";

/// How the content ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataEnd {
    /// `CRLF . CRLF` seen.
    Complete,
    /// A bare CR or LF: reject and close.
    BareNewline,
}

/// Result of one [`DataReceiver::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Set once the content has ended.
    pub end: Option<DataEnd>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// After CRLF (or right after the DATA command).
    LineStart,
    /// Inside a line.
    Mid,
    /// After a CR; only LF may follow.
    Cr,
    /// After a leading dot (already dropped).
    Dot,
    /// After a leading dot and CR: LF ends the content.
    DotCr,
}

/// Streams one message's content; created when DATA is accepted.
#[derive(Debug)]
pub struct DataReceiver {
    position: Position,
    size: u64,
    max_size: u64,
    too_big: bool,
    hops: Hops,
}

/// The header section's `Received:` count, as the unstuffed content streams by.
#[derive(Debug)]
struct Hops {
    /// Still in the header section (before the first empty line).
    in_header: bool,
    /// Bytes of the current line seen so far (saturating).
    col: usize,
    /// The line so far is a prefix of `Received:`.
    matching: bool,
    /// `Received:` fields seen.
    count: u32,
    /// More than [`HOPS_MAX`]: the abort was pushed.
    looped: bool,
}

impl DataReceiver {
    /// A receiver for content of at most `max_size` octets.
    pub fn new(max_size: u64) -> Self {
        Self {
            position: Position::LineStart,
            size: 0,
            max_size,
            too_big: false,
            hops: Hops {
                in_header: true,
                col: 0,
                matching: true,
                count: 0,
                looped: false,
            },
        }
    }

    /// True once the message was abandoned while streaming (too big, or looping): an
    /// abort event was pushed, and the final dot gets a refusal.
    pub fn aborted(&self) -> bool {
        self.too_big || self.hops.looped
    }

    /// True once the message showed more than [`HOPS_MAX`] `Received:` fields.
    pub fn looped(&self) -> bool {
        self.hops.looped
    }

    /// `Received:` fields counted in the header section so far.
    pub fn hops(&self) -> u32 {
        self.hops.count
    }

    /// Content octets accepted so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True once the content exceeded the limit (an abort event was pushed).
    pub fn too_big(&self) -> bool {
        self.too_big
    }

    /// Consume `input`, pushing body slices (or one `MessageAborted(TooBig)`) into `out`.
    /// Stops early, without losing anything, when fewer than [`EVENTS_RESERVE`] slots remain.
    pub fn feed<'a>(&mut self, input: &'a [u8], out: &mut Events<'a>) -> Fed {
        let mut run = 0;
        for (i, &b) in input.iter().enumerate() {
            let next = match (self.position, b) {
                (Position::LineStart, b'.') => {
                    if out.capacity() - out.len() < EVENTS_RESERVE {
                        self.emit(&input[run..i], out);
                        return Fed {
                            consumed: i,
                            end: None,
                        };
                    }
                    // Dot-unstuffing: the dot is not content.
                    self.emit(&input[run..i], out);
                    run = i + 1;
                    Position::Dot
                }
                (Position::Dot, b'\r') => {
                    // Held back: content only if LF does not follow, and then it is a bare
                    // CR and the message is rejected anyway.
                    run = i + 1;
                    Position::DotCr
                }
                (Position::DotCr, b'\n') => {
                    self.position = Position::LineStart;
                    return Fed {
                        consumed: i + 1,
                        end: Some(DataEnd::Complete),
                    };
                }
                (Position::Cr, b'\n') => Position::LineStart,
                (Position::Cr | Position::DotCr, _) | (_, b'\n') => {
                    self.emit(&input[run..i], out);
                    return Fed {
                        consumed: i + 1,
                        end: Some(DataEnd::BareNewline),
                    };
                }
                (_, b'\r') => Position::Cr,
                _ => Position::Mid,
            };
            self.position = next;
        }
        self.emit(&input[run..], out);
        Fed {
            consumed: input.len(),
            end: None,
        }
    }

    fn emit<'a>(&mut self, piece: &'a [u8], out: &mut Events<'a>) {
        if piece.is_empty() || self.aborted() {
            return;
        }
        self.count_hops(piece);
        let event = if self.hops.count > HOPS_MAX {
            self.hops.looped = true;
            Event::MessageAborted(AbortReason::TooManyHops)
        } else {
            match self.size.checked_add(piece.len() as u64) {
                Some(size) if size <= self.max_size => {
                    self.size = size;
                    Event::Body(piece)
                }
                _ => {
                    self.too_big = true;
                    Event::MessageAborted(AbortReason::TooBig)
                }
            }
        };
        // Cannot fail: feed() keeps EVENTS_RESERVE slots free and uses at most two of them
        // before returning. Dropping a piece would only ever shorten an aborted message.
        let _ = out.push(event);
    }

    /// Counts `Received:` at the start of header lines. Lines end in CRLF (a bare LF ends
    /// the receiver before it gets here), so a line that is only CR ends the header.
    fn count_hops(&mut self, piece: &[u8]) {
        let h = &mut self.hops;
        if !h.in_header {
            return;
        }
        for &b in piece {
            if b == b'\n' {
                if h.col <= 1 {
                    h.in_header = false;
                    return;
                }
                h.col = 0;
                h.matching = true;
                continue;
            }
            if h.matching && h.col < RECEIVED.len() {
                h.matching = b.to_ascii_lowercase() == RECEIVED[h.col];
                if h.matching && h.col == RECEIVED.len() - 1 {
                    h.count = h.count.saturating_add(1);
                }
            }
            h.col = h.col.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` in order; return the content, the end and the total consumed.
    fn run(chunks: &[&[u8]], max: u64) -> (Vec<u8>, Option<DataEnd>, bool, usize) {
        let mut rx = DataReceiver::new(max);
        let mut body = Vec::new();
        let mut consumed_total = 0;
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                let mut out = Events::new();
                let fed = rx.feed(rest, &mut out);
                for e in &out {
                    if let Event::Body(b) = e {
                        body.extend_from_slice(b);
                    }
                }
                consumed_total += fed.consumed;
                if fed.end.is_some() {
                    return (body, fed.end, rx.too_big(), consumed_total);
                }
                rest = &rest[fed.consumed..];
            }
        }
        (body, None, rx.too_big(), consumed_total)
    }

    #[test]
    fn crlf_dot_crlf_ends_and_dots_are_unstuffed() {
        let wire: &[u8] = b"Subject: x\r\n\r\n..leading\r\n.x\r\nend\r\n.\r\nQUIT\r\n";
        let (body, end, _, n) = run(&[wire], 1000);
        assert_eq!(body, b"Subject: x\r\n\r\n.leading\r\nx\r\nend\r\n");
        assert_eq!(end, Some(DataEnd::Complete));
        assert_eq!(
            n,
            wire.len() - b"QUIT\r\n".len(),
            "stops right after the terminator"
        );
    }

    #[test]
    fn empty_message_is_just_the_dot() {
        let (body, end, _, _) = run(&[b".\r\n"], 1000);
        assert_eq!(body, b"");
        assert_eq!(end, Some(DataEnd::Complete));
    }

    /// Every end-of-data look-alike that other MTAs have accepted (SMTP smuggling, 2023):
    /// each must be refused as a bare newline, never taken as the end.
    #[test]
    fn smuggling_variants_are_rejected_not_taken_as_the_end() {
        let variants: &[&[u8]] = &[
            b"a\n.\nMAIL FROM:<x@evil>\r\n",
            b"a\n.\r\nMAIL FROM:<x@evil>\r\n",
            b"a\r\n.\nMAIL FROM:<x@evil>\r\n",
            b"a\r.\rMAIL FROM:<x@evil>\r\n",
            b"a\r.\r\nMAIL FROM:<x@evil>\r\n",
            b"a\r\n.\rMAIL FROM:<x@evil>\r\n",
            b"a\n\r\n.\r\n",
            b"a\r\r\n.\r\n",
            b"\n.\r\n",
            b".\n",
            b".\r\r\n",
            b"a\rb\r\n.\r\n",
            b"a\nb\r\n.\r\n",
        ];
        for v in variants {
            let (_, end, _, _) = run(&[v], 1000);
            assert_eq!(
                end,
                Some(DataEnd::BareNewline),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_content() {
        let msg: &[u8] = b"A: b\r\n\r\n..x\r\n.\r\r\n";
        let whole = run(&[msg], 1000);
        let bytes: Vec<&[u8]> = msg.chunks(1).collect();
        assert_eq!(run(&bytes, 1000), whole);
        let msg: &[u8] = b"A: b\r\n\r\n..x\r\n.y\r\n.\r\n";
        let whole = run(&[msg], 1000);
        let bytes: Vec<&[u8]> = msg.chunks(1).collect();
        assert_eq!(run(&bytes, 1000), whole);
        assert_eq!(whole.0, b"A: b\r\n\r\n.x\r\ny\r\n");
    }

    #[test]
    fn size_limit_aborts_while_streaming_but_reads_to_the_end() {
        let (body, end, too_big, _) = run(&[b"0123456789\r\n", b"0123456789\r\n", b".\r\n"], 15);
        assert_eq!(body, b"0123456789\r\n", "nothing past the limit is emitted");
        assert!(too_big);
        assert_eq!(end, Some(DataEnd::Complete));
    }

    #[test]
    fn many_dot_lines_stop_early_and_resume_without_loss() {
        let mut msg = Vec::new();
        for _ in 0..200 {
            msg.extend_from_slice(b"..\r\n");
        }
        msg.extend_from_slice(b".\r\n");
        let (body, end, _, n) = run(&[&msg], 10_000);
        assert_eq!(body, b".\r\n".repeat(200));
        assert_eq!(end, Some(DataEnd::Complete));
        assert_eq!(n, msg.len());
    }
}
