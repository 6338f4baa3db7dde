//! `mailbag etrn [HOST[:PORT] DOMAIN...]`: ask an SMTP server to deliver the mail it holds
//! now (ETRN, RFC 1985).
//!
//! - `etrn` without arguments asks each configured upstream silo (`relay.upstream-silo`,
//!   in order) for every accepted domain — what the WAN hotplug does when the link comes
//!   back. It fails only when no silo took the requests.
//! - [`flush_local`] asks the local daemon (its first SMTP listener) for one domain or all:
//!   `queue flush`'s fallback when there is no control socket.
//!
//! One short session per domain through the daemon's own client driver and resolver
//! (`relay.dns-servers` when a config is read, else `/etc/resolv.conf`; then `/etc/hosts`),
//! STARTTLS when offered (certificate not checked: ETRN carries no secrets and only
//! triggers a flush of configured domains).

use std::net::SocketAddr;
use std::time::Duration;

use mailbag_hal::SystemClock;

use super::Args;
use crate::config::{Config, RunSettings};
use crate::daemon::delivery::dns::DnsResolver;
use crate::daemon::delivery::etrn_session;
use crate::relay::client::{ClientConfig, FailReason, Outcome};
use crate::relay::{NextHop, TlsPolicy};

/// Default configuration (the router's UCI file).
const DEFAULT_CONFIG: &str = "/etc/config/mailbag";
/// Longest one ETRN session may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `mailbag etrn`.
pub fn etrn(args: &mut Args) -> Result<(), String> {
    let config_path = args.option("config")?;
    let mut words = Vec::new();
    while let Some(w) = args.next_word() {
        words.push(w);
    }
    if words.is_empty() {
        let c = load(config_path)?;
        if c.relay.upstream_silo.is_empty() {
            return Err(
                "relay.upstream-silo is not set; name a server: mailbag etrn HOST DOMAIN".into(),
            );
        }
        let dns = RunSettings::new_checked(c.clone())?.dns_servers;
        let mut errors = Vec::new();
        for silo in &c.relay.upstream_silo {
            if let Err(e) = run_all(silo, &c.policy.domains, &c.smtp.hostname, &dns) {
                errors.push(format!("{silo}: {e}"));
            }
        }
        // One silo answering is enough: the others may be down with the office link.
        return if errors.len() < c.relay.upstream_silo.len() {
            Ok(())
        } else {
            Err(errors.join("; "))
        };
    }
    if words.len() < 2 {
        return Err("usage: mailbag etrn [HOST[:PORT] DOMAIN...] [--config FILE]".into());
    }
    let config = config_path.map(|p| load(Some(p))).transpose()?;
    let helo = config
        .as_ref()
        .map(|c| c.smtp.hostname.clone())
        .unwrap_or_else(local_name);
    let dns = match config {
        Some(c) => RunSettings::new_checked(c)?.dns_servers,
        None => Vec::new(),
    };
    run_all(&words[0], &words[1..], &helo, &dns)
}

/// ETRN for `domain` (or every configured domain) to the local daemon of config `c`.
pub fn flush_local(c: &Config, domain: Option<String>) -> Result<(), String> {
    let settings = RunSettings::new_checked(c.clone())?;
    let addr = *settings
        .smtp_listen
        .first()
        .ok_or("smtp.listen is empty: no daemon to ask")?;
    // A wildcard listener is reached on loopback.
    let target = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        a => a.to_string(),
    };
    let domains = match domain {
        Some(d) => vec![d],
        None => c.policy.domains.clone(),
    };
    run_all(&target, &domains, &c.smtp.hostname, &settings.dns_servers)
}

fn load(path: Option<String>) -> Result<Config, String> {
    let path = path.unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    Config::load(path.as_ref()).map_err(|e| format!("{path}: {e}"))
}

fn local_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn run_all(server: &str, domains: &[String], helo: &str, dns: &[SocketAddr]) -> Result<(), String> {
    if domains.is_empty() {
        return Err("no domains to flush (policy.domains is empty)".into());
    }
    let mut failed = 0;
    for d in domains {
        match send(server, d, helo, dns) {
            Ok(reply) => println!("{server}: ETRN {d}: {reply}"),
            Err(e) => {
                eprintln!("{server}: ETRN {d}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        Err(format!(
            "{failed} of {} ETRN requests failed",
            domains.len()
        ))
    } else {
        Ok(())
    }
}

/// One ETRN session; the server's reply on success. The daemon's own client driver runs it
/// (`daemon::delivery::etrn_session`), on a runtime made for the call; names are looked up
/// by the daemon's resolver asking `dns` (empty: `/etc/resolv.conf`).
pub fn send(server: &str, domain: &str, helo: &str, dns: &[SocketAddr]) -> Result<String, String> {
    let hop = NextHop::parse(server, 0).map_err(|why| format!("'{server}': {why}"))?;
    let target = format!("{}:{}", hop.host, hop.port);
    let cfg = ClientConfig {
        helo_name: heapless::String::try_from(helo)
            .map_err(|_| "host name too long".to_string())?,
        tls: TlsPolicy::Opportunistic,
    };
    let tls = crate::daemon::delivery::tls::client_configs()?;
    let clock = SystemClock::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let resolver = DnsResolver::configured(dns);
    let session = async {
        let addrs = resolver.socket_addrs(&hop.host, hop.port).await;
        if addrs.is_empty() {
            return Err(format!("cannot resolve {target}"));
        }
        Ok::<_, String>(etrn_session(&addrs, &hop.host, cfg, domain, &tls, &clock).await)
    };
    // The timer is made inside the runtime.
    match rt.block_on(async { tokio::time::timeout(TIMEOUT, session).await }) {
        Err(_) => Err(format!(
            "no answer from {target} within {}s",
            TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Outcome::Etrn(reply))) => Ok(reply.to_string()),
        Ok(Ok(Outcome::Failed(f))) if f.reason == FailReason::Connect => {
            Err(format!("cannot connect to {target}"))
        }
        Ok(Ok(Outcome::Failed(f))) => Err(f.to_string()),
        Ok(Ok(_)) => Err("the session ended without an answer".into()),
    }
}
