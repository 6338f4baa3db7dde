//! Whether the office's primary mail server is reachable, as the firewall needs to know it.
//!
//! In `open-when-primary-down` mode port 25 is open to everyone only while the primary is
//! down. The delivery layer's next-hop probe will implement [`PrimaryState`]; until then the
//! CLI supplies a [`Primary`] value (`--primary up|down`). Rendering only ever sees the value.

use std::fmt;
use std::str::FromStr;

/// The primary's state as last observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Primary {
    /// Reachable: mail should come through the silo only.
    #[default]
    Up,
    /// Not answering: any sender may reach this router's SMTP (if the mode allows it).
    Down,
}

/// Something that knows whether the primary is up (e.g. the relay's next-hop probe).
pub trait PrimaryState {
    /// The current state; must not block (it is read on every apply).
    fn primary(&self) -> Primary;
}

impl PrimaryState for Primary {
    fn primary(&self) -> Primary {
        *self
    }
}

impl FromStr for Primary {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "up" => Ok(Self::Up),
            "down" => Ok(Self::Down),
            other => Err(format!("--primary takes 'up' or 'down', not '{other}'")),
        }
    }
}

impl fmt::Display for Primary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Down => "down",
        })
    }
}
