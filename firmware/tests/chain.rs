//! The two-tier chain, with real peers: three mailbag instances on port 25 of three
//! loopback addresses — the office's router (edge, MX 10), the provider's silo 1 (MX 20)
//! and its far-away silo 2 (MX 30) — dnsmasq serving the office's MX records, Postfix's
//! smtp-sink as the office's mail server and swaks as the senders.
//!
//! 1. Edge down: mail sent to silo 1 waits there; the edge comes up, asks its silos for
//!    their mail (ETRN) and the mail reaches the office.
//! 2. Edge and silo 1 down: mail sent to silo 2 waits there. The edge comes back first:
//!    silo 2 notices (it probes its MX route) and delivers straight to it.
//! 3. Edge and silo 1 down again, mail at silo 2. Silo 1 comes back while the edge is still
//!    down: silo 2 **moves the mail up** to silo 1, the more preferred MX (README "Two
//!    tiers"), which holds it. The edge comes up: everything is delivered, each
//!    Message-ID exactly once.
//! 4. A loop (silo 1 routes a domain to silo 2, silo 2's MX sends it back to silo 1): the
//!    message circles until its `Received:` count passes the hop limit, is refused with
//!    554 5.4.6, and its bounce to an undeliverable sender is dropped — nothing circles or
//!    bounces forever.
//! 5. `mailbag etrn` (the WAN hotplug's) asks both silos; one answering is enough.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::dnsmasq::{Dnsmasq, require_dnsmasq};
use common::sink::{Sink, free_port, require_sink};
use common::{Daemon, spool_messages, tmpdir};

const EDGE: &str = "127.0.0.10";
const SILO1: &str = "127.0.0.20";
const SILO2: &str = "127.0.0.30";

fn require_swaks() -> bool {
    let ok = Command::new("sh")
        .args(["-c", "command -v swaks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "swaks is required in CI (.ci/deps/smtp.apt)"
        );
        eprintln!("skipped: swaks not installed");
    }
    ok
}

/// Writes `dir/mailbag.toml` for one instance on `ip:25`.
fn config(dir: &Path, role: &str, host: &str, ip: &str, domains: &[&str], relay: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let domains: Vec<String> = domains.iter().map(|d| format!("\"{d}\"")).collect();
    let cfg = format!(
        r#"role = "{role}"
[smtp]
hostname = "{host}"
listen = ["{ip}:25"]
[policy]
domains = [{}]
[spool]
path = "{}"
size = 8388608
max-bytes = 6000000
[relay]
probe-interval = 1
{relay}
[firewall]
mode = "off"
[web]
listen = []
[daemon]
control-socket = "{}"
"#,
        domains.join(", "),
        dir.join("spool.img").display(),
        dir.join("control.sock").display(),
    );
    std::fs::write(dir.join("mailbag.toml"), cfg).unwrap();
}

/// One message through swaks; true when the server said 250.
fn swaks(server: &str, to: &str, id: &str) -> bool {
    let out = Command::new("swaks")
        .args([
            "--server",
            &format!("{server}:25"),
            "--from",
            "alice@sender.test",
        ])
        .args(["--to", to, "--helo", "client.sender.test"])
        .args(["--header", &format!("Message-Id: <{id}@sender.test>")])
        .args([
            "--header",
            &format!("Subject: chain {id}"),
            "--body",
            "held and handed on",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("<-  250 2.0.0 Ok: queued")
}

fn log_count(d: &Daemon, what: &str) -> usize {
    d.log.lock().unwrap().matches(what).count()
}

/// Waits until `d`'s log holds `what` `n` times.
fn wait_count(d: &Daemon, what: &str, n: usize, limit: Duration) {
    let start = Instant::now();
    while log_count(d, what) < n {
        assert!(
            start.elapsed() < limit,
            "{n} × '{what}' expected in the log:\n{}",
            d.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Message-IDs at the sink, in any order.
fn message_ids(sink: &Sink) -> Vec<String> {
    let mut ids: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(|l| l[11..].trim().to_string())
        })
        .collect();
    ids.sort();
    ids
}

fn bindable(ip: &str) -> bool {
    TcpListener::bind((ip, 25)).is_ok()
}

#[test]
fn edge_silo1_silo2_hold_move_up_and_deliver_exactly_once() {
    if !require_sink() || !require_dnsmasq() || !require_swaks() {
        return;
    }
    if ![EDGE, SILO1, SILO2].iter().all(|ip| bindable(ip)) {
        assert!(
            std::env::var_os("CI").is_none(),
            "port 25 of {EDGE}, {SILO1} and {SILO2} must be free in CI"
        );
        eprintln!("skipped: cannot listen on port 25 of 127.0.0.10/20/30 (not root, or in use)");
        return;
    }
    let dir = tmpdir("chain");
    let dns = Dnsmasq::start(&[
        "--mx-host=office.test,edge.office.test,10".into(),
        "--mx-host=office.test,silo1.provider.test,20".into(),
        "--mx-host=office.test,silo2.provider.test,30".into(),
        "--mx-host=loop.test,silo1.provider.test,20".into(),
        "--mx-host=loop.test,silo2.provider.test,30".into(),
        format!("--host-record=edge.office.test,{EDGE}"),
        format!("--host-record=silo1.provider.test,{SILO1}"),
        format!("--host-record=silo2.provider.test,{SILO2}"),
    ]);
    let office = free_port();
    let sink = Sink::start(office, &dir.join("office"));
    let dns_line = format!("dns-servers = [\"{}\"]", dns.addr);
    let (edge_dir, s1_dir, s2_dir): (PathBuf, PathBuf, PathBuf) =
        (dir.join("edge"), dir.join("silo1"), dir.join("silo2"));
    config(
        &edge_dir,
        "edge",
        "edge.office.test",
        EDGE,
        &["office.test"],
        &format!(
            "next-hops = [\"127.0.0.1:{office}\"]\n\
             upstream-silo = [\"silo1.provider.test:25\", \"silo2.provider.test:25\"]\n{dns_line}"
        ),
    );
    // Silo 1 sends loop.test to silo 2 (a misconfiguration), silo 2 sends it back by MX.
    config(
        &s1_dir,
        "silo",
        "silo1.provider.test",
        SILO1,
        &["office.test", "loop.test"],
        &format!("routes = [\"loop.test = {SILO2}:25\"]\n{dns_line}"),
    );
    config(
        &s2_dir,
        "silo",
        "silo2.provider.test",
        SILO2,
        &["office.test", "loop.test"],
        &dns_line,
    );
    let mut silo1 = Daemon::start(&s1_dir);
    let mut silo2 = Daemon::start(&s2_dir);

    // 1. The edge is down: silo 1 holds; the edge comes up and gets it.
    for id in ["a1", "a2"] {
        assert!(swaks(SILO1, "bob@office.test", id), "silo 1 accepts {id}");
    }
    wait_count(&silo1, "deferred ", 2, Duration::from_secs(10));
    assert_eq!(sink.messages().len(), 0);
    let mut edge = Daemon::start(&edge_dir);
    sink.wait_for(2, Duration::from_secs(15));
    assert_eq!(message_ids(&sink), ["<a1@sender.test>", "<a2@sender.test>"]);
    edge.wait_log(
        "ETRN office.test to silo1.provider.test",
        Duration::from_secs(5),
    );
    edge.wait_log(
        "ETRN office.test to silo2.provider.test",
        Duration::from_secs(5),
    );

    // 2. Edge and silo 1 down: silo 2 holds; the edge returns first and gets it directly.
    edge.stop();
    silo1.stop();
    assert!(swaks(SILO2, "bob@office.test", "c1"), "silo 2 accepts c1");
    wait_count(&silo2, "deferred ", 1, Duration::from_secs(10));
    edge = Daemon::start(&edge_dir);
    sink.wait_for(3, Duration::from_secs(15));
    let c1: Vec<String> = sink
        .messages()
        .into_iter()
        .filter(|m| m.contains("<c1@sender.test>"))
        .collect();
    assert_eq!(c1.len(), 1);
    assert!(
        c1[0].contains("by silo2.provider.test (mailbag)")
            && c1[0].contains("by edge.office.test (mailbag)")
            && !c1[0].contains("by silo1.provider.test"),
        "silo 2 → edge, silo 1 still down: {}",
        c1[0]
    );

    // 3. Edge and silo 1 down: silo 2 holds.
    edge.stop();
    for id in ["b1", "b2", "b3"] {
        assert!(swaks(SILO2, "bob@office.test", id), "silo 2 accepts {id}");
    }
    wait_count(&silo2, "deferred ", 4, Duration::from_secs(10));
    // Nothing answers: silo 2 keeps probing its MX route (edge, then silo 1), and holds.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(log_count(&silo2, "delivered "), 1, "c1 only");

    // Silo 1 returns, the edge is still down: silo 2 moves the mail up to silo 1.
    let started = Instant::now();
    silo1 = Daemon::start(&s1_dir);
    wait_count(
        &silo2,
        " to silo1.provider.test ",
        3,
        Duration::from_secs(10),
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "moved up {:?} after silo 1 returned (probe interval 1 s)",
        started.elapsed()
    );
    wait_count(&silo1, "deferred ", 3, Duration::from_secs(10));
    silo2.stop();
    assert!(
        spool_messages(&s2_dir.join("spool.img")).is_empty(),
        "silo 2 let go of everything"
    );
    silo2 = Daemon::start(&s2_dir);
    assert_eq!(sink.messages().len(), 3, "the edge is still down");

    // The edge comes up: silo 1 hands everything over, exactly once.
    edge = Daemon::start(&edge_dir);
    sink.wait_for(6, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    let ids = message_ids(&sink);
    assert_eq!(
        ids,
        [
            "<a1@sender.test>",
            "<a2@sender.test>",
            "<b1@sender.test>",
            "<b2@sender.test>",
            "<b3@sender.test>",
            "<c1@sender.test>"
        ],
        "each Message-ID exactly once"
    );
    let via_both = sink
        .messages()
        .iter()
        .filter(|m| {
            m.contains("by silo2.provider.test (mailbag)")
                && m.contains("by silo1.provider.test (mailbag)")
                && m.contains("by edge.office.test (mailbag)")
        })
        .count();
    assert_eq!(via_both, 3, "b1..b3 went silo 2 → silo 1 → edge");

    // 4. A loop between the silos is cut by the hop count, and nothing bounces forever.
    assert!(swaks(SILO1, "carol@loop.test", "loop1"));
    let log = |d: &Daemon| d.log.lock().unwrap().clone();
    let both = || log(&silo1) + &log(&silo2);
    let start = Instant::now();
    while !both().contains("message aborted: too many hops (mail loop)") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the loop was never cut:\n{}",
            both()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // It went round about 100 times (silo 1 → silo 2 → silo 1 …) before it was refused.
    // (silo 2 was restarted since it moved b1..b3: its log holds only loop deliveries.)
    let hops = log_count(&silo1, " to 127.0.0.30 ") + log_count(&silo2, " to silo1.provider.test ");
    assert_eq!(hops, 100, "deliveries between the silos before the refusal");
    // The refusal bounced to the sender, whose domain does not exist: that bounce fails
    // for good and is not bounced again.
    while !both().contains("no bounce: the sender is <>") {
        assert!(start.elapsed() < Duration::from_secs(80), "{}", both());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        both().matches("message aborted: too many hops").count(),
        1,
        "refused once"
    );
    assert_eq!(
        both().matches("bounce notice").count(),
        1,
        "one bounce, never bounced on"
    );
    // The WAN hotplug's `mailbag etrn` asks every silo (names through relay.dns-servers);
    // one silo answering is enough.
    let etrn = || {
        let o = Command::new(env!("CARGO_BIN_EXE_mailbag"))
            .args(["etrn", "--config"])
            .arg(edge_dir.join("mailbag.toml"))
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (o.status.success(), text(&o.stdout), text(&o.stderr))
    };
    let (ok, out, err) = etrn();
    assert!(ok, "{out}{err}");
    for silo in ["silo1", "silo2"] {
        assert!(
            out.contains(&format!("{silo}.provider.test:25: ETRN office.test: 25")),
            "{out}"
        );
    }
    silo2.stop();
    let (ok, out, err) = etrn();
    assert!(ok, "silo 1 answered: {out}{err}");
    assert!(
        err.contains("silo2.provider.test:25: ETRN office.test: cannot connect"),
        "{err}"
    );
    edge.stop();
    silo1.stop();
    for d in [&edge_dir, &s1_dir, &s2_dir] {
        assert!(
            spool_messages(&d.join("spool.img")).is_empty(),
            "{} holds nothing",
            d.display()
        );
    }
    assert_eq!(
        message_ids(&sink).len(),
        6,
        "the looping message never reached the office"
    );
    drop(dns);
    std::fs::remove_dir_all(&dir).unwrap();
}
