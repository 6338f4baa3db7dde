//! Protection at connect and across connections, with real peers: a DNS blocklist served
//! by dnsmasq (a listed client gets 554 with the list's reason, another gets through, a
//! stopped DNS server lets mail through and the log says why), a flood of idle connections
//! from one address while another still sends, and a guesser that reconnects after every
//! `421 too many errors`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::dnsmasq::{Dnsmasq, require_dnsmasq};
use common::protect::{connect_from, socket_from};
use common::{Daemon, tmpdir, write_config_policy};

/// A blocklist zone: 127.0.0.2 is listed (with a reason), 127.0.0.3 is not.
fn zone() -> Vec<String> {
    vec![
        "--host-record=2.0.0.127.bl.test,127.0.0.2".into(),
        "--txt-record=2.0.0.127.bl.test,\"Listed in bl.test: see https://bl.test/q?127.0.0.2\""
            .into(),
        // Senders' domains resolve, so no spam rule fires on them.
        "--mx-host=sender.test,mx.sender.test,10".into(),
        "--host-record=mx.sender.test,192.0.2.25".into(),
    ]
}

fn send_from(local: &str, addr: &str) -> (String, String) {
    let (mut c, greeting) = connect_from(local, addr).unwrap();
    if !greeting.starts_with("220") {
        let after = c.cmd("EHLO client.sender.test").unwrap_or_default();
        let _ = c.cmd("QUIT");
        return (greeting, after);
    }
    c.cmd("EHLO client.sender.test").unwrap();
    let r = c
        .send(
            "a@sender.test",
            "bob@office.test",
            b"Subject: hi\r\nMessage-ID: <1@sender.test>\r\nDate: Tue, 1 Dec 2026 12:00:00 +0000\r\n\r\nhello\r\n",
        )
        .unwrap();
    let _ = c.cmd("QUIT");
    (greeting, r)
}

#[test]
fn a_listed_client_gets_554_with_the_reason_and_the_list_failing_lets_mail_through() {
    if !require_dnsmasq() {
        return;
    }
    let dir = tmpdir("dnsbl");
    let mut dns = Dnsmasq::start(&zone());
    write_config_policy(
        &dir,
        "",
        &["office.test"],
        "dnsbl = [\"bl.test\"]\ndnsbl-timeout = 3",
        &format!("[relay]\ndns-servers = [\"{}\"]\n", dns.addr),
    );
    let mut d = Daemon::start(&dir);
    let (greeting, after) = send_from("127.0.0.2", &d.addr());
    assert!(
        greeting.starts_with("554 5.7.1") && greeting.contains("bl.test"),
        "{greeting}"
    );
    assert!(
        greeting.contains("Listed in bl.test: see https://bl.test/q?127.0.0.2"),
        "{greeting}"
    );
    assert!(
        after.starts_with("503"),
        "commands after a 554 greeting get 503: {after}"
    );
    let (greeting, r) = send_from("127.0.0.3", &d.addr());
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(r.starts_with("250"), "{r}");
    d.wait_log(
        "refused [127.0.0.2]: listed by bl.test",
        Duration::from_secs(5),
    );

    // The DNS server goes away: the listed client is let through, the log says why.
    drop(dns_stop(&mut dns));
    let (greeting, r) = send_from("127.0.0.2", &d.addr());
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(r.starts_with("250"), "{r}");
    d.wait_log("[127.0.0.2] let through", Duration::from_secs(10));
    d.stop();
}

fn dns_stop(dns: &mut Dnsmasq) -> Dnsmasq {
    std::mem::replace(
        dns,
        Dnsmasq::start(&["--address=/unused.test/192.0.2.1".into()]),
    )
}

#[test]
fn eighty_idle_connections_from_one_address_do_not_lock_out_another() {
    let dir = tmpdir("flood");
    write_config_policy(
        &dir,
        "max-sessions = 32",
        &["office.test"],
        "sessions-per-client = 8\nstress-idle-timeout = 2",
        "",
    );
    let mut d = Daemon::start(&dir);
    // 80 connections from 127.0.0.5 that say nothing.
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..80 {
        let s = socket_from("127.0.0.5", &d.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut first = [0u8; 64];
        let n = std::io::Read::read(&mut &s, &mut first).unwrap_or(0);
        let line = String::from_utf8_lossy(&first[..n]).to_string();
        if line.starts_with("421 4.7.0") {
            refused += 1;
        } else {
            assert!(line.starts_with("220"), "{line}");
        }
        idle.push(s);
    }
    assert_eq!(refused, 72, "all but 8 of the flood are turned away");
    // Another address still gets through, at once.
    let start = Instant::now();
    let (greeting, r) = {
        let (mut c, g) = connect_from("127.0.0.6", &d.addr()).unwrap();
        c.cmd("EHLO other.sender.test").unwrap();
        let r = c
            .send(
                "a@sender.test",
                "bob@office.test",
                b"Subject: still here\r\n\r\nhi\r\n",
            )
            .unwrap();
        let _ = c.cmd("QUIT");
        (g, r)
    };
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(r.starts_with("250"), "{r}");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(idle);
    d.stop();
}

#[test]
fn idle_sessions_are_cut_short_under_stress() {
    let dir = tmpdir("stress");
    write_config_policy(
        &dir,
        "max-sessions = 8",
        &["office.test"],
        "sessions-per-client = 8\nstress-idle-timeout = 2",
        "",
    );
    let mut d = Daemon::start(&dir);
    let mut idle = Vec::new();
    for _ in 0..6 {
        let s = socket_from("127.0.0.7", &d.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        idle.push(s);
    }
    // Six of eight slots taken (75 %): idle sessions close after 2 s, not 300 s.
    let start = Instant::now();
    let mut all = String::new();
    let mut buf = [0u8; 512];
    loop {
        match std::io::Read::read(&mut &idle[0], &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(all.contains("421 4.4.2"), "{all}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    d.stop();
}

#[test]
fn a_guesser_that_reconnects_is_cooled_down_and_others_are_not() {
    let dir = tmpdir("guess");
    write_config_policy(
        &dir,
        "max-bad-commands = 5",
        &["office.test"],
        "recipients = [\"alice@office.test\"]\nguess-threshold = 20\nguess-window = 600\nguess-cooldown = 600\nguess-delay = 1",
        "",
    );
    let mut d = Daemon::start(&dir);
    let mut replies = Vec::new();
    let mut connections = 0;
    let start = Instant::now();
    // Guess 40 addresses, reconnecting after every 421.
    let mut guess = 0;
    while guess < 40 {
        let (mut c, _) = connect_from("127.0.0.8", &d.addr()).unwrap();
        connections += 1;
        c.cmd("EHLO guesser.test").unwrap();
        c.cmd("MAIL FROM:<x@guesser.test>").unwrap();
        while guess < 40 {
            let r = match c.cmd(&format!("RCPT TO:<user{guess}@office.test>")) {
                Ok(r) => r,
                Err(_) => break,
            };
            guess += 1;
            let closed = r.contains("421");
            replies.push(r);
            if closed {
                break;
            }
        }
    }
    let unknown = replies
        .iter()
        .filter(|r| r.starts_with("550 5.1.1"))
        .count();
    let cooled = replies
        .iter()
        .filter(|r| r.starts_with("450 4.7.1"))
        .count();
    assert_eq!(
        unknown, 20,
        "the first 20 guesses are answered: {replies:?}"
    );
    assert!(cooled >= 15, "then 450 4.7.1: {replies:?}");
    assert!(connections >= 4, "the guesser reconnected ({connections})");
    eprintln!(
        "40 guesses over {connections} connections took {:?}",
        start.elapsed()
    );
    // A real recipient from the guesser is not told it exists while cooling down.
    let (mut c, _) = connect_from("127.0.0.8", &d.addr()).unwrap();
    c.cmd("EHLO guesser.test").unwrap();
    c.cmd("MAIL FROM:<x@guesser.test>").unwrap();
    assert!(
        c.cmd("RCPT TO:<alice@office.test>")
            .unwrap()
            .starts_with("450 4.7.1")
    );
    // Another client is not affected.
    let (mut c, _) = connect_from("127.0.0.9", &d.addr()).unwrap();
    c.cmd("EHLO mx.sender.test").unwrap();
    c.cmd("MAIL FROM:<a@sender.test>").unwrap();
    assert!(
        c.cmd("RCPT TO:<alice@office.test>")
            .unwrap()
            .starts_with("250")
    );
    d.wait_log(
        "guessing: [127.0.0.8] refused 20 recipients",
        Duration::from_secs(2),
    );
    d.stop();
}
