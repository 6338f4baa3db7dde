//! The `[relay]` configuration section (delivery to the next hop).

use serde::{Deserialize, Serialize};

/// `[relay]`: where accepted mail goes and how long mailbag keeps trying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RelayConfig {
    /// Next hops as `host:port`, optionally with a preference: `10 mail.lan:25`.
    pub next_hops: Vec<String>,
    /// Per-domain next hops: `DOMAIN = HOPS` or `DOMAIN = mx` (see
    /// [`Routes`](super::route::Routes)); other domains use `next_hops`, or MX when empty.
    pub routes: Vec<String>,
    /// Seconds between next-hop probes while mail is held.
    pub probe_interval: u32,
    /// Retry schedule, e.g. `15m for 2h, then 30m`.
    pub retry: String,
    /// Days before undeliverable mail is bounced (1..=30).
    pub lifetime_days: u32,
    /// Hours before a delay warning (0 = never).
    pub delay_warning_hours: u32,
    /// The upstream silos (edge role), in preference order (the MX order): `host:port`
    /// entries that receive ETRN when the WAN comes back. One silo may be written as a
    /// plain string.
    #[serde(deserialize_with = "one_or_many")]
    pub upstream_silo: Vec<String>,
    /// STARTTLS toward the next hops: `opportunistic` (default), `require` or
    /// `require-verify` (see [`TlsPolicy`](super::client::TlsPolicy)).
    pub tls_policy: String,
    /// Most simultaneous deliveries to one next hop.
    pub max_per_hop: u32,
    /// DNS servers for MX lookups as `ip` or `ip:port` (`[::1]:53` for IPv6); empty: the
    /// `nameserver` lines of `/etc/resolv.conf` (OpenWrt: dnsmasq on 127.0.0.1).
    pub dns_servers: Vec<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            next_hops: Vec::new(),
            routes: Vec::new(),
            probe_interval: 30,
            retry: "15m for 2h, then 30m".into(),
            lifetime_days: 7,
            delay_warning_hours: 4,
            upstream_silo: Vec::new(),
            tls_policy: "opportunistic".into(),
            max_per_hop: 2,
            dns_servers: Vec::new(),
        }
    }
}

/// A list, or one string standing for the list of its words: `upstream-silo =
/// "silo:25"` (TOML, the only form before silos could be chained) or `option upstream_silo
/// 'silo1:25 silo2:25'` (UCI, where an option may hold a list).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    // A visitor, not an untagged enum: serde's untagged enums buffer the value through a
    // generic `Content` tree, tens of KiB of code on the router for one option.
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("host:port, or a list of them")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(s.split_whitespace().map(str::to_owned).collect())
        }

        // Said here rather than by serde's default, whose message formats every kind of
        // value (floats included: code the router build otherwise has none of).
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Vec<String>, A::Error> {
            Err(serde::de::Error::custom("a section, not host:port"))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = a.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}
