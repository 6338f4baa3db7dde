//! The `[firewall]` configuration section.

use serde::{Deserialize, Serialize};

/// How inbound SMTP is admitted on the WAN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirewallMode {
    /// Port 25 only from the silo's addresses.
    #[default]
    WalledGarden,
    /// Port 25 open to all only while the primary is down; otherwise like walled-garden.
    OpenWhenPrimaryDown,
    /// mailbag generates no rules.
    Off,
}

/// `[firewall]`: which addresses may reach the SMTP ports from the WAN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirewallConfig {
    /// Rule mode.
    pub mode: FirewallMode,
    /// Silo addresses as CIDRs (IPv4 and IPv6), e.g. `203.0.113.0/28`.
    pub silo: Vec<String>,
    /// Optional DNS name of the provider's silo, resolved (A/AAAA) and re-resolved on a timer.
    pub silo_dns: Option<String>,
    /// Seconds between re-resolutions of `silo-dns` (`mailbag firewall apply --watch`).
    pub silo_dns_interval: u32,
    /// TCP ports to guard (25, optionally 465/587).
    pub ports: Vec<u16>,
    /// The fw4/fw3 WAN zone name.
    pub wan_zone: String,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            mode: FirewallMode::WalledGarden,
            silo: Vec::new(),
            silo_dns: None,
            silo_dns_interval: 300,
            ports: vec![25],
            wan_zone: "wan".into(),
        }
    }
}
