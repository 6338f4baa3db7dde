//! Frames: the unit of the v2 spool log (see `docs/spool.md`, "Frames").
//!
//! A segment file is a sequence of frames, each a fixed 16-byte header, a postcard
//! *record* and optional *data*:
//!
//! ```text
//! +-------+------+-------+-------+----------+----------+----------+--------+------+
//! | magic | kind | 0     | 0     | len (LE) | rlen(LE) | crc (LE) | record | data |
//! | 0xB2  | u8   | u8    | u8    | u32      | u32      | u32      | rlen B | ...  |
//! +-------+------+-------+-------+----------+----------+----------+--------+------+
//! ```
//!
//! `len` counts record and data, `rlen` the record alone. The CRC-32 covers the first 12
//! header bytes and the record, so a frame's header and record are checked without reading
//! its data (mount skips body bytes); the data has its own CRC inside the record (a chunk's
//! `crc`, a message's `body_crc`) and is checked when it is read. Integers in the header are
//! little-endian and postcard encodes the record the same on every machine, so images move
//! between big- and little-endian routers.
//!
//! This module is pure: it encodes into and decodes from byte slices.

use serde::{Deserialize, Serialize};

use super::crc::crc32;
use super::message::{ERROR_MAX, MessageId, MessageMeta, RECIPIENTS_MAX, RcptStatus};

/// First byte of every frame (also the log format: a v3 log would use another value).
pub const MAGIC: u8 = 0xB2;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 16;
/// Largest record (a message record with 100 long recipients and 256 chunk locations fits).
pub const RECORD_MAX: usize = 32 * 1024;
/// Body bytes in one chunk frame: every chunk but a message's last is exactly this long,
/// so the chunk holding an offset is `offset / CHUNK`.
pub const CHUNK: usize = 16 * 1024;
/// Chunk locations listed directly in a message record, or in one group frame.
pub const GROUP: usize = 256;
/// Group frames a message record can list: bodies up to `GROUPS * GROUP * CHUNK` bytes
/// (256 MiB).
pub const GROUPS: usize = 64;
/// Largest body the log can hold.
pub const BODY_MAX: u64 = (GROUPS * GROUP * CHUNK) as u64;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A message: its record (envelope, state, where its body is), a small body inline.
    Message = b'M',
    /// One chunk of a large body.
    Chunk = b'C',
    /// The locations of up to [`GROUP`] chunks of a very large body.
    Group = b'G',
    /// A message's delivery state after an attempt.
    State = b'S',
    /// A message is gone (delivered, bounced or deleted).
    Done = b'D',
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'M' => Kind::Message,
            b'C' => Kind::Chunk,
            b'G' => Kind::Group,
            b'S' => Kind::State,
            b'D' => Kind::Done,
            _ => return None,
        })
    }
}

/// Where a frame starts: segment number and byte offset in that segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Loc {
    /// Segment number (`/log/<seg as 8 hex digits>`).
    pub seg: u32,
    /// Offset of the frame header in the segment file.
    pub off: u32,
}

impl Loc {
    /// "No location" in packed form.
    pub const NONE: u64 = u64::MAX;

    /// The location as one `u64` (for the RAM index).
    pub fn pack(self) -> u64 {
        (u64::from(self.seg) << 32) | u64::from(self.off)
    }

    /// The inverse of [`Loc::pack`]; `None` for [`Loc::NONE`].
    pub fn unpack(v: u64) -> Option<Self> {
        (v != Self::NONE).then_some(Loc {
            seg: (v >> 32) as u32,
            off: v as u32,
        })
    }
}

/// Where a message's body is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Right after the record, in the message frame (bodies up to [`CHUNK`] bytes).
    Inline,
    /// In chunk frames, listed in order.
    Chunks(Box<heapless::Vec<Loc, GROUP>>),
    /// In chunk frames listed by group frames, in order. `first` is the first chunk (the
    /// oldest frame of the message, which decides when its segment may be reclaimed).
    Groups {
        /// The first chunk.
        first: Loc,
        /// Group frames, each listing up to [`GROUP`] chunks.
        groups: Box<heapless::Vec<Loc, GROUPS>>,
    },
}

/// The record of a [`Kind::Message`] frame: `(meta, body)`, then the inbound checks'
/// verdict (`meta.verdict`) when there is one. A record is decoded from exactly its bytes,
/// so frames written without the verdict (before it existed) read with `verdict: None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRec {
    /// Envelope and delivery state, as the rest of mailbag sees it.
    pub meta: MessageMeta,
    /// Where the body is.
    pub body: Body,
}

impl Serialize for MessageRec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let with = self.meta.verdict.is_some();
        let mut t = s.serialize_tuple(if with { 3 } else { 2 })?;
        t.serialize_element(&self.meta)?;
        t.serialize_element(&self.body)?;
        if let Some(v) = &self.meta.verdict {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for MessageRec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};

        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = MessageRec;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a message record")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageRec, A::Error> {
                let mut meta: MessageMeta = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("record lacks its meta"))?;
                let body = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("record lacks its body"))?;
                // The record's bytes end here when there is no verdict: postcard reports
                // that as an error, which means "none" (the CRC checked the record).
                meta.verdict = seq
                    .next_element::<super::message::Verdict>()
                    .ok()
                    .flatten()
                    .map(super::message::Verdict::bounded);
                Ok(MessageRec { meta, body })
            }
        }

        d.deserialize_tuple(3, Fields)
    }
}

/// The record of a [`Kind::Chunk`] frame; the chunk's bytes are the frame's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRec {
    /// The message it belongs to.
    pub id: MessageId,
    /// Its place in the body (0, 1, ...).
    pub seq: u32,
    /// CRC-32 of its bytes.
    pub crc: u32,
}

/// The record of a [`Kind::Group`] frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRec {
    /// The message it belongs to.
    pub id: MessageId,
    /// Chunk locations, in body order.
    pub chunks: heapless::Vec<Loc, GROUP>,
}

/// The record of a [`Kind::State`] frame: what an attempt changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRec {
    /// The message.
    pub id: MessageId,
    /// Attempts so far.
    pub attempts: u32,
    /// Wall-clock seconds of the next attempt.
    pub next_attempt_unix: u64,
    /// Whether a delay warning was sent.
    pub warned: bool,
    /// The last error (at most [`ERROR_MAX`] bytes).
    pub last_error: String,
    /// Each recipient's state, in envelope order (at most [`RECIPIENTS_MAX`]).
    pub status: Vec<RcptStatus>,
}

impl StateRec {
    /// The state part of `meta`.
    pub fn of(meta: &MessageMeta) -> Self {
        let status = meta.recipients.iter().map(|r| r.status).collect();
        StateRec {
            id: meta.id,
            attempts: meta.attempts,
            next_attempt_unix: meta.next_attempt_unix,
            warned: meta.warned,
            last_error: meta.last_error.clone(),
            status,
        }
    }

    /// Whether the record keeps its documented bounds (see [`MessageMeta::within_bounds`]).
    pub fn within_bounds(&self) -> bool {
        self.last_error.len() <= ERROR_MAX && self.status.len() <= RECIPIENTS_MAX
    }

    /// Applies this state to `meta` (the message's record).
    pub fn apply(&self, meta: &mut MessageMeta) {
        meta.attempts = self.attempts;
        meta.next_attempt_unix = self.next_attempt_unix;
        meta.warned = self.warned;
        meta.last_error = self.last_error.clone();
        for (r, s) in meta.recipients.iter_mut().zip(self.status.iter()) {
            r.status = *s;
        }
    }
}

/// The record of a [`Kind::Done`] frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRec {
    /// The message that is gone.
    pub id: MessageId,
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the frame holds.
    pub kind: Kind,
    /// Record plus data bytes after the header.
    pub len: u32,
    /// Record bytes.
    pub rlen: u32,
    /// CRC of header bytes 0..12 and the record.
    pub crc: u32,
}

impl Header {
    /// Bytes of the whole frame, header included.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }

    /// Bytes of data after the record.
    pub fn data_len(&self) -> u32 {
        self.len - self.rlen
    }
}

/// Why bytes are not a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not a frame start (erased flash, the end of the log, or damage).
    BadHeader,
    /// The header or record does not match its checksum.
    Checksum,
    /// The checksum matches but the record does not decode (a newer format).
    Record,
    /// The value does not fit [`RECORD_MAX`].
    TooLarge,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::BadHeader => "not a frame header",
            FrameError::Checksum => "frame checksum mismatch",
            FrameError::Record => "frame record not decodable",
            FrameError::TooLarge => "frame record too large",
        })
    }
}

/// Parses a header; the CRC is checked later with the record ([`check`]).
pub fn parse_header(b: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
    let kind = Kind::from_byte(b[1]).ok_or(FrameError::BadHeader)?;
    if b[0] != MAGIC || b[2] != 0 || b[3] != 0 {
        return Err(FrameError::BadHeader);
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (len, rlen, crc) = (u32_at(4), u32_at(8), u32_at(12));
    if rlen > len || rlen as usize > RECORD_MAX {
        return Err(FrameError::BadHeader);
    }
    Ok(Header {
        kind,
        len,
        rlen,
        crc,
    })
}

/// Checks a header's CRC against its raw bytes and record.
pub fn check(h: &Header, raw: &[u8; HEADER_LEN], record: &[u8]) -> Result<(), FrameError> {
    if crc32(crc32(0, &raw[..12]), record) == h.crc {
        Ok(())
    } else {
        Err(FrameError::Checksum)
    }
}

/// Decodes a checked record.
pub fn decode<T: serde::de::DeserializeOwned>(record: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(record).map_err(|_| FrameError::Record)
}

/// Encodes a frame's header and record into `buf` (data follows separately); returns the
/// header-and-record prefix. `data_len` is the number of data bytes the caller writes next.
pub fn encode<'b, T: Serialize>(
    kind: Kind,
    record: &T,
    data_len: usize,
    buf: &'b mut [u8],
) -> Result<&'b [u8], FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::TooLarge);
    }
    let end = buf.len().min(HEADER_LEN + RECORD_MAX);
    let rlen = postcard::to_slice(record, &mut buf[HEADER_LEN..end])
        .map_err(|_| FrameError::TooLarge)?
        .len();
    let len = u32::try_from(rlen + data_len).map_err(|_| FrameError::TooLarge)?;
    buf[0] = MAGIC;
    buf[1] = kind as u8;
    buf[2] = 0;
    buf[3] = 0;
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    buf[8..12].copy_from_slice(&(rlen as u32).to_le_bytes());
    let crc = crc32(crc32(0, &buf[..12]), &buf[HEADER_LEN..HEADER_LEN + rlen]);
    buf[12..16].copy_from_slice(&crc.to_le_bytes());
    Ok(&buf[..HEADER_LEN + rlen])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed<T: Serialize>(kind: Kind, rec: &T, data: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN + RECORD_MAX];
        let mut v = encode(kind, rec, data.len(), &mut buf).unwrap().to_vec();
        v.extend_from_slice(data);
        v
    }

    fn read<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(Header, T), FrameError> {
        let raw: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
        let h = parse_header(&raw)?;
        let rec = &bytes[HEADER_LEN..HEADER_LEN + h.rlen as usize];
        check(&h, &raw, rec)?;
        Ok((h, decode(rec)?))
    }

    #[test]
    fn a_chunk_frame_round_trips_with_exact_header_bytes() {
        let rec = ChunkRec {
            id: MessageId(0x0102),
            seq: 3,
            crc: crc32(0, b"hello"),
        };
        let bytes = framed(Kind::Chunk, &rec, b"hello");
        // Fixed layout: magic, kind, two zero bytes, then little-endian lengths. This is
        // what lets a big-endian router's image read the same here.
        assert_eq!(&bytes[..4], &[MAGIC, b'C', 0, 0]);
        let rlen = bytes.len() - HEADER_LEN - 5;
        assert_eq!(&bytes[4..8], &((rlen + 5) as u32).to_le_bytes());
        assert_eq!(&bytes[8..12], &(rlen as u32).to_le_bytes());
        let (h, back): (Header, ChunkRec) = read(&bytes).unwrap();
        assert_eq!(back, rec);
        assert_eq!(h.data_len(), 5);
        assert_eq!(h.frame_len(), bytes.len() as u64);
    }

    #[test]
    fn any_flipped_bit_in_header_or_record_is_detected() {
        let rec = DoneRec { id: MessageId(77) };
        let good = framed(Kind::Done, &rec, &[]);
        for i in 0..good.len() {
            for bit in [0x01, 0x10, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                assert!(
                    read::<DoneRec>(&bad).is_err(),
                    "flip 0x{bit:02x} at byte {i} undetected"
                );
            }
        }
    }

    #[test]
    fn erased_flash_and_zeros_are_not_frames() {
        assert_eq!(
            parse_header(&[0xff; HEADER_LEN]),
            Err(FrameError::BadHeader)
        );
        assert_eq!(parse_header(&[0; HEADER_LEN]), Err(FrameError::BadHeader));
    }

    #[test]
    fn records_larger_than_the_limit_are_refused() {
        let mut buf = vec![0u8; 64];
        let rec = GroupRec {
            id: MessageId(1),
            chunks: (0..GROUP as u32).map(|i| Loc { seg: i, off: i }).collect(),
        };
        assert_eq!(
            encode(Kind::Group, &rec, 0, &mut buf),
            Err(FrameError::TooLarge)
        );
    }

    #[test]
    fn locations_pack_into_one_word() {
        let l = Loc {
            seg: 0xdead,
            off: 0xbeef,
        };
        assert_eq!(Loc::unpack(l.pack()), Some(l));
        assert_eq!(Loc::unpack(Loc::NONE), None);
    }

    #[test]
    fn message_records_read_with_and_without_a_verdict() {
        use crate::spool::message::{MessageId, Verdict};
        let meta = MessageMeta {
            id: MessageId(7),
            received_unix: 1,
            size: 3,
            body_crc: 9,
            sender: "a@b.test".into(),
            recipients: Vec::new(),
            attempts: 0,
            next_attempt_unix: 0,
            last_error: String::new(),
            warned: false,
            verdict: None,
        };
        let plain = MessageRec {
            meta: meta.clone(),
            body: Body::Inline,
        };
        let mut buf = vec![0u8; 4096];
        // A record as written before the verdict existed: (meta, body) only.
        let old = postcard::to_slice(&(&meta, &Body::Inline), &mut buf)
            .unwrap()
            .to_vec();
        assert_eq!(decode::<MessageRec>(&old).unwrap(), plain);
        let bytes = postcard::to_slice(&plain, &mut buf).unwrap().to_vec();
        assert_eq!(bytes, old, "no verdict: the same bytes as before");
        let mut with = plain.clone();
        with.meta.verdict = Some(Verdict {
            spam_score: 5,
            spam_threshold: 5,
            spam_rules: "HELO_IP_LITERAL,MISSING_MESSAGE_ID".into(),
            virus: "Eicar-Test-Signature".into(),
        });
        let bytes = postcard::to_slice(&with, &mut buf).unwrap().to_vec();
        assert_eq!(decode::<MessageRec>(&bytes).unwrap(), with);
        assert!(decode::<MessageRec>(&bytes[..old.len() - 1]).is_err());
    }
}
