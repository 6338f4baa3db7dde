//! [`Flash`]: the littlefs2 `Storage` driver over any [`BlockDevice`].
//!
//! # Write ordering
//!
//! littlefs is power-loss safe only if its writes reach the medium *in the order it issues
//! them* (it was designed for raw flash, where a program is done when it returns). A file
//! image in the page cache, or a disk with a write cache, gives no such order until `sync`.
//! littlefs2 (the Rust crate) ignores littlefs's own sync callback, so this driver restores
//! the order itself with [`Barrier::BlockSwitch`]: before the first program or erase of a
//! block other than the one written last, earlier writes are made durable with
//! `BlockDevice::sync`. Within one block, littlefs protects itself with CRCs (a torn commit
//! is ignored on mount); across blocks, the barrier means a metadata commit can never land
//! before the data or the new metadata block it points at. The cost is one `sync` per
//! block switch; [`Barrier::None`] skips it (for raw NOR/MTD, where writes are synchronous,
//! and for measurements).
//!
//! # Block count
//!
//! littlefs2 wants the block count as a compile-time constant. littlefs itself treats
//! `block_count == 0` as "read it from the superblock", so [`Flash`] is mounted with a count
//! of 0 (littlefs2's debug assertion against that is disabled in the workspace profile), and
//! a new image is formatted small ([`FORMAT_BLOCKS`]) and grown to the device's size.

use std::cell::RefCell;
use std::rc::Rc;

use littlefs2::consts::{U16, U4096};
use littlefs2::driver::Storage;
use littlefs2::io::{Error as LfsError, Result as LfsResult};
use mailbag_hal::BlockDevice;

/// littlefs block size used by mailbag spools. Devices whose erase size divides it work.
pub const SPOOL_BLOCK: usize = 4096;
/// Read and program granularity presented to littlefs.
pub const SPOOL_IO_UNIT: usize = 16;
/// Blocks a fresh filesystem is formatted with before it is grown to the device size.
pub const FORMAT_BLOCKS: usize = 16;

/// When the driver inserts `sync` calls on its own, see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Barrier {
    /// Sync before writing to a different block than the last one written.
    #[default]
    BlockSwitch,
    /// Never sync on its own (the device orders writes itself).
    None,
}

/// Counters kept by the driver (write amplification, sync cost).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// Bytes programmed.
    pub programmed: u64,
    /// Bytes erased.
    pub erased: u64,
    /// Bytes read.
    pub read: u64,
    /// `sync` calls that reached the device.
    pub syncs: u64,
}

/// Blocks written since the last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dirty {
    None,
    One(u64),
    Many,
}

/// Most blocks remembered as freshly erased between two syncs; past it the driver syncs and
/// starts over (correct, just slower).
const FRESH_MAX: usize = 512;

struct Inner<D> {
    dev: D,
    barrier: Barrier,
    dirty: Dirty,
    /// Log frames being appended (see [`FlashHandle::set_streaming`]).
    streaming: bool,
    /// Blocks erased while streaming since the last sync: new data blocks of the log.
    fresh: Vec<u64>,
    stats: FlashStats,
    /// The last device error, kept because littlefs reduces every error to "I/O error".
    last_error: Option<mailbag_hal::Error>,
}

impl<D: BlockDevice> Inner<D> {
    fn sync(&mut self) -> Result<(), mailbag_hal::Error> {
        self.dev.sync()?;
        self.stats.syncs += 1;
        self.dirty = Dirty::None;
        self.fresh.clear();
        Ok(())
    }

    /// Applies the barrier before a program (`erase == false`) or erase of `block`.
    fn before_write(&mut self, block: u64, erase: bool) -> Result<(), mailbag_hal::Error> {
        if self.barrier == Barrier::None {
            return Ok(());
        }
        // New data blocks of the log need no order among themselves: nothing durable points
        // at them until the commit that makes them part of the file, and that commit is a
        // write to an existing metadata block, which takes the strict path below. They stay
        // exempt until the next sync (littlefs flushes the last one while committing).
        if self.streaming && erase {
            if self.fresh.len() >= FRESH_MAX {
                self.sync()?;
            }
            self.fresh.push(block);
        }
        if self.fresh.contains(&block) {
            self.mark(block);
            return Ok(());
        }
        if self.dirty != Dirty::None && self.dirty != Dirty::One(block) {
            self.sync()?;
        }
        self.mark(block);
        Ok(())
    }

    fn mark(&mut self, block: u64) {
        self.dirty = match self.dirty {
            Dirty::None => Dirty::One(block),
            Dirty::One(b) if b == block => Dirty::One(b),
            _ => Dirty::Many,
        };
    }

    fn fail(&mut self, e: mailbag_hal::Error) -> LfsError {
        self.last_error = Some(e);
        LfsError::IO
    }
}

/// A shared handle on the device under a mounted filesystem: lets the spool `sync` and read
/// statistics while littlefs2 holds the `Storage` borrow.
pub struct FlashHandle<D> {
    inner: Rc<RefCell<Inner<D>>>,
}

impl<D: BlockDevice> FlashHandle<D> {
    /// Makes every earlier write durable.
    pub fn sync(&self) -> Result<(), mailbag_hal::Error> {
        self.inner.borrow_mut().sync()
    }

    /// Marks the start (`true`) or end of appending frames to the log. Blocks erased while
    /// on, and every program into them until the next sync, skip the barrier: until the
    /// file's metadata commit (a write to an existing block, which keeps the barrier)
    /// nothing durable points at them, so a power cut can only lose frames no sender was
    /// acknowledged for.
    pub fn set_streaming(&self, on: bool) {
        self.inner.borrow_mut().streaming = on;
    }

    /// Counters so far.
    pub fn stats(&self) -> FlashStats {
        self.inner.borrow().stats
    }

    /// Takes the last device error (set when littlefs reported an I/O error).
    pub fn take_error(&self) -> Option<mailbag_hal::Error> {
        self.inner.borrow_mut().last_error.take()
    }

    /// The device geometry.
    pub fn geometry(&self) -> mailbag_hal::Geometry {
        self.inner.borrow().dev.geometry()
    }
}

/// littlefs2 storage over a [`BlockDevice`]. `COUNT` is the block count littlefs is
/// configured with: 0 (read from the superblock) when mounting, [`FORMAT_BLOCKS`] when
/// formatting.
pub struct Flash<D, const COUNT: usize = 0> {
    inner: Rc<RefCell<Inner<D>>>,
}

impl<D: BlockDevice, const COUNT: usize> Flash<D, COUNT> {
    /// Wraps `dev`; fails if its geometry does not fit [`SPOOL_BLOCK`]/[`SPOOL_IO_UNIT`].
    pub fn new(dev: D, barrier: Barrier) -> Result<Self, String> {
        let g = dev.geometry();
        let fits = SPOOL_BLOCK.is_multiple_of(g.erase_size as usize)
            && SPOOL_IO_UNIT.is_multiple_of(g.read_size as usize)
            && SPOOL_IO_UNIT.is_multiple_of(g.program_size as usize)
            && g.capacity() >= (SPOOL_BLOCK * FORMAT_BLOCKS) as u64;
        if !fits {
            return Err(format!(
                "device geometry (erase {} B, program {} B, {} B total) does not fit a spool \
                 ({SPOOL_BLOCK}-byte blocks, at least {} bytes)",
                g.erase_size,
                g.program_size,
                g.capacity(),
                SPOOL_BLOCK * FORMAT_BLOCKS
            ));
        }
        let inner = Inner {
            dev,
            barrier,
            dirty: Dirty::None,
            streaming: false,
            fresh: Vec::with_capacity(FRESH_MAX),
            stats: FlashStats::default(),
            last_error: None,
        };
        Ok(Self {
            inner: Rc::new(RefCell::new(inner)),
        })
    }

    /// A handle for `sync` and statistics.
    pub fn handle(&self) -> FlashHandle<D> {
        FlashHandle {
            inner: Rc::clone(&self.inner),
        }
    }

    /// Number of littlefs blocks the device holds.
    pub fn device_blocks(&self) -> usize {
        (self.inner.borrow().dev.geometry().capacity() / SPOOL_BLOCK as u64) as usize
    }

    /// Gives the device back (the filesystem must be unmounted: no other handle in use).
    pub fn into_device(self) -> Option<D> {
        Rc::try_unwrap(self.inner)
            .ok()
            .map(|cell| cell.into_inner().dev)
    }
}

impl<D: BlockDevice, const COUNT: usize> Storage for Flash<D, COUNT> {
    const READ_SIZE: usize = SPOOL_IO_UNIT;
    const WRITE_SIZE: usize = SPOOL_IO_UNIT;
    const BLOCK_SIZE: usize = SPOOL_BLOCK;
    const BLOCK_COUNT: usize = COUNT;
    const BLOCK_CYCLES: isize = 500;
    type CACHE_SIZE = U4096;
    type LOOKAHEAD_SIZE = U16;

    fn read(&mut self, off: usize, buf: &mut [u8]) -> LfsResult<usize> {
        let mut inner = self.inner.borrow_mut();
        match inner.dev.read(off as u64, buf) {
            Ok(()) => {
                inner.stats.read += buf.len() as u64;
                Ok(buf.len())
            }
            Err(e) => Err(inner.fail(e)),
        }
    }

    fn write(&mut self, off: usize, data: &[u8]) -> LfsResult<usize> {
        let mut inner = self.inner.borrow_mut();
        let block = (off / SPOOL_BLOCK) as u64;
        let res = inner
            .before_write(block, false)
            .and_then(|()| inner.dev.program(off as u64, data));
        match res {
            Ok(()) => {
                inner.stats.programmed += data.len() as u64;
                Ok(data.len())
            }
            Err(e) => Err(inner.fail(e)),
        }
    }

    fn erase(&mut self, off: usize, len: usize) -> LfsResult<usize> {
        let mut inner = self.inner.borrow_mut();
        let block = (off / SPOOL_BLOCK) as u64;
        let res = inner
            .before_write(block, true)
            .and_then(|()| inner.dev.erase(off as u64, len as u64));
        match res {
            Ok(()) => {
                inner.stats.erased += len as u64;
                Ok(len)
            }
            Err(e) => Err(inner.fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailbag_hal::{Geometry, LogEntry, PowerCut, PowerCutLog, RamDevice};

    fn logged() -> (Flash<PowerCut<RamDevice>>, PowerCutLog) {
        let log = PowerCutLog::new();
        let dev = PowerCut::new(
            RamDevice::new(Geometry::new(16, 16, 4096, 32).unwrap()),
            None,
        )
        .with_log(log.clone());
        (Flash::new(dev, Barrier::BlockSwitch).unwrap(), log)
    }

    #[test]
    fn barrier_syncs_only_when_the_written_block_changes() {
        let (mut f, log) = logged();
        f.write(0, &[0; 16]).unwrap();
        f.write(16, &[0; 16]).unwrap();
        f.write(4096, &[0; 16]).unwrap();
        f.erase(8192, 4096).unwrap();
        let syncs = log
            .entries()
            .iter()
            .filter(|e| **e == LogEntry::Sync)
            .count();
        assert_eq!(
            syncs, 2,
            "one sync before block 1, one before erasing block 2"
        );
        assert_eq!(f.handle().stats().syncs, 2);
    }

    #[test]
    fn streaming_orders_only_writes_to_existing_blocks() {
        let (mut f, log) = logged();
        let h = f.handle();
        f.write(0, &[0; 16]).unwrap(); // an existing (metadata) block
        h.set_streaming(true);
        // New data blocks: erased and filled in any order, no sync between them...
        f.erase(4096, 4096).unwrap();
        f.write(4096, &[1; 16]).unwrap();
        f.erase(8192, 4096).unwrap();
        f.write(8192, &[2; 16]).unwrap();
        f.write(4096 + 16, &[1; 16]).unwrap();
        let syncs = |log: &PowerCutLog| {
            log.entries()
                .iter()
                .filter(|e| **e == LogEntry::Sync)
                .count()
        };
        assert_eq!(syncs(&log), 0);
        // ...but the commit to the existing block waits for them.
        f.write(32, &[3; 16]).unwrap();
        assert_eq!(syncs(&log), 1);
        let entries = log.entries();
        let sync_at = entries.iter().position(|e| *e == LogEntry::Sync).unwrap();
        assert!(matches!(
            entries[sync_at + 1],
            LogEntry::Program { offset: 32, .. }
        ));
        h.set_streaming(false);
        // Outside streaming the strict rule is back.
        f.write(12288, &[4; 16]).unwrap();
        assert_eq!(syncs(&log), 2);
    }

    #[test]
    fn no_barrier_never_syncs() {
        let dev = RamDevice::new(Geometry::new(16, 16, 4096, 32).unwrap());
        let mut f: Flash<_> = Flash::new(dev, Barrier::None).unwrap();
        f.write(0, &[0; 16]).unwrap();
        f.write(8192, &[0; 16]).unwrap();
        assert_eq!(f.handle().stats().syncs, 0);
        assert_eq!(f.handle().stats().programmed, 32);
    }

    #[test]
    fn device_errors_are_kept_for_the_caller() {
        let dev = RamDevice::new(Geometry::new(16, 16, 4096, 32).unwrap());
        let mut f: Flash<_> = Flash::new(dev, Barrier::None).unwrap();
        assert!(f.write(32 * 4096, &[0; 16]).is_err());
        assert!(matches!(
            f.handle().take_error(),
            Some(mailbag_hal::Error::OutOfBounds)
        ));
    }

    #[test]
    fn rejects_geometry_that_does_not_fit() {
        let dev = RamDevice::new(Geometry::new(16, 16, 65536, 32).unwrap());
        assert!(Flash::<_, 0>::new(dev, Barrier::None).is_err());
        let tiny = RamDevice::new(Geometry::new(16, 16, 4096, 4).unwrap());
        assert!(Flash::<_, 0>::new(tiny, Barrier::None).is_err());
    }
}
