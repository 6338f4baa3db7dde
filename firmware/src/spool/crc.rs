//! CRC-32 (IEEE 802.3, the zlib/PNG polynomial), slicing by 4: four tables built at compile
//! time (4 KiB of read-only data; no dependency). Every body chunk is summed when it is
//! written and again when it is read for delivery, so this is on the spool thread's hot
//! path: four bytes per step run about three times faster than the one-table loop (the
//! drain profile in docs/spool.md, "Costs").

const TABLES: [[u32; 256]; 4] = tables();

const fn tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 4 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

/// Continues a CRC-32 over `data` (start with `0`).
pub fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let x = c ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        c = TABLES[3][(x & 0xff) as usize]
            ^ TABLES[2][((x >> 8) & 0xff) as usize]
            ^ TABLES[1][((x >> 16) & 0xff) as usize]
            ^ TABLES[0][(x >> 24) as usize];
    }
    for &b in words.remainder() {
        c = TABLES[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(0, b""), 0);
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        let split = crc32(crc32(0, b"12345"), b"6789");
        assert_eq!(split, 0xCBF4_3926, "incremental equals one-shot");
    }

    /// The four-byte steps agree with the bitwise definition at every length and split.
    #[test]
    fn slicing_matches_the_bitwise_crc() {
        fn bitwise(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        (c >> 1) ^ 0xEDB8_8320
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 5) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                crc32(0, &data[..len]),
                bitwise(&data[..len]),
                "length {len}"
            );
        }
        for cut in 0..40 {
            let (a, b) = data.split_at(cut);
            assert_eq!(crc32(crc32(0, a), b), bitwise(&data), "split at {cut}");
        }
    }
}
