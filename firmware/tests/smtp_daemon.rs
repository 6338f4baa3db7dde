//! The daemon with real peers: swaks (plain and STARTTLS), Python's ssl and Postfix's
//! smtp-source send to the daemon on loopback — served in this process (`daemon::serve` on
//! `127.0.0.1:0`), or as `mailbag run` where signals and `kill -9` are the point; a flood of 10x the session slots; a `kill -9` while 20
//! sessions send. The spool is read back after each.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{Client, Daemon, Served, spool_messages, tmpdir, write_config};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{tool} is required in CI (see .ci/deps/smtp.apt)");
    }
    eprintln!("skipped: {tool} not installed");
    false
}

const MESSAGE: &[u8] = b"From: Alice <alice@sender.test>\r\nTo: Bob <bob@office.test>\r\nSubject: quarterly figures\r\nMessage-ID: <q1@sender.test>\r\n\r\nHello Bob,\r\n.leading dot line\r\n\r\nline with trailing spaces   \r\n\xc3\xa9t\xc3\xa9 8bit\r\n";

fn swaks(server: &str, dir: &std::path::Path, tls: bool) -> String {
    let data = dir.join(if tls { "tls.eml" } else { "plain.eml" });
    std::fs::write(&data, MESSAGE).unwrap();
    let mut cmd = Command::new("swaks");
    cmd.args([
        "--server",
        server,
        "--from",
        "alice@sender.test",
        "--to",
        "bob@office.test",
        "--ehlo",
        "client.sender.test",
    ]);
    cmd.arg("--data").arg(&data);
    if tls {
        cmd.arg("--tls");
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swaks failed:\n{text}");
    text
}

#[test]
fn swaks_plain_and_starttls_messages_are_stored_byte_identical() {
    if !require("swaks") {
        return;
    }
    let dir = tmpdir("swaks");
    write_config(&dir, "");
    let mut d = Served::start(&dir);
    let plain = swaks(&d.addr(), &dir, false);
    assert!(plain.contains("250 2.0.0 Ok: queued as"), "{plain}");
    let tls = swaks(&d.addr(), &dir, true);
    assert!(
        tls.contains("STARTTLS") && tls.contains("queued as"),
        "{tls}"
    );
    // Relay attempts are refused with the RFC 5321 code.
    let out = Command::new("swaks")
        .args([
            "--server",
            &d.addr(),
            "--from",
            "a@sender.test",
            "--to",
            "victim@elsewhere.test",
            "--quit-after",
            "RCPT",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("550 5.7.1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    d.stop();

    let msgs = spool_messages(&dir.join("spool.img"));
    assert_eq!(msgs.len(), 2);
    for (i, (from, to, body)) in msgs.iter().enumerate() {
        assert_eq!(from, "alice@sender.test");
        assert_eq!(to, &vec!["bob@office.test".to_string()]);
        let text = String::from_utf8_lossy(body);
        assert!(
            text.starts_with("Received: from client.sender.test"),
            "{text}"
        );
        let with = if i == 0 {
            "with ESMTP;"
        } else {
            "with ESMTPS;"
        };
        assert!(text.contains(with), "{text}");
        // Everything after the trace header is exactly what swaks put on the wire: the file
        // as is, plus the CRLF swaks always sends before its terminating ".".
        let start = body
            .windows(MESSAGE.len())
            .position(|w| w == MESSAGE)
            .expect("content not found intact");
        assert_eq!(&body[start..], [MESSAGE, b"\r\n"].concat());
        // ...and what precedes it is the Received header alone (folded lines start with a tab).
        let prefix = std::str::from_utf8(&body[..start]).unwrap();
        assert!(prefix.ends_with("\r\n"), "{prefix}");
        assert!(
            prefix
                .trim_end()
                .split("\r\n")
                .skip(1)
                .all(|l| l.starts_with('\t')),
            "{prefix}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn postfix_smtp_source_messages_all_arrive() {
    if !require("smtp-source") {
        return;
    }
    let dir = tmpdir("source");
    write_config(&dir, "");
    let mut d = Daemon::start(&dir);
    let out = Command::new("smtp-source")
        .args([
            "-c",
            "-m",
            "60",
            "-s",
            "6",
            "-l",
            "4096",
            "-f",
            "load@sender.test",
            "-t",
            "user@office.test",
            &d.addr(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.stop();
    let msgs = spool_messages(&dir.join("spool.img"));
    assert_eq!(msgs.len(), 60);
    assert!(
        msgs.iter().all(|(f, t, b)| f == "load@sender.test"
            && t == &["user@office.test"]
            && b.len() > 4096)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Opens `n` sessions at once, each sending one message with a unique token. Returns the
/// tokens acknowledged with 250 and the count of connections refused with 421.
fn burst(addr: &str, n: usize, size: usize, hold: Duration) -> (BTreeSet<String>, usize, usize) {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let addr = addr.to_string();
            std::thread::spawn(move || -> (Option<String>, bool) {
                let Ok((mut c, greeting)) = Client::connect(&addr) else {
                    return (None, false);
                };
                if greeting.starts_with("421") {
                    return (None, true);
                }
                let token = format!("token-{i:04}");
                let _ = c.cmd("EHLO flood.sender.test");
                // Keep the slot busy a moment so the burst really overlaps.
                std::thread::sleep(hold);
                let mut data = format!("Subject: {token}\r\n\r\n").into_bytes();
                while data.len() < size {
                    data.extend_from_slice(
                        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n",
                    );
                }
                match c.send("flood@sender.test", "user@office.test", &data) {
                    Ok(r) if r.starts_with("250") => {
                        let _ = c.cmd("QUIT");
                        (Some(token), false)
                    }
                    _ => (None, false),
                }
            })
        })
        .collect();
    let mut ok = BTreeSet::new();
    let (mut refused, mut other) = (0, 0);
    for h in handles {
        match h.join().unwrap() {
            (Some(t), _) => {
                ok.insert(t);
            }
            (None, true) => refused += 1,
            (None, false) => other += 1,
        }
    }
    (ok, refused, other)
}

fn tokens(dir: &std::path::Path) -> BTreeSet<String> {
    spool_messages(&dir.join("spool.img"))
        .iter()
        .filter_map(|(_, _, b)| {
            let t = String::from_utf8_lossy(b);
            t.split("Subject: ")
                .nth(1)
                .map(|s| s.lines().next().unwrap_or("").to_string())
        })
        .collect()
}

/// Peak RSS bound for the daemon during the flood (8 slots, 100 KiB messages).
const FLOOD_RSS_MAX_KIB: u64 = 24 * 1024;

#[test]
fn flood_of_ten_times_the_slots_gets_421_and_loses_nothing() {
    let dir = tmpdir("flood");
    write_config(&dir, "max-sessions = 8");
    let mut d = Daemon::start(&dir);
    let (ok, refused, other) = burst(&d.addr(), 80, 100 * 1024, Duration::from_millis(400));
    let rss = d.peak_rss_kib();
    eprintln!(
        "flood: {} accepted, {refused} refused with 421, {other} other; peak RSS {rss} KiB",
        ok.len()
    );
    assert!(
        refused >= 40,
        "most of the excess must get 421 (got {refused})"
    );
    assert!(
        ok.len() >= 8,
        "every slot must have carried a message (got {})",
        ok.len()
    );
    assert_eq!(ok.len() + refused + other, 80);
    assert!(
        rss < FLOOD_RSS_MAX_KIB,
        "peak RSS {rss} KiB over {FLOOD_RSS_MAX_KIB} KiB"
    );
    d.stop();
    let stored = tokens(&dir);
    assert!(
        ok.is_subset(&stored),
        "acknowledged but missing: {:?}",
        ok.difference(&stored).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kill_9_while_twenty_sessions_send_loses_no_acknowledged_message() {
    let dir = tmpdir("crash");
    write_config(&dir, "max-sessions = 32");
    let mut d = Daemon::start(&dir);
    let addr = d.addr();
    let sender = std::thread::spawn(move || {
        // 20 sessions, each sending messages back to back until the daemon dies.
        let handles: Vec<_> = (0..20)
            .map(|s| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let Ok((mut c, _)) = Client::connect(&addr) else {
                        return acked;
                    };
                    if c.cmd("EHLO crash.sender.test").is_err() {
                        return acked;
                    }
                    for m in 0..200 {
                        let token = format!("s{s:02}-m{m:03}");
                        let mut data = format!("Subject: {token}\r\n\r\n").into_bytes();
                        data.resize(data.len() + 2000 + (m * 97) % 30_000, b'x');
                        data.extend_from_slice(b"\r\n");
                        match c.send("crash@sender.test", "user@office.test", &data) {
                            Ok(r) if r.starts_with("250") => acked.push(token),
                            _ => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<BTreeSet<String>>()
    });
    std::thread::sleep(Duration::from_millis(1500));
    d.kill9();
    let acked = sender.join().unwrap();
    assert!(
        acked.len() >= 20,
        "the load must have been running (acked {})",
        acked.len()
    );

    // Restart on the same spool: recovery runs, every acknowledged message is there.
    let mut d = Daemon::start(&dir);
    d.stop();
    let stored = tokens(&dir);
    let missing: Vec<_> = acked.difference(&stored).collect();
    eprintln!(
        "crash: {} acknowledged before kill -9, {} stored after restart",
        acked.len(),
        stored.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipv4_and_ipv6_listeners_both_take_mail() {
    let dir = tmpdir("dual");
    write_config(&dir, r#"listen = ["127.0.0.1:0", "[::1]:0"]"#);
    let mut d = Daemon::start(&dir);
    let addrs = d.listening.lock().unwrap().clone();
    let v6 = addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener");
    for addr in [d.addr(), v6.to_string()] {
        let (mut c, greeting) = Client::connect(&addr).unwrap();
        assert!(greeting.starts_with("220 mx.office.test"), "{greeting}");
        c.cmd("EHLO v6.sender.test").unwrap();
        let r = c
            .send(
                "a@sender.test",
                "bob@office.test",
                format!("Subject: via {addr}\r\n\r\nx\r\n").as_bytes(),
            )
            .unwrap();
        assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    }
    d.stop();
    assert_eq!(spool_messages(&dir.join("spool.img")).len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connection_dropped_during_data_leaves_nothing_behind() {
    let dir = tmpdir("drop");
    write_config(&dir, "");
    let mut d = Served::start(&dir);
    {
        let (mut c, _) = Client::connect(&d.addr()).unwrap();
        c.cmd("EHLO drop.sender.test").unwrap();
        c.start_data("a@sender.test", "bob@office.test");
        use std::io::Write;
        // 200 KiB of content (several spool chunks), then the client vanishes.
        for _ in 0..2000 {
            c.w.write_all(&[b'y'; 100]).unwrap();
            c.w.write_all(b"\r\n").unwrap();
        }
    }
    // A complete message after it, so we know the daemon is still fine.
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO ok.sender.test").unwrap();
    assert!(
        c.send(
            "a@sender.test",
            "bob@office.test",
            b"Subject: after\r\n\r\nfine\r\n"
        )
        .unwrap()
        .starts_with("250")
    );
    d.stop();
    let msgs = spool_messages(&dir.join("spool.img"));
    assert_eq!(msgs.len(), 1, "only the complete message is in the spool");
    assert!(String::from_utf8_lossy(&msgs[0].2).contains("Subject: after"));
    // And the spool's byte count holds no trace of the dropped one.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailbag"))
        .args(["spool", "inspect"])
        .arg(dir.join("spool.img"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 message,"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// CVE-2011-0411: commands pipelined after STARTTLS in the same packet must be discarded,
/// not executed inside the TLS session. Python's ssl module is the TLS client.
#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    if !require("python3") {
        return;
    }
    let dir = tmpdir("inject");
    write_config(&dir, "");
    let mut d = Served::start(&dir);
    let script = format!(
        r#"
import socket, ssl
s = socket.create_connection(("127.0.0.1", {port}), timeout=10)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return "".join(lines)
reply()
s.sendall(b"EHLO inject.test\r\n"); reply()
s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
print("STARTTLS:", reply().strip())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
tf = t.makefile("rb")
t.sendall(b"RCPT TO:<bob@office.test>\r\n")
print("RCPT:", tf.readline().decode().strip())
"#,
        port = d.port
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("STARTTLS: 220"), "{text}");
    // Had the injected MAIL FROM been executed, RCPT would be accepted (250); it must be
    // refused as out of order (503) because the session was reset by the handshake.
    assert!(text.contains("RCPT: 503"), "{text}");
    d.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_stops_accepting_but_finishes_the_message_in_flight() {
    use std::io::Write;
    let dir = tmpdir("sigterm");
    write_config(&dir, "");
    let mut d = Daemon::start(&dir);
    let (mut idle, _) = Client::connect(&d.addr()).unwrap();
    idle.cmd("EHLO idle.sender.test").unwrap();
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO busy.sender.test").unwrap();
    c.start_data("a@sender.test", "bob@office.test");
    c.w.write_all(b"Subject: in flight\r\n\r\nfirst half\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    Command::new("kill")
        .arg("-TERM")
        .arg(d.pid().to_string())
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // No new connections...
    assert!(
        Client::connect(&d.addr()).is_err(),
        "the listener must be closed after SIGTERM"
    );
    // ...an idle session is told to come back later...
    let bye = idle.reply().unwrap();
    assert!(bye.starts_with("421 4.3.2"), "{bye}");
    // ...and the message in flight completes and is acknowledged.
    c.w.write_all(b"second half\r\n.\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    let _ = c.cmd("QUIT");
    drop(c);
    d.stop();
    let msgs = spool_messages(&dir.join("spool.img"));
    assert_eq!(msgs.len(), 1);
    assert!(
        String::from_utf8_lossy(&msgs[0].2)
            .ends_with("Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
