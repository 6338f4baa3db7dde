//! The spool: accepted messages on a power-loss-safe littlefs2 filesystem over a
//! `mailbag_hal::BlockDevice`, kept as a log of frames in segment files (format 2; the
//! on-flash format, commit protocol, crash cases and reclaim are in `docs/spool.md`).
//!
//! - [`flash`]: the littlefs2 storage driver, which keeps writes ordered on devices with a
//!   volatile cache (see its docs for why that matters);
//! - [`frame`]: the log's frames (pure encode/decode);
//! - [`index`]: what is kept in RAM per message, and the delivery order (pure);
//! - [`segments`]: the segment files and what pins each (pure);
//! - [`store`]: [`Spool`]: mount, reads, listing;
//! - [`writer`]: [`Writer`]: every change, group commit, reclaim;
//! - `replay`, `migrate`, [`v1`]: mount-time replay and the conversion from format 1;
//! - [`record`], [`message`]: the header record and a message's envelope and state.
//!
//! Invariants: a sender may be told 250 only after the [`Writer::sync`] that follows its
//! [`Writer::commit`]; after any crash or power cut every committed message is found again
//! at mount, and nothing partially written is visible. The cost of one operation on one
//! message does not grow with the number of messages held. No operation panics on what it
//! reads from flash.

pub mod config;
mod crc;
mod error;
pub mod flash;
pub mod frame;
pub mod index;
pub mod message;
mod migrate;
pub mod open;
mod read;
mod reclaim;
pub mod record;
mod replay;
pub mod segments;
mod store;
#[cfg(test)]
mod tests;
pub mod v1;
mod writer;

pub use config::SpoolConfig;
pub use crc::crc32;
pub use error::SpoolError;
pub use flash::{Barrier, Flash, FlashStats};
pub use frame::CHUNK;
pub use message::{Envelope, MessageId, MessageMeta, RcptStatus, Recipient};
pub use read::SpoolRead;
pub use store::{Access, IndexEntry, Limits, Spool, Usage, address_key, domain_key, fnv1a, format};
pub use writer::{Pending, Writer};

/// The filesystem state buffers a mounted spool needs (allocate once, keep for the mount).
pub type Allocation<D> = littlefs2::fs::Allocation<Flash<D>>;
