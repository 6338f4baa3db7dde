//! **spool**: the thread that owns the flash device and the mounted [`crate::spool::Spool`]
//! ([`thread`]). Everyone else holds a [`SpoolHandle`] ([`handle`]: async requests from
//! the runtime, bounded jobs from the admin page's threads) and a [`GaugeCapacity`] (the
//! fill level the SMTP policy checks). It imports no other daemon subsystem.

pub mod handle;
pub mod thread;

pub use handle::{
    BODY_CHUNK, Chunk, Gauge, GaugeCapacity, GaugeValues, MessageSlot, SpoolHandle, SpoolJob,
    SpoolWriter,
};
pub use thread::start;
