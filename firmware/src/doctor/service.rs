//! Rules on the running pieces: the daemon answers, the next hops and the upstream silos
//! answer SMTP now (with STARTTLS when the TLS policy needs it), the silos accept ETRN for
//! our domains, the loaded firewall equals what the configuration renders, and the spool
//! sits on flash with room for a few days of mail.

use super::facts::{Facts, LiveRules, SpoolFacts};
use super::report::Check;
use crate::cli::fmt::size;
use crate::config::Role;
use crate::firewall::{Cidr, FirewallMode};

/// Below this many days of mail at the recent rate the spool gets a warning (a long
/// weekend offline).
pub const DAYS_WARN: u64 = 3;
/// The accept rate is trusted once measured over at least this long.
pub const RATE_MIN_SECS: u64 = 3600;

/// The daemon answers on its control socket.
pub fn daemon(f: &Facts, out: &mut Vec<Check>) {
    out.push(match &f.daemon {
        Ok(v) => Check::pass("daemon", format!("the daemon is running ({v})")),
        Err(e) => Check::fail(
            "daemon",
            format!("the mailbag daemon does not answer: {e}"),
            "start it (`service mailbag start` on OpenWrt), or check daemon.control-socket",
        ),
    });
}

/// Each next hop answers now; STARTTLS is offered where the policy requires it.
pub fn next_hops(f: &Facts, out: &mut Vec<Check>) {
    if f.next_hops.is_empty() && f.role == Role::Edge {
        out.push(Check::fail(
            "next-hop",
            "no next hop is configured: the router holds all mail and never delivers it",
            "set relay.next-hops to the office's mail server, e.g. [\"10 mail.office.lan:25\"]",
        ));
        return;
    }
    for h in &f.next_hops {
        let (hop, route) = (&h.hop, &h.route);
        out.push(match &h.result {
            Ok(ext) if f.tls_required && !ext.starttls => Check::fail(
                "next-hop",
                format!("the next hop {hop} ({route}) answers, but offers no STARTTLS, which relay.tls-policy requires: mail to it stays queued"),
                format!("enable STARTTLS on {hop}, or set relay.tls-policy = \"opportunistic\""),
            ),
            Ok(ext) => Check::pass(
                "next-hop",
                format!(
                    "the next hop {hop} ({route}) answers SMTP{}",
                    if ext.starttls { " and offers STARTTLS" } else { "" }
                ),
            ),
            Err(e) => Check::fail(
                "next-hop",
                format!("the next hop {hop} ({route}) does not answer SMTP now: {e}"),
                match f.role {
                    Role::Edge => format!("check that the office's mail server runs and that the router reaches it at {hop}"),
                    Role::Silo => format!("if the office is offline this is expected (this silo holds its mail); otherwise make the office router admit this silo's address on port 25 of {hop}"),
                },
            ),
        });
    }
}

/// Each upstream silo answers and accepts ETRN for every checked domain.
pub fn silos(f: &Facts, out: &mut Vec<Check>) {
    for s in &f.silos {
        let host = &s.host;
        if let Err(e) = &s.probe {
            out.push(Check::fail(
                "silo.smtp",
                format!("the silo {host} does not answer SMTP: {e}"),
                format!(
                    "check relay.upstream-silo ('{}') and that the provider's silo is reachable from here on that port",
                    s.entry
                ),
            ));
            continue;
        }
        let refused: Vec<String> = s
            .etrn
            .iter()
            .filter_map(|(d, r)| r.as_ref().err().map(|e| format!("{d} ({e})")))
            .collect();
        if refused.is_empty() {
            let domains: Vec<&str> = s.etrn.iter().map(|(d, _)| d.as_str()).collect();
            out.push(Check::pass(
                "silo.etrn",
                format!(
                    "the silo {host} answers and accepts ETRN for {}",
                    domains.join(", ")
                ),
            ));
        } else {
            out.push(Check::fail(
                "silo.etrn",
                format!("the silo {host} refuses ETRN for {}: when the link returns it will not hand over held mail at once", refused.join(", ")),
                "ask the provider to add these domains to the silo's policy.domains",
            ));
        }
    }
}

/// The loaded firewall equals the rendering of the configuration (edge).
pub fn firewall(f: &Facts, out: &mut Vec<Check>) {
    if f.role == Role::Silo {
        return;
    }
    let fw = &f.firewall;
    let live = match &fw.live {
        Ok(l) => l,
        Err(_) if fw.mode == FirewallMode::Off => {
            out.push(Check::pass(
                "firewall",
                "firewall mode off: mailbag keeps no rules",
            ));
            return;
        }
        Err(e) => {
            out.push(Check::fail(
                "firewall",
                format!("mailbag's firewall rules are not loaded: {e}"),
                "run `mailbag firewall apply` (and make fw4/fw3 load them at boot, see the README)",
            ));
            return;
        }
    };
    if fw.mode != FirewallMode::Off && !live.hooked {
        out.push(Check::fail(
            "firewall",
            format!("mailbag's firewall rules are not loaded ({}): port 25 is not guarded as configured", live.backend),
            "run `mailbag firewall apply`",
        ));
        return;
    }
    let stale = stale_sets(live);
    if let Some((set, want, have)) = stale.first() {
        out.push(Check::fail(
            "firewall",
            format!(
                "the loaded set {set} holds [{}], the configuration says [{}]: the firewall is not current",
                have.join(", "),
                want.join(", ")
            ),
            "run `mailbag firewall apply` (it replaces the set elements in place)",
        ));
        return;
    }
    if live.include_current == Some(false) {
        out.push(Check::warn(
            "firewall",
            "the rules are loaded, but the file the firewall loads on its next reload is missing or out of date",
            "run `mailbag firewall apply`",
        ));
        return;
    }
    let silo: Vec<String> = live
        .sets
        .iter()
        .filter(|(n, _, _)| n.contains("silo"))
        .flat_map(|(_, w, _)| w.iter().cloned())
        .collect();
    out.push(Check::pass(
        "firewall",
        match fw.mode {
            FirewallMode::Off => "firewall mode off: no mailbag rule guards a port".to_string(),
            _ => format!(
                "firewall rules loaded ({}), silo set current: {}",
                live.backend,
                silo.join(", ")
            ),
        },
    ));
}

/// Sets whose loaded elements differ from the rendered ones (normalised: `192.0.2.7` and
/// `192.0.2.7/32` are one element).
fn stale_sets(live: &LiveRules) -> Vec<(String, Vec<String>, Vec<String>)> {
    let norm = |v: &[String]| {
        let mut n: Vec<String> = v
            .iter()
            .map(|e| Cidr::parse(e).map_or_else(|_| e.trim().to_string(), |c| c.to_string()))
            .collect();
        n.sort();
        n.dedup();
        n
    };
    live.sets
        .iter()
        .filter(|(_, want, have)| norm(want) != norm(have))
        .map(|(s, w, h)| (s.clone(), norm(w), norm(h)))
        .collect()
}

/// The spool: on flash, room on its file system, and days of mail at the recent rate.
pub fn spool(s: &SpoolFacts, out: &mut Vec<Check>) {
    let path = &s.path;
    let ram_fs = s
        .fs_type
        .as_deref()
        .filter(|t| matches!(*t, "tmpfs" | "ramfs"));
    // OpenWrt mounts /tmp in RAM (and links /var there: the I/O layer resolves links);
    // elsewhere /tmp is emptied at boot. Either way no place for mail.
    let ram_dir = ["/tmp/", "/dev/shm/"]
        .into_iter()
        .find(|p| path.starts_with(p));
    let ram_fix = "set spool.path on flash or a USB disk, e.g. /overlay/mailbag/spool.img or /mnt/usb/mailbag/spool.img";
    out.push(match (s.mtd, ram_fs, ram_dir) {
        (true, _, _) => Check::pass(
            "spool.place",
            format!("the spool is a flash partition ({path})"),
        ),
        (false, Some(fs), _) => Check::fail(
            "spool.place",
            format!("the spool {path} is in RAM ({fs}): held mail is lost when the router loses power"),
            ram_fix,
        ),
        (false, None, Some(dir)) => Check::fail(
            "spool.place",
            format!("the spool {path} is under {dir}, which is RAM on OpenWrt (and emptied at boot elsewhere): held mail is lost when the router loses power"),
            ram_fix,
        ),
        (false, None, None) => Check::pass(
            "spool.place",
            format!(
                "the spool {path} is on {}",
                s.fs_type.as_deref().unwrap_or("a file system")
            ),
        ),
    });
    if let (false, Some(alloc), Some(avail)) = (s.mtd, s.image_allocated, s.fs_available) {
        let needed = s.image_bytes.saturating_sub(alloc);
        if needed > avail {
            out.push(Check::fail(
                "spool.room",
                format!(
                    "the file system of {path} has {} free, but the spool image still grows by {} to its full {}: when the disk is full no mail is accepted",
                    size(avail),
                    size(needed),
                    size(s.image_bytes)
                ),
                "free space there, or move the spool to a larger disk (spool.path, spool.size)",
            ));
        }
    }
    let u = match &s.usage {
        Ok(u) => u,
        Err(e) => {
            out.push(Check::warn(
                "spool.days",
                format!("the spool's figures are not available: {e}"),
                "start the daemon, then check again",
            ));
            return;
        }
    };
    let room = u.used + u.free;
    if room > 0 && u.free * 10 < room {
        out.push(Check::warn(
            "spool.room",
            format!("the spool is nearly full: {} free of {} ({} messages held)", size(u.free), size(room), u.messages),
            "deliver or remove held mail (`mailbag queue list`), or give the spool more room (spool.max-bytes, spool.size)",
        ));
    }
    if u.rate_secs < RATE_MIN_SECS || u.rate_bytes == 0 {
        out.push(Check::pass(
            "spool.days",
            format!(
                "the spool has {} free ({} messages held); too little mail arrived lately to estimate how many days that lasts",
                size(u.free),
                u.messages
            ),
        ));
        return;
    }
    let per_day = u.rate_bytes.saturating_mul(86_400) / u.rate_secs;
    let days = u.free / per_day.max(1);
    let text = format!(
        "at the recent rate ({}/day) the spool's {} free hold about {days} day{} of mail",
        size(per_day),
        size(u.free),
        if days == 1 { "" } else { "s" }
    );
    let fix = "give the spool more room (spool.size and spool.max-bytes), on flash or a USB disk";
    out.push(match days {
        0 => Check::fail(
            "spool.days",
            format!("{text}: less than a day offline fills it"),
            fix,
        ),
        d if d < DAYS_WARN => Check::warn(
            "spool.days",
            format!("{text}: a long weekend offline fills it"),
            fix,
        ),
        _ => Check::pass("spool.days", text),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::facts::{FirewallFacts, HopProbe, SiloFacts, SpoolUsage};
    use crate::doctor::report::Status;
    use crate::relay::client::Extensions;

    fn statuses(c: &[Check]) -> Vec<Status> {
        c.iter().map(|c| c.status).collect()
    }

    #[test]
    fn next_hops_must_answer_and_offer_tls_when_required() {
        let hop = |r: Result<Extensions, String>| HopProbe {
            route: "relay.next-hops".into(),
            hop: "mail.office.lan:25".into(),
            result: r,
        };
        let tls = Extensions {
            starttls: true,
            ..Extensions::default()
        };
        let mut f = Facts {
            next_hops: vec![
                hop(Ok(tls)),
                hop(Ok(Extensions::default())),
                hop(Err("connection refused".into())),
            ],
            ..Facts::default()
        };
        let mut out = Vec::new();
        next_hops(&f, &mut out);
        assert_eq!(statuses(&out), [Status::Pass, Status::Pass, Status::Fail]);
        assert!(out[0].text.ends_with("answers SMTP and offers STARTTLS"));
        assert!(
            out[2]
                .text
                .contains("does not answer SMTP now: connection refused")
        );
        f.tls_required = true;
        let mut out = Vec::new();
        next_hops(&f, &mut out);
        assert_eq!(statuses(&out), [Status::Pass, Status::Fail, Status::Fail]);
        assert!(out[1].text.contains("offers no STARTTLS"));
        let mut out = Vec::new();
        next_hops(&Facts::default(), &mut out);
        assert!(out[0].text.starts_with("no next hop is configured"));
    }

    #[test]
    fn silos_must_answer_and_take_etrn() {
        let silo = |probe: Result<Extensions, String>,
                    etrn: Vec<(String, Result<String, String>)>| SiloFacts {
            entry: "s1.provider.test:25".into(),
            host: "s1.provider.test".into(),
            addrs: Ok(vec![]),
            probe,
            etrn,
        };
        let f = Facts {
            silos: vec![
                silo(
                    Ok(Extensions::default()),
                    vec![("a.test".into(), Ok("250 queued".into()))],
                ),
                silo(
                    Ok(Extensions::default()),
                    vec![
                        ("a.test".into(), Ok("251".into())),
                        ("b.test".into(), Err("459 not here".into())),
                    ],
                ),
                silo(Err("connection refused".into()), vec![]),
            ],
            ..Facts::default()
        };
        let mut out = Vec::new();
        silos(&f, &mut out);
        assert_eq!(statuses(&out), [Status::Pass, Status::Fail, Status::Fail]);
        assert!(
            out[1]
                .text
                .contains("refuses ETRN for b.test (459 not here)")
        );
        assert!(
            out[2]
                .fix
                .as_deref()
                .unwrap()
                .contains("'s1.provider.test:25'")
        );
    }

    fn live(hooked: bool, want: &[&str], have: &[&str]) -> LiveRules {
        let v = |s: &[&str]| s.iter().map(ToString::to_string).collect::<Vec<_>>();
        LiveRules {
            backend: "nft".into(),
            hooked,
            sets: vec![
                ("mailbag_ports".into(), v(&["25"]), v(&["25"])),
                ("mailbag_silo4".into(), v(want), v(have)),
            ],
            include_current: None,
        }
    }

    fn fw(mode: FirewallMode, l: Result<LiveRules, String>) -> Vec<Check> {
        let f = Facts {
            firewall: FirewallFacts {
                mode,
                live: l,
                ..FirewallFacts::default()
            },
            ..Facts::default()
        };
        let mut out = Vec::new();
        firewall(&f, &mut out);
        out
    }

    #[test]
    fn the_loaded_firewall_must_equal_the_rendering() {
        let ok = fw(
            FirewallMode::WalledGarden,
            Ok(live(
                true,
                &["192.0.2.0/28", "198.51.100.7"],
                &["198.51.100.7/32", "192.0.2.0/28"],
            )),
        );
        assert_eq!(statuses(&ok), [Status::Pass]);
        assert!(
            ok[0]
                .text
                .ends_with("silo set current: 192.0.2.0/28, 198.51.100.7")
        );
        let stale = fw(
            FirewallMode::WalledGarden,
            Ok(live(true, &["198.51.100.8"], &["198.51.100.7"])),
        );
        assert_eq!(stale[0].status, Status::Fail);
        assert!(
            stale[0].text.contains(
                "mailbag_silo4 holds [198.51.100.7], the configuration says [198.51.100.8]"
            )
        );
        let unhooked = fw(FirewallMode::WalledGarden, Ok(live(false, &[], &[])));
        assert!(unhooked[0].text.contains("are not loaded"));
        let missing = fw(FirewallMode::WalledGarden, Err("no table inet fw4".into()));
        assert_eq!(missing[0].status, Status::Fail);
        assert_eq!(
            fw(FirewallMode::Off, Err("no table".into()))[0].status,
            Status::Pass
        );
        let mut l = live(true, &["192.0.2.1"], &["192.0.2.1"]);
        l.include_current = Some(false);
        assert_eq!(
            fw(FirewallMode::WalledGarden, Ok(l))[0].status,
            Status::Warn
        );
    }

    fn spool_facts(path: &str, fs: &str, usage: SpoolUsage) -> SpoolFacts {
        SpoolFacts {
            path: path.into(),
            mtd: false,
            fs_type: Some(fs.into()),
            image_bytes: 16 << 20,
            image_allocated: Some(1 << 20),
            fs_available: Some(100 << 20),
            usage: Ok(usage),
        }
    }

    fn run_spool(s: &SpoolFacts) -> Vec<Check> {
        let mut out = Vec::new();
        spool(s, &mut out);
        out
    }

    #[test]
    fn the_spool_must_be_on_flash_with_room_for_days() {
        let day = |bytes_per_day: u64, free: u64| SpoolUsage {
            messages: 3,
            used: 1 << 20,
            free,
            rate_bytes: bytes_per_day,
            rate_secs: 86_400,
        };
        let good = run_spool(&spool_facts(
            "/overlay/mailbag/spool.img",
            "overlay",
            day(1 << 20, 12 << 20),
        ));
        assert_eq!(statuses(&good), [Status::Pass, Status::Pass]);
        assert!(
            good[1]
                .text
                .contains("(1.0 MiB/day) the spool's 12.0 MiB free hold about 12 days")
        );
        let ram = run_spool(&spool_facts(
            "/tmp/mailbag/spool.img",
            "tmpfs",
            day(0, 12 << 20),
        ));
        assert_eq!(ram[0].status, Status::Fail);
        assert!(ram[0].text.contains("is in RAM (tmpfs)"));
        let short = run_spool(&spool_facts("/srv/s.img", "ext4", day(6 << 20, 12 << 20)));
        assert_eq!(short[1].status, Status::Warn);
        let none = run_spool(&spool_facts("/srv/s.img", "ext4", day(20 << 20, 12 << 20)));
        assert_eq!(none[1].status, Status::Fail);
        let mut tight = spool_facts("/srv/s.img", "ext4", day(0, 12 << 20));
        tight.fs_available = Some(2 << 20);
        let out = run_spool(&tight);
        assert_eq!(out[1].status, Status::Fail);
        assert!(
            out[1]
                .text
                .contains("has 2.0 MiB free, but the spool image still grows by 15.0 MiB")
        );
        let full = run_spool(&spool_facts("/srv/s.img", "ext4", day(0, 100 << 10)));
        assert_eq!(statuses(&full), [Status::Pass, Status::Warn, Status::Pass]);
    }
}
