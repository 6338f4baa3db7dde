//! The admin hears about a down/up cycle of the primary, by every channel, with real
//! peers: the real daemon, Postfix's smtp-sink as the primary and as the MX of the admin's
//! mailbox, Python's http.server as the webhook, a shell script as the hook.
//!
//! The primary is down from the start with mail held: after `monitor.down-after` (2)
//! failed connections the "DOWN" notice goes out (mail by `notify.via`, not through the
//! primary), then the primary comes up: the held mail is delivered and the "UP" notice
//! says how much was held and for how long. An LED (a directory laid out like the kernel's
//! LED class) blinks while the primary is down and is dark once nothing is held.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::sink::{Sink, free_port, require_sink};
use common::webhook::Webhook;
use common::{Client, Daemon, tmpdir, write_config_with};

#[test]
fn the_admin_hears_of_the_primary_going_down_and_coming_back() {
    if !require_sink() {
        return;
    }
    let dir = tmpdir("notify");
    let (primary, mx, hook_port) = (free_port(), free_port(), free_port());
    let notice_mx = Sink::start(mx, &dir.join("admin-mx"));
    let webhook = Webhook::start(hook_port, &dir.join("webhook"));
    let hooks = dir.join("notify.d");
    std::fs::create_dir_all(&hooks).unwrap();
    let hook_out = dir.join("hook.txt");
    let script = hooks.join("50-record");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$MAILBAG_EVENT held=$MAILBAG_HELD route=$MAILBAG_ROUTE\" >> {}\n",
            hook_out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // An LED laid out like /sys/class/leds/NAME.
    let led = dir.join("led");
    std::fs::create_dir_all(&led).unwrap();
    std::fs::write(led.join("trigger"), "[none] timer default-on\n").unwrap();
    std::fs::write(led.join("brightness"), "0\n").unwrap();
    let trigger = || std::fs::read_to_string(led.join("trigger")).unwrap();
    let wait_trigger = |want: &str| {
        let start = std::time::Instant::now();
        while trigger() != want {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "LED trigger {:?}, not {want}",
                trigger()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let tables = format!(
        r#"[relay]
next-hops = ["127.0.0.1:{primary}"]
probe-interval = 1
[notify]
to = ["admin@isp.example"]
via = "127.0.0.1:{mx}"
webhook = ["http://127.0.0.1:{hook_port}/mailbag"]
hook = "{}"
[monitor]
down-after = 2
led = "{}"
"#,
        hooks.display(),
        led.display()
    );
    write_config_with(&dir, "", &["office.test"], &tables);
    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for i in 0..3 {
        let body = format!("Subject: held {i}\r\n\r\nbody {i}\r\n");
        let r = c
            .send("a@sender.test", "bob@office.test", body.as_bytes())
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    c.cmd("QUIT").unwrap();

    // Down: told by mail (through the admin's MX, not the primary), webhook and hook.
    let down = notice_mx.wait_for(1, Duration::from_secs(30));
    assert_eq!(down.len(), 1, "one notice mail: {down:?}");
    let mail = &down[0];
    // How many were held when it went down depends on how fast the three were sent.
    let subject = "Subject: [mailbag mx.office.test] next hop 127.0.0.1 (next-hops) is DOWN: mail for it is held here (";
    let held: u32 = mail
        .split(subject)
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no down subject: {mail}"));
    assert!((1..=3).contains(&held), "{mail}");
    assert!(mail.contains("X-Mailbag-Event: primary-down"), "{mail}");
    assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
    let post = webhook.wait_for("primary-down", Duration::from_secs(10));
    assert!(
        post.starts_with("/mailbag application/json {\"event\":\"primary-down\""),
        "{post}"
    );
    assert!(post.contains(&format!("\"held\":{held},")), "{post}");
    wait_trigger("timer");
    assert_eq!(
        std::fs::read_to_string(led.join("delay_on")).unwrap(),
        "500",
        "blinking"
    );
    d.wait_log(
        "err: next hop 127.0.0.1 (next-hops) is DOWN",
        Duration::from_secs(5),
    );

    // Up: the held mail goes, and the notice says how much and how long.
    let primary_sink = Sink::start(primary, &dir.join("primary"));
    let delivered = primary_sink.wait_for(3, Duration::from_secs(30));
    assert_eq!(delivered.len(), 3);
    let both = notice_mx.wait_for(2, Duration::from_secs(30));
    let up = both
        .iter()
        .find(|m| m.contains("X-Mailbag-Event: primary-up"))
        .unwrap_or_else(|| panic!("no up notice: {both:?}"));
    assert!(up.contains("is UP again after "), "{up}");
    assert!(up.contains("delivering 3 held message(s)"), "{up}");
    let post = webhook.wait_for("primary-up", Duration::from_secs(10));
    assert!(
        post.contains("\"held\":3") && post.contains("\"down_secs\":"),
        "{post}"
    );
    d.wait_log("is UP again after", Duration::from_secs(5));
    assert!(
        !d.log
            .lock()
            .unwrap()
            .contains("err: next hop 127.0.0.1 (next-hops) is UP"),
        "up is no error"
    );
    // The notices' own relay (notify.via) is not a primary: its coming up is a log line,
    // never "next hop ... is up" nor an event of the primary's.
    d.wait_log(
        "notice relay 127.0.0.1 for isp.example answers",
        Duration::from_secs(5),
    );
    assert!(
        !d.log.lock().unwrap().contains("(route:"),
        "the notice route is reported as a next hop:\n{}",
        d.log.lock().unwrap()
    );
    // Everything delivered (the notices too): the LED goes dark.
    wait_trigger("none");
    let hooked = std::fs::read_to_string(&hook_out).unwrap();
    assert_eq!(
        hooked,
        format!("primary-down held={held} route=next-hops\nprimary-up held=3 route=next-hops\n")
    );
    // Everything the admin was told, for the record (cargo test -- --nocapture).
    for m in &both {
        let text = m.split_once("\n\n").map_or(m.as_str(), |(_, b)| b);
        eprintln!(
            "--- notice ---\n{}\n{text}",
            m.lines().find(|l| l.starts_with("Subject:")).unwrap_or("")
        );
    }
    eprintln!("--- log ---\n{}", d.log.lock().unwrap());
    d.stop();
}
