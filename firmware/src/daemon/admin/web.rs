//! Starts the admin page (`[web] listen`) over the running daemon: one
//! [`mailbag_web::WebServer`] per listen address, all sharing one [`DaemonBackend`].
//!
//! The demo (no `--config`) gets a password file of its own, `root` / [`DEMO_PASSWORD`],
//! created once in the state directory, and saves its settings to `mailbag.toml` there.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailbag_web::{App, WebConfig, WebServer};

use super::web_backend::{DaemonBackend, Parts};
use crate::config::RunSettings;

/// The demo's root password (printed in the log; the demo listens on loopback only).
pub const DEMO_PASSWORD: &str = "demo";
/// sha512-crypt of [`DEMO_PASSWORD`], made once (`openssl passwd -6 -salt mailbagdemo demo`).
const DEMO_HASH: &str = "$6$mailbagdemo$i3JeUS2cDa25AdjZjMOCIrE9uOmGdwl.SAslb4uWvCombtMQLp6/tbY1hVziOTPQ7me4cfDBiW1UgfGyBxeb/.";
/// Where the demo saves its settings, in the state directory.
pub const DEMO_CONFIG: &str = "mailbag.toml";

/// Starts a server per `web.listen` address (none when empty).
pub fn start(
    run: &RunSettings,
    state_dir: &Path,
    config_file: Option<PathBuf>,
    parts: Parts,
    reloader: &Arc<super::reload::Reloader>,
    counters: &Arc<crate::policy::Counters>,
) -> Result<Vec<WebServer>, String> {
    if run.web_listen.is_empty() {
        return Ok(Vec::new());
    }
    let config = &run.config;
    let shadow = PathBuf::from(&config.web.shadow);
    let demo = config_file.is_none();
    let config_file = config_file.unwrap_or_else(|| state_dir.join(DEMO_CONFIG));
    if demo {
        write_demo_shadow(&shadow).map_err(|e| format!("{}: {e}", shadow.display()))?;
    }
    let backend = DaemonBackend::new(parts, config.clone(), config_file)
        .with_reloader(Arc::clone(reloader))
        .with_counters(Arc::clone(counters));
    let mut servers = Vec::with_capacity(run.web_listen.len());
    for &listen in &run.web_listen {
        let app = App::new(
            Box::new(backend.clone()),
            WebConfig {
                listen,
                shadow_path: shadow.clone(),
                metrics_token: Some(run.config.monitor.metrics_token.clone())
                    .filter(|t| !t.is_empty()),
                ..WebConfig::default()
            },
        );
        let server = WebServer::start(app).map_err(|e| format!("web {listen}: {e}"))?;
        crate::log!("admin page on http://{}/", server.addr());
        if demo {
            crate::log!("demo login: root / {DEMO_PASSWORD}");
        }
        servers.push(server);
    }
    Ok(servers)
}

/// Creates the demo's password file (mode 0600) unless it exists.
fn write_demo_shadow(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        f.mode(0o600);
    }
    let mut f = f.open(path)?;
    writeln!(f, "root:{DEMO_HASH}:19000:0:99999:7:::")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_password_matches_its_hash() {
        assert!(mailbag_web::auth::verify_crypt(DEMO_PASSWORD, DEMO_HASH));
        assert!(!mailbag_web::auth::verify_crypt("wrong", DEMO_HASH));
    }
}
