//! Next hops: `relay.next-hops` entries and MX records → the ordered hosts to try, with a
//! loop guard.
//!
//! # Contract
//!
//! - An entry is `[preference ]host[:port]`: `"10 mail.lan:25"`, `"[2001:db8::1]:25"`,
//!   `"192.0.2.1"`, `"mail.lan"` (port [`DEFAULT_PORT`]). An entry without a preference
//!   takes its position in the list (0, 1, 2, …), so a plain list is tried in order. A bare
//!   IPv6 address must be bracketed. Parsing happens once, at start-up
//!   ([`NextHops::parse`]); errors name the entry.
//! - [`NextHops::ordered`] gives the lowest preference first; hosts of equal preference are
//!   shuffled with the caller's seed (RFC 5321 §5.1 asks senders to spread load), so the
//!   order is reproducible in tests and varies between attempts in the daemon.
//! - MX records become next hops through [`from_mx`] (RFC 5321 §5.1: no MX means the domain
//!   itself; RFC 7505 null MX means no mail; when we are an MX ourselves only
//!   more-preferred hosts are tried). The DNS lookup is the host's, behind [`Resolver`];
//!   [`StaticResolver`] answers from a table.
//! - [`LoopGuard`] refuses our own hostname and listen addresses, so a misconfigured next
//!   hop can never make mailbag deliver to itself.
//! - Fixed capacity: at most [`NEXT_HOPS_MAX`] hops; nothing here panics on input.

use core::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::smtp::address::Domain;
use crate::smtp::limits::DOMAIN_MAX;

/// Most next hops (configured, or from one MX lookup).
pub const NEXT_HOPS_MAX: usize = 16;
/// SMTP's port (RFC 5321 §4.5.4.2 relays use 25).
pub const DEFAULT_PORT: u16 = 25;

/// A next hop's host: a name to resolve or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
pub enum Host {
    /// A DNS name, ASCII-lowercased, without a trailing dot.
    Name(heapless::String<DOMAIN_MAX>),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Self::Ip(a) => write!(f, "{a}"),
        }
    }
}

/// One host to deliver to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Lower is tried first.
    pub preference: u16,
    /// Where.
    pub host: Host,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.preference, self.host, self.port)
    }
}

/// Why a `relay.next-hops` entry was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHopError {
    /// Entry `index` (`text`) is not `[preference ]host[:port]`; `why` says which part.
    Entry {
        /// Position in the list.
        index: usize,
        /// The entry as written.
        text: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// More than [`NEXT_HOPS_MAX`] entries.
    TooMany,
}

impl fmt::Display for NextHopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entry { index, text, why } => {
                write!(f, "relay.next-hops[{index}] '{text}': {why}")
            }
            Self::TooMany => write!(f, "more than {NEXT_HOPS_MAX} next hops"),
        }
    }
}

impl std::error::Error for NextHopError {}

impl NextHop {
    /// Parse one entry; `position` is the preference when none is written.
    pub fn parse(text: &str, position: u16) -> Result<Self, &'static str> {
        let text = text.trim();
        let (preference, hostport) = match text.split_once(char::is_whitespace) {
            Some((p, rest)) => (
                p.parse::<u16>()
                    .map_err(|_| "the preference is not a number 0..=65535")?,
                rest.trim(),
            ),
            None => (position, text),
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(Self {
            preference,
            host,
            port,
        })
    }
}

fn split_host_port(text: &str) -> Result<(Host, u16), &'static str> {
    let port = |p: &str| -> Result<u16, &'static str> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err("the port is not a number 1..=65535"),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or("'[' without ']'")?;
        let ip: IpAddr = addr.parse().map_err(|_| "not an IP address inside []")?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => port(after.strip_prefix(':').ok_or("junk after ']'")?)?,
        };
        return Ok((Host::Ip(ip), port));
    }
    if text.matches(':').count() > 1 {
        return Err("an IPv6 address must be written in brackets: [2001:db8::1]:25");
    }
    let (host, p) = match text.split_once(':') {
        Some((h, p)) => (h, port(p)?),
        None => (text, DEFAULT_PORT),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((Host::Ip(ip), p));
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    match Domain::parse(host, false) {
        Ok(Domain::Name(n)) => Ok((Host::Name(n), p)),
        _ => Err("not a host name"),
    }
}

/// A parsed next-hop list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextHops {
    hops: heapless::Vec<NextHop, NEXT_HOPS_MAX>,
}

impl NextHops {
    /// Parse `relay.next-hops`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, NextHopError> {
        let mut hops = heapless::Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let position = u16::try_from(index).unwrap_or(u16::MAX);
            let hop =
                NextHop::parse(entry.as_ref(), position).map_err(|why| NextHopError::Entry {
                    index,
                    text: entry.as_ref().into(),
                    why,
                })?;
            hops.push(hop).map_err(|_| NextHopError::TooMany)?;
        }
        Ok(Self { hops })
    }

    /// The hops as configured.
    pub fn as_slice(&self) -> &[NextHop] {
        &self.hops
    }

    /// True when there is nowhere to deliver.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The order to try: lowest preference first, equal preferences shuffled by `seed`.
    pub fn ordered(&self, seed: u64) -> heapless::Vec<&NextHop, NEXT_HOPS_MAX> {
        let mut out: heapless::Vec<&NextHop, NEXT_HOPS_MAX> = self.hops.iter().collect();
        out.sort_by_key(|h| h.preference);
        let mut rng = SplitMix(seed);
        let mut start = 0;
        while start < out.len() {
            let pref = out[start].preference;
            let end = out[start..]
                .iter()
                .position(|h| h.preference != pref)
                .map_or(out.len(), |n| start + n);
            // Fisher–Yates within the group.
            for i in (start + 1..end).rev() {
                let span = (i - start + 1) as u64;
                let j = start + (rng.next() % span) as usize;
                out.swap(i, j);
            }
            start = end;
        }
        out
    }
}

/// A small deterministic generator (SplitMix64); not for secrets, only for spreading load.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Refuses to deliver to ourselves.
#[derive(Clone, Debug)]
pub struct LoopGuard {
    hostname: heapless::String<DOMAIN_MAX>,
    listen: Vec<SocketAddr>,
    local_ips: Vec<IpAddr>,
}

impl LoopGuard {
    /// `hostname` is `smtp.hostname`; `listen` the bound addresses; `local_ips` the
    /// addresses of this machine's interfaces (the host knows them; may be empty).
    pub fn new(hostname: &str, listen: &[SocketAddr], local_ips: &[IpAddr]) -> Self {
        let mut name = heapless::String::new();
        for c in hostname.trim_end_matches('.').chars() {
            if name.push(c.to_ascii_lowercase()).is_err() {
                break;
            }
        }
        Self {
            hostname: name,
            listen: listen.to_vec(),
            local_ips: local_ips.to_vec(),
        }
    }

    /// True when `name` is our own host name.
    pub fn is_our_name(&self, name: &str) -> bool {
        !self.hostname.is_empty()
            && name
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&self.hostname)
    }

    /// True when connecting to `addr` would reach one of our own listeners.
    pub fn is_our_address(&self, addr: SocketAddr) -> bool {
        self.listen.iter().any(|l| {
            if l.port() != addr.port() {
                return false;
            }
            let ip = addr.ip();
            l.ip() == ip
                || (l.ip().is_unspecified() && (ip.is_loopback() || self.local_ips.contains(&ip)))
        })
    }

    /// True when the hop itself (before resolution) is us.
    pub fn is_self(&self, hop: &NextHop) -> bool {
        match &hop.host {
            Host::Name(n) => self.is_our_name(n),
            Host::Ip(ip) => self.is_our_address(SocketAddr::new(*ip, hop.port)),
        }
    }
}

/// One MX record (RFC 1035 §3.3.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail exchanger's name; `.` is a null MX (RFC 7505).
    pub exchange: heapless::String<DOMAIN_MAX>,
}

impl MxRecord {
    /// A record; `None` when the name is too long.
    pub fn new(preference: u16, exchange: &str) -> Option<Self> {
        Some(Self {
            preference,
            exchange: heapless::String::try_from(exchange).ok()?,
        })
    }
}

/// Why a DNS question has no usable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN): permanent.
    NotFound,
    /// SERVFAIL, timeout, no network: try later.
    Temporary,
}

/// The DNS as the relay needs it; the daemon implements it over its resolver.
pub trait Resolver {
    /// MX records of `domain`; an empty list when it has none (but exists).
    fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError>;
    /// Addresses (A and AAAA) of `host`.
    fn addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError>;
}

/// A resolver answering from fixed tables (tests, and hosts files for a closed network).
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    /// domain → MX records.
    pub mx: Vec<(String, Vec<MxRecord>)>,
    /// host → addresses.
    pub addrs: Vec<(String, Vec<IpAddr>)>,
}

impl Resolver for StaticResolver {
    fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError> {
        lookup(&self.mx, domain)
    }

    fn addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        lookup(&self.addrs, host)
    }
}

fn lookup<T: Clone>(table: &[(String, Vec<T>)], name: &str) -> Result<Vec<T>, DnsError> {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim_end_matches('.')))
        .map(|(_, v)| v.clone())
        .ok_or(DnsError::NotFound)
}

/// Why MX records give no next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MxError {
    /// RFC 7505 null MX: the domain accepts no mail (bounce, 556 5.1.10).
    NullMx,
    /// We are the most preferred MX ourselves: delivering would loop (retry; the
    /// configuration or DNS must change).
    LoopsToUs,
    /// The lookup failed.
    Dns(DnsError),
}

impl fmt::Display for MxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NullMx => f.write_str("domain does not accept mail (null MX)"),
            Self::LoopsToUs => f.write_str("mail for the domain loops back to this host"),
            Self::Dns(DnsError::NotFound) => f.write_str("domain not found"),
            Self::Dns(DnsError::Temporary) => f.write_str("temporary DNS failure"),
        }
    }
}

impl std::error::Error for MxError {}

/// Next hops for `domain` from its MX records (RFC 5321 §5.1), each on `port`.
pub fn from_mx(
    domain: &str,
    resolver: &dyn Resolver,
    guard: &LoopGuard,
    port: u16,
) -> Result<NextHops, MxError> {
    let mut records = resolver.mx(domain).map_err(MxError::Dns)?;
    if records.len() == 1 && records[0].exchange.as_str() == "." {
        return Err(MxError::NullMx);
    }
    if records.is_empty() {
        // §5.1: no MX — the domain itself is an implicit MX of preference 0.
        records.push(MxRecord::new(0, domain).ok_or(MxError::Dns(DnsError::NotFound))?);
    }
    // §5.1: when we are listed, only strictly more preferred hosts may be used.
    let ours = records
        .iter()
        .filter(|r| guard.is_our_name(&r.exchange))
        .map(|r| r.preference)
        .min();
    let mut hops = NextHops::default();
    for r in &records {
        if ours.is_some_and(|p| r.preference >= p) {
            continue;
        }
        let name = r.exchange.trim_end_matches('.');
        let Ok(Domain::Name(host)) = Domain::parse(name, false) else {
            continue; // A malformed exchange is skipped, like an unreachable one.
        };
        let hop = NextHop {
            preference: r.preference,
            host: Host::Name(host),
            port,
        };
        if hops.hops.push(hop).is_err() {
            break;
        }
    }
    if hops.is_empty() {
        return Err(if ours.is_some() {
            MxError::LoopsToUs
        } else {
            MxError::Dns(DnsError::NotFound)
        });
    }
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(entries: &[&str]) -> NextHops {
        NextHops::parse(entries).unwrap()
    }

    fn names(list: &[&NextHop]) -> Vec<String> {
        list.iter().map(|h| h.host.to_string()).collect()
    }

    #[test]
    fn entries_parse_with_defaults() {
        let h = hops(&[
            "10 mail.lan:25",
            "[2001:db8::1]:2525",
            "Mail.LAN.",
            "192.0.2.1",
            "[192.0.2.2]",
        ]);
        let s: Vec<String> = h.as_slice().iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "10 mail.lan:25",
                "1 [2001:db8::1]:2525",
                "2 mail.lan:25",
                "3 192.0.2.1:25",
                "4 192.0.2.2:25"
            ]
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let cases: &[(&str, &str)] = &[
            ("x mail.lan", "preference"),
            ("mail.lan:0", "port"),
            ("mail.lan:99999", "port"),
            ("2001:db8::1", "brackets"),
            ("[2001:db8::1", "without ']'"),
            ("[mail.lan]:25", "IP address"),
            ("mail_lan", "host name"),
            ("", "host name"),
        ];
        for (text, want) in cases {
            let e = NextHops::parse(&["ok.lan", text]).unwrap_err().to_string();
            assert!(
                e.contains("relay.next-hops[1]") && e.contains(want),
                "{text:?}: {e}"
            );
        }
        let many = vec!["a.lan"; NEXT_HOPS_MAX + 1];
        assert_eq!(NextHops::parse(&many), Err(NextHopError::TooMany));
    }

    #[test]
    fn lowest_preference_first_and_equal_ones_shuffled_by_seed() {
        let h = hops(&["20 c.lan", "10 a.lan", "10 b.lan", "30 d.lan", "10 e.lan"]);
        let mut seen_first = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let order = names(&h.ordered(seed));
            let mut group: Vec<String> = order[..3].to_vec();
            group.sort();
            assert_eq!(group, ["a.lan", "b.lan", "e.lan"]);
            assert_eq!(&order[3..], ["c.lan", "d.lan"]);
            seen_first.insert(order[0].clone());
            assert_eq!(names(&h.ordered(seed)), order, "same seed, same order");
        }
        assert_eq!(
            seen_first.len(),
            3,
            "every equal-preference host gets to be first"
        );
    }

    #[test]
    fn loop_guard_refuses_our_name_and_listeners() {
        let listen: Vec<SocketAddr> =
            vec!["0.0.0.0:25".parse().unwrap(), "[::1]:2525".parse().unwrap()];
        let g = LoopGuard::new("MX.example.net", &listen, &["192.0.2.9".parse().unwrap()]);
        let is_self = |e: &str| g.is_self(&NextHop::parse(e, 0).unwrap());
        assert!(is_self("mx.example.net."));
        assert!(is_self("127.0.0.1:25"));
        assert!(is_self("192.0.2.9"));
        assert!(is_self("[::1]:2525"));
        assert!(
            !is_self("127.0.0.1:2526"),
            "another port on loopback is another server"
        );
        assert!(!is_self("mail.lan"));
        assert!(!is_self("192.0.2.10"));
    }

    #[test]
    fn mx_records_become_next_hops() {
        let r = StaticResolver {
            mx: vec![
                (
                    "example.com".into(),
                    vec![
                        MxRecord::new(20, "mx2.example.net").unwrap(),
                        MxRecord::new(10, "mail.example.com.").unwrap(),
                        MxRecord::new(30, "backup.example.org").unwrap(),
                    ],
                ),
                ("bare.example".into(), vec![]),
                ("null.example".into(), vec![MxRecord::new(0, ".").unwrap()]),
                (
                    "self.example".into(),
                    vec![MxRecord::new(10, "mx2.example.net").unwrap()],
                ),
            ],
            addrs: vec![],
        };
        let g = LoopGuard::new("mx2.example.net", &[], &[]);
        let h = from_mx("example.com", &r, &g, 25).unwrap();
        // We are the preference-20 MX: only the preference-10 host remains.
        assert_eq!(names(&h.ordered(1)), ["mail.example.com"]);
        let other = LoopGuard::new("elsewhere.example", &[], &[]);
        let h = from_mx("example.com", &r, &other, 25).unwrap();
        assert_eq!(
            names(&h.ordered(1)),
            ["mail.example.com", "mx2.example.net", "backup.example.org"]
        );
        let h = from_mx("bare.example", &r, &g, 25).unwrap();
        assert_eq!(names(&h.ordered(1)), ["bare.example"], "implicit MX");
        assert_eq!(from_mx("null.example", &r, &g, 25), Err(MxError::NullMx));
        assert_eq!(from_mx("self.example", &r, &g, 25), Err(MxError::LoopsToUs));
        assert_eq!(
            from_mx("nx.example", &r, &g, 25),
            Err(MxError::Dns(DnsError::NotFound))
        );
    }
}
