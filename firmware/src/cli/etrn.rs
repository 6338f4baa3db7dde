//! `mailbag etrn [HOST[:PORT] DOMAIN...]`: ask an SMTP server to deliver the mail it holds
//! now (ETRN, RFC 1985).
//!
//! - `etrn` without arguments asks each configured upstream silo (`relay.upstream-silo`,
//!   in order) for every accepted domain — what the WAN hotplug does when the link comes
//!   back. It fails only when no silo took the requests.
//! - [`flush_local`] asks the local daemon (its first SMTP listener) for one domain or all:
//!   `queue flush`'s fallback when there is no control socket.
//!
//! One short session per domain through the daemon's own SMTP client and resolver
//! (`relay.dns-servers`, else `/etc/resolv.conf`; a name DNS does not know is looked up in
//! `/etc/hosts`), STARTTLS when offered (certificate not checked: ETRN carries no secrets
//! and only triggers a flush of configured domains).

use std::net::SocketAddr;
use std::time::Duration;

use mailbag_hal::SystemClock;

use super::Args;
use crate::config::Config;
use crate::daemon::delivery::dns::DnsResolver;
use crate::daemon::delivery::outbound::{Dialer, etrn_with};
use crate::daemon::delivery::tls;
use crate::relay::client::{ClientConfig, Outcome};
use crate::relay::{LoopGuard, NextHop, RelayConfig, TlsPolicy};

/// Default configuration (the router's UCI file).
const DEFAULT_CONFIG: &str = "/etc/config/mailbag";
/// Connect and read timeout for one ETRN session.
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
        let mut errors = Vec::new();
        for silo in &c.relay.upstream_silo {
            if let Err(e) = run_all(silo, &c.policy.domains, &c.smtp.hostname, &c.relay) {
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
    let relay = config.map(|c| c.relay).unwrap_or_default();
    run_all(&words[0], &words[1..], &helo, &relay)
}

/// ETRN for `domain` (or every configured domain) to the local daemon of config `c`.
pub fn flush_local(c: &Config, domain: Option<String>) -> Result<(), String> {
    let listen = c
        .smtp
        .listen
        .first()
        .ok_or("smtp.listen is empty: no daemon to ask")?;
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("smtp.listen: '{listen}' is not address:port"))?;
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
    run_all(&target, &domains, &c.smtp.hostname, &c.relay)
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

/// ETRN for each of `domains` to `server` (`host[:port]`, port 25 by default), saying
/// EHLO `helo`; DNS as `relay` says. Prints each reply; fails when one failed.
fn run_all(
    server: &str,
    domains: &[String],
    helo: &str,
    relay: &RelayConfig,
) -> Result<(), String> {
    if domains.is_empty() {
        return Err("no domains to flush (policy.domains is empty)".into());
    }
    let hop = NextHop::parse(server, 0).map_err(|why| format!("'{server}': {why}"))?;
    let dns = DnsResolver::from_config(relay)?;
    // The command may ask this machine's own daemon: no loop guard here.
    let guard = LoopGuard::new("", &[], &[]);
    let tls = tls::client_configs()?;
    let clock = SystemClock::new();
    let dialer = Dialer {
        dns: &dns,
        guard: &guard,
        client: ClientConfig {
            helo_name: heapless::String::try_from(helo)
                .map_err(|_| "host name too long".to_string())?,
            tls: TlsPolicy::Opportunistic,
        },
        tls: &tls,
        clock: &clock,
        connect_timeout: TIMEOUT,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut failed = 0;
    for d in domains {
        let outcome =
            rt.block_on(async { tokio::time::timeout(TIMEOUT, etrn_with(&dialer, &hop, d)).await });
        match outcome {
            Ok(Outcome::Etrn(reply)) => println!("{server}: ETRN {d}: {reply}"),
            Ok(Outcome::Failed(f)) => {
                eprintln!("{server}: ETRN {d}: {f}");
                failed += 1;
            }
            Ok(_) | Err(_) => {
                eprintln!(
                    "{server}: ETRN {d}: no answer within {}s",
                    TIMEOUT.as_secs()
                );
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
