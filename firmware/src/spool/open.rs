//! Opening the spool device named in the configuration: a `/dev/mtdN` partition or an
//! image file (created and formatted on first start).

use std::path::Path;

use mailbag_hal::{BlockDevice, Clock, FileDevice, MtdDevice, RamDevice};

use super::error::SpoolError;
use super::flash::{Barrier, SPOOL_BLOCK};
use super::store::format;

/// A spool device of any kind the daemon supports.
pub enum AnyDevice {
    /// An image file (page cache: needs the ordering barrier).
    File(FileDevice),
    /// A raw MTD partition (writes reach the chip in order).
    Mtd(MtdDevice),
    /// An image copied into RAM (inspection: changes never reach the file).
    Ram(RamDevice),
}

impl AnyDevice {
    /// The barrier this kind of device needs (see `flash` module docs).
    pub fn barrier(&self) -> Barrier {
        match self {
            AnyDevice::File(_) => Barrier::BlockSwitch,
            AnyDevice::Mtd(_) | AnyDevice::Ram(_) => Barrier::None,
        }
    }
}

impl BlockDevice for AnyDevice {
    fn geometry(&self) -> mailbag_hal::Geometry {
        match self {
            AnyDevice::File(d) => d.geometry(),
            AnyDevice::Mtd(d) => d.geometry(),
            AnyDevice::Ram(d) => d.geometry(),
        }
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), mailbag_hal::Error> {
        match self {
            AnyDevice::File(d) => d.read(offset, buf),
            AnyDevice::Mtd(d) => d.read(offset, buf),
            AnyDevice::Ram(d) => d.read(offset, buf),
        }
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), mailbag_hal::Error> {
        match self {
            AnyDevice::File(d) => d.program(offset, data),
            AnyDevice::Mtd(d) => d.program(offset, data),
            AnyDevice::Ram(d) => d.program(offset, data),
        }
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), mailbag_hal::Error> {
        match self {
            AnyDevice::File(d) => d.erase(offset, len),
            AnyDevice::Mtd(d) => d.erase(offset, len),
            AnyDevice::Ram(d) => d.erase(offset, len),
        }
    }
    fn sync(&mut self) -> Result<(), mailbag_hal::Error> {
        match self {
            AnyDevice::File(d) => d.sync(),
            AnyDevice::Mtd(d) => d.sync(),
            AnyDevice::Ram(d) => d.sync(),
        }
    }
}

fn is_mtd(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("/dev/mtd"))
}

/// Creates a new image file of `size` bytes and formats it as an empty spool.
pub fn create_image(path: &Path, size: u64, clock: &dyn Clock) -> Result<(), SpoolError> {
    if !size.is_multiple_of(SPOOL_BLOCK as u64) {
        return Err(SpoolError::Io(format!(
            "size {size} is not a multiple of {SPOOL_BLOCK} bytes"
        )));
    }
    let dev = FileDevice::create(path, size, SPOOL_BLOCK as u32)
        .map_err(|e| SpoolError::Io(format!("cannot create {}: {e}", path.display())))?;
    if let Err(e) = format(dev, Barrier::BlockSwitch, clock.unix_seconds()) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Opens the spool device at `path` for the daemon. An image file that does not exist yet
/// is created with `size` bytes and formatted; an existing one is never reformatted.
pub fn open_for_daemon(path: &Path, size: u64, clock: &dyn Clock) -> Result<AnyDevice, SpoolError> {
    if is_mtd(path) {
        return MtdDevice::open(path)
            .map(AnyDevice::Mtd)
            .map_err(|e| SpoolError::Io(e.to_string()));
    }
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| SpoolError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        create_image(path, size, clock)?;
    }
    FileDevice::open(path, SPOOL_BLOCK as u32)
        .map(AnyDevice::File)
        .map_err(|e| SpoolError::Io(format!("cannot open {}: {e}", path.display())))
}

/// Loads a spool image (file or MTD) into RAM for inspection: recovery runs on the copy,
/// the original is never written.
pub fn load_copy(path: &Path) -> Result<AnyDevice, SpoolError> {
    let image = std::fs::read(path)
        .map_err(|e| SpoolError::Io(format!("cannot read {}: {e}", path.display())))?;
    let len = image.len();
    RamDevice::from_image(16, 16, SPOOL_BLOCK as u32, image)
        .map(AnyDevice::Ram)
        .ok_or_else(|| {
            SpoolError::NotASpool(format!(
                "{} bytes is not a whole number of {SPOOL_BLOCK}-byte blocks",
                len
            ))
        })
}
