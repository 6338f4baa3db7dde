//! Delivery order and retries with real peers (Postfix's smtp-sink on loopback): 500 held
//! messages for three domains reach the returning primary exactly once, each domain's in
//! the order they were accepted; a primary answering 4xx gets the message at a later
//! retry; each domain goes to its own route.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::sink::{Sink, free_port, require_sink, subject_of};
use common::{Client, Daemon, spool_messages, tmpdir, write_config_with};

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name))
}

#[test]
fn five_hundred_held_messages_arrive_once_in_order_per_domain_soon_after_the_primary_returns() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("order500");
    let primary = free_port();
    let probe = 3;
    let domains = ["office.test", "branch.test", "shop.test"];
    write_config_with(
        &dir,
        "",
        &domains,
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{primary}\"]\nprobe-interval = {probe}\n\
             max-per-hop = 2\n"
        ),
    );
    let mut d = Daemon::start(&dir);
    // 500 messages: 300 for office.test, 150 for branch.test, 50 for shop.test,
    // interleaved as they would arrive from many senders.
    let n = 500;
    let mut sent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for i in 0..n {
        let domain = match i % 10 {
            0..=5 => domains[0],
            6..=8 => domains[1],
            _ => domains[2],
        };
        let seq = sent.get(domain).map_or(0, Vec::len);
        let subject = format!("{domain}-{seq:04}");
        let body =
            format!("Subject: {subject}\r\nMessage-ID: <m{i}@sender.test>\r\n\r\nmessage {i}\r\n");
        let r = c
            .send(
                &format!("s{i}@sender.test"),
                &format!("user@{domain}"),
                body.as_bytes(),
            )
            .unwrap();
        assert!(r.starts_with("250"), "message {i}: {r}");
        sent.entry(domain).or_default().push(subject);
    }
    c.cmd("QUIT").unwrap();
    d.wait_log("could not connect to the next hop", Duration::from_secs(10));
    assert_eq!(spool_messages(&dir.join("spool.img")).len(), n, "all held");

    // The primary comes back.
    let up = Instant::now();
    let sink = Sink::start_ordered(primary, &dir.join("sink"));
    let start = Instant::now();
    while sink.messages().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = up.elapsed();
    sink.wait_for(n, Duration::from_secs(120));
    let all = sink.wait_for(n, Duration::from_secs(5));
    let drained = up.elapsed();
    assert!(
        first <= Duration::from_secs(2 * probe),
        "first message {first:?} after the primary came back; probe interval {probe} s"
    );

    // Exactly once: every Message-ID, no more, no fewer.
    let ids: Vec<String> = all
        .iter()
        .filter_map(|m| header(m, "Message-ID: ").map(str::to_owned))
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), n, "{} delivered, want {n}", ids.len());
    assert_eq!(unique.len(), n, "duplicates among {} deliveries", ids.len());
    let want: BTreeSet<String> = (0..n).map(|i| format!("<m{i}@sender.test>")).collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), want);

    // Per-domain order: each domain's subjects arrive in the order they were accepted.
    let arrived = sink.messages();
    for (domain, subjects) in &sent {
        let got: Vec<String> = arrived
            .iter()
            .filter_map(|m| subject_of(m))
            .filter(|s| s.starts_with(&format!("{domain}-")))
            .collect();
        assert_eq!(&got, subjects, "{domain}'s mail out of order");
    }
    // Fair across domains: the smallest domain is not starved behind the biggest one.
    let position = |s: &str| {
        arrived
            .iter()
            .position(|m| subject_of(m).as_deref() == Some(s))
            .unwrap()
    };
    assert!(
        position("shop.test-0049") < position("office.test-0299"),
        "shop.test waited for all of office.test"
    );
    eprintln!(
        "500 held messages: first {first:?}, all {drained:?} after the primary came back \
         (probe every {probe} s)"
    );
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    assert_eq!(sink.messages().len(), n, "no late duplicates");
    // Connections were reused: far fewer sessions than messages.
    let log = d.log.lock().unwrap().clone();
    assert_eq!(log.matches("delivered ").count(), n, "{log}");
    let connections = log.matches("conn_use=1)").count();
    assert!(
        connections <= n / 10,
        "{connections} connections for {n} messages"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_primary_answering_4xx_gets_the_message_at_a_later_retry() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("defer4xx");
    let primary = free_port();
    write_config_with(
        &dir,
        "",
        &["office.test"],
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{primary}\"]\nprobe-interval = 1\n\
             retry = \"1m\"\n"
        ),
    );
    // The primary is up but answers RCPT with 4xx (full disk, greylisting, ...).
    let mut busy = Sink::start_with(primary, &dir.join("busy"), &["-r", "rcpt"]);
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    let r = c
        .send(
            "a@sender.test",
            "bob@office.test",
            b"Subject: deferred\r\nMessage-ID: <d1@sender.test>\r\n\r\nlater\r\n",
        )
        .unwrap();
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT").unwrap();
    d.wait_log("attempted ", Duration::from_secs(10));
    let held = spool_messages(&dir.join("spool.img"));
    assert_eq!(held.len(), 1, "kept after the 4xx");
    busy.stop();
    assert!(
        busy.messages().is_empty(),
        "nothing delivered while refusing"
    );

    // The primary recovers; the probe sees it answering but it was never "down", so the
    // message goes at its scheduled retry, one minute after the first attempt.
    let ok = Sink::start(primary, &dir.join("ok"));
    let got = ok.wait_for(1, Duration::from_secs(100));
    assert_eq!(got.len(), 1, "delivered at the retry");
    assert_eq!(subject_of(&got[0]).as_deref(), Some("deferred"));
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_domain_goes_to_its_own_route_and_a_split_message_to_both() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("routes");
    let (office, branch) = (free_port(), free_port());
    write_config_with(
        &dir,
        "",
        &["office.test", "branch.test", "east.branch.test"],
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{office}\"]\nprobe-interval = 1\n\
             routes = [\".branch.test = 10 127.0.0.1:{branch}\"]\n"
        ),
    );
    let office_sink = Sink::start(office, &dir.join("office"));
    let branch_sink = Sink::start(branch, &dir.join("branch"));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for (to, subject) in [
        ("bob@office.test", "to office"),
        ("eve@east.branch.test", "to east branch"),
    ] {
        let body = format!("Subject: {subject}\r\n\r\nx\r\n");
        assert!(
            c.send("a@sender.test", to, body.as_bytes())
                .unwrap()
                .starts_with("250")
        );
    }
    // One message for both: each route gets its recipient.
    for cmd in [
        "MAIL FROM:<a@sender.test>",
        "RCPT TO:<ann@office.test>",
        "RCPT TO:<bo@branch.test>",
    ] {
        assert!(c.cmd(cmd).unwrap().starts_with("250"), "{cmd}");
    }
    assert!(c.cmd("DATA").unwrap().starts_with("354"));
    use std::io::Write;
    c.w.write_all(b"Subject: to both\r\n\r\nx\r\n.\r\n")
        .unwrap();
    assert!(c.reply().unwrap().starts_with("250"));
    c.cmd("QUIT").unwrap();

    let at_office = office_sink.wait_for(2, Duration::from_secs(20));
    let at_branch = branch_sink.wait_for(2, Duration::from_secs(20));
    let subjects = |v: &[String]| {
        let mut s: Vec<String> = v.iter().filter_map(|m| subject_of(m)).collect();
        s.sort();
        s
    };
    assert_eq!(subjects(&at_office), ["to both", "to office"]);
    assert_eq!(subjects(&at_branch), ["to both", "to east branch"]);
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn held_mail_follows_the_first_new_message_that_gets_through() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("follow");
    let primary = free_port();
    // A probe once an hour: only the new message can notice the primary is back.
    write_config_with(
        &dir,
        "",
        &["office.test"],
        &format!("[relay]\nnext-hops = [\"127.0.0.1:{primary}\"]\nprobe-interval = 3600\n"),
    );
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for i in 0..5 {
        let body = format!("Subject: held-{i}\r\n\r\nx\r\n");
        assert!(
            c.send("a@sender.test", "bob@office.test", body.as_bytes())
                .unwrap()
                .starts_with("250")
        );
    }
    d.wait_log("could not connect to the next hop", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    let sink = Sink::start(primary, &dir.join("sink"));
    assert!(
        c.send(
            "a@sender.test",
            "bob@office.test",
            b"Subject: new\r\n\r\nx\r\n"
        )
        .unwrap()
        .starts_with("250")
    );
    c.cmd("QUIT").unwrap();
    // The held five were scheduled 15 minutes out; they go with the new one.
    let got = sink.wait_for(6, Duration::from_secs(20));
    assert_eq!(got.len(), 6, "held mail waited for its retry time");
    std::thread::sleep(Duration::from_millis(300));
    d.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
