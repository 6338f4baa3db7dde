//! The `[web]` configuration section (the admin page's listener and password file).

use serde::{Deserialize, Serialize};

/// `[web]`: where the admin page listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebConfig {
    /// Listen addresses (`address:port`); empty (the default) serves no page: on a router
    /// luci-app-mailbag is the admin UI. Port 8025 avoids uhttpd (LuCI) on 80/443;
    /// OpenWrt's default fw4 rules reject it from the WAN.
    pub listen: Vec<String>,
    /// Shadow-format password file the page checks `root`'s password against (LuCI's).
    pub shadow: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            shadow: "/etc/shadow".into(),
        }
    }
}
