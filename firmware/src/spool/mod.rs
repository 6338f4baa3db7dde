//! The spool: a littlefs2 filesystem on a `BlockDevice` holding queued messages.

pub mod config;

pub use config::SpoolConfig;
