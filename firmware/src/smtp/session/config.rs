//! What every session shares ([`SessionConfig`], checked once from `[smtp]`) and what the
//! host knows of the connection ([`PeerInfo`]).

use core::fmt;
use std::net::IpAddr;

use embassy_time::Duration;

use crate::smtp::address::Domain;
use crate::smtp::config::SmtpConfig;
use crate::smtp::limits::{DOMAIN_MAX, RECIPIENTS_MAX};

/// Everything a session needs that does not change per connection.
#[derive(Clone, Debug)]
pub struct SessionConfig<P> {
    /// Our name in the greeting, EHLO and Received header.
    pub hostname: heapless::String<DOMAIN_MAX>,
    /// Largest message in octets (advertised with SIZE, RFC 1870).
    pub max_message_size: u64,
    /// Offer STARTTLS (the host has a certificate).
    pub starttls: bool,
    /// Recipients per message, at most [`RECIPIENTS_MAX`].
    pub max_recipients: usize,
    /// Rejected commands before 421 and disconnect.
    pub max_bad_commands: u32,
    /// Time without input before 421.
    pub idle_timeout: Duration,
    /// Time a session may last before 421.
    pub session_timeout: Duration,
    /// Asked at every RCPT.
    pub policy: P,
    /// Hand every recipient to the host before replying ([`Event::RcptCheck`](crate::smtp::Event)):
    /// the daemon's checks that need I/O or shared state. Off, the policy's answer is the reply.
    pub rcpt_checks: bool,
}

/// An `[smtp]` section that cannot drive a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionConfigError {
    /// `hostname` is not a host name.
    Hostname,
    /// `max-recipients` is 0 or above [`RECIPIENTS_MAX`].
    MaxRecipients,
}

impl fmt::Display for SessionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hostname => f.write_str("smtp.hostname is not a host name"),
            Self::MaxRecipients => {
                write!(
                    f,
                    "smtp.max-recipients must be between 1 and {RECIPIENTS_MAX}"
                )
            }
        }
    }
}

impl std::error::Error for SessionConfigError {}

impl<P> SessionConfig<P> {
    /// Check `[smtp]` once at start-up; `policy` is cloned into every session.
    pub fn new(smtp: &SmtpConfig, policy: P) -> Result<Self, SessionConfigError> {
        let hostname = match Domain::parse(&smtp.hostname, false) {
            Ok(Domain::Name(_)) => heapless::String::try_from(smtp.hostname.as_str())
                .map_err(|_| SessionConfigError::Hostname)?,
            _ => return Err(SessionConfigError::Hostname),
        };
        let max_recipients = usize::try_from(smtp.max_recipients).unwrap_or(usize::MAX);
        if !(1..=RECIPIENTS_MAX).contains(&max_recipients) {
            return Err(SessionConfigError::MaxRecipients);
        }
        Ok(Self {
            hostname,
            max_message_size: smtp.max_message_size,
            starttls: smtp.starttls,
            max_recipients,
            max_bad_commands: smtp.max_bad_commands.max(1),
            idle_timeout: Duration::from_secs(smtp.idle_timeout_secs),
            session_timeout: Duration::from_secs(smtp.session_timeout_secs),
            policy,
            rcpt_checks: false,
        })
    }

    /// The same settings with another policy (the host adds its own to settings checked
    /// without one).
    pub fn with_policy<Q>(self, policy: Q) -> SessionConfig<Q> {
        SessionConfig {
            hostname: self.hostname,
            max_message_size: self.max_message_size,
            starttls: self.starttls,
            max_recipients: self.max_recipients,
            max_bad_commands: self.max_bad_commands,
            idle_timeout: self.idle_timeout,
            session_timeout: self.session_timeout,
            policy,
            rcpt_checks: self.rcpt_checks,
        }
    }
}

/// The connection, as the host accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Client address (goes into the Received header).
    pub ip: IpAddr,
    /// Client port.
    pub port: u16,
    /// True for implicit TLS (port 465); STARTTLS then is not offered.
    pub tls: bool,
    /// Wall-clock seconds at accept ([`Clock::unix_seconds`](mailbag_hal::Clock)); the
    /// Received date is this plus the monotonic time since.
    pub unix_seconds: u64,
}
