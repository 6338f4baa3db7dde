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
//!
//! Layout: this file holds the question and the reading of its answer; `wire` reads
//! records and (compressed) names from a message; `servers` parses where to ask.

mod servers;
mod wire;

pub use servers::{PORT, SERVERS_MAX, parse_server, resolv_conf_servers};

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::relay::nexthop::{DnsError, MxRecord};
use crate::smtp::limits::DOMAIN_MAX;
use wire::{Rr, read_name, read_rr, read_txt, read_u16, root};

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
    /// Text (RFC 1035 §3.3.14): MTA-STS and TLS-RPT records, a DNS blocklist's reason for a
    /// listing (RFC 5782 §2.1).
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

#[cfg(test)]
mod tests;
