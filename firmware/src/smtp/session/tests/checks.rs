//! The host's checks: recipients handed over before their reply, a refused greeting, a
//! refused message, stress-mode idle time.

use embassy_time::Duration;

use super::*;
use crate::policy::Refusal;
use crate::smtp::RcptAnswer;

#[test]
fn recipients_wait_for_the_host_and_pipelined_commands_wait_with_them() {
    let mut h = Host::checked();
    h.next();
    send!(
        h,
        "EHLO c.example\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<u@example.com>\r\n",
        "RCPT TO:<bob@list.example>\r\nDATA\r\n"
    );
    expect_reply!(h, 250, "PIPELINING");
    expect_reply!(h, 250, "2.1.0");
    expect_event!(h, Seen::RcptCheck(None));
    expect_nothing!(h);
    let p = h.session.pending_recipient().unwrap();
    assert_eq!(p.mailbox.to_string(), "u@example.com");
    assert_eq!(p.sender.unwrap().to_string(), "<s@sender.example>");
    assert!(p.accepted.is_empty());
    h.answer(RcptAnswer::Accept);
    expect_reply!(h, 250, "2.1.5");
    // The policy's own refusal comes with the hand-off; the host decides the reply.
    expect_event!(h, Seen::RcptCheck(Some(Refusal::UnknownUser)));
    h.answer(RcptAnswer::Refuse(Reply::new(
        550,
        "5.1.1",
        format_args!("User unknown"),
    )));
    expect_reply!(h, 550, "5.1.1");
    expect_reply!(h, 354);
    expect_event!(h, Seen::Begin);
    assert_eq!(h.session.envelope().unwrap().recipients.len(), 1);
}

#[test]
fn refused_guesses_count_as_errors_and_close_the_session() {
    let mut h = Host::checked();
    h.next();
    send!(h, "EHLO c.example\r\nMAIL FROM:<s@sender.example>\r\n");
    h.next();
    h.next();
    for i in 0..12 {
        send!(h, format!("RCPT TO:<guess{i}@example.com>\r\n"));
        expect_event!(h, Seen::RcptCheck(None));
        h.answer(RcptAnswer::Refuse(Reply::new(
            550,
            "5.1.1",
            format_args!("User unknown"),
        )));
        let r = expect_reply!(h, 550);
        assert!(r.contains("5.1.1"));
        if h.session.is_closed() {
            expect_reply!(h, 421, "too many errors");
            expect_event!(h, Seen::Close);
            assert_eq!(i, 9, "max-bad-commands (10) closes the session");
            return;
        }
    }
    panic!("never closed");
}

#[test]
fn a_refused_greeting_answers_only_quit() {
    let cfg = SessionConfig::new(
        &smtp_config(),
        Checker::new(
            Arc::new(Rules::from_config(&PolicyConfig::default()).unwrap()),
            TestCapacity::default(),
        ),
    )
    .unwrap();
    let peer = PeerInfo {
        ip: "127.0.0.2".parse().unwrap(),
        port: 1,
        tls: false,
        unix_seconds: T0,
    };
    let now = Instant::from_secs(1);
    let (mut s, greeting) = Session::refused(&cfg, peer, now, "5.7.1", "blocked using bl.test");
    assert_eq!(greeting.as_str(), "554 5.7.1 blocked using bl.test\r\n");
    let mut out = Events::new();
    s.input(b"EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", now, &mut out);
    let replies: Vec<String> = out
        .iter()
        .filter_map(|e| match e {
            Event::Reply(r) => Some(r.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert!(replies[0].starts_with("503") && replies[1].starts_with("503"));
    assert!(replies[2].starts_with("221"));
    assert!(s.is_closed());
}

#[test]
fn the_host_can_refuse_the_content_instead_of_storing_it() {
    let mut h = Host::new();
    h.ready_for_data();
    send!(h, "DATA\r\nhello\r\n.\r\n");
    expect_reply!(h, 354);
    expect_event!(h, Seen::Begin);
    expect_event!(h, Seen::Body(b"hello\r\n".to_vec()));
    expect_event!(h, Seen::End);
    let r = h.session.rejected(
        Reply::new(554, "5.7.1", format_args!("Attachment refused")),
        h.now,
    );
    assert_eq!(r.as_str(), "554 5.7.1 Attachment refused\r\n");
    assert!(h.session.envelope().is_none());
    send!(h, "MAIL FROM:<s@sender.example>\r\n");
    expect_reply!(h, 250, "2.1.0");
    // Not waiting for a verdict: a host bug, answered 451 and nothing changes.
    let r = h
        .session
        .rejected(Reply::new(554, "5.7.1", format_args!("x")), h.now);
    assert!(r.as_str().starts_with("451"));
}

#[test]
fn the_host_can_shorten_the_idle_time_outside_a_transaction() {
    let mut h = Host::new();
    h.next();
    send!(h, "EHLO c.example\r\n");
    h.next();
    assert!(!h.session.in_transaction());
    assert_eq!(h.session.helo_name(), Some("c.example"));
    h.session.set_idle_timeout(Duration::from_secs(10));
    assert_eq!(
        h.session.deadline(),
        Some(h.now.saturating_add(Duration::from_secs(10)))
    );
    send!(h, "MAIL FROM:<s@sender.example>\r\n");
    assert!(h.session.in_transaction());
}
