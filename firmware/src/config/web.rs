//! The `[web]` configuration section (the admin page's listener and password file).

use serde::{Deserialize, Serialize};

/// `[web]`: where the admin page listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebConfig {
    /// Listen addresses (`address:port`); empty serves no page. The default port avoids
    /// uhttpd (LuCI) on 80/443; OpenWrt's default fw4 rules reject it from the WAN.
    pub listen: Vec<String>,
    /// Shadow-format password file the page checks `root`'s password against (LuCI's).
    pub shadow: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: vec!["0.0.0.0:8025".into()],
            shadow: "/etc/shadow".into(),
        }
    }
}
