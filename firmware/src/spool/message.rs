//! What the spool stores about a message: its id, envelope and delivery state.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest address kept (RFC 5321 §4.5.3.1.3: a path is at most 256 octets).
pub const ADDRESS_MAX: usize = 256;
/// Most recipients per message (RFC 5321 §4.5.3.1.8 asks servers to take at least 100).
pub const RECIPIENTS_MAX: usize = 100;
/// Longest last-error text kept (a next hop's reply line, truncated).
pub const ERROR_MAX: usize = 200;
/// Most distinct recipient domains tracked per message for quotas.
pub const DOMAINS_PER_MESSAGE: usize = 8;
/// Longest list of spam rule names kept in a [`Verdict`].
pub const VERDICT_RULES_MAX: usize = 160;
/// Longest virus name kept in a [`Verdict`].
pub const VIRUS_MAX: usize = 96;

/// An address as stored: at most [`ADDRESS_MAX`] bytes (checked by [`Envelope::new`] and
/// when a record is read). The SMTP layer has validated it. A `String` sized to what it
/// holds (postcard encodes it exactly like a fixed-capacity string).
pub type Address = String;

/// A queued message's id: the spool's mount count in the high 32 bits and a sequence
/// number within that mount in the low 32, so ids never repeat on one spool. Shown as 16
/// hex digits (the `queued as` id of the 250 reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

impl std::str::FromStr for MessageId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            u64::from_str_radix(s, 16)
                .map(MessageId)
                .map_err(|e| e.to_string())
        } else {
            Err(format!("'{s}' is not a message id (16 hex digits)"))
        }
    }
}

/// The SMTP envelope of an accepted message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Reverse-path; empty for the null sender `<>` (bounces).
    pub sender: Address,
    /// Forward-paths, at least one and at most [`RECIPIENTS_MAX`].
    pub recipients: Vec<Address>,
    /// What the inbound checks concluded, stored with the message (see [`Verdict`]).
    pub verdict: Option<Verdict>,
}

/// What the inbound checks concluded about a message. Kept in its record and applied at
/// delivery, like the Received header is written first: `X-Spam-*` headers are prepended
/// and a message accepted "repackaged" is wrapped in a notice; the body on flash is never
/// rewritten. About 10–270 bytes per record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Heuristic spam score, in points.
    pub spam_score: u16,
    /// The score from which a message is flagged (`X-Spam-Flag: YES`), as configured
    /// when it was accepted; 0: spam scoring was off.
    pub spam_threshold: u16,
    /// The rules that fired, comma-separated (at most [`VERDICT_RULES_MAX`] bytes).
    pub spam_rules: String,
    /// The virus clamd named when the message was accepted to be repackaged (at most
    /// [`VIRUS_MAX`] bytes); empty when it was clean or not scanned.
    pub virus: String,
}

impl Verdict {
    /// Cuts the texts to their bounds (at a character boundary); done when one is made
    /// and when a record is read.
    pub fn bounded(mut self) -> Self {
        cut(&mut self.spam_rules, VERDICT_RULES_MAX);
        cut(&mut self.virus, VIRUS_MAX);
        self
    }
}

fn cut(s: &mut String, max: usize) {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

impl Envelope {
    /// Builds an envelope, refusing over-long addresses and too many recipients.
    pub fn new<'a>(
        sender: &str,
        recipients: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        if sender.len() > ADDRESS_MAX {
            return Err("sender address too long".to_string());
        }
        let mut env = Envelope {
            sender: sender.to_string(),
            recipients: Vec::new(),
            verdict: None,
        };
        for r in recipients {
            if r.len() > ADDRESS_MAX {
                return Err(format!("recipient address too long: {r:.40}..."));
            }
            if env.recipients.len() == RECIPIENTS_MAX {
                return Err("too many recipients".to_string());
            }
            env.recipients.push(r.to_string());
        }
        if env.recipients.is_empty() {
            return Err("no recipients".into());
        }
        Ok(env)
    }
}

/// Domain part of an address, lower-cased (empty if there is none).
pub fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Delivery state of one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RcptStatus {
    /// Not yet delivered; will be retried.
    Pending,
    /// The next hop accepted it (2xx).
    Delivered,
    /// Permanently refused (5xx) or expired; a DSN is due/sent.
    Failed,
}

/// One recipient and its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Forward-path.
    pub address: Address,
    /// Delivery state.
    pub status: RcptStatus,
}

/// A queued message's envelope and delivery state (the record of its message frame).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// Queue id.
    pub id: MessageId,
    /// Wall-clock seconds when it was accepted.
    pub received_unix: u64,
    /// Body size in bytes.
    pub size: u64,
    /// CRC-32 of the body, checked when it is read back.
    pub body_crc: u32,
    /// Reverse-path (empty: null sender).
    pub sender: Address,
    /// Recipients and their delivery state (at most [`RECIPIENTS_MAX`]).
    pub recipients: Vec<Recipient>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Wall-clock seconds of the next attempt (0: as soon as possible).
    pub next_attempt_unix: u64,
    /// The last temporary or permanent error, for people reading the queue (at most
    /// [`ERROR_MAX`] bytes: see [`MessageMeta::set_last_error`]).
    pub last_error: String,
    /// Whether a delay warning was already sent.
    pub warned: bool,
    /// What the inbound checks concluded. Not part of this record's encoding (format-1
    /// records and format-2 frames read the same): the message frame's record carries it
    /// after the body reference, see `frame::MessageRec`.
    #[serde(skip)]
    pub verdict: Option<Verdict>,
}

impl MessageMeta {
    /// Recipients still to deliver.
    pub fn pending(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients
            .iter()
            .filter(|r| r.status == RcptStatus::Pending)
    }

    /// Sets `last_error`, truncated to [`ERROR_MAX`] bytes at a character boundary.
    pub fn set_last_error(&mut self, text: &str) {
        self.last_error.clear();
        let mut end = text.len().min(ERROR_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.last_error.push_str(&text[..end]);
    }

    /// Whether the record keeps its documented bounds (checked after decoding from flash:
    /// the CRC proves the bytes are what was written, this that they are what mailbag
    /// writes).
    pub fn within_bounds(&self) -> bool {
        self.sender.len() <= ADDRESS_MAX
            && self.recipients.len() <= RECIPIENTS_MAX
            && self
                .recipients
                .iter()
                .all(|r| r.address.len() <= ADDRESS_MAX)
            && self.last_error.len() <= ERROR_MAX
    }
}

/// The spool header (`/spool.hdr`) of format 2, written at format and updated at each mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`HEADER_MAGIC`].
    pub magic: [u8; 8],
    /// Wall-clock seconds of the format.
    pub created_unix: u64,
    /// Times the spool was mounted for writing (the high half of message ids).
    pub mounts: u32,
    /// Blocks the filesystem spans (grown when the image grows).
    pub block_count: u32,
    /// Bytes after which a log segment is closed and the next one started.
    pub seg_size: u32,
}

/// The spool header of format 1 (one file per message under `/q`), read for migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderV1 {
    /// Always [`HEADER_MAGIC`].
    pub magic: [u8; 8],
    /// Wall-clock seconds of the format.
    pub created_unix: u64,
    /// Times the spool was mounted for writing (the high half of message ids).
    pub mounts: u32,
    /// Blocks the filesystem spans.
    pub block_count: u32,
}

/// Identifies a mailbag spool.
pub const HEADER_MAGIC: [u8; 8] = *b"MAILBAG\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        let id = MessageId(0x0000_0002_0000_00AB);
        assert_eq!(id.to_string(), "00000002000000AB");
        assert_eq!("00000002000000ab".parse::<MessageId>().unwrap(), id);
        assert!("xyz".parse::<MessageId>().is_err());
        assert!("00000002000000AB0".parse::<MessageId>().is_err());
    }

    #[test]
    fn envelope_bounds() {
        assert!(Envelope::new("a@b", ["c@d"]).is_ok());
        assert!(Envelope::new("a@b", []).is_err());
        let long = "x".repeat(300);
        assert!(Envelope::new(&long, ["c@d"]).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("u{i}@d")).collect();
        assert!(Envelope::new("a@b", many.iter().map(String::as_str)).is_err());
    }

    #[test]
    fn last_error_is_truncated_on_a_char_boundary() {
        let mut m = MessageMeta {
            id: MessageId(1),
            received_unix: 0,
            size: 0,
            body_crc: 0,
            sender: Address::new(),
            recipients: Vec::new(),
            attempts: 0,
            next_attempt_unix: 0,
            last_error: String::new(),
            warned: false,
            verdict: None,
        };
        m.set_last_error(&"é".repeat(150));
        assert!(m.last_error.len() <= ERROR_MAX);
        assert!(m.last_error.chars().all(|c| c == 'é'));
    }

    #[test]
    fn domain_is_lowercased() {
        assert_eq!(domain_of("User@Example.COM"), "example.com");
        assert_eq!(domain_of("nodomain"), "");
    }
}
