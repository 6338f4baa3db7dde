//! How long a stop waits: the grace period the wiring gives sessions, delivery gives
//! attempts in progress and the control socket gives its connections. It imports no
//! subsystem.

use std::time::Duration;

/// How long sessions get to finish after a stop signal.
pub const GRACE: Duration = Duration::from_secs(20);
