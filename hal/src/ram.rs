//! [`RamDevice`]: flash simulated in memory, for tests and the power-cut injector.

use crate::device::{BlockDevice, Error, Geometry};

/// A flash device held in a `Vec<u8>` (allocated once at construction).
///
/// Behaves like NOR flash: erase sets bytes to 0xFF; `sync` is a no-op because every
/// program is "durable" immediately (wrap it in [`crate::PowerCut`] to model a volatile
/// write cache).
#[derive(Clone, Debug)]
pub struct RamDevice {
    geometry: Geometry,
    data: Vec<u8>,
}

impl RamDevice {
    /// A fresh, fully erased device.
    pub fn new(geometry: Geometry) -> Self {
        let len = usize::try_from(geometry.capacity()).unwrap_or(usize::MAX);
        Self {
            geometry,
            data: vec![0xff; len],
        }
    }

    /// A device holding `image` (e.g. a spool image read from disk). `image.len()` must be
    /// a multiple of `erase_size`.
    pub fn from_image(
        read_size: u32,
        program_size: u32,
        erase_size: u32,
        image: Vec<u8>,
    ) -> Option<Self> {
        let blocks = u32::try_from(image.len() / erase_size as usize).ok()?;
        let geometry = Geometry::new(read_size, program_size, erase_size, blocks)?;
        (geometry.capacity() == image.len() as u64).then_some(Self {
            geometry,
            data: image,
        })
    }

    /// The raw bytes of the device.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The raw bytes of the device, mutable (tests corrupt records through this).
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl BlockDevice for RamDevice {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.geometry
            .check(offset, buf.len() as u64, self.geometry.read_size)?;
        let at = offset as usize;
        buf.copy_from_slice(&self.data[at..at + buf.len()]);
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.geometry
            .check(offset, data.len() as u64, self.geometry.program_size)?;
        let at = offset as usize;
        // NOR semantics: programming can only clear bits.
        for (dst, src) in self.data[at..at + data.len()].iter_mut().zip(data) {
            *dst &= *src;
        }
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        self.geometry.check(offset, len, self.geometry.erase_size)?;
        let at = offset as usize;
        self.data[at..at + len as usize].fill(0xff);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> RamDevice {
        RamDevice::new(Geometry::new(16, 16, 256, 4).unwrap())
    }

    #[test]
    fn erase_program_read_round_trip() {
        let mut d = dev();
        d.program(256, &[0x5a; 32]).unwrap();
        let mut buf = [0u8; 48];
        d.read(256, &mut buf).unwrap();
        assert_eq!(&buf[..32], &[0x5a; 32]);
        assert_eq!(&buf[32..], &[0xff; 16]);
        d.erase(256, 256).unwrap();
        d.read(256, &mut buf).unwrap();
        assert_eq!(buf, [0xff; 48]);
    }

    #[test]
    fn program_without_erase_only_clears_bits() {
        let mut d = dev();
        d.program(0, &[0xf0; 16]).unwrap();
        d.program(0, &[0x0f; 16]).unwrap();
        let mut buf = [1u8; 16];
        d.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0; 16]);
    }

    #[test]
    fn rejects_out_of_range_and_misaligned() {
        let mut d = dev();
        assert!(matches!(
            d.read(1024, &mut [0; 16]),
            Err(Error::OutOfBounds)
        ));
        assert!(matches!(d.program(3, &[0; 16]), Err(Error::Misaligned)));
        assert!(matches!(d.erase(0, 100), Err(Error::Misaligned)));
    }

    #[test]
    fn from_image_keeps_bytes_and_checks_size() {
        let img = vec![7u8; 1024];
        let mut d = RamDevice::from_image(16, 16, 256, img).unwrap();
        let mut buf = [0u8; 16];
        d.read(1008, &mut buf).unwrap();
        assert_eq!(buf, [7; 16]);
        assert!(RamDevice::from_image(16, 16, 256, vec![0; 1000]).is_none());
    }
}
