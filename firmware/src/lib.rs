//! mailbag: an SMTP store-and-forward relay (backup MX) for OpenWrt routers.
//!
//! Layers, bottom up: `mailbag-hal` (flash devices, clocks) → [`spool`] (littlefs2 queue) →
//! [`smtp`] (sans-IO protocol cores) and [`policy`] → [`relay`] (delivery) → the daemon.
//! Protocol cores never do I/O; only the daemon edge owns sockets, TLS and timers.
//! [`config`] is the one configuration model; [`firewall`] renders rules from it;
//! [`monitor`] holds the cores of notices, beacons, metrics and the LED.

// Only `mailbag-hal` may hold unsafe code (its two audited MTD ioctls).
#![forbid(unsafe_code)]

#[macro_use]
pub mod log;

pub mod cli;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod doctor;
pub mod firewall;
pub mod json;
pub mod monitor;
pub mod policy;
pub mod relay;
pub mod smtp;
pub mod spool;
pub mod vecmap;
