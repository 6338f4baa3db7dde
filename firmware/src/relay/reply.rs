//! Replies from the next hop, parsed strictly (RFC 5321 §4.2, RFC 3463 enhanced codes).
//!
//! # Contract
//!
//! - A reply line ends with CRLF only; a bare CR or LF, a line over [`REPLY_LINE_MAX`]
//!   octets, a code that is not three digits in `200..=599`, a fourth octet other than
//!   space or `-`, a multi-line reply whose lines disagree on the code, or more than
//!   [`REPLY_LINES_MAX`] lines is a [`ReplyError`] — the client then gives up on the
//!   connection (temporary failure), because it can no longer tell which reply answers what.
//! - Nothing grows: the reader holds one line (the server's [`LineReceiver`]) and the last
//!   line's text, cut to [`REPLY_TEXT_MAX`] octets at a character boundary.
//! - Lines are handed out one at a time so that EHLO keywords can be read without keeping
//!   the whole reply.

use core::fmt;

use crate::smtp::line::{LineReceiver, LineStatus};
use crate::spool::message::ERROR_MAX;

/// Longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
pub const REPLY_LINE_MAX: usize = 512;
/// Most lines in one multi-line reply (an EHLO reply has about a dozen).
pub const REPLY_LINES_MAX: u32 = 64;
/// Reply text kept for the queue's last-error and for bounces (the spool keeps this much).
pub const REPLY_TEXT_MAX: usize = ERROR_MAX;

/// A complete reply as kept: its code and the text of its last line, e.g.
/// `550 5.1.1 <u@example.com>: user unknown`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerReply {
    code: u16,
    text: heapless::String<REPLY_TEXT_MAX>,
}

impl ServerReply {
    /// A reply with this code and last-line text (as it appears on the wire, code included).
    pub fn new(code: u16, text: &str) -> Self {
        let mut kept = heapless::String::new();
        let mut end = text.len().min(REPLY_TEXT_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        // Cannot fail: `end <= REPLY_TEXT_MAX`.
        let _ = kept.push_str(&text[..end]);
        Self { code, text: kept }
    }

    /// The three-digit code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The last line, code and enhanced code included (no CRLF).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx: do not retry.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code `class.subject.detail` (RFC 3463), when the server sent one
    /// whose class matches the reply code.
    pub fn enhanced(&self) -> Option<(u8, u16, u16)> {
        let rest = self.text.get(4..)?;
        let word = rest.split(' ').next()?;
        let mut parts = word.split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        let subject: u16 = parts.next()?.parse().ok()?;
        let detail: u16 = parts.next()?.parse().ok()?;
        let matches = u16::from(class) == self.code / 100 && (2..=5).contains(&class);
        (matches && parts.next().is_none() && subject < 1000 && detail < 1000)
            .then_some((class, subject, detail))
    }
}

impl fmt::Debug for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerReply({:?})", self.text.as_str())
    }
}

impl fmt::Display for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why the server's output could not be read as replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A bare CR or LF.
    BareNewline,
    /// A line over [`REPLY_LINE_MAX`].
    TooLong,
    /// Not `ddd`, `ddd text` or `ddd-text` with a code in 200..=599.
    Syntax,
    /// The lines of one reply carry different codes.
    CodeChanged,
    /// More than [`REPLY_LINES_MAX`] lines.
    TooManyLines,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BareNewline => "bare CR or LF in a reply",
            Self::TooLong => "reply line too long",
            Self::Syntax => "malformed reply line",
            Self::CodeChanged => "reply code changed within a multi-line reply",
            Self::TooManyLines => "too many lines in one reply",
        })
    }
}

impl std::error::Error for ReplyError {}

/// One reply line.
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// The code.
    pub code: u16,
    /// True for the last line (`ddd ` or bare `ddd`).
    pub last: bool,
    /// Text after the code and separator.
    pub text: &'a str,
    /// The whole line, code included.
    pub line: &'a str,
    /// 1 for the first line of the reply.
    pub number: u32,
}

/// Splits the server's byte stream into reply lines.
#[derive(Debug, Default)]
pub struct ReplyReader {
    line: LineReceiver,
    /// Code and line count of a multi-line reply in progress.
    open: Option<(u16, u32)>,
    /// The line receiver still holds the line handed out last time.
    handed_out: bool,
}

impl ReplyReader {
    /// Consume input up to the end of the next line. Returns the bytes consumed and, when a
    /// line is complete, the line (valid until the next call).
    pub fn feed(&mut self, input: &[u8]) -> (usize, Result<Option<ReplyLine<'_>>, ReplyError>) {
        if core::mem::take(&mut self.handed_out) {
            self.line.clear();
        }
        let (n, status) = self.line.feed(input);
        let result = match status {
            LineStatus::Partial => Ok(None),
            LineStatus::BareNewline => Err(ReplyError::BareNewline),
            LineStatus::TooLong => Err(ReplyError::TooLong),
            LineStatus::Ready if self.line.line().len() + 2 > REPLY_LINE_MAX => {
                self.line.clear();
                Err(ReplyError::TooLong)
            }
            LineStatus::Ready => {
                self.handed_out = true;
                self.parse()
            }
        };
        (n, result)
    }

    fn parse(&mut self) -> Result<Option<ReplyLine<'_>>, ReplyError> {
        let bytes = self.line.line();
        // Servers may send UTF-8 text (RFC 6531 §3.7.4); anything else is kept lossily by
        // refusing it as syntax rather than guessing.
        let line = core::str::from_utf8(bytes).map_err(|_| ReplyError::Syntax)?;
        let digits = line.get(..3).ok_or(ReplyError::Syntax)?;
        let first = digits.as_bytes()[0];
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&first) {
            return Err(ReplyError::Syntax);
        }
        let code: u16 = digits.parse().map_err(|_| ReplyError::Syntax)?;
        let (last, text) = match line.as_bytes().get(3) {
            None => (true, ""),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(ReplyError::Syntax),
        };
        let number = match self.open {
            Some((open_code, _)) if open_code != code => return Err(ReplyError::CodeChanged),
            Some((_, n)) if n >= REPLY_LINES_MAX => return Err(ReplyError::TooManyLines),
            Some((_, n)) => n + 1,
            None => 1,
        };
        self.open = (!last).then_some((code, number));
        Ok(Some(ReplyLine {
            code,
            last,
            text,
            line,
            number,
        }))
    }

    /// Forget everything buffered (after STARTTLS: plaintext read before the handshake must
    /// not be taken as a reply, CVE-2011-0411 in the client direction).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All lines of `wire`, owned, or the first error.
    fn lines(wire: &[u8]) -> Result<Vec<(u16, bool, String)>, ReplyError> {
        let mut rx = ReplyReader::default();
        let mut rest = wire;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (n, r) = rx.feed(rest);
            if let Some(l) = r? {
                out.push((l.code, l.last, l.text.to_string()));
            }
            rest = &rest[n..];
        }
        Ok(out)
    }

    #[test]
    fn single_and_multi_line_replies() {
        let got = lines(b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n221\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                (250, false, "mx.example".into()),
                (250, false, "PIPELINING".into()),
                (250, true, "SIZE 1000".into()),
                (221, true, String::new()),
            ]
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_guesses() {
        let cases: &[(&[u8], ReplyError)] = &[
            (b"250 ok\n", ReplyError::BareNewline),
            (b"250 o\rk\r\n", ReplyError::BareNewline),
            (b"25 ok\r\n", ReplyError::Syntax),
            (b"abc ok\r\n", ReplyError::Syntax),
            (b"150 ok\r\n", ReplyError::Syntax),
            (b"650 ok\r\n", ReplyError::Syntax),
            (b"250+ok\r\n", ReplyError::Syntax),
            (b"250-a\r\n251 b\r\n", ReplyError::CodeChanged),
            (b"250 \xff\r\n", ReplyError::Syntax),
        ];
        for (wire, want) in cases {
            assert_eq!(
                lines(wire),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = format!("250 {}\r\n", "x".repeat(REPLY_LINE_MAX));
        assert_eq!(lines(long.as_bytes()), Err(ReplyError::TooLong));
        let endless = "250-x\r\n".repeat(REPLY_LINES_MAX as usize + 1);
        assert_eq!(lines(endless.as_bytes()), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn enhanced_codes_are_kept_and_checked() {
        let r = ServerReply::new(550, "550 5.1.1 <u@example.com>: user unknown");
        assert_eq!(r.enhanced(), Some((5, 1, 1)));
        assert!(r.is_permanent());
        assert_eq!(ServerReply::new(451, "451 try later").enhanced(), None);
        assert_eq!(ServerReply::new(451, "451 5.1.1 mismatch").enhanced(), None);
        let long = ServerReply::new(550, &format!("550 5.0.0 {}", "é".repeat(300)));
        assert!(long.text().len() <= REPLY_TEXT_MAX);
    }
}
