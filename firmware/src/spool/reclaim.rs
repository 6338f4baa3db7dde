//! Reclaim: deleting segments that hold nothing live, and copying the live mail of the
//! oldest segment forward so one long-held message cannot pin flash (`docs/spool.md`,
//! "Reclaim" and "Wear"). Runs on the [`Writer`] after each sync has published its batch.

use mailbag_hal::BlockDevice;

use super::error::SpoolError;
use super::frame::{Body, CHUNK, Kind, MessageRec};
use super::index::Slot;
use super::read;
use super::store::{Usage, seg_path};
use super::writer::{Pending, Publish, Writer};

/// Most bytes copied forward in one sync (bounds the pause it causes).
const COPY_BUDGET: u64 = 1 << 20;

/// Syncs to wait after a copy-forward that could not finish before trying again.
const RECLAIM_PAUSE: u32 = 256;

/// Bytes of log the held messages take: bodies plus frame headers and records.
fn live_estimate(u: &Usage) -> u64 {
    u.bytes + u64::from(u.messages) * 256 + u.bytes / CHUNK as u64 * 48
}

impl<D: BlockDevice> Writer<'_, '_, '_, D> {
    /// Deletes segments that hold nothing live (oldest first, never the head), and copies
    /// the oldest one's live messages forward when flash runs short.
    pub(super) fn reclaim(&mut self) -> Result<(), SpoolError> {
        self.drop_dead()?;
        if self.st.reclaim_pause > 0 {
            self.st.reclaim_pause -= 1;
            return Ok(());
        }
        if self.short_of_flash() {
            let r = self.copy_forward(COPY_BUDGET);
            if r.as_ref().map_or(true, |_| self.st.copy_failed) {
                // Flash full or a damaged message: try again some batches later, not at
                // every one.
                self.st.reclaim_pause = RECLAIM_PAUSE;
                self.st.copy_failed = false;
            }
            r?;
        }
        Ok(())
    }

    fn drop_dead(&mut self) -> Result<(), SpoolError> {
        loop {
            let (Some(old), Some(head)) = (self.st.segs.oldest(), self.st.segs.head()) else {
                return Ok(());
            };
            if old.no == head.no || old.live > 0 || old.pending > 0 {
                return Ok(());
            }
            let no = old.no;
            // Locations in that segment mean nothing from now on.
            self.st.bodies.clear();
            match self.fs.remove(&seg_path(no)) {
                Err(e) if e != littlefs2::io::Error::NO_SUCH_ENTRY => return Err(self.io(e)),
                _ => {}
            }
            self.st.segs.pop_oldest();
        }
    }

    /// Whether copying the oldest segment forward is worth it: the log is close to filling
    /// the device and holds garbage that copying would eventually reach, or more than a
    /// quarter of the device is garbage. (A log full of live mail is left alone: then the
    /// spool is full and senders hear 452.)
    fn short_of_flash(&self) -> bool {
        let u = self.st.usage();
        let seg = u64::from(self.st.segs.seg_size);
        let budget = u.device_bytes.saturating_sub(u.device_bytes / 16 + 3 * seg);
        let garbage = u.log_bytes.saturating_sub(live_estimate(&u));
        (u.log_bytes > budget && garbage > 2 * seg) || garbage > u.device_bytes / 4
    }

    /// Copies live messages of the oldest segment to the head (at most about `budget`
    /// bytes); the segment is deleted once the copies are durable and nothing else pins it.
    /// Returns how many messages were copied. Scans the index once (O(n) in RAM); runs at
    /// most once per sync, and only when flash runs short or on request.
    pub fn copy_forward(&mut self, budget: u64) -> Result<usize, SpoolError> {
        self.st.bodies.clear();
        let (Some(old), Some(head)) =
            (self.st.segs.oldest().copied(), self.st.segs.head().copied())
        else {
            return Ok(0);
        };
        if old.no == head.no || old.pending > 0 || !self.st.publish.is_empty() {
            return Ok(0);
        }
        let slots: Vec<Slot> = self
            .st
            .index
            .held_slots()
            .filter(|&(_, e)| e.min_seg == old.no)
            .map(|(s, _)| s)
            .collect();
        let mut copied = 0u64;
        let mut n = 0;
        for slot in slots {
            if copied >= budget {
                break;
            }
            match self.copy_message(slot) {
                Ok(bytes) => {
                    copied += bytes;
                    n += 1;
                }
                Err(SpoolError::Corrupt(why)) => {
                    // Left where it is (it keeps its segment): an admin can still see it.
                    crate::log!("spool: cannot copy a damaged message forward: {why}");
                    self.st.copy_failed = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Writes message `slot` anew at the head, body and latest state; returns bytes copied.
    fn copy_message(&mut self, slot: Slot) -> Result<u64, SpoolError> {
        let id = self.st.index.get(slot).id;
        let (meta, (h, rec, loc)) = read::read_meta(self.fs, self.st, id)?;
        let mut buf = vec![0u8; CHUNK];
        let size = meta.size;
        let inline = rec.body == Body::Inline;
        let b = read::BodyRef::of(h, loc, rec);
        let (body, data_len, min_seg) = if size as usize <= CHUNK && inline {
            let n = read::read_body_of(self.fs, self.st, id, &b, 0, &mut buf)?;
            buf.truncate(n);
            (Body::Inline, n, None)
        } else {
            let mut p = Pending {
                id,
                slot,
                dom: 0,
                size: 0,
                crc: 0,
                chunks: None,
                closed: false,
            };
            let mut off = 0u64;
            while off < size {
                let n = read::read_body_of(self.fs, self.st, id, &b, off, &mut buf)?;
                if n == 0 {
                    return Err(SpoolError::Corrupt(format!("body of {id} is short")));
                }
                self.copy_chunk(&mut p, &buf[..n])?;
                off += n as u64;
            }
            let first = p.chunks.as_ref().map(|c| c.first.seg);
            if let Some(c) = &p.chunks {
                if let Some(s) = self.st.segs.get_mut(c.first.seg) {
                    s.pending = s.pending.saturating_sub(1);
                }
            }
            (self.body_ref(id, p.chunks.as_mut())?, 0, first)
        };
        let new = MessageRec { meta, body };
        let data = if new.body == Body::Inline {
            &buf[..data_len]
        } else {
            &[][..]
        };
        let at = self.write_frame(Kind::Message, &new, data)?;
        self.st.publish.push(Publish::Moved {
            slot,
            id,
            loc: at.pack(),
            min_seg: min_seg.unwrap_or(at.seg),
        });
        Ok(size)
    }
}
