//! Listeners and session slots: a fixed number of sessions run at once; a connection that
//! finds every slot taken gets `421 4.3.2` and is closed (the sender retries later).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::connection::{self, Ctx};

/// Connections being turned away at once; past this, excess connections are just closed.
pub const REJECTING_MAX: usize = 64;
/// How long a turned-away client gets to read its 421.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` (IPv6 sockets are v6-only, so `0.0.0.0:25` and `[::]:25` can coexist).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Accepts connections until the daemon stops.
pub async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    slots: Arc<Semaphore>,
    rejecting: Arc<Semaphore>,
) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                crate::log!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let busy = b"421 4.3.2 Too many connections, try again later\r\n";
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            turn_away(stream, &rejecting, busy);
            continue;
        };
        // Connection floods: at most `policy.sessions-per-client` per IPv4 address or
        // IPv6 /64, so one client cannot take every slot.
        let settings = ctx.inbound.get();
        let trusted = settings.protection.trusted.contains(peer.ip());
        let per_client = settings.protection.sessions_per_client;
        let Some(client_slot) = ctx.guard.open_session(peer.ip(), trusted, per_client) else {
            drop(permit);
            let flood = b"421 4.7.0 Too many connections from your address, try again later\r\n";
            turn_away(stream, &rejecting, flood);
            continue;
        };
        let ctx = Arc::clone(&ctx);
        crate::daemon::task::spawn(async move {
            connection::serve(stream, peer, ctx).await;
            drop(client_slot);
            drop(permit);
        });
    }
}

/// Writes `msg` (a 421) and closes, in its own task; past [`REJECTING_MAX`] at once the
/// connection is just closed.
fn turn_away(stream: tokio::net::TcpStream, rejecting: &Arc<Semaphore>, msg: &'static [u8]) {
    let Ok(permit) = Arc::clone(rejecting).try_acquire_owned() else {
        return;
    };
    crate::daemon::task::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(REJECT_WRITE_TIMEOUT, stream.write_all(msg)).await;
        let _ = stream.shutdown().await;
        drop(permit);
    });
}
