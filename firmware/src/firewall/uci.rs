//! A `uci batch` script for installers who manage fw4 through LuCI.
//!
//! It creates `config ipset` sections named like the nft sets (`mailbag_silo4`,
//! `mailbag_silo6`) and `config rule` sections in the WAN zone: accept the guarded ports from
//! each set, accept them from anyone while the primary is down (`enabled` follows the state),
//! then drop them. fw4 turns these into rules in `input_<zone>`, so this variant guards a
//! listener on the router itself; for a primary behind a port forward use the nft include.
//!
//! Every section is first created, then deleted, then created again: `uci batch` stops at a
//! `delete` of something missing, and this way a re-run replaces the old sections instead of
//! appending duplicates. LuCI shows the rules as "mailbag: ...".

use std::fmt::Write;

use super::cidr::Cidr;
use super::config::FirewallMode;
use super::ruleset::{Ruleset, mode_name};

/// The sections this script owns, in order.
const SECTIONS: [(&str, &str); 6] = [
    ("mailbag_silo4", "ipset"),
    ("mailbag_silo6", "ipset"),
    ("mailbag_smtp_open", "rule"),
    ("mailbag_smtp_silo4", "rule"),
    ("mailbag_smtp_silo6", "rule"),
    ("mailbag_smtp_drop", "rule"),
];

/// The batch script (`uci batch < FILE`, then `/etc/init.d/firewall reload`).
pub fn batch(rules: &Ruleset) -> String {
    let mut out = format!(
        "# mailbag firewall settings for fw4 via UCI/LuCI. Generated.\n\
         # Run: uci batch < THIS_FILE && /etc/init.d/firewall reload\n\
         # mode: {}; zone: {}\n",
        mode_name(rules.mode()),
        rules.zone()
    );
    for (name, ty) in SECTIONS {
        let _ = writeln!(out, "set firewall.{name}={ty}\ndelete firewall.{name}");
    }
    if rules.mode() == FirewallMode::Off {
        out.push_str("commit firewall\n");
        return out;
    }
    let ports: Vec<String> = rules.ports().iter().map(u16::to_string).collect();
    let ports = ports.join(" ");
    let zone = rules.zone();
    for (set, family, prefixes) in [
        ("mailbag_silo4", "ipv4", rules.silo().v4()),
        ("mailbag_silo6", "ipv6", rules.silo().v6()),
    ] {
        let _ = write!(
            out,
            "set firewall.{set}=ipset\n\
             set firewall.{set}.name='{set}'\n\
             set firewall.{set}.family='{family}'\n\
             add_list firewall.{set}.match='src_net'\n"
        );
        for c in prefixes {
            let _ = writeln!(
                out,
                "add_list firewall.{set}.entry='{}'",
                Cidr::to_string(c)
            );
        }
    }
    let rule = |out: &mut String, name: &str, title: &str, extra: &str, target: &str| {
        let _ = write!(
            out,
            "set firewall.{name}=rule\n\
             set firewall.{name}.name='mailbag: {title}'\n\
             set firewall.{name}.src='{zone}'\n\
             set firewall.{name}.proto='tcp'\n\
             set firewall.{name}.dest_port='{ports}'\n\
             {extra}set firewall.{name}.target='{target}'\n"
        );
    };
    let enabled = if rules.open() { "1" } else { "0" };
    rule(
        &mut out,
        "mailbag_smtp_open",
        "SMTP open to all while the primary is down",
        &format!("set firewall.mailbag_smtp_open.enabled='{enabled}'\n"),
        "ACCEPT",
    );
    for (name, set, family) in [
        ("mailbag_smtp_silo4", "mailbag_silo4", "ipv4"),
        ("mailbag_smtp_silo6", "mailbag_silo6", "ipv6"),
    ] {
        rule(
            &mut out,
            name,
            "SMTP from the silo",
            &format!("set firewall.{name}.family='{family}'\nset firewall.{name}.ipset='{set}'\n"),
            "ACCEPT",
        );
    }
    rule(
        &mut out,
        "mailbag_smtp_drop",
        "SMTP from outside the silo",
        "",
        "DROP",
    );
    out.push_str("commit firewall\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{FirewallConfig, Primary, SiloSet};

    fn rules(mode: FirewallMode, primary: Primary) -> Ruleset {
        let cfg = FirewallConfig {
            mode,
            ports: vec![25, 465],
            wan_zone: "wan6rd".into(),
            ..FirewallConfig::default()
        };
        let silo = SiloSet::parse(&["192.0.2.0/24", "2001:db8::1"]).unwrap();
        Ruleset::new(&cfg, silo, primary, false).unwrap()
    }

    #[test]
    fn sets_then_rules_in_accept_before_drop_order() {
        let s = batch(&rules(FirewallMode::WalledGarden, Primary::Up));
        assert!(s.contains("add_list firewall.mailbag_silo4.entry='192.0.2.0/24'\n"));
        assert!(s.contains("add_list firewall.mailbag_silo6.entry='2001:db8::1'\n"));
        assert!(s.contains("set firewall.mailbag_smtp_drop.src='wan6rd'\n"));
        assert!(s.contains("set firewall.mailbag_smtp_drop.dest_port='25 465'\n"));
        assert!(s.contains("set firewall.mailbag_smtp_open.enabled='0'\n"));
        let accept = s.rfind("set firewall.mailbag_smtp_silo4=rule").unwrap();
        let drop = s.rfind("set firewall.mailbag_smtp_drop=rule").unwrap();
        let recreate = s.rfind("delete firewall.mailbag_smtp_drop").unwrap();
        assert!(recreate < accept && accept < drop);
        assert!(s.ends_with("commit firewall\n"));
    }

    #[test]
    fn open_rule_enabled_only_when_primary_down() {
        let s = batch(&rules(FirewallMode::OpenWhenPrimaryDown, Primary::Down));
        assert!(s.contains("set firewall.mailbag_smtp_open.enabled='1'\n"));
    }

    #[test]
    fn off_mode_only_removes_our_sections() {
        let s = batch(&rules(FirewallMode::Off, Primary::Up));
        assert!(!s.contains(".target="));
        assert!(s.contains("delete firewall.mailbag_silo4\n"));
    }
}
