//! The control socket (`[daemon] control-socket`): how `mailbag queue flush|delete|bounce`
//! reach the running daemon.
//!
//! **Access.** A Unix stream socket of mode 0600, bound inside a 0700 directory it creates
//! beside the path and only then renamed to it, so nobody but the daemon's user (root) can ever connect;
//! peers are also checked by credentials (root or the daemon's own uid). A stale socket
//! file left by a crash is replaced; a live one (another daemon answers on it) or a file
//! that is not a socket is left alone and the daemon runs without a control socket. The
//! file is removed on shutdown.
//!
//! **Protocol.** One request per connection: one line of at most [`REQUEST_MAX`] bytes
//! (LF or CRLF, or end of input), then one reply line starting `ok ` or `error `, then the
//! daemon closes the connection.
//!
//! | request | does |
//! |---|---|
//! | `ping` | `ok mailbag VERSION` |
//! | `stats` | `ok messages=N used=BYTES free=BYTES rate-bytes=BYTES rate-secs=SECS`: the spool's fill and the bytes accepted over the last day (for `mailbag doctor`) |
//! | `flush [DOMAIN]` | held mail (of DOMAIN, or all) due now, delivery woken |
//! | `delete ID` | removes message ID (16 hex digits) |
//! | `delete --all-for DOMAIN` | drops every pending recipient in DOMAIN ([`Actions::delete_all_for`]) |
//! | `bounce ID` | failure notice to the sender (none for `<>`), then removes ID |
//! | `status` | `ok {JSON}`: role, next hop up/down, silo, queue and spool figures |
//! | `queue [OFFSET [LIMIT]]` | `ok {"total","offset","rows":[…]}`, oldest first, LIMIT ≤ 200 |
//! | `message ID` | `ok {JSON}`: row, recipients' states, header fields, body start |
//! | `log [LIMIT]` | `ok {"events":[…]}`, newest first, LIMIT ≤ 500 |
//!
//! The JSON replies are one line ([`super::json_view`]); LuCI's rpcd plugin (`mailbag
//! rpcd`) passes them on.
//!
//! A message being delivered at that moment is not deleted or bounced: the reply is an
//! `error … try again` ([`super::actions`]). Bounded: at most [`CONNECTIONS_MAX`]
//! connections at once (more get `error busy`), [`READ_TIMEOUT`] to send the request.
//! Bad input gets an `error` reply; nothing here panics on it.

use std::fmt;
use std::os::unix::fs::{
    DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::actions::{ActionError, Actions, Done};
use super::json_view;
use super::reload::Reloader;
use crate::config::validate::is_domain;
use crate::daemon::events::EventLog;
use crate::daemon::spool::Gauge;
use crate::doctor::facts::SpoolUsage;
use crate::spool::MessageId;

/// Usage of `queue`.
const QUEUE_USAGE: &str = "queue [OFFSET [LIMIT]]";

/// Longest request line, line end included.
pub const REQUEST_MAX: usize = 512;
/// Connections served at once.
pub const CONNECTIONS_MAX: usize = 4;
/// How long a client has to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to take the reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Names tried for the directory the socket is bound in.
const STAGING_TRIES: u32 = 16;
/// Most unread request bytes discarded after the reply.
const DRAIN_MAX: usize = 64 * 1024;

/// One parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `ping`.
    Ping,
    /// `stats`.
    Stats,
    /// `flush [DOMAIN]`.
    Flush(Option<String>),
    /// `delete ID`.
    Delete(MessageId),
    /// `delete --all-for DOMAIN`.
    DeleteAllFor(String),
    /// `bounce ID`.
    Bounce(MessageId),
    /// `status`.
    Status,
    /// `queue [OFFSET [LIMIT]]`.
    Queue {
        /// Rows skipped (oldest first).
        offset: usize,
        /// Rows returned (at most [`json_view::PAGE_MAX`]).
        limit: usize,
    },
    /// `message ID`.
    Message(MessageId),
    /// `log [LIMIT]`.
    Log(usize),
}

/// Why a request line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but blanks.
    Empty,
    /// Longer than [`REQUEST_MAX`].
    TooLong,
    /// Not UTF-8, or control characters.
    NotText,
    /// No such command.
    Unknown(String),
    /// Wrong arguments; the usage of the command.
    Usage(&'static str),
    /// Not a message id.
    BadId(String),
    /// Not a domain name.
    BadDomain(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty request"),
            Self::TooLong => write!(f, "request longer than {REQUEST_MAX} bytes"),
            Self::NotText => f.write_str("request is not text"),
            Self::Unknown(c) => write!(
                f,
                "unknown command '{c}' (ping, stats, flush, delete, bounce, status, queue, message, log)"
            ),
            Self::Usage(u) => write!(f, "usage: {u}"),
            Self::BadId(s) => write!(f, "'{s}' is not a message id (16 hex digits)"),
            Self::BadDomain(s) => write!(f, "'{s}' is not a domain name"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one request line (its line end may be included).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.len() > REQUEST_MAX {
        return Err(ParseError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| ParseError::NotText)?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::NotText);
    }
    let mut words = text.split_whitespace();
    let Some(cmd) = words.next() else {
        return Err(ParseError::Empty);
    };
    let args: Vec<&str> = words.collect();
    let command = cmd.to_ascii_lowercase();
    match (command.as_str(), args.as_slice()) {
        ("ping", []) => Ok(Command::Ping),
        ("ping", _) => Err(ParseError::Usage("ping")),
        ("stats", []) => Ok(Command::Stats),
        ("stats", _) => Err(ParseError::Usage("stats")),
        ("status", []) => Ok(Command::Status),
        ("status", _) => Err(ParseError::Usage("status")),
        ("queue", rest) if rest.len() <= 2 => {
            let num = |s: &str| {
                s.parse::<usize>()
                    .map_err(|_| ParseError::Usage(QUEUE_USAGE))
            };
            let offset = rest.first().map_or(Ok(0), |s| num(s))?;
            let limit = rest.get(1).map_or(Ok(50), |s| num(s))?;
            Ok(Command::Queue {
                offset,
                limit: limit.min(json_view::PAGE_MAX),
            })
        }
        ("queue", _) => Err(ParseError::Usage(QUEUE_USAGE)),
        ("message", [id]) => message_id(id).map(Command::Message),
        ("message", _) => Err(ParseError::Usage("message ID")),
        ("log", []) => Ok(Command::Log(100)),
        ("log", [n]) => n
            .parse::<usize>()
            .map(|n| Command::Log(n.min(json_view::LOG_MAX)))
            .map_err(|_| ParseError::Usage("log [LIMIT]")),
        ("log", _) => Err(ParseError::Usage("log [LIMIT]")),
        ("flush", []) => Ok(Command::Flush(None)),
        ("flush", [d]) => domain(d).map(|d| Command::Flush(Some(d))),
        ("flush", _) => Err(ParseError::Usage("flush [DOMAIN]")),
        ("delete", ["--all-for", d]) => domain(d).map(Command::DeleteAllFor),
        ("delete", [id]) if !id.starts_with("--") => message_id(id).map(Command::Delete),
        ("delete", _) => Err(ParseError::Usage("delete ID | delete --all-for DOMAIN")),
        ("bounce", [id]) => message_id(id).map(Command::Bounce),
        ("bounce", _) => Err(ParseError::Usage("bounce ID")),
        _ => Err(ParseError::Unknown(cmd.chars().take(32).collect())),
    }
}

fn message_id(s: &str) -> Result<MessageId, ParseError> {
    s.parse()
        .map_err(|_| ParseError::BadId(s.chars().take(64).collect()))
}

fn domain(s: &str) -> Result<String, ParseError> {
    let d = s.trim_end_matches('.').to_ascii_lowercase();
    if is_domain(&d) {
        Ok(d)
    } else {
        Err(ParseError::BadDomain(s.chars().take(64).collect()))
    }
}

/// A running control socket; [`ControlSocket::stop`] ends it and removes the file.
pub struct ControlSocket {
    task: JoinHandle<()>,
}

impl ControlSocket {
    /// Waits until the accept loop ended (after the shutdown signal) and the connections
    /// in progress finished (bounded).
    pub async fn stop(self) {
        let _ = self.task.await;
    }
}

/// Binds `path` and serves it until `shutdown` flips. An error means no control socket
/// (the daemon runs on without one).
pub fn start(
    path: &Path,
    actions: Actions,
    reloader: Arc<Reloader>,
    shutdown: watch::Receiver<bool>,
) -> Result<ControlSocket, String> {
    let listener =
        bind_private(path).map_err(|e| format!("control socket {}: {e}", path.display()))?;
    crate::log!("control socket on {}", path.display());
    let task = crate::daemon::task::spawn(serve(
        listener,
        path.to_path_buf(),
        actions,
        reloader,
        shutdown,
    ));
    Ok(ControlSocket { task })
}

/// Binds a 0600 socket at `path` with no moment where anyone else could connect: bound in
/// a new 0700 directory beside it, chmod 0600, renamed into place.
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    use std::io::{Error, ErrorKind};
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::new(
                    ErrorKind::AddrInUse,
                    "another process answers on it (a second mailbag?)",
                ));
            }
            crate::log!(
                "control socket {}: replacing a stale socket",
                path.display()
            );
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "exists and is not a socket; not replaced",
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // A directory only we can enter; one that exists already (a leftover, or someone
    // else's) is never used: the next name is tried.
    let mut staging = None;
    for n in 0..STAGING_TRIES {
        let dir = parent.join(format!(".mailbag-ctl.{}.{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                staging = Some(dir);
                break;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let staging = staging.ok_or_else(|| {
        Error::new(
            ErrorKind::AlreadyExists,
            format!("{STAGING_TRIES} staging directories .mailbag-ctl.* exist beside it"),
        )
    })?;
    let bound = (|| {
        let tmp = staging.join("s");
        let l = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        l.set_nonblocking(true)?;
        Ok::<_, Error>(l)
    })();
    let _ = std::fs::remove_file(staging.join("s"));
    let _ = std::fs::remove_dir(&staging);
    UnixListener::from_std(bound?)
}

async fn serve(
    listener: UnixListener,
    path: PathBuf,
    actions: Actions,
    reloader: Arc<Reloader>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Root, and the daemon's own user (a daemon run unprivileged, as in tests).
    let own_uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let allowed = stream
                        .peer_cred()
                        .is_ok_and(|c| c.uid() == 0 || Some(c.uid()) == own_uid);
                    match Arc::clone(&slots).try_acquire_owned() {
                        Ok(permit) => {
                            let (actions, reloader) = (actions.clone(), Arc::clone(&reloader));
                            crate::daemon::task::spawn(async move {
                                connection(stream, allowed, &actions, &reloader).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            // Best effort, never waits: the client may not be reading.
                            let _ = stream.try_write(b"error busy: too many control connections; try again\n");
                        }
                    }
                }
                Err(e) => {
                    crate::log!("control socket: accept failed: {e}");
                    // Out of descriptors, say: do not spin.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if let Err(e) = std::fs::remove_file(&path) {
        crate::log!("control socket {}: not removed: {e}", path.display());
    }
    let all = u32::try_from(CONNECTIONS_MAX).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(crate::daemon::shutdown::GRACE, slots.acquire_many(all)).await;
}

/// Reads one request, answers it, closes.
async fn connection(mut stream: UnixStream, allowed: bool, actions: &Actions, reloader: &Reloader) {
    let reply = if allowed {
        match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
            Err(_) => return,
            Ok(Err(e)) => format!("error {e}"),
            Ok(Ok(line)) => match parse(&line) {
                Ok(cmd) => execute(cmd, actions, reloader).await,
                Err(e) => format!("error {e}"),
            },
        }
    } else {
        "error permission denied: the control socket is for root".to_string()
    };
    // One line, whatever the text held.
    let mut out: String = reply
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.push('\n');
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Unread input at close resets the connection before the client reads the reply
        // (an over-long request, say): take in a bounded amount of it first.
        let mut sink = [0u8; 4096];
        let mut left = DRAIN_MAX;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Why no request line could be read.
#[derive(Debug)]
enum ReadError {
    TooLong,
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(f, "{}", ParseError::TooLong),
            Self::Io(e) => write!(f, "reading the request: {e}"),
        }
    }
}

/// Bytes up to and including the first LF, or to the end of input.
async fn read_request(stream: &mut UnixStream) -> Result<Vec<u8>, ReadError> {
    let mut buf = vec![0u8; REQUEST_MAX];
    let mut len = 0;
    loop {
        if let Some(i) = buf[..len].iter().position(|&b| b == b'\n') {
            buf.truncate(i + 1);
            return Ok(buf);
        }
        if len == buf.len() {
            return Err(ReadError::TooLong);
        }
        match stream.read(&mut buf[len..]).await {
            Ok(0) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(n) => len += n,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// The result for the one message `id` of an action run on `[id]`.
fn one<T>(r: Result<Done<T>, ActionError>, id: MessageId) -> Result<T, ActionError> {
    r.and_then(|mut d| {
        d.done
            .pop()
            .map(|(_, t)| t)
            .ok_or(ActionError::NotFound(id))
    })
}

/// The spool's fill (from its published gauge, never waiting for the spool thread) and
/// the bytes accepted over the last day, at `now` (Unix seconds).
pub fn spool_usage(gauge: &Gauge, events: &EventLog, now: u64) -> SpoolUsage {
    let g = gauge.get();
    let (rate_bytes, rate_secs) = events.accept_rate(now);
    SpoolUsage {
        messages: g.messages,
        used: g.bytes,
        free: g.max_bytes.saturating_sub(g.bytes),
        rate_bytes,
        rate_secs,
    }
}

async fn execute(cmd: Command, actions: &Actions, reloader: &Reloader) -> String {
    match cmd {
        Command::Status => match json_view::status(actions, &reloader.running()).await {
            Ok(json) => format!("ok {json}"),
            Err(e) => format!("error {e}"),
        },
        Command::Queue { offset, limit } => match json_view::queue(actions, offset, limit).await {
            Ok(json) => format!("ok {json}"),
            Err(e) => format!("error {e}"),
        },
        Command::Message(id) => match json_view::message(actions, id).await {
            Ok(Some(json)) => format!("ok {json}"),
            Ok(None) => format!("error no message {id}"),
            Err(e) => format!("error {e}"),
        },
        Command::Log(limit) => format!("ok {}", json_view::log(actions.events(), limit)),
        Command::Ping => format!("ok mailbag {}", env!("CARGO_PKG_VERSION")),
        Command::Stats => {
            let now = actions.clock().unix_seconds();
            format!(
                "ok {}",
                spool_usage(&actions.spool().gauge, actions.events(), now)
            )
        }
        Command::Flush(domain) => {
            let (_, text) = actions.flush(domain.as_deref()).await;
            format!("ok {text}")
        }
        Command::Delete(id) => match one(actions.delete(&[id]).await, id) {
            Ok(()) => format!("ok deleted {id}"),
            Err(e) => format!("error {e}"),
        },
        Command::DeleteAllFor(domain) => match actions.delete_all_for(&domain).await {
            Ok(r) => format!("ok {}", r.text(&domain)),
            Err(e) => format!("error {e}"),
        },
        Command::Bounce(id) => match one(actions.bounce(&[id]).await, id) {
            Ok(b) => format!("ok {}", b.text(id)),
            Err(e) => format!("error {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_view_requests_parse_with_bounds() {
        assert_eq!(parse(b"status\n"), Ok(Command::Status));
        assert_eq!(
            parse(b"queue"),
            Ok(Command::Queue {
                offset: 0,
                limit: 50
            })
        );
        assert_eq!(
            parse(b"queue 10 100000"),
            Ok(Command::Queue {
                offset: 10,
                limit: json_view::PAGE_MAX
            })
        );
        assert!(matches!(parse(b"queue -1"), Err(ParseError::Usage(_))));
        assert!(matches!(parse(b"queue 1 2 3"), Err(ParseError::Usage(_))));
        assert_eq!(
            parse(b"message 0000000100000002"),
            Ok(Command::Message(id("0000000100000002")))
        );
        assert!(matches!(parse(b"message"), Err(ParseError::Usage(_))));
        assert!(matches!(parse(b"message x"), Err(ParseError::BadId(_))));
        assert_eq!(parse(b"log"), Ok(Command::Log(100)));
        assert_eq!(parse(b"log 99999"), Ok(Command::Log(json_view::LOG_MAX)));
        assert!(matches!(parse(b"status now"), Err(ParseError::Usage(_))));
    }

    fn id(s: &str) -> MessageId {
        s.parse().unwrap()
    }

    #[test]
    fn requests_parse_to_commands() {
        assert_eq!(parse(b"ping\n"), Ok(Command::Ping));
        assert_eq!(parse(b"flush"), Ok(Command::Flush(None)));
        assert_eq!(parse(b"stats\n"), Ok(Command::Stats));
        assert_eq!(parse(b"stats now"), Err(ParseError::Usage("stats")));
        assert_eq!(
            parse(b"FLUSH Office.Test.\r\n"),
            Ok(Command::Flush(Some("office.test".into())))
        );
        assert_eq!(
            parse(b"delete 0000000100000002\n"),
            Ok(Command::Delete(id("0000000100000002")))
        );
        assert_eq!(
            parse(b"delete  --all-for  example.test\n"),
            Ok(Command::DeleteAllFor("example.test".into()))
        );
        assert_eq!(
            parse(b"bounce 00000001000000ff\n"),
            Ok(Command::Bounce(id("00000001000000ff")))
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert_eq!(parse(b"\n"), Err(ParseError::Empty));
        assert_eq!(parse(b"   \r\n"), Err(ParseError::Empty));
        assert_eq!(parse(b"\xff\xfe\n"), Err(ParseError::NotText));
        assert_eq!(parse(b"flush a\x1bb\n"), Err(ParseError::NotText));
        assert_eq!(parse(b"ping\nping\n"), Err(ParseError::NotText));
        assert_eq!(parse(b"rm -rf /\n"), Err(ParseError::Unknown("rm".into())));
        assert_eq!(parse(b"ping now"), Err(ParseError::Usage("ping")));
        assert_eq!(
            parse(b"flush a.test b.test"),
            Err(ParseError::Usage("flush [DOMAIN]"))
        );
        assert_eq!(
            parse(b"flush exa_mple.test"),
            Err(ParseError::BadDomain("exa_mple.test".into()))
        );
        assert!(matches!(parse(b"delete"), Err(ParseError::Usage(_))));
        assert!(matches!(
            parse(b"delete --all-for"),
            Err(ParseError::Usage(_))
        ));
        assert!(matches!(parse(b"delete --all"), Err(ParseError::Usage(_))));
        assert_eq!(parse(b"delete 42"), Err(ParseError::BadId("42".into())));
        assert!(matches!(parse(b"bounce"), Err(ParseError::Usage(_))));
        assert_eq!(
            parse(b"bounce 000000010000000g"),
            Err(ParseError::BadId("000000010000000g".into()))
        );
    }

    #[test]
    fn length_is_bounded() {
        let mut long = b"flush ".to_vec();
        long.resize(REQUEST_MAX + 1, b'a');
        assert_eq!(parse(&long), Err(ParseError::TooLong));
        let mut fits = b"flush ".to_vec();
        fits.resize(REQUEST_MAX, b'a');
        // Fits the bound; refused for what it says, not for its length.
        assert!(matches!(parse(&fits), Err(ParseError::BadDomain(_))));
    }

    #[test]
    fn error_texts_are_one_line_and_name_the_fix() {
        for e in [
            ParseError::Empty,
            ParseError::TooLong,
            ParseError::Unknown("x".into()),
            ParseError::Usage("bounce ID"),
        ] {
            let s = e.to_string();
            assert!(!s.contains('\n') && !s.is_empty(), "{s}");
        }
        assert!(
            ParseError::Unknown("x".into())
                .to_string()
                .contains("ping, stats, flush, delete, bounce")
        );
    }
}
