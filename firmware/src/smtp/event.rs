//! What a [`Session`](super::Session) asks of its host.

use core::fmt;

use super::limits::{BEACON_ARG_MAX, ETRN_ARG_MAX, EVENTS_MAX};
use super::reply::Reply;

/// The caller-supplied output of one [`Session::input`](super::Session::input) call.
pub type Events<'a> = heapless::Vec<Event<'a>, EVENTS_MAX>;

/// One thing the host must do, in order.
#[derive(Debug, PartialEq, Eq)]
// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
pub enum Event<'a> {
    /// Write these bytes to the peer.
    Reply(Reply),
    /// Write the preceding replies, flush, then do the TLS handshake (RFC 3207 §4.2). Any
    /// plaintext the host has read but the session has not consumed MUST be dropped
    /// (CVE-2011-0411); call [`Session::tls_established`](super::Session::tls_established)
    /// once the handshake is done.
    StartTls,
    /// A message starts: open a spool entry, write
    /// [`Session::envelope`](super::Session::envelope)`().received` first.
    MessageBegin,
    /// The next piece of message content, CRLFs exactly as on the wire, dots unstuffed.
    /// Borrowed from the input buffer, so its size is bounded by the host's read size.
    Body(&'a [u8]),
    /// The message is complete: make it durable, then call
    /// [`Session::stored`](super::Session::stored). Input is not consumed until then.
    MessageEnd,
    /// Discard the partial message; the session sends the reply itself.
    MessageAborted(AbortReason),
    /// `ETRN node` (RFC 1985): start delivery for `node`, then write
    /// [`Reply::etrn`] for the outcome.
    Etrn(heapless::String<ETRN_ARG_MAX>),
    /// `XBEACON line`: a router's heartbeat; the host checks it and writes the reply
    /// (250 taken, 501/554 refused, 502 when this instance watches no routers).
    Beacon(heapless::String<BEACON_ARG_MAX>),
    /// A recipient waits for the host's checks (only with
    /// [`SessionConfig::rcpt_checks`](super::SessionConfig)): read it with
    /// [`Session::pending_recipient`](super::Session::pending_recipient) — with the policy's
    /// refusal, if any — and answer with
    /// [`Session::rcpt_checked`](super::Session::rcpt_checked). Input is not consumed until then.
    RcptCheck(Option<crate::policy::Refusal>),
    /// Write the preceding replies, then close the connection.
    Close,
}

/// Why a message in progress was abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortReason {
    /// Over the size limit (RFC 1870 §6.3: 552 after the final dot).
    TooBig,
    /// A bare CR or LF, which could smuggle a second message (the session closes).
    BareNewline,
    /// The session timed out.
    Timeout,
    /// More `Received:` fields than [`HOPS_MAX`](super::data::HOPS_MAX): a mail loop
    /// (RFC 5321 §6.3; 554 5.4.6 after the final dot).
    TooManyHops,
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooBig => "message too big",
            Self::BareNewline => "bare CR or LF in message",
            Self::Timeout => "timeout",
            Self::TooManyHops => "too many hops (mail loop)",
        })
    }
}
