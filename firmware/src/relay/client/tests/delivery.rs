//! Delivering mail: pipelining, per-recipient results, kept connections, SMTPUTF8.

use super::*;

#[test]
fn pipelined_delivery_with_per_recipient_results() {
    let body = b"Subject: hi\r\n\r\n.dot line\r\nend";
    let mut h = Host::deliver(
        TlsPolicy::Opportunistic,
        job(&["a@example.com", "b@example.com", "c@example.com"]),
        body,
    );
    expect_sent!(h, "");
    server!(h, "220 mx.example.com ESMTP\r\n");
    expect_sent!(h, "EHLO relay.example.net\r\n");
    server!(h, EHLO_PIPELINING);
    // RFC 2920: the whole envelope and DATA in one write.
    expect_sent!(
        h,
        "MAIL FROM:<s@sender.example> SIZE=42\r\nRCPT TO:<a@example.com>\r\n\
         RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
    );
    server!(
        h,
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "550 5.1.1 <b@example.com>: user unknown\r\n",
        "451 4.2.0 greylisted\r\n",
        "354 go ahead\r\n"
    );
    expect_sent!(h, "Subject: hi\r\n\r\n..dot line\r\nend\r\n.\r\n");
    assert_eq!(
        h.c.outcome(),
        None,
        "not final before the end-of-data reply"
    );
    server!(h, "250 2.0.0 Ok: queued as X\r\n");
    assert_eq!(
        h.results(),
        vec![
            RcptResult::Delivered,
            RcptResult::Bounced(ServerReply::new(
                550,
                "550 5.1.1 <b@example.com>: user unknown"
            )),
            RcptResult::Deferred(ServerReply::new(451, "451 4.2.0 greylisted")),
        ]
    );
    expect_sent!(h, "QUIT\r\n");
    assert_eq!(h.actions, vec![ClientAction::SendBody, ClientAction::Done]);
    server!(h, "221 2.0.0 Bye\r\n");
    assert!(h.c.is_closed());
    assert_eq!(h.actions.last(), Some(&ClientAction::Close));
}

#[test]
fn a_kept_connection_carries_the_next_message_with_rset_only_when_needed() {
    let body = b"Subject: one\r\n\r\nx";
    let now = Instant::from_secs(1000);
    let first = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now);
    let mut h = Host::with(first.keep_open(), body);
    server!(h, "220 mx.example.com ESMTP\r\n", EHLO_PIPELINING);
    h.sent();
    server!(h, "250 ok\r\n", "250 ok\r\n", "354 go\r\n");
    h.sent();
    server!(h, "250 queued\r\n");
    assert_eq!(h.results(), vec![RcptResult::Delivered]);
    assert!(
        h.c.is_idle(),
        "no QUIT: the connection waits for the next message"
    );
    expect_sent!(h, "");
    assert!(!h.actions.contains(&ClientAction::Close));

    // The second message goes straight to MAIL (the last one ended cleanly).
    let second = Client::resume(&h.c.kept().unwrap(), job(&["b@example.com"]), now);
    let mut h = Host::with(second, body);
    expect_sent!(
        h,
        "MAIL FROM:<s@sender.example> SIZE=42\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    );
    // Its only recipient is refused: the transaction is left open on the server...
    server!(
        h,
        "250 ok\r\n",
        "550 5.1.1 unknown\r\n",
        "554 no valid recipients\r\n"
    );
    assert!(matches!(h.results()[0], RcptResult::Bounced(_)));
    assert!(h.c.is_idle());
    // ...so the third message starts with RSET.
    let third = Client::resume(&h.c.kept().unwrap(), job(&["c@example.com"]), now);
    let mut h = Host::with(third, body);
    expect_sent!(h, "RSET\r\n");
    server!(h, "250 reset\r\n");
    assert!(h.sent().starts_with("MAIL FROM:<s@sender.example>"));
    server!(h, "250 ok\r\n", "250 ok\r\n", "354 go\r\n");
    h.sent();
    server!(h, "250 queued\r\n");
    assert_eq!(h.results(), vec![RcptResult::Delivered]);
    let kept = h.c.kept().unwrap();
    // Done with the connection: QUIT.
    let mut h = Host::with(Client::quit_kept(&kept, now), body);
    expect_sent!(h, "QUIT\r\n");
    server!(h, "221 bye\r\n");
    assert!(h.c.is_closed());
    assert!(h.c.outcome().is_none());

    // Only an idle session is kept; a refused RSET fails the message temporarily.
    let plain = Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now);
    assert!(plain.kept().is_none());
    let mut idle =
        Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now).keep_open();
    idle.state = State::Idle;
    let mut h = Host::with(
        Client::resume(&idle.kept().unwrap(), job(&["e@example.com"]), now),
        body,
    );
    expect_sent!(h, "RSET\r\n");
    server!(h, "421 shutting down\r\n");
    assert!(!h.failure().permanent);
    // The next hop dropping an idle connection ends it without an error.
    let mut idle2 =
        Client::deliver(cfg(TlsPolicy::Opportunistic), job(&["a@example.com"]), now).keep_open();
    idle2.state = State::Idle;
    idle2.eof();
    assert!(idle2.is_closed());
    assert!(idle2.outcome().is_none());
}

#[test]
fn without_pipelining_one_command_at_a_time_and_no_data_when_all_refused() {
    let mut h = Host::deliver(
        TlsPolicy::Opportunistic,
        job(&["a@example.com", "b@example.com"]),
        b"x\r\n",
    );
    server!(h, "220 mx\r\n", "250-mx\r\n250 SIZE\r\n");
    // SIZE without a limit still takes SIZE= (RFC 1870 §4).
    expect_sent!(
        h,
        "EHLO relay.example.net\r\nMAIL FROM:<s@sender.example> SIZE=42\r\n"
    );
    let mut h = Host::deliver(
        TlsPolicy::Opportunistic,
        job(&["a@example.com", "b@example.com"]),
        b"x\r\n",
    );
    server!(h, "220 mx\r\n", "250 mx\r\n");
    expect_sent!(
        h,
        "EHLO relay.example.net\r\nMAIL FROM:<s@sender.example>\r\n"
    );
    server!(h, "250 ok\r\n");
    expect_sent!(h, "RCPT TO:<a@example.com>\r\n");
    server!(h, "550 5.1.1 no\r\n");
    expect_sent!(h, "RCPT TO:<b@example.com>\r\n");
    server!(h, "553 5.1.3 no\r\n");
    expect_sent!(h, "QUIT\r\n");
    let r = h.results();
    assert!(
        r.iter().all(|r| matches!(r, RcptResult::Bounced(_))),
        "{r:?}"
    );
}

#[test]
fn helo_fallback_when_ehlo_is_refused() {
    let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
    server!(h, "220 old.example\r\n", "502 5.5.1 what\r\n");
    expect_sent!(h, "EHLO relay.example.net\r\nHELO relay.example.net\r\n");
    server!(h, "250 old.example\r\n");
    expect_sent!(h, "MAIL FROM:<s@sender.example>\r\n");
    server!(h, "250 ok\r\n", "250 ok\r\n");
    expect_sent!(h, "RCPT TO:<a@example.com>\r\nDATA\r\n");
    server!(h, "354 go\r\n");
    expect_sent!(h, ".\r\n");
    server!(h, "250 ok\r\n");
    assert_eq!(h.results(), vec![RcptResult::Delivered]);
}

#[test]
fn refused_sender_fails_the_message_after_draining_pipelined_replies() {
    let mut h = Host::deliver(
        TlsPolicy::Opportunistic,
        job(&["a@example.com", "b@example.com"]),
        b"x",
    );
    server!(h, "220 mx\r\n", EHLO_PIPELINING);
    h.sent();
    server!(h, "550 5.7.1 sender rejected\r\n", "503 5.5.1 no mail\r\n");
    let f = h.failure();
    assert_eq!((f.reason, f.permanent), (FailReason::Mail, true));
    assert_eq!(f.reply.unwrap().enhanced(), Some((5, 7, 1)));
    expect_sent!(h, "");
    server!(
        h,
        "503 5.5.1 no mail\r\n",
        "554 5.5.1 no valid recipients\r\n"
    );
    expect_sent!(h, "QUIT\r\n");
    assert!(!h.actions.contains(&ClientAction::SendBody));
}

/// A script whose wire and outcome must not depend on how the replies are split.
fn scripted(chunk: usize) -> (String, Vec<RcptResult>) {
    let body = b"A: b\r\n\r\n.\r\n..\r\nlast\r\n";
    let mut h = Host::deliver(
        TlsPolicy::Opportunistic,
        job(&["a@example.com", "b@example.com"]),
        body,
    );
    h.chunk = chunk;
    server!(
        h,
        "220 mx\r\n",
        EHLO_PIPELINING,
        "250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n354 go\r\n",
        "250 ok\r\n221 bye\r\n"
    );
    (h.sent(), h.results())
}

#[test]
fn replies_split_byte_by_byte_behave_like_whole_reads() {
    let whole = scripted(usize::MAX);
    assert_eq!(scripted(1), whole);
    assert_eq!(scripted(5), whole);
    assert!(
        whole
            .0
            .contains("A: b\r\n\r\n..\r\n...\r\nlast\r\n.\r\nQUIT\r\n")
    );
}

#[test]
fn a_hundred_long_recipients_are_pipelined_through_the_bounded_buffer() {
    let names: Vec<String> = (0..RECIPIENTS_MAX)
        .map(|i| format!("{}{i}@example.com", "u".repeat(200)))
        .collect();
    let rcpts: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&rcpts), b"x\r\n");
    server!(h, "220 mx\r\n", EHLO_PIPELINING);
    // More than one buffer-full, written as the socket takes it, before any reply.
    let wire = h.sent();
    assert!(
        h.writes > 1 && wire.len() > OUTPUT_MAX,
        "{} writes",
        h.writes
    );
    assert_eq!(wire.matches("RCPT TO:").count(), RECIPIENTS_MAX);
    assert!(wire.ends_with("DATA\r\n"));
    server!(
        h,
        "250 ok\r\n".repeat(RECIPIENTS_MAX + 1),
        "354 go\r\n",
        "250 ok\r\n"
    );
    assert_eq!(h.results(), vec![RcptResult::Delivered; RECIPIENTS_MAX]);
}

#[test]
fn smtputf8_is_requested_when_needed_and_required_of_the_next_hop() {
    let mut j = job(&["jürgen@example.com"]);
    j.size = 1;
    let mut h = Host::deliver(TlsPolicy::Opportunistic, j.clone(), b"");
    server!(h, "220 mx\r\n", "250-mx\r\n250 SMTPUTF8\r\n");
    assert!(
        h.sent()
            .ends_with("MAIL FROM:<s@sender.example> SMTPUTF8\r\n")
    );
    let mut h = Host::deliver(TlsPolicy::Opportunistic, j, b"");
    server!(h, "220 mx\r\n", "250 mx\r\n");
    let f = h.failure();
    assert_eq!((f.reason, f.permanent), (FailReason::Smtputf8, true));
}

#[test]
fn a_bounce_goes_out_from_the_null_sender() {
    let mut j = job(&["s@sender.example"]);
    j.sender = "";
    let mut h = Host::deliver(TlsPolicy::Opportunistic, j, b"");
    server!(h, "220 mx\r\n", "250 mx\r\n");
    assert!(h.sent().ends_with("MAIL FROM:<>\r\n"));
}
