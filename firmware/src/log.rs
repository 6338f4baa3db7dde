//! The daemon's log lines, at two levels, as procd expects them: informational lines on
//! stdout (logd files them as `daemon.info`), warnings and errors on stderr (`daemon.err`).
//!
//! Under procd (or any pipe) lines carry no prefix: logd already names the program
//! (`mailbag[1234]: ready …`). On a terminal they start with `mailbag: `, so a person
//! running the daemon by hand sees who speaks. Each line is written in one `write` (stderr
//! is unbuffered: `eprintln!` would write each piece of the format separately, and lines
//! of concurrent tasks could interleave).

use std::io::{IsTerminal as _, Write as _};

/// An informational line (stdout: `daemon.info`).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(false, format_args!($($arg)*))
    };
}

/// A warning or error: something the admin should look at (stderr: `daemon.err`).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::log::line(true, format_args!($($arg)*))
    };
}

/// The body of [`log!`] and [`warn!`]: `mailbag: ` on a terminal, nothing on a pipe.
pub fn line(stderr: bool, args: std::fmt::Arguments<'_>) {
    let tty = if stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let line = format!("{}{args}\n", if tty { "mailbag: " } else { "" });
    let _ = if stderr {
        std::io::stderr().lock().write_all(line.as_bytes())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes()).and_then(|()| out.flush())
    };
}
