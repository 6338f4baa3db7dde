//! `mailbag run [--config FILE] [--state-dir DIR]`: the daemon.
//!
//! The state directory holds what the daemon makes and must keep across reboots (the
//! self-signed certificate and its key): `--state-dir`, else [`DEFAULT_STATE_DIR`] with a
//! config file, `./state` for the demo.

use std::path::{Path, PathBuf};

use super::Args;
use crate::config::Config;

/// Where a configured daemon keeps its certificate, key and secrets unless `--state-dir`
/// names another directory (the init script passes it). Never derived from the spool path:
/// the spool may be a device (`/dev/mtd5`), and keys written to devtmpfs vanish at boot.
pub const DEFAULT_STATE_DIR: &str = "/etc/mailbag";

/// Runs the daemon. Without `--config`, the embedded demo defaults are used: loopback ports
/// and a spool image under `--state-dir` (default `./state`).
pub fn run(args: &mut Args) -> Result<(), String> {
    let config_path = args.option("config")?;
    let state_dir = args.option("state-dir")?.map(PathBuf::from);
    args.finish()?;
    let (config, state_dir) = match config_path.as_deref() {
        Some(path) => {
            let config = Config::load(path.as_ref()).map_err(|e| format!("{path}: {e}"))?;
            let state = state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
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
    crate::daemon::run(config, &state_dir, config_path.as_deref().map(Path::new))
}
