//! iptables-restore fragments for fw3 (OpenWrt 21.02 and older).
//!
//! Per-prefix rules in our own chains rather than ipset: ipset needs an extra kernel module
//! and package on fw3 routers, while a user chain flushed and refilled inside one
//! `iptables-restore --noflush` run is committed atomically per table, just as nft sets are.
//!
//! Layout (the same for IPv4 and IPv6; only the family of the silo prefixes differs):
//!
//! ```text
//! input_<zone>_rule       -I 1 -j MAILBAG_PORTS             (fw3's user hook, router-local)
//! forwarding_<zone>_rule  -I 1 -m conntrack --ctstate DNAT -j MAILBAG_DNAT
//! MAILBAG_PORTS           -p tcp --dports <ports> -j MAILBAG_SMTP
//! MAILBAG_DNAT            -p tcp --ctorigdstport <port> -j MAILBAG_SMTP   (one per port)
//! MAILBAG_SMTP            -j MAILBAG_OPEN; -j MAILBAG_SILO; -j DROP
//! MAILBAG_OPEN            -j ACCEPT while the primary is down (open-when-primary-down)
//! MAILBAG_SILO            -s <prefix> -j ACCEPT  (one per silo prefix)
//! ```
//!
//! The two hook rules are the only lines outside our chains; [`fragment`] with
//! `Hooks::Insert` is what fw3 loads after each (re)start (it has just flushed its chains),
//! `Hooks::Keep` is the update `mailbag firewall apply` loads when our chains already exist:
//! redeclaring a chain in iptables-restore flushes it, so all state is replaced at once.

use std::fmt::Write;

use super::cidr::Cidr;
use super::config::FirewallMode;
use super::ruleset::Ruleset;

/// The chain that exists once our rules are loaded.
pub const CHAIN: &str = "MAILBAG_SMTP";

/// IPv4 (`iptables-restore`) or IPv6 (`ip6tables-restore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The restore command for this family.
    pub fn restore_cmd(self) -> &'static str {
        match self {
            Self::V4 => "iptables-restore",
            Self::V6 => "ip6tables-restore",
        }
    }

    /// The listing command for this family.
    pub fn list_cmd(self) -> &'static str {
        match self {
            Self::V4 => "iptables",
            Self::V6 => "ip6tables",
        }
    }
}

/// Whether the fragment inserts the two hook rules into fw3's zone chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooks {
    /// First load after fw3 built its chains.
    Insert,
    /// Our chains are already hooked in; only replace their contents.
    Keep,
}

/// The `iptables-restore --noflush` input for `family`.
pub fn fragment(rules: &Ruleset, family: Family, hooks: Hooks) -> String {
    let ports: Vec<String> = rules.ports().iter().map(u16::to_string).collect();
    let mut out = format!(
        "# mailbag firewall fragment for fw3 (OpenWrt 21.02 and older). Generated; do not edit.\n\
         # Load with `{} --noflush`; on fw3: config include, option type 'restore',\n\
         # option family '{}', option path '<this file>'.\n{}",
        family.restore_cmd(),
        if family == Family::V4 { "ipv4" } else { "ipv6" },
        rules.summary(),
    );
    out.push_str("*filter\n");
    if rules.mode() == FirewallMode::Off && hooks == Hooks::Insert {
        out.push_str("# mode off: mailbag adds no firewall rules.\nCOMMIT\n");
        return out;
    }
    for chain in [
        "MAILBAG_PORTS",
        "MAILBAG_DNAT",
        CHAIN,
        "MAILBAG_OPEN",
        "MAILBAG_SILO",
    ] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    if !ports.is_empty() {
        let _ = writeln!(
            out,
            "-A MAILBAG_PORTS -p tcp -m multiport --dports {} -j {CHAIN}",
            ports.join(",")
        );
    }
    for p in &ports {
        let _ = writeln!(
            out,
            "-A MAILBAG_DNAT -p tcp -m conntrack --ctorigdstport {p} -j {CHAIN}"
        );
    }
    if rules.open() {
        out.push_str("-A MAILBAG_OPEN -m comment --comment \"mailbag: primary down, SMTP open to all\" -j ACCEPT\n");
    }
    let silo: &[Cidr] = match family {
        Family::V4 => rules.silo().v4(),
        Family::V6 => rules.silo().v6(),
    };
    for c in silo {
        let _ = writeln!(out, "-A MAILBAG_SILO -s {} -j ACCEPT", full_cidr(c));
    }
    let _ = write!(
        out,
        "-A {CHAIN} -j MAILBAG_OPEN\n-A {CHAIN} -j MAILBAG_SILO\n\
         -A {CHAIN} -m comment --comment \"mailbag: SMTP from outside the silo\" -j DROP\n"
    );
    if hooks == Hooks::Insert {
        let zone = rules.zone();
        let _ = write!(
            out,
            "-I input_{zone}_rule 1 -j MAILBAG_PORTS\n\
             -I forwarding_{zone}_rule 1 -m conntrack --ctstate DNAT -j MAILBAG_DNAT\n"
        );
    }
    out.push_str("COMMIT\n");
    out
}

/// True if `rule_chain_listing` (`iptables -S input_<zone>_rule`) jumps to our chains.
pub fn is_hooked(rule_chain_listing: &str) -> bool {
    rule_chain_listing.contains("-j MAILBAG_PORTS")
}

/// iptables wants `addr/len` even for hosts only in some versions; always give the length.
fn full_cidr(c: &Cidr) -> String {
    match c {
        Cidr::V4(a, l) => format!("{a}/{l}"),
        Cidr::V6(a, l) => format!("{a}/{l}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Primary;
    use crate::firewall::ruleset::fixture;

    fn rules(mode: FirewallMode, primary: Primary) -> Ruleset {
        let silo = ["192.0.2.7", "2001:db8::/48", "::ffff:198.51.100.1"];
        fixture(mode, &[25, 587], &silo, primary)
    }

    #[test]
    fn each_family_gets_only_its_own_prefixes() {
        let r = rules(FirewallMode::WalledGarden, Primary::Up);
        let v4 = fragment(&r, Family::V4, Hooks::Insert);
        assert!(v4.contains("-A MAILBAG_SILO -s 192.0.2.7/32 -j ACCEPT\n-A MAILBAG_SILO -s 198.51.100.1/32 -j ACCEPT\n"));
        assert!(!v4.contains("2001:db8"));
        let v6 = fragment(&r, Family::V6, Hooks::Insert);
        assert!(v6.contains("-A MAILBAG_SILO -s 2001:db8::/48 -j ACCEPT\n"));
        assert!(!v6.contains("192.0.2.7"));
        assert!(v4.contains("--dports 25,587 -j MAILBAG_SMTP"));
        assert!(v4.contains("-I input_wan_rule 1 -j MAILBAG_PORTS\n"));
        assert!(v4.ends_with("COMMIT\n"));
        assert!(!v4.contains("-A MAILBAG_OPEN"));
    }

    #[test]
    fn update_keeps_hooks_and_open_follows_primary() {
        let r = rules(FirewallMode::OpenWhenPrimaryDown, Primary::Down);
        let up = fragment(&r, Family::V4, Hooks::Keep);
        assert!(!up.contains("_rule"));
        assert!(up.contains(":MAILBAG_SILO - [0:0]"));
        assert!(up.contains("-A MAILBAG_OPEN -m comment"));
    }

    #[test]
    fn off_mode_loads_nothing_but_empties_chains_on_update() {
        let r = rules(FirewallMode::Off, Primary::Up);
        assert!(!fragment(&r, Family::V4, Hooks::Insert).contains("-A "));
        let upd = fragment(&r, Family::V4, Hooks::Keep);
        assert!(!upd.contains("-A MAILBAG_PORTS"));
        assert!(!upd.contains("-A MAILBAG_DNAT"));
    }
}
