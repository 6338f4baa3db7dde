//! Acceptance policy: domains, recipients, size, anti-abuse.

pub mod config;

pub use config::PolicyConfig;
