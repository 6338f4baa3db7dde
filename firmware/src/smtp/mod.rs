//! SMTP: the sans-IO server session (RFC 5321) and its parts.
//!
//! # Contract
//!
//! A [`Session`] is a pure state machine: the host (the tokio edge) feeds it the bytes it
//! read and the current monotonic `now`; the session pushes [`Event`]s into a caller-owned,
//! fixed-capacity [`Events`] buffer. It never does I/O, never allocates per byte, never
//! panics on peer input, and holds at most one command line ([`limits::COMMAND_LINE_MAX`])
//! plus one envelope ([`limits::RECIPIENTS_MAX`] recipients). Message content is passed on
//! as [`Event::Body`] slices of the host's own read buffer — never held whole.
//!
//! - **Consumption.** [`Session::input`] returns how many bytes it consumed. It stops early
//!   after `StartTls`, `MessageBegin`, `MessageEnd`, `Etrn` and `Close`, and when `Events`
//!   is nearly full. The host keeps the rest and feeds it again after handling the events.
//!   Any split of the input (down to one byte per call) gives the same replies and content.
//! - **Storing.** After [`Event::MessageEnd`] the session consumes nothing until the host
//!   calls [`Session::stored`] with the spool's verdict; pipelined commands stay in the
//!   host's read buffer (bounded by it). Only then is `250 … queued as <id>` produced.
//! - **STARTTLS.** After [`Event::StartTls`] the host MUST drop unconsumed plaintext
//!   (CVE-2011-0411), handshake, then call [`Session::tls_established`]. Input fed before
//!   that is discarded by the session too.
//! - **Line endings.** Only CRLF ends a line and only CRLF.CRLF ends content; a bare CR or
//!   LF anywhere gets `550 5.5.2` and `Close` (no SMTP smuggling, see [`data`]).
//! - **Policy.** Every RCPT asks the configured [`Policy`](crate::policy::Policy)
//!   synchronously; spool/quota fullness comes from its host hook.
//! - **Time.** [`Session::tick`] closes idle or overlong sessions with `421 4.4.2`;
//!   [`Session::deadline`] says when to call it next.
//!
//! # Why not smtp-proto
//!
//! The parser is our own (about 800 lines with docs: [`line`], [`data`], [`command`],
//! [`address`]) rather than the `smtp-proto` crate (read at its current version):
//!
//! 1. Bare newlines. Its `RequestReceiver` ends a command at a bare LF and its
//!    `DataReceiver` passes bare CR and LF through as content; it does not split messages
//!    on them, but we must *reject* them (Postfix's `smtpd_forbid_bare_newline = reject`)
//!    and decide exactly where content ends, in one place we own.
//! 2. Bounded memory. Its `DataReceiver` copies content into a caller `Vec` that grows
//!    until the final dot and its requests carry `String`s; here content is lent out as
//!    slices of the read buffer and every buffer has a fixed capacity.
//! 3. Size. It parses every ESMTP extension and the client side (responses, AUTH, BDAT,
//!    DSN …) — code that would cost flash on a MIPS router and never run.

//! # Driving a session
//!
//! ```
//! use std::sync::Arc;
//! use embassy_time::Instant;
//! use mailbag::policy::{Checker, PolicyConfig, Rules, Unlimited};
//! use mailbag::smtp::{Event, Events, PeerInfo, Session, SessionConfig, SmtpConfig};
//!
//! let rules = Rules::from_config(&PolicyConfig {
//!     domains: vec!["example.com".into()],
//!     recipients: vec![],
//!     ..PolicyConfig::default()
//! })?;
//! let cfg = SessionConfig::new(&SmtpConfig::default(), Checker::new(Arc::new(rules), Unlimited))?;
//! let peer = PeerInfo { ip: "192.0.2.7".parse()?, port: 40000, tls: false, unix_seconds: 0 };
//! let now = Instant::from_secs(1);
//! let (mut session, greeting) = Session::new(&cfg, peer, now);
//! let mut wire = greeting.as_bytes().to_vec(); // what the host writes to the socket
//! let mut spool = Vec::new(); // stands in for the spool
//!
//! // One read from the socket: a whole pipelined conversation.
//! let read = b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.com>\r\n\
//!              DATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
//! let mut pending: &[u8] = read;
//! while !pending.is_empty() && !session.is_closed() {
//!     let mut out = Events::new();
//!     let n = session.input(pending, now, &mut out);
//!     let mut message_end = false;
//!     for event in out {
//!         match event {
//!             Event::Reply(r) => wire.extend_from_slice(r.as_bytes()),
//!             Event::MessageBegin => {
//!                 let env = session.envelope().expect("set at MessageBegin");
//!                 spool.extend_from_slice(env.received.as_bytes());
//!             }
//!             Event::Body(chunk) => spool.extend_from_slice(chunk),
//!             Event::MessageEnd => message_end = true,
//!             Event::MessageAborted(_) => spool.clear(),
//!             Event::StartTls => { /* flush, drop `pending`, handshake, tls_established() */ }
//!             Event::Etrn(_) => { /* kick the relay, write Reply::etrn(..) */ }
//!             Event::RcptCheck(_) => { /* only with rcpt_checks: answer with rcpt_checked() */ }
//!             Event::Beacon(_) => { /* check the router's heartbeat, write its reply */ }
//!             Event::Close => { /* flush and close the socket */ }
//!         }
//!     }
//!     pending = &pending[n..];
//!     if message_end {
//!         // Durable on flash first; only then the 250.
//!         let reply = session.stored::<&str>(Ok("4F2A"), now);
//!         wire.extend_from_slice(reply.as_bytes());
//!     }
//! }
//! let wire = String::from_utf8(wire)?;
//! assert!(wire.contains("250 2.0.0 Ok: queued as 4F2A\r\n221 2.0.0 Bye\r\n"));
//! assert!(spool.ends_with(b"Subject: hi\r\n\r\n.dot\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod address;
pub mod command;
pub mod config;
pub mod data;
pub mod event;
pub mod limits;
pub mod line;
pub mod received;
pub mod reply;
pub mod session;

pub use address::{AddressError, Domain, Mailbox, ReversePath};
pub use command::{BodyType, MailParams};
pub use config::SmtpConfig;
pub use event::{AbortReason, Event, Events};
pub use reply::{EtrnOutcome, Reply};
pub use session::{
    Envelope, PeerInfo, PendingRcpt, RcptAnswer, Session, SessionConfig, SessionConfigError,
    StoreError,
};
