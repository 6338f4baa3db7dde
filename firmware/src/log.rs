//! Logging to stderr (procd hands the daemon's stderr to logd on OpenWrt).

/// Writes one line to stderr, prefixed with `mailbag:`, in one `write` (stderr is
/// unbuffered: `eprintln!` would write each piece of the format separately).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}

/// The body of [`log!`].
pub fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!("mailbag: {args}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
