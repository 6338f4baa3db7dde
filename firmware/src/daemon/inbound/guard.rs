//! [`Guard`]: the protection state every connection shares — the per-client session and
//! guess tables, the recipient verification cache and its file, the counters, the DNS
//! resolver the blocklists are asked through — and the two questions that reach into
//! delivery: "is this domain's next hop down?" and "does the next hop know this
//! recipient?". The decisions themselves are the sans-IO cores in [`crate::policy`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::daemon::delivery::DeliveryHandle;
use crate::daemon::delivery::dns::DnsResolver;
use crate::policy::Counters;
use crate::policy::client::ClientKey;
use crate::policy::throttle::{GuessLimits, GuessVerdict, Guesses, Sessions, stressed};
use crate::policy::verify::{Known, VerifyCache};
use crate::vecmap::VecMap;

/// Longest a next hop's answer to our own probe counts as its state (shorter when
/// `relay.probe-interval` is).
pub const HOP_FRESH: Duration = Duration::from_secs(30);
/// Time for a probe or a callout made while a client waits at RCPT.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// Most routes whose probe answers are remembered.
const HOP_VIEW_MAX: usize = 256;

/// Shared protection state (one per daemon).
pub struct Guard {
    /// One count per check and outcome (read by the status page and metrics).
    pub counters: Arc<Counters>,
    /// Blocklist lookups (its own cache, apart from delivery's MX answers).
    pub dns: DnsResolver,
    delivery: DeliveryHandle,
    sessions: Mutex<Sessions>,
    open: AtomicUsize,
    max_sessions: usize,
    guesses: Mutex<Guesses>,
    verify: Mutex<VerifyCache>,
    verify_path: PathBuf,
    hop_view: Mutex<VecMap<String, (bool, Instant)>>,
}

/// A session slot of one client, given back when dropped.
pub struct ClientSlot {
    guard: Arc<Guard>,
    key: Option<ClientKey>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            lock(&self.guard.sessions).close(key);
        }
        self.guard.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Guard {
    /// The shared state; the verification cache is read from `verify_path` (a missing or
    /// damaged file starts it empty, said in the log).
    pub fn new(
        delivery: DeliveryHandle,
        dns: DnsResolver,
        max_sessions: usize,
        guesses: GuessLimits,
        verify_path: PathBuf,
        now_unix: u64,
    ) -> Self {
        let verify = match std::fs::read(&verify_path) {
            Ok(bytes) => VerifyCache::decode(&bytes, now_unix).unwrap_or_else(|e| {
                crate::log!(
                    "{}: {e}; recipient answers start empty",
                    verify_path.display()
                );
                VerifyCache::new()
            }),
            Err(_) => VerifyCache::new(),
        };
        Self {
            counters: Arc::default(),
            dns,
            delivery,
            sessions: Mutex::new(Sessions::new(max_sessions)),
            open: AtomicUsize::new(0),
            max_sessions,
            guesses: Mutex::new(Guesses::new(guesses)),
            verify: Mutex::new(verify),
            verify_path,
            hop_view: Mutex::new(VecMap::default()),
        }
    }

    /// Takes a session slot for a client: `None` when it already holds `per_client`
    /// (trusted clients are not counted per client).
    pub fn open_session(
        self: &Arc<Self>,
        ip: IpAddr,
        trusted: bool,
        per_client: u32,
    ) -> Option<ClientSlot> {
        let key = (!trusted).then(|| ClientKey::of(ip));
        if let Some(k) = key {
            if !lock(&self.sessions).open(k, per_client) {
                self.counters.bump(|c| &mut c.sessions_per_client_refused);
                return None;
            }
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(ClientSlot {
            guard: Arc::clone(self),
            key,
        })
    }

    /// Most session slots are taken (Postfix's stress mode).
    pub fn stressed(&self) -> bool {
        stressed(self.open.load(Ordering::Relaxed), self.max_sessions)
    }

    /// New dictionary-attack limits (reload).
    pub fn set_guess_limits(&self, limits: GuessLimits) {
        lock(&self.guesses).set_limits(limits);
    }

    /// Whether `ip` is cooling down for guessing recipients.
    pub fn guess_check(&self, ip: IpAddr, now_unix: u64) -> GuessVerdict {
        lock(&self.guesses).check(ClientKey::of(ip), now_unix)
    }

    /// Counts a refused recipient of `ip`; true when it starts a cool-down.
    pub fn guess_refused(&self, ip: IpAddr, now_unix: u64) -> bool {
        let started = lock(&self.guesses).refused(ClientKey::of(ip), now_unix);
        if started {
            self.counters.bump(|c| &mut c.guess_cooldowns);
        }
        started
    }

    /// The kept answer for `address`.
    pub fn verify_cached(&self, address: &str, now_unix: u64) -> Option<Known> {
        lock(&self.verify).lookup(address, now_unix)
    }

    /// Keeps an answer.
    pub fn verify_store(&self, address: &str, known: Known, now_unix: u64, ttl: u64) {
        lock(&self.verify).store(address, known, now_unix, ttl);
    }

    /// Writes the verification cache when it changed: temporary file, fsync, rename, so a
    /// power cut leaves the old file or the new one. Blocking; call from a blocking task.
    pub fn save_verify_cache(&self, now_unix: u64) {
        let bytes = {
            let mut cache = lock(&self.verify);
            if !cache.dirty() {
                return;
            }
            cache.encode(now_unix)
        };
        if let Err(e) = write_atomic(&self.verify_path, &bytes) {
            crate::log!(
                "{}: cannot save recipient answers: {e}",
                self.verify_path.display()
            );
        }
    }

    /// Whether `domain`'s next hop does not answer. Delivery's own knowledge first (a
    /// route its attempts or probes found down, [`DeliveryHandle::route_down`]); else our
    /// probe of the route, at most every [`HOP_FRESH`] (or `relay.probe-interval`, when
    /// shorter). A domain without a reachable route counts as down (accepting is what a
    /// backup MX is for).
    pub async fn next_hop_down(&self, domain: &str) -> bool {
        let d = &self.delivery;
        let Some((route, hops)) = d.route_of(domain).await else {
            return true;
        };
        if d.route_down(&route) {
            return true;
        }
        let probe_interval = Duration::from_micros(d.settings().probe_interval.as_micros());
        let fresh = HOP_FRESH.min(probe_interval);
        if let Some(&(up, at)) = lock(&self.hop_view).get(route.as_str()) {
            if at.elapsed() < fresh {
                return !up;
            }
        }
        let mut up = false;
        for hop in &hops {
            let probe = d.probe_route(&route, hop);
            if tokio::time::timeout(CHECK_TIMEOUT, probe)
                .await
                .unwrap_or(false)
            {
                up = true;
                break;
            }
        }
        {
            let mut view = lock(&self.hop_view);
            if view.len() >= HOP_VIEW_MAX {
                view.clear();
            }
            view.insert(route.clone(), (up, Instant::now()));
        }
        !up
    }

    /// Asks `domain`'s next hop whether `address` exists: `Some(true)` 2xx, `Some(false)`
    /// 5xx, `None` when it could not be asked or said 4xx.
    pub async fn callout(&self, domain: &str, address: &str) -> Option<bool> {
        let d = &self.delivery;
        let (_, hops) = d.route_of(domain).await?;
        for hop in &hops {
            let ask = d.verify(hop, address);
            match tokio::time::timeout(CHECK_TIMEOUT, ask).await {
                Ok(Some(r)) if r.is_positive() => return Some(true),
                Ok(Some(r)) if r.is_permanent() => return Some(false),
                Ok(Some(_)) => return None,
                _ => {}
            }
        }
        None
    }
}

/// Where the recipient verification cache lives: `policy.verify-cache`, else next to the
/// spool image (`spool.img.verify`), or `verify.cache` in the state directory for an MTD
/// spool. Never inside the spool.
pub fn verify_cache_path(config: &crate::config::Config, state_dir: &Path) -> PathBuf {
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
pub(super) async fn save_verify_cache(
    guard: Arc<Guard>,
    clock: Arc<dyn mailbag_hal::Clock>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stop = tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => false,
            _ = shutdown.changed() => true,
        };
        let g = Arc::clone(&guard);
        let now = clock.unix_seconds();
        let _ = crate::daemon::task::spawn_blocking(move || g.save_verify_cache(now)).await;
        if stop {
            return;
        }
    }
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
