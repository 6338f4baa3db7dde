//! What the I/O layer found: plain values, gathered once, judged by the rules.
//!
//! Every field is an observation (a DNS answer, an SMTP reply, a listing of the running
//! firewall, a figure of the spool) or a piece of the configuration; nothing here knows
//! whether it is good. A value that could not be observed says why (`Err(String)` or
//! [`DnsError`]), so a rule can tell "wrong" from "could not look".

use std::net::IpAddr;

use crate::config::Role;
use crate::firewall::{Cidr, FirewallMode};
use crate::relay::client::Extensions;
use crate::relay::nexthop::{DnsError, MxRecord};

/// A DNS answer, or why there is none.
pub type Dns<T> = Result<T, DnsError>;

/// Everything the doctor judges.
#[derive(Clone, Debug)]
pub struct Facts {
    /// Edge (office router) or silo (provider).
    pub role: Role,
    /// `smtp.hostname`: the name this instance should have in the MX records.
    pub hostname: String,
    /// Other names that stand for the office in the MX records (edge: the next hops'
    /// names, lowercase), besides `hostname`.
    pub office_names: Vec<String>,
    /// `policy.domains`.
    pub accepted: Vec<String>,
    /// The domains checked (the command's arguments, else `policy.domains`).
    pub domains: Vec<DomainFacts>,
    /// `relay.upstream-silo`, in preference order (edge).
    pub silos: Vec<SiloFacts>,
    /// The next hops mail goes to from here, probed now.
    pub next_hops: Vec<HopProbe>,
    /// `relay.tls-policy` is `require` or `require-verify`.
    pub tls_required: bool,
    /// The firewall as configured and as loaded.
    pub firewall: FirewallFacts,
    /// The spool's place and figures.
    pub spool: SpoolFacts,
    /// The running daemon: its version, or why it could not be asked.
    pub daemon: Result<String, String>,
}

/// One checked domain's DNS.
#[derive(Clone, Debug)]
pub struct DomainFacts {
    /// The domain, lowercase.
    pub domain: String,
    /// Its MX records.
    pub mx: Dns<Vec<MxRecord>>,
    /// Each distinct MX host: alias and addresses.
    pub hosts: Vec<HostFacts>,
    /// TXT records of `_mta-sts.DOMAIN` (RFC 8461 §3.1).
    pub mta_sts_txt: Dns<Vec<String>>,
    /// `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` as received (the raw HTTP
    /// response), or why it could not be fetched; `None` when no `v=STSv1` record asked
    /// for it.
    pub policy: Option<Result<Vec<u8>, String>>,
    /// TXT records of `_smtp._tls.DOMAIN` (TLS-RPT, RFC 8460 §3).
    pub tls_rpt_txt: Dns<Vec<String>>,
}

/// One MX host.
#[derive(Clone, Debug)]
pub struct HostFacts {
    /// The exchange name, lowercase, without the trailing dot.
    pub name: String,
    /// Where it points when the name is a CNAME.
    pub cname: Option<String>,
    /// Its A and AAAA addresses.
    pub addrs: Dns<Vec<IpAddr>>,
}

/// One `relay.upstream-silo` entry.
#[derive(Clone, Debug)]
pub struct SiloFacts {
    /// As configured (`silo1.provider.test:25`).
    pub entry: String,
    /// Its host: a name, or an address as text.
    pub host: String,
    /// Its addresses (an address entry is its own).
    pub addrs: Dns<Vec<IpAddr>>,
    /// Connect and EHLO now.
    pub probe: Result<Extensions, String>,
    /// ETRN per checked domain: the reply, or the failure.
    pub etrn: Vec<(String, Result<String, String>)>,
}

/// One next hop, probed.
#[derive(Clone, Debug)]
pub struct HopProbe {
    /// What it serves: `relay.next-hops`, a `relay.routes` entry, or `MX of DOMAIN`.
    pub route: String,
    /// The host (and port) tried.
    pub hop: String,
    /// The EHLO answer's extensions, or why there is none.
    pub result: Result<Extensions, String>,
}

/// The firewall as configured and as found in the running system.
#[derive(Clone, Debug)]
pub struct FirewallFacts {
    /// `firewall.mode`.
    pub mode: FirewallMode,
    /// The silo prefixes the configuration admits (`firewall.silo`, plus `silo-dns`'s
    /// answer), or why they cannot be had.
    pub admitted: Result<Vec<Cidr>, String>,
    /// `firewall.silo-dns`.
    pub silo_dns: Option<String>,
    /// The loaded rules: hooked, and the sets' elements (expected and found), or why the
    /// running firewall could not be read.
    pub live: Result<LiveRules, String>,
}

/// What the running firewall holds of mailbag's rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveRules {
    /// `nft` (fw4) or `iptables` (fw3).
    pub backend: String,
    /// Our chain is jumped to from the WAN zone.
    pub hooked: bool,
    /// Per set: name, the elements the configuration renders, the elements loaded.
    pub sets: Vec<(String, Vec<String>, Vec<String>)>,
    /// The include file fw4 loads on its next reload: `Some(true)` when it equals the
    /// rendering, `Some(false)` when missing or different, `None` when not checked (no
    /// fw4 include directory here).
    pub include_current: Option<bool>,
}

/// The spool's place and figures.
#[derive(Clone, Debug)]
pub struct SpoolFacts {
    /// `spool.path`, with symbolic links resolved where possible.
    pub path: String,
    /// An MTD partition (raw flash), not a file.
    pub mtd: bool,
    /// The file system holding the image: its type (`tmpfs`, `overlay`, `ext4`, …).
    pub fs_type: Option<String>,
    /// Image size in bytes (`spool.size`, or the file's length).
    pub image_bytes: u64,
    /// Bytes of the image file already allocated on its file system (a new image is
    /// sparse: it takes room as mail arrives).
    pub image_allocated: Option<u64>,
    /// Bytes free on that file system.
    pub fs_available: Option<u64>,
    /// The running spool's figures, or why they could not be had.
    pub usage: Result<SpoolUsage, String>,
}

/// The running spool's figures (from the daemon).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolUsage {
    /// Messages held.
    pub messages: u64,
    /// Bytes in use.
    pub used: u64,
    /// Bytes that can still be taken (limits and device).
    pub free: u64,
    /// Bytes accepted in the last `rate_secs` seconds.
    pub rate_bytes: u64,
    /// The window those bytes were counted over (0: nothing measured yet).
    pub rate_secs: u64,
}

impl core::fmt::Display for SpoolUsage {
    /// `messages=3 used=4096 free=1048576 rate-bytes=0 rate-secs=0`: the control socket's
    /// `stats` answer.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "messages={} used={} free={} rate-bytes={} rate-secs={}",
            self.messages, self.used, self.free, self.rate_bytes, self.rate_secs
        )
    }
}

impl core::str::FromStr for SpoolUsage {
    type Err = String;

    /// Reads what [`Display`](core::fmt::Display) wrote; unknown keys are skipped (a newer
    /// daemon may say more).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut u = SpoolUsage::default();
        let mut seen = 0;
        for word in s.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("'{word}' is not key=value"))?;
            let slot = match k {
                "messages" => &mut u.messages,
                "used" => &mut u.used,
                "free" => &mut u.free,
                "rate-bytes" => &mut u.rate_bytes,
                "rate-secs" => &mut u.rate_secs,
                _ => continue,
            };
            *slot = v.parse().map_err(|_| format!("'{word}' is not a number"))?;
            seen += 1;
        }
        if seen < 5 {
            return Err(format!("incomplete spool figures: '{s}'"));
        }
        Ok(u)
    }
}

/// Nothing observed yet: every lookup "not done".
impl Default for Facts {
    fn default() -> Self {
        Self {
            role: Role::default(),
            hostname: String::new(),
            office_names: Vec::new(),
            accepted: Vec::new(),
            domains: Vec::new(),
            silos: Vec::new(),
            next_hops: Vec::new(),
            tls_required: false,
            firewall: FirewallFacts::default(),
            spool: SpoolFacts::default(),
            daemon: Err(NOT_ASKED.into()),
        }
    }
}

impl Default for FirewallFacts {
    fn default() -> Self {
        Self {
            mode: FirewallMode::default(),
            admitted: Ok(Vec::new()),
            silo_dns: None,
            live: Err(NOT_ASKED.into()),
        }
    }
}

impl Default for SpoolFacts {
    fn default() -> Self {
        Self {
            path: String::new(),
            mtd: false,
            fs_type: None,
            image_bytes: 0,
            image_allocated: None,
            fs_available: None,
            usage: Err(NOT_ASKED.into()),
        }
    }
}

/// Why a default fact is missing.
const NOT_ASKED: &str = "not checked";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_figures_round_trip_through_their_text() {
        let u = SpoolUsage {
            messages: 3,
            used: 4096,
            free: 1 << 20,
            rate_bytes: 77,
            rate_secs: 3600,
        };
        assert_eq!(u.to_string().parse::<SpoolUsage>(), Ok(u));
        assert_eq!(format!("{u} later=1").parse::<SpoolUsage>(), Ok(u));
        assert!("messages=3".parse::<SpoolUsage>().is_err());
        assert!(
            "messages=x used=1 free=1 rate-bytes=1 rate-secs=1"
                .parse::<SpoolUsage>()
                .is_err()
        );
    }
}
