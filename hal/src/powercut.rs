//! [`PowerCut`]: a fault-injecting wrapper that simulates losing power at any point, and
//! [`PowerCutLog`], which records every operation so that the device's contents after a
//! cut at *any* point can be rebuilt without re-running the workload.
//!
//! Two models of what survives a cut are offered:
//! - **ordered** ([`CacheModel::WriteThrough`]): every program/erase before the cut
//!   landed, as on raw NOR flash;
//! - **volatile cache** ([`CacheModel::Volatile`]): only what came before the last
//!   `sync` is certain; each write since then may or may not have landed, in any
//!   combination, as with a file image in the page cache or a disk's write cache.
//!
//! In both, the operation at the cut can be torn: part new bytes, part old.

use std::sync::{Arc, Mutex, PoisonError};

use crate::device::{BlockDevice, Error, Geometry};

/// When the simple injector cuts power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutPlan {
    /// How many program/erase operations succeed; the next one is cut.
    pub after_ops: u64,
    /// Whether the cut operation is torn (its first half applied) instead of lost whole.
    pub tear: bool,
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    /// `program(offset, data)`.
    Program {
        /// Byte offset.
        offset: u64,
        /// Bytes written.
        data: Vec<u8>,
    },
    /// `erase(offset, len)`.
    Erase {
        /// Byte offset.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `sync()` returned.
    Sync,
    /// A marker the workload inserted (e.g. "enqueue #7 returned"); not a device operation.
    Mark(u64),
}

/// Shared, cloneable recording of a device's operations.
#[derive(Clone, Debug, Default)]
pub struct PowerCutLog {
    entries: Arc<Mutex<Vec<LogEntry>>>,
}

impl PowerCutLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a workload marker.
    pub fn mark(&self, tag: u64) {
        self.push(LogEntry::Mark(tag));
    }

    /// A copy of everything recorded so far.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, e: LogEntry) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e);
    }
}

/// What survives a power cut, see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheModel {
    /// Every write before the cut landed.
    WriteThrough,
    /// Writes since the last sync each landed or not.
    Volatile,
}

/// Rebuilds device images after a cut at increasing points of a recorded log.
///
/// Replay semantics: erase fills with 0xFF, program overwrites.
pub struct Replay<'a> {
    entries: &'a [LogEntry],
    durable: Vec<u8>,
    /// Entries `[0, synced)` are applied to `durable`; entry `synced - 1` is a Sync (or 0).
    synced: usize,
}

impl<'a> Replay<'a> {
    /// Starts from `base`, the image before the first entry.
    pub fn new(entries: &'a [LogEntry], base: Vec<u8>) -> Self {
        Self {
            entries,
            durable: base,
            synced: 0,
        }
    }

    /// The image after power is cut while entry `cut` (a Program or Erase) runs.
    ///
    /// `keep(i)` decides, under [`CacheModel::Volatile`], whether unsynced entry `i` landed.
    /// Calls must come with non-decreasing `cut`.
    pub fn crash_image(
        &mut self,
        cut: usize,
        model: CacheModel,
        tear: bool,
        keep: &mut dyn FnMut(usize) -> bool,
    ) -> Vec<u8> {
        let last_sync = self.entries[..cut]
            .iter()
            .rposition(|e| *e == LogEntry::Sync)
            .map_or(0, |i| i + 1);
        let from = self.synced;
        for e in &self.entries[from..last_sync.max(from)] {
            apply(&mut self.durable, e, usize::MAX);
        }
        self.synced = self.synced.max(last_sync);
        let mut image = self.durable.clone();
        for (i, e) in self.entries.iter().enumerate().take(cut).skip(self.synced) {
            if model == CacheModel::WriteThrough || keep(i) {
                apply(&mut image, e, usize::MAX);
            }
        }
        if tear && let Some(e) = self.entries.get(cut) {
            let half = match e {
                LogEntry::Program { data, .. } => data.len() / 2,
                LogEntry::Erase { len, .. } => (*len / 2) as usize,
                _ => 0,
            };
            apply(&mut image, e, half);
        }
        image
    }
}

fn apply(image: &mut [u8], e: &LogEntry, limit: usize) {
    match e {
        LogEntry::Program { offset, data } => {
            let n = data.len().min(limit);
            let at = *offset as usize;
            image[at..at + n].copy_from_slice(&data[..n]);
        }
        LogEntry::Erase { offset, len } => {
            let n = (*len as usize).min(limit);
            let at = *offset as usize;
            image[at..at + n].fill(0xff);
        }
        LogEntry::Sync | LogEntry::Mark(_) => {}
    }
}

/// A device wrapper that records operations and/or cuts power after a planned number of
/// program/erase operations. After the cut every operation fails with [`Error::PowerCut`].
#[derive(Debug)]
pub struct PowerCut<D> {
    inner: D,
    plan: Option<CutPlan>,
    ops: u64,
    dead: bool,
    log: Option<PowerCutLog>,
}

impl<D: BlockDevice> PowerCut<D> {
    /// Wraps `inner`; with `plan = None` it never cuts.
    pub fn new(inner: D, plan: Option<CutPlan>) -> Self {
        Self {
            inner,
            plan,
            ops: 0,
            dead: false,
            log: None,
        }
    }

    /// Also records every operation into `log`.
    pub fn with_log(mut self, log: PowerCutLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Program/erase operations performed so far (including a cut one).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Whether power has been cut.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The wrapped device (to read what survived).
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// Counts one program/erase; returns `Some(tear)` when this operation is the cut.
    fn step(&mut self) -> Result<Option<bool>, Error> {
        if self.dead {
            return Err(Error::PowerCut);
        }
        self.ops += 1;
        match self.plan {
            Some(p) if self.ops > p.after_ops => {
                self.dead = true;
                Ok(Some(p.tear))
            }
            _ => Ok(None),
        }
    }
}

impl<D: BlockDevice> BlockDevice for PowerCut<D> {
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        if self.dead {
            return Err(Error::PowerCut);
        }
        self.inner.read(offset, buf)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.geometry()
            .check(offset, data.len() as u64, self.geometry().program_size)?;
        if let Some(tear) = self.step()? {
            if tear {
                let unit = self.geometry().program_size as usize;
                let half = (data.len() / 2) / unit * unit;
                self.inner.program(offset, &data[..half])?;
            }
            return Err(Error::PowerCut);
        }
        if let Some(log) = &self.log {
            log.push(LogEntry::Program {
                offset,
                data: data.to_vec(),
            });
        }
        self.inner.program(offset, data)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        self.geometry()
            .check(offset, len, self.geometry().erase_size)?;
        if let Some(tear) = self.step()? {
            let unit = u64::from(self.geometry().erase_size);
            let half = (len / 2) / unit * unit;
            if tear && half > 0 {
                self.inner.erase(offset, half)?;
            }
            return Err(Error::PowerCut);
        }
        if let Some(log) = &self.log {
            log.push(LogEntry::Erase { offset, len });
        }
        self.inner.erase(offset, len)
    }

    fn sync(&mut self) -> Result<(), Error> {
        if self.dead {
            return Err(Error::PowerCut);
        }
        self.inner.sync()?;
        if let Some(log) = &self.log {
            log.push(LogEntry::Sync);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RamDevice;

    fn ram() -> RamDevice {
        RamDevice::new(Geometry::new(16, 16, 256, 4).unwrap())
    }

    #[test]
    fn cuts_after_planned_ops_and_stays_dead() {
        let mut d = PowerCut::new(
            ram(),
            Some(CutPlan {
                after_ops: 2,
                tear: false,
            }),
        );
        d.program(0, &[1; 16]).unwrap();
        d.erase(256, 256).unwrap();
        assert!(matches!(d.program(16, &[2; 16]), Err(Error::PowerCut)));
        assert!(d.is_dead());
        assert!(matches!(d.read(0, &mut [0; 16]), Err(Error::PowerCut)));
        assert!(matches!(d.sync(), Err(Error::PowerCut)));
        let mut inner = d.into_inner();
        let mut buf = [0u8; 16];
        inner.read(16, &mut buf).unwrap();
        assert_eq!(buf, [0xff; 16], "the cut program must not land");
    }

    #[test]
    fn torn_program_lands_half() {
        let mut d = PowerCut::new(
            ram(),
            Some(CutPlan {
                after_ops: 0,
                tear: true,
            }),
        );
        assert!(d.program(0, &[0; 64]).is_err());
        let mut inner = d.into_inner();
        let mut buf = [0u8; 64];
        inner.read(0, &mut buf).unwrap();
        assert_eq!(&buf[..32], &[0; 32]);
        assert_eq!(&buf[32..], &[0xff; 32]);
    }

    #[test]
    fn replay_models_ordered_and_volatile_caches() {
        let log = PowerCutLog::new();
        let mut d = PowerCut::new(ram(), None).with_log(log.clone());
        d.program(0, &[1; 16]).unwrap();
        d.sync().unwrap();
        log.mark(7);
        d.program(16, &[2; 16]).unwrap();
        d.program(32, &[3; 32]).unwrap();
        let entries = log.entries();
        assert_eq!(entries.len(), 5);
        let base = vec![0xff; 1024];

        // Cut while entry 4 (the 32-byte program) runs, torn, write-through.
        let mut r = Replay::new(&entries, base.clone());
        let img = r.crash_image(4, CacheModel::WriteThrough, true, &mut |_| false);
        assert_eq!(&img[0..16], &[1; 16]);
        assert_eq!(&img[16..32], &[2; 16]);
        assert_eq!(&img[32..48], &[3; 16]);
        assert_eq!(&img[48..64], &[0xff; 16]);

        // Volatile: the unsynced program may be dropped; the synced one never is.
        let mut r = Replay::new(&entries, base);
        let img = r.crash_image(4, CacheModel::Volatile, false, &mut |_| false);
        assert_eq!(&img[0..16], &[1; 16]);
        assert_eq!(&img[16..32], &[0xff; 16]);
    }
}
