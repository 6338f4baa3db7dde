//! The `mailbag` command: daemon and admin tools.

fn main() -> std::process::ExitCode {
    mailbag::cli::main(std::env::args_os().skip(1).collect())
}
