//! Mount: the log replayed into the RAM index (see `docs/spool.md`, "Mount").
//!
//! Every segment is read once, front to back, oldest first, through a 64 KiB window: frame
//! headers and records are checked and applied, body bytes pass by unchecked (a chunk is
//! checked when it is read for delivery). Cost: O(log bytes) sequential reads and O(frames)
//! index operations; no file per message is opened and no directory is searched per
//! message. (The reads never seek: see `read::seek_once` for the littlefs bug that rules
//! seeking inside an open file out.)
//!
//! Replay rules, applied in log order (later frames win):
//! - message frame: the message is held (a second one for the same id is a copy made by
//!   reclaim: it replaces the first, state included);
//! - state frame: the message's latest delivery state;
//! - done frame: the message is gone;
//! - chunk and group frames: nothing (message frames point at them).
//!
//! A frame that does not check ends its segment's replay: in the newest segment that is an
//! interrupted write (the file is cut back to the last good frame); in an older one it is
//! damage, counted in [`super::Usage::damaged`] and logged.

use littlefs2::fs::OpenOptions;
use littlefs2::io::Error as LfsError;
use mailbag_hal::BlockDevice;

use super::error::SpoolError;
use super::frame::{self, Body, DoneRec, HEADER_LEN, Kind, Loc, MessageRec, RECORD_MAX, StateRec};
use super::read::read_seq;
use super::store::{Access, LOG_DIR, Spool, State, address_key, path, seg_path};

/// Bytes read from a segment at a time.
const WINDOW: usize = 64 * 1024;

/// Replays every segment into `spool`'s index (see the module docs).
pub(super) fn replay<D: BlockDevice>(spool: &mut Spool<'_, D>) -> Result<(), SpoolError> {
    let mut nos: Vec<u32> = Vec::new();
    if spool.fs.exists(&path(LOG_DIR)) {
        spool
            .fs
            .read_dir_and_then(&path(LOG_DIR), |dir| {
                for entry in dir {
                    let entry = entry?;
                    let name = entry.file_name().as_str();
                    if name.len() == 8 {
                        if let Ok(no) = u32::from_str_radix(name, 16) {
                            nos.push(no);
                        }
                    }
                }
                Ok(())
            })
            .map_err(|e| spool.io(e))?;
    }
    nos.sort_unstable();
    let mut window = vec![0u8; WINDOW];
    for (i, &no) in nos.iter().enumerate() {
        spool.st.segs.push(no, 0);
        let fs = &spool.fs;
        let st = &mut spool.st;
        let (valid, size) = OpenOptions::new()
            .read(true)
            .open_and_then(fs, &seg_path(no), |f| {
                let size = f.len()? as u32;
                let mut r = Window {
                    buf: &mut window,
                    start: 0,
                    len: 0,
                };
                let valid = replay_segment(st, no, size, &mut r, f)?;
                Ok((valid, size))
            })
            .map_err(|e| spool.io(e))?;
        spool.st.segs.set_len(no, valid);
        if valid < size {
            if i + 1 == nos.len() {
                // An interrupted write at the end of the log: cut it off so appends
                // continue from the last good frame.
                if spool.st.access == Access::ReadWrite {
                    OpenOptions::new()
                        .write(true)
                        .open_and_then(&spool.fs, &seg_path(no), |f| f.set_len(valid as usize))
                        .map_err(|e| spool.io(e))?;
                }
            } else {
                spool.st.damaged += 1;
                crate::log!(
                    "spool: segment {no:08x} is damaged after byte {valid} of {size}; \
                     messages stored past that point cannot be read"
                );
            }
        }
    }
    Ok(())
}

/// A read window over one segment file, read strictly forward: `buf[..len]` holds the
/// file's bytes from `start`, and the file's position is `start + len`.
struct Window<'b> {
    buf: &'b mut [u8],
    start: u32,
    len: usize,
}

impl Window<'_> {
    /// `n` bytes at `off` (never before the window), or `None` past the end of the file.
    fn get<S: littlefs2::driver::Storage>(
        &mut self,
        f: &littlefs2::fs::File<'_, '_, S>,
        off: u32,
        n: usize,
        size: u32,
    ) -> Result<Option<&[u8]>, LfsError> {
        if u64::from(off) + n as u64 > u64::from(size) || off < self.start || n > self.buf.len() {
            return Ok(None);
        }
        let end = self.start as usize + self.len;
        if off as usize + n > end {
            if (off as usize) < end {
                // Keep the part already read, then read on.
                let keep = off - self.start;
                self.buf.copy_within(keep as usize..self.len, 0);
                self.len -= keep as usize;
            } else {
                // Read past what lies between (body bytes) without keeping it.
                let mut gap = off as usize - end;
                while gap > 0 {
                    let k = gap.min(self.buf.len());
                    if read_seq(f, &mut self.buf[..k])? < k {
                        return Ok(None);
                    }
                    gap -= k;
                }
                self.len = 0;
            }
            self.start = off;
            let want = self.buf.len().min((size - off) as usize);
            let got = read_seq(f, &mut self.buf[self.len..want])?;
            self.len += got;
            if self.len < n {
                return Ok(None);
            }
        }
        let at = (off - self.start) as usize;
        Ok(Some(&self.buf[at..at + n]))
    }
}

/// Applies the frames of segment `no` (`size` bytes, read through `get`); returns the
/// offset after the last good frame.
fn replay_segment<D: BlockDevice, S: littlefs2::driver::Storage>(
    st: &mut State<D>,
    no: u32,
    size: u32,
    win: &mut Window<'_>,
    f: &littlefs2::fs::File<'_, '_, S>,
) -> Result<u32, LfsError> {
    let mut off = 0u32;
    while off < size {
        let Some(raw) = win.get(f, off, HEADER_LEN, size)? else {
            break;
        };
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(raw);
        let Ok(h) = frame::parse_header(&header) else {
            break;
        };
        let end = u64::from(off) + h.frame_len();
        if end > u64::from(size) || h.rlen as usize > RECORD_MAX {
            break;
        }
        let Some(rec) = win.get(f, off + HEADER_LEN as u32, h.rlen as usize, size)? else {
            break;
        };
        if frame::check(&h, &header, rec).is_err() {
            break;
        }
        if apply(st, h.kind, rec, Loc { seg: no, off }).is_err() {
            break;
        }
        off = end as u32;
    }
    Ok(off)
}

/// Applies one checked frame; an undecodable record ends the segment like damage.
fn apply<D: BlockDevice>(
    st: &mut State<D>,
    kind: Kind,
    rec: &[u8],
    loc: Loc,
) -> Result<(), frame::FrameError> {
    match kind {
        Kind::Message => {
            let m: MessageRec = frame::decode(rec)?;
            if !m.meta.within_bounds() {
                return Err(frame::FrameError::Record);
            }
            load_message(st, &m, loc);
        }
        Kind::State => {
            let s: StateRec = frame::decode(rec)?;
            if !s.within_bounds() {
                return Err(frame::FrameError::Record);
            }
            if let Some(slot) = st.index.find(s.id) {
                let e = st.index.get_mut(slot);
                e.s_loc = loc.pack();
                e.next_attempt = u32::try_from(s.next_attempt_unix).unwrap_or(u32::MAX);
                e.attempts = u16::try_from(s.attempts).unwrap_or(u16::MAX);
            }
        }
        Kind::Done => {
            let d: DoneRec = frame::decode(rec)?;
            if let Some(slot) = st.index.find(d.id) {
                let e = *st.index.get(slot);
                if let Some(s) = st.segs.get_mut(e.min_seg) {
                    s.live = s.live.saturating_sub(1);
                }
                st.bytes -= u64::from(e.size);
                st.quotas.sub(e.dom, u64::from(e.size));
                st.index.free(slot);
            }
        }
        Kind::Chunk | Kind::Group => {}
    }
    Ok(())
}

/// Adds (or, for a copy made by reclaim, moves) a message found in the log.
pub(super) fn load_message<D: BlockDevice>(st: &mut State<D>, m: &MessageRec, loc: Loc) {
    let min_seg = match &m.body {
        Body::Inline => loc.seg,
        Body::Chunks(locs) => locs.first().map_or(loc.seg, |l| l.seg),
        Body::Groups { first, .. } => first.seg,
    };
    let meta = &m.meta;
    let next = u32::try_from(meta.next_attempt_unix).unwrap_or(u32::MAX);
    let attempts = u16::try_from(meta.attempts).unwrap_or(u16::MAX);
    if let Some(slot) = st.index.find(meta.id) {
        let old = st.index.get(slot).min_seg;
        if let Some(s) = st.segs.get_mut(old) {
            s.live = s.live.saturating_sub(1);
        }
        if let Some(s) = st.segs.get_mut(min_seg) {
            s.live += 1;
        }
        let e = st.index.get_mut(slot);
        e.m_loc = loc.pack();
        e.s_loc = Loc::NONE;
        e.min_seg = min_seg;
        e.next_attempt = next;
        e.attempts = attempts;
        return;
    }
    let dom = address_key(meta.recipients.first().map_or("", |r| r.address.as_str()));
    let slot = st.index.load(meta.id);
    let e = st.index.get_mut(slot);
    e.m_loc = loc.pack();
    e.s_loc = Loc::NONE;
    e.received = u32::try_from(meta.received_unix).unwrap_or(u32::MAX);
    e.next_attempt = next;
    e.size = u32::try_from(meta.size).unwrap_or(u32::MAX);
    e.attempts = attempts;
    e.dom = dom;
    e.min_seg = min_seg;
    st.bytes += meta.size;
    st.quotas.add(dom, meta.size);
    if let Some(s) = st.segs.get_mut(min_seg) {
        s.live += 1;
    }
}
