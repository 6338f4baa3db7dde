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

use littlefs2::fs::{Allocation, File, Filesystem, OpenOptions};
use littlefs2::io::{Error as LfsError, SeekFrom};
use littlefs2::path::PathBuf;
use mailbag_hal::BlockDevice;

use super::crc::crc32;
use super::error::SpoolError;
use super::flash::{Barrier, FORMAT_BLOCKS, Flash, FlashHandle, FlashStats, SPOOL_BLOCK};
use super::frame::{self, Body, CHUNK, GROUP, GroupRec, HEADER_LEN, Kind, Loc, MessageRec};
use super::index::{Index, Slot};
use super::message::{HEADER_MAGIC, Header, HeaderV1, MessageId, MessageMeta, domain_of};
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

/// Reads up to `buf.len()` bytes at `offset` of a file (one open, one seek).
pub(super) fn read_file<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    p: &littlefs2::path::Path,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, LfsError> {
    File::open_and_then(fs, p, |f| {
        seek_once(f, offset)?;
        read_seq(f, buf)
    })
}

/// Moves a freshly opened file to `offset`.
///
/// Only once per open handle, before any read: littlefs 2.9 (bundled by littlefs2-sys
/// 0.4) may serve a seek made after a read that ended on a block boundary from the
/// previous block's cache (fixed upstream in littlefs 2.10, "Fix incorrect cache reuse when
/// seeking from end-of-block"). A fresh handle's cache is empty, so its first seek is
/// safe; every read path here opens, seeks once, then reads forward only.
pub(super) fn seek_once<S: littlefs2::driver::Storage>(
    f: &File<'_, '_, S>,
    offset: u64,
) -> Result<(), LfsError> {
    if offset > 0 {
        let off = u32::try_from(offset).map_err(|_| LfsError::INVALID)?;
        f.seek(SeekFrom::Start(off))?;
    }
    Ok(())
}

/// Reads forward until `buf` is full or the file ends; returns how many bytes.
pub(super) fn read_seq<S: littlefs2::driver::Storage>(
    f: &File<'_, '_, S>,
    buf: &mut [u8],
) -> Result<usize, LfsError> {
    let mut n = 0;
    while n < buf.len() {
        let got = f.read(&mut buf[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// Reads forward past `n` bytes.
fn skip_seq<S: littlefs2::driver::Storage>(
    f: &File<'_, '_, S>,
    mut n: usize,
) -> Result<bool, LfsError> {
    let mut scratch = [0u8; 512];
    while n > 0 {
        let k = n.min(scratch.len());
        if read_seq(f, &mut scratch[..k])? < k {
            return Ok(false);
        }
        n -= k;
    }
    Ok(true)
}

/// Reads the header and record of the frame at the file's position and checks them; the
/// position is then at the frame's data.
pub(super) fn read_frame<S: littlefs2::driver::Storage>(
    f: &File<'_, '_, S>,
) -> Result<Result<(frame::Header, Vec<u8>), frame::FrameError>, LfsError> {
    let mut raw = [0u8; HEADER_LEN];
    if read_seq(f, &mut raw)? < HEADER_LEN {
        return Ok(Err(frame::FrameError::BadHeader));
    }
    let h = match frame::parse_header(&raw) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    let mut rec = vec![0u8; h.rlen as usize];
    if read_seq(f, &mut rec)? < rec.len() {
        return Ok(Err(frame::FrameError::BadHeader));
    }
    Ok(frame::check(&h, &raw, &rec).map(|()| (h, rec)))
}

/// Opens segment `seg` read-only at `off` and runs `f` on it (see [`seek_once`]).
pub(super) fn with_seg<S: littlefs2::driver::Storage, R>(
    fs: &Filesystem<'_, S>,
    seg: u32,
    off: u32,
    f: impl FnOnce(&File<'_, '_, S>) -> Result<R, LfsError>,
) -> Result<R, LfsError> {
    OpenOptions::new()
        .read(true)
        .open_and_then(fs, &seg_path(seg), |file| {
            seek_once(file, u64::from(off))?;
            f(file)
        })
}

fn damaged(id: MessageId, loc: Loc, e: impl std::fmt::Display) -> SpoolError {
    SpoolError::Corrupt(format!(
        "message {id}: frame at segment {:08x} offset {}: {e}",
        loc.seg, loc.off
    ))
}

/// Reads the message frame at `loc`: its header and record.
pub(super) fn read_message<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
    loc: Loc,
) -> Result<(frame::Header, MessageRec), SpoolError> {
    let got = with_seg(fs, loc.seg, loc.off, read_frame).map_err(|e| lfs_error(&st.flash, e))?;
    let (h, rec) = got.map_err(|e| damaged(id, loc, e))?;
    if h.kind != Kind::Message {
        return Err(damaged(id, loc, "not a message frame"));
    }
    let m: MessageRec = frame::decode(&rec).map_err(|e| damaged(id, loc, e))?;
    if !m.meta.within_bounds() {
        return Err(damaged(id, loc, "record out of bounds"));
    }
    if m.meta.id != id {
        return Err(damaged(id, loc, "frame of another message"));
    }
    Ok((h, m))
}

/// A held message's record with its latest state, and where its message frame is.
pub(super) fn read_meta<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
) -> Result<(MessageMeta, (frame::Header, MessageRec, Loc)), SpoolError> {
    let slot = st.held(id)?;
    let e = *st.index.get(slot);
    let loc = Loc::unpack(e.m_loc).ok_or(SpoolError::NotFound)?;
    let (h, rec) = read_message(fs, st, id, loc)?;
    let mut meta = rec.meta.clone();
    if let Some(sloc) = Loc::unpack(e.s_loc) {
        let got =
            with_seg(fs, sloc.seg, sloc.off, read_frame).map_err(|e| lfs_error(&st.flash, e))?;
        let (sh, srec) = got.map_err(|e| damaged(id, sloc, e))?;
        let state: frame::StateRec = match sh.kind {
            Kind::State => frame::decode(&srec).map_err(|e| damaged(id, sloc, e))?,
            _ => return Err(damaged(id, sloc, "not a state frame")),
        };
        if state.id == id && state.within_bounds() {
            state.apply(&mut meta);
        }
    }
    // A state written since the last sync is not readable on flash yet: the latest one
    // waits in the publish list.
    for p in st.publish.iter().rev() {
        if let Publish::State {
            slot: s,
            id: i,
            state,
            ..
        } = p
        {
            if *s == slot && *i == id {
                state.apply(&mut meta);
                break;
            }
        }
    }
    // The RAM schedule wins: a flush makes mail due without rewriting flash.
    meta.next_attempt_unix = meta.next_attempt_unix.min(u64::from(e.next_attempt));
    Ok((meta, (h, rec, loc)))
}

/// The location of the chunk frame holding body chunk `k` of a message.
pub(super) fn chunk_loc<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
    body: &Body,
    k: usize,
) -> Result<Option<Loc>, SpoolError> {
    match body {
        Body::Inline => Ok(None),
        Body::Chunks(locs) => Ok(locs.get(k).copied()),
        Body::Groups { groups, .. } => {
            let Some(&g) = groups.get(k / GROUP) else {
                return Ok(None);
            };
            let got =
                with_seg(fs, g.seg, g.off, read_frame).map_err(|e| lfs_error(&st.flash, e))?;
            let (h, rec) = got.map_err(|e| damaged(id, g, e))?;
            if h.kind != Kind::Group {
                return Err(damaged(id, g, "not a group frame"));
            }
            let group: GroupRec = frame::decode(&rec).map_err(|e| damaged(id, g, e))?;
            Ok(group.chunks.get(k % GROUP).copied())
        }
    }
}

/// Reads body bytes at `offset` (at most to the end of the chunk holding it).
pub(super) fn read_body<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, SpoolError> {
    let slot = st.held(id)?;
    let loc = Loc::unpack(st.index.get(slot).m_loc).ok_or(SpoolError::NotFound)?;
    let (h, rec) = read_message(fs, st, id, loc)?;
    read_body_of(fs, st, id, &rec, (h, loc), offset, buf)
}

/// [`read_body`] for a message record already read.
pub(super) fn read_body_of<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
    rec: &MessageRec,
    (h, loc): (frame::Header, Loc),
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, SpoolError> {
    let size = rec.meta.size;
    if offset >= size || buf.is_empty() {
        return Ok(0);
    }
    let io = |e| lfs_error(&st.flash, e);
    if rec.body == Body::Inline {
        let n = buf.len().min((size - offset) as usize);
        let at = loc.off + HEADER_LEN as u32 + h.rlen;
        let got = with_seg(fs, loc.seg, at, |f| {
            // Inline bodies are at most one chunk: skipping forward is cheap.
            if !skip_seq(f, offset as usize)? {
                return Ok(0);
            }
            read_seq(f, &mut buf[..n])
        })
        .map_err(io)?;
        if got < n {
            return Err(damaged(id, loc, "body shorter than its record says"));
        }
        if offset == 0 && n as u64 == size && crc32(0, &buf[..n]) != rec.meta.body_crc {
            return Err(damaged(id, loc, "body checksum mismatch"));
        }
        return Ok(n);
    }
    let k = (offset / CHUNK as u64) as usize;
    let within = (offset % CHUNK as u64) as usize;
    let cloc = chunk_loc(fs, st, id, &rec.body, k)?
        .ok_or_else(|| damaged(id, loc, "chunk list shorter than the body"))?;
    let got = with_seg(fs, cloc.seg, cloc.off, |f| {
        let frame = read_frame(f)?;
        let Ok((ch, crec)) = frame else {
            return Ok(Err("chunk frame unreadable"));
        };
        if ch.kind != Kind::Chunk {
            return Ok(Err("not a chunk frame"));
        }
        let Ok(chunk) = frame::decode::<frame::ChunkRec>(&crec) else {
            return Ok(Err("chunk record unreadable"));
        };
        if chunk.id != id || chunk.seq as usize != k {
            return Ok(Err("chunk of another message"));
        }
        let dlen = ch.data_len() as usize;
        if within >= dlen {
            return Ok(Err("chunk shorter than expected"));
        }
        if within == 0 && buf.len() >= dlen {
            // A whole chunk: check it.
            let n = read_seq(f, &mut buf[..dlen])?;
            if n < dlen || crc32(0, &buf[..dlen]) != chunk.crc {
                return Ok(Err("chunk checksum mismatch"));
            }
            return Ok(Ok(dlen));
        }
        if !skip_seq(f, within)? {
            return Ok(Err("chunk shorter than expected"));
        }
        let n = buf.len().min(dlen - within);
        let got = read_seq(f, &mut buf[..n])?;
        Ok(if got < n {
            Err("chunk shorter than expected")
        } else {
            Ok(n)
        })
    })
    .map_err(io)?;
    got.map_err(|why| damaged(id, cloc, why))
}

pub(super) fn stream_body<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
    mut sink: impl FnMut(&[u8]),
) -> Result<u64, SpoolError> {
    let slot = st.held(id)?;
    let loc = Loc::unpack(st.index.get(slot).m_loc).ok_or(SpoolError::NotFound)?;
    let (h, rec) = read_message(fs, st, id, loc)?;
    let mut buf = vec![0u8; CHUNK];
    let (mut off, mut crc) = (0u64, 0u32);
    loop {
        let n = read_body_of(fs, st, id, &rec, (h, loc), off, &mut buf)?;
        if n == 0 {
            break;
        }
        crc = crc32(crc, &buf[..n]);
        sink(&buf[..n]);
        off += n as u64;
    }
    if off != rec.meta.size || crc != rec.meta.body_crc {
        return Err(SpoolError::Corrupt(format!(
            "body of {id} does not match its record"
        )));
    }
    Ok(off)
}

/// Reading the spool, from a mounted [`Spool`] (tools, inspection) or a
/// [`super::Writer`] (the spool thread's jobs): one implementation of every view.
pub trait SpoolRead {
    /// A held message's record with its latest delivery state.
    fn meta(&self, id: MessageId) -> Result<MessageMeta, SpoolError>;
    /// Body bytes at `offset` (at most to the end of a chunk; 0 at the end).
    fn read_body(&self, id: MessageId, offset: u64, buf: &mut [u8]) -> Result<usize, SpoolError>;
    /// Held messages, oldest first (O(n log n): listings only).
    fn list(&self) -> Vec<IndexEntry>;
    /// How full the spool is.
    fn usage(&self) -> Usage;
}

impl<D: BlockDevice> SpoolRead for Spool<'_, D> {
    fn meta(&self, id: MessageId) -> Result<MessageMeta, SpoolError> {
        Spool::meta(self, id)
    }
    fn read_body(&self, id: MessageId, offset: u64, buf: &mut [u8]) -> Result<usize, SpoolError> {
        Spool::read_body(self, id, offset, buf)
    }
    fn list(&self) -> Vec<IndexEntry> {
        Spool::list(self)
    }
    fn usage(&self) -> Usage {
        Spool::usage(self)
    }
}
