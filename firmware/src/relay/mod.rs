//! Delivery: next hops, retry schedule, probe, ETRN, DSN (see the delivery issue).

pub mod config;

pub use config::RelayConfig;
