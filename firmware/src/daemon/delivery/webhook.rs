//! The webhook POST: connect (TLS for `https`, the certificate checked against the
//! system's CAs), send [`crate::monitor::http::post_json`], read the status line. Bounded:
//! [`TIMEOUT`] for the whole exchange, at most [`RESPONSE_HEAD_MAX`] bytes read.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::monitor::http::{self, RESPONSE_HEAD_MAX, Scheme, Url};

/// Longest a webhook may take, connect to answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// POSTs `body` to `url`; the answer's status code, or why there is none. A status
/// outside 2xx is an error.
pub async fn post(
    url: &str,
    body: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<u16, String> {
    let url = Url::parse(url).map_err(|e| e.to_string())?;
    let status = tokio::time::timeout(TIMEOUT, exchange(&url, body, tls))
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))??;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!("HTTP {status}"))
    }
}

async fn exchange(
    url: &Url,
    body: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<u16, String> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = http::post_json(url, body);
    match url.scheme {
        Scheme::Http => talk(tcp, &request).await,
        Scheme::Https => {
            let tls = tls.ok_or("https: no CA certificates on this system to check the server")?;
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| format!("https: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            talk(stream, &request).await
        }
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &[u8]) -> Result<u16, String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    s.flush().await.map_err(|e| format!("send: {e}"))?;
    let mut head = vec![0u8; RESPONSE_HEAD_MAX];
    let mut got = 0;
    loop {
        let n = s
            .read(&mut head[got..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        got += n;
        if let Some(code) = http::status(&head[..got]).map_err(|e| e.to_string())? {
            let _ = s.shutdown().await;
            return Ok(code);
        }
        if n == 0 {
            return Err("closed before a status line".into());
        }
    }
}
