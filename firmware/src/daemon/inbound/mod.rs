//! **inbound**: takes mail in. Listeners and session slots ([`listen`]), one task per SMTP
//! connection driving a sans-IO [`crate::smtp::Session`] and streaming the message to the
//! spool thread ([`connection`]), and the STARTTLS server configuration ([`tls`]).
//!
//! What it offers the rest of the daemon: [`InboundHandle`] — the session settings and
//! accepted domains in force ([`Inbound`], in a [`Live`](crate::daemon::live::Live),
//! swapped by [`InboundHandle::apply`] on reload) — whose [`InboundHandle::start`] runs the
//! accept loops ([`InboundTasks`]); [`Ctx`] is what every connection shares. It holds the
//! spool's and delivery's handles (a new message wakes delivery, ETRN asks it to flush, the
//! protection checks ask its next-hop state and verify recipients at the next hop) and
//! never imports admin.
//!
//! Protection before the 250 ([`guard`], [`protect`], [`dnsbl`], [`clamd`]): blocklists
//! at connect, sessions per client and stress-mode timeouts, recipient checks (guessing
//! clients, per-domain tiers, accept-only-while-down, verification at the next hop), and
//! the content checks while the body streams (attachment names, clamd, the spam score).
//! The decisions are the sans-IO cores of [`crate::policy`]; only the I/O is here.

mod checks;
pub mod clamd;
pub mod connection;
pub mod dnsbl;
pub mod guard;
mod handle;
pub mod listen;
mod protect;
pub mod tls;

pub use connection::{Ctx, Inbound};
pub use handle::{InboundHandle, InboundTasks, Setup, local_addrs};
