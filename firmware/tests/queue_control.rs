//! `mailbag queue flush|delete|bounce` against a running daemon over its control socket,
//! with Postfix's smtp-sink as the office's primary: deleted mail never arrives, a bounce
//! reaches the sender as an RFC 3464 report (never for `<>`), a message being delivered is
//! left alone, the socket is root-only and survives garbage.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::sink::{Sink, free_port, require_sink};
use common::{Client, Daemon, spool_messages, tmpdir, write_config_with};

/// A relay config whose next hop is `port`; the probe waits an hour, so held mail moves
/// only when told to.
fn relay(port: u16) -> String {
    format!("[relay]\nnext-hops = [\"127.0.0.1:{port}\"]\nprobe-interval = 3600\n")
}

/// `mailbag ARGS --config DIR/mailbag.toml`: (success, stdout + stderr).
fn mailbag(dir: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_mailbag"))
        .args(args)
        .arg("--config")
        .arg(dir.join("mailbag.toml"))
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Sends one message and returns its queue id (from `250 … queued as ID`).
fn send(c: &mut Client, from: &str, to: &[&str], data: &str) -> String {
    assert!(
        c.cmd(&format!("MAIL FROM:<{from}>"))
            .unwrap()
            .starts_with("250")
    );
    for r in to {
        assert!(c.cmd(&format!("RCPT TO:<{r}>")).unwrap().starts_with("250"));
    }
    assert!(c.cmd("DATA").unwrap().starts_with("354"));
    c.w.write_all(data.as_bytes()).unwrap();
    c.w.write_all(b".\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("250"), "{r}");
    r.trim().rsplit(' ').next().unwrap().to_string()
}

/// Waits until the daemon's log holds `n` lines containing `needle`.
fn wait_log(d: &Daemon, needle: &str, n: usize) {
    let start = Instant::now();
    while d.log.lock().unwrap().matches(needle).count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {n}x '{needle}' in:\n{}",
            d.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One raw request on the control socket; the reply.
fn raw(socket: &Path, request: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn rcpts(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter_map(|l| l.strip_prefix("X-Rcpt-Args: "))
        .collect()
}

#[test]
fn delete_removes_held_mail_and_all_for_only_that_domains_recipients() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("qdelete");
    let primary = free_port();
    write_config_with(&dir, "", &["office.test", "example.test"], &relay(primary));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    let a = send(
        &mut c,
        "s@sender.test",
        &["bob@office.test"],
        "Subject: A\r\n\r\na\r\n",
    );
    let b = send(
        &mut c,
        "s@sender.test",
        &["ann@example.test"],
        "Subject: B\r\n\r\nb\r\n",
    );
    let both = send(
        &mut c,
        "s@sender.test",
        &["bob@office.test", "ann@example.test"],
        "Subject: C\r\n\r\nc\r\n",
    );
    let keep = send(
        &mut c,
        "s@sender.test",
        &["eve@office.test"],
        "Subject: D\r\n\r\nd\r\n",
    );
    c.cmd("QUIT").unwrap();
    // Every first attempt failed (nothing listens): all four are held.
    wait_log(&d, "deferred ", 4);

    let (ok, out) = mailbag(&dir, &["queue", "delete", &a]);
    assert!(ok && out.contains(&format!("deleted {a}")), "{out}");
    let (ok, out) = mailbag(&dir, &["queue", "delete", &a]);
    assert!(!ok && out.contains("no message"), "deleting twice: {out}");
    let (ok, out) = mailbag(&dir, &["queue", "delete", "--all-for", "example.test"]);
    assert!(
        ok && out.contains("1 message(s) for example.test deleted, 1 kept"),
        "{out}"
    );
    let (ok, out) = mailbag(&dir, &["queue", "delete", "not-an-id"]);
    assert!(!ok && out.contains("not a message id"), "{out}");

    // What is left goes out: D, and C for bob only. A and B never arrive.
    let sink = Sink::start(primary, &dir.join("sink"));
    let (ok, out) = mailbag(&dir, &["queue", "flush"]);
    assert!(ok && out.contains("made due"), "{out}");
    let got = sink.wait_for(2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1000));
    let got_all = sink.messages();
    assert_eq!(got, got_all, "nothing more arrives");
    let mut subjects: Vec<(&str, Vec<&str>)> = got
        .iter()
        .map(|m| {
            let s = m.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap();
            (s, rcpts(m))
        })
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            ("C", vec!["<bob@office.test>"]),
            ("D", vec!["<eve@office.test>"])
        ],
        "{b} gone, {both} only for bob, {keep} untouched"
    );
    d.stop();
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bounce_sends_a_report_to_the_sender_and_none_for_the_null_sender() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("qbounce");
    let primary = free_port();
    write_config_with(&dir, "", &["office.test"], &relay(primary));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    let m1 = send(
        &mut c,
        "a@sender.test",
        &["bob@office.test", "carol@office.test"],
        "Subject: bounce me\r\nMessage-ID: <m1@sender.test>\r\n\r\nBODY-OF-M1\r\n",
    );
    let m2 = send(
        &mut c,
        "",
        &["bob@office.test"],
        "Subject: null sender\r\n\r\nBODY-OF-M2\r\n",
    );
    send(
        &mut c,
        "a@sender.test",
        &["bob@office.test"],
        "Subject: stays\r\n\r\nBODY-OF-M3\r\n",
    );
    c.cmd("QUIT").unwrap();
    wait_log(&d, "deferred ", 3);

    let (ok, out) = mailbag(&dir, &["queue", "bounce", &m1]);
    assert!(
        ok && out.contains("notice for 2 recipient(s) queued for <a@sender.test>"),
        "{out}"
    );
    let (ok, out) = mailbag(&dir, &["queue", "bounce", &m2]);
    assert!(ok && out.contains("no notice"), "{out}");
    let (ok, out) = mailbag(&dir, &["queue", "bounce", &m1]);
    assert!(!ok && out.contains(&format!("no message {m1}")), "{out}");

    // The next hop takes everything (the sender's mailbox too, through it): the report
    // and M3 arrive; neither original that was bounced does.
    let sink = Sink::start(primary, &dir.join("sink"));
    let (ok, out) = mailbag(&dir, &["queue", "flush"]);
    assert!(ok, "{out}");
    let got = sink.wait_for(2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(got, sink.messages(), "nothing more arrives");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got.iter()
            .all(|m| !m.contains("BODY-OF-M1") && !m.contains("BODY-OF-M2"))
    );
    assert_eq!(got.iter().filter(|m| m.contains("BODY-OF-M3")).count(), 1);
    let dsn = got.iter().find(|m| m.contains("multipart/report")).unwrap();
    assert_eq!(rcpts(dsn), ["<a@sender.test>"]);
    assert!(
        dsn.contains("X-Mail-Args: <>"),
        "a report goes from <>: {dsn}"
    );
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    for rcpt in ["bob@office.test", "carol@office.test"] {
        assert!(
            dsn.contains(&format!("Final-Recipient: rfc822; {rcpt}")),
            "{dsn}"
        );
    }
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.0.0"), "{dsn}");
    assert!(dsn.contains("returned by the administrator"), "{dsn}");
    assert!(
        dsn.contains("text/rfc822-headers") && dsn.contains("Subject: bounce me"),
        "the original headers are attached: {dsn}"
    );
    assert!(d.log.lock().unwrap().contains("null sender: no notice"));
    d.stop();
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_message_being_delivered_is_not_deleted_or_bounced() {
    let dir = tmpdir("qbusy");
    // A "primary" that accepts the connection and never greets: the attempt hangs.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    write_config_with(&dir, "", &["office.test"], &relay(port));
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    let id = send(
        &mut c,
        "a@sender.test",
        &["bob@office.test"],
        "Subject: busy\r\n\r\nx\r\n",
    );
    c.cmd("QUIT").unwrap();
    let (conn, _) = hang.accept().unwrap();
    for action in ["delete", "bounce"] {
        let (ok, out) = mailbag(&dir, &["queue", action, &id]);
        assert!(
            !ok && out.contains("being delivered right now; try again"),
            "{action}: {out}"
        );
    }
    let (ok, out) = mailbag(&dir, &["queue", "delete", "--all-for", "office.test"]);
    assert!(ok && out.contains("1 being delivered right now"), "{out}");
    // The hop goes away: the attempt fails and the message is free again.
    drop(conn);
    drop(hang);
    wait_log(&d, "deferred ", 1);
    // The log line comes just before the deliverer lets go of the message.
    let start = Instant::now();
    let out = loop {
        let (ok, out) = mailbag(&dir, &["queue", "delete", &id]);
        if ok || !out.contains("being delivered") || start.elapsed() > Duration::from_secs(5) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(out.contains(&format!("deleted {id}")), "{out}");
    d.stop();
    assert!(spool_messages(&dir.join("spool.img")).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_socket_is_root_only_answers_garbage_with_errors_and_goes_away_on_stop() {
    let dir = tmpdir("qsocket");
    write_config_with(&dir, "", &["office.test"], &relay(free_port()));
    let socket = dir.join("control.sock");
    let mut d = Daemon::start(&dir);
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    for (request, want) in [
        (&b"frobnicate\n"[..], "error unknown command 'frobnicate'"),
        (b"\n", "error empty request"),
        (b"", "error empty request"),
        (b"\xff\xfe\xfd\n", "error request is not text"),
        (
            b"flush no_such..domain\n",
            "error 'no_such..domain' is not a domain",
        ),
        (b"delete 123\n", "error '123' is not a message id"),
        (b"bounce\n", "error usage: bounce ID"),
        (
            b"delete 00000001000000aa\n",
            "error no message 00000001000000AA in the queue",
        ),
        (&[b'a'; 5000][..], "error request longer than 512 bytes"),
        (b"ping\r\n", "ok mailbag "),
    ] {
        let reply = raw(&socket, request);
        assert!(
            reply.starts_with(want) && reply.ends_with('\n') && reply.lines().count() == 1,
            "{:?}: {reply:?}",
            String::from_utf8_lossy(request)
        );
    }
    // A client that sends nothing and holds the line open does not block the others.
    let idle: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    assert!(raw(&socket, b"ping\n").starts_with("ok "));
    drop(idle);
    // SMTP is still served.
    let (mut c, greeting) = Client::connect(&d.addr()).unwrap();
    assert!(greeting.starts_with("220"));
    c.cmd("QUIT").unwrap();

    // A crash leaves the socket file behind; the next start replaces it.
    d.kill9();
    assert!(socket.exists());
    let (ok, out) = mailbag(&dir, &["queue", "delete", "00000001000000aa"]);
    assert!(!ok && out.contains("is mailbag running?"), "{out}");
    let mut d = Daemon::start(&dir);
    assert!(raw(&socket, b"ping\n").starts_with("ok "));
    d.stop();
    assert!(!socket.exists(), "removed on shutdown");
    let (ok, out) = mailbag(&dir, &["queue", "bounce", "00000001000000aa"]);
    assert!(
        !ok && out.contains("cannot connect to") && out.contains("is mailbag running?"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
