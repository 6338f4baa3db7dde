//! The `[policy]` configuration section.

use serde::{Deserialize, Serialize};

/// `[policy]`: which mail is accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyConfig {
    /// Domains mailbag accepts mail for (never an open relay: empty accepts nothing).
    pub domains: Vec<String>,
    /// Optional recipient lists, as `local@domain`: if a domain has any entry, only those
    /// local parts are accepted there (ASCII case-insensitive; `user+tag` matches `user`).
    pub recipients: Vec<String>,
}
