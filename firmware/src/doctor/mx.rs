//! Rules on the DNS zone: MX records present and in the right order (the office first,
//! the silos behind it, RFC 5321 §5.1), every MX host resolving and none an alias
//! (RFC 2181 §10.3), and the silo names resolving to addresses the firewall admits.

use std::net::IpAddr;

use super::facts::{DomainFacts, Facts, HostFacts, SiloFacts};
use super::report::Check;
use crate::config::Role;
use crate::firewall::{Cidr, FirewallMode};
use crate::relay::nexthop::{DnsError, MxRecord};

/// The checks of one domain's MX records and hosts.
pub fn domain(f: &Facts, d: &DomainFacts, out: &mut Vec<Check>) {
    let dom = &d.domain;
    let records = match &d.mx {
        Err(DnsError::NotFound) => {
            out.push(Check::fail(
                "mx.present",
                format!("{dom} does not exist in DNS"),
                format!("check the spelling, or register {dom} and publish its zone"),
            ));
            return;
        }
        Err(DnsError::Temporary) => {
            out.push(Check::fail(
                "mx.present",
                format!("the MX lookup of {dom} failed (no DNS server answered)"),
                "check relay.dns-servers (or /etc/resolv.conf) and the internet link",
            ));
            return;
        }
        Ok(r) if r.is_empty() => {
            out.push(Check::fail(
                "mx.present",
                format!("{dom} has no MX records: senders deliver to its address, and no backup MX is ever used"),
                format!("add `{dom}. IN MX 10 {}.` and one MX record per silo with a higher number", f.hostname),
            ));
            return;
        }
        Ok(r) if r.len() == 1 && r[0].exchange.as_str() == "." => {
            out.push(Check::fail(
                "mx.present",
                format!("{dom} has a null MX (RFC 7505): it declares that it takes no mail"),
                format!("replace the null MX with `{dom}. IN MX 10 {}.`", f.hostname),
            ));
            return;
        }
        Ok(r) => r,
    };
    out.push(Check::pass(
        "mx.present",
        format!("MX of {dom}: {}", list(records)),
    ));
    match f.role {
        Role::Edge => {
            office_first(f, dom, records, out);
            backups(f, d, records, out);
        }
        Role::Silo => silo_listed(f, dom, records, out),
    }
    for h in &d.hosts {
        host(dom, h, out);
    }
}

/// `10 a.example, 20 b.example`, lowest preference first.
fn list(records: &[MxRecord]) -> String {
    let mut sorted: Vec<&MxRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.preference);
    let parts: Vec<String> = sorted
        .iter()
        .map(|r| format!("{} {}", r.preference, r.exchange))
        .collect();
    parts.join(", ")
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn is_office(f: &Facts, name: &str) -> bool {
    same_name(name, &f.hostname) || f.office_names.iter().any(|o| same_name(name, o))
}

/// Edge: the office (this router, or its primary) has the lowest number.
fn office_first(f: &Facts, dom: &str, records: &[MxRecord], out: &mut Vec<Check>) {
    let host = &f.hostname;
    let Some(ours) = records
        .iter()
        .filter(|r| is_office(f, &r.exchange))
        .map(|r| r.preference)
        .min()
    else {
        out.push(Check::fail(
            "mx.office",
            format!("the MX records of {dom} do not name this router ({host})"),
            format!(
                "add `{dom}. IN MX 10 {host}.` with the lowest number, or set smtp.hostname to the router's name in the MX records"
            ),
        ));
        return;
    };
    let ahead: Vec<&MxRecord> = records
        .iter()
        .filter(|r| r.preference <= ours && !is_office(f, &r.exchange))
        .collect();
    match ahead.first() {
        Some(r) => out.push(Check::fail(
            "mx.office",
            format!(
                "wrong MX priority for {dom}: {} ({}) is preferred over this router {host} ({ours}), so senders go there first",
                r.exchange, r.preference
            ),
            format!(
                "give {host} the lowest number (e.g. `{dom}. IN MX 10 {host}.`) and the silos higher ones (20, 30)"
            ),
        )),
        None => out.push(Check::pass(
            "mx.office",
            format!("this router ({host}) is the preferred MX of {dom} ({ours})"),
        )),
    }
}

/// The MX records that stand for `silo`: by name, or (not the office's) by a shared
/// address.
fn silo_preference(
    f: &Facts,
    d: &DomainFacts,
    records: &[MxRecord],
    silo: &SiloFacts,
) -> Option<u16> {
    let silo_addrs: &[IpAddr] = silo.addrs.as_deref().unwrap_or(&[]);
    records
        .iter()
        .filter(|r| {
            same_name(&r.exchange, &silo.host)
                || !is_office(f, &r.exchange)
                    && d.hosts.iter().any(|h| {
                        same_name(&h.name, &r.exchange)
                            && h.addrs
                                .as_deref()
                                .unwrap_or(&[])
                                .iter()
                                .any(|a| silo_addrs.contains(a))
                    })
        })
        .map(|r| r.preference)
        .min()
}

/// Edge: every configured silo is a backup MX, in the configured order.
fn backups(f: &Facts, d: &DomainFacts, records: &[MxRecord], out: &mut Vec<Check>) {
    let dom = &d.domain;
    if f.silos.is_empty() {
        let others: Vec<&str> = records
            .iter()
            .filter(|r| !is_office(f, &r.exchange))
            .map(|r| r.exchange.as_str())
            .collect();
        out.push(match others.first() {
            Some(o) => Check::warn(
                "mx.backup",
                format!("{dom} has a backup MX ({o}), but relay.upstream-silo is not set: the router never asks it for held mail when its link returns"),
                format!("set relay.upstream-silo = \"{o}:25\""),
            ),
            None => Check::warn(
                "mx.backup",
                format!("{dom} has no backup MX: while the office is offline, senders keep the mail themselves and give up after a few days"),
                format!("add a silo: `{dom}. IN MX 20 <silo>.` and relay.upstream-silo"),
            ),
        });
        return;
    }
    let mut found = Vec::new();
    let mut missing = false;
    for s in &f.silos {
        match silo_preference(f, d, records, s) {
            Some(p) => found.push((s.host.as_str(), p)),
            None => {
                missing = true;
                out.push(Check::fail(
                    "mx.backup",
                    format!("missing backup MX: the silo {} is not an MX of {dom}, so while the office is offline senders cannot reach it", s.host),
                    format!("add `{dom}. IN MX {} {}.` (a higher number than the router's)", 20 + 10 * found.len(), s.host),
                ));
            }
        }
    }
    if missing {
        return;
    }
    let shown: Vec<String> = found.iter().map(|(h, p)| format!("{h} ({p})")).collect();
    if found.windows(2).any(|w| w[0].1 >= w[1].1) {
        out.push(Check::warn(
            "mx.backup",
            format!(
                "the silos' MX preferences ({}) are not in the order of relay.upstream-silo",
                shown.join(", ")
            ),
            "list relay.upstream-silo in MX order (lowest number first), or renumber the MX records",
        ));
    } else {
        out.push(Check::pass(
            "mx.backup",
            format!("backup MX of {dom}: {}", shown.join(", ")),
        ));
    }
}

/// Silo: this silo is listed, and something more preferred (the office) is ahead of it.
fn silo_listed(f: &Facts, dom: &str, records: &[MxRecord], out: &mut Vec<Check>) {
    let host = &f.hostname;
    let Some(ours) = records
        .iter()
        .filter(|r| same_name(&r.exchange, host))
        .map(|r| r.preference)
        .min()
    else {
        out.push(Check::fail(
            "mx.silo",
            format!("this silo ({host}) is not an MX of {dom}: senders never bring it mail"),
            format!("add `{dom}. IN MX 20 {host}.` (a higher number than the office's)"),
        ));
        return;
    };
    match records.iter().filter(|r| r.preference < ours).min_by_key(|r| r.preference) {
        Some(office) => out.push(Check::pass(
            "mx.silo",
            format!(
                "this silo ({host}, {ours}) backs up {} ({}) for {dom}",
                office.exchange, office.preference
            ),
        )),
        None => out.push(Check::fail(
            "mx.silo",
            format!("this silo ({host}) is the most preferred MX of {dom}: it has nowhere to deliver the mail it takes"),
            format!("give the office's MX a lower number than {host}'s ({ours})"),
        )),
    }
}

/// One MX host: not an alias, and it resolves.
fn host(dom: &str, h: &HostFacts, out: &mut Vec<Check>) {
    let name = &h.name;
    if let Some(target) = &h.cname {
        out.push(Check::fail(
            "mx.host",
            format!("MX host {name} of {dom} is an alias (CNAME to {target}); MX records must name a host (RFC 2181 §10.3), and some senders skip such an MX"),
            format!("point the MX record at {target} itself"),
        ));
        return;
    }
    match &h.addrs {
        Ok(a) if !a.is_empty() => out.push(Check::pass(
            "mx.host",
            format!("MX host {name}: {}", addrs(a)),
        )),
        Ok(_) | Err(DnsError::NotFound) => out.push(Check::fail(
            "mx.host",
            format!(
                "MX host {name} of {dom} does not resolve (no A or AAAA record): senders skip it"
            ),
            format!("add an A (and AAAA) record for {name}, or correct the MX record"),
        )),
        Err(DnsError::Temporary) => out.push(Check::fail(
            "mx.host",
            format!("MX host {name} could not be resolved (no DNS server answered)"),
            "check relay.dns-servers and the internet link, then run the check again",
        )),
    }
}

fn addrs(a: &[IpAddr]) -> String {
    let v: Vec<String> = a.iter().map(ToString::to_string).collect();
    v.join(", ")
}

/// Edge: each silo name resolves, and the firewall admits what it resolves to.
pub fn silo_addresses(f: &Facts, out: &mut Vec<Check>) {
    for s in &f.silos {
        let host = &s.host;
        let found = match &s.addrs {
            Ok(a) if !a.is_empty() => a,
            Err(DnsError::Temporary) => {
                out.push(Check::fail(
                    "silo.address",
                    format!("the silo name {host} could not be resolved (no DNS server answered)"),
                    "check relay.dns-servers and the internet link, then run the check again",
                ));
                continue;
            }
            _ => {
                out.push(Check::fail(
                    "silo.address",
                    format!("the silo name {host} (relay.upstream-silo) does not resolve: the router cannot ask it for held mail, and the firewall cannot admit it"),
                    format!("correct relay.upstream-silo ('{}') or publish an A/AAAA record for {host}", s.entry),
                ));
                continue;
            }
        };
        if f.firewall.mode == FirewallMode::Off {
            out.push(Check::pass(
                "silo.address",
                format!(
                    "silo {host}: {} (firewall mode off: nothing to admit)",
                    addrs(found)
                ),
            ));
            continue;
        }
        let admitted = match &f.firewall.admitted {
            Ok(a) => a,
            Err(e) => {
                out.push(Check::fail(
                    "silo.address",
                    format!("the firewall's silo addresses cannot be read: {e}"),
                    "correct firewall.silo / firewall.silo-dns",
                ));
                continue;
            }
        };
        let locked: Vec<IpAddr> = found
            .iter()
            .copied()
            .filter(|a| !admitted.iter().any(|c| c.contains(&Cidr::host(*a))))
            .collect();
        if locked.is_empty() {
            out.push(Check::pass(
                "silo.address",
                format!("silo {host} ({}) is admitted by the firewall", addrs(found)),
            ));
        } else {
            out.push(Check::fail(
                "silo.address",
                format!(
                    "the silo {host} resolves to {}, which the firewall does not admit: the walled garden locks it out",
                    addrs(&locked)
                ),
                format!(
                    "add {} to firewall.silo (or set firewall.silo-dns = \"{host}\"), then run `mailbag firewall apply`",
                    addrs(&locked)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::report::Status;

    fn mx(list: &[(u16, &str)]) -> Vec<MxRecord> {
        list.iter()
            .map(|(p, n)| MxRecord::new(*p, n).unwrap())
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn host_facts(name: &str, a: &str) -> HostFacts {
        HostFacts {
            name: name.into(),
            cname: None,
            addrs: Ok(vec![ip(a)]),
        }
    }

    fn silo(host: &str, a: &str) -> SiloFacts {
        SiloFacts {
            entry: format!("{host}:25"),
            host: host.into(),
            addrs: Ok(vec![ip(a)]),
            probe: Err("not probed".into()),
            etrn: Vec::new(),
        }
    }

    /// An edge `edge.office.test` with silos s1 (192.0.2.20) and s2 (192.0.2.30), both
    /// admitted by the firewall.
    fn edge() -> Facts {
        Facts {
            role: Role::Edge,
            hostname: "edge.office.test".into(),
            silos: vec![
                silo("s1.provider.test", "192.0.2.20"),
                silo("s2.provider.test", "192.0.2.30"),
            ],
            firewall: crate::doctor::facts::FirewallFacts {
                mode: FirewallMode::WalledGarden,
                admitted: Ok(vec![
                    Cidr::parse("192.0.2.16/28").unwrap(),
                    Cidr::parse("192.0.2.30").unwrap(),
                ]),
                ..Default::default()
            },
            ..Facts::default()
        }
    }

    fn zone(records: &[(u16, &str)]) -> DomainFacts {
        let addr = |n: &str| match n {
            "edge.office.test" => "192.0.2.10",
            "s1.provider.test" => "192.0.2.20",
            "s2.provider.test" => "192.0.2.30",
            _ => "198.51.100.1",
        };
        DomainFacts {
            domain: "office.test".into(),
            mx: Ok(mx(records)),
            hosts: records
                .iter()
                .map(|(_, n)| host_facts(n, addr(n)))
                .collect(),
            mta_sts_txt: Ok(vec![]),
            policy: None,
            tls_rpt_txt: Ok(vec![]),
        }
    }

    fn run(f: &Facts, d: &DomainFacts) -> Vec<Check> {
        let mut out = Vec::new();
        domain(f, d, &mut out);
        out
    }

    fn failed(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|c| c.status == Status::Fail).collect()
    }

    #[test]
    fn a_correct_zone_passes_every_check() {
        let d = zone(&[
            (20, "s1.provider.test"),
            (10, "edge.office.test"),
            (30, "s2.provider.test"),
        ]);
        let checks = run(&edge(), &d);
        assert!(
            checks.iter().all(|c| c.status == Status::Pass),
            "{checks:#?}"
        );
        assert_eq!(
            checks[0].text,
            "MX of office.test: 10 edge.office.test, 20 s1.provider.test, 30 s2.provider.test"
        );
        assert_eq!(
            checks.len(),
            3 + 3,
            "present, office, backup, one line per host"
        );
    }

    #[test]
    fn a_silo_ahead_of_the_router_is_a_wrong_priority() {
        let d = zone(&[
            (10, "s1.provider.test"),
            (20, "edge.office.test"),
            (30, "s2.provider.test"),
        ]);
        let checks = run(&edge(), &d);
        let f = failed(&checks);
        assert_eq!(f.len(), 1, "{checks:#?}");
        assert_eq!(f[0].id, "mx.office");
        assert!(
            f[0].text
                .starts_with("wrong MX priority for office.test: s1.provider.test (10)")
        );
        assert!(
            f[0].fix
                .as_deref()
                .unwrap()
                .contains("IN MX 10 edge.office.test.")
        );
        let equal = zone(&[
            (10, "s1.provider.test"),
            (10, "edge.office.test"),
            (30, "s2.provider.test"),
        ]);
        assert_eq!(
            failed(&run(&edge(), &equal))[0].id,
            "mx.office",
            "equal is not behind"
        );
    }

    #[test]
    fn a_missing_backup_and_a_missing_router_are_named() {
        let d = zone(&[(10, "edge.office.test"), (20, "s1.provider.test")]);
        let checks = run(&edge(), &d);
        let f = failed(&checks);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].text
                .starts_with("missing backup MX: the silo s2.provider.test")
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some(
                "add `office.test. IN MX 30 s2.provider.test.` (a higher number than the router's)"
            )
        );
        let d = zone(&[(20, "s1.provider.test"), (30, "s2.provider.test")]);
        let f = run(&edge(), &d);
        assert!(
            failed(&f)[0]
                .text
                .contains("do not name this router (edge.office.test)")
        );
    }

    #[test]
    fn a_silo_is_recognised_by_address_and_order_is_checked() {
        let mut d = zone(&[
            (10, "edge.office.test"),
            (30, "backup.office.test"),
            (20, "s2.provider.test"),
        ]);
        d.hosts[1].addrs = Ok(vec![ip("192.0.2.20")]);
        let checks = run(&edge(), &d);
        assert!(failed(&checks).is_empty(), "{checks:#?}");
        let warn: Vec<&Check> = checks.iter().filter(|c| c.status == Status::Warn).collect();
        assert_eq!(warn.len(), 1);
        assert!(
            warn[0]
                .text
                .contains("s1.provider.test (30), s2.provider.test (20)")
        );
    }

    #[test]
    fn aliases_and_unresolvable_hosts_fail() {
        let mut d = zone(&[
            (10, "edge.office.test"),
            (20, "s1.provider.test"),
            (30, "s2.provider.test"),
        ]);
        d.hosts[1].cname = Some("real.provider.test".into());
        d.hosts[2].addrs = Err(DnsError::NotFound);
        let checks = run(&edge(), &d);
        let f = failed(&checks);
        assert_eq!(f.len(), 2, "{checks:#?}");
        assert!(
            f[0].text.contains(
                "s1.provider.test of office.test is an alias (CNAME to real.provider.test)"
            )
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some("point the MX record at real.provider.test itself")
        );
        assert!(
            f[1].text
                .contains("s2.provider.test of office.test does not resolve")
        );
    }

    #[test]
    fn no_mx_nxdomain_null_mx_and_dns_failure_stop_the_domain() {
        for (mx, want) in [
            (Ok(vec![]), "has no MX records"),
            (Err(DnsError::NotFound), "does not exist in DNS"),
            (Ok(mx(&[(0, ".")])), "null MX"),
            (Err(DnsError::Temporary), "lookup of office.test failed"),
        ] {
            let mut d = zone(&[]);
            d.mx = mx;
            let checks = run(&edge(), &d);
            assert_eq!(checks.len(), 1);
            assert_eq!(checks[0].status, Status::Fail);
            assert!(checks[0].text.contains(want), "{}", checks[0].text);
        }
    }

    #[test]
    fn a_silo_must_be_listed_behind_the_office() {
        let f = Facts {
            role: Role::Silo,
            hostname: "s1.provider.test".into(),
            ..Facts::default()
        };
        let good = run(
            &f,
            &zone(&[(10, "edge.office.test"), (20, "s1.provider.test")]),
        );
        assert!(failed(&good).is_empty(), "{good:#?}");
        assert!(good[1].text.contains("backs up edge.office.test (10)"));
        let first = run(
            &f,
            &zone(&[(5, "s1.provider.test"), (10, "edge.office.test")]),
        );
        assert!(failed(&first)[0].text.contains("is the most preferred MX"));
        let absent = run(&f, &zone(&[(10, "edge.office.test")]));
        assert!(
            failed(&absent)[0]
                .text
                .contains("is not an MX of office.test")
        );
    }

    #[test]
    fn silo_names_must_resolve_into_the_admitted_set() {
        let mut f = edge();
        let mut out = Vec::new();
        silo_addresses(&f, &mut out);
        assert!(out.iter().all(|c| c.status == Status::Pass), "{out:#?}");
        f.silos[1].addrs = Ok(vec![ip("198.51.100.9")]);
        f.silos[0].addrs = Err(DnsError::NotFound);
        let mut out = Vec::new();
        silo_addresses(&f, &mut out);
        assert!(
            out[0]
                .text
                .contains("s1.provider.test (relay.upstream-silo) does not resolve")
        );
        assert!(
            out[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("'s1.provider.test:25'")
        );
        assert!(
            out[1]
                .text
                .contains("resolves to 198.51.100.9, which the firewall does not admit")
        );
        f.firewall.mode = FirewallMode::Off;
        let mut out = Vec::new();
        silo_addresses(&f, &mut out);
        assert_eq!(out[1].status, Status::Pass);
    }
}
