//! `/metrics` on the admin listener, as a monitoring system sees it: refused without the
//! bearer token, Prometheus text with it; `promtool check metrics` accepts the text, and a
//! real Prometheus scrapes it (with the token) and answers a query about it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::sink::free_port;
use common::{Client, Daemon, tmpdir, write_config_with};

const TOKEN: &str = "metrics-token-0123456789";

/// `GET path` with an optional bearer token: (status, body).
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (.ci/deps/monitor.apt)"
        );
        eprintln!("skipped: {tool} not installed");
    }
    ok
}

#[test]
fn metrics_are_prometheus_text_behind_a_token() {
    let dir = tmpdir("metrics");
    let web = free_port();
    let tables = format!(
        "[relay]\nnext-hops = [\"127.0.0.1:{}\"]\nprobe-interval = 1\n[monitor]\nmetrics-token = \"{TOKEN}\"\n",
        free_port()
    );
    let cfg = std::fs::read_to_string(write_config_with(&dir, "", &["office.test"], &tables))
        .unwrap()
        .replace(
            "listen = []",
            &format!(
                "listen = [\"127.0.0.1:{web}\"]\nshadow = \"{}\"",
                dir.join("shadow").display()
            ),
        );
    std::fs::write(dir.join("mailbag.toml"), cfg).unwrap();
    std::fs::write(dir.join("shadow"), "root:!:19000:0:99999:7:::\n").unwrap();
    let mut d = Daemon::start(&dir);
    let admin = format!("127.0.0.1:{web}");

    // One accepted (held: the primary is down), one refused as relaying.
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    let r = c
        .send(
            "a@sender.test",
            "bob@office.test",
            b"Subject: x\r\n\r\nx\r\n",
        )
        .unwrap();
    assert!(r.starts_with("250"), "{r}");
    c.cmd("MAIL FROM:<a@sender.test>").unwrap();
    assert!(
        c.cmd("RCPT TO:<x@elsewhere.test>")
            .unwrap()
            .starts_with("550 5.7.1")
    );
    c.cmd("QUIT").unwrap();
    d.wait_log("is DOWN", Duration::from_secs(10));

    assert_eq!(get(&admin, "/metrics", None).0, 401);
    assert_eq!(
        get(&admin, "/metrics", Some("wrong-token-0000000000")).0,
        403
    );
    let (status, text) = get(&admin, "/metrics", Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    for line in [
        "mailbag_messages_accepted_total 1",
        "mailbag_smtp_refused_total{reason=\"relay\"} 1",
        "mailbag_held_messages 1",
        "mailbag_next_hop_up{route=\"next-hops\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no '{line}' in:\n{text}");
    }
    assert!(
        text.contains("\nmailbag_delivery_deferred_total "),
        "{text}"
    );

    if have("promtool") {
        let mut p = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if have("prometheus") {
        scrape_with_prometheus(&dir, &admin);
    }
    d.stop();
}

/// A real Prometheus scrapes `/metrics` every second with the token; its query API then
/// knows mailbag's counter.
fn scrape_with_prometheus(dir: &std::path::Path, target: &str) {
    let port = free_port();
    let conf = dir.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: mailbag\n    authorization:\n      credentials: {TOKEN}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let found = loop {
        if let Ok(mut s) = TcpStream::connect(&api) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let q = "/api/v1/query?query=mailbag_messages_accepted_total";
            let _ = write!(
                s,
                "GET {q} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
            );
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains("\"__name__\":\"mailbag_messages_accepted_total\"") {
                break out;
            }
        }
        if start.elapsed() > Duration::from_secs(40) {
            let _ = prom.kill();
            let _ = prom.wait();
            panic!("Prometheus did not scrape mailbag within 40 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    assert!(found.contains("\"job\":\"mailbag\""), "{found}");
    assert!(
        found.contains(",\"1\"]"),
        "the counter's value is 1: {found}"
    );
}
