//! nftables rendering for fw4 (OpenWrt 22.03+): include file, live load, set update.
//!
//! # Why an fw4 include and not a table of our own
//!
//! In nftables an `accept` ends a packet's walk through one base chain only; every other
//! table hooked at `input` still sees it. A separate `table inet mailbag` could drop
//! non-silo SMTP, but could not *admit* the silo through fw4's default `reject` on the WAN
//! zone, so the installer would need a second, hand-made fw4 rule. Rendering into fw4's own
//! table keeps one decision path: our rules sit first in `input_<zone>` (router-local
//! listener) and `forward_<zone>` (primary on the LAN behind a DNAT port forward).
//!
//! # Where it goes
//!
//! fw4 includes `/usr/share/nftables.d/table-pre/*.nft` (the place for packages' rules;
//! `/etc/nftables.d/` belongs to the admin) inside `table inet fw4 { ... }` before it
//! declares its chains. A chain block in nft *adds* rules to a chain of the same name, so
//! the `chain input_wan { ... jump mailbag_smtp }` block in our include puts our rule ahead
//! of everything fw4 later adds to that chain. That survives every `fw4 reload`; the
//! package's postrm deletes the file, so a reload after removal leaves no trace of ours.
//!
//! # What changes at run time
//!
//! The rule structure never changes; all state lives in four named sets:
//! `mailbag_ports` (guarded ports; empty in `off` mode), `mailbag_silo4`/`mailbag_silo6`
//! (silo prefixes) and `mailbag_open` (the guarded ports while the primary is down in
//! `open-when-primary-down` mode, else empty). An update is therefore one `nft -f`
//! transaction of `flush set` + `add element` lines ([`set_update`]), which the kernel
//! commits atomically: a packet sees the old sets or the new ones, never an empty set
//! and never an open port 25.

use std::fmt::Write;

use super::cidr::Cidr;
use super::config::FirewallMode;
use super::ruleset::Ruleset;

/// The fw4 table our sets and chain live in.
pub const TABLE: &str = "inet fw4";
/// Set of guarded TCP ports.
pub const SET_PORTS: &str = "mailbag_ports";
/// Set of ports open to all (primary down).
pub const SET_OPEN: &str = "mailbag_open";
/// IPv4 silo prefixes.
pub const SET_SILO4: &str = "mailbag_silo4";
/// IPv6 silo prefixes.
pub const SET_SILO6: &str = "mailbag_silo6";
/// The chain that decides guarded connections.
pub const CHAIN: &str = "mailbag_smtp";
/// Where the include goes on a router: fw4's table-pre directory for packages.
pub const INCLUDE_PATH: &str = "/usr/share/nftables.d/table-pre/50-mailbag.nft";

/// The include file for fw4's table-pre directory (table-scope declarations for
/// `table inet fw4`).
pub fn include(rules: &Ruleset) -> String {
    let mut out = header(rules);
    if rules.mode() == FirewallMode::Off {
        out.push_str("# mode off: mailbag adds no firewall rules.\n");
        return out;
    }
    out.push_str(&declarations(rules, "\t"));
    let zone = rules.zone();
    let _ = write!(
        out,
        "\tchain input_{zone} {{\n\t\t{}\n\t}}\n\n\tchain forward_{zone} {{\n\t\t{}\n\t}}\n",
        input_hook(),
        forward_hook()
    );
    out
}

/// An `nft -f` script that adds our sets, chain and hook rules to a running fw4 table whose
/// zone chains do not jump to us yet (first apply without an fw4 reload). One transaction.
///
/// `flush table` (what fw4 runs on reload) keeps sets, their elements and empty chains, so
/// ours may already exist: declare them empty (a no-op if present), flush, then fill.
pub fn live_load(rules: &Ruleset) -> String {
    let zone = rules.zone();
    let mut out = format!("table {TABLE} {{\n");
    for (set, _) in set_contents(rules) {
        let _ = writeln!(out, "\tset {set} {{\n{}\t}}", set_type(set));
    }
    let _ = write!(
        out,
        "\tchain {CHAIN} {{\n\t}}\n}}\nflush chain {TABLE} {CHAIN}\n{}",
        set_update(rules)
    );
    for rule in chain_rules() {
        let _ = writeln!(out, "add rule {TABLE} {CHAIN} {rule}");
    }
    let _ = write!(
        out,
        "insert rule {TABLE} input_{zone} {}\ninsert rule {TABLE} forward_{zone} {}\n",
        input_hook(),
        forward_hook()
    );
    out
}

/// The elements of a set as `nft list set inet fw4 NAME` prints them (`elements = { a, b,
/// c }`, possibly over several lines); empty when the set has none.
pub fn parse_elements(listing: &str) -> Vec<String> {
    let Some(start) = listing.find("elements = {") else {
        return Vec::new();
    };
    let rest = &listing[start + "elements = {".len()..];
    let inner = rest.split('}').next().unwrap_or_default();
    inner
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(ToString::to_string)
        .collect()
}

/// True if `input_chain_listing` (`nft list chain inet fw4 input_<zone>`) jumps to us.
pub fn is_hooked(input_chain_listing: &str) -> bool {
    input_chain_listing.contains(&format!("jump {CHAIN}"))
}

/// An `nft -f` script that replaces the elements of all four sets in one transaction.
pub fn set_update(rules: &Ruleset) -> String {
    let mut out = String::new();
    for (set, elements) in set_contents(rules) {
        let _ = writeln!(out, "flush set {TABLE} {set}");
        if !elements.is_empty() {
            let _ = writeln!(
                out,
                "add element {TABLE} {set} {{ {} }}",
                elements.join(", ")
            );
        }
    }
    out
}

fn header(rules: &Ruleset) -> String {
    format!(
        "# mailbag firewall include for fw4 (OpenWrt 22.03+). Generated; do not edit.\n\
         # Install as {INCLUDE_PATH} (fw4 includes it inside `table {TABLE}`), then\n\
         # `fw4 reload`; or run `mailbag firewall apply`, which does both.\n{}\n",
        rules.summary()
    )
}

/// The four sets, in a fixed order, with their rendered elements (what a loaded firewall
/// must hold; `mailbag doctor` compares them with [`parse_elements`] of the live sets).
pub fn set_contents(rules: &Ruleset) -> [(&'static str, Vec<String>); 4] {
    let ports: Vec<String> = rules.ports().iter().map(u16::to_string).collect();
    let open = if rules.open() {
        ports.clone()
    } else {
        Vec::new()
    };
    let cidrs = |c: &[Cidr]| c.iter().map(Cidr::to_string).collect::<Vec<_>>();
    [
        (SET_PORTS, ports),
        (SET_OPEN, open),
        (SET_SILO4, cidrs(rules.silo().v4())),
        (SET_SILO6, cidrs(rules.silo().v6())),
    ]
}

fn declarations(rules: &Ruleset, ind: &str) -> String {
    let mut out = String::new();
    for (set, elements) in set_contents(rules) {
        let _ = write!(
            out,
            "{ind}set {set} {{\n{}",
            set_type(set).replace('\t', &format!("{ind}\t"))
        );
        // An empty set must not have an `elements` line: `elements = { }` is a syntax error.
        if !elements.is_empty() {
            let _ = writeln!(out, "{ind}\telements = {{ {} }}", elements.join(", "));
        }
        let _ = writeln!(out, "{ind}}}\n");
    }
    let _ = writeln!(out, "{ind}chain {CHAIN} {{");
    for rule in chain_rules() {
        let _ = writeln!(out, "{ind}\t{rule}");
    }
    let _ = writeln!(out, "{ind}}}\n");
    out
}

/// The `type`/`flags` lines of one of our sets, each starting with one tab.
fn set_type(set: &str) -> &'static str {
    match set {
        SET_SILO4 => "\ttype ipv4_addr\n\tflags interval\n",
        SET_SILO6 => "\ttype ipv6_addr\n\tflags interval\n",
        _ => "\ttype inet_service\n",
    }
}

/// The decision chain: open (primary down), silo, else drop.
fn chain_rules() -> [String; 4] {
    [
        format!(
            "meta l4proto tcp ct original proto-dst @{SET_OPEN} accept comment \"mailbag: primary down, SMTP open to all\""
        ),
        format!("ip saddr @{SET_SILO4} accept comment \"mailbag: SMTP from the silo\""),
        format!("ip6 saddr @{SET_SILO6} accept comment \"mailbag: SMTP from the silo\""),
        "counter drop comment \"mailbag: SMTP from outside the silo\"".to_string(),
    ]
}

fn input_hook() -> String {
    format!("tcp dport @{SET_PORTS} jump {CHAIN} comment \"mailbag: walled garden\"")
}

/// After DNAT the destination port may differ, so match the port the sender asked for.
fn forward_hook() -> String {
    format!(
        "ct status dnat meta l4proto tcp ct original proto-dst @{SET_PORTS} jump {CHAIN} comment \"mailbag: walled garden (port forward)\""
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Primary;
    use crate::firewall::ruleset::fixture;

    fn rules(mode: FirewallMode, silo: &[&str], primary: Primary) -> Ruleset {
        fixture(mode, &[465, 25], silo, primary)
    }

    #[test]
    fn include_has_sets_chain_and_hooks_in_the_zone_chains() {
        let r = rules(
            FirewallMode::WalledGarden,
            &["192.0.2.16/28", "192.0.2.0/24", "2001:db8::/32"],
            Primary::Up,
        );
        let text = include(&r);
        assert!(text.contains(
            "\tset mailbag_ports {\n\t\ttype inet_service\n\t\telements = { 25, 465 }\n\t}"
        ));
        assert!(text.contains("\t\telements = { 192.0.2.0/24 }\n"), "{text}");
        assert!(text.contains("\t\telements = { 2001:db8::/32 }\n"));
        assert!(text.contains("set mailbag_open {\n\t\ttype inet_service\n\t}"));
        assert!(text.contains("chain input_wan {\n\t\ttcp dport @mailbag_ports jump mailbag_smtp"));
        assert!(text.contains("chain forward_wan {\n\t\tct status dnat"));
        assert!(!text.contains("elements = { }"));
    }

    #[test]
    fn rendering_is_deterministic_whatever_the_input_order() {
        let a = rules(
            FirewallMode::WalledGarden,
            &["10.0.0.1", "192.0.2.0/24"],
            Primary::Up,
        );
        let b = rules(
            FirewallMode::WalledGarden,
            &["192.0.2.0/24", "10.0.0.1", "192.0.2.7"],
            Primary::Up,
        );
        assert_eq!(include(&a), include(&b));
        assert_eq!(set_update(&a), set_update(&b));
    }

    #[test]
    fn set_update_replaces_elements_in_one_script() {
        let r = rules(
            FirewallMode::OpenWhenPrimaryDown,
            &["198.51.100.0/24"],
            Primary::Down,
        );
        assert_eq!(
            set_update(&r),
            "flush set inet fw4 mailbag_ports\n\
             add element inet fw4 mailbag_ports { 25, 465 }\n\
             flush set inet fw4 mailbag_open\n\
             add element inet fw4 mailbag_open { 25, 465 }\n\
             flush set inet fw4 mailbag_silo4\n\
             add element inet fw4 mailbag_silo4 { 198.51.100.0/24 }\n\
             flush set inet fw4 mailbag_silo6\n"
        );
    }

    #[test]
    fn live_set_listings_give_their_elements() {
        let listing = "table inet fw4 {\n\tset mailbag_silo4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.77.1.2, 192.0.2.0/24,\n\t\t\t     198.51.100.0/24 }\n\t}\n}\n";
        assert_eq!(
            parse_elements(listing),
            ["10.77.1.2", "192.0.2.0/24", "198.51.100.0/24"]
        );
        assert!(
            parse_elements(
                "table inet fw4 {\n\tset mailbag_open {\n\t\ttype inet_service\n\t}\n}\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn off_mode_renders_no_rules() {
        let r = rules(FirewallMode::Off, &[], Primary::Up);
        assert!(!include(&r).contains("chain"));
        assert!(set_update(&r).contains("flush set inet fw4 mailbag_ports\nflush set"));
    }

    #[test]
    fn live_load_inserts_hooks_at_the_top_of_the_zone_chains() {
        let r = rules(FirewallMode::WalledGarden, &["192.0.2.1"], Primary::Up);
        let s = live_load(&r);
        assert!(s.starts_with("table inet fw4 {\n\tset mailbag_ports {\n\ttype inet_service\n\t}"));
        assert!(
            s.contains("}\nflush chain inet fw4 mailbag_smtp\nflush set inet fw4 mailbag_ports\n")
        );
        assert!(s.contains("\nadd rule inet fw4 mailbag_smtp counter drop"));
        assert!(s.contains(
            "\ninsert rule inet fw4 input_wan tcp dport @mailbag_ports jump mailbag_smtp"
        ));
        assert!(s.contains("\ninsert rule inet fw4 forward_wan ct status dnat"));
    }
}
