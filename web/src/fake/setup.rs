//! The demo's setup check: a plausible `mailbag doctor` answer built from the demo's
//! settings, with the same shape and wording as the daemon's (which asks DNS and the
//! servers for real). The demo's primary is down, so its next-hop line fails; the
//! firewall line follows the page's Apply button.

use crate::backend::{SetupCheck, SetupReport};

fn line(id: &str, status: &str, text: String, fix: Option<String>) -> SetupCheck {
    SetupCheck {
        id: id.into(),
        status: status.into(),
        text,
        fix,
    }
}

/// The report for an edge named `host` with these domains, next hop, silo and firewall
/// state.
pub fn report(
    host: &str,
    domains: &str,
    next_hop: &str,
    silo: &str,
    firewall_applied: bool,
) -> SetupReport {
    let mut c = vec![line(
        "daemon",
        "pass",
        "the daemon is running (demo backend)".into(),
        None,
    )];
    let silo_host = silo.rsplit_once(':').map_or(silo, |(h, _)| h);
    for d in domains.lines().map(str::trim).filter(|d| !d.is_empty()) {
        c.push(line(
            "mx.present",
            "pass",
            format!("MX of {d}: 10 {host}, 20 {silo_host}"),
            None,
        ));
        c.push(line(
            "mx.office",
            "pass",
            format!("this router ({host}) is the preferred MX of {d} (10)"),
            None,
        ));
        c.push(line(
            "mx.backup",
            "pass",
            format!("backup MX of {d}: {silo_host} (20)"),
            None,
        ));
        c.push(line(
            "mta-sts",
            "pass",
            format!("{d} publishes no MTA-STS policy (optional)"),
            None,
        ));
        c.push(line(
            "tls-rpt",
            "warn",
            format!("{d} has no TLS-RPT record: nobody is told when senders fail to reach its MX hosts over TLS"),
            Some(format!("add `_smtp._tls.{d}. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{d}\"`")),
        ));
    }
    if !silo.is_empty() {
        c.push(line(
            "silo.etrn",
            "pass",
            format!("the silo {silo_host} answers and accepts ETRN for every domain"),
            None,
        ));
    }
    c.push(line(
        "next-hop",
        "fail",
        format!(
            "the next hop {next_hop} (relay.next-hops) does not answer SMTP now: connection refused"
        ),
        Some(format!(
            "check that the office's mail server runs and that the router reaches it at {next_hop}"
        )),
    ));
    c.push(if firewall_applied {
        line(
            "firewall",
            "pass",
            "firewall rules loaded (demo: nothing installed)".into(),
            None,
        )
    } else {
        line(
            "firewall",
            "fail",
            "mailbag's firewall rules are not loaded: port 25 is not guarded as configured".into(),
            Some("run `mailbag firewall apply` (or the Firewall page's Apply)".into()),
        )
    });
    c.push(line(
        "spool.place",
        "pass",
        "the spool /srv/mailbag/spool.img is on overlay".into(),
        None,
    ));
    SetupReport::new(c)
}
