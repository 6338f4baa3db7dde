//! Delivery: next hops, retry schedule, the SMTP client, the fair queue, DSNs.
//!
//! Every file here is a pure, sans-IO core; the daemon owns sockets, TLS, DNS, timers and
//! the spool thread. One delivery, as the daemon drives it:
//!
//! 1. start-up: [`RelaySettings::from_config`] parses `[relay]` once, routes included
//!    ([`route`]);
//! 2. [`due_lanes`] and [`lane_batch`] say which messages to try now, over the spool index
//!    (FIFO per domain, round-robin across domains — [`queue`]); [`Routes::for_domain`],
//!    then [`NextHops::ordered`] or [`nexthop::from_mx`], say where, with the
//!    [`LoopGuard`] refusing ourselves;
//! 3. [`attempt::job`] builds the [`DeliveryJob`]; a [`Client`] session talks to the next hop
//!    ([`client`]), content streaming from the spool through [`Client::body`];
//! 4. [`record_attempt`] turns the [`Outcome`] into recipient states, the next attempt
//!    ([`schedule`]), bounces and a delay warning; the spool record is updated first;
//! 5. [`write_dsn`] streams a bounce or warning into a new spool message from `<>`
//!    ([`dsn`]) — never to the null sender.
//!
//! Around it: [`HopHealth`] turns probe results ([`Client::probe`]) into up/down
//! transitions ([`health`]) — `CameUp` makes the held mail due and, on the edge, starts an
//! ETRN session to the silo ([`Client::etrn`]). Delivery by MX asks DNS through the
//! daemon's resolver, which builds and reads its messages with [`dns`].
//!
//! No function here panics on peer input; every buffer has a named capacity.

pub mod attempt;
pub mod client;
pub mod config;
pub mod dns;
pub mod dotstuff;
pub mod dsn;
pub mod health;
pub mod nexthop;
pub mod queue;
pub mod reply;
pub mod route;
pub mod schedule;
pub mod settings;

pub use attempt::{AttemptResult, Bounce, record_attempt, record_attempts};
pub use client::{Client, ClientAction, ClientConfig, DeliveryJob, Outcome, RcptResult, TlsPolicy};
pub use config::RelayConfig;
pub use dsn::{DsnKind, DsnRecipient, Report, write_dsn};
pub use health::{Change, Health, HopHealth};
pub use nexthop::{LoopGuard, NextHop, NextHops, Resolver};
pub use queue::{HopKey, Lane};
pub use reply::ServerReply;
pub use route::{Route, Routes, Target};
pub use schedule::{RetryPolicy, RetrySchedule, ScheduleError};
pub use settings::{RelayConfigError, RelaySettings};

#[cfg(test)]
mod peer_tests;
