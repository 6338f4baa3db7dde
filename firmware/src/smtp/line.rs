//! The command line receiver: bytes → one CRLF-terminated line at a time, bounded.
//!
//! A line is at most [`COMMAND_LINE_MAX`] octets with its CRLF (RFC 5321 §4.5.3.1.4); a
//! longer one is discarded up to its CRLF and reported as [`LineStatus::TooLong`], never
//! grown. As in the DATA receiver, a CR not followed by LF or an LF not preceded by CR is
//! [`LineStatus::BareNewline`]: commands and content obey one line-ending rule.

use super::limits::COMMAND_LINE_MAX;

/// Where the receiver stands after a [`LineReceiver::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineStatus {
    /// All input consumed, no complete line yet.
    Partial,
    /// [`LineReceiver::line`] holds a complete line.
    Ready,
    /// A line over the limit ended; it was discarded.
    TooLong,
    /// A bare CR or LF.
    BareNewline,
}

/// Collects one command line.
#[derive(Debug, Default)]
pub struct LineReceiver {
    buf: heapless::Vec<u8, { COMMAND_LINE_MAX - 2 }>,
    cr: bool,
    overflow: bool,
}

impl LineReceiver {
    /// Consume input up to and including the next line end; returns bytes consumed.
    pub fn feed(&mut self, input: &[u8]) -> (usize, LineStatus) {
        for (i, &b) in input.iter().enumerate() {
            let status = match (self.cr, b) {
                (true, b'\n') if self.overflow => Some(LineStatus::TooLong),
                (true, b'\n') => Some(LineStatus::Ready),
                (true, _) | (false, b'\n') => Some(LineStatus::BareNewline),
                (false, b'\r') => {
                    self.cr = true;
                    None
                }
                (false, _) => {
                    if !self.overflow && self.buf.push(b).is_err() {
                        self.overflow = true;
                    }
                    None
                }
            };
            if let Some(status) = status {
                self.cr = false;
                self.overflow = false;
                if status != LineStatus::Ready {
                    self.buf.clear();
                }
                return (i + 1, status);
            }
        }
        (input.len(), LineStatus::Partial)
    }

    /// The complete line, CRLF removed (valid after [`LineStatus::Ready`]).
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Forget the current line (after handling it).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// True when part of a line is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && !self.cr && !self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_split_anywhere_comes_out_whole() {
        let mut rx = LineReceiver::default();
        assert_eq!(rx.feed(b"NO"), (2, LineStatus::Partial));
        assert_eq!(rx.feed(b"OP\r"), (3, LineStatus::Partial));
        assert_eq!(rx.feed(b"\nQUIT\r\n"), (1, LineStatus::Ready));
        assert_eq!(rx.line(), b"NOOP");
    }

    #[test]
    fn bare_newlines_are_reported() {
        for input in [&b"NOOP\n"[..], b"NOOP\rX", b"NO\rOP\r\n"] {
            let mut rx = LineReceiver::default();
            assert_eq!(rx.feed(input).1, LineStatus::BareNewline, "{input:?}");
        }
    }

    #[test]
    fn an_overlong_line_is_discarded_up_to_its_end() {
        let mut rx = LineReceiver::default();
        let long = vec![b'x'; COMMAND_LINE_MAX * 3];
        assert_eq!(rx.feed(&long), (long.len(), LineStatus::Partial));
        assert_eq!(rx.feed(b"\r\nNOOP\r\n"), (2, LineStatus::TooLong));
        assert!(rx.is_empty());
        assert_eq!(rx.feed(b"NOOP\r\n"), (6, LineStatus::Ready));
        assert_eq!(rx.line(), b"NOOP");
    }

    #[test]
    fn the_longest_allowed_line_fits() {
        let mut rx = LineReceiver::default();
        let mut line = vec![b'x'; COMMAND_LINE_MAX - 2];
        line.extend_from_slice(b"\r\n");
        assert_eq!(rx.feed(&line).1, LineStatus::Ready);
        let mut rx = LineReceiver::default();
        line.insert(0, b'x');
        assert_eq!(rx.feed(&line).1, LineStatus::TooLong);
    }
}
