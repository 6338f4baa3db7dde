//! Watching: the sans-IO cores behind "someone is watching" — notices to the admin,
//! heartbeat beacons from edge to silo, the silo's table of its routers, Prometheus
//! metrics, the LED's state, and a minimal HTTP/1.1 request for webhooks.
//!
//! Everything here is pure: fed values and `now` (Unix seconds), returning texts, bytes
//! and decisions. The daemon (`daemon::watch`) owns the timers, sockets, the spool and the
//! LED device, and calls these. Next-hop state with hysteresis is
//! [`crate::relay::HopHealth`]; the notices it causes are [`notice::Event`]s.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | `[notify]` and `[monitor]`: who is told, how, beacons, LED, metrics token |
//! | [`notice`] | the events the admin is told about, and their texts: mail, JSON, environment |
//! | [`damping`] | at most one notice per kind and subject per interval; the last state wins |
//! | [`beacon`] | the signed heartbeat line (HMAC-SHA256), its encoding and verification |
//! | [`routers`] | the silo's routers: last beacon, replay guard, overdue and back |
//! | [`metrics`] | counters the daemon bumps, and the Prometheus text rendering |
//! | [`http`] | a URL, one HTTP/1.1 POST request, the status line of its answer |
//! | [`led`] | what the LED shows for the mail held and the next hop's state |
//!
//! No function here panics on any input; every table has a named capacity.

pub mod beacon;
pub mod config;
pub mod damping;
pub mod http;
pub mod led;
pub mod metrics;
pub mod notice;
pub mod routers;

pub use config::{MonitorConfig, NotifyConfig};
