//! [`Writer`]: every change to the spool, made on the open head segment, and
//! [`Spool::run`], which keeps that segment open across as many operations as the caller
//! wants (see `docs/spool.md`, "Commit protocol" and "Reclaim").
//!
//! - Frames are appended to the head file; nothing is visible to readers or delivery
//!   until [`Writer::sync`] has made it durable (one littlefs file sync, one device sync)
//!   and *published* it: index changes wait in a list until then.
//! - A sender may hear 250 only after the sync that follows its [`Writer::commit`].
//! - State and done frames ([`Writer::update`], [`Writer::remove`]) join the next sync
//!   like everything else; their callers need not wait for it (delivery is at-least-once:
//!   a crash before that sync repeats an attempt, it never loses a message).
//! - After publishing, [`Writer::sync`] deletes segments that hold nothing live, oldest
//!   first, and when flash runs short copies the live messages of the oldest segment
//!   forward so that it can go too (`reclaim.rs`).

use std::ops::ControlFlow;

use littlefs2::fs::{File, Filesystem, OpenOptions};
use littlefs2::io::Write;
use mailbag_hal::BlockDevice;

use super::crc::crc32;
use super::error::SpoolError;
use super::flash::Flash;
use super::frame::{
    self, Body, CHUNK, ChunkRec, DoneRec, GROUP, GROUPS, GroupRec, Kind, Loc, MessageRec, StateRec,
};
use super::index::{Slot, lane_of};
use super::message::{Envelope, MessageId, MessageMeta, RcptStatus, Recipient};
use super::read;
use super::store::{IndexEntry, Spool, State, Usage, address_key, domain_key, lfs_error, seg_path};

/// A message being received: hold it until [`Writer::commit`] or [`Writer::abort`].
#[must_use = "a pending message must be committed or aborted"]
#[derive(Debug)]
pub struct Pending {
    pub(super) id: MessageId,
    pub(super) slot: Slot,
    pub(super) dom: u32,
    pub(super) size: u64,
    pub(super) crc: u32,
    pub(super) chunks: Option<Box<Chunks>>,
    /// A short chunk was appended: the body is complete.
    pub(super) closed: bool,
}

#[derive(Debug)]
pub(super) struct Chunks {
    pub(super) first: Loc,
    n: u32,
    locs: heapless::Vec<Loc, GROUP>,
    groups: heapless::Vec<Loc, GROUPS>,
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

/// An index change that waits for the sync making its frame durable.
#[derive(Debug)]
pub(super) enum Publish {
    /// A message frame: the message joins the delivery order.
    Commit { slot: Slot, id: MessageId },
    /// A state frame: reads find it on flash (until then, here).
    State {
        slot: Slot,
        id: MessageId,
        loc: u64,
        state: Box<StateRec>,
    },
    /// A message copied forward: reads use the copy, the old segment no longer holds it.
    Moved {
        slot: Slot,
        id: MessageId,
        loc: u64,
        min_seg: u32,
    },
}

/// Changes to the spool, on the open head segment (see [`Spool::run`]).
pub struct Writer<'f, 'b, 'a, D: BlockDevice> {
    pub(super) fs: &'b Filesystem<'a, Flash<D>>,
    head: &'f File<'a, 'b, Flash<D>>,
    pub(super) st: &'f mut State<D>,
}

impl<'a, D: BlockDevice> Spool<'a, D> {
    /// Opens the head segment and calls `step` with a [`Writer`] on it until `step`
    /// breaks; the head stays open across calls (bodies stream into an open file). When the
    /// head reaches the segment size, it is synced and closed and the next one opened
    /// between two calls. Everything is synced before this returns.
    pub fn run<R>(
        &mut self,
        mut step: impl FnMut(&mut Writer<'_, '_, 'a, D>) -> ControlFlow<R>,
    ) -> Result<R, SpoolError> {
        self.st.writable()?;
        loop {
            if self.st.segs.is_empty() {
                self.st.segs.push(0, 0);
            }
            let no = self.st.segs.head().map_or(0, |s| s.no);
            let fs = &self.fs;
            let st = &mut self.st;
            let res = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .append(true)
                .open_and_then(fs, &seg_path(no), |file| {
                    let mut w = Writer {
                        fs,
                        head: file,
                        st: &mut *st,
                    };
                    let out = loop {
                        match step(&mut w) {
                            ControlFlow::Break(r) => break Some(r),
                            ControlFlow::Continue(()) if w.head_full() => break None,
                            ControlFlow::Continue(()) => {}
                        }
                    };
                    Ok(w.sync().map(|()| out))
                });
            let out = res.map_err(|e| lfs_error(&self.st.flash, e))??;
            let full = self
                .st
                .segs
                .head()
                .is_some_and(|h| h.len >= self.st.segs.seg_size);
            if full {
                self.roll()?;
            }
            if let Some(r) = out {
                return Ok(r);
            }
        }
    }

    /// Runs `f` once with a writer and syncs (for single operations: tools and tests).
    pub fn with_writer<R>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_, '_, 'a, D>) -> R,
    ) -> Result<R, SpoolError> {
        let mut f = Some(f);
        self.run(|w| match f.take() {
            Some(f) => ControlFlow::Break(f(w)),
            // `run` calls again only after a `Continue`, which this never returns.
            None => ControlFlow::Continue(()),
        })
    }

    /// Starts receiving a message (checks the limits; nothing is written yet).
    pub fn begin(&mut self, envelope: &Envelope, declared: u64) -> Result<Pending, SpoolError> {
        self.st.begin(envelope, declared)
    }

    /// Appends body bytes and syncs (see [`Writer::append`]).
    pub fn append(&mut self, p: &mut Pending, data: &[u8]) -> Result<(), SpoolError> {
        self.with_writer(|w| w.append(p, data))?
    }

    /// Commits a message and syncs: durable when this returns.
    pub fn commit(
        &mut self,
        p: Pending,
        envelope: &Envelope,
        now_unix: u64,
    ) -> Result<MessageId, SpoolError> {
        self.with_writer(|w| w.commit(p, envelope, &[], now_unix))?
    }

    /// Drops a message being received.
    pub fn abort(&mut self, p: Pending) {
        self.st.abort(p);
    }

    /// Records a delivery attempt and syncs.
    pub fn update(&mut self, meta: &MessageMeta) -> Result<(), SpoolError> {
        self.with_writer(|w| w.update(meta))?
    }

    /// Removes a message and syncs.
    pub fn remove(&mut self, id: MessageId) -> Result<(), SpoolError> {
        self.with_writer(|w| w.remove(id))?
    }

    /// Makes held mail due now, in RAM only (see [`Writer::expedite`]).
    pub fn expedite(&mut self, domain: Option<&str>) -> usize {
        self.st
            .index
            .expedite(domain.map(|d| lane_of(domain_key(d))))
    }

    fn roll(&mut self) -> Result<(), SpoolError> {
        if !self.st.segs.has_room() {
            return Err(SpoolError::Full);
        }
        let next = self.st.segs.head().map_or(0, |s| s.no.wrapping_add(1));
        self.st.segs.push(next, 0);
        Ok(())
    }
}

impl<D: BlockDevice> State<D> {
    pub(super) fn begin(
        &mut self,
        envelope: &Envelope,
        declared: u64,
    ) -> Result<Pending, SpoolError> {
        self.writable()?;
        if self.index.used() >= self.limits.max_messages {
            return Err(SpoolError::TooManyMessages);
        }
        if self.bytes + self.reserved + declared > self.limits.max_bytes {
            return Err(SpoolError::Full);
        }
        if declared > frame::BODY_MAX {
            return Err(SpoolError::Full);
        }
        let first = envelope
            .recipients
            .first()
            .map(|r| r.as_str())
            .unwrap_or("");
        let dom = address_key(first);
        self.check_quota(dom, first, declared)?;
        let id = MessageId((u64::from(self.header.mounts) << 32) | u64::from(self.seq));
        let seq = self.seq.checked_add(1).ok_or(SpoolError::Full)?;
        let slot = self.index.alloc(id).ok_or(SpoolError::TooManyMessages)?;
        self.seq = seq;
        self.in_flight += 1;
        self.index.get_mut(slot).dom = dom;
        Ok(Pending {
            id,
            slot,
            dom,
            size: 0,
            crc: 0,
            chunks: None,
            closed: false,
        })
    }

    fn check_quota(&self, dom: u32, rcpt: &str, more: u64) -> Result<(), SpoolError> {
        let max = self.limits.max_bytes_per_domain;
        if max > 0 && self.quotas.bytes(dom) + more > max {
            return Err(SpoolError::DomainQuota(
                super::message::domain_of(rcpt).to_string(),
            ));
        }
        Ok(())
    }

    pub(super) fn abort(&mut self, p: Pending) {
        if let Some(c) = &p.chunks {
            if let Some(s) = self.segs.get_mut(c.first.seg) {
                s.pending = s.pending.saturating_sub(1);
            }
        }
        self.index.free(p.slot);
        self.in_flight -= 1;
        self.reserved -= p.size;
    }
}

impl<D: BlockDevice> Writer<'_, '_, '_, D> {
    pub(super) fn io(&self, e: littlefs2::io::Error) -> SpoolError {
        lfs_error(&self.st.flash, e)
    }

    fn head_full(&self) -> bool {
        self.st
            .segs
            .head()
            .is_some_and(|h| h.len >= self.st.segs.seg_size)
    }

    /// Appends one frame to the head; returns where it starts.
    pub(super) fn write_frame<T: serde::Serialize>(
        &mut self,
        kind: Kind,
        record: &T,
        data: &[u8],
    ) -> Result<Loc, SpoolError> {
        let Some(head) = self.st.segs.head().copied() else {
            return Err(SpoolError::Io("no head segment".into()));
        };
        let prefix = frame::encode(kind, record, data.len(), &mut self.st.buf)
            .map_err(|e| SpoolError::Io(e.to_string()))?;
        let n = prefix.len() + data.len();
        let flash = &self.st.flash;
        // Frames go to newly erased blocks: no ordering needed among them, only before
        // the metadata commit that makes them part of the file (see `flash`).
        flash.set_streaming(true);
        let mut r = self.head.write_all(prefix);
        if r.is_ok() && !data.is_empty() {
            r = self.head.write_all(data);
        }
        flash.set_streaming(false);
        if let Err(e) = r {
            // Cut a partly written frame off so the next one starts where the log ends.
            let _ = self.head.set_len(head.len as usize);
            return Err(self.io(e));
        }
        self.st.segs.grow_head(n as u32);
        self.st.dirty = true;
        Ok(Loc {
            seg: head.no,
            off: head.len,
        })
    }

    /// Starts receiving a message (checks the limits; nothing is written yet).
    pub fn begin(&mut self, envelope: &Envelope, declared: u64) -> Result<Pending, SpoolError> {
        self.st.begin(envelope, declared)
    }

    /// Appends body bytes as chunk frames. Every chunk but a body's last must be exactly
    /// [`CHUNK`] bytes (longer data is split); after a shorter one the body is complete.
    /// The data is in the head file, not yet durable. On error, call [`Writer::abort`].
    pub fn append(&mut self, p: &mut Pending, data: &[u8]) -> Result<(), SpoolError> {
        for piece in data.chunks(CHUNK) {
            self.append_chunk(p, piece)?;
        }
        Ok(())
    }

    fn append_chunk(&mut self, p: &mut Pending, data: &[u8]) -> Result<(), SpoolError> {
        if p.closed {
            return Err(SpoolError::Io(
                "body already complete (only a body's last chunk may be short)".into(),
            ));
        }
        let len = data.len() as u64;
        if self.st.bytes + self.st.reserved + len > self.st.limits.max_bytes
            || p.size + len > frame::BODY_MAX
        {
            return Err(SpoolError::Full);
        }
        self.st
            .check_quota(p.dom, "", p.size + len)
            .map_err(|_| SpoolError::DomainQuota(format!("#{:08x}", p.dom)))?;
        let (loc, first) = self.write_chunk(p, data)?;
        if first {
            self.st.index.get_mut(p.slot).min_seg = loc.seg;
        }
        p.size += len;
        p.crc = crc32(p.crc, data);
        self.st.reserved += len;
        if data.len() < CHUNK {
            p.closed = true;
        }
        Ok(())
    }

    /// Writes one chunk frame of `p` and lists it (in a group frame once the list fills);
    /// returns where it went and whether it was the message's first.
    fn write_chunk(&mut self, p: &mut Pending, data: &[u8]) -> Result<(Loc, bool), SpoolError> {
        let n = p.chunks.as_ref().map_or(0, |c| c.n);
        let rec = ChunkRec {
            id: p.id,
            seq: n,
            crc: crc32(0, data),
        };
        let loc = self.write_frame(Kind::Chunk, &rec, data)?;
        let first = p.chunks.is_none();
        if first {
            if let Some(s) = self.st.segs.get_mut(loc.seg) {
                s.pending += 1;
            }
            p.chunks = Some(Box::new(Chunks {
                first: loc,
                n: 0,
                locs: heapless::Vec::new(),
                groups: heapless::Vec::new(),
            }));
        }
        if let Some(c) = p.chunks.as_mut() {
            c.n += 1;
            // `locs` has room: it is flushed to a group frame as soon as it fills.
            let _ = c.locs.push(loc);
            if c.locs.is_full() {
                self.flush_group(p.id, p.chunks.as_mut())?;
            }
        }
        Ok((loc, first))
    }

    /// Writes the listed chunk locations as a group frame.
    fn flush_group(
        &mut self,
        id: MessageId,
        c: Option<&mut Box<Chunks>>,
    ) -> Result<(), SpoolError> {
        let Some(c) = c else { return Ok(()) };
        if c.locs.is_empty() {
            return Ok(());
        }
        if c.groups.is_full() {
            return Err(SpoolError::Full);
        }
        let rec = GroupRec {
            id,
            chunks: std::mem::take(&mut c.locs),
        };
        let loc = self.write_frame(Kind::Group, &rec, &[])?;
        let _ = c.groups.push(loc);
        Ok(())
    }

    /// Commits the message: `tail` is the end of its body (may be empty). A body of at most
    /// [`CHUNK`] bytes sent only as `tail` is stored inside the message frame. The message
    /// is durable, and visible to readers and delivery, after the next [`Writer::sync`];
    /// no sender may be told 250 before.
    pub fn commit(
        &mut self,
        mut p: Pending,
        envelope: &Envelope,
        tail: &[u8],
        now_unix: u64,
    ) -> Result<MessageId, SpoolError> {
        let r = self.commit_inner(&mut p, envelope, tail, now_unix);
        match r {
            Ok(()) => Ok(p.id),
            Err(e) => {
                self.st.abort(p);
                Err(e)
            }
        }
    }

    fn commit_inner(
        &mut self,
        p: &mut Pending,
        envelope: &Envelope,
        tail: &[u8],
        now_unix: u64,
    ) -> Result<(), SpoolError> {
        let inline = p.chunks.is_none() && !p.closed && tail.len() <= CHUNK;
        if inline {
            let len = tail.len() as u64;
            if self.st.bytes + self.st.reserved + len > self.st.limits.max_bytes {
                return Err(SpoolError::Full);
            }
            p.size = len;
            p.crc = crc32(0, tail);
            self.st.reserved += len;
        } else if !tail.is_empty() {
            self.append(p, tail)?;
        }
        let mut recipients = Vec::new();
        for r in &envelope.recipients {
            recipients.push(Recipient {
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
            last_error: String::new(),
            warned: false,
            verdict: envelope.verdict.clone(),
        };
        let body = self.body_ref(p.id, p.chunks.as_mut())?;
        let rec = MessageRec { meta, body };
        let data = if inline { tail } else { &[][..] };
        let loc = self.write_frame(Kind::Message, &rec, data)?;
        let min_seg = p.chunks.as_ref().map_or(loc.seg, |c| c.first.seg);
        self.accept(p, &rec.meta, loc, min_seg);
        Ok(())
    }

    /// The body reference of a chunked body (writing its last group frame if it needs one).
    pub(super) fn body_ref(
        &mut self,
        id: MessageId,
        c: Option<&mut Box<Chunks>>,
    ) -> Result<Body, SpoolError> {
        let Some(c) = c else { return Ok(Body::Inline) };
        if c.groups.is_empty() {
            return Ok(Body::Chunks(Box::new(std::mem::take(&mut c.locs))));
        }
        self.flush_group(id, Some(c))?;
        Ok(Body::Groups {
            first: c.first,
            groups: Box::new(c.groups.clone()),
        })
    }

    /// Accounts a committed message (published at the next sync).
    fn accept(&mut self, p: &Pending, meta: &MessageMeta, loc: Loc, min_seg: u32) {
        let st = &mut *self.st;
        if let Some(c) = &p.chunks {
            if let Some(s) = st.segs.get_mut(c.first.seg) {
                s.pending = s.pending.saturating_sub(1);
            }
        }
        if let Some(s) = st.segs.get_mut(min_seg) {
            s.live += 1;
        }
        st.in_flight -= 1;
        st.reserved -= p.size;
        st.bytes += p.size;
        st.quotas.add(p.dom, p.size);
        let e = st.index.get_mut(p.slot);
        e.m_loc = loc.pack();
        e.s_loc = Loc::NONE;
        e.received = u32::try_from(meta.received_unix).unwrap_or(u32::MAX);
        e.size = u32::try_from(p.size).unwrap_or(u32::MAX);
        e.next_attempt = 0;
        e.attempts = 0;
        e.min_seg = min_seg;
        st.publish.push(Publish::Commit {
            slot: p.slot,
            id: p.id,
        });
    }

    /// Drops a message being received (its chunk frames become garbage).
    pub fn abort(&mut self, p: Pending) {
        self.st.abort(p);
    }

    /// Records a delivery attempt: per-recipient state, attempts, next attempt, last
    /// error. Messages whose recipients are all done are removed instead.
    pub fn update(&mut self, meta: &MessageMeta) -> Result<(), SpoolError> {
        self.st.writable()?;
        let slot = self.st.held(meta.id)?;
        let state = Box::new(StateRec::of(meta));
        let loc = self.write_frame(Kind::State, &*state, &[])?;
        let next = u32::try_from(meta.next_attempt_unix).unwrap_or(u32::MAX);
        let attempts = u16::try_from(meta.attempts).unwrap_or(u16::MAX);
        self.st.index.reschedule(slot, next, attempts);
        self.st.publish.push(Publish::State {
            slot,
            id: meta.id,
            loc: loc.pack(),
            state,
        });
        Ok(())
    }

    /// Removes a message (delivered, bounced or deleted by the admin). It is gone for
    /// readers at once and on flash after the next sync.
    pub fn remove(&mut self, id: MessageId) -> Result<(), SpoolError> {
        self.st.writable()?;
        let slot = self.st.held(id)?;
        self.write_frame(Kind::Done, &DoneRec { id }, &[])?;
        let st = &mut *self.st;
        let e = *st.index.get(slot);
        if let Some(s) = st.segs.get_mut(e.min_seg) {
            s.live = s.live.saturating_sub(1);
        }
        st.bytes -= u64::from(e.size);
        st.quotas.sub(e.dom, u64::from(e.size));
        st.index.free(slot);
        Ok(())
    }

    /// Makes everything written so far durable (one file sync, one device sync), then
    /// publishes it and reclaims segments. On error nothing of this batch is published:
    /// its commits are undone (their senders must hear 4xx). Once the batch is durable this
    /// returns `Ok` whatever reclaim meets: a reclaim that fails (flash full, damage) is
    /// logged and tried again at the next sync; it must not turn acknowledged mail into a
    /// 4xx its sender would retry (a duplicate).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.st.dirty {
            let r = self.head.sync().map_err(|e| self.io(e)).and_then(|()| {
                self.st
                    .flash
                    .sync()
                    .map_err(|e| SpoolError::Io(e.to_string()))
            });
            if let Err(e) = r {
                self.unwind();
                return Err(e);
            }
            self.st.dirty = false;
        }
        self.publish();
        if let Err(e) = self.reclaim() {
            crate::log!("spool: reclaim postponed: {e}");
        }
        Ok(())
    }

    /// Whether frames were written since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.st.dirty
    }

    fn publish(&mut self) {
        let st = &mut *self.st;
        for p in st.publish.drain(..) {
            match p {
                Publish::Commit { slot, id } => {
                    if st.index.get(slot).id == id && !st.index.get(slot).is_held() {
                        st.index.commit(slot);
                    }
                }
                Publish::State { slot, id, loc, .. } => {
                    let e = st.index.get_mut(slot);
                    if e.id == id && e.is_held() {
                        e.s_loc = loc;
                    }
                }
                Publish::Moved {
                    slot,
                    id,
                    loc,
                    min_seg,
                } => {
                    let e = *st.index.get(slot);
                    if e.id == id && e.is_held() {
                        if let Some(s) = st.segs.get_mut(e.min_seg) {
                            s.live = s.live.saturating_sub(1);
                        }
                        if let Some(s) = st.segs.get_mut(min_seg) {
                            s.live += 1;
                        }
                        let e = st.index.get_mut(slot);
                        e.m_loc = loc;
                        e.s_loc = Loc::NONE;
                        e.min_seg = min_seg;
                    }
                }
            }
        }
    }

    /// A failed sync: commits of this batch are undone.
    fn unwind(&mut self) {
        let st = &mut *self.st;
        for p in st.publish.drain(..) {
            if let Publish::Commit { slot, id } = p {
                let e = *st.index.get(slot);
                if e.id == id && !e.is_held() {
                    if let Some(s) = st.segs.get_mut(e.min_seg) {
                        s.live = s.live.saturating_sub(1);
                    }
                    st.bytes -= u64::from(e.size);
                    st.quotas.sub(e.dom, u64::from(e.size));
                    st.index.free(slot);
                }
            }
        }
    }

    /// A chunk of a message being copied (not counted against the limits: it is held).
    pub(super) fn copy_chunk(&mut self, p: &mut Pending, data: &[u8]) -> Result<(), SpoolError> {
        self.write_chunk(p, data).map(|_| ())
    }

    /// Reads a message's record with its latest delivery state.
    pub fn meta(&self, id: MessageId) -> Result<MessageMeta, SpoolError> {
        read::read_meta(self.fs, self.st, id).map(|(m, _)| m)
    }

    /// Reads body bytes (see [`Spool::read_body`]).
    pub fn read_body(
        &self,
        id: MessageId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, SpoolError> {
        read::read_body(self.fs, self.st, id, offset, buf)
    }

    /// Reads the whole body, checking its CRC (see [`Spool::stream_body`]).
    pub fn stream_body(&self, id: MessageId, sink: impl FnMut(&[u8])) -> Result<u64, SpoolError> {
        read::stream_body(self.fs, self.st, id, sink)
    }

    /// How full the spool is.
    pub fn usage(&self) -> Usage {
        self.st.usage()
    }

    /// Body bytes held per domain key (see [`Spool::domain_bytes`](super::Spool)).
    pub fn domain_bytes(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.st.quotas.each()
    }

    /// Held messages, oldest first (O(n log n): listings only).
    pub fn list(&self) -> Vec<IndexEntry> {
        self.st.list()
    }

    /// Number of held messages.
    pub fn len(&self) -> usize {
        self.st.index.held_count() as usize
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the oldest held message was accepted (O(n), for the status page).
    pub fn oldest_received(&self) -> Option<u64> {
        self.st.index.held().map(|e| u64::from(e.received)).min()
    }

    /// The earliest scheduled attempt of a message not due yet (O(n), for the status page).
    pub fn next_attempt(&self) -> Option<u64> {
        self.st
            .index
            .held()
            .map(|e| u64::from(e.next_attempt))
            .filter(|t| *t != 0)
            .min()
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: MessageId) -> bool {
        self.st.held(id).is_ok()
    }

    /// Makes held mail due now, in RAM only (a flush must not rewrite flash): all, or the
    /// mail whose first recipient is in `domain`. Returns how many that covers.
    pub fn expedite(&mut self, domain: Option<&str>) -> usize {
        self.st
            .index
            .expedite(domain.map(|d| lane_of(domain_key(d))))
    }

    /// Lanes with mail due at `now_unix`, longest-waiting first, leaving out `busy`.
    pub fn due_lanes(&mut self, now_unix: u64, busy: &[u16], max: usize) -> Vec<u16> {
        let now = u32::try_from(now_unix).unwrap_or(u32::MAX);
        self.st.index.due_lanes(now, busy, max)
    }

    /// Up to `max` due messages of `lane`, oldest first.
    pub fn lane_due(&mut self, lane: u16, now_unix: u64, max: usize) -> Vec<MessageId> {
        let now = u32::try_from(now_unix).unwrap_or(u32::MAX);
        let slots = self.st.index.lane_due(lane, now, max);
        slots.into_iter().map(|s| self.st.index.get(s).id).collect()
    }
}

#[cfg(test)]
impl<D: BlockDevice> Writer<'_, '_, '_, D> {
    /// Test hook: the frame location of a message.
    pub(crate) fn loc_of(&self, id: MessageId) -> Option<Loc> {
        let s = self.st.held(id).ok()?;
        Loc::unpack(self.st.index.get(s).m_loc)
    }
}

impl<D: BlockDevice> read::SpoolRead for Writer<'_, '_, '_, D> {
    fn meta(&self, id: MessageId) -> Result<MessageMeta, SpoolError> {
        Writer::meta(self, id)
    }
    fn read_body(&self, id: MessageId, offset: u64, buf: &mut [u8]) -> Result<usize, SpoolError> {
        Writer::read_body(self, id, offset, buf)
    }
    fn list(&self) -> Vec<IndexEntry> {
        Writer::list(self)
    }
    fn usage(&self) -> Usage {
        Writer::usage(self)
    }
}
