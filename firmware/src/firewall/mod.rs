//! Firewall rule generation (fw4/nftables, UCI, fw3/iptables): port 25 only from the silo.

pub mod config;

pub use config::{FirewallConfig, FirewallMode};
