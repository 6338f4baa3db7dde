//! The clamd client: one INSTREAM per message, fed while the body streams to flash, the
//! verdict read at the end of DATA ([`crate::policy::clamd`] has the protocol). Every
//! step is bounded by `scan.timeout` from the message's start; a failure is kept and
//! reported at the end, never an error in the middle of receiving.
//!
//! Only with the cargo feature `scan` (on by default, off in the router build): without
//! it `scan.clamd` is a configuration error and [`ClamdScan`] has no value, so everything
//! that handles a scan is dead code the compiler drops.

#[cfg(feature = "scan")]
use std::time::Duration;

#[cfg(feature = "scan")]
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
#[cfg(feature = "scan")]
use tokio::net::{TcpStream, UnixStream};
#[cfg(feature = "scan")]
use tokio::time::Instant;

#[cfg(feature = "scan")]
use crate::policy::clamd::{self, CHUNK_MAX, ClamdAddr, ScanResult};

#[cfg(feature = "scan")]
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
#[cfg(feature = "scan")]
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// One message's scan in progress.
#[cfg(feature = "scan")]
pub struct ClamdScan {
    conn: Option<Box<dyn Stream>>,
    deadline: Instant,
    error: Option<String>,
    sent: u64,
}

#[cfg(feature = "scan")]
impl ClamdScan {
    /// Connects and starts INSTREAM; a failure is remembered for [`ClamdScan::finish`].
    pub async fn start(addr: &ClamdAddr, timeout: Duration) -> Self {
        let deadline = Instant::now() + timeout;
        let connect = async {
            let mut conn: Box<dyn Stream> = match addr {
                ClamdAddr::Tcp(a) => Box::new(TcpStream::connect(a).await?),
                ClamdAddr::Host(h, port) => {
                    Box::new(TcpStream::connect((h.as_str(), *port)).await?)
                }
                ClamdAddr::Unix(p) => Box::new(UnixStream::connect(p).await?),
            };
            conn.write_all(clamd::INSTREAM).await?;
            Ok::<_, std::io::Error>(conn)
        };
        let (conn, error) = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(c)) => (Some(c), None),
            Ok(Err(e)) => (None, Some(format!("cannot reach clamd at {addr}: {e}"))),
            Err(_) => (
                None,
                Some(format!("clamd at {addr} did not answer in time")),
            ),
        };
        Self {
            conn,
            deadline,
            error,
            sent: 0,
        }
    }

    /// Streams the next content bytes.
    pub async fn send(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let n = bytes.len().min(CHUNK_MAX);
            let write = async {
                conn.write_all(&clamd::chunk_header(n)).await?;
                conn.write_all(&bytes[..n]).await
            };
            match tokio::time::timeout_at(self.deadline, write).await {
                Ok(Ok(())) => self.sent += n as u64,
                Ok(Err(e)) => return self.fail(format!("clamd stopped reading: {e}")),
                Err(_) => return self.fail("clamd too slow".into()),
            }
            bytes = &bytes[n..];
        }
    }

    fn fail(&mut self, why: String) {
        self.conn = None;
        self.error.get_or_insert(why);
    }

    /// Ends the stream and reads clamd's verdict.
    pub async fn finish(mut self) -> ScanResult {
        let Some(mut conn) = self.conn.take() else {
            return ScanResult::Error(self.error.unwrap_or_else(|| "not scanned".into()));
        };
        let answer = async {
            conn.write_all(&clamd::END).await?;
            let mut buf = [0u8; clamd::REPLY_MAX];
            let mut n = 0;
            while n < buf.len() {
                let got = conn.read(&mut buf[n..]).await?;
                if got == 0 {
                    break;
                }
                n += got;
                if buf[..n].contains(&0) || buf[..n].contains(&b'\n') {
                    break;
                }
            }
            Ok::<_, std::io::Error>(clamd::parse_reply(&buf[..n]))
        };
        match tokio::time::timeout_at(self.deadline, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => ScanResult::Error(format!("clamd: {e}")),
            Err(_) => ScanResult::Error("clamd did not answer in time".into()),
        }
    }
}

/// Without the `scan` feature no scan can exist (config validation refuses `scan.clamd`).
#[cfg(not(feature = "scan"))]
pub enum ClamdScan {}

#[cfg(not(feature = "scan"))]
impl ClamdScan {
    /// Never called: there is no scan to feed.
    pub async fn send(&mut self, _bytes: &[u8]) {
        match *self {}
    }

    /// Never called: there is no scan to finish.
    pub async fn finish(self) -> crate::policy::clamd::ScanResult {
        match self {}
    }
}
