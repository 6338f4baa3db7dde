//! Connection reuse: after a message's outcome the session can stay connected
//! ([`Client::keep_open`]) and carry the next message ([`Client::resume`]).

use embassy_time::Instant;

use super::{COMMAND_TIMEOUT, Client, ClientConfig, DeliveryJob, Extensions, Mode, State};

/// A kept connection's state between two messages ([`Client::kept`]).
#[derive(Clone, Debug)]
pub struct Kept {
    cfg: ClientConfig,
    ext: Extensions,
    tls: bool,
    tls_verified: bool,
    clean: bool,
}

impl<'a> Client<'a> {
    /// Keep the connection for another message after this one's outcome (Postfix's
    /// connection reuse): the session goes idle instead of sending QUIT; continue with
    /// [`Client::resume`] or end with [`Client::quit_kept`].
    pub fn keep_open(mut self) -> Self {
        self.keep_open = true;
        self
    }

    /// True when the message's outcome is known and the connection waits for the next
    /// message ([`Client::keep_open`]).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// What the next message on this connection needs to know, once this session is idle
    /// ([`Client::keep_open`]); `None` otherwise.
    pub fn kept(&self) -> Option<Kept> {
        (self.is_idle() && matches!(self.mode, Mode::Deliver(_))).then(|| Kept {
            cfg: self.cfg.clone(),
            ext: self.ext,
            tls: self.tls,
            tls_verified: self.tls_verified,
            clean: self.clean,
        })
    }

    /// The next message on a kept connection: same extensions and TLS state, RSET first
    /// unless the last transaction ended cleanly. It keeps the connection open too.
    pub fn resume(kept: &Kept, job: DeliveryJob<'a>, now: Instant) -> Self {
        let mut c = Self::new(kept.cfg.clone(), Mode::Deliver(job), now);
        c.ext = kept.ext;
        c.tls = kept.tls;
        c.tls_verified = kept.tls_verified;
        c.keep_open = true;
        if kept.clean {
            c.begin(now);
        } else {
            c.push_out(format_args!("RSET\r\n"));
            c.deadline = Some(now.saturating_add(COMMAND_TIMEOUT));
            c.state = State::Rset;
        }
        c
    }

    /// End a kept connection politely: a session that sends QUIT and closes.
    pub fn quit_kept(kept: &Kept, now: Instant) -> Self {
        let mut c = Self::new(kept.cfg.clone(), Mode::Probe, now);
        c.now = now;
        c.quit();
        c
    }
}
