//! On-flash records: a kind byte, a format version, a postcard payload and a CRC-32.
//!
//! ```text
//! +------+---------+---------------------+-------------------+
//! | kind | version | postcard(payload)   | crc32 LE (4 bytes)|
//! +------+---------+---------------------+-------------------+
//! ```
//! postcard encodes integers as LEB128 varints and strings as length + UTF-8, so the bytes
//! are the same on big- and little-endian machines; the CRC is stored little-endian
//! explicitly. The CRC covers kind, version and payload.

use serde::{Serialize, de::DeserializeOwned};

use super::crc::crc32;

/// Format version written by this build. Readers accept `1..=FORMAT_VERSION` (1: one file
/// per message, read only to migrate; 2: the log of `docs/spool.md`).
pub const FORMAT_VERSION: u8 = 2;

/// Largest encoded record (a message record with 100 long recipients fits).
pub const RECORD_MAX: usize = 32 * 1024;

/// What a record holds; the first byte of every record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The spool header (`/spool.hdr`).
    Header = b'H',
    /// A format-1 message record (`/q/<id>.m`).
    Message = b'M',
}

/// Why a record could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than the framing, or empty (an interrupted create).
    Truncated,
    /// The checksum does not match: the bytes were damaged.
    Checksum,
    /// Another kind of record than expected.
    WrongKind(u8),
    /// Written by a newer mailbag.
    NewerVersion(u8),
    /// Framing fine, payload not decodable.
    Payload,
    /// The value does not fit in [`RECORD_MAX`] bytes.
    TooLarge,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Truncated => f.write_str("record is truncated"),
            RecordError::Checksum => f.write_str("record checksum mismatch"),
            RecordError::WrongKind(k) => write!(f, "unexpected record kind 0x{k:02x}"),
            RecordError::NewerVersion(v) => {
                write!(
                    f,
                    "record format {v} is newer than this build reads ({FORMAT_VERSION})"
                )
            }
            RecordError::Payload => f.write_str("record payload is malformed"),
            RecordError::TooLarge => f.write_str("record too large"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Encodes `value` as a `kind` record into `buf`; returns the used prefix.
pub fn encode<'b, T: Serialize>(
    kind: Kind,
    value: &T,
    buf: &'b mut [u8],
) -> Result<&'b [u8], RecordError> {
    if buf.len() < 6 {
        return Err(RecordError::TooLarge);
    }
    buf[0] = kind as u8;
    buf[1] = FORMAT_VERSION;
    let end = buf.len() - 4;
    let n = postcard::to_slice(value, &mut buf[2..end])
        .map_err(|_| RecordError::TooLarge)?
        .len();
    let crc = crc32(0, &buf[..2 + n]);
    buf[2 + n..2 + n + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(&buf[..2 + n + 4])
}

/// The format version of a record whose checksum and kind are right (the payload is not
/// decoded): lets a reader pick the payload type of that version.
pub fn version(kind: Kind, bytes: &[u8]) -> Result<u8, RecordError> {
    let (body, _) = checked(kind, bytes)?;
    Ok(body[1])
}

fn checked(kind: Kind, bytes: &[u8]) -> Result<(&[u8], ()), RecordError> {
    if bytes.len() < 6 {
        return Err(RecordError::Truncated);
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32(0, body) != stored {
        return Err(RecordError::Checksum);
    }
    if body[0] != kind as u8 {
        return Err(RecordError::WrongKind(body[0]));
    }
    if body[1] > FORMAT_VERSION || body[1] == 0 {
        return Err(RecordError::NewerVersion(body[1]));
    }
    Ok((body, ()))
}

/// Encodes `value` as a `kind` record of an older format `version` (tests that build
/// format-1 images, and nothing else).
#[doc(hidden)]
pub fn encode_version<'b, T: Serialize>(
    kind: Kind,
    version: u8,
    value: &T,
    buf: &'b mut [u8],
) -> Result<&'b [u8], RecordError> {
    let n = encode(kind, value, buf)?.len();
    buf[1] = version;
    let crc = crc32(0, &buf[..n - 4]);
    buf[n - 4..n].copy_from_slice(&crc.to_le_bytes());
    Ok(&buf[..n])
}

/// Decodes a `kind` record.
pub fn decode<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T, RecordError> {
    let (body, ()) = checked(kind, bytes)?;
    postcard::from_bytes(&body[2..]).map_err(|_| RecordError::Payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        n: u64,
        s: heapless::String<16>,
    }

    fn sample() -> Sample {
        Sample {
            n: 0x0102_0304_0506,
            s: heapless::String::try_from("héllo").unwrap(),
        }
    }

    #[test]
    fn round_trip_and_exact_bytes() {
        let mut buf = [0u8; 64];
        let bytes = encode(Kind::Message, &sample(), &mut buf).unwrap().to_vec();
        // The encoding is byte-for-byte fixed: varint n, length-prefixed UTF-8, LE CRC.
        // This is what makes images portable between big- and little-endian routers.
        assert_eq!(&bytes[..2], b"M\x02");
        assert_eq!(&bytes[2..8], &[0x86, 0x8a, 0x90, 0x98, 0xa0, 0x20]);
        assert_eq!(&bytes[8..15], b"\x06h\xc3\xa9llo");
        let v: Sample = decode(Kind::Message, &bytes).unwrap();
        assert_eq!(v, sample());
    }

    #[test]
    fn damage_is_detected() {
        let mut buf = [0u8; 64];
        let good = encode(Kind::Message, &sample(), &mut buf).unwrap().to_vec();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(
                decode::<Sample>(Kind::Message, &bad).is_err(),
                "flip at byte {i} undetected"
            );
        }
        assert_eq!(
            decode::<Sample>(Kind::Message, &[]),
            Err(RecordError::Truncated)
        );
        assert_eq!(
            decode::<Sample>(Kind::Header, &good),
            Err(RecordError::WrongKind(b'M'))
        );
    }

    #[test]
    fn newer_versions_are_refused() {
        let mut buf = [0u8; 64];
        let mut bytes = encode(Kind::Message, &sample(), &mut buf).unwrap().to_vec();
        bytes[1] = FORMAT_VERSION + 1;
        let n = bytes.len() - 4;
        let crc = crc32(0, &bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode::<Sample>(Kind::Message, &bytes),
            Err(RecordError::NewerVersion(FORMAT_VERSION + 1))
        );
    }

    #[test]
    fn too_small_buffer_is_an_error() {
        let mut buf = [0u8; 8];
        assert_eq!(
            encode(Kind::Message, &sample(), &mut buf),
            Err(RecordError::TooLarge)
        );
    }
}
