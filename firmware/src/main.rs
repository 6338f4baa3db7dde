//! The `mailbag` command: daemon and admin tools.

// Only `mailbag-hal` may hold unsafe code (its two audited MTD ioctls).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mailbag::cli::main(std::env::args_os().skip(1).collect())
}
