//! What the protection cores cost per message, measured in-process (no I/O): the MIME scan
//! of the inbound path over a 100 KiB multipart message, the spam rules, DNSBL names, the
//! guess table and the verification cache at their full sizes. `tests/bench/protect.sh`
//! runs it (release build) together with the daemon-level measurement.
//!
//! Usage: `cargo run --release -p mailbag --example protect_bench [ITERATIONS]`

#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a broken benchmark

use std::hint::black_box;
use std::time::Instant;

use mailbag::policy::client::ClientKey;
use mailbag::policy::content::{BlockList, BodyScan, HeaderFacts};
use mailbag::policy::dnsbl;
use mailbag::policy::spam::{self, Facts, SenderDns};
use mailbag::policy::throttle::{GUESS_CLIENTS_MAX, GuessLimits, Guesses};
use mailbag::policy::verify::{ENTRIES_MAX, Known, VerifyCache};

/// A 100 KiB message: text part, HTML part, a base64 PDF, a nested multipart with a
/// continued RFC 2231 name.
fn message() -> Vec<u8> {
    let mut m = String::from(
        "Received: from x\r\nFrom: Alice <a@sender.test>\r\nTo: bob@office.test\r\n\
Subject: =?utf-8?q?Quartalszahlen_=E2=82=AC?=\r\nMessage-ID: <1@sender.test>\r\n\
Date: Tue, 1 Dec 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n\
Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\n",
    );
    for i in 0..200 {
        m.push_str(&format!(
            "line {i} of the plain text part, about seventy bytes long ....\r\n"
        ));
    }
    m.push_str("--a\r\nContent-Type: text/html\r\n\r\n");
    for i in 0..200 {
        m.push_str(&format!(
            "<p>line {i} of the html part, about seventy bytes long</p>\r\n"
        ));
    }
    m.push_str(
        "--a--\r\n--o\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC-; filename*1=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n",
    );
    while m.len() < 100 * 1024 - 200 {
        m.push_str(
            "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n",
        );
    }
    m.push_str("--o--\r\n");
    m.into_bytes()
}

fn time<T>(label: &str, per: &str, n: u64, mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    let each = start.elapsed().as_secs_f64() / n as f64;
    let (v, unit) = if each >= 1e-3 {
        (each * 1e3, "ms")
    } else if each >= 1e-6 {
        (each * 1e6, "µs")
    } else {
        (each * 1e9, "ns")
    };
    println!("{label:<52} | {v:>9.2} {unit:<2} | {per}");
    each
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let msg = message();
    println!("{:<52} | {:>12} | per", "core", "time");
    let block = BlockList::new(&["pif", "scr", "exe", "com", "bat", "vbs", "js"]);
    let each = time(
        "MIME scan, attachments + header facts (100 KiB)",
        "message",
        n,
        || {
            let mut s = BodyScan::new(block.clone());
            for chunk in msg.chunks(16 * 1024) {
                s.feed(chunk);
            }
            s.finish()
        },
    );
    println!(
        "{:<52} | {:>9.1} MB/s",
        "  = scan rate",
        msg.len() as f64 / each / 1e6
    );
    let headers = HeaderFacts {
        message_id: true,
        date: Some("Tue, 1 Dec 2026 12:00:00 +0000".into()),
        from: Some("\"Alice\" <a@sender.test>".into()),
    };
    let ours = vec!["office.test".to_string(), "customer.test".to_string()];
    let hits = vec!["bl.test".to_string()];
    time("spam rules (10 rules)", "message", n * 1000, || {
        spam::score(&Facts {
            helo: "[192.0.2.1]",
            sender: "a@sender.test",
            trusted: false,
            sender_dns: SenderDns::Resolves,
            headers: &headers,
            our_domains: &ours,
            dnsbl_hits: &hits,
            now_unix: 1_795_554_000,
        })
    });
    let v6: std::net::IpAddr = "2001:db8:1:2:3:4:567:89ab".parse().unwrap();
    time(
        "DNSBL query name (IPv6, 32 nibbles)",
        "zone",
        n * 1000,
        || dnsbl::query_name(v6, "bl.example.org"),
    );
    let mut g = Guesses::new(GuessLimits {
        threshold: 20,
        window: 600,
        cooldown: 600,
    });
    for i in 0..GUESS_CLIENTS_MAX as u32 {
        g.refused(ClientKey::V4(i), 1);
    }
    let mut t = 2u64;
    time(
        "guess table: check + refused (1,024 clients, full)",
        "refused RCPT",
        n * 100,
        || {
            t += 1;
            let k = ClientKey::V4(u32::try_from(t % 5000).unwrap());
            (g.check(k, t), g.refused(k, t))
        },
    );
    let mut c = VerifyCache::new();
    for i in 0..ENTRIES_MAX {
        c.store(&format!("user{i}@office.test"), Known::Exists, 0, 86_400);
    }
    time(
        "verification cache: lookup (4,096 answers)",
        "RCPT",
        n * 1000,
        || c.lookup("user77@office.test", 1),
    );
    time(
        "verification cache: encode the whole file (69,645 B)",
        "save",
        n,
        || c.encode(1),
    );
}
