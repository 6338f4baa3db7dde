//! **inbound**: takes mail in. Listeners and session slots ([`listen`]), one task per SMTP
//! connection driving a sans-IO [`crate::smtp::Session`] and streaming the message to the
//! spool thread ([`connection`]), and the STARTTLS server configuration ([`tls`]).
//!
//! What it offers the rest of the daemon: [`Inbound`], the session settings and accepted
//! domains in force (held in a [`Live`](crate::daemon::live::Live), swapped on reload), and
//! [`Ctx`], what every connection shares. It holds the spool's and delivery's handles
//! (a new message wakes delivery, ETRN asks it to flush) and never imports admin.

pub mod connection;
pub mod listen;
pub mod tls;

pub use connection::{Ctx, Inbound};
