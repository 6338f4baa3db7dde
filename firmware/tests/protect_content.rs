//! Content checks before the 250, with real peers: swaks attaching blocked and allowed
//! files (also an RFC 2231-encoded name inside a nested multipart), a real clamd with an
//! EICAR signature made offline (reject, repackage, clamd stopped), and the spam score's
//! headers as an smtp-sink next hop receives them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::clamd::{Clamd, EICAR, require_clamd};
use common::dnsmasq::{Dnsmasq, require_dnsmasq};
use common::protect::{final_reply, require_swaks, swaks};
use common::sink::{Sink, free_port, require_sink};
use common::{Daemon, tmpdir, write_config_policy};

const NESTED_2231: &str = "From: a@sender.test\r\nTo: bob@office.test\r\nSubject: nested\r\n\
Message-ID: <n@sender.test>\r\nDate: Tue, 1 Dec 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\n\
see attached\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\n\
Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n\
\x20filename*0*=utf-8''%E2%82%AC-invoice; filename*1=\".scr\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
TVqQAAMAAAAEAAAA\r\n--inner--\r\n--outer--\r\n";

#[test]
fn blocked_attachments_get_554_naming_the_file_and_others_pass() {
    if !require_swaks() {
        return;
    }
    let dir = tmpdir("attach");
    write_config_policy(
        &dir,
        "",
        &["office.test"],
        "block-extensions = [\"pif\", \"scr\"]",
        "",
    );
    let mut d = Daemon::start(&dir);
    let scr = dir.join("screen.scr");
    std::fs::write(&scr, "MZ not really a screensaver").unwrap();
    let pdf = dir.join("report.pdf");
    std::fs::write(&pdf, "%PDF-1.4 harmless").unwrap();
    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--attach",
            &format!("@{}", scr.display()),
        ],
    );
    let r = final_reply(&t);
    assert!(r.contains("554 5.7.1") && r.contains("screen.scr"), "{t}");

    let nested = dir.join("nested.eml");
    std::fs::write(&nested, NESTED_2231).unwrap();
    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--data",
            nested.to_str().unwrap(),
        ],
    );
    let r = final_reply(&t);
    assert!(
        r.contains("554 5.7.1") && r.contains("€-invoice.scr"),
        "{t}"
    );

    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--attach",
            &format!("@{}", pdf.display()),
        ],
    );
    assert!(final_reply(&t).contains("250 2.0.0"), "{t}");
    d.wait_log("blocked attachment \"screen.scr\"", Duration::from_secs(2));
    d.wait_log("checks: attachments=ok", Duration::from_secs(2));
    d.stop();
}

fn eicar_file(dir: &std::path::Path) -> String {
    let p = dir.join("eicar.com");
    std::fs::write(&p, EICAR).unwrap();
    format!("@{}", p.display())
}

#[test]
fn clamd_rejects_eicar_and_an_unreachable_clamd_is_451() {
    if !require_swaks() || !require_clamd() {
        return;
    }
    let dir = tmpdir("clamd-reject");
    let mut clamd = Clamd::start(&dir.join("clamd"));
    write_config_policy(
        &dir,
        "",
        &["office.test"],
        "",
        &format!(
            "[scan]\nclamd = \"{}\"\ninfected = \"reject\"\nunreachable = \"defer\"\n",
            clamd.addr
        ),
    );
    let mut d = Daemon::start(&dir);
    let eicar = eicar_file(&dir);
    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--attach",
            &eicar,
        ],
    );
    let r = final_reply(&t);
    assert!(
        r.contains("554 5.7.1") && r.contains("eicar.com.UNOFFICIAL"),
        "{t}"
    );
    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--body",
            "clean",
        ],
    );
    assert!(final_reply(&t).contains("250 2.0.0"), "{t}");
    d.wait_log("clamd=clean", Duration::from_secs(2));

    clamd.stop();
    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--body",
            "clean",
        ],
    );
    let r = final_reply(&t);
    assert!(r.contains("451 4.7.0"), "{t}");
    d.wait_log("clamd: cannot reach clamd", Duration::from_secs(2));
    d.stop();
}

#[test]
fn clamd_repackages_eicar_and_the_recipient_gets_a_notice_with_it_attached() {
    if !require_swaks() || !require_clamd() || !require_sink() {
        return;
    }
    let dir = tmpdir("clamd-repack");
    let clamd = Clamd::start(&dir.join("clamd"));
    let primary = free_port();
    write_config_policy(
        &dir,
        "",
        &["office.test"],
        "",
        &format!(
            "[scan]\nclamd = \"localhost:{}\"\ninfected = \"repackage\"\n[relay]\nnext-hops = [\"127.0.0.1:{primary}\"]\nprobe-interval = 1\n",
            clamd.addr.port()
        ),
    );
    let sink = Sink::start(primary, &dir.join("sink"));
    let mut d = Daemon::start(&dir);
    let eicar = eicar_file(&dir);
    let t = swaks(
        &d.addr(),
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--header",
            "Subject: quarterly figures",
            "--attach",
            &eicar,
        ],
    );
    assert!(final_reply(&t).contains("250 2.0.0"), "{t}");
    let got = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "delivered");
    let m = &got[0];
    assert!(m.contains("Subject: [virus] message "), "{m}");
    assert!(m.contains("contained eicar.com.UNOFFICIAL"), "{m}");
    assert!(
        m.contains("Content-Type: application/octet-stream; name=\"infected-message-"),
        "{m}"
    );
    assert!(
        m.contains("Subject: quarterly figures"),
        "the original is inside: {m}"
    );
    d.wait_log(
        "clamd=infected:eicar.com.UNOFFICIAL (repackaged)",
        Duration::from_secs(2),
    );
    d.stop();
    drop(clamd);
}

#[test]
fn a_message_from_an_ip_literal_helo_without_message_id_arrives_flagged() {
    if !require_swaks() || !require_sink() || !require_dnsmasq() {
        return;
    }
    let dir = tmpdir("spam");
    let dns = Dnsmasq::start(&[
        "--mx-host=sender.test,mx.sender.test,10".into(),
        "--host-record=mx.sender.test,192.0.2.25".into(),
    ]);
    let primary = free_port();
    write_config_policy(
        &dir,
        "",
        &["office.test"],
        "spam-flag-score = 5",
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{primary}\"]\nprobe-interval = 1\ndns-servers = [\"{}\"]\n",
            dns.addr
        ),
    );
    let sink = Sink::start(primary, &dir.join("sink"));
    let mut d = Daemon::start(&dir);
    let raw = dir.join("raw.eml");
    std::fs::write(
        &raw,
        "From: a@sender.test\r\nTo: bob@office.test\r\nSubject: no id\r\nDate: Tue, 1 Dec 2026 12:00:00 +0000\r\n\r\nhi\r\n",
    )
    .unwrap();
    let t = swaks(
        &d.addr(),
        &[
            "--helo",
            "[192.0.2.99]",
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--data",
            raw.to_str().unwrap(),
        ],
    );
    assert!(final_reply(&t).contains("250 2.0.0"), "{t}");
    let clean = swaks(
        &d.addr(),
        &[
            "--helo",
            "mx.sender.test",
            "--from",
            "a@sender.test",
            "--to",
            "bob@office.test",
            "--header",
            "Subject: clean",
        ],
    );
    assert!(final_reply(&clean).contains("250 2.0.0"), "{clean}");
    let got = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(got.len(), 2);
    let flagged = got.iter().find(|m| m.contains("Subject: no id")).unwrap();
    assert!(
        flagged.contains("X-Spam-Flag: YES\r\n") || flagged.contains("X-Spam-Flag: YES\n"),
        "{flagged}"
    );
    assert!(flagged.contains("X-Spam-Score: 5"), "{flagged}");
    assert!(
        flagged.contains("tests=HELO_IP_LITERAL,MISSING_MESSAGE_ID"),
        "{flagged}"
    );
    let ok = got.iter().find(|m| m.contains("Subject: clean")).unwrap();
    assert!(!ok.contains("X-Spam-Flag"), "{ok}");
    assert!(ok.contains("X-Spam-Status: No, score=0 required=5"), "{ok}");
    d.wait_log(
        "spam=5/5 (HELO_IP_LITERAL,MISSING_MESSAGE_ID)",
        Duration::from_secs(2),
    );
    d.stop();
}
