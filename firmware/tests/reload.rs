//! Settings changed without a restart: the real daemon re-reads its config file on SIGHUP
//! and applies it — a newly accepted domain is accepted by the next session, a next hop
//! moved to another port gets the held mail — while a bad file is refused with the reason
//! in the log and the daemon goes on with what it had.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::Duration;

use common::sink::{Sink, free_port, require_sink};
use common::{Client, Daemon, tmpdir, write_config_with};

fn hup(d: &Daemon) {
    let ok = Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP failed");
}

/// The reply to `RCPT TO:<rcpt>` in a fresh session.
fn rcpt_reply(d: &Daemon, rcpt: &str) -> String {
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO client.test").unwrap();
    c.cmd("MAIL FROM:<a@sender.test>").unwrap();
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>")).unwrap();
    let _ = c.cmd("QUIT");
    r
}

fn relay(next_hop: u16) -> String {
    format!("[relay]\nnext-hops = [\"127.0.0.1:{next_hop}\"]\nprobe-interval = 3600\n")
}

#[test]
fn sighup_applies_a_new_domain_to_the_next_session_and_refuses_a_bad_file() {
    let dir = tmpdir("reload-domain");
    let dead = free_port();
    write_config_with(&dir, "", &["office.test"], &relay(dead));
    let mut d = Daemon::start(&dir);
    assert!(rcpt_reply(&d, "user@office.test").starts_with("250"));
    assert!(rcpt_reply(&d, "user@new.test").starts_with("550"));

    // A session open during the reload keeps the rules it started with.
    let (mut old, _) = Client::connect(&d.addr()).unwrap();
    old.cmd("EHLO client.test").unwrap();
    old.cmd("MAIL FROM:<a@sender.test>").unwrap();

    write_config_with(&dir, "", &["office.test", "new.test"], &relay(dead));
    hup(&d);
    d.wait_log("applied: policy.domains", Duration::from_secs(10));
    assert!(rcpt_reply(&d, "user@new.test").starts_with("250"));
    assert!(
        old.cmd("RCPT TO:<user@new.test>")
            .unwrap()
            .starts_with("550")
    );
    let _ = old.cmd("QUIT");

    // A file that fails check-config changes nothing; the log says why.
    let path = dir.join("mailbag.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace("\"new.test\"", "\"new.test\", \"not a domain\""),
    )
    .unwrap();
    hup(&d);
    d.wait_log(
        "not reloaded, the running settings stay",
        Duration::from_secs(10),
    );
    assert!(
        d.log.lock().unwrap().contains("not a domain"),
        "{}",
        d.log.lock().unwrap()
    );
    assert!(rcpt_reply(&d, "user@new.test").starts_with("250"));
    assert!(rcpt_reply(&d, "user@office.test").starts_with("250"));

    // A listener change is reported as needing a restart, and the old listener still serves.
    std::fs::write(&path, good.replace("127.0.0.1:0", "127.0.0.1:1")).unwrap();
    hup(&d);
    d.wait_log("restart needed for: smtp.listen", Duration::from_secs(10));
    assert!(rcpt_reply(&d, "user@new.test").starts_with("250"));
    d.stop();
}

#[test]
fn a_next_hop_moved_by_sighup_gets_the_held_mail_at_once() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("reload-relay");
    let (dead, primary) = (free_port(), free_port());
    write_config_with(&dir, "", &["office.test"], &relay(dead));
    let mut d = Daemon::start(&dir);
    let sink = Sink::start(primary, &dir.join("sink"));
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO client.test").unwrap();
    let r = c
        .send(
            "a@sender.test",
            "user@office.test",
            b"Subject: held\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert!(r.starts_with("250"), "{r}");
    let _ = c.cmd("QUIT");
    // Refused by the dead port: held until the next retry, 15 minutes away.
    d.wait_log("deferred", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    assert!(sink.messages().is_empty());

    write_config_with(&dir, "", &["office.test"], &relay(primary));
    hup(&d);
    d.wait_log("applied: relay.next-hops", Duration::from_secs(10));
    let got = sink.wait_for(1, Duration::from_secs(20));
    assert!(got[0].contains("Subject: held"), "{got:?}");
    d.stop();
}
