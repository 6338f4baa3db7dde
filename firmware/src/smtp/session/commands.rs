//! One command line, dispatched on the session's state (RFC 5321 §4.1.4): the commands
//! valid anywhere here, MAIL/RCPT/DATA/STARTTLS/ETRN handed to their own files.

use embassy_time::Instant;

use super::{Event, Events, Helo, Reply, Session, State, push, reply};
use crate::policy::Policy;
use crate::smtp::address::AddressError;
use crate::smtp::command::{Command, CommandError};

impl<P: Policy> Session<P> {
    /// Run the buffered command line; true when input must stop after it.
    pub(super) fn line_ready(&mut self, now: Instant, out: &mut Events<'_>) -> bool {
        // Taken out so the parsed command may borrow the line while the session changes.
        let line = core::mem::take(&mut self.line);
        let stop = match Command::parse(line.line()) {
            Ok(cmd) => self.command(cmd, now, out),
            Err(e) => {
                let r = command_error_reply(e);
                self.bad(r, out)
            }
        };
        self.line = line;
        self.line.clear();
        stop
    }

    fn command(&mut self, cmd: Command<'_>, now: Instant, out: &mut Events<'_>) -> bool {
        if matches!(self.state, State::Refused) {
            // RFC 5321 §3.1: after a 554 greeting, QUIT gets 221 and anything else 503.
            if matches!(cmd, Command::Quit) {
                push(out, Event::Reply(reply(221, "2.0.0", "Bye")));
                return self.close(out);
            }
            return self.bad(reply(503, "5.5.1", "Error: bad sequence of commands"), out);
        }
        let state = core::mem::replace(&mut self.state, State::Closed);
        let helo = match &state {
            State::Ready(h) | State::Mail(h) | State::Rcpt(h) => Some(h.clone()),
            _ => None,
        };
        let ok = |text: &'static str| Event::Reply(reply(250, "2.0.0", text));
        // Commands valid in any command state (RFC 5321 §4.1.4).
        match cmd {
            Command::Helo(name) | Command::Ehlo(name) => {
                let ehlo = matches!(cmd, Command::Ehlo(_));
                // Name bounded by the parser to DOMAIN_MAX; an overflow cannot happen.
                let name = heapless::String::try_from(name).unwrap_or_default();
                let r = if ehlo {
                    self.ehlo_reply()
                } else {
                    Reply::new(250, "", format_args!("{}", self.cfg.hostname))
                };
                // §4.1.4: EHLO/HELO in a transaction resets it.
                self.state = State::Ready(Helo { name, ehlo });
                push(out, Event::Reply(r));
                return false;
            }
            Command::Noop => {
                self.state = state;
                push(out, ok("Ok"));
                return false;
            }
            Command::Help => {
                self.state = state;
                push(out, Event::Reply(reply(214, "2.0.0", "See RFC 5321")));
                return false;
            }
            Command::Vrfy => {
                // §3.5.3: 252 when we will not verify but will accept.
                self.state = state;
                let text = "Cannot VRFY user, but will accept message and attempt delivery";
                push(out, Event::Reply(reply(252, "2.5.2", text)));
                return false;
            }
            Command::Quit => {
                // §4.1.1.10: 221, then close.
                push(out, Event::Reply(reply(221, "2.0.0", "Bye")));
                return self.close(out);
            }
            Command::Rset => {
                // §4.1.1.5: abort the transaction, keep the HELO.
                self.state = helo.map_or(State::Connected, State::Ready);
                push(out, ok("Ok"));
                return false;
            }
            _ => {}
        }
        let Some(helo) = helo else {
            // §4.1.4: MAIL, RCPT, DATA, ETRN need EHLO/HELO first.
            self.state = state;
            let r = match cmd {
                Command::StartTls => return self.start_tls(None, out),
                _ => reply(503, "5.5.1", "Error: send HELO/EHLO first"),
            };
            return self.bad(r, out);
        };
        match (state, cmd) {
            (State::Ready(_), Command::Mail(from, params)) => self.mail(helo, from, params, out),
            (State::Mail(_) | State::Rcpt(_), Command::Mail(..)) => {
                self.state = State::Mail(helo);
                self.bad(reply(503, "5.5.1", "Error: nested MAIL command"), out)
            }
            (State::Mail(_) | State::Rcpt(_), Command::Rcpt(path)) => self.rcpt(helo, path, out),
            (state @ State::Ready(_), Command::Rcpt(_) | Command::Data) => {
                self.state = state;
                self.bad(reply(503, "5.5.1", "Error: need MAIL command"), out)
            }
            (State::Mail(_), Command::Data) => {
                self.state = State::Mail(helo);
                self.bad(reply(503, "5.5.1", "Error: need RCPT command"), out)
            }
            (State::Rcpt(_), Command::Data) => self.data(helo, now, out),
            (State::Ready(_), Command::StartTls) => self.start_tls(Some(helo), out),
            (State::Ready(_), Command::Etrn(node)) => {
                self.state = State::Ready(helo);
                // Bounded by the parser to ETRN_ARG_MAX.
                push(
                    out,
                    Event::Etrn(heapless::String::try_from(node).unwrap_or_default()),
                );
                true
            }
            (State::Ready(_), Command::Beacon(line)) => {
                self.state = State::Ready(helo);
                // Bounded by the parser to BEACON_ARG_MAX.
                push(
                    out,
                    Event::Beacon(heapless::String::try_from(line).unwrap_or_default()),
                );
                true
            }
            (state, _) => {
                // STARTTLS, ETRN or XBEACON inside a transaction.
                self.state = state;
                self.bad(
                    reply(503, "5.5.1", "Error: MAIL transaction in progress"),
                    out,
                )
            }
        }
    }

    fn ehlo_reply(&self) -> Reply {
        // RFC 1869 §4.3: first line names us, then one extension per line.
        let size = format!("SIZE {}", self.cfg.max_message_size);
        let mut lines: heapless::Vec<&str, 8> = heapless::Vec::new();
        let offer_tls = self.cfg.starttls && !self.tls;
        for line in [
            self.cfg.hostname.as_str(),
            "PIPELINING",
            size.as_str(),
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "STARTTLS",
            "ETRN",
        ] {
            if line != "STARTTLS" || offer_tls {
                let _ = lines.push(line);
            }
        }
        Reply::multiline(250, &lines)
    }
}

/// RFC 3463 §3.2: X.1.7 for a bad sender, X.1.3 for a bad recipient address.
pub(super) fn command_error_reply(e: CommandError) -> Reply {
    match e {
        // §4.2.4: 500 unrecognized, 502 not implemented.
        CommandError::Unknown => reply(500, "5.5.1", "Error: command unrecognized"),
        CommandError::NotImplemented => reply(502, "5.5.1", "Error: command not implemented"),
        CommandError::Syntax(why) => Reply::new(501, "5.5.4", format_args!("Syntax error: {why}")),
        CommandError::UnknownParam => reply(555, "5.5.4", "Error: parameter not recognized"),
        CommandError::RcptAddress(e) if e.is_relay_attempt() => {
            reply(550, "5.7.1", "Relay access denied")
        }
        // RFC 6531 §3.6: non-ASCII address without SMTPUTF8.
        CommandError::Address(AddressError::NonAscii)
        | CommandError::RcptAddress(AddressError::NonAscii) => {
            reply(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8")
        }
        CommandError::RcptAddress(e) => Reply::new(
            501,
            "5.1.3",
            format_args!("Bad recipient address syntax: {e}"),
        ),
        CommandError::Address(e) => {
            Reply::new(501, "5.1.7", format_args!("Bad sender address syntax: {e}"))
        }
    }
}
