//! The protection checks of one connection, in the order a client meets them: the
//! blocklists before the greeting, stress-mode idle timeouts, every recipient before its
//! reply, and the content while it streams, with the verdict before the 250. Each refusal
//! is logged with its reason and counted; an accepted message's log line names what
//! every check said.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use super::checks::MessageChecks;
#[cfg(feature = "scan")]
use super::clamd::ClamdScan;
use super::connection::{InboundConnection, Incoming};
use super::guard::Guard;
use crate::policy::clamd::ScanResult;
use crate::policy::content::{BlockList, BodyScan, ContentFacts};
use crate::policy::protection::{AcceptWhen, Infected, WhileDown};
use crate::policy::spam::{self, SenderDns};
use crate::policy::throttle::GuessVerdict;
use crate::policy::verify::Known;
use crate::policy::{Checker, Policy, Refusal};
use crate::smtp::session::refusal_reply;
use crate::smtp::{PeerInfo, RcptAnswer, Reply, Session};
use crate::spool::message::Verdict;

fn reply(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply::new(code, enhanced, format_args!("{text}"))
}

/// The session type of a connection.
pub(super) type InboundSession = Session<Checker<crate::daemon::spool::GaugeCapacity>>;

impl InboundConnection {
    fn guard(&self) -> &Guard {
        &self.ctx.guard
    }

    fn now_unix(&self) -> u64 {
        self.ctx.clock.unix_seconds()
    }

    /// The session for a new connection: a `554` greeting when a blocking list lists the
    /// client, the usual 220 otherwise.
    pub(super) async fn open_session(&mut self, info: PeerInfo) -> (InboundSession, Reply) {
        let settings = std::sync::Arc::clone(&self.settings);
        if self.client.trusted {
            self.guard().counters.bump(|c| &mut c.trusted_clients);
            return Session::new(&settings.session, info, self.ctx.clock.now());
        }
        let check = super::dnsbl::check(info.ip, &settings.protection, self.guard()).await;
        self.client.score_hits = check.score_hits;
        match check.blocked {
            Some((zone, text)) => {
                self.guard().counters.bump(|c| &mut c.dnsbl_rejected);
                crate::log!("refused [{}]: listed by {zone}: {text}", info.ip);
                self.event("refused", None, &format!("554 5.7.1 {text}"));
                Session::refused(
                    &settings.session,
                    info,
                    self.ctx.clock.now(),
                    "5.7.1",
                    &text,
                )
            }
            None => Session::new(&settings.session, info, self.ctx.clock.now()),
        }
    }

    /// Postfix-like stress mode: while most session slots are taken, a client that is not
    /// in a mail transaction gets `policy.stress-idle-timeout` instead of the usual idle
    /// time. Returns how long the connection may wait before asking again (load changes
    /// while a client idles).
    pub(super) fn stress<P: Policy>(&self, session: &mut Session<P>) -> Duration {
        let normal = self.settings.session.idle_timeout;
        let Some(short) = self.settings.protection.stress_idle else {
            return Duration::MAX;
        };
        let short_e = embassy_time::Duration::from_secs(short.as_secs());
        let idle = !session.in_transaction();
        let want = if idle && self.guard().stressed() && short_e < normal {
            short_e
        } else {
            normal
        };
        if session.idle_timeout() != want {
            session.set_idle_timeout(want);
        }
        if idle { short } else { Duration::MAX }
    }

    /// Every recipient's checks, in order: a guessing client's cool-down, the static
    /// rules, the domain's size and storage tier, accept-only-while-the-next-hop-is-down,
    /// and verification at the next hop.
    pub(super) async fn rcpt_answer<P: Policy>(
        &mut self,
        session: &Session<P>,
        refusal: Option<Refusal>,
    ) -> RcptAnswer {
        let Some(rcpt) = session.pending_recipient() else {
            return RcptAnswer::Refuse(reply(451, "4.3.0", "Local error"));
        };
        let address = rcpt.mailbox.to_string();
        let declared = rcpt.declared_size;
        let prot = std::sync::Arc::clone(&self.settings.protection);
        let ip = self.client.ip;
        let now = self.now_unix();
        let trusted = self.client.trusted;
        if !trusted {
            if let GuessVerdict::CoolDown(left) = self.guard().guess_check(ip, now) {
                tokio::time::sleep(prot.guess_delay).await;
                self.guard().counters.bump(|c| &mut c.guess_deferred);
                return RcptAnswer::Refuse(Reply::new(
                    450,
                    "4.7.1",
                    format_args!(
                        "Too many unknown recipients from [{ip}]; try again in {left} seconds"
                    ),
                ));
            }
        }
        if let Some(r) = refusal {
            let answer = refusal_reply(r);
            if answer.is_permanent() && !trusted {
                self.count_guess(ip, now);
            }
            return RcptAnswer::Refuse(answer);
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let dp = prot.domain(&domain);
        if let (Some(max), Some(size)) = (dp.max_message_size, declared) {
            if size > max {
                self.guard().counters.bump(|c| &mut c.tier_size_refused);
                return RcptAnswer::Refuse(Reply::new(
                    552,
                    "5.3.4",
                    format_args!("Message size exceeds the {max} bytes {domain} takes"),
                ));
            }
        }
        if let Some(max) = dp.max_bytes {
            let held = self.ctx.spool.gauge.domain_bytes(&domain);
            if held.saturating_add(declared.unwrap_or(0)) >= max {
                self.guard().counters.bump(|c| &mut c.tier_quota_refused);
                return RcptAnswer::Refuse(Reply::new(
                    452,
                    "4.2.2",
                    format_args!(
                        "Mailbox full: the storage for {domain} is used up ({held} of {max} bytes); try later"
                    ),
                ));
            }
        }
        if trusted {
            return RcptAnswer::Accept;
        }
        if dp.accept_when == AcceptWhen::NextHopDown && !self.guard().next_hop_down(&domain).await {
            self.guard().counters.bump(|c| &mut c.accept_when_deferred);
            return RcptAnswer::Refuse(Reply::new(
                450,
                "4.7.1",
                format_args!("{domain} takes mail at its primary MX now; please deliver there"),
            ));
        }
        if dp.verify {
            return self.verify(&address, &domain, &prot, ip, now).await;
        }
        RcptAnswer::Accept
    }

    fn count_guess(&self, ip: IpAddr, now: u64) {
        let p = &self.settings.protection;
        self.guard().set_guess_limits(p.guesses);
        if self.guard().guess_refused(ip, now) {
            let text = format!(
                "[{ip}] refused {} recipients within {}s: every RCPT gets 450 for {}s",
                p.guesses.threshold, p.guesses.window, p.guesses.cooldown
            );
            crate::log!("guessing: {text}");
            self.event("guessing", None, &text);
        }
    }

    async fn verify(
        &self,
        address: &str,
        domain: &str,
        prot: &crate::policy::Protection,
        ip: IpAddr,
        now: u64,
    ) -> RcptAnswer {
        let unknown = || {
            RcptAnswer::Refuse(reply(
                550,
                "5.1.1",
                "User unknown in the primary's recipient list",
            ))
        };
        match self.guard().verify_cached(address, now) {
            Some(Known::Exists) => {
                self.guard().counters.bump(|c| &mut c.verify_cache_hits);
                return RcptAnswer::Accept;
            }
            Some(Known::Unknown) => {
                self.guard().counters.bump(|c| &mut c.verify_cache_hits);
                self.guard().counters.bump(|c| &mut c.verify_rejected);
                self.count_guess(ip, now);
                return unknown();
            }
            None => {}
        }
        let asked = if self.guard().next_hop_down(domain).await {
            None
        } else {
            self.guard().counters.bump(|c| &mut c.verify_callouts);
            self.guard().callout(domain, address).await
        };
        match asked {
            Some(true) => {
                self.guard()
                    .verify_store(address, Known::Exists, now, prot.verify_positive_ttl);
                RcptAnswer::Accept
            }
            Some(false) => {
                self.guard()
                    .verify_store(address, Known::Unknown, now, prot.verify_negative_ttl);
                self.guard().counters.bump(|c| &mut c.verify_rejected);
                crate::log!("verify: <{address}> unknown at the next hop of {domain}");
                self.count_guess(ip, now);
                unknown()
            }
            None => {
                self.guard()
                    .counters
                    .bump(|c| &mut c.verify_unknown_while_down);
                match prot.verify_while_down {
                    WhileDown::Accept => RcptAnswer::Accept,
                    WhileDown::Defer => RcptAnswer::Refuse(reply(
                        450,
                        "4.4.3",
                        "Recipient cannot be verified now; try again later",
                    )),
                }
            }
        }
    }

    /// What the content checks of a message about to start need: decided from its
    /// recipients' domains (a check runs when any recipient's domain has it on).
    pub(super) async fn message_checks(&self, env: &crate::smtp::Envelope) -> MessageChecks {
        let mut m = MessageChecks::default();
        if self.client.trusted {
            return m;
        }
        let prot = &self.settings.protection;
        let (mut scan, mut attachments, mut spam) = (false, false, false);
        for (i, r) in env.recipients.iter().enumerate() {
            let s = r.to_string();
            let domain = s
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            let dp = prot.domain(&domain);
            scan |= dp.scan;
            attachments |= dp.attachments;
            spam |= dp.spam;
            if let Some(max) = dp.max_message_size {
                if m.max_size.as_ref().is_none_or(|(cur, _)| max < *cur) {
                    m.max_size = Some((max, domain.clone()));
                }
            }
            if i == 0 {
                if let Some(max) = dp.max_bytes {
                    m.tier = Some((max, self.ctx.spool.gauge.domain_bytes(&domain), domain));
                }
            }
        }
        if attachments || spam {
            let block = if attachments {
                prot.block.clone()
            } else {
                BlockList::default()
            };
            m.scan = Some(BodyScan::new(block));
        }
        m.attachments = attachments;
        m.spam = spam;
        #[cfg(feature = "scan")]
        if scan {
            if let Some(s) = &prot.scan {
                m.clamd = Some(ClamdScan::start(&s.addr, s.timeout).await);
            }
        }
        #[cfg(not(feature = "scan"))]
        let _ = scan; // config validation refused scan.clamd: nothing to scan with
        if spam {
            let sender = env.from.as_ref().map(|f| f.to_string()).unwrap_or_default();
            let domain = sender
                .trim_matches(['<', '>'])
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase());
            if let Some(domain) = domain {
                let g = std::sync::Arc::clone(&self.ctx.guard);
                m.sender_dns = Some(tokio::spawn(async move { sender_dns(&g, &domain).await }));
            }
        }
        m
    }

    // The refusal is a fixed-capacity reply (no heap) made once per message.
    #[allow(clippy::result_large_err)]
    /// The content checks' verdict at the end of DATA: `Err(reply)` refuses the message
    /// (it is not stored), `Ok` gives the verdict to store with it and the log's summary.
    pub(super) async fn content_verdict<P: Policy>(
        &mut self,
        session: &Session<P>,
        inc: &mut Incoming,
    ) -> Result<(Option<Verdict>, String), Reply> {
        let m = std::mem::take(&mut inc.checks);
        let prot = std::sync::Arc::clone(&self.settings.protection);
        let who = format!(
            "from=<{}> to={}",
            inc.envelope.sender,
            inc.envelope
                .recipients
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let refuse = |this: &Self, r: Reply, why: &str| {
            crate::log!("refused [{}] {who}: {why}", this.client.ip);
            this.event(
                "refused",
                None,
                &format!("{} ({why}; {who})", r.as_str().trim_end()),
            );
            Err(r)
        };
        if self.client.trusted {
            return Ok((None, " checks=trusted".into()));
        }
        let mut summary = String::from(" checks:");
        if let Some((max, domain)) = &m.max_size {
            if m.size > *max {
                self.guard().counters.bump(|c| &mut c.tier_size_refused);
                let r = Reply::new(
                    552,
                    "5.3.4",
                    format_args!("Message size exceeds the {max} bytes {domain} takes"),
                );
                return refuse(self, r, "over the domain's max-message-size");
            }
        }
        if let Some((max, held, domain)) = &m.tier {
            if held.saturating_add(m.size) > *max {
                self.guard().counters.bump(|c| &mut c.tier_quota_refused);
                let r = Reply::new(
                    452,
                    "4.2.2",
                    format_args!("Mailbox full: the storage for {domain} is used up; try later"),
                );
                return refuse(self, r, "over the domain's max-bytes");
            }
        }
        let facts: ContentFacts = m.scan.map(BodyScan::finish).unwrap_or_default();
        if m.attachments {
            if let Some(name) = &facts.blocked {
                self.guard().counters.bump(|c| &mut c.attachments_blocked);
                let shown: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
                let r = Reply::new(
                    554,
                    "5.7.1",
                    format_args!("Attachment \"{shown}\" refused: this file type is not accepted"),
                );
                return refuse(self, r, &format!("blocked attachment {shown:?}"));
            }
            if facts.too_deep {
                self.guard().counters.bump(|c| &mut c.structure_too_deep);
                let r = reply(554, "5.7.1", "Message structure nested too deeply to check");
                return refuse(self, r, "MIME nesting too deep to check");
            }
            summary.push_str(" attachments=ok");
        }
        let mut virus = String::new();
        if let Some(scan) = m.clamd {
            self.guard().counters.bump(|c| &mut c.clamd_scanned);
            let s = prot.scan.as_ref();
            match scan.finish().await {
                ScanResult::Clean => summary.push_str(" clamd=clean"),
                ScanResult::Infected(name) => match s.map(|s| s.infected) {
                    Some(Infected::Repackage) => {
                        self.guard().counters.bump(|c| &mut c.clamd_repackaged);
                        let _ = write!(summary, " clamd=infected:{name} (repackaged)");
                        virus = name;
                    }
                    _ => {
                        self.guard().counters.bump(|c| &mut c.clamd_rejected);
                        let r = Reply::new(
                            554,
                            "5.7.1",
                            format_args!("Message refused: it contains the virus {name}"),
                        );
                        return refuse(self, r, &format!("virus {name}"));
                    }
                },
                ScanResult::Error(why) => {
                    self.guard().counters.bump(|c| &mut c.clamd_failed);
                    if s.is_some_and(|s| s.fail_open) {
                        crate::log!("clamd: {why}; accepted unscanned (scan.unreachable = accept)");
                        summary.push_str(" clamd=unscanned");
                    } else {
                        let r = reply(451, "4.7.0", "Virus scanner unavailable; try again later");
                        return refuse(self, r, &format!("clamd: {why}"));
                    }
                }
            }
        }
        let mut score = None;
        if m.spam {
            let sender_dns = match m.sender_dns {
                Some(h) => tokio::time::timeout(Duration::from_secs(5), h)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(SenderDns::Unknown),
                None => SenderDns::Resolves,
            };
            let helo = session.helo_name().unwrap_or("").to_owned();
            let our_domains = &self.settings.domains;
            let s = spam::score(&spam::Facts {
                helo: &helo,
                sender: &inc.envelope.sender,
                trusted: false,
                sender_dns,
                headers: &facts.headers,
                our_domains,
                dnsbl_hits: &self.client.score_hits,
                now_unix: self.now_unix(),
            });
            self.guard().counters.bump(|c| &mut c.spam_scored);
            let rules = s.rules();
            let _ = write!(summary, " spam={}/{}", s.points, prot.spam_flag);
            if !rules.is_empty() {
                let _ = write!(summary, " ({rules})");
            }
            if prot.spam_reject > 0 && s.points >= prot.spam_reject {
                self.guard().counters.bump(|c| &mut c.spam_rejected);
                let r = Reply::new(
                    554,
                    "5.7.1",
                    format_args!("Message refused as spam (score {}: {rules})", s.points),
                );
                return refuse(self, r, &format!("spam score {}", s.points));
            }
            if s.points >= prot.spam_flag {
                self.guard().counters.bump(|c| &mut c.spam_flagged);
            }
            score = Some(s);
        }
        if score.is_none() && virus.is_empty() {
            return Ok((None, summary));
        }
        let mut v = Verdict::default();
        if let Some(s) = score {
            v.spam_score = s.points;
            v.spam_threshold = prot.spam_flag;
            v.spam_rules = s.rules();
        }
        v.virus = virus;
        Ok((Some(v.bounded()), summary))
    }
}

/// What DNS says about the sender's domain (RFC 5321 §5.1: MX, else an address).
async fn sender_dns(g: &Guard, domain: &str) -> SenderDns {
    use crate::relay::nexthop::DnsError;
    match g.dns.mx(domain).await {
        Ok(mx) if !mx.is_empty() => SenderDns::Resolves,
        Ok(_) => match g.dns.addrs(domain).await {
            Ok(a) if !a.is_empty() => SenderDns::Resolves,
            Ok(_) | Err(DnsError::NotFound) => SenderDns::Nothing,
            Err(DnsError::Temporary) => SenderDns::Unknown,
        },
        Err(DnsError::NotFound) => SenderDns::Nothing,
        Err(DnsError::Temporary) => SenderDns::Unknown,
    }
}
