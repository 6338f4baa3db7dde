//! Heartbeat beacons, edge → silo: one line that says "this router is alive" with a few
//! numbers, signed with the router's shared secret.
//!
//! Wire form (the argument of the SMTP command `XBEACON`, a private-use command per
//! RFC 5321 §4.1.5), fields in this order, all required:
//!
//! ```text
//! v1 router=office1 t=1700000000 n=42 uptime=86400 held=3 bytes=20480 primary=down free=1048576 mac=<64 hex>
//! ```
//!
//! - `mac` is HMAC-SHA256 (RFC 2104) keyed with the router's secret over
//!   `mailbag-beacon ` followed by everything before ` mac=`.
//! - `t` (the edge's Unix time) and `n` (a counter since the edge started) make each
//!   beacon unique: the silo accepts one only if `(t, n)` is greater than the last it
//!   accepted from that router, and `t` is within [`SKEW_MAX`] of its own clock (so a
//!   beacon recorded before a silo restart cannot be replayed after it).
//! - Parsing is strict and bounded ([`BEACON_MAX`]); the MAC is checked (in constant time,
//!   by ring) before any field is believed.

use core::fmt;

use ring::hmac;

/// Longest beacon line.
pub const BEACON_MAX: usize = 400;
/// Most seconds the edge's clock may differ from the silo's.
pub const SKEW_MAX: u64 = 900;
/// What the MAC covers before the fields, so a MAC from elsewhere never fits here.
const DOMAIN_TAG: &str = "mailbag-beacon ";

/// The primary's state as the edge reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimaryReport {
    /// Answering.
    Up,
    /// Not answering: mail is held on the edge.
    Down,
    /// Not probed yet.
    Unknown,
}

impl PrimaryReport {
    /// `up`, `down`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Unknown => "unknown",
        }
    }
}

/// What a beacon says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beacon {
    /// The router's id (`monitor.router-id`).
    pub router: String,
    /// The edge's Unix time when it was sent.
    pub time: u64,
    /// Beacons sent since the edge started.
    pub seq: u64,
    /// Seconds since the edge's daemon started.
    pub uptime: u64,
    /// Messages held on the edge.
    pub held: u64,
    /// Their bytes.
    pub held_bytes: u64,
    /// The edge's primary.
    pub primary: PrimaryReport,
    /// Spool bytes free on the edge.
    pub spool_free: u64,
}

/// Why a beacon was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeaconError {
    /// Not a beacon line (the reason says which part).
    Malformed(&'static str),
    /// No router with this id is configured here.
    UnknownRouter(String),
    /// The MAC does not match: wrong secret, or the line was altered.
    BadMac,
    /// `t` is too far from our clock (seconds off).
    Skewed(u64),
    /// Not newer than the last beacon accepted from this router.
    Replayed,
}

impl BeaconError {
    /// The SMTP reply to `XBEACON` for this refusal.
    pub fn reply(&self) -> String {
        match self {
            Self::Malformed(_) => format!("501 5.5.4 {self}"),
            _ => format!("554 5.7.0 {self}"),
        }
    }
}

impl fmt::Display for BeaconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed beacon: {why}"),
            Self::UnknownRouter(id) => write!(f, "beacon from unknown router '{id}'"),
            Self::BadMac => f.write_str("beacon signature does not match (wrong secret?)"),
            Self::Skewed(s) => write!(f, "beacon clock is {s} s off ours (more than {SKEW_MAX} s)"),
            Self::Replayed => f.write_str("beacon replayed (not newer than the last one)"),
        }
    }
}

impl std::error::Error for BeaconError {}

impl Beacon {
    /// The signed line.
    pub fn encode(&self, secret: &[u8]) -> String {
        let fields = self.fields();
        format!("{fields} mac={}", hex(mac(secret, &fields).as_ref()))
    }

    fn fields(&self) -> String {
        format!(
            "v1 router={} t={} n={} uptime={} held={} bytes={} primary={} free={}",
            self.router,
            self.time,
            self.seq,
            self.uptime,
            self.held,
            self.held_bytes,
            self.primary.as_str(),
            self.spool_free
        )
    }

    /// Reads a line: the claimed router id and a [`Signed`] to verify with its secret.
    pub fn parse(line: &str) -> Result<Signed<'_>, BeaconError> {
        use BeaconError::Malformed;
        if line.len() > BEACON_MAX {
            return Err(Malformed("too long"));
        }
        let (signed, mac_hex) = line.rsplit_once(" mac=").ok_or(Malformed("no mac"))?;
        let mac = unhex32(mac_hex).ok_or(Malformed("mac is not 64 hex digits"))?;
        let mut words = signed.split(' ');
        if words.next() != Some("v1") {
            return Err(Malformed("not version v1"));
        }
        let mut field = |name: &'static str| -> Result<&str, BeaconError> {
            words
                .next()
                .and_then(|w| w.strip_prefix(name))
                .and_then(|w| w.strip_prefix('='))
                .ok_or(Malformed("fields missing or out of order"))
        };
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| Malformed("a number is not a number"))
        };
        let router = field("router")?;
        if !super::config::is_router_id(router) {
            return Err(Malformed("bad router id"));
        }
        let beacon = Beacon {
            router: router.to_owned(),
            time: num(field("t")?)?,
            seq: num(field("n")?)?,
            uptime: num(field("uptime")?)?,
            held: num(field("held")?)?,
            held_bytes: num(field("bytes")?)?,
            primary: match field("primary")? {
                "up" => PrimaryReport::Up,
                "down" => PrimaryReport::Down,
                "unknown" => PrimaryReport::Unknown,
                _ => return Err(Malformed("primary is not up, down or unknown")),
            },
            spool_free: num(field("free")?)?,
        };
        if words.next().is_some() {
            return Err(Malformed("extra fields"));
        }
        Ok(Signed {
            beacon,
            signed,
            mac,
        })
    }
}

/// A parsed beacon whose MAC is not checked yet.
pub struct Signed<'a> {
    beacon: Beacon,
    signed: &'a str,
    mac: [u8; 32],
}

impl Signed<'_> {
    /// The router it claims to come from (to look its secret up).
    pub fn router(&self) -> &str {
        &self.beacon.router
    }

    /// The beacon, once its MAC matches `secret`.
    pub fn verify(self, secret: &[u8]) -> Result<Beacon, BeaconError> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mut data = Vec::with_capacity(DOMAIN_TAG.len() + self.signed.len());
        data.extend_from_slice(DOMAIN_TAG.as_bytes());
        data.extend_from_slice(self.signed.as_bytes());
        hmac::verify(&key, &data, &self.mac).map_err(|_| BeaconError::BadMac)?;
        Ok(self.beacon)
    }
}

fn mac(secret: &[u8], fields: &str) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(DOMAIN_TAG.as_bytes());
    ctx.update(fields.as_bytes());
    ctx.sign()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Beacon {
        Beacon {
            router: "office1".into(),
            time: 1_700_000_000,
            seq: 42,
            uptime: 86_400,
            held: 3,
            held_bytes: 20_480,
            primary: PrimaryReport::Down,
            spool_free: 1 << 20,
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef0123";

    #[test]
    fn a_signed_beacon_reads_back() {
        let line = sample().encode(SECRET);
        assert!(line.starts_with("v1 router=office1 t=1700000000 n=42 uptime=86400 held=3 bytes=20480 primary=down free=1048576 mac="));
        assert!(line.len() < BEACON_MAX);
        let signed = Beacon::parse(&line).unwrap();
        assert_eq!(signed.router(), "office1");
        assert_eq!(signed.verify(SECRET).unwrap(), sample());
    }

    #[test]
    fn a_forged_or_altered_beacon_is_refused() {
        let line = sample().encode(SECRET);
        let wrong = Beacon::parse(&line).unwrap().verify(b"another-secret-0000");
        assert_eq!(wrong, Err(BeaconError::BadMac));
        let altered = line.replace("held=3", "held=0");
        assert_eq!(
            Beacon::parse(&altered).unwrap().verify(SECRET),
            Err(BeaconError::BadMac)
        );
        // The MAC of a beacon under another tag (e.g. a different message type) does not fit.
        let other = hex(mac(SECRET, "x").as_ref());
        let spliced = format!("{} mac={other}", line.rsplit_once(" mac=").unwrap().0);
        assert_eq!(
            Beacon::parse(&spliced).unwrap().verify(SECRET),
            Err(BeaconError::BadMac)
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let ok = sample().encode(SECRET);
        for (line, why) in [
            ("hello", "no mac"),
            ("v1 router=a mac=zz", "mac is not 64 hex digits"),
            (&*ok.replace("v1 ", "v2 "), "not version v1"),
            (&*ok.replace(" n=42", ""), "fields missing or out of order"),
            (
                &*ok.replace("held=3", "held=-3"),
                "a number is not a number",
            ),
            (
                &*ok.replace("primary=down", "primary=meh"),
                "primary is not up, down or unknown",
            ),
            (
                &*ok.replace("router=office1", "router=a/b"),
                "bad router id",
            ),
            (&*ok.replace(" mac=", " x=1 mac="), "extra fields"),
            (&*"v".repeat(BEACON_MAX + 1), "too long"),
        ] {
            assert_eq!(
                Beacon::parse(line).err(),
                Some(BeaconError::Malformed(why)),
                "{line}"
            );
        }
        assert!(BeaconError::BadMac.reply().starts_with("554 5.7.0 "));
        assert!(
            BeaconError::Malformed("x")
                .reply()
                .starts_with("501 5.5.4 ")
        );
    }
}
