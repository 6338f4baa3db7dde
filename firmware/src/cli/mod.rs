//! Command-line front end: parses arguments and dispatches to one file per command group.
//!
//! Every command prints a clear error and exits non-zero on bad input; nothing here panics.

use std::ffi::OsString;
use std::process::ExitCode;

mod args;
mod config;
mod control;
#[cfg(feature = "doctor")]
mod doctor;
mod etrn;
mod firewall;
pub(crate) mod fmt;
mod queue;
mod rpcd;
mod run;
mod spool;

pub use args::Args;

/// Usage text shown by `mailbag help` and on errors.
pub const USAGE: &str = "\
usage: mailbag <command> [options]

commands:
  run [--config FILE] [--state-dir DIR]  run the daemon (no --config: loopback demo;
                                         state dir default /etc/mailbag, demo ./state)
  spool format IMAGE --size SIZE         create and format a spool image (e.g. 8M)
  spool inspect IMAGE [--json]           list the messages in a spool image (read-only)
  spool migrate IMAGE                    convert a format-1 image in place (daemon stopped)
  queue list [--json] [--spool IMAGE|--config FILE]
                                         the held mail (read from the spool image)
  queue show ID [--spool IMAGE|--config FILE]
                                         one message: envelope, state, content
  queue flush [DOMAIN]                   deliver held mail now (all, or of one domain)
  queue delete ID | --all-for DOMAIN     remove a message, or every recipient in a domain
  queue bounce ID                        return a message to its sender (RFC 3464 notice)
                                         (these three ask the running daemon over its
                                         control socket: --socket PATH, or the one named
                                         by --config FILE, default /etc/config/mailbag)
  etrn [HOST[:PORT] DOMAIN...]           ask a server (default: relay.upstream-silo) to deliver
                                         what it holds for our domains (RFC 1985)
  check-config FILE                      check a config file (UCI or TOML)
  doctor [DOMAIN...] [--json] [--ca-file FILE] [--config FILE]
                                         check the setup: MX records, MTA-STS, next hops,
                                         silos (ETRN), firewall, spool; exit 1 on a failure
                                         (not in the router package's build)
  firewall render --format nft|uci|iptables [--config FILE]
                                         print the walled-garden firewall rules
  firewall apply [--config FILE]         load them (set update in place when loaded)
  rpcd [--config FILE] list | call METHOD
                                         rpcd exec plugin for LuCI (luci-app-mailbag)
  --version                              print the version
";

/// Entry point used by `main.rs`.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let mut args = Args::new(argv);
    let result = match args.next_word().as_deref() {
        Some("--version") | Some("-V") | Some("version") => {
            println!("mailbag {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("run") => run::run(&mut args),
        Some("spool") => spool::run(&mut args),
        Some("queue") => queue::run(&mut args),
        Some("etrn") => etrn::etrn(&mut args),
        #[cfg(feature = "doctor")]
        Some("doctor") => return doctor::run(&mut args),
        #[cfg(not(feature = "doctor"))]
        Some("doctor") => Err(crate::doctor::NOT_BUILT.into()),
        Some("check-config") => config::run(&mut args),
        Some("firewall") => firewall::run(&mut args),
        Some("rpcd") => rpcd::run(&mut args),
        Some("help") | Some("--help") | Some("-h") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mailbag: {}", msg.trim_end());
            ExitCode::from(2)
        }
    }
}
