//! Hostile clients: bare newlines, SMTP smuggling, plaintext injected with STARTTLS.

use super::*;

#[test]
fn bare_newline_in_a_command_closes() {
    let mut h = Host::new();
    h.next();
    send!(h, "NOOP\nNOOP\r\n");
    expect_reply!(h, 550, "5.5.2");
    expect_event!(h, Seen::Close);
    expect_nothing!(h);
}

/// SMTP smuggling at the session level: after each end-of-data look-alike the client
/// pipelines a second, forged message. The first message must be aborted, the session
/// closed, and nothing of the forged message accepted.
#[test]
fn no_smuggled_message_is_ever_accepted() {
    let ends: &[&str] = &[
        "\n.\n",
        "\n.\r\n",
        "\r\n.\n",
        "\r.\r",
        "\r.\r\n",
        "\r\n.\r",
        ".\n",
        "\r\n.\r\r\n",
    ];
    for end in ends {
        let mut h = Host::new();
        h.ready_for_data();
        let forged =
            "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nforged\r\n.\r\n";
        send!(h, format!("DATA\r\nreal{end}{forged}"));
        expect_reply!(h, 354);
        expect_event!(h, Seen::Begin);
        let Some(Seen::Body(body)) = h.next() else {
            panic!("no body for {end:?}")
        };
        // The piece before the bad ending may or may not be passed on; it is aborted.
        assert!(
            body.starts_with(b"real") && body.len() <= 6,
            "{end:?}: {body:?}"
        );
        expect_event!(h, Seen::Aborted(AbortReason::BareNewline));
        expect_reply!(h, 550, "5.5.2");
        expect_event!(h, Seen::Close);
        expect_nothing!(h);
        assert!(h.session.is_closed(), "{end:?}");
    }
}

#[test]
fn starttls_drops_pipelined_plaintext() {
    let mut h = Host::new();
    h.next();
    send!(h, "EHLO c.example\r\n");
    h.next();
    // The injected commands ride in the same packet as STARTTLS (CVE-2011-0411).
    let wire = b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<u@example.com>\r\n";
    let mut out = Events::new();
    let n = h.session.input(wire, h.now, &mut out);
    assert_eq!(
        n,
        b"STARTTLS\r\n".len(),
        "nothing after STARTTLS is consumed"
    );
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        Event::Reply(reply(220, "2.0.0", "Ready to start TLS"))
    );
    assert_eq!(out[1], Event::StartTls);
    // A host that wrongly feeds the rest anyway: the session discards it.
    let mut out = Events::new();
    assert_eq!(h.session.input(&wire[n..], h.now, &mut out), wire.len() - n);
    assert!(out.is_empty());
    h.session.tls_established(h.now);
    send!(
        h,
        "RCPT TO:<u@example.com>\r\n",
        "MAIL FROM:<a@b.example>\r\n",
        "EHLO c.example\r\n"
    );
    expect_reply!(h, 503, "HELO/EHLO first");
    expect_reply!(h, 503, "HELO/EHLO first");
    let ehlo = expect_reply!(h, 250);
    assert!(!ehlo.contains("STARTTLS"), "not offered twice");
    send!(
        h,
        "STARTTLS\r\n",
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<u@example.com>\r\n",
        "DATA\r\n"
    );
    expect_reply!(h, 503, "TLS already active");
    expect_reply!(h, 250);
    expect_reply!(h, 250);
    expect_reply!(h, 354);
    assert!(h.received().contains("with ESMTPS;"));
}

#[test]
fn starttls_is_refused_when_not_configured_or_in_a_transaction() {
    let mut h = Host::with(
        SmtpConfig {
            starttls: false,
            ..smtp_config()
        },
        usize::MAX,
    );
    h.next();
    send!(h, "STARTTLS\r\n");
    expect_reply!(h, 502);
    let mut h = Host::new();
    h.ready_for_data();
    send!(h, "STARTTLS\r\n");
    expect_reply!(h, 503, "transaction");
}
