//! [`Protection`]: the protection settings of `[policy]` and `[scan]`, parsed once
//! (`check-config` reports the same errors, each naming its key), and the per-domain
//! rules that switch checks off or set tiers for one domain.

use std::time::Duration;

use super::clamd::ClamdAddr;
use super::client::Trusted;
use super::config::{PolicyConfig, ScanConfig};
use super::content::BlockList;
use super::throttle::GuessLimits;

/// Most per-domain rules.
pub const DOMAIN_RULES_MAX: usize = 256;

/// When a domain's mail is accepted from untrusted clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AcceptWhen {
    /// Always (the edge in front of the primary, and the default).
    #[default]
    Always,
    /// Only while the domain's next hop does not answer (the silo as a backup MX that is
    /// no back door): otherwise RCPT gets `450 4.7.1`.
    NextHopDown,
}

/// One domain's settings after defaults were applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPolicy {
    /// See [`AcceptWhen`].
    pub accept_when: AcceptWhen,
    /// Largest message (bytes) for this domain; `None`: `smtp.max-message-size`.
    pub max_message_size: Option<u64>,
    /// Most bytes held for this domain (counted by a message's first recipient's
    /// domain); `None`: no tier.
    pub max_bytes: Option<u64>,
    /// Recipient verification against the next hop.
    pub verify: bool,
    /// Attachment blocking.
    pub attachments: bool,
    /// Virus scanning.
    pub scan: bool,
    /// Spam scoring.
    pub spam: bool,
}

/// What to do with a recipient the next hop could not be asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhileDown {
    /// Accept it.
    Accept,
    /// `450 4.4.3`: the sender retries.
    Defer,
}

/// What to do with an infected message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Infected {
    /// `554 5.7.1` naming the virus.
    Reject,
    /// Accept; deliver a notice with the original attached.
    Repackage,
}

/// The virus scanner's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// clamd.
    pub addr: ClamdAddr,
    /// Infected messages.
    pub infected: Infected,
    /// When clamd fails: true accepts the message unscanned (logged), false says 451.
    pub fail_open: bool,
    /// The whole scan's time limit.
    pub timeout: Duration,
}

/// Every protection setting, parsed.
#[derive(Clone, Debug)]
pub struct Protection {
    /// Never checked.
    pub trusted: Trusted,
    /// Blocking lists.
    pub dnsbl: Vec<String>,
    /// Scoring lists.
    pub dnsbl_score: Vec<String>,
    /// Time for all lists together.
    pub dnsbl_timeout: Duration,
    /// Verification on for domains that do not turn it off.
    pub verify: bool,
    /// "Exists" kept this long (seconds).
    pub verify_positive_ttl: u64,
    /// "Does not exist" kept this long (seconds).
    pub verify_negative_ttl: u64,
    /// Unknown recipients while the next hop is down.
    pub verify_while_down: WhileDown,
    /// Refused attachment names.
    pub block: BlockList,
    /// Flag score (0: scoring off).
    pub spam_flag: u16,
    /// Reject score (0: never).
    pub spam_reject: u16,
    /// Dictionary-attack limits.
    pub guesses: GuessLimits,
    /// Delay before each 450 of a cooling-down client.
    pub guess_delay: Duration,
    /// Sessions per client.
    pub sessions_per_client: u32,
    /// Stress-mode idle timeout (None: off).
    pub stress_idle: Option<Duration>,
    /// clamd, when configured.
    pub scan: Option<Scan>,
    rules: Vec<(String, DomainRule)>,
    /// Domains with a static `policy.recipients` list: it decides, nobody is asked.
    listed: Vec<String>,
}

/// A `policy.domain-rules` entry's settings (unset keys take the global value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct DomainRule {
    accept_when: Option<AcceptWhen>,
    max_message_size: Option<u64>,
    max_bytes: Option<u64>,
    verify: Option<bool>,
    attachments: Option<bool>,
    scan: Option<bool>,
    spam: Option<bool>,
}

/// One invalid setting: its key (`policy.domain-rules[2]`) and what is wrong.
pub type SettingError = (String, String);

impl Protection {
    /// Parses the settings; every error names its key.
    pub fn from_config(p: &PolicyConfig, s: &ScanConfig) -> Result<Self, Vec<SettingError>> {
        let mut errors: Vec<SettingError> = Vec::new();
        let mut err = |k: String, m: String| errors.push((k, m));
        let trusted = Trusted::parse(&p.trusted).unwrap_or_else(|e| {
            err("policy.trusted".into(), e.to_string());
            Trusted::default()
        });
        let zones = |key: &str, list: &[String], err: &mut dyn FnMut(String, String)| {
            let mut out = Vec::new();
            for (i, z) in list.iter().enumerate() {
                let z = z.trim().trim_end_matches('.').to_ascii_lowercase();
                if crate::relay::dns::Query::new(
                    0,
                    &format!("1.0.0.127.{z}"),
                    crate::relay::dns::QType::A,
                )
                .is_err()
                {
                    err(format!("{key}[{i}]"), format!("'{z}' is not a DNS zone"));
                } else {
                    out.push(z);
                }
            }
            out
        };
        let dnsbl = zones("policy.dnsbl", &p.dnsbl, &mut err);
        let dnsbl_score = zones("policy.dnsbl-score", &p.dnsbl_score, &mut err);
        if dnsbl.len() + dnsbl_score.len() > super::dnsbl::ZONES_MAX {
            err(
                "policy.dnsbl".into(),
                format!(
                    "at most {} zones in all (dnsbl and dnsbl-score)",
                    super::dnsbl::ZONES_MAX
                ),
            );
        }
        if !(1..=60).contains(&p.dnsbl_timeout) {
            err(
                "policy.dnsbl-timeout".into(),
                "must be 1..=60 seconds".into(),
            );
        }
        let verify_while_down = match p.verify_unknown_while_down.as_str() {
            "accept" => WhileDown::Accept,
            "defer" => WhileDown::Defer,
            other => {
                err(
                    "policy.verify-unknown-while-down".into(),
                    format!("'{other}': expected accept or defer"),
                );
                WhileDown::Accept
            }
        };
        if !(1..=365).contains(&p.verify_positive_days) {
            err(
                "policy.verify-positive-days".into(),
                "must be 1..=365".into(),
            );
        }
        if !(1..=7 * 24 * 60).contains(&p.verify_negative_minutes) {
            err(
                "policy.verify-negative-minutes".into(),
                "must be 1..=10080".into(),
            );
        }
        for (i, e) in p.block_extensions.iter().enumerate() {
            let e = e.trim().trim_start_matches('.');
            if e.is_empty()
                || e.len() > 16
                || !e
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                err(
                    format!("policy.block-extensions[{i}]"),
                    format!("'{e}' is not a file name extension (letters and digits, e.g. scr)"),
                );
            }
        }
        if p.block_extensions.len() > super::content::EXTENSIONS_MAX {
            err(
                "policy.block-extensions".into(),
                format!("at most {} extensions", super::content::EXTENSIONS_MAX),
            );
        }
        if p.spam_reject_score != 0
            && p.spam_flag_score != 0
            && p.spam_reject_score < p.spam_flag_score
        {
            err(
                "policy.spam-reject-score".into(),
                "lower than policy.spam-flag-score: flagged mail would never be delivered".into(),
            );
        }
        if p.guess_threshold > 0 && (p.guess_window == 0 || p.guess_cooldown == 0) {
            err(
                "policy.guess-window".into(),
                "window and cool-down must be at least 1 second".into(),
            );
        }
        // Bounded so that no setting overflows a clock's ticks.
        if p.guess_window > 86_400 || p.guess_cooldown > 86_400 {
            err(
                "policy.guess-window".into(),
                "window and cool-down are at most 86400 seconds (a day)".into(),
            );
        }
        if p.stress_idle_timeout > 3_600 {
            err(
                "policy.stress-idle-timeout".into(),
                "at most 3600 seconds (the normal idle limit is 300)".into(),
            );
        }
        if p.guess_delay > 60 {
            err("policy.guess-delay".into(), "at most 60 seconds".into());
        }
        if p.sessions_per_client == 0 {
            err(
                "policy.sessions-per-client".into(),
                "must be at least 1".into(),
            );
        }
        let mut rules: Vec<(String, DomainRule)> = Vec::new();
        if p.domain_rules.len() > DOMAIN_RULES_MAX {
            err(
                "policy.domain-rules".into(),
                format!("at most {DOMAIN_RULES_MAX} entries"),
            );
        }
        for (i, text) in p.domain_rules.iter().enumerate() {
            let key = format!("policy.domain-rules[{i}]");
            match parse_rule(text) {
                Ok((domain, rule)) => {
                    if !p.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
                        err(key, format!("'{domain}' is not in policy.domains"));
                    } else if rules.iter().any(|(d, _)| *d == domain) {
                        err(key, format!("'{domain}' has a rule already"));
                    } else {
                        rules.push((domain, rule));
                    }
                }
                Err(m) => err(key, m),
            }
        }
        // Checked with or without clamd, as the settings forms check it.
        if !(1..=600).contains(&s.timeout) {
            err("scan.timeout".into(), "must be 1..=600 seconds".into());
        }
        let scan = if s.clamd.trim().is_empty() {
            None
        } else {
            let addr = ClamdAddr::parse(&s.clamd)
                .map_err(|m| err("scan.clamd".into(), m))
                .ok();
            let infected = match s.infected.as_str() {
                "reject" => Infected::Reject,
                "repackage" => Infected::Repackage,
                other => {
                    err(
                        "scan.infected".into(),
                        format!("'{other}': expected reject or repackage"),
                    );
                    Infected::Reject
                }
            };
            let fail_open = match s.unreachable.as_str() {
                "defer" => false,
                "accept" => true,
                other => {
                    err(
                        "scan.unreachable".into(),
                        format!("'{other}': expected defer or accept"),
                    );
                    false
                }
            };
            addr.map(|addr| Scan {
                addr,
                infected,
                fail_open,
                timeout: Duration::from_secs(s.timeout.max(1)),
            })
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            trusted,
            dnsbl,
            dnsbl_score,
            dnsbl_timeout: Duration::from_secs(p.dnsbl_timeout),
            verify: p.verify_recipients,
            verify_positive_ttl: p.verify_positive_days * 86_400,
            verify_negative_ttl: p.verify_negative_minutes * 60,
            verify_while_down,
            block: BlockList::new(&p.block_extensions),
            spam_flag: p.spam_flag_score,
            spam_reject: p.spam_reject_score,
            guesses: GuessLimits {
                threshold: p.guess_threshold,
                window: p.guess_window,
                cooldown: p.guess_cooldown,
            },
            guess_delay: Duration::from_secs(p.guess_delay),
            sessions_per_client: p.sessions_per_client,
            stress_idle: (p.stress_idle_timeout > 0)
                .then(|| Duration::from_secs(p.stress_idle_timeout)),
            scan,
            rules,
            listed: p
                .recipients
                .iter()
                .filter_map(|r| r.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
                .collect(),
        })
    }

    /// The settings in force for `domain` (lower-case).
    pub fn domain(&self, domain: &str) -> DomainPolicy {
        let rule = self
            .rules
            .iter()
            .find(|(d, _)| d == domain)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        DomainPolicy {
            accept_when: rule.accept_when.unwrap_or_default(),
            max_message_size: rule.max_message_size,
            max_bytes: rule.max_bytes,
            // A static recipient list still wins over asking the next hop.
            verify: self.verify
                && rule.verify.unwrap_or(true)
                && !self.listed.iter().any(|d| d == domain),
            attachments: !self.block.is_empty() && rule.attachments.unwrap_or(true),
            scan: self.scan.is_some() && rule.scan.unwrap_or(true),
            spam: self.spam_flag > 0 && rule.spam.unwrap_or(true),
        }
    }

    /// Domains with a `max-bytes` tier, and the tier (for the status page).
    pub fn tiers(&self) -> impl Iterator<Item = (&str, Option<u64>, Option<u64>)> {
        self.rules
            .iter()
            .map(|(d, r)| (d.as_str(), r.max_message_size, r.max_bytes))
    }
}

/// `office.test: accept-when=next-hop-down max-bytes=500M verify=off`.
fn parse_rule(text: &str) -> Result<(String, DomainRule), String> {
    let (domain, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}': expected 'DOMAIN: key=value ...'"))?;
    let domain = domain.trim().to_ascii_lowercase();
    if domain.is_empty() {
        return Err(format!("'{text}': no domain before ':'"));
    }
    let mut r = DomainRule::default();
    for item in rest.split_whitespace() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}': expected key=value"))?;
        let flag = || match v {
            "on" | "yes" | "1" | "true" => Ok(true),
            "off" | "no" | "0" | "false" => Ok(false),
            _ => Err(format!("{k}={v}: expected on or off")),
        };
        match k {
            "accept-when" => {
                r.accept_when = Some(match v {
                    "always" => AcceptWhen::Always,
                    "next-hop-down" => AcceptWhen::NextHopDown,
                    _ => return Err(format!("accept-when={v}: expected always or next-hop-down")),
                })
            }
            "max-message-size" => r.max_message_size = Some(parse_size(v)?),
            "max-bytes" => r.max_bytes = Some(parse_size(v)?),
            "verify" => r.verify = Some(flag()?),
            "attachments" => r.attachments = Some(flag()?),
            "scan" => r.scan = Some(flag()?),
            "spam" => r.spam = Some(flag()?),
            _ => {
                return Err(format!(
                    "unknown key '{k}' (accept-when, max-message-size, max-bytes, verify, attachments, scan, spam)"
                ));
            }
        }
    }
    Ok((domain, r))
}

/// `1048576`, `512K`, `50M`, `2G` (powers of 1024); at least 1 KiB, at most 1 TiB.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'K' | 'k')) => (&v[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&v[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{v}' is not a size (bytes, or with K, M or G)"))?;
    let bytes = n.checked_mul(mult).filter(|b| (1024..=1 << 40).contains(b));
    bytes.ok_or_else(|| format!("'{v}' is out of range (1K to 1024G)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[&str]) -> PolicyConfig {
        PolicyConfig {
            domains: vec!["office.test".into(), "other.test".into()],
            domain_rules: rules.iter().map(|s| s.to_string()).collect(),
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn domain_rules_override_the_global_switches() {
        let mut p = policy(&[
            "Office.Test: accept-when=next-hop-down max-message-size=50M max-bytes=500M verify=off spam=off",
        ]);
        p.verify_recipients = true;
        let scan = ScanConfig {
            clamd: "127.0.0.1:3310".into(),
            ..ScanConfig::default()
        };
        let prot = Protection::from_config(&p, &scan).unwrap();
        let office = prot.domain("office.test");
        assert_eq!(office.accept_when, AcceptWhen::NextHopDown);
        assert_eq!(office.max_message_size, Some(50 << 20));
        assert_eq!(office.max_bytes, Some(500 << 20));
        assert!(!office.verify && !office.spam && office.attachments && office.scan);
        let other = prot.domain("other.test");
        assert_eq!(other.accept_when, AcceptWhen::Always);
        let mut listed = p.clone();
        listed.recipients = vec!["info@other.test".into()];
        let prot_listed = Protection::from_config(&listed, &scan).unwrap();
        assert!(
            !prot_listed.domain("other.test").verify,
            "the static list wins"
        );
        assert!(other.verify && other.spam && other.scan);
        assert_eq!(other.max_bytes, None);
    }

    #[test]
    fn every_bad_setting_is_named() {
        let mut p = policy(&[
            "office.test accept-when=always",
            "nowhere.test: spam=off",
            "other.test: max-bytes=12",
            "other.test: colour=blue",
        ]);
        p.trusted = vec!["10.0.0.0/33".into()];
        p.dnsbl = vec!["bad zone".into()];
        p.block_extensions = vec!["s c r".into()];
        p.spam_flag_score = 5;
        p.spam_reject_score = 3;
        p.verify_unknown_while_down = "maybe".into();
        p.guess_cooldown = 86_401;
        p.stress_idle_timeout = u64::MAX;
        let scan = ScanConfig {
            clamd: "clamd.lan".into(),
            infected: "quarantine".into(),
            ..ScanConfig::default()
        };
        let errs = Protection::from_config(&p, &scan).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        for k in [
            "policy.trusted",
            "policy.dnsbl[0]",
            "policy.verify-unknown-while-down",
            "policy.block-extensions[0]",
            "policy.spam-reject-score",
            "policy.guess-window",
            "policy.stress-idle-timeout",
            "policy.domain-rules[0]",
            "policy.domain-rules[1]",
            "policy.domain-rules[2]",
            "policy.domain-rules[3]",
            "scan.clamd",
            "scan.infected",
        ] {
            assert!(keys.contains(&k), "{k} missing from {errs:?}");
        }
    }

    #[test]
    fn defaults_parse() {
        let p = Protection::from_config(&PolicyConfig::default(), &ScanConfig::default()).unwrap();
        assert!(p.block.blocks("x.scr") && p.block.blocks("x.pif"));
        assert!(p.scan.is_none() && p.dnsbl.is_empty() && !p.verify);
        assert_eq!(p.spam_flag, 5);
        assert_eq!(parse_size("50M"), Ok(50 << 20));
        assert!(parse_size("5").is_err());
    }
}
