//! SMTP: the sans-IO server session (RFC 5321) and its parts.
//!
//! TODO(doc): filled in below once the API settles.

pub mod address;
pub mod command;
pub mod config;
pub mod data;
pub mod event;
pub mod limits;
pub mod line;
pub mod received;
pub mod reply;
pub mod session;

pub use address::{AddressError, Domain, Mailbox, ReversePath};
pub use command::{BodyType, MailParams};
pub use config::SmtpConfig;
pub use event::{AbortReason, Event, Events};
pub use reply::{EtrnOutcome, Reply};
pub use session::{Envelope, PeerInfo, Session, SessionConfig, SessionConfigError, StoreError};
