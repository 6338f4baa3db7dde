//! The DATA phase: content streams through the bounded output buffer, dot-stuffed, and
//! the final dot always fits.

use embassy_time::Instant;

use super::{Client, DATA_BLOCK_TIMEOUT, DATA_END_TIMEOUT, FailReason, OUTPUT_MAX, State};
use crate::relay::dotstuff::BareNewline;

/// Octets kept free during the content for `CRLF . CRLF`.
const TERMINATOR_MAX: usize = 5;

impl Client<'_> {
    /// Content for the DATA phase, after [`ClientAction::SendBody`]: encodes as much of `chunk`
    /// as fits into the output buffer and returns how much was consumed. The host writes
    /// [`Client::output`] and feeds the rest. A bare CR or LF ends the session
    /// ([`FailReason::BareNewline`], permanent) and consumes everything.
    pub fn body(&mut self, chunk: &[u8], now: Instant) -> usize {
        self.now = now;
        let State::Body(stuffer) = &mut self.state else {
            return chunk.len();
        };
        let start = self.out.len();
        // Cannot fail: the length never exceeds OUTPUT_MAX.
        let _ = self.out.resize(OUTPUT_MAX, 0);
        // Room for the terminator stays free, so body_end() always fits.
        let end = OUTPUT_MAX.saturating_sub(TERMINATOR_MAX).max(start);
        let result = stuffer.encode(chunk, &mut self.out[start..end]);
        match result {
            Ok((consumed, written)) => {
                self.out.truncate(start + written);
                self.deadline = Some(now.saturating_add(DATA_BLOCK_TIMEOUT));
                consumed
            }
            Err(BareNewline) => {
                self.out.truncate(start);
                self.fail(true, FailReason::BareNewline, None, false);
                chunk.len()
            }
        }
    }

    /// All content was given to [`Client::body`]: send the final dot.
    pub fn body_end(&mut self, now: Instant) {
        self.now = now;
        let State::Body(stuffer) = &self.state else {
            return;
        };
        match stuffer.finish() {
            Ok(end) => {
                // Cannot overflow: body() leaves TERMINATOR_MAX octets free.
                let _ = self.out.extend_from_slice(end);
                self.state = State::DataEnd;
                self.deadline = Some(now.saturating_add(DATA_END_TIMEOUT));
            }
            Err(BareNewline) => self.fail(true, FailReason::BareNewline, None, false),
        }
    }
}
