//! clamd's INSTREAM protocol (clamd(8)), sans-IO: what to send while the body streams and
//! what clamd's answer means. The host owns the socket (TCP or a Unix socket).
//!
//! ```text
//! client: "zINSTREAM\0"  { u32-BE length, bytes }*  u32-BE 0
//! clamd:  "stream: OK\0" | "stream: <virus> FOUND\0" | "<text> ERROR\0"
//! ```
//!
//! A chunk is at most [`CHUNK_MAX`] bytes (clamd's default `StreamMaxLength` is far
//! larger in total; a message over it makes clamd answer `… size limit exceeded. ERROR`,
//! which is [`ScanResult::Error`]: handled like an unreachable clamd).

use std::net::SocketAddr;
use std::path::PathBuf;

/// The command that starts a scan (the `z` form: NUL-terminated).
pub const INSTREAM: &[u8] = b"zINSTREAM\0";
/// The zero-length chunk that ends the stream.
pub const END: [u8; 4] = [0; 4];
/// Largest chunk sent at once.
pub const CHUNK_MAX: usize = 16 * 1024;
/// Longest answer read from clamd.
pub const REPLY_MAX: usize = 512;

/// Where clamd listens (`scan.clamd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClamdAddr {
    /// `ip:port` (clamd runs on the router or the silo's LAN).
    Tcp(SocketAddr),
    /// `name:port`, looked up (the system resolver) at every connection.
    Host(String, u16),
    /// An absolute path of a Unix socket (`/var/run/clamav/clamd.ctl`).
    Unix(PathBuf),
}

impl ClamdAddr {
    /// Parses `127.0.0.1:3310`, `[::1]:3310`, `clamd.lan:3310` or `/run/clamd.sock`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(t)));
        }
        if let Ok(a) = t.parse::<SocketAddr>() {
            return Ok(Self::Tcp(a));
        }
        let bad = || format!("'{t}' is neither host:port nor an absolute Unix socket path");
        let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !name_ok || port == 0 {
            return Err(bad());
        }
        Ok(Self::Host(host.to_ascii_lowercase(), port))
    }
}

impl std::fmt::Display for ClamdAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Host(h, port) => write!(f, "{h}:{port}"),
            Self::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The length prefix of a chunk of `n` bytes (`n` ≤ [`CHUNK_MAX`]).
pub fn chunk_header(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

/// What clamd said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanResult {
    /// `stream: OK`.
    Clean,
    /// `stream: <name> FOUND`: the virus name (printable ASCII, bounded).
    Infected(String),
    /// Anything else (`… ERROR`, garbage): the scan did not happen.
    Error(String),
}

/// Reads clamd's answer (up to its NUL or newline).
pub fn parse_reply(bytes: &[u8]) -> ScanResult {
    let end = bytes
        .iter()
        .position(|&b| b == 0 || b == b'\n')
        .unwrap_or(bytes.len());
    let text: String = bytes[..end.min(REPLY_MAX)]
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    let body = text.strip_prefix("stream: ").unwrap_or(&text).trim();
    if body == "OK" {
        return ScanResult::Clean;
    }
    if let Some(name) = body.strip_suffix(" FOUND") {
        let name = name.trim();
        let mut name: String = name
            .chars()
            .take(crate::spool::message::VIRUS_MAX)
            .collect();
        if name.is_empty() {
            name.push_str("unnamed");
        }
        return ScanResult::Infected(name);
    }
    ScanResult::Error(if text.is_empty() {
        "no answer".into()
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_clean_infected_and_errors() {
        assert_eq!(parse_reply(b"stream: OK\0"), ScanResult::Clean);
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature FOUND\0"),
            ScanResult::Infected("Eicar-Test-Signature".into())
        );
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\n"),
            ScanResult::Infected("Win.Test.EICAR_HDB-1".into())
        );
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            ScanResult::Error(e) if e.contains("size limit")
        ));
        assert_eq!(parse_reply(b""), ScanResult::Error("no answer".into()));
        let long = [b"stream: ".as_slice(), &[b'A'; 400], b" FOUND\0"].concat();
        assert!(matches!(parse_reply(&long), ScanResult::Infected(n) if n.len() <= 96));
    }

    #[test]
    fn addresses_and_framing() {
        assert_eq!(
            ClamdAddr::parse("127.0.0.1:3310").unwrap(),
            ClamdAddr::Tcp("127.0.0.1:3310".parse().unwrap())
        );
        assert_eq!(
            ClamdAddr::parse("ClamD.lan:3310").unwrap(),
            ClamdAddr::Host("clamd.lan".into(), 3310)
        );
        for bad in [
            "clamd",
            "clamd:",
            "clamd:0",
            "clamd:99999",
            "-x:1",
            "a..b:1",
            "a b:1",
            ":3310",
        ] {
            assert!(ClamdAddr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ClamdAddr::parse("/run/clamav/clamd.ctl").unwrap(),
            ClamdAddr::Unix("/run/clamav/clamd.ctl".into())
        );
        assert!(ClamdAddr::parse("relative/clamd.sock").is_err());
        assert_eq!(chunk_header(16384), [0, 0, 0x40, 0]);
    }
}
