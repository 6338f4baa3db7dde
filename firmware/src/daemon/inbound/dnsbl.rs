//! DNS blocklists at connect, through mailbag's own resolver: the blocking lists
//! (`policy.dnsbl`) decide whether the client gets a `554` greeting, the scoring lists
//! (`policy.dnsbl-score`) only add to the spam score. Names, answers and reasons are
//! [`crate::policy::dnsbl`]'s; a lookup that fails or times out lets the client through
//! and says so in the log.

use std::net::IpAddr;

use super::guard::Guard;
use crate::policy::Protection;
use crate::policy::dnsbl::{self, Listing};
use crate::relay::nexthop::DnsError;

/// What the lists said about one client.
#[derive(Debug, Default)]
pub struct ClientCheck {
    /// A blocking list lists it: (zone, the 554's text).
    pub blocked: Option<(String, String)>,
    /// Scoring lists that list it.
    pub score_hits: Vec<String>,
}

/// Asks every configured list about `ip`, within `policy.dnsbl-timeout` in all.
pub async fn check(ip: IpAddr, p: &Protection, guard: &Guard) -> ClientCheck {
    let mut out = ClientCheck::default();
    if p.dnsbl.is_empty() && p.dnsbl_score.is_empty() {
        return out;
    }
    let zones: Vec<(&String, bool)> = p
        .dnsbl
        .iter()
        .map(|z| (z, true))
        .chain(p.dnsbl_score.iter().map(|z| (z, false)))
        .collect();
    let work = async {
        for (zone, blocking) in &zones {
            let Some(name) = dnsbl::query_name(ip, zone) else {
                continue;
            };
            guard.counters.bump(|c| &mut c.dnsbl_lookups);
            let listing = match guard.dns.a(&name).await {
                Ok(addrs) => dnsbl::interpret(&addrs),
                Err(DnsError::NotFound) => Listing::NotListed,
                Err(DnsError::Temporary) => {
                    Listing::ListError("no answer (timeout or SERVFAIL)".into())
                }
            };
            match listing {
                Listing::NotListed => {}
                Listing::ListError(why) => {
                    guard.counters.bump(|c| &mut c.dnsbl_failed_open);
                    crate::log!("dnsbl {zone}: {why}; [{ip}] let through");
                }
                Listing::Listed(code) if *blocking => {
                    let txt = guard.dns.txt(&name).await.unwrap_or_default();
                    let reason = dnsbl::clean_reason(&txt);
                    out.blocked =
                        Some(((*zone).clone(), dnsbl::reply_text(ip, zone, code, &reason)));
                    return;
                }
                Listing::Listed(_) => {
                    guard.counters.bump(|c| &mut c.dnsbl_score_hits);
                    out.score_hits.push((*zone).clone());
                }
            }
        }
    };
    if tokio::time::timeout(p.dnsbl_timeout, work).await.is_err() {
        guard.counters.bump(|c| &mut c.dnsbl_failed_open);
        crate::log!(
            "dnsbl: lookups for [{ip}] took longer than {}s; let through",
            p.dnsbl_timeout.as_secs()
        );
    }
    out
}
