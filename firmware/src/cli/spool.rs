//! `mailbag spool ...`: format and inspect spool images.

use super::Args;

/// Dispatches `spool <sub>`.
pub fn run(args: &mut Args) -> Result<(), String> {
    match args.next_word().as_deref() {
        Some(other) => Err(format!("unknown spool command '{other}' (format, inspect)")),
        None => Err("spool needs a command: format, inspect".into()),
    }
}
