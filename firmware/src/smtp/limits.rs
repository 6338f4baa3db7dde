//! Every fixed capacity and default limit of the SMTP server session, in one place.
//!
//! Capacities (`*_MAX`) size `heapless` buffers and cannot be raised by configuration;
//! defaults (`DEFAULT_*`) seed [`SmtpConfig`](super::SmtpConfig) and may be lowered there.

/// Longest command line we accept, CRLF included. RFC 5321 §4.5.3.1.4 sets 512 octets;
/// extensions (SIZE=, BODY=, SMTPUTF8, RFC 1869 §4.1.2) may lengthen it, so we allow twice that.
pub const COMMAND_LINE_MAX: usize = 1024;

/// Longest local part in octets (RFC 5321 §4.5.3.1.1).
pub const LOCAL_PART_MAX: usize = 64;

/// Longest domain in octets (RFC 5321 §4.5.3.1.2).
pub const DOMAIN_MAX: usize = 255;

/// Longest path (reverse-path or forward-path) in octets, brackets included (RFC 5321
/// §4.5.3.1.3).
pub const PATH_MAX: usize = 256;

/// Recipients per message. RFC 5321 §4.5.3.1.8 requires at least 100; more get 452 4.5.3.
pub const RECIPIENTS_MAX: usize = 100;

/// Longest reply we build, all lines and CRLFs included (the EHLO reply is the longest).
pub const REPLY_MAX: usize = 512;

/// Longest `Received:` header we prepend (three folded lines).
pub const RECEIVED_MAX: usize = 512;

/// Longest ETRN argument (RFC 1985: a domain, optionally with `@` or `#` in front).
pub const ETRN_ARG_MAX: usize = DOMAIN_MAX + 1;

/// How many events one [`Session::input`](super::Session::input) call may push before it
/// returns early; the caller's [`Events`](super::Events) buffer has exactly this capacity.
/// Room for one step's events beside the DATA receiver's reserve (5): each event may carry
/// a 512-byte reply, and the buffer lives in every connection's task across its awaits, so
/// a larger one costs RAM per connection, not speed (the caller loops).
pub const EVENTS_MAX: usize = 8;

/// Default number of rejected commands after which the session says 421 and closes.
pub const DEFAULT_MAX_BAD_COMMANDS: u32 = 10;

/// Default idle timeout: RFC 5321 §4.5.3.2.7 asks the server to wait at least 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 5 * 60;

/// Default cap on a whole session: enough for a 25 MiB message at about 64 kbit/s.
pub const DEFAULT_SESSION_TIMEOUT_SECS: u64 = 60 * 60;
