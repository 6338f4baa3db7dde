//! `mailbag etrn [HOST[:PORT] DOMAIN...]`: ask an SMTP server to deliver the mail it holds
//! now (ETRN, RFC 1985).
//!
//! - `etrn` without arguments asks the configured upstream silo (`relay.upstream-silo`)
//!   for every accepted domain — what the WAN hotplug does when the link comes back.
//! - [`flush_local`] asks the local daemon (its first SMTP listener) for one domain or all:
//!   `queue flush`'s fallback when there is no control socket.
//!
//! Blocking, one short session per domain, STARTTLS when offered (certificate not checked:
//! ETRN carries no secrets and only triggers a flush of configured domains).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use mailbag_hal::{Clock, SystemClock};

use super::Args;
use crate::config::Config;
use crate::relay::client::{ClientAction, ClientConfig, Outcome};
use crate::relay::{Client, TlsPolicy};

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
    let (server, domains, helo) = if words.is_empty() {
        let c = load(config_path)?;
        let silo = c
            .relay
            .upstream_silo
            .clone()
            .ok_or("relay.upstream-silo is not set; name a server: mailbag etrn HOST DOMAIN")?;
        (silo, c.policy.domains.clone(), c.smtp.hostname.clone())
    } else if words.len() >= 2 {
        let helo = config_path
            .map(|p| load(Some(p)))
            .transpose()?
            .map(|c| c.smtp.hostname)
            .unwrap_or_else(local_name);
        (words[0].clone(), words[1..].to_vec(), helo)
    } else {
        return Err("usage: mailbag etrn [HOST[:PORT] DOMAIN...] [--config FILE]".into());
    };
    run_all(&server, &domains, &helo)
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
    run_all(&target, &domains, &c.smtp.hostname)
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

fn run_all(server: &str, domains: &[String], helo: &str) -> Result<(), String> {
    if domains.is_empty() {
        return Err("no domains to flush (policy.domains is empty)".into());
    }
    let mut failed = 0;
    for d in domains {
        match send(server, d, helo) {
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

/// The blocking socket to the silo: plaintext until STARTTLS, then TLS.
enum EtrnStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Gone,
}

impl EtrnStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            EtrnStream::Plain(s) => s.read(buf),
            EtrnStream::Tls(s) => s.read(buf),
            EtrnStream::Gone => Ok(0),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            EtrnStream::Plain(s) => s.write_all(buf),
            EtrnStream::Tls(s) => s.write_all(buf).and_then(|()| s.flush()),
            EtrnStream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// One ETRN session; the server's reply on success.
pub fn send(server: &str, domain: &str, helo: &str) -> Result<String, String> {
    let target = if server.contains(':') && !server.ends_with(']') {
        server.to_string()
    } else {
        format!("{server}:25")
    };
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .collect();
    let host = target
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    let tcp = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, TIMEOUT).ok())
        .ok_or_else(|| format!("cannot connect to {target}"))?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let clock = SystemClock::new();
    let cfg = ClientConfig {
        helo_name: heapless::String::try_from(helo)
            .map_err(|_| "host name too long".to_string())?,
        tls: TlsPolicy::Opportunistic,
    };
    let mut c = Client::etrn(cfg, domain, clock.now());
    let mut conn = EtrnStream::Plain(tcp);
    let mut buf = [0u8; 2048];
    loop {
        let out = c.output();
        if !out.is_empty() {
            let n = out.len();
            if conn.write_all(out).is_err() {
                c.eof();
            } else {
                c.written(n, clock.now());
            }
        }
        match c.next_action() {
            Some(ClientAction::StartTls) => {
                let EtrnStream::Plain(tcp) = std::mem::replace(&mut conn, EtrnStream::Gone) else {
                    break;
                };
                let tls = crate::daemon::delivery::tls::client_configs()?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| e.to_string())?;
                match rustls::ClientConnection::new(Arc::clone(&tls.any), name) {
                    Ok(session) => {
                        conn = EtrnStream::Tls(Box::new(rustls::StreamOwned::new(session, tcp)));
                        c.tls_established(false, clock.now());
                    }
                    Err(_) => c.tls_failed(),
                }
                continue;
            }
            Some(ClientAction::SendBody) => c.eof(),
            Some(ClientAction::Close) => {
                let out = c.output();
                let _ = conn.write_all(out);
                break;
            }
            Some(ClientAction::Done) | None => {}
        }
        if c.is_closed() {
            break;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => c.eof(),
            Ok(n) => {
                let mut used = 0;
                while used < n {
                    let k = c.input(&buf[used..n], clock.now());
                    if k == 0 {
                        break;
                    }
                    used += k;
                }
            }
        }
    }
    match c.outcome() {
        Some(Outcome::Etrn(reply)) => Ok(reply.to_string()),
        Some(Outcome::Failed(f)) => Err(f.to_string()),
        _ => Err("the session ended without an answer".into()),
    }
}
