//! `firewall.mode = "open-when-primary-down"`: the running firewall follows the primary.
//! When the primary's overall state changes ([`Deliverer::route_state`](super::Deliverer::route_state)) the live
//! nft sets (fw4) or iptables chains (fw3) are switched in one transaction
//! ([`crate::firewall::apply::apply_live`]); while it is down the switch is repeated every
//! probe interval, because a firewall reload puts back the include file's state (closed).
//! The include file itself is left as `mailbag firewall apply` wrote it.
//!
//! Runs `nft`/`iptables-restore` on a blocking thread, one at a time; only changes and
//! failures are logged.

use std::sync::{Arc, PoisonError};

use super::watch::Watch;
use crate::daemon::delivery::hops::Overall;
use crate::firewall::dns;
use crate::firewall::{FirewallConfig, FirewallMode, Primary, Ruleset, SiloSet, apply, nft};

/// Switches the firewall to `state` (nothing unless the mode follows the primary).
pub fn follow(w: &Watch, state: Overall) {
    let cfg = w.settings().firewall.clone();
    if cfg.mode != FirewallMode::OpenWhenPrimaryDown {
        return;
    }
    let primary = match state {
        Overall::Unknown => return,
        Overall::Up => Primary::Up,
        Overall::Down => Primary::Down,
    };
    let (events, clock, loaded) = (
        Arc::clone(&w.events),
        Arc::clone(&w.clock),
        Arc::clone(&w.firewall_loaded),
    );
    crate::daemon::task::spawn_blocking(move || {
        // One switch at a time, and the state last loaded.
        let mut loaded = loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = *loaded != Some(primary);
        match ruleset(&cfg, primary).and_then(|r| apply::apply_live(&r).map_err(|e| e.to_string()))
        {
            Ok(outcome) => {
                *loaded = Some(primary);
                if changed {
                    let text = format!(
                        "firewall follows the primary ({primary}): port 25 {} ({outcome})",
                        if primary == Primary::Down {
                            "open to all"
                        } else {
                            "only from the silo"
                        }
                    );
                    crate::log!("{text}");
                    events.push(clock.unix_seconds(), "firewall", None, &text);
                }
            }
            Err(e) => {
                *loaded = None;
                crate::warn!("firewall could not follow the primary ({primary}): {e}");
            }
        }
    });
}

/// The rules for `primary`: the configured silo addresses and the last good `silo-dns`
/// answer recorded in the include file (no lookup here: a switch must not wait on DNS).
pub fn ruleset(cfg: &FirewallConfig, primary: Primary) -> Result<Ruleset, String> {
    let mut prefixes: Vec<_> = SiloSet::parse(&cfg.silo)
        .map_err(|e| e.to_string())?
        .iter()
        .copied()
        .collect();
    let last_good = std::fs::read_to_string(nft::INCLUDE_PATH)
        .map(|t| dns::parse_last_good(&t))
        .unwrap_or_default();
    if cfg.silo_dns.is_some() {
        prefixes.extend(dns::prefixes(&last_good));
    }
    let silo = SiloSet::new(prefixes).map_err(|e| e.to_string())?;
    Ruleset::new(cfg, silo, primary, false)
        .map(|r| r.with_resolved(last_good))
        .map_err(|e| e.to_string())
}
