//! Recipient verification ("callout"): does the next hop know a recipient? Greeting, EHLO
//! and STARTTLS as for mail, then `MAIL FROM:<>` (the null sender: no bounce can follow),
//! `RCPT TO:<address>`, `RSET` and QUIT. No DATA is ever sent. The RCPT reply is the
//! outcome ([`Outcome::Verified`]): 2xx exists, 5xx does not, 4xx says nothing.

use embassy_time::Instant;

use super::{
    Client, ClientAction, ClientConfig, FailReason, MAIL_TIMEOUT, Mode, Outcome, RCPT_TIMEOUT,
    State,
};
use crate::relay::reply::ServerReply;

impl<'a> Client<'a> {
    /// A session asking whether `address` (without brackets) exists at the next hop.
    pub fn verify(cfg: ClientConfig, address: &'a str, now: Instant) -> Self {
        Self::new(cfg, Mode::Verify(address), now)
    }

    /// `MAIL FROM:<>`, once EHLO (and STARTTLS) are done.
    pub(super) fn send_verify(&mut self, address: &str, now: Instant) {
        if address
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>')
        {
            // Never on the wire: it would inject commands.
            self.fail(FailReason::BadAddress, None);
            return;
        }
        self.push_out(format_args!("MAIL FROM:<>\r\n"));
        self.deadline = Some(now.saturating_add(MAIL_TIMEOUT));
        self.state = State::VerifyMail;
    }

    /// The replies to `MAIL FROM:<>` and to `RCPT TO`.
    pub(super) fn verify_reply(&mut self, state: State, reply: ServerReply, now: Instant) {
        let Mode::Verify(address) = self.mode else {
            self.fail(FailReason::Unexpected, Some(reply));
            return;
        };
        match state {
            State::VerifyMail if reply.is_positive() => {
                self.push_out(format_args!("RCPT TO:<{address}>\r\n"));
                self.deadline = Some(now.saturating_add(RCPT_TIMEOUT));
                self.state = State::VerifyRcpt;
            }
            State::VerifyMail => self.fail(FailReason::Mail, Some(reply)),
            _ => {
                self.outcome = Some(Outcome::Verified(reply));
                self.action(ClientAction::Done);
                // RSET ends the transaction; QUIT follows at once (its 221, or RSET's 250,
                // closes the connection).
                self.push_out(format_args!("RSET\r\n"));
                self.quit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::client::TlsPolicy;

    fn cfg() -> ClientConfig {
        ClientConfig {
            helo_name: "mx.test".try_into().unwrap(),
            tls: TlsPolicy::Opportunistic,
        }
    }

    fn run(address: &str, rcpt_reply: &[u8]) -> (String, Option<Outcome>) {
        let now = Instant::from_secs(1);
        let mut c = Client::verify(cfg(), address, now);
        let mut wire = String::new();
        for input in [
            &b"220 primary ESMTP\r\n"[..],
            b"250-primary\r\n250 PIPELINING\r\n",
            b"250 2.1.0 Ok\r\n",
            rcpt_reply,
            b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n",
        ] {
            wire.push_str(&String::from_utf8_lossy(c.output()));
            let n = c.output().len();
            c.written(n, now);
            c.input(input, now);
        }
        wire.push_str(&String::from_utf8_lossy(c.output()));
        (wire, c.outcome().cloned())
    }

    #[test]
    fn a_callout_asks_rcpt_with_the_null_sender_and_never_sends_data() {
        let (wire, outcome) = run("alice@office.test", b"250 2.1.5 Ok\r\n");
        assert_eq!(
            wire,
            "EHLO mx.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@office.test>\r\nRSET\r\nQUIT\r\n"
        );
        assert!(matches!(outcome, Some(Outcome::Verified(r)) if r.code() == 250));
        let (_, outcome) = run("mallory@office.test", b"550 5.1.1 User unknown\r\n");
        assert!(matches!(outcome, Some(Outcome::Verified(r)) if r.code() == 550));
    }

    #[test]
    fn an_address_that_could_inject_is_never_sent() {
        let (wire, outcome) = run("a@b\r\nDATA", b"250 Ok\r\n");
        assert!(!wire.contains("DATA") && !wire.contains("RCPT"), "{wire}");
        assert!(matches!(outcome, Some(Outcome::Failed(f)) if f.reason == FailReason::BadAddress));
    }
}
