//! Lifetime expiry with simulated time: the real delivery loop, spool thread and image,
//! driven by a manual clock through eight days of retries in seconds. The next hop is
//! down the whole time; the sender's mailbox is Postfix's smtp-sink (reached by a route
//! for the sender's domain). The sender gets a delay warning after 4 hours and a bounce
//! (4.4.7) after 7 days; the null sender's message expires without any notice.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::sink::{Sink, free_port, require_sink, subject_of};
use common::tmpdir;
use mailbag::daemon::delivery::{self, tls};
use mailbag::daemon::spool;
use mailbag::relay::{LoopGuard, RelayConfig, RelaySettings};
use mailbag::spool::open::open_for_daemon;
use mailbag::spool::{Envelope, Limits};
use mailbag_hal::{Clock, ManualClock};

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

    let clock = Arc::new(ManualClock::new(T0));
    let dev = open_for_daemon(&dir.join("spool.img"), 8 << 20, clock.as_ref()).unwrap();
    let (spool, spool_thread) =
        spool::start(dev, Limits::default(), Arc::clone(&clock) as Arc<dyn Clock>).unwrap();
    let cfg = RelayConfig {
        next_hops: vec![format!("127.0.0.1:{dead}")],
        routes: vec![format!("sender.test = 127.0.0.1:{mailbox}")],
        lifetime_days: 7,
        delay_warning_hours: 4,
        ..RelayConfig::default()
    };
    let settings = RelaySettings::from_config(&cfg, "mx.office.test").unwrap();
    let d = Arc::new(delivery::Deliverer {
        spool: spool.clone(),
        settings: mailbag::daemon::live::Live::new(settings),
        guard: LoopGuard::new("mx.office.test", &[], &[]),
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        kick: Arc::default(),
        hostname: "mx.office.test".into(),
        tls: tls::client_configs().unwrap(),
        hop_down: Arc::new(AtomicBool::new(false)),
        down_routes: Default::default(),
        dns: Arc::new(mailbag::daemon::delivery::dns::DnsResolver::from_config(&cfg).unwrap()),
        hop_slots: Default::default(),
        in_flight: Arc::default(),
        upstream_up: Arc::default(),
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    rt.block_on(async {
        for (sender, subject) in [("a@sender.test", "will expire"), ("", "a bounce itself")] {
            let env = Envelope::new(sender, ["bob@office.test"]).unwrap();
            let body = format!(
                "Subject: {subject}\r\nMessage-ID: <{}@x>\r\n\r\nbody\r\n",
                subject.len()
            );
            spool.enqueue(env, body.as_bytes()).await.unwrap();
        }
        let run = tokio::spawn(delivery::lanes::run(Arc::clone(&d), stop_rx));
        // Eight days in 20-minute steps; each step gives the loop real time to act.
        let mut attempts_seen = 0u32;
        for _ in 0..(8 * 24 * 3) {
            clock.advance(embassy_time::Duration::from_secs(20 * 60));
            d.kick.notify_one();
            tokio::time::sleep(Duration::from_millis(15)).await;
            attempts_seen = attempts_seen.max(held_attempts(&spool).await);
        }
        // Let the last notices go out.
        for _ in 0..200 {
            if spool.gauge.get().messages == 0 {
                break;
            }
            d.kick.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
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
        let _ = stop.send(true);
        run.await.unwrap();
    });
    drop(d);
    drop(spool);
    spool_thread.join().unwrap();

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
async fn held_attempts(spool: &spool::SpoolHandle) -> u32 {
    spool
        .run(|s| s.list().iter().map(|e| e.attempts).max().unwrap_or(0))
        .await
        .unwrap_or(0)
}
