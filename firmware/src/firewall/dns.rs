//! The provider's silo by DNS name: A/AAAA lookups that never shrink the set on failure.
//!
//! A failed or empty lookup keeps the last good answer: a DNS outage must not lock the silo
//! out (nor open the garden). The last good answer travels inside the rendered rules file as
//! one comment line ([`LAST_GOOD_TAG`]), so a one-shot `mailbag firewall apply` run by cron
//! or hotplug finds it again without a separate state file.

use std::net::{IpAddr, ToSocketAddrs};

use super::cidr::Cidr;

/// Most addresses taken from one lookup (a silo name has a handful; more is not a silo).
pub const RESOLVED_MAX: usize = 32;

/// The comment tag that carries the last good answer in a rendered file.
pub const LAST_GOOD_TAG: &str = "# mailbag-silo-dns-last-good:";

/// Resolves a host name to addresses (A and AAAA).
pub trait Resolver {
    /// All addresses of `host`, or why not.
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String>;
}

/// The system resolver (getaddrinfo: /etc/hosts, then the configured DNS servers).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        (host, 0u16)
            .to_socket_addrs()
            .map(|it| it.map(|sa| sa.ip()).collect())
            .map_err(|e| e.to_string())
    }
}

/// The outcome of one lookup with fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Addresses to use (fresh, or the last good ones), sorted, at most [`RESOLVED_MAX`].
    pub addrs: Vec<IpAddr>,
    /// The lookup error, if the last good answer was used instead.
    pub failed: Option<String>,
}

/// Resolves `host`; on error or an empty answer returns `last_good` and the reason.
pub fn lookup(resolver: &dyn Resolver, host: &str, last_good: &[IpAddr]) -> Lookup {
    match resolver.resolve(host) {
        Ok(addrs) if !addrs.is_empty() => Lookup {
            addrs: canonical(addrs),
            failed: None,
        },
        Ok(_) => Lookup {
            addrs: canonical(last_good.to_vec()),
            failed: Some(format!("{host} has no A/AAAA records")),
        },
        Err(e) => Lookup {
            addrs: canonical(last_good.to_vec()),
            failed: Some(format!("looking up {host}: {e}")),
        },
    }
}

/// The addresses as silo prefixes (IPv4-mapped become IPv4).
pub fn prefixes(addrs: &[IpAddr]) -> impl Iterator<Item = Cidr> + '_ {
    addrs.iter().map(|a| Cidr::host(*a))
}

/// The comment line recording `addrs` (empty string when there are none).
pub fn last_good_line(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        return String::new();
    }
    let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    format!("{LAST_GOOD_TAG} {}\n", list.join(" "))
}

/// The addresses recorded in a previously rendered file; unreadable entries are skipped.
pub fn parse_last_good(rendered: &str) -> Vec<IpAddr> {
    let addrs = rendered
        .lines()
        .find_map(|l| l.strip_prefix(LAST_GOOD_TAG))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    canonical(addrs)
}

fn canonical(mut addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    addrs.sort_unstable();
    addrs.dedup();
    addrs.truncate(RESOLVED_MAX);
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Result<Vec<IpAddr>, String>);

    impl Resolver for Fake {
        fn resolve(&self, _: &str) -> Result<Vec<IpAddr>, String> {
            self.0.clone()
        }
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn fresh_answer_replaces_last_good() {
        let r = Fake(Ok(ips(&["2001:db8::7", "198.51.100.7", "198.51.100.7"])));
        let l = lookup(&r, "silo.example.net", &ips(&["192.0.2.1"]));
        assert_eq!(l.addrs, ips(&["198.51.100.7", "2001:db8::7"]));
        assert_eq!(l.failed, None);
    }

    #[test]
    fn failed_or_empty_lookup_keeps_last_good() {
        let last = ips(&["192.0.2.1"]);
        let l = lookup(&Fake(Err("timed out".into())), "silo.example.net", &last);
        assert_eq!(l.addrs, last);
        assert!(l.failed.unwrap().contains("silo.example.net: timed out"));
        let l = lookup(&Fake(Ok(vec![])), "silo.example.net", &last);
        assert_eq!(l.addrs, last);
        assert!(l.failed.is_some());
    }

    #[test]
    fn last_good_round_trips_through_a_rendered_file() {
        let addrs = ips(&["198.51.100.7", "2001:db8::7"]);
        let file = format!("# header\n{}set x {{}}\n", last_good_line(&addrs));
        assert_eq!(parse_last_good(&file), addrs);
        assert_eq!(parse_last_good("# nothing here\n"), Vec::<IpAddr>::new());
        assert_eq!(last_good_line(&[]), "");
    }

    #[test]
    fn system_resolver_finds_localhost() {
        let a = SystemResolver.resolve("localhost").unwrap();
        assert!(a.iter().any(|ip| ip.is_loopback()), "{a:?}");
    }
}
