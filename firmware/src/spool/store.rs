//! [`Spool`]: the queue of accepted messages on a littlefs2 filesystem.
//!
//! # Layout on flash
//!
//! ```text
//! /spool.hdr        header record (magic, mount count, block count)
//! /q/<id>.b         message body, exactly as received (streamed in chunks)
//! /q/<id>.m         message record: envelope, size, body CRC, delivery state
//! /q/<id>.t         a record being replaced (renamed over .m when complete)
//! /bad/<id>.{m,b}   damaged messages moved aside at mount, never deleted
//! ```
//!
//! # Durability
//!
//! A message is committed by writing its record *after* its body is complete, then syncing
//! the device ([`Flash`] keeps littlefs's writes ordered). The record is the commit point: on
//! mount, a body without a record, or an empty record, is an interrupted enqueue and is
//! removed; a record whose checksum fails, or whose body is missing or short, is damage and
//! is moved to `/bad` rather than lost. Updates go to `.t` and are renamed over `.m`
//! (littlefs renames are atomic). Removal deletes the record first.
//!
//! # Capacity
//!
//! [`Limits`] are checked before and while a body streams in; exceeding one returns a
//! [`SpoolError`] whose [`SpoolError::is_capacity`] is true (the SMTP layer answers 452).
//! The index is allocated once for `max-messages` entries.

use std::collections::BTreeMap;

use littlefs2::fs::{Allocation, File, Filesystem, OpenOptions};
use littlefs2::io::{Error as LfsError, SeekFrom, Write};
use littlefs2::path::{Path, PathBuf};
use mailbag_hal::BlockDevice;

use super::crc::crc32;
use super::error::SpoolError;
use super::flash::{Barrier, FORMAT_BLOCKS, Flash, FlashHandle, FlashStats, SPOOL_BLOCK};
use super::message::{
    DOMAINS_PER_MESSAGE, Envelope, HEADER_MAGIC, Header, MessageId, MessageMeta, RcptStatus,
    Recipient, domain_of,
};
use super::record::{self, Kind, RECORD_MAX, RecordError};

/// Capacities enforced by the spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most messages held at once (committed plus being received).
    pub max_messages: u32,
    /// Most body bytes held at once.
    pub max_bytes: u64,
    /// Most body bytes for one recipient domain (0: no limit).
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
    /// Normal operation: recovery runs and new mail is accepted.
    ReadWrite,
    /// Inspection (e.g. an image copied off a router): nothing is written.
    ReadOnly,
}

/// What the spool keeps in RAM per message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Queue id.
    pub id: MessageId,
    /// Wall-clock seconds when accepted.
    pub received_unix: u64,
    /// Body bytes.
    pub size: u64,
    /// Wall-clock seconds of the next attempt.
    pub next_attempt_unix: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// FNV-1a hashes of the recipient domains (for quotas and per-domain flushes).
    pub domains: heapless::Vec<u64, DOMAINS_PER_MESSAGE>,
}

/// A message being received: hold it until [`Spool::commit`] or [`Spool::abort`].
#[must_use = "a pending message must be committed or aborted"]
#[derive(Debug)]
pub struct Pending {
    id: MessageId,
    size: u64,
    crc: u32,
    created: bool,
    domains: heapless::Vec<u64, DOMAINS_PER_MESSAGE>,
}

impl Pending {
    /// The id the message will have.
    pub fn id(&self) -> MessageId {
        self.id
    }
    /// Body bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }
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
    /// Damaged messages moved to `/bad` at mount.
    pub damaged: u32,
    /// Driver counters since mount.
    pub flash: FlashStats,
}

/// Largest index allocated up front (entries past it, possible only if the limit was lowered
/// while more mail was held, grow the vector once).
const INDEX_PREALLOC_MAX: u32 = 1 << 16;

const HEADER_PATH: &str = "/spool.hdr";
const HEADER_TMP: &str = "/spool.hdr.t";
const QUEUE_DIR: &str = "/q";
const BAD_DIR: &str = "/bad";

/// The message queue on a mounted littlefs2 filesystem.
pub struct Spool<'a, D: BlockDevice> {
    fs: Filesystem<'a, Flash<D>>,
    flash: FlashHandle<D>,
    access: Access,
    limits: Limits,
    header: Header,
    seq: u32,
    index: Vec<IndexEntry>,
    bytes: u64,
    in_flight: u32,
    reserved: u64,
    damaged: u32,
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
        };
        write_header(&fs, &header).map_err(|e| lfs_error(&handle, e))?;
        fs.create_dir(&path(QUEUE_DIR))
            .map_err(|e| lfs_error(&handle, e))?;
    }
    handle.sync().map_err(|e| SpoolError::Io(e.to_string()))?;
    drop(handle);
    flash
        .into_device()
        .ok_or_else(|| SpoolError::Io("device still borrowed".into()))
}

impl<'a, D: BlockDevice> Spool<'a, D> {
    /// Mounts the spool on `flash`, recovering from any interrupted operation (read-write)
    /// or only reading (read-only). Refuses, without writing anything, an image that is
    /// not a mailbag spool or was written by a newer format.
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
        let mut buf = [0u8; 256];
        let n = read_file(&fs, &path(HEADER_PATH), 0, &mut buf).map_err(|_| {
            SpoolError::NotASpool("littlefs filesystem without a mailbag header".into())
        })?;
        let mut header: Header = match record::decode(Kind::Header, &buf[..n]) {
            Ok(h) => h,
            Err(RecordError::NewerVersion(v)) => return Err(SpoolError::NewerFormat(v)),
            Err(e) => return Err(SpoolError::NotASpool(format!("header unreadable: {e}"))),
        };
        if header.magic != HEADER_MAGIC {
            return Err(SpoolError::NotASpool("bad header magic".into()));
        }
        if (device_blocks as u64) < u64::from(header.block_count) {
            return Err(SpoolError::NotASpool(format!(
                "device has {} blocks but the spool spans {} (a truncated copy?)",
                device_blocks, header.block_count
            )));
        }

        // Refuse before changing anything if any record is from the future.
        let preview = scan_queue(&fs).map_err(|e| lfs_error(&handle, e))?;
        if let Some(v) = preview.newer {
            return Err(SpoolError::NewerFormat(v));
        }
        if access == Access::ReadWrite {
            // The first write after mount makes littlefs finish any rename or relocation a
            // power cut interrupted (its "forceconsistency"); until then a directory listing
            // can miss an entry. So write the header *before* scanning the queue.
            if device_blocks as u32 > header.block_count {
                fs.grow(device_blocks).map_err(|e| lfs_error(&handle, e))?;
                header.block_count = device_blocks as u32;
            }
            header.mounts = header.mounts.wrapping_add(1);
            write_header(&fs, &header).map_err(|e| lfs_error(&handle, e))?;
        }
        let scan = match access {
            Access::ReadWrite => scan_queue(&fs).map_err(|e| lfs_error(&handle, e))?,
            Access::ReadOnly => preview,
        };

        let mut spool = Spool {
            fs,
            flash: handle,
            access,
            limits,
            header,
            seq: 0,
            index: Vec::with_capacity(limits.max_messages.min(INDEX_PREALLOC_MAX) as usize),
            bytes: 0,
            in_flight: 0,
            reserved: 0,
            damaged: scan.damaged.len() as u32,
        };
        for meta in &scan.good {
            spool.bytes += meta.size;
            spool.index.push(index_entry(meta));
        }

        if access == Access::ReadWrite {
            for name in &scan.remove {
                remove_if_exists(&spool.fs, &path(name)).map_err(|e| spool.io(e))?;
            }
            if !scan.damaged.is_empty() {
                if !spool.fs.exists(&path(BAD_DIR)) {
                    spool
                        .fs
                        .create_dir(&path(BAD_DIR))
                        .map_err(|e| spool.io(e))?;
                }
                for id in &scan.damaged {
                    for ext in ["m", "b"] {
                        let from = path(&queue_file(*id, ext));
                        if spool.fs.exists(&from) {
                            let to = path(&format!("{BAD_DIR}/{id}.{ext}"));
                            remove_if_exists(&spool.fs, &to).map_err(|e| spool.io(e))?;
                            spool.fs.rename(&from, &to).map_err(|e| spool.io(e))?;
                        }
                    }
                }
            }
            spool.sync()?;
        }
        Ok(spool)
    }

    /// Messages in the queue, oldest id first.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.index
    }

    /// How full the spool is.
    pub fn usage(&self) -> Usage {
        Usage {
            messages: self.index.len() as u32,
            bytes: self.bytes,
            in_flight: self.in_flight,
            reserved: self.reserved,
            device_bytes: u64::from(self.header.block_count) * SPOOL_BLOCK as u64,
            limits: self.limits,
            damaged: self.damaged,
            flash: self.flash.stats(),
        }
    }

    /// The header as mounted.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Starts receiving a message for `envelope`. `declared_size` is the SIZE= parameter
    /// (0 if none); it is checked against the limits up front.
    pub fn begin(
        &mut self,
        envelope: &Envelope,
        declared_size: u64,
    ) -> Result<Pending, SpoolError> {
        self.writable()?;
        if self.index.len() as u64 + u64::from(self.in_flight)
            >= u64::from(self.limits.max_messages)
        {
            return Err(SpoolError::TooManyMessages);
        }
        if self.bytes + self.reserved + declared_size > self.limits.max_bytes {
            return Err(SpoolError::Full);
        }
        let mut domains = heapless::Vec::new();
        for r in &envelope.recipients {
            let h = fnv1a(&domain_of(r));
            if !domains.contains(&h) {
                // Past DOMAINS_PER_MESSAGE distinct domains, the rest are not tracked.
                let _ = domains.push(h);
            }
        }
        self.check_domains(envelope, &domains, declared_size)?;
        let id = MessageId((u64::from(self.header.mounts) << 32) | u64::from(self.seq));
        self.seq = self.seq.checked_add(1).ok_or(SpoolError::Full)?;
        self.in_flight += 1;
        Ok(Pending {
            id,
            size: 0,
            crc: 0,
            created: false,
            domains,
        })
    }

    /// Appends body bytes. For efficiency pass chunks of several KiB; the data is in the
    /// filesystem (not yet durable) when this returns. On error, call [`Spool::abort`].
    pub fn append(&mut self, p: &mut Pending, data: &[u8]) -> Result<(), SpoolError> {
        self.writable()?;
        let len = data.len() as u64;
        if self.bytes + self.reserved + len > self.limits.max_bytes {
            return Err(SpoolError::Full);
        }
        if self.limits.max_bytes_per_domain > 0 {
            for d in &p.domains {
                if self.domain_bytes(*d) + p.size + len > self.limits.max_bytes_per_domain {
                    return Err(SpoolError::DomainQuota(format!("#{d:016x}")));
                }
            }
        }
        let body = path(&queue_file(p.id, "b"));
        // Streaming (relaxed write ordering) covers only the data phase inside the open
        // file; the open and the close, which commit metadata, keep the strict barrier.
        let flash = &self.flash;
        let write = |f: &File<'_, '_, Flash<D>>| {
            flash.set_streaming(true);
            let r = f.write_all(data);
            flash.set_streaming(false);
            r
        };
        let mut options = OpenOptions::new();
        options.write(true);
        if p.created {
            options.append(true);
        } else {
            options.create(true).truncate(true);
        }
        let res = options.open_and_then(&self.fs, &body, write);
        p.created = true;
        res.map_err(|e| self.io(e))?;
        p.size += len;
        p.crc = crc32(p.crc, data);
        self.reserved += len;
        Ok(())
    }

    /// Makes the message durable and returns its id. Only after this returns may the
    /// sender be told 250.
    pub fn commit(
        &mut self,
        p: Pending,
        envelope: &Envelope,
        now_unix: u64,
    ) -> Result<MessageId, SpoolError> {
        let id = self.commit_unsynced(p, envelope, now_unix)?;
        self.sync()?;
        Ok(id)
    }

    /// Commits like [`Spool::commit`] but leaves the final device sync to the caller, so
    /// several commits can share one ([`Spool::sync`]); the messages are durable only after
    /// that sync returns, and no sender may be told 250 before.
    pub fn commit_unsynced(
        &mut self,
        mut p: Pending,
        envelope: &Envelope,
        now_unix: u64,
    ) -> Result<MessageId, SpoolError> {
        let result = self.commit_inner(&mut p, envelope, now_unix);
        match result {
            Ok(meta) => {
                self.in_flight -= 1;
                self.reserved -= p.size;
                self.bytes += p.size;
                // Ids are handed out at `begin`, but concurrent messages commit in any
                // order: keep the index sorted by id, as `position` binary-searches it.
                let at = self.index.partition_point(|e| e.id < meta.id);
                self.index.insert(
                    at,
                    IndexEntry {
                        domains: p.domains,
                        ..index_entry(&meta)
                    },
                );
                Ok(meta.id)
            }
            Err(e) => {
                let _ = remove_if_exists(&self.fs, &path(&queue_file(p.id, "m")));
                self.abort(p);
                Err(e)
            }
        }
    }

    fn commit_inner(
        &mut self,
        p: &mut Pending,
        envelope: &Envelope,
        now_unix: u64,
    ) -> Result<MessageMeta, SpoolError> {
        self.writable()?;
        if !p.created {
            self.fs
                .write(&path(&queue_file(p.id, "b")), &[])
                .map_err(|e| self.io(e))?;
            p.created = true;
        }
        let mut recipients = heapless::Vec::new();
        for r in &envelope.recipients {
            // Same capacity as the envelope's, so this cannot fail.
            let _ = recipients.push(Recipient {
                address: r.clone(),
                status: RcptStatus::Pending,
            });
        }
        let meta = MessageMeta {
            id: p.id,
            received_unix: now_unix,
            size: p.size,
            body_crc: p.crc,
            sender: envelope.sender.clone(),
            recipients,
            attempts: 0,
            next_attempt_unix: 0,
            last_error: heapless::String::new(),
            warned: false,
            verdict: envelope.verdict.clone(),
        };
        self.write_record(&queue_file(p.id, "m"), &meta)?;
        Ok(meta)
    }

    /// Drops a message being received; nothing of it stays on flash.
    pub fn abort(&mut self, p: Pending) {
        if p.created {
            // Best effort: a body left behind without a record is removed at next mount.
            let _ = remove_if_exists(&self.fs, &path(&queue_file(p.id, "b")));
        }
        self.in_flight -= 1;
        self.reserved -= p.size;
    }

    /// Reads a message's record.
    pub fn meta(&self, id: MessageId) -> Result<MessageMeta, SpoolError> {
        self.position(id)?;
        let mut buf = vec![0u8; RECORD_MAX];
        let n = read_file(&self.fs, &path(&queue_file(id, "m")), 0, &mut buf)
            .map_err(|e| self.io(e))?;
        let meta: MessageMeta = record::decode(Kind::Message, &buf[..n])?;
        Ok(meta)
    }

    /// Reads body bytes of `id` at `offset` into `buf`; returns how many (0 at the end).
    pub fn read_body(
        &self,
        id: MessageId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, SpoolError> {
        self.position(id)?;
        read_file(&self.fs, &path(&queue_file(id, "b")), offset, buf).map_err(|e| self.io(e))
    }

    /// Reads the whole body in chunks, feeding each to `sink`, and checks its CRC.
    pub fn stream_body(
        &self,
        id: MessageId,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, SpoolError> {
        let meta = self.meta(id)?;
        let mut buf = [0u8; 4096];
        let (mut off, mut crc) = (0u64, 0u32);
        loop {
            let n = self.read_body(id, off, &mut buf)?;
            if n == 0 {
                break;
            }
            crc = crc32(crc, &buf[..n]);
            sink(&buf[..n]);
            off += n as u64;
        }
        if off != meta.size || crc != meta.body_crc {
            return Err(SpoolError::Corrupt(format!(
                "body of {id} does not match its record"
            )));
        }
        Ok(off)
    }

    /// Replaces a message's record (delivery attempt, per-recipient status, next attempt),
    /// durably. Messages whose recipients are all done should be removed instead.
    pub fn update(&mut self, meta: &MessageMeta) -> Result<(), SpoolError> {
        self.writable()?;
        let at = self.position(meta.id)?;
        let tmp = queue_file(meta.id, "t");
        self.write_record(&tmp, meta)?;
        self.fs
            .rename(&path(&tmp), &path(&queue_file(meta.id, "m")))
            .map_err(|e| self.io(e))?;
        self.sync()?;
        let e = &mut self.index[at];
        e.attempts = meta.attempts;
        e.next_attempt_unix = meta.next_attempt_unix;
        Ok(())
    }

    /// Makes the messages `which` accepts (by their index entry) due at once, in RAM only:
    /// a flush (ETRN, a next hop coming back) must not rewrite hundreds of records on
    /// flash. The records keep their schedule; after a restart the daemon's first probe
    /// flushes again. Returns how many messages were made due.
    pub fn expedite(&mut self, which: impl Fn(&IndexEntry) -> bool) -> usize {
        let mut n = 0;
        for e in self.index.iter_mut().filter(|e| which(e)) {
            e.next_attempt_unix = 0;
            n += 1;
        }
        n
    }

    /// Removes a message durably (delivered, bounced or deleted by the admin).
    pub fn remove(&mut self, id: MessageId) -> Result<(), SpoolError> {
        self.writable()?;
        let at = self.position(id)?;
        self.fs
            .remove(&path(&queue_file(id, "m")))
            .map_err(|e| self.io(e))?;
        remove_if_exists(&self.fs, &path(&queue_file(id, "b"))).map_err(|e| self.io(e))?;
        self.sync()?;
        let e = self.index.remove(at);
        self.bytes -= e.size;
        Ok(())
    }

    /// Makes every earlier change durable.
    pub fn sync(&self) -> Result<(), SpoolError> {
        self.flash.sync().map_err(|e| SpoolError::Io(e.to_string()))
    }

    fn writable(&self) -> Result<(), SpoolError> {
        match self.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(SpoolError::ReadOnly),
        }
    }

    fn position(&self, id: MessageId) -> Result<usize, SpoolError> {
        self.index
            .binary_search_by_key(&id, |e| e.id)
            .map_err(|_| SpoolError::NotFound)
    }

    fn domain_bytes(&self, domain: u64) -> u64 {
        self.index
            .iter()
            .filter(|e| e.domains.contains(&domain))
            .map(|e| e.size)
            .sum()
    }

    fn check_domains(
        &self,
        env: &Envelope,
        domains: &[u64],
        declared: u64,
    ) -> Result<(), SpoolError> {
        if self.limits.max_bytes_per_domain == 0 {
            return Ok(());
        }
        for (i, d) in domains.iter().enumerate() {
            if self.domain_bytes(*d) + declared > self.limits.max_bytes_per_domain {
                let name = env
                    .recipients
                    .iter()
                    .map(|r| domain_of(r))
                    .find(|n| fnv1a(n) == *d);
                return Err(SpoolError::DomainQuota(
                    name.unwrap_or_else(|| format!("#{i}")),
                ));
            }
        }
        Ok(())
    }

    fn write_record(&self, name: &str, meta: &MessageMeta) -> Result<(), SpoolError> {
        let mut buf = vec![0u8; RECORD_MAX];
        let bytes = record::encode(Kind::Message, meta, &mut buf)?;
        self.fs.write(&path(name), bytes).map_err(|e| self.io(e))
    }

    fn io(&self, e: LfsError) -> SpoolError {
        lfs_error(&self.flash, e)
    }
}

fn lfs_error<D: BlockDevice>(flash: &FlashHandle<D>, e: LfsError) -> SpoolError {
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

fn index_entry(meta: &MessageMeta) -> IndexEntry {
    let mut domains = heapless::Vec::new();
    for r in &meta.recipients {
        let h = fnv1a(&domain_of(&r.address));
        if !domains.contains(&h) {
            let _ = domains.push(h);
        }
    }
    IndexEntry {
        id: meta.id,
        received_unix: meta.received_unix,
        size: meta.size,
        next_attempt_unix: meta.next_attempt_unix,
        attempts: meta.attempts,
        domains,
    }
}

/// FNV-1a, 64-bit: domain keys for quota accounting (collisions only merge two quotas).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn queue_file(id: MessageId, ext: &str) -> String {
    format!("{QUEUE_DIR}/{id}.{ext}")
}

/// A littlefs path from a name built by this module (always short ASCII).
fn path(s: &str) -> PathBuf {
    // Names come from constants and hex ids: ASCII, no NUL, well under the path limit.
    PathBuf::try_from(s).unwrap_or_default()
}

fn write_header<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    h: &Header,
) -> Result<(), LfsError> {
    let mut buf = [0u8; 256];
    let bytes = record::encode(Kind::Header, h, &mut buf).map_err(|_| LfsError::INVALID)?;
    fs.write(&path(HEADER_TMP), bytes)?;
    fs.rename(&path(HEADER_TMP), &path(HEADER_PATH))
}

fn remove_if_exists<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    p: &Path,
) -> Result<(), LfsError> {
    match fs.remove(p) {
        Err(e) if e == LfsError::NO_SUCH_ENTRY => Ok(()),
        other => other,
    }
}

/// Reads up to `buf.len()` bytes at `offset`; returns how many.
fn read_file<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    p: &Path,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, LfsError> {
    File::open_and_then(fs, p, |f| {
        let off = i32::try_from(offset).map_err(|_| LfsError::INVALID)?;
        f.seek(SeekFrom::Start(off as u32))?;
        let mut n = 0;
        while n < buf.len() {
            let got = f.read(&mut buf[n..])?;
            if got == 0 {
                break;
            }
            n += got;
        }
        Ok(n)
    })
}

/// What the mount-time scan of `/q` found.
#[derive(Default)]
struct Scan {
    good: Vec<MessageMeta>,
    damaged: Vec<MessageId>,
    remove: Vec<String>,
    newer: Option<u8>,
}

#[derive(Default)]
struct Files {
    meta: Option<usize>,
    body: Option<usize>,
    tmp: bool,
}

fn scan_queue<S: littlefs2::driver::Storage>(fs: &Filesystem<'_, S>) -> Result<Scan, LfsError> {
    let mut files: BTreeMap<MessageId, Files> = BTreeMap::new();
    fs.read_dir_and_then(&path(QUEUE_DIR), |dir| {
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().as_str();
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Ok(id) = stem.parse::<MessageId>() else {
                continue;
            };
            let f = files.entry(id).or_default();
            let len = entry.metadata().len();
            match ext {
                "m" => f.meta = Some(len),
                "b" => f.body = Some(len),
                "t" => f.tmp = true,
                _ => {}
            }
        }
        Ok(())
    })?;

    let mut scan = Scan::default();
    let mut buf = vec![0u8; RECORD_MAX];
    for (id, f) in files {
        if f.tmp {
            scan.remove.push(queue_file(id, "t"));
        }
        match (f.meta, f.body) {
            // No record, or a record created but never written: an interrupted enqueue.
            (None, Some(_)) | (Some(0), _) => {
                scan.remove.push(queue_file(id, "m"));
                scan.remove.push(queue_file(id, "b"));
            }
            (Some(_), body) => {
                let n = read_file(fs, &path(&queue_file(id, "m")), 0, &mut buf)?;
                match record::decode::<MessageMeta>(Kind::Message, &buf[..n]) {
                    Ok(meta) if meta.id == id && body == Some(meta.size as usize) => {
                        scan.good.push(meta)
                    }
                    Ok(_) => scan.damaged.push(id),
                    Err(RecordError::NewerVersion(v)) => scan.newer = Some(v),
                    Err(_) => scan.damaged.push(id),
                }
            }
            (None, None) => {}
        }
    }
    Ok(scan)
}

#[cfg(test)]
impl<D: BlockDevice> Spool<'_, D> {
    /// Test hook: replaces a file's bytes through the filesystem (to simulate damage that
    /// littlefs's own checksums cannot see).
    pub(crate) fn overwrite_for_test(&self, name: &str, bytes: &[u8]) {
        self.fs.write(&path(name), bytes).unwrap();
        self.sync().unwrap();
    }
}
