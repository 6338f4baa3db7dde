//! `mailbag run [--config FILE] [--state-dir DIR]`: the daemon.

use std::path::{Path, PathBuf};

use super::Args;
use crate::config::{Config, RunSettings};

/// Runs the daemon. Without `--config`, the embedded demo defaults are used: loopback ports
/// and a spool image under `--state-dir` (default `./state`).
pub fn run(args: &mut Args) -> Result<(), String> {
    let config_path = args.option("config")?;
    let state_dir = args.option("state-dir")?.map(PathBuf::from);
    args.finish()?;
    let (config, state_dir) = match config_path.as_deref() {
        Some(path) => {
            let config = Config::load(path.as_ref()).map_err(|e| format!("{path}: {e}"))?;
            let state = state_dir.unwrap_or_else(|| {
                PathBuf::from(&config.spool.path)
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            (config, state)
        }
        None => {
            let state = state_dir.unwrap_or_else(|| PathBuf::from("state"));
            crate::log!(
                "no --config: running the demo on loopback (state in {})",
                state.display()
            );
            (Config::demo(&state), state)
        }
    };
    let settings = RunSettings::new_checked(config)?;
    crate::daemon::run(settings, &state_dir, config_path.as_deref().map(Path::new))
}
