//! `mailbag check-config FILE`: parse and validate a config file without starting anything.
//!
//! Prints `ok: <summary>` (and any warnings) and exits 0, or lists every error and exits 2.
//! The init script runs it before (re)starting the daemon.

use crate::config::{Config, ConfigError};

use super::Args;

/// Runs `check-config FILE`.
pub fn run(args: &mut Args) -> Result<(), String> {
    let path = args.path("config file (UCI or TOML)")?;
    args.finish()?;
    match Config::load_with_report(&path) {
        Ok((config, report)) => {
            println!("ok: {}", config.summary());
            for w in &report.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
        Err(ConfigError::Invalid(errors)) => {
            let mut msg = format!("{}: {} error(s)", path.display(), errors.len());
            for e in &errors {
                msg.push_str(&format!("\n  {e}"));
            }
            Err(msg)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
