//! The heartbeat beacon (mailbag's own, [`crate::monitor::beacon`]): the edge tells its
//! silo it is alive with `XBEACON line`, a private-use command (RFC 5321 §4.1.5: commands
//! starting with X are local extensions). The session runs greeting, EHLO and STARTTLS as
//! for mail, then `XBEACON`, then QUIT.

use embassy_time::Instant;

use super::{
    COMMAND_TIMEOUT, Client, ClientAction, ClientConfig, FailReason, Mode, Outcome, State,
};
use crate::relay::reply::ServerReply;

impl<'a> Client<'a> {
    /// A session that sends one signed beacon `line` (no CR or LF: the host checks) to the
    /// next hop (the silo).
    pub fn beacon(cfg: ClientConfig, line: &'a str, now: Instant) -> Self {
        Self::new(cfg, Mode::Beacon(line), now)
    }

    /// Send the beacon once EHLO (and STARTTLS) are done.
    pub(super) fn send_beacon(&mut self, line: &str, now: Instant) {
        if line.bytes().any(|b| b.is_ascii_control()) {
            // Never on the wire: a CR or LF here would inject commands.
            self.fail(FailReason::BadAddress, None);
            return;
        }
        self.push_out(format_args!("XBEACON {line}\r\n"));
        self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
        self.state = State::Beacon;
    }

    /// 250: taken. Anything else: refused (forged, replayed, unknown router), or a silo
    /// that does not know the command (500/502).
    pub(super) fn beacon_reply(&mut self, reply: ServerReply) {
        if reply.code() == 250 {
            self.outcome = Some(Outcome::Beacon(reply));
            self.action(ClientAction::Done);
            self.quit();
        } else {
            self.fail(FailReason::Beacon, Some(reply));
        }
    }
}
