//! The `[daemon]` configuration section (the local control socket).

use serde::{Deserialize, Serialize};

/// Default path of the control socket (`/var/run` is RAM on OpenWrt: made at every start).
pub const DEFAULT_CONTROL_SOCKET: &str = "/var/run/mailbag/control.sock";

/// `[daemon]`: how local commands reach the running daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonConfig {
    /// Unix socket for `mailbag queue flush|delete|bounce` (mode 0600: root only); empty
    /// disables it.
    pub control_socket: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            control_socket: DEFAULT_CONTROL_SOCKET.into(),
        }
    }
}
