//! [`InboundHandle`]: what the rest of the daemon holds of inbound — the session settings
//! in force, replaced whole on reload ([`InboundHandle::apply`]) — and [`InboundTasks`],
//! the running accept loops and the sessions they started.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailbag_hal::Clock;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::connection::{Ctx, Inbound};
use super::guard::{Guard, save_verify_cache};
use super::listen;
use crate::config::RunSettings;
use crate::daemon::delivery::DeliveryHandle;
use crate::daemon::events::EventLog;
use crate::daemon::live::Live;
use crate::daemon::spool::{GaugeCapacity, SpoolHandle};
use crate::policy::{Checker, Counters};

/// What the accept loops and sessions are started with.
pub struct Setup {
    /// Bound SMTP listeners.
    pub listeners: Vec<TcpListener>,
    /// The STARTTLS acceptor, when STARTTLS is offered.
    pub tls: Option<TlsAcceptor>,
    /// Where messages go.
    pub spool: SpoolHandle,
    /// Woken for new mail; asked to flush by ETRN.
    pub delivery: DeliveryHandle,
    /// The admin page's Log.
    pub events: Arc<EventLog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Inbound as the rest of the daemon holds it: the settings new sessions start with.
/// Cheap to clone.
#[derive(Clone)]
pub struct InboundHandle {
    settings: Arc<Live<Inbound>>,
    /// The protection checks' shared state (session and guess tables, verification
    /// cache, counters).
    guard: Arc<Guard>,
    capacity: GaugeCapacity,
    starttls: bool,
    max_sessions: usize,
}

/// The running accept loops, and the session slots their sessions hold.
pub struct InboundTasks {
    accepts: Vec<JoinHandle<()>>,
    /// Saves the verification cache once a minute and at the stop.
    saver: JoinHandle<()>,
    slots: Arc<Semaphore>,
    max_sessions: usize,
}

impl InboundHandle {
    /// Inbound over `run`'s session settings, with the spool's fill `capacity` in the
    /// policy; `starttls` when an acceptor could be made; `guard`: the protection state.
    pub fn new(run: &RunSettings, capacity: GaugeCapacity, starttls: bool, guard: Guard) -> Self {
        let settings = Arc::new(Live::new(inbound_of(run, &capacity, starttls)));
        Self {
            settings,
            guard: Arc::new(guard),
            capacity,
            starttls,
            max_sessions: run.max_sessions,
        }
    }

    /// New sessions start with `run`'s settings, policy and accepted domains; sessions in
    /// progress finish with the ones they started with. (Listeners, STARTTLS and the
    /// session limit stay as started.)
    pub fn apply(&self, run: &RunSettings) {
        self.settings
            .set(inbound_of(run, &self.capacity, self.starttls));
        self.guard.set_guess_limits(run.protection.guesses);
    }

    /// The protection checks' counters (status page, `/metrics`).
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.guard.counters)
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Inbound> {
        self.settings.get()
    }

    /// Starts one accept loop per listener; they stop when `shutdown` flips.
    pub fn start(&self, setup: Setup, shutdown: watch::Receiver<bool>) -> InboundTasks {
        let saver = crate::daemon::task::spawn(save_verify_cache(
            Arc::clone(&self.guard),
            Arc::clone(&setup.clock),
            shutdown.clone(),
        ));
        let ctx = Arc::new(Ctx {
            inbound: Arc::clone(&self.settings),
            spool: setup.spool,
            tls: setup.tls,
            clock: setup.clock,
            events: setup.events,
            watch: setup.delivery.watch(),
            shutdown,
            delivery: setup.delivery,
            guard: Arc::clone(&self.guard),
        });
        let slots = Arc::new(Semaphore::new(self.max_sessions));
        let rejecting = Arc::new(Semaphore::new(listen::REJECTING_MAX));
        let accepts = setup
            .listeners
            .into_iter()
            .map(|l| {
                if let Ok(local) = l.local_addr() {
                    crate::log!("smtp listening on {local}");
                }
                crate::daemon::task::spawn(listen::accept_loop(
                    l,
                    Arc::clone(&ctx),
                    Arc::clone(&slots),
                    Arc::clone(&rejecting),
                ))
            })
            .collect();
        InboundTasks {
            accepts,
            saver,
            slots,
            max_sessions: self.max_sessions,
        }
    }
}

impl InboundTasks {
    /// Waits until every accept loop has stopped (after the shutdown signal): no new
    /// connection is taken; idle sessions have been told `421`.
    pub async fn stop_accepting(&mut self) {
        for a in self.accepts.drain(..) {
            let _ = a.await;
        }
    }

    /// Waits up to `grace` for the sessions still in the middle of a message; false when
    /// some were still open (they are dropped: their mail was not acknowledged).
    /// Then saves the verification cache a last time.
    pub async fn sessions_finished(self, grace: Duration) -> bool {
        let all = u32::try_from(self.max_sessions).unwrap_or(u32::MAX);
        let finished = tokio::time::timeout(grace, self.slots.acquire_many(all))
            .await
            .is_ok();
        let _ = self.saver.await;
        finished
    }
}

fn inbound_of(run: &RunSettings, capacity: &GaugeCapacity, starttls: bool) -> Inbound {
    let checker = Checker::new(Arc::clone(&run.rules), capacity.clone());
    let mut session = run.session.clone().with_policy(checker);
    session.starttls = starttls;
    Inbound::new(session, &run.domains, Arc::clone(&run.protection))
}

/// The addresses the `listeners` are bound to (the loop guard's "ourselves").
pub fn local_addrs(listeners: &[TcpListener]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect()
}
