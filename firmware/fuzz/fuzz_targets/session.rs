//! Fuzz the SMTP server session: arbitrary wire bytes, fed whole and in fuzzer-chosen
//! pieces. Checks, beyond "no panic":
//!
//! - split invariance: any split yields the same replies, events and message content;
//! - progress: every `input` call consumes bytes unless the session waits for the host;
//! - bounds: no message delivered to the host exceeds the size limit, and a completed
//!   message never contains a bare CR or LF;
//! - nothing follows `Close`.
//!
//! Input layout: byte 0 picks the piece sizes, byte 1 the store verdicts; the rest is the
//! client's byte stream (after STARTTLS it stands for the decrypted stream).
#![no_main]

use std::sync::{Arc, OnceLock};

use embassy_time::Instant;
use libfuzzer_sys::fuzz_target;
use mailbag::policy::{Checker, PolicyConfig, Rules, Unlimited};
use mailbag::smtp::{Event, Events, PeerInfo, Session, SessionConfig, SmtpConfig, StoreError};

const MAX_SIZE: u64 = 4096;

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Reply(Vec<u8>),
    StartTls,
    Begin(String),
    Body(Vec<u8>),
    End,
    Aborted(String),
    Etrn(String),
    Beacon(String),
    Close,
}

fn config() -> &'static SessionConfig<Checker<Unlimited>> {
    static CFG: OnceLock<SessionConfig<Checker<Unlimited>>> = OnceLock::new();
    CFG.get_or_init(|| {
        let rules = Rules::from_config(&PolicyConfig {
            domains: vec!["example.com".into(), "list.example".into()],
            recipients: vec!["alice@list.example".into()],
        })
        .expect("valid policy");
        let smtp = SmtpConfig {
            hostname: "mx.example.net".into(),
            max_message_size: MAX_SIZE,
            max_recipients: 5,
            ..SmtpConfig::default()
        };
        SessionConfig::new(&smtp, Checker::new(Arc::new(rules), Unlimited)).expect("valid smtp")
    })
}

/// Drive one session over `wire` in pieces of `piece(i)` bytes; returns the transcript.
fn drive(wire: &[u8], piece: impl Fn(usize) -> usize, verdicts: u8) -> Vec<Seen> {
    let peer = PeerInfo { ip: "192.0.2.7".parse().expect("ip"), port: 1, tls: false, unix_seconds: 0 };
    let now = Instant::from_secs(1);
    let (mut session, greeting) = Session::new(config(), peer, now);
    let mut seen = vec![Seen::Reply(greeting.as_bytes().to_vec())];
    let mut pos = 0;
    let mut call = 0;
    let mut stored = 0u32;
    let mut message_size = 0u64;
    let mut message: Vec<u8> = Vec::new();
    while pos < wire.len() {
        let take = piece(call).clamp(1, wire.len() - pos);
        call += 1;
        let mut out = Events::new();
        let n = session.input(&wire[pos..pos + take], now, &mut out);
        assert!(n <= take);
        let mut message_end = false;
        let mut starttls = false;
        for event in out {
            assert_ne!(seen.last(), Some(&Seen::Close), "event after Close");
            let s = match event {
                Event::Reply(r) => {
                    assert!(r.as_bytes().ends_with(b"\r\n"));
                    Seen::Reply(r.as_bytes().to_vec())
                }
                Event::StartTls => {
                    starttls = true;
                    Seen::StartTls
                }
                Event::MessageBegin => {
                    message_size = 0;
                    message.clear();
                    let env = session.envelope().expect("envelope at MessageBegin");
                    assert!(!env.recipients.is_empty());
                    Seen::Begin(env.received.as_str().to_owned())
                }
                Event::Body(b) => {
                    message_size += b.len() as u64;
                    assert!(message_size <= MAX_SIZE, "over the size limit");
                    message.extend_from_slice(b);
                    if let Some(Seen::Body(prev)) = seen.last_mut() {
                        prev.extend_from_slice(b);
                        continue;
                    }
                    Seen::Body(b.to_vec())
                }
                Event::MessageEnd => {
                    message_end = true;
                    assert!(no_bare_newline(&message), "bare newline in a stored message");
                    Seen::End
                }
                Event::MessageAborted(r) => Seen::Aborted(r.to_string()),
                Event::Etrn(node) => Seen::Etrn(node.as_str().to_owned()),
                Event::Beacon(line) => Seen::Beacon(line.as_str().to_owned()),
                Event::Close => Seen::Close,
            };
            seen.push(s);
        }
        pos += n;
        if starttls {
            session.tls_established(now);
        }
        if message_end {
            let verdict = match (verdicts >> (stored % 8)) & 1 {
                0 => Ok("ID"),
                _ => Err(StoreError::SpoolFull),
            };
            stored += 1;
            seen.push(Seen::Reply(session.stored(verdict, now).as_bytes().to_vec()));
        } else if n == 0 {
            panic!("no progress without a reason");
        }
        if session.is_closed() {
            break;
        }
    }
    seen
}

fn no_bare_newline(m: &[u8]) -> bool {
    m.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => m.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && m[i - 1] == b'\r',
        _ => true,
    })
}

fuzz_target!(|data: &[u8]| {
    let [split, verdicts, wire @ ..] = data else { return };
    let whole = drive(wire, |_| usize::MAX, *verdicts);
    let split = usize::from(*split);
    let pieces = drive(wire, |i| 1 + (split.rotate_left(i as u32 % 8) ^ i) % (split + 1), *verdicts);
    assert_eq!(whole, pieces, "split changed the outcome");
});
