//! SMTP: sans-IO server and client sessions (RFC 5321).

pub mod config;

pub use config::SmtpConfig;
