//! Firewall rule generation (fw4/nftables, UCI, fw3/iptables): port 25 only from the silo.
//!
//! Layers, pure to impure:
//! - [`cidr`]: the one checked constructor for silo prefixes, and their normalised set;
//! - [`ruleset`]: validated configuration + resolved silo + primary state ([`Ruleset`]);
//! - [`nft`], [`iptables`], [`uci`]: renderers, pure deterministic functions of a `Ruleset`;
//! - [`dns`]: `silo-dns` lookups behind a [`dns::Resolver`] trait, keeping the last good answer;
//! - [`primary`]: the [`PrimaryState`] the `open-when-primary-down` mode follows;
//! - [`apply`]: the edge that runs `nft` / `iptables-restore`.
//!
//! Nothing in the pure layers panics on any input; every refusal is a typed error whose
//! message names the offending value.

pub mod apply;
pub mod cidr;
pub mod config;
pub mod dns;
pub mod iptables;
pub mod nft;
pub mod primary;
pub mod ruleset;
pub mod uci;

pub use cidr::{Cidr, CidrError, SiloSet};
pub use config::{FirewallConfig, FirewallMode};
pub use primary::{Primary, PrimaryState};
pub use ruleset::{RulesError, Ruleset};
