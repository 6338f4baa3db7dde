//! Where to ask: configured DNS servers and the system's `resolv.conf`.

use std::net::{IpAddr, SocketAddr};

/// Most DNS servers asked (configured, or read from `resolv.conf` like libc's `MAXNS`).
pub const SERVERS_MAX: usize = 3;
/// DNS's port.
pub const PORT: u16 = 53;

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
