//! The watch task: once a second it sends the notices whose damping interval has passed,
//! keeps the LED right and looks for silent routers (silo: O(routers)); every
//! `monitor.beacon-interval` it sends a beacon (edge); every `relay.probe-interval` it
//! checks the spool's fill and, while the primary is down, that the firewall is still open
//! (a firewall reload resets it).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use mailbag_hal::{Led, LedMode};
use tokio::sync::watch;

use super::deliverer::Deliverer;
use super::hops::Overall;
use super::{beacon, follow, notify};
use crate::config::Role;
use crate::monitor::notice::Event;

/// How often [`run`] wakes.
pub const TICK: Duration = Duration::from_secs(1);

/// The watch task (see the module doc); ends at shutdown.
pub(super) async fn run(d: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let settings = d.watch.settings();
    let led = open_led(&settings.monitor.led);
    let mut shown: Option<LedMode> = None;
    let mut spool_full = false;
    let mut last_check = 0u64;
    let mut next_beacon = 0u64;
    let mut sending: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => {
                if let Some(s) = sending {
                    s.abort();
                }
                return;
            }
        }
        let now = d.clock.unix_seconds();
        let due = d
            .watch
            .damper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due(now);
        for n in &due {
            notify::send(&d, n).await;
        }
        for a in d.watch.take_alerts() {
            notify::notify(&d, a).await;
        }
        if let Some(led) = &led {
            let mode = crate::monitor::led::mode(
                d.spool.gauge.get().messages,
                d.watch.primary() == Overall::Down,
            );
            if shown != Some(mode) {
                match led.set(mode) {
                    Ok(()) => shown = Some(mode),
                    Err(e) => {
                        // Said once; tried again on the next change.
                        crate::warn!("monitor.led: {e}");
                        shown = Some(mode);
                    }
                }
            }
        }
        // A beacon to an unreachable silo can take a connect timeout: it runs on its own,
        // one at a time, so notices and the LED never wait for it.
        let idle = sending
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished);
        if settings.role == Role::Edge && now >= next_beacon && idle {
            next_beacon = now + u64::from(settings.monitor.beacon_interval.max(1));
            let d2 = Arc::clone(&d);
            sending = Some(crate::daemon::task::spawn(async move {
                beacon::send_all(&d2).await
            }));
        }
        if cfg!(feature = "silo") && settings.role == Role::Silo {
            let alerts = d
                .watch
                .routers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .overdue(
                    now,
                    u64::from(settings.monitor.beacon_interval),
                    u64::from(settings.monitor.overdue_after),
                );
            for a in alerts {
                notify::notify(&d, a).await;
            }
        }
        let interval = d.settings().probe_interval.as_secs().max(1);
        if now < last_check + interval {
            continue;
        }
        last_check = now;
        spool_full = check_spool(&d, spool_full).await;
        if d.watch.primary() == Overall::Down {
            // A firewall reload puts the include's (closed) state back: open it again.
            follow::follow(&d.watch, Overall::Down);
        }
    }
}

/// Sends "spool nearly full" when the fill crosses `notify.spool-full-percent` (once
/// until it drops 10 points below). Returns whether it is over.
async fn check_spool(d: &Deliverer, was_full: bool) -> bool {
    let pct = u64::from(d.watch.settings().notify.spool_full_percent);
    let g = d.spool.gauge.get();
    if pct == 0 || g.max_bytes == 0 {
        return false;
    }
    let used = g.bytes.saturating_mul(100) / g.max_bytes;
    if !was_full && used >= pct {
        notify::notify(
            d,
            Event::SpoolFull {
                used: g.bytes,
                capacity: g.max_bytes,
                held: g.messages,
            },
        )
        .await;
        return true;
    }
    was_full && used + 10 >= pct
}

fn open_led(name: &str) -> Option<Led> {
    if name.is_empty() {
        return None;
    }
    // A test (or an unusual board) may give a whole directory laid out like the class.
    let led = if name.starts_with('/') {
        Led::at(name.into())
    } else {
        Led::open(name)
    };
    led.inspect_err(|e| crate::warn!("monitor.led '{name}': {e}; no LED"))
        .ok()
}
