//! mailbag-hal: the only code in mailbag that touches hardware.
//!
//! It offers three abstractions with written contracts:
//!
//! - [`BlockDevice`]: a flash-like device (read / program / erase / sync) that the spool's
//!   littlefs2 filesystem sits on. Implementations: [`RamDevice`] (tests), [`FileDevice`] (a
//!   fixed-size image file, the default on a router), [`MtdDevice`] (a raw `/dev/mtdN`
//!   partition) and [`PowerCut`] (a fault injector that simulates a power cut at any point).
//! - [`Clock`]: a monotonic clock that never fails, as `embassy_time::Instant`s:
//!   [`SystemClock`] for the daemon, [`ManualClock`] advanced by hand in tests.
//! - [`Led`]: an LED of the kernel's LED class (`/sys/class/leds/NAME`): off, on, blinking.
//!
//! Nothing here panics on bad input: out-of-range or misaligned requests return
//! [`Error::OutOfBounds`] / [`Error::Misaligned`].

mod clock;
mod device;
mod file;
mod led;
mod mtd;
mod powercut;
mod ram;

pub use clock::{Clock, ManualClock, SystemClock};
pub use device::{BlockDevice, Error, Geometry};
pub use file::FileDevice;
pub use led::{LEDS_DIR, Led, LedMode};
pub use mtd::MtdDevice;
pub use powercut::{CacheModel, CutPlan, LogEntry, PowerCut, PowerCutLog, Replay};
pub use ram::RamDevice;
