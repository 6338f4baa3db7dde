//! The DNS client: MX, A and AAAA questions to the configured servers over UDP (TCP when
//! an answer is truncated), driving the sans-IO [`relay::dns`](crate::relay::dns) core.
//!
//! - **Servers.** `relay.dns-servers`, else the `nameserver` lines of `/etc/resolv.conf`
//!   (read once, at start-up), else `127.0.0.1:53` — OpenWrt's dnsmasq.
//! - **Retries.** Every server in order, [`TRIES`] rounds, [`TRY_TIMEOUT`] per question.
//!   SERVFAIL, REFUSED, garbage and silence move on to the next server; NXDOMAIN is final.
//!   When all fail the answer is [`DnsError::Temporary`].
//! - **Spoofing** (RFC 5452). Each try uses a fresh socket (an ephemeral source port the OS
//!   picks) connected to the server, so datagrams from anyone else never arrive, and a fresh
//!   random id; a reply with another id or question is dropped and the wait goes on.
//! - **Cache.** At most [`CACHE_MAX`] answers, kept for their TTL (at most [`TTL_MAX`]);
//!   NXDOMAIN for [`NEGATIVE_TTL`]; temporary failures are never kept.
//! - **MX.** [`DnsResolver::next_hops`] looks the MX records up and hands them to
//!   [`nexthop::from_mx`], which holds the RFC 5321 §5.1 / RFC 7505 rules and the loop guard.
//! - **TXT, CNAME** ([`DnsResolver::txt`], [`DnsResolver::cname`]) for the setup check.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::relay::dns::{
    self, Answer, CNAME_MAX, Name, QType, Query, Records, ResponseError, TCP_MAX,
};
use crate::relay::nexthop::{
    self, DnsError, Host, LoopGuard, MxError, MxRecord, NextHops, StaticResolver,
};

/// How long one question waits for its answer.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Rounds over the server list.
pub const TRIES: u32 = 2;
/// Answers kept.
pub const CACHE_MAX: usize = 64;
/// Longest an answer is kept, whatever its TTL (seconds).
pub const TTL_MAX: u32 = 3600;
/// How long NXDOMAIN is kept (seconds).
pub const NEGATIVE_TTL: u32 = 60;
/// Where the host's servers are listed.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Largest UDP answer read: 512 bytes without EDNS (RFC 1035 §4.2.1), but some servers
/// send more; a datagram cut by a small buffer would read as garbage.
const UDP_RECV_MAX: usize = 1500;
/// Datagrams read while waiting for one answer (replies to earlier tries, spoofs).
const DATAGRAMS_MAX: usize = 16;

/// An asynchronous resolver; share it behind an `Arc`.
#[derive(Debug)]
pub struct DnsResolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    tries: u32,
    cache: Mutex<Vec<Cached>>,
}

#[derive(Debug)]
struct Cached {
    name: Name,
    qtype: QType,
    expires: Instant,
    result: Result<Records, DnsError>,
}

impl DnsResolver {
    /// Asks `servers` in order (at least one: an empty list means `127.0.0.1:53`).
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        let servers = if servers.is_empty() {
            vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dns::PORT)]
        } else {
            servers
        };
        Self {
            servers,
            timeout: TRY_TIMEOUT,
            tries: TRIES,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// A resolver asking `servers` (`relay.dns-servers`, parsed), or the `nameserver`s of
    /// the system's `resolv.conf` when there are none.
    pub fn configured(servers: &[SocketAddr]) -> Self {
        if servers.is_empty() {
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            return Self::new(dns::resolv_conf_servers(&text));
        }
        Self::new(servers.iter().take(dns::SERVERS_MAX).copied().collect())
    }

    /// Changes the per-question timeout and the rounds (tests; at least one round).
    pub fn with_timeout(mut self, per_try: Duration, tries: u32) -> Self {
        self.timeout = per_try;
        self.tries = tries.max(1);
        self
    }

    /// The servers asked, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// MX records of `domain`: empty when it exists without any (RFC 5321 §5.1 then uses
    /// the domain itself); `[0 .]` is a null MX (RFC 7505).
    pub async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError> {
        match self.lookup(domain, QType::Mx).await? {
            Records::Mx(list) => Ok(list),
            _ => Ok(Vec::new()),
        }
    }

    /// IPv6 and IPv4 addresses of `host` (AAAA first). Empty when the name exists without
    /// addresses; when one family fails the other's addresses are still returned.
    pub async fn addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let (six, four) = tokio::join!(self.lookup(host, QType::Aaaa), self.lookup(host, QType::A));
        let mut out = Vec::new();
        for list in [&six, &four].into_iter().flatten() {
            if let Records::Addrs(a) = list {
                out.extend_from_slice(a);
            }
        }
        match (six, four) {
            (Err(a), Err(b)) if out.is_empty() => Err(if a == b { a } else { DnsError::Temporary }),
            (Err(DnsError::Temporary), _) | (_, Err(DnsError::Temporary)) if out.is_empty() => {
                Err(DnsError::Temporary)
            }
            _ => Ok(out),
        }
    }

    /// The A records of `name` only (a DNS blocklist's answer, RFC 5782 §2.1). Empty when
    /// the name exists without any (NODATA); NXDOMAIN is [`DnsError::NotFound`].
    pub async fn a(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.lookup(name, QType::A).await? {
            Records::Addrs(a) => Ok(a),
            _ => Ok(Vec::new()),
        }
    }

    /// The TXT records of `name`, each one's strings joined (a DNS blocklist's reason;
    /// `mailbag doctor`: MTA-STS and TLS-RPT records). Empty when the name exists without
    /// any.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.lookup(name, QType::Txt).await? {
            Records::Txt(list) => Ok(list),
            _ => Ok(Vec::new()),
        }
    }

    /// Where `name` points when it is an alias (CNAME), `None` when it is not one.
    pub async fn cname(&self, name: &str) -> Result<Option<Name>, DnsError> {
        match self.lookup(name, QType::Cname).await? {
            Records::Names(list) => Ok(list.into_iter().next()),
            _ => Ok(None),
        }
    }

    /// The addresses of `host` on `port`: a name's from DNS, else from the host's resolver
    /// (`/etc/hosts`); an address is its own.
    pub async fn socket_addrs(&self, host: &Host, port: u16) -> Vec<SocketAddr> {
        match host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Host::Name(n) => {
                let from_dns = self.addrs(n).await.unwrap_or_default();
                if from_dns.is_empty() {
                    tokio::net::lookup_host((n.as_str(), port))
                        .await
                        .map(|a| a.collect())
                        .unwrap_or_default()
                } else {
                    from_dns
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect()
                }
            }
        }
    }

    /// Next hops for `domain` by its MX records, each on `port`, through
    /// [`nexthop::from_mx`] (null MX, implicit MX, our own name excluded).
    pub async fn next_hops(
        &self,
        domain: &str,
        guard: &LoopGuard,
        port: u16,
    ) -> Result<NextHops, MxError> {
        let records = self.mx(domain).await.map_err(MxError::Dns)?;
        let domain = domain.trim_end_matches('.');
        let table = StaticResolver {
            mx: vec![(domain.to_string(), records)],
            addrs: Vec::new(),
        };
        nexthop::from_mx(domain, &table, guard, port)
    }

    /// Records of `qtype` for `name`, following CNAMEs across questions when an answer
    /// stops at an alias.
    async fn lookup(&self, name: &str, qtype: QType) -> Result<Records, DnsError> {
        // A name DNS cannot carry cannot exist.
        let first = Query::new(0, name, qtype).map_err(|_| DnsError::NotFound)?;
        if let Some(hit) = self.cached(first.name(), qtype) {
            return hit;
        }
        let mut current = Name::try_from(first.name()).map_err(|_| DnsError::NotFound)?;
        let mut ttl = u32::MAX;
        let mut result = Err(DnsError::Temporary);
        for _ in 0..CNAME_MAX {
            match self.ask(&current, qtype).await {
                Ok(Answer {
                    alias: Some(alias),
                    ttl: t,
                    ..
                }) => {
                    ttl = ttl.min(t);
                    current = alias;
                }
                Ok(a) => {
                    ttl = ttl.min(a.ttl);
                    result = Ok(a.records);
                    break;
                }
                Err(e) => {
                    ttl = NEGATIVE_TTL;
                    result = Err(e);
                    break;
                }
            }
        }
        self.remember(first.name(), qtype, &result, ttl);
        result
    }

    fn cached(&self, name: &str, qtype: QType) -> Option<Result<Records, DnsError>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        cache
            .iter()
            .find(|c| c.qtype == qtype && c.name == name && c.expires > now)
            .map(|c| c.result.clone())
    }

    fn remember(&self, name: &str, qtype: QType, result: &Result<Records, DnsError>, ttl: u32) {
        let Ok(name) = Name::try_from(name) else {
            return;
        };
        if ttl == 0 || matches!(result, Err(DnsError::Temporary)) {
            return;
        }
        let now = Instant::now();
        let expires = now + Duration::from_secs(u64::from(ttl.min(TTL_MAX)));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|c| c.expires > now && !(c.qtype == qtype && c.name == name));
        if cache.len() >= CACHE_MAX {
            // Full of live answers: drop the one that expires first.
            if let Some(i) = (0..cache.len()).min_by_key(|&i| cache[i].expires) {
                cache.swap_remove(i);
            }
        }
        cache.push(Cached {
            name,
            qtype,
            expires,
            result: result.clone(),
        });
    }

    /// One question, to every server in turn until one answers.
    async fn ask(&self, name: &str, qtype: QType) -> Result<Answer, DnsError> {
        for _ in 0..self.tries {
            for &server in &self.servers {
                let query = Query::new(random_id(), name, qtype).map_err(|_| DnsError::NotFound)?;
                let mut reply = self.ask_udp(&query, server).await;
                if reply == Err(ResponseError::Truncated) {
                    reply = self.ask_tcp(&query, server).await;
                }
                match reply {
                    Ok(a) => return Ok(a),
                    Err(ResponseError::Failed(DnsError::NotFound)) => {
                        return Err(DnsError::NotFound);
                    }
                    // Silence, SERVFAIL/REFUSED, garbage: the next server may do better.
                    Err(_) => {}
                }
            }
        }
        Err(DnsError::Temporary)
    }

    async fn ask_udp(&self, query: &Query, server: SocketAddr) -> Result<Answer, ResponseError> {
        let temporary = |_| ResponseError::Failed(DnsError::Temporary);
        let local: IpAddr = match server {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind((local, 0)).await.map_err(temporary)?;
        // Connected: the kernel drops datagrams from any other address and port.
        socket.connect(server).await.map_err(temporary)?;
        socket.send(&query.encode()).await.map_err(temporary)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = [0u8; UDP_RECV_MAX];
        for _ in 0..DATAGRAMS_MAX {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                // ICMP port unreachable, or the time is up.
                Ok(Err(_)) | Err(_) => return Err(ResponseError::Failed(DnsError::Temporary)),
            };
            match query.parse(&buf[..n]) {
                Err(ResponseError::NotOurs) => {}
                other => return other,
            }
        }
        Err(ResponseError::Failed(DnsError::Temporary))
    }

    /// The same question over TCP (RFC 7766), for answers too long for UDP.
    async fn ask_tcp(&self, query: &Query, server: SocketAddr) -> Result<Answer, ResponseError> {
        let exchange = async {
            let mut stream = TcpStream::connect(server).await?;
            let q = query.encode();
            // QUERY_MAX < 65536: the length fits in two bytes.
            let mut out = (q.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&q);
            stream.write_all(&out).await?;
            let len = usize::from(stream.read_u16().await?);
            if len > TCP_MAX {
                return Ok(None);
            }
            let mut msg = vec![0u8; len];
            stream.read_exact(&mut msg).await?;
            Ok::<_, std::io::Error>(Some(msg))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(Some(msg))) => match query.parse(&msg) {
                // Over TCP there is no one to wait for: a wrong answer is a bad server.
                Err(ResponseError::NotOurs | ResponseError::Truncated) => {
                    Err(ResponseError::Malformed)
                }
                other => other,
            },
            Ok(Ok(None)) => Err(ResponseError::Malformed),
            Ok(Err(_)) | Err(_) => Err(ResponseError::Failed(DnsError::Temporary)),
        }
    }
}

/// A query id an off-path attacker cannot guess: std's per-process random SipHash keys
/// (advanced for every `RandomState`) over the clock.
fn random_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish() as u16
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;

    use super::*;

    /// A reply to `query`: its id and question, `flags`/`rcode`, answers owned by the
    /// question's name (a pointer to offset 12).
    fn reply(query: &[u8], tc: bool, rcode: u8, answers: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = query.to_vec();
        m[2] = 0x81 | if tc { 0x02 } else { 0 };
        m[3] = 0x80 | rcode;
        m[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (rtype, rdata) in answers {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 1, 0]); // class IN, TTL 256
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        }
        m
    }

    /// A UDP server on loopback answering each query with `answer(query)` (a list of
    /// datagrams to send back); counts the queries.
    async fn udp_server(
        answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        crate::daemon::task::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                seen.fetch_add(1, Ordering::SeqCst);
                for d in answer(&buf[..n]) {
                    let _ = socket.send_to(&d, from).await;
                }
            }
        });
        (addr, count)
    }

    fn quick(servers: Vec<SocketAddr>) -> DnsResolver {
        DnsResolver::new(servers).with_timeout(Duration::from_millis(300), 2)
    }

    const MX_A: &[u8] = b"\x00\x0a\x02mx\xc0\x0c"; // 10 mx.<question>

    #[tokio::test]
    async fn spoofed_and_stray_replies_are_ignored() {
        let (server, _) = udp_server(|q| {
            let mut wrong_id = reply(q, false, 3, &[]);
            wrong_id[0] ^= 0x55;
            let mut other_question = reply(q, false, 3, &[]);
            other_question[13] ^= 0x20 | 1; // first letter of the name
            vec![wrong_id, other_question, reply(q, false, 0, &[(15, MX_A)])]
        })
        .await;
        let r = quick(vec![server]);
        let mx = r.mx("office.test").await.unwrap();
        assert_eq!(mx, [MxRecord::new(10, "mx.office.test").unwrap()]);
    }

    #[tokio::test]
    async fn silent_or_failing_servers_are_skipped_and_nxdomain_is_final() {
        let (silent, silent_n) = udp_server(|_| vec![]).await;
        let (servfail, servfail_n) = udp_server(|q| vec![reply(q, false, 2, &[])]).await;
        let (good, _) = udp_server(|q| vec![reply(q, false, 0, &[(1, &[192, 0, 2, 5])])]).await;
        let r = quick(vec![silent, servfail, good]);
        let start = Instant::now();
        let a = r.lookup("h.test", QType::A).await;
        assert_eq!(a, Ok(Records::Addrs(vec!["192.0.2.5".parse().unwrap()])));
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "waited for the silent one"
        );
        assert_eq!(
            (
                silent_n.load(Ordering::SeqCst),
                servfail_n.load(Ordering::SeqCst)
            ),
            (1, 1)
        );

        let r = quick(vec![silent, servfail]);
        assert_eq!(r.mx("h.test").await, Err(DnsError::Temporary));
        assert_eq!(servfail_n.load(Ordering::SeqCst), 3, "two rounds");

        let (nx, _) = udp_server(|q| vec![reply(q, false, 3, &[])]).await;
        let (unasked, unasked_n) = udp_server(|_| vec![]).await;
        let r = quick(vec![nx, unasked]);
        assert_eq!(r.mx("gone.test").await, Err(DnsError::NotFound));
        assert_eq!(unasked_n.load(Ordering::SeqCst), 0, "NXDOMAIN is an answer");
    }

    #[tokio::test]
    async fn answers_are_cached_for_their_ttl() {
        let (server, n) = udp_server(|q| vec![reply(q, false, 0, &[(15, MX_A)])]).await;
        let r = quick(vec![server]);
        for _ in 0..3 {
            assert_eq!(r.mx("Office.Test.").await.unwrap().len(), 1);
        }
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let (nx, nx_n) = udp_server(|q| vec![reply(q, false, 3, &[])]).await;
        let r = quick(vec![nx]);
        for _ in 0..3 {
            assert_eq!(r.addrs("gone.test").await, Err(DnsError::NotFound));
        }
        assert_eq!(nx_n.load(Ordering::SeqCst), 2, "A and AAAA, once each");
    }

    #[tokio::test]
    async fn truncated_answers_are_asked_again_over_tcp() {
        // TCP and UDP on the same port; a few tries in case the UDP port is taken.
        let mut bound = None;
        for _ in 0..10 {
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = tcp.local_addr().unwrap().port();
            if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)).await {
                bound = Some((tcp, udp));
                break;
            }
        }
        let (tcp, udp) = bound.unwrap();
        let server = tcp.local_addr().unwrap();
        crate::daemon::task::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                let _ = udp.send_to(&reply(&buf[..n], true, 0, &[]), from).await;
            }
        });
        crate::daemon::task::spawn(async move {
            while let Ok((mut s, _)) = tcp.accept().await {
                let len = usize::from(s.read_u16().await.unwrap());
                let mut q = vec![0u8; len];
                s.read_exact(&mut q).await.unwrap();
                let a = reply(
                    &q,
                    false,
                    0,
                    &[(15, MX_A), (15, b"\x00\x14\x03mx2\xc0\x0c")],
                );
                s.write_all(&(a.len() as u16).to_be_bytes()).await.unwrap();
                s.write_all(&a).await.unwrap();
            }
        });
        let mx = quick(vec![server]).mx("big.test").await.unwrap();
        let names: Vec<&str> = mx.iter().map(|m| m.exchange.as_str()).collect();
        assert_eq!(names, ["mx.big.test", "mx2.big.test"]);
    }

    #[test]
    fn servers_come_from_the_config_or_default_to_loopback() {
        let servers: Vec<SocketAddr> = vec![
            "192.0.2.53:53".parse().unwrap(),
            "[::1]:5353".parse().unwrap(),
        ];
        let r = DnsResolver::configured(&servers);
        let got: Vec<String> = r.servers().iter().map(ToString::to_string).collect();
        assert_eq!(got, ["192.0.2.53:53", "[::1]:5353"]);
        assert_eq!(
            DnsResolver::new(vec![]).servers()[0].to_string(),
            "127.0.0.1:53"
        );
    }
}
