//! [`MtdDevice`]: a raw Linux MTD partition (`/dev/mtdN`), for routers with a spare flash
//! partition. Erase goes through the `MEMERASE` ioctl; geometry comes from `MEMGETINFO`.
//!
//! This file holds the crate's only `unsafe` code: two `ioctl` calls on a file descriptor
//! we own, each with a pointer to a correctly sized, initialised `#[repr(C)]` struct.
//! NAND bad-block handling is not done here: use NOR partitions or image files on UBIFS.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::device::{BlockDevice, Error, Geometry};

/// `struct mtd_info_user` from `<mtd/mtd-abi.h>`.
#[repr(C)]
#[derive(Default)]
struct MtdInfoUser {
    kind: u8,
    flags: u32,
    size: u32,
    erasesize: u32,
    writesize: u32,
    oobsize: u32,
    padding: u64,
}

/// `struct erase_info_user` from `<mtd/mtd-abi.h>`.
#[repr(C)]
struct EraseInfoUser {
    start: u32,
    length: u32,
}

/// `MTD_WRITEABLE` flag of `mtd_info_user.flags`.
const MTD_WRITEABLE: u32 = 0x400;

// The _IOC encoding differs between architectures: MIPS and PowerPC use 3 direction bits
// (none=1, read=2, write=4) at bit 29; everything else 2 bits (write=1, read=2) at bit 30.
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64"
))]
const fn ioc(read: bool, nr: u64, size: u64) -> u64 {
    let dir: u64 = if read { 2 } else { 4 };
    (dir << 29) | (size << 16) | ((b'M' as u64) << 8) | nr
}
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64"
)))]
const fn ioc(read: bool, nr: u64, size: u64) -> u64 {
    let dir: u64 = if read { 2 } else { 1 };
    (dir << 30) | (size << 16) | ((b'M' as u64) << 8) | nr
}

const MEMGETINFO: u64 = ioc(true, 1, size_of::<MtdInfoUser>() as u64);
const MEMERASE: u64 = ioc(false, 2, size_of::<EraseInfoUser>() as u64);

/// A raw MTD character device.
#[derive(Debug)]
pub struct MtdDevice {
    file: File,
    geometry: Geometry,
}

impl MtdDevice {
    /// Opens `/dev/mtdN` for read and write and reads its geometry.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut info = MtdInfoUser::default();
        // SAFETY: MEMGETINFO writes exactly one `mtd_info_user` through the pointer; `info` is
        // a live, initialised #[repr(C)] value of that layout and `file` owns the descriptor.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                MEMGETINFO as _,
                &mut info as *mut MtdInfoUser,
            )
        };
        if rc != 0 {
            return Err(Error::Unsupported(format!(
                "{} is not an MTD device: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        if info.flags & MTD_WRITEABLE == 0 {
            return Err(Error::Unsupported(format!(
                "{} is read-only",
                path.display()
            )));
        }
        let write = info.writesize.max(1);
        let geometry = Geometry::new(
            write,
            write,
            info.erasesize,
            info.size / info.erasesize.max(1),
        )
        .ok_or_else(|| {
            Error::Unsupported(format!("{} has an unusable geometry", path.display()))
        })?;
        Ok(Self { file, geometry })
    }
}

impl BlockDevice for MtdDevice {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        crate::file::read_at(&self.file, &self.geometry, offset, buf)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        crate::file::program_at(&self.file, &self.geometry, offset, data)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        self.geometry.check(offset, len, self.geometry.erase_size)?;
        // check() bounded offset+len by the capacity, which came from a u32.
        let erase = EraseInfoUser {
            start: offset as u32,
            length: len as u32,
        };
        // SAFETY: MEMERASE reads one `erase_info_user` through the pointer; `erase` is live
        // and initialised for the duration of the call.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                MEMERASE as _,
                &erase as *const EraseInfoUser,
            )
        };
        if rc != 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Error> {
        // mtdchar writes go to the chip before write() returns; fsync is still the contract.
        self.file.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        assert_eq!(size_of::<MtdInfoUser>(), 32);
        assert_eq!(size_of::<EraseInfoUser>(), 8);
        #[cfg(not(any(
            target_arch = "mips",
            target_arch = "mips64",
            target_arch = "powerpc",
            target_arch = "powerpc64"
        )))]
        {
            assert_eq!(MEMGETINFO, 0x8020_4d01);
            assert_eq!(MEMERASE, 0x4008_4d02);
        }
        #[cfg(any(target_arch = "mips", target_arch = "mips64"))]
        {
            assert_eq!(MEMGETINFO, 0x4020_4d01);
            assert_eq!(MEMERASE, 0x8008_4d02);
        }
    }

    #[test]
    fn a_regular_file_is_refused_with_a_clear_error() {
        let path = std::env::temp_dir().join(format!("mailbag-mtd-{}", std::process::id()));
        std::fs::write(&path, [0u8; 4096]).unwrap();
        let err = MtdDevice::open(&path).unwrap_err();
        assert!(err.to_string().contains("not an MTD device"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    /// Runs only where an MTD test device exists (e.g. `modprobe mtdram total_size=8192
    /// erase_size=64`); set MAILBAG_TEST_MTD=/dev/mtdN to enable it.
    #[test]
    fn mtdram_round_trip_when_available() {
        let Some(path) = std::env::var_os("MAILBAG_TEST_MTD") else {
            eprintln!("skipped: MAILBAG_TEST_MTD not set (needs the mtdram kernel module)");
            return;
        };
        let mut d = MtdDevice::open(Path::new(&path)).unwrap();
        let g = d.geometry();
        d.erase(0, u64::from(g.erase_size)).unwrap();
        let data = vec![0x42u8; g.program_size as usize];
        d.program(0, &data).unwrap();
        d.sync().unwrap();
        let mut buf = vec![0u8; g.read_size as usize];
        d.read(0, &mut buf).unwrap();
        assert_eq!(buf[0], 0x42);
    }
}
