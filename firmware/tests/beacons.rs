//! Heartbeat beacons between two real mailbag instances: an edge sends signed beacons to
//! its silo over SMTP (`XBEACON`); when they stop, the silo tells the router's contact
//! (Postfix's smtp-sink as that contact's MX) that the router is silent, and again when it
//! is back. A forged and a replayed beacon are refused.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::sink::{Sink, free_port, require_sink};
use common::{Client, Daemon, tmpdir, write_config_with};
use mailbag::monitor::beacon::{Beacon, PrimaryReport};

const SECRET: &str = "s3cr3t-0f-office1-shared";

fn beacon(seq: u64, secret: &str) -> String {
    Beacon {
        router: "office1".into(),
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        seq,
        uptime: 1,
        held: 0,
        held_bytes: 0,
        primary: PrimaryReport::Up,
        spool_free: 1 << 20,
    }
    .encode(secret.as_bytes())
}

#[test]
fn the_silo_hears_its_router_and_tells_its_contact_when_it_falls_silent() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("beacons");
    let mx = free_port();
    let contact_mx = Sink::start(mx, &dir.join("contact-mx"));

    let silo_dir = dir.join("silo");
    std::fs::create_dir_all(&silo_dir).unwrap();
    let tables = format!(
        r#"[notify]
via = "127.0.0.1:{mx}"
[monitor]
beacon-interval = 1
overdue-after = 4
routers = ["office1 {SECRET} admin@office-it.example"]
"#
    );
    let cfg = std::fs::read_to_string(write_config_with(&silo_dir, "", &["office.test"], &tables))
        .unwrap()
        .replace("role = \"edge\"", "role = \"silo\"")
        .replace("mx.office.test", "silo.provider.test");
    std::fs::write(silo_dir.join("mailbag.toml"), cfg).unwrap();
    let mut silo = Daemon::start(&silo_dir);

    // A forged beacon (another secret) and a replayed one are refused; a fresh one is taken.
    let (mut c, _) = Client::connect(&silo.addr()).unwrap();
    c.cmd("EHLO attacker.test").unwrap();
    let forged = c
        .cmd(&format!("XBEACON {}", beacon(1, "not-the-shared-secret")))
        .unwrap();
    assert!(
        forged.starts_with("554 5.7.0 beacon signature does not match"),
        "{forged}"
    );
    let good = beacon(1_000, SECRET);
    let r = c.cmd(&format!("XBEACON {good}")).unwrap();
    assert!(
        r.starts_with("250 2.0.0 beacon from office1 accepted"),
        "{r}"
    );
    let replayed = c.cmd(&format!("XBEACON {good}")).unwrap();
    assert!(
        replayed.starts_with("554 5.7.0 beacon replayed"),
        "{replayed}"
    );
    let junk = c.cmd("XBEACON hello").unwrap();
    assert!(junk.starts_with("501 5.5.4 malformed beacon"), "{junk}");
    c.cmd("QUIT").unwrap();
    silo.wait_log("err: beacon refused from 127.0.0.1", Duration::from_secs(5));

    // The edge beacons every second.
    let edge_dir = dir.join("edge");
    std::fs::create_dir_all(&edge_dir).unwrap();
    let edge_tables = format!(
        r#"[relay]
upstream-silo = "{}"
probe-interval = 1
[monitor]
router-id = "office1"
beacon-secret = "{SECRET}"
beacon-interval = 1
"#,
        silo.addr()
    );
    write_config_with(&edge_dir, "", &["office.test"], &edge_tables);
    let mut edge = Daemon::start(&edge_dir);
    edge.wait_log("beacon from office1 accepted", Duration::from_secs(10));
    // Silent: the edge dies (power cut); after 4 intervals the contact hears of it.
    edge.kill9();
    let alerts = contact_mx.wait_for(1, Duration::from_secs(20));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(
            "Subject: [mailbag silo.provider.test] router office1 is SILENT: no beacon for "
        ),
        "{}",
        alerts[0]
    );
    assert!(
        alerts[0].contains("X-Rcpt-Args: <admin@office-it.example>"),
        "{}",
        alerts[0]
    );

    // Back: the edge starts again.
    let mut edge = Daemon::start(&edge_dir);
    let alerts = contact_mx.wait_for(2, Duration::from_secs(20));
    let back = alerts
        .iter()
        .find(|m| m.contains("X-Mailbag-Event: router-back"))
        .unwrap_or_else(|| panic!("no back notice: {alerts:?}"));
    assert!(back.contains("router office1 is back after "), "{back}");
    edge.stop();
    silo.stop();
}
