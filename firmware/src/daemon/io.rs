//! A TCP connection that may switch to TLS in the middle (STARTTLS, RFC 3207), shared by
//! the server sessions (`inbound::connection`) and the delivery client
//! (`delivery::outbound`). It imports no daemon subsystem.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Plain TCP, TLS over it (`T`: tokio-rustls's server or client stream), or gone (taken
/// for the handshake, or closed).
pub enum Io<T> {
    /// Before STARTTLS.
    Plain(TcpStream),
    /// After the handshake.
    Tls(Box<T>),
    /// No connection.
    Gone,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Io<T> {
    /// Reads what is there (0 at the end, or when gone).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s) => s.read(buf).await,
            Io::Gone => Ok(0),
        }
    }

    /// Writes all of `buf` (and flushes the TLS layer, which buffers records).
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(buf).await,
            Io::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Io::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Closes the write side (TLS: close_notify first); errors are of no use here.
    pub async fn shutdown(&mut self) {
        let _ = match self {
            Io::Plain(s) => s.shutdown().await,
            Io::Tls(s) => s.shutdown().await,
            Io::Gone => Ok(()),
        };
    }

    /// Takes the plain stream for a TLS handshake (None if TLS is already on).
    pub fn take_plain(&mut self) -> Option<TcpStream> {
        match std::mem::replace(self, Io::Gone) {
            Io::Plain(tcp) => Some(tcp),
            other => {
                *self = other;
                None
            }
        }
    }
}

/// Moves the unread bytes `buf[*start..*end]` to the front of `buf`, so the next read can
/// use the rest; returns false when the buffer is full of unread bytes.
pub fn compact(buf: &mut [u8], start: &mut usize, end: &mut usize) -> bool {
    if *start == *end {
        *start = 0;
        *end = 0;
    } else if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
    *end < buf.len()
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn compact_keeps_unread_bytes_and_reports_a_full_buffer() {
        let mut buf = *b"xxabcd";
        let (mut s, mut e) = (2, 4);
        assert!(compact(&mut buf, &mut s, &mut e));
        assert_eq!((&buf[..2], s, e), (&b"ab"[..], 0, 2));
        let (mut s, mut e) = (3, 3);
        assert!(compact(&mut buf, &mut s, &mut e));
        assert_eq!((s, e), (0, 0));
        let (mut s, mut e) = (0, 6);
        assert!(!compact(&mut buf, &mut s, &mut e));
    }
}
