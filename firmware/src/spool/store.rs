//! [`Spool`]: the queue of accepted messages, a log of frames in segment files on a
//! littlefs2 filesystem (the design, every crash case and the costs are in
//! `docs/spool.md`).
//!
//! ```text
//! /spool.hdr        header record: magic, format 2, mount count, segment size
//! /log/<seg>        segment files (8 hex digits), append-only, oldest to newest
//! ```
//!
//! - **Write** ([`Spool::run`] hands out a [`Writer`] on the open head segment): bodies
//!   stream into the head as chunk frames; a commit appends the message frame; attempts and
//!   removals append state and done frames. [`Writer::sync`] makes everything written so
//!   far durable with one file sync and one device sync (group commit) and only then
//!   publishes it to readers and to delivery.
//! - **Read**: a message frame (and its latest state frame) is found through the RAM
//!   [`Index`]; no directory holds one entry per message.
//! - **Mount** replays every segment once, oldest first: O(log bytes), no per-message file.
//! - **Reclaim** removes the oldest segment once nothing live is left in it, copying live
//!   messages forward first when flash runs short ([`super::writer`]).

use littlefs2::fs::{Allocation, Filesystem};
use littlefs2::io::Error as LfsError;
use littlefs2::path::PathBuf;
use mailbag_hal::BlockDevice;

use super::error::SpoolError;
use super::flash::{Barrier, FORMAT_BLOCKS, Flash, FlashHandle, FlashStats, SPOOL_BLOCK};
use super::frame::{self, HEADER_LEN};
use super::index::{Index, Slot};
use super::message::{HEADER_MAGIC, Header, HeaderV1, MessageId, MessageMeta, domain_of};
use super::read::{BodyCache, read_body, read_file, read_meta, stream_body};
use super::record::{self, RecordError};
use super::segments::Segments;
use super::writer::Publish;

/// Capacities enforced by the spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most messages held at once (committed plus being received).
    pub max_messages: u32,
    /// Most body bytes held at once.
    pub max_bytes: u64,
    /// Most body bytes held for one recipient domain (0: no limit). A message counts
    /// against the domain of its first recipient.
    pub max_bytes_per_domain: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_messages: 4096,
            max_bytes: u64::MAX,
            max_bytes_per_domain: 0,
        }
    }
}

/// Whether the spool may be changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Normal operation: recovery and migration run, new mail is accepted.
    ReadWrite,
    /// Inspection (e.g. an image copied off a router): nothing is written.
    ReadOnly,
}

/// A held message as listed (see [`Spool::list`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Queue id.
    pub id: MessageId,
    /// Wall-clock seconds when accepted.
    pub received_unix: u64,
    /// Body bytes.
    pub size: u64,
    /// Wall-clock seconds of the next attempt (0: due now).
    pub next_attempt_unix: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Hash of its first recipient's domain ([`domain_key`]): its delivery lane and the
    /// quota it counts against.
    pub domain: u32,
}

/// A snapshot of how full the spool is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Committed messages.
    pub messages: u32,
    /// Committed body bytes.
    pub bytes: u64,
    /// Messages being received.
    pub in_flight: u32,
    /// Body bytes being received.
    pub reserved: u64,
    /// Device capacity in bytes.
    pub device_bytes: u64,
    /// Configured limits.
    pub limits: Limits,
    /// Segments whose frames could not all be read at mount (damage).
    pub damaged: u32,
    /// Segment files in the log.
    pub segments: u32,
    /// Bytes of frames in the log (live and not yet reclaimed).
    pub log_bytes: u64,
    /// Messages converted from format 1 at this mount.
    pub migrated: u32,
    /// Driver counters since mount.
    pub flash: FlashStats,
}

pub(super) const HEADER_PATH: &str = "/spool.hdr";
const HEADER_TMP: &str = "/spool.hdr.t";
pub(super) const LOG_DIR: &str = "/log";

/// The spool's state beside the filesystem (split from it so a [`Writer`] can hold the
/// open head file, which borrows the filesystem, and the state at once).
pub(super) struct State<D: BlockDevice> {
    pub flash: FlashHandle<D>,
    pub access: Access,
    pub limits: Limits,
    pub header: Header,
    pub seq: u32,
    pub index: Index,
    pub segs: Segments,
    /// Body bytes of held and committed messages.
    pub bytes: u64,
    pub in_flight: u32,
    pub reserved: u64,
    pub damaged: u32,
    pub migrated: u32,
    /// Per-domain body bytes (only with a per-domain limit).
    pub quotas: Quotas,
    /// Index changes waiting for the next sync (see [`Publish`]).
    pub publish: Vec<Publish>,
    /// Frames written since the last sync.
    pub dirty: bool,
    /// Syncs to skip copy-forward after one that could not finish.
    pub reclaim_pause: u32,
    /// A message could not be copied forward (damage) in the current copy-forward.
    pub copy_failed: bool,
    /// Frame encoding buffer.
    pub buf: Vec<u8>,
    /// The last bodies read piece by piece (delivery).
    pub bodies: BodyCache,
}

/// The message queue on a mounted littlefs2 filesystem.
pub struct Spool<'a, D: BlockDevice> {
    pub(super) fs: Filesystem<'a, Flash<D>>,
    pub(super) st: State<D>,
}

/// Formats `dev` as an empty spool (everything on it is lost) and returns it.
pub fn format<D: BlockDevice>(dev: D, barrier: Barrier, now_unix: u64) -> Result<D, SpoolError> {
    let mut small: Flash<D, FORMAT_BLOCKS> = Flash::new(dev, barrier).map_err(SpoolError::Io)?;
    let blocks = small.device_blocks();
    let handle = small.handle();
    Filesystem::format(&mut small).map_err(|e| lfs_error(&handle, e))?;
    drop(handle);
    let dev = small
        .into_device()
        .ok_or_else(|| SpoolError::Io("device still borrowed".into()))?;

    let mut flash: Flash<D> = Flash::new(dev, barrier).map_err(SpoolError::Io)?;
    let handle = flash.handle();
    {
        let mut alloc = Allocation::new();
        let fs = Filesystem::mount(&mut alloc, &mut flash).map_err(|e| lfs_error(&handle, e))?;
        if blocks > FORMAT_BLOCKS {
            fs.grow(blocks).map_err(|e| lfs_error(&handle, e))?;
        }
        let header = Header {
            magic: HEADER_MAGIC,
            created_unix: now_unix,
            mounts: 0,
            block_count: blocks as u32,
            seg_size: Segments::size_for((blocks * SPOOL_BLOCK) as u64),
        };
        write_header(&fs, &header).map_err(|e| lfs_error(&handle, e))?;
        fs.create_dir(&path(LOG_DIR))
            .map_err(|e| lfs_error(&handle, e))?;
    }
    handle.sync().map_err(|e| SpoolError::Io(e.to_string()))?;
    drop(handle);
    flash
        .into_device()
        .ok_or_else(|| SpoolError::Io("device still borrowed".into()))
}

/// What `/spool.hdr` says.
pub(super) enum Found {
    V1(HeaderV1),
    V2(Header),
}

impl<'a, D: BlockDevice> Spool<'a, D> {
    /// Mounts the spool on `flash`: replays the log (read-write: also finishes whatever a
    /// power cut interrupted, and converts a format-1 spool) or only reads it (read-only).
    /// Refuses, without writing anything, an image that is not a mailbag spool or was
    /// written by a newer format.
    pub fn mount(
        alloc: &'a mut Allocation<Flash<D>>,
        flash: &'a mut Flash<D>,
        limits: Limits,
        access: Access,
    ) -> Result<Self, SpoolError> {
        let handle = flash.handle();
        let device_blocks = flash.device_blocks();
        let fs = Filesystem::mount(alloc, flash).map_err(|e| {
            let why = handle
                .take_error()
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("{e:?}"));
            SpoolError::NotASpool(format!("no littlefs filesystem found ({why})"))
        })?;
        let found = read_header(&fs)?;
        let (block_count, mounts, created) = match &found {
            Found::V1(h) => (h.block_count, h.mounts, h.created_unix),
            Found::V2(h) => (h.block_count, h.mounts, h.created_unix),
        };
        if (device_blocks as u64) < u64::from(block_count) {
            return Err(SpoolError::NotASpool(format!(
                "device has {device_blocks} blocks but the spool spans {block_count} (a truncated copy?)"
            )));
        }
        let device_bytes = (device_blocks * SPOOL_BLOCK) as u64;
        let mut header = match &found {
            Found::V2(h) => h.clone(),
            Found::V1(_) => Header {
                magic: HEADER_MAGIC,
                created_unix: created,
                mounts,
                block_count,
                seg_size: Segments::size_for(device_bytes),
            },
        };
        if matches!(found, Found::V1(_)) && access == Access::ReadOnly {
            return Err(SpoolError::NeedsMigration);
        }
        if access == Access::ReadWrite {
            // The first write after mount makes littlefs finish any rename or relocation a
            // power cut interrupted; until then a directory listing can miss an entry.
            if device_blocks as u32 > header.block_count {
                fs.grow(device_blocks).map_err(|e| lfs_error(&handle, e))?;
                header.block_count = device_blocks as u32;
            }
            header.mounts = header.mounts.wrapping_add(1);
            match &found {
                Found::V1(h) => {
                    // Still format 1 until migration is complete.
                    let mut h = h.clone();
                    h.mounts = header.mounts;
                    h.block_count = header.block_count;
                    write_header_v1(&fs, &h).map_err(|e| lfs_error(&handle, e))?;
                }
                Found::V2(_) => write_header(&fs, &header).map_err(|e| lfs_error(&handle, e))?,
            }
        }
        let seg_size = header.seg_size.max(SPOOL_BLOCK as u32);
        let mut spool = Spool {
            fs,
            st: State {
                flash: handle,
                access,
                limits,
                header,
                seq: 0,
                index: Index::new(limits.max_messages),
                segs: Segments::new(device_bytes, seg_size),
                bytes: 0,
                in_flight: 0,
                reserved: 0,
                damaged: 0,
                migrated: 0,
                quotas: Quotas::new(limits),
                publish: Vec::with_capacity(64),
                dirty: false,
                reclaim_pause: 0,
                copy_failed: false,
                buf: vec![0u8; HEADER_LEN + frame::RECORD_MAX],
                bodies: BodyCache::default(),
            },
        };
        if access == Access::ReadWrite && !spool.fs.exists(&path(LOG_DIR)) {
            spool
                .fs
                .create_dir(&path(LOG_DIR))
                .map_err(|e| spool.io(e))?;
        }
        super::replay::replay(&mut spool)?;
        if let Found::V1(_) = found {
            super::migrate::from_v1(&mut spool)?;
        } else if access == Access::ReadWrite {
            super::migrate::finish_v1_cleanup(&spool)?;
        }
        spool.st.index.finish_load();
        if access == Access::ReadWrite {
            spool.sync_device()?;
        }
        Ok(spool)
    }

    /// How full the spool is.
    pub fn usage(&self) -> Usage {
        self.st.usage()
    }

    /// Body bytes held per domain key ([`domain_key`] of the first recipient's domain).
    pub fn domain_bytes(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.st.quotas.each()
    }

    /// The header as mounted.
    pub fn header(&self) -> &Header {
        &self.st.header
    }

    /// Number of held messages.
    pub fn len(&self) -> usize {
        self.st.index.held_count() as usize
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Held messages, oldest first. O(n log n): for listings, not for delivery.
    pub fn list(&self) -> Vec<IndexEntry> {
        self.st.list()
    }

    /// Reads a message's record with its latest delivery state.
    pub fn meta(&self, id: MessageId) -> Result<MessageMeta, SpoolError> {
        read_meta(&self.fs, &self.st, id).map(|(m, _)| m)
    }

    /// Reads body bytes of `id` at `offset` into `buf`; returns how many (0 at the end).
    /// A read never crosses a chunk boundary ([`CHUNK`] bytes), so callers loop.
    pub fn read_body(
        &self,
        id: MessageId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, SpoolError> {
        read_body(&self.fs, &self.st, id, offset, buf)
    }

    /// Reads the whole body in chunks, feeding each to `sink`, and checks its CRC.
    pub fn stream_body(&self, id: MessageId, sink: impl FnMut(&[u8])) -> Result<u64, SpoolError> {
        stream_body(&self.fs, &self.st, id, sink)
    }

    pub(super) fn io(&self, e: LfsError) -> SpoolError {
        lfs_error(&self.st.flash, e)
    }

    pub(super) fn sync_device(&self) -> Result<(), SpoolError> {
        self.st
            .flash
            .sync()
            .map_err(|e| SpoolError::Io(e.to_string()))
    }
}

impl<D: BlockDevice> State<D> {
    pub fn usage(&self) -> Usage {
        Usage {
            messages: self.index.held_count(),
            bytes: self.bytes,
            in_flight: self.in_flight,
            reserved: self.reserved,
            device_bytes: u64::from(self.header.block_count) * SPOOL_BLOCK as u64,
            limits: self.limits,
            damaged: self.damaged,
            segments: self.segs.len() as u32,
            log_bytes: self.segs.log_bytes,
            migrated: self.migrated,
            flash: self.flash.stats(),
        }
    }

    pub fn list(&self) -> Vec<IndexEntry> {
        let mut v: Vec<IndexEntry> = self
            .index
            .held()
            .map(|e| IndexEntry {
                id: e.id,
                received_unix: u64::from(e.received),
                size: u64::from(e.size),
                next_attempt_unix: u64::from(e.next_attempt),
                attempts: u32::from(e.attempts),
                domain: e.dom,
            })
            .collect();
        v.sort_unstable_by_key(|e| e.id);
        v
    }

    /// The slot of a held (committed and published) message.
    pub fn held(&self, id: MessageId) -> Result<Slot, SpoolError> {
        self.index
            .find(id)
            .filter(|&s| self.index.get(s).is_held())
            .ok_or(SpoolError::NotFound)
    }

    pub fn writable(&self) -> Result<(), SpoolError> {
        match self.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(SpoolError::ReadOnly),
        }
    }
}

/// Per-domain body bytes, keyed by [`domain_key`]; allocated once for at most
/// [`QUOTA_DOMAINS`] domains (further domains are not limited). Counted always (the
/// per-domain tiers of `policy.domain-rules` read them through the daemon's gauge); the
/// table is sized up front only when `max_bytes_per_domain` limits every domain.
pub(super) struct Quotas {
    on: bool,
    map: std::collections::HashMap<u32, u64>,
}

/// Most domains whose bytes are counted for the per-domain limit.
pub const QUOTA_DOMAINS: usize = 4096;

impl Quotas {
    fn new(limits: Limits) -> Self {
        let all = limits.max_bytes_per_domain > 0;
        Quotas {
            on: true,
            map: std::collections::HashMap::with_capacity(if all { QUOTA_DOMAINS } else { 64 }),
        }
    }

    /// Every domain key with bytes held.
    pub fn each(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.map.iter().map(|(k, v)| (*k, *v))
    }

    pub fn bytes(&self, dom: u32) -> u64 {
        self.map.get(&dom).copied().unwrap_or(0)
    }

    pub fn add(&mut self, dom: u32, n: u64) {
        if !self.on {
            return;
        }
        if let Some(b) = self.map.get_mut(&dom) {
            *b += n;
        } else if self.map.len() < QUOTA_DOMAINS {
            self.map.insert(dom, n);
        }
    }

    pub fn sub(&mut self, dom: u32, n: u64) {
        if let Some(b) = self.map.get_mut(&dom) {
            *b = b.saturating_sub(n);
            if *b == 0 {
                self.map.remove(&dom);
            }
        }
    }
}

/// The 32-bit key of a domain: its delivery lane and its quota.
pub fn domain_key(domain: &str) -> u32 {
    let h = fnv1a(&domain.to_ascii_lowercase());
    (h ^ (h >> 32)) as u32
}

/// The key of an address's domain.
pub fn address_key(addr: &str) -> u32 {
    domain_key(&domain_of(addr))
}

/// FNV-1a, 64-bit: domain keys (collisions only merge two lanes or quotas).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn lfs_error<D: BlockDevice>(flash: &FlashHandle<D>, e: LfsError) -> SpoolError {
    if e == LfsError::NO_SPACE {
        return SpoolError::Full;
    }
    if e == LfsError::NO_SUCH_ENTRY {
        return SpoolError::NotFound;
    }
    match flash.take_error() {
        Some(dev) => SpoolError::Io(dev.to_string()),
        None => SpoolError::Io(format!("littlefs error {}", e.code())),
    }
}

/// A littlefs path from a name built by this module (always short ASCII).
pub(super) fn path(s: &str) -> PathBuf {
    // Names come from constants and hex numbers: ASCII, no NUL, well under the path limit.
    PathBuf::try_from(s).unwrap_or_default()
}

/// The path of segment `no`.
pub(super) fn seg_path(no: u32) -> PathBuf {
    path(&format!("{LOG_DIR}/{no:08x}"))
}

fn read_header<S: littlefs2::driver::Storage>(fs: &Filesystem<'_, S>) -> Result<Found, SpoolError> {
    let mut buf = [0u8; 256];
    let n = read_file(fs, &path(HEADER_PATH), 0, &mut buf).map_err(|_| {
        SpoolError::NotASpool("littlefs filesystem without a mailbag header".into())
    })?;
    let bytes = &buf[..n];
    let found = match record::version(record::Kind::Header, bytes) {
        Ok(1) => record::decode(record::Kind::Header, bytes).map(Found::V1),
        Ok(_) => record::decode(record::Kind::Header, bytes).map(Found::V2),
        Err(e) => Err(e),
    };
    let (magic, found) = match found {
        Ok(Found::V1(h)) => (h.magic, Found::V1(h)),
        Ok(Found::V2(h)) => (h.magic, Found::V2(h)),
        Err(RecordError::NewerVersion(v)) => return Err(SpoolError::NewerFormat(v)),
        Err(e) => return Err(SpoolError::NotASpool(format!("header unreadable: {e}"))),
    };
    if magic != HEADER_MAGIC {
        return Err(SpoolError::NotASpool("bad header magic".into()));
    }
    Ok(found)
}

pub(super) fn write_header<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    h: &Header,
) -> Result<(), LfsError> {
    let mut buf = [0u8; 256];
    let bytes = record::encode(record::Kind::Header, h, &mut buf).map_err(|_| LfsError::INVALID)?;
    fs.write(&path(HEADER_TMP), bytes)?;
    fs.rename(&path(HEADER_TMP), &path(HEADER_PATH))
}

fn write_header_v1<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    h: &HeaderV1,
) -> Result<(), LfsError> {
    let mut buf = [0u8; 256];
    let bytes = record::encode_version(record::Kind::Header, 1, h, &mut buf)
        .map_err(|_| LfsError::INVALID)?;
    fs.write(&path(HEADER_TMP), bytes)?;
    fs.rename(&path(HEADER_TMP), &path(HEADER_PATH))
}
