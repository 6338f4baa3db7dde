//! DNS on the wire (RFC 1035), sans-IO: one question out, one answer in.
//!
//! # Contract
//!
//! - [`Query::new`] checks the name once (labels of 1..=63 printable ASCII bytes, at most
//!   255 bytes on the wire) and [`Query::encode`] writes a standard recursive query (RD=1,
//!   one question, class IN) into a fixed buffer of [`QUERY_MAX`] bytes.
//! - [`Query::parse`] reads a response to that query. A packet that is not one — too short
//!   for a header, another id, not a response, a different question — is
//!   [`ResponseError::NotOurs`], so the host keeps waiting for the real answer (RFC 5452
//!   §9.1: id and question must match). A packet that is ours but cannot be read is
//!   [`ResponseError::Malformed`]; `TC` is [`ResponseError::Truncated`] (ask again over
//!   TCP, RFC 7766 §5); an RCODE other than NOERROR is [`ResponseError::Failed`]
//!   (NXDOMAIN permanent, every other code temporary).
//! - Names may be compressed (RFC 1035 §4.1.4). A pointer must point strictly before the
//!   place it is read from, so pointer chains cannot loop; every read is bounds-checked.
//! - CNAMEs in the answer section are followed from the question's name, at most
//!   [`CNAME_MAX`] links (RFC 1034 §3.6.2). When the chain ends at a name the answer has no
//!   records for, [`Answer::alias`] names it so the host may ask again.
//! - Fixed caps: at most [`RECORDS_MAX`] answer records are read and kept. Nothing here
//!   panics on any input; the module's tests feed it random and mutated bytes.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::nexthop::{DnsError, MxRecord};
use crate::smtp::limits::DOMAIN_MAX;

/// Longest query we send: header, a 255-byte name, type and class.
pub const QUERY_MAX: usize = HEADER_LEN + 255 + 4;
/// A UDP answer without EDNS (RFC 1035 §4.2.1); longer ones arrive with TC set.
pub const UDP_MAX: usize = 512;
/// Longest answer accepted over TCP (the protocol allows 65535; MX sets are far smaller).
pub const TCP_MAX: usize = 16 * 1024;
/// Answer records read and kept from one response.
pub const RECORDS_MAX: usize = 32;
/// CNAME links followed for one question.
pub const CNAME_MAX: usize = 8;
/// Compression pointers followed while reading one name.
const POINTERS_MAX: usize = 64;
/// Most DNS servers asked (configured, or read from `resolv.conf` like libc's `MAXNS`).
pub const SERVERS_MAX: usize = 3;
/// DNS's port.
pub const PORT: u16 = 53;
const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
const TYPE_CNAME: u16 = 5;

/// The record types the relay (and `mailbag doctor`) asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QType {
    /// IPv4 address (RFC 1035 §3.4.1).
    A,
    /// IPv6 address (RFC 3596).
    Aaaa,
    /// Mail exchanger (RFC 1035 §3.3.9).
    Mx,
    /// Text (RFC 1035 §3.3.14): MTA-STS and TLS-RPT records.
    Txt,
    /// Alias (RFC 1035 §3.3.1): is an MX host a CNAME?
    Cname,
}

impl QType {
    fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Aaaa => 28,
            Self::Mx => 15,
            Self::Txt => 16,
            Self::Cname => TYPE_CNAME,
        }
    }
}

/// A domain name in text form: lowercase ASCII, no trailing dot; the root is `.`.
pub type Name = heapless::String<DOMAIN_MAX>;

/// Why a name cannot be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// An empty label (`a..b`, or an empty name).
    EmptyLabel,
    /// A label longer than 63 bytes.
    LabelTooLong,
    /// More than 255 bytes on the wire.
    TooLong,
    /// A byte that is not printable ASCII (spaces and controls included).
    BadByte,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptyLabel => "empty label in a DNS name",
            Self::LabelTooLong => "DNS label longer than 63 bytes",
            Self::TooLong => "DNS name longer than 255 bytes",
            Self::BadByte => "DNS name with a byte that is not printable ASCII",
        })
    }
}

impl std::error::Error for NameError {}

/// One question, as sent; it checks the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    id: u16,
    name: Name,
    qtype: QType,
}

/// What a response to a [`Query`] said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The records of the asked type (empty: the name exists but has none).
    pub records: Records,
    /// Lowest TTL (seconds) among the records and CNAMEs used; 0 when there are none.
    pub ttl: u32,
    /// Where a CNAME chain ended without records in this answer (ask this name again).
    pub alias: Option<Name>,
}

/// Records of one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Records {
    /// MX records in answer order.
    Mx(Vec<MxRecord>),
    /// A or AAAA addresses in answer order.
    Addrs(Vec<IpAddr>),
    /// TXT records in answer order, each one's character-strings joined (RFC 7208 §3.3
    /// style; RFC 8461 §3.1 reads `_mta-sts` records so), bytes that are not UTF-8 shown
    /// as U+FFFD.
    Txt(Vec<String>),
    /// CNAME targets (the name asked for is an alias of these; at most one in practice).
    Names(Vec<Name>),
}

/// Why a response gives no [`Answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Not a response to this query (id, QR bit, question): ignore it, keep waiting.
    NotOurs,
    /// The server truncated the answer: ask again over TCP.
    Truncated,
    /// Ours, but not readable DNS.
    Malformed,
    /// The server's RCODE: NXDOMAIN → [`DnsError::NotFound`], others → `Temporary`.
    Failed(DnsError),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOurs => f.write_str("not a response to our query"),
            Self::Truncated => f.write_str("truncated response"),
            Self::Malformed => f.write_str("malformed response"),
            Self::Failed(DnsError::NotFound) => f.write_str("name does not exist"),
            Self::Failed(DnsError::Temporary) => f.write_str("server failure"),
        }
    }
}

impl std::error::Error for ResponseError {}

impl Query {
    /// A question for `name` (a trailing dot is allowed; case is folded).
    pub fn new(id: u16, name: &str, qtype: QType) -> Result<Self, NameError> {
        let text = name.strip_suffix('.').unwrap_or(name);
        if text.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        // Wire length: one length byte per label plus the labels plus the root byte.
        if text.len() + 2 > 255 {
            return Err(NameError::TooLong);
        }
        let mut out = Name::new();
        for label in text.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > 63 {
                return Err(NameError::LabelTooLong);
            }
            if !label.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(NameError::BadByte);
            }
            if !out.is_empty() {
                out.push('.').map_err(|_| NameError::TooLong)?;
            }
            for c in label.chars() {
                out.push(c.to_ascii_lowercase())
                    .map_err(|_| NameError::TooLong)?;
            }
        }
        Ok(Self {
            id,
            name: out,
            qtype,
        })
    }

    /// The id the answer must carry.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The name asked for (lowercase, no trailing dot).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type asked for.
    pub fn qtype(&self) -> QType {
        self.qtype
    }

    /// The query message (for UDP as is; TCP prefixes the two-byte length).
    pub fn encode(&self) -> heapless::Vec<u8, QUERY_MAX> {
        let mut out = heapless::Vec::new();
        let mut put = |bytes: &[u8]| {
            // The name was checked in `new` (≤ 255 wire bytes), so the message fits.
            let _ = out.extend_from_slice(bytes);
        };
        put(&self.id.to_be_bytes());
        put(&[0x01, 0x00]); // QR=0, OPCODE=QUERY, RD=1
        put(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT=1
        for label in self.name.split('.') {
            put(&[label.len() as u8]);
            put(label.as_bytes());
        }
        put(&[0]);
        put(&self.qtype.code().to_be_bytes());
        put(&CLASS_IN.to_be_bytes());
        out
    }

    /// Reads `msg` as the response to this query.
    pub fn parse(&self, msg: &[u8]) -> Result<Answer, ResponseError> {
        let header = msg.get(..HEADER_LEN).ok_or(ResponseError::NotOurs)?;
        let id = u16::from_be_bytes([header[0], header[1]]);
        let (flags, rcode) = (header[2], header[3] & 0x0f);
        let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let (qdcount, ancount) = (count(4), count(6));
        // QR must be set and OPCODE must be QUERY.
        if id != self.id || flags & 0x80 == 0 || flags & 0x78 != 0 {
            return Err(ResponseError::NotOurs);
        }
        let mut pos = HEADER_LEN;
        match qdcount {
            1 => pos = self.check_question(msg, pos)?,
            // Some servers drop the question from an error reply; such a reply can only
            // ever make us retry (never bounce), so it is believed.
            0 if !matches!(rcode, 0 | 3) => {
                return Err(ResponseError::Failed(DnsError::Temporary));
            }
            _ => return Err(ResponseError::NotOurs),
        }
        if flags & 0x02 != 0 {
            return Err(ResponseError::Truncated);
        }
        match rcode {
            0 => {}
            3 => return Err(ResponseError::Failed(DnsError::NotFound)),
            _ => return Err(ResponseError::Failed(DnsError::Temporary)),
        }
        let mut rrs: heapless::Vec<Rr, RECORDS_MAX> = heapless::Vec::new();
        for _ in 0..ancount {
            let (rr, next) = read_rr(msg, pos)?;
            pos = next;
            if rrs.push(rr).is_err() {
                break;
            }
        }
        self.follow(msg, &rrs)
    }

    fn check_question(&self, msg: &[u8], pos: usize) -> Result<usize, ResponseError> {
        let (name, pos) = read_name(msg, pos).map_err(|_| ResponseError::NotOurs)?;
        let qtype = read_u16(msg, pos).ok_or(ResponseError::NotOurs)?;
        let qclass = read_u16(msg, pos + 2).ok_or(ResponseError::NotOurs)?;
        if name != self.name || qtype != self.qtype.code() || qclass != CLASS_IN {
            return Err(ResponseError::NotOurs);
        }
        Ok(pos + 4)
    }

    /// Follows CNAMEs from the question's name and collects the records of the type asked.
    fn follow(&self, msg: &[u8], rrs: &[Rr]) -> Result<Answer, ResponseError> {
        let mut current = self.name.clone();
        let mut ttl = u32::MAX;
        let mut records = match self.qtype {
            QType::Mx => Records::Mx(Vec::new()),
            QType::A | QType::Aaaa => Records::Addrs(Vec::new()),
            QType::Txt => Records::Txt(Vec::new()),
            QType::Cname => Records::Names(Vec::new()),
        };
        for _ in 0..=CNAME_MAX {
            let mut found = false;
            for rr in rrs
                .iter()
                .filter(|rr| rr.class == CLASS_IN && rr.owner == current)
            {
                if rr.rtype != self.qtype.code() {
                    continue;
                }
                found = true;
                ttl = ttl.min(rr.ttl);
                let data = msg
                    .get(rr.rdata..rr.rdata + rr.rdlen)
                    .ok_or(ResponseError::Malformed)?;
                match &mut records {
                    Records::Mx(list) => {
                        let preference = read_u16(data, 0).ok_or(ResponseError::Malformed)?;
                        let (exchange, end) = read_name(msg, rr.rdata + 2)?;
                        if end != rr.rdata + rr.rdlen {
                            return Err(ResponseError::Malformed);
                        }
                        list.push(MxRecord {
                            preference,
                            exchange: if exchange.is_empty() {
                                root()
                            } else {
                                exchange
                            },
                        });
                    }
                    Records::Txt(list) => list.push(read_txt(data)?),
                    Records::Names(list) => {
                        let (target, end) = read_name(msg, rr.rdata)?;
                        if end != rr.rdata + rr.rdlen || target.is_empty() {
                            return Err(ResponseError::Malformed);
                        }
                        list.push(target);
                    }
                    Records::Addrs(list) => list.push(match (self.qtype, data.len()) {
                        (QType::A, 4) => {
                            IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
                        }
                        (QType::Aaaa, 16) => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(data);
                            IpAddr::V6(Ipv6Addr::from(a))
                        }
                        _ => return Err(ResponseError::Malformed),
                    }),
                }
            }
            if found {
                return Ok(Answer {
                    records,
                    ttl,
                    alias: None,
                });
            }
            let Some(cname) = rrs
                .iter()
                .find(|rr| rr.class == CLASS_IN && rr.rtype == TYPE_CNAME && rr.owner == current)
            else {
                break;
            };
            let (target, end) = read_name(msg, cname.rdata)?;
            if end != cname.rdata + cname.rdlen || target.is_empty() {
                return Err(ResponseError::Malformed);
            }
            ttl = ttl.min(cname.ttl);
            current = target;
        }
        let alias = (current != self.name).then_some(current);
        Ok(Answer {
            records,
            ttl: if ttl == u32::MAX { 0 } else { ttl },
            alias,
        })
    }
}

/// A `relay.dns-servers` entry: `192.0.2.53`, `192.0.2.53:5353`, `::1` or `[::1]:5353`.
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| Some(SocketAddr::new(text.parse::<IpAddr>().ok()?, PORT)))
        .filter(|a| a.port() != 0)
}

/// The `nameserver` addresses of a `resolv.conf` (port 53), at most [`SERVERS_MAX`].
/// Addresses with a zone (`fe80::1%eth0`) are skipped: they need an interface index.
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, PORT))
        .take(SERVERS_MAX)
        .collect()
}

/// `.`, the null MX's exchange (RFC 7505).
fn root() -> Name {
    let mut n = Name::new();
    // Capacity DOMAIN_MAX ≥ 1.
    let _ = n.push('.');
    n
}

/// An answer record, its RDATA left in place (offsets into the message).
struct Rr {
    owner: Name,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: usize,
    rdlen: usize,
}

fn read_rr(msg: &[u8], pos: usize) -> Result<(Rr, usize), ResponseError> {
    let (owner, pos) = read_name(msg, pos)?;
    let field = msg.get(pos..pos + 10).ok_or(ResponseError::Malformed)?;
    let rtype = u16::from_be_bytes([field[0], field[1]]);
    let class = u16::from_be_bytes([field[2], field[3]]);
    // RFC 2181 §8: a TTL with the top bit set is read as zero.
    let ttl = match u32::from_be_bytes([field[4], field[5], field[6], field[7]]) {
        t if t > i32::MAX as u32 => 0,
        t => t,
    };
    let rdlen = usize::from(u16::from_be_bytes([field[8], field[9]]));
    let rdata = pos + 10;
    if msg.len() < rdata + rdlen {
        return Err(ResponseError::Malformed);
    }
    let rr = Rr {
        owner,
        rtype,
        class,
        ttl,
        rdata,
        rdlen,
    };
    Ok((rr, rdata + rdlen))
}

/// One TXT record's RDATA: length-prefixed character-strings, joined.
fn read_txt(data: &[u8]) -> Result<String, ResponseError> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let piece = tail
            .get(..usize::from(len))
            .ok_or(ResponseError::Malformed)?;
        out.extend_from_slice(piece);
        rest = &tail[usize::from(len)..];
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn read_u16(msg: &[u8], pos: usize) -> Option<u16> {
    let b = msg.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads the (possibly compressed) name at `pos`; returns it (empty for the root) and the
/// offset just past it where it started.
fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), ResponseError> {
    let mut name = Name::new();
    let mut pos = start;
    let mut end = None;
    let mut wire_len = 1usize; // the root byte
    for _ in 0..POINTERS_MAX {
        // Bounded: each label adds at least 2 to `wire_len`, which stops at 255.
        loop {
            let len = *msg.get(pos).ok_or(ResponseError::Malformed)?;
            match len & 0xc0 {
                0x00 if len == 0 => return Ok((name, end.unwrap_or(pos + 1))),
                0x00 => {
                    let len = usize::from(len);
                    let label = msg
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(ResponseError::Malformed)?;
                    wire_len += len + 1;
                    if wire_len > 255 || !label.iter().all(|&b| b.is_ascii_graphic() && b != b'.') {
                        return Err(ResponseError::Malformed);
                    }
                    if !name.is_empty() {
                        name.push('.').map_err(|_| ResponseError::Malformed)?;
                    }
                    for &b in label {
                        name.push(char::from(b.to_ascii_lowercase()))
                            .map_err(|_| ResponseError::Malformed)?;
                    }
                    pos += 1 + len;
                }
                0xc0 => {
                    let low = *msg.get(pos + 1).ok_or(ResponseError::Malformed)?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                    // Strictly backwards: a chain of pointers can never come back.
                    if target >= pos {
                        return Err(ResponseError::Malformed);
                    }
                    end.get_or_insert(pos + 2);
                    pos = target;
                    break;
                }
                // 0x40 and 0x80 are the obsolete extended label types (RFC 6891 §5).
                _ => return Err(ResponseError::Malformed),
            }
        }
    }
    Err(ResponseError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: u16 = 0xbeef;
    const MX: u16 = 15;
    const A: u16 = 1;
    const AAAA: u16 = 28;

    /// An uncompressed name on the wire.
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    /// A response being built: header, the question (its name at offset 12), answers.
    struct Msg(Vec<u8>);

    impl Msg {
        fn new(qname: &str, qtype: u16) -> Self {
            Self::with(ID, 0x81, 0x80, qname, qtype)
        }

        fn with(id: u16, flags: u8, rcode: u8, qname: &str, qtype: u16) -> Self {
            let mut m = id.to_be_bytes().to_vec();
            m.extend_from_slice(&[flags, rcode, 0, 1, 0, 0, 0, 0, 0, 0]);
            m.extend_from_slice(&wire(qname));
            m.extend_from_slice(&qtype.to_be_bytes());
            m.extend_from_slice(&1u16.to_be_bytes());
            Msg(m)
        }

        /// Appends an answer; `owner` is raw wire bytes (may be a pointer).
        fn rr(mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.0.extend_from_slice(owner);
            self.0.extend_from_slice(&rtype.to_be_bytes());
            self.0.extend_from_slice(&1u16.to_be_bytes());
            self.0.extend_from_slice(&ttl.to_be_bytes());
            self.0
                .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            self.0.extend_from_slice(rdata);
            let an = u16::from_be_bytes([self.0[6], self.0[7]]) + 1;
            self.0[6..8].copy_from_slice(&an.to_be_bytes());
            self
        }

        fn len(&self) -> usize {
            self.0.len()
        }
    }

    /// A pointer to `offset`.
    fn ptr(offset: usize) -> [u8; 2] {
        [0xc0 | (offset >> 8) as u8, offset as u8]
    }

    fn mx_rdata(pref: u16, exchange: &[u8]) -> Vec<u8> {
        let mut d = pref.to_be_bytes().to_vec();
        d.extend_from_slice(exchange);
        d
    }

    fn mx(list: &[(u16, &str)]) -> Records {
        Records::Mx(
            list.iter()
                .map(|(p, n)| MxRecord::new(*p, n).unwrap())
                .collect(),
        )
    }

    fn addrs(list: &[&str]) -> Records {
        Records::Addrs(list.iter().map(|a| a.parse().unwrap()).collect())
    }

    fn q(name: &str, qtype: QType) -> Query {
        Query::new(ID, name, qtype).unwrap()
    }

    #[test]
    fn query_is_a_recursive_question_in_class_in() {
        let got = q("Mail.Example.COM.", QType::Mx).encode();
        let mut want = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x04mail\x07example\x03com\x00\x00\x0f\x00\x01");
        assert_eq!(&got[..], &want[..]);
        assert_eq!(
            q("x.lan", QType::Aaaa).encode()[13..],
            *b"x\x03lan\x00\x00\x1c\x00\x01"
        );
    }

    #[test]
    fn names_that_cannot_be_asked_are_refused() {
        let long_label = format!("{}.lan", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join("."); // 259 bytes
        let cases: &[(&str, NameError)] = &[
            ("", NameError::EmptyLabel),
            (".", NameError::EmptyLabel),
            ("a..lan", NameError::EmptyLabel),
            (&long_label, NameError::LabelTooLong),
            (&long_name, NameError::TooLong),
            ("a b.lan", NameError::BadByte),
            ("bücher.lan", NameError::BadByte),
        ];
        for (name, want) in cases {
            assert_eq!(Query::new(1, name, QType::A), Err(*want), "{name:?}");
        }
        let max_label = format!("{}.lan", "a".repeat(63));
        assert!(Query::new(1, &max_label, QType::A).is_ok());
        let max_name = ["a".repeat(63).as_str(); 4]
            .join(".")
            .chars()
            .skip(2)
            .collect::<String>();
        assert_eq!(max_name.len(), 253, "255 bytes on the wire");
        assert!(Query::new(1, &max_name, QType::A).is_ok());
    }

    #[test]
    fn mx_answer_with_compressed_names() {
        // Owner: pointer to the question (offset 12). Exchange: "mx1" + pointer to it.
        let m = Msg::new("office.test", MX).rr(
            &ptr(12),
            MX,
            300,
            &mx_rdata(10, &[&b"\x03mx1"[..], &ptr(12)].concat()),
        );
        let m = m.rr(
            &ptr(12),
            MX,
            120,
            &mx_rdata(20, &[&b"\x03MX2"[..], &ptr(12)].concat()),
        );
        let a = q("Office.Test", QType::Mx).parse(&m.0).unwrap();
        assert_eq!(
            a.records,
            mx(&[(10, "mx1.office.test"), (20, "mx2.office.test")])
        );
        assert_eq!(a.ttl, 120, "the lowest TTL");
        assert_eq!(a.alias, None);
    }

    #[test]
    fn null_mx_and_no_records() {
        let m = Msg::new("null.test", MX).rr(&ptr(12), MX, 60, &mx_rdata(0, &[0]));
        let a = q("null.test", QType::Mx).parse(&m.0).unwrap();
        assert_eq!(a.records, mx(&[(0, ".")]));
        let empty = Msg::new("bare.test", MX);
        let a = q("bare.test", QType::Mx).parse(&empty.0).unwrap();
        assert_eq!((a.records, a.ttl, a.alias), (mx(&[]), 0, None));
    }

    #[test]
    fn addresses_of_the_asked_family() {
        let m = Msg::new("h.test", A)
            .rr(&ptr(12), A, 60, &[192, 0, 2, 1])
            .rr(&ptr(12), A, 60, &[192, 0, 2, 2]);
        let a = q("h.test", QType::A).parse(&m.0).unwrap();
        assert_eq!(a.records, addrs(&["192.0.2.1", "192.0.2.2"]));
        let six: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let m = Msg::new("h.test", AAAA).rr(&ptr(12), AAAA, 60, &six.octets());
        let a = q("h.test", QType::Aaaa).parse(&m.0).unwrap();
        assert_eq!(a.records, addrs(&["2001:db8::1"]));
        let bad = Msg::new("h.test", A).rr(&ptr(12), A, 60, &[192, 0, 2]);
        assert_eq!(
            q("h.test", QType::A).parse(&bad.0),
            Err(ResponseError::Malformed)
        );
    }

    #[test]
    fn cnames_are_followed_within_the_answer() {
        let m = Msg::new("www.test", A)
            .rr(&ptr(12), TYPE_CNAME, 300, &wire("a.test"))
            .rr(&wire("a.test"), TYPE_CNAME, 30, &wire("b.test"))
            .rr(&wire("c.test"), A, 60, &[198, 51, 100, 9]) // unrelated: ignored
            .rr(&wire("b.test"), A, 60, &[192, 0, 2, 7]);
        let a = q("www.test", QType::A).parse(&m.0).unwrap();
        assert_eq!(a.records, addrs(&["192.0.2.7"]));
        assert_eq!(a.ttl, 30);
        let dangling = Msg::new("www.test", MX).rr(&ptr(12), TYPE_CNAME, 300, &wire("mail.other"));
        let a = q("www.test", QType::Mx).parse(&dangling.0).unwrap();
        assert_eq!(a.records, mx(&[]));
        assert_eq!(a.alias.as_deref(), Some("mail.other"), "ask again there");
        let looped = Msg::new("a.test", A)
            .rr(&ptr(12), TYPE_CNAME, 300, &wire("b.test"))
            .rr(&wire("b.test"), TYPE_CNAME, 300, &wire("a.test"));
        let a = q("a.test", QType::A).parse(&looped.0).unwrap();
        assert_eq!(a.records, addrs(&[]), "a CNAME loop ends, empty");
    }

    #[test]
    fn txt_strings_are_joined_and_cnames_read_as_names() {
        let m = Msg::new("_mta-sts.office.test", 16)
            .rr(&ptr(12), 16, 300, b"\x08v=STSv1;\x05 id=7")
            .rr(&ptr(12), 16, 300, b"\x00");
        let a = q("_mta-sts.office.test", QType::Txt).parse(&m.0).unwrap();
        assert_eq!(
            a.records,
            Records::Txt(vec!["v=STSv1; id=7".into(), String::new()])
        );
        let cut = Msg::new("t.test", 16).rr(&ptr(12), 16, 300, b"\x09short");
        assert_eq!(
            q("t.test", QType::Txt).parse(&cut.0),
            Err(ResponseError::Malformed)
        );
        let m =
            Msg::new("backup.test", TYPE_CNAME).rr(&ptr(12), TYPE_CNAME, 60, &wire("silo.test"));
        let a = q("backup.test", QType::Cname).parse(&m.0).unwrap();
        assert_eq!(
            a.records,
            Records::Names(vec![Name::try_from("silo.test").unwrap()])
        );
        let none = Msg::new("host.test", TYPE_CNAME);
        let a = q("host.test", QType::Cname).parse(&none.0).unwrap();
        assert_eq!(a.records, Records::Names(vec![]), "not an alias");
    }

    #[test]
    fn rcodes_map_to_permanent_or_temporary() {
        let with = |rcode: u8| Msg::with(ID, 0x81, 0x80 | rcode, "x.test", MX).0;
        let parse = |m: &[u8]| q("x.test", QType::Mx).parse(m);
        assert_eq!(
            parse(&with(3)),
            Err(ResponseError::Failed(DnsError::NotFound))
        );
        for rcode in [1, 2, 4, 5, 9] {
            assert_eq!(
                parse(&with(rcode)),
                Err(ResponseError::Failed(DnsError::Temporary)),
                "rcode {rcode}"
            );
        }
        // REFUSED without the question is believed (it can only make us retry) …
        let mut refused = ID.to_be_bytes().to_vec();
        refused.extend_from_slice(&[0x81, 0x85, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse(&refused),
            Err(ResponseError::Failed(DnsError::Temporary))
        );
        // … NXDOMAIN without it is not (it would bounce mail).
        refused[3] = 0x83;
        assert_eq!(parse(&refused), Err(ResponseError::NotOurs));
        let tc = Msg::with(ID, 0x83, 0x80, "x.test", MX).0;
        assert_eq!(parse(&tc), Err(ResponseError::Truncated));
    }

    #[test]
    fn answers_to_other_questions_are_not_ours() {
        let parse = |m: &[u8]| q("x.test", QType::Mx).parse(m);
        let cases = [
            Msg::with(ID ^ 1, 0x81, 0x80, "x.test", MX).0,
            Msg::with(ID, 0x01, 0x80, "x.test", MX).0, // QR=0: a query
            Msg::with(ID, 0x91, 0x80, "x.test", MX).0, // OPCODE 2
            Msg::with(ID, 0x81, 0x80, "y.test", MX).0,
            Msg::with(ID, 0x81, 0x80, "x.test", A).0,
            Msg::with(ID, 0x81, 0x80, "x.test", MX).0[..11].to_vec(),
            Vec::new(),
        ];
        for (i, m) in cases.iter().enumerate() {
            assert_eq!(parse(m), Err(ResponseError::NotOurs), "case {i}");
        }
    }

    #[test]
    fn pointer_loops_and_out_of_bounds_are_malformed() {
        let parse = |m: &[u8]| q("x.test", QType::A).parse(m);
        let base = Msg::new("x.test", A);
        let at = base.len();
        let cases = [
            // owner points at itself
            Msg::new("x.test", A).rr(&ptr(at), A, 1, &[1, 2, 3, 4]).0,
            // owner points forward (into its own rdata)
            Msg::new("x.test", A)
                .rr(&ptr(at + 12), A, 1, &[1, 2, 3, 4])
                .0,
            // a label, then a pointer back to that label: a loop through a backward step
            Msg::new("x.test", A)
                .rr(&[&b"\x01x"[..], &ptr(at)].concat(), A, 1, &[1, 2, 3, 4])
                .0,
            // pointer past the end
            Msg::new("x.test", A).rr(&ptr(4000), A, 1, &[1, 2, 3, 4]).0,
            // extended label type 0x40
            Msg::new("x.test", A)
                .rr(&[0x41, b'x', 0], A, 1, &[1, 2, 3, 4])
                .0,
            // a label with a dot in it
            Msg::new("x.test", A)
                .rr(b"\x03x.y\x00", A, 1, &[1, 2, 3, 4])
                .0,
        ];
        for (i, m) in cases.iter().enumerate() {
            assert_eq!(parse(m), Err(ResponseError::Malformed), "case {i}");
        }
        // RDLENGTH beyond the end.
        let mut long = Msg::new("x.test", A).rr(&ptr(12), A, 1, &[1, 2, 3, 4]).0;
        let n = long.len();
        long[n - 6..n - 4].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(parse(&long), Err(ResponseError::Malformed));
        // Every cut of a good answer is an error, never a panic or a shorter answer.
        let good = Msg::new("x.test", MX)
            .rr(
                &ptr(12),
                MX,
                300,
                &mx_rdata(10, &[&b"\x03mx1"[..], &ptr(12)].concat()),
            )
            .0;
        assert!(q("x.test", QType::Mx).parse(&good).is_ok());
        for cut in 0..good.len() {
            assert!(
                q("x.test", QType::Mx).parse(&good[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn records_beyond_the_cap_are_dropped() {
        let mut m = Msg::new("many.test", A);
        for i in 0..40u8 {
            m = m.rr(&ptr(12), A, 60, &[10, 0, 0, i]);
        }
        let a = q("many.test", QType::A).parse(&m.0).unwrap();
        assert!(matches!(a.records, Records::Addrs(v) if v.len() == RECORDS_MAX));
    }

    #[test]
    fn servers_from_config_and_resolv_conf() {
        let ok = |t: &str| parse_server(t).map(|a| a.to_string());
        assert_eq!(ok("192.0.2.53").as_deref(), Some("192.0.2.53:53"));
        assert_eq!(ok(" 127.0.0.1:5353 ").as_deref(), Some("127.0.0.1:5353"));
        assert_eq!(ok("::1").as_deref(), Some("[::1]:53"));
        assert_eq!(ok("[::1]:5353").as_deref(), Some("[::1]:5353"));
        for bad in ["dns.lan", "127.0.0.1:0", "::1:53x", ""] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        let conf = "# OpenWrt\nsearch lan\nnameserver 127.0.0.1\nnameserver ::1\n\
                    nameserver fe80::1%eth0\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n";
        let got: Vec<String> = resolv_conf_servers(conf)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["127.0.0.1:53", "[::1]:53", "192.0.2.1:53"]);
        assert!(resolv_conf_servers("options ndots:1\n").is_empty());
    }

    /// SplitMix64, for reproducible noise.
    fn rng(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let seeds = [
            Msg::new("office.test", MX)
                .rr(
                    &ptr(12),
                    MX,
                    300,
                    &mx_rdata(10, &[&b"\x03mx1"[..], &ptr(12)].concat()),
                )
                .rr(
                    &ptr(12),
                    TYPE_CNAME,
                    300,
                    &[&b"\x01a"[..], &ptr(12)].concat(),
                )
                .0,
            Msg::new("office.test", A)
                .rr(&ptr(12), TYPE_CNAME, 300, &wire("b.test"))
                .rr(&wire("b.test"), A, 60, &[192, 0, 2, 7])
                .0,
        ];
        let queries = [
            q("office.test", QType::Mx),
            q("office.test", QType::A),
            q("office.test", QType::Txt),
            q("office.test", QType::Cname),
        ];
        let mut state = 7u64;
        let mut parsed = 0;
        for round in 0..20_000 {
            let r = rng(&mut state);
            let mut m = if round % 4 == 0 {
                // Pure noise behind a matching header.
                let len = (r % 600) as usize;
                let mut m: Vec<u8> = (0..len).map(|_| rng(&mut state) as u8).collect();
                if len >= 4 {
                    m[..4].copy_from_slice(&[0xbe, 0xef, 0x81, 0x80]);
                }
                m
            } else {
                seeds[(r % 2) as usize].clone()
            };
            for _ in 0..(r >> 8) % 4 + 1 {
                if m.is_empty() {
                    break;
                }
                let x = rng(&mut state);
                let i = (x % m.len() as u64) as usize;
                match (x >> 32) % 3 {
                    0 => m[i] = (x >> 40) as u8,
                    1 => m[i] ^= 1 << ((x >> 40) % 8),
                    _ => m.truncate(i),
                }
            }
            for query in &queries {
                if query.parse(&m).is_ok() {
                    parsed += 1;
                }
            }
        }
        assert!(
            parsed > 1000,
            "mutations still reach the record parser ({parsed})"
        );
    }
}
