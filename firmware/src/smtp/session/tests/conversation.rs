//! Whole conversations: extensions, a message from MAIL to "queued as", pipelining,
//! ordering errors, HELO and SMTPUTF8 sessions, ETRN, and any split of the input.

use super::*;

#[test]
fn greeting_and_ehlo_advertise_every_extension() {
    let mut h = Host::new();
    expect_reply!(h, 220, "mx.example.net ESMTP");
    send!(h, "EHLO client.example\r\n");
    let ehlo = expect_reply!(h, 250);
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "STARTTLS",
        "ETRN",
    ] {
        assert!(
            ehlo.contains(&format!("250-{ext}\r\n")) || ehlo.ends_with(&format!("250 {ext}\r\n")),
            "{ext} in {ehlo}"
        );
    }
    let mut h = Host::with(
        SmtpConfig {
            starttls: false,
            ..smtp_config()
        },
        usize::MAX,
    );
    send!(h, "EHLO client.example\r\n");
    h.next();
    assert!(!expect_reply!(h, 250).contains("STARTTLS"));
}

#[test]
fn a_message_is_streamed_then_acknowledged_only_after_the_host_stored_it() {
    let mut h = Host::new();
    h.ready_for_data();
    send!(h, "DATA\r\n");
    expect_reply!(h, 354);
    expect_event!(h, Seen::Begin);
    let env = h.session.envelope().unwrap();
    assert_eq!(env.from.as_ref().unwrap().to_string(), "<s@sender.example>");
    assert_eq!(env.recipients[0].to_string(), "u@example.com");
    assert_eq!(
        env.received.as_str(),
        "Received: from client.example ([192.0.2.7])\r\n\tby mx.example.net (mailbag) with ESMTP;\r\n\tTue, 24 Nov 2026 21:00:00 +0000\r\n"
    );
    send!(h, "Subject: hi\r\n\r\n..dot\r\n", "end\r\n.\r\n");
    expect_event!(
        h,
        Seen::Body(b"Subject: hi\r\n\r\n.dot\r\nend\r\n".to_vec())
    );
    expect_event!(h, Seen::End);
    expect_nothing!(h);
    h.stored(Ok("4F2A"));
    expect_reply!(h, 250, "2.0.0 Ok: queued as 4F2A");
    assert!(h.session.envelope().is_none());
}

#[test]
fn pipelined_commands_wait_while_the_host_stores() {
    let mut h = Host::new();
    h.ready_for_data();
    send!(
        h,
        "DATA\r\nhello\r\n.\r\nMAIL FROM:<t@sender.example>\r\nQUIT\r\n"
    );
    expect_reply!(h, 354);
    expect_event!(h, Seen::Begin);
    expect_event!(h, Seen::Body(b"hello\r\n".to_vec()));
    expect_event!(h, Seen::End);
    expect_nothing!(h);
    // Not consumed: the session would not even look at it.
    let mut out = Events::new();
    assert_eq!(h.session.input(b"NOOP\r\n", h.now, &mut out), 0);
    assert!(out.is_empty());
    h.stored(Err(StoreError::SpoolFull));
    expect_reply!(h, 452, "4.3.1 Insufficient system storage");
    expect_reply!(h, 250, "2.1.0");
    expect_reply!(h, 221);
    expect_event!(h, Seen::Close);
}

#[test]
fn store_errors_map_to_retryable_replies() {
    for (err, want) in [
        (StoreError::QuotaExceeded, "452 4.2.2"),
        (StoreError::Io, "451 4.3.0"),
    ] {
        let mut h = Host::new();
        h.ready_for_data();
        send!(h, "DATA\r\nx\r\n.\r\n");
        h.log.clear();
        h.stored(Err(err));
        assert!(expect_reply!(h, 400 + want[1..3].parse::<u16>().unwrap()).starts_with(want));
    }
    let mut h = Host::new();
    assert_eq!(
        h.session.stored(Ok("x"), h.now).code(),
        451,
        "no message waiting"
    );
}

#[test]
fn commands_out_of_order_get_503_and_the_rest_behave() {
    let mut h = Host::with(
        SmtpConfig {
            max_bad_commands: 100,
            ..smtp_config()
        },
        usize::MAX,
    );
    h.next();
    send!(h, "MAIL FROM:<a@b.example>\r\n");
    expect_reply!(h, 503, "5.5.1");
    send!(
        h,
        "HELO client.example\r\n",
        "RCPT TO:<u@example.com>\r\n",
        "DATA\r\n"
    );
    expect_reply!(h, 250, "mx.example.net");
    expect_reply!(h, 503, "need MAIL");
    expect_reply!(h, 503, "need MAIL");
    send!(h, "MAIL FROM:<>\r\n", "DATA\r\n", "MAIL FROM:<>\r\n");
    expect_reply!(h, 250, "2.1.0");
    expect_reply!(h, 503, "need RCPT");
    expect_reply!(h, 503, "nested MAIL");
    send!(
        h,
        "VRFY bob\r\n",
        "HELP\r\n",
        "NOOP\r\n",
        "RSET\r\n",
        "RCPT TO:<u@example.com>\r\n"
    );
    expect_reply!(h, 252, "2.5.2");
    expect_reply!(h, 214);
    expect_reply!(h, 250, "2.0.0");
    expect_reply!(h, 250, "2.0.0");
    expect_reply!(h, 503, "need MAIL");
    send!(
        h,
        "FOO\r\n",
        "EXPN staff\r\n",
        "DATA x\r\n",
        "RCPT\r\n",
        "MAIL FROM:<>\r\n",
        "RCPT TO:u@example.com\r\n"
    );
    expect_reply!(h, 500, "5.5.1");
    expect_reply!(h, 502, "5.5.1");
    expect_reply!(h, 501, "5.5.4");
    expect_reply!(h, 501, "5.5.4");
    expect_reply!(h, 250);
    expect_reply!(h, 501, "5.1.3");
    send!(h, "QUIT\r\n");
    expect_reply!(h, 221, "2.0.0");
    expect_event!(h, Seen::Close);
    send!(h, "NOOP\r\n");
    expect_nothing!(h);
}

#[test]
fn a_long_pipelined_burst_is_answered_in_full_and_in_order() {
    let mut h = Host::new();
    h.next();
    // Far more replies than one Events buffer holds: input returns early and resumes.
    let burst: String = (0..200).map(|i| format!("NOOP {i}\r\n")).collect();
    let mut out = Events::new();
    let n = h.session.input(burst.as_bytes(), h.now, &mut out);
    assert!(n < burst.len(), "stops before the buffer overflows");
    assert!(out.len() <= limits::EVENTS_MAX);
    h.log.clear();
    send!(h, &burst.as_bytes()[n..]);
    assert_eq!(h.log.len() + out.len(), 200);
    assert!(
        h.log
            .iter()
            .all(|s| *s == Seen::Reply("250 2.0.0 Ok\r\n".into()))
    );
}

#[test]
fn helo_sessions_take_no_parameters_and_say_smtp_in_received() {
    let mut h = Host::new();
    h.next();
    send!(
        h,
        "HELO c.example\r\n",
        "MAIL FROM:<a@b.example> BODY=8BITMIME\r\n",
        "MAIL FROM:<a@b.example>\r\n"
    );
    send!(h, "RCPT TO:<u@example.com>\r\n", "DATA\r\n");
    h.next();
    expect_reply!(h, 555, "5.5.4");
    expect_reply!(h, 250);
    expect_reply!(h, 250);
    expect_reply!(h, 354);
    assert!(h.received().contains("with SMTP;"));
}

#[test]
fn smtputf8_allows_utf8_addresses() {
    let mut h = Host::new();
    h.next();
    send!(
        h,
        "EHLO c.example\r\n",
        "MAIL FROM:<ö@b.example>\r\n",
        "MAIL FROM:<ö@b.example> SMTPUTF8\r\n"
    );
    send!(h, "RCPT TO:<jürgen@example.com>\r\n", "DATA\r\n");
    h.next();
    expect_reply!(h, 553, "5.6.7");
    expect_reply!(h, 250);
    expect_reply!(h, 250);
    expect_reply!(h, 354);
    assert!(h.received().contains("with UTF8SMTP;"));
}

#[test]
fn etrn_is_handed_to_the_host() {
    let mut h = Host::new();
    h.next();
    send!(
        h,
        "ETRN example.com\r\n",
        "EHLO c.example\r\n",
        "ETRN @example.com\r\n",
        "NOOP\r\n"
    );
    expect_reply!(h, 503);
    expect_reply!(h, 250);
    expect_event!(h, Seen::Etrn("@example.com".into()));
    expect_reply!(h, 250, "Ok");
    send!(h, "MAIL FROM:<>\r\n", "ETRN example.com\r\n");
    expect_reply!(h, 250);
    expect_reply!(h, 503, "transaction");
}

/// A conversation with pipelining, two messages, dot-stuffing and errors.
fn script() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(
        b"EHLO c.example\r\nMAIL FROM:<a@b.example> SIZE=500\r\nRCPT TO:<u@example.com>\r\n",
    );
    s.extend_from_slice(b"RCPT TO:<u@evil.example>\r\nDATA\r\n");
    for i in 0..40 {
        s.extend_from_slice(format!("..line {i}\r\n.stuffed\r\n\r\n...\r\n").as_bytes());
    }
    s.extend_from_slice(
        b".\r\nBOGUS\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<alice@list.example>\r\nDATA\r\n.\r\n",
    );
    s.extend_from_slice(b"ETRN example.com\r\nQUIT\r\nNOOP\r\n");
    s
}

fn run_script(chunk: usize) -> Vec<Seen> {
    let mut h = Host::with(smtp_config(), chunk);
    h.send(&script());
    let mut seen = Vec::new();
    // Bounded: two messages, so at most two store hand-offs.
    for _ in 0..3 {
        seen.extend(h.log.drain(..));
        if seen.last() == Some(&Seen::End) {
            h.stored(Ok("Q1"));
        }
    }
    seen
}

#[test]
fn byte_at_a_time_behaves_exactly_like_whole_buffer() {
    let whole = run_script(usize::MAX);
    assert_eq!(
        whole.iter().filter(|s| **s == Seen::End).count(),
        2,
        "{whole:#?}"
    );
    assert_eq!(whole.last(), Some(&Seen::Close));
    assert!(whole.contains(&Seen::Etrn("example.com".into())));
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(run_script(chunk), whole, "chunk size {chunk}");
    }
}
