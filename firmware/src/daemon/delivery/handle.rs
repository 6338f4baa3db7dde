//! [`DeliveryHandle`]: what the rest of the daemon holds of delivery. Cheap to clone (one
//! `Arc`); every method is one typed request — nobody outside delivery reads or writes its
//! state.
//!
//! | method | who calls it |
//! |---|---|
//! | [`DeliveryHandle::flush`] | inbound (ETRN), admin (flush, new next hops) |
//! | [`DeliveryHandle::wake`] | inbound (a message was accepted), admin (retry) |
//! | [`DeliveryHandle::try_claim`], [`DeliveryHandle::claim_all`], [`DeliveryHandle::in_flight`] | admin's delete and bounce |
//! | [`DeliveryHandle::notify_sender`] | admin's bounce |
//! | [`DeliveryHandle::apply`], [`DeliveryHandle::settings`] | admin's reload |
//! | [`DeliveryHandle::status`] | admin's status page and the control socket's status view |
//! | [`DeliveryHandle::watch`] | inbound (counters, beacons), admin (`/metrics`, routers) |
//! | [`DeliveryHandle::start`] | the wiring: the lanes, the probe, the silo watch, watching |

use std::net::SocketAddr;
use std::sync::Arc;

use mailbag_hal::Clock;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::claims::{Claim, InFlight};
use super::deliverer::{Deliverer, Scope};
use super::dns::DnsResolver;
use super::hops::{Overall, RouteId, RouteView};
use super::notice::{self, Notice};
use super::tls::TlsClients;
use super::watch::{Watch, WatchSettings};
use super::{lanes, probe, upstream, watching};
use crate::config::RunSettings;
use crate::daemon::events::EventLog;
use crate::daemon::live::Live;
use crate::daemon::spool::SpoolHandle;
use crate::relay::dsn::DsnKind;
use crate::relay::reply::ServerReply;
use crate::relay::{LoopGuard, NextHop, RelaySettings};
use crate::spool::{MessageId, MessageMeta};

/// What delivery is built from.
pub struct Setup {
    /// The spool thread.
    pub spool: SpoolHandle,
    /// Parsed `[relay]` (for the edge: with its hold-unrouted rule).
    pub relay: RelaySettings,
    /// The accepted domains, lower-case: ETRN asks the upstream silo for these.
    pub etrn_domains: Vec<String>,
    /// Refuses next hops that are this daemon.
    pub guard: LoopGuard,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Our host name (bounces' Reporting-MTA).
    pub hostname: String,
    /// STARTTLS client configurations.
    pub tls: TlsClients,
    /// DNS for MX and next-hop names.
    pub dns: DnsResolver,
    /// `[notify]`, `[monitor]` and what else watching needs.
    pub watch: WatchSettings,
    /// The daemon's event log (the admin page's Log): deliveries, deferrals, bounces,
    /// next-hop changes, notices go there.
    pub events: Arc<EventLog>,
}

impl Setup {
    /// Delivery for `run`: its relay settings and accepted domains; `listening` (the bound
    /// SMTP addresses) and `run`'s host name are ourselves to the loop guard.
    pub fn new(
        run: &RunSettings,
        spool: SpoolHandle,
        clock: Arc<dyn Clock>,
        listening: &[SocketAddr],
    ) -> Result<Self, String> {
        let hostname = run.config.smtp.hostname.clone();
        Ok(Self {
            spool,
            relay: run.relay.clone(),
            etrn_domains: run.domains.clone(),
            guard: LoopGuard::new(&hostname, listening, &[]),
            clock,
            hostname,
            tls: super::tls::client_configs()?,
            dns: DnsResolver::configured(&run.dns_servers),
            watch: WatchSettings::from_config(&run.config),
            events: Arc::default(),
        })
    }
}

/// A snapshot of delivery's view of its next hops, for the status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// The primary (every delivery route together): up, down or not known yet.
    pub primary: Overall,
    /// Unix seconds since it is in that state.
    pub since: Option<u64>,
    /// Some upstream silo answered its last probe (edge role; each silo's state is its
    /// route in `routes`, [`DeliveryStatus::silo_up`]).
    pub upstream_reachable: bool,
    /// Unix seconds of the last delivery.
    pub last_delivery: Option<u64>,
    /// Every route's state.
    pub routes: Vec<RouteView>,
}

/// The delivery subsystem, as the rest of the daemon holds it.
#[derive(Clone)]
pub struct DeliveryHandle {
    d: Arc<Deliverer>,
}

impl DeliveryStatus {
    /// True when upstream silo `hop` answered its last probe.
    pub fn silo_up(&self, hop: &NextHop) -> bool {
        let name = super::hops::upstream_name(hop);
        self.routes
            .iter()
            .any(|r| r.upstream && r.name == name && r.health == crate::relay::Health::Up)
    }
}

/// The running delivery tasks: the lanes, the next-hop probe, the silo watches.
pub struct DeliveryTasks {
    lanes: JoinHandle<()>,
    probe: JoinHandle<()>,
    watching: JoinHandle<()>,
    silos: Vec<JoinHandle<()>>,
}

impl DeliveryTasks {
    /// Waits for the lanes (attempts in progress record their outcome, bounded by the
    /// grace period) and the probe, which end when the shutdown signal flips; a silo probe
    /// or ETRN in progress is cut short (nothing durable depends on it).
    pub async fn join(self) {
        let _ = self.lanes.await;
        let _ = self.probe.await;
        let _ = self.watching.await;
        for w in self.silos {
            w.abort();
            let _ = w.await;
        }
    }
}

impl DeliveryHandle {
    /// The route `domain`'s mail takes and its next hops in order, ourselves left out
    /// (`None`: no route, or no next hop we may use).
    pub async fn route_of(&self, domain: &str) -> Option<(String, Vec<NextHop>)> {
        super::lanes::hops_for_domain(&self.d, domain).await
    }

    /// Whether delivery knows route `name` to be down ([`super::hops`]).
    pub fn route_down(&self, name: &str) -> bool {
        self.d.hops.is_down(name)
    }

    /// Asks `hop` of route `name` whether it answers (EHLO, QUIT); an answer is recorded
    /// as the route's state (a route that comes back flushes its held mail; an MX route
    /// only its domain's, and it is never the primary).
    pub async fn probe_route(&self, name: &str, hop: &NextHop) -> bool {
        let up = super::outbound::probe(&self.d, hop).await;
        if up {
            self.d
                .route_state(RouteId::of_route(name), true, &hop.host.to_string(), "")
                .await;
        }
        up
    }

    /// Asks `hop` whether `address` exists (`MAIL FROM:<>`, `RCPT TO`, `RSET`): its reply
    /// to the RCPT, or `None` when it could not be asked.
    pub async fn verify(&self, hop: &NextHop, address: &str) -> Option<ServerReply> {
        super::outbound::verify(&self.d, hop, address).await
    }

    /// Delivery over `setup`, not running yet ([`DeliveryHandle::start`]). The next hops'
    /// state starts unknown: held mail is probed for at once.
    pub fn new(setup: Setup) -> Self {
        let watch = Arc::new(Watch::new(
            setup.watch,
            setup.events,
            Arc::clone(&setup.clock),
        ));
        Self {
            d: Arc::new(Deliverer {
                spool: setup.spool,
                settings: Live::new(setup.relay),
                etrn_domains: Live::new(setup.etrn_domains),
                guard: setup.guard,
                clock: setup.clock,
                kick: Notify::new(),
                hostname: setup.hostname,
                tls: setup.tls,
                // Unknown at start: every route is probed at once.
                hops: Default::default(),
                watch,
                dns: setup.dns,
                hop_slots: Default::default(),
                in_flight: InFlight::default(),
            }),
        }
    }

    /// Starts the lanes and the next-hop probe, and (edge) one watch per `upstream` silo
    /// (a silo that is down never delays another's ETRN); they run until `shutdown` flips.
    pub fn start(&self, upstream: Vec<NextHop>, shutdown: watch::Receiver<bool>) -> DeliveryTasks {
        let silos = upstream
            .into_iter()
            .map(|hop| {
                crate::daemon::task::spawn(upstream::watch_silo(
                    Arc::clone(&self.d),
                    hop,
                    shutdown.clone(),
                ))
            })
            .collect();
        let probe =
            crate::daemon::task::spawn(probe::probe_loop(Arc::clone(&self.d), shutdown.clone()));
        let watching =
            crate::daemon::task::spawn(watching::run(Arc::clone(&self.d), shutdown.clone()));
        let lanes = crate::daemon::task::spawn(lanes::run(Arc::clone(&self.d), shutdown));
        DeliveryTasks {
            lanes,
            probe,
            watching,
            silos,
        }
    }

    /// Makes held mail of `scope` due now and starts delivering it; how many messages that
    /// covers (0: nothing was waiting). Changes only RAM: after a restart the first probe
    /// flushes again.
    pub async fn flush(&self, scope: Scope) -> usize {
        self.d.make_due(scope).await
    }

    /// Looks for due mail now instead of at the next tick (a message was accepted or made
    /// due).
    pub fn wake(&self) {
        self.d.kick.notify_one();
    }

    /// Claims message `id` for an admin action; `None` while it is being delivered (or
    /// another action holds it). The lanes skip it until the claim is dropped.
    pub fn try_claim(&self, id: MessageId) -> Option<Claim> {
        self.d.in_flight.try_claim(id)
    }

    /// Claims every id or none; the error is the first id held elsewhere.
    pub fn claim_all(
        &self,
        ids: impl IntoIterator<Item = MessageId>,
    ) -> Result<Vec<Claim>, MessageId> {
        self.d.in_flight.claim_all(ids)
    }

    /// The claimed-ids set itself, for work that claims message by message inside the
    /// spool thread (`delete --all-for`).
    pub fn in_flight(&self) -> InFlight {
        self.d.in_flight.clone()
    }

    /// Queues a failure or delay notice about `meta`'s `notices` to its envelope sender,
    /// with the original's headers attached. True when durably queued or none is due
    /// (nothing to report, null sender); false when it could not be written.
    pub async fn notify_sender(
        &self,
        meta: &MessageMeta,
        kind: DsnKind,
        notices: &[Notice],
    ) -> bool {
        let headers = notice::original_headers(&self.d, meta).await;
        notice::send_dsn(&self.d, meta, &headers, kind, notices, "").await
    }

    /// Puts `run`'s relay settings and accepted domains in force: the next attempt uses
    /// them; attempts in progress finish with the ones they started with. A new
    /// `relay.max-per-hop` applies to new connections. (DNS servers, the host name and the
    /// upstream silo stay as started.)
    pub fn apply(&self, run: &RunSettings) {
        let (relay, etrn_domains) = (run.relay.clone(), run.domains.clone());
        if self.d.settings().max_per_hop != relay.max_per_hop {
            // New connections get permits of the new size; those in progress keep theirs.
            self.d
                .hop_slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        }
        self.d.settings.set(relay);
        self.d.etrn_domains.set(etrn_domains);
    }

    /// The relay settings in force.
    pub fn settings(&self) -> Arc<RelaySettings> {
        self.d.settings()
    }

    /// The next hops' state as delivery sees it now.
    pub fn status(&self) -> DeliveryStatus {
        let (primary, since) = self.d.hops.overall();
        let routes = self.d.hops.view();
        DeliveryStatus {
            primary,
            since,
            upstream_reachable: routes
                .iter()
                .any(|r| r.upstream && r.health == crate::relay::Health::Up),
            last_delivery: self.d.watch.last_delivery(),
            routes,
        }
    }

    /// Watching: counters for `/metrics`, the event log, the silo's routers.
    pub fn watch(&self) -> Arc<Watch> {
        Arc::clone(&self.d.watch)
    }
}
