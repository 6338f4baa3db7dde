//! The [`BlockDevice`] trait and its error type.

use std::fmt;

/// Shape of a block device. All sizes are in bytes.
///
/// Invariants (checked by [`Geometry::new`]): every size is non-zero, `erase_size` is a
/// multiple of both `read_size` and `program_size`, and `block_count >= 2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Smallest unit and alignment of a read.
    pub read_size: u32,
    /// Smallest unit and alignment of a program (write).
    pub program_size: u32,
    /// Size and alignment of an erase block.
    pub erase_size: u32,
    /// Number of erase blocks.
    pub block_count: u32,
}

impl Geometry {
    /// Checked constructor; returns `None` when the invariants above do not hold.
    pub fn new(
        read_size: u32,
        program_size: u32,
        erase_size: u32,
        block_count: u32,
    ) -> Option<Self> {
        let ok = read_size > 0
            && program_size > 0
            && erase_size > 0
            && erase_size.is_multiple_of(read_size)
            && erase_size.is_multiple_of(program_size)
            && block_count >= 2;
        ok.then_some(Self {
            read_size,
            program_size,
            erase_size,
            block_count,
        })
    }

    /// Total capacity in bytes.
    pub fn capacity(&self) -> u64 {
        u64::from(self.erase_size) * u64::from(self.block_count)
    }

    /// Checks that `[offset, offset+len)` lies inside the device and is aligned to `unit`.
    pub fn check(&self, offset: u64, len: u64, unit: u32) -> Result<(), Error> {
        let end = offset.checked_add(len).ok_or(Error::OutOfBounds)?;
        if end > self.capacity() {
            return Err(Error::OutOfBounds);
        }
        if !offset.is_multiple_of(u64::from(unit)) || !len.is_multiple_of(u64::from(unit)) {
            return Err(Error::Misaligned);
        }
        Ok(())
    }
}

/// Why a block-device operation failed.
#[derive(Debug)]
pub enum Error {
    /// The request reaches past the end of the device.
    OutOfBounds,
    /// The request is not aligned to the device's read/program/erase unit.
    Misaligned,
    /// The device lost power (only [`crate::PowerCut`] produces this); every later
    /// operation fails the same way.
    PowerCut,
    /// The operating system reported an error.
    Io(std::io::Error),
    /// The device is not usable as configured (wrong size, not an MTD, ...).
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfBounds => f.write_str("access beyond the end of the device"),
            Error::Misaligned => f.write_str("access not aligned to the device's unit"),
            Error::PowerCut => f.write_str("device lost power"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Unsupported(why) => write!(f, "unsupported device: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// A flash-like block device.
///
/// # Contract
///
/// - **Geometry** is fixed for the life of the value ([`BlockDevice::geometry`]).
/// - **read** fills `buf` from `offset`; `offset` and `buf.len()` are multiples of
///   `read_size` and lie inside the device.
/// - **program** writes `data` at `offset`; `offset` and `data.len()` are multiples of
///   `program_size`. The range must have been erased since it was last programmed
///   (erase-before-program): programming twice without an erase leaves the range's
///   contents undefined (NOR flash ANDs bits; NAND may refuse).
/// - **erase** erases whole blocks: `offset` and `len` are multiples of `erase_size`.
///   After an erase the contents of the range are undefined until programmed (RAM and MTD
///   devices read back 0xFF, file images keep the old bytes). littlefs does not depend on
///   the erased value.
/// - **sync** returns once every earlier program and erase is durable: it survives a power
///   cut. Before `sync` returns, earlier writes may reach the medium in any order or not at
///   all (a file image sits in the page cache; a disk has a write cache). Callers that need
///   ordering between two writes put a `sync` between them.
/// - A failed operation leaves the device usable; only [`Error::PowerCut`] is sticky.
pub trait BlockDevice {
    /// The device's geometry.
    fn geometry(&self) -> Geometry;
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Programs `data` at `offset` (the range must be erased).
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error>;
    /// Erases `len` bytes of whole blocks at `offset`.
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error>;
    /// Makes every earlier program and erase durable.
    fn sync(&mut self) -> Result<(), Error>;
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        (**self).program(offset, data)
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        (**self).erase(offset, len)
    }
    fn sync(&mut self) -> Result<(), Error> {
        (**self).sync()
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for Box<D> {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        (**self).program(offset, data)
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        (**self).erase(offset, len)
    }
    fn sync(&mut self) -> Result<(), Error> {
        (**self).sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_rejects_inconsistent_sizes() {
        assert!(Geometry::new(16, 16, 4096, 16).is_some());
        assert!(Geometry::new(0, 16, 4096, 16).is_none());
        assert!(Geometry::new(16, 48, 4096, 16).is_none());
        assert!(Geometry::new(16, 16, 4096, 1).is_none());
    }

    #[test]
    fn check_catches_bounds_and_alignment() {
        let g = Geometry::new(16, 16, 4096, 4).unwrap();
        assert!(g.check(0, 4096 * 4, 4096).is_ok());
        assert!(matches!(
            g.check(4096, 4096 * 4, 4096),
            Err(Error::OutOfBounds)
        ));
        assert!(matches!(g.check(8, 16, 16), Err(Error::Misaligned)));
        assert!(matches!(g.check(u64::MAX, 16, 16), Err(Error::OutOfBounds)));
    }
}
