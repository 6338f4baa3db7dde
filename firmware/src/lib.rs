//! mailbag: an SMTP store-and-forward relay (backup MX) for OpenWrt routers.
//!
//! Layers, bottom up: `mailbag-hal` (flash devices, clocks) → [`spool`] (littlefs2 queue) →
//! [`smtp`] (sans-IO protocol cores) → `relay` (delivery) → the daemon in `main.rs`.
//! Protocol cores never do I/O; only the daemon edge owns sockets, TLS and timers.

pub mod cli;
pub mod spool;
