//! What a connection keeps for its protection checks: the client (its address, whether
//! it is trusted, what the scoring blocklists said) and the checks running on the content
//! of the message being received.

use std::net::IpAddr;

use super::clamd::ClamdScan;
use crate::policy::content::BodyScan;
use crate::policy::spam::SenderDns;

/// The connected client.
pub struct Client {
    /// Its address.
    pub(super) ip: IpAddr,
    /// In `policy.trusted`: no check applies.
    pub(super) trusted: bool,
    /// Scoring blocklists that list it.
    pub(super) score_hits: Vec<String>,
}

/// The checks running on one message's content.
#[derive(Default)]
pub struct MessageChecks {
    pub(super) scan: Option<BodyScan>,
    pub(super) clamd: Option<ClamdScan>,
    pub(super) spam: bool,
    pub(super) attachments: bool,
    pub(super) sender_dns: Option<tokio::task::JoinHandle<SenderDns>>,
    /// The smallest per-domain `max-message-size` of its recipients.
    pub(super) max_size: Option<(u64, String)>,
    /// The first recipient's domain's `max-bytes` and what it held at the start.
    pub(super) tier: Option<(u64, u64, String)>,
    pub(super) size: u64,
}

impl MessageChecks {
    /// The next content bytes (the Received header included).
    pub(super) async fn content(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if let Some(s) = self.scan.as_mut() {
            s.feed(bytes);
        }
        if let Some(c) = self.clamd.as_mut() {
            c.send(bytes).await;
        }
    }
}
