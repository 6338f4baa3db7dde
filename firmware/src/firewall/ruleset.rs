//! The checked input of every renderer: configuration + resolved silo + primary state.
//!
//! [`Ruleset::new`] is the one place the `[firewall]` section is validated (zone name, ports,
//! DNS name syntax, the empty-silo guard). Renderers take a `&Ruleset` and cannot fail.

use std::fmt;
use std::net::IpAddr;

use super::cidr::SiloSet;
use super::config::{FirewallConfig, FirewallMode};
use super::dns;
use super::primary::Primary;

/// Most guarded TCP ports (iptables `multiport` takes at most 15).
pub const PORTS_MAX: usize = 8;

/// Longest zone name: fw3 builds chain names like `forwarding_<zone>_rule` and caps zones at 11.
pub const ZONE_NAME_MAX: usize = 11;

/// Longest DNS name (RFC 1035 §2.3.4, presentation form without the final dot).
pub const DNS_NAME_MAX: usize = 253;

/// Why a configuration cannot be turned into rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulesError {
    /// `wan-zone` is not a valid fw3/fw4 zone name.
    BadZone(String),
    /// A port is 0, or there are too many.
    BadPorts(String),
    /// `silo-dns` is not a host name.
    BadDnsName(String),
    /// The mode would block all inbound mail because there is no silo address.
    EmptySilo(FirewallMode),
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadZone(z) => write!(
                f,
                "invalid wan-zone '{z}': use 1 to {ZONE_NAME_MAX} letters, digits or '_' (as in /etc/config/firewall)"
            ),
            Self::BadPorts(why) => write!(f, "invalid ports: {why}"),
            Self::BadDnsName(n) => write!(f, "invalid silo-dns '{n}': not a host name"),
            Self::EmptySilo(mode) => write!(
                f,
                "the silo address list is empty: in {} mode that blocks ALL inbound mail on port 25. \
                 Add silo CIDRs (silo = [...] or --silo CIDR) or a resolvable silo-dns, \
                 set mode = \"off\", or pass --force if you really mean it",
                mode_name(*mode)
            ),
        }
    }
}

impl std::error::Error for RulesError {}

/// The config's spelling of a mode.
pub fn mode_name(mode: FirewallMode) -> &'static str {
    match mode {
        FirewallMode::WalledGarden => "walled-garden",
        FirewallMode::OpenWhenPrimaryDown => "open-when-primary-down",
        FirewallMode::Off => "off",
    }
}

/// A validated, normalised description of the rules to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ruleset {
    mode: FirewallMode,
    zone: String,
    ports: Vec<u16>,
    silo: SiloSet,
    open: bool,
    resolved: Vec<IpAddr>,
}

impl Ruleset {
    /// Checks `cfg` and combines it with the resolved `silo` and the `primary` state.
    ///
    /// An empty silo in a mode that filters is refused unless `force`.
    pub fn new(
        cfg: &FirewallConfig,
        silo: SiloSet,
        primary: Primary,
        force: bool,
    ) -> Result<Self, RulesError> {
        let zone = cfg.wan_zone.as_str();
        if zone.is_empty()
            || zone.len() > ZONE_NAME_MAX
            || !zone.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(RulesError::BadZone(cfg.wan_zone.clone()));
        }
        let mut ports = cfg.ports.clone();
        ports.sort_unstable();
        ports.dedup();
        if ports.contains(&0) {
            return Err(RulesError::BadPorts("port 0 is not a TCP port".into()));
        }
        if ports.len() > PORTS_MAX {
            return Err(RulesError::BadPorts(format!(
                "{} ports given, at most {PORTS_MAX}",
                ports.len()
            )));
        }
        if cfg.mode != FirewallMode::Off && ports.is_empty() {
            return Err(RulesError::BadPorts(
                "no ports to guard (ports = [25] is the usual value)".into(),
            ));
        }
        if let Some(name) = &cfg.silo_dns {
            validate_dns_name(name)?;
        }
        if cfg.mode != FirewallMode::Off && silo.is_empty() && !force {
            return Err(RulesError::EmptySilo(cfg.mode));
        }
        Ok(Self {
            mode: cfg.mode,
            zone: zone.to_string(),
            ports,
            silo,
            open: cfg.mode == FirewallMode::OpenWhenPrimaryDown && primary == Primary::Down,
            resolved: Vec::new(),
        })
    }

    /// Records the addresses `silo-dns` resolved to (already part of the silo set), so the
    /// rendering can carry them as the last good answer for when a later lookup fails.
    pub fn with_resolved(mut self, mut addrs: Vec<IpAddr>) -> Self {
        addrs.sort_unstable();
        addrs.dedup();
        self.resolved = addrs;
        self
    }

    /// The comment lines every rendering starts its body with: what is in force, and the
    /// last good `silo-dns` answer (read back by the next apply).
    pub fn summary(&self) -> String {
        let ports: Vec<String> = self.ports().iter().map(u16::to_string).collect();
        format!(
            "# mode: {}; zone: {}; ports: {}; open to all now: {}\n{}",
            mode_name(self.mode),
            self.zone,
            if ports.is_empty() {
                "none".into()
            } else {
                ports.join(",")
            },
            if self.open { "yes" } else { "no" },
            dns::last_good_line(&self.resolved),
        )
    }

    /// The recorded `silo-dns` addresses, sorted.
    pub fn resolved(&self) -> &[IpAddr] {
        &self.resolved
    }

    /// The mode.
    pub fn mode(&self) -> FirewallMode {
        self.mode
    }

    /// The fw3/fw4 WAN zone name (validated).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The guarded ports, sorted; empty in `off` mode (the rules then match nothing).
    pub fn ports(&self) -> &[u16] {
        if self.mode == FirewallMode::Off {
            &[]
        } else {
            &self.ports
        }
    }

    /// The silo prefixes.
    pub fn silo(&self) -> &SiloSet {
        &self.silo
    }

    /// True while port 25 (etc.) is open to all: `open-when-primary-down` and primary down.
    pub fn open(&self) -> bool {
        self.open
    }
}

/// Letters, digits, '-' and '.', labels of 1..=63, total at most [`DNS_NAME_MAX`].
fn validate_dns_name(name: &str) -> Result<(), RulesError> {
    let n = name.strip_suffix('.').unwrap_or(name);
    let ok = !n.is_empty()
        && n.len() <= DNS_NAME_MAX
        && n.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(RulesError::BadDnsName(name.to_string()))
    }
}

/// A ruleset for renderer tests (forced, so an empty silo is allowed).
#[cfg(test)]
pub(crate) fn fixture(
    mode: FirewallMode,
    ports: &[u16],
    silo: &[&str],
    primary: Primary,
) -> Ruleset {
    let cfg = FirewallConfig {
        mode,
        ports: ports.to_vec(),
        ..FirewallConfig::default()
    };
    #[allow(clippy::unwrap_used)] // test fixture: the callers pass valid prefixes
    let silo = SiloSet::parse(silo).unwrap();
    #[allow(clippy::unwrap_used)]
    Ruleset::new(&cfg, silo, primary, true).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: FirewallMode) -> FirewallConfig {
        FirewallConfig {
            mode,
            silo: vec!["192.0.2.0/28".into()],
            ports: vec![587, 25, 25],
            ..FirewallConfig::default()
        }
    }

    fn silo(c: &FirewallConfig) -> SiloSet {
        SiloSet::parse(&c.silo).unwrap()
    }

    #[test]
    fn ports_are_sorted_and_deduplicated() {
        let c = cfg(FirewallMode::WalledGarden);
        let r = Ruleset::new(&c, silo(&c), Primary::Up, false).unwrap();
        assert_eq!(r.ports(), [25, 587]);
        assert!(!r.open());
    }

    #[test]
    fn empty_silo_is_refused_unless_forced() {
        let mut c = cfg(FirewallMode::WalledGarden);
        c.silo.clear();
        let err = Ruleset::new(&c, SiloSet::default(), Primary::Up, false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("blocks ALL inbound mail") && msg.contains("--force"),
            "{msg}"
        );
        assert!(Ruleset::new(&c, SiloSet::default(), Primary::Up, true).is_ok());
        c.mode = FirewallMode::Off;
        assert!(Ruleset::new(&c, SiloSet::default(), Primary::Up, false).is_ok());
    }

    #[test]
    fn bad_zone_ports_and_dns_names_are_named() {
        for zone in ["", "wan; drop", "wan zone", "averylongzone"] {
            let mut c = cfg(FirewallMode::WalledGarden);
            c.wan_zone = zone.into();
            let err = Ruleset::new(&c, silo(&c), Primary::Up, false).unwrap_err();
            assert!(err.to_string().contains(&format!("'{zone}'")), "{err}");
        }
        let mut c = cfg(FirewallMode::WalledGarden);
        c.ports = vec![25, 0];
        assert!(matches!(
            Ruleset::new(&c, silo(&c), Primary::Up, false),
            Err(RulesError::BadPorts(_))
        ));
        c.ports = (1..=9).collect();
        assert!(Ruleset::new(&c, silo(&c), Primary::Up, false).is_err());
        let mut c = cfg(FirewallMode::WalledGarden);
        c.silo_dns = Some("silo..example.net".into());
        let err = Ruleset::new(&c, silo(&c), Primary::Up, false).unwrap_err();
        assert!(err.to_string().contains("'silo..example.net'"));
        c.silo_dns = Some("silo-1.example.net.".into());
        assert!(Ruleset::new(&c, silo(&c), Primary::Up, false).is_ok());
    }

    #[test]
    fn open_only_when_mode_allows_and_primary_down() {
        let c = cfg(FirewallMode::OpenWhenPrimaryDown);
        assert!(
            Ruleset::new(&c, silo(&c), Primary::Down, false)
                .unwrap()
                .open()
        );
        assert!(
            !Ruleset::new(&c, silo(&c), Primary::Up, false)
                .unwrap()
                .open()
        );
        let c = cfg(FirewallMode::WalledGarden);
        assert!(
            !Ruleset::new(&c, silo(&c), Primary::Down, false)
                .unwrap()
                .open()
        );
        let c = cfg(FirewallMode::Off);
        assert!(
            Ruleset::new(&c, silo(&c), Primary::Down, false)
                .unwrap()
                .ports()
                .is_empty()
        );
    }
}
