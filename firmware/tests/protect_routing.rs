//! Recipient checks that reach the next hop, with real peers: a private Postfix as the
//! primary that knows alice but not mallory (verification, its answers cached on flash
//! for when it is down), accept-only-while-the-next-hop-is-down against smtp-sink, and
//! per-domain tiers (size at RCPT and after DATA, storage 452 before the body).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::postfix::{Primary, require_postfix};
use common::sink::{Sink, free_port, require_sink};
use common::{Client, Daemon, tmpdir, write_config_policy};

fn rcpt(d: &Daemon, to: &str) -> String {
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO mx.sender.test").unwrap();
    c.cmd("MAIL FROM:<a@sender.test>").unwrap();
    let r = c.cmd(&format!("RCPT TO:<{to}>")).unwrap();
    let _ = c.cmd("QUIT");
    r
}

#[test]
fn recipients_are_verified_at_the_primary_and_the_answers_outlive_it() {
    if !require_postfix() {
        return;
    }
    let dir = tmpdir("verify");
    let port = free_port();
    let mut primary = Primary::start(&dir.join("postfix"), port, "office.test", &["alice"]);
    write_config_policy(
        &dir,
        "",
        &["office.test"],
        "verify-recipients = true",
        &format!("[relay]\nnext-hops = [\"127.0.0.1:{port}\"]\nprobe-interval = 1\n"),
    );
    let mut d = Daemon::start(&dir);
    assert!(rcpt(&d, "alice@office.test").starts_with("250"));
    let r = rcpt(&d, "mallory@office.test");
    assert!(r.starts_with("550 5.1.1"), "{r}");
    d.wait_log(
        "verify: <mallory@office.test> unknown",
        Duration::from_secs(2),
    );

    primary.stop();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        rcpt(&d, "alice@office.test").starts_with("250"),
        "cached: exists"
    );
    assert!(
        rcpt(&d, "mallory@office.test").starts_with("550 5.1.1"),
        "cached: unknown"
    );
    // Not known and the primary is down: accepted (policy.verify-unknown-while-down).
    assert!(rcpt(&d, "carol@office.test").starts_with("250"));
    d.stop();
    let cache = std::fs::read(dir.join("spool.img.verify")).unwrap();
    assert!(cache.starts_with(b"MBVC\x01"), "the answers are on flash");
    assert_eq!(cache.len(), 9 + 2 * 17 + 4, "alice and mallory");

    // A restarted daemon keeps them (the primary is still down).
    let mut d = Daemon::start(&dir);
    assert!(rcpt(&d, "mallory@office.test").starts_with("550 5.1.1"));
    d.stop();
}

#[test]
fn next_hop_down_mode_defers_while_the_primary_answers() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("accept-when");
    let port = free_port();
    write_config_policy(
        &dir,
        "",
        &["office.test", "always.test"],
        "domain-rules = [\"office.test: accept-when=next-hop-down\"]",
        &format!("[relay]\nnext-hops = [\"127.0.0.1:{port}\"]\nprobe-interval = 1\n"),
    );
    let mut sink = Sink::start(port, &dir.join("sink"));
    let mut d = Daemon::start(&dir);
    let r = rcpt(&d, "bob@office.test");
    assert!(
        r.starts_with("450 4.7.1") && r.contains("primary MX"),
        "{r}"
    );
    assert!(
        rcpt(&d, "bob@always.test").starts_with("250"),
        "other domains: always"
    );
    sink.stop();
    std::thread::sleep(Duration::from_millis(1500));
    let r = rcpt(&d, "bob@office.test");
    assert!(r.starts_with("250"), "{r}");
    d.stop();
}

#[test]
fn per_domain_tiers_refuse_before_the_body_while_another_domain_accepts() {
    let dir = tmpdir("tiers");
    write_config_policy(
        &dir,
        "",
        &["office.test", "small.test"],
        "domain-rules = [\"small.test: max-bytes=10K max-message-size=6K\"]",
        // No next hop answers: everything is held.
        "[relay]\nnext-hops = [\"127.0.0.1:9\"]\n",
    );
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO mx.sender.test").unwrap();
    // SIZE= over the domain's message size: 552 at RCPT, before the body.
    c.cmd("MAIL FROM:<a@sender.test> SIZE=100000").unwrap();
    let r = c.cmd("RCPT TO:<bob@small.test>").unwrap();
    assert!(
        r.starts_with("552 5.3.4") && r.contains("small.test"),
        "{r}"
    );
    assert!(
        c.cmd("RCPT TO:<bob@office.test>")
            .unwrap()
            .starts_with("250")
    );
    c.cmd("RSET").unwrap();
    // Undeclared and too big: 552 after the dot.
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(7000));
    let r = c
        .send("a@sender.test", "bob@small.test", big.as_bytes())
        .unwrap();
    assert!(r.starts_with("552 5.3.4"), "{r}");
    // Fill most of the domain's storage (about 9.4 of 10 KiB held) …
    for n in [5000, 4000] {
        let fill = format!("Subject: fill\r\n\r\n{}\r\n", "y".repeat(n));
        let r = c
            .send("a@sender.test", "bob@small.test", fill.as_bytes())
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    // … then a declared size that does not fit is 452 at RCPT, before the body, while
    // office.test accepts.
    c.cmd("MAIL FROM:<a@sender.test> SIZE=2000").unwrap();
    let r = c.cmd("RCPT TO:<bob@small.test>").unwrap();
    assert!(
        r.starts_with("452 4.2.2") && r.contains("small.test"),
        "{r}\n{}",
        d.log.lock().unwrap()
    );
    assert!(
        c.cmd("RCPT TO:<bob@office.test>")
            .unwrap()
            .starts_with("250")
    );
    c.cmd("RSET").unwrap();
    // Undeclared, it is caught while the body streams: 452 after the dot, nothing stored.
    let more = format!("Subject: more\r\n\r\n{}\r\n", "z".repeat(3000));
    let r = c
        .send("a@sender.test", "bob@small.test", more.as_bytes())
        .unwrap();
    assert!(r.starts_with("452 4.2.2"), "{r}");
    let _ = c.cmd("QUIT");
    d.stop();
}
