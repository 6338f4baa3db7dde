//! The spool: accepted messages on a power-loss-safe littlefs2 filesystem over a
//! `mailbag_hal::BlockDevice`.
//!
//! - [`flash`]: the littlefs2 storage driver, which keeps writes ordered on devices with a
//!   volatile cache (see its docs for why that matters);
//! - [`record`]: versioned, checksummed, endian-independent postcard records;
//! - [`message`]: ids, envelopes and delivery state;
//! - [`store`]: the queue itself — streaming enqueue, list, read, update, remove, and
//!   recovery at mount.
//!
//! Invariant: [`Spool::commit`] returns only once the message and its envelope are durable;
//! after any crash or power cut every committed message is found again at mount and nothing
//! partially written is visible. No operation panics on what it reads from flash.

pub mod config;
mod crc;
mod error;
pub mod flash;
pub mod message;
pub mod open;
pub mod record;
mod store;
#[cfg(test)]
mod tests;

pub use config::SpoolConfig;
pub use crc::crc32;
pub use error::SpoolError;
pub use flash::{Barrier, Flash, FlashStats};
pub use message::{Envelope, MessageId, MessageMeta, RcptStatus, Recipient};
pub use store::{Access, IndexEntry, Limits, Pending, Spool, Usage, fnv1a, format};

/// The filesystem state buffers a mounted spool needs (allocate once, keep for the mount).
pub type Allocation<D> = littlefs2::fs::Allocation<Flash<D>>;
