//! Login, sessions, CSRF tokens and the login rate limit.
//!
//! Like LuCI: the only user is `root`, checked against a shadow-format file (`/etc/shadow`
//! on OpenWrt; the path is configurable for tests). Accepted crypt formats are `$1$` (MD5),
//! `$5$` (SHA-256) and `$6$` (SHA-512); a locked (`!`, `*`) or empty hash never matches.
//! Sessions live in a fixed table of [`SESSIONS_MAX`] entries that expire after
//! [`SESSION_IDLE_SECS`] idle; each carries its own CSRF token. Failed logins are counted per
//! client address in a fixed table, and globally, and refused while over the limit.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The only user, as on OpenWrt.
pub const USER: &str = "root";
/// Most concurrent sessions; logging in with the table full evicts the least recently used.
pub const SESSIONS_MAX: usize = 16;
/// A session idle this long is gone.
pub const SESSION_IDLE_SECS: u64 = 3600;
/// Failed logins allowed per client address within [`FAIL_WINDOW_SECS`].
pub const FAILS_PER_CLIENT: u32 = 5;
/// Failed logins allowed from all clients together within [`FAIL_WINDOW_SECS`].
pub const FAILS_GLOBAL: u32 = 30;
/// The window over which failed logins are counted.
pub const FAIL_WINDOW_SECS: u64 = 60;
/// Client addresses tracked for the rate limit.
pub const FAIL_TRACK_MAX: usize = 64;
/// Longest shadow file line read.
const SHADOW_LINE_MAX: u64 = 4096;

/// Why a login failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user or password.
    BadCredentials,
    /// Too many failures recently; try again later.
    RateLimited,
    /// The shadow file could not be read.
    ShadowUnreadable,
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadCredentials => "wrong user name or password",
            Self::RateLimited => "too many failed logins, wait a minute",
            Self::ShadowUnreadable => "password file unreadable",
        })
    }
}

impl std::error::Error for LoginError {}

/// Looks up `user` in a shadow-format file and checks `password` against its hash.
pub fn check_password(shadow: &Path, user: &str, password: &str) -> Result<bool, io::Error> {
    let file = BufReader::new(File::open(shadow)?);
    for line in file.take(SHADOW_LINE_MAX * 1024).lines() {
        let line = line?;
        let mut fields = line.split(':');
        if fields.next() != Some(user) {
            continue;
        }
        let hash = fields.next().unwrap_or("");
        return Ok(verify_crypt(password, hash));
    }
    Ok(false)
}

/// Verifies a password against a `$1$`, `$5$` or `$6$` crypt hash; any other format fails.
pub fn verify_crypt(password: &str, hash: &str) -> bool {
    crate::crypt::verify(password, hash)
}

/// 32 random bytes from the kernel, as 64 hex characters.
pub fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A logged-in session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The cookie value.
    pub id: String,
    /// Must accompany every state-changing request (`X-CSRF-Token`).
    pub csrf: String,
    last_used: Instant,
}

/// The fixed-capacity session table.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Vec<Session>,
}

impl Sessions {
    /// Creates a session, evicting the least recently used one if the table is full.
    pub fn create(&mut self, now: Instant) -> io::Result<Session> {
        self.expire(now);
        if self.table.len() >= SESSIONS_MAX {
            if let Some(oldest) = self
                .table
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i)
            {
                self.table.swap_remove(oldest);
            }
        }
        let s = Session {
            id: random_token()?,
            csrf: random_token()?,
            last_used: now,
        };
        self.table.push(s.clone());
        Ok(s)
    }

    /// The live session with this cookie value, touched.
    pub fn find(&mut self, id: &str, now: Instant) -> Option<Session> {
        self.expire(now);
        let s = self
            .table
            .iter_mut()
            .find(|s| constant_time_eq(&s.id, id))?;
        s.last_used = now;
        Some(s.clone())
    }

    /// Ends a session.
    pub fn remove(&mut self, id: &str) {
        self.table.retain(|s| !constant_time_eq(&s.id, id));
    }

    fn expire(&mut self, now: Instant) {
        let idle = Duration::from_secs(SESSION_IDLE_SECS);
        self.table
            .retain(|s| now.saturating_duration_since(s.last_used) < idle);
    }
}

#[derive(Debug)]
struct Failures {
    client: IpAddr,
    count: u32,
    window_start: Instant,
}

/// Counts failed logins per client and globally, in fixed space.
#[derive(Debug, Default)]
pub struct RateLimit {
    clients: Vec<Failures>,
    global: Option<(Instant, u32)>,
}

impl RateLimit {
    /// Whether `client` may try to log in now.
    pub fn allowed(&mut self, client: IpAddr, now: Instant) -> bool {
        let window = Duration::from_secs(FAIL_WINDOW_SECS);
        self.clients
            .retain(|f| now.saturating_duration_since(f.window_start) < window);
        if let Some((start, _)) = self.global {
            if now.saturating_duration_since(start) >= window {
                self.global = None;
            }
        }
        let client_ok = self
            .clients
            .iter()
            .find(|f| f.client == client)
            .is_none_or(|f| f.count < FAILS_PER_CLIENT);
        let global_ok = self.global.is_none_or(|(_, n)| n < FAILS_GLOBAL);
        client_ok && global_ok
    }

    /// Records a failed login from `client`.
    pub fn failed(&mut self, client: IpAddr, now: Instant) {
        let g = self.global.get_or_insert((now, 0));
        g.1 = g.1.saturating_add(1);
        if let Some(f) = self.clients.iter_mut().find(|f| f.client == client) {
            f.count = f.count.saturating_add(1);
            return;
        }
        if self.clients.len() >= FAIL_TRACK_MAX {
            if let Some(i) = self
                .clients
                .iter()
                .enumerate()
                .min_by_key(|(_, f)| f.window_start)
                .map(|(i, _)| i)
            {
                self.clients.swap_remove(i);
            }
        }
        self.clients.push(Failures {
            client,
            count: 1,
            window_start: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl passwd -1/-5/-6 -salt saltsalt 'hunter2'`.
    const MD5: &str = "$1$saltsalt$ZliGyAN3DciDHEkDboonh/";
    const SHA256: &str = "$5$saltsalt$OIdfjX.u4Y3SJ4I2bX8w5BMf1VAUhHABNUirScDzZi3";
    const SHA512: &str = "$6$saltsalt$8iYtNHxjWRl.NF6oNZ5tF.iKFlQREaXBLlSmZKP6dy9l5z3vsooWNW0/GZ6Nej73/TFug6pIPSqbJoCT6dfnj.";

    #[test]
    fn openssl_hashes_verify_and_wrong_passwords_do_not() {
        for h in [MD5, SHA256, SHA512] {
            assert!(verify_crypt("hunter2", h), "{h}");
            assert!(!verify_crypt("hunter3", h), "{h}");
        }
        assert!(!verify_crypt("", "!"));
        assert!(!verify_crypt("", ""));
        assert!(!verify_crypt("hunter2", "*"));
        // Traditional DES crypt (13 characters, no `$`) is not an accepted format.
        assert!(!verify_crypt("hunter2", "saEjO0GhQ3E0E"));
    }

    #[test]
    fn per_client_limit_then_window_expiry() {
        let mut rl = RateLimit::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..FAILS_PER_CLIENT {
            assert!(rl.allowed(a, t0));
            rl.failed(a, t0);
        }
        assert!(!rl.allowed(a, t0));
        assert!(rl.allowed(b, t0));
        assert!(rl.allowed(a, t0 + Duration::from_secs(FAIL_WINDOW_SECS)));
    }

    #[test]
    fn global_limit_stops_address_rotation() {
        let mut rl = RateLimit::default();
        let t0 = Instant::now();
        for i in 0..FAILS_GLOBAL {
            let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            assert!(rl.allowed(ip, t0));
            rl.failed(ip, t0);
        }
        assert!(!rl.allowed("10.9.9.9".parse().unwrap(), t0));
    }

    #[test]
    fn sessions_are_bounded_and_expire() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let first = s.create(t0).unwrap();
        for i in 1..=SESSIONS_MAX {
            s.create(t0 + Duration::from_secs(i as u64)).unwrap();
        }
        assert!(
            s.find(&first.id, t0 + Duration::from_secs(100)).is_none(),
            "oldest evicted"
        );
        let live = s.create(t0 + Duration::from_secs(100)).unwrap();
        assert!(s.find(&live.id, t0 + Duration::from_secs(200)).is_some());
        assert!(
            s.find(&live.id, t0 + Duration::from_secs(200 + SESSION_IDLE_SECS))
                .is_none()
        );
    }
}
