//! What the session asks of the host ([`ClientAction`]) and what came of it ([`Outcome`]): per
//! recipient ([`RcptResult`]) or for the whole attempt ([`Failure`]).

use core::fmt;

use super::dispatch::Extensions;
use crate::relay::dotstuff::BareNewline;
use crate::relay::reply::{ReplyError, ServerReply};
use crate::spool::message::RECIPIENTS_MAX;

/// What the session asks of the host, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Write all output, drop every byte read but not consumed, do the TLS handshake, then
    /// call [`Client::tls_established`](super::Client::tls_established) or [`Client::tls_failed`](super::Client::tls_failed).
    StartTls,
    /// The next hop said 354: stream the content with [`Client::body`](super::Client::body), then call
    /// [`Client::body_end`](super::Client::body_end).
    SendBody,
    /// [`Client::outcome`](super::Client::outcome) is final: record it now (the QUIT exchange may still follow).
    Done,
    /// Write all output, then close the connection.
    Close,
}

/// What happened to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptResult {
    /// The next hop took responsibility (RCPT and end of data both 2xx).
    Delivered,
    /// 4xx: keep it queued and retry.
    Deferred(ServerReply),
    /// 5xx: bounce it.
    Bounced(ServerReply),
}

/// Why a whole attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The 220 greeting was refused.
    Greeting,
    /// EHLO and HELO were both refused.
    Helo,
    /// RSET before the next message on a kept connection was refused.
    Rset,
    /// TLS is required but the next hop does not offer STARTTLS.
    TlsNotOffered,
    /// TLS is required but STARTTLS was refused.
    TlsRefused,
    /// The TLS handshake failed.
    TlsHandshake,
    /// `require-verify`, but the certificate did not verify.
    TlsUnverified,
    /// MAIL FROM was refused.
    Mail,
    /// The message needs SMTPUTF8 (RFC 6531 §3.2) and the next hop lacks it.
    Smtputf8,
    /// DATA was refused.
    Data,
    /// ETRN was refused (458 unable, 459 not allowed, 5xx unknown).
    Etrn,
    /// The beacon was refused (or the silo does not know XBEACON).
    Beacon,
    /// The next hop did not answer in time.
    Timeout,
    /// The next hop's output was not valid SMTP.
    Protocol(ReplyError),
    /// A reply arrived when none was expected.
    Unexpected,
    /// The next hop closed the connection.
    Closed,
    /// No connection could be made to the next hop (refused, unreachable, no address).
    Connect,
    /// The content holds a bare CR or LF; it was not sent.
    BareNewline,
    /// An envelope address holds a control character or bracket; it was not sent.
    BadAddress,
    /// No next hop for the domain (DNS, null MX, or only ourselves).
    NoRoute(crate::relay::nexthop::MxError),
    /// No next hop is configured for the domain (the mail is held).
    Unrouted,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Greeting => f.write_str("greeting refused"),
            Self::Helo => f.write_str("EHLO and HELO refused"),
            Self::Rset => f.write_str("RSET refused"),
            Self::TlsNotOffered => f.write_str("TLS required but STARTTLS not offered"),
            Self::TlsRefused => f.write_str("TLS required but STARTTLS refused"),
            Self::TlsHandshake => f.write_str("TLS handshake failed"),
            Self::TlsUnverified => f.write_str("TLS certificate not verified"),
            Self::Mail => f.write_str("sender refused"),
            Self::Smtputf8 => f.write_str("message needs SMTPUTF8, next hop lacks it"),
            Self::Data => f.write_str("DATA refused"),
            Self::Etrn => f.write_str("ETRN refused"),
            Self::Beacon => f.write_str("beacon refused"),
            Self::Timeout => f.write_str("timeout waiting for the next hop"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Unexpected => f.write_str("protocol error: unexpected reply"),
            Self::Closed => f.write_str("connection closed by the next hop"),
            Self::Connect => f.write_str("could not connect to the next hop"),
            Self::BareNewline => BareNewline.fmt(f),
            Self::BadAddress => f.write_str("unusable envelope address; not sent"),
            Self::NoRoute(e) => write!(f, "no route: {e}"),
            Self::Unrouted => f.write_str("no next hop configured (relay.next-hops, relay.routes)"),
        }
    }
}

impl FailReason {
    /// True when the connection is still a sane SMTP stream after this failure, so the
    /// session says QUIT (RFC 5321 §4.1.1.10); false when it is only closed: the next hop
    /// went away or stopped answering, its output or the handshake broke, or it is reading
    /// message content (where a QUIT would be content).
    pub fn stream_sane(&self) -> bool {
        !matches!(
            self,
            Self::Protocol(_)
                | Self::Unexpected
                | Self::Closed
                | Self::Timeout
                | Self::TlsHandshake
                | Self::BareNewline
        )
    }
}

/// A connection-level failure: applies to every recipient of the attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What failed.
    pub reason: FailReason,
    /// The reply that caused it, if one did.
    pub reply: Option<ServerReply>,
}

impl Failure {
    /// A failure with no reply behind it (no connection, a timeout, a broken stream).
    pub fn without_reply(reason: FailReason) -> Self {
        Self {
            reason,
            reply: None,
        }
    }

    /// True when retrying cannot help, so the recipients are bounced: the next hop refused
    /// with 5xx (greeting, EHLO/HELO, MAIL, ETRN), the message can never be sent as it is
    /// (an unusable address, a bare newline, SMTPUTF8 the next hop lacks), or the domain has
    /// no mail server (null MX, no such domain). Everything else is retried.
    pub fn permanent(&self) -> bool {
        use crate::relay::nexthop::{DnsError, MxError};
        match &self.reason {
            FailReason::Greeting
            | FailReason::Helo
            | FailReason::Mail
            | FailReason::Etrn
            | FailReason::Beacon => self.reply.as_ref().is_some_and(ServerReply::is_permanent),
            FailReason::BadAddress | FailReason::Smtputf8 | FailReason::BareNewline => true,
            FailReason::NoRoute(e) => {
                matches!(e, MxError::NullMx | MxError::Dns(DnsError::NotFound))
            }
            FailReason::Rset
            | FailReason::TlsNotOffered
            | FailReason::TlsRefused
            | FailReason::TlsHandshake
            | FailReason::TlsUnverified
            | FailReason::Data
            | FailReason::Timeout
            | FailReason::Protocol(_)
            | FailReason::Unexpected
            | FailReason::Closed
            | FailReason::Connect
            | FailReason::Unrouted => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reply {
            Some(r) => write!(f, "{}: {r}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// The final result of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
// A failure carries one reply (about 230 bytes) and is produced once per attempt; boxing it
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The transaction ran; one result per recipient, in the order given. Boxed: about
    /// 20 KiB with every reply kept, allocated once per attempt.
    Transaction(Box<heapless::Vec<RcptResult, RECIPIENTS_MAX>>),
    /// The attempt failed as a whole.
    Failed(Failure),
    /// A probe got a 250 to EHLO (or HELO).
    Probed(Extensions),
    /// ETRN was accepted (250 started, 251 nothing waiting, 252/253 RFC 1985 §5).
    Etrn(ServerReply),
    /// The beacon was taken (250).
    Beacon(ServerReply),
    /// A recipient verification got this reply to its RCPT (2xx exists, 5xx does not).
    Verified(ServerReply),
}

/// 2xx → delivered (so far), 4xx → deferred, 5xx → bounced.
pub(super) fn verdict(reply: &ServerReply) -> RcptResult {
    if reply.is_positive() {
        RcptResult::Delivered
    } else if reply.is_permanent() {
        RcptResult::Bounced(reply.clone())
    } else {
        RcptResult::Deferred(reply.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::nexthop::{DnsError, MxError};

    #[test]
    fn the_reason_says_permanent_or_temporary_and_quit_or_close() {
        let with = |reason, code| Failure {
            reason,
            reply: Some(ServerReply::new(code, "x")),
        };
        assert!(with(FailReason::Mail, 550).permanent());
        assert!(!with(FailReason::Mail, 451).permanent());
        assert!(!with(FailReason::TlsRefused, 554).permanent(), "TLS: retry");
        assert!(Failure::without_reply(FailReason::BareNewline).permanent());
        assert!(Failure::without_reply(FailReason::NoRoute(MxError::NullMx)).permanent());
        assert!(
            Failure::without_reply(FailReason::NoRoute(MxError::Dns(DnsError::NotFound)))
                .permanent()
        );
        assert!(!Failure::without_reply(FailReason::Connect).permanent());
        assert!(FailReason::Greeting.stream_sane() && FailReason::Rset.stream_sane());
        assert!(!FailReason::Timeout.stream_sane() && !FailReason::BareNewline.stream_sane());
    }
}
