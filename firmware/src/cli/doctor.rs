//! `mailbag doctor [DOMAIN…] [--config FILE] [--json] [--ca-file FILE]`: the installer's
//! self-check. Prints one line per check — pass, warn or fail, each problem with its fix —
//! then the totals; `--json` prints the same as one JSON object. Exit status 0 when
//! nothing failed (warnings allowed), 1 when a check failed, 2 when the check could not
//! run (unreadable configuration, bad arguments).
//!
//! The running daemon is asked for its version and spool figures over its control socket
//! (`ping`, `stats`); everything else is looked at directly, with the daemon's resolver and
//! SMTP client ([`crate::daemon::admin::doctor`]) and judged by [`crate::doctor`].

use std::path::PathBuf;
use std::process::ExitCode;

use super::Args;
use super::control::request;
use crate::config::Config;
use crate::daemon::admin::doctor::{DaemonState, Options, gather, local_facts};
use crate::doctor::{Report, evaluate};

/// Default configuration (the router's UCI file).
const DEFAULT_CONFIG: &str = "/etc/config/mailbag";

/// `mailbag doctor`.
pub fn run(args: &mut Args) -> ExitCode {
    match check(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailbag: {}", e.trim_end());
            ExitCode::from(2)
        }
    }
}

fn check(args: &mut Args) -> Result<ExitCode, String> {
    let path = args
        .option("config")?
        .unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    let ca_file = args.option("ca-file")?.map(PathBuf::from);
    let json = args.flag("json");
    let mut domains = Vec::new();
    while let Some(w) = args.next_word() {
        if w.starts_with("--") {
            return Err(format!(
                "unknown option '{w}'\nusage: mailbag doctor [DOMAIN...] [--config FILE] [--json] [--ca-file FILE]"
            ));
        }
        domains.push(w);
    }
    let config = Config::load(path.as_ref()).map_err(|e| format!("{path}: {e}"))?;
    let opts = Options { domains, ca_file };
    let report = check_config(&config, &opts)?;
    if json {
        println!("{}", report.json());
    } else {
        let names = if opts.domains.is_empty() {
            config.policy.domains.join(", ")
        } else {
            opts.domains.join(", ")
        };
        println!(
            "mailbag doctor: {} ({}), {names}",
            config.smtp.hostname,
            match config.role {
                crate::config::Role::Edge => "edge",
                crate::config::Role::Silo => "silo",
            }
        );
        print!("{}", report.text());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs every check of `config`'s setup (asking the daemon over its control socket).
pub(super) fn check_config(config: &Config, opts: &Options) -> Result<Report, String> {
    let daemon = daemon_state(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut facts = rt.block_on(gather(config, opts, daemon))?;
    local_facts(config, &mut facts);
    Ok(evaluate(&facts))
}

/// The daemon's version and spool figures, over its control socket.
fn daemon_state(config: &Config) -> DaemonState {
    let socket = &config.daemon.control_socket;
    if socket.is_empty() {
        let why = "the control socket is disabled (daemon.control-socket)".to_string();
        return DaemonState {
            version: Err(why.clone()),
            usage: Err(why),
        };
    }
    let ask = |line: &str| request(socket.as_ref(), line).map_err(String::from);
    let version = ask("ping");
    let usage = match &version {
        Ok(_) => ask("stats").and_then(|t| t.parse()),
        Err(e) => Err(e.clone()),
    };
    DaemonState { version, usage }
}
