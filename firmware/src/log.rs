//! Logging to stderr (procd hands the daemon's stderr to logd on OpenWrt).

/// Writes one line to stderr, prefixed with `mailbag:`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("mailbag: {}", format_args!($($arg)*))
    };
}
