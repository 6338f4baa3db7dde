//! ETRN (RFC 1985): the edge asks the silo to deliver what it holds for a node. The
//! session runs greeting, EHLO and STARTTLS as for mail, then `ETRN node`, then QUIT.

use embassy_time::Instant;

use super::{
    COMMAND_TIMEOUT, Client, ClientAction, ClientConfig, FailReason, Mode, Outcome, State,
};
use crate::relay::reply::ServerReply;

impl<'a> Client<'a> {
    /// A session that asks the next hop (the silo) to deliver what it holds for `node`
    /// (RFC 1985): greeting, EHLO, STARTTLS as for mail, `ETRN node`, QUIT.
    pub fn etrn(cfg: ClientConfig, node: &'a str, now: Instant) -> Self {
        Self::new(cfg, Mode::Etrn(node), now)
    }

    /// Ask for the node's mail, once EHLO (and STARTTLS) are done (RFC 1985 §3).
    pub(super) fn send_etrn(&mut self, node: &str, now: Instant) {
        self.push_out(format_args!("ETRN {node}\r\n"));
        self.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
        self.state = State::Etrn;
    }

    /// The reply to ETRN: 250 started, 251 nothing waiting, 252/253 (RFC 1985 §5) are the
    /// outcome; anything else fails the session (458 unable, 459 not allowed, 5xx unknown).
    pub(super) fn etrn_reply(&mut self, reply: ServerReply) {
        let code = reply.code();
        if (250..=253).contains(&code) {
            self.outcome = Some(Outcome::Etrn(reply));
            self.action(ClientAction::Done);
            self.quit();
        } else {
            self.fail(code >= 500, FailReason::Etrn, Some(reply), true);
        }
    }
}
