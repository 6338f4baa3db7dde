//! [`Segments`]: the segment files of the log, oldest to newest, and what pins each one
//! (see `docs/spool.md`, "Reclaim").
//!
//! Segments are numbered consecutively; new ones are added at the head and only the
//! oldest is ever removed, so the live range is `oldest..=head` and a segment's entry is
//! found by subtraction, O(1). The ring is allocated once; the number of segments is bounded
//! by the device size over the segment size (plus the head and a small slack).

use std::collections::VecDeque;

/// One segment file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seg {
    /// Its number (`/log/<no as 8 hex digits>`).
    pub no: u32,
    /// Bytes of valid frames in it.
    pub len: u32,
    /// Held messages whose oldest frame is here.
    pub live: u32,
    /// Messages being received whose first chunk is here.
    pub pending: u32,
}

/// The segments, oldest first.
#[derive(Debug)]
pub struct Segments {
    ring: VecDeque<Seg>,
    /// Bytes after which the head segment is closed and a new one started.
    pub seg_size: u32,
    /// Sum of `len` over all segments.
    pub log_bytes: u64,
}

impl Segments {
    /// An empty ring for a device of `device_bytes` with segments of `seg_size`.
    pub fn new(device_bytes: u64, seg_size: u32) -> Self {
        let n = (device_bytes / u64::from(seg_size.max(1))) as usize + 16;
        Segments {
            ring: VecDeque::with_capacity(n),
            seg_size,
            log_bytes: 0,
        }
    }

    /// The segment size for a device: about 1/64 of it, between 16 KiB and 4 MiB.
    pub fn size_for(device_bytes: u64) -> u32 {
        let s = (device_bytes / 64).clamp(16 * 1024, 4 * 1024 * 1024);
        (s - s % 4096) as u32
    }

    /// Adds segment `no` at the head (it must be the head's number plus one, or the first).
    /// Gaps (a segment lost to damage) are filled with empty entries.
    pub fn push(&mut self, no: u32, len: u32) {
        if let Some(head) = self.ring.back().map(|s| s.no) {
            let mut n = head.wrapping_add(1);
            while n != no && self.ring.len() < self.ring.capacity() {
                self.ring.push_back(Seg {
                    no: n,
                    ..Seg::default()
                });
                n = n.wrapping_add(1);
            }
        }
        self.ring.push_back(Seg {
            no,
            len,
            ..Seg::default()
        });
        self.log_bytes += u64::from(len);
    }

    /// The oldest segment.
    pub fn oldest(&self) -> Option<&Seg> {
        self.ring.front()
    }

    /// The head (newest) segment.
    pub fn head(&self) -> Option<&Seg> {
        self.ring.back()
    }

    /// Removes the oldest segment (its file must be gone or about to go).
    pub fn pop_oldest(&mut self) -> Option<Seg> {
        let s = self.ring.pop_front()?;
        self.log_bytes -= u64::from(s.len);
        Some(s)
    }

    /// The entry of segment `no`, if it is in the ring.
    pub fn get_mut(&mut self, no: u32) -> Option<&mut Seg> {
        let first = self.ring.front()?.no;
        self.ring.get_mut(no.wrapping_sub(first) as usize)
    }

    /// Sets segment `no`'s length (at mount, once its frames are read).
    pub fn set_len(&mut self, no: u32, len: u32) {
        if let Some(s) = self.get_mut(no) {
            let old = s.len;
            s.len = len;
            self.log_bytes = self.log_bytes - u64::from(old) + u64::from(len);
        }
    }

    /// Grows the head segment's length by `n` bytes (a frame was appended).
    pub fn grow_head(&mut self, n: u32) {
        if let Some(h) = self.ring.back_mut() {
            h.len += n;
            self.log_bytes += u64::from(n);
        }
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Whether another segment fits the ring.
    pub fn has_room(&self) -> bool {
        self.ring.len() < self.ring.capacity()
    }

    /// The segments, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Seg> {
        self.ring.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_finds_by_number_and_keeps_the_byte_total() {
        let mut s = Segments::new(1 << 20, 64 * 1024);
        s.push(7, 100);
        s.push(8, 50);
        s.push(10, 5); // 9 was lost: an empty entry keeps numbering consecutive
        assert_eq!(s.len(), 4);
        assert_eq!(s.get_mut(9).map(|x| x.len), Some(0));
        s.get_mut(8).unwrap().live += 2;
        s.grow_head(10);
        assert_eq!(s.log_bytes, 165);
        assert_eq!(s.pop_oldest().map(|x| x.no), Some(7));
        assert_eq!(s.oldest().map(|x| (x.no, x.live)), Some((8, 2)));
        assert_eq!(s.head().map(|x| (x.no, x.len)), Some((10, 15)));
        assert!(s.get_mut(7).is_none());
        assert_eq!(s.log_bytes, 65);
    }

    #[test]
    fn segment_size_follows_the_device() {
        assert_eq!(Segments::size_for(8 << 20), 128 * 1024);
        assert_eq!(Segments::size_for(256 << 20), 4 << 20);
        assert_eq!(Segments::size_for(1 << 20), 16 * 1024);
        assert_eq!(Segments::size_for(1 << 40), 4 << 20);
    }
}
