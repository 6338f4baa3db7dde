//! `mailbag spool ...`: format, inspect and migrate spool images.

use std::path::Path;

use mailbag_hal::{Clock, SystemClock};

use super::Args;
use super::args::parse_size;
use super::fmt;
use crate::spool::open::{create_image, load_copy, open_for_daemon};
use crate::spool::{Access, Allocation, Flash, Limits, RcptStatus, Spool};

/// Dispatches `spool <sub>`.
pub fn run(args: &mut Args) -> Result<(), String> {
    match args.next_word().as_deref() {
        Some("format") => format(args),
        Some("inspect") => inspect(args),
        Some("migrate") => migrate(args),
        Some(other) => Err(format!(
            "unknown spool command '{other}' (format, inspect, migrate)"
        )),
        None => Err("spool needs a command: format, inspect, migrate".into()),
    }
}

fn format(args: &mut Args) -> Result<(), String> {
    let size = args
        .option("size")?
        .ok_or("spool format needs --size (e.g. --size 8M)")?;
    let size = parse_size(&size)?;
    let image = args.path("image path")?;
    args.finish()?;
    let clock = SystemClock::new();
    create_image(&image, size, &clock).map_err(|e| format!("{}: {e}", image.display()))?;
    println!(
        "formatted {} as an empty spool ({})",
        image.display(),
        fmt::size(size)
    );
    Ok(())
}

/// `spool migrate IMAGE`: converts a format-1 image to format 2 in place (what the daemon
/// does at start). Only while no daemon has the image open.
fn migrate(args: &mut Args) -> Result<(), String> {
    let image = args.path("image path")?;
    args.finish()?;
    let fail = |e: crate::spool::SpoolError| format!("{}: {e}", image.display());
    if !image.exists() {
        return Err(format!("{}: no such file", image.display()));
    }
    let dev = open_for_daemon(&image, 0, &SystemClock::new()).map_err(fail)?;
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut alloc = Allocation::new();
    let spool =
        Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).map_err(fail)?;
    let u = spool.usage();
    if u.migrated > 0 {
        println!(
            "{}: converted {} message(s) from format 1; the image is format 2 now ({} held)",
            image.display(),
            u.migrated,
            u.messages
        );
    } else {
        println!(
            "{}: already format 2 ({} message(s) held)",
            image.display(),
            u.messages
        );
    }
    Ok(())
}

fn inspect(args: &mut Args) -> Result<(), String> {
    let json = args.flag("json");
    let image = args.path("image path")?;
    args.finish()?;
    let now = SystemClock::new().unix_seconds();
    let out = inspect_image(&image, now, json).map_err(|e| format!("{}: {e}", image.display()))?;
    print!("{out}");
    Ok(())
}

/// Renders the listing of the spool at `path` (a copy in RAM is mounted; the file is not
/// written).
pub fn inspect_image(
    path: &Path,
    now_unix: u64,
    json: bool,
) -> Result<String, crate::spool::SpoolError> {
    let dev = load_copy(path)?;
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).map_err(crate::spool::SpoolError::NotASpool)?;
    let mut alloc = Allocation::new();
    // Limits only bound new mail; a spool holding more than them is still listed whole.
    let spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite)?;
    let usage = spool.usage();
    let mut out = String::new();
    if json {
        out.push('[');
    } else {
        out.push_str(&format!(
            "spool {}: {} message{}, {} held, device {}, created {}, mounted {} times, {} log segments ({}){}{}\n",
            path.display(),
            usage.messages,
            if usage.messages == 1 { "" } else { "s" },
            fmt::size(usage.bytes),
            fmt::size(usage.device_bytes),
            fmt::utc(spool.header().created_unix),
            spool.header().mounts.saturating_sub(1),
            usage.segments,
            fmt::size(usage.log_bytes),
            if usage.damaged > 0 {
                format!(", {} damaged", usage.damaged)
            } else {
                String::new()
            },
            if usage.migrated > 0 {
                ", format 1 (converted in memory for this listing; the file is unchanged)"
            } else {
                ""
            },
        ));
        if usage.messages > 0 {
            out.push_str(&format!(
                "{:<16}  {:>7}  {:>9}  {:>8}  SENDER -> RECIPIENTS\n",
                "ID", "AGE", "SIZE", "ATTEMPTS"
            ));
        }
    }
    for (i, e) in spool.list().iter().enumerate() {
        let meta = spool.meta(e.id)?;
        let age = now_unix.saturating_sub(meta.received_unix);
        let sender = if meta.sender.is_empty() {
            "<>"
        } else {
            meta.sender.as_str()
        };
        if json {
            let rcpts: Vec<String> = meta
                .recipients
                .iter()
                .map(|r| {
                    format!(
                        "{{\"address\":{},\"status\":\"{:?}\"}}",
                        json_str(&r.address),
                        r.status
                    )
                })
                .collect();
            out.push_str(&format!(
                "{}{{\"id\":\"{}\",\"received\":{},\"age_seconds\":{age},\"size\":{},\"sender\":{},\"recipients\":[{}],\"attempts\":{},\"next_attempt\":{},\"last_error\":{}}}",
                if i == 0 { "\n" } else { ",\n" },
                meta.id,
                meta.received_unix,
                meta.size,
                json_str(sender),
                rcpts.join(","),
                meta.attempts,
                meta.next_attempt_unix,
                json_str(&meta.last_error),
            ));
        } else {
            let rcpts: Vec<String> = meta
                .recipients
                .iter()
                .map(|r| match r.status {
                    RcptStatus::Pending => r.address.to_string(),
                    RcptStatus::Delivered => format!("{} (delivered)", r.address),
                    RcptStatus::Failed => format!("{} (failed)", r.address),
                })
                .collect();
            out.push_str(&format!(
                "{:<16}  {:>7}  {:>9}  {:>8}  {} -> {}\n",
                meta.id,
                fmt::duration(age),
                fmt::size(meta.size),
                meta.attempts,
                sender,
                rcpts.join(", ")
            ));
            if !meta.last_error.is_empty() {
                out.push_str(&format!("{:<16}  last error: {}\n", "", meta.last_error));
            }
        }
    }
    if json {
        out.push_str("\n]\n");
    }
    Ok(out)
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
