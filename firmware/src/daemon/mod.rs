//! The daemon edge: tokio listeners, TLS, the spool thread, signals. Everything that does
//! I/O lives here; the protocol cores (`smtp`, `policy`, `relay`, `spool` logic) are driven
//! from it.
//!
//! # Subsystems
//!
//! ```text
//!  daemon::serve (this file): builds each subsystem from RunSettings, hands each the
//!  │                           handles it needs, waits for the stop, shuts down in order
//!  ▼
//!  admin     Actions (flush · delete · retry · bounce, once) · control socket · admin
//!  │         page and its views · settings · reload
//!  │           uses: InboundHandle, DeliveryHandle, SpoolHandle      offers: the wiring only
//!  ▼
//!  inbound   listeners · one task per SMTP connection · server TLS
//!  │           uses: DeliveryHandle, SpoolHandle
//!  │           offers: InboundHandle { apply(settings), settings(), start(..) → InboundTasks }
//!  ▼
//!  delivery  lanes · route connections · the client driver · notices · next-hop state ·
//!  │         probe · silo watch · watching (notices to the admin, firewall follower, LED,
//!  │         beacons, the silo's routers, counters) · DNS · client TLS
//!  │           uses: SpoolHandle
//!  │           offers: DeliveryHandle { flush(scope), wake(), try_claim/claim_all,
//!  │                   in_flight(), notify_sender(..), apply(settings), settings(),
//!  │                   status(), watch(), route_of/route_down/probe_route(..),
//!  │                   verify(..) (inbound's recipient checks), start(..) → DeliveryTasks }
//!  ▼
//!  spool     the thread that owns the flash device and the mounted spool
//!              offers: SpoolHandle { begin/append/commit/abort, lanes, lane_due, body,
//!                      update, remove, flush, enqueue, run, run_blocking }, GaugeCapacity
//!  ─────────────────────────────────────────────────────────────────────────────────────
//!  shared    live (Live<T>) · io (Io<T>, STARTTLS-capable stream) · events (EventLog)
//!            · shutdown (GRACE) · task (spawn, spawn_blocking: one task type)
//! ```
//!
//! What each owns, and the handle it offers (every handle is cheap to clone: an `Arc` or
//! a channel sender; nobody outside a subsystem reads or writes its state):
//!
//! - [`spool`] owns the flash device, the mounted spool and its fill gauge, and serves
//!   one request at a time. Handle: [`spool::SpoolHandle`] (and [`spool::GaugeCapacity`]
//!   for the policy's fill check).
//! - [`delivery`] owns getting due mail to its next hops: lanes, kept connections,
//!   per-route permits, next-hop state, the messages being worked on, bounces and delay
//!   warnings, the silo watch, DNS, client TLS. Handle: [`delivery::DeliveryHandle`]; its
//!   state (`Deliverer`) is private to it. "Make held mail due" happens in one place,
//!   behind [`delivery::DeliveryHandle::flush`].
//! - [`inbound`] owns listeners, session slots and SMTP sessions up to the spool's
//!   "durable", server TLS, and the protection checks before the 250 (blocklists,
//!   per-client limits, recipient checks, content checks; their shared state and counters
//!   in [`inbound::guard::Guard`], the recipient verification cache file with it). It asks
//!   delivery for a domain's next hops, their state and recipient verification. Handle:
//!   [`inbound::InboundHandle`] (the session settings in force, the checks' counters). A
//!   new message wakes delivery, ETRN asks it to flush: through its handle.
//! - [`admin`] owns the operator's actions ([`admin::actions::Actions`]: flush, delete,
//!   retry, bounce — the control socket and the page both call them), the control socket,
//!   the admin page and its views, settings and reload. Used by the wiring only.
//!
//! The configuration is parsed once, into [`RunSettings`]; a reload makes a new one and
//! hands it to [`inbound::InboundHandle::apply`] and [`delivery::DeliveryHandle::apply`].
//!
//! **The rule.** An arrow is "may import": a subsystem uses the handles of those below it
//! and never names one above. admin → inbound, delivery, spool; inbound → delivery, spool;
//! delivery → spool; spool → none; nothing imports admin. Everyone may use the shared
//! pieces, which import no subsystem. Only this file imports everything; nothing imports it
//! (the shared [`GRACE`] lives in [`shutdown`]). A path leaves its
//! subsystem as `crate::daemon::…`, never `super::super::…`, and inside a subsystem no two
//! files import each other in a circle. `tests/daemon_layers.rs` reads the sources and
//! fails on a break, naming file and line; it lists no exceptions.
//!
//! **Not enforced by visibility yet:** the subsystem folders are `pub` (the integration
//! tests and `mailbag etrn` use [`delivery::etrn_session`], [`delivery::dns`] and
//! [`spool::start`]); inside delivery, the state and the tasks are private.
//!
//! # One message
//!
//! `inbound::listen` accepts → `inbound::connection` drives an [`crate::smtp::Session`]
//! (policy at RCPT) and streams the content through the [`spool::SpoolHandle`] → 250 once
//! durable → [`delivery::DeliveryHandle::wake`] → `delivery::lanes` takes the due lane →
//! `delivery::outbound` picks the route's next hop → `delivery::driver` drives a
//! [`crate::relay::Client`] → next hop 250 → `lanes` records the attempt, the record is
//! removed.
//!
//! # Serving in a test
//!
//! [`serve`] takes its sockets ([`Listeners`]) and a shutdown future, as mini-redis's
//! `server::run` does; [`Wiring`] carries the parsed settings and the clock (a manual one
//! in tests), and can hand out the subsystems' handles ([`Handles`]). `tests/common`'s
//! `Served` runs it on `127.0.0.1:0` in the test's own process.
//!
//! # Stopping and reloading
//!
//! Shutdown (SIGTERM from procd, or SIGINT): stop accepting, tell idle sessions `421`,
//! give sessions in the middle of a message [`GRACE`] to finish, then let the spool thread
//! finish the requests it has and sync. Nothing acknowledged is ever lost: a message not
//! yet answered 250 is the sender's to retry. The control socket ([`admin::control`]) stops
//! accepting with the listeners and its file is removed.
//!
//! SIGHUP re-reads the config file the daemon was started with and applies it through
//! [`admin::reload::Reloader::apply`] (the admin page's save does the same); a file that
//! does not load or validate is refused with a logged error and the running settings stay.

pub mod admin;
pub mod delivery;
pub mod events;
pub mod inbound;
pub mod io;
pub mod live;
pub mod shutdown;
pub mod spool;
pub mod task;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailbag_hal::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::config::{Config, RunSettings};
use crate::spool::open::open_for_daemon;
use shutdown::GRACE;

/// Everything [`serve`] runs on besides its sockets.
pub struct Wiring {
    /// The configuration, parsed.
    pub settings: RunSettings,
    /// Time (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Holds the generated TLS certificate (when none is configured) and the demo's files.
    pub state_dir: PathBuf,
    /// Where the admin page saves settings and SIGHUP re-reads them; `None`: the built-in
    /// demo (saved to `state_dir/mailbag.toml`, demo password file).
    pub config_file: Option<PathBuf>,
    /// SIGHUP re-reads `config_file` (the daemon process); off in tests that serve in
    /// their own process.
    pub sighup_reloads: bool,
    /// Gets the subsystems' handles once everything runs: for tests that drive the daemon
    /// in their own process (a manual clock, say). Whoever takes them drops them before
    /// `shutdown` completes, or the spool thread outlives the stop by the grace period.
    pub handles: Option<oneshot::Sender<Handles>>,
}

/// The subsystems' handles, as [`Wiring::handles`] hands them out.
#[derive(Clone)]
pub struct Handles {
    /// The spool thread.
    pub spool: spool::SpoolHandle,
    /// Delivery.
    pub delivery: delivery::DeliveryHandle,
    /// Inbound.
    pub inbound: inbound::InboundHandle,
}

/// The sockets [`serve`] takes mail on, bound by the caller (tests: `127.0.0.1:0`).
pub struct Listeners {
    /// SMTP listeners.
    pub smtp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds every `smtp.listen` address of `settings`.
    pub fn bind(settings: &RunSettings) -> Result<Self, String> {
        let smtp = settings
            .smtp_listen
            .iter()
            .map(|&addr| {
                inbound::listen::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { smtp })
    }
}

/// Runs the daemon until SIGTERM/SIGINT, on a runtime of its own; SIGHUP reloads
/// `config_file` (see [`Wiring`]).
pub fn run(
    settings: RunSettings,
    state_dir: &Path,
    config_file: Option<&Path>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let listeners = Listeners::bind(&settings)?;
        let wiring = Wiring {
            settings,
            clock: Arc::new(SystemClock::new()),
            state_dir: state_dir.to_path_buf(),
            config_file: config_file.map(Path::to_path_buf),
            sighup_reloads: true,
            handles: None,
        };
        serve(wiring, listeners, stop_signal()).await
    })
}

/// Serves mail on `listeners` until `shutdown` completes, then stops in order: no new
/// connections, sessions in the middle of a message get [`GRACE`], delivery records the
/// attempts in progress, the spool thread finishes its requests and syncs. Builds each
/// subsystem and hands each the handles it needs; this is the only place that names them
/// all.
pub async fn serve(
    wiring: Wiring,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let Wiring {
        settings: run,
        clock,
        state_dir,
        config_file,
        sighup_reloads,
        handles,
    } = wiring;
    let place = &run.spool;
    let dev = open_for_daemon(&place.path, place.size, clock.as_ref())
        .map_err(|e| format!("spool {}: {e}", place.path.display()))?;
    let (spool, spool_thread) = spool::start(dev, place.limits, Arc::clone(&clock))
        .map_err(|e| format!("spool {}: {e}", place.path.display()))?;

    let tls = inbound::tls::acceptor(&run.starttls, &state_dir, &run.config.smtp.hostname)?;
    let capacity = spool::GaugeCapacity(Arc::clone(&spool.gauge));
    let listening = inbound::local_addrs(&listeners.smtp);
    let events = Arc::new(events::EventLog::new(clock.unix_seconds()));
    let mut setup = delivery::Setup::new(&run, spool.clone(), Arc::clone(&clock), &listening)?;
    // Delivery's events (deliveries, next-hop changes, notices) go to the page's Log too.
    setup.events = Arc::clone(&events);
    let delivery = delivery::DeliveryHandle::new(setup);
    let guard = inbound::guard::Guard::new(
        delivery.clone(),
        delivery::dns::DnsResolver::configured(&run.dns_servers),
        run.max_sessions,
        run.protection.guesses,
        inbound::guard::verify_cache_path(&run.config, &state_dir),
        clock.unix_seconds(),
    );
    let inbound = inbound::InboundHandle::new(&run, capacity, tls.is_some(), guard);
    let actions = admin::actions::Actions::new(
        spool.clone(),
        delivery.clone(),
        Arc::clone(&events),
        Arc::clone(&clock),
    );
    let reloader = Arc::new(admin::reload::Reloader::new(
        run.config.clone(),
        inbound.clone(),
        delivery.clone(),
        Some(tokio::runtime::Handle::current()),
    ));
    #[cfg(feature = "web")]
    let pages = admin::web::start(
        &run,
        &state_dir,
        config_file.clone(),
        admin::web_backend::Parts {
            spool: spool.clone(),
            delivery: delivery.clone(),
            events: Arc::clone(&events),
            clock: Arc::clone(&clock),
            // Called from inside the runtime: the page's threads wait for actions on it.
            runtime: tokio::runtime::Handle::current(),
        },
        &reloader,
        &inbound.counters(),
    )?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Not fatal: an MX that refuses to start over its admin socket takes no mail.
    let control = run.control_socket.as_deref().and_then(|path| {
        admin::control::start(path, actions, Arc::clone(&reloader), shutdown_rx.clone())
            .inspect_err(|e| crate::warn!("{e}; queue commands will not reach this daemon"))
            .ok()
    });
    let delivery_tasks = delivery.start(run.upstream_silo.clone(), shutdown_rx.clone());
    if let Some(tx) = handles {
        let _ = tx.send(Handles {
            spool: spool.clone(),
            delivery: delivery.clone(),
            inbound: inbound.clone(),
        });
    }
    let mut sessions = inbound.start(
        inbound::Setup {
            listeners: listeners.smtp,
            tls,
            spool,
            delivery,
            events: Arc::clone(&events),
            clock: Arc::clone(&clock),
        },
        shutdown_rx,
    );
    crate::log!("ready: {}", run.config.summary());

    let reload = async {
        match (sighup_reloads, config_file.as_deref()) {
            (true, path) => reload_on_sighup(&reloader, path, &events, clock.as_ref()).await,
            (false, _) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = reload => {}
    }
    crate::log!(
        "stopping: no new connections; waiting up to {}s for sessions",
        GRACE.as_secs()
    );
    let _ = shutdown_tx.send(true);
    sessions.stop_accepting().await;
    if let Some(c) = control {
        c.stop().await;
    }
    if !sessions.sessions_finished(GRACE).await {
        crate::warn!(
            "sessions still open after the grace period are dropped (their mail was not acknowledged)"
        );
    }
    // The page's workers hold spool handles too: stop them before waiting for the thread.
    #[cfg(feature = "web")]
    let _ = task::spawn_blocking(move || pages.into_iter().for_each(|p| p.stop())).await;
    delivery_tasks.join().await;
    // The spool thread ends once the last handle is gone, after the queued requests; the
    // reloader and inbound (its protection guard) hold the last delivery handles (and so
    // spool handles).
    drop(reloader);
    drop(inbound);
    let join = task::spawn_blocking(move || {
        let _ = spool_thread.join();
    });
    if tokio::time::timeout(GRACE, join).await.is_err() {
        crate::warn!(
            "spool thread still busy after the grace period; exiting (acknowledged mail is durable)"
        );
    }
    crate::log!("stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        },
        Err(e) => {
            crate::warn!("cannot watch SIGTERM ({e}); stopping only on SIGINT");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reloads `config_file` at every SIGHUP; never completes.
async fn reload_on_sighup(
    reloader: &admin::reload::Reloader,
    config_file: Option<&Path>,
    events: &events::EventLog,
    clock: &dyn Clock,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup())
        .inspect_err(|e| crate::warn!("cannot watch SIGHUP ({e}); reload by restarting"))
    else {
        return std::future::pending().await;
    };
    while hup.recv().await.is_some() {
        reload_file(reloader, config_file, events, clock);
    }
    std::future::pending().await
}

/// SIGHUP: the config file read again and applied; refused as a whole if it is bad.
fn reload_file(
    reloader: &admin::reload::Reloader,
    config_file: Option<&Path>,
    events: &events::EventLog,
    clock: &dyn Clock,
) {
    let Some(path) = config_file else {
        crate::log!("SIGHUP: the demo has no config file to re-read; ignored");
        return;
    };
    let result = Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|new| reloader.apply(&new));
    let (kind, text) = match result {
        Ok(applied) => ("reloaded", format!("{}: {applied}", path.display())),
        Err(e) => (
            "reload-refused",
            format!(
                "{}: not reloaded, the running settings stay: {}",
                path.display(),
                e.replace('\n', "; ")
            ),
        ),
    };
    if kind == "reloaded" {
        crate::log!("SIGHUP: {text}");
    } else {
        crate::warn!("SIGHUP: {text}");
    }
    events.push(clock.unix_seconds(), kind, None, &text);
}
