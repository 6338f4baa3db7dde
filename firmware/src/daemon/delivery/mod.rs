//! **delivery**: takes due mail from the spool and sends it to its next hops.
pub mod dns;
pub mod lanes;
pub mod outbound;
pub mod tls;
pub mod upstream;

pub use lanes::Deliverer;
