//! Reading a DNS message (RFC 1035 §4.1): resource records and names, compressed or not,
//! every read bounds-checked.

use super::{Name, ResponseError};

/// Compression pointers followed while reading one name.
const POINTERS_MAX: usize = 64;

/// `.`, the null MX's exchange (RFC 7505).
pub(super) fn root() -> Name {
    let mut n = Name::new();
    // Capacity DOMAIN_MAX ≥ 1.
    let _ = n.push('.');
    n
}

/// An answer record, its RDATA left in place (offsets into the message).
pub(super) struct Rr {
    pub(super) owner: Name,
    pub(super) rtype: u16,
    pub(super) class: u16,
    pub(super) ttl: u32,
    pub(super) rdata: usize,
    pub(super) rdlen: usize,
}

pub(super) fn read_rr(msg: &[u8], pos: usize) -> Result<(Rr, usize), ResponseError> {
    let (owner, pos) = read_name(msg, pos)?;
    let field = msg.get(pos..pos + 10).ok_or(ResponseError::Malformed)?;
    let rtype = u16::from_be_bytes([field[0], field[1]]);
    let class = u16::from_be_bytes([field[2], field[3]]);
    // RFC 2181 §8: a TTL with the top bit set is read as zero.
    let ttl = match u32::from_be_bytes([field[4], field[5], field[6], field[7]]) {
        t if t > i32::MAX as u32 => 0,
        t => t,
    };
    let rdlen = usize::from(u16::from_be_bytes([field[8], field[9]]));
    let rdata = pos + 10;
    if msg.len() < rdata + rdlen {
        return Err(ResponseError::Malformed);
    }
    let rr = Rr {
        owner,
        rtype,
        class,
        ttl,
        rdata,
        rdlen,
    };
    Ok((rr, rdata + rdlen))
}

/// One TXT record's RDATA: length-prefixed character-strings, joined.
pub(super) fn read_txt(data: &[u8]) -> Result<String, ResponseError> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let piece = tail
            .get(..usize::from(len))
            .ok_or(ResponseError::Malformed)?;
        out.extend_from_slice(piece);
        rest = &tail[usize::from(len)..];
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

pub(super) fn read_u16(msg: &[u8], pos: usize) -> Option<u16> {
    let b = msg.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads the (possibly compressed) name at `pos`; returns it (empty for the root) and the
/// offset just past it where it started.
pub(super) fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), ResponseError> {
    let mut name = Name::new();
    let mut pos = start;
    let mut end = None;
    let mut wire_len = 1usize; // the root byte
    for _ in 0..POINTERS_MAX {
        // Bounded: each label adds at least 2 to `wire_len`, which stops at 255.
        loop {
            let len = *msg.get(pos).ok_or(ResponseError::Malformed)?;
            match len & 0xc0 {
                0x00 if len == 0 => return Ok((name, end.unwrap_or(pos + 1))),
                0x00 => {
                    let len = usize::from(len);
                    let label = msg
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(ResponseError::Malformed)?;
                    wire_len += len + 1;
                    if wire_len > 255 || !label.iter().all(|&b| b.is_ascii_graphic() && b != b'.') {
                        return Err(ResponseError::Malformed);
                    }
                    if !name.is_empty() {
                        name.push('.').map_err(|_| ResponseError::Malformed)?;
                    }
                    for &b in label {
                        name.push(char::from(b.to_ascii_lowercase()))
                            .map_err(|_| ResponseError::Malformed)?;
                    }
                    pos += 1 + len;
                }
                0xc0 => {
                    let low = *msg.get(pos + 1).ok_or(ResponseError::Malformed)?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                    // Strictly backwards: a chain of pointers can never come back.
                    if target >= pos {
                        return Err(ResponseError::Malformed);
                    }
                    end.get_or_insert(pos + 2);
                    pos = target;
                    break;
                }
                // 0x40 and 0x80 are the obsolete extended label types (RFC 6891 §5).
                _ => return Err(ResponseError::Malformed),
            }
        }
    }
    Err(ResponseError::Malformed)
}
