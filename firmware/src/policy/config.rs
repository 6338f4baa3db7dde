//! The `[policy]` configuration section.

use serde::{Deserialize, Serialize};

/// `[policy]`: which mail is accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyConfig {
    /// Domains mailbag accepts mail for (never an open relay: empty accepts nothing).
    pub domains: Vec<String>,
    /// Optional recipient lists: if a domain has one, only these addresses are accepted.
    pub recipients: Vec<String>,
}
