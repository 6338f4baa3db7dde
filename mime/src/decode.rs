//! Content-Transfer-Encoding decoders (RFC 2045 §6): streaming base64 and quoted-printable.

/// A part's Content-Transfer-Encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// 7bit, 8bit, binary or unknown: the bytes as they are.
    #[default]
    Plain,
    /// RFC 2045 §6.8.
    Base64,
    /// RFC 2045 §6.7.
    QuotedPrintable,
}

impl Encoding {
    /// The header's value, case-insensitively; anything unknown is [`Encoding::Plain`].
    pub fn parse(value: &str) -> Self {
        let v = value.trim();
        if v.eq_ignore_ascii_case("base64") {
            Self::Base64
        } else if v.eq_ignore_ascii_case("quoted-printable") {
            Self::QuotedPrintable
        } else {
            Self::Plain
        }
    }
}

/// A streaming base64 decoder that carries partial groups across lines; characters
/// outside the alphabet are skipped (RFC 2045 §6.8), `=` ends the data.
#[derive(Clone, Copy, Debug, Default)]
pub struct Base64 {
    acc: u32,
    bits: u8,
    done: bool,
}

impl Base64 {
    /// Decodes `input` into `out`, which must hold `input.len()` bytes (decoding never
    /// expands); returns the bytes written. Excess output is dropped, never a panic.
    pub fn feed(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let mut n = 0;
        for &c in input {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    self.done = true;
                    continue;
                }
                _ => continue,
            };
            if self.done {
                continue;
            }
            self.acc = (self.acc << 6) | u32::from(v);
            self.bits += 6;
            if self.bits >= 8 {
                self.bits -= 8;
                if let Some(slot) = out.get_mut(n) {
                    *slot = (self.acc >> self.bits) as u8;
                    n += 1;
                }
            }
        }
        n
    }
}

/// Decodes one quoted-printable line body (without its line end) into `out` (at least
/// `body.len()` bytes); returns the bytes written and whether it ended in a soft break.
pub fn quoted_printable(body: &[u8], out: &mut [u8]) -> (usize, bool) {
    let (body, soft) = match body.strip_suffix(b"=") {
        Some(b) => (b, true),
        None => (body, false),
    };
    let mut n = 0;
    let mut i = 0;
    while i < body.len() && n < out.len() {
        let b = body[i];
        if b == b'=' {
            if let (Some(h), Some(l)) = (hex(body.get(i + 1)), hex(body.get(i + 2))) {
                out[n] = (h << 4) | l;
                n += 1;
                i += 3;
                continue;
            }
        }
        out[n] = b;
        n += 1;
        i += 1;
    }
    (n, soft)
}

/// One hex digit's value.
pub(crate) fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_carries_groups_across_calls_and_skips_junk() {
        let mut d = Base64::default();
        let mut out = [0u8; 16];
        let n1 = d.feed(b"SGVs", &mut out);
        let mut out2 = [0u8; 16];
        let n2 = d.feed(b"b G8\r\n=junk", &mut out2);
        assert_eq!(&out[..n1], b"Hel");
        assert_eq!(&out2[..n2], b"lo");
    }

    #[test]
    fn quoted_printable_escapes_and_soft_breaks() {
        let mut out = [0u8; 32];
        let (n, soft) = quoted_printable(b"caf=C3=A9 =3D x=", &mut out);
        assert_eq!(&out[..n], "café = x".as_bytes());
        assert!(soft);
        let (n, soft) = quoted_printable(b"bad =ZZ =4", &mut out);
        assert_eq!(&out[..n], b"bad =ZZ =4");
        assert!(!soft);
    }
}
