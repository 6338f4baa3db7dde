//! Outbound message content: dot-stuffing and the smuggling guard (RFC 5321 §4.5.2).
//!
//! # Contract
//!
//! - A line starting with `.` goes out with one more `.` in front; a body split anywhere
//!   across [`DotStuffer::encode`] calls gives the same output as the whole body at once.
//! - **Bare CR or LF are refused, never sent and never normalised.** The spool only holds
//!   content our own server session accepted, and that session rejects bare newlines, so one
//!   here means damage or a bug; sending it could let the next hop see a message end we did
//!   not intend (SMTP smuggling). Refusing — rather than "fixing" to CRLF — keeps what
//!   leaves byte-identical to what was accepted. The encoder stops at the offending byte
//!   with [`BareNewline`]; the client then aborts the connection without the final dot, so
//!   the next hop discards the partial message.
//! - [`DotStuffer::finish`] ends the content with `CRLF . CRLF`, adding the CRLF only when
//!   the content did not already end with one (RFC 5321 §4.1.1.4).
//! - Output goes into a caller buffer; the encoder never writes past its end and reports how
//!   much input it consumed.

use core::fmt;

/// The content holds a CR not followed by LF or an LF not preceded by CR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BareNewline;

impl fmt::Display for BareNewline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bare CR or LF in the message content; not sent")
    }
}

impl std::error::Error for BareNewline {}

/// Encodes one message's content for the DATA phase.
#[derive(Clone, Copy, Debug)]
pub struct DotStuffer {
    line_start: bool,
    cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self {
            line_start: true,
            cr: false,
        }
    }
}

impl DotStuffer {
    /// Encode as much of `input` as fits into `out`; returns `(consumed, written)`.
    /// At most two output octets per input octet, so `out` of two octets always progresses.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), BareNewline> {
        let (mut i, mut w) = (0, 0);
        while i < input.len() {
            let b = input[i];
            if !self.cr && !self.line_start && b != b'\r' && b != b'\n' {
                // Inside a line: copy the run up to the next CR or LF as it is.
                let run = input[i..]
                    .iter()
                    .position(|&c| c == b'\r' || c == b'\n')
                    .unwrap_or(input.len() - i);
                let n = run.min(out.len() - w);
                if n == 0 {
                    return Ok((i, w));
                }
                out[w..w + n].copy_from_slice(&input[i..i + n]);
                (i, w) = (i + n, w + n);
                continue;
            }
            if self.cr != (b == b'\n') {
                return Err(BareNewline);
            }
            let stuff = self.line_start && b == b'.';
            let need = if stuff { 2 } else { 1 };
            if out.len() - w < need {
                return Ok((i, w));
            }
            if stuff {
                out[w] = b'.';
                w += 1;
            }
            out[w] = b;
            w += 1;
            self.cr = b == b'\r';
            self.line_start = b == b'\n';
            i += 1;
        }
        Ok((input.len(), w))
    }

    /// The end-of-data sequence to write after the content.
    pub fn finish(&self) -> Result<&'static [u8], BareNewline> {
        match (self.cr, self.line_start) {
            (true, _) => Err(BareNewline),
            (false, true) => Ok(b".\r\n"),
            (false, false) => Ok(b"\r\n.\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encode `chunks` through an output buffer of `out_size`, like a host with a small
    /// socket buffer; returns the wire form including the end sequence.
    fn wire(chunks: &[&[u8]], out_size: usize) -> Result<Vec<u8>, BareNewline> {
        let mut enc = DotStuffer::default();
        let mut wire = Vec::new();
        let mut out = vec![0u8; out_size];
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (n, w) = enc.encode(rest, &mut out)?;
                wire.extend_from_slice(&out[..w]);
                rest = &rest[n..];
            }
        }
        wire.extend_from_slice(enc.finish()?);
        Ok(wire)
    }

    #[test]
    fn leading_dots_are_doubled_and_the_end_is_added() {
        let body: &[u8] = b"Subject: x\r\n\r\n.\r\n..two\r\na.b\r\n.";
        assert_eq!(
            wire(&[body], 4096).unwrap(),
            b"Subject: x\r\n\r\n..\r\n...two\r\na.b\r\n..\r\n.\r\n"
        );
        assert_eq!(wire(&[b""], 16).unwrap(), b".\r\n");
        assert_eq!(wire(&[b"x\r\n"], 16).unwrap(), b"x\r\n.\r\n");
    }

    #[test]
    fn long_lines_are_copied_whole_and_bare_newlines_inside_them_are_refused() {
        let line = "x".repeat(5000);
        let body = format!("{line}\r\n.{line}\r\n{line}");
        let want = format!("{line}\r\n..{line}\r\n{line}\r\n.\r\n");
        for out_size in [2, 3, 1000, 4096, 20_000] {
            assert_eq!(wire(&[body.as_bytes()], out_size).unwrap(), want.as_bytes());
        }
        assert_eq!(wire(&[b"abc\ndef\r\n"], 4096), Err(BareNewline));
        assert_eq!(wire(&[b"abc\rdef\r\n"], 4096), Err(BareNewline));
        assert_eq!(wire(&[b"abc\r", b"def\r\n"], 4096), Err(BareNewline));
    }

    #[test]
    fn any_split_and_any_output_size_give_the_same_wire() {
        let body: &[u8] = b"a\r\n.b\r\n\r\n..\r\n.\r\nend";
        let whole = wire(&[body], 4096).unwrap();
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            for out_size in [2, 3, 7] {
                assert_eq!(wire(&[a, b], out_size).unwrap(), whole, "split {split}");
            }
        }
    }

    #[test]
    fn bare_newlines_are_refused_even_across_chunks() {
        for chunks in [
            &[&b"a\nb\r\n"[..]][..],
            &[b"a\rb\r\n"],
            &[b"a\r", b"b\r\n"],
            &[b"a\r\n\n"],
            &[b"a\r"],
            &[b"\n.\n"],
        ] {
            assert_eq!(wire(chunks, 64), Err(BareNewline), "{chunks:?}");
        }
    }
}
