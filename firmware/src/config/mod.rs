//! One configuration model, read from TOML or UCI (`/etc/config/mailbag`).

use serde::{Deserialize, Serialize};

use crate::firewall::FirewallConfig;
use crate::policy::PolicyConfig;
use crate::relay::RelayConfig;
use crate::smtp::SmtpConfig;
use crate::spool::SpoolConfig;

/// Where this instance runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The office router: delivers to the primary on the LAN.
    #[default]
    Edge,
    /// The provider's remote secondary MX.
    Silo,
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Edge or silo.
    pub role: Role,
    /// `[smtp]`.
    pub smtp: SmtpConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[spool]`.
    pub spool: SpoolConfig,
    /// `[relay]`.
    pub relay: RelayConfig,
    /// `[firewall]`.
    pub firewall: FirewallConfig,
}
