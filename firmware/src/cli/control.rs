//! `mailbag queue flush|delete|bounce`: actions on the live queue, sent to the running
//! daemon over its control socket (`[daemon] control-socket`, or `--socket PATH`).
//!
//! The daemon answers one line, `ok …` (printed, exit 0) or `error …` (exit 2). `queue
//! flush` falls back to ETRN over SMTP when the config disables the control socket or its
//! file does not exist (a daemon that could not create it still takes ETRN), so the WAN
//! hotplug's `mailbag queue flush` works either way.

use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Args;
use crate::config::Config;
use crate::spool::MessageId;

/// Default configuration (the router's UCI file).
const DEFAULT_CONFIG: &str = "/etc/config/mailbag";
/// How long to wait for the daemon's answer (a bounce writes to flash).
const TIMEOUT: Duration = Duration::from_secs(60);
/// Longest reply read.
const REPLY_MAX: u64 = 4096;
/// Longest JSON reply read (a queue page of 200 rows, a message view).
pub const REPLY_JSON_MAX: u64 = 1024 * 1024;

/// Where to ask: `--socket`, else the config's `daemon.control-socket` (`None`: disabled).
struct Target {
    socket: Option<PathBuf>,
    /// The config, when one was read (for the ETRN fallback).
    config: Option<Config>,
}

fn target(args: &mut Args) -> Result<Target, String> {
    let socket = args.option("socket")?;
    let config_path = args.option("config")?;
    if let Some(s) = socket {
        let config = config_path.map(|p| load(&p)).transpose()?;
        return Ok(Target {
            socket: Some(PathBuf::from(s)),
            config,
        });
    }
    let path = config_path.unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    let c = load(&path)?;
    Ok(Target {
        socket: (!c.daemon.control_socket.is_empty())
            .then(|| PathBuf::from(&c.daemon.control_socket)),
        config: Some(c),
    })
}

fn load(path: &str) -> Result<Config, String> {
    Config::load(path.as_ref())
        .map_err(|e| format!("{path}: {e} (or name the socket with --socket)"))
}

/// Why a request got no `ok`.
pub(super) enum Failure {
    /// No socket file there.
    Absent(String),
    /// Anything else, said in full.
    Other(String),
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        match f {
            Failure::Absent(s) | Failure::Other(s) => s,
        }
    }
}

/// Sends one request line; the text after `ok ` on success.
pub(super) fn request(socket: &Path, line: &str) -> Result<String, Failure> {
    request_max(socket, line, REPLY_MAX)
}

/// [`request`] for the JSON views: a reply of up to [`REPLY_JSON_MAX`] bytes; errors as text.
pub fn request_json(socket: &Path, line: &str) -> Result<String, String> {
    request_max(socket, line, REPLY_JSON_MAX).map_err(String::from)
}

fn request_max(socket: &Path, line: &str, max: u64) -> Result<String, Failure> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        let why = format!(
            "cannot connect to {}: {e}; is mailbag running?",
            socket.display()
        );
        match e.kind() {
            ErrorKind::NotFound => Failure::Absent(why),
            ErrorKind::PermissionDenied => Failure::Other(format!(
                "cannot connect to {}: {e} (the control socket is for root)",
                socket.display()
            )),
            _ => Failure::Other(why),
        }
    })?;
    let io = |e: std::io::Error| Failure::Other(format!("{}: {e}", socket.display()));
    s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
    let mut reply = String::new();
    (&mut s).take(max).read_to_string(&mut reply).map_err(io)?;
    let reply = reply.trim_end();
    if let Some(text) = reply.strip_prefix("ok") {
        Ok(text.trim_start().to_string())
    } else if let Some(text) = reply.strip_prefix("error ") {
        Err(Failure::Other(text.to_string()))
    } else if reply.is_empty() {
        Err(Failure::Other(format!(
            "{}: the daemon closed the connection without an answer",
            socket.display()
        )))
    } else {
        Err(Failure::Other(format!("unexpected answer: {reply}")))
    }
}

fn ask(t: &Target, line: &str) -> Result<(), String> {
    let socket = t.socket.as_deref().ok_or(
        "the control socket is disabled (daemon.control-socket is empty); name one with --socket",
    )?;
    let text = request(socket, line)?;
    println!("{text}");
    Ok(())
}

/// `mailbag queue flush [DOMAIN] [--socket PATH|--config FILE]`.
pub fn flush(args: &mut Args) -> Result<(), String> {
    let t = target(args)?;
    let domain = args.next_word();
    args.finish()?;
    let line = match &domain {
        Some(d) => format!("flush {d}"),
        None => "flush".to_string(),
    };
    let fallback = |why: &str, c: &Config| {
        eprintln!("{why}; asking over SMTP (ETRN) instead");
        super::etrn::flush_local(c, domain.clone())
    };
    match (&t.socket, &t.config) {
        (None, Some(c)) => fallback("the control socket is disabled", c),
        (Some(socket), config) => match request(socket, &line) {
            Ok(text) => {
                println!("{text}");
                Ok(())
            }
            Err(Failure::Absent(why)) => match config {
                Some(c) => fallback(&format!("no control socket at {}", socket.display()), c),
                None => Err(why),
            },
            Err(f) => Err(f.into()),
        },
        (None, None) => Err("no control socket to ask".into()),
    }
}

/// `mailbag queue delete ID|--all-for DOMAIN [--socket PATH|--config FILE]`.
pub fn delete(args: &mut Args) -> Result<(), String> {
    let domain = args.option("all-for")?;
    let t = target(args)?;
    let line = match domain {
        Some(d) => format!("delete --all-for {d}"),
        None => {
            let id: MessageId = args
                .next_word()
                .ok_or("usage: mailbag queue delete ID | --all-for DOMAIN")?
                .parse()?;
            format!("delete {id}")
        }
    };
    args.finish()?;
    ask(&t, &line)
}

/// `mailbag queue bounce ID [--socket PATH|--config FILE]`.
pub fn bounce(args: &mut Args) -> Result<(), String> {
    let t = target(args)?;
    let id: MessageId = args
        .next_word()
        .ok_or("usage: mailbag queue bounce ID")?
        .parse()?;
    args.finish()?;
    ask(&t, &format!("bounce {id}"))
}
