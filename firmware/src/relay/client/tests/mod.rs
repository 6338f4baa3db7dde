//! The client core as conversations: [`Host`] plays the daemon, `server!` plays the next
//! hop, `expect_sent!` checks the wire.

use super::*;

/// Plays the host: writes what the client outputs (in `chunk`-byte reads of the
/// server's bytes), streams `body` on SendBody, records actions.
struct Host<'a> {
    c: Client<'a>,
    now: Instant,
    wire: Vec<u8>,
    actions: Vec<ClientAction>,
    body: &'a [u8],
    chunk: usize,
    tls_verified: Option<bool>,
    writes: usize,
}

macro_rules! server {
    ($h:expr, $($bytes:expr),+ $(,)?) => { $( $h.server(AsRef::<[u8]>::as_ref(&$bytes)); )+ };
}

macro_rules! expect_sent {
    ($h:expr, $text:expr) => {
        assert_eq!($h.sent(), $text)
    };
}

fn cfg(tls: TlsPolicy) -> ClientConfig {
    ClientConfig {
        helo_name: heapless::String::try_from("relay.example.net").unwrap(),
        tls,
    }
}

fn job<'a>(recipients: &[&'a str]) -> DeliveryJob<'a> {
    DeliveryJob {
        sender: "s@sender.example",
        recipients: recipients.iter().copied().collect(),
        size: 42,
    }
}

impl<'a> Host<'a> {
    fn deliver(tls: TlsPolicy, job: DeliveryJob<'a>, body: &'a [u8]) -> Self {
        let now = Instant::from_secs(1000);
        Self::with(Client::deliver(cfg(tls), job, now), body)
    }

    fn with(c: Client<'a>, body: &'a [u8]) -> Self {
        Self {
            c,
            now: Instant::from_secs(1000),
            wire: Vec::new(),
            actions: Vec::new(),
            body,
            chunk: usize::MAX,
            tls_verified: Some(true),
            writes: 0,
        }
    }

    fn server(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        self.pump();
        // Bounded: each round consumes input or the session is waiting on the host,
        // which pump() resolves.
        for _ in 0..10_000 {
            if rest.is_empty() || self.c.is_closed() {
                break;
            }
            let take = rest.len().min(self.chunk);
            let n = self.c.input(&rest[..take], self.now);
            rest = &rest[n..];
            if self.pump() {
                rest = &[]; // StartTls: drop unconsumed plaintext.
            }
        }
    }

    /// Drain output and handle actions; true after StartTls.
    fn pump(&mut self) -> bool {
        let mut starttls = false;
        loop {
            self.drain();
            let Some(a) = self.c.next_action() else {
                return starttls;
            };
            self.actions.push(a);
            match a {
                ClientAction::StartTls => {
                    starttls = true;
                    match self.tls_verified {
                        Some(v) => self.c.tls_established(v, self.now),
                        None => self.c.tls_failed(),
                    }
                }
                ClientAction::SendBody => {
                    for piece in self.body.chunks(7) {
                        let mut piece = piece;
                        while !piece.is_empty() && !self.c.is_closed() {
                            let n = self.c.body(piece, self.now);
                            piece = &piece[n..];
                            self.drain();
                        }
                    }
                    self.c.body_end(self.now);
                }
                ClientAction::Done | ClientAction::Close => {}
            }
        }
    }

    /// Write until the client has nothing more (it refills as the socket takes bytes).
    fn drain(&mut self) {
        for _ in 0..1000 {
            let out = self.c.output().to_vec();
            if out.is_empty() {
                return;
            }
            self.writes += 1;
            self.wire.extend_from_slice(&out);
            self.c.written(out.len(), self.now);
        }
    }

    fn sent(&mut self) -> String {
        self.pump();
        String::from_utf8(core::mem::take(&mut self.wire)).unwrap()
    }

    fn results(&self) -> Vec<RcptResult> {
        match self.c.outcome() {
            Some(Outcome::Transaction(r)) => r.to_vec(),
            other => panic!("want a transaction, got {other:?}"),
        }
    }

    fn failure(&self) -> Failure {
        match self.c.outcome() {
            Some(Outcome::Failed(f)) => f.clone(),
            other => panic!("want a failure, got {other:?}"),
        }
    }
}

const EHLO_PIPELINING: &str =
    "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

// After the macros: a macro is only in scope for the modules declared below it.
mod delivery;
mod hostile;
mod modes;
mod tls;
