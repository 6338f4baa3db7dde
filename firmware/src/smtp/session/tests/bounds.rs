//! Bounds: rejected commands, recipients, size, line length, timeouts.

use embassy_time::Duration;

use crate::smtp::data::HOPS_MAX;

use super::*;

#[test]
fn too_many_errors_disconnect() {
    let mut h = Host::new();
    h.next();
    for _ in 1..DEFAULT_BAD {
        send!(h, "BOGUS\r\n");
        expect_reply!(h, 500);
    }
    send!(h, "BOGUS\r\n", "NOOP\r\n");
    expect_reply!(h, 500);
    expect_reply!(h, 421, "4.7.0");
    expect_event!(h, Seen::Close);
    expect_nothing!(h);
}

const DEFAULT_BAD: u32 = limits::DEFAULT_MAX_BAD_COMMANDS;

#[test]
fn recipients_are_checked_by_the_policy() {
    let mut h = Host::new();
    h.ready_for_data();
    send!(
        h,
        "RCPT TO:<u@evil.example>\r\n",
        "RCPT TO:<@example.com:u@evil.example>\r\n",
        "RCPT TO:<u@evil.example@example.com>\r\n",
        "RCPT TO:<u%evil.example@example.com>\r\n",
        "RCPT TO:<bob@list.example>\r\n",
        "RCPT TO:<Alice+x@LIST.example>\r\n",
    );
    expect_reply!(h, 550, "5.7.1 Relay access denied");
    expect_reply!(h, 550, "5.7.1");
    expect_reply!(h, 550, "5.7.1");
    expect_reply!(h, 550, "5.7.1");
    expect_reply!(h, 550, "5.1.1 User unknown");
    expect_reply!(h, 250, "2.1.5");
    h.capacity.0.set(Some(QuotaError::SpoolFull));
    send!(h, "RCPT TO:<v@example.com>\r\n");
    expect_reply!(h, 452, "4.3.1");
    h.capacity.0.set(Some(QuotaError::QuotaExceeded));
    send!(h, "RCPT TO:<v@example.com>\r\n");
    expect_reply!(h, 452, "4.2.2");
}

#[test]
fn recipient_count_is_bounded() {
    let mut h = Host::with(
        SmtpConfig {
            max_recipients: 2,
            ..smtp_config()
        },
        usize::MAX,
    );
    h.ready_for_data();
    send!(
        h,
        "RCPT TO:<v@example.com>\r\n",
        "RCPT TO:<w@example.com>\r\n",
        "DATA\r\n"
    );
    expect_reply!(h, 250);
    expect_reply!(h, 452, "4.5.3");
    expect_reply!(h, 354);
    assert_eq!(h.session.envelope().unwrap().recipients.len(), 2);
    let too_many = SmtpConfig {
        max_recipients: 101,
        ..smtp_config()
    };
    assert_eq!(
        SessionConfig::new(&too_many, ()).err(),
        Some(SessionConfigError::MaxRecipients)
    );
}

#[test]
fn size_is_refused_at_mail_and_while_streaming() {
    let mut h = Host::new();
    h.next();
    send!(
        h,
        "EHLO c.example\r\n",
        "MAIL FROM:<a@b.example> SIZE=1001\r\n",
        "MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME\r\n"
    );
    h.next();
    expect_reply!(h, 552, "5.3.4");
    expect_reply!(h, 250);
    send!(h, "RCPT TO:<u@example.com>\r\n", "DATA\r\n");
    expect_reply!(h, 250);
    expect_reply!(h, 354);
    expect_event!(h, Seen::Begin);
    let line = "x".repeat(98) + "\r\n";
    for _ in 0..10 {
        send!(h, line.as_str());
    }
    expect_event!(h, Seen::Body(line.repeat(10).into_bytes()));
    send!(h, "one byte too many\r\n");
    expect_event!(h, Seen::Aborted(AbortReason::TooBig));
    send!(h, "more\r\n.\r\n", "MAIL FROM:<a@b.example>\r\n");
    expect_reply!(h, 552, "5.3.4");
    expect_reply!(h, 250, "2.1.0");
    expect_nothing!(h);
}

#[test]
fn an_overlong_command_line_is_refused_and_the_next_works() {
    let mut h = Host::new();
    h.next();
    send!(h, "NOOP ".to_string() + &"x".repeat(2000) + "\r\nNOOP\r\n");
    expect_reply!(h, 500, "5.5.6");
    expect_reply!(h, 250);
}

#[test]
fn idle_and_session_timeouts_close_with_421() {
    let mut h = Host::new();
    h.next();
    let idle = Duration::from_secs(smtp_config().idle_timeout_secs);
    assert_eq!(h.session.deadline(), Some(h.now + idle));
    h.now += idle - Duration::from_secs(1);
    h.tick();
    expect_nothing!(h);
    h.now += Duration::from_secs(1);
    h.tick();
    expect_reply!(h, 421, "4.4.2");
    expect_event!(h, Seen::Close);
    assert_eq!(h.session.deadline(), None);

    // Mid-DATA, the partial message is aborted too.
    let mut h = Host::new();
    h.ready_for_data();
    send!(h, "DATA\r\npartial");
    h.log.clear();
    h.now += idle;
    h.tick();
    expect_event!(h, Seen::Aborted(AbortReason::Timeout));
    expect_reply!(h, 421);
    expect_event!(h, Seen::Close);
}

#[test]
fn idle_time_does_not_run_while_the_host_stores_but_the_session_limit_does() {
    let mut h = Host::new();
    h.ready_for_data();
    send!(h, "DATA\r\nx\r\n.\r\n");
    h.log.clear();
    h.now += Duration::from_secs(smtp_config().idle_timeout_secs * 2);
    h.tick();
    expect_nothing!(h);
    h.now = Instant::from_secs(100 + smtp_config().session_timeout_secs);
    h.tick();
    expect_reply!(h, 421);
    expect_event!(h, Seen::Close);
}

#[test]
fn a_message_that_circled_is_refused_not_stored() {
    // Fed 7 bytes at a time: field names split across reads are still counted.
    let big = SmtpConfig {
        max_message_size: 100_000,
        ..smtp_config()
    };
    let mut h = Host::with(big, 7);
    let hops = |n: u32| {
        let mut m = String::new();
        for i in 0..n {
            // Mixed case, as relays write it; a continuation line between them.
            m += if i % 2 == 0 {
                "Received: from a\r\n\tby b;\r\n"
            } else {
                "RECEIVED:x\r\n"
            };
        }
        m + "X-Received: not a trace field\r\nSubject: loop\r\n\r\nReceived: in the body\r\n"
    };
    let skip_body = |h: &mut Host| loop {
        match h.next() {
            Some(Seen::Body(_)) => {}
            other => break other,
        }
    };
    send!(h, "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n");
    send!(h, "RCPT TO:<u@example.com>\r\n", "DATA\r\n");
    for _ in 0..5 {
        h.next();
    }
    expect_event!(h, Seen::Begin);
    send!(h, hops(HOPS_MAX), ".\r\n");
    assert_eq!(skip_body(&mut h), Some(Seen::End), "100 hops are fine");
    h.stored(Ok("7"));
    expect_reply!(h, 250, "queued");
    send!(
        h,
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<u@example.com>\r\n",
        "DATA\r\n"
    );
    for _ in 0..3 {
        h.next();
    }
    expect_event!(h, Seen::Begin);
    send!(h, hops(HOPS_MAX + 1), ".\r\n", "QUIT\r\n");
    assert_eq!(
        skip_body(&mut h),
        Some(Seen::Aborted(AbortReason::TooManyHops))
    );
    let r = expect_reply!(h, 554, "5.4.6");
    assert!(
        r.contains("too many hops (101 Received: fields, at most 100)"),
        "{r}"
    );
    expect_reply!(h, 221);
}
