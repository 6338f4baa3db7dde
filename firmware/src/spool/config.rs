//! The `[spool]` configuration section.

use serde::{Deserialize, Serialize};

/// `[spool]`: where queued mail is kept and how much of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SpoolConfig {
    /// Spool device: a path to an image file (created on first start) or `/dev/mtdN`.
    pub path: String,
    /// Size of a new image file in bytes (ignored for MTD devices).
    pub size: u64,
    /// Most messages held at once.
    pub max_messages: u32,
    /// Most body bytes held at once (the device size bounds it too).
    pub max_bytes: u64,
    /// Most body bytes held for one recipient domain (0 = no per-domain limit).
    pub max_bytes_per_domain: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            path: "/srv/mailbag/spool.img".into(),
            size: 16 * 1024 * 1024,
            max_messages: 4096,
            max_bytes: 14 * 1024 * 1024,
            max_bytes_per_domain: 0,
        }
    }
}
