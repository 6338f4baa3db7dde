//! MX delivery's DNS against a real server: dnsmasq on loopback (as OpenWrt runs it)
//! serves MX, A/AAAA, CNAME, null-MX, NODATA, NXDOMAIN, REFUSED and an MX set too long for
//! UDP; the daemon's resolver and `from_mx` must read each the way a mail admin expects.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::dnsmasq::{Dnsmasq, free_udp_tcp_port, require_dnsmasq};

use mailbag::daemon::delivery::dns::DnsResolver;
use mailbag::relay::nexthop::{DnsError, LoopGuard, MxError, MxRecord};

const LONG: &str = "a-host-name-long-enough-to-overflow-a-512-byte-datagram";

/// The zone the resolver is tested against.
fn records() -> Vec<String> {
    let mut r: Vec<String> = [
        "--mx-host=office.test,mx1.office.test,10",
        "--mx-host=office.test,mx2.office.test,20",
        "--host-record=mx1.office.test,127.0.0.1",
        "--host-record=mx2.office.test,127.0.0.2,::1",
        "--cname=alias.test,office.test",
        // An A record but no MX: the domain is its own MX (RFC 5321 §5.1).
        "--host-record=bare.test,127.0.0.3",
        // RFC 7505 null MX: preference 0, exchange ".".
        "--dns-rr=null.test,15,000000",
        // We (mx.mailbag.test) are the best MX: delivering would loop.
        "--mx-host=self.test,mx.mailbag.test,5",
        "--mx-host=self.test,backup.self.test,50",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for i in 1..=16 {
        r.push(format!("--mx-host=big.test,mx{i}.{LONG}.big.test,{i}"));
    }
    r
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn hop_names(hops: &mailbag::relay::NextHops) -> Vec<String> {
    hops.ordered(1).iter().map(|h| h.to_string()).collect()
}

#[test]
fn mx_records_addresses_and_failures_as_dnsmasq_serves_them() {
    if !require_dnsmasq() {
        return;
    }
    let server = Dnsmasq::start(&records());
    let r = DnsResolver::new(vec![server.addr]).with_timeout(Duration::from_secs(2), 2);
    let guard = LoopGuard::new("mx.mailbag.test", &[], &[]);
    runtime().block_on(async {
        let mut mx = r.mx("Office.Test.").await.unwrap();
        mx.sort_by_key(|m| m.preference);
        assert_eq!(
            mx,
            [
                MxRecord::new(10, "mx1.office.test").unwrap(),
                MxRecord::new(20, "mx2.office.test").unwrap()
            ]
        );
        let mut addrs = r.addrs("mx2.office.test").await.unwrap();
        addrs.sort();
        let want: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(addrs, want);

        let hops = r.next_hops("office.test", &guard, 25).await.unwrap();
        assert_eq!(
            hop_names(&hops),
            ["10 mx1.office.test:25", "20 mx2.office.test:25"]
        );
        let alias = r.next_hops("alias.test", &guard, 25).await.unwrap();
        assert_eq!(hop_names(&alias), hop_names(&hops), "MX through a CNAME");
        let bare = r.next_hops("bare.test", &guard, 2525).await.unwrap();
        assert_eq!(hop_names(&bare), ["0 bare.test:2525"], "implicit MX");
        assert_eq!(
            r.addrs("bare.test").await.unwrap(),
            ["127.0.0.3".parse::<IpAddr>().unwrap()]
        );

        assert_eq!(
            r.next_hops("null.test", &guard, 25).await,
            Err(MxError::NullMx)
        );
        assert_eq!(
            r.next_hops("self.test", &guard, 25).await,
            Err(MxError::LoopsToUs)
        );
        assert_eq!(
            r.next_hops("nx.test", &guard, 25).await,
            Err(MxError::Dns(DnsError::NotFound))
        );
        assert_eq!(r.addrs("nx.test").await, Err(DnsError::NotFound));
        // Outside .test dnsmasq has no upstream and refuses: retry later, never bounce.
        assert_eq!(r.mx("example.org").await, Err(DnsError::Temporary));

        // 16 long MX names do not fit 512 bytes: dnsmasq sets TC, the answer comes by TCP.
        let big = r.mx("big.test").await.unwrap();
        assert_eq!(big.len(), 16);
        assert!(big.iter().all(|m| m.exchange.ends_with(".big.test")));
    });
}

#[test]
fn a_dead_server_is_skipped_for_the_next_one() {
    if !require_dnsmasq() {
        return;
    }
    let server = Dnsmasq::start(&records());
    // Nothing listens there: the kernel answers ICMP port unreachable at once.
    let dead: SocketAddr = ([127, 0, 0, 1], free_udp_tcp_port()).into();
    let r = DnsResolver::new(vec![dead, server.addr]).with_timeout(Duration::from_secs(2), 1);
    let start = Instant::now();
    let mx = runtime().block_on(r.mx("office.test")).unwrap();
    assert_eq!(mx.len(), 2);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "no timeout waited for"
    );
    let gone = DnsResolver::new(vec![dead]).with_timeout(Duration::from_millis(300), 1);
    assert_eq!(
        runtime().block_on(gone.mx("office.test")),
        Err(DnsError::Temporary)
    );
}
