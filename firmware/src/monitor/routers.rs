//! The silo's table of its routers: what each said in its last beacon, and whether it is
//! overdue.
//!
//! - Rows are the configured routers ([`RouterSpec`]) only, sorted by id, so the table's
//!   size is fixed by the configuration (at most [`ROUTERS_MAX`](super::config::ROUTERS_MAX))
//!   and a lookup is a binary search. A beacon from an unknown id is refused.
//! - [`RouterTable::accept`] verifies a beacon line (MAC, clock skew, replay) and records it;
//!   a router that was overdue is back, and the event to tell its contacts is returned.
//! - [`RouterTable::overdue`] marks routers silent for more than `after` beacon intervals
//!   (counted from the silo's start for a router never heard from) and returns one event
//!   per router when it becomes overdue — not again until it has come back.

use super::beacon::{Beacon, BeaconError, SKEW_MAX};
use super::config::RouterSpec;
use super::notice::Event;

/// One router.
#[derive(Clone, Debug)]
pub struct Row {
    /// Its configuration.
    pub spec: RouterSpec,
    /// Its last accepted beacon.
    pub last: Option<Beacon>,
    /// When (our Unix time) that beacon came.
    pub last_seen: Option<u64>,
    /// Silent for too long (told to its contacts).
    pub overdue: bool,
}

/// The routers a silo watches.
#[derive(Clone, Debug)]
pub struct RouterTable {
    rows: Vec<Row>,
    /// When watching started (the silence of a router never heard from counts from here).
    started: u64,
}

impl RouterTable {
    /// A table of `specs` (ids unique: the config check ensures it), watching from `now`.
    pub fn new(mut specs: Vec<RouterSpec>, now: u64) -> Self {
        specs.sort_by(|a, b| a.id.cmp(&b.id));
        specs.dedup_by(|a, b| a.id == b.id);
        Self {
            rows: specs
                .into_iter()
                .map(|spec| Row {
                    spec,
                    last: None,
                    last_seen: None,
                    overdue: false,
                })
                .collect(),
            started: now,
        }
    }

    /// A new configuration: routers still listed keep what is known of them.
    pub fn reconfigure(&mut self, specs: Vec<RouterSpec>, now: u64) {
        let mut next = Self::new(specs, now);
        next.started = self.started;
        for row in &mut next.rows {
            if let Some(old) = self.find(&row.spec.id) {
                row.last = old.last.clone();
                row.last_seen = old.last_seen;
                row.overdue = old.overdue;
            }
        }
        *self = next;
    }

    /// Every router, by id.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    fn find(&self, id: &str) -> Option<&Row> {
        let i = self
            .rows
            .binary_search_by(|r| r.spec.id.as_str().cmp(id))
            .ok()?;
        self.rows.get(i)
    }

    /// Verifies and records a beacon line at `now`. Returns the beacon, and the "back"
    /// event when the router was overdue (for its contacts: [`RouterSpec::contacts`]).
    pub fn accept(&mut self, line: &str, now: u64) -> Result<(Beacon, Option<Event>), BeaconError> {
        let signed = Beacon::parse(line)?;
        let i = self
            .rows
            .binary_search_by(|r| r.spec.id.as_str().cmp(signed.router()))
            .map_err(|_| BeaconError::UnknownRouter(signed.router().to_owned()))?;
        let row = &mut self.rows[i];
        let beacon = signed.verify(row.spec.secret.as_bytes())?;
        let skew = beacon.time.abs_diff(now);
        if skew > SKEW_MAX {
            return Err(BeaconError::Skewed(skew));
        }
        if row
            .last
            .as_ref()
            .is_some_and(|l| (beacon.time, beacon.seq) <= (l.time, l.seq))
        {
            return Err(BeaconError::Replayed);
        }
        let silent = now.saturating_sub(row.last_seen.unwrap_or(self.started));
        let back = row.overdue.then(|| Event::RouterBack {
            router: row.spec.id.clone(),
            silent_secs: silent,
            held: beacon.held,
            primary: beacon.primary.as_str().into(),
        });
        row.overdue = false;
        row.last = Some(beacon.clone());
        row.last_seen = Some(now);
        Ok((beacon, back))
    }

    /// Routers that became overdue at `now`: silent for more than `after` × `interval`
    /// seconds.
    pub fn overdue(&mut self, now: u64, interval: u64, after: u64) -> Vec<Event> {
        let limit = interval.saturating_mul(after);
        let mut out = Vec::new();
        for row in &mut self.rows {
            let silent = now.saturating_sub(row.last_seen.unwrap_or(self.started));
            if row.overdue || silent <= limit {
                continue;
            }
            row.overdue = true;
            out.push(Event::RouterOverdue {
                router: row.spec.id.clone(),
                silent_secs: silent,
                held: row.last.as_ref().map_or(0, |b| b.held),
                primary: row
                    .last
                    .as_ref()
                    .map_or("unknown", |b| b.primary.as_str())
                    .into(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::beacon::PrimaryReport;

    const SECRET: &str = "0123456789abcdef0123";

    fn table(now: u64) -> RouterTable {
        RouterTable::new(
            vec![
                RouterSpec::parse(&format!("office2 {SECRET}x b@isp.example")).unwrap(),
                RouterSpec::parse(&format!("office1 {SECRET} a@isp.example")).unwrap(),
            ],
            now,
        )
    }

    fn beacon(t: u64, n: u64) -> String {
        Beacon {
            router: "office1".into(),
            time: t,
            seq: n,
            uptime: 5,
            held: 2,
            held_bytes: 100,
            primary: PrimaryReport::Down,
            spool_free: 1000,
        }
        .encode(SECRET.as_bytes())
    }

    #[test]
    fn a_beacon_is_taken_once_and_only_when_newer() {
        let mut t = table(1000);
        let line = beacon(1000, 1);
        let (b, back) = t.accept(&line, 1001).unwrap();
        assert_eq!((b.held, back), (2, None));
        assert_eq!(t.accept(&line, 1002).unwrap_err(), BeaconError::Replayed);
        assert_eq!(
            t.accept(&beacon(999, 7), 1002).unwrap_err(),
            BeaconError::Replayed
        );
        assert!(
            t.accept(&beacon(1000, 2), 1002).is_ok(),
            "same second, next counter"
        );
        assert_eq!(t.rows()[0].last_seen, Some(1002));
    }

    #[test]
    fn a_beacon_from_another_clock_or_router_is_refused() {
        let mut t = table(10_000);
        assert_eq!(
            t.accept(&beacon(5_000, 1), 10_000).unwrap_err(),
            BeaconError::Skewed(5_000)
        );
        let stranger = beacon(10_000, 1).replace("router=office1", "router=office9");
        assert_eq!(
            t.accept(&stranger, 10_000).unwrap_err(),
            BeaconError::UnknownRouter("office9".into())
        );
        // office2 has another secret: office1's signature does not pass as office2's.
        let spoofed = beacon(10_000, 1).replace("router=office1", "router=office2");
        assert_eq!(t.accept(&spoofed, 10_000).unwrap_err(), BeaconError::BadMac);
    }

    #[test]
    fn silence_is_reported_once_and_the_return_too() {
        let mut t = table(0);
        t.accept(&beacon(0, 1), 0).unwrap();
        assert!(t.overdue(900, 300, 3).is_empty(), "3 intervals are allowed");
        let alerts = t.overdue(901, 300, 3);
        // office2 never beaconed since the start, office1 since t=0: both overdue.
        assert_eq!(alerts.len(), 2);
        assert_eq!(
            alerts[0],
            Event::RouterOverdue {
                router: "office1".into(),
                silent_secs: 901,
                held: 2,
                primary: "down".into()
            }
        );
        assert!(t.overdue(2000, 300, 3).is_empty(), "told once");
        let (_, back) = t.accept(&beacon(1500, 1), 1500).unwrap();
        assert!(matches!(
            back,
            Some(Event::RouterBack {
                silent_secs: 1500,
                ..
            })
        ));
    }

    #[test]
    fn reconfiguring_keeps_what_is_known() {
        let mut t = table(0);
        t.accept(&beacon(0, 1), 0).unwrap();
        t.reconfigure(
            vec![RouterSpec::parse(&format!("office1 {SECRET}")).unwrap()],
            50,
        );
        assert_eq!(t.rows().len(), 1);
        assert_eq!(
            t.accept(&beacon(0, 1), 60).unwrap_err(),
            BeaconError::Replayed
        );
    }
}
