//! Delivery with real peers: Postfix's smtp-sink (and a second mailbag) as the office's
//! primary server on loopback. Held mail goes out when the primary comes back, exactly
//! once; permanent failures produce an RFC 3464 bounce (never to `<>`); ETRN flushes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::sink::{Sink, free_port, require_sink, subject_of};
use common::{Client, Daemon, spool_messages, tmpdir, write_config_with};

fn relay(next_hop_port: u16, probe: u32) -> String {
    format!("[relay]\nnext-hops = [\"127.0.0.1:{next_hop_port}\"]\nprobe-interval = {probe}\n")
}

#[test]
fn held_mail_is_delivered_exactly_once_when_the_primary_returns() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("deliver");
    let primary = free_port();
    let probe = 2;
    write_config_with(&dir, "", &["office.test"], &relay(primary, probe));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    let n = 40;
    for i in 0..n {
        let body = format!(
            "Subject: held-{i:03}\r\nMessage-ID: <held-{i}@sender.test>\r\n\r\nbody {i}\r\n"
        );
        let r = c
            .send("a@sender.test", "bob@office.test", body.as_bytes())
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    c.cmd("QUIT").unwrap();
    // The primary is down: everything is held.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        d.log
            .lock()
            .unwrap()
            .contains("could not connect to the next hop")
    );

    let up = Instant::now();
    let sink = Sink::start(primary, &dir.join("sink"));
    let got = sink.wait_for(n, Duration::from_secs(30));
    let first = got.len();
    let elapsed = up.elapsed();
    let subjects: Vec<String> = got.iter().filter_map(|m| subject_of(m)).collect();
    let unique: BTreeSet<&String> = subjects.iter().collect();
    assert_eq!(
        first, n,
        "all held messages delivered (got {first} in {elapsed:?})"
    );
    assert_eq!(unique.len(), n, "each exactly once: {subjects:?}");
    let expected: BTreeSet<String> = (0..n).map(|i| format!("held-{i:03}")).collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    // Every delivered copy carries our Received header and the sender's content intact.
    assert!(
        got.iter()
            .all(|m| m.contains("by mx.office.test (mailbag) with ESMTP"))
    );
    eprintln!(
        "{n} held messages delivered {elapsed:?} after the primary came back (probe every {probe} s)"
    );
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    assert!(
        spool_messages(&dir.join("spool.img")).is_empty(),
        "delivered mail leaves the spool"
    );
    assert_eq!(sink.messages().len(), n, "no duplicates after the fact");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A second mailbag is the primary: it knows alice and bob but not carol.
fn primary_mailbag(dir: &Path) -> Daemon {
    std::fs::create_dir_all(dir).unwrap();
    // Its own next hop is down: what it accepts stays in its spool for the test to read.
    let hold = format!("[relay]\nnext-hops = [\"127.0.0.1:{}\"]\n", free_port());
    let mut cfg =
        std::fs::read_to_string(write_config_with(dir, "", &["office.test"], &hold)).unwrap();
    cfg = cfg.replace(
        "[spool]",
        "recipients = [\"alice@office.test\", \"bob@office.test\"]\n[spool]",
    );
    std::fs::write(dir.join("mailbag.toml"), cfg).unwrap();
    Daemon::start(dir)
}

#[test]
fn a_refused_recipient_gets_a_bounce_and_the_others_are_delivered() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("bounce");
    let mut primary = primary_mailbag(&dir.join("primary"));
    // The sender's own mail server (its MX, here by a route): where the bounce must land.
    let mailbox_port = free_port();
    let mailbox = Sink::start(mailbox_port, &dir.join("mailbox"));
    write_config_with(
        &dir,
        "",
        &["office.test"],
        &format!(
            "{}routes = [\"sender.test = 127.0.0.1:{mailbox_port}\"]\n",
            relay(primary.port, 1)
        ),
    );
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for (from, subject) in [("a@sender.test", "to three"), ("", "from null sender")] {
        assert!(
            c.cmd(&format!("MAIL FROM:<{from}>"))
                .unwrap()
                .starts_with("250")
        );
        for rcpt in ["alice@office.test", "carol@office.test"] {
            assert!(
                c.cmd(&format!("RCPT TO:<{rcpt}>"))
                    .unwrap()
                    .starts_with("250")
            );
        }
        assert!(c.cmd("DATA").unwrap().starts_with("354"));
        use std::io::Write;
        c.w.write_all(
            format!(
                "Subject: {subject}\r\nMessage-ID: <{}@x>\r\n\r\nhello\r\n.\r\n",
                subject.len()
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(c.reply().unwrap().starts_with("250"));
    }
    c.cmd("QUIT").unwrap();

    // alice delivered twice, carol refused twice: one bounce, to the real sender's mailbox.
    let got = mailbox.wait_for(1, Duration::from_secs(30));
    let start = Instant::now();
    while !d.log.lock().unwrap().contains("never bounce a bounce") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            d.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    d.stop();
    primary.stop();
    let at_primary = spool_messages(&dir.join("primary/spool.img"));
    let for_alice: Vec<_> = at_primary
        .iter()
        .filter(|(_, to, _)| to == &["alice@office.test"])
        .collect();
    assert_eq!(for_alice.len(), 2, "{at_primary:?}");
    assert_eq!(
        at_primary.len(),
        2,
        "nothing else reached the office: {at_primary:?}"
    );
    let got = mailbox.wait_for(got.len().max(1), Duration::from_secs(1));
    assert_eq!(
        got.len(),
        1,
        "one bounce; none for the null sender's message: {got:#?}"
    );
    let dsn = &got[0];
    assert!(
        dsn.contains("X-Mail-Args: <>"),
        "a bounce comes from <>: {dsn}"
    );
    assert!(dsn.contains("X-Rcpt-Args: <a@sender.test>"), "{dsn}");
    assert!(
        dsn.contains("multipart/report") && dsn.contains("report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; carol@office.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Subject: to three"),
        "the original headers are attached: {dsn}"
    );
    assert!(
        !dsn.contains("alice@office.test\r\nAction") && !dsn.contains("alice@office.test\nAction"),
        "delivered recipients are not reported"
    );
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn etrn_flushes_a_configured_domain_at_once() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("etrn");
    let primary = free_port();
    // A probe interval of an hour: only ETRN can make this mail go now.
    write_config_with(&dir, "", &["office.test"], &relay(primary, 3600));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO silo.provider.test").unwrap();
    for i in 0..5 {
        let r = c
            .send(
                "a@sender.test",
                "bob@office.test",
                format!("Subject: etrn-{i}\r\n\r\nx\r\n").as_bytes(),
            )
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let sink = Sink::start(primary, &dir.join("sink"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sink.messages().len(), 0, "nothing goes before ETRN");

    assert!(
        c.cmd("ETRN elsewhere.test").unwrap().starts_with("459"),
        "not our domain"
    );
    let r = c.cmd("ETRN @office.test").unwrap();
    assert!(r.starts_with("250"), "{r}");
    let got = sink.wait_for(5, Duration::from_secs(10));
    assert_eq!(got.len(), 5);
    std::thread::sleep(Duration::from_millis(300));
    let r = c.cmd("ETRN office.test").unwrap();
    assert!(r.starts_with("251"), "nothing waiting any more: {r}");
    c.cmd("QUIT").unwrap();
    d.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mail_held_across_kill_9_is_delivered_after_restart_exactly_once() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("restart");
    let primary = free_port();
    write_config_with(&dir, "", &["office.test"], &relay(primary, 1));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for i in 0..10 {
        let r = c
            .send(
                "a@sender.test",
                "bob@office.test",
                format!("Subject: kept-{i}\r\n\r\nx\r\n").as_bytes(),
            )
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    drop(c);
    std::thread::sleep(Duration::from_millis(1200));
    d.kill9();
    let mut d = Daemon::start(&dir);
    let sink = Sink::start(primary, &dir.join("sink"));
    let got = sink.wait_for(10, Duration::from_secs(20));
    let subjects: BTreeSet<String> = got.iter().filter_map(|m| subject_of(m)).collect();
    assert_eq!((got.len(), subjects.len()), (10, 10), "{subjects:?}");
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    assert_eq!(sink.messages().len(), 10);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn queue_flush_and_etrn_commands_deliver_held_mail_now() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("flushcmd");
    let primary = free_port();
    // example.test has its own server, started later: the first delivery to the primary
    // makes all held mail due (the next hop is back), and example.test's must still wait
    // for its own server and the ETRN below.
    let other = free_port();
    write_config_with(
        &dir,
        "",
        &["office.test", "example.test"],
        &format!(
            "{}routes = [\"example.test = 127.0.0.1:{other}\"]\n",
            relay(primary, 3600)
        ),
    );
    let mut d = Daemon::start(&dir);
    // The config file names port 0; point the CLI at the real port.
    let cfg = dir.join("mailbag.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("127.0.0.1:0", &d.addr());
    let cli_cfg = dir.join("cli.toml");
    std::fs::write(&cli_cfg, text).unwrap();
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for (i, rcpt) in ["bob@office.test", "ann@example.test"].iter().enumerate() {
        let r = c
            .send(
                "a@sender.test",
                rcpt,
                format!("Subject: cmd-{i}\r\n\r\nx\r\n").as_bytes(),
            )
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    c.cmd("QUIT").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let sink = Sink::start(primary, &dir.join("sink"));
    let mailbag = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_mailbag"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    // One domain through `queue flush DOMAIN`...
    let (ok, out) = mailbag(&[
        "queue",
        "flush",
        "office.test",
        "--config",
        cli_cfg.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("made due"), "{out}");
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(
        got.iter().filter_map(|m| subject_of(m)).collect::<Vec<_>>(),
        ["cmd-0"]
    );
    // ...the other through `etrn HOST DOMAIN`, as a router does to its silo.
    let other_sink = Sink::start(other, &dir.join("other"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(other_sink.messages().is_empty(), "nothing goes before ETRN");
    let (ok, out) = mailbag(&["etrn", &d.addr(), "example.test"]);
    assert!(ok && out.contains("ETRN example.test: 250"), "{out}");
    let got = other_sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(
        got.iter().filter_map(|m| subject_of(m)).collect::<Vec<_>>(),
        ["cmd-1"]
    );
    assert_eq!(sink.messages().len(), 1, "the primary got only its own");
    // A domain that is not ours is refused (459) and the command says so.
    let (ok, out) = mailbag(&["etrn", &d.addr(), "elsewhere.test"]);
    assert!(!ok && out.contains("459"), "{out}");
    d.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
