//! crypt(3) password hashes as `/etc/shadow` stores them, verified the way glibc and musl
//! compute them: `$1$` MD5-crypt (older OpenWrt), `$5$` SHA-256-crypt and `$6$`
//! SHA-512-crypt (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", with
//! `rounds=N`). SHA-2 comes from ring, which rustls links anyway; MD5 is the small
//! implementation below (RFC 1321), used for nothing but this legacy format.
//!
//! Cost is bounded: SHA-crypt's `rounds` is clamped to [1000, 999999999] as the spec says,
//! and hashes asking for more than [`MAX_ROUNDS`] are refused (never verified) so a hostile
//! or corrupt password file cannot pin a worker thread for minutes. Anything that is not
//! one of these formats (locked `!`/`*` accounts, yescrypt `$y$`) never verifies.

use ring::digest::{self, Context};

/// The most SHA-crypt rounds verified (the default is 5000; at 10 million a login takes
/// seconds on a router CPU, and a larger count only makes the page hang).
pub const MAX_ROUNDS: u32 = 10_000_000;

/// True if `password` hashes to `hash` (`$1$…`, `$5$…` or `$6$…`).
pub fn verify(password: &str, hash: &str) -> bool {
    let computed = if let Some(rest) = hash.strip_prefix("$1$") {
        Some(md5_crypt(password.as_bytes(), rest))
    } else if let Some(rest) = hash.strip_prefix("$5$") {
        sha_crypt(Sha::Sha256, password.as_bytes(), rest)
    } else if let Some(rest) = hash.strip_prefix("$6$") {
        sha_crypt(Sha::Sha512, password.as_bytes(), rest)
    } else {
        None
    };
    computed.is_some_and(|c| crate::auth::constant_time_eq(&c, hash))
}

/// crypt's base-64 alphabet.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `n` characters encoding the 24 bits `b2 b1 b0`, least significant first.
fn b64_24(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(char::from(ITOA64[(w & 0x3f) as usize]));
        w >>= 6;
    }
}

#[derive(Clone, Copy)]
enum Sha {
    Sha256,
    Sha512,
}

impl Sha {
    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            Sha::Sha256 => &digest::SHA256,
            Sha::Sha512 => &digest::SHA512,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Sha::Sha256 => "$5$",
            Sha::Sha512 => "$6$",
        }
    }

    /// Output byte order: groups of three bytes, each encoded as four characters.
    fn groups(self) -> &'static [[usize; 3]] {
        match self {
            Sha::Sha256 => &[
                [0, 10, 20],
                [21, 1, 11],
                [12, 22, 2],
                [3, 13, 23],
                [24, 4, 14],
                [15, 25, 5],
                [6, 16, 26],
                [27, 7, 17],
                [18, 28, 8],
                [9, 19, 29],
            ],
            Sha::Sha512 => &[
                [0, 21, 42],
                [22, 43, 1],
                [44, 2, 23],
                [3, 24, 45],
                [25, 46, 4],
                [47, 5, 26],
                [6, 27, 48],
                [28, 49, 7],
                [50, 8, 29],
                [9, 30, 51],
                [31, 52, 10],
                [53, 11, 32],
                [12, 33, 54],
                [34, 55, 13],
                [56, 14, 35],
                [15, 36, 57],
                [37, 58, 16],
                [59, 17, 38],
                [18, 39, 60],
                [40, 61, 19],
                [62, 20, 41],
            ],
        }
    }
}

/// Adds `source` repeated cyclically until `len` bytes were added.
fn add_cycled(ctx: &mut Context, source: &[u8], len: usize) {
    let mut left = len;
    while left >= source.len() && !source.is_empty() {
        ctx.update(source);
        left -= source.len();
    }
    ctx.update(&source[..left.min(source.len())]);
}

/// SHA-crypt of `password` with the settings in `rest` (the hash after `$5$`/`$6$`:
/// `[rounds=N$]salt[$…]`); `None` if the settings are malformed or too costly.
fn sha_crypt(sha: Sha, password: &[u8], rest: &str) -> Option<String> {
    let (rounds, explicit, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, after) = r.split_once('$')?;
            let n: u64 = n.parse().ok()?;
            let n = n.clamp(1000, 999_999_999);
            (u32::try_from(n).ok()?, true, after)
        }
        None => (5000, false, rest),
    };
    if rounds > MAX_ROUNDS {
        return None;
    }
    let salt = rest.split('$').next().unwrap_or("").as_bytes();
    let salt = &salt[..salt.len().min(16)];
    let alg = sha.algorithm();
    let hash_len = alg.output_len();

    let mut b = Context::new(alg);
    b.update(password);
    b.update(salt);
    b.update(password);
    let b = b.finish();

    let mut a = Context::new(alg);
    a.update(password);
    a.update(salt);
    add_cycled(&mut a, b.as_ref(), password.len());
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b.as_ref());
        } else {
            a.update(password);
        }
        n >>= 1;
    }
    let a = a.finish();

    let mut dp = Context::new(alg);
    for _ in 0..password.len() {
        dp.update(password);
    }
    let dp = dp.finish();
    let mut p = Vec::with_capacity(password.len());
    while p.len() < password.len() {
        let take = (password.len() - p.len()).min(hash_len);
        p.extend_from_slice(&dp.as_ref()[..take]);
    }

    let mut ds = Context::new(alg);
    for _ in 0..16 + usize::from(a.as_ref()[0]) {
        ds.update(salt);
    }
    let ds = ds.finish();
    let s = &ds.as_ref()[..salt.len()];

    let mut c = a;
    for i in 0..rounds {
        let mut ctx = Context::new(alg);
        if i & 1 == 1 {
            ctx.update(&p);
        } else {
            ctx.update(c.as_ref());
        }
        if i % 3 != 0 {
            ctx.update(s);
        }
        if i % 7 != 0 {
            ctx.update(&p);
        }
        if i & 1 == 1 {
            ctx.update(c.as_ref());
        } else {
            ctx.update(&p);
        }
        c = ctx.finish();
    }

    let c = c.as_ref();
    let mut out = String::with_capacity(128);
    out.push_str(sha.id());
    if explicit {
        out.push_str(&format!("rounds={rounds}$"));
    }
    out.push_str(std::str::from_utf8(salt).ok()?);
    out.push('$');
    for g in sha.groups() {
        b64_24(&mut out, c[g[0]], c[g[1]], c[g[2]], 4);
    }
    match sha {
        Sha::Sha256 => b64_24(&mut out, 0, c[31], c[30], 3),
        Sha::Sha512 => b64_24(&mut out, 0, 0, c[63], 2),
    }
    Some(out)
}

/// MD5-crypt (`$1$`, Poul-Henning Kamp's FreeBSD scheme) of `password` with the salt in
/// `rest` (up to 8 characters before the next `$`).
fn md5_crypt(password: &[u8], rest: &str) -> String {
    let salt = rest.split('$').next().unwrap_or("").as_bytes();
    let salt = &salt[..salt.len().min(8)];

    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finish();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        ctx.update(&alt[..left.min(16)]);
        left = left.saturating_sub(16);
    }
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            ctx.update(&[0]);
        } else {
            ctx.update(&password[..1]);
        }
        n >>= 1;
    }
    let mut fin = ctx.finish();
    for i in 0..1000 {
        let mut c = Md5::new();
        if i & 1 == 1 {
            c.update(password);
        } else {
            c.update(&fin);
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(password);
        }
        if i & 1 == 1 {
            c.update(&fin);
        } else {
            c.update(password);
        }
        fin = c.finish();
    }

    let mut out = String::with_capacity(34);
    out.push_str("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for g in [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]] {
        b64_24(&mut out, fin[g[0]], fin[g[1]], fin[g[2]], 4);
    }
    b64_24(&mut out, 0, 0, fin[11], 2);
    out
}

/// MD5 (RFC 1321), incremental. Only for MD5-crypt: never for anything new.
struct Md5 {
    state: [u32; 4],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
}

const MD5_S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// floor(abs(sin(i + 1)) * 2^32), RFC 1321 section 3.4.
const MD5_K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

impl Md5 {
    fn new() -> Self {
        Self {
            state: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476],
            buf: [0; 64],
            buf_len: 0,
            total: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len == 64 {
                let block = self.buf;
                self.block(&block);
                self.buf_len = 0;
            }
        }
    }

    fn finish(mut self) -> [u8; 16] {
        let bits = self.total.wrapping_mul(8);
        self.update(&[0x80]);
        while self.buf_len != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_le_bytes());
        let mut out = [0u8; 16];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    fn block(&mut self, block: &[u8; 64]) {
        let mut m = [0u32; 16];
        for (w, chunk) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let [mut a, mut b, mut c, mut d] = self.state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let sum = a.wrapping_add(f).wrapping_add(MD5_K[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(sum.rotate_left(MD5_S[i]));
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "a much longer password of sixty-six characters, to cover the loops";

    /// (password, hash) made by glibc's crypt(3) (Python's crypt module on Debian 12),
    /// including Drepper's own examples with `rounds=` and a salt cut to 16 characters.
    const VECTORS: &[(&str, &str)] = &[
        (
            "Hello world!",
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
        ),
        (
            "Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        ),
        (
            "Hello world!",
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
        ),
        (
            "Hello world!",
            "$6$rounds=1000$toolongsaltstrin$sesQxVr.eO8J/1tYcwFWM0XaMVaHFLetz9ssK1oNSPUQgLRm8v3S4i6CgxB9aqGOAFFEMnB2V1gvxEm/Gv2gw/",
        ),
        (
            "",
            "$6$emptypw$TWmzQ8/uLn1BFSZ5Lkfum8lAba5vixF9Nl3Aiof.Praatq9nh0kkPuTdoVrIL6du0L6LAoadbPq.q.D7keveg/",
        ),
        (
            "demo",
            "$6$mailbagdemo$i3JeUS2cDa25AdjZjMOCIrE9uOmGdwl.SAslb4uWvCombtMQLp6/tbY1hVziOTPQ7me4cfDBiW1UgfGyBxeb/.",
        ),
        ("password", "$1$abcdefgh$G//4keteveJp0qb8z2DxG/"),
        ("", "$1$x$fwjfZtMwarkdetsjiQreU1"),
        (LONG, "$1$saltsalt$P39uoCqoQFXf7mLPWfEGQ0"),
        (
            LONG,
            "$5$rounds=1234$s$z7LYndkqo8CrwCUwWexDCTnePYzk2GuP/X/9PsiRp05",
        ),
        (
            LONG,
            "$6$rounds=1000$$fQV7w.vKbSSlCcXCMBs3xhMvRH03dvOFr4YCJDwllMkNOM0AHa39XskeO1Gekw6/eInRGXr35T38WoWlBo/V9.",
        ),
        (
            "pässwörd",
            "$6$utf8salt$Nf6juS0Q3mv0f53eB4BVd6Njt8ABkI/Nw9Yqy9ZA65U6sGRcr2ajrL8Kwlq2SfdEvHi3Rhn/AVzWRrTM5gRn80",
        ),
    ];

    #[test]
    fn glibc_hashes_verify_and_wrong_passwords_do_not() {
        for (pw, hash) in VECTORS {
            assert!(verify(pw, hash), "{pw:?} {hash}");
            assert!(!verify(&format!("{pw}x"), hash), "{pw:?}x {hash}");
        }
    }

    #[test]
    fn md5_matches_rfc_1321() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let md5 = |s: &[u8]| {
            let mut m = Md5::new();
            m.update(s);
            hex(m.finish())
        };
        assert_eq!(md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn other_formats_and_damage_never_verify() {
        for hash in [
            "!",
            "*",
            "",
            "$y$j9T$abc$def",
            "$2b$10$abcdefghijklmnopqrstuu",
            "$6$rounds=x$salt$hash",
            "$6$rounds=5000",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl",
        ] {
            assert!(!verify("Hello world!", hash), "{hash}");
        }
        // A cost beyond MAX_ROUNDS is refused without computing it.
        assert!(sha_crypt(Sha::Sha512, b"x", "rounds=999999999$salt$").is_none());
    }
}
