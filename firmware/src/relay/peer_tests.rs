//! The client session against real peers: mailbag's own server session (in process, every
//! byte split), and Postfix's `smtp-sink` over loopback TCP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use embassy_time::Instant;

use super::client::{
    Client, ClientAction, ClientConfig, DeliveryJob, Outcome, RcptResult, TlsPolicy,
};
use crate::policy::{Checker, PolicyConfig, Rules, Unlimited};
use crate::smtp::{Event, Events, PeerInfo, Session, SessionConfig, SmtpConfig};

fn client_cfg() -> ClientConfig {
    ClientConfig {
        helo_name: heapless::String::try_from("relay.example.net").unwrap(),
        tls: TlsPolicy::Opportunistic,
    }
}

/// A body that exercises dot-stuffing: leading dots, lone dots, dot-CRLF look-alikes.
fn tricky_body(seed: u64, lines: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut body = b"Subject: dots\r\n\r\n".to_vec();
    for _ in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line: &[u8] = match x % 6 {
            0 => b".",
            1 => b"..",
            2 => b". leading dot and text",
            3 => b"",
            4 => b"plain text with a . inside",
            _ => b".\t.",
        };
        body.extend_from_slice(line);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Client ↔ mailbag server session in memory; `split` bytes per hand-over.
/// Returns the client outcome and the content the server stored.
fn via_own_server(job: DeliveryJob<'_>, body: &[u8], split: usize) -> (Outcome, Vec<u8>) {
    let rules = Rules::from_config(&PolicyConfig {
        domains: vec!["example.com".into()],
        recipients: vec![],
        ..PolicyConfig::default()
    })
    .unwrap();
    let smtp = SmtpConfig {
        hostname: "mx.example.com".into(),
        starttls: false,
        ..SmtpConfig::default()
    };
    let cfg = SessionConfig::new(&smtp, Checker::new(Arc::new(rules), Unlimited)).unwrap();
    let peer = PeerInfo {
        ip: "192.0.2.1".parse().unwrap(),
        port: 1,
        tls: false,
        unix_seconds: 0,
    };
    let now = Instant::from_secs(10);
    let (mut server, greeting) = Session::new(&cfg, peer, now);
    let mut client = Client::deliver(client_cfg(), job, now);
    let mut to_client = greeting.as_bytes().to_vec();
    let mut to_server: Vec<u8> = Vec::new();
    let mut stored = Vec::new();
    // Bounded: every round moves bytes one way or the other, or the exchange is over.
    for _ in 0..100_000 {
        to_server.extend_from_slice(client.output());
        let n = client.output().len();
        client.written(n, now);
        while let Some(a) = client.next_action() {
            if a == ClientAction::SendBody {
                let mut rest = body;
                while !rest.is_empty() {
                    let n = client.body(&rest[..rest.len().min(split)], now);
                    rest = &rest[n..];
                    to_server.extend_from_slice(client.output());
                    let w = client.output().len();
                    client.written(w, now);
                }
                client.body_end(now);
                to_server.extend_from_slice(client.output());
                let w = client.output().len();
                client.written(w, now);
            }
        }
        if client.is_closed() && to_server.is_empty() {
            break;
        }
        if !to_server.is_empty() {
            let take = to_server.len().min(split);
            let mut out = Events::new();
            let n = server.input(&to_server[..take], now, &mut out);
            let mut end = false;
            for e in out {
                match e {
                    Event::Reply(r) => to_client.extend_from_slice(r.as_bytes()),
                    Event::Body(b) => stored.extend_from_slice(b),
                    Event::MessageEnd => end = true,
                    Event::MessageBegin | Event::Close => {}
                    other => panic!("server event {other:?}"),
                }
            }
            to_server.drain(..n);
            if end {
                to_client.extend_from_slice(server.stored::<&str>(Ok("ID1"), now).as_bytes());
            }
        }
        if !to_client.is_empty() {
            let take = to_client.len().min(split);
            let n = client.input(&to_client[..take], now);
            to_client.drain(..n);
        }
        if server.is_closed() && to_client.is_empty() {
            client.eof();
        }
    }
    (client.outcome().cloned().expect("an outcome"), stored)
}

#[test]
fn own_server_receives_exactly_the_content_whatever_the_split() {
    let rcpts = ["a@example.com", "b@elsewhere.example", "c@example.com"];
    for (seed, split) in [(1, 1), (2, 3), (3, 64), (4, 4096)] {
        let body = tricky_body(seed, 200);
        let job = DeliveryJob {
            sender: "s@sender.example",
            recipients: rcpts.iter().copied().collect(),
            size: body.len() as u64,
        };
        let (outcome, stored) = via_own_server(job, &body, split);
        assert_eq!(stored, body, "dot-stuffing round trip, split {split}");
        let Outcome::Transaction(r) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(r[0], RcptResult::Delivered);
        assert!(
            matches!(&r[1], RcptResult::Bounced(reply) if reply.enhanced() == Some((5, 7, 1))),
            "not our domain: relay denied, {:?}",
            r[1]
        );
        assert_eq!(r[2], RcptResult::Delivered);
    }
}

/// `smtp-sink` (Postfix) on a loopback port, killed (by PID) when dropped.
struct Sink {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Sink {
    /// Start on a free port; `args` are extra smtp-sink options.
    fn start(name: &str, args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("mailbag-relay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = std::process::Command::new("smtp-sink");
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            // smtp-sink refuses to run as root without dropping privileges.
            let _ = std::process::Command::new("chmod")
                .arg("777")
                .arg(&dir)
                .status();
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .args(args)
            .arg("-d")
            .arg(dir.join("%M."))
            .arg(format!("127.0.0.1:{port}"))
            .arg("10")
            .spawn()
            .expect("smtp-sink (Debian package postfix, see .ci/deps/relay.apt)");
        Self { child, port, dir }
    }

    fn connect(&self) -> TcpStream {
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("smtp-sink did not start listening");
    }

    /// The dumped messages (smtp-sink writes LF line ends and unstuffed content).
    fn dumps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..100 {
            out = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect();
            if !out.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The host loop the daemon will run, blocking, over a real socket.
fn drive(client: &mut Client<'_>, stream: &mut TcpStream, body: &[u8]) {
    let start = std::time::Instant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let flush = |client: &mut Client<'_>, stream: &mut TcpStream| {
        while !client.output().is_empty() {
            let n = stream.write(client.output()).unwrap();
            client.written(n, now());
        }
    };
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        flush(client, stream);
        while let Some(a) = client.next_action() {
            match a {
                ClientAction::SendBody => {
                    for chunk in body.chunks(1000) {
                        let mut rest = chunk;
                        while !rest.is_empty() {
                            let n = client.body(rest, now());
                            rest = &rest[n..];
                            flush(client, stream);
                        }
                    }
                    client.body_end(now());
                    flush(client, stream);
                }
                ClientAction::StartTls => panic!("smtp-sink offers no STARTTLS"),
                ClientAction::Done | ClientAction::Close => {}
            }
        }
        if client.is_closed() {
            return;
        }
        if !pending.is_empty() {
            let n = client.input(&pending, now());
            pending.drain(..n);
            if n > 0 {
                continue;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => client.eof(),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}"),
        }
    }
    panic!("conversation did not end");
}

#[test]
fn postfix_smtp_sink_receives_a_pipelined_dot_stuffed_message() {
    let sink = Sink::start("ok", &[]);
    let body = tricky_body(7, 300);
    let job = DeliveryJob {
        sender: "s@sender.example",
        recipients: ["a@example.com", "b@example.com"].into_iter().collect(),
        size: body.len() as u64,
    };
    let mut client = Client::deliver(client_cfg(), job, Instant::from_secs(0));
    let mut stream = sink.connect();
    drive(&mut client, &mut stream, &body);
    assert!(
        client.extensions().pipelining,
        "smtp-sink offers PIPELINING"
    );
    match client.outcome() {
        Some(Outcome::Transaction(r)) => {
            assert_eq!(r.as_slice(), [RcptResult::Delivered, RcptResult::Delivered])
        }
        other => panic!("{other:?}"),
    }
    let dumps = sink.dumps();
    assert_eq!(dumps.len(), 1);
    let dump = &dumps[0];
    assert!(dump.contains("X-Mail-Args: <s@sender.example>"), "{dump}");
    assert!(dump.contains("X-Rcpt-Args: <a@example.com>"));
    assert!(dump.contains("X-Rcpt-Args: <b@example.com>"));
    // The content after smtp-sink's own Received header, LF-terminated, unstuffed.
    let content = dump.split_once("Subject: dots\n").unwrap().1;
    let want = String::from_utf8(body).unwrap().replace("\r\n", "\n");
    let want = want.split_once("Subject: dots\n").unwrap().1;
    assert_eq!(content.trim_end_matches('\n'), want.trim_end_matches('\n'));
}

#[test]
fn postfix_smtp_sink_hard_rejecting_rcpt_bounces_every_recipient() {
    // -f RCPT: every RCPT gets a hard (5xx) reply.
    let sink = Sink::start("rcpt", &["-f", "RCPT"]);
    let job = DeliveryJob {
        sender: "s@sender.example",
        recipients: ["a@example.com", "b@example.com"].into_iter().collect(),
        size: 3,
    };
    let mut client = Client::deliver(client_cfg(), job, Instant::from_secs(0));
    let mut stream = sink.connect();
    drive(&mut client, &mut stream, b"x\r\n");
    match client.outcome() {
        Some(Outcome::Transaction(r)) => {
            assert!(
                r.iter().all(|r| matches!(r, RcptResult::Bounced(_))),
                "{r:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
