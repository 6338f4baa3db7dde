//! The session as conversations: [`Host`] plays the daemon edge, `send!` plays the client,
//! `expect_reply!`/`expect_event!` check what came out. The harness is shared with the
//! policy's open-relay tests.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use super::*;
use crate::policy::{Capacity, Checker, PolicyConfig, QuotaError, Rules};
use crate::smtp::config::SmtpConfig;
use crate::smtp::event::AbortReason;
use crate::smtp::limits;

#[allow(unused_macros)]
macro_rules! send {
    ($h:expr, $($bytes:expr),+ $(,)?) => { $( $h.send(AsRef::<[u8]>::as_ref(&$bytes)); )+ };
}
pub(crate) use send;

macro_rules! expect_reply {
    ($h:expr, $code:expr) => {
        $h.expect_reply($code, "")
    };
    ($h:expr, $code:expr, $text:expr) => {
        $h.expect_reply($code, $text)
    };
}

macro_rules! expect_event {
    ($h:expr, $seen:expr) => {
        assert_eq!($h.next(), Some($seen))
    };
}

macro_rules! expect_nothing {
    ($h:expr) => {
        assert_eq!($h.next(), None)
    };
}

/// A capacity hook the test can fill up.
#[derive(Clone, Default)]
pub(crate) struct TestCapacity(Rc<Cell<Option<QuotaError>>>);

impl Capacity for TestCapacity {
    fn space_for(&self, _domain: &str, _size: u64) -> Result<(), QuotaError> {
        self.0.get().map_or(Ok(()), Err)
    }
}

/// What the host saw, owned, with adjacent body pieces merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Reply(String),
    StartTls,
    Begin,
    Body(Vec<u8>),
    End,
    Aborted(AbortReason),
    Etrn(String),
    Beacon(String),
    RcptCheck(Option<crate::policy::Refusal>),
    Close,
}

/// A host that behaves like the daemon edge will: keeps unconsumed bytes, drops them
/// after StartTls, feeds at most `chunk` bytes per call.
pub(crate) struct Host {
    pub(crate) session: Session<Checker<TestCapacity>>,
    pub(crate) capacity: TestCapacity,
    pending: Vec<u8>,
    pub(crate) log: VecDeque<Seen>,
    pub(crate) now: Instant,
    chunk: usize,
}

pub(crate) const T0: u64 = 1_795_554_000;

pub(crate) fn smtp_config() -> SmtpConfig {
    SmtpConfig {
        hostname: "mx.example.net".into(),
        max_message_size: 1000,
        ..SmtpConfig::default()
    }
}

impl Host {
    pub(crate) fn new() -> Self {
        Self::with(smtp_config(), usize::MAX)
    }

    pub(crate) fn with(smtp: SmtpConfig, chunk: usize) -> Self {
        let policy = PolicyConfig {
            domains: vec!["example.com".into(), "list.example".into()],
            recipients: vec!["alice@list.example".into()],
            ..PolicyConfig::default()
        };
        let rules = Arc::new(Rules::from_config(&policy).unwrap());
        let capacity = TestCapacity::default();
        let cfg = SessionConfig::new(&smtp, Checker::new(rules, capacity.clone())).unwrap();
        let peer = PeerInfo {
            ip: "192.0.2.7".parse().unwrap(),
            port: 40000,
            tls: false,
            unix_seconds: T0,
        };
        let now = Instant::from_secs(100);
        let (session, greeting) = Session::new(&cfg, peer, now);
        let mut log = VecDeque::new();
        log.push_back(Seen::Reply(greeting.as_str().into()));
        Self {
            session,
            capacity,
            pending: Vec::new(),
            log,
            now,
            chunk,
        }
    }

    /// A host whose session hands every recipient over ([`SessionConfig::rcpt_checks`]).
    pub(crate) fn checked() -> Self {
        let mut h = Self::new();
        let policy = PolicyConfig {
            domains: vec!["example.com".into(), "list.example".into()],
            recipients: vec!["alice@list.example".into()],
            ..PolicyConfig::default()
        };
        let rules = Arc::new(Rules::from_config(&policy).unwrap());
        let mut cfg =
            SessionConfig::new(&smtp_config(), Checker::new(rules, h.capacity.clone())).unwrap();
        cfg.rcpt_checks = true;
        let peer = PeerInfo {
            ip: "192.0.2.7".parse().unwrap(),
            port: 40000,
            tls: false,
            unix_seconds: T0,
        };
        h.session = Session::new(&cfg, peer, h.now).0;
        h
    }

    /// The host's answer to a recipient handed over; pumps what waited.
    pub(crate) fn answer(&mut self, answer: crate::smtp::RcptAnswer) {
        let mut out = Events::new();
        self.session.rcpt_checked(answer, self.now, &mut out);
        for event in out {
            record(&mut self.log, event);
        }
        self.pump();
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.pump();
    }

    fn pump(&mut self) {
        // Bounded: every round consumes at least one byte or stops.
        while !self.pending.is_empty() {
            let take = self.pending.len().min(self.chunk);
            let mut out = Events::new();
            let n = self
                .session
                .input(&self.pending[..take], self.now, &mut out);
            let mut starttls = false;
            for event in out {
                starttls |= event == Event::StartTls;
                record(&mut self.log, event);
            }
            self.pending.drain(..n);
            if starttls {
                // CVE-2011-0411: plaintext read before the handshake is dropped.
                self.pending.clear();
            }
            if n == 0 {
                break;
            }
        }
    }

    pub(crate) fn stored(&mut self, result: Result<&str, StoreError>) {
        let r = self.session.stored(result, self.now);
        self.log.push_back(Seen::Reply(r.as_str().into()));
        self.pump();
    }

    pub(crate) fn tick(&mut self) {
        let mut out = Events::new();
        self.session.tick(self.now, &mut out);
        for event in out {
            record(&mut self.log, event);
        }
    }

    /// The Received header of the message in progress.
    pub(crate) fn received(&self) -> String {
        self.session
            .envelope()
            .expect("a message in progress")
            .received
            .to_string()
    }

    pub(crate) fn next(&mut self) -> Option<Seen> {
        self.log.pop_front()
    }

    pub(crate) fn expect_reply(&mut self, code: u16, text: &str) -> String {
        match self.next() {
            Some(Seen::Reply(r)) => {
                assert!(
                    r.starts_with(&code.to_string()),
                    "want {code} {text:?}, got {r:?}"
                );
                assert!(r.contains(text), "want {code} {text:?}, got {r:?}");
                r
            }
            other => panic!("want reply {code} {text:?}, got {other:?}"),
        }
    }

    /// Greeting, EHLO, MAIL and one RCPT, all answered.
    pub(crate) fn ready_for_data(&mut self) {
        self.expect_reply(220, "mx.example.net");
        send!(
            self,
            "EHLO client.example\r\n",
            "MAIL FROM:<s@sender.example>\r\n",
            "RCPT TO:<u@example.com>\r\n"
        );
        self.expect_reply(250, "PIPELINING");
        self.expect_reply(250, "2.1.0");
        self.expect_reply(250, "2.1.5");
    }
}

pub(crate) fn record(log: &mut VecDeque<Seen>, event: Event<'_>) {
    let seen = match event {
        Event::Reply(r) => Seen::Reply(r.as_str().into()),
        Event::StartTls => Seen::StartTls,
        Event::MessageBegin => Seen::Begin,
        Event::Body(b) => {
            if let Some(Seen::Body(prev)) = log.back_mut() {
                prev.extend_from_slice(b);
                return;
            }
            Seen::Body(b.to_vec())
        }
        Event::MessageEnd => Seen::End,
        Event::MessageAborted(r) => Seen::Aborted(r),
        Event::Etrn(n) => Seen::Etrn(n.as_str().into()),
        Event::Beacon(b) => Seen::Beacon(b.as_str().into()),
        Event::RcptCheck(r) => Seen::RcptCheck(r),
        Event::Close => Seen::Close,
    };
    log.push_back(seen);
}

// After the macros: a macro is only in scope for the modules declared below it.
mod bounds;
mod checks;
mod conversation;
mod hostile;
