//! Sessions that carry no mail: the probe and ETRN.

use super::*;

#[test]
fn probe_says_ehlo_and_quits() {
    let now = Instant::from_secs(5);
    let mut h = Host::with(Client::probe(cfg(TlsPolicy::Opportunistic), now), b"");
    server!(h, "220 mx\r\n", EHLO_PIPELINING);
    expect_sent!(h, "EHLO relay.example.net\r\nQUIT\r\n");
    match h.c.outcome() {
        Some(Outcome::Probed(ext)) => {
            assert!(ext.pipelining && ext.eight_bit_mime && !ext.starttls);
            assert_eq!(ext.size, Some(10_240_000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn etrn_asks_the_silo_to_flush() {
    let now = Instant::from_secs(5);
    let etrn = |reply: &'static str| {
        let c = Client::etrn(cfg(TlsPolicy::Opportunistic), "example.com", now);
        let mut h = Host::with(c, b"");
        server!(h, "220 silo\r\n", "250-silo\r\n250 ETRN\r\n");
        expect_sent!(h, "EHLO relay.example.net\r\nETRN example.com\r\n");
        server!(h, reply);
        expect_sent!(h, "QUIT\r\n");
        h.c.outcome().cloned()
    };
    assert_eq!(
        etrn("250 OK, queuing for node example.com started\r\n"),
        Some(Outcome::Etrn(ServerReply::new(
            250,
            "250 OK, queuing for node example.com started"
        )))
    );
    assert!(matches!(
        etrn("251 OK, no messages waiting\r\n"),
        Some(Outcome::Etrn(_))
    ));
    match etrn("459 Node example.com not allowed\r\n") {
        Some(Outcome::Failed(f)) => {
            assert_eq!((f.reason, f.permanent), (FailReason::Etrn, false))
        }
        other => panic!("{other:?}"),
    }
}
