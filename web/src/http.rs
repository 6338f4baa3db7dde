//! Transport-free requests and responses: what the handlers see and return.
//!
//! The tiny-http adapter (`server.rs`) fills a [`Request`] from the socket (with the body
//! already read and bounded) and writes the [`Response`] back, so every handler can be
//! tested without a socket.

use std::net::IpAddr;

use serde::Serialize;

use crate::backend::MessageSource;

/// Largest request body accepted (settings forms and bulk actions fit easily).
pub const BODY_MAX: usize = 64 * 1024;

/// The request methods the page uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET (and HEAD, answered like GET).
    Get,
    /// POST: every state-changing request.
    Post,
    /// Anything else: 405.
    Other,
}

/// One request, with only the headers the handlers look at.
#[derive(Debug)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Query string without `?`.
    pub query: String,
    /// `Cookie` header.
    pub cookie: Option<String>,
    /// `X-CSRF-Token` header.
    pub csrf: Option<String>,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// Client address (for the login rate limit).
    pub client: IpAddr,
    /// Body, at most [`BODY_MAX`] bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A bodiless request, for tests and internal use.
    pub fn new(method: Method, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            cookie: None,
            csrf: None,
            authorization: None,
            content_type: None,
            client: IpAddr::from([127, 0, 0, 1]),
            body: Vec::new(),
        }
    }

    /// The value of cookie `name`, if sent.
    pub fn cookie_value(&self, name: &str) -> Option<&str> {
        self.cookie.as_deref()?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }

    /// The decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space); bad escapes stay as is.
pub fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::mime::unescape_hex(s.as_bytes(), b'%', Some(b'+'))).into_owned()
}

/// A response body.
pub enum Body {
    /// Bytes built for this response.
    Bytes(Vec<u8>),
    /// An embedded asset.
    Static(&'static [u8]),
    /// A message streamed from the spool.
    Stream(MessageSource),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({})", String::from_utf8_lossy(b)),
            Self::Static(b) => write!(f, "Static({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// One response.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers besides the security headers every response gets.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Body,
}

impl Response {
    /// A JSON response. `<`, `>` and `&` are written as `\u003c`-style escapes so a JSON body
    /// holding hostile mail values is inert even if something renders it as HTML.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        let text = serde_json::to_string(value)
            .unwrap_or_else(|_| r#"{"error":"encoding failed"}"#.into());
        let safe = text
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        Self {
            status,
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body: Body::Bytes(safe.into_bytes()),
        }
    }

    /// A JSON error: `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The body as text (tests and diagnostics; empty for streams).
    pub fn text(&self) -> String {
        match &self.body {
            Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Body::Static(b) => String::from_utf8_lossy(b).into_owned(),
            Body::Stream(_) => String::new(),
        }
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers on every response: no framing, no sniffing, scripts and styles only from us.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_cookies_decode() {
        let mut r = Request::new(
            Method::Get,
            "/api/queue?q=a%20b+c&domain=ex%C3%A9.org&bad=%zz",
        );
        r.cookie = Some("x=1; mailbag_sid=abc; y=2".into());
        assert_eq!(r.query_param("q").as_deref(), Some("a b c"));
        assert_eq!(r.query_param("domain").as_deref(), Some("exé.org"));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(r.query_param("none"), None);
        assert_eq!(r.cookie_value("mailbag_sid"), Some("abc"));
    }

    #[test]
    fn json_escapes_markup() {
        let r = Response::json(
            200,
            &serde_json::json!({ "s": "</script><img onerror=x>&" }),
        );
        assert_eq!(
            r.text(),
            r#"{"s":"\u003c/script\u003e\u003cimg onerror=x\u003e\u0026"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(back["s"], "</script><img onerror=x>&");
    }
}
