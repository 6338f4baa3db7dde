//! [`SpoolError`]: why a spool operation failed, in terms the SMTP layer can map to replies.

use std::fmt;

use super::record::RecordError;

/// Why a spool operation failed.
#[derive(Debug)]
pub enum SpoolError {
    /// `max-messages` reached (SMTP: 452 4.3.1).
    TooManyMessages,
    /// `max-bytes` reached or the device is full (SMTP: 452 4.3.1).
    Full,
    /// The per-domain quota of this domain is reached (SMTP: 452 4.2.2).
    DomainQuota(String),
    /// No such message.
    NotFound,
    /// The image holds no mailbag spool (nothing was changed).
    NotASpool(String),
    /// The spool was written by a newer mailbag (nothing was changed).
    NewerFormat(u8),
    /// A format-1 spool opened read-only: it must be converted first (nothing was changed).
    NeedsMigration,
    /// A record or body failed its checksum.
    Corrupt(String),
    /// The spool is open read-only.
    ReadOnly,
    /// The device or filesystem failed (SMTP: 451 4.3.0).
    Io(String),
}

impl SpoolError {
    /// True for "no room now, try later" errors (SMTP 452).
    pub fn is_capacity(&self) -> bool {
        matches!(
            self,
            SpoolError::TooManyMessages | SpoolError::Full | SpoolError::DomainQuota(_)
        )
    }
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::TooManyMessages => {
                f.write_str("spool holds its maximum number of messages")
            }
            SpoolError::Full => f.write_str("spool is full"),
            SpoolError::DomainQuota(d) => write!(f, "quota for domain {d} is used up"),
            SpoolError::NotFound => f.write_str("no such message"),
            SpoolError::NotASpool(why) => write!(f, "not a mailbag spool: {why}"),
            SpoolError::NewerFormat(v) => write!(
                f,
                "spool format {v} was written by a newer mailbag (this build reads up to {})",
                super::record::FORMAT_VERSION
            ),
            SpoolError::NeedsMigration => f.write_str(
                "spool format 1 must be converted before it can be read this way \
                 (`mailbag spool migrate IMAGE`, or start the daemon on it)",
            ),
            SpoolError::Corrupt(why) => write!(f, "spool data damaged: {why}"),
            SpoolError::ReadOnly => f.write_str("spool is open read-only"),
            SpoolError::Io(why) => write!(f, "spool I/O error: {why}"),
        }
    }
}

impl std::error::Error for SpoolError {}

impl From<RecordError> for SpoolError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NewerVersion(v) => SpoolError::NewerFormat(v),
            other => SpoolError::Corrupt(other.to_string()),
        }
    }
}
