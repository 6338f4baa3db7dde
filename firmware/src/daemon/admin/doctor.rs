//! The setup check's I/O (`mailbag doctor`, the page's "Check setup"): gathers the
//! [`Facts`] that [`crate::doctor::evaluate`] judges, with the daemon's own machinery —
//! its DNS resolver (MX, A/AAAA, CNAME, TXT), its SMTP client driver (probe and ETRN
//! sessions: [`crate::daemon::delivery::probe_session`],
//! [`crate::daemon::delivery::etrn_session`]), its TLS
//! configurations (the MTA-STS policy is fetched over HTTPS with a verified certificate),
//! the firewall module's renderer and its reading of the loaded rules, and the spool's
//! figures from the running daemon.
//!
//! Two halves: [`gather`] asks the network (async, on a runtime); [`local_facts`] reads
//! this machine — the loaded firewall (`nft`), the spool's file system (`df`,
//! `/proc/mounts`) — synchronously, on the caller's thread (the command line's, or a web
//! worker's: never the daemon's runtime thread).
//!
//! Nothing here judges: every observation, good or bad, goes into the facts. Every network
//! step is bounded ([`STEP_TIMEOUT`]); a check runs in seconds and sends each upstream
//! silo one ETRN per checked domain (harmless: it only flushes what the silo holds).

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mailbag_hal::SystemClock;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::config::{Config, Role, RunSettings};
use crate::daemon::delivery::dns::DnsResolver;
use crate::daemon::delivery::tls::{self, TlsClients};
use crate::daemon::delivery::{etrn_session, probe_session};
use crate::doctor::facts::{
    DomainFacts, FirewallFacts, HopProbe, HostFacts, LiveRules, SiloFacts, SpoolFacts, SpoolUsage,
};
use crate::doctor::{Facts, mta_sts};
use crate::firewall::{Cidr, FirewallMode, Primary, Ruleset, SiloSet, apply, nft};
use crate::relay::client::{ClientConfig, Extensions, Outcome};
use crate::relay::nexthop::{DEFAULT_PORT, Host, NextHop};
use crate::relay::{LoopGuard, RelaySettings};

/// Longest one network step (a probe, an ETRN session, the policy fetch) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// Where fw4 keeps its includes (present on OpenWrt 22.03+).
const NFTABLES_D: &str = "/etc/nftables.d";

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The domains (empty: `policy.domains`).
    pub domains: Vec<String>,
    /// The CA file that verifies the MTA-STS policy servers (default: `MAILBAG_CA_FILE`,
    /// else the system bundle).
    pub ca_file: Option<PathBuf>,
}

/// What the running daemon says of itself.
#[derive(Clone, Debug)]
pub struct DaemonState {
    /// Its version, or why it could not be asked.
    pub version: Result<String, String>,
    /// Its spool's figures, or why they could not be had.
    pub usage: Result<SpoolUsage, String>,
}

/// Gathers the network's facts about `config`'s setup (then call [`local_facts`]). An
/// error only for a configuration that cannot drive the check at all (one `check-config`
/// refuses).
pub async fn gather(config: &Config, opts: &Options, daemon: DaemonState) -> Result<Facts, String> {
    let run = RunSettings::new_checked(config.clone())?;
    let relay = &run.relay;
    let net = Net {
        // A resolver of its own: answers the daemon cached must not hide a zone just fixed.
        dns: DnsResolver::configured(&run.dns_servers),
        guard: LoopGuard::new(&config.smtp.hostname, &run.smtp_listen, &[]),
        client: relay.client.clone(),
        tls: tls::client_configs()?,
        clock: SystemClock::new(),
    };
    let dns = &net.dns;
    let https = tls::verified(&tls::ca_file(opts.ca_file.as_deref()));
    let domains: Vec<String> = if opts.domains.is_empty() {
        config.policy.domains.clone()
    } else {
        opts.domains.clone()
    };
    let domains: Vec<String> = domains
        .iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();

    let mut facts = Facts {
        role: config.role,
        hostname: config.smtp.hostname.to_ascii_lowercase(),
        accepted: config.policy.domains.clone(),
        tls_required: relay.client.tls != crate::relay::TlsPolicy::Opportunistic,
        daemon: daemon.version,
        ..Facts::default()
    };
    for (_, list) in relay.routes.named_hop_lists() {
        for hop in list.as_slice() {
            if let Host::Name(n) = &hop.host {
                facts.office_names.push(n.to_string());
            }
        }
    }
    for d in &domains {
        facts.domains.push(domain(dns, &https, d).await);
    }
    for (entry, hop) in config.relay.upstream_silo.iter().zip(&run.upstream_silo) {
        facts.silos.push(silo(&net, entry, hop, &domains).await);
    }
    facts.next_hops = next_hops(&net, config, relay, &domains).await;
    if config.role == Role::Edge {
        facts.firewall = FirewallFacts {
            mode: config.firewall.mode,
            admitted: admitted(config, dns).await,
            silo_dns: config.firewall.silo_dns.clone(),
            live: Err("not read yet".to_owned()),
        };
    }
    facts.spool.usage = daemon.usage;
    Ok(facts)
}

/// Completes `facts` with what this machine shows: the loaded firewall (edge) and the
/// spool's place and room. Blocking (runs `nft`, `df`): not on a runtime thread.
pub fn local_facts(config: &Config, facts: &mut Facts) {
    if config.role == Role::Edge {
        facts.firewall.live = live(config, &facts.firewall.admitted);
    }
    let usage = std::mem::replace(&mut facts.spool.usage, Err(String::new()));
    facts.spool = spool(config, usage);
}

/// One domain's DNS and MTA-STS policy.
async fn domain(
    dns: &DnsResolver,
    https: &Result<Arc<rustls::ClientConfig>, String>,
    d: &str,
) -> DomainFacts {
    let mx = dns.mx(d).await;
    let mut hosts = Vec::new();
    let mut records: Vec<&crate::relay::nexthop::MxRecord> =
        mx.as_deref().unwrap_or(&[]).iter().collect();
    records.sort_by_key(|r| r.preference);
    for r in records {
        let name = r.exchange.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || hosts.iter().any(|h: &HostFacts| h.name == name) {
            continue;
        }
        hosts.push(HostFacts {
            cname: dns.cname(&name).await.ok().flatten().map(|n| n.to_string()),
            addrs: dns.addrs(&name).await,
            name,
        });
    }
    let mta_sts_txt = dns.txt(&format!("_mta-sts.{d}")).await;
    let policy = match &mta_sts_txt {
        Ok(t) if mta_sts::announced(t) => Some(match https {
            Ok(config) => fetch_policy(dns, config, d).await,
            Err(e) => Err(e.clone()),
        }),
        _ => None,
    };
    DomainFacts {
        domain: d.to_owned(),
        mx,
        hosts,
        mta_sts_txt,
        policy,
        tls_rpt_txt: dns.txt(&format!("_smtp._tls.{d}")).await,
    }
}

/// `GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (RFC 8461 §3.3): the raw response,
/// at most [`mta_sts::RESPONSE_MAX`] bytes, over TLS verified for that name.
async fn fetch_policy(
    dns: &DnsResolver,
    config: &Arc<rustls::ClientConfig>,
    domain: &str,
) -> Result<Vec<u8>, String> {
    let host = format!("mta-sts.{domain}");
    let addrs = dns
        .addrs(&host)
        .await
        .map_err(|_| format!("{host} does not resolve"))?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|_| format!("{host} is not a host name"))?;
    let mut last = format!("{host} has no address");
    for ip in addrs {
        let step = async {
            let tcp = TcpStream::connect(SocketAddr::new(ip, 443))
                .await
                .map_err(|e| format!("{ip}:443: {e}"))?;
            let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS with {host} ({ip}): {e}"))?;
            let request = format!(
                "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: mailbag/{}\r\nConnection: close\r\n\r\n",
                mta_sts::WELL_KNOWN,
                env!("CARGO_PKG_VERSION")
            );
            tls.write_all(request.as_bytes())
                .await
                .map_err(|e| format!("{host}: {e}"))?;
            let mut body = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                    // A server that closes without close_notify: what came is the answer.
                    Err(_) if !body.is_empty() => break,
                    Err(e) => return Err(format!("{host}: {e}")),
                }
                if body.len() > mta_sts::RESPONSE_MAX {
                    return Err(format!(
                        "{host}: the answer is larger than {} bytes",
                        mta_sts::RESPONSE_MAX
                    ));
                }
            }
            Ok(body)
        };
        match tokio::time::timeout(STEP_TIMEOUT, step).await {
            Ok(Ok(body)) => return Ok(body),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = format!(
                    "{host} ({ip}) did not answer within {}s",
                    STEP_TIMEOUT.as_secs()
                )
            }
        }
    }
    Err(last)
}

/// A session bounded by [`STEP_TIMEOUT`].
async fn bounded(step: impl Future<Output = Outcome>) -> Result<Outcome, String> {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .map_err(|_| format!("no answer within {}s", STEP_TIMEOUT.as_secs()))
}

/// What the check's SMTP sessions need: the resolver, ourselves to leave out, the client
/// settings (EHLO name, TLS policy), TLS, time.
struct Net {
    dns: DnsResolver,
    guard: LoopGuard,
    client: ClientConfig,
    tls: TlsClients,
    clock: SystemClock,
}

impl Net {
    /// `hop`'s addresses, ours left out.
    async fn addrs(&self, hop: &NextHop) -> Vec<SocketAddr> {
        let mut a = self.dns.socket_addrs(&hop.host, hop.port).await;
        a.retain(|a| !self.guard.is_our_address(*a));
        a
    }

    /// Connect, EHLO, QUIT: the extensions offered, or why not.
    async fn probe(&self, hop: &NextHop) -> Result<Extensions, String> {
        let addrs = self.addrs(hop).await;
        let session = probe_session(
            &addrs,
            &hop.host,
            self.client.clone(),
            &self.tls,
            &self.clock,
        );
        match bounded(session).await? {
            Outcome::Probed(ext) => Ok(ext),
            Outcome::Failed(f) => Err(f.to_string()),
            _ => Err("unexpected answer".into()),
        }
    }

    /// ETRN for `domain`: the reply, or why not.
    async fn etrn(&self, hop: &NextHop, domain: &str) -> Result<String, String> {
        let addrs = self.addrs(hop).await;
        let cfg = self.client.clone();
        match bounded(etrn_session(
            &addrs,
            &hop.host,
            cfg,
            domain,
            &self.tls,
            &self.clock,
        ))
        .await?
        {
            Outcome::Etrn(reply) => Ok(reply.to_string()),
            Outcome::Failed(f) => Err(f.to_string()),
            _ => Err("unexpected answer".into()),
        }
    }
}

/// One `relay.upstream-silo` entry (`hop`, as written `entry`): its addresses, a probe,
/// ETRN per domain.
async fn silo(net: &Net, entry: &str, hop: &NextHop, domains: &[String]) -> SiloFacts {
    let addrs = match &hop.host {
        Host::Ip(ip) => Ok(vec![*ip]),
        Host::Name(n) => net.dns.addrs(n).await,
    };
    let probe = net.probe(hop).await;
    let mut etrn = Vec::new();
    if probe.is_ok() {
        for d in domains {
            etrn.push((d.clone(), net.etrn(hop, d).await));
        }
    }
    SiloFacts {
        entry: entry.to_owned(),
        host: hop.host.to_string(),
        addrs,
        probe,
        etrn,
    }
}

/// The next hops mail leaves by: the configured lists (edge), or each checked domain's MX
/// hosts ahead of this silo.
async fn next_hops(
    net: &Net,
    config: &Config,
    relay: &RelaySettings,
    domains: &[String],
) -> Vec<HopProbe> {
    let mut todo: Vec<(String, NextHop)> = Vec::new();
    match config.role {
        Role::Edge => {
            for (name, list) in relay.routes.named_hop_lists() {
                let route = match name.strip_prefix("route:") {
                    Some(i) => format!("relay.routes[{i}]"),
                    None => "relay.next-hops".to_owned(),
                };
                for hop in list.ordered(0) {
                    if !net.guard.is_self(hop) {
                        todo.push((route.clone(), hop.clone()));
                    }
                }
            }
        }
        Role::Silo => {
            for d in domains {
                if let Ok(hops) = net.dns.next_hops(d, &net.guard, DEFAULT_PORT).await {
                    for hop in hops.ordered(0) {
                        todo.push((format!("MX of {d}"), hop.clone()));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (route, hop) in todo {
        out.push(HopProbe {
            route,
            hop: format!("{}:{}", hop.host, hop.port),
            result: net.probe(&hop).await,
        });
    }
    out
}

/// The silo addresses the firewall configuration admits: `firewall.silo`, plus what
/// `silo-dns` resolves to with our resolver.
async fn admitted(config: &Config, dns: &DnsResolver) -> Result<Vec<Cidr>, String> {
    let f = &config.firewall;
    let mut list: Vec<Cidr> = SiloSet::parse(&f.silo)
        .map(|s| s.iter().copied().collect())
        .map_err(|e| e.to_string())?;
    if let Some(name) = &f.silo_dns {
        let a = dns
            .addrs(name)
            .await
            .map_err(|e| format!("firewall.silo-dns {name}: {e:?}"))?;
        list.extend(a.iter().map(|ip| Cidr::host(*ip)));
    }
    Ok(list)
}

/// The loaded rules against what the configuration renders with `admitted`.
fn live(config: &Config, admitted: &Result<Vec<Cidr>, String>) -> Result<LiveRules, String> {
    let f = &config.firewall;
    if f.mode == FirewallMode::Off {
        return Err("mode off".to_owned());
    }
    let silo = SiloSet::new(admitted.clone()?).map_err(|e| e.to_string())?;
    let rules = Ruleset::new(f, silo, Primary::Up, true).map_err(|e| e.to_string())?;
    live_rules(&rules)
}

/// What is loaded against what `rules` render (runs `nft`/`iptables`: blocking).
fn live_rules(rules: &Ruleset) -> Result<LiveRules, String> {
    let loaded = apply::loaded(rules)?;
    let expected = nft::set_contents(rules);
    let sets = loaded
        .sets
        .iter()
        .map(|(name, have)| {
            let want = expected
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, w)| w.clone())
                .unwrap_or_default();
            ((*name).to_owned(), want, have.clone())
        })
        .collect();
    let include_current = (loaded.backend == "nft" && Path::new(NFTABLES_D).is_dir()).then(|| {
        std::fs::read_to_string(nft::INCLUDE_PATH).is_ok_and(|t| t == nft::include(rules))
    });
    Ok(LiveRules {
        backend: loaded.backend.to_owned(),
        hooked: loaded.hooked,
        sets,
        include_current,
    })
}

/// The spool image's place and room (`/proc/mounts`, `df`), and the daemon's figures.
fn spool(config: &Config, usage: Result<SpoolUsage, String>) -> SpoolFacts {
    let path = PathBuf::from(&config.spool.path);
    let real = std::fs::canonicalize(&path)
        .or_else(|_| {
            path.parent()
                .map(std::fs::canonicalize)
                .unwrap_or_else(|| Ok(PathBuf::from("/")))
                .map(|p| p.join(path.file_name().unwrap_or_default()))
        })
        .unwrap_or_else(|_| path.clone());
    let mtd = real.to_string_lossy().starts_with("/dev/mtd");
    let meta = std::fs::metadata(&real).ok();
    let dir = real.parent().unwrap_or(Path::new("/"));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let df = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    SpoolFacts {
        path: real.display().to_string(),
        mtd,
        fs_type: fs_type(&mounts, &real),
        image_bytes: meta
            .as_ref()
            .map_or(config.spool.size, |m| m.len().max(config.spool.size)),
        image_allocated: (!mtd).then(|| meta.as_ref().map_or(0, |m| m.blocks() * 512)),
        fs_available: if mtd { None } else { df_available(&df) },
        usage,
    }
}

/// The type of the file system holding `path`: the longest mount point above it in a
/// `/proc/mounts` listing.
pub fn fs_type(mounts: &str, path: &Path) -> Option<String> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_dev, point, kind) = (w.next()?, w.next()?, w.next()?);
            // Spaces in mount points are written as \040.
            let point = point.replace("\\040", " ");
            path.starts_with(&point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// Bytes available from `df -Pk DIR` output (the 4th column of its data line).
pub fn df_available(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_system_of_a_path_is_its_longest_mount_point() {
        let mounts = "/dev/root /rom squashfs ro 0 0\n\
                      overlayfs:/overlay / overlay rw 0 0\n\
                      tmpfs /tmp tmpfs rw 0 0\n\
                      /dev/sda1 /mnt/usb\\040disk ext4 rw 0 0\n";
        let t = |p: &str| fs_type(mounts, Path::new(p));
        assert_eq!(t("/srv/mailbag/spool.img").as_deref(), Some("overlay"));
        assert_eq!(t("/tmp/mailbag/spool.img").as_deref(), Some("tmpfs"));
        assert_eq!(t("/mnt/usb disk/spool.img").as_deref(), Some("ext4"));
        assert_eq!(
            t("/tmpx/s.img").as_deref(),
            Some("overlay"),
            "whole components only"
        );
        assert_eq!(fs_type("", Path::new("/x")), None);
    }

    #[test]
    fn df_output_gives_the_bytes_available() {
        let df = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n\
                  overlayfs:/overlay    5568    1204      4364      22% /\n";
        assert_eq!(df_available(df), Some(4364 * 1024));
        assert_eq!(df_available("df: /x: No such file\n"), None);
    }
}
