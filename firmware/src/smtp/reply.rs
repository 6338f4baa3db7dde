//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034).
//!
//! A [`Reply`] holds its exact wire form (every line CRLF-terminated) in a fixed buffer of
//! [`REPLY_MAX`] octets, so the host writes `reply.as_bytes()` and nothing else. Text that
//! would not fit is cut at a line boundary; the builders below never come close.

use core::fmt::{self, Write as _};

use super::limits::REPLY_MAX;

/// One (possibly multi-line) SMTP reply.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    wire: heapless::String<REPLY_MAX>,
}

impl Reply {
    /// A single-line reply: `code enhanced text` (RFC 5321 §4.2, RFC 2034 §4).
    pub fn new(code: u16, enhanced: &str, text: fmt::Arguments<'_>) -> Self {
        let mut reply = Self::empty(code);
        reply.push_line(true, enhanced, text);
        reply
    }

    /// A multi-line reply: every line but the last uses `code-` (RFC 5321 §4.2.1).
    /// Used for EHLO, whose lines carry no enhanced code (RFC 2034 §6).
    pub fn multiline(code: u16, lines: &[&str]) -> Self {
        let mut reply = Self::empty(code);
        for (i, line) in lines.iter().enumerate() {
            reply.push_line(i + 1 == lines.len(), "", format_args!("{line}"));
        }
        reply
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// Exactly what goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        self.wire.as_bytes()
    }

    /// The wire form as text (replies are always ASCII or, with SMTPUTF8, UTF-8).
    pub fn as_str(&self) -> &str {
        &self.wire
    }

    /// 4xx: the client should retry later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: the client must not retry.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    fn empty(code: u16) -> Self {
        Self {
            code,
            wire: heapless::String::new(),
        }
    }

    fn push_line(&mut self, last: bool, enhanced: &str, text: fmt::Arguments<'_>) {
        let mut line: heapless::String<REPLY_MAX> = heapless::String::new();
        let sep = if last { ' ' } else { '-' };
        // A line that does not fit is dropped whole; a reply must stay well-formed.
        let fits = if enhanced.is_empty() {
            write!(line, "{}{sep}{text}\r\n", self.code)
        } else {
            write!(line, "{}{sep}{enhanced} {text}\r\n", self.code)
        };
        let pushed = fits.is_ok() && self.wire.push_str(&line).is_ok();
        if !pushed && last {
            // Keep the reply parseable: the final line must exist even when text overflowed.
            self.wire.clear();
            let _ = write!(self.wire, "{} {enhanced} reply truncated\r\n", self.code);
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({:?})", self.wire.as_str())
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire.trim_end())
    }
}

/// Outcome of an ETRN request, as decided by the host (RFC 1985 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtrnOutcome {
    /// `250 OK, queuing for node <x> started`.
    Started,
    /// `251 OK, no messages waiting for node <x>`.
    NothingWaiting,
    /// `458 Unable to queue messages for node <x>`.
    Unable,
    /// `459 Node <x> not allowed`.
    NotAllowed,
}

impl Reply {
    /// The reply to `ETRN <node>` (RFC 1985 §5); the host builds it after [`Event::Etrn`].
    ///
    /// [`Event::Etrn`]: super::Event::Etrn
    pub fn etrn(outcome: EtrnOutcome, node: &str) -> Self {
        match outcome {
            EtrnOutcome::Started => Self::new(
                250,
                "2.0.0",
                format_args!("OK, queuing for node {node} started"),
            ),
            EtrnOutcome::NothingWaiting => Self::new(
                251,
                "2.0.0",
                format_args!("OK, no messages waiting for node {node}"),
            ),
            EtrnOutcome::Unable => Self::new(
                458,
                "4.0.0",
                format_args!("Unable to queue messages for node {node}"),
            ),
            EtrnOutcome::NotAllowed => {
                Self::new(459, "5.7.1", format_args!("Node {node} not allowed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_has_code_enhanced_code_and_crlf() {
        let r = Reply::new(250, "2.0.0", format_args!("Ok"));
        assert_eq!(r.as_bytes(), b"250 2.0.0 Ok\r\n");
        assert_eq!(r.code(), 250);
    }

    #[test]
    fn multiline_uses_dash_on_all_but_last() {
        let r = Reply::multiline(250, &["mx.example", "PIPELINING", "8BITMIME"]);
        assert_eq!(
            r.as_str(),
            "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }

    #[test]
    fn overlong_text_still_gives_a_parseable_reply() {
        let long = "x".repeat(REPLY_MAX * 2);
        let r = Reply::new(550, "5.0.0", format_args!("{long}"));
        assert!(r.as_str().starts_with("550 5.0.0 "));
        assert!(r.as_str().ends_with("\r\n"));
    }

    #[test]
    fn etrn_replies_follow_rfc_1985() {
        assert_eq!(Reply::etrn(EtrnOutcome::Started, "example.com").code(), 250);
        assert_eq!(
            Reply::etrn(EtrnOutcome::NothingWaiting, "example.com").code(),
            251
        );
        assert_eq!(Reply::etrn(EtrnOutcome::Unable, "example.com").code(), 458);
        assert_eq!(
            Reply::etrn(EtrnOutcome::NotAllowed, "example.com").code(),
            459
        );
    }
}
