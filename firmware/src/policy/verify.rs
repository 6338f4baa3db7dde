//! Recipient verification against the primary: the answers cache and its file, sans-IO.
//!
//! While the next hop answers, an unknown recipient is asked there (`MAIL FROM:<>`,
//! `RCPT TO`, `RSET`: 2xx exists, 5xx does not, anything else is not an answer) and the
//! answer is kept: "exists" for `policy.verify-positive-days` (30), "does not exist" for
//! `policy.verify-negative-minutes` (60). While the primary is down, the kept answers
//! still hold, so a dictionary of guesses is refused even then.
//!
//! **Bounds.** At most [`ENTRIES_MAX`] addresses, each kept as a 64-bit FNV-1a hash of
//! the lower-cased address with its expiry and answer (17 bytes on file); when full, the
//! answer that expires first is dropped. Lookups are O(log n) (a sorted vector, no hash
//! table code in the router binary); inserting is O([`ENTRIES_MAX`]) at worst (a move of
//! at most 96 KB), once per callout.
//!
//! **File** (written by the host atomically — temporary file, fsync, rename — next to
//! the spool image or in the state directory, never inside the spool): big-endian,
//! independent of the machine that wrote it, at most [`FILE_MAX`] bytes (69,645):
//!
//! ```text
//! "MBVC" | version u8 = 1 | count u32 | count × (hash u64, expires u64, exists u8) | CRC-32 u32
//! ```
//!
//! A file that is damaged, truncated or of another version is ignored (the cache starts
//! empty: it only costs a few callouts), never trusted in part.

use crate::spool::{crc32, fnv1a};
use crate::vecmap::VecMap;

/// Addresses remembered.
pub const ENTRIES_MAX: usize = 4096;
/// Bytes per entry on file.
const ENTRY_LEN: usize = 17;
/// File magic.
pub const MAGIC: [u8; 4] = *b"MBVC";
/// File format version written (and the only one read).
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 9;
/// Largest file: header, every entry, CRC.
pub const FILE_MAX: usize = HEADER_LEN + ENTRIES_MAX * ENTRY_LEN + 4;

/// Why a cache file was not loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// Not a cache file (magic), or cut short.
    NotACache,
    /// Another format version.
    Version(u8),
    /// The checksum does not match.
    Checksum,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotACache => f.write_str("not a verification cache (or cut short)"),
            Self::Version(v) => write!(
                f,
                "verification cache format {v}; this build reads {VERSION}"
            ),
            Self::Checksum => f.write_str("verification cache checksum mismatch"),
        }
    }
}

impl std::error::Error for FileError {}

/// What the primary said about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// It exists (2xx to RCPT).
    Exists,
    /// It does not (5xx to RCPT).
    Unknown,
}

/// The answers kept.
#[derive(Debug, Default)]
pub struct VerifyCache {
    map: VecMap<u64, (u64, Known)>,
    dirty: bool,
}

/// The key of an address: FNV-1a of it lower-cased.
fn key(address: &str) -> u64 {
    fnv1a(&address.trim_matches(['<', '>']).to_ascii_lowercase())
}

impl VerifyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer kept for `address`, if it has not expired at `now`.
    pub fn lookup(&self, address: &str, now: u64) -> Option<Known> {
        match self.map.get(&key(address)) {
            Some(&(expires, known)) if expires > now => Some(known),
            _ => None,
        }
    }

    /// Keeps `known` for `address` until `now + ttl`.
    pub fn store(&mut self, address: &str, known: Known, now: u64, ttl: u64) {
        let k = key(address);
        if !self.map.contains_key(&k) && self.map.len() >= ENTRIES_MAX {
            self.map.retain(|_, (expires, _)| *expires > now);
            if self.map.len() >= ENTRIES_MAX {
                if let Some(first) = self.map.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| *k) {
                    self.map.remove(&first);
                }
            }
        }
        self.map.insert(k, (now.saturating_add(ttl), known));
        self.dirty = true;
    }

    /// Entries held (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Changed since the last [`VerifyCache::encode`].
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// The file's bytes (answers expired at `now` left out); clears [`VerifyCache::dirty`].
    pub fn encode(&mut self, now: u64) -> Vec<u8> {
        self.dirty = false;
        let live: Vec<_> = self.map.iter().filter(|(_, v)| v.0 > now).collect();
        let mut out = Vec::with_capacity(HEADER_LEN + live.len() * ENTRY_LEN + 4);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(live.len() as u32).to_be_bytes());
        for (k, (expires, known)) in live {
            out.extend_from_slice(&k.to_be_bytes());
            out.extend_from_slice(&expires.to_be_bytes());
            out.push(u8::from(*known == Known::Exists));
        }
        let crc = crc32(0, &out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a file written by [`VerifyCache::encode`]; answers expired at `now` are
    /// dropped.
    pub fn decode(bytes: &[u8], now: u64) -> Result<Self, FileError> {
        if bytes.len() < HEADER_LEN + 4 || bytes.len() > FILE_MAX || bytes[..4] != MAGIC {
            return Err(FileError::NotACache);
        }
        if bytes[4] != VERSION {
            return Err(FileError::Version(bytes[4]));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        if crc32(0, body).to_be_bytes() != tail {
            return Err(FileError::Checksum);
        }
        let count = u32::from_be_bytes([body[5], body[6], body[7], body[8]]) as usize;
        if count > ENTRIES_MAX || body.len() != HEADER_LEN + count * ENTRY_LEN {
            return Err(FileError::NotACache);
        }
        let mut map = Vec::with_capacity(count);
        for e in body[HEADER_LEN..].chunks_exact(ENTRY_LEN) {
            let mut k = [0u8; 8];
            let mut t = [0u8; 8];
            k.copy_from_slice(&e[..8]);
            t.copy_from_slice(&e[8..16]);
            let expires = u64::from_be_bytes(t);
            if expires > now {
                let known = if e[16] == 1 {
                    Known::Exists
                } else {
                    Known::Unknown
                };
                map.push((u64::from_be_bytes(k), (expires, known)));
            }
        }
        Ok(Self {
            map: VecMap::from_pairs(map),
            dirty: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_after_their_ttl_and_case_does_not_matter() {
        let mut c = VerifyCache::new();
        c.store("Alice@Office.Test", Known::Exists, 100, 30 * 86_400);
        c.store("mallory@office.test", Known::Unknown, 100, 3600);
        assert_eq!(c.lookup("alice@office.test", 200), Some(Known::Exists));
        assert_eq!(c.lookup("<MALLORY@office.test>", 200), Some(Known::Unknown));
        assert_eq!(c.lookup("mallory@office.test", 3700), None);
        assert_eq!(c.lookup("bob@office.test", 200), None);
        assert!(c.dirty());
    }

    #[test]
    fn the_file_round_trips_and_refuses_damage() {
        let mut c = VerifyCache::new();
        c.store("alice@office.test", Known::Exists, 100, 1000);
        c.store("gone@office.test", Known::Unknown, 100, 10);
        let bytes = c.encode(200);
        assert!(!c.dirty());
        assert_eq!(
            bytes.len(),
            HEADER_LEN + ENTRY_LEN + 4,
            "expired answers are not written"
        );
        let back = VerifyCache::decode(&bytes, 300).unwrap();
        assert_eq!(back.lookup("alice@office.test", 300), Some(Known::Exists));
        assert_eq!(back.len(), 1);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(VerifyCache::decode(&bad, 300).is_err(), "flip at {i}");
        }
        assert_eq!(
            VerifyCache::decode(&bytes[..10], 300).err(),
            Some(FileError::NotACache)
        );
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(
            VerifyCache::decode(&v2, 300).err(),
            Some(FileError::Version(2))
        );
        assert!(VerifyCache::decode(&bytes, 5000).unwrap().is_empty());
    }

    #[test]
    fn a_full_cache_drops_the_answer_that_expires_first_and_the_file_stays_bounded() {
        let mut c = VerifyCache::new();
        for i in 0..ENTRIES_MAX as u64 + 50 {
            c.store(&format!("u{i}@office.test"), Known::Exists, 0, 1000 + i);
        }
        assert_eq!(c.len(), ENTRIES_MAX);
        assert_eq!(
            c.lookup("u0@office.test", 1),
            None,
            "the earliest expiry went first"
        );
        assert!(
            c.lookup(&format!("u{}@office.test", ENTRIES_MAX + 49), 1)
                .is_some()
        );
        assert_eq!(c.encode(1).len(), FILE_MAX);
    }
}
