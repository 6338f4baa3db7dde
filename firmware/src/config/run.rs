//! [`RunSettings`]: a [`Config`] checked once and parsed into what the daemon runs on
//! (smoltcp's `new_checked`). Listen addresses are `SocketAddr`s, the relay section is
//! [`RelaySettings`], the policy is [`Rules`], the upstream silo a [`NextHop`]; code past
//! [`RunSettings::new_checked`] never parses a config string again, so it has no "cannot
//! happen" branches. The daemon starts from one, and a reload builds a new one before
//! anything changes: a configuration that does not make one is refused as a whole.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Config, Role};
use crate::policy::Rules;
use crate::relay::{NextHop, RelaySettings};
use crate::smtp::SessionConfig;
use crate::spool::Limits;

/// How STARTTLS is offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartTls {
    /// Not offered (`smtp.starttls = false`).
    Off,
    /// With a certificate generated once for the host name, kept in the state directory.
    SelfSigned,
    /// With the configured certificate chain and key (`smtp.tls-cert`, `smtp.tls-key`).
    Files {
        /// PEM certificate chain.
        cert: PathBuf,
        /// PEM private key.
        key: PathBuf,
    },
}

/// Where the spool lives and how much it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolPlace {
    /// Image file or `/dev/mtdN`.
    pub path: PathBuf,
    /// Size of a new image file.
    pub size: u64,
    /// What it may hold.
    pub limits: Limits,
}

/// Everything the daemon runs on, parsed.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The configuration these were made from (the status page, reload's comparisons).
    pub config: Config,
    /// Edge or silo.
    pub role: Role,
    /// SMTP listen addresses (`smtp.listen`).
    pub smtp_listen: Vec<SocketAddr>,
    /// Sessions at once (`smtp.max-sessions`, at least 1).
    pub max_sessions: usize,
    /// STARTTLS.
    pub starttls: StartTls,
    /// What every SMTP session shares (`[smtp]`); the host adds the policy.
    pub session: SessionConfig<()>,
    /// The acceptance rules (`[policy]`).
    pub rules: Arc<Rules>,
    /// The protection checks (`[policy]`'s checks, `[scan]`), parsed once.
    pub protection: Arc<crate::policy::Protection>,
    /// The accepted domains, lower-case: what ETRN may flush, and what the edge asks its
    /// silo for.
    pub domains: Vec<String>,
    /// Parsed `[relay]`, with the edge's hold-unrouted rule.
    pub relay: RelaySettings,
    /// The upstream silos the edge watches, in MX order (`relay.upstream-silo`; none for
    /// a silo).
    pub upstream_silo: Vec<NextHop>,
    /// DNS servers (`relay.dns-servers`); empty: the system's `resolv.conf`.
    pub dns_servers: Vec<SocketAddr>,
    /// The spool.
    pub spool: SpoolPlace,
    /// The admin page's listen addresses (`web.listen`; empty: no page).
    pub web_listen: Vec<SocketAddr>,
    /// The control socket (`daemon.control-socket`; `None`: disabled).
    pub control_socket: Option<PathBuf>,
}

impl RunSettings {
    /// Checks `config` (every [`Config::validate`] error, one per line) and parses it.
    pub fn new_checked(config: Config) -> Result<Self, String> {
        let report = config.validate();
        if !report.errors.is_empty() {
            let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            return Err(lines.join("\n"));
        }
        let listen = |key: &str, list: &[String]| -> Result<Vec<SocketAddr>, String> {
            list.iter()
                .enumerate()
                .map(|(i, t)| {
                    t.parse()
                        .map_err(|_| format!("{key}[{i}]: '{t}' is not address:port"))
                })
                .collect()
        };
        let smtp = &config.smtp;
        let starttls = match (smtp.starttls, &smtp.tls_cert, &smtp.tls_key) {
            (false, _, _) => StartTls::Off,
            (true, Some(c), Some(k)) if !c.trim().is_empty() && !k.trim().is_empty() => {
                StartTls::Files {
                    cert: PathBuf::from(c),
                    key: PathBuf::from(k),
                }
            }
            (true, _, _) => StartTls::SelfSigned,
        };
        let session = SessionConfig::new(smtp, ()).map_err(|e| e.to_string())?;
        let rules = Rules::from_config(&config.policy).map_err(|e| format!("policy: {e}"))?;
        let protection = crate::policy::Protection::from_config(&config.policy, &config.scan)
            .map_err(|errors| {
                errors
                    .iter()
                    .map(|(k, m)| format!("{k}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        // Notice mail has routes of its own (never through the primary that is down).
        let relay_config = crate::monitor::config::relay_config(&config);
        let relay = RelaySettings::from_config(&relay_config, &smtp.hostname)
            .map_err(|e| format!("relay: {e}"))?
            .for_edge(config.role == Role::Edge);
        let upstream_silo = match config.role {
            Role::Edge => config
                .relay
                .upstream_silo
                .iter()
                .map(|silo| {
                    NextHop::parse(silo, 0)
                        .map_err(|e| format!("relay.upstream-silo: '{silo}': {e}"))
                })
                .collect::<Result<_, _>>()?,
            Role::Silo => Vec::new(),
        };
        let dns_servers = config
            .relay
            .dns_servers
            .iter()
            .take(crate::relay::dns::SERVERS_MAX)
            .enumerate()
            .map(|(i, t)| {
                crate::relay::dns::parse_server(t).ok_or_else(|| {
                    format!("relay.dns-servers[{i}]: '{t}' is not an IP address with a port")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            role: config.role,
            smtp_listen: listen("smtp.listen", &smtp.listen)?,
            max_sessions: smtp.max_sessions.max(1) as usize,
            starttls,
            session,
            rules: Arc::new(rules),
            protection: Arc::new(protection),
            domains: config
                .policy
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            relay,
            upstream_silo,
            dns_servers,
            spool: SpoolPlace {
                path: PathBuf::from(&config.spool.path),
                size: config.spool.size,
                limits: Limits {
                    max_messages: config.spool.max_messages,
                    max_bytes: config.spool.max_bytes,
                    max_bytes_per_domain: config.spool.max_bytes_per_domain,
                },
            },
            web_listen: listen("web.listen", &config.web.listen)?,
            control_socket: (!config.daemon.control_socket.is_empty())
                .then(|| PathBuf::from(&config.daemon.control_socket)),
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_demo_parses_into_typed_settings() {
        let r = RunSettings::new_checked(Config::demo(Path::new("/s"))).unwrap();
        assert_eq!(r.smtp_listen, ["127.0.0.1:2525".parse().unwrap()]);
        // The page and the self-signed certificate only where the build has them.
        let page: Vec<std::net::SocketAddr> = if cfg!(feature = "web") {
            vec!["127.0.0.1:8080".parse().unwrap()]
        } else {
            Vec::new()
        };
        assert_eq!(r.web_listen, page);
        assert_eq!(r.domains, ["example.test"]);
        if cfg!(feature = "self-signed") {
            assert_eq!(r.starttls, StartTls::SelfSigned);
        }
        assert_eq!(r.control_socket, Some(PathBuf::from("/s/control.sock")));
        assert!(r.upstream_silo.is_empty() && r.dns_servers.is_empty());
    }

    #[test]
    fn an_invalid_config_is_refused_with_every_error() {
        let mut c = Config::demo(Path::new("/s"));
        c.smtp.listen = vec!["nowhere".into()];
        c.relay.lifetime_days = 99;
        let e = RunSettings::new_checked(c).unwrap_err();
        assert!(
            e.contains("smtp.listen[0]") && e.contains("relay.lifetime-days"),
            "{e}"
        );
    }

    #[test]
    fn the_edge_watches_its_silo_and_a_silo_does_not() {
        let mut c = Config::demo(Path::new("/s"));
        c.relay.upstream_silo = vec![
            "silo1.example.net:2525".into(),
            "silo2.example.net:25".into(),
        ];
        c.relay.dns_servers = vec!["192.0.2.53".into()];
        let r = RunSettings::new_checked(c.clone()).unwrap();
        let ports: Vec<u16> = r.upstream_silo.iter().map(|h| h.port).collect();
        assert_eq!(ports, [2525, 25]);
        assert_eq!(r.dns_servers, ["192.0.2.53:53".parse().unwrap()]);
        c.role = Role::Silo;
        assert!(
            RunSettings::new_checked(c)
                .unwrap()
                .upstream_silo
                .is_empty()
        );
    }
}
