//! Reading the spool's log: frames, message records, bodies (the read half of
//! [`super::store`]; the on-flash format is in `docs/spool.md`). Every read opens its segment
//! file, seeks once and reads forward ([`seek_once`] says why).

use std::cell::RefCell;

use littlefs2::fs::{File, Filesystem, OpenOptions};
use littlefs2::io::{Error as LfsError, SeekFrom};
use mailbag_hal::BlockDevice;

use super::crc::crc32;
use super::error::SpoolError;
use super::flash::Flash;
use super::frame::{self, Body, CHUNK, GROUP, GroupRec, HEADER_LEN, Kind, Loc, MessageRec};
use super::message::{MessageId, MessageMeta};
use super::store::{IndexEntry, Spool, State, Usage, lfs_error, seg_path};
use super::writer::Publish;

/// What reading a body needs from its message's record: where the record is (an inline
/// body follows it), the body's size and CRC, and where its chunks are.
pub(super) struct BodyRef {
    h: frame::Header,
    loc: Loc,
    size: u64,
    crc: u32,
    body: Body,
}

impl BodyRef {
    pub(super) fn of(h: frame::Header, loc: Loc, rec: MessageRec) -> Self {
        Self {
            h,
            loc,
            size: rec.meta.size,
            crc: rec.meta.body_crc,
            body: rec.body,
        }
    }
}

/// The body references of the last few messages read piece by piece. Delivery reads a body
/// in 16 KiB pieces, one request each; without this every piece would open and decode the
/// message's record again (the top of the drain's profile: `docs/spool.md`, "Costs"). An
/// entry is used only while the index still places the message's record where the entry
/// was read from — frames are never rewritten in place, a copy-forward writes a new record
/// elsewhere — and the writer empties the cache whenever it reclaims or copies forward.
#[derive(Default)]
pub(super) struct BodyCache(RefCell<Vec<(MessageId, BodyRef)>>);

/// Bodies remembered at once (delivery runs up to 8 lanes).
const BODY_CACHE: usize = 8;

impl BodyCache {
    /// Forgets everything (segments were reclaimed or mail copied forward).
    pub(super) fn clear(&mut self) {
        self.0.get_mut().clear();
    }
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
    {
        let known = st.bodies.0.borrow();
        if let Some((_, b)) = known.iter().find(|(i, b)| *i == id && b.loc == loc) {
            return read_body_of(fs, st, id, b, offset, buf);
        }
    }
    let (h, rec) = read_message(fs, st, id, loc)?;
    let b = BodyRef::of(h, loc, rec);
    let n = read_body_of(fs, st, id, &b, offset, buf)?;
    if b.body != Body::Inline {
        let mut known = st.bodies.0.borrow_mut();
        if known.len() == BODY_CACHE {
            known.remove(0);
        }
        known.push((id, b));
    }
    Ok(n)
}

/// [`read_body`] for a message whose record was read.
pub(super) fn read_body_of<D: BlockDevice>(
    fs: &Filesystem<'_, Flash<D>>,
    st: &State<D>,
    id: MessageId,
    b: &BodyRef,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, SpoolError> {
    let (h, loc, size) = (b.h, b.loc, b.size);
    if offset >= size || buf.is_empty() {
        return Ok(0);
    }
    let io = |e| lfs_error(&st.flash, e);
    if b.body == Body::Inline {
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
        if offset == 0 && n as u64 == size && crc32(0, &buf[..n]) != b.crc {
            return Err(damaged(id, loc, "body checksum mismatch"));
        }
        return Ok(n);
    }
    let k = (offset / CHUNK as u64) as usize;
    let within = (offset % CHUNK as u64) as usize;
    let cloc = chunk_loc(fs, st, id, &b.body, k)?
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
    let b = BodyRef::of(h, loc, rec);
    let mut buf = vec![0u8; CHUNK];
    let (mut off, mut crc) = (0u64, 0u32);
    loop {
        let n = read_body_of(fs, st, id, &b, off, &mut buf)?;
        if n == 0 {
            break;
        }
        crc = crc32(crc, &buf[..n]);
        sink(&buf[..n]);
        off += n as u64;
    }
    if off != b.size || crc != b.crc {
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
