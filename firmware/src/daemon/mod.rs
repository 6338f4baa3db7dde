//! The daemon edge: tokio listeners, TLS, the spool thread, signals. Everything that does
//! I/O lives here; the protocol cores (`smtp`, `policy`, `relay`, `spool` logic) are driven
//! from it.
//!
//! # Subsystems
//!
//! ```text
//!  daemon::serve (this file): builds each subsystem, hands each the handles it needs,
//!  │                           watches signals, shuts down in order
//!  ▼
//!  admin     control socket · queue actions · admin page · settings · reload
//!  │           offers: Reloader, control::start, web::start (to the wiring only)
//!  ▼
//!  inbound   listeners · one task per SMTP connection · server TLS
//!  │           offers: Live<Inbound> (session settings in force), Ctx
//!  ▼
//!  delivery  lanes · outbound connections · notices · probe · silo watch · DNS · client TLS
//!  │           offers: Deliverer
//!  ▼
//!  spool     the thread that owns the flash device and the mounted spool
//!              offers: SpoolHandle, GaugeCapacity
//!  ─────────────────────────────────────────────────────────────────────────────────────
//!  shared    live (Live<T>) · io (Io<T>, STARTTLS-capable stream) · events (EventLog)
//!            · shutdown (GRACE)
//! ```
//!
//! What each owns, and the handle it offers:
//!
//! - [`spool`] owns the flash device, the mounted spool and its fill gauge, and serves
//!   one request at a time. Handle: [`spool::SpoolHandle`] (and [`spool::GaugeCapacity`]
//!   for the policy's fill check).
//! - [`delivery`] owns getting due mail to its next hops: lanes, kept connections,
//!   per-route permits, next-hop state, bounces and delay warnings, the silo watch, DNS,
//!   client TLS. Handle: [`delivery::Deliverer`].
//! - [`inbound`] owns listeners, session slots and SMTP sessions up to the spool's
//!   "durable", server TLS, and the protection checks before the 250 (blocklists,
//!   per-client limits, recipient checks, content checks; their shared state and counters
//!   in [`inbound::guard::Guard`], the recipient verification cache file with it). It asks
//!   delivery for a domain's next hops, their state and recipient verification.
//!   Handles: [`inbound::Inbound`] (session settings, in a [`live::Live`]) and
//!   [`inbound::Ctx`].
//! - [`admin`] owns the operator's actions (flush, delete, bounce), the control socket,
//!   the admin page and its views, settings and reload. Used by the wiring only.
//!
//! **The rule.** An arrow is "may import": a subsystem uses the handles of those below it
//! and never names one above. admin → inbound, delivery, spool; inbound → delivery, spool;
//! delivery → spool; spool → none; nothing imports admin. Everyone may use the shared
//! pieces, which import no subsystem. Only this file imports everything; nothing imports it
//! (the shared [`GRACE`] lives in [`shutdown`]). A path leaves its
//! subsystem as `crate::daemon::…`, never `super::super::…`, and inside a subsystem no two
//! files import each other in a circle. `tests/daemon_layers.rs` reads the sources and
//! fails on a break, naming file and line.
//!
//! **Where the code does not follow it yet** (known, to be removed):
//!
//! - `delivery::upstream` imports `inbound::Inbound`: the silo watch reads the accepted
//!   domains through `Live<Inbound>`. It is the one import against the arrows, listed as an
//!   exception in the check.
//! - [`delivery::Deliverer`] is a bag of public fields, not a handle: admin reads and
//!   writes them directly (`in_flight`, `kick`, `spool`, `settings`, `hop_slots`,
//!   `upstream_up`, `hop_down`, `clock`), admin's queue actions call delivery's notice
//!   writer ([`delivery::notice`]), and this file, admin's tests and `tests/expiry.rs`
//!   write its full literal.
//! - Inbound wakes delivery through a bare `Arc<Notify>` ([`inbound::Ctx::kick`]), not
//!   through a delivery handle; "make held mail due" is written in inbound (ETRN),
//!   delivery (`Deliverer::route_state`) and admin (`queue_actions`, `reload`, the admin
//!   page's flush).
//! - Admin's [`admin::reload`] builds inbound's [`inbound::Inbound`] from the config and
//!   sets delivery's settings itself.
//! - Every module is `pub` (the integration tests reach in): a handle is a convention here,
//!   not yet enforced by visibility.
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
//! [`admin::reload::Reloader::apply`] (the admin page's save does the same); a file that does not
//! load or validate is refused with a logged error and the running settings stay.

pub mod admin;
pub mod delivery;
pub mod events;
pub mod inbound;
pub mod io;
pub mod live;
pub mod shutdown;
pub mod spool;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailbag_hal::{Clock, SystemClock};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::policy::{Checker, Rules};
use crate::smtp::SessionConfig;
use crate::spool::Limits;
use crate::spool::open::open_for_daemon;
use shutdown::GRACE;

/// Runs the daemon until SIGTERM/SIGINT. `state_dir` holds the generated TLS certificate
/// (when none is configured). `config_file` is where the admin page saves settings;
/// `None` means the built-in demo (saved to `state_dir/mailbag.toml`, demo password file).
pub fn run(config: Config, state_dir: &Path, config_file: Option<&Path>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(serve(
        config,
        state_dir.to_path_buf(),
        config_file.map(Path::to_path_buf),
    ))
}

async fn serve(
    config: Config,
    state_dir: PathBuf,
    config_file: Option<PathBuf>,
) -> Result<(), String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let spool_path = PathBuf::from(&config.spool.path);
    let dev = open_for_daemon(&spool_path, config.spool.size, clock.as_ref())
        .map_err(|e| format!("spool {}: {e}", spool_path.display()))?;
    let limits = Limits {
        max_messages: config.spool.max_messages,
        max_bytes: config.spool.max_bytes,
        max_bytes_per_domain: config.spool.max_bytes_per_domain,
    };
    let (spool, spool_thread) = spool::start(dev, limits, Arc::clone(&clock))
        .map_err(|e| format!("spool {}: {e}", spool_path.display()))?;

    let rules = Arc::new(Rules::from_config(&config.policy).map_err(|e| format!("policy: {e}"))?);
    let capacity = spool::GaugeCapacity(Arc::clone(&spool.gauge));
    let checker = Checker::new(rules, capacity.clone());
    let mut session = SessionConfig::new(&config.smtp, checker).map_err(|e| e.to_string())?;
    let tls = if config.smtp.starttls {
        match inbound::tls::server_config(
            config.smtp.tls_cert.as_deref(),
            config.smtp.tls_key.as_deref(),
            &state_dir,
            &config.smtp.hostname,
        ) {
            Ok(sc) => Some(TlsAcceptor::from(sc)),
            // Without a configured certificate and without the generator (router builds:
            // the init script makes one with px5g), an MX without STARTTLS still takes
            // mail; refusing to start would not.
            Err(e) if inbound::tls::missing_generated(&config.smtp, &state_dir) => {
                crate::log!("{e}; STARTTLS is off");
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    session.starttls = tls.is_some();

    let mut listeners = Vec::new();
    for text in &config.smtp.listen {
        let addr: SocketAddr = text
            .parse()
            .map_err(|_| format!("smtp.listen: '{text}' is not address:port"))?;
        let l = inbound::listen::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = l.local_addr().map_err(|e| e.to_string())?;
        crate::log!("smtp listening on {local}");
        listeners.push(l);
    }

    let relay = crate::relay::RelaySettings::from_config(&config.relay, &config.smtp.hostname)
        .map_err(|e| format!("relay: {e}"))?
        .for_edge(config.role == crate::config::Role::Edge);
    let listen_addrs: Vec<SocketAddr> = config
        .smtp
        .listen
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    let guard = crate::relay::LoopGuard::new(&config.smtp.hostname, &listen_addrs, &[]);
    let kick = Arc::new(tokio::sync::Notify::new());
    let hop_down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let deliverer = Arc::new(delivery::Deliverer {
        spool: spool.clone(),
        settings: live::Live::new(relay),
        guard,
        clock: Arc::clone(&clock),
        kick: Arc::clone(&kick),
        hostname: config.smtp.hostname.clone(),
        tls: delivery::tls::client_configs()?,
        // Unknown at start: held mail (if any) is probed for at once.
        hop_down: Arc::clone(&hop_down),
        down_routes: Default::default(),
        dns: Arc::new(delivery::dns::DnsResolver::from_config(&config.relay)?),
        hop_slots: Default::default(),
        in_flight: Arc::default(),
        upstream_up: Arc::default(),
    });
    let events = Arc::new(events::EventLog::default());
    let session_settings = Arc::new(live::Live::new(inbound::Inbound::new(
        session,
        &config.policy,
        &config.scan,
    )?));
    let guard = Arc::new(inbound::guard::Guard::new(
        Arc::clone(&deliverer),
        delivery::dns::DnsResolver::from_config(&config.relay)?,
        config.smtp.max_sessions.max(1) as usize,
        session_settings.get().protection.guesses,
        verify_cache_path(&config, &state_dir),
        clock.unix_seconds(),
    ));
    let reloader = Arc::new(admin::reload::Reloader::new(
        config.clone(),
        Arc::clone(&session_settings),
        Arc::clone(&deliverer),
        capacity,
        Some(tokio::runtime::Handle::current()),
    ));
    #[cfg(feature = "web")]
    let pages = admin::web::start(
        &config,
        &state_dir,
        config_file.clone(),
        &events,
        &deliverer,
        &reloader,
        &guard.counters,
    )?;
    #[cfg(not(feature = "web"))]
    if !config.web.listen.is_empty() {
        crate::log!("web.listen ignored: this build has no admin page (LuCI: luci-app-mailbag)");
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = Arc::new(inbound::Ctx {
        inbound: Arc::clone(&session_settings),
        spool,
        tls,
        clock,
        events,
        shutdown: shutdown_rx.clone(),
        kick,
        guard: Arc::clone(&guard),
    });
    let cache_saver = tokio::spawn(save_verify_cache(
        Arc::clone(&guard),
        Arc::clone(&ctx.clock),
        shutdown_rx.clone(),
    ));
    let control = if config.daemon.control_socket.is_empty() {
        None
    } else {
        let path = Path::new(&config.daemon.control_socket);
        // Not fatal: an MX that refuses to start over its admin socket takes no mail.
        admin::control::start(
            path,
            Arc::clone(&deliverer),
            Arc::clone(&ctx.events),
            Arc::clone(&reloader),
            shutdown_rx.clone(),
        )
        .inspect_err(|e| crate::log!("{e}; queue commands will not reach this daemon"))
        .ok()
    };
    let silo_watch = match (&config.role, &config.relay.upstream_silo) {
        (crate::config::Role::Edge, Some(silo)) => match crate::relay::NextHop::parse(silo, 0) {
            Ok(hop) => Some(tokio::spawn(delivery::upstream::watch_silo(
                Arc::clone(&deliverer),
                hop,
                Arc::clone(&session_settings),
                Arc::clone(&deliverer.upstream_up),
                shutdown_rx.clone(),
            ))),
            Err(e) => {
                crate::log!("relay.upstream-silo '{silo}': {e}; not watched");
                None
            }
        },
        _ => None,
    };
    let probe = tokio::spawn(delivery::probe::probe_loop(
        Arc::clone(&deliverer),
        shutdown_rx.clone(),
    ));
    let delivery_task = tokio::spawn(delivery::lanes::run(deliverer, shutdown_rx));
    let max_sessions = config.smtp.max_sessions.max(1) as usize;
    let slots = Arc::new(Semaphore::new(max_sessions));
    let rejecting = Arc::new(Semaphore::new(inbound::listen::REJECTING_MAX));
    let mut accepts = Vec::new();
    for l in listeners {
        accepts.push(tokio::spawn(inbound::listen::accept_loop(
            l,
            Arc::clone(&ctx),
            Arc::clone(&slots),
            Arc::clone(&rejecting),
        )));
    }
    crate::log!("ready: {}", config.summary());

    wait_for_stop(&reloader, config_file.as_deref(), &ctx).await;
    crate::log!(
        "stopping: no new connections; waiting up to {}s for sessions",
        GRACE.as_secs()
    );
    let _ = shutdown_tx.send(true);
    for a in accepts {
        let _ = a.await;
    }
    if let Some(c) = control {
        c.stop().await;
    }
    let all = u32::try_from(max_sessions).unwrap_or(u32::MAX);
    if tokio::time::timeout(GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        crate::log!(
            "sessions still open after the grace period are dropped (their mail was not acknowledged)"
        );
    }
    drop(ctx);
    let _ = cache_saver.await;
    // The guard holds the deliverer, and so a spool handle.
    drop(guard);
    // The page's workers hold spool handles too: stop them before waiting for the thread.
    #[cfg(feature = "web")]
    let _ = tokio::task::spawn_blocking(move || pages.into_iter().for_each(|p| p.stop())).await;
    let _ = delivery_task.await;
    let _ = probe.await;
    if let Some(w) = silo_watch {
        // A probe or ETRN in progress is cut short: nothing durable depends on it.
        w.abort();
        let _ = w.await;
    }
    // The spool thread ends once the last handle is gone, after the queued requests.
    // The last holder of the deliverer (and so of a spool handle): the thread ends
    // once every handle is gone.
    drop(reloader);
    let join = tokio::task::spawn_blocking(move || spool_thread.join());
    if tokio::time::timeout(GRACE, join).await.is_err() {
        crate::log!(
            "spool thread still busy after the grace period; exiting (acknowledged mail is durable)"
        );
    }
    crate::log!("stopped");
    Ok(())
}

/// Where the recipient verification cache lives: `policy.verify-cache`, else next to the
/// spool image (`spool.img.verify`), or `verify.cache` in the state directory for an MTD
/// spool. Never inside the spool.
fn verify_cache_path(config: &Config, state_dir: &Path) -> PathBuf {
    if !config.policy.verify_cache.is_empty() {
        return PathBuf::from(&config.policy.verify_cache);
    }
    if config.spool.path.starts_with("/dev/") {
        return state_dir.join("verify.cache");
    }
    PathBuf::from(format!("{}.verify", config.spool.path))
}

/// Writes the recipient verification cache when it changed, at most once a minute and
/// once more at shutdown (a power cut loses at most a minute of answers: they are asked
/// again).
async fn save_verify_cache(
    guard: Arc<inbound::guard::Guard>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => false,
            _ = shutdown.changed() => true,
        };
        let g = Arc::clone(&guard);
        let now = clock.unix_seconds();
        let _ = tokio::task::spawn_blocking(move || g.save_verify_cache(now)).await;
        if stop {
            return;
        }
    }
}

/// Returns on SIGTERM or SIGINT; on SIGHUP reloads `config_file` meanwhile.
async fn wait_for_stop(
    reloader: &admin::reload::Reloader,
    config_file: Option<&Path>,
    ctx: &inbound::Ctx,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            crate::log!("cannot watch SIGTERM ({e}); stopping only on SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    let mut hup = signal(SignalKind::hangup())
        .inspect_err(|e| crate::log!("cannot watch SIGHUP ({e}); reload by restarting"))
        .ok();
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            Some(()) = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => reload_file(reloader, config_file, ctx),
        }
    }
}

/// SIGHUP: the config file read again and applied; refused as a whole if it is bad.
fn reload_file(reloader: &admin::reload::Reloader, config_file: Option<&Path>, ctx: &inbound::Ctx) {
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
    crate::log!("SIGHUP: {text}");
    ctx.events.push(ctx.clock.unix_seconds(), kind, None, &text);
}
