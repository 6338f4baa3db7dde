//! The daemon's log lines, at two levels, as procd expects them: informational lines on
//! stdout (logd files them as `daemon.info`), warnings and errors on stderr (`daemon.err`).
//!
//! Under procd (or any pipe) lines carry no prefix: logd already names the program
//! (`mailbag[1234]: ready …`). On a terminal they start with `mailbag: `, so a person
//! running the daemon by hand sees who speaks.

use std::io::IsTerminal as _;

/// `mailbag: ` on a terminal, nothing on a pipe (procd, tests, files).
#[doc(hidden)]
pub fn prefix(stderr: bool) -> &'static str {
    let tty = if stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    if tty { "mailbag: " } else { "" }
}

/// An informational line (stdout: `daemon.info`).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        println!("{}{}", $crate::log::prefix(false), format_args!($($arg)*))
    };
}

/// A warning or error: something the admin should look at (stderr: `daemon.err`).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        eprintln!("{}{}", $crate::log::prefix(true), format_args!($($arg)*))
    };
}
