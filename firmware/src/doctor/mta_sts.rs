//! MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): the `_mta-sts` TXT record, the policy file
//! as fetched over HTTPS, and whether its `mx:` patterns cover every MX host — the backup
//! included, or senders that enforce the policy refuse to hand the silo any mail.
//!
//! Parsing is pure and bounded: the I/O layer hands over the TXT strings and the raw HTTP
//! response (at most [`RESPONSE_MAX`] bytes); nothing here panics on any input.

use super::facts::DomainFacts;
use super::report::Check;
use crate::relay::nexthop::DnsError;

/// Largest policy body (RFC 8461 §3.2: senders may refuse more than 64 KiB).
pub const POLICY_MAX: usize = 64 * 1024;
/// Largest HTTP response read: the body plus room for the status line and headers.
pub const RESPONSE_MAX: usize = POLICY_MAX + 8 * 1024;
/// Where the policy lives under `https://mta-sts.DOMAIN` (RFC 8461 §3.2).
pub const WELL_KNOWN: &str = "/.well-known/mta-sts.txt";
/// Most `mx:` patterns kept from one policy.
const PATTERNS_MAX: usize = 64;

/// True when one of the `_mta-sts` TXT strings announces a policy (`v=STSv1`), so the
/// policy file should be fetched.
pub fn announced(txt: &[String]) -> bool {
    txt.iter().any(|t| is_sts_record(t))
}

fn is_sts_record(t: &str) -> bool {
    t.trim_start().starts_with("v=STSv1")
}

/// What the `_mta-sts` TXT records say (RFC 8461 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// No `v=STSv1` record: the domain has no policy.
    None,
    /// One valid record with this id.
    Id(String),
    /// Records senders ignore, and why.
    Invalid(String),
}

/// Reads the TXT strings of `_mta-sts.DOMAIN`.
pub fn announcement(txt: &[String]) -> Announcement {
    let records: Vec<&String> = txt.iter().filter(|t| is_sts_record(t)).collect();
    let record = match records.as_slice() {
        [] => return Announcement::None,
        [one] => one,
        _ => {
            return Announcement::Invalid(format!(
                "{} v=STSv1 records (senders ignore them all; RFC 8461 §3.1 allows one)",
                records.len()
            ));
        }
    };
    let mut id = None;
    for field in record.split(';').map(str::trim).filter(|f| !f.is_empty()) {
        match field.split_once('=') {
            Some(("v", "STSv1")) => {}
            Some(("id", v)) => id = Some(v.trim()),
            Some(_) => {} // Unknown fields are allowed (RFC 8461 §3.1).
            None => return Announcement::Invalid(format!("'{field}' is not key=value")),
        }
    }
    match id {
        Some(v) if (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Announcement::Id(v.to_string())
        }
        Some(v) => Announcement::Invalid(format!("id '{v}' is not 1 to 32 letters and digits")),
        None => Announcement::Invalid("the record has no id".into()),
    }
}

/// A policy's mode (RFC 8461 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Senders refuse MX hosts the policy does not list.
    Enforce,
    /// Senders only report.
    Testing,
    /// The policy is withdrawn.
    None,
}

/// A parsed policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `mode:`.
    pub mode: Mode,
    /// `mx:` patterns, lowercase.
    pub mx: Vec<String>,
    /// `max_age:` in seconds.
    pub max_age: u64,
}

/// Reads an HTTP/1.x response to the policy request: status 200, then the body as a
/// policy (RFC 8461 §3.2). Redirects are not followed (§3.3), so a 3xx is an error too.
pub fn parse_response(raw: &[u8]) -> Result<Policy, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("the HTTP response has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .ok_or_else(|| format!("not an HTTP response: '{}'", clip(status)))?;
    if code != "200" {
        return Err(format!(
            "the server answered '{}' (needs 200; redirects are not followed)",
            clip(status)
        ));
    }
    let plain = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("content-type")
                && v.trim().to_ascii_lowercase().starts_with("text/plain")
        })
    });
    if !plain {
        return Err("the policy is not served as Content-Type text/plain".into());
    }
    let body = &raw[head_end + 4..];
    if body.len() > POLICY_MAX {
        return Err(format!("the policy is larger than {POLICY_MAX} bytes"));
    }
    parse_policy(&String::from_utf8_lossy(body))
}

/// Reads a policy body: `key: value` lines (RFC 8461 §3.2).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let (mut version, mut mode, mut max_age) = (None, None, None);
    let mut mx = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("the policy line '{}' is not 'key: value'", clip(line)))?;
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value == "STSv1"),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => {
                        return Err(format!(
                            "mode '{}' is not enforce, testing or none",
                            clip(other)
                        ));
                    }
                })
            }
            "max_age" => {
                max_age = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s <= 31_557_600)
                        .ok_or_else(|| {
                            format!("max_age '{}' is not 0 to 31557600 seconds", clip(value))
                        })?,
                )
            }
            "mx" if mx.len() < PATTERNS_MAX => {
                mx.push(value.trim_end_matches('.').to_ascii_lowercase())
            }
            _ => {} // Unknown keys are ignored (§3.2); patterns past the cap too.
        }
    }
    match (version, mode, max_age) {
        (Some(true), Some(mode), Some(max_age)) => {
            if mode != Mode::None && mx.is_empty() {
                return Err("the policy has no mx: line".into());
            }
            Ok(Policy { mode, mx, max_age })
        }
        (Some(false), ..) => Err("version is not STSv1".into()),
        (None, ..) => Err("the policy has no version: STSv1 line".into()),
        (_, None, _) => Err("the policy has no mode: line".into()),
        (_, _, None) => Err("the policy has no max_age: line".into()),
    }
}

/// True when `host` matches the `mx:` pattern (RFC 8461 §4.1): equal, or `*.rest` with
/// exactly one more label in front of `rest`.
pub fn matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => host == pattern,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most 80 characters of peer text in a message.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The MTA-STS and TLS-RPT checks of one domain.
pub fn domain(d: &DomainFacts, out: &mut Vec<Check>) {
    let dom = &d.domain;
    let url = format!("https://mta-sts.{dom}{WELL_KNOWN}");
    match &d.mta_sts_txt {
        Err(DnsError::Temporary) => out.push(Check::fail(
            "mta-sts",
            format!(
                "the MTA-STS record _mta-sts.{dom} could not be looked up (no DNS server answered)"
            ),
            "check relay.dns-servers and the internet link, then run the check again",
        )),
        Err(DnsError::NotFound) => out.push(Check::pass(
            "mta-sts",
            format!("{dom} publishes no MTA-STS policy (optional)"),
        )),
        Ok(txt) => match announcement(txt) {
            Announcement::None => out.push(Check::pass(
                "mta-sts",
                format!("{dom} publishes no MTA-STS policy (optional)"),
            )),
            Announcement::Invalid(why) => out.push(Check::fail(
                "mta-sts",
                format!("the MTA-STS record _mta-sts.{dom} is not valid: {why}"),
                format!("publish one TXT record `_mta-sts.{dom}. IN TXT \"v=STSv1; id=20250101\"`"),
            )),
            Announcement::Id(_) => policy(d, &url, out),
        },
    }
    match &d.tls_rpt_txt {
        Ok(t) if t.iter().any(|r| r.trim_start().starts_with("v=TLSRPTv1")) => out.push(
            Check::pass("tls-rpt", format!("{dom} has a TLS-RPT record")),
        ),
        Err(DnsError::Temporary) => out.push(Check::warn(
            "tls-rpt",
            format!("the TLS-RPT record _smtp._tls.{dom} could not be looked up (no DNS server answered)"),
            "check relay.dns-servers and the internet link, then run the check again",
        )),
        _ => out.push(Check::warn(
            "tls-rpt",
            format!("{dom} has no TLS-RPT record: nobody is told when senders fail to reach its MX hosts over TLS"),
            format!("add `_smtp._tls.{dom}. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{dom}\"`"),
        )),
    }
}

fn policy(d: &DomainFacts, url: &str, out: &mut Vec<Check>) {
    let dom = &d.domain;
    let fetched = match &d.policy {
        Some(Ok(raw)) => parse_response(raw),
        Some(Err(e)) => Err(format!("cannot fetch it: {e}")),
        None => Err("it was not fetched".into()),
    };
    let p = match fetched {
        Ok(p) => p,
        Err(why) => {
            out.push(Check::fail(
                "mta-sts",
                format!("{dom} announces MTA-STS, but the policy at {url} is unusable: {why}; senders that enforce MTA-STS may hold its mail"),
                format!("serve the policy at {url} over HTTPS with a valid certificate for mta-sts.{dom} (as text/plain), or remove the _mta-sts.{dom} TXT record"),
            ));
            return;
        }
    };
    if p.mode == Mode::None {
        out.push(Check::pass(
            "mta-sts",
            format!("the MTA-STS policy of {dom} is withdrawn (mode none)"),
        ));
        return;
    }
    let hosts: Vec<&str> = match &d.mx {
        Ok(r) => r.iter().map(|r| r.exchange.as_str()).collect(),
        Err(_) => Vec::new(),
    };
    let uncovered: Vec<&str> = hosts
        .iter()
        .copied()
        .filter(|h| !p.mx.iter().any(|pat| matches(pat, h)))
        .collect();
    if uncovered.is_empty() {
        out.push(Check::pass(
            "mta-sts",
            format!(
                "the MTA-STS policy of {dom} ({}) covers every MX host",
                mode_name(p.mode)
            ),
        ));
        return;
    }
    let text = format!(
        "the MTA-STS policy of {dom} ({}) does not list the MX host{} {}: senders that enforce MTA-STS will not deliver there",
        mode_name(p.mode),
        if uncovered.len() == 1 { "" } else { "s" },
        uncovered.join(", ")
    );
    let lines: Vec<String> = uncovered.iter().map(|h| format!("`mx: {h}`")).collect();
    let fix = format!(
        "add {} to {url}, then change the id in the _mta-sts.{dom} TXT record so senders fetch the policy again",
        lines.join(" and ")
    );
    out.push(match p.mode {
        Mode::Testing => Check::warn("mta-sts", text, fix),
        _ => Check::fail("mta-sts", text, fix),
    });
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "mode enforce",
        Mode::Testing => "mode testing",
        Mode::None => "mode none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::report::Status;
    use crate::relay::nexthop::MxRecord;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn txt_records_announce_one_policy() {
        assert_eq!(announcement(&s(&["v=spf1 -all"])), Announcement::None);
        assert_eq!(
            announcement(&s(&["v=STSv1; id=20250101;"])),
            Announcement::Id("20250101".into())
        );
        assert_eq!(
            announcement(&s(&["v=STSv1;id=abc; ext=1"])),
            Announcement::Id("abc".into())
        );
        for bad in [
            s(&["v=STSv1;"]),
            s(&["v=STSv1; id=has-dash"]),
            s(&["v=STSv1; id=a", "v=STSv1; id=b"]),
            s(&["v=STSv1; nonsense"]),
        ] {
            assert!(
                matches!(announcement(&bad), Announcement::Invalid(_)),
                "{bad:?}"
            );
        }
        assert!(announced(&s(&["x", "v=STSv1; id=1"])));
    }

    const GOOD: &str = "version: STSv1\r\nmode: enforce\r\nmx: edge.office.test\r\nmx: *.provider.test\r\nmax_age: 86400\r\n";

    fn response(status: &str, ctype: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.0 {status}\r\nServer: x\r\nContent-Type: {ctype}\r\n\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn a_policy_is_read_from_a_200_text_plain_response() {
        let p = parse_response(&response("200 OK", "text/plain; charset=utf-8", GOOD)).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["edge.office.test", "*.provider.test"]);
        assert_eq!(p.max_age, 86400);
        let lf = parse_policy("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 1\n").unwrap();
        assert_eq!(lf.mode, Mode::Testing);
        for (raw, want) in [
            (
                response("301 Moved", "text/plain", GOOD),
                "'HTTP/1.0 301 Moved'",
            ),
            (response("200 OK", "text/html", GOOD), "text/plain"),
            (b"HTTP/1.0 200 OK\r\n".to_vec(), "no end of headers"),
            (b"SSH-2.0-x\r\n\r\n".to_vec(), "not an HTTP response"),
            (
                response("200 OK", "text/plain", "mode: enforce\nmx: a\nmax_age: 1\n"),
                "no version",
            ),
            (
                response("200 OK", "text/plain", "version: STSv1\nmode: strict\n"),
                "mode 'strict'",
            ),
            (
                response(
                    "200 OK",
                    "text/plain",
                    "version: STSv1\nmode: enforce\nmax_age: 9\n",
                ),
                "no mx",
            ),
            (
                response(
                    "200 OK",
                    "text/plain",
                    "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n",
                ),
                "max_age",
            ),
        ] {
            let e = parse_response(&raw).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let huge = response("200 OK", "text/plain", &"x".repeat(POLICY_MAX + 1));
        assert!(parse_response(&huge).unwrap_err().contains("larger than"));
    }

    #[test]
    fn mx_patterns_match_exactly_or_one_label_of_wildcard() {
        assert!(matches("mail.example.com", "Mail.Example.com."));
        assert!(matches("*.example.com", "mx1.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", "a.b.example.com"));
        assert!(!matches("mail.example.com", "mail.example.net"));
    }

    fn domain_facts(policy_body: Option<&str>) -> DomainFacts {
        DomainFacts {
            domain: "office.test".into(),
            mx: Ok(vec![
                MxRecord::new(10, "edge.office.test").unwrap(),
                MxRecord::new(20, "silo1.provider.test").unwrap(),
                MxRecord::new(30, "backup.elsewhere.test").unwrap(),
            ]),
            hosts: Vec::new(),
            mta_sts_txt: Ok(if policy_body.is_some() {
                s(&["v=STSv1; id=7"])
            } else {
                vec![]
            }),
            policy: policy_body.map(|b| Ok(response("200 OK", "text/plain", b))),
            tls_rpt_txt: Ok(s(&["v=TLSRPTv1; rua=mailto:r@office.test"])),
        }
    }

    fn run(d: &DomainFacts) -> Vec<Check> {
        let mut out = Vec::new();
        domain(d, &mut out);
        out
    }

    #[test]
    fn every_mx_host_must_be_covered_by_the_policy() {
        let full = GOOD.replace("max_age", "mx: backup.elsewhere.test\nmax_age");
        let ok = run(&domain_facts(Some(&full)));
        assert!(ok.iter().all(|c| c.status == Status::Pass), "{ok:#?}");
        let missing = run(&domain_facts(Some(GOOD)));
        assert_eq!(missing[0].status, Status::Fail);
        assert!(
            missing[0]
                .text
                .contains("does not list the MX host backup.elsewhere.test"),
            "{}",
            missing[0].text
        );
        assert!(missing[0].fix.as_deref().unwrap().starts_with(
            "add `mx: backup.elsewhere.test` to https://mta-sts.office.test/.well-known/mta-sts.txt"
        ));
        let testing = GOOD.replace("enforce", "testing");
        assert_eq!(run(&domain_facts(Some(&testing)))[0].status, Status::Warn);
        let none = "version: STSv1\nmode: none\nmax_age: 1\n";
        assert_eq!(run(&domain_facts(Some(none)))[0].status, Status::Pass);
    }

    #[test]
    fn no_policy_passes_an_unreachable_one_fails_and_tls_rpt_warns() {
        let mut d = domain_facts(None);
        d.tls_rpt_txt = Err(DnsError::NotFound);
        let c = run(&d);
        assert_eq!((c[0].status, c[1].status), (Status::Pass, Status::Warn));
        assert!(
            c[1].fix
                .as_deref()
                .unwrap()
                .contains("_smtp._tls.office.test. IN TXT")
        );
        let mut d = domain_facts(Some(GOOD));
        d.policy = Some(Err("certificate not trusted".into()));
        let c = run(&d);
        assert_eq!(c[0].status, Status::Fail);
        assert!(
            c[0].text
                .contains("cannot fetch it: certificate not trusted")
        );
    }
}
