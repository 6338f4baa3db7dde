//! Heuristic spam score: cheap native rules on the envelope and the top-level headers,
//! each with a fixed weight in points. Sans-IO: the host gathers the [`Facts`] (the
//! sender domain's DNS, scoring DNSBL hits, the header facts from
//! [`super::content::BodyScan`]) and asks [`score`].
//!
//! | rule | points | fires when |
//! |------|-------:|------------|
//! | `HELO_IP_LITERAL` | 3 | HELO/EHLO names an address literal (`[192.0.2.1]`) |
//! | `HELO_UNQUALIFIED` | 2 | HELO/EHLO names a host without a dot (`localhost`, `PC01`) |
//! | `MISSING_MESSAGE_ID` | 2 | no `Message-ID:` header (RFC 5322 §3.6.4 asks for one) |
//! | `MISSING_DATE` | 2 | no `Date:` header (RFC 5322 §3.6 requires one) |
//! | `DATE_INVALID` | 1 | a `Date:` that does not parse as RFC 5322 §3.3 |
//! | `DATE_IN_FUTURE` | 2 | `Date:` more than 24 h ahead of our clock |
//! | `FROM_OUR_DOMAIN` | 3 | the From address or the envelope sender is in one of our domains, from a client that is not trusted |
//! | `DISPLAY_NAME_SPOOF` | 3 | the From display name shows an address or a name of one of our domains, the address is elsewhere |
//! | `SENDER_NO_DNS` | 3 | the envelope sender's domain has neither MX nor A/AAAA (NXDOMAIN or empty) |
//! | `DNSBL_LISTED` | 3 | per scoring list (`policy.dnsbl-score`) that lists the client |
//!
//! A message scoring `policy.spam-flag-score` (default 5) or more gets `X-Spam-Flag: YES`
//! at delivery; `policy.spam-reject-score` (0: off) refuses it with `554 5.7.1`.

use std::fmt::Write as _;

use super::content::HeaderFacts;

/// One rule and its weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Name as shown in `X-Spam-Status` and the log.
    pub name: &'static str,
    /// Points added when it fires.
    pub points: u16,
}

/// Every rule, as in the module table.
pub const RULES: &[Rule] = &[
    HELO_IP_LITERAL,
    HELO_UNQUALIFIED,
    MISSING_MESSAGE_ID,
    MISSING_DATE,
    DATE_INVALID,
    DATE_IN_FUTURE,
    FROM_OUR_DOMAIN,
    DISPLAY_NAME_SPOOF,
    SENDER_NO_DNS,
    DNSBL_LISTED,
];

const fn rule(name: &'static str, points: u16) -> Rule {
    Rule { name, points }
}

/// HELO is an address literal.
pub const HELO_IP_LITERAL: Rule = rule("HELO_IP_LITERAL", 3);
/// HELO has no dot.
pub const HELO_UNQUALIFIED: Rule = rule("HELO_UNQUALIFIED", 2);
/// No Message-ID.
pub const MISSING_MESSAGE_ID: Rule = rule("MISSING_MESSAGE_ID", 2);
/// No Date.
pub const MISSING_DATE: Rule = rule("MISSING_DATE", 2);
/// Date unreadable.
pub const DATE_INVALID: Rule = rule("DATE_INVALID", 1);
/// Date far ahead.
pub const DATE_IN_FUTURE: Rule = rule("DATE_IN_FUTURE", 2);
/// Sender or From in our own domains from outside.
pub const FROM_OUR_DOMAIN: Rule = rule("FROM_OUR_DOMAIN", 3);
/// Display name pretends to be us.
pub const DISPLAY_NAME_SPOOF: Rule = rule("DISPLAY_NAME_SPOOF", 3);
/// Sender domain without MX or address.
pub const SENDER_NO_DNS: Rule = rule("SENDER_NO_DNS", 3);
/// A scoring blocklist lists the client.
pub const DNSBL_LISTED: Rule = rule("DNSBL_LISTED", 3);

/// How far ahead a Date may be before it counts as in the future.
pub const FUTURE_SLACK_SECS: u64 = 24 * 3600;

/// What DNS said about the envelope sender's domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SenderDns {
    /// MX or an address exists (or the sender is `<>`).
    #[default]
    Resolves,
    /// NXDOMAIN, or neither MX nor A/AAAA.
    Nothing,
    /// The lookup failed or was not made: no points either way.
    Unknown,
}

/// Everything the rules look at.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The HELO/EHLO argument.
    pub helo: &'a str,
    /// Envelope sender without brackets (empty: `<>`).
    pub sender: &'a str,
    /// The client is in `policy.trusted`.
    pub trusted: bool,
    /// The sender domain's DNS.
    pub sender_dns: SenderDns,
    /// Top-level header facts.
    pub headers: &'a HeaderFacts,
    /// Our accepted domains, lower-case.
    pub our_domains: &'a [String],
    /// Scoring lists that list the client.
    pub dnsbl_hits: &'a [String],
    /// Wall-clock seconds.
    pub now_unix: u64,
}

/// The result: points and the rules that fired, in table order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Score {
    /// Sum of the fired rules' points.
    pub points: u16,
    /// The fired rules (a list rule once per listing zone).
    pub hits: Vec<&'static str>,
}

impl Score {
    fn add(&mut self, rule: Rule) {
        self.points = self.points.saturating_add(rule.points);
        self.hits.push(rule.name);
    }

    /// The fired rules, comma-separated, for `X-Spam-Status` and the record.
    pub fn rules(&self) -> String {
        self.hits.join(",")
    }
}

/// Runs every rule.
pub fn score(f: &Facts<'_>) -> Score {
    let mut s = Score::default();
    let helo = f.helo.trim();
    if helo.starts_with('[') {
        s.add(HELO_IP_LITERAL);
    } else if !helo.contains('.') {
        s.add(HELO_UNQUALIFIED);
    }
    if !f.headers.message_id {
        s.add(MISSING_MESSAGE_ID);
    }
    match f.headers.date.as_deref().map(parse_date) {
        None => s.add(MISSING_DATE),
        Some(None) => s.add(DATE_INVALID),
        Some(Some(t)) if t > f.now_unix.saturating_add(FUTURE_SLACK_SECS) => s.add(DATE_IN_FUTURE),
        Some(Some(_)) => {}
    }
    let ours = |domain: &str| {
        let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        f.our_domains.contains(&d)
    };
    let (display, from_addr) = f
        .headers
        .from
        .as_deref()
        .map(split_from)
        .unwrap_or_default();
    let from_domain = from_addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let sender_domain = f.sender.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !f.trusted && ((!from_domain.is_empty() && ours(from_domain)) || ours(sender_domain)) {
        s.add(FROM_OUR_DOMAIN);
    }
    let display = display.to_ascii_lowercase();
    if !display.is_empty()
        && !ours(from_domain)
        && f.our_domains.iter().any(|o| display.contains(o.as_str()))
    {
        s.add(DISPLAY_NAME_SPOOF);
    }
    if f.sender_dns == SenderDns::Nothing {
        s.add(SENDER_NO_DNS);
    }
    for _ in f.dnsbl_hits {
        s.add(DNSBL_LISTED);
    }
    s
}

/// `"Name" <a@b>` → (`Name`, `a@b`); `a@b` → (``, `a@b`).
fn split_from(value: &str) -> (String, String) {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(l), Some(r)) if l < r => {
            let display = value[..l].trim().trim_matches('"').trim();
            (
                mailbag_mime::decode_words(display),
                value[l + 1..r].trim().to_owned(),
            )
        }
        _ => (String::new(), value.trim().to_owned()),
    }
}

/// An RFC 5322 §3.3 date (`[Day, ]DD Mon YYYY HH:MM[:SS] +ZZZZ`, obsolete zone names
/// and comments tolerated) as Unix seconds.
pub fn parse_date(text: &str) -> Option<u64> {
    let text = text.split('(').next()?.trim();
    let text = match text.split_once(',') {
        Some((_, rest)) => rest,
        None => text,
    };
    let mut it = text.split_whitespace();
    let day: u64 = it.next()?.parse().ok()?;
    let month = it.next()?.to_ascii_lowercase();
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS.iter().position(|m| month.starts_with(m))? as u64 + 1;
    let mut year: u64 = it.next()?.parse().ok()?;
    if year < 50 {
        year += 2000;
    } else if year < 1000 {
        year += 1900;
    }
    let mut hms = it.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next().map_or(Some(0), |s| s.parse().ok())?;
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year > 9999 {
        return None;
    }
    let zone = it.next().unwrap_or("+0000");
    let offset: i64 = match zone.as_bytes().first() {
        Some(b'+' | b'-') if zone.len() == 5 => {
            let v: i64 = zone[1..].parse().ok()?;
            let secs = (v / 100) * 3600 + (v % 100) * 60;
            if zone.starts_with('-') { -secs } else { secs }
        }
        _ => 0,
    };
    let days = days_from_civil(year, month, day)?;
    let local = days * 86_400 + h * 3600 + m * 60 + sec;
    u64::try_from(i64::try_from(local).ok()? - offset).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// The `X-Spam-*` lines for a verdict, each ending in CRLF (empty when scoring was off).
pub fn spam_headers(points: u16, threshold: u16, rules: &str) -> String {
    if threshold == 0 {
        return String::new();
    }
    let flagged = points >= threshold;
    let mut out = String::new();
    if flagged {
        out.push_str("X-Spam-Flag: YES\r\n");
    }
    let _ = write!(
        out,
        "X-Spam-Score: {points}\r\nX-Spam-Status: {}, score={points} required={threshold} tests={}\r\n",
        if flagged { "Yes" } else { "No" },
        if rules.is_empty() { "none" } else { rules },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_554_000; // Tue, 24 Nov 2026 21:00:00 +0000

    fn facts<'a>(helo: &'a str, headers: &'a HeaderFacts, domains: &'a [String]) -> Facts<'a> {
        Facts {
            helo,
            sender: "a@sender.example",
            trusted: false,
            sender_dns: SenderDns::Resolves,
            headers,
            our_domains: domains,
            dnsbl_hits: &[],
            now_unix: NOW,
        }
    }

    fn good_headers() -> HeaderFacts {
        HeaderFacts {
            message_id: true,
            date: Some("Tue, 24 Nov 2026 20:59:00 +0000".into()),
            from: Some("Alice <a@sender.example>".into()),
        }
    }

    #[test]
    fn a_clean_message_scores_nothing() {
        let h = good_headers();
        let d = vec!["office.test".to_string()];
        assert_eq!(
            score(&facts("mail.sender.example", &h, &d)),
            Score::default()
        );
    }

    #[test]
    fn an_ip_literal_helo_without_message_id_reaches_the_default_flag() {
        let h = HeaderFacts {
            message_id: false,
            ..good_headers()
        };
        let d = vec![];
        let s = score(&facts("[192.0.2.1]", &h, &d));
        assert_eq!(s.hits, ["HELO_IP_LITERAL", "MISSING_MESSAGE_ID"]);
        assert_eq!(s.points, 5);
        assert_eq!(
            spam_headers(s.points, 5, &s.rules()),
            "X-Spam-Flag: YES\r\nX-Spam-Score: 5\r\nX-Spam-Status: Yes, score=5 required=5 tests=HELO_IP_LITERAL,MISSING_MESSAGE_ID\r\n"
        );
        assert_eq!(
            spam_headers(0, 5, ""),
            "X-Spam-Score: 0\r\nX-Spam-Status: No, score=0 required=5 tests=none\r\n"
        );
        assert_eq!(spam_headers(9, 0, "X"), "");
    }

    #[test]
    fn spoofing_our_domain_counts_unless_the_client_is_trusted() {
        let d = vec!["office.test".to_string()];
        let h = HeaderFacts {
            from: Some("\"ceo@office.test\" <x@evil.example>".into()),
            ..good_headers()
        };
        assert_eq!(
            score(&facts("mx.evil.example", &h, &d)).hits,
            ["DISPLAY_NAME_SPOOF"]
        );
        let h = HeaderFacts {
            from: Some("CEO <ceo@Office.Test>".into()),
            ..good_headers()
        };
        let mut f = facts("mx.evil.example", &h, &d);
        assert_eq!(score(&f).hits, ["FROM_OUR_DOMAIN"]);
        f.trusted = true;
        assert!(score(&f).hits.is_empty());
    }

    #[test]
    fn dates_sender_dns_and_lists() {
        let d = vec![];
        for (date, want) in [
            (None, Some("MISSING_DATE")),
            (Some("yesterday"), Some("DATE_INVALID")),
            (
                Some("Fri, 1 Jan 2027 00:00:00 +0000"),
                Some("DATE_IN_FUTURE"),
            ),
            (Some("25 Nov 2026 20:00:00 +0000"), None),
            (Some("Tue, 24 Nov 26 16:00 -0500 (EST)"), None),
        ] {
            let h = HeaderFacts {
                date: date.map(Into::into),
                ..good_headers()
            };
            let hits = score(&facts("mx.example", &h, &d)).hits;
            assert_eq!(hits.first().copied(), want, "{date:?}");
        }
        let h = good_headers();
        let hits = vec!["a.test".to_string(), "b.test".to_string()];
        let mut f = facts("mx.example", &h, &d);
        f.sender_dns = SenderDns::Nothing;
        f.dnsbl_hits = &hits;
        let s = score(&f);
        assert_eq!(s.hits, ["SENDER_NO_DNS", "DNSBL_LISTED", "DNSBL_LISTED"]);
        assert_eq!(s.points, 9);
    }

    #[test]
    fn rfc_5322_dates_parse_to_unix_seconds() {
        assert_eq!(parse_date("Tue, 24 Nov 2026 21:00:00 +0000"), Some(NOW));
        assert_eq!(parse_date("24 Nov 2026 22:00:00 +0100"), Some(NOW));
        assert_eq!(parse_date("Thu, 1 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_date("32 Jan 2026 00:00 +0000"), None);
        assert_eq!(parse_date(""), None);
    }
}
