//! Refusals, timeouts and hostile next hops: always an outcome, never a panic, nothing
//! injected, fixed size.

use super::*;

#[test]
fn greeting_refusals_are_classified_by_code() {
    for (greeting, permanent) in [
        ("554 5.3.2 go away\r\n", true),
        ("421 4.3.2 busy\r\n", false),
    ] {
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(h, greeting);
        let f = h.failure();
        assert_eq!((f.reason, f.permanent), (FailReason::Greeting, permanent));
        expect_sent!(h, "QUIT\r\n");
    }
}

#[test]
fn timeouts_follow_rfc_5321_and_fail_temporarily() {
    let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"x\r\n");
    assert_eq!(h.c.deadline(), Some(h.now + GREETING_TIMEOUT));
    h.c.tick(h.now + GREETING_TIMEOUT - Duration::from_secs(1));
    assert_eq!(h.c.outcome(), None);
    server!(h, "220 mx\r\n", EHLO_PIPELINING);
    assert_eq!(h.c.deadline(), Some(h.now + MAIL_TIMEOUT));
    server!(h, "250 ok\r\n", "250 ok\r\n");
    assert_eq!(h.c.deadline(), Some(h.now + DATA_INIT_TIMEOUT));
    server!(h, "354 go\r\n");
    assert_eq!(h.c.deadline(), Some(h.now + DATA_END_TIMEOUT));
    h.c.tick(h.now + DATA_END_TIMEOUT);
    let f = h.failure();
    assert_eq!((f.reason, f.permanent), (FailReason::Timeout, false));
    assert!(h.c.is_closed());
}

#[test]
fn bare_newline_in_the_content_is_never_sent() {
    let mut h = Host::deliver(
        TlsPolicy::Opportunistic,
        job(&["a@example.com"]),
        b"ok line\r\nsmuggle\n.\nMAIL FROM:<x@evil>\r\n",
    );
    server!(
        h,
        "220 mx\r\n",
        EHLO_PIPELINING,
        "250 ok\r\n250 ok\r\n354 go\r\n"
    );
    let wire = h.sent();
    assert!(
        !wire.contains("smuggle") && !wire.contains("\r\n.\r\n"),
        "{wire:?}"
    );
    let f = h.failure();
    assert_eq!((f.reason, f.permanent), (FailReason::BareNewline, true));
    assert!(h.c.is_closed());
}

#[test]
fn malformed_or_unsolicited_replies_fail_temporarily() {
    for bad in ["25O ok\r\n", "250 ok\n", "250-a\r\n251 b\r\n"] {
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
        server!(h, "220 mx\r\n", bad);
        let f = h.failure();
        assert!(
            matches!(f.reason, FailReason::Protocol(_)) && !f.permanent,
            "{bad:?}"
        );
    }
    let mut h2 = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
    server!(
        h2,
        "220 mx\r\n",
        "250 mx\r\n",
        "250 ok\r\n250 ok\r\n250 extra\r\n"
    );
    assert_eq!(h2.failure().reason, FailReason::Unexpected, "250 to DATA");
    assert!(h2.c.is_closed());
    let mut h3 = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
    server!(h3, "220 mx\r\n");
    h3.c.eof();
    assert_eq!(h3.failure().reason, FailReason::Closed);
}

/// Random server output in every state: never a panic, always an end within bounds.
#[test]
fn random_server_bytes_never_panic_and_always_end() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pieces: &[&[u8]] = &[
        b"220 mx\r\n",
        EHLO_PIPELINING.as_bytes(),
        b"250-STARTTLS\r\n",
        b"250 ok\r\n",
        b"354 go\r\n",
        b"550 5.1.1 no\r\n",
        b"421 bye\r\n",
        b"\r\n",
        b"2",
        b"\n",
        b"-",
        b"\xff\x00",
    ];
    for _ in 0..2000 {
        let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b".x\r\n");
        h.tls_verified = if rand() % 2 == 0 { Some(true) } else { None };
        h.chunk = 1 + (rand() % 7) as usize;
        for _ in 0..(rand() % 12) {
            let p = pieces[(rand() % pieces.len() as u64) as usize];
            server!(h, p);
        }
        h.c.eof();
        h.c.tick(h.now + DATA_END_TIMEOUT);
        assert!(h.c.is_closed() || h.c.deadline().is_some());
        assert!(h.c.outcome().is_some(), "an outcome once the peer is gone");
    }
}

#[test]
fn a_client_session_has_a_fixed_size() {
    // Boxed by the daemon: one per delivery in flight (`max-per-hop` per next hop).
    let size = core::mem::size_of::<Client<'_>>();
    assert!(size < 40 * 1024, "{size} bytes");
}

#[test]
fn the_end_of_data_fits_even_when_the_host_never_drained() {
    // Driven by hand: the test host would stream the content itself.
    let now = Instant::from_secs(1);
    let mut c = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now);
    let wire = format!("220 mx\r\n{EHLO_PIPELINING}250 ok\r\n250 ok\r\n354 go\r\n");
    let mut rest = wire.as_bytes();
    while !rest.is_empty() {
        let n = c.input(rest, now);
        rest = &rest[n..];
        let w = c.output().len();
        c.written(w, now);
        while c.next_action().is_some() {}
    }
    let line = [b'x'; 100];
    let mut fed = 0;
    while fed < 2 * OUTPUT_MAX {
        let n = c.body(&line, now);
        if n == 0 {
            break;
        }
        fed += n;
    }
    assert!(fed < OUTPUT_MAX, "the buffer filled up");
    c.body_end(now);
    assert!(c.output().ends_with(b"x\r\n.\r\n"));
    assert_eq!(c.output().len(), OUTPUT_MAX);
}

#[test]
fn addresses_that_could_inject_commands_never_go_out() {
    for (sender, rcpt) in [
        ("s@x.example\r\nRSET", "a@example.com"),
        ("s@x.example", "a@example.com>\r\nRCPT TO:<b@evil.example"),
    ] {
        let mut j = job(&[rcpt]);
        j.sender = sender;
        let mut h = Host::deliver(TlsPolicy::Opportunistic, j, b"");
        server!(h, "220 mx\r\n", EHLO_PIPELINING);
        let f = h.failure();
        assert_eq!((f.reason, f.permanent), (FailReason::BadAddress, true));
        expect_sent!(h, "EHLO relay.example.net\r\nQUIT\r\n");
    }
}
