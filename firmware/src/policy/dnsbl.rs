//! DNS blocklists (RFC 5782), sans-IO: which name to ask, what the answer means, and what
//! to tell a listed client.
//!
//! - **Query.** IPv4 `a.b.c.d` is asked as `d.c.b.a.<zone>`, IPv6 as its 32 nibbles
//!   reversed (RFC 5782 §2.4), type A; a listed client also gets a TXT lookup for the
//!   list's reason.
//! - **Answer.** An address in 127.0.0.0/8 means listed (§2.3), except 127.255.255.0/24,
//!   which lists use to say the *query* was refused (for example Spamhaus for queries
//!   through public resolvers): that is [`Listing::ListError`] and, like a timeout,
//!   SERVFAIL or any answer outside 127/8, the client is let through (fail open) and the
//!   reason is logged. NXDOMAIN and NODATA mean not listed.
//! - **Reply.** `554 5.7.1` naming the zone and the list's TXT reason, reduced to
//!   printable ASCII and at most [`REASON_MAX`] bytes so a list cannot inject into the
//!   SMTP dialogue.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// Longest TXT reason quoted to a client.
pub const REASON_MAX: usize = 160;
/// Most zones asked per connection (blocking and scoring together).
pub const ZONES_MAX: usize = 8;

/// What one list says about a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// NXDOMAIN or no A record.
    NotListed,
    /// Listed with this return code (`127.0.0.2` …).
    Listed(Ipv4Addr),
    /// The list refused or could not answer (127.255.255.x, SERVFAIL, timeout, an
    /// answer outside 127/8): treated as not listed.
    ListError(String),
}

/// The name to ask `zone` about `ip` (None when the zone or the result is not a usable
/// DNS name).
pub fn query_name(ip: IpAddr, zone: &str) -> Option<String> {
    let zone = zone.trim().trim_end_matches('.');
    if zone.is_empty() || zone.len() > 180 {
        return None;
    }
    let mut name = String::with_capacity(74 + zone.len());
    match ip {
        IpAddr::V4(a) => write_v4(&mut name, a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => write_v4(&mut name, v4),
            None => {
                for byte in a.octets().iter().rev() {
                    let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
                }
            }
        },
    }
    name.push_str(zone);
    Some(name)
}

fn write_v4(name: &mut String, a: Ipv4Addr) {
    let [w, x, y, z] = a.octets();
    let _ = write!(name, "{z}.{y}.{x}.{w}.");
}

/// Reads the A records of a query (empty: NXDOMAIN or NODATA).
pub fn interpret(addrs: &[IpAddr]) -> Listing {
    let mut listed = None;
    for a in addrs {
        match a {
            IpAddr::V4(v4) if v4.octets()[..3] == [127, 255, 255] => {
                return Listing::ListError(format!("the list refused the query ({v4})"));
            }
            IpAddr::V4(v4) if v4.octets()[0] == 127 => listed = listed.or(Some(*v4)),
            other => {
                return Listing::ListError(format!("answer {other} is not a list code"));
            }
        }
    }
    listed.map_or(Listing::NotListed, Listing::Listed)
}

/// A TXT reason made safe to quote: printable ASCII only (others become `?`), whitespace
/// collapsed, at most [`REASON_MAX`] bytes.
pub fn clean_reason(txt: &[String]) -> String {
    let mut out = String::new();
    for t in txt {
        for c in t.chars() {
            if out.len() >= REASON_MAX {
                return out;
            }
            let c = match c {
                ' '..='~' => c,
                c if c.is_whitespace() => ' ',
                _ => '?',
            };
            if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
                out.push(c);
            }
        }
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

/// The text of the `554 5.7.1` given to a listed client.
pub fn reply_text(ip: IpAddr, zone: &str, code: Ipv4Addr, reason: &str) -> String {
    if reason.is_empty() {
        format!("Service unavailable; client [{ip}] blocked using {zone} ({code})")
    } else {
        format!("Service unavailable; client [{ip}] blocked using {zone}; {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn query_names_follow_rfc_5782() {
        assert_eq!(
            query_name(ip("192.0.2.99"), "bl.example.").unwrap(),
            "99.2.0.192.bl.example"
        );
        assert_eq!(
            query_name(ip("::ffff:192.0.2.99"), "bl.example").unwrap(),
            "99.2.0.192.bl.example"
        );
        // RFC 5782 §2.4's example.
        assert_eq!(
            query_name(ip("2001:db8:1:2:3:4:567:89ab"), "ugly.example.com").unwrap(),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
        assert_eq!(query_name(ip("192.0.2.1"), " "), None);
    }

    #[test]
    fn answers_mean_listed_not_listed_or_an_error_that_fails_open() {
        assert_eq!(interpret(&[]), Listing::NotListed);
        assert_eq!(
            interpret(&[ip("127.0.0.2"), ip("127.0.0.4")]),
            Listing::Listed("127.0.0.2".parse().unwrap())
        );
        assert!(matches!(
            interpret(&[ip("127.255.255.254")]),
            Listing::ListError(_)
        ));
        assert!(matches!(
            interpret(&[ip("192.0.2.1")]),
            Listing::ListError(_)
        ));
    }

    #[test]
    fn reasons_cannot_inject_into_the_reply() {
        let r = clean_reason(&[
            "Listed\r\n250 OK".into(),
            "see  https://bl.example/q?1.2.3.4\u{7}é".into(),
        ]);
        assert_eq!(r, "Listed 250 OK see https://bl.example/q?1.2.3.4??");
        assert!(clean_reason(&["x".repeat(1000)]).len() <= REASON_MAX);
        let text = reply_text(ip("127.0.0.2"), "bl.test", "127.0.0.2".parse().unwrap(), &r);
        assert!(text.contains("bl.test") && !text.contains('\n'));
    }
}
