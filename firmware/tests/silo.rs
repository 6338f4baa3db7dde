//! Edge and silo together, with real peers: the provider's silo (a mailbag in role silo)
//! delivers by MX, from dnsmasq, where the office's router (a mailbag in role edge) is
//! the preferred MX and the silo itself the backup. While the router is off the silo
//! holds the office's mail; when the router comes up it asks the silo for it (ETRN) and
//! the mail reaches the office's server (Postfix's smtp-sink) at once — long before the
//! silo's own retry or probe would have sent it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::dnsmasq::{Dnsmasq, require_dnsmasq};
use common::sink::{Sink, free_port, require_sink, subject_of};
use common::{Client, Daemon, spool_messages, tmpdir, write_config_with};

/// The router's MX address: port 25 on a second loopback address (MX means port 25).
const EDGE_IP: &str = "127.0.0.2";

#[test]
fn the_silo_holds_mail_while_the_router_is_off_and_delivers_by_mx_on_its_etrn() {
    if !require_sink() || !require_dnsmasq() {
        return;
    }
    if TcpListener::bind((EDGE_IP, 25)).is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{EDGE_IP}:25 must be free (and bindable) in CI"
        );
        eprintln!("skipped: cannot listen on {EDGE_IP}:25 (not root, or in use)");
        return;
    }
    let dir = tmpdir("silo");
    let dns = Dnsmasq::start(&[
        "--mx-host=office.test,edge.office.test,10".into(),
        "--mx-host=office.test,silo.provider.test,20".into(),
        format!("--host-record=edge.office.test,{EDGE_IP}"),
        "--host-record=silo.provider.test,127.0.0.1".into(),
    ]);

    // The provider's silo: no next hops, delivery by MX; an hour between its probes and
    // 15 minutes between retries, so only ETRN can make it deliver within the test.
    let silo_dir = dir.join("silo");
    std::fs::create_dir_all(&silo_dir).unwrap();
    let cfg = std::fs::read_to_string(write_config_with(
        &silo_dir,
        "",
        &["office.test"],
        &format!(
            "[relay]\nprobe-interval = 3600\ndns-servers = [\"{}\"]\n",
            dns.addr
        ),
    ))
    .unwrap()
    .replace("role = \"edge\"", "role = \"silo\"")
    .replace("mx.office.test", "silo.provider.test");
    std::fs::write(silo_dir.join("mailbag.toml"), cfg).unwrap();
    let mut silo = Daemon::start(&silo_dir);

    let (mut c, _) = Client::connect(&silo.addr()).unwrap();
    c.cmd("EHLO sender.test").unwrap();
    for i in 0..3 {
        let body = format!("Subject: via-silo-{i}\r\nMessage-ID: <s{i}@sender.test>\r\n\r\nx\r\n");
        let r = c
            .send("a@sender.test", "bob@office.test", body.as_bytes())
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    c.cmd("QUIT").unwrap();
    // The silo looked up the MX, skipped itself, found the router off: held.
    silo.wait_log("deferred ", Duration::from_secs(10));
    assert_eq!(spool_messages(&silo_dir.join("spool.img")).len(), 3);

    // The router comes up, on its MX address, with the office's server behind it.
    let exchange = free_port();
    let sink = Sink::start(exchange, &dir.join("exchange"));
    let edge_dir = dir.join("edge");
    std::fs::create_dir_all(&edge_dir).unwrap();
    write_config_with(
        &edge_dir,
        &format!("listen = [\"{EDGE_IP}:25\"]"),
        &["office.test"],
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{exchange}\"]\nprobe-interval = 1\n\
             upstream-silo = \"{}\"\n",
            silo.addr()
        ),
    );
    let started = Instant::now();
    let mut edge = Daemon::start(&edge_dir);
    let got = sink.wait_for(3, Duration::from_secs(20));
    let elapsed = started.elapsed();
    let mut subjects: Vec<String> = got.iter().filter_map(|m| subject_of(m)).collect();
    subjects.sort();
    assert_eq!(subjects, ["via-silo-0", "via-silo-1", "via-silo-2"]);
    assert!(
        elapsed < Duration::from_secs(15),
        "the silo's mail arrived {elapsed:?} after the router came up"
    );
    assert!(
        got.iter()
            .all(|m| m.contains("by silo.provider.test (mailbag)")
                && m.contains("by mx.office.test (mailbag)")),
        "through the silo, then the router: {got:#?}"
    );
    edge.wait_log("ETRN office.test to ", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    edge.stop();
    silo.stop();
    assert!(
        spool_messages(&silo_dir.join("spool.img")).is_empty(),
        "the silo let go"
    );
    assert!(spool_messages(&edge_dir.join("spool.img")).is_empty());
    drop(dns);
    std::fs::remove_dir_all(&dir).unwrap();
}
