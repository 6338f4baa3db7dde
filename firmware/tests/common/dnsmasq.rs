//! dnsmasq as a DNS server on loopback (as OpenWrt runs it), started and stopped by PID.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn require_dnsmasq() -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg("command -v dnsmasq")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "dnsmasq is required in CI (.ci/deps/relay.apt)"
        );
        eprintln!("skipped: dnsmasq not installed");
    }
    ok
}

/// A port free for both UDP and TCP on 127.0.0.1 (dnsmasq serves both).
pub fn free_udp_tcp_port() -> u16 {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

pub struct Dnsmasq {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    /// dnsmasq on 127.0.0.1 and a free port, authoritative for `.test` (unknown names
    /// there are NXDOMAIN), serving `records` (dnsmasq options such as `--mx-host=...`).
    pub fn start(records: &[String]) -> Dnsmasq {
        let port = free_udp_tcp_port();
        let mut args: Vec<String> = [
            "--no-daemon",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--local=/test/",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.push(format!("--port={port}"));
        args.extend_from_slice(records);
        let child = Command::new("dnsmasq")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let d = Dnsmasq { child, addr };
        d.wait_ready();
        d
    }

    /// Until dnsmasq answers a query (it binds after parsing its options).
    fn wait_ready(&self) {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let query =
            b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04bare\x04test\x00\x00\x01\x00\x01";
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let _ = probe.send_to(query, self.addr);
            let mut buf = [0u8; 512];
            if probe.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("dnsmasq did not answer on {}", self.addr);
    }
}
