//! The tiny-http edge: binds, runs a bounded pool of worker threads, reads bounded bodies,
//! and turns [`Response`]s into HTTP.
//!
//! Nothing here interprets request data beyond copying the few headers the handlers need;
//! a malformed request gets a 4xx reply and never a panic.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tiny_http::{Header, Server};

use crate::app::App;
use crate::http::{BODY_MAX, Body, Method, Request, Response, SECURITY_HEADERS};

/// Most worker threads, whatever the configuration asks.
pub const WORKERS_MAX: usize = 16;
/// Pending connections the kernel queues before refusing more.
const LISTEN_BACKLOG: i32 = 64;
/// How often idle workers look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Why the server did not start.
#[derive(Debug)]
pub struct BindError(pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen: {}", self.0)
    }
}

impl std::error::Error for BindError {}

/// The server stopped accepting connections.
#[derive(Debug)]
pub struct ServerDown(pub String);

impl std::fmt::Display for ServerDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "web server stopped accepting: {}", self.0)
    }
}

impl std::error::Error for ServerDown {}

/// A running web server; dropping it does not stop it, [`WebServer::stop`] does.
pub struct WebServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    down: Arc<Mutex<Option<String>>>,
    workers: Vec<JoinHandle<()>>,
}

impl WebServer {
    /// Binds `app.config().listen` and starts the workers.
    pub fn start(app: App) -> Result<Self, BindError> {
        let listener = bind(app.config().listen, app.config().write_timeout)
            .map_err(|e| BindError(e.to_string()))?;
        let server = Server::from_listener(listener, None).map_err(|e| BindError(e.to_string()))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| BindError("not an IP listener".into()))?;
        let server = Arc::new(server);
        let app = Arc::new(app);
        let stop = Arc::new(AtomicBool::new(false));
        let down = Arc::new(Mutex::new(None));
        let n = app.config().workers.clamp(1, WORKERS_MAX);
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let (server, app, stop, down) = (
                Arc::clone(&server),
                Arc::clone(&app),
                Arc::clone(&stop),
                Arc::clone(&down),
            );
            let handle = thread::Builder::new()
                .name(format!("web-{i}"))
                .spawn(move || worker(&server, &app, &stop, &down))
                .map_err(|e| BindError(e.to_string()))?;
            workers.push(handle);
        }
        Ok(Self {
            addr,
            stop,
            down,
            workers,
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the workers to finish their current request.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            let _ = w.join();
        }
    }

    /// Blocks until the workers end: after [`WebServer::stop`], or with an error when the
    /// server stopped accepting connections.
    pub fn join(self) -> Result<(), ServerDown> {
        for w in self.workers {
            let _ = w.join();
        }
        match self
            .down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(why) => Err(ServerDown(why)),
            None => Ok(()),
        }
    }
}

/// Binds with a send timeout on the listening socket, which Linux copies to every accepted
/// connection (tiny-http offers no other way to bound its blocking writes). There is no
/// receive timeout: on a listening socket it also times out `accept()`, and tiny-http stops
/// accepting for good on the first accept error.
fn bind(addr: SocketAddr, write_timeout: Duration) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_write_timeout(Some(write_timeout))?;
    Ok(socket.into())
}

/// Serves requests until stopped. An error from `recv` means tiny-http's accept loop ended
/// (it gives up on the first accept error, e.g. out of file descriptors): then every worker
/// stops and [`WebServer::join`] reports it, so the daemon can start the server again.
fn worker(server: &Server, app: &App, stop: &AtomicBool, down: &Mutex<Option<String>>) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(POLL) {
            Ok(Some(req)) => serve(app, req),
            Ok(None) => {}
            Err(e) => {
                *down.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                stop.store(true, Ordering::SeqCst);
            }
        }
    }
}

fn serve(app: &App, mut raw: tiny_http::Request) {
    let response = match read_request(&mut raw) {
        Ok(req) => app.handle(&req),
        Err(r) => r,
    };
    let _ = respond(raw, response);
}

fn read_request(raw: &mut tiny_http::Request) -> Result<Request, Response> {
    let method = match raw.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => Method::Get,
        tiny_http::Method::Post => Method::Post,
        _ => Method::Other,
    };
    let mut req = Request::new(method, raw.url());
    req.client = raw
        .remote_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    for h in raw.headers() {
        let value = Some(h.value.as_str().to_owned());
        if h.field.equiv("Cookie") {
            req.cookie = value;
        } else if h.field.equiv("X-CSRF-Token") {
            req.csrf = value;
        } else if h.field.equiv("Authorization") {
            req.authorization = value;
        } else if h.field.equiv("Content-Type") {
            req.content_type = value;
        }
    }
    if raw.body_length().is_some_and(|n| n > BODY_MAX) {
        return Err(Response::error(413, "request body too large"));
    }
    let mut body = Vec::new();
    raw.as_reader()
        .take(BODY_MAX as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| Response::error(400, "unreadable request body"))?;
    if body.len() > BODY_MAX {
        return Err(Response::error(413, "request body too large"));
    }
    req.body = body;
    Ok(req)
}

fn respond(raw: tiny_http::Request, r: Response) -> io::Result<()> {
    let mut headers: Vec<Header> = Vec::with_capacity(r.headers.len() + SECURITY_HEADERS.len());
    let pairs = SECURITY_HEADERS
        .iter()
        .map(|&(k, v)| (k, v))
        .chain(r.headers.iter().map(|(k, v)| (*k, v.as_str())));
    for (k, v) in pairs {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            headers.push(h);
        }
    }
    let status = tiny_http::StatusCode(r.status);
    match r.body {
        Body::Bytes(b) => {
            let len = b.len();
            raw.respond(tiny_http::Response::new(
                status,
                headers,
                io::Cursor::new(b),
                Some(len),
                None,
            ))
        }
        Body::Static(b) => raw.respond(tiny_http::Response::new(
            status,
            headers,
            b,
            Some(b.len()),
            None,
        )),
        Body::Stream(s) => raw.respond(tiny_http::Response::new(status, headers, s, None, None)),
    }
}
