//! `[relay]` checked once at start-up: everything the delivery cores need, parsed.
//!
//! The daemon calls [`RelaySettings::from_config`] when it loads the configuration; past
//! it no relay code re-parses a string. Errors name the `relay.*` key at fault.

use core::fmt;

use embassy_time::Duration;

use super::client::{ClientConfig, TlsPolicy};
use super::config::RelayConfig;
use super::nexthop::{NextHopError, NextHops};
use super::route::{RouteError, Routes};
use super::schedule::{RetryPolicy, ScheduleError};
use crate::smtp::address::Domain;

/// Most deliveries to one next hop at once (`relay.max-per-hop`).
pub const MAX_PER_HOP_LIMIT: u32 = 16;

/// The parsed `[relay]` section.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// When to retry, warn and give up.
    pub retry: RetryPolicy,
    /// Where each domain's mail goes (`relay.routes`, then `relay.next-hops`, then MX).
    pub routes: Routes,
    /// EHLO name and TLS policy for the client sessions.
    pub client: ClientConfig,
    /// Deliveries in flight per next hop.
    pub max_per_hop: u32,
    /// Time between next-hop probes while mail is held.
    pub probe_interval: Duration,
}

/// A `[relay]` value that cannot drive delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayConfigError {
    /// `relay.retry` or `relay.lifetime-days`.
    Retry(ScheduleError),
    /// `relay.next-hops`.
    NextHop(NextHopError),
    /// `relay.routes`.
    Route(RouteError),
    /// `relay.tls-policy` is not one of the three.
    TlsPolicy(String),
    /// `relay.max-per-hop` is 0 or above [`MAX_PER_HOP_LIMIT`].
    MaxPerHop(u32),
    /// `smtp.hostname` (our EHLO name) is not a host name.
    Hostname,
}

impl fmt::Display for RelayConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retry(e @ ScheduleError::Lifetime(_)) => write!(f, "relay.lifetime-days: {e}"),
            Self::Retry(e) => write!(f, "relay.retry: {e}"),
            Self::NextHop(e) => e.fmt(f),
            Self::Route(e) => e.fmt(f),
            Self::TlsPolicy(t) => write!(
                f,
                "relay.tls-policy: '{t}' is not opportunistic, require or require-verify"
            ),
            Self::MaxPerHop(n) => {
                write!(
                    f,
                    "relay.max-per-hop: {n} is outside 1..={MAX_PER_HOP_LIMIT}"
                )
            }
            Self::Hostname => f.write_str("smtp.hostname is not a host name (used for EHLO)"),
        }
    }
}

impl std::error::Error for RelayConfigError {}

impl RelaySettings {
    /// For the edge role: see [`Routes::hold_unrouted`].
    pub fn for_edge(mut self, edge: bool) -> Self {
        if edge {
            self.routes = self.routes.hold_unrouted();
        }
        self
    }

    /// Parse `[relay]`; `hostname` is `smtp.hostname`.
    pub fn from_config(cfg: &RelayConfig, hostname: &str) -> Result<Self, RelayConfigError> {
        let retry = RetryPolicy::from_config(cfg).map_err(RelayConfigError::Retry)?;
        let next_hops = NextHops::parse(&cfg.next_hops).map_err(RelayConfigError::NextHop)?;
        let routes = Routes::parse(&cfg.routes, next_hops).map_err(RelayConfigError::Route)?;
        let tls = TlsPolicy::parse(&cfg.tls_policy)
            .ok_or_else(|| RelayConfigError::TlsPolicy(cfg.tls_policy.clone()))?;
        if !(1..=MAX_PER_HOP_LIMIT).contains(&cfg.max_per_hop) {
            return Err(RelayConfigError::MaxPerHop(cfg.max_per_hop));
        }
        let helo_name = match Domain::parse(hostname, false) {
            Ok(Domain::Name(n)) => n,
            _ => return Err(RelayConfigError::Hostname),
        };
        Ok(Self {
            retry,
            routes,
            client: ClientConfig { helo_name, tls },
            max_per_hop: cfg.max_per_hop,
            probe_interval: Duration::from_secs(u64::from(cfg.probe_interval.max(1))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_errors_name_the_key() {
        let s = RelaySettings::from_config(&RelayConfig::default(), "mx.example.net").unwrap();
        assert_eq!(s.client.tls, TlsPolicy::Opportunistic);
        assert_eq!(
            s.routes.hop_lists().count(),
            0,
            "no next hop: deliver by MX"
        );
        let bad = |c: RelayConfig| {
            RelaySettings::from_config(&c, "mx.example.net")
                .unwrap_err()
                .to_string()
        };
        let d = RelayConfig::default;
        let cases = [
            (
                bad(RelayConfig {
                    retry: "soon".into(),
                    ..d()
                }),
                "relay.retry: 'soon'",
            ),
            (
                bad(RelayConfig {
                    lifetime_days: 40,
                    ..d()
                }),
                "relay.lifetime-days: lifetime of 40",
            ),
            (
                bad(RelayConfig {
                    next_hops: vec!["x y".into()],
                    ..d()
                }),
                "relay.next-hops[0]",
            ),
            (
                bad(RelayConfig {
                    tls_policy: "always".into(),
                    ..d()
                }),
                "relay.tls-policy: 'always'",
            ),
            (
                bad(RelayConfig {
                    max_per_hop: 0,
                    ..d()
                }),
                "relay.max-per-hop: 0",
            ),
        ];
        for (got, want) in cases {
            assert!(got.starts_with(want), "{got}");
        }
        assert_eq!(
            RelaySettings::from_config(&d(), "not a name").unwrap_err(),
            RelayConfigError::Hostname
        );
        let s = RelaySettings::from_config(
            &RelayConfig {
                tls_policy: "require-verify".into(),
                ..d()
            },
            "mx.example.net",
        )
        .unwrap();
        assert_eq!(s.client.tls, TlsPolicy::RequireVerify);
    }
}
