//! Just enough HTTP/1.1 for a webhook (RFC 9112): a URL, one POST request with a JSON
//! body and `Connection: close`, and the status code of the answer. The daemon does the
//! connecting (TLS for `https`) and reads at most [`RESPONSE_HEAD_MAX`] bytes back.

use core::fmt;

/// Longest URL accepted.
pub const URL_MAX: usize = 512;
/// Most bytes of an answer read to find its status line.
pub const RESPONSE_HEAD_MAX: usize = 4096;

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP (default port 80).
    Http,
    /// TLS, the certificate checked against the system's CAs (default port 443).
    Https,
}

/// A parsed webhook URL: `http[s]://host[:port][/path][?query]` (no user info, no fragment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or address (IPv6 without its brackets).
    pub host: String,
    /// Port (the scheme's default when not given).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

/// Why a URL was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

impl Url {
    /// The one checked constructor.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let bad = |why: &str| Err(UrlError(format!("'{s}': {why}")));
        if s.len() > URL_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("not a URL (printable ASCII, no spaces, at most 512 characters)");
        }
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return bad("only http:// and https:// URLs");
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || target.contains('#') {
            return bad("no user info or fragment in a webhook URL");
        }
        let default = if scheme == Scheme::Http { 80 } else { 443 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                return bad("unclosed '[' in the host");
            };
            match after.strip_prefix(':') {
                Some(p) => (h, p.parse().ok()),
                None if after.is_empty() => (h, Some(default)),
                None => return bad("garbage after the IPv6 address"),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()),
                None => (authority, Some(default)),
            }
        };
        let Some(port) = port.filter(|p| *p != 0) else {
            return bad("the port must be 1-65535");
        };
        if host.is_empty() {
            return bad("no host");
        }
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_owned()
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            target,
        })
    }

    /// The `Host:` header value.
    pub fn host_header(&self) -> String {
        let default = matches!(
            (self.scheme, self.port),
            (Scheme::Http, 80) | (Scheme::Https, 443)
        );
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The whole request: `POST`, `Host`, `User-Agent`, `Content-Type: application/json`,
/// `Content-Length`, `Connection: close`, then `body`.
pub fn post_json(url: &Url, body: &str) -> Vec<u8> {
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailbag/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.target,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The status code from the start of an answer: `Ok(None)` while the status line is not
/// complete yet, an error when what came is not HTTP.
pub fn status(head: &[u8]) -> Result<Option<u16>, UrlError> {
    let Some(end) = head.windows(2).position(|w| w == b"\r\n") else {
        if head.len() >= RESPONSE_HEAD_MAX {
            return Err(UrlError("no status line in the answer".into()));
        }
        return Ok(None);
    };
    let line = &head[..end];
    let code = line
        .strip_prefix(b"HTTP/1.")
        .and_then(|r| r.get(2..5))
        .filter(|c| c.iter().all(u8::is_ascii_digit))
        .and_then(|c| core::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok());
    match code {
        Some(c) => Ok(Some(c)),
        None => Err(UrlError(format!(
            "not an HTTP answer: '{}'",
            String::from_utf8_lossy(&line[..line.len().min(60)])
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_their_defaults() {
        let u = Url::parse("https://hooks.example.com/notify?k=1").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.target.as_str()),
            (Scheme::Https, "hooks.example.com", 443, "/notify?k=1")
        );
        assert_eq!(u.host_header(), "hooks.example.com");
        let u = Url::parse("http://127.0.0.1:8099").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header().as_str()),
            (8099, "/", "127.0.0.1:8099")
        );
        let u = Url::parse("http://[::1]:81/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.host_header().as_str()),
            ("::1", "[::1]:81")
        );
        for bad in [
            "ftp://x/",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://u:p@h/",
            "http://h/a b",
            "http://[::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_is_one_post_with_its_length() {
        let u = Url::parse("http://h:8/hook").unwrap();
        let r = String::from_utf8(post_json(&u, "{\"a\":1}")).unwrap();
        assert!(r.starts_with("POST /hook HTTP/1.1\r\nHost: h:8\r\n"), "{r}");
        assert!(r.contains("Content-Length: 7\r\nConnection: close\r\n\r\n{\"a\":1}"));
    }

    #[test]
    fn the_status_line_is_read_or_refused() {
        assert_eq!(status(b"HTTP/1.1 204 No Content\r\n"), Ok(Some(204)));
        assert_eq!(status(b"HTTP/1.0 500 x\r\nA: b\r\n"), Ok(Some(500)));
        assert_eq!(status(b"HTTP/1.1 20"), Ok(None));
        assert!(status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(status(&[b'x'; RESPONSE_HEAD_MAX]).is_err());
    }
}
