//! `mailbag queue list|show`: the held mail, Postfix habits (`mailq`, `postcat -q`).
//!
//! These read the spool image directly (a copy in RAM; the image is never written), so they
//! work on a router whose daemon is stopped and on an image copied off one. Actions on the
//! live queue (flush, delete, bounce) go to the daemon's control socket (`cli/control.rs`).

use std::path::PathBuf;

use mailbag_hal::{Clock, SystemClock};

use super::Args;
use super::fmt;
use super::spool::inspect_image;
use crate::config::Config;
use crate::spool::open::load_copy;
use crate::spool::{Access, Allocation, Flash, Limits, MessageId, Spool, SpoolError};

/// Default configuration read when neither `--spool` nor `--config` is given.
const DEFAULT_CONFIG: &str = "/etc/config/mailbag";
/// Most body bytes `queue show` prints.
const SHOW_BODY_MAX: usize = 64 * 1024;

/// Dispatches `queue <sub>`.
pub fn run(args: &mut Args) -> Result<(), String> {
    match args.next_word().as_deref() {
        Some("list") => list(args),
        Some("show") => show(args),
        Some("flush") => super::control::flush(args),
        Some("delete") => super::control::delete(args),
        Some("bounce") => super::control::bounce(args),
        Some(other) => Err(format!(
            "unknown queue command '{other}' (list, show, flush, delete, bounce)"
        )),
        None => Err("queue needs a command: list, show, flush, delete, bounce".into()),
    }
}

fn spool_path(args: &mut Args) -> Result<PathBuf, String> {
    if let Some(p) = args.option("spool")? {
        return Ok(PathBuf::from(p));
    }
    let config = args
        .option("config")?
        .unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    let c = Config::load(config.as_ref())
        .map_err(|e| format!("{config}: {e} (or name the image with --spool)"))?;
    Ok(PathBuf::from(c.spool.path))
}

fn list(args: &mut Args) -> Result<(), String> {
    let json = args.flag("json");
    let path = spool_path(args)?;
    args.finish()?;
    let now = SystemClock::new().unix_seconds();
    let out = inspect_image(&path, now, json).map_err(|e| format!("{}: {e}", path.display()))?;
    print!("{out}");
    Ok(())
}

fn show(args: &mut Args) -> Result<(), String> {
    let path = spool_path(args)?;
    let id: MessageId = args
        .next_word()
        .ok_or("queue show needs a message id")?
        .parse()?;
    args.finish()?;
    let out = show_message(&path, id).map_err(|e| format!("{id}: {e}"))?;
    print!("{out}");
    Ok(())
}

/// Envelope, delivery state and the (start of the) message as text.
pub fn show_message(path: &std::path::Path, id: MessageId) -> Result<String, SpoolError> {
    let dev = load_copy(path)?;
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).map_err(SpoolError::NotASpool)?;
    let mut alloc = Allocation::new();
    let spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite)?;
    let meta = spool.meta(id)?;
    let mut out = String::new();
    out.push_str(&format!("id:          {}\n", meta.id));
    out.push_str(&format!("received:    {}\n", fmt::utc(meta.received_unix)));
    out.push_str(&format!(
        "size:        {} ({} bytes)\n",
        fmt::size(meta.size),
        meta.size
    ));
    let sender = if meta.sender.is_empty() {
        "<>"
    } else {
        meta.sender.as_str()
    };
    out.push_str(&format!("sender:      {sender}\n"));
    for r in &meta.recipients {
        out.push_str(&format!("recipient:   {} ({:?})\n", r.address, r.status));
    }
    out.push_str(&format!("attempts:    {}\n", meta.attempts));
    if meta.next_attempt_unix > 0 {
        out.push_str(&format!(
            "next try:    {}\n",
            fmt::utc(meta.next_attempt_unix)
        ));
    }
    if !meta.last_error.is_empty() {
        out.push_str(&format!("last error:  {}\n", meta.last_error));
    }
    out.push('\n');
    let mut buf = vec![0u8; SHOW_BODY_MAX.min(meta.size as usize)];
    let n = spool.read_body(id, 0, &mut buf)?;
    // Shown as text: control characters other than TAB/CR/LF are escaped, never sent raw to
    // the terminal.
    for c in String::from_utf8_lossy(&buf[..n]).chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    if (n as u64) < meta.size {
        out.push_str(&format!(
            "\n[... {} more bytes not shown]\n",
            meta.size - n as u64
        ));
    }
    Ok(out)
}
