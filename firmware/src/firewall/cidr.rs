//! Silo address prefixes: one checked constructor, then normalised sets.
//!
//! [`Cidr::parse`] is the only way in: past it a prefix is known valid, its host bits are
//! cleared, and an IPv4-mapped IPv6 prefix (`::ffff:192.0.2.1`) has become the IPv4 prefix
//! it stands for (a packet from that peer arrives as IPv4, so only the IPv4 set can match it).
//! [`SiloSet::new`] sorts, drops prefixes covered by others and merges sibling halves, so a
//! rendering is the same text whatever order or redundancy the configuration used, and nft
//! interval sets never see overlapping elements (which it rejects without `auto-merge`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most prefixes a silo set holds (per family, after normalisation); more is a config error.
pub const SILO_PREFIXES_MAX: usize = 256;

/// One IPv4 or IPv6 network prefix with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cidr {
    /// An IPv4 prefix.
    V4(Ipv4Addr, u8),
    /// An IPv6 prefix (never an IPv4-mapped one).
    V6(Ipv6Addr, u8),
}

/// Why a prefix or a set of prefixes was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// The text is not an address or `address/length`.
    Invalid(String),
    /// More than [`SILO_PREFIXES_MAX`] prefixes in one family.
    TooMany(usize),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(s) => write!(
                f,
                "invalid CIDR '{s}' (expected e.g. 203.0.113.0/28, 2001:db8::/48 or 198.51.100.7)"
            ),
            Self::TooMany(n) => write!(
                f,
                "{n} silo prefixes in one address family; at most {SILO_PREFIXES_MAX} are supported"
            ),
        }
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// Parses `addr` or `addr/len`; clears host bits; maps `::ffff:a.b.c.d/len>=96` to IPv4.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let bad = || CidrError::Invalid(text.to_string());
        let t = text.trim();
        let (addr, len) = match t.split_once('/') {
            Some((a, l)) => {
                // Only plain decimal lengths: "+8" or " 8" are typos, not prefixes.
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                    return Err(bad());
                }
                (a, Some(l.parse::<u8>().map_err(|_| bad())?))
            }
            None => (t, None),
        };
        match addr.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(bad());
                }
                Ok(Self::v4(a, len))
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(bad());
                }
                Ok(Self::v6(a, len))
            }
        }
    }

    /// The prefix of one host address (`/32` or `/128`), mapped addresses becoming IPv4.
    pub fn host(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::v4(a, 32),
            IpAddr::V6(a) => Self::v6(a, 128),
        }
    }

    fn v4(a: Ipv4Addr, len: u8) -> Self {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        Self::V4(Ipv4Addr::from(u32::from(a) & mask), len)
    }

    fn v6(a: Ipv6Addr, len: u8) -> Self {
        if len >= 96
            && let Some(v4) = a.to_ipv4_mapped()
        {
            return Self::v4(v4, len - 96);
        }
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        Self::V6(Ipv6Addr::from(u128::from(a) & mask), len)
    }

    /// True if every address of `other` is inside `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        match (*self, *other) {
            (Self::V4(a, l), Self::V4(b, m)) => l <= m && Self::v4(b, l) == Self::V4(a, l),
            (Self::V6(a, l), Self::V6(b, m)) => l <= m && Self::v6(b, l) == Self::V6(a, l),
            _ => false,
        }
    }

    /// The enclosing prefix one bit shorter, if `self` and `other` are its two halves.
    fn merge(&self, other: &Cidr) -> Option<Cidr> {
        match (*self, *other) {
            (Self::V4(a, l), Self::V4(_, m)) if l == m && l > 0 => {
                let parent = Self::v4(a, l - 1);
                (parent.contains(other) && self != other).then_some(parent)
            }
            (Self::V6(a, l), Self::V6(_, m)) if l == m && l > 0 => {
                let parent = Self::v6(a, l - 1);
                (parent.contains(other) && self != other).then_some(parent)
            }
            _ => None,
        }
    }

    /// True for IPv4 prefixes.
    pub fn is_v4(&self) -> bool {
        matches!(self, Self::V4(..))
    }
}

impl fmt::Display for Cidr {
    /// Host prefixes print as a bare address (how nft lists them); others as `addr/len`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a, 32) => write!(f, "{a}"),
            Self::V6(a, 128) => write!(f, "{a}"),
            Self::V4(a, l) => write!(f, "{a}/{l}"),
            Self::V6(a, l) => write!(f, "{a}/{l}"),
        }
    }
}

/// The normalised silo prefixes of both families: sorted, no duplicates, no overlaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiloSet {
    v4: Vec<Cidr>,
    v6: Vec<Cidr>,
}

impl SiloSet {
    /// Normalises `prefixes`; refuses more than [`SILO_PREFIXES_MAX`] per family.
    pub fn new(prefixes: impl IntoIterator<Item = Cidr>) -> Result<Self, CidrError> {
        let (v4, v6): (Vec<Cidr>, Vec<Cidr>) = prefixes.into_iter().partition(Cidr::is_v4);
        let (v4, v6) = (normalise(v4), normalise(v6));
        for family in [&v4, &v6] {
            if family.len() > SILO_PREFIXES_MAX {
                return Err(CidrError::TooMany(family.len()));
            }
        }
        Ok(Self { v4, v6 })
    }

    /// Parses every text with [`Cidr::parse`]; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, CidrError> {
        let parsed = texts
            .iter()
            .map(|t| Cidr::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(parsed)
    }

    /// The IPv4 prefixes, sorted.
    pub fn v4(&self) -> &[Cidr] {
        &self.v4
    }

    /// The IPv6 prefixes, sorted.
    pub fn v6(&self) -> &[Cidr] {
        &self.v6
    }

    /// True if neither family has a prefix.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Both families, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = &Cidr> {
        self.v4.iter().chain(self.v6.iter())
    }
}

/// Sorts, removes covered prefixes and merges sibling halves until nothing changes.
fn normalise(mut list: Vec<Cidr>) -> Vec<Cidr> {
    loop {
        // Sorting by (address, length) puts a covering prefix right before what it covers.
        list.sort();
        list.dedup();
        let mut out: Vec<Cidr> = Vec::with_capacity(list.len());
        let mut changed = false;
        for c in list {
            match out.last() {
                Some(last) if last.contains(&c) => changed = true,
                Some(last) => match last.merge(&c) {
                    Some(parent) => {
                        out.pop();
                        out.push(parent);
                        changed = true;
                    }
                    None => out.push(c),
                },
                None => out.push(c),
            }
        }
        if !changed {
            return out;
        }
        list = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> Vec<String> {
        let s = SiloSet::parse(v).unwrap();
        s.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn parses_and_clears_host_bits() {
        assert_eq!(
            Cidr::parse("203.0.113.9/28").unwrap().to_string(),
            "203.0.113.0/28"
        );
        assert_eq!(
            Cidr::parse(" 198.51.100.7 ").unwrap().to_string(),
            "198.51.100.7"
        );
        assert_eq!(
            Cidr::parse("2001:db8::1/48").unwrap().to_string(),
            "2001:db8::/48"
        );
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(Cidr::parse("::/0").unwrap().to_string(), "::/0");
    }

    #[test]
    fn invalid_cidr_is_named_in_the_error() {
        for bad in [
            "203.0.113.0/33",
            "2001:db8::/129",
            "mail.example.com",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "",
        ] {
            let err = Cidr::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
        let err = SiloSet::parse(&["192.0.2.0/24", "192.0.2.300"]).unwrap_err();
        assert!(err.to_string().contains("'192.0.2.300'"), "{err}");
    }

    #[test]
    fn ipv4_mapped_ipv6_becomes_ipv4() {
        assert_eq!(
            Cidr::parse("::ffff:192.0.2.5").unwrap(),
            Cidr::parse("192.0.2.5").unwrap()
        );
        assert_eq!(
            Cidr::parse("::ffff:192.0.2.0/120").unwrap(),
            Cidr::parse("192.0.2.0/24").unwrap()
        );
        // Shorter than /96 covers more than the mapped range: stays IPv6.
        assert!(!Cidr::parse("::ffff:0:0/80").unwrap().is_v4());
        let s = SiloSet::parse(&["::ffff:198.51.100.7", "2001:db8::/32"]).unwrap();
        assert_eq!(s.v4().len(), 1);
        assert_eq!(s.v6().len(), 1);
    }

    #[test]
    fn duplicates_overlaps_and_siblings_are_normalised() {
        assert_eq!(
            set(&[
                "192.0.2.16/28",
                "192.0.2.0/24",
                "192.0.2.0/24",
                "2001:db8:1::5",
                "2001:db8::/32",
                "198.51.100.0/25",
                "198.51.100.128/25",
                "10.0.0.1",
            ]),
            [
                "10.0.0.1",
                "192.0.2.0/24",
                "198.51.100.0/24",
                "2001:db8::/32"
            ]
        );
        // Order of input does not change the result.
        assert_eq!(
            set(&["10.0.0.3", "10.0.0.2", "10.0.0.1", "10.0.0.0"]),
            ["10.0.0.0/30"]
        );
        assert!(SiloSet::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn seeded_random_text_never_panics_and_valid_prefixes_round_trip() {
        // A bounded, seeded stand-in for a fuzz target: 20 000 strings over the characters
        // that matter to the parser. Anything accepted must print back to itself.
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF:./ %f";
        let mut seed: u64 = 0x5eed_f00d;
        let mut accepted = 0;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 59) as usize + 1;
            let text: String = (0..len)
                .map(|i| {
                    let x = seed.rotate_left(7 * i as u32);
                    ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
                })
                .collect();
            if let Ok(c) = Cidr::parse(&text) {
                accepted += 1;
                assert_eq!(Cidr::parse(&c.to_string()), Ok(c), "{text:?}");
            }
        }
        assert!(accepted > 0, "the generator should hit some valid prefixes");
    }

    #[test]
    fn too_many_prefixes_is_refused() {
        // Every other /32 so nothing merges.
        let many: Vec<String> = (0..=SILO_PREFIXES_MAX)
            .map(|i| format!("10.{}.{}.1", i / 256, i % 256))
            .collect();
        assert!(matches!(SiloSet::parse(&many), Err(CidrError::TooMany(_))));
    }
}
