//! Next-hop state: one [`HopHealth`] per route — the routes with fixed next hops
//! (`relay.next-hops`, `relay.routes` with hosts), each domain delivered by MX that was
//! tried (a silo's offices), and, on the edge, each upstream silo.
//! This is the only record of whether a next hop answers; the probe, every delivery
//! attempt, the silo watch, the status page, the metrics, the LED and the firewall all
//! read or feed it.
//!
//! Results are recorded, and their transitions acted on, by
//! `Deliverer::route_state` (`transitions`).
//!
//! The map holds one entry per configured route or silo, and one per accepted domain
//! delivered by MX (all bounded by the configuration); routes no longer configured are
//! dropped when the next probe round lists them. An MX route is never the primary: its
//! return only releases its domain's mail.

use std::sync::{Mutex, PoisonError};

use embassy_time::Instant;

use crate::relay::health::{Change, Health, HopHealth};
use crate::relay::{HopKey, NextHop};
use crate::vecmap::VecMap;

/// Which kind of route a state is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteId<'a> {
    /// A delivery route by its name ([`crate::relay::Route::name`]).
    Delivery(&'a str),
    /// An upstream silo (edge role).
    Upstream(&'a NextHop),
    /// A domain's MX route by its name (`mx:DOMAIN`): a silo delivering an office's mail,
    /// whose next hops come from DNS.
    Mx(&'a str),
}

impl<'a> RouteId<'a> {
    /// The kind of the delivery route named `name` ([`crate::relay::Route::name`]): an MX
    /// route (`mx:DOMAIN`) or one with fixed next hops.
    pub fn of_route(name: &'a str) -> Self {
        if crate::relay::route::mx_domain(name).is_some() {
            Self::Mx(name)
        } else {
            Self::Delivery(name)
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Delivery(n) | Self::Mx(n) => (*n).to_owned(),
            Self::Upstream(h) => upstream_name(h),
        }
    }
}

/// The state's name of upstream silo `h` (`upstream silo.example:25`).
pub fn upstream_name(h: &NextHop) -> String {
    format!("upstream {}:{}", h.host, h.port)
}

/// One route's state as shown to people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// The route's name (`next-hops`, `route:0`, `upstream silo.example:25`).
    pub name: String,
    /// The next hop last tried or answering.
    pub hop: String,
    /// Up, down or not known yet.
    pub health: Health,
    /// Unix seconds since it is in that state.
    pub since: u64,
    /// True for an upstream silo.
    pub upstream: bool,
}

struct Entry {
    name: String,
    hop: String,
    health: HopHealth,
    upstream: bool,
    /// Carries only notices: not part of the primary's overall state.
    notices: bool,
    /// A domain's MX route: not part of the primary's overall state either.
    mx: bool,
    last_ok: Option<Instant>,
}

impl Entry {
    fn is_primary(&self) -> bool {
        !self.upstream && !self.notices && !self.mx
    }
}

/// Every route's state.
#[derive(Default)]
pub struct HopStates(Mutex<VecMap<HopKey, Entry>>);

/// The primary's overall state: any delivery route down is "down"; else any up is "up"
/// (routes not probed yet wait their turn). Upstream silos and notice routes are not the
/// primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overall {
    /// Nothing known yet.
    Unknown,
    /// No delivery route is down, and one at least answers.
    Up,
    /// At least one delivery route is down.
    Down,
}

impl HopStates {
    /// Whether route `name` is down (its next hops failed `down-after` times in a row and
    /// have not answered since); unknown counts as not down.
    pub fn is_down(&self, name: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&HopKey::of(name))
            .is_some_and(|e| e.health.health() == Health::Down)
    }

    /// Every route, delivery routes first, by name.
    pub fn view(&self) -> Vec<RouteView> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<RouteView> = map
            .values()
            .map(|e| RouteView {
                name: e.name.clone(),
                hop: e.hop.clone(),
                health: e.health.health(),
                since: e.health.since_unix(),
                upstream: e.upstream,
            })
            .collect();
        v.sort_by(|a, b| (a.upstream, &a.name).cmp(&(b.upstream, &b.name)));
        v
    }

    /// The delivery routes taken together, and since when (Unix seconds): for "down", the
    /// earliest a route still down went down; for "up", the latest one came up.
    pub fn overall(&self) -> (Overall, Option<u64>) {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let routes = map.values().filter(|e| e.is_primary());
        let mut down_since: Option<u64> = None;
        let mut up_since: Option<u64> = None;
        for e in routes {
            let s = e.health.since_unix();
            match e.health.health() {
                Health::Down => down_since = Some(down_since.map_or(s, |d| d.min(s))),
                Health::Up => up_since = Some(up_since.map_or(s, |u| u.max(s))),
                Health::Unknown => {}
            }
        }
        match (down_since, up_since) {
            (Some(s), _) => (Overall::Down, Some(s)),
            (None, Some(s)) => (Overall::Up, Some(s)),
            _ => (Overall::Unknown, None),
        }
    }

    /// Whether `name` needs a probe at `now`: not known to be up, a failure since its
    /// last success, or no success for `interval`.
    pub fn wants_probe(&self, name: &str, now: Instant, interval: embassy_time::Duration) -> bool {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&HopKey::of(name)) {
            None => true,
            Some(e) => {
                e.health.health() != Health::Up
                    || e.health.failures() > 0
                    || e.last_ok
                        .is_none_or(|t| now.saturating_duration_since(t) >= interval)
            }
        }
    }

    /// Keeps only the delivery routes named in `names` (after a reload removed some);
    /// upstream silos and MX routes stay.
    pub fn retain(&self, names: &[String]) {
        let keys: Vec<HopKey> = names.iter().map(|n| HopKey::of(n)).collect();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, e| e.upstream || e.mx || keys.contains(k));
    }

    /// The MX routes to probe: down, not known yet, or failing since their last success
    /// (a route that answers is left alone: a silo does not knock on every office's door
    /// each round).
    pub fn mx_to_probe(&self) -> Vec<String> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.values()
            .filter(|e| e.mx && (e.health.health() != Health::Up || e.health.failures() > 0))
            .map(|e| e.name.clone())
            .collect()
    }

    /// Records one result; the transition with the overall state before and after.
    pub fn record(
        &self,
        id: &RouteId<'_>,
        ok: bool,
        hop: &str,
        (now, unix): (Instant, u64),
        down_after: u32,
        notices: bool,
    ) -> Option<(Change, Overall, Overall)> {
        let name = id.name();
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let before = overall_of(&map);
        let key = HopKey::of(&name);
        let e = map.get_or_insert_with(key, || Entry {
            name,
            hop: hop.to_owned(),
            health: HopHealth::new(now, unix, down_after),
            upstream: matches!(id, RouteId::Upstream(_)),
            notices,
            mx: matches!(id, RouteId::Mx(_)),
            last_ok: None,
        });
        if !hop.is_empty() {
            e.hop = hop.to_owned();
        }
        if ok {
            e.last_ok = Some(now);
        }
        let change = e.health.record(ok, now, unix)?;
        Some((change, before, overall_of(&map)))
    }
}

fn overall_of(map: &VecMap<HopKey, Entry>) -> Overall {
    let mut any_up = false;
    for e in map.values().filter(|e| e.is_primary()) {
        match e.health.health() {
            Health::Down => return Overall::Down,
            Health::Up => any_up = true,
            Health::Unknown => {}
        }
    }
    if any_up {
        Overall::Up
    } else {
        Overall::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn the_overall_state_is_down_when_one_route_is() {
        let s = HopStates::default();
        assert_eq!(s.overall(), (Overall::Unknown, None));
        let a = RouteId::Delivery("next-hops");
        let b = RouteId::Delivery("route:0");
        assert!(s.record(&a, true, "a", (t(0), 100), 2, false).is_some());
        assert_eq!(s.overall(), (Overall::Up, Some(100)));
        s.record(&b, false, "b", (t(1), 101), 2, false);
        assert_eq!(
            s.overall().0,
            Overall::Up,
            "b unknown, one failure: a still carries it"
        );
        let (change, before, after) = s.record(&b, false, "b", (t(2), 102), 2, false).unwrap();
        assert_eq!(
            (change, before, after),
            (Change::WentDown, Overall::Up, Overall::Down)
        );
        assert_eq!(s.overall(), (Overall::Down, Some(102)));
        let silo = NextHop::parse("silo.example:25", 0).unwrap();
        s.record(
            &RouteId::Upstream(&silo),
            false,
            "silo",
            (t(3), 103),
            1,
            false,
        );
        let notices = RouteId::Delivery("route:1");
        s.record(&notices, true, "mx", (t(3), 103), 1, true);
        assert_eq!(
            s.view().last().map(|v| v.upstream),
            Some(true),
            "silos listed last"
        );
        assert_eq!(
            s.overall().0,
            Overall::Down,
            "a silo or notice route is not the primary"
        );
    }

    #[test]
    fn an_mx_route_named_by_its_name_is_never_the_primary() {
        // Protection's accept-when probe names a silo's office route by name only.
        assert_eq!(
            RouteId::of_route("mx:office.test"),
            RouteId::Mx("mx:office.test")
        );
        assert_eq!(RouteId::of_route("route:0"), RouteId::Delivery("route:0"));
        let s = HopStates::default();
        s.record(
            &RouteId::of_route("mx:office.test"),
            true,
            "router.office.test",
            (t(0), 100),
            1,
            false,
        );
        assert_eq!(s.overall(), (Overall::Unknown, None));
        assert!(s.view().iter().all(|v| !v.upstream));
    }

    #[test]
    fn a_route_is_probed_until_it_proves_itself() {
        let s = HopStates::default();
        let i = embassy_time::Duration::from_secs(30);
        assert!(s.wants_probe("next-hops", t(0), i), "never seen");
        s.record(
            &RouteId::Delivery("next-hops"),
            true,
            "a",
            (t(0), 0),
            2,
            false,
        );
        assert!(
            !s.wants_probe("next-hops", t(10), i),
            "a success within the interval"
        );
        assert!(
            s.wants_probe("next-hops", t(30), i),
            "none for a whole interval"
        );
        s.record(
            &RouteId::Delivery("next-hops"),
            false,
            "a",
            (t(31), 31),
            2,
            false,
        );
        assert!(
            s.wants_probe("next-hops", t(32), i),
            "one failure: confirm or clear it soon"
        );
    }
}
