//! **delivery**: takes due messages from the spool, sends them to their next hops, records
//! each attempt (per-recipient state, next attempt, last error) durably, removes delivered
//! mail and queues bounces and delay warnings.
//!
//! - **When.** Every second (`lanes::TICK`), and at once when kicked (a new message, ETRN,
//!   a flush, the next hop answering a probe again).
//! - **Order.** Held mail is delivered in lanes, one per recipient domain
//!   ([`crate::relay::queue`]): oldest first within a domain, round-robin across domains.
//!   A lane's worker sends up to 20 messages (`lanes::LANE_TURN`) over one kept
//!   connection, then gives the next domain its turn. At most 8 lanes
//!   (`lanes::LANES_MAX`) run at once.
//! - **Where.** Each pending recipient goes to its domain's route (`relay.routes`, else
//!   `relay.next-hops`, else MX), with the loop guard refusing ourselves; a message with
//!   recipients on two routes goes out in two transactions, recorded as one attempt.
//! - **How much.** At most `relay.max-per-hop` connections per route at once: a recovered
//!   server is not hammered.
//! - **Order of effects.** The record is updated (or removed) *before* a bounce is queued,
//!   so a crash can repeat a bounce but never lose a recipient's state. Delivery is
//!   at-least-once: a crash between the next hop's 250 and our record update delivers that
//!   message again after restart.
//! - **TLS.** STARTTLS is used when offered (`opportunistic`: certificate not checked,
//!   like Postfix's `may`); `require` fails the attempt when the hop has no STARTTLS;
//!   `require-verify` checks the certificate against the system's CA file.
//!
//! | file | what |
//! |---|---|
//! | [`handle`] | [`DeliveryHandle`], the one thing the rest of the daemon holds, and its [`Setup`] |
//! | `deliverer` | the state the delivery tasks share (private to delivery) |
//! | [`claims`] | [`InFlight`]: messages being delivered or held by an admin action |
//! | `lanes` | the delivery loop: lanes, one attempt per message, its record |
//! | `outbound` | connections to a route's next hops; kept connections; probes; ETRN upstream |
//! | `driver` | the one async driver of [`crate::relay::Client`] sessions ([`etrn_session`] for `mailbag etrn`) |
//! | [`notice`] | bounces and delay warnings queued to the sender ([`Notice`]) |
//! | [`hops`] | next-hop state per route (hysteresis) |
//! | `transitions` | a route came up or went down: flush, ETRN, notices, firewall |
//! | `probe` | asking routes not known to be up; their return flushes the held mail |
//! | `upstream` | the edge's watch on its silo (ETRN when it comes back) |
//! | [`watch`] | what watching keeps: settings, damping, counters, routers, last delivery |
//! | `watching` | its task: damped notices, spool fill, LED, beacons, silent routers |
//! | `notify` | one notice to its channels: mail on the spool, webhooks, hooks |
//! | `follow` | `open-when-primary-down`: the live firewall follows the primary |
//! | `beacon` | the edge's heartbeat beacons to its silo |
//! | [`dns`] | the resolver for MX and next-hop names |
//! | [`tls`] | STARTTLS client configurations |

mod beacon;
pub mod claims;
mod deliverer;
pub mod dns;
mod driver;
mod follow;
pub mod handle;
mod hook;
pub mod hops;
mod lanes;
pub mod notice;
mod notify;
mod outbound;
mod probe;
pub mod tls;
mod transitions;
mod upstream;
pub mod watch;
mod watching;
mod webhook;

pub use claims::{Claim, InFlight};
pub use deliverer::Scope;
pub use driver::{etrn_session, probe_session};
pub use handle::{DeliveryHandle, DeliveryStatus, DeliveryTasks, Setup};
pub use notice::Notice;
