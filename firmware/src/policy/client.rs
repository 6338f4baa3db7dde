//! Who is connecting: the key a client's limits are counted under, and the trusted networks
//! no check applies to.

use std::net::IpAddr;

use crate::firewall::cidr::{Cidr, CidrError};

/// The unit a client's limits are counted in: one IPv4 address, or one IPv6 /64 (a host
/// on IPv6 usually holds a whole /64, so counting single addresses would not limit it).
/// IPv4-mapped IPv6 addresses count as the IPv4 address they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// One IPv4 address.
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

impl ClientKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Self::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::V4(a) => write!(f, "{}", std::net::Ipv4Addr::from(a)),
            Self::V6(p) => write!(f, "{}/64", std::net::Ipv6Addr::from(u128::from(p) << 64)),
        }
    }
}

/// `policy.trusted`: networks (the silo, the LAN, the chain's peers) whose clients no
/// protection check applies to. Lookup is linear in the list (a handful of prefixes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trusted(Vec<Cidr>);

impl Trusted {
    /// Parses the CIDRs (`192.0.2.0/24`, `2001:db8::/32`, a bare address).
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, CidrError> {
        texts
            .iter()
            .map(|t| Cidr::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when `ip` is in one of the networks (mapped IPv4 included).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let host = Cidr::host(ip);
        self.0.iter().any(|c| c.contains(&host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_count_by_slash_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.7")),
            ClientKey::of(ip("192.0.2.7"))
        );
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn trusted_networks_match_by_prefix() {
        let t = Trusted::parse(&["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]).unwrap();
        assert!(t.contains(ip("192.0.2.200")));
        assert!(t.contains(ip("::ffff:192.0.2.1")));
        assert!(t.contains(ip("2001:db8:ff::1")));
        assert!(t.contains(ip("198.51.100.7")));
        assert!(!t.contains(ip("198.51.100.8")));
        assert!(!Trusted::default().contains(ip("127.0.0.1")));
        assert!(Trusted::parse(&["300.0.0.0/8"]).is_err());
    }
}
