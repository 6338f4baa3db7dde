//! Lifetime expiry with simulated time: the whole daemon served in this process
//! (`daemon::serve` on `127.0.0.1:0`) with a manual clock, driven through eight days of
//! retries in seconds. The next hop is down the whole time; the sender's mailbox is
//! Postfix's smtp-sink (reached by a route for the sender's domain). The sender gets a
//! delay warning after 4 hours and a bounce (4.4.7) after 7 days; the null sender's message
//! expires without any notice.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sink::{Sink, free_port, require_sink, subject_of};
use common::{Client, Served, tmpdir, write_config_with};
use mailbag::daemon::spool::SpoolHandle;
use mailbag_hal::ManualClock;

const T0: u64 = 1_795_554_000;

#[test]
fn expired_mail_is_bounced_to_its_sender_and_a_bounce_never_bounces() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("expiry");
    let mailbox = free_port();
    let dead = free_port(); // nothing listens: the office's server is down for good
    let sink = Sink::start(mailbox, &dir.join("mailbox"));
    write_config_with(
        &dir,
        "",
        &["office.test"],
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{dead}\"]\nroutes = [\"sender.test = 127.0.0.1:{mailbox}\"]\nlifetime-days = 7\ndelay-warning-hours = 4\n"
        ),
    );
    let clock = Arc::new(ManualClock::new(T0));
    let mut d = Served::start_with(&dir, clock.clone());
    for (sender, subject) in [("a@sender.test", "will expire"), ("", "a bounce itself")] {
        let (mut c, _) = Client::connect(&d.addr()).unwrap();
        c.cmd("EHLO client.sender.test").unwrap();
        let body = format!(
            "Subject: {subject}\r\nMessage-ID: <{}@x>\r\n\r\nbody\r\n",
            subject.len()
        );
        let reply = c.send(sender, "bob@office.test", body.as_bytes()).unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    let (spool, delivery) = (d.handles().spool.clone(), d.handles().delivery.clone());
    // Eight days in 20-minute steps; each step gives the lanes real time to act.
    let mut attempts_seen = 0u32;
    for _ in 0..(8 * 24 * 3) {
        clock.advance(embassy_time::Duration::from_secs(20 * 60));
        delivery.wake();
        std::thread::sleep(Duration::from_millis(15));
        attempts_seen = attempts_seen.max(held_attempts(&spool));
    }
    // Let the last notices go out.
    for _ in 0..200 {
        if spool.gauge.get().messages == 0 {
            break;
        }
        delivery.wake();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        spool.gauge.get().messages,
        0,
        "everything expired or delivered"
    );
    // The schedule: every 15 min for 2 h, then every 30 min, for 7 days — about 340
    // attempts; seen at 20-minute steps, well over 200.
    assert!(
        attempts_seen > 200,
        "only {attempts_seen} attempts in 7 days"
    );
    drop((spool, delivery));
    d.stop();

    let got = sink.wait_for(2, Duration::from_secs(10));
    assert_eq!(
        got.len(),
        2,
        "a delay warning and a bounce, nothing for <>: {got:#?}"
    );
    let delay = got.iter().find(|m| m.contains("Action: delayed")).unwrap();
    let bounce = got.iter().find(|m| m.contains("Action: failed")).unwrap();
    for m in [delay, bounce] {
        assert!(m.contains("X-Mail-Args: <>"), "notices come from <>: {m}");
        assert!(m.contains("X-Rcpt-Args: <a@sender.test>"), "{m}");
        assert!(m.contains("report-type=delivery-status"), "{m}");
        assert!(
            m.contains("Final-Recipient: rfc822; bob@office.test"),
            "{m}"
        );
        assert!(
            m.contains("Subject: will expire"),
            "original headers attached: {m}"
        );
        assert!(
            !m.contains("a bounce itself"),
            "the <> message is never reported: {m}"
        );
    }
    assert!(bounce.contains("Status: 4.4.7"), "{bounce}");
    assert!(subject_of(bounce).is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Most attempts any held message has had.
fn held_attempts(spool: &SpoolHandle) -> u32 {
    spool
        .run_blocking(|s| s.list().iter().map(|e| e.attempts).max().unwrap_or(0))
        .unwrap_or(0)
}
