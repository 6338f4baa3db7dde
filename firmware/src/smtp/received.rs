//! The `Received:` trace header we prepend (RFC 5321 §4.4, RFC 5322 §3.6.7).
//!
//! Form, folded to stay under 78 columns:
//!
//! ```text
//! Received: from client.example ([192.0.2.1])
//!     by mx.example (mailbag) with ESMTPS;
//!     Tue, 24 Nov 2026 21:00:00 +0000
//! ```
//!
//! (continuation lines start with a tab).
//!
//! The HELO name is client-supplied; the command parser already limited it to host-name and
//! address-literal characters, so it cannot end the header, forge a comment or add a `;`.

use core::fmt::{self, Write as _};
use std::net::IpAddr;

use super::limits::RECEIVED_MAX;

/// The `with` protocol keyword (RFC 3848, RFC 6531 §3.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HELO.
    Smtp,
    /// EHLO.
    Esmtp,
    /// EHLO over STARTTLS.
    Esmtps,
    /// EHLO with SMTPUTF8.
    Utf8Smtp,
    /// EHLO with SMTPUTF8 over STARTTLS.
    Utf8Smtps,
}

impl Protocol {
    /// The keyword for a session that used `ehlo`, `tls` and `smtputf8`.
    pub fn of(ehlo: bool, tls: bool, smtputf8: bool) -> Self {
        match (ehlo, tls, smtputf8) {
            (false, _, _) => Self::Smtp,
            (true, false, false) => Self::Esmtp,
            (true, true, false) => Self::Esmtps,
            (true, false, true) => Self::Utf8Smtp,
            (true, true, true) => Self::Utf8Smtps,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Smtp => "SMTP",
            Self::Esmtp => "ESMTP",
            Self::Esmtps => "ESMTPS",
            Self::Utf8Smtp => "UTF8SMTP",
            Self::Utf8Smtps => "UTF8SMTPS",
        })
    }
}

/// The header text, CRLF-terminated, ready to be written before the content.
pub type ReceivedHeader = heapless::String<RECEIVED_MAX>;

/// Build the header. `unix_seconds` is wall-clock time of receipt.
pub fn received_header(
    helo: &str,
    peer: IpAddr,
    hostname: &str,
    protocol: Protocol,
    unix_seconds: u64,
) -> ReceivedHeader {
    let mut out = ReceivedHeader::new();
    let literal = match peer {
        IpAddr::V4(a) => format!("[{a}]"),
        IpAddr::V6(a) => format!("[IPv6:{a}]"),
    };
    // Both names are bounded by DOMAIN_MAX, so this always fits RECEIVED_MAX.
    let _ = write!(
        out,
        "Received: from {helo} ({literal})\r\n\tby {hostname} (mailbag) with {protocol};\r\n\t{}\r\n",
        Rfc5322Date(unix_seconds)
    );
    out
}

/// An RFC 5322 §3.3 date-time in UTC: `Tue, 24 Nov 2026 21:00:00 +0000`.
pub struct Rfc5322Date(pub u64);

impl fmt::Display for Rfc5322Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{}, {day} {} {year} {:02}:{:02}:{:02} +0000",
            DAYS[(days % 7) as usize],
            MONTHS[(month - 1) as usize],
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31); Howard Hinnant's algorithm.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_instants() {
        assert_eq!(Rfc5322Date(0).to_string(), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            Rfc5322Date(951_782_400).to_string(),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            Rfc5322Date(1_795_554_000).to_string(),
            "Tue, 24 Nov 2026 21:00:00 +0000"
        );
    }

    #[test]
    fn header_has_rfc_5321_trace_form() {
        let h = received_header(
            "client.example",
            "192.0.2.1".parse().unwrap(),
            "mx.example",
            Protocol::of(true, true, false),
            1_795_554_000,
        );
        assert_eq!(
            h.as_str(),
            "Received: from client.example ([192.0.2.1])\r\n\tby mx.example (mailbag) with ESMTPS;\r\n\tTue, 24 Nov 2026 21:00:00 +0000\r\n"
        );
        let v6 = received_header("c", "2001:db8::1".parse().unwrap(), "mx", Protocol::Smtp, 0);
        assert!(v6.contains("([IPv6:2001:db8::1])") && v6.contains("with SMTP;"));
    }
}
