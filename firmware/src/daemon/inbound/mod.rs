//! **inbound**: takes mail in. Listeners and session slots ([`listen`]), one task per SMTP
//! connection driving a sans-IO [`crate::smtp::Session`] and streaming the message to the
//! spool thread ([`connection`]), and the STARTTLS server configuration ([`tls`]).
//!
//! What it offers the rest of the daemon: [`InboundHandle`] — the session settings and
//! accepted domains in force ([`Inbound`], in a [`Live`](crate::daemon::live::Live),
//! swapped by [`InboundHandle::apply`] on reload) — whose [`InboundHandle::start`] runs the
//! accept loops ([`InboundTasks`]); [`Ctx`] is what every connection shares. It holds the spool's and delivery's handles
//! (a new message wakes delivery, ETRN asks it to flush) and never imports admin.

pub mod connection;
mod handle;
pub mod listen;
pub mod tls;

pub use connection::{Ctx, Inbound};
pub use handle::{InboundHandle, InboundTasks, Setup, local_addrs};
