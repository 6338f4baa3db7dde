//! **inbound**: takes mail in. Listeners and session slots ([`listen`]), one task per SMTP
//! connection driving a sans-IO [`crate::smtp::Session`] and streaming the message to the
//! spool thread ([`connection`]), and the STARTTLS server configuration ([`tls`]).
//!
//! What it offers the rest of the daemon: [`Inbound`], the session settings and accepted
//! domains in force (held in a [`Live`](crate::daemon::live::Live), swapped on reload), and
//! [`Ctx`], what every connection shares. It uses the spool's handle and kicks delivery
//! through a [`tokio::sync::Notify`]; it imports no admin; delivery only for its next-hop
//! state, its DNS resolver and recipient verification.
//!
//! Protection before the 250 ([`guard`], [`protect`], [`dnsbl`], [`clamd`]): blocklists
//! at connect, sessions per client and stress-mode timeouts, recipient checks (guessing
//! clients, per-domain tiers, accept-only-while-down, verification at the next hop, which
//! asks delivery's next-hop state and connections), and the content checks while the body
//! streams (attachment names, clamd, the spam score). The decisions are the sans-IO cores
//! of [`crate::policy`]; only the I/O is here.

mod checks;
pub mod clamd;
pub mod connection;
pub mod dnsbl;
pub mod guard;
pub mod listen;
mod protect;
pub mod tls;

pub use connection::{Ctx, Inbound};
