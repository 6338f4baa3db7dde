//! [`FileDevice`]: a fixed-size image file used as flash (the default on a router: an image
//! on the overlay filesystem or on a USB disk).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::device::{BlockDevice, Error, Geometry};

/// Read and program unit of a file image. Files have no real unit; 16 keeps littlefs's
/// padding small while staying a divisor of every erase size we use.
pub const FILE_IO_UNIT: u32 = 16;

/// A fixed-size image file accessed with `pread`/`pwrite`.
///
/// `erase` does not change the bytes (littlefs does not depend on the erased value, and
/// rewriting a block with 0xFF would double the writes that reach the disk). `sync` is
/// `fdatasync`: only after it returns are earlier writes durable.
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    geometry: Geometry,
}

impl FileDevice {
    /// Creates a new image of `size` bytes (a multiple of `erase_size`); fails if `path`
    /// already exists, so an existing spool is never overwritten by accident.
    ///
    /// Every byte is written once (zeros), so the file has no holes: a write into a hole
    /// makes the host filesystem allocate, and then every `fdatasync` must commit that
    /// allocation through its journal (measured on ext4: 3 ms per sync instead of 0.1 ms).
    pub fn create(path: &Path, size: u64, erase_size: u32) -> Result<Self, Error> {
        let geometry = geometry_for(size, erase_size)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < size {
            let n = zeros.len().min((size - at) as usize);
            if let Err(e) = file.write_all_at(&zeros[..n], at) {
                drop(file);
                let _ = std::fs::remove_file(path);
                return Err(e.into());
            }
            at += n as u64;
        }
        file.sync_all()?;
        sync_parent_dir(path)?;
        Ok(Self { file, geometry })
    }

    /// Opens an existing image; its length must be a multiple of `erase_size`.
    pub fn open(path: &Path, erase_size: u32) -> Result<Self, Error> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        let geometry = geometry_for(size, erase_size)?;
        Ok(Self { file, geometry })
    }

    /// Opens an existing image read-only (e.g. `mailbag spool inspect` on a copied image).
    /// Programs and erases then fail with an I/O error.
    pub fn open_read_only(path: &Path, erase_size: u32) -> Result<Self, Error> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        let geometry = geometry_for(size, erase_size)?;
        Ok(Self { file, geometry })
    }
}

fn geometry_for(size: u64, erase_size: u32) -> Result<Geometry, Error> {
    if erase_size == 0 || !size.is_multiple_of(u64::from(erase_size)) {
        return Err(Error::Unsupported(format!(
            "image size {size} is not a multiple of the block size {erase_size}"
        )));
    }
    let blocks = u32::try_from(size / u64::from(erase_size))
        .map_err(|_| Error::Unsupported(format!("image size {size} is too large")))?;
    Geometry::new(FILE_IO_UNIT, FILE_IO_UNIT, erase_size, blocks)
        .ok_or_else(|| Error::Unsupported(format!("image of {size} bytes is too small")))
}

/// Checked `pread` for devices backed by a file descriptor (image files and MTD).
pub(crate) fn read_at(
    file: &File,
    geometry: &Geometry,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), Error> {
    geometry.check(offset, buf.len() as u64, geometry.read_size)?;
    file.read_exact_at(buf, offset)?;
    Ok(())
}

/// Checked `pwrite` for devices backed by a file descriptor (image files and MTD).
pub(crate) fn program_at(
    file: &File,
    geometry: &Geometry,
    offset: u64,
    data: &[u8],
) -> Result<(), Error> {
    geometry.check(offset, data.len() as u64, geometry.program_size)?;
    file.write_all_at(data, offset)?;
    Ok(())
}

/// Makes the new directory entry itself durable (a created file can vanish otherwise).
fn sync_parent_dir(path: &Path) -> Result<(), Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()?;
    Ok(())
}

impl BlockDevice for FileDevice {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        read_at(&self.file, &self.geometry, offset, buf)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        program_at(&self.file, &self.geometry, offset, data)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        self.geometry.check(offset, len, self.geometry.erase_size)
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.file.sync_data()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mailbag-hal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn data_survives_reopen() {
        let path = tmp("reopen");
        let mut d = FileDevice::create(&path, 64 * 1024, 4096).unwrap();
        assert_eq!(d.geometry().block_count, 16);
        // Allocated up front: no holes for later writes to fill in.
        use std::os::unix::fs::MetadataExt;
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= 64 * 1024);
        d.program(4096, b"0123456789abcdef").unwrap();
        d.sync().unwrap();
        drop(d);
        let mut d = FileDevice::open(&path, 4096).unwrap();
        let mut buf = [0u8; 16];
        d.read(4096, &mut buf).unwrap();
        assert_eq!(&buf, b"0123456789abcdef");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn create_refuses_to_overwrite_and_checks_size() {
        let path = tmp("exists");
        FileDevice::create(&path, 8192, 4096).unwrap();
        assert!(matches!(
            FileDevice::create(&path, 8192, 4096),
            Err(Error::Io(_))
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            FileDevice::create(&path, 5000, 4096),
            Err(Error::Unsupported(_))
        ));
        assert!(!path.exists());
    }

    #[test]
    fn read_only_device_refuses_writes() {
        let path = tmp("ro");
        FileDevice::create(&path, 8192, 4096).unwrap();
        let mut d = FileDevice::open_read_only(&path, 4096).unwrap();
        let mut buf = [0u8; 16];
        d.read(0, &mut buf).unwrap();
        assert!(d.program(0, &[0; 16]).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let path = tmp("range");
        let mut d = FileDevice::create(&path, 8192, 4096).unwrap();
        assert!(matches!(d.program(8192, &[0; 16]), Err(Error::OutOfBounds)));
        assert!(matches!(d.read(1, &mut [0; 16]), Err(Error::Misaligned)));
        std::fs::remove_file(&path).unwrap();
    }
}
