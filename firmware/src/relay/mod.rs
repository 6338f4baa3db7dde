//! Delivery: next hops, retry schedule, probe, ETRN, DSN (see the delivery issue).
//!
//! Every file here is a pure, sans-IO core; the daemon owns sockets, TLS, DNS and timers:
//!
//! - [`schedule`]: `relay.retry` → when to try again, warn, give up;
//! - [`nexthop`]: `relay.next-hops` and MX records → the ordered hosts to try, loop guard;
//! - [`client`]: the SMTP client session that delivers one message (and the probe);
//! - [`queue`]: which held messages to try now, fair across domains;
//! - [`dsn`]: RFC 3464 bounces and delay warnings, streamed.

pub mod client;
pub mod config;
pub mod dotstuff;
pub mod dsn;
pub mod nexthop;
pub mod queue;
pub mod reply;
pub mod schedule;

pub use config::RelayConfig;
pub use schedule::{RetryPolicy, RetrySchedule, ScheduleError};
